/*
 * cpu_matmul.c - y (n_tok, n_out) = x (n_tok, n_in) * W^T, W (n_out, n_in)
 * row-major in BF16, F16 or F32, widened to fp32 in the inner loop.
 *
 * Three paths, chosen once at run time (cpu_matmul_isa): an AVX-512
 * register-blocked GEMM (micro-tile 4 tokens x 4 W rows, one zmm of lane
 * accumulators per output), an AVX2+FMA one (3 tokens x 2 W rows, two ymm
 * per output) and portable C (one W row x up to 4 tokens). Each micro-tile
 * widens a W vector once and uses it for every token of the tile, and each
 * x vector for every W row, so decode (few tokens) streams each W row once
 * for all rows of the batch and prefill reuses it from registers.
 * Threads: a task owns MM_ROWS consecutive W rows for a block of up to
 * MM_TOK_BLOCK tokens (token tiles outer, rows inner, so the task's W block
 * stays in L2 while an x tile is reused, and the token block's x stays in
 * L2 across the tasks of that block); no per-call allocation.
 *
 * Exactness invariant (batch invariance; tests/kernels/test_matmul.c):
 * every y[t][o] is the same sequence of fp32 operations whatever n_tok, the
 * thread count, the path, or the tile it falls in: 16 lane accumulators,
 * acc[l] = fma(x[i], w[i], acc[l]) for i = l, l+16, l+32, ... in increasing
 * i (a lane tail past the last whole 16 goes to lanes 0, 1, ...), then one
 * fixed pairwise sum of the 16 lanes (hsum16). No split over K: the
 * reduction order never depends on the batch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/util.h"
#include "kernels/cpu/cpu.h"

#define MM_LANES 16
#define MM_TT 4		/* tokens per tile */
#define MM_ROWS 32	/* W rows per task */
#define MM_TOK_BLOCK 64	/* tokens per task: 64 x 2304 fp32 of x = 576 KiB, in L2 */
#define MM_INLINE_WORK 65536.0	/* multiply-adds below which the caller runs all tasks */

struct mm_job {
	float *y;
	const float *x;
	const void *w;
	enum be_dtype wdt;
	int n_tok, n_out, n_in;
};

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

/* The portable path: y[t*ys] = dot(x[t], w row) for nt tokens (a constant after inlining). */
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

/*
 * Task i: W rows [rb*MM_ROWS, +MM_ROWS) for tokens [tb*MM_TOK_BLOCK, +MM_TOK_BLOCK),
 * tb = i / n_rb (tasks of one token block are consecutive, so its x block
 * stays in L2 while the threads sweep the W rows).
 */
#define MM_TASK(name, block, DT)							\
	static void name(void *arg, int task)						\
	{										\
		const struct mm_job *j = arg;						\
		int n_rb = (j->n_out + MM_ROWS - 1) / MM_ROWS;				\
		int t0 = task / n_rb * MM_TOK_BLOCK, o0 = task % n_rb * MM_ROWS;		\
		int o1 = o0 + MM_ROWS < j->n_out ? o0 + MM_ROWS : j->n_out;		\
		struct mm_job sub = *j;							\
		sub.x += (size_t)t0 * j->n_in;						\
		sub.y += (size_t)t0 * j->n_out;						\
		sub.n_tok = j->n_tok - t0 < MM_TOK_BLOCK ? j->n_tok - t0 : MM_TOK_BLOCK;	\
		block(&sub, o0, o1, DT);						\
	}
MM_TASK(mmc_task_f32, mm_block, BE_F32)
MM_TASK(mmc_task_bf16, mm_block, BE_BF16)
MM_TASK(mmc_task_f16, mm_block, BE_F16)

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define AI static inline __attribute__((always_inline))

/*
 * AVX2+FMA: lanes 0-7 and 8-15 of an output's accumulators in two ymm; a
 * micro-tile of 3 tokens x 2 W rows is 12 accumulators + 2 widened W
 * vectors + 1 x vector = 15 of the 16 registers.
 */
#define MR2 3
#define NR2 2

/* w[i .. i+8) widened to fp32. */
AI __m256 load_w8(const void *wrow, enum be_dtype dt, int i)
{
	if (dt == BE_F32)
		return _mm256_loadu_ps((const float *)wrow + i);
	__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)wrow + i));
	if (dt == BE_BF16)
		return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
	return _mm256_cvtph_ps(h);
}

