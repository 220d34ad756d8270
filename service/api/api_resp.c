/*
 * api_resp.c - OpenAI response bodies, SSE chunks and error bodies (see
 * api_resp.h). Not the chat prompt: that is api_chat.c.
 *
 * Shapes follow OpenAI (and vLLM where OpenAI is silent): completions
 * "text_completion" with logprobs {tokens, token_logprobs, top_logprobs,
 * text_offset}; chat "chat.completion" with logprobs {content: [{token,
 * logprob, bytes, top_logprobs}]}. Token text for logprobs is the decoded
 * single token (U+2581 -> space; a lone byte token decodes to U+FFFD).
 * Completions text_offset counts characters (code points), as vLLM does:
 * each token advances it by the characters of its decoded text.
 * usage always carries prompt_tokens_details.cached_tokens (vLLM only with
 * --enable-prompt-tokens-details; clients ignore what they do not read).
 */
#include "service/api/api_resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

static const char *error_type(int status)
{
	switch (status) {
	case 400: return "BadRequestError";
	case 401: return "AuthenticationError";
	case 403: return "PermissionDeniedError";
	case 404: return "NotFoundError";
	case 405: return "MethodNotAllowedError";
	case 413: return "RequestTooLargeError";
	case 429: return "RateLimitError";
	case 503: return "ServiceUnavailableError";
	default: return status >= 500 ? "InternalServerError" : "BadRequestError";
	}
}

void api_error_json(struct sbuf *sb, int status, const char *msg, const char *param)
{
	sb_puts(sb, "{\"error\":{\"message\":");
	sb_json_str(sb, msg);
	sb_puts(sb, ",\"type\":");
	sb_json_str(sb, error_type(status));
	sb_puts(sb, ",\"param\":");
	if (param)
		sb_json_str(sb, param);
	else
		sb_puts(sb, "null");
	sb_printf(sb, ",\"code\":%d}}", status);
}

const char *api_json_or_oom(struct sbuf *sb, size_t *len)
{
	if (sb->oom) {
		*len = sizeof(API_OOM_JSON) - 1;
		return API_OOM_JSON;
	}
	*len = sb->len;
	return sb_cstr(sb);
}

size_t api_utf8_chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xC0) != 0x80;
	return k;
}

/* ---- responses ---- */

static void token_text(struct sbuf *sb, const struct tokenizer *tok, int id)
{
	char *t = NULL;
	size_t n = 0;
	if (tok && tok_decode(tok, &id, 1, 0, &t, &n) == 0) {
		sb_json_strn(sb, t, n);
		free(t);
	} else {
		sb_json_str(sb, "");
	}
}

