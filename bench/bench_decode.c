/*
 * bench_decode.c - CPU decode throughput against the memory-bandwidth
 * roofline measured in the same run.
 *
 *   bench_decode [--model DIR]... [--threads N] [--batch 1,16] [--steps N]
 *
 * Without --model it makes its own models with mkmodel ($BUILD/mkmodel or
 * build/mkmodel) in a temporary directory under /tmp and deletes them after:
 * the "tiny" preset (random weights) and a "2b"-shaped one (--sparse,
 * all-zero weights: the same bytes to read, fine for timing). Set
 * BENCH_DECODE_2B=0 to skip the 2b model.
 *
 * Baseline: a multi-threaded stream copy of a 512 MiB buffer (bytes read +
 * written per second) and a multi-threaded read of it; BW is the larger. A decode step reads every
 * weight once (the LM head is the embedding matrix), so the roofline is
 * batch * BW / weight_bytes tokens/s. Validation first: the decode logits
 * must be finite, and batch rows of identical sequences must be bitwise
 * equal to each other. At batch 16 a CPU is compute-bound, far below the
 * bandwidth roofline; the matmul GFLOP/s printed beside it shows that.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/gemma2.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"

#define PROMPT 4
#define MAX_MODELS 8

/* ---- stream copy baseline ---- */

struct copy_arg {
	char *dst;
	const char *src;
	size_t n;
};

static void *copy_main(void *p)
{
	struct copy_arg *a = p;
	memcpy(a->dst, a->src, a->n);
	return NULL;
}

struct read_arg {
	const uint64_t *src;
	size_t n;		/* words */
	uint64_t sum;
};

static void *read_main(void *p)
{
	struct read_arg *a = p;
	uint64_t s = 0;
	for (size_t i = 0; i < a->n; i++)
		s += a->src[i];
	a->sum = s;
	return NULL;
}

/* Best of 5 threaded reads of bytes (a sum of 64-bit words); bytes read per second. */
static double stream_read_bw(size_t bytes, int n_threads)
{
	uint64_t *a = malloc(bytes), sink = 0;
	size_t words = bytes / 8;
	double best = 0;
	pthread_t th[64];
	struct read_arg args[64];

	if (!a)
		return 0;
	memset(a, 1, bytes);
	if (n_threads > 64)
		n_threads = 64;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now_sec();
		size_t per = words / (size_t)n_threads;
		for (int i = 0; i < n_threads; i++) {
			args[i].src = a + (size_t)i * per;
			args[i].n = i == n_threads - 1 ? words - (size_t)i * per : per;
			pthread_create(&th[i], NULL, read_main, &args[i]);
		}
		for (int i = 0; i < n_threads; i++) {
			pthread_join(th[i], NULL);
			sink += args[i].sum;
		}
		double bw = (double)bytes / (now_sec() - t0);
		best = bw > best ? bw : best;
	}
	free(a);
	return sink == 1 ? 0 : best;	/* sink keeps the reads alive; never 1 */
}

/* Best of 5 copies of bytes with n_threads threads; bytes read + written per second. */
static double stream_copy_bw(size_t bytes, int n_threads)
{
	char *a = malloc(bytes), *b = malloc(bytes);
	double best = 0;
	pthread_t th[64];
	struct copy_arg args[64];

	if (!a || !b) {
		free(a);
		free(b);
		return 0;
	}
	memset(a, 1, bytes);
	memset(b, 2, bytes);
	if (n_threads > 64)
		n_threads = 64;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now_sec();
		size_t per = bytes / (size_t)n_threads;
		for (int i = 0; i < n_threads; i++) {
			args[i].dst = b + (size_t)i * per;
			args[i].src = a + (size_t)i * per;
			args[i].n = i == n_threads - 1 ? bytes - (size_t)i * per : per;
			pthread_create(&th[i], NULL, copy_main, &args[i]);
		}
		for (int i = 0; i < n_threads; i++)
			pthread_join(th[i], NULL);
		double bw = 2.0 * (double)bytes / (now_sec() - t0);
		best = bw > best ? bw : best;
	}
	free(a);
	free(b);
	return best;
}

/* ---- decode timing ---- */

