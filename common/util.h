/*
 * util.h - small helpers shared by every module: clocks, float formats
 * (bf16, f16), JSON string escaping, UTF-8 checks, number parsing, a PRNG.
 *
 * Nothing here allocates or logs (log.c builds on it; file I/O, which logs
 * its errors, is in fileio.h).
 */
#ifndef GR_UTIL_H
#define GR_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

typedef uint16_t bf16;	/* bfloat16 bits */
typedef uint16_t f16;	/* IEEE half bits */

/* Monotonic seconds (CLOCK_MONOTONIC) and wall-clock seconds since the epoch. */
double now_sec(void);
double wall_sec(void);

static inline float bf16_to_f32(bf16 h)
{
	uint32_t u = (uint32_t)h << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

/* Round to nearest even; NaN stays NaN. */
static inline bf16 f32_to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (bf16)((u >> 16) | 0x40);
	u += 0x7fffu + ((u >> 16) & 1);
	return (bf16)(u >> 16);
}

float f16_to_f32(f16 h);
f16 f32_to_f16(float f);

/*
 * The one JSON string escaper, one step: the bytes at s (n > 0 available)
 * that form the next unit, and its JSON text. Returns the bytes consumed;
 * *rep is NULL when they go out as they are (printable ASCII or a valid
 * UTF-8 character), else the escape to write: \" \\ \n \r \t, \u00XX for
 * other control bytes and DEL, U+FFFD for a byte that starts no valid
 * UTF-8 character (JSON text must be UTF-8). tmp may hold *rep.
 */
size_t json_escape_step(const char *s, size_t n, const char **rep, char tmp[8]);

/*
 * Escapes s as the inside of a JSON string into dst (json_escape_step per
 * unit; always NUL-terminated, cut at a unit boundary when cap is short).
 * Returns the length written.
 */
size_t json_escape(char *dst, size_t cap, const char *s);

/* Strict integer/float parsing of a whole string; 0 or ST_EINVAL. */
int parse_i64(const char *s, int64_t *out);
int parse_f64(const char *s, double *out);

/*
 * The one UTF-8 decoder: the code point of the character at s (n bytes
 * available) into *cp and its length 1..4, or 0 when it is not valid
 * UTF-8 (overlong, surrogate, over U+10FFFF, bad or missing continuation).
 */
size_t utf8_decode(const char *s, size_t n, uint32_t *cp);

/* Whether the n bytes at s are valid UTF-8 (no overlongs, no surrogates). */
int utf8_valid(const char *s, size_t n);

/* Deterministic PRNG (xoshiro256**), seeded with splitmix64. */
struct rng { uint64_t s[4]; };
void rng_seed(struct rng *r, uint64_t seed);

static inline uint64_t rng_rotl_(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rng_rotl_(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rng_rotl_(s[3], 45);
	return result;
}
/* Uniform in [0, 1). */
double rng_uniform(struct rng *r);
/* Standard normal (Box-Muller). */
double rng_normal(struct rng *r);

#endif