static void token_bytes(struct sbuf *sb, const struct tokenizer *tok, int id)
{
	char *t = NULL;
	size_t n = 0;
	sb_putc(sb, '[');
	if (tok && tok_decode(tok, &id, 1, 0, &t, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			sb_printf(sb, "%s%u", i ? "," : "", (unsigned char)t[i]);
		free(t);
	}
	sb_putc(sb, ']');
}

static void completion_logprobs(struct sbuf *sb, const struct api_meta *m, const struct api_out *c)
{
	size_t off = c->text_offset;
	sb_puts(sb, "{\"tokens\":[");
	for (int i = 0; i < c->n_tokens; i++) {
		if (i)
			sb_putc(sb, ',');
		token_text(sb, m->tok, c->tokens[i]);
	}
	sb_puts(sb, "],\"token_logprobs\":[");
	for (int i = 0; i < c->n_tokens; i++) {
		if (i)
			sb_putc(sb, ',');
		sb_json_num(sb, c->lp[i]);
	}
	sb_puts(sb, "],\"top_logprobs\":[");
	for (int i = 0; i < c->n_tokens; i++) {
		sb_puts(sb, i ? ",{" : "{");
		for (int k = 0; k < c->n_top; k++) {
			const struct eng_logprob *t = &c->top[(size_t)i * (size_t)c->n_top + (size_t)k];
			if (k)
				sb_putc(sb, ',');
			token_text(sb, m->tok, t->token);
			sb_putc(sb, ':');
			sb_json_num(sb, t->logprob);
		}
		sb_putc(sb, '}');
	}
	sb_puts(sb, "],\"text_offset\":[");
	for (int i = 0; i < c->n_tokens; i++) {
		char *t = NULL;
		size_t n = 0;
		sb_printf(sb, "%s%zu", i ? "," : "", off);
		if (m->tok && tok_decode(m->tok, &c->tokens[i], 1, 0, &t, &n) == 0) {
			off += api_utf8_chars(t, n);
			free(t);
		}
	}
	sb_puts(sb, "]}");
}

static void chat_logprobs(struct sbuf *sb, const struct api_meta *m, const struct api_out *c)
{
	sb_puts(sb, "{\"content\":[");
	for (int i = 0; i < c->n_tokens; i++) {
		sb_puts(sb, i ? ",{\"token\":" : "{\"token\":");
		token_text(sb, m->tok, c->tokens[i]);
		sb_puts(sb, ",\"logprob\":");
		sb_json_num(sb, c->lp[i]);
		sb_puts(sb, ",\"bytes\":");
		token_bytes(sb, m->tok, c->tokens[i]);
		sb_puts(sb, ",\"top_logprobs\":[");
		for (int k = 0; k < c->n_top; k++) {
			const struct eng_logprob *t = &c->top[(size_t)i * (size_t)c->n_top + (size_t)k];
			sb_puts(sb, k ? ",{\"token\":" : "{\"token\":");
			token_text(sb, m->tok, t->token);
			sb_puts(sb, ",\"logprob\":");
			sb_json_num(sb, t->logprob);
			sb_puts(sb, ",\"bytes\":");
			token_bytes(sb, m->tok, t->token);
			sb_putc(sb, '}');
		}
		sb_puts(sb, "]}");
	}
	sb_puts(sb, "]}");
}

static void head(struct sbuf *sb, const struct api_meta *m, const char *object)
{
	sb_puts(sb, "{\"id\":");
	sb_json_str(sb, m->id);
	sb_printf(sb, ",\"object\":\"%s\",\"created\":%ld,\"model\":", object, m->created);
	sb_json_str(sb, m->model);
}

static void finish_field(struct sbuf *sb, const char *finish)
{
	sb_puts(sb, ",\"finish_reason\":");
	if (finish)
		sb_json_str(sb, finish);
	else
		sb_puts(sb, "null");
}

static void usage(struct sbuf *sb, const struct api_meta *m, int p, int c)
{
	sb_printf(sb, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
		  "\"prompt_tokens_details\":{\"cached_tokens\":%d}}", p, c, p + c, m->cached_tokens);
}

static void choice_text(struct sbuf *sb, const struct api_out *c)
{
	if (!c->prefix_len) {
		sb_json_strn(sb, c->text, c->text_len);
		return;
	}
	/* echo: prompt + completion as one string */
	struct sbuf t;
	sb_init(&t);
	sb_add(&t, c->prefix, c->prefix_len);
	sb_add(&t, c->text, c->text_len);
	sb_json_strn(sb, t.buf ? t.buf : "", t.len);
	if (t.oom)
		sb->oom = 1;	/* the text would be cut short */
	sb_release(&t);
}

void api_response_json(struct sbuf *sb, const struct api_meta *m, const struct api_out *ch, int n,
		       int prompt_tokens, int completion_tokens)
{
	int chat = m->kind == API_CHAT;
	head(sb, m, chat ? "chat.completion" : "text_completion");
	sb_puts(sb, ",\"choices\":[");
	for (int i = 0; i < n; i++) {
		const struct api_out *c = &ch[i];
		sb_printf(sb, "%s{\"index\":%d,", i ? "," : "", c->index);
		if (chat) {
			sb_puts(sb, "\"message\":{\"role\":\"assistant\",\"content\":");
			sb_json_strn(sb, c->text, c->text_len);
			sb_puts(sb, "}");
		} else {
			sb_puts(sb, "\"text\":");
			choice_text(sb, c);
		}
		sb_puts(sb, ",\"logprobs\":");
		if (c->lp && chat)
			chat_logprobs(sb, m, c);
		else if (c->lp)
			completion_logprobs(sb, m, c);
		else
			sb_puts(sb, "null");
		finish_field(sb, c->finish);
		sb_puts(sb, ",\"stop_reason\":null}");
	}
	sb_puts(sb, "],");
	usage(sb, m, prompt_tokens, completion_tokens);
	sb_putc(sb, '}');
}

void api_chunk_json(struct sbuf *sb, const struct api_meta *m, const struct api_out *c, int role_delta)
{
	int chat = m->kind == API_CHAT;
	head(sb, m, chat ? "chat.completion.chunk" : "text_completion");
	sb_printf(sb, ",\"choices\":[{\"index\":%d,", c->index);
	if (chat) {
		sb_puts(sb, "\"delta\":{");
		if (role_delta)
			sb_puts(sb, "\"role\":\"assistant\",");
		if (c->text_len || role_delta || !c->finish) {
			sb_puts(sb, "\"content\":");
			sb_json_strn(sb, c->text, c->text_len);
		} else if (sb->len && sb->buf[sb->len - 1] == ',') {
			sb->len--;
		}
		sb_putc(sb, '}');
	} else {
		sb_puts(sb, "\"text\":");
		choice_text(sb, c);
	}
	sb_puts(sb, ",\"logprobs\":");
	if (c->lp && c->n_tokens && chat)
		chat_logprobs(sb, m, c);
	else if (c->lp && c->n_tokens)
		completion_logprobs(sb, m, c);
	else
		sb_puts(sb, "null");
	finish_field(sb, c->finish);
	sb_puts(sb, "}]}");
}

void api_usage_chunk_json(struct sbuf *sb, const struct api_meta *m, int prompt_tokens,
			  int completion_tokens)
{
	head(sb, m, m->kind == API_CHAT ? "chat.completion.chunk" : "text_completion");
	sb_puts(sb, ",\"choices\":[],");
	usage(sb, m, prompt_tokens, completion_tokens);
	sb_putc(sb, '}');
}
