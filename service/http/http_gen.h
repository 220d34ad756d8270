/*
 * http_gen.h - generation requests (http_gen.c): /v1/completions,
 * /v1/chat/completions and /generate from the POST to the last byte.
 */
#ifndef GR_SERVICE_HTTP_GEN_H
#define GR_SERVICE_HTTP_GEN_H

#include "engine/engine.h"
#include "service/api/api.h"
#include "service/http/http.h"

/* Loop thread: the route handler of the three generation routes. */
void http_handle_generate(struct srv *s, struct evhttp_request *req, enum api_kind kind,
			  const char *route, double t0, const char *who);
void http_drain_ready(struct srv *s);			/* loop thread: sends what the engine produced */
void http_cancel_all(struct srv *s);			/* loop thread: cancels every running choice */
/* Frees the requests still listed in s->active (after evhttp_free: none has
 * a connection any more, and no engine callback may come). */
void http_gen_free_all(struct srv *s);

#endif
