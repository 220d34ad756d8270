/* quant_format.c - compressed-tensors FP8 quantization_config; see quant_format.h. */
#include "loader/quant_format.h"

#include <cjson/cJSON.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/status.h"
#include "kernels/backend.h"

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ST_EINVAL;
}

static const char *str_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The common checks of a weights / input_activations args object: 8-bit symmetric float. */
static int check_fp8_args(const cJSON *a, const char *what, char *err, size_t errlen)
{
	const cJSON *nb = cJSON_GetObjectItemCaseSensitive(a, "num_bits");
	const cJSON *sym = cJSON_GetObjectItemCaseSensitive(a, "symmetric");
	const char *type = str_of(a, "type");
	const cJSON *gs = cJSON_GetObjectItemCaseSensitive(a, "group_size");
	const cJSON *bs = cJSON_GetObjectItemCaseSensitive(a, "block_structure");

	if (!cJSON_IsNumber(nb) || nb->valuedouble != 8)
		return fail(err, errlen, "quantization_config: %s.num_bits must be 8 (FP8)", what);
	if (!type || strcmp(type, "float") != 0)
		return fail(err, errlen, "quantization_config: %s.type is '%s'; only 'float' (FP8 e4m3) "
			    "is supported", what, type ? type : "(missing)");
	if (sym && !cJSON_IsTrue(sym))
		return fail(err, errlen, "quantization_config: %s.symmetric must be true", what);
	if ((gs && !cJSON_IsNull(gs)) || (bs && !cJSON_IsNull(bs)))
		return fail(err, errlen, "quantization_config: %s: group and block scales are not "
			    "supported", what);
	return 0;
}

int ld_quant_parse(const cJSON *qc, struct g2_quant_cfg *q, char *err, size_t errlen)
{
	const cJSON *groups, *g, *w, *ia, *ign, *e, *kv, *v;
	const char *method, *fmt, *strat;
	int n_groups;

	memset(q, 0, sizeof(*q));
	if (!qc || cJSON_IsNull(qc))
		return 0;
	if (!cJSON_IsObject(qc))
		return fail(err, errlen, "config.json: quantization_config must be an object");
	method = str_of(qc, "quant_method");
	if (!method || strcmp(method, "compressed-tensors") != 0)
		return fail(err, errlen, "config.json: quantization_config.quant_method '%s' is not "
			    "supported (only 'compressed-tensors' FP8 checkpoints load)",
			    method ? method : "(missing)");
	kv = cJSON_GetObjectItemCaseSensitive(qc, "kv_cache_scheme");
	if (kv && !cJSON_IsNull(kv))
		return fail(err, errlen, "quantization_config.kv_cache_scheme is set: FP8 KV caches "
			    "are not supported");
	groups = cJSON_GetObjectItemCaseSensitive(qc, "config_groups");
	n_groups = cJSON_IsObject(groups) ? cJSON_GetArraySize(groups) : 0;
	if (n_groups != 1)
		return fail(err, errlen, "quantization_config.config_groups must hold exactly one group "
			    "(has %d)", n_groups);
	g = groups->child;
	fmt = str_of(g, "format") ? str_of(g, "format") : str_of(qc, "format");
	if (!fmt || strcmp(fmt, "float-quantized") != 0)
		return fail(err, errlen, "quantization_config: format '%s' is not supported (only "
			    "'float-quantized')", fmt ? fmt : "(missing)");
	v = cJSON_GetObjectItemCaseSensitive(g, "targets");
	if (v) {
		int linear = 0;
		cJSON_ArrayForEach(e, v)
			if (cJSON_IsString(e) && strcmp(e->valuestring, "Linear") == 0)
				linear = 1;
		if (!linear)
			return fail(err, errlen, "quantization_config: config group '%s' must target "
				    "\"Linear\"", g->string);
	}
	w = cJSON_GetObjectItemCaseSensitive(g, "weights");
	if (!cJSON_IsObject(w))
		return fail(err, errlen, "quantization_config: config group '%s' has no weights", g->string);
	if (check_fp8_args(w, "weights", err, errlen) < 0)
		return ST_EINVAL;
	v = cJSON_GetObjectItemCaseSensitive(w, "dynamic");
	if (v && !cJSON_IsFalse(v))
		return fail(err, errlen, "quantization_config: weights.dynamic must be false");
	strat = str_of(w, "strategy");
	if (!strat || (strcmp(strat, "channel") != 0 && strcmp(strat, "tensor") != 0))
		return fail(err, errlen, "quantization_config: weights.strategy '%s' is not supported "
			    "('channel' or 'tensor')", strat ? strat : "(missing)");
	q->per_channel = strcmp(strat, "channel") == 0;

	ia = cJSON_GetObjectItemCaseSensitive(g, "input_activations");
	if (!ia || cJSON_IsNull(ia)) {
		q->act = BE_FP8_ACT_NONE;
	} else {
		if (!cJSON_IsObject(ia))
			return fail(err, errlen, "quantization_config: input_activations must be an object");
		if (check_fp8_args(ia, "input_activations", err, errlen) < 0)
			return ST_EINVAL;
		v = cJSON_GetObjectItemCaseSensitive(ia, "dynamic");
		strat = str_of(ia, "strategy");
		if (cJSON_IsTrue(v) && strat && strcmp(strat, "token") == 0)
			q->act = BE_FP8_ACT_TOKEN;
		else if ((!v || cJSON_IsFalse(v)) && strat && strcmp(strat, "tensor") == 0)
			q->act = BE_FP8_ACT_STATIC;
		else
			return fail(err, errlen, "quantization_config: input_activations must be dynamic "
				    "per 'token' or static per 'tensor' (got dynamic %s, strategy '%s')",
				    cJSON_IsTrue(v) ? "true" : "false", strat ? strat : "(missing)");
	}
	v = cJSON_GetObjectItemCaseSensitive(g, "output_activations");
	if (v && !cJSON_IsNull(v))
		return fail(err, errlen, "quantization_config: output_activations are not supported");

	ign = cJSON_GetObjectItemCaseSensitive(qc, "ignore");
	if (ign && !cJSON_IsNull(ign)) {
		if (!cJSON_IsArray(ign))
			return fail(err, errlen, "quantization_config.ignore must be a list of strings");
		cJSON_ArrayForEach(e, ign) {
			if (!cJSON_IsString(e) || strlen(e->valuestring) >= G2_QIGNORE_LEN)
				return fail(err, errlen, "quantization_config.ignore: entries must be strings "
					    "under %d bytes", G2_QIGNORE_LEN);
			if (q->n_ignore == G2_MAX_QIGNORE)
				return fail(err, errlen, "quantization_config.ignore: more than %d entries",
					    G2_MAX_QIGNORE);
			if (strncmp(e->valuestring, "re:", 3) == 0) {
				char pat[G2_QIGNORE_LEN + 8];
				regex_t re;
				snprintf(pat, sizeof(pat), "^(%s)", e->valuestring + 3);
				if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
					return fail(err, errlen, "quantization_config.ignore: bad regex '%s'",
						    e->valuestring);
				regfree(&re);
			}
			strcpy(q->ignore[q->n_ignore++], e->valuestring);
		}
	}
	q->method = G2_QUANT_FP8;
	return 0;
}

