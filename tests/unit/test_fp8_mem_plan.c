/*
 * test_fp8_mem_plan.c - what FP8 weights buy in the memory plan: 9B bytes as
 * `gemma-run quantize` stores them (g2_weight_bytes, checked by hand and
 * against g2_n_params for bf16), and the KV tokens of 9B bf16 vs FP8 on a
 * 24 GB L4 (23,034 MiB, the figure tests/unit/test_mem_plan.c uses) at
 * --gpu-memory-utilization 0.90 and 0.92, 8 sequences. Printed for
 * docs/PERFORMANCE.md; asserted: the FP8 plan holds over 3x the tokens.
 */
#include "engine/mem_plan.h"
#include "kernels/g2_config.h"
#include "loader/quant_format.h"
#include "tests/harness.h"

#define MIB ((size_t)1 << 20)
#define L4_TOTAL ((size_t)23034 * MIB)

static int plan(const struct g2_config *c, double util, struct mem_plan *p)
{
	struct mem_plan_in in;
	char err[512];
	memset(&in, 0, sizeof(in));
	in.total_bytes = L4_TOTAL;
	in.free_bytes = L4_TOTAL - 300 * MIB;
	in.gpu_memory_utilization = util;
	in.weight_bytes = (size_t)g2_weight_bytes(c, 2);
	in.activation_bytes = mem_plan_activation_bytes(c, 2048, 8, 512, 0);
	in.reserve_bytes = MEM_PLAN_CUDA_RESERVE;
	in.kv_dtype = BE_BF16;
	in.block_size = 16;
	in.max_num_seqs = 8;
	in.max_num_batched_tokens = 2048;
	in.max_model_len = 4096;
	return mem_plan_compute(c, &in, p, err, sizeof(err));
}

static void test_9b_bytes(void)
{
	struct g2_config b, f;
	g2_config_preset(&b, "9b");
	f = b;
	ld_quant_fp8_dynamic(&f.quant);
	CHECK(g2_weight_bytes(&b, 2) == g2_n_params(&b) * 2, "bf16 bytes %llu",
	      (unsigned long long)g2_weight_bytes(&b, 2));
	/* by hand: 42 layers x 3584 x (4096 + 2048 + 2048 + 4096 + 3 x 14336) = 8,323,596,288
	 * Linear bytes, + 42 x 44,032 rows x 2 bytes of scales = 3,698,688, + the rest in bf16:
	 * (9,241,705,984 - 8,323,596,288) x 2 = 1,836,219,392 */
	CHECK(g2_weight_bytes(&f, 2) == 8323596288ull + 3698688ull + 1836219392ull, "fp8 bytes %llu",
	      (unsigned long long)g2_weight_bytes(&f, 2));
	printf("  9B weights: bf16 %.2f GB, fp8 %.2f GB (%.1f%%; the 256000 x 3584 embedding stays bf16)\n",
	       g2_weight_bytes(&b, 2) / 1e9, g2_weight_bytes(&f, 2) / 1e9,
	       100.0 * (double)g2_weight_bytes(&f, 2) / (double)g2_weight_bytes(&b, 2));
}

static void test_9b_l4_kv_tokens(void)
{
	static const double utils[] = { 0.90, 0.92 };
	struct g2_config b, f;
	g2_config_preset(&b, "9b");
	f = b;
	ld_quant_fp8_dynamic(&f.quant);
	for (int i = 0; i < 2; i++) {
		struct mem_plan pb, pf;
		CHECK(plan(&b, utils[i], &pb) == 0 && plan(&f, utils[i], &pf) == 0, "plans");
		printf("  9B on an L4 at %.2f: KV tokens bf16 %d, fp8 %d (%.2fx)\n", utils[i], pb.kv_tokens,
		       pf.kv_tokens, (double)pf.kv_tokens / pb.kv_tokens);
		CHECK(pf.weight_bytes < pb.weight_bytes * 0.56, "weights %zu vs %zu", pf.weight_bytes,
		      pb.weight_bytes);
		CHECK(pf.kv_tokens > 3 * pb.kv_tokens, "fp8 %d tokens, bf16 %d", pf.kv_tokens, pb.kv_tokens);
	}
}

int main(void)
{
	RUN(test_9b_bytes);
	RUN(test_9b_l4_kv_tokens);
	return th_done();
}
