/*
 * backend.h - the one interface between the model code and a compute device.
 *
 * A backend is a static const struct be_ops (designated initializers) plus a
 * context it creates. kernels/gemma2.c is written once against it; the CPU
 * backend (kernels/cpu/) is the reference, the CUDA backend (kernels/cuda/)
 * is checked against it op by op.
 *
 * Memory and upload (used by the loader):
 *   alloc/free        device memory (CPU: host memory, 64-byte aligned)
 *   host_alloc/free   staging memory for the loader's ring (CUDA: cudaHostAlloc)
 *   upload            copy n bytes host -> device on one of n_upload_lanes
 *                     lanes (streams); done(arg) runs once the host buffer
 *                     may be reused. It may run on another thread and must
 *                     not call back into the backend.
 *   host_visible      device memory is host memory: the loader may read file
 *                     bytes straight into their final place (CPU backend).
 *
 * The compute ops of the Gemma 2 forward are declared in the second part of
 * struct be_ops (kernels/ owns them; see kernels/gemma2.c). Conventions:
 *   - every tensor pointer is device memory (CPU: host memory from alloc);
 *     only copy_h2d's src and copy_d2h's dst are host memory;
 *   - output first, then inputs, then sizes; activations are fp32, row-major
 *     (n_tok, width); weights keep their stored dtype (enum be_dtype) and are
 *     upcast to fp32 inside the op;
 *   - ops are batched over all tokens of a step and issued in order on one
 *     compute stream; copy_d2h returns once the bytes are on the host;
 *   - each op returns 0 or a negative enum status (ST_EINVAL bad sizes,
 *     ST_ENOSYS dtype not supported by this backend);
 *   - the result for one token row never depends on how many rows are in the
 *     batch or how the work is split over threads (batch invariance): the
 *     CPU backend keeps the same accumulation order for every row.
 */
#ifndef GR_BACKEND_H
#define GR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/sample.h"

struct be_opts {
	int n_threads;		/* CPU worker threads (0: all cores) */
	int device;		/* CUDA device ordinal */
};

struct be_ops;

/* Element type of a weight or cache buffer. */
enum be_dtype { BE_F32 = 0, BE_F16 = 1, BE_BF16 = 2, BE_F8_E4M3 = 3 };

/* How an FP8 matmul treats its activations (compressed-tensors input_activations). */
enum be_fp8_act {
	BE_FP8_ACT_NONE = 0,	/* weight-only (W8A16): x is used in fp32 as it is */
	BE_FP8_ACT_TOKEN = 1,	/* dynamic per token: s_t = max(amax(x_t)/448, 1/(448*512)),
				 * x_t -> e4m3(x_t / s_t) (RNE, saturating), as vLLM */
	BE_FP8_ACT_STATIC = 2,	/* one stored scale (in_scale) for every token */
};

/*
 * An FP8 E4M3 weight (kernels/fp8.h) with its scales, as the matmul_fp8 op
 * takes it. The struct is host memory; every pointer in it is device memory.
 * Dequantised weight W[o][i] = e4m3(w[o][i]) * scale[per_channel ? o : 0].
 */
struct be_fp8_w {
	const uint8_t *w;		/* (n_out, n_in) e4m3 codes */
	const void *scale;		/* [n_out] (per_channel) or [1]; scale_dt */
	enum be_dtype scale_dt;		/* BF16, F16 or F32 */
	int per_channel;
	enum be_fp8_act act;
	const void *in_scale;		/* [1] in in_scale_dt: BE_FP8_ACT_STATIC only */
	enum be_dtype in_scale_dt;
};

/*
 * Attention over the paged KV cache, for n_tok query tokens of any number
 * of sequences. The cache of one layer is (n_slots, n_kv_heads*head_dim)
 * for K and the same for V, slot = block * block_size + offset. Key j
 * (position j) of the sequence in row s of block_tables lives in slot
 * block_tables[s*max_blocks + j/block_size]*block_size + j%block_size.
 * Query token t (sequence seq[t], position pos[t]) sees keys j with
 * j <= pos[t], and pos[t] - window < j when window > 0; all of them must
 * already be written (kv_write of this step comes first).
 */
struct be_attn {
	int n_tok;
	int n_heads, n_kv_heads, head_dim;	/* query head h uses kv head h/(n_heads/n_kv_heads) */
	int block_size;
	int max_blocks;				/* row stride of block_tables */
	float scale;				/* query_pre_attn_scalar^-0.5 */
	float softcap;				/* cap*tanh(s/cap) before the mask; 0 = none */
	int window;				/* sliding window; 0 = global */
	const int32_t *pos;			/* device [n_tok] */
	const int32_t *seq;			/* device [n_tok] row of block_tables */
	const int32_t *block_tables;		/* device [n_seqs][max_blocks] */
};

/* A created backend: its op table and its private state. */
struct be {
	const struct be_ops *ops;
	void *ctx;
};

struct be_ops {
	const char *name;
	int host_visible;
	int n_upload_lanes;
	enum be_dtype kv_dtype;		/* element type of the KV cache (cpu: BE_F32) */

	/* Creates the backend's context in *ctx; ST_ENOSYS/ST_ECUDA if no device. */
	int (*create)(const struct be_opts *opts, void **ctx);
	void (*destroy)(void *ctx);

