/*
 * test_grammar.c - the grammar matcher, the regex and JSON Schema
 * compilers (engine/grammar*.c): for each schema of a corpus written from
 * the JSON Schema spec, hand-written documents the grammar must accept
 * and must reject; unsupported keywords refused by name; the cache.
 */
#include <stdint.h>

#include "common/status.h"
#include "engine/grammar.h"
#include "engine/grammar_regex.h"
#include "engine/grammar_cache.h"
#include "engine/grammar_schema.h"
#include "tests/harness.h"

struct gcase {
	int kind;
	const char *src;
	const char *ok[8];
	const char *bad[8];
};

static const struct gcase cases[] = {
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\"}", { "\"\"", "\"a b\"", "\"\\u00e9\\n\"", "\"h\xc3\xa9\"" },
	  { "", "\"", "\"a", "1", "\"a\"x", "\"\\x\"", "\"\x01\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"integer\"}", { "0", "-5", "123456" }, { "01", "1.5", "-", "+1", "1e3" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"number\"}", { "0", "-0.5", "1e10", "2.5E-3", "7" }, { ".5", "1.", "1e", "--1" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"boolean\"}", { "true", "false" }, { "True", "1", "null" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"null\"}", { "null" }, { "nul", "0", "\"null\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":[\"integer\",\"null\"]}", { "3", "null" }, { "\"3\"", "true" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"object\"}", { "{}", "{\"a\":1}", "{ \"a\" : [1, {\"b\":null}] }" },
	  { "[]", "{", "{\"a\"}", "{a:1}", "{\"a\":1,}" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}},\"required\":[\"a\"]}",
	  { "{\"a\":1}", "{\"a\":1,\"b\":\"x\"}", "{ \"a\": 2, \"b\": \"\" }" },
	  { "{}", "{\"b\":\"x\"}", "{\"a\":\"1\"}", "{\"a\":1,\"c\":2}", "{\"a\":1,}", "{\"b\":\"x\",\"a\":1}" } },
	{ GRS_JSON_SCHEMA, "{\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}}}",
	  { "{}", "{\"a\":1}", "{\"b\":2}", "{\"a\":1,\"b\":2}" }, { "{,\"b\":2}", "{\"a\":1,}", "{\"c\":1}" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":{\"type\":\"boolean\"}}",
	  { "{\"a\":1,\"x\":true}", "{\"y\":false}" }, { "{\"x\":1}" } },
	{ GRS_JSON_SCHEMA, "{\"enum\":[\"red\",\"green\",1,null]}", { "\"red\"", "\"green\"", "1", "null" }, { "\"blue\"", "\"re\"", "2" } },
	{ GRS_JSON_SCHEMA, "{\"const\":{\"k\":[1,2]}}", { "{\"k\":[1,2]}" }, { "{\"k\":[1]}", "{}" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}",
	  { "[1]", "[1,2,3]", "[ 1 , 2 ]" }, { "[]", "[1,2,3,4]", "[\"a\"]", "[1,]" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],\"items\":false}",
	  { "[\"a\",1]" }, { "[\"a\"]", "[1,\"a\"]", "[\"a\",1,2]" } },
	{ GRS_JSON_SCHEMA, "{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":2}]}",
	  { "5", "\"ab\"" }, { "\"abc\"", "true" } },
	{ GRS_JSON_SCHEMA, "{\"oneOf\":[{\"const\":1},{\"const\":2}]}", { "1", "2" }, { "3" } },
	{ GRS_JSON_SCHEMA, "{\"allOf\":[{\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},{\"properties\":{\"b\":{\"type\":\"boolean\"}},\"required\":[\"b\"]}]}",
	  { "{\"a\":1,\"b\":true}" }, { "{\"a\":1}", "{\"b\":true}" } },
	{ GRS_JSON_SCHEMA, "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"next\":{\"anyOf\":[{\"$ref\":\"#/$defs/node\"},{\"type\":\"null\"}]}},\"required\":[\"v\",\"next\"]}},\"$ref\":\"#/$defs/node\"}",
	  { "{\"v\":1,\"next\":null}", "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3,\"next\":null}}}" },
	  { "{\"v\":1}", "{\"v\":1,\"next\":{\"v\":2}}" } },
	{ GRS_JSON_SCHEMA, "{\"definitions\":{\"t\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/definitions/t\"}}},\"$ref\":\"#/definitions/t\"}",
	  { "[]", "[[],[[]]]" }, { "[1]", "[[1]]" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}", { "\"ab\"", "\"\xc3\xa9\xc3\xa9\"", "\"a\\nb\"" }, { "\"a\"", "\"abcd\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\",\"pattern\":\"^[a-z]+-[0-9]{2}$\"}", { "\"ab-12\"" }, { "\"ab-1\"", "\"Ab-12\"", "\"ab-123\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\",\"pattern\":\"ab\"}", { "\"ab\"", "\"xxabyy\"" }, { "\"a\"", "\"ba\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"date\"}", { "\"2024-02-28\"", "\"1999-12-31\"" }, { "\"2024-13-01\"", "\"2024-02-31\"", "\"24-01-01\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"time\"}", { "\"23:59:59Z\"", "\"01:02:03.5+01:00\"" }, { "\"24:00:00Z\"", "\"12:00:00\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"date-time\"}", { "\"2024-01-02T03:04:05Z\"" }, { "\"2024-01-02 03:04:05Z\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"uuid\"}", { "\"123e4567-e89b-12d3-a456-426614174000\"" }, { "\"123e4567e89b12d3a456426614174000\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"string\",\"format\":\"email\"}", { "\"a.b@example.com\"" }, { "\"a@b\"", "\"@example.com\"" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"integer\",\"minimum\":-12,\"maximum\":305}", { "-12", "-1", "0", "9", "10", "99", "305", "250" },
	  { "-13", "306", "310", "1000", "-0" } },
	{ GRS_JSON_SCHEMA, "{\"type\":\"integer\",\"exclusiveMinimum\":0}", { "1", "99999" }, { "0", "-1" } },
	{ GRS_JSON_OBJECT, "", { "{}", "{\"a\":{\"b\":[1,\"x\",null,true]}}" }, { "[]", "1", "\"a\"" } },
	{ GRS_REGEX, "(cat|dog)s?[0-9]{1,2}", { "cat1", "dogs42" }, { "cow1", "cat", "cat123", "xcat1" } },
	{ GRS_REGEX, "\\w+@\\d*\\.?", { "ab@", "a_b@12." }, { "@1", "ab@x" } },
	{ GRS_REGEX, "[^a-c]x.", { "dx\xc3\xa9", "zx!" }, { "ax!", "dx\n" } },
	/* nullable loops (the fuzzer found them hanging the closure): bounded, still exact */
	{ GRS_REGEX, "(a?|b?|)+c", { "c", "abc", "aac", "bbbc" }, { "d", "ca", "" } },
	{ GRS_REGEX, "((x*)*)*y{0,3}", { "", "xxx", "xyy", "yyy" }, { "yyyy", "yx" } },
	{ GRS_CHOICE, "[\"yes\",\"no\",\"maybe\"]", { "yes", "no", "maybe" }, { "ye", "yess", "" } },
};

static void test_corpus(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct gcase *c = &cases[i];
		struct gr_grammar *g;
		char err[200];
		int rc = grs_compile(c->kind, c->src, strlen(c->src), &g, err, sizeof(err));
		CHECK(rc == 0, "case %zu %s: %s", i, c->src, err);
		if (rc < 0)
			continue;
		for (int j = 0; j < 8 && c->ok[j]; j++)
			CHECK(gr_accepts(g, c->ok[j], strlen(c->ok[j])) == 1, "%s must accept %s", c->src, c->ok[j]);
		for (int j = 0; j < 8 && c->bad[j]; j++)
			CHECK(gr_accepts(g, c->bad[j], strlen(c->bad[j])) == 0, "%s must reject %s", c->src, c->bad[j]);
		gr_grammar_destroy(g);
	}
}

/* Unsupported keywords and malformed schemas: refused, the keyword named. */
static void test_unsupported(void)
{
	static const char *const bad[][2] = {
		{ "{\"not\":{}}", "not" },
		{ "{\"type\":\"object\",\"minProperties\":1}", "minProperties" },
		{ "{\"type\":\"string\",\"format\":\"ipv4\"}", "ipv4" },
		{ "{\"type\":\"number\",\"maximum\":1.5}", "minimum/maximum" },
		{ "{\"$ref\":\"http://x/y\"}", "$ref" },
		{ "{\"type\":\"string\",\"pattern\":\"(?=a)\"}", "pattern" },
		{ "{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", "pattern" },
		{ "{\"type\":\"strin\"}", "strin" },
		{ "{\"type\":", "not valid JSON" },
		{ "{\"allOf\":[{\"type\":\"string\"}]}", "allOf" },
		{ "{\"uniqueItems\":true}", "uniqueItems" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct gr_grammar *g = NULL;
		char err[200] = "";
		int rc = grs_compile(GRS_JSON_SCHEMA, bad[i][0], strlen(bad[i][0]), &g, err, sizeof(err));
		CHECK(rc == ST_EINVAL && !g, "%s: rc %d", bad[i][0], rc);
		CHECK(strstr(err, bad[i][1]) != NULL, "%s: message '%s' lacks '%s'", bad[i][0], err, bad[i][1]);
		gr_grammar_destroy(g);
	}
}

/* Byte-wise matching: states, marks, completion, can-continue. */
static void test_matcher_steps(void)
{
	struct gr_grammar *g;
	struct gr_match m;
	char err[100];
	const char *s = "{\"type\":\"integer\",\"maximum\":99}";

	CHECK(grs_compile(GRS_JSON_SCHEMA, s, strlen(s), &g, err, sizeof(err)) == 0, "%s", err);
	CHECK(gr_match_init(&m, g) == 0, "init");
	CHECK(!gr_accepting(&m) && gr_can_continue(&m), "start");
	CHECK(gr_advance(&m, "9", 1) == 0 && gr_accepting(&m) && gr_can_continue(&m), "9");
	CHECK(gr_advance(&m, "x", 1) == ST_EINVAL && gr_accepting(&m), "rejected byte leaves the state");
	CHECK(gr_advance(&m, "9", 1) == 0 && gr_accepting(&m) && !gr_can_continue(&m), "99 ends");
	CHECK(gr_advance(&m, "9", 1) == ST_EINVAL, "999");
	gr_match_release(&m);
	gr_grammar_destroy(g);
}

/* Deep nesting and long runs keep the arena compact and do not fail. */
static void test_deep_and_long(void)
{
	struct gr_grammar *g;
	struct gr_match m;
	char err[100];
	int ok = 1;

	CHECK(grs_compile(GRS_JSON_OBJECT, "", 0, &g, err, sizeof(err)) == 0, "%s", err);
	gr_match_init(&m, g);
	ok &= gr_advance(&m, "{\"a\":", 5) == 0;
	for (int i = 0; i < 500; i++)
		ok &= gr_advance(&m, "[", 1) == 0;
	for (int i = 0; i < 20000; i++)
		ok &= i % 2 ? gr_advance(&m, ",", 1) == 0 : gr_advance(&m, "1", 1) == 0;
	ok &= gr_advance(&m, "1", 1) == 0;
	for (int i = 0; i < 500; i++)
		ok &= gr_advance(&m, "]", 1) == 0;
	ok &= gr_advance(&m, "}", 1) == 0;
	CHECK(ok && gr_accepting(&m), "deep document");
	CHECK(m.n_nodes < 20000 && m.n_heads < 20000, "arena compacted: %d nodes %d heads", m.n_nodes, m.n_heads);
	gr_match_release(&m);
	gr_grammar_destroy(g);
}

static void test_cache(void)
{
	const struct gr_grammar *a, *b, *c;
	char err[100];
	const char *s1 = "{\"type\":\"integer\"}", *s2 = "{\"type\":\"string\"}";

	CHECK(grs_get(GRS_JSON_SCHEMA, s1, strlen(s1), &a, err, sizeof(err)) == 0, "%s", err);
	CHECK(grs_get(GRS_JSON_SCHEMA, s1, strlen(s1), &b, err, sizeof(err)) == 0, "%s", err);
	CHECK(grs_get(GRS_JSON_SCHEMA, s2, strlen(s2), &c, err, sizeof(err)) == 0, "%s", err);
	CHECK(a == b && a != c, "same text, same grammar");
	CHECK(grs_get(GRS_JSON_SCHEMA, "{\"not\":1}", 9, &b, err, sizeof(err)) == ST_EINVAL, "bad schema");
	grs_release(a);
	grs_release(a);
	grs_release(c);
}

int main(void)
{
	RUN(test_corpus);
	RUN(test_unsupported);
	RUN(test_matcher_steps);
	RUN(test_deep_and_long);
	RUN(test_cache);
	return th_done();
}
