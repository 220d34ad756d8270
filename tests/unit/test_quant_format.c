/*
 * test_quant_format.c - loader/quant_format.c: the compressed-tensors
 * quantization_config of config.json. Accepted: FP8 weights per channel or
 * per tensor with activations dynamic per token, static per tensor or none;
 * refused with the field named: other quant_methods, int or 4-bit weights,
 * group/block strategies, several groups, an FP8 KV cache, a bad ignore
 * regex. The ignore list matches names exactly or "re:" from the start; the
 * writer's JSON parses back to the same config; config.json round-trips
 * through g2_config_parse / g2_config_to_json.
 */
#include <cjson/cJSON.h>

#include "common/status.h"
#include "kernels/backend.h"
#include "loader/model_format.h"
#include "loader/quant_format.h"
#include "tests/harness.h"

#define W_CH "{\"num_bits\":8,\"type\":\"float\",\"strategy\":\"channel\",\"symmetric\":true,\"dynamic\":false}"
#define A_TOK "{\"num_bits\":8,\"type\":\"float\",\"strategy\":\"token\",\"symmetric\":true,\"dynamic\":true}"

static int parse(const char *json, struct g2_quant_cfg *q, char *err, size_t n)
{
	cJSON *r = cJSON_Parse(json);
	int rc;
	if (!r)
		return -999;
	rc = ld_quant_parse(r, q, err, n);
	cJSON_Delete(r);
	return rc;
}

static void test_accepts(void)
{
	struct g2_quant_cfg q;
	char err[300] = "";
	CHECK(parse("{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\","
		    "\"ignore\":[\"lm_head\"],\"kv_cache_scheme\":null,\"config_groups\":{\"group_0\":{"
		    "\"targets\":[\"Linear\"],\"weights\":" W_CH ",\"input_activations\":" A_TOK "}}}",
		    &q, err, sizeof(err)) == 0, "dynamic: %s", err);
	CHECK(q.method == G2_QUANT_FP8 && q.act == BE_FP8_ACT_TOKEN && q.per_channel && q.n_ignore == 1,
	      "dynamic fields");
	CHECK(strcmp(ld_quant_scheme_name(&q), "fp8-dynamic") == 0, "name");
	CHECK(parse("{\"quant_method\":\"compressed-tensors\",\"config_groups\":{\"g\":{\"format\":"
		    "\"float-quantized\",\"weights\":{\"num_bits\":8,\"type\":\"float\",\"strategy\":"
		    "\"tensor\"},\"input_activations\":{\"num_bits\":8,\"type\":\"float\",\"strategy\":"
		    "\"tensor\",\"dynamic\":false}}}}", &q, err, sizeof(err)) == 0, "static: %s", err);
	CHECK(q.act == BE_FP8_ACT_STATIC && !q.per_channel, "static fields");
	CHECK(parse("{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\","
		    "\"config_groups\":{\"g\":{\"weights\":" W_CH ",\"input_activations\":null}}}",
		    &q, err, sizeof(err)) == 0 && q.act == BE_FP8_ACT_NONE, "weight-only: %s", err);
	CHECK(parse("null", &q, err, sizeof(err)) == 0 && q.method == G2_QUANT_NONE, "null");
}

static void test_refuses(void)
{
	static const struct { const char *json, *want; } cases[] = {
		{ "{\"quant_method\":\"gptq\"}", "quant_method 'gptq' is not supported" },
		{ "{\"quant_method\":\"fp8\",\"activation_scheme\":\"dynamic\"}", "quant_method 'fp8'" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"pack-quantized\",\"config_groups\":"
		  "{\"g\":{\"weights\":" W_CH "}}}", "format 'pack-quantized'" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\",\"config_groups\":"
		  "{\"g\":{\"weights\":{\"num_bits\":4,\"type\":\"float\",\"strategy\":\"channel\"}}}}",
		  "weights.num_bits must be 8" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\",\"config_groups\":"
		  "{\"g\":{\"weights\":{\"num_bits\":8,\"type\":\"int\",\"strategy\":\"channel\"}}}}",
		  "weights.type is 'int'" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\",\"config_groups\":"
		  "{\"g\":{\"weights\":{\"num_bits\":8,\"type\":\"float\",\"strategy\":\"block\","
		  "\"block_structure\":[128,128]}}}}", "group and block scales" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\",\"config_groups\":"
		  "{\"a\":{\"weights\":" W_CH "},\"b\":{\"weights\":" W_CH "}}}", "exactly one group (has 2)" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\",\"kv_cache_scheme\":"
		  "{\"num_bits\":8},\"config_groups\":{\"g\":{\"weights\":" W_CH "}}}", "kv_cache_scheme" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\",\"config_groups\":"
		  "{\"g\":{\"weights\":" W_CH ",\"input_activations\":{\"num_bits\":8,\"type\":\"float\","
		  "\"strategy\":\"group\",\"dynamic\":true}}}}", "input_activations must be dynamic per 'token'" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\",\"ignore\":[\"re:(\"],"
		  "\"config_groups\":{\"g\":{\"weights\":" W_CH "}}}", "bad regex 're:('" },
		{ "{\"quant_method\":\"compressed-tensors\",\"format\":\"float-quantized\",\"config_groups\":"
		  "{\"g\":{\"targets\":[\"Embedding\"],\"weights\":" W_CH "}}}", "must target \"Linear\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct g2_quant_cfg q;
		char err[300] = "";
		int rc = parse(cases[i].json, &q, err, sizeof(err));
		CHECK(rc == ST_EINVAL && strstr(err, cases[i].want), "case %zu: rc %d, err '%s', want '%s'",
		      i, rc, err, cases[i].want);
	}
}

static void test_ignore_and_roundtrip(void)
{
	struct g2_quant_cfg q, back;
	struct g2_config c, c2;
	char err[300] = "", *js;
	cJSON *r;

	ld_quant_fp8_dynamic(&q);
	CHECK(ld_quant_covers(&q, "model.layers.0.mlp.down_proj"), "down_proj covered");
	CHECK(!ld_quant_covers(&q, "lm_head"), "lm_head ignored");
	strcpy(q.ignore[q.n_ignore++], "re:.*mlp\\.(gate|up)_proj");
	strcpy(q.ignore[q.n_ignore++], "re:self_attn");	/* anchored at the start: matches nothing */
	CHECK(!ld_quant_covers(&q, "model.layers.3.mlp.gate_proj"), "gate ignored by regex");
	CHECK(ld_quant_covers(&q, "model.layers.3.mlp.down_proj"), "down not ignored");
	CHECK(ld_quant_covers(&q, "model.layers.3.self_attn.q_proj"), "'re:self_attn' is anchored");
	r = cJSON_CreateObject();
	CHECK(ld_quant_to_json(&q, r) == 0, "to_json");
	CHECK(ld_quant_parse(cJSON_GetObjectItem(r, "quantization_config"), &back, err, sizeof(err)) == 0,
	      "parse back: %s", err);
	CHECK(memcmp(&q, &back, sizeof(q)) == 0, "round trip differs");
	cJSON_Delete(r);
	g2_config_preset(&c, "tiny");
	c.quant = q;
	js = g2_config_to_json(&c);
	CHECK(js && g2_config_parse(js, strlen(js), &c2, err, sizeof(err)) == 0, "config: %s", err);
	CHECK(memcmp(&c2.quant, &q, sizeof(q)) == 0, "config.json round trip of quantization_config");
	free(js);
}

int main(void)
{
	RUN(test_accepts);
	RUN(test_refuses);
	RUN(test_ignore_and_roundtrip);
	return th_done();
}
