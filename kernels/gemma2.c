/*
 * gemma2.c - the Gemma 2 forward pass over struct be_ops (see gemma2.h).
 *
 * Per step, for the n_tok tokens of the batch (h is the residual stream):
 *   h = embed(tokens) * sqrt(hidden)                       (fp32 factor)
 *   per layer l:
 *     x = input_norm(h); q,k,v = x Wq^T, x Wk^T, x Wv^T; rope(q, k)
 *     write k, v into the paged cache at each token's slot
 *     a = attention(q, cache; scale qpas^-0.5, soft-cap, window on even l)
 *     h += post_attn_norm(a Wo^T)
 *     x = pre_ff_norm(h); h += post_ff_norm(down(gelu_tanh(gate(x)) * up(x)))
 *   for the rows asked for: logits = softcap(final_norm(h) E^T)
 * All norms are (1 + w). Logits rows go through in chunks of logit_cap rows
 * so the vocab-wide buffer stays small. Every buffer is allocated in
 * g2_model_create; g2_forward only validates, copies the step's indices to
 * the device and issues ops.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/gemma2.h"

struct g2_wt {
	const void *p;		/* device pointer into the weight arena */
	enum be_dtype dt;
	struct be_fp8_w f8;	/* dt BE_F8_E4M3: the codes (= p) with their scales */
};

struct g2_layer {
	struct g2_wt in_norm;		/* (hidden) */
	struct g2_wt q;			/* (n_heads*hd, hidden) */
	struct g2_wt k, v;		/* (n_kv*hd, hidden) */
	struct g2_wt o;			/* (hidden, n_heads*hd) */
	struct g2_wt post_attn_norm;	/* (hidden) */
	struct g2_wt pre_ff_norm;	/* (hidden) */
	struct g2_wt gate, up;		/* (ff, hidden) */
	struct g2_wt down;		/* (hidden, ff) */
	struct g2_wt post_ff_norm;	/* (hidden) */
};

struct g2_model {
	struct be *be;			/* borrowed */
	struct g2_config cfg;
	int max_tokens, max_seqs, max_blocks, logit_cap;
	struct g2_wt embed;		/* (vocab, hidden), also the LM head */
	struct g2_wt final_norm;	/* (hidden) */
	struct g2_layer *layers;	/* [n_layers] */

	/* device scratch, fp32 activations for max_tokens rows */
	float *h, *x, *q, *k, *v, *att, *proj, *gate, *up;
	float *sel;			/* (logit_cap, hidden) */
	float *logits;			/* (logit_cap, vocab) */
	/* device step indices */
	int32_t *d_tokens, *d_pos, *d_seq, *d_slots, *d_rows, *d_bt;
	/* device sampling (g2_model_enable_sampling) */
	struct be_sample_row *d_srows;	/* [smp_rows] */
	struct be_sample_out *d_sout;	/* [smp_rows] */
	struct be_sample_pair *d_pairs;	/* [smp_pairs] */
	uint32_t *d_masks;		/* [smp_rows * BE_MASK_WORDS(vocab)] allow masks */
	int smp_rows, smp_pairs;
	/* host scratch */
	int32_t *slots;			/* [max_tokens] */
	void **allocs;			/* every device buffer, for destroy */
	int n_allocs;
};

#define G2_MAX_ALLOCS 32

static void *dev_alloc(struct g2_model *g, size_t bytes)
{
	void *p;
	if (g->n_allocs >= G2_MAX_ALLOCS)
		return NULL;
	p = g->be->ops->alloc(g->be->ctx, bytes ? bytes : 4);
	if (p)
		g->allocs[g->n_allocs++] = p;
	return p;
}

/* A scale tensor "<module>.<suffix>" of n values (shape [n], [n, 1], or a scalar when n is 1). */
static int bind_scale(const struct g2_weights *src, const char *name, const char *suffix,
		      int64_t n, const void **p, enum be_dtype *dt)
{
	struct g2_tensor_ref t;
	char sname[160];
	size_t len = strlen(name);
	int rc;

	snprintf(sname, sizeof(sname), "%.*s.%s", (int)(len - 7), name, suffix);
	if ((rc = src->find(src->arg, sname, &t)) == ST_ENOENT)
		return log_err(ST_ENOENT, "model: FP8 weight '%s' has no '%s'", name, sname);
	if (rc < 0)
		return rc;
	if (t.dt == BE_F8_E4M3 || t.shape[0] != n ||
	    (t.ndim == 2 && t.shape[1] != 1) || t.ndim > 2)
		return log_err(ST_EFORMAT, "model: scale '%s' must be %lld float values", sname,
			       (long long)n);
	*p = t.p;
	*dt = t.dt;
	return 0;
}

