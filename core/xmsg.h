/*
 * xmsg.h — cross-shard messages: a function to run on another shard, and
 * its completion run back on the sender.
 *
 * Shape. For every ordered pair of shards (s, d) there are two bounded
 * single-producer/single-consumer rings of fixed-size `struct xmsg`:
 * request ring s->d (written by s, read by d) and reply ring d->s (written
 * by d, read by s). Messages are copied by value into the rings; head and
 * tail are C11 atomics on their own cache lines (acquire/release only) —
 * no locks anywhere.
 *
 * Life of a message:
 *   1. sender:   xmsg_send(sh, to, &m) copies m into request ring sh->to.
 *   2. receiver: its loop turn (xmsg_drain) pops it and runs m.fn(sh, &m).
 *                fn may fill the payload with its answer and returns
 *                XMSG_REPLY (send it back now) or XMSG_DEFER (fn kept a copy
 *                of m and calls xmsg_reply(sh, &copy) exactly once later,
 *                e.g. when a disk write completes).
 *   3. receiver: the (possibly updated) message goes into reply ring
 *                to->from.
 *   4. sender:   its loop turn pops the reply and runs m.done(sh, &m), which
 *                frees whatever the sender allocated for it. Memory goes home.
 *   The receiver never dereferences m.ctx; payload pointers it may read (a
 *   borrowed read-only slice) stay valid until done runs on the sender.
 *
 * Credits — why the reply ring can never be full. A sender counts the
 * messages it has outstanding to each destination (sent, done not yet run)
 * and refuses to exceed the ring capacity CAP: xmsg_send returns SL_EAGAIN.
 * Each outstanding message sits in at most one of: request ring, the
 * receiver's hands (fn running or deferred), reply ring. So neither ring of
 * the pair ever holds more than CAP messages, and xmsg_reply cannot fail.
 * On SL_EAGAIN the caller parks its work on its own bounded queue and
 * registers a `struct xmsg_waiter` (xmsg_waiter_add); the waiter's fn runs
 * on the sender once a reply from that destination returned a credit.
 *
 * Order. Per (from, to) pair, fn runs in send order. Replies come back in
 * the order the receiver replied (send order unless it deferred some).
 *
 * Sending to oneself goes through the shard's own ring pair like any other
 * destination: fn never runs inside xmsg_send (no re-entrancy surprises),
 * the same credit rule holds, and no wake-up is needed.
 *
 * Wake-up protocol (no lost wake-ups). A receiver about to block in
 * io_uring_enter does, in this order: store sleeping=1; seq_cst fence;
 * look at every incoming ring (and the stop flags); if anything is there,
 * store sleeping=0 and do not block. A sender, once per loop turn for each
 * shard it pushed to (xmsg_flush_wakes): seq_cst fence (after the tail
 * stores); if that shard's sleeping flag reads 1, exchange it to 0 and, if
 * it was still 1, wake it (IORING_OP_MSG_RING on its ring fd with user_data
 * RING_UDATA_WAKE, or a write to its eventfd when MSG_RING is unavailable).
 * By the two fences, either the receiver sees the new tail, or the sender
 * sees sleeping=1 and wakes it; the exchange makes one sender do it. A
 * stale wake-up only costs one spurious loop turn.
 *
 * Invariants:
 *   1. 0 <= tail - head <= CAP on every ring (indices run free, wrapping).
 *   2. port.outstanding[d] <= CAP, and equals the messages sh sent to d
 *      whose done has not run; outstanding_total is their sum.
 *   3. A message's from/to are set by xmsg_send; fn runs on `to`, done on
 *      `from`, each exactly once.
 *   4. Only shard s writes the tail of a ring s->x and the head of a ring
 *      x->s.
 *
 * Runs on: every function taking a `struct shard *` runs on that shard.
 */
#ifndef SL_XMSG_H
#define SL_XMSG_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sl.h"

struct shard;
struct xmsg;

enum xmsg_fn_result {
	XMSG_REPLY = 0,   /* send the message back now */
	XMSG_DEFER,       /* fn copied it and will call xmsg_reply() later */
};

/* Runs on the receiver. Must not block. */
typedef enum xmsg_fn_result xmsg_fn(struct shard *sh, struct xmsg *m);
/* Runs back on the sender once the receiver replied. */
typedef void xmsg_done_fn(struct shard *sh, struct xmsg *m);

struct xmsg {
	uint32_t type;       /* free for the caller (a tag for logs, asserts) */
	uint16_t from;       /* set by xmsg_send */
	uint16_t to;         /* set by xmsg_send */
	xmsg_fn *fn;         /* required */
	xmsg_done_fn *done;  /* optional: NULL just returns the credit */
	void *ctx;           /* the sender's; never dereferenced by the receiver */
	union {
		int64_t i64[4];
		uint64_t u64[4];
		void *ptr[4];
	} pl;                /* payload: request in, answer out */
};
_Static_assert(sizeof(struct xmsg) == 64, "one cache line per message");

/* Default ring capacity, and the bounds a caller may choose from. */
#define XMSG_CAPACITY_DEFAULT 1024u
#define XMSG_CAPACITY_MIN 2u
#define XMSG_CAPACITY_MAX (1u << 20)
/* Grid memory ceiling used to shrink the default for large shard counts. */
#define XMSG_GRID_BYTES_DEFAULT_MAX ((uint64_t)64 << 20)
/* Messages taken from one ring per loop turn, by default. */
#define XMSG_BUDGET_DEFAULT 64u

