/*
 * test_batch.c - batch invariance of the forward pass and the paged cache.
 *
 * Several sequences of different lengths are run through schedules an
 * engine would produce, and every position's logits are compared with the
 * same sequence run alone in one step (<= 1e-5 abs; the CPU backend is
 * expected to be bitwise equal, which is reported):
 *   - all prompts together in one step;
 *   - chunked prefill: every sequence advances at most 7 tokens per step;
 *   - mixed: one sequence decodes one token per step while others prefill
 *     in chunks and join late;
 *   - the same single sequence on 1 thread and on 3 threads.
 * Blocks are taken as sequences grow, so block tables interleave.
 */
#include <math.h>

#include "common/util.h"
#include "tests/harness.h"
#include "tests/model/model_util.h"

#define N_SEQ 4
#define MAX_LEN 70

static struct tm_model tm;
static const char *model_dir;
static int32_t ids[N_SEQ][MAX_LEN];
static const int lens[N_SEQ] = { 5, 37, 64, 19 };
static float *ref[N_SEQ];	/* [len][vocab] each: the sequence alone */

static void make_ids(int vocab)
{
	struct rng r;
	rng_seed(&r, 1234);
	for (int s = 0; s < N_SEQ; s++) {
		ids[s][0] = 2;
		for (int i = 1; i < MAX_LEN; i++)
			ids[s][i] = 3 + (int32_t)(rng_next(&r) % (uint64_t)(vocab - 3));
	}
}

/* One step spec: how many tokens each sequence advances (0: not in the step). */
typedef void (*plan_fn)(int step, const int done[N_SEQ], int adv[N_SEQ]);

static void plan_all(int step, const int done[N_SEQ], int adv[N_SEQ])
{
	(void)step;
	for (int s = 0; s < N_SEQ; s++)
		adv[s] = lens[s] - done[s];
}

static void plan_chunked(int step, const int done[N_SEQ], int adv[N_SEQ])
{
	(void)step;
	for (int s = 0; s < N_SEQ; s++)
		adv[s] = MIN(7, lens[s] - done[s]);
}

/* seq 0: prefilled in step 0 then decodes; seq 1 chunks of 9 from step 1;
 * seq 2 chunks of 13 from step 3; seq 3 decodes one token per step from step 2. */
static void plan_mixed(int step, const int done[N_SEQ], int adv[N_SEQ])
{
	adv[0] = step == 0 ? MIN(3, lens[0]) : MIN(1, lens[0] - done[0]);
	adv[1] = step >= 1 ? MIN(9, lens[1] - done[1]) : 0;
	adv[2] = step >= 3 ? MIN(13, lens[2] - done[2]) : 0;
	adv[3] = step >= 2 ? MIN(1, lens[3] - done[3]) : 0;
}

/* Runs a schedule; compares every position with ref. Returns max |d|; *bitwise set. */
static double run_plan(plan_fn plan, int *bitwise)
{
	int vocab = tm.m->cfg.vocab_size, mb = tm.max_blocks;
	int done[N_SEQ] = { 0 }, nblk[N_SEQ] = { 0 };
	int32_t bt[N_SEQ * 16], tok[256], pos[256], seq[256], rows[256], ctx[N_SEQ];
	int owner_seq[256], owner_pos[256];
	float *lg = malloc((size_t)256 * vocab * sizeof(float));
	double maxd = 0;

	*bitwise = 1;
	for (int step = 0; step < 200; step++) {
		int adv[N_SEQ], n = 0, ns = 0, row_of[N_SEQ];
		plan(step, done, adv);
		for (int s = 0; s < N_SEQ; s++) {
			if (adv[s] <= 0)
				continue;
			row_of[s] = ns;
			while (nblk[s] * kv_block_size(tm.kv) < done[s] + adv[s]) {
				int b = kv_alloc(tm.kv);
				CHECK(b >= 0, "out of blocks");
				if (b < 0)
					goto out;
				bt[s * 16 + nblk[s]++] = b;
			}
			ns++;
		}
		if (ns == 0)
			break;
		/* pack the used sequences' tables as rows 0..ns-1 (stride mb) */
		int32_t tables[N_SEQ * 16];
		for (int s = 0; s < N_SEQ; s++) {
			if (adv[s] <= 0)
				continue;
			for (int i = 0; i < mb; i++)
				tables[row_of[s] * mb + i] = i < nblk[s] ? bt[s * 16 + i] : 0;
			ctx[row_of[s]] = done[s] + adv[s];
			for (int i = 0; i < adv[s]; i++, n++) {
				tok[n] = ids[s][done[s] + i];
				pos[n] = done[s] + i;
				seq[n] = row_of[s];
				rows[n] = n;
				owner_seq[n] = s;
				owner_pos[n] = done[s] + i;
			}
		}
		struct g2_batch b = { .n_tok = n, .tokens = tok, .positions = pos, .seq = seq,
				      .n_seqs = ns, .block_tables = tables, .max_blocks = mb,
				      .ctx_lens = ctx, .n_logits = n, .logit_rows = rows };
		CHECK(g2_forward(tm.g, tm.kv, &b, lg) == 0, "step %d failed", step);
		for (int r = 0; r < n; r++) {
			const float *a = lg + (size_t)r * vocab;
			const float *e = ref[owner_seq[r]] + (size_t)owner_pos[r] * vocab;
			for (int i = 0; i < vocab; i++) {
				double d = fabs((double)a[i] - (double)e[i]);
				if (!(d <= maxd))
					maxd = d;
				if (memcmp(&a[i], &e[i], sizeof(float)) != 0)
					*bitwise = 0;
			}
		}
		for (int s = 0; s < N_SEQ; s++)
			if (adv[s] > 0)
				done[s] += adv[s];
	}
	for (int s = 0; s < N_SEQ; s++)
		CHECK(done[s] == lens[s], "sequence %d ran %d of %d tokens", s, done[s], lens[s]);
out:
	for (int s = 0; s < N_SEQ; s++)
		kv_free_n(tm.kv, bt + s * 16, nblk[s]);
	free(lg);
	return maxd;
}

