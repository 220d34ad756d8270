/*
 * engine.c - the engine's lifecycle and its thread-safe entry points:
 * eng_create (options and plan, EOS ids, model + KV cache, sampling
 * buffers, thread; one teardown, eng_free, for its failure path and
 * eng_destroy), eng_submit, eng_cancel, eng_get_stats, eng_warmup,
 * eng_destroy, and the thread loop.
 * Not here: one step of the scheduler (engine_step.c), the request object
 * and its events (engine_req.c). Calls point one way: engine.c ->
 * engine_step.c -> engine_req.c (engine.c also builds requests there).
 *
 * KV budget: the memory plan (engine/mem_plan.h), made before the model's
 * scratch is allocated: eng_opts.kv_bytes when set; else on a device
 * gpu_memory_utilization * total - weights - activations - a fixed reserve,
 * and on the CPU backend 25 % of the free RAM; never more than max_num_seqs
 * sequences of max_model_len need (except on a device with prefix caching,
 * where the rest holds cached prefixes). A default max_model_len is lowered to
 * what the cache holds (an explicit one that does not fit is an error), so
 * that one sequence alone always fits (preemption can always progress).
 *
 * Queue bound: a submit gets ST_EFULL when max_queue requests already wait
 * beyond the running slots that are free (so max_queue 0 still admits a
 * request when a slot is free, and refuses it when none is).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/engine_req.h"
#include "engine/engine_step.h"


void eng_opts_default(struct eng_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_num_seqs = 64;
	o->max_num_batched_tokens = 2048;
	o->max_model_len = 0;
	o->max_queue = 256;
	o->block_size = KV_DEFAULT_BLOCK_SIZE;
	o->kv_bytes = 0;
	o->gpu_memory_utilization = 0.9;
	o->enable_prefix_caching = 1;
}

int eng_sampler_parse(const char *s, enum eng_sampler *out)
{
	if (!s || strcmp(s, "auto") == 0)
		*out = ENG_SAMPLER_AUTO;
	else if (strcmp(s, "device") == 0)
		*out = ENG_SAMPLER_DEVICE;
	else
		return ST_EINVAL;
	return 0;
}

/*
 * Pairs per step: every row's whole history plus its masked ids. Saturates
 * at INT_MAX for absurd options, so that the memory plan refuses them
 * instead of the product overflowing.
 */
static int eng_pairs_cap(const struct eng_opts *o, int max_model_len)
{
	int64_t n = (int64_t)o->max_num_seqs * smp_pairs_max(max_model_len, ENG_MAX_EOS + ENG_MAX_STOP);
	return n > INT_MAX ? INT_MAX : (int)n;
}

const char *eng_finish_name(enum eng_finish f)
{
	switch (f) {
	case ENG_FINISH_STOP: return "stop";
	case ENG_FINISH_LENGTH: return "length";
	case ENG_FINISH_ABORT: return "abort";
	case ENG_FINISH_SHED: return "abort";
	case ENG_FINISH_ERROR: return "error";
	default: return NULL;
	}
}

static void *eng_main(void *arg)
{
	struct engine *e = arg;

	for (;;) {
		pthread_mutex_lock(&e->mu);
		while (!e->stop && e->waiting.n == 0 && e->running.n == 0)
			pthread_cond_wait(&e->cv, &e->mu);
		if (e->stop) {
			pthread_mutex_unlock(&e->mu);
			break;
		}
		pthread_mutex_unlock(&e->mu);
		if (!eng_step(e)) {
			/* Nothing schedulable (should not last): wait for a change. */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 5 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_mutex_lock(&e->mu);
			if (!e->stop)
				pthread_cond_timedwait(&e->cv, &e->mu, &ts);
			pthread_mutex_unlock(&e->mu);
		}
	}
	eng_abort_all(e);
	return NULL;
}

/*
 * The memory plan for checked options o over model (see engine/mem_plan.h):
 * the weights as loaded, the activation scratch of g2_model_create plus the
 * backend's, the fixed reserve on a device, and the backend's memory figures
 * now (the weights are already placed) unless kv_bytes overrides the budget.
 */
