/*
 * cpu_sample.c - the CPU backend's sample op: kernels/sample.h's pipeline,
 * rows spread over the pool's threads, each thread with its own scratch.
 *
 * This is the engine's sampler on the CPU backend and the reference the
 * CUDA op (kernels/cuda/cu_sample.cu) is checked against: the same keys,
 * fixed-point weights, targets and digit choice (sample.h), so both pick
 * the same entry for the same histograms (tests/kernels/test_sample.c
 * checks it against an in-test sort-based reference and against the
 * previous one-loop-per-digit op). Each row's keys and weights are
 * computed once into a candidate list (an expf only for entries min_p and
 * top_k keep, none for weights that truncate to 0); each radix pass
 * histograms the current list and keeps the chosen digit's entries, so
 * later passes touch only the survivors. Greedy rows take one argmax pass;
 * top_k and top-N logprobs choose their first digit from the row and list
 * only that digit's entries.
 * The scratch (two lists of vocab entries per thread) is allocated on the
 * first call and kept in the context; logits rows and pair orig values
 * are written.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "kernels/cpu/cpu.h"
#include "kernels/sample.h"

struct smp_found {
	uint64_t key;
	uint64_t cum;		/* running mass up to and including the entry */
};

/*
 * One entry of a candidate list: its key in the select's order and its
 * weight (never 0: entries of weight 0 are never listed). A list holds
 * exactly the entries the old per-row loops counted, so every histogram
 * (an exact integer sum, mod 2^64 in any order) and so every digit chosen
 * is the same.
 */
struct smp_ent {
	uint64_t key, w;
};

/* The answer of a finished select s among the entries of list e[0, n). */
static struct smp_found sel_found(const struct smp_sel *s, const struct smp_ent *e, int n)
{
	struct smp_found f = { SMP_KEY_MAX, 0 };

	for (int i = 0; i < n; i++)
		if (smp_sel_found(s, e[i].key)) {
			f.key = e[i].key;
			f.cum = s->before + e[i].w;
			break;
		}
	return f;
}

/*
 * smp_key without branches (key_hi: its upper half): the sign test of
 * smp_key is a coin flip on logits and mispredicts on every other entry. Same value for every float
 * (-0 as +0, NaN last; tests/kernels/test_sample.c compares the op with
 * the previous one on such rows).
 */
static inline uint32_t key_hi(float l)
{
	uint32_t u, o;

	memcpy(&u, &l, sizeof(u));
	u = u == 0x80000000u ? 0 : u;
	o = u ^ ((uint32_t)((int32_t)u >> 31) | 0x80000000u);	/* negative: ~u; else u | sign */
	o = l != l ? 0 : o;
	return ~o;
}

static inline uint64_t key_of(float l, int id)
{
	return ((uint64_t)key_hi(l) << 32) | (uint32_t)id;
}

/*
 * The histogram of digit (key >> sh) & 255 over e[0, n): mass hw, entries
 * hc. Logits crowd into few digits, so long lists count into 4 tables
 * (no chain of increments of one counter) summed at the end: integer
 * sums, the same in any order.
 */
static void histogram(const struct smp_ent *e, int n, int sh, uint64_t *hw, uint32_t *hc)
{
	uint64_t w4[4][256];
	uint32_t c4[4][256];
	int i = 0;

	memset(hw, 0, 256 * sizeof(*hw));
	memset(hc, 0, 256 * sizeof(*hc));
	if (n < 2048) {
		for (; i < n; i++) {
			int d = (int)(e[i].key >> sh) & 255;
			hw[d] += e[i].w;
			hc[d]++;
		}
		return;
	}
	memset(w4, 0, sizeof(w4));
	memset(c4, 0, sizeof(c4));
	for (; i + 4 <= n; i += 4)
		for (int u = 0; u < 4; u++) {
			int d = (int)(e[i + u].key >> sh) & 255;
			w4[u][d] += e[i + u].w;
			c4[u][d]++;
		}
	for (; i < n; i++) {
		int d = (int)(e[i].key >> sh) & 255;
		w4[0][d] += e[i].w;
		c4[0][d]++;
	}
	for (int d = 0; d < 256; d++) {
		hw[d] = w4[0][d] + w4[1][d] + w4[2][d] + w4[3][d];
		hc[d] = c4[0][d] + c4[1][d] + c4[2][d] + c4[3][d];
	}
}

