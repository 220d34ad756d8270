/*
 * engine.c - the engine's lifecycle and its thread-safe entry points:
 * eng_create (sizes the KV cache, starts the thread), eng_submit,
 * eng_cancel, eng_get_stats, eng_warmup, eng_destroy, and the thread loop.
 * One step of the scheduler lives in engine_step.c.
 *
 * KV budget: the memory plan (engine/mem_plan.h), made before the model's
 * scratch is allocated: eng_opts.kv_bytes when set; else on a device
 * gpu_memory_utilization * total - weights - activations - a fixed reserve,
 * and on the CPU backend 25 % of the free RAM; never more than max_num_seqs
 * sequences of max_model_len need. A default max_model_len is lowered to
 * what the cache holds (an explicit one that does not fit is an error), so
 * that one sequence alone always fits (preemption can always progress).
 *
 * Queue bound: a submit gets ST_EFULL when max_queue requests already wait
 * beyond the running slots that are free (so max_queue 0 still admits a
 * request when a slot is free, and refuses it when none is).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/engine_int.h"


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
	o->sample_threads = 0;
}

int eng_sampler_parse(const char *s, enum eng_sampler *out)
{
	if (!s || strcmp(s, "auto") == 0)
		*out = ENG_SAMPLER_AUTO;
	else if (strcmp(s, "host") == 0)
		*out = ENG_SAMPLER_HOST;
	else if (strcmp(s, "device") == 0)
		*out = ENG_SAMPLER_DEVICE;
	else
		return ST_EINVAL;
	return 0;
}

/* Whether an engine with options o over backend be samples on the device. */
static int eng_dev_sampling(const struct eng_opts *o, const struct be *be)
{
	if (o->sampler == ENG_SAMPLER_DEVICE)
		return 1;
	return o->sampler == ENG_SAMPLER_AUTO && !be->ops->host_visible && be->ops->sample;
}

/* Pairs per step for device sampling: every row's whole history plus its masked ids. */
static int eng_pairs_cap(const struct eng_opts *o, int max_model_len)
{
	return o->max_num_seqs * smp_device_pairs_max(max_model_len, ENG_MAX_EOS + ENG_MAX_STOP);
}

const char *eng_finish_name(enum eng_finish f)
{
	switch (f) {
	case ENG_FINISH_STOP: return "stop";
	case ENG_FINISH_LENGTH: return "length";
	case ENG_FINISH_ABORT: return "abort";
	case ENG_FINISH_ERROR: return "error";
	default: return NULL;
	}
}

void eng_list_push_back(struct eng_list *l, struct eng_req *q)
{
	q->next = NULL;
	q->prev = l->tail;
	if (l->tail)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
	l->n++;
}

void eng_list_push_front(struct eng_list *l, struct eng_req *q)
{
	q->prev = NULL;
	q->next = l->head;
	if (l->head)
		l->head->prev = q;
	else
		l->tail = q;
	l->head = q;
	l->n++;
}

void eng_list_remove(struct eng_list *l, struct eng_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		l->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		l->tail = q->prev;
	q->prev = q->next = NULL;
	l->n--;
}

void eng_stats_refresh(struct engine *e)
{
	e->stats.running = e->running.n;
	e->stats.waiting = e->waiting.n;
	e->stats.kv_blocks_total = kv_n_blocks(e->kv);
	e->stats.kv_blocks_free = kv_n_free(e->kv);
	e->stats.kv_usage = e->stats.kv_blocks_total > 0 ?
		1.0 - (double)e->stats.kv_blocks_free / e->stats.kv_blocks_total : 0.0;
}

void eng_req_free(struct eng_req *q)
{
	if (!q)
		return;
	for (int i = 0; i < q->sp.n_stop; i++)
		free(q->sp.stop[i]);
	stop_release(&q->stop);
	free(q->ts);
	free(q->text);
	free(q->tokens);
	free(q->blocks);
	free(q);
}

void eng_req_free_blocks(struct engine *e, struct eng_req *q)
{
	if (q->n_blocks > 0)
		kv_free_n(e->kv, q->blocks, q->n_blocks);
	q->n_blocks = 0;
	q->n_computed = 0;
}

