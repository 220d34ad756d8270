/*
 * grammar_mask.h - which tokens a grammar state allows: the vocabulary's
 * token bytes as a trie (built once per tokenizer), walked from a matcher
 * state to set one bit per allowed token (the sample op's dense mask).
 *
 * Not here: the grammar (grammar.h) nor applying the mask (the sample op,
 * kernels/sample.h).
 *
 * A token's bytes are its decoded text (`<0xNN>` byte tokens: that byte).
 * Special tokens and tokens with no bytes are never allowed, except the
 * end ids given at create, allowed exactly when the state is complete.
 * Ids at or above the tokenizer's vocabulary (a model's padded rows) are
 * never allowed. The walk visits only trie nodes whose prefix the grammar
 * accepts, skipping a child by its first byte when no head's class holds
 * it. A per-matcher cache (struct gm_cache) keeps the masks of the last
 * few distinct states: inside a JSON string or number the state repeats
 * token after token, so most steps copy a cached mask.
 */
#ifndef GR_GRAMMAR_MASK_H
#define GR_GRAMMAR_MASK_H

#include <stdint.h>

#include "engine/grammar.h"
#include "tokenizer/tokenizer.h"

struct gm_vocab;

/*
 * The trie of t's tokens for a model of `vocab` logits (vocab >= the
 * tokenizer's size is allowed); end ids[0, n_end) are the EOS-like ids.
 * Caller frees with gm_vocab_destroy.
 */
int gm_vocab_create(const struct tokenizer *t, int vocab, const int *end, int n_end,
		    struct gm_vocab **out);
void gm_vocab_destroy(struct gm_vocab *v);

/* 32-bit words of one mask: (vocab + 31) / 32. */
int gm_words(const struct gm_vocab *v);

/* Token id's bytes (borrowed; *n = 0 for special / empty tokens). */
const uint8_t *gm_token_bytes(const struct gm_vocab *v, int id, int *n);

/* Whether id is one of the end ids. */
int gm_is_end(const struct gm_vocab *v, int id);

#define GM_CACHE_N 4

/* The masks of recent states of one matcher (init zeroed; gm_cache_release). */
struct gm_cache {
	uint32_t *mask[GM_CACHE_N];
	int32_t *key[GM_CACHE_N];	/* serialised state */
	int key_len[GM_CACHE_N];
	uint64_t used[GM_CACHE_N], clock;
	uint64_t hits, misses;
};

void gm_cache_release(struct gm_cache *c);

/*
 * Writes into mask[0, gm_words) the tokens allowed from m's current
 * state (m's arena grows and is rewound: m->cur is unchanged). cache may
 * be NULL. Returns the number of allowed tokens, or ST_ENOMEM.
 */
int gm_mask(const struct gm_vocab *v, struct gr_match *m, struct gm_cache *cache, uint32_t *mask);

/*
 * Advances m by token id's bytes: 0, or ST_EINVAL when the grammar
 * rejects them (an end id: accepted when m is complete, no bytes).
 */
int gm_advance(const struct gm_vocab *v, struct gr_match *m, int id);

#endif
