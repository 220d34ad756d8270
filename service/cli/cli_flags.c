/*
 * cli_flags.c - the table-driven flag parser of the non-serve subcommands
 * (see cli_flags.h for the accepted forms).
 *
 * Not the `serve` parser (service/config.c): that one also owns defaults
 * and the checks across flags of the service.
 *
 * Invariants: argv is read left to right and each flag's value is checked
 * when read, so the first problem is the one reported; an environment twin
 * is read only when its flag is not on the command line (flags win, and an
 * overridden bad value is never looked at); nothing is allocated.
 */
#include "service/cli/cli_flags.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

#define CLI_MAX_FLAGS 64	/* the "seen on argv" bit set is one uint64_t */

static int parse_bool(const char *v, int *out)
{
	if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "on"))
		*out = 1;
	else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
		 !strcasecmp(v, "off"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* Stores v into f's variable; on a bad value writes why into err (may be ""). */
static int set_value(const struct cli_flag *f, const char *v, char *err, size_t errlen)
{
	int64_t i;
	double d;

	err[0] = '\0';
	switch (f->type) {
	case CLI_STR:
		*(const char **)f->ptr = v;
		return 0;
	case CLI_INT:
		if (parse_i64(v, &i) < 0 || (double)i < f->lo || (double)i > f->hi) {
			snprintf(err, errlen, "an integer in [%.0f, %.0f]", f->lo, f->hi);
			return -1;
		}
		*(int *)f->ptr = (int)i;
		return 0;
	case CLI_DBL:
		if (parse_f64(v, &d) < 0 || (f->lo < f->hi && (d < f->lo || d > f->hi))) {
			if (f->lo < f->hi)
				snprintf(err, errlen, "a number in [%g, %g]", f->lo, f->hi);
			else
				snprintf(err, errlen, "a number");
			return -1;
		}
		*(double *)f->ptr = d;
		return 0;
	case CLI_BOOL:
		if (parse_bool(v, (int *)f->ptr) < 0) {
			snprintf(err, errlen, "1, 0, true, false, yes or no");
			return -1;
		}
		return 0;
	case CLI_FN:
		return f->fn(f->ptr, v, err, errlen) < 0 ? -1 : 0;
	}
	return -1;
}

static int bad_value(const struct cli_cmd *c, const char *v, const char *what, const char *why)
{
	fprintf(stderr, "gemma-run %s: bad value '%s' for %s%s%s%s\n", c->name, v, what,
		why[0] ? " (" : "", why, why[0] ? ")" : "");
	return 2;
}

void cli_flags_help(const struct cli_cmd *c, FILE *f)
{
	fprintf(f, "usage: gemma-run %s\n", c->usage);
	for (size_t k = 0; k < c->n_flags; k++) {
		const struct cli_flag *fl = &c->flags[k];
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", fl->name, fl->type == CLI_BOOL ? "" : " ",
			 fl->type == CLI_BOOL ? "" : fl->arg ? fl->arg : "V");
		fprintf(f, "  %-24s %s%s%s%s\n", left, fl->help, fl->env ? " (env " : "",
			fl->env ? fl->env : "", fl->env ? ")" : "");
	}
}

static const struct cli_flag *find(const struct cli_cmd *c, const char *name, size_t n)
{
	for (size_t k = 0; k < c->n_flags; k++)
		if (strlen(c->flags[k].name) == n && strncmp(c->flags[k].name, name, n) == 0)
			return &c->flags[k];
	return NULL;
}

int cli_flags_parse(const struct cli_cmd *c, int argc, char **argv)
{
	uint64_t seen = 0;
	char why[128];

	if (c->n_flags > CLI_MAX_FLAGS) {
		fprintf(stderr, "gemma-run %s: more than %d flags in its table\n", c->name, CLI_MAX_FLAGS);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			cli_flags_help(c, stdout);
			return 0;
		}
		if (a[0] != '-') {
			if (c->positional && !*c->positional) {
				*c->positional = a;
				continue;
			}
			fprintf(stderr, "gemma-run %s: unexpected argument '%s' (see --help)\n", c->name, a);
			return 2;
		}
		const char *name = a + (a[1] == '-' ? 2 : 1);
		const char *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : strlen(name);
		const struct cli_flag *f = a[1] == '-' ? find(c, name, n) : NULL;
		if (!f) {
			fprintf(stderr, "gemma-run %s: unknown flag '%.*s' (see --help)\n", c->name,
				(int)(name - a + (ptrdiff_t)n), a);
			return 2;
		}
		const char *v;
		if (eq)
			v = eq + 1;
		else if (f->type == CLI_BOOL)
			v = "1";
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			fprintf(stderr, "gemma-run %s: --%s needs a value\n", c->name, f->name);
			return 2;
		}
		if (set_value(f, v, why, sizeof(why)) < 0) {
			char what[80];
			snprintf(what, sizeof(what), "--%s", f->name);
			return bad_value(c, v, what, why);
		}
		seen |= 1ull << (f - c->flags);
	}
	for (size_t k = 0; k < c->n_flags; k++) {
		const struct cli_flag *f = &c->flags[k];
		const char *v = f->env ? getenv(f->env) : NULL;
		if (!v || (seen & (1ull << k)))
			continue;
		if (f->type == CLI_BOOL) {	/* set: anything but "" and "0" */
			if (v[0] && strcmp(v, "0") != 0)
				*(int *)f->ptr = 1;
			continue;
		}
		if (set_value(f, v, why, sizeof(why)) < 0) {
			char what[80];
			snprintf(what, sizeof(what), "%s (the env twin of --%s)", f->env, f->name);
			return bad_value(c, v, what, why);
		}
	}
	return CLI_GO_ON;
}
