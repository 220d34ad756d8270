/*
 * grammar_schema.c - JSON Schema, json_object, regex and choice into
 * grammars (grammar_schema.h says what is supported).
 *
 * Not here: running grammars (grammar.c), regex syntax (grammar_regex.c),
 * the cache of compiled grammars (grammar_cache.c).
 *
 * Whitespace: at most GRS_WS bytes of [ \t\n\r] where JSON allows it (a
 * model left alone could otherwise pad forever). Numbers: at most 16
 * integer and 16 fraction digits. Objects: properties in schema order;
 * with optional ones, rule B_i ("nothing written yet, from property i")
 * and A_i ("something written, from i": each item led by a comma) place
 * the commas.
 */
#include "engine/grammar_schema.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "engine/grammar_regex.h"

#define GRS_WS 4
#define GRS_MAX_REFS 256
#define GRS_MAX_DEPTH 64
#define MAX_LL(a, b) ((a) > (b) ? (a) : (b))
#define MIN_LL(a, b) ((a) < (b) ? (a) : (b))

struct sc {
	struct gr_builder *b;
	const cJSON *root;
	char *err;
	size_t errlen;
	int failed;
	int ws, value, string, number, integer, kv_any, depth;
	int n_refs;
	const char *ref_name[GRS_MAX_REFS];
	int ref_rule[GRS_MAX_REFS];
};

static int sc_fail(struct sc *c, const char *fmt, const char *kw)
{
	if (!c->failed && c->err && c->errlen)
		snprintf(c->err, c->errlen, fmt, kw);
	c->failed = 1;
	return ST_EINVAL;
}

static int rule_lit(struct sc *c, const char *s)
{
	int r = gb_rule(c->b);
	if (r >= 0)
		gb_lit(c->b, r, s, strlen(s));
	return r;
}

static int rule_class(struct sc *c, unsigned lo, unsigned hi)
{
	struct gr_class k;
	int r = gb_rule(c->b);

	memset(&k, 0, sizeof(k));
	gr_class_set(&k, lo, hi);
	if (r >= 0)
		gb_class(c->b, r, &k);
	return r;
}

