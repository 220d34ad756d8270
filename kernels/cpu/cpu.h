/*
 * cpu.h - internals shared by the CPU backend's files (the files in kernels/cpu).
 * Not part of the backend interface; include kernels/backend.h for that.
 *
 * The context owns a persistent pthread pool (n_threads - 1 workers plus the
 * calling thread). cpu_parallel() splits a job into tasks taken in any order
 * by any thread; every op is written so that each output value is computed
 * by one task with a fixed arithmetic order, so results do not depend on the
 * number of threads or on the batch size. Ops on one context must be issued
 * by one thread at a time (the engine thread), as on a CUDA stream.
 */
#ifndef GR_CPU_H
#define GR_CPU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "kernels/backend.h"

/*
 * FP exceptions are never enabled, so the CPU kernels may evaluate both arms
 * of a select: this lets gcc vectorise loops over cpu_tanh()/cpu_exp_neg()
 * (it changes no result).
 */
#pragma GCC optimize("no-trapping-math")

typedef void (*cpu_task_fn)(void *arg, int task);

/* Elements per task of the element-wise ops (and the size below which rows run inline). */
#define CPU_EW_CHUNK 16384

struct cpu_pool {
	pthread_mutex_t mu;
	pthread_cond_t wake;		/* workers wait here for a new job */
	pthread_cond_t done;		/* the caller waits here for the job's end */
	pthread_t *threads;
	int n_workers;
	int stop;
	uint64_t gen;			/* job generation, bumped per job */
	cpu_task_fn fn;
	void *arg;
	int n_tasks;
	_Atomic int next;		/* next task index to take */
	int busy;			/* workers still inside the current job */
};

struct cpu_ctx {
	int n_threads;
	struct cpu_pool pool;
	/* the sample op's scratch (cpu_sample.c): per thread two lists of smp_cap entries */
	void *smp_buf;
	size_t smp_cap;
	/* the FP8 matmul's quantized activations (cpu_matmul_fp8.c), grow-only */
	void *f8_buf;
	size_t f8_cap;
};

/* Lifecycle, memory and copies (cpu_backend.c). */
int cpu_create(const struct be_opts *opts, void **ctx);
void cpu_destroy(void *ctx);
void *cpu_alloc(void *ctx, size_t bytes);
void cpu_free(void *ctx, void *p);
int cpu_upload(void *ctx, void *dst, const void *src, size_t n, int lane, void (*done)(void *),
	       void *arg);
int cpu_sync(void *ctx);
/*
 * The CPU backend's memory figures: total is MemTotal, free is MemAvailable
 * (free plus reclaimable page cache; not MemFree), both capped by the cgroup
 * v2 limit when one is set (memory.max; free then at most memory.max -
 * memory.current), as on Cloud Run. Logged once per call. The memory plan
 * takes a fixed share of free (MEM_PLAN_HOST_FRACTION) for the KV cache.
 */
int cpu_mem_info(void *ctx, size_t *free_bytes, size_t *total_bytes);
/* The same from the given files (tests): meminfo like /proc/meminfo, cg_dir like /sys/fs/cgroup (NULL: none). */
int cpu_mem_read(const char *meminfo_path, const char *cg_dir, size_t *free_bytes, size_t *total_bytes,
		 char *how, size_t howlen);
/* MemTotal and MemAvailable (MemFree where the kernel has no MemAvailable) of /proc/meminfo text, in bytes. */
int cpu_meminfo_parse(const char *text, size_t *total, size_t *avail);
/* A cgroup v2 memory.max text: 0 and *limit, or 1 for "max" (no limit), or ST_EFORMAT. */
int cpu_cgroup_max_parse(const char *text, size_t *limit);

/*
 * The thread count when --threads is 0 (cpu_backend.c): the CPUs this
 * process may run on (online), capped by the cgroup CPU quota rounded up
 * (v2 cg_dir/cpu.max "quota period"; v1 cpu.cfs_quota_us and
 * cpu.cfs_period_us in cg_dir, cg_dir/cpu or cg_dir/cpu,cpuacct), as Cloud
 * Run sets it to the vCPUs of the service. how says where the figure came from.
 */
int cpu_threads_read(const char *cg_dir, int online, char *how, size_t howlen);
/* A cpu.max text ("quota period", "max period", or a v1 quota with an optional " period"): 0, 1 = no limit, or ST_EFORMAT. */
int cpu_quota_parse(const char *text, long long *quota, long long *period);

/* Thread pool (cpu_pool.c). */
int cpu_pool_start(struct cpu_pool *p, int n_workers);
void cpu_pool_stop(struct cpu_pool *p);
/* Runs fn(arg, i) for i in [0, n_tasks) on the pool and the caller; returns when all ran. */
void cpu_parallel(struct cpu_ctx *c, int n_tasks, cpu_task_fn fn, void *arg);

int cpu_copy_h2d(void *ctx, void *dst, const void *src, size_t n);
int cpu_copy_d2h(void *ctx, void *dst, const void *src, size_t n);

