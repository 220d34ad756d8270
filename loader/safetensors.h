/*
 * safetensors.h - strict parser of a safetensors header.
 *
 * A file is: 8-byte little-endian header length N, N bytes of JSON, data.
 * The JSON maps tensor names to {dtype, shape, data_offsets:[begin,end]}
 * (offsets relative to the data start) plus an optional "__metadata__"
 * object of strings. This parser accepts a header only if:
 *   - N is at most ST_MAX_HEADER (100 MB) and fits in the file,
 *   - it lists at most ST_MAX_TENSORS tensors (Gemma 2 27B has ~600; the
 *     name checks here and in model_format.c are quadratic in this),
 *   - the JSON is valid and every entry has exactly the fields above,
 *   - the dtype is known (BF16 F16 F32 F64 I8 U8 I16 I32 I64 BOOL F8_E4M3 F8_E5M2),
 *   - shape x dtype size equals end - begin (no overflow),
 *   - the offsets, sorted, tile [0, data size) with no overlap and no hole,
 *     and the data ends exactly at the end of the file.
 * Every rejection says which tensor and why (in err).
 * Tensors come out sorted by data offset. Nothing here reads files.
 */
#ifndef GR_SAFETENSORS_H
#define GR_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_HEADER  (100u * 1000u * 1000u)
#define ST_MAX_DIMS    8
#define ST_NAME_MAX    256
#define ST_MAX_TENSORS 16384

enum st_dtype {
	ST_BF16 = 0, ST_F16, ST_F32, ST_F64, ST_I8, ST_U8, ST_I16, ST_I32, ST_I64,
	ST_BOOL, ST_F8_E4M3, ST_F8_E5M2, ST_DTYPE_COUNT
};

struct st_tensor {
	char name[ST_NAME_MAX];
	enum st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	uint64_t begin, end;	/* byte offsets relative to the data start */
};

struct st_file {
	uint64_t header_len;	/* N */
	uint64_t data_start;	/* 8 + N: file offset of byte 0 of the data */
	uint64_t data_len;	/* bytes of tensor data */
	int n_tensors;
	struct st_tensor *tensors;	/* sorted by begin; owned */
	char *metadata_json;	/* the "__metadata__" object as JSON, or NULL; owned */
};

/* Name ("BF16") and element size in bytes of a dtype; NULL/0 if unknown. */
const char *st_dtype_name(enum st_dtype dt);
size_t st_dtype_size(enum st_dtype dt);
/* Parses a dtype name; -1 if unknown. */
int st_dtype_parse(const char *name);

/* Number of elements of a tensor (product of its shape; 1 for a scalar). */
uint64_t st_numel(const struct st_tensor *t);

/*
 * Reads the header length from the first 8 bytes of a file of file_size
 * bytes and checks it against the limits. 0 or ST_EFORMAT (err says why).
 */
int st_header_len(const uint8_t prefix[8], uint64_t file_size, uint64_t *len,
		  char *err, size_t errlen);

/*
 * Parses the n-byte JSON header (without the 8-byte prefix) of a file of
 * file_size bytes into out (caller releases with st_file_release).
 * Returns 0 or ST_EFORMAT / ST_ENOMEM with the reason in err.
 */
int st_parse_header(const char *json, size_t n, uint64_t file_size, struct st_file *out,
		    char *err, size_t errlen);

/* Opens path, reads and parses its header (two preads). */
int st_read_file_header(const char *path, struct st_file *out, char *err, size_t errlen);

/* Finds a tensor by name; NULL if absent. */
const struct st_tensor *st_find(const struct st_file *f, const char *name);

void st_file_release(struct st_file *f);

#endif
