/*
 * ring.h — one io_uring and the completion dispatch every shard (and every
 * storage test) uses.
 *
 * An operation is a `struct ring_op` embedded in the object that starts it.
 * Its address is the SQE's user_data; when the CQE arrives, ring_dispatch()
 * calls op->done(op, cqe->res, cqe->flags). `res` is exactly cqe->res:
 * a byte count or -errno.
 *
 * Invariants:
 *   1. A ring is used by one thread only (the shard that made it); the
 *      kernel is told so with SINGLE_ISSUER where it supports that.
 *   2. `inflight` counts operations started with ring_sqe_set_op() whose
 *      final CQE (no IORING_CQE_F_MORE) has not been dispatched yet.
 *      ring_drain() waits for it to reach zero; closing an object means
 *      cancelling its operations and draining, never freeing early.
 *   3. CQEs whose user_data is below RING_UDATA_RESERVED (wake-ups posted by
 *      other shards with MSG_RING, skipped-success helpers) are consumed and
 *      ignored; they are never counted in `inflight`.
 *
 * Setup falls back cleanly: DEFER_TASKRUN+SINGLE_ISSUER, then COOP_TASKRUN
 * (+SINGLE_ISSUER), then plain. With DEFER_TASKRUN completions only appear
 * inside a wait (ring_wait), never to a bare peek.
 */
#ifndef SL_RING_H
#define SL_RING_H

#include <liburing.h>
#include <stdint.h>

#include "sl.h"

struct ring_op;
typedef void ring_op_done_fn(struct ring_op *op, int res, uint32_t cqe_flags);

struct ring_op {
	ring_op_done_fn *done;
};

/* user_data values below this are not ring_op pointers. */
#define RING_UDATA_NONE ((uint64_t)0)
#define RING_UDATA_WAKE ((uint64_t)1)
#define RING_UDATA_RESERVED ((uint64_t)16)

enum ring_setup {
	RING_SETUP_BEST = 0,          /* strongest flags the kernel accepts */
	RING_SETUP_PLAIN = 1 << 0,    /* no task-run flags (tests of the fallback) */
};

struct ring {
	struct io_uring uring;
	unsigned setup_flags;  /* IORING_SETUP_* actually in force */
	uint32_t inflight;     /* see invariant 2 */
	uint32_t entries;
};

/* Creates the ring with `entries` SQEs. Returns 0 or -errno. */
int ring_init(struct ring *r, unsigned entries, enum ring_setup setup);
void ring_exit(struct ring *r);

/*
 * Returns a zeroed SQE, submitting queued ones first if the SQ is full.
 * Never returns NULL: if even a submit frees no slot, it dispatches
 * completions until one does (bounded by the ring size).
 */
struct io_uring_sqe *ring_get_sqe(struct ring *r);

/* Marks `sqe` as belonging to `op` and counts it in flight. */
static inline void ring_sqe_set_op(struct ring *r, struct io_uring_sqe *sqe,
				   struct ring_op *op)
{
	SL_ASSERT(op != NULL && op->done != NULL);
	io_uring_sqe_set_data(sqe, op);
	r->inflight++;
}

/* Submits queued SQEs without waiting. Returns count or -errno. */
int ring_submit(struct ring *r);

/*
 * Submits, waits until at least `min_complete` CQEs are there or
 * `timeout_ns` passes (negative: no timeout), then dispatches every CQE
 * available. Returns the number dispatched (0 on timeout) or -errno.
 */
int ring_wait(struct ring *r, unsigned min_complete, int64_t timeout_ns);

/* Dispatches every CQE already in the queue. Returns the count. */
unsigned ring_dispatch(struct ring *r);

/* Waits until no operation is in flight. Returns 0 or -errno. */
int ring_drain(struct ring *r);

/* The ring's fd, for MSG_RING from other rings. */
static inline int ring_fd(const struct ring *r)
{
	return r->uring.ring_fd;
}

#endif
