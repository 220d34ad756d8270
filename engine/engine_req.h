/*
 * engine_req.h - the engine's request object and what happens to it outside
 * the step's arithmetic: building and freeing a request, the waiting /
 * running lists, the queue figures of e->stats, and delivering its output
 * events to the service (on_output).
 *
 * Not here: scheduling and sampling (engine_step.h), the thread (engine.c).
 * Structures: engine_int.h. Locking: as engine_int.h says; each function
 * below says whether the caller holds e->mu.
 */
#ifndef GR_ENGINE_REQ_H
#define GR_ENGINE_REQ_H

#include <stddef.h>

#include "engine/engine_int.h"

/* List helpers (caller holds e->mu when l is e->waiting or e->running). */
void eng_list_push_back(struct eng_list *l, struct eng_req *q);
void eng_list_push_front(struct eng_list *l, struct eng_req *q);
void eng_list_remove(struct eng_list *l, struct eng_req *q);

/* Refreshes the queue and KV figures of e->stats (caller holds e->mu). */
void eng_stats_refresh(struct engine *e);

/*
 * Builds a request for prompt[0, n_prompt) with sampling s (validated: the
 * prompt against vocab and max_model_len, s by eng_sampling_check; stop
 * strings duplicated). On error returns ST_EINVAL / ST_ENOMEM with the
 * reason in err (may be NULL). The caller sets id, user and rng and queues it.
 */
int eng_req_create(struct engine *e, const int *prompt, int n_prompt,
		   const struct eng_sampling *s, char *err, size_t errlen, struct eng_req **out);

/* Frees a request's memory (not its KV blocks); NULL is a no-op. */
void eng_req_destroy(struct eng_req *q);

/* Gives a request's KV blocks back (engine thread). */
void eng_req_free_blocks(struct engine *e, struct eng_req *q);

/*
 * Delivers the event of q (final when q->finish != NONE; with_token: this
 * step's token and its logprobs) and resets its text. The warm-up request
 * has no callback: its final event ends eng_warmup's wait. Engine thread,
 * lock not held.
 */
void eng_emit(struct engine *e, struct eng_req *q, int with_token);

/*
 * Requests already off both lists (in done): each gets its ABORT event and
 * is freed. Engine thread, lock not held.
 */
void eng_abort_list(struct engine *e, struct eng_list *done);

/* Retires every request (shutdown): blocks freed, ABORT events. Engine thread. */
void eng_abort_all(struct engine *e);

#endif
