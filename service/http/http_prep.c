/*
 * http_prep.c - request preparation off the loop thread: api_parse() (or
 * api_responses_parse() for /v1/responses) of a
 * generation request (validation, chat template, tokenization) with a body
 * over HTTP_PREP_INLINE_BYTES runs on HTTP_PREP_THREADS worker threads, so
 * a 1 MiB prompt (~0.3 s to tokenize) never stalls /health, streaming
 * replies or other requests; small bodies (a few ms) stay on the loop
 * thread and never queue behind big ones.
 *
 * Hand-off: the loop thread queues a job (the hreq, marked r->prepping, and
 * the parsed JSON, which the worker frees); a worker fills r->api and the
 * job's result, moves the job to the done list and activates srv->prep_ev;
 * the loop thread then calls each done job's done function (given by the
 * submitter, http_gen.c), in order. While r->prepping, the loop thread
 * touches nothing the worker writes (r->api) and does not free r
 * (http_gen.c waits for it).
 * The tokenizer is immutable after creation (tokenizer.h) and srv->lim is
 * read-only once published, so workers share them without locks.
 */
#include <stdlib.h>

#include "common/log.h"
#include "common/status.h"
#include "service/api/api_parse.h"
#include "service/api/api_responses.h"
#include "service/http/http_prep.h"

struct prep_job {
	struct prep_job *next;
	struct hreq *r;
	cJSON *body;		/* freed by the worker */
	enum api_kind kind;
	http_prep_done_fn done;
	int rc;
	struct api_err e;
};

static void push(struct prep_job **head, struct prep_job **tail, struct prep_job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void *prep_main(void *arg)
{
	struct srv *s = arg;

	pthread_mutex_lock(&s->prep_mu);
	for (;;) {
		struct prep_job *j;
		while (!s->prep_stop && !s->prep_in)
			pthread_cond_wait(&s->prep_cv, &s->prep_mu);
		if (s->prep_stop)
			break;
		j = s->prep_in;
		s->prep_in = j->next;
		if (!s->prep_in)
			s->prep_in_tail = NULL;
		pthread_mutex_unlock(&s->prep_mu);

		j->rc = j->kind == API_RESPONSES ? api_responses_parse(j->body, s->tok, &s->lim, &j->r->api, &j->e)
						 : api_parse(j->kind, j->body, s->tok, &s->lim, &j->r->api, &j->e);
		cJSON_Delete(j->body);
		j->body = NULL;

		pthread_mutex_lock(&s->prep_mu);
		push(&s->prep_done, &s->prep_done_tail, j);
		event_active(s->prep_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&s->prep_mu);
	return NULL;
}

/* Loop thread: hands every finished job to its done function. */
static void on_prep_done(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;
	struct prep_job *j;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&s->prep_mu);
	j = s->prep_done;
	s->prep_done = s->prep_done_tail = NULL;
	pthread_mutex_unlock(&s->prep_mu);
	while (j) {
		struct prep_job *next = j->next;
		j->r->prepping = 0;
		j->done(j->r, j->rc, &j->e);
		free(j);
		j = next;
	}
}

int http_prep_start(struct srv *s)
{
	pthread_mutex_init(&s->prep_mu, NULL);
	pthread_cond_init(&s->prep_cv, NULL);
	s->prep_ev = event_new(s->base, -1, 0, on_prep_done, s);
	if (!s->prep_ev)
		return log_err(ST_ENOMEM, "libevent: cannot create the prep event");
	for (int i = 0; i < HTTP_PREP_THREADS; i++) {
		int rc = pthread_create(&s->prep_threads[i], NULL, prep_main, s);
		if (rc != 0)
			return log_err(ST_ENOMEM, "cannot start request preparation thread %d", i);
		s->n_prep_threads++;
	}
	return 0;
}

int http_prep_submit(struct srv *s, struct hreq *r, cJSON *body, enum api_kind kind,
		     http_prep_done_fn done)
{
	struct prep_job *j = calloc(1, sizeof(*j));

	if (!j)
		return ST_ENOMEM;
	j->r = r;
	j->body = body;
	j->kind = kind;
	j->done = done;
	r->prepping = 1;
	pthread_mutex_lock(&s->prep_mu);
	push(&s->prep_in, &s->prep_in_tail, j);
	pthread_cond_signal(&s->prep_cv);
	pthread_mutex_unlock(&s->prep_mu);
	return 0;
}

void http_prep_stop(struct srv *s)
{
	struct prep_job *j, *next;

	if (!s->prep_ev)
		return;		/* never started */
	pthread_mutex_lock(&s->prep_mu);
	s->prep_stop = 1;
	pthread_cond_broadcast(&s->prep_cv);
	pthread_mutex_unlock(&s->prep_mu);
	for (int i = 0; i < s->n_prep_threads; i++)
		pthread_join(s->prep_threads[i], NULL);
	s->n_prep_threads = 0;
	/* what is left: never parsed (in) or not yet taken by the loop (done) */
	for (j = s->prep_in; j; j = next) {
		next = j->next;
		cJSON_Delete(j->body);
		j->r->prepping = 0;
		free(j);
	}
	for (j = s->prep_done; j; j = next) {
		next = j->next;
		j->r->prepping = 0;
		free(j);
	}
	s->prep_in = s->prep_in_tail = s->prep_done = s->prep_done_tail = NULL;
	event_free(s->prep_ev);
	s->prep_ev = NULL;
	pthread_cond_destroy(&s->prep_cv);
	pthread_mutex_destroy(&s->prep_mu);
}
