/*
 * http.h - the libcurl transport of the network sources (http.c): a
 * client (shared DNS/TLS caches, timeouts, CA bundle) per source, one
 * connection per thread, and one request at a time on it.
 */
#ifndef GR_LD_HTTP_H
#define GR_LD_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct ld_opts;
struct ld_src;
struct ld_http;

struct ld_http_req {
	const char *url;
	const char *method;		/* NULL: GET */
	const char *const *headers;	/* NULL-terminated extra headers, or NULL */
	const char *body;		/* request body for POST, or NULL */
	int ranged;			/* send Range: bytes=off-(off+n-1) */
	int range_short_ok;		/* a shorter 206 (object smaller than off+n) is fine */
	uint64_t off;
	size_t n;
	void *dst;			/* ranged: n bytes; else NULL (body into *whole) */
	uint32_t *crc;			/* ranged: CRC-32C extended over the bytes stored, or NULL */
	size_t max;			/* unranged: largest body accepted */
	/* results */
	long status;
	size_t got;			/* body bytes stored */
	uint64_t total;			/* object size from Content-Range (ranged) */
	char *whole;			/* unranged 2xx body, NUL-terminated; caller frees */
	char errbody[256];		/* start of a non-2xx body, for messages */
	char content_encoding[64];
	char etag[128];			/* the response's ETag header, or "" */
};

/*
 * A client for the source owner (borrowed: its abort flag and deadline stop
 * transfers; ranged bodies stamp its first data byte), with o's connect_s, stall_s and ca_bundle (o already
 * resolved by ld_opts_resolve). Caller frees with ld_http_destroy.
 */
int ld_http_create(struct ld_src *owner, const struct ld_opts *o, struct ld_http **out);
void ld_http_destroy(struct ld_http *t);

/* A connection (a CURL easy handle) of t, for one thread at a time. */
int ld_http_conn_create(struct ld_http *t, void **conn);
void ld_http_conn_destroy(void *conn);

/*
 * Performs r on conn. 0 on a 2xx answer (ranged: exactly the range asked
 * for); else ST_ENET/ST_ETIMEOUT (retryable), ST_EAUTH (401, 403),
 * ST_ENOENT (404, 410), ST_ERANGE (416, or a whole body over max),
 * ST_EFORMAT (wrong range, encoded body), ST_ECANCEL, ST_EIO; err says why.
 */
int ld_http_perform(void *conn, struct ld_http_req *r, char *err, size_t errlen);

/*
 * Parses a Content-Range value ("bytes 0-99/1234"; total may be "*", then
 * *total is UINT64_MAX). n bytes, not necessarily NUL-terminated;
 * surrounding blanks allowed. 0 or ST_EFORMAT.
 */
int ld_parse_content_range(const char *s, size_t n, uint64_t *first, uint64_t *last,
			   uint64_t *total);

#endif
