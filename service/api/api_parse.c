/*
 * api_parse.c - OpenAI / vLLM request bodies -> struct api_req.
 *
 * Every field is type- and range-checked; an error names the parameter
 * (OpenAI's "param") and never echoes more than a short excerpt of input.
 * Unknown fields are ignored (clients send many), unsupported ones that
 * would change the result (suffix, best_of != n, beam search,
 * response_format other than text) are refused rather than silently
 * dropped. Chat messages become the
 * prompt text through api_chat_render (api_chat.c), then tok_encode.
 */
#include "service/api/api_parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/util.h"
#include "engine/grammar_cache.h"
#include "engine/grammar_schema.h"
#include "service/api/api_chat.h"
#include "tokenizer/tokenizer.h"

#define FAIL(st, p, ...) do { e->status = (st); e->param = (p); \
	snprintf(e->msg, sizeof(e->msg), __VA_ARGS__); rc = ST_EINVAL; goto out; } while (0)

static const cJSON *get(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static int is_int(const cJSON *v)
{
	return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble) &&
	       fabs(v->valuedouble) < 9.2e18;
}

/* Number field in [lo, hi]: 1 set, 0 absent, -1 bad. */
static int num_field(const cJSON *o, const char *k, double lo, double hi, double *out)
{
	const cJSON *v = get(o, k);
	if (!v)
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
		return -1;
	*out = v->valuedouble;
	return 1;
}

static int int_field(const cJSON *o, const char *k, double lo, double hi, int64_t *out)
{
	const cJSON *v = get(o, k);
	if (!v)
		return 0;
	if (!is_int(v) || v->valuedouble < lo || v->valuedouble > hi)
		return -1;
	*out = (int64_t)v->valuedouble;
	return 1;
}

static int bool_field(const cJSON *o, const char *k, int *out)
{
	const cJSON *v = get(o, k);
	if (!v)
		return 0;
	if (!cJSON_IsBool(v))
		return -1;
	*out = cJSON_IsTrue(v);
	return 1;
}

void api_req_release(struct api_req *r)
{
	for (int i = 0; i < r->n_prompts; i++) {
		free(r->prompts[i].ids);
		free(r->prompts[i].text);
	}
	for (int i = 0; i < r->smp.n_stop; i++)
		free(r->smp.stop[i]);
	free(r->instructions);
	free(r->guide);
	memset(r, 0, sizeof(*r));
}

static int add_text_prompt(struct api_req *r, const struct tokenizer *tok, const struct api_limits *lim,
			   const char *text, size_t len, int add_bos, struct api_err *e, const char *param)
{
	struct api_prompt *p = &r->prompts[r->n_prompts];
	int *ids = NULL, n = 0;
	int rc = tok_encode(tok, text, len, &ids, &n);

	if (rc < 0) {
		e->status = 400;
		e->param = param;
		snprintf(e->msg, sizeof(e->msg), "%s could not be tokenized", param);
		return ST_EINVAL;
	}
	int extra = (add_bos && lim->bos_id >= 0) ? 1 : 0;
	p->ids = malloc(sizeof(int) * (size_t)(n + extra + 1));
	p->text = malloc(len + 1);
	if (!p->ids || !p->text) {
		free(ids);
		free(p->ids);
		free(p->text);
		p->ids = NULL;
		p->text = NULL;
		e->status = 500;
		snprintf(e->msg, sizeof(e->msg), "out of memory");
		return ST_ENOMEM;
	}
	if (extra)
		p->ids[0] = lim->bos_id;
	memcpy(p->ids + extra, ids, sizeof(int) * (size_t)n);
	free(ids);
	p->n_ids = n + extra;
	memcpy(p->text, text, len);
	p->text[len] = 0;
	p->text_len = len;
	r->n_prompts++;
	return 0;
}