/* One SPSC ring. The producer's and the consumer's lines never share. */
struct xmsg_ring {
	alignas(SL_CACHELINE) _Atomic uint32_t tail;   /* producer writes */
	uint32_t head_cache;                            /* producer's view */
	alignas(SL_CACHELINE) _Atomic uint32_t head;   /* consumer writes */
	uint32_t tail_cache;                            /* consumer's view */
	alignas(SL_CACHELINE) struct xmsg *slots;      /* read-only after init */
	uint32_t mask;
};

/* The N x N rings of a shard group, shared by all its shards. */
struct xmsg_grid {
	uint32_t shard_count;
	uint32_t capacity;     /* per ring, a power of two */
	struct xmsg_ring *req; /* [from * N + to] */
	struct xmsg_ring *rep; /* [replier * N + requester] */
	struct xmsg *slots;    /* backing store of every ring */
};

/*
 * A parked sender waiting for a credit towards `to`. Embedded in the
 * caller's object; linked into the shard's per-destination FIFO.
 */
struct xmsg_waiter;
typedef void xmsg_waiter_fn(struct shard *sh, struct xmsg_waiter *w);
struct xmsg_waiter {
	struct xmsg_waiter *prev, *next;
	xmsg_waiter_fn *fn;
	uint32_t to;
	bool queued;
};

/* Per-shard sender/receiver state; only its own shard touches it. */
struct xmsg_port {
	uint32_t shard_count;
	uint32_t capacity;
	uint32_t budget;             /* messages per ring per drain */
	bool closed;                 /* quiescent: xmsg_send says SL_ECLOSED */
	uint32_t *outstanding;       /* [N], invariant 2 */
	uint32_t outstanding_total;
	uint32_t deferred_count;     /* XMSG_DEFER'd, xmsg_reply not yet called */
	uint16_t *wake_list;         /* shards pushed to since the last flush */
	uint8_t *wake_marked;        /* [N] membership of wake_list */
	uint32_t wake_count;
	struct xmsg_waiter **wait_head, **wait_tail;  /* [N] FIFOs */
	uint32_t *wait_count;        /* [N] waiters queued per FIFO */
	bool *credit_freed;          /* [N] a reply from d arrived this drain */
	/* statistics, for tests and logs */
	uint64_t sent_count, recv_count, reply_count, done_count, eagain_count;
};

/*
 * Picks the default ring capacity for `shard_count` shards: the largest
 * power of two <= XMSG_CAPACITY_DEFAULT whose grid (2 * N * N rings of 64
 * byte slots) stays under XMSG_GRID_BYTES_DEFAULT_MAX, but at least 16.
 */
uint32_t xmsg_capacity_default(uint32_t shard_count);

/*
 * Allocates the rings for `shard_count` shards of `capacity` slots each
 * (a power of two in [XMSG_CAPACITY_MIN, XMSG_CAPACITY_MAX]).
 * SL_OK, SL_EINVAL or SL_ENOMEM. Runs on: any thread, before the shards.
 */
enum sl_err xmsg_grid_create(struct xmsg_grid *grid, uint32_t shard_count, uint32_t capacity);
void xmsg_grid_destroy(struct xmsg_grid *grid);
/* True when every ring is empty (after a clean shutdown). */
bool xmsg_grid_empty(const struct xmsg_grid *grid);

enum sl_err xmsg_port_init(struct xmsg_port *port, uint32_t shard_count,
			   uint32_t capacity, uint32_t budget);
void xmsg_port_free(struct xmsg_port *port);

/*
 * Sends a copy of `m` to shard `to` (which may be sh itself). The caller
 * fills type, fn, done, ctx and pl; from/to are set here.
 * Returns SL_OK; SL_EAGAIN when `to` already holds CAP of sh's messages
 * (park the work, see xmsg_waiter_add); SL_ECLOSED once sh is shutting down
 * and quiescent. Runs on: sh. The wake-up is posted at the end of the turn.
 */
enum sl_err xmsg_send(struct shard *sh, uint32_t to, const struct xmsg *m);

/*
 * Sends back a message whose fn returned XMSG_DEFER; `m` is the receiver's
 * copy (it may be freed once this returns). Never fails (credits).
 * Runs on: the receiver, m->to.
 */
void xmsg_reply(struct shard *sh, const struct xmsg *m);

/* Credits left towards `to`: how many xmsg_send calls would succeed. */
uint32_t xmsg_credits(const struct shard *sh, uint32_t to);

/*
 * Queues `w` (not already queued) to run w->fn(sh, w) once a credit towards
 * `to` is returned. Waiters run FIFO after the replies of a drain, at most
 * once per registration; a waiter that gets SL_EAGAIN again re-adds itself.
 */
void xmsg_waiter_add(struct shard *sh, uint32_t to, struct xmsg_waiter *w, xmsg_waiter_fn *fn);
/* Unlinks `w` if queued (closing the object that embeds it). */
void xmsg_waiter_cancel(struct shard *sh, struct xmsg_waiter *w);

/*
 * Receives: for each source, runs fn on up to `budget` requests and done on
 * up to `budget` replies, then runs waiters whose destination returned
 * credits. Returns the number of messages handled. Runs on: sh (loop turn).
 */
uint32_t xmsg_drain(struct shard *sh);

/* True when any incoming ring of sh is non-empty. Runs on: sh. */
bool xmsg_pending(const struct shard *sh);

/* Wakes every shard pushed to since the last call (protocol above). */
void xmsg_flush_wakes(struct shard *sh);

/* Checks invariant 2 and the waiter lists (O(N + waiters)); debug builds. */
bool xmsg_port_check(const struct xmsg_port *port);

#endif
