/*
 * mem_plan.c - the start-up memory plan (see mem_plan.h for the rules).
 * mem_plan_compute runs four steps: the inputs (plan_inputs), the context
 * length wanted (plan_wanted_len), the KV bytes (an explicit kv_bytes,
 * plan_kv_host or plan_kv_device), and whole blocks with the context
 * length they hold (plan_blocks).
 *
 * Invariants of a successful plan: kv_blocks >= 1; kv_tokens >=
 * max_model_len >= 2; on a device (no kv_bytes override) weights +
 * activations + reserve + kv_bytes <= budget_bytes <= total_bytes.
 * Messages give sizes in MiB (2^20 bytes).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/status.h"
#include "kernels/gemma2.h"
#include "kernels/kv_cache.h"
#include "engine/mem_plan.h"

#define MIB(x) ((double)(x) / 1048576.0)
#define ATT_PARTIALS_BYTES ((size_t)8 << 20)

int mem_plan_wanted_len(const struct g2_config *cfg, int max_model_len)
{
	int len = max_model_len;
	if (len <= 0) {
		len = cfg->max_position_embeddings;
		if (len <= 0 || len > MEM_PLAN_MAX_MODEL_LEN_CAP)
			len = MEM_PLAN_MAX_MODEL_LEN_CAP;
	}
	return len;
}

size_t mem_plan_activation_bytes(const struct g2_config *cfg, int max_tokens, int max_seqs,
				 int max_blocks, int host_memory)
{
	size_t b = g2_scratch_bytes(cfg, max_tokens, max_seqs, max_blocks);
	if (!host_memory) {
		size_t w = (size_t)cfg->hidden_size;
		size_t qd = (size_t)cfg->num_attention_heads * (size_t)cfg->head_dim;
		if (qd > w)
			w = qd;
		if ((size_t)cfg->intermediate_size > w)
			w = (size_t)cfg->intermediate_size;
		b += (size_t)(max_tokens > 0 ? max_tokens : 0) * w * 2 + ATT_PARTIALS_BYTES;
	}
	return b;
}

/* Utilization (rounded up to 0.01) that leaves `need` bytes on top of fixed; > 1: none. */
static double util_for(size_t fixed, size_t need, size_t total)
{
	return ceil((double)(fixed + need) / (double)total * 100.0) / 100.0;
}

static int fail(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
	return ST_EINVAL;
}

/* Step 1: the inputs are usable; the plan's fixed figures. */
static int plan_inputs(const struct g2_config *cfg, const struct mem_plan_in *in,
		       struct mem_plan *out, char *err, size_t errlen)
{
	char m[512];

	if (in->block_size <= 0 || in->max_num_seqs <= 0 || in->max_model_len < 0 ||
	    cfg->num_hidden_layers <= 0 || cfg->num_key_value_heads <= 0 || cfg->head_dim <= 0)
		return fail(err, errlen, "memory plan: bad inputs (block_size, max_num_seqs, "
					 "max_model_len or model shape)");
	if (!in->kv_bytes && !in->host_memory &&
	    !(in->gpu_memory_utilization > 0 && in->gpu_memory_utilization <= 1)) {
		snprintf(m, sizeof(m), "--gpu-memory-utilization %g is out of range (0, 1]",
			 in->gpu_memory_utilization);
		return fail(err, errlen, m);
	}
	out->total_bytes = in->total_bytes;
	out->weight_bytes = in->weight_bytes;
	out->activation_bytes = in->activation_bytes;
	out->reserve_bytes = in->reserve_bytes;
	out->block_size = in->block_size;
	out->kv_block_bytes = kv_bytes_per_block(cfg, in->block_size, in->kv_dtype);
	out->kv_token_bytes = out->kv_block_bytes / (size_t)in->block_size;
	return 0;
}

