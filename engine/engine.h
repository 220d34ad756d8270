/*
 * engine.h - the inference engine as the HTTP service sees it: one engine
 * thread that owns the model, the backend and the KV cache, and runs
 * continuous batching over submitted requests.
 *
 * Contract with the service (service/http/, service/cli/):
 *   - eng_submit() and eng_cancel() may be called from any thread; they only
 *     take a lock and signal the engine thread.
 *   - Output of a request is delivered by calling on_output on the engine
 *     thread, once per emitted token-group and once at the end (final=1).
 *     The callback must be cheap and must not call back into the engine
 *     (the service copies the event into its queue and event_active()s its
 *     loop). After the final event the request id is never used again.
 *   - Text is delivered already detokenized incrementally: never half a
 *     UTF-8 character, stop strings removed (held back until they cannot
 *     be a prefix of a stop string).
 * The engine knows nothing of HTTP or JSON.
 */
#ifndef GR_ENGINE_H
#define GR_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "engine/mem_plan.h"
#include "kernels/gemma2.h"
#include "engine/engine_types.h"
#include "engine/sampling.h"

struct tokenizer;

/* "stop", "length", "abort", "error"; NULL for ENG_FINISH_NONE. */
const char *eng_finish_name(enum eng_finish f);

/*
 * "auto" (or NULL) or "device" into *out; ST_EINVAL otherwise, "host"
 * included (the host sampler was retired: its name must not silently mean
 * another sampler).
 */
int eng_sampler_parse(const char *s, enum eng_sampler *out);

struct engine;

void eng_opts_default(struct eng_opts *o);

/*
 * Creates the engine over a model's weights (w is copied; what w->find
 * reads must outlive the engine) and a tokenizer (borrowed), sizes the KV cache and starts the
 * engine thread. on_output is called for every request.
 * tok may be NULL: no detokenization (text is always ""), and requests with
 * stop strings are refused (ST_EINVAL); EOS ids then come from config.json
 * only (with a tokenizer, "<end_of_turn>" is added).
 */
int eng_create(const struct eng_opts *opts, const struct g2_weights *w, struct tokenizer *tok,
	       eng_output_fn on_output, struct engine **out);

/* Runs one forward pass on a short prompt so that the first request is not the first step. */
int eng_warmup(struct engine *e);

/*
 * Queues a request. prompt ids are copied (BOS included by the caller).
 * The sampling struct is copied and its stop strings duplicated.
 * Returns 0 and the id in *id, ST_EFULL when the waiting queue is full
 * (the service answers 429), or ST_EINVAL with *err set (prompt empty,
 * longer than max_model_len, token id out of range).
 * Precisely: ST_EFULL when max_queue requests already wait beyond the free
 * running slots; ST_EINVAL when n_prompt >= max_model_len (no room for one
 * generated token) or eng_sampling_check fails (err names the parameter).
 */
int eng_submit(struct engine *e, const int *prompt, int n_prompt, const struct eng_sampling *s,
	       void *user, uint64_t *id, char *err, size_t errlen);

/* Cancels a request; its final event (ENG_FINISH_ABORT) follows at the next step. */
void eng_cancel(struct engine *e, uint64_t id);

/*
 * Cancels every request still waiting that was never admitted (a preempted
 * one, which ran, stays): each ends at the next step with ENG_FINISH_SHED,
 * so a draining server can answer it at once for a retry elsewhere.
 * Returns how many were cancelled.
 */
int eng_cancel_waiting(struct engine *e);

void eng_get_stats(struct engine *e, struct eng_stats *st);

/*
 * The effective context length: opts->max_model_len (0: config, capped at
 * 8192, lowered when the KV cache cannot hold one sequence that long; an
 * explicit value the cache cannot hold fails eng_create).
 * Prompt + output tokens never exceed it; the API should check against it.
 */
int eng_max_model_len(const struct engine *e);

/*
 * The memory plan eng_create would make now for these options (NULL:
 * defaults) over w: the backend's memory figures are read now. Returns
 * 0, or ST_EINVAL with the reason (naming the flag to change) in err. The
 * service calls it before eng_create to fail the start-up with that message.
 */
int eng_plan(const struct eng_opts *opts, const struct g2_weights *w, struct mem_plan *plan,
	     char *err, size_t errlen);

/* The plan the engine was created with (weights, activations, KV cache, ...). */
const struct mem_plan *eng_mem_plan(const struct engine *e);

/* Stops the engine thread (aborting what is left) and frees everything. */
void eng_destroy(struct engine *e);

#endif
