/*
 * be_null.c - the "null" backend: the device half of the loader's GPU path
 * without a device, so that `gemma-run load --backend null` measures the
 * loader (sources, workers, the pinned staging ring, CRC while hot) on any
 * machine. Not host-visible: the loader stages every chunk through its ring
 * and calls upload, which checks that the bytes land inside the arena,
 * counts them, drops them and gives the ring slot back at once.
 *
 * It has no compute ops (every one is NULL) and no memory info: it cannot
 * run a model, only be loaded into. The arena is address space reserved
 * with PROT_NONE (no page is ever touched), so its pointers are unique and
 * any read of "device" memory faults instead of returning zeros.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/backend.h"

struct null_ctx {
	char *arena;			/* reserved, PROT_NONE; one arena at a time */
	size_t arena_bytes;
	_Atomic uint64_t uploaded;	/* bytes accepted by upload */
	_Atomic uint64_t n_uploads;
};

static int null_create(const struct be_opts *opts, void **ctx)
{
	(void)opts;
	return (*ctx = calloc(1, sizeof(struct null_ctx))) ? 0 : ST_ENOMEM;
}

static void null_destroy(void *ctx)
{
	struct null_ctx *c = ctx;
	if (c && (c->n_uploads || c->uploaded))
		log_debug("backend null: %llu uploads, %llu bytes dropped", (unsigned long long)c->n_uploads,
			  (unsigned long long)c->uploaded);
	free(c);
}

static void *null_alloc(void *ctx, size_t bytes)
{
	struct null_ctx *c = ctx;
	if (c->arena || bytes == 0)
		return NULL;
	void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	c->arena = p;
	c->arena_bytes = bytes;
	return p;
}

static void null_free(void *ctx, void *p)
{
	struct null_ctx *c = ctx;
	if (p && p == c->arena) {
		munmap(c->arena, c->arena_bytes);
		c->arena = NULL;
		c->arena_bytes = 0;
	}
}

/*
 * Staging memory behaves as CUDA's pinned memory does: resident from the
 * start (cudaHostAlloc maps and locks every page), so the loader's reads
 * never take a first-touch fault in it. Transparent huge pages where the
 * kernel allows them (2 MiB faults instead of 4 KiB ones), then every page
 * touched once here, on the ring's allocation thread.
 */
static void *null_host_alloc(void *ctx, size_t bytes)
{
	const size_t huge = 2u << 20;
	size_t n = (bytes + huge - 1) / huge * huge;
	void *mem = NULL;
	(void)ctx;
	if (bytes == 0 || posix_memalign(&mem, huge, n) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(mem, n, MADV_HUGEPAGE);
#endif
	for (size_t off = 0; off < n; off += 4096)
		((volatile char *)mem)[off] = 0;
	return mem;
}

static void null_host_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* Checks that [dst, dst+n) lies in the arena, counts the bytes, drops them, frees the slot. */
static int null_upload(void *ctx, void *dst, const void *src, size_t n, int lane, void (*done)(void *arg),
		       void *arg)
{
	struct null_ctx *c = ctx;
	uintptr_t d = (uintptr_t)dst, a = (uintptr_t)c->arena;
	(void)lane;
	if (!src || !c->arena || d < a || n > c->arena_bytes || d - a > c->arena_bytes - n)
		return log_err(ST_EINVAL, "backend null: upload of %zu bytes outside the %zu-byte arena", n,
			       c->arena_bytes);
	atomic_fetch_add(&c->uploaded, n);
	atomic_fetch_add(&c->n_uploads, 1);
	if (done)
		done(arg);
	return 0;
}

static int null_sync(void *ctx)
{
	(void)ctx;
	return 0;
}

const struct be_ops be_null_ops = {
	.name = "null",
	.host_visible = 0,
	.n_upload_lanes = 1,
	.kv_dtype = BE_BF16,
	.create = null_create,
	.destroy = null_destroy,
	.alloc = null_alloc,
	.free = null_free,
	.host_alloc = null_host_alloc,
	.host_free = null_host_free,
	.upload = null_upload,
	.sync = null_sync,
};
