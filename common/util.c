/* util.c - see util.h. */
#include "common/util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/status.h"


double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double wall_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

float f16_to_f32(f16 h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
	float f;

	if (exp == 0) {
		/* zero or subnormal: man * 2^-24 */
		f = ldexpf((float)man, -24);
		return sign ? -f : f;
	}
	if (exp == 31)
		u = sign | 0x7f800000u | (man << 13);
	else
		u = sign | ((exp + 112) << 23) | (man << 13);
	memcpy(&f, &u, 4);
	return f;
}

f16 f32_to_f16(float f)
{
	uint32_t u, sign, man;
	int exp;

	memcpy(&u, &f, 4);
	sign = (u >> 16) & 0x8000;
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (f16)(sign | 0x7e00);
	exp = (int)((u >> 23) & 0xff) - 127 + 15;
	man = u & 0x7fffff;
	if (exp >= 31)
		return (f16)(sign | 0x7c00);
	if (exp <= 0) {
		if (exp < -10)
			return (f16)sign;
		man |= 0x800000;
		uint32_t shift = (uint32_t)(14 - exp);
		uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
		if (rem > mid || (rem == mid && (half & 1)))
			half++;
		return (f16)(sign | half);
	}
	uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13);
	uint32_t rem = man & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
		h++;	/* may carry into the exponent, which is right */
	return (f16)h;
}

size_t json_escape_step(const char *s, size_t n, const char **rep, char tmp[8])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = (unsigned char)s[0];
	uint32_t cp;
	size_t l;

	*rep = NULL;
	switch (c) {
	case '"':  *rep = "\\\""; return 1;
	case '\\': *rep = "\\\\"; return 1;
	case '\n': *rep = "\\n"; return 1;
	case '\r': *rep = "\\r"; return 1;
	case '\t': *rep = "\\t"; return 1;
	}
	if (c < 0x20 || c == 0x7f) {
		memcpy(tmp, "\\u00", 4);
		tmp[4] = hex[c >> 4];
		tmp[5] = hex[c & 15];
		tmp[6] = 0;
		*rep = tmp;
		return 1;
	}
	if (c < 0x80)
		return 1;
	if ((l = utf8_decode(s, n, &cp)) > 0)
		return l;
	*rep = "\xef\xbf\xbd";	/* a byte that starts no valid character: U+FFFD */
	return 1;
}

size_t json_escape(char *dst, size_t cap, const char *s)
{
	size_t o = 0, n = strlen(s);
	if (cap == 0)
		return 0;
	for (size_t i = 0; i < n;) {
		char tmp[8];
		const char *rep;
		size_t used = json_escape_step(s + i, n - i, &rep, tmp);
		const char *src = rep ? rep : s + i;
		size_t len = rep ? strlen(rep) : used;
		if (o + len >= cap)
			break;
		memcpy(dst + o, src, len);
		o += len;
		i += used;
	}
	dst[o] = 0;
	return o;
}

int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;
	if (!s || !*s)
		return ST_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return ST_EINVAL;
	*out = v;
	return 0;
}

int parse_f64(const char *s, double *out)
{
	char *end;
	double v;
	if (!s || !*s)
		return ST_EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || isnan(v))
		return ST_EINVAL;
	*out = v;
	return 0;
}

size_t utf8_decode(const char *str, size_t n, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c;
	size_t len;
	uint32_t v;

	if (n == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		len = 2;
		v = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		v = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3f);
	}
	if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

int utf8_valid(const char *s, size_t n)
{
	uint32_t cp;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_decode(s + i, n - i, &cp);
		if (!len)
			return 0;
		i += len;
	}
	return 1;
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

double rng_uniform(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

double rng_normal(struct rng *r)
{
	double u1 = rng_uniform(r), u2 = rng_uniform(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
