/*
 * cmd_load.h - `gemma-run load` (load the model only, report bytes,
 * seconds and GB/s per stage) and `gemma-run checksum DIR` (write
 * DIR/crc32c.json). argv[0] is the subcommand; each returns the exit status
 * (0 ok, 1 failure, 2 usage error). Only main() calls them.
 */
#ifndef GR_CMD_LOAD_H
#define GR_CMD_LOAD_H

int cmd_load(int argc, char **argv);
int cmd_checksum(int argc, char **argv);

#endif
