/*
 * bench_gpu.c - the CUDA backend's benchmarks (issue 6): model load, prefill,
 * decode and single kernels, each beside a baseline measured in the same run.
 *
 *   bench_gpu [--backend cuda|cpu] [--model DIR] [--preset 9b|2b|tiny|27b]
 *             [--batches 1,8,32,64] [--prompt 512] [--gen 128] [--sparse]
 *             [--skip-load] [--kernels|--no-kernels] [--host-sample]
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
 * Kernels (cuda; --kernels on cpu), each first checked against the CPU backend
 * on a small size with the tolerances of tests/kernels/: matmul with a 9b MLP
 * weight (14336 x 3584 bf16) at n_tok 1 and 512 (GB/s of weights, TFLOP/s),
 * attention decode over 4096 positions (GB/s of KV), sample op on 64 x 256000.
 * Output: readable lines as it runs; every figure also as "bench_gpu: <what>
 * key=value ..."; at the end the decode table and all those lines again.
 * No arguments and no CUDA device (make bench): one SKIP line, exit 0.
 */
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
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
#ifdef GR_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#define MAX_B 16
#define CHUNK 2048
#define REPS 10
#define PAT ((size_t)1 << 20)		/* random pattern repeated to fill big buffers */

static char g_tmp[512];			/* temporary model directory, "" when none */
static char g_lines[96][320];		/* the "bench_gpu:" lines, for the summary */
static int g_n_lines;

/* Prints "bench_gpu: ..." now and keeps it for the summary. */
static void rec(const char *fmt, ...)
{
	char *l = g_lines[g_n_lines < 96 ? g_n_lines++ : 95];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(l, sizeof(g_lines[0]), fmt, ap);
	va_end(ap);
	printf("bench_gpu: %s\n", l);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_dbl);
	return n <= 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

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
#define CU_OK(x) ((x) == cudaSuccess)

/* Records the device; -1 (msg says why) when the runtime sees none. */
static int cuda_info(char *msg, size_t cap)
{
	struct cudaDeviceProp p;
	int n = 0, drv = 0, rt = 0, clk = 0, bus = 0;
	cudaError_t e = cudaGetDeviceCount(&n);

	if (e != cudaSuccess || n <= 0 || !CU_OK(e = cudaGetDeviceProperties(&p, 0))) {
		snprintf(msg, cap, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) :
			 "cudaGetDeviceCount: 0 devices");
		return -1;
	}
	cudaDriverGetVersion(&drv);
	cudaRuntimeGetVersion(&rt);
	cudaDeviceGetAttribute(&clk, cudaDevAttrMemoryClockRate, 0);	/* kHz */
	cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, 0);	/* bits */
	rec("device name=\"%s\" cc=%d.%d sms=%d mem_gib=%.1f l2_mib=%.0f driver=%d runtime=%d "
	    "spec_peak_gbps=%.0f", p.name, p.major, p.minor, p.multiProcessorCount,
	    p.totalGlobalMem / 1073741824.0, p.l2CacheSize / 1048576.0, drv, rt,
	    2.0 * clk * 1e3 * (bus / 8) / 1e9);
	return 0;
}

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

/* ---- kernels ---- */

/* Device buffer of n bytes; the first min(n, hn) bytes from h, the rest repeats them. */
static void *dev_fill(struct be *be, size_t n, const void *h, size_t hn)
{
	void *d = be->ops->alloc(be->ctx, n ? n : 4);

	for (size_t off = 0; d && h && off < n; off += hn)
		if (be->ops->copy_h2d(be->ctx, (char *)d + off, h, n - off < hn ? n - off : hn) < 0) {
			be->ops->free(be->ctx, d);
			return NULL;
		}
	return d;
}

static void dev_free(struct be *be, void *d)
{
	if (d)
		be->ops->free(be->ctx, d);
}

