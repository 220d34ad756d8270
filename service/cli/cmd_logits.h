/*
 * cmd_logits.h - `gemma-run logits`: the logits of every position of
 * --ids as JSON. argv[0] is "logits"; returns the exit status (0 ok,
 * 1 failure, 2 usage error). Only main() calls it.
 */
#ifndef GR_CMD_LOGITS_H
#define GR_CMD_LOGITS_H

int cmd_logits(int argc, char **argv);

#endif
