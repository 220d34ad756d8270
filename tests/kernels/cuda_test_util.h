/*
 * cuda_test_util.h - shared helpers of the CUDA op tests
 * (tests/kernels/test_cuda_*.c): the cpu reference and cuda backends,
 * seeded random data, device copies, and the tolerance check
 * |cuda - cpu| <= atol + rtol * scale that reports the worst value.
 * Without a device need_cuda() marks the case "SKIP ...: no CUDA device",
 * or FAIL when GR_TEST_GPU=1. Tests only; everything static.
 */
#ifndef GR_CUDA_TEST_UTIL_H
#define GR_CUDA_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "tests/harness.h"
#ifdef GR_HAVE_CUDA
#include "kernels/cuda/cuda_knobs.h"
#endif

static struct be g_cpu, g_cu;
static int g_have_cu;		/* be_create("cuda") worked */
static int g_need_gpu;		/* GR_TEST_GPU=1 */
static int g_cu_rc;		/* its status when it did not */
static struct rng g_rng;

/* ---- helpers ---- */

static inline int need_cuda(void)
{
	if (g_have_cu)
		return 1;
	if (g_need_gpu)
		CHECK(0, "no CUDA device (be_create: %s), but GR_TEST_GPU=1 requires one",
		      st_str(g_cu_rc));
	else
		SKIP("no CUDA device");
	return 0;
}

static inline float urand(float lo, float hi)
{
	return lo + (hi - lo) * (float)rng_uniform(&g_rng);
}

static inline float *rand_f32(size_t n, float lo, float hi)
{
	float *p = malloc((n ? n : 1) * sizeof(float));
	for (size_t i = 0; i < n; i++)
		p[i] = urand(lo, hi);
	return p;
}

static inline float *randn_f32(size_t n, float sd)
{
	float *p = malloc((n ? n : 1) * sizeof(float));
	for (size_t i = 0; i < n; i++)
		p[i] = (float)rng_normal(&g_rng) * sd;
	return p;
}

static inline size_t dt_size(enum be_dtype dt)
{
	return dt == BE_F32 ? 4 : 2;
}

/* Stores the fp32 values v in dtype dt (new buffer) and rounds v in place
 * to what dt holds, so both backends see the same numbers. */
static inline void *to_dtype(float *v, size_t n, enum be_dtype dt)
{
	void *p = malloc((n ? n : 1) * dt_size(dt));
	for (size_t i = 0; i < n; i++) {
		if (dt == BE_F32) {
			((float *)p)[i] = v[i];
		} else if (dt == BE_BF16) {
			((bf16 *)p)[i] = f32_to_bf16(v[i]);
			v[i] = bf16_to_f32(((bf16 *)p)[i]);
		} else {
			((f16 *)p)[i] = f32_to_f16(v[i]);
			v[i] = f16_to_f32(((f16 *)p)[i]);
		}
	}
	return p;
}

/* A CUDA device copy of n bytes of host memory (NULL on failure, after a CHECK). */
static inline void *cu_dup(const void *h, size_t n)
{
	void *d = g_cu.ops->alloc(g_cu.ctx, n ? n : 4);
	CHECK(d != NULL, "cuda alloc of %zu bytes failed", n);
	if (d && n)
		CHECK(g_cu.ops->copy_h2d(g_cu.ctx, d, h, n) == 0, "copy_h2d of %zu bytes failed", n);
	return d;
}

static inline void cu_get(void *h, const void *d, size_t n)
{
	CHECK(g_cu.ops->copy_d2h(g_cu.ctx, h, d, n) == 0, "copy_d2h of %zu bytes failed", n);
}

static inline void cu_release(void *d)
{
	if (d)
		g_cu.ops->free(g_cu.ctx, d);
}

/*
 * Checks |got - ref| <= atol + rtol * scale (scale = |ref| when NULL) for n
 * values; reports the count and the worst value. Returns the max |diff|.
 */
static inline double cmp_scaled(const char *what, const float *got, const float *ref,
			 const double *scale, size_t n, double atol, double rtol)
{
	size_t bad = 0, worst = 0;
	double maxd = 0, worst_ex = -1;

	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - (double)ref[i]);
		double tol = atol + rtol * (scale ? scale[i] : fabs((double)ref[i]));
		if (!(d <= tol)) {
			bad++;
			if (isnan(d) || d - tol > worst_ex) {
				worst_ex = isnan(d) ? INFINITY : d - tol;
				worst = i;
			}
		}
		if (d > maxd || isnan(d))
			maxd = isnan(d) ? INFINITY : d;
	}
	CHECK(bad == 0, "%s: %zu of %zu values out of tolerance; worst [%zu] cuda %.9g cpu %.9g",
	      what, bad, n, worst, bad ? got[worst] : 0.0, bad ? ref[worst] : 0.0);
	printf("  %s: n %zu, max|d| %.3g\n", what, n, maxd);
	return maxd;
}

static inline double cmp_close(const char *what, const float *got, const float *ref, size_t n,
			double atol, double rtol)
{
	return cmp_scaled(what, got, ref, NULL, n, atol, rtol);
}

/* Creates both backends (cpu must work; cuda may not) and seeds the data. */
static inline int cut_init(uint64_t seed)
{
	struct be_opts o = { .n_threads = 2, .device = 0 };
	const char *e = getenv("GR_TEST_GPU");

	g_need_gpu = e && strcmp(e, "1") == 0;
	rng_seed(&g_rng, seed);
	if (be_create("cpu", &o, &g_cpu) < 0) {
		printf("FAIL cuda_setup: cannot create the cpu backend\n");
		return -1;
	}
	g_cu_rc = be_create("cuda", &o, &g_cu);
	g_have_cu = g_cu_rc == 0;
	return 0;
}

static inline void cut_fini(void)
{
	if (g_have_cu)
		be_destroy(&g_cu);
	be_destroy(&g_cpu);
}

#endif
