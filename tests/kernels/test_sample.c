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
	struct be_sample_pair pairs[SC_MAX_PAIRS];
	struct rng r;
	float *l = malloc((size_t)c->vocab * sizeof(float));
	int n, rc;

	memcpy(l, c->logits, (size_t)c->vocab * sizeof(float));
	rng_seed(&r, c->seed);
	n = smp_row_build(s, &c->p, &r, c->tokens, c->n_prompt, c->n_tokens, c->mask, c->n_mask,
			   &row, 0, pairs, SC_MAX_PAIRS);
	if (n < 0) {
		free(l);
		return n;
	}
	rc = g_cpu.ops->sample(g_cpu.ctx, o, l, &row, pairs, NULL, 1, c->vocab);
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
 * logit_bias (l + bias, after the mask, before the penalties); repetition
 * (each distinct id of prompt + output: l > 0 ? l / r : l * r);
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
	for (int t = 0; t < V; t++) {	/* logit_bias: the last entry for t counts */
		int last = -1;
		for (int k = 0; k < p->n_logit_bias; k++)
			if (p->bias_ids[k] == t)
				last = k;
		if (last >= 0)	/* float, as the op adds it */
			e[t].l = (float)e[t].l + p->bias[last];
	}
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

/*
 * The dense allow mask (structured outputs): the op with a mask picks what
 * it picks on the row with the masked logits set to -inf (the same draw),
 * never a masked id, and its logprobs stay the raw row's.
 */
static void mask_family(int v, uint64_t seed, int n_cases)
{
	struct smp *s = NULL;
	int words = BE_MASK_WORDS(v), n_checked = 0;
	uint32_t *mask = malloc((size_t)words * sizeof(uint32_t));
	float *la = malloc((size_t)v * sizeof(float)), *lb = malloc((size_t)v * sizeof(float));

	CHECK(smp_create(v, &s) == 0, "smp_create");
	for (int i = 0; i < n_cases; i++) {
		struct sample_case c;
		struct be_sample_row row;
		struct be_sample_pair pa[SC_MAX_PAIRS], pb[SC_MAX_PAIRS];
		struct be_sample_out oa, ob, oc;
		struct rng r;
		uint64_t x = seed * 31 + (uint64_t)i;
		int n;

		sc_make(&c, v, seed, i);
		rng_seed(&r, c.seed);
		n = smp_row_build(s, &c.p, &r, c.tokens, c.n_prompt, c.n_tokens, c.mask, c.n_mask, &row,
				  0, pa, SC_MAX_PAIRS);
		CHECK(n >= 0, "row build");
		for (int w = 0; w < words; w++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			mask[w] = (uint32_t)(x >> 32) & (i % 3 ? (uint32_t)(x >> 16) : 0xffffffffu);
		}
		memcpy(pb, pa, sizeof(pa));
		memcpy(la, c.logits, (size_t)v * sizeof(float));
		for (int t = 0; t < v; t++)
			lb[t] = smp_mask_allows(mask, t) ? c.logits[t] : -INFINITY;
		row.has_mask = 1;
		CHECK(g_cpu.ops->sample(g_cpu.ctx, &oa, la, &row, pa, mask, 1, v) == 0, "masked op");
		CHECK(g_cpu.ops->sample(g_cpu.ctx, &oa, la, &row, pa, NULL, 1, v) == ST_EINVAL,
		      "has_mask without masks is refused");
		memcpy(la, c.logits, (size_t)v * sizeof(float));
		memcpy(pa, pb, sizeof(pa));
		g_cpu.ops->sample(g_cpu.ctx, &oa, la, &row, pa, mask, 1, v);
		row.has_mask = 0;
		CHECK(g_cpu.ops->sample(g_cpu.ctx, &ob, lb, &row, pb, NULL, 1, v) == 0, "-inf op");
		CHECK(oa.token == ob.token, "case %d: masked %d, -inf row %d", i, oa.token, ob.token);
		CHECK(oa.token < 0 || smp_mask_allows(mask, oa.token), "case %d: chose masked id %d", i,
		      oa.token);
		memcpy(la, c.logits, (size_t)v * sizeof(float));
		memcpy(pa, pb, sizeof(pa));
		g_cpu.ops->sample(g_cpu.ctx, &oc, la, &row, pa, NULL, 1, v);
		CHECK(oa.n_top == oc.n_top && !memcmp(oa.top_id, oc.top_id, sizeof(int32_t) * (size_t)oa.n_top),
		      "case %d: top logprobs are the raw row's", i);
		n_checked += oa.token >= 0;
		sc_free(&c);
	}
	CHECK(n_checked > n_cases / 2, "only %d of %d cases sampled a token", n_checked, n_cases);
	smp_destroy(s);
	free(mask);
	free(la);
	free(lb);
}

