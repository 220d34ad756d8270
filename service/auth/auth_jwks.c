/*
 * auth_jwks.c - JSON Web Key Sets: parsing RSA keys, RS256 signature
 * checks of parsed tokens (auth_jwt.h) against a set, and a source that
 * keeps the current set fresh.
 *
 * Only RS256 is accepted: the algorithm comes from our policy, never from
 * the token, so "alg":"none" and HS256-with-the-public-key both fail before
 * any key is used.
 *
 * A file source is read once at creation. A URL source is fetched by its
 * own thread (libcurl, blocking there, never on the loop thread): at start,
 * when the cached set expires (Cache-Control max-age minus Age, at least
 * 60 s, 1 h when absent), and when a token names an unknown kid - at most
 * once a minute. While it holds no key set at all it retries after 1, 2,
 * 4 ... 60 s. The key set is swapped under a mutex; readers take it with a
 * reference count so a swap never frees keys in use.
 */
#include "service/auth/auth_jwks.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "common/base64.h"
#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"

#define JWKS_MAX_KEYS 32
#define JWKS_MAX_BYTES (256 * 1024)
#define JWKS_MIN_REFETCH_S 60.0

struct jwks_key {
	char kid[128];
	EVP_PKEY *pk;
};

struct jwks {
	_Atomic int refs;
	int n;
	struct jwks_key keys[JWKS_MAX_KEYS];
};

static EVP_PKEY *rsa_from_ne(const unsigned char *n, size_t nl, const unsigned char *e, size_t el)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);

	if (!bld || !bn || !be)
		goto out;
	/* RSA keys under 2048 bits are refused */
	if (BN_num_bits(bn) < 2048 || BN_num_bits(bn) > 8192)
		goto out;
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pk = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}

static const char *str_item(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int jwks_parse(const char *json, size_t len, struct jwks **out)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	const cJSON *keys, *k;
	struct jwks *s;
	unsigned char nb[1100], eb[16];

	*out = NULL;
	if (!root)
		return ST_EFORMAT;
	keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
	if (!cJSON_IsArray(keys)) {
		cJSON_Delete(root);
		return ST_EFORMAT;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		cJSON_Delete(root);
		return ST_ENOMEM;
	}
	s->refs = 1;
	cJSON_ArrayForEach(k, keys) {
		const char *kty = str_item(k, "kty"), *kid = str_item(k, "kid"), *n = str_item(k, "n"),
			   *e = str_item(k, "e"), *alg = str_item(k, "alg"), *use = str_item(k, "use");
		if (!kty || strcmp(kty, "RSA") || !kid || !n || !e || s->n == JWKS_MAX_KEYS)
			continue;
		if ((alg && strcmp(alg, "RS256")) || (use && strcmp(use, "sig")))
			continue;
		if (strlen(kid) >= sizeof(s->keys[0].kid))
			continue;
		long nl = b64_decode(nb, sizeof(nb), n, strlen(n), B64_URL);
		long el = b64_decode(eb, sizeof(eb), e, strlen(e), B64_URL);
		if (nl <= 0 || el <= 0)
			continue;
		EVP_PKEY *pk = rsa_from_ne(nb, (size_t)nl, eb, (size_t)el);
		if (!pk)
			continue;
		snprintf(s->keys[s->n].kid, sizeof(s->keys[0].kid), "%s", kid);
		s->keys[s->n++].pk = pk;
	}
	cJSON_Delete(root);
	*out = s;
	return 0;
}

static void jwks_unref(struct jwks *k)
{
	if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	for (int i = 0; i < k->n; i++)
		EVP_PKEY_free(k->keys[i].pk);
	free(k);
}

void jwks_destroy(struct jwks *k)
{
	jwks_unref(k);
}

int jwks_count(const struct jwks *k)
{
	return k ? k->n : 0;
}

