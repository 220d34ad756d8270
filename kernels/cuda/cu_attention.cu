/*
 * cu_attention.cu - attention over the paged KV cache on the CUDA backend
 * (see struct be_attn in kernels/backend.h for the contract).
 *
 * One thread block per (query token t, group of GB query heads, split sp),
 * ATT_WARPS warps. GB = 2 when n_heads / n_kv_heads is even (every Gemma 2
 * size), else 1: the heads of a group share their KV head, so each key and
 * value row is read once for both. Every query token is independent, so
 * the same kernel serves decode tokens and prefill chunks of any mix of
 * sequences: token t sees keys j of its own sequence (block table row
 * seq[t]) with lo <= j <= pos[t], where lo = pos[t] - window + 1 on
 * sliding layers (else 0). GQA: head h reads KV head h / (n_heads /
 * n_kv_heads) in place; repeated heads are never built.
 *
 * The visible range is cut into n_split equal chunks (split sp takes
 * chunk sp). Within a block, warp w takes keys k0 + w, k0 + w + ATT_WARPS,
 * ...: each lane holds head_dim/32 elements of q per head (NPL per lane)
 * and of the key row, the dot products are warp all-reduces, each score is
 * scaled, soft-capped (cap * tanh(s / cap)) and folded into its head's
 * online softmax (running max m, sum l, accumulator acc of p * v). The
 * warps' states are merged in shared memory. With n_split == 1 the block
 * writes the normalised outputs; with n_split > 1 it writes (acc, m, l) per
 * head to scratch and attn_combine_kernel merges the chunks. Splitting is
 * used only when there are too few blocks to fill the GPU, i.e. for small
 * decode batches over long contexts. In BE_CUDA_ATT_TILED mode
 * (cuda_knobs.h) steps that do not split go to cu_attention_tiled.cu.
 *
 * Cache element type F32, F16 or BF16 (loaded and upcast per element);
 * head_dim up to ATT_MAX_HD. Arithmetic is fp32 with expf/tanhf (full
 * precision, no fast-math). For prefill it reads each key once per query
 * row; the tiled kernel reuses key tiles across 16 rows.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "kernels/cuda/cu_internal.cuh"

#define ATT_WARPS 4
#define ATT_THREADS (ATT_WARPS * 32)
#define ATT_MAX_HD 256
#define ATT_MAX_SPLIT 64
#define ATT_SPLIT_MIN_CTX 256	/* no split for contexts this short */
#define ATT_SPLIT_MIN_KEYS 64	/* at least this many keys per split of a full context */

