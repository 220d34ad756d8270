/*
 * auth.h - caller authentication for the HTTP API (auth.c).
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
 *
 * Files, calls one way: auth.c (modes, api keys) uses auth_jwt.c (token
 * parsing, claims) and auth_jwks.c (key sets, their source, RS256
 * signatures); auth_jwks.c reads auth_jwt.h's struct jwt and calls nothing
 * back.
 */
#ifndef GR_SERVICE_AUTH_H
#define GR_SERVICE_AUTH_H

#include <stddef.h>

#include "service/config.h"

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
