/*
 * api_resp.h - OpenAI response bodies, SSE chunks and error bodies, built
 * into an sbuf (common/sbuf.h). The builders append; an allocation failure
 * marks the sbuf (sb->oom) and the caller must then not send what is in it:
 * api_json_or_oom() gives the body to send either way.
 */
#ifndef GR_SERVICE_API_RESP_H
#define GR_SERVICE_API_RESP_H

#include <stddef.h>

#include "common/sbuf.h"
#include "service/api/api.h"

/* OpenAI error body {"error":{"message","type","param","code"}}. */
void api_error_json(struct sbuf *sb, int status, const char *msg, const char *param);
/* Whole non-streaming response with usage. */
void api_response_json(struct sbuf *sb, const struct api_meta *m, const struct api_out *ch, int n,
		       int prompt_tokens, int completion_tokens);
/* One streaming chunk for one choice (chat: role_delta adds the assistant role). */
void api_chunk_json(struct sbuf *sb, const struct api_meta *m, const struct api_out *ch, int role_delta);
/* The final usage chunk (choices []). */
void api_usage_chunk_json(struct sbuf *sb, const struct api_meta *m, int prompt_tokens,
			  int completion_tokens);
/* Characters (UTF-8 code points: bytes that are not continuation bytes) in
 * s[0..n): the unit of completions' logprobs.text_offset. */
size_t api_utf8_chars(const char *s, size_t n);
/*
 * The JSON built in sb (NUL-terminated, *len bytes), or, when building it
 * ran out of memory (sb->oom), API_OOM_JSON: the OpenAI 500 error body. A
 * caller that gets the latter answers 500, or ends its stream with it.
 */
const char *api_json_or_oom(struct sbuf *sb, size_t *len);

#endif