template <typename T, int NPL, int GB>
__global__ void __launch_bounds__(ATT_THREADS)
attn_kernel(float *out, float *part, const float *q, const T *kc, const T *vc, struct be_attn a,
	    int n_split)
{
	__shared__ float sm_m[ATT_WARPS][GB], sm_l[ATT_WARPS][GB];
	__shared__ float sm_acc[ATT_WARPS][GB][NPL * 32];
	const int t = blockIdx.x, h0 = blockIdx.y * GB, sp = blockIdx.z;
	const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	const int hd = a.head_dim, bs = a.block_size;
	const int kvh = h0 / (a.n_heads / a.n_kv_heads);	/* the same for h0 .. h0+GB-1 */
	const size_t kv_dim = (size_t)a.n_kv_heads * (size_t)hd;
	const size_t row0 = (size_t)t * a.n_heads + h0;		/* output row of head h0 */
	const int32_t *bt = a.block_tables + (size_t)a.seq[t] * a.max_blocks;
	int pos = a.pos[t], lo, n, chunk, k0, k1;
	float qr[GB][NPL], acc[GB][NPL], m[GB], l[GB];

	/* Never read past the block table row (the host validated pos already). */
	pos = min(pos, a.max_blocks * bs - 1);
	lo = a.window > 0 && pos - a.window + 1 > 0 ? pos - a.window + 1 : 0;
	n = max(pos - lo + 1, 0);
	chunk = (n + n_split - 1) / n_split;
	k0 = lo + sp * chunk;
	k1 = min(k0 + chunk, pos + 1);

#pragma unroll
	for (int g = 0; g < GB; g++) {
		m[g] = -INFINITY;
		l[g] = 0.0f;
#pragma unroll
		for (int i = 0; i < NPL; i++) {
			int d = lane + 32 * i;
			qr[g][i] = d < hd ? q[(row0 + g) * hd + d] : 0.0f;
			acc[g][i] = 0.0f;
		}
	}
	for (int j = k0 + warp; j < k1; j += ATT_WARPS) {
		size_t slot = (size_t)bt[j / bs] * bs + (size_t)(j % bs);
		const T *kp = kc + slot * kv_dim + (size_t)kvh * hd;
		const T *vp = vc + slot * kv_dim + (size_t)kvh * hd;
		float kv[NPL], p[GB];

#pragma unroll
		for (int i = 0; i < NPL; i++) {
			int d = lane + 32 * i;
			kv[i] = d < hd ? cu_ld(kp, (size_t)d) : 0.0f;
		}
#pragma unroll
		for (int g = 0; g < GB; g++) {
			float dot = 0.0f, s;
#pragma unroll
			for (int i = 0; i < NPL; i++)
				dot = fmaf(qr[g][i], kv[i], dot);
			dot = cu_warp_sum(dot);	/* the same bits in every lane */
			s = dot * a.scale;
			if (a.softcap > 0.0f)
				s = a.softcap * tanhf(s / a.softcap);
			if (s > m[g]) {
				float corr = expf(m[g] - s);	/* 0 for the first key */
				l[g] *= corr;
#pragma unroll
				for (int i = 0; i < NPL; i++)
					acc[g][i] *= corr;
				m[g] = s;
			}
			p[g] = expf(s - m[g]);
			l[g] += p[g];
		}
#pragma unroll
		for (int i = 0; i < NPL; i++) {
			int d = lane + 32 * i;
			kv[i] = d < hd ? cu_ld(vp, (size_t)d) : 0.0f;
		}
#pragma unroll
		for (int g = 0; g < GB; g++)
#pragma unroll
			for (int i = 0; i < NPL; i++)
				acc[g][i] = fmaf(p[g], kv[i], acc[g][i]);
	}

	/* Merge the warps, per head of the group. */
#pragma unroll
	for (int g = 0; g < GB; g++) {
		if (lane == 0) {
			sm_m[warp][g] = m[g];
			sm_l[warp][g] = l[g];
		}
#pragma unroll
		for (int i = 0; i < NPL; i++) {
			int d = lane + 32 * i;
			if (d < hd)
				sm_acc[warp][g][d] = acc[g][i];
		}
	}
	__syncthreads();
	for (int g = 0; g < GB; g++) {
		float mx = -INFINITY, sum = 0.0f, f[ATT_WARPS];

		for (int w = 0; w < ATT_WARPS; w++)
			mx = fmaxf(mx, sm_m[w][g]);
		for (int w = 0; w < ATT_WARPS; w++) {
			f[w] = sm_m[w][g] == -INFINITY ? 0.0f : expf(sm_m[w][g] - mx);
			sum = fmaf(sm_l[w][g], f[w], sum);
		}
		if (n_split == 1) {
			float *o = out + (row0 + g) * hd;
			for (int d = threadIdx.x; d < hd; d += ATT_THREADS) {
				float A = 0.0f;
				for (int w = 0; w < ATT_WARPS; w++)
					A = fmaf(sm_acc[w][g][d], f[w], A);
				o[d] = A / sum;
			}
		} else {
			float *pp = part + ((row0 + g) * n_split + sp) * (size_t)(hd + 2);
			for (int d = threadIdx.x; d < hd; d += ATT_THREADS) {
				float A = 0.0f;
				for (int w = 0; w < ATT_WARPS; w++)
					A = fmaf(sm_acc[w][g][d], f[w], A);
				pp[d] = A;
			}
			if (threadIdx.x == 0) {
				pp[hd] = mx;	/* -inf for an empty chunk */
				pp[hd + 1] = sum;
			}
		}
	}
}