void eng_emit(struct engine *e, struct eng_req *q, int with_token)
{
	struct eng_output o;
	int fin = q->finish != ENG_FINISH_NONE;

	if (fin && q->t_done == 0)
		q->t_done = now_sec();
	if (q->internal) {
		if (fin) {
			pthread_mutex_lock(&e->mu);
			e->warm_pending = 0;
			e->warm_rc = q->finish == ENG_FINISH_ERROR ? ST_EIO : 0;
			pthread_cond_broadcast(&e->warm_cv);
			pthread_mutex_unlock(&e->mu);
		}
		q->text_len = 0;
		return;
	}
	memset(&o, 0, sizeof(o));
	o.id = q->id;
	o.user = q->user;
	if (with_token) {
		o.n_tokens = 1;
		o.tokens = &q->ev_token;
		if (q->sp.logprobs >= 0) {
			o.token_logprobs = &q->ev_logprob;
			o.top_logprobs = q->ev_top;
			o.n_top = q->ev_n_top;
		}
	}
	if (q->text) {
		q->text[q->text_len] = '\0';
		o.text = q->text;
	} else {
		o.text = "";
	}
	o.text_len = q->text_len;
	o.final = fin;
	o.finish = q->finish;
	o.error = q->error;
	o.n_prompt_tokens = q->n_prompt;
	o.n_generated = q->n_gen;
	o.t_queued = q->t_queued;
	o.t_first_token = q->t_first;
	o.t_done = q->t_done;
	if (e->on_output)
		e->on_output(&o);
	q->text_len = 0;
}

