/*
 * cli_flags.h - the flag parser of the subcommands other than `serve`
 * (generate, logits, tokenize, detokenize, load, checksum, inspect).
 * `serve` has its own table with env twins and defaults (service/config.c).
 *
 * A subcommand describes its flags in a table of struct cli_flag whose
 * pointers name its own variables (so the table is built inside the
 * function), and calls cli_flags_parse once. Accepted:
 *   --flag value     the next argument is the value, even when it starts
 *                    with '-' (`--ids -1` is a bad id list, not a flag)
 *   --flag=value
 *   --bool           CLI_BOOL takes no value; --bool=1|0|true|false|yes|no
 *   --help, -h       prints cli_flags_help to stdout
 *   POSITIONAL       only where cli_cmd.positional is set: stored there
 *                    while it is still NULL (checksum DIR)
 * Environment twins (cli_flag.env) are read first; argv overrides them.
 * A value is checked when it is read; a bad one, an unknown flag, a missing
 * value or a stray argument prints one line naming it on stderr.
 *
 * Not here: required flags and checks across flags (each subcommand does
 * them after parsing), defaults (the variables hold them before the call).
 */
#ifndef GR_CLI_FLAGS_H
#define GR_CLI_FLAGS_H

#include <stddef.h>
#include <stdio.h>

enum cli_type {
	CLI_STR,	/* const char **: the argv (or environ) string itself */
	CLI_INT,	/* int *: an integer within [lo, hi] */
	CLI_DBL,	/* double *: a number, within [lo, hi] when lo < hi */
	CLI_BOOL,	/* int *: set to 1 (0 with --flag=0) */
	CLI_FN,		/* fn(ptr, value, err, errlen) stores it; < 0: bad value */
};

struct cli_flag {
	const char *name;	/* without the leading "--" */
	enum cli_type type;
	void *ptr;
	const char *arg;	/* its value in --help ("N", "URI"); unused for CLI_BOOL */
	const char *help;	/* one line; may say the default */
	double lo, hi;		/* CLI_INT: always checked; CLI_DBL: when lo < hi */
	const char *env;	/* environment twin, or NULL */
	int (*fn)(void *ptr, const char *v, char *err, size_t errlen);
};

/* Table rows (designated, so the fields left out are zero). */
#define CLI_F_STR(n, p, a, h) { .name = (n), .type = CLI_STR, .ptr = (p), .arg = (a), .help = (h) }
#define CLI_F_INT(n, p, a, h, l, u) \
	{ .name = (n), .type = CLI_INT, .ptr = (p), .arg = (a), .help = (h), .lo = (l), .hi = (u) }
#define CLI_F_DBL(n, p, a, h) { .name = (n), .type = CLI_DBL, .ptr = (p), .arg = (a), .help = (h) }
#define CLI_F_BOOL(n, p, h) { .name = (n), .type = CLI_BOOL, .ptr = (p), .help = (h) }
#define CLI_F_FN(n, f, p, a, h) \
	{ .name = (n), .type = CLI_FN, .fn = (f), .ptr = (p), .arg = (a), .help = (h) }

struct cli_cmd {
	const char *name;		/* "generate": the prefix of every message */
	const char *usage;		/* what follows "usage: gemma-run " */
	const struct cli_flag *flags;
	size_t n_flags;
	const char **positional;	/* NULL: positional arguments are refused */
};

/*
 * Parses argv[1..argc) (argv[0] is the subcommand). Returns CLI_GO_ON, or
 * the exit status to return at once: 0 after --help, 2 after a usage
 * error (already printed).
 */
#define CLI_GO_ON (-1)
int cli_flags_parse(const struct cli_cmd *c, int argc, char **argv);

/* "usage: gemma-run USAGE" and one line per flag. */
void cli_flags_help(const struct cli_cmd *c, FILE *f);

#endif
