/*
 * pipeline.c - the parallel loader, ld_load: any source (file, http(s),
 * gcs; source.c picks it) into one backend arena. The tensor table and
 * the arena's layout are ld_model.c's; the sequential reference loader
 * is load_simple.c.
 *
 * Stages (timed into struct ld_progress), in the order ld_load (at the
 * end of this file) calls them:
 *   metadata   small files whole (config.json, index, crc32c.json), each shard opened with one ranged read of its
 *              head (size, generation, crc32c come with it), headers parsed
 *              and validated (safetensors.c, model_format.c), tensors placed
 *              (ld_model.c), the caller's check (ld_opts.check: flags and
 *              memory plan against the config and sizes), the arena
 *              allocated, chunks planned;
 *   first_byte from the start of the transfer to the first tensor data
 *              byte received (stamped by the source as it lands: a curl
 *              body callback or a pread piece, not a completed chunk);
 *   transfer   W workers take chunks in file order (any completion order);
 *              the first worker free fetches tokenizer.json whole (one more
 *              object for the pool, beside the shards' first chunks);
 *              each reads its chunk straight into its final place
 *              (host-visible backend) or into a slot of the staging ring
 *              (ring.c: host_alloc'd, pinned) that goes back to the ring
 *              when the backend's upload calls done; a chunk CRC-32C is
 *              taken while the bytes are hot when a checksum exists to
 *              compare with;
 *   sync       the backend's sync (all uploads landed);
 *   verify     per shard: header CRC combined with the chunk CRCs in
 *              offset order, compared with the GCS object crc32c and the
 *              crc32c.json entry (read from every source that has one);
 *              the weakest check passed goes in ld_model.verified and is
 *              logged once.
 * Retries: a retryable read resumes from the last byte received (same
 * generation), full-jitter exponential backoff (100 ms doubling, 8 s cap);
 * the budget is a time, retry_deadline_s from the read's first failure
 * (and at most max_retries), never past the load's deadline. Concurrency
 * is AIMD (throttle, aimd_success): a 429/503 halves the workers allowed,
 * a run of completed chunk reads adds one back (each read below half), up to --loader-workers;
 * every change is recorded in struct ld_progress (conc[]). The first
 * fatal error stops every transfer and is reported once, naming the
 * object, the offset and the reason. The ring is allocated once, on a
 * helper thread, while the metadata stage runs.
 *
 * Function map: pipe_init, open_source, ring_start, read_meta, make_model,
 * plan, (ld_ring_wait), run_workers -> worker_main -> read_range ->
 * retry_or_fail / throttle, sync_uploads, verify, finish.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "loader/crc32c.h"
#include "loader/ld_internal.h"
#include "loader/ld_model.h"
#include "loader/loader.h"
#include "loader/manifest.h"
#include "loader/model_desc.h"
#include "loader/pipeline.h"
#include "loader/ring.h"
#include "loader/source.h"

#define HEAD_WANT (256u << 10)
#define SMALL_MAX (64u << 20)
#define TOKENIZER_MAX (256u << 20)
#define LD_CHUNK_NET (32u << 20)	/* the default chunk of gs:// and http(s):// (a request each) */
#define LD_CHUNK_LOCAL (4u << 20)	/* ... and of local files (bench/bench_loader_null.sh) */
#define LD_BACKOFF_CAP_S 8.0	/* full-jitter exponential backoff: 100 ms doubling, capped */

/* metadata stage results */
struct meta {
	char *cfg, *index, *tok, *man_json;
	size_t cfg_len, index_len, tok_len, man_len;
	struct ld_manifest man;
	int have_man;
	uint32_t *head_crc;		/* per shard: CRC-32C of its 8 + N header bytes */
};

struct pipe {
	struct ld_opts o;		/* resolved (ld_opts_resolve), chunk size fitted to the ring */
	struct ld_src *src;
	void *conn;			/* the main thread's connection (metadata stage) */
	struct rng rg;			/* the main thread's backoff jitter */
	struct ld_desc d;
	struct meta mt;
	size_t *base;			/* per shard: arena offset (ld_place_tensors) */
	struct be *be;
	struct ld_progress *pr;
	struct ld_obj *objs;
	struct ld_chunk *chunks;
	int n_chunks;
	uint32_t *chunk_crc;
	int *need_crc;			/* per shard */
	char *arena;
	int max_retries;
	double deadline;
	_Atomic int next, abort, allowed, throttles, tok_claimed;
	pthread_mutex_t aimd_mu;		/* the concurrency changes below */
	int succ_run;				/* chunk reads since the last change */
	int n_workers;				/* started (the ceiling of allowed) */
	double t_last_decrease;
	pthread_mutex_t err_mu;
	int err_rc;
	char err[LD_ERR_MAX * 2];
	struct ld_ring ring;		/* staging buffers (not host-visible backends) */
	double t0, t1;			/* start; end of the metadata stage */
};

