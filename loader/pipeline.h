/*
 * pipeline.h - the chunk planner of the parallel loader (pipeline.c),
 * exposed for its tests. The loader itself, ld_load, is public (loader.h).
 */
#ifndef GR_LD_PIPELINE_H
#define GR_LD_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "loader/pl_internal.h"	/* struct ld_chunk */

/*
 * Cuts each shard's data region [data_start[s], +data_len[s]) into chunks of
 * at most chunk bytes, in file order, destined to arena_base[s] + (off -
 * data_start). *out is a new array (caller frees). Empty regions give none.
 * ST_EINVAL for chunk 0, ST_ERANGE for more than INT32_MAX / 2 chunks.
 */
int ld_plan_chunks(int n_obj, const uint64_t *data_start, const uint64_t *data_len,
		   const size_t *arena_base, size_t chunk, struct ld_chunk **out, int *n_out);

#endif