static int add_id_prompt(struct api_req *r, const struct tokenizer *tok, const struct api_limits *lim,
			 const cJSON *arr, struct api_err *e)
{
	struct api_prompt *p = &r->prompts[r->n_prompts];
	int n = cJSON_GetArraySize(arr), k = 0;
	const cJSON *x;

	if (n == 0) {
		e->status = 400;
		e->param = "prompt";
		snprintf(e->msg, sizeof(e->msg), "prompt is empty");
		return ST_EINVAL;
	}
	p->ids = malloc(sizeof(int) * (size_t)n);
	if (!p->ids)
		return ST_ENOMEM;
	cJSON_ArrayForEach(x, arr) {
		if (!is_int(x) || x->valuedouble < 0 || x->valuedouble >= lim->vocab_size) {
			free(p->ids);
			p->ids = NULL;
			e->status = 400;
			e->param = "prompt";
			snprintf(e->msg, sizeof(e->msg), "prompt token ids must be integers in [0, %d)",
				 lim->vocab_size);
			return ST_EINVAL;
		}
		p->ids[k++] = (int)x->valuedouble;
	}
	p->n_ids = n;
	size_t len = 0;
	if (tok_decode(tok, p->ids, n, 0, &p->text, &len) < 0) {
		free(p->ids);
		p->ids = NULL;
		e->status = 400;
		e->param = "prompt";
		snprintf(e->msg, sizeof(e->msg), "prompt token ids could not be decoded");
		return ST_EINVAL;
	}
	p->text_len = len;
	r->n_prompts++;
	return 0;
}

static int parse_prompt(const cJSON *body, const struct tokenizer *tok, const struct api_limits *lim,
			struct api_req *r, struct api_err *e)
{
	const cJSON *p = get(body, "prompt"), *x;
	int rc = 0;

	if (!p)
		FAIL(400, "prompt", "prompt is required");
	if (cJSON_IsString(p))
		return add_text_prompt(r, tok, lim, p->valuestring, strlen(p->valuestring), 1, e, "prompt");
	if (!cJSON_IsArray(p) || cJSON_GetArraySize(p) == 0)
		FAIL(400, "prompt", "prompt must be a string, a list of strings, or token ids");
	x = p->child;
	if (cJSON_IsNumber(x))
		return add_id_prompt(r, tok, lim, p, e);
	if (r->kind == API_GENERATE)
		FAIL(400, "prompt", "prompt must be a string");
	if (cJSON_GetArraySize(p) > API_MAX_PROMPTS)
		FAIL(400, "prompt", "at most %d prompts per request", API_MAX_PROMPTS);
	cJSON_ArrayForEach(x, p) {
		if (cJSON_IsString(x))
			rc = add_text_prompt(r, tok, lim, x->valuestring, strlen(x->valuestring), 1, e, "prompt");
		else if (cJSON_IsArray(x))
			rc = add_id_prompt(r, tok, lim, x, e);
		else
			FAIL(400, "prompt", "prompt must be a string, a list of strings, or token ids");
		if (rc < 0)
			return rc;
	}
out:
	return rc;
}

static int parse_stop(const cJSON *body, struct api_req *r, struct api_err *e)
{
	const cJSON *s = get(body, "stop"), *x;
	int rc = 0;

	if (s) {
		if (cJSON_IsString(s)) {
			if (!*s->valuestring)
				FAIL(400, "stop", "stop strings must not be empty");
			r->smp.stop[r->smp.n_stop++] = strdup(s->valuestring);
		} else if (cJSON_IsArray(s)) {
			if (cJSON_GetArraySize(s) > ENG_MAX_STOP)
				FAIL(400, "stop", "at most %d stop strings", ENG_MAX_STOP);
			cJSON_ArrayForEach(x, s) {
				if (!cJSON_IsString(x) || !*x->valuestring)
					FAIL(400, "stop", "stop must be a string or a list of non-empty strings");
				r->smp.stop[r->smp.n_stop++] = strdup(x->valuestring);
			}
		} else {
			FAIL(400, "stop", "stop must be a string or a list of strings");
		}
		for (int i = 0; i < r->smp.n_stop; i++)
			if (!r->smp.stop[i])
				FAIL(500, NULL, "out of memory");
	}
	s = get(body, "stop_token_ids");
	if (s) {
		if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) > ENG_MAX_STOP - 1)
			FAIL(400, "stop_token_ids", "stop_token_ids must be a list of at most %d ids",
			     ENG_MAX_STOP - 1);
		cJSON_ArrayForEach(x, s) {
			if (!is_int(x) || x->valuedouble < 0 || x->valuedouble > 1e9)
				FAIL(400, "stop_token_ids", "stop_token_ids must be token ids");
			r->smp.stop_ids[r->smp.n_stop_ids++] = (int)x->valuedouble;
		}
	}
out:
	return rc;
}