static int eng_plan_checked(const struct eng_opts *o, const struct g2_weights *w,
			    struct mem_plan *plan, char *err, size_t errlen)
{
	const struct g2_config *c = &w->cfg;
	struct be *be = w->be;
	struct mem_plan_in in;
	int wanted, max_blocks;

	memset(&in, 0, sizeof(in));
	in.host_memory = be->ops->host_visible;
	in.weights_resident = w->find != NULL;	/* no find: planned from the headers, before the load */
	in.gpu_memory_utilization = o->gpu_memory_utilization;
	in.weight_bytes = w->bytes;
	wanted = mem_plan_wanted_len(c, o->max_model_len);
	if (c->max_position_embeddings > 0 && wanted > c->max_position_embeddings)
		wanted = c->max_position_embeddings;
	max_blocks = (wanted + o->block_size - 1) / o->block_size;
	in.activation_bytes = mem_plan_activation_bytes(c, o->max_num_batched_tokens,
							o->max_num_seqs, max_blocks, in.host_memory);
	in.activation_bytes += g2_sampling_bytes(o->max_num_seqs,
						 eng_pairs_cap(o, max_blocks * o->block_size), c->vocab_size);
	in.reserve_bytes = in.host_memory ? 0 : MEM_PLAN_CUDA_RESERVE;
	in.kv_bytes = o->kv_bytes;
	in.kv_dtype = be->ops->kv_dtype;
	in.block_size = o->block_size;
	in.max_num_seqs = o->max_num_seqs;
	in.max_num_batched_tokens = o->max_num_batched_tokens;
	in.max_model_len = o->max_model_len;
	in.prefix_caching = o->enable_prefix_caching;
	if (!o->kv_bytes &&
	    (!be->ops->mem_info || be->ops->mem_info(be->ctx, &in.free_bytes, &in.total_bytes) < 0 ||
	     in.total_bytes == 0)) {
		snprintf(err, errlen, "backend %s reports no memory figures; set kv_bytes",
			 be->ops->name);
		return ST_EINVAL;
	}
	return mem_plan_compute(c, &in, plan, err, errlen);
}

static int eng_check_opts(struct eng_opts *o)
{
	if (o->max_num_seqs < 1 || o->max_num_batched_tokens < 1 || o->max_queue < 0 ||
	    o->max_model_len < 0 || o->block_size < 0 || o->block_size > 1024 ||
	    !(o->gpu_memory_utilization > 0 && o->gpu_memory_utilization <= 1))
		return log_err(ST_EINVAL,
			       "engine: bad options (max_num_seqs %d, max_num_batched_tokens %d, "
			       "max_queue %d, max_model_len %d, block_size %d, "
			       "gpu_memory_utilization %g)",
			       o->max_num_seqs, o->max_num_batched_tokens, o->max_queue,
			       o->max_model_len, o->block_size, o->gpu_memory_utilization);
	if (o->block_size == 0)
		o->block_size = KV_DEFAULT_BLOCK_SIZE;
	if (o->max_num_seqs > o->max_num_batched_tokens) {
		log_warn("engine: max_num_seqs %d > max_num_batched_tokens %d; using %d sequences",
			 o->max_num_seqs, o->max_num_batched_tokens, o->max_num_batched_tokens);
		o->max_num_seqs = o->max_num_batched_tokens;
	}
	return 0;
}

int eng_plan(const struct eng_opts *opts, const struct g2_weights *w, struct mem_plan *plan,
	     char *err, size_t errlen)
{
	struct eng_opts o;
	int rc;

	if (opts)
		o = *opts;
	else
		eng_opts_default(&o);
	if ((rc = eng_check_opts(&o)) < 0) {
		snprintf(err, errlen, "bad engine options");
		return rc;
	}
	return eng_plan_checked(&o, w, plan, err, errlen);
}

const struct mem_plan *eng_mem_plan(const struct engine *e)
{
	return &e->plan;
}

/*
 * The one teardown, for eng_create's failure path and eng_destroy: every
 * member may still be unset (NULL / 0); the thread has been joined.
 */
