/*
 * test_engine.c - the engine's scheduling over the CPU backend and the
 * golden model tests/golden/gemma2-tiny-a (no tokenizer: text empty):
 *   - greedy continuation of every golden case equals greedy_new_tokens,
 *     alone and all submitted together, with chunked prefill (tiny
 *     max_num_batched_tokens) and with a KV cache so small that preemption
 *     happens (stats.preemptions > 0, tokens unchanged);
 *   - the admission watermark keeps a request out of the blocks a running
 *     one needs next;
 *   - cancel (running and waiting) gives ABORT and frees every block;
 *   - a full waiting queue answers ST_EFULL; bad input ST_EINVAL naming
 *     the parameter.
 * Sampling, stop rules and logprobs through the engine: test_engine_sampling.c.
 */
#include "tests/unit/engine_util.h"

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

/* --sampler names: auto and device (both the sample op); "host" is refused, not remapped. */
static void test_sampler_names(void)
{
	enum eng_sampler k = ENG_SAMPLER_DEVICE;

	CHECK(eng_sampler_parse("auto", &k) == 0 && k == ENG_SAMPLER_AUTO, "auto refused");
	CHECK(eng_sampler_parse(NULL, &k) == 0 && k == ENG_SAMPLER_AUTO, "NULL is not auto");
	CHECK(eng_sampler_parse("device", &k) == 0 && k == ENG_SAMPLER_DEVICE, "device refused");
	CHECK(eng_sampler_parse("host", &k) == ST_EINVAL, "the retired host sampler was accepted");
	CHECK(eng_sampler_parse("gpu", &k) == ST_EINVAL, "an unknown name was accepted");
}

int main(void)
{
	if (eng_test_setup() < 0)
		return 1;
	RUN(test_greedy_golden_each_alone);
	RUN(test_greedy_golden_batched);
	RUN(test_chunked_prefill);
	RUN(test_preemption);
	RUN(test_admission_watermark);
	RUN(test_cancel_frees_blocks);
	RUN(test_queue_full);
	RUN(test_bad_input);
	RUN(test_sampler_names);
	eng_test_teardown();
	return th_done();
}
