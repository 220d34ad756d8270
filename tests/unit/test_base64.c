/*
 * test_base64.c - common/base64.c against RFC 4648's test vectors (section
 * 10), GCS's published crc32c encoding, and the strictness rules.
 */
#include "common/base64.h"
#include "tests/harness.h"

static const char *const vec_in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *const vec_std[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
static const char *const vec_url[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };

static void test_rfc4648_vectors(void)
{
	for (int i = 0; i < 7; i++) {
		char enc[16];
		unsigned char dec[16];
		size_t n = strlen(vec_in[i]);
		CHECK(b64_encode(enc, vec_in[i], n, B64_STD) == strlen(vec_std[i]) &&
		      !strcmp(enc, vec_std[i]), "std encode '%s' -> '%s'", vec_in[i], enc);
		CHECK(b64_encoded_len(n, B64_STD) == strlen(vec_std[i]), "std len %zu", n);
		CHECK(b64_encode(enc, vec_in[i], n, B64_URL) == strlen(vec_url[i]) &&
		      !strcmp(enc, vec_url[i]), "url encode '%s' -> '%s'", vec_in[i], enc);
		CHECK(b64_encoded_len(n, B64_URL) == strlen(vec_url[i]), "url len %zu", n);
		CHECK(b64_decode(dec, sizeof(dec), vec_std[i], strlen(vec_std[i]), B64_STD) == (long)n &&
		      !memcmp(dec, vec_in[i], n), "std decode '%s'", vec_std[i]);
		CHECK(b64_decode(dec, sizeof(dec), vec_url[i], strlen(vec_url[i]), B64_URL) == (long)n &&
		      !memcmp(dec, vec_in[i], n), "url decode '%s'", vec_url[i]);
	}
}

static void test_alphabets_differ(void)
{
	const unsigned char b[3] = { 0xfb, 0xff, 0xbf };	/* every 6-bit group is 62 or 63 */
	char enc[8];
	unsigned char dec[4];
	b64_encode(enc, b, 3, B64_STD);
	CHECK(!strcmp(enc, "+/+/"), "std %s", enc);
	b64_encode(enc, b, 3, B64_URL);
	CHECK(!strcmp(enc, "-_-_"), "url %s", enc);
	CHECK(b64_decode(dec, sizeof(dec), "-_-_", 4, B64_STD) < 0, "url chars refused in std");
	CHECK(b64_decode(dec, sizeof(dec), "+/+/", 4, B64_URL) < 0, "std chars refused in url");
}

static void test_strict(void)
{
	unsigned char d[16];
	CHECK(b64_decode(d, sizeof(d), "Zg", 2, B64_STD) < 0, "std needs padding");
	CHECK(b64_decode(d, sizeof(d), "Zg==", 4, B64_URL) < 0, "url refuses padding");
	CHECK(b64_decode(d, sizeof(d), "Zh==", 4, B64_STD) < 0, "non-canonical trailing bits");
	CHECK(b64_decode(d, sizeof(d), "Z===", 4, B64_STD) < 0, "three '='");
	CHECK(b64_decode(d, sizeof(d), "Zg=a", 4, B64_STD) < 0, "'=' inside");
	CHECK(b64_decode(d, sizeof(d), "Zm9v\n", 5, B64_URL) < 0, "newline");
	CHECK(b64_decode(d, 2, "Zm9v", 4, B64_URL) < 0, "output too small");
	/* crc32c fields are 4 big-endian bytes (the value from crc32c.json's docs example) */
	CHECK(b64_decode(d, sizeof(d), "AAAAAA==", 8, B64_STD) == 4, "4-byte crc32c field");
	CHECK(b64_decode(d, sizeof(d), "yZRlqg==", 8, B64_STD) == 4 && d[0] == 0xc9 && d[1] == 0x94 &&
	      d[2] == 0x65 && d[3] == 0xaa, "crc32c bytes");
}

int main(void)
{
	RUN(test_rfc4648_vectors);
	RUN(test_alphabets_differ);
	RUN(test_strict);
	return th_done();
}
