/*
 * bench_gpu.c - the CUDA backend's model benchmarks: load, prefill,
 * decode, each beside a baseline measured in the same run (single kernels:
 * bench_kernels.c).
 *
 *   bench_gpu [--backend cuda|cpu] [--model DIR] [--preset 9b|2b|tiny|27b]
 *             [--batches 1,8,32,64] [--prompt 512] [--gen 128] [--sparse]
 *             [--skip-load] [--host-sample]
 *
 * Baselines: cuda: cudaMemcpyAsync D2D of 1 GiB (cudaEvent, median of 10) and
 * cudaMemcpy from 256 MiB of pinned host memory (median of 10); cpu: threaded
 * memcpy of 512 MiB (best of 5), also standing in for "h2d". A copy of N bytes
 * reads N and writes N: the memory traffic 2N / t is the roofline's BW (what
 * HBM moves per second; decode only reads, so reading W bytes takes W / BW);
 * read_pct is the lenient figure against N / t.
 * Roofline: a decode step reads every weight once (the LM head is the
 * embedding): roofline tok/s = B * BW / weight_bytes (the loaded arena).
 * Targets printed beside the figures: batch 1 >= 85 % of roofline, batch 64
 * >= 20x batch 1.
 * Model: --model DIR, else $BUILD/mkmodel --preset (9b on cuda, tiny on cpu)
 * in a temp dir under $TMPDIR or /tmp, removed at exit and on SIGINT/SIGTERM;
 * --sparse (forced by --skip-load or a disk too small for it) makes a file of
 * holes: all-zero weights, no disk figure, greedy tokens all 0, same decode
 * timing. A model just written loads from the page cache (dropping it needs
 * root): said so. Load: ld_load end to end (crc32c verify on) in GB/s of arena
 * bytes and as a ratio to the pinned H2D peak.
 * Decode per batch B: B prompts of --prompt seeded random ids (rows 0 and 1
 * the same), prefilled in chunks of <= 2048 tokens, then --gen steps of B
 * tokens, greedy on the device (be_ops.sample) unless --host-sample or the
 * backend cannot (logits come back, argmax on the host). Prefill tok/s = B *
 * prompt / prefill time; TTFT = first prefill forward to sequence 0's first
 * token (B = 1); decode tok/s = B * (gen - 1) / total time of steps 2..gen
 * (step 1 warms up); ms/step = median. The KV cache holds max(B) * (prompt +
 * gen) tokens; batches that do not fit in free memory are lowered, with a note.
 * Validation first (batch 4, 4 steps) and on every timed step: tokens in [0,
 * vocab), logits (host) or logprobs (device, untimed steps) finite, rows 0 and
 * 1 equal; a failure exits 1.
 * Output: readable lines as it runs; every figure also as "bench_gpu: <what>
 * key=value ..."; at the end the decode table and all those lines again.
 * No arguments and no CUDA device (make bench): one SKIP line, exit 0.
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/gemma2.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"
#include "bench/bench_util.h"

#define MAX_B 16
#define CHUNK 2048
#define REPS 10

static char g_tmp[512];			/* temporary model directory, "" when none */

/* rm -rf the temporary directory; fork/exec/waitpid: also safe in the signal handler. */
static void remove_tmp(void)
{
	pid_t p;

	if (!g_tmp[0])
		return;
	if ((p = fork()) == 0) {
		execl("/bin/rm", "rm", "-rf", g_tmp, (char *)NULL);
		_exit(127);
	}
	if (p > 0)
		waitpid(p, NULL, 0);
	g_tmp[0] = 0;
}

