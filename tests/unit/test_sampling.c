/*
 * test_sampling.c - sampling as the engine runs it (engine/sampling.c
 * builds the row and pairs from a request, the CPU backend's sample op
 * chooses, smp_row_result reads it back) and the stop rules
 * (engine/stop.c): greedy, seeds, the sampled distribution (chi-square),
 * the top_k / top_p / min_p sets, penalties by hand, raw logprobs, stop
 * strings across token boundaries, min_tokens / ignore_eos / max_tokens.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "engine/sampling.h"
#include "engine/stop.h"
#include "tests/harness.h"

static struct smp *new_smp(int v)
{
	struct smp *s = NULL;
	if (smp_create(v, &s) != 0) {
		fprintf(stderr, "smp_create(%d) failed\n", v);
		exit(1);
	}
	return s;
}

static void fill_normal(float *l, int v, uint64_t seed, double scale)
{
	struct rng r;
	rng_seed(&r, seed);
	for (int i = 0; i < v; i++)
		l[i] = (float)(rng_normal(&r) * scale);
}

static struct be g_cpu;

/*
 * One row of v logits (written in place: masks and penalties) sampled as
 * the engine does: smp_row_build, the CPU sample op, smp_row_result.
 */
static int op_sample(struct smp *s, float *l, int v, const struct eng_sampling *p, struct rng *r,
		     const int *toks, int n_prompt, int n_tokens, const int *mask, int n_mask,
		     struct smp_result *res)
{
	static struct be_sample_pair pairs[4096];
	struct be_sample_row row;
	struct be_sample_out o;
	int rc = smp_row_build(s, p, r, toks, n_prompt, n_tokens, mask, n_mask, &row, 0, pairs,
			       4096);

	if (rc < 0 || (rc = g_cpu.ops->sample(g_cpu.ctx, &o, l, &row, pairs, NULL, 1, v)) < 0)
		return rc;
	return smp_row_result(&o, p, res);
}

static int sample1(struct smp *s, const float *logits, int v, const struct eng_sampling *p,
		   struct rng *r)
{
	static float row[300000];
	struct smp_result res;
	memcpy(row, logits, (size_t)v * sizeof(float));
	if (op_sample(s, row, v, p, r, NULL, 0, 0, NULL, 0, &res) != 0)
		return -1;
	return res.token;
}

/* The greedy token of l[0, n) (-1: nothing above -inf). */
static int greedy(const float *l, int n)
{
	static float row[300000];
	struct smp *s = NULL;
	struct smp_result res;
	struct eng_sampling p;
	struct rng r;
	int rc;

	eng_sampling_default(&p);
	p.temperature = 0;
	rng_seed(&r, 1);
	memcpy(row, l, (size_t)n * sizeof(float));
	if (smp_create(n, &s) < 0)
		return -2;
	rc = op_sample(s, row, n, &p, &r, NULL, 0, 0, NULL, 0, &res);
	smp_destroy(s);
	return rc < 0 ? -1 : res.token;
}

/* The penalised row: l[0, v) after p's penalties over toks (a greedy step; l written). */
static void penalize(struct smp *s, float *l, int v, const struct eng_sampling *p,
		     const int *toks, int n_prompt, int n_tokens)
{
	struct eng_sampling g = *p;
	struct smp_result res;
	struct rng r;

	g.temperature = 0;
	rng_seed(&r, 1);
	op_sample(s, l, v, &g, &r, toks, n_prompt, n_tokens, NULL, 0, &res);
}

