/*
 * bench_sampling.c - cost of one sampling step over a real-size vocabulary
 * (256000) per sampling mode, through the CPU backend's sample op
 * (be_ops.sample, kernels/cpu/cpu_sample.c: the engine's one sampler),
 * against baselines measured in the same run:
 *   pass:  one read pass over the row (a plain argmax loop) - the floor;
 *   sort:  a full qsort of the row (what a naive top-k/top-p would do).
 * Validation first: greedy returns the argmax; top_k=50 draws stay in the
 * 50 largest; top_p=0.9 draws stay in the nucleus computed by full sort.
 * Each mode's figure is the median of its repetitions (each the mean of
 * --iters calls, the row copy included: the op writes the row).
 *
 * Then a step of 16 rows (top_p 0.9): one op call per row vs one call for
 * all 16 (rows spread over the backend's threads); the draws must be
 * identical (each row carries its own u).
 *
 *   bench_sampling [--vocab N] [--iters N] [--threads N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/backend.h"
#include "engine/sampling.h"

#define REPS 5

static float *row, *work;
static int V = 256000;
static struct be g_cpu;

static int cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(double), cmp_dbl);
	return t[n / 2];
}

static int argmax(const float *l, int n)
{
	int am = 0;
	for (int i = 1; i < n; i++)
		if (l[i] > l[am])
			am = i;
	return am;
}

/* One row sampled by the op with parameters p (u from r), history hist. */
static int sample1(struct smp *s, float *l, const struct eng_sampling *p, struct rng *r,
		   const int *hist, int n_hist, struct be_sample_pair *pairs)
{
	struct be_sample_row sr;
	struct be_sample_out o;

	smp_row_build(s, p, r, hist, n_hist / 2, n_hist, NULL, 0, &sr, 0, pairs,
		      smp_pairs_max(n_hist, 0));
	g_cpu.ops->sample(g_cpu.ctx, &o, l, &sr, pairs, 1, V);
	return o.token;
}

static double time_mode(struct smp *s, const struct eng_sampling *p, const int *hist, int n_hist,
			int iters, struct be_sample_pair *pairs)
{
	struct rng r;
	double t[REPS], t0;
	rng_seed(&r, 1);
	for (int rep = 0; rep < REPS; rep++) {
		t0 = now_sec();
		for (int i = 0; i < iters; i++) {
			memcpy(work, row, (size_t)V * sizeof(float));
			sample1(s, work, p, &r, hist, n_hist, pairs);
		}
		t[rep] = (now_sec() - t0) / iters;
	}
	return median(t, REPS);
}

static int validate(struct smp *s, struct rng *r, struct be_sample_pair *pairs)
{
	struct eng_sampling p;
	int am = argmax(row, V), fails = 0;
	double z = 0, cum = 0, mx;
	float kth, nucleus_min;

	eng_sampling_default(&p);
	p.temperature = 0;
	memcpy(work, row, (size_t)V * sizeof(float));
	if (sample1(s, work, &p, r, NULL, 0, pairs) != am) {
		printf("FAIL greedy is not the argmax %d\n", am);
		fails++;
	}
	memcpy(work, row, (size_t)V * sizeof(float));
	qsort(work, (size_t)V, sizeof(float), cmp_desc);
	kth = work[49];
	mx = work[0];
	nucleus_min = work[0];
	for (int i = 0; i < V; i++)
		z += exp(work[i] - mx);
	for (int i = 0; i < V && cum < 0.9 * z; i++) {
		cum += exp(work[i] - mx);
		nucleus_min = work[i];
	}
	for (int m = 0; m < 2; m++) {
		eng_sampling_default(&p);
		p.top_k = m == 0 ? 50 : 0;
		p.top_p = m == 0 ? 1 : 0.9;
		for (int i = 0; i < 200; i++) {
			memcpy(work, row, (size_t)V * sizeof(float));
			int t = sample1(s, work, &p, r, NULL, 0, pairs);
			if (row[t] < (m == 0 ? kth : nucleus_min)) {
				printf("FAIL %s drew a token outside its set\n", m == 0 ? "top_k" : "top_p");
				fails++;
				break;
			}
		}
	}
	return fails;
}

/* 16 rows top_p 0.9: one op call per row vs one call for all; same draws. */
static int step16(struct smp *s, struct be_sample_pair *pairs)
{
	enum { ROWS = 16 };
	struct eng_sampling p;
	struct be_sample_row sr[ROWS];
	struct be_sample_out o[ROWS], o1;
	float *rows = malloc((size_t)ROWS * V * sizeof(float));
	double t1[REPS], tn[REPS], t0;
	int fails = 0;

	eng_sampling_default(&p);
	p.top_p = 0.9;
	for (int i = 0; i < ROWS; i++) {
		struct rng r;
		rng_seed(&r, 500 + (uint64_t)i);
		smp_row_build(s, &p, &r, NULL, 0, 0, NULL, 0, &sr[i], 0, pairs, 0);
	}
	for (int rep = 0; rep < REPS && !fails; rep++) {
		int tok1[ROWS];
		for (int i = 0; i < ROWS; i++)
			memcpy(rows + (size_t)i * V, row, (size_t)V * sizeof(float));
		t0 = now_sec();
		for (int i = 0; i < ROWS; i++) {
			g_cpu.ops->sample(g_cpu.ctx, &o1, rows + (size_t)i * V, &sr[i], pairs, 1, V);
			tok1[i] = o1.token;
		}
		t1[rep] = now_sec() - t0;
		for (int i = 0; i < ROWS; i++)
			memcpy(rows + (size_t)i * V, row, (size_t)V * sizeof(float));
		t0 = now_sec();
		g_cpu.ops->sample(g_cpu.ctx, o, rows, sr, pairs, ROWS, V);
		tn[rep] = now_sec() - t0;
		for (int i = 0; i < ROWS; i++)
			if (o[i].token != tok1[i]) {
				printf("FAIL row %d: %d alone, %d in the step\n", i, tok1[i], o[i].token);
				fails++;
				break;
			}
	}
	if (!fails) {
		double a = median(t1, REPS), b = median(tn, REPS);
		printf("16 rows top_p 0.9: one row per call %.2f ms, one call %.2f ms (%.2fx; same draws)\n",
		       a * 1e3, b * 1e3, a / b);
	}
	free(rows);
	return fails;
}

