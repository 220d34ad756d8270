/*
 * cpu_elementwise.c - the CPU backend's element-wise and per-row ops:
 * embedding, KV write, GELU-tanh gate, residual add, soft-cap, row gather
 * (the CUDA twins are in kernels/cuda/cu_elementwise.cu). Everything in
 * fp32; each output value is computed by exactly one task in a fixed order.
 */
#include <math.h>
#include <string.h>

#include "common/status.h"
#include "kernels/cpu/cpu.h"

#define EW_CHUNK CPU_EW_CHUNK

/* ---- embedding ---- */

int cpu_embed(void *ctx, float *out, const void *table, enum be_dtype dt, const int32_t *ids,
	      int n_tok, int d, float scale)
{
	(void)ctx;
	if (n_tok < 0 || d <= 0)
		return ST_EINVAL;
	for (int t = 0; t < n_tok; t++) {
		size_t base = (size_t)ids[t] * (size_t)d;
		float *o = out + (size_t)t * d;
		for (int i = 0; i < d; i++)
			o[i] = cpu_load_elem(table, dt, base + (size_t)i) * scale;
	}
	return 0;
}
/* ---- KV write ---- */

int cpu_kv_write(void *ctx, void *k_cache, void *v_cache, enum be_dtype kv_dt, const float *k,
		 const float *v, const int32_t *slots, int n_tok, int kv_dim)
{
	(void)ctx;
	if (kv_dt != BE_F32 && kv_dt != BE_BF16)
		return ST_ENOSYS;
	if (n_tok < 0 || kv_dim <= 0)
		return ST_EINVAL;
	for (int t = 0; t < n_tok; t++) {
		size_t s = (size_t)slots[t] * (size_t)kv_dim;
		const float *kt = k + (size_t)t * kv_dim, *vt = v + (size_t)t * kv_dim;
		if (kv_dt == BE_F32) {
			memcpy((float *)k_cache + s, kt, (size_t)kv_dim * sizeof(float));
			memcpy((float *)v_cache + s, vt, (size_t)kv_dim * sizeof(float));
			continue;
		}
		/* bf16, rounded to nearest even (the CUDA backend's __float2bfloat16) */
		for (int i = 0; i < kv_dim; i++) {
			((bf16 *)k_cache)[s + (size_t)i] = f32_to_bf16(kt[i]);
			((bf16 *)v_cache)[s + (size_t)i] = f32_to_bf16(vt[i]);
		}
	}
	return 0;
}

/* ---- element-wise: gelu_mul, add, softcap (tasks of EW_CHUNK elements) ---- */

struct ew_job {
	float *out;
	const float *a, *b;
	size_t n;
	float cap;
};

static size_t ew_len(const struct ew_job *j, int task)
{
	size_t lo = (size_t)task * EW_CHUNK;
	return j->n - lo < EW_CHUNK ? j->n - lo : EW_CHUNK;
}

static int ew_tasks(size_t n)
{
	return (int)((n + EW_CHUNK - 1) / EW_CHUNK);
}

static void gelu_task(void *arg, int task)
{
	const struct ew_job *j = arg;
	const float k0 = 0.7978845608028654f;	/* sqrt(2/pi) */
	size_t lo = (size_t)task * EW_CHUNK, n = ew_len(j, task);
	float *out = j->out + lo;
	const float *gate = j->a + lo, *up = j->b + lo;

	for (size_t i = 0; i < n; i++) {
		float g = gate[i];
		float t = cpu_tanh(k0 * (g + 0.044715f * (g * g * g)));
		out[i] = (0.5f * g * (1.0f + t)) * up[i];
	}
}

int cpu_gelu_mul(void *ctx, float *out, const float *gate, const float *up, size_t n)
{
	struct ew_job j = { out, gate, up, n, 0 };
	cpu_parallel(ctx, ew_tasks(n), gelu_task, &j);
	return 0;
}

static void add_task(void *arg, int task)
{
	const struct ew_job *j = arg;
	size_t lo = (size_t)task * EW_CHUNK, n = ew_len(j, task);
	float *y = j->out + lo;
	const float *x = j->a + lo;

	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

int cpu_add(void *ctx, float *y, const float *x, size_t n)
{
	struct ew_job j = { y, x, NULL, n, 0 };
	cpu_parallel(ctx, ew_tasks(n), add_task, &j);
	return 0;
}

static void softcap_task(void *arg, int task)
{
	const struct ew_job *j = arg;
	size_t lo = (size_t)task * EW_CHUNK, n = ew_len(j, task);
	float *x = j->out + lo;
	float cap = j->cap;

	for (size_t i = 0; i < n; i++)
		x[i] = cap * cpu_tanh(x[i] / cap);
}

int cpu_softcap(void *ctx, float *x, size_t n, float cap)
{
	struct ew_job j = { x, NULL, NULL, n, cap };
	if (!(cap > 0))
		return ST_EINVAL;
	cpu_parallel(ctx, ew_tasks(n), softcap_task, &j);
	return 0;
}

/* ---- row gather ---- */

int cpu_gather_rows(void *ctx, float *out, const float *x, const int32_t *rows, int n_rows,
		    int d)
{
	(void)ctx;
	if (n_rows < 0 || d <= 0)
		return ST_EINVAL;
	for (int r = 0; r < n_rows; r++)
		memcpy(out + (size_t)r * d, x + (size_t)rows[r] * d, (size_t)d * sizeof(float));
	return 0;
}
