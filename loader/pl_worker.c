/*
 * pl_worker.c - the parallel loader's transfer stage (ld_run_workers,
 * worker_main) and the reads with retries both stages use: a byte range
 * resumed from the last byte received (ld_read_range), a small object whole
 * (ld_fetch_opt), the retry decision and backoff (ld_retry_or_fail), the
 * load's one recorded error (ld_fail). Not the steps around the transfer
 * (pipeline.c) nor the concurrency policy (pl_throttle.c).
 *
 * Workers take chunks in file order (an atomic index); each reads straight
 * into its final place (host-visible backend) or into a staging ring slot
 * that the backend's upload hands back. The first worker free fetches
 * tokenizer.json whole: one more object for the pool, beside the shards.
 * Invariants: a chunk is read by one worker; the first fatal error sets
 * p->abort and wakes ring waiters, and every worker stops at its next check.
 */
#include "loader/pl_worker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/status.h"
#include "common/util.h"
#include "kernels/backend.h"
#include "loader/crc32c.h"
#include "loader/ld_internal.h"
#include "loader/pl_internal.h"
#include "loader/pl_throttle.h"
#include "loader/ring.h"

#define TOKENIZER_MAX (256u << 20)
#define LD_BACKOFF_CAP_S 8.0	/* full-jitter exponential backoff: 100 ms doubling, capped */

struct worker {
	struct pipe *p;
	int id;
	pthread_t th;
};

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

int ld_fail(struct pipe *p, int rc, const char *where, uint64_t off, const char *why)
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
 * After a failed attempt: 0 once the backoff has been slept and the caller
 * should try again, or the (recorded) fatal status. The budget is a time:
 * t_first is when this read first failed; no retry starts after t_first +
 * retry_deadline_s (the last backoff is cut to end there), none after
 * max_retries, none past the load's deadline.
 */
int ld_retry_or_fail(struct pipe *p, struct rng *rg, int rc, int attempt, double t_first, int throttled,
			 const char *where, uint64_t off, const char *why)
{
	char msg[LD_ERR_MAX + 128];
	if (throttled)
		ld_throttle(p);
	if (atomic_load(&p->abort))
		return ST_ECANCEL;
	if (rc != ST_ENET && rc != ST_ETIMEOUT)
		return ld_fail(p, rc, where, off, why);
	if (attempt >= p->max_retries) {
		snprintf(msg, sizeof(msg), "gave up after %d retries: %.900s", attempt, why);
		return ld_fail(p, rc, where, off, msg);
	}
	double cap = MIN(LD_BACKOFF_CAP_S, 0.1 * (double)(1u << MIN(attempt, 10)));
	double wait = rng_uniform(rg) * cap, now = now_sec(), left = t_first + p->o.retry_deadline_s - now;
	if (left <= 0) {
		snprintf(msg, sizeof(msg), "gave up after %d retries in %.1f s (retry deadline %g s): %.900s", attempt,
			 now - t_first, p->o.retry_deadline_s, why);
		return ld_fail(p, rc, where, off, msg);
	}
	wait = MIN(wait, left);		/* the last retry lands on the deadline, not past it */
	if (p->deadline > 0 && now + wait > p->deadline) {
		snprintf(msg, sizeof(msg), "the load's deadline passed while retrying: %.900s", why);
		return ld_fail(p, ST_ETIMEOUT, where, off, msg);
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
 * the last byte received. Fatal errors are recorded with ld_fail().
 */
int ld_read_range(struct pipe *p, void *conn, struct rng *rg, const struct ld_obj *o, uint64_t off,
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
		if ((rc = ld_retry_or_fail(p, rg, rc, attempt, t_first, info.throttled, o->where, off + done, why)) < 0)
			return rc;
	}
}

int ld_fetch_opt(struct pipe *p, void *conn, struct rng *rg, const char *name, size_t max, char **out,
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
		if ((rc = ld_retry_or_fail(p, rg, rc, attempt, t_first, 0, where, 0, why)) < 0)
			return rc;
	}
}

int ld_check_small(struct pipe *p, const struct meta *mt, const char *name, const char *buf, size_t len)
{
	const struct ld_manifest_entry *e;
	char where[LD_NAME_MAX * 2];
	if (!buf || !mt->have_man || !(e = ld_manifest_find(&mt->man, name)))
		return 0;
	snprintf(where, sizeof(where), "%.1000s/%s", p->src->base, name);
	if (e->size != len || e->crc32c != crc32c(0, buf, len))
		return ld_fail(p, ST_ECRC, where, 0, "does not match its crc32c.json entry");
	return 0;
}

/* tokenizer.json, whole (it is optional), and its crc32c.json entry: a job of the transfer's pool. */
static int fetch_tokenizer(struct pipe *p, void *conn, struct rng *rg)
{
	int rc = ld_fetch_opt(p, conn, rg, "tokenizer.json", TOKENIZER_MAX, &p->mt.tok, &p->mt.tok_len, 0);
	return rc < 0 ? rc : ld_check_small(p, &p->mt, "tokenizer.json", p->mt.tok, p->mt.tok_len);
}

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
		ld_fail(p, rc, p->src->display, 0, "cannot create a connection");
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
		rc = ld_read_range(p, conn, &rg, &p->objs[ck->obj], ck->file_off, ck->len, dst,
				p->need_crc[ck->obj] ? &crc : NULL);
		p->chunk_crc[i] = crc;
		if (rc == 0 && !ops->host_visible) {
			rc = ops->upload(p->be->ctx, p->arena + ck->arena_off, dst, ck->len,
					 i % MAX(1, ops->n_upload_lanes), ld_ring_put, &p->ring.slots[slot]);
			if (rc < 0)
				ld_fail(p, rc, p->objs[ck->obj].where, ck->file_off, "upload to the device failed");
			else
				slot = -1;	/* the backend gives it back */
		}
		if (slot >= 0)
			ld_ring_put(&p->ring.slots[slot]);
		if (rc < 0)
			break;
		ld_aimd_success(p);
		if (p->pr)
			atomic_fetch_add(&p->pr->bytes_done, ck->len);
	}
	p->src->vt->conn_destroy(conn);
	return NULL;
}

int ld_run_workers(struct pipe *p)
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
	ld_aimd_record(p, nw);
	pthread_mutex_unlock(&p->aimd_mu);
	if (!ws)
		return ST_ENOMEM;
	for (int i = 0; i < nw; i++) {
		ws[i].p = p;
		ws[i].id = i;
		if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
			ld_fail(p, ST_ENOMEM, p->src->display, 0, "cannot start a worker thread");
			break;
		}
		n_started++;
	}
	for (int i = 0; i < n_started; i++)
		pthread_join(ws[i].th, NULL);
	free(ws);
	if (!p->err_rc && (atomic_load(&p->next) < p->n_chunks || !atomic_load(&p->tok_claimed)) &&
	    !atomic_load(&p->abort))
		ld_fail(p, ST_EIO, p->src->display, 0, "workers stopped before every chunk was read");
	t2 = now_sec();
	if (p->pr) {
		p->pr->stage_s[LD_STAGE_FIRST_BYTE] = p->src->t_first_byte > 0 ? p->src->t_first_byte - p->t1 : 0;
		p->pr->stage_s[LD_STAGE_TRANSFER] = t2 - p->t1;
	}
	return 0;
}

