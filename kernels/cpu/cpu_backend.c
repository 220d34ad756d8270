/*
 * cpu_backend.c - the CPU backend (the reference backend): lifecycle,
 * memory, upload and copies, and its op table. Device memory is host
 * memory; an upload is a memcpy done at once. The context also owns the
 * thread pool (cpu_pool.c) the compute ops use. Mirrors
 * kernels/cuda/cu_backend.cu; each op lives in cpu_X.c beside cu_X.cu.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu.h"

int cpu_create(const struct be_opts *opts, void **ctx)
{
	struct cpu_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return ST_ENOMEM;
	c->n_threads = opts && opts->n_threads > 0 ? opts->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (c->n_threads < 1)
		c->n_threads = 1;
	if (cpu_pool_start(&c->pool, c->n_threads - 1) < 0) {
		cpu_pool_stop(&c->pool);
		free(c);
		return ST_ENOMEM;
	}
	*ctx = c;
	return 0;
}

void cpu_destroy(void *ctx)
{
	struct cpu_ctx *c = ctx;
	if (!c)
		return;
	cpu_pool_stop(&c->pool);
	free(c->smp_buf);
	free(c);
}

void *cpu_alloc(void *ctx, size_t bytes)
{
	void *p = NULL;
	(void)ctx;
	if (posix_memalign(&p, 64, bytes ? (bytes + 63) / 64 * 64 : 64) != 0)
		return NULL;
	return p;
}

void cpu_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

int cpu_upload(void *ctx, void *dst, const void *src, size_t n, int lane, void (*done)(void *),
	       void *arg)
{
	(void)ctx;
	(void)lane;
	if (dst != src)
		memcpy(dst, src, n);
	if (done)
		done(arg);
	return 0;
}

int cpu_sync(void *ctx)
{
	(void)ctx;
	return 0;
}

int cpu_mem_info(void *ctx, size_t *free_bytes, size_t *total_bytes)
{
	long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES);
	long psz = sysconf(_SC_PAGESIZE);
	(void)ctx;
	if (pages < 0 || avail < 0 || psz < 0)
		return ST_EIO;
	*total_bytes = (size_t)pages * (size_t)psz;
	*free_bytes = (size_t)avail * (size_t)psz;
	return 0;
}

int cpu_copy_h2d(void *ctx, void *dst, const void *src, size_t n)
{
	(void)ctx;
	if (n)
		memcpy(dst, src, n);
	return 0;
}

int cpu_copy_d2h(void *ctx, void *dst, const void *src, size_t n)
{
	(void)ctx;
	if (n)
		memcpy(dst, src, n);
	return 0;
}

const struct be_ops be_cpu_ops = {
	.name           = "cpu",
	.host_visible   = 1,
	.n_upload_lanes = 1,
	.kv_dtype       = BE_F32,
	.create         = cpu_create,
	.destroy        = cpu_destroy,
	.alloc          = cpu_alloc,
	.free           = cpu_free,
	.host_alloc     = cpu_alloc,
	.host_free      = cpu_free,
	.upload         = cpu_upload,
	.sync           = cpu_sync,
	.mem_info       = cpu_mem_info,

	.copy_h2d       = cpu_copy_h2d,		/* dst, src_host, n */
	.copy_d2h       = cpu_copy_d2h,		/* dst_host, src, n */
	.embed          = cpu_embed,		/* out (n_tok, d), table (vocab, d) */
	.rmsnorm        = cpu_rmsnorm,		/* out, x: (n_tok, d); w (d) */
	.matmul         = cpu_matmul,		/* y (n_tok, n_out), x (n_tok, n_in), W (n_out, n_in) */
	.rope           = cpu_rope,		/* x (n_tok, n_heads*head_dim) in place */
	.kv_write       = cpu_kv_write,		/* caches (slots, kv_dim), k, v (n_tok, kv_dim) */
	.attention      = cpu_attention,	/* out, q: (n_tok, n_heads*head_dim) */
	.gelu_mul       = cpu_gelu_mul,		/* out, gate, up: (n) */
	.add            = cpu_add,		/* y += x: (n) */
	.softcap        = cpu_softcap,		/* x (n) in place */
	.gather_rows    = cpu_gather_rows,	/* out (n_rows, d), x (n, d) */
	.sample         = cpu_sample,		/* out (n_rows), logits (n_rows, vocab) */
};
