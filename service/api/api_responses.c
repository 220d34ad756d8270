/*
 * api_responses.c - OpenAI's Responses API (POST /v1/responses) as vLLM
 * serves it, for one text message in and one out (see api_responses.h).
 *
 * A request is rewritten into a chat request and parsed by api_parse:
 * instructions -> a leading system message; input (a string -> one user
 * message; items {type?: "message", role: user|system|developer|assistant,
 * content: string | [input_text | output_text parts]}) -> messages;
 * max_output_tokens -> max_completion_tokens; temperature, top_p, model,
 * stream as they are. Errors then name the Responses parameter.
 *
 * Refused (400, naming the parameter) rather than dropped: tools (a
 * non-empty list), tool_choice other than none/auto, previous_response_id,
 * conversation, background, prompt templates, text.format other than
 * text, top_logprobs, images / files / audio and non-message input items.
 * store is accepted and nothing is stored (as vLLM without its store):
 * the response says "store": false.
 *
 * Output: one message item with one output_text part; status "completed",
 * or "incomplete" with incomplete_details {reason: "max_output_tokens"}.
 */
#include "service/api/api_responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "service/api/api_parse.h"

#define FAIL(st, p, ...) do { e->status = (st); e->param = (p); \
	snprintf(e->msg, sizeof(e->msg), __VA_ARGS__); rc = ST_EINVAL; goto out; } while (0)

static const cJSON *get(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* What this server cannot do, named. */
static int refuse_unsupported(const cJSON *body, struct api_err *e)
{
	const cJSON *v;
	int rc = 0;

	if ((v = get(body, "tools")) && (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 0))
		FAIL(400, "tools", "tools are not supported by this server");
	if ((v = get(body, "tool_choice")) &&
	    !(cJSON_IsString(v) && (!strcmp(v->valuestring, "none") || !strcmp(v->valuestring, "auto"))))
		FAIL(400, "tool_choice", "tool_choice must be \"none\" or \"auto\" (no tools are supported)");
	if (get(body, "previous_response_id"))
		FAIL(400, "previous_response_id", "previous_response_id is not supported: this server stores "
		     "no responses; send the whole conversation as input");
	if (get(body, "conversation"))
		FAIL(400, "conversation", "conversation is not supported: this server stores no state");
	if ((v = get(body, "background")) && !cJSON_IsFalse(v))
		FAIL(400, "background", "background responses are not supported");
	if (get(body, "prompt"))
		FAIL(400, "prompt", "prompt templates are not supported");
	if ((v = get(body, "text"))) {
		const cJSON *f = cJSON_IsObject(v) ? get(v, "format") : NULL, *t = f ? get(f, "type") : NULL;
		if (!cJSON_IsObject(v) || (f && !(cJSON_IsString(t) && !strcmp(t->valuestring, "text"))))
			FAIL(400, "text", "text.format other than {\"type\": \"text\"} is not supported");
	}
	if ((v = get(body, "top_logprobs")) && !(cJSON_IsNumber(v) && v->valuedouble == 0))
		FAIL(400, "top_logprobs", "top_logprobs is not supported on /v1/responses");
	if ((v = get(body, "store")) && !cJSON_IsBool(v))
		FAIL(400, "store", "store must be a boolean");
out:
	return rc;
}

/* Appends {"role": role, "content": text} to msgs. */
static int add_msg(cJSON *msgs, const char *role, const char *text)
{
	cJSON *m = cJSON_CreateObject();
	if (!m || !cJSON_AddStringToObject(m, "role", role) || !cJSON_AddStringToObject(m, "content", text)) {
		cJSON_Delete(m);
		return ST_ENOMEM;
	}
	cJSON_AddItemToArray(msgs, m);
	return 0;
}

/* One input item (a message) -> msgs. */
static int add_item(cJSON *msgs, const cJSON *it, int i, struct api_err *e)
{
	const cJSON *type = get(it, "type"), *role = get(it, "role"), *c = get(it, "content"), *p;
	struct sbuf t;
	int rc = 0;

	sb_init(&t);
	if (!cJSON_IsObject(it))
		FAIL(400, "input", "input[%d] must be an object", i);
	if (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "message")))
		FAIL(400, "input", "input[%d]: items of type '%.40s' are not supported (only messages)", i,
		     cJSON_IsString(type) ? type->valuestring : "?");
	if (!cJSON_IsString(role) || (strcmp(role->valuestring, "user") && strcmp(role->valuestring, "system") &&
				       strcmp(role->valuestring, "developer") && strcmp(role->valuestring, "assistant")))
		FAIL(400, "input", "input[%d]: role must be user, system, developer or assistant", i);
	if (cJSON_IsString(c)) {
		sb_puts(&t, c->valuestring);
	} else if (cJSON_IsArray(c)) {
		cJSON_ArrayForEach(p, c) {
			const cJSON *pt = get(p, "type"), *tx = get(p, "text");
			if (!cJSON_IsString(pt))
				FAIL(400, "input", "input[%d]: every content part needs a string type", i);
			if (!strcmp(pt->valuestring, "input_image") || !strcmp(pt->valuestring, "input_file") ||
			    !strcmp(pt->valuestring, "input_audio"))
				FAIL(400, "input", "input[%d]: %s is not supported: this model reads text only", i,
				     pt->valuestring);
			if ((strcmp(pt->valuestring, "input_text") && strcmp(pt->valuestring, "output_text") &&
			     strcmp(pt->valuestring, "text")) || !cJSON_IsString(tx))
				FAIL(400, "input", "input[%d]: content parts must be input_text or output_text with a "
				     "string text", i);
			sb_puts(&t, tx->valuestring);
		}
	} else {
		FAIL(400, "input", "input[%d]: content must be a string or a list of text parts", i);
	}
	if (t.oom)
		FAIL(500, NULL, "out of memory");
	if (add_msg(msgs, role->valuestring, t.buf ? sb_cstr(&t) : "") < 0)
		FAIL(500, NULL, "out of memory");
