/*
 * test_safetensors.c - the strict safetensors header parser: one accepted
 * header, then every rejection path, each with a header built here and a
 * check that the message names the tensor (or field) at fault.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "loader/safetensors.h"
#include "tests/harness.h"

static char err[512];

/* Parses json as the header of a file with `data` bytes of tensor data. */
static int parse(const char *json, uint64_t data, struct st_file *f)
{
	return st_parse_header(json, strlen(json), 8 + strlen(json) + data, f, err, sizeof(err));
}

/* Expects a rejection whose message contains `needle`. */
static void expect_reject(const char *json, uint64_t data, const char *needle)
{
	struct st_file f;
	int rc = parse(json, data, &f);
	CHECK(rc == ST_EFORMAT, "accepted: %s", json);
	CHECK(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
}

static void test_accepts_valid_header(void)
{
	struct st_file f;
	const char *h = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[4,28]},"
			"\"__metadata__\":{\"format\":\"pt\"},"
			"\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
			"\"z\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[28,28]}}    ";
	int rc = parse(h, 28, &f);
	CHECK(rc == 0, "rc %d: %s", rc, err);
	if (rc)
		return;
	CHECK(f.n_tensors == 3, "n %d", f.n_tensors);
	CHECK(strcmp(f.tensors[0].name, "a") == 0, "sorted by offset: %s", f.tensors[0].name);
	CHECK(strcmp(f.tensors[1].name, "b") == 0 && f.tensors[1].ndim == 2 && f.tensors[1].shape[1] == 3,
	      "b parsed");
	CHECK(f.data_start == 8 + strlen(h), "data_start %llu", (unsigned long long)f.data_start);
	CHECK(f.metadata_json && strstr(f.metadata_json, "\"format\":\"pt\""), "metadata kept: %s",
	      f.metadata_json ? f.metadata_json : "(null)");
	CHECK(st_find(&f, "z") && st_numel(st_find(&f, "z")) == 0, "empty tensor found");
	st_file_release(&f);
}

static void test_all_known_dtypes(void)
{
	static const char *const names[] = { "BF16", "F16", "F32", "F64", "I8", "U8", "I16",
					     "I32", "I64", "BOOL", "F8_E4M3", "F8_E5M2" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int dt = st_dtype_parse(names[i]);
		char h[256];
		struct st_file f;
		CHECK(dt >= 0, "%s unknown", names[i]);
		size_t sz = st_dtype_size((enum st_dtype)dt);
		snprintf(h, sizeof(h), "{\"t\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%zu]}}",
			 names[i], 3 * sz);
		CHECK(parse(h, 3 * sz, &f) == 0, "%s rejected: %s", names[i], err);
		st_file_release(&f);
	}
}

static void test_header_length_limits(void)
{
	uint8_t p[8] = { 0 };
	uint64_t n;
	uint64_t big = (uint64_t)ST_MAX_HEADER + 1;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(big >> (8 * i));
	CHECK(st_header_len(p, 1ull << 40, &n, err, sizeof(err)) == ST_EFORMAT, "over 100 MB accepted");
	CHECK(strstr(err, "limit"), "%s", err);
	memset(p, 0, 8);
	p[0] = 100;
	CHECK(st_header_len(p, 50, &n, err, sizeof(err)) == ST_EFORMAT, "past EOF accepted");
	CHECK(strstr(err, "past the end"), "%s", err);
	CHECK(st_header_len(p, 4, &n, err, sizeof(err)) == ST_EFORMAT, "short file accepted");
	p[0] = 1;
	CHECK(st_header_len(p, 50, &n, err, sizeof(err)) == ST_EFORMAT, "tiny length accepted");
	p[0] = 10;
	CHECK(st_header_len(p, 50, &n, err, sizeof(err)) == 0 && n == 10, "valid length rejected");
	/* a header that does not fit its file */
	struct st_file f;
	CHECK(st_parse_header("{}", 2, 5, &f, err, sizeof(err)) == ST_EFORMAT, "header past file end");
}

static void test_rejects_bad_json(void)
{
	expect_reject("{\"a\":", 0, "not valid JSON");
	expect_reject("[1,2]", 0, "not a JSON object");
	expect_reject("{} x", 0, "trailing bytes");
	struct st_file f;
	CHECK(st_parse_header("{}\0 ", 4, 100, &f, err, sizeof(err)) == ST_EFORMAT, "NUL accepted");
}

static void test_rejects_bad_entries(void)
{
	expect_reject("{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "'w': unknown dtype");
	expect_reject("{\"w\":{\"shape\":[1],\"data_offsets\":[0,2]}}", 2, "'w': missing");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"data_offsets\":[0,2]}}", 2, "'w': missing or non-array shape");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[1]}}", 2, "'w': data_offsets");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2],\"x\":1}}", 2,
		      "'w': unknown field 'x'");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[-1],\"data_offsets\":[0,2]}}", 2, "'w': shape[0]");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[1.5],\"data_offsets\":[0,2]}}", 2, "'w': shape[0]");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,2]}}", 2,
		      "'w': 9 dimensions");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4,
		      "'w': shape x BF16 size is 6 bytes but data_offsets span 4");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,2]}}", 4, "'w': data_offsets end");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,\"2\"]}}", 2, "'w': data_offsets");
	expect_reject("{\"w\":{\"dtype\":\"BF16\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,2]}}", 2,
		      "'w': shape");
	expect_reject("{\"w\":7}", 0, "'w': entry is not an object");
}

static void test_rejects_bad_layout(void)
{
	expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
		      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "'b': bytes [4, 12) overlap");
	expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "'b': hole of 4 bytes");
	expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "'a': hole");
	expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
		      "'a': data_offsets end 16 is past the 8 bytes");
	expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 10,
		      "6 bytes of data after the last tensor a");
	expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
		      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "'a' appears twice");
	expect_reject("{\"__metadata__\":[1]}", 0, "__metadata__ is not an object");
	expect_reject("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value 'k'");
}

static void test_reads_golden_files(void)
{
	struct st_file f;
	int rc = st_read_file_header("tests/golden/gemma2-tiny-a/model.safetensors", &f, err, sizeof(err));
	CHECK(rc == 0, "golden a: %s", err);
	if (rc == 0) {
		const struct st_tensor *t = st_find(&f, "model.embed_tokens.weight");
		CHECK(t && t->ndim == 2 && t->shape[0] == 512 && t->shape[1] == 64, "embedding shape");
		st_file_release(&f);
	}
	CHECK(st_read_file_header("tests/golden/no-such-file", &f, err, sizeof(err)) == ST_ENOENT,
	      "missing file");
	CHECK(st_read_file_header("tests/golden/README.md", &f, err, sizeof(err)) == ST_EFORMAT,
	      "a text file is not safetensors: %s", err);
}

int main(void)
{
	RUN(test_accepts_valid_header);
	RUN(test_all_known_dtypes);
	RUN(test_header_length_limits);
	RUN(test_rejects_bad_json);
	RUN(test_rejects_bad_entries);
	RUN(test_rejects_bad_layout);
	RUN(test_reads_golden_files);
	return th_done();
}
