/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors header parser.
 * Input: a whole file image (8-byte length + header + data). Must never
 * crash, leak or read out of bounds; an accepted header must be consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_file f;
	uint64_t n;
	char err[256];

	if (size < 8 || st_header_len(data, size, &n, err, sizeof(err)) < 0)
		return 0;
	if (st_parse_header((const char *)data + 8, (size_t)n, size, &f, err, sizeof(err)) == 0) {
		uint64_t pos = 0;
		for (int i = 0; i < f.n_tensors; i++) {
			if (f.tensors[i].begin != pos || f.tensors[i].end > f.data_len)
				abort();
			pos = f.tensors[i].end;
		}
		if (pos != f.data_len)
			abort();
		st_file_release(&f);
	}
	return 0;
}
