/*
 * cli_startup.h - the start-up sequence every model-running subcommand
 * shares: backend -> load -> tokenizer (cli_model_open), then the engine
 * (cli_model_engine), and the teardown in reverse (cli_model_close).
 * Used by serve (its loader thread), generate and logits.
 *
 * Not here: flags (each subcommand maps its own onto cli_model_opts),
 * publishing to the HTTP service, the warm-up step.
 *
 * Errors: a failed step returns < 0 with one line in err that names the
 * step and the model; for the load it carries the loader's reason ("cannot
 * load model 'URI': OBJECT at offset N: REASON"), which the layer below
 * has also logged. What was built stays in the
 * cli_model, so cli_model_close is the one cleanup on every path.
 */
#ifndef GR_CLI_STARTUP_H
#define GR_CLI_STARTUP_H

#include <stddef.h>

#include "engine/engine.h"
#include "kernels/backend.h"
#include "loader/loader.h"
#include "tokenizer/tokenizer.h"

enum cli_step { CLI_STEP_BACKEND, CLI_STEP_LOAD, CLI_STEP_TOKENIZER };

struct cli_model;

struct cli_model_opts {
	const char *backend;		/* auto | cpu | cuda */
	int threads;			/* CPU backend threads (0: all cores) */
	const char *uri;		/* directory, gs://, http(s):// */
	struct ld_opts lo;		/* start from ld_opts_default */
	struct ld_progress *progress;	/* NULL: none */
	int tokenizer;			/* also build the tokenizer (the model must have one) */
	/* called after each step succeeded (NULL: none); serve logs and times them */
	void (*on_step)(void *user, enum cli_step done, const struct cli_model *m);
	void *user;
};

struct cli_model {
	const char *uri;		/* as opened (the caller's string) */
	struct be be;
	int have_be;
	struct ld_model *model;
	struct tokenizer *tok;		/* NULL unless opts.tokenizer */
};

/* Fills o with the defaults: backend auto, all cores, default loader options. */
void cli_model_opts_default(struct cli_model_opts *o);

/* *m must be zeroed. */
int cli_model_open(const struct cli_model_opts *o, struct cli_model *m, char *err, size_t errlen);

/*
 * Plans the memory (eng_plan: its message on failure) and creates the
 * engine on the model's weights and tokenizer.
 */
int cli_model_engine(struct cli_model *m, const struct eng_opts *eo, eng_output_fn on_output,
		     struct engine **out, char *err, size_t errlen);

/* Frees what cli_model_open built (not the engine: eng_destroy it first). */
void cli_model_close(struct cli_model *m);

#endif
