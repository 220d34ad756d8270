/*
 * engine_step.c - one step of continuous batching (engine thread only):
 *
 *   1. retire cancelled requests (waiting or running; blocks freed first,
 *      then their ABORT event);
 *   2. schedule under the token budget max_num_batched_tokens: running
 *      sequences first, oldest first (decode tokens and the next prefill
 *      chunk of partly prefilled ones), then waiting requests FIFO while
 *      fewer than max_num_seqs run and their first chunk's blocks are free
 *      with 1 % of the cache to spare (admit_watermark). A waiting request
 *      first takes the longest run of cached full blocks of its tokens
 *      (prefix cache, at most (n_tokens - 1) / block_size blocks: the last
 *      token is always computed, for its logits) and starts after them.
 *      Every block a scheduled chunk fills is registered at once (before
 *      the forward: each layer writes the step's K/V before any attention
 *      reads it, so a request admitted in the same step may share it);
 *      a failed forward unregisters them.
 *      "Free" below means free or evictable (kv_n_available).
 *      When a running sequence needs a block and none is free, the youngest
 *      running sequence is preempted: blocks freed, back to the front of
 *      the waiting queue, recomputed later from prompt + generated tokens.
 *      No new request is admitted in a step that preempted;
 *   3. one g2_forward over every scheduled token, without the lock; it
 *      also samples each sequence whose scheduled chunk reached its last
 *      token (be_ops.sample, with the rows and pairs build_batch prepared
 *      from each request's parameters and rng; only the results come back);
 *   4. on the engine thread: take each sampled token, detokenize
 *      incrementally, apply stop rules; finished requests leave the
 *      running list and free their blocks before their final event is
 *      delivered (eng_emit, engine_req.c).
 *
 * Host work per step is O(scheduled tokens + sequences x blocks + each
 * sampled row's history); the O(vocab) work per sampled row is the sample
 * op's. Nothing is allocated here.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/engine_req.h"
#include "engine/engine_step.h"
#include "kernels/kv_hash.h"

static inline int blocks_for(const struct engine *e, int n_pos)
{
	return (n_pos + e->block_size - 1) / e->block_size;
}

/* Moves a running sequence back to the front of the waiting queue (lock held). */
static void preempt(struct engine *e, struct eng_req *q)
{
	eng_list_remove(&e->running, q);
	eng_req_free_blocks(e, q);
	eng_list_push_front(&e->waiting, q);
	e->stats.preemptions++;
	log_debug("engine: preempted request %llu (%d tokens to recompute)",
		  (unsigned long long)q->id, q->n_tokens);
}

/*
 * Gives q the blocks for its next *take positions, shrinking a prefill chunk
 * to what the free blocks hold. 0, or -1 when not even one position fits.
 */
static int grow(struct engine *e, struct eng_req *q, int *take)
{
	int need = blocks_for(e, q->n_computed + *take) - q->n_blocks;
	int n_free = kv_n_available(e->kv);

	if (need <= 0)
		return 0;
	if (need > n_free) {
		int fit = (q->n_blocks + n_free) * e->block_size - q->n_computed;
		if (fit <= 0)
			return -1;
		*take = fit;
		need = n_free;
	}
	if (kv_alloc_n(e->kv, need, q->blocks + q->n_blocks) < 0)
		return -1;	/* cannot happen: need <= free */
	q->n_blocks += need;
	return 0;
}

/* The hash of q's block j (its tokens known), extending q's chain to it. */
static uint64_t block_hash(const struct engine *e, struct eng_req *q, int j)
{
	while (q->n_hashed <= j) {
		int k = q->n_hashed;
		uint64_t parent = k > 0 ? q->hashes[k - 1] : q->salt_hash;
		q->hashes[k] = kv_hash_block(parent, q->tokens + (size_t)k * e->block_size,
					     e->block_size);
		q->n_hashed++;
	}
	return q->hashes[j];
}

/*
 * The longest run of q's full blocks (before its last token) the cache
 * holds, into ids[0..n): n. References are not taken.
 */
