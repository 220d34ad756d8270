/*
 * metrics.c - counters and histograms for /metrics (see metrics.h).
 *
 * Names, help texts and bucket edges are vLLM's (vllm/v1/metrics/loggers.py,
 * PrometheusStatLogger, at commit 005a810bc40f; the request phases as its
 * vllm/v1/metrics/stats.py defines them: queue = scheduled - queued,
 * prefill = first token - scheduled, decode = last token - first token,
 * inference = last token - scheduled). Length histograms use vLLM's
 * 1-2-5 edges (build_1_2_5_buckets) up to 100000 instead of up to
 * max_model_len: the same edges, a few more of them, so the quantiles of
 * any request are the same. vllm:iteration_tokens_total is built at render
 * time from the engine's per-step power-of-two bins (eng_stats), which
 * land exactly on vLLM's edges (1, 8, 16, ... 16384).
 *
 * The HTTP counter keeps a small table of
 * (handler, method, status) rows; handlers are a fixed set of route names
 * chosen by the router, so the table is bounded.
 */
#include "service/http/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define MAX_BUCKETS 24
#define MAX_HTTP_ROWS 256

struct hist {
	const char *name, *help;
	int n;
	double le[MAX_BUCKETS];
	uint64_t count[MAX_BUCKETS];	/* per bucket, not cumulative */
	uint64_t total;
	double sum;
};

struct http_row {
	char handler[32], method[8];
	int status;
	uint64_t n;
};

static struct {
	char model[256];		/* JSON/label-escaped model name */
	struct hist ttft, tpot, itl, e2e, queue, prompt_len, gen_len;
	struct hist prefill, decode, inference, prefill_per_tok, max_gen, params_n, params_max_tokens;
	uint64_t success[4];		/* stop, length, abort, error */
	uint64_t prompt_tokens, generation_tokens;
	int n_rows;
	struct http_row rows[MAX_HTTP_ROWS];
	uint64_t rows_dropped;
} g;

static const char *const finish_names[4] = { "stop", "length", "abort", "error" };

static void hist_init(struct hist *h, const char *name, const char *help, const double *le, int n)
{
	memset(h, 0, sizeof(*h));
	h->name = name;
	h->help = help;
	h->n = MIN(n, MAX_BUCKETS);
	memcpy(h->le, le, sizeof(double) * (size_t)h->n);
}

static void hist_add(struct hist *h, double v)
{
	int i = 0;
	while (i < h->n && v > h->le[i])
		i++;
	if (i < h->n)
		h->count[i]++;
	h->total++;
	h->sum += v;
}

static void label_escape(char *dst, size_t cap, const char *s)
{
	size_t o = 0;
	for (; *s && o + 3 < cap; s++) {
		if (*s == '\\' || *s == '"') {
			dst[o++] = '\\';
			dst[o++] = *s;
		} else if (*s == '\n') {
			dst[o++] = '\\';
			dst[o++] = 'n';
		} else {
			dst[o++] = *s;
		}
	}
	dst[o] = 0;
}