/*
 * Radix select s (from its current digit on) over list e[0, n): the first
 * entry in key order whose running mass reaches target. Each pass
 * histograms the current list, then keeps the entries of the chosen digit
 * in tmp (stable; in place once the list is tmp), so later passes touch
 * only the survivors. hw0, hc0: the first pass's histogram when known. e is not written unless it is tmp. With below, the
 * entries before the answer in key order (those of smaller digits, then
 * the answer's list up to it) are appended to below[*nb...].
 */
static struct smp_found select_list(struct smp_sel *s, const struct smp_ent *e, int n,
				    struct smp_ent *tmp, uint64_t target, struct smp_ent *below,
				    int *nb, const uint64_t *hw0, const uint32_t *hc0)
{
	struct smp_found f;
	const struct smp_ent *cur = e;
	uint64_t hw[256];
	uint32_t hc[256];

	for (;;) {
		int sh = s->shift, d, j = 0;

		if (hw0) {	/* the first pass's histogram, counted while the list was built */
			memcpy(hw, hw0, sizeof(hw));
			memcpy(hc, hc0, sizeof(hc));
			hw0 = NULL;
		} else {
			histogram(cur, n, sh, hw, hc);
		}
		if (smp_sel_pick(s, hw, hc, target))
			break;
		d = (int)(s->prefix >> sh) & 255;
		if (hc[d] == (uint32_t)n)
			continue;	/* every entry survives: the list is unchanged */
		for (int i = 0; i < n; i++) {
			int di = (int)(cur[i].key >> sh & 255);
			if (di == d)
				tmp[j++] = cur[i];
			else if (below && di < d)
				below[(*nb)++] = cur[i];
		}
		cur = tmp;
		n = j;
	}
	f = sel_found(s, cur, n);
	if (below)
		for (int i = 0; i < n; i++)
			if (cur[i].key <= f.key)
				below[(*nb)++] = cur[i];
	return f;
}

