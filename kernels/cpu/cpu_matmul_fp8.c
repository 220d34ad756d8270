/*
 * cpu_matmul_fp8.c - y (n_tok, n_out) = x (n_tok, n_in) * W^T for an FP8
 * E4M3 weight with per-channel or per-tensor scales (struct be_fp8_w), the
 * CPU reference of what vLLM computes for a compressed-tensors FP8 layer.
 *
 * Activations (w->act): TOKEN quantizes each row of x to e4m3 with
 * s_t = max(amax(x_t) / 448, 1 / (448 * 512)), q = e4m3(clamp(x / s_t,
 * +-448)) (RNE), like vLLM's dynamic_per_token_scaled_fp8_quant; STATIC uses
 * the stored input_scale for every row; NONE (weight-only, W8A16) keeps x.
 * Then y[t][o] = (acc * 256) * (s_w[o] * s_t) where acc is the fp32 dot
 * product of the (quantized) row with the weight codes decoded as
 * e4m3 / 256 (see below). Products of two e4m3 values are exact in fp32;
 * the sum is fp32, as in vLLM's scaled_mm (fp32 accumulate).
 *
 * Decoding in the inner loop: an e4m3 byte b maps to the fp16 bits
 * (b & 0x80) << 8 | (b & 0x7F) << 7, which is exactly e4m3(b) / 256
 * (subnormals included; 0x7F/0xFF get the fp16 NaN exponent OR-ed in), so
 * AVX2 + F16C decode 16 weights with a sign-extending load, a shift and an
 * AND (the sign lands in bits 15-14, bit 14 masked), three ops for NaN, and
 * two vcvtph2ps,
 * and the 256 folds into the scale. The portable path reads the same
 * values from a 256-entry table. The AVX2 path is chosen at run time
 * (__builtin_cpu_supports); both do the identical per-lane arithmetic
 * (16 lanes, fma in increasing i, the hsum16 tree of cpu_matmul.c), so
 * their results are bitwise equal and independent of batch and threads.
 *
 * Scratch: the quantized activations (n_tok * n_in floats) live in the
 * context (cpu_ctx.f8_buf), grown on the first larger call only.
 */
#include <math.h>
#include <stdlib.h>

#include "common/status.h"
#include "common/util.h"
#include "kernels/cpu/cpu.h"
#include "kernels/fp8.h"

#define F8_LANES 16
#define F8_TT 4		/* tokens per tile */
#define F8_ROWS 32	/* W rows per task */
#define F8_INLINE_WORK 65536.0

struct f8_job {
	float *y;
	const float *x;		/* (n_tok, n_in): quantized+decoded, or the input (NONE) */
	const float *sx;	/* [n_tok] activation scales (1 for NONE) */
	const struct be_fp8_w *w;
	int n_tok, n_out, n_in;
};

static float f8_lut[256];	/* e4m3(b) / 256 */
static int f8_simd = -1;	/* -1: not decided yet */

static void f8_init(void)
{
	if (f8_simd >= 0)
		return;
	for (int b = 0; b < 256; b++)
		f8_lut[b] = fp8_e4m3_to_f32((uint8_t)b) * (1.0f / 256.0f);
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	f8_simd = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
		  __builtin_cpu_supports("f16c");
#else
	f8_simd = 0;
#endif
}

void cpu_matmul_fp8_use_simd(int on)
{
	f8_simd = -1;
	f8_init();
	if (!on)
		f8_simd = 0;
}

static inline float f8_hsum16(const float *a)
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

/* Portable: acc[t] lanes over one W row, nt tokens. */
static inline __attribute__((always_inline)) void dot_scalar(float *acc_out, const float *x,
							      size_t xs, const uint8_t *wrow,
							      int n_in, int nt)
{
	float acc[F8_TT][F8_LANES] = { { 0 } };
	int i = 0;

	for (; i + F8_LANES <= n_in; i += F8_LANES) {
		float w[F8_LANES];
		for (int l = 0; l < F8_LANES; l++)
			w[l] = f8_lut[wrow[i + l]];
		for (int t = 0; t < nt; t++)
			for (int l = 0; l < F8_LANES; l++)
				acc[t][l] = fmaf(x[(size_t)t * xs + i + l], w[l], acc[t][l]);
	}
	for (int l = 0; i < n_in; i++, l++)
		for (int t = 0; t < nt; t++)
			acc[t][l] = fmaf(x[(size_t)t * xs + i], f8_lut[wrow[i]], acc[t][l]);
	for (int t = 0; t < nt; t++)
		acc_out[t] = f8_hsum16(acc[t]);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define F8_TARGET __attribute__((target("avx2,fma,f16c")))

/* 16 weights of wrow at i as e4m3 / 256 in two vectors (lanes 0-7, 8-15). */
static inline F8_TARGET __attribute__((always_inline)) void decode16(__m256 *w0, __m256 *w1,
								    const uint8_t *p)
{
	const __m256i keep = _mm256_set1_epi16((short)0xBF80), nanbits = _mm256_set1_epi16(0x3F80);
	const __m256i nanexp = _mm256_set1_epi16(0x7C00);
	__m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p));
	__m256i h = _mm256_and_si256(_mm256_slli_epi16(b, 7), keep);
	__m256i nan = _mm256_cmpeq_epi16(_mm256_and_si256(h, nanbits), nanbits);
	h = _mm256_or_si256(h, _mm256_and_si256(nan, nanexp));
	*w0 = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
	*w1 = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

