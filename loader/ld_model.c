/*
 * ld_model.c - the loaded model as the rest of the program sees it: the
 * loader's options and their defaults, the tensor table and its arena
 * (placing tensors, lookup, hash, destroy), and the binding of that table
 * to kernels/gemma2.c (struct g2_weights).
 *
 * It does not read bytes: the parallel pipeline (pipeline.c, ld_load) and
 * the sequential reference (load_simple.c) fill the arena; both place
 * tensors here, so that their arenas are laid out alike byte for byte.
 * ld_opts_default is the one place the loader's defaults are written;
 * ld_opts_resolve applies them to the fields a caller left at 0.
 */
#include "loader/ld_model.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/gemma2.h"
#include "loader/loader.h"
#include "loader/model_desc.h"

void ld_opts_default(struct ld_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->workers = 16;
	o->chunk_bytes = 0;	/* by source: LD_CHUNK_NET or LD_CHUNK_LOCAL (pipeline.c) */
	o->pinned_bytes = 512u << 20;
	o->verify = 1;
	o->max_retries = 1000;
	o->retry_deadline_s = 300;
	o->stall_s = 20;
	o->connect_s = 10;
}

void ld_opts_resolve(const struct ld_opts *in, struct ld_opts *out)
{
	struct ld_opts def;
	ld_opts_default(&def);
	if (!in) {
		*out = def;
		return;
	}
	*out = *in;
	if (out->workers <= 0)
		out->workers = def.workers;
	if (out->pinned_bytes == 0)
		out->pinned_bytes = def.pinned_bytes;
	if (out->max_retries < 0)	/* 0: --loader-retries 0, none */
		out->max_retries = def.max_retries;
	if (!(out->retry_deadline_s > 0))
		out->retry_deadline_s = def.retry_deadline_s;
	if (!(out->stall_s > 0))
		out->stall_s = def.stall_s;
	if (!(out->connect_s > 0))
		out->connect_s = def.connect_s;
}

/* Builds the tensor table: shards laid one after another, 256-byte aligned. */
int ld_place_tensors(struct ld_model *m, const struct ld_desc *d, size_t *shard_base)
{
	size_t off = 0;
	int n = 0;
	for (int s = 0; s < d->n_shards; s++)
		n += d->shards[s].n_tensors;
	m->tensors = calloc(n ? (size_t)n : 1, sizeof(*m->tensors));
	if (!m->tensors)
		return ST_ENOMEM;
	for (int s = 0; s < d->n_shards; s++) {
		if (d->shards[s].data_len > SIZE_MAX - 255 - off)	/* sizes a server claimed: no wrap-around */
			return log_err(ST_ERANGE, "model: %d shards of tensor data do not fit in memory", d->n_shards);
		shard_base[s] = off;
		for (int i = 0; i < d->shards[s].n_tensors; i++) {
			const struct st_tensor *t = &d->shards[s].tensors[i];
			struct ld_tensor *lt = &m->tensors[m->n_tensors++];
			memcpy(lt->name, t->name, sizeof(lt->name));
			lt->dtype = t->dtype;
			lt->ndim = t->ndim;
			memcpy(lt->shape, t->shape, sizeof(lt->shape));
			lt->offset = off + t->begin;
			lt->nbytes = t->end - t->begin;
		}
		off += (d->shards[s].data_len + 255) / 256 * 256;
	}
	m->arena_bytes = off;
	return 0;
}

void *ld_tensor_ptr(const struct ld_model *m, const char *name, const struct ld_tensor **t)
{
	for (int i = 0; i < m->n_tensors; i++) {
		if (strcmp(m->tensors[i].name, name) == 0) {
			if (t)
				*t = &m->tensors[i];
			return (char *)m->arena + m->tensors[i].offset;
		}
	}
	return NULL;
}

void ld_model_destroy(struct ld_model *m)
{
	if (!m)
		return;
	if (m->arena && m->be)
		m->be->ops->free(m->be->ctx, m->arena);
	free(m->tensors);
	free(m->tokenizer_json);
	free(m);
}

int ld_model_hash(const struct ld_model *m, char hex[65])
{
	const struct be_ops *ops = m->be->ops;
	const size_t bufn = 8u << 20;
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *buf = NULL;
	EVP_MD_CTX *ctx;
	int rc = 0;

	if (!ops->host_visible && !ops->copy_d2h)
		return log_err(ST_ENOSYS, "arena hash: backend '%s' cannot copy to the host", ops->name);
	if (!ops->host_visible && !(buf = malloc(bufn)))
		return ST_ENOMEM;
	if (!(ctx = EVP_MD_CTX_new())) {
		free(buf);
		return ST_ENOMEM;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		rc = ST_EIO;
	for (int i = 0; rc == 0 && i < m->n_tensors; i++) {
		const char *src = (const char *)m->arena + m->tensors[i].offset;
		for (size_t o = 0; rc == 0 && o < m->tensors[i].nbytes;) {
			size_t n = ops->host_visible ? m->tensors[i].nbytes : MIN(bufn, m->tensors[i].nbytes - o);
			const void *p = src + o;
			if (!ops->host_visible) {
				if ((rc = ops->copy_d2h(m->be->ctx, buf, src + o, n)) < 0)
					break;
				p = buf;
			}
			if (EVP_DigestUpdate(ctx, p, n) != 1)
				rc = ST_EIO;
			o += n;
		}
	}
	if (rc == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		rc = ST_EIO;
	EVP_MD_CTX_free(ctx);
	free(buf);
	for (unsigned i = 0; rc == 0 && i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	return rc;
}

/* ---- binding to kernels/gemma2.c ---- */

static int find_tensor(void *arg, const char *name, struct g2_tensor_ref *out)
{
	const struct ld_model *m = arg;
	const struct ld_tensor *t = NULL;
	void *p = ld_tensor_ptr(m, name, &t);

	if (!p)
		return ST_ENOENT;
	switch (t->dtype) {
	case ST_BF16: out->dt = BE_BF16; break;
	case ST_F16:  out->dt = BE_F16; break;
	case ST_F32:  out->dt = BE_F32; break;
	case ST_F8_E4M3: out->dt = BE_F8_E4M3; break;	/* with its *.weight_scale (gemma2.c) */
	default:
		return log_err(ST_EFORMAT, "model: tensor '%s' has dtype %s (want BF16, F16, F32 or F8_E4M3)",
			       name, st_dtype_name(t->dtype));
	}
	out->p = p;
	out->ndim = t->ndim;
	out->shape[0] = t->ndim > 0 ? t->shape[0] : 1;
	out->shape[1] = t->ndim > 1 ? t->shape[1] : 0;
	return 0;
}

void ld_g2_weights(struct ld_model *m, struct g2_weights *out)
{
	memset(out, 0, sizeof(*out));
	out->be = m->be;
	out->cfg = m->cfg;
	out->bytes = m->arena_bytes;
	out->find = find_tensor;
	out->arg = m;
}

int ld_g2_model_create(struct ld_model *m, int max_tokens, int max_seqs, int max_blocks,
		       struct g2_model **out)
{
	struct g2_weights w;
	ld_g2_weights(m, &w);
	return g2_model_create(&w, max_tokens, max_seqs, max_blocks, out);
}
