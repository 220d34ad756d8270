/*
 * load_progress.h - how far a model load has got: the one object that the
 * loader (which writes it from its threads) and the service (which reads it
 * for /health and /metrics) share. It lives in common/ so that neither of
 * them includes the other: service/ never sees loader/ (docs/ARCHITECTURE.md).
 *
 * Counters are atomics; stage_s is written by the loader and read by other
 * threads only after done != 0 (release/acquire on done).
 */
#ifndef GR_COMMON_LOAD_PROGRESS_H
#define GR_COMMON_LOAD_PROGRESS_H

#include <stdatomic.h>
#include <stdint.h>

enum ld_stage { LD_STAGE_META = 0, LD_STAGE_FIRST_BYTE, LD_STAGE_TRANSFER, LD_STAGE_SYNC,
		LD_STAGE_VERIFY, LD_N_STAGES };
extern const char *const ld_stage_name[LD_N_STAGES];	/* "metadata", "first_byte", ... */

#define LD_CONC_MAX 64		/* concurrency changes recorded (later ones only move the counters) */
#define LD_ERR_TEXT 1024

struct ld_progress {
	_Atomic uint64_t bytes_done;
	_Atomic uint64_t bytes_total;
	_Atomic int done;		/* 1 ok, -1 failed */
	double t_start;			/* now_sec() at start */
	double stage_s[LD_N_STAGES];	/* seconds per stage; other threads read them only after done != 0 */
	_Atomic uint64_t retries;	/* chunk reads retried */
	_Atomic uint64_t throttles;	/* 429/503 answers seen */
	_Atomic int workers;		/* workers currently allowed (AIMD: halved on 429/503, grown back) */
	int workers_max, workers_min;	/* the ceiling (--loader-workers, or fewer chunks); the lowest reached */
	_Atomic uint64_t decreases;	/* concurrency halvings */
	_Atomic uint64_t increases;	/* concurrency steps back up */
	/* concurrency over time: conc[0..n_conc) = (seconds since t_start, workers allowed) */
	struct { double t; int workers; } conc[LD_CONC_MAX];
	_Atomic int n_conc;
	char err[LD_ERR_TEXT];		/* on failure (done == -1): object, offset and reason, one line */
};

#endif
