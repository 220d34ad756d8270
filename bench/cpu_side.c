/*
 * cpu_side.c - gemma-run's side of bench/bench_cpu_llama.sh: the CPU
 * backend's forward pass on a model directory, the same three figures that
 * bench/llama/run.mjs measures with llama.cpp on the same weights in GGUF:
 *   prefill: one g2_forward of PREFILL prompt tokens (one logit row);
 *   decode1: after an untimed 8-token prompt, DECODE single-token steps;
 *   conc4:   4 sequences, prefilled untimed, then DECODE steps of 4 rows.
 * Greedy (argmax) next tokens, as llama.cpp's temperature 0. Prints
 * "ours <name> <median> <unit>" lines, medians of --reps, and the matmul
 * GFLOP/s of the prefill. Not run by bench/run.sh on its own (no bench_
 * prefix): it is one half of a comparison.
 *
 *   cpu_side --model DIR [--threads N] [--reps 3] [--prefill 256] [--decode 64]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/gemma2.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"

#define NSEQ 4
#define BS 16
#define MAX_REPS 9

static int PREFILL = 256, DECODE = 64;

/* The pseudo-random prompt of run.mjs: bos, then ids in [3, 1003). */
static void prompt(int32_t *p, int n, uint32_t seed)
{
	uint32_t s = seed;
	p[0] = 2;
	for (int i = 1; i < n; i++) {
		s = s * 1103515245u + 12345u;
		p[i] = 3 + (int32_t)((s >> 8) % 1000);
	}
}

static int argmax(const float *l, int n)
{
	int am = 0;
	for (int i = 1; i < n; i++)
		if (l[i] > l[am])
			am = i;
	return am;
}

static double median(double *a, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && a[j] < a[j - 1]; j--) {
			double t = a[j];
			a[j] = a[j - 1];
			a[j - 1] = t;
		}
	return a[n / 2];
}

struct side {
	struct g2_model *g;
	struct kv_cache *kv;
	int nb, V;
	int32_t *tok, *pos, *seq, *bt, ctx[NSEQ], rows[NSEQ];
	float *lg;
};

/* One forward of n tokens of sequences given in s->seq; logits of the rows in s->rows. */
static int fwd(struct side *s, int n, int n_seqs, int n_logits)
{
	struct g2_batch b = { .n_tok = n, .tokens = s->tok, .positions = s->pos, .seq = s->seq,
			      .n_seqs = n_seqs, .block_tables = s->bt, .max_blocks = s->nb,
			      .ctx_lens = s->ctx, .n_logits = n_logits, .logit_rows = s->rows };
	return g2_forward(s->g, s->kv, &b, s->lg);
}