static void test_greedy_is_argmax(void)
{
	enum { V = 5000 };
	static float l[V];
	struct smp *s = new_smp(V);
	struct eng_sampling p;
	struct rng r;
	eng_sampling_default(&p);
	p.temperature = 0;
	p.top_k = 3;		/* ignored by greedy */
	p.top_p = 0.5;
	rng_seed(&r, 1);
	for (int t = 0; t < 20; t++) {
		fill_normal(l, V, 100 + (uint64_t)t, 3.0);
		int want = 0;
		for (int i = 1; i < V; i++)
			if (l[i] > l[want])
				want = i;
		CHECK(sample1(s, l, V, &p, &r) == want, "row %d: not argmax %d", t, want);
	}
	/* ties -> lowest id */
	for (int i = 0; i < V; i++)
		l[i] = 0;
	l[4321] = 7;
	l[77] = 7;
	l[2000] = 7;
	CHECK(sample1(s, l, V, &p, &r) == 77, "tie not broken to lowest id");
	CHECK(greedy(l, V) == 77, "smp_argmax tie");
	/* odd lengths, ties across lanes and in the tail, NaN and -inf entries */
	for (int t = 0; t < 200; t++) {
		int n = 1 + (t * 37) % 1003, want = -1;
		struct rng rr;
		rng_seed(&rr, 900 + (uint64_t)t);
		for (int i = 0; i < n; i++)
			l[i] = (float)(rng_next(&rr) % 16);	/* many ties */
		if (t % 3 == 0)
			l[rng_next(&rr) % (uint64_t)n] = NAN;
		if (t % 5 == 0)
			l[rng_next(&rr) % (uint64_t)n] = -INFINITY;
		for (int i = 0; i < n; i++)
			if (l[i] == l[i] && (want < 0 || l[i] > l[want]))
				want = i;
		if (want >= 0 && !(l[want] > -INFINITY))
			want = -1;
		CHECK(greedy(l, n) == want, "n=%d: argmax %d, want %d", n, greedy(l, n), want);
	}
	for (int i = 0; i < 9; i++)
		l[i] = -INFINITY;
	CHECK(greedy(l, 9) == -1, "all -inf gave %d", greedy(l, 9));
	for (int i = 0; i < V; i++)
		l[i] = 0;
	l[4321] = 7;
	l[77] = 7;
	l[2000] = 7;
	/* greedy consumes no randomness */
	struct rng r2 = r;
	sample1(s, l, V, &p, &r);
	CHECK(memcmp(&r, &r2, sizeof(r)) == 0, "greedy advanced the rng");
	smp_destroy(s);
}

static void test_seed_determinism(void)
{
	enum { V = 3000, N = 300 };
	static float l[V];
	int a[N], b[N], c[N], same_ac = 0;
	struct smp *s = new_smp(V);
	struct eng_sampling p;
	struct rng r;
	eng_sampling_default(&p);
	p.temperature = 1.3;
	p.top_p = 0.95;
	fill_normal(l, V, 7, 2.0);
	rng_seed(&r, 42);
	for (int i = 0; i < N; i++)
		a[i] = sample1(s, l, V, &p, &r);
	/* a second sampler and interleaved other work must not matter */
	struct smp *s2 = new_smp(V);
	struct rng other;
	rng_seed(&r, 42);
	rng_seed(&other, 43);
	for (int i = 0; i < N; i++) {
		b[i] = sample1(s2, l, V, &p, &r);
		(void)sample1(s2, l, V, &p, &other);
	}
	rng_seed(&r, 43);
	for (int i = 0; i < N; i++) {
		c[i] = sample1(s, l, V, &p, &r);
		same_ac += a[i] == c[i];
	}
	CHECK(memcmp(a, b, sizeof(a)) == 0, "same seed gave different tokens");
	CHECK(same_ac < N / 2, "different seeds agree on %d of %d draws", same_ac, N);
	smp_destroy(s);
	smp_destroy(s2);
}

/*
 * Chi-square goodness of fit of n draws against softmax(l / T) restricted
 * to the tokens with keep[i] (NULL: all), renormalised. Degrees of freedom
 * = kept - 1 <= 9; threshold 27.88 = the 0.999 quantile for 9 dof (fixed
 * seeds, so the outcome is deterministic; a wrong distribution gives values
 * in the hundreds). A draw outside the kept set counts as +1e9.
 */