/* n normal values * sd, stored at dst in dt (if dst) and rounded in place to what dt holds. */
static float *rand_vec(struct rng *r, size_t n, float sd, void *dst, enum be_dtype dt)
{
	float *v = malloc((n ? n : 1) * sizeof(float));

	for (size_t i = 0; v && i < n; i++) {
		v[i] = (float)rng_normal(r) * sd;
		if (dst && dt == BE_F32)
			((float *)dst)[i] = v[i];
		else if (dst && dt == BE_BF16)
			v[i] = bf16_to_f32(((bf16 *)dst)[i] = f32_to_bf16(v[i]));
		else if (dst)
			v[i] = f16_to_f32(((f16 *)dst)[i] = f32_to_f16(v[i]));
	}
	return v;
}

/* |got - ref| <= atol + rtol * scale (|ref| when scale is NULL) for all n. */
static int within(const float *got, const float *ref, const double *scale, size_t n, double atol,
		  double rtol, double *maxd)
{
	int ok = 1;

	*maxd = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - ref[i]);
		ok &= d <= atol + rtol * (scale ? scale[i] : fabs((double)ref[i]));
		*maxd = isnan(d) ? INFINITY : fmax(*maxd, d);
	}
	return ok;
}

/* One timed op: matmul (kind 0, cycling over nw weights), attention (1) or sample (2). */
struct op_arg {
	struct be *be;
	int kind, nw, iw, n_tok, n_out, n_in;
	void *y, *x, *w[4];
	enum be_dtype dt;
	struct be_attn a;
};

static int op_run(struct op_arg *o)
{
	const struct be_ops *p = o->be->ops;

	if (o->kind == 0)
		return p->matmul(o->be->ctx, o->y, o->x, o->w[o->iw++ % o->nw], BE_BF16, o->n_tok,
				 o->n_out, o->n_in);
	if (o->kind == 1)
		return p->attention(o->be->ctx, o->y, o->x, o->w[0], o->w[1], o->dt, &o->a);
	return p->sample(o->be->ctx, o->y, o->x, o->w[0], o->w[1], o->n_tok, o->n_out);
}

/* Seconds per op (-1 on error): median of rounds of k ops and a sync, k sized to ~20 ms. */
static double time_op(struct op_arg *o)
{
	double v[5], t0 = now_sec(), t1;
	int k, rounds;

	if (op_run(o) < 0 || o->be->ops->sync(o->be->ctx) < 0)
		return -1;
	t1 = now_sec() - t0;
	k = t1 >= 0.02 ? 1 : t1 < 1e-4 ? 200 : (int)(0.02 / t1) + 1;
	rounds = t1 > 0.5 ? 2 : 5;
	for (int r = 0; r < rounds; r++) {
		t0 = now_sec();
		for (int i = 0; i < k; i++)
			if (op_run(o) < 0)
				return -1;
		if (o->be->ops->sync(o->be->ctx) < 0)
			return -1;
		v[r] = (now_sec() - t0) / k;
	}
	return median(v, rounds);
}

static void op_free(struct op_arg *o)
{
	dev_free(o->be, o->x);
	dev_free(o->be, o->y);
	for (int i = 0; i < 4; i++)
		dev_free(o->be, o->w[i]);
	o->x = o->y = o->w[0] = o->w[1] = o->w[2] = o->w[3] = NULL;
}

/* matmul: 3x40x96 checked against ref (tolerance 1e-5 + 2^-8 sum|x w|, x is rounded to
 * bf16), then y (n_tok, 14336) = x W^T with W bf16 (14336, 3584), the 9b gate/up shape;
 * nw copies of W so that the reads come from DRAM, not L2. */
