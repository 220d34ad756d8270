/*
 * cu_backend.cu - the CUDA backend's lifecycle, memory, uploads and
 * stream-ordered copies, and its op table be_cuda_ops.
 *
 * create: picks be_opts.device, fails with ST_ECUDA and a clear message
 * when the runtime reports no device (or no usable driver), then makes the
 * compute stream, CU_LANES upload streams and a cuBLAS handle bound to the
 * compute stream with a fixed workspace.
 * upload: cudaMemcpyAsync on lane % CU_LANES, then cudaLaunchHostFunc(done)
 * on the same stream, so done runs once the copy no longer needs the host
 * buffer (done is the loader's and must not call CUDA). On an error done is
 * never called and the host buffer is no longer read when upload returns.
 * The KV cache element type is BF16 (be_cuda_ops.kv_dtype); kv_write and
 * attention also take F32 and F16 caches.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cu_internal.cuh"

/* The device last made current on this thread, to skip redundant cudaSetDevice. */
static __thread int cu_cur_dev = -1;

int cu_set_device(const struct cu_ctx *c)
{
	if (cu_cur_dev == c->device)
		return 0;
	CUDA_TRY(cudaSetDevice(c->device));
	cu_cur_dev = c->device;
	return 0;
}

int cu_scratch(struct cu_ctx *c, struct cu_buf *b, size_t bytes, void **out)
{
	size_t want;
	void *p = NULL;
	cudaError_t e;

	if (bytes == 0)
		bytes = 1;
	if (bytes <= b->bytes && b->p) {
		*out = b->p;
		return 0;
	}
	want = (bytes + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);	/* whole MiB */
	CUDA_TRY(cudaStreamSynchronize(c->stream));
	if (b->p) {
		CUDA_TRY(cudaFree(b->p));
		b->p = NULL;
		b->bytes = 0;
	}
	if ((e = cudaMalloc(&p, want)) != cudaSuccess)
		return log_err(ST_ENOMEM, "cuda: cannot allocate %zu bytes of scratch: %s", want,
			       cudaGetErrorString(e));
	b->p = p;
	b->bytes = want;
	log_debug("cuda: scratch grown to %zu bytes", want);
	*out = p;
	return 0;
}

static void cu_destroy(void *ctx)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	if (!c)
		return;
	cudaSetDevice(c->device);
	cu_cur_dev = c->device;
	if (c->stream)
		cudaStreamSynchronize(c->stream);
	for (int i = 0; i < CU_LANES; i++)
		if (c->lanes[i])
			cudaStreamSynchronize(c->lanes[i]);
	if (c->blas)
		cublasDestroy(c->blas);
	cudaFree(c->blas_ws);
	cudaFree(c->mm_scratch.p);
	cudaFree(c->att_scratch.p);
	for (int i = 0; i < CU_LANES; i++)
		if (c->lanes[i])
			cudaStreamDestroy(c->lanes[i]);
	if (c->stream)
		cudaStreamDestroy(c->stream);
	cudaGetLastError();	/* leave no sticky error behind from teardown */
	free(c);
}

