/*
 * fuzz_content_range.c - libFuzzer target for ld_parse_content_range (the
 * Content-Range header of every ranged read). The input is not
 * NUL-terminated: the parser must respect the length, never crash, and
 * only accept ranges that are consistent (first <= last < total).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t a, b, t;
	char *copy = malloc(size ? size : 1);	/* exact-size buffer: ASan catches overreads */
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (ld_parse_content_range(copy, size, &a, &b, &t) == 0) {
		if (a > b || (t != UINT64_MAX && b >= t))
			abort();
	}
	free(copy);
	return 0;
}
