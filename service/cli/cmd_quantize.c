/*
 * cmd_quantize.c - `gemma-run quantize --model DIR --out DIR [--scheme
 * fp8-dynamic|fp8-weight-only]`: the CLI of loader/quantize_fp8.c. Input
 * is a local model directory (a gs:// or https:// model is downloaded
 * first, e.g. with gcloud storage cp). Prints one JSON line: the scheme,
 * tensors quantized and copied, tensor bytes in and out.
 */
#include "service/cli/cmd_quantize.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "loader/quant_format.h"
#include "loader/quantize_fp8.h"
#include "service/cli/cli_flags.h"

int cmd_quantize(int argc, char **argv)
{
	const char *model = NULL, *out = NULL, *scheme = "fp8-dynamic";
	struct g2_quant_cfg q;
	struct ld_quant_stats st;
	char err[1024];
	const struct cli_flag flags[] = {
		CLI_F_STR("model", &model, "DIR", "a local bf16/f16/f32 model directory"),
		CLI_F_STR("out", &out, "DIR", "the directory to write (created; must not hold a model)"),
		CLI_F_STR("scheme", &scheme, "S", "fp8-dynamic (W8A8, per-channel weights, per-token "
			  "activations; default) or fp8-weight-only (W8A16)"),
	};
	const struct cli_cmd cmd = { "quantize", "quantize --model DIR --out DIR [--scheme S]", flags,
				     ARRAY_SIZE(flags), NULL };
	int rc;

	if ((rc = cli_flags_parse(&cmd, argc, argv)) != CLI_GO_ON)
		return rc;
	if (!model || !out) {
		fprintf(stderr, "gemma-run quantize: --model DIR and --out DIR are required\n");
		return 2;
	}
	if (strstr(model, "://")) {
		fprintf(stderr, "gemma-run quantize: --model must be a local directory (copy '%s' "
			"first)\n", model);
		return 2;
	}
	ld_quant_fp8_dynamic(&q);
	if (strcmp(scheme, "fp8-weight-only") == 0) {
		q.act = 0;
	} else if (strcmp(scheme, "fp8-dynamic") != 0) {
		fprintf(stderr, "gemma-run quantize: --scheme '%s' is not one of fp8-dynamic, "
			"fp8-weight-only\n", scheme);
		return 2;
	}
	if (ld_quantize_fp8(model, out, &q, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "gemma-run quantize: %s\n", err);
		return 1;
	}
	printf("{\"scheme\":\"%s\",\"quantized\":%d,\"copied\":%d,\"in_bytes\":%llu,"
	       "\"out_bytes\":%llu}\n", ld_quant_scheme_name(&q), st.n_quantized, st.n_copied,
	       (unsigned long long)st.in_bytes, (unsigned long long)st.out_bytes);
	return 0;
}
