/*
 * tok_load.c - builds a struct tokenizer from the bytes of a Hugging Face
 * tokenizer.json.
 *
 * The file is 17 MB for Gemma (256 000 pieces, 580 604 merges), so the two
 * big members, model.vocab and model.merges, are read by a focused scanner
 * straight into the final tables; the small members (added_tokens,
 * normalizer, pre_tokenizer, decoder, the model's scalar fields) are handed
 * to cJSON. What the file asks for is checked against what tokenizer.c
 * implements: anything else (another pre-tokenizer, BPE dropout, added
 * tokens with lstrip/rstrip, ...) fails with ST_EFORMAT and says what.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "tokenizer/tok_internal.h"

uint32_t tok_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h ^ (h >> 15);
}

/* Continues a lookup of s (hash h) from slot i. */
static int lookup_from(const struct tokenizer *t, const char *s, size_t n, uint32_t h, uint32_t i)
{
	for (;;) {
		const struct tok_vslot *v = &t->vocab_slots[i];
		if (v->id1 == 0)
			return -1;
		if (v->hash == h && v->len == n && memcmp(t->pieces + v->off, s, n) == 0)
			return (int)v->id1 - 1;
		i = (i + 1) & t->vocab_mask;
	}
}

int tok_lookup(const struct tokenizer *t, const char *s, size_t n)
{
	uint32_t h = tok_hash(s, n);
	return lookup_from(t, s, n, h, h & t->vocab_mask);
}

/* The first slot that may hold (h, n), prefetching its piece; lookup_from finishes. */
static uint32_t lookup_start(const struct tokenizer *t, size_t n, uint32_t h)
{
	uint32_t i = h & t->vocab_mask;
	for (;;) {
		const struct tok_vslot *v = &t->vocab_slots[i];
		if (v->id1 == 0)
			return i;
		if (v->hash == h && v->len == n) {
			__builtin_prefetch(t->pieces + v->off);
			return i;
		}
		i = (i + 1) & t->vocab_mask;
	}
}

static uint32_t pow2_at_least(size_t n)
{
	uint32_t s = 16;
	while (s < n)
		s <<= 1;
	return s;
}

