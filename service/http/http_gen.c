/*
 * http_gen.c - generation requests: /v1/completions, /v1/chat/completions,
 * /v1/responses and /generate, from submission to the engine to the last
 * byte of the response (JSON or SSE), including client disconnects and
 * drain. A /v1/responses stream is named events (event: + data:, each
 * with a sequence_number, no [DONE]): created, in_progress, output item
 * and content part added, text deltas, then text / part / item done and
 * response.completed (whatever the status, as vLLM); its text is kept
 * whole (ch.all) for the done events.
 *
 * The engine thread calls http_on_output() (http_output.c); everything else
 * runs on the loop thread. Pending output is double-buffered per choice
 * (pend, filled under srv->q_mu; work, consumed by the loop), so a wake-up
 * that finds several token groups sends them as one chunk.
 *
 * Out of memory: a choice's output that could not be stored in full, or a
 * body or chunk that could not be built (sbuf's oom), is never sent as if
 * whole. A plain reply becomes a 500 with the OpenAI error body; a stream
 * that already started ends with that error as its last event (then
 * [DONE]), and the request's choices are cancelled.
 */
#include "service/http/http_gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "service/api/api_parse.h"
#include "service/api/api_resp.h"
#include "service/api/api_responses.h"
#include "service/http/http_output.h"
#include "service/http/http_prep.h"
#include "service/http/http_util.h"
#include "service/http/metrics.h"

static void detach_watchers(struct hreq *r)
{
	if (r->eof_ev) {
		event_free(r->eof_ev);
		r->eof_ev = NULL;
	}
	if (r->conn && r->req) {
		evhttp_connection_set_closecb(r->conn, NULL, NULL);
	}
}

static void hreq_free(struct hreq *r)
{
	struct srv *s = r->srv;
	detach_watchers(r);
	if (r->prev)
		r->prev->next = r->next;
	else
		s->active = r->next;
	if (r->next)
		r->next->prev = r->prev;
	s->n_active--;
	for (int i = 0; i < r->n_choices; i++) {
		http_outbuf_release(&r->ch[i].pend);
		http_outbuf_release(&r->ch[i].all);
		http_outbuf_release(&r->ch[i].work);
	}
	free(r->ch);
	api_req_release(&r->api);
	free(r);
}

void http_gen_free_all(struct srv *s)
{
	while (s->active) {
		struct hreq *r = s->active;
		r->req = NULL;
		r->conn = NULL;
		hreq_free(r);
	}
}

static void maybe_free(struct hreq *r)
{
	if (!r->prepping && (r->replied || r->gone) && r->n_final == r->n_submitted)
		hreq_free(r);
}

static void cancel_choices(struct hreq *r)
{
	struct srv *s = r->srv;
	for (int i = 0; i < r->n_choices; i++)
		if (r->ch[i].submitted && !r->ch[i].final && s->eng)
			eng_cancel(s->eng, r->ch[i].eng_id);
}

/*
 * The tokens of a request that has not finished: every prompt, and what
 * each choice generated so far (its final count, or what reached the loop
 * thread and what waits in pend). Loop thread, outside process_choice.
 */
static void tokens_so_far(struct hreq *r, int *tin, int *tout)
{
	*tin = 0;
	*tout = 0;
	for (int i = 0; !r->prepping && i < r->api.n_prompts; i++)	/* a prep worker owns r->api */
		*tin += r->api.prompts[i].n_ids;
	pthread_mutex_lock(&r->srv->q_mu);
	for (int i = 0; i < r->n_choices; i++) {
		const struct choice *c = &r->ch[i];
		*tout += c->final || c->pend_final ? c->n_gen : c->n_seen + c->pend.n;
	}
	pthread_mutex_unlock(&r->srv->q_mu);
}