static void on_signal(int sig)
{
	remove_tmp();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- baselines ---- */

struct copy_arg { char *dst; const char *src; size_t n; };

static void *copy_main(void *p)
{
	struct copy_arg *a = p;
	memcpy(a->dst, a->src, a->n);
	return NULL;
}

/* Best of 5 threaded memcpys of 512 MiB: bytes copied (= read) per second. */
static double cpu_copy_bw(int n_threads)
{
	size_t bytes = (size_t)512 << 20, per;
	char *a = malloc(bytes), *b = malloc(bytes);
	pthread_t th[64];
	struct copy_arg args[64];
	double best = 0;

	n_threads = n_threads > 64 ? 64 : n_threads < 1 ? 1 : n_threads;
	per = bytes / (size_t)n_threads;
	if (a && b) {
		memset(a, 1, bytes);
		memset(b, 2, bytes);
	}
	for (int rep = 0; a && b && rep < 5; rep++) {
		double t0 = now_sec();
		for (int i = 0; i < n_threads; i++) {
			args[i] = (struct copy_arg){ b + i * per, a + i * per,
						     i == n_threads - 1 ? bytes - i * per : per };
			pthread_create(&th[i], NULL, copy_main, &args[i]);
		}
		for (int i = 0; i < n_threads; i++)
			pthread_join(th[i], NULL);
		best = fmax(best, (double)bytes / (now_sec() - t0));
	}
	free(a);
	free(b);
	return best;
}

#ifdef GR_HAVE_CUDA
/* D2D copy of 1 GiB (bytes copied / s) and pinned H2D of 256 MiB (bytes / s), medians. */
static int cuda_baselines(double *d2d, double *h2d)
{
	size_t n = (size_t)1 << 30, nh = (size_t)256 << 20;
	void *a = NULL, *b = NULL, *h = NULL;
	cudaStream_t st = NULL;
	cudaEvent_t e0 = NULL, e1 = NULL;
	double t[REPS], th[REPS], t0;
	float ms = 0;
	int rc = -1;

	if (!CU_OK(cudaSetDevice(0)) || !CU_OK(cudaMalloc(&a, n)) || !CU_OK(cudaMalloc(&b, n)) ||
	    !CU_OK(cudaHostAlloc(&h, nh, cudaHostAllocDefault)) || !CU_OK(cudaStreamCreate(&st)) ||
	    !CU_OK(cudaEventCreate(&e0)) || !CU_OK(cudaEventCreate(&e1)) ||
	    !CU_OK(cudaMemset(a, 1, n)) || !CU_OK(cudaMemset(b, 2, n)))
		goto out;
	memset(h, 3, nh);
	for (int r = -1; r < REPS; r++) {	/* r = -1: warm-up */
		if (!CU_OK(cudaEventRecord(e0, st)) ||
		    !CU_OK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, st)) ||
		    !CU_OK(cudaEventRecord(e1, st)) || !CU_OK(cudaEventSynchronize(e1)) ||
		    !CU_OK(cudaEventElapsedTime(&ms, e0, e1)))
			goto out;
		t0 = now_sec();
		if (!CU_OK(cudaMemcpy(a, h, nh, cudaMemcpyHostToDevice)))
			goto out;
		if (r >= 0) {
			th[r] = now_sec() - t0;
			t[r] = ms / 1e3;
		}
	}
	*d2d = (double)n / median(t, REPS);
	*h2d = (double)nh / median(th, REPS);
	rc = 0;
out:
	if (rc < 0)
		printf("bench_gpu: CUDA baseline failed: %s\n", cudaGetErrorString(cudaGetLastError()));
	cudaFree(a);
	cudaFree(b);
	cudaFreeHost(h);
	if (e0)
		cudaEventDestroy(e0);
	if (e1)
		cudaEventDestroy(e1);
	if (st)
		cudaStreamDestroy(st);
	return rc;
}
#endif

/* ---- decode ---- */

struct dec {
	struct g2_model *g;
	struct kv_cache *kv;
	int vocab, prompt, per_seq, max_tok, dev_sample, n_seq0;
	int32_t *tok, *pos, *seq, *rows, *rowseq, *lens, *bt, *prompts, *out, *cur, *seq0;
	float *logits;			/* host sampling only */
	double *step_s;
	struct be_sample_row *srow;
	struct be_sample_out *sout;
};

struct dec_res {
	int B;
	double prefill_tps, ttft_s, tps, ms_med, roof;
	int seq0_same;			/* sequence 0's tokens equal the first timed run's */
};