static int bench_model(const char *dir, int n_threads, const int *batches, int n_batches,
		       int steps, double bw)
{
	struct be_opts bo = { .n_threads = n_threads };
	struct be be;
	struct ld_opts lo;
	struct ld_model *m = NULL;
	struct kv_cache *kv = NULL;
	struct g2_model *g = NULL;
	int max_b = 1, rc = 1;
	size_t wbytes = 0;

	for (int i = 0; i < n_batches; i++)
		max_b = batches[i] > max_b ? batches[i] : max_b;
	if (be_create("cpu", &bo, &be) < 0)
		return 1;
	ld_opts_default(&lo);
	double t0 = now_sec();
	if (ld_load(dir, &lo, &be, NULL, &m) < 0)
		goto out;
	for (int i = 0; i < m->n_tensors; i++)
		wbytes += m->tensors[i].nbytes;
	printf("model %s: %d layers, hidden %d, vocab %d, %.1f MB of weights (loaded in %.1f s)\n",
	       dir, m->cfg.num_hidden_layers, m->cfg.hidden_size, m->cfg.vocab_size, wbytes / 1e6,
	       now_sec() - t0);
	int ctx = PROMPT + steps + 2;
	int bs = KV_DEFAULT_BLOCK_SIZE, per_seq = (ctx + bs - 1) / bs;
	if (kv_cache_create(&be, &m->cfg, bs,
			    kv_bytes_per_block(&m->cfg, bs, be.ops->kv_dtype) * (size_t)(per_seq * max_b),
			    &kv) < 0)
		goto out;
	if (ld_g2_model_create(m, max_b * PROMPT, max_b, per_seq, &g) < 0)
		goto out;

	int vocab = m->cfg.vocab_size;
	int32_t *bt = calloc((size_t)max_b * per_seq, 4), *tok = calloc((size_t)max_b * PROMPT, 4);
	int32_t *pos = calloc((size_t)max_b * PROMPT, 4), *seq = calloc((size_t)max_b * PROMPT, 4);
	int32_t *rows = calloc((size_t)max_b * PROMPT, 4), *lens = calloc((size_t)max_b, 4);
	float *lg = malloc((size_t)max_b * vocab * sizeof(float));
	if (!bt || !tok || !pos || !seq || !rows || !lens || !lg)
		goto out_free;
	for (int bi = 0; bi < n_batches; bi++) {
		int B = batches[bi], n = 0, ok = 1;
		kv_reset(kv);
		if (kv_alloc_n(kv, B * per_seq, bt) < 0)
			goto out_free;
		/* prefill: B identical prompts in one step */
		for (int s = 0; s < B; s++) {
			for (int i = 0; i < PROMPT; i++, n++) {
				tok[n] = i == 0 ? 2 : 3 + (i * 7919) % (vocab - 3);
				pos[n] = i;
				seq[n] = s;
			}
			rows[s] = s * PROMPT + PROMPT - 1;
			lens[s] = PROMPT;
		}
		struct g2_batch b = { .n_tok = n, .tokens = tok, .positions = pos, .seq = seq,
				      .n_seqs = B, .block_tables = bt, .max_blocks = per_seq,
				      .ctx_lens = lens, .n_logits = B, .logit_rows = rows };
		if (g2_forward(g, kv, &b, lg) < 0)
			goto out_free;
		/* decode: 1 warm-up step, then steps timed */
		double t_start = 0;
		for (int st = 0; st <= steps; st++) {
			if (st == 1)
				t_start = now_sec();
			for (int s = 0; s < B; s++) {
				tok[s] = 3 + (st * 31) % (vocab - 3);
				pos[s] = PROMPT + st;
				seq[s] = s;
				rows[s] = s;
				lens[s] = PROMPT + st + 1;
			}
			b.n_tok = B;
			if (g2_forward(g, kv, &b, lg) < 0)
				goto out_free;
		}
		double dt = now_sec() - t_start;
		for (size_t i = 0; i < (size_t)B * vocab; i++)
			if (!isfinite(lg[i]))
				ok = 0;
		for (int s = 1; s < B; s++)
			if (memcmp(lg, lg + (size_t)s * vocab, (size_t)vocab * 4) != 0)
				ok = 0;
		if (!ok) {
			printf("  batch %d: VALIDATION FAILED (non-finite or rows differ)\n", B);
			goto out_free;
		}
		double tps = (double)B * steps / dt, roof = (double)B * bw / (double)wbytes;
		/* matmul work: 2 flops per parameter per token (the LM head once) */
		double gflops = 2.0 * (double)g2_n_params(&m->cfg) * tps / 1e9;
		printf("  batch %2d: %9.1f tokens/s  %8.2f ms/step  roofline %9.1f tokens/s  = %5.1f %% of roofline"
		       "  (%.1f GFLOP/s of matmul)\n",
		       B, tps, 1e3 * dt / steps, roof, 100.0 * tps / roof, gflops);
	}
	rc = 0;
out_free:
	free(bt);
	free(tok);
	free(pos);
	free(seq);
	free(rows);
	free(lens);
	free(lg);
out:
	g2_model_destroy(g);
	kv_cache_destroy(kv);
	ld_model_destroy(m);
	be_destroy(&be);
	return rc;
}