/* n_seqs sequences: an untimed prompt of 8, then DECODE timed steps; tokens/s. */
static double decode(struct side *s, int n_seqs, uint32_t seed)
{
	int32_t p[8];
	int n = 0;
	double t0;

	for (int q = 0; q < n_seqs; q++) {
		prompt(p, 8, seed + 10 * (uint32_t)q);
		for (int i = 0; i < 7; i++, n++) {
			s->tok[n] = p[i];
			s->pos[n] = i;
			s->seq[n] = q;
		}
		s->ctx[q] = 7;
		s->rows[q] = n - 1;
	}
	if (fwd(s, n, n_seqs, n_seqs) < 0)
		return -1;
	t0 = now_sec();
	for (int step = 0; step < DECODE; step++) {
		for (int q = 0; q < n_seqs; q++) {
			s->tok[q] = step == 0 ? (prompt(p, 8, seed + 10 * (uint32_t)q), p[7])
					      : argmax(s->lg + (size_t)q * s->V, s->V);
			s->pos[q] = 7 + step;
			s->seq[q] = q;
			s->ctx[q] = 8 + step;
			s->rows[q] = q;
		}
		if (fwd(s, n_seqs, n_seqs, n_seqs) < 0)
			return -1;
	}
	return (double)n_seqs * DECODE / (now_sec() - t0);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	struct be_opts bo = { .n_threads = 2 };
	struct ld_opts lo;
	struct be be;
	struct ld_model *m = NULL;
	struct side s = { 0 };
	int reps = 3, max_tok;
	double pre[MAX_REPS], d1[MAX_REPS], c4[MAX_REPS], t0;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--model") == 0)
			dir = argv[i + 1];
		else if (strcmp(argv[i], "--threads") == 0)
			bo.n_threads = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--reps") == 0)
			reps = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--prefill") == 0)
			PREFILL = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--decode") == 0)
			DECODE = atoi(argv[i + 1]);
	}
	if (!dir || reps < 1 || reps > MAX_REPS || PREFILL < 8 || DECODE < 1) {
		fprintf(stderr, "usage: cpu_side --model DIR [--threads N] [--reps 1..%d] "
			"[--prefill >=8] [--decode >=1]\n", MAX_REPS);
		return 2;
	}
	log_setup(stderr, 0, LOG_WARN);
	ld_opts_default(&lo);
	t0 = now_sec();
	if (be_create("cpu", &bo, &be) < 0 || ld_load(dir, &lo, &be, NULL, &m) < 0) {
		fprintf(stderr, "cpu_side: cannot load %s\n", dir);
		return 1;
	}
	printf("ours load_s %.2f s\n", now_sec() - t0);
	max_tok = PREFILL > NSEQ * 8 ? PREFILL : NSEQ * 8;
	s.V = m->cfg.vocab_size;
	s.nb = (PREFILL + DECODE + 8 + BS - 1) / BS;
	s.tok = calloc((size_t)max_tok, 4);
	s.pos = calloc((size_t)max_tok, 4);
	s.seq = calloc((size_t)max_tok, 4);
	s.bt = calloc((size_t)NSEQ * s.nb, 4);
	s.lg = calloc((size_t)NSEQ * s.V, sizeof(float));
	if (!s.tok || !s.pos || !s.seq || !s.bt || !s.lg ||
	    kv_cache_create(&be, &m->cfg, BS, kv_bytes_per_block(&m->cfg, BS, be.ops->kv_dtype) *
			    (size_t)(NSEQ * s.nb), &s.kv) < 0 ||
	    ld_g2_model_create(m, max_tok, NSEQ, s.nb, &s.g) < 0 || kv_alloc_n(s.kv, NSEQ * s.nb, s.bt) < 0) {
		fprintf(stderr, "cpu_side: out of memory\n");
		return 1;
	}
	for (int r = 0; r < reps; r++) {
		prompt(s.tok, PREFILL, 7 + (uint32_t)r);
		for (int i = 0; i < PREFILL; i++) {
			s.pos[i] = i;
			s.seq[i] = 0;
		}
		s.ctx[0] = PREFILL;
		s.rows[0] = PREFILL - 1;
		t0 = now_sec();
		if (fwd(&s, PREFILL, 1, 1) < 0)
			return 1;
		pre[r] = now_sec() - t0;
		d1[r] = decode(&s, 1, 100 + (uint32_t)r);
		c4[r] = decode(&s, NSEQ, 200 + 10 * (uint32_t)r);
		if (d1[r] < 0 || c4[r] < 0)
			return 1;
	}
	{
		const struct g2_config *c = &m->cfg;
		double qd = (double)c->num_attention_heads * c->head_dim, kvd = (double)c->num_key_value_heads * c->head_dim;
		double per_tok = (double)c->num_hidden_layers * c->hidden_size *
				 (qd + 2 * kvd + qd + 3.0 * c->intermediate_size);
		double p = median(pre, reps);
		printf("ours prefill_s %.3f s\n", p);
		printf("ours prefill_gflops %.1f GFLOP/s (layer matmuls)\n", 2.0 * per_tok * PREFILL / p / 1e9);
	}
	printf("ours decode1_tps %.2f tok/s\n", median(d1, reps));
	printf("ours conc4_tps %.2f tok/s\n", median(c4, reps));
	printf("ours threads %d kv_dtype %s\n", bo.n_threads, be.ops->kv_dtype == BE_F32 ? "f32" : "bf16");
	g2_model_destroy(s.g);
	kv_cache_destroy(s.kv);
	ld_model_destroy(m);
	be_destroy(&be);
	free(s.tok);
	free(s.pos);
	free(s.seq);
	free(s.bt);
	free(s.lg);
	return 0;
}
