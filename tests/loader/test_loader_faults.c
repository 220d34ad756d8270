/*
 * test_loader_faults.c - regression cases from the adversarial review of the
 * loader (local inputs; the network ones are in gcs_protocol.test.sh and
 * http_names.test.sh):
 *   - shard sizes whose sum wraps size_t are refused, not placed in a tiny arena;
 *   - the staging ring never holds more than --loader-pinned-mb, even when a
 *     chunk is larger than it (the chunk shrinks instead);
 *   - a FIFO in the model directory is refused instead of blocking forever;
 *   - a broken config.json beside an index is reported as config.json's fault;
 *   - an empty URI is refused (it used to read the root directory);
 *   - a header or index listing more than ST_MAX_TENSORS tensors is refused at
 *     once instead of spending hours in quadratic name checks;
 *   - a header longer than the first ranged read loads, and its tail read in the
 *     metadata stage does not make the first_byte stage negative.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "loader/ld_model.h"
#include "loader/loader.h"
#include "loader/model_desc.h"
#include "loader/model_format.h"
#include "loader/safetensors.h"
#include "tests/harness.h"

#define GOLDEN_B "tests/golden/gemma2-tiny-b"

static struct be cpu;
static char tmp_root[256];

static void copy_golden_b(const char *dir)
{
	const char *files[] = { "config.json", "model-00001-of-00002.safetensors",
				"model-00002-of-00002.safetensors", "model.safetensors.index.json" };
	char a[600], b[600], *buf;
	size_t n;
	mkdir(dir, 0755);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(a, sizeof(a), GOLDEN_B "/%s", files[i]);
		snprintf(b, sizeof(b), "%s/%s", dir, files[i]);
		CHECK(read_file(a, 64u << 20, &buf, &n) == 0 && write_file(b, buf, n) == 0, "copy %s", a);
		free(buf);
	}
}

static void test_place_tensors_no_wraparound(void)
{
	struct st_file sh[3];
	struct ld_desc d;
	struct ld_model m;
	size_t base[3];
	memset(sh, 0, sizeof(sh));
	memset(&d, 0, sizeof(d));
	memset(&m, 0, sizeof(m));
	for (int s = 0; s < 3; s++)
		sh[s].data_len = SIZE_MAX / 2;	/* what a lying server's sizes could add up to */
	d.n_shards = 3;
	d.shards = sh;
	CHECK(ld_place_tensors(&m, &d, base) == ST_ERANGE, "wrapping sizes were placed (arena %zu bytes)",
	      m.arena_bytes);
	free(m.tensors);
	memset(&m, 0, sizeof(m));
	d.n_shards = 1;
	CHECK(ld_place_tensors(&m, &d, base) == 0 && m.arena_bytes >= SIZE_MAX / 2, "one large shard refused");
	free(m.tensors);
}

/* ---- a non-host-visible backend whose upload copies at once ---- */

static pthread_mutex_t fk_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t fk_host_bytes, fk_host_peak;
static int fk_uploads, fk_dones;

static void *fk_host_alloc(void *ctx, size_t n)
{
	(void)ctx;
	pthread_mutex_lock(&fk_mu);
	fk_host_bytes += n;
	fk_host_peak = MAX(fk_host_peak, fk_host_bytes);
	pthread_mutex_unlock(&fk_mu);
	return malloc(n);
}

static void fk_host_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static int fk_upload(void *ctx, void *dst, const void *src, size_t n, int lane, void (*done)(void *), void *arg)
{
	(void)ctx;
	(void)lane;
	memcpy(dst, src, n);
	pthread_mutex_lock(&fk_mu);
	fk_uploads++;
	fk_dones += done != NULL;
	pthread_mutex_unlock(&fk_mu);
	if (done)
		done(arg);
	return 0;
}

