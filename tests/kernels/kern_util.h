/*
 * kern_util.h - shared helpers of the op tests (tests/kernels/test_*.c):
 * a CPU backend with n threads, seeded random buffers, weights stored as
 * F32/F16/BF16 together with their exact fp32 values. Tests only.
 */
#ifndef GR_TEST_KERN_UTIL_H
#define GR_TEST_KERN_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/backend.h"

static inline int ku_open(struct be *be, int n_threads)
{
	struct be_opts o = { .n_threads = n_threads };
	return be_create("cpu", &o, be);
}

static inline void ku_fill(struct rng *r, float *x, size_t n, double scale)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(rng_normal(r) * scale);
}

/* Stores vals (n) as dt into a new buffer and rounds vals to what was stored. */
static inline void *ku_store(float *vals, size_t n, enum be_dtype dt)
{
	void *p = malloc(n * (dt == BE_F32 ? 4 : 2) + 64);
	for (size_t i = 0; i < n; i++) {
		if (dt == BE_F32) {
			((float *)p)[i] = vals[i];
		} else if (dt == BE_BF16) {
			((bf16 *)p)[i] = f32_to_bf16(vals[i]);
			vals[i] = bf16_to_f32(((bf16 *)p)[i]);
		} else {
			((f16 *)p)[i] = f32_to_f16(vals[i]);
			vals[i] = f16_to_f32(((f16 *)p)[i]);
		}
	}
	return p;
}

static inline const char *ku_dt_name(enum be_dtype dt)
{
	return dt == BE_F32 ? "f32" : dt == BE_BF16 ? "bf16" : "f16";
}

#endif