struct worker {
	struct pipe *p;
	int id;
	pthread_t th;
};

/* ---- errors ---- */

static int fail(struct pipe *p, int rc, const char *where, uint64_t off, const char *why)
{
	pthread_mutex_lock(&p->err_mu);
	if (!p->err_rc && rc != ST_ECANCEL) {
		p->err_rc = rc;
		snprintf(p->err, sizeof(p->err), "%.1000s at offset %" PRIu64 ": %.900s", where, off, why);
	}
	pthread_mutex_unlock(&p->err_mu);
	atomic_store(&p->abort, 1);
	ld_ring_wake_all(&p->ring);
	return rc;
}

/*
 * AIMD concurrency (as TCP, and GCS's request-rate guidance): a 429/503
 * halves the number of workers allowed to take chunks, at most once per
 * AIMD_DECREASE_GAP_S (the answers of one burst arrive together); every
 * AIMD_RUN chunk reads completed since the last change add one worker
 * again, up to --loader-workers (below half of it, every read adds one). Workers above the limit wait, they do not
 * exit, so a short storm costs its own length and a ramp, not the load.
 */
#define AIMD_DECREASE_GAP_S 0.25
#define AIMD_RUN 2

static void aimd_record(struct pipe *p, int workers)	/* under aimd_mu */
{
	struct ld_progress *pr = p->pr;
	if (!pr)
		return;
	atomic_store(&pr->workers, workers);
	if (workers < pr->workers_min)
		pr->workers_min = workers;
	int n = atomic_load(&pr->n_conc);
	if (n < LD_CONC_MAX) {
		pr->conc[n].t = now_sec() - p->t0;
		pr->conc[n].workers = workers;
		atomic_store(&pr->n_conc, n + 1);
	}
}

static void throttle(struct pipe *p)
{
	int t = atomic_fetch_add(&p->throttles, 1) + 1;
	if (p->pr)
		atomic_fetch_add(&p->pr->throttles, 1);
	pthread_mutex_lock(&p->aimd_mu);
	double now = now_sec();
	int a = atomic_load(&p->allowed), na = MAX(1, a / 2);
	p->succ_run = 0;
	if (na < a && now - p->t_last_decrease >= AIMD_DECREASE_GAP_S) {
		p->t_last_decrease = now;
		atomic_store(&p->allowed, na);
		if (p->pr)
			atomic_fetch_add(&p->pr->decreases, 1);
		aimd_record(p, na);
		log_warn("loader: %d answers 429/503 so far; lowering concurrency to %d", t, na);
	}
	pthread_mutex_unlock(&p->aimd_mu);
}

/* A chunk read completed: after AIMD_RUN of them, one more worker (up to the maximum). */
static void aimd_success(struct pipe *p)
{
	int max_workers = p->n_workers;
	pthread_mutex_lock(&p->aimd_mu);
	int a = atomic_load(&p->allowed);
	/* below half the ceiling every completed read adds one (a slow start, as TCP after a loss) */
	if (a < max_workers && (++p->succ_run >= AIMD_RUN || 2 * a < max_workers)) {
		p->succ_run = 0;
		atomic_store(&p->allowed, a + 1);
		if (p->pr)
			atomic_fetch_add(&p->pr->increases, 1);
		aimd_record(p, a + 1);
		if (a + 1 == max_workers)
			log_info("loader: concurrency back to %d", a + 1);
	}
	pthread_mutex_unlock(&p->aimd_mu);
}

static void sleep_s(struct pipe *p, double s)
{
	double end = now_sec() + s;
	while (!atomic_load(&p->abort)) {
		double left = end - now_sec();
		if (left <= 0)
			break;
		struct timespec ts = { 0, (long)(MIN(left, 0.05) * 1e9) };
		nanosleep(&ts, NULL);
	}
}

/*
 * After a failed attempt: 0 once the backoff has been slept and the caller
 * should try again, or the (recorded) fatal status. The budget is a time:
 * t_first is when this read first failed; no retry starts after t_first +
 * retry_deadline_s (the last backoff is cut to end there), none after
 * max_retries, none past the load's deadline.
 */
