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
 * A DFA over the states the walk meets most, for a walk from a state that
 * takes many first bytes (MEMO_MIN_BYTES: the inside of a JSON string):
 * states are registered as the walk meets them (up to MEMO_N), in a
 * second matcher (me->m) whose arena only grows while states are being
 * registered, with their transitions by byte, so most trie nodes are
 * stepped by a table lookup. Equal states are found by a hash of their
 * key (a state reached in two head orders may take two slots: harmless).
 */
#define MEMO_N 256
#define MEMO_MIN_BYTES 64
#define MEMO_UNKNOWN -2
#define MEMO_DEAD -1
#define MEMO_KEY_MAX 4096

struct memo {
	struct gr_match m;	/* the registered states' arena */
	int n, full;
	int loop;		/* state 0 is a string loop: every plain byte leads back to it */
	struct gr_st st[MEMO_N];
	uint64_t hash[MEMO_N];
	uint32_t first[MEMO_N][8];	/* first_bytes of each state */
	int16_t next[MEMO_N][256];
	int32_t key[MEMO_KEY_MAX];
};

/* A hash of state s that does not depend on the order of its heads (a sum over heads). */
static uint64_t state_hash(struct memo *me, const struct gr_st *s)
{
	int n = gr_state_key_of(&me->m, s, me->key, MEMO_KEY_MAX);
	uint64_t sum = (uint64_t)me->key[0] * 0x9e3779b97f4a7c15ULL, h = 1469598103934665603ULL;

	if (n > MEMO_KEY_MAX)
		n = MEMO_KEY_MAX;
	for (int i = 1; i < n; i++) {	/* key: accept, then per head pos, stack..., -1 */
		h = (h ^ (uint32_t)me->key[i]) * 1099511628211ULL;
		if (me->key[i] == -1) {
			sum += h ^ (h >> 29);
			h = 1469598103934665603ULL;
		}
	}
	return sum;
}

/* Registers t (in me->m) unless an equal state is known: its id, or -1 when full. */
static int memo_find_or_add(struct memo *me, const struct gr_st *t, int *added)
{
	uint64_t h = state_hash(me, t);

	*added = 0;
	for (int j = 0; j < me->n; j++)
		if (me->hash[j] == h && gr_state_equal(&me->m, &me->st[j], t))
			return j;
	if (me->n >= MEMO_N) {
		me->full = 1;
		return -1;
	}
	me->st[me->n] = *t;
	me->hash[me->n] = h;
	first_bytes(&me->m, t, me->first[me->n]);
	for (int x = 0; x < 256; x++)
		me->next[me->n][x] = MEMO_UNKNOWN;
	*added = 1;
	return me->n++;
}

static void set_tokens(const struct gm_vocab *v, int j, uint32_t *mask)
{
	for (int e = 0; e < v->tok_n[j]; e++) {
		int tid = v->tok[v->tok_off[j] + e];
		mask[tid >> 5] |= 1u << (tid & 31);
	}
}

/*
 * Sets the tokens under node i reachable from state s of matcher mm
 * (memo state id, or -1). Under memo state 0 when it is a string loop, a
 * plain byte keeps the state, and when the path from the root is plain
 * bytes too (plain_path), subtrees of plain bytes only are skipped
 * (v->plain has their tokens).
 */
static int walk(const struct gm_vocab *v, struct gr_match *mm, struct memo *me, int i,
		const struct gr_st *s, int id, int plain_path, uint32_t *mask)
{
	uint32_t uu[8];
	const uint32_t *u = uu;
	int rc;

	if (id >= 0)
		u = me->first[id];
	else
		first_bytes(mm, s, uu);
	for (int j = i + 1; j < v->end[i]; j = v->end[j]) {
		unsigned x = v->nbyte[j];
		struct gr_mark k;
		struct gr_st t;
		int q = MEMO_UNKNOWN, added = 0;
		if (!((u[x >> 5] >> (x & 31)) & 1))
			continue;
		if (id >= 0 && (q = me->next[id][x]) == MEMO_DEAD)
			continue;
		if (q >= 0) {
			int pp = plain_path && plain_byte(x);
			if (pp && me->loop && q == 0 && id == 0 && !v->np_sub[j])
				continue;	/* only plain tokens below: in v->plain */
			set_tokens(v, j, mask);
			if (v->end[j] > j + 1 &&
			    (rc = walk(v, &me->m, me, j, &me->st[q], q, pp, mask)) < 0)
				return rc;
			continue;
		}
		k = gr_mark(mm);
		if ((rc = gr_step(mm, s, (unsigned char)x, &t)) < 0)
			return rc;
		if (rc == 0) {
			if (id >= 0)
				me->next[id][x] = MEMO_DEAD;
			gr_rewind(mm, k);
			continue;
		}
		set_tokens(v, j, mask);
		if (id >= 0 && t.n > 0 && !me->full) {	/* mm is me->m: register t */
			int nid = memo_find_or_add(me, &t, &added);
			if (nid >= 0) {
				if (!added)
					gr_rewind(mm, k);
				me->next[id][x] = (int16_t)nid;
				if (v->end[j] > j + 1 &&
				    (rc = walk(v, &me->m, me, j, &me->st[nid], nid,
					       plain_path && plain_byte(x), mask)) < 0)
					return rc;
				continue;
			}
		}
		if (t.n > 0 && v->end[j] > j + 1 && (rc = walk(v, mm, me, j, &t, -1, 0, mask)) < 0)
			return rc;
		gr_rewind(mm, k);
	}
	return 0;
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
	struct memo *me = NULL;
	uint32_t u[8];
	int n_first = 0, loop = 0;

	first_bytes(m, &m->cur, u);
	for (int w = 0; w < 8; w++)
		n_first += __builtin_popcount(u[w]);
	memset(mask, 0, (size_t)v->words * sizeof(*mask));
	if (n_first >= MEMO_MIN_BYTES && (me = calloc(1, sizeof(*me)))) {
		struct gr_st s0;
		int added;
		if (gr_match_init(&me->m, m->g) < 0 || gr_state_copy(&me->m, m, &m->cur, &s0) < 0) {
			gr_match_release(&me->m);
			free(me);
			me = NULL;
		} else {
			memo_find_or_add(me, &s0, &added);
			/* string loop: every plain byte leads back to state 0 */
			loop = 1;
			for (unsigned x = 0x20; x < 0x7f && loop; x++) {
				struct gr_mark mk = gr_mark(&me->m);
				struct gr_st t;
				if (!plain_byte(x))
					continue;
				loop = gr_step(&me->m, &me->st[0], (unsigned char)x, &t) > 0 &&
				       gr_state_equal(&me->m, &me->st[0], &t);
				gr_rewind(&me->m, mk);
				if (loop)
					me->next[0][x] = 0;
			}
			me->loop = loop;
		}
	}
	if (me)
		n = walk(v, &me->m, me, 0, &me->st[0], 0, 1, mask);
	else
		n = walk(v, m, NULL, 0, &m->cur, -1, 1, mask);
	if (me) {
		gr_match_release(&me->m);
		free(me);
	}
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
