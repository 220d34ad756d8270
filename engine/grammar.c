/*
 * grammar.c - the grammar builder, the compiled grammar and the pushdown
 * matcher of grammar.h.
 *
 * Not here: regular expressions (grammar_regex.c), JSON Schema
 * (grammar_schema.c), token masks (grammar_mask.c).
 *
 * Invariants: a compiled grammar is immutable (shared by every request
 * that uses it); its elements are rules laid end to end, each rule its
 * alternatives separated by GR_E_ALT and closed by GR_E_END; alt[]
 * lists each rule's alternative starts. A reference that ends its
 * alternative pushes nothing (tail call), so right recursion (repetition)
 * does not grow the return stack.
 */
#include "engine/grammar.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

struct gb_rule {
	struct gr_elem *e;
	int n, cap;
};

struct gr_builder {
	struct gb_rule *r;
	int n_rules, cap_rules;
	struct gr_class *cls;
	int n_cls, cap_cls;
	long total;
	int failed;
};

struct gr_grammar {
	struct gr_elem *el;	/* [n_el] */
	int n_el;
	struct gr_class *cls;	/* [n_cls] */
	int n_cls;
	int32_t *alt_off;	/* [n_rules + 1] into alt */
	int32_t *alt;		/* alternative start positions */
	int n_rules;
	int root;
};

static int grow(void **p, int *cap, int need, size_t sz)
{
	void *q;
	int nc;

	if (need <= *cap)
		return 0;
	nc = *cap ? *cap * 2 : 16;
	while (nc < need)
		nc *= 2;
	q = realloc(*p, (size_t)nc * sz);
	if (!q)
		return ST_ENOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

int gb_create(struct gr_builder **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : ST_ENOMEM;
}

void gb_destroy(struct gr_builder *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->n_rules; i++)
		free(b->r[i].e);
	free(b->r);
	free(b->cls);
	free(b);
}

int gb_failed(const struct gr_builder *b)
{
	return b->failed;
}

int gb_rule(struct gr_builder *b)
{
	if (b->failed || grow((void **)&b->r, &b->cap_rules, b->n_rules + 1, sizeof(*b->r)) < 0) {
		b->failed = 1;
		return ST_ENOMEM;
	}
	memset(&b->r[b->n_rules], 0, sizeof(b->r[0]));
	return b->n_rules++;
}

static int add(struct gr_builder *b, int r, int type, int v)
{
	struct gb_rule *ru;

	if (b->failed || r < 0 || r >= b->n_rules)
		return b->failed = 1, ST_ENOMEM;
	ru = &b->r[r];
	if (++b->total > GR_MAX_ELEMS || grow((void **)&ru->e, &ru->cap, ru->n + 1, sizeof(*ru->e)) < 0)
		return b->failed = 1, ST_ENOMEM;
	ru->e[ru->n++] = (struct gr_elem){ type, v };
	return 0;
}

int gb_class(struct gr_builder *b, int r, const struct gr_class *c)
{
	int i;

	for (i = b->n_cls - 1; i >= 0; i--)
		if (!memcmp(&b->cls[i], c, sizeof(*c)))
			break;
	if (i < 0) {
		if (b->failed || grow((void **)&b->cls, &b->cap_cls, b->n_cls + 1, sizeof(*c)) < 0)
			return b->failed = 1, ST_ENOMEM;
		b->cls[b->n_cls] = *c;
		i = b->n_cls++;
	}
	return add(b, r, GR_E_CHAR, i);
}

int gb_byte(struct gr_builder *b, int r, unsigned char x)
{
	struct gr_class c;

	memset(&c, 0, sizeof(c));
	gr_class_set(&c, x, x);
	return gb_class(b, r, &c);
}

int gb_lit(struct gr_builder *b, int r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (gb_byte(b, r, (unsigned char)s[i]) < 0)
			return ST_ENOMEM;
	return 0;
}

