/*
 * test_matmul.c - the matmul op (y = x W^T) of the CPU backend:
 * hand-checked 2x3 case, every stored dtype at odd sizes against a double
 * reference, and batch/thread invariance (bitwise). CUDA parity: SKIP here.
 */
#include <math.h>

#include "tests/harness.h"
#include "tests/kernels/kern_util.h"
#include "kernels/cpu/cpu.h"

static struct be be1, be3;

static void test_matmul_hand(void)
{
	/* W = [[1,2,3],[-1,0,0.5]], x = [[1,1,1],[2,-1,4]] -> y = [[6,-0.5],[12,0]] */
	float w[6] = { 1, 2, 3, -1, 0, 0.5f }, x[6] = { 1, 1, 1, 2, -1, 4 }, y[4];
	const float want[4] = { 6, -0.5f, 12, 0 };
	enum be_dtype dts[3] = { BE_F32, BE_BF16, BE_F16 };

	for (int d = 0; d < 3; d++) {
		float wv[6];
		memcpy(wv, w, sizeof(w));
		void *ws = ku_store(wv, 6, dts[d]);
		CHECK(be1.ops->matmul(be1.ctx, y, x, ws, dts[d], 2, 2, 3) == 0, "matmul");
		for (int i = 0; i < 4; i++)
			CHECK(y[i] == want[i], "%s y[%d] = %g, want %g", ku_dt_name(dts[d]), i, y[i], want[i]);
		free(ws);
	}
}

static void test_matmul_odd_sizes_vs_double(void)
{
	static const int toks[] = { 1, 2, 3, 5, 9 }, outs[] = { 1, 7, 33, 65 },
			 ins[] = { 1, 15, 16, 17, 100, 257 };
	enum be_dtype dts[3] = { BE_F32, BE_BF16, BE_F16 };
	struct rng r;
	double worst = 0;

	rng_seed(&r, 7);
	for (int d = 0; d < 3; d++)
	for (size_t a = 0; a < ARRAY_SIZE(toks); a++)
	for (size_t b = 0; b < ARRAY_SIZE(outs); b++)
	for (size_t c = 0; c < ARRAY_SIZE(ins); c++) {
		int nt = toks[a], no = outs[b], ni = ins[c];
		float *x = malloc((size_t)nt * ni * 4), *w = malloc((size_t)no * ni * 4);
		float *y = malloc((size_t)nt * no * 4);
		ku_fill(&r, x, (size_t)nt * ni, 1);
		ku_fill(&r, w, (size_t)no * ni, 0.5);
		void *ws = ku_store(w, (size_t)no * ni, dts[d]);
		CHECK(be3.ops->matmul(be3.ctx, y, x, ws, dts[d], nt, no, ni) == 0, "matmul");
		for (int t = 0; t < nt; t++)
			for (int o = 0; o < no; o++) {
				double ref = 0, mag = 0;
				for (int i = 0; i < ni; i++) {
					ref += (double)x[t * ni + i] * w[o * ni + i];
					mag += fabs((double)x[t * ni + i] * w[o * ni + i]);
				}
				double err = fabs(y[t * no + o] - ref) / (mag + 1e-30);
				if (err > worst)
					worst = err;
				CHECK(err <= 1e-6, "%s %dx%dx%d y[%d][%d]=%.9g ref %.9g", ku_dt_name(dts[d]),
				      nt, no, ni, t, o, y[t * no + o], ref);
			}
		free(x);
		free(w);
		free(y);
		free(ws);
	}
	printf("  worst |y - ref| / sum|x w| = %.3g\n", worst);
}