/* logit_bias: {"token id": bias in [-100, 100]}, at most ENG_MAX_LOGIT_BIAS
 * entries (OpenAI's limit); an id outside the vocabulary is refused (vLLM). */
static int parse_logit_bias(const cJSON *body, const struct api_limits *lim, struct api_req *r,
			    struct api_err *e)
{
	const cJSON *v = get(body, "logit_bias"), *x;
	int rc = 0;

	if (!v)
		return 0;
	if (!cJSON_IsObject(v))
		FAIL(400, "logit_bias", "logit_bias must be an object mapping token ids to biases");
	if (cJSON_GetArraySize(v) > ENG_MAX_LOGIT_BIAS)
		FAIL(400, "logit_bias", "logit_bias has at most %d entries", ENG_MAX_LOGIT_BIAS);
	cJSON_ArrayForEach(x, v) {
		char *end = NULL;
		const char *k = x->string ? x->string : "";
		long id = strtol(k, &end, 10);
		if (!*k || *end || id < 0 || id >= lim->vocab_size)
			FAIL(400, "logit_bias", "logit_bias: key '%.40s' is not a token id in [0, %d)", k,
			     lim->vocab_size);
		if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > ENG_LOGIT_BIAS_MAX)
			FAIL(400, "logit_bias", "logit_bias: the bias of token %ld must be a number in [-100, 100]",
			     id);
		r->smp.bias_ids[r->smp.n_logit_bias] = (int)id;
		r->smp.bias[r->smp.n_logit_bias++] = (float)x->valuedouble;
	}
out:
	return rc;
}

/*
 * Structured outputs: the one constraint of the request, as (kind, text)
 * for the engine, compiled once here (through the grammar cache) so that
 * a schema or regex we cannot compile is a 400 naming the keyword.
 * Forms: OpenAI response_format {type: text | json_object | json_schema
 * {name, schema, strict}}; vLLM guided_json / guided_regex /
 * guided_choice and structured_outputs {json, regex, choice};
 * llama-server json_schema. guided_grammar / structured_outputs.grammar
 * (GBNF, EBNF) are refused.
 */
static int set_guide(struct api_req *r, int kind, const cJSON *v, const char *param,
		     struct api_err *e)
{
	const struct gr_grammar *g;
	char err[200];
	int rc = 0;

	if (r->smp.guide_kind)
		FAIL(400, param, "only one structured-output constraint may be given (%s and another)", param);
	if (kind == GRS_REGEX)
		r->guide = strdup(v->valuestring);
	else if (kind == GRS_JSON_SCHEMA && cJSON_IsString(v))	/* a schema sent as its text */
		r->guide = strdup(v->valuestring);
	else if (kind == GRS_JSON_OBJECT)
		r->guide = strdup("");
	else
		r->guide = cJSON_PrintUnformatted(v);
	if (!r->guide)
		FAIL(500, NULL, "out of memory");
	if ((rc = grs_get((enum grs_kind)kind, r->guide, strlen(r->guide), &g, err, sizeof(err))) < 0) {
		rc = ST_EINVAL;
		FAIL(400, param, "%s: %s", param, err[0] ? err : "cannot be compiled");
	}
	grs_release(g);
	r->smp.guide_kind = kind;
	r->smp.guide = r->guide;
	r->smp.guide_len = strlen(r->guide);
out:
	return rc;
}

