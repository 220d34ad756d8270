/*
 * cmd_logits.c - `gemma-run logits --model URI --ids 2,651,...
 * [--backend cpu|cuda|auto] [--threads N]`: loads the model, runs the ids
 * as one sequence in one forward step and prints the logits of every
 * position as JSON {"logits":[[f32 x vocab] per position]} (after the
 * final soft-cap), each float with %.9g so it reads back exactly.
 *
 * Not the engine: one g2_forward over the whole prompt, no sampling, no
 * tokenizer (the ids are given). On the CPU backend the KV cache is fp32
 * here (the reference figures; served, it is bf16). Exit status: 0 ok, 1 failure, 2 usage
 * error (bad ids, ids at or above vocab_size, more than the context).
 */
#include "service/cli/cmd_logits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/gemma2.h"
#include "kernels/kv_cache.h"
#include "loader/loader.h"
#include "service/cli/cli_flags.h"
#include "service/cli/cli_startup.h"

#define LOGITS_MAX_IDS 65536

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
	const char *ids_s = NULL;
	struct cli_model_opts mo;
	struct cli_model cm = { 0 };
	struct ld_model *m;
	struct kv_cache *kv = NULL;
	struct g2_model *g = NULL;
	int32_t *ids = NULL, *pos = NULL, *seq = NULL, *rows = NULL, *bt = NULL;
	float *logits = NULL;
	int n = 0, nb, vocab, ret = 1;
	char err[256];

	cli_model_opts_default(&mo);
	const struct cli_flag flags[] = {
		CLI_F_STR("model", &mo.uri, "URI", "directory, gs://bucket/prefix or http(s)://host/prefix"),
		CLI_F_STR("ids", &ids_s, "2,651,...", "the token ids, comma separated"),
		CLI_F_STR("backend", &mo.backend, "B", "cpu | cuda | auto (default auto)"),
		CLI_F_INT("threads", &mo.threads, "N", "CPU backend threads (0: all cores)", 0, 1024),
	};
	const struct cli_cmd cmd = { "logits", "logits --model URI --ids 2,651,... [flags]", flags,
				     ARRAY_SIZE(flags), NULL };
	if ((ret = cli_flags_parse(&cmd, argc, argv)) != CLI_GO_ON)
		return ret;
	if (!mo.uri || !ids_s) {
		fprintf(stderr, "gemma-run logits: --model and --ids are required\n");
		cli_flags_help(&cmd, stderr);
		return 2;
	}
	if (parse_ids(ids_s, &ids, &n) < 0) {
		fprintf(stderr, "gemma-run logits: bad --ids '%s' (comma-separated token ids)\n", ids_s);
		return 2;
	}
	ret = 1;
	if (cli_model_open(&mo, &cm, err, sizeof(err)) < 0) {
		fprintf(stderr, "gemma-run logits: %s\n", err);
		goto out;
	}
	m = cm.model;
	vocab = m->cfg.vocab_size;
	if (strcmp(cm.be.ops->name, "cpu") == 0 && cm.be.ops->kv_dtype != BE_F32) {
		/* the reference figures: an fp32 KV cache (the served CPU cache is bf16) */
		static struct be_ops f32kv;
		f32kv = *cm.be.ops;
		f32kv.kv_dtype = BE_F32;
		cm.be.ops = &f32kv;
	}
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
	if (kv_cache_create(&cm.be, &m->cfg, KV_DEFAULT_BLOCK_SIZE,
			    kv_bytes_per_block(&m->cfg, KV_DEFAULT_BLOCK_SIZE, cm.be.ops->kv_dtype) *
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
	cli_model_close(&cm);
	return ret;
}
