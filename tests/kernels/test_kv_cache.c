/*
 * test_kv_cache.c - the paged KV cache's sizing and block allocator:
 * capacity from a byte budget, all-or-nothing multi-block allocation,
 * ST_EFULL when exhausted, frees (including bad and double frees, which
 * are ignored), reset, and per-layer storage that does not overlap; the
 * prefix cache: hash chains (parent and salt change the hash), register /
 * lookup (tokens compared), reference counts, the evictable LRU (eviction
 * only when the free list is empty, oldest first, leaf before parent),
 * kv_check's used + free + evictable = total after every operation.
 */
#include "common/status.h"
#include "kernels/kv_cache.h"
#include "kernels/kv_hash.h"
#include "tests/harness.h"
#include "tests/kernels/kern_util.h"

static struct be be;
static struct g2_config cfg;

static void test_kv_sizes(void)
{
	struct kv_cache *kv;
	size_t per = kv_bytes_per_block(&cfg, 16, BE_F32);

	CHECK(per == 2u * 3 * 16 * 2 * 16 * 4, "bytes per block %zu", per);
	CHECK(kv_bytes_per_block(&cfg, 8, BE_BF16) == 2u * 3 * 8 * 2 * 16 * 2, "bf16 size");
	per = kv_bytes_per_block(&cfg, 16, BE_BF16);	/* the cpu backend's cache is bf16 */
	CHECK(kv_cache_create(&be, &cfg, 16, per - 1, &kv) == ST_EINVAL, "budget below a block");
	CHECK(kv_cache_create(&be, &cfg, 16, per * 10 + per / 2, &kv) == 0, "create");
	CHECK(kv_n_blocks(kv) == 10 && kv_n_free(kv) == 10, "blocks %d", kv_n_blocks(kv));
	CHECK(kv_block_size(kv) == 16 && kv_dtype(kv) == BE_BF16, "geometry");
	CHECK(kv_blocks_for(kv, 0) == 0 && kv_blocks_for(kv, 1) == 1 && kv_blocks_for(kv, 16) == 1 &&
	      kv_blocks_for(kv, 17) == 2, "blocks_for");
	CHECK(kv_layer_k(kv, 3) == NULL && kv_layer_k(kv, 0) && kv_layer_v(kv, 2), "layers");
	/* layers are distinct and writable end to end */
	for (int l = 0; l < 3; l++) {
		memset(kv_layer_k(kv, l), l, (size_t)10 * 16 * 2 * 16 * 2);	/* bf16 */
		memset(kv_layer_v(kv, l), l + 3, (size_t)10 * 16 * 2 * 16 * 2);
	}
	CHECK(((unsigned char *)kv_layer_k(kv, 0))[0] == 0 && ((unsigned char *)kv_layer_v(kv, 2))[5] == 5,
	      "storage overlaps");
	kv_cache_destroy(kv);
	kv_cache_destroy(NULL);
	CHECK(kv_cache_create(&be, &cfg, 0, per * 2, &kv) == 0 && kv_block_size(kv) == 16,
	      "default block size");
	kv_cache_destroy(kv);
}