static inline F8_TARGET __attribute__((always_inline)) void dot_avx2(float *acc_out,
								     const float *x, size_t xs,
								     const uint8_t *wrow, int n_in,
								     int nt)
{
	__m256 acc[F8_TT][2];
	float lanes[F8_LANES];
	int i = 0;

	for (int t = 0; t < nt; t++)
		acc[t][0] = acc[t][1] = _mm256_setzero_ps();
	for (; i + F8_LANES <= n_in; i += F8_LANES) {
		__m256 w0, w1;
		decode16(&w0, &w1, wrow + i);
		for (int t = 0; t < nt; t++) {
			const float *xt = x + (size_t)t * xs + i;
			acc[t][0] = _mm256_fmadd_ps(_mm256_loadu_ps(xt), w0, acc[t][0]);
			acc[t][1] = _mm256_fmadd_ps(_mm256_loadu_ps(xt + 8), w1, acc[t][1]);
		}
	}
	for (int t = 0; t < nt; t++) {
		_mm256_storeu_ps(lanes, acc[t][0]);
		_mm256_storeu_ps(lanes + 8, acc[t][1]);
		for (int k = i, l = 0; k < n_in; k++, l++)
			lanes[l] = fmaf(x[(size_t)t * xs + k], f8_lut[wrow[k]], lanes[l]);
		acc_out[t] = f8_hsum16(lanes);
	}
}

/*
 * One token against two W rows at once (decode: four independent FMA
 * chains instead of two); per row the same arithmetic as dot_avx2(.., 1).
 */
static inline F8_TARGET void dot_avx2_2rows(float *acc_out, const float *x, const uint8_t *ra,
					    const uint8_t *rb, int n_in)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
	__m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
	float lanes[F8_LANES];
	int i = 0;

	for (; i + F8_LANES <= n_in; i += F8_LANES) {
		__m256 wa0, wa1, wb0, wb1, x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
		decode16(&wa0, &wa1, ra + i);
		decode16(&wb0, &wb1, rb + i);
		a0 = _mm256_fmadd_ps(x0, wa0, a0);
		a1 = _mm256_fmadd_ps(x1, wa1, a1);
		b0 = _mm256_fmadd_ps(x0, wb0, b0);
		b1 = _mm256_fmadd_ps(x1, wb1, b1);
	}
	for (int r = 0; r < 2; r++) {
		const uint8_t *row = r ? rb : ra;
		_mm256_storeu_ps(lanes, r ? b0 : a0);
		_mm256_storeu_ps(lanes + 8, r ? b1 : a1);
		for (int k = i, l = 0; k < n_in; k++, l++)
			lanes[l] = fmaf(x[k], f8_lut[row[k]], lanes[l]);
		acc_out[r] = f8_hsum16(lanes);
	}
}

static F8_TARGET void block_avx2(const struct f8_job *j, int o0, int o1)
{
	size_t xs = (size_t)j->n_in;
	float acc[F8_TT];

	for (int t = 0; t < j->n_tok;) {
		int nt = j->n_tok - t >= 4 ? 4 : j->n_tok - t >= 2 ? 2 : 1;
		int o = o0;
		if (nt == 1) {	/* two rows at a time: more FMA chains in flight */
			for (; o + 2 <= o1; o += 2) {
				dot_avx2_2rows(acc, j->x + (size_t)t * xs, j->w->w + (size_t)o * xs,
					       j->w->w + (size_t)(o + 1) * xs, j->n_in);
				for (int k = 0; k < 2; k++) {
					float sw = cpu_load_elem(j->w->scale, j->w->scale_dt,
								 j->w->per_channel ? (size_t)(o + k) : 0) *
						   256.0f;
					j->y[(size_t)t * j->n_out + o + k] = acc[k] * (sw * j->sx[t]);
				}
			}
		}
		for (; o < o1; o++) {
			const uint8_t *wrow = j->w->w + (size_t)o * xs;
			if (nt == 4)
				dot_avx2(acc, j->x + (size_t)t * xs, xs, wrow, j->n_in, 4);
			else if (nt == 2)
				dot_avx2(acc, j->x + (size_t)t * xs, xs, wrow, j->n_in, 2);
			else
				dot_avx2(acc, j->x + (size_t)t * xs, xs, wrow, j->n_in, 1);
			float sw = cpu_load_elem(j->w->scale, j->w->scale_dt,
						 j->w->per_channel ? (size_t)o : 0) * 256.0f;
			for (int k = 0; k < nt; k++)
				j->y[(size_t)(t + k) * j->n_out + o] = acc[k] * (sw * j->sx[t + k]);
		}
		t += nt;
	}
}
#endif