/* One forward; the n_logits greedy tokens into got[], checked. 0, -1 error, -2 invalid. */
static int dec_step(struct dec *d, struct g2_batch *b, int check_lp, int32_t *got)
{
	b->sample_rows = d->dev_sample ? d->srow : NULL;
	b->sample_out = d->dev_sample ? d->sout : NULL;
	for (int r = 0; d->dev_sample && r < b->n_logits; r++)
		d->srow[r] = (struct be_sample_row){ .top_p = 1, .rep = 1, .n_logprobs = check_lp - 1 };
	if (g2_forward(d->g, d->kv, b, d->logits) < 0)
		return -1;
	for (int r = 0; r < b->n_logits; r++) {
		const float *l = d->dev_sample ? NULL : d->logits + (size_t)r * d->vocab;
		float best = -INFINITY, lp = d->sout[r].logprob;
		int t = d->dev_sample ? d->sout[r].token : -1;
		for (int i = 0; l && i < d->vocab; i++) {
			if (!isfinite(l[i]))
				return printf("  logits row %d: [%d] = %g\n", r, i, (double)l[i]), -2;
			if (l[i] > best)
				best = l[i], t = i;
		}
		if (t < 0 || t >= d->vocab || (d->dev_sample && check_lp && !(lp <= 1e-3f)))
			return printf("  row %d: token %d, logprob %g: invalid\n", r, t, (double)lp), -2;
		got[r] = t;
	}
	return 0;
}

/* Batch B: chunked prefill, then gen steps. 0, -1 (error) or -2 (validation failed). */
static int dec_run(struct dec *d, int B, int gen, struct dec_res *res)
{
	struct g2_batch b = { .tokens = d->tok, .positions = d->pos, .seq = d->seq, .n_seqs = B,
			      .block_tables = d->bt, .max_blocks = d->per_seq, .ctx_lens = d->lens,
			      .logit_rows = d->rows };
	int P = d->prompt, s = 0, p = 0, rc;
	double t0 = now_sec(), t_dec = 0;

	kv_reset(d->kv);
	if (kv_alloc_n(d->kv, B * d->per_seq, d->bt) < 0)
		return -1;
	memset(d->lens, 0, (size_t)B * 4);
	*res = (struct dec_res){ .B = B, .seq0_same = 1 };
	while (s < B) {				/* sequences in order, split across chunks */
		int n = 0, nl = 0;
		while (n < d->max_tok && s < B) {
			int take = P - p < d->max_tok - n ? P - p : d->max_tok - n;
			for (int i = 0; i < take; i++, n++)
				d->tok[n] = d->prompts[(size_t)s * P + p + i], d->pos[n] = p + i, d->seq[n] = s;
			d->lens[s] = p += take;
			if (p == P) {
				d->rows[nl] = n - 1;
				d->rowseq[nl++] = s++;
				p = 0;
			}
		}
		b.n_tok = n;
		b.n_logits = nl;
		if ((rc = dec_step(d, &b, 1, d->cur + B)) < 0)
			return rc;
		for (int r = 0; r < nl; r++) {
			d->cur[d->rowseq[r]] = d->out[(size_t)d->rowseq[r] * (gen + 1)] = d->cur[B + r];
			res->ttft_s = d->rowseq[r] == 0 ? now_sec() - t0 : res->ttft_s;
		}
	}
	res->prefill_tps = (double)B * P / (now_sec() - t0);
	for (int st = 0; st < gen; st++) {
		for (int i = 0; i < B; i++)
			d->tok[i] = d->cur[i], d->pos[i] = P + st, d->seq[i] = d->rows[i] = i,
			d->lens[i] = P + st + 1;
		b.n_tok = b.n_logits = B;
		t0 = now_sec();
		if ((rc = dec_step(d, &b, st == 0, d->cur)) < 0)
			return rc;
		d->step_s[st] = now_sec() - t0;
		t_dec += st > 0 || gen == 1 ? d->step_s[st] : 0;
		for (int i = 0; i < B; i++)
			d->out[(size_t)i * (gen + 1) + st + 1] = d->cur[i];
	}
	if (B >= 2 && memcmp(d->out, d->out + gen + 1, (size_t)(gen + 1) * 4) != 0)
		return printf("  batch %d: rows 0 and 1 share a prompt, their tokens differ\n", B), -2;
	res->tps = (double)B * (gen > 1 ? gen - 1 : 1) / t_dec;
	res->ms_med = 1e3 * (gen > 1 ? median(d->step_s + 1, gen - 1) : d->step_s[0]);
	if (d->n_seq0 == 0)			/* the first timed run keeps its sequence 0 */
		memcpy(d->seq0, d->out, (size_t)(d->n_seq0 = gen + 1) * 4);
	else
		res->seq0_same = memcmp(d->seq0, d->out, (size_t)d->n_seq0 * 4) == 0;
	return 0;
}

