/*
 * fileio.h - whole-file reads and writes, and pread/write loops that retry
 * short transfers. Errors are logged with the path and returned as a
 * negative enum status. Only read_file() allocates (the caller frees).
 */
#ifndef GR_FILEIO_H
#define GR_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads a whole file into a new NUL-terminated buffer (*out, caller frees);
 * *len gets the size without the NUL. Refuses files over max_bytes.
 */
int read_file(const char *path, size_t max_bytes, char **out, size_t *len);

/* Writes all of buf to path (created or truncated). */
int write_file(const char *path, const void *buf, size_t len);

/* pread/pwrite that loop over short transfers; 0 or a negative status. */
int pread_full(int fd, void *buf, size_t n, uint64_t off);
int write_full(int fd, const void *buf, size_t n);

#endif
