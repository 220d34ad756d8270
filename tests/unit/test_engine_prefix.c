/*
 * test_engine_prefix.c - the engine's prefix cache over the CPU backend and
 * the golden model tests/golden/gemma2-tiny-a (16-token blocks):
 *   - exactness: prompts that share prefixes (built from the golden cases)
 *     give bit-identical tokens and logprobs to the same prompts computed
 *     alone with the cache off, when served from cached blocks alone, in a
 *     batch, with chunked prefill and under preemption; kv_check holds
 *     after every step (eng_opts.kv_check) and no block is held when idle;
 *   - n_cached_tokens and the counters (queries, hits, evictable blocks);
 *   - a prompt that is all cached recomputes its last block;
 *   - requests submitted together with the same prompt (n > 1) share it;
 *   - different cache_salt never share, the same salt does;
 *   - eviction when the free list runs out, oldest first;
 *   - --no-enable-prefix-caching: no hit, nothing evictable.
 */
#include "tests/unit/engine_util.h"

#define N_P 5
#define N_OUT 12
#define BS 16

static int p_ids[N_P][160], p_len[N_P];
static struct res ref[N_P];

/* P0..P3 share a 40-token prefix (2 full blocks); P4 extends golden case 3. */
static void build_prompts(void)
{
	const int *pre = case_ids[3];
	int tails[4] = { 2, 1, 0, -1 };
	for (int i = 0; i < 4; i++) {
		int n = 0, t = tails[i];
		if (t < 0) {	/* case 3 itself: 64 tokens */
			memcpy(p_ids[i], case_ids[3], sizeof(int) * (size_t)case_len[3]);
			p_len[i] = case_len[3];
			continue;
		}
		for (int k = 0; k < 40; k++)
			p_ids[i][n++] = pre[k];
		for (int k = 1; k < case_len[t] && n < 100; k++)
			p_ids[i][n++] = case_ids[t][k];
		p_len[i] = n;
	}
	memcpy(p_ids[4], case_ids[3], sizeof(int) * (size_t)case_len[3]);
	p_len[4] = case_len[3];
	for (int k = 1; k < case_len[2]; k++)
		p_ids[4][p_len[4]++] = case_ids[2][k];
}

static void params(struct eng_sampling *s, const char *salt)
{
	greedy_params(s, N_OUT);
	s->logprobs = 2;
	s->cache_salt = eng_cache_salt(salt);
}

/* Submits prompts idx[0..n) together (the engine held until all are queued). */
static void run_set(struct engine *e, const int *idx, int n, struct res *r, const char *salt,
		    const char *what)
{
	struct eng_sampling s;
	char err[160];
	params(&s, salt);
	for (int i = 0; i < n; i++)
		memset(&r[i], 0, sizeof(r[i]));
	r[0].gate_at = n > 1 ? 1 : 0;
	for (int i = 0; i < n; i++) {
		uint64_t id;
		int rc = eng_submit(e, p_ids[idx[i]], p_len[idx[i]], &s, &r[i], &id, err, sizeof(err));
		CHECK(rc == 0, "%s: submit %d: %s", what, i, err);
		if (i == 0 && n > 1)
			CHECK(wait_tokens(&r[0], 1), "%s: no first token", what);
	}
	if (n > 1)
		release(&r[0]);
	for (int i = 0; i < n; i++)
		CHECK(wait_final(&r[i]), "%s: request %d never finished", what, i);
}

/* r (prompt p) is bit-identical to the reference computed alone, cache off. */
static void same_as_ref(const struct res *r, int p, const char *what)
{
	CHECK(r->n == N_OUT && ref[p].n == N_OUT, "%s: P%d: %d tokens", what, p, r->n);
	CHECK(memcmp(r->tokens, ref[p].tokens, sizeof(int) * N_OUT) == 0, "%s: P%d: tokens differ",
	      what, p);
	CHECK(memcmp(r->lp, ref[p].lp, sizeof(float) * N_OUT) == 0,
	      "%s: P%d: logprobs differ (first %.9g vs %.9g)", what, p, r->lp[0], ref[p].lp[0]);
	CHECK(memcmp(r->top0, ref[p].top0, sizeof(int) * N_OUT) == 0, "%s: P%d: top ids differ",
	      what, p);
}

