/*
 * test_sample.c - the device sampler's reference (the CPU backend's sample
 * op, kernels/cpu/cpu_sample.c over kernels/sample.h) against the host
 * sampler (engine/sampling.c): the same token, logprob and top-N for the
 * same request rng over the whole parameter grid; then by hand: keys,
 * fixed-point targets, ties, holes, an all -inf row, exact probabilities
 * (chi-square), top_p / top_k / min_p sets, penalties and masks.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/sample.h"
#include "engine/sampling.h"
#include "tests/harness.h"
#include "tests/kernels/sample_cases.h"

static struct be g_cpu;

/* Runs case c through the CPU op; o gets the result. */
static int op_sample(const struct sample_case *c, struct smp *s, struct be_sample_out *o)
{
	struct be_sample_row row;
	struct be_sample_pair pairs[SC_MAX_HIST + SC_MAX_MASK];
	struct rng r;
	float *l = malloc((size_t)c->vocab * sizeof(float));
	int n, rc;

	memcpy(l, c->logits, (size_t)c->vocab * sizeof(float));
	rng_seed(&r, c->seed);
	n = smp_device_row(s, &c->p, &r, c->tokens, c->n_prompt, c->n_tokens, c->mask, c->n_mask,
			   &row, 0, pairs, SC_MAX_HIST + SC_MAX_MASK);
	if (n < 0) {
		free(l);
		return n;
	}
	rc = g_cpu.ops->sample(g_cpu.ctx, o, l, &row, pairs, 1, c->vocab);
	free(l);
	return rc;
}

static int host_sample(const struct sample_case *c, struct smp *s, struct smp_result *res)
{
	struct rng r;
	float *l = malloc((size_t)c->vocab * sizeof(float));
	int rc;

	memcpy(l, c->logits, (size_t)c->vocab * sizeof(float));
	rng_seed(&r, c->seed);
	rc = smp_sample(s, l, &c->p, &r, c->tokens, c->n_prompt, c->n_tokens, c->mask, c->n_mask,
			res);
	free(l);
	return rc;
}

static int same_f(float a, float b, float tol)
{
	return (isnan(a) && isnan(b)) || fabsf(a - b) <= tol || a == b;
}

/* Every case of a family: the op and the host sampler agree exactly on the token. */
static void family(int v, uint64_t seed, int n_cases)
{
	struct smp *s = NULL;
	int bad_tok = 0, bad_lp = 0, n_random = 0, n_err = 0;

	CHECK(smp_create(v, &s) == 0, "smp_create");
	for (int i = 0; i < n_cases; i++) {
		struct sample_case c;
		struct be_sample_out o;
		struct smp_result res, dres;
		int hrc, drc;

		sc_make(&c, v, seed, i);
		hrc = host_sample(&c, s, &res);
		drc = op_sample(&c, s, &o);
		CHECK(drc == 0, "case %d: op returned %d", i, drc);
		drc = smp_device_result(&o, &c.p, &dres);
		n_random += c.p.temperature > 0;
		if (hrc < 0 || drc < 0) {
			n_err++;
			CHECK(hrc < 0 && drc < 0, "case %d: host rc %d, device rc %d", i, hrc, drc);
			sc_free(&c);
			continue;
		}
		if (dres.token != res.token) {
			if (bad_tok++ < 5)
				printf("  case %d (T %g k %d p %g min_p %g): host %d device %d\n", i,
				       c.p.temperature, c.p.top_k, c.p.top_p, c.p.min_p, res.token,
				       dres.token);
		}
		if (c.p.logprobs >= 0) {
			int ok = same_f(dres.logprob, res.logprob, 1e-5f) && dres.n_top == res.n_top;
			for (int k = 0; ok && k < res.n_top; k++)
				ok = dres.top[k].token == res.top[k].token &&
				     same_f(dres.top[k].logprob, res.top[k].logprob, 1e-5f);
			if (!ok && bad_lp++ < 5)
				printf("  case %d: logprobs differ (host %g n_top %d, device %g n_top %d)\n",
				       i, res.logprob, res.n_top, dres.logprob, dres.n_top);
		}
		sc_free(&c);
	}
	CHECK(bad_tok == 0, "vocab %d: %d of %d tokens differ from the host sampler", v, bad_tok,
	      n_cases);
	CHECK(bad_lp == 0, "vocab %d: %d logprob results differ", v, bad_lp);
	CHECK(n_random > n_cases / 2, "the grid should be mostly random sampling (%d)", n_random);
	printf("  vocab %d: %d cases (%d random, %d error rows) identical to the host sampler\n", v,
	       n_cases, n_random, n_err);
	smp_destroy(s);
}

static void sample_matches_host_small(void) { family(7, 11, 3000); }
static void sample_matches_host_medium(void) { family(1000, 22, 1500); }
static void sample_matches_host_gemma_vocab(void) { family(256000, 33, 40); }