/* The shared rules: ws, any value, string, number, integer. */
static int base_rules(struct sc *c)
{
	struct gr_builder *b = c->b;
	struct gr_class k;
	int ch, esc, hex, digits, d19, intpart, frac, exp, sign, obj, arr, kv, elems, kvs;

	memset(&k, 0, sizeof(k));
	gr_class_set(&k, ' ', ' ');
	gr_class_set(&k, '\t', '\n');
	gr_class_set(&k, '\r', '\r');
	c->ws = gb_rule(b);
	gb_class(b, c->ws, &k);
	c->ws = gb_repeat(b, c->ws, 0, GRS_WS);

	memset(&k, 0, sizeof(k));	/* string */
	gr_class_set(&k, 0x20, 0x7f);
	k.b['"' >> 5] &= ~(1u << ('"' & 31));
	k.b['\\' >> 5] &= ~(1u << ('\\' & 31));
	ch = grx_utf8_char(b, &k);
	hex = gb_rule(b);
	memset(&k, 0, sizeof(k));
	gr_class_set(&k, '0', '9');
	gr_class_set(&k, 'a', 'f');
	gr_class_set(&k, 'A', 'F');
	gb_class(b, hex, &k);
	esc = gb_rule(b);
	gb_byte(b, esc, '\\');
	memset(&k, 0, sizeof(k));
	for (const char *p = "\"\\/bfnrt"; *p; p++)
		gr_class_set(&k, (unsigned char)*p, (unsigned char)*p);
	gb_class(b, esc, &k);
	gb_alt(b, esc);
	gb_lit(b, esc, "\\u", 2);
	for (int i = 0; i < 4; i++)
		gb_ref(b, esc, hex);
	gb_alt(b, ch);		/* ch: utf8 char | escape */
	gb_ref(b, ch, esc);
	c->string = gb_rule(b);
	gb_byte(b, c->string, '"');
	gb_ref(b, c->string, gb_repeat(b, ch, 0, -1));
	gb_byte(b, c->string, '"');

	digits = rule_class(c, '0', '9');
	d19 = rule_class(c, '1', '9');
	intpart = gb_rule(b);	/* 0 | [1-9][0-9]{0,15} */
	gb_byte(b, intpart, '0');
	gb_alt(b, intpart);
	gb_ref(b, intpart, d19);
	gb_ref(b, intpart, gb_repeat(b, digits, 0, 15));
	sign = gb_repeat(b, rule_lit(c, "-"), 0, 1);
	c->integer = gb_rule(b);
	gb_ref(b, c->integer, sign);
	gb_ref(b, c->integer, intpart);
	frac = gb_rule(b);
	gb_byte(b, frac, '.');
	gb_ref(b, frac, gb_repeat(b, digits, 1, 16));
	exp = gb_rule(b);
	memset(&k, 0, sizeof(k));
	gr_class_set(&k, 'e', 'e');
	gr_class_set(&k, 'E', 'E');
	gb_class(b, exp, &k);
	memset(&k, 0, sizeof(k));
	gr_class_set(&k, '+', '+');
	gr_class_set(&k, '-', '-');
	{
		int pm = gb_rule(b);
		gb_class(b, pm, &k);
		gb_ref(b, exp, gb_repeat(b, pm, 0, 1));
	}
	gb_ref(b, exp, gb_repeat(b, digits, 1, 3));
	c->number = gb_rule(b);
	gb_ref(b, c->number, c->integer);
	gb_ref(b, c->number, gb_repeat(b, frac, 0, 1));
	gb_ref(b, c->number, gb_repeat(b, exp, 0, 1));

	c->value = gb_rule(b);
	obj = gb_rule(b);
	arr = gb_rule(b);
	kv = gb_rule(b);
	gb_ref(b, kv, c->string);
	gb_ref(b, kv, c->ws);
	gb_byte(b, kv, ':');
	gb_ref(b, kv, c->ws);
	gb_ref(b, kv, c->value);
	c->kv_any = kv;
	{
		int comma = gb_rule(b);
		gb_ref(b, comma, c->ws);
		gb_byte(b, comma, ',');
		gb_ref(b, comma, c->ws);
		kvs = gb_sep_list(b, kv, comma, 0, -1);
		elems = gb_sep_list(b, c->value, comma, 0, -1);
	}
	gb_byte(b, obj, '{');
	gb_ref(b, obj, c->ws);
	gb_ref(b, obj, kvs);
	gb_ref(b, obj, c->ws);
	gb_byte(b, obj, '}');
	gb_byte(b, arr, '[');
	gb_ref(b, arr, c->ws);
	gb_ref(b, arr, elems);
	gb_ref(b, arr, c->ws);
	gb_byte(b, arr, ']');
	gb_ref(b, c->value, obj);
	gb_alt(b, c->value);
	gb_ref(b, c->value, arr);
	gb_alt(b, c->value);
	gb_ref(b, c->value, c->string);
	gb_alt(b, c->value);
	gb_ref(b, c->value, c->number);
	const char *lits[] = { "true", "false", "null" };
	for (int i = 0; i < 3; i++) {
		gb_alt(b, c->value);
		gb_lit(b, c->value, lits[i], strlen(lits[i]));
	}
	return gb_failed(b) ? ST_ENOMEM : 0;
}

/* A comma between items, with whitespace. */
static int comma_rule(struct sc *c)
{
	int r = gb_rule(c->b);
	gb_ref(c->b, r, c->ws);
	gb_byte(c->b, r, ',');
	gb_ref(c->b, r, c->ws);
	return r;
}

/* The literal JSON text of v. */
static int const_rule(struct sc *c, const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	int r;

	if (!s)
		return ST_ENOMEM;
	r = rule_lit(c, s);
	cJSON_free(s);
	return r;
}

/* Decimal digit-range rule for l..h of equal length (strings of digits). */
static int digit_range(struct sc *c, const char *l, const char *h, int n)
{
	int r = gb_rule(c->b);
	struct gr_class k;

	if (r < 0 || n == 0)
		return r;
	memset(&k, 0, sizeof(k));
	int all = n > 1;
	for (int i = 0; i < n && all; i++)
		all = l[i] == '0' && h[i] == '9';
	if (all) {
		gb_ref(c->b, r, gb_repeat(c->b, rule_class(c, '0', '9'), n, n));
		return r;
	}
	if (n == 1) {
		gr_class_set(&k, (unsigned char)l[0], (unsigned char)h[0]);
		gb_class(c->b, r, &k);
		return r;
	}
	if (l[0] == h[0]) {
		gb_byte(c->b, r, (unsigned char)l[0]);
		gb_ref(c->b, r, digit_range(c, l + 1, h + 1, n - 1));
		return r;
	}
	char nines[24], zeros[24];	/* only their first n - 1 bytes are read */
	memset(nines, '9', sizeof(nines));
	memset(zeros, '0', sizeof(zeros));
	gb_byte(c->b, r, (unsigned char)l[0]);
	gb_ref(c->b, r, digit_range(c, l + 1, nines, n - 1));
	if (l[0] + 1 <= h[0] - 1) {
		gb_alt(c->b, r);
		gr_class_set(&k, (unsigned)l[0] + 1, (unsigned)h[0] - 1);
		gb_class(c->b, r, &k);
		gb_ref(c->b, r, digit_range(c, zeros, nines, n - 1));
	}
	gb_alt(c->b, r);
	gb_byte(c->b, r, (unsigned char)h[0]);
	gb_ref(c->b, r, digit_range(c, zeros, h + 1, n - 1));
	return r;
}