static int kern_matmul(struct be *be, struct be *ref, struct rng *r, int nw)
{
	enum { VT = 3, VO = 40, VI = 96, NO = 14336, NI = 3584 };
	bf16 wb[VO * VI], *pat = malloc(PAT * sizeof(bf16));
	float y_ref[VT * VO], y_got[VT * VO], *x = rand_vec(r, (size_t)512 * NI, 1, NULL, BE_F32);
	float *w = rand_vec(r, VO * VI, 0.05f, wb, BE_BF16), *p = rand_vec(r, PAT, .02f, pat, BE_BF16);
	double scale[VT * VO] = { 0 }, maxd = 0, s;
	struct op_arg o = { .be = be, .kind = 0, .nw = nw, .n_out = NO, .n_in = NI };
	int ok = x && w && p && pat;

	for (int i = 0; ok && i < VT * VO * VI; i++)
		scale[i / VI] += fabs((double)x[i / (VO * VI) * VI + i % VI] * w[i % (VO * VI)]);
	o.x = dev_fill(be, sizeof(float) * VT * VI, x, sizeof(float) * VT * VI);
	o.w[0] = dev_fill(be, sizeof(wb), wb, sizeof(wb));
	o.y = dev_fill(be, sizeof(y_got), NULL, 0);
	ok = ok && o.x && o.w[0] && o.y &&
	     ref->ops->matmul(ref->ctx, y_ref, x, wb, BE_BF16, VT, VO, VI) == 0 &&
	     be->ops->matmul(be->ctx, o.y, o.x, o.w[0], BE_BF16, VT, VO, VI) == 0 &&
	     be->ops->copy_d2h(be->ctx, y_got, o.y, sizeof(y_got)) == 0 &&
	     within(y_got, y_ref, scale, VT * VO, 1e-5, 1.0 / 256, &maxd);
	rec("kernel_check matmul %dx%dx%d bf16 max_abs_diff=%.3g %s", VT, VO, VI, maxd,
	    ok ? "PASS" : "FAIL");
	op_free(&o);
	for (int i = 0; ok && i < nw; i++)
		ok = (o.w[i] = dev_fill(be, (size_t)NO * NI * 2, pat, PAT * sizeof(bf16))) != NULL;
	ok = ok && (o.x = dev_fill(be, (size_t)512 * NI * 4, x, (size_t)512 * NI * 4)) &&
	     (o.y = dev_fill(be, (size_t)512 * NO * 4, NULL, 0));
	for (o.n_tok = 1; ok && o.n_tok <= 512; o.n_tok += 511) {
		if (!(ok = (s = time_op(&o)) > 0))
			break;
		rec("kernel matmul n_tok=%d n_out=%d n_in=%d dtype=bf16 weight_gbps=%.1f tflops=%.2f "
		    "us=%.1f", o.n_tok, NO, NI, 2.0 * NO * NI / s / 1e9,
		    2.0 * o.n_tok * NO * NI / s / 1e12, s * 1e6);
	}
	if (!ok)
		rec("kernel matmul FAIL");
	op_free(&o);
	free(pat), free(x), free(w), free(p);
	return !ok;
}

/* attention decode: heads 4/2, dim 32, contexts 40/17/70 checked against ref (the same
 * cache values in F32; 5e-5 + 2e-4 |ref|), then the 9b shape (heads 16/8, dim 256, soft-cap
 * 50) over 4096 positions for 1 and n_big sequences; caches in be's kv dtype, blocks
 * scattered, K and V repeat random patterns. */
