/*
 * cpu_backend.c - the CPU backend (the reference backend): lifecycle,
 * memory, upload and copies, and its op table. Device memory is host
 * memory; an upload is a memcpy done at once. The context also owns the
 * thread pool (cpu_pool.c) the compute ops use. Mirrors
 * kernels/cuda/cu_backend.cu; each op lives in cpu_X.c beside cu_X.cu.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu.h"

/* A small text file whole into buf (NUL-terminated); 0 or ST_EIO. */
static int read_small(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	size_t got;
	if (!f)
		return ST_EIO;
	got = fread(buf, 1, n - 1, f);
	buf[got] = 0;
	fclose(f);
	return got ? 0 : ST_EIO;
}

int cpu_quota_parse(const char *text, long long *quota, long long *period)
{
	char *end;
	const char *p = text;

	if (strncmp(p, "max", 3) == 0 && (p[3] == ' ' || p[3] == '\n' || p[3] == 0))
		return 1;
	errno = 0;
	*quota = strtoll(p, &end, 10);
	if (errno || end == p)
		return ST_EFORMAT;
	if (*quota < 0)
		return 1;	/* v1: -1 is no limit */
	*period = 100000;	/* the kernel's default when the file has none */
	if (*end == ' ') {
		p = end + 1;
		*period = strtoll(p, &end, 10);
		if (errno || end == p)
			return ST_EFORMAT;
	}
	if ((*end != '\n' && *end != 0) || *quota == 0 || *period <= 0)
		return ST_EFORMAT;
	return 0;
}

int cpu_threads_read(const char *cg_dir, int online, char *how, size_t howlen)
{
	char text[256], path[512];
	long long quota = 0, period = 0;
	int rc = 1, n = online > 0 ? online : 1;

	snprintf(how, howlen, "%d online CPUs, no cgroup CPU quota", n);
	if (!cg_dir)
		return n;
	snprintf(path, sizeof(path), "%s/cpu.max", cg_dir);
	if (read_small(path, text, sizeof(text)) == 0) {
		rc = cpu_quota_parse(text, &quota, &period);
	} else {
		/* cgroup v1: cpu.cfs_quota_us and cpu.cfs_period_us, in cpu/ or cpu,cpuacct/ */
		static const char *const sub[] = { "", "/cpu", "/cpu,cpuacct" };
		for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]) && rc == 1; i++) {
			char t2[64];
			snprintf(path, sizeof(path), "%s%s/cpu.cfs_quota_us", cg_dir, sub[i]);
			if (read_small(path, text, sizeof(text)) < 0)
				continue;
			snprintf(path, sizeof(path), "%s%s/cpu.cfs_period_us", cg_dir, sub[i]);
			if (read_small(path, t2, sizeof(t2)) == 0) {
				size_t o = strcspn(text, "\n");
				snprintf(text + o, sizeof(text) - o, " %s", t2);
			}
			rc = cpu_quota_parse(text, &quota, &period);
		}
	}
	if (rc < 0) {
		log_warn("cpu: cannot parse the cgroup CPU quota under '%s'; using %d online CPUs", cg_dir, n);
		return n;
	}
	if (rc == 0) {
		long long q = (quota + period - 1) / period;	/* a fraction of a core still gets a thread */
		int byq = q < 1 ? 1 : q > 4096 ? 4096 : (int)q;
		snprintf(how, howlen, "cgroup CPU quota %lld/%lld us = %d, %d online CPUs", quota, period,
			 byq, n);
		n = MIN(n, byq);
	}
	return n;
}

/* CPUs this process may run on (its affinity mask), else the online count. */
static int online_cpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

int cpu_create(const struct be_opts *opts, void **ctx)
{
	struct cpu_ctx *c = calloc(1, sizeof(*c));
	char how[160];
	if (!c)
		return ST_ENOMEM;
	if (opts && opts->n_threads > 0) {
		c->n_threads = opts->n_threads;
		snprintf(how, sizeof(how), "--threads");
	} else {
		c->n_threads = cpu_threads_read("/sys/fs/cgroup", online_cpus(), how, sizeof(how));
	}
	if (c->n_threads < 1)
		c->n_threads = 1;
	log_info("cpu: %d threads (%s)", c->n_threads, how);
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
	free(c->f8_buf);
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

/* The value in kB of "key:" at a line start of /proc/meminfo text, in bytes; 0 when found. */
static int meminfo_field(const char *text, const char *key, size_t *out)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl) != 0 || p[kl] != ':')
			continue;
		char *end;
		errno = 0;
		unsigned long long kb = strtoull(p + kl + 1, &end, 10);
		if (errno || end == p + kl + 1 || kb > SIZE_MAX / 1024)
			return ST_EFORMAT;
		*out = (size_t)kb * 1024;
		return 0;
	}
	return ST_ENOENT;
}