static int prefix_match(const struct engine *e, struct eng_req *q, int32_t *ids)
{
	int max = (q->n_tokens - 1) / e->block_size, n = 0;

	if (!kv_prefix_caching(e->kv))
		return 0;
	while (n < max) {
		int b = kv_lookup(e->kv, block_hash(e, q, n), q->tokens + (size_t)n * e->block_size);
		if (b < 0)
			break;
		ids[n++] = b;
	}
	return n;
}

/* Registers the blocks q's scheduled chunk fills (q->reg0: where it started). */
static void prefix_register(struct engine *e, struct eng_req *q)
{
	int full = (q->n_computed + q->take) / e->block_size;

	q->reg0 = q->n_reg;
	if (!kv_prefix_caching(e->kv))
		return;
	for (; q->n_reg < full; q->n_reg++)
		kv_register(e->kv, q->blocks[q->n_reg], block_hash(e, q, q->n_reg),
			    q->tokens + (size_t)q->n_reg * e->block_size);
}

static void sched_add(struct engine *e, struct eng_req *q, int take)
{
	q->take = take;
	prefix_register(e, q);
	q->sampled = 0;
	e->sched[e->n_sched++] = q;
}

/*
 * Admission watermark (vLLM's): while something runs, a waiting request is
 * admitted only if 1 % of the cache's blocks stay free after its first
 * chunk, so running sequences can grow for a while and a request that was
 * just preempted is not readmitted straight into the next preemption.
 */
static int admit_watermark(const struct engine *e)
{
	return e->running.n > 0 ? (kv_n_blocks(e->kv) + 99) / 100 : 0;
}

/* Step 2 (lock held). */
static void schedule(struct engine *e)
{
	int budget = e->max_tokens, preempted = 0;
	struct eng_req *q = e->running.head;

	e->n_sched = 0;
	while (q && budget > 0) {
		int take = MIN(q->n_tokens - q->n_computed, budget), ok;
		while ((ok = grow(e, q, &take)) < 0) {
			struct eng_req *victim = e->running.tail;
			preempt(e, victim);
			preempted = 1;
			if (victim == q)
				break;
		}
		if (ok < 0)
			break;		/* q was the youngest and is now waiting */
		sched_add(e, q, take);
		budget -= take;
		q = q->next;
	}
	if (preempted)
		return;
	while ((q = e->waiting.head) && e->running.n < e->max_seqs && budget > 0 &&
	       e->n_sched < e->max_seqs) {
		int hit, start, take, cost;
		if (atomic_load(&q->cancel))
			break;		/* retired at the next step */
		/* cost: new blocks, and the hits that are evictable now */
		hit = prefix_match(e, q, q->blocks);
		start = hit * e->block_size;
		take = MIN(q->n_tokens - start, budget);
		cost = blocks_for(e, start + take) - hit;
		for (int i = 0; i < hit; i++)
			cost += kv_refcount(e->kv, q->blocks[i]) == 0;
		if (cost + admit_watermark(e) > kv_n_available(e->kv))
			break;
		for (int i = 0; i < hit; i++)
			kv_ref(e->kv, q->blocks[i]);
		q->n_blocks = q->n_reg = hit;
		q->n_computed = start;
		if (grow(e, q, &take) < 0) {	/* cannot happen: cost checked */
			eng_req_free_blocks(e, q);
			break;
		}
		eng_list_remove(&e->waiting, q);
		eng_list_push_back(&e->running, q);
		if (!q->internal && kv_prefix_caching(e->kv)) {
			e->stats.prefix_cache_queries += (uint64_t)q->n_tokens;
			e->stats.prefix_cache_hits += (uint64_t)start;
		}
		if (q->t_sched == 0)
			q->t_sched = now_sec();
		if (!q->prompt_counted && !q->internal) {	/* warm-up not counted */
			q->prompt_counted = 1;
			q->n_cached = start;
			e->stats.prompt_tokens += (uint64_t)q->n_prompt;
		}
		if (hit > 0)
			log_debug("engine: request %llu: prefix cache hit, %d of %d tokens (%d blocks)",
				  (unsigned long long)q->id, start, q->n_tokens, hit);
		sched_add(e, q, take);
		budget -= take;
	}
}

