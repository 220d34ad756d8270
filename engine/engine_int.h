/*
 * engine_int.h - the engine's private structures, shared by engine.c
 * (lifecycle, submit/cancel/stats, the thread loop), engine_step.c (one
 * scheduling step: admission, preemption, the forward, sampling, stop
 * rules) and engine_req.c (the request object, its lists and events).
 * Types and constants only: each file's functions are declared in its own
 * header (engine_step.h, engine_req.h).
 *
 * Locking: e->mu protects the waiting and running lists (every link change),
 * e->stats, e->stop and the warm-up handshake. Only the engine thread changes
 * the running list, the KV cache and a request's generation state, so it may
 * read them without the lock; other threads only read/write `cancel` (atomic)
 * and list membership under the lock. The forward runs without the lock.
 * Requests are freed only by the engine thread, after leaving both lists.
 */
#ifndef GR_ENGINE_INT_H
#define GR_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/util.h"
#include "kernels/gemma2.h"
#include "kernels/kv_cache.h"
#include "engine/engine_types.h"
#include "engine/grammar.h"
#include "engine/grammar_mask.h"
#include "engine/mem_plan.h"
#include "engine/sampling.h"
#include "engine/stop.h"
#include "tokenizer/tokenizer.h"

#define ENG_MAX_EOS (G2_MAX_EOS + 1)

struct eng_req {
	struct eng_req *prev, *next;	/* in e->waiting or e->running */
	uint64_t id;
	void *user;
	int internal;			/* warm-up: no callback */
	_Atomic int cancel;
	int shed;			/* cancelled by eng_cancel_waiting: ENG_FINISH_SHED */
	struct eng_sampling sp;		/* stop strings owned (strdup'd) */
	struct rng rng;
	int *tokens;			/* [cap] prompt, then generated tokens */
	int n_prompt, n_tokens, cap;	/* cap = min(n_prompt + max_tokens, max_model_len) */
	int n_gen;
	int n_computed;			/* positions held in the KV cache */
	int32_t *blocks;		/* [max_blocks] this sequence's block table */
	int n_blocks;
	/* prefix cache: hashes[j] chains block j's tokens to salt_hash; blocks
	 * [0, n_reg) are registered (or were hits); n_cached is the first
	 * admission's hit (eng_output.n_cached_tokens) */
	uint64_t salt_hash;
	uint64_t *hashes;		/* [max_blocks] valid for [0, n_hashed) */
	int n_hashed, n_reg, reg0, n_cached;
	int prompt_counted;
	/* this step */
	int take;			/* tokens scheduled */
	int sampled;			/* produced a token this step */
	/* text */
	struct tok_stream *ts;		/* NULL without a tokenizer */
	struct stop_matcher stop;
	char *text;			/* [text_cap] this event's text */
	size_t text_len, text_cap;
	/* structured outputs: the grammar (a reference from grs_get), its state
	 * after every generated token, the masks of recent states */
	const struct gr_grammar *grammar;
	int guide_failed;		/* no mask could be made this step: the request fails */
	struct gr_match gm;
	struct gm_cache gcache;
	/* this step's sample (from the sample op's output) */
	struct smp_result res;
	int smp_rc;
	/* this event */
	int ev_token;
	float ev_logprob;
	struct eng_logprob ev_top[ENG_MAX_LOGPROBS];
	int ev_n_top;
	enum eng_finish finish;
	const char *error;
	double t_queued, t_first, t_done;
	double t_sched;			/* first admitted to the running list (0: never) */
};

struct eng_list {
	struct eng_req *head, *tail;
	int n;
};

struct engine {
	struct eng_opts o;		/* effective options */
	struct g2_weights w;		/* the model's weights (find() borrowed) */
	struct tokenizer *tok;		/* borrowed, may be NULL */
	eng_output_fn on_output;
	struct g2_model *g;
	struct kv_cache *kv;
	struct mem_plan plan;		/* how the KV cache was sized (eng_mem_plan) */
	struct smp *smp;		/* builds each sampled row's pairs */
	int vocab, max_model_len, block_size, max_blocks, max_seqs, max_tokens;
	int eos[ENG_MAX_EOS];
	int n_eos;
	/* step buffers, sized at create */
	int32_t *b_tokens, *b_pos, *b_seq;	/* [max_tokens] */
	int32_t *b_bt;				/* [max_seqs * max_blocks] */
	int32_t *b_ctx, *b_rows;		/* [max_seqs] */
	/* sampling (be_ops.sample inside g2_forward): this step's rows, their
	 * pairs, the results, in pinned memory from the backend's host_alloc */
	struct be_sample_row *s_rows;		/* [max_seqs] */
	struct be_sample_pair *s_pairs;		/* [s_pairs_cap] */
	struct be_sample_out *s_out;		/* [max_seqs] */
	int s_pairs_cap, n_pairs;
	/* structured outputs, made on the first guided request (engine thread):
	 * the vocabulary trie and this step's allow masks [max_seqs * words] */
	struct gm_vocab *gv;
	uint32_t *s_masks;
	int n_masked;		/* rows with a mask this step */
	struct eng_req **sched;			/* [max_seqs] scheduled this step */
	int n_sched;
	struct eng_req **rows;			/* [max_seqs] sampled this step, logit order */
	int n_rows;
	/* thread and queues */
	pthread_t thread;
	int thread_started;
	int sync_ready;			/* mu, cv, warm_cv initialised */
	pthread_mutex_t mu;
	pthread_cond_t cv;		/* work arrived / stop */
	pthread_cond_t warm_cv;		/* warm-up request done */
	int stop;
	int cancel_pending;		/* eng_cancel marked something since the last scan */
	struct eng_list waiting, running;
	uint64_t next_id;
	struct eng_stats stats;
	int warm_pending, warm_rc;
};

#endif
