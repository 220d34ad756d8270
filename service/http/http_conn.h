/*
 * http_conn.h - every client connection of the evhttp server, with its
 * deadlines and the connection cap (see http_conn.c).
 */
#ifndef GR_HTTP_CONN_H
#define GR_HTTP_CONN_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "service/http/http_screen.h"

struct http_conns;

struct http_conn_limits {
	double header_s;	/* accept (or first byte after a reply) to the end of headers */
	double body_s;		/* end of headers to the request handed to us */
	double idle_s;		/* a reply sent to the next request's first byte */
	int max_conns;		/* at the cap a new connection closes the oldest not busy */
	struct http_screen_limits screen;	/* what a request head may hold */
};

/* Installs the bufferevent callback on http and a sweep timer on base;
 * caller frees with http_conns_destroy (after evhttp_free). */
int http_conns_create(struct event_base *base, struct evhttp *http, const struct http_conn_limits *lim,
		      struct http_conns **out);
void http_conns_destroy(struct http_conns *cs);

/* The request has been handed to us: no read deadline until its reply is
 * sent. Returns 0, or the status to refuse it with (its head failed
 * http_screen_head, or held a raw NUL byte, which evhttp would cut the value
 * at) and *why, the message; the caller answers and closes the connection. */
int http_conn_busy(struct http_conns *cs, struct evhttp_connection *evcon, const char **why);

/* The reply on evcon has been written: the idle deadline starts. */
void http_conn_idle(struct http_conns *cs, struct evhttp_connection *evcon);

/* Closes evcon 0.3 s from now whatever evhttp makes of its
 * "Connection: close" (after CONNECT it keeps the connection open). */
void http_conn_close_soon(struct http_conns *cs, struct evhttp_connection *evcon);

/* Open connections now (tests, /metrics). */
int http_conns_count(const struct http_conns *cs);

/* Raises RLIMIT_NOFILE's soft limit to the hard one; returns the soft limit
 * in force after (logged), or -1 when it cannot be read. */
long http_raise_nofile(void);

#endif
