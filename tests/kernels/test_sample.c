/*
 * test_sample.c - the engine's sampler, the CPU backend's sample op
 * (kernels/cpu/cpu_sample.c over kernels/sample.h; the CUDA op is checked
 * against it), against ref_sample below: a plain sort-based statement of
 * the pipeline in double arithmetic, written for this test and sharing no
 * code with the op. Over the whole parameter grid (4,540 seeded cases) the
 * same token, logprob and top-N for the same request rng; a different
 * token is accepted only where the reference finds the decision (a draw,
 * a top_p cut or a min_p bound) within float rounding of its boundary
 * (either side is right there), and at most in 1 % of a family's cases. Then by hand: keys, fixed-point
 * targets, ties, holes, an all -inf row, exact probabilities (chi-square),
 * top_p / top_k / min_p sets, penalties and masks.
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
	n = smp_row_build(s, &c->p, &r, c->tokens, c->n_prompt, c->n_tokens, c->mask, c->n_mask,
			   &row, 0, pairs, SC_MAX_HIST + SC_MAX_MASK);
	if (n < 0) {
		free(l);
		return n;
	}
	rc = g_cpu.ops->sample(g_cpu.ctx, o, l, &row, pairs, 1, c->vocab);
	free(l);
	return rc;
}

/* ---- the reference: sort the row, walk it, in double ---- */

struct ref_ent {
	double l;	/* penalised logit (NaN sorts last) */
	int id;
};

/* Sorted order: logit descending, then id ascending; NaN last. */
static int ref_cmp(const void *a, const void *b)
{
	const struct ref_ent *x = a, *y = b;
	int xn = isnan(x->l), yn = isnan(y->l);
	if (xn != yn)
		return xn - yn;
	if (!xn && x->l != y->l)
		return x->l > y->l ? -1 : 1;
	return x->id - y->id;
}

static int ref_cmp_id(const void *a, const void *b)
{
	return ((const struct ref_ent *)a)->id - ((const struct ref_ent *)b)->id;
}

static int ref_near(double a, double b, double scale)
{
	return fabs(a - b) <= 1e-6 * scale;
}

/*
 * The pipeline as kernels/sample.h states it: raw logprobs; mask (-inf);
 * repetition (each distinct id of prompt + output: l > 0 ? l / r : l * r);
 * frequency / presence (output ids: l - f * count - p); greedy: the best
 * (ties to the lower id); else weights exp((l - max) / T) (below 2^-40
 * count as 0), kept if l >= max + T ln(min_p), the best top_k of those,
 * then the shortest sorted prefix holding top_p of their mass, and the
 * first entry whose running mass exceeds u * total - walking the sorted
 * order when top_k or top_p is on, id order otherwise. *ambiguous is set
 * when a decision lies within float rounding of its boundary.
 */
static void ref_sample(const struct sample_case *c, struct smp_result *res, int *ambiguous)
{
	const int V = c->vocab;
	const struct eng_sampling *p = &c->p;
	struct ref_ent *e = malloc((size_t)V * sizeof(*e));
	double *w = malloc((size_t)V * sizeof(double));
	struct rng r;
	double u = 0, m, lse = 0, raw_max = -INFINITY, sum = 0;
	int n_out[SC_MAX_HIST] = { 0 }, n_keep = 0, tok;

	*ambiguous = 0;
	res->token = -1;
	res->logprob = 0;
	res->n_top = 0;
	rng_seed(&r, c->seed);
	if (p->temperature >= BE_SAMPLE_GREEDY_EPS)
		u = rng_uniform(&r);
	for (int i = 0; i < V; i++) {
		e[i].l = c->logits[i];
		e[i].id = i;
		if (c->logits[i] > raw_max)
			raw_max = c->logits[i];
	}
	if (p->logprobs >= 0) {
		for (int i = 0; i < V; i++)
			sum += exp(c->logits[i] - raw_max);
		lse = raw_max + log(sum);
	}
	if (p->logprobs > 0) {	/* the raw top-N, NaN excluded */
		qsort(e, (size_t)V, sizeof(*e), ref_cmp);
		for (int i = 0; i < V && i < p->logprobs && !isnan(e[i].l); i++) {
			res->top[i].token = e[i].id;
			res->top[i].logprob = (float)(e[i].l - lse);
			res->n_top = i + 1;
		}
		for (int i = 0; i < V; i++) {
			e[i].l = c->logits[i];
			e[i].id = i;
		}
	}
	for (int k = 0; k < c->n_mask; k++)
		e[c->mask[k]].l = -INFINITY;
	if (p->repetition_penalty != 1.0) {
		float rp = (float)p->repetition_penalty;
		for (int t = 0; t < V; t++) {
			int seen = 0;
			for (int k = 0; k < c->n_tokens; k++)
				seen |= c->tokens[k] == t;
			if (seen)	/* the op's float arithmetic is the specification here */
				e[t].l = e[t].l > 0 ? (float)e[t].l / rp : (float)e[t].l * rp;
		}
	}
	for (int k = c->n_prompt; k < c->n_tokens; k++)
		for (int j = c->n_prompt; j <= k; j++)
			if (c->tokens[j] == c->tokens[k]) {
				n_out[j]++;	/* counted at the first occurrence */
				break;
			}
	if (p->frequency_penalty != 0 || p->presence_penalty != 0)
		for (int k = c->n_prompt; k < c->n_tokens; k++)
			if (n_out[k] > 0) {
				int t = c->tokens[k];
				e[t].l = (float)(e[t].l - p->frequency_penalty * n_out[k] -
						 p->presence_penalty);
			}
	qsort(e, (size_t)V, sizeof(*e), ref_cmp);
	m = e[0].l;
	if (!(m > -INFINITY))
		goto out;	/* no finite logit: an error row */
	if (p->temperature < BE_SAMPLE_GREEDY_EPS) {
		tok = e[0].id;
	} else {
		double thr = p->min_p > 0 ? m + p->temperature * log(p->min_p) : -INFINITY;
		int k = p->top_k > 0 && p->top_k < V ? p->top_k : V, sorted;
		double z = 0, cum = 0, target;

		for (int i = 0; i < V && n_keep < k; i++) {
			if (p->min_p > 0)
				*ambiguous |= ref_near(e[i].l, thr, fabs(thr) + 1);
			if (isnan(e[i].l) || e[i].l < thr)
				continue;
			w[n_keep] = exp((e[i].l - m) / p->temperature);
			if (w[n_keep] < 0x1p-40)
				w[n_keep] = 0;
			e[n_keep++] = e[i];	/* kept entries move to the front, in order */
		}
		for (int i = 0; i < n_keep; i++)
			z += w[i];
		if (p->top_p < 1) {
			target = p->top_p * z;
			for (int i = 0; i < n_keep; i++) {
				cum += w[i];
				if (cum >= target) {
					*ambiguous |= ref_near(cum, target, z) || ref_near(cum - w[i], target, z);
					n_keep = i + 1;
					z = cum;
					break;
				}
			}
		}
		sorted = p->top_k > 0 && p->top_k < V ? 1 : p->top_p < 1;
		if (!sorted) {	/* id order: the kept set re-sorted by id */
			for (int i = 0; i < n_keep; i++)
				e[i].l = w[i];
			qsort(e, (size_t)n_keep, sizeof(*e), ref_cmp_id);
			for (int i = 0; i < n_keep; i++)
				w[i] = e[i].l;
		}
		target = u * z;
		cum = 0;
		tok = -1;
		for (int i = 0; i < n_keep; i++) {
			if (w[i] == 0)
				continue;
			cum += w[i];
			tok = e[i].id;
			if (cum > target) {
				*ambiguous |= ref_near(cum, target, z) || ref_near(cum - w[i], target, z);
				break;
			}
		}
	}
	res->token = tok;
	if (p->logprobs >= 0)
		res->logprob = (float)(c->logits[tok] - lse);
out:
	free(w);
	free(e);
}

