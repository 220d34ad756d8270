/*
 * bench_structured.c - decode throughput with vs without a structured-output
 * constraint through the engine (CPU backend), batch 1 and 16.
 *
 * Same run, same engine options, same prompts and seeds: B requests of
 * temperature 1, max_tokens D, unconstrained (the baseline), then the same
 * with a JSON Schema whose outputs are long (an object with a free-text
 * string and an array of integers). Validation first: every constrained
 * output that completed is accepted by the grammar. Prints generated tokens
 * per second of each and the ratio. The tiny mkmodel model's forward is
 * cheap, so the mask's share here is far larger than on a real model:
 * the ratio is an upper bound of the slowdown.
 *
 *   bench_structured [--model DIR (a mkmodel directory with tokenizer.json)] [--tokens D] [--threads N]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "engine/engine.h"
#include "engine/grammar.h"
#include "engine/grammar_schema.h"
#include "kernels/backend.h"
#include "loader/loader.h"
#include "tokenizer/tokenizer.h"

#define MAX_B 16

static const char *const schema =
	"{\"type\":\"object\",\"properties\":{\"note\":{\"type\":\"string\"},\"n\":{\"type\":\"array\","
	"\"items\":{\"type\":\"integer\"}}},\"required\":[\"note\",\"n\"]}";

static struct out {
	char text[65536];
	size_t len;
	int n, final;
	enum eng_finish finish;
} outs[MAX_B];
static int n_final;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void on_out(const struct eng_output *o)
{
	struct out *r = o->user;

	pthread_mutex_lock(&mu);
	r->n += o->n_tokens;
	if (o->text_len && r->len + o->text_len < sizeof(r->text)) {
		memcpy(r->text + r->len, o->text, o->text_len);
		r->len += o->text_len;
	}
	if (o->final) {
		r->final = 1;
		r->finish = o->finish;
		n_final++;
		pthread_cond_broadcast(&cv);
	}
	pthread_mutex_unlock(&mu);
}

/* Generated tokens per second of B requests (guided or not); -1 on error. */
static double run(struct engine *e, int B, int D, int guided, int *n_tok)
{
	double t0;

	memset(outs, 0, sizeof(outs));
	n_final = 0;
	t0 = now_sec();
	for (int b = 0; b < B; b++) {
		struct eng_sampling s;
		int p[4] = { 2, 651 + b, 6037, 576 };
		uint64_t id;
		eng_sampling_default(&s);
		s.temperature = 1.0;
		s.has_seed = 1;
		s.seed = 1000 + (uint64_t)b;
		s.max_tokens = D;
		if (guided) {
			s.guide_kind = GRS_JSON_SCHEMA;
			s.guide = schema;
			s.guide_len = strlen(schema);
		}
		if (eng_submit(e, p, 4, &s, &outs[b], &id, NULL, 0) < 0)
			return -1;
	}
	pthread_mutex_lock(&mu);
	while (n_final < B)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	*n_tok = 0;
	for (int b = 0; b < B; b++)
		*n_tok += outs[b].n;
	return *n_tok / (now_sec() - t0);
}

int main(int argc, char **argv)
{
	const char *dir = "build/test-models/tiny";
	struct be_opts bo = { .n_threads = 2 };
	struct ld_opts lo;
	struct ld_model *m = NULL;
	struct tokenizer *tok = NULL;
	struct be be;
	struct gr_grammar *g;
	char path[4096], err[200];
	int D = 64, batches[2] = { 1, 16 };

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--model"))
			dir = argv[i + 1];
		else if (!strcmp(argv[i], "--tokens"))
			D = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--threads"))
			bo.n_threads = atoi(argv[i + 1]);
	}
	log_setup(stderr, 0, LOG_WARN);
	ld_opts_default(&lo);
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	if (be_create("cpu", &bo, &be) < 0 || ld_load(dir, &lo, &be, NULL, &m) < 0 ||
	    tok_create_from_file(path, &tok) < 0 ||
	    grs_compile(GRS_JSON_SCHEMA, schema, strlen(schema), &g, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench_structured: cannot load %s (make it with build/mkmodel --preset tiny)\n", dir);
		return 1;
	}
	for (int k = 0; k < 2; k++) {
		int B = batches[k], nb = 0, ng = 0, n_ok = 0, n_done = 0;
		struct eng_opts o;
		struct g2_weights w;
		struct engine *e = NULL;
		double base = 0, with = 0;

		eng_opts_default(&o);
		o.max_num_seqs = B;
		o.max_num_batched_tokens = 256;
		ld_g2_weights(m, &w);
		if (eng_create(&o, &w, tok, on_out, &e) < 0 || eng_warmup(e) < 0)
			return 1;
		run(e, B, 4, 1, &ng);	/* builds the vocabulary trie outside the timing */
		for (int r = 0; r < 3; r++) {	/* interleaved, best of 3 */
			double x = run(e, B, D, 0, &nb), y;
			y = run(e, B, D, 1, &ng);
			base = x > base ? x : base;
			with = y > with ? y : with;
		}
		for (int b = 0; b < B; b++)	/* the last guided run's outputs */
			if (outs[b].finish == ENG_FINISH_STOP) {
				n_done++;
				n_ok += gr_accepts(g, outs[b].text, outs[b].len) == 1;
			}
		if (n_ok != n_done) {
			printf("FAIL batch %d: %d of %d completed outputs rejected by the grammar\n", B, n_done - n_ok, n_done);
			return 1;
		}
		printf("bench_structured: batch=%d tokens=%d unconstrained_tok_s=%.1f schema_tok_s=%.1f "
		       "ratio=%.3f (completed %d/%d, all valid)\n", B, D, base, with, with / base, n_done, B);
		eng_destroy(e);
	}
	gr_grammar_destroy(g);
	tok_destroy(tok);
	ld_model_destroy(m);
	be_destroy(&be);
	return 0;
}
