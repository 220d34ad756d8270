/*
 * test_sbuf.c - common/sbuf.c: sb_cstr on a fresh buffer is a terminated
 * empty string (it was an unterminated 256-byte allocation, read past by
 * strlen: a heap overflow for chat content []), sb_json_strn always
 * emits valid UTF-8 JSON (bytes that are not UTF-8 become U+FFFD), and the
 * oom contract under the GR_TEST_SBUF_MAX test hook: a failed growth marks
 * the buffer, keeps what it held, ignores later appends, sb_reset clears it.
 */
#include "common/sbuf.h"

#include <stdlib.h>

#include "common/util.h"
#include "tests/harness.h"

static void test_cstr_fresh_is_empty(void)
{
	struct sbuf sb;
	sb_init(&sb);
	const char *p = sb_cstr(&sb);
	CHECK(p && p[0] == '\0', "fresh sb_cstr is not \"\"");
	CHECK(strlen(p) == 0, "strlen %zu", strlen(p));
	sb_puts(&sb, "ab");
	CHECK(strcmp(sb_cstr(&sb), "ab") == 0, "got '%s'", sb_cstr(&sb));
	sb_reset(&sb);
	CHECK(strcmp(sb_cstr(&sb), "") == 0, "after reset '%s'", sb_cstr(&sb));
	sb_release(&sb);
}

static const char *json_of(struct sbuf *sb, const char *s, size_t n)
{
	sb_reset(sb);
	sb_json_strn(sb, s, n);
	return sb_cstr(sb);
}

static void test_json_escapes(void)
{
	struct sbuf sb;
	sb_init(&sb);
	CHECK(strcmp(json_of(&sb, "a\"b\\c\n\x01", 7), "\"a\\\"b\\\\c\\n\\u0001\"") == 0, "got %s",
	      sb_cstr(&sb));
	/* valid multi-byte characters pass through untouched */
	const char *ok = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	CHECK(strcmp(json_of(&sb, ok, strlen(ok)), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"") == 0, "got %s",
	      sb_cstr(&sb));
	sb_release(&sb);
}

static void test_json_invalid_utf8_replaced(void)
{
	static const char *bad[] = {
		"\xff", "\xc3", "a\xc3", "\xe2\x82", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80\x80",
		"\xf0\x9f\x98",
	};
	struct sbuf sb;
	sb_init(&sb);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *j = json_of(&sb, bad[i], strlen(bad[i]));
		CHECK(utf8_valid(j, strlen(j)), "case %zu: output is not UTF-8", i);
		CHECK(strstr(j, "\xef\xbf\xbd") != NULL, "case %zu: no U+FFFD in %s", i, j);
	}
	/* a character cut at the end of a message: the whole part before stays */
	const char *cut = "r\xc3\xa9\xc3";
	CHECK(strcmp(json_of(&sb, cut, strlen(cut)), "\"r\xc3\xa9\xef\xbf\xbd\"") == 0, "got %s", sb_cstr(&sb));
	sb_release(&sb);
}

/* Runs with GR_TEST_SBUF_MAX=1024 (main). */
static void test_oom_contract(void)
{
	char big[1200];
	struct sbuf sb;

	memset(big, 'x', sizeof(big));
	sb_init(&sb);
	sb_add(&sb, big, 600);				/* 1024 bytes of room: fits */
	CHECK(!sb.oom && sb.len == 600, "len %zu oom %d", sb.len, sb.oom);
	sb_add(&sb, big, 600);				/* needs 2048: fails */
	CHECK(sb.oom && sb.len == 600, "len %zu oom %d", sb.len, sb.oom);
	sb_puts(&sb, "y");				/* ignored once failed, even if it fits */
	sb_printf(&sb, "%d", 7);
	CHECK(sb.len == 600 && strlen(sb_cstr(&sb)) == 600, "len %zu", sb.len);
	sb_reset(&sb);
	CHECK(!sb.oom && sb.len == 0, "reset: oom %d", sb.oom);
	sb_puts(&sb, "ok");
	CHECK(!strcmp(sb_cstr(&sb), "ok"), "after reset '%s'", sb_cstr(&sb));
	sb_release(&sb);
	/* a fresh buffer whose first growth fails reads as "" */
	sb_init(&sb);
	sb_add(&sb, big, 1100);
	CHECK(sb.oom && sb.len == 0 && !strcmp(sb_cstr(&sb), ""), "len %zu", sb.len);
	sb_release(&sb);
}

int main(void)
{
	setenv("GR_TEST_SBUF_MAX", "1024", 1);	/* read at the first growth of any sbuf */
	RUN(test_cstr_fresh_is_empty);
	RUN(test_json_escapes);
	RUN(test_json_invalid_utf8_replaced);
	RUN(test_oom_contract);
	return th_done();
}
