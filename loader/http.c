/*
 * http.c - the libcurl transport under the http(s) and gcs sources (and
 * the token fetches of gcs_auth.c): one request in, its status and body
 * out. It knows nothing of objects, shards or the pipeline.
 *
 * One CURL easy handle per connection (per worker: its connection stays
 * alive between chunks), HTTP/1.1 only, a shared handle for the DNS and
 * TLS session caches, a connect timeout and a stall timeout (below 1 KiB/s
 * for stall_s). A ranged body is written straight into the caller's
 * buffer and only after the response proved to be 206 with exactly the
 * Content-Range asked for; anything else never touches the buffer. A body
 * sent with a Content-Encoding (identity is asked for) is refused.
 * Transfers stop when the owning source's abort flag is set or its
 * deadline passes.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "loader/crc32c.h"
#include "loader/http.h"
#include "loader/ld_internal.h"
#include "loader/loader.h"

struct ld_http {
	struct ld_src *owner;		/* abort flag, deadline, first-byte stamp; borrowed */
	CURLSH *share;			/* DNS + TLS session cache */
	pthread_mutex_t share_mu[8];
	char *ca_bundle;
	double connect_s, stall_s;
};

struct http_conn {
	CURL *h;
	struct ld_http *t;
	struct ld_http_req *r;
	/* per-response state */
	int have_cr;
	uint64_t cr_first, cr_last, cr_total;
	char cr_raw[96];
	int started, wrong_range, overflow, encoded;
	size_t expect, whole_cap;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void http_global_init(void)
{
	pthread_once(&g_once, global_init_once);
}

void ld_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);	/* counted; ld_global_release undoes it */
}

void ld_global_release(void)
{
	curl_global_cleanup();
}

