/*
 * http_server.c - the evhttp server of `serve`: bind, route, /health,
 * /metrics, /v1/models, /version, /tokenize, /detokenize, signals and
 * graceful drain. Generation routes live in http_gen.c.
 *
 * State machine (srv->state): LOADING -> WARMING -> READY -> DRAINING, or
 * LOADING/WARMING -> FAILED. Generation and tokenizer routes answer 503
 * until READY and again while DRAINING; /health reports progress. On
 * SIGTERM/SIGINT running requests get --shutdown-timeout seconds, then are
 * cancelled; the loop exits once none is left (exit status 0). A failed
 * load answers /health 500 for about a second, then exits with status 1.
 */
#include "service/http/http_server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "common/version.h"
#include "service/api/api_chat.h"
#include "service/auth/auth.h"
#include "service/auth/gcp_project.h"
#include "service/http/http_conn.h"
#include "service/http/http_gen.h"
#include "service/http/http_prep.h"
#include "service/http/http_util.h"
#include "service/http/metrics.h"
#include "tokenizer/tokenizer.h"

#define FAIL_LINGER_S 1.0
#define DRAIN_ABORT_GRACE_S 1.0
#define ACCEPT_PAUSE_US 100000	/* out of descriptors: stop accepting this long */
#define ACCEPT_WARN_EVERY_S 10.0
#define LISTEN_BACKLOG 4096	/* the kernel caps it at net.core.somaxconn */
#define FD_RESERVE 64		/* descriptors kept from the connection cap: model files, logs, ... */
#define URI_MAX 8192		/* a longer request line is answered 414 */
#define HEADERS_MAX (64 * 1024)	/* larger headers are answered 431 */
#define HEADERS_MAX_LINES 1000	/* more header lines are answered 431 */
#define HEADERS_HARD_MAX (1024 * 1024)	/* evhttp's own limit: beyond it, its HTML 413 */

enum route_flags { R_AUTH = 1, R_READY = 2 };

struct route {
	const char *path;
	enum evhttp_cmd_type method;
	int flags;
	void (*fn)(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who);
};

static void h_health(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	struct sbuf sb;
	int st = atomic_load(&s->state), status = 503;

	(void)who;
	sb_init(&sb);
	if (st == SRV_READY || st == SRV_DRAINING) {
		/* which checks the weights passed: "crc32c-manifest", "object-crc32c" or "sizes-only" */
		status = st == SRV_READY ? 200 : 503;
		sb_printf(&sb, "{\"status\":\"%s\",\"weights_verified\":\"%s\"}", st == SRV_READY ? "ok" : "draining",
			  s->weights_verified ? s->weights_verified : "unknown");
	} else if (st == SRV_FAILED) {
		status = 500;
		sb_puts(&sb, "{\"status\":\"failed\",\"error\":");
		sb_json_str(&sb, s->fail_msg);
		sb_putc(&sb, '}');
	} else {
		uint64_t done = atomic_load(&s->progress.bytes_done);
		uint64_t total = atomic_load(&s->progress.bytes_total);
		double el = now_sec() - s->t_start;
		double gbps = el > 0 ? (double)done / el / 1e9 : 0;
		double eta = (gbps > 0 && total >= done) ? (double)(total - done) / (gbps * 1e9) : -1;
		sb_printf(&sb, "{\"status\":\"%s\",\"bytes_loaded\":%llu,\"bytes_total\":%llu,"
			       "\"gbps\":%.3f,\"eta_s\":", st == SRV_WARMING ? "warming_up" : "loading",
			  (unsigned long long)done, (unsigned long long)total, gbps);
		if (eta >= 0)
			sb_printf(&sb, "%.1f", eta);
		else
			sb_puts(&sb, "null");
		sb_printf(&sb, ",\"elapsed_s\":%.1f}", el);
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	http_reply_sb(s, req, route, status, "application/json", &sb, t0, NULL, -1, 0);
	sb_release(&sb);
}

static void h_metrics(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	struct met_snapshot snap;
	struct sbuf sb;
	int st = atomic_load(&s->state);

	memset(&snap, 0, sizeof(snap));
	if (atomic_load(&s->published) && s->eng) {
		snap.have_engine = 1;
		eng_get_stats(s->eng, &snap.eng);
		snap.plan = eng_mem_plan(s->eng);
	}
	snap.ready = st == SRV_READY;
	snap.load = &s->progress;
	snap.tokenizer_s = s->tokenizer_s;
	snap.warmup_s = s->warmup_s;
	snap.load_error = st == SRV_FAILED ? s->fail_msg : NULL;
	sb_init(&sb);
	met_render(&sb, &snap);
	http_reply_sb(s, req, route, 200, "text/plain; version=0.0.4; charset=utf-8", &sb, t0, who, -1, 0);
	sb_release(&sb);
}

static void h_models(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	struct sbuf sb;
	sb_init(&sb);
	sb_puts(&sb, "{\"object\":\"list\",\"data\":[{\"id\":");
	sb_json_str(&sb, s->model_name);
	sb_printf(&sb, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"gemma-run\",\"root\":",
		  (long)(wall_sec() - (now_sec() - s->t_start)));
	sb_json_str(&sb, s->cfg->model ? s->cfg->model : "");
	sb_printf(&sb, ",\"parent\":null,\"max_model_len\":%d}]}", s->lim.max_model_len);
	http_reply_sb(s, req, route, 200, "application/json", &sb, t0, who, -1, 0);
	sb_release(&sb);
}

static void h_version(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	static const char body[] = "{\"version\":\"" GR_VERSION "\"}";
	http_reply(s, req, route, 200, "application/json", body, sizeof(body) - 1, t0, who, -1, 0);
}

static cJSON *read_json(struct srv *s, struct evhttp_request *req, const char *route, double t0)
{
	char *body;
	size_t len;
	cJSON *j;

	if (http_read_body(s, req, route, t0, &body, &len) < 0)
		return NULL;
	j = http_parse_json(s, req, route, t0, body, len);
	free(body);
	if (!j)
		return NULL;
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		http_error(s, req, route, 400, "the request body is not a JSON object", NULL, t0);
		return NULL;
	}
	return j;
}