out:
	sb_release(&t);
	return rc;
}

/* The chat request body equivalent to a Responses body (caller deletes). */
static int to_chat(const cJSON *body, cJSON **out, struct api_err *e)
{
	static const char *const same[] = { "model", "temperature", "top_p", "stream" };
	const cJSON *in = get(body, "input"), *ins = get(body, "instructions"), *v, *it;
	cJSON *c = cJSON_CreateObject(), *msgs = cJSON_CreateArray();
	int rc = 0, i = 0;

	*out = NULL;
	if (!c || !msgs)
		FAIL(500, NULL, "out of memory");
	if (ins && !cJSON_IsString(ins))
		FAIL(400, "instructions", "instructions must be a string");
	if (ins && add_msg(msgs, "system", ins->valuestring) < 0)
		FAIL(500, NULL, "out of memory");
	if (!in)
		FAIL(400, "input", "input is required");
	if (cJSON_IsString(in)) {
		if (add_msg(msgs, "user", in->valuestring) < 0)
			FAIL(500, NULL, "out of memory");
	} else if (cJSON_IsArray(in) && cJSON_GetArraySize(in) > 0) {
		cJSON_ArrayForEach(it, in)
			if ((rc = add_item(msgs, it, i++, e)) < 0)
				goto out;
	} else {
		FAIL(400, "input", "input must be a string or a non-empty list of messages");
	}
	cJSON_AddItemToObject(c, "messages", msgs);
	msgs = NULL;
	for (size_t k = 0; k < sizeof(same) / sizeof(same[0]); k++)
		if ((v = cJSON_GetObjectItemCaseSensitive(body, same[k])))
			cJSON_AddItemToObject(c, same[k], cJSON_Duplicate(v, 1));
	if ((v = cJSON_GetObjectItemCaseSensitive(body, "max_output_tokens")))
		cJSON_AddItemToObject(c, "max_completion_tokens", cJSON_Duplicate(v, 1));
	*out = c;
	c = NULL;
out:
	cJSON_Delete(msgs);
	cJSON_Delete(c);
	return rc;
}

