/*
 * quantize_fp8.h - writes a compressed-tensors FP8 checkpoint from a
 * float (BF16/F16/F32) Gemma 2 model directory: the engine of
 * `gemma-run quantize` (service/cli/cmd_quantize.c) and `mkmodel --dtype fp8`.
 *
 * Input: a local model directory (validated like a load). Output: a new
 * directory with config.json (+ quantization_config), the same shard
 * files (same names, same tensor order) where each Linear weight the
 * scheme covers is F8_E4M3 followed by its BF16 "*.weight_scale" [out, 1]
 * (per output channel: scale = amax(row) / 448 rounded to bf16, 1 for a zero row;
 * codes = e4m3(w / scale) RNE, saturating), the index rewritten when the
 * input had one, the tokenizer and generation files copied, crc32c.json.
 * Streaming: one weight row (plus one tensor's scales) or one 4 MiB copy
 * chunk in memory at a time, never a whole tensor or the model.
 */
#ifndef GR_QUANTIZE_FP8_H
#define GR_QUANTIZE_FP8_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/g2_config.h"

struct ld_quant_stats {
	int n_quantized;		/* Linear weights written as FP8 */
	int n_copied;			/* tensors copied as they were */
	uint64_t in_bytes, out_bytes;	/* tensor data of all shards */
};

/*
 * Quantizes in_dir into out_dir (created if absent; must differ from
 * in_dir and hold no model yet) with scheme q (ld_quant_fp8_dynamic or a
 * weight-only variant). 0 or a negative status with the reason in err.
 */
int ld_quantize_fp8(const char *in_dir, const char *out_dir, const struct g2_quant_cfg *q,
		    struct ld_quant_stats *st, char *err, size_t errlen);

#endif
