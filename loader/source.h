/*
 * source.h - opening a byte source for a model URI (source.c), and the
 * generic release of sources and objects. The sources themselves and
 * their operations: ld_internal.h (struct ld_src, struct ld_src_vt).
 */
#ifndef GR_LD_SOURCE_H
#define GR_LD_SOURCE_H

struct ld_opts;
struct ld_src;
struct ld_obj;

/*
 * Opens the source for uri: a local directory, gs://bucket/prefix or
 * http(s)://host/prefix (o resolved by ld_opts_resolve). Errors are
 * logged. Caller frees with ld_src_destroy.
 */
int ld_src_open(const char *uri, const struct ld_opts *o, struct ld_src **out);
void ld_src_destroy(struct ld_src *s);

/* Closes/frees what open_obj left in o (safe on a zeroed one with fd -1, and twice). */
void ld_obj_release(struct ld_obj *o);

#endif
