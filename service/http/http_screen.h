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
	size_t body_max;	/* a chunked body's decoded bytes: beyond, 413 */
};

/* Where the scan of a chunked body stands (zero it before the first call). */
struct http_chunks {
	size_t pos;		/* the start of the first chunk not yet whole */
	size_t body_len;	/* data bytes in the whole chunks before pos */
	int in_trailers;	/* the last chunk was seen: pos is at a trailer line */
	size_t end;		/* done: the body's bytes, through the trailers' blank line */
	int done;
};

/*
 * Checks the request head p[0, n): the bytes received so far (a complete
 * head ends with its blank line; a partial one is judged on what is whole
 * of it, so a bad line is refused as soon as it has arrived). Returns 0
 * when nothing is wrong (yet), else the HTTP status to answer with and
 * *why, a static message for the client.
 */
int http_screen_head(const char *p, size_t n, const struct http_screen_limits *lim, const char **why);

/* 1 when the (screened, whole) head p[0, n) declares Transfer-Encoding: chunked. */
int http_screen_is_chunked(const char *p, size_t n);

/*
 * Scans the chunked body received so far, p[0, n), from where st stands
 * (RFC 9112 7.1: hex size, chunk extensions ignored, CRLF or LF line ends,
 * each chunk's data followed by its line end, the last chunk, trailer
 * lines, a blank line). Returns 0 (st->done once the body is whole), or the
 * status to refuse it with and *why: 400 for a malformed size line or a
 * chunk not followed by its line end, 413 when the data or the raw bytes
 * grow past lim->body_max (raw: twice that, for the framing).
 */
int http_screen_chunked(const char *p, size_t n, const struct http_screen_limits *lim, struct http_chunks *st,
			const char **why);

/* The data of the whole chunked body p[0, st->end) scanned by http_screen_chunked,
 * written to out (room for st->body_len bytes). */
void http_screen_dechunk(const char *p, const struct http_chunks *st, char *out);

/*
 * The head p[0, n) (whole, chunked) rewritten for a body of body_len plain
 * bytes: its Transfer-Encoding lines dropped, "Content-Length: body_len"
 * added before the blank line. Writes at most cap bytes to out; returns the
 * length (larger than cap: out is too small).
 */
size_t http_screen_unchunk_head(const char *p, size_t n, size_t body_len, char *out, size_t cap);

#endif
