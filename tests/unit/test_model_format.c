/*
 * test_model_format.c - the shard index, model validation against the
 * config, and the tools/mkmodel -> parser round trip for every preset
 * (sparse files for the big ones: headers only), plus the golden models.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/status.h"
#include "common/util.h"
#include "loader/model_desc.h"
#include "loader/model_format.h"
#include "tests/harness.h"

static char err[1024];
static char tmpdir[256];

static int run_mkmodel(const char *args, const char *out)
{
	char cmd[1024];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	snprintf(cmd, sizeof(cmd), "%s/mkmodel %s --out %s 2>/dev/null", build, args, out);
	return system(cmd);
}

static void test_index_parse(void)
{
	struct ld_index ix;
	const char *ok = "{\"metadata\":{\"total_size\":10},\"weight_map\":{\"a\":\"model-1.safetensors\","
			 "\"b\":\"model-2.safetensors\",\"c\":\"model-1.safetensors\"}}";
	CHECK(ld_index_parse(ok, strlen(ok), &ix, err, sizeof(err)) == 0, "%s", err);
	CHECK(ix.n_shards == 2 && ix.n_entries == 3 && ix.shard_of[2] == 0 && ix.total_size == 10,
	      "index contents");
	ld_index_release(&ix);
	static const struct { const char *json, *needle; } bad[] = {
		{ "{\"weight_map\":{\"a\":\"../x.safetensors\"}}", "weight_map['a']" },
		{ "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", "weight_map['a']" },
		{ "{\"weight_map\":{\"a\":\"model.bin\"}}", "weight_map['a']" },
		{ "{\"weight_map\":{}}", "weight_map missing or empty" },
		{ "{\"weight_map\":{\"a\":\"m.safetensors\",\"a\":\"m.safetensors\"}}", "'a' listed twice" },
		{ "[]", "not a JSON object" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(ld_index_parse(bad[i].json, strlen(bad[i].json), &ix, err, sizeof(err)) == ST_EINVAL,
		      "accepted %s", bad[i].json);
		CHECK(strstr(err, bad[i].needle), "'%s' lacks '%s'", err, bad[i].needle);
	}
}

static void test_golden_models_validate(void)
{
	static const char *const dirs[] = { "tests/golden/gemma2-tiny-a", "tests/golden/gemma2-tiny-b" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		struct ld_desc d;
		int rc = ld_desc_local(dirs[i], &d, err, sizeof(err));
		CHECK(rc == 0, "%s: %s", dirs[i], err);
		if (rc == 0) {
			CHECK(d.n_shards == (i == 0 ? 1 : 2), "%s shards %d", dirs[i], d.n_shards);
			ld_desc_release(&d);
		}
	}
}

/* Builds one fake shard header in memory from a config, optionally broken. */
static int fake_shard(const struct g2_config *c, const char *drop, const char *reshape,
		      const char *dtype_for, struct st_file *f)
{
	char name[128], *json = malloc(1 << 20);
	size_t o = 0;
	uint64_t off = 0;
	int64_t shape[2];
	o += (size_t)sprintf(json + o, "{");
	for (int i = 0; i < g2_n_tensors(c); i++) {
		int nd = g2_tensor_info(c, i, name, sizeof(name), shape);
		if (drop && strcmp(name, drop) == 0)
			continue;
		if (reshape && strcmp(name, reshape) == 0)
			shape[0] += 1;
		const char *dt = dtype_for && strcmp(name, dtype_for) == 0 ? "I8" : "F32";
		uint64_t es = dt[0] == 'I' ? 1 : 4;
		uint64_t n = nd == 2 ? (uint64_t)shape[0] * (uint64_t)shape[1] : (uint64_t)shape[0];
		if (nd == 2)
			o += (size_t)sprintf(json + o, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}",
					     o > 1 ? "," : "", name, dt, (long long)shape[0], (long long)shape[1],
					     (unsigned long long)off, (unsigned long long)(off + n * es));
		else
			o += (size_t)sprintf(json + o, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
					     o > 1 ? "," : "", name, dt, (long long)shape[0],
					     (unsigned long long)off, (unsigned long long)(off + n * es));
		off += n * es;
	}
	o += (size_t)sprintf(json + o, "}");
	int rc = st_parse_header(json, o, 8 + o + off, f, err, sizeof(err));
	free(json);
	return rc;
}

