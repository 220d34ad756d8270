/*
 * model_bind.c - hands a loaded model's weights to kernels/gemma2.c: the
 * find() of struct g2_weights over the loader's tensor table, converting
 * the stored safetensors dtype to the backend's element type. The model
 * code never sees files, shards or the loader's structures.
 */
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/gemma2.h"
#include "loader/loader.h"

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
	default:
		return log_err(ST_EFORMAT, "model: tensor '%s' has dtype %s (want BF16, F16 or F32)",
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
