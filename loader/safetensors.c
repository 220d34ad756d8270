/*
 * safetensors.c - strict safetensors header parser; see safetensors.h.
 * Uses cJSON for the JSON itself and checks every structural rule after it.
 */
#include "loader/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[ST_DTYPE_COUNT] = {
	[ST_BF16] = { "BF16", 2 }, [ST_F16] = { "F16", 2 }, [ST_F32] = { "F32", 4 },
	[ST_F64] = { "F64", 8 },   [ST_I8] = { "I8", 1 },   [ST_U8] = { "U8", 1 },
	[ST_I16] = { "I16", 2 },   [ST_I32] = { "I32", 4 }, [ST_I64] = { "I64", 8 },
	[ST_BOOL] = { "BOOL", 1 }, [ST_F8_E4M3] = { "F8_E4M3", 1 }, [ST_F8_E5M2] = { "F8_E5M2", 1 },
};

const char *st_dtype_name(enum st_dtype dt)
{
	return (unsigned)dt < ST_DTYPE_COUNT ? dtypes[dt].name : NULL;
}

size_t st_dtype_size(enum st_dtype dt)
{
	return (unsigned)dt < ST_DTYPE_COUNT ? dtypes[dt].size : 0;
}

int st_dtype_parse(const char *name)
{
	for (int i = 0; i < ST_DTYPE_COUNT; i++)
		if (strcmp(name, dtypes[i].name) == 0)
			return i;
	return -1;
}

uint64_t st_numel(const struct st_tensor *t)
{
	uint64_t n = 1;
	for (int i = 0; i < t->ndim; i++)
		n *= (uint64_t)t->shape[i];
	return n;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ST_EFORMAT;
}

int st_header_len(const uint8_t p[8], uint64_t file_size, uint64_t *len, char *err, size_t errlen)
{
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = (n << 8) | p[i];
	if (file_size < 8)
		return fail(err, errlen, "file is %llu bytes, shorter than the 8-byte header length",
			    (unsigned long long)file_size);
	if (n < 2)
		return fail(err, errlen, "header length %llu is too small", (unsigned long long)n);
	if (n > ST_MAX_HEADER)
		return fail(err, errlen, "header length %llu is over the limit of %u bytes",
			    (unsigned long long)n, ST_MAX_HEADER);
	if (n > file_size - 8)
		return fail(err, errlen, "header length %llu runs past the end of the %llu-byte file",
			    (unsigned long long)n, (unsigned long long)file_size);
	*len = n;
	return 0;
}

/* A JSON number that is a non-negative integer below 2^53 (exactly representable). */
static int json_u64(const cJSON *v, uint64_t *out)
{
	if (!cJSON_IsNumber(v))
		return -1;
	double d = v->valuedouble;
	if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d)
		return -1;
	*out = (uint64_t)d;
	return 0;
}

