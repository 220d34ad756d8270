/*
 * cpu_pool.c - the CPU backend's persistent thread pool.
 *
 * One job at a time (the engine thread issues ops in order): cpu_parallel()
 * publishes fn/arg/n_tasks under a new generation, wakes the workers, takes
 * tasks itself from the shared atomic counter, then waits until every worker
 * has left the job. Which thread runs which task is not fixed; the ops make
 * each task's result independent of that.
 */
#include <stdlib.h>

#include "common/status.h"
#include "kernels/cpu/cpu.h"

static void run_tasks(struct cpu_pool *p, cpu_task_fn fn, void *arg, int n_tasks)
{
	for (;;) {
		int i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
		if (i >= n_tasks)
			break;
		fn(arg, i);
	}
}

static void *worker_main(void *varg)
{
	struct cpu_pool *p = varg;
	uint64_t seen = 0;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->gen == seen)
			pthread_cond_wait(&p->wake, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		cpu_task_fn fn = p->fn;
		void *arg = p->arg;
		int n = p->n_tasks;
		pthread_mutex_unlock(&p->mu);
		run_tasks(p, fn, arg, n);
		pthread_mutex_lock(&p->mu);
		if (--p->busy == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int cpu_pool_start(struct cpu_pool *p, int n_workers)
{
	p->n_workers = 0;
	p->stop = 0;
	p->gen = 0;
	p->busy = 0;
	atomic_init(&p->next, 0);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);
	p->threads = NULL;
	if (n_workers <= 0)
		return 0;
	p->threads = calloc((size_t)n_workers, sizeof(*p->threads));
	if (!p->threads)
		return ST_ENOMEM;
	for (int i = 0; i < n_workers; i++) {
		if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0)
			break;
		p->n_workers++;
	}
	return 0;
}

void cpu_pool_stop(struct cpu_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n_workers; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	p->threads = NULL;
	pthread_cond_destroy(&p->done);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->mu);
}

void cpu_parallel(struct cpu_ctx *c, int n_tasks, cpu_task_fn fn, void *arg)
{
	struct cpu_pool *p = &c->pool;

	if (n_tasks <= 0)
		return;
	if (n_tasks == 1 || p->n_workers == 0) {
		for (int i = 0; i < n_tasks; i++)
			fn(arg, i);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->n_tasks = n_tasks;
	atomic_store_explicit(&p->next, 0, memory_order_relaxed);
	p->busy = p->n_workers;
	p->gen++;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->mu);

	run_tasks(p, fn, arg, n_tasks);

	pthread_mutex_lock(&p->mu);
	while (p->busy > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}