static void make_refs(void)
{
	struct engine *e;
	no_prefix_cache = 1;
	e = mk_engine(1, 256, 0, 16);
	no_prefix_cache = 0;
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	for (int p = 0; p < N_P; p++) {
		int idx = p;
		run_set(e, &idx, 1, &ref[p], NULL, "ref");
		CHECK(ref[p].n_cached == 0, "ref: P%d: %d cached tokens with the cache off", p,
		      ref[p].n_cached);
	}
	{
		struct eng_stats st;
		eng_get_stats(e, &st);
		CHECK(st.prefix_cache_queries == 0 && st.prefix_cache_hits == 0 &&
		      st.kv_blocks_evictable == 0, "cache off: queries %llu hits %llu evictable %d",
		      (unsigned long long)st.prefix_cache_queries,
		      (unsigned long long)st.prefix_cache_hits, st.kv_blocks_evictable);
	}
	/* the same prompt again, cache off: nothing cached */
	{
		int idx = 3;
		struct res r;
		run_set(e, &idx, 1, &r, NULL, "off again");
		CHECK(r.n_cached == 0, "cache off: %d cached tokens", r.n_cached);
		same_as_ref(&r, 3, "off again");
	}
	check_idle(e, "ref");
	eng_destroy(e);
}

/* Full blocks before the last token: what a warm cache serves of prompt p. */
static int want_cached(int p)
{
	return (p_len[p] - 1) / BS * BS;
}

static void test_alone(void)
{
	struct engine *e = mk_engine(4, 256, 0, 16);
	struct res r;
	struct eng_stats st;
	uint64_t q0, h0, want_q = 0, want_h = 0;
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	/* round 1: P3 (case 3) first, then the others hit the shared 2 blocks */
	int order[N_P] = { 3, 0, 1, 2, 4 };
	for (int i = 0; i < N_P; i++) {
		int p = order[i];
		run_set(e, &p, 1, &r, NULL, "round 1");
		same_as_ref(&r, p, "round 1");
		/* P4 extends P3, whose 4 prompt blocks are all cached by now */
		int want = i == 0 ? 0 : p == 4 ? 64 : 32;
		CHECK(r.n_cached == want, "round 1: P%d: %d cached tokens, want %d", p, r.n_cached,
		      want);
		want_q += (uint64_t)p_len[p];
		want_h += (uint64_t)want;
	}
	eng_get_stats(e, &st);
	CHECK(st.prefix_cache_queries == want_q && st.prefix_cache_hits == want_h,
	      "counters: queries %llu (want %llu), hits %llu (want %llu)",
	      (unsigned long long)st.prefix_cache_queries, (unsigned long long)want_q,
	      (unsigned long long)st.prefix_cache_hits, (unsigned long long)want_h);
	CHECK(st.kv_blocks_evictable > 0 && st.kv_usage < 1e-12, "evictable %d, usage %g",
	      st.kv_blocks_evictable, st.kv_usage);
	q0 = st.prefix_cache_queries;
	h0 = st.prefix_cache_hits;
	/* round 2: everything cached up to the last block (recomputed for its logits) */
	for (int p = 0; p < N_P; p++) {
		run_set(e, &p, 1, &r, NULL, "round 2");
		same_as_ref(&r, p, "round 2");
		CHECK(r.n_cached == want_cached(p) && r.n_prompt == p_len[p],
		      "round 2: P%d: %d of %d cached, want %d", p, r.n_cached, r.n_prompt,
		      want_cached(p));
	}
	eng_get_stats(e, &st);
	CHECK(st.prefix_cache_hits - h0 > (st.prefix_cache_queries - q0) * 3 / 4,
	      "round 2: hits %llu of %llu", (unsigned long long)(st.prefix_cache_hits - h0),
	      (unsigned long long)(st.prefix_cache_queries - q0));
	check_idle(e, "alone");
	eng_destroy(e);
}

static void batched_case(int max_seqs, int max_batched, size_t kv_blocks, const char *what)
{
	struct engine *e = mk_engine(max_seqs, max_batched, kv_blocks, 16);
	static struct res r[N_P];
	int all[N_P] = { 0, 1, 2, 3, 4 };
	struct eng_stats st;
	CHECK(e != NULL, "%s: eng_create failed", what);
	if (!e)
		return;
	for (int round = 0; round < 2; round++) {
		run_set(e, all, N_P, r, NULL, what);
		for (int p = 0; p < N_P; p++)
			same_as_ref(&r[p], p, what);
	}
	eng_get_stats(e, &st);
	CHECK(st.prefix_cache_hits > 0, "%s: no hit", what);
	printf("  %s: hits %llu of %llu tokens, preemptions %llu, evictable %d\n", what,
	       (unsigned long long)st.prefix_cache_hits,
	       (unsigned long long)st.prefix_cache_queries, (unsigned long long)st.preemptions,
	       st.kv_blocks_evictable);
	if (kv_blocks)
		CHECK(st.preemptions > 0, "%s: no preemption happened", what);
	check_idle(e, what);
	eng_destroy(e);
}