static int retry_or_fail(struct pipe *p, struct rng *rg, int rc, int attempt, double t_first, int throttled,
			 const char *where, uint64_t off, const char *why)
{
	char msg[LD_ERR_MAX + 128];
	if (throttled)
		throttle(p);
	if (atomic_load(&p->abort))
		return ST_ECANCEL;
	if (rc != ST_ENET && rc != ST_ETIMEOUT)
		return fail(p, rc, where, off, why);
	if (attempt >= p->max_retries) {
		snprintf(msg, sizeof(msg), "gave up after %d retries: %.900s", attempt, why);
		return fail(p, rc, where, off, msg);
	}
	double cap = MIN(LD_BACKOFF_CAP_S, 0.1 * (double)(1u << MIN(attempt, 10)));
	double wait = rng_uniform(rg) * cap, now = now_sec(), left = t_first + p->o.retry_deadline_s - now;
	if (left <= 0) {
		snprintf(msg, sizeof(msg), "gave up after %d retries in %.1f s (retry deadline %g s): %.900s", attempt,
			 now - t_first, p->o.retry_deadline_s, why);
		return fail(p, rc, where, off, msg);
	}
	wait = MIN(wait, left);		/* the last retry lands on the deadline, not past it */
	if (p->deadline > 0 && now + wait > p->deadline) {
		snprintf(msg, sizeof(msg), "the load's deadline passed while retrying: %.900s", why);
		return fail(p, ST_ETIMEOUT, where, off, msg);
	}
	if (p->pr)
		atomic_fetch_add(&p->pr->retries, 1);
	log_warn("loader: %s at offset %" PRIu64 ": %s; retry %d in %.2f s (%.0f s of %g s retry budget left)", where,
		 off, why, attempt + 1, wait, left, p->o.retry_deadline_s);
	sleep_s(p, wait);
	return atomic_load(&p->abort) ? ST_ECANCEL : 0;
}

/*
 * Reads [off, off+n) of object o into dst, retrying retryable failures from
 * the last byte received. Fatal errors are recorded with fail().
 */
static int read_range(struct pipe *p, void *conn, struct rng *rg, const struct ld_obj *o, uint64_t off,
		      size_t n, char *dst, uint32_t *crc)
{
	size_t done = 0;
	double t_first = 0;
	for (int attempt = 0;; attempt++) {
		struct ld_rd_info info = { 0 };
		char why[LD_ERR_MAX] = "";
		size_t got = 0;
		int rc = p->src->vt->read(p->src, conn, o, off + done, n - done, dst + done, &got, crc, &info,
					  why, sizeof(why));
		done += got;
		if ((rc == 0 || rc == ST_ENET || rc == ST_ETIMEOUT) && done == n)
			return 0;	/* (a transfer may fail after its last byte: nothing is left to read) */
		if (rc == 0) {	/* a source that stopped early without an error */
			snprintf(why, sizeof(why), "short read: %zu of %zu bytes", done, n);
			rc = ST_ENET;
		}
		if (attempt == 0)
			t_first = now_sec();
		if ((rc = retry_or_fail(p, rg, rc, attempt, t_first, info.throttled, o->where, off + done, why)) < 0)
			return rc;
	}
}

static int fetch_tokenizer(struct pipe *p, void *conn, struct rng *rg);

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pipe *p = w->p;
	const struct be_ops *ops = p->be->ops;
	struct rng rg;
	void *conn = NULL;
	int rc;

	rng_seed(&rg, (uint64_t)w->id * 7919 + (uint64_t)(now_sec() * 1e6));
	if ((rc = p->src->vt->conn_create(p->src, &conn)) < 0) {
		fail(p, rc, p->src->display, 0, "cannot create a connection");
		return NULL;
	}
	while (!atomic_load(&p->abort)) {
		if (w->id >= atomic_load(&p->allowed)) {	/* throttled: wait for the limit to grow back */
			if (atomic_load(&p->next) >= p->n_chunks)
				break;
			sleep_s(p, 0.01);
			continue;
		}
		if (!atomic_load(&p->tok_claimed) && !atomic_exchange(&p->tok_claimed, 1)) {
			if (fetch_tokenizer(p, conn, &rg) < 0)	/* one more object, beside the shards */
				break;
			continue;
		}
		int i = atomic_fetch_add(&p->next, 1), slot = -1;
		if (i >= p->n_chunks)
			break;
		const struct ld_chunk *ck = &p->chunks[i];
		char *dst = p->arena + ck->arena_off;
		if (!ops->host_visible) {
			if ((slot = ld_ring_get(&p->ring)) < 0)
				break;
			dst = ld_ring_buf(&p->ring, slot);
		}
		uint32_t crc = 0;
		rc = read_range(p, conn, &rg, &p->objs[ck->obj], ck->file_off, ck->len, dst,
				p->need_crc[ck->obj] ? &crc : NULL);
		p->chunk_crc[i] = crc;
		if (rc == 0 && !ops->host_visible) {
			rc = ops->upload(p->be->ctx, p->arena + ck->arena_off, dst, ck->len,
					 i % MAX(1, ops->n_upload_lanes), ld_ring_put, &p->ring.slots[slot]);
			if (rc < 0)
				fail(p, rc, p->objs[ck->obj].where, ck->file_off, "upload to the device failed");
			else
				slot = -1;	/* the backend gives it back */
		}
		if (slot >= 0)
			ld_ring_put(&p->ring.slots[slot]);
		if (rc < 0)
			break;
		aimd_success(p);
		if (p->pr)
			atomic_fetch_add(&p->pr->bytes_done, ck->len);
	}
	p->src->vt->conn_destroy(conn);
	return NULL;
}

