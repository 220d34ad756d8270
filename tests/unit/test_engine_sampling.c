/*
 * test_engine_sampling.c - sampling and stop rules through the engine
 * (CPU backend, golden model tests/golden/gemma2-tiny-a, no tokenizer):
 *   - seeded random sampling gives the same tokens alone and in a batch;
 *   - a mix of sampling parameters in one batch is deterministic per seed
 *     (two runs, under both --sampler names, give the same tokens,
 *     logprobs and top ids) and its greedy rows are the golden continuations;
 *   - stop ids, min_tokens, max_tokens, logprobs;
 * and with the real tokenizer (a `mkmodel --preset tiny` model, made in a
 * temp directory when $BUILD/mkmodel exists): stop strings across token
 * boundaries are cut and never emitted, the rest of the text is unchanged.
 */
#include "tests/unit/engine_util.h"

static void test_seeded_sampling_batch_invariant(void)
{
	struct engine *e1, *e;
	struct eng_sampling s, g;
	struct res alone, together, others[MAX_CASES], reseed;
	uint64_t id;
	e1 = mk_engine(8, 512, 0, 16);
	e = mk_engine(8, 512, 0, 16);
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
 * Every golden case at once, each with its own mix of greedy / temperature
 * / top_k / top_p / min_p / penalties / logprobs and a seed (be_ops.sample
 * inside the forward; on the CPU backend the reference op).
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

static void test_mixed_sampling_deterministic_per_seed(void)
{
	static struct res a[MAX_CASES], b[MAX_CASES];
	int n_random = 0;

	run_mixed(ENG_SAMPLER_AUTO, a);
	run_mixed(ENG_SAMPLER_DEVICE, b);
	for (int c = 0; c < n_cases; c++) {
		CHECK(a[c].n == 20 && b[c].n == a[c].n, "case %d: %d vs %d tokens", c, a[c].n,
		      b[c].n);
		CHECK(memcmp(a[c].tokens, b[c].tokens, sizeof(int) * (size_t)a[c].n) == 0,
		      "case %d: the same seed chose other tokens", c);
		for (int i = 0; c % 2 == 0 && i < a[c].n; i++) {
			CHECK(a[c].lp[i] == b[c].lp[i] && a[c].lp[i] <= 0,
			      "case %d token %d: logprob %g then %g", c, i, a[c].lp[i], b[c].lp[i]);
			CHECK(a[c].top0[i] == b[c].top0[i], "case %d token %d: top id %d vs %d", c, i,
			      a[c].top0[i], b[c].top0[i]);
		}
		/* plain greedy rows (no penalty) are the golden continuations */
		if (c % 4 == 0 && c % 3 != 2)
			CHECK(memcmp(a[c].tokens, case_greedy[c], sizeof(int) * N_GREEDY) == 0,
			      "case %d: greedy tokens differ from the golden continuation", c);
		else if (c % 4 != 0)
			n_random += memcmp(a[c].tokens, case_greedy[c], sizeof(int) * N_GREEDY) != 0;
	}
	CHECK(n_random > 0, "no random case left the greedy path");
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
	struct g2_weights w;
	ld_g2_weights(tm, &w);
	CHECK(eng_create(&o, &w, tok, on_out, &e) == 0, "eng_create");
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
	if (eng_test_setup() < 0)
		return 1;
	RUN(test_seeded_sampling_batch_invariant);
	RUN(test_mixed_sampling_deterministic_per_seed);
	RUN(test_stop_ids_min_max_tokens_logprobs);
	RUN(test_stop_strings_with_tokenizer);
	eng_test_teardown();
	return th_done();
}
