/*
 * config.c - the flag table of `gemma-run serve` and its parser.
 *
 * One static table drives defaults, env twins, parsing and --help. Values
 * are applied in order default -> env -> argv; a bad value names its flag
 * (or env variable) in the error. Accepts "--flag value" and "--flag=value";
 * booleans take no value on the command line ("--gcs-anonymous") and
 * 1/0/true/false/yes/no in the environment; a T_NBOOL flag is the negation
 * of the boolean at the same offset ("--no-enable-prefix-caching").
 */
#include "service/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/status.h"
#include "common/util.h"
#include "engine/engine.h"

enum opt_type { T_STR, T_INT, T_DBL, T_BOOL, T_NBOOL, T_SIZE, T_AUTH, T_LOGFMT, T_LOGLVL };

struct opt {
	const char *flag;	/* without the leading "--" */
	const char *env;
	enum opt_type type;
	size_t off;
	const char *def;	/* NULL: unset */
	const char *help;
};

#define O(f) offsetof(struct srv_config, f)

static const struct opt opts[] = {
	{ "model", "MODEL", T_STR, O(model), NULL, "model URI: directory, gs://bucket/prefix or http(s)://host/prefix" },
	{ "port", "PORT", T_INT, O(port), "8080", "TCP port to listen on" },
	{ "host", "HOST", T_STR, O(host), "0.0.0.0", "address to bind" },
	{ "served-model-name", "SERVED_MODEL_NAME", T_STR, O(served_model_name), NULL,
	  "model id in the API (default: last part of --model)" },
	{ "max-model-len", "MAX_MODEL_LEN", T_INT, O(max_model_len), "0", "context length (0: from config.json, capped)" },
	{ "max-num-seqs", "MAX_NUM_SEQS", T_INT, O(max_num_seqs), "64", "sequences in one batch" },
	{ "max-num-batched-tokens", "MAX_NUM_BATCHED_TOKENS", T_INT, O(max_num_batched_tokens), "2048",
	  "tokens in one engine step (chunked prefill budget)" },
	{ "max-queue", "MAX_QUEUE", T_INT, O(max_queue), "256", "waiting requests before 429" },
	{ "enable-prefix-caching", "ENABLE_PREFIX_CACHING", T_BOOL, O(enable_prefix_caching), "1",
	  "reuse the KV blocks of prompt prefixes already computed (automatic prefix caching)" },
	{ "no-enable-prefix-caching", "NO_ENABLE_PREFIX_CACHING", T_NBOOL, O(enable_prefix_caching), NULL,
	  "turn automatic prefix caching off" },
	{ "gpu-memory-utilization", "GPU_MEMORY_UTILIZATION", T_DBL, O(gpu_memory_utilization), "0.9",
	  "fraction of device memory for weights + KV cache" },
	{ "backend", "BACKEND", T_STR, O(backend), "auto", "compute backend: auto, cpu or cuda" },
	{ "threads", "THREADS", T_INT, O(threads), "0", "CPU backend threads (0: all cores)" },
	{ "sampler", "SAMPLER", T_STR, O(sampler), "auto",
	  "where tokens are sampled: auto or device (both: the backend's sample op; "
	  "the host sampler was retired)" },
	{ "api-key", "API_KEY", T_STR, O(api_key), NULL, "accepted API keys, comma separated (enables api-key auth)" },
	{ "api-key-file", "API_KEY_FILE", T_STR, O(api_key_file), NULL, "file with one API key per line" },
	{ "auth", "AUTH", T_AUTH, O(auth), NULL,
	  "auth modes, comma separated: api-key, cloud-run-iam, google-id-token (default: api-key when keys are set, else none)" },
	{ "allowed-invokers", "ALLOWED_INVOKERS", T_STR, O(allowed_invokers), NULL,
	  "emails allowed to call (cloud-run-iam, google-id-token), comma separated" },
	{ "audience", "AUDIENCE", T_STR, O(audience), NULL, "accepted ID-token audiences, comma separated" },
	{ "jwks-url", "JWKS_URL", T_STR, O(jwks_url), "https://www.googleapis.com/oauth2/v3/certs",
	  "JWKS for google-id-token" },
	{ "jwks-file", "JWKS_FILE", T_STR, O(jwks_file), NULL, "JWKS file for google-id-token (instead of --jwks-url)" },
	{ "jwt-clock-skew", "JWT_CLOCK_SKEW", T_DBL, O(jwt_skew_s), "60", "seconds of clock skew allowed for exp/iat/nbf" },
	{ "metrics-auth", "METRICS_AUTH", T_BOOL, O(metrics_auth), "0", "require auth on /metrics" },
	{ "max-body-bytes", "MAX_BODY_BYTES", T_SIZE, O(max_body_bytes), "1048576", "largest request body (413 above)" },
	{ "shutdown-timeout", "SHUTDOWN_TIMEOUT", T_DBL, O(shutdown_timeout), "8",
	  "seconds running requests get to finish after SIGTERM" },
	{ "header-timeout", "HEADER_TIMEOUT", T_DBL, O(header_timeout), "10",
	  "seconds a client gets to send a request's line and headers (then the connection is closed)" },
	{ "body-timeout", "BODY_TIMEOUT", T_DBL, O(body_timeout), "60",
	  "seconds a client gets to send a request body after its headers" },
	{ "idle-timeout", "IDLE_TIMEOUT", T_DBL, O(idle_timeout), "620",
	  "seconds an idle keep-alive connection is kept (longer than Google front ends' 600)" },
	{ "max-connections", "MAX_CONNECTIONS", T_INT, O(max_connections), "0",
	  "open connections; at the cap a new one closes the oldest not answering (0: the fd limit - 64)" },
	{ "loader-workers", "LOADER_WORKERS", T_INT, O(loader_workers), "0", "parallel loader workers (0: default)" },
	{ "loader-chunk-mb", "LOADER_CHUNK_MB", T_INT, O(loader_chunk_mb), "0", "loader chunk size in MiB (0: default)" },
	{ "loader-pinned-mb", "LOADER_PINNED_MB", T_INT, O(loader_pinned_mb), "0", "pinned staging memory in MiB (0: default)" },
	{ "loader-retry-deadline-s", "LOADER_RETRY_DEADLINE_S", T_DBL, O(loader_retry_deadline_s), "300",
	  "no loader retry starts this long after a read first failed (inside the startup probe's 360 s)" },
	{ "ca-bundle", "CA_BUNDLE", T_STR, O(ca_bundle), NULL, "CA bundle for https:// and gs:// (default: system)" },
	{ "gcs-anonymous", "GCS_ANONYMOUS", T_BOOL, O(gcs_anonymous), "0", "read gs:// without credentials" },
	{ "allow-unused-tensors", "ALLOW_UNUSED_TENSORS", T_BOOL, O(allow_unused_tensors), "0",
	  "load a checkpoint holding tensors config.json does not use (default: an error)" },
	{ "log-format", "LOG_FORMAT", T_LOGFMT, O(log_json), "json", "log format: json (stdout) or text (stderr)" },
	{ "log-level", "LOG_LEVEL", T_LOGLVL, O(log_level), "info", "debug, info, warning or error" },
};

