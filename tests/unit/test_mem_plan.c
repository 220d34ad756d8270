/*
 * test_mem_plan.c - the start-up memory plan (engine/mem_plan.h) on the
 * figures of real devices, without one: Gemma 2 9B/2B/27B in bf16 on an
 * NVIDIA L4, error messages naming the flag to change, the default
 * max_model_len lowered with a warning, other processes' memory, host RAM.
 *
 * The L4: 23,034 MiB total. That is the total nvidia-smi prints for a 24 GB
 * L4 (24 GiB of GDDR6 less what the driver and ECC keep); cudaMemGetInfo's
 * total on the same board is that figure (we had no L4 to measure it on:
 * the number is the brief's, and a few MiB either way moves the KV budget
 * by a few tokens only, see the ranges below).
 *
 * 9B bf16 on that L4 at --gpu-memory-utilization 0.90, max_num_seqs 8,
 * max_num_batched_tokens 2048 (the service's defaults), block size 16:
 *   total       23,034 MiB             = 24,152,899,584 B
 *   budget      0.90 x total           = 21,737,609,625 B   (20,730.6 MiB)
 *   weights     9,241,705,984 params x 2 = 18,483,411,968 B (17,627.1 MiB)
 *   activations g2 scratch 2048 x (3x3584 + 2x4096 + 2x2048 + 2x14336) x 4
 *               = 423,624,704; logits rows 8 x (3584 + 256000) x 4 =
 *               8,306,688; indices 2048 x 5 x 4 = 40,960; block tables
 *               8 x 512 x 4 = 16,384; cuBLAS input copy 2048 x 14336 x 2 =
 *               58,720,256; split-attention partials 8 MiB = 8,388,608
 *                                  =    499,097,600 B   (476.0 MiB)
 *   reserve     512 MiB            =    536,870,912 B
 *   KV budget   21,737,609,625 - 18,483,411,968 - 499,097,600 - 536,870,912
 *                                  =  2,218,229,145 B   (2,115.4 MiB)
 *   per token   2 x 42 x 8 x 256 x 2 = 344,064 B; per block x16 = 5,505,024 B
 *   blocks      floor(2,218,229,145 / 5,505,024) = 402 -> 6,432 tokens
 * So 9B fits with a 6,432-token KV cache, which is less than one 8,192-token
 * sequence (2,818,572,288 B): the default max_model_len is lowered to 6,432
 * with a warning, and an explicit --max-model-len 8192 needs
 * (18,483,411,968 + 499,097,600 + 536,870,912 + 2,818,572,288) / total =
 * 0.9249 -> --gpu-memory-utilization 0.93 (534 blocks, 8,544 tokens).
 */
#include <stdio.h>
#include <string.h>

#include "common/status.h"
#include "kernels/gemma2.h"
#include "engine/mem_plan.h"
#include "tests/harness.h"

#define MIB ((size_t)1 << 20)
#define L4_TOTAL ((size_t)23034 * MIB)

static struct g2_config preset(const char *name)
{
	struct g2_config c;
	g2_config_preset(&c, name);
	return c;
}

/* An L4 running nothing else: free = total - 300 MiB of CUDA context, weights not yet placed. */
static struct mem_plan_in l4_in(const struct g2_config *c, double util, int max_seqs, int mml)
{
	struct mem_plan_in in;
	memset(&in, 0, sizeof(in));
	in.total_bytes = L4_TOTAL;
	in.free_bytes = L4_TOTAL - 300 * MIB;
	in.weights_resident = 0;
	in.gpu_memory_utilization = util;
	in.weight_bytes = (size_t)g2_n_params(c) * 2;
	in.activation_bytes = mem_plan_activation_bytes(c, 2048, max_seqs, 512, 0);
	in.reserve_bytes = MEM_PLAN_CUDA_RESERVE;
	in.kv_dtype = BE_BF16;
	in.block_size = 16;
	in.max_num_seqs = max_seqs;
	in.max_num_batched_tokens = 2048;
	in.max_model_len = mml;
	return in;
}

