/*
 * http_server.h - the evhttp server of `serve` (http_server.c): what
 * cmd_serve.c drives. The server's state lives in struct srv (http.h).
 */
#ifndef GR_SERVICE_HTTP_SERVER_H
#define GR_SERVICE_HTTP_SERVER_H

#include "service/config.h"
#include "service/http/http.h"

int http_srv_init(struct srv *s, const struct srv_config *cfg, const char *model_name);
/* Runs the loop until drained or failed; returns the process exit status. */
int http_srv_run(struct srv *s);
void http_srv_release(struct srv *s);
/* Any thread: wake the loop (state change). */
void http_srv_wake(struct srv *s);

#endif
