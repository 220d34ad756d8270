/*
 * api.h - OpenAI / vLLM request parsing and response building (no HTTP).
 *
 * api_parse_*() turn a JSON body into struct api_req: prompts as token ids
 * (BOS included), sampling parameters checked, and on error a message plus
 * the name of the offending parameter (OpenAI's error "param"). api_*_json
 * build responses and SSE chunks into an sbuf. The tokenizer is borrowed.
 */
#ifndef GR_SERVICE_API_H
#define GR_SERVICE_API_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "engine/engine.h"
#include "common/sbuf.h"

struct tokenizer;

enum api_kind { API_COMPLETION, API_CHAT, API_GENERATE };

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
	struct eng_sampling smp;	/* stop strings malloc'd here until submitted */
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

/* Parses a body for kind. 0 or ST_EINVAL with *e filled. */
int api_parse(enum api_kind kind, const cJSON *body, const struct tokenizer *tok,
	      const struct api_limits *lim, struct api_req *r, struct api_err *e);
void api_req_release(struct api_req *r);

/* Renders the Gemma chat template of messages into text (malloc'd). */
int api_chat_render(const cJSON *messages, int add_generation_prompt, char **text, struct api_err *e);

/* OpenAI error body {"error":{"message","type","param","code"}}. */
void api_error_json(struct sbuf *sb, int status, const char *msg, const char *param);
const char *api_error_type(int status);

#endif

/* ---- responses (api_resp.c) ---- */

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
	size_t text_offset;		/* completions logprobs: offset of the first token */
};

struct api_meta {
	enum api_kind kind;
	const char *id;			/* "cmpl-..." / "chatcmpl-..." */
	long created;
	const char *model;
	const struct tokenizer *tok;	/* for logprobs token text */
};

/* Whole non-streaming response with usage. */
void api_response_json(struct sbuf *sb, const struct api_meta *m, const struct api_out *ch, int n,
		       int prompt_tokens, int completion_tokens);
/* One streaming chunk for one choice (chat: role_delta adds the assistant role). */
void api_chunk_json(struct sbuf *sb, const struct api_meta *m, const struct api_out *ch, int role_delta);
/* The final usage chunk (choices []). */
void api_usage_chunk_json(struct sbuf *sb, const struct api_meta *m, int prompt_tokens,
			  int completion_tokens);