/* Step 1 (lock held): cancelled requests leave the lists into *done. */
static void take_cancelled(struct engine *e, struct eng_list *done)
{
	struct eng_req *q, *next;

	if (!e->cancel_pending)
		return;		/* the scans below are O(queue): only when needed */
	e->cancel_pending = 0;
	for (q = e->waiting.head; q; q = next) {
		next = q->next;
		if (atomic_load(&q->cancel)) {
			eng_list_remove(&e->waiting, q);
			eng_list_push_back(done, q);
		}
	}
	for (q = e->running.head; q; q = next) {
		next = q->next;
		if (atomic_load(&q->cancel)) {
			eng_list_remove(&e->running, q);
			eng_req_free_blocks(e, q);
			eng_list_push_back(done, q);
		}
	}
}

/* Appends text through the stop matcher; 1 when a stop string completed. */
static int text_add(struct eng_req *q, const char *t, size_t n, int check)
{
	size_t len = 0;
	int stopped;

	if (!q->text)
		return 0;
	if (q->text_len + stop_out_cap(&q->stop, n) > q->text_cap) {
		/* Cannot happen with text_cap's sizing; keep what fits. */
		log_warn("engine: request %llu: event text over %zu bytes truncated",
			 (unsigned long long)q->id, q->text_cap);
		size_t room = q->text_cap - q->text_len - q->stop.held_len - 1;
		n = n < room ? n : room;
	}
	stopped = stop_feed(&q->stop, t, n, check, q->text + q->text_len, &len);
	q->text_len += len;
	return stopped;
}

/* The end of a request not ended by a stop string: release held text. */
static void text_finish(struct eng_req *q, int check)
{
	const char *t;
	size_t n;

	if (!q->ts)
		return;
	tok_stream_flush(q->ts, &t, &n);
	if (text_add(q, t, n, check)) {
		q->finish = ENG_FINISH_STOP;
		return;
	}
	q->text_len += stop_flush(&q->stop, q->text + q->text_len);
	q->text[q->text_len] = '\0';
}

/* Step 4 (engine thread): take the sampled token, text, stop rules. */
static void process_token(struct engine *e, struct eng_req *q)
{
	const struct smp_result *res = &q->res;
	int tok, check;

	if (q->smp_rc < 0) {
		q->finish = ENG_FINISH_ERROR;
		q->error = "sampling failed: the model returned no finite logit";
		return;
	}
	tok = res->token;
	q->tokens[q->n_tokens++] = tok;
	q->n_gen++;
	q->sampled = 1;
	q->ev_token = tok;
	q->ev_logprob = res->logprob;
	q->ev_n_top = res->n_top;
	if (res->n_top > 0)
		memcpy(q->ev_top, res->top, (size_t)res->n_top * sizeof(res->top[0]));
	if (q->t_first == 0)
		q->t_first = now_sec();
	check = q->n_gen >= q->sp.min_tokens;

	if (q->grammar && q->guide_failed) {
		q->finish = ENG_FINISH_ERROR;
		q->error = "structured output: no memory for the token mask";
		return;
	}
	if (q->grammar && !gm_is_end(e->gv, tok) && gm_advance(e->gv, &q->gm, tok) < 0) {
		/* cannot happen: the mask allowed only tokens the grammar takes */
		q->finish = ENG_FINISH_ERROR;
		q->error = "structured output: the sampled token does not fit the grammar";
		return;
	}
	if (stop_token_ends(&q->sp, e->eos, e->n_eos, tok, q->n_gen)) {
		/* EOS / stop id: its text is not emitted; held text is released */
		text_finish(q, check);
		q->finish = ENG_FINISH_STOP;
		return;
	}
	if (q->ts) {
		const char *t = NULL;
		size_t n = 0;
		if (tok_stream_feed(q->ts, tok, &t, &n) < 0)
			n = 0;	/* id outside the tokenizer's vocabulary: no text */
		if (text_add(q, t, n, check)) {
			q->finish = ENG_FINISH_STOP;
			return;
		}
	}
	if (q->grammar && gr_accepting(&q->gm) && !gr_can_continue(&q->gm)) {
		/* the value is complete and nothing can follow: done, as at EOS */
		q->finish = ENG_FINISH_STOP;
		text_finish(q, check);
		return;
	}
	if (stop_length(&q->sp, q->n_gen, q->n_tokens, e->max_model_len)) {
		q->finish = ENG_FINISH_LENGTH;
		text_finish(q, check);
	}
}

