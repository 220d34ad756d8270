/*
 * gemma2.h - the Gemma 2 forward pass, written once over struct be_ops.
 *
 * One call to g2_forward() runs one engine step: a batch of tokens that may
 * mix prefill chunks and decode tokens of many sequences. Per token: its id,
 * its position in its sequence and its sequence row; per sequence row: its
 * KV block table (see kernels/kv_cache.h) and its context length. The step
 * writes every token's K/V into the cache at its position, attends over
 * positions 0..pos (sliding window on even layers), and returns fp32 logits
 * (final norm, tied head = embedding matrix, final soft-cap) only for the
 * token rows asked for, into a host buffer.
 *
 * Rules for a batch:
 *   - a sequence's tokens in one step have consecutive positions, and every
 *     position below the first one is already in its cache (written by an
 *     earlier step) - that is what chunked prefill and decode both are;
 *   - the block table of each sequence row covers ctx_lens[s] positions,
 *     ctx_lens[s] = 1 + the largest position of that sequence in the step;
 *   - the result of each token row does not depend on the other rows of the
 *     batch (batch invariance; CPU: bitwise).
 * Scratch buffers are allocated once in g2_model_create() for max_tokens
 * tokens and max_seqs sequence rows; g2_forward() allocates nothing.
 * Not thread-safe: one model is driven by one thread (the engine thread).
 */
#ifndef GR_GEMMA2_H
#define GR_GEMMA2_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"
#include "kernels/g2_config.h"
#include "kernels/kv_cache.h"

struct g2_model;

/* One weight as the model needs it: device address, stored dtype, shape. */
struct g2_tensor_ref {
	const void *p;
	enum be_dtype dt;
	int ndim;
	int64_t shape[2];
};

/*
 * Where the weights are: the backend that holds them, the model's config,
 * and a lookup by Hugging Face tensor name. find() returns 0, ST_ENOENT
 * (absent) or ST_EFORMAT (present in a dtype the backends cannot compute
 * with, logged by find). kernels/ knows nothing of files or loading:
 * loader/ provides this over a loaded model (ld_g2_weights in loader.h).
 */
struct g2_weights {
	struct be *be;
	struct g2_config cfg;
	size_t bytes;			/* device bytes the weights occupy (for the memory plan) */
	int (*find)(void *arg, const char *name, struct g2_tensor_ref *out);
	void *arg;
};

/* One step's input. Every pointer is host memory, borrowed for the call. */
struct g2_batch {
	int n_tok;			/* 1..max_tokens */
	const int32_t *tokens;		/* [n_tok] token ids */
	const int32_t *positions;	/* [n_tok] position of each token in its sequence */
	const int32_t *seq;		/* [n_tok] sequence row (0..n_seqs-1) of each token */
	int n_seqs;			/* 1..max_seqs */
	const int32_t *block_tables;	/* [n_seqs][max_blocks] KV block ids */
	int max_blocks;			/* row stride of block_tables (<= model's max_blocks) */
	const int32_t *ctx_lens;	/* [n_seqs] positions in cache after this step */
	int n_logits;			/* rows whose logits are wanted (0..n_tok) */
	const int32_t *logit_rows;	/* [n_logits] token indices (0..n_tok-1) */
	/*
	 * Optional sampling on the device (kernels/sample.h; needs
	 * g2_model_enable_sampling): when sample_out is set, each logits row r
	 * is sampled with sample_rows[r] and its pairs, and only sample_out
	 * comes back - the logits argument of g2_forward is not written.
	 */
	const struct be_sample_row *sample_rows;	/* [n_logits] */
	const struct be_sample_pair *sample_pairs;	/* [n_pairs], every row's pairs */
	int n_pairs;
	struct be_sample_out *sample_out;		/* [n_logits] */
	/* [n_logits * BE_MASK_WORDS(vocab)] allow masks of the rows with has_mask
	 * (structured outputs); NULL when no row has one */
	const uint32_t *sample_masks;
};

/*
 * Binds the weights of w (find is called only here; w->be is borrowed and
 * must outlive the model, like the weights) and allocates scratch for steps
 * of up to max_tokens tokens and max_seqs sequence rows with block tables
 * of up to max_blocks entries (max_blocks = kv_blocks_for(kv,
 * max_model_len)). Checks every tensor's presence, shape and dtype (BF16,
 * F16 or F32; a decoder Linear weight may be F8_E4M3 with its
 * "<module>.weight_scale" (and "input_scale" for static activations) per
 * w->cfg.quant; it then runs through be_ops.matmul_fp8, and a backend
 * without that op is ST_ENOSYS). Caller frees with g2_model_destroy.
 */
int g2_model_create(const struct g2_weights *w, int max_tokens, int max_seqs, int max_blocks,
		    struct g2_model **out);
void g2_model_destroy(struct g2_model *g);

/*
 * Bytes of device scratch g2_model_create(m, max_tokens, max_seqs,
 * max_blocks) allocates for a model of config c (fp32 activations of
 * max_tokens rows, the logits rows, the step's index buffers); the
 * backend's own scratch is not included. For the memory plan.
 */
size_t g2_scratch_bytes(const struct g2_config *c, int max_tokens, int max_seqs, int max_blocks);

/*
 * Allocates the device buffers of device sampling: up to max_rows sampled
 * rows per step (at most max_seqs) and max_pairs pairs per step. Once, at
 * start-up; later calls with no larger sizes do nothing.
 */
int g2_model_enable_sampling(struct g2_model *g, int max_rows, int max_pairs);

/* Device bytes g2_model_enable_sampling(g, max_rows, max_pairs) allocates (vocab: the model's). */
size_t g2_sampling_bytes(int max_rows, int max_pairs, int vocab);

const struct g2_config *g2_model_config(const struct g2_model *g);
int g2_model_max_tokens(const struct g2_model *g);
int g2_model_max_seqs(const struct g2_model *g);
int g2_model_max_blocks(const struct g2_model *g);

/*
 * Runs one step over kv (borrowed; same backend). logits (host) receives
 * n_logits rows of vocab_size floats, in the order of logit_rows (may be
 * NULL when n_logits is 0). Validates the batch (ids, positions, rows, block
 * ids against the cache): ST_EINVAL with a logged reason, nothing written.
 */
int g2_forward(struct g2_model *g, struct kv_cache *kv, const struct g2_batch *b,
	       float *logits);

#endif