static void test_batched(void) { batched_case(8, 512, 0, "batched"); }
static void test_chunked(void) { batched_case(4, 7, 0, "chunked"); }
static void test_preempted(void) { batched_case(5, 64, 9, "preempted"); }

/* n > 1: the same prompt submitted together shares the first one's blocks
 * (registered when scheduled, so even in the same step). */
static void test_same_prompt_together(void)
{
	struct engine *e = mk_engine(4, 512, 0, 16);
	static struct res r[4];
	int four[4] = { 4, 4, 4, 4 };
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	run_set(e, four, 4, r, NULL, "n=4");
	CHECK(r[0].n_cached == 0, "first: %d cached", r[0].n_cached);
	for (int i = 1; i < 4; i++) {
		same_as_ref(&r[i], 4, "n=4");
		CHECK(r[i].n_cached == want_cached(4), "n=4: request %d: %d cached, want %d", i,
		      r[i].n_cached, want_cached(4));
	}
	check_idle(e, "n=4");
	eng_destroy(e);
}

static void test_salt(void)
{
	struct engine *e = mk_engine(4, 256, 0, 16);
	struct res r;
	int p = 3;
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	run_set(e, &p, 1, &r, "tenant-a", "salt a");
	CHECK(r.n_cached == 0, "salt a: %d cached on a cold cache", r.n_cached);
	run_set(e, &p, 1, &r, "tenant-b", "salt b");
	CHECK(r.n_cached == 0, "salt b: %d tokens shared with salt a", r.n_cached);
	same_as_ref(&r, 3, "salt b");
	run_set(e, &p, 1, &r, NULL, "no salt");
	CHECK(r.n_cached == 0, "no salt: %d tokens shared with a salted request", r.n_cached);
	run_set(e, &p, 1, &r, "tenant-a", "salt a again");
	CHECK(r.n_cached == want_cached(3), "salt a again: %d cached, want %d", r.n_cached,
	      want_cached(3));
	same_as_ref(&r, 3, "salt a again");
	check_idle(e, "salt");
	eng_destroy(e);
}

/*
 * Eviction: 8 blocks. P4 (103 + 12 tokens, 114 computed) leaves 7 cached
 * blocks and 1 free (its partial last block); P0 (79 + 12 tokens) hits
 * P4's 2 first blocks and needs 4 more: the free one, then the 3 oldest
 * evictable ones: P4's blocks 6, 5, 4 (freed leaf first). P4 then still
 * hits its 4 first blocks (64 tokens), not more.
 */
static void test_eviction(void)
{
	struct engine *e = mk_engine(1, 256, 8, 16);
	struct eng_stats st;
	struct res r;
	int p;
	CHECK(e != NULL, "eng_create failed");
	if (!e)
		return;
	p = 4;
	run_set(e, &p, 1, &r, NULL, "evict P4");
	eng_get_stats(e, &st);
	CHECK(st.kv_blocks_total == 8 && st.kv_blocks_evictable == 7 && st.kv_blocks_free == 8,
	      "after P4: %d total, %d evictable, %d free", st.kv_blocks_total,
	      st.kv_blocks_evictable, st.kv_blocks_free);
	p = 0;
	run_set(e, &p, 1, &r, NULL, "evict P0");
	same_as_ref(&r, 0, "evict P0");
	CHECK(r.n_cached == 32, "P0: %d cached, want 32", r.n_cached);
	eng_get_stats(e, &st);
	CHECK(st.kv_blocks_free == 8 && st.kv_blocks_evictable == 7,
	      "after P0: %d free, %d evictable", st.kv_blocks_free, st.kv_blocks_evictable);
	p = 4;
	run_set(e, &p, 1, &r, NULL, "evict P4 again");
	same_as_ref(&r, 4, "evict P4 again");
	CHECK(r.n_cached == 64, "P4 again: %d cached, want 64 (its head; its tail evicted)",
	      r.n_cached);
	check_idle(e, "evict");
	eng_destroy(e);
}

int main(void)
{
	if (eng_test_setup() < 0)
		return 1;
	build_prompts();
	RUN(make_refs);
	RUN(test_alone);
	RUN(test_batched);
	RUN(test_chunked);
	RUN(test_preempted);
	RUN(test_same_prompt_together);
	RUN(test_salt);
	RUN(test_eviction);
	eng_test_teardown();
	return th_done();
}