static void test_kv_alloc_free(void)
{
	struct kv_cache *kv;
	int32_t ids[8], seen[8] = { 0 };

	CHECK(kv_cache_create(&be, &cfg, 4, kv_bytes_per_block(&cfg, 4, be.ops->kv_dtype) * 6, &kv) == 0, "create");
	CHECK(kv_alloc_n(kv, 7, ids) == ST_EFULL && kv_n_free(kv) == 6, "over-ask must take nothing");
	CHECK(kv_alloc_n(kv, 4, ids) == 0 && kv_n_free(kv) == 2, "alloc 4");
	ids[4] = kv_alloc(kv);
	ids[5] = kv_alloc(kv);
	CHECK(kv_alloc(kv) == ST_EFULL, "7th block");
	for (int i = 0; i < 6; i++) {
		CHECK(ids[i] >= 0 && ids[i] < 6 && !seen[ids[i]], "id %d repeated or out of range", ids[i]);
		if (ids[i] >= 0 && ids[i] < 6)
			seen[ids[i]] = 1;
	}
	kv_free(kv, ids[2]);
	kv_free(kv, ids[2]);	/* double free: ignored */
	kv_free(kv, 99);	/* out of range: ignored */
	kv_free(kv, -1);
	CHECK(kv_n_free(kv) == 1, "free count %d", kv_n_free(kv));
	CHECK(kv_alloc(kv) == ids[2], "freed block comes back");
	kv_free_n(kv, ids, 6);
	CHECK(kv_n_free(kv) == 6, "all free");
	kv_alloc_n(kv, 3, ids);
	kv_reset(kv);
	CHECK(kv_n_free(kv) == 6 && kv_alloc(kv) == 0, "reset");
	kv_cache_destroy(kv);
}

static void check_kv(struct kv_cache *kv, const char *what)
{
	char err[160];
	int rc = kv_check(kv, err, sizeof(err));
	CHECK(rc == 0, "%s: kv_check: %s", what, err);
	CHECK(kv_n_used(kv) + kv_n_free(kv) + kv_n_evictable(kv) == kv_n_blocks(kv),
	      "%s: used %d + free %d + evictable %d != %d", what, kv_n_used(kv), kv_n_free(kv),
	      kv_n_evictable(kv), kv_n_blocks(kv));
}

