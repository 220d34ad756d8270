/*
 * http_screen.c - the request head checked before evhttp parses it, so that
 * what libevent 2.1.12 would answer with its own HTML page (or accept when it
 * should not) gets the API's JSON error instead (http_conn.c holds the head
 * back from evhttp until it is complete, then hands it over or replaces it).
 *
 * Refused (RFC 9112 and RFC 9110 where they say what a server must do):
 *   400  no HTTP version (HTTP/0.9), a malformed request line, a raw NUL
 *        byte, a header line without a colon or with space before it, a
 *        folded (obs-fold) line, a Content-Length that is not 1*DIGIT,
 *        two different Content-Lengths, Content-Length with
 *        Transfer-Encoding, Transfer-Encoding in HTTP/1.0;
 *   414  a request target over lim->uri_max bytes;
 *   431  a head over lim->head_max bytes or more than lim->max_headers lines;
 *   501  an unknown method, a transfer coding other than plain "chunked";
 *   505  a version other than HTTP/1.x (the HTTP/2 preface "PRI * HTTP/2.0").
 * Not here: limits on the body (evhttp reads it; http_server.c answers 413),
 * which methods a route takes (405, the router), CONNECT/TRACE (501, the
 * router: evhttp parses them). Pure: no I/O, no allocation.
 */
#include "service/http/http_screen.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FAIL(code, msg) do { *why = (msg); return (code); } while (0)

static const char *const methods[] = { "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS",
				       "TRACE", "CONNECT", "PATCH" };

static int is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The next line of [p, end) from *at, without its CRLF or LF; 0 at the end
 * or when the line is not complete. */
static int next_line(const char *p, size_t n, size_t *at, const char **line, size_t *len)
{
	const char *s = p + *at, *nl = memchr(s, '\n', n - *at);

	if (!nl)
		return 0;
	*line = s;
	*len = (size_t)(nl - s);
	if (*len && s[*len - 1] == '\r')
		(*len)--;
	*at = (size_t)(nl - p) + 1;
	return 1;
}

static int screen_request_line(const char *l, size_t n, const struct http_screen_limits *lim, int *http10,
			       const char **why)
{
	const char *sp1 = memchr(l, ' ', n), *sp2;
	size_t mlen, tlen;
	int known = 0;

	if (n >= 3 && !memcmp(l, "PRI", 3) && n == 14 && !memcmp(l, "PRI * HTTP/2.0", 14))
		FAIL(505, "HTTP/2 is not served here (send HTTP/1.1; Cloud Run speaks HTTP/2 to clients)");
	if (!sp1 || sp1 == l)
		FAIL(400, "malformed request line");
	mlen = (size_t)(sp1 - l);
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)l[i]))
			FAIL(400, "malformed request line");
	sp2 = memchr(sp1 + 1, ' ', n - mlen - 1);
	tlen = sp2 ? (size_t)(sp2 - sp1 - 1) : n - mlen - 1;
	if (tlen > lim->uri_max)
		FAIL(414, "the request URI is too long");
	if (!sp2)
		FAIL(400, "the request line has no HTTP version (HTTP/0.9 is not served)");
	if (!tlen)
		FAIL(400, "malformed request line");
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)sp1[1 + i] <= ' ' || sp1[1 + i] == 0x7f)
			FAIL(400, "malformed request line");
	{
		const char *v = sp2 + 1;
		size_t vlen = n - (size_t)(v - l);
		if (vlen != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
		    v[7] < '0' || v[7] > '9')
			FAIL(400, "malformed HTTP version in the request line");
		if (v[5] != '1')
			FAIL(505, "HTTP version not supported (send HTTP/1.1)");
		*http10 = v[7] == '0';
	}
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i]) == mlen && !memcmp(methods[i], l, mlen))
			known = 1;
	if (!known)
		FAIL(501, "method not implemented");
	return 0;
}

