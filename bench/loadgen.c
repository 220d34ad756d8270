/*
 * loadgen.c - an open-loop, constant-rate HTTP load generator (built as
 * $(BUILD)/loadgen). Closed-loop tools (wrk, a fixed pool of clients) wait
 * for a reply before sending the next request and so hide queueing; this one
 * sends request i at t0 + i/rate whatever happens to the earlier ones.
 *
 *   loadgen --target URL --rate N --duration 30s|10m [--body FILE]
 *           [--header 'K: V']... [--stream] [--max-inflight N]
 *           [--timeout 120s] [--drain 30s] [--json]
 *
 * Invariants:
 * - Open loop: a request that would exceed --max-inflight is counted as
 *   dropped, never delayed. requests = success + errors + dropped.
 * - errors = non-2xx responses + transport errors (refused, reset, per-request
 *   timeout) + requests still in flight when the drain deadline passes
 *   (aborted). The run ends at duration + drain at the latest.
 * - Latency is measured from the request's scheduled time (so loop lag is
 *   charged to the server side, not hidden), over 2xx responses only.
 * - --stream reads Server-Sent Events: each `data:` event that carries text
 *   (OpenAI `choices[].text` or `choices[].delta.content` non-empty; any other
 *   non-JSON, non-[DONE] payload) is one output token. TTFT = scheduled time to
 *   the first such event; ITL = gap between consecutive such events of one
 *   request (over all requests, whatever their final status).
 * Uses libcurl multi (HTTP/1.1 keep-alive, HTTP/2 and TLS for real Cloud Run
 * URLs). Single-threaded.
 */
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"

#define LG_LINE_MAX (16 * 1024)
#define LG_BODY_MAX ((size_t)64 << 20)
#define LG_MAX_CODE 600

struct lg_opts {
	const char *target;
	double rate;		/* requests per second */
	double duration;	/* seconds of sending */
	double timeout;		/* per request, seconds */
	double drain;		/* seconds to wait for in-flight requests after duration */
	int max_inflight;
	int stream;
	int json;
	char *body;		/* NULL: GET */
	size_t body_len;
	struct curl_slist *headers;
};

struct lg_samples {
	double *v;
	size_t n, cap;
};

struct lg_stats {
	uint64_t requests, sent, success, dropped, http_errors, transport_errors, aborted;
	uint64_t codes[LG_MAX_CODE];
	uint64_t curl_errs[CURL_LAST];
	uint64_t tokens, bytes_in;
	struct lg_samples lat, ttft, itl;
	double t0, t_first_send, t_last_send, t_last_done, t_end;
};

struct lg_slot {
	CURL *easy;
	int busy;
	double t_sched;
	double t_last_tok;
	uint64_t n_tok;
	size_t line_len;
	struct lg_stats *st;
	char line[LG_LINE_MAX];
};

static volatile sig_atomic_t lg_interrupted;

static void lg_on_sigint(int sig)
{
	(void)sig;
	lg_interrupted = 1;
}

static int samples_push(struct lg_samples *s, double v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		double *nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv)
			return ST_ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void samples_sort(struct lg_samples *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(double), cmp_double);
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const struct lg_samples *s, double p)
{
	if (s->n == 0)
		return 0;
	size_t k = (size_t)ceil(p / 100.0 * (double)s->n);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

static double mean(const struct lg_samples *s)
{
	double sum = 0;
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	return s->n ? sum / (double)s->n : 0;
}

/* "30s", "10m", "1h", "250ms", "1.5" (seconds). */
static int parse_duration(const char *s, double *out)
{
	char num[64];
	size_t n = strlen(s), k = n;
	double mul = 1, v;
	while (k > 0 && ((s[k - 1] >= 'a' && s[k - 1] <= 'z')))
		k--;
	const char *unit = s + k;
	if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0)
		mul = 1;
	else if (strcmp(unit, "ms") == 0)
		mul = 1e-3;
	else if (strcmp(unit, "m") == 0)
		mul = 60;
	else if (strcmp(unit, "h") == 0)
		mul = 3600;
	else
		return ST_EINVAL;
	if (k == 0 || k >= sizeof(num))
		return ST_EINVAL;
	memcpy(num, s, k);
	num[k] = 0;
	if (parse_f64(num, &v) < 0 || v < 0)
		return ST_EINVAL;
	*out = v * mul;
	return 0;
}

