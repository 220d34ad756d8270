/*
 * test_loader_local.c - the parallel pipeline on local directories against
 * the sequential reference (ld_load_simple), byte for byte: both golden
 * models and a sharded mkmodel model, with default and odd chunk sizes and
 * worker counts; the staging-ring path through a fake non-host-visible
 * backend whose uploads complete later on lane threads; crc32c.json
 * verification catching a flipped weight byte, a changed small file and a
 * missing entry; a truncated shard; progress accounting.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/status.h"
#include "common/fileio.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "loader/loader.h"
#include "tests/harness.h"

static struct be cpu;

/* Same tensor table, same bytes for every tensor. */
static int same_model(const struct ld_model *a, const struct ld_model *b, const struct be *bea)
{
	(void)bea;
	if (a->n_tensors != b->n_tensors || a->arena_bytes != b->arena_bytes)
		return 0;
	for (int i = 0; i < a->n_tensors; i++) {
		const struct ld_tensor *x = &a->tensors[i], *y = &b->tensors[i];
		if (strcmp(x->name, y->name) || x->offset != y->offset || x->nbytes != y->nbytes ||
		    x->dtype != y->dtype || memcmp((char *)a->arena + x->offset, (char *)b->arena + y->offset, x->nbytes))
			return 0;
	}
	return 1;
}

static void compare_dir(const char *dir, int workers, size_t chunk, const char *what)
{
	struct ld_model *ref = NULL, *m = NULL;
	struct ld_opts o;
	struct ld_progress pr;
	memset(&pr, 0, sizeof(pr));
	ld_opts_default(&o);
	if (workers)
		o.workers = workers;
	if (chunk)
		o.chunk_bytes = chunk;
	CHECK(ld_load_simple(dir, &cpu, NULL, &ref) == 0, "%s: reference load failed", what);
	CHECK(ld_load(dir, &o, &cpu, &pr, &m) == 0, "%s: pipeline load failed", what);
	if (ref && m) {
		CHECK(same_model(ref, m, &cpu), "%s: arenas differ", what);
		CHECK(m->cfg.hidden_size == ref->cfg.hidden_size && m->cfg.vocab_size == ref->cfg.vocab_size,
		      "%s: config differs", what);
		CHECK((m->tokenizer_json == NULL) == (ref->tokenizer_json == NULL) &&
		      (!m->tokenizer_json || (m->tokenizer_len == ref->tokenizer_len &&
					      memcmp(m->tokenizer_json, ref->tokenizer_json, m->tokenizer_len) == 0)),
		      "%s: tokenizer differs", what);
		CHECK(atomic_load(&pr.bytes_done) == atomic_load(&pr.bytes_total) && pr.bytes_total > 0,
		      "%s: progress %llu of %llu", what, (unsigned long long)pr.bytes_done,
		      (unsigned long long)pr.bytes_total);
		CHECK(atomic_load(&pr.done) == 1, "%s: done flag", what);
		for (int s = 0; s < LD_N_STAGES; s++)
			CHECK(pr.stage_s[s] >= 0 && pr.stage_s[s] < 600, "%s: stage %d = %g", what, s, pr.stage_s[s]);
	}
	ld_model_destroy(ref);
	ld_model_destroy(m);
}

static void test_golden_a(void)
{
	compare_dir("tests/golden/gemma2-tiny-a", 0, 0, "a default");
	compare_dir("tests/golden/gemma2-tiny-a", 5, 777, "a 5 workers 777-byte chunks");
	compare_dir("tests/golden/gemma2-tiny-a", 1, 4096, "a 1 worker");
}

static void test_golden_b_sharded(void)
{
	compare_dir("tests/golden/gemma2-tiny-b", 0, 0, "b default");
	compare_dir("tests/golden/gemma2-tiny-b", 7, 65536 + 3, "b 7 workers odd chunks");
}

static char tmp_root[256];