static double chi2_draws(struct smp *s, const float *l, int v, const struct eng_sampling *p,
			 const char *keep, int n, uint64_t seed)
{
	int cnt[16] = { 0 };
	double e[16], z = 0, chi = 0, m = l[0];
	struct rng r;
	for (int i = 1; i < v; i++)
		m = fmax(m, l[i]);
	for (int i = 0; i < v; i++) {
		e[i] = (!keep || keep[i]) ? exp((l[i] - m) / p->temperature) : 0;
		z += e[i];
	}
	rng_seed(&r, seed);
	for (int i = 0; i < n; i++) {
		int t = sample1(s, l, v, p, &r);
		if (t >= 0 && t < v)
			cnt[t]++;
	}
	for (int i = 0; i < v; i++) {
		double ex = n * e[i] / z;
		if (ex == 0)
			chi += cnt[i] ? 1e9 : 0;
		else
			chi += (cnt[i] - ex) * (cnt[i] - ex) / ex;
	}
	return chi;
}

static void test_distribution_chi2(void)
{
	const float l[10] = { 1.0f, 0.5f, 2.0f, -1.0f, 0.0f, 1.5f, -0.5f, 0.25f, 1.2f, 0.8f };
	/* by logit: 2(2.0) 5(1.5) 8(1.2) 0(1.0) 9(0.8) 1(0.5) 7(0.25) 4(0) 6(-0.5) 3(-1) */
	const char top6[10] = { 1, 1, 1, 0, 0, 1, 0, 0, 1, 1 };
	struct smp *s = new_smp(10);
	struct eng_sampling p;
	double chi;
	eng_sampling_default(&p);
	p.temperature = 1.0;
	chi = chi2_draws(s, l, 10, &p, NULL, 100000, 2024);
	CHECK(chi < 27.88, "T=1: chi2 %.2f >= 27.88", chi);
	p.temperature = 0.5;
	chi = chi2_draws(s, l, 10, &p, NULL, 100000, 2025);
	CHECK(chi < 27.88, "T=0.5: chi2 %.2f >= 27.88", chi);
	/* top_k = 6 (heap path): softmax over the 6 largest */
	p.temperature = 1.0;
	p.top_k = 6;
	chi = chi2_draws(s, l, 10, &p, top6, 100000, 2026);
	CHECK(chi < 27.88, "top_k=6: chi2 %.2f >= 27.88", chi);
	/* top_p (threshold path): at T = 1 the 5 largest hold 0.804 of the mass
	 * and the 6 largest 0.870, so top_p = 0.85 keeps exactly those 6 */
	p.top_k = 0;
	p.top_p = 0.85;
	chi = chi2_draws(s, l, 10, &p, top6, 100000, 2027);
	CHECK(chi < 27.88, "top_p=0.85: chi2 %.2f >= 27.88", chi);
	/* sanity of the test itself: T=1 draws judged against T=2 must fail */
	{
		int cnt[10] = { 0 };
		double e2[10], z2 = 0, bad = 0;
		struct rng r;
		p.top_p = 1;
		rng_seed(&r, 9);
		for (int i = 0; i < 20000; i++)
			cnt[sample1(s, l, 10, &p, &r)]++;
		for (int i = 0; i < 10; i++)
			z2 += e2[i] = exp(l[i] / 2.0);
		for (int i = 0; i < 10; i++) {
			double ex = 20000 * e2[i] / z2;
			bad += (cnt[i] - ex) * (cnt[i] - ex) / ex;
		}
		CHECK(bad > 100, "chi2 cannot tell T=1 from T=2 (%.1f)", bad);
	}
	smp_destroy(s);
}

static const float *cmp_l;
static int cmp_desc(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	if (cmp_l[x] != cmp_l[y])
		return cmp_l[x] > cmp_l[y] ? -1 : 1;
	return x - y;
}

