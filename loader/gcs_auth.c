/*
 * gcs_auth.c - bearer tokens for the GCS source, in this order:
 *   1. --gcs-anonymous: no Authorization header (public buckets);
 *   2. GOOGLE_APPLICATION_CREDENTIALS naming a service-account key: a JWT
 *      (RS256, signed with OpenSSL; iss = client_email, aud = token_uri,
 *      scope devstorage.read_only, exp = iat + 3600) exchanged at the key's
 *      token_uri with the jwt-bearer grant;
 *   3. the metadata server (GCE_METADATA_HOST overrides
 *      metadata.google.internal), header Metadata-Flavor: Google.
 * A token is cached and refreshed 225 s before it expires (or at half its
 * lifetime if shorter); a 401 drops it. One lock: workers that find the
 * token stale wait for the one refreshing it. A token request that fails
 * transiently (5xx, reset, timeout) returns ST_ENET/ST_ETIMEOUT so that the
 * read that needed it is retried. Tokens never reach the log.
 */
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/base64.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "loader/gcs_auth.h"
#include "loader/http.h"
#include "loader/ld_internal.h"

enum { AUTH_ANON = 0, AUTH_SA, AUTH_META };

struct gcs_auth {
	int mode;
	pthread_mutex_t mu;
	char header[2200];		/* "Authorization: Bearer ..." or "" */
	double refresh_at;		/* now_sec() after which to refresh */
	/* service account */
	char *email, *key_id, *token_uri, *key_path;
	EVP_PKEY *key;
	/* metadata server */
	char *meta_url;
};

static char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring[0] ? strdup(v->valuestring) : NULL;
}

static int load_sa_key(struct gcs_auth *a, const char *path)
{
	char *buf = NULL, *pem = NULL, *type = NULL;
	size_t len;
	cJSON *root = NULL;
	BIO *bio = NULL;
	int rc;

	if ((rc = read_file(path, 1u << 20, &buf, &len)) < 0)
		return log_err(ST_EAUTH, "GOOGLE_APPLICATION_CREDENTIALS: cannot read '%s'", path);
	rc = ST_EAUTH;
	if (!(root = cJSON_ParseWithLength(buf, len)) || !cJSON_IsObject(root)) {
		log_err(rc, "GOOGLE_APPLICATION_CREDENTIALS: '%s' is not JSON", path);
		goto out;
	}
	type = json_str(root, "type");
	if (!type || strcmp(type, "service_account") != 0) {
		log_err(rc, "GOOGLE_APPLICATION_CREDENTIALS: '%s' is of type '%s'; only service_account "
			"keys are supported", path, type ? type : "(none)");
		goto out;
	}
	a->email = json_str(root, "client_email");
	a->key_id = json_str(root, "private_key_id");
	a->token_uri = json_str(root, "token_uri");
	pem = json_str(root, "private_key");
	if (!a->token_uri)
		a->token_uri = strdup("https://oauth2.googleapis.com/token");
	if (!a->email || !pem || !a->token_uri) {
		log_err(rc, "GOOGLE_APPLICATION_CREDENTIALS: '%s' lacks client_email or private_key", path);
		goto out;
	}
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio || !(a->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) ||
	    EVP_PKEY_get_base_id(a->key) != EVP_PKEY_RSA) {
		log_err(rc, "GOOGLE_APPLICATION_CREDENTIALS: '%s': private_key is not an RSA PEM key", path);
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	cJSON_Delete(root);
	free(type);
	free(pem);
	free(buf);
	return rc;
}

int gcs_auth_create(int anonymous, struct gcs_auth **out)
{
	struct gcs_auth *a = calloc(1, sizeof(*a));
	const char *cred = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	int rc = 0;
	if (!a)
		return ST_ENOMEM;
	pthread_mutex_init(&a->mu, NULL);
	if (anonymous) {
		a->mode = AUTH_ANON;
	} else if (cred && cred[0]) {
		a->mode = AUTH_SA;
		rc = load_sa_key(a, cred);
	} else {
		const char *host = getenv("GCE_METADATA_HOST");
		size_t n;
		if (!host || !host[0])
			host = "metadata.google.internal";
		n = strlen(host) + 96;
		a->mode = AUTH_META;
		if (!(a->meta_url = malloc(n)))
			rc = ST_ENOMEM;
		else
			snprintf(a->meta_url, n, "http://%s/computeMetadata/v1/instance/service-accounts/default/token",
				 host);
	}
	if (rc < 0) {
		gcs_auth_destroy(a);
		return rc;
	}
	*out = a;
	return 0;
}

void gcs_auth_destroy(struct gcs_auth *a)
{
	if (!a)
		return;
	EVP_PKEY_free(a->key);
	free(a->email);
	free(a->key_id);
	free(a->token_uri);
	free(a->key_path);
	free(a->meta_url);
	pthread_mutex_destroy(&a->mu);
	explicit_bzero(a->header, sizeof(a->header));
	free(a);
}

