/*
 * test_ops.c - the element-wise and per-row ops of the CPU backend:
 * embed, rmsnorm, rope, gelu_mul, add, softcap (and the vector tanh behind
 * it), gather_rows, copies. Hand-checked values first, then odd sizes
 * against double-precision formulas. CUDA parity: SKIP here.
 */
#include <math.h>

#include "tests/harness.h"
#include "tests/kernels/kern_util.h"

static struct be be;

static void test_embed(void)
{
	float tab[4 * 3] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 }, out[3 * 3];
	int32_t ids[3] = { 2, 0, 3 };
	enum be_dtype dts[3] = { BE_F32, BE_BF16, BE_F16 };

	for (int d = 0; d < 3; d++) {
		void *t = ku_store(tab, 12, dts[d]);
		CHECK(be.ops->embed(be.ctx, out, t, dts[d], ids, 3, 3, 0.5f) == 0, "embed");
		for (int r = 0; r < 3; r++)
			for (int i = 0; i < 3; i++)
				CHECK(out[r * 3 + i] == 0.5f * (float)(ids[r] * 3 + i), "%s out[%d][%d]=%g",
				      ku_dt_name(dts[d]), r, i, out[r * 3 + i]);
		free(t);
	}
}

static void test_rmsnorm(void)
{
	/* x = [3, 4]: mean(x^2) = 12.5; w = [0, 1] -> [3/sqrt(12.5), 8/sqrt(12.5)] */
	float x[2] = { 3, 4 }, w[2] = { 0, 1 }, out[2];
	struct rng r;
	int d = 37, n = 5;
	float *xs = malloc((size_t)n * d * 4), *ws = malloc((size_t)d * 4), *o = malloc((size_t)n * d * 4);

	CHECK(be.ops->rmsnorm(be.ctx, out, x, w, BE_F32, 1, 2, 0) == 0, "rmsnorm");
	CHECK_NEAR(out[0], 3 / sqrt(12.5), 1e-6);
	CHECK_NEAR(out[1], 8 / sqrt(12.5), 1e-6);
	/* eps matters when mean(x^2) is tiny */
	x[0] = 1e-3f;
	x[1] = 1e-3f;
	be.ops->rmsnorm(be.ctx, out, x, w, BE_F32, 1, 2, 1e-6f);
	CHECK_NEAR(out[0], 1e-3 / sqrt(1e-6 + 1e-6), 1e-6);
	rng_seed(&r, 3);
	ku_fill(&r, xs, (size_t)n * d, 2);
	ku_fill(&r, ws, (size_t)d, 1);
	void *wb = ku_store(ws, (size_t)d, BE_BF16);
	be.ops->rmsnorm(be.ctx, o, xs, wb, BE_BF16, n, d, 1e-5f);
	for (int t = 0; t < n; t++) {
		double ss = 0;
		for (int i = 0; i < d; i++)
			ss += (double)xs[t * d + i] * xs[t * d + i];
		for (int i = 0; i < d; i++) {
			double ref = xs[t * d + i] / sqrt(ss / d + 1e-5) * (1.0 + ws[i]);
			CHECK(fabs(o[t * d + i] - ref) <= 1e-6 * (1 + fabs(ref)), "t %d i %d: %g vs %g", t, i,
			      o[t * d + i], ref);
		}
	}
	/* in place */
	be.ops->rmsnorm(be.ctx, xs, xs, wb, BE_BF16, n, d, 1e-5f);
	CHECK(memcmp(xs, o, (size_t)n * d * 4) == 0, "in-place result differs");
	free(wb);
	free(xs);
	free(ws);
	free(o);
}

static void test_rope(void)
{
	/* head_dim 2, theta anything: inv_freq 1; pos 1 rotates (1, 0) by 1 radian */
	float x[2] = { 1, 0 };
	int32_t p1 = 1, p0 = 0;
	int nh = 3, hd = 10, n = 4;
	int32_t pos[4] = { 0, 1, 7, 63 };
	struct rng r;
	float *xs = malloc((size_t)n * nh * hd * 4), *orig = malloc((size_t)n * nh * hd * 4);

	CHECK(be.ops->rope(be.ctx, x, &p1, 1, 1, 2, 10000) == 0, "rope");
	CHECK_NEAR(x[0], cos(1.0), 1e-7);
	CHECK_NEAR(x[1], sin(1.0), 1e-7);
	x[0] = 0.25f;
	x[1] = -2;
	be.ops->rope(be.ctx, x, &p0, 1, 1, 2, 10000);
	CHECK(x[0] == 0.25f && x[1] == -2, "position 0 is not the identity");
	rng_seed(&r, 5);
	ku_fill(&r, xs, (size_t)n * nh * hd, 1);
	memcpy(orig, xs, (size_t)n * nh * hd * 4);
	be.ops->rope(be.ctx, xs, pos, n, nh, hd, 25000);
	for (int t = 0; t < n; t++)
		for (int h = 0; h < nh; h++)
			for (int i = 0; i < hd / 2; i++) {
				const float *a = orig + ((size_t)t * nh + h) * hd;
				const float *b = xs + ((size_t)t * nh + h) * hd;
				double ang = pos[t] * pow(25000.0, -2.0 * i / hd);
				double r0 = a[i] * cos(ang) - a[i + hd / 2] * sin(ang);
				double r1 = a[i + hd / 2] * cos(ang) + a[i] * sin(ang);
				CHECK(fabs(b[i] - r0) <= 2e-5 && fabs(b[i + hd / 2] - r1) <= 2e-5,
				      "t %d h %d i %d: (%g, %g) vs (%g, %g)", t, h, i, b[i], b[i + hd / 2], r0, r1);
			}
	free(xs);
	free(orig);
}

