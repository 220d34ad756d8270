/*
 * cmd_generate.c - `gemma-run generate --model URI --prompt TEXT [flags]`:
 * loads the model, builds the tokenizer and an engine with one sequence
 * slot, submits one request (BOS + the encoded prompt, or the Gemma chat
 * template with --chat) and prints the generated text to stdout as it
 * streams, then a newline. A summary (tokens, seconds, finish reason) goes
 * to stderr. Exit status: 0 ok, 1 failure, 2 usage error.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "loader/loader.h"
#include "tokenizer/chat_template.h"
#include "service/cli/cli.h"
#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

#define GEN_DEFAULT_MAX_TOKENS 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gemma-run generate --model URI --prompt TEXT [flags]\n"
		"  --max-tokens N      tokens to generate (default %d)\n"
		"  --min-tokens N      no stop condition before N tokens (default 0)\n"
		"  --temperature T     0 = greedy (default 1.0)\n"
		"  --top-k K           (default off)\n"
		"  --top-p P           (default 1.0)\n"
		"  --min-p P           (default 0)\n"
		"  --repetition-penalty R, --presence-penalty P, --frequency-penalty F\n"
		"  --seed S            seed of this request's sampler\n"
		"  --stop STR          stop string (repeatable, at most %d)\n"
		"  --ignore-eos        do not stop at EOS / <end_of_turn>\n"
		"  --chat              wrap the prompt in the Gemma chat template\n"
		"  --max-model-len N   context length (default: prompt + max tokens)\n"
		"  --backend B         cpu | cuda | auto (default auto)\n"
		"  --threads N         CPU backend threads (0: all cores)\n"
		"  --sampler S         auto | device (default auto; both: the backend's sample op)\n",
		GEN_DEFAULT_MAX_TOKENS, ENG_MAX_STOP);
}

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

static struct gen_state gs = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
};

static void gen_on_output(const struct eng_output *o)
{
	if (o->text_len > 0) {
		if (fwrite(o->text, 1, o->text_len, stdout) != o->text_len)
			gs.write_failed = 1;
		fflush(stdout);
	}
	if (o->final) {
		pthread_mutex_lock(&gs.mu);
		gs.done = 1;
		gs.finish = o->finish;
		gs.error = o->error;
		gs.n_prompt = o->n_prompt_tokens;
		gs.n_gen = o->n_generated;
		gs.t_queued = o->t_queued;
		gs.t_first = o->t_first_token;
		gs.t_done = o->t_done;
		pthread_cond_signal(&gs.cv);
		pthread_mutex_unlock(&gs.mu);
	}
}

static int arg_int(const char *flag, const char *v, int64_t lo, int64_t hi, int *out)
{
	int64_t x;
	if (parse_i64(v, &x) < 0 || x < lo || x > hi) {
		fprintf(stderr, "gemma-run generate: bad %s '%s'\n", flag, v);
		return -1;
	}
	*out = (int)x;
	return 0;
}

static int arg_dbl(const char *flag, const char *v, double *out)
{
	if (parse_f64(v, out) < 0) {
		fprintf(stderr, "gemma-run generate: bad %s '%s'\n", flag, v);
		return -1;
	}
	return 0;
}

/* Encodes the prompt (BOS + text, or the chat template) into *ids. */
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