void met_init(const char *model_name)
{
	static const double ttft_b[] = { 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
					 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0,
					 2560.0 };
	static const double tpot_b[] = { 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
					 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0 };
	static const double e2e_b[] = { 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
					30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0,
					7680.0 };
	static const double len_b[] = { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
					10000, 20000, 50000, 100000 };
	static const double prefill_tok_b[] = { 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0 };
	static const double n_b[] = { 1, 2, 5, 10, 20 };

	memset(&g, 0, sizeof(g));
	label_escape(g.model, sizeof(g.model), model_name ? model_name : "");
	hist_init(&g.ttft, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
		  ttft_b, ARRAY_SIZE(ttft_b));
	hist_init(&g.tpot, "vllm:time_per_output_token_seconds",
		  "Histogram of time per output token in seconds.", tpot_b, ARRAY_SIZE(tpot_b));
	hist_init(&g.itl, "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
		  tpot_b, ARRAY_SIZE(tpot_b));
	hist_init(&g.e2e, "vllm:e2e_request_latency_seconds",
		  "Histogram of end to end request latency in seconds.", e2e_b, ARRAY_SIZE(e2e_b));
	hist_init(&g.queue, "vllm:request_queue_time_seconds",
		  "Histogram of time spent in WAITING phase for request.", e2e_b, ARRAY_SIZE(e2e_b));
	hist_init(&g.prompt_len, "vllm:request_prompt_tokens", "Number of prefill tokens processed.",
		  len_b, ARRAY_SIZE(len_b));
	hist_init(&g.gen_len, "vllm:request_generation_tokens", "Number of generation tokens processed.",
		  len_b, ARRAY_SIZE(len_b));
	hist_init(&g.prefill, "vllm:request_prefill_time_seconds",
		  "Histogram of time spent in PREFILL phase for request.", e2e_b, ARRAY_SIZE(e2e_b));
	hist_init(&g.decode, "vllm:request_decode_time_seconds",
		  "Histogram of time spent in DECODE phase for request.", e2e_b, ARRAY_SIZE(e2e_b));
	hist_init(&g.inference, "vllm:request_inference_time_seconds",
		  "Histogram of time spent in RUNNING phase for request.", e2e_b, ARRAY_SIZE(e2e_b));
	hist_init(&g.prefill_per_tok, "vllm:time_per_prefill_token_request_seconds",
		  "Time spent per token during prefill phase in seconds", prefill_tok_b,
		  ARRAY_SIZE(prefill_tok_b));
	hist_init(&g.max_gen, "vllm:request_max_num_generation_tokens",
		  "Histogram of maximum number of requested generation tokens.", len_b, ARRAY_SIZE(len_b));
	hist_init(&g.params_n, "vllm:request_params_n", "Histogram of the n request parameter.", n_b,
		  ARRAY_SIZE(n_b));
	hist_init(&g.params_max_tokens, "vllm:request_params_max_tokens",
		  "Histogram of the max_tokens request parameter.", len_b, ARRAY_SIZE(len_b));
}

void met_release(void)
{
}

void met_request_done(const char *finish, int n_prompt, int n_cached, int n_generated, double t_arrival,
		      double t_queued, double t_scheduled, double t_first_token, double t_done)
{
	int k = 3;
	for (int i = 0; i < 4; i++)
		if (!strcmp(finish, finish_names[i]))
			k = i;
	g.success[k]++;
	g.prompt_tokens += (uint64_t)MAX(n_prompt, 0);
	g.generation_tokens += (uint64_t)MAX(n_generated, 0);
	hist_add(&g.prompt_len, n_prompt);
	hist_add(&g.gen_len, n_generated);
	if (t_done > 0 && t_arrival > 0)
		hist_add(&g.e2e, MAX(t_done - t_arrival, 0));
	if (t_scheduled > 0 && t_queued > 0) {
		hist_add(&g.queue, MAX(t_scheduled - t_queued, 0));
		if (t_done > 0) {
			double first = t_first_token > 0 ? t_first_token : t_done;
			double prefill = MAX(first - t_scheduled, 0);
			hist_add(&g.prefill, prefill);
			hist_add(&g.decode, MAX(t_done - first, 0));
			hist_add(&g.inference, MAX(t_done - t_scheduled, 0));
			/* per prompt token computed: those from the prefix cache took no time */
			if (n_prompt - MAX(n_cached, 0) > 0)
				hist_add(&g.prefill_per_tok, prefill / (n_prompt - MAX(n_cached, 0)));
		}
	} else if (t_queued > 0 && t_done > 0) {
		hist_add(&g.queue, MAX(t_done - t_queued, 0));	/* never left the queue */
	}
	if (t_first_token > 0 && t_arrival > 0) {
		hist_add(&g.ttft, MAX(t_first_token - t_arrival, 0));
		if (n_generated > 1 && t_done > t_first_token)
			hist_add(&g.tpot, (t_done - t_first_token) / (n_generated - 1));
	}
}

