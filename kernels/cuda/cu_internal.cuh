/*
 * cu_internal.cuh - internals shared by the CUDA backend's files
 * (the .cu files in kernels/cuda). Not part of the backend interface: host code sees
 * only be_cuda_ops (kernels/backend.h).
 *
 * The context owns one compute stream (every op and copy_h2d/copy_d2h is
 * issued on it, in order), CU_LANES upload streams (the loader's lanes),
 * a cuBLAS handle bound to the compute stream with its own workspace, and
 * scratch buffers that grow on demand (only while the compute stream is
 * idle; a warm-up step at the largest batch sizes them once).
 *
 * Errors: CUDA_TRY/CUBLAS_TRY log file:line and the CUDA message and
 * return ST_ECUDA; every kernel launch is followed by CU_CHECK_LAUNCH().
 * Nothing here exits.
 *
 * Build rules: CUDA 12.2 API at most (Cloud Run's driver 535); no
 * cudaDeviceProp fields removed in CUDA 13; device helpers are static
 * __forceinline__ because each .cu file is its own translation unit
 * (no -rdc).
 */
#ifndef GR_CU_INTERNAL_CUH
#define GR_CU_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "common/log.h"
#include "common/status.h"
#include "kernels/backend.h"
}
#include "kernels/cuda/cuda_knobs.h"

#define CU_LANES 4			/* upload streams */
#define CU_BLAS_WS_BYTES (32u << 20)	/* cuBLAS workspace (fixed, for graph capture later) */

#define CUDA_TRY(x)                                                                         \
	do {                                                                                \
		cudaError_t e_ = (x);                                                       \
		if (e_ != cudaSuccess)                                                      \
			return log_err(ST_ECUDA, "%s:%d: %s: %s (%s)", __FILE__, __LINE__, #x,  \
				       cudaGetErrorString(e_), cudaGetErrorName(e_));        \
	} while (0)

#define CUBLAS_TRY(x)                                                                       \
	do {                                                                                \
		cublasStatus_t s_ = (x);                                                    \
		if (s_ != CUBLAS_STATUS_SUCCESS)                                            \
			return log_err(ST_ECUDA, "%s:%d: %s: %s (%d)", __FILE__, __LINE__, #x,  \
				       cublasGetStatusString(s_), (int)s_);                  \
	} while (0)

/* After every <<<>>> launch: reports bad configurations and sticky errors. */
#define CU_CHECK_LAUNCH() CUDA_TRY(cudaGetLastError())

/* A device buffer that only grows (see cu_scratch). */
struct cu_buf {
	void *p;
	size_t bytes;
};

struct cu_ctx {
	int device;
	int n_sm;			/* multiprocessors, for work splitting */
	int cc_major, cc_minor;
	cudaStream_t stream;		/* compute: every op, copy_h2d, copy_d2h */
	cudaStream_t lanes[CU_LANES];	/* uploads */
	cublasHandle_t blas;		/* bound to stream */
	enum be_cuda_mm mm_mode;	/* BF16-weight matmul precision (cuda_knobs.h) */
	enum be_cuda_att att_mode;	/* attention kernel for many-row steps */
	void *blas_ws;			/* CU_BLAS_WS_BYTES */
	struct cu_buf mm_scratch;	/* matmul: activations/weights converted */
	struct cu_buf att_scratch;	/* attention: split partial results */
};

/* Makes c's device current on the calling thread (cheap when it already is). */
int cu_set_device(const struct cu_ctx *c);

/* First statement of every op: the engine thread need not be the one that created c. */
#define CU_ENTER(c)                                                                         \
	do {                                                                                \
		int rc_ = cu_set_device(c);                                                 \
		if (rc_ < 0)                                                                \
			return rc_;                                                         \
	} while (0)

/*
 * Returns in *out a device buffer of at least bytes from b, growing it
 * when needed: the compute stream is synchronised first, so work already
 * issued that uses the old buffer is finished. Never shrinks.
 */
