/*
 * tokenizer.c - encode, decode and incremental decode over a struct
 * tokenizer built by tok_load.c (see tokenizer.h for the contract).
 *
 * Encoding follows Hugging Face `tokenizers` step by step for a BPE model:
 * added tokens split first (leftmost-longest over a byte trie), then each
 * stretch is normalised and merged as one word with HF's algorithm
 * (Word::merge_all): a min-heap of (rank, position, new id); an entry is
 * stale when its left symbol is gone, has no right neighbour, or the pair
 * there no longer merges into the same id. All scratch memory belongs to
 * one call, so concurrent calls are safe.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "tokenizer/tok_internal.h"

struct sym {
	int32_t c;		/* token id */
	int32_t prev, next;	/* neighbours, -1 none */
	uint32_t len;		/* bytes; 0 = merged away */
};

struct hent {
	uint32_t rank, pos, new_id;
};

struct enc {
	int *ids;
	size_t n, cap;
	struct sym *sym;
	size_t sym_cap;
	struct hent *heap;
	size_t heap_n, heap_cap;
	char *norm;
	size_t norm_cap;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	void *np = realloc(*p, nc * elem);
	if (!np)
		return ST_ENOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

static int push_id(struct enc *e, int id)
{
	if (e->n == e->cap && grow((void **)&e->ids, &e->cap, e->n + 1, sizeof(int)) < 0)
		return ST_ENOMEM;
	e->ids[e->n++] = id;
	return 0;
}

static inline int hless(const struct hent *a, const struct hent *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(struct enc *e, uint32_t rank, uint32_t pos, uint32_t new_id)
{
	if (e->heap_n == e->heap_cap &&
	    grow((void **)&e->heap, &e->heap_cap, e->heap_n + 1, sizeof(struct hent)) < 0)
		return ST_ENOMEM;
	struct hent x = { rank, pos, new_id };
	size_t i = e->heap_n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!hless(&x, &e->heap[p]))
			break;
		e->heap[i] = e->heap[p];
		i = p;
	}
	e->heap[i] = x;
	return 0;
}

static struct hent heap_pop(struct enc *e)
{
	struct hent top = e->heap[0], x = e->heap[--e->heap_n];
	size_t i = 0, n = e->heap_n;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && hless(&e->heap[c + 1], &e->heap[c]))
			c++;
		if (!hless(&e->heap[c], &x))
			break;
		e->heap[i] = e->heap[c];
		i = c;
	}
	if (n)
		e->heap[i] = x;
	return top;
}

static inline void sym_add(struct sym *s, size_t *ns, int id, uint32_t len)
{
	size_t i = (*ns)++;
	s[i].c = id;
	s[i].len = len;
	s[i].prev = (int32_t)i - 1;
	s[i].next = -1;
	if (i > 0)
		s[i - 1].next = (int32_t)i;
}

/* Length of the UTF-8 character led by byte c (input is valid UTF-8). */
static inline uint32_t u8len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

static inline uint32_t u8cp(const unsigned char *s, uint32_t n)
{
	switch (n) {
	case 1: return s[0];
	case 2: return ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
	case 3: return ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
	default: return ((s[0] & 0x07u) << 18) | ((s[1] & 0x3fu) << 12) | ((s[2] & 0x3fu) << 6) |
			(s[3] & 0x3fu);
	}
}

