/*
 * http_screen.h - checks of a request head before evhttp parses it (see
 * http_screen.c for what is refused and with which status).
 */
#ifndef GR_HTTP_SCREEN_H
#define GR_HTTP_SCREEN_H

#include <stddef.h>

struct http_screen_limits {
	size_t uri_max;		/* request target bytes: beyond, 414 */
	size_t head_max;	/* request line + headers bytes: beyond, 431 */
	int max_headers;	/* header lines: beyond, 431 */
};

/*
 * Checks the request head p[0, n): the bytes received so far (a complete
 * head ends with its blank line; a partial one is judged on what is whole
 * of it, so a bad line is refused as soon as it has arrived). Returns 0
 * when nothing is wrong (yet), else the HTTP status to answer with and
 * *why, a static message for the client.
 */
int http_screen_head(const char *p, size_t n, const struct http_screen_limits *lim, const char **why);

#endif
