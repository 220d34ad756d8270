/*
 * cmd_schema_check.c - `gemma-run schema-check --schema S.json [FILE]`
 * (or --regex RE): compiles the schema as a request's response_format
 * would (engine/grammar_schema.c) and runs the document (FILE, or stdin)
 * through the grammar's matcher. Not a JSON Schema validator: it answers
 * what the grammar accepts, which is what generation can produce.
 */
#include "service/cli/cmd_schema_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "engine/grammar.h"
#include "engine/grammar_schema.h"

#define DOC_MAX (64u << 20)

static int usage(void)
{
	fprintf(stderr, "usage: gemma-run schema-check (--schema S.json | --regex RE) [FILE]\n"
		"  exit 0: the grammar accepts the document (FILE, else stdin); 1: it does not;\n"
		"  2: the schema is not supported (the message names the keyword) or bad usage\n");
	return 2;
}

static int read_stdin(char **out, size_t *len)
{
	size_t cap = 1 << 16, n = 0, got;
	char *b = malloc(cap), *q;

	if (!b)
		return -1;
	while ((got = fread(b + n, 1, cap - n, stdin)) > 0) {
		n += got;
		if (n == cap) {
			if (cap >= DOC_MAX || !(q = realloc(b, cap * 2))) {
				free(b);
				return -1;
			}
			b = q;
			cap *= 2;
		}
	}
	*out = b;
	*len = n;
	return 0;
}

int cmd_schema_check(int argc, char **argv)
{
	const char *schema = NULL, *regex = NULL, *file = NULL;
	char *stext = NULL, *doc = NULL, err[256];
	size_t slen = 0, dlen = 0;
	struct gr_grammar *g = NULL;
	int rc = 2, ok;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			{ usage(); return 0; }
		if (!strcmp(argv[i], "--schema") && i + 1 < argc)
			schema = argv[++i];
		else if (!strncmp(argv[i], "--schema=", 9))
			schema = argv[i] + 9;
		else if (!strcmp(argv[i], "--regex") && i + 1 < argc)
			regex = argv[++i];
		else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else
			return usage();
	}
	if (!!schema == !!regex)
		return usage();
	if (schema && read_file(schema, DOC_MAX, &stext, &slen) < 0) {
		fprintf(stderr, "gemma-run schema-check: cannot read '%s'\n", schema);
		goto out;
	}
	if (grs_compile(schema ? GRS_JSON_SCHEMA : GRS_REGEX, schema ? stext : regex,
			schema ? slen : strlen(regex), &g, err, sizeof(err)) < 0) {
		fprintf(stderr, "gemma-run schema-check: not supported: %s\n", err);
		goto out;
	}
	if (file ? read_file(file, DOC_MAX, &doc, &dlen) < 0 : read_stdin(&doc, &dlen) < 0) {
		fprintf(stderr, "gemma-run schema-check: cannot read '%s'\n", file ? file : "stdin");
		goto out;
	}
	while (schema && dlen > 0 && (doc[dlen - 1] == '\n' || doc[dlen - 1] == '\r'))
		dlen--;		/* a file's final newline is not part of the value */
	ok = gr_accepts(g, doc, dlen);
	printf("%s\n", ok == 1 ? "accepted" : "rejected");
	rc = ok == 1 ? 0 : 1;
out:
	gr_grammar_destroy(g);
	free(stext);
	free(doc);
	return rc;
}
