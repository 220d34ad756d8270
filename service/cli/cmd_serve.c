/*
 * cmd_serve.c - `gemma-run serve`: the process of the HTTP service.
 *
 * Order matters (Cloud Run): parse flags, set up auth, bind $PORT, then
 * start the loader thread and serve at once; /health reports progress.
 * The loader thread runs ld_load, builds the tokenizer, creates the engine
 * and runs one warm-up step, then publishes them and flips the state to
 * READY. A failed load logs one clear line, /health answers 500 briefly,
 * and the process exits 1. SIGTERM/SIGINT drain (http_server.c), exit 0.
 * Threads: main = libevent loop; loader (this file); engine (engine.c);
 * the loader's own workers; the JWKS fetcher when google-id-token is on.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "loader/loader.h"
#include "service/auth/auth.h"
#include "service/cli/cli.h"
#include "service/config.h"
#include "engine/engine.h"
#include "service/http/http.h"
#include "service/http/http_gen.h"
#include "service/http/http_server.h"
#include "service/http/metrics.h"
#include "tokenizer/tokenizer.h"

struct serve {
	struct srv_config cfg;
	struct srv srv;
	struct be be;
	int have_be;
	struct ld_model *model;
	struct tokenizer *tok;
	struct engine *eng;
	pthread_t loader;
	_Atomic int loader_done;
	char name[256];
};

static void load_failed(struct serve *sv, const char *fmt, const char *detail)
{
	struct srv *s = &sv->srv;
	snprintf(s->fail_msg, sizeof(s->fail_msg), fmt, detail);
	log_err(ST_EIO, "startup failed: %s", s->fail_msg);
	int st = atomic_load(&s->state);
	if (st != SRV_DRAINING)
		atomic_store(&s->state, SRV_FAILED);
	http_srv_wake(s);
}

/* One structured line with the whole plan (JSON logs: the fields; text: appended). */
static void log_mem_plan(const struct mem_plan *p, const char *backend)
{
	char f[1024];

	if (mem_plan_json(p, f, sizeof(f)) < 0)
		f[0] = '\0';
	log_fields(LOG_INFO, f,
		   "memory plan (%s): budget %.0f MiB of %.0f MiB = weights %.0f + activations %.0f "
		   "+ reserve %.0f + KV cache %.0f MiB (%d blocks, %d tokens, %zu bytes/token, "
		   "sized by %s); max_model_len %d, %d sequences of that length at once",
		   backend, p->budget_bytes / 1048576.0, p->total_bytes / 1048576.0,
		   p->weight_bytes / 1048576.0, p->activation_bytes / 1048576.0,
		   p->reserve_bytes / 1048576.0, p->kv_bytes / 1048576.0, p->kv_blocks, p->kv_tokens,
		   p->kv_token_bytes, p->kv_limit ? p->kv_limit : "?", p->max_model_len,
		   p->max_concurrent_seqs);
}