static void h_tokenize(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	cJSON *j = read_json(s, req, route, t0);
	const cJSON *p, *m, *a;
	char *text = NULL;
	int *ids = NULL, n = 0, add_special = 1, rc;
	struct api_err e;
	struct sbuf sb;

	if (!j)
		return;
	memset(&e, 0, sizeof(e));
	p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
	m = cJSON_GetObjectItemCaseSensitive(j, "messages");
	a = cJSON_GetObjectItemCaseSensitive(j, "add_special_tokens");
	if (a && !cJSON_IsBool(a)) {
		http_error(s, req, route, 400, "add_special_tokens must be a boolean", "add_special_tokens", t0);
		goto out;
	}
	if (a)
		add_special = cJSON_IsTrue(a);
	if (cJSON_IsString(p)) {
		rc = tok_encode(s->tok, p->valuestring, strlen(p->valuestring), &ids, &n);
	} else if (m) {
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "add_generation_prompt");
		if (api_chat_render(m, g ? cJSON_IsTrue(g) : 1, &text, &e) < 0) {
			http_error(s, req, route, e.status ? e.status : 400, e.msg, e.param, t0);
			goto out;
		}
		add_special = 0;	/* the template carries <bos> */
		rc = tok_encode(s->tok, text, strlen(text), &ids, &n);
	} else {
		http_error(s, req, route, 400, "prompt (a string) or messages is required", "prompt", t0);
		goto out;
	}
	if (rc < 0) {
		http_error(s, req, route, 400, "the text could not be tokenized", "prompt", t0);
		goto out;
	}
	sb_init(&sb);
	int bos = add_special && s->lim.bos_id >= 0;
	sb_printf(&sb, "{\"count\":%d,\"max_model_len\":%d,\"tokens\":[", n + bos, s->lim.max_model_len);
	if (bos)
		sb_printf(&sb, "%d%s", s->lim.bos_id, n ? "," : "");
	for (int i = 0; i < n; i++)
		sb_printf(&sb, "%s%d", i ? "," : "", ids[i]);
	sb_puts(&sb, "],\"token_strs\":null}");
	http_reply_sb(s, req, route, 200, "application/json", &sb, t0, who, n + bos, 0);
	sb_release(&sb);