static const char *mkmodel_path(void)
{
	static char p[512];
	const char *b = getenv("BUILD");
	snprintf(p, sizeof(p), "%s/mkmodel", b ? b : "build");
	if (access(p, X_OK) == 0)
		return p;
	if (access("build/mkmodel", X_OK) == 0)
		return "build/mkmodel";
	return NULL;
}

static void test_mkmodel_sharded_with_manifest(void)
{
	const char *mk = mkmodel_path();
	char cmd[2048], dir[512], man[600];
	if (!mk) {
		SKIP("no mkmodel binary (make all builds it)");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/mk", tmp_root);
	snprintf(cmd, sizeof(cmd), "%s --preset custom --vocab 8192 --hidden 256 --ff 768 --layers 3 --shards 3 "
		 "--out %s >/dev/null 2>&1", mk, dir);
	CHECK(system(cmd) == 0, "mkmodel failed: %s", cmd);
	snprintf(man, sizeof(man), "%s/crc32c.json", dir);
	CHECK(access(man, F_OK) == 0, "mkmodel wrote no crc32c.json");
	compare_dir(dir, 0, 0, "mkmodel default");
	compare_dir(dir, 4, (1u << 20) + 11, "mkmodel 4 workers 1 MiB+11 chunks");
}

/* ---- a backend whose memory is not host-visible to the loader ---- */

struct fake_up { void *dst; const void *src; size_t n; void (*done)(void *); void *arg; };
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct fake_up q[4096];
	int head, tail, stop, inflight;
	pthread_t th[2];
	size_t host_bytes, host_peak;
	int uploads, dones;
} fk;

static void *fake_lane(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&fk.mu);
	for (;;) {
		while (fk.head == fk.tail && !fk.stop)
			pthread_cond_wait(&fk.cv, &fk.mu);
		if (fk.head == fk.tail && fk.stop)
			break;
		struct fake_up u = fk.q[fk.head++ % 4096];
		pthread_mutex_unlock(&fk.mu);
		struct timespec ts = { 0, 200000 };	/* the copy completes later */
		nanosleep(&ts, NULL);
		memcpy(u.dst, u.src, u.n);
		memset((void *)u.src, 0xA5, u.n);	/* poison: a reused slot must not matter */
		u.done(u.arg);	/* before sync can return, as a CUDA host function on the stream */
		pthread_mutex_lock(&fk.mu);
		fk.dones++;
		fk.inflight--;
		pthread_cond_broadcast(&fk.cv);
	}
	pthread_mutex_unlock(&fk.mu);
	return NULL;
}

static void *fake_host_alloc(void *ctx, size_t n)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	fk.host_bytes += n;
	fk.host_peak = MAX(fk.host_peak, fk.host_bytes);
	pthread_mutex_unlock(&fk.mu);
	return malloc(n + sizeof(size_t));
}

static int fake_upload(void *ctx, void *dst, const void *src, size_t n, int lane, void (*done)(void *), void *arg)
{
	(void)ctx;
	(void)lane;
	pthread_mutex_lock(&fk.mu);
	fk.q[fk.tail++ % 4096] = (struct fake_up){ dst, src, n, done, arg };
	fk.uploads++;
	fk.inflight++;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
	return 0;
}

static int fake_sync(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	while (fk.inflight > 0)
		pthread_cond_wait(&fk.cv, &fk.mu);
	pthread_mutex_unlock(&fk.mu);
	return 0;
}