/*
 * Structured outputs' per-engine state, made on the first guided row (the
 * engine thread): the vocabulary trie and pinned mask rows. A failure
 * leaves the row unmasked and is logged once per attempt.
 */
static int guide_ready(struct engine *e)
{
	const struct be *be = e->w.be;

	if (e->gv && e->s_masks)
		return 0;
	if (!e->gv && gm_vocab_create(e->tok, e->vocab, e->eos, e->n_eos, &e->gv) < 0)
		return log_err(ST_ENOMEM, "engine: no memory for the structured-output vocabulary");
	e->s_masks = be->ops->host_alloc(be->ctx, (size_t)e->max_seqs * gm_words(e->gv) *
					 sizeof(uint32_t));
	if (!e->s_masks)
		return log_err(ST_ENOMEM, "engine: no memory for structured-output masks");
	return 0;
}

/*
 * The sample row of q (logits row r) and its pairs, its draw taken from
 * q's rng now, before the forward.
 */
static void sample_row(struct engine *e, struct eng_req *q, int r)
{
	int mask[ENG_MAX_EOS + ENG_MAX_STOP];
	int n_mask = stop_mask_ids(&q->sp, e->eos, e->n_eos, q->n_gen, mask);
	int n = smp_row_build(e->smp, &q->sp, &q->rng, q->tokens, q->n_prompt, q->n_tokens,
			       mask, n_mask, &e->s_rows[r], e->n_pairs, e->s_pairs + e->n_pairs,
			       e->s_pairs_cap - e->n_pairs);
	if (n < 0) {	/* cannot happen: the cap holds every row's whole history */
		memset(&e->s_rows[r], 0, sizeof(e->s_rows[r]));
		e->s_rows[r].n_logprobs = -1;
		return;
	}
	e->n_pairs += n;
	e->s_rows[r].has_mask = 0;
	q->guide_failed = 0;
	if (q->grammar) {
		uint32_t *m;
		if (guide_ready(e) < 0 ||
		    gm_mask(e->gv, &q->gm, &q->gcache, m = e->s_masks + (size_t)r * gm_words(e->gv)) < 0) {
			q->guide_failed = 1;	/* process_token fails the request */
			return;
		}
		e->s_rows[r].has_mask = 1;
		e->n_masked++;
	}
}

/* Fills the batch arrays from e->sched; returns the token count. */
static int build_batch(struct engine *e, struct g2_batch *b)
{
	int stride = 1, n_tok = 0, n_logits = 0;

	e->n_pairs = 0;
	e->n_masked = 0;
	for (int r = 0; r < e->n_sched; r++) {
		struct eng_req *q = e->sched[r];
		stride = MAX(stride, blocks_for(e, q->n_computed + q->take));
	}
	for (int r = 0; r < e->n_sched; r++) {
		struct eng_req *q = e->sched[r];
		int end = q->n_computed + q->take;
		for (int p = q->n_computed; p < end; p++) {
			e->b_tokens[n_tok] = q->tokens[p];
			e->b_pos[n_tok] = p;
			e->b_seq[n_tok] = r;
			n_tok++;
		}
		e->b_ctx[r] = end;
		memcpy(e->b_bt + (size_t)r * stride, q->blocks,
		       (size_t)blocks_for(e, end) * sizeof(int32_t));
		if (end == q->n_tokens) {
			sample_row(e, q, n_logits);
			e->b_rows[n_logits++] = n_tok - 1;
		}
	}
	memset(b, 0, sizeof(*b));
	b->n_tok = n_tok;
	b->tokens = e->b_tokens;
	b->positions = e->b_pos;
	b->seq = e->b_seq;
	b->n_seqs = e->n_sched;
	b->block_tables = e->b_bt;
	b->max_blocks = stride;
	b->ctx_lens = e->b_ctx;
	b->n_logits = n_logits;
	b->logit_rows = e->b_rows;
	b->sample_rows = e->s_rows;
	b->sample_pairs = e->s_pairs;
	b->n_pairs = e->n_pairs;
	b->sample_out = e->s_out;
	b->sample_masks = e->n_masked > 0 ? e->s_masks : NULL;
	return n_tok;
}

