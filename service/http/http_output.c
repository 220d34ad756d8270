/*
 * http_output.c - a choice's output buffers (struct outbuf: text, token
 * ids, logprobs) and the engine thread's side of a generation request:
 * http_on_output, eng_create's callback, appends each event to the choice's
 * pending buffer under srv->q_mu, links the choice into the ready list and
 * wakes the loop (http_gen.c:http_drain_ready takes it from there). Cheap
 * on purpose: no JSON, no I/O on the engine thread. Buffers only grow until
 * they fit the largest burst (no allocation per token after that); a failed
 * growth marks the buffer (oom) and the loop answers with an error instead
 * of a truncated text.
 */
#include "service/http/http_output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/util.h"

static int outbuf_grow(struct outbuf *b, int extra)
{
	if (b->n + extra <= b->cap)
		return 0;
	int cap = b->cap ? b->cap : 16;
	while (cap < b->n + extra)
		cap *= 2;
	int *t = realloc(b->tokens, sizeof(int) * (size_t)cap);
	if (!t)
		return -1;
	b->tokens = t;
	float *lp = realloc(b->lp, sizeof(float) * (size_t)cap);
	if (!lp)
		return -1;
	b->lp = lp;
	struct eng_logprob *top = realloc(b->top, sizeof(*top) * (size_t)cap * ENG_MAX_LOGPROBS);
	if (!top)
		return -1;
	b->top = top;
	b->cap = cap;
	return 0;
}

void http_outbuf_append(struct outbuf *b, const int *tokens, int n, const char *text, size_t len,
			const float *lp, const struct eng_logprob *top, int n_top)
{
	sb_add(&b->text, text ? text : "", len);
	if (b->text.oom)
		b->oom = 1;
	if (n <= 0)
		return;
	if (outbuf_grow(b, n) < 0) {
		b->oom = 1;
		return;
	}
	memcpy(b->tokens + b->n, tokens, sizeof(int) * (size_t)n);
	if (lp) {
		n_top = MIN(n_top, ENG_MAX_LOGPROBS);
		memcpy(b->lp + b->n, lp, sizeof(float) * (size_t)n);
		for (int i = 0; i < n; i++)
			for (int k = 0; k < ENG_MAX_LOGPROBS; k++) {
				struct eng_logprob *d = &b->top[(size_t)(b->n + i) * ENG_MAX_LOGPROBS + (size_t)k];
				if (k < n_top)
					*d = top[(size_t)i * (size_t)n_top + (size_t)k];
				else
					d->token = -1, d->logprob = 0;
			}
		b->n_top = n_top;
	}
	b->n += n;
}

void http_outbuf_reset(struct outbuf *b)
{
	sb_reset(&b->text);
	b->n = 0;
	b->oom = 0;
}

void http_outbuf_release(struct outbuf *b)
{
	sb_release(&b->text);
	free(b->tokens);
	free(b->lp);
	free(b->top);
	memset(b, 0, sizeof(*b));
}

/* Engine thread. Cheap: copy, link, wake. */
void http_on_output(const struct eng_output *o)
{
	struct choice *c = o->user;
	struct srv *s = c->r->srv;

	pthread_mutex_lock(&s->q_mu);
	http_outbuf_append(&c->pend, o->tokens, o->n_tokens, o->text, o->text_len, o->token_logprobs,
		      o->top_logprobs, o->n_top);
	if (o->final) {
		c->pend_final = 1;
		c->finish = o->finish;
		if (o->error)
			snprintf(c->error, sizeof(c->error), "%s", o->error);
		c->n_prompt = o->n_prompt_tokens;
		c->n_cached = o->n_cached_tokens;
		c->n_gen = o->n_generated;
		c->t_queued = o->t_queued;
		c->t_sched = o->t_scheduled;
		c->t_first = o->t_first_token;
		c->t_done = o->t_done;
	}
	if (!c->on_ready) {
		c->on_ready = 1;
		c->next_ready = NULL;
		if (s->ready_tail)
			s->ready_tail->next_ready = c;
		else
			s->ready_head = c;
		s->ready_tail = c;
	}
	pthread_mutex_unlock(&s->q_mu);
	event_active(s->wake, EV_READ, 0);
}