/* The client went away: evhttp is freeing the connection. */
static void on_close(struct evhttp_connection *conn, void *arg)
{
	struct hreq *r = arg;
	(void)conn;
	if (r->eof_ev) {
		event_free(r->eof_ev);
		r->eof_ev = NULL;
	}
	if (r->req && !r->replied) {
		int tin, tout;
		tokens_so_far(r, &tin, &tout);
		http_access_log_sent(r->srv, r->req, r->route, 499, r->t_start, r->who[0] ? r->who : NULL,
				     tin, tout, r->id, r->sent);
	}
	log_debug("%s: client gone (%s)", r->id, r->req && !evhttp_request_get_connection(r->req) ?
		  "write failed" : "connection closed");
	if (r->req && evhttp_request_get_connection(r->req) == NULL)
		evhttp_request_free(r->req);	/* detached by evhttp: ours to free */
	r->req = NULL;
	r->conn = NULL;
	r->gone = 1;
	cancel_choices(r);
	maybe_free(r);
}

/* The socket became readable while we answer: EOF means the client left. */
static void on_eof(evutil_socket_t fd, short what, void *arg)
{
	struct hreq *r = arg;
	char b;
	(void)what;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) {
		if (n < 0)
			event_add(r->eof_ev, NULL);
		return;	/* pipelined bytes: stop watching, evhttp reads them later */
	}
	if (r->conn)
		evhttp_connection_free(r->conn);	/* calls on_close */
}

/* One event of a stream: an SSE "data:" event (named "event: name" when
 * name is not NULL), or for /generate (vLLM's legacy stream) one NDJSON line. */
static void send_named(struct hreq *r, const char *name, const char *json, size_t len)
{
	int ndjson = r->api.kind == API_GENERATE;
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return;
	if (name)
		evbuffer_add_printf(b, "event: %s\n", name);
	if (!ndjson)
		evbuffer_add(b, "data: ", 6);
	evbuffer_add(b, json, len);
	evbuffer_add(b, "\n\n", ndjson ? 1 : 2);
	r->sent += evbuffer_get_length(b);
	evhttp_send_reply_chunk(r->req, b);
	evbuffer_free(b);
}

static void send_event(struct hreq *r, const char *json, size_t len)
{
	send_named(r, NULL, json, len);
}

/* /v1/responses: the response as it stands (ch[0]; n is 1); msg_id holds
 * the output item's id ("msg_" + the request id's digits). */
static void rsp_of(struct hreq *r, struct api_rsp *p, char *msg_id, size_t n, int final)
{
	const struct choice *c = &r->ch[0];

	memset(p, 0, sizeof(*p));
	snprintf(msg_id, n, "msg_%s", r->id + 5);
	p->id = r->id;
	p->msg_id = msg_id;
	p->created_at = r->created;
	p->model = r->srv->model_name;
	p->req = &r->api;
	p->status = "in_progress";
	p->text = c->all.text.buf ? c->all.text.buf : "";
	p->text_len = c->all.text.len;
	if (final) {
		int len = c->finish == ENG_FINISH_LENGTH;
		p->has_output = 1;
		p->status = len ? "incomplete" : "completed";
		p->incomplete_reason = len ? "max_output_tokens" : NULL;
		p->has_usage = 1;
		p->input_tokens = r->prompt_tokens;
		p->output_tokens = r->completion_tokens;
		p->cached_tokens = r->cached_tokens;
	}
}

/* /v1/responses stream: the events before (closing 0) or after the text
 * deltas; 0, or -1 when one could not be built (out of memory). */
static int rsp_edge(struct hreq *r, int closing, const struct api_rsp *p)
{
	struct sbuf *sb = &r->srv->scratch;

	for (int k = 0; k < API_RSP_EDGE_EVENTS; k++) {
		sb_reset(sb);
		const char *type = api_rsp_edge_event(sb, closing, k, r->seq, p);
		if (sb->oom)
			return -1;
		r->seq++;
		send_named(r, type, sb_cstr(sb), sb->len);
	}
	return 0;
}

static void meta_of(struct hreq *r, struct api_meta *m)
{
	m->kind = r->api.kind;
	m->id = r->id;
	m->created = r->created;
	m->model = r->srv->model_name;
	m->tok = r->srv->tok;
	m->cached_tokens = r->cached_tokens;
}