/* hsum16 of lanes a0 (0-7), a1 (8-15) in registers: the same tree, the same sums. */
AI float hsum2x8(__m256 a0, __m256 a1)
{
	__m256 b = _mm256_add_ps(a0, a1);
	__m128 c = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
	__m128 d = _mm_add_ps(c, _mm_movehl_ps(c, c));
	__m128 e = _mm_add_ss(d, _mm_movehdup_ps(d));
	return _mm_cvtss_f32(e);
}

/* The lane tail past the last whole 16 (n_in % 16 != 0), then hsum16. */
AI float tail_sum(float *lanes, const float *x, const void *wrow, enum be_dtype dt, int i, int n_in)
{
	for (int k = i, l = 0; k < n_in; k++, l++)
		lanes[l] = fmaf(x[k], cpu_load_elem(wrow, dt, (size_t)k), lanes[l]);
	return hsum16(lanes);
}

/* y[t+m][o+r] for m < mr, r < nr (constants after inlining). */
AI void micro256(const struct mm_job *j, int t, int o, enum be_dtype dt, int mr, int nr)
{
	size_t row_bytes = (size_t)j->n_in * (dt == BE_F32 ? 4 : 2);
	size_t xs = (size_t)j->n_in, ys = (size_t)j->n_out;
	const float *x = j->x + (size_t)t * xs;
	const char *w = (const char *)j->w + (size_t)o * row_bytes;
	__m256 acc[MR2][NR2][2];
	int i = 0;

	for (int m = 0; m < mr; m++)
		for (int r = 0; r < nr; r++)
			acc[m][r][0] = acc[m][r][1] = _mm256_setzero_ps();
	for (; i + MM_LANES <= j->n_in; i += MM_LANES)
		for (int h = 0; h < 2; h++) {
			__m256 wv[NR2];
			for (int r = 0; r < nr; r++)
				wv[r] = load_w8(w + (size_t)r * row_bytes, dt, i + 8 * h);
			for (int m = 0; m < mr; m++) {
				__m256 xv = _mm256_loadu_ps(x + (size_t)m * xs + i + 8 * h);
				for (int r = 0; r < nr; r++)
					acc[m][r][h] = _mm256_fmadd_ps(xv, wv[r], acc[m][r][h]);
			}
		}
	for (int m = 0; m < mr; m++)
		for (int r = 0; r < nr; r++) {
			float *yo = j->y + (size_t)(t + m) * ys + o + r;
			if (i == j->n_in) {
				*yo = hsum2x8(acc[m][r][0], acc[m][r][1]);
			} else {
				float lanes[MM_LANES];
				_mm256_storeu_ps(lanes, acc[m][r][0]);
				_mm256_storeu_ps(lanes + 8, acc[m][r][1]);
				*yo = tail_sum(lanes, x + (size_t)m * xs, w + (size_t)r * row_bytes, dt, i, j->n_in);
			}
		}
}

AI void block256_mr(const struct mm_job *j, int t, int o0, int o1, enum be_dtype dt, int mr)
{
	int o = o0;
	for (; o + NR2 <= o1; o += NR2)
		micro256(j, t, o, dt, mr, NR2);
	for (; o < o1; o++)
		micro256(j, t, o, dt, mr, 1);
}

AI void block256(const struct mm_job *j, int o0, int o1, enum be_dtype dt)
{
	int t = 0;
	for (; t + MR2 <= j->n_tok; t += MR2)
		block256_mr(j, t, o0, o1, dt, MR2);
	if (j->n_tok - t == 2)
		block256_mr(j, t, o0, o1, dt, 2);
	else if (j->n_tok - t == 1)
		block256_mr(j, t, o0, o1, dt, 1);
}

MM_TASK(mm2_task_f32, block256, BE_F32)
MM_TASK(mm2_task_bf16, block256, BE_BF16)
MM_TASK(mm2_task_f16, block256, BE_F16)
#define MM_HAVE_AVX2 1

