/*
 * cmd_generate.c - `gemma-run generate --model URI --prompt TEXT [flags]`:
 * loads the model, builds the tokenizer and an engine with one sequence
 * slot, submits one request (BOS + the encoded prompt, or the Gemma chat
 * template with --chat) and prints the generated text to stdout as it
 * streams, then a newline. A summary (tokens, seconds, finish reason) goes
 * to stderr. Exit status: 0 ok, 1 failure, 2 usage error.
 *
 * Not here: batching or more than one request (that is serve).
 * Threads: main submits and waits on gen_state.cv; the engine thread calls
 * gen_on_output with the request's user pointer = the gen_state, which
 * lives on main's stack until the final event has been seen.
 */
#include "service/cli/cmd_generate.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "engine/engine.h"
#include "service/cli/cli_flags.h"
#include "service/cli/cli_startup.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#define GEN_DEFAULT_MAX_TOKENS 64
#define GEN_STR_(x) #x
#define GEN_STR(x) GEN_STR_(x)

struct gen_args {
	const char *model, *prompt, *backend, *sampler;
	int threads, chat, max_model_len;
	struct eng_sampling sp;
};

/* What the engine thread hands to main: the final event's numbers. */
struct gen_state {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	enum eng_finish finish;
	const char *error;
	int n_prompt, n_gen;
	double t_queued, t_first, t_done;
	int write_failed;
};

static void gen_on_output(const struct eng_output *o)
{
	struct gen_state *gs = o->user;

	if (o->text_len > 0) {
		if (fwrite(o->text, 1, o->text_len, stdout) != o->text_len)
			gs->write_failed = 1;
		fflush(stdout);
	}
	if (o->final) {
		pthread_mutex_lock(&gs->mu);
		gs->done = 1;
		gs->finish = o->finish;
		gs->error = o->error;
		gs->n_prompt = o->n_prompt_tokens;
		gs->n_gen = o->n_generated;
		gs->t_queued = o->t_queued;
		gs->t_first = o->t_first_token;
		gs->t_done = o->t_done;
		pthread_cond_signal(&gs->cv);
		pthread_mutex_unlock(&gs->mu);
	}
}

static int set_seed(void *ptr, const char *v, char *err, size_t errlen)
{
	struct eng_sampling *sp = ptr;
	int64_t s;

	(void)err;
	(void)errlen;
	if (parse_i64(v, &s) < 0)
		return ST_EINVAL;
	sp->has_seed = 1;
	sp->seed = (uint64_t)s;
	return 0;
}

static int add_stop(void *ptr, const char *v, char *err, size_t errlen)
{
	struct eng_sampling *sp = ptr;

	if (sp->n_stop >= ENG_MAX_STOP) {
		snprintf(err, errlen, "at most %d --stop", ENG_MAX_STOP);
		return ST_EINVAL;
	}
	sp->stop[sp->n_stop++] = (char *)v;
	return 0;
}

