/*
 * base64.h - the one base64 codec (RFC 4648): the standard alphabet with
 * '=' padding (GCS's crc32c and md5Hash fields) and the URL-safe alphabet
 * without padding (JWTs, JWKs, signed GCS tokens).
 *
 * Decoding is strict: only the alphabet's characters, padding only where
 * the standard form needs it (and never in the URL form), and the unused
 * low bits of the last character must be zero, so every byte string has
 * exactly one accepted encoding.
 */
#ifndef GR_BASE64_H
#define GR_BASE64_H

#include <stddef.h>

enum b64_alphabet { B64_STD = 0, B64_URL = 1 };

/* Characters b64_encode writes for n bytes (without the NUL). */
size_t b64_encoded_len(size_t n, enum b64_alphabet a);

/* Encodes n bytes of in into out (room for b64_encoded_len + 1); NUL-terminates; returns the length. */
size_t b64_encode(char *out, const void *in, size_t n, enum b64_alphabet a);

/* Decodes n characters of in into out (at most cap bytes); the byte count, or -1 if invalid or too long. */
long b64_decode(void *out, size_t cap, const char *in, size_t n, enum b64_alphabet a);

#endif
