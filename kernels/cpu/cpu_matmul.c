/*
 * cpu_matmul.c - y (n_tok, n_out) = x (n_tok, n_in) * W^T, W (n_out, n_in)
 * row-major in BF16, F16 or F32, upcast to fp32 on the fly.
 *
 * Blocking: a task owns MM_ROWS consecutive output rows (rows of W); inside
 * it, tokens go in tiles of MM_TT, and each W row is read once per tile and
 * used for every token of the tile. (Blocking n_in as well, so that the x
 * tile stays in L1, measured no faster on the 2b shapes.)
 *
 * Exactness invariant (batch invariance): every y[t][o] is the same
 * sequence of fp32 operations whatever n_tok, the tile it falls in or the
 * thread that runs it: 16 lane accumulators, acc[l] = fma(x[i], w[i],
 * acc[l]) for i = l, l+16, l+32, ... in increasing i, then one fixed
 * pairwise sum of the 16 lanes. The tile kernels for 4, 2 and 1 tokens are
 * one inlined function, so they do exactly that per token. With AVX2+FMA
 * the 16 lanes live in two ymm registers (intrinsics); the portable loop
 * version computes the identical values.
 */
#include <math.h>

#include "common/status.h"
#include "common/util.h"
#include "kernels/cpu/cpu.h"

#define MM_LANES 16
#define MM_TT 4		/* tokens per tile */
#define MM_ROWS 32	/* W rows per task */
#define MM_INLINE_WORK 65536.0	/* multiply-adds below which the caller runs all tasks */

struct mm_job {
	float *y;
	const float *x;
	const void *w;
	enum be_dtype wdt;
	int n_tok, n_out, n_in;
};

#if !(defined(__AVX2__) && defined(__FMA__))
static inline __attribute__((always_inline)) void load_w16(float *restrict w, const void *wrow,
							    enum be_dtype dt, int i)
{
	if (dt == BE_F32) {
		const float *p = (const float *)wrow + i;
		for (int l = 0; l < MM_LANES; l++)
			w[l] = p[l];
	} else if (dt == BE_BF16) {
		const uint16_t *p = (const uint16_t *)wrow + i;
		for (int l = 0; l < MM_LANES; l++) {
			union { uint32_t u; float f; } v = { .u = (uint32_t)p[l] << 16 };
			w[l] = v.f;
		}
	} else {
		const uint16_t *p = (const uint16_t *)wrow + i;
		for (int l = 0; l < MM_LANES; l++)
			w[l] = f16_to_f32(p[l]);
	}
}

#endif

static inline float hsum16(const float *a)
{
	float b[8], c[4], d[2];
	for (int l = 0; l < 8; l++)
		b[l] = a[l] + a[l + 8];
	for (int l = 0; l < 4; l++)
		c[l] = b[l] + b[l + 4];
	for (int l = 0; l < 2; l++)
		d[l] = c[l] + c[l + 2];
	return d[0] + d[1];
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* w[i .. i+16) as two vectors of 8 fp32 (lanes 0-7, 8-15). */
static inline __attribute__((always_inline)) void load_w16v(__m256 *w0, __m256 *w1,
							     const void *wrow, enum be_dtype dt, int i)
{
	if (dt == BE_F32) {
		*w0 = _mm256_loadu_ps((const float *)wrow + i);
		*w1 = _mm256_loadu_ps((const float *)wrow + i + 8);
	} else if (dt == BE_BF16) {
		const __m128i *p = (const __m128i *)((const uint16_t *)wrow + i);
		__m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128(p));
		__m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128(p + 1));
		*w0 = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16));
		*w1 = _mm256_castsi256_ps(_mm256_slli_epi32(b, 16));
	} else {
		const __m128i *p = (const __m128i *)((const uint16_t *)wrow + i);
		*w0 = _mm256_cvtph_ps(_mm_loadu_si128(p));
		*w1 = _mm256_cvtph_ps(_mm_loadu_si128(p + 1));
	}
}

/*
 * y[t*ys] = dot(x[t], w row) for nt tokens (nt a constant after inlining).
 * Lane l of the 16 accumulators is acc[t][l/8] element l%8: the same
 * arithmetic as the portable version below, in vector registers.
 */
