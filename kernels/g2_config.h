/*
 * g2_config.h - the Gemma 2 model configuration and the tensors it implies.
 *
 * Field names and defaults are Hugging Face's Gemma2Config. This file holds
 * the struct, the presets (google/gemma-2-{2b,9b,27b} and our tiny demo
 * shape) and the name -> shape table of every weight; it parses nothing
 * (loader/config.c reads config.json into it).
 */
#ifndef GR_G2_CONFIG_H
#define GR_G2_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define G2_MAX_EOS 4
#define G2_MAX_QIGNORE 16	/* quantization_config.ignore entries kept */
#define G2_QIGNORE_LEN 160

/* quantization_config of a checkpoint (HF field; loader/model_format.c parses it). */
enum g2_quant { G2_QUANT_NONE = 0, G2_QUANT_FP8 = 1 };

struct g2_quant_cfg {
	enum g2_quant method;		/* FP8: compressed-tensors float-quantized, 8-bit e4m3 */
	int act;			/* enum be_fp8_act: 0 weight-only, 1 dynamic per token, 2 static */
	int per_channel;		/* weights strategy "channel" (else "tensor") */
	int n_ignore;
	/* module names ("lm_head") or "re:<regex>" (matched from the start,
	 * as compressed-tensors does) of Linear layers left unquantized */
	char ignore[G2_MAX_QIGNORE][G2_QIGNORE_LEN];
};

struct g2_config {
	int vocab_size;
	int hidden_size;
	int intermediate_size;
	int num_hidden_layers;
	int num_attention_heads;
	int num_key_value_heads;
	int head_dim;
	double query_pre_attn_scalar;
	int sliding_window;		/* on even layers 0, 2, 4, ... */
	double attn_logit_softcapping;	/* 0 = none */
	double final_logit_softcapping;	/* 0 = none */
	double rms_norm_eps;
	double rope_theta;
	int max_position_embeddings;
	int bos_token_id;
	int pad_token_id;
	int n_eos;
	int eos_token_ids[G2_MAX_EOS];
	int tie_word_embeddings;
	char hidden_activation[32];	/* "gelu_pytorch_tanh" */
	char torch_dtype[16];		/* "bfloat16" */
	struct g2_quant_cfg quant;	/* method NONE: plain float checkpoint */
};

/* HF Gemma2Config defaults (which are gemma-2-2b's shapes). */
void g2_config_defaults(struct g2_config *c);

/* Fills c with a preset: "tiny", "2b", "9b", "27b". 0 or ST_EINVAL. */
int g2_config_preset(struct g2_config *c, const char *name);

/* Checks internal consistency (positive sizes, heads divisible, ...). */
int g2_config_check(const struct g2_config *c, char *err, size_t errlen);

/* Whether layer l uses the sliding window (even layers). */
static inline int g2_layer_is_sliding(int l)
{
	return (l % 2) == 0;
}

/* Per-layer tensor kinds, in the order a checkpoint lists them. */
enum g2_layer_tensor {
	G2_INPUT_NORM = 0, G2_Q, G2_K, G2_V, G2_O, G2_POST_ATTN_NORM,
	G2_PRE_FF_NORM, G2_GATE, G2_UP, G2_DOWN, G2_POST_FF_NORM, G2_N_LAYER_TENSORS
};

/*
 * The i-th weight of the model: i in [0, g2_n_tensors(c)). Writes its HF name
 * into name (>= 96 bytes) and its shape; returns ndim (1 or 2).
 * Order: embed_tokens, then every layer's tensors, then model.norm.
 */
int g2_n_tensors(const struct g2_config *c);
int g2_tensor_info(const struct g2_config *c, int i, char *name, size_t cap, int64_t shape[2]);

/* Total number of parameters (tied head counted once). */
uint64_t g2_n_params(const struct g2_config *c);

/*
 * Bytes of the weights as stored: elem_bytes per element (2 for bf16), but
 * with an FP8 quant config every decoder Linear weight is 1 byte per element
 * plus its bf16 scales (one per row, or one), as `gemma-run quantize` writes
 * (an ignore list naming decoder layers is not applied here). For plans.
 */
uint64_t g2_weight_bytes(const struct g2_config *c, int elem_bytes);

#endif