static void *loader_main(void *arg)
{
	struct serve *sv = arg;
	struct srv *s = &sv->srv;
	const struct srv_config *cfg = &sv->cfg;
	struct be_opts bo = { .n_threads = cfg->threads, .device = 0 };
	struct ld_opts lo;
	struct eng_opts eo;
	struct g2_weights w;
	double t0 = now_sec(), t;
	int rc;

	if ((rc = be_create(cfg->backend, &bo, &sv->be)) < 0) {
		load_failed(sv, "cannot create backend '%s'", cfg->backend);
		goto out;
	}
	sv->have_be = 1;
	ld_opts_default(&lo);
	if (cfg->loader_workers > 0)
		lo.workers = cfg->loader_workers;
	if (cfg->loader_chunk_mb > 0)
		lo.chunk_bytes = (size_t)cfg->loader_chunk_mb << 20;
	if (cfg->loader_pinned_mb > 0)
		lo.pinned_bytes = (size_t)cfg->loader_pinned_mb << 20;
	lo.ca_bundle = cfg->ca_bundle;
	lo.gcs_anonymous = cfg->gcs_anonymous;
	log_info("loading %s on %s", cfg->model, sv->be.ops->name);
	if ((rc = ld_load(cfg->model, &lo, &sv->be, &s->progress, &sv->model)) < 0) {
		load_failed(sv, "cannot load model '%s' (see the error above)", cfg->model);
		goto out;
	}
	t = now_sec() - t0;
	{
		uint64_t bytes = atomic_load(&s->progress.bytes_done);
		char f[512];
		int o = snprintf(f, sizeof(f), "\"bytes\":%llu,\"seconds\":%.3f,\"gbps\":%.3f,\"stages\":{",
				 (unsigned long long)bytes, t, t > 0 ? (double)bytes / t / 1e9 : 0);
		for (int i = 0; i < LD_N_STAGES && o > 0 && (size_t)o < sizeof(f); i++)
			o += snprintf(f + o, sizeof(f) - (size_t)o, "%s\"%s\":%.3f", i ? "," : "",
				      ld_stage_name[i], s->progress.stage_s[i]);
		if (o > 0 && (size_t)o < sizeof(f) - 2)
			strcat(f, "}");
		log_fields(LOG_INFO, f, "model loaded: %.2f GB in %.2f s (%.2f GB/s)", (double)bytes / 1e9, t,
			   t > 0 ? (double)bytes / t / 1e9 : 0);
	}

	t = now_sec();
	if (!sv->model->tokenizer_json) {
		load_failed(sv, "model '%s' has no tokenizer.json", cfg->model);
		goto out;
	}
	if ((rc = tok_create(sv->model->tokenizer_json, sv->model->tokenizer_len, &sv->tok)) < 0) {
		load_failed(sv, "tokenizer.json of '%s' is not usable (see the error above)", cfg->model);
		goto out;
	}
	s->tokenizer_s = now_sec() - t;
	atomic_store(&s->state, SRV_WARMING);

	eng_opts_default(&eo);
	eo.max_num_seqs = cfg->max_num_seqs;
	eo.max_num_batched_tokens = cfg->max_num_batched_tokens;
	eo.max_model_len = cfg->max_model_len;
	eo.max_queue = cfg->max_queue;
	eo.gpu_memory_utilization = cfg->gpu_memory_utilization;
	eng_sampler_parse(cfg->sampler, &eo.sampler);	/* checked by cfg_parse */
	ld_g2_weights(sv->model, &w);
	{
		struct mem_plan plan;
		char perr[512];
		if ((rc = eng_plan(&eo, &w, &plan, perr, sizeof(perr))) < 0) {
			load_failed(sv, "memory plan: %s", perr);
			goto out;
		}
	}
	if ((rc = eng_create(&eo, &w, sv->tok, http_on_output, &sv->eng)) < 0) {
		load_failed(sv, "cannot start the engine for '%s' (see the error above)", cfg->model);
		goto out;
	}
	log_mem_plan(eng_mem_plan(sv->eng), sv->be.ops->name);
	t = now_sec();
	if ((rc = eng_warmup(sv->eng)) < 0) {
		load_failed(sv, "warm-up forward failed for '%s'", cfg->model);
		goto out;
	}
	s->warmup_s = now_sec() - t;
	{
		struct eng_stats st;
		eng_get_stats(sv->eng, &st);
		log_info("engine warm: KV cache %d blocks, max_model_len %d, "
			 "max_num_seqs %d, max_num_batched_tokens %d, max_queue %d; warm-up %.3f s",
			 st.kv_blocks_total, eng_max_model_len(sv->eng), cfg->max_num_seqs, cfg->max_num_batched_tokens,
			 cfg->max_queue, s->warmup_s);
	}
	s->tok = sv->tok;
	s->eng = sv->eng;
	s->lim.vocab_size = tok_vocab_size(sv->tok);
	if (sv->model->cfg.vocab_size > 0)
		s->lim.vocab_size = MIN(s->lim.vocab_size, sv->model->cfg.vocab_size);
	/* The engine's limit: --max-model-len, or what the config and the KV cache allow. */
	s->lim.max_model_len = eng_max_model_len(sv->eng);
	s->lim.bos_id = tok_bos_id(sv->tok);
	s->lim.eot_id = tok_id(sv->tok, "<end_of_turn>");
	/* an idle engine's admission bound (eng_submit: free slots + max_queue) */
	s->lim.max_choices = MIN(cfg->max_num_seqs, cfg->max_num_batched_tokens) + cfg->max_queue;
	atomic_store(&s->published, 1);
	int expect = SRV_WARMING;
	if (atomic_compare_exchange_strong(&s->state, &expect, SRV_READY)) {
		s->t_ready = now_sec();
		log_info("ready in %.2f s since start", s->t_ready - s->t_start);
	}
	http_srv_wake(s);
out:
	atomic_store(&sv->loader_done, 1);
	return NULL;
}

static const char *default_name(const char *model, char *buf, size_t cap)
{
	size_t n = strlen(model);
	while (n > 1 && model[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && model[b - 1] != '/')
		b--;
	snprintf(buf, cap, "%.*s", (int)(n - b), model + b);
	return buf;
}

int cmd_serve(int argc, char **argv)
{
	struct serve *sv = calloc(1, sizeof(*sv));
	struct auth *auth = NULL;
	char err[256];
	int rc, code = 1;

	if (!sv)
		return 1;
	rc = cfg_parse(argc, argv, &sv->cfg, err, sizeof(err));
	if (rc == 1) {
		free(sv);
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "gemma-run serve: %s\n", err);
		free(sv);
		return 2;
	}
	struct srv_config *cfg = &sv->cfg;
	log_setup(cfg->log_json ? stdout : stderr, cfg->log_json, cfg->log_level);
	if (!cfg->model || !*cfg->model) {
		log_err(ST_EINVAL, "serve: --model (or MODEL) is required");
		free(sv);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	ld_global_init();
	const char *name = cfg->served_model_name ? cfg->served_model_name
						  : default_name(cfg->model, sv->name, sizeof(sv->name));
	if (auth_create(cfg, &auth) < 0) {
		log_err(ST_EINVAL, "serve: authentication setup failed");
		code = 2;
		goto out_free;
	}
	if (http_srv_init(&sv->srv, cfg, name) < 0)
		goto out_srv;
	sv->srv.auth = auth;
	met_init(name);
	if (pthread_create(&sv->loader, NULL, loader_main, sv) != 0) {
		log_err(ST_ENOMEM, "cannot start the loader thread");
		goto out_srv;
	}
	code = http_srv_run(&sv->srv);
	if (!atomic_load(&sv->loader_done)) {
		/* a load cannot be interrupted; the process exits under it */
		log_info("exiting during the load");
		fflush(NULL);
		return code;
	}
	pthread_join(sv->loader, NULL);
	eng_destroy(sv->eng);		/* delivers final events for what is left */
	http_drain_ready(&sv->srv);
out_srv:
	http_srv_release(&sv->srv);
	tok_destroy(sv->tok);
	ld_model_destroy(sv->model);
	if (sv->have_be)
		be_destroy(&sv->be);
	auth_destroy(auth);
	met_release();
out_free:
	ld_global_release();
	free(sv);
	return code;
}
