/*
 * cmd_schema_check.h - `gemma-run schema-check --schema S.json [FILE]`:
 * whether a JSON document is accepted by the grammar structured outputs
 * compile from the schema (for tests). Exit status: 0 accepted, 1 not,
 * 2 the schema is not supported (the message names the keyword) or usage.
 * Only main() calls it.
 */
#ifndef GR_CMD_SCHEMA_CHECK_H
#define GR_CMD_SCHEMA_CHECK_H

int cmd_schema_check(int argc, char **argv);

#endif
