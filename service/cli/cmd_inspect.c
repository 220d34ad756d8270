/*
 * cmd_inspect.c - `gemma-run inspect --model DIR`: parse and validate a local
 * model directory and print a JSON summary (config, shards, tensor bytes).
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "loader/model_desc.h"
#include "service/cli/cli.h"

int cmd_inspect(int argc, char **argv)
{
	const char *model = NULL;
	struct ld_desc d;
	char err[1024];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
			model = argv[++i];
		else if (strcmp(argv[i], "--help") == 0) {
			printf("usage: gemma-run inspect --model DIR\n");
			return 0;
		} else {
			fprintf(stderr, "gemma-run inspect: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
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
	       "\"vocab_size\":%d,\"params\":%llu,\"tensor_bytes\":%llu,\"shards\":[",
	       c->hidden_size, c->intermediate_size, c->num_hidden_layers, c->num_attention_heads,
	       c->num_key_value_heads, c->head_dim, c->vocab_size,
	       (unsigned long long)g2_n_params(c), (unsigned long long)d.total_tensor_bytes);
	for (int s = 0; s < d.n_shards; s++)
		printf("%s{\"file\":\"%s\",\"bytes\":%llu,\"tensors\":%d}", s ? "," : "",
		       d.shard_names[s], (unsigned long long)d.shard_sizes[s], d.shards[s].n_tensors);
	printf("]}\n");
	ld_desc_release(&d);
	return 0;
}
