/*
 * test_cuda_attention.c - the CUDA backend's attention over the paged KV
 * cache against the CPU backend's, on scattered block tables:
 *   ATT_MIXED   decode tokens of two sequences (positions 1099 and 699, past
 *               every window), a prefill chunk 100..149 split in two
 *               interleaved halves and a fresh prefill 0..16, in one batch;
 *   ATT_LONG    a 200-token prefill chunk 900..1099 plus one decode token;
 *   ATT_DECODE  one token per sequence: few (token, head) pairs, so the
 *               decode kernel splits each context and combines the parts;
 * for heads/kv heads/head_dim 8/1/32, 16/8/128, 8/4/256, 4/2/16, 6/2/64, global
 * and sliding windows, soft-caps 0, 5, 10 and 50, and BF16, F16 and F32
 * caches. The CPU cache (F32) holds exactly the values of the CUDA cache.
 * cuda_attention and cuda_attention_decode_split use the default kernels;
 * cuda_attention_tiled runs all three batches with BE_CUDA_ATT_TILED.
 * Tolerance: |cuda - cpu| <= 5e-5 + 2e-4 |cpu| (online vs two-pass
 * softmax, expf/tanhf ulps). Without a device: SKIP by name (FAIL with
 * GR_TEST_GPU=1).
 */
#include "tests/kernels/cuda_test_util.h"

#define ATT_BS 16
#define ATT_NBLK 160
#define ATT_MAXB 70
#define ATT_NSEQ 4

struct att_cfg { int nh, nkv, hd, window; float softcap, qpas; enum be_dtype dt; };

static const struct att_cfg att_cfgs[] = {
	{ 8, 1, 32, 64, 50.0f, 32.0f, BE_BF16 },
	{ 16, 8, 128, 0, 50.0f, 128.0f, BE_BF16 },
	{ 16, 8, 128, 64, 5.0f, 144.0f, BE_F32 },	/* soft-cap bites */
	{ 8, 4, 256, 64, 50.0f, 256.0f, BE_BF16 },
	{ 8, 4, 256, 0, 0.0f, 256.0f, BE_F16 },
	{ 4, 2, 16, 8, 10.0f, 16.0f, BE_BF16 },
	{ 6, 2, 64, 64, 50.0f, 64.0f, BE_BF16 },	/* 3 heads per KV head: no pairing */
};

/* Context length of each sequence row; all longer than the windows above. */
static const int att_ctx[ATT_NSEQ] = { 1100, 150, 700, 17 };

/*
 * Batches (kind): ATT_MIXED: seq 0 decodes at 1099, seq 1 prefills the
 * chunk 100..149 in two interleaved halves, seq 2 decodes at 699, seq 3
 * prefills 0..16. ATT_DECODE: one token per sequence at ctx - 1.
 * ATT_LONG: seq 0 prefills 900..1099, then seq 2 decodes at 699.
 */
enum { ATT_MIXED, ATT_DECODE, ATT_LONG };
#define ATT_MAX_TOK 208

static int att_batch(int kind, int32_t *pos, int32_t *seq)
{
	int n = 0;

	if (kind == ATT_LONG) {
		for (int p = 900; p < 1100; p++)
			pos[n] = p, seq[n++] = 0;
		pos[n] = 699, seq[n++] = 2;
		return n;
	}
	if (kind == ATT_DECODE) {
		for (int s = 0; s < ATT_NSEQ; s++) {
			pos[n] = att_ctx[s] - 1;
			seq[n++] = s;
		}
		return n;
	}
	pos[n] = 1099, seq[n++] = 0;
	for (int p = 100; p < 125; p++)
		pos[n] = p, seq[n++] = 1;
	pos[n] = 699, seq[n++] = 2;
	for (int p = 0; p < 17; p++)
		pos[n] = p, seq[n++] = 3;
	for (int p = 125; p < 150; p++)
		pos[n] = p, seq[n++] = 1;
	return n;
}

