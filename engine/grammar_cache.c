/*
 * grammar_cache.c - compiled structured-output grammars by (kind, text),
 * shared by every request that uses the same schema: at most
 * GRS_CACHE_MAX entries, the least recently used unreferenced one evicted.
 *
 * Not here: compiling (grammar_schema.c).
 *
 * Invariants: one mutex guards the table; compiling happens outside it (two
 * threads may compile the same text at once: both results are kept, each
 * released by its holder); an entry with references is never freed.
 */
#include "engine/grammar_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"


struct cache_ent {
	enum grs_kind kind;
	char *text;
	size_t n;
	struct gr_grammar *g;
	int refs;
	uint64_t used;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cache_ent cache[GRS_CACHE_MAX];
static int n_cache;
static uint64_t cache_clock;

int grs_get(enum grs_kind kind, const char *text, size_t n, const struct gr_grammar **out,
	    char *err, size_t errlen)
{
	struct gr_grammar *g;
	int rc, victim = -1;

	pthread_mutex_lock(&cache_mu);
	for (int i = 0; i < n_cache; i++)
		if (cache[i].kind == kind && cache[i].n == n && !memcmp(cache[i].text, text, n)) {
			cache[i].refs++;
			cache[i].used = ++cache_clock;
			*out = cache[i].g;
			pthread_mutex_unlock(&cache_mu);
			return 0;
		}
	pthread_mutex_unlock(&cache_mu);
	if ((rc = grs_compile(kind, text, n, &g, err, errlen)) < 0)
		return rc;
	pthread_mutex_lock(&cache_mu);
	if (n_cache < GRS_CACHE_MAX) {
		victim = n_cache++;
	} else {
		for (int i = 0; i < n_cache; i++)
			if (cache[i].refs == 0 && (victim < 0 || cache[i].used < cache[victim].used))
				victim = i;
		if (victim >= 0) {
			gr_grammar_destroy(cache[victim].g);
			free(cache[victim].text);
		}
	}
	if (victim < 0 || !(cache[victim].text = malloc(n ? n : 1))) {
		if (victim >= 0)	/* the slot is left empty */
			cache[victim] = cache[--n_cache];
		pthread_mutex_unlock(&cache_mu);
		gr_grammar_destroy(g);
		if (err && errlen)
			snprintf(err, errlen, "too many grammars in use");
		return ST_EFULL;
	}
	memcpy(cache[victim].text, text, n);
	cache[victim].n = n;
	cache[victim].kind = kind;
	cache[victim].g = g;
	cache[victim].refs = 1;
	cache[victim].used = ++cache_clock;
	*out = g;
	pthread_mutex_unlock(&cache_mu);
	return 0;
}

void grs_release(const struct gr_grammar *g)
{
	pthread_mutex_lock(&cache_mu);
	for (int i = 0; i < n_cache; i++)
		if (cache[i].g == g && cache[i].refs > 0)
			cache[i].refs--;
	pthread_mutex_unlock(&cache_mu);
}
