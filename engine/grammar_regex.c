/*
 * grammar_regex.c - regular expressions into grammar rules (grammar_regex.h
 * says which subset), by recursive descent: alternation -> sequence ->
 * quantified atom. Each group and quantified atom becomes a rule; a plain
 * byte class is appended to its sequence directly.
 *
 * Not here: running the grammar (grammar.c).
 */
#include "engine/grammar_regex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

#define RX_MAX_COUNT 1000

struct rx {
	struct gr_builder *b;
	const char *s;
	size_t n, i;
	char *err;
	size_t errlen;
	int failed;
	int json;	/* bytes a JSON string cannot hold raw are removed from every class */
};

static void json_safe(const struct rx *x, struct gr_class *c)
{
	if (!x->json)
		return;
	c->b[0] = 0;	/* controls 0x00-0x1f */
	c->b['"' >> 5] &= ~(1u << ('"' & 31));
	c->b['\\' >> 5] &= ~(1u << ('\\' & 31));
}

static int rx_fail(struct rx *x, const char *what)
{
	if (!x->failed && x->err && x->errlen)
		snprintf(x->err, x->errlen, "%s at offset %zu", what, x->i);
	x->failed = 1;
	return ST_EINVAL;
}

int grx_utf8_char(struct gr_builder *b, const struct gr_class *ascii)
{
	struct gr_class c, cont;
	int r = gb_rule(b);

	if (r < 0)
		return r;
	memset(&cont, 0, sizeof(cont));
	gr_class_set(&cont, 0x80, 0xbf);
	gb_class(b, r, ascii);
	gb_alt(b, r);
	memset(&c, 0, sizeof(c));
	gr_class_set(&c, 0xc2, 0xdf);
	gb_class(b, r, &c);
	gb_class(b, r, &cont);
	gb_alt(b, r);
	memset(&c, 0, sizeof(c));
	gr_class_set(&c, 0xe0, 0xef);
	gb_class(b, r, &c);
	gb_class(b, r, &cont);
	gb_class(b, r, &cont);
	gb_alt(b, r);
	memset(&c, 0, sizeof(c));
	gr_class_set(&c, 0xf0, 0xf4);
	gb_class(b, r, &c);
	gb_class(b, r, &cont);
	gb_class(b, r, &cont);
	gb_class(b, r, &cont);
	return gb_failed(b) ? ST_ENOMEM : r;
}

/* An atom: a byte class (rule < 0) or a rule. neg: the class is negated (any non-ASCII too). */
struct atom {
	struct gr_class c;
	int rule;
	int neg;
};

static void class_escape(struct gr_class *c, char e)
{
	switch (e) {
	case 'd': gr_class_set(c, '0', '9'); break;
	case 'w': gr_class_set(c, '0', '9'); gr_class_set(c, 'a', 'z');
		gr_class_set(c, 'A', 'Z'); gr_class_set(c, '_', '_'); break;
	case 's': gr_class_set(c, ' ', ' '); gr_class_set(c, '\t', '\r'); break;
	}
}

static void class_negate(struct gr_class *c)
{
	for (int i = 0; i < 4; i++)
		c->b[i] = ~c->b[i];
	for (int i = 4; i < 8; i++)
		c->b[i] = 0;
}

/* A single escaped character (after the backslash): its byte, or -1. */
static int esc_byte(struct rx *x, char e)
{
	switch (e) {
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'f': return '\f';
	case 'v': return '\v';
	case '0': return 0;
	}
	if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '1' && e <= '9'))
		return rx_fail(x, "unsupported escape"), -1;
	return (unsigned char)e;
}

