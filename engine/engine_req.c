/*
 * engine_req.c - the request object (create / destroy, its KV blocks), the
 * waiting and running lists, the stats figures they give, and the output
 * events handed to the service (eng_emit, the ABORT events of retired
 * requests).
 *
 * Not here: when a request runs or what it samples (engine_step.c), the
 * thread and the public entry points (engine.c). Calls nothing else of
 * the engine's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/engine_req.h"
#include "engine/grammar_cache.h"
#include "engine/grammar_schema.h"
#include "kernels/kv_hash.h"

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
	e->stats.kv_blocks_free = kv_n_available(e->kv);
	e->stats.kv_blocks_evictable = kv_n_evictable(e->kv);
	e->stats.kv_usage = e->stats.kv_blocks_total > 0 ?
		(double)kv_n_used(e->kv) / e->stats.kv_blocks_total : 0.0;
}

void eng_req_destroy(struct eng_req *q)
{
	if (!q)
		return;
	for (int i = 0; i < q->sp.n_stop; i++)
		free(q->sp.stop[i]);
	if (q->grammar) {
		gr_match_release(&q->gm);
		gm_cache_release(&q->gcache);
		grs_release(q->grammar);
	}
	stop_release(&q->stop);
	free(q->ts);
	free(q->text);
	free(q->tokens);
	free(q->blocks);
	free(q->hashes);
	free(q);
}

void eng_req_free_blocks(struct engine *e, struct eng_req *q)
{
	if (q->n_blocks > 0)
		kv_free_n(e->kv, q->blocks, q->n_blocks);	/* leaf first into the LRU */
	q->n_blocks = 0;
	q->n_computed = 0;
	q->n_reg = 0;	/* hashes stay valid: the tokens only grow */
}

#define SUBMIT_FAIL(code, ...) do { \
		if (err && errlen) snprintf(err, errlen, __VA_ARGS__); \
		return (code); \
	} while (0)

int eng_req_create(struct engine *e, const int *prompt, int n_prompt,
		   const struct eng_sampling *s, char *err, size_t errlen, struct eng_req **out)
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
	if (s->guide_kind && !e->tok)
		SUBMIT_FAIL(ST_EINVAL, "response_format: structured outputs need a tokenizer");

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
	q->sp.guide = NULL;	/* borrowed text: only the compiled grammar is kept */
	if (s->guide_kind) {
		int rc = grs_get((enum grs_kind)s->guide_kind, s->guide, s->guide_len, &q->grammar,
				 err, errlen);
		if (rc < 0) {
			q->grammar = NULL;
			eng_req_destroy(q);
			return rc == ST_ENOMEM ? ST_ENOMEM : ST_EINVAL;
		}
		if (gr_match_init(&q->gm, q->grammar) < 0) {
			gr_match_release(&q->gm);
			goto out_nomem;
		}
	}
	q->n_prompt = n_prompt;
	q->n_tokens = n_prompt;
	q->cap = (int)MIN((int64_t)n_prompt + s->max_tokens, (int64_t)e->max_model_len);
	q->tokens = malloc((size_t)q->cap * sizeof(int));
	q->blocks = malloc((size_t)e->max_blocks * sizeof(int32_t));
	q->hashes = malloc((size_t)e->max_blocks * sizeof(uint64_t));
	q->salt_hash = s->cache_salt ? s->cache_salt : kv_hash_salt(NULL);
	if (!q->tokens || !q->blocks || !q->hashes)
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
	eng_req_destroy(q);
	SUBMIT_FAIL(ST_ENOMEM, "out of memory");
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
	o.n_cached_tokens = q->n_cached;
	o.n_generated = q->n_gen;
	o.t_queued = q->t_queued;
	o.t_first_token = q->t_first;
	o.t_done = q->t_done;
	o.t_scheduled = q->t_sched;
	if (e->on_output)
		e->on_output(&o);
	q->text_len = 0;
}

void eng_abort_list(struct engine *e, struct eng_list *done)
{
	struct eng_req *q;

	while ((q = done->head)) {
		eng_list_remove(done, q);
		q->finish = q->shed ? ENG_FINISH_SHED : ENG_FINISH_ABORT;
		eng_emit(e, q, 0);
		eng_req_destroy(q);
	}
}

void eng_abort_all(struct engine *e)
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
	eng_abort_list(e, &done);
}