/* out row (t, h) = merge of its n_split chunks (acc, m, l) from part. */
__global__ void __launch_bounds__(ATT_THREADS)
attn_combine_kernel(float *out, const float *part, int n_split, int hd)
{
	__shared__ float wgt[ATT_MAX_SPLIT];
	__shared__ float inv_sum;
	const size_t row = blockIdx.x;
	const float *p = part + row * n_split * (size_t)(hd + 2);

	if (threadIdx.x == 0) {
		float mx = -INFINITY, sum = 0.0f;
		for (int c = 0; c < n_split; c++)
			mx = fmaxf(mx, p[(size_t)c * (hd + 2) + hd]);
		for (int c = 0; c < n_split; c++) {
			float mc = p[(size_t)c * (hd + 2) + hd];
			wgt[c] = mc == -INFINITY ? 0.0f : expf(mc - mx);
			sum = fmaf(p[(size_t)c * (hd + 2) + hd + 1], wgt[c], sum);
		}
		inv_sum = 1.0f / sum;
	}
	__syncthreads();
	for (int d = threadIdx.x; d < hd; d += ATT_THREADS) {
		float A = 0.0f;
		for (int c = 0; c < n_split; c++)
			A = fmaf(p[(size_t)c * (hd + 2) + d], wgt[c], A);
		out[row * hd + d] = A * inv_sum;
	}
}

template <typename T, int GB>
static int attn_launch_gb(struct cu_ctx *c, float *out, float *part, const float *q, const T *kc,
			  const T *vc, const struct be_attn *a, int n_split)
{
	dim3 grid((unsigned)a->n_tok, (unsigned)(a->n_heads / GB), (unsigned)n_split);

	if (a->head_dim <= 32)
		attn_kernel<T, 1, GB><<<grid, ATT_THREADS, 0, c->stream>>>(out, part, q, kc, vc,
									    *a, n_split);
	else if (a->head_dim <= 64)
		attn_kernel<T, 2, GB><<<grid, ATT_THREADS, 0, c->stream>>>(out, part, q, kc, vc,
									    *a, n_split);
	else if (a->head_dim <= 128)
		attn_kernel<T, 4, GB><<<grid, ATT_THREADS, 0, c->stream>>>(out, part, q, kc, vc,
									    *a, n_split);
	else
		attn_kernel<T, 8, GB><<<grid, ATT_THREADS, 0, c->stream>>>(out, part, q, kc, vc,
									    *a, n_split);
	CU_CHECK_LAUNCH();
	if (n_split > 1) {
		attn_combine_kernel<<<(unsigned)(a->n_tok * a->n_heads), ATT_THREADS, 0,
				      c->stream>>>(out, part, n_split, a->head_dim);
		CU_CHECK_LAUNCH();
	}
	return 0;
}

template <typename T>
static int attn_launch(struct cu_ctx *c, float *out, float *part, const float *q, const T *kc,
		       const T *vc, const struct be_attn *a, int n_split, int gb)
{
	if (gb == 2)
		return attn_launch_gb<T, 2>(c, out, part, q, kc, vc, a, n_split);
	return attn_launch_gb<T, 1>(c, out, part, q, kc, vc, a, n_split);
}

/* Query heads per block: 2 when they share a KV head (n_heads / n_kv_heads even). */
static int attn_group(const struct be_attn *a)
{
	return (a->n_heads / a->n_kv_heads) % 2 == 0 ? 2 : 1;
}