static void out_of(struct hreq *r, struct choice *c, const struct outbuf *b, struct api_out *o)
{
	memset(o, 0, sizeof(*o));
	o->index = c->index;
	o->text = b->text.buf ? b->text.buf : "";
	o->text_len = b->text.len;
	o->n_tokens = b->n;
	o->tokens = b->tokens;
	if (r->api.logprobs >= 0 && b->lp) {
		o->lp = b->lp;
		o->top = b->top;
		o->n_top = ENG_MAX_LOGPROBS;
	}
	o->text_offset = c->text_off;
}

/* Compacts top logprobs from stride ENG_MAX_LOGPROBS to r->api.logprobs. */
static void compact_top(struct hreq *r, struct outbuf *b, struct api_out *o)
{
	int k = r->api.logprobs;
	if (!o->lp)
		return;
	for (int i = 0; i < b->n; i++)
		memmove(&b->top[(size_t)i * (size_t)k], &b->top[(size_t)i * ENG_MAX_LOGPROBS],
			sizeof(struct eng_logprob) * (size_t)k);
	o->n_top = k;
}

static void generate_json(struct sbuf *sb, struct hreq *r)
{
	sb_puts(sb, "{\"text\":[");
	for (int i = 0; i < r->n_choices; i++) {
		struct choice *c = &r->ch[i];
		const struct api_prompt *p = &r->api.prompts[c->prompt];
		struct sbuf t;
		sb_init(&t);
		sb_add(&t, p->text, p->text_len);
		sb_add(&t, c->all.text.buf ? c->all.text.buf : "", c->all.text.len);
		if (i)
			sb_putc(sb, ',');
		sb_json_strn(sb, t.buf ? t.buf : "", t.len);
		if (t.oom)
			sb->oom = 1;	/* the text would be cut short */
		sb_release(&t);
	}
	sb_puts(sb, "]}");
}

/* /v1/responses stream: the done events and response.completed, or an
 * "error" event when the reply cannot finish. */
static void stream_end_responses(struct hreq *r, const char *err, int aborted)
{
	struct sbuf *sb = &r->srv->scratch;
	struct api_rsp p;
	char msg_id[48];
	const char *body;
	size_t len;

	rsp_of(r, &p, msg_id, sizeof(msg_id), 1);
	if (!err && !aborted && rsp_edge(r, 1, &p) < 0)
		err = "out of memory";
	if (err || aborted) {
		sb_reset(sb);
		api_rsp_event_error(sb, r->seq++, err ? 500 : 503, err ? err : "the server is shutting down");
		body = api_json_or_oom(sb, &len);
		send_named(r, "error", body, len);
	}
}

