/*
 * api_responses.h - OpenAI's Responses API (POST /v1/responses, as vLLM
 * serves it) on top of the chat path: the request becomes a chat request
 * (api_responses_parse), and the response object and the streaming events
 * (response.created ... response.completed) are built here into an sbuf.
 * Stateless: nothing is stored, so previous_response_id, background and
 * GET /v1/responses/{id} are refused; so are tools and non-text input.
 */
#ifndef GR_SERVICE_API_RESPONSES_H
#define GR_SERVICE_API_RESPONSES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/sbuf.h"
#include "service/api/api.h"

struct tokenizer;

/*
 * Parses a Responses request body into *r (kind API_RESPONSES, one prompt,
 * n 1): input (a string, or message items with text parts) and
 * instructions become the chat prompt; max_output_tokens, temperature,
 * top_p and stream are read. Returns 0, or a negative status with *e
 * naming the Responses parameter (input, max_output_tokens, tools, ...).
 */
int api_responses_parse(const cJSON *body, const struct tokenizer *tok, const struct api_limits *lim,
			struct api_req *r, struct api_err *e);

/* One response as the builders see it. */
struct api_rsp {
	const char *id;			/* "resp_..." */
	const char *msg_id;		/* the output message item's id, "msg_..." */
	long created_at;
	const char *model;
	const struct api_req *req;	/* echoed parameters (temperature, ...) */
	const char *status;		/* "in_progress", "completed", "incomplete", "failed" */
	const char *incomplete_reason;	/* "max_output_tokens" or NULL */
	int has_output;			/* 0: output [] (response.created) */
	const char *text;		/* the whole output text so far */
	size_t text_len;
	int has_usage;
	int input_tokens, output_tokens, cached_tokens;
};

/* The response object {"id","object":"response",...}. */
void api_rsp_object_json(struct sbuf *sb, const struct api_rsp *p);

/*
 * The events around a stream's text deltas, k = 0 .. API_RSP_EDGE_EVENTS-1:
 * opening (closing 0): response.created, response.in_progress,
 * response.output_item.added, response.content_part.added; closing:
 * response.output_text.done, response.content_part.done,
 * response.output_item.done, response.completed (whatever p->status, as
 * vLLM). Builds event k (sequence_number seq) and returns its type.
 */
#define API_RSP_EDGE_EVENTS 4
const char *api_rsp_edge_event(struct sbuf *sb, int closing, int k, int seq, const struct api_rsp *p);
/* response.output_text.delta */
void api_rsp_event_delta(struct sbuf *sb, int seq, const struct api_rsp *p, const char *delta, size_t len);
/* "error" event of a stream that cannot finish */
void api_rsp_event_error(struct sbuf *sb, int seq, int status, const char *msg);

#endif
