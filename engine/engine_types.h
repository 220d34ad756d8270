/*
 * engine_types.h - the types of the engine's public interface (engine.h):
 * options, statistics, the output event and its finish reasons. Types
 * only, so that the engine's own files (engine_int.h) can use them without
 * depending on engine.c; callers include engine.h, which includes this.
 */
#ifndef GR_ENGINE_TYPES_H
#define GR_ENGINE_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/sampling.h"

/* ENG_FINISH_SHED: cancelled by eng_cancel_waiting() before it was ever
 * admitted (no token computed): the caller may retry it elsewhere. */
enum eng_finish { ENG_FINISH_NONE = 0, ENG_FINISH_STOP, ENG_FINISH_LENGTH, ENG_FINISH_ABORT,
		  ENG_FINISH_ERROR, ENG_FINISH_SHED };

struct eng_output {
	uint64_t id;
	void *user;			/* as given to eng_submit */
	/* Tokens sampled since the last event and the text they completed. */
	int n_tokens;
	const int *tokens;
	const char *text;		/* NUL-terminated, may be "" */
	size_t text_len;
	/* Per token when logprobs >= 0: chosen token's logprob and top-N. */
	const float *token_logprobs;			/* [n_tokens] */
	const struct eng_logprob *top_logprobs;		/* [n_tokens][n_top] */
	int n_top;
	/* Set on the final event. */
	int final;
	enum eng_finish finish;
	const char *error;		/* message when finish == ENG_FINISH_ERROR */
	int n_prompt_tokens;
	int n_cached_tokens;		/* of n_prompt_tokens, how many came from the prefix cache (0 without one) */
	int n_generated;
	double t_queued, t_first_token, t_done;	/* now_sec() stamps */
	double t_scheduled;		/* first admitted to a step (0: never) */
};

typedef void (*eng_output_fn)(const struct eng_output *o);

/*
 * Where a step's tokens are sampled: always the backend's sample op
 * (be_ops.sample, inside g2_forward); both names mean that. ("host", the
 * retired host sampler, is refused by eng_sampler_parse.)
 */
enum eng_sampler {
	ENG_SAMPLER_AUTO = 0,	/* the default */
	ENG_SAMPLER_DEVICE,	/* be_ops.sample: only ids (and logprobs) come back */
};

/* The names eng_sampler_parse accepts, for messages and flag help. */
#define ENG_SAMPLER_NAMES "auto or device"

struct eng_opts {
	int max_num_seqs;		/* --max-num-seqs (default 64) */
	int max_num_batched_tokens;	/* --max-num-batched-tokens (default 2048) */
	int max_model_len;		/* --max-model-len (0: from config, capped) */
	int max_queue;			/* --max-queue: waiting requests before 429 (default 256) */
	int block_size;			/* KV block size in tokens (default 16) */
	size_t kv_bytes;		/* KV cache budget in bytes (0: from memory info) */
	double gpu_memory_utilization;	/* --gpu-memory-utilization (default 0.9) */
	enum eng_sampler sampler;	/* --sampler (default auto) */
	int enable_prefix_caching;	/* --enable-prefix-caching (default 1) */
	int kv_check;			/* debug: kv_check() after every step; failures counted */
};

#define ENG_STEP_BINS 16	/* eng_stats.step_tokens_bins */

struct eng_stats {
	int running, waiting;
	double kv_usage;		/* 0..1: blocks held by requests (evictable ones not counted) */
	int kv_blocks_total;
	int kv_blocks_free;		/* held by no request: free or evictable (vLLM's count) */
	int kv_blocks_evictable;	/* of those, cached prefix blocks (reused on a hit) */
	uint64_t prefix_cache_queries;	/* prompt tokens looked up at admission (vLLM's) */
	uint64_t prefix_cache_hits;	/* of those, tokens served from cached blocks */
	uint64_t kv_check_failures;	/* eng_opts.kv_check: steps whose kv_check failed */
	uint64_t preemptions;
	uint64_t prompt_tokens, generation_tokens;
	uint64_t steps;
	/* steps by tokens scheduled (warm-up excluded): [k] counts 2^(k-1) < n <= 2^k
	 * ([0]: n = 1), [ENG_STEP_BINS-1] every n over 2^(ENG_STEP_BINS-2) */
	uint64_t step_tokens_bins[ENG_STEP_BINS];
	uint64_t step_tokens;		/* their sum */
};

#endif
