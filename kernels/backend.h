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
 * struct be_ops (kernels/ owns them; see kernels/gemma2.c).
 */
#ifndef GR_BACKEND_H
#define GR_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct be_opts {
	int n_threads;		/* CPU worker threads (0: all cores) */
	int device;		/* CUDA device ordinal */
};

struct be_ops;

/* A created backend: its op table and its private state. */
struct be {
	const struct be_ops *ops;
	void *ctx;
};

struct be_ops {
	const char *name;
	int host_visible;
	int n_upload_lanes;

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
};

/* Backends built into this binary. be_cuda_ops exists only with GR_HAVE_CUDA. */
extern const struct be_ops be_cpu_ops;
#ifdef GR_HAVE_CUDA
extern const struct be_ops be_cuda_ops;
#endif

/*
 * Creates the backend named "cpu", "cuda" or "auto" (CUDA when a device is
 * present, else CPU; the choice is logged). A CUDA request on a machine
 * without a device, or in a CPU-only build, is a clear error.
 */
int be_create(const char *name, const struct be_opts *opts, struct be *out);
void be_destroy(struct be *be);

#endif
