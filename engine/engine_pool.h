/*
 * engine_pool.h - a small fixed pool of threads for the engine's
 * per-row work (sampling one row of logits per sequence), so that a step
 * with many sequences does not sample them one after another.
 *
 * eng_pool_run(p, n, fn, arg) calls fn(arg, i, worker) for every i in
 * [0, n) and returns when all calls are done. The calling thread takes
 * part as worker 0; worker ids are 0..eng_pool_size(p)-1, so callers can
 * keep per-worker scratch. Items are handed out dynamically; which worker
 * runs which item does not matter to a correct fn (results must depend
 * only on i). One eng_pool_run at a time (the engine thread's). No
 * allocation after create.
 */
#ifndef GR_ENGINE_POOL_H
#define GR_ENGINE_POOL_H

struct eng_pool;

typedef void (*eng_pool_fn)(void *arg, int i, int worker);

/* n_workers >= 1 (1: no threads, everything runs in the caller). */
int eng_pool_create(int n_workers, struct eng_pool **out);
void eng_pool_destroy(struct eng_pool *p);
int eng_pool_size(const struct eng_pool *p);
void eng_pool_run(struct eng_pool *p, int n, eng_pool_fn fn, void *arg);

#endif
