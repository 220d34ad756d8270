/*
 * http_util.c - replying, OpenAI-shaped errors, request bodies and the
 * access log (one JSON line per response, Cloud Logging's httpRequest,
 * formatted in srv->log_line: never in the buffer a reply was built in).
 * Loop thread only. A body built in an sbuf that ran out of memory is
 * never sent: http_reply_sb answers 500 instead.
 */
#include "service/http/http_util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "common/log.h"
#include "common/util.h"
#include "service/api/api_resp.h"
#include "service/auth/gcp_project.h"
#include "service/http/http_conn.h"
#include "service/http/http_trace.h"
#include "service/http/metrics.h"

/* "projects/" + a project id (gcp_project.c: < 128) + "/traces/" + 32 hex */
#define ID_TRACE_MAX 200

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "OTHER";
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return NULL;
	}
}

/*
 * A bounded copy of client text (URL, User-Agent) for the log: control bytes
 * and bytes that are not valid UTF-8 become '?', and a long value is cut at a
 * character boundary with "...", so the log line stays one valid JSON object
 * within log.c's line size.
 */
static const char *log_safe(char *dst, size_t cap, const char *s)
{
	size_t o = 0, i = 0, n = strlen(s);

	while (i < n && o + 4 < cap) {
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;
		size_t l = utf8_decode(s + i, n - i, &cp);
		if (c < 0x20 || c == 0x7f || !l) {
			dst[o++] = '?';
			i++;
			continue;
		}
		memcpy(dst + o, s + i, l);
		o += l;
		i += l;
	}
	if (i < n && o + 3 < cap) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = 0;
	return dst;
}

/* Query parameter names whose values are secrets (compared without case,
 * after percent-decoding, '-' and '_' alike). */
static const char *const secret_params[] = {
	"key", "api_key", "apikey", "token", "access_token", "id_token", "auth", "authorization",
	"password", "passwd", "secret", "client_secret", "signature", "sig", "x_goog_api_key",
};

static int secret_param(const char *name, size_t n)
{
	char d[40];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)name[i];
		if (c == '%' && i + 2 < n && isxdigit((unsigned char)name[i + 1]) &&
		    isxdigit((unsigned char)name[i + 2])) {
			char hx[3] = { name[i + 1], name[i + 2], 0 };
			c = (int)strtol(hx, NULL, 16);
			i += 2;
		}
		if (o + 1 >= sizeof(d))
			return 0;
		d[o++] = c == '-' ? '_' : (char)tolower(c);
	}
	d[o] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(secret_params); i++)
		if (!strcmp(d, secret_params[i]))
			return 1;
	return 0;
}

/*
 * The request URI for the log with the value of every secret query parameter
 * (see secret_params) replaced by "REDACTED". dst gets at most cap - 1 bytes;
 * a value is copied whole or not at all, so a cut never leaks part of one.
 */
static const char *redact_uri(char *dst, size_t cap, const char *uri)
{
	size_t o = 0, n = strlen(uri), i = strcspn(uri, "?");

	i = MIN(i + (i < n), n);	/* the path and the '?' */
	memcpy(dst, uri, MIN(i, cap - 1));
	o = MIN(i, cap - 1);
	while (i < n && o < cap - 1) {
		size_t pl = strcspn(uri + i, "&;");	/* one name[=value] */
		size_t nl = strcspn(uri + i, "=&;");
		const char *part = uri + i;
		size_t take = pl;
		int red = nl < pl && secret_param(part, nl);
		if (red)
			take = nl + 1;
		take = MIN(take, cap - 1 - o);
		memcpy(dst + o, part, take);
		o += take;
		if (red) {
			static const char mark[] = "REDACTED";
			size_t m = MIN(sizeof(mark) - 1, cap - 1 - o);
			memcpy(dst + o, mark, m);
			o += m;
		}
		i += pl;
		if (i < n && o < cap - 1)
			dst[o++] = uri[i++];	/* the separator */
		else if (i < n)
			i++;
	}
	dst[o] = 0;
	return dst;
}

/* "http" or "https" from X-Forwarded-Proto (its first value), else "http". */
static const char *scheme_of(struct evkeyvalq *h)
{
	const char *p = evhttp_find_header(h, "X-Forwarded-Proto");
	if (!p)
		return "http";
	p += strspn(p, " \t");
	size_t n = strcspn(p, ", \t");
	return n == 5 && !strncasecmp(p, "https", 5) ? "https" : "http";
}

/* Bytes of a header block as sent: "Name: value\r\n" each, then "\r\n". */
static uint64_t headers_size(struct evkeyvalq *h)
{
	uint64_t n = 2;
	for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
		n += strlen(kv->key) + 2 + strlen(kv->value) + 2;
	return n;
}

