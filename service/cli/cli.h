/*
 * cli.h - the subcommands of the gemma-run binary (DESIGN.md §2).
 *
 * Each takes the arguments after its name (argv[0] is the subcommand) and
 * returns the process exit status: 0 ok, 1 failure, 2 usage error or not
 * built. Only main() calls these; they may print to stdout.
 */
#ifndef GR_CLI_H
#define GR_CLI_H

int cmd_serve(int argc, char **argv);		/* service/cli/cmd_serve.c */
int cmd_generate(int argc, char **argv);	/* service/cli/cmd_generate.c */
int cmd_logits(int argc, char **argv);		/* service/cli/cmd_logits.c */
int cmd_tokenize(int argc, char **argv);	/* service/cli/cmd_tokenize.c */
int cmd_detokenize(int argc, char **argv);	/* service/cli/cmd_tokenize.c */
int cmd_load(int argc, char **argv);		/* service/cli/cmd_load.c */
int cmd_checksum(int argc, char **argv);	/* service/cli/cmd_load.c */
int cmd_inspect(int argc, char **argv);		/* service/cli/cmd_inspect.c */

/* Prints "gemma-run SUBCOMMAND: not built yet" and returns 2. */
int cmd_not_built(const char *name);

#endif
