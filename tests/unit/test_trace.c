/*
 * test_trace.c - service/http/http_trace.c: traceparent cases from the W3C
 * Trace Context level 1 text and its test suite (valid, OWS, future
 * versions, version ff, upper case, all-zero ids, wrong lengths and
 * separators) and X-Cloud-Trace-Context (decimal span id written as 16
 * hex digits, o=0/1, 64-bit overflow, junk); traceparent wins, a malformed
 * header gives no ids.
 */
#include "service/http/http_trace.h"

#include <string.h>

#include "tests/harness.h"

static const char *const TID = "4bf92f3577b34da6a3ce929d0e0e4736";
static const char *const SID = "00f067aa0ba902b7";

static int ok(const char *tp, const char *xc, struct http_trace *t)
{
	return http_trace_parse(tp, xc, t) == 0;
}

static void test_traceparent_valid(void)
{
	struct http_trace t;

	CHECK(ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL, &t), "spec example");
	CHECK(!strcmp(t.trace_id, TID) && !strcmp(t.span_id, SID) && t.sampled == 1, "%s %s %d",
	      t.trace_id, t.span_id, t.sampled);
	CHECK(ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", NULL, &t) && t.sampled == 0,
	      "not sampled");
	/* other flag bits are ignored; only bit 0 is sampled */
	CHECK(ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02", NULL, &t) && t.sampled == 0,
	      "flags 02");
	CHECK(ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", NULL, &t) && t.sampled == 1,
	      "flags ff");
	CHECK(ok(" \t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", NULL, &t), "OWS");
	/* a future version: the first 55 characters, then '-' and more */
	CHECK(ok("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-will-be-like",
		 NULL, &t) && !strcmp(t.trace_id, TID), "future version with more fields");
	CHECK(ok("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL, &t), "version 01");
	/* traceparent wins over X-Cloud-Trace-Context */
	CHECK(ok("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		 "105445aa7843bc8bf206b12000100000/1;o=1", &t) && !strcmp(t.trace_id, TID), "precedence");
}

static void test_traceparent_invalid(void)
{
	static const char *const bad[] = {
		"",
		"00",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",	/* version ff */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",	/* 00 is 55 exactly */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01what",	/* no '-' after flags */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",	/* zero trace id */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",	/* zero parent id */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",	/* upper case */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
		"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0G",
		"00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",	/* dashes misplaced */
		"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e47.6-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"4bf92f3577b34da6a3ce929d0e0e4736",
	};
	struct http_trace t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = http_trace_parse(bad[i], NULL, &t);
		CHECK(rc < 0 && !t.trace_id[0] && !t.span_id[0], "accepted '%s'", bad[i]);
	}
	/* a malformed traceparent is not replaced by X-Cloud-Trace-Context */
	CHECK(http_trace_parse("00-xyz", "105445aa7843bc8bf206b12000100000/1;o=1", &t) < 0 && !t.trace_id[0],
	      "fell back to X-Cloud-Trace-Context");
	CHECK(http_trace_parse(NULL, NULL, &t) < 0, "no headers");
}

static void test_xcloud(void)
{
	struct http_trace t;

	CHECK(ok(NULL, "105445aa7843bc8bf206b12000100000/1;o=1", &t), "google example");
	CHECK(!strcmp(t.trace_id, "105445aa7843bc8bf206b12000100000") &&
	      !strcmp(t.span_id, "0000000000000001") && t.sampled == 1, "%s %s %d", t.trace_id, t.span_id,
	      t.sampled);
	CHECK(ok(NULL, "105445AA7843BC8BF206B12000100000/18446744073709551615;o=0", &t), "max span");
	CHECK(!strcmp(t.trace_id, "105445aa7843bc8bf206b12000100000") &&
	      !strcmp(t.span_id, "ffffffffffffffff") && t.sampled == 0, "%s %s %d", t.trace_id, t.span_id,
	      t.sampled);
	CHECK(ok(NULL, "105445aa7843bc8bf206b12000100000/2706431281394578193", &t) &&
	      !strcmp(t.span_id, "258f2ce940877311") && t.sampled == -1, "%s %d", t.span_id, t.sampled);
	CHECK(ok(NULL, "105445aa7843bc8bf206b12000100000", &t) && !t.span_id[0] && t.sampled == -1,
	      "trace id alone");
	static const char *const bad[] = {
		"105445aa7843bc8bf206b1200010000/1;o=1",	/* 31 hex */
		"105445aa7843bc8bf206b120001000001/1;o=1",	/* 33 hex */
		"00000000000000000000000000000000/1;o=1",
		"105445aa7843bc8bf206b1200010000g/1;o=1",
		"105445aa7843bc8bf206b12000100000/18446744073709551616;o=1",	/* 2^64 */
		"105445aa7843bc8bf206b12000100000/;o=1",
		"105445aa7843bc8bf206b12000100000/12a;o=1",
		"105445aa7843bc8bf206b12000100000/1;o=2",
		"105445aa7843bc8bf206b12000100000/1;o=1x",
		"105445aa7843bc8bf206b12000100000/1;x=1",
		"projects/p/traces/105445aa7843bc8bf206b12000100000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = http_trace_parse(NULL, bad[i], &t);
		CHECK(rc < 0 && !t.trace_id[0] && !t.span_id[0], "accepted '%s'", bad[i]);
	}
}

int main(void)
{
	RUN(test_traceparent_valid);
	RUN(test_traceparent_invalid);
	RUN(test_xcloud);
	return th_done();
}
