/*
 * auth.h - caller authentication for the HTTP API (DESIGN.md §2).
 *
 * Modes (combinable; a request passes when any enabled mode accepts it):
 *   api-key          Authorization: Bearer KEY, compared by SHA-256 digest
 *                    in constant time against every configured key.
 *   cloud-run-iam    Cloud Run already verified the Google ID token and
 *                    passes it on with the signature replaced by
 *                    SIGNATURE_REMOVED_BY_GOOGLE; we read the claims and
 *                    enforce --audience / --allowed-invokers. Only sound
 *                    behind --no-allow-unauthenticated.
 *   google-id-token  full RS256 verification against a JWKS (file or URL,
 *                    cached per Cache-Control max-age, refetched at most
 *                    once a minute on an unknown kid), iss, aud, exp, iat,
 *                    nbf with a stated skew, email_verified + invokers.
 * The ID token is read from X-Serverless-Authorization when present, else
 * from Authorization. Verdicts: 0 ok, 401 no or bad credentials, 403 valid
 * but not allowed. Reasons go to the debug log only, never to the caller.
 * auth_check is called on the loop thread; it never blocks (JWKS fetches
 * happen on the auth thread).
 */
#ifndef GR_SERVICE_AUTH_H
#define GR_SERVICE_AUTH_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "service/config.h"

#define JWT_MAX_LEN 8192
#define AUTH_MAX_LIST 32

/* ---- JWT (auth_jwt.c) ---- */
struct jwt {
	char alg[16];
	char kid[128];
	int sig_removed;		/* signature is SIGNATURE_REMOVED_BY_GOOGLE */
	unsigned char *sig;		/* decoded signature (owned) */
	size_t sig_len;
	char *signing_input;		/* "header.payload" (owned) */
	size_t signing_len;
	cJSON *claims;			/* owned */
	const char *iss, *email;	/* borrowed from claims, may be NULL */
	int email_verified;
	int has_exp, has_iat, has_nbf;
	double exp, iat, nbf;
};

struct jwks;

/* Parses a compact JWS (3 base64url parts). ST_EINVAL when malformed. */
int jwt_parse(const char *tok, size_t n, struct jwt *j);
void jwt_release(struct jwt *j);
/* RS256 over signing_input with the key of j->kid; 0 or ST_EAUTH. */
int jwt_verify_rs256(const struct jwt *j, const struct jwks *keys);

struct jwt_policy {
	int n_aud;
	const char *aud[AUTH_MAX_LIST];
	int n_invokers;
	const char *invokers[AUTH_MAX_LIST];
	double skew_s;
	int check_iss;			/* iss must be Google's */
};
/* Claims: 0 ok, 401 (bad/expired/wrong aud or iss) or 403 (email not allowed). */
int jwt_check_claims(const struct jwt *j, const struct jwt_policy *p, double now, const char **why);

/* ---- JWKS (auth_jwks.c) ---- */
int jwks_parse(const char *json, size_t n, struct jwks **out);
void jwks_destroy(struct jwks *k);
int jwks_count(const struct jwks *k);
/* Borrowed EVP_PKEY * of the key with this kid, or NULL. */
void *jwks_find(const struct jwks *k, const char *kid);

/* A source of keys: a file (read once) or a URL (fetched on a thread). */
struct jwks_src;
int jwks_src_create(const char *file, const char *url, const char *ca_bundle, struct jwks_src **out);
void jwks_src_destroy(struct jwks_src *s);
/*
 * Verifies j's signature with the current key set. On an unknown kid asks
 * the fetch thread for a refresh (at most once a minute) and fails.
 */
int jwks_src_verify(struct jwks_src *s, const struct jwt *j);
/* Parses Cache-Control for max-age (minus Age); -1 if absent. */
double jwks_max_age(const char *cache_control, const char *age);

/* ---- the checker (auth.c) ---- */
struct auth;

int auth_create(const struct srv_config *cfg, struct auth **out);
void auth_destroy(struct auth *a);
int auth_enabled(const struct auth *a);
/*
 * Checks one request's headers (either may be NULL). Returns 0, 401 or
 * 403; *who (may be NULL) gets a short caller identity for the access log.
 */
int auth_check(struct auth *a, const char *authorization, const char *x_serverless,
	       char *who, size_t who_len);

#endif
