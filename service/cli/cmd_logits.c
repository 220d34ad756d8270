/*
 * cmd_logits.c - `gemma-run logits --model URI --ids 2,651,...
 * [--backend cpu|cuda|auto] [--threads N]`: loads the model, runs the ids
 * as one sequence in one forward step and prints the logits of every
 * position as JSON {"logits":[[f32 x vocab] per position]} (after the
 * final soft-cap), each float with %.9g so it reads back exactly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "kernels/gemma2.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"
#include "service/cli/cli.h"

#define LOGITS_MAX_IDS 65536

static void usage(FILE *f)
{
	fprintf(f, "usage: gemma-run logits --model URI --ids 2,651,... [--backend cpu|cuda|auto] "
		   "[--threads N]\n");
}

/* Parses "2,651,3" into a new array; 0 or ST_EINVAL. */
static int parse_ids(const char *s, int32_t **out, int *n_out)
{
	int cap = 1, n = 0;
	int32_t *ids;

	for (const char *p = s; *p; p++)
		cap += *p == ',';
	if (cap > LOGITS_MAX_IDS)
		return ST_EINVAL;
	ids = malloc((size_t)cap * sizeof(int32_t));
	if (!ids)
		return ST_ENOMEM;
	while (*s) {
		char num[24];
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		int64_t v;
		if (len == 0 || len >= sizeof(num))
			goto bad;
		memcpy(num, s, len);
		num[len] = 0;
		if (parse_i64(num, &v) < 0 || v < 0 || v > INT32_MAX)
			goto bad;
		ids[n++] = (int32_t)v;
		s += len + (e ? 1 : 0);
		if (e && !*s)
			goto bad;
	}
	if (n == 0)
		goto bad;
	*out = ids;
	*n_out = n;
	return 0;
bad:
	free(ids);
	return ST_EINVAL;
}

int cmd_logits(int argc, char **argv)
{
	const char *model = NULL, *ids_s = NULL, *backend = "auto";
	struct be_opts bo = { 0 };
	struct ld_opts lo;
	struct be be = { 0 };
	struct ld_model *m = NULL;
	struct kv_cache *kv = NULL;
	struct g2_model *g = NULL;
	int32_t *ids = NULL, *pos = NULL, *seq = NULL, *rows = NULL, *bt = NULL;
	float *logits = NULL;
	int n = 0, nb, vocab, ret = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--model") == 0 && i + 1 < argc) {
			model = argv[++i];
		} else if (strcmp(a, "--ids") == 0 && i + 1 < argc) {
			ids_s = argv[++i];
		} else if (strcmp(a, "--backend") == 0 && i + 1 < argc) {
			backend = argv[++i];
		} else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
			int64_t v;
			if (parse_i64(argv[++i], &v) < 0 || v < 0 || v > 1024) {
				fprintf(stderr, "gemma-run logits: bad --threads '%s'\n", argv[i]);
				return 2;
			}
			bo.n_threads = (int)v;
		} else {
			fprintf(stderr, "gemma-run logits: unknown argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!model || !ids_s) {
		fprintf(stderr, "gemma-run logits: --model and --ids are required\n");
		usage(stderr);
		return 2;
	}
	if (parse_ids(ids_s, &ids, &n) < 0) {
		fprintf(stderr, "gemma-run logits: bad --ids '%s' (comma-separated token ids)\n", ids_s);
		return 2;
	}
	if (be_create(backend, &bo, &be) < 0)
		goto out;
	ld_opts_default(&lo);
	if (ld_load(model, &lo, &be, NULL, &m) < 0)
		goto out;
	vocab = m->cfg.vocab_size;
	for (int i = 0; i < n; i++) {
		if (ids[i] >= vocab) {
			fprintf(stderr, "gemma-run logits: id %d at index %d is not below vocab_size %d\n",
				ids[i], i, vocab);
			ret = 2;
			goto out;
		}
	}
	if (n > m->cfg.max_position_embeddings) {
		fprintf(stderr, "gemma-run logits: %d ids exceed max_position_embeddings %d\n", n,
			m->cfg.max_position_embeddings);
		ret = 2;
		goto out;
	}
	if (kv_cache_create(&be, &m->cfg, KV_DEFAULT_BLOCK_SIZE,
			    kv_bytes_per_block(&m->cfg, KV_DEFAULT_BLOCK_SIZE, be.ops->kv_dtype) *
				    (size_t)((n + KV_DEFAULT_BLOCK_SIZE - 1) / KV_DEFAULT_BLOCK_SIZE),
			    &kv) < 0)
		goto out;
	nb = kv_blocks_for(kv, n);
	if (ld_g2_model_create(m, n, 1, nb, &g) < 0)
		goto out;
	pos = malloc((size_t)n * sizeof(int32_t));
	seq = calloc((size_t)n, sizeof(int32_t));
	rows = malloc((size_t)n * sizeof(int32_t));
	bt = malloc((size_t)nb * sizeof(int32_t));
	logits = malloc((size_t)n * (size_t)vocab * sizeof(float));
	if (!pos || !seq || !rows || !bt || !logits) {
		log_err(ST_ENOMEM, "logits: out of memory for %d positions", n);
		goto out;
	}
	for (int i = 0; i < n; i++)
		pos[i] = rows[i] = i;
	if (kv_alloc_n(kv, nb, bt) < 0)
		goto out;
	{
		int32_t len = n;
		struct g2_batch b = { .n_tok = n, .tokens = ids, .positions = pos, .seq = seq,
				      .n_seqs = 1, .block_tables = bt, .max_blocks = nb,
				      .ctx_lens = &len, .n_logits = n, .logit_rows = rows };
		if (g2_forward(g, kv, &b, logits) < 0)
			goto out;
	}
	fputs("{\"logits\":[", stdout);
	for (int p = 0; p < n; p++) {
		const float *r = logits + (size_t)p * vocab;
		fputs(p ? ",[" : "[", stdout);
		for (int i = 0; i < vocab; i++)
			printf(i ? ",%.9g" : "%.9g", (double)r[i]);
		fputc(']', stdout);
	}
	fputs("]}\n", stdout);
	ret = fflush(stdout) == 0 ? 0 : 1;
out:
	free(logits);
	free(bt);
	free(rows);
	free(seq);
	free(pos);
	free(ids);
	g2_model_destroy(g);
	kv_cache_destroy(kv);
	ld_model_destroy(m);
	be_destroy(&be);
	return ret;
}