/*
 * The AVX-512 register-blocked GEMM, chosen at run time
 * (__builtin_cpu_supports): one zmm holds the 16 lane accumulators of one
 * output, so a micro-tile of MR tokens x NR W rows keeps MR*NR outputs in
 * registers (4 x 4: 16 accumulators, 4 widened W vectors, 1 x vector) and
 * each widened W vector serves MR tokens, each x vector NR rows. Per output
 * it is the same arithmetic as dot_tile (lane l: fma over i = l, l+16, ...
 * in increasing i; then the hsum16 tree), so the result is bitwise the
 * AVX2 and portable paths' and does not depend on MR, NR or the tile an
 * output falls in. Task loop: token tiles outer, W rows inner, so the
 * task's W block (MM_ROWS rows) stays in L2 while the x tile is reused.
 */
#define T512 __attribute__((target("avx512f,avx2,fma,f16c"), always_inline)) inline
#define MR512 4
#define NR512 4

static T512 __m512 load_w512(const void *wrow, enum be_dtype dt, int i)
{
	if (dt == BE_F32)
		return _mm512_loadu_ps((const float *)wrow + i);
	__m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)wrow + i));
	if (dt == BE_BF16)
		return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
	return _mm512_cvtph_ps(h);
}

/* hsum16 of the 16 lanes of a, in registers (the same tree). */
static T512 float hsum512(__m512 a)
{
	__m256 lo = _mm512_castps512_ps256(a);
	__m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
	__m256 b = _mm256_add_ps(lo, hi);
	__m128 c = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
	__m128 d = _mm_add_ps(c, _mm_movehl_ps(c, c));
	__m128 e = _mm_add_ss(d, _mm_movehdup_ps(d));
	return _mm_cvtss_f32(e);
}

/* y[t+m][o+r] for m < mr, r < nr (constants after inlining). */
static T512 void micro512(const struct mm_job *j, int t, int o, enum be_dtype dt, int mr, int nr)
{
	size_t row_bytes = (size_t)j->n_in * (dt == BE_F32 ? 4 : 2);
	size_t xs = (size_t)j->n_in, ys = (size_t)j->n_out;
	const float *x = j->x + (size_t)t * xs;
	const char *w = (const char *)j->w + (size_t)o * row_bytes;
	__m512 acc[MR512][NR512], wv[NR512];
	int i = 0;

	for (int m = 0; m < mr; m++)
		for (int r = 0; r < nr; r++)
			acc[m][r] = _mm512_setzero_ps();
	for (; i + MM_LANES <= j->n_in; i += MM_LANES) {
		for (int r = 0; r < nr; r++)
			wv[r] = load_w512(w + (size_t)r * row_bytes, dt, i);
		for (int m = 0; m < mr; m++) {
			__m512 xv = _mm512_loadu_ps(x + (size_t)m * xs + i);
			for (int r = 0; r < nr; r++)
				acc[m][r] = _mm512_fmadd_ps(xv, wv[r], acc[m][r]);
		}
	}
	for (int m = 0; m < mr; m++)
		for (int r = 0; r < nr; r++) {
			float *yo = j->y + (size_t)(t + m) * ys + o + r;
			if (i == j->n_in) {
				*yo = hsum512(acc[m][r]);
			} else {
				float lanes[MM_LANES];
				_mm512_storeu_ps(lanes, acc[m][r]);
				*yo = tail_sum(lanes, x + (size_t)m * xs, w + (size_t)r * row_bytes, dt, i, j->n_in);
			}
		}
}

static T512 void block512_mr(const struct mm_job *j, int t, int o0, int o1, enum be_dtype dt, int mr)
{
	int o = o0;
	for (; o + NR512 <= o1; o += NR512)
		micro512(j, t, o, dt, mr, NR512);
	for (; o < o1; o++)
		micro512(j, t, o, dt, mr, 1);
}

static T512 void block512(const struct mm_job *j, int o0, int o1, enum be_dtype dt)
{
	int t = 0;
	for (; t + MR512 <= j->n_tok; t += MR512)
		block512_mr(j, t, o0, o1, dt, MR512);
	switch (j->n_tok - t) {
	case 3: block512_mr(j, t, o0, o1, dt, 3); break;
	case 2: block512_mr(j, t, o0, o1, dt, 2); break;
	case 1: block512_mr(j, t, o0, o1, dt, 1); break;
	default: break;
	}
}