/* Step 1: flags -> a (CLI_GO_ON, or the exit status). */
static int gen_parse(int argc, char **argv, struct gen_args *a)
{
	struct eng_sampling *sp = &a->sp;
	const struct cli_flag flags[] = {
		CLI_F_STR("model", &a->model, "URI", "directory, gs://bucket/prefix or http(s)://host/prefix"),
		CLI_F_STR("prompt", &a->prompt, "TEXT", "the prompt"),
		CLI_F_INT("max-tokens", &sp->max_tokens, "N", "tokens to generate (default " GEN_STR(GEN_DEFAULT_MAX_TOKENS) ")", 1, 1 << 24),
		CLI_F_INT("min-tokens", &sp->min_tokens, "N", "no stop condition before N tokens (default 0)",
			  0, 1 << 24),
		CLI_F_DBL("temperature", &sp->temperature, "T", "0 = greedy (default 1.0)"),
		CLI_F_INT("top-k", &sp->top_k, "K", "(default off)", -1, 1 << 30),
		CLI_F_DBL("top-p", &sp->top_p, "P", "(default 1.0)"),
		CLI_F_DBL("min-p", &sp->min_p, "P", "(default 0)"),
		CLI_F_DBL("repetition-penalty", &sp->repetition_penalty, "R", "(default 1.0: off)"),
		CLI_F_DBL("presence-penalty", &sp->presence_penalty, "P", "(default 0)"),
		CLI_F_DBL("frequency-penalty", &sp->frequency_penalty, "F", "(default 0)"),
		CLI_F_FN("seed", set_seed, sp, "S", "seed of this request's sampler"),
		CLI_F_FN("stop", add_stop, sp, "STR", "stop string (repeatable, at most " GEN_STR(ENG_MAX_STOP) ")"),
		CLI_F_BOOL("ignore-eos", &sp->ignore_eos, "do not stop at EOS / <end_of_turn>"),
		CLI_F_BOOL("chat", &a->chat, "wrap the prompt in the Gemma chat template"),
		CLI_F_INT("max-model-len", &a->max_model_len, "N",
			  "context length (default: prompt + max tokens)", 2, 1 << 24),
		CLI_F_STR("backend", &a->backend, "B", "cpu | cuda | auto (default auto)"),
		CLI_F_INT("threads", &a->threads, "N", "CPU backend threads (0: all cores)", 0, 1024),
		CLI_F_STR("sampler", &a->sampler, "S", "auto | device (default auto; both: the backend's sample op)"),
	};
	const struct cli_cmd cmd = { "generate", "generate --model URI --prompt TEXT [flags]", flags,
				     ARRAY_SIZE(flags), NULL };
	const char *param = NULL;
	char err[256];
	int rc;

	memset(a, 0, sizeof(*a));
	a->backend = "auto";
	a->sampler = "auto";
	eng_sampling_default(sp);
	sp->max_tokens = GEN_DEFAULT_MAX_TOKENS;
	if ((rc = cli_flags_parse(&cmd, argc, argv)) != CLI_GO_ON)
		return rc;
	if (!a->model || !a->prompt) {
		fprintf(stderr, "gemma-run generate: --model and --prompt are required\n");
		cli_flags_help(&cmd, stderr);
		return 2;
	}
	if (eng_sampling_check(sp, 1 << 30, &param, err, sizeof(err)) < 0) {
		fprintf(stderr, "gemma-run generate: %s\n", err);
		return 2;
	}
	return CLI_GO_ON;
}

/* Step 2: encodes the prompt (BOS + text, or the chat template) into *ids. */
static int build_prompt(struct tokenizer *tok, const char *prompt, int chat, int **ids, int *n)
{
	int *enc = NULL, n_enc = 0, rc;

	if (chat) {
		struct chat_msg msg = { .role = "user", .content = prompt };
		char *text = NULL, err[200];
		size_t len = 0;
		if ((rc = chat_render(&msg, 1, 1, &text, &len, err, sizeof(err))) < 0)
			return log_err(rc, "generate: chat template: %s", err);
		rc = tok_encode(tok, text, len, ids, n);
		free(text);
		return rc;
	}
	if ((rc = tok_encode(tok, prompt, strlen(prompt), &enc, &n_enc)) < 0)
		return log_err(rc, "generate: cannot encode the prompt (not valid UTF-8?)");
	*ids = malloc(((size_t)n_enc + 1) * sizeof(int));
	if (!*ids) {
		free(enc);
		return ST_ENOMEM;
	}
	(*ids)[0] = tok_bos_id(tok) >= 0 ? tok_bos_id(tok) : 2;
	memcpy(*ids + 1, enc, (size_t)n_enc * sizeof(int));
	*n = n_enc + 1;
	free(enc);
	return 0;
}

/* Step 3: one slot; the context is the prompt + max tokens unless --max-model-len. */
static int gen_engine_opts(const struct gen_args *a, const struct g2_config *cfg, int n_ids,
			   struct eng_opts *eo)
{
	int max_model_len = a->max_model_len;

