/*
 * model_desc.h - what a model directory holds, before any weight is read:
 * its config, its shards and their parsed headers, validated against each
 * other. Built from a local directory here (ld_desc_local, for
 * load_simple.c), or from bytes already fetched by any byte source
 * (ld_desc_from_parts plus the shard headers, for pipeline.c).
 */
#ifndef GR_MODEL_DESC_H
#define GR_MODEL_DESC_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/g2_config.h"
#include "loader/model_format.h"
#include "loader/safetensors.h"

struct ld_desc {
	struct g2_config cfg;
	int n_shards;
	char **shard_names;		/* file names relative to the model directory; owned */
	uint64_t *shard_sizes;		/* bytes of each shard file */
	struct st_file *shards;		/* parsed headers, one per shard; owned */
	uint64_t total_tensor_bytes;	/* sum of every shard's data region */
};

/*
 * Builds a description from a local directory: reads config.json, then
 * model.safetensors.index.json if present (else model.safetensors), reads
 * and parses each shard's header and validates the whole. Errors name the
 * file and the reason (also in err).
 */
int ld_desc_local(const char *dir, struct ld_desc *out, char *err, size_t errlen);

/*
 * Same from bytes already fetched: config JSON and index JSON (NULL for a
 * single model.safetensors). Fills cfg, n_shards and shard_names only: the
 * caller fetches and parses the shard headers into out->shards (and
 * out->shard_sizes), then validates the whole with g2_validate.
 */
int ld_desc_from_parts(const char *config_json, size_t config_len, const char *index_json,
		       size_t index_len, struct ld_desc *out, char *err, size_t errlen);

void ld_desc_release(struct ld_desc *d);

#endif
