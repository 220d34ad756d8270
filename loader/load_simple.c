/*
 * load_simple.c - a plain sequential loader for local directories
 * (ld_load_simple): the reference that the parallel pipeline (pipeline.c,
 * ld_load) is tested against, arena byte for arena byte. Not used to
 * serve; remote URIs are not handled here.
 *
 * Reads config.json, tokenizer.json (if present), validates the shard
 * headers, places the tensors as ld_load does (ld_model.c), allocates one
 * arena and reads each shard's data region into it (straight into place
 * on a host-visible backend, else through one bounce buffer). When
 * crc32c.json is present, every shard (header and data, CRC-32C taken as
 * the bytes land) and the small files it lists are checked against it.
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
#include "loader/crc32c.h"
#include "loader/loader.h"
#include "loader/manifest.h"
#include "loader/model_desc.h"

/* 0 when dir's crc32c.json is absent (*have = 0) or parsed into man (*have = 1). */
static int read_manifest(const char *dir, struct ld_manifest *man, int *have)
{
	char path[4096], why[512], *json = NULL;
	size_t len = 0;
	int rc;
	*have = 0;
	snprintf(path, sizeof(path), "%s/crc32c.json", dir);
	if (access(path, F_OK) != 0)
		return 0;
	if ((rc = read_file(path, 64u << 20, &json, &len)) < 0)
		return log_err(rc, "cannot read '%s'", path);
	rc = ld_manifest_parse(json, len, man, why, sizeof(why));
	free(json);
	if (rc < 0)
		return log_err(rc, "'%s': %s", path, why);
	*have = 1;
	return 0;
}

/* Compares the bytes of a file (already whole in memory) or a shard's running CRC with man's entry. */
static int check_entry(const struct ld_manifest *man, const char *dir, const char *name, uint64_t size,
		       uint32_t crc, int required)
{
	const struct ld_manifest_entry *e = ld_manifest_find(man, name);
	char a[9], b[9];
	if (!e)
		return required ? log_err(ST_ECRC, "'%s/%s': crc32c.json has no entry for this shard", dir, name) : 0;
	if (e->size != size)
		return log_err(ST_EIO, "'%s/%s': size %llu but crc32c.json says %llu", dir, name,
			       (unsigned long long)size, (unsigned long long)e->size);
	if (e->crc32c == crc)
		return 0;
	crc32c_to_base64(crc, a);
	crc32c_to_base64(e->crc32c, b);
	return log_err(ST_ECRC, "'%s/%s': crc32c mismatch: read %s, crc32c.json says %s", dir, name, a, b);
}

/* The small files crc32c.json lists, read whole and compared. */
static int check_small_files(const struct ld_manifest *man, const char *dir)
{
	static const char *const names[] = { "config.json", "model.safetensors.index.json", "tokenizer.json" };
	char path[4096];
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		int rc;
		if (!ld_manifest_find(man, names[i]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((rc = read_file(path, 256u << 20, &buf, &len)) < 0)
			return log_err(rc, "cannot read '%s'", path);
		rc = check_entry(man, dir, names[i], len, crc32c(0, buf, len), 0);
		free(buf);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int ld_load_simple(const char *dir, struct be *be, struct ld_progress *pr, struct ld_model **out)
{
	struct ld_desc d;
	struct ld_model *m;
	size_t *base = NULL;
	char err[1024], path[4096];
	void *bounce = NULL, *head = NULL;
	const size_t bounce_n = 8u << 20;
	struct ld_manifest man = { 0 };
	int rc, have_man = 0;

	*out = NULL;
	if ((rc = ld_desc_local(dir, &d, err, sizeof(err))) < 0)
		return log_err(rc, "model '%s': %s", dir, err);
	if ((rc = read_manifest(dir, &man, &have_man)) < 0 || (have_man && (rc = check_small_files(&man, dir)) < 0)) {
		ld_desc_release(&d);
		ld_manifest_release(&man);
		return rc;
	}
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
		uint32_t crc = 0;
		int fd;
		snprintf(path, sizeof(path), "%s/%s", dir, d.shard_names[s]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = log_err(ST_EIO, "cannot open '%s': %s", path, strerror(errno));
			goto out;
		}
		if (have_man) {	/* the header's bytes start the shard's CRC */
			size_t hn = (size_t)d.shards[s].data_start;
			free(head);
			if (!(head = malloc(hn ? hn : 1)))
				rc = ST_ENOMEM;
			else if ((rc = pread_full(fd, head, hn, 0)) < 0)
				log_err(rc, "cannot read '%s' at offset 0", path);
			else
				crc = crc32c(0, head, hn);
		}
		for (uint64_t o = 0; o < d.shards[s].data_len && rc == 0;) {
			size_t n = (size_t)MIN(bounce_n, d.shards[s].data_len - o);
			char *dst = (char *)m->arena + base[s] + o;
			rc = pread_full(fd, be->ops->host_visible ? dst : bounce, n, d.shards[s].data_start + o);
			if (rc < 0)
				log_err(rc, "cannot read '%s' at offset %llu", path,
					(unsigned long long)(d.shards[s].data_start + o));
			else if (have_man)
				crc = crc32c(crc, be->ops->host_visible ? dst : bounce, n);
			if (rc == 0 && !be->ops->host_visible)
				rc = be->ops->upload(be->ctx, dst, bounce, n, 0, NULL, NULL);
			if (rc == 0 && !be->ops->host_visible)
				rc = be->ops->sync(be->ctx);
			o += n;
			if (pr)
				atomic_fetch_add(&pr->bytes_done, n);
		}
		close(fd);
		if (rc == 0 && have_man)
			rc = check_entry(&man, dir, d.shard_names[s], d.shard_sizes[s], crc, 1);
		if (rc < 0)
			goto out;
	}
	m->verified = have_man ? LD_VERIFIED_MANIFEST : LD_VERIFIED_SIZES;
	if (!have_man)
		log_warn("weights NOT verified end to end (%s): '%s' has no crc32c.json", m->verified, dir);
	*out = m;
	m = NULL;
out:
	if (bounce)
		be->ops->host_free(be->ctx, bounce);
	free(head);
	ld_manifest_release(&man);
	if (pr)
		atomic_store(&pr->done, rc < 0 ? -1 : 1);
	ld_model_destroy(m);
	free(base);
	ld_desc_release(&d);
	return rc;
}