void *jwks_find(const struct jwks *k, const char *kid)
{
	if (!k)
		return NULL;
	for (int i = 0; i < k->n; i++)
		if (!strcmp(k->keys[i].kid, kid))
			return k->keys[i].pk;
	return NULL;
}

int jwks_verify(const struct jwks *keys, const struct jwt *j)
{
	EVP_PKEY *pk;
	EVP_MD_CTX *md;
	int ok = 0;

	if (strcmp(j->alg, "RS256") != 0 || j->sig_removed || !j->sig || !j->kid[0] || !keys)
		return ST_EAUTH;
	pk = jwks_find(keys, j->kid);
	if (!pk || EVP_PKEY_base_id(pk) != EVP_PKEY_RSA)
		return ST_EAUTH;
	md = EVP_MD_CTX_new();
	if (!md)
		return ST_ENOMEM;
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
	    EVP_DigestVerify(md, j->sig, j->sig_len, (const unsigned char *)j->signing_input,
			     j->signing_len) == 1)
		ok = 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : ST_EAUTH;
}

double jwks_max_age(const char *cc, const char *age)
{
	const char *p;
	double ma = -1, a = 0;

	if (!cc || !(p = strcasestr(cc, "max-age=")))
		return -1;
	ma = strtod(p + 8, NULL);
	if (age)
		a = strtod(age, NULL);
	if (a < 0)
		a = 0;
	return ma - a;
}

/* ---- the source ---- */

struct jwks_src {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	int have_thread, stop, want_refresh;
	int curl_init;			/* curl_global_init was called (url source) */
	char *url, *ca_bundle;
	struct jwks *cur;
	double expires;			/* now_sec() when the set should be refetched */
	double last_fetch;		/* now_sec() of the last attempt */
	int failures;			/* consecutive failed fetches while no key set is held */
};

struct fetch_buf {
	char *p;
	size_t n;
	char cache_control[256], age[32];
};

static size_t on_body(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct fetch_buf *b = arg;
	size_t n = sz * nm;
	if (b->n + n > JWKS_MAX_BYTES)
		return 0;
	char *q = realloc(b->p, b->n + n + 1);
	if (!q)
		return 0;
	memcpy(q + b->n, ptr, n);
	b->p = q;
	b->n += n;
	b->p[b->n] = 0;
	return n;
}

static void header_value(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) != 0)
		return;
	line += k;
	n -= k;
	while (n && (*line == ' ' || *line == '\t')) { line++; n--; }
	while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
		n--;
	snprintf(dst, cap, "%.*s", (int)MIN(n, cap - 1), line);
}

static size_t on_header(char *ptr, size_t sz, size_t nm, void *arg)
{
	struct fetch_buf *b = arg;
	size_t n = sz * nm;
	header_value(ptr, n, "cache-control:", b->cache_control, sizeof(b->cache_control));
	header_value(ptr, n, "age:", b->age, sizeof(b->age));
	return n;
}

static int fetch_once(struct jwks_src *s)
{
	struct fetch_buf b;
	struct jwks *k = NULL;
	long code = 0;
	CURL *c = curl_easy_init();
	int rc;

	memset(&b, 0, sizeof(b));
	if (!c)
		return ST_ENOMEM;
	curl_easy_setopt(c, CURLOPT_URL, s->url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	if (s->ca_bundle)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_bundle);
	CURLcode cr = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (cr != CURLE_OK || code != 200 || !b.p) {
		free(b.p);
		return log_err(ST_ENET, "jwks fetch '%s' failed: %s, http %ld", s->url,
			       curl_easy_strerror(cr), code);
	}
	rc = jwks_parse(b.p, b.n, &k);
	free(b.p);
	if (rc < 0)
		return log_err(rc, "jwks from '%s' is not a key set", s->url);
	double ma = jwks_max_age(b.cache_control, b.age[0] ? b.age : NULL);
	if (ma < 0)
		ma = 3600;
	if (ma < JWKS_MIN_REFETCH_S)
		ma = JWKS_MIN_REFETCH_S;
	pthread_mutex_lock(&s->mu);
	struct jwks *old = s->cur;
	s->cur = k;
	s->expires = now_sec() + ma;
	pthread_mutex_unlock(&s->mu);
	jwks_unref(old);
	log_info("jwks: %d keys from %s, cached %.0f s", k->n, s->url, ma);
	return 0;
}