static void sample_dense_mask_small(void) { mask_family(7, 5, 2000); }
static void sample_dense_mask_odd(void) { mask_family(1001, 6, 400); }
static void sample_dense_mask_gemma_vocab(void) { mask_family(256000, 7, 10); }

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
	CHECK(g_cpu.ops->sample(g_cpu.ctx, &o, l, &row, pairs, NULL, 1, v) == 0, "sample op");
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

	/* logit_bias: after the mask, before the penalties; raw logprobs unchanged */
	r = row_default();
	r.temperature = 0;
	r.n_logprobs = 1;
	pr[0] = (struct be_sample_pair){ .token = 5, .bias = 1.5f };	/* 2 + 1.5 > 3 */
	r.n_pairs = 1;
	o = run1(l, 6, r, pr);
	CHECK(o.token == 5, "bias +1.5 lifts id 5 over the 3s: %d", o.token);
	CHECK_NEAR(o.logprob, 2 - log(exp(1) + 2 * exp(3) + exp(2)), 1e-5);
	CHECK(o.n_top == 1 && o.top_id[0] == 1, "top logprobs stay raw: %d", o.top_id[0]);
	pr[0] = (struct be_sample_pair){ .token = 1, .bias = -100 };
	pr[1] = (struct be_sample_pair){ .token = 2, .bias = -100 };
	r.n_pairs = 2;
	CHECK(run1(l, 6, r, pr).token == 5, "bias -100 bans both maxima");
	pr[0] = (struct be_sample_pair){ .token = 5, .bias = 2, .count = 1 };
	r.n_pairs = 1;
	r.pres = 1.5;		/* 2 + 2 - 1.5 = 2.5 < 3 */
	CHECK(run1(l, 6, r, pr).token == 1, "the penalty applies to the biased logit");
	pr[0] = (struct be_sample_pair){ .token = 1, .bias = 100, .flags = BE_PAIR_MASK };
	r.pres = 0;
	CHECK(run1(l, 6, r, pr).token == 2, "a masked id stays masked whatever its bias");
	r = row_default();
	r.top_k = 1;
	r.u = 0.5;
	pr[0] = (struct be_sample_pair){ .token = 0, .bias = 100 };
	r.n_pairs = 1;
	CHECK(run1(l, 6, r, pr).token == 0, "sampling: bias +100 forces id 0");
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
	CHECK(g_cpu.ops->sample(g_cpu.ctx, o, l, rows, pairs, NULL, R, V) == 0, "op");
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

/*
 * ---- the previous op, kept as the exact reference of the fast one ----
 * kernels/cpu/cpu_sample.c as of commit 5a36800 (one loop over the row per
 * radix digit, every key recomputed in every pass), names prefixed old_.
 * The current op must give bit for bit its token, logprob, top-N, row
 * and pair orig values on every input.
 */
struct old_found {
	uint64_t key;
	uint64_t cum;		/* running mass up to and including the entry */
};

