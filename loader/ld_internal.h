/*
 * ld_internal.h - the types the loader's files share (byte sources and the
 * objects they open); nothing outside loader/ (and its tests) should use
 * them. Types, constants and macros only: every function is declared in
 * the header named for the .c that defines it (source.h, source_*.h,
 * http.h, pipeline.h, ...).
 *
 * A byte source (source_file.c, source_http.c, source_gcs.c) answers three
 * questions per object (a file of the model directory): fetch it whole
 * (small files), open it (size, generation, server crc32c, and its first
 * bytes in the same request), and read a byte range straight into a
 * caller's buffer. The generic struct ld_src carries what the pipeline
 * reads and sets; each source keeps its own state in a private struct
 * (s->priv) defined only in its .c. A connection (void *conn, made by
 * conn_create) is used by one thread at a time; the source itself is
 * shared by all workers.
 *
 * Read results: 0 when every requested byte arrived; ST_ENET or
 * ST_ETIMEOUT when the read may be retried (*got bytes already landed at
 * dst and need not be read again); anything else is fatal (ST_EAUTH 403,
 * ST_ENOENT 404, ST_EIO 412 and other refusals, ST_EFORMAT a server that
 * answered the wrong range, ST_ECANCEL the load was aborted).
 */
#ifndef GR_LD_INTERNAL_H
#define GR_LD_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LD_NAME_MAX 1024
#define LD_ERR_MAX 1024

/* One object (file) of the model: filled by open_obj, released by ld_obj_release (source.h). */
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
};

struct ld_src;

/* What a source does; a static const table in each source_*.c. */
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
	/* Frees s->priv (also a partly built one); the generic fields are source.c's. */
	void (*destroy)(struct ld_src *s);
};

struct ld_src {
	const struct ld_src_vt *vt;
	void *priv;			/* the source's own context (its .c defines it); owned */
	char *display;			/* the URI as given, for messages; owned */
	char *base;			/* the model's location without trailing '/', for messages; owned */
	int local;			/* a local file system: reads are page-cache copies, no per-request cost */
	int object_crc;			/* objects carry a stored crc32c (gcs): no crc32c.json is read */
	_Atomic int *abort;		/* set by the pipeline when the load fails: transfers stop */
	double deadline;		/* now_sec() limit, 0: none */
	_Atomic int first_byte_armed;	/* set by the pipeline when the transfer starts */
	double t_first_byte;		/* now_sec() of the first data byte after that (LD_FIRST_BYTE), or 0 */
};

/*
 * A source calls this as tensor data bytes land (curl's body callback, a
 * pread piece): the first call after the pipeline armed s stamps the time.
 * One atomic load when unarmed. Needs <stdatomic.h> and common/util.h.
 */
#define LD_FIRST_BYTE(s)                                                                  \
	do {                                                                              \
		int armed_ = 1;                                                           \
		if (atomic_load(&(s)->first_byte_armed) &&                                \
		    atomic_compare_exchange_strong(&(s)->first_byte_armed, &armed_, 0))   \
			(s)->t_first_byte = now_sec();                                    \
	} while (0)

#endif
