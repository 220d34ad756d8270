/*
 * test_matmul_fp8.c - the FP8 E4M3 element (kernels/fp8.h) and the CPU
 * matmul_fp8 op:
 *   - decode of all 256 codes against a table built from the OCP FP8
 *     formula (bias 7, subnormals, no inf, 0x7F/0xFF NaN), hand values;
 *   - encode: every finite value round-trips, ties go to even, saturation
 *     at +-448, NaN;
 *   - the op equals, within fp32 rounding, a double matmul over weights
 *     (and per-token / static quantized activations) dequantised to fp32
 *     beforehand, at odd sizes, per channel and per tensor, BF16/F32 scales;
 *   - AVX2 and portable decode give bitwise equal results; results do not
 *     depend on batch size or thread count (bitwise).
 */
#include <math.h>

#include "common/status.h"
#include "kernels/cpu/cpu.h"
#include "kernels/fp8.h"
#include "tests/harness.h"
#include "tests/kernels/kern_util.h"

static struct be be1, be3;

/* OCP 8-bit floating point spec, E4M3: bias 7, S.1111.111 is NaN, no infinities. */
static double ocp_e4m3(int c)
{
	int s = c >> 7, e = (c >> 3) & 15, m = c & 7;
	double v;
	if (e == 15 && m == 7)
		return NAN;
	v = e == 0 ? pow(2.0, 1 - 7) * (m / 8.0) : pow(2.0, e - 7) * (1.0 + m / 8.0);
	return s ? -v : v;
}

static void test_decode_all_codes(void)
{
	int n_nan = 0;
	for (int c = 0; c < 256; c++) {
		double want = ocp_e4m3(c);
		float got = fp8_e4m3_to_f32((uint8_t)c);
		if (isnan(want)) {
			CHECK(isnan(got), "code 0x%02x decodes to %g, want NaN", c, got);
			n_nan++;
		} else {
			CHECK((double)got == want, "code 0x%02x decodes to %.9g, want %.9g", c, got, want);
		}
	}
	CHECK(n_nan == 2, "%d NaN codes, want 2 (0x7F, 0xFF)", n_nan);
	CHECK(fp8_e4m3_to_f32(0x7E) == 448.0f, "0x7E is %g", fp8_e4m3_to_f32(0x7E));
	CHECK(fp8_e4m3_to_f32(0x38) == 1.0f && fp8_e4m3_to_f32(0xB8) == -1.0f, "1.0 is 0x38");
	CHECK(fp8_e4m3_to_f32(0x01) == ldexpf(1, -9), "smallest subnormal");
	CHECK(fp8_e4m3_to_f32(0x08) == ldexpf(1, -6), "smallest normal");
	CHECK(fp8_e4m3_to_f32(0x07) == 7 * ldexpf(1, -9), "largest subnormal");
}

static void test_encode(void)
{
	for (int c = 0; c < 256; c++) {
		float v = fp8_e4m3_to_f32((uint8_t)c);
		if (isnan(v))
			continue;
		CHECK(fp8_e4m3_from_f32(v) == (uint8_t)c, "0x%02x (%g) encodes to 0x%02x", c, v,
		      fp8_e4m3_from_f32(v));
	}
	/* ties to even: 1 + 1/16 is between 0x38 (1.0, even) and 0x39 */
	CHECK(fp8_e4m3_from_f32(1.0625f) == 0x38, "1.0625 -> 0x%02x", fp8_e4m3_from_f32(1.0625f));
	CHECK(fp8_e4m3_from_f32(1.1875f) == 0x3A, "1.1875 -> 0x%02x", fp8_e4m3_from_f32(1.1875f));
	CHECK(fp8_e4m3_from_f32(1.07f) == 0x39, "1.07 -> 0x%02x", fp8_e4m3_from_f32(1.07f));
	CHECK(fp8_e4m3_from_f32(ldexpf(1, -10)) == 0x00, "2^-10 ties to 0");
	CHECK(fp8_e4m3_from_f32(3 * ldexpf(1, -10)) == 0x02, "3*2^-10 ties to 2*2^-9");
	CHECK(fp8_e4m3_from_f32(15 * ldexpf(1, -10)) == 0x08, "15*2^-10 ties up to 2^-6");
	CHECK(fp8_e4m3_from_f32(-0.0f) == 0x80, "-0");
	/* saturation */
	CHECK(fp8_e4m3_from_f32(460.0f) == 0x7E, "460 -> 448");
	CHECK(fp8_e4m3_from_f32(1e6f) == 0x7E, "1e6 -> 448");
	CHECK(fp8_e4m3_from_f32(-INFINITY) == 0xFE, "-inf -> -448");
	CHECK((fp8_e4m3_from_f32(NAN) & 0x7F) == 0x7F, "NaN");
}

