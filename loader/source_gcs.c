/*
 * source_gcs.c - the gs://bucket/prefix source over the GCS JSON API.
 *
 * Per object: the metadata GET (storage/v1/b/B/o/O: size, generation,
 * crc32c, contentEncoding) comes first; gzip-encoded objects are refused
 * (ranges are not honoured for them). Every media read then pins that
 * generation (alt=media&generation=G&ifGenerationMatch=G) so an object
 * replaced mid-load answers 412 (or 404) instead of other bytes, and a
 * Range per chunk. Small objects are fetched whole and checked against
 * their crc32c here; shards are checked by the pipeline from combined
 * chunk CRCs. With STORAGE_EMULATOR_HOST set and neither a key
 * (GOOGLE_APPLICATION_CREDENTIALS) nor GCE_METADATA_HOST, requests are
 * anonymous. STORAGE_EMULATOR_HOST ("host:port" or a URL) replaces
 * https://storage.googleapis.com. A 401 refreshes the token once.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "loader/crc32c.h"
#include "loader/gcs_auth.h"
#include "loader/http.h"
#include "loader/ld_internal.h"
#include "loader/loader.h"
#include "loader/source_gcs.h"
#include "loader/url.h"

/* The gcs source's private context (s->priv). */
struct gcs_src {
	char *endpoint;			/* https://storage.googleapis.com or the emulator */
	char *bucket, *prefix;		/* prefix without trailing '/', may be "" */
	struct ld_http *t;		/* the transport client */
	struct gcs_auth *auth;
};

/* A JSON API uint64 field: a string of decimal digits (or a plain integer). */
static int get_u64(const cJSON *root, const char *key, uint64_t *out, int required, char *err,
		   size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
	uint64_t x = 0;
	if (!v) {
		if (required)
			snprintf(err, errlen, "object metadata has no '%s'", key);
		return required ? ST_EFORMAT : 1;
	}
	if (cJSON_IsString(v)) {
		const char *s = v->valuestring;
		if (!s[0] || strlen(s) > 19)
			goto bad;
		for (; *s; s++) {
			if (*s < '0' || *s > '9')
				goto bad;
			x = x * 10 + (uint64_t)(*s - '0');
		}
	} else if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9007199254740992.0 &&
		   v->valuedouble == (double)(uint64_t)v->valuedouble) {
		x = (uint64_t)v->valuedouble;
	} else {
		goto bad;
	}
	*out = x;
	return 0;
bad:
	snprintf(err, errlen, "object metadata field '%s' is not a non-negative integer", key);
	return ST_EFORMAT;
}

int gcs_parse_object_meta(const char *json, size_t n, struct gcs_obj_meta *out, char *err, size_t errlen)
{
	cJSON *root = cJSON_ParseWithLength(json, n);
	const cJSON *v;
	uint64_t gen = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!root || !cJSON_IsObject(root)) {
		snprintf(err, errlen, "object metadata is not a JSON object");
		rc = ST_EFORMAT;
		goto out;
	}
	if ((rc = get_u64(root, "size", &out->size, 1, err, errlen)) < 0)
		goto out;
	if ((rc = get_u64(root, "generation", &gen, 1, err, errlen)) < 0)
		goto out;
	if (gen == 0 || gen > INT64_MAX) {
		snprintf(err, errlen, "object metadata has an invalid generation");
		rc = ST_EFORMAT;
		goto out;
	}
	out->generation = (int64_t)gen;
	rc = 0;
	v = cJSON_GetObjectItemCaseSensitive(root, "crc32c");
	if (v) {
		if (!cJSON_IsString(v) || crc32c_from_base64(v->valuestring, &out->crc32c) < 0) {
			snprintf(err, errlen, "object metadata has a malformed crc32c");
			rc = ST_EFORMAT;
			goto out;
		}
		out->has_crc = 1;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "contentEncoding");
	if (v) {
		if (!cJSON_IsString(v)) {
			snprintf(err, errlen, "object metadata has a malformed contentEncoding");
			rc = ST_EFORMAT;
			goto out;
		}
		snprintf(out->content_encoding, sizeof(out->content_encoding), "%s", v->valuestring);
		out->gzip = strcasecmp(v->valuestring, "gzip") == 0 || strcasecmp(v->valuestring, "x-gzip") == 0;
	}
out:
	cJSON_Delete(root);
	return rc;
}

static int object_path(const struct gcs_src *g, const char *name, char *out, size_t cap)
{
	char full[LD_NAME_MAX * 2], enc[LD_NAME_MAX * 6];
	if ((size_t)snprintf(full, sizeof(full), "%s%s%s", g->prefix, g->prefix[0] ? "/" : "", name) >= sizeof(full) ||
	    ld_url_encode(full, enc, sizeof(enc)) < 0)
		return ST_ERANGE;
	if ((size_t)snprintf(out, cap, "%s/storage/v1/b/%s/o/%s", g->endpoint, g->bucket, enc) >= cap)
		return ST_ERANGE;
	return 0;
}

