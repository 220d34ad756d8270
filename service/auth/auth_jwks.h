/*
 * auth_jwks.h - JSON Web Key Sets (auth_jwks.c): RSA key sets, the RS256
 * signature check of a parsed token (struct jwt, auth_jwt.h) against a
 * set, and a source that keeps the current set fresh.
 */
#ifndef GR_SERVICE_AUTH_JWKS_H
#define GR_SERVICE_AUTH_JWKS_H

#include <stddef.h>

#include "service/auth/auth_jwt.h"

struct jwks;

int jwks_parse(const char *json, size_t n, struct jwks **out);
void jwks_destroy(struct jwks *k);
int jwks_count(const struct jwks *k);
/* Borrowed EVP_PKEY * of the key with this kid, or NULL. */
void *jwks_find(const struct jwks *k, const char *kid);
/* RS256 over j's signing input with the key of j->kid in k (may be NULL);
 * 0, ST_EAUTH, or ST_ENOMEM. The algorithm is ours, never the token's. */
int jwks_verify(const struct jwks *k, const struct jwt *j);

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

#endif
