/*
 * bench_cpu_gemm.c - the CPU matmul (kernels/cpu/cpu_matmul.c) on the 2b
 * FFN shape (n_out 9216, n_in 2304, bf16 weights) at 1, 4, 64 and 256
 * tokens, each instruction-set path in turn, interleaved rep by rep so
 * machine noise falls on all of them alike; medians of --reps (5).
 *
 * Baselines in the same run: the portable path (one W row x up to 4
 * tokens per inner loop, compiled for the same ISA: the shape of the
 * kernel before issue 19) and the machine's FMA peak (threads running
 * independent register-only FMA chains, AVX2 and AVX-512). Validation
 * first: every path's y must equal the portable path's bitwise.
 *
 *   bench_cpu_gemm [--threads N] [--reps R]
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu.h"

#define N_OUT 9216
#define N_IN 2304
#define MAX_REPS 15
#define PEAK_ITERS 20000000L

static const char *const isa_name[] = { "portable", "avx2", "avx512" };

__attribute__((target("avx2,fma"))) static void *peak256(void *arg)
{
	__m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
	__m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3);
	__m256 a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5), a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7);
	for (long k = 0; k < PEAK_ITERS; k++) {
		a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c);
		a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c); a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c);
	}
	a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
	*(float *)arg = _mm256_cvtss_f32(a0);
	return NULL;
}

__attribute__((target("avx512f"))) static void *peak512(void *arg)
{
	__m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
	__m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2), a3 = _mm512_set1_ps(3);
	__m512 a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5), a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7);
	for (long k = 0; k < PEAK_ITERS; k++) {
		a0 = _mm512_fmadd_ps(a0, m, c); a1 = _mm512_fmadd_ps(a1, m, c); a2 = _mm512_fmadd_ps(a2, m, c); a3 = _mm512_fmadd_ps(a3, m, c);
		a4 = _mm512_fmadd_ps(a4, m, c); a5 = _mm512_fmadd_ps(a5, m, c); a6 = _mm512_fmadd_ps(a6, m, c); a7 = _mm512_fmadd_ps(a7, m, c);
	}
	a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
	*(float *)arg = _mm512_reduce_add_ps(a0);
	return NULL;
}

/* GFLOP/s of n threads running fn (8 chains of width lanes each). */
static double peak(void *(*fn)(void *), int n, int lanes)
{
	pthread_t th[64];
	float sink[64];
	double t0 = now_sec();
	for (int i = 0; i < n; i++)
		pthread_create(&th[i], NULL, fn, &sink[i]);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return 2.0 * 8 * lanes * PEAK_ITERS * n / (now_sec() - t0) / 1e9;
}

static double median(double *a, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && a[j] < a[j - 1]; j--) {
			double t = a[j];
			a[j] = a[j - 1];
			a[j - 1] = t;
		}
	return a[n / 2];
}

int main(int argc, char **argv)
{
	struct be_opts bo = { .n_threads = 2 };
	struct be be;
	struct rng r;
	const int toks[] = { 1, 4, 64, 256 };
	int reps = 5, top;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--threads") == 0)
			bo.n_threads = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--reps") == 0)
			reps = atoi(argv[i + 1]);
	}
	if (reps < 1 || reps > MAX_REPS || bo.n_threads < 1 || bo.n_threads > 64) {
		fprintf(stderr, "usage: bench_cpu_gemm [--threads 1..64] [--reps 1..%d]\n", MAX_REPS);
		return 2;
	}
	log_setup(stderr, 0, LOG_WARN);
	if (be_create("cpu", &bo, &be) < 0)
		return 1;
	top = cpu_matmul_isa();
	uint16_t *w = malloc((size_t)N_OUT * N_IN * 2);
	float *x = malloc((size_t)256 * N_IN * 4), *y = malloc((size_t)256 * N_OUT * 4);
	float *ref = malloc((size_t)256 * N_OUT * 4);
	rng_seed(&r, 5);
	for (size_t i = 0; i < (size_t)N_OUT * N_IN; i++)
		w[i] = f32_to_bf16(((float)(rng_next(&r) % 2001) - 1000.0f) / 40000.0f);
	for (size_t i = 0; i < (size_t)256 * N_IN; i++)
		x[i] = ((float)(rng_next(&r) % 2001) - 1000.0f) / 1000.0f;

	/* validation: every path equals the portable one bitwise */
	cpu_matmul_set_isa(CPU_ISA_PORTABLE);
	be.ops->matmul(be.ctx, ref, x, w, BE_BF16, 7, N_OUT, N_IN);
	for (int isa = CPU_ISA_PORTABLE + 1; isa <= top; isa++) {
		cpu_matmul_set_isa(isa);
		be.ops->matmul(be.ctx, y, x, w, BE_BF16, 7, N_OUT, N_IN);
		if (memcmp(y, ref, (size_t)7 * N_OUT * 4) != 0) {
			printf("FAIL bench_cpu_gemm: %s differs from portable\n", isa_name[isa]);
			return 1;
		}
	}
	printf("validation ok: %d path(s) bitwise equal to portable\n", top + 1);

	double p256 = peak(peak256, bo.n_threads, 8);
	double p512 = top >= CPU_ISA_AVX512 ? peak(peak512, bo.n_threads, 16) : 0;
	printf("FMA peak, %d threads: avx2 %.1f GFLOP/s, avx512 %.1f GFLOP/s\n", bo.n_threads, p256, p512);
	printf("matmul bf16 n_out=%d n_in=%d, %d threads, medians of %d (GFLOP/s; x portable)\n", N_OUT,
	       N_IN, bo.n_threads, reps);
	for (size_t k = 0; k < sizeof(toks) / sizeof(toks[0]); k++) {
		int nt = toks[k];
		double t[3][MAX_REPS], g[3];
		for (int rep = 0; rep < reps; rep++)
			for (int isa = 0; isa <= top; isa++) {
				cpu_matmul_set_isa(isa);
				double t0 = now_sec();
				be.ops->matmul(be.ctx, y, x, w, BE_BF16, nt, N_OUT, N_IN);
				t[isa][rep] = now_sec() - t0;
			}
		printf("  n_tok %3d:", nt);
		for (int isa = 0; isa <= top; isa++) {
			g[isa] = 2.0 * nt * N_OUT * N_IN / median(t[isa], reps) / 1e9;
			printf("  %s %6.1f (%.2fx)", isa_name[isa], g[isa], g[isa] / g[0]);
		}
		printf("  | best %.0f%% of the avx2 peak; weights %.1f GB/s\n", 100 * g[top] / p256,
		       (double)N_OUT * N_IN * 2 / (2.0 * nt * N_OUT * N_IN / g[top] / 1e9) / 1e9);
	}
	cpu_matmul_set_isa(top);
	free(w);
	free(x);
	free(y);
	free(ref);
	be_destroy(&be);
	return 0;
}