static void test_staging_ring_path(void)
{
	struct be_ops ops = *cpu.ops;
	struct be fake = { &ops, cpu.ctx };
	struct ld_model *ref = NULL, *m = NULL;
	struct ld_opts o;
	ops.host_visible = 0;
	ops.n_upload_lanes = 2;
	ops.host_alloc = fake_host_alloc;
	ops.upload = fake_upload;
	ops.sync = fake_sync;
	pthread_mutex_init(&fk.mu, NULL);
	pthread_cond_init(&fk.cv, NULL);
	for (int i = 0; i < 2; i++)
		pthread_create(&fk.th[i], NULL, fake_lane, NULL);
	ld_opts_default(&o);
	o.workers = 6;
	o.chunk_bytes = 8192;
	o.pinned_bytes = 4 * 8192;	/* 4 slots for 6 workers: they must wait for the ring */
	CHECK(ld_load_simple("tests/golden/gemma2-tiny-b", &cpu, NULL, &ref) == 0, "reference");
	CHECK(ld_load("tests/golden/gemma2-tiny-b", &o, &fake, NULL, &m) == 0, "ring load failed");
	if (ref && m) {
		char h1[65] = "", h2[65] = "";
		CHECK(same_model(ref, m, &cpu), "ring path arena differs");
		/* the hash reads a non-host-visible arena through copy_d2h */
		CHECK(ld_model_hash(ref, h1) == 0 && ld_model_hash(m, h2) == 0 && strcmp(h1, h2) == 0,
		      "hashes %s vs %s", h1, h2);
	}
	CHECK(fk.host_peak <= 4 * 8192, "staging memory %zu exceeds the bound", fk.host_peak);
	CHECK(fk.uploads > 100 && fk.uploads == fk.dones, "uploads %d dones %d", fk.uploads, fk.dones);
	pthread_mutex_lock(&fk.mu);
	fk.stop = 1;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
	for (int i = 0; i < 2; i++)
		pthread_join(fk.th[i], NULL);
	ld_model_destroy(ref);
	ld_model_destroy(m);
}

/*
 * The staging ring of the null backend (the GPU path without a GPU): sized
 * to what the transfer can use (one slot per worker and two uploads in
 * flight, 4 MiB chunks for local files) and resident when handed over, as
 * pinned memory is: no worker takes a first-touch fault in it. Measured
 * before: 16 x 32 MiB of malloc'd memory, 131 K page faults inside the
 * workers' reads, 0.05x of cat (bench/bench_loader_null.sh).
 */
static void *(*null_host_alloc_fn)(void *, size_t);
static size_t ring_bytes, ring_resident;
static void *recording_host_alloc(void *ctx, size_t n)
{
	void *mem = null_host_alloc_fn(ctx, n);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), np = (n + pg - 1) / pg;
	unsigned char *vec = calloc(np, 1);
	ring_bytes += n;
	if (mem && vec && mincore(mem, n, vec) == 0)
		for (size_t i = 0; i < np; i++)
			ring_resident += (vec[i] & 1) ? pg : 0;
	free(vec);
	return mem;
}

static void test_ring_sized_and_resident(void)
{
	struct be nb;
	struct be_opts bo = { .n_threads = 1 };
	struct ld_model *m = NULL;
	struct ld_opts o;
	if (be_create("null", &bo, &nb) < 0) {
		CHECK(0, "no null backend");
		return;
	}
	struct be_ops ops = *nb.ops;
	struct be rec = { &ops, nb.ctx };
	null_host_alloc_fn = nb.ops->host_alloc;
	ops.host_alloc = recording_host_alloc;
	ld_opts_default(&o);
	o.workers = 4;
	CHECK(ld_load("tests/golden/gemma2-tiny-b", &o, &rec, NULL, &m) == 0, "null load failed");
	CHECK(ring_bytes > 0 && ring_bytes <= (size_t)(4 + 2) * (4u << 20),
	      "staging ring of %zu bytes for 4 workers (want at most 6 x 4 MiB)", ring_bytes);
	CHECK(ring_resident >= ring_bytes, "only %zu of %zu ring bytes resident before the transfer", ring_resident,
	      ring_bytes);
	ld_model_destroy(m);
	be_destroy(&nb);
}

/* ---- integrity ---- */

static int copy_file(const char *from, const char *to)
{
	char *buf;
	size_t n;
	if (read_file(from, 64u << 20, &buf, &n) < 0)
		return -1;
	int rc = write_file(to, buf, n);
	free(buf);
	return rc;
}