/* Each row alone equals the row inside any batch, on 1 and on 3 threads. */
static void batch_invariant(int ni)
{
	int nt = 70, no = 70;	/* past one 64-token task block */
	struct rng r;
	float *x = malloc((size_t)nt * ni * 4), *w = malloc((size_t)no * ni * 4);
	float *yb = malloc((size_t)nt * no * 4), *y1 = malloc((size_t)no * 4);
	float *y3 = malloc((size_t)nt * no * 4);
	void *ws;

	rng_seed(&r, 9);
	ku_fill(&r, x, (size_t)nt * ni, 1);
	ku_fill(&r, w, (size_t)no * ni, 1);
	ws = ku_store(w, (size_t)no * ni, BE_BF16);
	be1.ops->matmul(be1.ctx, yb, x, ws, BE_BF16, nt, no, ni);
	be3.ops->matmul(be3.ctx, y3, x, ws, BE_BF16, nt, no, ni);
	CHECK(memcmp(yb, y3, (size_t)nt * no * 4) == 0, "1 vs 3 threads differ");
	for (int t = 0; t < nt; t++) {
		be3.ops->matmul(be3.ctx, y1, x + (size_t)t * ni, ws, BE_BF16, 1, no, ni);
		CHECK(memcmp(y1, yb + (size_t)t * no, (size_t)no * 4) == 0, "row %d alone differs", t);
	}
	free(x);
	free(w);
	free(yb);
	free(y1);
	free(y3);
	free(ws);
}

/*
 * Every instruction-set path this CPU runs (AVX-512 and AVX2 register-
 * blocked GEMMs) gives bitwise the portable C path's y, for every dtype,
 * token counts around the micro-tile sizes (4x4, 3x2) and a lane tail.
 */
static void test_matmul_isa_paths_equal(void)
{
	const enum be_dtype dts[] = { BE_F32, BE_BF16, BE_F16 };
	const int shapes[][3] = { { 1, 37, 256 }, { 7, 70, 131 }, { 13, 9, 272 }, { 4, 4, 16 }, { 6, 5, 48 }, { 2, 3, 2304 }, { 70, 9, 48 } };
	int top = cpu_matmul_isa(), low;
	struct rng r;

	cpu_matmul_set_isa(CPU_ISA_PORTABLE);
	low = cpu_matmul_isa();
	CHECK(low == CPU_ISA_PORTABLE, "cannot select the portable path");
	if (low == top)
		printf("  note: only the portable path on this CPU: nothing to compare\n");
	else
		printf("  compared isa %d..%d with the portable path\n", low + 1, top);

	rng_seed(&r, 21);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		int nt = shapes[s][0], no = shapes[s][1], ni = shapes[s][2];
		float *x = malloc((size_t)nt * ni * 4), *w = malloc((size_t)no * ni * 4);
		float *ref = malloc((size_t)nt * no * 4), *y = malloc((size_t)nt * no * 4);
		ku_fill(&r, x, (size_t)nt * ni, 1);
		ku_fill(&r, w, (size_t)no * ni, 1);
		for (int d = 0; d < 3; d++) {
			void *ws = ku_store(w, (size_t)no * ni, dts[d]);
			cpu_matmul_set_isa(low);
			be3.ops->matmul(be3.ctx, ref, x, ws, dts[d], nt, no, ni);
			for (int isa = low + 1; isa <= top; isa++) {
				cpu_matmul_set_isa(isa);
				CHECK(cpu_matmul_isa() == isa, "isa %d not selected", isa);
				memset(y, 0xff, (size_t)nt * no * 4);
				be3.ops->matmul(be3.ctx, y, x, ws, dts[d], nt, no, ni);
				CHECK(memcmp(y, ref, (size_t)nt * no * 4) == 0,
				      "isa %d differs from isa %d (dtype %d, %dx%dx%d)", isa, low, dts[d], nt, no, ni);
			}
			free(ws);
		}
		free(x);
		free(w);
		free(ref);
		free(y);
	}
	cpu_matmul_set_isa(CPU_ISA_AVX512);	/* back to the CPU's best */
	CHECK(cpu_matmul_isa() == top, "isa not restored");
}

static void test_matmul_batch_invariant(void)
{
	batch_invariant(131);	/* lane tail */
	batch_invariant(128);	/* no tail: the in-register reduction */
}

int main(void)
{
	if (ku_open(&be1, 1) < 0 || ku_open(&be3, 3) < 0)
		return 1;
	RUN(test_matmul_hand);
	RUN(test_matmul_odd_sizes_vs_double);
	RUN(test_matmul_batch_invariant);
	RUN(test_matmul_isa_paths_equal);
	be_destroy(&be1);
	be_destroy(&be3);
	return th_done();
}