static void test_9b_l4_fits(void)
{
	struct g2_config c = preset("9b");
	struct mem_plan_in in = l4_in(&c, 0.90, 8, 0);
	struct mem_plan p;
	char err[512];

	CHECK(in.weight_bytes == 18483411968u, "9B weights %zu", in.weight_bytes);
	CHECK(in.activation_bytes == 499097600u, "9B activations %zu (hand: 499,097,600)",
	      in.activation_bytes);
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "9B on L4: %s", err);
	CHECK(p.kv_token_bytes == 344064, "per token %zu, want 344,064 (docs/MEMORY.md: 344 KiB)",
	      p.kv_token_bytes);
	CHECK(p.budget_bytes == 21737609625u, "budget %zu", p.budget_bytes);
	CHECK(p.kv_blocks == 402 && p.kv_tokens == 6432, "blocks %d tokens %d, hand: 402 / 6432",
	      p.kv_blocks, p.kv_tokens);
	CHECK(p.kv_tokens >= 6000 && p.kv_tokens <= 6800, "KV tokens %d outside [6000, 6800]",
	      p.kv_tokens);
	CHECK(p.weight_bytes + p.activation_bytes + p.reserve_bytes + p.kv_bytes <= p.budget_bytes,
	      "plan exceeds its budget");
	CHECK(strcmp(p.kv_limit, "budget") == 0, "limit %s", p.kv_limit);
	/* implicit max_model_len (config 8192) lowered with a warning */
	CHECK(p.max_model_len_wanted == 8192 && p.max_model_len == 6432, "mml %d -> %d",
	      p.max_model_len_wanted, p.max_model_len);
	CHECK(strstr(p.warning, "max_model_len lowered from 8192 to 6432") != NULL, "warning '%s'",
	      p.warning);
	CHECK(p.max_concurrent_seqs == 1, "concurrent %d", p.max_concurrent_seqs);
}

static void test_9b_l4_8192_needs_093(void)
{
	struct g2_config c = preset("9b");
	struct mem_plan_in in = l4_in(&c, 0.90, 8, 8192);
	struct mem_plan p;
	char err[512];

	/* explicit 8192 at 0.90: vLLM's error, naming both ways out */
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL, "8192 at 0.90 fit");
	CHECK(strstr(err, "--max-model-len 8192") && strstr(err, "at most 6432") &&
	      strstr(err, "--gpu-memory-utilization to 0.93"), "message: %s", err);
	/* at 0.93 it fits: floor((0.93 x total - fixed) / 5,505,024) = 534 blocks */
	in.gpu_memory_utilization = 0.93;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "8192 at 0.93: %s", err);
	CHECK(p.kv_blocks == 534 && p.max_model_len == 8192 && p.max_concurrent_seqs == 1 &&
	      p.warning[0] == '\0', "blocks %d mml %d conc %d warning '%s'", p.kv_blocks,
	      p.max_model_len, p.max_concurrent_seqs, p.warning);
}

