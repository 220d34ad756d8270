/*
 * test_loader_parsers.c - the loader's small parsers and the chunk planner:
 * Content-Range (valid forms, every malformed shape), GCS object metadata
 * (sizes as strings, generation, base64 crc32c, gzip), object-name
 * encoding, crc32c.json manifests, and chunk plans that tile each shard's
 * data region exactly and land at the right arena offsets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/util.h"
#include "loader/http.h"
#include "loader/manifest.h"
#include "loader/pipeline.h"
#include "loader/source_gcs.h"
#include "loader/url.h"
#include "tests/harness.h"

static int cr(const char *s, uint64_t *a, uint64_t *b, uint64_t *t)
{
	return ld_parse_content_range(s, strlen(s), a, b, t);
}

static void test_content_range(void)
{
	uint64_t a, b, t;
	CHECK(cr("bytes 0-99/1234", &a, &b, &t) == 0 && a == 0 && b == 99 && t == 1234, "basic");
	CHECK(cr(" bytes 5-5/6\r\n", &a, &b, &t) == 0 && a == 5 && b == 5 && t == 6, "blanks, crlf");
	CHECK(cr("BYTES 1-2/*", &a, &b, &t) == 0 && t == UINT64_MAX, "unknown total");
	CHECK(cr("bytes 0-18446744073709551614/18446744073709551615", &a, &b, &t) < 0 ||
	      t == 18446744073709551615ull, "near max");
	const char *bad[] = { "", "bytes", "bytes ", "bytes 1-0/5", "bytes 0-5/5", "bytes 0-4", "bytes 0-4/",
			      "bytes -4/5", "bytes 0--4/5", "bytes a-4/5", "bits 0-4/5", "bytes 0-4/5x",
			      "bytes 0-4/5 6", "bytes */5", "bytes 0-99999999999999999999/1",
			      "bytes 0-4/*5", "bytes0-4/5", "bytes +0-4/5" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(cr(bad[i], &a, &b, &t) == ST_EFORMAT, "accepted '%s'", bad[i]);
	/* not NUL-terminated: the length bounds the parse */
	CHECK(ld_parse_content_range("bytes 0-9/10junk", 12, &a, &b, &t) == 0 && t == 10, "length-bounded");
}

static int meta(const char *j, struct gcs_obj_meta *m)
{
	char err[256];
	return gcs_parse_object_meta(j, strlen(j), m, err, sizeof(err));
}

