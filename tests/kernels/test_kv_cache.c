/*
 * test_kv_cache.c - the paged KV cache's sizing and block allocator:
 * capacity from a byte budget, all-or-nothing multi-block allocation,
 * ST_EFULL when exhausted, frees (including bad and double frees, which
 * are ignored), reset, and per-layer storage that does not overlap.
 */
#include "common/status.h"
#include "kernels/kv_cache.h"
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
	be_destroy(&be);
	return th_done();
}
