/*
 * cmd_serve.c - `gemma-run serve`: the process of the HTTP service.
 *
 * Order matters (Cloud Run): parse flags, set up auth, bind $PORT, then
 * start the loader thread and serve at once; /health reports progress.
 * The loader thread runs the shared start-up (cli_startup.c: backend,
 * ld_load, tokenizer, memory plan, engine; this file logs and times each
 * step; the memory plan and --max-model-len are first checked from the
 * headers, before the weights stream: serve_check
 * step) and one warm-up step, then publishes them and flips the state to
 * READY. A failed load logs one clear line, /health answers 500 briefly,
 * and the process exits 1. SIGTERM/SIGINT drain (http_server.c), exit 0.
 * Threads: main = libevent loop; loader (this file); engine (engine.c);
 * the loader's own workers; the JWKS fetcher when google-id-token is on.
 */
#include "service/cli/cmd_serve.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "engine/engine.h"
#include "loader/loader.h"
#include "service/auth/auth.h"
#include "service/cli/cli_startup.h"
#include "service/config.h"
#include "service/http/http.h"
#include "service/http/http_gen.h"
#include "service/http/http_output.h"
#include "service/http/http_server.h"
#include "service/http/metrics.h"
#include "tokenizer/tokenizer.h"

struct serve {
	struct srv_config cfg;
	struct srv srv;
	struct cli_model cm;		/* backend, model, tokenizer (loader thread) */
	struct engine *eng;
	double t_step;			/* start of the current start-up step */
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

/* cli_model_open's progress: the log lines and timings of /health and /metrics. */
static void loader_step(void *user, enum cli_step done, const struct cli_model *cm)
{
	struct serve *sv = user;
	struct srv *s = &sv->srv;
	double t;

	switch (done) {
	case CLI_STEP_BACKEND:
		log_info("loading %s on %s", sv->cfg.model, cm->be.ops->name);
		break;
	case CLI_STEP_LOAD: {
		uint64_t bytes = atomic_load(&s->progress.bytes_done);
		char f[512];
		t = now_sec() - sv->t_step;	/* since before the backend, as always */
		int o = snprintf(f, sizeof(f), "\"bytes\":%llu,\"seconds\":%.3f,\"gbps\":%.3f,\"stages\":{",
				 (unsigned long long)bytes, t, t > 0 ? (double)bytes / t / 1e9 : 0);
		for (int i = 0; i < LD_N_STAGES && o > 0 && (size_t)o < sizeof(f); i++)
			o += snprintf(f + o, sizeof(f) - (size_t)o, "%s\"%s\":%.3f", i ? "," : "",
				      ld_stage_name[i], s->progress.stage_s[i]);
		s->weights_verified = cm->model->verified ? cm->model->verified : LD_VERIFIED_SIZES;
		if (o > 0 && (size_t)o < sizeof(f) - 2)
			o += snprintf(f + o, sizeof(f) - (size_t)o, "},\"weights_verified\":\"%s\"",
				      s->weights_verified);
		log_fields(LOG_INFO, f, "model loaded: %.2f GB in %.2f s (%.2f GB/s)", (double)bytes / 1e9, t,
			   t > 0 ? (double)bytes / t / 1e9 : 0);
		sv->t_step = now_sec();
		break;
	}
	case CLI_STEP_TOKENIZER:
		s->tokenizer_s = now_sec() - sv->t_step;
		atomic_store(&s->state, SRV_WARMING);
		break;
	}
}

/*
 * ld_opts.check: after the loader's metadata stage (config and tensor sizes
 * known, no weight byte read), the memory plan from the headers, which also
 * checks --max-model-len against max_position_embeddings. A bad flag or an
 * impossible plan fails here, in milliseconds, not after the whole load.
 */
struct serve_check {
	struct serve *sv;
	const struct eng_opts *eo;
};

static int serve_check(void *user, const struct g2_config *cfg, size_t arena_bytes, char *err, size_t errlen)
{
	struct serve_check *c = user;
	struct g2_weights w;
	struct mem_plan plan;
	char perr[512] = "";
	int rc;

	memset(&w, 0, sizeof(w));
	w.be = &c->sv->cm.be;
	w.cfg = *cfg;
	w.bytes = arena_bytes;	/* no find: nothing is loaded yet */
	if ((rc = eng_plan(c->eo, &w, &plan, perr, sizeof(perr))) < 0) {
		snprintf(err, errlen, "memory plan (before the weights stream): %s", perr);
		return rc;
	}
	log_info("memory plan checked before the weights stream: KV cache %d blocks, max_model_len %d",
		 plan.kv_blocks, plan.max_model_len);
	return 0;
}

static void *loader_main(void *arg)
{
	struct serve *sv = arg;
	struct srv *s = &sv->srv;
	const struct srv_config *cfg = &sv->cfg;
	struct cli_model_opts mo;
	struct eng_opts eo;
	char err[768];
	double t;

	cli_model_opts_default(&mo);
	mo.backend = cfg->backend;
	mo.threads = cfg->threads;
	mo.uri = cfg->model;
	if (cfg->loader_workers > 0)
		mo.lo.workers = cfg->loader_workers;
	if (cfg->loader_chunk_mb > 0)
		mo.lo.chunk_bytes = (size_t)cfg->loader_chunk_mb << 20;
	if (cfg->loader_pinned_mb > 0)
		mo.lo.pinned_bytes = (size_t)cfg->loader_pinned_mb << 20;
	if (cfg->loader_retry_deadline_s > 0)
		mo.lo.retry_deadline_s = cfg->loader_retry_deadline_s;
	mo.lo.ca_bundle = cfg->ca_bundle;
	mo.lo.gcs_anonymous = cfg->gcs_anonymous;
	mo.lo.allow_unused_tensors = cfg->allow_unused_tensors;
	mo.progress = &s->progress;
	mo.tokenizer = 1;
	mo.on_step = loader_step;
	mo.user = sv;

	eng_opts_default(&eo);
	eo.max_num_seqs = cfg->max_num_seqs;
	eo.max_num_batched_tokens = cfg->max_num_batched_tokens;
	eo.max_model_len = cfg->max_model_len;
	eo.max_queue = cfg->max_queue;
	eo.enable_prefix_caching = cfg->enable_prefix_caching;
	eo.gpu_memory_utilization = cfg->gpu_memory_utilization;
	eng_sampler_parse(cfg->sampler, &eo.sampler);	/* checked by cfg_parse */
	struct serve_check chk = { sv, &eo };
	mo.lo.check = serve_check;
	mo.lo.check_user = &chk;

	sv->t_step = now_sec();
	if (cli_model_open(&mo, &sv->cm, err, sizeof(err)) < 0) {
		load_failed(sv, "%s", err);
		goto out;
	}
	if (cli_model_engine(&sv->cm, &eo, http_on_output, &sv->eng, err, sizeof(err)) < 0) {
		load_failed(sv, "%s", err);
		goto out;
	}
	log_mem_plan(eng_mem_plan(sv->eng), sv->cm.be.ops->name);
	t = now_sec();
	if (eng_warmup(sv->eng) < 0) {
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
	s->tok = sv->cm.tok;
	s->eng = sv->eng;
	s->lim.vocab_size = tok_vocab_size(sv->cm.tok);
	if (sv->cm.model->cfg.vocab_size > 0)
		s->lim.vocab_size = MIN(s->lim.vocab_size, sv->cm.model->cfg.vocab_size);
	/* The engine's limit: --max-model-len, or what the config and the KV cache allow. */
	s->lim.max_model_len = eng_max_model_len(sv->eng);
	s->lim.bos_id = tok_bos_id(sv->cm.tok);
	s->lim.eot_id = tok_id(sv->cm.tok, "<end_of_turn>");
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
	cli_model_close(&sv->cm);
	auth_destroy(auth);
	met_release();
out_free:
	ld_global_release();
	free(sv);
	return code;
}