/* The scales of FP8 weight w (name "<module>.weight", d0 output rows), from the config. */
static int bind_fp8(const struct g2_weights *src, struct g2_wt *w, const char *name, int64_t d0)
{
	const struct g2_quant_cfg *q = &src->cfg.quant;
	int rc;

	if (q->method != G2_QUANT_FP8 || strlen(name) < 8 ||
	    strcmp(name + strlen(name) - 7, ".weight") != 0)
		return log_err(ST_EFORMAT, "model: tensor '%s' is FP8 but the config has no FP8 "
			       "quantization_config", name);
	if (!src->be->ops->matmul_fp8)
		return log_err(ST_ENOSYS, "model: backend %s cannot compute with FP8 weights ('%s'); "
			       "use --backend cpu or a bf16 checkpoint", src->be->ops->name, name);
	w->f8.w = w->p;
	w->f8.per_channel = q->per_channel;
	w->f8.act = (enum be_fp8_act)q->act;
	if ((rc = bind_scale(src, name, "weight_scale", q->per_channel ? d0 : 1, &w->f8.scale,
			     &w->f8.scale_dt)) < 0)
		return rc;
	if (q->act == BE_FP8_ACT_STATIC &&
	    (rc = bind_scale(src, name, "input_scale", 1, &w->f8.in_scale, &w->f8.in_scale_dt)) < 0)
		return rc;
	return 0;
}

static int bind(const struct g2_weights *src, struct g2_wt *w, const char *name, int64_t d0,
		int64_t d1)
{
	struct g2_tensor_ref t;
	int ndim = d1 ? 2 : 1;
	int rc = src->find(src->arg, name, &t);

	if (rc == ST_ENOENT)
		return log_err(ST_ENOENT, "model: tensor '%s' is missing", name);
	if (rc < 0)
		return rc;
	if (t.ndim != ndim || t.shape[0] != d0 || (ndim == 2 && t.shape[1] != d1))
		return log_err(ST_EFORMAT, "model: tensor '%s' has shape [%lld%s%lld], want [%lld%s%lld]",
			       name, (long long)t.shape[0], t.ndim == 2 ? "," : "",
			       t.ndim == 2 ? (long long)t.shape[1] : 0LL, (long long)d0,
			       ndim == 2 ? "," : "", ndim == 2 ? (long long)d1 : 0LL);
	w->dt = t.dt;
	w->p = (void *)t.p;
	if (t.dt == BE_F8_E4M3 && !d1)
		return log_err(ST_EFORMAT, "model: tensor '%s' (a norm) cannot be FP8", name);
	if (t.dt == BE_F8_E4M3)
		return bind_fp8(src, w, name, d0);
	return 0;
}

static int bind_layer(struct g2_model *g, const struct g2_weights *src, int l)
{
	const struct g2_config *c = &g->cfg;
	struct g2_layer *L = &g->layers[l];
	int64_t hid = c->hidden_size, qd = (int64_t)c->num_attention_heads * c->head_dim;
	int64_t kvd = (int64_t)c->num_key_value_heads * c->head_dim, ff = c->intermediate_size;
	char name[128];
	int rc = 0;
#define B(field, suffix, d0, d1)                                                              \
	do {                                                                                   \
		snprintf(name, sizeof(name), "model.layers.%d.%s.weight", l, suffix);          \
		if ((rc = bind(src, &L->field, name, d0, d1)) < 0)                             \
			return rc;                                                             \
	} while (0)
	B(in_norm, "input_layernorm", hid, 0);
	B(q, "self_attn.q_proj", qd, hid);
	B(k, "self_attn.k_proj", kvd, hid);
	B(v, "self_attn.v_proj", kvd, hid);
	B(o, "self_attn.o_proj", hid, qd);
	B(post_attn_norm, "post_attention_layernorm", hid, 0);
	B(pre_ff_norm, "pre_feedforward_layernorm", hid, 0);
	B(gate, "mlp.gate_proj", ff, hid);
	B(up, "mlp.up_proj", ff, hid);
	B(down, "mlp.down_proj", hid, ff);
	B(post_ff_norm, "post_feedforward_layernorm", hid, 0);
#undef B
	return rc;
}

