/*
 * http_conn.c - the server's client connections, tracked so that none can
 * hold a descriptor forever: a slow client (slowloris) is closed at its
 * header or body deadline, an idle keep-alive one at the idle deadline, and
 * at the connection cap a new connection closes the oldest one that is not
 * being answered, so a /health probe always finds room.
 *
 * libevent 2.1.12 has no per-phase timeouts nor a connection cap, and no
 * hook when evhttp frees a connection. So: evhttp's bufferevent callback
 * (evhttp_set_bevcb) creates each connection's bufferevent here; we keep
 * one reference to it, watch its input buffer, and learn
 * that evhttp freed it when its callbacks are all cleared (bufferevent_free
 * does that); the sweep then drops our reference, which closes the socket.
 * To close a connection we raise a read timeout on its bufferevent, which is
 * what evhttp's own timeout does: it frees the connection without an answer.
 *
 * Phases: HEAD (accept, or the first byte after a reply, to the blank line),
 * BODY (to the request handed over: on_request), BUSY (until the reply is
 * sent: no deadline, a generation may take minutes), IDLE (reply sent, no
 * byte yet). Loop thread only.
 *
 * The head is screened before evhttp sees it (libevent 2.1.12 answers what
 * it cannot parse with an HTML page, and accepts some ambiguous framings):
 * in HEAD the watch moves every byte that arrives out of the input buffer
 * into the connection's own buffer (evhttp, whose read callback runs after
 * the watch, finds nothing to parse). http_screen_head judges it as lines
 * complete; once the blank line is in, the bytes go back into the input
 * buffer unchanged and evhttp parses them as if just read. A chunked body
 * is held too, until its last chunk: evhttp then gets the same request with
 * a Content-Length body (libevent's chunk parser answers a malformed size
 * with an HTML 413, and refuses chunk extensions). A refused head
 * is replaced by a small synthetic request (REFUSED_HEAD): evhttp hands it
 * to the server, whose http_conn_busy() call learns the status and message
 * to answer with (JSON, then the connection closes). A head that begins
 * while bytes evhttp has not parsed wait in the buffer (pipelined behind
 * a body) cannot be held back whole: it goes to evhttp unscreened, checked
 * only for raw NUL bytes and by http_server.c's own checks.
 */
#include "service/http/http_conn.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/buffer.h>

#include "common/log.h"
#include "service/http/http_screen.h"
#include "common/status.h"
#include "common/util.h"

#define SWEEP_US 100000
#define CLOSE_SOON_S 0.3	/* a connection to close after its (small) reply */
#define REFUSED_HEAD "GET / HTTP/1.1\r\nHost: refused\r\n\r\n"

enum phase { P_HEAD, P_BODY, P_BUSY, P_IDLE };

struct conn {
	struct http_conns *cs;
	struct bufferevent *bev;	/* one reference ours */
	struct evbuffer_cb_entry *watch;
	enum phase phase;
	double t_phase;			/* when the phase began */
	char *head;			/* HEAD: the bytes held back from evhttp */
	size_t head_len, head_cap;
	int replaying;			/* putting bytes back: the watch ignores them */
	int body_hold;			/* a chunked body is held too, after head_end bytes */
	size_t head_end;
	struct http_chunks chunks;
	int unscreened;			/* this head went to evhttp directly */
	unsigned tail;			/* unscreened: the last bytes seen, for the blank line */
	int refuse;			/* the status to answer this request with (0: none) */
	const char *refuse_why;
	int closing;			/* a timeout was raised: evhttp frees it */
	int close_soon;			/* closed CLOSE_SOON_S after its request */
};

struct http_conns {
	struct http_conn_limits lim;
	struct event *sweep;
	struct conn **v;
	int n, cap;
	unsigned long long n_closed_deadline, n_closed_cap;
};

static double phase_limit(const struct http_conns *cs, enum phase p)
{
	switch (p) {
	case P_HEAD: return cs->lim.header_s;
	case P_BODY: return cs->lim.body_s;
	case P_IDLE: return cs->lim.idle_s;
	default: return -1;
	}
}

