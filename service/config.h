/*
 * config.h - the flags of `gemma-run serve`, each with an env twin.
 *
 * Names follow vLLM where one exists (--max-model-len <-> MAX_MODEL_LEN).
 * Precedence: built-in default < environment < command line. Strings are
 * borrowed from argv/environ (they live as long as the process); nothing
 * in struct srv_config is owned, so there is nothing to release.
 * The struct is the service's configuration: service/http and service/auth
 * read it, service/cli/cmd_serve.c fills it.
 * `serve --help` prints every flag with its env name and default from the
 * same table the parser uses, so the help text cannot drift.
 */
#ifndef GR_SERVICE_CONFIG_H
#define GR_SERVICE_CONFIG_H

#include <stddef.h>

#include "common/log.h"

enum cfg_auth_mode {
	CFG_AUTH_API_KEY = 1u << 0,
	CFG_AUTH_CLOUD_RUN_IAM = 1u << 1,
	CFG_AUTH_GOOGLE_ID_TOKEN = 1u << 2,
};

struct srv_config {
	const char *model;		/* --model / MODEL (URI) */
	int port;			/* --port / PORT (8080) */
	const char *host;		/* --host / HOST (0.0.0.0) */
	const char *served_model_name;	/* --served-model-name (default: last path part) */
	int max_model_len;
	int max_num_seqs;
	int max_num_batched_tokens;
	int max_queue;
	int enable_prefix_caching;	/* --enable-prefix-caching (1) / --no-enable-prefix-caching */
	double gpu_memory_utilization;
	const char *backend;		/* auto | cpu | cuda */
	int threads;			/* CPU backend threads (0: all) */
	const char *sampler;		/* auto | device */
	const char *api_key;		/* comma separated */
	const char *api_key_file;
	unsigned auth;			/* enum cfg_auth_mode bits; 0 = open */
	const char *allowed_invokers;	/* comma separated emails */
	const char *audience;		/* comma separated */
	const char *jwks_url;
	const char *jwks_file;
	double jwt_skew_s;		/* allowed clock skew for exp/iat/nbf */
	int metrics_auth;		/* /metrics needs auth too */
	size_t max_body_bytes;
	double shutdown_timeout;	/* seconds */
	double header_timeout;		/* seconds from accept (or first byte) to the end of headers */
	double body_timeout;		/* seconds from the end of headers to the whole body */
	double idle_timeout;		/* seconds a keep-alive connection may sit idle */
	int max_connections;		/* 0: from RLIMIT_NOFILE */
	int loader_workers;
	int loader_chunk_mb;
	int loader_pinned_mb;
	double loader_retry_deadline_s;
	const char *ca_bundle;
	int gcs_anonymous;
	int allow_unused_tensors;	/* --allow-unused-tensors */
	int log_json;
	enum log_level log_level;
};

/*
 * Fills cfg from defaults, the environment and argv (argv[0] is skipped).
 * Returns 0, 1 when --help was asked (help printed to stdout), or
 * ST_EINVAL with a message in err naming the flag.
 */
int cfg_parse(int argc, char **argv, struct srv_config *cfg, char *err, size_t errlen);

/* Prints the flag table (flag, env, default, help). */
void cfg_print_help(FILE *f);

/* Parses "api-key,cloud-run-iam" into CFG_AUTH_* bits; ST_EINVAL if unknown. */
int cfg_parse_auth(const char *s, unsigned *out);

#endif
