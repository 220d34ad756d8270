/*
 * load_simple.c - a plain sequential loader for local directories
 * (ld_load_simple): the reference that the parallel pipeline (pipeline.c,
 * ld_load) is tested against, arena byte for arena byte. Not used to
 * serve; remote URIs are not handled here.
 *
 * Reads config.json, tokenizer.json (if present), validates the shard
 * headers, places the tensors as ld_load does (ld_model.c), allocates one
 * arena and reads each shard's data region into it (straight into place
 * on a host-visible backend, else through one bounce buffer).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "loader/ld_model.h"
#include "loader/loader.h"
#include "loader/model_desc.h"

int ld_load_simple(const char *dir, struct be *be, struct ld_progress *pr, struct ld_model **out)
{
	struct ld_desc d;
	struct ld_model *m;
	size_t *base = NULL;
	char err[1024], path[4096];
	void *bounce = NULL;
	const size_t bounce_n = 8u << 20;
	int rc;

	*out = NULL;
	if ((rc = ld_desc_local(dir, &d, err, sizeof(err))) < 0)
		return log_err(rc, "model '%s': %s", dir, err);
	m = calloc(1, sizeof(*m));
	base = calloc((size_t)d.n_shards, sizeof(*base));
	if (!m || !base) {
		rc = ST_ENOMEM;
		goto out;
	}
	m->cfg = d.cfg;
	m->be = be;
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	if (access(path, F_OK) == 0 &&
	    (rc = read_file(path, 256u << 20, &m->tokenizer_json, &m->tokenizer_len)) < 0)
		goto out;
	if ((rc = ld_place_tensors(m, &d, base)) < 0)
		goto out;
	if (pr)
		atomic_store(&pr->bytes_total, d.total_tensor_bytes);
	m->arena = be->ops->alloc(be->ctx, m->arena_bytes);
	if (!m->arena) {
		rc = log_err(ST_ENOMEM, "cannot allocate the %zu-byte weight arena", m->arena_bytes);
		goto out;
	}
	if (!be->ops->host_visible && !(bounce = be->ops->host_alloc(be->ctx, bounce_n))) {
		rc = ST_ENOMEM;
		goto out;
	}
	for (int s = 0; s < d.n_shards; s++) {
		int fd;
		snprintf(path, sizeof(path), "%s/%s", dir, d.shard_names[s]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = log_err(ST_EIO, "cannot open '%s': %s", path, strerror(errno));
			goto out;
		}
		for (uint64_t o = 0; o < d.shards[s].data_len && rc == 0;) {
			size_t n = (size_t)MIN(bounce_n, d.shards[s].data_len - o);
			char *dst = (char *)m->arena + base[s] + o;
			rc = pread_full(fd, be->ops->host_visible ? dst : bounce, n, d.shards[s].data_start + o);
			if (rc < 0)
				log_err(rc, "cannot read '%s' at offset %llu", path,
					(unsigned long long)(d.shards[s].data_start + o));
			else if (!be->ops->host_visible)
				rc = be->ops->upload(be->ctx, dst, bounce, n, 0, NULL, NULL);
			if (rc == 0 && !be->ops->host_visible)
				rc = be->ops->sync(be->ctx);
			o += n;
			if (pr)
				atomic_fetch_add(&pr->bytes_done, n);
		}
		close(fd);
		if (rc < 0)
			goto out;
	}
	*out = m;
	m = NULL;
out:
	if (bounce)
		be->ops->host_free(be->ctx, bounce);
	if (pr)
		atomic_store(&pr->done, rc < 0 ? -1 : 1);
	ld_model_destroy(m);
	free(base);
	ld_desc_release(&d);
	return rc;
}
