/* model_format.c - config.json, the shard index, model validation; see model_format.h. */
#include "loader/model_format.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/backend.h"
#include "loader/quant_format.h"

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ST_EINVAL;
}

/* Reads an integer field if present; rejects non-integers. */
static int get_int(const cJSON *root, const char *key, int *out, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
	    fabs(v->valuedouble) > 2147483647.0)
		return fail(err, errlen, "config.json: '%s' must be an integer", key);
	*out = (int)v->valuedouble;
	return 0;
}

static int get_num(const cJSON *root, const char *key, double *out, int null_is_zero, char *err,
		   size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
	if (!v)
		return 0;
	if (cJSON_IsNull(v)) {
		if (null_is_zero) {
			*out = 0;
			return 0;
		}
		return fail(err, errlen, "config.json: '%s' must be a number, not null", key);
	}
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return fail(err, errlen, "config.json: '%s' must be a number", key);
	*out = v->valuedouble;
	return 0;
}

static int get_str(const cJSON *root, const char *key, char *out, size_t cap, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap)
		return fail(err, errlen, "config.json: '%s' must be a short string", key);
	strcpy(out, v->valuestring);
	return 0;
}

int g2_config_parse(const char *json, size_t n, struct g2_config *c, char *err, size_t errlen)
{
	cJSON *root = cJSON_ParseWithLength(json, n);
	const cJSON *v;
	int rc = 0;

	g2_config_defaults(c);
	if (!root || !cJSON_IsObject(root)) {
		rc = fail(err, errlen, "config.json is not a JSON object");
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "model_type");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, "gemma2") != 0) {
		rc = fail(err, errlen, "config.json: model_type is '%s', this server runs only 'gemma2'",
			  cJSON_IsString(v) ? v->valuestring : "(missing)");
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "architectures");
	if (v) {
		const cJSON *a;
		int found = 0;
		cJSON_ArrayForEach(a, v) {
			if (cJSON_IsString(a) && strcmp(a->valuestring, "Gemma2ForCausalLM") == 0)
				found = 1;
		}
		if (!cJSON_IsArray(v) || !found) {
			rc = fail(err, errlen, "config.json: architectures does not list Gemma2ForCausalLM");
			goto out;
		}
	}
	struct { const char *key; int *dst; } ints[] = {
		{ "vocab_size", &c->vocab_size }, { "hidden_size", &c->hidden_size },
		{ "intermediate_size", &c->intermediate_size },
		{ "num_hidden_layers", &c->num_hidden_layers },
		{ "num_attention_heads", &c->num_attention_heads },
		{ "num_key_value_heads", &c->num_key_value_heads }, { "head_dim", &c->head_dim },
		{ "sliding_window_size", &c->sliding_window }, { "sliding_window", &c->sliding_window },
		{ "max_position_embeddings", &c->max_position_embeddings },
		{ "bos_token_id", &c->bos_token_id }, { "pad_token_id", &c->pad_token_id },
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if ((rc = get_int(root, ints[i].key, ints[i].dst, err, errlen)) < 0)
			goto out;
	if ((rc = get_num(root, "query_pre_attn_scalar", &c->query_pre_attn_scalar, 0, err, errlen)) < 0 ||
	    (rc = get_num(root, "attn_logit_softcapping", &c->attn_logit_softcapping, 1, err, errlen)) < 0 ||
	    (rc = get_num(root, "final_logit_softcapping", &c->final_logit_softcapping, 1, err, errlen)) < 0 ||
	    (rc = get_num(root, "rms_norm_eps", &c->rms_norm_eps, 0, err, errlen)) < 0 ||
	    (rc = get_num(root, "rope_theta", &c->rope_theta, 0, err, errlen)) < 0)
		goto out;
	v = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
	if (cJSON_IsNumber(v)) {
		c->n_eos = 1;
		c->eos_token_ids[0] = v->valueint;
	} else if (cJSON_IsArray(v)) {
		const cJSON *a;
		c->n_eos = 0;
		cJSON_ArrayForEach(a, v) {
			if (!cJSON_IsNumber(a) || c->n_eos == G2_MAX_EOS) {
				rc = fail(err, errlen, "config.json: eos_token_id must be up to %d integers",
					  G2_MAX_EOS);
				goto out;
			}
			c->eos_token_ids[c->n_eos++] = a->valueint;
		}
	} else if (v && !cJSON_IsNull(v)) {
		rc = fail(err, errlen, "config.json: eos_token_id must be an integer or a list");
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
	if (v && !cJSON_IsBool(v)) {
		rc = fail(err, errlen, "config.json: tie_word_embeddings must be a boolean");
		goto out;
	}
	if (v)
		c->tie_word_embeddings = cJSON_IsTrue(v);
	/* hidden_activation wins over the older hidden_act, as in HF. */
	if ((rc = get_str(root, "hidden_act", c->hidden_activation, sizeof(c->hidden_activation), err,
			  errlen)) < 0 ||
	    (rc = get_str(root, "hidden_activation", c->hidden_activation,
			  sizeof(c->hidden_activation), err, errlen)) < 0 ||
	    (rc = get_str(root, "torch_dtype", c->torch_dtype, sizeof(c->torch_dtype), err, errlen)) < 0)
		goto out;
	if ((rc = ld_quant_parse(cJSON_GetObjectItemCaseSensitive(root, "quantization_config"),
				 &c->quant, err, errlen)) < 0)
		goto out;
	{
		char why[200];
		if (g2_config_check(c, why, sizeof(why)) < 0)
			rc = fail(err, errlen, "config.json: %s", why);
	}
out:
	cJSON_Delete(root);
	return rc;
}

char *g2_config_to_json(const struct g2_config *c)
{
	cJSON *r = cJSON_CreateObject(), *a;
	char *s;
	if (!r)
		return NULL;
	a = cJSON_AddArrayToObject(r, "architectures");
	cJSON_AddItemToArray(a, cJSON_CreateString("Gemma2ForCausalLM"));
	cJSON_AddFalseToObject(r, "attention_bias");
	cJSON_AddNumberToObject(r, "attention_dropout", 0.0);
	cJSON_AddNumberToObject(r, "attn_logit_softcapping", c->attn_logit_softcapping);
	cJSON_AddNumberToObject(r, "bos_token_id", c->bos_token_id);
	cJSON_AddStringToObject(r, "cache_implementation", "hybrid");
	if (c->n_eos == 1) {
		cJSON_AddNumberToObject(r, "eos_token_id", c->eos_token_ids[0]);
	} else {
		a = cJSON_AddArrayToObject(r, "eos_token_id");
		for (int i = 0; i < c->n_eos; i++)
			cJSON_AddItemToArray(a, cJSON_CreateNumber(c->eos_token_ids[i]));
	}
	cJSON_AddNumberToObject(r, "final_logit_softcapping", c->final_logit_softcapping);
	cJSON_AddNumberToObject(r, "head_dim", c->head_dim);
	cJSON_AddStringToObject(r, "hidden_act", c->hidden_activation);
	cJSON_AddStringToObject(r, "hidden_activation", c->hidden_activation);
	cJSON_AddNumberToObject(r, "hidden_size", c->hidden_size);
	cJSON_AddNumberToObject(r, "initializer_range", 0.02);
	cJSON_AddNumberToObject(r, "intermediate_size", c->intermediate_size);
	cJSON_AddNumberToObject(r, "max_position_embeddings", c->max_position_embeddings);
	cJSON_AddStringToObject(r, "model_type", "gemma2");
	cJSON_AddNumberToObject(r, "num_attention_heads", c->num_attention_heads);
	cJSON_AddNumberToObject(r, "num_hidden_layers", c->num_hidden_layers);
	cJSON_AddNumberToObject(r, "num_key_value_heads", c->num_key_value_heads);
	cJSON_AddNumberToObject(r, "pad_token_id", c->pad_token_id);
	if (ld_quant_to_json(&c->quant, r) < 0) {
		cJSON_Delete(r);
		return NULL;
	}
	cJSON_AddNumberToObject(r, "query_pre_attn_scalar", c->query_pre_attn_scalar);
	cJSON_AddNumberToObject(r, "rms_norm_eps", c->rms_norm_eps);
	cJSON_AddNumberToObject(r, "rope_theta", c->rope_theta);
	cJSON_AddNumberToObject(r, "sliding_window", c->sliding_window);
	cJSON_AddNumberToObject(r, "sliding_window_size", c->sliding_window);
	cJSON_AddBoolToObject(r, "tie_word_embeddings", c->tie_word_embeddings);
	cJSON_AddStringToObject(r, "torch_dtype", c->torch_dtype);
	cJSON_AddStringToObject(r, "transformers_version", "4.42.4");
	cJSON_AddTrueToObject(r, "use_cache");
	cJSON_AddNumberToObject(r, "vocab_size", c->vocab_size);
	s = cJSON_Print(r);
	cJSON_Delete(r);
	return s;
}

static int shard_name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 12 && n < 200 && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, "..") != 0 &&
	       s[0] != '.' && strcmp(s + n - 12, ".safetensors") == 0;
}

