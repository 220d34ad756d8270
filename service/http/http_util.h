/*
 * http_util.h - replying, OpenAI-shaped errors, request bodies and the
 * access log (http_util.c). Loop thread only.
 */
#ifndef GR_SERVICE_HTTP_UTIL_H
#define GR_SERVICE_HTTP_UTIL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/sbuf.h"
#include "service/http/http.h"

/* Sends a whole response (status, Content-Type, body) and logs it; tin < 0:
 * no token counts in the log line. */
void http_reply(struct srv *s, struct evhttp_request *req, const char *route, int status,
		const char *ctype, const char *body, size_t len, double t0, const char *who,
		int tin, int tout);
/* http_reply of the JSON or text built in sb, or, when building it ran out
 * of memory (sb->oom), a 500 with the OpenAI error body instead. */
void http_reply_sb(struct srv *s, struct evhttp_request *req, const char *route, int status,
		   const char *ctype, struct sbuf *sb, double t0, const char *who, int tin, int tout);
void http_error(struct srv *s, struct evhttp_request *req, const char *route, int status,
		const char *msg, const char *param, double t0);
/* One access log line (and the request metric) for a response; rid: the
 * request id or NULL. Formats into s->log_line, nothing else. */
void http_access_log(struct srv *s, struct evhttp_request *req, const char *route, int status,
		     double t0, const char *who, int tin, int tout, const char *rid);
/* The same for a streamed reply: sent, the body bytes already sent in
 * chunks (responseSize counts them with what is still buffered). */
void http_access_log_sent(struct srv *s, struct evhttp_request *req, const char *route, int status,
			  double t0, const char *who, int tin, int tout, const char *rid, size_t sent);
/* Counts req in srv->n_sending until it is written out (drain waits for it). */
void http_track_send(struct srv *s, struct evhttp_request *req);
/* Reads the body: 0, or an error already answered (413/400) and -1. */
int http_read_body(struct srv *s, struct evhttp_request *req, const char *route, double t0,
		   char **body, size_t *len);
/* Parses a whole body as JSON: NULL (400 answered) on bad JSON, trailing
 * bytes, or a string with U+0000 (cJSON would cut it short silently). */
cJSON *http_parse_json(struct srv *s, struct evhttp_request *req, const char *route, double t0,
		       const char *body, size_t len);

#endif
