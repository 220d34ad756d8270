/*
 * ring.c - the pinned staging ring of the parallel loader (see ring.h).
 * A bounded free list under one mutex: a slot is either free, or owned by
 * one worker (reading into it), or by the backend (uploading from it)
 * until the upload's done callback puts it back. The ring never holds
 * more than n_slots * slot_bytes of host memory.
 */
#include "loader/ring.h"

#include <stdlib.h>

#include "common/log.h"
#include "common/status.h"
#include "kernels/backend.h"

static void *ring_alloc_thread(void *arg)
{
	struct ld_ring *r = arg;
	size_t total = r->slot_bytes * (size_t)r->n_slots;
	r->mem = r->be->ops->host_alloc(r->be->ctx, total);
	r->alloc_rc = r->mem ? 0 : log_err(ST_ENOMEM, "cannot allocate %zu bytes of staging buffers", total);
	return NULL;
}

int ld_ring_start(struct ld_ring *r, struct be *be, size_t slot_bytes, int n_slots, const _Atomic int *abort)
{
	r->slot_bytes = slot_bytes;
	r->n_slots = n_slots;
	r->free_idx = calloc((size_t)n_slots, sizeof(int));
	r->slots = calloc((size_t)n_slots, sizeof(*r->slots));
	r->abort = abort;
	r->be = be;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	if (!r->free_idx || !r->slots)
		return ST_ENOMEM;
	for (int i = 0; i < n_slots; i++) {
		r->free_idx[r->n_free++] = i;
		r->slots[i] = (struct ld_ring_slot){ r, i };
	}
	if (pthread_create(&r->th, NULL, ring_alloc_thread, r) != 0)
		return ST_ENOMEM;
	r->started = 1;
	return 0;
}

int ld_ring_wait(struct ld_ring *r)
{
	if (!r->started)
		return 0;
	pthread_join(r->th, NULL);
	r->started = 0;
	return r->alloc_rc;
}

int ld_ring_get(struct ld_ring *r)
{
	int idx = -1;
	pthread_mutex_lock(&r->mu);
	while (r->n_free == 0 && !atomic_load(r->abort))
		pthread_cond_wait(&r->cv, &r->mu);
	if (r->n_free > 0 && !atomic_load(r->abort))
		idx = r->free_idx[--r->n_free];
	pthread_mutex_unlock(&r->mu);
	return idx;
}

void *ld_ring_buf(const struct ld_ring *r, int idx)
{
	return r->mem + (size_t)idx * r->slot_bytes;
}

void ld_ring_put(void *arg)
{
	struct ld_ring_slot *a = arg;
	struct ld_ring *r = a->r;
	pthread_mutex_lock(&r->mu);
	r->free_idx[r->n_free++] = a->idx;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

void ld_ring_wake_all(struct ld_ring *r)
{
	if (!r->free_idx)
		return;
	pthread_mutex_lock(&r->mu);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

void ld_ring_release(struct ld_ring *r)
{
	ld_ring_wait(r);
	if (r->mem)
		r->be->ops->host_free(r->be->ctx, r->mem);
	if (r->free_idx) {
		pthread_mutex_destroy(&r->mu);
		pthread_cond_destroy(&r->cv);
	}
	free(r->free_idx);
	free(r->slots);
	r->mem = NULL;
	r->free_idx = NULL;
	r->slots = NULL;
}