int gb_ref(struct gr_builder *b, int r, int target)
{
	if (target < 0)
		return b->failed = 1, ST_EINVAL;
	return add(b, r, GR_E_REF, target);
}

int gb_alt(struct gr_builder *b, int r)
{
	return add(b, r, GR_E_ALT, 0);
}

int gb_repeat(struct gr_builder *b, int x, int min, int max)
{
	int r = gb_rule(b), tail = -1;

	if (r < 0)
		return r;
	if (max < 0) {		/* tail = x tail | "" */
		if ((tail = gb_rule(b)) < 0)
			return tail;
		gb_ref(b, tail, x);
		gb_ref(b, tail, tail);
		gb_alt(b, tail);
	} else {		/* o_k = "" | x o_{k-1}, o_0 = "" */
		for (int k = 0; k < max - min; k++) {
			int o = gb_rule(b);
			if (o < 0)
				return o;
			gb_alt(b, o);
			gb_ref(b, o, x);
			if (tail >= 0)
				gb_ref(b, o, tail);
			tail = o;
		}
	}
	for (int i = 0; i < min; i++)
		gb_ref(b, r, x);
	if (tail >= 0)
		gb_ref(b, r, tail);
	return b->failed ? ST_ENOMEM : r;
}

int gb_sep_list(struct gr_builder *b, int x, int sep, int min, int max)
{
	int r = gb_rule(b), pair = gb_rule(b), rest;

	if (r < 0 || pair < 0)
		return ST_ENOMEM;
	if (max == 0)
		return r;	/* "" */
	gb_ref(b, pair, sep);
	gb_ref(b, pair, x);
	rest = gb_repeat(b, pair, min > 1 ? min - 1 : 0, max < 0 ? -1 : max - 1);
	if (rest < 0)
		return rest;
	gb_ref(b, r, x);
	gb_ref(b, r, rest);
	if (min == 0)
		gb_alt(b, r);
	return b->failed ? ST_ENOMEM : r;
}

int gb_finish(struct gr_builder *b, int root, struct gr_grammar **out)
{
	struct gr_grammar *g = NULL;
	int rc = ST_ENOMEM, n_el = 0, n_alt = 0, *start = NULL;

	*out = NULL;
	if (b->failed || root < 0 || root >= b->n_rules)
		goto out;
	for (int i = 0; i < b->n_rules; i++) {
		n_el += b->r[i].n + 1;
		n_alt++;
		for (int j = 0; j < b->r[i].n; j++)
			n_alt += b->r[i].e[j].type == GR_E_ALT;
	}
	if (!(g = calloc(1, sizeof(*g))) || !(g->el = malloc((size_t)n_el * sizeof(*g->el))) ||
	    !(g->alt = malloc((size_t)n_alt * sizeof(*g->alt))) ||
	    !(g->alt_off = malloc((size_t)(b->n_rules + 1) * sizeof(*g->alt_off))) ||
	    !(g->cls = malloc((size_t)(b->n_cls ? b->n_cls : 1) * sizeof(*g->cls))) ||
	    !(start = malloc((size_t)b->n_rules * sizeof(*start))))
		goto out;
	memcpy(g->cls, b->cls, (size_t)b->n_cls * sizeof(*g->cls));
	g->n_cls = b->n_cls;
	g->n_rules = b->n_rules;
	g->root = root;
	n_el = n_alt = 0;
	for (int i = 0; i < b->n_rules; i++) {
		start[i] = n_el;
		g->alt_off[i] = n_alt;
		g->alt[n_alt++] = n_el;
		for (int j = 0; j < b->r[i].n; j++) {
			g->el[n_el++] = b->r[i].e[j];
			if (b->r[i].e[j].type == GR_E_ALT)
				g->alt[n_alt++] = n_el;
		}
		g->el[n_el++] = (struct gr_elem){ GR_E_END, 0 };
	}
	g->alt_off[b->n_rules] = n_alt;
	g->n_el = n_el;
	rc = 0;
	*out = g;
	g = NULL;
out:
	free(start);
	gr_grammar_destroy(g);
	gb_destroy(b);
	return rc;
}