static int kern_attention(struct be *be, struct be *ref, struct rng *r, int n_big)
{
	enum be_dtype dt = be->ops->kv_dtype;
	size_t es = dt == BE_F32 ? 4 : 2;
	char *hp = malloc(2 * PAT * es);
	float *pat = hp ? rand_vec(r, 2 * PAT, 1, hp, dt) : NULL;
	struct op_arg o = { .be = be, .kind = 1, .dt = dt };
	int ok = pat != NULL;

	for (int ph = 0; ok && ph < 2; ph++) {
		int nh = ph ? 16 : 4, nkv = ph ? 8 : 2, hd = ph ? 256 : 32, ns = ph ? n_big : 3;
		int mb = ph ? 4096 / 16 : 5, nblk = ns * mb, kvd = nkv * hd, qd = nh * hd;
		size_t cn = (size_t)nblk * 16 * kvd;
		int32_t pos[16], seq[16], *bt = calloc((size_t)nblk, 4);
		float *q = rand_vec(r, (size_t)ns * qd, 2, NULL, BE_F32), got[3 * 128], want[3 * 128];
		void *dpos = NULL, *dseq = NULL, *dbt = NULL;
		double maxd = 0, s = 0;

		for (int i = 0; bt && i < nblk; i++) {	/* a random permutation of the blocks */
			int j = (int)(rng_next(r) % (uint64_t)(i + 1));
			bt[i] = bt[j];
			bt[j] = i;
		}
		for (int i = 0; i < ns; i++)
			seq[i] = i, pos[i] = (ph ? 4096 : i == 0 ? 40 : i == 1 ? 17 : 70) - 1;
		o.a = (struct be_attn){ .n_tok = ns, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd,
					.block_size = 16, .max_blocks = mb, .scale = 1 / sqrtf((float)hd),
					.softcap = 50 };
		ok = bt && q && (o.w[0] = dev_fill(be, cn * es, hp, PAT * es)) &&
		     (o.w[1] = dev_fill(be, cn * es, hp + PAT * es, PAT * es)) &&
		     (o.x = dev_fill(be, (size_t)ns * qd * 4, q, (size_t)ns * qd * 4)) &&
		     (o.y = dev_fill(be, (size_t)ns * qd * 4, NULL, 0)) &&
		     (dpos = dev_fill(be, (size_t)ns * 4, pos, (size_t)ns * 4)) &&
		     (dseq = dev_fill(be, (size_t)ns * 4, seq, (size_t)ns * 4)) &&
		     (dbt = dev_fill(be, (size_t)nblk * 4, bt, (size_t)nblk * 4));
		if (ok && ph == 0) {
			struct be_attn ra = o.a;
			ra.pos = pos, ra.seq = seq, ra.block_tables = bt;
			o.a.pos = dpos, o.a.seq = dseq, o.a.block_tables = dbt;
			ok = ref->ops->attention(ref->ctx, want, q, pat, pat + PAT, BE_F32, &ra) == 0 &&
			     op_run(&o) == 0 && be->ops->copy_d2h(be->ctx, got, o.y, sizeof(got)) == 0 &&
			     within(got, want, NULL, (size_t)ns * qd, 5e-5, 2e-4, &maxd);
			rec("kernel_check attention decode heads=4/2 dim=32 kv_dtype=%d max_abs_diff=%.3g %s",
			    (int)dt, maxd, ok ? "PASS" : "FAIL");
		}
		o.a.pos = dpos, o.a.seq = dseq, o.a.block_tables = dbt;
		for (int n = 1; ok && ph && n <= ns; n = n == 1 && ns > 1 ? ns : ns + 1) {
			o.a.n_tok = n;
			if (!(ok = (s = time_op(&o)) > 0))
				break;
			rec("kernel attention_decode seqs=%d ctx=4096 heads=%d/%d dim=%d kv_dtype=%d "
			    "kv_gbps=%.1f us=%.1f", n, nh, nkv, hd, (int)dt,
			    2.0 * n * 4096 * kvd * es / s / 1e9, s * 1e6);
		}
		op_free(&o);
		dev_free(be, dpos), dev_free(be, dseq), dev_free(be, dbt);
		free(bt), free(q);
	}
	if (!ok)
		rec("kernel attention_decode FAIL");
	free(hp), free(pat);
	return !ok;
}

/* sample: 8 rows x 300 (greedy, temperature 0.8 with top_k, top_p, min_p, logprobs) checked
 * against ref (same tokens and top ids, logprobs within 1e-4), then 64 rows x 256000,
 * greedy and temperature 1 + top_p 0.9. */
