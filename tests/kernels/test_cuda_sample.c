/*
 * test_cuda_sample.c - the CUDA sample op (kernels/cuda/cu_sample.cu)
 * against the CPU op (kernels/cpu/cpu_sample.c, itself checked against the
 * in-test reference by test_sample.c), on the seeded case grid of
 * sample_cases.h, batched 64 rows per call with their pairs.
 *
 * Tolerances: both ops compute the same integer histograms from weights
 * exp((l - max) / T); CUDA's expf may differ from glibc's by an ulp, which
 * moves a running sum by ~1e-7 of the mass, so a draw that lands that close
 * to a boundary may pick the neighbour: at most 1 % of random rows may
 * differ (expected: none). Greedy rows, the top-N ids and the error rows
 * must be identical; logprobs within 1e-4 (float vs double sums).
 * The *_masked cases give every other row a dense allow mask (structured
 * outputs: kernels/sample.h step 2) of random density, the same to both ops.
 * Without a device every case prints "SKIP ...: no CUDA device".
 */
#include "tests/kernels/cuda_test_util.h"
#include "tests/kernels/sample_cases.h"

#define ROWS 64

static void family(int v, uint64_t seed, int n_batches, int masked)
{
	int words = BE_MASK_WORDS(v);
	uint32_t *masks = calloc((size_t)ROWS * words, sizeof(uint32_t));
	struct be_sample_row rows[ROWS];
	struct be_sample_pair *pairs = malloc(ROWS * (SC_MAX_PAIRS) * sizeof(*pairs));
	struct be_sample_pair *pairs_cu = malloc(ROWS * (SC_MAX_PAIRS) * sizeof(*pairs));
	struct be_sample_out ref[ROWS], got[ROWS] = { { 0 } };
	float *l = malloc((size_t)ROWS * v * sizeof(float));
	struct smp *s = NULL;
	int n_greedy_bad = 0, n_rand = 0, n_rand_bad = 0, n_lp_bad = 0, n_rows = 0;
	double max_lp = 0;

	if (!need_cuda())
		goto out;
	CHECK(smp_create(v, &s) == 0, "smp_create");
	for (int b = 0; b < n_batches; b++) {
		int n_pairs = 0;
		void *d_l, *d_rows, *d_pairs, *d_out, *d_masks;
		for (int i = 0; i < ROWS; i++) {
			struct sample_case c;
			struct rng r;
			sc_make(&c, v, seed, b * ROWS + i);
			memcpy(l + (size_t)i * v, c.logits, (size_t)v * sizeof(float));
			rng_seed(&r, c.seed);
			n_pairs += smp_row_build(s, &c.p, &r, c.tokens, c.n_prompt, c.n_tokens, c.mask,
						  c.n_mask, &rows[i], n_pairs, pairs + n_pairs,
						  SC_MAX_PAIRS);
			sc_free(&c);
			rows[i].has_mask = masked && (i & 1);
			if (rows[i].has_mask) {	/* density 1/2^(1..4), never the whole row */
				uint64_t x = seed * 7919 + (uint64_t)(b * ROWS + i);
				int sh = 1 + i % 4;
				for (int w = 0; w < words; w++) {
					x = x * 6364136223846793005ULL + 1442695040888963407ULL;
					uint32_t m = (uint32_t)(x >> 32);
					for (int k = 1; k < sh; k++)
						m &= (uint32_t)(x >> (32 - 7 * k)) | (uint32_t)(x << (3 * k));
					masks[(size_t)i * words + w] = m;
				}
			}
		}
		memcpy(pairs_cu, pairs, (size_t)n_pairs * sizeof(*pairs));
		d_l = cu_dup(l, (size_t)ROWS * v * sizeof(float));
		d_rows = cu_dup(rows, sizeof(rows));
		d_pairs = cu_dup(pairs_cu, (size_t)(n_pairs ? n_pairs : 1) * sizeof(*pairs));
		d_out = cu_dup(got, sizeof(got));
		d_masks = cu_dup(masks, (size_t)ROWS * words * sizeof(uint32_t));
		CHECK(g_cu.ops->sample(g_cu.ctx, d_out, d_l, d_rows, d_pairs, masked ? d_masks : NULL,
				       ROWS, v) == 0,
		      "cuda sample op");
		cu_get(got, d_out, sizeof(got));
		cu_get(pairs_cu, d_pairs, (size_t)n_pairs * sizeof(*pairs));
		CHECK(g_cpu.ops->sample(g_cpu.ctx, ref, l, rows, pairs, masked ? masks : NULL, ROWS, v) == 0,
		      "cpu op");
		for (int i = 0; i < ROWS; i++)	/* the CPU op honours the mask (test_sample.c checks more) */
			CHECK(!rows[i].has_mask || ref[i].token < 0 ||
			      smp_mask_allows(masks + (size_t)i * words, ref[i].token),
			      "row %d: cpu chose masked token %d", i, ref[i].token);
		for (int j = 0; j < n_pairs; j++)
			CHECK(pairs_cu[j].orig == pairs[j].orig || (isnan(pairs[j].orig) &&
			      isnan(pairs_cu[j].orig)), "pair %d: orig cuda %g cpu %g", j,
			      pairs_cu[j].orig, pairs[j].orig);
		for (int i = 0; i < ROWS; i++) {
			const struct be_sample_row *r = &rows[i];
			int greedy = r->temperature < BE_SAMPLE_GREEDY_EPS;
			n_rows++;
			n_rand += !greedy;
			if (got[i].token != ref[i].token) {
				if (greedy || ref[i].token < 0 || got[i].token < 0)
					n_greedy_bad++;
				else
					n_rand_bad++;
				printf("  batch %d row %d (T %g k %d p %g min_p %g u %.6f): cpu %d cuda %d\n",
				       b, i, r->temperature, r->top_k, r->top_p, r->min_p, r->u,
				       ref[i].token, got[i].token);
				continue;
			}
			if (r->n_logprobs < 0 || ref[i].token < 0)
				continue;
			int ok = got[i].n_top == ref[i].n_top;
			double d = fabs((double)got[i].logprob - ref[i].logprob);
			ok = ok && (d <= 1e-4 || (isnan(got[i].logprob) && isnan(ref[i].logprob)));
			for (int k = 0; ok && k < ref[i].n_top; k++) {
				double dk = fabs((double)got[i].top_lp[k] - ref[i].top_lp[k]);
				ok = got[i].top_id[k] == ref[i].top_id[k] &&
				     (dk <= 1e-4 || isnan(ref[i].top_lp[k]));
				max_lp = dk > max_lp && !isnan(dk) ? dk : max_lp;
			}
			max_lp = d > max_lp && !isnan(d) ? d : max_lp;
			n_lp_bad += !ok;
		}
		cu_release(d_l);
		cu_release(d_rows);
		cu_release(d_pairs);
		cu_release(d_out);
		cu_release(d_masks);
	}
	CHECK(n_greedy_bad == 0, "vocab %d: %d greedy / error rows differ", v, n_greedy_bad);
	CHECK(n_rand_bad * 100 <= n_rand, "vocab %d: %d of %d random rows differ (> 1 %%)", v,
	      n_rand_bad, n_rand);
	CHECK(n_lp_bad == 0, "vocab %d: %d logprob results differ", v, n_lp_bad);
	printf("  vocab %d: %d rows, %d random (%d differ), max logprob |d| %.2g\n", v, n_rows,
	       n_rand, n_rand_bad, max_lp);
out:
	smp_destroy(s);
	free(pairs);
	free(pairs_cu);
	free(l);
	free(masks);
}

static void cuda_sample_small(void) { family(7, 11, 20, 0); }
static void cuda_sample_medium(void) { family(1000, 22, 10, 0); }
static void cuda_sample_odd(void) { family(4099, 44, 4, 0); }
static void cuda_sample_gemma_vocab(void) { family(256000, 33, 2, 0); }
static void cuda_sample_small_masked(void) { family(7, 12, 20, 1); }
static void cuda_sample_odd_masked(void) { family(4099, 45, 4, 1); }
static void cuda_sample_gemma_vocab_masked(void) { family(256000, 34, 2, 1); }

int main(void)
{
	if (cut_init(20261121) < 0)
		return 1;
	RUN(cuda_sample_small);
	RUN(cuda_sample_medium);
	RUN(cuda_sample_odd);
	RUN(cuda_sample_gemma_vocab);
	RUN(cuda_sample_small_masked);
	RUN(cuda_sample_odd_masked);
	RUN(cuda_sample_gemma_vocab_masked);
	cut_fini();
	return th_done();
}