static void test_validation_names_the_tensor(void)
{
	struct g2_config c;
	struct st_file f;
	g2_config_preset(&c, "tiny");
	c.vocab_size = 300;	/* keep the fake header small */
	CHECK(fake_shard(&c, NULL, NULL, NULL, &f) == 0, "fake: %s", err);
	CHECK(g2_validate(&c, &f, 1, NULL, 0, err, sizeof(err)) == 0, "complete model: %s", err);
	st_file_release(&f);

	CHECK(fake_shard(&c, "model.layers.2.mlp.up_proj.weight", NULL, NULL, &f) == 0, "%s", err);
	CHECK(g2_validate(&c, &f, 1, NULL, 0, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "'model.layers.2.mlp.up_proj.weight' is missing"), "missing: %s", err);
	st_file_release(&f);

	CHECK(fake_shard(&c, NULL, "model.layers.1.self_attn.k_proj.weight", NULL, &f) == 0, "%s", err);
	CHECK(g2_validate(&c, &f, 1, NULL, 0, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "'model.layers.1.self_attn.k_proj.weight' has shape [65, 128], the config needs [64, 128]"),
	      "misshapen: %s", err);
	st_file_release(&f);

	CHECK(fake_shard(&c, NULL, NULL, "model.norm.weight", &f) == 0, "%s", err);
	CHECK(g2_validate(&c, &f, 1, NULL, 0, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "'model.norm.weight' has dtype I8"), "dtype: %s", err);
	st_file_release(&f);

	/* The config decides: a model with 4 layers fails against a 5-layer config. */
	CHECK(fake_shard(&c, NULL, NULL, NULL, &f) == 0, "%s", err);
	c.num_hidden_layers = 5;
	CHECK(g2_validate(&c, &f, 1, NULL, 0, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "model.layers.4."), "extra layer: %s", err);
	st_file_release(&f);

	/* And the other way (issue 17): a 4-layer checkpoint under num_hidden_layers 3 is an
	 * error naming a tensor of layer 3, unless the caller allows unused tensors. */
	c.num_hidden_layers = 4;
	CHECK(fake_shard(&c, NULL, NULL, NULL, &f) == 0, "%s", err);
	c.num_hidden_layers = 3;
	CHECK(g2_validate(&c, &f, 1, NULL, 0, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "does not use (first: 'model.layers.3.") && strstr(err, "--allow-unused-tensors"),
	      "unused layer accepted: %s", err);
	CHECK(g2_validate(&c, &f, 1, NULL, 1, err, sizeof(err)) == 0, "allowed unused: %s", err);
	st_file_release(&f);
}

static void test_mkmodel_round_trip_every_preset(void)
{
	static const struct { const char *args; int shards; } cases[] = {
		{ "--preset tiny --seed 7", 1 },
		{ "--preset tiny --shards 3 --dtype f32", 3 },
		{ "--preset custom --vocab 1000 --hidden 96 --layers 2 --heads 4 --kv-heads 1 --head-dim 32", 1 },
		{ "--preset 2b --sparse --shards 2", 2 },
		{ "--preset 9b --sparse --shards 4", 4 },
		{ "--preset 27b --sparse --shards 12", 12 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char dir[512], cmd[600];
		struct ld_desc d;
		snprintf(dir, sizeof(dir), "%s/m%zu", tmpdir, i);
		CHECK(run_mkmodel(cases[i].args, dir) == 0, "mkmodel %s failed", cases[i].args);
		int rc = ld_desc_local(dir, &d, err, sizeof(err));
		CHECK(rc == 0, "%s: %s", cases[i].args, err);
		if (rc == 0) {
			CHECK(d.n_shards == cases[i].shards, "%s: %d shards", cases[i].args, d.n_shards);
			uint64_t es = strstr(cases[i].args, "f32") ? 4 : 2;
			CHECK(d.total_tensor_bytes == g2_n_params(&d.cfg) * es, "%s: bytes", cases[i].args);
			ld_desc_release(&d);
		}
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK(system(cmd) == 0, "cleanup");
	}
}

static void test_mkmodel_is_deterministic(void)
{
	char a[512], b[512], cmd[1200];
	snprintf(a, sizeof(a), "%s/da", tmpdir);
	snprintf(b, sizeof(b), "%s/db", tmpdir);
	CHECK(run_mkmodel("--preset tiny --seed 3 --tokenizer none", a) == 0, "mkmodel a");
	CHECK(run_mkmodel("--preset tiny --seed 3 --tokenizer none", b) == 0, "mkmodel b");
	snprintf(cmd, sizeof(cmd), "cmp -s %s/model.safetensors %s/model.safetensors", a, b);
	CHECK(system(cmd) == 0, "same seed, same bytes");
	CHECK(run_mkmodel("--preset tiny --seed 4 --tokenizer none", b) == 0, "mkmodel c");
	CHECK(system(cmd) != 0, "other seed, other bytes");
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", a, b);
	CHECK(system(cmd) == 0, "cleanup");
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gr-test-model-format-%d", (int)getpid());
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	RUN(test_index_parse);
	RUN(test_golden_models_validate);
	RUN(test_validation_names_the_tensor);
	RUN(test_mkmodel_round_trip_every_preset);
	RUN(test_mkmodel_is_deterministic);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		return 1;
	return th_done();
}
