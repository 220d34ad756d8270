/*
 * http_trace.h - the trace context of a request (http_trace.c): W3C
 * `traceparent`, or Google's `X-Cloud-Trace-Context` when there is no
 * traceparent, parsed into the ids Cloud Logging's
 * logging.googleapis.com/{trace,spanId,trace_sampled} fields take.
 * Pure parsing: no I/O, no allocation, any thread.
 */
#ifndef GR_SERVICE_HTTP_TRACE_H
#define GR_SERVICE_HTTP_TRACE_H

struct http_trace {
	char trace_id[33];	/* 32 lowercase hex digits, not all zero */
	char span_id[17];	/* 16 lowercase hex digits, or "" when the header had none */
	int sampled;		/* 1, 0, or -1 when the header did not say */
};

/*
 * Fills *out from the header values (either may be NULL): traceparent wins;
 * X-Cloud-Trace-Context ("TRACE_ID[/SPAN_ID][;o=0|1]", the span id in
 * decimal) is read only when traceparent is absent. 0, or ST_EINVAL when
 * neither is present or the one read is malformed (then no trace at all).
 */
int http_trace_parse(const char *traceparent, const char *xcloud, struct http_trace *out);

#endif
