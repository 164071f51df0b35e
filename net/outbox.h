/*
 * outbox.h — cross-shard sends that never fail for lack of credits.
 *
 * xmsg_send returns SL_EAGAIN when this shard already has CAP messages
 * outstanding towards a destination (xmsg.h). Handlers should not each
 * carry a retry path for that, so every message the broker sends goes
 * through the shard's outbox: when the destination has credits (and
 * nothing is parked before it) the message goes straight into the ring;
 * otherwise it is parked, in order, on a bounded per-destination queue
 * that an xmsg_waiter flushes as replies return credits.
 *
 * Invariants:
 *   1. Per destination, messages reach xmsg_send in outbox_send order
 *      (so the per-pair FIFO order of xmsg.h still holds end to end).
 *   2. A queue holds at most OUTBOX_QUEUE_MAX messages; its waiter is
 *      registered iff the queue is non-empty.
 *   3. Queues are allocated lazily (a shard talking to few peers pays for
 *      few queues) and freed by outbox_free only. They come from malloc,
 *      not the shard arena: the outbox must outlive the shard's last turn
 *      (main frees it after shard_group_join, when no shard runs).
 *
 * Runs on: the owning shard only.
 */
#ifndef SL_NET_OUTBOX_H
#define SL_NET_OUTBOX_H

#include <stdint.h>

#include "shard.h"
#include "sl.h"
#include "xmsg.h"

/* Parked messages per destination (64 bytes each). */
#define OUTBOX_QUEUE_MAX 8192u

struct outbox_queue {
	struct xmsg_waiter waiter;   /* first: container_of */
	struct outbox *box;
	struct xmsg *items;          /* ring of OUTBOX_QUEUE_MAX */
	uint32_t head;
	uint32_t count;
	uint32_t to;
};

struct outbox {
	struct shard *sh;
	uint32_t shard_count;
	struct outbox_queue **queues;  /* [shard_count], NULL until first parked */
	uint64_t parked_total;         /* statistics */
	uint32_t parked_now;           /* messages parked right now */
};

/* SL_OK or SL_ENOMEM. Runs on: sh (or before it starts). */
enum sl_err outbox_init(struct outbox *ob, struct shard *sh);

/* Frees the queues, which must be empty (asserted). Any thread, once the
 * shard no longer runs. */
void outbox_free(struct outbox *ob);

/*
 * Sends `m` to shard `to`, now or once credits return. Returns SL_OK;
 * SL_EAGAIN when OUTBOX_QUEUE_MAX messages are already parked for `to`
 * (the caller fails that piece of work with an error); SL_ECLOSED when
 * the shard is quiescent; SL_ENOMEM (queue allocation).
 */
enum sl_err outbox_send(struct outbox *ob, uint32_t to, const struct xmsg *m);

#endif
