/*
 * ld_internal.h - what the loader's files share and nothing outside
 * loader/ (and its tests) should use: byte sources, the chunk planner,
 * tensor placement, the crc32c.json manifest and the wire parsers.
 *
 * A byte source (file, http(s), gcs) answers three questions per object
 * (a file of the model directory): fetch it whole (small files), open it
 * (size, generation, server crc32c, and its first bytes in the same
 * request), and read a byte range straight into a caller's buffer. A
 * connection (struct ld_conn) is used by one thread at a time; the source
 * itself is shared by all workers.
 *
 * Read results: 0 when every requested byte arrived; ST_ENET or
 * ST_ETIMEOUT when the read may be retried (*got bytes already landed at
 * dst and need not be read again); anything else is fatal (ST_EAUTH 403,
 * ST_ENOENT 404, ST_EIO 412 and other refusals, ST_EFORMAT a server that
 * answered the wrong range, ST_ECANCEL the load was aborted).
 */
#ifndef GR_LD_INTERNAL_H
#define GR_LD_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "loader/loader.h"
#include "loader/model_desc.h"

#define LD_NAME_MAX 1024
#define LD_ERR_MAX 1024

enum ld_src_kind { LD_SRC_FILE = 0, LD_SRC_HTTP, LD_SRC_GCS };

/* One object (file) of the model: filled by open_obj, released by obj_release. */
struct ld_obj {
	char name[LD_NAME_MAX];		/* relative to the model prefix */
	char where[LD_NAME_MAX + 64];	/* full name for messages: path, URL or gs:// */
	uint64_t size;
	int64_t generation;		/* GCS generation; 0 for other sources */
	uint32_t crc32c;		/* GCS stored crc32c, valid if has_crc */
	int has_crc;
	int fd;				/* file source: open descriptor, else -1 */
	char *url;			/* http/gcs: media URL without range; owned */
	char etag[128];			/* http: strong ETag of the first read, sent as If-Match; or "" */
};

/* Per-read details the retry logic needs. */
struct ld_rd_info {
	long http_status;		/* last HTTP status (0: none / not HTTP) */
	int throttled;			/* 429 or 503 */
	int auth_expired;		/* 401: refresh the token and retry once */
};

struct ld_src;
struct gcs_auth;

struct ld_src_vt {
	int (*conn_create)(struct ld_src *s, void **conn);
	void (*conn_destroy)(void *conn);
	/* Whole small object; ST_ENOENT (not logged) when it does not exist. */
	int (*fetch_whole)(struct ld_src *s, void *conn, const char *name, size_t max,
			   char **out, size_t *len, char *err, size_t errlen);
	/* Opens an object and reads its first min(head_want, size) bytes into head. */
	int (*open_obj)(struct ld_src *s, void *conn, const char *name, struct ld_obj *o,
			void *head, size_t head_want, size_t *head_got, char *err, size_t errlen);
	/* crc (if not NULL) is extended over every byte that lands, while it is hot in cache */
	int (*read)(struct ld_src *s, void *conn, const struct ld_obj *o, uint64_t off, size_t n,
		    void *dst, size_t *got, uint32_t *crc, struct ld_rd_info *info, char *err, size_t errlen);
	void (*destroy)(struct ld_src *s);
};

struct ld_src {
	const struct ld_src_vt *vt;
	enum ld_src_kind kind;
	char *base;			/* directory, or URL prefix without trailing '/' */
	char *display;			/* the URI as given, for messages */
	/* http and gcs */
	void *share;			/* CURLSH: DNS + TLS session cache */
	pthread_mutex_t share_mu[8];
	char *ca_bundle;
	double connect_s, stall_s;
	/* gcs */
	char *endpoint;			/* https://storage.googleapis.com or the emulator */
	char *bucket, *prefix;		/* prefix without trailing '/', may be "" */
	struct gcs_auth *auth;
	_Atomic int *abort;		/* set when the load fails: transfers stop */
	double deadline;		/* now_sec() limit, 0: none */
};

/* Opens a source for uri (dispatch on the scheme). Caller frees with ld_src_destroy. */
int ld_src_open(const char *uri, const struct ld_opts *o, struct ld_src **out);
void ld_src_destroy(struct ld_src *s);
void ld_obj_release(struct ld_obj *o);

int ld_src_file_create(const char *dir, struct ld_src **out);
int ld_src_http_create(const char *url, const struct ld_opts *o, struct ld_src **out);
int ld_src_gcs_create(const char *uri, const struct ld_opts *o, struct ld_src **out);