void gr_grammar_destroy(struct gr_grammar *g)
{
	if (!g)
		return;
	free(g->el);
	free(g->cls);
	free(g->alt_off);
	free(g->alt);
	free(g);
}

int gr_grammar_size(const struct gr_grammar *g)
{
	return g->n_el;
}

/* ---- matcher ---- */

#define NODE_W 3	/* pos, next, depth */
#define CLOSURE_MAX_DEPTH 200

static int push_node(struct gr_match *m, int32_t pos, int32_t next)
{
	int32_t d = next < 0 ? 1 : m->nodes[next * NODE_W + 2] + 1;
	int32_t *p;

	if (d > GR_MAX_DEPTH)
		return -2;	/* too deep: the head is dropped */
	if (m->n_nodes + 1 > m->cap_nodes) {
		int nc = m->cap_nodes ? m->cap_nodes * 2 : 1024;
		if (!(p = realloc(m->nodes, (size_t)nc * NODE_W * sizeof(*p)))) {
			m->failed = 1;
			return -3;
		}
		m->nodes = p;
		m->cap_nodes = nc;
	}
	p = m->nodes + (size_t)m->n_nodes * NODE_W;
	p[0] = pos;
	p[1] = next;
	p[2] = d;
	return m->n_nodes++;
}

static int stk_equal(const struct gr_match *m, int32_t a, int32_t b)
{
	while (a != b) {
		if (a < 0 || b < 0)
			return 0;
		if (m->nodes[a * NODE_W] != m->nodes[b * NODE_W])
			return 0;
		a = m->nodes[a * NODE_W + 1];
		b = m->nodes[b * NODE_W + 1];
	}
	return 1;
}

static void add_head(struct gr_match *m, struct gr_st *o, int32_t pos, int32_t stk)
{
	for (int i = 0; i < o->n; i++) {
		const struct gr_head *h = &m->heads[o->off + i];
		if (h->pos == pos && stk_equal(m, h->stk, stk))
			return;
	}
	if (o->n >= GR_MAX_HEADS)
		return;
	if (m->n_heads + 1 > m->cap_heads &&
	    grow((void **)&m->heads, &m->cap_heads, m->n_heads + 1, sizeof(*m->heads)) < 0) {
		m->failed = 1;
		return;
	}
	m->heads[m->n_heads++] = (struct gr_head){ pos, stk };
	o->n++;
}

/* Whether rule expansion (pos, stk) was made in this step (and marks it). */
static int seen(struct gr_match *m, int32_t pos, int32_t stk)
{
	uint64_t key = ((uint64_t)(uint32_t)pos << 32) | (uint32_t)stk;
	uint32_t h = (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 40) & (GR_VIS_N - 1);

	if (!m->vis_key)
		return 0;
	for (int probe = 0; probe < 8; probe++, h = (h + 1) & (GR_VIS_N - 1)) {
		if (m->vis_gen[h] != m->gen) {
			m->vis_gen[h] = m->gen;
			m->vis_key[h] = key;
			return 0;
		}
		if (m->vis_key[h] == key)
			return 1;
	}
	return 0;	/* table crowded: expand again (the budget bounds it) */
}

/* Starts a step: a fresh expansion set and budget. */
static void step_begin(struct gr_match *m)
{
	if (++m->gen == 0) {	/* wrapped: clear the stamps */
		if (m->vis_gen)
			memset(m->vis_gen, 0, GR_VIS_N * sizeof(*m->vis_gen));
		m->gen = 1;
	}
	m->budget = GR_STEP_BUDGET;
}

