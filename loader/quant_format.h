/*
 * quant_format.h - the compressed-tensors FP8 checkpoint format: the
 * quantization_config of config.json (parse, write) and which Linear
 * weights of a Gemma 2 checkpoint it quantizes. Sources of every fact
 * relied on: docs/FP8.md.
 *
 * Accepted (what vLLM loads as CompressedTensorsW8A8Fp8 / W8A16Fp8):
 *   quant_method "compressed-tensors", format "float-quantized" (top level
 *   or in the group), one config group whose weights are {num_bits 8,
 *   type "float", symmetric, dynamic false, strategy "channel"|"tensor"}
 *   and whose input_activations are null (weight-only), {dynamic true,
 *   strategy "token"} or {dynamic false, strategy "tensor"} (a stored
 *   input_scale); kv_cache_scheme null; ignore: module names or "re:"
 *   regexes. Anything else (another quant_method, int weights, groups,
 *   blocks, several groups) is a clear error naming the field.
 * Pure parsing; no file access.
 */
#ifndef GR_QUANT_FORMAT_H
#define GR_QUANT_FORMAT_H

#include <stddef.h>

#include "kernels/g2_config.h"

struct cJSON;

/*
 * Parses the quantization_config object qc (NULL or JSON null: no
 * quantization) into q. 0 or ST_EINVAL with the reason in err.
 */
int ld_quant_parse(const struct cJSON *qc, struct g2_quant_cfg *q, char *err, size_t errlen);

/* Adds "quantization_config" for q to the config.json object root (nothing for NONE). */
int ld_quant_to_json(const struct g2_quant_cfg *q, struct cJSON *root);

/*
 * Whether q quantizes the Linear module named module (its weight is
 * module + ".weight"): 1 when q is FP8 and no ignore entry matches.
 */
int ld_quant_covers(const struct g2_quant_cfg *q, const char *module);

/* "fp8-dynamic" (per-token activations), "fp8-static", "fp8-weight-only", or "none". */
const char *ld_quant_scheme_name(const struct g2_quant_cfg *q);

/* Fills q with what `gemma-run quantize --scheme fp8-dynamic` writes. */
void ld_quant_fp8_dynamic(struct g2_quant_cfg *q);

#endif
