/*
 * sampling.h - a request's sampling parameters (struct eng_sampling, its
 * defaults and checks) and the step's input to the sample op built from
 * them: one struct be_sample_row (temperature, top_k/top_p/min_p,
 * penalties, logprobs count, the uniform u drawn from the request's rng)
 * and the row's pairs (its distinct masked / seen / generated ids).
 *
 * Not here: choosing the token. Every token is chosen by be_ops.sample
 * inside g2_forward (kernels/sample.h holds the pipeline and its order:
 * raw logprobs -> mask -> logit_bias -> repetition / frequency / presence penalties ->
 * greedy argmax | temperature, min_p, top_k, top_p, one draw with u;
 * kernels/cpu/cpu_sample.c is the reference, the CUDA op its twin).
 *
 * A struct smp (pair scratch sized for the vocabulary) is used by one
 * thread at a time (the engine thread). Nothing is allocated per call.
 */
#ifndef GR_SAMPLING_H
#define GR_SAMPLING_H

#include <stdint.h>

#include "common/util.h"
#include "kernels/sample.h"

/* The sampling parameters of one request (checked by eng_sampling_check). */
#define ENG_MAX_STOP 16
#define ENG_MAX_LOGPROBS 20
#define ENG_MAX_LOGIT_BIAS 300		/* OpenAI's limit on logit_bias entries */
#define ENG_LOGIT_BIAS_MAX 100.0	/* |bias| at most this (OpenAI: [-100, 100]) */

struct eng_sampling {
	double temperature;		/* 0 = greedy */
	int top_k;			/* 0 or -1 = off */
	double top_p;			/* 1 = off */
	double min_p;			/* 0 = off */
	int has_seed;
	uint64_t seed;
	double presence_penalty;	/* OpenAI semantics, 0 = off */
	double frequency_penalty;	/* 0 = off */
	double repetition_penalty;	/* HF/vLLM semantics, 1 = off */
	int max_tokens;			/* > 0 */
	int min_tokens;			/* stop conditions ignored before this many */
	int ignore_eos;
	int logprobs;			/* -1: none; 0..ENG_MAX_LOGPROBS: chosen + top-N */
	int n_stop;
	char *stop[ENG_MAX_STOP];	/* stop strings (owned by the request after submit) */
	int n_stop_ids;
	int stop_ids[ENG_MAX_STOP];	/* extra stop token ids */
	int n_logit_bias;		/* logit_bias: bias_ids[i] gets + bias[i] */
	int bias_ids[ENG_MAX_LOGIT_BIAS];
	float bias[ENG_MAX_LOGIT_BIAS];
	uint64_t cache_salt;		/* eng_cache_salt(request's cache_salt); 0: none */
	/*
	 * Structured outputs (engine/grammar_schema.h): guide_kind 0 = none,
	 * else enum grs_kind with its text (borrowed until eng_submit returns;
	 * the engine compiles it through the grammar cache at submit).
	 */
	int guide_kind;
	const char *guide;
	size_t guide_len;
};

/*
 * The prefix-cache salt of a request's cache_salt string (vLLM's
 * parameter): requests whose salts differ never share KV blocks. NULL or
 * "" is no salt (0).
 */
uint64_t eng_cache_salt(const char *salt);

/* Fills the defaults above (temperature 1, top_p 1, max_tokens 16, ...). */
void eng_sampling_default(struct eng_sampling *s);

/* Checks ranges; on error names the parameter in *param and returns ST_EINVAL. */
int eng_sampling_check(const struct eng_sampling *s, int vocab_size, const char **param,
		       char *err, size_t errlen);

struct eng_logprob {
	int token;
	float logprob;
};


struct smp;

/* What was chosen and, if logprobs >= 0, its raw logprob and the top n_top. */
struct smp_result {
	int token;
	float logprob;
	int n_top;
	struct eng_logprob top[ENG_MAX_LOGPROBS];
};

/* Scratch for a vocabulary of `vocab` tokens (caller frees with smp_destroy). */
int smp_create(int vocab, struct smp **out);
void smp_destroy(struct smp *s);

/*
 * Builds the sample op's input for one request: fills *row and writes the
 * row's distinct masked / biased / penalised ids into pairs[0, cap) (row->pair_off
 * = pair_off, the caller's offset of pairs in its array). tokens[0,
 * n_prompt) is the prompt and tokens[n_prompt, n_tokens) the tokens
 * generated so far (penalty history); mask_ids (n_mask, may be 0) are
 * forbidden this step. Draws u from rng once per non-greedy step (none
 * for greedy), so a seeded request's draws depend only on its seed.
 * p is assumed valid (eng_sampling_check).
 * Returns the number of pairs, or ST_EFULL when more than cap are needed.
 */
int smp_row_build(struct smp *s, const struct eng_sampling *p, struct rng *rng,
		  const int *tokens, int n_prompt, int n_tokens, const int *mask_ids, int n_mask,
		  struct be_sample_row *row, int pair_off, struct be_sample_pair *pairs, int cap);

/* Pairs smp_row_build may need for a history of n_tokens, n_mask masked ids
 * and the most logit_bias entries a request may have. */
static inline int smp_pairs_max(int n_tokens, int n_mask)
{
	return n_tokens + n_mask + ENG_MAX_LOGIT_BIAS;
}

/*
 * Copies the op's output for one row into *res (logprobs only when
 * p->logprobs >= 0). Returns 0, or ST_EINVAL when the row held no finite
 * logit (token -1).
 */
int smp_row_result(const struct be_sample_out *o, const struct eng_sampling *p,
		   struct smp_result *res);

#endif
