/*
 * sample_cases.h - seeded sampling cases shared by tests/kernels/test_sample.c
 * (CPU op vs its in-test reference) and test_cuda_sample.c (CUDA op vs CPU op):
 * a row of logits (normal, quantised into ties, with -inf / NaN holes),
 * request parameters over the whole grid (greedy, temperature, min_p,
 * top_k, top_p, penalties, logprobs, logit_bias), a history and masked ids, and the
 * sample-op inputs smp_row_build() makes from them.
 * Tests only; everything static.
 */
#ifndef GR_SAMPLE_CASES_H
#define GR_SAMPLE_CASES_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/sample.h"
#include "engine/sampling.h"

#define SC_MAX_HIST 64
#define SC_MAX_MASK 4
#define SC_MAX_BIAS 4
#define SC_MAX_PAIRS (SC_MAX_HIST + SC_MAX_MASK + SC_MAX_BIAS)	/* smp_row_build's need */

struct sample_case {
	int vocab;
	float *logits;			/* [vocab], as the model returned them */
	struct eng_sampling p;
	uint64_t seed;			/* the request rng's seed */
	int tokens[SC_MAX_HIST];
	int n_prompt, n_tokens;
	int mask[SC_MAX_MASK];
	int n_mask;
};

static inline int sc_pick(struct rng *r, int n)
{
	return (int)(rng_uniform(r) * n) % n;
}

/* Case number i of a seeded family over vocab v (logits malloc'd). */
static inline void sc_make(struct sample_case *c, int v, uint64_t seed, int i)
{
	static const double temps[] = { 0, 0.3, 0.7, 1.0, 1.6 };
	static const int top_ks[] = { 0, 0, 1, 3, 40, -1 };
	static const double top_ps[] = { 1, 1, 0.95, 0.6, 0.1 };
	static const double min_ps[] = { 0, 0, 0.02, 0.3 };
	static const int lps[] = { -1, -1, 0, 1, 5, 20 };
	struct rng r;
	double scale;
	int shape;

	rng_seed(&r, seed * 7919 + (uint64_t)i);
	memset(c, 0, sizeof(*c));
	c->vocab = v;
	c->logits = malloc((size_t)v * sizeof(float));
	scale = 0.5 + 4.0 * rng_uniform(&r);
	shape = sc_pick(&r, 4);
	for (int t = 0; t < v; t++) {
		double x = rng_normal(&r) * scale;
		if (shape == 1)
			x = floor(x * 2) / 2;	/* many exact ties */
		c->logits[t] = (float)x;
	}
	if (shape == 2)	/* holes: -inf and NaN entries never win */
		for (int k = 0; k < v / 8; k++)
			c->logits[sc_pick(&r, v)] = (k & 1) ? -INFINITY : NAN;
	if (shape == 3)	/* one dominant token */
		c->logits[sc_pick(&r, v)] = (float)(scale * 6);

	eng_sampling_default(&c->p);
	c->p.temperature = temps[sc_pick(&r, 5)];
	c->p.top_k = top_ks[sc_pick(&r, 6)];
	c->p.top_p = top_ps[sc_pick(&r, 5)];
	c->p.min_p = min_ps[sc_pick(&r, 4)];
	c->p.logprobs = lps[sc_pick(&r, 6)];
	if (sc_pick(&r, 3) == 0) {
		c->p.repetition_penalty = 1.0 + rng_uniform(&r);
		c->p.frequency_penalty = rng_uniform(&r) * 2 - 0.5;
		c->p.presence_penalty = rng_uniform(&r) - 0.25;
	}
	c->seed = seed + (uint64_t)i;
	c->n_tokens = sc_pick(&r, SC_MAX_HIST + 1);
	c->n_prompt = c->n_tokens ? sc_pick(&r, c->n_tokens + 1) : 0;
	for (int k = 0; k < c->n_tokens; k++)	/* repeats: a small id range */
		c->tokens[k] = sc_pick(&r, v < 50 ? v : 50);
	c->n_mask = sc_pick(&r, SC_MAX_MASK + 1);
	for (int k = 0; k < c->n_mask; k++)
		c->mask[k] = sc_pick(&r, v);
	if (sc_pick(&r, 3) == 0) {	/* logit_bias: bans, forces, nudges (drawn last: the
					 * fields above are what they were before it) */
		static const float biases[] = { -100, 100, 0.5f, -3, 7.25f };
		c->p.n_logit_bias = 1 + sc_pick(&r, SC_MAX_BIAS);
		for (int k = 0; k < c->p.n_logit_bias; k++) {
			c->p.bias_ids[k] = sc_pick(&r, v < 60 ? v : 60);	/* meets the history */
			c->p.bias[k] = biases[sc_pick(&r, 5)];
		}
	}
}

static inline void sc_free(struct sample_case *c)
{
	free(c->logits);
	c->logits = NULL;
}

#endif
