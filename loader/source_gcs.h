/*
 * source_gcs.h - the gs://bucket/prefix byte source (source_gcs.c) and its
 * parser of the JSON API object resource.
 */
#ifndef GR_LD_SOURCE_GCS_H
#define GR_LD_SOURCE_GCS_H

#include <stddef.h>
#include <stdint.h>

struct ld_opts;
struct ld_src;

/*
 * Makes s (zeroed but for display, from source.c) a gcs source for uri
 * ("gs://bucket[/prefix]"), with o's transfer settings and credentials
 * (gcs_auth.c; o->gcs_anonymous). STORAGE_EMULATOR_HOST replaces the
 * endpoint. On failure s may hold a partial context: ld_src_destroy frees it.
 */
int ld_src_gcs_init(struct ld_src *s, const char *uri, const struct ld_opts *o);

/* GCS object resource (storage/v1 JSON). */
struct gcs_obj_meta {
	uint64_t size;
	int64_t generation;
	uint32_t crc32c;
	int has_crc;
	int gzip;			/* contentEncoding is gzip */
	char content_encoding[64];
};
/* Parses n bytes of an object resource; 0 or ST_EFORMAT with the reason in err. */
int gcs_parse_object_meta(const char *json, size_t n, struct gcs_obj_meta *out, char *err,
			  size_t errlen);

#endif