/* One request with the bearer token; a 401 refreshes the token and retries once. */
static int gcs_perform(struct ld_src *s, void *conn, struct ld_http_req *r, char *err, size_t errlen)
{
	const struct gcs_src *g = s->priv;
	char auth[4096];
	const char *hdrs[2] = { auth, NULL };
	int rc;
	for (int attempt = 0;; attempt++) {
		if ((rc = gcs_auth_header(g->auth, conn, auth, sizeof(auth), err, errlen)) < 0)
			return rc;
		r->headers = hdrs;
		rc = ld_http_perform(conn, r, err, errlen);
		if (!(rc == ST_EAUTH && r->status == 401 && attempt == 0 && auth[0]))
			return rc;
		gcs_auth_invalidate(g->auth, auth);
		free(r->whole);
		r->whole = NULL;
	}
}

static int gcs_stat(struct ld_src *s, void *conn, const char *name, struct ld_obj *o, char *err,
		    size_t errlen)
{
	const struct gcs_src *g = s->priv;
	char url[LD_NAME_MAX * 8], why[LD_ERR_MAX];
	struct ld_http_req r = { .url = url, .max = 1u << 20 };
	struct gcs_obj_meta m;
	int rc;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->where, sizeof(o->where), "gs://%s/%s%s%s", g->bucket, g->prefix,
		 g->prefix[0] ? "/" : "", name);
	if ((rc = object_path(g, name, url, sizeof(url))) < 0) {
		snprintf(err, errlen, "object name too long");
		return rc;
	}
	if ((rc = gcs_perform(s, conn, &r, why, sizeof(why))) < 0) {
		if (rc == ST_ENOENT)
			return rc;
		snprintf(err, errlen, "metadata: %.900s", why);
		return rc;
	}
	rc = gcs_parse_object_meta(r.whole, r.got, &m, why, sizeof(why));
	free(r.whole);
	if (rc < 0) {
		snprintf(err, errlen, "%.900s", why);
		return rc;
	}
	if (m.gzip) {
		snprintf(err, errlen, "object is stored with contentEncoding '%s'; upload it without "
			 "compression (ranged reads are not honoured for compressed objects)",
			 m.content_encoding);
		return ST_EFORMAT;
	}
	o->size = m.size;
	o->generation = m.generation;
	o->crc32c = m.crc32c;
	o->has_crc = m.has_crc;
	if (!(o->url = malloc(strlen(url) + 96)))
		return ST_ENOMEM;
	sprintf(o->url, "%s?alt=media&generation=%" PRId64 "&ifGenerationMatch=%" PRId64, url,
		o->generation, o->generation);
	return 0;
}

static int gcs_fetch_whole(struct ld_src *s, void *conn, const char *name, size_t max, char **out,
			   size_t *len, char *err, size_t errlen)
{
	struct ld_obj o;
	struct ld_http_req r = { 0 };
	char why[LD_ERR_MAX];
	int rc = gcs_stat(s, conn, name, &o, why, sizeof(why));

	if (rc < 0) {
		if (rc != ST_ENOENT)
			snprintf(err, errlen, "%.900s", why);
		goto out;
	}
	if (o.size > max) {
		snprintf(err, errlen, "%" PRIu64 " bytes, more than the %zu allowed", o.size, max);
		rc = ST_ERANGE;
		goto out;
	}
	r.url = o.url;
	r.max = max;
	if ((rc = gcs_perform(s, conn, &r, why, sizeof(why))) < 0) {
		snprintf(err, errlen, "%.900s", why);
		if (rc == ST_ENOENT)
			rc = ST_EIO;	/* it existed a moment ago: replaced or deleted */
		goto out;
	}
	if (r.got != o.size || (o.has_crc && crc32c(0, r.whole, r.got) != o.crc32c)) {
		snprintf(err, errlen, "%s (got %zu bytes, metadata says %" PRIu64 ")",
			 r.got < o.size ? "short body" : r.got != o.size ? "size mismatch" : "crc32c mismatch", r.got,
			 o.size);
		/* a body that ended early (no Content-Length to tell) is retried like a short chunk */
		rc = r.got < o.size ? ST_ENET : r.got != o.size ? ST_EIO : ST_ECRC;
		free(r.whole);
		goto out;
	}
	*out = r.whole;
	*len = r.got;
out:
	free(o.url);
	return rc;
}

