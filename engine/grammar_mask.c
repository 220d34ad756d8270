/*
 * grammar_mask.c - the vocabulary trie and the per-step token mask of
 * grammar_mask.h.
 *
 * Not here: the grammar itself (grammar.c).
 *
 * Trie layout: nodes in preorder; node i's subtree is [i, end[i]); its
 * children are i + 1, then end[child] for the next one. Node 0 is the
 * root (no byte). The tokens whose bytes end at node i are
 * tok[tok_off[i], tok_off[i] + tok_n[i]) (several ids may share bytes,
 * e.g. a piece and its <0xNN> byte token).
 */
#include "engine/grammar_mask.h"

#include <stdlib.h>
#include <string.h>

#include "common/status.h"

#define GM_MAX_END 16

struct gm_vocab {
	int vocab, words;
	uint8_t *bytes;		/* every token's bytes, end to end */
	int64_t *off;		/* [vocab + 1] into bytes (0-length: never allowed) */
	int n_nodes;
	uint8_t *nbyte;		/* [n_nodes] */
	int32_t *end;		/* [n_nodes] */
	int32_t *tok_off;	/* [n_nodes] */
	int32_t *tok_n;		/* [n_nodes] */
	int32_t *tok;		/* ids in trie order */
	int end_ids[GM_MAX_END];
	int n_end;
	uint32_t *plain;	/* [words] tokens made only of plain string bytes (plain_byte) */
	uint8_t *np_sub;	/* [n_nodes] the subtree holds a byte that is not plain */
};

/* Bytes a JSON string holds as themselves: printable ASCII but '"' and '\\'. */
static int plain_byte(unsigned x)
{
	return x >= 0x20 && x < 0x7f && x != '"' && x != '\\';
}

struct sort_ent {
	const uint8_t *p;
	int n, id;
};

static int cmp_ent(const void *a, const void *b)
{
	const struct sort_ent *x = a, *y = b;
	int n = x->n < y->n ? x->n : y->n, c = memcmp(x->p, y->p, (size_t)n);

	if (c)
		return c;
	if (x->n != y->n)
		return x->n < y->n ? -1 : 1;
	return x->id - y->id;
}

