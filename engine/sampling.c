/*
 * sampling.c - a request's sampling parameters: their defaults and checks
 * (eng_sampling_default, eng_sampling_check), and the step's input of the
 * sample op built from them (smp_row_build: struct be_sample_row and the
 * row's pairs; smp_row_result: the op's output back into a smp_result).
 *
 * Not here: choosing a token. That is be_ops.sample (kernels/sample.h;
 * the CPU op kernels/cpu/cpu_sample.c is the reference, the CUDA op its
 * twin), run inside g2_forward.
 *
 * Scratch is sized for the vocabulary at smp_create: per-token "stamps"
 * dedupe a row's ids in O(history) without clearing V-sized arrays per
 * call (a stamp equal to the call's generation means "seen in this call").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/sampling.h"
#include "kernels/kv_hash.h"

#define SMP_MAX_STOP_LEN 512	/* bytes per stop string */

struct smp {
	int vocab;
	uint32_t gen;
	uint32_t *stamp;	/* [V] pair_of[t] valid when == gen */
	int32_t *pair_of;	/* [V] index of token t's pair in this call */
};

uint64_t eng_cache_salt(const char *salt)
{
	return salt && *salt ? kv_hash_salt(salt) : 0;
}

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
	if (s->n_logit_bias < 0 || s->n_logit_bias > ENG_MAX_LOGIT_BIAS)
		CHECK_FAIL("logit_bias", "logit_bias: at most %d entries, got %d", ENG_MAX_LOGIT_BIAS,
			   s->n_logit_bias);
	for (int i = 0; i < s->n_logit_bias; i++) {
		if (s->bias_ids[i] < 0 || s->bias_ids[i] >= vocab_size)
			CHECK_FAIL("logit_bias", "logit_bias: token id %d is out of range [0, %d)",
				   s->bias_ids[i], vocab_size);
		if (!isfinite(s->bias[i]) || fabsf(s->bias[i]) > ENG_LOGIT_BIAS_MAX)
			CHECK_FAIL("logit_bias", "logit_bias: the bias of token %d must be in [-100, 100], "
				   "got %g", s->bias_ids[i], s->bias[i]);
	}
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
	s->stamp = calloc(v, sizeof(uint32_t));
	s->pair_of = malloc(v * sizeof(int32_t));
	if (!s->stamp || !s->pair_of) {
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
	free(s->stamp);
	free(s->pair_of);
	free(s);
}

/* Starts a new call: a fresh stamp generation (clears the stamps on wrap). */
static void smp_next_gen(struct smp *s)
{
	if (++s->gen == 0) {
		size_t n = (size_t)s->vocab * sizeof(uint32_t);
		memset(s->stamp, 0, n);
		s->gen = 1;
	}
}

/* The pair of token t in this call (added on first use). */
static struct be_sample_pair *pair_of(struct smp *s, struct be_sample_pair *pairs, int *n, int t)
{
	if (s->stamp[t] != s->gen) {
		s->stamp[t] = s->gen;
		s->pair_of[t] = *n;
		pairs[*n] = (struct be_sample_pair){ .token = t };
		(*n)++;
	}
	return &pairs[s->pair_of[t]];
}

int smp_row_build(struct smp *s, const struct eng_sampling *p, struct rng *rng,
		  const int *tokens, int n_prompt, int n_tokens, const int *mask_ids, int n_mask,
		  struct be_sample_row *row, int pair_off, struct be_sample_pair *pairs, int cap)
{
	const int V = s->vocab;
	int n = 0, rep = p->repetition_penalty != 1.0;
	int fp = p->frequency_penalty != 0.0 || p->presence_penalty != 0.0;

	int need = ((rep || fp) ? n_tokens : 0) + n_mask + p->n_logit_bias;

	if (cap < need)
		return log_err(ST_EFULL, "sampler: %d pairs do not fit in %d", need, cap);
	smp_next_gen(s);
	for (int i = 0; i < n_mask; i++)
		if (mask_ids[i] >= 0 && mask_ids[i] < V)
			pair_of(s, pairs, &n, mask_ids[i])->flags |= BE_PAIR_MASK;
	for (int i = 0; i < p->n_logit_bias; i++)	/* a repeated id: the last bias wins */
		if (p->bias_ids[i] >= 0 && p->bias_ids[i] < V)
			pair_of(s, pairs, &n, p->bias_ids[i])->bias = p->bias[i];
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
	row->u = p->temperature < BE_SAMPLE_GREEDY_EPS ? 0 : rng_uniform(rng);
	return n;
}

int smp_row_result(const struct be_sample_out *o, const struct eng_sampling *p,
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