	void *(*alloc)(void *ctx, size_t bytes);
	void (*free)(void *ctx, void *p);
	void *(*host_alloc)(void *ctx, size_t bytes);
	void (*host_free)(void *ctx, void *p);
	int (*upload)(void *ctx, void *dst, const void *src, size_t n, int lane,
		      void (*done)(void *arg), void *arg);
	/* Waits for every upload and op issued so far. */
	int (*sync)(void *ctx);
	/* Bytes of device memory free and in total (CPU: from /proc/meminfo). */
	int (*mem_info)(void *ctx, size_t *free_bytes, size_t *total_bytes);

	/* ---- compute ops (kernels/cpu/cpu_X.c, each with its CUDA twin kernels/cuda/cu_X.cu) ---- */

	/* Stream-ordered copies of per-step inputs and outputs (n bytes). copy_d2h
	 * waits until every op issued before it is done and the bytes arrived. */
	int (*copy_h2d)(void *ctx, void *dst, const void *src_host, size_t n);
	int (*copy_d2h)(void *ctx, void *dst_host, const void *src, size_t n);

	/* out (n_tok, d) = table[ids[t]] * scale; table (vocab, d) in dt. */
	int (*embed)(void *ctx, float *out, const void *table, enum be_dtype dt,
		     const int32_t *ids, int n_tok, int d, float scale);

	/* out (n_tok, d) = x / sqrt(mean(x^2) + eps) * (1 + w); w (d) in wdt;
	 * fp32 throughout; out may equal x. */
	int (*rmsnorm)(void *ctx, float *out, const float *x, const void *w, enum be_dtype wdt,
		       int n_tok, int d, float eps);

	/* y (n_tok, n_out) = x (n_tok, n_in) * W^T; W (n_out, n_in) row-major in
	 * wdt. y must not alias x. */
	int (*matmul)(void *ctx, float *y, const float *x, const void *w, enum be_dtype wdt,
		      int n_tok, int n_out, int n_in);

	/* y (n_tok, n_out) = q(x) (n_tok, n_in) * W^T * scales for an FP8 weight
	 * (struct be_fp8_w): with act TOKEN/STATIC each row of x is quantized to
	 * e4m3 first and y[t][o] = s_x[t] * s_w[o] * sum_i q(x)[t][i] w[o][i]
	 * with fp32 accumulation (vLLM's W8A8); with NONE, y = x * W^T over the
	 * dequantised weights. y must not alias x. Optional: a backend without
	 * it cannot run FP8 checkpoints (g2_model_create says so). */
	int (*matmul_fp8)(void *ctx, float *y, const float *x, const struct be_fp8_w *w,
			  int n_tok, int n_out, int n_in);

	/* In place on x (n_tok, n_heads*head_dim): rotate-half RoPE of each head
	 * at position pos[t]: inv_freq_i = theta^(-2i/head_dim), i < head_dim/2. */
	int (*rope)(void *ctx, float *x, const int32_t *pos, int n_tok, int n_heads,
		    int head_dim, float theta);

	/* k_cache[slots[t]] = k[t], v_cache[slots[t]] = v[t] (kv_dim values per
	 * slot, cache element type kv_dt; the CPU backend keeps F32). */
	int (*kv_write)(void *ctx, void *k_cache, void *v_cache, enum be_dtype kv_dt,
			const float *k, const float *v, const int32_t *slots, int n_tok, int kv_dim);

	/* out (n_tok, n_heads*head_dim) = softmax(mask(softcap(q.k * scale))) V
	 * for q (n_tok, n_heads*head_dim); see struct be_attn. */
	int (*attention)(void *ctx, float *out, const float *q, const void *k_cache,
			 const void *v_cache, enum be_dtype kv_dt, const struct be_attn *a);

	/* out[i] = gelu_tanh(gate[i]) * up[i], n values; out may equal gate or up. */
	int (*gelu_mul)(void *ctx, float *out, const float *gate, const float *up, size_t n);

	/* y[i] += x[i], n values. */
	int (*add)(void *ctx, float *y, const float *x, size_t n);

	/* x[i] = cap * tanh(x[i] / cap), n values, in place. */
	int (*softcap)(void *ctx, float *x, size_t n, float cap);

	/* out (n_rows, d) = x[rows[r]] for r < n_rows; rows is device memory. */
	int (*gather_rows)(void *ctx, float *out, const float *x, const int32_t *rows,
			   int n_rows, int d);

	/* One token per row of logits (n_rows, vocab), modified in place (masks,
	 * penalties); rows[n_rows], pairs (written: orig), masks and out[n_rows]
	 * are device memory. masks (n_rows, BE_MASK_WORDS(vocab)): row r's
	 * allowed ids when rows[r].has_mask (NULL when no row has one). The
	 * pipeline and its arithmetic: kernels/sample.h. */
	int (*sample)(void *ctx, struct be_sample_out *out, float *logits,
		      const struct be_sample_row *rows, struct be_sample_pair *pairs,
		      const uint32_t *masks, int n_rows, int vocab);
};

/*
 * Backends built into this binary. be_cuda_ops exists only with GR_HAVE_CUDA.
 * be_null_ops (be_null.c) has no compute ops: a load target that drops the
 * bytes after the staging ring, for measuring the loader without a GPU.
 */
extern const struct be_ops be_cpu_ops;
extern const struct be_ops be_null_ops;
#ifdef GR_HAVE_CUDA
extern const struct be_ops be_cuda_ops;
#endif

/*
 * Creates the backend named "cpu", "cuda", "null" or "auto" (CUDA when a device is
 * present, else CPU; the choice is logged). A CUDA request on a machine
 * without a device, or in a CPU-only build, is a clear error.
 */
int be_create(const char *name, const struct be_opts *opts, struct be *out);
void be_destroy(struct be *be);

#endif
