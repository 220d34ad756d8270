/*
 * cmd_inspect.c - `gemma-run inspect --model DIR`: parse and validate a local
 * model directory and print a JSON summary (config, shards, tensor bytes).
 * Not a load: no tensor data is read. Exit status: 0 ok, 1 invalid model,
 * 2 usage error.
 */
#include "service/cli/cmd_inspect.h"

#include <stdio.h>

#include "common/log.h"
#include "common/util.h"
#include "loader/model_desc.h"
#include "loader/quant_format.h"
#include "service/cli/cli_flags.h"

int cmd_inspect(int argc, char **argv)
{
	const char *model = NULL;
	struct ld_desc d;
	char err[1024];
	const struct cli_flag flags[] = {
		CLI_F_STR("model", &model, "DIR", "a local model directory"),
	};
	const struct cli_cmd cmd = { "inspect", "inspect --model DIR", flags, ARRAY_SIZE(flags), NULL };
	int rc;

	if ((rc = cli_flags_parse(&cmd, argc, argv)) != CLI_GO_ON)
		return rc;
	if (!model) {
		fprintf(stderr, "gemma-run inspect: --model DIR is required\n");
		return 2;
	}
	if (ld_desc_local(model, &d, err, sizeof(err)) < 0) {
		fprintf(stderr, "gemma-run inspect: %s: %s\n", model, err);
		return 1;
	}
	const struct g2_config *c = &d.cfg;
	printf("{\"hidden_size\":%d,\"intermediate_size\":%d,\"num_hidden_layers\":%d,"
	       "\"num_attention_heads\":%d,\"num_key_value_heads\":%d,\"head_dim\":%d,"
	       "\"vocab_size\":%d,\"quantization\":\"%s\",\"params\":%llu,\"tensor_bytes\":%llu,"
	       "\"shards\":[",
	       c->hidden_size, c->intermediate_size, c->num_hidden_layers, c->num_attention_heads,
	       c->num_key_value_heads, c->head_dim, c->vocab_size, ld_quant_scheme_name(&c->quant),
	       (unsigned long long)g2_n_params(c), (unsigned long long)d.total_tensor_bytes);
	for (int s = 0; s < d.n_shards; s++)
		printf("%s{\"file\":\"%s\",\"bytes\":%llu,\"tensors\":%d}", s ? "," : "",
		       d.shard_names[s], (unsigned long long)d.shard_sizes[s], d.shards[s].n_tensors);
	printf("]}\n");
	ld_desc_release(&d);
	return 0;
}
