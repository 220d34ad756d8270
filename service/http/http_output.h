/*
 * http_output.h - a choice's output buffers and the engine thread's
 * callback (see http_output.c).
 */
#ifndef GR_HTTP_OUTPUT_H
#define GR_HTTP_OUTPUT_H

#include <stddef.h>

#include "engine/engine.h"
#include "service/http/http.h"

/* Engine thread (eng_create's callback): queues o for its choice and wakes the loop. */
void http_on_output(const struct eng_output *o);

/* Appends an event's text, tokens and logprobs to b; on a failed growth marks b->oom. */
void http_outbuf_append(struct outbuf *b, const int *tokens, int n, const char *text, size_t len,
			const float *lp, const struct eng_logprob *top, int n_top);
/* Empties b, keeping its memory. */
void http_outbuf_reset(struct outbuf *b);
/* Frees b's memory (b is then empty). */
void http_outbuf_release(struct outbuf *b);

#endif
