/* fileio.c - see fileio.h. */
#include "common/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"

int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return ST_EIO;
		}
		if (r == 0)
			return ST_EIO;	/* unexpected end of file */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t r = write(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return ST_EIO;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int read_file(const char *path, size_t max_bytes, char **out, size_t *len)
{
	struct stat sb;
	char *buf;
	int fd, rc;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_err(errno == ENOENT ? ST_ENOENT : ST_EIO, "cannot open '%s': %s", path,
			       strerror(errno));
	if (fstat(fd, &sb) < 0) {
		rc = log_err(ST_EIO, "cannot stat '%s': %s", path, strerror(errno));
		goto out_close;
	}
	if ((uint64_t)sb.st_size > max_bytes) {
		rc = log_err(ST_ERANGE, "'%s' is %lld bytes, over the limit of %zu", path,
			     (long long)sb.st_size, max_bytes);
		goto out_close;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		rc = ST_ENOMEM;
		goto out_close;
	}
	if ((rc = pread_full(fd, buf, (size_t)sb.st_size, 0)) < 0) {
		log_err(rc, "cannot read '%s': %s", path, strerror(errno));
		free(buf);
		goto out_close;
	}
	buf[sb.st_size] = 0;
	*out = buf;
	if (len)
		*len = (size_t)sb.st_size;
out_close:
	close(fd);
	return rc;
}

int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;
	if (fd < 0)
		return log_err(ST_EIO, "cannot create '%s': %s", path, strerror(errno));
	rc = write_full(fd, buf, len);
	if (close(fd) < 0 && rc == 0)
		rc = ST_EIO;
	if (rc < 0)
		return log_err(rc, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}
