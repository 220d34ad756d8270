/*
 * fuzz_gcs_metadata.c - libFuzzer target for gcs_parse_object_meta (the GCS
 * JSON API object resource: size, generation, crc32c, contentEncoding) and
 * for the crc32c.json manifest parser, which share the input. Must never
 * crash or leak; an accepted object has a positive generation.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader/manifest.h"
#include "loader/source_gcs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gcs_obj_meta m;
	struct ld_manifest man;
	char err[256];
	char *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (gcs_parse_object_meta(copy, size, &m, err, sizeof(err)) == 0 && m.generation <= 0)
		abort();
	if (ld_manifest_parse(copy, size, &man, err, sizeof(err)) == 0) {
		for (int i = 0; i < man.n; i++)
			if (!man.e[i].name || ld_manifest_find(&man, man.e[i].name) == NULL)
				abort();
		ld_manifest_release(&man);
	}
	free(copy);
	return 0;
}
