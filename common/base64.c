/* base64.c - see base64.h. */
#include "common/base64.h"

#include <stdint.h>

static const char std_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n, enum b64_alphabet a)
{
	if (a == B64_STD)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t b64_encode(char *out, const void *in, size_t n, enum b64_alphabet a)
{
	const char *t = a == B64_URL ? url_chars : std_chars;
	const unsigned char *p = in;
	size_t i = 0, j = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[j++] = t[v >> 18];
		out[j++] = t[(v >> 12) & 63];
		out[j++] = t[(v >> 6) & 63];
		out[j++] = t[v & 63];
	}
	if (n - i >= 1) {
		uint32_t v = (uint32_t)p[i] << 16 | (n - i == 2 ? (uint32_t)p[i + 1] << 8 : 0);
		out[j++] = t[v >> 18];
		out[j++] = t[(v >> 12) & 63];
		if (n - i == 2)
			out[j++] = t[(v >> 6) & 63];
		else if (a == B64_STD)
			out[j++] = '=';
		if (a == B64_STD)
			out[j++] = '=';
	}
	out[j] = 0;
	return j;
}

static int value_of(unsigned char c, enum b64_alphabet a)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (a == B64_URL ? '-' : '+'))
		return 62;
	if (c == (a == B64_URL ? '_' : '/'))
		return 63;
	return -1;
}

long b64_decode(void *out, size_t cap, const char *in, size_t n, enum b64_alphabet a)
{
	unsigned char *o = out;
	size_t k = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (a == B64_STD) {
		if (n % 4)
			return -1;
		for (int pad = 0; pad < 2 && n > 0 && in[n - 1] == '='; pad++)
			n--;
	}
	if (n % 4 == 1)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int v = value_of((unsigned char)in[i], a);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k >= cap)
				return -1;
			o[k++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits && (acc & ((1u << bits) - 1)))	/* canonical: unused bits are zero */
		return -1;
	return (long)k;
}