out:
	free(ids);
	free(text);
	cJSON_Delete(j);
}

static void h_detokenize(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	cJSON *j = read_json(s, req, route, t0);
	const cJSON *t, *x;
	int *ids = NULL, n = 0;
	char *text = NULL;
	size_t len = 0;
	struct sbuf sb;

	if (!j)
		return;
	t = cJSON_GetObjectItemCaseSensitive(j, "tokens");
	if (!cJSON_IsArray(t)) {
		http_error(s, req, route, 400, "tokens must be a list of token ids", "tokens", t0);
		goto out;
	}
	ids = malloc(sizeof(int) * (size_t)(cJSON_GetArraySize(t) + 1));
	if (!ids) {
		http_error(s, req, route, 500, "out of memory", NULL, t0);
		goto out;
	}
	cJSON_ArrayForEach(x, t) {
		/* range first: converting an out-of-range double to int is undefined */
		if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble < s->lim.vocab_size) ||
		    x->valuedouble != (double)(int)x->valuedouble) {
			http_error(s, req, route, 400, "tokens must be token ids of this model", "tokens", t0);
			goto out;
		}
		ids[n++] = (int)x->valuedouble;
	}
	if (tok_decode(s->tok, ids, n, 0, &text, &len) < 0) {
		http_error(s, req, route, 400, "tokens could not be decoded", "tokens", t0);
		goto out;
	}
	sb_init(&sb);
	sb_puts(&sb, "{\"prompt\":");
	sb_json_strn(&sb, text, len);
	sb_putc(&sb, '}');
	http_reply_sb(s, req, route, 200, "application/json", &sb, t0, who, n, 0);
	sb_release(&sb);
out:
	free(ids);
	free(text);
	cJSON_Delete(j);
}

static void h_completions(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	http_handle_generate(s, req, API_COMPLETION, route, t0, who);
}

static void h_chat(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	http_handle_generate(s, req, API_CHAT, route, t0, who);
}

static void h_responses(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	http_handle_generate(s, req, API_RESPONSES, route, t0, who);
}

static void h_generate(struct srv *s, struct evhttp_request *req, const char *route, double t0, const char *who)
{
	http_handle_generate(s, req, API_GENERATE, route, t0, who);
}

static const struct route routes[] = {
	{ "/health", EVHTTP_REQ_GET, 0, h_health },
	{ "/metrics", EVHTTP_REQ_GET, 0, h_metrics },
	{ "/version", EVHTTP_REQ_GET, 0, h_version },
	{ "/v1/models", EVHTTP_REQ_GET, R_AUTH | R_READY, h_models },
	{ "/v1/completions", EVHTTP_REQ_POST, R_AUTH | R_READY, h_completions },
	{ "/v1/chat/completions", EVHTTP_REQ_POST, R_AUTH | R_READY, h_chat },
	{ "/v1/responses", EVHTTP_REQ_POST, R_AUTH | R_READY, h_responses },
	{ "/generate", EVHTTP_REQ_POST, R_AUTH | R_READY, h_generate },
	{ "/tokenize", EVHTTP_REQ_POST, R_AUTH | R_READY, h_tokenize },
	{ "/detokenize", EVHTTP_REQ_POST, R_AUTH | R_READY, h_detokenize },
};

/* An error that also closes the connection: what follows on it cannot be
 * trusted to be framed as the client meant. */
static void refuse_close(struct srv *s, struct evhttp_request *req, int status, const char *msg, double t0)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	http_conn_close_soon(s->conns, evhttp_request_get_connection(req));
	http_error(s, req, "other", status, msg, NULL, t0);
}

/*
 * What evhttp lets through but we refuse: a raw NUL byte in the request
 * line or headers (evhttp cuts the value there: "Bearer key\0junk" would be
 * "Bearer key"), conflicting framings (two different Content-Length, or
 * Content-Length with Transfer-Encoding: request smuggling), an over-long
 * URI or header block, and CONNECT/TRACE. Returns 1 when answered.
 */
