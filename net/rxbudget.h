/*
 * rxbudget.h — a shard's budget for request buffers: how many bytes of
 * received frames (net/conn.c allocates one exact-size buffer per frame as
 * soon as its size prefix is judged) the shard may hold at once, and the
 * FIFO of connections waiting for room. Pure accounting: no I/O, no
 * allocation; conn.c applies it and tests/unit/test_rxbudget.c checks it.
 *
 * Why: without it a shard's request memory grows with
 * connections x socket.request.max.bytes. With it, a connection whose next
 * frame does not fit stops reading (its bytes wait in the kernel's socket
 * buffer: TCP backpressure) and parks here; it resumes when enough request
 * memory was freed.
 *
 * Rules:
 *   1. A reservation is granted when used + bytes <= bytes_max, or when the
 *      shard holds nothing (used == 0): a single frame larger than the whole
 *      budget still goes through alone (it is bounded by
 *      socket.request.max.bytes, judged before this), so the shard always
 *      has at least one request in progress and a parked connection can
 *      never wait on memory that nobody will free.
 *   2. First come, first served: while anyone waits, a new reservation is
 *      refused (rxbudget_reserve) and waiters are granted in arrival order
 *      (rxbudget_grant_next), so a stream of small frames cannot starve a
 *      large one.
 *
 * Invariants (rxbudget_check):
 *   1. used == sum of reservations granted and not released.
 *   2. used <= bytes_max, except for one reservation granted alone (rule 1).
 *   3. wait_count == length of the waiter list; a waiter is linked iff
 *      `waiting` is set; its `need` is > 0.
 *
 * States of one waiter:
 *   idle --rxbudget_park--> waiting --rxbudget_grant_next--> granted
 *   (need bytes reserved for it)   waiting --rxbudget_unpark--> idle
 *
 * Runs on: the owning shard only.
 */
#ifndef SL_NET_RXBUDGET_H
#define SL_NET_RXBUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "sl.h"

/* An embedded link (in struct conn): one wait at a time. */
struct rxbudget_waiter {
	struct rxbudget_waiter *prev, *next;
	uint32_t need;                   /* bytes asked for */
	bool waiting;
};

struct rxbudget {
	uint64_t bytes_max;              /* > 0 */
	uint64_t used;                   /* invariant 1 */
	uint32_t grant_count;            /* reservations granted, not released */
	uint64_t used_peak;              /* statistics */
	uint64_t parks;                  /* statistics: times a connection parked */
	struct rxbudget_waiter *head, *tail;
	uint32_t wait_count;
};

/*
 * The per-shard budget Sluice uses: queued.max.request.bytes (broker-wide,
 * Kafka's key) split evenly over `shards`, or when it is <= 0 (Kafka's
 * default -1, "unbounded") RXBUDGET_DEFAULT_FRAMES x socket.request.max.bytes
 * per shard. Always >= 1.
 */
#define RXBUDGET_DEFAULT_FRAMES 2u
uint64_t rxbudget_bytes_for(int64_t queued_max_request_bytes, int32_t socket_request_max_bytes,
			    uint32_t shards);

void rxbudget_init(struct rxbudget *b, uint64_t bytes_max);

/*
 * Reserves `bytes` (> 0) if rules 1 and 2 allow: true, and the caller
 * must rxbudget_release them later; false: nothing reserved (park).
 */
bool rxbudget_reserve(struct rxbudget *b, uint32_t bytes);

/* Gives back one granted reservation of `bytes`. */
void rxbudget_release(struct rxbudget *b, uint32_t bytes);

/* Queues idle waiter `w` for `need` (> 0) bytes, at the tail. */
void rxbudget_park(struct rxbudget *b, struct rxbudget_waiter *w, uint32_t need);

/* Unlinks `w` if it waits (its connection closes); a no-op otherwise. */
void rxbudget_unpark(struct rxbudget *b, struct rxbudget_waiter *w);

/*
 * If the first waiter's need fits now (rule 1), reserves it, unlinks the
 * waiter and returns it (the reservation is then the waiter's owner's to
 * use and release). NULL when nobody waits or the first does not fit.
 */
struct rxbudget_waiter *rxbudget_grant_next(struct rxbudget *b);

/* Checks invariants 2 and 3 (O(waiters)); for SL_DEBUG_ASSERT and tests. */
bool rxbudget_check(const struct rxbudget *b);

#endif