#define INT_CAP 999999999999999LL	/* 15 digits */

/* Adds to rule r alternatives for the non-negative integers lo..hi (hi <= INT_CAP). */
static void uint_range(struct sc *c, int r, long long lo, long long hi, const char *prefix, int *first)
{
	long long p10 = 1;

	for (int d = 1; d <= 15 && lo <= hi; d++, p10 *= 10) {
		long long dmin = d == 1 ? 0 : p10, dmax = p10 * 10 - 1;
		long long a = lo > dmin ? lo : dmin, z = hi < dmax ? hi : dmax;
		char ls[24], hs[24];
		if (a > z)
			continue;
		snprintf(ls, sizeof(ls), "%lld", a);
		snprintf(hs, sizeof(hs), "%lld", z);
		if (!*first)
			gb_alt(c->b, r);
		*first = 0;
		gb_lit(c->b, r, prefix, strlen(prefix));
		gb_ref(c->b, r, digit_range(c, ls, hs, d));
	}
}

static int integer_rule(struct sc *c, const cJSON *s)
{
	const cJSON *mn = cJSON_GetObjectItemCaseSensitive(s, "minimum");
	const cJSON *mx = cJSON_GetObjectItemCaseSensitive(s, "maximum");
	const cJSON *emn = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum");
	const cJSON *emx = cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum");
	long long lo = -INT_CAP, hi = INT_CAP;
	int r, first = 1;

	if (!mn && !mx && !emn && !emx)
		return c->integer;
	if ((mn && !cJSON_IsNumber(mn)) || (mx && !cJSON_IsNumber(mx)) ||
	    (emn && !cJSON_IsNumber(emn)) || (emx && !cJSON_IsNumber(emx)))
		return sc_fail(c, "'%s' must be a number", "minimum");
	if (mn)
		lo = (long long)ceil(mn->valuedouble > -1e15 ? mn->valuedouble : -1e15);
	if (emn)
		lo = MAX_LL(lo, (long long)floor(emn->valuedouble > -1e15 ? emn->valuedouble : -1e15) + 1);
	if (mx)
		hi = (long long)floor(mx->valuedouble < 1e15 ? mx->valuedouble : 1e15);
	if (emx)
		hi = MIN_LL(hi, (long long)ceil(emx->valuedouble < 1e15 ? emx->valuedouble : 1e15) - 1);
	lo = lo < -INT_CAP ? -INT_CAP : lo;
	hi = hi > INT_CAP ? INT_CAP : hi;
	if (lo > hi)
		return sc_fail(c, "'%s': no integer satisfies the bounds", "minimum");
	if ((r = gb_rule(c->b)) < 0)
		return r;
	if (lo < 0)		/* -(max(1, -hi) .. -lo) */
		uint_range(c, r, hi < 0 ? -hi : 1, -lo, "-", &first);
	if (hi >= 0)
		uint_range(c, r, lo > 0 ? lo : 0, hi, "", &first);
	return gb_failed(c->b) ? ST_ENOMEM : r;
}

static int compile_node(struct sc *c, const cJSON *s);

static const char *const ignored_kw[] = {
	"title", "description", "default", "examples", "$schema", "$id", "$comment",
	"deprecated", "readOnly", "writeOnly", "strict", "name", NULL
};

/* Keywords handled somewhere for this node; anything else is refused. */
static const char *const known_kw[] = {
	"type", "properties", "required", "additionalProperties", "enum", "const", "items",
	"prefixItems", "minItems", "maxItems", "anyOf", "oneOf", "allOf", "$ref", "$defs",
	"definitions", "minLength", "maxLength", "pattern", "format", "minimum", "maximum",
	"exclusiveMinimum", "exclusiveMaximum", NULL
};

static int in_list(const char *const *l, const char *k)
{
	for (; *l; l++)
		if (!strcmp(*l, k))
			return 1;
	return 0;
}

