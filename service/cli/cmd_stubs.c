/*
 * cmd_stubs.c - subcommands whose work belongs to issues not done yet.
 * Each answers "not built yet" with exit status 2; nothing pretends.
 * Remove a function from here when its real file lands.
 */
#include <stdio.h>

#include "service/cli/cli.h"

int cmd_not_built(const char *name)
{
	fprintf(stderr, "gemma-run %s: not built yet\n", name);
	return 2;
}

