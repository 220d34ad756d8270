/*
 * cmd_load.c - `gemma-run load` (load the model only and report bytes,
 * seconds, GB/s and the time of each stage) and `gemma-run checksum DIR`
 * (write DIR/crc32c.json, see ld_write_crc_manifest in loader/loader.h).
 *
 * load prints one human line and one JSON line on stdout; it exits 1 when
 * the load fails (the loader has logged the object, offset and reason).
 * Every flag has an env twin (MODEL, LOADER_WORKERS, LOADER_CHUNK_MB,
 * LOADER_PINNED_MB, CA_BUNDLE, GCS_ANONYMOUS, LOADER_DEADLINE_S,
 * LOADER_STALL_S, LOADER_RETRIES); flags win.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "loader/loader.h"
#include "service/cli/cli.h"

static const char usage_load[] =
	"usage: gemma-run load --model URI [flags]\n"
	"  --model URI              directory, gs://bucket/prefix or http(s)://host/prefix (env MODEL)\n"
	"  --backend cpu|cuda|auto  (default auto)\n"
	"  --loader-workers N       parallel readers (default 16)\n"
	"  --loader-chunk-mb X      chunk size in MiB, fractions allowed (default 32)\n"
	"  --loader-pinned-mb N     staging ring for non-host-visible backends (default 512)\n"
	"  --loader-retries N       retries per chunk (default 10)\n"
	"  --loader-stall-s S       a transfer below 1 KiB/s for S seconds is retried (default 20)\n"
	"  --loader-deadline-s S    the whole load fails after S seconds (default none)\n"
	"  --ca-bundle FILE         CA certificates for https:// (and gs:// endpoints)\n"
	"  --gcs-anonymous          no credentials for gs:// (public buckets)\n"
	"  --no-verify              skip crc32c checks (sizes are still checked)\n"
	"  --simple                 use the sequential reference loader (local directories)\n"
	"  --print-hash             add the SHA-256 of every tensor's bytes to the output\n";

static int num_arg(const char *flag, const char *v, double lo, double hi, double *out)
{
	if (!v || parse_f64(v, out) < 0 || *out < lo || *out > hi) {
		fprintf(stderr, "gemma-run load: %s wants a number in [%g, %g], got '%s'\n", flag, lo, hi,
			v ? v : "");
		return -1;
	}
	return 0;
}

int cmd_load(int argc, char **argv)
{
	struct ld_opts o;
	struct ld_progress pr;
	struct ld_model *m = NULL;
	struct be be;
	struct be_opts bo = { 0 };
	const char *model = getenv("MODEL"), *backend = "auto";
	int simple = 0, print_hash = 0, rc;
	char hash[65] = "";
	double v;
	const char *env;

	ld_opts_default(&o);
	o.ca_bundle = getenv("CA_BUNDLE");
	if ((env = getenv("GCS_ANONYMOUS")) && env[0] && strcmp(env, "0") != 0)
		o.gcs_anonymous = 1;
	static const struct { const char *flag, *env; } num_flags[] = {
		{ "--loader-workers", "LOADER_WORKERS" }, { "--loader-chunk-mb", "LOADER_CHUNK_MB" },
		{ "--loader-pinned-mb", "LOADER_PINNED_MB" }, { "--loader-retries", "LOADER_RETRIES" },
		{ "--loader-stall-s", "LOADER_STALL_S" }, { "--loader-deadline-s", "LOADER_DEADLINE_S" },
	};
	const char *num_val[ARRAY_SIZE(num_flags)];
	for (size_t k = 0; k < ARRAY_SIZE(num_flags); k++)
		num_val[k] = getenv(num_flags[k].env);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
		size_t k;
		for (k = 0; k < ARRAY_SIZE(num_flags); k++)
			if (strcmp(a, num_flags[k].flag) == 0)
				break;
		if (k < ARRAY_SIZE(num_flags)) {
			num_val[k] = next;
			i++;
		} else if (strcmp(a, "--model") == 0 && next) {
			model = next;
			i++;
		} else if (strcmp(a, "--backend") == 0 && next) {
			backend = next;
			i++;
		} else if (strcmp(a, "--ca-bundle") == 0 && next) {
			o.ca_bundle = next;
			i++;
		} else if (strcmp(a, "--gcs-anonymous") == 0) {
			o.gcs_anonymous = 1;
		} else if (strcmp(a, "--no-verify") == 0) {
			o.verify = 0;
		} else if (strcmp(a, "--simple") == 0) {
			simple = 1;
		} else if (strcmp(a, "--print-hash") == 0) {
			print_hash = 1;
		} else if (strcmp(a, "--help") == 0) {
			fputs(usage_load, stdout);
			return 0;
		} else {
			fprintf(stderr, "gemma-run load: unknown or incomplete argument '%s'\n%s", a, usage_load);
			return 2;
		}
	}
	for (size_t k = 0; k < ARRAY_SIZE(num_flags); k++) {
		static const double lo[] = { 1, 1.0 / 1024, 1, 0, 0.5, 0 }, hi[] = { 1024, 4096, 65536, 1000, 3600, 86400 };
		if (!num_val[k])
			continue;
		if (num_arg(num_flags[k].flag, num_val[k], lo[k], hi[k], &v) < 0)
			return 2;
		switch (k) {
		case 0: o.workers = (int)v; break;
		case 1: o.chunk_bytes = (size_t)(v * 1048576.0); break;
		case 2: o.pinned_bytes = (size_t)v << 20; break;
		case 3: o.max_retries = (int)v; break;
		case 4: o.stall_s = v; break;
		case 5: o.deadline_s = v; break;
		}
	}
	if (!model) {
		fprintf(stderr, "gemma-run load: --model URI is required\n%s", usage_load);
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
	       "\"gbps\":%.4f,\"tensors\":%d,\"retries\":%llu,\"throttles\":%llu,\"stages\":{",
	       esc, be.ops->name, simple ? "simple" : "pipeline", (unsigned long long)bytes, secs, gbps,
	       m->n_tensors, (unsigned long long)atomic_load(&pr.retries),
	       (unsigned long long)atomic_load(&pr.throttles));
	for (int s = 0; s < LD_N_STAGES; s++)
		printf("%s\"%s\":%.6f", s ? "," : "", ld_stage_name[s], pr.stage_s[s]);
	printf("}%s%s%s}\n", hash[0] ? ",\"sha256\":\"" : "", hash, hash[0] ? "\"" : "");
	fflush(stdout);
	ld_model_destroy(m);
	be_destroy(&be);
	return 0;
}

int cmd_checksum(int argc, char **argv)
{
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			printf("usage: gemma-run checksum DIR   (writes DIR/crc32c.json)\n");
			return 0;
		} else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else if (argv[i][0] != '-' && !dir) {
			dir = argv[i];
		} else {
			fprintf(stderr, "gemma-run checksum: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: gemma-run checksum DIR\n");
		return 2;
	}
	if (ld_write_crc_manifest(dir) < 0)
		return 1;
	printf("%s/crc32c.json\n", dir);
	return 0;
}
