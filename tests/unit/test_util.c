/*
 * test_util.c - common/util.c: the one UTF-8 decoder (utf8_decode, and
 * utf8_valid on top of it) against glibc's own decoder (mbrtowc in the
 * C.UTF-8 locale) over every 1-, 2- and 3-byte sequence and a sweep of
 * 4-byte ones (glibc's answers capped at U+10FFFF, RFC 3629's end), plus
 * Markus Kuhn's boundary and malformed cases; the JSON escaper on control
 * characters and quotes.
 */
#include <locale.h>
#include <stdint.h>
#include <wchar.h>

#include "common/sbuf.h"
#include "common/util.h"
#include "tests/harness.h"

/* glibc's verdict on exactly these n bytes as one character: its code point, or -1. */
static long glibc_decode(const unsigned char *b, size_t n)
{
	mbstate_t st;
	wchar_t wc;
	memset(&st, 0, sizeof(st));
	size_t r = mbrtowc(&wc, (const char *)b, n, &st);
	if (r == 0 && n == 1)		/* the NUL character */
		return 0;
	if (r == (size_t)-1 || r == (size_t)-2 || r != n)
		return -1;
	/* glibc also takes F4 90.. - F7 (up to U+1FFFFF); RFC 3629 ends UTF-8 at U+10FFFF */
	return wc > 0x10ffff ? -1 : (long)wc;
}

static long ours(const unsigned char *b, size_t n)
{
	uint32_t cp;
	size_t l = utf8_decode((const char *)b, n, &cp);
	return l == n ? (long)cp : -1;
}

static void test_against_glibc(void)
{
	unsigned char b[4];
	long bad = 0, checked = 0;

	if (!setlocale(LC_CTYPE, "C.UTF-8")) {
		SKIP("no C.UTF-8 locale");
		return;
	}
	for (unsigned a = 0; a < 256; a++) {
		b[0] = (unsigned char)a;
		checked++;
		if (ours(b, 1) != glibc_decode(b, 1) && bad++ < 4)
			CHECK(0, "1 byte %02x: ours %ld glibc %ld", a, ours(b, 1), glibc_decode(b, 1));
		for (unsigned c = 0; c < 256; c++) {
			b[1] = (unsigned char)c;
			checked++;
			if (ours(b, 2) != glibc_decode(b, 2) && bad++ < 4)
				CHECK(0, "2 bytes %02x %02x", a, c);
			if (a < 0xe0 || a > 0xef)
				continue;
			for (unsigned d = 0; d < 256; d++) {
				b[2] = (unsigned char)d;
				checked++;
				if (ours(b, 3) != glibc_decode(b, 3) && bad++ < 4)
					CHECK(0, "3 bytes %02x %02x %02x: ours %ld glibc %ld", a, c, d,
					      ours(b, 3), glibc_decode(b, 3));
			}
		}
	}
	for (unsigned a = 0xf0; a < 0x100; a++)
		for (unsigned c = 0x70; c < 0xd0; c++)
			for (unsigned d = 0x70; d < 0xd0; d += 7)
				for (unsigned e = 0x70; e < 0xd0; e += 5) {
					b[0] = (unsigned char)a, b[1] = (unsigned char)c;
					b[2] = (unsigned char)d, b[3] = (unsigned char)e;
					checked++;
					if (ours(b, 4) != glibc_decode(b, 4) && bad++ < 4)
						CHECK(0, "4 bytes %02x %02x %02x %02x", a, c, d, e);
				}
	CHECK(bad == 0, "%ld of %ld sequences differ from glibc", bad, checked);
	setlocale(LC_CTYPE, "C");
}