static int parse_vocab(struct tokenizer *t, struct span sp)
{
	struct jp j = { sp.p, sp.p + sp.n };
	size_t cap = 1024, n = 0, used = 0;
	uint32_t *ent = NULL;	/* (offset, length, id) triples in file order */
	int rc = ST_EFORMAT, max_id = -1;

	t->pieces = malloc(sp.n + 1);
	ent = malloc(cap * 3 * sizeof(*ent));
	if (!t->pieces || !ent) {
		rc = ST_ENOMEM;
		goto out;
	}
	if (tokj_expect(&j, '{') < 0)
		goto out_bad;
	if (tokj_peek(&j) == '}')
		goto out_bad;
	for (;;) {
		size_t len;
		if (tokj_str(&j, t->pieces + used, &len) < 0 || tokj_expect(&j, ':') < 0)
			goto out_bad;
		tokj_ws(&j);
		uint64_t id = 0;
		const char *d = j.p;
		while (j.p < j.e && *j.p >= '0' && *j.p <= '9' && id < (1u << 30))
			id = id * 10 + (uint64_t)(*j.p++ - '0');
		if (j.p == d || id >= (1u << 30) || (j.p < j.e && (*j.p == '.' || *j.p == 'e')))
			goto out_bad;
		if (len > TOK_PIECE_MAX) {
			rc = log_err(ST_EFORMAT, "tokenizer.json: vocabulary piece %d is %zu bytes (limit %d)",
				     (int)id, len, TOK_PIECE_MAX);
			goto out;
		}
		if (n == cap) {
			uint32_t *ne = realloc(ent, cap * 2 * 3 * sizeof(*ent));
			if (!ne) {
				rc = ST_ENOMEM;
				goto out;
			}
			ent = ne;
			cap *= 2;
		}
		t->pieces[used + len] = 0;
		ent[3 * n] = (uint32_t)used;
		ent[3 * n + 1] = (uint32_t)len;
		ent[3 * n + 2] = (uint32_t)id;
		n++;
		used += len + 1;
		if ((int)id > max_id)
			max_id = (int)id;
		int c = tokj_peek(&j);
		j.p++;
		if (c == '}')
			break;
		if (c != ',')
			goto out_bad;
	}
	if ((size_t)max_id + 1 != n) {
		rc = log_err(ST_EFORMAT, "tokenizer.json: vocabulary has %zu pieces but ids up to %d", n, max_id);
		goto out;
	}
	t->n_vocab = (int)n;
	t->piece_off = malloc(n * sizeof(*t->piece_off));
	t->piece_len = malloc(n * sizeof(*t->piece_len));
	t->vocab_mask = pow2_at_least(2 * n) - 1;
	t->vocab_slots = calloc((size_t)t->vocab_mask + 1, sizeof(*t->vocab_slots));
	if (!t->piece_off || !t->piece_len || !t->vocab_slots) {
		rc = ST_ENOMEM;
		goto out;
	}
	memset(t->piece_len, 0xff, n * sizeof(*t->piece_len));	/* 0xffff: id not seen yet */
	for (size_t i = 0; i < n; i++) {
		uint32_t id = ent[3 * i + 2];
		if (t->piece_len[id] != 0xffff) {
			rc = log_err(ST_EFORMAT, "tokenizer.json: vocabulary id %u appears twice", id);
			goto out;
		}
		t->piece_off[id] = ent[3 * i];
		t->piece_len[id] = (uint16_t)ent[3 * i + 1];
	}
	for (size_t id = 0; id < n; id++) {
		const char *s = t->pieces + t->piece_off[id];
		if (tok_lookup(t, s, t->piece_len[id]) >= 0) {
			rc = log_err(ST_EFORMAT, "tokenizer.json: vocabulary piece of id %zu appears twice", id);
			goto out;
		}
		uint32_t h = tok_hash(s, t->piece_len[id]), k = h & t->vocab_mask;
		while (t->vocab_slots[k].id1)
			k = (k + 1) & t->vocab_mask;
		t->vocab_slots[k].hash = h;
		t->vocab_slots[k].id1 = (uint32_t)id + 1;
		t->vocab_slots[k].off = t->piece_off[id];
		t->vocab_slots[k].len = t->piece_len[id];
	}
	char *shrunk = realloc(t->pieces, used ? used : 1);
	if (shrunk)
		t->pieces = shrunk;
	rc = 0;
	goto out;
out_bad:
	rc = log_err(ST_EFORMAT, "tokenizer.json: malformed model.vocab near byte %td of it",
		     j.p - sp.p);
out:
	free(ent);
	return rc;
}

/*
 * Merges are read in batches so that the hash-table misses of a batch
 * overlap: parse and hash, prefetch the slots; find the candidate slots,
 * prefetch the pieces; resolve the ids, prefetch the merge slots; insert.
 */
#define MERGE_BATCH 64

struct merge_q {
	const char *s[3];	/* a, b, a+b */
	uint32_t n[3], h[3], slot[3];
	int id[3];
};

static void merge_insert(struct tokenizer *t, int ia, int ib, int inew, uint32_t rank)
{
	uint64_t key = ((uint64_t)(uint32_t)(ia + 1) << 32) | (uint32_t)ib;
	uint64_t h = tok_pair_hash(key);
	uint32_t i = (uint32_t)h & t->merge_mask, bit = (uint32_t)(h >> 40) & t->bloom_mask;
	t->merge_bloom[bit >> 6] |= 1ull << (bit & 63);
	while (t->merges[i].key != 0 && t->merges[i].key != key)
		i = (i + 1) & t->merge_mask;
	/* a repeated pair keeps its last rank, as HF's HashMap collect does */
	t->merges[i].key = key;
	t->merges[i].rank = rank;
	t->merges[i].new_id = (uint32_t)inew;
}

