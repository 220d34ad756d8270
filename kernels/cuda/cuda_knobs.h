/*
 * cuda_knobs.h - settings of the CUDA backend beyond struct be_ops, for C
 * callers (tests, benchmarks, the service's flags). Only in builds with
 * GR_HAVE_CUDA; defined in kernels/cuda/cu_matmul.cu and cu_attention.cu.
 *
 * Matmul precision (activations are fp32 in the op signature; weights BF16):
 *   BE_CUDA_MM_BF16    x rounded to bf16, one BF16 GEMM with fp32
 *                      accumulation (default; what serving engines do).
 *   BE_CUDA_MM_BF16X2  x split into bf16 hi + lo parts (x - hi rounded
 *                      again), both multiplied in one GEMM of 2 x n_tok
 *                      columns and summed: about 16 mantissa bits of x, so
 *                      results within ~1e-5 relative of fp32. Weights are
 *                      read once (decode costs the same); prefill GEMMs do
 *                      twice the tensor work. Used by the parity tests.
 * F32 and F16 weights always go through fp32 GEMMs.
 *
 * Attention kernel for steps with many query rows (prefill):
 *   BE_CUDA_ATT_SIMPLE  every row on its own (cu_attention.cu; default
 *                       until the tiled kernel is validated on a GPU).
 *   BE_CUDA_ATT_TILED   tiles of 16 rows share K/V tiles in shared memory
 *                       (cu_attention_tiled.cu). Decode-sized steps use the
 *                       split decode kernel in both modes.
 */
#ifndef GR_CUDA_KNOBS_H
#define GR_CUDA_KNOBS_H

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

enum be_cuda_mm { BE_CUDA_MM_BF16 = 0, BE_CUDA_MM_BF16X2 = 1 };
enum be_cuda_att { BE_CUDA_ATT_SIMPLE = 0, BE_CUDA_ATT_TILED = 1 };

/* Sets the matmul precision of a created CUDA backend (be->ops->name is
 * "cuda"); ST_EINVAL for another backend or mode. Ops issued later use it. */
int be_cuda_set_matmul(struct be *be, enum be_cuda_mm mode);

/* Sets the attention kernel choice of a created CUDA backend; as above. */
int be_cuda_set_attention(struct be *be, enum be_cuda_att mode);

/*
 * Grows the backend's scratch buffers now, so that no step allocates later
 * (a must before CUDA graph capture, and part of the memory plan): matmul
 * scratch for activations of up to max_x elements (n_tok * n_in of the
 * largest matmul input) and, in BE_CUDA_MM_BF16X2 mode, outputs of up to
 * max_y elements (n_tok * n_out); attention's split scratch for any step.
 * Set the matmul mode first. F16 weights need up to 32 MiB more, taken on
 * first use. Returns 0, ST_EINVAL (not cuda) or ST_ENOMEM.
 */
int be_cuda_reserve(struct be *be, size_t max_x, size_t max_y);

/* Bytes be_cuda_reserve(be, max_x, max_y) holds for the given matmul mode
 * on a device with n_sm multiprocessors (for the memory plan). */
size_t be_cuda_reserve_bytes(enum be_cuda_mm mode, size_t max_x, size_t max_y, int n_sm);

#ifdef __cplusplus
}
#endif

#endif
