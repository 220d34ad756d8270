/*
 * pl_internal.h - the state the parallel loader's files share (types and
 * constants only): struct pipe, one load in flight, set up by pipeline.c
 * (ld_load and its steps), read and updated by the transfer stage
 * (pl_worker.c) and the AIMD concurrency (pl_throttle.c); struct meta, the
 * metadata stage's results; struct ld_chunk, one planned read. Nothing
 * outside loader/ (and its tests) uses them.
 *
 * Invariants: fields written before the workers start are read-only while
 * they run; the workers share only the atomics, err* under err_mu, the
 * AIMD fields under aimd_mu, chunk_crc[i] (chunk i's worker) and mt.tok
 * (the worker that claimed tok_claimed).
 */
#ifndef GR_LD_PL_INTERNAL_H
#define GR_LD_PL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "loader/ld_internal.h"
#include "loader/loader.h"
#include "loader/manifest.h"
#include "loader/model_desc.h"
#include "loader/ring.h"

struct be;

struct ld_chunk {
	int obj;			/* shard index */
	int index_in_obj;		/* order within its shard */
	uint64_t file_off;		/* byte offset in the shard file */
	size_t arena_off;		/* byte offset in the arena */
	size_t len;
};

/* metadata stage results */
struct meta {
	char *cfg, *index, *tok, *man_json;
	size_t cfg_len, index_len, tok_len, man_len;
	struct ld_manifest man;
	int have_man;
	uint32_t *head_crc;		/* per shard: CRC-32C of its 8 + N header bytes */
};

struct pipe {
	struct ld_opts o;		/* resolved (ld_opts_resolve), chunk size fitted to the ring */
	struct ld_src *src;
	void *conn;			/* the main thread's connection (metadata stage) */
	struct rng rg;			/* the main thread's backoff jitter */
	struct ld_desc d;
	struct meta mt;
	size_t *base;			/* per shard: arena offset (ld_place_tensors) */
	struct be *be;
	struct ld_progress *pr;
	struct ld_obj *objs;
	struct ld_chunk *chunks;
	int n_chunks;
	uint32_t *chunk_crc;
	int *need_crc;			/* per shard */
	char *arena;
	int max_retries;
	double deadline;
	_Atomic int next, abort, allowed, throttles, tok_claimed;	/* tok_claimed: tokenizer.json taken by a worker */
	pthread_mutex_t aimd_mu;		/* the concurrency changes below */
	int succ_run;				/* chunk reads since the last change */
	int n_workers;				/* started (the ceiling of allowed) */
	double t_last_decrease;
	pthread_mutex_t err_mu;
	int err_rc;
	char err[LD_ERR_MAX * 2];
	struct ld_ring ring;		/* staging buffers (not host-visible backends) */
	double t0, t1;			/* start; end of the metadata stage */
};

#endif
