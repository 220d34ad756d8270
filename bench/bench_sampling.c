/*
 * bench_sampling.c - cost of one sampling step over a real-size vocabulary
 * (256000) per sampling mode, against baselines measured in the same run:
 *   pass:  one read pass over the row (a plain argmax loop) - the floor;
 *   sort:  a full qsort of the row (what a naive top-k/top-p would do).
 * Validation first: greedy returns the argmax; top_k=50 draws stay in the
 * 50 largest; top_p=0.9 draws stay in the nucleus computed by full sort.
 *
 * Then a step of 16 rows (top_p 0.9) sampled one after another vs. on the
 * engine's row pool (engine/engine_pool.c) with min(4, CPUs) workers; the draws must
 * be identical (each row owns its rng).
 *
 *   bench_sampling [--vocab N] [--iters N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "engine/engine_pool.h"
#include "engine/sampling.h"

static float *row, *work;
static int V = 256000;

static int cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

struct pool_job {
	float *rows;
	struct eng_sampling p;
	struct rng rng[16];
	int tok[16];
	struct smp *smps[4];
};

static void setup_job(struct pool_job *j, int n)
{
	for (int i = 0; i < n; i++) {
		memcpy(j->rows + (size_t)i * V, row, (size_t)V * sizeof(float));
		rng_seed(&j->rng[i], 500 + (uint64_t)i);
	}
}

static void pool_row(void *arg, int i, int worker)
{
	struct pool_job *j = arg;
	struct smp_result res;
	smp_sample(j->smps[worker], j->rows + (size_t)i * V, &j->p, &j->rng[i], NULL, 0, 0, NULL, 0,
		   &res);
	j->tok[i] = res.token;
}

static double time_mode(struct smp *s, const struct eng_sampling *p, const int *hist, int n_hist,
			int iters)
{
	struct smp_result res;
	struct rng r;
	double t0, best = 1e30;
	rng_seed(&r, 1);
	for (int rep = 0; rep < 3; rep++) {
		t0 = now_sec();
		for (int i = 0; i < iters; i++) {
			memcpy(work, row, (size_t)V * sizeof(float));
			smp_sample(s, work, p, &r, hist, n_hist / 2, n_hist, NULL, 0, &res);
		}
		best = fmin(best, (now_sec() - t0) / iters);
	}
	return best;
}

int main(int argc, char **argv)
{
	struct smp *s = NULL;
	struct eng_sampling p;
	struct rng r;
	int iters = 50, *hist, n_hist = 2000, fails = 0;
	double t_copy, t_pass, t_sort, t0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--vocab") == 0)
			V = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--iters") == 0)
			iters = atoi(argv[i + 1]);
	}
	if (V < 100 || iters < 1 || smp_create(V, &s) < 0) {
		fprintf(stderr, "usage: bench_sampling [--vocab N>=100] [--iters N]\n");
		return 2;
	}
	row = malloc((size_t)V * sizeof(float));
	work = malloc((size_t)V * sizeof(float));
	hist = malloc((size_t)n_hist * sizeof(int));
	rng_seed(&r, 42);
	/* LM-like row: soft-capped (30) normal logits with a few strong tokens */
	for (int i = 0; i < V; i++)
		row[i] = (float)(30.0 * tanh(rng_normal(&r) * 3.0 / 30.0));
	for (int i = 0; i < 20; i++)
		row[rng_next(&r) % (uint64_t)V] += 12.0f;
	for (int i = 0; i < n_hist; i++)
		hist[i] = (int)(rng_next(&r) % (uint64_t)V);

	/* ---- validation ---- */
	{
		struct smp_result res;
		int am = 0;
		for (int i = 1; i < V; i++)
			if (row[i] > row[am])
				am = i;
		eng_sampling_default(&p);
		p.temperature = 0;
		memcpy(work, row, (size_t)V * sizeof(float));
		smp_sample(s, work, &p, &r, NULL, 0, 0, NULL, 0, &res);
		if (res.token != am) {
			printf("FAIL greedy %d != argmax %d\n", res.token, am);
			fails++;
		}
		memcpy(work, row, (size_t)V * sizeof(float));
		qsort(work, (size_t)V, sizeof(float), cmp_desc);
		float kth = work[49];
		double z = 0, cum = 0, mx = work[0];
		float nucleus_min = work[0];
		for (int i = 0; i < V; i++)
			z += exp(work[i] - mx);
		for (int i = 0; i < V && cum < 0.9 * z; i++) {
			cum += exp(work[i] - mx);
			nucleus_min = work[i];
		}
		eng_sampling_default(&p);
		p.top_k = 50;
		for (int i = 0; i < 200; i++) {
			memcpy(work, row, (size_t)V * sizeof(float));
			smp_sample(s, work, &p, &r, NULL, 0, 0, NULL, 0, &res);
			if (row[res.token] < kth) {
				printf("FAIL top_k drew a token outside the top 50\n");
				fails++;
				break;
			}
		}
		eng_sampling_default(&p);
		p.top_p = 0.9;
		for (int i = 0; i < 200; i++) {
			memcpy(work, row, (size_t)V * sizeof(float));
			smp_sample(s, work, &p, &r, NULL, 0, 0, NULL, 0, &res);
			if (row[res.token] < nucleus_min) {
				printf("FAIL top_p drew a token outside the nucleus\n");
				fails++;
				break;
			}
		}
		if (fails)
			return 1;
		printf("validation ok (greedy = argmax, top_k and top_p sets respected)\n");
	}

	/* ---- baselines ---- */
	t0 = now_sec();
	for (int i = 0; i < iters; i++)
		memcpy(work, row, (size_t)V * sizeof(float));
	t_copy = (now_sec() - t0) / iters;
	volatile int sink = 0;
	t_pass = 1e30;
	for (int rep = 0; rep < 3; rep++) {	/* best of 3, as time_mode does */
		t0 = now_sec();
		for (int i = 0; i < iters; i++) {
			memcpy(work, row, (size_t)V * sizeof(float));
			sink += smp_argmax(work, V);
		}
		t_pass = fmin(t_pass, (now_sec() - t0) / iters);
	}
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
		double t = time_mode(s, &p, hist, modes[m].hist ? n_hist : 0, iters);
		printf("%-36s %10.3f %12.2f %12.3f\n", modes[m].name, t * 1e3, t / t_pass, t / t_sort);
	}

	/* ---- a 16-row step: serial vs the row pool ---- */
	{
		enum { ROWS = 16, NW = 4 };
		struct pool_job job;
		struct eng_pool *pool = NULL;
		double ts, tp;
		int tok_s[ROWS];
		job.rows = malloc((size_t)ROWS * V * sizeof(float));
		eng_sampling_default(&job.p);
		job.p.top_p = 0.9;
		for (int w = 0; w < NW; w++)
			smp_create(V, &job.smps[w]);
		eng_pool_create((int)MIN(NW, MAX(1, sysconf(_SC_NPROCESSORS_ONLN))), &pool);
		for (int rep = 0; rep < 2; rep++) {
			setup_job(&job, ROWS);
			t0 = now_sec();
			for (int i = 0; i < ROWS; i++)
				pool_row(&job, i, 0);
			ts = now_sec() - t0;
			memcpy(tok_s, job.tok, sizeof(tok_s));
			setup_job(&job, ROWS);
			t0 = now_sec();
			eng_pool_run(pool, ROWS, pool_row, &job);
			tp = now_sec() - t0;
			if (memcmp(tok_s, job.tok, sizeof(tok_s)) != 0) {
				printf("FAIL pooled draws differ from serial draws\n");
				return 1;
			}
		}
		printf("16 rows top_p 0.9: serial %.2f ms, pool of %d %.2f ms (%.2fx; same draws)\n",
		       ts * 1e3, eng_pool_size(pool), tp * 1e3, ts / tp);
		eng_pool_destroy(pool);
		for (int w = 0; w < NW; w++)
			smp_destroy(job.smps[w]);
		free(job.rows);
	}
	smp_destroy(s);
	free(row);
	free(work);
	free(hist);
	return 0;
}