static void finish_reply(struct hreq *r)
{
	struct srv *s = r->srv;
	struct sbuf *sb = &s->scratch;
	struct api_meta m;
	const char *err = NULL, *body;
	size_t len;
	int aborted = 0;

	for (int i = 0; i < r->n_choices; i++) {
		if (r->ch[i].finish == ENG_FINISH_ERROR)
			err = r->ch[i].error[0] ? r->ch[i].error : "generation failed";
		if (r->ch[i].finish == ENG_FINISH_ABORT || r->ch[i].finish == ENG_FINISH_SHED)
			aborted = 1;
	}
	if (!err && r->oom)
		err = "out of memory";
	meta_of(r, &m);
	detach_watchers(r);
	r->replied = 1;
	sb_reset(sb);
	if (r->stream) {
		if (r->api.kind == API_RESPONSES) {
			stream_end_responses(r, err, aborted);
		} else if (err || aborted) {
			int st = err ? 500 : 503;
			api_error_json(sb, st, err ? err : "the server is shutting down", NULL);
			body = api_json_or_oom(sb, &len);
			send_event(r, body, len);
			sb_reset(sb);
		}
		if (r->api.kind != API_GENERATE && r->api.kind != API_RESPONSES) {
			if (r->api.include_usage) {
				api_usage_chunk_json(sb, &m, r->prompt_tokens, r->completion_tokens);
				body = api_json_or_oom(sb, &len);	/* no usage: the error event */
				send_event(r, body, len);
			}
			send_event(r, "[DONE]", 6);
		}
		http_access_log_sent(s, r->req, r->route, 200, r->t_start, r->who[0] ? r->who : NULL,
				     r->prompt_tokens, r->completion_tokens, r->id, r->sent);
		http_track_send(s, r->req);
		evhttp_send_reply_end(r->req);
		r->req = NULL;
		return;
	}
	int status = 200;
	if (err) {
		status = 500;
		api_error_json(sb, 500, err, NULL);
	} else if (aborted) {
		status = 503;
		api_error_json(sb, 503, "the server is shutting down", NULL);
	} else if (r->api.kind == API_GENERATE) {
		generate_json(sb, r);
	} else if (r->api.kind == API_RESPONSES) {
		struct api_rsp p;
		char msg_id[48];
		rsp_of(r, &p, msg_id, sizeof(msg_id), 1);
		api_rsp_object_json(sb, &p);
	} else {
		struct api_out *o = calloc((size_t)r->n_choices, sizeof(*o));
		if (!o) {
			status = 500;
			api_error_json(sb, 500, "out of memory", NULL);
		} else {
			for (int i = 0; i < r->n_choices; i++) {
				struct choice *c = &r->ch[i];
				out_of(r, c, &c->all, &o[i]);
				compact_top(r, &c->all, &o[i]);
				o[i].finish = eng_finish_name(c->finish);
				o[i].text_offset = 0;	/* the whole text: offsets from its start */
				if (r->api.echo) {
					o[i].prefix = r->api.prompts[c->prompt].text;
					o[i].prefix_len = r->api.prompts[c->prompt].text_len;
					o[i].text_offset = api_utf8_chars(o[i].prefix, o[i].prefix_len);
				}
			}
			api_response_json(sb, &m, o, r->n_choices, r->prompt_tokens, r->completion_tokens);
			free(o);
		}
	}
	body = api_json_or_oom(sb, &len);
	if (sb->oom)
		status = 500;
	struct evkeyvalq *oh = evhttp_request_get_output_headers(r->req);
	evhttp_add_header(oh, "Content-Type", "application/json");
	if (status == 503)
		evhttp_add_header(oh, "Retry-After", "1");
	if (atomic_load(&s->state) == SRV_DRAINING)
		evhttp_add_header(oh, "Connection", "close");
	evbuffer_add(evhttp_request_get_output_buffer(r->req), body, len);
	http_access_log(s, r->req, r->route, status, r->t_start, r->who[0] ? r->who : NULL, r->prompt_tokens,
			r->completion_tokens, r->id);
	http_track_send(s, r->req);
	evhttp_send_reply(r->req, status, status == 200 ? "OK" : "Error", NULL);
	r->req = NULL;
}

/* A stream could not go on whole (out of memory): it ends now with an error
 * event and [DONE]; the engine's last events for the cancelled choices only
 * count down (stream_out sends nothing once replied). */
static void stream_oom(struct hreq *r)
{
	r->oom = 1;
	cancel_choices(r);
	finish_reply(r);
}