static void test_gcs_metadata(void)
{
	struct gcs_obj_meta m;
	CHECK(meta("{\"kind\":\"storage#object\",\"name\":\"a/b\",\"size\":\"18500000000\",\"generation\":"
		   "\"1700000000123456\",\"crc32c\":\"4waSgw==\",\"md5Hash\":\"x\"}", &m) == 0,
	      "real shape rejected");
	CHECK(m.size == 18500000000ull && m.generation == 1700000000123456ll && m.has_crc &&
	      m.crc32c == 0xE3069283u && !m.gzip, "fields wrong");
	CHECK(meta("{\"size\":12,\"generation\":\"3\"}", &m) == 0 && m.size == 12 && !m.has_crc, "numeric size");
	CHECK(meta("{\"size\":\"1\",\"generation\":\"3\",\"contentEncoding\":\"gzip\"}", &m) == 0 && m.gzip,
	      "gzip not flagged");
	const char *bad[] = { "", "[]", "{", "{\"generation\":\"3\"}", "{\"size\":\"1\"}",
			      "{\"size\":\"-1\",\"generation\":\"3\"}", "{\"size\":\"1x\",\"generation\":\"3\"}",
			      "{\"size\":\"\",\"generation\":\"3\"}", "{\"size\":1.5,\"generation\":\"3\"}",
			      "{\"size\":\"1\",\"generation\":\"0\"}",
			      "{\"size\":\"99999999999999999999\",\"generation\":\"3\"}",
			      "{\"size\":\"1\",\"generation\":\"3\",\"crc32c\":\"abc\"}",
			      "{\"size\":\"1\",\"generation\":\"3\",\"crc32c\":7}",
			      "{\"size\":\"1\",\"generation\":\"3\",\"contentEncoding\":1}" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(meta(bad[i], &m) == ST_EFORMAT, "accepted %s", bad[i]);
}

static void test_encode_name(void)
{
	char out[64];
	CHECK(ld_url_encode("models/gemma 2/model-00001.safetensors", out, sizeof(out)) == 0 &&
	      strcmp(out, "models%2Fgemma%202%2Fmodel-00001.safetensors") == 0, "got %s", out);
	CHECK(ld_url_encode("a?b#c%", out, sizeof(out)) == 0 && strcmp(out, "a%3Fb%23c%25") == 0, "got %s", out);
	CHECK(ld_url_encode("0123456789012345678901234567890123456789/////////", out, sizeof(out)) == ST_ERANGE,
	      "overflow not detected");
}

static void test_manifest(void)
{
	struct ld_manifest m;
	char err[256];
	const char *ok = "{\"format\":\"gemma-run-crc32c-1\",\"files\":{\"config.json\":{\"size\":9,"
			 "\"crc32c\":\"4waSgw==\"},\"model.safetensors\":{\"size\":0,\"crc32c\":\"AAAAAA==\"}}}";
	CHECK(ld_manifest_parse(ok, strlen(ok), &m, err, sizeof(err)) == 0, "%s", err);
	CHECK(m.n == 2, "n %d", m.n);
	const struct ld_manifest_entry *e = ld_manifest_find(&m, "config.json");
	CHECK(e && e->size == 9 && e->crc32c == 0xE3069283u, "entry");
	CHECK(!ld_manifest_find(&m, "other"), "found a missing name");
	ld_manifest_release(&m);
	const char *bad[] = { "{}", "{\"format\":\"x\",\"files\":{}}",
			      "{\"format\":\"gemma-run-crc32c-1\",\"files\":{\"a\":{\"size\":-1,\"crc32c\":\"AAAAAA==\"}}}",
			      "{\"format\":\"gemma-run-crc32c-1\",\"files\":{\"a\":{\"size\":1,\"crc32c\":\"zz\"}}}",
			      "{\"format\":\"gemma-run-crc32c-1\",\"files\":[]}" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(ld_manifest_parse(bad[i], strlen(bad[i]), &m, err, sizeof(err)) < 0, "accepted %s", bad[i]);
		ld_manifest_release(&m);
	}
}

static void test_chunk_plan(void)
{
	uint64_t start[3] = { 100, 8, 4096 }, len[3] = { 1000, 0, 2500 };
	size_t base[3] = { 0, 1024, 1024 };
	struct ld_chunk *c;
	int n;
	CHECK(ld_plan_chunks(3, start, len, base, 512, &c, &n) == 0, "plan failed");
	CHECK(n == 2 + 0 + 5, "n %d", n);
	/* tiles each shard's region in file order, exact lengths, right arena offsets */
	uint64_t covered[3] = { 0, 0, 0 };
	for (int i = 0; i < n; i++) {
		int s = c[i].obj;
		CHECK(c[i].file_off == start[s] + covered[s], "chunk %d starts at %llu", i,
		      (unsigned long long)c[i].file_off);
		CHECK(c[i].arena_off == base[s] + covered[s], "chunk %d arena %zu", i, c[i].arena_off);
		CHECK(c[i].len > 0 && c[i].len <= 512, "chunk %d len %zu", i, c[i].len);
		CHECK(i == 0 || c[i].obj > c[i - 1].obj || c[i].index_in_obj == c[i - 1].index_in_obj + 1,
		      "order at %d", i);
		covered[s] += c[i].len;
	}
	for (int s = 0; s < 3; s++)
		CHECK(covered[s] == len[s], "shard %d covered %llu", s, (unsigned long long)covered[s]);
	CHECK(c[1].len == 488 && c[6].len == 2500 - 4 * 512, "tail lengths %zu %zu", c[1].len, c[6].len);
	free(c);
	CHECK(ld_plan_chunks(3, start, len, base, 0, &c, &n) == ST_EINVAL, "chunk 0 accepted");
	uint64_t huge = UINT64_MAX / 2;
	CHECK(ld_plan_chunks(1, start, &huge, base, 1, &c, &n) == ST_ERANGE, "absurd plan accepted");
}

int main(void)
{
	RUN(test_content_range);
	RUN(test_gcs_metadata);
	RUN(test_encode_name);
	RUN(test_manifest);
	RUN(test_chunk_plan);
	return th_done();
}