int ld_parse_content_range(const char *s, size_t n, uint64_t *first, uint64_t *last, uint64_t *total)
{
	size_t i = 0;
	uint64_t v[3] = { 0, 0, 0 };
	int star = 0;

	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (n - i < 6 || strncasecmp(s + i, "bytes", 5) != 0 || s[i + 5] != ' ')
		return ST_EFORMAT;
	i += 6;
	while (i < n && s[i] == ' ')
		i++;
	for (int k = 0; k < 3; k++) {
		size_t d0 = i;
		if (k == 2 && i < n && s[i] == '*') {
			star = 1;
			i++;
		} else {
			while (i < n && s[i] >= '0' && s[i] <= '9') {
				if (v[k] > (UINT64_MAX - 9) / 10 || i - d0 >= 19)
					return ST_EFORMAT;
				v[k] = v[k] * 10 + (uint64_t)(s[i] - '0');
				i++;
			}
			if (i == d0)
				return ST_EFORMAT;
		}
		if (k < 2) {
			if (i >= n || s[i] != (k == 0 ? '-' : '/'))
				return ST_EFORMAT;
			i++;
		}
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	if (i != n || v[0] > v[1] || (!star && v[1] >= v[2]))
		return ST_EFORMAT;
	*first = v[0];
	*last = v[1];
	*total = star ? UINT64_MAX : v[2];
	return 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct http_conn *c = arg;
	size_t n = size * nitems;
	if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {	/* a new response (redirect, 100) */
		c->have_cr = 0;
		c->cr_raw[0] = 0;
		c->r->content_encoding[0] = 0;
		c->r->etag[0] = 0;
	} else if (n > 5 && strncasecmp(buf, "ETag:", 5) == 0) {
		size_t a = 5, b = n;
		while (a < b && isspace((unsigned char)buf[a]))
			a++;
		while (b > a && isspace((unsigned char)buf[b - 1]))
			b--;
		if (b - a < sizeof(c->r->etag)) {	/* a longer one is not used at all */
			memcpy(c->r->etag, buf + a, b - a);
			c->r->etag[b - a] = 0;
		}
	} else if (n > 14 && strncasecmp(buf, "Content-Range:", 14) == 0) {
		size_t a = 14, b = n, m;
		while (a < b && isspace((unsigned char)buf[a]))
			a++;
		while (b > a && isspace((unsigned char)buf[b - 1]))
			b--;
		m = MIN(b - a, sizeof(c->cr_raw) - 1);	/* for messages: no CR LF */
		memcpy(c->cr_raw, buf + a, m);
		c->cr_raw[m] = 0;
		c->have_cr = ld_parse_content_range(buf + 14, n - 14, &c->cr_first, &c->cr_last,
						    &c->cr_total) == 0;
	} else if (n > 17 && strncasecmp(buf, "Content-Encoding:", 17) == 0) {
		size_t a = 17, b = n;
		while (a < b && isspace((unsigned char)buf[a]))
			a++;
		while (b > a && isspace((unsigned char)buf[b - 1]))
			b--;
		size_t m = MIN(b - a, sizeof(c->r->content_encoding) - 1);
		memcpy(c->r->content_encoding, buf + a, m);
		c->r->content_encoding[m] = 0;
	}
	return n;
}

/* Decides on the first body byte where the body goes. */
static void body_start(struct http_conn *c)
{
	struct ld_http_req *r = c->r;
	c->started = 1;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status < 200 || r->status >= 300)
		return;
	if (r->content_encoding[0] && strcasecmp(r->content_encoding, "identity") != 0) {
		c->encoded = 1;	/* identity was asked for: these are not the object's bytes */
		return;
	}
	if (!r->ranged)
		return;
	if (r->status != 206 || !c->have_cr || c->cr_first != r->off ||
	    c->cr_last > r->off + r->n - 1 || (!r->range_short_ok && c->cr_last != r->off + r->n - 1) ||
	    c->cr_total == UINT64_MAX) {
		c->wrong_range = 1;
		return;
	}
	c->expect = (size_t)(c->cr_last - c->cr_first + 1);
	r->total = c->cr_total;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct http_conn *c = arg;
	struct ld_http_req *r = c->r;
	size_t n = size * nmemb;

	if (!c->started)
		body_start(c);
	if (r->status < 200 || r->status >= 300) {
		size_t have = strlen(r->errbody), m = MIN(n, sizeof(r->errbody) - 1 - have);
		memcpy(r->errbody + have, buf, m);
		r->errbody[have + m] = 0;
		return n;
	}
	if (c->wrong_range || c->encoded)
		return 0;
	if (r->ranged) {
		if (r->got + n > c->expect) {
			c->overflow = 1;
			return 0;
		}
		memcpy((char *)r->dst + r->got, buf, n);
		LD_FIRST_BYTE(c->t->owner);
		if (r->crc)
			*r->crc = crc32c(*r->crc, buf, n);
		r->got += n;
		return n;
	}
	if (r->got + n > r->max) {
		c->overflow = 1;
		return 0;
	}
	if (r->got + n + 1 > c->whole_cap) {
		size_t cap = MAX(c->whole_cap * 2, r->got + n + 1);
		char *p = realloc(r->whole, MAX(cap, (size_t)4096));
		if (!p)
			return 0;
		r->whole = p;
		c->whole_cap = MAX(cap, (size_t)4096);
	}
	memcpy(r->whole + r->got, buf, n);
	r->got += n;
	r->whole[r->got] = 0;
	return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct http_conn *c = arg;
	const struct ld_src *s = c->t->owner;
	(void)dt, (void)dn, (void)ut, (void)un;
	if (s->abort && atomic_load(s->abort))
		return 1;
	if (s->deadline > 0 && now_sec() > s->deadline)
		return 1;
	return 0;
}

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *arg)
{
	struct ld_http *t = arg;
	(void)h, (void)a;
	pthread_mutex_lock(&t->share_mu[(unsigned)d % 8]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *arg)
{
	struct ld_http *t = arg;
	(void)h;
	pthread_mutex_unlock(&t->share_mu[(unsigned)d % 8]);
}

int ld_http_create(struct ld_src *owner, const struct ld_opts *o, struct ld_http **out)
{
	struct ld_http *t = calloc(1, sizeof(*t));
	CURLSH *sh;
	http_global_init();
	*out = NULL;
	if (!t)
		return ST_ENOMEM;
	t->owner = owner;
	t->connect_s = o->connect_s;
	t->stall_s = o->stall_s;
	for (int i = 0; i < 8; i++)
		pthread_mutex_init(&t->share_mu[i], NULL);
	if ((o->ca_bundle && !(t->ca_bundle = strdup(o->ca_bundle))) || !(sh = curl_share_init())) {
		ld_http_destroy(t);
		return ST_ENOMEM;
	}
	curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(sh, CURLSHOPT_USERDATA, t);
	curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	t->share = sh;
	*out = t;
	return 0;
}

void ld_http_destroy(struct ld_http *t)
{
	if (!t)
		return;
	if (t->share)
		curl_share_cleanup(t->share);
	for (int i = 0; i < 8; i++)
		pthread_mutex_destroy(&t->share_mu[i]);
	free(t->ca_bundle);
	free(t);
}

int ld_http_conn_create(struct ld_http *t, void **conn)
{
	struct http_conn *c = calloc(1, sizeof(*c));
	http_global_init();
	if (!c || !(c->h = curl_easy_init())) {
		free(c);
		return ST_ENOMEM;
	}
	c->t = t;
	*conn = c;
	return 0;
}

void ld_http_conn_destroy(void *conn)
{
	struct http_conn *c = conn;
	if (!c)
		return;
	curl_easy_cleanup(c->h);
	free(c);
}

static int map_status(long st)
{
	if (st == 408 || st == 429 || st >= 500)
		return ST_ENET;
	if (st == 401 || st == 403)
		return ST_EAUTH;
	if (st == 404 || st == 410)
		return ST_ENOENT;
	if (st == 416)
		return ST_ERANGE;
	return ST_EIO;
}

static int map_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return ST_ETIMEOUT;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_TOO_MANY_REDIRECTS:
		return ST_EIO;
	default:
		return ST_ENET;
	}
}

