/*
 * url.h - URL helpers of the network sources (http(s) and gcs): nothing
 * here does I/O.
 */
#ifndef GR_LD_URL_H
#define GR_LD_URL_H

#include <stddef.h>

/*
 * Percent-encodes a name into out (cap bytes, NUL-terminated): every byte
 * but the RFC 3986 unreserved ones (A-Z a-z 0-9 - . _ ~) becomes %XX, '/'
 * included, so that a GCS object name is one path segment of the JSON API
 * and a shard name with ' ', '%', '?' or '#' stays a byte of the name in
 * an http(s) URL. 0, or ST_ERANGE when out is too small.
 */
int ld_url_encode(const char *name, char *out, size_t cap);

#endif