static int parse_entry(const cJSON *e, struct st_tensor *t, char *err, size_t errlen)
{
	const cJSON *dt = NULL, *shape = NULL, *offs = NULL, *f;
	const char *name = t->name;

	if (!cJSON_IsObject(e))
		return fail(err, errlen, "tensor '%s': entry is not an object", name);
	cJSON_ArrayForEach(f, e) {
		if (strcmp(f->string, "dtype") == 0)
			dt = f;
		else if (strcmp(f->string, "shape") == 0)
			shape = f;
		else if (strcmp(f->string, "data_offsets") == 0)
			offs = f;
		else
			return fail(err, errlen, "tensor '%s': unknown field '%s'", name, f->string);
	}
	if (!cJSON_IsString(dt))
		return fail(err, errlen, "tensor '%s': missing or non-string dtype", name);
	int d = st_dtype_parse(dt->valuestring);
	if (d < 0)
		return fail(err, errlen, "tensor '%s': unknown dtype '%.32s'", name, dt->valuestring);
	t->dtype = (enum st_dtype)d;
	if (!cJSON_IsArray(shape))
		return fail(err, errlen, "tensor '%s': missing or non-array shape", name);
	int nd = cJSON_GetArraySize(shape);
	if (nd > ST_MAX_DIMS)
		return fail(err, errlen, "tensor '%s': %d dimensions, at most %d", name, nd, ST_MAX_DIMS);
	t->ndim = nd;
	uint64_t numel = 1;
	int i = 0;
	cJSON_ArrayForEach(f, shape) {
		uint64_t dim;
		if (json_u64(f, &dim) < 0)
			return fail(err, errlen, "tensor '%s': shape[%d] is not a non-negative integer", name, i);
		if (dim != 0 && numel > UINT64_MAX / 16 / dim)
			return fail(err, errlen, "tensor '%s': shape overflows", name);
		numel *= dim;
		t->shape[i++] = (int64_t)dim;
	}
	if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
		return fail(err, errlen, "tensor '%s': data_offsets must be [begin, end]", name);
	if (json_u64(cJSON_GetArrayItem(offs, 0), &t->begin) < 0 ||
	    json_u64(cJSON_GetArrayItem(offs, 1), &t->end) < 0)
		return fail(err, errlen, "tensor '%s': data_offsets are not non-negative integers", name);
	if (t->end < t->begin)
		return fail(err, errlen, "tensor '%s': data_offsets end %llu before begin %llu", name,
			    (unsigned long long)t->end, (unsigned long long)t->begin);
	uint64_t want = numel * st_dtype_size(t->dtype);
	if (t->end - t->begin != want)
		return fail(err, errlen,
			    "tensor '%s': shape x %s size is %llu bytes but data_offsets span %llu", name,
			    dtypes[t->dtype].name, (unsigned long long)want,
			    (unsigned long long)(t->end - t->begin));
	return 0;
}

static int cmp_begin(const void *a, const void *b)
{
	const struct st_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	return (x->end > x->begin) - (y->end > y->begin);	/* empty tensors first */
}

