/*
 * stop.h - stop strings over incrementally detokenized text.
 *
 * The engine feeds each piece of newly decoded text (whole UTF-8 characters)
 * into a request's matcher. A stop string may span any number of tokens: the
 * matcher keeps back the longest tail of the text that is still a prefix of
 * some stop string, and releases it as soon as the next text shows it is not
 * one (or at the end, by stop_flush). When a stop string completes, the text
 * before its first byte is released and everything from it on is dropped;
 * the stop string itself is never emitted (vLLM's default
 * include_stop_str_in_output=false). With several stop strings the one that
 * starts earliest wins.
 *
 * Stop token ids, EOS, min_tokens and max_tokens are per-token rules (the
 * two functions at the end), applied by the engine.
 * Nothing is allocated after stop_init.
 */
#ifndef GR_STOP_H
#define GR_STOP_H

#include <stddef.h>

#include "engine/sampling.h"

struct stop_matcher {
	int n_stop;
	char **stop;		/* borrowed (the request's eng_sampling.stop) */
	size_t *stop_len;	/* [n_stop] */
	size_t max_len;		/* longest stop string */
	char *held;		/* [max_len] text kept back */
	size_t held_len;
};

/* Sets m up for the given stop strings (borrowed, must outlive m). 0 or ST_ENOMEM. */
int stop_init(struct stop_matcher *m, char **stop, int n_stop);
void stop_release(struct stop_matcher *m);

/* Bytes `out` must hold for a stop_feed of n bytes (held text + n + NUL). */
size_t stop_out_cap(const struct stop_matcher *m, size_t n);

/*
 * Feeds n bytes of new text. Appends what may be emitted now to out (which
 * has room for stop_out_cap(m, n) bytes; the result is NUL-terminated) and
 * sets *out_len. Returns 1 when a stop string completed (nothing more may be
 * emitted for this request), else 0. check = 0 (min_tokens not reached yet)
 * matches nothing and releases everything, held text included.
 */
int stop_feed(struct stop_matcher *m, const char *text, size_t n, int check, char *out,
	      size_t *out_len);

/* Releases the held text at the end of a request; out has room for max_len + 1. */
size_t stop_flush(struct stop_matcher *m, char *out);

/*
 * Per-token rules (vLLM's): while fewer than min_tokens tokens have been
 * generated, EOS (unless ignore_eos) and the stop ids are masked out of the
 * logits and no stop condition applies; max_tokens ends with "length".
 *
 * stop_mask_ids: the ids to mask before sampling token number n_gen + 1
 * (n_gen generated so far) into out (room for n_eos + ENG_MAX_STOP); returns
 * how many (0 once n_gen >= min_tokens).
 * stop_token_ends: whether the token just sampled (the n_gen-th, counted)
 * ends the request by id: EOS unless ignore_eos, or a stop id; never while
 * n_gen < min_tokens. Such a token is counted but its text is not emitted.
 */
int stop_mask_ids(const struct eng_sampling *sp, const int *eos_ids, int n_eos, int n_gen,
		  int *out);
int stop_token_ends(const struct eng_sampling *sp, const int *eos_ids, int n_eos, int tok,
		    int n_gen);
/* Whether the request has reached max_tokens or its context max_len (tokens incl. prompt). */
int stop_length(const struct eng_sampling *sp, int n_gen, int n_tokens, int max_len);

#endif