int cfg_parse_auth(const char *s, unsigned *out)
{
	unsigned bits = 0;
	const char *p = s;

	while (*p) {
		size_t n = strcspn(p, ",");
		while (n && (*p == ' ')) { p++; n--; }
		size_t m = n;
		while (m && p[m - 1] == ' ')
			m--;
		if (m == 7 && strncmp(p, "api-key", 7) == 0)
			bits |= CFG_AUTH_API_KEY;
		else if (m == 13 && strncmp(p, "cloud-run-iam", 13) == 0)
			bits |= CFG_AUTH_CLOUD_RUN_IAM;
		else if (m == 15 && strncmp(p, "google-id-token", 15) == 0)
			bits |= CFG_AUTH_GOOGLE_ID_TOKEN;
		else if (!(m == 4 && strncmp(p, "none", 4) == 0) && m != 0)
			return ST_EINVAL;
		p += n;
		if (*p == ',')
			p++;
	}
	*out = bits;
	return 0;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
		*out = 1;
	else if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
		 !strcasecmp(v, "off") || !*v)
		*out = 0;
	else
		return ST_EINVAL;
	return 0;
}

static int set_value(struct srv_config *cfg, const struct opt *o, const char *v)
{
	char *base = (char *)cfg + o->off;
	int64_t i;
	double d;

	switch (o->type) {
	case T_STR:
		*(const char **)base = v;
		return 0;
	case T_INT:
		if (parse_i64(v, &i) < 0 || i < -1 || i > 1000000000)
			return ST_EINVAL;
		*(int *)base = (int)i;
		return 0;
	case T_DBL:
		if (parse_f64(v, &d) < 0 || d < 0 || d > 1e9)
			return ST_EINVAL;
		*(double *)base = d;
		return 0;
	case T_SIZE:
		if (parse_i64(v, &i) < 0 || i < 1)
			return ST_EINVAL;
		*(size_t *)base = (size_t)i;
		return 0;
	case T_BOOL:
		return parse_bool(v, (int *)base);
	case T_NBOOL:
		if (parse_bool(v, (int *)base) < 0)
			return ST_EINVAL;
		*(int *)base = !*(int *)base;
		return 0;
	case T_AUTH:
		return cfg_parse_auth(v, (unsigned *)base);
	case T_LOGFMT:
		if (!strcmp(v, "json"))
			*(int *)base = 1;
		else if (!strcmp(v, "text"))
			*(int *)base = 0;
		else
			return ST_EINVAL;
		return 0;
	case T_LOGLVL:
		if (!strcasecmp(v, "debug"))
			*(enum log_level *)base = LOG_DEBUG;
		else if (!strcasecmp(v, "info"))
			*(enum log_level *)base = LOG_INFO;
		else if (!strcasecmp(v, "warning") || !strcasecmp(v, "warn"))
			*(enum log_level *)base = LOG_WARN;
		else if (!strcasecmp(v, "error"))
			*(enum log_level *)base = LOG_ERROR;
		else
			return ST_EINVAL;
		return 0;
	}
	return ST_EINVAL;
}

