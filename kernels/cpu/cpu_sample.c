/*
 * cpu_sample.c - the CPU backend's sample op: kernels/sample.h's pipeline,
 * one row per pool task, each select a loop over the row per digit.
 *
 * This is the engine's sampler on the CPU backend and the reference the
 * CUDA op (kernels/cuda/cu_sample.cu) is checked against: the same keys,
 * fixed-point weights, targets and digit choice (sample.h), so both pick
 * the same entry for the same histograms (tests/kernels/test_sample.c
 * checks it against an in-test sort-based reference). Greedy rows take
 * one argmax pass; a select computes an entry's weight (an expf) only once
 * its key is in the select's range.
 * Nothing is allocated; logits rows and pair orig values are written.
 */
#include <math.h>
#include <string.h>

#include "common/status.h"
#include "kernels/cpu/cpu.h"
#include "kernels/sample.h"

struct smp_found {
	uint64_t key;
	uint64_t cum;		/* running mass up to and including the entry */
};

/* Radix select over row l for pass p: the first entry whose running mass reaches target. */
static struct smp_found select_row(const float *l, int V, const struct smp_pass *p,
				   uint64_t target)
{
	struct smp_sel s;
	struct smp_found f = { SMP_KEY_MAX, 0 };
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
static uint64_t total_row(const float *l, int V, const struct smp_pass *p)
{
	uint64_t z = 0, key;
	for (int i = 0; i < V; i++)
		z += smp_elem(p, l[i], i, &key);
	return z;
}

/* The top n entries by (logit desc, id asc) into o->top_* (raw logprobs). */
static void top_logprobs(const float *l, int V, int n, double lse, struct be_sample_out *o)
{
	struct smp_pass p = { .mode = SMP_COUNT_ALL, .sorted = 1 };
	uint64_t keys[BE_SAMPLE_MAX_TOP], key;
	int got = 0;
	struct smp_found f = select_row(l, V, &p, (uint64_t)n);

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
static int row_argmax(const float *l, int V)
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

static void sample_one(float *l, int V, const struct be_sample_row *r,
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
			top_logprobs(l, V, r->n_logprobs < V ? r->n_logprobs : V, lse, o);
	}
	for (int j = 0; j < r->n_pairs; j++) {
		int t = pr[j].token;
		if (t < 0 || t >= V)
			continue;
		pr[j].orig = l[t];
		l[t] = smp_pair_apply(l[t], &pr[j], r);
	}
	amax = row_argmax(l, V);
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
			if (total_row(l, V, &c) > (uint64_t)r->top_k)
				p.kcut = select_row(l, V, &c, (uint64_t)r->top_k).key;
		}
		z = total_row(l, V, &p);
		if (r->top_p < 1.0) {
			struct smp_found f = select_row(l, V, &p, smp_top_p_target(r->top_p, z));
			p.pcut = f.key;
			z = f.cum;
		}
		tok = (int)(uint32_t)select_row(l, V, &p, smp_draw_target(r->u, z)).key;
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

struct sample_job {
	struct be_sample_out *out;
	float *logits;
	const struct be_sample_row *rows;
	struct be_sample_pair *pairs;
	int vocab;
};

static void sample_task(void *arg, int i)
{
	struct sample_job *j = arg;
	sample_one(j->logits + (size_t)i * j->vocab, j->vocab, &j->rows[i], j->pairs, &j->out[i]);
}

int cpu_sample(void *ctx, struct be_sample_out *out, float *logits,
	       const struct be_sample_row *rows, struct be_sample_pair *pairs, int n_rows, int vocab)
{
	struct sample_job j = { out, logits, rows, pairs, vocab };

	if (n_rows < 0 || vocab <= 0)
		return ST_EINVAL;
	for (int i = 0; i < n_rows; i++)
		if (rows[i].n_logprobs > BE_SAMPLE_MAX_TOP || rows[i].n_pairs < 0 ||
		    rows[i].pair_off < 0)
			return ST_EINVAL;
	if (n_rows > 0)
		cpu_parallel(ctx, n_rows, sample_task, &j);
	return 0;
}