/* Rows of the logits buffer: min(max_seqs, max_tokens), at least min(8, max_tokens). */
static int g2_logit_cap(int max_tokens, int max_seqs)
{
	int cap = max_seqs < max_tokens ? max_seqs : max_tokens;
	if (cap < 8)
		cap = max_tokens < 8 ? max_tokens : 8;
	return cap;
}

size_t g2_scratch_bytes(const struct g2_config *c, int max_tokens, int max_seqs, int max_blocks)
{
	size_t T = (size_t)(max_tokens > 0 ? max_tokens : 0);
	size_t hid = (size_t)c->hidden_size, vocab = (size_t)c->vocab_size;
	size_t qd = (size_t)c->num_attention_heads * (size_t)c->head_dim;
	size_t kvd = (size_t)c->num_key_value_heads * (size_t)c->head_dim;
	size_t ff = (size_t)c->intermediate_size;
	size_t lc = (size_t)g2_logit_cap(max_tokens, max_seqs);

	/* the buffers of g2_model_create, in its order */
	return T * (3 * hid + 2 * qd + 2 * kvd + 2 * ff) * 4 + lc * (hid + vocab) * 4 + T * 5 * 4 +
	       (size_t)(max_seqs > 0 ? max_seqs : 0) * (size_t)(max_blocks > 0 ? max_blocks : 0) * 4;
}

int g2_model_create(const struct g2_weights *w, int max_tokens, int max_seqs, int max_blocks,
		    struct g2_model **out)
{
	struct g2_model *g;
	const struct g2_config *c = &w->cfg;
	char err[160];
	size_t T, hid, qd, kvd, ff;
	int rc;

	*out = NULL;
	if (max_tokens <= 0 || max_seqs <= 0 || max_blocks <= 0)
		return log_err(ST_EINVAL, "model: bad limits (max_tokens %d, max_seqs %d, max_blocks %d)",
			       max_tokens, max_seqs, max_blocks);
	if (g2_config_check(c, err, sizeof(err)) < 0)
		return log_err(ST_EINVAL, "model: bad config: %s", err);
	if (!w->be || !w->be->ops || !w->be->ops->matmul || !w->find)
		return log_err(ST_ENOSYS, "model: backend has no compute ops");
	g = calloc(1, sizeof(*g));
	if (!g)
		return ST_ENOMEM;
	g->be = w->be;
	g->cfg = *c;
	g->max_tokens = max_tokens;
	g->max_seqs = max_seqs;
	g->max_blocks = max_blocks;
	g->logit_cap = g2_logit_cap(max_tokens, max_seqs);
	g->layers = calloc((size_t)c->num_hidden_layers, sizeof(*g->layers));
	g->allocs = calloc(G2_MAX_ALLOCS, sizeof(void *));
	g->slots = calloc((size_t)max_tokens, sizeof(int32_t));
	rc = ST_ENOMEM;
	if (!g->layers || !g->allocs || !g->slots)
		goto out_destroy;

	if ((rc = bind(w, &g->embed, "model.embed_tokens.weight", c->vocab_size, c->hidden_size)) < 0)
		goto out_destroy;
	rc = ST_EFORMAT;
	if (g->embed.dt == BE_F8_E4M3) {	/* an Embedding, and the tied LM head: not a Linear */
		log_err(rc, "model: FP8 embeddings are not supported (keep model.embed_tokens in bf16)");
		goto out_destroy;
	}
	if ((rc = bind(w, &g->final_norm, "model.norm.weight", c->hidden_size, 0)) < 0)
		goto out_destroy;
	for (int l = 0; l < c->num_hidden_layers; l++)
		if ((rc = bind_layer(g, w, l)) < 0)
			goto out_destroy;

