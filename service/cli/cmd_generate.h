/*
 * cmd_generate.h - `gemma-run generate`: one prompt, the text streamed to
 * stdout. argv[0] is "generate"; returns the exit status (0 ok, 1 failure,
 * 2 usage error). Only main() calls it.
 */
#ifndef GR_CMD_GENERATE_H
#define GR_CMD_GENERATE_H

int cmd_generate(int argc, char **argv);

#endif