/* Draws n times and checks each draw is in set[] (flag array); counts hits. */
static int draws_in_set(struct smp *s, const float *l, int v, const struct eng_sampling *p,
			const char *in, int n, uint64_t seed, int *distinct)
{
	static char hit[300000];
	struct rng r;
	int bad = 0;
	memset(hit, 0, (size_t)v);
	*distinct = 0;
	rng_seed(&r, seed);
	for (int i = 0; i < n; i++) {
		int t = sample1(s, l, v, p, &r);
		if (t < 0 || t >= v || !in[t]) {
			bad++;
			continue;
		}
		if (!hit[t]) {
			hit[t] = 1;
			(*distinct)++;
		}
	}
	return bad;
}

static void test_top_k_top_p_min_p_sets(void)
{
	enum { V = 4000 };
	static float l[V];
	static int order[V];
	static char in[V];
	struct smp *s = new_smp(V);
	struct eng_sampling p;
	int distinct, bad;
	double z = 0, m;

	fill_normal(l, V, 31, 1.5);
	for (int i = 0; i < V; i++)
		order[i] = i;
	cmp_l = l;
	qsort(order, V, sizeof(int), cmp_desc);
	m = l[order[0]];
	for (int i = 0; i < V; i++)
		z += exp(l[i] - m);

	/* top_k = 7: exactly the 7 largest */
	eng_sampling_default(&p);
	p.top_k = 7;
	memset(in, 0, V);
	for (int i = 0; i < 7; i++)
		in[order[i]] = 1;
	bad = draws_in_set(s, l, V, &p, in, 3000, 5, &distinct);
	CHECK(bad == 0, "top_k: %d draws outside the top 7", bad);
	CHECK(distinct == 7, "top_k: only %d of 7 tokens drawn", distinct);

	/* top_p = 0.3 at T = 1: smallest prefix whose mass reaches 0.3 */
	eng_sampling_default(&p);
	p.top_p = 0.3;
	memset(in, 0, V);
	{
		double cum = 0;
		int n = 0;
		for (int i = 0; i < V && cum < 0.3 * z; i++, n++) {
			cum += exp(l[order[i]] - m);
			in[order[i]] = 1;
		}
		bad = draws_in_set(s, l, V, &p, in, 5000, 6, &distinct);
		CHECK(bad == 0, "top_p: %d draws outside the nucleus of %d", bad, n);
		CHECK(distinct > n / 2, "top_p: %d distinct of %d", distinct, n);
	}

	/* min_p = 0.2: p >= 0.2 p_max  <=>  l >= l_max + ln 0.2 (T = 1) */
	eng_sampling_default(&p);
	p.min_p = 0.2;
	memset(in, 0, V);
	{
		int n = 0;
		for (int i = 0; i < V; i++)
			if (exp(l[i] - m) >= 0.2)
				in[i] = 1, n++;
		bad = draws_in_set(s, l, V, &p, in, 5000, 7, &distinct);
		CHECK(bad == 0, "min_p: %d draws outside the set of %d", bad, n);
		CHECK(distinct > n / 2, "min_p: %d distinct of %d", distinct, n);
	}

	/* all three: min_p, then top_k, then top_p over what is left */
	eng_sampling_default(&p);
	p.min_p = 0.05;
	p.top_k = 20;
	p.top_p = 0.6;
	p.temperature = 0.7;
	memset(in, 0, V);
	{
		double w[20], zz = 0, cum = 0;
		int n = 0;
		for (int i = 0; i < 20; i++) {
			w[i] = exp((l[order[i]] - m) / 0.7);
			if (w[i] >= 0.05)
				zz += w[i], n = i + 1;
		}
		for (int i = 0; i < n && cum < 0.6 * zz; i++) {
			cum += w[i];
			in[order[i]] = 1;
		}
		bad = draws_in_set(s, l, V, &p, in, 4000, 8, &distinct);
		CHECK(bad == 0, "combined: %d draws outside the set", bad);
		CHECK(distinct >= 2, "combined: only %d distinct", distinct);
	}
	smp_destroy(s);
}