int ld_plan_chunks(int n_obj, const uint64_t *data_start, const uint64_t *data_len, const size_t *arena_base,
		   size_t chunk, struct ld_chunk **out, int *n_out)
{
	uint64_t total = 0;
	int n = 0;
	*out = NULL;
	*n_out = 0;
	if (chunk == 0)
		return ST_EINVAL;
	for (int s = 0; s < n_obj; s++) {
		total += (data_len[s] + chunk - 1) / chunk;
		if (total > (uint64_t)INT32_MAX / 2)
			return ST_ERANGE;
	}
	struct ld_chunk *c = calloc(total ? (size_t)total : 1, sizeof(*c));
	if (!c)
		return ST_ENOMEM;
	for (int s = 0; s < n_obj; s++) {
		int k = 0;
		for (uint64_t o = 0; o < data_len[s]; o += chunk) {
			c[n].obj = s;
			c[n].index_in_obj = k++;
			c[n].file_off = data_start[s] + o;
			c[n].arena_off = arena_base[s] + (size_t)o;
			c[n].len = (size_t)MIN((uint64_t)chunk, data_len[s] - o);
			n++;
		}
	}
	*out = c;
	*n_out = n;
	return 0;
}

/*
 * A host-visible arena is filled by many threads at once: with 4 KiB pages
 * that is one page fault per 4 KiB, serialised on the process's memory map
 * (measured: 1.3 M faults, 8 s for 5 GB with 16 workers on 2 cores). Ask
 * for transparent huge pages on the 2 MiB-aligned interior; a hint only.
 */
static void hint_huge_pages(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	const uintptr_t huge = 2u << 20;
	uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + n) & ~(huge - 1);
	if (b > a)
		(void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
	(void)p;
	(void)n;
#endif
}

/* ---- metadata stage ---- */

static int fetch_opt(struct pipe *p, void *conn, struct rng *rg, const char *name, size_t max, char **out,
		     size_t *len, int required)
{
	char where[LD_NAME_MAX * 2];
	size_t dl = strlen(p->src->display);
	snprintf(where, sizeof(where), "%.*s/%s", (int)(dl && p->src->display[dl - 1] == '/' ? dl - 1 : dl),
		 p->src->display, name);
	double t_first = now_sec();
	for (int attempt = 0;; attempt++) {
		char why[LD_ERR_MAX] = "";
		int rc = p->src->vt->fetch_whole(p->src, conn, name, max, out, len, why, sizeof(why));
		if (rc == 0 || (rc == ST_ENOENT && !required))
			return 0;
		if (rc == ST_ENOENT)
			snprintf(why, sizeof(why), "not found");
		if (attempt == 0)
			t_first = now_sec();
		if ((rc = retry_or_fail(p, rg, rc, attempt, t_first, 0, where, 0, why)) < 0)
			return rc;
	}
}

static int check_small(struct pipe *p, const struct meta *mt, const char *name, const char *buf, size_t len)
{
	const struct ld_manifest_entry *e;
	char where[LD_NAME_MAX * 2];
	if (!buf || !mt->have_man || !(e = ld_manifest_find(&mt->man, name)))
		return 0;
	snprintf(where, sizeof(where), "%.1000s/%s", p->src->base, name);
	if (e->size != len || e->crc32c != crc32c(0, buf, len))
		return fail(p, ST_ECRC, where, 0, "does not match its crc32c.json entry");
	return 0;
}

/* tokenizer.json, whole (it is optional), and its crc32c.json entry: a job of the transfer's pool. */
static int fetch_tokenizer(struct pipe *p, void *conn, struct rng *rg)
{
	int rc = fetch_opt(p, conn, rg, "tokenizer.json", TOKENIZER_MAX, &p->mt.tok, &p->mt.tok_len, 0);
	return rc < 0 ? rc : check_small(p, &p->mt, "tokenizer.json", p->mt.tok, p->mt.tok_len);
}