/* Everything after the device is known to exist; c is freed by the caller on error. */
static int cu_setup(struct cu_ctx *c)
{
	struct cudaDeviceProp prop;
	size_t free_b = 0, total_b = 0;

	CUDA_TRY(cudaSetDevice(c->device));
	cu_cur_dev = c->device;
	CUDA_TRY(cudaGetDeviceProperties(&prop, c->device));
	c->n_sm = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
	c->cc_major = prop.major;
	c->cc_minor = prop.minor;
	CUDA_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
	for (int i = 0; i < CU_LANES; i++)
		CUDA_TRY(cudaStreamCreateWithFlags(&c->lanes[i], cudaStreamNonBlocking));
	CUBLAS_TRY(cublasCreate(&c->blas));
	CUBLAS_TRY(cublasSetStream(c->blas, c->stream));
	CUBLAS_TRY(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));	/* no TF32 for fp32 GEMMs */
	CUDA_TRY(cudaMalloc(&c->blas_ws, CU_BLAS_WS_BYTES));
	CUBLAS_TRY(cublasSetWorkspace(c->blas, c->blas_ws, CU_BLAS_WS_BYTES));
	CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
	log_info("cuda: device %d %s, compute capability %d.%d, %d SMs, %.1f GiB (%.1f GiB free)",
		 c->device, prop.name, prop.major, prop.minor, c->n_sm,
		 (double)total_b / (1u << 30), (double)free_b / (1u << 30));
	if (prop.major < 9 && !(prop.major == 8 && prop.minor == 9))
		log_warn("cuda: device %d has compute capability %d.%d; this build carries sm_89 and "
			 "sm_90 code and compute_90 PTX only, so kernels will not load", c->device,
			 prop.major, prop.minor);
	return 0;
}

static int cu_create(const struct be_opts *opts, void **ctx)
{
	struct cu_ctx *c;
	int n = 0, dev = opts ? opts->device : 0, rc;
	cudaError_t e;

	*ctx = NULL;
	e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n <= 0) {
		cudaGetLastError();
		log_warn("cuda: no usable CUDA device (cudaGetDeviceCount: %s; this build needs an "
			 "NVIDIA GPU and a driver for CUDA %d.%d or newer)",
			 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices", CUDART_VERSION / 1000,
			 CUDART_VERSION % 1000 / 10);
		return ST_ECUDA;
	}
	if (dev < 0 || dev >= n)
		return log_err(ST_EINVAL, "cuda: device %d does not exist (%d device%s)", dev, n,
			       n == 1 ? "" : "s");
	c = (struct cu_ctx *)calloc(1, sizeof(*c));
	if (!c)
		return ST_ENOMEM;
	c->device = dev;
	if ((rc = cu_setup(c)) < 0) {
		cu_destroy(c);
		return rc;
	}
	*ctx = c;
	return 0;
}

/* ---- memory ---- */

static void *cu_alloc(void *ctx, size_t bytes)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	void *p = NULL;
	cudaError_t e;

	if (cu_set_device(c) < 0)
		return NULL;
	if ((e = cudaMalloc(&p, bytes ? bytes : 256)) != cudaSuccess) {
		cudaGetLastError();
		log_err(ST_ENOMEM, "cuda: cannot allocate %zu bytes of device memory: %s", bytes,
			cudaGetErrorString(e));
		return NULL;
	}
	return p;
}

static void cu_free(void *ctx, void *p)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	cudaError_t e;

	if (!p || cu_set_device(c) < 0)
		return;
	if ((e = cudaFree(p)) != cudaSuccess)
		log_err(ST_ECUDA, "cuda: cudaFree: %s", cudaGetErrorString(e));
}

static void *cu_host_alloc(void *ctx, size_t bytes)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	void *p = NULL;
	cudaError_t e;

	if (cu_set_device(c) < 0)
		return NULL;
	if ((e = cudaHostAlloc(&p, bytes ? bytes : 256, cudaHostAllocPortable)) != cudaSuccess) {
		cudaGetLastError();
		log_err(ST_ENOMEM, "cuda: cannot allocate %zu bytes of pinned host memory: %s", bytes,
			cudaGetErrorString(e));
		return NULL;
	}
	return p;
}

static void cu_host_free(void *ctx, void *p)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	cudaError_t e;

	if (!p || cu_set_device(c) < 0)
		return;
	if ((e = cudaFreeHost(p)) != cudaSuccess)
		log_err(ST_ECUDA, "cuda: cudaFreeHost: %s", cudaGetErrorString(e));
}

