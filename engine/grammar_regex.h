/*
 * grammar_regex.h - regular expressions (the ECMA-262 subset JSON Schema's
 * `pattern` and vLLM's guided_regex use) compiled into grammar rules.
 *
 * Supported: literals (UTF-8), `.`, classes `[...]` (ASCII ranges,
 * negation, \d \w \s inside), escapes \d \D \w \W \s \S \n \r \t \f \v
 * \uXXXX and escaped punctuation, groups `( )` `(?: )`, alternation,
 * quantifiers `* + ? {n} {n,} {n,m}` (a lazy `?` suffix is accepted: it
 * does not change the set of strings), `^` at the start and `$` at the
 * end. Refused with a message: backreferences, lookaround, named groups,
 * non-ASCII class ranges, anchors elsewhere, counts above 1000.
 * Matching is over UTF-8 bytes; `.` and negated classes match any one
 * UTF-8 character (but not \n for `.`).
 */
#ifndef GR_GRAMMAR_REGEX_H
#define GR_GRAMMAR_REGEX_H

#include <stddef.h>

#include "engine/grammar.h"

/*
 * A rule of b matching re (n bytes). search: JSON Schema semantics (the
 * string must contain a match: unanchored ends get `.*`; and the match is
 * the raw content of a JSON string, so no class holds '"', '\\' or a
 * control byte); else the whole text must match (vLLM guided_regex). Returns the rule id, or
 * ST_EINVAL with a message in err, ST_ENOMEM.
 */
int grx_compile(struct gr_builder *b, const char *re, size_t n, int search, char *err,
		size_t errlen);

/* A rule matching one UTF-8 character whose ASCII byte is in ascii (bytes < 0x80 only). */
int grx_utf8_char(struct gr_builder *b, const struct gr_class *ascii);

#endif
