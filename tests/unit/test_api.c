/*
 * test_api.c - the service/api headers and a request through them.
 * api.h (and each api_*.h) is included twice: api.h used to close its
 * include guard before the response types, so a second include redefined
 * struct api_out and did not compile. Then: a request parses (prompt ids
 * with BOS, sampling fields), a bad field names its param, API_OOM_JSON is
 * what api_error_json builds for a 500 "out of memory", and a response that
 * cannot be built whole (GR_TEST_SBUF_MAX, common/sbuf.h) is answered with
 * that body by api_json_or_oom.
 */
#include "service/api/api.h"
#include "service/api/api.h"
#include "service/api/api_chat.h"
#include "service/api/api_chat.h"
#include "service/api/api_parse.h"
#include "service/api/api_parse.h"
#include "service/api/api_resp.h"
#include "service/api/api_resp.h"

#include <stdlib.h>

#include "common/sbuf.h"
#include "common/status.h"
#include "tokenizer/tokenizer.h"
#include "tests/harness.h"

/* A five-token BPE vocabulary ("ab" merges; U+2581 is the space). */
static const char tok_json[] =
	"{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":false,"
	"\"fuse_unk\":true,\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"ab\":3,\"\\u2581\":4},"
	"\"merges\":[[\"a\",\"b\"]]},"
	"\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"},"
	"\"pre_tokenizer\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
	"{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
	"{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}}";

static struct tokenizer *g_tok;
static const struct api_limits g_lim = { .vocab_size = 5, .max_model_len = 64, .bos_id = 1, .eot_id = -1,
					 .model_name = "m" };

static int parse(enum api_kind kind, const char *body, struct api_req *r, struct api_err *e)
{
	cJSON *j = cJSON_Parse(body);
	int rc = api_parse(kind, j, g_tok, &g_lim, r, e);
	cJSON_Delete(j);
	return rc;
}

static void test_parse_request(void)
{
	struct api_req r;
	struct api_err e;

	if (!g_tok) {
		CHECK(0, "no tokenizer");
		return;
	}
	CHECK(parse(API_COMPLETION, "{\"model\":\"m\",\"prompt\":\"ab ab\",\"max_tokens\":3,\"temperature\":0,"
		    "\"n\":2,\"stop\":\"x\"}", &r, &e) == 0, "rejected: %s", e.msg);
	CHECK(r.kind == API_COMPLETION && r.n_prompts == 1 && r.n == 2, "kind %d prompts %d n %d", r.kind,
	      r.n_prompts, r.n);
	/* BOS, "ab", U+2581, "ab" */
	CHECK(r.prompts[0].n_ids == 4 && r.prompts[0].ids[0] == 1 && r.prompts[0].ids[1] == 3 &&
	      r.prompts[0].ids[2] == 4 && r.prompts[0].ids[3] == 3, "ids n=%d", r.prompts[0].n_ids);
	CHECK(r.prompts[0].text_len == 5 && !strcmp(r.prompts[0].text, "ab ab"), "text '%s'", r.prompts[0].text);
	CHECK(r.smp.max_tokens == 3 && r.smp.temperature == 0 && r.smp.n_stop == 1 && !strcmp(r.smp.stop[0], "x"),
	      "max_tokens %d n_stop %d", r.smp.max_tokens, r.smp.n_stop);
	api_req_release(&r);
}

static void test_parse_error_names_param(void)
{
	struct api_req r;
	struct api_err e;

	CHECK(parse(API_COMPLETION, "{\"prompt\":\"ab\",\"temperature\":-1}", &r, &e) == ST_EINVAL, "accepted");
	CHECK(e.status == 400 && e.param && !strcmp(e.param, "temperature"), "status %d param %s", e.status,
	      e.param ? e.param : "(null)");
	CHECK(parse(API_CHAT, "{\"messages\":[{\"content\":\"ab\"}]}", &r, &e) == ST_EINVAL, "accepted");
	CHECK(e.status == 400 && e.param && !strcmp(e.param, "messages"), "status %d param %s", e.status,
	      e.param ? e.param : "(null)");
}

/* cache_salt: a non-empty string, hashed into eng_sampling.cache_salt (0: none). */
static void test_cache_salt(void)
{
	struct api_req r;
	struct api_err e;
	uint64_t a;

	CHECK(parse(API_COMPLETION, "{\"prompt\":[1,2],\"cache_salt\":\"tenant-a\"}", &r, &e) == 0,
	      "rejected: %s", e.msg);
	a = r.smp.cache_salt;
	CHECK(a != 0 && a == eng_cache_salt("tenant-a"), "salt %llu", (unsigned long long)a);
	api_req_release(&r);
	CHECK(parse(API_COMPLETION, "{\"prompt\":[1,2],\"cache_salt\":\"tenant-b\"}", &r, &e) == 0 &&
	      r.smp.cache_salt != a && r.smp.cache_salt != 0, "tenant-b");
	api_req_release(&r);
	CHECK(parse(API_COMPLETION, "{\"prompt\":[1,2]}", &r, &e) == 0 && r.smp.cache_salt == 0, "none");
	api_req_release(&r);
	CHECK(parse(API_COMPLETION, "{\"prompt\":[1,2],\"cache_salt\":\"\"}", &r, &e) == ST_EINVAL &&
	      e.status == 400 && e.param && !strcmp(e.param, "cache_salt"), "empty salt accepted");
	CHECK(parse(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"}],\"cache_salt\":7}",
		    &r, &e) == ST_EINVAL && e.param && !strcmp(e.param, "cache_salt"),
	      "a number accepted as cache_salt");
}