static int refuse_request(struct srv *s, struct evhttp_request *req, double t0)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *uri = evhttp_request_get_uri(req), *cl = NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	struct evkeyval *kv;
	size_t hbytes = 0;
	int te = 0, status;
	const char *why;

	if ((status = http_conn_busy(s->conns, evhttp_request_get_connection(req), &why))) {
		refuse_close(s, req, status, why, t0);
		return 1;
	}
	for (kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
		hbytes += strlen(kv->key) + strlen(kv->value) + 4;
		if (!strcasecmp(kv->key, "Transfer-Encoding"))
			te = 1;
		if (strcasecmp(kv->key, "Content-Length"))
			continue;
		if (cl && strcmp(cl, kv->value)) {
			refuse_close(s, req, 400, "conflicting Content-Length headers", t0);
			return 1;
		}
		cl = kv->value;
	}
	if (cl && te) {
		refuse_close(s, req, 400, "Content-Length together with Transfer-Encoding", t0);
		return 1;
	}
	if (uri && strlen(uri) > URI_MAX) {
		refuse_close(s, req, 414, "the request URI is too long", t0);
		return 1;
	}
	if (hbytes > HEADERS_MAX) {
		refuse_close(s, req, 431, "the request headers are too large", t0);
		return 1;
	}
	if (m == EVHTTP_REQ_CONNECT || m == EVHTTP_REQ_TRACE) {
		refuse_close(s, req, 501, "method not implemented", t0);
		return 1;
	}
	return 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct srv *s = arg;
	double t0 = now_sec();
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct route *rt = NULL;
	int path_found = 0;
	char who[160] = "";

	if (refuse_request(s, req, t0))
		return;
	if (!path || !*path)
		path = "/";
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (strcmp(routes[i].path, path) != 0)
			continue;
		path_found = 1;
		if (routes[i].method == m || (m == EVHTTP_REQ_HEAD && routes[i].method == EVHTTP_REQ_GET))
			rt = &routes[i];
	}
	if (!path_found) {
		http_error(s, req, "other", 404, "not found", NULL, t0);
		return;
	}
	if (!rt) {
		for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
			if (!strcmp(routes[i].path, path)) {
				evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
						  routes[i].method == EVHTTP_REQ_GET ? "GET, HEAD" : "POST");
				http_error(s, req, routes[i].path, 405, "method not allowed", NULL, t0);
				return;
			}
		return;
	}
	int need_auth = (rt->flags & R_AUTH) || (rt->fn == h_metrics && s->cfg->metrics_auth);
	if (need_auth && auth_enabled(s->auth)) {
		struct evkeyvalq *h = evhttp_request_get_input_headers(req);
		int v = auth_check(s->auth, evhttp_find_header(h, "Authorization"),
				   evhttp_find_header(h, "X-Serverless-Authorization"), who, sizeof(who));
		if (v == 401) {
			http_error(s, req, rt->path, 401, "invalid or missing credentials", NULL, t0);
			return;
		}
		if (v) {
			http_error(s, req, rt->path, 403, "the caller is not allowed", NULL, t0);
			return;
		}
	}
	if (rt->flags & R_READY) {
		int st = atomic_load(&s->state);
		if (st != SRV_READY) {
			http_error(s, req, rt->path, 503,
				   st == SRV_DRAINING ? "the server is shutting down" :
				   st == SRV_FAILED ? "the model failed to load" : "the model is loading",
				   NULL, t0);
			return;
		}
	}
	rt->fn(s, req, rt->path, t0, who[0] ? who : NULL);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;
	(void)fd;
	(void)what;
	http_drain_ready(s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct srv *s = arg;
	int st = atomic_load(&s->state);
	(void)what;
	if (st == SRV_DRAINING) {
		log_info("signal %d again: still draining", (int)sig);
		return;
	}
	log_info("signal %d: draining, %d request(s) running, %.1f s to finish", (int)sig, s->n_active,
		 s->cfg->shutdown_timeout);
	atomic_store(&s->state, SRV_DRAINING);
	if (st == SRV_READY && atomic_load(&s->published) && s->eng) {
		/* not started yet: answered 503 + Retry-After at once (Cloud Run
		 * retries them on another instance); running ones finish */
		int n = eng_cancel_waiting(s->eng);
		if (n)
			log_info("signal %d: %d waiting request(s) answered 503", (int)sig, n);
	}
	s->drain_deadline = now_sec() + s->cfg->shutdown_timeout;
	if (st != SRV_READY)
		s->drain_deadline = now_sec();	/* nothing runs while loading */
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;
	int st = atomic_load(&s->state);
	double now = now_sec();
	(void)fd;
	(void)what;
	if (st == SRV_FAILED) {
		if (!s->drain_deadline)
			s->drain_deadline = now + FAIL_LINGER_S;
		if (now >= s->drain_deadline) {
			s->exit_code = 1;
			event_base_loopexit(s->base, NULL);
		}
		return;
	}
	if (st != SRV_DRAINING)
		return;
	http_drain_ready(s);
	if (s->n_active == 0 && s->n_sending <= 0) {
		log_info("drained; exiting");
		event_base_loopexit(s->base, NULL);
		return;
	}
	if (now >= s->drain_deadline && !s->cancelled_all) {
		log_warn("shutdown timeout: cancelling %d request(s)", s->n_active);
		http_cancel_all(s);
		s->cancelled_all = 1;
	}
	if (now >= s->drain_deadline + DRAIN_ABORT_GRACE_S) {
		log_warn("exiting with %d request(s) unfinished", s->n_active);
		event_base_loopexit(s->base, NULL);
	}
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evconnlistener_enable(arg);
}