static int merge_batch(struct tokenizer *t, struct merge_q *q, int nq, uint32_t base)
{
	for (int i = 0; i < nq; i++)
		for (int k = 0; k < 3; k++)
			q[i].slot[k] = lookup_start(t, q[i].n[k], q[i].h[k]);
	for (int i = 0; i < nq; i++) {
		for (int k = 0; k < 3; k++) {
			q[i].id[k] = lookup_from(t, q[i].s[k], q[i].n[k], q[i].h[k], q[i].slot[k]);
			if (q[i].id[k] < 0)
				return log_err(ST_EFORMAT, "tokenizer.json: merge %u: '%.*s' is not in the vocabulary",
					       base + (uint32_t)i, (int)q[i].n[k], q[i].s[k]);
		}
		uint64_t key = ((uint64_t)(uint32_t)(q[i].id[0] + 1) << 32) | (uint32_t)q[i].id[1];
		__builtin_prefetch(&t->merges[(uint32_t)tok_pair_hash(key) & t->merge_mask]);
	}
	for (int i = 0; i < nq; i++)
		merge_insert(t, q[i].id[0], q[i].id[1], q[i].id[2], base + (uint32_t)i);
	return 0;
}

static int parse_merges(struct tokenizer *t, struct span sp)
{
	struct jp j = { sp.p, sp.p + sp.n };
	struct merge_q q[MERGE_BATCH];
	size_t quotes = 0;
	uint32_t rank = 0;
	char *buf = NULL, *tmp = NULL;
	int rc = ST_EFORMAT, done = 0;

	for (const char *c = sp.p; (c = memchr(c, '"', (size_t)(j.e - c))); c++)
		quotes++;
	/* every merge has at least two quotes: size the table for quotes / 2 at load <= 2/3 */
	t->merge_mask = pow2_at_least(quotes / 2 * 3 / 2 + 1) - 1;
	t->merges = calloc((size_t)t->merge_mask + 1, sizeof(*t->merges));
	/* 4 bits per merge slot (512 KB for Gemma, cache-resident): ~13 % false positives */
	t->bloom_mask = pow2_at_least((size_t)(t->merge_mask + 1) * 4) - 1;
	if (t->bloom_mask < 63)
		t->bloom_mask = 63;
	t->merge_bloom = calloc(((size_t)t->bloom_mask + 1) / 64, sizeof(uint64_t));
	buf = malloc(sp.n + 1);
	tmp = malloc(sp.n + 1);
	if (!t->merges || !t->merge_bloom || !buf || !tmp) {
		rc = ST_ENOMEM;
		goto out;
	}
	if (tokj_expect(&j, '[') < 0)
		goto out_bad;
	if (tokj_peek(&j) == ']')
		goto out_ok;
	while (!done) {
		size_t pos = 0, tpos = 0;
		int nq = 0;
		for (; nq < MERGE_BATCH && !done; nq++) {
			int c = tokj_peek(&j);
			size_t n, na, nb;
			char *a = buf + pos, *b;
			if (c == '"') {
				if (tokj_str(&j, a, &n) < 0)
					goto out_bad;
				b = memchr(a, ' ', n);
				if (!b || memchr(b + 1, ' ', n - (size_t)(b - a) - 1)) {
					rc = log_err(ST_EFORMAT, "tokenizer.json: merge %u '%.*s' is not two pieces",
						     rank + (uint32_t)nq, (int)n, a);
					goto out;
				}
				na = (size_t)(b - a);
				nb = n - na - 1;
				b++;
			} else if (c == '[') {
				j.p++;
				if (tokj_str(&j, a, &na) < 0 || tokj_expect(&j, ',') < 0 || tokj_str(&j, a + na, &nb) < 0 ||
				    tokj_expect(&j, ']') < 0)
					goto out_bad;
				b = a + na;
				n = na + nb;
			} else {
				goto out_bad;
			}
			pos += n;
			memcpy(tmp + tpos, a, na);
			memcpy(tmp + tpos + na, b, nb);
			q[nq].s[0] = a;
			q[nq].n[0] = (uint32_t)na;
			q[nq].s[1] = b;
			q[nq].n[1] = (uint32_t)nb;
			q[nq].s[2] = tmp + tpos;
			q[nq].n[2] = (uint32_t)(na + nb);
			tpos += na + nb;
			for (int k = 0; k < 3; k++) {
				q[nq].h[k] = tok_hash(q[nq].s[k], q[nq].n[k]);
				__builtin_prefetch(&t->vocab_slots[q[nq].h[k] & t->vocab_mask]);
			}
			c = tokj_peek(&j);
			j.p++;
			if (c == ']')
				done = 1;
			else if (c != ',')
				goto out_bad;
		}
		if ((rc = merge_batch(t, q, nq, rank)) < 0)
			goto out;
		rank += (uint32_t)nq;
	}
out_ok:
	rc = 0;
	goto out;
out_bad:
	rc = log_err(ST_EFORMAT, "tokenizer.json: malformed model.merges near byte %td of it (merge %u)",
		     j.p - sp.p, rank);
out:
	free(buf);
	free(tmp);
	return rc;
}