static void check_plan(const char *what, plan_fn plan)
{
	int bitwise;
	double d = run_plan(plan, &bitwise);
	printf("  %s %s: max|d| %.3g vs each sequence alone (%s)\n", model_dir, what, d,
	       bitwise ? "bitwise equal" : "not bitwise");
	CHECK(d <= 1e-5, "%s: max|d| %.3g > 1e-5", what, d);
	CHECK(kv_n_free(tm.kv) == kv_n_blocks(tm.kv), "blocks leaked");
}

static void test_batch_one_step(void) { check_plan("one step", plan_all); }
static void test_batch_chunked_prefill(void) { check_plan("chunked prefill", plan_chunked); }
static void test_batch_mixed_decode(void) { check_plan("mixed decode+prefill", plan_mixed); }

static void test_threads_invariant(void)
{
	struct tm_model t3;
	int vocab = tm.m->cfg.vocab_size;
	float *lg;

	CHECK(tm_open(&t3, model_dir, 3, 128, N_SEQ, MAX_LEN, 16, 32) == 0, "open");
	lg = malloc((size_t)lens[2] * vocab * sizeof(float));
	CHECK(tm_run_seq(&t3, ids[2], lens[2], 0, lg) == 0, "forward");
	CHECK(memcmp(lg, ref[2], (size_t)lens[2] * vocab * sizeof(float)) == 0,
	      "3 threads differ from 1 thread");
	free(lg);
	tm_close(&t3);
}

int main(void)
{
	static const char *dirs[] = { "tests/golden/gemma2-tiny-a", "tests/golden/gemma2-tiny-b" };

	for (size_t d = 0; d < ARRAY_SIZE(dirs); d++) {
		model_dir = dirs[d];
		if (tm_open(&tm, model_dir, 1, 256, N_SEQ, MAX_LEN, 16, 32) < 0) {
			printf("FAIL batch: cannot open %s\n", model_dir);
			return 1;
		}
		make_ids(tm.m->cfg.vocab_size);
		for (int s = 0; s < N_SEQ; s++) {
			ref[s] = malloc((size_t)lens[s] * tm.m->cfg.vocab_size * sizeof(float));
			if (tm_run_seq(&tm, ids[s], lens[s], 0, ref[s]) < 0) {
				printf("FAIL batch: reference run failed\n");
				return 1;
			}
		}
		const char *mname = strrchr(model_dir, '/') + 1;
		char name[160];
#define RUN_M(fn) (snprintf(name, sizeof(name), "%s_%s", #fn, mname), th_run(name, fn))
		RUN_M(test_batch_one_step);
		RUN_M(test_batch_chunked_prefill);
		RUN_M(test_batch_mixed_decode);
		RUN_M(test_threads_invariant);
#undef RUN_M
		for (int s = 0; s < N_SEQ; s++)
			free(ref[s]);
		tm_close(&tm);
	}
	return th_done();
}
