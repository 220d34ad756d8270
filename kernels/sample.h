/*
 * sample.h - sampling on the device: the per-row inputs and outputs of the
 * be_ops.sample op, and the arithmetic both backends share.
 *
 * The op turns each row of logits (n_rows, vocab) into one token id, so a
 * decode step sends only ids (and the optional logprobs) back over PCIe.
 * It is the engine's one sampling algorithm (vLLM v1's order):
 *   1. raw logprobs (when asked): log-softmax of the row as the forward
 *      returns it (after Gemma's final soft-cap, before anything below);
 *   2. mask: masked ids get -inf (EOS / stop ids before min_tokens), and
 *      with the row's dense allow mask (structured outputs: masks[row],
 *      one bit per id, BE_MASK_WORDS(vocab) words) every id whose bit is
 *      clear; then logit_bias: l + bias (OpenAI's, in [-100, 100]; vLLM
 *      applies its logit-bias logits processor before the penalties too);
 *   3. penalties: repetition (HF/vLLM: each distinct id of prompt+output,
 *      l > 0 ? l / r : l * r), then frequency and presence (OpenAI: over
 *      output ids, l - f * count - p);
 *   4. temperature < BE_SAMPLE_GREEDY_EPS: greedy argmax, ties to the
 *      lower id; done;
 *   5. weights exp((l - max) / T); min_p keeps l >= max + T ln(min_p);
 *      top_k keeps the best k of those; top_p keeps the shortest sorted
 *      prefix holding top_p of their mass; one draw with the uniform u the
 *      engine drew from the request's rng (engine/sampling.c).
 * Orders: the kept set is a prefix of the rows sorted by (logit desc, id
 * asc); a draw walks that sorted order when top_k or top_p is active and
 * plain id order otherwise.
 * kernels/cpu/cpu_sample.c is the reference; kernels/cuda/cu_sample.cu its
 * twin; tests/kernels/test_sample.c checks the CPU op against a plain
 * sort-based statement of the steps above.
 *
 * How, without sorting V entries: every selection ("the first entry, in
 * key order, whose running mass reaches T") is an MSB-first radix select
 * over a 64-bit key - 8-bit digits, one histogram pass per digit, stopping
 * early once the chosen digit holds a single entry. Keys: (~ordered(logit)
 * << 32 | id) for the sorted order, the id alone for id order. Masses are
 * integers: w = exp((l - max) / T) in [0, 1] as fixed point with 40
 * fractional bits (smp_fx), so histogram sums are exact and the same in
 * any summation order - a GPU's atomics give the CPU's result bit for bit.
 * Probabilities below 2^-40 of the top token's count as 0.
 *
 * What the engine prepares (engine/sampling.c, smp_row_build): per row a struct
 * be_sample_row; per row a list of distinct token ids with what to do to
 * them (struct be_sample_pair: masked, seen in prompt+output, count in the
 * output) - the whole history never crosses PCIe, only its distinct ids.
 *
 * The functions below are plain C for the host and __host__ __device__
 * for nvcc: kernels/cpu/cpu_sample.c and kernels/cuda/cu_sample.cu call
 * the same key, weight, target and digit code.
 */
#ifndef GR_SAMPLE_H
#define GR_SAMPLE_H

#include <math.h>
#include <stdint.h>

#define BE_SAMPLE_MAX_TOP 20		/* = ENG_MAX_LOGPROBS */
#define BE_SAMPLE_GREEDY_EPS 1e-5	/* temperatures below this are greedy (vLLM) */

/* What to do to one distinct token of a row (pair list built by the engine). */
enum { BE_PAIR_MASK = 1, BE_PAIR_SEEN = 2 };

struct be_sample_pair {
	int32_t token;
	int32_t count;		/* occurrences in the output (frequency / presence) */
	int32_t flags;		/* BE_PAIR_MASK: -inf this step; BE_PAIR_SEEN: in prompt+output */
	float orig;		/* written by the op: the raw logit, for the chosen logprob */
	float bias;		/* logit_bias: added after the mask, before the penalties (0: none) */
};