void met_request_group_done(int n, int max_tokens_param, int max_generated)
{
	hist_add(&g.params_n, n);
	if (max_tokens_param > 0)
		hist_add(&g.params_max_tokens, max_tokens_param);
	hist_add(&g.max_gen, MAX(max_generated, 0));
}

void met_inter_token(double seconds)
{
	hist_add(&g.itl, MAX(seconds, 0));
}

void met_http(const char *handler, const char *method, int status)
{
	for (int i = 0; i < g.n_rows; i++) {
		struct http_row *r = &g.rows[i];
		if (r->status == status && !strcmp(r->handler, handler) && !strcmp(r->method, method)) {
			r->n++;
			return;
		}
	}
	if (g.n_rows == MAX_HTTP_ROWS) {
		g.rows_dropped++;
		return;
	}
	struct http_row *r = &g.rows[g.n_rows++];
	snprintf(r->handler, sizeof(r->handler), "%s", handler);
	snprintf(r->method, sizeof(r->method), "%s", method);
	r->status = status;
	r->n = 1;
}

static void head(struct sbuf *sb, const char *name, const char *type, const char *help)
{
	sb_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct sbuf *sb, const char *name, const char *help, double v)
{
	head(sb, name, "gauge", help);
	sb_printf(sb, "%s{model_name=\"%s\"} %.9g\n", name, g.model, v);
}

static void counter(struct sbuf *sb, const char *name, const char *help, uint64_t v)
{
	head(sb, name, "counter", help);
	sb_printf(sb, "%s{model_name=\"%s\"} %llu\n", name, g.model, (unsigned long long)v);
}

static void hist_render(struct sbuf *sb, const struct hist *h)
{
	uint64_t cum = 0;
	head(sb, h->name, "histogram", h->help);
	for (int i = 0; i < h->n; i++) {
		cum += h->count[i];
		sb_printf(sb, "%s_bucket{le=\"%g\",model_name=\"%s\"} %llu\n", h->name, h->le[i], g.model,
			  (unsigned long long)cum);
	}
	sb_printf(sb, "%s_bucket{le=\"+Inf\",model_name=\"%s\"} %llu\n", h->name, g.model,
		  (unsigned long long)h->total);
	sb_printf(sb, "%s_sum{model_name=\"%s\"} %.9g\n", h->name, g.model, h->sum);
	sb_printf(sb, "%s_count{model_name=\"%s\"} %llu\n", h->name, g.model, (unsigned long long)h->total);
}

/*
 * vllm:iteration_tokens_total from eng_stats.step_tokens_bins: bin k holds
 * steps of 2^(k-1) < n <= 2^k tokens, so vLLM's edge 2^j is bins 0..j.
 */
static void iteration_render(struct sbuf *sb, const struct eng_stats *e)
{
	static const int edges_log2[] = { 0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };	/* 1, 8 ... 16384 */
	const char *name = "vllm:iteration_tokens_total";
	uint64_t cum = 0, total = 0;
	int k = 0;

	head(sb, name, "histogram", "Histogram of number of tokens per engine_step.");
	for (int i = 0; e && i < ENG_STEP_BINS; i++)
		total += e->step_tokens_bins[i];
	for (size_t i = 0; i < ARRAY_SIZE(edges_log2); i++) {
		for (; e && k <= edges_log2[i]; k++)
			cum += e->step_tokens_bins[k];
		sb_printf(sb, "%s_bucket{le=\"%d\",model_name=\"%s\"} %llu\n", name, 1 << edges_log2[i], g.model,
			  (unsigned long long)cum);
	}
	sb_printf(sb, "%s_bucket{le=\"+Inf\",model_name=\"%s\"} %llu\n", name, g.model, (unsigned long long)total);
	sb_printf(sb, "%s_sum{model_name=\"%s\"} %llu\n", name, g.model,
		  (unsigned long long)(e ? e->step_tokens : 0));
	sb_printf(sb, "%s_count{model_name=\"%s\"} %llu\n", name, g.model, (unsigned long long)total);
}

