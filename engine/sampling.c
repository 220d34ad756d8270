/*
 * sampling.c - penalties, temperature, min_p / top_k / top_p, the draw, and
 * raw logprobs for one row of logits (see sampling.h for the order).
 *
 * Also holds eng_sampling_default() and eng_sampling_check() (engine.h).
 *
 * Scratch is sized for the vocabulary at smp_create: per-token "stamps" give
 * O(history) penalties without clearing V-sized arrays per call (a stamp
 * equal to the call's generation means "set in this call").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/sampling.h"

#define SMP_GREEDY_EPS BE_SAMPLE_GREEDY_EPS	/* temperatures below this are greedy (vLLM) */
#define SMP_MAX_STOP_LEN 512	/* bytes per stop string */

struct smp_cand {
	float l;
	int id;
};

struct smp {
	int vocab;
	uint32_t gen;
	uint32_t *mod_stamp;	/* [V] orig[t] valid when == gen */
	uint32_t *seen_stamp;	/* [V] repetition penalty applied this call */
	uint32_t *cnt_stamp;	/* [V] count[t] valid when == gen */
	float *orig;		/* [V] raw logit of a modified entry */
	int32_t *count;		/* [V] occurrences in the output */
	struct smp_cand *cand;	/* [V] candidate set */
	float *w;		/* [V] unnormalised probabilities */
};

void eng_sampling_default(struct eng_sampling *s)
{
	memset(s, 0, sizeof(*s));
	s->temperature = 1.0;
	s->top_k = 0;
	s->top_p = 1.0;
	s->min_p = 0.0;
	s->repetition_penalty = 1.0;
	s->max_tokens = 16;
	s->min_tokens = 0;
	s->logprobs = -1;
}

#define CHECK_FAIL(name, ...) do { \
		if (param) *param = (name); \
		if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
		return ST_EINVAL; \
	} while (0)

int eng_sampling_check(const struct eng_sampling *s, int vocab_size, const char **param,
		       char *err, size_t errlen)
{
	if (param)
		*param = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (!isfinite(s->temperature) || s->temperature < 0)
		CHECK_FAIL("temperature", "temperature must be a finite number >= 0, got %g",
			   s->temperature);
	if (s->top_k < -1)
		CHECK_FAIL("top_k", "top_k must be -1, 0 (off) or a positive integer, got %d",
			   s->top_k);
	if (!isfinite(s->top_p) || s->top_p <= 0 || s->top_p > 1)
		CHECK_FAIL("top_p", "top_p must be in (0, 1], got %g", s->top_p);
	if (!isfinite(s->min_p) || s->min_p < 0 || s->min_p > 1)
		CHECK_FAIL("min_p", "min_p must be in [0, 1], got %g", s->min_p);
	if (!isfinite(s->presence_penalty) || s->presence_penalty < -2 || s->presence_penalty > 2)
		CHECK_FAIL("presence_penalty", "presence_penalty must be in [-2, 2], got %g",
			   s->presence_penalty);
	if (!isfinite(s->frequency_penalty) || s->frequency_penalty < -2 ||
	    s->frequency_penalty > 2)
		CHECK_FAIL("frequency_penalty", "frequency_penalty must be in [-2, 2], got %g",
			   s->frequency_penalty);
	if (!isfinite(s->repetition_penalty) || s->repetition_penalty <= 0 ||
	    s->repetition_penalty > 100)
		CHECK_FAIL("repetition_penalty", "repetition_penalty must be in (0, 100], got %g",
			   s->repetition_penalty);
	if (s->max_tokens < 1)
		CHECK_FAIL("max_tokens", "max_tokens must be >= 1, got %d", s->max_tokens);
	if (s->min_tokens < 0 || s->min_tokens > s->max_tokens)
		CHECK_FAIL("min_tokens", "min_tokens must be in [0, max_tokens=%d], got %d",
			   s->max_tokens, s->min_tokens);
	if (s->logprobs < -1 || s->logprobs > ENG_MAX_LOGPROBS)
		CHECK_FAIL("logprobs", "logprobs must be in [0, %d], got %d", ENG_MAX_LOGPROBS,
			   s->logprobs);
	if (s->n_stop < 0 || s->n_stop > ENG_MAX_STOP)
		CHECK_FAIL("stop", "at most %d stop strings, got %d", ENG_MAX_STOP, s->n_stop);
	for (int i = 0; i < s->n_stop; i++) {
		size_t n = s->stop[i] ? strlen(s->stop[i]) : 0;
		if (n == 0)
			CHECK_FAIL("stop", "stop string %d is empty", i);
		if (n > SMP_MAX_STOP_LEN)
			CHECK_FAIL("stop", "stop string %d is %zu bytes, at most %d", i, n,
				   SMP_MAX_STOP_LEN);
		if (!utf8_valid(s->stop[i], n))
			CHECK_FAIL("stop", "stop string %d is not valid UTF-8", i);
	}
	if (s->n_stop_ids < 0 || s->n_stop_ids > ENG_MAX_STOP)
		CHECK_FAIL("stop_token_ids", "stop_token_ids: at most %d ids, got %d", ENG_MAX_STOP,
			   s->n_stop_ids);
	for (int i = 0; i < s->n_stop_ids; i++)
		if (s->stop_ids[i] < 0 || s->stop_ids[i] >= vocab_size)
			CHECK_FAIL("stop_token_ids", "stop_token_ids: id %d is out of range [0, %d)",
				   s->stop_ids[i], vocab_size);
	return 0;
}

