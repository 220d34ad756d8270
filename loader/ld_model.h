/*
 * ld_model.h - what ld_model.c gives the loader's own files beyond the
 * public API it defines in loader.h (ld_opts_default, ld_tensor_ptr,
 * ld_model_hash, ld_model_destroy, ld_g2_weights, ld_g2_model_create).
 */
#ifndef GR_LD_MODEL_H
#define GR_LD_MODEL_H

#include <stddef.h>

struct ld_desc;
struct ld_model;
struct ld_opts;

/*
 * *out = *in with every field left at 0 (workers,
 * pinned_bytes, retry_deadline_s, stall_s, connect_s; max_retries below 0) set to its
 * ld_opts_default value; in NULL: all defaults. chunk_bytes stays 0 when
 * left so (the pipeline picks it by source).
 */
void ld_opts_resolve(const struct ld_opts *in, struct ld_opts *out);

/*
 * Builds m->tensors and m->arena_bytes for d: shards laid one after
 * another, each 256-byte aligned; shard_base[s] gets shard s's arena
 * offset. ST_ERANGE when the sizes do not fit in size_t.
 */
int ld_place_tensors(struct ld_model *m, const struct ld_desc *d, size_t *shard_base);

#endif