/* Expands (pos, stk) until every head waits on a byte class; into o. */
static void closure(struct gr_match *m, struct gr_st *o, int32_t pos, int32_t stk, int depth)
{
	const struct gr_grammar *g = m->g;

	if (depth > CLOSURE_MAX_DEPTH || m->failed || --m->budget < 0)
		return;
	for (;;) {
		const struct gr_elem *e = &g->el[pos];
		if (e->type == GR_E_CHAR) {
			add_head(m, o, pos, stk);
			return;
		}
		if (e->type == GR_E_ALT || e->type == GR_E_END) {
			if (stk < 0) {
				o->accept = 1;
				return;
			}
			pos = m->nodes[stk * NODE_W];
			stk = m->nodes[stk * NODE_W + 1];
			continue;
		}
		/* GR_E_REF: once per (pos, stk) in a step */
		int32_t ns = stk, r = e->v;
		int t = g->el[pos + 1].type;
		if (seen(m, pos, stk))
			return;
		if (t != GR_E_ALT && t != GR_E_END && (ns = push_node(m, pos + 1, stk)) < 0)
			return;
		for (int a = g->alt_off[r]; a < g->alt_off[r + 1]; a++)
			closure(m, o, g->alt[a], ns, depth + 1);
		return;
	}
}

int gr_step(struct gr_match *m, const struct gr_st *s, unsigned char x, struct gr_st *out)
{
	const struct gr_grammar *g = m->g;
	struct gr_st o = { m->n_heads, 0, 0 };

	step_begin(m);
	for (int i = 0; i < s->n; i++) {
		struct gr_head h = m->heads[s->off + i];
		if (gr_class_has(&g->cls[g->el[h.pos].v], x))
			closure(m, &o, h.pos + 1, h.stk, 0);
	}
	*out = o;
	if (m->failed)
		return ST_ENOMEM;
	return o.n > 0 || o.accept;
}

static void release_arrays(struct gr_match *m)
{
	free(m->heads);
	free(m->nodes);
	free(m->vis_key);
	free(m->vis_gen);
	m->heads = NULL;
	m->nodes = NULL;
	m->vis_key = NULL;
	m->vis_gen = NULL;
	m->n_heads = m->cap_heads = m->n_nodes = m->cap_nodes = 0;
}

int gr_match_init(struct gr_match *m, const struct gr_grammar *g)
{
	memset(m, 0, sizeof(*m));
	m->g = g;
	m->cur.off = 0;
	m->vis_key = malloc(GR_VIS_N * sizeof(*m->vis_key));
	m->vis_gen = calloc(GR_VIS_N, sizeof(*m->vis_gen));
	if (!m->vis_key || !m->vis_gen) {
		release_arrays(m);
		return ST_ENOMEM;
	}
	step_begin(m);
	for (int a = g->alt_off[g->root]; a < g->alt_off[g->root + 1]; a++)
		closure(m, &m->cur, g->alt[a], -1, 0);
	if (m->failed) {
		release_arrays(m);
		return ST_ENOMEM;
	}
	return 0;
}

void gr_match_release(struct gr_match *m)
{
	release_arrays(m);
}

/* Copies stack node a (and its tail) of m into the new arrays; map memoises. */
static int32_t copy_stk(struct gr_match *m, int32_t a, int32_t *map, int32_t *nodes, int32_t *n)
{
	int32_t next;

	if (a < 0)
		return -1;
	if (map[a] >= 0)
		return map[a];
	next = copy_stk(m, m->nodes[a * NODE_W + 1], map, nodes, n);
	memcpy(nodes + (size_t)*n * NODE_W, m->nodes + (size_t)a * NODE_W, NODE_W * sizeof(*nodes));
	nodes[*n * NODE_W + 1] = next;
	return map[a] = (*n)++;
}

