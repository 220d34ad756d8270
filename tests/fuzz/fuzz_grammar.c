/*
 * fuzz_grammar.c - libFuzzer target for the structured-output compilers
 * (engine/grammar_schema.c, engine/grammar_regex.c) and the matcher
 * (engine/grammar.c). The first byte picks the kind (JSON Schema, regex,
 * choice); the rest, up to a NUL, is the schema / regex text and what
 * follows is a document for the compiled grammar. Never crash, never hang;
 * a compile either succeeds or refuses with a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "engine/grammar.h"
#include "engine/grammar_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int kinds[3] = { GRS_JSON_SCHEMA, GRS_REGEX, GRS_CHOICE };
	struct gr_grammar *g = NULL;
	const uint8_t *nul;
	size_t n_src;
	char err[256], *src;
	int rc;

	if (size < 1 || size > 4096)
		return 0;
	nul = memchr(data + 1, 0, size - 1);
	n_src = nul ? (size_t)(nul - (data + 1)) : size - 1;
	src = malloc(n_src ? n_src : 1);	/* exact size: ASan catches overreads */
	if (!src)
		return 0;
	memcpy(src, data + 1, n_src);
	err[0] = '\0';
	rc = grs_compile(kinds[data[0] % 3], src, n_src, &g, err, sizeof(err));
	if (rc == 0) {
		size_t off = 1 + n_src + (nul ? 1 : 0);
		if (gr_accepts(g, data + off, size - off) < 0)
			abort();
	} else if (rc == ST_EINVAL && !err[0]) {
		abort();	/* a refusal always says why */
	}
	gr_grammar_destroy(g);
	free(src);
	return 0;
}
