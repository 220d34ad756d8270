/*
 * auth.c - the request checker over api keys, Cloud Run IAM claims and
 * verified Google ID tokens (see auth.h for the modes and verdicts).
 *
 * API keys are kept only as SHA-256 digests; a presented key is hashed and
 * compared with CRYPTO_memcmp against every digest (no early exit), so the
 * time does not depend on how much of a key matched or which key it was.
 */
#include "service/auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "service/auth/auth_jwks.h"
#include "service/auth/auth_jwt.h"

#define MAX_KEYS 64

struct auth {
	unsigned modes;
	int n_keys;
	unsigned char key_sha[MAX_KEYS][SHA256_DIGEST_LENGTH];
	char *lists;			/* backing store of policy strings */
	struct jwt_policy iam, idt;
	struct jwks_src *jwks;
};

/* Splits a comma-separated copy in place into up to max trimmed items. */
static int split_list(char *s, const char **out, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ' || *t == '\t')
			t++;
		char *e = t + strlen(t);
		while (e > t && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
			*--e = 0;
		if (*t && n < max)
			out[n++] = t;
	}
	return n;
}

static int add_key(struct auth *a, const char *k, size_t n)
{
	if (!n)
		return 0;
	if (a->n_keys == MAX_KEYS)
		return log_err(ST_EINVAL, "too many api keys (max %d)", MAX_KEYS);
	SHA256((const unsigned char *)k, n, a->key_sha[a->n_keys++]);
	return 0;
}

static int add_keys(struct auth *a, const char *s, char sep)
{
	while (*s) {
		size_t n = strcspn(s, sep == ',' ? ",\r\n" : "\r\n");
		const char *k = s;
		size_t m = n;
		while (m && (*k == ' ' || *k == '\t')) { k++; m--; }
		while (m && (k[m - 1] == ' ' || k[m - 1] == '\t'))
			m--;
		if (sep == '\n' && m && k[0] == '#')
			m = 0;
		if (add_key(a, k, m) < 0)
			return ST_EINVAL;
		s += n;
		while (*s == ',' || *s == '\r' || *s == '\n')
			s++;
	}
	return 0;
}

int auth_create(const struct srv_config *cfg, struct auth **out)
{
	struct auth *a = calloc(1, sizeof(*a));
	int rc = 0;
	size_t inv = cfg->allowed_invokers ? strlen(cfg->allowed_invokers) : 0;
	size_t aud = cfg->audience ? strlen(cfg->audience) : 0;

	*out = NULL;
	if (!a)
		return ST_ENOMEM;
	a->modes = cfg->auth;
	a->lists = malloc(2 * (inv + aud + 2));
	if (!a->lists) {
		rc = ST_ENOMEM;
		goto fail;
	}
	/* two copies of each list: one per policy */
	char *p = a->lists;
	struct jwt_policy *pol[2] = { &a->iam, &a->idt };
	for (int k = 0; k < 2; k++) {
		memcpy(p, inv ? cfg->allowed_invokers : "", inv + 1);
		pol[k]->n_invokers = split_list(p, pol[k]->invokers, AUTH_MAX_LIST);
		p += inv + 1;
		memcpy(p, aud ? cfg->audience : "", aud + 1);
		pol[k]->n_aud = split_list(p, pol[k]->aud, AUTH_MAX_LIST);
		p += aud + 1;
		pol[k]->skew_s = cfg->jwt_skew_s;
		pol[k]->check_iss = 1;
	}
	if (a->modes & CFG_AUTH_API_KEY) {
		if (cfg->api_key && (rc = add_keys(a, cfg->api_key, ',')) < 0)
			goto fail;
		if (cfg->api_key_file) {
			char *buf;
			size_t n;
			if ((rc = read_file(cfg->api_key_file, 1 << 20, &buf, &n)) < 0) {
				log_err(rc, "cannot read --api-key-file '%s'", cfg->api_key_file);
				goto fail;
			}
			rc = add_keys(a, buf, '\n');
			OPENSSL_cleanse(buf, n);
			free(buf);
			if (rc < 0)
				goto fail;
		}
		if (!a->n_keys) {
			rc = log_err(ST_EINVAL, "api-key auth is on but no key was given");
			goto fail;
		}
	}
	if (a->modes & CFG_AUTH_GOOGLE_ID_TOKEN) {
		if (!a->idt.n_aud) {
			rc = log_err(ST_EINVAL, "google-id-token auth needs --audience");
			goto fail;
		}
		if ((rc = jwks_src_create(cfg->jwks_file, cfg->jwks_file ? NULL : cfg->jwks_url,
					  cfg->ca_bundle, &a->jwks)) < 0)
			goto fail;
	}
	if ((a->modes & CFG_AUTH_CLOUD_RUN_IAM) && !a->iam.n_invokers && !a->iam.n_aud)
		log_warn("cloud-run-iam auth without --allowed-invokers or --audience trusts any caller "
			 "Cloud Run IAM let through");
	*out = a;
	return 0;
fail:
	auth_destroy(a);
	return rc;
}