static int string_rule(struct sc *c, const cJSON *s)
{
	const cJSON *mn = cJSON_GetObjectItemCaseSensitive(s, "minLength");
	const cJSON *mx = cJSON_GetObjectItemCaseSensitive(s, "maxLength");
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(s, "pattern");
	const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(s, "format");
	const char *re = NULL;
	int r, body, lo = 0, hi = -1;
	char err[160];

	if (fmt) {
		static const char *const fm[][2] = {
			{ "date", "^[0-9]{4}-((0[13578]|1[02])-31|(0[13-9]|1[0-2])-(29|30)|(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))$" },
			{ "time", "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$" },
			{ "date-time", "^[0-9]{4}-((0[13578]|1[02])-31|(0[13-9]|1[0-2])-(29|30)|(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$" },
			{ "uuid", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$" },
			{ "email", "^[a-z0-9_+-]{1,32}(\\.[a-z0-9_+-]{1,32}){0,3}@[a-z0-9]{1,20}(-[a-z0-9]{1,20}){0,2}(\\.[a-z0-9]{1,20}(-[a-z0-9]{1,20}){0,2}){0,3}\\.[a-z]{2,6}$" },
		};
		if (!cJSON_IsString(fmt))
			return sc_fail(c, "'%s' must be a string", "format");
		for (size_t i = 0; i < sizeof(fm) / sizeof(fm[0]); i++)
			if (!strcmp(fmt->valuestring, fm[i][0]))
				re = fm[i][1];
		if (!re)
			return sc_fail(c, "unsupported format '%s'", fmt->valuestring);
		if (pat || mn || mx)
			return sc_fail(c, "'%s' together with pattern or lengths is not supported", "format");
	}
	if (pat) {
		if (!cJSON_IsString(pat))
			return sc_fail(c, "'%s' must be a string", "pattern");
		if (mn || mx)
			return sc_fail(c, "'%s' together with minLength/maxLength is not supported", "pattern");
		re = pat->valuestring;
	}
	if (re) {
		if ((body = grx_compile(c->b, re, strlen(re), 1, err, sizeof(err))) < 0) {
			if (body == ST_EINVAL && !c->failed && c->err)
				snprintf(c->err, c->errlen, "'%s': %s", fmt ? "format" : "pattern", err);
			c->failed = 1;
			return body;
		}
	} else {
		if (!mn && !mx)
			return c->string;
		if ((mn && (!cJSON_IsNumber(mn) || mn->valuedouble < 0 || mn->valuedouble > 10000)) ||
		    (mx && (!cJSON_IsNumber(mx) || mx->valuedouble < 0 || mx->valuedouble > 10000)))
			return sc_fail(c, "'%s' must be a number in [0, 10000]", mn ? "minLength" : "maxLength");
		lo = mn ? (int)mn->valuedouble : 0;
		hi = mx ? (int)mx->valuedouble : -1;
		if (hi >= 0 && hi < lo)
			return sc_fail(c, "'%s' is below minLength", "maxLength");
		/* the string rule's char: its second element (after '"') repeats it */
		struct gr_class k;
		int ch, esc, hex;
		memset(&k, 0, sizeof(k));
		gr_class_set(&k, 0x20, 0x7f);
		k.b['"' >> 5] &= ~(1u << ('"' & 31));
		k.b['\\' >> 5] &= ~(1u << ('\\' & 31));
		ch = grx_utf8_char(c->b, &k);
		esc = gb_rule(c->b);
		gb_byte(c->b, esc, '\\');
		memset(&k, 0, sizeof(k));
		for (const char *p = "\"\\/bfnrt"; *p; p++)
			gr_class_set(&k, (unsigned char)*p, (unsigned char)*p);
		gb_class(c->b, esc, &k);
		gb_alt(c->b, esc);
		gb_lit(c->b, esc, "\\u00", 4);	/* counted as one character: BMP-only escapes */
		hex = rule_class(c, '0', '9');
		gb_ref(c->b, esc, hex);
		gb_ref(c->b, esc, hex);
		gb_alt(c->b, ch);
		gb_ref(c->b, ch, esc);
		body = gb_repeat(c->b, ch, lo, hi);
	}
	if ((r = gb_rule(c->b)) < 0)
		return r;
	gb_byte(c->b, r, '"');
	gb_ref(c->b, r, body);
	gb_byte(c->b, r, '"');
	return gb_failed(c->b) ? ST_ENOMEM : r;
}

static int count_kw(struct sc *c, const cJSON *s, const char *k, int dflt, int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, k);

	*out = dflt;
	if (!v)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1000 ||
	    v->valuedouble != floor(v->valuedouble))
		return sc_fail(c, "'%s' must be an integer in [0, 1000]", k);
	*out = (int)v->valuedouble;
	return 0;
}