	T = (size_t)max_tokens;
	hid = (size_t)c->hidden_size;
	qd = (size_t)c->num_attention_heads * (size_t)c->head_dim;
	kvd = (size_t)c->num_key_value_heads * (size_t)c->head_dim;
	ff = (size_t)c->intermediate_size;
	rc = ST_ENOMEM;
	if (!(g->h = dev_alloc(g, T * hid * 4)) || !(g->x = dev_alloc(g, T * hid * 4)) ||
	    !(g->q = dev_alloc(g, T * qd * 4)) || !(g->k = dev_alloc(g, T * kvd * 4)) ||
	    !(g->v = dev_alloc(g, T * kvd * 4)) || !(g->att = dev_alloc(g, T * qd * 4)) ||
	    !(g->proj = dev_alloc(g, T * hid * 4)) || !(g->gate = dev_alloc(g, T * ff * 4)) ||
	    !(g->up = dev_alloc(g, T * ff * 4)) ||
	    !(g->sel = dev_alloc(g, (size_t)g->logit_cap * hid * 4)) ||
	    !(g->logits = dev_alloc(g, (size_t)g->logit_cap * (size_t)c->vocab_size * 4)) ||
	    !(g->d_tokens = dev_alloc(g, T * 4)) || !(g->d_pos = dev_alloc(g, T * 4)) ||
	    !(g->d_seq = dev_alloc(g, T * 4)) || !(g->d_slots = dev_alloc(g, T * 4)) ||
	    !(g->d_rows = dev_alloc(g, T * 4)) ||
	    !(g->d_bt = dev_alloc(g, (size_t)max_seqs * (size_t)max_blocks * 4))) {
		log_err(ST_ENOMEM, "model: cannot allocate scratch for %d tokens", max_tokens);
		goto out_destroy;
	}
	*out = g;
	return 0;
out_destroy:
	g2_model_destroy(g);
	return rc;
}

void g2_model_destroy(struct g2_model *g)
{
	if (!g)
		return;
	for (int i = 0; i < g->n_allocs; i++)
		g->be->ops->free(g->be->ctx, g->allocs[i]);
	free(g->allocs);
	free(g->layers);
	free(g->slots);
	free(g);
}

size_t g2_sampling_bytes(int max_rows, int max_pairs, int vocab)
{
	return (size_t)max_rows * (sizeof(struct be_sample_row) + sizeof(struct be_sample_out)) +
	       (size_t)max_pairs * sizeof(struct be_sample_pair) +
	       (size_t)max_rows * BE_MASK_WORDS(vocab) * sizeof(uint32_t);
}

int g2_model_enable_sampling(struct g2_model *g, int max_rows, int max_pairs)
{
	if (max_rows < 1 || max_rows > g->max_seqs || max_pairs < 0)
		return log_err(ST_EINVAL, "model: device sampling for %d rows (1..%d) and %d pairs",
			       max_rows, g->max_seqs, max_pairs);
	if (!g->be->ops->sample)
		return log_err(ST_ENOSYS, "model: backend %s cannot sample", g->be->ops->name);
	if (g->d_srows && max_rows <= g->smp_rows && max_pairs <= g->smp_pairs)
		return 0;
	if (g->d_srows)
		return log_err(ST_EINVAL, "model: device sampling buffers are already sized");
	if (!(g->d_srows = dev_alloc(g, (size_t)max_rows * sizeof(struct be_sample_row))) ||
	    !(g->d_sout = dev_alloc(g, (size_t)max_rows * sizeof(struct be_sample_out))) ||
	    !(g->d_pairs = dev_alloc(g, (size_t)(max_pairs > 0 ? max_pairs : 1) *
					sizeof(struct be_sample_pair))) ||
	    !(g->d_masks = dev_alloc(g, (size_t)max_rows * BE_MASK_WORDS(g->cfg.vocab_size) *
					 sizeof(uint32_t)))) {
		g->d_srows = NULL;
		return log_err(ST_ENOMEM, "model: no device memory for sampling %d rows", max_rows);
	}
	g->smp_rows = max_rows;
	g->smp_pairs = max_pairs;
	return 0;
}

