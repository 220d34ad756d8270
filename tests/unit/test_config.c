/*
 * test_config.c - config.json parsing (HF field names and defaults) and the
 * presets: each preset equals the Hub's config of google/gemma-2-{2b,9b,27b}
 * (tests/fixtures/hf-configs), and unknown models are clear errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "kernels/g2_config.h"
#include "loader/model_format.h"
#include "tests/harness.h"

static char err[512];

static int parse_file(const char *path, struct g2_config *c)
{
	char *buf;
	size_t n;
	int rc = read_file(path, 1 << 20, &buf, &n);
	if (rc < 0)
		return rc;
	rc = g2_config_parse(buf, n, c, err, sizeof(err));
	free(buf);
	return rc;
}

static int same_config(const struct g2_config *a, const struct g2_config *b)
{
	return a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size &&
	       a->intermediate_size == b->intermediate_size &&
	       a->num_hidden_layers == b->num_hidden_layers &&
	       a->num_attention_heads == b->num_attention_heads &&
	       a->num_key_value_heads == b->num_key_value_heads && a->head_dim == b->head_dim &&
	       a->query_pre_attn_scalar == b->query_pre_attn_scalar &&
	       a->sliding_window == b->sliding_window &&
	       a->attn_logit_softcapping == b->attn_logit_softcapping &&
	       a->final_logit_softcapping == b->final_logit_softcapping &&
	       a->rms_norm_eps == b->rms_norm_eps && a->rope_theta == b->rope_theta &&
	       a->max_position_embeddings == b->max_position_embeddings &&
	       a->bos_token_id == b->bos_token_id && a->tie_word_embeddings == b->tie_word_embeddings;
}

static void test_presets_equal_hub_configs(void)
{
	static const struct { const char *preset, *file; uint64_t params; } cases[] = {
		{ "2b", "tests/fixtures/hf-configs/gemma-2-2b-it.json", 2614341888ull },
		{ "9b", "tests/fixtures/hf-configs/gemma-2-9b.json", 9241705984ull },
		{ "27b", "tests/fixtures/hf-configs/gemma-2-27b.json", 27227128320ull },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct g2_config hub, pre;
		int rc = parse_file(cases[i].file, &hub);
		CHECK(rc == 0, "%s: %s", cases[i].file, err);
		CHECK(g2_config_preset(&pre, cases[i].preset) == 0, "preset %s", cases[i].preset);
		CHECK(same_config(&hub, &pre), "preset %s differs from %s", cases[i].preset, cases[i].file);
		CHECK(g2_n_params(&pre) == cases[i].params, "%s: %llu params", cases[i].preset,
		      (unsigned long long)g2_n_params(&pre));
	}
	/* 9B is 18.5 GB in bf16; 27B has head_dim 128, query_pre_attn_scalar 144 (the published configs). */
	struct g2_config c;
	g2_config_preset(&c, "9b");
	CHECK(g2_n_params(&c) * 2 > 18400000000ull && g2_n_params(&c) * 2 < 18600000000ull, "9b bytes");
	g2_config_preset(&c, "27b");
	CHECK(c.head_dim == 128 && c.query_pre_attn_scalar == 144, "27b head_dim/qpas");
}

static void test_eos_list_and_defaults(void)
{
	struct g2_config c;
	CHECK(parse_file("tests/fixtures/hf-configs/gemma-2-2b-it.json", &c) == 0, "%s", err);
	CHECK(c.n_eos == 2 && c.eos_token_ids[0] == 1 && c.eos_token_ids[1] == 107, "eos list");
	const char *minimal = "{\"model_type\":\"gemma2\"}";
	CHECK(g2_config_parse(minimal, strlen(minimal), &c, err, sizeof(err)) == 0, "%s", err);
	CHECK(c.hidden_size == 2304 && c.sliding_window == 4096 && c.final_logit_softcapping == 30.0 &&
	      c.rms_norm_eps == 1e-6 && c.n_eos == 1 && c.eos_token_ids[0] == 1, "HF defaults");
	const char *nocap = "{\"model_type\":\"gemma2\",\"final_logit_softcapping\":null}";
	CHECK(g2_config_parse(nocap, strlen(nocap), &c, err, sizeof(err)) == 0 &&
	      c.final_logit_softcapping == 0, "null soft-cap means none");
}

static void test_golden_configs(void)
{
	struct g2_config c;
	CHECK(parse_file("tests/golden/gemma2-tiny-b/config.json", &c) == 0, "%s", err);
	CHECK(c.rms_norm_eps == 1e-5 && c.rope_theta == 25000 && c.query_pre_attn_scalar == 24 &&
	      c.sliding_window == 16 && c.num_key_value_heads == 1 && c.head_dim == 32, "tiny-b values");
}

static void expect_reject(const char *json, const char *needle)
{
	struct g2_config c;
	int rc = g2_config_parse(json, strlen(json), &c, err, sizeof(err));
	CHECK(rc == ST_EINVAL, "accepted: %s", json);
	CHECK(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
}

static void test_rejects_other_models(void)
{
	expect_reject("{\"model_type\":\"llama\"}", "model_type is 'llama'");
	expect_reject("{}", "model_type is '(missing)'");
	expect_reject("{\"model_type\":\"gemma2\",\"architectures\":[\"GemmaForCausalLM\"]}", "Gemma2ForCausalLM");
	expect_reject("{\"model_type\":\"gemma2\",\"hidden_size\":\"big\"}", "'hidden_size' must be an integer");
	expect_reject("{\"model_type\":\"gemma2\",\"num_key_value_heads\":3}", "num_key_value_heads 3");
	expect_reject("{\"model_type\":\"gemma2\",\"hidden_activation\":\"relu\"}", "relu");
	expect_reject("{\"model_type\":\"gemma2\",\"tie_word_embeddings\":false}", "tie_word_embeddings");
	expect_reject("{\"model_type\":\"gemma2\",\"rms_norm_eps\":null}", "rms_norm_eps");
	expect_reject("not json", "not a JSON object");
}

static void test_json_round_trip(void)
{
	static const char *const presets[] = { "tiny", "2b", "9b", "27b" };
	for (size_t i = 0; i < ARRAY_SIZE(presets); i++) {
		struct g2_config a, b;
		g2_config_preset(&a, presets[i]);
		char *s = g2_config_to_json(&a);
		CHECK(s && g2_config_parse(s, strlen(s), &b, err, sizeof(err)) == 0, "%s: %s", presets[i], err);
		CHECK(same_config(&a, &b), "%s round trip", presets[i]);
		free(s);
	}
}

int main(void)
{
	RUN(test_presets_equal_hub_configs);
	RUN(test_eos_list_and_defaults);
	RUN(test_golden_configs);
	RUN(test_rejects_other_models);
	RUN(test_json_round_trip);
	return th_done();
}
