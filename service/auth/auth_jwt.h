/*
 * auth_jwt.h - compact JWS (JWT) parsing and claim checks (auth_jwt.c).
 * No keys and no signatures here: a parsed token's signature is checked
 * by jwks_verify (auth_jwks.h).
 */
#ifndef GR_SERVICE_AUTH_JWT_H
#define GR_SERVICE_AUTH_JWT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define JWT_MAX_LEN 8192
#define AUTH_MAX_LIST 32

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

/* Parses a compact JWS (3 base64url parts). ST_EINVAL when malformed. */
int jwt_parse(const char *tok, size_t n, struct jwt *j);
void jwt_release(struct jwt *j);

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

#endif
