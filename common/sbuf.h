/*
 * sbuf.h - a growable byte buffer for building responses, JSON and metrics
 * text. Grows by doubling; after an allocation failure the buffer is marked
 * failed (sb->oom) and further appends are ignored, so callers check once at
 * the end - and must check: a failed buffer holds a truncated text that must
 * not be sent as if whole. Reused buffers (sb_reset, which clears oom) stop
 * allocating once they are large enough. Not thread-safe: one owner.
 *
 * Test hook: the environment variable GR_TEST_SBUF_MAX=N (read once, at the
 * first growth of any buffer in the process) makes every growth of a buffer
 * past N bytes fail as if realloc had failed, so tests can drive the oom
 * paths of a whole server. Unset, it costs one check per growth (never per
 * append into a buffer that is large enough).
 */
#ifndef GR_COMMON_SBUF_H
#define GR_COMMON_SBUF_H

#include <stddef.h>

struct sbuf {
	char *buf;		/* NUL-terminated when len > 0 or after sb_cstr */
	size_t len, cap;
	int oom;
};

void sb_init(struct sbuf *sb);
void sb_release(struct sbuf *sb);
void sb_reset(struct sbuf *sb);
int sb_reserve(struct sbuf *sb, size_t extra);
void sb_add(struct sbuf *sb, const void *p, size_t n);
void sb_puts(struct sbuf *sb, const char *s);
void sb_putc(struct sbuf *sb, char c);
void sb_printf(struct sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (n bytes) as a JSON string with quotes; control chars escaped,
 * bytes that are not valid UTF-8 replaced by U+FFFD (the output is valid JSON). */
void sb_json_strn(struct sbuf *sb, const char *s, size_t n);
void sb_json_str(struct sbuf *sb, const char *s);
/* A JSON number for a double (finite; NaN/inf become null). */
void sb_json_num(struct sbuf *sb, double v);
const char *sb_cstr(struct sbuf *sb);

#endif
