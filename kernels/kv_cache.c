/*
 * kv_cache.c - the paged KV cache: per-layer K/V storage in backend memory
 * and a LIFO free list of block ids. See kv_cache.h.
 *
 * Invariants: free_list[0..n_free) holds distinct ids of free blocks;
 * is_free[b] is 1 exactly for those ids.
 */
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
	if (!kv->k || !kv->v || !kv->free_list || !kv->is_free)
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
	free(kv);
}

int kv_block_size(const struct kv_cache *kv) { return kv->block_size; }
int kv_n_blocks(const struct kv_cache *kv) { return kv->n_blocks; }
int kv_n_free(const struct kv_cache *kv) { return kv->n_free; }
enum be_dtype kv_dtype(const struct kv_cache *kv) { return kv->dt; }

int kv_blocks_for(const struct kv_cache *kv, int n_tokens)
{
	return n_tokens <= 0 ? 0 : (n_tokens + kv->block_size - 1) / kv->block_size;
}

void kv_reset(struct kv_cache *kv)
{
	/* Lowest ids first out: the list is popped from its end. */
	for (int i = 0; i < kv->n_blocks; i++) {
		kv->free_list[i] = kv->n_blocks - 1 - i;
		kv->is_free[i] = 1;
	}
	kv->n_free = kv->n_blocks;
}

int kv_alloc(struct kv_cache *kv)
{
	int32_t b;
	if (kv->n_free == 0)
		return ST_EFULL;
	b = kv->free_list[--kv->n_free];
	kv->is_free[b] = 0;
	return b;
}

int kv_alloc_n(struct kv_cache *kv, int n, int32_t *ids)
{
	if (n < 0)
		return ST_EINVAL;
	if (n > kv->n_free)
		return ST_EFULL;
	for (int i = 0; i < n; i++)
		ids[i] = kv_alloc(kv);
	return 0;
}

void kv_free(struct kv_cache *kv, int32_t b)
{
	if (b < 0 || b >= kv->n_blocks || kv->is_free[b]) {
		log_warn("kv cache: ignoring free of block %d (%s)", (int)b,
			 b < 0 || b >= kv->n_blocks ? "out of range" : "already free");
		return;
	}
	kv->is_free[b] = 1;
	kv->free_list[kv->n_free++] = b;
}

void kv_free_n(struct kv_cache *kv, const int32_t *ids, int n)
{
	for (int i = 0; i < n; i++)
		kv_free(kv, ids[i]);
}

void *kv_layer_k(const struct kv_cache *kv, int layer)
{
	return layer >= 0 && layer < kv->n_layers ? kv->k[layer] : NULL;
}

void *kv_layer_v(const struct kv_cache *kv, int layer)
{
	return layer >= 0 && layer < kv->n_layers ? kv->v[layer] : NULL;
}