static int read_meta(struct pipe *p)
{
	void *conn = p->conn;
	struct rng *rg = &p->rg;
	struct ld_desc *d = &p->d;
	struct meta *mt = &p->mt;
	char why[LD_ERR_MAX] = "";
	struct ld_index ix = { 0 };
	char *head = NULL;
	int rc;

	if ((rc = fetch_opt(p, conn, rg, "config.json", SMALL_MAX, &mt->cfg, &mt->cfg_len, 1)) < 0 ||
	    (rc = fetch_opt(p, conn, rg, "model.safetensors.index.json", SMALL_MAX, &mt->index, &mt->index_len, 0)) < 0)
		return rc;
	/* every source, gs:// too: the object CRC only says the bytes arrived as stored */
	if (p->o.verify &&
	    (rc = fetch_opt(p, conn, rg, "crc32c.json", SMALL_MAX, &mt->man_json, &mt->man_len, 0)) < 0)
		return rc;
	if (mt->man_json) {
		if ((rc = ld_manifest_parse(mt->man_json, mt->man_len, &mt->man, why, sizeof(why))) < 0)
			return fail(p, rc, "crc32c.json", 0, why);
		mt->have_man = 1;
	}
	if ((rc = check_small(p, mt, "config.json", mt->cfg, mt->cfg_len)) < 0 ||
	    (rc = check_small(p, mt, "model.safetensors.index.json", mt->index, mt->index_len)) < 0)
		return rc;
	/* the index first, so that a failure of ld_desc_from_parts is config.json's */
	if (mt->index && (rc = ld_index_parse(mt->index, mt->index_len, &ix, why, sizeof(why))) < 0)
		return fail(p, rc, "model.safetensors.index.json", 0, why);
	if ((rc = ld_desc_from_parts(mt->cfg, mt->cfg_len, mt->index, mt->index_len, d, why, sizeof(why))) < 0) {
		fail(p, rc, "config.json", 0, why);
		goto out;
	}
	d->shards = calloc((size_t)d->n_shards, sizeof(*d->shards));
	d->shard_sizes = calloc((size_t)d->n_shards, sizeof(*d->shard_sizes));
	p->objs = calloc((size_t)d->n_shards, sizeof(*p->objs));
	mt->head_crc = calloc((size_t)d->n_shards, sizeof(*mt->head_crc));
	head = malloc(HEAD_WANT);
	if (!d->shards || !d->shard_sizes || !p->objs || !mt->head_crc || !head) {
		rc = ST_ENOMEM;
		goto out;
	}
	for (int s = 0; s < d->n_shards; s++)
		p->objs[s].fd = -1;
	for (int s = 0; s < d->n_shards; s++) {
		struct ld_obj *ob = &p->objs[s];
		uint64_t hlen;
		size_t got = 0;
		double t_first = 0;
		for (int attempt = 0;; attempt++) {
			rc = p->src->vt->open_obj(p->src, conn, d->shard_names[s], ob, head, HEAD_WANT, &got, why,
						  sizeof(why));
			if (rc == 0)
				break;
			ld_obj_release(ob);
			if (attempt == 0)
				t_first = now_sec();
			if ((rc = retry_or_fail(p, rg, rc, attempt, t_first, 0, ob->where[0] ? ob->where : d->shard_names[s],
						0, why)) < 0)
				goto out;
		}
		if (got < 8 && ob->size >= 8) {	/* a short answer to the head read: the length prefix first */
			if ((rc = read_range(p, conn, rg, ob, got, 8 - got, head + got, NULL)) < 0)
				goto out;
			got = 8;
		}
		if (got < 8 || (rc = st_header_len((uint8_t *)head, ob->size, &hlen, why, sizeof(why))) < 0) {
			fail(p, ST_EFORMAT, ob->where, 0, got < 8 ? "shorter than a safetensors header" : why);
			rc = ST_EFORMAT;
			goto out;
		}
		if (8 + hlen > got) {	/* a server may answer the head read short: never below HEAD_WANT */
			char *h2 = realloc(head, (size_t)MAX(8 + hlen, (uint64_t)HEAD_WANT));
			if (!h2) {
				rc = ST_ENOMEM;
				goto out;
			}
			head = h2;
			if ((rc = read_range(p, conn, rg, ob, got, (size_t)(8 + hlen - got), head + got, NULL)) < 0)
				goto out;
		}
		if ((rc = st_parse_header(head + 8, (size_t)hlen, ob->size, &d->shards[s], why, sizeof(why))) < 0) {
			fail(p, rc, ob->where, 8, why);
			goto out;
		}
		d->shard_sizes[s] = ob->size;
		d->total_tensor_bytes += d->shards[s].data_len;
		mt->head_crc[s] = crc32c(0, head, (size_t)(8 + hlen));
		if (hlen + 8 > HEAD_WANT) {
			char *h3 = realloc(head, HEAD_WANT);
			if (h3)
				head = h3;
		}
	}
	if ((rc = g2_validate(&d->cfg, d->shards, d->n_shards, mt->index ? &ix : NULL, p->o.allow_unused_tensors, why,
			       sizeof(why))) < 0)
		fail(p, rc, p->src->display, 0, why);
out:
	free(head);
	ld_index_release(&ix);
	return rc;
}