struct be_sample_row {
	double temperature;	/* < BE_SAMPLE_GREEDY_EPS: greedy */
	double top_p;		/* 1: off */
	double min_p;		/* 0: off */
	double freq, pres;	/* frequency and presence penalties (0: off) */
	double u;		/* the draw, uniform in [0, 1) (unused when greedy) */
	float rep;		/* repetition penalty (1: off) */
	int32_t top_k;		/* <= 0 or >= vocab: off */
	int32_t n_logprobs;	/* -1: none; else the top n_logprobs (<= BE_SAMPLE_MAX_TOP) */
	int32_t pair_off;	/* this row's pairs: pairs[pair_off, pair_off + n_pairs) */
	int32_t n_pairs;
	int32_t has_mask;	/* 1: masks[row] holds this row's allowed ids; 0: no mask */
};

/* 32-bit words of one row's dense allow mask. */
#define BE_MASK_WORDS(vocab) (((vocab) + 31) / 32)


struct be_sample_out {
	int32_t token;		/* -1: the row held no logit above -inf (an error) */
	float logprob;		/* raw log-softmax of token (n_logprobs >= 0) */
	int32_t n_top;
	int32_t top_id[BE_SAMPLE_MAX_TOP];
	float top_lp[BE_SAMPLE_MAX_TOP];
};

#ifdef __CUDACC__
#define SMP_HD static __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define SMP_HD static inline __attribute__((always_inline))	/* per-entry, in every pass */
#else
#define SMP_HD static inline
#endif

/* Whether id is allowed by a dense mask row (BE_MASK_WORDS words). */
SMP_HD int smp_mask_allows(const uint32_t *m, int id)
{
	return (m[id >> 5] >> (id & 31)) & 1;
}

#define SMP_FX_ONE 1099511627776.0f	/* 2^40: fixed-point weight of probability ratio 1 */
#define SMP_KEY_MAX (~(uint64_t)0)

/*
 * Sort key: ascending key = logit descending, then id ascending. NaN ranks
 * last (below -inf); -0 equals +0.
 */
SMP_HD uint64_t smp_key(float l, int id)
{
	union { float f; uint32_t u; } v;
	uint32_t o;

	v.f = l;
	if (v.u == 0x80000000u)
		v.u = 0;
	if (l != l)
		o = 0;
	else
		o = (v.u & 0x80000000u) ? ~v.u : (v.u | 0x80000000u);
	return ((uint64_t)(~o) << 32) | (uint32_t)id;
}

/* Key of entry (l, id) in the draw's order: sorted, or id order. */
SMP_HD uint64_t smp_order_key(int sorted, float l, int id)
{
	return sorted ? smp_key(l, id) : (uint64_t)(uint32_t)id;
}

/* Fixed-point weight of w in [0, 1] (truncated). */
SMP_HD uint64_t smp_fx(float w)
{
	return (uint64_t)(w * SMP_FX_ONE);
}

/* The random path's weight of logit l: 0 below the min_p threshold. */
SMP_HD uint64_t smp_weight(float l, float m, float inv_t, float thr)
{
	return l >= thr ? smp_fx(expf((l - m) * inv_t)) : 0;
}

/*
 * a * b rounded on its own: nvcc contracts a * b + c into one FMA by
 * default (gcc -std=c11 does not), which could round a penalised logit or
 * the min_p threshold differently on the two backends.
 */
SMP_HD double smp_dmul(double a, double b)
{
#ifdef __CUDA_ARCH__
	return __dmul_rn(a, b);
#else
	return a * b;
#endif
}

/* min_p's logit threshold for the row's max m: m + T log(min_p). */
SMP_HD float smp_min_p_thr(float m, double temperature, double min_p)
{
	return min_p > 0 ? (float)((double)m + smp_dmul(temperature, log(min_p))) : -INFINITY;
}

/* The penalised value of logit l for pair pr of row r (step 3 above). */
SMP_HD float smp_pair_apply(float l, const struct be_sample_pair *pr, const struct be_sample_row *r)
{
	if (pr->flags & BE_PAIR_MASK)
		l = -INFINITY;
	l += pr->bias;
	if (r->rep != 1.0f && (pr->flags & BE_PAIR_SEEN))
		l = l > 0 ? l / r->rep : l * r->rep;
	if ((r->freq != 0.0 || r->pres != 0.0) && pr->count > 0)
		l = (float)(((double)l - smp_dmul(r->freq, pr->count)) - r->pres);
	return l;
}

