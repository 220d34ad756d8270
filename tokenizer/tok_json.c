/*
 * tok_json.c - the small JSON scanner tok_load.c reads tokenizer.json with:
 * strings unescaped straight into the caller's buffer (serde_json's rules:
 * lone surrogates are errors), values skipped without building anything,
 * and an object's members listed as (raw key, value span) pairs.
 * Bounded recursion (TOKJ_DEPTH); never reads past the end it is given.
 */
#include <string.h>

#include "tokenizer/tok_internal.h"

static int hex4(struct jp *j, uint32_t *out)
{
	uint32_t v = 0;
	if (j->e - j->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = j->p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	j->p += 4;
	*out = v;
	return 0;
}

size_t tok_utf8_put(char *d, uint32_t cp)
{
	if (cp < 0x80) {
		d[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		d[0] = (char)(0xc0 | (cp >> 6));
		d[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		d[0] = (char)(0xe0 | (cp >> 12));
		d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		d[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	d[0] = (char)(0xf0 | (cp >> 18));
	d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	d[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	d[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Reads a JSON string at j->p, unescaped into dst (which has room for the
 * raw length: unescaping never grows a string). Lone surrogates are errors,
 * as in serde_json.
 */
int tokj_str(struct jp *j, char *dst, size_t *n)
{
	size_t k = 0;
	tokj_ws(j);
	if (j->p >= j->e || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->e) {
		unsigned char c = (unsigned char)*j->p;
		if (c == '"') {
			j->p++;
			*n = k;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c != '\\') {
			dst[k++] = (char)c;
			j->p++;
			continue;
		}
		if (j->e - j->p < 2)
			return -1;
		c = (unsigned char)j->p[1];
		j->p += 2;
		switch (c) {
		case '"': dst[k++] = '"'; break;
		case '\\': dst[k++] = '\\'; break;
		case '/': dst[k++] = '/'; break;
		case 'b': dst[k++] = '\b'; break;
		case 'f': dst[k++] = '\f'; break;
		case 'n': dst[k++] = '\n'; break;
		case 'r': dst[k++] = '\r'; break;
		case 't': dst[k++] = '\t'; break;
		case 'u': {
			uint32_t cp, lo;
			if (hex4(j, &cp) < 0)
				return -1;
			if (cp >= 0xdc00 && cp < 0xe000)
				return -1;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (j->e - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
					return -1;
				j->p += 2;
				if (hex4(j, &lo) < 0 || lo < 0xdc00 || lo >= 0xe000)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			k += tok_utf8_put(dst + k, cp);
			break;
		}
		default:
			return -1;
		}
	}
	return -1;
}

/* Skips a string, returning its raw bytes between the quotes. */
int tokj_skip_str(struct jp *j, struct span *raw)
{
	tokj_ws(j);
	if (j->p >= j->e || *j->p != '"')
		return -1;
	const char *s = ++j->p;
	while (j->p < j->e) {
		const char *q = memchr(j->p, '"', (size_t)(j->e - j->p));
		if (!q)
			return -1;
		/* a quote preceded by an odd number of backslashes is escaped */
		size_t bs = 0;
		while (q - bs > s && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		j->p = q + 1;
		if (bs % 2 == 0) {
			if (raw) {
				raw->p = s;
				raw->n = (size_t)(q - s);
			}
			return 0;
		}
	}
	return -1;
}

int tokj_skip(struct jp *j, int depth)
{
	int c = tokj_peek(j);
	if (depth > TOKJ_DEPTH)
		return -1;
	if (c == '"')
		return tokj_skip_str(j, NULL);
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		j->p++;
		if (tokj_peek(j) == close) {
			j->p++;
			return 0;
		}
		for (;;) {
			if (c == '{' && (tokj_skip_str(j, NULL) < 0 || tokj_expect(j, ':') < 0))
				return -1;
			if (tokj_skip(j, depth + 1) < 0)
				return -1;
			int d = tokj_peek(j);
			j->p++;
			if (d == close)
				return 0;
			if (d != ',')
				return -1;
		}
	}
	/* number or literal */
	const char *s = j->p;
	while (j->p < j->e && *j->p != ',' && *j->p != '}' && *j->p != ']' && *j->p != ' ' &&
	       *j->p != '\n' && *j->p != '\r' && *j->p != '\t')
		j->p++;
	return j->p > s ? 0 : -1;
}

int tokj_span_is(struct span s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* The members of an object as (raw key, value span) pairs; at most max. */
int tokj_members(struct jp *j, struct span *keys, struct span *vals, int max, int *n)
{
	*n = 0;
	if (tokj_expect(j, '{') < 0)
		return -1;
	if (tokj_peek(j) == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		struct span k;
		if (tokj_skip_str(j, &k) < 0 || tokj_expect(j, ':') < 0)
			return -1;
		tokj_ws(j);
		const char *v = j->p;
		if (tokj_skip(j, 1) < 0)
			return -1;
		if (*n < max) {
			keys[*n] = k;
			vals[*n].p = v;
			vals[*n].n = (size_t)(j->p - v);
			(*n)++;
		}
		int d = tokj_peek(j);
		j->p++;
		if (d == '}')
			return 0;
		if (d != ',')
			return -1;
	}
}

struct span tokj_find(const struct span *keys, const struct span *vals, int n, const char *k)
{
	struct span none = { NULL, 0 };
	for (int i = 0; i < n; i++)
		if (tokj_span_is(keys[i], k))
			return vals[i];
	return none;
}