static void meta_release(struct meta *mt)
{
	free(mt->cfg);
	free(mt->index);
	free(mt->tok);
	free(mt->man_json);
	free(mt->head_crc);
	ld_manifest_release(&mt->man);
}

/* ---- verify stage ---- */

static int verify(struct pipe *p, struct ld_model *m)
{
	const struct ld_desc *d = &p->d;
	const struct meta *mt = &p->mt;
	int level = 2;	/* the weakest check all shards passed: 2 manifest, 1 object CRC, 0 sizes */
	for (int s = 0; s < d->n_shards; s++) {
		const struct ld_obj *ob = &p->objs[s];
		const struct ld_manifest_entry *e = mt->have_man ? ld_manifest_find(&mt->man, ob->name) : NULL;
		uint32_t crc = mt->head_crc[s];
		char why[512];
		if (!p->o.verify) {
			level = 0;
			continue;
		}
		if (mt->have_man && !e)
			return fail(p, ST_ECRC, ob->where, 0, "crc32c.json has no entry for this shard");
		if (!ob->has_crc && !e) {
			level = 0;
			continue;
		}
		level = MIN(level, e ? 2 : 1);
		for (int i = 0; i < p->n_chunks; i++)
			if (p->chunks[i].obj == s)
				crc = crc32c_combine(crc, p->chunk_crc[i], p->chunks[i].len);
		if (e && e->size != ob->size) {
			snprintf(why, sizeof(why), "size %" PRIu64 " but crc32c.json says %" PRIu64, ob->size, e->size);
			return fail(p, ST_EIO, ob->where, 0, why);
		}
		/* the object CRC first (a transfer fault), then the manifest (changed before or after upload) */
		for (int k = 0; k < 2; k++) {
			char a[9], b[9];
			uint32_t expect = k == 0 ? ob->crc32c : e ? e->crc32c : 0;
			if ((k == 0 && !ob->has_crc) || (k == 1 && !e) || crc == expect)
				continue;
			crc32c_to_base64(crc, a);
			crc32c_to_base64(expect, b);
			if (k == 0)
				snprintf(why, sizeof(why), "crc32c mismatch: read %s, object metadata says %s", a, b);
			else
				snprintf(why, sizeof(why), "crc32c mismatch: read %s, crc32c.json says %s%s", a, b,
					 ob->has_crc ? " (the stored object matches what was read: it was changed or "
						       "corrupted after crc32c.json was written)" : "");
			return fail(p, ST_ECRC, ob->where, 0, why);
		}
	}
	m->verified = level == 2 ? LD_VERIFIED_MANIFEST : level == 1 ? LD_VERIFIED_OBJECT : LD_VERIFIED_SIZES;
	if (level == 2)
		log_info("weights verified end to end: every shard against crc32c.json");
	else
		log_warn("weights NOT verified end to end (%s): %s; write crc32c.json beside them "
			 "(gemma-run checksum DIR) so every byte is checked", m->verified,
			 !p->o.verify ? "verification is off (--no-verify)" :
			 level == 1 ? "only the server's object CRC-32C, which a corruption before upload passes"
				    : "only sizes were checked");
	return 0;
}

/* ---- ld_load, step by step ---- */

/* Options resolved, chunks fitted to the ring, the shared state set, progress started. */
static void pipe_init(struct pipe *p, const struct ld_opts *opts, struct be *be, struct ld_progress *pr)
{
	memset(p, 0, sizeof(*p));
	p->t0 = now_sec();
	ld_opts_resolve(opts, &p->o);
	pthread_mutex_init(&p->err_mu, NULL);
	pthread_mutex_init(&p->aimd_mu, NULL);
	p->be = be;
	p->pr = pr;
	p->max_retries = p->o.max_retries;
	p->deadline = p->o.deadline_s > 0 ? p->t0 + p->o.deadline_s : 0;
	atomic_store(&p->allowed, p->o.workers);
	rng_seed(&p->rg, (uint64_t)(p->t0 * 1e6));
	if (pr) {
		pr->t_start = p->t0;
		atomic_store(&pr->workers, p->o.workers);
	}
}

/*
 * The chunk size (the caller's, else by source: a network read pays a
 * request per chunk, a local one only a copy, and small chunks keep the
 * staging ring's working set in the CPU's caches), fitted to the ring; then
 * for a non-host-visible backend the staging ring (ring.c), allocated on a
 * helper thread while metadata is read. The ring holds what the transfer
 * can use at once: one slot per worker plus two uploads in flight, within
 * --loader-pinned-mb (at least two slots).
 */