/* Trims optional whitespace from both ends of [*v, *v + *n). */
static void trim_ows(const char **v, size_t *n)
{
	while (*n && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

int http_screen_head(const char *p, size_t n, const struct http_screen_limits *lim, const char **why)
{
	const char *l, *cl = NULL;
	size_t at = 0, len, cl_len = 0;
	int http10 = 0, te = 0, n_headers = 0, rc;

	*why = NULL;
	if (memchr(p, '\0', n))
		FAIL(400, "the request line or a header contains a NUL byte");
	if (!next_line(p, n, &at, &l, &len)) {
		/* the request line is still arriving: only its length can be judged */
		if (n > lim->uri_max + 32)
			FAIL(414, "the request URI is too long");
		return 0;
	}
	if ((rc = screen_request_line(l, len, lim, &http10, why)))
		return rc;
	if (n > lim->head_max)
		FAIL(431, "the request headers are too large");
	while (next_line(p, n, &at, &l, &len)) {
		const char *colon, *v;
		size_t nlen, vlen;
		if (!len)
			break;		/* the blank line: the head is whole */
		if (++n_headers > lim->max_headers)
			FAIL(431, "too many request headers");
		if (l[0] == ' ' || l[0] == '\t')
			FAIL(400, "folded header lines are not accepted");
		if (!(colon = memchr(l, ':', len)))
			FAIL(400, "a header line has no colon");
		nlen = (size_t)(colon - l);
		for (size_t i = 0; i < nlen; i++)
			if (!is_tchar((unsigned char)l[i]))
				FAIL(400, "malformed header name (space before the colon?)");
		if (!nlen)
			FAIL(400, "a header line has an empty name");
		v = colon + 1;
		vlen = len - nlen - 1;
		trim_ows(&v, &vlen);
		if (nlen == 14 && !strncasecmp(l, "Content-Length", 14)) {
			if (!vlen || vlen > 18 || strspn(v, "0123456789") < vlen)
				FAIL(400, "Content-Length is not a number");
			if (cl && (cl_len != vlen || memcmp(cl, v, vlen)))
				FAIL(400, "conflicting Content-Length headers");
			cl = v;
			cl_len = vlen;
		} else if (nlen == 17 && !strncasecmp(l, "Transfer-Encoding", 17)) {
			if (vlen != 7 || strncasecmp(v, "chunked", 7))
				FAIL(501, "Transfer-Encoding other than chunked is not implemented");
			if (te++)
				FAIL(400, "more than one Transfer-Encoding header");
		}
	}
	if (cl && te)
		FAIL(400, "Content-Length together with Transfer-Encoding");
	if (te && http10)
		FAIL(400, "Transfer-Encoding in an HTTP/1.0 request");
	return 0;
}

/* Is the header line l (len bytes) named name (case-insensitive)? */
static int header_is(const char *l, size_t len, const char *name)
{
	size_t k = strlen(name);

	return len > k && l[k] == ':' && !strncasecmp(l, name, k);
}

int http_screen_is_chunked(const char *p, size_t n)
{
	const char *l;
	size_t at = 0, len;

	if (!next_line(p, n, &at, &l, &len))
		return 0;
	while (next_line(p, n, &at, &l, &len) && len)
		if (header_is(l, len, "Transfer-Encoding"))
			return 1;	/* the screen let only "chunked" through */
	return 0;
}

#define CHUNK_LINE_MAX 4096	/* a size line with its extensions, or a trailer line */

/* The size of the chunk whose size line is l (len bytes), or -1. */
static long long chunk_size(const char *l, size_t len)
{
	long long v = 0;
	size_t i = 0;

	for (; i < len; i++) {
		char ch = l[i];
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (d < 0)
			break;
		if (v > (1LL << 40))
			return -1;
		v = v * 16 + d;
	}
	if (!i)
		return -1;
	while (i < len && (l[i] == ' ' || l[i] == '\t'))
		i++;
	return i == len || l[i] == ';' ? v : -1;	/* extensions are ignored */
}

int http_screen_chunked(const char *p, size_t n, const struct http_screen_limits *lim, struct http_chunks *st,
			const char **why)
{
	*why = NULL;
	if (n > 2 * lim->body_max + 65536)
		FAIL(413, "the request body is too large");
	while (!st->done) {
		const char *l;
		size_t at = st->pos, len;
		long long size;
		if (!next_line(p, n, &at, &l, &len)) {
			if (n - st->pos > CHUNK_LINE_MAX)
				FAIL(400, "malformed chunked body (a line too long)");
			return 0;
		}
		if (len > CHUNK_LINE_MAX)
			FAIL(400, "malformed chunked body (a line too long)");
		if (st->in_trailers) {
			st->pos = at;
			if (!len) {
				st->end = at;
				st->done = 1;
			}
			continue;
		}
		if ((size = chunk_size(l, len)) < 0)
			FAIL(400, "malformed chunk size in the chunked body");
		if (!size) {
			st->in_trailers = 1;
			st->pos = at;
			continue;
		}
		if (st->body_len + (size_t)size > lim->body_max)
			FAIL(413, "the request body is too large");
		if (n - at < (size_t)size + 1)
			return 0;
		if (p[at + size] == '\n') {
			at += (size_t)size + 1;
		} else if (p[at + size] == '\r') {
			if (n - at < (size_t)size + 2)
				return 0;
			if (p[at + size + 1] != '\n')
				FAIL(400, "malformed chunked body (no line end after a chunk)");
			at += (size_t)size + 2;
		} else {
			FAIL(400, "malformed chunked body (no line end after a chunk)");
		}
		st->body_len += (size_t)size;
		st->pos = at;
	}
	return 0;
}

void http_screen_dechunk(const char *p, const struct http_chunks *st, char *out)
{
	const char *l;
	size_t at = 0, len, o = 0;
	long long size;

	while (at < st->end && next_line(p, st->end, &at, &l, &len) && (size = chunk_size(l, len)) > 0) {
		memcpy(out + o, p + at, (size_t)size);
		o += (size_t)size;
		at += (size_t)size + (p[at + size] == '\r' ? 2 : 1);
	}
}

size_t http_screen_unchunk_head(const char *p, size_t n, size_t body_len, char *out, size_t cap)
{
	const char *l;
	size_t at = 0, len, start = 0, o = 0;
	char cl[48];
	int k = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", body_len);

#define PUT(src, m) do { if (o + (m) <= cap) memcpy(out + o, (src), (m)); o += (m); } while (0)
	while (next_line(p, n, &at, &l, &len)) {
		if (!len && start) {
			PUT(cl, (size_t)k);
			PUT(p + start, at - start);
			break;
		}
		if (!start || !header_is(l, len, "Transfer-Encoding"))
			PUT(p + start, at - start);
		start = at;
	}
#undef PUT
	return o;
}
