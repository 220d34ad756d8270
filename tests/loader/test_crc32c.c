/*
 * test_crc32c.c - CRC-32C against published vectors (RFC 3720 B.4, the
 * "123456789" check value), hardware path == portable path on random data
 * at every alignment and length class, incremental == one-shot, combine ==
 * direct CRC of the concatenation, and GCS's base64 form.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "loader/crc32c.h"
#include "tests/harness.h"

static void test_known_vectors(void)
{
	uint8_t buf[32];
	CHECK(crc32c(0, "123456789", 9) == 0xE3069283u, "check value %08x", crc32c(0, "123456789", 9));
	CHECK(crc32c_sw(0, "123456789", 9) == 0xE3069283u, "sw check value");
	CHECK(crc32c(0, "", 0) == 0, "empty");
	memset(buf, 0, 32);
	CHECK(crc32c(0, buf, 32) == 0x8A9136AAu, "32 zeros: %08x", crc32c(0, buf, 32));
	memset(buf, 0xff, 32);
	CHECK(crc32c(0, buf, 32) == 0x62A8AB43u, "32 x 0xff: %08x", crc32c(0, buf, 32));
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	CHECK(crc32c(0, buf, 32) == 0x46DD794Eu, "0..31: %08x", crc32c(0, buf, 32));
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	CHECK(crc32c(0, buf, 32) == 0x113FDB5Cu, "31..0: %08x", crc32c(0, buf, 32));
}

static void test_hw_matches_sw(void)
{
	const size_t n = 200000 + 3 * 8192 * 4;
	uint8_t *buf = malloc(n + 16);
	struct rng r;
	rng_seed(&r, 42);
	for (size_t i = 0; i < n + 16; i++)
		buf[i] = (uint8_t)rng_next(&r);
	size_t lens[] = { 0, 1, 7, 8, 9, 63, 64, 1000, 8191, 8192, 24575, 24576, 24577, 49152 + 5, n };
	for (size_t a = 0; a < 8; a++)
		for (size_t k = 0; k < ARRAY_SIZE(lens); k++) {
			uint32_t h = crc32c(0, buf + a, lens[k]), s = crc32c_sw(0, buf + a, lens[k]);
			CHECK(h == s, "align %zu len %zu: %08x vs %08x", a, lens[k], h, s);
		}
	/* incremental in uneven pieces == one shot */
	uint32_t inc = 0;
	for (size_t o = 0; o < n;) {
		size_t step = 1 + (size_t)(rng_next(&r) % 40000);
		step = MIN(step, n - o);
		inc = crc32c(inc, buf + o, step);
		o += step;
	}
	CHECK(inc == crc32c(0, buf, n), "incremental %08x", inc);
	if (!crc32c_hw_available())
		SKIP("no SSE4.2 here: only the portable path was compared with itself");
	free(buf);
}

static void test_combine(void)
{
	const size_t n = 100000;
	uint8_t *buf = malloc(n);
	struct rng r;
	rng_seed(&r, 7);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)rng_next(&r);
	size_t cuts[] = { 0, 1, 3, 4096, 33333, 99999, 100000 };
	uint32_t whole = crc32c(0, buf, n);
	for (size_t k = 0; k < ARRAY_SIZE(cuts); k++) {
		size_t c = cuts[k];
		uint32_t a = crc32c(0, buf, c), b = crc32c(0, buf + c, n - c);
		CHECK(crc32c_combine(a, b, n - c) == whole, "cut at %zu", c);
	}
	/* many equal chunks folded in order, as the pipeline does */
	uint32_t acc = crc32c(0, buf, 10);
	for (size_t o = 10; o < n; o += 4096) {
		size_t len = MIN((size_t)4096, n - o);
		acc = crc32c_combine(acc, crc32c(0, buf + o, len), len);
	}
	CHECK(acc == whole, "folded %08x vs %08x", acc, whole);
	/* zero-length B leaves A unchanged; huge lengths terminate */
	CHECK(crc32c_combine(0x12345678u, 0, 0) == 0x12345678u, "len 0");
	(void)crc32c_combine(0x12345678u, 0x9abcdef0u, UINT64_MAX);
	free(buf);
}

static void test_base64(void)
{
	char b[9];
	uint32_t c = 0;
	crc32c_to_base64(0xE3069283u, b);
	CHECK(strcmp(b, "4waSgw==") == 0, "encoded %s", b);
	CHECK(crc32c_from_base64("4waSgw==", &c) == 0 && c == 0xE3069283u, "decoded %08x", c);
	crc32c_to_base64(0, b);
	CHECK(strcmp(b, "AAAAAA==") == 0, "zero %s", b);
	CHECK(crc32c_from_base64("4waSgw=", &c) < 0, "short accepted");
	CHECK(crc32c_from_base64("4waSgx==", &c) < 0, "non-canonical accepted");
	CHECK(crc32c_from_base64("4wa*gw==", &c) < 0, "bad char accepted");
	CHECK(crc32c_from_base64("", &c) < 0, "empty accepted");
}

int main(void)
{
	RUN(test_known_vectors);
	RUN(test_hw_matches_sw);
	RUN(test_combine);
	RUN(test_base64);
	return th_done();
}