static void sample_keys_order(void)
{
	/* logit descending, then id ascending; NaN after -inf; -0 == +0 */
	CHECK(smp_key(2.0f, 5) < smp_key(1.0f, 0), "higher logit first");
	CHECK(smp_key(1.0f, 3) < smp_key(1.0f, 4), "ties: lower id first");
	CHECK(smp_key(-1.0f, 0) < smp_key(-2.0f, 0), "negative order");
	CHECK(smp_key(-1e30f, 9) < smp_key(-INFINITY, 0), "-inf after finite");
	CHECK(smp_key(-INFINITY, 9) < smp_key(NAN, 0), "NaN last");
	CHECK(smp_key(-0.0f, 1) > smp_key(0.0f, 0) && smp_key(-0.0f, 0) < smp_key(0.0f, 1),
	      "-0 equals +0");
	CHECK(smp_fx(1.0f) == (1ull << 40) && smp_fx(0.5f) == (1ull << 39) && smp_fx(0) == 0,
	      "fixed point");
	CHECK(smp_draw_target(0.0, 100) == 1 && smp_draw_target(0.999999, 100) == 100 &&
	      smp_draw_target(0.5, 100) == 51, "draw targets");
	CHECK(smp_top_p_target(0.5, 100) == 50 && smp_top_p_target(0.501, 100) == 51 &&
	      smp_top_p_target(1e-9, 100) == 1, "top_p targets");
}

/* One row through the op with explicit parameters. */
static struct be_sample_out run1(const float *logits, int v, struct be_sample_row row,
				 struct be_sample_pair *pairs)
{
	struct be_sample_out o;
	float *l = malloc((size_t)v * sizeof(float));
	memcpy(l, logits, (size_t)v * sizeof(float));
	memset(&o, 0xff, sizeof(o));
	CHECK(g_cpu.ops->sample(g_cpu.ctx, &o, l, &row, pairs, 1, v) == 0, "sample op");
	free(l);
	return o;
}

static struct be_sample_row row_default(void)
{
	struct be_sample_row r;
	memset(&r, 0, sizeof(r));
	r.temperature = 1;
	r.top_p = 1;
	r.rep = 1;
	r.n_logprobs = -1;
	return r;
}

static void sample_by_hand(void)
{
	const float lnan[6] = { 1, 3, 3, -INFINITY, NAN, 2 };
	const float lfin[6] = { 1, 3, 3, -INFINITY, -INFINITY, 2 };
	const float *l = lnan;
	const float dead[3] = { -INFINITY, NAN, -INFINITY };
	struct be_sample_row r = row_default();
	struct be_sample_pair pr[3];
	struct be_sample_out o;

	r.temperature = 0;
	o = run1(l, 6, r, NULL);
	CHECK(o.token == 1, "greedy tie goes to the lower id: %d", o.token);
	o = run1(dead, 3, r, NULL);
	CHECK(o.token == -1, "a row without a finite logit is an error: %d", o.token);

	/* u = 0 takes the first entry of the order, u -> 1 the last kept */
	r = row_default();
	r.top_k = 2;		/* sorted: ids 1, 2 */
	r.u = 0;
	CHECK(run1(l, 6, r, NULL).token == 1, "top_k 2, u 0");
	r.u = 0.999999;
	CHECK(run1(l, 6, r, NULL).token == 2, "top_k 2, u 1-");
	r = row_default();	/* id order over {0, 1, 2, 5} */
	r.u = 0;
	CHECK(run1(l, 6, r, NULL).token == 0, "plain draw, u 0: first id with mass");
	r.u = 0.999999;
	CHECK(run1(l, 6, r, NULL).token == 5, "plain draw, u 1-: last id with mass");
	r.min_p = 0.9;		/* keeps the two 3s only */
	r.u = 0.999999;
	CHECK(run1(l, 6, r, NULL).token == 2, "min_p 0.9 keeps the ties at the max");

	/* mask the two maxima; presence penalty on id 5 (logprobs: no NaN in the row,
	 * which would make every logprob NaN, as in the host sampler) */
	l = lfin;
	r = row_default();
	r.temperature = 0;
	r.pres = 5;
	r.n_logprobs = 2;
	pr[0] = (struct be_sample_pair){ .token = 1, .flags = BE_PAIR_MASK };
	pr[1] = (struct be_sample_pair){ .token = 2, .flags = BE_PAIR_MASK };
	r.n_pairs = 2;
	o = run1(l, 6, r, pr);
	CHECK(o.token == 5, "masked maxima: %d", o.token);
	CHECK(pr[0].orig == 3 && pr[1].orig == 3, "raw values kept");
	CHECK(o.n_top == 2 && o.top_id[0] == 1 && o.top_id[1] == 2, "top logprobs are raw");
	CHECK_NEAR(o.logprob, 2 - log(exp(1) + 2 * exp(3) + exp(2)), 1e-5);
	pr[2] = (struct be_sample_pair){ .token = 5, .count = 1 };
	r.n_pairs = 3;
	o = run1(l, 6, r, pr);
	CHECK(o.token == 0, "presence penalty 5 puts id 5 (2 - 5) below id 0 (1): %d", o.token);
	CHECK_NEAR(o.logprob, 1 - log(exp(1) + 2 * exp(3) + exp(2)), 1e-5);
	r.n_pairs = 2;
	pr[1] = (struct be_sample_pair){ .token = 0, .flags = BE_PAIR_SEEN };
	r.pres = 0;
	r.rep = 0.1f;		/* a "penalty" < 1 boosts: 1 / 0.1 = 10 */
	o = run1(l, 6, r, pr);
	CHECK(o.token == 0, "repetition penalty < 1 raises a seen token: %d", o.token);
}

