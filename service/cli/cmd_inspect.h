/*
 * cmd_inspect.h - `gemma-run inspect --model DIR`: validate a local model
 * directory and print its config and shards as JSON. argv[0] is "inspect";
 * returns the exit status (0 ok, 1 failure, 2 usage error). Only main()
 * calls it.
 */
#ifndef GR_CMD_INSPECT_H
#define GR_CMD_INSPECT_H

int cmd_inspect(int argc, char **argv);

#endif
