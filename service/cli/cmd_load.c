/*
 * cmd_load.c - `gemma-run load` (load the model only and report bytes,
 * seconds, GB/s and the time of each stage) and `gemma-run checksum DIR`
 * (write DIR/crc32c.json, see ld_write_crc_manifest in loader/loader.h).
 *
 * load prints one human line and one JSON line on stdout; it exits 1 when
 * the load fails (the loader has logged the object, offset and reason).
 * --model, --ca-bundle, --gcs-anonymous and the --loader-* numbers have env
 * twins (MODEL, CA_BUNDLE, GCS_ANONYMOUS, LOADER_WORKERS, LOADER_CHUNK_MB,
 * LOADER_PINNED_MB, LOADER_RETRIES, LOADER_RETRY_DEADLINE_S, LOADER_STALL_S, LOADER_DEADLINE_S);
 * flags win. Not here: the engine (load stops after the weights).
 */
#include "service/cli/cmd_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "loader/loader.h"
#include "service/cli/cli_flags.h"

/* Number flags: -1 until given (every range starts at 0 or above). */
struct load_nums {
	double workers, chunk_mb, pinned_mb, retries, retry_deadline_s, stall_s, deadline_s;
};

#define LOAD_NUM(n, p, a, h, l, u, e) { .name = (n), .type = CLI_DBL, .ptr = (p), .arg = (a), \
					.help = (h), .lo = (l), .hi = (u), .env = (e) }