/* Step 2: the context length wanted (an explicit one must fit the model's positions). */
static int plan_wanted_len(const struct g2_config *cfg, const struct mem_plan_in *in,
			   struct mem_plan *out, char *err, size_t errlen)
{
	char m[512];
	int wanted = mem_plan_wanted_len(cfg, in->max_model_len);

	if (wanted < 2) {
		snprintf(m, sizeof(m), "--max-model-len %d is too small (at least 2: one prompt and "
			 "one generated token)", wanted);
		return fail(err, errlen, m);
	}
	if (in->max_model_len > 0 && cfg->max_position_embeddings > 0 &&
	    wanted > cfg->max_position_embeddings) {
		snprintf(m, sizeof(m), "--max-model-len %d is longer than the model's "
			 "max_position_embeddings %d: lower --max-model-len", wanted,
			 cfg->max_position_embeddings);
		return fail(err, errlen, m);
	}
	if (cfg->max_position_embeddings > 0 && wanted > cfg->max_position_embeddings) {
		snprintf(out->warning, sizeof(out->warning),
			 "max_model_len %d > max_position_embeddings %d; using %d", wanted,
			 cfg->max_position_embeddings, cfg->max_position_embeddings);
		wanted = cfg->max_position_embeddings;
	}
	out->max_model_len_wanted = wanted;
	return 0;
}

/* Step 3, host RAM (CPU backend): a share of the free RAM left after the activations, capped. */
static int plan_kv_host(const struct mem_plan_in *in, size_t fixed, struct mem_plan *out,
			size_t *kv, char *err, size_t errlen)
{
	char m[512];
	size_t free_eff, avail, per_block = out->kv_block_bytes;

	if (in->free_bytes == 0)
		return fail(err, errlen, "memory plan: the backend reports no free memory; "
					 "set the KV cache size explicitly");
	free_eff = in->free_bytes;
	if (!in->weights_resident)
		free_eff = free_eff > in->weight_bytes ? free_eff - in->weight_bytes : 0;
	avail = free_eff > in->activation_bytes + in->reserve_bytes
			? free_eff - in->activation_bytes - in->reserve_bytes : 0;
	*kv = (size_t)(MEM_PLAN_HOST_FRACTION * (double)avail);
	if (*kv > MEM_PLAN_HOST_KV_MAX)
		*kv = MEM_PLAN_HOST_KV_MAX;
	out->kv_limit = "host_ram";
	out->budget_bytes = fixed + *kv;
	if (*kv < per_block) {
		snprintf(m, sizeof(m),
			 "this model does not fit in this machine's RAM: %.0f MiB free after "
			 "the weights (%.0f MiB) and activations (%.0f MiB) leave no room for "
			 "one KV block of %.2f MiB",
			 MIB(free_eff), MIB(in->weight_bytes), MIB(in->activation_bytes),
			 MIB(per_block));
		return fail(err, errlen, m);
	}
	return 0;
}

/*
 * Step 3, device: the budget less weights, activations and reserve, then
 * capped by what is free now (other processes use the device too).
 */
static int plan_kv_device(const struct mem_plan_in *in, size_t fixed, size_t seq_bytes,
			  struct mem_plan *out, size_t *kv, char *err, size_t errlen)
{
	char m[512];
	size_t total = in->total_bytes, per_block = out->kv_block_bytes;
	size_t budget = (size_t)(in->gpu_memory_utilization * (double)total);

