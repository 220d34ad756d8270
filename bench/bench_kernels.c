/*
 * bench_kernels.c - single CUDA ops, validated against the CPU backend on a
 * small size first (the tolerances of tests/kernels/), then timed on 9b
 * shapes (the per-kernel micro-benchmarks; the model benchmarks are
 * bench_gpu.c):
 *   matmul: y (n_tok, 14336) = x W^T, W bf16 (14336, 3584) (the 9b gate/up
 *     weight), n_tok 1 and 512: GB/s of weight bytes and TFLOP/s;
 *   attention decode: heads 16/8, dim 256, soft-cap 50, 4096 positions, 1
 *     and 16 sequences: GB/s of K+V bytes;
 *   sample: 64 rows x 256000, greedy and temperature 1 + top_p 0.9: rows/s.
 * Compare GB/s with bench_gpu's D2D copy traffic in the same session.
 * Each time is the median of rounds of k launches and a sync (k sized to
 * ~20 ms). `--backend cpu` runs the same on the CPU (the code path check).
 *
 *   bench_kernels [--backend cuda|cpu]
 *
 * No arguments and no CUDA device (make bench): one SKIP line, exit 0.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "bench/bench_util.h"

#define PAT ((size_t)1 << 20)		/* random pattern repeated to fill big buffers */

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

int main(int argc, char **argv)
{
	const char *backend = argc == 3 && strcmp(argv[1], "--backend") == 0 ? argv[2] : "cuda";
	char msg[256] = "this binary was built without CUDA (CUDA=0 or no nvcc)";
	struct be_opts bo = { .n_threads = 0, .device = 0 };
	struct be be = { 0 }, ref = { 0 };
	int is_cuda = strcmp(backend, "cuda") == 0, have, rc = 0;
	struct rng r;

	g_bench = "bench_kernels";
	if ((argc != 1 && argc != 3) || (!is_cuda && strcmp(backend, "cpu") != 0)) {
		fprintf(stderr, "usage: bench_kernels [--backend cuda|cpu]\n");
		return 2;
	}
	log_setup(stderr, 0, LOG_WARN);
	setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef GR_HAVE_CUDA
	have = !is_cuda || cuda_info(msg, sizeof(msg)) == 0;
#else
	have = !is_cuda;
#endif
	if (!have && argc == 1)
		return printf("bench_kernels: SKIP no CUDA device (use --backend cpu to try it on the CPU)\n"), 0;
	if (!have)
		return printf("bench_kernels: FAIL --backend cuda: %s\n", msg), 1;
	if (be_create(backend, &bo, &be) < 0 || be_create("cpu", &bo, &ref) < 0)
		return printf("bench_kernels: FAIL cannot create the %s and cpu backends\n", backend), 1;
	rng_seed(&r, 7);
	rc |= kern_matmul(&be, &ref, &r, is_cuda ? 4 : 2);
	rc |= kern_attention(&be, &ref, &r, is_cuda ? 16 : 2);
	rc |= kern_sample(&be, &ref, &r);
	be_destroy(&ref);
	be_destroy(&be);
	rec("result %s", rc ? "FAIL" : "PASS");
	rec_summary();
	return rc ? 1 : 0;
}
