/*
 * cli_startup.c - backend -> load -> tokenizer -> engine, once for serve,
 * generate and logits (see cli_startup.h).
 *
 * Not here: the loader thread and the READY state of serve (cmd_serve.c).
 * Invariant: every step's result is kept in the cli_model as soon as it
 * exists, so cli_model_close frees exactly what was built, in reverse.
 */
#include "service/cli/cli_startup.h"

#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"

void cli_model_opts_default(struct cli_model_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->backend = "auto";
	ld_opts_default(&o->lo);
}

int cli_model_open(const struct cli_model_opts *o, struct cli_model *m, char *err, size_t errlen)
{
	struct be_opts bo = { .n_threads = o->threads, .device = 0 };
	int rc;

	m->uri = o->uri;
	if ((rc = be_create(o->backend, &bo, &m->be)) < 0) {
		snprintf(err, errlen, "cannot create backend '%s'", o->backend);
		return rc;
	}
	m->have_be = 1;
	if (o->on_step)
		o->on_step(o->user, CLI_STEP_BACKEND, m);
	struct ld_progress own, *pr = o->progress;
	if (!pr) {
		memset(&own, 0, sizeof(own));
		pr = &own;
	}
	if ((rc = ld_load(o->uri, &o->lo, &m->be, pr, &m->model)) < 0) {
		if (pr->err[0])	/* the loader's one line: object, offset, reason */
			snprintf(err, errlen, "cannot load model '%s': %s", o->uri, pr->err);
		else
			snprintf(err, errlen, "cannot load model '%s' (see the error above)", o->uri);
		return rc;
	}
	if (o->on_step)
		o->on_step(o->user, CLI_STEP_LOAD, m);
	if (!o->tokenizer)
		return 0;
	if (!m->model->tokenizer_json) {
		snprintf(err, errlen, "model '%s' has no tokenizer.json", o->uri);
		return ST_ENOENT;
	}
	if ((rc = tok_create(m->model->tokenizer_json, m->model->tokenizer_len, &m->tok)) < 0) {
		snprintf(err, errlen, "tokenizer.json of '%s' is not usable (see the error above)", o->uri);
		return rc;
	}
	if (o->on_step)
		o->on_step(o->user, CLI_STEP_TOKENIZER, m);
	return 0;
}

int cli_model_engine(struct cli_model *m, const struct eng_opts *eo, eng_output_fn on_output,
		     struct engine **out, char *err, size_t errlen)
{
	struct g2_weights w;
	struct mem_plan plan;
	char perr[512];
	int rc;

	ld_g2_weights(m->model, &w);
	if ((rc = eng_plan(eo, &w, &plan, perr, sizeof(perr))) < 0) {
		snprintf(err, errlen, "memory plan: %s", perr);
		return rc;
	}
	if ((rc = eng_create(eo, &w, m->tok, on_output, out)) < 0) {
		snprintf(err, errlen, "cannot start the engine for '%s' (see the error above)", m->uri);
		return rc;
	}
	return 0;
}

void cli_model_close(struct cli_model *m)
{
	tok_destroy(m->tok);
	m->tok = NULL;
	ld_model_destroy(m->model);
	m->model = NULL;
	if (m->have_be)
		be_destroy(&m->be);
	m->have_be = 0;
}