/* Random codes without NaN, scales stored in sdt, x random; the fp32-dequantised reference. */
struct case_data {
	int nt, no, ni;
	uint8_t *w;
	void *scale, *in_scale;
	float *x, *y;
	struct be_fp8_w fw;
};

static void make_case(struct rng *r, struct case_data *c, int nt, int no, int ni, int per_channel,
		      enum be_dtype sdt, enum be_fp8_act act)
{
	int ns = per_channel ? no : 1;
	float *s = malloc((size_t)ns * 4), is = 0.02f;

	c->nt = nt, c->no = no, c->ni = ni;
	c->w = malloc((size_t)no * ni + 16);
	for (size_t i = 0; i < (size_t)no * ni; i++) {
		uint8_t b = (uint8_t)(rng_next(r) >> 56);
		c->w[i] = (b & 0x7F) == 0x7F ? (uint8_t)(b ^ 1) : b;
	}
	for (int i = 0; i < ns; i++)
		s[i] = (float)(0.001 + 0.01 * rng_uniform(r));
	c->scale = ku_store(s, (size_t)ns, sdt);
	c->in_scale = ku_store(&is, 1, BE_F32);
	c->x = malloc((size_t)nt * ni * 4);
	c->y = malloc((size_t)nt * no * 4);
	ku_fill(r, c->x, (size_t)nt * ni, 1.5);
	if (nt > 1)
		c->x[ni + ni / 2] = 40.0f;	/* an outlier: its token's scale is larger */
	c->fw = (struct be_fp8_w){ .w = c->w, .scale = c->scale, .scale_dt = sdt,
				   .per_channel = per_channel, .act = act, .in_scale = c->in_scale,
				   .in_scale_dt = BE_F32 };
	free(s);
}

static void free_case(struct case_data *c)
{
	free(c->w);
	free(c->scale);
	free(c->in_scale);
	free(c->x);
	free(c->y);
}

/* The worst |y - ref| / sum|terms| of c->y against dequantise-first in double. */
static double worst_vs_dequant(const struct case_data *c)
{
	const struct be_fp8_w *fw = &c->fw;
	float *xq = malloc((size_t)c->ni * 4);
	double worst = 0;

	for (int t = 0; t < c->nt; t++) {
		const float *x = c->x + (size_t)t * c->ni;
		float s = 1;
		if (fw->act == BE_FP8_ACT_TOKEN) {
			float amax = 0;
			for (int i = 0; i < c->ni; i++)
				amax = fmaxf(amax, fabsf(x[i]));
			s = fmaxf(amax / 448.0f, 1.0f / (448.0f * 512.0f));
		} else if (fw->act == BE_FP8_ACT_STATIC) {
			s = ((const float *)fw->in_scale)[0];
		}
		for (int i = 0; i < c->ni; i++)
			xq[i] = fw->act == BE_FP8_ACT_NONE ? x[i] :
				(float)ocp_e4m3(fp8_e4m3_from_f32(fminf(fmaxf(x[i] / s, -448.0f), 448.0f))) * s;
		for (int o = 0; o < c->no; o++) {
			float sw = cpu_load_elem(fw->scale, fw->scale_dt, fw->per_channel ? (size_t)o : 0);
			double ref = 0, mag = 0;
			for (int i = 0; i < c->ni; i++) {
				float wf = (float)ocp_e4m3(c->w[(size_t)o * c->ni + i]) * sw;
				ref += (double)xq[i] * wf;
				mag += fabs((double)xq[i] * wf);
			}
			double err = fabs(c->y[(size_t)t * c->no + o] - ref) / (mag + 1e-30);
			if (!(err <= worst))
				worst = err;
		}
	}
	free(xq);
	return worst;
}