/* Shared libcurl transport (source_http.c), used by the gcs source and gcs_auth. */
struct ld_http_req {
	const char *url;
	const char *method;		/* NULL: GET */
	const char *const *headers;	/* NULL-terminated extra headers, or NULL */
	const char *body;		/* request body for POST, or NULL */
	int ranged;			/* send Range: bytes=off-(off+n-1) */
	int range_short_ok;		/* a shorter 206 (object smaller than off+n) is fine */
	uint64_t off;
	size_t n;
	void *dst;			/* ranged: n bytes; else NULL (body into *whole) */
	uint32_t *crc;			/* ranged: CRC-32C extended over the bytes stored, or NULL */
	size_t max;			/* unranged: largest body accepted */
	/* results */
	long status;
	size_t got;			/* body bytes stored */
	uint64_t total;			/* object size from Content-Range (ranged) */
	char *whole;			/* unranged 2xx body, NUL-terminated; caller frees */
	char errbody[256];		/* start of a non-2xx body, for messages */
	char content_encoding[64];
	char etag[128];			/* the response's ETag header, or "" */
};
/* Performs r on a connection (a CURL easy handle from ld_http_conn_create). */
int ld_http_perform(struct ld_src *s, void *conn, struct ld_http_req *r, char *err, size_t errlen);
int ld_http_conn_create(struct ld_src *s, void **conn);
void ld_http_conn_destroy(void *conn);
int ld_http_share_init(struct ld_src *s, const struct ld_opts *o);
void ld_http_share_release(struct ld_src *s);
void ld_http_global_init(void);

/*
 * Parses a Content-Range value ("bytes 0-99/1234"; total may be "*", then
 * *total is UINT64_MAX). n bytes, not necessarily NUL-terminated;
 * surrounding blanks allowed. 0 or ST_EFORMAT.
 */
int ld_parse_content_range(const char *s, size_t n, uint64_t *first, uint64_t *last,
			   uint64_t *total);

/* GCS object resource (storage/v1 JSON). */
struct gcs_obj_meta {
	uint64_t size;
	int64_t generation;
	uint32_t crc32c;
	int has_crc;
	int gzip;			/* contentEncoding is gzip */
	char content_encoding[64];
};
int gcs_parse_object_meta(const char *json, size_t n, struct gcs_obj_meta *out, char *err,
			  size_t errlen);
/* Percent-encodes an object name for a JSON API path ('/' -> %2F). */
int gcs_encode_name(const char *name, char *out, size_t cap);

/* Chunk planner. */
struct ld_chunk {
	int obj;			/* shard index */
	int index_in_obj;		/* order within its shard */
	uint64_t file_off;		/* byte offset in the shard file */
	size_t arena_off;		/* byte offset in the arena */
	size_t len;
};
/*
 * Cuts each shard's data region [data_start[s], +data_len[s]) into chunks of
 * at most chunk bytes, in file order, destined to arena_base[s] + (off -
 * data_start). *out is a new array (caller frees). Empty regions give none.
 */
int ld_plan_chunks(int n_obj, const uint64_t *data_start, const uint64_t *data_len,
		   const size_t *arena_base, size_t chunk, struct ld_chunk **out, int *n_out);

/* Builds m->tensors and m->arena_bytes for d; shard_base[s] gets each shard's arena offset. */
int ld_place_tensors(struct ld_model *m, const struct ld_desc *d, size_t *shard_base);

/* crc32c.json (manifest.c). */
struct ld_manifest_entry {
	char *name;
	uint64_t size;
	uint32_t crc32c;
};
struct ld_manifest {
	int n;
	struct ld_manifest_entry *e;
};
int ld_manifest_parse(const char *json, size_t n, struct ld_manifest *out, char *err,
		      size_t errlen);
const struct ld_manifest_entry *ld_manifest_find(const struct ld_manifest *m, const char *name);
void ld_manifest_release(struct ld_manifest *m);

/* GCS credentials (gcs_auth.c). */
int gcs_auth_create(struct ld_src *s, int anonymous, struct gcs_auth **out);
void gcs_auth_destroy(struct gcs_auth *a);
/* Writes "Authorization: Bearer TOKEN" into buf (empty when anonymous), refreshing as needed. */
int gcs_auth_header(struct gcs_auth *a, void *conn, char *buf, size_t cap, char *err, size_t errlen);
/* Forgets the cached token after a 401 (the next header fetches a new one). */
void gcs_auth_invalidate(struct gcs_auth *a, const char *token_header);

/* The pipeline (pipeline.c): loads any URI. */
int ld_load_pipeline(const char *uri, const struct ld_opts *o, struct be *be,
		     struct ld_progress *pr, struct ld_model **out);

#endif
