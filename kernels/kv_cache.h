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
 * when positions fall out of the window), so every layer holds every
 * position of a block and a block's KV depends only on the tokens up to its
 * end: that is what makes prefix reuse exact for Gemma 2's local layers.
 *
 * Prefix cache (kv_set_prefix_caching): a full block may be registered
 * under a hash (kv_hash_block: its tokens chained with the parent block's
 * hash; the first block's parent is kv_hash_salt(cache_salt)); its tokens
 * are stored and compared on lookup, so a 64-bit collision of the whole
 * chain is the only way to a wrong hit. Blocks are reference counted: each
 * sequence whose table holds a block holds one reference (kv_alloc gives
 * the first, kv_ref adds one, kv_free drops one). A block whose count
 * falls to 0 goes back to the free list, or, when registered, to the tail
 * of an evictable LRU list where kv_lookup can still find it. kv_alloc
 * takes the free list first and evicts the LRU head (its hash forgotten)
 * only when the free list is empty. A caller frees a sequence's blocks
 * last block first, so of blocks freed together the leaf is evicted first.
 * Every block is in exactly one state: free, in use (refcount > 0) or
 * evictable; used + free + evictable = total (kv_check verifies it).
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
int kv_n_free(const struct kv_cache *kv);	/* on the free list (not evictable ones) */
int kv_n_evictable(const struct kv_cache *kv);	/* refcount 0, registered, in the LRU */
int kv_n_available(const struct kv_cache *kv);	/* free + evictable: what kv_alloc_n can take */
int kv_n_used(const struct kv_cache *kv);	/* refcount > 0 */
enum be_dtype kv_dtype(const struct kv_cache *kv);

/* Blocks needed to hold n_tokens positions: ceil(n_tokens / block_size). */
int kv_blocks_for(const struct kv_cache *kv, int n_tokens);

/*
 * Takes one block with refcount 1: a free one, else the least recently
 * released evictable one (unregistered first). Its id (>= 0), or ST_EFULL
 * when none is free or evictable.
 */
int kv_alloc(struct kv_cache *kv);

/* Takes n blocks into ids[0..n) or none at all: 0 or ST_EFULL. */
int kv_alloc_n(struct kv_cache *kv, int n, int32_t *ids);

/*
 * Drops one reference; at 0 the block goes to the free list, or to the
 * evictable LRU's tail when registered. Ids out of range or not in use are
 * logged and ignored. kv_free_n frees ids[n-1] first (the leaf first).
 */
void kv_free(struct kv_cache *kv, int32_t block);
void kv_free_n(struct kv_cache *kv, const int32_t *ids, int n);

/* Gives every block back and forgets every hash (e.g. after an engine reset). */
void kv_reset(struct kv_cache *kv);

/* Prefix caching on (1) or off (0, the state after create). Off: kv_register
 * does nothing and kv_lookup finds nothing. Turning it off forgets every
 * hash (evictable blocks become free). */
void kv_set_prefix_caching(struct kv_cache *kv, int on);
int kv_prefix_caching(const struct kv_cache *kv);

/*
 * The block registered under hash whose block_size tokens equal tokens[],
 * in use or evictable (refcount unchanged): its id, or -1.
 */
int kv_lookup(const struct kv_cache *kv, uint64_t hash, const int *tokens);

/* Adds a reference to a block in use or evictable (which leaves the LRU):
 * 0, or ST_EINVAL for a free block or a bad id. */
int kv_ref(struct kv_cache *kv, int32_t block);

/*
 * Registers block (in use, full of tokens[0..block_size)) under hash so
 * that kv_lookup finds it. 1 when registered; 0 when prefix caching is off,
 * the block already has a hash, or another block holds this hash already
 * (this one stays unregistered and is freed as usual).
 */
int kv_register(struct kv_cache *kv, int32_t block, uint64_t hash, const int *tokens);

/* Forgets block's hash (its contents are not valid, e.g. a failed forward). */
void kv_unregister(struct kv_cache *kv, int32_t block);

int kv_refcount(const struct kv_cache *kv, int32_t block);	/* -1: bad id */

/*
 * Checks the allocator's invariants (each block in exactly one state, the
 * lists and the hash table consistent, used + free + evictable = total):
 * 0, or ST_EINVAL with what is wrong in err. O(blocks).
 */
int kv_check(const struct kv_cache *kv, char *err, size_t errlen);

/* Device pointers of layer l's K and V storage (used by kernels/gemma2.c). */
void *kv_layer_k(const struct kv_cache *kv, int layer);
void *kv_layer_v(const struct kv_cache *kv, int layer);

#endif