static int same_f(float a, float b, float tol)
{
	return (isnan(a) && isnan(b)) || fabsf(a - b) <= tol || a == b;
}

/* Every case of a family: the op and the reference agree exactly on the token. */
static void family(int v, uint64_t seed, int n_cases)
{
	struct smp *s = NULL;
	int bad_tok = 0, bad_lp = 0, n_random = 0, n_err = 0, n_amb = 0;

	CHECK(smp_create(v, &s) == 0, "smp_create");
	for (int i = 0; i < n_cases; i++) {
		struct sample_case c;
		struct be_sample_out o;
		struct smp_result res, dres;
		int hrc, drc, amb;

		sc_make(&c, v, seed, i);
		ref_sample(&c, &res, &amb);
		hrc = res.token < 0 ? ST_EINVAL : 0;
		drc = op_sample(&c, s, &o);
		CHECK(drc == 0, "case %d: op returned %d", i, drc);
		drc = smp_row_result(&o, &c.p, &dres);
		n_random += c.p.temperature > 0;
		if (hrc < 0 || drc < 0) {
			n_err++;
			CHECK(hrc < 0 && drc < 0, "case %d: reference rc %d, op rc %d", i, hrc, drc);
			sc_free(&c);
			continue;
		}
		if (dres.token != res.token && amb) {
			/* a decision within rounding of its boundary: either side is right */
			n_amb++;
			sc_free(&c);
			continue;
		}
		if (dres.token != res.token) {
			if (bad_tok++ < 5)
				printf("  case %d (T %g k %d p %g min_p %g): reference %d op %d\n", i,
				       c.p.temperature, c.p.top_k, c.p.top_p, c.p.min_p, res.token,
				       dres.token);
		}
		if (c.p.logprobs >= 0) {
			int ok = same_f(dres.logprob, res.logprob, 1e-5f) && dres.n_top == res.n_top;
			for (int k = 0; ok && k < res.n_top; k++)
				ok = dres.top[k].token == res.top[k].token &&
				     same_f(dres.top[k].logprob, res.top[k].logprob, 1e-5f);
			if (!ok && bad_lp++ < 5)
				printf("  case %d: logprobs differ (reference %g n_top %d, op %g n_top %d)\n",
				       i, res.logprob, res.n_top, dres.logprob, dres.n_top);
		}
		sc_free(&c);
	}
	CHECK(bad_tok == 0, "vocab %d: %d of %d tokens differ from the reference", v, bad_tok,
	      n_cases);
	CHECK(bad_lp == 0, "vocab %d: %d logprob results differ", v, bad_lp);
	CHECK(n_random > n_cases / 2, "the grid should be mostly random sampling (%d)", n_random);
	CHECK(n_amb <= n_cases / 100, "vocab %d: %d draws differ on a rounding boundary (at most "
	      "1 %%)", v, n_amb);
	printf("  vocab %d: %d cases (%d random, %d error rows) identical to the reference, "
	       "but %d on a rounding boundary\n", v, n_cases, n_random, n_err, n_amb);
	smp_destroy(s);
}

static void sample_matches_ref_small(void) { family(7, 11, 3000); }
static void sample_matches_ref_medium(void) { family(1000, 22, 1500); }
static void sample_matches_ref_gemma_vocab(void) { family(256000, 33, 40); }

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
	 * which would make every logprob NaN, as in the reference) */
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
	RUN(sample_matches_ref_small);
	RUN(sample_matches_ref_medium);
	RUN(sample_matches_ref_gemma_vocab);
	be_destroy(&g_cpu);
	return th_done();
}
