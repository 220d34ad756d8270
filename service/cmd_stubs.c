/*
 * cmd_stubs.c - subcommands whose work belongs to issues not done yet.
 * Each answers "not built yet" with exit status 2; nothing pretends.
 * Remove a function from here when its real file lands.
 */
#include <stdio.h>

#include "service/cli.h"

int cmd_not_built(const char *name)
{
	fprintf(stderr, "gemma-run %s: not built yet\n", name);
	return 2;
}

int cmd_serve(int argc, char **argv) { (void)argc; (void)argv; return cmd_not_built("serve"); }
int cmd_generate(int argc, char **argv) { (void)argc; (void)argv; return cmd_not_built("generate"); }
int cmd_logits(int argc, char **argv) { (void)argc; (void)argv; return cmd_not_built("logits"); }
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; return cmd_not_built("tokenize"); }
int cmd_detokenize(int argc, char **argv) { (void)argc; (void)argv; return cmd_not_built("detokenize"); }
int cmd_load(int argc, char **argv) { (void)argc; (void)argv; return cmd_not_built("load"); }
int cmd_checksum(int argc, char **argv) { (void)argc; (void)argv; return cmd_not_built("checksum"); }