/* Whether one SSE data payload carries output text. */
static int sse_has_content(const char *p)
{
	if (strcmp(p, "[DONE]") == 0 || *p == 0)
		return 0;
	cJSON *j = cJSON_Parse(p);
	if (!j)
		return 1;	/* not JSON: a plain-text event counts as a token */
	int has = 0;
	const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
	if (cJSON_IsArray(choices)) {
		const cJSON *c;
		cJSON_ArrayForEach(c, choices) {
			const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "text");
			const cJSON *d = cJSON_GetObjectItemCaseSensitive(c, "delta");
			const cJSON *dc = d ? cJSON_GetObjectItemCaseSensitive(d, "content") : NULL;
			if ((cJSON_IsString(t) && t->valuestring[0]) ||
			    (cJSON_IsString(dc) && dc->valuestring[0]))
				has = 1;
		}
	} else if (!cJSON_GetObjectItemCaseSensitive(j, "error")) {
		has = 1;
	}
	cJSON_Delete(j);
	return has;
}

static void slot_on_line(struct lg_slot *sl)
{
	char *l = sl->line;
	size_t n = sl->line_len;
	if (n > 0 && l[n - 1] == '\r')
		n--;
	l[n] = 0;
	if (strncmp(l, "data:", 5) != 0)
		return;
	l += 5;
	if (*l == ' ')
		l++;
	if (!sse_has_content(l))
		return;
	double t = now_sec();
	if (sl->n_tok == 0)
		samples_push(&sl->st->ttft, t - sl->t_sched);
	else
		samples_push(&sl->st->itl, t - sl->t_last_tok);
	sl->t_last_tok = t;
	sl->n_tok++;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct lg_slot *sl = ud;
	size_t n = size * nmemb;
	sl->st->bytes_in += n;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			slot_on_line(sl);
			sl->line_len = 0;
		} else if (sl->line_len < LG_LINE_MAX - 1) {
			sl->line[sl->line_len++] = p[i];
		}
	}
	return n;
}

static size_t on_body_discard(char *p, size_t size, size_t nmemb, void *ud)
{
	struct lg_slot *sl = ud;
	(void)p;
	sl->st->bytes_in += size * nmemb;
	return size * nmemb;
}

static int slot_setup(struct lg_slot *sl, const struct lg_opts *o, struct lg_stats *st)
{
	CURL *e = curl_easy_init();
	if (!e)
		return ST_ENOMEM;
	sl->easy = e;
	sl->st = st;
	curl_easy_setopt(e, CURLOPT_URL, o->target);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, sl);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, o->stream ? on_body : on_body_discard);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, sl);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o->timeout * 1000));
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(MIN(o->timeout, 10.0) * 1000));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	if (o->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
	}
	return 0;
}