static void test_ring_never_exceeds_pinned(void)
{
	struct be_ops ops = *cpu.ops;
	struct be fake = { &ops, cpu.ctx };
	struct ld_model *ref = NULL, *m = NULL;
	struct ld_opts o;
	ops.host_visible = 0;
	ops.host_alloc = fk_host_alloc;
	ops.host_free = fk_host_free;
	ops.upload = fk_upload;
	ld_opts_default(&o);
	o.workers = 4;
	o.chunk_bytes = 1u << 20;	/* larger than the ring and than either shard */
	o.pinned_bytes = 64u << 10;
	CHECK(ld_load_simple(GOLDEN_B, &cpu, NULL, &ref) == 0, "reference load");
	CHECK(ld_load(GOLDEN_B, &o, &fake, NULL, &m) == 0, "ring load failed");
	if (ref && m) {
		char h1[65] = "", h2[65] = "";
		CHECK(ld_model_hash(ref, h1) == 0 && ld_model_hash(m, h2) == 0 && strcmp(h1, h2) == 0,
		      "ring path arena differs: %s vs %s", h2, h1);
	}
	CHECK(fk_host_peak > 0 && fk_host_peak <= o.pinned_bytes, "staging memory %zu, --loader-pinned-mb %zu",
	      fk_host_peak, o.pinned_bytes);
	CHECK(fk_uploads >= 16 && fk_uploads == fk_dones, "uploads %d dones %d (chunks not shrunk?)", fk_uploads,
	      fk_dones);
	ld_model_destroy(ref);
	ld_model_destroy(m);
}

static void test_fifo_refused_not_blocking(void)
{
	char dir[512], path[600];
	struct ld_model *m = NULL;
	alarm(60);	/* a regression blocks in open(): SIGALRM ends the test as a failure */
	snprintf(dir, sizeof(dir), "%s/fifo-tok", tmp_root);
	copy_golden_b(dir);
	snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
	CHECK(mkfifo(path, 0644) == 0, "mkfifo %s", path);
	CHECK(ld_load(dir, NULL, &cpu, NULL, &m) == ST_EIO, "FIFO tokenizer.json not refused");
	ld_model_destroy(m);
	m = NULL;
	snprintf(dir, sizeof(dir), "%s/fifo-shard", tmp_root);
	copy_golden_b(dir);
	snprintf(path, sizeof(path), "%s/model-00002-of-00002.safetensors", dir);
	unlink(path);
	CHECK(mkfifo(path, 0644) == 0, "mkfifo %s", path);
	CHECK(ld_load(dir, NULL, &cpu, NULL, &m) == ST_EIO, "FIFO shard not refused");
	ld_model_destroy(m);
	m = NULL;
	CHECK(ld_load_simple(dir, &cpu, NULL, &m) < 0, "FIFO shard not refused by the reference loader");
	ld_model_destroy(m);
	alarm(0);
}

static void test_bad_config_is_named(void)
{
	char dir[512], path[600], logpath[600], *text = NULL;
	struct ld_model *m = NULL;
	size_t n = 0;
	FILE *lf;
	snprintf(dir, sizeof(dir), "%s/badcfg", tmp_root);
	copy_golden_b(dir);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	CHECK(write_file(path, "{\"model_type\": \"gemma2\",", 24) == 0, "write config");
	snprintf(logpath, sizeof(logpath), "%s/log.txt", tmp_root);
	if (!(lf = fopen(logpath, "w"))) {
		CHECK(0, "cannot open %s", logpath);
		return;
	}
	log_setup(lf, 0, LOG_WARN);
	int rc = ld_load(dir, NULL, &cpu, NULL, &m);
	fclose(lf);
	log_setup(stderr, 0, LOG_WARN);
	CHECK(rc == ST_EINVAL, "broken config.json: rc %d", rc);
	CHECK(read_file(logpath, 1u << 20, &text, &n) == 0, "read log");
	if (text) {
		CHECK(strstr(text, "failed: config.json at offset 0: config.json is not a JSON object") != NULL,
		      "message does not name config.json: %s", text);
		CHECK(strstr(text, "index.json at offset") == NULL, "the index is blamed: %s", text);
	}
	free(text);
	ld_model_destroy(m);
}

/* 20000 zero-size tensors: the duplicate-name checks are quadratic; 1.5 M of them (a 100 MB
 * header) kept a load busy for hours. Refused at once above ST_MAX_TENSORS. */
static void test_tensor_count_capped(void)
{
	const int n = 20000;
	size_t cap = (size_t)n * 80 + 64, len = 0;
	char *hdr = malloc(cap), *ix = malloc(cap), err[256];
	struct st_file f;
	struct ld_index li;
	if (!hdr || !ix) {
		CHECK(0, "out of memory");
		free(hdr);
		free(ix);
		return;
	}
	len += (size_t)snprintf(hdr + len, cap - len, "{");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(hdr + len, cap - len, "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],"
					"\"data_offsets\":[0,0]}", i ? "," : "", i);
	len += (size_t)snprintf(hdr + len, cap - len, "}");
	CHECK(st_parse_header(hdr, len, len + 8, &f, err, sizeof(err)) == ST_EFORMAT && strstr(err, "20000 tensors"),
	      "header with %d tensors: %s", n, err);
	len = (size_t)snprintf(ix, cap, "{\"weight_map\":{");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(ix + len, cap - len, "%s\"t%d\":\"model.safetensors\"", i ? "," : "", i);
	len += (size_t)snprintf(ix + len, cap - len, "}}");
	CHECK(ld_index_parse(ix, len, &li, err, sizeof(err)) == ST_EINVAL && strstr(err, "20000 tensors"),
	      "index with %d tensors: %s", n, err);
	free(hdr);
	free(ix);
}