int cmd_generate(int argc, char **argv)
{
	const char *model_uri = NULL, *prompt = NULL, *backend = "auto", *sampler = "auto";
	struct be_opts bo = { 0 };
	struct ld_opts lo;
	struct eng_opts eo;
	struct eng_sampling sp;
	struct be be = { 0 };
	struct ld_model *m = NULL;
	struct tokenizer *tok = NULL;
	struct engine *eng = NULL;
	int *ids = NULL, n_ids = 0, chat = 0, max_model_len = 0, ret = 1, rc;
	char err[256];
	uint64_t id;

	eng_sampling_default(&sp);
	sp.max_tokens = GEN_DEFAULT_MAX_TOKENS;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0, takes = 1;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--chat") == 0) {
			chat = 1;
			takes = 0;
		} else if (strcmp(a, "--ignore-eos") == 0) {
			sp.ignore_eos = 1;
			takes = 0;
		} else if (!v) {
			fprintf(stderr, "gemma-run generate: %s needs a value\n", a);
			usage(stderr);
			return 2;
		} else if (strcmp(a, "--model") == 0) {
			model_uri = v;
		} else if (strcmp(a, "--prompt") == 0) {
			prompt = v;
		} else if (strcmp(a, "--backend") == 0) {
			backend = v;
		} else if (strcmp(a, "--sampler") == 0) {
			sampler = v;
		} else if (strcmp(a, "--threads") == 0) {
			bad = arg_int(a, v, 0, 1024, &bo.n_threads);
		} else if (strcmp(a, "--max-tokens") == 0) {
			bad = arg_int(a, v, 1, 1 << 24, &sp.max_tokens);
		} else if (strcmp(a, "--min-tokens") == 0) {
			bad = arg_int(a, v, 0, 1 << 24, &sp.min_tokens);
		} else if (strcmp(a, "--max-model-len") == 0) {
			bad = arg_int(a, v, 2, 1 << 24, &max_model_len);
		} else if (strcmp(a, "--top-k") == 0) {
			bad = arg_int(a, v, -1, 1 << 30, &sp.top_k);
		} else if (strcmp(a, "--temperature") == 0) {
			bad = arg_dbl(a, v, &sp.temperature);
		} else if (strcmp(a, "--top-p") == 0) {
			bad = arg_dbl(a, v, &sp.top_p);
		} else if (strcmp(a, "--min-p") == 0) {
			bad = arg_dbl(a, v, &sp.min_p);
		} else if (strcmp(a, "--repetition-penalty") == 0) {
			bad = arg_dbl(a, v, &sp.repetition_penalty);
		} else if (strcmp(a, "--presence-penalty") == 0) {
			bad = arg_dbl(a, v, &sp.presence_penalty);
		} else if (strcmp(a, "--frequency-penalty") == 0) {
			bad = arg_dbl(a, v, &sp.frequency_penalty);
		} else if (strcmp(a, "--seed") == 0) {
			int64_t s = 0;
			if (parse_i64(v, &s) < 0) {
				fprintf(stderr, "gemma-run generate: bad --seed '%s'\n", v);
				bad = -1;
			}
			sp.has_seed = 1;
			sp.seed = (uint64_t)s;
		} else if (strcmp(a, "--stop") == 0) {
			if (sp.n_stop >= ENG_MAX_STOP) {
				fprintf(stderr, "gemma-run generate: at most %d --stop\n", ENG_MAX_STOP);
				bad = -1;
			} else {
				sp.stop[sp.n_stop++] = (char *)v;
			}
		} else {
			fprintf(stderr, "gemma-run generate: unknown argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
		if (bad)
			return 2;
		i += takes;
	}
	if (!model_uri || !prompt) {
		fprintf(stderr, "gemma-run generate: --model and --prompt are required\n");
		usage(stderr);
		return 2;
	}
	{
		const char *param = NULL;
		if (eng_sampling_check(&sp, 1 << 30, &param, err, sizeof(err)) < 0) {
			fprintf(stderr, "gemma-run generate: %s\n", err);
			return 2;
		}
	}

	if (be_create(backend, &bo, &be) < 0)
		goto out;
	ld_opts_default(&lo);
	if (ld_load(model_uri, &lo, &be, NULL, &m) < 0)
		goto out;
	if (!m->tokenizer_json) {
		log_err(ST_ENOENT, "generate: %s has no tokenizer.json", model_uri);
		goto out;
	}
	if (tok_create(m->tokenizer_json, m->tokenizer_len, &tok) < 0)
		goto out;
	if (build_prompt(tok, prompt, chat, &ids, &n_ids) < 0)
		goto out;

	eng_opts_default(&eo);
	if (eng_sampler_parse(sampler, &eo.sampler) < 0) {
		fprintf(stderr, "gemma-run generate: --sampler must be %s, not '%s'\n",
			ENG_SAMPLER_NAMES, sampler);
		goto out;
	}
	eo.max_num_seqs = 1;
	eo.max_num_batched_tokens = 512;
	eo.max_queue = 1;
	if (max_model_len == 0) {
		int64_t want = (int64_t)n_ids + sp.max_tokens;
		if (want > m->cfg.max_position_embeddings)
			want = m->cfg.max_position_embeddings;
		max_model_len = (int)MAX(want, (int64_t)n_ids + 1);
	}
	eo.max_model_len = max_model_len;
	struct g2_weights w;
	ld_g2_weights(m, &w);
	if (eng_create(&eo, &w, tok, gen_on_output, &eng) < 0)
		goto out;
	if ((rc = eng_submit(eng, ids, n_ids, &sp, NULL, &id, err, sizeof(err))) < 0) {
		fprintf(stderr, "gemma-run generate: %s\n", err);
		ret = rc == ST_EINVAL ? 2 : 1;
		goto out;
	}
	pthread_mutex_lock(&gs.mu);
	while (!gs.done)
		pthread_cond_wait(&gs.cv, &gs.mu);
	pthread_mutex_unlock(&gs.mu);
	fputc('\n', stdout);
	fflush(stdout);
	{
		double gen_s = gs.t_done - gs.t_first;
		const char *fin = eng_finish_name(gs.finish);
		fprintf(stderr,
			"generate: %d prompt tokens, %d generated, finish %s; first token %.3f s, "
			"%.1f tokens/s after it\n",
			gs.n_prompt, gs.n_gen, fin ? fin : "none", gs.t_first - gs.t_queued,
			gs.n_gen > 1 && gen_s > 0 ? (gs.n_gen - 1) / gen_s : 0.0);
	}
	if (gs.finish == ENG_FINISH_ERROR)
		log_err(ST_EIO, "generate: %s", gs.error ? gs.error : "engine error");
	ret = (gs.finish == ENG_FINISH_STOP || gs.finish == ENG_FINISH_LENGTH) &&
	      !gs.write_failed ? 0 : 1;
out:
	eng_destroy(eng);
	free(ids);
	tok_destroy(tok);
	ld_model_destroy(m);
	be_destroy(&be);
	return ret;
}