static void eng_free(struct engine *e)
{
	struct be *be = e->w.be;

	if (e->sync_ready) {
		pthread_cond_destroy(&e->warm_cv);
		pthread_cond_destroy(&e->cv);
		pthread_mutex_destroy(&e->mu);
	}
	free(e->b_tokens);
	free(e->b_pos);
	free(e->b_seq);
	free(e->b_bt);
	free(e->b_ctx);
	free(e->b_rows);
	free(e->sched);
	free(e->rows);
	smp_destroy(e->smp);
	if (e->s_rows)
		be->ops->host_free(be->ctx, e->s_rows);
	if (e->s_masks)
		be->ops->host_free(be->ctx, e->s_masks);
	gm_vocab_destroy(e->gv);
	if (e->s_out)
		be->ops->host_free(be->ctx, e->s_out);
	if (e->s_pairs)
		be->ops->host_free(be->ctx, e->s_pairs);
	kv_cache_destroy(e->kv);
	g2_model_destroy(e->g);
	free(e);
}

/* Create step 1: the options, checked, and the memory plan they give. */
static int eng_init_plan(struct engine *e, const struct eng_opts *opts)
{
	char perr[512];
	int rc;

	if (opts)
		e->o = *opts;
	else
		eng_opts_default(&e->o);
	if ((rc = eng_check_opts(&e->o)) < 0)
		return rc;
	e->vocab = e->w.cfg.vocab_size;
	e->block_size = e->o.block_size;
	e->max_seqs = e->o.max_num_seqs;
	e->max_tokens = e->o.max_num_batched_tokens;
	if ((rc = eng_plan_checked(&e->o, &e->w, &e->plan, perr, sizeof(perr))) < 0)
		return log_err(rc, "engine: memory plan: %s", perr);
	if (e->plan.warning[0])
		log_warn("engine: %s", e->plan.warning);
	e->max_model_len = e->plan.max_model_len;
	e->o.max_model_len = e->max_model_len;
	e->max_blocks = (e->max_model_len + e->block_size - 1) / e->block_size;
	return 0;
}

/* Create step 2: the EOS ids: config.json's, and the tokenizer's <end_of_turn>. */
static int eng_init_eos(struct engine *e)
{
	const struct g2_config *c = &e->w.cfg;

	if (e->tok && tok_vocab_size(e->tok) > e->vocab)
		return log_err(ST_EINVAL, "engine: tokenizer has %d tokens, model vocab_size %d",
			       tok_vocab_size(e->tok), e->vocab);
	for (int i = 0; i < c->n_eos && e->n_eos < ENG_MAX_EOS; i++)
		e->eos[e->n_eos++] = c->eos_token_ids[i];
	if (e->tok) {
		int eot = tok_id(e->tok, "<end_of_turn>");
		int dup = 0;
		for (int i = 0; i < e->n_eos; i++)
			dup |= e->eos[i] == eot;
		if (eot >= 0 && !dup && e->n_eos < ENG_MAX_EOS)
			e->eos[e->n_eos++] = eot;
	}
	return 0;
}

/* Create step 3: the model's scratch and the KV cache the plan sized. */
static int eng_init_model(struct engine *e)
{
	int rc;

	if ((rc = g2_model_create(&e->w, e->max_tokens, e->max_seqs, e->max_blocks, &e->g)) < 0)
		return rc;
	if ((rc = kv_cache_create(e->w.be, &e->w.cfg, e->block_size, e->plan.kv_bytes,
				  &e->kv)) < 0)
		return rc;
	kv_set_prefix_caching(e->kv, e->o.enable_prefix_caching);
	if (kv_n_blocks(e->kv) * e->block_size < e->max_model_len)
		return log_err(ST_ENOMEM, "engine: KV cache holds %d blocks, the plan %d",
			       kv_n_blocks(e->kv), e->plan.kv_blocks);
	return 0;
}

/*
 * Create step 4: sampling: the model's sample-op buffers, and this side's
 * rows, pairs and results in the backend's pinned host memory.
 */