static void set_phase(struct conn *c, enum phase p)
{
	c->phase = p;
	c->t_phase = now_sec();
	c->tail = 0;
	if (p == P_HEAD || p == P_IDLE) {
		c->refuse = 0;
		c->refuse_why = NULL;
		c->unscreened = 0;
		c->head_len = 0;
		c->body_hold = 0;
	}
}

/* An unscreened head (see the top): find its end and raw NUL bytes. */
static void watch_unscreened(struct conn *c, struct evbuffer *buf, size_t n_added)
{
	struct evbuffer_ptr pos;
	struct evbuffer_iovec vec[8];
	size_t len = evbuffer_get_length(buf);
	int nv;

	if (n_added > len || evbuffer_ptr_set(buf, &pos, len - n_added, EVBUFFER_PTR_SET) < 0)
		return;
	nv = evbuffer_peek(buf, (ev_ssize_t)n_added, &pos, vec, ARRAY_SIZE(vec));
	for (int i = 0; i < nv && i < (int)ARRAY_SIZE(vec); i++) {
		const unsigned char *p = vec[i].iov_base;
		for (size_t k = 0; k < vec[i].iov_len; k++) {
			if (!p[k] && !c->refuse) {
				c->refuse = 400;
				c->refuse_why = "the request line or a header contains a NUL byte";
			}
			c->tail = (c->tail << 8) | p[k];
			if ((c->tail & 0xffff) == 0x0a0a || (c->tail & 0xffffff) == 0x0a0d0a) {
				c->phase = P_BODY;	/* headers complete; keep refuse */
				c->t_phase = now_sec();
				return;
			}
		}
	}
}

/* The end of the head held (just past its blank line), or 0. */
static size_t head_end(const char *p, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (p[i] == '\n' && (p[i - 1] == '\n' || (i >= 2 && p[i - 1] == '\r' && p[i - 2] == '\n')))
			return i + 1;
	return 0;
}

/* Hands bytes to evhttp as if they had just been read. */
static void replay(struct conn *c, struct evbuffer *buf, const void *p, size_t n)
{
	c->replaying = 1;
	evbuffer_add(buf, p, n);
	c->replaying = 0;
	c->head_len = 0;
	c->body_hold = 0;
	c->phase = P_BODY;
	c->t_phase = now_sec();
}

static void refuse(struct conn *c, struct evbuffer *buf, int status, const char *why)
{
	c->refuse = status;
	c->refuse_why = why;
	replay(c, buf, REFUSED_HEAD, sizeof(REFUSED_HEAD) - 1);
}

/* The whole chunked request held: hand evhttp the same request with a
 * plain Content-Length body (so evhttp never parses chunked framing),
 * followed by whatever came after it. */
static void replay_unchunked(struct conn *c, struct evbuffer *buf)
{
	const char *body = c->head + c->head_end;
	size_t rest = c->head_len - c->head_end - c->chunks.end;
	size_t hl = http_screen_unchunk_head(c->head, c->head_end, c->chunks.body_len, NULL, 0);
	size_t n = hl + c->chunks.body_len + rest;
	char *out = malloc(n ? n : 1);

	if (!out) {
		refuse(c, buf, 503, "out of memory");
		return;
	}
	http_screen_unchunk_head(c->head, c->head_end, c->chunks.body_len, out, hl);
	http_screen_dechunk(body, &c->chunks, out + hl);
	memcpy(out + hl + c->chunks.body_len, body + c->chunks.end, rest);
	replay(c, buf, out, n);
	free(out);
}

/* HEAD (and a chunked BODY): moves what arrived into c->head and judges it
 * (see the top). */
