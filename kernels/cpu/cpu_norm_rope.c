/*
 * cpu_norm_rope.c - the CPU backend's RMSNorm (sums of squares in double)
 * and RoPE (angles in fp32, as the reference); the CUDA twins are in
 * kernels/cuda/cu_norm_rope.cu.
 */
#include <math.h>

#include "common/status.h"
#include "kernels/cpu/cpu.h"

#define EW_CHUNK CPU_EW_CHUNK	/* rows are split into tasks above this many elements */
#define ROPE_MAX_HALF 512

/* ---- RMSNorm ---- */

struct norm_job {
	float *out;
	const float *x;
	const void *w;
	enum be_dtype wdt;
	int d;
	float eps;
};

static void norm_task(void *arg, int t)
{
	const struct norm_job *j = arg;
	const float *x = j->x + (size_t)t * j->d;
	float *o = j->out + (size_t)t * j->d;
	double ss = 0;
	float r;

	for (int i = 0; i < j->d; i++)
		ss += (double)x[i] * (double)x[i];
	r = (float)(1.0 / sqrt(ss / j->d + (double)j->eps));
	for (int i = 0; i < j->d; i++)
		o[i] = (x[i] * r) * (1.0f + cpu_load_elem(j->w, j->wdt, (size_t)i));
}

int cpu_rmsnorm(void *ctx, float *out, const float *x, const void *w, enum be_dtype wdt,
		int n_tok, int d, float eps)
{
	struct norm_job j = { out, x, w, wdt, d, eps };

	if (n_tok < 0 || d <= 0)
		return ST_EINVAL;
	if ((size_t)n_tok * (size_t)d < EW_CHUNK)
		for (int t = 0; t < n_tok; t++)
			norm_task(&j, t);
	else
		cpu_parallel(ctx, n_tok, norm_task, &j);
	return 0;
}

/* ---- RoPE ---- */

int cpu_rope(void *ctx, float *x, const int32_t *pos, int n_tok, int n_heads, int head_dim,
	     float theta)
{
	float inv_freq[ROPE_MAX_HALF];
	int half = head_dim / 2;

	(void)ctx;
	if (n_tok < 0 || n_heads <= 0 || head_dim <= 0 || head_dim % 2 || half > ROPE_MAX_HALF)
		return ST_EINVAL;
	for (int i = 0; i < half; i++)
		inv_freq[i] = (float)(1.0 / pow((double)theta, (double)(2 * i) / head_dim));
	for (int t = 0; t < n_tok; t++) {
		float p = (float)pos[t];
		float cs[ROPE_MAX_HALF], sn[ROPE_MAX_HALF];
		for (int i = 0; i < half; i++) {
			float ang = p * inv_freq[i];	/* fp32, as the reference */
			cs[i] = (float)cos((double)ang);
			sn[i] = (float)sin((double)ang);
		}
		for (int h = 0; h < n_heads; h++) {
			float *v = x + ((size_t)t * n_heads + h) * head_dim;
			for (int i = 0; i < half; i++) {
				float a = v[i], b = v[i + half];
				v[i] = a * cs[i] - b * sn[i];
				v[i + half] = b * cs[i] + a * sn[i];
			}
		}
	}
	return 0;
}
