/*
 * kv_cache.h - the paged KV cache: fixed-size blocks of block_size tokens,
 * storage for every layer in backend memory, and a block allocator.
 *
 * Storage: per layer one K and one V buffer of (n_blocks*block_size,
 * n_kv_heads*head_dim) elements (fp32 on the CPU backend). A "slot" is
 * block*block_size + offset; a sequence's block table (int32 block ids, in
 * order) maps its position j to slot table[j/block_size]*block_size +
 * j%block_size. The same table serves every layer.
 *
 * Allocation: a LIFO free list of block ids; kv_alloc_n() is all-or-nothing.
 * The cache does not know about sequences: the caller (the engine) keeps
 * each sequence's table and frees its blocks when the sequence ends or is
 * preempted. Sliding-window layers keep all their blocks (nothing is dropped
 * when positions fall out of the window).
 *
 * Not thread-safe: owned by the engine thread (like the model).
 */
#ifndef GR_KV_CACHE_H
#define GR_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/g2_config.h"

#define KV_DEFAULT_BLOCK_SIZE 16

struct kv_cache;

/* Bytes one block costs over all layers (K and V) for this config, block
 * size and element type: 2 * layers * block_size * n_kv_heads * head_dim *
 * sizeof(elem). */
size_t kv_bytes_per_block(const struct g2_config *cfg, int block_size, enum be_dtype dt);

/*
 * Creates a cache in be (borrowed, must outlive the cache) with as many
 * blocks as fit in budget_bytes (at least 1, else ST_EINVAL), block_size
 * tokens each (0: KV_DEFAULT_BLOCK_SIZE). The element type is the backend's
 * (F32 on cpu). Caller frees with kv_cache_destroy.
 */
int kv_cache_create(struct be *be, const struct g2_config *cfg, int block_size,
		    size_t budget_bytes, struct kv_cache **out);
void kv_cache_destroy(struct kv_cache *kv);

int kv_block_size(const struct kv_cache *kv);
int kv_n_blocks(const struct kv_cache *kv);	/* total */
int kv_n_free(const struct kv_cache *kv);	/* currently free */
enum be_dtype kv_dtype(const struct kv_cache *kv);

/* Blocks needed to hold n_tokens positions: ceil(n_tokens / block_size). */
int kv_blocks_for(const struct kv_cache *kv, int n_tokens);

/* Takes one free block: its id (>= 0), or ST_EFULL when none is free. */
int kv_alloc(struct kv_cache *kv);

/* Takes n blocks into ids[0..n) or none at all: 0 or ST_EFULL. */
int kv_alloc_n(struct kv_cache *kv, int n, int32_t *ids);

/* Gives blocks back. Ids out of range or already free are logged and ignored. */
void kv_free(struct kv_cache *kv, int32_t block);
void kv_free_n(struct kv_cache *kv, const int32_t *ids, int n);

/* Gives every block back (e.g. after an engine reset). */
void kv_reset(struct kv_cache *kv);

/* Device pointers of layer l's K and V storage (used by kernels/gemma2.c). */
void *kv_layer_k(const struct kv_cache *kv, int layer);
void *kv_layer_v(const struct kv_cache *kv, int layer);

#endif