const struct g2_config *g2_model_config(const struct g2_model *g) { return &g->cfg; }
int g2_model_max_tokens(const struct g2_model *g) { return g->max_tokens; }
int g2_model_max_seqs(const struct g2_model *g) { return g->max_seqs; }
int g2_model_max_blocks(const struct g2_model *g) { return g->max_blocks; }

/* Checks the batch against the model, the cache and itself; fills g->slots. */
static int check_batch(struct g2_model *g, struct kv_cache *kv, const struct g2_batch *b)
{
	int bs = kv_block_size(kv), nb = kv_n_blocks(kv);

	if (b->n_tok < 1 || b->n_tok > g->max_tokens)
		return log_err(ST_EINVAL, "forward: n_tok %d not in 1..%d", b->n_tok, g->max_tokens);
	if (b->n_seqs < 1 || b->n_seqs > g->max_seqs)
		return log_err(ST_EINVAL, "forward: n_seqs %d not in 1..%d", b->n_seqs, g->max_seqs);
	if (b->max_blocks < 1 || b->max_blocks > g->max_blocks)
		return log_err(ST_EINVAL, "forward: max_blocks %d not in 1..%d", b->max_blocks,
			       g->max_blocks);
	if (b->n_logits < 0 || b->n_logits > b->n_tok)
		return log_err(ST_EINVAL, "forward: n_logits %d not in 0..%d", b->n_logits, b->n_tok);
	if (kv_dtype(kv) != g->be->ops->kv_dtype)
		return log_err(ST_EINVAL, "forward: kv cache dtype differs from the backend's");
	for (int s = 0; s < b->n_seqs; s++) {
		int len = b->ctx_lens[s];
		if (len < 0 || len > b->max_blocks * bs)
			return log_err(ST_EINVAL, "forward: sequence row %d: context length %d not in 0..%d",
				       s, len, b->max_blocks * bs);
		for (int i = 0; i < (len + bs - 1) / bs; i++) {
			int32_t blk = b->block_tables[(size_t)s * b->max_blocks + i];
			if (blk < 0 || blk >= nb)
				return log_err(ST_EINVAL, "forward: sequence row %d: block %d is %d, not in 0..%d",
					       s, i, (int)blk, nb - 1);
		}
	}
	for (int t = 0; t < b->n_tok; t++) {
		int id = b->tokens[t], s = b->seq[t], p = b->positions[t];
		if (id < 0 || id >= g->cfg.vocab_size)
			return log_err(ST_EINVAL, "forward: token %d: id %d not in 0..%d", t, id,
				       g->cfg.vocab_size - 1);
		if (s < 0 || s >= b->n_seqs)
			return log_err(ST_EINVAL, "forward: token %d: sequence row %d not in 0..%d", t, s,
				       b->n_seqs - 1);
		if (p < 0 || p >= b->ctx_lens[s])
			return log_err(ST_EINVAL, "forward: token %d: position %d not below context length %d",
				       t, p, b->ctx_lens[s]);
		g->slots[t] = b->block_tables[(size_t)s * b->max_blocks + p / bs] * bs + p % bs;
	}
	for (int r = 0; r < b->n_logits; r++)
		if (b->logit_rows[r] < 0 || b->logit_rows[r] >= b->n_tok)
			return log_err(ST_EINVAL, "forward: logit row %d is %d, not in 0..%d", r,
				       b->logit_rows[r], b->n_tok - 1);
	if (b->n_logits > 0 && !b->logit_rows)
		return log_err(ST_EINVAL, "forward: logit_rows missing");
	if (b->sample_out) {
		if (!g->d_srows || b->n_logits > g->smp_rows || b->n_pairs < 0 ||
		    b->n_pairs > g->smp_pairs || (b->n_logits > 0 && !b->sample_rows) ||
		    (b->n_pairs > 0 && !b->sample_pairs))
			return log_err(ST_EINVAL, "forward: device sampling of %d rows, %d pairs "
				       "(sized for %d, %d)", b->n_logits, b->n_pairs, g->smp_rows,
				       g->smp_pairs);
		for (int r = 0; r < b->n_logits; r++) {
			const struct be_sample_row *sr = &b->sample_rows[r];
			if (sr->pair_off < 0 || sr->n_pairs < 0 || sr->pair_off > b->n_pairs ||
			    sr->n_pairs > b->n_pairs - sr->pair_off ||
			    sr->n_logprobs > BE_SAMPLE_MAX_TOP || (sr->has_mask && !b->sample_masks))
				return log_err(ST_EINVAL, "forward: sample row %d: pairs [%d, +%d) of %d, "
					       "logprobs %d", r, sr->pair_off, sr->n_pairs, b->n_pairs,
					       sr->n_logprobs);
		}
	}
	return 0;
}

