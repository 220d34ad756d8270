/* source_file.h - the local-directory byte source (source_file.c). */
#ifndef GR_LD_SOURCE_FILE_H
#define GR_LD_SOURCE_FILE_H

struct ld_src;

/* Makes s (zeroed but for display, from source.c) a source reading files of dir. */
int ld_src_file_init(struct ld_src *s, const char *dir);

#endif
