/*
 * manifest.h - the crc32c.json manifest (manifest.c): the parsed form the
 * pipeline verifies shards and small files against. The writer,
 * ld_write_crc_manifest, is public (loader.h).
 */
#ifndef GR_LD_MANIFEST_H
#define GR_LD_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

struct ld_manifest_entry {
	char *name;
	uint64_t size;
	uint32_t crc32c;
};
struct ld_manifest {
	int n;
	struct ld_manifest_entry *e;
};

/* Parses a manifest; 0 or ST_EFORMAT with the reason in err. Release with ld_manifest_release. */
int ld_manifest_parse(const char *json, size_t n, struct ld_manifest *out, char *err,
		      size_t errlen);
/* The entry for name, or NULL. */
const struct ld_manifest_entry *ld_manifest_find(const struct ld_manifest *m, const char *name);
void ld_manifest_release(struct ld_manifest *m);

#endif
