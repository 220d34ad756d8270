/* model_desc.c - describing a local model directory; see model_desc.h. */
#include "loader/model_desc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"

#define SMALL_FILE_MAX (64u << 20)

int ld_desc_from_parts(const char *config_json, size_t config_len, const char *index_json,
		       size_t index_len, struct ld_desc *d, char *err, size_t errlen)
{
	struct ld_index ix;
	int rc;

	memset(d, 0, sizeof(*d));
	if ((rc = g2_config_parse(config_json, config_len, &d->cfg, err, errlen)) < 0)
		return rc;
	if (!index_json) {
		d->n_shards = 1;
		d->shard_names = calloc(1, sizeof(char *));
		if (!d->shard_names || !(d->shard_names[0] = strdup("model.safetensors")))
			return ST_ENOMEM;
		return 0;
	}
	if ((rc = ld_index_parse(index_json, index_len, &ix, err, errlen)) < 0)
		return rc;
	d->n_shards = ix.n_shards;
	d->shard_names = ix.shards;	/* steal the names */
	ix.shards = NULL;
	ix.n_shards = 0;
	ld_index_release(&ix);
	return 0;
}

int ld_desc_local(const char *dir, struct ld_desc *d, char *err, size_t errlen)
{
	char path[4096], *cfg = NULL, *index = NULL;
	size_t cfg_len = 0, index_len = 0;
	struct ld_index ix = { 0 };
	int rc, have_index;

	memset(d, 0, sizeof(*d));
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if ((rc = read_file(path, SMALL_FILE_MAX, &cfg, &cfg_len)) < 0) {
		snprintf(err, errlen, "cannot read '%s'", path);
		return rc;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", dir);
	have_index = access(path, F_OK) == 0;
	if (have_index && (rc = read_file(path, SMALL_FILE_MAX, &index, &index_len)) < 0) {
		snprintf(err, errlen, "cannot read '%s'", path);
		goto out;
	}
	if ((rc = ld_desc_from_parts(cfg, cfg_len, index, index_len, d, err, errlen)) < 0)
		goto out;
	if (have_index && (rc = ld_index_parse(index, index_len, &ix, err, errlen)) < 0)
		goto out;
	d->shards = calloc((size_t)d->n_shards, sizeof(*d->shards));
	d->shard_sizes = calloc((size_t)d->n_shards, sizeof(*d->shard_sizes));
	if (!d->shards || !d->shard_sizes) {
		rc = ST_ENOMEM;
		goto out;
	}
	for (int s = 0; s < d->n_shards; s++) {
		struct stat sb;
		char why[512];
		snprintf(path, sizeof(path), "%s/%s", dir, d->shard_names[s]);
		if (stat(path, &sb) < 0) {
			snprintf(err, errlen, "cannot stat shard '%s': %s", path, strerror(errno));
			rc = ST_ENOENT;
			goto out;
		}
		if (!S_ISREG(sb.st_mode)) {	/* opening a FIFO would block */
			snprintf(err, errlen, "shard '%s' is not a regular file", path);
			rc = ST_EIO;
			goto out;
		}
		d->shard_sizes[s] = (uint64_t)sb.st_size;
		if ((rc = st_read_file_header(path, &d->shards[s], why, sizeof(why))) < 0) {
			snprintf(err, errlen, "shard '%s': %s", d->shard_names[s], why);
			goto out;
		}
		d->total_tensor_bytes += d->shards[s].data_len;
	}
	rc = g2_validate(&d->cfg, d->shards, d->n_shards, have_index ? &ix : NULL, 0, err, errlen);
out:
	if (rc < 0)
		ld_desc_release(d);
	ld_index_release(&ix);
	free(cfg);
	free(index);
	return rc;
}

void ld_desc_release(struct ld_desc *d)
{
	if (!d)
		return;
	for (int s = 0; s < d->n_shards; s++) {
		if (d->shards)
			st_file_release(&d->shards[s]);
		if (d->shard_names)
			free(d->shard_names[s]);
	}
	free(d->shards);
	free(d->shard_names);
	free(d->shard_sizes);
	memset(d, 0, sizeof(*d));
}
