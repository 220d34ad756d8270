/*
 * http.h - the HTTP front of `serve` (libevent evhttp), shared by the
 * http_*.c files. Not a public API: cmd_serve.c uses http_srv_*.
 *
 * Threads: the loop thread owns every evhttp object, all of struct hreq,
 * the metrics and the access log. The engine thread only calls
 * http_on_output(), which appends to a choice's pending buffers under
 * srv->q_mu, links the choice on the ready list and event_active()s
 * srv->wake. The loader thread (cmd_serve.c) publishes the engine and
 * tokenizer, then sets srv->state with release order and wakes the loop.
 *
 * Lifetime of a generation request (struct hreq): created by a POST
 * handler, owns its choices; freed on the loop thread once (a) every
 * submitted choice had its final engine event and (b) the HTTP side is
 * finished (reply sent, or the client went away and evhttp let go of it).
 */
#ifndef GR_SERVICE_HTTP_H
#define GR_SERVICE_HTTP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>

#include "common/load_progress.h"
#include "service/api/api.h"
#include "service/auth/auth.h"
#include "service/config.h"
#include "engine/engine.h"
#include "common/sbuf.h"

enum srv_state { SRV_LOADING = 0, SRV_WARMING, SRV_READY, SRV_DRAINING, SRV_FAILED };

/* Output of one choice between two loop wake-ups (or all of it). */
struct outbuf {
	struct sbuf text;
	int n, cap;
	int *tokens;
	float *lp;
	struct eng_logprob *top;	/* [cap][ENG_MAX_LOGPROBS] */
	int n_top;
};

struct hreq;

struct choice {
	struct hreq *r;
	int index;			/* OpenAI choice index */
	int prompt;			/* which prompt */
	uint64_t eng_id;
	int submitted, final;
	/* engine side, under srv->q_mu */
	struct outbuf pend;
	int pend_final;
	enum eng_finish finish;
	char error[200];
	int n_prompt, n_gen;
	double t_queued, t_first, t_done;
	int on_ready;
	struct choice *next_ready;
	/* loop side */
	struct outbuf all;		/* non-streaming: everything */
	struct outbuf work;		/* streaming: what this wake-up sends */
	int batch_final;		/* final event seen in this wake-up */
	size_t text_off;		/* streaming completions logprobs text_offset */
	int echoed;			/* streaming echo: the prompt went out */
	double t_last_tok;
};

struct hreq {
	struct srv *srv;
	struct evhttp_request *req;	/* NULL once evhttp no longer has it for us */
	struct evhttp_connection *conn;
	struct event *eof_ev;		/* watches the socket for a client that left */
	struct hreq *prev, *next;	/* srv->active list */
	struct api_req api;
	const char *route;
	char id[40];
	long created;
	double t_start;
	int stream, started, replied, gone;
	int n_choices, n_final, n_submitted;
	struct choice *ch;
	char who[160];
	int prompt_tokens, completion_tokens;
	enum api_kind kind;
	int prepping;			/* a prep worker owns r->api (http_prep.c); not freed */
};

#define HTTP_PREP_THREADS 2		/* request preparation workers (http_prep.c) */
#define HTTP_PREP_INLINE_BYTES 16384	/* bodies up to this are prepared on the loop thread */

struct prep_job;

struct srv {
	const struct srv_config *cfg;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct auth *auth;
	const char *model_name;

	_Atomic int state;
	_Atomic int published;		/* 1 once the fields below are set (loader thread) */
	/* published by the loader thread before state >= SRV_READY */
	struct engine *eng;
	struct tokenizer *tok;
	struct api_limits lim;
	struct ld_progress progress;
	double t_start, t_ready, tokenizer_s, warmup_s;
	char fail_msg[256];

	pthread_mutex_t q_mu;
	struct choice *ready_head, *ready_tail;
	struct event *wake;		/* engine output and loader state changes */
	struct choice **batch;		/* loop thread: choices taken in one wake-up */
	int batch_cap;
	struct event *sig_term, *sig_int, *tick;
	double drain_deadline;
	int exit_code, cancelled_all;

	struct hreq *active;		/* live generation requests */
	int n_active;
	int n_sending;			/* replies handed to evhttp, not yet written out */
	uint64_t n_req;
	struct sbuf scratch;		/* loop thread: response building */
	/* request preparation off the loop thread (http_prep.c) */
	pthread_t prep_threads[HTTP_PREP_THREADS];
	int n_prep_threads;
	pthread_mutex_t prep_mu;
	pthread_cond_t prep_cv;
	struct prep_job *prep_in, *prep_in_tail;	/* queued for a worker */
	struct prep_job *prep_done, *prep_done_tail;	/* parsed, for the loop thread */
	int prep_stop;
	struct event *prep_ev;				/* the loop takes prep_done */
	const char *project;		/* GOOGLE_CLOUD_PROJECT or NULL */
};

/* http_server.c */
int http_srv_init(struct srv *s, const struct srv_config *cfg, const char *model_name);
/* Runs the loop until drained or failed; returns the process exit status. */
int http_srv_run(struct srv *s);
void http_srv_release(struct srv *s);
/* Any thread: wake the loop (state change). */
void http_srv_wake(struct srv *s);

/* http_util.c */
void http_reply(struct srv *s, struct evhttp_request *req, const char *route, int status,
		const char *ctype, const char *body, size_t len, double t0, const char *who,
		int tin, int tout);
void http_error(struct srv *s, struct evhttp_request *req, const char *route, int status,
		const char *msg, const char *param, double t0);
void http_access_log(struct srv *s, struct evhttp_request *req, const char *route, int status,
		     double t0, const char *who, int tin, int tout, const char *rid);
const char *http_method_name(enum evhttp_cmd_type m);
/* Counts req in srv->n_sending until it is written out (drain waits for it). */
void http_track_send(struct srv *s, struct evhttp_request *req);
/* Reads the body: 0, or an error already answered (413/400) and -1. */
int http_read_body(struct srv *s, struct evhttp_request *req, const char *route, double t0,
		   char **body, size_t *len);
/* Parses a whole body as JSON: NULL (400 answered) on bad JSON, trailing
 * bytes, or a string with U+0000 (cJSON would cut it short silently). */
cJSON *http_parse_json(struct srv *s, struct evhttp_request *req, const char *route, double t0,
		       const char *body, size_t len);

/* http_prep.c: api_parse() of generation requests on worker threads */
int http_prep_start(struct srv *s);
/* Loop thread: queues r (sets r->prepping) with its parsed body (the job frees it). */
int http_prep_submit(struct srv *s, struct hreq *r, cJSON *body, enum api_kind kind);
/* Joins the workers and drops what is queued (before the requests are freed). */
void http_prep_stop(struct srv *s);

/* http_gen.c */
/* Loop thread: r's api_parse() finished with rc (and e when rc < 0). */
void http_gen_prepared(struct hreq *r, int rc, const struct api_err *e);
void http_on_output(const struct eng_output *o);	/* engine thread */
void http_drain_ready(struct srv *s);			/* loop thread */
void http_handle_generate(struct srv *s, struct evhttp_request *req, enum api_kind kind,
			  const char *route, double t0, const char *who);
void http_cancel_all(struct srv *s);

#endif