static void test_vs_dequantised(void)
{
	static const int toks[] = { 1, 2, 3, 5 }, outs[] = { 1, 7, 33 }, ins[] = { 1, 15, 16, 17, 100, 257 };
	static const enum be_fp8_act acts[] = { BE_FP8_ACT_TOKEN, BE_FP8_ACT_NONE, BE_FP8_ACT_STATIC };
	struct rng r;
	double worst = 0;
	int n = 0;

	rng_seed(&r, 11);
	for (int simd = 0; simd < 2; simd++)
	for (size_t a = 0; a < ARRAY_SIZE(acts); a++)
	for (int pc = 0; pc < 2; pc++)
	for (size_t ti = 0; ti < ARRAY_SIZE(toks); ti++)
	for (size_t oi = 0; oi < ARRAY_SIZE(outs); oi++)
	for (size_t ii = 0; ii < ARRAY_SIZE(ins); ii++) {
		struct case_data c;
		make_case(&r, &c, toks[ti], outs[oi], ins[ii], pc, pc ? BE_BF16 : BE_F32, acts[a]);
		cpu_matmul_fp8_use_simd(simd);
		CHECK(be3.ops->matmul_fp8(be3.ctx, c.y, c.x, &c.fw, c.nt, c.no, c.ni) == 0, "op");
		double e = worst_vs_dequant(&c);
		if (!(e <= worst))
			worst = e;
		n++;
		free_case(&c);
	}
	cpu_matmul_fp8_use_simd(1);
	printf("  %d cases, worst |y - ref| / sum|x w| = %.3g\n", n, worst);
	CHECK(worst <= 2e-6, "worst relative error %.3g > 2e-6 (fp32 rounding)", worst);
}

static void test_simd_batch_thread_invariant(void)
{
	const int nt = 7, no = 70, ni = 3584 / 8 + 3;
	struct rng r;
	struct case_data c;
	float *y1, *ys;

	rng_seed(&r, 5);
	make_case(&r, &c, nt, no, ni, 1, BE_BF16, BE_FP8_ACT_TOKEN);
	y1 = malloc((size_t)nt * no * 4);
	ys = malloc((size_t)nt * no * 4);
	cpu_matmul_fp8_use_simd(1);
	CHECK(be3.ops->matmul_fp8(be3.ctx, c.y, c.x, &c.fw, nt, no, ni) == 0, "op");
	for (int t = 0; t < nt; t++)	/* one token at a time, one thread */
		CHECK(be1.ops->matmul_fp8(be1.ctx, y1 + (size_t)t * no, c.x + (size_t)t * ni, &c.fw, 1,
					  no, ni) == 0, "op");
	cpu_matmul_fp8_use_simd(0);
	CHECK(be3.ops->matmul_fp8(be3.ctx, ys, c.x, &c.fw, nt, no, ni) == 0, "op");
	cpu_matmul_fp8_use_simd(1);
	CHECK(memcmp(c.y, y1, (size_t)nt * no * 4) == 0, "batched result differs from one-by-one");
	CHECK(memcmp(c.y, ys, (size_t)nt * no * 4) == 0, "AVX2 result differs from the portable one");
	/* a NaN code propagates (the AVX2 decode keeps NaN) */
	c.w[3] = 0x7F;
	CHECK(be3.ops->matmul_fp8(be3.ctx, c.y, c.x, &c.fw, 1, no, ni) == 0, "op");
	CHECK(isnan(c.y[0]) && !isnan(c.y[1]), "NaN weight code: y[0] = %g", c.y[0]);
	free(y1);
	free(ys);
	free_case(&c);
}

static void test_bad_args(void)
{
	float x[4] = { 0 }, y[4];
	uint8_t w[4] = { 0 };
	float s = 1;
	struct be_fp8_w fw = { .w = w, .scale = &s, .scale_dt = BE_F32, .act = BE_FP8_ACT_STATIC };
	CHECK(be1.ops->matmul_fp8(be1.ctx, y, x, &fw, 1, 1, 4) == ST_EINVAL, "static without in_scale");
	fw.act = BE_FP8_ACT_TOKEN;
	fw.scale = NULL;
	CHECK(be1.ops->matmul_fp8(be1.ctx, y, x, &fw, 1, 1, 4) == ST_EINVAL, "no scale");
}

int main(void)
{
	if (ku_open(&be1, 1) < 0 || ku_open(&be3, 3) < 0)
		return 1;
	RUN(test_decode_all_codes);
	RUN(test_encode);
	RUN(test_vs_dequantised);
	RUN(test_simd_batch_thread_invariant);
	RUN(test_bad_args);
	be_destroy(&be1);
	be_destroy(&be3);
	return th_done();
}
