/*
 * test_attention.c - kv_write + attention over the paged cache (CPU):
 * hand-checked cases (one key returns its value; a zero query averages the
 * visible values, which shows the window edges), and a random batch of
 * several sequences with scattered blocks, GQA, soft-cap and window against
 * a naive double-precision reference; the bf16 cache (round to nearest
 * even; bitwise an fp32 cache of the same values). CUDA parity: SKIP here.
 */
#include <math.h>

#include "common/status.h"
#include "tests/harness.h"
#include "tests/kernels/kern_util.h"

static struct be be;

/* Cache geometry used by all cases: block_size 4, 16 blocks. */
#define BS 4
#define NB 16
#define MAXB 8

struct setup {
	int nh, nkv, hd;
	float *kc, *vc;			/* (NB*BS, nkv*hd) */
	int32_t bt[3 * MAXB];		/* 3 sequences, scattered blocks */
};

static void setup_init(struct setup *s, int nh, int nkv, int hd)
{
	/* seq 0: blocks 5, 2, 9, ...; seq 1: 0, 7, 12, ...; seq 2: 15, 1, 3, ... */
	static const int32_t t[3][MAXB] = { { 5, 2, 9, 11, 4, 6, 8, 10 },
					    { 0, 7, 12, 13, 14, 3, 1, 15 },
					    { 15, 1, 3, 8, 6, 4, 2, 0 } };
	s->nh = nh;
	s->nkv = nkv;
	s->hd = hd;
	s->kc = calloc((size_t)NB * BS * nkv * hd, 4);
	s->vc = calloc((size_t)NB * BS * nkv * hd, 4);
	memcpy(s->bt, t, sizeof(t));
}

static int32_t slot_of(const struct setup *s, int seq, int pos)
{
	return s->bt[seq * MAXB + pos / BS] * BS + pos % BS;
}

static void test_attention_hand(void)
{
	struct setup s;
	int hd = 4, kvd = hd;
	float q[4] = { 0.3f, -1, 2, 0.5f }, out[4];
	float k[8][4], v[8][4];
	int32_t slots[8], pos = 0, seq = 0;

	setup_init(&s, 1, 1, hd);
	for (int j = 0; j < 8; j++) {
		for (int d = 0; d < hd; d++) {
			k[j][d] = (float)(j + d) * 0.1f;
			v[j][d] = (float)(10 * j + d);
		}
		slots[j] = slot_of(&s, 0, j);
	}
	CHECK(be.ops->kv_write(be.ctx, s.kc, s.vc, BE_F32, &k[0][0], &v[0][0], slots, 8, kvd) == 0,
	      "kv_write");
	struct be_attn a = { .n_tok = 1, .n_heads = 1, .n_kv_heads = 1, .head_dim = hd,
			     .block_size = BS, .max_blocks = MAXB, .scale = 0.5f, .softcap = 0,
			     .window = 0, .pos = &pos, .seq = &seq, .block_tables = s.bt };
	/* position 0 sees only key 0: out = v[0] exactly */
	CHECK(be.ops->attention(be.ctx, out, q, s.kc, s.vc, BE_F32, &a) == 0, "attention");
	for (int d = 0; d < hd; d++)
		CHECK(out[d] == v[0][d], "out[%d] = %g, want %g", d, out[d], v[0][d]);
	/* zero query: equal weights; position 6 with window 3 sees keys 4, 5, 6 */
	memset(q, 0, sizeof(q));
	pos = 6;
	a.window = 3;
	be.ops->attention(be.ctx, out, q, s.kc, s.vc, BE_F32, &a);
	for (int d = 0; d < hd; d++)
		CHECK_NEAR(out[d], (v[4][d] + v[5][d] + v[6][d]) / 3, 1e-4);
	/* global: keys 0..6 */
	a.window = 0;
	be.ops->attention(be.ctx, out, q, s.kc, s.vc, BE_F32, &a);
	for (int d = 0; d < hd; d++)
		CHECK_NEAR(out[d], (double)(10 * 3 + d), 1e-4);
	free(s.kc);
	free(s.vc);
}

/* Naive reference for token (seq, pos), head h, in double. */
static void ref_attention(double *out, const float *q, const struct setup *s, int seq, int pos,
			  int h, float scale, float cap, int window)
{
	int kvh = h / (s->nh / s->nkv), kvd = s->nkv * s->hd;
	double sc[64], m = -1e300, sum = 0;
	int lo = window > 0 ? (pos - window + 1 > 0 ? pos - window + 1 : 0) : 0;

	for (int j = lo; j <= pos; j++) {
		const float *k = s->kc + (size_t)slot_of(s, seq, j) * kvd + kvh * s->hd;
		double d = 0;
		for (int i = 0; i < s->hd; i++)
			d += (double)q[i] * k[i];
		d *= scale;
		if (cap > 0)
			d = cap * tanh(d / cap);
		sc[j] = d;
		m = d > m ? d : m;
	}
	for (int i = 0; i < s->hd; i++)
		out[i] = 0;
	for (int j = lo; j <= pos; j++) {
		const float *v = s->vc + (size_t)slot_of(s, seq, j) * kvd + kvh * s->hd;
		double p = exp(sc[j] - m);
		sum += p;
		for (int i = 0; i < s->hd; i++)
			out[i] += p * v[i];
	}
	for (int i = 0; i < s->hd; i++)
		out[i] /= sum;
}