int cu_scratch(struct cu_ctx *c, struct cu_buf *b, size_t bytes, void **out);

/* Grid size for a grid-stride loop over n items with `threads` per block. */
static inline unsigned cu_grid(size_t n, int threads)
{
	size_t g = (n + (size_t)threads - 1) / (size_t)threads;
	if (g < 1)
		g = 1;
	if (g > (1u << 20))
		g = 1u << 20;
	return (unsigned)g;
}

/* ---- device helpers ---- */

/* Element loads as fp32 (exact for every type). */
static __device__ __forceinline__ float cu_ld(const float *p, size_t i) { return p[i]; }
static __device__ __forceinline__ float cu_ld(const __nv_bfloat16 *p, size_t i)
{
	return __bfloat162float(p[i]);
}
static __device__ __forceinline__ float cu_ld(const __half *p, size_t i)
{
	return __half2float(p[i]);
}

/* Round-to-nearest-even stores. */
static __device__ __forceinline__ void cu_st(float *p, size_t i, float v) { p[i] = v; }
static __device__ __forceinline__ void cu_st(__nv_bfloat16 *p, size_t i, float v)
{
	p[i] = __float2bfloat16_rn(v);
}
static __device__ __forceinline__ void cu_st(__half *p, size_t i, float v)
{
	p[i] = __float2half_rn(v);
}

static __device__ __forceinline__ float cu_warp_sum(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

static __device__ __forceinline__ float cu_warp_max(float v)
{
	for (int o = 16; o > 0; o >>= 1)
		v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

/* ---- ops (one file each group; signatures as in struct be_ops) ---- */

/* cu_elementwise.cu */
int cu_embed(void *ctx, float *out, const void *table, enum be_dtype dt, const int32_t *ids,
	     int n_tok, int d, float scale);
int cu_kv_write(void *ctx, void *k_cache, void *v_cache, enum be_dtype kv_dt, const float *k,
		const float *v, const int32_t *slots, int n_tok, int kv_dim);
int cu_gelu_mul(void *ctx, float *out, const float *gate, const float *up, size_t n);
int cu_add(void *ctx, float *y, const float *x, size_t n);
int cu_softcap(void *ctx, float *x, size_t n, float cap);
int cu_gather_rows(void *ctx, float *out, const float *x, const int32_t *rows, int n_rows,
		   int d);

/* cu_norm_rope.cu */
int cu_rmsnorm(void *ctx, float *out, const float *x, const void *w, enum be_dtype wdt,
	       int n_tok, int d, float eps);
int cu_rope(void *ctx, float *x, const int32_t *pos, int n_tok, int n_heads, int head_dim,
	    float theta);

/* cu_matmul_fp8.cu */
int cu_matmul_fp8(void *ctx, float *y, const float *x, const struct be_fp8_w *w,
		  int n_tok, int n_out, int n_in);
/* cu_matmul.cu */
int cu_matmul(void *ctx, float *y, const float *x, const void *w, enum be_dtype wdt, int n_tok,
	      int n_out, int n_in);

/* cu_attention.cu */
int cu_attention(void *ctx, float *out, const float *q, const void *k_cache,
		 const void *v_cache, enum be_dtype kv_dt, const struct be_attn *a);

/* cu_sample.cu */
int cu_sample(void *ctx, struct be_sample_out *out, float *logits,
	      const struct be_sample_row *rows, struct be_sample_pair *pairs,
	      const uint32_t *masks, int n_rows, int vocab);

/* Upper bound of the attention split scratch on a device with n_sm SMs. */
size_t cu_attention_scratch_bytes(int n_sm);

/* cu_attention_tiled.cu: a validated by cu_attention, n_tok > 0. */
int cu_attention_tiled(struct cu_ctx *c, float *out, const float *q, const void *k_cache,
		       const void *v_cache, enum be_dtype kv_dt, const struct be_attn *a);

#endif