static void test_kuhn_boundaries(void)
{
	static const struct { const char *s; long cp; } cases[] = {
		{ "\x7f", 0x7f }, { "\xc2\x80", 0x80 }, { "\xdf\xbf", 0x7ff },
		{ "\xe0\xa0\x80", 0x800 }, { "\xef\xbf\xbf", 0xffff }, { "\xf0\x90\x80\x80", 0x10000 },
		{ "\xf4\x8f\xbf\xbf", 0x10ffff }, { "\xee\x80\x80", 0xe000 }, { "\xef\xbf\xbd", 0xfffd },
		{ "\xf4\x90\x80\x80", -1 },	/* over U+10FFFF */
		{ "\xc0\xaf", -1 }, { "\xe0\x80\xaf", -1 }, { "\xf0\x80\x80\xaf", -1 },	/* overlong '/' */
		{ "\xc1\xbf", -1 }, { "\xe0\x9f\xbf", -1 }, { "\xf0\x8f\xbf\xbf", -1 },	/* max overlong */
		{ "\xed\xa0\x80", -1 }, { "\xed\xbf\xbf", -1 },		/* surrogates */
		{ "\x80", -1 }, { "\xbf", -1 }, { "\xfe", -1 }, { "\xff", -1 },
		{ "\xc3", -1 }, { "\xe2\x82", -1 }, { "\xf0\x9f\x98", -1 },	/* truncated */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].s);
		long got = ours((const unsigned char *)cases[i].s, n);
		CHECK(got == cases[i].cp, "case %zu: got %ld want %ld", i, got, cases[i].cp);
		CHECK(utf8_valid(cases[i].s, n) == (cases[i].cp >= 0), "utf8_valid case %zu", i);
	}
	CHECK(utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z", 11), "mixed string");
	CHECK(!utf8_valid("a\xc3\xa9\xe2\x82", 5), "string cut inside a character");
}

static void test_json_escape(void)
{
	char out[64];
	json_escape(out, sizeof(out), "a\"b\\c\n\x01\x1f\xc3\xa9");
	CHECK(!strcmp(out, "a\\\"b\\\\c\\n\\u0001\\u001f\xc3\xa9"), "escaped '%s'", out);
	json_escape(out, 4, "abcdef");
	CHECK(strlen(out) < 4, "truncated within cap: '%s'", out);
	json_escape(out, sizeof(out), "a\x7f\xff\xc3(");
	CHECK(!strcmp(out, "a\\u007f\xef\xbf\xbd\xef\xbf\xbd("), "DEL and invalid UTF-8: '%s'", out);
	json_escape(out, 3, "\xc3\xa9\xc3\xa9");
	CHECK(!strcmp(out, "\xc3\xa9"), "never cut inside a character: '%s'", out);
}

/* The log's escaper and the response builder's are one: same text for any bytes. */
static void test_json_escapers_agree(void)
{
	struct rng r;
	char in[48], out[512];
	struct sbuf sb;
	int bad = 0;

	rng_seed(&r, 7);
	for (int t = 0; t < 20000; t++) {
		size_t n = (size_t)(rng_next(&r) % (sizeof(in) - 1));
		for (size_t i = 0; i < n; i++) {
			uint64_t v = rng_next(&r);
			/* mostly ASCII and real UTF-8 lead/continuation bytes, some anything */
			in[i] = (char)(v % 4 == 0 ? 0x80 + (v >> 8) % 0x80 : v % 4 == 1 ? 0xc0 + (v >> 8) % 0x38
				       : 1 + (v >> 8) % 0xff);
		}
		in[n] = 0;
		n = strlen(in);
		json_escape(out, sizeof(out), in);
		sb_init(&sb);
		sb_json_strn(&sb, in, n);
		if (sb.len < 2 || sb.len - 2 != strlen(out) || memcmp(sb.buf + 1, out, sb.len - 2) ||
		    !utf8_valid(out, strlen(out)))
			bad++;
		sb_release(&sb);
	}
	CHECK(bad == 0, "%d of 20000 random strings escaped differently (or not valid UTF-8)", bad);
}

int main(void)
{
	RUN(test_against_glibc);
	RUN(test_kuhn_boundaries);
	RUN(test_json_escape);
	RUN(test_json_escapers_agree);
	return th_done();
}
