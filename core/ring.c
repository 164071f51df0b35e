/*
 * ring.c — see ring.h.
 */
#include "ring.h"

#include <errno.h>
#include <string.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

int ring_init(struct ring *r, unsigned entries, enum ring_setup setup)
{
	static const unsigned attempts[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -EINVAL;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < SL_ARRAY_LEN(attempts); i++) {
		unsigned flags = attempts[i];
		if ((setup & RING_SETUP_PLAIN) && flags != 0)
			continue;
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		p.flags = flags;
		rc = io_uring_queue_init_params(entries, &r->uring, &p);
		if (rc == 0) {
			r->setup_flags = flags;
			r->entries = entries;
			return 0;
		}
		/* EINVAL means the kernel lacks a flag: try weaker ones. */
		if (rc != -EINVAL)
			return rc;
	}
	return rc;
}

void ring_exit(struct ring *r)
{
	SL_ASSERT(r->inflight == 0);
	io_uring_queue_exit(&r->uring);
}

unsigned ring_dispatch(struct ring *r)
{
	struct io_uring_cqe *cqe;
	unsigned seen = 0;

	/*
	 * Copy out each CQE and advance before calling done: a handler may
	 * start new operations, and may even wait on the ring (ring_drain in a
	 * close path), so the CQ must be consistent while it runs.
	 */
	for (unsigned limit = r->entries * 4; limit > 0; limit--) {
		if (io_uring_peek_cqe(&r->uring, &cqe) != 0 || cqe == NULL)
			break;
		uint64_t data = cqe->user_data;
		int res = cqe->res;
		uint32_t flags = cqe->flags;
		io_uring_cqe_seen(&r->uring, cqe);
		seen++;
		if (data < RING_UDATA_RESERVED)
			continue;
		struct ring_op *op = (struct ring_op *)(uintptr_t)data;
		if (!(flags & IORING_CQE_F_MORE)) {
			SL_ASSERT(r->inflight > 0);
			r->inflight--;
		}
		op->done(op, res, flags);
	}
	return seen;
}

struct io_uring_sqe *ring_get_sqe(struct ring *r)
{
	for (unsigned tries = 0; tries < r->entries + 2; tries++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
		if (sqe != NULL) {
			io_uring_prep_nop(sqe);
			sqe->user_data = RING_UDATA_NONE;
			return sqe;
		}
		int rc = io_uring_submit(&r->uring);
		if (rc == -EBUSY || rc == -EAGAIN) {
			/* CQ overflow pressure: make room by reaping. */
			ring_wait(r, 1, 1000000);
		}
	}
	SL_ASSERT(!"ring_get_sqe: submission queue stuck");
	return NULL;
}

int ring_submit(struct ring *r)
{
	int rc = io_uring_submit(&r->uring);
	return rc;
}

int ring_wait(struct ring *r, unsigned min_complete, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe = NULL;
	struct __kernel_timespec ts;
	int rc;

	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000;
		ts.tv_nsec = timeout_ns % 1000000000;
		rc = io_uring_submit_and_wait_timeout(&r->uring, &cqe, min_complete, &ts, NULL);
	} else {
		rc = io_uring_submit_and_wait_timeout(&r->uring, &cqe, min_complete, NULL, NULL);
	}
	if (rc < 0 && rc != -ETIME && rc != -EINTR)
		return rc;
	return (int)ring_dispatch(r);
}

int ring_drain(struct ring *r)
{
	/* Each turn completes at least one op or times out; ops always end. */
	while (r->inflight > 0) {
		int rc = ring_wait(r, 1, -1);
		if (rc < 0)
			return rc;
	}
	return 0;
}