void http_access_log(struct srv *s, struct evhttp_request *req, const char *route, int status,
		     double t0, const char *who, int tin, int tout, const char *rid)
{
	http_access_log_sent(s, req, route, status, t0, who, tin, tout, rid, 0);
}

void http_access_log_sent(struct srv *s, struct evhttp_request *req, const char *route, int status,
			  double t0, const char *who, int tin, int tout, const char *rid, size_t sent)
{
	/* Cloud Run's own request log: 4xx WARNING, 5xx ERROR */
	enum log_level lv = status >= 500 ? LOG_ERROR : status >= 400 ? LOG_WARN : LOG_INFO;
	const char *method = method_name(evhttp_request_get_command(req));
	const char *raw_uri = evhttp_request_get_uri(req);
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *raw_ua = evhttp_find_header(h, "User-Agent");
	const char *host = evhttp_find_header(h, "Host");
	const char *project = gcp_project_get(s->project);
	char uri[512], ua[256], red[1024], url[1400], safe_url[768];
	double lat = now_sec() - t0;
	struct sbuf *sb = &s->log_line;
	struct http_trace tr;
	char *peer = NULL;
	ev_uint16_t port = 0;
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	const char *rsn = reason(status);
	uint64_t req_size, resp_size;

	met_http(route, method, status);
	/* probes and scrapes are frequent; keep them out of the default log */
	if (!strcmp(route, "/health") || !strcmp(route, "/metrics"))
		lv = status >= 500 && status != 503 ? LOG_ERROR : LOG_DEBUG;
	if (lv < log_min_level())
		return;
	if (c)
		evhttp_connection_get_peer(c, &peer, &port);
	redact_uri(red, sizeof(red), raw_uri ? raw_uri : "");
	log_safe(uri, sizeof(uri), red);
	log_safe(ua, sizeof(ua), raw_ua ? raw_ua : "");
	/* the HttpRequest reference's requestUrl: scheme, host, path and query
	 * (an absolute-form request target is already whole) */
	if (red[0] == '/' && host && *host)
		snprintf(url, sizeof(url), "%s://%.256s%s", scheme_of(h), host, red);
	else
		snprintf(url, sizeof(url), "%s", red);
	log_safe(safe_url, sizeof(safe_url), url);
	/* sizes as sent: request line, headers, body; the response's status
	 * line, the headers set so far (not the Date and Content-Length evhttp
	 * adds while sending), the body buffered now and what was streamed */
	req_size = strlen(method) + 1 + strlen(raw_uri ? raw_uri : "") + 11 + headers_size(h) +
		   evbuffer_get_length(evhttp_request_get_input_buffer(req));
	resp_size = 13 + strlen(rsn ? rsn : "Error") + 2 +
		    headers_size(evhttp_request_get_output_headers(req)) + sent +
		    (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD ? 0 :
		     evbuffer_get_length(evhttp_request_get_output_buffer(req)));
	sb_reset(sb);
	sb_puts(sb, "\"httpRequest\":{\"requestMethod\":");
	sb_json_str(sb, method);
	sb_puts(sb, ",\"requestUrl\":");
	sb_json_str(sb, safe_url);
	sb_printf(sb, ",\"requestSize\":\"%llu\",\"status\":%d,\"responseSize\":\"%llu\",\"latency\":\"%.6fs\",\"userAgent\":",
		  (unsigned long long)req_size, status, (unsigned long long)resp_size, lat);
	sb_json_str(sb, ua);
	sb_puts(sb, ",\"remoteIp\":");
	sb_json_str(sb, peer ? peer : "");
	sb_puts(sb, ",\"protocol\":\"HTTP/1.1\"}");
	if (rid) {
		sb_puts(sb, ",\"requestId\":");
		sb_json_str(sb, rid);
	}
	if (who) {
		sb_puts(sb, ",\"caller\":");
		sb_json_str(sb, who);
	}
	if (tin >= 0)
		sb_printf(sb, ",\"tokensIn\":%d,\"tokensOut\":%d", tin, tout);
	if (project && http_trace_parse(evhttp_find_header(h, "traceparent"),
					evhttp_find_header(h, "X-Cloud-Trace-Context"), &tr) == 0) {
		char trace[ID_TRACE_MAX];
		snprintf(trace, sizeof(trace), "projects/%s/traces/%s", project, tr.trace_id);
		sb_puts(sb, ",\"logging.googleapis.com/trace\":");
		sb_json_str(sb, trace);
		if (tr.span_id[0])
			sb_printf(sb, ",\"logging.googleapis.com/spanId\":\"%s\"", tr.span_id);
		if (tr.sampled >= 0)
			sb_printf(sb, ",\"logging.googleapis.com/trace_sampled\":%s", tr.sampled ? "true" : "false");
	}
	if (sb->oom)	/* no fields rather than a cut JSON fragment */
		log_msg(lv, "%s %s %d", method, uri, status);
	else
		log_fields(lv, sb_cstr(sb), "%s %s %d", method, uri, status);
}

