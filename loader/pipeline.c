/*
 * pipeline.c - the parallel loader, ld_load: any source (file, http(s),
 * gcs; source.c picks it) into one backend arena, as a list of steps. The
 * transfer stage and the reads with retries are pl_worker.c's, the AIMD
 * concurrency pl_throttle.c's, the shared state pl_internal.h's; the
 * tensor table and the arena's layout ld_model.c's; the sequential
 * reference loader is load_simple.c.
 *
 * Stages (timed into struct ld_progress), in the order ld_load (at the
 * end of this file) calls them:
 *   metadata   small files whole (config.json, index, crc32c.json), each
 *              shard opened with one ranged read of its head (size,
 *              generation, crc32c come with it), headers parsed and
 *              validated (safetensors.c, model_format.c), tensors placed
 *              (ld_model.c), the caller's check (ld_opts.check: flags and
 *              memory plan against the config and sizes), the arena
 *              allocated, chunks planned; meanwhile the staging ring is
 *              allocated on a helper thread (ring.c);
 *   first_byte from the start of the transfer to the first tensor data
 *              byte received (stamped by the source as it lands: a curl
 *              body callback or a pread piece, not a completed chunk);
 *   transfer   pl_worker.c: W workers take chunks in file order, into the
 *              arena or a ring slot and on to the backend's upload, CRC-32C
 *              while hot; tokenizer.json is fetched beside them; retries
 *              resume from the last byte; AIMD concurrency;
 *   sync       the backend's sync (all uploads landed);
 *   verify     per shard: header CRC combined with the chunk CRCs in
 *              offset order, compared with the GCS object crc32c and the
 *              crc32c.json entry (read from every source that has one);
 *              the weakest check passed goes in ld_model.verified and is
 *              logged once.
 * The first fatal error stops every transfer and is reported once (by
 * finish), naming the object, the offset and the reason.
 *
 * Function map: pipe_init, open_source, ring_start, read_meta, make_model,
 * plan, (ld_ring_wait), pl_worker.c:ld_run_workers, sync_uploads, verify,
 * finish.
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
#include "loader/pl_internal.h"
#include "loader/pl_worker.h"
#include "loader/ring.h"
#include "loader/source.h"

#define HEAD_WANT (256u << 10)
#define SMALL_MAX (64u << 20)
#define LD_CHUNK_NET (32u << 20)	/* the default chunk of gs:// and http(s):// (a request each) */
#define LD_CHUNK_LOCAL (4u << 20)	/* ... and of local files (bench/bench_loader_null.sh) */

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

	if ((rc = ld_fetch_opt(p, conn, rg, "config.json", SMALL_MAX, &mt->cfg, &mt->cfg_len, 1)) < 0 ||
	    (rc = ld_fetch_opt(p, conn, rg, "model.safetensors.index.json", SMALL_MAX, &mt->index, &mt->index_len, 0)) < 0)
		return rc;
	/* every source, gs:// too: the object CRC only says the bytes arrived as stored */
	if (p->o.verify &&
	    (rc = ld_fetch_opt(p, conn, rg, "crc32c.json", SMALL_MAX, &mt->man_json, &mt->man_len, 0)) < 0)
		return rc;
	if (mt->man_json) {
		if ((rc = ld_manifest_parse(mt->man_json, mt->man_len, &mt->man, why, sizeof(why))) < 0)
			return ld_fail(p, rc, "crc32c.json", 0, why);
		mt->have_man = 1;
	}
	if ((rc = ld_check_small(p, mt, "config.json", mt->cfg, mt->cfg_len)) < 0 ||
	    (rc = ld_check_small(p, mt, "model.safetensors.index.json", mt->index, mt->index_len)) < 0)
		return rc;
	/* the index first, so that a failure of ld_desc_from_parts is config.json's */
	if (mt->index && (rc = ld_index_parse(mt->index, mt->index_len, &ix, why, sizeof(why))) < 0)
		return ld_fail(p, rc, "model.safetensors.index.json", 0, why);
	if ((rc = ld_desc_from_parts(mt->cfg, mt->cfg_len, mt->index, mt->index_len, d, why, sizeof(why))) < 0) {
		ld_fail(p, rc, "config.json", 0, why);
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
			if ((rc = ld_retry_or_fail(p, rg, rc, attempt, t_first, 0, ob->where[0] ? ob->where : d->shard_names[s],
						0, why)) < 0)
				goto out;
		}
		if (got < 8 && ob->size >= 8) {	/* a short answer to the head read: the length prefix first */
			if ((rc = ld_read_range(p, conn, rg, ob, got, 8 - got, head + got, NULL)) < 0)
				goto out;
			got = 8;
		}
		if (got < 8 || (rc = st_header_len((uint8_t *)head, ob->size, &hlen, why, sizeof(why))) < 0) {
			ld_fail(p, ST_EFORMAT, ob->where, 0, got < 8 ? "shorter than a safetensors header" : why);
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
			if ((rc = ld_read_range(p, conn, rg, ob, got, (size_t)(8 + hlen - got), head + got, NULL)) < 0)
				goto out;
		}
		if ((rc = st_parse_header(head + 8, (size_t)hlen, ob->size, &d->shards[s], why, sizeof(why))) < 0) {
			ld_fail(p, rc, ob->where, 8, why);
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
		ld_fail(p, rc, p->src->display, 0, why);
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
			return ld_fail(p, ST_ECRC, ob->where, 0, "crc32c.json has no entry for this shard");
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
			return ld_fail(p, ST_EIO, ob->where, 0, why);
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
			return ld_fail(p, ST_ECRC, ob->where, 0, why);
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
			return ld_fail(p, rc, p->src->display, 0, why[0] ? why : "refused by the caller's check");
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
			ld_fail(p, rc, p->src->display, 0, "too many chunks for this chunk size (raise --loader-chunk-mb)");
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
		return ld_fail(p, rc, p->src->display, 0, "device sync after the uploads failed");
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
	if ((rc = ld_run_workers(&p)) < 0 || (rc = sync_uploads(&p)) < 0)
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
