/* g2_config.c - Gemma 2 presets and the weight table; see g2_config.h. */
#include "kernels/g2_config.h"

#include <stdio.h>
#include <string.h>

#include "common/status.h"

void g2_config_defaults(struct g2_config *c)
{
	memset(c, 0, sizeof(*c));
	c->vocab_size = 256000;
	c->hidden_size = 2304;
	c->intermediate_size = 9216;
	c->num_hidden_layers = 26;
	c->num_attention_heads = 8;
	c->num_key_value_heads = 4;
	c->head_dim = 256;
	c->query_pre_attn_scalar = 256;
	c->sliding_window = 4096;
	c->attn_logit_softcapping = 50.0;
	c->final_logit_softcapping = 30.0;
	c->rms_norm_eps = 1e-6;
	c->rope_theta = 10000.0;
	c->max_position_embeddings = 8192;
	c->bos_token_id = 2;
	c->pad_token_id = 0;
	c->n_eos = 1;
	c->eos_token_ids[0] = 1;
	c->tie_word_embeddings = 1;
	strcpy(c->hidden_activation, "gelu_pytorch_tanh");
	strcpy(c->torch_dtype, "bfloat16");
}

int g2_config_preset(struct g2_config *c, const char *name)
{
	g2_config_defaults(c);
	if (strcmp(name, "2b") == 0)
		return 0;	/* google/gemma-2-2b: the HF defaults */
	if (strcmp(name, "9b") == 0) {
		c->hidden_size = 3584;
		c->intermediate_size = 14336;
		c->num_hidden_layers = 42;
		c->num_attention_heads = 16;
		c->num_key_value_heads = 8;
		c->head_dim = 256;
		c->query_pre_attn_scalar = 256;
		return 0;
	}
	if (strcmp(name, "27b") == 0) {
		c->hidden_size = 4608;
		c->intermediate_size = 36864;
		c->num_hidden_layers = 46;
		c->num_attention_heads = 32;
		c->num_key_value_heads = 16;
		c->head_dim = 128;
		c->query_pre_attn_scalar = 144;
		return 0;
	}
	if (strcmp(name, "tiny") == 0) {
		/* The demo model: the real vocabulary, everything else small. */
		c->hidden_size = 128;
		c->intermediate_size = 512;
		c->num_hidden_layers = 4;
		c->num_attention_heads = 4;
		c->num_key_value_heads = 2;
		c->head_dim = 32;
		c->query_pre_attn_scalar = 32;
		c->sliding_window = 64;
		return 0;
	}
	return ST_EINVAL;
}

int g2_config_check(const struct g2_config *c, char *err, size_t errlen)
{
#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return ST_EINVAL; } while (0)
	if (c->vocab_size <= 0 || c->vocab_size > (1 << 24))
		BAD("vocab_size %d out of range", c->vocab_size);
	if (c->hidden_size <= 0 || c->hidden_size > 65536)
		BAD("hidden_size %d out of range", c->hidden_size);
	if (c->intermediate_size <= 0 || c->intermediate_size > 1 << 20)
		BAD("intermediate_size %d out of range", c->intermediate_size);
	if (c->num_hidden_layers <= 0 || c->num_hidden_layers > 1024)
		BAD("num_hidden_layers %d out of range", c->num_hidden_layers);
	if (c->num_attention_heads <= 0 || c->num_attention_heads > 1024)
		BAD("num_attention_heads %d out of range", c->num_attention_heads);
	if (c->num_key_value_heads <= 0 || c->num_attention_heads % c->num_key_value_heads)
		BAD("num_key_value_heads %d must divide num_attention_heads %d", c->num_key_value_heads,
		    c->num_attention_heads);
	if (c->head_dim <= 0 || c->head_dim % 2 || c->head_dim > 1024)
		BAD("head_dim %d must be even and in 2..1024", c->head_dim);
	if (!(c->query_pre_attn_scalar > 0))
		BAD("query_pre_attn_scalar must be positive");
	if (c->sliding_window <= 0)
		BAD("sliding_window %d must be positive", c->sliding_window);
	if (c->attn_logit_softcapping < 0 || c->final_logit_softcapping < 0)
		BAD("soft-capping values must not be negative");
	if (!(c->rms_norm_eps > 0) || c->rms_norm_eps > 1)
		BAD("rms_norm_eps %g out of range", c->rms_norm_eps);
	if (!(c->rope_theta > 1))
		BAD("rope_theta %g out of range", c->rope_theta);
	if (c->max_position_embeddings <= 0)
		BAD("max_position_embeddings %d must be positive", c->max_position_embeddings);
	if (!c->tie_word_embeddings)
		BAD("tie_word_embeddings is false; Gemma 2 ties the LM head to the embedding");
	if (strcmp(c->hidden_activation, "gelu_pytorch_tanh") != 0 &&
	    strcmp(c->hidden_activation, "gelu_tanh") != 0)
		BAD("hidden_activation '%s' is not gelu_pytorch_tanh", c->hidden_activation);
	return 0;
#undef BAD
}