static int array_rule(struct sc *c, const cJSON *s)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(s, "items");
	const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(s, "prefixItems");
	int mn, mx, r, comma, np = 0, item, rest;

	if (count_kw(c, s, "minItems", 0, &mn) < 0 || count_kw(c, s, "maxItems", -1, &mx) < 0)
		return ST_EINVAL;
	if (mx >= 0 && mx < mn)
		return sc_fail(c, "'%s' is below minItems", "maxItems");
	if (prefix && !cJSON_IsArray(prefix))
		return sc_fail(c, "'%s' must be an array", "prefixItems");
	if ((r = gb_rule(c->b)) < 0 || (comma = comma_rule(c)) < 0)
		return ST_ENOMEM;
	gb_byte(c->b, r, '[');
	gb_ref(c->b, r, c->ws);
	if (prefix) {
		np = cJSON_GetArraySize(prefix);
		if (mx >= 0 && np > mx)
			return sc_fail(c, "'%s' longer than maxItems is not supported", "prefixItems");
		for (int i = 0; i < np; i++) {
			int t = compile_node(c, cJSON_GetArrayItem(prefix, i));
			if (t < 0)
				return t;
			if (i > 0)
				gb_ref(c->b, r, comma);
			gb_ref(c->b, r, t);
		}
	}
	if (items && cJSON_IsFalse(items)) {
		if (mn > np)
			return sc_fail(c, "'%s' above the items allowed", "minItems");
		item = -1;
	} else {
		item = items ? compile_node(c, items) : c->value;
		if (item < 0)
			return item;
	}
	if (item >= 0 && (mx < 0 || mx > np)) {
		int lo = mn > np ? mn - np : 0, hi = mx < 0 ? -1 : mx - np;
		if (np > 0) {	/* each further item after a comma */
			int pair = gb_rule(c->b);
			gb_ref(c->b, pair, comma);
			gb_ref(c->b, pair, item);
			rest = gb_repeat(c->b, pair, lo, hi);
		} else {
			rest = gb_sep_list(c->b, item, comma, lo, hi);
		}
		gb_ref(c->b, r, rest);
	}
	gb_ref(c->b, r, c->ws);
	gb_byte(c->b, r, ']');
	return gb_failed(c->b) ? ST_ENOMEM : r;
}

static int object_rule(struct sc *c, const cJSON *s)
{
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(s, "properties");
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "required");
	const cJSON *add = cJSON_GetObjectItemCaseSensitive(s, "additionalProperties");
	const cJSON *p;
	int n = 0, i, r, comma, extra = -1, *kv = NULL, *isreq = NULL, rc;
	int a_next, b_next;

	if (props && !cJSON_IsObject(props))
		return sc_fail(c, "'%s' must be an object", "properties");
	if (req && !cJSON_IsArray(req))
		return sc_fail(c, "'%s' must be an array", "required");
	if (add && !cJSON_IsBool(add) && !cJSON_IsObject(add))
		return sc_fail(c, "'%s' must be a boolean or a schema", "additionalProperties");
	if (!props && !add)
		extra = c->kv_any;	/* a bare {"type": "object"}: any object */
	else if (add && cJSON_IsTrue(add))
		extra = c->kv_any;
	else if (add && cJSON_IsObject(add)) {
		int v = compile_node(c, add);
		if (v < 0)
			return v;
		extra = gb_rule(c->b);
		gb_ref(c->b, extra, c->string);
		gb_ref(c->b, extra, c->ws);
		gb_byte(c->b, extra, ':');
		gb_ref(c->b, extra, c->ws);
		gb_ref(c->b, extra, v);
	}
	cJSON_ArrayForEach(p, req)
		if (!cJSON_IsString(p))
			return sc_fail(c, "'%s' must list strings", "required");
	n = props ? cJSON_GetArraySize(props) : 0;
	if (!(kv = calloc((size_t)n + 1, sizeof(*kv))) || !(isreq = calloc((size_t)n + 1, sizeof(*isreq)))) {
		rc = ST_ENOMEM;
		goto out;
	}
	i = 0;
	cJSON_ArrayForEach(p, props) {
		cJSON *key = cJSON_CreateString(p->string);
		const cJSON *q;
		int v = compile_node(c, p);
		if (v < 0 || !key) {
			cJSON_Delete(key);
			rc = v < 0 ? v : ST_ENOMEM;
			goto out;
		}
		kv[i] = gb_rule(c->b);
		gb_ref(c->b, kv[i], const_rule(c, key));
		cJSON_Delete(key);
		gb_ref(c->b, kv[i], c->ws);
		gb_byte(c->b, kv[i], ':');
		gb_ref(c->b, kv[i], c->ws);
		gb_ref(c->b, kv[i], v);
		cJSON_ArrayForEach(q, req)
			if (!strcmp(q->valuestring, p->string))
				isreq[i] = 1;
		i++;
	}
	cJSON_ArrayForEach(p, req) {
		if (!props || !cJSON_GetObjectItemCaseSensitive(props, p->valuestring)) {
			rc = sc_fail(c, "'%s' names a property not in properties", "required");
			goto out;
		}
	}
	comma = comma_rule(c);
	/* A_n, B_n: the extra key-value pairs */
	a_next = gb_rule(c->b);
	b_next = gb_rule(c->b);
	if (extra >= 0) {
		int pair = gb_rule(c->b);
		gb_ref(c->b, pair, comma);
		gb_ref(c->b, pair, extra);
		gb_ref(c->b, a_next, gb_repeat(c->b, pair, 0, -1));
		gb_ref(c->b, b_next, gb_sep_list(c->b, extra, comma, 0, -1));
	}
	for (i = n - 1; i >= 0; i--) {
		int a = gb_rule(c->b), bb = gb_rule(c->b);
		gb_ref(c->b, a, comma);
		gb_ref(c->b, a, kv[i]);
		gb_ref(c->b, a, a_next);
		gb_ref(c->b, bb, kv[i]);
		gb_ref(c->b, bb, a_next);
		if (!isreq[i]) {
			gb_alt(c->b, a);
			gb_ref(c->b, a, a_next);
			gb_alt(c->b, bb);
			gb_ref(c->b, bb, b_next);
		}
		a_next = a;
		b_next = bb;
	}
	r = gb_rule(c->b);
	gb_byte(c->b, r, '{');
	gb_ref(c->b, r, c->ws);
	gb_ref(c->b, r, b_next);
	gb_ref(c->b, r, c->ws);
	gb_byte(c->b, r, '}');
	rc = gb_failed(c->b) ? ST_ENOMEM : r;