int api_responses_parse(const cJSON *body, const struct tokenizer *tok, const struct api_limits *lim,
			struct api_req *r, struct api_err *e)
{
	cJSON *chat = NULL;
	const cJSON *ins;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	memset(e, 0, sizeof(*e));
	if (!cJSON_IsObject(body))
		FAIL(400, NULL, "the request body must be a JSON object");
	if ((rc = refuse_unsupported(body, e)) < 0 || (rc = to_chat(body, &chat, e)) < 0)
		goto out;
	rc = api_parse(API_CHAT, chat, tok, lim, r, e);
	if (rc < 0) {
		/* name the parameter as the client sent it */
		if (e->param && !strcmp(e->param, "messages"))
			e->param = "input";
		else if (e->param && (!strcmp(e->param, "max_completion_tokens") || !strcmp(e->param, "max_tokens")))
			e->param = "max_output_tokens";
		if (e->param && !strcmp(e->param, "max_output_tokens") &&
		    !strncmp(e->msg, "max_completion_tokens", 21))
			snprintf(e->msg, sizeof(e->msg), "max_output_tokens must be an integer >= 1");
		goto out;
	}
	r->kind = API_RESPONSES;
	ins = get(body, "instructions");
	if (ins && !(r->instructions = strdup(ins->valuestring))) {
		api_req_release(r);
		FAIL(500, NULL, "out of memory");
	}
out:
	cJSON_Delete(chat);
	if (rc < 0 && !e->status)
		e->status = 400;
	return rc;
}

/* ---- the response object and its events ---- */

static void usage_json(struct sbuf *sb, const struct api_rsp *p)
{
	if (!p->has_usage) {
		sb_puts(sb, "null");
		return;
	}
	sb_printf(sb, "{\"input_tokens\":%d,\"input_tokens_details\":{\"cached_tokens\":%d},"
		  "\"output_tokens\":%d,\"output_tokens_details\":{\"reasoning_tokens\":0},"
		  "\"total_tokens\":%d}", p->input_tokens, p->cached_tokens, p->output_tokens,
		  p->input_tokens + p->output_tokens);
}

static void part_json(struct sbuf *sb, const struct api_rsp *p, int with_text)
{
	sb_puts(sb, "{\"type\":\"output_text\",\"text\":");
	if (with_text)
		sb_json_strn(sb, p->text ? p->text : "", p->text_len);
	else
		sb_puts(sb, "\"\"");
	sb_puts(sb, ",\"annotations\":[],\"logprobs\":[]}");
}

static const char *item_status(const struct api_rsp *p)
{
	return !strcmp(p->status, "in_progress") ? "in_progress" :
	       !strcmp(p->status, "completed") ? "completed" : "incomplete";
}

static void item_json(struct sbuf *sb, const struct api_rsp *p, int with_content)
{
	sb_puts(sb, "{\"id\":");
	sb_json_str(sb, p->msg_id);
	sb_printf(sb, ",\"type\":\"message\",\"role\":\"assistant\",\"status\":\"%s\",\"content\":[",
		  with_content ? item_status(p) : "in_progress");
	if (with_content)
		part_json(sb, p, 1);
	sb_puts(sb, "]}");
}

void api_rsp_object_json(struct sbuf *sb, const struct api_rsp *p)
{
	const struct api_req *q = p->req;

	sb_puts(sb, "{\"id\":");
	sb_json_str(sb, p->id);
	sb_printf(sb, ",\"object\":\"response\",\"created_at\":%ld,\"status\":\"%s\",\"background\":false,"
		  "\"error\":null,\"incomplete_details\":", p->created_at, p->status);
	if (p->incomplete_reason) {
		sb_puts(sb, "{\"reason\":");
		sb_json_str(sb, p->incomplete_reason);
		sb_putc(sb, '}');
	} else {
		sb_puts(sb, "null");
	}
	sb_puts(sb, ",\"instructions\":");
	if (q && q->instructions)
		sb_json_str(sb, q->instructions);
	else
		sb_puts(sb, "null");
	sb_puts(sb, ",\"max_output_tokens\":");
	if (q && q->max_tokens_set)
		sb_printf(sb, "%d", q->smp.max_tokens);
	else
		sb_puts(sb, "null");
	sb_puts(sb, ",\"metadata\":{},\"model\":");
	sb_json_str(sb, p->model);
	sb_puts(sb, ",\"output\":[");
	if (p->has_output)
		item_json(sb, p, 1);
	sb_puts(sb, "],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":null,"
		"\"service_tier\":\"auto\",\"store\":false,\"temperature\":");
	sb_json_num(sb, q ? q->smp.temperature : 1.0);
	sb_puts(sb, ",\"text\":{\"format\":{\"type\":\"text\"}},\"tool_choice\":\"auto\",\"tools\":[],"
		"\"top_p\":");
	sb_json_num(sb, q ? q->smp.top_p : 1.0);
	sb_puts(sb, ",\"truncation\":\"disabled\",\"usage\":");
	usage_json(sb, p);
	sb_puts(sb, ",\"user\":null}");
}

