/*
 * mem_plan.h - the start-up memory plan: how the memory this process may
 * use splits into weights, activation scratch, a fixed reserve and the
 * paged KV cache, and which context length that leaves.
 *
 * A pure function of numbers (no device calls), so it is tested on the CPU
 * with an L4's figures. The engine (engine/engine.c) fills the inputs from
 * be->ops->mem_info and the loaded model, sizes its KV cache from the
 * result, and the service logs it and exports it in /metrics.
 *
 * Semantics (vLLM's --gpu-memory-utilization):
 *   budget     = gpu_memory_utilization * total device memory: everything
 *                this process may use (weights, activations, reserve, KV).
 *   KV cache   = budget - weights - activations - reserve, capped by what
 *                is actually free on the device (other processes), and,
 *                without prefix caching, by what max_num_seqs sequences of
 *                max_model_len need (more could never be used; with it the
 *                rest holds cached prefixes, as in vLLM), rounded down to
 *                whole blocks.
 *   host RAM   (CPU backend): the utilization does not apply; the cache
 *                takes at most MEM_PLAN_HOST_FRACTION of the free RAM that
 *                is left after the activations, and never more than
 *                MEM_PLAN_HOST_KV_MAX (so that on any large machine the
 *                default is the same size, whatever else is running).
 *   kv_bytes   (explicit override, used by tests): the cache gets exactly
 *                that, no budget check.
 * max_model_len: an explicit value longer than max_position_embeddings, or
 * that the cache cannot hold once, is an error naming --max-model-len (as
 * in vLLM); the default (config, capped at
 * MEM_PLAN_MAX_MODEL_LEN_CAP) is lowered to what the cache holds, with a
 * warning. So one sequence alone always fits and preemption can progress.
 * Errors are ST_EINVAL with a message naming the numbers and the flag to
 * change ("--gpu-memory-utilization", "--max-model-len",
 * "--max-num-batched-tokens", or "this model does not fit on this device").
 */
#ifndef GR_MEM_PLAN_H
#define GR_MEM_PLAN_H

#include <stddef.h>

#include "kernels/backend.h"
#include "kernels/g2_config.h"

#define MEM_PLAN_MAX_MODEL_LEN_CAP 8192	/* default context when max_model_len is 0 */
#define MEM_PLAN_HOST_FRACTION 0.25	/* CPU: share of free RAM the KV cache may take */
#define MEM_PLAN_HOST_KV_MAX ((size_t)8 << 30)	/* CPU: the KV cache's default at most (8 GiB) */
/*
 * The fixed reserve on a CUDA device: memory this process uses that no
 * plan line accounts for: the CUDA context and the module images of our
 * kernels and of cuBLAS/cuBLASLt loaded lazily (a few hundred MiB on
 * sm_89/sm_90 with CUDA 12 lazy loading), the fixed cuBLAS workspace
 * (32 MiB, CU_BLAS_WS_BYTES), the F16-weight conversion chunk (32 MiB),
 * cudaMalloc's 2 MiB rounding of some 30 buffers, and headroom for
 * CUDA-graph pools. vLLM measures this "non-torch" memory at start-up;
 * we budget it as a constant. 0 on the CPU.
 */
#define MEM_PLAN_CUDA_RESERVE ((size_t)512 << 20)

struct mem_plan_in {
	size_t total_bytes;		/* device total as cudaMemGetInfo reports it; host RAM on CPU */
	size_t free_bytes;		/* free now (0: unknown, not checked) */
	int host_memory;		/* 1: the device memory is host RAM (CPU backend) */
	int weights_resident;		/* 1: free_bytes was measured with the weights placed */
	double gpu_memory_utilization;	/* (0, 1] fraction of total_bytes this process may use */
	size_t weight_bytes;		/* the weight arena as loaded (stored dtype) */
	size_t activation_bytes;	/* scratch for one step (mem_plan_activation_bytes) */
	size_t reserve_bytes;		/* MEM_PLAN_CUDA_RESERVE on CUDA, 0 on CPU */
	size_t kv_bytes;		/* explicit KV cache size (0: from the budget) */
	enum be_dtype kv_dtype;		/* element type of the cache (cpu F32, cuda BF16) */
	int block_size;			/* tokens per KV block (> 0) */
	int max_num_seqs;		/* --max-num-seqs */
	int max_num_batched_tokens;	/* --max-num-batched-tokens (for messages) */
	int max_model_len;		/* --max-model-len (0: from config, capped) */
	int prefix_caching;		/* --enable-prefix-caching: on a device the cache is not
					 * capped at max_num_seqs sequences (the rest holds
					 * cached prefixes); host RAM keeps the cap */
};

struct mem_plan {
	size_t total_bytes;		/* as given */
	size_t budget_bytes;		/* what this process may use */
	size_t weight_bytes, activation_bytes, reserve_bytes;
	size_t kv_bytes;		/* kv_blocks * kv_block_bytes */
	size_t kv_block_bytes;		/* one block over all layers, K and V */
	size_t kv_token_bytes;		/* one token over all layers, K and V */
	int block_size;
	int kv_blocks;
	int kv_tokens;			/* kv_blocks * block_size */
	int max_model_len_wanted;	/* requested, or from config capped */
	int max_model_len;		/* what the engine uses (<= wanted) */
	int max_concurrent_seqs;	/* sequences of max_model_len the cache holds at once */
	const char *kv_limit;		/* what sized the cache: "budget", "free", "max_num_seqs",
					 * "host_ram" or "kv_bytes" */
	char warning[320];		/* non-empty: max_model_len lowered, or free memory short */
};

/* The context length asked for: max_model_len, or (0) the config's, capped. */
int mem_plan_wanted_len(const struct g2_config *cfg, int max_model_len);

/*
 * Activation scratch for steps of max_tokens tokens and max_seqs rows with
 * block tables of max_blocks: the model's buffers (g2_scratch_bytes) plus,
 * on a device (!host_memory), the backend's matmul scratch (the bf16 copy
 * of the largest matmul input, max_tokens * max(hidden, heads*head_dim,
 * intermediate) * 2 bytes) and 8 MiB for the split-attention partials.
 */
size_t mem_plan_activation_bytes(const struct g2_config *cfg, int max_tokens, int max_seqs,
				 int max_blocks, int host_memory);

/*
 * Computes the plan. Returns 0, or ST_EINVAL with a message in err (the
 * plan's figures computed so far stay in *out).
 */
int mem_plan_compute(const struct g2_config *cfg, const struct mem_plan_in *in,
		     struct mem_plan *out, char *err, size_t errlen);

/* Writes the plan as JSON object members (no braces) for log_fields. */
int mem_plan_json(const struct mem_plan *p, char *buf, size_t cap);

#endif
