/*
 * bench_fp8.c - the CPU FP8 matmul (matmul_fp8, W8A8 per-token and W8A16)
 * against the bf16 matmul at the 9b decode shapes, in the same run:
 *   gate/up: y (n_tok, 14336) = x W^T, W (14336, 3584);
 *   down:    y (n_tok, 3584)  = x W^T, W (3584, 14336);
 * n_tok 1 and 8. Validates first (FP8 weight-only against an fp32 matmul
 * over the same weights dequantised beforehand; bf16 against the same),
 * then times: median of 15 calls after 2 warm-up calls, per variant.
 * Prints ms per call, GB/s of weight bytes, and fp8/bf16 speed ratios.
 *
 *   bench_fp8 [--threads N]     (default: all cores)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/fp8.h"
#include "bench/bench_util.h"

#define REPS 15

static double time_call(struct be *be, int fp8, float *y, const float *x, const void *w,
			const struct be_fp8_w *fw, int nt, int no, int ni)
{
	double t[REPS];
	for (int r = -2; r < REPS; r++) {
		double t0 = now_sec();
		if (fp8)
			be->ops->matmul_fp8(be->ctx, y, x, fw, nt, no, ni);
		else
			be->ops->matmul(be->ctx, y, x, w, BE_BF16, nt, no, ni);
		if (r >= 0)
			t[r] = now_sec() - t0;
	}
	return median(t, REPS);
}

int main(int argc, char **argv)
{
	struct be_opts bo = { 0 };
	struct be be;
	struct rng r;
	static const int shapes[2][2] = { { 14336, 3584 }, { 3584, 14336 } };
	static const char *names[2] = { "gate_up", "down" };
	int rc = 0;

	g_bench = "bench_fp8";
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--threads") == 0)
			bo.n_threads = atoi(argv[i + 1]);
	if (be_create("cpu", &bo, &be) < 0)
		return 1;
	rng_seed(&r, 1);
	for (int s = 0; s < 2; s++) {
		int no = shapes[s][0], ni = shapes[s][1];
		size_t nw = (size_t)no * ni;
		uint8_t *w8 = malloc(nw);
		uint16_t *wb = malloc(nw * 2), *sc = malloc((size_t)no * 2);
		float *x = malloc((size_t)8 * ni * 4), *y = malloc((size_t)8 * no * 4);
		float *y2 = malloc((size_t)8 * no * 4);
		struct be_fp8_w fw;

		/* weights: random e4m3 codes (no NaN) and bf16 scales; the bf16 matrix holds
		 * the same values, so both runs compute the same product */
		for (int o = 0; o < no; o++)
			sc[o] = f32_to_bf16((float)(0.001 + 0.001 * rng_uniform(&r)));
		for (size_t i = 0; i < nw; i++) {
			uint8_t b = (uint8_t)(rng_next(&r) >> 56);
			w8[i] = (b & 0x7F) == 0x7F ? 0x7E : b;
			wb[i] = f32_to_bf16(fp8_e4m3_to_f32(w8[i]) * bf16_to_f32(sc[i / (size_t)ni]));
		}
		for (size_t i = 0; i < (size_t)8 * ni; i++)
			x[i] = (float)rng_normal(&r);
		fw = (struct be_fp8_w){ .w = w8, .scale = sc, .scale_dt = BE_BF16, .per_channel = 1,
					.act = BE_FP8_ACT_NONE };
		/* validate: weight-only FP8 and bf16 over the same values agree (the bf16 copy of
		 * e4m3 * scale is rounded to 8 bits, hence 1% of the largest |y|) */
		be.ops->matmul_fp8(be.ctx, y, x, &fw, 8, no, ni);
		be.ops->matmul(be.ctx, y2, x, wb, BE_BF16, 8, no, ni);
		double worst = 0, mag = 0;
		for (size_t i = 0; i < (size_t)8 * no; i++) {
			worst = fmax(worst, fabs((double)y[i] - y2[i]));
			mag = fmax(mag, fabs((double)y2[i]));
		}
		if (!(worst <= 1e-2 * mag)) {
			printf("bench_fp8: FAIL validate %s: max|d| %.3g of max|y| %.3g\n", names[s], worst, mag);
			rc = 1;
		}
		for (int nt = 1; nt <= 8; nt += 7) {
			double tb = time_call(&be, 0, y, x, wb, &fw, nt, no, ni);
			fw.act = BE_FP8_ACT_TOKEN;
			double tf = time_call(&be, 1, y, x, NULL, &fw, nt, no, ni);
			fw.act = BE_FP8_ACT_NONE;
			double tw = time_call(&be, 1, y, x, NULL, &fw, nt, no, ni);
			rec("%s %dx%d n_tok=%d: bf16 %.2f ms (%.1f GB/s) | fp8 W8A8 %.2f ms (%.1f GB/s) "
			    "ratio %.2fx | fp8 W8A16 %.2f ms ratio %.2fx", names[s], no, ni, nt, tb * 1e3,
			    nw * 2 / tb / 1e9, tf * 1e3, nw / tf / 1e9, tb / tf, tw * 1e3, tb / tw);
		}
		free(w8);
		free(wb);
		free(sc);
		free(x);
		free(y);
		free(y2);
	}
	rec_summary();
	be_destroy(&be);
	return rc;
}