static void event_head(struct sbuf *sb, const char *type, int seq)
{
	sb_printf(sb, "{\"type\":\"%s\",\"sequence_number\":%d", type, seq);
}

static void api_rsp_event_response(struct sbuf *sb, const char *type, int seq, const struct api_rsp *p)
{
	event_head(sb, type, seq);
	sb_puts(sb, ",\"response\":");
	api_rsp_object_json(sb, p);
	sb_putc(sb, '}');
}

static void api_rsp_event_item(struct sbuf *sb, int done, int seq, const struct api_rsp *p)
{
	event_head(sb, done ? "response.output_item.done" : "response.output_item.added", seq);
	sb_puts(sb, ",\"output_index\":0,\"item\":");
	item_json(sb, p, done);
	sb_putc(sb, '}');
}

static void text_head(struct sbuf *sb, const char *type, int seq, const struct api_rsp *p)
{
	event_head(sb, type, seq);
	sb_puts(sb, ",\"item_id\":");
	sb_json_str(sb, p->msg_id);
	sb_puts(sb, ",\"output_index\":0,\"content_index\":0");
}

static void api_rsp_event_part(struct sbuf *sb, int done, int seq, const struct api_rsp *p)
{
	text_head(sb, done ? "response.content_part.done" : "response.content_part.added", seq, p);
	sb_puts(sb, ",\"part\":");
	part_json(sb, p, done);
	sb_putc(sb, '}');
}

void api_rsp_event_delta(struct sbuf *sb, int seq, const struct api_rsp *p, const char *delta, size_t len)
{
	text_head(sb, "response.output_text.delta", seq, p);
	sb_puts(sb, ",\"delta\":");
	sb_json_strn(sb, delta ? delta : "", len);
	sb_puts(sb, ",\"logprobs\":[]}");
}

static void api_rsp_event_text_done(struct sbuf *sb, int seq, const struct api_rsp *p)
{
	text_head(sb, "response.output_text.done", seq, p);
	sb_puts(sb, ",\"text\":");
	sb_json_strn(sb, p->text ? p->text : "", p->text_len);
	sb_puts(sb, ",\"logprobs\":[]}");
}

const char *api_rsp_edge_event(struct sbuf *sb, int closing, int k, int seq, const struct api_rsp *p)
{
	static const char *const open_t[] = { "response.created", "response.in_progress",
					      "response.output_item.added", "response.content_part.added" };
	static const char *const close_t[] = { "response.output_text.done", "response.content_part.done",
					       "response.output_item.done", "response.completed" };
	const char *type = closing ? close_t[k] : open_t[k];

	if (k == 2)
		api_rsp_event_item(sb, closing, seq, p);
	else if (closing && k == 0)
		api_rsp_event_text_done(sb, seq, p);
	else if (closing ? k == 1 : k == 3)
		api_rsp_event_part(sb, closing, seq, p);
	else
		api_rsp_event_response(sb, type, seq, p);
	return type;
}

void api_rsp_event_error(struct sbuf *sb, int seq, int status, const char *msg)
{
	event_head(sb, "error", seq);
	sb_printf(sb, ",\"code\":\"%s\",\"message\":", status == 503 ? "server_shutting_down" : "server_error");
	sb_json_str(sb, msg);
	sb_puts(sb, ",\"param\":null}");
}