static void att_run(const struct att_cfg *c, int kind, int tiled)
{
	int kv_dim = c->nkv * c->hd, qd = c->nh * c->hd, n_slots = ATT_NBLK * ATT_BS;
	size_t cn = (size_t)n_slots * kv_dim;
	int32_t pos[ATT_MAX_TOK], seq[ATT_MAX_TOK], bt[ATT_NSEQ * ATT_MAXB], perm[ATT_NBLK];
	int n_tok = att_batch(kind, pos, seq), next = 0;
	float *kc = rand_f32(cn, -1.0f, 1.0f), *vc = rand_f32(cn, -1.0f, 1.0f);
	void *kdt = to_dtype(kc, cn, c->dt), *vdt = to_dtype(vc, cn, c->dt);
	float *q = randn_f32((size_t)n_tok * qd, 4.0f);
	float *ref = malloc((size_t)n_tok * qd * 4), *got = malloc((size_t)n_tok * qd * 4);
	void *dk = cu_dup(kdt, cn * dt_size(c->dt)), *dv = cu_dup(vdt, cn * dt_size(c->dt));
	void *dq = cu_dup(q, (size_t)n_tok * qd * 4);
	void *dout = g_cu.ops->alloc(g_cu.ctx, (size_t)n_tok * qd * 4);
	void *dpos = cu_dup(pos, (size_t)n_tok * 4), *dseq = cu_dup(seq, (size_t)n_tok * 4), *dbt;
	struct be_attn a = { .n_tok = n_tok, .n_heads = c->nh, .n_kv_heads = c->nkv,
			     .head_dim = c->hd, .block_size = ATT_BS, .max_blocks = ATT_MAXB,
			     .scale = 1.0f / sqrtf(c->qpas), .softcap = c->softcap,
			     .window = c->window };
	char what[96];

	/* scattered block tables; entries past a sequence's context are -1 */
	for (int i = 0; i < ATT_NBLK; i++)
		perm[i] = i;
	for (int i = ATT_NBLK - 1; i > 0; i--) {
		int j = (int)(rng_next(&g_rng) % (uint64_t)(i + 1)), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (int s = 0; s < ATT_NSEQ; s++)
		for (int b = 0; b < ATT_MAXB; b++)
			bt[s * ATT_MAXB + b] = b * ATT_BS < att_ctx[s] ? perm[next++] : -1;
	dbt = cu_dup(bt, sizeof(bt));

	a.pos = pos, a.seq = seq, a.block_tables = bt;
	CHECK(g_cpu.ops->attention(g_cpu.ctx, ref, q, kc, vc, BE_F32, &a) == 0, "cpu attention");
	a.pos = dpos, a.seq = dseq, a.block_tables = dbt;
	CHECK(g_cu.ops->attention(g_cu.ctx, dout, dq, dk, dv, c->dt, &a) == 0, "cuda attention");
	cu_get(got, dout, (size_t)n_tok * qd * 4);
	snprintf(what, sizeof(what), "attention%s %s heads %d/%d hd %d window %d cap %g dt %d",
		 tiled ? " tiled" : "", kind == ATT_DECODE ? "decode" : kind == ATT_LONG ? "long" :
		 "mixed", c->nh, c->nkv, c->hd, c->window, (double)c->softcap, (int)c->dt);
	cmp_close(what, got, ref, (size_t)n_tok * qd, 5e-5, 2e-4);

	cu_release(dk);
	cu_release(dv);
	cu_release(dq);
	cu_release(dout);
	cu_release(dpos);
	cu_release(dseq);
	cu_release(dbt);
	free(kc);
	free(vc);
	free(kdt);
	free(vdt);
	free(q);
	free(ref);
	free(got);
}

static void cuda_attention(void)
{
	if (!need_cuda())
		return;
	for (size_t k = 0; k < ARRAY_SIZE(att_cfgs); k++) {
		att_run(&att_cfgs[k], ATT_MIXED, 0);
		att_run(&att_cfgs[k], ATT_LONG, 0);
	}
}

/* Few (token, head) pairs over long contexts: the split path with its combine. */
static void cuda_attention_decode_split(void)
{
	if (!need_cuda())
		return;
	for (size_t k = 0; k < ARRAY_SIZE(att_cfgs); k++)
		att_run(&att_cfgs[k], ATT_DECODE, 0);
}

/* The tiled kernel (BE_CUDA_ATT_TILED) on the same batches; decode still splits. */
static void cuda_attention_tiled(void)
{
	if (!need_cuda())
		return;
#ifdef GR_HAVE_CUDA
	CHECK(be_cuda_set_attention(&g_cu, BE_CUDA_ATT_TILED) == 0, "tiled mode");
	for (size_t k = 0; k < ARRAY_SIZE(att_cfgs); k++) {
		att_run(&att_cfgs[k], ATT_MIXED, 1);
		att_run(&att_cfgs[k], ATT_LONG, 1);
		att_run(&att_cfgs[k], ATT_DECODE, 1);
	}
	CHECK(be_cuda_set_attention(&g_cu, BE_CUDA_ATT_SIMPLE) == 0, "simple mode");
#endif
}

int main(void)
{
	if (cut_init(20261122) < 0)
		return 1;
	RUN(cuda_attention);
	RUN(cuda_attention_decode_split);
	RUN(cuda_attention_tiled);
	cut_fini();
	return th_done();
}