static void block_scalar(const struct f8_job *j, int o0, int o1)
{
	size_t xs = (size_t)j->n_in;
	float acc[F8_TT];

	for (int t = 0; t < j->n_tok;) {
		int nt = j->n_tok - t >= 4 ? 4 : j->n_tok - t >= 2 ? 2 : 1;
		for (int o = o0; o < o1; o++) {
			const uint8_t *wrow = j->w->w + (size_t)o * xs;
			if (nt == 4)
				dot_scalar(acc, j->x + (size_t)t * xs, xs, wrow, j->n_in, 4);
			else if (nt == 2)
				dot_scalar(acc, j->x + (size_t)t * xs, xs, wrow, j->n_in, 2);
			else
				dot_scalar(acc, j->x + (size_t)t * xs, xs, wrow, j->n_in, 1);
			float sw = cpu_load_elem(j->w->scale, j->w->scale_dt,
						 j->w->per_channel ? (size_t)o : 0) * 256.0f;
			for (int k = 0; k < nt; k++)
				j->y[(size_t)(t + k) * j->n_out + o] = acc[k] * (sw * j->sx[t + k]);
		}
		t += nt;
	}
}

static void f8_task(void *arg, int task)
{
	const struct f8_job *j = arg;
	int o0 = task * F8_ROWS, o1 = o0 + F8_ROWS < j->n_out ? o0 + F8_ROWS : j->n_out;
#if defined(__x86_64__) || defined(__i386__)
	if (f8_simd) {
		block_avx2(j, o0, o1);
		return;
	}
#endif
	block_scalar(j, o0, o1);
}

/* Row t of x quantized to e4m3 (decoded back to fp32 in q) with scale s (0: per-token amax). */
static float quant_row(float *q, const float *x, int n, float s)
{
	if (s <= 0) {
		float amax = 0;
		for (int i = 0; i < n; i++)
			amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
		s = amax / FP8_E4M3_MAX;
		s = s > FP8_MIN_SCALE ? s : FP8_MIN_SCALE;
	}
	for (int i = 0; i < n; i++) {
		float v = x[i] / s;
		v = v > FP8_E4M3_MAX ? FP8_E4M3_MAX : v < -FP8_E4M3_MAX ? -FP8_E4M3_MAX : v;
		q[i] = fp8_e4m3_to_f32(fp8_e4m3_from_f32(v));
	}
	return s;
}

int cpu_matmul_fp8(void *ctx, float *y, const float *x, const struct be_fp8_w *w, int n_tok,
		   int n_out, int n_in)
{
	struct cpu_ctx *c = ctx;
	struct f8_job j = { y, x, NULL, w, n_tok, n_out, n_in };
	size_t need;
	float *qx, *sx;

	if (n_tok < 0 || n_out <= 0 || n_in <= 0 || !w || !w->w || !w->scale)
		return ST_EINVAL;
	if (w->scale_dt == BE_F8_E4M3 || (w->act == BE_FP8_ACT_STATIC && !w->in_scale))
		return ST_EINVAL;
	if (n_tok == 0)
		return 0;
	f8_init();
	need = ((size_t)n_tok * (size_t)n_in + (size_t)n_tok) * sizeof(float);
	if (need > c->f8_cap) {
		float *p = realloc(c->f8_buf, need);
		if (!p)
			return ST_ENOMEM;
		c->f8_buf = p;
		c->f8_cap = need;
	}
	qx = c->f8_buf;
	sx = qx + (size_t)n_tok * n_in;
	if (w->act == BE_FP8_ACT_NONE) {
		for (int t = 0; t < n_tok; t++)
			sx[t] = 1.0f;
	} else {
		float s = w->act == BE_FP8_ACT_STATIC ? cpu_load_elem(w->in_scale, w->in_scale_dt, 0) : 0;
		if (w->act == BE_FP8_ACT_STATIC && !(s > 0 && isfinite(s)))
			return ST_EINVAL;
		for (int t = 0; t < n_tok; t++)
			sx[t] = quant_row(qx + (size_t)t * n_in, x + (size_t)t * n_in, n_in, s);
		j.x = qx;
	}
	j.sx = sx;
	int n_tasks = (n_out + F8_ROWS - 1) / F8_ROWS;
	if ((double)n_tok * n_out * n_in < F8_INLINE_WORK) {
		for (int i = 0; i < n_tasks; i++)
			f8_task(&j, i);
		return 0;
	}
	cpu_parallel(c, n_tasks, f8_task, &j);
	return 0;
}