static int parse_guide(const cJSON *body, struct api_req *r, struct api_err *e)
{
	const cJSON *v, *t, *so;
	int rc = 0;

	if ((v = get(body, "response_format"))) {
		if (!cJSON_IsObject(v) || !cJSON_IsString(t = get(v, "type")))
			FAIL(400, "response_format", "response_format must be an object with a string type");
		if (!strcmp(t->valuestring, "json_object")) {
			if ((rc = set_guide(r, GRS_JSON_OBJECT, v, "response_format", e)) < 0)
				goto out;
		} else if (!strcmp(t->valuestring, "json_schema")) {
			const cJSON *js = get(v, "json_schema"), *sc;
			if (!cJSON_IsObject(js))
				FAIL(400, "response_format", "response_format.json_schema must be an object");
			sc = get(js, "schema");
			if (!sc || !(cJSON_IsObject(sc) || cJSON_IsTrue(sc)))
				FAIL(400, "response_format", "response_format.json_schema.schema must be a JSON Schema object");
			if (get(js, "strict") && !cJSON_IsBool(get(js, "strict")))
				FAIL(400, "response_format", "response_format.json_schema.strict must be a boolean");
			if ((rc = set_guide(r, GRS_JSON_SCHEMA, sc, "response_format", e)) < 0)
				goto out;
		} else if (strcmp(t->valuestring, "text") != 0) {
			FAIL(400, "response_format", "response_format.type must be text, json_object or json_schema");
		}
	}
	if ((v = get(body, "guided_json")) || (v = get(body, "json_schema"))) {
		const char *p = get(body, "guided_json") ? "guided_json" : "json_schema";
		if (!cJSON_IsObject(v) && !cJSON_IsString(v) && !cJSON_IsTrue(v))
			FAIL(400, p, "%s must be a JSON Schema (an object, or its text)", p);
		if ((rc = set_guide(r, GRS_JSON_SCHEMA, v, p, e)) < 0)
			goto out;
	}
	if ((v = get(body, "guided_regex"))) {
		if (!cJSON_IsString(v))
			FAIL(400, "guided_regex", "guided_regex must be a string");
		if ((rc = set_guide(r, GRS_REGEX, v, "guided_regex", e)) < 0)
			goto out;
	}
	if ((v = get(body, "guided_choice"))) {
		if (!cJSON_IsArray(v))
			FAIL(400, "guided_choice", "guided_choice must be an array of strings");
		if ((rc = set_guide(r, GRS_CHOICE, v, "guided_choice", e)) < 0)
			goto out;
	}
	if (get(body, "guided_grammar"))
		FAIL(400, "guided_grammar", "guided_grammar is not supported (use guided_json, guided_regex or guided_choice)");
	if (get(body, "grammar"))
		FAIL(400, "grammar", "grammar (GBNF) is not supported (use json_schema or response_format)");
	if ((so = get(body, "structured_outputs"))) {
		if (!cJSON_IsObject(so))
			FAIL(400, "structured_outputs", "structured_outputs must be an object");
		if ((v = get(so, "json"))) {
			if (!cJSON_IsObject(v) && !cJSON_IsString(v) && !cJSON_IsTrue(v))
				FAIL(400, "structured_outputs", "structured_outputs.json must be a JSON Schema");
			if ((rc = set_guide(r, GRS_JSON_SCHEMA, v, "structured_outputs", e)) < 0)
				goto out;
		}
		if ((v = get(so, "regex"))) {
			if (!cJSON_IsString(v))
				FAIL(400, "structured_outputs", "structured_outputs.regex must be a string");
			if ((rc = set_guide(r, GRS_REGEX, v, "structured_outputs", e)) < 0)
				goto out;
		}
		if ((v = get(so, "choice"))) {
			if (!cJSON_IsArray(v))
				FAIL(400, "structured_outputs", "structured_outputs.choice must be an array of strings");
			if ((rc = set_guide(r, GRS_CHOICE, v, "structured_outputs", e)) < 0)
				goto out;
		}
		if ((v = get(so, "json_object")) && cJSON_IsTrue(v) &&
		    (rc = set_guide(r, GRS_JSON_OBJECT, v, "structured_outputs", e)) < 0)
			goto out;
		if (get(so, "grammar"))
			FAIL(400, "structured_outputs", "structured_outputs.grammar is not supported");
	}
out:
	return rc;
}

static int parse_sampling(const cJSON *body, const struct api_limits *lim, struct api_req *r,
			  struct api_err *e)
{
	struct eng_sampling *s = &r->smp;
	int64_t i64;
	double d;
	int b = 0, rc = 0, k;