int ld_index_parse(const char *json, size_t n, struct ld_index *ix, char *err, size_t errlen)
{
	cJSON *root = cJSON_ParseWithLength(json, n);
	const cJSON *wm, *e, *meta;
	int rc = 0, count;

	memset(ix, 0, sizeof(*ix));
	if (!root || !cJSON_IsObject(root)) {
		rc = fail(err, errlen, "model.safetensors.index.json is not a JSON object");
		goto out;
	}
	meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
	if (meta) {
		const cJSON *ts = cJSON_GetObjectItemCaseSensitive(meta, "total_size");
		if (cJSON_IsNumber(ts) && ts->valuedouble >= 0 && ts->valuedouble < 18446744073709551616.0)
			ix->total_size = (uint64_t)ts->valuedouble;
	}
	wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	if (!cJSON_IsObject(wm) || (count = cJSON_GetArraySize(wm)) == 0) {
		rc = fail(err, errlen, "model.safetensors.index.json: weight_map missing or empty");
		goto out;
	}
	if (count > ST_MAX_TENSORS) {	/* the checks below are quadratic */
		rc = fail(err, errlen, "model.safetensors.index.json: weight_map lists %d tensors, more than the %d accepted",
			  count, ST_MAX_TENSORS);
		goto out;
	}
	ix->tensor = calloc((size_t)count, sizeof(char *));
	ix->shard_of = calloc((size_t)count, sizeof(int));
	ix->shards = calloc((size_t)count, sizeof(char *));
	if (!ix->tensor || !ix->shard_of || !ix->shards) {
		rc = ST_ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(e, wm) {
		int s;
		if (!cJSON_IsString(e) || !shard_name_ok(e->valuestring)) {
			rc = fail(err, errlen, "weight_map['%s']: shard name is not a plain *.safetensors file name",
				  e->string);
			goto out;
		}
		for (s = 0; s < ix->n_shards; s++)
			if (strcmp(ix->shards[s], e->valuestring) == 0)
				break;
		if (s == ix->n_shards && !(ix->shards[ix->n_shards++] = strdup(e->valuestring))) {
			rc = ST_ENOMEM;
			goto out;
		}
		for (int k = 0; k < ix->n_entries; k++) {
			if (strcmp(ix->tensor[k], e->string) == 0) {
				rc = fail(err, errlen, "weight_map: tensor '%s' listed twice", e->string);
				goto out;
			}
		}
		if (!(ix->tensor[ix->n_entries] = strdup(e->string))) {
			rc = ST_ENOMEM;
			goto out;
		}
		ix->shard_of[ix->n_entries++] = s;
	}
out:
	cJSON_Delete(root);
	if (rc < 0)
		ld_index_release(ix);
	return rc;
}

void ld_index_release(struct ld_index *ix)
{
	if (!ix)
		return;
	for (int i = 0; i < ix->n_entries; i++)
		free(ix->tensor[i]);
	for (int i = 0; i < ix->n_shards; i++)
		free(ix->shards[i]);
	free(ix->tensor);
	free(ix->shard_of);
	free(ix->shards);
	memset(ix, 0, sizeof(*ix));
}

static const struct st_tensor *find_any(const struct st_file *shards, int n_shards, const char *name,
					int *which, int *count)
{
	const struct st_tensor *found = NULL;
	*count = 0;
	for (int s = 0; s < n_shards; s++) {
		const struct st_tensor *t = st_find(&shards[s], name);
		if (t) {
			if (!found) {
				found = t;
				*which = s;
			}
			(*count)++;
		}
	}
	return found;
}

/* 1 when name (a "*.weight" of c) is a Linear weight c's quantization_config covers. */
static int is_quantized(const struct g2_config *c, const char *name)
{
	char module[128];
	size_t n = strlen(name);

	if (c->quant.method == G2_QUANT_NONE || n < 12 || n >= sizeof(module) ||
	    strcmp(name + n - 12, "_proj.weight") != 0)
		return 0;
	memcpy(module, name, n - 7);
	module[n - 7] = 0;
	return ld_quant_covers(&c->quant, module);
}

/* 1 when name is one of the tensors c needs (with the scales of its FP8 weights). */
static int is_known(const struct g2_config *c, const char *name)
{
	char want[128], base[160];
	int64_t shape[2];
	const char *sfx[2] = { ".weight_scale", ".input_scale" };
	size_t n = strlen(name);

	for (int i = 0; i < g2_n_tensors(c); i++) {
		g2_tensor_info(c, i, want, sizeof(want), shape);
		if (strcmp(want, name) == 0)
			return 1;
	}
	for (int k = 0; k < 2; k++) {
		size_t ns = strlen(sfx[k]);
		if (n > ns && n - ns + 8 < sizeof(base) && strcmp(name + n - ns, sfx[k]) == 0) {
			if (k == 1 && c->quant.act != BE_FP8_ACT_STATIC)
				return 0;
			snprintf(base, sizeof(base), "%.*s.weight", (int)(n - ns), name);
			return is_quantized(c, base);
		}
	}
	return 0;
}

/* A scale tensor: present once, float, shape [n] / [n, 1] / scalar-like when n == 1. */
static int check_scale(const struct st_file *shards, int n_shards, const char *name, int64_t n,
		       char *err, size_t errlen)
{
	int which = 0, count;
	const struct st_tensor *t = find_any(shards, n_shards, name, &which, &count);

	if (!t)
		return fail(err, errlen, "tensor '%s' (the scale of an FP8 weight) is missing", name);
	if (count > 1)
		return fail(err, errlen, "tensor '%s' appears in %d shards", name, count);
	if (t->dtype != ST_BF16 && t->dtype != ST_F16 && t->dtype != ST_F32)
		return fail(err, errlen, "tensor '%s' has dtype %s; scales must be BF16, F16 or F32",
			    name, st_dtype_name(t->dtype));
	if (st_numel(t) != (uint64_t)n || t->ndim > 2 || (t->ndim >= 1 && t->shape[0] != n))
		return fail(err, errlen, "tensor '%s' has %llu values over %d dims; want %lld (shape [%lld, 1]%s)",
			    name, (unsigned long long)st_numel(t), t->ndim, (long long)n, (long long)n,
			    n == 1 ? " or a scalar" : "");
	return 0;
}

/* The dtype of weight t (name) against the config's quantization, and its scales. */
static int check_weight_dtype(const struct g2_config *c, const struct st_file *shards, int n_shards,
			      const struct st_tensor *t, const char *name, int64_t n_out, char *err,
			      size_t errlen)
{
	char sname[160];
	size_t n = strlen(name);
	int rc;

	if (!is_quantized(c, name)) {
		if (t->dtype == ST_BF16 || t->dtype == ST_F16 || t->dtype == ST_F32)
			return 0;
		if (t->dtype == ST_F8_E4M3)
			return fail(err, errlen, "tensor '%s' has dtype F8_E4M3 but config.json's "
				    "quantization_config does not quantize it (%s)", name,
				    c->quant.method == G2_QUANT_NONE ? "no quantization_config" :
				    "in its ignore list, or not a Linear layer");
		return fail(err, errlen, "tensor '%s' has dtype %s; only BF16, F16, F32 (and F8_E4M3 "
			    "with a quantization_config) load", name, st_dtype_name(t->dtype));
	}
	if (t->dtype != ST_F8_E4M3)
		return fail(err, errlen, "tensor '%s' has dtype %s; the quantization_config (FP8, "
			    "compressed-tensors) wants F8_E4M3", name, st_dtype_name(t->dtype));
	snprintf(sname, sizeof(sname), "%.*s.weight_scale", (int)(n - 7), name);
	if ((rc = check_scale(shards, n_shards, sname, c->quant.per_channel ? n_out : 1, err,
			      errlen)) < 0)
		return rc;
	if (c->quant.act == BE_FP8_ACT_STATIC) {
		snprintf(sname, sizeof(sname), "%.*s.input_scale", (int)(n - 7), name);
		if ((rc = check_scale(shards, n_shards, sname, 1, err, errlen)) < 0)
			return rc;
	}
	return 0;
}

int g2_validate(const struct g2_config *c, const struct st_file *shards, int n_shards,
		const struct ld_index *ix, int allow_unused, char *err, size_t errlen)
{
	char name[128];
	int64_t shape[2];
	int n_known = 0, n_total = 0;
	const char *first_unused = NULL;

	for (int i = 0; i < g2_n_tensors(c); i++) {
		int nd = g2_tensor_info(c, i, name, sizeof(name), shape), which = 0, count;
		const struct st_tensor *t = find_any(shards, n_shards, name, &which, &count);
		if (!t)
			return fail(err, errlen, "tensor '%s' is missing from the checkpoint", name);
		if (count > 1)
			return fail(err, errlen, "tensor '%s' appears in %d shards", name, count);
		if (check_weight_dtype(c, shards, n_shards, t, name, shape[0], err, errlen) < 0)
			return ST_EINVAL;
		if (is_quantized(c, name))
			n_known += c->quant.act == BE_FP8_ACT_STATIC ? 2 : 1;	/* its scales */
		if (t->ndim != nd || t->shape[0] != shape[0] || (nd == 2 && t->shape[1] != shape[1])) {
			char want[64], got[96];
			int o = 0;
			if (nd == 2)
				snprintf(want, sizeof(want), "[%lld, %lld]", (long long)shape[0],
					 (long long)shape[1]);
			else
				snprintf(want, sizeof(want), "[%lld]", (long long)shape[0]);
			o += snprintf(got + o, sizeof(got) - (size_t)o, "[");
			for (int d = 0; d < t->ndim && o < 80; d++)
				o += snprintf(got + o, sizeof(got) - (size_t)o, "%s%lld", d ? ", " : "",
					      (long long)t->shape[d]);
			snprintf(got + o, sizeof(got) - (size_t)o, "]");
			return fail(err, errlen, "tensor '%s' has shape %s, the config needs %s", name, got,
				    want);
		}
		if (ix) {
			int e;
			for (e = 0; e < ix->n_entries; e++)
				if (strcmp(ix->tensor[e], name) == 0)
					break;
			if (e == ix->n_entries)
				return fail(err, errlen, "tensor '%s' is not in the index weight_map", name);
			if (ix->shard_of[e] != which)
				return fail(err, errlen, "tensor '%s': index says shard '%s', found in '%s'", name,
					    ix->shards[ix->shard_of[e]], ix->shards[which]);
		}
		n_known++;
	}
	for (int s = 0; s < n_shards; s++) {
		for (int i = 0; i < shards[s].n_tensors; i++) {
			const char *tn = shards[s].tensors[i].name;
			n_total++;
			if (!first_unused && !is_known(c, tn))
				first_unused = tn;
			if (ix) {
				int e;
				for (e = 0; e < ix->n_entries; e++)
					if (strcmp(ix->tensor[e], tn) == 0)
						break;
				if (e == ix->n_entries || ix->shard_of[e] != s)
					return fail(err, errlen, "tensor '%s' in shard '%s' is not mapped there by the index",
						    tn, ix->shards[s]);
			}
		}
	}
	if (ix && ix->n_entries != n_total)
		return fail(err, errlen, "index maps %d tensors but the shards hold %d", ix->n_entries,
			    n_total);
	if (n_total > n_known && !allow_unused)
		return fail(err, errlen, "checkpoint has %d tensors this config.json does not use (first: '%s'): "
			    "the config does not match the weights (num_hidden_layers %d?); "
			    "--allow-unused-tensors loads it anyway", n_total - n_known,
			    first_unused ? first_unused : "?", c->num_hidden_layers);
	if (n_total > n_known)
		log_warn("checkpoint has %d tensors this config.json does not use (first: '%s'); ignored "
			 "(--allow-unused-tensors)", n_total - n_known, first_unused ? first_unused : "?");
	return 0;
}
