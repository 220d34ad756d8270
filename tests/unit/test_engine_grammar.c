/*
 * test_engine_grammar.c - structured outputs through the engine (CPU
 * backend, the tiny random-weight mkmodel model with Gemma's tokenizer,
 * $BUILD/test-models/tiny, made with $BUILD/mkmodel when missing): with a
 * KV cache so small that sequences are preempted and recomputed, every
 * request's text is accepted by its grammar (complete: finish stop; cut:
 * a prefix the grammar takes, finish length); a stop string still ends the
 * text where it matches; bad guides are refused at submit.
 */
#include "engine/grammar.h"
#include "engine/grammar_schema.h"
#include "tests/unit/engine_util.h"

#define TINY_PRESET "tiny"

static struct tokenizer *tok;

static struct engine *mk(int max_seqs, size_t kv_blocks)
{
	struct eng_opts o;
	struct g2_weights w;
	struct engine *e = NULL;

	eng_opts_default(&o);
	o.max_num_seqs = max_seqs;
	o.max_num_batched_tokens = 64;
	o.max_queue = 16;
	o.block_size = 16;
	if (kv_blocks)
		o.kv_bytes = kv_blocks * kv_bytes_per_block(&model->cfg, 16, be.ops->kv_dtype);
	ld_g2_weights(model, &w);
	return eng_create(&o, &w, tok, on_out, &e) < 0 ? NULL : e;
}

static const char *const schema =
	"{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":999},"
	"\"tag\":{\"enum\":[\"a\",\"bb\",\"ccc\"]},\"xs\":{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},"
	"\"maxItems\":3}},\"required\":[\"id\",\"tag\",\"xs\"]}";

static void guided(struct eng_sampling *s, int kind, const char *text, int max_tokens, uint64_t seed)
{
	eng_sampling_default(s);
	s->temperature = 1.0;
	s->has_seed = 1;
	s->seed = seed;
	s->max_tokens = max_tokens;
	s->guide_kind = kind;
	s->guide = text;
	s->guide_len = strlen(text);
}

static void test_preempted_outputs_follow_the_grammar(void)
{
	enum { N = 8 };
	static struct res r[N];
	struct engine *e = mk(4, 6);	/* 96 positions for 4 sequences of up to 70 */
	struct gr_grammar *g;
	struct eng_stats st;
	char err[200];
	int prompt[4] = { 2, 651, 6037, 576 }, n_stop = 0;

	CHECK(e != NULL, "eng_create");
	if (!e)
		return;
	CHECK(grs_compile(GRS_JSON_SCHEMA, schema, strlen(schema), &g, err, sizeof(err)) == 0, "%s", err);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < N; i++) {
		struct eng_sampling s;
		uint64_t id;
		guided(&s, GRS_JSON_SCHEMA, schema, 66, 100 + (uint64_t)i);
		CHECK(eng_submit(e, prompt, 4, &s, &r[i], &id, err, sizeof(err)) == 0, "submit %d: %s", i, err);
	}
	for (int i = 0; i < N; i++) {
		struct gr_match m;
		CHECK(wait_final(&r[i]), "request %d never finished", i);
		gr_match_init(&m, g);
		int ok = gr_advance(&m, r[i].text, r[i].text_len) == 0;
		if (r[i].finish == ENG_FINISH_STOP) {
			cJSON *j = cJSON_ParseWithLength(r[i].text, r[i].text_len);
			n_stop++;
			CHECK(ok && gr_accepting(&m) && j, "request %d: complete text not valid: %s", i, r[i].text);
			cJSON_Delete(j);
		} else {
			CHECK(r[i].finish == ENG_FINISH_LENGTH && ok, "request %d: finish %d, text %s", i,
			      r[i].finish, r[i].text);
		}
		gr_match_release(&m);
	}
	eng_get_stats(e, &st);
	CHECK(st.preemptions > 0, "no preemption happened");
	CHECK(n_stop > 0, "no request completed its value");
	printf("  %d of %d complete, %llu preemptions\n", n_stop, N, (unsigned long long)st.preemptions);
	check_idle(e, "grammar");
	gr_grammar_destroy(g);
	eng_destroy(e);
}

static void test_stop_string_and_choice(void)
{
	static struct res a, b;
	struct engine *e = mk(2, 0);
	struct eng_sampling s;
	uint64_t id;
	char err[200];
	int prompt[2] = { 2, 651 };

	CHECK(e != NULL, "eng_create");
	if (!e)
		return;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	guided(&s, GRS_CHOICE, "[\"alpha beta\",\"gamma\"]", 30, 1);
	s.n_stop = 1;
	s.stop[0] = "a b";	/* matches inside "alpha beta" only */
	CHECK(eng_submit(e, prompt, 2, &s, &a, &id, err, sizeof(err)) == 0, "%s", err);
	guided(&s, GRS_REGEX, "[0-9]{3}", 30, 2);
	CHECK(eng_submit(e, prompt, 2, &s, &b, &id, err, sizeof(err)) == 0, "%s", err);
	CHECK(wait_final(&a) && wait_final(&b), "not finished");
	CHECK(a.finish == ENG_FINISH_STOP && (!strcmp(a.text, "alph") || !strcmp(a.text, "gamma")),
	      "choice with stop string: %d '%s'", a.finish, a.text);
	CHECK(b.finish == ENG_FINISH_STOP && b.text_len == 3 && strspn(b.text, "0123456789") == 3,
	      "regex: %d '%s'", b.finish, b.text);
	guided(&s, GRS_JSON_SCHEMA, "{\"not\":{}}", 4, 1);
	CHECK(eng_submit(e, prompt, 2, &s, &a, &id, err, sizeof(err)) == ST_EINVAL && strstr(err, "not"),
	      "bad schema at submit: %s", err);
	check_idle(e, "choice");
	eng_destroy(e);
}

int main(void)
{
	const char *bd = getenv("BUILD") ? getenv("BUILD") : "build";
	char dir[256], tp[300], cmd[2048];
	struct be_opts bo = { .n_threads = 2 };

	if (getenv("GR_ROOT") && chdir(getenv("GR_ROOT")) != 0)
		return 1;
	snprintf(dir, sizeof(dir), "%s/test-models/" TINY_PRESET, bd);
	snprintf(tp, sizeof(tp), "%s/tokenizer.json", dir);
	if (access(tp, R_OK) != 0) {
		snprintf(cmd, sizeof(cmd), "mkdir -p %s/test-models && %s/mkmodel --preset " TINY_PRESET
			 " --out %s.tmp.%d >/dev/null 2>&1 && mv %s.tmp.%d %s 2>/dev/null; true", bd, bd,
			 dir, (int)getpid(), dir, (int)getpid(), dir);
		if (system(cmd) != 0 || access(tp, R_OK) != 0) {
			printf("FAIL setup: cannot make %s with %s/mkmodel\n", dir, bd);
			return 1;
		}
	}
	ld_opts_default(&lo);
	log_setup(stderr, 0, LOG_WARN);
	if (be_create("cpu", &bo, &be) < 0 || ld_load(dir, &lo, &be, NULL, &model) < 0 ||
	    tok_create_from_file(tp, &tok) < 0) {
		printf("FAIL setup: cannot load %s\n", dir);
		return 1;
	}
	RUN(test_preempted_outputs_follow_the_grammar);
	RUN(test_stop_string_and_choice);
	tok_destroy(tok);
	ld_model_destroy(model);
	be_destroy(&be);
	return th_done();
}
