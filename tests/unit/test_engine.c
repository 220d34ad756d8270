/*
 * test_engine.c - the engine thread over the CPU backend and the golden
 * model tests/golden/gemma2-tiny-a (no tokenizer: tok == NULL, text empty):
 *   - greedy continuation of every golden case equals greedy_new_tokens,
 *     alone and all submitted together, with chunked prefill (tiny
 *     max_num_batched_tokens) and with a KV cache so small that preemption
 *     happens (stats.preemptions > 0, tokens unchanged);
 *   - seeded random sampling gives the same tokens alone and in a batch;
 *   - stop ids, min_tokens, max_tokens, logprobs through the engine;
 *   - cancel (running and waiting) gives ABORT and frees every block;
 *   - a full waiting queue answers ST_EFULL; bad input ST_EINVAL naming
 *     the parameter.
 * With the real tokenizer (a `mkmodel --preset tiny` model, made in a temp
 * directory when $BUILD/mkmodel exists): stop strings across token
 * boundaries are cut and never emitted, the rest of the text is unchanged.
 * No timing assertions; waits have a generous deadline so a hang fails.
 */
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
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"
#include "service/engine.h"
#include "service/tokenizer.h"
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

static void on_out(const struct eng_output *o)
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
		r->t_queued = o->t_queued;
		r->t_first = o->t_first_token;
		r->t_done = o->t_done;
	}
	pthread_cond_broadcast(&cv);
	while (r->gate_at > 0 && r->n >= r->gate_at && !r->released && !r->final)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void release(struct res *r)
{
	pthread_mutex_lock(&mu);
	r->released = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Waits until r is final (1) or the deadline passes (0). */
static int wait_final(struct res *r)
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
static int wait_tokens(struct res *r, int n)
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

static int load_cases(void)
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

static int sample_threads;	/* 0: the engine's default */
static enum eng_sampler sampler;	/* ENG_SAMPLER_AUTO: host on the CPU backend */

static struct engine *mk_engine(int max_seqs, int max_batched, size_t kv_blocks, int max_queue)
{
	struct eng_opts o;
	struct engine *e = NULL;
	eng_opts_default(&o);
	o.sample_threads = sample_threads;
	o.sampler = sampler;
	o.max_num_seqs = max_seqs;
	o.max_num_batched_tokens = max_batched;
	o.max_queue = max_queue;
	o.block_size = 16;
	if (kv_blocks)
		o.kv_bytes = kv_blocks * kv_bytes_per_block(&model->cfg, 16, be.ops->kv_dtype);
	if (eng_create(&o, model, NULL, on_out, &e) < 0)
		return NULL;
	return e;
}

static void greedy_params(struct eng_sampling *s, int max_tokens)
{
	eng_sampling_default(s);
	s->temperature = 0;
	s->max_tokens = max_tokens;
}

/* Submits every golden case at once (greedy, 16 tokens) and checks each. */
static void run_all_cases(struct engine *e, const char *what)
{
	static struct res r[MAX_CASES];
	struct eng_sampling s;
	char err[160];
	greedy_params(&s, N_GREEDY);
	memset(r, 0, sizeof(r));
	/* hold the engine after case 0's first token until every case is queued,
	 * so that they all run together whatever the machine's speed */
	r[0].gate_at = 1;
	for (int c = 0; c < n_cases; c++) {
		uint64_t id;
		int rc = eng_submit(e, case_ids[c], case_len[c], &s, &r[c], &id, err, sizeof(err));
		CHECK(rc == 0, "%s: submit case %d: %d %s", what, c, rc, err);
		if (c == 0)
			CHECK(wait_tokens(&r[0], 1), "%s: no first token", what);
	}
	release(&r[0]);
	for (int c = 0; c < n_cases; c++) {
		CHECK(wait_final(&r[c]), "%s: case %d never finished", what, c);
		CHECK(r[c].finish == ENG_FINISH_LENGTH, "%s: case %d finish %d", what, c, r[c].finish);
		CHECK(r[c].n == N_GREEDY && r[c].n_generated == N_GREEDY, "%s: case %d: %d tokens",
		      what, c, r[c].n);
		CHECK(memcmp(r[c].tokens, case_greedy[c], sizeof(case_greedy[c])) == 0,
		      "%s: case %d tokens differ from greedy_new_tokens (first %d vs %d)", what, c,
		      r[c].tokens[0], case_greedy[c][0]);
		CHECK(r[c].events_after_final == 0, "%s: events after final", what);
		CHECK(r[c].t_queued > 0 && r[c].t_first >= r[c].t_queued &&
		      r[c].t_done >= r[c].t_first, "%s: timestamps", what);
	}
}

static void check_idle(struct engine *e, const char *what)
{
	struct eng_stats st;
	eng_get_stats(e, &st);
	CHECK(st.kv_blocks_free == st.kv_blocks_total, "%s: %d of %d blocks free", what,
	      st.kv_blocks_free, st.kv_blocks_total);
	CHECK(st.running == 0 && st.waiting == 0, "%s: running %d waiting %d", what, st.running,
	      st.waiting);
}

static void test_greedy_golden_each_alone(void)
{
	struct engine *e = mk_engine(4, 256, 0, 16);
	struct eng_sampling s;
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	CHECK(eng_warmup(e) == 0, "warm-up failed");
	{
		struct eng_stats st;
		eng_get_stats(e, &st);
		CHECK(st.steps >= 1 && st.prompt_tokens == 0 && st.generation_tokens == 0,
		      "warm-up: steps %llu, prompt %llu, generation %llu (want >= 1, 0, 0)",
		      (unsigned long long)st.steps, (unsigned long long)st.prompt_tokens,
		      (unsigned long long)st.generation_tokens);
	}
	greedy_params(&s, N_GREEDY);
	for (int c = 0; c < n_cases; c++) {
		struct res r;
		uint64_t id;
		memset(&r, 0, sizeof(r));
		CHECK(eng_submit(e, case_ids[c], case_len[c], &s, &r, &id, NULL, 0) == 0, "submit");
		CHECK(wait_final(&r), "case %d never finished", c);
		CHECK(r.n == N_GREEDY && memcmp(r.tokens, case_greedy[c], sizeof(case_greedy[c])) == 0,
		      "case %d: tokens differ from greedy_new_tokens", c);
		CHECK(r.n_events == N_GREEDY, "case %d: %d events for %d tokens", c, r.n_events, r.n);
	}
	check_idle(e, "alone");
	{
		struct eng_stats st;
		uint64_t want_prompt = 0;
		eng_get_stats(e, &st);
		for (int c = 0; c < n_cases; c++)
			want_prompt += (uint64_t)case_len[c];
		CHECK(st.prompt_tokens == want_prompt &&
		      st.generation_tokens == (uint64_t)n_cases * N_GREEDY,
		      "counters: prompt %llu (want %llu), generation %llu (want %d)",
		      (unsigned long long)st.prompt_tokens, (unsigned long long)want_prompt,
		      (unsigned long long)st.generation_tokens, n_cases * N_GREEDY);
		CHECK(st.kv_usage < 1e-12, "kv_usage %g when idle", st.kv_usage);
	}
	eng_destroy(e);
}

static void test_greedy_golden_batched(void)
{
	struct engine *e = mk_engine(8, 512, 0, 16);
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	run_all_cases(e, "batched");
	check_idle(e, "batched");
	eng_destroy(e);
}

static void test_chunked_prefill(void)
{
	/* 7-token budget: the 64-token prompt takes 10 steps, mixed with decodes */
	struct engine *e = mk_engine(4, 7, 0, 16);
	struct eng_stats st;
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	run_all_cases(e, "chunked");
	eng_get_stats(e, &st);
	CHECK(st.steps >= 20, "only %llu steps with a 7-token budget", (unsigned long long)st.steps);
	check_idle(e, "chunked");
	eng_destroy(e);
}

static void test_preemption(void)
{
	/* 6 blocks of 16 = 96 positions; the 4 cases need 1+2+4+5 blocks at the end */
	struct engine *e = mk_engine(4, 64, 6, 16);
	struct eng_stats st;
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	eng_get_stats(e, &st);
	CHECK(st.kv_blocks_total == 6, "%d blocks, want 6", st.kv_blocks_total);
	run_all_cases(e, "preempt");
	eng_get_stats(e, &st);
	CHECK(st.preemptions > 0, "no preemption happened");
	printf("  preemptions: %llu, steps %llu\n", (unsigned long long)st.preemptions,
	       (unsigned long long)st.steps);
	check_idle(e, "preempt");
	eng_destroy(e);
}

/*
 * The admission watermark: with 6 blocks (watermark 1), A (20-token prompt,
 * 40 tokens out: grows to 4 blocks) runs; B's 64-token prompt needs exactly
 * the 4 free blocks. Without the watermark B would be admitted and then
 * preempted when A needs its third block; with it B waits for A.
 */
static void test_admission_watermark(void)
{
	struct engine *e = mk_engine(4, 128, 6, 16);
	struct eng_sampling s;
	struct eng_stats st;
	static struct res a, b;
	int pa[20], pb[64];
	uint64_t id;

	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	for (int i = 0; i < 64; i++)
		pb[i] = 2 + (i * 7) % 300;
	for (int i = 0; i < 20; i++)
		pa[i] = 2 + (i * 11) % 300;
	greedy_params(&s, 40);
	s.ignore_eos = 1;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.gate_at = 1;
	CHECK(eng_submit(e, pa, 20, &s, &a, &id, NULL, 0) == 0, "submit A");
	CHECK(wait_tokens(&a, 1), "A: no first token");
	greedy_params(&s, 8);
	s.ignore_eos = 1;
	CHECK(eng_submit(e, pb, 64, &s, &b, &id, NULL, 0) == 0, "submit B");
	release(&a);
	CHECK(wait_final(&a) && wait_final(&b), "A or B never finished");
	CHECK(a.n == 40 && b.n == 8, "A %d tokens, B %d", a.n, b.n);
	eng_get_stats(e, &st);
	CHECK(st.preemptions == 0, "%llu preemptions: B was admitted into A's last free blocks",
	      (unsigned long long)st.preemptions);
	CHECK(b.t_first >= a.t_done, "B started before A finished (B first %.6f, A done %.6f)",
	      b.t_first, a.t_done);
	check_idle(e, "watermark");
	eng_destroy(e);
}

static void test_seeded_sampling_batch_invariant(void)
{
	struct engine *e1, *e;
	struct eng_sampling s, g;
	struct res alone, together, others[MAX_CASES], reseed;
	uint64_t id;
	/* alone on a one-thread sampler, together on a 4-thread one */
	sample_threads = 1;
	e1 = mk_engine(8, 512, 0, 16);
	sample_threads = 4;
	e = mk_engine(8, 512, 0, 16);
	sample_threads = 0;
	CHECK(e != NULL && e1 != NULL, "eng_create failed");
	if (!e || !e1) {
		eng_destroy(e);
		eng_destroy(e1);
		return;
	}
	eng_sampling_default(&s);
	s.temperature = 1.5;
	s.top_p = 0.95;
	s.top_k = 50;
	s.has_seed = 1;
	s.seed = 1234;
	s.max_tokens = 24;
	s.repetition_penalty = 1.1;
	memset(&alone, 0, sizeof(alone));
	eng_submit(e1, case_ids[1], case_len[1], &s, &alone, &id, NULL, 0);
	CHECK(wait_final(&alone) && alone.n == 24, "alone: %d tokens", alone.n);
	eng_destroy(e1);

	greedy_params(&g, 20);
	memset(&together, 0, sizeof(together));
	memset(others, 0, sizeof(others));
	others[0].gate_at = 1;
	for (int c = 0; c < n_cases; c++) {
		eng_submit(e, case_ids[c], case_len[c], &g, &others[c], &id, NULL, 0);
		if (c == 0)
			wait_tokens(&others[0], 1);
	}
	eng_submit(e, case_ids[1], case_len[1], &s, &together, &id, NULL, 0);
	release(&others[0]);
	CHECK(wait_final(&together), "together never finished");
	CHECK(memcmp(alone.tokens, together.tokens, sizeof(int) * 24) == 0,
	      "seeded tokens depend on the batch");
	for (int c = 0; c < n_cases; c++)
		wait_final(&others[c]);
	/* a different seed gives a different continuation */
	s.seed = 99;
	memset(&reseed, 0, sizeof(reseed));
	eng_submit(e, case_ids[1], case_len[1], &s, &reseed, &id, NULL, 0);
	CHECK(wait_final(&reseed), "reseed never finished");
	CHECK(memcmp(alone.tokens, reseed.tokens, sizeof(int) * 24) != 0,
	      "seed 99 gave the same 24 tokens as seed 1234");
	check_idle(e, "seeded");
	eng_destroy(e);
}

/*
 * The device sampler (be_ops.sample; on the CPU backend the reference op)
 * against the host sampler: every golden case at once, each with its own
 * mix of greedy / temperature / top_k / top_p / min_p / penalties /
 * logprobs and a seed: the same tokens, logprobs and top ids.
 */
static void run_mixed(enum eng_sampler which, struct res *r)
{
	struct engine *e;
	uint64_t id;

	sampler = which;
	e = mk_engine(8, 64, 0, 16);
	sampler = ENG_SAMPLER_AUTO;
	CHECK(e != NULL, "eng_create (sampler %d) failed", which);
	if (!e)
		return;
	memset(r, 0, sizeof(*r) * MAX_CASES);
	r[0].gate_at = 1;
	for (int c = 0; c < n_cases; c++) {
		struct eng_sampling s;
		char err[160];
		eng_sampling_default(&s);
		s.max_tokens = 20;
		s.has_seed = 1;
		s.seed = 500 + (uint64_t)c;
		s.temperature = (c % 4 == 0) ? 0 : 0.6 + 0.3 * c;
		s.top_k = (c % 3 == 1) ? 20 : 0;
		s.top_p = (c % 2 == 1) ? 0.9 : 1.0;
		s.min_p = (c == 2) ? 0.05 : 0;
		s.repetition_penalty = (c % 3 == 2) ? 1.3 : 1.0;
		s.frequency_penalty = (c == 3 || c == 5) ? 0.7 : 0;
		s.presence_penalty = (c == 6) ? 0.5 : 0;
		s.logprobs = (c % 2 == 0) ? 3 : -1;
		CHECK(eng_submit(e, case_ids[c], case_len[c], &s, &r[c], &id, err, sizeof(err)) == 0,
		      "submit case %d: %s", c, err);
		if (c == 0)
			wait_tokens(&r[0], 1);
	}
	release(&r[0]);
	for (int c = 0; c < n_cases; c++)
		CHECK(wait_final(&r[c]), "sampler %d: case %d never finished", which, c);
	check_idle(e, "mixed sampling");
	eng_destroy(e);
}

static void test_device_sampler_matches_host(void)
{
	static struct res host[MAX_CASES], dev[MAX_CASES];

	run_mixed(ENG_SAMPLER_HOST, host);
	run_mixed(ENG_SAMPLER_DEVICE, dev);
	for (int c = 0; c < n_cases; c++) {
		CHECK(host[c].n == 20 && dev[c].n == host[c].n, "case %d: %d vs %d tokens", c,
		      host[c].n, dev[c].n);
		CHECK(memcmp(host[c].tokens, dev[c].tokens, sizeof(int) * (size_t)host[c].n) == 0,
		      "case %d: the device sampler chose other tokens", c);
		for (int i = 0; c % 2 == 0 && i < host[c].n; i++) {
			CHECK(fabsf(host[c].lp[i] - dev[c].lp[i]) <= 1e-5f && host[c].lp[i] <= 0,
			      "case %d token %d: logprob host %g device %g", c, i, host[c].lp[i],
			      dev[c].lp[i]);
			CHECK(host[c].top0[i] == dev[c].top0[i], "case %d token %d: top id %d vs %d", c,
			      i, host[c].top0[i], dev[c].top0[i]);
		}
	}
}

static void test_stop_ids_min_max_tokens_logprobs(void)
{
	struct engine *e = mk_engine(4, 256, 0, 16);
	struct eng_sampling s;
	struct res r;
	uint64_t id;
	const int *gt = case_greedy[2];	/* 351 355 355 ... 132 132 215 */
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	/* stop id 132 (first generated at index 8): ends there, token counted */
	greedy_params(&s, N_GREEDY);
	s.n_stop_ids = 1;
	s.stop_ids[0] = 132;
	CHECK(gt[8] == 132 && gt[7] != 132, "golden data changed");
	memset(&r, 0, sizeof(r));
	eng_submit(e, case_ids[2], case_len[2], &s, &r, &id, NULL, 0);
	CHECK(wait_final(&r), "stop id: never finished");
	CHECK(r.finish == ENG_FINISH_STOP && r.n == 9 && r.tokens[8] == 132,
	      "stop id: finish %d after %d tokens", r.finish, r.n);
	/* stop on 355 (index 1) with min_tokens 6: masked until then, so the
	 * 2nd token is no longer 355; it still ends at a 355 at or after token 6 */
	s.stop_ids[0] = 355;
	s.min_tokens = 6;
	s.max_tokens = 40;
	memset(&r, 0, sizeof(r));
	eng_submit(e, case_ids[2], case_len[2], &s, &r, &id, NULL, 0);
	CHECK(wait_final(&r), "min_tokens: never finished");
	for (int i = 0; i < r.n && i < 5; i++)
		CHECK(r.tokens[i] != 355, "token %d is the masked stop id", i);
	CHECK(r.n >= 6, "min_tokens: only %d tokens", r.n);
	CHECK(r.finish == ENG_FINISH_LENGTH || (r.finish == ENG_FINISH_STOP &&
	      r.tokens[r.n - 1] == 355), "min_tokens: finish %d last %d", r.finish,
	      r.tokens[r.n - 1]);
	/* max_tokens 5: length after exactly 5, equal to the greedy prefix */
	greedy_params(&s, 5);
	s.logprobs = 3;
	memset(&r, 0, sizeof(r));
	eng_submit(e, case_ids[0], case_len[0], &s, &r, &id, NULL, 0);
	CHECK(wait_final(&r), "max_tokens: never finished");
	CHECK(r.finish == ENG_FINISH_LENGTH && r.n == 5 && r.n_generated == 5,
	      "max_tokens: finish %d n %d", r.finish, r.n);
	CHECK(memcmp(r.tokens, case_greedy[0], 5 * sizeof(int)) == 0, "max_tokens: tokens");
	CHECK(r.n_top == 3, "n_top %d", r.n_top);
	for (int i = 0; i < r.n; i++) {
		CHECK(r.top0[i] == r.tokens[i], "greedy token %d is not the top logprob", i);
		CHECK(r.lp[i] < 0 && r.lp[i] > -20, "logprob %d = %g", i, r.lp[i]);
	}
	check_idle(e, "stop ids");
	eng_destroy(e);
}

static void test_cancel_frees_blocks(void)
{
	struct engine *e = mk_engine(1, 256, 0, 16);
	struct eng_sampling s;
	struct res run, wait1;
	uint64_t id_run, id_wait;
	struct eng_stats st;
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	greedy_params(&s, 4000);
	memset(&run, 0, sizeof(run));
	memset(&wait1, 0, sizeof(wait1));
	run.gate_at = 3;	/* the engine thread stops in our callback after 3 tokens */
	CHECK(eng_submit(e, case_ids[3], case_len[3], &s, &run, &id_run, NULL, 0) == 0, "submit");
	CHECK(wait_tokens(&run, 3), "no tokens");
	/* max_num_seqs 1: this one waits behind the running one */
	CHECK(eng_submit(e, case_ids[0], case_len[0], &s, &wait1, &id_wait, NULL, 0) == 0, "submit");
	eng_get_stats(e, &st);
	CHECK(st.running == 1 && st.waiting == 1 && st.kv_blocks_free < st.kv_blocks_total,
	      "running %d waiting %d free %d/%d", st.running, st.waiting, st.kv_blocks_free,
	      st.kv_blocks_total);
	eng_cancel(e, id_wait);
	eng_cancel(e, id_run);
	release(&run);
	CHECK(wait_final(&wait1), "waiting request not aborted");
	CHECK(wait1.finish == ENG_FINISH_ABORT && wait1.n == 0, "waiting: finish %d, %d tokens",
	      wait1.finish, wait1.n);
	CHECK(wait_final(&run), "running request not aborted");
	CHECK(run.finish == ENG_FINISH_ABORT, "running: finish %d", run.finish);
	CHECK(run.n == 3 && run.n_generated == 3, "running: %d tokens after cancel", run.n);
	check_idle(e, "cancel");	/* blocks are free once the final event is out */
	eng_cancel(e, id_run);		/* unknown ids now: no effect */
	eng_cancel(e, 987654);
	eng_destroy(e);
}

static void test_queue_full(void)
{
	struct engine *e = mk_engine(1, 256, 0, 2);
	struct eng_sampling s;
	struct res run, q1, q2, q3;
	uint64_t id_run, id1, id2, id3;
	char err[160];
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	greedy_params(&s, 4000);
	memset(&run, 0, sizeof(run));
	memset(&q1, 0, sizeof(q1));
	memset(&q2, 0, sizeof(q2));
	memset(&q3, 0, sizeof(q3));
	run.gate_at = 1;
	eng_submit(e, case_ids[0], case_len[0], &s, &run, &id_run, NULL, 0);
	CHECK(wait_tokens(&run, 1), "no tokens");
	CHECK(eng_submit(e, case_ids[0], case_len[0], &s, &q1, &id1, err, sizeof(err)) == 0, "q1");
	CHECK(eng_submit(e, case_ids[0], case_len[0], &s, &q2, &id2, err, sizeof(err)) == 0, "q2");
	CHECK(eng_submit(e, case_ids[0], case_len[0], &s, &q3, &id3, err, sizeof(err)) == ST_EFULL,
	      "third waiting request accepted");
	CHECK(strstr(err, "queue") != NULL, "message '%s'", err);
	eng_cancel(e, id1);
	eng_cancel(e, id2);
	eng_cancel(e, id_run);
	release(&run);
	CHECK(wait_final(&q1) && wait_final(&q2) && wait_final(&run), "not aborted");
	CHECK(q1.finish == ENG_FINISH_ABORT && q2.finish == ENG_FINISH_ABORT &&
	      run.finish == ENG_FINISH_ABORT, "finish %d %d %d", q1.finish, q2.finish, run.finish);
	CHECK(q3.n_events == 0, "refused request got events");
	check_idle(e, "queue full");
	/* the queue has room again */
	memset(&q3, 0, sizeof(q3));
	greedy_params(&s, 2);
	CHECK(eng_submit(e, case_ids[0], case_len[0], &s, &q3, &id3, err, sizeof(err)) == 0,
	      "submit after the queue drained: %s", err);
	CHECK(wait_final(&q3) && q3.n == 2, "q3: %d tokens", q3.n);
	/* max_queue 0: admitted while a running slot is free, refused when none is */
	eng_destroy(e);
	e = mk_engine(1, 256, 0, 0);
	CHECK(e != NULL, "eng_create (max_queue 0) failed");
	if (!e)
		return;
	greedy_params(&s, 4000);
	memset(&run, 0, sizeof(run));
	memset(&q1, 0, sizeof(q1));
	run.gate_at = 1;
	CHECK(eng_submit(e, case_ids[0], case_len[0], &s, &run, &id_run, err, sizeof(err)) == 0,
	      "max_queue 0 refused a request with a free slot: %s", err);
	CHECK(wait_tokens(&run, 1), "no tokens");
	CHECK(eng_submit(e, case_ids[0], case_len[0], &s, &q1, &id1, err, sizeof(err)) == ST_EFULL,
	      "max_queue 0 accepted a request with no free slot");
	eng_cancel(e, id_run);
	release(&run);
	CHECK(wait_final(&run) && run.finish == ENG_FINISH_ABORT, "not aborted");
	/* destroy with work in flight aborts it */
	greedy_params(&s, 4000);
	memset(&run, 0, sizeof(run));
	run.gate_at = 2;
	eng_submit(e, case_ids[0], case_len[0], &s, &run, &id_run, NULL, 0);
	CHECK(wait_tokens(&run, 2), "no tokens");
	release(&run);
	eng_destroy(e);
	CHECK(run.final && run.finish == ENG_FINISH_ABORT, "destroy did not abort (final %d)",
	      run.final);
}

static void test_bad_input(void)
{
	struct engine *e = mk_engine(2, 64, 4, 4);	/* 64-token cache -> max_model_len 64 */
	struct eng_sampling s;
	struct res r;
	uint64_t id;
	char err[200];
	int ids[100];
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	CHECK(eng_max_model_len(e) == 64, "max_model_len %d, want 64 (4 blocks of 16)",
	      eng_max_model_len(e));
	for (int i = 0; i < 100; i++)
		ids[i] = 5;
	memset(&r, 0, sizeof(r));
	greedy_params(&s, 4);
#define BAD(call, word) do { \
		err[0] = '\0'; \
		int rc_ = (call); \
		CHECK(rc_ == ST_EINVAL, "%s: rc %d", word, rc_); \
		CHECK(strstr(err, word) != NULL, "%s: message '%s'", word, err); \
	} while (0)
	BAD(eng_submit(e, ids, 0, &s, &r, &id, err, sizeof(err)), "empty");
	BAD(eng_submit(e, NULL, 3, &s, &r, &id, err, sizeof(err)), "empty");
	BAD(eng_submit(e, ids, 64, &s, &r, &id, err, sizeof(err)), "max_model_len");
	ids[3] = 512;
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "512");
	ids[3] = -1;
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "-1");
	ids[3] = 5;
	s.temperature = NAN;
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "temperature");
	s.temperature = -0.5;
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "temperature");
	greedy_params(&s, 4);
	s.top_p = 0;
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "top_p");
	s.top_p = 1.01;
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "top_p");
	greedy_params(&s, 4);
	s.max_tokens = -3;
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "max_tokens");
	greedy_params(&s, 4);
	s.n_stop = 1;
	s.stop[0] = "x";
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "tokenizer");
	greedy_params(&s, 4);
	s.n_stop_ids = 1;
	s.stop_ids[0] = 1 << 20;
	BAD(eng_submit(e, ids, 5, &s, &r, &id, err, sizeof(err)), "stop_token_ids");
