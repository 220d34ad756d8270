/*
 * tok_internal.h - the inside of struct tokenizer, shared by tok_load.c
 * (building it from tokenizer.json), tok_json.c (the JSON scanner it uses)
 * and tokenizer.c (encode, decode, streaming). Not for other modules: they
 * use tokenizer/tokenizer.h.
 *
 * Invariants once tok_create returns: ids are dense in [0, n_vocab); every
 * piece is NUL-terminated in `pieces` and at most TOK_PIECE_MAX bytes; the
 * vocabulary table (load <= 1/2) and the merge table (load <= 2/3) are
 * open-addressed with power-of-two sizes, and every merge has its bit set in
 * merge_bloom; nothing changes afterwards.
 */
#ifndef GR_TOK_INTERNAL_H
#define GR_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

/* One merge rule: the pair (a, b) becomes new_id with priority rank (lower first). */
struct tok_merge {
	uint64_t key;		/* ((uint64_t)(a + 1) << 32) | b; 0 = empty slot */
	uint32_t rank;
	uint32_t new_id;
};

/* A vocabulary hash slot: all a lookup needs in one cache line. */
struct tok_vslot {
	uint32_t hash;
	uint32_t id1;		/* id + 1; 0 = empty slot */
	uint32_t off;		/* piece offset in `pieces` */
	uint32_t len;
};

/* Byte trie of the added tokens' contents (children as sibling lists). */
struct tok_trie_node {
	int32_t child;		/* first child node, -1 none */
	int32_t sibling;	/* next sibling, -1 none */
	int32_t id;		/* token ending here, -1 none */
	uint8_t byte;
};

struct tokenizer {
	int n_vocab;
	char *pieces;			/* every piece, NUL-terminated */
	uint32_t *piece_off;		/* (n_vocab,) offset of the piece in `pieces` */
	uint16_t *piece_len;		/* (n_vocab,) bytes, without the NUL */
	int16_t *byte_of;		/* (n_vocab,) value of a `<0xXX>` piece, else -1 */
	uint8_t *special;		/* (n_vocab,) 1 for special added tokens */
	struct tok_vslot *vocab_slots;
	uint32_t vocab_mask;
	struct tok_merge *merges;
	uint32_t merge_mask;
	uint64_t *merge_bloom;		/* bit (pair hash >> 40) & bloom_mask set for every merge */
	uint32_t bloom_mask;
	int32_t *bmp_id;		/* (65536,) id of each BMP code point's piece, -1 none */
	int32_t byte_id[256];		/* id of `<0xXX>`, -1 none */
	int unk_id;			/* -1 when the model has no unk_token */
	int byte_fallback, fuse_unk;
	/* normalizer: Replace(norm_from -> norm_to), or none when norm_from_len == 0 */
	char norm_from[16], norm_to[16];
	size_t norm_from_len, norm_to_len;
	/* decoder: Replace(dec_from -> dec_to) on every piece, then byte fallback, fuse */
	char dec_from[16], dec_to[16];
	size_t dec_from_len, dec_to_len;
	/* added tokens */
	struct tok_trie_node *trie;
	int n_trie;
	int32_t trie_root[256];		/* node of each first byte, -1 none */
	int bos_id, eos_id, pad_id;
};

uint32_t tok_hash(const char *s, size_t n);
/* Vocabulary lookup by bytes; -1 when absent. */
int tok_lookup(const struct tokenizer *t, const char *s, size_t n);

static inline uint64_t tok_pair_hash(uint64_t key)
{
	key ^= key >> 31;
	key *= 0x7fb5d329728ea185ull;
	key ^= key >> 27;
	key *= 0x81dadef4bc2dd44dull;
	return key ^ (key >> 33);
}

/* The merge of (a, b), or NULL. */
static inline const struct tok_merge *tok_merge_find(const struct tokenizer *t, int a, int b)
{
	uint64_t key = ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)b;
	uint64_t h = tok_pair_hash(key);
	uint32_t bit = (uint32_t)(h >> 40) & t->bloom_mask;
	/* most pairs in a word have no merge: a small bitmap answers those */
	if (!(t->merge_bloom[bit >> 6] & (1ull << (bit & 63))))
		return NULL;
	uint32_t i = (uint32_t)h & t->merge_mask;
	for (;;) {
		const struct tok_merge *m = &t->merges[i];
		if (m->key == key)
			return m;
		if (m->key == 0)
			return NULL;
		i = (i + 1) & t->merge_mask;
	}
}

/* ---- tok_json.c: the JSON scanner ---- */

#define TOKJ_DEPTH 64	/* deepest nesting tokj_skip accepts */

/* A cursor over [p, e). */
struct jp {
	const char *p, *e;
};

/* Bytes [p, p + n) of the input; p NULL for "absent". */
struct span {
	const char *p;
	size_t n;
};

static inline void tokj_ws(struct jp *j)
{
	while (j->p < j->e && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

static inline int tokj_peek(struct jp *j)
{
	tokj_ws(j);
	return j->p < j->e ? (unsigned char)*j->p : -1;
}

static inline int tokj_expect(struct jp *j, char c)
{
	tokj_ws(j);
	if (j->p < j->e && *j->p == c) {
		j->p++;
		return 0;
	}
	return -1;
}


/* Reads a JSON string at the cursor, unescaped into dst (room for the raw length). */
int tokj_str(struct jp *j, char *dst, size_t *n);
/* Skips a string; raw (may be NULL) gets the bytes between the quotes. */
int tokj_skip_str(struct jp *j, struct span *raw);
/* Skips any value; -1 when malformed or nested deeper than TOKJ_DEPTH. */
int tokj_skip(struct jp *j, int depth);
int tokj_span_is(struct span s, const char *lit);
/* Lists an object's members as (raw key, value span) pairs, at most max. */
int tokj_members(struct jp *j, struct span *keys, struct span *vals, int max, int *n);
/* The value span of key k, or a span with p NULL. */
struct span tokj_find(const struct span *keys, const struct span *vals, int n, const char *k);
/* Writes code point cp as UTF-8; returns its length (1-4). */
size_t tok_utf8_put(char *d, uint32_t cp);

#endif