/* Max-heap of keys h[0, n): the new last entry up, the root down. */
static void heap_up(uint64_t *h, int i)
{
	while (i > 0 && h[(i - 1) / 2] < h[i]) {
		uint64_t t = h[i];
		h[i] = h[(i - 1) / 2];
		h[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static void heap_down(uint64_t *h, int n)
{
	for (int i = 0;;) {
		int c = 2 * i + 1;
		uint64_t t;
		if (c >= n)
			return;
		if (c + 1 < n && h[c + 1] > h[c])
			c++;
		if (h[i] >= h[c])
			return;
		t = h[i];
		h[i] = h[c];
		h[c] = t;
		i = c;
	}
}

#define TOP_HEAP_MAX 1024	/* top_keys keeps a heap of up to this many keys */

/*
 * The first `target` entries in sorted order (smp_key) among those with
 * l >= thr (thr -inf: every entry but NaN), into p with weight 1: returns
 * their number (fewer when fewer are counted). That is what a count
 * select for target finds and the entries up to it.
 * Small targets: one pass with a heap of the best keys so far; an entry
 * whose logit is below the heap's worst has a larger key, so blocks of 16
 * such are skipped by float compares alone. Large targets: a radix select,
 * its first digit chosen from the row itself; the entries before that
 * digit (fewer than target) go to p, those in it to q for the remaining
 * passes, which add to p the rest up to the answer.
 */
static int top_keys(const float *l, int V, float thr, int target, struct smp_ent *p,
		    struct smp_ent *q)
{
	if (target <= TOP_HEAP_MAX) {
		uint64_t h[TOP_HEAP_MAX];
		int n = 0, i = 0;
		float worst;

		for (; i < V && n < target; i++)
			if (l[i] >= thr) {
				h[n++] = key_of(l[i], i);
				heap_up(h, n - 1);
			}
		worst = n > 0 ? l[(uint32_t)h[0]] : thr;	/* the heap's largest key */
		while (i < V) {
			int e = V - i < 16 ? V : i + 16, any = 0;
			for (int j = i; j < e; j++)
				any |= l[j] >= worst;
			for (int j = i; any && j < e; j++) {
				uint64_t k;
				if (!(l[j] >= worst) || (k = key_of(l[j], j)) >= h[0])
					continue;
				h[0] = k;
				heap_down(h, n);
				worst = l[(uint32_t)h[0]];
			}
			i = e;
		}
		for (int j = 0; j < n; j++)
			p[j] = (struct smp_ent){ h[j], 1 };
		return n;
	}

	struct smp_sel s;
	uint64_t hw[256];
	uint32_t hc[256];
	int np = 0, nq = 0, d1, done;

	memset(hc, 0, sizeof(hc));
	smp_sel_init(&s, 64);
	for (int i = 0; i < V; i++)
		if (l[i] >= thr)
			hc[key_of(l[i], i) >> 56]++;
	for (int d = 0; d < 256; d++)
		hw[d] = hc[d];
	done = smp_sel_pick(&s, hw, hc, (uint64_t)target);
	d1 = (int)(s.prefix >> 56);
	for (int i = 0; i < V; i++) {
		if (!(l[i] >= thr))
			continue;
		uint64_t k = key_of(l[i], i);
		int d = (int)(k >> 56);
		if (d < d1)
			p[np++] = (struct smp_ent){ k, 1 };
		else if (d == d1)
			q[nq++] = (struct smp_ent){ k, 1 };
	}
	if (done) {
		for (int i = 0; i < nq; i++)
			p[np++] = q[i];	/* the one entry */
	} else {
		select_list(&s, q, nq, q, (uint64_t)target, p, &np, NULL, NULL);
	}
	return np;
}

/* The top n entries by (logit desc, id asc) into o->top_* (raw logprobs). */
static void top_logprobs(const float *l, int V, int n, double lse, struct be_sample_out *o,
			 struct smp_ent *p, struct smp_ent *q)
{
	uint64_t keys[BE_SAMPLE_MAX_TOP];
	int got = top_keys(l, V, -INFINITY, n, p, q);

	for (int i = 0; i < got; i++)
		keys[i] = p[i].key;
	for (int i = 1; i < got; i++)	/* insertion sort, n <= 20 */
		for (int j = i; j > 0 && keys[j] < keys[j - 1]; j--) {
			uint64_t t = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	for (int i = 0; i < got; i++) {
		int id = (int)(uint32_t)keys[i];
		o->top_id[i] = id;
		o->top_lp[i] = (float)(l[id] - lse);
	}
	o->n_top = got;
}

/*
 * The first entry of the sorted order (largest logit, ties to the lower id,
 * NaN never; -0 equals +0): the key order of smp_key, by float compares in
 * 8 independent lanes so the pass runs at memory speed. -1 when no entry
 * is above -inf.
 */
static int row_argmax(const float *l, int V)
{
	float m[8];
	int id[8], i = 0, best = -1;
	float bm = -INFINITY;

	for (int j = 0; j < 8; j++) {
		m[j] = -INFINITY;
		id[j] = -1;
	}
	for (; i + 8 <= V; i += 8)
		for (int j = 0; j < 8; j++) {
			int gt = l[i + j] > m[j];
			m[j] = gt ? l[i + j] : m[j];
			id[j] = gt ? i + j : id[j];
		}
	for (; i < V; i++)
		if (l[i] > m[0]) {
			m[0] = l[i];
			id[0] = i;
		}
	for (int j = 0; j < 8; j++)
		if (id[j] >= 0 && (m[j] > bm || (m[j] == bm && id[j] < best))) {
			bm = m[j];
			best = id[j];
		}
	return best;
}

/*
 * smp_weight(l, m, inv_t, thr) without the expf where it cannot matter:
 * below x = -28, expf(x) < 2^-40 and the fixed-point weight truncates to 0.
 */
static inline uint64_t weight(float l, float m, float inv_t, float thr)
{
	float x;

	if (!(l >= thr))
		return 0;
	x = (l - m) * inv_t;
	return x < -28.0f ? 0 : smp_fx(expf(x));
}

/* Appends w to *z; returns 1 when the sum wrapped. */
static inline int add_mass(uint64_t *z, uint64_t w)
{
	uint64_t s = *z + w;
	int wrapped = s < *z;
	*z = s;
	return wrapped;
}

/*
 * The random path (step 5 of sample.h) for row l with argmax amax: the
 * kept set as a candidate list in a (top_k, else every weighted entry),
 * the top_p select over it, then the draw over the entries it keeps;
 * b is the selects' scratch. Returns the chosen id.
 */
static int draw_row(const float *l, int V, const struct be_sample_row *r, int amax,
		    struct smp_ent *a, struct smp_ent *b)
{
	float m = l[amax], inv_t = (float)(1.0 / r->temperature);
	float thr = smp_min_p_thr(m, r->temperature, r->min_p);
	int k_on = r->top_k > 0 && r->top_k < V;
	int sorted = k_on || r->top_p < 1.0;
	int n = 0, wrapped = 0;
	uint64_t z = 0, w, hw[256];
	uint32_t hc[256];
	struct smp_sel s;
	struct smp_found f;

	memset(hw, 0, sizeof(hw));
	memset(hc, 0, sizeof(hc));
	if (k_on) {
		/* top_k over the min_p set (count select), then the weights of what it keeps */
		/* (when top_k keeps everything, top_keys returns everything: no cut) */
		int nk = top_keys(l, V, thr, r->top_k, a, b);

		for (int i = 0; i < nk; i++) {
			w = weight(l[(uint32_t)a[i].key], m, inv_t, thr);
			if (w) {
				a[n++] = (struct smp_ent){ a[i].key, w };
				wrapped |= add_mass(&z, w);
				hw[a[i].key >> 56] += w;
				hc[a[i].key >> 56]++;
			}
		}
	} else {
		/* every entry's weight, by id (in b), the total and the first digit's histogram */
		uint64_t *wd = (uint64_t *)b, target;

		for (int i = 0; i < V; i++) {
			wd[i] = w = weight(l[i], m, inv_t, thr);
			if (!w)
				continue;
			wrapped |= add_mass(&z, w);
			if (sorted) {
				uint32_t d = key_hi(l[i]) >> 24;
				hw[d] += w;
				hc[d]++;
			}
		}
		if (!sorted) {
			target = smp_draw_target(r->u, z);
			if (!wrapped) {	/* id order, exact running sums: the first id reaching target */
				uint64_t acc = 0;
				int last = -1;
				for (int i = 0; i < V; i++) {
					if (!wd[i])
						continue;
					if (acc + wd[i] >= target)
						return i;
					acc += wd[i];
					last = i;
				}
				return last;
			}
			for (int i = 0; i < V; i++)
				if (wd[i])
					a[n++] = (struct smp_ent){ (uint64_t)(uint32_t)i, wd[i] };
			smp_sel_init(&s, 32);
			return (int)(uint32_t)select_list(&s, a, n, b, target, NULL, NULL, NULL,
							  NULL).key;
		}
		target = smp_top_p_target(r->top_p, z);
		if (!wrapped) {
			/*
			 * Exact running sums: the top_p cut and the draw (whose target
			 * is at most the nucleus's mass) both lie at or before the
			 * first digit the top_p select picks, so only the entries of
			 * digits up to it are listed, and the rest never matter.
			 */
			struct smp_sel sp;
			int dp;

			smp_sel_init(&sp, 64);
			smp_sel_pick(&sp, hw, hc, target);
			dp = (int)(sp.prefix >> 56);
			for (int i = 0; i < V; i += 16) {	/* blocks of 16: most hold none */
				int e = V - i < 16 ? V : i + 16, any = 0;
				for (int j = i; j < e; j++)
					any |= (int)(key_hi(l[j]) >> 24) <= dp;
				for (int j = i; any && j < e; j++)
					if (wd[j] && (int)(key_hi(l[j]) >> 24) <= dp)
						a[n++] = (struct smp_ent){ key_of(l[j], j), wd[j] };
			}
			smp_sel_init(&s, 64);
			f = select_list(&s, a, n, b, target, NULL, NULL, hw, hc);
			for (int d = dp + 1; d < 256; d++)
				hw[d] = hc[d] = 0;
			smp_sel_init(&s, 64);
			f = select_list(&s, a, n, b, smp_draw_target(r->u, f.cum), NULL, NULL, hw,
					hc);
			return (int)(uint32_t)f.key;
		}
		for (int i = 0; i < V; i++)
			if (wd[i])
				a[n++] = (struct smp_ent){ key_of(l[i], i), wd[i] };
	}
	if (r->top_p < 1.0) {
		smp_sel_init(&s, 64);
		f = select_list(&s, a, n, b, smp_top_p_target(r->top_p, z), NULL, NULL, hw, hc);
		z = f.cum;
		if (wrapped) {	/* keep the nucleus: key <= the cut */
			int j = 0;
			for (int i = 0; i < n; i++)
				if (a[i].key <= f.key)
					a[j++] = a[i];
			n = j;
			histogram(a, n, 56, hw, hc);
		}
		/*
		 * Else the draw's target is at most the nucleus's mass, so the
		 * first entry reaching it (running sums exact) lies in the
		 * nucleus whether or not the rest is listed: no filter.
		 */
	}
	smp_sel_init(&s, 64);
	f = select_list(&s, a, n, b, smp_draw_target(r->u, z), NULL, NULL, hw, hc);
	return (int)(uint32_t)f.key;
}

static void sample_one(float *l, int V, const struct be_sample_row *r,
		       struct be_sample_pair *pairs, const uint32_t *mask, struct be_sample_out *o,
		       struct smp_ent *a, struct smp_ent *b)
{
	struct be_sample_pair *pr = pairs + r->pair_off;
	double lse = 0;
	int amax, tok;

	o->token = -1;
	o->logprob = 0;
	o->n_top = 0;
	if (r->n_logprobs >= 0) {
		float m0 = -INFINITY;
		double sum = 0;
		for (int i = 0; i < V; i++)
			m0 = l[i] > m0 ? l[i] : m0;
		for (int i = 0; i < V; i++)
			sum += expf(l[i] - m0);
		lse = m0 + log(sum);
		if (r->n_logprobs > 0)
			top_logprobs(l, V, r->n_logprobs < V ? r->n_logprobs : V, lse, o, a, b);
	}
	for (int j = 0; j < r->n_pairs; j++) {
		int t = pr[j].token;
		if (t < 0 || t >= V)
			continue;
		pr[j].orig = l[t];
		l[t] = smp_pair_apply(l[t], &pr[j], r);
	}
	if (mask)	/* the dense allow mask: -inf like a masked pair (their order is moot) */
		for (int w = 0; w < BE_MASK_WORDS(V); w++) {
			uint32_t m = mask[w];
			int e = V - w * 32 < 32 ? V - w * 32 : 32;
			if (m == 0xffffffffu)
				continue;
			for (int k = 0; k < e; k++)
				if (!((m >> k) & 1))
					l[w * 32 + k] = -INFINITY;
		}
	amax = row_argmax(l, V);
	if (amax < 0)
		return;		/* nothing above -inf: an error for the caller */
	if (r->temperature < BE_SAMPLE_GREEDY_EPS)
		tok = amax;
	else
		tok = draw_row(l, V, r, amax, a, b);
	o->token = tok;
	if (r->n_logprobs >= 0) {
		float raw = l[tok];
		for (int j = 0; j < r->n_pairs; j++)
			if (pr[j].token == tok)
				raw = pr[j].orig;
		o->logprob = (float)(raw - lse);
	}
}

struct sample_job {
	struct cpu_ctx *c;
	struct be_sample_out *out;
	float *logits;
	const struct be_sample_row *rows;
	struct be_sample_pair *pairs;
	const uint32_t *masks;
	int vocab, n_rows;
	_Atomic int next;	/* next row to take */
};

/* Task `slot` takes rows until none is left, with the slot's own scratch. */
static void sample_task(void *arg, int slot)
{
	struct sample_job *j = arg;
	struct smp_ent *a = (struct smp_ent *)j->c->smp_buf + (size_t)slot * 2 * j->c->smp_cap;
	struct smp_ent *b = a + j->c->smp_cap;
	int i;

	while ((i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed)) < j->n_rows)
		sample_one(j->logits + (size_t)i * j->vocab, j->vocab, &j->rows[i], j->pairs,
			   j->masks && j->rows[i].has_mask ?
			   j->masks + (size_t)i * BE_MASK_WORDS(j->vocab) : NULL, &j->out[i], a, b);
}

/*
 * The context's scratch: two lists of vocab entries per thread, allocated
 * on the first call for a vocabulary this large and kept (cpu_destroy
 * frees it).
 */
static int reserve(struct cpu_ctx *c, int vocab)
{
	void *p;

	if (c->smp_cap >= (size_t)vocab)
		return 0;
	p = malloc((size_t)c->n_threads * 2 * (size_t)vocab * sizeof(struct smp_ent));
	if (!p)
		return ST_ENOMEM;
	free(c->smp_buf);
	c->smp_buf = p;
	c->smp_cap = (size_t)vocab;
	return 0;
}

int cpu_sample(void *ctx, struct be_sample_out *out, float *logits,
	       const struct be_sample_row *rows, struct be_sample_pair *pairs,
	       const uint32_t *masks, int n_rows, int vocab)
{
	struct cpu_ctx *c = ctx;
	struct sample_job j = { c, out, logits, rows, pairs, masks, vocab, n_rows, 0 };
	int st;

	if (n_rows < 0 || vocab <= 0)
		return ST_EINVAL;
	for (int i = 0; i < n_rows; i++)
		if (rows[i].n_logprobs > BE_SAMPLE_MAX_TOP || rows[i].n_pairs < 0 ||
		    rows[i].pair_off < 0 || (rows[i].has_mask && !masks))
			return ST_EINVAL;
	if (n_rows == 0)
		return 0;
	st = reserve(c, vocab);
	if (st < 0)
		return st;
	cpu_parallel(c, n_rows < c->n_threads ? n_rows : c->n_threads, sample_task, &j);
	return 0;
}
