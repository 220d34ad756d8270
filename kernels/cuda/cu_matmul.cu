/*
 * cu_matmul.cu - y (n_tok, n_out) = x (n_tok, n_in) * W^T on the CUDA
 * backend, every token of the step in one cuBLAS GEMM.
 *
 * Row-major to cuBLAS (column-major): W (n_out, n_in) row-major is a
 * column-major (n_in, n_out) matrix with ld n_in, used transposed; x
 * (n_tok, n_in) row-major is column-major (n_in, n_tok), used as is; y
 * (n_tok, n_out) row-major is column-major (n_out, n_tok). So
 *   C (m = n_out, n = n_tok) = op_T(W) (n_out x n_in) * x (n_in x n_tok).
 *
 * Per weight dtype:
 *   BF16  x is rounded to bf16 (nearest even) into scratch, then
 *         cublasGemmEx(BF16 x BF16 -> F32, CUBLAS_COMPUTE_32F): tensor cores,
 *         fp32 accumulation. The rounding of x is the only loss against the
 *         fp32 reference (relative 2^-9 per product). In BE_CUDA_MM_BF16X2
 *         mode (cuda_knobs.h) x = hi + lo, both bf16, the scratch holds the
 *         2 x n_tok columns [hi; lo], one GEMM writes (2 x n_tok, n_out) fp32
 *         into scratch and a kernel sums the halves into y.
 *   F32   cublasSgemm (CUBLAS_DEFAULT_MATH: no TF32).
 *   F16   rows of W are widened to fp32 into scratch in chunks of at most
 *         MM_F16_CHUNK bytes and multiplied with cublasSgemm: f16
 *         activations could overflow (Gemma 2's residual stream exceeds
 *         65504), and f16 weights are rare (the loader converts to bf16).
 */
#include <limits.h>
#include <string.h>

#include "kernels/cuda/cu_internal.cuh"

#define CVT_THREADS 256
#define MM_F16_CHUNK ((size_t)32 << 20)

/* dst[i] = bf16(x[i]), dst[n + i] = bf16(x[i] - dst[i]). */
__global__ void split_bf16_kernel(__nv_bfloat16 *dst, const float *x, size_t n)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		__nv_bfloat16 hi = __float2bfloat16_rn(x[i]);
		dst[i] = hi;
		dst[n + i] = __float2bfloat16_rn(x[i] - __bfloat162float(hi));
	}
}

/* y[i] = y2[i] + y2[n + i]. */
__global__ void sum_halves_kernel(float *y, const float *y2, size_t n)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		y[i] = y2[i] + y2[n + i];
}

template <typename D, typename S>
__global__ void convert_kernel(D *dst, const S *src, size_t n)
{
	for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		cu_st(dst, i, cu_ld(src, i));
}

static int mm_bf16(struct cu_ctx *c, float *y, const float *x, const void *w, int n_tok,
		   int n_out, int n_in)
{
	size_t n = (size_t)n_tok * (size_t)n_in;
	const float alpha = 1.0f, beta = 0.0f;
	void *xb;
	int rc;

	if ((rc = cu_scratch(c, &c->mm_scratch, n * sizeof(__nv_bfloat16), &xb)) < 0)
		return rc;
	convert_kernel<<<cu_grid(n, CVT_THREADS), CVT_THREADS, 0, c->stream>>>(
		(__nv_bfloat16 *)xb, x, n);
	CU_CHECK_LAUNCH();
	CUBLAS_TRY(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, n_out, n_tok, n_in, &alpha,
				w, CUDA_R_16BF, n_in, xb, CUDA_R_16BF, n_in, &beta, y, CUDA_R_32F,
				n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
	return 0;
}

static int mm_bf16x2(struct cu_ctx *c, float *y, const float *x, const void *w, int n_tok,
		     int n_out, int n_in)
{
	size_t nx = (size_t)n_tok * (size_t)n_in, ny = (size_t)n_tok * (size_t)n_out;
	size_t y_off = (2 * nx * sizeof(__nv_bfloat16) + 255) & ~(size_t)255;
	const float alpha = 1.0f, beta = 0.0f;
	void *buf;
	__nv_bfloat16 *xb;
	float *y2;
	int rc;

	if ((long long)2 * n_tok > INT_MAX)
		return ST_EINVAL;
	if ((rc = cu_scratch(c, &c->mm_scratch, y_off + 2 * ny * sizeof(float), &buf)) < 0)
		return rc;
	xb = (__nv_bfloat16 *)buf;
	y2 = (float *)((char *)buf + y_off);
	split_bf16_kernel<<<cu_grid(nx, CVT_THREADS), CVT_THREADS, 0, c->stream>>>(xb, x, nx);
	CU_CHECK_LAUNCH();
	CUBLAS_TRY(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, n_out, 2 * n_tok, n_in, &alpha,
				w, CUDA_R_16BF, n_in, xb, CUDA_R_16BF, n_in, &beta, y2, CUDA_R_32F,
				n_out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
	sum_halves_kernel<<<cu_grid(ny, CVT_THREADS), CVT_THREADS, 0, c->stream>>>(y, y2, ny);
	CU_CHECK_LAUNCH();
	return 0;
}

static int mm_f32(struct cu_ctx *c, float *y, const float *x, const float *w, int n_tok,
		  int n_out, int n_in)
{
	const float alpha = 1.0f, beta = 0.0f;

	CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, n_out, n_tok, n_in, &alpha, w,
			       n_in, x, n_in, &beta, y, n_out));
	return 0;
}

