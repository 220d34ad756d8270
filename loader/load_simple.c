/*
 * load_simple.c - a plain sequential loader for local directories: the
 * reference that the parallel pipeline replaces (and is tested against).
 *
 * Reads config.json, tokenizer.json (if present), validates the shard
 * headers, allocates one arena and reads each shard's data region into it
 * (straight into place on a host-visible backend, else through one bounce
 * buffer). Remote URIs are not handled here. ld_load() itself is the
 * parallel pipeline (pipeline.c); ld_load_simple stays as the reference that
 * tests compare its arenas with, byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "loader/ld_internal.h"
#include "loader/loader.h"
#include "loader/model_desc.h"

void ld_opts_default(struct ld_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->workers = 16;
	o->chunk_bytes = 32u << 20;
	o->pinned_bytes = 512u << 20;
	o->verify = 1;
	o->max_retries = 10;
	o->stall_s = 20;
	o->connect_s = 10;
}

void *ld_tensor_ptr(const struct ld_model *m, const char *name, const struct ld_tensor **t)
{
	for (int i = 0; i < m->n_tensors; i++) {
		if (strcmp(m->tensors[i].name, name) == 0) {
			if (t)
				*t = &m->tensors[i];
			return (char *)m->arena + m->tensors[i].offset;
		}
	}
	return NULL;
}

void ld_model_destroy(struct ld_model *m)
{
	if (!m)
		return;
	if (m->arena && m->be)
		m->be->ops->free(m->be->ctx, m->arena);
	free(m->tensors);
	free(m->tokenizer_json);
	free(m);
}

/* Builds the tensor table: shards laid one after another, 256-byte aligned. */
int ld_place_tensors(struct ld_model *m, const struct ld_desc *d, size_t *shard_base)
{
	size_t off = 0;
	int n = 0;
	for (int s = 0; s < d->n_shards; s++)
		n += d->shards[s].n_tensors;
	m->tensors = calloc(n ? (size_t)n : 1, sizeof(*m->tensors));
	if (!m->tensors)
		return ST_ENOMEM;
	for (int s = 0; s < d->n_shards; s++) {
		if (d->shards[s].data_len > SIZE_MAX - 255 - off)	/* sizes a server claimed: no wrap-around */
			return log_err(ST_ERANGE, "model: %d shards of tensor data do not fit in memory", d->n_shards);
		shard_base[s] = off;
		for (int i = 0; i < d->shards[s].n_tensors; i++) {
			const struct st_tensor *t = &d->shards[s].tensors[i];
			struct ld_tensor *lt = &m->tensors[m->n_tensors++];
			memcpy(lt->name, t->name, sizeof(lt->name));
			lt->dtype = t->dtype;
			lt->ndim = t->ndim;
			memcpy(lt->shape, t->shape, sizeof(lt->shape));
			lt->offset = off + t->begin;
			lt->nbytes = t->end - t->begin;
		}
		off += (d->shards[s].data_len + 255) / 256 * 256;
	}
	m->arena_bytes = off;
	return 0;
}

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

/* The real loader (pipeline.c) handles every source; this file keeps the reference. */
int ld_load(const char *uri, const struct ld_opts *opts, struct be *be, struct ld_progress *progress,
	    struct ld_model **out)
{
	return ld_load_pipeline(uri, opts, be, progress, out);
}