int cpu_meminfo_parse(const char *text, size_t *total, size_t *avail)
{
	if (meminfo_field(text, "MemTotal", total) < 0)
		return ST_EFORMAT;
	if (meminfo_field(text, "MemAvailable", avail) < 0 && meminfo_field(text, "MemFree", avail) < 0)
		return ST_EFORMAT;
	return 0;
}

int cpu_cgroup_max_parse(const char *text, size_t *limit)
{
	char *end;
	unsigned long long v;
	if (strncmp(text, "max", 3) == 0 && (text[3] == '\n' || text[3] == 0))
		return 1;
	if (*text < '0' || *text > '9')
		return ST_EFORMAT;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || (*end != '\n' && *end != 0) || v > SIZE_MAX)
		return ST_EFORMAT;
	*limit = (size_t)v;
	return 0;
}

int cpu_mem_read(const char *meminfo_path, const char *cg_dir, size_t *free_bytes, size_t *total_bytes,
		 char *how, size_t howlen)
{
	char text[8192], path[512];
	size_t total, avail, limit, used;
	int rc;

	if (read_small(meminfo_path, text, sizeof(text)) < 0 || cpu_meminfo_parse(text, &total, &avail) < 0)
		return log_err(ST_EIO, "cpu: cannot read MemTotal/MemAvailable from '%s'", meminfo_path);
	snprintf(how, howlen, "MemAvailable %zu MiB of MemTotal %zu MiB", avail >> 20, total >> 20);
	snprintf(path, sizeof(path), "%s/memory.max", cg_dir ? cg_dir : "");
	if (cg_dir && read_small(path, text, sizeof(text)) == 0 && (rc = cpu_cgroup_max_parse(text, &limit)) == 0) {
		snprintf(path, sizeof(path), "%s/memory.current", cg_dir);
		used = 0;
		if (read_small(path, text, sizeof(text)) < 0 || cpu_cgroup_max_parse(text, &used) != 0)
			used = 0;	/* unknown: the limit alone */
		size_t room = limit > used ? limit - used : 0;
		size_t o = strlen(how);
		snprintf(how + o, howlen - MIN(o, howlen), "; cgroup memory.max %zu MiB, memory.current %zu MiB",
			 limit >> 20, used >> 20);
		total = MIN(total, limit);
		avail = MIN(avail, room);
	}
	*total_bytes = total;
	*free_bytes = avail;
	return 0;
}

int cpu_mem_info(void *ctx, size_t *free_bytes, size_t *total_bytes)
{
	char how[256];
	int rc;
	(void)ctx;
	if ((rc = cpu_mem_read("/proc/meminfo", "/sys/fs/cgroup", free_bytes, total_bytes, how, sizeof(how))) < 0)
		return rc;
	log_info("cpu: %zu MiB available of %zu MiB (%s)", *free_bytes >> 20, *total_bytes >> 20, how);
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
	.kv_dtype       = BE_BF16,	/* as the CUDA backend: half of fp32's bytes per token */
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
	.matmul_fp8     = cpu_matmul_fp8,	/* the same for an FP8 E4M3 W with its scales */
	.rope           = cpu_rope,		/* x (n_tok, n_heads*head_dim) in place */
	.kv_write       = cpu_kv_write,		/* caches (slots, kv_dim), k, v (n_tok, kv_dim) */
	.attention      = cpu_attention,	/* out, q: (n_tok, n_heads*head_dim) */
	.gelu_mul       = cpu_gelu_mul,		/* out, gate, up: (n) */
	.add            = cpu_add,		/* y += x: (n) */
	.softcap        = cpu_softcap,		/* x (n) in place */
	.gather_rows    = cpu_gather_rows,	/* out (n_rows, d), x (n, d) */
	.sample         = cpu_sample,		/* out (n_rows), logits (n_rows, vocab) */
};
