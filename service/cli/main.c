/*
 * main.c - the gemma-run binary: picks a subcommand and runs it.
 * `gemma-run` with no subcommand (or with flags first) means `serve`.
 *
 * Each subcommand (cmd_*.h) takes the arguments after its name (argv[0] is
 * the subcommand) and returns the exit status: 0 ok, 1 failure, 2 usage
 * error. Flags: serve's in service/config.c, the others' in their
 * cmd_*.c tables (cli_flags.h). See docs/ARCHITECTURE.md.
 */
#include <stdio.h>
#include <string.h>

#include "common/version.h"
#include "service/cli/cmd_generate.h"
#include "service/cli/cmd_inspect.h"
#include "service/cli/cmd_load.h"
#include "service/cli/cmd_logits.h"
#include "service/cli/cmd_quantize.h"
#include "service/cli/cmd_schema_check.h"
#include "service/cli/cmd_serve.h"
#include "service/cli/cmd_tokenize.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
	{ "serve", cmd_serve, "serve the OpenAI-compatible HTTP API (default)" },
	{ "generate", cmd_generate, "generate text for one prompt" },
	{ "logits", cmd_logits, "print the logits of every position of --ids as JSON" },
	{ "tokenize", cmd_tokenize, "print the token ids of --text as JSON" },
	{ "detokenize", cmd_detokenize, "print the text of --ids as JSON" },
	{ "load", cmd_load, "load the model only and report bytes, seconds and GB/s per stage" },
	{ "checksum", cmd_checksum, "write crc32c.json for a local model directory" },
	{ "quantize", cmd_quantize, "write an FP8 (compressed-tensors) copy of a local model directory" },
	{ "schema-check", cmd_schema_check, "exit 0 when the structured-output grammar of --schema accepts a JSON document" },
	{ "inspect", cmd_inspect, "parse and validate a model directory, print its config and tensors" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: gemma-run [SUBCOMMAND] --model URI [flags]\n\nsubcommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n`gemma-run SUBCOMMAND --help` lists its flags. URI is a directory, gs://bucket/prefix\n"
		   "or http(s)://host/prefix.\n");
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
			  strcmp(argv[1], "help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("gemma-run %s\n", GR_VERSION);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-')
		return cmd_serve(argc, argv);	/* argv[0] stands in for "serve" */
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "gemma-run: unknown subcommand '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
