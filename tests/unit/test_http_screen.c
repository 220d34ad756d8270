/*
 * test_http_screen.c - service/http/http_screen.c: each head RFC 9112 says a
 * server must refuse gets its status (400, 414, 431, 501, 505), every
 * well-formed head passes, and a partial head is refused as soon as its bad
 * line is whole (or its size is over the limit), never before.
 */
#include "service/http/http_screen.h"

#include <string.h>

#include "common/util.h"
#include "tests/harness.h"

static const struct http_screen_limits LIM = { .uri_max = 64, .head_max = 512, .max_headers = 8 };

static int screen(const char *head, const char **why)
{
	return http_screen_head(head, strlen(head), &LIM, why);
}

struct scase {
	const char *head;
	size_t len;	/* of the literal: a NUL inside counts */
	int want;
};
#define C(lit, want) { lit, sizeof(lit) - 1, want }

static void test_refused(void)
{
	static const struct scase cases[] = {
		C("GET /\r\n\r\n", 400),				/* HTTP/0.9 */
		C("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
		C("GET / HTTP/2.0\r\n\r\n", 505),
		C("GET / HTTP/1\r\n\r\n", 400),
		C("GET / http/1.1\r\n\r\n", 400),
		C("GET  / HTTP/1.1\r\n\r\n", 400),			/* empty target */
		C("GET /a\x01 HTTP/1.1\r\n\r\n", 400),
		C(" GET / HTTP/1.1\r\n\r\n", 400),
		C("G(T / HTTP/1.1\r\n\r\n", 400),
		C("BREW / HTTP/1.1\r\n\r\n", 501),
		C("get / HTTP/1.1\r\n\r\n", 501),			/* methods are case-sensitive */
		C("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
		C("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
		C("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
		C("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\n: empty-name\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 400),
		C("GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\nI: 1\r\n\r\n", 431),
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *why = NULL;
		int got = http_screen_head(cases[i].head, cases[i].len, &LIM, &why);
		CHECK(got == cases[i].want, "case %zu (%.30s): got %d, want %d", i, cases[i].head, got,
		      cases[i].want);
		CHECK(!got || (why && *why), "case %zu: no message", i);
	}
}

static void test_sizes(void)
{
	char big[700];
	const char *why;

	/* a target over uri_max: 414 once the line is whole, and while it still arrives */
	snprintf(big, sizeof(big), "GET /%070d HTTP/1.1\r\n\r\n", 0);
	CHECK(screen(big, &why) == 414, "long target: %d", screen(big, &why));
	memset(big, 'a', 200);
	memcpy(big, "GET /", 5);
	big[200] = '\0';
	CHECK(screen(big, &why) == 414, "partial long line: %d", screen(big, &why));
	big[60] = '\0';
	CHECK(screen(big, &why) == 0, "a short partial line is not judged: %s", why);
	/* a head over head_max: 431 before its end arrives */
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "GET / HTTP/1.1\r\nX-Big: ", 23);
	CHECK(screen(big, &why) == 431, "long head: %d", screen(big, &why));
}

static void test_accepted(void)
{
	static const char *const ok[] = {
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.0\n\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/completions?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"prompt\":1}",
		"POST / HTTP/1.1\r\nContent-Length:  5 \r\nContent-Length: 5\r\n\r\n",	/* same value twice */
		"POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n",
		"GET /caf\xc3\xa9 HTTP/1.1\r\nUser-Agent: \xc3\xa9\r\n\r\n",
		"GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\n\r\n",
		/* partial heads with nothing wrong yet */
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Le",
		"PATCH / HTTP/1.1\r\nX-A: 1\r\n",
		"GE",
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		const char *why = NULL;
		int got = screen(ok[i], &why);
		CHECK(got == 0, "case %zu (%.30s): refused %d: %s", i, ok[i], got, why ? why : "");
	}
}

/* A bad line is refused when it is whole, not while it arrives. */
static void test_partial_then_whole(void)
{
	const char *why;
	const char *h = "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n";
	size_t at = strlen("POST / HTTP/1.1\r\nContent-Length: 1x");

	CHECK(http_screen_head(h, at, &LIM, &why) == 0, "judged before the line was whole");
	CHECK(http_screen_head(h, at + 2, &LIM, &why) == 400, "not refused once whole");
}

static const struct http_screen_limits CLIM = { .uri_max = 64, .head_max = 512, .max_headers = 8,
					       .body_max = 100 };

/* Scans body in pieces of step bytes, as it would arrive; returns the last status. */
static int scan_in_pieces(const char *body, size_t n, size_t step, struct http_chunks *st)
{
	const char *why;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	for (size_t have = step < n ? step : n;; have = have + step < n ? have + step : n) {
		rc = http_screen_chunked(body, have, &CLIM, st, &why);
		if (rc || have == n)
			break;
	}
	return rc;
}

static void test_chunked(void)
{
	static const char ok_body[] = "5;ext=1\r\nhello\r\n1\n \n6\r\nworld!\r\n0\r\nX-T: 1\r\n\r\nNEXT";
	struct http_chunks st;
	char out[64];

	for (size_t step = 1; step <= sizeof(ok_body); step++) {
		CHECK(scan_in_pieces(ok_body, sizeof(ok_body) - 1, step, &st) == 0 && st.done,
		      "step %zu: not done", step);
		CHECK(st.body_len == 12 && st.end == sizeof(ok_body) - 1 - 4, "step %zu: len %zu end %zu", step,
		      st.body_len, st.end);
	}
	http_screen_dechunk(ok_body, &st, out);
	CHECK(!memcmp(out, "hello world!", 12), "dechunked '%.12s'", out);
	static const struct { const char *body; int want; } bad[] = {
		{ "zz\r\nhello\r\n0\r\n\r\n", 400 },
		{ "\r\nhello\r\n0\r\n\r\n", 400 },
		{ "5 x\r\nhello\r\n0\r\n\r\n", 400 },
		{ "3\r\nhello\r\n0\r\n\r\n", 400 },		/* data longer than its size */
		{ "-1\r\nhello\r\n0\r\n\r\n", 400 },
		{ "fffffffffffffffffff\r\n", 400 },
		{ "65\r\n", 413 },					/* 101 > body_max 100 */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int rc = scan_in_pieces(bad[i].body, strlen(bad[i].body), 1, &st);
		CHECK(rc == bad[i].want, "bad %zu (%s): %d, want %d", i, bad[i].body, rc, bad[i].want);
	}
	/* incomplete is not an error */
	CHECK(scan_in_pieces("5\r\nhel", 8, 3, &st) == 0 && !st.done, "incomplete");
}

static void test_unchunk_head(void)
{
	static const char head[] = "POST /x HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\nX-B: 2\r\n\r\n";
	char out[256];
	size_t n = http_screen_unchunk_head(head, sizeof(head) - 1, 12, NULL, 0);

	CHECK(n < sizeof(out), "length %zu", n);
	CHECK(http_screen_unchunk_head(head, sizeof(head) - 1, 12, out, sizeof(out)) == n, "two lengths");
	out[n] = '\0';
	CHECK(!strcmp(out, "POST /x HTTP/1.1\r\nHost: a\r\nX-B: 2\r\nContent-Length: 12\r\n\r\n"), "got '%s'", out);
	CHECK(http_screen_is_chunked(head, sizeof(head) - 1) && !http_screen_is_chunked(out, n), "is_chunked");
}

int main(void)
{
	RUN(test_refused);
	RUN(test_sizes);
	RUN(test_accepted);
	RUN(test_partial_then_whole);
	RUN(test_chunked);
	RUN(test_unchunk_head);
	return th_done();
}