static int byte_piece(const char *p)
{
	int v = 0;

	if (strlen(p) != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>')
		return -1;
	for (int i = 3; i < 5; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 :
			c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

void gm_vocab_destroy(struct gm_vocab *v)
{
	if (!v)
		return;
	free(v->bytes);
	free(v->off);
	free(v->nbyte);
	free(v->end);
	free(v->tok_off);
	free(v->tok_n);
	free(v->tok);
	free(v->plain);
	free(v->np_sub);
	free(v);
}

int gm_vocab_create(const struct tokenizer *t, int vocab, const int *end, int n_end,
		    struct gm_vocab **out)
{
	struct gm_vocab *v = calloc(1, sizeof(*v));
	struct sort_ent *ents = NULL;
	int n_tok = t ? tok_vocab_size(t) : 0, n_ent = 0, rc = ST_ENOMEM, depth = 0;
	int64_t cap = 1 << 20, used = 0, n_nodes_max = 1;
	int32_t path[TOK_PIECE_MAX * 4 + 2];

	*out = NULL;
	if (!v)
		return ST_ENOMEM;
	v->vocab = vocab;
	v->words = (vocab + 31) / 32;
	for (int i = 0; i < n_end && v->n_end < GM_MAX_END; i++)
		if (end[i] >= 0 && end[i] < vocab)
			v->end_ids[v->n_end++] = end[i];
	if (!(v->off = calloc((size_t)vocab + 1, sizeof(*v->off))) || !(v->bytes = malloc((size_t)cap)))
		goto out;
	for (int id = 0; id < vocab; id++) {
		const char *p = id < n_tok ? tok_piece(t, id) : NULL;
		char *txt = NULL;
		size_t len = 0;
		int b;
		v->off[id] = used;
		if (!p || tok_is_special(t, id))
			continue;
		if ((b = byte_piece(p)) >= 0) {
			txt = malloc(1);
			if (txt)
				txt[0] = (char)b;
			len = 1;
		} else if (tok_decode(t, &id, 1, 0, &txt, &len) < 0) {
			continue;
		}
		if (!txt)
			goto out;
		while (used + (int64_t)len > cap) {
			uint8_t *q = realloc(v->bytes, (size_t)cap * 2);
			if (!q) {
				free(txt);
				goto out;
			}
			v->bytes = q;
			cap *= 2;
		}
		memcpy(v->bytes + used, txt, len);
		used += (int64_t)len;
		n_nodes_max += (int64_t)len;
		free(txt);
	}
	v->off[vocab] = used;
	if (!(ents = malloc((size_t)vocab * sizeof(*ents))))
		goto out;
	for (int id = 0; id < vocab; id++)
		if (v->off[id + 1] > v->off[id])
			ents[n_ent++] = (struct sort_ent){ v->bytes + v->off[id],
							   (int)(v->off[id + 1] - v->off[id]), id };
	qsort(ents, (size_t)n_ent, sizeof(*ents), cmp_ent);
	if (!(v->nbyte = malloc((size_t)n_nodes_max)) ||
	    !(v->end = malloc((size_t)n_nodes_max * sizeof(int32_t))) ||
	    !(v->tok_off = malloc((size_t)n_nodes_max * sizeof(int32_t))) ||
	    !(v->tok_n = calloc((size_t)n_nodes_max, sizeof(int32_t))) ||
	    !(v->tok = malloc((size_t)(n_ent ? n_ent : 1) * sizeof(int32_t))))
		goto out;
	/* preorder build: path[d] is the node at depth d of the previous token */
	v->n_nodes = 1;
	v->nbyte[0] = 0;
	v->tok_off[0] = 0;
	path[0] = 0;
	for (int i = 0; i < n_ent; i++) {
		const struct sort_ent *e = &ents[i];
		int lcp = 0;
		if (i > 0) {
			const struct sort_ent *pe = &ents[i - 1];
			while (lcp < e->n && lcp < pe->n && pe->p[lcp] == e->p[lcp])
				lcp++;
		}
		if (lcp > depth)
			lcp = depth;
		for (int d = depth; d > lcp; d--)
			v->end[path[d]] = v->n_nodes;
		depth = lcp;
		for (int d = lcp; d < e->n; d++) {
			int nn = v->n_nodes++;
			v->nbyte[nn] = e->p[d];
			v->tok_n[nn] = 0;
			v->tok_off[nn] = i;
			path[++depth] = nn;
		}
		if (v->tok_n[path[depth]] == 0)
			v->tok_off[path[depth]] = i;
		v->tok[i] = e->id;
		v->tok_n[path[depth]]++;
	}
	for (int d = depth; d >= 0; d--)
		v->end[path[d]] = v->n_nodes;
	/* the plain-token set and, bottom-up (reverse preorder), np_sub */
	if (!(v->plain = calloc((size_t)v->words, sizeof(uint32_t))) ||
	    !(v->np_sub = calloc((size_t)v->n_nodes, 1)))
		goto out;
	for (int id = 0; id < vocab; id++) {
		int ok = v->off[id + 1] > v->off[id];
		for (int64_t k = v->off[id]; k < v->off[id + 1] && ok; k++)
			ok = plain_byte(v->bytes[k]);
		if (ok)
			v->plain[id >> 5] |= 1u << (id & 31);
	}
	for (int i = v->n_nodes - 1; i >= 0; i--) {	/* children come after their parent */
		int any = i > 0 && !plain_byte(v->nbyte[i]);
		for (int j = i + 1; j < v->end[i] && !any; j = v->end[j])
			any = v->np_sub[j];
		v->np_sub[i] = (uint8_t)any;
	}
	rc = 0;
	*out = v;
	v = NULL;
out:
	free(ents);
	gm_vocab_destroy(v);
	return rc;
}

int gm_words(const struct gm_vocab *v)
{
	return v->words;
}

const uint8_t *gm_token_bytes(const struct gm_vocab *v, int id, int *n)
{
	if (id < 0 || id >= v->vocab) {
		*n = 0;
		return NULL;
	}
	*n = (int)(v->off[id + 1] - v->off[id]);
	return v->bytes + v->off[id];
}

int gm_is_end(const struct gm_vocab *v, int id)
{
	for (int i = 0; i < v->n_end; i++)
		if (v->end_ids[i] == id)
			return 1;
	return 0;
}

/* The bytes some head of s can take. */
static void first_bytes(const struct gr_match *m, const struct gr_st *s, uint32_t u[8])
{
	memset(u, 0, 8 * sizeof(uint32_t));
	for (int i = 0; i < s->n; i++) {
		const struct gr_class *c = gr_head_class(m, &m->heads[s->off + i]);
		for (int k = 0; k < 8; k++)
			u[k] |= c->b[k];
	}
}

/*
 * A small DFA over the states the walk meets most (the inside of a JSON
 * string: the loop state or the length-counting states, and the states
 * inside a UTF-8 character), built before a walk from a state that takes
 * many first bytes (MEMO_MIN_BYTES): the states at the bottom of the
 * arena (below the walk's marks, so never rewound during it) and their
 * transitions by byte, so the walk steps by table lookup there.
 */
#define MEMO_N 48
#define MEMO_MIN_BYTES 64	/* a state taking this many first bytes gets a memo */
#define MEMO_UNKNOWN -2
#define MEMO_DEAD -1

struct memo {
	int n;
	int loop;	/* state 0 is a string loop: every plain byte leads back to it */
	struct gr_st st[MEMO_N];
	int8_t next[MEMO_N][256];
};

/* Explores from memo state 0 (breadth first), registering up to MEMO_N states. */
static int memo_build(struct gr_match *m, struct memo *me)
{
	memset(me->next, MEMO_UNKNOWN, sizeof(me->next));
	for (int i = 0; i < me->n; i++) {
		uint32_t u[8];
		first_bytes(m, &me->st[i], u);
		for (unsigned x = 0; x < 256; x++) {
			struct gr_mark k = gr_mark(m);
			struct gr_st t;
			int rc, id = -1;
			if (!((u[x >> 5] >> (x & 31)) & 1)) {
				me->next[i][x] = MEMO_DEAD;
				continue;
			}
			if ((rc = gr_step(m, &me->st[i], (unsigned char)x, &t)) < 0)
				return rc;
			if (rc == 0) {
				me->next[i][x] = MEMO_DEAD;
				gr_rewind(m, k);
				continue;
			}
			for (int j = 0; j < me->n && id < 0; j++)
				if (gr_state_equal(m, &me->st[j], &t))
					id = j;
			if (id >= 0) {
				gr_rewind(m, k);
			} else if (me->n < MEMO_N && t.n > 0) {
				id = me->n++;
				me->st[id] = t;	/* kept: the arena is not rewound past it */
			} else {
				gr_rewind(m, k);
				continue;	/* unknown: stepped during the walk */
			}
			me->next[i][x] = (int8_t)id;
		}
	}
	return 0;
}

/*
 * Sets the tokens under node i reachable from state s (memo state id, or
 * -1). Under memo state 0 (the string loop) a plain byte keeps the state,
 * and when the path from the root is plain bytes too (plain_path),
 * subtrees of plain bytes only are skipped (v->plain has their tokens).
 */
static int walk(const struct gm_vocab *v, struct gr_match *m, const struct memo *me, int i,
		const struct gr_st *s, int id, int plain_path, uint32_t *mask)
{
	uint32_t u[8];
	int n = 0;

	if (id < 0)
		first_bytes(m, s, u);
	for (int j = i + 1; j < v->end[i]; j = v->end[j]) {
		unsigned x = v->nbyte[j];
		struct gr_mark k;
		struct gr_st t;
		int rc, nid = -1;
		if (id >= 0) {
			int8_t q = me->next[id][x];
			if (q == MEMO_DEAD)
				continue;
			if (q >= 0) {
				int pp = plain_path && plain_byte(x);
				if (pp && me->loop && q == 0 && id == 0 && !v->np_sub[j])
					continue;	/* only plain tokens below: in v->plain */
				for (int e = 0; e < v->tok_n[j]; e++) {
					int tid = v->tok[v->tok_off[j] + e];
					mask[tid >> 5] |= 1u << (tid & 31);
				}
				if (v->end[j] > j + 1 &&
				    (rc = walk(v, m, me, j, &me->st[q], q, pp, mask)) < 0)
					return rc;
				continue;
			}
		} else if (!((u[x >> 5] >> (x & 31)) & 1)) {
			continue;
		}
		k = gr_mark(m);
		rc = gr_step(m, s, (unsigned char)x, &t);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			for (int e = 0; e < v->tok_n[j]; e++) {
				int tid = v->tok[v->tok_off[j] + e];
				mask[tid >> 5] |= 1u << (tid & 31);
				n++;
			}
			if (t.n > 0 && v->end[j] > j + 1) {
				int r = walk(v, m, me, j, &t, nid, 0, mask);
				if (r < 0)
					return r;
			}
		}
		gr_rewind(m, k);
	}
	return n;
}

void gm_cache_release(struct gm_cache *c)
{
	for (int i = 0; i < GM_CACHE_N; i++) {
		free(c->mask[i]);
		free(c->key[i]);
	}
	memset(c, 0, sizeof(*c));
}

int gm_mask(const struct gm_vocab *v, struct gr_match *m, struct gm_cache *c, uint32_t *mask)
{
	struct gr_mark k = gr_mark(m);
	int32_t *key = NULL;
	int n, key_len = 0, slot = -1;

	if (c) {
		key_len = gr_state_key(m, NULL, 0);
		if (key_len > 0 && (key = malloc((size_t)key_len * sizeof(*key)))) {
			gr_state_key(m, key, key_len);
			for (int i = 0; i < GM_CACHE_N; i++)
				if (c->mask[i] && c->key_len[i] == key_len &&
				    !memcmp(c->key[i], key, (size_t)key_len * sizeof(*key))) {
					memcpy(mask, c->mask[i], (size_t)v->words * sizeof(*mask));
					c->used[i] = ++c->clock;
					c->hits++;
					free(key);
					n = 0;
					for (int w = 0; w < v->words; w++)
						n += __builtin_popcount(mask[w]);
					return n;
				}
		}
	}
	struct memo me;
	uint32_t u[8];
	int n_first = 0, loop = 0;

	me.n = 0;
	me.loop = 0;
	first_bytes(m, &m->cur, u);
	for (int w = 0; w < 8; w++)
		n_first += __builtin_popcount(u[w]);
	if (n_first >= MEMO_MIN_BYTES) {
		me.n = 1;
		me.st[0] = m->cur;
		if ((n = memo_build(m, &me)) < 0) {
			gr_rewind(m, k);
			free(key);
			return n;
		}
		loop = 1;
		for (unsigned x = 0; x < 256 && loop; x++)
			loop = !plain_byte(x) || me.next[0][x] == 0;
		me.loop = loop;
	}
	memset(mask, 0, (size_t)v->words * sizeof(*mask));
	n = walk(v, m, &me, 0, &m->cur, me.n ? 0 : -1, 1, mask);
	gr_rewind(m, k);
	if (n >= 0) {
		if (loop)
			for (int w = 0; w < v->words; w++)
				mask[w] |= v->plain[w];
		if (gr_accepting(m))
			for (int i = 0; i < v->n_end; i++)
				mask[v->end_ids[i] >> 5] |= 1u << (v->end_ids[i] & 31);
		n = 0;
		for (int w = 0; w < v->words; w++)
			n += __builtin_popcount(mask[w]);
	}
	if (c && key && n >= 0) {
		c->misses++;
		for (int i = 0; i < GM_CACHE_N && slot < 0; i++)
			if (!c->mask[i])
				slot = i;
		if (slot < 0) {	/* least recently used */
			slot = 0;
			for (int i = 1; i < GM_CACHE_N; i++)
				if (c->used[i] < c->used[slot])
					slot = i;
		}
		if (!c->mask[slot] && !(c->mask[slot] = malloc((size_t)v->words * sizeof(*mask)))) {
			free(key);
			return n;
		}
		memcpy(c->mask[slot], mask, (size_t)v->words * sizeof(*mask));
		free(c->key[slot]);
		c->key[slot] = key;
		c->key_len[slot] = key_len;
		c->used[slot] = ++c->clock;
		key = NULL;
	}
	free(key);
	return n;
}

int gm_advance(const struct gm_vocab *v, struct gr_match *m, int id)
{
	int n;
	const uint8_t *p = gm_token_bytes(v, id, &n);

	if (gm_is_end(v, id))
		return gr_accepting(m) ? 0 : ST_EINVAL;
	if (n == 0)
		return ST_EINVAL;
	return gr_advance(m, p, (size_t)n);
}
