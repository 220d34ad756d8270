/*
 * grammar_cache.h - compiled structured-output grammars shared by
 * (kind, text) across requests (engine/grammar_cache.c).
 */
#ifndef GR_GRAMMAR_CACHE_H
#define GR_GRAMMAR_CACHE_H

#include <stddef.h>

#include "engine/grammar.h"
#include "engine/grammar_schema.h"

/*
 * grs_compile through a process-wide cache (thread-safe, at most
 * GRS_CACHE_MAX entries, least recently used evicted): *out is borrowed
 * until grs_release(*out).
 */
#define GRS_CACHE_MAX 64
int grs_get(enum grs_kind kind, const char *text, size_t n, const struct gr_grammar **out,
	    char *err, size_t errlen);
void grs_release(const struct gr_grammar *g);

#endif