	out->budget_bytes = budget;
	if (total == 0)
		return fail(err, errlen, "memory plan: the device reports no memory; "
					 "set the KV cache size explicitly");
	if (fixed + per_block > total) {
		snprintf(m, sizeof(m),
			 "this model does not fit on this device: weights %.0f MiB + "
			 "activations %.0f MiB (--max-num-batched-tokens %d) + reserve %.0f MiB "
			 "= %.0f MiB, and the device has %.0f MiB",
			 MIB(in->weight_bytes), MIB(in->activation_bytes),
			 in->max_num_batched_tokens, MIB(in->reserve_bytes), MIB(fixed),
			 MIB(total));
		return fail(err, errlen, m);
	}
	if (fixed + per_block > budget) {
		double u = util_for(fixed, seq_bytes, total);
		if (u > 1)
			u = util_for(fixed, per_block, total);
		snprintf(m, sizeof(m),
			 "weights %.0f MiB + activations %.0f MiB + reserve %.0f MiB = %.0f MiB "
			 "leave no room for the KV cache in the budget of %.0f MiB "
			 "(--gpu-memory-utilization %.2f of %.0f MiB): raise "
			 "--gpu-memory-utilization to at least %.2f",
			 MIB(in->weight_bytes), MIB(in->activation_bytes),
			 MIB(in->reserve_bytes), MIB(fixed), MIB(budget),
			 in->gpu_memory_utilization, MIB(total), u);
		return fail(err, errlen, m);
	}
	*kv = budget - fixed;
	out->kv_limit = "budget";
	if (in->free_bytes) {
		/* Other processes: the cache must fit in what is free now, less the
		 * activations still to allocate and a quarter of the reserve. */
		size_t free_eff = in->free_bytes, take = in->activation_bytes +
							 in->reserve_bytes / 4;
		if (!in->weights_resident)
			free_eff = free_eff > in->weight_bytes ? free_eff - in->weight_bytes : 0;
		size_t by_free = free_eff > take ? free_eff - take : 0;
		if (by_free < *kv) {
			*kv = by_free;
			out->kv_limit = "free";
			snprintf(out->warning, sizeof(out->warning),
				 "only %.0f MiB of device memory are free beside the weights "
				 "(other processes use %.0f MiB?); the KV cache gets %.0f MiB, "
				 "not the %.0f MiB --gpu-memory-utilization allows",
				 MIB(free_eff), MIB(total - free_eff - in->weight_bytes),
				 MIB(*kv), MIB(budget - fixed));
			if (*kv < per_block) {
				snprintf(m, sizeof(m),
					 "only %.0f MiB of device memory are free beside the "
					 "weights, less than the activations (%.0f MiB) and one "
					 "KV block need: free the device or lower "
					 "--max-num-batched-tokens",
					 MIB(free_eff), MIB(in->activation_bytes));
				return fail(err, errlen, m);
			}
		}
	}
	return 0;
}

/*
 * Step 4: kv bytes into whole blocks, and the context length they hold (a
 * default one is lowered to fit, an explicit one that does not fit fails).
 */
static int plan_blocks(const struct mem_plan_in *in, size_t fixed, size_t seq_bytes, size_t kv,
		       struct mem_plan *out, char *err, size_t errlen)
{
	char m[512];
	size_t per_block = out->kv_block_bytes;
	int wanted = out->max_model_len_wanted;
	int64_t n = (int64_t)(kv / per_block);

	if (n > INT32_MAX / in->block_size)
		n = INT32_MAX / in->block_size;
	if (n < 1) {
		snprintf(m, sizeof(m), "the KV cache budget of %zu bytes is smaller than one block "
			 "(%zu bytes): raise --gpu-memory-utilization", kv, per_block);
		return fail(err, errlen, m);
	}
	out->kv_blocks = (int)n;
	out->kv_tokens = (int)n * in->block_size;
	out->kv_bytes = (size_t)n * per_block;
	out->max_model_len = wanted;
	if (out->kv_tokens < wanted) {
		if (in->max_model_len > 0 && !in->kv_bytes) {
			double u = in->host_memory ? 2 : util_for(fixed, seq_bytes, in->total_bytes);
			int o = snprintf(m, sizeof(m),
					 "--max-model-len %d needs %.0f MiB of KV cache for one sequence "
					 "(%zu bytes per token), but the plan leaves %.0f MiB (%d tokens): "
					 "lower --max-model-len to at most %d",
					 wanted, MIB(seq_bytes), out->kv_token_bytes, MIB(out->kv_bytes),
					 out->kv_tokens, out->kv_tokens);
			if (u <= 1 && o > 0 && (size_t)o < sizeof(m))
				snprintf(m + o, sizeof(m) - (size_t)o,
					 " or raise --gpu-memory-utilization to %.2f", u);
			return fail(err, errlen, m);
		}
		size_t w = strlen(out->warning);
		snprintf(out->warning + w, sizeof(out->warning) - w,
			 "%sthe KV cache holds %d tokens (%.0f MiB); max_model_len lowered from %d "
			 "to %d (set --max-model-len or raise --gpu-memory-utilization)",
			 w ? "; " : "", out->kv_tokens, MIB(out->kv_bytes), wanted, out->kv_tokens);
		out->max_model_len = out->kv_tokens;
	}
	if (out->max_model_len < 2) {
		snprintf(m, sizeof(m), "the KV cache of %zu bytes holds %d tokens; max_model_len "
			 "would be below 2", out->kv_bytes, out->kv_tokens);
		return fail(err, errlen, m);
	}
	out->max_concurrent_seqs =
		out->kv_blocks / ((out->max_model_len + in->block_size - 1) / in->block_size);
	return 0;
}

