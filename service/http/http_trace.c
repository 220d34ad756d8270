/*
 * http_trace.c - trace context headers (see http_trace.h).
 *
 * traceparent, W3C Trace Context level 1 (section 3.2):
 *   version "-" trace-id "-" parent-id "-" trace-flags
 * lowercase hex only; version ff is invalid; version 00 is exactly 55
 * characters; a higher version is read by the same first 55 characters and
 * must then end or go on with '-'; an all-zero trace-id or parent-id is
 * invalid; sampled is bit 0 of the flags. Optional whitespace (space, tab)
 * around the value is ignored, as for any HTTP field value.
 *
 * X-Cloud-Trace-Context (Google): TRACE_ID[/SPAN_ID][;o=OPTIONS], a 32-hex
 * trace id (either case), the span id an unsigned 64-bit decimal written
 * out here as 16 hex digits, o=1 sampled, o=0 not.
 *
 * Invariant: on an error *out holds no ids (both strings empty).
 */
#include "service/http/http_trace.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

static int lohex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int anyhex(int c)
{
	return lohex(c) || (c >= 'A' && c <= 'F');
}

/* n hex digits at s (lowercase only when strict), not all '0'; copied lowercased to dst. */
static int take_hex(char *dst, const char *s, size_t n, int strict)
{
	int nonzero = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (strict ? !lohex(c) : !anyhex(c))
			return ST_EINVAL;
		if (c >= 'A' && c <= 'F')
			c += 'a' - 'A';
		nonzero |= c != '0';
		dst[i] = (char)c;
	}
	dst[n] = 0;
	return nonzero ? 0 : ST_EINVAL;
}

/* The value without optional whitespace at either end: *n its length. */
static const char *trim(const char *s, size_t *n)
{
	size_t l = strlen(s);

	while (l && (*s == ' ' || *s == '\t')) {
		s++;
		l--;
	}
	while (l && (s[l - 1] == ' ' || s[l - 1] == '\t'))
		l--;
	*n = l;
	return s;
}

static int parse_traceparent(const char *v, struct http_trace *out)
{
	size_t n;
	const char *s = trim(v, &n);
	char ver[3], flags[3];

	if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return ST_EINVAL;
	if (!lohex((unsigned char)s[0]) || !lohex((unsigned char)s[1]) ||
	    !lohex((unsigned char)s[53]) || !lohex((unsigned char)s[54]))
		return ST_EINVAL;
	memcpy(ver, s, 2);
	ver[2] = 0;
	memcpy(flags, s + 53, 2);
	flags[2] = 0;
	if (!strcmp(ver, "ff"))
		return ST_EINVAL;
	if (!strcmp(ver, "00") ? n != 55 : n > 55 && s[55] != '-')
		return ST_EINVAL;
	if (take_hex(out->trace_id, s + 3, 32, 1) < 0 || take_hex(out->span_id, s + 36, 16, 1) < 0)
		return ST_EINVAL;
	out->sampled = (int)(strtoul(flags, NULL, 16) & 1u);
	return 0;
}

static int parse_xcloud(const char *v, struct http_trace *out)
{
	size_t n, i;
	const char *s = trim(v, &n);

	if (n < 32 || take_hex(out->trace_id, s, 32, 0) < 0)
		return ST_EINVAL;
	i = 32;
	if (i < n && s[i] == '/') {
		uint64_t span = 0;
		size_t d = 0;
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, d++) {
			unsigned dig = (unsigned)(s[i] - '0');
			if (span > (UINT64_MAX - dig) / 10)
				return ST_EINVAL;	/* over 64 bits */
			span = span * 10 + dig;
		}
		if (!d)
			return ST_EINVAL;
		if (span)	/* span 0 means none */
			snprintf(out->span_id, sizeof(out->span_id), "%016" PRIx64, span);
	}
	if (i < n && s[i] == ';') {
		if (n - i != 4 || s[i + 1] != 'o' || s[i + 2] != '=' || (s[i + 3] != '0' && s[i + 3] != '1'))
			return ST_EINVAL;
		out->sampled = s[i + 3] == '1';
		i = n;
	}
	return i == n ? 0 : ST_EINVAL;
}

int http_trace_parse(const char *traceparent, const char *xcloud, struct http_trace *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	out->sampled = -1;
	if (traceparent)
		rc = parse_traceparent(traceparent, out);
	else if (xcloud)
		rc = parse_xcloud(xcloud, out);
	else
		rc = ST_EINVAL;
	if (rc < 0) {
		memset(out, 0, sizeof(*out));
		out->sampled = -1;
	}
	return rc;
}
