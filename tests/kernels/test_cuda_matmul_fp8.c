/*
 * test_cuda_matmul_fp8.c - the CUDA matmul_fp8 op (kernels/cuda/cu_matmul_fp8.cu)
 * against the CPU reference (kernels/cpu/cpu_matmul_fp8.c) on seeded random
 * FP8 codes (NaN codes excluded) with BF16 per-channel and F32 per-tensor
 * scales, activations per token / static / weight-only, at decode (1, 3
 * tokens) and prefill-like (37 tokens) sizes, n_in a multiple of 4 and not.
 * Both quantize the activations identically (IEEE division, RNE saturating
 * conversion), so only the summation order differs: a value passes when
 * |cuda - cpu| <= 1e-5 * sum_i |q(x)_i w_i| + 1e-30.
 * Without a CUDA device: "SKIP cuda_matmul_fp8: no CUDA device" (FAIL with
 * GR_TEST_GPU=1), as every tests/kernels/test_cuda_*.c.
 */
#include "kernels/fp8.h"
#include "tests/kernels/cuda_test_util.h"

static void one_case(int nt, int no, int ni, int per_channel, enum be_fp8_act act)
{
	size_t nw = (size_t)no * ni, ns = per_channel ? (size_t)no : 1;
	uint8_t *w = malloc(nw);
	float *x = randn_f32((size_t)nt * ni, 1.0f), *sc = rand_f32(ns, 0.001f, 0.01f);
	float in_s = 0.02f, *yc = malloc((size_t)nt * no * 4), *yg = malloc((size_t)nt * no * 4);
	double *mag = calloc((size_t)nt * no, sizeof(double));
	enum be_dtype sdt = per_channel ? BE_BF16 : BE_F32;
	void *sch = to_dtype(sc, ns, sdt);
	struct be_fp8_w fc, fg;
	char what[96];

	for (size_t i = 0; i < nw; i++) {
		uint8_t b = (uint8_t)(rng_next(&g_rng) >> 56);
		w[i] = (b & 0x7F) == 0x7F ? 0x7E : b;
	}
	fc = (struct be_fp8_w){ .w = w, .scale = sch, .scale_dt = sdt, .per_channel = per_channel,
				.act = act, .in_scale = &in_s, .in_scale_dt = BE_F32 };
	CHECK(g_cpu.ops->matmul_fp8(g_cpu.ctx, yc, x, &fc, nt, no, ni) == 0, "cpu op");
	for (int t = 0; t < nt; t++)
		for (int o = 0; o < no; o++)
			for (int i = 0; i < ni; i++)
				mag[(size_t)t * no + o] += fabs(x[(size_t)t * ni + i] * 1.1 *
								fp8_e4m3_to_f32(w[(size_t)o * ni + i]) *
								sc[per_channel ? o : 0]);
	{
		void *dw = cu_dup(w, nw), *ds = cu_dup(sch, ns * dt_size(sdt)), *di = cu_dup(&in_s, 4);
		float *dx = cu_dup(x, (size_t)nt * ni * 4), *dy = cu_dup(yg, (size_t)nt * no * 4);
		fg = fc;
		fg.w = dw;
		fg.scale = ds;
		fg.in_scale = di;
		CHECK(g_cu.ops->matmul_fp8(g_cu.ctx, dy, dx, &fg, nt, no, ni) == 0, "cuda op");
		cu_get(yg, dy, (size_t)nt * no * 4);
		snprintf(what, sizeof(what), "matmul_fp8 %dx%dx%d %s act %d", nt, no, ni,
			 per_channel ? "channel" : "tensor", (int)act);
		cmp_scaled(what, yg, yc, mag, (size_t)nt * no, 1e-30, 1e-5);
		cu_release(dw);
		cu_release(ds);
		cu_release(di);
		cu_release(dx);
		cu_release(dy);
	}
	free(w);
	free(x);
	free(sc);
	free(sch);
	free(yc);
	free(yg);
	free(mag);
}

static void cuda_matmul_fp8(void)
{
	static const int toks[] = { 1, 3, 37 };
	static const enum be_fp8_act acts[] = { BE_FP8_ACT_TOKEN, BE_FP8_ACT_STATIC, BE_FP8_ACT_NONE };
	if (!need_cuda())
		return;
	for (size_t a = 0; a < 3; a++)
		for (size_t t = 0; t < 3; t++) {
			one_case(toks[t], 67, 256, 1, acts[a]);
			one_case(toks[t], 33, 101, 0, acts[a]);
		}
	one_case(1, 14336, 3584, 1, BE_FP8_ACT_TOKEN);	/* the 9b gate shape at decode */
}

int main(void)
{
	if (cut_init(20261204) < 0)
		return 1;
	RUN(cuda_matmul_fp8);
	cut_fini();
	return th_done();
}