static void stream_out(struct hreq *r, struct choice *c, int final)
{
	struct srv *s = r->srv;
	struct sbuf *sb = &s->scratch;
	struct api_meta m;
	struct api_out o;

	if (!r->req || r->replied)
		return;
	if (r->oom) {
		stream_oom(r);
		return;
	}
	sb_reset(sb);
	if (r->api.kind == API_RESPONSES) {
		struct api_rsp p;
		char msg_id[48];
		if (!c->work.text.len)
			return;		/* the end is finish_reply's */
		rsp_of(r, &p, msg_id, sizeof(msg_id), 0);
		api_rsp_event_delta(sb, r->seq, &p, c->work.text.buf, c->work.text.len);
		if (sb->oom) {
			stream_oom(r);
			return;
		}
		r->seq++;
		send_named(r, "response.output_text.delta", sb_cstr(sb), sb->len);
		return;
	} else if (r->api.kind == API_GENERATE) {
		if (!c->work.text.len && !final)
			return;
		/* vLLM's legacy stream: cumulative text per line, all choices */
		generate_json(sb, r);
	} else {
		if (!c->work.n && !c->work.text.len && !final)
			return;
		meta_of(r, &m);
		out_of(r, c, &c->work, &o);
		compact_top(r, &c->work, &o);
		if (final && c->finish != ENG_FINISH_ERROR && c->finish != ENG_FINISH_ABORT &&
		    c->finish != ENG_FINISH_SHED)
			o.finish = eng_finish_name(c->finish);
		if (!o.finish && !o.text_len && !o.n_tokens)
			return;
		if (final && !o.finish)
			return;
		if (r->api.echo && !c->echoed) {
			/* completions echo: the prompt leads the first chunk */
			o.prefix = r->api.prompts[c->prompt].text;
			o.prefix_len = r->api.prompts[c->prompt].text_len;
			c->echoed = 1;
		}
		api_chunk_json(sb, &m, &o, 0);
	}
	if (sb->oom) {
		stream_oom(r);
		return;
	}
	send_event(r, sb_cstr(sb), sb->len);
}

static void process_choice(struct hreq *r, struct choice *c, int final)
{
	double now = now_sec();
	int n = c->work.n;

	c->n_seen += n;
	if (n > 0) {
		double gap = c->t_last_tok > 0 ? (now - c->t_last_tok) / n : 0;
		for (int i = c->t_last_tok > 0 ? 0 : 1; i < n; i++)
			met_inter_token(gap);
		c->t_last_tok = now;
	}
	if (!r->stream || r->api.kind == API_GENERATE || r->api.kind == API_RESPONSES)
		http_outbuf_append(&c->all, c->work.tokens, n, c->work.text.buf, c->work.text.len, c->work.lp,
			      c->work.top, c->work.n_top);
	if (c->work.oom || c->all.oom)
		r->oom = 1;	/* output is missing: the reply ends as an error */
	if (r->stream)
		stream_out(r, c, final);
	if (r->api.kind == API_COMPLETION && r->api.logprobs >= 0)
		c->text_off += api_utf8_chars(c->work.text.buf ? c->work.text.buf : "", c->work.text.len);
	http_outbuf_reset(&c->work);
	if (final) {
		c->final = 1;
		r->n_final++;
		const char *fn = eng_finish_name(c->finish);
		if (c->finish == ENG_FINISH_SHED && !r->refused) {
			/* never admitted, and the server drains: the whole request
			 * is answered 503 now (finish_reply) for a retry elsewhere */
			r->refused = 1;
			cancel_choices(r);
		}
		if (!r->refused)	/* a refused request (429 after part of n was queued) never ran */
			met_request_done(fn ? fn : "error", c->n_prompt, c->n_cached, c->n_gen, r->t_start,
					 c->t_queued, c->t_sched, c->t_first, c->t_done);
		if (c->index % r->api.n == 0) {
			r->prompt_tokens += c->n_prompt;
			r->cached_tokens += c->n_cached;
		}
		r->completion_tokens += c->n_gen;
		if (r->n_final == r->n_submitted && !r->refused) {
			/* per prompt, as vLLM counts a prompt's n choices as one request */
			for (int p = 0; p < r->api.n_prompts; p++) {
				int max_gen = 0;
				for (int i = 0; i < r->n_choices; i++)
					if (r->ch[i].prompt == p)
						max_gen = MAX(max_gen, r->ch[i].n_gen);
				met_request_group_done(r->api.n, r->api.max_tokens_set ? r->api.smp.max_tokens : 0,
						       max_gen);
			}
		}
		if (r->n_final == r->n_submitted && r->req && !r->replied)
			finish_reply(r);
		maybe_free(r);
	}
}

