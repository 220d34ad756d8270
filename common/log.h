/*
 * log.h - leveled logging, plain text or one JSON object per line.
 *
 * Plain text ("I 12:00:01.123 message") goes to stderr by default, so that
 * CLI subcommands keep stdout for their JSON results. `serve` switches to
 * JSON lines on stdout (Cloud Logging reads `severity` and `message`).
 * Thread-safe: each line is written with one locked fputs.
 */
#ifndef GR_LOG_H
#define GR_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Where lines go (borrowed), whether as JSON, and the lowest level shown. */
void log_setup(FILE *out, int json, enum log_level min);
enum log_level log_min_level(void);

void log_msg(enum log_level lv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Log with extra JSON fields. `fields_json` is a JSON object body without
 * braces ("\"bytes\":12,\"stage\":\"meta\"") or NULL; in text mode it is
 * appended as is.
 */
void log_fields(enum log_level lv, const char *fields_json, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Logs at error level and returns rc: `return log_err(ST_EIO, "...");` */
int log_err(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_min_level() <= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)

#endif