static inline __attribute__((always_inline)) void dot_tile(float *y, size_t ys,
							    const float *x, size_t xs,
							    const void *wrow, enum be_dtype dt,
							    int n_in, int nt)
{
	__m256 acc[MM_TT][2];
	float lanes[MM_LANES];
	int i = 0;

	for (int t = 0; t < nt; t++)
		acc[t][0] = acc[t][1] = _mm256_setzero_ps();
	for (; i + MM_LANES <= n_in; i += MM_LANES) {
		__m256 w0, w1;
		load_w16v(&w0, &w1, wrow, dt, i);
		for (int t = 0; t < nt; t++) {
			const float *xt = x + (size_t)t * xs + i;
			acc[t][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xt), w0, acc[t][0]);
			acc[t][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xt + 8), w1, acc[t][1]);
		}
	}
	if (i == n_in) {
		/* hsum16 in registers: b = a[0:8] + a[8:16], c = b[0:4] + b[4:8],
		 * d = c[0:2] + c[2:4], d[0] + d[1] - the same tree, the same sums */
		for (int t = 0; t < nt; t++) {
			__m256 b = _mm256_add_ps(acc[t][0], acc[t][1]);
			__m128 c = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
			__m128 d = _mm_add_ps(c, _mm_movehl_ps(c, c));
			__m128 e = _mm_add_ss(d, _mm_movehdup_ps(d));
			y[(size_t)t * ys] = _mm_cvtss_f32(e);
		}
		return;
	}
	for (int t = 0; t < nt; t++) {
		_mm256_storeu_ps(lanes, acc[t][0]);
		_mm256_storeu_ps(lanes + 8, acc[t][1]);
		for (int k = i, l = 0; k < n_in; k++, l++)
			lanes[l] = fmaf(x[(size_t)t * xs + k], cpu_load_elem(wrow, dt, (size_t)k), lanes[l]);
		y[(size_t)t * ys] = hsum16(lanes);
	}
}
#else
/* Portable version: the same per-lane arithmetic with plain loops. */
static inline __attribute__((always_inline)) void dot_tile(float *y, size_t ys,
							    const float *x, size_t xs,
							    const void *wrow, enum be_dtype dt,
							    int n_in, int nt)
{
	float acc[MM_TT][MM_LANES] = { { 0 } };
	float w[MM_LANES];
	int i = 0;

	for (; i + MM_LANES <= n_in; i += MM_LANES) {
		load_w16(w, wrow, dt, i);
		for (int t = 0; t < nt; t++) {
			const float *xt = x + (size_t)t * xs + i;
			for (int l = 0; l < MM_LANES; l++)
				acc[t][l] = fmaf(xt[l], w[l], acc[t][l]);
		}
	}
	for (int l = 0; i < n_in; i++, l++) {
		float wi = cpu_load_elem(wrow, dt, (size_t)i);
		for (int t = 0; t < nt; t++)
			acc[t][l] = fmaf(x[(size_t)t * xs + i], wi, acc[t][l]);
	}
	for (int t = 0; t < nt; t++)
		y[(size_t)t * ys] = hsum16(acc[t]);
}
#endif

/* Tokens [t, t+nt) x rows [o0, o1): each W row is read once for the tile. */
static inline __attribute__((always_inline)) void mm_tile(const struct mm_job *j, int t, int o0,
							   int o1, enum be_dtype dt, int nt)
{
	size_t row_bytes = (size_t)j->n_in * (dt == BE_F32 ? 4 : 2);
	size_t xs = (size_t)j->n_in, ys = (size_t)j->n_out;

	for (int o = o0; o < o1; o++)
		dot_tile(j->y + (size_t)t * ys + o, ys, j->x + (size_t)t * xs, xs,
			 (const char *)j->w + (size_t)o * row_bytes, dt, j->n_in, nt);
}

static inline __attribute__((always_inline)) void mm_block(const struct mm_job *j, int o0,
							    int o1, enum be_dtype dt)
{
	int t = 0;

	for (; t + 4 <= j->n_tok; t += 4)
		mm_tile(j, t, o0, o1, dt, 4);
	for (; t + 2 <= j->n_tok; t += 2)
		mm_tile(j, t, o0, o1, dt, 2);
	for (; t < j->n_tok; t++)
		mm_tile(j, t, o0, o1, dt, 1);
}

static void mm_task_f32(void *arg, int task)
{
	const struct mm_job *j = arg;
	int o0 = task * MM_ROWS, o1 = o0 + MM_ROWS < j->n_out ? o0 + MM_ROWS : j->n_out;
	mm_block(j, o0, o1, BE_F32);
}

static void mm_task_bf16(void *arg, int task)
{
	const struct mm_job *j = arg;
	int o0 = task * MM_ROWS, o1 = o0 + MM_ROWS < j->n_out ? o0 + MM_ROWS : j->n_out;
	mm_block(j, o0, o1, BE_BF16);
}

static void mm_task_f16(void *arg, int task)
{
	const struct mm_job *j = arg;
	int o0 = task * MM_ROWS, o1 = o0 + MM_ROWS < j->n_out ? o0 + MM_ROWS : j->n_out;
	mm_block(j, o0, o1, BE_F16);
}

int cpu_matmul(void *ctx, float *y, const float *x, const void *w, enum be_dtype wdt,
	       int n_tok, int n_out, int n_in)
{
	struct mm_job j = { y, x, w, wdt, n_tok, n_out, n_in };
	cpu_task_fn fn;
	int n_tasks;

	if (n_tok < 0 || n_out <= 0 || n_in <= 0)
		return ST_EINVAL;
	switch (wdt) {
	case BE_F32: fn = mm_task_f32; break;
	case BE_BF16: fn = mm_task_bf16; break;
	case BE_F16: fn = mm_task_f16; break;
	default: return ST_EINVAL;
	}
	if (n_tok == 0)
		return 0;
	n_tasks = (n_out + MM_ROWS - 1) / MM_ROWS;
	if ((double)n_tok * n_out * n_in < MM_INLINE_WORK) {
		/* too small to be worth waking the pool; same tasks, same results */
		for (int i = 0; i < n_tasks; i++)
			fn(&j, i);
		return 0;
	}
	cpu_parallel(ctx, n_tasks, fn, &j);
	return 0;
}