int g2_n_tensors(const struct g2_config *c)
{
	return 2 + c->num_hidden_layers * G2_N_LAYER_TENSORS;
}

int g2_tensor_info(const struct g2_config *c, int i, char *name, size_t cap, int64_t shape[2])
{
	static const char *const names[G2_N_LAYER_TENSORS] = {
		[G2_INPUT_NORM] = "input_layernorm",
		[G2_Q] = "self_attn.q_proj",
		[G2_K] = "self_attn.k_proj",
		[G2_V] = "self_attn.v_proj",
		[G2_O] = "self_attn.o_proj",
		[G2_POST_ATTN_NORM] = "post_attention_layernorm",
		[G2_PRE_FF_NORM] = "pre_feedforward_layernorm",
		[G2_GATE] = "mlp.gate_proj",
		[G2_UP] = "mlp.up_proj",
		[G2_DOWN] = "mlp.down_proj",
		[G2_POST_FF_NORM] = "post_feedforward_layernorm",
	};
	const int64_t h = c->hidden_size, ff = c->intermediate_size;
	const int64_t q = (int64_t)c->num_attention_heads * c->head_dim;
	const int64_t kv = (int64_t)c->num_key_value_heads * c->head_dim;

	if (i == 0) {
		snprintf(name, cap, "model.embed_tokens.weight");
		shape[0] = c->vocab_size;
		shape[1] = h;
		return 2;
	}
	if (i == g2_n_tensors(c) - 1) {
		snprintf(name, cap, "model.norm.weight");
		shape[0] = h;
		return 1;
	}
	int l = (i - 1) / G2_N_LAYER_TENSORS, k = (i - 1) % G2_N_LAYER_TENSORS;
	snprintf(name, cap, "model.layers.%d.%s.weight", l, names[k]);
	switch (k) {
	case G2_Q:    shape[0] = q;  shape[1] = h;  return 2;
	case G2_K:
	case G2_V:    shape[0] = kv; shape[1] = h;  return 2;
	case G2_O:    shape[0] = h;  shape[1] = q;  return 2;
	case G2_GATE:
	case G2_UP:   shape[0] = ff; shape[1] = h;  return 2;
	case G2_DOWN: shape[0] = h;  shape[1] = ff; return 2;
	default:      shape[0] = h;  return 1;
	}
}

uint64_t g2_n_params(const struct g2_config *c)
{
	uint64_t n = 0;
	char name[128];
	int64_t shape[2];
	for (int i = 0; i < g2_n_tensors(c); i++) {
		int nd = g2_tensor_info(c, i, name, sizeof(name), shape);
		n += nd == 2 ? (uint64_t)shape[0] * (uint64_t)shape[1] : (uint64_t)shape[0];
	}
	return n;
}

uint64_t g2_weight_bytes(const struct g2_config *c, int elem_bytes)
{
	uint64_t n = 0;
	char name[128];
	int64_t shape[2];
	size_t len;
	for (int i = 0; i < g2_n_tensors(c); i++) {
		int nd = g2_tensor_info(c, i, name, sizeof(name), shape);
		uint64_t numel = nd == 2 ? (uint64_t)shape[0] * (uint64_t)shape[1] : (uint64_t)shape[0];
		len = strlen(name);
		if (c->quant.method == G2_QUANT_FP8 && len > 12 && strcmp(name + len - 12, "_proj.weight") == 0)
			n += numel + (c->quant.per_channel ? (uint64_t)shape[0] : 1) * 2;
		else
			n += numel * (uint64_t)elem_bytes;
	}
	return n;
}
