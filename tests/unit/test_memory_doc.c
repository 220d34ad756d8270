/*
 * test_memory_doc.c - docs/MEMORY.md's tables of memory plans (Gemma 2 on an
 * L4 and on an RTX PRO 6000) are what mem_plan_compute gives today: every
 * row is recomputed from its inputs (model preset, utilization, seqs,
 * batched tokens, max_model_len) on the device total the section states,
 * and its budget, weights, activations, reserve (MiB) and result (KV MiB,
 * blocks, tokens, max_model_len, or the error's exact text) must agree.
 * A change to the planner that moves a figure fails here until the page
 * is updated; tests/infra/doc_figures.test.sh then checks that the other
 * pages quote these rows and service.yaml consistently.
 *
 * Devices as tests/unit/test_mem_plan.c models them: nothing else running,
 * free = total - 300 MiB (L4) or - 500 MiB (RTX PRO 6000), weights not yet
 * placed, block tables of 512 blocks, the CUDA reserve, a bf16 KV cache.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/status.h"
#include "engine/mem_plan.h"
#include "kernels/gemma2.h"
#include "tests/harness.h"

#define MIB ((size_t)1 << 20)
#define MAX_COLS 12

/* Splits one table row "| a | b | ... |" into trimmed cells (in place). */
static int cells(char *line, char **out, int max)
{
	int n = 0;
	char *p = strchr(line, '|');

	while (p && n < max) {
		char *q = strchr(p + 1, '|');
		if (!q)
			break;
		*q = '\0';
		char *s = p + 1, *e = q;
		while (*s == ' ')
			s++;
		while (e > s && e[-1] == ' ')
			e--;
		*e = '\0';
		out[n++] = s;
		p = q;
	}
	return n;
}

/* |doc - exact| < 1 MiB: the page may round or truncate. */
static int mib_ok(const char *doc, size_t bytes)
{
	return fabs(atof(doc) - (double)bytes / (double)MIB) < 1.0;
}

/* The integer after the first occurrence of key in s, or -1. */
static long num_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	if (!p)
		return -1;
	p += strlen(key);
	while (*p && (*p < '0' || *p > '9'))
		p++;
	return *p ? strtol(p, NULL, 10) : -1;
}

/* The integer just before the first occurrence of key in s ("490 blocks"), or -1. */
static long num_before(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	if (!p)
		return -1;
	while (p > s && p[-1] == ' ')
		p--;
	while (p > s && p[-1] >= '0' && p[-1] <= '9')
		p--;
	return (*p >= '0' && *p <= '9') ? strtol(p, NULL, 10) : -1;
}