/* The response has been written out (or the connection died first). */
static void on_sent(struct evhttp_request *req, void *arg)
{
	struct srv *s = arg;
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	if (c) {
		evhttp_connection_set_closecb(c, NULL, NULL);
		http_conn_idle(s->conns, c);	/* the idle deadline starts */
	}
	s->n_sending--;
}

static void on_sent_close(struct evhttp_connection *c, void *arg)
{
	struct srv *s = arg;
	(void)c;
	s->n_sending--;
}

void http_track_send(struct srv *s, struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	if (!c)
		return;
	s->n_sending++;
	evhttp_request_set_on_complete_cb(req, on_sent, s);
	evhttp_connection_set_closecb(c, on_sent_close, s);
}

void http_reply(struct srv *s, struct evhttp_request *req, const char *route, int status,
		const char *ctype, const char *body, size_t len, double t0, const char *who, int tin,
		int tout)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evhttp_request_get_output_buffer(req);

	evhttp_add_header(oh, "Content-Type", ctype);
	if (atomic_load(&s->state) == SRV_DRAINING)
		evhttp_add_header(oh, "Connection", "close");
	if (status == 429 || status == 503)
		evhttp_add_header(oh, "Retry-After", "1");
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* evhttp writes whatever is buffered, even for HEAD, and adds no
		 * Content-Length: a body here would be read as the next response */
		char cl[32];
		snprintf(cl, sizeof(cl), "%zu", body ? len : 0);
		evhttp_add_header(oh, "Content-Length", cl);
	} else if (body && len) {
		evbuffer_add(b, body, len);
	}
	http_access_log(s, req, route, status, t0, who, tin, tout, NULL);
	http_track_send(s, req);
	evhttp_send_reply(req, status, reason(status), NULL);
}

void http_reply_sb(struct srv *s, struct evhttp_request *req, const char *route, int status,
		   const char *ctype, struct sbuf *sb, double t0, const char *who, int tin, int tout)
{
	size_t len;
	const char *body = api_json_or_oom(sb, &len);

	if (sb->oom) {
		status = 500;
		ctype = "application/json";
	}
	http_reply(s, req, route, status, ctype, body, len, t0, who, tin, tout);
}

void http_error(struct srv *s, struct evhttp_request *req, const char *route, int status,
		const char *msg, const char *param, double t0)
{
	struct sbuf sb;
	sb_init(&sb);
	api_error_json(&sb, status, msg, param);
	if (status == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
	http_reply_sb(s, req, route, status, "application/json", &sb, t0, NULL, -1, 0);
	sb_release(&sb);
}

/* A \u0000 escape (backslashes only occur inside JSON strings). */
static int has_nul_escape(const char *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] != '\\')
			continue;
		if (p[i + 1] == 'u' && i + 6 <= n && memcmp(p + i + 2, "0000", 4) == 0)
			return 1;
		i++;	/* the escaped character */
	}
	return 0;
}

cJSON *http_parse_json(struct srv *s, struct evhttp_request *req, const char *route, double t0,
		       const char *body, size_t len)
{
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);

	if (j && end) {
		while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
			end++;
		if (end != body + len) {
			cJSON_Delete(j);
			http_error(s, req, route, 400, "the request body has data after the JSON value", NULL, t0);
			return NULL;
		}
	}
	if (!j) {
		http_error(s, req, route, 400, "the request body is not valid JSON", NULL, t0);
		return NULL;
	}
	/* a raw NUL byte would end the C string cJSON hands out: the prompt
	 * would be cut silently; refuse it as \u0000 is refused */
	if (memchr(body, 0, len) || has_nul_escape(body, len)) {
		cJSON_Delete(j);
		http_error(s, req, route, 400, "strings must not contain U+0000 (\\u0000)", NULL, t0);
		return NULL;
	}
	return j;
}

int http_read_body(struct srv *s, struct evhttp_request *req, const char *route, double t0,
		   char **body, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *p;

	*body = NULL;
	*len = 0;
	if (n > s->cfg->max_body_bytes) {
		char msg[128];
		snprintf(msg, sizeof(msg), "request body over %zu bytes", s->cfg->max_body_bytes);
		http_error(s, req, route, 413, msg, NULL, t0);
		return -1;
	}
	p = malloc(n + 1);
	if (!p) {
		http_error(s, req, route, 500, "out of memory", NULL, t0);
		return -1;
	}
	evbuffer_copyout(in, p, n);
	p[n] = 0;
	if (!utf8_valid(p, n)) {
		free(p);
		http_error(s, req, route, 400, "request body is not valid UTF-8", NULL, t0);
		return -1;
	}
	*body = p;
	*len = n;
	return 0;
}