/* HF BPE::merge_word + Word::merge_all on one normalised word. */
static int bpe_word(const struct tokenizer *t, struct enc *e, const char *w, size_t n)
{
	const unsigned char *u = (const unsigned char *)w;
	size_t ns = 0;
	int unk = -1;
	uint32_t unk_len = 0;
	int rc;

	if (n == 0)
		return 0;
	/* every symbol covers at least one byte */
	if ((rc = grow((void **)&e->sym, &e->sym_cap, n, sizeof(struct sym))) < 0)
		return rc;
	struct sym *s = e->sym;
	for (size_t i = 0; i < n;) {
		uint32_t L = u8len(u[i]);
		uint32_t cp = u8cp(u + i, L);
		int id = cp < 65536 ? t->bmp_id[cp] : tok_lookup(t, w + i, L);
		if (id >= 0) {
			if (unk >= 0) {
				sym_add(s, &ns, unk, unk_len);
				unk = -1;
			}
			sym_add(s, &ns, id, L);
			i += L;
			continue;
		}
		if (t->byte_fallback) {
			uint32_t k;
			for (k = 0; k < L && t->byte_id[u[i + k]] >= 0; k++)
				;
			if (k == L) {
				/* as HF: a pending unk is not flushed before byte tokens */
				for (k = 0; k < L; k++)
					sym_add(s, &ns, t->byte_id[u[i + k]], 1);
				i += L;
				continue;
			}
		}
		if (t->unk_id >= 0) {
			if (unk >= 0 && t->fuse_unk) {
				unk_len += L;
			} else {
				if (unk >= 0)
					sym_add(s, &ns, unk, unk_len);
				unk = t->unk_id;
				unk_len = L;
			}
		}
		i += L;
	}
	if (unk >= 0)
		sym_add(s, &ns, unk, unk_len);

	e->heap_n = 0;
	for (size_t i = 0; i + 1 < ns; i++) {
		const struct tok_merge *m = tok_merge_find(t, s[i].c, s[i + 1].c);
		if (m && (rc = heap_push(e, m->rank, (uint32_t)i, m->new_id)) < 0)
			return rc;
	}
	while (e->heap_n) {
		struct hent top = heap_pop(e);
		struct sym *cur = &s[top.pos];
		if (cur->len == 0 || cur->next == -1)
			continue;
		int32_t nx = cur->next;
		struct sym right = s[nx];
		const struct tok_merge *m = tok_merge_find(t, cur->c, right.c);
		if (!m || m->new_id != top.new_id)
			continue;
		cur->c = (int32_t)top.new_id;
		cur->len += right.len;
		cur->next = right.next;
		s[nx].len = 0;
		if (right.next > -1 && (size_t)right.next < ns)
			s[right.next].prev = (int32_t)top.pos;
		if (cur->prev >= 0) {
			m = tok_merge_find(t, s[cur->prev].c, cur->c);
			if (m && (rc = heap_push(e, m->rank, (uint32_t)cur->prev, m->new_id)) < 0)
				return rc;
		}
		cur = &s[top.pos];	/* heap_push may not move s, but keep it obvious */
		if (cur->next >= 0 && (size_t)cur->next < ns) {
			m = tok_merge_find(t, cur->c, s[cur->next].c);
			if (m && (rc = heap_push(e, m->rank, top.pos, m->new_id)) < 0)
				return rc;
		}
	}
	for (size_t i = 0; i < ns; i++)
		if (s[i].len && (rc = push_id(e, s[i].c)) < 0)
			return rc;
	return 0;
}

/* Normalises one stretch between added tokens, then BPE. */
static int encode_stretch(const struct tokenizer *t, struct enc *e, const char *s, size_t n)
{
	size_t fl = t->norm_from_len, tl = t->norm_to_len, k = 0;
	int rc;

	if (n == 0)
		return 0;
	if (fl == 0)
		return bpe_word(t, e, s, n);
	if ((rc = grow((void **)&e->norm, &e->norm_cap, n + (n / fl + 1) * tl, 1)) < 0)
		return rc;
	for (size_t i = 0; i < n;) {
		if (i + fl <= n && s[i] == t->norm_from[0] && memcmp(s + i, t->norm_from, fl) == 0) {
			memcpy(e->norm + k, t->norm_to, tl);
			k += tl;
			i += fl;
		} else {
			e->norm[k++] = s[i++];
		}
	}
	return bpe_word(t, e, e->norm, k);
}

/* Longest added token starting at s[0..n); its id and length, or -1. */
static int match_added(const struct tokenizer *t, const char *s, size_t n, size_t *mlen)
{
	int32_t node = t->trie_root[(uint8_t)s[0]];
	int best = -1;
	size_t k = 0;
	while (node >= 0) {
		if (t->trie[node].id >= 0) {
			best = t->trie[node].id;
			*mlen = k + 1;
		}
		if (++k >= n)
			break;
		uint8_t b = (uint8_t)s[k];
		node = t->trie[node].child;
		while (node >= 0 && t->trie[node].byte != b)
			node = t->trie[node].sibling;
	}
	return best;
}