/* top_p alone over a real-size flat vocabulary (the growing-threshold path). */
static void test_top_p_large_vocab(void)
{
	enum { V = 256000 };
	static float l[V];
	static int order[V];
	static char in[V];
	struct smp *s = new_smp(V);
	struct eng_sampling p;
	double z = 0, cum = 0, m;
	int n = 0, distinct, bad;

	fill_normal(l, V, 77, 4.0);
	for (int i = 0; i < V; i++)
		order[i] = i;
	cmp_l = l;
	qsort(order, V, sizeof(int), cmp_desc);
	m = l[order[0]];
	for (int i = 0; i < V; i++)
		z += exp(l[i] - m);
	eng_sampling_default(&p);
	p.top_p = 0.9;
	for (int i = 0; i < V && cum < 0.9 * z; i++, n++) {
		cum += exp(l[order[i]] - m);
		in[order[i]] = 1;
	}
	bad = draws_in_set(s, l, V, &p, in, 300, 11, &distinct);
	CHECK(bad == 0, "%d draws outside a nucleus of %d", bad, n);
	CHECK(distinct > 100, "only %d distinct draws", distinct);
	/* top_k = 1 == greedy */
	p.top_p = 1;
	p.top_k = 1;
	memset(in, 0, V);
	in[order[0]] = 1;
	bad = draws_in_set(s, l, V, &p, in, 50, 12, &distinct);
	CHECK(bad == 0, "top_k=1 drew a non-argmax token %d times", bad);
	smp_destroy(s);
}

static void test_penalties_by_hand(void)
{
	float l[6] = { 2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f };
	const int toks[] = { 0, 1, 0, /* prompt */ 3, 3, 1 };
	struct smp *s = new_smp(6);
	struct eng_sampling p;

	eng_sampling_default(&p);
	p.repetition_penalty = 2.0;
	penalize(s, l, 6, &p, toks, 3, 6);
	CHECK_NEAR(l[0], 1.0, 1e-6);	/* positive: divided, once although seen twice */
	CHECK_NEAR(l[1], -2.0, 1e-6);	/* negative: multiplied */
	CHECK_NEAR(l[2], 0.5, 1e-6);	/* unseen */
	CHECK_NEAR(l[3], 1.5, 1e-6);
	CHECK_NEAR(l[4], -2.0, 1e-6);
	CHECK_NEAR(l[5], 1.0, 1e-6);

	/* frequency/presence: output tokens only (3 twice, 1 once) */
	float l2[6] = { 2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f };
	eng_sampling_default(&p);
	p.frequency_penalty = 0.5;
	p.presence_penalty = 0.25;
	penalize(s, l2, 6, &p, toks, 3, 6);
	CHECK_NEAR(l2[0], 2.0, 1e-6);			/* prompt only: untouched */
	CHECK_NEAR(l2[3], 3.0 - 2 * 0.5 - 0.25, 1e-6);
	CHECK_NEAR(l2[1], -1.0 - 0.5 - 0.25, 1e-6);
	CHECK_NEAR(l2[2], 0.5, 1e-6);

	/* both: repetition first, then frequency/presence */
	float l3[6] = { 2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f };
	p.repetition_penalty = 2.0;
	penalize(s, l3, 6, &p, toks, 3, 6);
	CHECK_NEAR(l3[3], 1.5 - 1.0 - 0.25, 1e-6);
	CHECK_NEAR(l3[1], -2.0 - 0.5 - 0.25, 1e-6);
	CHECK_NEAR(l3[0], 1.0, 1e-6);

	/* a negative presence penalty raises output tokens: 0.9 + 0.2 beats 1.0 */
	float l4[6] = { 0.0f, 0.9f, 1.0f, 0.0f, 0.0f, 0.0f };
	struct smp_result res;
	struct rng r;
	rng_seed(&r, 1);
	eng_sampling_default(&p);
	p.temperature = 0;
	p.presence_penalty = -0.2;
	op_sample(s, l4, 6, &p, &r, toks, 3, 6, NULL, 0, &res);
	CHECK(res.token == 1, "presence -0.2 should make token 1 win, got %d", res.token);
	smp_destroy(s);
}