static void test_2b_l4_larger(void)
{
	struct g2_config c = preset("2b");
	struct mem_plan_in in = l4_in(&c, 0.90, 64, 0);
	struct mem_plan p9, p;
	struct g2_config c9 = preset("9b");
	struct mem_plan_in in9 = l4_in(&c9, 0.90, 8, 0);
	char err[512];

	CHECK(mem_plan_compute(&c9, &in9, &p9, err, sizeof(err)) == 0, "9B: %s", err);
	/* 2B: weights 5,228,683,776 B; per token 2 x 26 x 4 x 256 x 2 = 106,496 B.
	 * Budget-limited with 64 sequences: (21,737,609,625 - 5,228,683,776 -
	 * activations - 536,870,912) / (16 x 106,496) ~ 9,190 blocks ~ 147K tokens. */
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "2B: %s", err);
	CHECK(p.kv_token_bytes == 106496, "2B per token %zu", p.kv_token_bytes);
	CHECK(p.kv_tokens > 140000 && p.kv_tokens < 150000, "2B KV tokens %d", p.kv_tokens);
	CHECK(p.kv_tokens > 20 * p9.kv_tokens, "2B %d tokens vs 9B %d", p.kv_tokens, p9.kv_tokens);
	CHECK(p.max_model_len == 8192 && p.max_concurrent_seqs == p.kv_blocks / 512 &&
	      p.max_concurrent_seqs >= 17 && p.warning[0] == '\0', "mml %d conc %d warn '%s'",
	      p.max_model_len, p.max_concurrent_seqs, p.warning);
	CHECK(strcmp(p.kv_limit, "budget") == 0, "limit %s", p.kv_limit);
	/* with 8 sequences the cache stops at what they can use: 8 x 8192 tokens */
	in = l4_in(&c, 0.90, 8, 0);
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "2B x8: %s", err);
	CHECK(p.kv_tokens == 8 * 8192 && strcmp(p.kv_limit, "max_num_seqs") == 0 &&
	      p.max_concurrent_seqs == 8, "tokens %d limit %s", p.kv_tokens, p.kv_limit);
	/* ... unless prefix caching keeps the rest for cached prefixes */
	in.prefix_caching = 1;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "2B x8 cached: %s", err);
	CHECK(p.kv_tokens > 140000 && strcmp(p.kv_limit, "budget") == 0,
	      "prefix caching: tokens %d limit %s", p.kv_tokens, p.kv_limit);
}

static void test_27b_l4_does_not_fit(void)
{
	struct g2_config c = preset("27b");
	struct mem_plan_in in = l4_in(&c, 0.90, 8, 0);
	struct mem_plan p;
	char err[512];

	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL, "27B fit on an L4");
	CHECK(strstr(err, "does not fit on this device") && strstr(err, "23034 MiB"), "message: %s",
	      err);
	/* even at utilization 1.0 */
	in.gpu_memory_utilization = 1.0;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "does not fit on this device"), "at 1.0: %s", err);
}

static void test_9b_low_utilization(void)
{
	struct g2_config c = preset("9b");
	struct mem_plan_in in = l4_in(&c, 0.70, 8, 0);
	struct mem_plan p;
	char err[512];

	/* 0.70 x 23,034 MiB = 16,124 MiB < 17,627 MiB of weights */
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL, "9B fit at 0.70");
	CHECK(strstr(err, "--gpu-memory-utilization 0.70") &&
	      strstr(err, "raise --gpu-memory-utilization to at least 0.93"), "message: %s", err);
	/* a budget that leaves less than one block (5,505,024 B) after the fixed parts */
	in.gpu_memory_utilization =
		((double)(in.weight_bytes + in.activation_bytes + in.reserve_bytes) + 2e6) /
		(double)in.total_bytes;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "--gpu-memory-utilization"), "under one block: %s", err);
}

static void test_9b_long_context(void)
{
	struct g2_config c = preset("9b");
	struct mem_plan_in in = l4_in(&c, 0.85, 8, 65536);
	struct mem_plan p;
	char err[512];

	/* longer than the model's positions: vLLM refuses it too */
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "--max-model-len 65536") && strstr(err, "max_position_embeddings 8192"),
	      "65536 > positions: %s", err);
	/* a long-context variant of the shapes: 65536 tokens need 21 GiB of KV */
	c.max_position_embeddings = 131072;
	in.gpu_memory_utilization = 0.95;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL, "65536 fit");
	CHECK(strstr(err, "--max-model-len 65536 needs 21504 MiB") && strstr(err, "lower --max-model-len"),
	      "message: %s", err);
	CHECK(strstr(err, "raise --gpu-memory-utilization") == NULL,
	      "suggests a utilization above 1: %s", err);
}

