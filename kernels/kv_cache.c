/*
 * kv_cache.c - the paged KV cache: per-layer K/V storage in backend memory
 * and a LIFO free list of block ids. See kv_cache.h.
 *
 * and the prefix cache's reference counts, hash table and evictable LRU.
 *
 * Invariants: free_list[0..n_free) holds distinct ids of free blocks;
 * is_free[b] is 1 exactly for those ids, and then ref[b] == 0 and b has no
 * hash. A block with ref[b] > 0 is in use; one with ref[b] == 0 and not
 * free is registered (hashed[b]) and linked in the LRU list (lru_head is
 * the oldest, evicted first). hashed[b] blocks are chained in
 * bucket[hash & (n_buckets-1)] through hnext.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/kv_cache.h"

struct kv_cache {
	struct be *be;			/* borrowed */
	enum be_dtype dt;
	int n_layers;
	int block_size;
	int n_blocks;
	size_t layer_bytes;		/* bytes of one layer's K (or V) storage */
	void **k, **v;			/* [n_layers] device buffers */
	int32_t *free_list;		/* [n_blocks] */
	uint8_t *is_free;		/* [n_blocks] */
	int n_free;
	/* prefix cache */
	int prefix_on;
	int32_t *ref;			/* [n_blocks] references (sequences holding it) */
	uint64_t *hash;			/* [n_blocks] valid when hashed[b] */
	uint8_t *hashed;		/* [n_blocks] */
	int32_t *hnext;			/* [n_blocks] next block in the same bucket, -1 */
	int32_t *bucket;		/* [n_buckets] first block, -1 */
	int n_buckets;			/* power of two >= n_blocks */
	int32_t *btok;			/* [n_blocks * block_size] a registered block's tokens */
	int32_t *lru_prev, *lru_next;	/* [n_blocks] evictable list links, -1 */
	int32_t lru_head, lru_tail;
	int n_evictable;
};

static size_t dt_size(enum be_dtype dt)
{
	return dt == BE_F32 ? 4 : 2;
}

size_t kv_bytes_per_block(const struct g2_config *cfg, int block_size, enum be_dtype dt)
{
	if (block_size <= 0)
		block_size = KV_DEFAULT_BLOCK_SIZE;
	return 2 * (size_t)cfg->num_hidden_layers * (size_t)block_size *
	       (size_t)cfg->num_key_value_heads * (size_t)cfg->head_dim * dt_size(dt);
}

int kv_cache_create(struct be *be, const struct g2_config *cfg, int block_size,
		    size_t budget_bytes, struct kv_cache **out)
{
	struct kv_cache *kv;
	size_t per_block, n;
	int rc = ST_ENOMEM;

	*out = NULL;
	if (block_size <= 0)
		block_size = KV_DEFAULT_BLOCK_SIZE;
	if (cfg->num_hidden_layers <= 0 || cfg->num_key_value_heads <= 0 || cfg->head_dim <= 0)
		return log_err(ST_EINVAL, "kv cache: bad config");
	per_block = kv_bytes_per_block(cfg, block_size, be->ops->kv_dtype);
	n = budget_bytes / per_block;
	if (n < 1)
		return log_err(ST_EINVAL, "kv cache: budget %zu bytes holds no block of %zu bytes",
			       budget_bytes, per_block);
	if (n > INT32_MAX / (size_t)block_size)
		n = INT32_MAX / (size_t)block_size;
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return ST_ENOMEM;
	kv->be = be;
	kv->dt = be->ops->kv_dtype;
	kv->n_layers = cfg->num_hidden_layers;
	kv->block_size = block_size;
	kv->n_blocks = (int)n;
	kv->layer_bytes = n * (size_t)block_size * (size_t)cfg->num_key_value_heads *
			  (size_t)cfg->head_dim * dt_size(kv->dt);
	kv->k = calloc((size_t)kv->n_layers, sizeof(void *));
	kv->v = calloc((size_t)kv->n_layers, sizeof(void *));
	kv->free_list = malloc(n * sizeof(int32_t));
	kv->is_free = malloc(n);
	kv->n_buckets = 1;
	while ((size_t)kv->n_buckets < n && kv->n_buckets < (1 << 30))
		kv->n_buckets <<= 1;
	kv->ref = calloc(n, sizeof(int32_t));
	kv->hash = calloc(n, sizeof(uint64_t));
	kv->hashed = calloc(n, 1);
	kv->hnext = malloc(n * sizeof(int32_t));
	kv->bucket = malloc((size_t)kv->n_buckets * sizeof(int32_t));
	kv->btok = malloc(n * (size_t)block_size * sizeof(int32_t));
	kv->lru_prev = malloc(n * sizeof(int32_t));
	kv->lru_next = malloc(n * sizeof(int32_t));
	if (!kv->k || !kv->v || !kv->free_list || !kv->is_free || !kv->ref || !kv->hash ||
	    !kv->hashed || !kv->hnext || !kv->bucket || !kv->btok || !kv->lru_prev ||
	    !kv->lru_next)
		goto out_destroy;
	for (int l = 0; l < kv->n_layers; l++) {
		kv->k[l] = be->ops->alloc(be->ctx, kv->layer_bytes);
		kv->v[l] = be->ops->alloc(be->ctx, kv->layer_bytes);
		if (!kv->k[l] || !kv->v[l]) {
			log_err(ST_ENOMEM, "kv cache: cannot allocate %zu bytes for layer %d",
				kv->layer_bytes, l);
			goto out_destroy;
		}
	}
	kv_reset(kv);
	*out = kv;
	return 0;
out_destroy:
	kv_cache_destroy(kv);
	return rc;
}

