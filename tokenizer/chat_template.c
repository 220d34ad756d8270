/*
 * chat_template.c - renders chat messages with the Gemma template
 * (see chat_template.h for the exact text and the rules).
 *
 * Pure string work: no tokenizer, no allocation but the result.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "common/util.h"
#include "tokenizer/chat_template.h"

__attribute__((format(printf, 3, 4)))
static int chat_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ST_EINVAL;
}

/* Python's str.isspace() for one code point. */
static int is_space_cp(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* The code point at s[i] and its length (s is valid UTF-8; a stray byte counts as one). */
static size_t cp_at(const unsigned char *s, size_t n, size_t i, uint32_t *cp)
{
	size_t l = utf8_decode((const char *)s + i, n - i, cp);
	if (!l) {
		*cp = s[i];
		l = 1;
	}
	return l;
}

/* Jinja's trim on valid UTF-8: the span without leading/trailing whitespace. */
static void trim(const char *s, size_t n, size_t *start, size_t *end)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t a = 0, b = n, i;
	uint32_t cp;
	while (a < n) {
		size_t l = cp_at(u, n, a, &cp);
		if (!is_space_cp(cp))
			break;
		a += l;
	}
	/* from the end: find the start of the last character each time */
	while (b > a) {
		i = b - 1;
		while (i > a && (u[i] & 0xc0) == 0x80)
			i--;
		cp_at(u, n, i, &cp);
		if (!is_space_cp(cp))
			break;
		b = i;
	}
	*start = a;
	*end = b;
}

struct buf {
	char *p;
	size_t n, cap;
};

static int put(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc < b->n + n + 1)
			nc *= 2;
		char *np = realloc(b->p, nc);
		if (!np)
			return ST_ENOMEM;
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
	return 0;
}

static int puts_(struct buf *b, const char *s)
{
	return put(b, s, strlen(s));
}

int chat_render(const struct chat_msg *msgs, int n, int add_generation_prompt,
		char **out, size_t *len, char *err, size_t errlen)
{
	struct buf b = { 0 };
	const char *sys = NULL;
	int first = 0, rc = 0;

	*out = NULL;
	*len = 0;
	if (err && errlen)
		err[0] = 0;
	if (n <= 0 || !msgs)
		return chat_err(err, errlen, "messages: at least one message is required");
	for (int i = 0; i < n; i++) {
		if (!msgs[i].role)
			return chat_err(err, errlen, "messages[%d]: role is missing", i);
		if (!msgs[i].content)
			return chat_err(err, errlen, "messages[%d]: content is missing", i);
		if (!utf8_valid(msgs[i].content, strlen(msgs[i].content)))
			return chat_err(err, errlen, "messages[%d]: content is not valid UTF-8", i);
	}
	if (strcmp(msgs[0].role, "system") == 0) {
		sys = msgs[0].content;
		first = 1;
		if (n == 1)
			return chat_err(err, errlen, "messages[0]: a system message needs a user message after it");
	}
	for (int i = first; i < n; i++) {
		const char *r = msgs[i].role;
		int is_user = strcmp(r, "user") == 0;
		if (strcmp(r, "system") == 0)
			return chat_err(err, errlen, "messages[%d]: a system message is only allowed first", i);
		if (!is_user && strcmp(r, "assistant") != 0 && strcmp(r, "model") != 0)
			return chat_err(err, errlen, "messages[%d]: unknown role '%.32s' (user, assistant, "
					"model or a first system)", i, r);
		if (is_user != ((i - first) % 2 == 0))
			return chat_err(err, errlen, "messages[%d]: conversation roles must alternate "
					"user/assistant/user/assistant/... starting with user (got '%s')", i, r);
	}
	if ((rc = puts_(&b, "<bos>")) < 0)
		goto out_free;
	for (int i = first; i < n; i++) {
		const char *c = msgs[i].content;
		size_t a, e;
		trim(c, strlen(c), &a, &e);
		if ((rc = puts_(&b, "<start_of_turn>")) < 0 ||
		    (rc = puts_(&b, strcmp(msgs[i].role, "user") == 0 ? "user\n" : "model\n")) < 0)
			goto out_free;
		if (i == first && sys && ((rc = puts_(&b, sys)) < 0 || (rc = puts_(&b, "\n\n")) < 0))
			goto out_free;
		if ((rc = put(&b, c + a, e - a)) < 0 || (rc = puts_(&b, "<end_of_turn>\n")) < 0)
			goto out_free;
	}
	if (add_generation_prompt && (rc = puts_(&b, "<start_of_turn>model\n")) < 0)
		goto out_free;
	*out = b.p;
	*len = b.n;
	return 0;
out_free:
	free(b.p);
	return rc;
}