static cJSON *parse_small(struct span sp)
{
	return sp.p ? cJSON_ParseWithLength(sp.p, sp.n) : NULL;
}

/* "type":"Replace","pattern":{"String":from},"content":to -> from/to. */
static int parse_replace(const cJSON *o, char *from, size_t *nfrom, char *to, size_t *nto)
{
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(o, "pattern");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(pat, "String");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "content");
	if (!cJSON_IsString(s) || !cJSON_IsString(c) || strlen(s->valuestring) == 0 ||
	    strlen(s->valuestring) >= 16 || strlen(c->valuestring) >= 16)
		return -1;
	*nfrom = strlen(s->valuestring);
	memcpy(from, s->valuestring, *nfrom);
	*nto = strlen(c->valuestring);
	memcpy(to, c->valuestring, *nto);
	return 0;
}

static int is_type(const cJSON *o, const char *type)
{
	const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
	return cJSON_IsString(ty) && strcmp(ty->valuestring, type) == 0;
}

/*
 * Newer transformers write Gemma's pre_tokenizer as Split(" ",
 * MergedWithPrevious): after the normalizer has replaced every " " there is
 * nothing left for it to split, so it is a no-op and accepted.
 */
static int split_is_noop(const struct tokenizer *t, const cJSON *p)
{
	const cJSON *pat = cJSON_GetObjectItemCaseSensitive(p, "pattern");
	const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
	const cJSON *inv = cJSON_GetObjectItemCaseSensitive(p, "invert");
	if (!is_type(p, "Split") || !cJSON_IsString(str) || (inv && !cJSON_IsFalse(inv)))
		return 0;
	return t->norm_from_len == 1 && strlen(str->valuestring) == 1 &&
	       str->valuestring[0] == t->norm_from[0] && !memchr(t->norm_to, t->norm_from[0], t->norm_to_len);
}

