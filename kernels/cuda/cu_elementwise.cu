/*
 * cu_elementwise.cu - the CUDA backend's gather and element-wise ops:
 * embedding (gather x scale, table in F32/F16/BF16), row gather, KV cache
 * write (cache in F32/F16/BF16, round to nearest even), GELU-tanh gate,
 * residual add, soft-cap. fp32 arithmetic; each output element is written
 * by one thread, so results do not depend on the batch.
 * All launches go to the compute stream; ids, rows and slots are device
 * memory and trusted (kernels/gemma2.c validates them on the host).
 */
#include "kernels/cuda/cu_internal.cuh"

#define EW_THREADS 256

/* ---- embedding: out (n_tok, d) = table[ids[t]] * scale ---- */

template <typename T>
__global__ void embed_kernel(float *out, const T *table, const int32_t *ids, int d, float scale)
{
	int t = blockIdx.x;
	size_t base = (size_t)ids[t] * (size_t)d;
	float *o = out + (size_t)t * d;

	for (int i = threadIdx.x; i < d; i += blockDim.x)
		o[i] = cu_ld(table, base + (size_t)i) * scale;
}

int cu_embed(void *ctx, float *out, const void *table, enum be_dtype dt, const int32_t *ids,
	     int n_tok, int d, float scale)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (n_tok < 0 || d <= 0)
		return ST_EINVAL;
	if (n_tok == 0)
		return 0;
	switch (dt) {
	case BE_F32:
		embed_kernel<<<n_tok, EW_THREADS, 0, c->stream>>>(out, (const float *)table, ids, d,
								    scale);
		break;
	case BE_BF16:
		embed_kernel<<<n_tok, EW_THREADS, 0, c->stream>>>(
			out, (const __nv_bfloat16 *)table, ids, d, scale);
		break;
	case BE_F16:
		embed_kernel<<<n_tok, EW_THREADS, 0, c->stream>>>(out, (const __half *)table, ids, d,
								    scale);
		break;
	default:
		return ST_EINVAL;
	}
	CU_CHECK_LAUNCH();
	return 0;
}

/* ---- row gather: out (n_rows, d) = x[rows[r]] ---- */

__global__ void gather_rows_kernel(float *out, const float *x, const int32_t *rows, int d)
{
	int r = blockIdx.x;
	const float *src = x + (size_t)rows[r] * d;
	float *dst = out + (size_t)r * d;

	for (int i = threadIdx.x; i < d; i += blockDim.x)
		dst[i] = src[i];
}

int cu_gather_rows(void *ctx, float *out, const float *x, const int32_t *rows, int n_rows, int d)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (n_rows < 0 || d <= 0)
		return ST_EINVAL;
	if (n_rows == 0)
		return 0;
	gather_rows_kernel<<<n_rows, EW_THREADS, 0, c->stream>>>(out, x, rows, d);
	CU_CHECK_LAUNCH();
	return 0;
}

/* ---- KV write: cache[slots[t]] = k[t], v[t] (kv_dim values, converted) ---- */

template <typename T>
__global__ void kv_write_kernel(T *kc, T *vc, const float *k, const float *v,
				const int32_t *slots, int kv_dim)
{
	int t = blockIdx.x;
	int32_t slot = slots[t];
	size_t dst = (size_t)slot * (size_t)kv_dim, src = (size_t)t * (size_t)kv_dim;

	if (slot < 0)		/* padding token: nothing to store */
		return;
	for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
		cu_st(kc, dst + i, k[src + i]);
		cu_st(vc, dst + i, v[src + i]);
	}
}

int cu_kv_write(void *ctx, void *k_cache, void *v_cache, enum be_dtype kv_dt, const float *k,
		const float *v, const int32_t *slots, int n_tok, int kv_dim)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (n_tok < 0 || kv_dim <= 0)
		return ST_EINVAL;
	if (n_tok == 0)
		return 0;
	switch (kv_dt) {
	case BE_F32:
		kv_write_kernel<<<n_tok, EW_THREADS, 0, c->stream>>>(
			(float *)k_cache, (float *)v_cache, k, v, slots, kv_dim);
		break;
	case BE_BF16:
		kv_write_kernel<<<n_tok, EW_THREADS, 0, c->stream>>>(
			(__nv_bfloat16 *)k_cache, (__nv_bfloat16 *)v_cache, k, v, slots, kv_dim);
		break;
	case BE_F16:
		kv_write_kernel<<<n_tok, EW_THREADS, 0, c->stream>>>(
			(__half *)k_cache, (__half *)v_cache, k, v, slots, kv_dim);
		break;
	default:
		return ST_EINVAL;
	}
	CU_CHECK_LAUNCH();
	return 0;
}

/* ---- element-wise (grid-stride loops over n values) ---- */

__global__ void gelu_mul_kernel(float *out, const float *gate, const float *up, size_t n)
{
	const float k0 = 0.7978845608028654f;	/* sqrt(2/pi) */

	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		float g = gate[i];
		float t = tanhf(k0 * (g + 0.044715f * (g * g * g)));
		out[i] = (0.5f * g * (1.0f + t)) * up[i];
	}
}

int cu_gelu_mul(void *ctx, float *out, const float *gate, const float *up, size_t n)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (!n)
		return 0;
	gelu_mul_kernel<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(out, gate, up, n);
	CU_CHECK_LAUNCH();
	return 0;
}

__global__ void add_kernel(float *y, const float *x, size_t n)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		y[i] += x[i];
}

int cu_add(void *ctx, float *y, const float *x, size_t n)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (!n)
		return 0;
	add_kernel<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(y, x, n);
	CU_CHECK_LAUNCH();
	return 0;
}

__global__ void softcap_kernel(float *x, size_t n, float cap)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		x[i] = cap * tanhf(x[i] / cap);
}

int cu_softcap(void *ctx, float *x, size_t n, float cap)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (!(cap > 0))
		return ST_EINVAL;
	if (!n)
		return 0;
	softcap_kernel<<<cu_grid(n, EW_THREADS), EW_THREADS, 0, c->stream>>>(x, n, cap);
	CU_CHECK_LAUNCH();
	return 0;
}
