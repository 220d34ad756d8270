/*
 * source_http.c - the http(s)://host/prefix source: plain GETs with a
 * Range per chunk over the transport of http.c.
 *
 * An object's URL is the prefix, '/', and its name percent-encoded (url.c:
 * a space, '%', '?' or '#' in a shard name is a byte of the name). Its
 * size comes from the Content-Range of its first ranged read, and its
 * strong ETag (if any) is sent as If-Match with every later read, so that
 * a file replaced on the server mid-load answers 412 instead of other
 * bytes. There is no stored checksum: a crc32c.json beside the weights
 * (fetched by the pipeline) is what verifies them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "loader/http.h"
#include "loader/ld_internal.h"
#include "loader/source_http.h"
#include "loader/url.h"

/* The http(s) source's private context (s->priv). */
struct http_src {
	struct ld_http *t;		/* the transport client */
};

static int http_conn_create(struct ld_src *s, void **conn)
{
	const struct http_src *h = s->priv;
	return ld_http_conn_create(h->t, conn);
}

/* base/NAME with NAME percent-encoded. */
static char *object_url(const struct ld_src *s, const char *name)
{
	char enc[LD_NAME_MAX * 3];
	size_t n;
	char *url;
	if (ld_url_encode(name, enc, sizeof(enc)) < 0)
		return NULL;
	n = strlen(s->base) + strlen(enc) + 2;
	if ((url = malloc(n)))
		snprintf(url, n, "%s/%s", s->base, enc);
	return url;
}

static int http_fetch_whole(struct ld_src *s, void *conn, const char *name, size_t max, char **out,
			    size_t *len, char *err, size_t errlen)
{
	struct ld_http_req r = { .max = max };
	char *url = object_url(s, name);
	int rc;
	if (!url)
		return ST_ENOMEM;
	r.url = url;
	rc = ld_http_perform(conn, &r, err, errlen);
	free(url);
	if (rc == ST_ENOENT)
		return rc;
	if (rc < 0)
		return rc;
	*out = r.whole;
	*len = r.got;
	return 0;
}

static int http_open_obj(struct ld_src *s, void *conn, const char *name, struct ld_obj *o, void *head,
			 size_t head_want, size_t *head_got, char *err, size_t errlen)
{
	struct ld_http_req r = { .ranged = 1, .range_short_ok = 1, .off = 0, .n = head_want, .dst = head };
	int rc;
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->where, sizeof(o->where), "%s/%s", s->base, name);
	if (!(o->url = object_url(s, name)))
		return ST_ENOMEM;
	r.url = o->url;
	rc = ld_http_perform(conn, &r, err, errlen);
	if (rc == ST_ERANGE) {
		snprintf(err, errlen, "object is empty (HTTP 416)");
		return ST_EFORMAT;
	}
	if (rc < 0)
		return rc;
	o->size = r.total;
	*head_got = r.got;
	if (r.etag[0] == '"')	/* strong: pins every later read to these bytes (weak ones never match) */
		snprintf(o->etag, sizeof(o->etag), "%s", r.etag);
	return 0;
}

static int http_read(struct ld_src *s, void *conn, const struct ld_obj *o, uint64_t off, size_t n,
		     void *dst, size_t *got, uint32_t *crc, struct ld_rd_info *info, char *err, size_t errlen)
{
	struct ld_http_req r = { .url = o->url, .ranged = 1, .off = off, .n = n, .dst = dst, .crc = crc };
	char if_match[sizeof(o->etag) + 16];
	const char *hdrs[2] = { if_match, NULL };
	int rc;
	(void)s;
	snprintf(if_match, sizeof(if_match), "%s%s", o->etag[0] ? "If-Match: " : "", o->etag);
	r.headers = hdrs;
	rc = ld_http_perform(conn, &r, err, errlen);
	*got = r.got;
	info->http_status = r.status;
	info->throttled = r.status == 429 || r.status == 503;
	if (rc < 0 && r.status == 412) {
		size_t k = strlen(err);
		snprintf(err + k, errlen - k, " (object changed during the load: ETag %s no longer matches)", o->etag);
	} else if (rc == 0 && r.total != o->size) {
		snprintf(err, errlen, "object size changed from %" PRIu64 " to %" PRIu64, o->size, r.total);
		rc = ST_EIO;
	}
	return rc;
}

static void http_destroy(struct ld_src *s)
{
	struct http_src *h = s->priv;
	if (!h)
		return;
	ld_http_destroy(h->t);
	free(h);
	s->priv = NULL;
}

static const struct ld_src_vt http_vt = {
	.conn_create = http_conn_create,
	.conn_destroy = ld_http_conn_destroy,
	.fetch_whole = http_fetch_whole,
	.open_obj = http_open_obj,
	.read = http_read,
	.destroy = http_destroy,
};

int ld_src_http_init(struct ld_src *s, const char *url, const struct ld_opts *o)
{
	struct http_src *h = calloc(1, sizeof(*h));
	size_t n = strlen(url);
	if (!h)
		return ST_ENOMEM;
	s->vt = &http_vt;
	s->priv = h;
	while (n > 8 && url[n - 1] == '/')
		n--;
	if (!(s->base = strndup(url, n)))
		return ST_ENOMEM;
	return ld_http_create(s, o, &h->t);
}