/* A shard header larger than the first ranged read (256 KiB): the rest is read in the
 * metadata stage, which must not count as the transfer's first byte (it gave a negative
 * first_byte time). The arena is the reference's. */
static void test_big_header_first_byte(void)
{
	char dir[512], path[600], *buf = NULL, *out = NULL;
	const char *key = "\"__metadata__\":{";
	const size_t pad = 300000;
	struct ld_model *m = NULL, *ref = NULL;
	struct ld_progress pr;
	size_t n = 0;
	snprintf(dir, sizeof(dir), "%s/bighdr", tmp_root);
	copy_golden_b(dir);
	snprintf(path, sizeof(path), "%s/model-00001-of-00002.safetensors", dir);
	CHECK(read_file(path, 64u << 20, &buf, &n) == 0 && n > 8, "read shard");
	if (!buf)
		return;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = (hlen << 8) | (uint8_t)buf[i];
	char *at = memmem(buf + 8, (size_t)hlen, key, strlen(key));
	CHECK(at != NULL, "golden shard has no __metadata__");
	if (at && (out = malloc(n + pad + 64))) {
		size_t head = (size_t)(at + strlen(key) - buf), o = 8;
		uint64_t nh = hlen + pad + 9;	/* "pad":"<pad x>", */
		memcpy(out + o, buf + 8, head - 8);
		o += head - 8;
		o += (size_t)sprintf(out + o, "\"pad\":\"");
		memset(out + o, 'x', pad);
		o += pad;
		o += (size_t)sprintf(out + o, "\",");
		memcpy(out + o, buf + head, n - head);
		o += n - head;
		for (int i = 0; i < 8; i++)
			out[i] = (char)(nh >> (8 * i));
		CHECK(o == n + pad + 9 && write_file(path, out, o) == 0, "write the big-header shard");
	}
	memset(&pr, 0, sizeof(pr));
	CHECK(ld_load_simple(GOLDEN_B, &cpu, NULL, &ref) == 0, "reference load");
	CHECK(ld_load(dir, NULL, &cpu, &pr, &m) == 0, "big-header load failed");
	if (m && ref) {
		char h1[65] = "", h2[65] = "";
		CHECK(ld_model_hash(ref, h1) == 0 && ld_model_hash(m, h2) == 0 && strcmp(h1, h2) == 0,
		      "big-header arena differs: %s vs %s", h2, h1);
	}
	CHECK(pr.stage_s[LD_STAGE_FIRST_BYTE] >= 0, "first_byte stage %.6f s", pr.stage_s[LD_STAGE_FIRST_BYTE]);
	ld_model_destroy(m);
	ld_model_destroy(ref);
	free(buf);
	free(out);
}

static void test_empty_uri_refused(void)
{
	struct ld_model *m = NULL;
	CHECK(ld_load("", NULL, &cpu, NULL, &m) == ST_EINVAL && !m, "an empty URI was taken as '/'");
	ld_model_destroy(m);
}

int main(void)
{
	struct be_opts bo = { .n_threads = 1 };
	char cmd[600];
	log_setup(stderr, 0, LOG_WARN);
	if (be_create("cpu", &bo, &cpu) < 0) {
		printf("FAIL setup: no cpu backend\n");
		return 1;
	}
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/gr-ldfault-XXXXXX");
	if (!mkdtemp(tmp_root)) {
		printf("FAIL setup: mkdtemp\n");
		return 1;
	}
	RUN(test_place_tensors_no_wraparound);
	RUN(test_ring_never_exceeds_pinned);
	RUN(test_fifo_refused_not_blocking);
	RUN(test_bad_config_is_named);
	RUN(test_empty_uri_refused);
	RUN(test_tensor_count_capped);
	RUN(test_big_header_first_byte);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp_root);
	be_destroy(&cpu);
	return th_done();
}