/* Radix select over row l for pass p: the first entry whose running mass reaches target. */
static struct old_found old_select_row(const float *l, int V, const struct smp_pass *p,
				   uint64_t target)
{
	struct smp_sel s;
	struct old_found f = { SMP_KEY_MAX, 0 };
	uint64_t hw[256], key, w;
	uint32_t hc[256];

	smp_sel_init(&s, p->sorted ? 64 : 32);
	do {
		memset(hw, 0, sizeof(hw));
		memset(hc, 0, sizeof(hc));
		for (int i = 0; i < V; i++) {
			/* the key first: the weight (an expf) only for entries in range */
			if (!smp_sel_match(&s, smp_order_key(p->sorted, l[i], i)))
				continue;
			w = smp_elem(p, l[i], i, &key);
			if (w == 0)
				continue;
			hw[(key >> s.shift) & 255] += w;
			hc[(key >> s.shift) & 255]++;
		}
	} while (!smp_sel_pick(&s, hw, hc, target));
	for (int i = 0; i < V; i++) {
		if (!smp_sel_found(&s, smp_order_key(p->sorted, l[i], i)))
			continue;
		w = smp_elem(p, l[i], i, &key);
		if (w != 0) {
			f.key = key;
			f.cum = s.before + w;
			break;
		}
	}
	return f;
}

/* Total weight of row l under pass p. */
static uint64_t old_total_row(const float *l, int V, const struct smp_pass *p)
{
	uint64_t z = 0, key;
	for (int i = 0; i < V; i++)
		z += smp_elem(p, l[i], i, &key);
	return z;
}