static int eng_init_sampling(struct engine *e)
{
	const struct be *be = e->w.be;
	int rc;

	if ((rc = smp_create(e->vocab, &e->smp)) < 0)
		return rc;
	e->s_pairs_cap = eng_pairs_cap(&e->o, e->max_model_len);
	if ((rc = g2_model_enable_sampling(e->g, e->max_seqs, e->s_pairs_cap)) < 0)
		return rc;
	e->s_rows = be->ops->host_alloc(be->ctx, (size_t)e->max_seqs * sizeof(*e->s_rows));
	e->s_out = be->ops->host_alloc(be->ctx, (size_t)e->max_seqs * sizeof(*e->s_out));
	e->s_pairs = be->ops->host_alloc(be->ctx, (size_t)e->s_pairs_cap * sizeof(*e->s_pairs));
	if (!e->s_rows || !e->s_out || !e->s_pairs)
		return log_err(ST_ENOMEM, "engine: no pinned memory for sampling (%d pairs)",
			       e->s_pairs_cap);
	return 0;
}

/* Create step 5: the step's batch arrays, sized for the largest step. */
static int eng_init_step_buffers(struct engine *e)
{
	e->b_tokens = calloc((size_t)e->max_tokens, sizeof(int32_t));
	e->b_pos = calloc((size_t)e->max_tokens, sizeof(int32_t));
	e->b_seq = calloc((size_t)e->max_tokens, sizeof(int32_t));
	e->b_bt = calloc((size_t)e->max_seqs * e->max_blocks, sizeof(int32_t));
	e->b_ctx = calloc((size_t)e->max_seqs, sizeof(int32_t));
	e->b_rows = calloc((size_t)e->max_seqs, sizeof(int32_t));
	e->sched = calloc((size_t)e->max_seqs, sizeof(*e->sched));
	e->rows = calloc((size_t)e->max_seqs, sizeof(*e->rows));
	if (!e->b_tokens || !e->b_pos || !e->b_seq || !e->b_bt || !e->b_ctx || !e->b_rows ||
	    !e->sched || !e->rows)
		return log_err(ST_ENOMEM, "engine: no memory for step buffers (%d seqs, %d tokens)",
			       e->max_seqs, e->max_tokens);
	return 0;
}

/* Create step 6: the lock, the condition variables and the engine thread. */
static int eng_start(struct engine *e)
{
	int rc;

	e->next_id = 1;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	pthread_cond_init(&e->warm_cv, NULL);
	e->sync_ready = 1;
	eng_stats_refresh(e);
	if ((rc = pthread_create(&e->thread, NULL, eng_main, e)) != 0)
		return log_err(ST_ENOMEM, "engine: cannot start thread: %s", strerror(rc));
	e->thread_started = 1;
	return 0;
}

int eng_create(const struct eng_opts *opts, const struct g2_weights *w, struct tokenizer *tok,
	       eng_output_fn on_output, struct engine **out)
{
	struct engine *e;
	int rc;

	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return ST_ENOMEM;
	e->w = *w;
	e->tok = tok;
	e->on_output = on_output;
	if ((rc = eng_init_plan(e, opts)) < 0 || (rc = eng_init_eos(e)) < 0 ||
	    (rc = eng_init_model(e)) < 0 || (rc = eng_init_sampling(e)) < 0 ||
	    (rc = eng_init_step_buffers(e)) < 0 || (rc = eng_start(e)) < 0)
		goto out_free;
	log_info("engine: %d KV blocks of %d tokens (%.1f MiB), max_model_len %d, "
		 "max_num_seqs %d, max_num_batched_tokens %d, prefix caching %s, sampling on "
		 "the device (the %s backend's sample op)",
		 kv_n_blocks(e->kv), e->block_size,
		 (double)kv_n_blocks(e->kv) * e->plan.kv_block_bytes / 1048576.0,
		 e->max_model_len, e->max_seqs, e->max_tokens,
		 e->o.enable_prefix_caching ? "on" : "off", e->w.be->ops->name);
	*out = e;
	return 0;

out_free:
	eng_free(e);
	return rc;
}

void eng_destroy(struct engine *e)
{
	if (!e)
		return;
	if (e->thread_started) {
		pthread_mutex_lock(&e->mu);
		e->stop = 1;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->thread, NULL);
	}
	eng_free(e);
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}
#define SUBMIT_FAIL(code, ...) do { \
		if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
		return (code); \
	} while (0)