static void test_mask_and_raw_logprobs(void)
{
	float l[8] = { 0.1f, 5.0f, 0.3f, 2.0f, -1.0f, 1.9f, 0.0f, 3.0f };
	float raw[8];
	const int toks[] = { 7, 7 };
	int mask[] = { 1 };
	struct smp *s = new_smp(8);
	struct eng_sampling p;
	struct smp_result res;
	struct rng r;
	double z = 0;

	memcpy(raw, l, sizeof(l));
	for (int i = 0; i < 8; i++)
		z += exp(raw[i] - 5.0);
	rng_seed(&r, 3);
	eng_sampling_default(&p);
	p.temperature = 0;
	p.logprobs = 3;
	p.repetition_penalty = 1.6;	/* 7: 3.0 -> 1.875, so 3 (2.0) wins */
	CHECK(op_sample(s, l, 8, &p, &r, toks, 1, 2, mask, 1, &res) == 0, "sample failed");
	CHECK(res.token == 3, "masked argmax: want 3, got %d", res.token);
	/* logprobs from the raw row: log softmax of raw[3] */
	CHECK_NEAR(res.logprob, raw[3] - (5.0 + log(z)), 1e-5);
	CHECK(res.n_top == 3, "n_top %d", res.n_top);
	CHECK(res.top[0].token == 1 && res.top[1].token == 7 && res.top[2].token == 3,
	      "raw top3 = %d %d %d, want 1 7 3", res.top[0].token, res.top[1].token,
	      res.top[2].token);
	CHECK_NEAR(res.top[0].logprob, 5.0 - (5.0 + log(z)), 1e-5);
	CHECK_NEAR(res.top[1].logprob, 3.0 - (5.0 + log(z)), 1e-5);
	smp_destroy(s);
}