static void slot_finish(struct lg_slot *sl, CURLcode res, double t, int aborted)
{
	struct lg_stats *st = sl->st;
	if (aborted) {
		st->aborted++;
	} else if (res != CURLE_OK) {
		st->transport_errors++;
		if ((int)res >= 0 && res < CURL_LAST)
			st->curl_errs[res]++;
	} else {
		long code = 0;
		curl_easy_getinfo(sl->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 0 && code < LG_MAX_CODE)
			st->codes[code]++;
		if (code >= 200 && code < 300) {
			st->success++;
			samples_push(&st->lat, t - sl->t_sched);
			st->t_last_done = t;
		} else {
			st->http_errors++;
		}
	}
	st->tokens += sl->n_tok;
	sl->busy = 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen --target URL --rate N --duration D [flags]\n"
		"  --target URL        request URL (http or https)\n"
		"  --rate N            requests per second, sent open-loop at t0 + i/N\n"
		"  --duration D        how long to send: 30s, 10m, 1h, 500ms\n"
		"  --body FILE         POST this file (Content-Type: application/json unless a\n"
		"                      --header sets one); GET when absent\n"
		"  --header 'K: V'     extra request header, repeatable (e.g. an ID token)\n"
		"  --stream            read Server-Sent Events: TTFT, inter-token latency, tokens/s\n"
		"  --max-inflight N    requests beyond N in flight are dropped (default 256)\n"
		"  --timeout D         per-request timeout (default 120s)\n"
		"  --drain D           wait for in-flight requests after the duration (default 30s)\n"
		"  --json              print the report as one JSON object\n");
}

static int parse_args(int argc, char **argv, struct lg_opts *o)
{
	const char *body_path = NULL;
	int has_ctype = 0;
	int64_t v;
	o->rate = -1;
	o->duration = -1;
	o->timeout = 120;
	o->drain = 30;
	o->max_inflight = 256;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		if (strcmp(a, "--stream") == 0) {
			o->stream = 1;
			takes = 0;
		} else if (strcmp(a, "--json") == 0) {
			o->json = 1;
			takes = 0;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else if (!val) {
			fprintf(stderr, "loadgen: %s needs a value\n", a);
			return ST_EINVAL;
		} else if (strcmp(a, "--target") == 0) {
			o->target = val;
		} else if (strcmp(a, "--rate") == 0) {
			if (parse_f64(val, &o->rate) < 0 || o->rate <= 0 || o->rate > 1e6)
				goto bad;
		} else if (strcmp(a, "--duration") == 0) {
			if (parse_duration(val, &o->duration) < 0 || o->duration <= 0)
				goto bad;
		} else if (strcmp(a, "--timeout") == 0) {
			if (parse_duration(val, &o->timeout) < 0 || o->timeout < 0.001)
				goto bad;
		} else if (strcmp(a, "--drain") == 0) {
			if (parse_duration(val, &o->drain) < 0)
				goto bad;
		} else if (strcmp(a, "--max-inflight") == 0) {
			if (parse_i64(val, &v) < 0 || v < 1 || v > 100000)
				goto bad;
			o->max_inflight = (int)v;
		} else if (strcmp(a, "--body") == 0) {
			body_path = val;
		} else if (strcmp(a, "--header") == 0 || strcmp(a, "-H") == 0) {
			if (!strchr(val, ':'))
				goto bad;
			if (strncasecmp(val, "content-type:", 13) == 0)
				has_ctype = 1;
			struct curl_slist *h = curl_slist_append(o->headers, val);
			if (!h)
				return ST_ENOMEM;
			o->headers = h;
		} else {
			fprintf(stderr, "loadgen: unknown flag '%s'\n", a);
			return ST_EINVAL;
		}
		i += takes;
		continue;
bad:
		fprintf(stderr, "loadgen: bad value for %s: '%s'\n", a, val);
		return ST_EINVAL;
	}
	if (!o->target || o->rate <= 0 || o->duration <= 0) {
		fprintf(stderr, "loadgen: --target, --rate and --duration are required\n");
		return ST_EINVAL;
	}
	if (body_path) {
		int rc = read_file(body_path, LG_BODY_MAX, &o->body, &o->body_len);
		if (rc < 0) {
			fprintf(stderr, "loadgen: cannot read body '%s'\n", body_path);
			return rc;
		}
		if (!has_ctype)
			o->headers = curl_slist_append(o->headers, "Content-Type: application/json");
		/* no "Expect: 100-continue" round trip on larger bodies */
		o->headers = curl_slist_append(o->headers, "Expect:");
		if (!o->headers)
			return ST_ENOMEM;
	}
	return 0;
}