	if ((k = num_field(body, "temperature", 0, 100, &d)) < 0)
		FAIL(400, "temperature", "temperature must be a number in [0, 100]");
	if (k)
		s->temperature = d;
	if ((k = num_field(body, "top_p", 1e-9, 1, &d)) < 0)
		FAIL(400, "top_p", "top_p must be a number in (0, 1]");
	if (k)
		s->top_p = d;
	if ((k = int_field(body, "top_k", -1, 1e9, &i64)) < 0)
		FAIL(400, "top_k", "top_k must be an integer >= -1");
	if (k)
		s->top_k = (int)i64;
	if ((k = num_field(body, "min_p", 0, 1, &d)) < 0)
		FAIL(400, "min_p", "min_p must be a number in [0, 1]");
	if (k)
		s->min_p = d;
	if ((k = num_field(body, "presence_penalty", -2, 2, &d)) < 0)
		FAIL(400, "presence_penalty", "presence_penalty must be a number in [-2, 2]");
	if (k)
		s->presence_penalty = d;
	if ((k = num_field(body, "frequency_penalty", -2, 2, &d)) < 0)
		FAIL(400, "frequency_penalty", "frequency_penalty must be a number in [-2, 2]");
	if (k)
		s->frequency_penalty = d;
	if ((k = num_field(body, "repetition_penalty", 1e-6, 100, &d)) < 0)
		FAIL(400, "repetition_penalty", "repetition_penalty must be a number > 0");
	if (k)
		s->repetition_penalty = d;
	if ((k = int_field(body, "seed", -9.2e18, 9.2e18, &i64)) < 0)
		FAIL(400, "seed", "seed must be an integer");
	if (k) {
		s->has_seed = 1;
		s->seed = (uint64_t)i64;
	}
	const char *mt = r->kind == API_CHAT && get(body, "max_completion_tokens") ? "max_completion_tokens"
										 : "max_tokens";
	if ((k = int_field(body, mt, 1, 1e9, &i64)) < 0)
		FAIL(400, mt, "%s must be an integer >= 1", mt);
	if (k) {
		s->max_tokens = (int)i64;
		r->max_tokens_set = 1;
	}
	if ((k = int_field(body, "min_tokens", 0, 1e9, &i64)) < 0)
		FAIL(400, "min_tokens", "min_tokens must be an integer >= 0");
	if (k)
		s->min_tokens = (int)i64;
	if (bool_field(body, "ignore_eos", &b) < 0)
		FAIL(400, "ignore_eos", "ignore_eos must be a boolean");
	else if (get(body, "ignore_eos"))
		s->ignore_eos = b;
	if ((k = int_field(body, "n", 1, API_MAX_N, &i64)) < 0)
		FAIL(400, "n", "n must be an integer in [1, %d]", API_MAX_N);
	if (k)
		r->n = (int)i64;
	if ((k = int_field(body, "best_of", 1, API_MAX_N, &i64)) < 0 || (k && i64 != r->n))
		FAIL(400, "best_of", "best_of must equal n");
	if ((rc = parse_logit_bias(body, lim, r, e)) < 0)
		goto out;
	const cJSON *v = get(body, "suffix");
	if (v && (!cJSON_IsString(v) || *v->valuestring))
		FAIL(400, "suffix", "suffix is not supported");
	if (get(body, "use_beam_search") && cJSON_IsTrue(get(body, "use_beam_search")))
		FAIL(400, "use_beam_search", "beam search is not supported");
	if (bool_field(body, "stream", &r->stream) < 0)
		FAIL(400, "stream", "stream must be a boolean");
	v = get(body, "stream_options");
	if (v) {
		if (!cJSON_IsObject(v))
			FAIL(400, "stream_options", "stream_options must be an object");
		if (!r->stream)
			FAIL(400, "stream_options", "stream_options can only be set when stream is true");
		if (bool_field(v, "include_usage", &r->include_usage) < 0)
			FAIL(400, "stream_options", "stream_options.include_usage must be a boolean");
	}
	v = get(body, "model");
	if (v && !cJSON_IsString(v))
		FAIL(400, "model", "model must be a string");
	if (v && lim->model_name && strcmp(v->valuestring, lim->model_name) != 0)
		FAIL(404, "model", "The model does not exist.");
	v = get(body, "cache_salt");	/* vLLM's: different salts never share prefix-cache blocks */
	if (v && (!cJSON_IsString(v) || !*v->valuestring))
		FAIL(400, "cache_salt", "cache_salt must be a non-empty string");
	s->cache_salt = v ? eng_cache_salt(v->valuestring) : 0;
	if ((rc = parse_stop(body, r, e)) < 0)
		goto out;
	if ((rc = parse_guide(body, r, e)) < 0)
		goto out;
out:
	return rc;
}

static int parse_chat(const cJSON *body, const struct tokenizer *tok, const struct api_limits *lim,
		      struct api_req *r, struct api_err *e)
{
	const cJSON *m = get(body, "messages");
	char *text = NULL;
	int rc = 0, b = 0;
	int64_t i64;

