/*
 * manifest.c - the crc32c.json manifest of local and http(s) models:
 * its writer (ld_write_crc_manifest, format in loader.h) and its parser.
 * It does not verify anything itself: the pipeline compares.
 *
 * The writer streams each file in 8 MiB reads (never the whole file in
 * memory) and replaces crc32c.json atomically (temp file + rename).
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "loader/crc32c.h"
#include "loader/loader.h"
#include "loader/manifest.h"

#define MANIFEST_FORMAT "gemma-run-crc32c-1"

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int file_crc(const char *path, uint64_t *size, uint32_t *crc)
{
	const size_t bufn = 8u << 20;
	char *buf = malloc(bufn);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	uint32_t c = 0;
	uint64_t total = 0;
	if (!buf || fd < 0) {
		rc = buf ? log_err(ST_EIO, "cannot open '%s': %s", path, strerror(errno)) : ST_ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf, bufn);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = log_err(ST_EIO, "cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		c = crc32c(c, buf, (size_t)r);
		total += (uint64_t)r;
	}
	*size = total;
	*crc = c;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int ld_write_crc_manifest(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL, path[4096], tmp[4096];
	int n = 0, cap = 0, rc = 0;
	FILE *f = NULL;

	if (!d)
		return log_err(ST_EIO, "cannot open directory '%s': %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		struct stat sb;
		if (de->d_name[0] == '.' || strcmp(de->d_name, "crc32c.json") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		if (n == cap) {
			char **p = realloc(names, (size_t)(cap = cap ? cap * 2 : 16) * sizeof(*names));
			if (!p) {
				rc = ST_ENOMEM;
				goto out;
			}
			names = p;
		}
		if (!(names[n] = strdup(de->d_name))) {
			rc = ST_ENOMEM;
			goto out;
		}
		n++;
	}
	qsort(names, (size_t)n, sizeof(*names), name_cmp);
	snprintf(tmp, sizeof(tmp), "%s/.crc32c.json.tmp", dir);
	if (!(f = fopen(tmp, "w"))) {
		rc = log_err(ST_EIO, "cannot write '%s': %s", tmp, strerror(errno));
		goto out;
	}
	fprintf(f, "{\"format\":\"%s\",\"files\":{", MANIFEST_FORMAT);
	for (int i = 0; i < n; i++) {
		uint64_t size = 0;
		uint32_t crc = 0;
		char b64[9], esc[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((rc = file_crc(path, &size, &crc)) < 0)
			goto out;
		crc32c_to_base64(crc, b64);
		json_escape(esc, sizeof(esc), names[i]);
		fprintf(f, "%s\n  \"%s\":{\"size\":%" PRIu64 ",\"crc32c\":\"%s\"}", i ? "," : "", esc, size, b64);
	}
	fprintf(f, "\n}}\n");
	if (fclose(f) != 0) {
		f = NULL;
		rc = log_err(ST_EIO, "cannot write '%s'", tmp);
		goto out;
	}
	f = NULL;
	snprintf(path, sizeof(path), "%s/crc32c.json", dir);
	if (rename(tmp, path) < 0)
		rc = log_err(ST_EIO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
out:
	if (f) {
		fclose(f);
		unlink(tmp);
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int ld_manifest_parse(const char *json, size_t n, struct ld_manifest *out, char *err, size_t errlen)
{
	cJSON *root = cJSON_ParseWithLength(json, n);
	const cJSON *fmt, *files, *it;
	int rc = ST_EFORMAT, k = 0;

	memset(out, 0, sizeof(*out));
	if (!root || !cJSON_IsObject(root)) {
		snprintf(err, errlen, "crc32c.json is not a JSON object");
		goto out;
	}
	fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
	files = cJSON_GetObjectItemCaseSensitive(root, "files");
	if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, MANIFEST_FORMAT) != 0 || !cJSON_IsObject(files)) {
		snprintf(err, errlen, "crc32c.json: expected {\"format\":\"%s\",\"files\":{...}}", MANIFEST_FORMAT);
		goto out;
	}
	out->n = cJSON_GetArraySize(files);
	if (!(out->e = calloc((size_t)out->n + 1, sizeof(*out->e)))) {
		rc = ST_ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(it, files) {
		const cJSON *sz = cJSON_GetObjectItemCaseSensitive(it, "size");
		const cJSON *cc = cJSON_GetObjectItemCaseSensitive(it, "crc32c");
		struct ld_manifest_entry *e = &out->e[k];
		if (!cJSON_IsNumber(sz) || sz->valuedouble < 0 || sz->valuedouble > 9007199254740992.0 ||
		    sz->valuedouble != (double)(uint64_t)sz->valuedouble || !cJSON_IsString(cc) ||
		    crc32c_from_base64(cc->valuestring, &e->crc32c) < 0) {
			snprintf(err, errlen, "crc32c.json: bad entry for '%.200s'", it->string);
			goto out;
		}
		e->size = (uint64_t)sz->valuedouble;
		if (!(e->name = strdup(it->string))) {
			rc = ST_ENOMEM;
			goto out;
		}
		k++;
	}
	out->n = k;
	rc = 0;
out:
	if (rc < 0)
		ld_manifest_release(out);
	cJSON_Delete(root);
	return rc;
}

const struct ld_manifest_entry *ld_manifest_find(const struct ld_manifest *m, const char *name)
{
	for (int i = 0; m && i < m->n; i++)
		if (strcmp(m->e[i].name, name) == 0)
			return &m->e[i];
	return NULL;
}

void ld_manifest_release(struct ld_manifest *m)
{
	if (!m)
		return;
	for (int i = 0; m->e && i < m->n; i++)
		free(m->e[i].name);
	free(m->e);
	memset(m, 0, sizeof(*m));
}
