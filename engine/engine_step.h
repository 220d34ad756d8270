/*
 * engine_step.h - one step of continuous batching, run by the engine
 * thread (engine.c): retire cancelled requests, schedule, build the batch,
 * one g2_forward that also samples, stop rules, output events.
 *
 * Not here: the thread, options and start-up (engine.c), the request
 * object and its events (engine_req.h).
 */
#ifndef GR_ENGINE_STEP_H
#define GR_ENGINE_STEP_H

#include "engine/engine_int.h"

/*
 * One step (engine thread, e->mu not held). Returns 1 when a forward ran or
 * requests were retired, 0 when nothing could be scheduled.
 */
int eng_step(struct engine *e);

#endif
