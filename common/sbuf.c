/* sbuf.c - the growable buffer (see sbuf.h for the oom contract and the test hook). */
#include "common/sbuf.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* GR_TEST_SBUF_MAX (sbuf.h): 0 = no limit. Written once under pthread_once. */
static size_t test_max;
static pthread_once_t test_max_once = PTHREAD_ONCE_INIT;

static void read_test_max(void)
{
	const char *v = getenv("GR_TEST_SBUF_MAX");
	if (v && *v)
		test_max = (size_t)strtoull(v, NULL, 10);
}

void sb_init(struct sbuf *sb)
{
	memset(sb, 0, sizeof(*sb));
}

void sb_release(struct sbuf *sb)
{
	free(sb->buf);
	sb_init(sb);
}

void sb_reset(struct sbuf *sb)
{
	sb->len = 0;
	sb->oom = 0;
	if (sb->buf)
		sb->buf[0] = 0;
}

int sb_reserve(struct sbuf *sb, size_t extra)
{
	if (sb->oom)
		return -1;
	if (sb->len + extra + 1 <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	pthread_once(&test_max_once, read_test_max);
	if (test_max && cap > test_max) {
		sb->oom = 1;	/* injected failure (tests) */
		return -1;
	}
	char *p = realloc(sb->buf, cap);
	if (!p) {
		sb->oom = 1;
		return -1;
	}
	sb->buf = p;
	sb->cap = cap;
	return 0;
}

void sb_add(struct sbuf *sb, const void *p, size_t n)
{
	if (sb_reserve(sb, n) < 0)
		return;
	memcpy(sb->buf + sb->len, p, n);
	sb->len += n;
	sb->buf[sb->len] = 0;
}

void sb_puts(struct sbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void sb_putc(struct sbuf *sb, char c)
{
	sb_add(sb, &c, 1);
}

void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	char tmp[256];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		sb_add(sb, tmp, (size_t)n);
		return;
	}
	if (sb_reserve(sb, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void sb_json_strn(struct sbuf *sb, const char *s, size_t n)
{
	size_t run = 0;		/* bytes at s + i - run that go out as they are */

	if (sb_reserve(sb, n + 2) < 0)
		return;
	sb_putc(sb, '"');
	for (size_t i = 0; i < n;) {
		char tmp[8];
		const char *rep;
		size_t used = json_escape_step(s + i, n - i, &rep, tmp);
		if (rep) {
			sb_add(sb, s + i - run, run);
			run = 0;
			sb_puts(sb, rep);
		} else {
			run += used;
		}
		i += used;
	}
	sb_add(sb, s + n - run, run);
	sb_putc(sb, '"');
}

void sb_json_str(struct sbuf *sb, const char *s)
{
	sb_json_strn(sb, s, strlen(s));
}

void sb_json_num(struct sbuf *sb, double v)
{
	if (!isfinite(v)) {
		/* JSON has no NaN/inf; -inf logprobs are common, send a large negative */
		if (isinf(v) && v < 0)
			sb_puts(sb, "-9999.0");
		else
			sb_puts(sb, "null");
		return;
	}
	sb_printf(sb, "%.9g", v);
}

const char *sb_cstr(struct sbuf *sb)
{
	if (!sb->buf && sb_reserve(sb, 0) == 0)
		sb->buf[0] = 0;	/* a fresh buffer is not terminated by realloc */
	return sb->buf ? sb->buf : "";
}
