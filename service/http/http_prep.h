/*
 * http_prep.h - api_parse() of generation requests on worker threads
 * (http_prep.c). The loop thread submits; when a job is done the loop
 * thread calls the job's done function, so this file calls nothing of the
 * generation code (http_gen.c) that uses it.
 */
#ifndef GR_SERVICE_HTTP_PREP_H
#define GR_SERVICE_HTTP_PREP_H

#include <cjson/cJSON.h>

#include "service/api/api.h"
#include "service/http/http.h"

/* Loop thread: r's api_parse() finished with rc (and *e when rc < 0). */
typedef void (*http_prep_done_fn)(struct hreq *r, int rc, const struct api_err *e);

int http_prep_start(struct srv *s);
/* Loop thread: queues r (sets r->prepping) with its parsed body (the job
 * frees it); done(r, ...) runs on the loop thread once r->api is filled. */
int http_prep_submit(struct srv *s, struct hreq *r, cJSON *body, enum api_kind kind,
		     http_prep_done_fn done);
/* Joins the workers and drops what is queued (before the requests are freed). */
void http_prep_stop(struct srv *s);

#endif
