/*
 * pl_throttle.c - the parallel loader's concurrency control, AIMD as TCP
 * (and GCS's request-rate guidance): throttling halves the workers allowed
 * to take chunks, completed reads grow it back up to --loader-workers.
 * Workers above the limit wait (pl_worker.c:worker_main), they do not exit.
 * Not the retry policy (pl_worker.c:ld_retry_or_fail decides whether and
 * when to retry; it calls ld_throttle for a 429/503).
 *
 * Invariants: p->allowed stays in [1, p->n_workers]; every change is made
 * under p->aimd_mu and recorded once in the progress timeline (conc[]).
 */
#include "loader/pl_throttle.h"

#include <pthread.h>
#include <stdatomic.h>

#include "common/log.h"
#include "common/util.h"
#include "loader/pl_internal.h"

/*
 * A 429/503
 * halves the number of workers allowed to take chunks, at most once per
 * AIMD_DECREASE_GAP_S (the answers of one burst arrive together); every
 * AIMD_RUN chunk reads completed since the last change add one worker
 * again, up to --loader-workers (below half of it, every read adds one). Workers above the limit wait, they do not
 * exit, so a short storm costs its own length and a ramp, not the load.
 */
#define AIMD_DECREASE_GAP_S 0.25
#define AIMD_RUN 2

void ld_aimd_record(struct pipe *p, int workers)	/* under aimd_mu */
{
	struct ld_progress *pr = p->pr;
	if (!pr)
		return;
	atomic_store(&pr->workers, workers);
	if (workers < pr->workers_min)
		pr->workers_min = workers;
	int n = atomic_load(&pr->n_conc);
	if (n < LD_CONC_MAX) {
		pr->conc[n].t = now_sec() - p->t0;
		pr->conc[n].workers = workers;
		atomic_store(&pr->n_conc, n + 1);
	}
}

void ld_throttle(struct pipe *p)
{
	int t = atomic_fetch_add(&p->throttles, 1) + 1;
	if (p->pr)
		atomic_fetch_add(&p->pr->throttles, 1);
	pthread_mutex_lock(&p->aimd_mu);
	double now = now_sec();
	int a = atomic_load(&p->allowed), na = MAX(1, a / 2);
	p->succ_run = 0;
	if (na < a && now - p->t_last_decrease >= AIMD_DECREASE_GAP_S) {
		p->t_last_decrease = now;
		atomic_store(&p->allowed, na);
		if (p->pr)
			atomic_fetch_add(&p->pr->decreases, 1);
		ld_aimd_record(p, na);
		log_warn("loader: %d answers 429/503 so far; lowering concurrency to %d", t, na);
	}
	pthread_mutex_unlock(&p->aimd_mu);
}

/* A chunk read completed: after AIMD_RUN of them, one more worker (up to the maximum). */
void ld_aimd_success(struct pipe *p)
{
	int max_workers = p->n_workers;
	pthread_mutex_lock(&p->aimd_mu);
	int a = atomic_load(&p->allowed);
	/* below half the ceiling every completed read adds one (a slow start, as TCP after a loss) */
	if (a < max_workers && (++p->succ_run >= AIMD_RUN || 2 * a < max_workers)) {
		p->succ_run = 0;
		atomic_store(&p->allowed, a + 1);
		if (p->pr)
			atomic_fetch_add(&p->pr->increases, 1);
		ld_aimd_record(p, a + 1);
		if (a + 1 == max_workers)
			log_info("loader: concurrency back to %d", a + 1);
	}
	pthread_mutex_unlock(&p->aimd_mu);
}