void http_drain_ready(struct srv *s)
{
	struct choice *c;
	int n = 0;

	pthread_mutex_lock(&s->q_mu);
	for (c = s->ready_head; c; c = c->next_ready) {
		if (n == s->batch_cap) {
			int cap = s->batch_cap ? 2 * s->batch_cap : 64;
			struct choice **b = realloc(s->batch, sizeof(*b) * (size_t)cap);
			if (!b)
				break;	/* the rest stays linked; the next wake-up takes it */
			s->batch = b;
			s->batch_cap = cap;
		}
		s->batch[n++] = c;
		struct outbuf t = c->work;
		c->work = c->pend;
		c->pend = t;
		http_outbuf_reset(&c->pend);
		c->batch_final = c->pend_final;
		c->pend_final = 0;
		c->on_ready = 0;
	}
	s->ready_head = c;
	if (!c)
		s->ready_tail = NULL;
	pthread_mutex_unlock(&s->q_mu);
	if (c)
		event_active(s->wake, EV_READ, 0);
	/* next_ready may be rewritten by the engine from here on: use the copy */
	for (int i = 0; i < n; i++)
		process_choice(s->batch[i]->r, s->batch[i], s->batch[i]->batch_final);
}

void http_cancel_all(struct srv *s)
{
	for (struct hreq *r = s->active; r; r = r->next)
		cancel_choices(r);
}

static void watch_client(struct hreq *r)
{
	struct bufferevent *bev;
	evutil_socket_t fd;

	r->conn = evhttp_request_get_connection(r->req);
	if (!r->conn)
		return;
	evhttp_connection_set_closecb(r->conn, on_close, r);
	bev = evhttp_connection_get_bufferevent(r->conn);
	fd = bev ? bufferevent_getfd(bev) : -1;
	if (fd >= 0) {
		r->eof_ev = event_new(r->srv->base, fd, EV_READ, on_eof, r);
		if (r->eof_ev)
			event_add(r->eof_ev, NULL);
	}
}

/* Answers an error for a request whose watchers are set, and lets it go. */
static void gen_fail(struct hreq *r, int status, const char *msg, const char *param)
{
	detach_watchers(r);	/* while r->req is ours: the close callback points at r */
	r->refused = 1;
	cancel_choices(r);
	r->replied = 1;
	http_error(r->srv, r->req, r->route, status, msg, param, r->t_start);
	r->req = NULL;
	maybe_free(r);
}

/*
 * Loop thread. Reads and parses the body here (cheap), then runs api_parse
 * (validation, chat template, tokenization) here for a small body, or hands
 * the request to a prep worker (http_prep.c) for a large one, and continues
 * in prepared().
 */
static void prepared(struct hreq *r, int rc, const struct api_err *e);

void http_handle_generate(struct srv *s, struct evhttp_request *req, enum api_kind kind,
			  const char *route, double t0, const char *who)
{
	char *body = NULL;
	size_t len = 0;
	cJSON *j;
	struct hreq *r;

	if (http_read_body(s, req, route, t0, &body, &len) < 0)
		return;
	j = http_parse_json(s, req, route, t0, body, len);
	free(body);
	if (!j)
		return;
	r = calloc(1, sizeof(*r));
	if (!r) {
		cJSON_Delete(j);
		http_error(s, req, route, 500, "out of memory", NULL, t0);
		return;
	}
	r->srv = s;
	r->req = req;
	r->route = route;
	r->kind = kind;
	r->t_start = t0;
	r->created = (long)wall_sec();
	snprintf(r->id, sizeof(r->id), "%s%016llx%08llx",
		 kind == API_CHAT ? "chatcmpl-" : kind == API_RESPONSES ? "resp_" : "cmpl-",
		 (unsigned long long)(wall_sec() * 1e6), (unsigned long long)++s->n_req);
	snprintf(r->who, sizeof(r->who), "%s", who ? who : "");
	r->next = s->active;
	if (s->active)
		s->active->prev = r;
	s->active = r;
	s->n_active++;
	watch_client(r);	/* a client that leaves while its prompt is tokenized is seen */
	if (len <= HTTP_PREP_INLINE_BYTES) {
		/* a few ms at most: done here, and not queued behind big prompts */
		struct api_err e;
		int rc = kind == API_RESPONSES ? api_responses_parse(j, s->tok, &s->lim, &r->api, &e)
					       : api_parse(kind, j, s->tok, &s->lim, &r->api, &e);
		cJSON_Delete(j);
		prepared(r, rc, &e);
	} else if (http_prep_submit(s, r, j, kind, prepared) < 0) {
		cJSON_Delete(j);
		gen_fail(r, 500, "out of memory", NULL);
	}
}