static int parse_pipeline(struct tokenizer *t, struct span norm, struct span pretok, struct span dec)
{
	int rc = ST_EFORMAT;
	cJSON *n = parse_small(norm), *d = parse_small(dec), *p = parse_small(pretok);

	if (norm.p && !n)
		goto out_bad;
	if (n && !cJSON_IsNull(n)) {
		const cJSON *r = n;
		if (is_type(n, "Sequence")) {
			const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
			r = cJSON_GetArraySize(list) == 1 ? cJSON_GetArrayItem(list, 0) : NULL;
		}
		if (!r || !is_type(r, "Replace") ||
		    parse_replace(r, t->norm_from, &t->norm_from_len, t->norm_to, &t->norm_to_len) < 0) {
			rc = log_err(ST_EFORMAT, "tokenizer.json: unsupported normalizer (only a string Replace)");
			goto out;
		}
	}
	if ((pretok.p && !p) || (dec.p && !d))
		goto out_bad;
	if (p && !cJSON_IsNull(p) && !split_is_noop(t, p)) {
		rc = log_err(ST_EFORMAT, "tokenizer.json: unsupported pre_tokenizer (only null, or a Split on "
			     "the one-byte string the normalizer replaces)");
		goto out;
	}
	/* decoder: Sequence [Replace, ByteFallback, Fuse] */
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
	if (!d || !is_type(d, "Sequence") || cJSON_GetArraySize(list) != 3 ||
	    !is_type(cJSON_GetArrayItem(list, 0), "Replace") ||
	    parse_replace(cJSON_GetArrayItem(list, 0), t->dec_from, &t->dec_from_len, t->dec_to,
			  &t->dec_to_len) < 0 ||
	    !is_type(cJSON_GetArrayItem(list, 1), "ByteFallback") ||
	    !is_type(cJSON_GetArrayItem(list, 2), "Fuse") || t->dec_to_len > t->dec_from_len) {
		rc = log_err(ST_EFORMAT, "tokenizer.json: unsupported decoder "
			     "(only Sequence [Replace, ByteFallback, Fuse])");
		goto out;
	}
	rc = 0;
	goto out;
out_bad:
	rc = log_err(ST_EFORMAT, "tokenizer.json: malformed normalizer or decoder");
out:
	cJSON_Delete(n);
	cJSON_Delete(d);
	cJSON_Delete(p);
	return rc;
}

static int parse_model_fields(struct tokenizer *t, const struct span *keys, const struct span *vals, int n)
{
	int rc = ST_EFORMAT;
	for (int i = 0; i < n; i++) {
		if (tokj_span_is(keys[i], "vocab") || tokj_span_is(keys[i], "merges"))
			continue;
		cJSON *v = parse_small(vals[i]);
		const char *bad = NULL;
		if (!v) {
			bad = "malformed";
		} else if (tokj_span_is(keys[i], "type")) {
			if (!cJSON_IsString(v) || strcmp(v->valuestring, "BPE") != 0)
				bad = "only BPE";
		} else if (tokj_span_is(keys[i], "dropout")) {
			if (!cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0.0))
				bad = "dropout is not supported";
		} else if (tokj_span_is(keys[i], "continuing_subword_prefix") ||
			   tokj_span_is(keys[i], "end_of_word_suffix")) {
			if (!cJSON_IsNull(v) && !(cJSON_IsString(v) && v->valuestring[0] == 0))
				bad = "not supported";
		} else if (tokj_span_is(keys[i], "ignore_merges")) {
			if (!cJSON_IsFalse(v))
				bad = "only false";
		} else if (tokj_span_is(keys[i], "byte_fallback") || tokj_span_is(keys[i], "fuse_unk")) {
			if (!cJSON_IsBool(v))
				bad = "not a boolean";
			else if (tokj_span_is(keys[i], "byte_fallback"))
				t->byte_fallback = cJSON_IsTrue(v);
			else
				t->fuse_unk = cJSON_IsTrue(v);
		} else if (tokj_span_is(keys[i], "unk_token")) {
			if (cJSON_IsString(v)) {
				t->unk_id = tok_lookup(t, v->valuestring, strlen(v->valuestring));
				if (t->unk_id < 0)
					bad = "not in the vocabulary";
			} else if (!cJSON_IsNull(v)) {
				bad = "not a string";
			}
		}
		cJSON_Delete(v);
		if (bad) {
			rc = log_err(ST_EFORMAT, "tokenizer.json: model.%.*s: %s", (int)keys[i].n, keys[i].p, bad);
			return rc;
		}
	}
	return 0;
}

static int trie_new(struct tokenizer *t, int *cap, uint8_t byte)
{
	if (t->n_trie == *cap) {
		int nc = *cap ? *cap * 2 : 256;
		struct tok_trie_node *nn = realloc(t->trie, (size_t)nc * sizeof(*nn));
		if (!nn)
			return -1;
		t->trie = nn;
		*cap = nc;
	}
	struct tok_trie_node *x = &t->trie[t->n_trie];
	x->child = x->sibling = x->id = -1;
	x->byte = byte;
	return t->n_trie++;
}