/* The top n entries by (logit desc, id asc) into o->top_* (raw logprobs). */
static void old_top_logprobs(const float *l, int V, int n, double lse, struct be_sample_out *o)
{
	struct smp_pass p = { .mode = SMP_COUNT_ALL, .sorted = 1 };
	uint64_t keys[BE_SAMPLE_MAX_TOP], key;
	int got = 0;
	struct old_found f = old_select_row(l, V, &p, (uint64_t)n);

	for (int i = 0; i < V && got < n; i++)
		if (smp_elem(&p, l[i], i, &key) && key <= f.key)
			keys[got++] = key;
	for (int i = 1; i < got; i++)	/* insertion sort, n <= 20 */
		for (int j = i; j > 0 && keys[j] < keys[j - 1]; j--) {
			uint64_t t = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	for (int i = 0; i < got; i++) {
		int id = (int)(uint32_t)keys[i];
		o->top_id[i] = id;
		o->top_lp[i] = (float)(l[id] - lse);
	}
	o->n_top = got;
}

/*
 * The first entry of the sorted order (largest logit, ties to the lower id,
 * NaN never; -0 equals +0): the key order of smp_key, by float compares in
 * 8 independent lanes so the pass runs at memory speed. -1 when no entry
 * is above -inf.
 */
static int old_row_argmax(const float *l, int V)
{
	float m[8];
	int id[8], i = 0, best = -1;
	float bm = -INFINITY;

	for (int j = 0; j < 8; j++) {
		m[j] = -INFINITY;
		id[j] = -1;
	}
	for (; i + 8 <= V; i += 8)
		for (int j = 0; j < 8; j++) {
			int gt = l[i + j] > m[j];
			m[j] = gt ? l[i + j] : m[j];
			id[j] = gt ? i + j : id[j];
		}
	for (; i < V; i++)
		if (l[i] > m[0]) {
			m[0] = l[i];
			id[0] = i;
		}
	for (int j = 0; j < 8; j++)
		if (id[j] >= 0 && (m[j] > bm || (m[j] == bm && id[j] < best))) {
			bm = m[j];
			best = id[j];
		}
	return best;
}

static void old_sample_one(float *l, int V, const struct be_sample_row *r,
		       struct be_sample_pair *pairs, struct be_sample_out *o)
{
	struct be_sample_pair *pr = pairs + r->pair_off;
	double lse = 0;
	int amax, tok;

	o->token = -1;
	o->logprob = 0;
	o->n_top = 0;
	if (r->n_logprobs >= 0) {
		float m0 = -INFINITY;
		double sum = 0;
		for (int i = 0; i < V; i++)
			m0 = l[i] > m0 ? l[i] : m0;
		for (int i = 0; i < V; i++)
			sum += expf(l[i] - m0);
		lse = m0 + log(sum);
		if (r->n_logprobs > 0)
			old_top_logprobs(l, V, r->n_logprobs < V ? r->n_logprobs : V, lse, o);
	}
	for (int j = 0; j < r->n_pairs; j++) {
		int t = pr[j].token;
		if (t < 0 || t >= V)
			continue;
		pr[j].orig = l[t];
		l[t] = smp_pair_apply(l[t], &pr[j], r);
	}
	amax = old_row_argmax(l, V);
	if (amax < 0)
		return;		/* nothing above -inf: an error for the caller */
	if (r->temperature < BE_SAMPLE_GREEDY_EPS) {
		tok = amax;
	} else {
		struct smp_pass p = {
			.mode = SMP_MASS,
			.m = l[amax],
			.inv_t = (float)(1.0 / r->temperature),
			.thr = smp_min_p_thr(l[amax], r->temperature, r->min_p),
			.kcut = SMP_KEY_MAX,
			.pcut = SMP_KEY_MAX,
		};
		int k_on = r->top_k > 0 && r->top_k < V;
		uint64_t z;

		p.sorted = k_on || r->top_p < 1.0;
		if (k_on) {
			struct smp_pass c = p;
			c.mode = SMP_COUNT_THR;
			if (old_total_row(l, V, &c) > (uint64_t)r->top_k)
				p.kcut = old_select_row(l, V, &c, (uint64_t)r->top_k).key;
		}
		z = old_total_row(l, V, &p);
		if (r->top_p < 1.0) {
			struct old_found f = old_select_row(l, V, &p, smp_top_p_target(r->top_p, z));
			p.pcut = f.key;
			z = f.cum;
		}
		tok = (int)(uint32_t)old_select_row(l, V, &p, smp_draw_target(r->u, z)).key;
	}
	o->token = tok;
	if (r->n_logprobs >= 0) {
		float raw = l[tok];
		for (int j = 0; j < r->n_pairs; j++)
			if (pr[j].token == tok)
				raw = pr[j].orig;
		o->logprob = (float)(raw - lse);
	}
}

/*
 * Floats by their bits, but any NaN equals any NaN: a NaN's sign and
 * payload depend on the operand order the compiler picks (an all -inf
 * row's logprobs are NaN), not on the op.
 */
static int same_bits(float a, float b)
{
	return memcmp(&a, &b, sizeof(float)) == 0 || (isnan(a) && isnan(b));
}

/* Bitwise equality of two op results. */
static int same_out(const struct be_sample_out *a, const struct be_sample_out *b)
{
	if (a->token != b->token || !same_bits(a->logprob, b->logprob) || a->n_top != b->n_top)
		return 0;
	for (int i = 0; i < a->n_top; i++)
		if (a->top_id[i] != b->top_id[i] || !same_bits(a->top_lp[i], b->top_lp[i]))
			return 0;
	return 1;
}

/*
 * n_rows rows of vocab v through the op in one call and through the
 * previous op one by one: same results, rows and pairs, bit for bit.
 * Returns the number of rows that differ.
 */
static int vs_old(const float *logits, int v, const struct be_sample_row *rows,
		  const struct be_sample_pair *pairs, int n_pairs, int n_rows, const char *what)
{
	size_t bytes = (size_t)v * n_rows * sizeof(float);
	float *a = malloc(bytes), *b = malloc(bytes);
	struct be_sample_pair *pa = malloc((size_t)(n_pairs + 1) * sizeof(*pa));
	struct be_sample_pair *pb = malloc((size_t)(n_pairs + 1) * sizeof(*pb));
	struct be_sample_out *oa = calloc((size_t)n_rows, sizeof(*oa));
	struct be_sample_out *ob = calloc((size_t)n_rows, sizeof(*ob));
	int bad = 0, rc;

	memcpy(a, logits, bytes);
	memcpy(b, logits, bytes);
	memcpy(pa, pairs, (size_t)n_pairs * sizeof(*pa));
	memcpy(pb, pairs, (size_t)n_pairs * sizeof(*pb));
	rc = g_cpu.ops->sample(g_cpu.ctx, oa, a, rows, pa, NULL, n_rows, v);
	CHECK(rc == 0, "%s: op returned %d", what, rc);
	for (int i = 0; i < n_rows; i++)
		old_sample_one(b + (size_t)i * v, v, &rows[i], pb, &ob[i]);
	for (int i = 0; i < n_rows; i++)
		if (!same_out(&oa[i], &ob[i])) {
			if (bad++ < 3)
				printf("  %s row %d: op %d (lp %a, n_top %d, top %d %a), previous op %d "
				       "(lp %a, n_top %d, top %d %a)\n", what, i, oa[i].token,
				       (double)oa[i].logprob, oa[i].n_top, oa[i].top_id[0],
				       (double)oa[i].top_lp[0], ob[i].token, (double)ob[i].logprob,
				       ob[i].n_top, ob[i].top_id[0], (double)ob[i].top_lp[0]);
		}
	if (memcmp(a, b, bytes) || memcmp(pa, pb, (size_t)n_pairs * sizeof(*pa))) {
		printf("  %s: the rows or pair orig values written differ\n", what);
		bad++;
	}
	free(a);
	free(b);
	free(pa);
	free(pb);
	free(oa);
	free(ob);
	return bad;
}

/* The grid's cases (smp_row_build rows), 8 rows per call, against the previous op. */
static void old_family(int v, uint64_t seed, int n_cases)
{
	enum { R = 8 };
	struct smp *s = NULL;
	struct be_sample_row rows[R];
	struct be_sample_pair *pairs = malloc(R * (SC_MAX_PAIRS) * sizeof(*pairs));
	float *l = malloc((size_t)v * R * sizeof(float));
	int bad = 0, np = 0, nr = 0, n_random = 0;

	CHECK(smp_create(v, &s) == 0, "smp_create");
	for (int i = 0; i < n_cases; i++) {
		struct sample_case c;
		struct rng r;
		int n;

		sc_make(&c, v, seed, i);
		rng_seed(&r, c.seed);
		n = smp_row_build(s, &c.p, &r, c.tokens, c.n_prompt, c.n_tokens, c.mask, c.n_mask,
				  &rows[nr], np, pairs + np, SC_MAX_PAIRS);
		if (n >= 0) {
			memcpy(l + (size_t)nr * v, c.logits, (size_t)v * sizeof(float));
			n_random += rows[nr].temperature >= BE_SAMPLE_GREEDY_EPS;
			np += n;
			nr++;
		}
		sc_free(&c);
		if (nr == R || (i == n_cases - 1 && nr > 0)) {
			bad += vs_old(l, v, rows, pairs, np, nr, "grid");
			nr = np = 0;
		}
	}
	CHECK(bad == 0, "vocab %d: %d rows differ from the previous op", v, bad);
	CHECK(n_random > n_cases / 2, "mostly random rows (%d)", n_random);
	printf("  vocab %d: %d cases bit-identical to the previous op\n", v, n_cases);
	smp_destroy(s);
	free(pairs);
	free(l);
}

static void sample_same_as_previous_op(void)
{
	old_family(7, 11, 3000);
	old_family(1000, 22, 1500);
	old_family(256000, 33, 40);
}

/*
 * Rows the engine never builds, straight into the op: +inf logits (NaN
 * weights), all-NaN and all -inf rows, -0 against +0, constant rows, a
 * cliff whose tail weighs a few fixed-point units per entry,
 * extreme temperatures, top_k of V-1 and 1, min_p 1, u at 0 and next to 1,
 * a one-entry vocabulary. Same result as the previous op.
 */
static void sample_odd_rows_as_previous_op(void)
{
	static const int vs[] = { 1, 2, 9, 300, 70000 };
	struct rng g;
	int bad = 0, n = 0;

	rng_seed(&g, 77);
	for (size_t vi = 0; vi < sizeof(vs) / sizeof(vs[0]); vi++) {
		int v = vs[vi];
		float *l = malloc((size_t)v * sizeof(float));
		for (int k = 0; k < 120; k++) {
			struct be_sample_row r = row_default();
			struct be_sample_pair pr[3];
			int shape = k % 9;
			static const double temps[] = { 1e-5, 0.05, 1, 7, 1e30 };
			for (int i = 0; i < v; i++) {
				double x = rng_normal(&g) * (shape == 7 ? 40 : 3);
				if (shape == 1)
					x = floor(x);
				l[i] = (float)x;
				if (shape == 2 && i % 3 == 0)
					l[i] = rng_uniform(&g) < 0.5 ? -0.0f : 0.0f;
				if (shape == 3)
					l[i] = 1.5f;
				if (shape == 4 && rng_uniform(&g) < 0.3)
					l[i] = rng_uniform(&g) < 0.5 ? NAN : -INFINITY;
				if (shape == 5 && rng_uniform(&g) < 0.01)
					l[i] = INFINITY;
				if (shape == 6)
					l[i] = i == v / 2 ? 2.0f : NAN;
				if (shape == 8)	/* a cliff: the tail's weights are a few fixed-point units */
					l[i] = i == 0 ? 0.0f : (float)(-19.5 - 8.5 * rng_uniform(&g));
			}
			r.temperature = temps[k % 5];
			r.top_k = (k / 5) % 4 == 0 ? 0 : (k / 5) % 4 == 1 ? 1 : (k / 5) % 4 == 2 ? v - 1 : 7;
			r.top_p = (k / 3) % 3 == 0 ? 1 : (k / 3) % 3 == 1 ? 1e-9 : 0.5;
			r.min_p = (k / 7) % 3 == 0 ? 0 : (k / 7) % 3 == 1 ? 1 : 0.1;
			r.u = k % 4 == 0 ? 0 : k % 4 == 1 ? 0.9999999999 : rng_uniform(&g);
			r.n_logprobs = k % 6 == 0 ? -1 : (k % 6) * 4;
			if (r.n_logprobs > BE_SAMPLE_MAX_TOP)
				r.n_logprobs = BE_SAMPLE_MAX_TOP;
			r.rep = k % 5 == 2 ? 1.3f : 1.0f;
			r.freq = k % 7 == 3 ? 0.5 : 0;
			pr[0] = (struct be_sample_pair){ .token = 0, .flags = BE_PAIR_SEEN, .count = 2 };
			pr[1] = (struct be_sample_pair){ .token = v - 1, .flags = BE_PAIR_MASK };
			pr[2] = (struct be_sample_pair){ .token = v / 2, .flags = BE_PAIR_SEEN, .count = 1 };
			r.n_pairs = k % 3;
			if (shape == 6 || (r.min_p == 1 && r.temperature > 1) || v == 1)
				r.n_pairs = 0;	/* keep one finite entry: the previous op reads l[-1] otherwise */
			bad += vs_old(l, v, &r, pr, 3, 1, "odd row");
			n++;
		}
		for (int k = 0; k < 6 && v > 2; k++) {	/* the cliff, drawn in its tail */
			struct be_sample_row r = row_default();
			for (int i = 0; i < v; i++)
				l[i] = i == 0 ? 0.0f : (float)(-19.5 - 8.5 * rng_uniform(&g));
			r.temperature = 1;
			r.u = k % 3 == 0 ? 0.9999999999 : 1 - rng_uniform(&g) * 1e-7;
			r.top_p = k < 3 ? 1 : 0.99999999;
			bad += vs_old(l, v, &r, &(struct be_sample_pair){ 0 }, 0, 1, "cliff row");
			n++;
		}
		free(l);
	}
	CHECK(bad == 0, "%d of %d odd rows differ from the previous op", bad, n);
	printf("  %d odd rows bit-identical to the previous op\n", n);
}

int main(void)
{
	struct be_opts o = { .n_threads = 2 };

	if (be_create("cpu", &o, &g_cpu) < 0) {
		printf("FAIL sample_setup: cannot create the cpu backend\n");
		return 1;
	}
	RUN(sample_dense_mask_small);
	RUN(sample_dense_mask_odd);
	RUN(sample_dense_mask_gemma_vocab);
	RUN(sample_keys_order);
	RUN(sample_by_hand);
	RUN(sample_distributions);
	RUN(sample_many_rows);
	RUN(sample_matches_ref_small);
	RUN(sample_matches_ref_medium);
	RUN(sample_matches_ref_gemma_vocab);
	RUN(sample_same_as_previous_op);
	RUN(sample_odd_rows_as_previous_op);
	be_destroy(&g_cpu);
	return th_done();
}