int tok_encode(const struct tokenizer *t, const char *text, size_t len, int **ids, int *n_ids)
{
	struct enc e = { 0 };
	size_t seg = 0, i = 0;
	int rc;

	*ids = NULL;
	*n_ids = 0;
	if (len == 0) {
		*ids = malloc(sizeof(int));
		return *ids ? 0 : ST_ENOMEM;
	}
	if (!text)
		return ST_EINVAL;
	if (len > (size_t)INT32_MAX / 2)
		return log_err(ST_EINVAL, "tokenize: text of %zu bytes is too long", len);
	if (!utf8_valid(text, len))
		return ST_EINVAL;
	if ((rc = grow((void **)&e.ids, &e.cap, len / 3 + 16, sizeof(int))) < 0)
		goto out;
	while (i < len) {
		size_t mlen = 0;
		int id;
		if (t->trie_root[(uint8_t)text[i]] < 0 || (id = match_added(t, text + i, len - i, &mlen)) < 0) {
			i++;
			continue;
		}
		if ((rc = encode_stretch(t, &e, text + seg, i - seg)) < 0 || (rc = push_id(&e, id)) < 0)
			goto out;
		i += mlen;
		seg = i;
	}
	if ((rc = encode_stretch(t, &e, text + seg, len - seg)) < 0)
		goto out;
	if (e.n > INT32_MAX) {
		rc = ST_ERANGE;
		goto out;
	}
	*ids = e.ids;
	*n_ids = (int)e.n;
	e.ids = NULL;
out:
	free(e.ids);
	free(e.sym);
	free(e.heap);
	free(e.norm);
	return rc;
}

/* Copies piece id with the decoder's Replace applied; returns bytes written. */
static size_t put_piece(const struct tokenizer *t, int id, char *dst)
{
	const char *p = t->pieces + t->piece_off[id];
	size_t n = t->piece_len[id], fl = t->dec_from_len, k = 0;
	for (size_t i = 0; i < n;) {
		if (fl && i + fl <= n && p[i] == t->dec_from[0] && memcmp(p + i, t->dec_from, fl) == 0) {
			memcpy(dst + k, t->dec_to, t->dec_to_len);
			k += t->dec_to_len;
			i += fl;
		} else {
			dst[k++] = p[i++];
		}
	}
	return k;
}

static const char fffd[3] = { (char)0xef, (char)0xbf, (char)0xbd };

int tok_decode(const struct tokenizer *t, const int *ids, int n, int skip_special,
	       char **text, size_t *len)
{
	size_t cap = 64, k = 0, run = 0, run_tokens = 0;
	char *out;

	*text = NULL;
	*len = 0;
	if (n < 0 || (n > 0 && !ids))
		return ST_EINVAL;
	for (int i = 0; i < n; i++)
		if (ids[i] < 0 || ids[i] >= t->n_vocab)
			return ST_EINVAL;
	if (!(out = malloc(cap)))
		return ST_ENOMEM;
	for (int i = 0; i <= n; i++) {
		int id = i < n ? ids[i] : -1;
		if (id >= 0 && skip_special && t->special[id])
			continue;
		/* room for a piece, or for a whole run turned into U+FFFDs */
		size_t need = k + MAX((size_t)TOK_PIECE_MAX, 2 * run_tokens) + 8;
		if (need > cap) {
			while (cap < need)
				cap *= 2;
			char *no = realloc(out, cap);
			if (!no) {
				free(out);
				return ST_ENOMEM;
			}
			out = no;
		}
		if (id >= 0 && t->byte_of[id] >= 0) {
			if (run_tokens++ == 0)
				run = k;
			out[k++] = (char)t->byte_of[id];
			continue;
		}
		if (run_tokens) {
			if (!utf8_valid(out + run, k - run)) {
				k = run;
				for (size_t r = 0; r < run_tokens; r++, k += 3)
					memcpy(out + k, fffd, 3);
			}
			run_tokens = 0;
		}
		if (id >= 0)
			k += put_piece(t, id, out + k);
	}
	out[k] = 0;
	*text = out;
	*len = k;
	return 0;
}

int tok_vocab_size(const struct tokenizer *t)
{
	return t->n_vocab;
}

const char *tok_piece(const struct tokenizer *t, int id)
{
	return id >= 0 && id < t->n_vocab ? t->pieces + t->piece_off[id] : NULL;
}