/* Loads dir (timed unless cache is NULL), validates, runs every batch size. 0 or 1. */
static int run_model(struct be *be, const char *dir, const char *label, double bw, double h2d,
		     const char *h2d_key, const char *cache, int *batches, int nb, int prompt,
		     int gen, int host_sample)
{
	struct ld_opts lo;
	struct ld_progress prog = { 0 };
	struct ld_model *m = NULL;
	struct dec d = { 0 };
	struct dec_res res[MAX_B], vr;
	int rc = 1, maxb = 2, nres = 0, v;
	size_t freeb = 0, total = 0, kvb, mt;
	double t0 = now_sec(), tl, wb;
	char x1[32];

	ld_opts_default(&lo);
	if (ld_load(dir, &lo, be, &prog, &m) < 0)
		return printf("bench_gpu: FAIL cannot load %s\n", dir), 1;
	tl = now_sec() - t0;
	wb = (double)m->arena_bytes;
	printf("model %s: %d layers, hidden %d, vocab %d, %.2f GB of weights\n", label,
	       m->cfg.num_hidden_layers, m->cfg.hidden_size, m->cfg.vocab_size, wb / 1e9);
	if (cache) {
		printf("  load: %.2f GB in %.2f s = %.2f GB/s; load / %s peak = %.2f; page cache: %s\n"
		       "  load stages:", wb / 1e9, tl, wb / tl / 1e9, strcmp(h2d_key, "memcpy") ?
		       "cudaMemcpy pinned" : "memcpy", wb / tl / h2d, cache);
		for (int i = 0; i < LD_N_STAGES; i++)
			printf(" %s %.2f s", ld_stage_name[i], prog.stage_s[i]);
		printf("\n");
		rec("load model=%s bytes=%.0f s=%.2f gbps=%.2f load_vs_%s=%.2f page_cache=%s",
		    label, wb, tl, wb / tl / 1e9, h2d_key, wb / tl / h2d, cache);
	}
	d.vocab = m->cfg.vocab_size;
	d.prompt = prompt;
	for (int i = 0; i < nb; i++)
		maxb = batches[i] > maxb ? batches[i] : maxb;
	d.per_seq = (prompt + gen + KV_DEFAULT_BLOCK_SIZE - 1) / KV_DEFAULT_BLOCK_SIZE;
	kvb = kv_bytes_per_block(&m->cfg, KV_DEFAULT_BLOCK_SIZE, be->ops->kv_dtype) * d.per_seq;
	d.max_tok = maxb * prompt < CHUNK ? maxb * prompt : CHUNK;
	d.max_tok = d.max_tok < maxb ? maxb : d.max_tok;
	if (be->ops->mem_info(be->ctx, &freeb, &total) == 0) {	/* 1 GiB for the backend's scratch */
		size_t fixed = g2_scratch_bytes(&m->cfg, d.max_tok, maxb, d.per_seq) +
			       g2_sampling_bytes(maxb, 1) + ((size_t)1 << 30);
		int fit = freeb > fixed ? (int)((freeb - fixed) / kvb) : 0;
		if (fit < maxb) {
			printf("  note: %.1f GB free holds the KV cache of %d sequences of %d tokens"
			       " (%.3f GB each): batches above %d lowered\n", freeb / 1e9, fit,
			       prompt + gen, kvb / 1e9, fit);
			if (fit < 2)
				goto out;
			for (int i = 0; i < nb; i++)
				batches[i] = batches[i] > fit ? fit : batches[i];
			maxb = fit;
		}
	}
	if (ld_g2_model_create(m, d.max_tok, maxb, d.per_seq, &d.g) < 0 ||
	    kv_cache_create(be, &m->cfg, KV_DEFAULT_BLOCK_SIZE, kvb * maxb, &d.kv) < 0)
		goto out;
	d.dev_sample = !host_sample && be->ops->sample && g2_model_enable_sampling(d.g, maxb, 0) == 0;
	printf("  greedy sampling %s; KV cache %d blocks (%.2f GB); prefill chunks of %d tokens\n",
	       d.dev_sample ? "on the device (be_ops.sample)" : "on the host (logits downloaded)",
	       kv_n_blocks(d.kv), kvb * maxb / 1e9, d.max_tok);
	mt = (size_t)d.max_tok;		/* one block for every int32 array, carved below */
	d.tok = calloc(7 * mt + (size_t)maxb * (3 + d.per_seq + prompt + gen) + gen + 1, 4);
	d.step_s = calloc((size_t)gen, sizeof(double));
	d.srow = calloc((size_t)maxb, sizeof(*d.srow)), d.sout = calloc((size_t)maxb, sizeof(*d.sout));
	d.logits = d.dev_sample ? NULL : malloc((size_t)maxb * d.vocab * sizeof(float));
	if (!d.tok || !d.step_s || !d.srow || !d.sout || (!d.dev_sample && !d.logits))
		goto out;
	d.pos = d.tok + mt, d.seq = d.pos + mt, d.rows = d.seq + mt, d.rowseq = d.rows + mt;
	d.cur = d.rowseq + mt, d.lens = d.cur + 2 * mt + maxb, d.bt = d.lens + maxb;
	d.prompts = d.bt + (size_t)maxb * d.per_seq, d.out = d.prompts + (size_t)maxb * prompt;
	d.seq0 = d.out + (size_t)maxb * (gen + 1);
	for (int s = 0; s < maxb; s++) {	/* seeded per sequence; row 1 = row 0 */
		struct rng r;
		rng_seed(&r, 1000 + (uint64_t)(s == 1 ? 0 : s));
		for (int i = 0; i < prompt; i++)
			d.prompts[(size_t)s * prompt + i] = (int32_t)(rng_next(&r) % (uint64_t)d.vocab);
	}
	v = dec_run(&d, maxb < 4 ? maxb : 4, gen < 4 ? gen : 4, &vr);	/* validation first */
	rec("validation decode batch=%d steps=%d tokens_in_range %s rows0_1_equal %s", maxb < 4 ? maxb : 4,
	    gen < 4 ? gen : 4, d.dev_sample ? "logprobs_finite" : "logits_finite",
	    v == 0 ? "PASS" : "FAIL");
	if (v < 0)
		goto out;
	for (int i = 0; i < nb; i++) {
		struct dec_res *r = &res[nres];
		if (i > 0 && batches[i] == batches[i - 1])
			continue;
		if ((v = dec_run(&d, batches[i], gen, r)) < 0) {
			rec("decode batch=%d FAIL %s", batches[i], v == -2 ? "validation" : "error");
			goto out;
		}
		r->roof = r->B * 2 * bw / wb;	/* traffic 2N/t (see the top comment) */
		if (r->B == 1)
			rec("ttft batch=1 prompt=%d ms=%.2f", prompt, r->ttft_s * 1e3);
		rec("prefill batch=%d prompt=%d tok/s=%.1f", r->B, prompt, r->prefill_tps);
		snprintf(x1, sizeof(x1), "%.2f", r->tps / res[0].tps);
		rec("decode batch=%d steps=%d tok/s=%.1f ms_per_step=%.3f roofline_tok/s=%.1f "
		    "roofline_pct=%.1f read_pct=%.1f vs_batch1=%s seq0_same_as_first=%s", r->B,
		    gen > 1 ? gen - 1 : 1, r->tps, r->ms_med, r->roof, 100 * r->tps / r->roof,
		    200 * r->tps / r->roof, res[0].B == 1 ? x1 : "n/a", r->seq0_same ? "yes" : "no");
		nres++;
	}
	rc = 0;
out:
	printf("\n=== bench_gpu decode: model %s (%.2f GB), prompt %d, gen %d, copy BW %.1f GB/s traffic;"
	       " tok/s = B x (gen-1) / time of steps 2..gen; ms/step = median; targets: batch 1 >= 85 %%"
	       " of roofline, batch 64 >= 20x batch 1%s\n", label, wb / 1e9, prompt, gen, 2 * bw / 1e9,
	       rc ? "; STOPPED (see above)" : "");
	printf("  %5s | %13s | %9s | %12s | %8s | %14s | %10s | %9s\n", "batch", "prefill tok/s",
	       "TTFT ms", "decode tok/s", "ms/step", "roofline tok/s", "% roofline", "x batch 1");
	for (int i = 0; i < nres; i++)
		printf("  %5d | %13.1f | %9.2f | %12.1f | %8.3f | %14.1f | %10.1f | %9.2f\n", res[i].B,
		       res[i].prefill_tps, res[i].ttft_s * 1e3, res[i].tps, res[i].ms_med, res[i].roof,
		       100 * res[i].tps / res[i].roof, res[0].B == 1 ? res[i].tps / res[0].tps : 0);
	for (int i = 0; i < nres; i++) {
		if (res[i].B == 1)
			rec("target batch1_roofline_pct>=85 value=%.1f %s", 100 * res[i].tps / res[i].roof,
			    res[i].tps >= 0.85 * res[i].roof ? "MET" : "NOT_MET");
		if (res[i].B == 64 && res[0].B == 1)
			rec("target batch64_vs_batch1>=20 value=%.2f %s", res[i].tps / res[0].tps,
			    res[i].tps >= 20 * res[0].tps ? "MET" : "NOT_MET");
	}
	free(d.tok), free(d.step_s), free(d.srow), free(d.sout), free(d.logits);
	g2_model_destroy(d.g);
	kv_cache_destroy(d.kv);
	ld_model_destroy(m);
	return rc;
}

