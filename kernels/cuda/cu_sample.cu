/*
 * cu_sample.cu - the CUDA backend's sample op: one thread block per row of
 * logits, the pipeline of kernels/sample.h.
 *
 * Every selection (top-N logprobs, the top_k cut, the top_p cut, the draw)
 * is a radix select: per 8-bit digit, one pass over the row builds a
 * 256-bin histogram in shared memory (integer atomics: exact, so the block
 * picks the same entry as the CPU op, kernels/cpu/cpu_sample.c, for the
 * same weights), thread 0 picks the digit with smp_sel_pick, and a digit
 * holding a single entry ends the select early. A greedy row without
 * logprobs costs one pass (the smallest key is the argmax).
 * Reductions (max, sum of exp for the logprobs, smallest key, total mass)
 * use a fixed tree, so a row's result does not depend on the other rows.
 * Known cost: histogram atomics contend when most logits share a digit
 * (the first digit of a narrow distribution); not measured yet.
 */
#include "kernels/cuda/cu_internal.cuh"
#include "kernels/sample.h"

#define SMP_THREADS 512
#define SMP_WARPS (SMP_THREADS / 32)

struct smp_shared {
	unsigned long long hw[256];
	unsigned int hc[256];
	struct smp_sel sel;
	int done;
	unsigned long long found_key, found_w;
	unsigned long long red_u[SMP_WARPS];
	float red_f[SMP_WARPS];
	double red_d[SMP_WARPS];
	unsigned long long top_keys[BE_SAMPLE_MAX_TOP];
	int n_top;
};

/* ---- block reductions (every thread gets the result) ---- */

static __device__ float block_max(float v, struct smp_shared *sh)
{
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;

	v = cu_warp_max(v);
	if (lane == 0)
		sh->red_f[w] = v;
	__syncthreads();
	v = sh->red_f[0];
	for (int i = 1; i < SMP_WARPS; i++)
		v = fmaxf(v, sh->red_f[i]);
	__syncthreads();
	return v;
}

static __device__ double block_sum_d(double v, struct smp_shared *sh)
{
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;

	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	if (lane == 0)
		sh->red_d[w] = v;
	__syncthreads();
	v = 0;
	for (int i = 0; i < SMP_WARPS; i++)
		v += sh->red_d[i];
	__syncthreads();
	return v;
}

static __device__ unsigned long long block_sum_u(unsigned long long v, struct smp_shared *sh)
{
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;

	for (int o = 16; o > 0; o >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, o);
	if (lane == 0)
		sh->red_u[w] = v;
	__syncthreads();
	v = 0;
	for (int i = 0; i < SMP_WARPS; i++)
		v += sh->red_u[i];
	__syncthreads();
	return v;
}

static __device__ unsigned long long block_min_u(unsigned long long v, struct smp_shared *sh)
{
	int lane = threadIdx.x & 31, w = threadIdx.x >> 5;

	for (int o = 16; o > 0; o >>= 1) {
		unsigned long long x = __shfl_xor_sync(0xffffffffu, v, o);
		v = x < v ? x : v;
	}
	if (lane == 0)
		sh->red_u[w] = v;
	__syncthreads();
	v = sh->red_u[0];
	for (int i = 1; i < SMP_WARPS; i++)
		v = sh->red_u[i] < v ? sh->red_u[i] : v;
	__syncthreads();
	return v;
}

/* Total weight of the row under pass p. */
static __device__ uint64_t block_total(const float *l, int V, const struct smp_pass &p,
				       struct smp_shared *sh)
{
	unsigned long long z = 0;
	uint64_t key;

	for (int i = threadIdx.x; i < V; i += SMP_THREADS)
		z += smp_elem(&p, l[i], i, &key);
	return block_sum_u(z, sh);
}

/*
 * Radix select over row l for pass p: the key of the first entry whose
 * running mass reaches target, and in *cum that running mass.
 */
