/*
 * harness.h - the tiny test harness every C test uses.
 *
 *	static void test_parse_ok(void) { CHECK(x == 1, "x is %d", x); }
 *	int main(void) { RUN(test_parse_ok); return th_done(); }
 *
 * Prints one line per test: "PASS name", "FAIL name: why" or
 * "SKIP name: why"; tests/run.sh counts those lines. A test fails if any
 * CHECK in it fails; th_done() returns the process exit status.
 */
#ifndef GR_TEST_HARNESS_H
#define GR_TEST_HARNESS_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int th_failed_in_test, th_n_fail, th_skipped;
static char th_skip_why[256];

__attribute__((format(printf, 4, 5)))
static void th_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;
	if (th_failed_in_test++ < 8) {
		fprintf(stdout, "  %s:%d: CHECK(%s) failed: ", file, line, cond);
		va_start(ap, fmt);
		vfprintf(stdout, fmt, ap);
		va_end(ap);
		fputc('\n', stdout);
	}
}

#define CHECK(cond, ...) do { if (!(cond)) th_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)
#define CHECK_NEAR(a, b, tol) CHECK(fabs((double)(a) - (double)(b)) <= (tol), \
	"%s=%.9g %s=%.9g tol %.3g", #a, (double)(a), #b, (double)(b), (double)(tol))
/* Marks the running test skipped (with a reason) unless it already failed. */
#define SKIP(...) do { th_skipped = 1; snprintf(th_skip_why, sizeof(th_skip_why), __VA_ARGS__); } while (0)

static void th_run(const char *name, void (*fn)(void))
{
	th_failed_in_test = 0;
	th_skipped = 0;
	fn();
	if (th_failed_in_test) {
		printf("FAIL %s: %d check(s) failed\n", name, th_failed_in_test);
		th_n_fail++;
	} else if (th_skipped) {
		printf("SKIP %s: %s\n", name, th_skip_why);
	} else {
		printf("PASS %s\n", name);
	}
	fflush(stdout);
}

#define RUN(fn) th_run(#fn, fn)

static int th_done(void)
{
	return th_n_fail ? 1 : 0;
}

#endif
