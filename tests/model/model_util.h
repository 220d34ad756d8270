/*
 * model_util.h - shared helpers of the model tests (tests/model/test_*.c):
 * open a model directory on the CPU backend with a KV cache, run whole
 * sequences, argmax, find the golden model directories and read their
 * cases.json. Everything static inline; tests only.
 */
#ifndef GR_TEST_MODEL_UTIL_H
#define GR_TEST_MODEL_UTIL_H

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/gemma2.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"

static inline int tm_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The golden model directories under root: those holding cases.json beside
 * config.json (tokenizer/ has no config), sorted by name, at most max.
 * Returns how many (names strdup'd, caller frees each) or -1 if root
 * cannot be opened. Held-back models in the same format are found too.
 */
static inline int tm_golden_dirs(const char *root, char **names, int max)
{
	DIR *d = opendir(root);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) && n < max) {
		char p[1024];
		FILE *f;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/cases.json", root, e->d_name);
		if (!(f = fopen(p, "r")))
			continue;
		fclose(f);
		snprintf(p, sizeof(p), "%s/%s/config.json", root, e->d_name);
		if (!(f = fopen(p, "r")))
			continue;
		fclose(f);
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof(char *), tm_cmp_str);
	return n;
}

/* dir/cases.json parsed (caller frees with cJSON_Delete), or NULL. */
static inline cJSON *tm_read_cases(const char *dir)
{
	char path[1100], *json = NULL;
	size_t len;
	cJSON *doc;

	snprintf(path, sizeof(path), "%s/cases.json", dir);
	if (read_file(path, 64u << 20, &json, &len) < 0)
		return NULL;
	doc = cJSON_ParseWithLength(json, len);
	free(json);
	return doc;
}

struct tm_model {
	struct be be;
	struct ld_model *m;
	struct g2_model *g;
	struct kv_cache *kv;
	int max_blocks;
};

static inline void tm_close(struct tm_model *t)
{
	g2_model_destroy(t->g);
	kv_cache_destroy(t->kv);
	ld_model_destroy(t->m);
	be_destroy(&t->be);
	memset(t, 0, sizeof(*t));
}

/* The cpu backend's ops with an F32 KV cache (the reference configuration). */
static struct be_ops tm_cpu_f32kv_ops;

/*
 * Opens dir on the cpu backend; cache of n_blocks blocks of block_size.
 * kv_f32: an fp32 KV cache instead of the backend's (bf16, as served).
 */
static inline int tm_open_kv(struct tm_model *t, const char *dir, int n_threads, int max_tokens,
			     int max_seqs, int max_ctx, int block_size, int n_blocks, int kv_f32)
{
	struct be_opts bo = { .n_threads = n_threads };
	struct ld_opts lo;
	int rc;

	memset(t, 0, sizeof(*t));
	ld_opts_default(&lo);
	if ((rc = be_create("cpu", &bo, &t->be)) < 0)
		return rc;
	if (kv_f32) {
		tm_cpu_f32kv_ops = *t->be.ops;
		tm_cpu_f32kv_ops.kv_dtype = BE_F32;
		t->be.ops = &tm_cpu_f32kv_ops;
	}
	if ((rc = ld_load(dir, &lo, &t->be, NULL, &t->m)) < 0)
		goto fail;
	if ((rc = kv_cache_create(&t->be, &t->m->cfg, block_size,
				  kv_bytes_per_block(&t->m->cfg, block_size, t->be.ops->kv_dtype) *
					  (size_t)n_blocks,
				  &t->kv)) < 0)
		goto fail;
	t->max_blocks = kv_blocks_for(t->kv, max_ctx);
	if ((rc = ld_g2_model_create(t->m, max_tokens, max_seqs, t->max_blocks, &t->g)) < 0)
		goto fail;
	return 0;
fail:
	tm_close(t);
	return rc;
}

static inline int tm_open(struct tm_model *t, const char *dir, int n_threads, int max_tokens,
			  int max_seqs, int max_ctx, int block_size, int n_blocks)
{
	return tm_open_kv(t, dir, n_threads, max_tokens, max_seqs, max_ctx, block_size, n_blocks, 0);
}

/* Index of the largest value (lowest index on ties). */
static inline int tm_argmax(const float *x, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

/*
 * Runs ids[0..n) of one fresh sequence as one step (chunk = 0) or in steps
 * of chunk tokens; writes the logits of every position into logits
 * (n x vocab). Takes and gives back its own blocks.
 */
static inline int tm_run_seq(struct tm_model *t, const int32_t *ids, int n, int chunk,
			     float *logits)
{
	int vocab = t->m->cfg.vocab_size, nb = kv_blocks_for(t->kv, n), rc = 0;
	int32_t *bt = calloc((size_t)t->max_blocks, sizeof(int32_t));
	int32_t *pos = calloc((size_t)n, sizeof(int32_t)), *seq = calloc((size_t)n, sizeof(int32_t));
	int32_t *rows = calloc((size_t)n, sizeof(int32_t));

	if (!bt || !pos || !seq || !rows || nb > t->max_blocks) {
		rc = -1;
		goto out;
	}
	if ((rc = kv_alloc_n(t->kv, nb, bt)) < 0)
		goto out;
	if (chunk <= 0)
		chunk = n;
	for (int i = 0; i < n; i++)
		pos[i] = i;
	for (int s0 = 0; s0 < n && rc == 0; s0 += chunk) {
		int m = n - s0 < chunk ? n - s0 : chunk;
		int32_t len = s0 + m;
		for (int i = 0; i < m; i++)
			rows[i] = i;
		struct g2_batch b = {
			.n_tok = m, .tokens = ids + s0, .positions = pos + s0, .seq = seq,
			.n_seqs = 1, .block_tables = bt, .max_blocks = t->max_blocks,
			.ctx_lens = &len, .n_logits = m, .logit_rows = rows,
		};
		rc = g2_forward(t->g, t->kv, &b, logits + (size_t)s0 * vocab);
	}
	kv_free_n(t->kv, bt, nb);
out:
	free(bt);
	free(pos);
	free(seq);
	free(rows);
	return rc;
}

#endif