static void test_other_processes(void)
{
	struct g2_config c = preset("9b");
	struct mem_plan_in in = l4_in(&c, 0.90, 8, 0);
	struct mem_plan p;
	char err[512];

	/* another process holds 1,500 MiB: free 23,034 - 300 - 1,500 = 21,234 MiB before the
	 * weights; after the weights, activations and a quarter of the reserve 21,234 -
	 * 17,627.1 - 476.0 - 128 = 3,002.9 MiB, more than the budget's 2,115.4: budget rules */
	in.free_bytes = L4_TOTAL - 1800 * MIB;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0 &&
	      strcmp(p.kv_limit, "budget") == 0 && p.kv_blocks == 402, "1.5 GiB used: %s %s", err,
	      p.kv_limit);
	/* 2,500 MiB used elsewhere: free after the weights, activations and a quarter of the
	 * reserve: 23,034 - 2,800 - 17,627.1 - 476.0 - 128 = 2,002.9 MiB -> 381 blocks */
	in.free_bytes = L4_TOTAL - 2800 * MIB;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "2.5 GiB used: %s", err);
	CHECK(strcmp(p.kv_limit, "free") == 0 && p.kv_blocks == 381, "limit %s blocks %d",
	      p.kv_limit, p.kv_blocks);
	CHECK(strstr(p.warning, "free") && strstr(p.warning, "max_model_len lowered"),
	      "warning '%s'", p.warning);
	/* weights already placed (as eng_create measures): the same figures */
	in.free_bytes = L4_TOTAL - 2800 * MIB - in.weight_bytes;
	in.weights_resident = 1;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0 && p.kv_blocks == 381,
	      "resident: blocks %d %s", p.kv_blocks, err);
	/* nothing left */
	in.free_bytes = 400 * MIB;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "free"), "full device: %s", err);
}

static void test_host_ram(void)
{
	struct g2_config c = preset("tiny");
	struct mem_plan_in in;
	struct mem_plan p;
	char err[512];

	memset(&in, 0, sizeof(in));
	in.total_bytes = (size_t)16 << 30;
	in.free_bytes = (size_t)8 << 30;
	in.host_memory = 1;
	in.weights_resident = 1;
	in.gpu_memory_utilization = 0.9;
	in.weight_bytes = (size_t)g2_n_params(&c) * 4;
	in.activation_bytes = mem_plan_activation_bytes(&c, 2048, 64, 512, 1);
	CHECK(in.activation_bytes == g2_scratch_bytes(&c, 2048, 64, 512), "host activations");
	in.kv_dtype = BE_F32;
	in.block_size = 16;
	in.max_num_seqs = 64;
	in.max_num_batched_tokens = 2048;
	/* tiny in f32: 2 x 4 x 2 x 32 x 4 = 2,048 B per token; 64 x 8192 tokens = 1 GiB,
	 * less than 25 % of 8 GiB free, so the cache holds exactly that */
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "host: %s", err);
	CHECK(p.kv_token_bytes == 2048 && p.kv_tokens == 64 * 8192 && p.max_model_len == 8192 &&
	      p.max_concurrent_seqs == 64 && p.reserve_bytes == 0 &&
	      strcmp(p.kv_limit, "max_num_seqs") == 0, "tokens %d limit %s", p.kv_tokens, p.kv_limit);
	/* 1 GiB free: 25 % of what the activations leave */
	in.free_bytes = (size_t)1 << 30;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "host 1 GiB: %s", err);
	CHECK(strcmp(p.kv_limit, "host_ram") == 0 &&
	      p.kv_bytes <= (((size_t)1 << 30) - in.activation_bytes) / 4 &&
	      p.kv_bytes + p.kv_block_bytes > (((size_t)1 << 30) - in.activation_bytes) / 4,
	      "kv %zu limit %s", p.kv_bytes, p.kv_limit);
	/* a large machine: 25 % of 200 GiB would be 50 GiB; the default stops at
	 * MEM_PLAN_HOST_KV_MAX (1024 sequences of 8192 tokens would need 16 GiB) */
	in.free_bytes = (size_t)200 << 30;
	in.max_num_seqs = 1024;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "host 200 GiB: %s", err);
	CHECK(strcmp(p.kv_limit, "host_ram") == 0 && p.kv_bytes <= MEM_PLAN_HOST_KV_MAX &&
	      p.kv_bytes + p.kv_block_bytes > MEM_PLAN_HOST_KV_MAX && MEM_PLAN_HOST_KV_MAX == (size_t)8 << 30,
	      "kv %zu limit %s", p.kv_bytes, p.kv_limit);
	in.max_num_seqs = 64;
	/* the utilization does not apply to host RAM, an explicit kv_bytes wins */
	in.gpu_memory_utilization = 0.01;
	in.kv_bytes = 10 * p.kv_block_bytes + 5;
	in.max_model_len = 1024;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0 && p.kv_blocks == 10 &&
	      p.max_model_len == 160 && strcmp(p.kv_limit, "kv_bytes") == 0,
	      "kv_bytes: blocks %d mml %d %s", p.kv_blocks, p.max_model_len, err);
	/* a context of one token is refused */
	in.max_model_len = 1;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL &&
	      strstr(err, "--max-model-len 1 is too small"), "mml 1: %s", err);
	in.max_model_len = 1024;
	/* no free figure and no kv_bytes */
	in.kv_bytes = 0;
	in.free_bytes = 0;
	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == ST_EINVAL, "no figures");
}

