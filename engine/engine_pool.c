/*
 * engine_pool.c - the engine's row pool (see engine_pool.h).
 *
 * Workers sleep on a condition variable until a job generation number
 * changes, take items from an atomic counter, and the last one to finish
 * signals the caller. The caller works too, so a job never waits for a
 * thread to wake up before starting.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "engine/engine_pool.h"

struct eng_pool_worker {
	struct eng_pool *p;
	int id;
	pthread_t th;
};

struct eng_pool {
	int n;				/* workers incl. the caller */
	struct eng_pool_worker *w;	/* [n - 1] threads */
	int n_started;
	pthread_mutex_t mu;
	pthread_cond_t cv_work, cv_done;
	uint64_t gen;			/* job generation (mu) */
	int stop;			/* (mu) */
	int busy;			/* threads still in the job (mu) */
	eng_pool_fn fn;
	void *arg;
	int n_items;
	_Atomic int next;
};

static void pool_drain(struct eng_pool *p, int worker)
{
	int i;
	while ((i = atomic_fetch_add(&p->next, 1)) < p->n_items)
		p->fn(p->arg, i, worker);
}

static void *pool_main(void *arg)
{
	struct eng_pool_worker *w = arg;
	struct eng_pool *p = w->p;
	uint64_t seen = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->gen == seen)
			pthread_cond_wait(&p->cv_work, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		pthread_mutex_unlock(&p->mu);
		pool_drain(p, w->id);
		pthread_mutex_lock(&p->mu);
		if (--p->busy == 0)
			pthread_cond_signal(&p->cv_done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int eng_pool_create(int n_workers, struct eng_pool **out)
{
	struct eng_pool *p;

	*out = NULL;
	if (n_workers < 1)
		n_workers = 1;
	p = calloc(1, sizeof(*p));
	if (!p)
		return ST_ENOMEM;
	p->n = n_workers;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv_work, NULL);
	pthread_cond_init(&p->cv_done, NULL);
	if (n_workers > 1) {
		p->w = calloc((size_t)n_workers - 1, sizeof(*p->w));
		if (!p->w) {
			eng_pool_destroy(p);
			return ST_ENOMEM;
		}
	}
	for (int i = 0; i < n_workers - 1; i++) {
		int rc;
		p->w[i].p = p;
		p->w[i].id = i + 1;
		if ((rc = pthread_create(&p->w[i].th, NULL, pool_main, &p->w[i])) != 0) {
			log_warn("engine pool: thread %d not started (%s); using %d", i + 1,
				 strerror(rc), i + 1);
			break;
		}
		p->n_started++;
	}
	p->n = p->n_started + 1;
	*out = p;
	return 0;
}

void eng_pool_destroy(struct eng_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv_work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n_started; i++)
		pthread_join(p->w[i].th, NULL);
	pthread_cond_destroy(&p->cv_done);
	pthread_cond_destroy(&p->cv_work);
	pthread_mutex_destroy(&p->mu);
	free(p->w);
	free(p);
}

int eng_pool_size(const struct eng_pool *p)
{
	return p->n;
}

void eng_pool_run(struct eng_pool *p, int n, eng_pool_fn fn, void *arg)
{
	if (n <= 0)
		return;
	if (p->n == 1 || n == 1) {
		for (int i = 0; i < n; i++)
			fn(arg, i, 0);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->n_items = n;
	atomic_store(&p->next, 0);
	p->busy = p->n_started;
	p->gen++;
	pthread_cond_broadcast(&p->cv_work);
	pthread_mutex_unlock(&p->mu);
	pool_drain(p, 0);
	pthread_mutex_lock(&p->mu);
	while (p->busy > 0)
		pthread_cond_wait(&p->cv_done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}