void kv_cache_destroy(struct kv_cache *kv)
{
	if (!kv)
		return;
	for (int l = 0; l < kv->n_layers; l++) {
		if (kv->k && kv->k[l])
			kv->be->ops->free(kv->be->ctx, kv->k[l]);
		if (kv->v && kv->v[l])
			kv->be->ops->free(kv->be->ctx, kv->v[l]);
	}
	free(kv->k);
	free(kv->v);
	free(kv->free_list);
	free(kv->is_free);
	free(kv->ref);
	free(kv->hash);
	free(kv->hashed);
	free(kv->hnext);
	free(kv->bucket);
	free(kv->btok);
	free(kv->lru_prev);
	free(kv->lru_next);
	free(kv);
}

int kv_block_size(const struct kv_cache *kv) { return kv->block_size; }
int kv_n_blocks(const struct kv_cache *kv) { return kv->n_blocks; }
int kv_n_free(const struct kv_cache *kv) { return kv->n_free; }
int kv_n_evictable(const struct kv_cache *kv) { return kv->n_evictable; }
int kv_n_available(const struct kv_cache *kv) { return kv->n_free + kv->n_evictable; }
int kv_n_used(const struct kv_cache *kv) { return kv->n_blocks - kv->n_free - kv->n_evictable; }
enum be_dtype kv_dtype(const struct kv_cache *kv) { return kv->dt; }
int kv_prefix_caching(const struct kv_cache *kv) { return kv->prefix_on; }

int kv_blocks_for(const struct kv_cache *kv, int n_tokens)
{
	return n_tokens <= 0 ? 0 : (n_tokens + kv->block_size - 1) / kv->block_size;
}

int kv_refcount(const struct kv_cache *kv, int32_t b)
{
	return b >= 0 && b < kv->n_blocks ? kv->ref[b] : -1;
}

void kv_reset(struct kv_cache *kv)
{
	/* Lowest ids first out: the list is popped from its end. */
	for (int i = 0; i < kv->n_blocks; i++) {
		kv->free_list[i] = kv->n_blocks - 1 - i;
		kv->is_free[i] = 1;
		kv->ref[i] = 0;
		kv->hashed[i] = 0;
		kv->hnext[i] = kv->lru_prev[i] = kv->lru_next[i] = -1;
	}
	for (int i = 0; i < kv->n_buckets; i++)
		kv->bucket[i] = -1;
	kv->n_free = kv->n_blocks;
	kv->lru_head = kv->lru_tail = -1;
	kv->n_evictable = 0;
}

/* ---- the hash table and the LRU ---- */