static int make_model(const char *mkmodel, const char *preset, const char *out, int sparse)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "'%s' --preset %s --out '%s' --seed 1 --tokenizer none%s >/dev/null",
		 mkmodel, preset, out, sparse ? " --sparse" : "");
	return system(cmd) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *models[MAX_MODELS];
	int n_models = 0, n_threads = (int)sysconf(_SC_NPROCESSORS_ONLN), steps = 0;
	int batches[8] = { 1, 16 }, n_batches = 2, rc = 0;
	char tmp[] = "/tmp/bench_decode.XXXXXX", tiny[256], b2[256], mk[512];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	int made = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--model") == 0 && i + 1 < argc && n_models < MAX_MODELS)
			models[n_models++] = argv[++i];
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			n_threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
			steps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
			char *s = argv[++i];
			n_batches = 0;
			for (char *t = strtok(s, ","); t && n_batches < 8; t = strtok(NULL, ","))
				batches[n_batches++] = atoi(t) > 0 ? atoi(t) : 1;
		} else {
			fprintf(stderr, "usage: bench_decode [--model DIR]... [--threads N] [--batch 1,16] [--steps N]\n");
			return 2;
		}
	}
	if (n_threads < 1)
		n_threads = 1;
	log_setup(stderr, 0, LOG_WARN);
	if (n_models == 0) {
		snprintf(mk, sizeof(mk), "%s/mkmodel", build);
		if (access(mk, X_OK) != 0)
			snprintf(mk, sizeof(mk), "build/mkmodel");
		if (access(mk, X_OK) != 0 || !mkdtemp(tmp)) {
			printf("bench_decode: no mkmodel (%s) to make models; pass --model DIR\n", mk);
			return 1;
		}
		made = 1;
		snprintf(tiny, sizeof(tiny), "%s/tiny", tmp);
		snprintf(b2, sizeof(b2), "%s/2b", tmp);
		if (make_model(mk, "tiny", tiny, 0) == 0)
			models[n_models++] = tiny;
		if (!(getenv("BENCH_DECODE_2B") && strcmp(getenv("BENCH_DECODE_2B"), "0") == 0) &&
		    make_model(mk, "2b", b2, 1) == 0)
			models[n_models++] = b2;
	}
	double cbw = stream_copy_bw((size_t)512 << 20, n_threads);
	double rbw = stream_read_bw((size_t)512 << 20, n_threads);
	double bw = rbw > cbw ? rbw : cbw;
	printf("baseline: 512 MiB on %d threads: stream copy %.2f GB/s (read + write), stream read %.2f GB/s;"
	       " roofline uses %.2f GB/s\n", n_threads, cbw / 1e9, rbw / 1e9, bw / 1e9);
	for (int i = 0; i < n_models; i++) {
		int st = steps > 0 ? steps : (strstr(models[i], "2b") ? 3 : 20);
		if (bench_model(models[i], n_threads, batches, n_batches, st, bw) != 0)
			rc = 1;
	}
	if (made) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_decode: could not remove %s\n", tmp);
	}
	return rc;
}