/* The signed assertion for the jwt-bearer grant; caller frees. */
static char *make_jwt(struct gcs_auth *a)
{
	char hdr[512], claims[2048], *jwt = NULL, *signing = NULL;
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	long now = (long)time(NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char kid[256], email[512], aud[1024];

	json_escape(kid, sizeof(kid), a->key_id ? a->key_id : "");
	json_escape(email, sizeof(email), a->email);
	json_escape(aud, sizeof(aud), a->token_uri);
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"typ\":\"JWT\"%s%s%s}", a->key_id ? ",\"kid\":\"" : "",
		 a->key_id ? kid : "", a->key_id ? "\"" : "");
	snprintf(claims, sizeof(claims), "{\"iss\":\"%s\",\"scope\":\"https://www.googleapis.com/auth/"
		 "devstorage.read_only\",\"aud\":\"%s\",\"iat\":%ld,\"exp\":%ld}", email, aud, now, now + 3600);
	size_t hl = strlen(hdr), cl = strlen(claims);
	if (!md || !(signing = malloc((hl + cl) * 2 + 8)))
		goto out;
	b64_encode(signing, hdr, hl, B64_URL);
	strcat(signing, ".");
	b64_encode(signing + strlen(signing), claims, cl, B64_URL);
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (unsigned char *)signing, strlen(signing)) != 1)
		goto out;
	if (!(jwt = malloc(strlen(signing) + siglen * 2 + 8)))
		goto out;
	sprintf(jwt, "%s.", signing);
	b64_encode(jwt + strlen(jwt), sig, siglen, B64_URL);
out:
	EVP_MD_CTX_free(md);
	free(signing);
	return jwt;
}

/* Reads {access_token, expires_in} from a token response. */
static int parse_token(struct gcs_auth *a, const char *body, size_t n, const char *from, char *err,
		       size_t errlen)
{
	cJSON *root = cJSON_ParseWithLength(body, n);
	const cJSON *tok = root ? cJSON_GetObjectItemCaseSensitive(root, "access_token") : NULL;
	const cJSON *exp = root ? cJSON_GetObjectItemCaseSensitive(root, "expires_in") : NULL;
	int rc = ST_EAUTH;
	if (!cJSON_IsString(tok) || !tok->valuestring[0] || strlen(tok->valuestring) > 2048 ||
	    strspn(tok->valuestring, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=") !=
		    strlen(tok->valuestring)) {
		snprintf(err, errlen, "token response from %s has no usable access_token", from);
		goto out;
	}
	double life = cJSON_IsNumber(exp) && exp->valuedouble > 0 ? exp->valuedouble : 3600;
	double margin = MIN(225.0, life / 2);
	snprintf(a->header, sizeof(a->header), "Authorization: Bearer %s", tok->valuestring);
	a->refresh_at = now_sec() + life - margin;
	log_info("gcs: got an access token from %s, valid %.0f s", from, life);
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

static int refresh(struct gcs_auth *a, void *conn, char *err, size_t errlen)
{
	struct ld_http_req r = { .max = 1u << 20 };
	char why[LD_ERR_MAX], *jwt = NULL, *form = NULL;
	const char *hdrs[2] = { "Metadata-Flavor: Google", NULL };
	int rc;

	if (a->mode == AUTH_SA) {
		if (!(jwt = make_jwt(a))) {
			snprintf(err, errlen, "cannot sign the service-account JWT");
			return ST_EAUTH;
		}
		if (!(form = malloc(strlen(jwt) + 128))) {
			free(jwt);
			return ST_ENOMEM;
		}
		sprintf(form, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt);
		r.url = a->token_uri;
		r.method = "POST";
		r.body = form;
	} else {
		r.url = a->meta_url;
		r.headers = hdrs;
	}
	rc = ld_http_perform(conn, &r, why, sizeof(why));
	if (rc < 0) {
		/* 5xx, reset, timeout: transient, the caller's read is retried (same as a chunk's) */
		int again = rc == ST_ENET || rc == ST_ETIMEOUT;
		if (a->mode == AUTH_META)
			snprintf(err, errlen, "%sthe metadata server (%.200s) failed: %.300s; pass "
				 "--gcs-anonymous for a public bucket", again ? "getting a GCS access token from " :
				 "no GCS credentials: GOOGLE_APPLICATION_CREDENTIALS is unset and ", a->meta_url, why);
		else
			snprintf(err, errlen, "service-account token exchange at %.200s failed: %.500s",
				 a->token_uri, why);
		rc = rc == ST_ECANCEL || again ? rc : ST_EAUTH;
	} else {
		rc = parse_token(a, r.whole, r.got, a->mode == AUTH_SA ? a->token_uri : a->meta_url, err,
				 errlen);
	}
	free(r.whole);
	free(form);
	free(jwt);
	return rc;
}

int gcs_auth_header(struct gcs_auth *a, void *conn, char *buf, size_t cap, char *err, size_t errlen)
{
	int rc = 0;
	if (!a || a->mode == AUTH_ANON) {
		buf[0] = 0;
		return 0;
	}
	pthread_mutex_lock(&a->mu);
	if (!a->header[0] || now_sec() >= a->refresh_at)
		rc = refresh(a, conn, err, errlen);
	if (rc == 0)
		snprintf(buf, cap, "%s", a->header);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void gcs_auth_invalidate(struct gcs_auth *a, const char *token_header)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->mu);
	if (strcmp(a->header, token_header) == 0) {
		a->header[0] = 0;
		log_warn("gcs: token refused (401); fetching a new one");
	}
	pthread_mutex_unlock(&a->mu);
}
