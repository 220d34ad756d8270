/*
 * cpu_attention.c - attention over the paged KV cache: bf16 (the CPU
 * backend's cache, as the CUDA backend's; cpu_kv_write rounds to nearest
 * even) or fp32 (tests of the reference path). Cache elements are widened
 * to fp32 as they are read; all arithmetic is fp32.
 *
 * One task per (query token, query head). Two passes over the visible
 * keys, recomputing the scores instead of storing them (no scratch that
 * depends on the context length): the first finds the largest soft-capped
 * score, the second sums exp(s - max) and the weighted values; the output
 * is that sum divided by the total. Keys are visited in increasing position
 * and the dot products have a fixed order, so one token's result does not
 * depend on the rest of the batch.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/status.h"
#include "kernels/cpu/cpu.h"

#define ATT_MAX_HD 1024
#define ATT_LANES 8

struct att_job {
	float *out;
	const float *q;
	const void *kc, *vc;
	const struct be_attn *a;
};

#define AI static inline __attribute__((always_inline))

/* Element i of a cache row of type dt (a constant after inlining). */
AI float kv_elem(const void *row, enum be_dtype dt, int i)
{
	if (dt == BE_F32)
		return ((const float *)row)[i];
	union { uint32_t u; float f; } v = { .u = (uint32_t)((const uint16_t *)row)[i] << 16 };
	return v.f;
}

AI float dot_lanes(const float *a, const void *b, enum be_dtype dt, int n)
{
	float acc[ATT_LANES] = { 0 };
	int i = 0;

	for (; i + ATT_LANES <= n; i += ATT_LANES)
		for (int l = 0; l < ATT_LANES; l++)
			acc[l] = fmaf(a[i + l], kv_elem(b, dt, i + l), acc[l]);
	for (int l = 0; i < n; i++, l++)
		acc[l] = fmaf(a[i], kv_elem(b, dt, i), acc[l]);
	return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

AI const void *key_row(const struct be_attn *a, const void *cache, enum be_dtype dt, int s, int j,
		       int kvh)
{
	int blk = a->block_tables[(size_t)s * a->max_blocks + j / a->block_size];
	size_t slot = (size_t)blk * a->block_size + (size_t)(j % a->block_size);
	size_t kv_dim = (size_t)a->n_kv_heads * a->head_dim;
	size_t esz = dt == BE_F32 ? 4 : 2;
	return (const char *)cache + (slot * kv_dim + (size_t)kvh * a->head_dim) * esz;
}

AI float score(const struct be_attn *a, const float *q, const void *k, enum be_dtype dt)
{
	float s = dot_lanes(q, k, dt, a->head_dim) * a->scale;
	if (a->softcap > 0)
		s = a->softcap * cpu_tanh(s / a->softcap);
	return s;
}

AI void att_one(const struct att_job *j, int task, enum be_dtype dt)
{
	const struct be_attn *a = j->a;
	int t = task / a->n_heads, h = task % a->n_heads;
	int hd = a->head_dim, kvh = h / (a->n_heads / a->n_kv_heads);
	int pos = a->pos[t], s = a->seq[t];
	int lo = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
	const float *q = j->q + ((size_t)t * a->n_heads + h) * hd;
	float *o = j->out + ((size_t)t * a->n_heads + h) * hd;
	float acc[ATT_MAX_HD];
	float m = -INFINITY, sum = 0;

	for (int k = lo; k <= pos; k++) {
		float sc = score(a, q, key_row(a, j->kc, dt, s, k, kvh), dt);
		m = sc > m ? sc : m;
	}
	for (int d = 0; d < hd; d++)
		acc[d] = 0;
	for (int k = lo; k <= pos; k++) {
		float p = expf(score(a, q, key_row(a, j->kc, dt, s, k, kvh), dt) - m);
		const void *v = key_row(a, j->vc, dt, s, k, kvh);
		sum += p;
		for (int d = 0; d < hd; d++)
			acc[d] = fmaf(p, kv_elem(v, dt, d), acc[d]);
	}
	for (int d = 0; d < hd; d++)
		o[d] = acc[d] / sum;
}

static void att_task_f32(void *arg, int task) { att_one(arg, task, BE_F32); }
static void att_task_bf16(void *arg, int task) { att_one(arg, task, BE_BF16); }

int cpu_attention(void *ctx, float *out, const float *q, const void *k_cache,
		  const void *v_cache, enum be_dtype kv_dt, const struct be_attn *a)
{
	struct att_job j = { out, q, k_cache, v_cache, a };

	if (kv_dt != BE_F32 && kv_dt != BE_BF16)
		return ST_ENOSYS;
	if (a->n_tok < 0 || a->n_heads <= 0 || a->n_kv_heads <= 0 ||
	    a->n_heads % a->n_kv_heads || a->head_dim <= 0 || a->head_dim > ATT_MAX_HD ||
	    a->block_size <= 0 || a->max_blocks <= 0)
		return ST_EINVAL;
	for (int t = 0; t < a->n_tok; t++)
		if (a->pos[t] < 0 || a->pos[t] >= a->max_blocks * a->block_size)
			return ST_EINVAL;
	cpu_parallel(ctx, a->n_tok * a->n_heads, kv_dt == BE_F32 ? att_task_f32 : att_task_bf16, &j);
	return 0;
}