static void test_oom_body_is_the_500_error(void)
{
	struct sbuf sb;
	sb_init(&sb);
	api_error_json(&sb, 500, "out of memory", NULL);
	CHECK(!sb.oom && !strcmp(sb_cstr(&sb), API_OOM_JSON), "got %s", sb_cstr(&sb));
	sb_release(&sb);
}

/* Runs with GR_TEST_SBUF_MAX=1024 (main). */
static void test_response_oom_is_500(void)
{
	static char text[2000];
	struct api_meta m = { .kind = API_COMPLETION, .id = "cmpl-1", .created = 1, .model = "m", .tok = NULL };
	struct api_out o = { .index = 0, .text = "ab", .text_len = 2, .finish = "length" };
	struct sbuf sb;
	const char *body;
	size_t len;

	sb_init(&sb);
	api_response_json(&sb, &m, &o, 1, 3, 1);
	body = api_json_or_oom(&sb, &len);
	CHECK(!sb.oom && body == sb.buf && len == sb.len && strstr(body, "\"text\":\"ab\""), "small: %s", body);

	/* a text over the limit: the builder fails, and the body to send is the error */
	memset(text, 'a', sizeof(text));
	o.text = text;
	o.text_len = sizeof(text);
	sb_reset(&sb);
	api_response_json(&sb, &m, &o, 1, 3, 1);
	body = api_json_or_oom(&sb, &len);
	CHECK(sb.oom, "no oom");
	CHECK(!strcmp(body, API_OOM_JSON) && len == strlen(API_OOM_JSON), "body %.80s", body);

	/* echo: prompt + text joined in a buffer of its own, whose failure counts too */
	o.prefix = text;
	o.prefix_len = 600;
	o.text = text;
	o.text_len = 600;
	sb_reset(&sb);
	api_response_json(&sb, &m, &o, 1, 3, 1);
	CHECK(sb.oom, "echo: a cut text was not noticed");
	sb_release(&sb);
}

/* Tokens that are whole non-ASCII characters: "日本" (2 chars, 6 bytes), "語", an emoji (4 bytes). */
static const char tok_ja_json[] =
	"{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":false,"
	"\"fuse_unk\":true,\"vocab\":{\"<unk>\":0,\"\u65e5\u672c\":1,\"\u8a9e\":2,"
	"\"\xf0\x9f\x98\x80\":3,\"a\":4},\"merges\":[]},"
	"\"normalizer\":null,\"pre_tokenizer\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
	"{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
	"{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}}";

/* Completions logprobs.text_offset counts characters (vLLM), not UTF-8 bytes. */
static void test_text_offset_counts_characters(void)
{
	struct tokenizer *tj = NULL;
	const int ids[4] = { 1, 2, 3, 4 };	/* 日本 語 😀 a */
	const float lp[4] = { -1, -1, -1, -1 };
	struct eng_logprob top[4] = { { 1, -1 }, { 2, -1 }, { 3, -1 }, { 4, -1 } };
	struct api_out o = { .index = 0, .text = "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xf0\x9f\x98\x80" "a",
			     .text_len = 14, .n_tokens = 4, .tokens = ids, .lp = lp, .top = top, .n_top = 1,
			     .finish = "length" };
	struct api_meta m = { .kind = API_COMPLETION, .id = "cmpl-1", .created = 1, .model = "m" };
	struct sbuf sb;

	CHECK(tok_create(tok_ja_json, strlen(tok_ja_json), &tj) == 0, "tokenizer");
	if (!tj)
		return;
	m.tok = tj;
	CHECK(api_utf8_chars(o.text, o.text_len) == 5, "chars %zu", api_utf8_chars(o.text, o.text_len));
	sb_init(&sb);
	api_response_json(&sb, &m, &o, 1, 3, 4);
	CHECK(!sb.oom && strstr(sb_cstr(&sb), "\"text_offset\":[0,2,3,4]"), "got %s", sb_cstr(&sb));
	/* a later streaming chunk starts where the characters before it end */
	o.text_offset = 7;
	sb_reset(&sb);
	api_chunk_json(&sb, &m, &o, 0);
	CHECK(!sb.oom && strstr(sb_cstr(&sb), "\"text_offset\":[7,9,10,11]"), "got %s", sb_cstr(&sb));
	sb_release(&sb);
	tok_destroy(tj);
}