static int mm_f16(struct cu_ctx *c, float *y, const float *x, const __half *w, int n_tok,
		  int n_out, int n_in)
{
	size_t row_bytes = (size_t)n_in * sizeof(float);
	int rows = (int)(MM_F16_CHUNK / row_bytes);
	const float alpha = 1.0f, beta = 0.0f;
	void *wf;
	int rc;

	if (rows < 1)
		rows = 1;
	if (rows > n_out)
		rows = n_out;
	if ((rc = cu_scratch(c, &c->mm_scratch, (size_t)rows * row_bytes, &wf)) < 0)
		return rc;
	for (int r0 = 0; r0 < n_out; r0 += rows) {
		int m = n_out - r0 < rows ? n_out - r0 : rows;
		size_t n = (size_t)m * (size_t)n_in;
		convert_kernel<<<cu_grid(n, CVT_THREADS), CVT_THREADS, 0, c->stream>>>(
			(float *)wf, w + (size_t)r0 * n_in, n);
		CU_CHECK_LAUNCH();
		CUBLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, m, n_tok, n_in, &alpha,
				       (const float *)wf, n_in, x, n_in, &beta, y + r0, n_out));
	}
	return 0;
}

int cu_matmul(void *ctx, float *y, const float *x, const void *w, enum be_dtype wdt, int n_tok,
	      int n_out, int n_in)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (n_tok < 0 || n_out <= 0 || n_in <= 0)
		return ST_EINVAL;
	if (n_tok == 0)
		return 0;
	switch (wdt) {
	case BE_BF16:
		if (c->mm_mode == BE_CUDA_MM_BF16X2)
			return mm_bf16x2(c, y, x, w, n_tok, n_out, n_in);
		return mm_bf16(c, y, x, w, n_tok, n_out, n_in);
	case BE_F32:
		return mm_f32(c, y, x, (const float *)w, n_tok, n_out, n_in);
	case BE_F16:
		return mm_f16(c, y, x, (const __half *)w, n_tok, n_out, n_in);
	default:
		return ST_EINVAL;
	}
}

extern "C" int be_cuda_set_matmul(struct be *be, enum be_cuda_mm mode)
{
	if (!be || !be->ops || !be->ctx || strcmp(be->ops->name, "cuda") != 0)
		return log_err(ST_EINVAL, "cuda: be_cuda_set_matmul on a backend that is not cuda");
	if (mode != BE_CUDA_MM_BF16 && mode != BE_CUDA_MM_BF16X2)
		return log_err(ST_EINVAL, "cuda: unknown matmul mode %d", (int)mode);
	((struct cu_ctx *)be->ctx)->mm_mode = mode;
	return 0;
}

/* Matmul scratch bytes for activations of max_x and outputs of max_y elements. */
static size_t mm_scratch_bytes(enum be_cuda_mm mode, size_t max_x, size_t max_y)
{
	if (mode == BE_CUDA_MM_BF16X2)
		return ((2 * max_x * sizeof(__nv_bfloat16) + 255) & ~(size_t)255) +
		       2 * max_y * sizeof(float);
	return max_x * sizeof(__nv_bfloat16);
}

extern "C" size_t be_cuda_reserve_bytes(enum be_cuda_mm mode, size_t max_x, size_t max_y,
				       int n_sm)
{
	return mm_scratch_bytes(mode, max_x, max_y) + cu_attention_scratch_bytes(n_sm);
}

extern "C" int be_cuda_reserve(struct be *be, size_t max_x, size_t max_y)
{
	struct cu_ctx *c;
	void *p;
	int rc;

	if (!be || !be->ops || !be->ctx || strcmp(be->ops->name, "cuda") != 0)
		return log_err(ST_EINVAL, "cuda: be_cuda_reserve on a backend that is not cuda");
	c = (struct cu_ctx *)be->ctx;
	CU_ENTER(c);
	if ((rc = cu_scratch(c, &c->mm_scratch, mm_scratch_bytes(c->mm_mode, max_x, max_y), &p)) < 0)
		return rc;
	return cu_scratch(c, &c->att_scratch, cu_attention_scratch_bytes(c->n_sm), &p);
}