void auth_destroy(struct auth *a)
{
	if (!a)
		return;
	jwks_src_destroy(a->jwks);
	OPENSSL_cleanse(a->key_sha, sizeof(a->key_sha));
	free(a->lists);
	free(a);
}

int auth_enabled(const struct auth *a)
{
	return a && a->modes;
}

/* The credential after "Bearer " (case-insensitive scheme), or NULL. */
static const char *bearer(const char *h, size_t *n)
{
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	size_t m = strlen(h);
	while (m && h[m - 1] == ' ')
		m--;
	if (!m)
		return NULL;
	*n = m;
	return h;
}

static int check_key(const struct auth *a, const char *k, size_t n)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	int hit = 0;
	SHA256((const unsigned char *)k, n, d);
	for (int i = 0; i < a->n_keys; i++)
		hit |= CRYPTO_memcmp(d, a->key_sha[i], sizeof(d)) == 0;
	return hit;
}

static void set_who(char *who, size_t len, const char *kind, const char *email)
{
	if (who && len)
		snprintf(who, len, "%s%s%s", kind, email ? ":" : "", email ? email : "");
}

int auth_check(struct auth *a, const char *authorization, const char *x_serverless, char *who,
	       size_t who_len)
{
	int verdict = 401;
	const char *why = NULL;
	size_t kn = 0, tn = 0;
	const char *key = bearer(authorization, &kn);
	const char *tok = x_serverless ? bearer(x_serverless, &tn) : bearer(authorization, &tn);

	set_who(who, who_len, "anonymous", NULL);
	if (!a || !a->modes)
		return 0;
	if ((a->modes & CFG_AUTH_API_KEY) && key && check_key(a, key, kn)) {
		set_who(who, who_len, "api-key", NULL);
		return 0;
	}
	if (!(a->modes & (CFG_AUTH_CLOUD_RUN_IAM | CFG_AUTH_GOOGLE_ID_TOKEN)) || !tok)
		return 401;

	struct jwt j;
	if (jwt_parse(tok, tn, &j) < 0) {
		log_debug("auth: malformed token");
		return 401;
	}
	double now = wall_sec();
	if ((a->modes & CFG_AUTH_CLOUD_RUN_IAM) && j.sig_removed) {
		int v = jwt_check_claims(&j, &a->iam, now, &why);
		if (v == 0) {
			set_who(who, who_len, "iam", j.email);
			jwt_release(&j);
			return 0;
		}
		verdict = v;
	}
	if ((a->modes & CFG_AUTH_GOOGLE_ID_TOKEN) && !j.sig_removed) {
		if (jwks_src_verify(a->jwks, &j) == 0) {
			int v = jwt_check_claims(&j, &a->idt, now, &why);
			if (v == 0) {
				set_who(who, who_len, "id-token", j.email);
				jwt_release(&j);
				return 0;
			}
			if (v == 403 || verdict != 403)
				verdict = v;
		} else {
			why = "bad signature, algorithm or key id";
		}
	}
	if (why)
		log_debug("auth: rejected (%d): %s", verdict, why);
	jwt_release(&j);
	return verdict;
}