/* ---- model making ---- */

/* mkmodel --preset preset --out dir [--sparse] (its stdout to /dev/null); 0 or -1. */
static int make_model(const char *mk, const char *preset, const char *dir, int sparse)
{
	char *argv[] = { (char *)mk, "--preset", (char *)preset, "--out", (char *)dir, "--seed", "1",
			 "--tokenizer", "none", sparse ? "--sparse" : NULL, NULL };
	int st = 0, fd;
	pid_t p = fork();

	if (p == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) >= 0)
			dup2(fd, 1);
		execv(mk, argv);
		_exit(127);
	}
	if (p < 0 || waitpid(p, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* $BUILD/bench/bench_gpu -> $BUILD/mkmodel, else $BUILD/mkmodel, else build/mkmodel. */
static void find_mkmodel(const char *self, char *out, size_t cap)
{
	const char *slash = strrchr(self, '/'), *b = getenv("BUILD");

	if (slash) {
		snprintf(out, cap, "%.*s/../mkmodel", (int)(slash - self), self);
		if (access(out, X_OK) == 0)
			return;
	}
	snprintf(out, cap, "%s/mkmodel", b ? b : "build");
	if (access(out, X_OK) != 0)
		snprintf(out, cap, "build/mkmodel");
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_gpu [--backend cuda|cpu] [--model DIR] [--preset 9b|2b|tiny|27b]\n"
		"         [--batches 1,8,32,64] [--prompt 512] [--gen 128] [--sparse] [--skip-load]\n"
		"         [--host-sample]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *backend = "cuda", *model = NULL, *preset = NULL, *cache, *v;
	const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int batches[MAX_B] = { 1, 8, 32, 64 }, nb = 4, prompt = 512, gen = 128, sparse = 0;
	int skip_load = 0, host_sample = 0, rc = 0, is_cuda, have = 0;
	int n_cpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	double bw = 0, h2d = 0, need, t0;
	char msg[256] = "this binary was built without CUDA (CUDA=0 or no nvcc)", mk[600], dir[600];
	struct be be = { 0 };
	struct be_opts bo = { .n_threads = 0, .device = 0 };
	struct g2_config c;
	struct statvfs sv;

	g_bench = "bench_gpu";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--sparse") == 0)
			sparse = 1;
		else if (strcmp(a, "--skip-load") == 0)
			skip_load = 1;
		else if (strcmp(a, "--host-sample") == 0)
			host_sample = 1;
		else if (!v)
			return usage();
		else if (i++, strcmp(a, "--backend") == 0)
			backend = v;
		else if (strcmp(a, "--model") == 0)
			model = v;
		else if (strcmp(a, "--preset") == 0)
			preset = v;
		else if (strcmp(a, "--prompt") == 0)
			prompt = atoi(v);
		else if (strcmp(a, "--gen") == 0)
			gen = atoi(v);
		else if (strcmp(a, "--batches") == 0)
			for (nb = 0; *v && nb < MAX_B; v += *v == ',')
				batches[nb++] = (int)strtol(v, (char **)&v, 10);
		else
			return usage();
	}
	is_cuda = strcmp(backend, "cuda") == 0;
	for (int i = 0; i < nb; i++)
		if (batches[i] < 1 || batches[i] > 4096 || (i > 0 && batches[i] < batches[i - 1]))
			return fprintf(stderr, "bench_gpu: --batches: ascending sizes in 1..4096\n"), 2;
	if ((!is_cuda && strcmp(backend, "cpu") != 0) || prompt < 1 || gen < 1 || nb < 1)
		return usage();
	log_setup(stderr, 0, LOG_WARN);
	setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef GR_HAVE_CUDA
	have = !is_cuda || cuda_info(msg, sizeof(msg)) == 0;
#else
	have = !is_cuda;
#endif
	if (!have && argc == 1)
		return printf("bench_gpu: SKIP no CUDA device (use --backend cpu to try it on the CPU)\n"), 0;
	if (!have)
		return printf("bench_gpu: FAIL --backend cuda: %s\n", msg), 1;
	if (!is_cuda)
		rec("device name=\"cpu\" threads=%d", n_cpu);
	preset = preset ? preset : is_cuda ? "9b" : "tiny";

	/* 1. baselines */
#ifdef GR_HAVE_CUDA
	if (is_cuda && cuda_baselines(&bw, &h2d) < 0)
		return printf("bench_gpu: FAIL baselines\n"), 1;
#endif
	if (!is_cuda)
		h2d = bw = cpu_copy_bw(n_cpu);
	rec("baseline copy_read_gbps=%.1f copy_traffic_gbps=%.1f %s_gbps=%.2f (copy: %s)", bw / 1e9,
	    2 * bw / 1e9, is_cuda ? "h2d_pinned" : "memcpy", h2d / 1e9,
	    is_cuda ? "cudaMemcpyAsync D2D 1 GiB, median of 10" : "threaded memcpy 512 MiB, best of 5");
	if (be_create(backend, &bo, &be) < 0)
		return printf("bench_gpu: FAIL cannot create the %s backend\n", backend), 1;

	/* 2. model, load, decode */
	if (!model) {
		if (g2_config_preset(&c, preset) < 0) {
			printf("bench_gpu: FAIL unknown preset %s\n", preset);
			rc = 1;
			goto out;
		}
		need = 2.0 * (double)g2_n_params(&c) + 256e6;
		find_mkmodel(argv[0], mk, sizeof(mk));
		snprintf(g_tmp, sizeof(g_tmp), "%s/bench_gpu.XXXXXX", base);
		if (access(mk, X_OK) != 0 || !mkdtemp(g_tmp)) {
			printf("bench_gpu: FAIL no mkmodel (%s) or no temp dir under %s; pass --model DIR\n",
			       mk, base);
			g_tmp[0] = 0;
			rc = 1;
			goto out;
		}
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		if (!sparse && !skip_load && statvfs(g_tmp, &sv) == 0 &&
		    (double)sv.f_bavail * sv.f_frsize < need) {
			printf("note: %.1f GB free under %s, the %s model needs %.1f GB: made --sparse\n",
			       (double)sv.f_bavail * sv.f_frsize / 1e9, base, preset, need / 1e9);
			sparse = 1;
		}
		sparse |= skip_load;
		snprintf(dir, sizeof(dir), "%s/model", g_tmp);
		t0 = now_sec();
		if (make_model(mk, preset, dir, sparse) < 0) {
			printf("bench_gpu: FAIL %s --preset %s --out %s\n", mk, preset, dir);
			rc = 1;
			goto out;
		}
		printf("model: mkmodel --preset %s%s in %.1f s%s\n", preset, sparse ? " --sparse" : "",
		       now_sec() - t0, sparse ? "; sparse: reads as holes (all-zero weights): the load"
		       " is no disk or page-cache figure, greedy tokens are all 0" : "");
		model = dir;
	}
	cache = skip_load ? NULL : model != dir ? "unknown_model_dir" : sparse ?
		"sparse_file_holes" : "likely_warm_file_just_written";
	rc |= run_model(&be, model, model == dir ? preset : model, bw, h2d,
			is_cuda ? "h2d_pinned" : "memcpy", cache, batches, nb, prompt, gen, host_sample);
out:
	remove_tmp();
	be_destroy(&be);
	rec("result %s", rc ? "FAIL" : "PASS");
	rec_summary();
	return rc ? 1 : 0;
}