/*
 * Splitting happens only for blocks = n_tok * n_heads / gb < 2 * n_sm, with
 * n_split <= ceil(4 * n_sm / blocks): output rows (n_tok * n_heads) times
 * n_split < gb * 6 * n_sm, gb <= 2.
 */
size_t cu_attention_scratch_bytes(int n_sm)
{
	return (size_t)12 * (size_t)n_sm * (ATT_MAX_HD + 2) * sizeof(float);
}

/* How many chunks to cut each token's keys into (1: no split). */
static int attn_splits(const struct cu_ctx *c, const struct be_attn *a, int gb)
{
	long rows = (long)a->n_tok * (a->n_heads / gb), want;
	long max_ctx = (long)a->max_blocks * a->block_size;

	if (max_ctx <= ATT_SPLIT_MIN_CTX || rows >= 2L * c->n_sm)
		return 1;
	want = (4L * c->n_sm + rows - 1) / rows;
	if (want > max_ctx / ATT_SPLIT_MIN_KEYS)
		want = max_ctx / ATT_SPLIT_MIN_KEYS;
	if (want > ATT_MAX_SPLIT)
		want = ATT_MAX_SPLIT;
	return want < 1 ? 1 : (int)want;
}

int cu_attention(void *ctx, float *out, const float *q, const void *k_cache,
		 const void *v_cache, enum be_dtype kv_dt, const struct be_attn *a)
{
	struct cu_ctx *c = (struct cu_ctx *)ctx;
	void *part = NULL;
	int n_split, gb, rc;

	CU_ENTER(c);
	if (a->n_tok < 0 || a->n_heads <= 0 || a->n_kv_heads <= 0 ||
	    a->n_heads % a->n_kv_heads || a->n_heads > 65535 || a->head_dim <= 0 ||
	    a->head_dim > ATT_MAX_HD || a->block_size <= 0 || a->max_blocks <= 0 ||
	    (long long)a->max_blocks * a->block_size > INT_MAX)
		return ST_EINVAL;
	if (kv_dt != BE_F32 && kv_dt != BE_BF16 && kv_dt != BE_F16)
		return ST_EINVAL;
	if (a->n_tok == 0)
		return 0;
	gb = attn_group(a);
	n_split = attn_splits(c, a, gb);
	if (n_split == 1 && c->att_mode == BE_CUDA_ATT_TILED && a->n_tok > 1)
		return cu_attention_tiled(c, out, q, k_cache, v_cache, kv_dt, a);
	if (n_split > 1) {
		size_t bytes = (size_t)a->n_tok * a->n_heads * n_split * (a->head_dim + 2) *
			       sizeof(float);
		if ((rc = cu_scratch(c, &c->att_scratch, bytes, &part)) < 0)
			return rc;
	}
	switch (kv_dt) {
	case BE_F32:
		return attn_launch(c, out, (float *)part, q, (const float *)k_cache,
				   (const float *)v_cache, a, n_split, gb);
	case BE_BF16:
		return attn_launch(c, out, (float *)part, q, (const __nv_bfloat16 *)k_cache,
				   (const __nv_bfloat16 *)v_cache, a, n_split, gb);
	default:
		return attn_launch(c, out, (float *)part, q, (const __half *)k_cache,
				   (const __half *)v_cache, a, n_split, gb);
	}
}

extern "C" int be_cuda_set_attention(struct be *be, enum be_cuda_att mode)
{
	if (!be || !be->ops || !be->ctx || strcmp(be->ops->name, "cuda") != 0)
		return log_err(ST_EINVAL, "cuda: be_cuda_set_attention on a backend that is not cuda");
	if (mode != BE_CUDA_ATT_SIMPLE && mode != BE_CUDA_ATT_TILED)
		return log_err(ST_EINVAL, "cuda: unknown attention mode %d", (int)mode);
	((struct cu_ctx *)be->ctx)->att_mode = mode;
	return 0;
}
