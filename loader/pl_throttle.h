/*
 * pl_throttle.h - the parallel loader's AIMD concurrency (pl_throttle.c).
 * Every function takes the load's struct pipe (pl_internal.h).
 */
#ifndef GR_LD_PL_THROTTLE_H
#define GR_LD_PL_THROTTLE_H

struct pipe;

/* Records a change of the allowed workers in the load's progress (conc[]); call under p->aimd_mu. */
void ld_aimd_record(struct pipe *p, int workers);
/* A 429/503 answer: halves the workers allowed, at most once per AIMD_DECREASE_GAP_S. */
void ld_throttle(struct pipe *p);
/* A chunk read completed: one more worker allowed after AIMD_RUN of them (every one below half). */
void ld_aimd_success(struct pipe *p);

#endif