static int32_t *bucket_of(const struct kv_cache *kv, uint64_t h)
{
	return &kv->bucket[h & (uint64_t)(kv->n_buckets - 1)];
}

static void unhash(struct kv_cache *kv, int32_t b)
{
	int32_t *p = bucket_of(kv, kv->hash[b]);
	while (*p != -1 && *p != b)
		p = &kv->hnext[*p];
	if (*p == b)
		*p = kv->hnext[b];
	kv->hnext[b] = -1;
	kv->hashed[b] = 0;
}

static void lru_unlink(struct kv_cache *kv, int32_t b)
{
	if (kv->lru_prev[b] >= 0)
		kv->lru_next[kv->lru_prev[b]] = kv->lru_next[b];
	else
		kv->lru_head = kv->lru_next[b];
	if (kv->lru_next[b] >= 0)
		kv->lru_prev[kv->lru_next[b]] = kv->lru_prev[b];
	else
		kv->lru_tail = kv->lru_prev[b];
	kv->lru_prev[b] = kv->lru_next[b] = -1;
	kv->n_evictable--;
}

static void lru_push_tail(struct kv_cache *kv, int32_t b)
{
	kv->lru_prev[b] = kv->lru_tail;
	kv->lru_next[b] = -1;
	if (kv->lru_tail >= 0)
		kv->lru_next[kv->lru_tail] = b;
	else
		kv->lru_head = b;
	kv->lru_tail = b;
	kv->n_evictable++;
}

static void to_free_list(struct kv_cache *kv, int32_t b)
{
	kv->is_free[b] = 1;
	kv->free_list[kv->n_free++] = b;
}

int kv_lookup(const struct kv_cache *kv, uint64_t h, const int *tokens)
{
	const int32_t *bt;

	if (!kv->prefix_on)
		return -1;
	for (int32_t b = *bucket_of(kv, h); b != -1; b = kv->hnext[b]) {
		if (kv->hash[b] != h)
			continue;
		bt = kv->btok + (size_t)b * kv->block_size;
		int same = 1;
		for (int i = 0; i < kv->block_size && same; i++)
			same = bt[i] == tokens[i];
		if (same)
			return b;
	}
	return -1;
}

int kv_ref(struct kv_cache *kv, int32_t b)
{
	if (b < 0 || b >= kv->n_blocks || kv->is_free[b])
		return log_err(ST_EINVAL, "kv cache: cannot reference block %d (%s)", (int)b,
			       b < 0 || b >= kv->n_blocks ? "out of range" : "free");
	if (kv->ref[b]++ == 0)
		lru_unlink(kv, b);
	return 0;
}

int kv_register(struct kv_cache *kv, int32_t b, uint64_t h, const int *tokens)
{
	int32_t *head;

	if (!kv->prefix_on || b < 0 || b >= kv->n_blocks || kv->ref[b] <= 0 || kv->hashed[b] ||
	    kv_lookup(kv, h, tokens) >= 0)
		return 0;
	for (int i = 0; i < kv->block_size; i++)
		kv->btok[(size_t)b * kv->block_size + i] = tokens[i];
	kv->hash[b] = h;
	kv->hashed[b] = 1;
	head = bucket_of(kv, h);
	kv->hnext[b] = *head;
	*head = b;
	return 1;
}

void kv_unregister(struct kv_cache *kv, int32_t b)
{
	if (b < 0 || b >= kv->n_blocks || !kv->hashed[b])
		return;
	unhash(kv, b);
	if (kv->ref[b] == 0) {
		lru_unlink(kv, b);
		to_free_list(kv, b);
	}
}

void kv_set_prefix_caching(struct kv_cache *kv, int on)
{
	if (!on)
		for (int32_t b = 0; b < kv->n_blocks; b++)
			kv_unregister(kv, b);
	kv->prefix_on = !!on;
}

/* ---- allocation ---- */

int kv_alloc(struct kv_cache *kv)
{
	int32_t b;

	if (kv->n_free > 0) {
		b = kv->free_list[--kv->n_free];
		kv->is_free[b] = 0;
	} else if (kv->lru_head >= 0) {
		b = kv->lru_head;	/* the oldest evictable block */
		lru_unlink(kv, b);
		unhash(kv, b);
	} else {
		return ST_EFULL;
	}
	kv->ref[b] = 1;
	return b;
}