static int gcs_read(struct ld_src *s, void *conn, const struct ld_obj *o, uint64_t off, size_t n,
		    void *dst, size_t *got, uint32_t *crc, struct ld_rd_info *info, char *err, size_t errlen)
{
	struct ld_http_req r = { .url = o->url, .ranged = 1, .off = off, .n = n, .dst = dst, .crc = crc };
	int rc = gcs_perform(s, conn, &r, err, errlen);
	*got = r.got;
	info->http_status = r.status;
	info->throttled = r.status == 429 || r.status == 503;
	if (rc == ST_EIO && r.status == 412) {
		size_t k = strlen(err);
		snprintf(err + k, errlen - k, " (object replaced during the load: generation %" PRId64
			 " is no longer current)", o->generation);
	} else if (rc == ST_ENOENT) {
		size_t k = strlen(err);
		snprintf(err + k, errlen - k, " (generation %" PRId64 " deleted or replaced during the load)",
			 o->generation);
		rc = ST_EIO;
	} else if (rc == 0 && r.total != o->size) {
		snprintf(err, errlen, "object size changed from %" PRIu64 " to %" PRIu64, o->size, r.total);
		rc = ST_EIO;
	}
	return rc;
}

static int gcs_open_obj(struct ld_src *s, void *conn, const char *name, struct ld_obj *o, void *head,
			size_t head_want, size_t *head_got, char *err, size_t errlen)
{
	struct ld_rd_info info;
	char why[LD_ERR_MAX];
	size_t want;
	int rc;
	if ((rc = gcs_stat(s, conn, name, o, why, sizeof(why))) < 0) {
		snprintf(err, errlen, "%.900s", rc == ST_ENOENT ? "object not found" : why);
		return rc;
	}
	want = (size_t)MIN((uint64_t)head_want, o->size);
	if ((rc = gcs_read(s, conn, o, 0, want, head, head_got, NULL, &info, why, sizeof(why))) < 0)
		snprintf(err, errlen, "reading its header: %.900s", why);
	return rc;
}

static int gcs_conn_create(struct ld_src *s, void **conn)
{
	const struct gcs_src *g = s->priv;
	return ld_http_conn_create(g->t, conn);
}

static void gcs_destroy(struct ld_src *s)
{
	struct gcs_src *g = s->priv;
	if (!g)
		return;
	gcs_auth_destroy(g->auth);
	ld_http_destroy(g->t);
	free(g->endpoint);
	free(g->bucket);
	free(g->prefix);
	free(g);
	s->priv = NULL;
}

static const struct ld_src_vt gcs_vt = {
	.conn_create = gcs_conn_create,
	.conn_destroy = ld_http_conn_destroy,
	.fetch_whole = gcs_fetch_whole,
	.open_obj = gcs_open_obj,
	.read = gcs_read,
	.destroy = gcs_destroy,
};

int ld_src_gcs_init(struct ld_src *s, const char *uri, const struct ld_opts *o)
{
	struct gcs_src *g = calloc(1, sizeof(*g));
	const char *b = uri + 5, *slash = strchr(b, '/'), *emu = getenv("STORAGE_EMULATOR_HOST");
	size_t plen;
	int rc;

	if (!g)
		return ST_ENOMEM;
	s->vt = &gcs_vt;
	s->priv = g;
	s->object_crc = 1;
	g->bucket = slash ? strndup(b, (size_t)(slash - b)) : strdup(b);
	g->prefix = strdup(slash ? slash + 1 : "");
	if (!g->bucket || !g->prefix)
		return ST_ENOMEM;
	plen = strlen(g->prefix);
	while (plen && g->prefix[plen - 1] == '/')
		g->prefix[--plen] = 0;
	if (!g->bucket[0] || strspn(g->bucket, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != strlen(g->bucket))
		return log_err(ST_EINVAL, "'%s': bad bucket name", uri);
	if (emu && emu[0]) {
		size_t n = strlen(emu);
		while (n && emu[n - 1] == '/')
			n--;
		if (!(g->endpoint = malloc(n + 8)))
			return ST_ENOMEM;
		snprintf(g->endpoint, n + 8, "%s%.*s", strstr(emu, "://") ? "" : "http://", (int)n, emu);
	} else if (!(g->endpoint = strdup("https://storage.googleapis.com"))) {
		return ST_ENOMEM;
	}
	if (!(s->base = malloc(strlen(uri) + 1)))
		return ST_ENOMEM;
	snprintf(s->base, strlen(uri) + 1, "gs://%s%s%s", g->bucket, g->prefix[0] ? "/" : "", g->prefix);
	if ((rc = ld_http_create(s, o, &g->t)) < 0)
		return rc;
	/* an emulator with no key and no metadata host: no credentials (not minutes of retrying
	 * metadata.google.internal, which an emulator's machine does not have) */
	const char *key = getenv("GOOGLE_APPLICATION_CREDENTIALS"), *meta = getenv("GCE_METADATA_HOST");
	int anon = o->gcs_anonymous;
	if (!anon && emu && emu[0] && !(key && key[0]) && !(meta && meta[0])) {
		log_info("gcs: STORAGE_EMULATOR_HOST is set and no credentials are given: anonymous requests");
		anon = 1;
	}
	return gcs_auth_create(anon, &g->auth);
}
