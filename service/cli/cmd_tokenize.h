/*
 * cmd_tokenize.h - `gemma-run tokenize` (text -> {"ids":[...]}) and
 * `gemma-run detokenize` (ids -> {"text":"..."}) over a local
 * tokenizer.json. argv[0] is the subcommand; each returns the exit status
 * (0 ok, 1 failure, 2 usage error). Only main() calls them.
 */
#ifndef GR_CMD_TOKENIZE_H
#define GR_CMD_TOKENIZE_H

int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);

#endif
