/* quantize_fp8.c - streaming FP8 quantizer of a local model directory; see quantize_fp8.h. */
#include "loader/quantize_fp8.h"

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

#include "common/fileio.h"
#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/fp8.h"
#include "loader/loader.h"
#include "loader/model_desc.h"
#include "loader/model_format.h"
#include "loader/quant_format.h"

#define COPY_CHUNK (4u << 20)

/* Files besides the weights that travel with a model (copied when present). */
static const char *const side_files[] = {
	"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
	"generation_config.json",
};

__attribute__((format(printf, 4, 5)))
static int qfail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* One output tensor: where it comes from and where it goes. */
struct q_out {
	const struct st_tensor *src;	/* input tensor (for a scale: its weight) */
	char name[ST_NAME_MAX + 16];
	enum st_dtype dtype;
	int ndim;
	int64_t shape[2];
	int kind;			/* 0 copy, 1 FP8 codes, 2 the BF16 scales of the previous */
	uint64_t begin, end;
};

static int is_covered(const struct g2_config *c, const struct st_tensor *t)
{
	char module[ST_NAME_MAX];
	size_t n = strlen(t->name);

	if (t->ndim != 2 || n < 12 || strcmp(t->name + n - 12, "_proj.weight") != 0)
		return 0;
	memcpy(module, t->name, n - 7);
	module[n - 7] = 0;
	return ld_quant_covers(&c->quant, module);
}

/* The output tensor list of one shard, in the input's data order; *n_out entries. */
static struct q_out *plan_shard(const struct g2_config *qc, const struct st_file *in, int *n_out,
				uint64_t *data_len)
{
	struct q_out *o = calloc((size_t)in->n_tensors * 2 + 1, sizeof(*o));
	uint64_t off = 0;
	int n = 0;

	if (!o)
		return NULL;
	for (int i = 0; i < in->n_tensors; i++) {
		const struct st_tensor *t = &in->tensors[i];
		struct q_out *e = &o[n++];
		e->src = t;
		snprintf(e->name, sizeof(e->name), "%s", t->name);
		e->ndim = t->ndim;
		e->shape[0] = t->ndim > 0 ? t->shape[0] : 0;
		e->shape[1] = t->ndim > 1 ? t->shape[1] : 0;
		e->begin = off;
		if (is_covered(qc, t)) {
			e->kind = 1;
			e->dtype = ST_F8_E4M3;
			off += st_numel(t);
			e->end = off;
			e = &o[n++];
			e->src = t;
			snprintf(e->name, sizeof(e->name), "%.*s.weight_scale",
				 (int)(strlen(t->name) - 7), t->name);
			e->kind = 2;
			e->dtype = ST_BF16;
			e->ndim = 2;
			e->shape[0] = t->shape[0];
			e->shape[1] = 1;
			e->begin = off;
			off += (uint64_t)t->shape[0] * 2;
		} else {
			e->kind = 0;
			e->dtype = t->dtype;
			off += t->end - t->begin;
		}
		e->end = off;
	}
	*n_out = n;
	*data_len = off;
	return o;
}

/* The safetensors header JSON of a planned shard, padded with spaces to a multiple of 8. */
static char *shard_header(const struct q_out *o, int n, size_t *len)
{
	cJSON *r = cJSON_CreateObject(), *meta;
	char *s = NULL, *p;
	size_t sl, pad;

	if (!r)
		return NULL;
	meta = cJSON_AddObjectToObject(r, "__metadata__");
	cJSON_AddStringToObject(meta, "format", "pt");
	for (int i = 0; i < n; i++) {
		cJSON *t = cJSON_AddObjectToObject(r, o[i].name), *a;
		if (!t)
			goto out;
		cJSON_AddStringToObject(t, "dtype", st_dtype_name(o[i].dtype));
		a = cJSON_AddArrayToObject(t, "shape");
		for (int d = 0; d < o[i].ndim; d++)
			cJSON_AddItemToArray(a, cJSON_CreateNumber((double)o[i].shape[d]));
		a = cJSON_AddArrayToObject(t, "data_offsets");
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)o[i].begin));
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)o[i].end));
	}
	if (!(s = cJSON_PrintUnformatted(r)))
		goto out;
	sl = strlen(s);
	pad = (8 - sl % 8) % 8;
	if (!(p = realloc(s, sl + pad + 1))) {
		free(s);
		s = NULL;
		goto out;
	}
	s = p;
	memset(s + sl, ' ', pad);
	s[sl + pad] = 0;
	*len = sl + pad;
out:
	cJSON_Delete(r);
	return s;
}

