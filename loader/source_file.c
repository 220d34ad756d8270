/*
 * source_file.c - the local byte source (disk, NFS mount, GCS FUSE mount).
 *
 * Each object is opened once (open_obj) and read with pread by any number
 * of workers at once; no mmap (small faulting reads are 30-50x slower on
 * network filesystems). A short read means the file shrank under us: it is
 * fatal (ST_EIO), never retried into a wrong weight. No private context:
 * the directory is s->base, and each object's descriptor is in its ld_obj.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "loader/crc32c.h"
#include "loader/ld_internal.h"
#include "loader/source_file.h"

static int file_conn_create(struct ld_src *s, void **conn)
{
	(void)s;
	*conn = NULL;
	return 0;
}

static void file_conn_destroy(void *conn)
{
	(void)conn;
}

static int file_fetch_whole(struct ld_src *s, void *conn, const char *name, size_t max, char **out,
			    size_t *len, char *err, size_t errlen)
{
	char path[LD_NAME_MAX * 2];
	struct stat sb;
	int rc;
	(void)conn;
	snprintf(path, sizeof(path), "%s/%s", s->base, name);
	if (stat(path, &sb) != 0) {
		if (errno == ENOENT)
			return ST_ENOENT;	/* anything else: read_file says what */
	} else if (!S_ISREG(sb.st_mode)) {	/* open() of a FIFO would block forever */
		snprintf(err, errlen, "'%s' is not a regular file", path);
		return ST_EIO;
	}
	if ((rc = read_file(path, max, out, len)) < 0)
		snprintf(err, errlen, "cannot read '%s' (%s)", path, st_str(rc));
	return rc;
}

static int file_open_obj(struct ld_src *s, void *conn, const char *name, struct ld_obj *o, void *head,
			 size_t head_want, size_t *head_got, char *err, size_t errlen)
{
	struct stat sb;
	int rc;
	(void)conn;
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	snprintf(o->name, sizeof(o->name), "%s", name);
	snprintf(o->where, sizeof(o->where), "%s/%s", s->base, name);
	if (stat(o->where, &sb) == 0 && !S_ISREG(sb.st_mode)) {	/* open() of a FIFO would block */
		snprintf(err, errlen, "%s: not a regular file", o->where);
		return ST_EIO;
	}
	o->fd = open(o->where, O_RDONLY | O_CLOEXEC);
	if (o->fd < 0) {
		rc = errno == ENOENT ? ST_ENOENT : ST_EIO;
		snprintf(err, errlen, "%s: cannot open: %s", o->where, strerror(errno));
		return rc;
	}
	if (fstat(o->fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", o->where);
		return ST_EIO;
	}
	o->size = (uint64_t)sb.st_size;
	*head_got = (size_t)MIN((uint64_t)head_want, o->size);
	if ((rc = pread_full(o->fd, head, *head_got, 0)) < 0)
		snprintf(err, errlen, "%s: cannot read its first %zu bytes", o->where, *head_got);
	return rc;
}

static int file_read(struct ld_src *s, void *conn, const struct ld_obj *o, uint64_t off, size_t n,
		     void *dst, size_t *got, uint32_t *crc, struct ld_rd_info *info, char *err, size_t errlen)
{
	const size_t piece = 2u << 20;	/* read and checksum in cache-sized pieces */
	char *p = dst;
	(void)conn;
	(void)info;
	*got = 0;
	/* cold pages: the whole chunk's I/O starts now, not piece by piece (workers share one fd's readahead) */
	if (n > piece)
		(void)posix_fadvise(o->fd, (off_t)off, (off_t)n, POSIX_FADV_WILLNEED);
	while (*got < n) {
		ssize_t r = pread(o->fd, p + *got, MIN(piece, n - *got), (off_t)(off + *got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "read error: %s", strerror(errno));
			return errno == EIO ? ST_ENET : ST_EIO;	/* EIO on NFS can be transient */
		}
		if (r == 0) {
			snprintf(err, errlen, "file ends early (truncated while loading?)");
			return ST_EIO;
		}
		LD_FIRST_BYTE(s);
		if (crc)
			*crc = crc32c(*crc, p + *got, (size_t)r);
		*got += (size_t)r;
	}
	return 0;
}

static void file_destroy(struct ld_src *s)
{
	(void)s;
}

static const struct ld_src_vt file_vt = {
	.conn_create = file_conn_create,
	.conn_destroy = file_conn_destroy,
	.fetch_whole = file_fetch_whole,
	.open_obj = file_open_obj,
	.read = file_read,
	.destroy = file_destroy,
};

int ld_src_file_init(struct ld_src *s, const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	s->vt = &file_vt;
	s->local = 1;
	return (s->base = strndup(dir, n)) ? 0 : ST_ENOMEM;
}