static int cu_upload(void *ctx, void *dst, const void *src, size_t n, int lane,
		     void (*done)(void *arg), void *arg)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	cudaStream_t s;
	cudaError_t e;
	int rc;

	if ((rc = cu_set_device(c)) < 0)
		return rc;
	s = c->lanes[(unsigned)lane % CU_LANES];
	if (n)
		CUDA_TRY(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, s));
	if (done && (e = cudaLaunchHostFunc(s, done, arg)) != cudaSuccess) {
		/* The copy is already queued and the caller reuses src on an error:
		 * wait until the lane no longer reads it (the contract above). */
		cudaStreamSynchronize(s);
		return log_err(ST_ECUDA, "cuda: cudaLaunchHostFunc: %s (%s)", cudaGetErrorString(e),
			       cudaGetErrorName(e));
	}
	return 0;
}

static int cu_sync(void *ctx)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	int rc;

	if ((rc = cu_set_device(c)) < 0)
		return rc;
	for (int i = 0; i < CU_LANES; i++)
		CUDA_TRY(cudaStreamSynchronize(c->lanes[i]));
	CUDA_TRY(cudaStreamSynchronize(c->stream));
	return 0;
}

static int cu_mem_info(void *ctx, size_t *free_bytes, size_t *total_bytes)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	int rc;

	if ((rc = cu_set_device(c)) < 0)
		return rc;
	CUDA_TRY(cudaMemGetInfo(free_bytes, total_bytes));
	return 0;
}

/* ---- stream-ordered copies ---- */

static int cu_copy_h2d(void *ctx, void *dst, const void *src, size_t n)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	int rc;

	if (!n)
		return 0;
	if ((rc = cu_set_device(c)) < 0)
		return rc;
	CUDA_TRY(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, c->stream));
	return 0;
}

static int cu_copy_d2h(void *ctx, void *dst, const void *src, size_t n)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	int rc;

	if ((rc = cu_set_device(c)) < 0)
		return rc;
	if (n)
		CUDA_TRY(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, c->stream));
	CUDA_TRY(cudaStreamSynchronize(c->stream));
	return 0;
}

/* In the order of struct be_ops (C++ designated initializers must be). */
extern "C" const struct be_ops be_cuda_ops = {
	.name           = "cuda",
	.host_visible   = 0,
	.n_upload_lanes = CU_LANES,
	.kv_dtype       = BE_BF16,
	.create         = cu_create,
	.destroy        = cu_destroy,
	.alloc          = cu_alloc,
	.free           = cu_free,
	.host_alloc     = cu_host_alloc,
	.host_free      = cu_host_free,
	.upload         = cu_upload,
	.sync           = cu_sync,
	.mem_info       = cu_mem_info,

	.copy_h2d       = cu_copy_h2d,		/* dst, src_host, n */
	.copy_d2h       = cu_copy_d2h,		/* dst_host, src, n */
	.embed          = cu_embed,		/* out (n_tok, d), table (vocab, d) */
	.rmsnorm        = cu_rmsnorm,		/* out, x: (n_tok, d); w (d) */
	.matmul         = cu_matmul,		/* y (n_tok, n_out), x (n_tok, n_in), W (n_out, n_in) */
	.matmul_fp8     = cu_matmul_fp8,	/* the same for an FP8 E4M3 W with its scales */
	.rope           = cu_rope,		/* x (n_tok, n_heads*head_dim) in place */
	.kv_write       = cu_kv_write,		/* caches (slots, kv_dim), k, v (n_tok, kv_dim) */
	.attention      = cu_attention,		/* out, q: (n_tok, n_heads*head_dim) */
	.gelu_mul       = cu_gelu_mul,		/* out, gate, up: (n) */
	.add            = cu_add,		/* y += x: (n) */
	.softcap        = cu_softcap,		/* x (n) in place */
	.gather_rows    = cu_gather_rows,	/* out (n_rows, d), x (n, d) */
	.sample         = cu_sample,		/* out (n_rows), logits (n_rows, vocab) */
};
