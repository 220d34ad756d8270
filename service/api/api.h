/*
 * api.h - the types shared by the OpenAI / vLLM layer (no HTTP): a parsed
 * request (struct api_req), the server's limits, an error with its OpenAI
 * "param", and one choice's output plus response metadata for the builders.
 * Types and constants only; the functions are declared by the header of the
 * file that defines them:
 *   api_parse.h  JSON body -> struct api_req (validation, tokenization)
 *   api_chat.h   "messages" -> the Gemma chat prompt (tokenizer/chat_template)
 *   api_resp.h   responses, SSE chunks and error bodies into an sbuf
 *   api_responses.h  the Responses API: request -> chat request, its
 *                objects and stream events
 * Calls go one way: api_responses -> api_parse -> api_chat -> chat_template;
 * api_resp stands alone. The tokenizer is always borrowed.
 */
#ifndef GR_SERVICE_API_H
#define GR_SERVICE_API_H

#include <stddef.h>

#include "engine/engine.h"

struct tokenizer;

enum api_kind { API_COMPLETION, API_CHAT, API_GENERATE, API_RESPONSES };

#define API_MAX_PROMPTS 64
#define API_MAX_N 16
#define API_MAX_CHOICES 64

struct api_prompt {
	int *ids;		/* malloc'd, BOS first */
	int n_ids;
	char *text;		/* the prompt as text (for echo and /generate), malloc'd */
	size_t text_len;
};

struct api_req {
	enum api_kind kind;
	int n_prompts;
	struct api_prompt prompts[API_MAX_PROMPTS];
	int n;			/* choices per prompt */
	int echo;
	int stream;
	int include_usage;
	int logprobs;		/* -1 none, else top-N (chat: top_logprobs) */
	int max_tokens_set;
	char *instructions;	/* responses: echoed in the response object, malloc'd or NULL */
	struct eng_sampling smp;	/* stop strings malloc'd here until submitted */
	char *guide;			/* structured outputs: smp.guide's text, malloc'd */
};

struct api_limits {
	int vocab_size;
	int max_model_len;	/* 0: unknown */
	int bos_id;		/* prepended to text prompts, -1: none */
	int eot_id;		/* <end_of_turn> for chat, -1: none */
	int max_choices;	/* sequences an idle engine admits at once, 0: unknown */
	const char *model_name;
};

struct api_err {
	int status;		/* HTTP status: 400, 404, ... */
	const char *param;	/* static string or NULL */
	char msg[256];
};

/* The body api_error_json(500, "out of memory", NULL) builds, for when no
 * buffer can be had to build it (tests/unit/test_api.c checks they match). */
#define API_OOM_JSON "{\"error\":{\"message\":\"out of memory\",\"type\":\"InternalServerError\"," \
		     "\"param\":null,\"code\":500}}"

/* Output of one choice: text (+ optional echo prefix) and per-token data. */
struct api_out {
	int index;
	const char *prefix;		/* echo: prompt text, or NULL */
	size_t prefix_len;
	const char *text;
	size_t text_len;
	int n_tokens;
	const int *tokens;
	const float *lp;		/* [n_tokens] or NULL */
	const struct eng_logprob *top;	/* [n_tokens][n_top] */
	int n_top;
	const char *finish;		/* "stop", "length", or NULL (not done) */
	size_t text_offset;		/* completions logprobs: offset of the first token, in characters */
};

struct api_meta {
	enum api_kind kind;
	const char *id;			/* "cmpl-..." / "chatcmpl-..." */
	long created;
	const char *model;
	const struct tokenizer *tok;	/* for logprobs token text */
	int cached_tokens;		/* usage.prompt_tokens_details.cached_tokens */
};

#endif