int kv_alloc_n(struct kv_cache *kv, int n, int32_t *ids)
{
	if (n < 0)
		return ST_EINVAL;
	if (n > kv->n_free + kv->n_evictable)
		return ST_EFULL;
	for (int i = 0; i < n; i++)
		ids[i] = kv_alloc(kv);
	return 0;
}

void kv_free(struct kv_cache *kv, int32_t b)
{
	if (b < 0 || b >= kv->n_blocks || kv->ref[b] <= 0) {
		log_warn("kv cache: ignoring free of block %d (%s)", (int)b,
			 b < 0 || b >= kv->n_blocks ? "out of range" : "not in use");
		return;
	}
	if (--kv->ref[b] > 0)
		return;
	if (kv->hashed[b])
		lru_push_tail(kv, b);
	else
		to_free_list(kv, b);
}

void kv_free_n(struct kv_cache *kv, const int32_t *ids, int n)
{
	for (int i = n - 1; i >= 0; i--)
		kv_free(kv, ids[i]);
}

#define CHECK_FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return ST_EINVAL; } while (0)

int kv_check(const struct kv_cache *kv, char *err, size_t errlen)
{
	int n_used = 0, n_free = 0, n_lru = 0, n_hashed = 0, n_chained = 0;
	int32_t prev = -1;

	for (int32_t b = 0; b < kv->n_blocks; b++) {
		if (kv->ref[b] < 0)
			CHECK_FAIL("block %d has refcount %d", (int)b, (int)kv->ref[b]);
		if (kv->is_free[b]) {
			n_free++;
			if (kv->ref[b] || kv->hashed[b])
				CHECK_FAIL("free block %d has refcount %d, hashed %d", (int)b,
					   (int)kv->ref[b], kv->hashed[b]);
		} else if (kv->ref[b] > 0) {
			n_used++;
		} else if (!kv->hashed[b]) {
			CHECK_FAIL("block %d: refcount 0, not free and not registered", (int)b);
		}
		n_hashed += kv->hashed[b];
	}
	if (n_free != kv->n_free)
		CHECK_FAIL("%d blocks marked free, free list holds %d", n_free, kv->n_free);
	for (int i = 0; i < kv->n_free; i++)
		if (!kv->is_free[kv->free_list[i]])
			CHECK_FAIL("free list entry %d (block %d) not marked free", i,
				   (int)kv->free_list[i]);
	for (int32_t b = kv->lru_head; b != -1; b = kv->lru_next[b]) {
		if (++n_lru > kv->n_blocks || kv->lru_prev[b] != prev || kv->ref[b] ||
		    kv->is_free[b] || !kv->hashed[b])
			CHECK_FAIL("evictable list broken at block %d", (int)b);
		prev = b;
	}
	if (prev != kv->lru_tail || n_lru != kv->n_evictable)
		CHECK_FAIL("evictable list holds %d blocks, count %d", n_lru, kv->n_evictable);
	for (int i = 0; i < kv->n_buckets; i++)
		for (int32_t b = kv->bucket[i]; b != -1; b = kv->hnext[b])
			if (++n_chained > kv->n_blocks || !kv->hashed[b] ||
			    (int)(kv->hash[b] & (uint64_t)(kv->n_buckets - 1)) != i)
				CHECK_FAIL("hash table broken at block %d", (int)b);
	if (n_chained != n_hashed)
		CHECK_FAIL("%d blocks hashed, %d in the table", n_hashed, n_chained);
	if (n_used + n_free + n_lru != kv->n_blocks)
		CHECK_FAIL("used %d + free %d + evictable %d != total %d", n_used, n_free, n_lru,
			   kv->n_blocks);
	return 0;
}

void *kv_layer_k(const struct kv_cache *kv, int layer)
{
	return layer >= 0 && layer < kv->n_layers ? kv->k[layer] : NULL;
}

void *kv_layer_v(const struct kv_cache *kv, int layer)
{
	return layer >= 0 && layer < kv->n_layers ? kv->v[layer] : NULL;
}