#define MM_TASK512(name, DT)								\
	__attribute__((target("avx512f,avx2,fma,f16c")))				\
	static void name(void *arg, int task)						\
	{										\
		const struct mm_job *j = arg;						\
		int n_rb = (j->n_out + MM_ROWS - 1) / MM_ROWS;				\
		int t0 = task / n_rb * MM_TOK_BLOCK, o0 = task % n_rb * MM_ROWS;		\
		int o1 = o0 + MM_ROWS < j->n_out ? o0 + MM_ROWS : j->n_out;		\
		struct mm_job sub = *j;							\
		sub.x += (size_t)t0 * j->n_in;						\
		sub.y += (size_t)t0 * j->n_out;						\
		sub.n_tok = j->n_tok - t0 < MM_TOK_BLOCK ? j->n_tok - t0 : MM_TOK_BLOCK;	\
		block512(&sub, o0, o1, DT);						\
	}
MM_TASK512(mm512_task_f32, BE_F32)
MM_TASK512(mm512_task_bf16, BE_BF16)
MM_TASK512(mm512_task_f16, BE_F16)
#define MM_HAVE_512 1
#endif

static _Atomic int g_isa = -1;

/* The best path this build and CPU have. */
static int best_isa(void)
{
	int isa = CPU_ISA_PORTABLE;
#ifdef MM_HAVE_AVX2
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		isa = CPU_ISA_AVX2;
#endif
#ifdef MM_HAVE_512
	if (isa == CPU_ISA_AVX2 && __builtin_cpu_supports("avx512f"))
		isa = CPU_ISA_AVX512;
#endif
	return isa;
}

int cpu_matmul_isa(void)
{
	int isa = atomic_load_explicit(&g_isa, memory_order_relaxed);
	if (isa >= 0)
		return isa;
	const char *env = getenv("GR_CPU_ISA");
	isa = best_isa();
	if (env && strcmp(env, "avx2") == 0 && isa > CPU_ISA_AVX2)
		isa = CPU_ISA_AVX2;
	else if (env && strcmp(env, "portable") == 0)
		isa = CPU_ISA_PORTABLE;
	atomic_store_explicit(&g_isa, isa, memory_order_relaxed);
	return isa;
}

void cpu_matmul_set_isa(int isa)
{
	int best = best_isa();
	atomic_store_explicit(&g_isa, isa < CPU_ISA_PORTABLE ? CPU_ISA_PORTABLE : isa > best ? best : isa,
			      memory_order_relaxed);
}

int cpu_matmul(void *ctx, float *y, const float *x, const void *w, enum be_dtype wdt,
	       int n_tok, int n_out, int n_in)
{
	struct mm_job j = { y, x, w, wdt, n_tok, n_out, n_in };
	cpu_task_fn fn;
	int n_tasks;

	if (n_tok < 0 || n_out <= 0 || n_in <= 0)
		return ST_EINVAL;
	if (wdt != BE_F32 && wdt != BE_BF16 && wdt != BE_F16)
		return ST_EINVAL;
	switch (cpu_matmul_isa()) {
#ifdef MM_HAVE_512
	case CPU_ISA_AVX512:
		fn = wdt == BE_F32 ? mm512_task_f32 : wdt == BE_BF16 ? mm512_task_bf16 : mm512_task_f16;
		break;
#endif
#ifdef MM_HAVE_AVX2
	case CPU_ISA_AVX2:
		fn = wdt == BE_F32 ? mm2_task_f32 : wdt == BE_BF16 ? mm2_task_bf16 : mm2_task_f16;
		break;
#endif
	default:
		fn = wdt == BE_F32 ? mmc_task_f32 : wdt == BE_BF16 ? mmc_task_bf16 : mmc_task_f16;
		break;
	}
	if (n_tok == 0)
		return 0;
	n_tasks = (n_out + MM_ROWS - 1) / MM_ROWS * ((n_tok + MM_TOK_BLOCK - 1) / MM_TOK_BLOCK);
	if ((double)n_tok * n_out * n_in < MM_INLINE_WORK) {
		/* too small to be worth waking the pool; same tasks, same results */
		for (int i = 0; i < n_tasks; i++)
			fn(&j, i);
		return 0;
	}
	cpu_parallel(ctx, n_tasks, fn, &j);
	return 0;
}