static double gelu_ref(double g)
{
	return 0.5 * g * (1 + tanh(sqrt(2 / M_PI) * (g + 0.044715 * g * g * g)));
}

static void test_gelu_mul(void)
{
	size_t n = 40001;	/* more than one task, odd */
	float *g = malloc(n * 4), *u = malloc(n * 4), *o = malloc(n * 4);
	struct rng r;
	double worst = 0;

	rng_seed(&r, 11);
	ku_fill(&r, g, n, 3);
	ku_fill(&r, u, n, 1);
	g[0] = 0;
	g[1] = 1;	/* gelu_tanh(1) = 0.841191990... */
	u[1] = 1;
	CHECK(be.ops->gelu_mul(be.ctx, o, g, u, n) == 0, "gelu_mul");
	CHECK_NEAR(o[0], 0, 0);
	CHECK_NEAR(o[1], 0.8411919906, 1e-6);
	for (size_t i = 0; i < n; i++) {
		double ref = gelu_ref(g[i]) * u[i];
		/* float cancellation in 1 + tanh(..) for negative gates: bound the
		 * error by the size of the operands, as torch's fp32 gelu has it */
		double e = fabs(o[i] - ref) / (1 + fabs((double)g[i] * u[i]));
		worst = e > worst ? e : worst;
	}
	printf("  gelu_mul worst err / (1 + |g u|) %.3g\n", worst);
	CHECK(worst <= 1e-6, "worst err %.3g", worst);
	free(g);
	free(u);
	free(o);
}

static void test_softcap_and_tanh(void)
{
	size_t n = 200001;
	float *x = malloc(n * 4), *y = malloc(n * 4);
	double worst = 0;

	for (size_t i = 0; i < n; i++)
		x[i] = (float)(-100.0 + 200.0 * (double)i / (double)(n - 1));
	memcpy(y, x, n * 4);
	CHECK(be.ops->softcap(be.ctx, y, n, 5) == 0, "softcap");
	for (size_t i = 0; i < n; i++) {
		double ref = 5 * tanh((double)x[i] / 5);
		double e = fabs(y[i] - ref);
		worst = e > worst ? e : worst;
		CHECK(fabs(y[i]) <= 5, "softcap out of range at %g", x[i]);
	}
	printf("  softcap(cap 5) worst abs err %.3g over [-100, 100]\n", worst);
	CHECK(worst <= 2e-6, "worst abs err %.3g", worst);
	/* small arguments keep their relative accuracy */
	for (int k = 1; k < 30; k++) {
		float v = ldexpf(1.0f, -k), w = v;
		be.ops->softcap(be.ctx, &w, 1, 1);
		CHECK(fabs(w - tanh((double)v)) <= 2e-7 * fabs(tanh((double)v)), "tanh(2^-%d) = %g", k, w);
	}
	CHECK(be.ops->softcap(be.ctx, y, 1, 0) < 0, "cap 0 accepted");
	free(x);
	free(y);
}

static void test_add_gather_copy(void)
{
	float y[5] = { 1, 2, 3, 4, 5 }, x[5] = { 0.5f, -2, 0, 1, 1e-3f };
	float rows[3 * 2] = { 1, 2, 3, 4, 5, 6 }, out[4], host[5];
	int32_t idx[2] = { 2, 0 };

	CHECK(be.ops->add(be.ctx, y, x, 5) == 0, "add");
	CHECK(y[0] == 1.5f && y[1] == 0 && y[2] == 3 && y[3] == 5 && y[4] == 5.001f, "add values");
	CHECK(be.ops->gather_rows(be.ctx, out, rows, idx, 2, 2) == 0, "gather");
	CHECK(out[0] == 5 && out[1] == 6 && out[2] == 1 && out[3] == 2, "gather values");
	CHECK(be.ops->copy_h2d(be.ctx, host, x, sizeof(x)) == 0, "h2d");
	CHECK(memcmp(host, x, sizeof(x)) == 0, "h2d bytes");
	CHECK(be.ops->copy_d2h(be.ctx, host, y, sizeof(y)) == 0, "d2h");
	CHECK(memcmp(host, y, sizeof(y)) == 0, "d2h bytes");
}

int main(void)
{
	if (ku_open(&be, 2) < 0)
		return 1;
	RUN(test_embed);
	RUN(test_rmsnorm);
	RUN(test_rope);
	RUN(test_gelu_mul);
	RUN(test_softcap_and_tanh);
	RUN(test_add_gather_copy);
	be_destroy(&be);
	return th_done();
}
