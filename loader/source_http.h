/* source_http.h - the http(s)://host/prefix byte source (source_http.c). */
#ifndef GR_LD_SOURCE_HTTP_H
#define GR_LD_SOURCE_HTTP_H

struct ld_opts;
struct ld_src;

/*
 * Makes s (zeroed but for display, from source.c) an http(s) source for
 * url, with o's transfer settings. On failure s may hold a partial
 * context: ld_src_destroy frees it.
 */
int ld_src_http_init(struct ld_src *s, const char *url, const struct ld_opts *o);

#endif
