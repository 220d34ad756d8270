/*
 * api_chat.c - the chat prompt of a request: checks an OpenAI "messages"
 * list (objects with a string role and content that is a string, null, or
 * a list of {"type":"text","text":...} parts; "developer" is read as
 * "system") and renders it with the Gemma chat template
 * (tokenizer/chat_template.c). Not tokenization: the caller encodes the
 * text. Errors name the message index, param "messages".
 */
#include "service/api/api_chat.h"

#include <stdio.h>
#include <string.h>

#include "common/sbuf.h"
#include "common/status.h"
#include "tokenizer/chat_template.h"

/* A message's content as one string; *bad 1 when it has the wrong shape,
 * -1 when joining its parts ran out of memory. */
static const char *msg_content(const cJSON *m, struct sbuf *tmp, int *bad)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content"), *x;
	*bad = 0;
	if (cJSON_IsString(c))
		return c->valuestring;
	if (!c || cJSON_IsNull(c))
		return "";
	if (!cJSON_IsArray(c)) {
		*bad = 1;
		return NULL;
	}
	sb_reset(tmp);
	cJSON_ArrayForEach(x, c) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "type");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(x, "text");
		if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") || !cJSON_IsString(s)) {
			*bad = 1;
			return NULL;
		}
		sb_puts(tmp, s->valuestring);
	}
	if (tmp->oom) {
		*bad = -1;	/* out of memory: the content would be cut short */
		return NULL;
	}
	return sb_cstr(tmp);
}

int api_chat_render(const cJSON *messages, int add_generation_prompt, char **text, struct api_err *e)
{
	struct chat_msg msgs[API_MAX_MESSAGES];
	struct sbuf parts[API_MAX_MESSAGES];
	const cJSON *m;
	char err[160] = "";
	size_t len;
	int n = 0, rc = 0, bad;

	*text = NULL;
	e->status = 400;
	e->param = "messages";
	if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
		snprintf(e->msg, sizeof(e->msg), "messages must be a non-empty list");
		return ST_EINVAL;
	}
	if (cJSON_GetArraySize(messages) > API_MAX_MESSAGES) {
		snprintf(e->msg, sizeof(e->msg), "at most %d messages", API_MAX_MESSAGES);
		return ST_EINVAL;
	}
	cJSON_ArrayForEach(m, messages) {
		const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
		sb_init(&parts[n]);
		if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
			snprintf(e->msg, sizeof(e->msg), "messages[%d] needs a string role", n);
			rc = ST_EINVAL;
			n++;
			break;
		}
		const char *c = msg_content(m, &parts[n], &bad);
		if (bad < 0) {
			e->status = 500;
			e->param = NULL;
			snprintf(e->msg, sizeof(e->msg), "out of memory");
			rc = ST_ENOMEM;
			n++;
			break;
		}
		if (bad) {
			snprintf(e->msg, sizeof(e->msg), "messages[%d]: content must be a string or text parts", n);
			rc = ST_EINVAL;
			n++;
			break;
		}
		msgs[n].role = !strcmp(role->valuestring, "developer") ? "system" : role->valuestring;
		msgs[n].content = c;
		n++;
	}
	if (rc == 0) {
		rc = chat_render(msgs, n, add_generation_prompt, text, &len, err, sizeof(err));
		if (rc == ST_EINVAL)
			snprintf(e->msg, sizeof(e->msg), "%s", err[0] ? err : "messages do not fit the chat template");
		else if (rc < 0) {
			e->status = 500;
			e->param = NULL;
			snprintf(e->msg, sizeof(e->msg), "out of memory");
		}
	}
	for (int i = 0; i < n; i++)
		sb_release(&parts[i]);
	return rc;
}