static int kern_sample(struct be *be, struct be *ref, struct rng *r)
{
	enum { VN = 8, VV = 300, BN = 64, BV = 256000 };
	struct be_sample_row rows[BN] = { { 0 } };
	struct be_sample_out ro[VN], go[VN];
	struct be_sample_pair pair = { 0 };
	float *l = rand_vec(r, PAT, 2, NULL, BE_F32);
	struct op_arg o = { .be = be, .kind = 2 };
	int ok = l != NULL;
	double s = 0;

	for (int i = 0; i < VN; i++)
		rows[i] = (struct be_sample_row){ .temperature = i % 5 ? 0.8 : 0, .top_p =
			i % 5 == 2 ? 0.9 : 1, .min_p = i % 5 == 3 ? 0.1 : 0, .u = rng_uniform(r),
			.rep = 1, .top_k = i % 5 == 1 ? 20 : 0, .n_logprobs = i % 2 ? 5 : -1 };
	ok = ok && (o.x = dev_fill(be, sizeof(float) * VN * VV, l, sizeof(float) * VN * VV)) &&
	     (o.w[0] = dev_fill(be, sizeof(rows), rows, sizeof(rows))) &&
	     (o.w[1] = dev_fill(be, sizeof(pair), &pair, sizeof(pair))) &&
	     (o.y = dev_fill(be, sizeof(struct be_sample_out) * BN, NULL, 0)) &&
	     ref->ops->sample(ref->ctx, ro, l, rows, &pair, VN, VV) == 0 &&
	     be->ops->sample(be->ctx, o.y, o.x, o.w[0], o.w[1], VN, VV) == 0 &&
	     be->ops->copy_d2h(be->ctx, go, o.y, sizeof(go)) == 0;
	for (int i = 0; ok && i < VN; i++) {
		ok = go[i].token == ro[i].token && go[i].token >= 0 && go[i].n_top == ro[i].n_top &&
		     (rows[i].n_logprobs < 0 || fabsf(go[i].logprob - ro[i].logprob) <= 1e-4f);
		for (int k = 0; ok && k < go[i].n_top; k++)
			ok = go[i].top_id[k] == ro[i].top_id[k];
	}
	rec("kernel_check sample rows=%d vocab=%d %s", VN, VV, ok ? "PASS" : "FAIL");
	dev_free(be, o.x);
	ok = ok && (o.x = dev_fill(be, sizeof(float) * BN * BV, l, sizeof(float) * PAT));
	for (int mode = 0; ok && mode < 2; mode++) {
		for (int i = 0; i < BN; i++)
			rows[i] = (struct be_sample_row){ .temperature = mode, .top_p = mode ? 0.9 : 1,
							  .u = rng_uniform(r), .rep = 1, .n_logprobs = -1 };
		o.n_tok = BN;
		o.n_out = BV;
		ok = be->ops->copy_h2d(be->ctx, o.w[0], rows, sizeof(rows)) == 0 && (s = time_op(&o)) > 0;
		if (ok)
			rec("kernel sample rows=%d vocab=%d mode=%s rows_per_s=%.0f us=%.1f", BN, BV,
			    mode ? "top_p0.9" : "greedy", BN / s, s * 1e6);
	}
	if (!ok)
		rec("kernel sample FAIL");
	op_free(&o);
	free(l);
	return !ok;
}

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
		"         [--kernels|--no-kernels] [--host-sample]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *backend = "cuda", *model = NULL, *preset = NULL, *cache, *v;
	const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int batches[MAX_B] = { 1, 8, 32, 64 }, nb = 4, prompt = 512, gen = 128, sparse = 0;
	int skip_load = 0, kernels = -1, host_sample = 0, rc = 0, is_cuda, have = 0;
	int n_cpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	double bw = 0, h2d = 0, need, t0;
	char msg[256] = "this binary was built without CUDA (CUDA=0 or no nvcc)", mk[600], dir[600];
	struct be be = { 0 }, ref = { 0 };
	struct be_opts bo = { .n_threads = 0, .device = 0 };
	struct g2_config c;
	struct statvfs sv;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--sparse") == 0)
			sparse = 1;
		else if (strcmp(a, "--skip-load") == 0)
			skip_load = 1;
		else if (strcmp(a, "--kernels") == 0 || strcmp(a, "--no-kernels") == 0)
			kernels = a[2] == 'k';
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
	kernels = kernels < 0 ? is_cuda : kernels;

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

	/* 2. kernels, checked against the cpu backend */
	if (kernels) {
		struct rng r;
		rng_seed(&r, 7);
		if (be_create("cpu", &bo, &ref) < 0) {
			rc = 1;
		} else {
			rc |= kern_matmul(&be, &ref, &r, is_cuda ? 4 : 2);
			rc |= kern_attention(&be, &ref, &r, is_cuda ? 16 : 2);
			rc |= kern_sample(&be, &ref, &r);
			be_destroy(&ref);
		}
	}

	/* 3. model, load, decode */
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
	printf("\n=== bench_gpu: all figures\n");
	for (int i = 0; i < g_n_lines; i++)
		printf("bench_gpu: %s\n", g_lines[i]);
	return rc ? 1 : 0;
}