static int ring_start(struct pipe *p)
{
	if (p->o.chunk_bytes == 0)
		p->o.chunk_bytes = p->src->local ? LD_CHUNK_LOCAL : LD_CHUNK_NET;
	if (p->be->ops->host_visible)
		return 0;
	if (p->o.chunk_bytes > p->o.pinned_bytes / 2) {
		size_t c = MAX(p->o.pinned_bytes / 2, (size_t)1);
		log_warn("loader: %zu-byte chunks do not fit twice in the %zu-byte staging ring; using %zu-byte chunks",
			 p->o.chunk_bytes, p->o.pinned_bytes, c);
		p->o.chunk_bytes = c;
	}
	size_t slots = MIN(p->o.pinned_bytes / p->o.chunk_bytes, (size_t)p->o.workers + 2);
	return ld_ring_start(&p->ring, p->be, p->o.chunk_bytes, (int)MAX((size_t)2, MIN(slots, (size_t)4096)),
			     &p->abort);
}

/* The byte source for uri (source.c) and the main thread's connection. */
static int open_source(struct pipe *p, const char *uri)
{
	int rc;
	if ((rc = ld_src_open(uri, &p->o, &p->src)) < 0)
		return rc;
	p->src->abort = &p->abort;
	p->src->deadline = p->deadline;
	return p->src->vt->conn_create(p->src, &p->conn);
}

/* The model: tensor table (ld_place_tensors) and its arena. */
static int make_model(struct pipe *p, struct ld_model **out)
{
	struct be *be = p->be;
	struct ld_model *m;
	int rc;

	if (!(m = *out = calloc(1, sizeof(*m))) || !(p->base = calloc((size_t)p->d.n_shards, sizeof(*p->base))))
		return ST_ENOMEM;
	m->cfg = p->d.cfg;
	m->be = be;
	if ((rc = ld_place_tensors(m, &p->d, p->base)) < 0)
		return rc;
	if (p->o.check) {	/* the caller's checks, before the arena and the first data byte */
		char why[LD_ERR_MAX] = "";
		if ((rc = p->o.check(p->o.check_user, &m->cfg, m->arena_bytes, why, sizeof(why))) < 0)
			return fail(p, rc, p->src->display, 0, why[0] ? why : "refused by the caller's check");
	}
	if (!(m->arena = be->ops->alloc(be->ctx, m->arena_bytes)))
		return log_err(ST_ENOMEM, "cannot allocate the %zu-byte weight arena", m->arena_bytes);
	p->arena = m->arena;
	if (be->ops->host_visible)
		hint_huge_pages(m->arena, m->arena_bytes);
	return 0;
}

/* Cuts every shard's data region into chunks (ld_plan_chunks) and decides which need a CRC. */
static int plan(struct pipe *p)
{
	const struct ld_desc *d = &p->d;
	uint64_t *dstart = calloc((size_t)d->n_shards, sizeof(*dstart));
	uint64_t *dlen = calloc((size_t)d->n_shards, sizeof(*dlen));
	int rc = ST_ENOMEM;

	if (!dstart || !dlen || !(p->need_crc = calloc((size_t)d->n_shards, sizeof(*p->need_crc))))
		goto out;
	for (int s = 0; s < d->n_shards; s++) {
		dstart[s] = d->shards[s].data_start;
		dlen[s] = d->shards[s].data_len;
		p->need_crc[s] = p->o.verify && (p->objs[s].has_crc || p->mt.have_man);
	}
	if ((rc = ld_plan_chunks(d->n_shards, dstart, dlen, p->base, p->o.chunk_bytes, &p->chunks,
				 &p->n_chunks)) < 0) {
		if (rc == ST_ERANGE)
			fail(p, rc, p->src->display, 0, "too many chunks for this chunk size (raise --loader-chunk-mb)");
		goto out;
	}
	if (!(p->chunk_crc = calloc((size_t)p->n_chunks + 1, sizeof(*p->chunk_crc)))) {
		rc = ST_ENOMEM;
		goto out;
	}
	if (p->pr)
		atomic_store(&p->pr->bytes_total, d->total_tensor_bytes);
	rc = 0;
out:
	free(dstart);
	free(dlen);
	return rc;
}

/*
 * The transfer stage: starts the workers (worker_main: chunks, retries,
 * throttling, uploads) and waits for them. Their errors are recorded in
 * p->err_rc (returned by sync_uploads); ST_ENOMEM when none could start.
 */