/*
 * accept() failed with other than a retriable error (EMFILE, ENFILE,
 * ENOBUFS): the listening socket stays readable, so without this libevent
 * retries at once, spinning a core and writing a warning per attempt.
 * Pause accepting briefly; waiting clients stay in the kernel's backlog.
 * (The callback's argument is evhttp's, so the state here is static: one
 * server per process, loop thread only.)
 */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	static double warned;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, ACCEPT_PAUSE_US };
	double now = now_sec();

	(void)arg;
	if (warned == 0 || now - warned >= ACCEPT_WARN_EVERY_S) {
		warned = now;
		log_warn("cannot accept connections: %s; pausing accept for %d ms",
			 evutil_socket_error_to_string(err), ACCEPT_PAUSE_US / 1000);
	}
	evconnlistener_disable(lev);
	if (event_base_once(evconnlistener_get_base(lev), -1, EV_TIMEOUT, on_accept_resume, lev, &tv) < 0)
		evconnlistener_enable(lev);
}

/* Binds host:port with a listen backlog of LISTEN_BACKLOG (evhttp's own
 * bind uses 128: a burst of connections would be refused by the kernel). */
static int listen_on(struct srv *s, const char *host, int port)
{
	struct evutil_addrinfo hints, *ai = NULL;
	struct evconnlistener *lev;
	char ps[16];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
	snprintf(ps, sizeof(ps), "%d", port);
	if ((rc = evutil_getaddrinfo(host, ps, &hints, &ai)) != 0)
		return log_err(ST_EIO, "cannot resolve '%s': %s", host, evutil_gai_strerror(rc));
	lev = evconnlistener_new_bind(s->base, NULL, NULL,
				      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
				      LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (!lev)
		return log_err(ST_EIO, "cannot listen on %s:%d: %s", host, port,
			       evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (!(s->sock = evhttp_bind_listener(s->http, lev))) {
		evconnlistener_free(lev);
		return log_err(ST_ENOMEM, "libevent: cannot serve on %s:%d", host, port);
	}
	return 0;
}

void http_srv_wake(struct srv *s)
{
	event_active(s->wake, EV_READ, 0);
}

int http_srv_init(struct srv *s, const struct srv_config *cfg, const char *model_name)
{
	static int threads_on;
	struct timeval tv = { 0, 50000 };
	int rc;

	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->model_name = model_name;
	s->t_start = now_sec();
	if (gcp_project_create(&s->project) < 0)
		return log_err(ST_ENOMEM, "out of memory");
	s->lim.model_name = model_name;
	s->lim.bos_id = -1;
	s->lim.eot_id = -1;
	pthread_mutex_init(&s->q_mu, NULL);
	sb_init(&s->scratch);
	sb_init(&s->log_line);
	if (!threads_on && evthread_use_pthreads() < 0)
		return log_err(ST_ENOMEM, "libevent: no pthread support");
	threads_on = 1;
	if (!(s->base = event_base_new()) || !(s->http = evhttp_new(s->base)))
		return log_err(ST_ENOMEM, "libevent: cannot create the event base");
	/* our own 413 answers up to 4x the limit; evhttp refuses beyond that */
	evhttp_set_max_body_size(s->http, (ev_ssize_t)MIN((uint64_t)cfg->max_body_bytes * 4 + 65536,
							   (uint64_t)1 << 40));
	/* up to HEADERS_HARD_MAX evhttp hands the request over and we answer 431 */
	evhttp_set_max_headers_size(s->http, HEADERS_HARD_MAX);
	/* evhttp's own inactivity timeout now only bounds a client that stops
	 * reading a reply; reads have http_conn.c's deadlines */
	evhttp_set_timeout(s->http, 3600);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
					    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
					    EVHTTP_REQ_PATCH | EVHTTP_REQ_CONNECT | EVHTTP_REQ_TRACE);
	evhttp_set_gencb(s->http, on_request, s);
	long nofile = http_raise_nofile();
	struct http_conn_limits cl = {
		.header_s = cfg->header_timeout,
		.body_s = cfg->body_timeout,
		.idle_s = cfg->idle_timeout,
		.max_conns = cfg->max_connections,
		.screen = { .uri_max = URI_MAX, .head_max = HEADERS_MAX, .max_headers = HEADERS_MAX_LINES,
			    .body_max = MIN((uint64_t)cfg->max_body_bytes * 4 + 65536, (uint64_t)1 << 40) },
	};
	if (!cl.max_conns)
		cl.max_conns = nofile > 2 * FD_RESERVE ? (int)MIN(nofile - FD_RESERVE, 1 << 30) : FD_RESERVE;
	log_info("connections: at most %d open; header %.0f s, body %.0f s, idle %.0f s deadlines",
		 cl.max_conns, cl.header_s, cl.body_s, cl.idle_s);
	if ((rc = http_conns_create(s->base, s->http, &cl, &s->conns)) < 0)
		return rc;
	if ((rc = listen_on(s, cfg->host, cfg->port)) < 0)
		return rc;
	if (cfg->port == 0) {
		/* report the port the kernel chose (tests) */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		evutil_socket_t fd = evhttp_bound_socket_get_fd(s->sock);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET)
			log_info("listening on port %d", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(s->sock), on_accept_error);
	s->wake = event_new(s->base, -1, 0, on_wake, s);
	s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
	s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
	s->tick = event_new(s->base, -1, EV_PERSIST, on_tick, s);
	if (!s->wake || !s->sig_term || !s->sig_int || !s->tick)
		return log_err(ST_ENOMEM, "libevent: cannot create events");
	if ((rc = http_prep_start(s)) < 0)
		return rc;
	if ((rc = event_add(s->sig_term, NULL)) < 0 || (rc = event_add(s->sig_int, NULL)) < 0 ||
	    (rc = event_add(s->tick, &tv)) < 0)
		return log_err(ST_EIO, "libevent: cannot add events");
	log_info("listening on %s:%d", cfg->host, cfg->port);
	return 0;
}

int http_srv_run(struct srv *s)
{
	event_base_dispatch(s->base);
	return s->exit_code;
}

void http_srv_release(struct srv *s)
{
	http_prep_stop(s);	/* no worker may still write a request freed below */
	if (s->http)
		evhttp_free(s->http);
	/* evhttp_free closed every connection; close callbacks freed what they held */
	http_conns_destroy(s->conns);
	http_gen_free_all(s);
	if (s->wake)
		event_free(s->wake);
	if (s->sig_term)
		event_free(s->sig_term);
	if (s->sig_int)
		event_free(s->sig_int);
	if (s->tick)
		event_free(s->tick);
	if (s->base)
		event_base_free(s->base);
	free(s->batch);
	sb_release(&s->scratch);
	sb_release(&s->log_line);
	pthread_mutex_destroy(&s->q_mu);
	gcp_project_destroy(s->project);
	memset(s, 0, sizeof(*s));
}
