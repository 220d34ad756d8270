/*
 * fuzz_trace.c - libFuzzer target for http_trace_parse (the traceparent and
 * X-Cloud-Trace-Context request headers). The first byte picks the header
 * (even: traceparent, odd: X-Cloud-Trace-Context), the rest is its value up
 * to the first NUL. Never crash; an accepted header gives a 32-digit
 * lowercase hex trace id that is not all zero and an empty or 16-digit
 * lowercase hex span id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/http/http_trace.h"

static int lohex(const char *s, size_t n)
{
	if (strlen(s) != n || strspn(s, "0123456789abcdef") != n)
		return 0;
	return strspn(s, "0") != n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_trace t;
	char *v;

	if (size < 1)
		return 0;
	if (!(v = malloc(size)))	/* exact size: ASan catches overreads */
		return 0;
	memcpy(v, data + 1, size - 1);
	v[size - 1] = 0;
	if (http_trace_parse(data[0] & 1 ? NULL : v, data[0] & 1 ? v : NULL, &t) == 0) {
		if (!lohex(t.trace_id, 32) || (t.span_id[0] && !lohex(t.span_id, 16)) || t.sampled < -1 ||
		    t.sampled > 1)
			abort();
	} else if (t.trace_id[0] || t.span_id[0]) {
		abort();
	}
	free(v);
	return 0;
}
