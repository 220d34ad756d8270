/*
 * cu_norm_rope.cu - RMSNorm and RoPE on the CUDA backend.
 *
 * RMSNorm: one block per row; the sum of squares is accumulated in fp32
 * per thread, reduced with warp shuffles and then across warps in shared
 * memory (a fixed order per row, so the result does not depend on the
 * batch); the final 1/sqrt(mean + eps) is taken in double like the CPU
 * reference. out = x * r * (1 + w), w in its stored dtype; out may be x.
 *
 * RoPE (rotate-half): one block per token. The block first builds the
 * token's cos/sin table in shared memory the way the CPU reference does
 * (inv_freq_i = theta^(-2i/head_dim) in double rounded to float, the angle
 * pos * inv_freq_i in fp32, cos/sin of that angle in double rounded to
 * float), then rotates every head of the token with it.
 */
#include "kernels/cuda/cu_internal.cuh"

#define NORM_THREADS 256
#define ROPE_THREADS 128
#define ROPE_MAX_HALF 512

/* ---- RMSNorm ---- */

template <typename W>
__global__ void __launch_bounds__(NORM_THREADS)
rmsnorm_kernel(float *out, const float *x, const W *w, int d, float eps)
{
	__shared__ float red[NORM_THREADS / 32];
	__shared__ float r_s;
	const float *xr = x + (size_t)blockIdx.x * d;
	float *o = out + (size_t)blockIdx.x * d;
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	float ss = 0.0f, r;

	for (int i = threadIdx.x; i < d; i += NORM_THREADS) {
		float v = xr[i];
		ss = fmaf(v, v, ss);
	}
	ss = cu_warp_sum(ss);
	if (lane == 0)
		red[warp] = ss;
	__syncthreads();
	if (warp == 0) {
		float v = lane < NORM_THREADS / 32 ? red[lane] : 0.0f;
		v = cu_warp_sum(v);
		if (lane == 0)
			r_s = (float)(1.0 / sqrt((double)v / (double)d + (double)eps));
	}
	__syncthreads();
	r = r_s;
	for (int i = threadIdx.x; i < d; i += NORM_THREADS)
		o[i] = (xr[i] * r) * (1.0f + cu_ld(w, (size_t)i));
}

int cu_rmsnorm(void *ctx, float *out, const float *x, const void *w, enum be_dtype wdt,
	       int n_tok, int d, float eps)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (n_tok < 0 || d <= 0)
		return ST_EINVAL;
	if (n_tok == 0)
		return 0;
	switch (wdt) {
	case BE_F32:
		rmsnorm_kernel<<<n_tok, NORM_THREADS, 0, c->stream>>>(out, x, (const float *)w, d,
								       eps);
		break;
	case BE_BF16:
		rmsnorm_kernel<<<n_tok, NORM_THREADS, 0, c->stream>>>(
			out, x, (const __nv_bfloat16 *)w, d, eps);
		break;
	case BE_F16:
		rmsnorm_kernel<<<n_tok, NORM_THREADS, 0, c->stream>>>(out, x, (const __half *)w, d,
								       eps);
		break;
	default:
		return ST_EINVAL;
	}
	CU_CHECK_LAUNCH();
	return 0;
}

/* ---- RoPE ---- */

__global__ void __launch_bounds__(ROPE_THREADS)
rope_kernel(float *x, const int32_t *pos, int n_heads, int head_dim, float theta)
{
	__shared__ float cs[ROPE_MAX_HALF], sn[ROPE_MAX_HALF];
	int t = blockIdx.x, half = head_dim / 2;
	float p = (float)pos[t];
	float *xt = x + (size_t)t * n_heads * head_dim;

	for (int i = threadIdx.x; i < half; i += ROPE_THREADS) {
		float inv = (float)(1.0 / pow((double)theta, (double)(2 * i) / (double)head_dim));
		float ang = p * inv;	/* fp32, as the reference */
		double s, co;
		sincos((double)ang, &s, &co);
		cs[i] = (float)co;
		sn[i] = (float)s;
	}
	__syncthreads();
	for (int k = threadIdx.x; k < n_heads * half; k += ROPE_THREADS) {
		int h = k / half, i = k - h * half;
		float *v = xt + (size_t)h * head_dim;
		float a = v[i], b = v[i + half];
		v[i] = a * cs[i] - b * sn[i];
		v[i + half] = b * cs[i] + a * sn[i];
	}
}

int cu_rope(void *ctx, float *x, const int32_t *pos, int n_tok, int n_heads, int head_dim,
	    float theta)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (n_tok < 0 || n_heads <= 0 || head_dim <= 0 || head_dim % 2 ||
	    head_dim / 2 > ROPE_MAX_HALF)
		return ST_EINVAL;
	if (n_tok == 0)
		return 0;
	rope_kernel<<<n_tok, ROPE_THREADS, 0, c->stream>>>(x, pos, n_heads, head_dim, theta);
	CU_CHECK_LAUNCH();
	return 0;
}
