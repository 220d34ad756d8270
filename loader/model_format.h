/*
 * model_format.h - reading a Hugging Face Gemma 2 model directory's
 * descriptions: config.json, model.safetensors.index.json, and checking the
 * tensors of all shards against what the config implies.
 *
 * Pure parsing over bytes already read; the byte sources live elsewhere
 * (loader/source_*.c). Every error names the field, tensor or shard.
 */
#ifndef GR_MODEL_FORMAT_H
#define GR_MODEL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/g2_config.h"
#include "loader/safetensors.h"

/*
 * Parses config.json into c, starting from HF defaults for absent fields.
 * model_type must be "gemma2" and architectures (if present) must name
 * Gemma2ForCausalLM; anything else is ST_EINVAL with the reason in err.
 */
int g2_config_parse(const char *json, size_t n, struct g2_config *c, char *err, size_t errlen);

/* Writes c as an HF-style config.json (caller frees the string). */
char *g2_config_to_json(const struct g2_config *c);

/* model.safetensors.index.json */
struct ld_index {
	int n_shards;
	char **shards;		/* distinct shard file names, in first-seen order; owned */
	int n_entries;
	char **tensor;		/* tensor names; owned */
	int *shard_of;		/* entry -> index into shards */
	uint64_t total_size;	/* metadata.total_size, 0 if absent */
};

/* Shard file names must be plain names (no '/', no "..") ending in .safetensors. */
int ld_index_parse(const char *json, size_t n, struct ld_index *out, char *err, size_t errlen);
void ld_index_release(struct ld_index *ix);

/*
 * Checks the shards of a model against its config: every tensor Gemma 2
 * needs is present once with the config's shape and a float dtype (BF16,
 * F16, F32); lm_head.weight may be absent (tied). With an FP8
 * quantization_config (loader/quant_format.h), each Linear weight it covers
 * is F8_E4M3 with its *.weight_scale ([out, 1] per channel, or one value)
 * and, for static activations, its *.input_scale; the rest stay float. With an index, every
 * tensor it maps must be in the shard it names, and vice versa.
 * shards[i] is the parsed header of shard i (in index order), ix may be NULL
 * for a single-file model. A tensor the config does not use (a 4-layer
 * checkpoint under num_hidden_layers 3) is an error naming the first one,
 * unless allow_unused (then it is logged once and ignored).
 */
int g2_validate(const struct g2_config *c, const struct st_file *shards, int n_shards,
		const struct ld_index *ix, int allow_unused, char *err, size_t errlen);

#endif