/* Sends open-loop until the duration ends, then drains; fills st. */
static int run(const struct lg_opts *o, struct lg_stats *st)
{
	struct lg_slot *slots = calloc((size_t)o->max_inflight, sizeof(*slots));
	int *free_idx = calloc((size_t)o->max_inflight, sizeof(*free_idx));
	CURLM *multi = curl_multi_init();
	int rc = 0, n_free = o->max_inflight, inflight = 0;
	if (!slots || !free_idx || !multi) {
		rc = ST_ENOMEM;
		goto out;
	}
	for (int i = 0; i < o->max_inflight; i++)
		free_idx[i] = o->max_inflight - 1 - i;
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)o->max_inflight);

	uint64_t next = 0;	/* index of the next request to schedule */
	const double t0 = now_sec(), end = t0 + o->duration;
	double drain_deadline = end + o->drain;
	int attack_over = 0;
	st->t0 = t0;
	st->t_first_send = st->t_last_send = st->t_last_done = t0;
	for (;;) {
		double now = now_sec();
		if (!attack_over && lg_interrupted) {
			attack_over = 1;
			drain_deadline = now + o->drain;
		}
		while (!attack_over) {
			double due = t0 + (double)next / o->rate;
			if (due >= end) {
				attack_over = 1;
				break;
			}
			if (due > now)
				break;
			next++;
			st->requests++;
			if (st->requests == 1)
				st->t_first_send = now;
			st->t_last_send = now;
			if (n_free == 0) {
				st->dropped++;
				continue;
			}
			struct lg_slot *sl = &slots[free_idx[--n_free]];
			if (!sl->easy && (rc = slot_setup(sl, o, st)) < 0)
				goto out;
			sl->busy = 1;
			sl->t_sched = due;
			sl->n_tok = 0;
			sl->line_len = 0;
			if (curl_multi_add_handle(multi, sl->easy) != CURLM_OK) {
				rc = ST_EIO;
				goto out;
			}
			inflight++;
			st->sent++;
		}
		int running = 0;
		curl_multi_perform(multi, &running);
		CURLMsg *m;
		int left;
		while ((m = curl_multi_info_read(multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct lg_slot *sl;
			CURLcode res = m->data.result;
			CURL *e = m->easy_handle;
			curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&sl);
			curl_multi_remove_handle(multi, e);
			slot_finish(sl, res, now_sec(), 0);
			free_idx[n_free++] = (int)(sl - slots);
			inflight--;
		}
		now = now_sec();
		if (attack_over && inflight == 0)
			break;
		if (attack_over && now >= drain_deadline) {
			for (int i = 0; i < o->max_inflight; i++) {
				if (!slots[i].busy)
					continue;
				curl_multi_remove_handle(multi, slots[i].easy);
				slot_finish(&slots[i], CURLE_OK, now, 1);
				inflight--;
			}
			break;
		}
		double wait = attack_over ? drain_deadline - now : t0 + (double)next / o->rate - now;
		int wait_ms = (int)ceil(wait * 1000);
		wait_ms = wait_ms < 0 ? 0 : wait_ms > 100 ? 100 : wait_ms;
		if (wait_ms > 0)
			curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
	}
	st->t_end = now_sec();
out:
	if (slots) {
		for (int i = 0; i < o->max_inflight; i++) {
			if (!slots[i].easy)
				continue;
			if (slots[i].busy && multi)
				curl_multi_remove_handle(multi, slots[i].easy);
			curl_easy_cleanup(slots[i].easy);
		}
	}
	if (multi)
		curl_multi_cleanup(multi);
	free(slots);
	free(free_idx);
	return rc;
}

