/*
 * loader.h - the loader's one entry point: bring a model from a URI into a
 * backend's device memory.
 *
 * The result is an arena (one backend allocation) holding every tensor of
 * every shard in its stored dtype, and a table that finds each tensor in it.
 * kernels/ binds its weight pointers from that table; nothing else of the
 * loader is visible to the model code.
 *
 * Progress is published in struct ld_progress (atomics), which the service
 * reads for /health and /metrics while the load runs on other threads.
 */
#ifndef GR_LOADER_H
#define GR_LOADER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/g2_config.h"
#include "loader/safetensors.h"

struct ld_opts {
	int workers;			/* --loader-workers (0: default) */
	size_t chunk_bytes;		/* --loader-chunk-mb (0: default) */
	size_t pinned_bytes;		/* --loader-pinned-mb (0: default) */
	const char *ca_bundle;		/* --ca-bundle for https:// and gs:// (NULL: system) */
	int gcs_anonymous;		/* --gcs-anonymous */
	double deadline_s;		/* whole-load deadline (0: none) */
	int verify;			/* check crc32c.json / object crc32c (default on) */
};

enum ld_stage { LD_STAGE_META = 0, LD_STAGE_FIRST_BYTE, LD_STAGE_TRANSFER, LD_STAGE_SYNC,
		LD_STAGE_VERIFY, LD_N_STAGES };
extern const char *const ld_stage_name[LD_N_STAGES];	/* "metadata", "first_byte", ... */

struct ld_progress {
	_Atomic uint64_t bytes_done;
	_Atomic uint64_t bytes_total;
	_Atomic int done;		/* 1 ok, -1 failed */
	double t_start;			/* now_sec() at start */
	double stage_s[LD_N_STAGES];	/* seconds per stage, filled as stages end */
};

/* One tensor's place in the arena. */
struct ld_tensor {
	char name[ST_NAME_MAX];
	enum st_dtype dtype;
	int ndim;
	int64_t shape[ST_MAX_DIMS];
	size_t offset;			/* byte offset in the arena */
	size_t nbytes;
};

struct ld_model {
	struct g2_config cfg;
	struct be *be;			/* borrowed */
	void *arena;			/* be->ops->alloc'd; freed by ld_model_destroy */
	size_t arena_bytes;
	int n_tensors;
	struct ld_tensor *tensors;
	char *tokenizer_json;		/* tokenizer.json bytes, NUL-terminated, or NULL if absent */
	size_t tokenizer_len;
};

void ld_opts_default(struct ld_opts *o);

/*
 * Loads the model at uri (local directory, gs://bucket/prefix or
 * http(s)://host/prefix) into be. progress may be NULL. On success *out is
 * a new model (caller frees with ld_model_destroy). On failure the error
 * was logged with the object, offset and reason, and nothing leaks.
 */
int ld_load(const char *uri, const struct ld_opts *opts, struct be *be,
	    struct ld_progress *progress, struct ld_model **out);

/* Device address of a tensor by name, or NULL (and its entry in *t if t). */
void *ld_tensor_ptr(const struct ld_model *m, const char *name, const struct ld_tensor **t);

void ld_model_destroy(struct ld_model *m);

/* The sequential reference loader for a local directory (load_simple.c). */
int ld_load_simple(const char *dir, struct be *be, struct ld_progress *progress,
		   struct ld_model **out);

#endif