static void test_json(void)
{
	struct g2_config c = preset("9b");
	struct mem_plan_in in = l4_in(&c, 0.90, 8, 0);
	struct mem_plan p;
	char err[512], buf[1024];

	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "%s", err);
	CHECK(mem_plan_json(&p, buf, sizeof(buf)) == 0, "json");
	CHECK(strstr(buf, "\"kv_tokens\":6432") && strstr(buf, "\"weights_bytes\":18483411968") &&
	      strstr(buf, "\"kv_limit\":\"budget\""), "json: %s", buf);
	CHECK(mem_plan_json(&p, buf, 40) == ST_ERANGE, "short buffer");
}

/*
 * NVIDIA RTX PRO 6000 Blackwell (Cloud Run's second GPU, 96 GB GDDR7): total taken
 * as 97,887 MiB, the figure nvidia-smi prints for a 96 GB RTX PRO 6000 Blackwell
 * (not measured on Cloud Run's board: none here; a few hundred MiB either way move
 * the KV cache by ~1k tokens, so the checks below use the formula plus ranges).
 * infra/service-rtx6000.yaml serves 27B bf16 at 0.92 with max_num_seqs 16; the
 * alternative is 9B bf16 with the rest as KV cache. Both plans are printed.
 */
#define RTX6000_TOTAL ((size_t)97887 * MIB)

static struct mem_plan_in rtx6000_in(const struct g2_config *c, double util, int max_seqs)
{
	struct mem_plan_in in = l4_in(c, util, max_seqs, 0);

	in.total_bytes = RTX6000_TOTAL;
	in.free_bytes = RTX6000_TOTAL - 500 * MIB;
	return in;
}

static void print_plan(const char *what, const struct mem_plan *p)
{
	printf("# %s: budget %.1f GiB, weights %.1f GiB, activations %.0f MiB, KV %d blocks = "
	       "%d tokens (%zu B/token, limit %s), max_model_len %d, %d full-length sequences\n",
	       what, p->budget_bytes / 1073741824.0, p->weight_bytes / 1073741824.0,
	       p->activation_bytes / 1048576.0, p->kv_blocks, p->kv_tokens, p->kv_token_bytes,
	       p->kv_limit, p->max_model_len, p->max_concurrent_seqs);
}

/* The KV blocks the budget leaves, computed here from the plan's own parts. */
static int blocks_by_hand(const struct mem_plan *p)
{
	size_t fixed = p->weight_bytes + p->activation_bytes + p->reserve_bytes;

	return (int)((p->budget_bytes - fixed) / (p->kv_token_bytes * (size_t)p->block_size));
}