int st_parse_header(const char *json, size_t n, uint64_t file_size, struct st_file *out,
		    char *err, size_t errlen)
{
	cJSON *root, *e;
	int rc = 0, count = 0, i = 0;

	memset(out, 0, sizeof(*out));
	if (n > ST_MAX_HEADER || n + 8 > file_size)
		return fail(err, errlen, "header of %zu bytes does not fit in the %llu-byte file", n,
			    (unsigned long long)file_size);
	if (memchr(json, 0, n))
		return fail(err, errlen, "header contains a NUL byte");
	const char *end = NULL;
	root = cJSON_ParseWithLengthOpts(json, n, &end, 0);
	if (!root)
		return fail(err, errlen, "header is not valid JSON (near byte %ld)",
			    (long)(end ? end - json : -1));
	/* Only whitespace may follow the JSON (the format pads with 0x20). */
	for (const char *p = end; p && p < json + n; p++) {
		if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
			rc = fail(err, errlen, "trailing bytes after the header JSON at byte %ld",
				  (long)(p - json));
			goto out;
		}
	}
	if (!cJSON_IsObject(root)) {
		rc = fail(err, errlen, "header is not a JSON object");
		goto out;
	}
	cJSON_ArrayForEach(e, root) {
		if (strcmp(e->string, "__metadata__") != 0)
			count++;
	}
	if (count > ST_MAX_TENSORS) {
		rc = fail(err, errlen, "header lists %d tensors, more than the %d accepted", count, ST_MAX_TENSORS);
		goto out;
	}
	out->tensors = calloc(count ? (size_t)count : 1, sizeof(*out->tensors));
	if (!out->tensors) {
		rc = ST_ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(e, root) {
		if (strcmp(e->string, "__metadata__") == 0) {
			const cJSON *m;
			if (out->metadata_json || !cJSON_IsObject(e)) {
				rc = fail(err, errlen, "__metadata__ is not an object (or appears twice)");
				goto out;
			}
			cJSON_ArrayForEach(m, e) {
				if (!cJSON_IsString(m)) {
					rc = fail(err, errlen, "__metadata__ value '%s' is not a string", m->string);
					goto out;
				}
			}
			out->metadata_json = cJSON_PrintUnformatted(e);
			if (!out->metadata_json) {
				rc = ST_ENOMEM;
				goto out;
			}
			continue;
		}
		struct st_tensor *t = &out->tensors[i];
		size_t nl = strlen(e->string);
		if (nl == 0 || nl >= ST_NAME_MAX) {
			rc = fail(err, errlen, "tensor name of %zu bytes (must be 1..%d)", nl, ST_NAME_MAX - 1);
			goto out;
		}
		memcpy(t->name, e->string, nl + 1);
		for (int k = 0; k < i; k++) {
			if (strcmp(out->tensors[k].name, t->name) == 0) {
				rc = fail(err, errlen, "tensor '%s' appears twice", t->name);
				goto out;
			}
		}
		if ((rc = parse_entry(e, t, err, errlen)) < 0)
			goto out;
		i++;
	}
	out->n_tensors = count;
	out->header_len = n;
	out->data_start = 8 + n;
	out->data_len = file_size - out->data_start;
	qsort(out->tensors, (size_t)count, sizeof(*out->tensors), cmp_begin);
	uint64_t pos = 0;
	for (i = 0; i < count; i++) {
		const struct st_tensor *t = &out->tensors[i];
		if (t->begin < pos) {
			rc = fail(err, errlen, "tensor '%s': bytes [%llu, %llu) overlap the previous tensor '%s'",
				  t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
				  out->tensors[i - 1].name);
			goto out;
		}
		if (t->begin > pos) {
			rc = fail(err, errlen, "tensor '%s': hole of %llu bytes before it (data offset %llu)",
				  t->name, (unsigned long long)(t->begin - pos), (unsigned long long)pos);
			goto out;
		}
		if (t->end > out->data_len) {
			rc = fail(err, errlen, "tensor '%s': data_offsets end %llu is past the %llu bytes of data",
				  t->name, (unsigned long long)t->end, (unsigned long long)out->data_len);
			goto out;
		}
		pos = t->end;
	}
	if (pos != out->data_len) {
		rc = fail(err, errlen, "%llu bytes of data after the last tensor%s%s",
			  (unsigned long long)(out->data_len - pos), count ? " " : "",
			  count ? out->tensors[count - 1].name : "");
		goto out;
	}
out:
	cJSON_Delete(root);
	if (rc < 0)
		st_file_release(out);
	return rc;
}

int st_read_file_header(const char *path, struct st_file *out, char *err, size_t errlen)
{
	uint8_t prefix[8];
	struct stat sb;
	uint64_t n;
	char *buf;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return errno == ENOENT ? ST_ENOENT : ST_EIO;
	}
	if (fstat(fd, &sb) < 0 || pread_full(fd, prefix, sizeof(prefix), 0) < 0) {
		rc = (int)(sb.st_size < 8 ? ST_EFORMAT : ST_EIO);
		snprintf(err, errlen, "'%s': cannot read the header length (file is %lld bytes)", path,
			 (long long)sb.st_size);
		goto out_close;
	}
	if ((rc = st_header_len(prefix, (uint64_t)sb.st_size, &n, err, errlen)) < 0)
		goto out_close;
	buf = malloc(n);
	if (!buf) {
		rc = ST_ENOMEM;
		goto out_close;
	}
	if ((rc = pread_full(fd, buf, n, 8)) < 0)
		snprintf(err, errlen, "'%s': cannot read %llu header bytes", path, (unsigned long long)n);
	else
		rc = st_parse_header(buf, n, (uint64_t)sb.st_size, out, err, errlen);
	free(buf);
out_close:
	close(fd);
	return rc;
}

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
	for (int i = 0; i < f->n_tensors; i++)
		if (strcmp(f->tensors[i].name, name) == 0)
			return &f->tensors[i];
	return NULL;
}

void st_file_release(struct st_file *f)
{
	if (!f)
		return;
	free(f->tensors);
	cJSON_free(f->metadata_json);
	memset(f, 0, sizeof(*f));
}
