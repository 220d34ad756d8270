/*
 * gcs_auth.h - bearer tokens for the gcs source (gcs_auth.c): anonymous,
 * a service-account key, or the metadata server. Thread-safe.
 */
#ifndef GR_LD_GCS_AUTH_H
#define GR_LD_GCS_AUTH_H

#include <stddef.h>

struct gcs_auth;

/* Picks the credentials (see gcs_auth.c); errors are logged. Caller frees with gcs_auth_destroy. */
int gcs_auth_create(int anonymous, struct gcs_auth **out);
void gcs_auth_destroy(struct gcs_auth *a);

/*
 * Writes "Authorization: Bearer TOKEN" into buf (empty when anonymous),
 * refreshing the token as needed with a request on conn (an ld_http
 * connection of the caller's).
 */
int gcs_auth_header(struct gcs_auth *a, void *conn, char *buf, size_t cap, char *err, size_t errlen);

/* Forgets the cached token after a 401 (the next header fetches a new one). */
void gcs_auth_invalidate(struct gcs_auth *a, const char *token_header);

#endif
