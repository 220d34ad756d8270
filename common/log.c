/* log.c - see log.h. The only global state is the sink configuration. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

static FILE *g_out;
static int g_json;
static enum log_level g_min = LOG_INFO;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const sev_name[] = { "DEBUG", "INFO", "WARNING", "ERROR" };

void log_setup(FILE *out, int json, enum log_level min)
{
	pthread_mutex_lock(&g_lock);
	g_out = out;
	g_json = json;
	g_min = min;
	pthread_mutex_unlock(&g_lock);
}

enum log_level log_min_level(void)
{
	return g_min;
}

static void log_vwrite(enum log_level lv, const char *fields, const char *fmt, va_list ap)
{
	char msg[2048], line[4096 + 64];
	int n;
	struct timespec ts;
	struct tm tm;

	if (lv < g_min)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (g_json) {
		char esc[4096];
		json_escape(esc, sizeof(esc), msg);
		n = snprintf(line, sizeof(line),
			 "{\"severity\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\","
			 "\"message\":\"%s\"%s%s}\n",
			 sev_name[lv], tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, esc,
			 fields && *fields ? "," : "", fields ? fields : "");
	} else {
		n = snprintf(line, sizeof(line), "%c %02d:%02d:%02d.%03ld %s%s%s\n", sev_name[lv][0],
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, msg,
			 fields && *fields ? " " : "", fields ? fields : "");
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		line[sizeof(line) - 2] = '\n';
	pthread_mutex_lock(&g_lock);
	FILE *out = g_out ? g_out : stderr;
	fputs(line, out);
	fflush(out);
	pthread_mutex_unlock(&g_lock);
}

void log_msg(enum log_level lv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(lv, NULL, fmt, ap);
	va_end(ap);
}

void log_fields(enum log_level lv, const char *fields_json, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(lv, fields_json, fmt, ap);
	va_end(ap);
}

int log_err(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	return rc;
}