/* usage carries prompt_tokens_details.cached_tokens (from the engine). */
static void test_usage_cached_tokens(void)
{
	struct api_meta m = { .kind = API_CHAT, .id = "chatcmpl-1", .created = 1, .model = "m",
			      .cached_tokens = 16 };
	struct api_out o = { .index = 0, .text = "ab", .text_len = 2, .finish = "stop" };
	struct sbuf sb;

	sb_init(&sb);
	api_response_json(&sb, &m, &o, 1, 20, 2);
	CHECK(strstr(sb_cstr(&sb), "\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":2,"
		     "\"total_tokens\":22,\"prompt_tokens_details\":{\"cached_tokens\":16}}"), "got %s", sb_cstr(&sb));
	sb_reset(&sb);
	api_usage_chunk_json(&sb, &m, 20, 2);
	CHECK(strstr(sb_cstr(&sb), "\"prompt_tokens_details\":{\"cached_tokens\":16}"), "chunk %s", sb_cstr(&sb));
	sb_release(&sb);
}

static void expect_400(enum api_kind kind, const char *body, const char *param)
{
	struct api_req r;
	struct api_err e;
	int rc = parse(kind, body, &r, &e);

	CHECK(rc == ST_EINVAL && e.status == 400 && e.param && !strcmp(e.param, param),
	      "%s: rc %d status %d param %s (%s)", body, rc, e.status, e.param ? e.param : "(null)", e.msg);
	if (rc == 0)
		api_req_release(&r);
}

/* logit_bias is parsed into the sampling parameters; bad entries are 400s. */
static void test_logit_bias(void)
{
	struct api_req r;
	struct api_err e;

	CHECK(parse(API_COMPLETION, "{\"prompt\":\"ab\",\"logit_bias\":{\"3\":-100,\"4\":2.5}}", &r, &e) == 0,
	      "rejected: %s", e.msg);
	CHECK(r.smp.n_logit_bias == 2 && r.smp.bias_ids[0] == 3 && r.smp.bias[0] == -100 &&
	      r.smp.bias_ids[1] == 4 && r.smp.bias[1] == 2.5f, "n %d", r.smp.n_logit_bias);
	api_req_release(&r);
	CHECK(parse(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"}],\"logit_bias\":{}}", &r,
		    &e) == 0 && r.smp.n_logit_bias == 0, "empty object: %s", e.msg);
	api_req_release(&r);
	expect_400(API_COMPLETION, "{\"prompt\":\"ab\",\"logit_bias\":{\"5\":1}}", "logit_bias");	/* vocab 5 */
	expect_400(API_COMPLETION, "{\"prompt\":\"ab\",\"logit_bias\":{\"x\":1}}", "logit_bias");
	expect_400(API_COMPLETION, "{\"prompt\":\"ab\",\"logit_bias\":{\"-1\":1}}", "logit_bias");
	expect_400(API_COMPLETION, "{\"prompt\":\"ab\",\"logit_bias\":{\"1\":100.5}}", "logit_bias");
	expect_400(API_COMPLETION, "{\"prompt\":\"ab\",\"logit_bias\":{\"1\":\"2\"}}", "logit_bias");
	expect_400(API_COMPLETION, "{\"prompt\":\"ab\",\"logit_bias\":[1]}", "logit_bias");
}

/* response_format: only {"type":"text"} until structured outputs exist. */
/* response_format: text is the default; json_object and json_schema are
 * structured outputs (engine/grammar*.c), compiled while parsing; anything
 * else is a 400 naming it. */
static void test_response_format(void)
{
	struct api_req r;
	struct api_err e;

	CHECK(parse(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"}],"
		    "\"response_format\":{\"type\":\"text\"}}", &r, &e) == 0, "text refused: %s", e.msg);
	CHECK(r.smp.guide_kind == 0, "text is not a constraint");
	api_req_release(&r);
	CHECK(parse(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"}],"
		    "\"response_format\":{\"type\":\"json_object\"}}", &r, &e) == 0, "json_object: %s", e.msg);
	CHECK(r.smp.guide_kind != 0, "json_object gave no constraint");
	api_req_release(&r);
	CHECK(parse(API_COMPLETION, "{\"prompt\":\"ab\",\"response_format\":{\"type\":\"json_schema\","
		    "\"json_schema\":{\"name\":\"x\",\"schema\":{\"type\":\"integer\"}}}}", &r, &e) == 0,
	      "json_schema: %s", e.msg);
	CHECK(r.smp.guide_kind != 0, "json_schema gave no constraint");
	api_req_release(&r);
	expect_400(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"}],"
		   "\"response_format\":\"json\"}", "response_format");
	expect_400(API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"ab\"}],"
		   "\"response_format\":{\"type\":\"yaml\"}}", "response_format");
}

int main(void)
{
	setenv("GR_TEST_SBUF_MAX", "1024", 1);	/* read at the first growth of any sbuf */
	if (tok_create(tok_json, strlen(tok_json), &g_tok) < 0)
		g_tok = NULL;
	RUN(test_parse_request);
	RUN(test_parse_error_names_param);
	RUN(test_cache_salt);
	RUN(test_oom_body_is_the_500_error);
	RUN(test_response_oom_is_500);
	RUN(test_text_offset_counts_characters);
	RUN(test_usage_cached_tokens);
	RUN(test_logit_bias);
	RUN(test_response_format);
	tok_destroy(g_tok);
	return th_done();
}