int main(int argc, char **argv)
{
	struct be_opts bo = { .n_threads = 0 };
	struct smp *s = NULL;
	struct be_sample_pair *pairs;
	struct eng_sampling p;
	struct rng r;
	int iters = 30, *hist, n_hist = 2000;
	double t_copy, t_pass, t_sort, t0, tp[REPS];

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--vocab") == 0)
			V = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--iters") == 0)
			iters = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--threads") == 0)
			bo.n_threads = atoi(argv[i + 1]);
	}
	if (V < 100 || iters < 1 || smp_create(V, &s) < 0) {
		fprintf(stderr, "usage: bench_sampling [--vocab N>=100] [--iters N] [--threads N]\n");
		return 2;
	}
	if (be_create("cpu", &bo, &g_cpu) < 0) {
		fprintf(stderr, "bench_sampling: cannot create the cpu backend\n");
		return 1;
	}
	row = malloc((size_t)V * sizeof(float));
	work = malloc((size_t)V * sizeof(float));
	hist = malloc((size_t)n_hist * sizeof(int));
	pairs = malloc((size_t)smp_pairs_max(n_hist, 0) * sizeof(*pairs));
	rng_seed(&r, 42);
	/* LM-like row: soft-capped (30) normal logits with a few strong tokens */
	for (int i = 0; i < V; i++)
		row[i] = (float)(30.0 * tanh(rng_normal(&r) * 3.0 / 30.0));
	for (int i = 0; i < 20; i++)
		row[rng_next(&r) % (uint64_t)V] += 12.0f;
	for (int i = 0; i < n_hist; i++)
		hist[i] = (int)(rng_next(&r) % (uint64_t)V);

	if (validate(s, &r, pairs))
		return 1;
	printf("validation ok (greedy = argmax, top_k and top_p sets respected)\n");

	/* ---- baselines ---- */
	t0 = now_sec();
	for (int i = 0; i < iters; i++)
		memcpy(work, row, (size_t)V * sizeof(float));
	t_copy = (now_sec() - t0) / iters;
	volatile int sink = 0;
	for (int rep = 0; rep < REPS; rep++) {
		t0 = now_sec();
		for (int i = 0; i < iters; i++) {
			memcpy(work, row, (size_t)V * sizeof(float));
			sink += argmax(work, V);
		}
		tp[rep] = (now_sec() - t0) / iters;
	}
	t_pass = median(tp, REPS);
	t0 = now_sec();
	for (int i = 0; i < 3; i++) {
		memcpy(work, row, (size_t)V * sizeof(float));
		qsort(work, (size_t)V, sizeof(float), cmp_desc);
	}
	t_sort = (now_sec() - t0) / 3;
	(void)sink;
	printf("vocab %d; baselines per row: copy %.3f ms, copy+argmax pass %.3f ms, "
	       "copy+full qsort %.2f ms\n", V, t_copy * 1e3, t_pass * 1e3, t_sort * 1e3);
	printf("%-36s %10s %12s %12s\n", "mode (incl. the row copy)", "ms/token", "x pass", "x qsort");

	struct {
		const char *name;
		double temp, top_p, min_p, rep;
		int top_k, logprobs, hist;
	} modes[] = {
		{ "greedy", 0, 1, 0, 1, 0, -1, 0 },
		{ "temperature 1 (full distribution)", 1, 1, 0, 1, 0, -1, 0 },
		{ "top_k 50", 1, 1, 0, 1, 50, -1, 0 },
		{ "top_p 0.9", 1, 0.9, 0, 1, 0, -1, 0 },
		{ "top_k 50 + top_p 0.9", 0.8, 0.9, 0, 1, 50, -1, 0 },
		{ "min_p 0.05", 1, 1, 0.05, 1, 0, -1, 0 },
		{ "greedy + logprobs 5", 0, 1, 0, 1, 0, 5, 0 },
		{ "top_p 0.9 + penalties (2000 hist)", 1, 0.9, 0, 1.1, 0, -1, 1 },
	};
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		eng_sampling_default(&p);
		p.temperature = modes[m].temp;
		p.top_p = modes[m].top_p;
		p.min_p = modes[m].min_p;
		p.top_k = modes[m].top_k;
		p.logprobs = modes[m].logprobs;
		p.repetition_penalty = modes[m].rep;
		if (modes[m].hist) {
			p.frequency_penalty = 0.2;
			p.presence_penalty = 0.1;
		}
		double t = time_mode(s, &p, hist, modes[m].hist ? n_hist : 0, iters, pairs);
		printf("%-36s %10.3f %12.2f %12.3f\n", modes[m].name, t * 1e3, t / t_pass, t / t_sort);
	}
	if (step16(s, pairs))
		return 1;
	smp_destroy(s);
	be_destroy(&g_cpu);
	free(pairs);
	free(row);
	free(work);
	free(hist);
	return 0;
}