	if (!m)
		FAIL(400, "messages", "messages is required");
	if ((rc = api_chat_render(m, 1, &text, e)) < 0)
		goto out;
	rc = add_text_prompt(r, tok, lim, text, strlen(text), 0, e, "messages");
	free(text);
	if (rc < 0)
		goto out;
	if (bool_field(body, "logprobs", &b) < 0)
		FAIL(400, "logprobs", "logprobs must be a boolean");
	int k = int_field(body, "top_logprobs", 0, ENG_MAX_LOGPROBS, &i64);
	if (k < 0)
		FAIL(400, "top_logprobs", "top_logprobs must be an integer in [0, %d]", ENG_MAX_LOGPROBS);
	if (k && !b)
		FAIL(400, "top_logprobs", "top_logprobs needs logprobs to be true");
	r->logprobs = b ? (k ? (int)i64 : 0) : -1;
	if (lim->eot_id >= 0 && r->smp.n_stop_ids < ENG_MAX_STOP)
		r->smp.stop_ids[r->smp.n_stop_ids++] = lim->eot_id;
out:
	return rc;
}

int api_parse(enum api_kind kind, const cJSON *body, const struct tokenizer *tok,
	      const struct api_limits *lim, struct api_req *r, struct api_err *e)
{
	int rc = 0, b = 0;
	int64_t i64;
	const char *param = NULL;
	char err[200];

	memset(r, 0, sizeof(*r));
	memset(e, 0, sizeof(*e));
	r->kind = kind;
	r->n = 1;
	r->logprobs = -1;
	eng_sampling_default(&r->smp);
	if (!cJSON_IsObject(body))
		FAIL(400, NULL, "the request body must be a JSON object");
	if ((rc = parse_sampling(body, lim, r, e)) < 0)
		goto out;
	if (kind == API_CHAT) {
		if ((rc = parse_chat(body, tok, lim, r, e)) < 0)
			goto out;
	} else {
		if ((rc = parse_prompt(body, tok, lim, r, e)) < 0)
			goto out;
		if (kind == API_COMPLETION) {
			if (bool_field(body, "echo", &b) < 0)
				FAIL(400, "echo", "echo must be a boolean");
			r->echo = b;
			int k = int_field(body, "logprobs", 0, ENG_MAX_LOGPROBS, &i64);
			if (k < 0)
				FAIL(400, "logprobs", "logprobs must be an integer in [0, %d]", ENG_MAX_LOGPROBS);
			r->logprobs = k ? (int)i64 : -1;
		}
	}
	if (r->n_prompts * r->n > API_MAX_CHOICES)
		FAIL(400, "n", "at most %d choices per request", API_MAX_CHOICES);
	/* more than the engine ever admits: a 429 would only invite retries */
	if (lim->max_choices > 0 && r->n_prompts * r->n > lim->max_choices)
		FAIL(400, r->n > 1 ? "n" : "prompt",
		     "this server runs at most %d sequences at once (--max-num-seqs + --max-queue); "
		     "the request needs %d (prompts x n)", lim->max_choices, r->n_prompts * r->n);
	r->smp.logprobs = r->logprobs;
	for (int i = 0; i < r->n_prompts; i++) {
		int np = r->prompts[i].n_ids;
		const char *pp = kind == API_CHAT ? "messages" : "prompt";
		if (np == 0)
			FAIL(400, pp, "the prompt is empty");
		if (lim->max_model_len > 0) {
			if (np >= lim->max_model_len)
				FAIL(400, pp, "This model's maximum context length is %d tokens; the prompt has %d",
				     lim->max_model_len, np);
			int room = lim->max_model_len - np;
			if (!r->max_tokens_set && kind == API_CHAT)
				r->smp.max_tokens = MIN(room, 4096);
			else if (r->smp.max_tokens > room)
				FAIL(400, kind == API_CHAT && get(body, "max_completion_tokens") ?
					  "max_completion_tokens" : "max_tokens",
				     "This model's maximum context length is %d tokens. However, you requested "
				     "%d tokens (%d in the prompt, %d in the completion)",
				     lim->max_model_len, np + r->smp.max_tokens, np, r->smp.max_tokens);
		}
	}
	if (eng_sampling_check(&r->smp, lim->vocab_size, &param, err, sizeof(err)) < 0)
		FAIL(400, param, "%s", err);
out:
	if (rc < 0) {
		if (!e->status)
			e->status = 400;
		api_req_release(r);
	}
	return rc;
}