out:
	free(kv);
	free(isreq);
	return rc;
}

static int typed_rule(struct sc *c, const cJSON *s, const char *t)
{
	if (!strcmp(t, "string"))
		return string_rule(c, s);
	if (!strcmp(t, "integer"))
		return integer_rule(c, s);
	if (!strcmp(t, "number")) {
		const cJSON *mn = cJSON_GetObjectItemCaseSensitive(s, "minimum");
		if (cJSON_GetObjectItemCaseSensitive(s, "maximum") ||
		    cJSON_GetObjectItemCaseSensitive(s, "exclusiveMinimum") ||
		    cJSON_GetObjectItemCaseSensitive(s, "exclusiveMaximum") ||
		    (mn && (!cJSON_IsNumber(mn) || mn->valuedouble != 0)))
			return sc_fail(c, "'%s' on a number (not an integer) is not supported",
				       "minimum/maximum");
		if (mn) {	/* minimum 0: no sign */
			/* number = sign int frac exp; minimum 0 drops the sign alternative */
			const char *re = "^(0|[1-9][0-9]{0,15})(\\.[0-9]{1,16})?([eE][+-]?[0-9]{1,3})?$";
			char err[80];
			return grx_compile(c->b, re, strlen(re), 0, err, sizeof(err));
		}
		return c->number;
	}
	if (!strcmp(t, "boolean")) {
		int r = gb_rule(c->b);
		gb_lit(c->b, r, "true", 4);
		gb_alt(c->b, r);
		gb_lit(c->b, r, "false", 5);
		return r;
	}
	if (!strcmp(t, "null"))
		return rule_lit(c, "null");
	if (!strcmp(t, "array"))
		return array_rule(c, s);
	if (!strcmp(t, "object"))
		return object_rule(c, s);
	return sc_fail(c, "unsupported type '%s'", t);
}

/* The schema a local $ref points to (#, #/$defs/x, #/definitions/x), or NULL. */
static const cJSON *resolve(struct sc *c, const char *ref)
{
	const cJSON *d;

	if (!strcmp(ref, "#"))
		return c->root;
	if (!strncmp(ref, "#/$defs/", 8))
		d = cJSON_GetObjectItemCaseSensitive(c->root, "$defs");
	else if (!strncmp(ref, "#/definitions/", 14))
		d = cJSON_GetObjectItemCaseSensitive(c->root, "definitions");
	else
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(d, strchr(ref + 2, '/') + 1);
}