static int trie_add(struct tokenizer *t, int *cap, const char *s, size_t n, int id)
{
	int node = -1;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)s[i];
		int next;
		if (node < 0) {
			next = t->trie_root[b];
			if (next < 0) {
				if ((next = trie_new(t, cap, b)) < 0)
					return ST_ENOMEM;
				t->trie_root[b] = next;
			}
		} else {
			next = t->trie[node].child;
			while (next >= 0 && t->trie[next].byte != b)
				next = t->trie[next].sibling;
			if (next < 0) {
				if ((next = trie_new(t, cap, b)) < 0)
					return ST_ENOMEM;
				t->trie[next].sibling = t->trie[node].child;
				t->trie[node].child = next;
			}
		}
		node = next;
	}
	if (node >= 0)
		t->trie[node].id = id;
	return 0;
}

static int parse_added(struct tokenizer *t, struct span sp)
{
	int rc = 0, cap = 0, i = 0;
	cJSON *a = parse_small(sp), *x;

	if (sp.p && !cJSON_IsArray(a)) {
		cJSON_Delete(a);
		return log_err(ST_EFORMAT, "tokenizer.json: added_tokens is not an array");
	}
	cJSON_ArrayForEach(x, a) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(x, "id");
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(x, "content");
		const char *flags[] = { "single_word", "lstrip", "rstrip", "normalized" };
		if (!cJSON_IsNumber(id) || !cJSON_IsString(content) || id->valuedouble < 0 ||
		    id->valuedouble >= t->n_vocab || content->valuestring[0] == 0) {
			rc = log_err(ST_EFORMAT, "tokenizer.json: added_tokens[%d]: bad id or content", i);
			break;
		}
		int tid = (int)id->valuedouble;
		const char *c = content->valuestring;
		size_t n = strlen(c);
		if (t->piece_len[tid] != n || memcmp(t->pieces + t->piece_off[tid], c, n) != 0) {
			rc = log_err(ST_EFORMAT, "tokenizer.json: added_tokens[%d] '%s' differs from vocabulary "
				     "piece %d", i, c, tid);
			break;
		}
		for (size_t f = 0; f < ARRAY_SIZE(flags); f++) {
			if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, flags[f]))) {
				rc = log_err(ST_EFORMAT, "tokenizer.json: added_tokens[%d] '%s': %s=true is not "
					     "supported", i, c, flags[f]);
				goto out;
			}
		}
		t->special[tid] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(x, "special"));
		if ((rc = trie_add(t, &cap, c, n, tid)) < 0)
			break;
		i++;
	}
out:
	cJSON_Delete(a);
	return rc;
}

/* Rust's u8::from_str_radix(s, 16) on two characters: optional '+', hex digits. */
static int hex_byte(const char *s)
{
	int v = 0;
	for (int i = 0; i < 2; i++) {
		char c = s[i];
		int d;
		if (i == 0 && c == '+') {
			continue;
		} else if (c >= '0' && c <= '9') {
			d = c - '0';
		} else if (c >= 'a' && c <= 'f') {
			d = c - 'a' + 10;
		} else if (c >= 'A' && c <= 'F') {
			d = c - 'A' + 10;
		} else {
			return -1;
		}
		v = v * 16 + d;
	}
	return v;
}