/* Loop thread: r's api_parse() finished with rc (and *e when rc < 0):
 * submits every choice to the engine and starts a stream. */
static void prepared(struct hreq *r, int rc, const struct api_err *e)
{
	struct srv *s = r->srv;
	enum api_kind kind = r->kind;
	struct evhttp_request *req = r->req;

	if (r->gone) {		/* the client left while its request was prepared */
		maybe_free(r);
		return;
	}
	if (rc < 0) {
		gen_fail(r, e->status ? e->status : 400, e->msg, e->param);
		return;
	}
	if (atomic_load(&s->state) == SRV_DRAINING) {
		/* prepared after SIGTERM: it would only wait; retry elsewhere */
		gen_fail(r, 503, "the server is shutting down", NULL);
		return;
	}
	r->stream = r->api.stream;
	r->n_choices = r->api.n_prompts * r->api.n;
	r->ch = calloc((size_t)r->n_choices, sizeof(*r->ch));
	if (!r->ch) {
		r->n_choices = 0;
		gen_fail(r, 500, "out of memory", NULL);
		return;
	}

	for (int i = 0; i < r->n_choices; i++) {
		struct choice *c = &r->ch[i];
		struct eng_sampling smp = r->api.smp;
		const struct api_prompt *p;
		char err[200] = "";

		c->r = r;
		c->index = i;
		c->prompt = i / r->api.n;
		p = &r->api.prompts[c->prompt];
		if (r->api.echo)
			c->text_off = api_utf8_chars(p->text, p->text_len);	/* streaming offsets count the echo */
		if (smp.has_seed)
			smp.seed += (uint64_t)(i % r->api.n);
		rc = eng_submit(s->eng, p->ids, p->n_ids, &smp, c, &c->eng_id, err, sizeof(err));
		if (rc < 0) {
			if (rc == ST_EFULL)
				gen_fail(r, 429, "the server is busy: the waiting queue is full", NULL);
			else if (rc == ST_EINVAL)
				gen_fail(r, 400, err[0] ? err : "invalid request",
					 kind == API_CHAT ? "messages" : kind == API_RESPONSES ? "input" : "prompt");
			else
				gen_fail(r, 500, "the request could not be queued", NULL);
			return;
		}
		c->submitted = 1;
		r->n_submitted++;
	}
	if (r->stream) {
		struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
		evhttp_add_header(oh, "Content-Type", r->api.kind == API_GENERATE ? "application/x-ndjson"
										 : "text/event-stream");
		evhttp_add_header(oh, "Cache-Control", "no-cache");
		evhttp_add_header(oh, "X-Request-Id", r->id);
		evhttp_send_reply_start(req, 200, "OK");
		r->started = 1;
		if (kind == API_RESPONSES) {
			struct api_rsp p;
			char msg_id[48];
			rsp_of(r, &p, msg_id, sizeof(msg_id), 0);
			if (rsp_edge(r, 0, &p) < 0)
				stream_oom(r);
		} else if (kind == API_CHAT) {
			struct api_meta m;
			struct api_out o;
			meta_of(r, &m);
			for (int i = 0; i < r->n_choices; i++) {
				memset(&o, 0, sizeof(o));
				o.index = i;
				o.text = "";
				sb_reset(&s->scratch);
				api_chunk_json(&s->scratch, &m, &o, 1);
				if (s->scratch.oom) {
					stream_oom(r);
					return;
				}
				send_event(r, sb_cstr(&s->scratch), s->scratch.len);
			}
		}
	}
}