/* allOf of object schemas: one object schema with every part's properties and required. */
static int all_of(struct sc *c, const cJSON *s, const cJSON *all)
{
	cJSON *m = cJSON_Duplicate(s, 1), *props, *req;
	const cJSON *part;
	int r;

	if (!m)
		return ST_ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(m, "allOf");
	if (!cJSON_GetObjectItemCaseSensitive(m, "properties"))
		cJSON_AddObjectToObject(m, "properties");
	if (!cJSON_GetObjectItemCaseSensitive(m, "required"))
		cJSON_AddArrayToObject(m, "required");
	props = cJSON_GetObjectItemCaseSensitive(m, "properties");
	req = cJSON_GetObjectItemCaseSensitive(m, "required");
	cJSON_ArrayForEach(part, all) {
		const cJSON *ps, *rq, *p, *k;
		if (cJSON_IsObject(part) && (k = cJSON_GetObjectItemCaseSensitive(part, "$ref")) &&
		    cJSON_IsString(k))
			part = resolve(c, k->valuestring);
		if (!cJSON_IsObject(part))
			goto bad;
		cJSON_ArrayForEach(p, part) {
			if (!strcmp(p->string, "type") && cJSON_IsString(p) && !strcmp(p->valuestring, "object"))
				continue;
			if (strcmp(p->string, "properties") && strcmp(p->string, "required") &&
			    strcmp(p->string, "additionalProperties") && !in_list(ignored_kw, p->string))
				goto bad;
		}
		ps = cJSON_GetObjectItemCaseSensitive(part, "properties");
		rq = cJSON_GetObjectItemCaseSensitive(part, "required");
		cJSON_ArrayForEach(p, ps)
			if (!cJSON_GetObjectItemCaseSensitive(props, p->string))
				cJSON_AddItemToObject(props, p->string, cJSON_Duplicate(p, 1));
		cJSON_ArrayForEach(p, rq)
			cJSON_AddItemToArray(req, cJSON_Duplicate(p, 1));
	}
	if (!cJSON_GetObjectItemCaseSensitive(m, "type"))
		cJSON_AddStringToObject(m, "type", "object");
	r = compile_node(c, m);
	cJSON_Delete(m);	/* the builder holds no pointer into m */
	return r;
bad:
	cJSON_Delete(m);
	return sc_fail(c, "'%s' is supported only for object schemas (properties, required)", "allOf");
}