static void test_sampling_check(void)
{
	struct eng_sampling p;
	const char *param;
	char err[160];
	struct {
		const char *name;
		void (*set)(struct eng_sampling *);
	} bad[] = {
		{ "temperature", NULL }, { "top_p", NULL }, { "min_p", NULL },
		{ "top_k", NULL }, { "max_tokens", NULL }, { "logprobs", NULL },
		{ "repetition_penalty", NULL }, { "presence_penalty", NULL },
		{ "stop_token_ids", NULL }, { "stop", NULL }, { "min_tokens", NULL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		eng_sampling_default(&p);
		switch (i) {
		case 0: p.temperature = NAN; break;
		case 1: p.top_p = 0; break;
		case 2: p.min_p = 1.5; break;
		case 3: p.top_k = -5; break;
		case 4: p.max_tokens = 0; break;
		case 5: p.logprobs = 21; break;
		case 6: p.repetition_penalty = 0; break;
		case 7: p.presence_penalty = 2.5; break;
		case 8: p.n_stop_ids = 1; p.stop_ids[0] = 512; break;
		case 9: p.n_stop = 1; p.stop[0] = ""; break;
		case 10: p.min_tokens = 20; break;	/* > max_tokens 16 */
		}
		param = NULL;
		int rc = eng_sampling_check(&p, 512, &param, err, sizeof(err));
		CHECK(rc == ST_EINVAL, "%s: rc %d", bad[i].name, rc);
		CHECK(param && strcmp(param, bad[i].name) == 0, "%s: param %s", bad[i].name,
		      param ? param : "(null)");
		CHECK(strstr(err, bad[i].name) != NULL, "%s: message '%s'", bad[i].name, err);
	}
	eng_sampling_default(&p);
	p.temperature = -1;
	CHECK(eng_sampling_check(&p, 512, &param, err, sizeof(err)) == ST_EINVAL, "negative T");
	p.temperature = INFINITY;
	CHECK(eng_sampling_check(&p, 512, &param, err, sizeof(err)) == ST_EINVAL, "inf T");
	eng_sampling_default(&p);
	p.top_p = 1.0;
	p.top_k = -1;
	p.temperature = 0;
	p.logprobs = 20;
	CHECK(eng_sampling_check(&p, 512, &param, err, sizeof(err)) == 0, "valid rejected: %s",
	      err);
}

/* Feeds pieces through a matcher; returns the concatenated output and the stop flag. */
static int run_stop(char **stops, int n_stop, const char *const *pieces, int n, char *all,
		    int *at_piece)
{
	struct stop_matcher m;
	char out[256];
	size_t len;
	int stopped = 0;
	all[0] = '\0';
	*at_piece = -1;
	if (stop_init(&m, stops, n_stop) != 0)
		return -1;
	for (int i = 0; i < n && !stopped; i++) {
		stopped = stop_feed(&m, pieces[i], strlen(pieces[i]), 1, out, &len);
		CHECK(strlen(out) == len, "out_len mismatch");
		strcat(all, out);
		if (stopped)
			*at_piece = i;
	}
	if (!stopped) {
		len = stop_flush(&m, out);
		strcat(all, out);
	}
	stop_release(&m);
	return stopped;
}

static void test_stop_strings(void)
{
	char *stops[] = { "END", "\n\nUser:", "ä!" };
	char all[512];
	int at;

	{	/* split over three tokens, never emitted, text before it is */
		const char *pc[] = { "abc E", "N", "Dxyz", "more" };
		CHECK(run_stop(stops, 3, pc, 4, all, &at) == 1, "END not caught");
		CHECK(strcmp(all, "abc ") == 0, "emitted '%s'", all);
		CHECK(at == 2, "stopped at piece %d", at);
	}
	{	/* held back then released when it diverges */
		struct stop_matcher m;
		char out[64];
		size_t len;
		stop_init(&m, stops, 3);
		stop_feed(&m, "ok\n", 3, 1, out, &len);
		CHECK(strcmp(out, "ok") == 0, "held '\\n' should not be emitted yet: '%s'", out);
		stop_feed(&m, "\nUs", 3, 1, out, &len);
		CHECK(len == 0, "still a prefix of \\n\\nUser:, emitted '%s'", out);
		stop_feed(&m, "ed", 2, 1, out, &len);
		CHECK(strcmp(out, "\n\nUsed") == 0, "diverged text not released: '%s'", out);
		stop_feed(&m, "E", 1, 1, out, &len);
		CHECK(len == 0, "E held");
		len = stop_flush(&m, out);
		CHECK(strcmp(out, "E") == 0 && len == 1, "flush gave '%s'", out);
		stop_release(&m);
	}
	{	/* earliest start wins; stop string inside one piece */
		const char *pc[] = { "x\n\nUser: ENDä!" };
		CHECK(run_stop(stops, 3, pc, 1, all, &at) == 1, "not stopped");
		CHECK(strcmp(all, "x") == 0, "emitted '%s'", all);
	}
	{	/* multi-byte stop string, split between tokens */
		const char *pc[] = { "hall", "ä", "!", "tail" };
		CHECK(run_stop(stops, 3, pc, 4, all, &at) == 1, "ä! not caught");
		CHECK(strcmp(all, "hall") == 0, "emitted '%s'", all);
	}
	{	/* no stop at all: everything comes out, in order */
		const char *pc[] = { "E", "N", "d", " \n", "\nU", "ser" };
		CHECK(run_stop(stops, 3, pc, 6, all, &at) == 0, "false stop");
		CHECK(strcmp(all, "ENd \n\nUser") == 0, "emitted '%s'", all);
	}
	{	/* check = 0 (before min_tokens): no matching, held text released */
		struct stop_matcher m;
		char out[64];
		size_t len;
		stop_init(&m, stops, 3);
		CHECK(stop_feed(&m, "aEN", 3, 1, out, &len) == 0 && strcmp(out, "a") == 0, "a");
		CHECK(stop_feed(&m, "D", 1, 0, out, &len) == 0, "matched while check=0");
		CHECK(strcmp(out, "END") == 0, "check=0 released '%s'", out);
		stop_release(&m);
	}
}

static void test_stop_token_rules(void)
{
	struct eng_sampling p;
	const int eos[] = { 1, 107 };
	int mask[2 + ENG_MAX_STOP], n;

	eng_sampling_default(&p);
	p.max_tokens = 10;
	p.n_stop_ids = 1;
	p.stop_ids[0] = 55;
	/* plain: EOS and stop ids end, others do not */
	CHECK(stop_token_ends(&p, eos, 2, 107, 1), "<end_of_turn> should end");
	CHECK(stop_token_ends(&p, eos, 2, 1, 3), "eos should end");
	CHECK(stop_token_ends(&p, eos, 2, 55, 3), "stop id should end");
	CHECK(!stop_token_ends(&p, eos, 2, 56, 3), "56 ended");
	CHECK(stop_mask_ids(&p, eos, 2, 0, mask) == 0, "masked without min_tokens");
	/* ignore_eos: EOS no longer ends, stop ids still do */
	p.ignore_eos = 1;
	CHECK(!stop_token_ends(&p, eos, 2, 1, 3), "eos ended with ignore_eos");
	CHECK(stop_token_ends(&p, eos, 2, 55, 3), "stop id ignored with ignore_eos");
	/* min_tokens = 4: tokens 1..4 are sampled with EOS/stop ids masked, and
	 * no id stops before the 4th */
	p.ignore_eos = 0;
	p.min_tokens = 4;
	n = stop_mask_ids(&p, eos, 2, 0, mask);
	CHECK(n == 3 && mask[0] == 1 && mask[1] == 107 && mask[2] == 55, "mask n=%d", n);
	CHECK(stop_mask_ids(&p, eos, 2, 3, mask) == 3, "4th token not masked");
	CHECK(stop_mask_ids(&p, eos, 2, 4, mask) == 0, "5th token masked");
	CHECK(!stop_token_ends(&p, eos, 2, 1, 3), "eos ended at token 3 < min_tokens");
	CHECK(stop_token_ends(&p, eos, 2, 1, 4), "eos did not end at token 4");
	p.ignore_eos = 1;
	n = stop_mask_ids(&p, eos, 2, 0, mask);
	CHECK(n == 1 && mask[0] == 55, "ignore_eos mask n=%d", n);
	/* max_tokens / max_model_len end with "length" */
	CHECK(!stop_length(&p, 9, 20, 100), "length before max_tokens");
	CHECK(stop_length(&p, 10, 20, 100), "no length at max_tokens");
	CHECK(stop_length(&p, 3, 100, 100), "no length at max_model_len");

	/* masking through the sampler: EOS has the top logit but is not drawn */
	{
		float l[200];
		struct smp *s = new_smp(200);
		struct smp_result res;
		struct rng r;
		int hits = 0;
		rng_seed(&r, 5);
		p.ignore_eos = 0;
		p.temperature = 1.0;
		for (int t = 0; t < 200; t++) {
			for (int i = 0; i < 200; i++)
				l[i] = 0;
			l[1] = 20;
			l[107] = 20;
			n = stop_mask_ids(&p, eos, 2, 0, mask);
			op_sample(s, l, 200, &p, &r, NULL, 0, 0, mask, n, &res);
			hits += res.token == 1 || res.token == 107 || res.token == 55;
		}
		CHECK(hits == 0, "masked ids drawn %d times", hits);
		smp_destroy(s);
	}
}

int main(void)
{
	struct be_opts o = { .n_threads = 2 };

	if (be_create("cpu", &o, &g_cpu) < 0) {
		printf("FAIL sampling_setup: cannot create the cpu backend\n");
		return 1;
	}
	RUN(test_greedy_is_argmax);
	RUN(test_seed_determinism);
	RUN(test_distribution_chi2);
	RUN(test_top_k_top_p_min_p_sets);
	RUN(test_top_p_large_vocab);
	RUN(test_penalties_by_hand);
	RUN(test_mask_and_raw_logprobs);
	RUN(test_sampling_check);
	RUN(test_stop_strings);
	RUN(test_stop_token_rules);
	be_destroy(&g_cpu);
	return th_done();
}
