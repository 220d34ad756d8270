/*
 * pl_worker.h - the parallel loader's transfer stage and the reads with
 * retries it shares with the metadata stage (pl_worker.c). Every function
 * takes the load's struct pipe (pl_internal.h); errors are recorded once
 * in it (ld_fail) and returned.
 */
#ifndef GR_LD_PL_WORKER_H
#define GR_LD_PL_WORKER_H

#include <stddef.h>
#include <stdint.h>

struct ld_obj;
struct meta;
struct pipe;
struct rng;

/*
 * Records the load's first fatal error (not ST_ECANCEL) as "WHERE at offset
 * OFF: WHY", stops every transfer, and returns rc.
 */
int ld_fail(struct pipe *p, int rc, const char *where, uint64_t off, const char *why);

/*
 * After a failed attempt of a read that first failed at t_first: 0 once the
 * backoff (full jitter, 100 ms doubling, 8 s cap) has been slept and the
 * caller should try again, or the recorded fatal status (not retryable, out
 * of retries, past retry_deadline_s or the load's deadline). throttled: the
 * answer was 429/503 (ld_throttle).
 */
int ld_retry_or_fail(struct pipe *p, struct rng *rg, int rc, int attempt, double t_first, int throttled,
		     const char *where, uint64_t off, const char *why);

/* [off, off+n) of o into dst (crc extended over it if not NULL), resuming retryable failures. */
int ld_read_range(struct pipe *p, void *conn, struct rng *rg, const struct ld_obj *o, uint64_t off, size_t n,
		  char *dst, uint32_t *crc);

/* A small object whole, with retries; a missing one is 0 with *out NULL unless required. */
int ld_fetch_opt(struct pipe *p, void *conn, struct rng *rg, const char *name, size_t max, char **out,
		 size_t *len, int required);
/* A small object against its crc32c.json entry (if any): 0 or the recorded ST_ECRC. */
int ld_check_small(struct pipe *p, const struct meta *mt, const char *name, const char *buf, size_t len);

/*
 * The transfer stage: starts the workers (chunks into the arena or the ring
 * and on to the backend's upload, tokenizer.json beside them, retries,
 * AIMD) and joins them, timing first_byte and transfer. Their errors are in
 * p->err_rc; ST_ENOMEM when none could start.
 */
int ld_run_workers(struct pipe *p);

#endif