int ld_quant_covers(const struct g2_quant_cfg *q, const char *module)
{
	if (q->method != G2_QUANT_FP8)
		return 0;
	for (int i = 0; i < q->n_ignore; i++) {
		const char *e = q->ignore[i];
		if (strncmp(e, "re:", 3) == 0) {
			char pat[G2_QIGNORE_LEN + 8];
			regex_t re;
			int hit;
			snprintf(pat, sizeof(pat), "^(%s)", e + 3);
			if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
				continue;	/* checked at parse time */
			hit = regexec(&re, module, 0, NULL, 0) == 0;
			regfree(&re);
			if (hit)
				return 0;
		} else if (strcmp(e, module) == 0) {
			return 0;
		}
	}
	return 1;
}

const char *ld_quant_scheme_name(const struct g2_quant_cfg *q)
{
	if (q->method != G2_QUANT_FP8)
		return "none";
	return q->act == BE_FP8_ACT_TOKEN ? "fp8-dynamic" :
	       q->act == BE_FP8_ACT_STATIC ? "fp8-static" : "fp8-weight-only";
}

void ld_quant_fp8_dynamic(struct g2_quant_cfg *q)
{
	memset(q, 0, sizeof(*q));
	q->method = G2_QUANT_FP8;
	q->act = BE_FP8_ACT_TOKEN;
	q->per_channel = 1;
	q->n_ignore = 1;
	strcpy(q->ignore[0], "lm_head");
}

static cJSON *fp8_args(const char *strategy, int dynamic)
{
	cJSON *a = cJSON_CreateObject();
	if (!a)
		return NULL;
	cJSON_AddNullToObject(a, "actorder");
	cJSON_AddNullToObject(a, "block_structure");
	cJSON_AddBoolToObject(a, "dynamic", dynamic);
	cJSON_AddNullToObject(a, "group_size");
	cJSON_AddNumberToObject(a, "num_bits", 8);
	cJSON_AddStringToObject(a, "observer", dynamic ? "memoryless" : "minmax");
	cJSON_AddItemToObject(a, "observer_kwargs", cJSON_CreateObject());
	cJSON_AddStringToObject(a, "strategy", strategy);
	cJSON_AddTrueToObject(a, "symmetric");
	cJSON_AddStringToObject(a, "type", "float");
	return a;
}

int ld_quant_to_json(const struct g2_quant_cfg *q, cJSON *root)
{
	cJSON *qc, *groups, *g, *ign, *t;

	if (q->method != G2_QUANT_FP8)
		return 0;
	if (!(qc = cJSON_AddObjectToObject(root, "quantization_config")))
		return ST_ENOMEM;
	groups = cJSON_AddObjectToObject(qc, "config_groups");
	g = groups ? cJSON_AddObjectToObject(groups, "group_0") : NULL;
	if (!g)
		return ST_ENOMEM;
	cJSON_AddStringToObject(g, "format", "float-quantized");
	if (q->act == BE_FP8_ACT_NONE)
		cJSON_AddNullToObject(g, "input_activations");
	else
		cJSON_AddItemToObject(g, "input_activations",
				      fp8_args(q->act == BE_FP8_ACT_TOKEN ? "token" : "tensor",
					       q->act == BE_FP8_ACT_TOKEN));
	cJSON_AddNullToObject(g, "output_activations");
	t = cJSON_AddArrayToObject(g, "targets");
	cJSON_AddItemToArray(t, cJSON_CreateString("Linear"));
	cJSON_AddItemToObject(g, "weights", fp8_args(q->per_channel ? "channel" : "tensor", 0));
	cJSON_AddStringToObject(qc, "format", "float-quantized");
	cJSON_AddNullToObject(qc, "global_compression_ratio");
	ign = cJSON_AddArrayToObject(qc, "ignore");
	for (int i = 0; i < q->n_ignore; i++)
		cJSON_AddItemToArray(ign, cJSON_CreateString(q->ignore[i]));
	cJSON_AddNullToObject(qc, "kv_cache_scheme");
	cJSON_AddStringToObject(qc, "quant_method", "compressed-tensors");
	cJSON_AddStringToObject(qc, "quantization_status", "compressed");
	return 0;
}
