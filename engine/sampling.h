/*
 * sampling.h - turns one row of fp32 logits into the next token of a request.
 *
 * Pipeline, in this order (vLLM v1's order):
 *   1. logprobs (when asked) are computed from the RAW model logits, i.e. the
 *      log-softmax of the row as the forward returns it (after Gemma's final
 *      soft-cap, before any penalty, mask or temperature). This is vLLM's
 *      default "raw_logprobs" convention.
 *   2. mask: the ids in mask_ids get -inf (EOS / stop ids before min_tokens).
 *   3. penalties: repetition (HF/vLLM: every distinct token of prompt+output,
 *      logit > 0 is divided by r, else multiplied by r), then frequency and
 *      presence (OpenAI: over output tokens, l -= f*count + p*(count > 0)).
 *   4. temperature 0 (or < 1e-5): greedy argmax, ties -> lowest id; done.
 *   5. temperature scaling, then min_p (keep p >= min_p * p_max), then top_k,
 *      then top_p over what is left (renormalised; the smallest prefix of the
 *      sorted set whose mass reaches top_p), then one draw from the
 *      per-request rng. Sorting is by logit descending, ties by lower id.
 *
 * Costs: greedy is one pass over V; plain random sampling is O(V); top_k uses
 * a size-k heap (no full sort); top_p without top_k collects the tokens above
 * a falling threshold until they hold enough mass and sorts only those
 * (heapsort in place: no qsort, which may allocate).
 * Nothing is allocated per call: struct smp holds scratch sized for V.
 * The logits row is modified in place (steps 2-3 and the temperature pass
 * never write it; only masked / penalised entries change).
 *
 * A struct smp is used by one thread at a time (the engine thread).
 */
#ifndef GR_SAMPLING_H
#define GR_SAMPLING_H

#include <stdint.h>

#include "common/util.h"
#include "kernels/sample.h"

/* The sampling parameters of one request (checked by eng_sampling_check). */
#define ENG_MAX_STOP 16
#define ENG_MAX_LOGPROBS 20

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
};

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
 * Samples one token. logits: [vocab] fp32, modified in place (masks and
 * penalties). tokens[0, n_prompt) is the prompt and tokens[n_prompt, n_tokens)
 * the tokens generated so far (penalty history). mask_ids (n_mask, may be 0)
 * are forbidden this step. rng is the request's own generator (one draw per
 * random step, none for greedy). p is assumed valid (eng_sampling_check).
 * Returns 0, or ST_EINVAL when the row holds no finite logit.
 */
int smp_sample(struct smp *s, float *logits, const struct eng_sampling *p, struct rng *rng,
	       const int *tokens, int n_prompt, int n_tokens, const int *mask_ids, int n_mask,
	       struct smp_result *res);

/*
 * The same step for the device sampler (kernels/sample.h): fills *row and
 * writes this row's distinct masked / penalised ids into pairs[0, cap)
 * (row->pair_off = pair_off, the caller's offset of pairs in its array).
 * Draws u from rng exactly when smp_sample would (one draw per non-greedy
 * step), so a request's rng stream is the same with either sampler.
 * Returns the number of pairs, or ST_EFULL when more than cap are needed.
 */
int smp_device_row(struct smp *s, const struct eng_sampling *p, struct rng *rng,
		   const int *tokens, int n_prompt, int n_tokens, const int *mask_ids, int n_mask,
		   struct be_sample_row *row, int pair_off, struct be_sample_pair *pairs, int cap);

/* Pairs smp_device_row may need for a history of n_tokens and n_mask masked ids. */
static inline int smp_device_pairs_max(int n_tokens, int n_mask)
{
	return n_tokens + n_mask;
}

/* Copies a device result into *res (token -1 becomes ST_EINVAL, as smp_sample). */
int smp_device_result(const struct be_sample_out *o, const struct eng_sampling *p,
		      struct smp_result *res);

/* The pieces, for tests and benches. */
int smp_argmax(const float *logits, int vocab);
void smp_apply_penalties(struct smp *s, float *logits, const struct eng_sampling *p,
			 const int *tokens, int n_prompt, int n_tokens);
/* Raw log-softmax of token `tok` and the top n (n <= ENG_MAX_LOGPROBS) into top[]. */
float smp_logprobs(const float *logits, int vocab, int tok, int n, struct eng_logprob *top);

#endif