/* Retires every request (shutdown): ABORT events, blocks freed. */
static void eng_abort_all(struct engine *e)
{
	struct eng_list done = { 0 };
	struct eng_req *q;

	pthread_mutex_lock(&e->mu);
	while ((q = e->running.head)) {
		eng_list_remove(&e->running, q);
		eng_req_free_blocks(e, q);
		eng_list_push_back(&done, q);
	}
	while ((q = e->waiting.head)) {
		eng_list_remove(&e->waiting, q);
		eng_list_push_back(&done, q);
	}
	eng_stats_refresh(e);
	pthread_mutex_unlock(&e->mu);
	while ((q = done.head)) {
		eng_list_remove(&done, q);
		q->finish = ENG_FINISH_ABORT;
		eng_emit(e, q, 0);
		eng_req_free(q);
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
	in.weights_resident = 1;
	in.gpu_memory_utilization = o->gpu_memory_utilization;
	in.weight_bytes = w->bytes;
	wanted = mem_plan_wanted_len(c, o->max_model_len);
	if (c->max_position_embeddings > 0 && wanted > c->max_position_embeddings)
		wanted = c->max_position_embeddings;
	max_blocks = (wanted + o->block_size - 1) / o->block_size;
	in.activation_bytes = mem_plan_activation_bytes(c, o->max_num_batched_tokens,
							o->max_num_seqs, max_blocks, in.host_memory);
	if (eng_dev_sampling(o, be))
		in.activation_bytes += g2_sampling_bytes(o->max_num_seqs,
							 eng_pairs_cap(o, max_blocks * o->block_size));
	in.reserve_bytes = in.host_memory ? 0 : MEM_PLAN_CUDA_RESERVE;
	in.kv_bytes = o->kv_bytes;
	in.kv_dtype = be->ops->kv_dtype;
	in.block_size = o->block_size;
	in.max_num_seqs = o->max_num_seqs;
	in.max_num_batched_tokens = o->max_num_batched_tokens;
	in.max_model_len = o->max_model_len;
	if (!o->kv_bytes &&
	    (!be->ops->mem_info || be->ops->mem_info(be->ctx, &in.free_bytes, &in.total_bytes) < 0 ||
	     in.total_bytes == 0)) {
		snprintf(err, errlen, "backend %s reports no memory figures; set kv_bytes",
			 be->ops->name);
		return ST_EINVAL;
	}
	return mem_plan_compute(c, &in, plan, err, errlen);
}

static void eng_free_samplers(struct engine *e)
{
	if (e->smps)
		for (int i = 0; i < eng_pool_size(e->pool); i++)
			smp_destroy(e->smps[i]);
	free(e->smps);
	eng_pool_destroy(e->pool);
	e->smps = NULL;
	e->pool = NULL;
}

static void eng_free_dev_smp(struct engine *e, struct be *be)
{
	if (e->s_rows)
		be->ops->host_free(be->ctx, e->s_rows);
	if (e->s_out)
		be->ops->host_free(be->ctx, e->s_out);
	if (e->s_pairs)
		be->ops->host_free(be->ctx, e->s_pairs);
	e->s_rows = NULL;
	e->s_out = NULL;
	e->s_pairs = NULL;
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

int eng_create(const struct eng_opts *opts, const struct g2_weights *w, struct tokenizer *tok,
	       eng_output_fn on_output, struct engine **out)
{
	struct engine *e;
	const struct g2_config *c = &w->cfg;
	size_t per_block;
	int rc;

	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return ST_ENOMEM;
	if (opts)
		e->o = *opts;
	else
		eng_opts_default(&e->o);
	if ((rc = eng_check_opts(&e->o)) < 0)
		goto out_free;
	e->w = *w;
	e->tok = tok;
	e->on_output = on_output;
	e->vocab = c->vocab_size;
	e->block_size = e->o.block_size;
	e->max_seqs = e->o.max_num_seqs;
	e->max_tokens = e->o.max_num_batched_tokens;
	{
		char perr[512];
		if ((rc = eng_plan_checked(&e->o, w, &e->plan, perr, sizeof(perr))) < 0) {
			log_err(rc, "engine: memory plan: %s", perr);
			goto out_free;
		}
		if (e->plan.warning[0])
			log_warn("engine: %s", e->plan.warning);
	}
	e->max_model_len = e->plan.max_model_len;
	if (tok && tok_vocab_size(tok) > e->vocab) {
		rc = log_err(ST_EINVAL, "engine: tokenizer has %d tokens, model vocab_size %d",
			     tok_vocab_size(tok), e->vocab);
		goto out_free;
	}
	for (int i = 0; i < c->n_eos && e->n_eos < ENG_MAX_EOS; i++)
		e->eos[e->n_eos++] = c->eos_token_ids[i];
	if (tok) {
		int eot = tok_id(tok, "<end_of_turn>");
		int dup = 0;
		for (int i = 0; i < e->n_eos; i++)
			dup |= e->eos[i] == eot;
		if (eot >= 0 && !dup && e->n_eos < ENG_MAX_EOS)
			e->eos[e->n_eos++] = eot;
	}
	e->max_blocks = (e->max_model_len + e->block_size - 1) / e->block_size;

	if ((rc = g2_model_create(&e->w, e->max_tokens, e->max_seqs, e->max_blocks, &e->g)) < 0)
		goto out_free;
	per_block = e->plan.kv_block_bytes;
	if ((rc = kv_cache_create(w->be, c, e->block_size, e->plan.kv_bytes, &e->kv)) < 0)
		goto out_free;
	if (kv_n_blocks(e->kv) * e->block_size < e->max_model_len) {
		rc = log_err(ST_ENOMEM, "engine: KV cache holds %d blocks, the plan %d",
			     kv_n_blocks(e->kv), e->plan.kv_blocks);
		goto out_free;
	}
	{
		int nt = e->o.sample_threads;
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		if (nt <= 0)
			nt = (int)MIN(4, MAX(1, cpus));
		nt = MIN(nt, MAX(1, e->max_seqs));
		if ((rc = eng_pool_create(nt, &e->pool)) < 0)
			goto out_free;
		e->smps = calloc((size_t)eng_pool_size(e->pool), sizeof(*e->smps));
		if (!e->smps) {
			rc = ST_ENOMEM;
			goto out_free;
		}
		for (int i = 0; i < eng_pool_size(e->pool); i++)
			if ((rc = smp_create(e->vocab, &e->smps[i])) < 0)
				goto out_free;
	}

	e->dev_smp = eng_dev_sampling(&e->o, w->be);
	if (e->dev_smp) {
		const struct be *be = w->be;
		e->s_pairs_cap = eng_pairs_cap(&e->o, e->max_model_len);
		if ((rc = g2_model_enable_sampling(e->g, e->max_seqs, e->s_pairs_cap)) < 0)
			goto out_free;
		e->s_rows = be->ops->host_alloc(be->ctx, (size_t)e->max_seqs * sizeof(*e->s_rows));
		e->s_out = be->ops->host_alloc(be->ctx, (size_t)e->max_seqs * sizeof(*e->s_out));
		e->s_pairs = be->ops->host_alloc(be->ctx,
						 (size_t)e->s_pairs_cap * sizeof(*e->s_pairs));
		if (!e->s_rows || !e->s_out || !e->s_pairs) {
			rc = log_err(ST_ENOMEM, "engine: no pinned memory for device sampling "
				     "(%d pairs)", e->s_pairs_cap);
			goto out_free;
		}
	}

	rc = ST_ENOMEM;
	e->b_tokens = calloc((size_t)e->max_tokens, sizeof(int32_t));
	e->b_pos = calloc((size_t)e->max_tokens, sizeof(int32_t));
	e->b_seq = calloc((size_t)e->max_tokens, sizeof(int32_t));
	e->b_bt = calloc((size_t)e->max_seqs * e->max_blocks, sizeof(int32_t));
	e->b_ctx = calloc((size_t)e->max_seqs, sizeof(int32_t));
	e->b_rows = calloc((size_t)e->max_seqs, sizeof(int32_t));
	if (!e->dev_smp)
		e->logits = malloc((size_t)e->max_seqs * e->vocab * sizeof(float));
	e->sched = calloc((size_t)e->max_seqs, sizeof(*e->sched));
	e->rows = calloc((size_t)e->max_seqs, sizeof(*e->rows));
	if (!e->b_tokens || !e->b_pos || !e->b_seq || !e->b_bt || !e->b_ctx || !e->b_rows ||
	    (!e->logits && !e->dev_smp) || !e->sched || !e->rows) {
		log_err(ST_ENOMEM, "engine: no memory for step buffers (%d seqs x vocab %d)",
			e->max_seqs, e->vocab);
		goto out_free;
	}
	e->o.max_model_len = e->max_model_len;
	e->next_id = 1;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	pthread_cond_init(&e->warm_cv, NULL);
	eng_stats_refresh(e);
	if ((rc = pthread_create(&e->thread, NULL, eng_main, e)) != 0) {
		rc = log_err(ST_ENOMEM, "engine: cannot start thread: %s", strerror(rc));
		goto out_destroy_sync;
	}
	e->thread_started = 1;
	log_info("engine: %d KV blocks of %d tokens (%.1f MiB), max_model_len %d, "
		 "max_num_seqs %d, max_num_batched_tokens %d, sampling on the %s%s",
		 kv_n_blocks(e->kv), e->block_size,
		 (double)kv_n_blocks(e->kv) * per_block / 1048576.0, e->max_model_len,
		 e->max_seqs, e->max_tokens, e->dev_smp ? "device" : "host",
		 e->dev_smp ? "" : " (thread pool)");
	*out = e;
	return 0;

out_destroy_sync:
	pthread_cond_destroy(&e->warm_cv);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
out_free:
	free(e->b_tokens);
	free(e->b_pos);
	free(e->b_seq);
	free(e->b_bt);
	free(e->b_ctx);
	free(e->b_rows);
	free(e->logits);
	free(e->sched);
	free(e->rows);
	eng_free_samplers(e);
	eng_free_dev_smp(e, w->be);
	kv_cache_destroy(e->kv);
	g2_model_destroy(e->g);
	free(e);
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
	pthread_cond_destroy(&e->warm_cv);
	pthread_cond_destroy(&e->cv);
	pthread_mutex_destroy(&e->mu);
	free(e->b_tokens);
	free(e->b_pos);
	free(e->b_seq);
	free(e->b_bt);
	free(e->b_ctx);
	free(e->b_rows);
	free(e->logits);
	free(e->sched);
	free(e->rows);
	eng_free_samplers(e);
	eng_free_dev_smp(e, e->w.be);
	kv_cache_destroy(e->kv);
	g2_model_destroy(e->g);
	free(e);
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

/* Builds a request (validated); the caller queues it. */
static int eng_req_new(struct engine *e, const int *prompt, int n_prompt,
		       const struct eng_sampling *s, char *err, size_t errlen,
		       struct eng_req **out)
{
	struct eng_req *q;
	const char *param = NULL;
	size_t max_stop = 0;

	*out = NULL;
	if (!prompt || n_prompt <= 0)
		SUBMIT_FAIL(ST_EINVAL, "prompt is empty");
	if (n_prompt >= e->max_model_len)
		SUBMIT_FAIL(ST_EINVAL,
			    "prompt has %d tokens; max_model_len is %d (prompt and output must fit)",
			    n_prompt, e->max_model_len);
	for (int i = 0; i < n_prompt; i++)
		if (prompt[i] < 0 || prompt[i] >= e->vocab)
			SUBMIT_FAIL(ST_EINVAL, "prompt token %d is %d, not in [0, %d)", i, prompt[i],
				    e->vocab);
	if (eng_sampling_check(s, e->vocab, &param, err, errlen) < 0)
		return ST_EINVAL;
	if (s->n_stop > 0 && !e->tok)
		SUBMIT_FAIL(ST_EINVAL, "stop: stop strings need a tokenizer");

	q = calloc(1, sizeof(*q));
	if (!q)
		return ST_ENOMEM;
	q->sp = *s;
	q->sp.n_stop = 0;
	for (int i = 0; i < s->n_stop; i++) {
		q->sp.stop[i] = strdup(s->stop[i]);
		if (!q->sp.stop[i])
			goto out_nomem;
		q->sp.n_stop = i + 1;
		max_stop = MAX(max_stop, strlen(s->stop[i]));
	}
	for (int i = s->n_stop; i < ENG_MAX_STOP; i++)
		q->sp.stop[i] = NULL;
	q->n_prompt = n_prompt;
	q->n_tokens = n_prompt;
	q->cap = (int)MIN((int64_t)n_prompt + s->max_tokens, (int64_t)e->max_model_len);
	q->tokens = malloc((size_t)q->cap * sizeof(int));
	q->blocks = malloc((size_t)e->max_blocks * sizeof(int32_t));
	if (!q->tokens || !q->blocks)
		goto out_nomem;
	memcpy(q->tokens, prompt, (size_t)n_prompt * sizeof(int));
	if (stop_init(&q->stop, q->sp.stop, q->sp.n_stop) < 0)
		goto out_nomem;
	if (e->tok) {
		q->ts = malloc(sizeof(*q->ts));
		q->text_cap = max_stop + 2 * (size_t)TOK_STREAM_OUT + 64;
		q->text = malloc(q->text_cap);
		if (!q->ts || !q->text)
			goto out_nomem;
		tok_stream_init(q->ts, e->tok, 1);
		q->text[0] = '\0';
	}
	*out = q;
	return 0;

out_nomem:
	eng_req_free(q);
	SUBMIT_FAIL(ST_ENOMEM, "out of memory");
}

int eng_submit(struct engine *e, const int *prompt, int n_prompt, const struct eng_sampling *s,
	       void *user, uint64_t *id, char *err, size_t errlen)
{
	struct eng_req *q;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if ((rc = eng_req_new(e, prompt, n_prompt, s, err, errlen, &q)) < 0)
		return rc;
	q->user = user;
	q->t_queued = now_sec();
	pthread_mutex_lock(&e->mu);
	if (e->stop) {
		pthread_mutex_unlock(&e->mu);
		eng_req_free(q);
		SUBMIT_FAIL(ST_ECANCEL, "engine is shutting down");
	}
	/* Full: max_queue requests already wait beyond the free running slots. */
	if (e->waiting.n >= e->o.max_queue + MAX(0, e->max_seqs - e->running.n)) {
		pthread_mutex_unlock(&e->mu);
		eng_req_free(q);
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
	if ((rc = eng_req_new(e, prompt, n, &s, NULL, 0, &q)) < 0)
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