#undef BAD
	CHECK(r.n_events == 0, "a refused request produced events");
	/* a long max_tokens is capped by max_model_len: finish "length" at 64 */
	greedy_params(&s, 1000);
	CHECK(eng_submit(e, ids, 60, &s, &r, &id, err, sizeof(err)) == 0, "submit: %s", err);
	CHECK(wait_final(&r), "never finished");
	CHECK(r.finish == ENG_FINISH_LENGTH && r.n == 4, "finish %d after %d tokens (want 4)",
	      r.finish, r.n);
	check_idle(e, "bad input");
	eng_destroy(e);
}

/* ---- with the real tokenizer (mkmodel tiny) ---- */

static char tiny_dir[256];

static int make_tiny(void)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char mk[300], cmd[1024];
	snprintf(mk, sizeof(mk), "%s/mkmodel", build);
	if (access(mk, X_OK) != 0)
		return -1;
	snprintf(tiny_dir, sizeof(tiny_dir), "/tmp/gr-test-engine-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "%s --preset tiny --out %s --seed 7 >/dev/null 2>&1", mk,
		 tiny_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_stop_strings_with_tokenizer(void)
{
	struct ld_model *tm = NULL;
	struct tokenizer *tok = NULL;
	struct engine *e = NULL;
	struct eng_opts o;
	struct eng_sampling s;
	struct res full, cut;
	uint64_t id;
	int *ids = NULL, n_ids = 0, prompt[64], n_prompt = 0;
	char *dec = NULL;
	size_t dec_len;

	if (make_tiny() < 0) {
		SKIP("no $BUILD/mkmodel to make a model with the real tokenizer");
		return;
	}
	if (ld_load(tiny_dir, &lo, &be, NULL, &tm) < 0 || !tm->tokenizer_json ||
	    tok_create(tm->tokenizer_json, tm->tokenizer_len, &tok) < 0) {
		CHECK(0, "cannot load %s with its tokenizer", tiny_dir);
		goto out;
	}
	eng_opts_default(&o);
	o.max_num_seqs = 4;
	o.max_num_batched_tokens = 128;
	o.max_model_len = 256;
	CHECK(eng_create(&o, tm, tok, on_out, &e) == 0, "eng_create");
	if (!e)
		goto out;
	prompt[n_prompt++] = 2;
	CHECK(tok_encode(tok, "The quick brown fox", 19, &ids, &n_ids) == 0, "encode");
	for (int i = 0; i < n_ids && n_prompt < 64; i++)
		prompt[n_prompt++] = ids[i];
	/* reference: 30 tokens, no stop; the streamed text equals tok_decode */
	eng_sampling_default(&s);
	s.temperature = 0;
	s.max_tokens = 30;
	s.ignore_eos = 1;
	memset(&full, 0, sizeof(full));
	eng_submit(e, prompt, n_prompt, &s, &full, &id, NULL, 0);
	CHECK(wait_final(&full) && full.n == 30, "reference run: %d tokens", full.n);
	CHECK(tok_decode(tok, full.tokens, full.n, 1, &dec, &dec_len) == 0, "decode");
	CHECK(full.text_len == dec_len && memcmp(full.text, dec, dec_len) == 0,
	      "streamed text differs from tok_decode:\n  '%s'\n  '%s'", full.text, dec);
	/* a stop string spanning a token boundary: 2+ bytes on each side of
	 * the end of the k-th token's text (k in the middle of the output) */
	{
		size_t a, b, L = 0, len = full.text_len;
		char stop[64], *tx = full.text;
		int k;
		/* the first boundary whose stop string does not occur earlier */
		for (k = 1; k < full.n; k++) {
			char *pre = NULL;
			size_t pl = 0;
			int ok = tok_decode(tok, full.tokens, k, 1, &pre, &pl) == 0 && pl >= 3 &&
				 pl + 3 <= len && memcmp(pre, tx, pl) == 0;
			free(pre);
			if (!ok)
				continue;
			a = pl - 2;
			while (a > 0 && ((unsigned char)tx[a] & 0xC0) == 0x80)
				a--;
			b = pl + 2;
			while (b < len && ((unsigned char)tx[b] & 0xC0) == 0x80)
				b++;
			if (b - a >= sizeof(stop) - 2)
				continue;
			memcpy(stop, tx + a, b - a);
			stop[b - a] = '\0';
			if (a > 0 && (size_t)(strstr(tx, stop) - tx) == a) {
				L = pl;
				break;
			}
		}
		CHECK(L > 0, "no usable token boundary in '%s'", tx);
		if (L == 0)
			goto out;
		eng_sampling_default(&s);
		s.temperature = 0;
		s.max_tokens = 30;
		s.ignore_eos = 1;
		s.n_stop = 1;
		s.stop[0] = stop;
		memset(&cut, 0, sizeof(cut));
		eng_submit(e, prompt, n_prompt, &s, &cut, &id, NULL, 0);
		CHECK(wait_final(&cut), "stop run never finished");
		CHECK(cut.finish == ENG_FINISH_STOP, "finish %d, want stop", cut.finish);
		CHECK(cut.text_len == a && memcmp(cut.text, tx, a) == 0,
		      "text before the stop string: got '%s' (%zu bytes), want %zu bytes of '%s'",
		      cut.text, cut.text_len, a, tx);
		CHECK(strstr(cut.text, stop) == NULL, "stop string emitted");
		CHECK(cut.n < 30 && memcmp(cut.tokens, full.tokens, (size_t)cut.n * sizeof(int)) == 0,
		      "tokens before the stop differ (%d)", cut.n);
		printf("  stop '%s' (token boundary at byte %zu) after %d tokens, %zu bytes kept\n",
		       stop, L, cut.n, cut.text_len);

		/* the same bytes plus one that never comes: held back, then released */
		size_t sl = strlen(stop);
		stop[sl] = '\x7f';
		stop[sl + 1] = '\0';
		memset(&cut, 0, sizeof(cut));
		eng_submit(e, prompt, n_prompt, &s, &cut, &id, NULL, 0);
		CHECK(wait_final(&cut), "near-stop run never finished");
		CHECK(cut.finish == ENG_FINISH_LENGTH && cut.n == 30, "near-stop: finish %d n %d",
		      cut.finish, cut.n);
		CHECK(cut.text_len == len && memcmp(cut.text, tx, len) == 0,
		      "held-back text not released: '%s'", cut.text);
	}
	check_idle(e, "stop strings");
out:
	eng_destroy(e);
	free(ids);
	free(dec);
	tok_destroy(tok);
	ld_model_destroy(tm);
	if (tiny_dir[0]) {
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tiny_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tiny_dir);
	}
}

int main(void)
{
	struct be_opts bo = { .n_threads = 2 };
	ld_opts_default(&lo);
	log_setup(stderr, 0, LOG_WARN);
	if (be_create("cpu", &bo, &be) < 0 || ld_load(GOLDEN, &lo, &be, NULL, &model) < 0 ||
	    load_cases() < 0) {
		printf("FAIL setup: cannot load %s\n", GOLDEN);
		return 1;
	}
	RUN(test_greedy_golden_each_alone);
	RUN(test_greedy_golden_batched);
	RUN(test_chunked_prefill);
	RUN(test_preemption);
	RUN(test_admission_watermark);
	RUN(test_seeded_sampling_batch_invariant);
	RUN(test_device_sampler_matches_host);
	RUN(test_stop_ids_min_max_tokens_logprobs);
	RUN(test_cancel_frees_blocks);
	RUN(test_queue_full);
	RUN(test_bad_input);
	RUN(test_stop_strings_with_tokenizer);
	ld_model_destroy(model);
	be_destroy(&be);
	return th_done();
}
