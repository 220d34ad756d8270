/*
 * http.h - the types shared by the HTTP front of `serve` (libevent evhttp):
 * the server (struct srv), a generation request (struct hreq) and its
 * choices. Types and constants only; each http_*.c declares its functions
 * in its own header:
 *   http_server.h  init/run/release, routing, the small routes, signals, drain
 *   http_gen.h     generation requests: engine submission, output, replies
 *   http_prep.h    api_parse of large bodies on worker threads
 *   http_util.h    replying, errors, bodies, the access log
 * Calls go one way: http_server -> http_gen -> http_prep (which reports
 * back through a function pointer), http_server and http_gen -> http_util
 * -> metrics; none of them calls http_server.
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
#include "common/sbuf.h"
#include "engine/engine.h"
#include "service/api/api.h"
#include "service/config.h"

struct auth;
struct gcp_project;

enum srv_state { SRV_LOADING = 0, SRV_WARMING, SRV_READY, SRV_DRAINING, SRV_FAILED };

/* Output of one choice between two loop wake-ups (or all of it). */
struct outbuf {
	struct sbuf text;
	int n, cap;
	int *tokens;
	float *lp;
	struct eng_logprob *top;	/* [cap][ENG_MAX_LOGPROBS] */
	int n_top;
	int oom;			/* an append failed: tokens or text are missing */
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
	int n_prompt, n_cached, n_gen;
	double t_queued, t_sched, t_first, t_done;
	int on_ready;
	struct choice *next_ready;
	/* loop side */
	struct outbuf all;		/* non-streaming: everything */
	struct outbuf work;		/* streaming: what this wake-up sends */
	int batch_final;		/* final event seen in this wake-up */
	size_t text_off;		/* streaming completions logprobs text_offset */
	int echoed;			/* streaming echo: the prompt went out */
	double t_last_tok;
	int n_seen;			/* tokens taken from pend so far */
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
	int prompt_tokens, completion_tokens, cached_tokens;
	int seq;			/* /v1/responses stream: the next event's sequence_number */
	size_t sent;			/* streamed body bytes (the access log's responseSize) */
	enum api_kind kind;
	int prepping;			/* a prep worker owns r->api (http_prep.c); not freed */
	int oom;			/* a reply could not be built: ends as a 500 error */
	int refused;			/* answered with an error before it ran (4xx/5xx):
					 * its cancelled choices are not finished requests */
};

#define HTTP_PREP_THREADS 2		/* request preparation workers (http_prep.c) */
#define HTTP_PREP_INLINE_BYTES 16384	/* bodies up to this are prepared on the loop thread */

struct prep_job;

struct srv {
	const struct srv_config *cfg;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct http_conns *conns;	/* every client connection (http_conn.c) */
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
	const char *weights_verified;	/* ld_model.verified (static string), set once loaded */
	char fail_msg[1024];

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
	/* loop thread: http_gen.c builds one reply body or stream chunk here,
	 * sends it and is done with it; nothing else writes it */
	struct sbuf scratch;
	struct sbuf log_line;		/* loop thread: http_access_log's fields, its own */
	/* request preparation off the loop thread (http_prep.c) */
	pthread_t prep_threads[HTTP_PREP_THREADS];
	int n_prep_threads;
	pthread_mutex_t prep_mu;
	pthread_cond_t prep_cv;
	struct prep_job *prep_in, *prep_in_tail;	/* queued for a worker */
	struct prep_job *prep_done, *prep_done_tail;	/* parsed, for the loop thread */
	int prep_stop;
	struct event *prep_ev;				/* the loop takes prep_done */
	struct gcp_project *project;	/* the project id of trace fields (gcp_project.h) */
};

#endif
