/*
 * bench_prefix.c - what automatic prefix caching saves, measured against
 * the engine with caching off in the same run, same model, same threads.
 *
 *   1. burst: N requests (default 16) share a P-token system prompt
 *      (default 1024) and each adds S unique tokens (default 32), submitted
 *      at once to a fresh engine: median TTFT and the burst's wall time,
 *      caching off vs on (cold cache: the first request computes the
 *      prefix, the others share its blocks as soon as they are scheduled);
 *   2. warm: one request whose prefix is cached vs the same request on the
 *      engine with caching off (TTFT ratio; only the suffix is computed);
 *   3. no hit: N requests with unique prompts of the same length, on vs
 *      off (wall time: the bookkeeping's cost when nothing is shared);
 *   4. multi-turn chat: U users (8) share a 512-token system prompt; each
 *      of T turns (4) resends the user's whole history (its earlier 24-token
 *      messages and the replies generated) plus a new message; every
 *      user's turn t is submitted together, then turn t + 1: generated
 *      tokens per second and p50 / p99 TTFT over all turns, off vs on.
 * Validation first: every request's greedy tokens are the same with
 * caching on and off. Each case runs R times (default 3), alternating off
 * and on; medians.
 *
 *   bench_prefix [--model DIR] [--requests N] [--prefix P] [--suffix S]
 *                [--threads T] [--repeat R]
 * Default model: build/test-models/tiny (mkmodel --preset tiny: Gemma 2's
 * vocabulary and alternating sliding-window layers, small widths).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"
#include "engine/engine.h"
#include "bench/bench_util.h"

#define MAX_N 64
#define OUT 4
#define MAX_R 9

static int N = 16, P = 1024, S = 32, R = 3;
static struct ld_model *g_m;

struct out {
	int tok[OUT], n, n_cached, final;
	double ttft;
};
static struct out outs[MAX_N];
static int n_final;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void on_out(const struct eng_output *o)
{
	struct out *r = o->user;
	for (int i = 0; i < o->n_tokens && r->n < OUT; i++)
		r->tok[r->n++] = o->tokens[i];
	if (o->final) {
		pthread_mutex_lock(&mu);
		r->final = 1;
		r->n_cached = o->n_cached_tokens;
		r->ttft = o->t_first_token - o->t_queued;
		n_final++;
		pthread_cond_signal(&cv);
		pthread_mutex_unlock(&mu);
	}
}

static uint64_t rs = 0x2545f4914f6cdd1dull;
static int rnd(int n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (int)(rs % (uint64_t)n);
}

#define MT_U 8
#define MT_T 4
#define MT_SYS 512
#define MT_MSG 24
#define MT_LEN (MT_SYS + MT_T * (MT_MSG + OUT))

static int *g_prompts[MAX_N];	/* [N][P + S] shared prefix + unique suffix */
static int *g_unique[MAX_N];	/* [N][P + S] all unique */

static struct engine *mk(int caching)
{
	struct eng_opts o;
	struct g2_weights w;
	struct engine *e = NULL;
	eng_opts_default(&o);
	o.max_num_seqs = N;
	o.max_num_batched_tokens = 2048;
	o.max_model_len = MAX(P + S, MT_LEN) + OUT + 1;
	o.enable_prefix_caching = caching;
	o.kv_bytes = (size_t)(N + 1) * (size_t)((MAX(P + S, MT_LEN) + OUT + 16) / 16 + 1) *
		     kv_bytes_per_block(&g_m->cfg, 16, g_m->be->ops->kv_dtype);
	ld_g2_weights(g_m, &w);
	if (eng_create(&o, &w, NULL, on_out, &e) < 0 || eng_warmup(e) < 0) {
		eng_destroy(e);
		return NULL;
	}
	return e;
}

static double burst_len(struct engine *e, int **prompts, const int *len, int n, double *ttft);

/* Submits prompts[0..n) (P + S tokens each) at once; waits; returns the wall
 * time, the TTFT median in *ttft. */
static double burst(struct engine *e, int **prompts, int n, double *ttft)
{
	int len[MAX_N];
	for (int i = 0; i < n; i++)
		len[i] = P + S;
	return burst_len(e, prompts, len, n, ttft);
}