static cJSON *json_dist(const struct lg_samples *s)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddNumberToObject(d, "n", (double)s->n);
	cJSON_AddNumberToObject(d, "min", s->n ? s->v[0] : 0);
	cJSON_AddNumberToObject(d, "mean", mean(s));
	cJSON_AddNumberToObject(d, "p50", pct(s, 50));
	cJSON_AddNumberToObject(d, "p90", pct(s, 90));
	cJSON_AddNumberToObject(d, "p95", pct(s, 95));
	cJSON_AddNumberToObject(d, "p99", pct(s, 99));
	cJSON_AddNumberToObject(d, "max", s->n ? s->v[s->n - 1] : 0);
	return d;
}

/* Human duration: 850µs, 12.3ms, 1.52s. */
static const char *fmt_dur(char *buf, size_t cap, double s)
{
	if (s < 1e-3)
		snprintf(buf, cap, "%.0fµs", s * 1e6);
	else if (s < 1)
		snprintf(buf, cap, "%.2fms", s * 1e3);
	else
		snprintf(buf, cap, "%.3fs", s);
	return buf;
}

static void print_dist(const char *label, const struct lg_samples *s)
{
	char b[7][32];
	printf("%-14s[min, mean, 50, 90, 95, 99, max]  %s, %s, %s, %s, %s, %s, %s\n", label,
	       fmt_dur(b[0], 32, s->n ? s->v[0] : 0), fmt_dur(b[1], 32, mean(s)),
	       fmt_dur(b[2], 32, pct(s, 50)), fmt_dur(b[3], 32, pct(s, 90)),
	       fmt_dur(b[4], 32, pct(s, 95)), fmt_dur(b[5], 32, pct(s, 99)),
	       fmt_dur(b[6], 32, s->n ? s->v[s->n - 1] : 0));
}

