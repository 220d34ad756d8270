/*
 * cmd_tokenize.c - `gemma-run tokenize --model DIR --text TEXT` prints
 * {"ids":[...]} (no BOS) and `gemma-run detokenize --model DIR --ids 1,2,3`
 * prints {"text":"..."}.
 *
 * Only DIR/tokenizer.json is read (DIR may also name the file itself);
 * remote URIs (gs://, http(s)://) are refused for now.
 */
#include "service/cli/cmd_tokenize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "common/status.h"
#include "common/util.h"
#include "service/cli/cli_flags.h"
#include "tokenizer/tokenizer.h"

static int load_tok(const char *cmd, const char *model, struct tokenizer **t)
{
	char path[4096];
	struct stat st;
	if (strncmp(model, "gs://", 5) == 0 || strncmp(model, "http://", 7) == 0 ||
	    strncmp(model, "https://", 8) == 0) {
		fprintf(stderr, "gemma-run %s: '%s': not supported for remote models yet "
			"(give a local model directory)\n", cmd, model);
		return 2;
	}
	if (stat(model, &st) == 0 && S_ISREG(st.st_mode))
		snprintf(path, sizeof(path), "%s", model);
	else
		snprintf(path, sizeof(path), "%s/tokenizer.json", model);
	if (tok_create_from_file(path, t) < 0) {
		fprintf(stderr, "gemma-run %s: cannot load tokenizer '%s'\n", cmd, path);
		return 1;
	}
	return 0;
}

/* Writes s[0..n) as a JSON string (common/util.h's escaper, via sbuf). */
static int put_json_str(FILE *f, const char *s, size_t n)
{
	struct sbuf sb;
	int rc = 0;

	sb_init(&sb);
	sb_json_strn(&sb, s, n);
	if (sb.oom || fwrite(sb.buf, 1, sb.len, f) != sb.len)
		rc = ST_ENOMEM;
	sb_release(&sb);
	return rc;
}
/* --model DIR and one more string flag (--text or --ids), both required. */
static int parse_args(const char *cmd, int argc, char **argv, const char *what, const char **model,
		      const char **val, int *skip)
{
	const struct cli_flag flags[] = {
		CLI_F_STR("model", model, "DIR", "model directory, or its tokenizer.json itself"),
		CLI_F_STR(what, val, skip ? "1,2,3" : "TEXT",
			  skip ? "token ids, comma separated (spaces allowed)"
			       : "the text to encode (no BOS is added)"),
		CLI_F_BOOL("skip-special-tokens", skip, "leave special tokens out of the text"),
	};
	char usage[64];
	const struct cli_cmd c = { cmd, usage, flags, skip ? 3 : 2, NULL };
	int rc;

	snprintf(usage, sizeof(usage), "%s --model DIR --%s %s [flags]", cmd, what,
		 skip ? "1,2,3" : "TEXT");
	if ((rc = cli_flags_parse(&c, argc, argv)) != CLI_GO_ON)
		return rc;
	if (!*model || !*val) {
		fprintf(stderr, "gemma-run %s: --model DIR and --%s are required\n", cmd, what);
		return 2;
	}
	return CLI_GO_ON;
}

int cmd_tokenize(int argc, char **argv)
{
	const char *model = NULL, *text = NULL;
	struct tokenizer *t = NULL;
	int *ids = NULL, n = 0, rc;

	if ((rc = parse_args("tokenize", argc, argv, "text", &model, &text, NULL)) != CLI_GO_ON)
		return rc;
	if ((rc = load_tok("tokenize", model, &t)) != 0)
		return rc;
	if (tok_encode(t, text, strlen(text), &ids, &n) < 0) {
		fprintf(stderr, "gemma-run tokenize: --text is not valid UTF-8\n");
		tok_destroy(t);
		return 1;
	}
	printf("{\"ids\":[");
	for (int i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", ids[i]);
	printf("]}\n");
	free(ids);
	tok_destroy(t);
	return 0;
}

int cmd_detokenize(int argc, char **argv)
{
	const char *model = NULL, *list = NULL;
	struct tokenizer *t = NULL;
	int *ids = NULL, n = 0, skip = 0, rc = 1;
	char *text = NULL;
	size_t len;

	if ((rc = parse_args("detokenize", argc, argv, "ids", &model, &list, &skip)) != CLI_GO_ON)
		return rc;
	/* parse "1,2,3" strictly: integers separated by commas (spaces allowed) */
	ids = malloc((strlen(list) / 2 + 1) * sizeof(*ids));
	if (!ids)
		return 1;
	for (const char *p = list; *p;) {
		char *end;
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		long v = strtol(p, &end, 10);
		if (end == p || v < 0 || v > INT32_MAX) {
			fprintf(stderr, "gemma-run detokenize: bad id list '%s'\n", list);
			free(ids);
			return 2;
		}
		ids[n++] = (int)v;
		p = end;
		while (*p == ' ')
			p++;
		if (*p == ',' && p[1] != 0 && p[1] != ',')
			p++;
		else if (*p) {
			fprintf(stderr, "gemma-run detokenize: bad id list '%s'\n", list);
			free(ids);
			return 2;
		}
	}
	if ((rc = load_tok("detokenize", model, &t)) != 0) {
		free(ids);
		return rc;
	}
	if (tok_decode(t, ids, n, skip, &text, &len) < 0) {
		fprintf(stderr, "gemma-run detokenize: an id is outside [0, %d)\n", tok_vocab_size(t));
		rc = 1;
	} else {
		printf("{\"text\":");
		rc = put_json_str(stdout, text, len) < 0 ? 1 : 0;
		printf("}\n");
	}
	free(text);
	free(ids);
	tok_destroy(t);
	return rc;
}