static int compile_node(struct sc *c, const cJSON *s)
{
	const cJSON *k, *t;
	int r;

	if (c->failed)
		return ST_EINVAL;
	if (cJSON_IsTrue(s))
		return c->value;
	if (!cJSON_IsObject(s))
		return sc_fail(c, "a schema must be an object or true%s", "");
	if (++c->depth > GRS_MAX_DEPTH) {
		c->depth--;
		return sc_fail(c, "schema nested deeper than %s levels", "64");
	}
	cJSON_ArrayForEach(k, s)
		if (!in_list(known_kw, k->string) && !in_list(ignored_kw, k->string)) {
			r = sc_fail(c, "unsupported keyword '%s'", k->string);
			goto out;
		}
	if ((k = cJSON_GetObjectItemCaseSensitive(s, "$ref"))) {
		if (!cJSON_IsString(k) || !resolve(c, k->valuestring)) {
			r = sc_fail(c, "'%s' must point into #/$defs or #/definitions", "$ref");
			goto out;
		}
		for (int i = 0; i < c->n_refs; i++)
			if (!strcmp(c->ref_name[i], k->valuestring)) {
				r = c->ref_rule[i];
				goto out;
			}
		if (c->n_refs >= GRS_MAX_REFS) {
			r = sc_fail(c, "more than 256 distinct '%s' targets", "$ref");
			goto out;
		}
		r = gb_rule(c->b);	/* placeholder first: recursion finds it */
		c->ref_name[c->n_refs] = k->valuestring;
		c->ref_rule[c->n_refs++] = r;
		int t2 = compile_node(c, resolve(c, k->valuestring));
		if (t2 < 0) {
			r = t2;
			goto out;
		}
		gb_ref(c->b, r, t2);
		goto out;
	}
	if ((k = cJSON_GetObjectItemCaseSensitive(s, "const"))) {
		r = const_rule(c, k);
		goto out;
	}
	if ((k = cJSON_GetObjectItemCaseSensitive(s, "enum"))) {
		const cJSON *v;
		if (!cJSON_IsArray(k) || cJSON_GetArraySize(k) == 0) {
			r = sc_fail(c, "'%s' must be a non-empty array", "enum");
			goto out;
		}
		r = gb_rule(c->b);
		cJSON_ArrayForEach(v, k) {
			if (v != k->child)
				gb_alt(c->b, r);
			gb_ref(c->b, r, const_rule(c, v));
		}
		goto out;
	}
	if ((k = cJSON_GetObjectItemCaseSensitive(s, "allOf"))) {
		r = cJSON_IsArray(k) ? all_of(c, s, k) : sc_fail(c, "'%s' must be an array", "allOf");
		goto out;
	}
	if ((k = cJSON_GetObjectItemCaseSensitive(s, "anyOf")) ||
	    (k = cJSON_GetObjectItemCaseSensitive(s, "oneOf"))) {
		const cJSON *v;
		if (!cJSON_IsArray(k) || cJSON_GetArraySize(k) == 0) {
			r = sc_fail(c, "'%s' must be a non-empty array", k->string);
			goto out;
		}
		r = gb_rule(c->b);
		cJSON_ArrayForEach(v, k) {
			int a = compile_node(c, v);
			if (a < 0) {
				r = a;
				goto out;
			}
			if (v != k->child)
				gb_alt(c->b, r);
			gb_ref(c->b, r, a);
		}
		goto out;
	}
	t = cJSON_GetObjectItemCaseSensitive(s, "type");
	if (cJSON_IsString(t)) {
		r = typed_rule(c, s, t->valuestring);
	} else if (cJSON_IsArray(t) && cJSON_GetArraySize(t) > 0) {
		const cJSON *v;
		r = gb_rule(c->b);
		cJSON_ArrayForEach(v, t) {
			int a = cJSON_IsString(v) ? typed_rule(c, s, v->valuestring) :
				sc_fail(c, "'%s' must list strings", "type");
			if (a < 0) {
				r = a;
				goto out;
			}
			if (v != t->child)
				gb_alt(c->b, r);
			gb_ref(c->b, r, a);
		}
	} else if (t) {
		r = sc_fail(c, "'%s' must be a string or a list of strings", "type");
	} else if (cJSON_GetObjectItemCaseSensitive(s, "properties") ||
		   cJSON_GetObjectItemCaseSensitive(s, "required") ||
		   cJSON_GetObjectItemCaseSensitive(s, "additionalProperties")) {
		r = object_rule(c, s);
	} else if (cJSON_GetObjectItemCaseSensitive(s, "items") ||
		   cJSON_GetObjectItemCaseSensitive(s, "prefixItems")) {
		r = array_rule(c, s);
	} else {
		r = c->value;
	}
out:
	c->depth--;
	if (r >= 0 && gb_failed(c->b))
		r = ST_ENOMEM;
	return r;
}

int grs_compile(enum grs_kind kind, const char *text, size_t n, struct gr_grammar **out,
		char *err, size_t errlen)
{
	struct sc c;
	cJSON *doc = NULL;
	int root = ST_EINVAL, rc;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	if ((rc = gb_create(&c.b)) < 0)
		return rc;
	if ((rc = base_rules(&c)) < 0)
		goto fail;
	switch (kind) {
	case GRS_JSON_OBJECT:	/* any object */
		root = gb_rule(c.b);
		gb_ref(c.b, root, object_rule(&c, NULL));
		break;
	case GRS_REGEX:
		root = grx_compile(c.b, text, n, 0, err, errlen);
		break;
	case GRS_CHOICE:
	case GRS_JSON_SCHEMA:
		if (!(doc = cJSON_ParseWithLength(text, n))) {
			root = sc_fail(&c, "%s is not valid JSON", kind == GRS_CHOICE ? "choice" : "the schema");
			break;
		}
		c.root = doc;
		if (kind == GRS_JSON_SCHEMA) {
			root = compile_node(&c, doc);
			break;
		}
		const cJSON *v;
		if (!cJSON_IsArray(doc) || cJSON_GetArraySize(doc) == 0) {
			root = sc_fail(&c, "%s must be a non-empty array of strings", "choice");
			break;
		}
		root = gb_rule(c.b);
		cJSON_ArrayForEach(v, doc) {
			if (!cJSON_IsString(v)) {
				root = sc_fail(&c, "%s must be a non-empty array of strings", "choice");
				break;
			}
			if (v != doc->child)
				gb_alt(c.b, root);
			gb_lit(c.b, root, v->valuestring, strlen(v->valuestring));
		}
		break;
	}
	if (root < 0) {
		rc = root;
		goto fail;
	}
	rc = gb_finish(c.b, root, out);
	cJSON_Delete(doc);
	return rc;
fail:
	if (rc == ST_ENOMEM && err && errlen && !err[0])
		snprintf(err, errlen, "the grammar is too large");
	gb_destroy(c.b);
	cJSON_Delete(doc);
	return rc == ST_ENOMEM ? ST_EINVAL : rc;
}