static void hold(struct conn *c, struct evbuffer *buf)
{
	const struct http_screen_limits *lim = &c->cs->lim.screen;
	size_t n = evbuffer_get_length(buf), skip = 0, end;
	const char *why;
	int status;

	if (c->head_len + n > c->head_cap) {
		size_t cap = MAX(c->head_cap * 2, MAX(c->head_len + n, (size_t)1024));
		char *p = realloc(c->head, cap);
		if (!p) {
			evbuffer_drain(buf, n);
			refuse(c, buf, 503, "out of memory");
			return;
		}
		c->head = p;
		c->head_cap = cap;
	}
	evbuffer_remove(buf, c->head + c->head_len, n);
	c->head_len += n;
	if (!c->body_hold) {
		/* empty lines before the request line are ignored (RFC 9112 2.2) */
		while (skip < c->head_len && (c->head[skip] == '\r' || c->head[skip] == '\n'))
			skip++;
		if (skip) {
			memmove(c->head, c->head + skip, c->head_len - skip);
			c->head_len -= skip;
		}
		end = head_end(c->head, c->head_len);
		if ((status = http_screen_head(c->head, end ? end : c->head_len, lim, &why))) {
			refuse(c, buf, status, why);
			return;
		}
		if (!end)
			return;
		if (!http_screen_is_chunked(c->head, end)) {
			replay(c, buf, c->head, c->head_len);
			return;
		}
		c->body_hold = 1;
		c->head_end = end;
		memset(&c->chunks, 0, sizeof(c->chunks));
		c->phase = P_BODY;
		c->t_phase = now_sec();
	}
	if ((status = http_screen_chunked(c->head + c->head_end, c->head_len - c->head_end, lim, &c->chunks,
					  &why))) {
		refuse(c, buf, status, why);
		return;
	}
	if (c->chunks.done)
		replay_unchunked(c, buf);
}

/* Bytes arrived (or were consumed). */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;

	if (c->replaying || !info->n_added || c->closing ||
	    (c->phase != P_HEAD && c->phase != P_IDLE && !c->body_hold))
		return;
	if (c->phase == P_IDLE)
		set_phase(c, P_HEAD);
	if (!c->head_len && evbuffer_get_length(buf) > info->n_added)
		c->unscreened = 1;
	if (c->unscreened)
		watch_unscreened(c, buf, info->n_added);
	else
		hold(c, buf);
}

static int conn_dead(const struct conn *c)
{
	bufferevent_data_cb r, w;
	bufferevent_event_cb ev;
	void *arg;

	bufferevent_getcb(c->bev, &r, &w, &ev, &arg);
	return !r && !w && !ev;
}

static void conn_drop(struct http_conns *cs, int i)
{
	struct conn *c = cs->v[i];

	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->watch);
	bufferevent_decref(c->bev);
	free(c->head);
	free(c);
	cs->v[i] = cs->v[--cs->n];
}

/* Closes cs->v[i] now: evhttp's error callback frees the connection, as at
 * its own timeout, and our reference goes, which closes the socket. Not
 * from inside evhttp's callbacks for that connection. Returns 1 when v[i]
 * was dropped (another connection is at i now). */
static int conn_close(struct http_conns *cs, int i)
{
	struct conn *c = cs->v[i];

	c->closing = 1;
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT, 0);
	if (!conn_dead(c))
		return 0;
	conn_drop(cs, i);
	return 1;
}

static void sweep(struct http_conns *cs)
{
	double now = now_sec();

	for (int i = 0; i < cs->n;) {
		struct conn *c = cs->v[i];
		double lim = c->close_soon ? CLOSE_SOON_S : phase_limit(cs, c->phase);
		if (conn_dead(c)) {
			conn_drop(cs, i);
			continue;
		}
		if (!c->closing && lim >= 0 && now - c->t_phase >= lim) {
			cs->n_closed_deadline++;
			log_debug("closing a connection: %s deadline (%.0f s) passed",
				  c->phase == P_HEAD ? "header" : c->phase == P_BODY ? "body" : "idle", lim);
			if (conn_close(cs, i))
				continue;
		}
		i++;
	}
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sweep(arg);
}

/* The connection not being answered (idle, or slow to send its request)
 * that has waited longest, or -1. */
static int oldest_waiting(const struct http_conns *cs)
{
	int old = -1;

	for (int i = 0; i < cs->n; i++) {
		const struct conn *c = cs->v[i];
		if (!c->closing && c->phase != P_BUSY && (old < 0 || c->t_phase < cs->v[old]->t_phase) &&
		    !conn_dead(c))
			old = i;
	}
	return old;
}

/* At the cap: close the connections that have waited longest without being
 * answered, a few at once (a burst of accepts must not reach the descriptor
 * limit before the sockets are closed). Busy ones are never cut. */
static void make_room(struct http_conns *cs)
{
	int live = http_conns_count(cs), k = MAX(1, cs->lim.max_conns / 64), old;

	if (live < cs->lim.max_conns)
		return;
	if (!cs->n_closed_cap++)
		log_warn("%d connections open (the cap): closing the oldest waiting ones for new ones", live);
	while (k-- > 0 && (old = oldest_waiting(cs)) >= 0)
		conn_close(cs, old);
}