static int run_workers(struct pipe *p)
{
	int nw = (int)MIN((size_t)p->o.workers, (size_t)p->n_chunks + 1), n_started = 0;	/* + tokenizer.json */
	struct worker *ws = calloc((size_t)nw, sizeof(*ws));
	double t2;

	p->src->t_first_byte = 0;	/* the sources stamp the first data byte that lands (LD_FIRST_BYTE) */
	atomic_store(&p->src->first_byte_armed, 1);
	p->n_workers = nw;
	atomic_store(&p->allowed, nw);
	pthread_mutex_lock(&p->aimd_mu);
	if (p->pr)
		p->pr->workers_max = p->pr->workers_min = nw;
	aimd_record(p, nw);
	pthread_mutex_unlock(&p->aimd_mu);
	if (!ws)
		return ST_ENOMEM;
	for (int i = 0; i < nw; i++) {
		ws[i].p = p;
		ws[i].id = i;
		if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
			fail(p, ST_ENOMEM, p->src->display, 0, "cannot start a worker thread");
			break;
		}
		n_started++;
	}
	for (int i = 0; i < n_started; i++)
		pthread_join(ws[i].th, NULL);
	free(ws);
	if (!p->err_rc && (atomic_load(&p->next) < p->n_chunks || !atomic_load(&p->tok_claimed)) &&
	    !atomic_load(&p->abort))
		fail(p, ST_EIO, p->src->display, 0, "workers stopped before every chunk was read");
	t2 = now_sec();
	if (p->pr) {
		p->pr->stage_s[LD_STAGE_FIRST_BYTE] = p->src->t_first_byte > 0 ? p->src->t_first_byte - p->t1 : 0;
		p->pr->stage_s[LD_STAGE_TRANSFER] = t2 - p->t1;
	}
	return 0;
}

/* The sync stage, also after a failed transfer: in-flight uploads land before buffers go. */
static int sync_uploads(struct pipe *p)
{
	double t2 = now_sec();
	int rc = p->be->ops->sync(p->be->ctx);
	if (p->pr)
		p->pr->stage_s[LD_STAGE_SYNC] = now_sec() - t2;
	if (p->err_rc)
		return p->err_rc;
	if (rc < 0)
		return fail(p, rc, p->src->display, 0, "device sync after the uploads failed");
	return 0;
}

/* Logs a failure once, publishes the outcome, and frees everything but the model. */
static int finish(struct pipe *p, const char *uri, int rc)
{
	ld_ring_wait(&p->ring);	/* its allocation failure, if any, is logged before ours */
	if (rc < 0) {
		if (p->err_rc)
			rc = p->err_rc;
		log_err(rc, "load of '%s' failed: %s", uri, p->err[0] ? p->err : st_str(rc));
		if (p->pr)
			snprintf(p->pr->err, sizeof(p->pr->err), "%.1000s", p->err[0] ? p->err : st_str(rc));
	}
	if (p->pr)
		atomic_store(&p->pr->done, rc < 0 ? -1 : 1);
	ld_ring_release(&p->ring);
	if (p->src && p->conn)
		p->src->vt->conn_destroy(p->conn);
	for (int s = 0; p->objs && s < p->d.n_shards; s++)
		ld_obj_release(&p->objs[s]);
	free(p->objs);
	ld_src_destroy(p->src);
	free(p->base);
	free(p->need_crc);
	free(p->chunks);
	free(p->chunk_crc);
	meta_release(&p->mt);
	ld_desc_release(&p->d);
	pthread_mutex_destroy(&p->err_mu);
	pthread_mutex_destroy(&p->aimd_mu);
	return rc;
}

int ld_load(const char *uri, const struct ld_opts *opts, struct be *be, struct ld_progress *pr,
	    struct ld_model **out)
{
	struct pipe p;
	struct ld_model *m = NULL;
	int rc;

	*out = NULL;
	pipe_init(&p, opts, be, pr);
	/* metadata stage */
	if ((rc = open_source(&p, uri)) < 0 || (rc = ring_start(&p)) < 0 || (rc = read_meta(&p)) < 0 ||
	    (rc = make_model(&p, &m)) < 0 || (rc = plan(&p)) < 0 || (rc = ld_ring_wait(&p.ring)) < 0)
		goto out;
	p.t1 = now_sec();
	if (pr)
		pr->stage_s[LD_STAGE_META] = p.t1 - p.t0;
	/* transfer, sync, verify */
	if ((rc = run_workers(&p)) < 0 || (rc = sync_uploads(&p)) < 0)
		goto out;
	m->tokenizer_json = p.mt.tok;	/* fetched by the pool, beside the shards */
	m->tokenizer_len = p.mt.tok_len;
	p.mt.tok = NULL;
	double t3 = now_sec();
	if ((rc = verify(&p, m)) < 0)
		goto out;
	if (pr)
		pr->stage_s[LD_STAGE_VERIFY] = now_sec() - t3;
	*out = m;
	m = NULL;
out:
	rc = finish(&p, uri, rc);
	ld_model_destroy(m);
	return rc;
}
