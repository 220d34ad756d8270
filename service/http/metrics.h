/*
 * metrics.h - the Prometheus metrics of `serve`, rendered as text 0.0.4.
 *
 * vLLM's names (label model_name) so existing dashboards work, plus
 * http_requests_total{handler,method,status} and gemma_run_load_* for the
 * loader. All updates and the rendering happen on the libevent loop thread
 * (the engine's numbers are read with eng_get_stats at render time), so
 * nothing here is locked. One global instance: metrics are process state.
 */
#ifndef GR_SERVICE_METRICS_H
#define GR_SERVICE_METRICS_H

#include <stdint.h>

#include "common/load_progress.h"
#include "engine/engine.h"
#include "common/sbuf.h"

/* Live values sampled at render time. */
struct met_snapshot {
	int have_engine;
	struct eng_stats eng;
	int ready;			/* gemma_run_ready */
	const struct ld_progress *load;	/* may be NULL */
	double warmup_s, tokenizer_s;	/* extra stages (0: not yet) */
	const struct mem_plan *plan;	/* the engine's memory plan (NULL: not yet) */
	const char *load_error;		/* the one-line reason once start-up failed (NULL: none) */
};

void met_init(const char *model_name);
void met_release(void);

/*
 * A finished engine request (final event). finish: "stop", "length",
 * "abort", "error"; n_cached: prompt tokens found in a prefix cache;
 * times are now_sec() stamps (0: did not happen): HTTP arrival, engine
 * queue, first scheduled, first token, done.
 */
void met_request_done(const char *finish, int n_prompt, int n_cached, int n_generated, double t_arrival,
		      double t_queued, double t_scheduled, double t_first_token, double t_done);
/* An HTTP request whose n choices all finished: its n and max_tokens
 * parameters (max_tokens_param 0: not given) and the most tokens a choice
 * generated (vllm:request_max_num_generation_tokens). */
void met_request_group_done(int n, int max_tokens_param, int max_generated);
/* One inter-token gap (seconds), fed as tokens are streamed out. */
void met_inter_token(double seconds);
/* An HTTP response: handler is the route ("/v1/completions") or "other". */
void met_http(const char *handler, const char *method, int status);

/* Appends the whole exposition to sb. */
void met_render(struct sbuf *sb, const struct met_snapshot *s);

#endif