/*
 * The matmul's instruction set, chosen once at run time: AVX-512 where the
 * CPU has it (and the build is x86-64 with AVX2), else AVX2+FMA when built
 * for it, else portable C. GR_CPU_ISA=avx2 or =portable lowers it. Every
 * path gives bitwise the same results (cpu_matmul.c). cpu_matmul_set_isa
 * sets it (tests compare the paths), never above what the CPU runs.
 */
enum { CPU_ISA_PORTABLE = 0, CPU_ISA_AVX2 = 1, CPU_ISA_AVX512 = 2 };
int cpu_matmul_isa(void);
void cpu_matmul_set_isa(int isa);

/* Compute ops, one file each beside its CUDA twin (cpu_X.c, cu_X.cu); see backend.h. */
int cpu_embed(void *ctx, float *out, const void *table, enum be_dtype dt, const int32_t *ids,
	      int n_tok, int d, float scale);
int cpu_rmsnorm(void *ctx, float *out, const float *x, const void *w, enum be_dtype wdt,
		int n_tok, int d, float eps);
int cpu_matmul(void *ctx, float *y, const float *x, const void *w, enum be_dtype wdt,
	       int n_tok, int n_out, int n_in);
int cpu_matmul_fp8(void *ctx, float *y, const float *x, const struct be_fp8_w *w, int n_tok,
		   int n_out, int n_in);
/* Tests and benches: 0 forces the portable FP8 decode, 1 the AVX2 one where the CPU has it. */
void cpu_matmul_fp8_use_simd(int on);
int cpu_rope(void *ctx, float *x, const int32_t *pos, int n_tok, int n_heads, int head_dim,
	     float theta);
int cpu_kv_write(void *ctx, void *k_cache, void *v_cache, enum be_dtype kv_dt, const float *k,
		 const float *v, const int32_t *slots, int n_tok, int kv_dim);
int cpu_attention(void *ctx, float *out, const float *q, const void *k_cache,
		  const void *v_cache, enum be_dtype kv_dt, const struct be_attn *a);
int cpu_gelu_mul(void *ctx, float *out, const float *gate, const float *up, size_t n);
int cpu_add(void *ctx, float *y, const float *x, size_t n);
int cpu_softcap(void *ctx, float *x, size_t n, float cap);
int cpu_gather_rows(void *ctx, float *out, const float *x, const int32_t *rows, int n_rows,
		    int d);
int cpu_sample(void *ctx, struct be_sample_out *out, float *logits,
	       const struct be_sample_row *rows, struct be_sample_pair *pairs,
	       const uint32_t *masks, int n_rows, int vocab);

/* Element conversion shared by the ops. */
static inline float cpu_load_elem(const void *p, enum be_dtype dt, size_t i)
{
	if (dt == BE_F32)
		return ((const float *)p)[i];
	if (dt == BE_BF16) {
		union { uint32_t u; float f; } v = { .u = (uint32_t)((const uint16_t *)p)[i] << 16 };
		return v.f;
	}
	return f16_to_f32(((const uint16_t *)p)[i]);	/* portable: no _Float16 */
}

/*
 * tanh for vector loops: exact Taylor series below |x| < 0.3, else
 * (1 - e) / (1 + e) with e = exp(-2|x|) from cpu_exp_neg(). Within a few
 * float ulps of tanh over the whole range; branch-free, so gcc vectorises
 * loops that call it. cpu_exp_neg(x) is exp(x) for x <= 0 (clamped at -87).
 */
static inline float cpu_exp_neg(float x)
{
	const float log2e = 1.44269504088896341f;
	const float ln2_hi = 0.693145751953125f, ln2_lo = 1.42860682030941723e-6f;
	float t, n, r, p;
	union { uint32_t u; float f; } s;

	x = x < -87.0f ? -87.0f : x;
	t = x * log2e;
	n = (t + 12582912.0f) - 12582912.0f;	/* round to nearest integer */
	r = (x - n * ln2_hi) - n * ln2_lo;	/* |r| <= ln2/2 */
	p = 1.0f / 5040.0f;
	p = p * r + 1.0f / 720.0f;
	p = p * r + 1.0f / 120.0f;
	p = p * r + 1.0f / 24.0f;
	p = p * r + 1.0f / 6.0f;
	p = p * r + 0.5f;
	p = p * r + 1.0f;
	p = p * r + 1.0f;
	s.u = (uint32_t)((int32_t)n + 127) << 23;
	return p * s.f;
}

static inline float cpu_tanh(float x)
{
	float a = x < 0 ? -x : x;
	float x2 = x * x;
	float small, e, big;

	/* tanh x = x - x^3/3 + 2x^5/15 - 17x^7/315 + 62x^9/2835 - 1382x^11/155925 */
	small = -1382.0f / 155925.0f;
	small = small * x2 + 62.0f / 2835.0f;
	small = small * x2 - 17.0f / 315.0f;
	small = small * x2 + 2.0f / 15.0f;
	small = small * x2 - 1.0f / 3.0f;
	small = x + x * (small * x2);
	e = cpu_exp_neg(-2.0f * a);
	big = (1.0f - e) / (1.0f + e);
	big = x < 0 ? -big : big;
	return a < 0.3f ? small : big;
}

#endif