static float load_src(const uint8_t *p, enum st_dtype dt, size_t i)
{
	uint16_t h;
	float f;
	if (dt == ST_F32) {
		memcpy(&f, p + 4 * i, 4);
		return f;
	}
	memcpy(&h, p + 2 * i, 2);
	return dt == ST_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

/*
 * Writes weight t (at file offset src_off of fd_in) as FP8 codes at dst_off
 * and its BF16 scales at scale_off of fd_out, one row at a time.
 */
static int quantize_tensor(int fd_in, uint64_t src_off, const struct st_tensor *t, int fd_out,
			   uint64_t dst_off, uint64_t scale_off, char *err, size_t errlen)
{
	int64_t rows = t->shape[0], cols = t->shape[1];
	size_t esz = st_dtype_size(t->dtype);
	uint8_t *row = malloc((size_t)cols * esz), *codes = malloc((size_t)cols);
	uint16_t *scales = malloc((size_t)rows * 2);
	int rc = ST_ENOMEM;

	if (!row || !codes || !scales)
		goto out;
	if (t->dtype != ST_BF16 && t->dtype != ST_F16 && t->dtype != ST_F32) {
		rc = qfail(ST_EINVAL, err, errlen, "tensor '%s': cannot quantize dtype %s", t->name,
			   st_dtype_name(t->dtype));
		goto out;
	}
	for (int64_t r = 0; r < rows; r++) {
		float amax = 0, s;
		if ((rc = pread_full(fd_in, row, (size_t)cols * esz,
				     src_off + (uint64_t)r * (uint64_t)cols * esz)) < 0) {
			rc = qfail(ST_EIO, err, errlen, "tensor '%s': read failed at row %lld", t->name,
				   (long long)r);
			goto out;
		}
		for (int64_t i = 0; i < cols; i++) {
			float v = fabsf(load_src(row, t->dtype, (size_t)i));
			if (!isfinite(v)) {
				rc = qfail(ST_EINVAL, err, errlen, "tensor '%s': row %lld holds %g", t->name,
					   (long long)r, v);
				goto out;
			}
			amax = v > amax ? v : amax;
		}
		scales[r] = f32_to_bf16(amax / FP8_E4M3_MAX);
		s = bf16_to_f32(scales[r]);
		if (!(s > 0)) {
			scales[r] = f32_to_bf16(1.0f);
			s = 1.0f;
		}
		for (int64_t i = 0; i < cols; i++)
			codes[i] = fp8_e4m3_from_f32(load_src(row, t->dtype, (size_t)i) / s);
		if (pwrite(fd_out, codes, (size_t)cols, (off_t)(dst_off + (uint64_t)r * (uint64_t)cols)) !=
		    (ssize_t)cols) {
			rc = qfail(ST_EIO, err, errlen, "write failed: %s", strerror(errno));
			goto out;
		}
	}
	rc = 0;
	if (pwrite(fd_out, scales, (size_t)rows * 2, (off_t)scale_off) != (ssize_t)(rows * 2))
		rc = qfail(ST_EIO, err, errlen, "write failed: %s", strerror(errno));
out:
	free(row);
	free(codes);
	free(scales);
	return rc;
}

static int copy_range(int fd_in, uint64_t src, int fd_out, uint64_t dst, uint64_t n, char *buf,
		      char *err, size_t errlen)
{
	while (n > 0) {
		size_t k = n < COPY_CHUNK ? (size_t)n : COPY_CHUNK;
		if (pread_full(fd_in, buf, k, src) < 0)
			return qfail(ST_EIO, err, errlen, "read failed at offset %llu", (unsigned long long)src);
		if (pwrite(fd_out, buf, k, (off_t)dst) != (ssize_t)k)
			return qfail(ST_EIO, err, errlen, "write failed: %s", strerror(errno));
		src += k;
		dst += k;
		n -= k;
	}
	return 0;
}

static int quantize_shard(const char *in_dir, const char *out_dir, const char *name,
			  const struct st_file *in, const struct g2_config *qc, cJSON *weight_map,
			  struct ld_quant_stats *st, char *buf, char *err, size_t errlen)
{
	char path[4096];
	struct q_out *o;
	char *hdr = NULL;
	size_t hlen = 0;
	uint64_t data_len, base, hl;
	int n, fd_in = -1, fd_out = -1, rc = ST_ENOMEM;

	if (!(o = plan_shard(qc, in, &n, &data_len)) || !(hdr = shard_header(o, n, &hlen)))
		goto out;
	snprintf(path, sizeof(path), "%s/%s", in_dir, name);
	if ((fd_in = open(path, O_RDONLY)) < 0) {
		rc = qfail(ST_EIO, err, errlen, "cannot open '%s': %s", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", out_dir, name);
	if ((fd_out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
		rc = qfail(ST_EIO, err, errlen, "cannot create '%s': %s", path, strerror(errno));
		goto out;
	}
	hl = hlen;
	base = 8 + hl;
	if (pwrite(fd_out, &hl, 8, 0) != 8 || pwrite(fd_out, hdr, hlen, 8) != (ssize_t)hlen) {
		rc = qfail(ST_EIO, err, errlen, "cannot write '%s': %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		uint64_t src = in->data_start + o[i].src->begin;
		if (weight_map)
			cJSON_AddStringToObject(weight_map, o[i].name, name);
		if (o[i].kind == 1) {
			rc = quantize_tensor(fd_in, src, o[i].src, fd_out, base + o[i].begin,
					     base + o[i + 1].begin, err, errlen);
			st->n_quantized++;
		} else if (o[i].kind == 0) {
			rc = copy_range(fd_in, src, fd_out, base + o[i].begin, o[i].end - o[i].begin, buf,
					err, errlen);
			st->n_copied++;
		}
	}
	if (rc == 0 && ftruncate(fd_out, (off_t)(base + data_len)) < 0)
		rc = qfail(ST_EIO, err, errlen, "cannot size '%s': %s", path, strerror(errno));
	st->in_bytes += in->data_len;
	st->out_bytes += data_len;
out:
	if (fd_out >= 0 && close(fd_out) < 0 && rc == 0)
		rc = qfail(ST_EIO, err, errlen, "cannot write '%s': %s", path, strerror(errno));
	if (fd_in >= 0)
		close(fd_in);
	free(hdr);
	free(o);
	return rc;
}

static int copy_small(const char *from, const char *to)
{
	char *b;
	size_t n;
	int rc = read_file(from, 256u << 20, &b, &n);
	if (rc < 0)
		return rc;
	rc = write_file(to, b, n);
	free(b);
	return rc;
}

int ld_quantize_fp8(const char *in_dir, const char *out_dir, const struct g2_quant_cfg *q,
		    struct ld_quant_stats *st, char *err, size_t errlen)
{
	struct ld_desc d;
	struct g2_config qc;
	struct stat sa, sb;
	char path[4096], path2[4096], *json = NULL, *buf = NULL;
	cJSON *index = NULL, *wm = NULL;
	int rc, have_index;

	memset(st, 0, sizeof(*st));
	if (errlen)
		err[0] = 0;
	if ((rc = ld_desc_local(in_dir, &d, err, errlen)) < 0)
		return rc;
	if (d.cfg.quant.method != G2_QUANT_NONE) {
		rc = qfail(ST_EINVAL, err, errlen, "'%s' is already quantized (%s)", in_dir,
			   ld_quant_scheme_name(&d.cfg.quant));
		goto out;
	}
	if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
		rc = qfail(ST_EIO, err, errlen, "cannot create '%s': %s", out_dir, strerror(errno));
		goto out;
	}
	if (stat(in_dir, &sa) == 0 && stat(out_dir, &sb) == 0 && sa.st_dev == sb.st_dev &&
	    sa.st_ino == sb.st_ino) {
		rc = qfail(ST_EINVAL, err, errlen, "--out must differ from --model");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/config.json", out_dir);
	if (access(path, F_OK) == 0) {
		rc = qfail(ST_EINVAL, err, errlen, "'%s' already holds a model (config.json)", out_dir);
		goto out;
	}
	qc = d.cfg;
	qc.quant = *q;
	snprintf(path, sizeof(path), "%s/model.safetensors.index.json", in_dir);
	have_index = access(path, F_OK) == 0;
	rc = ST_ENOMEM;
	if (!(buf = malloc(COPY_CHUNK)))
		goto out;
	if (have_index && (!(index = cJSON_CreateObject()) ||
			   !cJSON_AddObjectToObject(index, "metadata") ||
			   !(wm = cJSON_AddObjectToObject(index, "weight_map"))))
		goto out;
	for (int s = 0; s < d.n_shards; s++)
		if ((rc = quantize_shard(in_dir, out_dir, d.shard_names[s], &d.shards[s], &qc, wm, st,
					 buf, err, errlen)) < 0)
			goto out;
	if (index) {
		cJSON_AddNumberToObject(cJSON_GetObjectItem(index, "metadata"), "total_size",
					(double)st->out_bytes);
		rc = ST_ENOMEM;
		if (!(json = cJSON_Print(index)))
			goto out;
		snprintf(path, sizeof(path), "%s/model.safetensors.index.json", out_dir);
		if ((rc = write_file(path, json, strlen(json))) < 0) {
			rc = qfail(rc, err, errlen, "cannot write '%s'", path);
			goto out;
		}
		free(json);
		json = NULL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(side_files); i++) {
		snprintf(path, sizeof(path), "%s/%s", in_dir, side_files[i]);
		snprintf(path2, sizeof(path2), "%s/%s", out_dir, side_files[i]);
		if (access(path, F_OK) == 0 && (rc = copy_small(path, path2)) < 0) {
			rc = qfail(rc, err, errlen, "cannot copy '%s'", path);
			goto out;
		}
	}
	/* config.json last: a directory without it is visibly unfinished */
	rc = ST_ENOMEM;
	if (!(json = g2_config_to_json(&qc)))
		goto out;
	snprintf(path, sizeof(path), "%s/config.json", out_dir);
	if ((rc = write_file(path, json, strlen(json))) < 0) {
		rc = qfail(rc, err, errlen, "cannot write '%s'", path);
		goto out;
	}
	if ((rc = ld_write_crc_manifest(out_dir)) < 0)
		rc = qfail(rc, err, errlen, "cannot write '%s/crc32c.json'", out_dir);
out:
	if (rc == ST_ENOMEM && !err[0])
		qfail(rc, err, errlen, "out of memory");
	free(json);
	free(buf);
	cJSON_Delete(index);
	ld_desc_release(&d);
	return rc;
}
