/*
 * cu_attention_tiled.cu - attention for steps with many query rows
 * (prefill chunks): key/value tiles in shared memory reused by a tile of
 * query rows. Same contract and results (to rounding) as attn_kernel in
 * cu_attention.cu; used when the backend's attention mode is
 * BE_CUDA_ATT_TILED (cuda_knobs.h) and the step has enough rows that the
 * decode kernel would not split.
 *
 * One block per (tile of TA_QT consecutive batch rows, query head h), four
 * warps, warp w owning rows w*TA_RPW .. w*TA_RPW + TA_RPW - 1 of the tile.
 * Rows of a tile may belong to several sequences: the block makes one pass
 * per distinct sequence (in order of first appearance) over the union of
 * those rows' visible key ranges [lo, pos], in tiles of TA_KT keys:
 *   1. slots of the tile's keys from the sequence's block table;
 *   2. K and V rows of KV head h / (n_heads / n_kv_heads), upcast to fp32,
 *      into shared memory (row stride head_dim + 1: conflict-free reads);
 *   3. per owned row: lane l scores key kt + l (masked to the row's range,
 *      scaled, soft-capped), the warp takes the tile's max and updates its
 *      running max m, sum l and accumulator acc (head_dim/32 values per
 *      lane) with exp(s - m) * V.
 * Rows of the pass are written (acc / l) at its end. Dynamic shared memory:
 * (2 * TA_KT * (head_dim + 1) + TA_QT * head_dim) floats, 82 KB at head_dim
 * 256 (within sm_89's 99 KB and sm_90's 227 KB opt-in).
 */
#include <limits.h>
#include <math.h>

#include "kernels/cuda/cu_internal.cuh"

#define TA_WARPS 4
#define TA_THREADS (TA_WARPS * 32)
#define TA_QT 16			/* query rows per block */
#define TA_RPW (TA_QT / TA_WARPS)	/* rows per warp */
#define TA_KT 32			/* keys per tile (one per lane) */
#define TA_MAX_HD 256

static size_t ta_smem_bytes(int hd)
{
	return (size_t)(2 * TA_KT * (hd + 1) + TA_QT * hd) * sizeof(float);
}

template <typename T, int NPL>
__global__ void __launch_bounds__(TA_THREADS)
attn_tiled_kernel(float *out, const float *q, const T *kc, const T *vc, struct be_attn a)
{
	extern __shared__ float ta_smem[];
	__shared__ int s_seq[TA_QT], s_pos[TA_QT], s_lo[TA_QT], s_in[TA_QT], s_done[TA_QT];
	__shared__ size_t s_off[TA_KT];
	__shared__ int s_pass_seq, s_klo, s_khi;
	const int hd = a.head_dim, ld = hd + 1, bs = a.block_size;
	const int t0 = blockIdx.x * TA_QT, h = blockIdx.y;
	const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	const int kvh = h / (a.n_heads / a.n_kv_heads);
	const size_t kv_dim = (size_t)a.n_kv_heads * (size_t)hd;
	float *Ks = ta_smem;			/* [TA_KT][hd + 1] */
	float *Vs = Ks + TA_KT * ld;		/* [TA_KT][hd + 1] */
	float *Qs = Vs + TA_KT * ld;		/* [TA_QT][hd] */
	float m[TA_RPW], l[TA_RPW], acc[TA_RPW][NPL];

	if (threadIdx.x < TA_QT) {
		int r = threadIdx.x, t = t0 + r;
		if (t < a.n_tok) {
			int p = min(a.pos[t], a.max_blocks * bs - 1);
			s_seq[r] = a.seq[t];
			s_pos[r] = p;
			s_lo[r] = a.window > 0 && p - a.window + 1 > 0 ? p - a.window + 1 : 0;
			s_done[r] = p < 0;	/* invalid position: left unwritten */
		} else {
			s_seq[r] = -1;
			s_pos[r] = -1;
			s_lo[r] = 0;
			s_done[r] = 1;
		}
	}
	for (int i = threadIdx.x; i < TA_QT * hd; i += TA_THREADS) {
		int r = i / hd, t = t0 + r;
		Qs[i] = t < a.n_tok ? q[((size_t)t * a.n_heads + h) * hd + (i - r * hd)] : 0.0f;
	}
#pragma unroll
	for (int rr = 0; rr < TA_RPW; rr++) {
		m[rr] = -INFINITY;
		l[rr] = 0.0f;
#pragma unroll
		for (int i = 0; i < NPL; i++)
			acc[rr][i] = 0.0f;
	}
	__syncthreads();

	for (;;) {
		/* The next pass: rows not done that share the first such row's sequence. */
		if (threadIdx.x == 0) {
			int s = -1, klo = INT_MAX, khi = -1;
			for (int r = 0; r < TA_QT && s < 0; r++)
				if (!s_done[r])
					s = s_seq[r];
			for (int r = 0; r < TA_QT; r++) {
				s_in[r] = s >= 0 && !s_done[r] && s_seq[r] == s;
				if (s_in[r]) {
					klo = min(klo, s_lo[r]);
					khi = max(khi, s_pos[r]);
				}
			}
			s_pass_seq = s;
			s_klo = klo;
			s_khi = khi;
		}
		__syncthreads();
		if (s_pass_seq < 0)
			break;
		const int32_t *bt = a.block_tables + (size_t)s_pass_seq * a.max_blocks;
		const int klo = s_klo, khi = s_khi;

		for (int kt = klo; kt <= khi; kt += TA_KT) {
			if (threadIdx.x < TA_KT) {
				int j = kt + threadIdx.x;
				s_off[threadIdx.x] = j <= khi ?
					((size_t)bt[j / bs] * bs + (size_t)(j % bs)) * kv_dim +
					(size_t)kvh * hd : 0;
			}
			__syncthreads();
			for (int i = threadIdx.x; i < TA_KT * hd; i += TA_THREADS) {
				int kk = i / hd, d = i - kk * hd;
				int ok = kt + kk <= khi;
				Ks[kk * ld + d] = ok ? cu_ld(kc, s_off[kk] + (size_t)d) : 0.0f;
				Vs[kk * ld + d] = ok ? cu_ld(vc, s_off[kk] + (size_t)d) : 0.0f;
			}
			__syncthreads();
#pragma unroll
			for (int rr = 0; rr < TA_RPW; rr++) {
				const int r = warp * TA_RPW + rr, j = kt + lane;
				float sc = -INFINITY, tmax, mn, corr, p;

				if (!s_in[r])		/* warp-uniform */
					continue;
				const int valid = j >= s_lo[r] && j <= s_pos[r];
				if (valid) {
					const float *qr = Qs + r * hd, *kr = Ks + lane * ld;
					float dot = 0.0f;
					for (int d = 0; d < hd; d++)
						dot = fmaf(qr[d], kr[d], dot);
					sc = dot * a.scale;
					if (a.softcap > 0.0f)
						sc = a.softcap * tanhf(sc / a.softcap);
				}
				tmax = cu_warp_max(sc);
				if (tmax == -INFINITY)	/* no key of this row in the tile */
					continue;
				mn = fmaxf(m[rr], tmax);
				corr = expf(m[rr] - mn);	/* 0 before the row's first key */
				p = valid ? expf(sc - mn) : 0.0f;
				l[rr] = l[rr] * corr + cu_warp_sum(p);
#pragma unroll
				for (int i = 0; i < NPL; i++)
					acc[rr][i] *= corr;
#pragma unroll 4
				for (int kk = 0; kk < TA_KT; kk++) {
					float pk = __shfl_sync(0xffffffffu, p, kk);
#pragma unroll
					for (int i = 0; i < NPL; i++) {
						int d = lane + 32 * i;
						if (d < hd)
							acc[rr][i] = fmaf(pk, Vs[kk * ld + d], acc[rr][i]);
					}
				}
				m[rr] = mn;
			}
			__syncthreads();	/* the next tile overwrites Ks, Vs, s_off */
		}
#pragma unroll
		for (int rr = 0; rr < TA_RPW; rr++) {
			const int r = warp * TA_RPW + rr;
			if (!s_in[r])
				continue;
			float *o = out + ((size_t)(t0 + r) * a.n_heads + h) * hd;
#pragma unroll
			for (int i = 0; i < NPL; i++) {
				int d = lane + 32 * i;
				if (d < hd)
					o[d] = acc[rr][i] / l[rr];
			}
		}
		__syncthreads();
		if (threadIdx.x < TA_QT && s_in[threadIdx.x])
			s_done[threadIdx.x] = 1;
		__syncthreads();
	}
}

