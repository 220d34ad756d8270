/*
 * fuzz_http_screen.c - libFuzzer target for http_screen_head (every request
 * head the server receives goes through it before evhttp). The input is
 * not NUL-terminated: the screen must respect the length, never crash, and
 * answer only 0 or one of its documented statuses, with a message exactly
 * when it refuses; and as a chunked body, scanned in two parts, decoded
 * within its bounds when whole.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "service/http/http_screen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_screen_limits lim = { .uri_max = 256, .head_max = 4096, .max_headers = 32,
						       .body_max = 8192 };
	struct http_chunks ch = { 0 };
	const char *why = NULL;
	char *copy = malloc(size ? size : 1);	/* exact-size buffer: ASan catches overreads */
	int st;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	st = http_screen_head(copy, size, &lim, &why);
	if (st != 0 && st != 400 && st != 414 && st != 431 && st != 501 && st != 505)
		abort();
	if (!st != !why)
		abort();
	if (!st && http_screen_is_chunked(copy, size) < 0)
		abort();
	/* the same bytes as a chunked body, fed in two parts as they might arrive */
	st = http_screen_chunked(copy, size / 2, &lim, &ch, &why);
	if (!st && !ch.done)
		st = http_screen_chunked(copy, size, &lim, &ch, &why);
	if (st != 0 && st != 400 && st != 413)
		abort();
	if (!st && ch.done) {
		char *out = malloc(ch.body_len ? ch.body_len : 1);
		if (ch.end > size || ch.body_len > lim.body_max || ch.body_len > ch.end || !out)
			abort();
		http_screen_dechunk(copy, &ch, out);
		free(out);
	}
	free(copy);
	return 0;
}