int cmd_load(int argc, char **argv)
{
	struct ld_opts o;
	struct ld_progress pr;
	struct ld_model *m = NULL;
	struct be be;
	struct be_opts bo = { 0 };
	struct load_nums nv = { -1, -1, -1, -1, -1, -1, -1 };
	const char *model = NULL, *backend = "auto";
	int simple = 0, print_hash = 0, no_verify = 0, rc;
	char hash[65] = "";

	ld_opts_default(&o);
	const struct cli_flag flags[] = {
		{ .name = "model", .type = CLI_STR, .ptr = &model, .arg = "URI", .env = "MODEL",
		  .help = "directory, gs://bucket/prefix or http(s)://host/prefix" },
		CLI_F_STR("backend", &backend, "cpu|cuda|null|auto",
			  "(default auto; null: the GPU path's staging ring, bytes dropped)"),
		LOAD_NUM("loader-workers", &nv.workers, "N", "parallel readers (default 16)", 1, 1024,
			 "LOADER_WORKERS"),
		LOAD_NUM("loader-chunk-mb", &nv.chunk_mb, "X",
			 "chunk size in MiB, fractions allowed (default 32; local files 4)", 1.0 / 1024, 4096,
			 "LOADER_CHUNK_MB"),
		LOAD_NUM("loader-pinned-mb", &nv.pinned_mb, "N",
			 "staging ring for non-host-visible backends (default 512)", 1, 65536,
			 "LOADER_PINNED_MB"),
		LOAD_NUM("loader-retries", &nv.retries, "N", "retries per read at most (default 1000)", 0, 100000,
			 "LOADER_RETRIES"),
		LOAD_NUM("loader-retry-deadline-s", &nv.retry_deadline_s, "S",
			 "no retry starts S seconds after a read first failed (default 300)", 0.1, 86400,
			 "LOADER_RETRY_DEADLINE_S"),
		LOAD_NUM("loader-stall-s", &nv.stall_s, "S",
			 "a transfer below 1 KiB/s for S seconds is retried (default 20)", 0.5, 3600,
			 "LOADER_STALL_S"),
		LOAD_NUM("loader-deadline-s", &nv.deadline_s, "S",
			 "the whole load fails after S seconds (default none)", 0, 86400,
			 "LOADER_DEADLINE_S"),
		{ .name = "ca-bundle", .type = CLI_STR, .ptr = &o.ca_bundle, .arg = "FILE",
		  .env = "CA_BUNDLE", .help = "CA certificates for https:// (and gs:// endpoints)" },
		{ .name = "gcs-anonymous", .type = CLI_BOOL, .ptr = &o.gcs_anonymous,
		  .env = "GCS_ANONYMOUS", .help = "no credentials for gs:// (public buckets)" },
		CLI_F_BOOL("no-verify", &no_verify, "skip crc32c checks (sizes are still checked)"),
		{ .name = "allow-unused-tensors", .type = CLI_BOOL, .ptr = &o.allow_unused_tensors,
		  .env = "ALLOW_UNUSED_TENSORS",
		  .help = "load a checkpoint holding tensors config.json does not use (default: an error)" },
		CLI_F_BOOL("simple", &simple, "use the sequential reference loader (local directories)"),
		CLI_F_BOOL("print-hash", &print_hash, "add the SHA-256 of every tensor's bytes to the output"),
	};
	const struct cli_cmd cmd = { "load", "load --model URI [flags]", flags, ARRAY_SIZE(flags), NULL };
	if ((rc = cli_flags_parse(&cmd, argc, argv)) != CLI_GO_ON)
		return rc;
	if (nv.workers >= 0)
		o.workers = (int)nv.workers;
	if (nv.chunk_mb >= 0)
		o.chunk_bytes = (size_t)(nv.chunk_mb * 1048576.0);
	if (nv.pinned_mb >= 0)
		o.pinned_bytes = (size_t)nv.pinned_mb << 20;
	if (nv.retries >= 0)
		o.max_retries = (int)nv.retries;
	if (nv.retry_deadline_s >= 0)
		o.retry_deadline_s = nv.retry_deadline_s;
	if (nv.stall_s >= 0)
		o.stall_s = nv.stall_s;
	if (nv.deadline_s >= 0)
		o.deadline_s = nv.deadline_s;
	if (no_verify)
		o.verify = 0;
	if (!model) {
		fprintf(stderr, "gemma-run load: --model URI is required\n");
		cli_flags_help(&cmd, stderr);
		return 2;
	}
	if ((rc = be_create(backend, &bo, &be)) < 0) {
		fprintf(stderr, "gemma-run load: cannot create backend '%s': %s\n", backend, st_str(rc));
		return 1;
	}
	memset(&pr, 0, sizeof(pr));
	double t0 = now_sec();
	rc = simple ? ld_load_simple(model, &be, &pr, &m) : ld_load(model, &o, &be, &pr, &m);
	double secs = now_sec() - t0;
	if (rc < 0) {
		fprintf(stderr, "gemma-run load: failed (%s)\n", st_str(rc));
		be_destroy(&be);
		return 1;
	}
	if (print_hash && (rc = ld_model_hash(m, hash)) < 0) {
		fprintf(stderr, "gemma-run load: --print-hash: %s\n", st_str(rc));
		ld_model_destroy(m);
		be_destroy(&be);
		return 1;
	}
	uint64_t bytes = atomic_load(&pr.bytes_total);
	double gbps = secs > 0 ? (double)bytes / secs / 1e9 : 0;
	printf("loaded %s: %.3f GB in %.3f s = %.3f GB/s (", model, (double)bytes / 1e9, secs, gbps);
	for (int s = 0; s < LD_N_STAGES; s++)
		printf("%s%s %.3f s", s ? ", " : "", ld_stage_name[s], pr.stage_s[s]);
	printf("), %d tensors, %llu retries, backend %s\n", m->n_tensors,
	       (unsigned long long)atomic_load(&pr.retries), be.ops->name);
	char esc[2048];
	json_escape(esc, sizeof(esc), model);
	printf("{\"model\":\"%s\",\"backend\":\"%s\",\"loader\":\"%s\",\"bytes\":%llu,\"seconds\":%.6f,"
	       "\"gbps\":%.4f,\"tensors\":%d,\"weights_verified\":\"%s\",\"retries\":%llu,"
	       "\"throttles\":%llu,\"stages\":{",
	       esc, be.ops->name, simple ? "simple" : "pipeline", (unsigned long long)bytes, secs, gbps,
	       m->n_tensors, m->verified ? m->verified : LD_VERIFIED_SIZES,
	       (unsigned long long)atomic_load(&pr.retries), (unsigned long long)atomic_load(&pr.throttles));
	for (int s = 0; s < LD_N_STAGES; s++)
		printf("%s\"%s\":%.6f", s ? "," : "", ld_stage_name[s], pr.stage_s[s]);
	/* concurrency over time (AIMD): the ceiling, the lowest, the changes and their timeline */
	printf("},\"workers\":{\"max\":%d,\"min\":%d,\"final\":%d,\"decreases\":%llu,\"increases\":%llu,"
	       "\"timeline\":[", pr.workers_max, pr.workers_min, atomic_load(&pr.workers),
	       (unsigned long long)atomic_load(&pr.decreases), (unsigned long long)atomic_load(&pr.increases));
	for (int i = 0; i < atomic_load(&pr.n_conc); i++)
		printf("%s[%.3f,%d]", i ? "," : "", pr.conc[i].t, pr.conc[i].workers);
	printf("]%s%s%s}\n", hash[0] ? "},\"sha256\":\"" : "}", hash, hash[0] ? "\"" : "");
	fflush(stdout);
	ld_model_destroy(m);
	be_destroy(&be);
	return 0;
}

int cmd_checksum(int argc, char **argv)
{
	const char *dir = NULL;
	const struct cli_flag flags[] = {
		CLI_F_STR("model", &dir, "DIR", "the model directory (or give DIR alone)"),
	};
	const struct cli_cmd cmd = { "checksum", "checksum DIR   (writes DIR/crc32c.json)", flags,
				     ARRAY_SIZE(flags), &dir };
	int rc;

	if ((rc = cli_flags_parse(&cmd, argc, argv)) != CLI_GO_ON)
		return rc;
	if (!dir) {
		fprintf(stderr, "usage: gemma-run checksum DIR\n");
		return 2;
	}
	if (ld_write_crc_manifest(dir) < 0)
		return 1;
	printf("%s/crc32c.json\n", dir);
	return 0;
}
