/*
 * engine_util.h - what the engine tests (test_engine.c: scheduling;
 * test_engine_sampling.c: sampling, stop rules, logprobs) share: the CPU
 * backend with the golden model tests/golden/gemma2-tiny-a and its cases,
 * a per-request result collected by the output callback (struct res, with
 * a gate that holds the engine thread after n tokens), waits with a
 * generous deadline (a hang fails, no timing assertions), engine creation.
 * Tests only; everything static.
 */
#ifndef GR_TEST_ENGINE_UTIL_H
#define GR_TEST_ENGINE_UTIL_H

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"
#include "engine/engine.h"
#include "tokenizer/tokenizer.h"
#include "tests/harness.h"

#define GOLDEN "tests/golden/gemma2-tiny-a"
#define MAX_CASES 8
#define N_GREEDY 16
#define WAIT_S 300.0

struct res {
	int tokens[2048];
	int n;
	int n_events;
	int final;
	enum eng_finish finish;
	int n_generated;
	int n_prompt, n_cached;
	char text[8192];
	size_t text_len;
	float lp[2048];
	int top0[2048];
	int n_top;
	int events_after_final;
	double t_queued, t_first, t_done;
	/* gate: the callback blocks the engine thread once n >= gate_at until released */
	int gate_at, released;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static struct be be;
static struct ld_opts lo;
static struct ld_model *model;
static int n_cases;
static int case_ids[MAX_CASES][128], case_len[MAX_CASES];
static int case_greedy[MAX_CASES][N_GREEDY];

static inline void on_out(const struct eng_output *o)
{
	struct res *r = o->user;
	pthread_mutex_lock(&mu);
	if (r->final)
		r->events_after_final++;
	for (int i = 0; i < o->n_tokens && r->n < 2048; i++) {
		if (o->token_logprobs)
			r->lp[r->n] = o->token_logprobs[i];
		if (o->top_logprobs && o->n_top > 0)
			r->top0[r->n] = o->top_logprobs[(size_t)i * o->n_top].token;
		r->tokens[r->n++] = o->tokens[i];
	}
	r->n_top = o->n_top;
	if (o->text_len && r->text_len + o->text_len < sizeof(r->text)) {
		memcpy(r->text + r->text_len, o->text, o->text_len);
		r->text_len += o->text_len;
		r->text[r->text_len] = '\0';
	}
	r->n_events++;
	if (o->final) {
		r->final = 1;
		r->finish = o->finish;
		r->n_generated = o->n_generated;
		r->n_prompt = o->n_prompt_tokens;
		r->n_cached = o->n_cached_tokens;
		r->t_queued = o->t_queued;
		r->t_first = o->t_first_token;
		r->t_done = o->t_done;
	}
	pthread_cond_broadcast(&cv);
	while (r->gate_at > 0 && r->n >= r->gate_at && !r->released && !r->final)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static inline void release(struct res *r)
{
	pthread_mutex_lock(&mu);
	r->released = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Waits until r is final (1) or the deadline passes (0). */
static inline int wait_final(struct res *r)
{
	struct timespec ts;
	int ok;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)WAIT_S;
	pthread_mutex_lock(&mu);
	while (!r->final)
		if (pthread_cond_timedwait(&cv, &mu, &ts) != 0)
			break;
	ok = r->final;
	pthread_mutex_unlock(&mu);
	return ok;
}

/* Waits until r has at least n tokens (or is final). */
static inline int wait_tokens(struct res *r, int n)
{
	struct timespec ts;
	int ok;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)WAIT_S;
	pthread_mutex_lock(&mu);
	while (r->n < n && !r->final)
		if (pthread_cond_timedwait(&cv, &mu, &ts) != 0)
			break;
	ok = r->n >= n;
	pthread_mutex_unlock(&mu);
	return ok;
}

static inline int load_cases(void)
{
	char *buf;
	size_t len;
	cJSON *root, *c;
	if (read_file(GOLDEN "/cases.json", 64u << 20, &buf, &len) < 0)
		return -1;
	root = cJSON_Parse(buf);
	free(buf);
	if (!root)
		return -1;
	cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "cases")) {
		const cJSON *v;
		int n = 0;
		if (n_cases >= MAX_CASES)
			break;
		cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "input_ids"))
			if (n < 128)
				case_ids[n_cases][n++] = v->valueint;
		case_len[n_cases] = n;
		n = 0;
		cJSON_ArrayForEach(v, cJSON_GetObjectItem(c, "greedy_new_tokens"))
			if (n < N_GREEDY)
				case_greedy[n_cases][n++] = v->valueint;
		n_cases++;
	}
	cJSON_Delete(root);
	return n_cases > 0 ? 0 : -1;
}

static enum eng_sampler sampler;	/* --sampler (both names: the backend's sample op) */
static int no_prefix_cache;		/* mk_engine: --no-enable-prefix-caching */

static inline struct engine *mk_engine(int max_seqs, int max_batched, size_t kv_blocks,
					int max_queue)
{
	struct eng_opts o;
	struct engine *e = NULL;
	eng_opts_default(&o);
	o.sampler = sampler;
	o.max_num_seqs = max_seqs;
	o.max_num_batched_tokens = max_batched;
	o.max_queue = max_queue;
	o.block_size = 16;
	o.kv_check = 1;
	o.enable_prefix_caching = !no_prefix_cache;		/* kv_check after every step: check_idle asserts no failure */
	if (kv_blocks)
		o.kv_bytes = kv_blocks * kv_bytes_per_block(&model->cfg, 16, be.ops->kv_dtype);
	struct g2_weights w;
	ld_g2_weights(model, &w);
	if (eng_create(&o, &w, NULL, on_out, &e) < 0)
		return NULL;
	return e;
}

static inline void greedy_params(struct eng_sampling *s, int max_tokens)
{
	eng_sampling_default(s);
	s->temperature = 0;
	s->max_tokens = max_tokens;
}

static inline void check_idle(struct engine *e, const char *what)
{
	struct eng_stats st;
	eng_get_stats(e, &st);
	/* no block held: each one free (a cached prefix, evictable, counts as free) */
	CHECK(st.kv_blocks_free == st.kv_blocks_total && st.kv_blocks_evictable <= st.kv_blocks_free,
	      "%s: %d free (%d evictable) of %d blocks", what, st.kv_blocks_free,
	      st.kv_blocks_evictable, st.kv_blocks_total);
	CHECK(st.kv_check_failures == 0, "%s: %llu steps broke the KV cache invariant", what,
	      (unsigned long long)st.kv_check_failures);
	CHECK(st.running == 0 && st.waiting == 0, "%s: running %d waiting %d", what, st.running,
	      st.waiting);
}

/* Creates the CPU backend, loads the golden model and its cases (FAIL line on error). */
static inline int eng_test_setup(void)
{
	struct be_opts bo = { .n_threads = 2 };
	ld_opts_default(&lo);
	log_setup(stderr, 0, LOG_WARN);
	if (be_create("cpu", &bo, &be) < 0 || ld_load(GOLDEN, &lo, &be, NULL, &model) < 0 ||
	    load_cases() < 0) {
		printf("FAIL setup: cannot load %s\n", GOLDEN);
		return -1;
	}
	return 0;
}

static inline void eng_test_teardown(void)
{
	ld_model_destroy(model);
	be_destroy(&be);
}

#endif