int mem_plan_compute(const struct g2_config *cfg, const struct mem_plan_in *in,
		     struct mem_plan *out, char *err, size_t errlen)
{
	size_t fixed, seq_bytes, kv = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';
	if ((rc = plan_inputs(cfg, in, out, err, errlen)) < 0 ||
	    (rc = plan_wanted_len(cfg, in, out, err, errlen)) < 0)
		return rc;
	seq_bytes = (size_t)((out->max_model_len_wanted + in->block_size - 1) / in->block_size) *
		    out->kv_block_bytes;
	fixed = in->weight_bytes + in->activation_bytes + in->reserve_bytes;
	if (in->kv_bytes) {
		kv = in->kv_bytes;
		out->kv_limit = "kv_bytes";
		out->budget_bytes = fixed + kv;
	} else if (in->host_memory) {
		rc = plan_kv_host(in, fixed, out, &kv, err, errlen);
	} else {
		rc = plan_kv_device(in, fixed, seq_bytes, out, &kv, err, errlen);
	}
	if (rc < 0)
		return rc;
	/* More than max_num_seqs sequences of max_model_len could never be used,
	 * except, on a device, as prefix cache (evictable blocks). */
	if (!in->kv_bytes && !(in->prefix_caching && !in->host_memory) &&
	    kv > (size_t)in->max_num_seqs * seq_bytes) {
		kv = (size_t)in->max_num_seqs * seq_bytes;
		out->kv_limit = "max_num_seqs";
	}
	return plan_blocks(in, fixed, seq_bytes, kv, out, err, errlen);
}

int mem_plan_json(const struct mem_plan *p, char *buf, size_t cap)
{
	int n = snprintf(buf, cap,
			 "\"memory_plan\":{\"total_bytes\":%zu,\"budget_bytes\":%zu,"
			 "\"weights_bytes\":%zu,\"activations_bytes\":%zu,\"reserve_bytes\":%zu,"
			 "\"kv_cache_bytes\":%zu,\"kv_block_bytes\":%zu,\"kv_token_bytes\":%zu,"
			 "\"block_size\":%d,\"kv_blocks\":%d,\"kv_tokens\":%d,"
			 "\"max_model_len\":%d,\"max_model_len_wanted\":%d,"
			 "\"max_concurrent_seqs\":%d,\"kv_limit\":\"%s\"}",
			 p->total_bytes, p->budget_bytes, p->weight_bytes, p->activation_bytes,
			 p->reserve_bytes, p->kv_bytes, p->kv_block_bytes, p->kv_token_bytes,
			 p->block_size, p->kv_blocks, p->kv_tokens, p->max_model_len,
			 p->max_model_len_wanted, p->max_concurrent_seqs,
			 p->kv_limit ? p->kv_limit : "");
	return n < 0 || (size_t)n >= cap ? ST_ERANGE : 0;
}