int eng_submit(struct engine *e, const int *prompt, int n_prompt, const struct eng_sampling *s,
	       void *user, uint64_t *id, char *err, size_t errlen)
{
	struct eng_req *q;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if ((rc = eng_req_create(e, prompt, n_prompt, s, err, errlen, &q)) < 0)
		return rc;
	q->user = user;
	q->t_queued = now_sec();
	pthread_mutex_lock(&e->mu);
	if (e->stop) {
		pthread_mutex_unlock(&e->mu);
		eng_req_destroy(q);
		SUBMIT_FAIL(ST_ECANCEL, "engine is shutting down");
	}
	/* Full: max_queue requests already wait beyond the free running slots. */
	if (e->waiting.n >= e->o.max_queue + MAX(0, e->max_seqs - e->running.n)) {
		pthread_mutex_unlock(&e->mu);
		eng_req_destroy(q);
		SUBMIT_FAIL(ST_EFULL, "queue full (%d waiting requests)", e->o.max_queue);
	}
	q->id = e->next_id++;
	rng_seed(&q->rng, s->has_seed ? s->seed :
		 mix64(q->id ^ mix64((uint64_t)(wall_sec() * 1e9)) ^ (uintptr_t)q));
	eng_list_push_back(&e->waiting, q);
	eng_stats_refresh(e);
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
	if (id)
		*id = q->id;
	return 0;
}

static int eng_mark_cancel(struct eng_list *l, uint64_t id)
{
	for (struct eng_req *q = l->head; q; q = q->next)
		if (q->id == id && !q->internal) {
			atomic_store(&q->cancel, 1);
			return 1;
		}
	return 0;
}

void eng_cancel(struct engine *e, uint64_t id)
{
	pthread_mutex_lock(&e->mu);
	if (eng_mark_cancel(&e->waiting, id) || eng_mark_cancel(&e->running, id)) {
		e->cancel_pending = 1;
		pthread_cond_signal(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
}

int eng_cancel_waiting(struct engine *e)
{
	int n = 0;

	pthread_mutex_lock(&e->mu);
	for (struct eng_req *q = e->waiting.head; q; q = q->next)
		if (!q->internal && !q->prompt_counted && !atomic_load(&q->cancel)) {
			q->shed = 1;	/* set before cancel: the engine thread reads it after */
			atomic_store(&q->cancel, 1);
			n++;
		}
	if (n) {
		e->cancel_pending = 1;
		pthread_cond_signal(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
	return n;
}

void eng_get_stats(struct engine *e, struct eng_stats *st)
{
	pthread_mutex_lock(&e->mu);
	*st = e->stats;
	pthread_mutex_unlock(&e->mu);
}

int eng_max_model_len(const struct engine *e)
{
	return e->max_model_len;	/* set before the thread starts, never changed */
}

int eng_warmup(struct engine *e)
{
	struct eng_sampling s;
	struct eng_req *q;
	int prompt[8], n = MIN(8, e->max_model_len - 1), rc;
	int bos = e->w.cfg.bos_token_id;
	double t0 = now_sec();

	if (bos < 0 || bos >= e->vocab)
		bos = 0;
	for (int i = 0; i < n; i++)
		prompt[i] = bos;
	eng_sampling_default(&s);
	s.temperature = 0;
	s.max_tokens = 1;
	if ((rc = eng_req_create(e, prompt, n, &s, NULL, 0, &q)) < 0)
		return log_err(rc, "engine: cannot build the warm-up request");
	q->internal = 1;
	q->t_queued = t0;
	pthread_mutex_lock(&e->mu);
	q->id = e->next_id++;
	e->warm_pending = 1;
	e->warm_rc = 0;
	eng_list_push_front(&e->waiting, q);
	pthread_cond_signal(&e->cv);
	while (e->warm_pending && !e->stop)
		pthread_cond_wait(&e->warm_cv, &e->mu);
	rc = e->warm_pending ? ST_ECANCEL : e->warm_rc;
	pthread_mutex_unlock(&e->mu);
	if (rc < 0)
		return log_err(rc, "engine: warm-up forward failed");
	log_info("engine: warm-up forward done (%.3f s)", now_sec() - t0);
	return 0;
}