static int build_tables(struct tokenizer *t)
{
	char buf[8];
	t->byte_of = malloc((size_t)t->n_vocab * sizeof(*t->byte_of));
	t->bmp_id = malloc(65536 * sizeof(*t->bmp_id));
	if (!t->byte_of || !t->bmp_id)
		return ST_ENOMEM;
	for (int id = 0; id < t->n_vocab; id++) {
		const char *p = t->pieces + t->piece_off[id];
		t->byte_of[id] = -1;
		if (t->piece_len[id] == 6 && memcmp(p, "<0x", 3) == 0 && p[5] == '>')
			t->byte_of[id] = (int16_t)hex_byte(p + 3);
	}
	for (int b = 0; b < 256; b++) {
		snprintf(buf, sizeof(buf), "<0x%02X>", b);
		t->byte_id[b] = tok_lookup(t, buf, 6);
	}
	for (uint32_t cp = 0; cp < 65536; cp++) {
		t->bmp_id[cp] = -1;
		if (cp >= 0xd800 && cp < 0xe000)
			continue;
		size_t n = tok_utf8_put(buf, cp);
		t->bmp_id[cp] = tok_lookup(t, buf, n);
	}
	t->bos_id = tok_lookup(t, "<bos>", 5);
	t->eos_id = tok_lookup(t, "<eos>", 5);
	t->pad_id = tok_lookup(t, "<pad>", 5);
	return 0;
}

int tok_create(const char *json, size_t len, struct tokenizer **out)
{
	struct span keys[32], vals[32], mkeys[32], mvals[32];
	struct jp j = { json, json + len };
	int n, nm, rc;
	struct tokenizer *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return ST_ENOMEM;
	if (len > (1u << 30)) {	/* keeps every table size and offset in 32 bits */
		free(t);
		return log_err(ST_EFORMAT, "tokenizer.json: %zu bytes is too large", len);
	}
	t->unk_id = -1;
	memset(t->trie_root, 0xff, sizeof(t->trie_root));
	if (tokj_members(&j, keys, vals, 32, &n) < 0) {
		rc = log_err(ST_EFORMAT, "tokenizer.json: malformed JSON near byte %td", j.p - json);
		goto out_free;
	}
	struct span model = tokj_find(keys, vals, n, "model");
	struct jp jm = { model.p, model.p ? model.p + model.n : NULL };	/* NULL + 0 is undefined */
	if (!model.p || tokj_members(&jm, mkeys, mvals, 32, &nm) < 0) {
		rc = log_err(ST_EFORMAT, "tokenizer.json: no model object");
		goto out_free;
	}
	struct span vocab = tokj_find(mkeys, mvals, nm, "vocab");
	struct span merges = tokj_find(mkeys, mvals, nm, "merges");
	if (!vocab.p || !merges.p) {
		rc = log_err(ST_EFORMAT, "tokenizer.json: model has no vocab or merges");
		goto out_free;
	}
	if ((rc = parse_vocab(t, vocab)) < 0 || (rc = parse_model_fields(t, mkeys, mvals, nm)) < 0 ||
	    (rc = parse_merges(t, merges)) < 0)
		goto out_free;
	t->special = calloc((size_t)t->n_vocab, 1);
	if (!t->special) {
		rc = ST_ENOMEM;
		goto out_free;
	}
	if ((rc = parse_added(t, tokj_find(keys, vals, n, "added_tokens"))) < 0 ||
	    (rc = parse_pipeline(t, tokj_find(keys, vals, n, "normalizer"),
				 tokj_find(keys, vals, n, "pre_tokenizer"),
				 tokj_find(keys, vals, n, "decoder"))) < 0 ||
	    (rc = build_tables(t)) < 0)
		goto out_free;
	*out = t;
	return 0;
out_free:
	tok_destroy(t);
	return rc;
}

int tok_create_from_file(const char *path, struct tokenizer **out)
{
	char *buf;
	size_t len;
	int rc;

	*out = NULL;
	if ((rc = read_file(path, 1u << 30, &buf, &len)) < 0)
		return log_err(rc, "cannot read tokenizer '%s'", path);
	rc = tok_create(buf, len, out);
	free(buf);
	return rc;
}

void tok_destroy(struct tokenizer *t)
{
	if (!t)
		return;
	free(t->pieces);
	free(t->piece_off);
	free(t->piece_len);
	free(t->byte_of);
	free(t->special);
	free(t->vocab_slots);
	free(t->merges);
	free(t->merge_bloom);
	free(t->bmp_id);
	free(t->trie);
	free(t);
}