static __device__ uint64_t block_select(const float *l, int V, const struct smp_pass &p,
					uint64_t target, struct smp_shared *sh, uint64_t *cum)
{
	struct smp_sel s;
	uint64_t key, w;

	if (threadIdx.x == 0) {
		smp_sel_init(&sh->sel, p.sorted ? 64 : 32);
		sh->found_key = SMP_KEY_MAX;	/* no weighted entry at all: as the CPU op */
		sh->found_w = 0;
	}
	for (;;) {
		for (int d = threadIdx.x; d < 256; d += SMP_THREADS) {
			sh->hw[d] = 0;
			sh->hc[d] = 0;
		}
		__syncthreads();
		s = sh->sel;
		for (int i = threadIdx.x; i < V; i += SMP_THREADS) {
			w = smp_elem(&p, l[i], i, &key);
			if (w == 0 || !smp_sel_match(&s, key))
				continue;
			int d = (int)((key >> s.shift) & 255);
			atomicAdd(&sh->hw[d], (unsigned long long)w);
			atomicAdd(&sh->hc[d], 1u);
		}
		__syncthreads();
		if (threadIdx.x == 0)
			sh->done = smp_sel_pick(&sh->sel, (const uint64_t *)sh->hw,
						(const uint32_t *)sh->hc, target);
		__syncthreads();
		if (sh->done)
			break;
	}
	s = sh->sel;
	for (int i = threadIdx.x; i < V; i += SMP_THREADS) {
		w = smp_elem(&p, l[i], i, &key);
		if (w != 0 && smp_sel_found(&s, key)) {	/* exactly one entry */
			sh->found_key = key;
			sh->found_w = w;
		}
	}
	__syncthreads();
	key = sh->found_key;
	*cum = s.before + sh->found_w;
	__syncthreads();
	return key;
}

__global__ void __launch_bounds__(SMP_THREADS)
sample_kernel(struct be_sample_out *out, float *logits, const struct be_sample_row *rows,
	      struct be_sample_pair *pairs, const uint32_t *masks, int vocab)
{
	__shared__ struct smp_shared sh;
	const struct be_sample_row r = rows[blockIdx.x];
	float *l = logits + (size_t)blockIdx.x * vocab;
	struct be_sample_out *o = out + blockIdx.x;
	struct be_sample_pair *pr = pairs + r.pair_off;
	const int V = vocab, tid = threadIdx.x;
	const int n_lp = r.n_logprobs < BE_SAMPLE_MAX_TOP ? r.n_logprobs : BE_SAMPLE_MAX_TOP;
	double lse = 0;
	uint64_t cum, key;
	int amax, tok;

	if (tid == 0)
		o->n_top = 0;
	/* 1. raw logprobs: log-sum-exp and the top n of the untouched row */
	if (n_lp >= 0) {
		float m0 = -INFINITY;
		double s = 0;
		for (int i = tid; i < V; i += SMP_THREADS)
			m0 = fmaxf(m0, l[i]);
		m0 = block_max(m0, &sh);
		for (int i = tid; i < V; i += SMP_THREADS)
			s += expf(l[i] - m0);
		lse = m0 + log(block_sum_d(s, &sh));
		if (n_lp > 0) {
			struct smp_pass p = {};
			int n = n_lp < V ? n_lp : V;
			p.mode = SMP_COUNT_ALL;
			p.sorted = 1;
			uint64_t kn = block_select(l, V, p, (uint64_t)n, &sh, &cum);
			if (tid == 0)
				sh.n_top = 0;
			__syncthreads();
			for (int i = tid; i < V; i += SMP_THREADS)
				if (smp_elem(&p, l[i], i, &key) && key <= kn) {
					int at = atomicAdd(&sh.n_top, 1);
					if (at < BE_SAMPLE_MAX_TOP)
						sh.top_keys[at] = key;
				}
			__syncthreads();
			if (tid == 0) {
				int got = sh.n_top < n ? sh.n_top : n;
				for (int i = 1; i < got; i++)	/* insertion sort, <= 20 */
					for (int j = i; j > 0 && sh.top_keys[j] < sh.top_keys[j - 1]; j--) {
						unsigned long long t = sh.top_keys[j];
						sh.top_keys[j] = sh.top_keys[j - 1];
						sh.top_keys[j - 1] = t;
					}
				for (int i = 0; i < got; i++) {
					int id = (int)(uint32_t)sh.top_keys[i];
					o->top_id[i] = id;
					o->top_lp[i] = (float)(l[id] - lse);
				}
				o->n_top = got;
			}
			__syncthreads();
		}
	}

