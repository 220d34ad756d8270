/*
 * api_parse.h - OpenAI / vLLM request bodies -> struct api_req (api.h).
 *
 * api_parse() turns a JSON body into prompts as token ids (BOS included)
 * and checked sampling parameters; on error *e gets the HTTP status, a
 * message and the name of the offending parameter (OpenAI's error "param").
 * Chat "messages" are rendered by api_chat_render (api_chat.h).
 */
#ifndef GR_SERVICE_API_PARSE_H
#define GR_SERVICE_API_PARSE_H

#include <cjson/cJSON.h>

#include "service/api/api.h"

/* Parses a body for kind. 0 or ST_EINVAL with *e filled. */
int api_parse(enum api_kind kind, const cJSON *body, const struct tokenizer *tok,
	      const struct api_limits *lim, struct api_req *r, struct api_err *e);
void api_req_release(struct api_req *r);

#endif
