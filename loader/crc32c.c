/*
 * crc32c.c - CRC-32C: SSE4.2 three-stream path, slicing-by-8 fallback,
 * combine by x^(8n) mod P, and GCS's base64 form. See crc32c.h.
 *
 * Register convention inside this file: "raw" registers, i.e. without the
 * pre/post inversion; crc32c() inverts on entry and exit. Raw CRC updates
 * are linear over GF(2), which is what lets three streams started from 0
 * be merged: reg(A||B||C) = shift(shift(regA, |B|) ^ regB, |C|) ^ regC
 * where |B| = |C| = BLOCK, and shift(r, n) appends n zero bytes.
 */
#include "loader/crc32c.h"

#include <pthread.h>
#include <string.h>

#include "common/base64.h"
#include "common/status.h"

#define POLY 0x82f63b78u
#define BLOCK 8192u	/* bytes per stream per round (3 * BLOCK per round) */

static uint32_t tab[8][256];		/* slicing-by-8 */
static uint32_t shift_tab[4][256];	/* r -> r * x^(8*BLOCK) mod P */
static int have_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* a * b mod P, both in reflected representation (bit 31 is x^0). */
static uint32_t multmodp(uint32_t a, uint32_t b)
{
	uint32_t m = 1u << 31, p = 0;
	for (;;) {
		if (a & m) {
			p ^= b;
			if ((a & (m - 1)) == 0)
				break;
		}
		m >>= 1;
		b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;
	}
	return p;
}

/* x^(8n) mod P by square and multiply. */
static uint32_t x8nmodp(uint64_t n)
{
	uint32_t p = 1u << 31;		/* x^0 */
	uint32_t sq = 1u << 23;		/* x^8 */
	while (n) {
		if (n & 1)
			p = multmodp(sq, p);
		sq = multmodp(sq, sq);
		n >>= 1;
	}
	return p;
}

static void init_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			tab[t][i] = (tab[t - 1][i] >> 8) ^ tab[0][tab[t - 1][i] & 0xff];
	uint32_t op = x8nmodp(BLOCK);
	for (int k = 0; k < 4; k++)
		for (uint32_t i = 0; i < 256; i++)
			shift_tab[k][i] = multmodp(op, i << (8 * k));
#if defined(__x86_64__)
	__builtin_cpu_init();
	have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static inline uint32_t shift_block(uint32_t r)
{
	return shift_tab[0][r & 0xff] ^ shift_tab[1][(r >> 8) & 0xff] ^
	       shift_tab[2][(r >> 16) & 0xff] ^ shift_tab[3][r >> 24];
}

static uint32_t raw_sw(uint32_t r, const uint8_t *p, size_t n)
{
	while (n && ((uintptr_t)p & 7)) {
		r = (r >> 8) ^ tab[0][(r ^ *p++) & 0xff];
		n--;
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= r;
		r = tab[7][w & 0xff] ^ tab[6][(w >> 8) & 0xff] ^ tab[5][(w >> 16) & 0xff] ^
		    tab[4][(w >> 24) & 0xff] ^ tab[3][(w >> 32) & 0xff] ^ tab[2][(w >> 40) & 0xff] ^
		    tab[1][(w >> 48) & 0xff] ^ tab[0][w >> 56];
		p += 8;
		n -= 8;
	}
	while (n--)
		r = (r >> 8) ^ tab[0][(r ^ *p++) & 0xff];
	return r;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t raw_hw(uint32_t r, const uint8_t *p, size_t n)
{
	uint64_t c0 = r;
	while (n && ((uintptr_t)p & 7)) {
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
		n--;
	}
	while (n >= 3 * BLOCK) {
		uint64_t c1 = 0, c2 = 0;
		const uint8_t *p1 = p + BLOCK, *p2 = p + 2 * BLOCK;
		for (size_t i = 0; i < BLOCK; i += 8) {
			uint64_t w0, w1, w2;
			memcpy(&w0, p + i, 8);
			memcpy(&w1, p1 + i, 8);
			memcpy(&w2, p2 + i, 8);
			c0 = _mm_crc32_u64(c0, w0);
			c1 = _mm_crc32_u64(c1, w1);
			c2 = _mm_crc32_u64(c2, w2);
		}
		c0 = shift_block(shift_block((uint32_t)c0) ^ (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * BLOCK;
		n -= 3 * BLOCK;
	}
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c0 = _mm_crc32_u64(c0, w);
		p += 8;
		n -= 8;
	}
	while (n--)
		c0 = _mm_crc32_u8((uint32_t)c0, *p++);
	return (uint32_t)c0;
}
#endif

int crc32c_hw_available(void)
{
	pthread_once(&once, init_tables);
	return have_hw;
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&once, init_tables);
	return ~raw_sw(~crc, buf, n);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&once, init_tables);
#if defined(__x86_64__)
	if (have_hw)
		return ~raw_hw(~crc, buf, n);
#endif
	return ~raw_sw(~crc, buf, n);
}

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	return multmodp(x8nmodp(len_b), crc_a) ^ crc_b;
}

void crc32c_to_base64(uint32_t crc, char out[9])
{
	uint8_t b[4] = { (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc };
	b64_encode(out, b, 4, B64_STD);
}

int crc32c_from_base64(const char *s, uint32_t *crc)
{
	uint8_t b[4];
	if (b64_decode(b, sizeof(b), s, strlen(s), B64_STD) != 4)
		return ST_EFORMAT;
	*crc = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	return 0;
}
