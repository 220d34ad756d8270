/*
 * test_srv_config.c - the flags of `serve` (service/config.c): defaults,
 * env twins, precedence (default < env < flag), --flag=value, booleans,
 * auth mode lists, and errors naming the flag or env variable.
 */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "service/config.h"
#include "tests/harness.h"

static int parse(struct srv_config *c, char *err, int argc, char **argv)
{
	return cfg_parse(argc, argv, c, err, 256);
}

static void test_defaults(void)
{
	struct srv_config c;
	char err[256];
	char *argv[] = { "serve", "--model", "/m" };
	CHECK(parse(&c, err, 3, argv) == 0, "%s", err);
	CHECK(c.port == 8080 && !strcmp(c.host, "0.0.0.0"), "port %d host %s", c.port, c.host);
	CHECK(c.max_body_bytes == 1048576, "max_body %zu", c.max_body_bytes);
	CHECK(c.shutdown_timeout == 8 && c.max_num_seqs == 64 && c.max_queue == 256, "defaults");
	CHECK(c.auth == 0 && c.log_json == 1 && c.log_level == LOG_INFO && !c.metrics_auth, "auth/log");
	CHECK(!strcmp(c.model, "/m") && !strcmp(c.backend, "auto"), "model/backend");
	CHECK(c.header_timeout == 10 && c.body_timeout == 60 && c.idle_timeout == 620 && c.max_connections == 0,
	      "connection deadlines %g %g %g cap %d", c.header_timeout, c.body_timeout, c.idle_timeout,
	      c.max_connections);
}

static void test_env_and_precedence(void)
{
	struct srv_config c;
	char err[256];
	setenv("PORT", "9000", 1);
	setenv("MAX_MODEL_LEN", "4096", 1);
	setenv("GCS_ANONYMOUS", "true", 1);
	setenv("API_KEY", "a,b", 1);
	char *argv[] = { "serve", "--port=9100", "--log-format", "text", "--metrics-auth" };
	CHECK(parse(&c, err, 5, argv) == 0, "%s", err);
	CHECK(c.port == 9100, "flag beats env: %d", c.port);
	CHECK(c.max_model_len == 4096, "env twin: %d", c.max_model_len);
	CHECK(c.gcs_anonymous == 1 && c.metrics_auth == 1 && c.log_json == 0, "bools");
	CHECK(c.auth == CFG_AUTH_API_KEY && !strcmp(c.api_key, "a,b"), "api key turns on api-key auth");
	unsetenv("PORT");
	unsetenv("MAX_MODEL_LEN");
	unsetenv("GCS_ANONYMOUS");
	unsetenv("API_KEY");
}

static void test_prefix_caching_flags(void)
{
	struct srv_config c;
	char err[256];
	char *a0[] = { "serve" };
	CHECK(parse(&c, err, 1, a0) == 0 && c.enable_prefix_caching == 1, "default on: %d",
	      c.enable_prefix_caching);
	char *a1[] = { "serve", "--no-enable-prefix-caching" };
	CHECK(parse(&c, err, 2, a1) == 0 && c.enable_prefix_caching == 0, "--no-: %d",
	      c.enable_prefix_caching);
	char *a2[] = { "serve", "--no-enable-prefix-caching", "--enable-prefix-caching" };
	CHECK(parse(&c, err, 3, a2) == 0 && c.enable_prefix_caching == 1, "last wins: %d",
	      c.enable_prefix_caching);
	setenv("ENABLE_PREFIX_CACHING", "false", 1);
	CHECK(parse(&c, err, 1, a0) == 0 && c.enable_prefix_caching == 0, "env off: %d",
	      c.enable_prefix_caching);
	unsetenv("ENABLE_PREFIX_CACHING");
	char *a3[] = { "serve", "--no-enable-prefix-caching=maybe" };
	CHECK(parse(&c, err, 2, a3) == ST_EINVAL && strstr(err, "--no-enable-prefix-caching"),
	      "bad value: %s", err);
}