static void copy_golden_b(const char *dir)
{
	const char *files[] = { "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
				"model.safetensors.index.json" };
	char a[600], b[600];
	mkdir(dir, 0755);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(a, sizeof(a), "tests/golden/gemma2-tiny-b/%s", files[i]);
		snprintf(b, sizeof(b), "%s/%s", dir, files[i]);
		CHECK(copy_file(a, b) == 0, "copy %s", a);
	}
}

static void flip_byte(const char *path, long back_from_end)
{
	int fd = open(path, O_RDWR);
	off_t end = lseek(fd, 0, SEEK_END);
	unsigned char c;
	CHECK(fd >= 0 && pread(fd, &c, 1, end - back_from_end) == 1, "read %s", path);
	c ^= 0x10;
	CHECK(pwrite(fd, &c, 1, end - back_from_end) == 1, "write %s", path);
	close(fd);
}

static int load_rc(const char *dir, int verify)
{
	struct ld_model *m = NULL;
	struct ld_opts o;
	ld_opts_default(&o);
	o.verify = verify;
	o.chunk_bytes = 50000;
	int rc = ld_load(dir, &o, &cpu, NULL, &m);
	ld_model_destroy(m);
	return rc;
}

static void test_manifest_catches_flipped_byte(void)
{
	char dir[512], path[600];
	snprintf(dir, sizeof(dir), "%s/flip", tmp_root);
	copy_golden_b(dir);
	CHECK(ld_write_crc_manifest(dir) == 0, "write manifest");
	CHECK(load_rc(dir, 1) == 0, "clean copy with manifest does not load");
	snprintf(path, sizeof(path), "%s/model-00002-of-00002.safetensors", dir);
	flip_byte(path, 1000);
	CHECK(load_rc(dir, 1) == ST_ECRC, "flipped weight byte not caught");
	CHECK(load_rc(dir, 0) == 0, "verify=0 should skip the check");
	flip_byte(path, 1000);	/* restore */
	CHECK(load_rc(dir, 1) == 0, "restored copy does not load");
	snprintf(path, sizeof(path), "%s/config.json", dir);
	char *cfg;
	size_t n;
	CHECK(read_file(path, 1 << 20, &cfg, &n) == 0, "read config");
	char *c2 = malloc(n + 2);	/* same JSON, one more byte: parses, but not what was recorded */
	memcpy(c2, cfg, n);
	c2[n] = '\n';
	CHECK(write_file(path, c2, n + 1) == 0, "write config");
	free(c2);
	CHECK(load_rc(dir, 1) == ST_ECRC, "changed config.json not caught");
	write_file(path, cfg, n);
	free(cfg);
	/* a manifest without an entry for a shard is refused */
	snprintf(path, sizeof(path), "%s/crc32c.json", dir);
	const char *partial = "{\"format\":\"gemma-run-crc32c-1\",\"files\":{}}";
	write_file(path, partial, strlen(partial));
	CHECK(load_rc(dir, 1) == ST_ECRC, "manifest without shard entries accepted");
}

static void test_truncated_shard(void)
{
	char dir[512], path[600];
	snprintf(dir, sizeof(dir), "%s/trunc", tmp_root);
	copy_golden_b(dir);
	snprintf(path, sizeof(path), "%s/model-00001-of-00002.safetensors", dir);
	struct stat sb;
	stat(path, &sb);
	CHECK(truncate(path, sb.st_size - 10) == 0, "truncate");
	CHECK(load_rc(dir, 1) == ST_EFORMAT, "truncated shard not refused");
	CHECK(load_rc("tests/golden/no-such-model", 1) == ST_ENOENT, "missing dir");
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
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/gr-ldtest-XXXXXX");
	if (!mkdtemp(tmp_root)) {
		printf("FAIL setup: mkdtemp\n");
		return 1;
	}
	RUN(test_golden_a);
	RUN(test_golden_b_sharded);
	RUN(test_mkmodel_sharded_with_manifest);
	RUN(test_staging_ring_path);
	RUN(test_ring_sized_and_resident);
	RUN(test_manifest_catches_flipped_byte);
	RUN(test_truncated_shard);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp_root);
	be_destroy(&cpu);
	return th_done();
}