int eng_step(struct engine *e)
{
	struct eng_list done = { 0 };
	struct g2_batch b;
	int rc, worked;
	uint64_t n_sampled = 0;
	int n_step = 0;		/* tokens of this step (warm-up excluded) */

	pthread_mutex_lock(&e->mu);
	take_cancelled(e, &done);
	schedule(e);
	eng_stats_refresh(e);
	pthread_mutex_unlock(&e->mu);
	worked = done.n > 0;
	eng_abort_list(e, &done);
	if (e->n_sched == 0)
		return worked;

	build_batch(e, &b);
	rc = g2_forward(e->g, e->kv, &b, NULL);
	e->n_rows = 0;
	for (int r = 0; r < e->n_sched; r++) {
		struct eng_req *q = e->sched[r];
		if (rc < 0) {	/* the blocks registered for this step hold no valid KV */
			for (int j = q->reg0; j < q->n_reg; j++)
				kv_unregister(e->kv, q->blocks[j]);
			q->n_reg = q->reg0;
			q->finish = ENG_FINISH_ERROR;
			q->error = "forward pass failed";
			continue;
		}
		q->n_computed += q->take;
		n_step += q->internal ? 0 : q->take;
		if (q->n_computed == q->n_tokens)
			e->rows[e->n_rows++] = q;	/* logits row n_rows-1, as built */
	}
	for (int i = 0; rc >= 0 && i < e->n_rows; i++)
		e->rows[i]->smp_rc = smp_row_result(&e->s_out[i], &e->rows[i]->sp, &e->rows[i]->res);
	for (int i = 0; i < e->n_rows; i++) {
		process_token(e, e->rows[i]);
		n_sampled += e->rows[i]->sampled && !e->rows[i]->internal;
	}

	/* Finished requests leave the running list and free blocks first. */
	pthread_mutex_lock(&e->mu);
	for (int r = 0; r < e->n_sched; r++) {
		struct eng_req *q = e->sched[r];
		if (q->finish != ENG_FINISH_NONE) {
			eng_list_remove(&e->running, q);
			eng_req_free_blocks(e, q);
		}
	}
	e->stats.generation_tokens += n_sampled;
	e->stats.steps++;
	if (e->o.kv_check) {
		char kerr[160];
		if (kv_check(e->kv, kerr, sizeof(kerr)) < 0) {
			e->stats.kv_check_failures++;
			log_err(ST_EINVAL, "engine: KV cache invariant broken: %s", kerr);
		}
	}
	if (n_step > 0) {
		int k = 0;
		while (k < ENG_STEP_BINS - 1 && (1 << k) < n_step)
			k++;
		e->stats.step_tokens_bins[k]++;
		e->stats.step_tokens += (uint64_t)n_step;
	}
	eng_stats_refresh(e);
	pthread_mutex_unlock(&e->mu);

	for (int r = 0; r < e->n_sched; r++) {
		struct eng_req *q = e->sched[r];
		if (q->sampled || q->finish != ENG_FINISH_NONE)
			eng_emit(e, q, q->sampled);
		if (q->finish != ENG_FINISH_NONE)
			eng_req_destroy(q);
	}
	e->n_sched = 0;
	return 1;
}