template <typename T, int NPL>
static int ta_launch_npl(struct cu_ctx *c, float *out, const float *q, const T *kc, const T *vc,
			 const struct be_attn *a)
{
	size_t smem = ta_smem_bytes(a->head_dim);
	dim3 grid((unsigned)((a->n_tok + TA_QT - 1) / TA_QT), (unsigned)a->n_heads);

	/* The 48 KiB default covers static + dynamic shared memory: the kernel's own
	 * ~600 static bytes count too (head_dim 151-152 would fail to launch). */
	if (smem + 1024 > 48 * 1024)
		CUDA_TRY(cudaFuncSetAttribute(attn_tiled_kernel<T, NPL>,
					      cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
	attn_tiled_kernel<T, NPL><<<grid, TA_THREADS, smem, c->stream>>>(out, q, kc, vc, *a);
	CU_CHECK_LAUNCH();
	return 0;
}

template <typename T>
static int ta_launch(struct cu_ctx *c, float *out, const float *q, const T *kc, const T *vc,
		     const struct be_attn *a)
{
	if (a->head_dim <= 32)
		return ta_launch_npl<T, 1>(c, out, q, kc, vc, a);
	if (a->head_dim <= 64)
		return ta_launch_npl<T, 2>(c, out, q, kc, vc, a);
	if (a->head_dim <= 128)
		return ta_launch_npl<T, 4>(c, out, q, kc, vc, a);
	return ta_launch_npl<T, 8>(c, out, q, kc, vc, a);
}

/* Called by cu_attention after validating a (head_dim <= 256, n_tok > 0). */
int cu_attention_tiled(struct cu_ctx *c, float *out, const float *q, const void *k_cache,
		       const void *v_cache, enum be_dtype kv_dt, const struct be_attn *a)
{
	if (a->head_dim > TA_MAX_HD)
		return ST_EINVAL;
	switch (kv_dt) {
	case BE_F32:
		return ta_launch(c, out, q, (const float *)k_cache, (const float *)v_cache, a);
	case BE_BF16:
		return ta_launch(c, out, q, (const __nv_bfloat16 *)k_cache,
				 (const __nv_bfloat16 *)v_cache, a);
	case BE_F16:
		return ta_launch(c, out, q, (const __half *)k_cache, (const __half *)v_cache, a);
	default:
		return ST_EINVAL;
	}
}