#define TRY(x) do { if ((rc = (x)) < 0) goto out; } while (0)

/* y = x W^T for a layer weight in any stored dtype (FP8 through matmul_fp8). */
static int mm(struct g2_model *g, float *y, const float *x, const struct g2_wt *w, int n,
	      int n_out, int n_in)
{
	const struct be_ops *o = g->be->ops;
	if (w->dt == BE_F8_E4M3)
		return o->matmul_fp8(g->be->ctx, y, x, &w->f8, n, n_out, n_in);
	return o->matmul(g->be->ctx, y, x, w->p, w->dt, n, n_out, n_in);
}

static int run_layer(struct g2_model *g, struct kv_cache *kv, int l, int n, const struct be_attn *a0)
{
	const struct be_ops *o = g->be->ops;
	void *cx = g->be->ctx;
	const struct g2_config *c = &g->cfg;
	const struct g2_layer *L = &g->layers[l];
	int hid = c->hidden_size, nh = c->num_attention_heads, nkv = c->num_key_value_heads;
	int hd = c->head_dim, qd = nh * hd, kvd = nkv * hd, ff = c->intermediate_size;
	float eps = (float)c->rms_norm_eps, theta = (float)c->rope_theta;
	struct be_attn a = *a0;
	int rc;

	a.window = g2_layer_is_sliding(l) ? c->sliding_window : 0;
	TRY(o->rmsnorm(cx, g->x, g->h, L->in_norm.p, L->in_norm.dt, n, hid, eps));
	TRY(mm(g, g->q, g->x, &L->q, n, qd, hid));
	TRY(mm(g, g->k, g->x, &L->k, n, kvd, hid));
	TRY(mm(g, g->v, g->x, &L->v, n, kvd, hid));
	TRY(o->rope(cx, g->q, g->d_pos, n, nh, hd, theta));
	TRY(o->rope(cx, g->k, g->d_pos, n, nkv, hd, theta));
	TRY(o->kv_write(cx, kv_layer_k(kv, l), kv_layer_v(kv, l), kv_dtype(kv), g->k, g->v,
			g->d_slots, n, kvd));
	TRY(o->attention(cx, g->att, g->q, kv_layer_k(kv, l), kv_layer_v(kv, l), kv_dtype(kv), &a));
	TRY(mm(g, g->proj, g->att, &L->o, n, hid, qd));
	TRY(o->rmsnorm(cx, g->proj, g->proj, L->post_attn_norm.p, L->post_attn_norm.dt, n, hid, eps));
	TRY(o->add(cx, g->h, g->proj, (size_t)n * hid));
	TRY(o->rmsnorm(cx, g->x, g->h, L->pre_ff_norm.p, L->pre_ff_norm.dt, n, hid, eps));
	TRY(mm(g, g->gate, g->x, &L->gate, n, ff, hid));
	TRY(mm(g, g->up, g->x, &L->up, n, ff, hid));
	TRY(o->gelu_mul(cx, g->gate, g->gate, g->up, (size_t)n * ff));
	TRY(mm(g, g->proj, g->gate, &L->down, n, hid, ff));
	TRY(o->rmsnorm(cx, g->proj, g->proj, L->post_ff_norm.p, L->post_ff_norm.dt, n, hid, eps));
	TRY(o->add(cx, g->h, g->proj, (size_t)n * hid));
out:
	if (rc < 0)
		log_err(rc, "forward: layer %d failed (%s)", l, st_str(rc));
	return rc;
}