void met_render(struct sbuf *sb, const struct met_snapshot *s)
{
	const struct eng_stats *e = &s->eng;
	int have = s->have_engine;

	gauge(sb, "vllm:num_requests_running", "Number of requests in model execution batches.",
	      have ? e->running : 0);
	gauge(sb, "vllm:num_requests_waiting", "Number of requests waiting to be processed.",
	      have ? e->waiting : 0);
	gauge(sb, "vllm:gpu_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
	      have ? e->kv_usage : 0);
	gauge(sb, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
	      have ? e->kv_usage : 0);
	gauge(sb, "gemma_run_kv_blocks", "KV-cache blocks in the pool.", have ? e->kv_blocks_total : 0);
	gauge(sb, "gemma_run_kv_blocks_free", "KV-cache blocks free.", have ? e->kv_blocks_free : 0);
	/* prefix cache (vLLM v1's counters, in tokens) */
	counter(sb, "vllm:prefix_cache_queries_total",
		"Prefix cache queries, in terms of number of queried tokens.",
		have ? e->prefix_cache_queries : 0);
	counter(sb, "vllm:prefix_cache_hits_total",
		"Prefix cache hits, in terms of number of cached tokens.",
		have ? e->prefix_cache_hits : 0);
	gauge(sb, "gemma_run_kv_blocks_evictable",
	      "KV-cache blocks holding cached prefixes no request uses (reusable, evicted when needed).",
	      have ? e->kv_blocks_evictable : 0);
	counter(sb, "vllm:num_preemptions_total", "Cumulative number of preemptions from the engine.",
		have ? e->preemptions : 0);
	counter(sb, "vllm:prompt_tokens_total", "Number of prefill tokens processed.", g.prompt_tokens);
	counter(sb, "vllm:generation_tokens_total", "Number of generation tokens processed.",
		g.generation_tokens);
	head(sb, "vllm:request_success_total", "counter", "Count of successfully processed requests.");
	for (int i = 0; i < 4; i++)
		sb_printf(sb, "vllm:request_success_total{finished_reason=\"%s\",model_name=\"%s\"} %llu\n",
			  finish_names[i], g.model, (unsigned long long)g.success[i]);
	hist_render(sb, &g.ttft);
	hist_render(sb, &g.tpot);
	hist_render(sb, &g.itl);
	hist_render(sb, &g.e2e);
	hist_render(sb, &g.queue);
	hist_render(sb, &g.prompt_len);
	hist_render(sb, &g.gen_len);
	hist_render(sb, &g.prefill);
	hist_render(sb, &g.decode);
	hist_render(sb, &g.inference);
	hist_render(sb, &g.prefill_per_tok);
	hist_render(sb, &g.max_gen);
	hist_render(sb, &g.params_n);
	hist_render(sb, &g.params_max_tokens);
	iteration_render(sb, have ? e : NULL);

	head(sb, "http_requests_total", "counter", "HTTP responses by route, method and status.");
	for (int i = 0; i < g.n_rows; i++)
		sb_printf(sb, "http_requests_total{handler=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
			  g.rows[i].handler, g.rows[i].method, g.rows[i].status,
			  (unsigned long long)g.rows[i].n);

	uint64_t done = 0, total = 0;
	if (s->load) {
		done = atomic_load(&((struct ld_progress *)s->load)->bytes_done);
		total = atomic_load(&((struct ld_progress *)s->load)->bytes_total);
	}
	head(sb, "gemma_run_load_bytes", "gauge", "Model bytes loaded so far.");
	sb_printf(sb, "gemma_run_load_bytes{model_name=\"%s\"} %llu\n", g.model, (unsigned long long)done);
	head(sb, "gemma_run_load_bytes_expected", "gauge", "Model bytes to load.");
	sb_printf(sb, "gemma_run_load_bytes_expected{model_name=\"%s\"} %llu\n", g.model, (unsigned long long)total);
	head(sb, "gemma_run_load_seconds", "gauge", "Seconds spent per start-up stage.");
	if (s->load) {
		/* The loader thread writes stage_s, then stores done (seq_cst): read the
		 * stages only after seeing done, so this thread never races the writes. */
		int finished = atomic_load(&s->load->done) != 0;
		for (int i = 0; i < LD_N_STAGES; i++)
			sb_printf(sb, "gemma_run_load_seconds{model_name=\"%s\",stage=\"%s\"} %.6f\n", g.model,
				  ld_stage_name[i], finished ? s->load->stage_s[i] : 0.0);
	}
	sb_printf(sb, "gemma_run_load_seconds{model_name=\"%s\",stage=\"tokenizer\"} %.6f\n", g.model,
		  s->tokenizer_s);
	sb_printf(sb, "gemma_run_load_seconds{model_name=\"%s\",stage=\"warmup\"} %.6f\n", g.model, s->warmup_s);
	if (s->plan) {
		static const char *kinds[] = { "weights", "activations", "kv_cache", "reserve", "budget" };
		size_t v[] = { s->plan->weight_bytes, s->plan->activation_bytes, s->plan->kv_bytes,
			       s->plan->reserve_bytes, s->plan->budget_bytes };
		head(sb, "gemma_run_memory_bytes", "gauge",
		     "Start-up memory plan: bytes per kind (budget = what the process may use).");
		for (int i = 0; i < 5; i++)
			sb_printf(sb, "gemma_run_memory_bytes{kind=\"%s\",model_name=\"%s\"} %zu\n",
				  kinds[i], g.model, v[i]);
		gauge(sb, "gemma_run_kv_cache_tokens", "Tokens the KV cache holds (blocks x block size).",
		      s->plan->kv_tokens);
	}
	if (s->load) {
		head(sb, "gemma_run_load_workers", "gauge",
		     "Loader workers allowed now (AIMD: halved on 429/503, grown back).");
		sb_printf(sb, "gemma_run_load_workers{model_name=\"%s\"} %d\n", g.model, atomic_load(&s->load->workers));
		head(sb, "gemma_run_load_throttles_total", "counter", "Loader reads answered 429 or 503.");
		sb_printf(sb, "gemma_run_load_throttles_total{model_name=\"%s\"} %llu\n", g.model,
			  (unsigned long long)atomic_load(&s->load->throttles));
		head(sb, "gemma_run_load_retries_total", "counter", "Loader reads retried.");
		sb_printf(sb, "gemma_run_load_retries_total{model_name=\"%s\"} %llu\n", g.model,
			  (unsigned long long)atomic_load(&s->load->retries));
	}
	head(sb, "gemma_run_load_error", "gauge",
	     "1 with the one-line reason as a label once start-up failed; 0 otherwise.");
	sb_printf(sb, "gemma_run_load_error{model_name=\"%s\",reason=\"", g.model);
	for (const char *c = s->load_error ? s->load_error : ""; *c; c++) {	/* label value escapes */
		if (*c == '\\' || *c == '"')
			sb_putc(sb, '\\');
		if (*c == '\n')
			sb_puts(sb, "\\n");
		else
			sb_putc(sb, *c);
	}
	sb_printf(sb, "\"} %d\n", s->load_error ? 1 : 0);
	head(sb, "gemma_run_ready", "gauge", "1 when the model is resident and warmed up.");
	sb_printf(sb, "gemma_run_ready{model_name=\"%s\"} %d\n", g.model, s->ready ? 1 : 0);
}