/* Printable start of an error body for messages. */
static void clean_body(const char *in, char *out, size_t cap)
{
	size_t j = 0;
	for (size_t i = 0; in[i] && j + 1 < cap && i < 160; i++)
		out[j++] = (in[i] >= 32 && in[i] < 127) ? in[i] : ' ';
	out[j] = 0;
}

int ld_http_perform(void *conn, struct ld_http_req *r, char *err, size_t errlen)
{
	struct http_conn *c = conn;
	const struct ld_http *t = c->t;
	const struct ld_src *s = t->owner;
	struct curl_slist *hl = NULL;
	char range[80], body[200];
	CURLcode cc;
	int rc = 0;

	r->status = 0;
	r->got = 0;
	r->total = 0;
	r->whole = NULL;
	r->errbody[0] = 0;
	r->content_encoding[0] = 0;
	r->etag[0] = 0;
	c->r = r;
	c->have_cr = c->started = c->wrong_range = c->overflow = c->encoded = 0;
	c->cr_raw[0] = 0;
	c->expect = 0;
	c->whole_cap = 0;
	if (s->abort && atomic_load(s->abort))
		return ST_ECANCEL;
	if (r->ranged && r->n == 0)
		return 0;

	curl_easy_reset(c->h);
	curl_easy_setopt(c->h, CURLOPT_URL, r->url);
	curl_easy_setopt(c->h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, (long)(t->connect_s * 1000));
	curl_easy_setopt(c->h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c->h, CURLOPT_LOW_SPEED_TIME, (long)(t->stall_s < 1 ? 1 : t->stall_s));
	curl_easy_setopt(c->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c->h, CURLOPT_BUFFERSIZE, 512L << 10);	/* fewer, larger body callbacks */
	curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c->h, CURLOPT_MAXREDIRS, 3L);
#if LIBCURL_VERSION_NUM < 0x075500	/* 7.85.0 added the _STR forms (Ubuntu 22.04 has 7.81) */
	curl_easy_setopt(c->h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(c->h, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#else
	curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
	if (t->share)
		curl_easy_setopt(c->h, CURLOPT_SHARE, t->share);
	if (t->ca_bundle)
		curl_easy_setopt(c->h, CURLOPT_CAINFO, t->ca_bundle);
	curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
	hl = curl_slist_append(hl, "Accept-Encoding: identity");
	if (r->ranged) {
		snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, r->off,
			 r->off + r->n - 1);
		hl = curl_slist_append(hl, range);
	}
	for (int i = 0; r->headers && r->headers[i]; i++)
		if (r->headers[i][0])
			hl = curl_slist_append(hl, r->headers[i]);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hl);
	if (r->method && strcmp(r->method, "POST") == 0)
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, r->body ? r->body : "");

	cc = curl_easy_perform(c->h);
	curl_slist_free_all(hl);
	if (!c->started)
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &r->status);

	if (s->abort && atomic_load(s->abort)) {
		rc = ST_ECANCEL;
		snprintf(err, errlen, "cancelled");
	} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
		rc = ST_ETIMEOUT;
		snprintf(err, errlen, "the load's deadline passed");
	} else if (c->wrong_range) {
		rc = ST_EFORMAT;
		snprintf(err, errlen, "asked for bytes=%" PRIu64 "-%" PRIu64 ", server answered HTTP %ld with Content-Range '%s'",
			 r->off, r->off + r->n - 1, r->status, c->have_cr ? c->cr_raw : "(none)");
	} else if (c->encoded) {
		rc = ST_EFORMAT;
		snprintf(err, errlen, "server answered with Content-Encoding '%s' (identity was asked for)",
			 r->content_encoding);
	} else if (c->overflow) {
		rc = r->ranged ? ST_EFORMAT : ST_ERANGE;
		snprintf(err, errlen, r->ranged ? "response body longer than its Content-Range"
						: "object larger than %zu bytes", r->max);
	} else if (cc != CURLE_OK) {
		rc = map_curl(cc);
		snprintf(err, errlen, "%s (after %zu bytes of the body)", curl_easy_strerror(cc), r->got);
	} else if (r->status < 200 || r->status >= 300) {
		rc = map_status(r->status);
		clean_body(r->errbody, body, sizeof(body));
		snprintf(err, errlen, "HTTP %ld%s%s", r->status, body[0] ? ": " : "", body);
	} else if (r->ranged && r->got != c->expect) {
		rc = ST_ENET;
		snprintf(err, errlen, "short body: %zu of %zu bytes", r->got, c->expect);
	} else if (r->ranged && !c->started) {
		rc = ST_ENET;
		snprintf(err, errlen, "empty body for a ranged read");
	}
	if (rc < 0 && r->whole) {
		free(r->whole);
		r->whole = NULL;
	}
	if (!r->ranged && rc == 0 && !r->whole && !(r->whole = calloc(1, 1)))
		rc = ST_ENOMEM;
	return rc;
}