static void test_27b_rtx6000(void)
{
	struct g2_config c = preset("27b");
	struct mem_plan_in in = rtx6000_in(&c, 0.92, 16);
	struct mem_plan p;
	char err[512];

	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "27B on RTX PRO 6000: %s", err);
	print_plan("27B bf16, RTX PRO 6000 96 GB, 0.92, 16 seqs", &p);
	/* 2 (K,V) x 46 layers x 16 KV heads x 128 dims x 2 B */
	CHECK(p.kv_token_bytes == 376832, "27B per token %zu, want 376,832", p.kv_token_bytes);
	CHECK(p.weight_bytes > (size_t)50 << 30 && p.weight_bytes < (size_t)52 << 30,
	      "27B weights %zu outside 50-52 GiB", p.weight_bytes);
	CHECK(p.kv_blocks == blocks_by_hand(&p), "blocks %d, by hand %d", p.kv_blocks,
	      blocks_by_hand(&p));
	CHECK(p.kv_tokens >= 90000 && p.kv_tokens <= 110000, "27B KV tokens %d outside 90k-110k",
	      p.kv_tokens);
	/* the full 8192-token context, not lowered, and >= 11 such sequences at once */
	CHECK(p.max_model_len == 8192 && p.warning[0] == 0, "mml %d warning '%s'", p.max_model_len,
	      p.warning);
	CHECK(p.max_concurrent_seqs >= 11, "full-length sequences %d", p.max_concurrent_seqs);
	CHECK(strcmp(p.kv_limit, "budget") == 0, "limit %s", p.kv_limit);
	/* and the same 27B does not fit the L4 (test_27b_l4_does_not_fit): the 96 GB
	 * device is what makes it servable at all */
}

static void test_9b_rtx6000_large_kv(void)
{
	struct g2_config c = preset("9b");
	struct mem_plan_in in = rtx6000_in(&c, 0.92, 64);
	struct mem_plan p;
	char err[512];

	CHECK(mem_plan_compute(&c, &in, &p, err, sizeof(err)) == 0, "9B on RTX PRO 6000: %s", err);
	print_plan("9B bf16, RTX PRO 6000 96 GB, 0.92, 64 seqs", &p);
	CHECK(p.kv_token_bytes == 344064, "9B per token %zu", p.kv_token_bytes);
	CHECK(p.kv_blocks == blocks_by_hand(&p), "blocks %d, by hand %d", p.kv_blocks,
	      blocks_by_hand(&p));
	/* ~70 GiB of KV: ~217k tokens, ~28x the L4's 7,840 at the same utilization */
	CHECK(p.kv_tokens >= 205000 && p.kv_tokens <= 225000, "9B KV tokens %d outside 205k-225k",
	      p.kv_tokens);
	CHECK(p.max_model_len == 8192 && p.max_concurrent_seqs >= 23, "mml %d, full-length %d",
	      p.max_model_len, p.max_concurrent_seqs);
	/* the L4 at the same utilization, for the ratio SCALING.md quotes */
	in = l4_in(&c, 0.92, 8, 0);
	struct mem_plan l4;
	CHECK(mem_plan_compute(&c, &in, &l4, err, sizeof(err)) == 0 && l4.kv_tokens == 7840,
	      "9B on L4 at 0.92: %d tokens (SCALING.md: 7,840) %s", l4.kv_tokens, err);
	print_plan("9B bf16, L4 24 GB, 0.92, 8 seqs", &l4);
}

int main(void)
{
	RUN(test_9b_l4_fits);
	RUN(test_9b_l4_8192_needs_093);
	RUN(test_2b_l4_larger);
	RUN(test_27b_l4_does_not_fit);
	RUN(test_9b_low_utilization);
	RUN(test_9b_long_context);
	RUN(test_other_processes);
	RUN(test_host_ram);
	RUN(test_json);
	RUN(test_27b_rtx6000);
	RUN(test_9b_rtx6000_large_kv);
	return th_done();
}