static void test_errors(void)
{
	struct srv_config c;
	char err[256];
	char *a1[] = { "serve", "--nope" };
	CHECK(parse(&c, err, 2, a1) == ST_EINVAL && strstr(err, "--nope"), "unknown flag: %s", err);
	char *a2[] = { "serve", "--port", "70000" };
	CHECK(parse(&c, err, 3, a2) == ST_EINVAL && strstr(err, "port"), "port range: %s", err);
	setenv("IDLE_TIMEOUT", "5", 1);
	char *c1[] = { "serve", "--header-timeout", "2.5", "--max-connections", "100" };
	CHECK(parse(&c, err, 5, c1) == 0 && c.header_timeout == 2.5 && c.idle_timeout == 5 && c.max_connections == 100,
	      "connection flags: %s", err);
	unsetenv("IDLE_TIMEOUT");
	char *c2[] = { "serve", "--body-timeout", "0" };
	CHECK(parse(&c, err, 3, c2) == ST_EINVAL && strstr(err, "body-timeout"), "zero deadline: %s", err);
	char *a3[] = { "serve", "--max-num-seqs" };
	CHECK(parse(&c, err, 2, a3) == ST_EINVAL && strstr(err, "needs a value"), "missing value: %s", err);
	char *a4[] = { "serve", "--auth", "api-key,magic" };
	CHECK(parse(&c, err, 3, a4) == ST_EINVAL && strstr(err, "--auth"), "bad auth: %s", err);
	char *a5[] = { "serve", "--auth", "api-key" };
	CHECK(parse(&c, err, 3, a5) == ST_EINVAL && strstr(err, "api-key"), "api-key without keys: %s", err);
	char *a6[] = { "serve", "--auth", "google-id-token" };
	CHECK(parse(&c, err, 3, a6) == ST_EINVAL && strstr(err, "audience"), "id token without audience: %s", err);
	setenv("SHUTDOWN_TIMEOUT", "soon", 1);
	char *a7[] = { "serve" };
	CHECK(parse(&c, err, 1, a7) == ST_EINVAL && strstr(err, "SHUTDOWN_TIMEOUT"), "bad env: %s", err);
	unsetenv("SHUTDOWN_TIMEOUT");
	char *a8[] = { "serve", "--gpu-memory-utilization", "1.5" };
	CHECK(parse(&c, err, 3, a8) == ST_EINVAL, "gpu util > 1 accepted");
	char *a9[] = { "serve", "--log-level", "loud" };
	CHECK(parse(&c, err, 3, a9) == ST_EINVAL, "bad log level accepted");
}

static void test_auth_list(void)
{
	unsigned b = 0;
	CHECK(cfg_parse_auth("api-key, cloud-run-iam,google-id-token", &b) == 0 &&
	      b == (CFG_AUTH_API_KEY | CFG_AUTH_CLOUD_RUN_IAM | CFG_AUTH_GOOGLE_ID_TOKEN), "all three: %u", b);
	CHECK(cfg_parse_auth("none", &b) == 0 && b == 0, "none");
	CHECK(cfg_parse_auth("", &b) == 0 && b == 0, "empty");
	CHECK(cfg_parse_auth("api-keys", &b) == ST_EINVAL, "typo accepted");
}

int main(void)
{
	/* the defaults test must not see the caller's environment */
	static const char *const env[] = { "MODEL", "PORT", "HOST", "MAX_BODY_BYTES", "SHUTDOWN_TIMEOUT",
		"MAX_NUM_SEQS", "MAX_QUEUE", "AUTH", "API_KEY", "API_KEY_FILE", "LOG_FORMAT", "LOG_LEVEL",
		"METRICS_AUTH", "BACKEND", "MAX_MODEL_LEN", "GCS_ANONYMOUS" };
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		unsetenv(env[i]);
	RUN(test_defaults);
	RUN(test_env_and_precedence);
	RUN(test_errors);
	RUN(test_prefix_caching_flags);
	RUN(test_auth_list);
	return th_done();
}
