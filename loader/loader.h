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
 *
 * This is the loader's public face, for callers outside loader/; inside,
 * each .c declares what it gives the others in its own header. Where
 * these are defined: ld_opts_default, ld_tensor_ptr, ld_model_hash,
 * ld_model_destroy, ld_g2_weights, ld_g2_model_create in ld_model.c;
 * ld_load in pipeline.c; ld_load_simple in load_simple.c;
 * ld_write_crc_manifest in manifest.c; ld_global_init/release in http.c.
 */
#ifndef GR_LOADER_H
#define GR_LOADER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "common/load_progress.h"
#include "kernels/g2_config.h"
#include "loader/safetensors.h"

struct ld_opts {
	int workers;			/* --loader-workers (0: default) */
	size_t chunk_bytes;		/* --loader-chunk-mb (0: by source, 32 MiB network, 4 MiB local files) */
	size_t pinned_bytes;		/* --loader-pinned-mb (0: default) */
	const char *ca_bundle;		/* --ca-bundle for https:// and gs:// (NULL: system) */
	int gcs_anonymous;		/* --gcs-anonymous */
	double deadline_s;		/* whole-load deadline (0: none) */
	int verify;			/* check crc32c.json / object crc32c (default on) */
	int max_retries;		/* retries per read at most (default 1000; 0: none); the budget is retry_deadline_s */
	double retry_deadline_s;	/* no retry starts this long after a read's first failure (default 300) */
	double stall_s;			/* a transfer below 1 KiB/s for this long is retried (default 20) */
	double connect_s;		/* connect timeout per attempt (default 10) */
	int allow_unused_tensors;	/* load a checkpoint holding tensors the config does not use
					   (default 0: that is an error, the config does not match it) */
	/*
	 * Called once after the metadata stage: config.json parsed and every
	 * tensor's size known (arena_bytes), before the arena is allocated and
	 * before the first tensor data byte is read. A return < 0 fails the
	 * load at once with err as its reason (serve plans its memory and checks
	 * its flags here). NULL: none.
	 */
	int (*check)(void *user, const struct g2_config *cfg, size_t arena_bytes, char *err, size_t errlen);
	void *check_user;
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
	const char *verified;		/* the weakest check every shard passed (static string):
					   LD_VERIFIED_MANIFEST, _OBJECT or _SIZES */
};

/* What ld_model.verified says. */
#define LD_VERIFIED_MANIFEST "crc32c-manifest"	/* every shard against crc32c.json */
#define LD_VERIFIED_OBJECT "object-crc32c"	/* against the server's object CRC (GCS) only */
#define LD_VERIFIED_SIZES "sizes-only"		/* no checksum: not verified end to end */

/*
 * The defaults (16 workers, chunks by source (32 MiB for gs:// and http(s)://,
 * 4 MiB for local files), at most 512 MiB pinned, verify, retries for
 * 300 s (at most 1000), 20 s stall, 10 s connect).
 */
void ld_opts_default(struct ld_opts *o);

/*
 * Process-wide set-up of the network sources (libcurl's global state):
 * call from main() before other threads start, and ld_global_release()
 * at exit. Loads without it still work (the sources set up lazily).
 */
void ld_global_init(void);
void ld_global_release(void);

/*
 * Loads the model at uri (local directory, gs://bucket/prefix or
 * http(s)://host/prefix) into be, with the parallel pipeline. opts may be
 * NULL (defaults); its fields left at 0 take their ld_opts_default value.
 * progress may be NULL. On success *out is
 * a new model (caller frees with ld_model_destroy). On failure the error
 * was logged with the object, offset and reason, and nothing leaks.
 */
int ld_load(const char *uri, const struct ld_opts *opts, struct be *be,
	    struct ld_progress *progress, struct ld_model **out);

/* Device address of a tensor by name, or NULL (and its entry in *t if t). */
void *ld_tensor_ptr(const struct ld_model *m, const char *name, const struct ld_tensor **t);

void ld_model_destroy(struct ld_model *m);

/*
 * SHA-256 (64 hex digits + NUL into hex) of every tensor's bytes in table
 * order: two loads of the same weights hash the same whatever their source.
 * Reads device memory through the backend's copy_d2h when it is not
 * host-visible (ST_ENOSYS if it has neither).
 */
int ld_model_hash(const struct ld_model *m, char hex[65]);

/*
 * Writes DIR/crc32c.json: every regular file of dir (not recursive, not
 * crc32c.json itself, no dot files) with its size and CRC-32C, as
 *   {"format":"gemma-run-crc32c-1","files":{"config.json":{"size":712,
 *    "crc32c":"yZRlqg=="},...}}
 * crc32c in GCS's encoding (base64 of the 4 big-endian bytes), so the
 * values match `gcloud storage hash`. The loader verifies a manifest found
 * beside the weights (every source, gs:// included).
 */
int ld_write_crc_manifest(const char *dir);

struct g2_weights;
struct g2_model;

/* The weights of m as kernels/gemma2.h takes them; m is borrowed. */
void ld_g2_weights(struct ld_model *m, struct g2_weights *out);

/* g2_model_create() over m's weights; m must outlive the model. */
int ld_g2_model_create(struct ld_model *m, int max_tokens, int max_seqs, int max_blocks,
		       struct g2_model **out);

/*
 * The sequential reference loader for a local directory (tests compare
 * ld_load with it). It verifies crc32c.json when present (m->verified) and
 * refuses tensors the config does not use.
 */
int ld_load_simple(const char *dir, struct be *be, struct ld_progress *progress,
		   struct ld_model **out);

#endif