int g2_forward(struct g2_model *g, struct kv_cache *kv, const struct g2_batch *b, float *logits)
{
	const struct be_ops *o = g->be->ops;
	void *cx = g->be->ctx;
	const struct g2_config *c = &g->cfg;
	int n = b->n_tok, hid = c->hidden_size, vocab = c->vocab_size;
	struct be_attn a;
	int rc;

	if ((rc = check_batch(g, kv, b)) < 0)
		return rc;
	if (b->n_logits > 0 && !logits && !b->sample_out)
		return log_err(ST_EINVAL, "forward: logits buffer missing");
	TRY(o->copy_h2d(cx, g->d_tokens, b->tokens, (size_t)n * 4));
	TRY(o->copy_h2d(cx, g->d_pos, b->positions, (size_t)n * 4));
	TRY(o->copy_h2d(cx, g->d_seq, b->seq, (size_t)n * 4));
	TRY(o->copy_h2d(cx, g->d_slots, g->slots, (size_t)n * 4));
	TRY(o->copy_h2d(cx, g->d_bt, b->block_tables, (size_t)b->n_seqs * b->max_blocks * 4));
	if (b->n_logits > 0)
		TRY(o->copy_h2d(cx, g->d_rows, b->logit_rows, (size_t)b->n_logits * 4));
	if (b->sample_out && b->n_logits > 0)
		TRY(o->copy_h2d(cx, g->d_srows, b->sample_rows,
				(size_t)b->n_logits * sizeof(struct be_sample_row)));
	if (b->sample_out && b->n_pairs > 0)
		TRY(o->copy_h2d(cx, g->d_pairs, b->sample_pairs,
				(size_t)b->n_pairs * sizeof(struct be_sample_pair)));
	if (b->sample_out && b->sample_masks && b->n_logits > 0)
		TRY(o->copy_h2d(cx, g->d_masks, b->sample_masks, (size_t)b->n_logits *
				BE_MASK_WORDS(vocab) * sizeof(uint32_t)));

	memset(&a, 0, sizeof(a));
	a.n_tok = n;
	a.n_heads = c->num_attention_heads;
	a.n_kv_heads = c->num_key_value_heads;
	a.head_dim = c->head_dim;
	a.block_size = kv_block_size(kv);
	a.max_blocks = b->max_blocks;
	a.scale = (float)(1.0 / sqrt(c->query_pre_attn_scalar));
	a.softcap = (float)c->attn_logit_softcapping;
	a.pos = g->d_pos;
	a.seq = g->d_seq;
	a.block_tables = g->d_bt;

	TRY(o->embed(cx, g->h, g->embed.p, g->embed.dt, g->d_tokens, n, hid,
		     (float)sqrt((double)hid)));
	for (int l = 0; l < c->num_hidden_layers; l++)
		TRY(run_layer(g, kv, l, n, &a));

	for (int r0 = 0; r0 < b->n_logits; r0 += g->logit_cap) {
		int nr = b->n_logits - r0 < g->logit_cap ? b->n_logits - r0 : g->logit_cap;
		TRY(o->gather_rows(cx, g->sel, g->h, g->d_rows + r0, nr, hid));
		TRY(o->rmsnorm(cx, g->sel, g->sel, g->final_norm.p, g->final_norm.dt, nr, hid,
			       (float)c->rms_norm_eps));
		TRY(o->matmul(cx, g->logits, g->sel, g->embed.p, g->embed.dt, nr, vocab, hid));
		if (c->final_logit_softcapping > 0)
			TRY(o->softcap(cx, g->logits, (size_t)nr * vocab,
				       (float)c->final_logit_softcapping));
		if (b->sample_out) {
			TRY(o->sample(cx, g->d_sout + r0, g->logits, g->d_srows + r0, g->d_pairs,
				      b->sample_masks ? g->d_masks + (size_t)r0 * BE_MASK_WORDS(vocab) :
				      NULL, nr, vocab));
			TRY(o->copy_d2h(cx, b->sample_out + r0, g->d_sout + r0,
					(size_t)nr * sizeof(struct be_sample_out)));
		} else {
			TRY(o->copy_d2h(cx, logits + (size_t)r0 * vocab, g->logits,
					(size_t)nr * vocab * sizeof(float)));
		}
	}
out:
	if (rc < 0)
		log_err(rc, "forward: step of %d tokens failed (%s)", n, st_str(rc));
	return rc;
}