void cfg_print_help(FILE *f)
{
	fprintf(f, "usage: gemma-run serve --model URI [flags]\n\n"
		   "Every flag has an environment twin; flags override the environment.\n\n");
	for (size_t k = 0; k < ARRAY_SIZE(opts); k++) {
		const struct opt *o = &opts[k];
		const char *arg = o->type == T_BOOL || o->type == T_NBOOL ? "" : " V";
		fprintf(f, "  --%s%s\n      env %s, default %s\n      %s\n", o->flag, arg, o->env,
			o->def ? o->def : "(none)", o->help);
	}
}

int cfg_parse(int argc, char **argv, struct srv_config *cfg, char *err, size_t errlen)
{
	unsigned auth_set = 0;

	memset(cfg, 0, sizeof(*cfg));
	for (size_t k = 0; k < ARRAY_SIZE(opts); k++)
		if (opts[k].def && set_value(cfg, &opts[k], opts[k].def) < 0) {
			snprintf(err, errlen, "bad built-in default for --%s", opts[k].flag);
			return ST_EINVAL;
		}
	for (size_t k = 0; k < ARRAY_SIZE(opts); k++) {
		const char *v = getenv(opts[k].env);
		if (!v)
			continue;
		if (set_value(cfg, &opts[k], v) < 0) {
			snprintf(err, errlen, "bad value '%s' for %s", v, opts[k].env);
			return ST_EINVAL;
		}
		if (opts[k].type == T_AUTH)
			auth_set = 1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			cfg_print_help(stdout);
			return 1;
		}
		if (strncmp(a, "--", 2) != 0) {
			snprintf(err, errlen, "unexpected argument '%s'", a);
			return ST_EINVAL;
		}
		a += 2;
		const char *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		const struct opt *o = NULL;
		for (size_t k = 0; k < ARRAY_SIZE(opts); k++)
			if (strlen(opts[k].flag) == n && !strncmp(opts[k].flag, a, n))
				o = &opts[k];
		if (!o) {
			snprintf(err, errlen, "unknown flag '--%.*s' (see --help)", (int)n, a);
			return ST_EINVAL;
		}
		const char *v;
		if (eq)
			v = eq + 1;
		else if (o->type == T_BOOL || o->type == T_NBOOL)
			v = "1";
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			snprintf(err, errlen, "--%s needs a value", o->flag);
			return ST_EINVAL;
		}
		if (set_value(cfg, o, v) < 0) {
			snprintf(err, errlen, "bad value '%s' for --%s", v, o->flag);
			return ST_EINVAL;
		}
		if (o->type == T_AUTH)
			auth_set = 1;
	}
	if (!auth_set && ((cfg->api_key && *cfg->api_key) || cfg->api_key_file))
		cfg->auth = CFG_AUTH_API_KEY;
	if (cfg->port < 0 || cfg->port > 65535) {
		snprintf(err, errlen, "bad value %d for --port", cfg->port);
		return ST_EINVAL;
	}
	if (cfg->max_num_seqs < 1) {
		snprintf(err, errlen, "--max-num-seqs must be at least 1");
		return ST_EINVAL;
	}
	if (cfg->max_queue < 0) {
		snprintf(err, errlen, "--max-queue must be at least 0");
		return ST_EINVAL;
	}
	if (cfg->header_timeout <= 0 || cfg->body_timeout <= 0 || cfg->idle_timeout <= 0) {
		snprintf(err, errlen, "--header-timeout, --body-timeout and --idle-timeout must be above 0");
		return ST_EINVAL;
	}
	if (cfg->max_connections < 0) {
		snprintf(err, errlen, "--max-connections must be at least 0");
		return ST_EINVAL;
	}
	if (eng_sampler_parse(cfg->sampler, &(enum eng_sampler){ 0 }) < 0) {
		snprintf(err, errlen, "--sampler must be %s, not '%s'%s", ENG_SAMPLER_NAMES,
			 cfg->sampler, strcmp(cfg->sampler, "host") == 0 ?
			 " (the host sampler was retired: tokens are sampled by the backend's "
			 "sample op)" : "");
		return ST_EINVAL;
	}
	if (cfg->gpu_memory_utilization <= 0 || cfg->gpu_memory_utilization > 1) {
		snprintf(err, errlen, "--gpu-memory-utilization must be in (0, 1]");
		return ST_EINVAL;
	}
	if ((cfg->auth & CFG_AUTH_API_KEY) && !(cfg->api_key && *cfg->api_key) && !cfg->api_key_file) {
		snprintf(err, errlen, "--auth api-key needs --api-key or --api-key-file");
		return ST_EINVAL;
	}
	if ((cfg->auth & CFG_AUTH_GOOGLE_ID_TOKEN) && !(cfg->audience && *cfg->audience)) {
		snprintf(err, errlen, "--auth google-id-token needs --audience");
		return ST_EINVAL;
	}
	return 0;
}