	/* 2. masks and penalties (distinct ids: no two threads share an entry) */
	for (int j = tid; j < r.n_pairs; j += SMP_THREADS) {
		int t = pr[j].token;
		if (t < 0 || t >= V)
			continue;
		pr[j].orig = l[t];
		l[t] = smp_pair_apply(l[t], &pr[j], &r);
	}
	__syncthreads();
	if (masks && r.has_mask) {	/* the dense allow mask (after the pairs: orig stays raw) */
		const uint32_t *m = masks + (size_t)blockIdx.x * BE_MASK_WORDS(V);
		for (int i = tid; i < V; i += SMP_THREADS)
			if (!smp_mask_allows(m, i))
				l[i] = -INFINITY;
		__syncthreads();
	}

	/* 3. argmax = the smallest key */
	{
		unsigned long long kmin = SMP_KEY_MAX;
		for (int i = tid; i < V; i += SMP_THREADS) {
			unsigned long long k = smp_key(l[i], i);
			kmin = k < kmin ? k : kmin;
		}
		amax = (int)(uint32_t)block_min_u(kmin, &sh);
	}
	if (!(l[amax] > -INFINITY)) {
		if (tid == 0) {
			o->token = -1;
			o->logprob = 0;
		}
		return;
	}

	/* 4. greedy, or temperature / min_p / top_k / top_p and the draw */
	if (r.temperature < BE_SAMPLE_GREEDY_EPS) {
		tok = amax;
	} else {
		struct smp_pass p = {};
		int k_on = r.top_k > 0 && r.top_k < V;
		uint64_t z;

		p.mode = SMP_MASS;
		p.sorted = k_on || r.top_p < 1.0;
		p.m = l[amax];
		p.inv_t = (float)(1.0 / r.temperature);
		p.thr = smp_min_p_thr(l[amax], r.temperature, r.min_p);
		p.kcut = SMP_KEY_MAX;
		p.pcut = SMP_KEY_MAX;
		if (k_on) {
			struct smp_pass c = p;
			c.mode = SMP_COUNT_THR;
			if (block_total(l, V, c, &sh) > (uint64_t)r.top_k)
				p.kcut = block_select(l, V, c, (uint64_t)r.top_k, &sh, &cum);
		}
		z = block_total(l, V, p, &sh);
		if (r.top_p < 1.0) {
			p.pcut = block_select(l, V, p, smp_top_p_target(r.top_p, z), &sh, &cum);
			z = cum;
		}
		tok = (int)(uint32_t)block_select(l, V, p, smp_draw_target(r.u, z), &sh, &cum);
	}
	if (tid == 0) {
		o->token = tok;
		o->logprob = 0;
		if (n_lp >= 0) {
			float raw = l[tok];
			for (int j = 0; j < r.n_pairs; j++)
				if (pr[j].token == tok)
					raw = pr[j].orig;
			o->logprob = (float)(raw - lse);
		}
	}
}

int cu_sample(void *ctx, struct be_sample_out *out, float *logits,
	      const struct be_sample_row *rows, struct be_sample_pair *pairs,
	      const uint32_t *masks, int n_rows, int vocab)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;

	CU_ENTER(c);
	if (n_rows < 0 || vocab <= 0)
		return ST_EINVAL;
	if (n_rows == 0)
		return 0;
	sample_kernel<<<n_rows, SMP_THREADS, 0, c->stream>>>(out, logits, rows, pairs, masks, vocab);
	CU_CHECK_LAUNCH();
	return 0;
}