/* Keeps only the current state in the arena. */
static int compact(struct gr_match *m)
{
	int32_t *map = malloc((size_t)(m->n_nodes ? m->n_nodes : 1) * sizeof(*map));
	int32_t *nodes = malloc((size_t)(m->n_nodes ? m->n_nodes : 1) * NODE_W * sizeof(*nodes));
	int32_t n = 0;

	if (!map || !nodes) {
		free(map);
		free(nodes);
		return ST_ENOMEM;
	}
	memset(map, 0xff, (size_t)m->n_nodes * sizeof(*map));
	for (int i = 0; i < m->cur.n; i++) {
		struct gr_head h = m->heads[m->cur.off + i];
		h.stk = copy_stk(m, h.stk, map, nodes, &n);
		m->heads[i] = h;
	}
	memcpy(m->nodes, nodes, (size_t)n * NODE_W * sizeof(*nodes));
	m->n_nodes = n;
	m->n_heads = m->cur.n;
	m->cur.off = 0;
	free(map);
	free(nodes);
	return 0;
}

int gr_advance(struct gr_match *m, const void *bytes, size_t n)
{
	const unsigned char *p = bytes;
	struct gr_mark k = gr_mark(m);
	struct gr_st s = m->cur, t;

	for (size_t i = 0; i < n; i++) {
		int rc = gr_step(m, &s, p[i], &t);
		if (rc <= 0) {
			gr_rewind(m, k);
			m->failed = 0;
			return rc < 0 ? rc : ST_EINVAL;
		}
		s = t;
	}
	m->cur = s;
	if (m->n_heads > 4 * m->cur.n + 4096 || m->n_nodes > 4096)
		return compact(m);
	return 0;
}

int gr_accepts(const struct gr_grammar *g, const void *text, size_t n)
{
	struct gr_match m;
	int ok;

	if (gr_match_init(&m, g) < 0)
		return ST_ENOMEM;
	ok = gr_advance(&m, text, n) == 0 && gr_accepting(&m);
	gr_match_release(&m);
	return ok;
}

const struct gr_class *gr_head_class(const struct gr_match *m, const struct gr_head *h)
{
	return &m->g->cls[m->g->el[h->pos].v];
}

int gr_state_key(const struct gr_match *m, int32_t *out, int cap)
{
	return gr_state_key_of(m, &m->cur, out, cap);
}

static int32_t copy_chain(struct gr_match *dst, const struct gr_match *src, int32_t a)
{
	int32_t next;

	if (a < 0)
		return -1;
	next = copy_chain(dst, src, src->nodes[a * NODE_W + 1]);
	if (next < -1)
		return next;
	return push_node(dst, src->nodes[a * NODE_W], next);
}

int gr_state_copy(struct gr_match *dst, const struct gr_match *src, const struct gr_st *s,
		  struct gr_st *out)
{
	struct gr_st o = { dst->n_heads, 0, s->accept };

	for (int i = 0; i < s->n; i++) {
		struct gr_head h = src->heads[s->off + i];
		int32_t stk = copy_chain(dst, src, h.stk);
		if (stk < -1 || dst->failed)
			return ST_ENOMEM;
		add_head(dst, &o, h.pos, stk);
	}
	*out = o;
	return dst->failed ? ST_ENOMEM : 0;
}

int gr_state_key_of(const struct gr_match *m, const struct gr_st *st, int32_t *out, int cap)
{
	int n = 0;

#define PUT(x) do { if (n < cap) out[n] = (x); n++; } while (0)
	PUT(st->accept);
	for (int i = 0; i < st->n; i++) {
		const struct gr_head *h = &m->heads[st->off + i];
		PUT(h->pos);
		for (int32_t s = h->stk; s >= 0; s = m->nodes[s * NODE_W + 1])
			PUT(m->nodes[s * NODE_W]);
		PUT(-1);
	}
#undef PUT
	return n;
}

int gr_state_equal(const struct gr_match *m, const struct gr_st *a, const struct gr_st *b)
{
	if (a->n != b->n || a->accept != b->accept)
		return 0;
	for (int i = 0; i < a->n; i++) {
		const struct gr_head *h = &m->heads[a->off + i];
		int found = 0;
		for (int j = 0; j < b->n && !found; j++) {
			const struct gr_head *k = &m->heads[b->off + j];
			found = h->pos == k->pos && stk_equal(m, h->stk, k->stk);
		}
		if (!found)
			return 0;
	}
	return 1;
}