int smp_create(int vocab, struct smp **out)
{
	struct smp *s;
	size_t v = (size_t)vocab;

	*out = NULL;
	if (vocab <= 0)
		return log_err(ST_EINVAL, "sampler: vocabulary size %d", vocab);
	s = calloc(1, sizeof(*s));
	if (!s)
		return ST_ENOMEM;
	s->vocab = vocab;
	s->mod_stamp = calloc(v, sizeof(uint32_t));
	s->seen_stamp = calloc(v, sizeof(uint32_t));
	s->cnt_stamp = calloc(v, sizeof(uint32_t));
	s->orig = malloc(v * sizeof(float));
	s->count = malloc(v * sizeof(int32_t));
	s->cand = malloc(v * sizeof(struct smp_cand));
	s->w = malloc(v * sizeof(float));
	if (!s->mod_stamp || !s->seen_stamp || !s->cnt_stamp || !s->orig || !s->count ||
	    !s->cand || !s->w) {
		smp_destroy(s);
		return log_err(ST_ENOMEM, "sampler: no memory for vocabulary %d", vocab);
	}
	*out = s;
	return 0;
}

void smp_destroy(struct smp *s)
{
	if (!s)
		return;
	free(s->mod_stamp);
	free(s->seen_stamp);
	free(s->cnt_stamp);
	free(s->orig);
	free(s->count);
	free(s->cand);
	free(s->w);
	free(s);
}

/* Starts a new call: a fresh stamp generation (clears the stamps on wrap). */
static void smp_next_gen(struct smp *s)
{
	if (++s->gen == 0) {
		size_t n = (size_t)s->vocab * sizeof(uint32_t);
		memset(s->mod_stamp, 0, n);
		memset(s->seen_stamp, 0, n);
		memset(s->cnt_stamp, 0, n);
		s->gen = 1;
	}
}

/* Writes logits[t] = v, remembering the raw value the first time. */
static inline void smp_set(struct smp *s, float *logits, int t, float v)
{
	if (s->mod_stamp[t] != s->gen) {
		s->mod_stamp[t] = s->gen;
		s->orig[t] = logits[t];
	}
	logits[t] = v;
}

/* Largest value (NaN ignored; -inf when none is larger): 8 independent
 * branch-free accumulators, so the loop runs at memory speed. */
static float row_max(const float *x, int n)
{
	float m[8];
	int i = 0;
	for (int j = 0; j < 8; j++)
		m[j] = -INFINITY;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
	for (; i < n; i++)
		m[0] = x[i] > m[0] ? x[i] : m[0];
	for (int j = 1; j < 8; j++)
		m[0] = m[j] > m[0] ? m[j] : m[0];
	return m[0];
}

/*
 * One pass, 8 independent lanes (each keeps its first maximum), then the
 * lanes are merged: the largest value, ties to the lowest id. NaN never
 * wins; -1 when nothing is above -inf.
 */
int smp_argmax(const float *logits, int vocab)
{
	float m[8], bm = -INFINITY;
	int id[8], i = 0, best = -1;

	for (int j = 0; j < 8; j++) {
		m[j] = -INFINITY;
		id[j] = -1;
	}
	for (; i + 8 <= vocab; i += 8)
		for (int j = 0; j < 8; j++) {
			int gt = logits[i + j] > m[j];
			m[j] = gt ? logits[i + j] : m[j];
			id[j] = gt ? i + j : id[j];
		}
	for (; i < vocab; i++)
		if (logits[i] > m[0]) {
			m[0] = logits[i];
			id[0] = i;
		}
	for (int j = 0; j < 8; j++)
		if (id[j] >= 0 && (m[j] > bm || (m[j] == bm && id[j] < best))) {
			bm = m[j];
			best = id[j];
		}
	return best;
}