static void report(const struct lg_opts *o, struct lg_stats *st)
{
	samples_sort(&st->lat);
	samples_sort(&st->ttft);
	samples_sort(&st->itl);
	/* rate: requests (sent or dropped) over the span in which they were issued */
	double attack = st->requests > 1 ? st->t_last_send - st->t_first_send : 0;
	double rate = attack > 0 ? (double)(st->requests - 1) / attack : 0;
	double total = st->t_end - st->t0;
	double wait = st->t_last_done > st->t_last_send ? st->t_last_done - st->t_last_send : 0;
	double thr_span = st->t_last_done - st->t_first_send;
	double throughput = thr_span > 0 ? (double)st->success / thr_span : 0;
	double ratio = st->requests ? (double)st->success / (double)st->requests : 0;
	uint64_t errors = st->http_errors + st->transport_errors + st->aborted;
	double tok_s = total > 0 ? (double)st->tokens / total : 0;

	if (o->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "target", o->target);
		cJSON_AddNumberToObject(j, "target_rate", o->rate);
		cJSON_AddNumberToObject(j, "requests", (double)st->requests);
		cJSON_AddNumberToObject(j, "sent", (double)st->sent);
		cJSON_AddNumberToObject(j, "success", (double)st->success);
		cJSON_AddNumberToObject(j, "errors", (double)errors);
		cJSON_AddNumberToObject(j, "http_errors", (double)st->http_errors);
		cJSON_AddNumberToObject(j, "transport_errors", (double)st->transport_errors);
		cJSON_AddNumberToObject(j, "aborted", (double)st->aborted);
		cJSON_AddNumberToObject(j, "dropped", (double)st->dropped);
		cJSON_AddNumberToObject(j, "rate", rate);
		cJSON_AddNumberToObject(j, "throughput", throughput);
		cJSON_AddNumberToObject(j, "success_ratio", ratio);
		cJSON *d = cJSON_AddObjectToObject(j, "duration_s");
		cJSON_AddNumberToObject(d, "total", total);
		cJSON_AddNumberToObject(d, "attack", attack);
		cJSON_AddNumberToObject(d, "wait", wait);
		cJSON_AddItemToObject(j, "latency_s", json_dist(&st->lat));
		cJSON *codes = cJSON_AddObjectToObject(j, "status_codes");
		for (int c = 0; c < LG_MAX_CODE; c++) {
			char k[16];
			snprintf(k, sizeof(k), "%d", c);
			if (st->codes[c])
				cJSON_AddNumberToObject(codes, k, (double)st->codes[c]);
		}
		cJSON *es = cJSON_AddObjectToObject(j, "transport_error_set");
		for (int c = 0; c < CURL_LAST; c++)
			if (st->curl_errs[c])
				cJSON_AddNumberToObject(es, curl_easy_strerror((CURLcode)c),
							(double)st->curl_errs[c]);
		cJSON_AddNumberToObject(j, "bytes_in", (double)st->bytes_in);
		if (o->stream) {
			cJSON *s = cJSON_AddObjectToObject(j, "stream");
			cJSON_AddItemToObject(s, "ttft_s", json_dist(&st->ttft));
			cJSON_AddItemToObject(s, "itl_s", json_dist(&st->itl));
			cJSON_AddNumberToObject(s, "output_tokens", (double)st->tokens);
			cJSON_AddNumberToObject(s, "output_tokens_per_s", tok_s);
		}
		char *txt = cJSON_PrintUnformatted(j);
		if (txt)
			printf("%s\n", txt);
		free(txt);
		cJSON_Delete(j);
		return;
	}
	char b[3][32];
	printf("Target        %s\n", o->target);
	printf("Requests      [total, rate, throughput]         %llu, %.2f, %.2f\n",
	       (unsigned long long)st->requests, rate, throughput);
	printf("Duration      [total, attack, wait]             %s, %s, %s\n",
	       fmt_dur(b[0], 32, total), fmt_dur(b[1], 32, attack), fmt_dur(b[2], 32, wait));
	print_dist("Latencies", &st->lat);
	printf("Bytes In      [total]                           %llu\n",
	       (unsigned long long)st->bytes_in);
	printf("Success       [ratio]                           %.2f%%\n", ratio * 100);
	printf("Counts        [sent, success, errors, dropped]  %llu, %llu, %llu, %llu\n",
	       (unsigned long long)st->sent, (unsigned long long)st->success,
	       (unsigned long long)errors, (unsigned long long)st->dropped);
	printf("Status Codes  [code:count]                      ");
	for (int c = 0; c < LG_MAX_CODE; c++)
		if (st->codes[c])
			printf("%d:%llu  ", c, (unsigned long long)st->codes[c]);
	printf("\n");
	if (o->stream) {
		print_dist("TTFT", &st->ttft);
		print_dist("ITL", &st->itl);
		printf("Tokens        [total, per second]               %llu, %.2f\n",
		       (unsigned long long)st->tokens, tok_s);
	}
	printf("Error Set:\n");
	for (int c = 0; c < CURL_LAST; c++)
		if (st->curl_errs[c])
			printf("%s: %llu\n", curl_easy_strerror((CURLcode)c),
			       (unsigned long long)st->curl_errs[c]);
	if (st->aborted)
		printf("aborted at the drain deadline: %llu\n", (unsigned long long)st->aborted);
}

int main(int argc, char **argv)
{
	struct lg_opts o = { 0 };
	struct lg_stats *st = calloc(1, sizeof(*st));
	int rc;
	if (!st || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "loadgen: cannot initialise\n");
		return 1;
	}
	if ((rc = parse_args(argc, argv, &o)) != 0) {
		if (rc == ST_EINVAL)
			usage(stderr);
		rc = rc > 0 ? 0 : 2;	/* > 0: --help was answered */
		goto out;
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = lg_on_sigint;
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (run(&o, st) < 0) {
		fprintf(stderr, "loadgen: run failed\n");
		rc = 1;
		goto out;
	}
	report(&o, st);
	rc = 0;
out:
	curl_slist_free_all(o.headers);
	free(o.body);
	free(st->lat.v);
	free(st->ttft.v);
	free(st->itl.v);
	free(st);
	curl_global_cleanup();
	return rc;
}