static void test_kv_prefix(void)
{
	struct kv_cache *kv;
	int a[4] = { 1, 2, 3, 4 }, b[4] = { 5, 6, 7, 8 }, c[4] = { 1, 2, 3, 5 };
	int32_t s1[2], s2[2], x[4];
	uint64_t root = kv_hash_salt(NULL), ha, hb;

	CHECK(kv_cache_create(&be, &cfg, 4, kv_bytes_per_block(&cfg, 4, be.ops->kv_dtype) * 4, &kv) == 0, "create");
	/* hashes: chained, salted, order-sensitive */
	ha = kv_hash_block(root, a, 4);
	hb = kv_hash_block(ha, b, 4);
	CHECK(ha == kv_hash_block(root, a, 4), "hash not deterministic");
	CHECK(hb != kv_hash_block(root, b, 4), "parent does not change the hash");
	CHECK(ha != kv_hash_block(kv_hash_salt("tenant-1"), a, 4), "salt does not change the hash");
	CHECK(kv_hash_salt("tenant-1") != kv_hash_salt("tenant-2") && kv_hash_salt("") == root,
	      "salts");
	CHECK(ha != kv_hash_block(root, c, 4), "tokens do not change the hash");
	/* off (the default): nothing registers */
	CHECK(kv_alloc_n(kv, 2, s1) == 0, "alloc");
	CHECK(kv_register(kv, s1[0], ha, a) == 0 && kv_lookup(kv, ha, a) == -1, "registered while off");
	kv_free_n(kv, s1, 2);
	check_kv(kv, "off");
	kv_set_prefix_caching(kv, 1);
	/* sequence 1 fills blocks a, b and registers them */
	CHECK(kv_alloc_n(kv, 2, s1) == 0, "alloc");
	CHECK(kv_register(kv, s1[0], ha, a) == 1 && kv_register(kv, s1[1], hb, b) == 1, "register");
	CHECK(kv_register(kv, s1[0], ha, a) == 0, "registered twice");
	CHECK(kv_lookup(kv, ha, a) == s1[0] && kv_lookup(kv, hb, b) == s1[1], "lookup");
	CHECK(kv_lookup(kv, ha, c) == -1, "same hash, other tokens: must miss");
	/* sequence 2 shares block a (refcount 2), computes its own copy of b */
	CHECK(kv_ref(kv, s1[0]) == 0 && kv_refcount(kv, s1[0]) == 2, "ref");
	s2[0] = s1[0];
	s2[1] = kv_alloc(kv);
	CHECK(s2[1] >= 0 && kv_register(kv, s2[1], hb, b) == 0, "a duplicate hash registered");
	check_kv(kv, "shared");
	CHECK(kv_n_used(kv) == 3 && kv_n_free(kv) == 1, "used %d free %d", kv_n_used(kv), kv_n_free(kv));
	/* sequence 1 ends: a still used by 2, b evictable */
	kv_free_n(kv, s1, 2);
	CHECK(kv_n_evictable(kv) == 1 && kv_refcount(kv, s1[0]) == 1, "evictable %d", kv_n_evictable(kv));
	kv_free_n(kv, s2, 2);	/* s2[1] unregistered: free; a evictable after b */
	CHECK(kv_n_evictable(kv) == 2 && kv_n_free(kv) == 2 && kv_n_available(kv) == 4,
	      "evictable %d free %d", kv_n_evictable(kv), kv_n_free(kv));
	check_kv(kv, "released");
	/* a hit on an evictable block takes it out of the LRU */
	CHECK(kv_lookup(kv, ha, a) == s1[0] && kv_ref(kv, s1[0]) == 0 && kv_n_evictable(kv) == 1,
	      "revive");
	kv_free(kv, s1[0]);	/* now a is the newest, b the oldest */
	check_kv(kv, "revived");
	/* eviction only once the free list is empty, oldest first */
	CHECK(kv_alloc_n(kv, 2, x) == 0 && kv_n_evictable(kv) == 2, "took an evictable block early");
	x[2] = kv_alloc(kv);
	CHECK(x[2] == s1[1] && kv_lookup(kv, hb, b) == -1 && kv_lookup(kv, ha, a) == s1[0],
	      "evicted %d, want the oldest %d", x[2], s1[1]);
	x[3] = kv_alloc(kv);
	CHECK(x[3] == s1[0] && kv_lookup(kv, ha, a) == -1 && kv_alloc(kv) == ST_EFULL, "evict last");
	CHECK(kv_ref(kv, 99) == ST_EINVAL, "ref of a bad id");
	check_kv(kv, "full");
	/* leaf first: a sequence freed together evicts its last block first */
	kv_free_n(kv, x, 4);
	CHECK(kv_alloc_n(kv, 2, s1) == 0 && kv_register(kv, s1[0], ha, a) == 1 &&
	      kv_register(kv, s1[1], hb, b) == 1, "re-register");
	kv_free_n(kv, s1, 2);
	CHECK(kv_alloc_n(kv, 2, x) == 0, "alloc free");
	CHECK(kv_alloc(kv) == s1[1] && kv_lookup(kv, ha, a) == s1[0], "the parent was evicted first");
	/* unregister (a failed forward) and turning the cache off forget hashes */
	kv_unregister(kv, s1[0]);
	CHECK(kv_lookup(kv, ha, a) == -1 && kv_n_evictable(kv) == 0 && kv_n_free(kv) == 1,
	      "unregister");
	kv_free_n(kv, x, 2);
	kv_free(kv, s1[1]);
	check_kv(kv, "unregistered");
	CHECK(kv_alloc_n(kv, 1, s1) == 0 && kv_register(kv, s1[0], ha, a) == 1, "register");
	kv_free(kv, s1[0]);
	kv_set_prefix_caching(kv, 0);
	CHECK(kv_n_evictable(kv) == 0 && kv_n_free(kv) == 4 && kv_lookup(kv, ha, a) == -1, "off");
	check_kv(kv, "end");
	kv_cache_destroy(kv);
}

int main(void)
{
	if (ku_open(&be, 1) < 0)
		return 1;
	g2_config_defaults(&cfg);
	cfg.num_hidden_layers = 3;
	cfg.num_key_value_heads = 2;
	cfg.head_dim = 16;
	RUN(test_kv_sizes);
	RUN(test_kv_alloc_free);
	RUN(test_kv_prefix);
	be_destroy(&be);
	return th_done();
}