/*
 * State of one radix select: the digits chosen so far (prefix), the mass of
 * the entries that precede the prefix's range (before), the current digit's
 * shift, and whether the chosen digit held exactly one weighted entry.
 */
struct smp_sel {
	uint64_t prefix;
	uint64_t before;
	int shift;		/* the digit now examined is (key >> shift) & 255 */
	int unique;		/* the last chosen digit held one entry: its key is found by a scan */
};

/* A select over keys of `bits` significant bits (64 sorted, 32 id order). */
SMP_HD void smp_sel_init(struct smp_sel *s, int bits)
{
	s->prefix = 0;
	s->before = 0;
	s->shift = bits - 8;
	s->unique = 0;
}

/* Whether key lies in the range the select has narrowed to. */
SMP_HD int smp_sel_match(const struct smp_sel *s, uint64_t key)
{
	int hi = s->shift + 8;
	return hi >= 64 || ((key ^ s->prefix) >> hi) == 0;
}

/*
 * Chooses the digit of this pass from its histogram (hw: mass per digit,
 * hc: weighted entries per digit): the first digit whose running mass
 * reaches target. Returns 1 when the select is finished (all digits chosen
 * or the digit holds a single entry: s->unique), else 0 and the next
 * pass examines the next digit. A target beyond the total takes the last
 * entry.
 */
SMP_HD int smp_sel_pick(struct smp_sel *s, const uint64_t *hw, const uint32_t *hc, uint64_t target)
{
	uint64_t acc = s->before;
	int d, last = -1;

	for (d = 0; d < 256; d++) {
		if (hc[d] == 0)
			continue;
		if (acc + hw[d] >= target)
			break;
		acc += hw[d];
		last = d;
	}
	if (d == 256) {		/* past the end: the last digit with entries */
		d = last < 0 ? 0 : last;
		if (last >= 0)
			acc -= hw[last];
	}
	s->before = acc;
	s->prefix |= (uint64_t)d << s->shift;
	s->unique = hc[d] == 1;
	if (s->unique || s->shift == 0)
		return 1;
	s->shift -= 8;
	return 0;
}

/* Scan for the select's answer: the weighted entry in the chosen range. */
SMP_HD int smp_sel_found(const struct smp_sel *s, uint64_t key)
{
	return ((key ^ s->prefix) >> s->shift) == 0;
}

/*
 * What one select counts. Modes:
 *   SMP_COUNT_ALL  weight 1 for every entry but NaN (top-N logprobs)
 *   SMP_COUNT_THR  weight 1 for entries >= thr (top_k over the min_p set)
 *   SMP_MASS       smp_weight() of the kept entries: key <= kcut (top_k)
 *                  and key <= pcut (top_p), sorted keys
 * and in which order (sorted: smp_key; else the id).
 */
enum { SMP_COUNT_ALL = 0, SMP_COUNT_THR = 1, SMP_MASS = 2 };

struct smp_pass {
	int mode;
	int sorted;
	float m, inv_t, thr;	/* the row's max, 1/T, min_p threshold */
	uint64_t kcut, pcut;	/* SMP_KEY_MAX: no cut */
};

/* Weight of entry (l, id) for pass p, and its key in p's order. */
SMP_HD uint64_t smp_elem(const struct smp_pass *p, float l, int id, uint64_t *key)
{
	uint64_t ks = smp_key(l, id);

	*key = p->sorted ? ks : (uint64_t)(uint32_t)id;
	if (p->mode == SMP_COUNT_ALL)
		return l == l;
	if (p->mode == SMP_COUNT_THR)
		return l >= p->thr;
	if (ks > p->kcut || ks > p->pcut)
		return 0;
	return smp_weight(l, p->m, p->inv_t, p->thr);
}

/* Targets: the first entry whose running mass reaches them. */

/* top_p: the smallest prefix holding top_p of mass z (cum >= top_p * z). */
SMP_HD uint64_t smp_top_p_target(double top_p, uint64_t z)
{
	double t = ceil(top_p * (double)z);
	uint64_t r = t < 1 ? 1 : (uint64_t)t;
	return r > z ? z : r;
}

/* the draw: the first entry with running mass > u * z. */
SMP_HD uint64_t smp_draw_target(double u, uint64_t z)
{
	uint64_t r = (uint64_t)floor(u * (double)z) + 1;
	return r > z ? z : r;
}

#endif