int tok_id(const struct tokenizer *t, const char *piece)
{
	return piece ? tok_lookup(t, piece, strlen(piece)) : -1;
}

int tok_is_special(const struct tokenizer *t, int id)
{
	return id >= 0 && id < t->n_vocab && t->special[id];
}

int tok_bos_id(const struct tokenizer *t) { return t->bos_id; }
int tok_eos_id(const struct tokenizer *t) { return t->eos_id; }
int tok_pad_id(const struct tokenizer *t) { return t->pad_id; }
int tok_unk_id(const struct tokenizer *t) { return t->unk_id; }

/* ---- incremental decoding ---- */

void tok_stream_init(struct tok_stream *s, const struct tokenizer *t, int skip_special)
{
	memset(s, 0, offsetof(struct tok_stream, hold));
	s->tok = t;
	s->skip_special = skip_special;
}

/* Ends the current byte run into s->out at *k. */
static void stream_end_run(struct tok_stream *s, size_t *k)
{
	if (!s->run_bad && s->n_hold) {
		if (s->need == 0) {
			memcpy(s->out + *k, s->hold, s->n_hold);
			*k += s->n_hold;
		} else {
			for (size_t r = 0; r < s->n_hold; r++, *k += 3)
				memcpy(s->out + *k, fffd, 3);
		}
	}
	s->run_bad = 0;
	s->need = 0;
	s->n_hold = 0;
}

/* Whether byte b continues the held run as UTF-8; updates need/lo/hi. */
static int stream_accept(struct tok_stream *s, unsigned char b)
{
	if (s->need) {
		if (b < s->lo || b > s->hi)
			return 0;
		s->need--;
		s->lo = 0x80;
		s->hi = 0xbf;
		return 1;
	}
	s->lo = 0x80;
	s->hi = 0xbf;
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf) {
		s->need = 1;
	} else if (b >= 0xe0 && b <= 0xef) {
		s->need = 2;
		if (b == 0xe0)
			s->lo = 0xa0;
		else if (b == 0xed)
			s->hi = 0x9f;
	} else if (b >= 0xf0 && b <= 0xf4) {
		s->need = 3;
		if (b == 0xf0)
			s->lo = 0x90;
		else if (b == 0xf4)
			s->hi = 0x8f;
	} else {
		return 0;
	}
	return 1;
}

int tok_stream_feed(struct tok_stream *s, int id, const char **text, size_t *len)
{
	const struct tokenizer *t = s->tok;
	size_t k = 0;

	*text = s->out;
	*len = 0;
	if (id < 0 || id >= t->n_vocab)
		return ST_EINVAL;
	if (s->skip_special && t->special[id])
		return 0;
	if (t->byte_of[id] < 0) {
		stream_end_run(s, &k);
		k += put_piece(t, id, s->out + k);
		*len = k;
		return 0;
	}
	unsigned char b = (unsigned char)t->byte_of[id];
	if (s->run_bad) {
		memcpy(s->out, fffd, 3);
		*len = 3;
		return 0;
	}
	if (!stream_accept(s, b)) {
		/* the whole run is invalid: one U+FFFD per byte token, now and later */
		for (size_t r = 0; r <= s->n_hold; r++, k += 3)
			memcpy(s->out + k, fffd, 3);
		s->run_bad = 1;
		s->n_hold = 0;
		s->need = 0;
		*len = k;
		return 0;
	}
	s->hold[s->n_hold++] = b;
	if (s->n_hold == TOK_STREAM_HOLD) {
		/* too long to hold: emit the whole characters, keep the tail */
		size_t tail = 0;
		if (s->need) {
			while (tail < s->n_hold && (s->hold[s->n_hold - 1 - tail] & 0xc0) == 0x80)
				tail++;
			tail++;	/* the lead byte */
		}
		memcpy(s->out, s->hold, s->n_hold - tail);
		k = s->n_hold - tail;
		memmove(s->hold, s->hold + k, tail);
		s->n_hold = tail;
	}
	*len = k;
	return 0;
}

void tok_stream_flush(struct tok_stream *s, const char **text, size_t *len)
{
	size_t k = 0;
	stream_end_run(s, &k);
	*text = s->out;
	*len = k;
}