/* exp(x) for x <= 0 in float (libm's expf: fast and exact to an ulp). */
static inline float exp_neg(float x)
{
	return expf(x);
}

/* a ranks before b: higher logit, then lower id. */
static inline int cand_better(const struct smp_cand *a, const struct smp_cand *b)
{
	return a->l > b->l || (a->l == b->l && a->id < b->id);
}

/* Min-heap (worst at the root) sift-down over h[0, n). */
static void heap_down(struct smp_cand *h, int n, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, w = i;
		if (l < n && cand_better(&h[w], &h[l]))
			w = l;
		if (r < n && cand_better(&h[w], &h[r]))
			w = r;
		if (w == i)
			return;
		struct smp_cand t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

/*
 * Sorts h[0, n) best first, in place: heapsort (glibc's qsort may call
 * malloc, and nothing here allocates per token).
 */
static void cand_sort(struct smp_cand *h, int n)
{
	for (int j = n / 2 - 1; j >= 0; j--)
		heap_down(h, n, j);
	for (int end = n - 1; end > 0; end--) {
		struct smp_cand t = h[0];	/* the worst left goes last */
		h[0] = h[end];
		h[end] = t;
		heap_down(h, end, 0);
	}
}

/*
 * The best k entries with logit >= thr into h[0, n), sorted best first;
 * returns n (<= k). O(V log k).
 */
static int select_top(struct smp_cand *h, int k, const float *logits, int vocab, float thr)
{
	int n = 0;
	for (int i = 0; i < vocab; i++) {
		float l = logits[i];
		if (!(l >= thr))
			continue;
		if (n < k) {
			h[n].l = l;
			h[n].id = i;
			n++;
			if (n == k)
				for (int j = k / 2 - 1; j >= 0; j--)
					heap_down(h, k, j);
		} else if (l > h[0].l) {	/* ties keep the lower id already held */
			h[0].l = l;
			h[0].id = i;
			heap_down(h, k, 0);
		}
	}
	if (n < k)	/* never became a heap */
		cand_sort(h, n);
	else
		for (int end = n - 1; end > 0; end--) {
			struct smp_cand t = h[0];
			h[0] = h[end];
			h[end] = t;
			heap_down(h, end, 0);
		}
	return n;
}

float smp_logprobs(const float *logits, int vocab, int tok, int n, struct eng_logprob *top)
{
	struct smp_cand h[ENG_MAX_LOGPROBS];
	float m = -INFINITY;
	double sum = 0, lse;

	m = row_max(logits, vocab);
	for (int i = 0; i < vocab; i++)
		sum += exp_neg(logits[i] - m);
	lse = m + log(sum);
	if (n > ENG_MAX_LOGPROBS)
		n = ENG_MAX_LOGPROBS;
	if (n > 0 && top) {
		int got = select_top(h, n, logits, vocab, -INFINITY);
		for (int i = 0; i < got; i++) {
			top[i].token = h[i].id;
			top[i].logprob = (float)(h[i].l - lse);
		}
	}
	return (float)(logits[tok] - lse);
}

static void apply_penalties(struct smp *s, float *logits, const struct eng_sampling *p,
			    const int *tokens, int n_prompt, int n_tokens)
{
	const int V = s->vocab;
	const uint32_t g = s->gen;

	if (p->repetition_penalty != 1.0) {
		const float r = (float)p->repetition_penalty;
		for (int i = 0; i < n_tokens; i++) {
			int t = tokens[i];
			if (t < 0 || t >= V || s->seen_stamp[t] == g)
				continue;
			s->seen_stamp[t] = g;
			float l = logits[t];
			smp_set(s, logits, t, l > 0 ? l / r : l * r);
		}
	}
	if (p->frequency_penalty != 0.0 || p->presence_penalty != 0.0) {
		const double f = p->frequency_penalty, pr = p->presence_penalty;
		for (int i = n_prompt; i < n_tokens; i++) {
			int t = tokens[i];
			if (t < 0 || t >= V)
				continue;
			if (s->cnt_stamp[t] != g) {
				s->cnt_stamp[t] = g;
				s->count[t] = 0;
			}
			s->count[t]++;
		}
		for (int i = n_prompt; i < n_tokens; i++) {
			int t = tokens[i];
			if (t < 0 || t >= V || s->count[t] == 0)
				continue;
			smp_set(s, logits, t, (float)(logits[t] - f * s->count[t] - pr));
			s->count[t] = 0;	/* once per distinct token */
		}
	}
}

void smp_apply_penalties(struct smp *s, float *logits, const struct eng_sampling *p,
			 const int *tokens, int n_prompt, int n_tokens)
{
	smp_next_gen(s);
	apply_penalties(s, logits, p, tokens, n_prompt, n_tokens);
}

/* Draws from w[0, n) (unnormalised, total mass `total`); returns an index. */
static int draw(const float *w, int n, double total, struct rng *rng)
{
	double u = rng_uniform(rng) * total, cum = 0;
	int last = 0;
	for (int i = 0; i < n; i++) {
		if (w[i] <= 0)
			continue;
		cum += w[i];
		last = i;
		if (u < cum)
			return i;
	}
	return last;	/* rounding: the last entry with mass */
}

/* Samples from cand[0, n) sorted best first, applying top_p. */
static int draw_sorted(struct smp *s, int n, double m, double inv_t, double top_p, double z,
		       struct rng *rng)
{
	const float it = (float)inv_t, mf = (float)m;
	double sum = 0;
	int keep = n;
	for (int i = 0; i < n; i++) {
		s->w[i] = exp_neg((s->cand[i].l - mf) * it);
		sum += s->w[i];
	}
	if (top_p < 1.0) {
		double target = top_p * (z > 0 ? z : sum), cum = 0;
		for (int i = 0; i < n; i++) {
			cum += s->w[i];
			if (cum >= target) {
				keep = i + 1;
				break;
			}
		}
		sum = 0;
		for (int i = 0; i < keep; i++)
			sum += s->w[i];
	}
	return s->cand[draw(s->w, keep, sum, rng)].id;
}

static int sample_random(struct smp *s, const float *logits, const struct eng_sampling *p,
			 struct rng *rng, int amax)
{
	const int V = s->vocab;
	const double T = p->temperature, inv_t = 1.0 / T;
	const double m = logits[amax];
	float thr = -INFINITY;
	int k = (p->top_k > 0 && p->top_k < V) ? p->top_k : V;

	if (p->min_p > 0)
		thr = (float)(m + T * log(p->min_p));
	if (k < V) {
		int n = select_top(s->cand, k, logits, V, thr);
		return draw_sorted(s, n, m, inv_t, p->top_p, 0, rng);
	}
	if (p->top_p < 1.0) {
		const float it = (float)inv_t, mf = (float)m;
		double z = 0;
		for (int i = 0; i < V; i++) {
			float w = logits[i] >= thr ? exp_neg((logits[i] - mf) * it) : 0.0f;
			s->w[i] = w;
			z += w;
		}
		/* Lower a weight cut until the tokens above it hold top_p of the mass. */
		for (double c = 4;; c *= 2) {
			float cut = c > 64 ? 0.0f : exp_neg((float)-c);
			double mass = 0;
			int n = 0;
			for (int i = 0; i < V; i++)
				if (s->w[i] > 0 && s->w[i] >= cut) {
					s->cand[n].l = logits[i];
					s->cand[n].id = i;
					n++;
					mass += s->w[i];
				}
			if (mass >= p->top_p * z || c > 64) {
				cand_sort(s->cand, n);
				return draw_sorted(s, n, m, inv_t, p->top_p, z, rng);
			}
		}
	}
	/* Full distribution (possibly min_p-filtered): O(V), no sort. */
	double sum = 0;
	const float it = (float)inv_t, mf = (float)m;
	for (int i = 0; i < V; i++) {
		float w = logits[i] >= thr ? exp_neg((logits[i] - mf) * it) : 0.0f;
		s->w[i] = w;
		sum += w;
	}
	return draw(s->w, V, sum, rng);
}

/* The pair of token t in this call (added on first use; index kept in s->count). */
static struct be_sample_pair *pair_of(struct smp *s, struct be_sample_pair *pairs, int *n, int t)
{
	if (s->mod_stamp[t] != s->gen) {
		s->mod_stamp[t] = s->gen;
		s->count[t] = *n;
		pairs[*n] = (struct be_sample_pair){ .token = t };
		(*n)++;
	}
	return &pairs[s->count[t]];
}

int smp_device_row(struct smp *s, const struct eng_sampling *p, struct rng *rng,
		   const int *tokens, int n_prompt, int n_tokens, const int *mask_ids, int n_mask,
		   struct be_sample_row *row, int pair_off, struct be_sample_pair *pairs, int cap)
{
	const int V = s->vocab;
	int n = 0, rep = p->repetition_penalty != 1.0;
	int fp = p->frequency_penalty != 0.0 || p->presence_penalty != 0.0;

	if (cap < smp_device_pairs_max((rep || fp) ? n_tokens : 0, n_mask))
		return log_err(ST_EFULL, "sampler: %d pairs do not fit in %d", n_tokens + n_mask, cap);
	smp_next_gen(s);
	for (int i = 0; i < n_mask; i++)
		if (mask_ids[i] >= 0 && mask_ids[i] < V)
			pair_of(s, pairs, &n, mask_ids[i])->flags |= BE_PAIR_MASK;
	for (int i = 0; rep && i < n_tokens; i++)
		if (tokens[i] >= 0 && tokens[i] < V)
			pair_of(s, pairs, &n, tokens[i])->flags |= BE_PAIR_SEEN;
	for (int i = n_prompt; fp && i < n_tokens; i++)
		if (tokens[i] >= 0 && tokens[i] < V)
			pair_of(s, pairs, &n, tokens[i])->count++;
	memset(row, 0, sizeof(*row));
	row->temperature = p->temperature;
	row->top_p = p->top_p;
	row->min_p = p->min_p;
	row->freq = p->frequency_penalty;
	row->pres = p->presence_penalty;
	row->rep = (float)p->repetition_penalty;
	row->top_k = p->top_k;
	row->n_logprobs = p->logprobs;
	row->pair_off = pair_off;
	row->n_pairs = n;
	row->u = p->temperature < SMP_GREEDY_EPS ? 0 : rng_uniform(rng);
	return n;
}

int smp_device_result(const struct be_sample_out *o, const struct eng_sampling *p,
		      struct smp_result *res)
{
	res->token = o->token;
	res->logprob = 0;
	res->n_top = 0;
	if (o->token < 0)
		return log_err(ST_EINVAL, "sampler: no finite logit in the row");
	if (p->logprobs >= 0) {
		res->logprob = o->logprob;
		res->n_top = o->n_top < ENG_MAX_LOGPROBS ? o->n_top : ENG_MAX_LOGPROBS;
		for (int i = 0; i < res->n_top; i++) {
			res->top[i].token = o->top_id[i];
			res->top[i].logprob = o->top_lp[i];
		}
	}
	return 0;
}

int smp_sample(struct smp *s, float *logits, const struct eng_sampling *p, struct rng *rng,
	       const int *tokens, int n_prompt, int n_tokens, const int *mask_ids, int n_mask,
	       struct smp_result *res)
{
	const int V = s->vocab;
	int amax, tok;

	smp_next_gen(s);
	res->n_top = 0;
	res->logprob = 0;
	for (int i = 0; i < n_mask; i++)
		if (mask_ids[i] >= 0 && mask_ids[i] < V)
			smp_set(s, logits, mask_ids[i], -INFINITY);
	apply_penalties(s, logits, p, tokens, n_prompt, n_tokens);
	amax = smp_argmax(logits, V);
	if (amax < 0)
		return log_err(ST_EINVAL, "sampler: no finite logit in the row");
	if (p->temperature < SMP_GREEDY_EPS)
		tok = amax;
	else
		tok = sample_random(s, logits, p, rng, amax);
	res->token = tok;
	if (p->logprobs >= 0) {
		/* Raw logprobs: put the modified entries back first. */
		for (int i = 0; i < n_tokens; i++) {
			int t = tokens[i];
			if (t >= 0 && t < V && s->mod_stamp[t] == s->gen) {
				logits[t] = s->orig[t];
				s->mod_stamp[t] = 0;
			}
		}
		for (int i = 0; i < n_mask; i++) {
			int t = mask_ids[i];
			if (t >= 0 && t < V && s->mod_stamp[t] == s->gen) {
				logits[t] = s->orig[t];
				s->mod_stamp[t] = 0;
			}
		}
		res->n_top = p->logprobs;
		res->logprob = smp_logprobs(logits, V, tok, p->logprobs, res->top);
		if (res->n_top > V)
			res->n_top = V;
	}
	return 0;
}