static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
	struct http_conns *cs = arg;
	struct bufferevent *bev;
	struct conn *c;

	if (cs->n == cs->cap) {
		int cap = cs->cap ? 2 * cs->cap : 256;
		struct conn **v = realloc(cs->v, sizeof(*v) * (size_t)cap);
		if (!v)
			return NULL;	/* evhttp makes its own: untracked, still served */
		cs->v = v;
		cs->cap = cap;
	}
	if (cs->n >= cs->lim.max_conns)
		sweep(cs);	/* drop what evhttp freed since the last sweep */
	make_room(cs);
	/* the socket closes when our reference goes (at the next sweep): its
	 * descriptor cannot be reused while the freed bufferevent still
	 * watches it */
	if (!(bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)))
		return NULL;
	if (!(c = calloc(1, sizeof(*c)))) {
		bufferevent_free(bev);
		return NULL;
	}
	c->cs = cs;
	c->bev = bev;
	set_phase(c, P_HEAD);
	c->watch = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
	if (!c->watch) {
		free(c);
		bufferevent_free(bev);
		return NULL;
	}
	bufferevent_incref(bev);
	cs->v[cs->n++] = c;
	return bev;
}

static struct conn *conn_of(struct http_conns *cs, struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;

	if (!cs || !bev)
		return NULL;
	for (int i = cs->n - 1; i >= 0; i--)	/* the newest first */
		if (cs->v[i]->bev == bev)
			return cs->v[i];
	return NULL;
}

int http_conn_busy(struct http_conns *cs, struct evhttp_connection *evcon, const char **why)
{
	struct conn *c = conn_of(cs, evcon);
	int status;

	*why = NULL;
	if (!c)
		return 0;
	status = c->refuse;
	*why = c->refuse_why;
	set_phase(c, P_BUSY);
	return status;
}

void http_conn_idle(struct http_conns *cs, struct evhttp_connection *evcon)
{
	struct conn *c = conn_of(cs, evcon);

	if (c && c->phase == P_BUSY && !c->close_soon)
		set_phase(c, P_IDLE);
}

void http_conn_close_soon(struct http_conns *cs, struct evhttp_connection *evcon)
{
	struct conn *c = conn_of(cs, evcon);

	if (c) {
		c->close_soon = 1;
		c->t_phase = now_sec();
	}
}

int http_conns_count(const struct http_conns *cs)
{
	int n = 0;
	for (int i = 0; cs && i < cs->n; i++)
		n += !cs->v[i]->closing && !conn_dead(cs->v[i]);
	return n;
}

int http_conns_create(struct event_base *base, struct evhttp *http, const struct http_conn_limits *lim,
		      struct http_conns **out)
{
	struct timeval tv = { 0, SWEEP_US };
	struct http_conns *cs = calloc(1, sizeof(*cs));

	*out = NULL;
	if (!cs)
		return log_err(ST_ENOMEM, "out of memory");
	cs->lim = *lim;
	cs->sweep = event_new(base, -1, EV_PERSIST, on_sweep, cs);
	if (!cs->sweep || event_add(cs->sweep, &tv) < 0) {
		http_conns_destroy(cs);
		return log_err(ST_ENOMEM, "libevent: cannot add the connection sweep");
	}
	evhttp_set_bevcb(http, on_new_bev, cs);
	*out = cs;
	return 0;
}

void http_conns_destroy(struct http_conns *cs)
{
	if (!cs)
		return;
	if (cs->sweep)
		event_free(cs->sweep);
	while (cs->n)
		conn_drop(cs, cs->n - 1);
	free(cs->v);
	free(cs);
}

long http_raise_nofile(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur != was)
		log_info("open file limit raised from %llu to %llu", (unsigned long long)was,
			 (unsigned long long)rl.rlim_cur);
	else
		log_info("open file limit %llu", (unsigned long long)rl.rlim_cur);
	return rl.rlim_cur == RLIM_INFINITY ? (long)1 << 20 : (long)MIN(rl.rlim_cur, (rlim_t)1 << 30);
}