static int check_row(char **c, size_t total, size_t free_off, int row)
{
	struct g2_config cfg;
	struct mem_plan_in in;
	struct mem_plan p;
	char err[512] = "";
	const char *res = c[9];
	int rc, bad = 0;

	if (g2_config_preset(&cfg, c[0]) < 0) {
		CHECK(0, "row %d: unknown model '%s'", row, c[0]);
		return 1;
	}
	memset(&in, 0, sizeof(in));
	in.total_bytes = total;
	in.free_bytes = total - free_off;
	in.gpu_memory_utilization = atof(c[1]);
	in.max_num_seqs = atoi(c[2]);
	in.max_num_batched_tokens = atoi(c[3]);
	in.max_model_len = strncmp(c[4], "default", 7) ? atoi(c[4]) : 0;
	in.weight_bytes = (size_t)g2_n_params(&cfg) * 2;
	in.activation_bytes = mem_plan_activation_bytes(&cfg, in.max_num_batched_tokens, in.max_num_seqs, 512, 0);
	in.reserve_bytes = MEM_PLAN_CUDA_RESERVE;
	in.kv_dtype = BE_BF16;
	in.block_size = 16;
	rc = mem_plan_compute(&cfg, &in, &p, err, sizeof(err));
#define ROW_CHECK(cond, ...) do { if (!(cond)) { bad = 1; CHECK(0, __VA_ARGS__); } } while (0)
	ROW_CHECK(mib_ok(c[5], p.budget_bytes), "row %d (%s %s): budget %s MiB, plan %.1f", row, c[0], c[1],
		  c[5], (double)p.budget_bytes / MIB);
	ROW_CHECK(mib_ok(c[6], p.weight_bytes), "row %d: weights %s MiB, plan %.1f", row, c[6],
		  (double)p.weight_bytes / MIB);
	ROW_CHECK(mib_ok(c[7], p.activation_bytes), "row %d: activations %s MiB, plan %.1f", row, c[7],
		  (double)p.activation_bytes / MIB);
	ROW_CHECK(mib_ok(c[8], p.reserve_bytes), "row %d: reserve %s MiB, plan %.1f", row, c[8],
		  (double)p.reserve_bytes / MIB);
	if (!strncmp(res, "error:", 6)) {
		char want[400];
		const char *a = strchr(res, '`'), *b = a ? strchr(a + 1, '`') : NULL;
		ROW_CHECK(rc == ST_EINVAL, "row %d: the page says error, the plan succeeded", row);
		if (a && b && (size_t)(b - a - 1) < sizeof(want)) {
			memcpy(want, a + 1, (size_t)(b - a - 1));
			want[b - a - 1] = '\0';
			ROW_CHECK(strstr(err, want) != NULL, "row %d: page error '%s', plan '%s'", row, want, err);
		} else {
			ROW_CHECK(0, "row %d: the error is not quoted in backticks", row);
		}
		return bad;
	}
	ROW_CHECK(rc == 0, "row %d: the page shows a plan, the planner fails: %s", row, err);
	ROW_CHECK(mib_ok(res + 3, p.kv_bytes), "row %d: KV %s, plan %.1f MiB", row, res,
		  (double)p.kv_bytes / MIB);
	if (strstr(res, " blocks"))
		ROW_CHECK(num_before(res, " blocks") == p.kv_blocks, "row %d: blocks in '%s', plan %d", row,
			  res, p.kv_blocks);
	ROW_CHECK(num_before(res, " tokens") == p.kv_tokens, "row %d: tokens in '%s', plan %d", row, res,
		  p.kv_tokens);
	if (strstr(res, "max_model_len")) {
		const char *m = strstr(res, "max_model_len");
		long mml = strstr(m, " to ") ? num_after(m, " to ") : num_after(m, "max_model_len");
		ROW_CHECK(mml == p.max_model_len, "row %d: max_model_len in '%s', plan %d", row, res,
			  p.max_model_len);
	}
	if (strstr(res, " full-length"))
		ROW_CHECK(num_before(res, " full-length") == p.max_concurrent_seqs,
			  "row %d: full-length sequences in '%s', plan %d", row, res, p.max_concurrent_seqs);
#undef ROW_CHECK
	return bad;
}

static void test_memory_md_tables(void)
{
	char *text = NULL, *line, *save = NULL;
	size_t len = 0, total = 0, free_off = 0;
	int rows = 0, in_section = 0;

	if (read_file("docs/MEMORY.md", (size_t)1 << 20, &text, &len) < 0) {
		CHECK(0, "cannot read docs/MEMORY.md (run from the repository root)");
		return;
	}
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c[MAX_COLS];
		if (!strncmp(line, "## ", 3)) {
			in_section = 1;
			if (strstr(line, "NVIDIA L4")) {
				total = (size_t)23034 * MIB;
				free_off = 300 * MIB;
			} else if (strstr(line, "RTX PRO 6000")) {
				total = (size_t)97887 * MIB;
				free_off = 500 * MIB;
			} else {
				in_section = 0;
			}
			continue;
		}
		/* the device total as the section states it */
		if (in_section && (strstr(line, "23,034 MiB total") || strstr(line, "97,887 MiB")))
			CHECK((strstr(line, "23,034") && total == (size_t)23034 * MIB) ||
			      (strstr(line, "97,887") && total == (size_t)97887 * MIB), "section total: %s", line);
		if (!in_section || line[0] != '|' || cells(line, c, MAX_COLS) != 10 || !strcmp(c[0], "model") ||
		    c[0][0] == '-')
			continue;
		rows++;
		check_row(c, total, free_off, rows);
	}
	CHECK(rows >= 10, "only %d plan rows found in docs/MEMORY.md", rows);
	free(text);
}

int main(void)
{
	RUN(test_memory_md_tables);
	return th_done();
}