/* Draw frequencies against exact probabilities (chi-square, 5 sigma-ish bound). */
static void chi2_check(const char *what, const float *l, int v, struct be_sample_row r,
		       const double *p, int n)
{
	int cnt[16] = { 0 };
	struct rng g;
	double chi2 = 0;
	int df = -1;

	rng_seed(&g, 99);
	for (int i = 0; i < n; i++) {
		r.u = rng_uniform(&g);
		struct be_sample_out o = run1(l, v, r, NULL);
		if (o.token >= 0 && o.token < v)
			cnt[o.token]++;
	}
	for (int t = 0; t < v; t++) {
		if (p[t] == 0) {
			CHECK(cnt[t] == 0, "%s: id %d has probability 0 but was drawn %d times", what,
			      t, cnt[t]);
			continue;
		}
		double e = p[t] * n;
		chi2 += (cnt[t] - e) * (cnt[t] - e) / e;
		df++;
	}
	/* df <= 4: the 1e-6 quantile of chi-square is below 35 */
	CHECK(chi2 < 35, "%s: chi-square %.2f over %d degrees of freedom", what, chi2, df);
}

static void sample_distributions(void)
{
	const float l[4] = { 0, (float)log(2), (float)log(3), (float)log(4) };
	double p_all[4] = { .1, .2, .3, .4 };
	double p_top_p[4] = { 0, 0, 3.0 / 7, 4.0 / 7 };	/* 0.4 < 0.5 <= 0.7 */
	double p_top_k[4] = { 0, 2.0 / 9, 3.0 / 9, 4.0 / 9 };
	double p_t2[4];
	struct be_sample_row r = row_default();
	double z = 0;

	chi2_check("T=1", l, 4, r, p_all, 20000);
	r.top_p = 0.5;
	chi2_check("top_p 0.5", l, 4, r, p_top_p, 20000);
	r.top_p = 1;
	r.top_k = 3;
	chi2_check("top_k 3", l, 4, r, p_top_k, 20000);
	r.top_k = 0;
	r.temperature = 2;	/* p ~ sqrt(i + 1) */
	for (int i = 0; i < 4; i++)
		z += p_t2[i] = sqrt(i + 1.0);
	for (int i = 0; i < 4; i++)
		p_t2[i] /= z;
	chi2_check("T=2", l, 4, r, p_t2, 20000);
}

static void sample_many_rows(void)
{
	/* rows of one call are independent and use their own pairs */
	enum { V = 300, R = 5 };
	float *l = malloc(V * R * sizeof(float)), *l0 = malloc(V * R * sizeof(float));
	struct be_sample_row rows[R];
	struct be_sample_pair pairs[R];
	struct be_sample_out o[R];
	struct rng g;

	rng_seed(&g, 5);
	for (int i = 0; i < V * R; i++)
		l[i] = (float)rng_normal(&g);
	for (int i = 0; i < R; i++) {
		rows[i] = row_default();
		rows[i].u = rng_uniform(&g);
		rows[i].top_k = 10 * i;
		rows[i].n_logprobs = i;
		rows[i].pair_off = i;
		rows[i].n_pairs = 1;
		pairs[i] = (struct be_sample_pair){ .token = i, .flags = BE_PAIR_MASK };
	}
	memcpy(l0, l, V * R * sizeof(float));
	CHECK(g_cpu.ops->sample(g_cpu.ctx, o, l, rows, pairs, R, V) == 0, "op");
	for (int i = 0; i < R; i++) {
		struct be_sample_pair p1 = { .token = i, .flags = BE_PAIR_MASK };
		struct be_sample_row r1 = rows[i];
		r1.pair_off = 0;
		struct be_sample_out a = run1(l0 + i * V, V, r1, &p1);
		CHECK(a.token == o[i].token && a.n_top == o[i].n_top,
		      "row %d: alone %d, in a batch %d", i, a.token, o[i].token);
		CHECK(o[i].token != i, "row %d: its masked id was drawn", i);
		CHECK(l[i * V + i] == -INFINITY, "row %d: the op masks in place", i);
	}
	free(l);
	free(l0);
}

int main(void)
{
	struct be_opts o = { .n_threads = 2 };

	if (be_create("cpu", &o, &g_cpu) < 0) {
		printf("FAIL sample_setup: cannot create the cpu backend\n");
		return 1;
	}
	RUN(sample_keys_order);
	RUN(sample_by_hand);
	RUN(sample_distributions);
	RUN(sample_many_rows);
	RUN(sample_matches_host_small);
	RUN(sample_matches_host_medium);
	RUN(sample_matches_host_gemma_vocab);
	be_destroy(&g_cpu);
	return th_done();
}
