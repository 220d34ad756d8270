/*
 * cmd_serve.h - `gemma-run serve`: the HTTP service (flags: service/config.h).
 * argv[0] is "serve" (or the program name when no subcommand was given);
 * returns the exit status (0 drained, 1 failure, 2 usage error). Only
 * main() calls it.
 */
#ifndef GR_CMD_SERVE_H
#define GR_CMD_SERVE_H

int cmd_serve(int argc, char **argv);

#endif