static void run_random(int nh, int nkv, int hd, float cap, int window)
{
	struct setup s;
	struct rng r;
	int kvd = nkv * hd, lens[3] = { 13, 29, 7 }, n = 0;
	int32_t pos[64], seq[64], slots[64];
	float *k = malloc(64 * (size_t)kvd * 4), *v = malloc(64 * (size_t)kvd * 4);
	float *q = malloc(64 * (size_t)nh * hd * 4), *out = malloc(64 * (size_t)nh * hd * 4);
	double ref[256], worst = 0;

	setup_init(&s, nh, nkv, hd);
	rng_seed(&r, 42 + (uint64_t)hd);
	for (int sq = 0; sq < 3; sq++)
		for (int p = 0; p < lens[sq]; p++, n++) {
			pos[n] = p;
			seq[n] = sq;
			slots[n] = slot_of(&s, sq, p);
		}
	ku_fill(&r, k, (size_t)n * kvd, 1);
	ku_fill(&r, v, (size_t)n * kvd, 1);
	ku_fill(&r, q, (size_t)n * nh * hd, 1.5);
	CHECK(be.ops->kv_write(be.ctx, s.kc, s.vc, BE_F32, k, v, slots, n, kvd) == 0, "kv_write");
	struct be_attn a = { .n_tok = n, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd,
			     .block_size = BS, .max_blocks = MAXB, .scale = 1.0f / sqrtf(24.0f),
			     .softcap = cap, .window = window, .pos = pos, .seq = seq,
			     .block_tables = s.bt };
	CHECK(be.ops->attention(be.ctx, out, q, s.kc, s.vc, BE_F32, &a) == 0, "attention");
	for (int t = 0; t < n; t++)
		for (int h = 0; h < nh; h++) {
			ref_attention(ref, q + ((size_t)t * nh + h) * hd, &s, seq[t], pos[t], h,
				      a.scale, cap, window);
			for (int i = 0; i < hd; i++) {
				double d = fabs(out[((size_t)t * nh + h) * hd + i] - ref[i]);
				worst = d > worst ? d : worst;
			}
		}
	printf("  heads %d/%d hd %d cap %g window %d: max|d| %.3g\n", nh, nkv, hd, cap, window, worst);
	CHECK(worst <= 2e-6, "max|d| %.3g", worst);

	/*
	 * The bf16 cache (the backend's own): kv_write rounds to nearest even,
	 * and attention over it is bitwise attention over an fp32 cache that
	 * holds the same rounded values (the widening adds nothing).
	 */
	{
		size_t cn = (size_t)NB * BS * kvd;
		bf16 *kb = calloc(cn, 2), *vb = calloc(cn, 2), *ek = calloc(cn, 2), *ev = calloc(cn, 2);
		float *out2 = malloc(64 * (size_t)nh * hd * 4);
		CHECK(be.ops->kv_write(be.ctx, kb, vb, BE_BF16, k, v, slots, n, kvd) == 0, "kv_write bf16");
		for (int t = 0; t < n; t++)	/* in token order: a later token's slot wins, as in kv_write */
			for (int i = 0; i < kvd; i++) {
				size_t c = (size_t)slots[t] * kvd + i, x = (size_t)t * kvd + i;
				ek[c] = f32_to_bf16(k[x]);
				ev[c] = f32_to_bf16(v[x]);
				k[x] = bf16_to_f32(ek[c]);
				v[x] = bf16_to_f32(ev[c]);
			}
		CHECK(memcmp(kb, ek, cn * 2) == 0 && memcmp(vb, ev, cn * 2) == 0,
		      "cache values are not the round-to-nearest-even bf16");
		free(ek);
		free(ev);
		be.ops->kv_write(be.ctx, s.kc, s.vc, BE_F32, k, v, slots, n, kvd);
		CHECK(be.ops->attention(be.ctx, out, q, s.kc, s.vc, BE_F32, &a) == 0, "attention f32");
		CHECK(be.ops->attention(be.ctx, out2, q, kb, vb, BE_BF16, &a) == 0, "attention bf16");
		CHECK(memcmp(out, out2, (size_t)n * nh * hd * 4) == 0,
		      "bf16 cache differs from an fp32 cache of the same values");
		free(kb);
		free(vb);
		free(out2);
	}
	free(s.kc);
	free(s.vc);
	free(k);
	free(v);
	free(q);
	free(out);
}

static void test_attention_random_vs_double(void)
{
	run_random(4, 2, 16, 10, 0);
	run_random(4, 2, 16, 10, 5);
	run_random(4, 1, 33, 0, 8);	/* MQA, odd head_dim, no cap */
	run_random(6, 3, 8, 20, 1);	/* window 1: only itself */
}

static void test_attention_rejects_bad_args(void)
{
	struct setup s;
	int32_t pos = MAXB * BS, seq = 0;
	float q[8] = { 0 }, out[8];

	setup_init(&s, 2, 2, 4);
	struct be_attn a = { .n_tok = 1, .n_heads = 3, .n_kv_heads = 2, .head_dim = 4,
			     .block_size = BS, .max_blocks = MAXB, .scale = 1, .pos = &pos,
			     .seq = &seq, .block_tables = s.bt };
	CHECK(be.ops->attention(be.ctx, out, q, s.kc, s.vc, BE_F32, &a) < 0, "heads 3/2 accepted");
	a.n_heads = 2;
	CHECK(be.ops->attention(be.ctx, out, q, s.kc, s.vc, BE_F32, &a) < 0, "pos past table accepted");
	a.pos = &seq;	/* position 0: valid */
	CHECK(be.ops->attention(be.ctx, out, q, s.kc, s.vc, BE_F16, &a) == ST_ENOSYS, "f16 cache accepted");
	free(s.kc);
	free(s.vc);
}

int main(void)
{
	if (ku_open(&be, 2) < 0)
		return 1;
	RUN(test_attention_hand);
	RUN(test_attention_random_vs_double);
	RUN(test_attention_rejects_bad_args);
	be_destroy(&be);
	return th_done();
}