/* \uXXXX at x->i (after "\u"): the code point, or -1. */
static long hex4(struct rx *x)
{
	long v = 0;

	if (x->i + 4 > x->n)
		return -1;
	for (int k = 0; k < 4; k++) {
		char ch = x->s[x->i + (size_t)k];
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 :
			ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	x->i += 4;
	return v;
}

/* A rule matching the UTF-8 encoding of code point cp. */
static int cp_rule(struct rx *x, long cp)
{
	char u[4];
	int n, r;

	if (cp < 0x80) { u[0] = (char)cp; n = 1; }
	else if (cp < 0x800) { u[0] = (char)(0xc0 | cp >> 6); u[1] = (char)(0x80 | (cp & 63)); n = 2; }
	else { u[0] = (char)(0xe0 | cp >> 12); u[1] = (char)(0x80 | ((cp >> 6) & 63));
		u[2] = (char)(0x80 | (cp & 63)); n = 3; }
	if ((r = gb_rule(x->b)) < 0)
		return r;
	gb_lit(x->b, r, u, (size_t)n);
	return r;
}

static int parse_class(struct rx *x, struct atom *a)
{
	int neg = 0, first = 1;

	x->i++;		/* [ */
	if (x->i < x->n && x->s[x->i] == '^') {
		neg = 1;
		x->i++;
	}
	while (x->i < x->n && (x->s[x->i] != ']' || first)) {
		int lo, hi;
		first = 0;
		if ((unsigned char)x->s[x->i] >= 0x80)
			return rx_fail(x, "non-ASCII character in a class");
		if (x->s[x->i] == '\\') {
			if (++x->i >= x->n)
				return rx_fail(x, "trailing backslash");
			char e = x->s[x->i++];
			if (strchr("dwsDWS", e)) {
				struct gr_class t;
				memset(&t, 0, sizeof(t));
				class_escape(&t, (char)(e | 0x20));
				if (e <= 'Z')
					class_negate(&t);
				for (int k = 0; k < 4; k++)
					a->c.b[k] |= t.b[k];
				continue;
			}
			if (e == 'u') {
				long cp = hex4(x);
				if (cp < 0 || cp >= 0x80)
					return rx_fail(x, "non-ASCII character in a class");
				lo = (int)cp;
			} else if ((lo = esc_byte(x, e)) < 0) {
				return ST_EINVAL;
			}
		} else {
			lo = (unsigned char)x->s[x->i++];
		}
		hi = lo;
		if (x->i + 1 < x->n && x->s[x->i] == '-' && x->s[x->i + 1] != ']') {
			x->i++;
			if (x->s[x->i] == '\\') {
				if (++x->i >= x->n || (hi = esc_byte(x, x->s[x->i++])) < 0)
					return rx_fail(x, "bad class range");
			} else {
				hi = (unsigned char)x->s[x->i++];
			}
			if (hi >= 0x80 || hi < lo)
				return rx_fail(x, "bad class range");
		}
		gr_class_set(&a->c, (unsigned)lo, (unsigned)hi);
	}
	if (x->i >= x->n)
		return rx_fail(x, "unterminated class");
	x->i++;		/* ] */
	if (neg) {
		class_negate(&a->c);
		a->neg = 1;
	}
	return 0;
}

static int parse_alt(struct rx *x);

static int parse_atom(struct rx *x, struct atom *a)
{
	char ch = x->s[x->i];

	memset(a, 0, sizeof(*a));
	a->rule = -1;
	if (ch == '(') {
		x->i++;
		if (x->i < x->n && x->s[x->i] == '?') {
			if (x->i + 1 < x->n && x->s[x->i + 1] == ':')
				x->i += 2;
			else
				return rx_fail(x, "lookaround and named groups are not supported");
		}
		if ((a->rule = parse_alt(x)) < 0)
			return a->rule;
		if (x->i >= x->n || x->s[x->i] != ')')
			return rx_fail(x, "unbalanced parenthesis");
		x->i++;
		return 0;
	}
	if (ch == '[')
		return parse_class(x, a);
	if (ch == '.') {
		x->i++;
		gr_class_set(&a->c, 0, 0x7f);
		a->c.b['\n' >> 5] &= ~(1u << ('\n' & 31));
		a->neg = 1;
		return 0;
	}
	if (ch == '^' || ch == '$')
		return rx_fail(x, "anchor inside the expression is not supported");
	if (ch == '*' || ch == '+' || ch == '?' || ch == '{')
		return rx_fail(x, "quantifier without an operand");
	if (ch == '\\') {
		if (++x->i >= x->n)
			return rx_fail(x, "trailing backslash");
		char e = x->s[x->i++];
		int v;
		if (strchr("dwsDWS", e)) {
			class_escape(&a->c, (char)(e | 0x20));
			if (e <= 'Z') {
				class_negate(&a->c);
				a->neg = 1;
			}
			return 0;
		}
		if (e == 'u') {
			long cp = hex4(x);
			if (cp < 0)
				return rx_fail(x, "bad \\u escape");
			if (cp >= 0x80)
				return (a->rule = cp_rule(x, cp)) < 0 ? a->rule : 0;
			gr_class_set(&a->c, (unsigned)cp, (unsigned)cp);
			return 0;
		}
		if ((v = esc_byte(x, e)) < 0)
			return ST_EINVAL;
		gr_class_set(&a->c, (unsigned)v, (unsigned)v);
		return 0;
	}
	x->i++;
	gr_class_set(&a->c, (unsigned char)ch, (unsigned char)ch);
	return 0;
}

/* The atom as a rule. */
static int atom_rule(struct rx *x, const struct atom *a)
{
	int r;

	if (a->rule >= 0)
		return a->rule;
	if (a->neg) {
		struct gr_class c = a->c;
		json_safe(x, &c);
		return grx_utf8_char(x->b, &c);
	}
	if ((r = gb_rule(x->b)) < 0)
		return r;
	gb_class(x->b, r, &a->c);
	return r;
}

static int parse_count(struct rx *x, int *v)
{
	long n = 0;
	size_t st = x->i;

	while (x->i < x->n && x->s[x->i] >= '0' && x->s[x->i] <= '9' && n <= RX_MAX_COUNT)
		n = n * 10 + (x->s[x->i++] - '0');
	if (x->i == st)
		return 0;
	if (n > RX_MAX_COUNT)
		return rx_fail(x, "repetition count above 1000");
	*v = (int)n;
	return 1;
}

static int parse_seq(struct rx *x)
{
	int r = gb_rule(x->b);

	if (r < 0)
		return r;
	while (x->i < x->n && x->s[x->i] != '|' && x->s[x->i] != ')') {
		struct atom a;
		int min = 1, max = 1, q = 0;
		if (parse_atom(x, &a) < 0)
			return ST_EINVAL;
		json_safe(x, &a.c);
		if (x->i < x->n) {
			char c = x->s[x->i];
			if (c == '*') { min = 0; max = -1; q = 1; x->i++; }
			else if (c == '+') { min = 1; max = -1; q = 1; x->i++; }
			else if (c == '?') { min = 0; max = 1; q = 1; x->i++; }
			else if (c == '{') {
				size_t save = x->i++;
				int got = parse_count(x, &min);
				if (got < 0)
					return ST_EINVAL;
				max = min;
				if (got && x->i < x->n && x->s[x->i] == ',') {
					x->i++;
					max = -1;
					if (parse_count(x, &max) < 0)
						return ST_EINVAL;
				}
				if (got && x->i < x->n && x->s[x->i] == '}') {
					x->i++;
					q = 1;
					if (max >= 0 && max < min)
						return rx_fail(x, "bad repetition range");
				} else {	/* a literal '{' (as JS allows) */
					x->i = save + 1;
					min = max = 1;
					memset(&a, 0, sizeof(a));
					a.rule = -1;
					gr_class_set(&a.c, '{', '{');
					json_safe(x, &a.c);
				}
			}
			if (q && x->i < x->n && x->s[x->i] == '?')
				x->i++;	/* lazy: same language */
			if (q && x->i < x->n && strchr("*+?", x->s[x->i]))
				return rx_fail(x, "nested quantifier");
		}
		if (!q && a.rule < 0 && !a.neg) {
			gb_class(x->b, r, &a.c);
		} else {
			int ar = atom_rule(x, &a);
			if (ar < 0)
				return ar;
			if (q && (ar = gb_repeat(x->b, ar, min, max)) < 0)
				return ar;
			gb_ref(x->b, r, ar);
		}
		if (gb_failed(x->b))
			return ST_ENOMEM;
	}
	return r;
}

static int parse_alt(struct rx *x)
{
	int first = parse_seq(x), r;

	if (first < 0 || x->i >= x->n || x->s[x->i] != '|')
		return first;
	if ((r = gb_rule(x->b)) < 0)
		return r;
	gb_ref(x->b, r, first);
	while (x->i < x->n && x->s[x->i] == '|') {
		int s;
		x->i++;
		if ((s = parse_seq(x)) < 0)
			return s;
		gb_alt(x->b, r);
		gb_ref(x->b, r, s);
	}
	return gb_failed(x->b) ? ST_ENOMEM : r;
}

int grx_compile(struct gr_builder *b, const char *re, size_t n, int search, char *err,
		size_t errlen)
{
	struct rx x = { b, re, n, 0, err, errlen, 0, search };
	int head = 0, tail = 0, body, r, any = -1;

	if (n > 0 && re[0] == '^') {
		x.i = 1;
	} else {
		head = search;
	}
	if (n > x.i && re[n - 1] == '$' && (n < 2 || re[n - 2] != '\\'))
		x.n = n - 1;
	else
		tail = search;
	if ((body = parse_alt(&x)) < 0)
		return x.failed ? ST_EINVAL : body;
	if (x.i != x.n)
		return rx_fail(&x, "unbalanced parenthesis");
	if (!head && !tail)
		return body;
	if ((r = gb_rule(b)) < 0)
		return r;
	if (head || tail) {
		struct gr_class c;
		memset(&c, 0, sizeof(c));
		gr_class_set(&c, 0, 0x7f);
		json_safe(&x, &c);
		if ((any = grx_utf8_char(b, &c)) < 0 || (any = gb_repeat(b, any, 0, -1)) < 0)
			return ST_ENOMEM;
	}
	if (head)
		gb_ref(b, r, any);
	gb_ref(b, r, body);
	if (tail)
		gb_ref(b, r, any);
	return gb_failed(b) ? ST_ENOMEM : r;
}