	eng_opts_default(eo);
	if (eng_sampler_parse(a->sampler, &eo->sampler) < 0) {
		fprintf(stderr, "gemma-run generate: --sampler must be " ENG_SAMPLER_NAMES ", not '%s'\n",
			a->sampler);
		return ST_EINVAL;
	}
	eo->max_num_seqs = 1;
	eo->max_num_batched_tokens = 512;
	eo->max_queue = 1;
	if (max_model_len == 0) {
		int64_t want = (int64_t)n_ids + a->sp.max_tokens;
		if (want > cfg->max_position_embeddings)
			want = cfg->max_position_embeddings;
		max_model_len = (int)MAX(want, (int64_t)n_ids + 1);
	}
	eo->max_model_len = max_model_len;
	return 0;
}

/* Step 4: the summary line on stderr; the exit status of a finished request. */
static int gen_report(const struct gen_state *gs)
{
	double gen_s = gs->t_done - gs->t_first;
	const char *fin = eng_finish_name(gs->finish);

	fputc('\n', stdout);
	fflush(stdout);
	fprintf(stderr,
		"generate: %d prompt tokens, %d generated, finish %s; first token %.3f s, "
		"%.1f tokens/s after it\n",
		gs->n_prompt, gs->n_gen, fin ? fin : "none", gs->t_first - gs->t_queued,
		gs->n_gen > 1 && gen_s > 0 ? (gs->n_gen - 1) / gen_s : 0.0);
	if (gs->finish == ENG_FINISH_ERROR)
		log_err(ST_EIO, "generate: %s", gs->error ? gs->error : "engine error");
	return (gs->finish == ENG_FINISH_STOP || gs->finish == ENG_FINISH_LENGTH) && !gs->write_failed
		       ? 0 : 1;
}

int cmd_generate(int argc, char **argv)
{
	struct gen_args a;
	struct cli_model_opts mo;
	struct cli_model cm = { 0 };
	struct eng_opts eo;
	struct engine *eng = NULL;
	struct gen_state gs = { .done = 0 };
	int *ids = NULL, n_ids = 0, ret, rc;
	char err[256];
	uint64_t id;

	if ((ret = gen_parse(argc, argv, &a)) != CLI_GO_ON)
		return ret;
	pthread_mutex_init(&gs.mu, NULL);
	pthread_cond_init(&gs.cv, NULL);
	ret = 1;
	cli_model_opts_default(&mo);
	mo.backend = a.backend;
	mo.threads = a.threads;
	mo.uri = a.model;
	mo.tokenizer = 1;
	if (cli_model_open(&mo, &cm, err, sizeof(err)) < 0) {
		fprintf(stderr, "gemma-run generate: %s\n", err);
		goto out;
	}
	if (build_prompt(cm.tok, a.prompt, a.chat, &ids, &n_ids) < 0 ||
	    gen_engine_opts(&a, &cm.model->cfg, n_ids, &eo) < 0)
		goto out;
	if (cli_model_engine(&cm, &eo, gen_on_output, &eng, err, sizeof(err)) < 0) {
		fprintf(stderr, "gemma-run generate: %s\n", err);
		goto out;
	}
	if ((rc = eng_submit(eng, ids, n_ids, &a.sp, &gs, &id, err, sizeof(err))) < 0) {
		fprintf(stderr, "gemma-run generate: %s\n", err);
		ret = rc == ST_EINVAL ? 2 : 1;
		goto out;
	}
	pthread_mutex_lock(&gs.mu);
	while (!gs.done)
		pthread_cond_wait(&gs.cv, &gs.mu);
	pthread_mutex_unlock(&gs.mu);
	ret = gen_report(&gs);
out:
	eng_destroy(eng);
	free(ids);
	cli_model_close(&cm);
	pthread_cond_destroy(&gs.cv);
	pthread_mutex_destroy(&gs.mu);
	return ret;
}