static double pct(double *v, int n, double q)
{
	qsort(v, (size_t)n, sizeof(double), cmp_dbl);
	int k = (int)(q * n + 0.999999) - 1;
	return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/*
 * Case 4 on engine e: returns generated tokens per second; p50 / p99 TTFT
 * in ttft[0..1]; every reply into replies (checked against the other run).
 */
static double multi_turn(struct engine *e, double *ttft, int replies[MT_U][MT_T][OUT])
{
	static int hist[MT_U][MT_LEN];
	int *pp[MT_U], len[MT_U], n_gen = 0;
	double all[MT_U * MT_T], t = 0, dummy;
	uint64_t r0 = 0x9e3779b97f4a7c15ull;

	for (int u = 0; u < MT_U; u++) {
		uint64_t r = 0x2545f4914f6cdd1dull;	/* the same system prompt for all */
		for (int k = 0; k < MT_SYS; k++) {
			r ^= r << 13; r ^= r >> 7; r ^= r << 17;
			hist[u][k] = 1000 + (int)(r % (uint64_t)(g_m->cfg.vocab_size - 1000));
		}
		hist[u][0] = g_m->cfg.bos_token_id > 0 ? g_m->cfg.bos_token_id : 2;
		len[u] = MT_SYS;
		pp[u] = hist[u];
	}
	for (int turn = 0; turn < MT_T; turn++) {
		for (int u = 0; u < MT_U; u++)
			for (int k = 0; k < MT_MSG; k++) {
				r0 ^= r0 << 13; r0 ^= r0 >> 7; r0 ^= r0 << 17;
				hist[u][len[u]++] = 1000 + (int)(r0 % (uint64_t)(g_m->cfg.vocab_size - 1000));
			}
		t += burst_len(e, pp, len, MT_U, &dummy);
		for (int u = 0; u < MT_U; u++) {
			all[turn * MT_U + u] = outs[u].ttft;
			memcpy(replies[u][turn], outs[u].tok, sizeof(int) * OUT);
			memcpy(&hist[u][len[u]], outs[u].tok, sizeof(int) * OUT);
			len[u] += OUT;
			n_gen += outs[u].n;
		}
	}
	ttft[0] = pct(all, MT_U * MT_T, 0.50);
	ttft[1] = pct(all, MT_U * MT_T, 0.99);
	return n_gen / t;
}

/* Submits prompts[i] (len[i] tokens), i < n, at once; waits; returns the
 * wall time, the TTFT median in *ttft. */
static double burst_len(struct engine *e, int **prompts, const int *len, int n, double *ttft)
{
	struct eng_sampling s;
	double t0, v[MAX_N];
	eng_sampling_default(&s);
	s.temperature = 0;
	s.max_tokens = OUT;
	s.ignore_eos = 1;
	memset(outs, 0, sizeof(outs));
	n_final = 0;
	t0 = now_sec();
	for (int i = 0; i < n; i++) {
		uint64_t id;
		if (eng_submit(e, prompts[i], len[i], &s, &outs[i], &id, NULL, 0) < 0)
			return -1;
	}
	pthread_mutex_lock(&mu);
	while (n_final < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	t0 = now_sec() - t0;
	for (int i = 0; i < n; i++)
		v[i] = outs[i].ttft;
	*ttft = median(v, n);
	return t0;
}

int main(int argc, char **argv)
{
	const char *dir = "build/test-models/tiny";
	struct be_opts bo = { .n_threads = 0 };
	struct ld_opts lo;
	struct be be;
	static int ref[MAX_N][OUT];
	double b_ttft[2][MAX_R], b_wall[2][MAX_R], w_ttft[2][MAX_R], u_wall[2][MAX_R];
	double m_tps[2][MAX_R], m_p50[2][MAX_R], m_p99[2][MAX_R];
	static int m_rep[2][MT_U][MT_T][OUT];
	int cached_sum = 0;

	g_bench = "bench_prefix";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--model")) dir = argv[i + 1];
		else if (!strcmp(argv[i], "--requests")) N = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--prefix")) P = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--suffix")) S = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--threads")) bo.n_threads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--repeat")) R = atoi(argv[i + 1]);
	}
	if (N < 2 || N > MAX_N || P < 16 || S < 1 || R < 1 || R > MAX_R) {
		fprintf(stderr, "bench_prefix: --requests 2..%d, --prefix >= 16, --suffix >= 1, "
			"--repeat 1..%d\n", MAX_N, MAX_R);
		return 2;
	}
	log_setup(stderr, 0, LOG_WARN);
	ld_opts_default(&lo);
	if (be_create("cpu", &bo, &be) < 0 || ld_load(dir, &lo, &be, NULL, &g_m) < 0) {
		fprintf(stderr, "bench_prefix: cannot load %s (make it: build/mkmodel --preset tiny --out %s)\n",
			dir, dir);
		return 1;
	}
	for (int i = 0; i < N; i++) {
		g_prompts[i] = malloc(sizeof(int) * (size_t)(P + S));
		g_unique[i] = malloc(sizeof(int) * (size_t)(P + S));
	}
	for (int k = 0; k < P; k++) {
		int t = 1000 + rnd(g_m->cfg.vocab_size - 1000);
		for (int i = 0; i < N; i++)
			g_prompts[i][k] = t;
	}
	for (int i = 0; i < N; i++) {
		for (int k = P; k < P + S; k++)
			g_prompts[i][k] = 1000 + rnd(g_m->cfg.vocab_size - 1000);
		for (int k = 0; k < P + S; k++)
			g_unique[i][k] = 1000 + rnd(g_m->cfg.vocab_size - 1000);
		g_prompts[i][0] = g_unique[i][0] = g_m->cfg.bos_token_id > 0 ? g_m->cfg.bos_token_id : 2;
	}
	for (int r = 0; r < R; r++) {
		for (int on = 0; on < 2; on++) {
			struct engine *e = mk(on);
			double t;
			if (!e) {
				fprintf(stderr, "bench_prefix: engine failed\n");
				return 1;
			}
			/* 1. burst on a cold cache */
			b_wall[on][r] = burst(e, g_prompts, N, &b_ttft[on][r]);
			for (int i = 0; i < N; i++) {
				if (outs[i].n != OUT) {
					printf("FAIL request %d: %d tokens\n", i, outs[i].n);
					return 1;
				}
				if (r == 0 && !on)
					memcpy(ref[i], outs[i].tok, sizeof(ref[i]));
				else if (memcmp(ref[i], outs[i].tok, sizeof(ref[i]))) {
					printf("FAIL request %d: tokens differ with caching %s\n", i,
					       on ? "on" : "off");
					return 1;
				}
				if (on && r == 0)
					cached_sum += outs[i].n_cached;
			}
			/* 2. one request again: its prefix is cached when on */
			burst(e, g_prompts + 1, 1, &w_ttft[on][r]);
			if (on && outs[0].n_cached < P - 16) {
				printf("FAIL warm request: %d tokens cached\n", outs[0].n_cached);
				return 1;
			}
			/* 3. unique prompts: nothing to share */
			t = burst(e, g_unique, N, &(double){ 0 });
			u_wall[on][r] = t;
			eng_destroy(e);
			/* 4. multi-turn chat on a fresh engine */
			double mt[2];
			if (!(e = mk(on))) {
				fprintf(stderr, "bench_prefix: engine failed\n");
				return 1;
			}
			m_tps[on][r] = multi_turn(e, mt, m_rep[on]);
			m_p50[on][r] = mt[0];
			m_p99[on][r] = mt[1];
			eng_destroy(e);
			if (on && memcmp(m_rep[0], m_rep[1], sizeof(m_rep[0]))) {
				printf("FAIL multi-turn: replies differ with caching on\n");
				return 1;
			}
		}
	}
	printf("model %s, %d threads, %d requests x (%d shared + %d unique tokens), %d out, "
	       "median of %d\n", dir, bo.n_threads, N, P, S, OUT, R);
	printf("validation ok: tokens identical with caching on and off; burst served %d prompt "
	       "tokens from the cache\n", cached_sum);
	double bt0 = median(b_ttft[0], R), bt1 = median(b_ttft[1], R);
	double bw0 = median(b_wall[0], R), bw1 = median(b_wall[1], R);
	double wt0 = median(w_ttft[0], R), wt1 = median(w_ttft[1], R);
	double uw0 = median(u_wall[0], R), uw1 = median(u_wall[1], R);
	rec("burst TTFT median: off %.4f s, on %.4f s, on/off %.3f", bt0, bt1, bt1 / bt0);
	rec("burst wall time:   off %.4f s, on %.4f s, on/off %.3f", bw0, bw1, bw1 / bw0);
	rec("warm single request TTFT (%d-token prefix cached): off %.4f s, on %.4f s, on/off %.3f",
	    P, wt0, wt1, wt1 / wt0);
	rec("no-hit burst (unique prompts) wall time: off %.4f s, on %.4f s, on/off %.3f", uw0, uw1,
	    uw1 / uw0);
	double tp0 = median(m_tps[0], R), tp1 = median(m_tps[1], R);
	double p50a = median(m_p50[0], R), p50b = median(m_p50[1], R);
	double p99a = median(m_p99[0], R), p99b = median(m_p99[1], R);
	rec("multi-turn (%d users x %d turns, %d-token system prompt): generated tokens/s off %.1f, "
	    "on %.1f, on/off %.2f", MT_U, MT_T, MT_SYS, tp0, tp1, tp1 / tp0);
	rec("multi-turn TTFT p50: off %.4f s, on %.4f s, on/off %.3f; p99: off %.4f s, on %.4f s, "
	    "on/off %.3f", p50a, p50b, p50b / p50a, p99a, p99b, p99b / p99a);
	rec_summary();
	for (int i = 0; i < N; i++) {
		free(g_prompts[i]);
		free(g_unique[i]);
	}
	ld_model_destroy(g_m);
	be_destroy(&be);
	return 0;
}
