/*
 * ring.h - the staging ring of the parallel loader (ring.c): a fixed set
 * of host_alloc'd (pinned) buffers of one chunk each, for a backend whose
 * memory the CPU cannot write. A worker takes a free slot, reads a chunk
 * into it, and hands it to the backend's upload, whose completion callback
 * (ld_ring_put) gives it back. Caller-owned storage: ld_ring_start on a
 * zeroed struct, ld_ring_release once.
 */
#ifndef GR_LD_RING_H
#define GR_LD_RING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct be;

struct ld_ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *mem;			/* n_slots * slot_bytes, host_alloc'd; set by the allocation thread */
	size_t slot_bytes;
	int n_slots, n_free;
	int *free_idx;			/* NULL: no ring was started */
	struct ld_ring_slot { struct ld_ring *r; int idx; } *slots;	/* ld_ring_put's arguments */
	const _Atomic int *abort;	/* borrowed: set, ld_ring_get stops waiting */
	struct be *be;			/* borrowed */
	pthread_t th;
	int started;			/* allocation thread not joined yet */
	int alloc_rc;
};

/*
 * Sets up n_slots slots of slot_bytes and starts allocating their memory on
 * a helper thread (the caller goes on with other work; ld_ring_wait joins).
 */
int ld_ring_start(struct ld_ring *r, struct be *be, size_t slot_bytes, int n_slots,
		  const _Atomic int *abort);
/* Waits for the allocation started by ld_ring_start (if any): 0 or ST_ENOMEM (logged). */
int ld_ring_wait(struct ld_ring *r);

/* A free slot's index (waiting for one), or -1 once *abort is set. */
int ld_ring_get(struct ld_ring *r);
/* The slot's buffer (slot_bytes long). */
void *ld_ring_buf(const struct ld_ring *r, int idx);
/* Gives a slot back; arg is &r->slots[idx] (the shape of a backend upload's done callback). */
void ld_ring_put(void *arg);
/* Wakes every ld_ring_get waiter (after *abort was set). */
void ld_ring_wake_all(struct ld_ring *r);

/* Joins, frees the buffers (after the backend's sync) and the ring's state. */
void ld_ring_release(struct ld_ring *r);

#endif