static void *fetch_thread(void *arg)
{
	struct jwks_src *s = arg;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		double now = now_sec();
		/* without any key set, retry sooner: 1, 2, 4 ... 60 s */
		double gap = s->cur ? JWKS_MIN_REFETCH_S : MIN(JWKS_MIN_REFETCH_S, (double)(1 << MIN(s->failures, 6)));
		int due = (s->want_refresh || !s->cur || now >= s->expires) && now - s->last_fetch >= gap;
		if (due) {
			s->want_refresh = 0;
			s->last_fetch = now;
			pthread_mutex_unlock(&s->mu);
			int rc = fetch_once(s);
			pthread_mutex_lock(&s->mu);
			s->failures = rc < 0 ? s->failures + 1 : 0;
			continue;
		}
		double wake = s->cur ? s->expires : now + JWKS_MIN_REFETCH_S;
		if (s->want_refresh || !s->cur)
			wake = s->last_fetch + gap;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		double dt = MAX(wake - now, 0.05);
		dt = MIN(dt, 3600);
		ts.tv_sec += (time_t)dt;
		ts.tv_nsec += (long)((dt - (double)(time_t)dt) * 1e9);
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int jwks_src_create(const char *file, const char *url, const char *ca_bundle, struct jwks_src **out)
{
	struct jwks_src *s = calloc(1, sizeof(*s));
	int rc = 0;

	*out = NULL;
	if (!s)
		return ST_ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->last_fetch = -1e9;
	if (file) {
		char *buf;
		size_t n;
		if ((rc = read_file(file, JWKS_MAX_BYTES, &buf, &n)) < 0)
			goto fail;
		rc = jwks_parse(buf, n, &s->cur);
		free(buf);
		if (rc < 0) {
			log_err(rc, "jwks file '%s' is not a key set", file);
			goto fail;
		}
		s->expires = 1e300;
		log_info("jwks: %d keys from %s", s->cur->n, file);
	} else if (url) {
		s->url = strdup(url);
		s->ca_bundle = ca_bundle ? strdup(ca_bundle) : NULL;
		if (!s->url || (ca_bundle && !s->ca_bundle)) {
			rc = ST_ENOMEM;
			goto fail;
		}
		/* libcurl's global state, counted: released in jwks_src_destroy */
		curl_global_init(CURL_GLOBAL_DEFAULT);
		s->curl_init = 1;
		if (pthread_create(&s->thread, NULL, fetch_thread, s) != 0) {
			rc = ST_ENOMEM;
			goto fail;
		}
		s->have_thread = 1;
	} else {
		rc = log_err(ST_EINVAL, "google-id-token auth needs --jwks-file or --jwks-url");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	jwks_src_destroy(s);
	return rc;
}

void jwks_src_destroy(struct jwks_src *s)
{
	if (!s)
		return;
	if (s->have_thread) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	jwks_unref(s->cur);
	if (s->curl_init)
		curl_global_cleanup();
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->url);
	free(s->ca_bundle);
	free(s);
}

int jwks_src_verify(struct jwks_src *s, const struct jwt *j)
{
	struct jwks *k;
	int rc;

	pthread_mutex_lock(&s->mu);
	k = s->cur;
	if (k)
		atomic_fetch_add(&k->refs, 1);
	pthread_mutex_unlock(&s->mu);
	if (k && j->kid[0] && !jwks_find(k, j->kid) && s->have_thread) {
		pthread_mutex_lock(&s->mu);
		s->want_refresh = 1;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	rc = jwks_verify(k, j);
	jwks_unref(k);
	return rc;
}
