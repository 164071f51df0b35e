/*
 * timer.h — a per-shard set of timers: a binary min-heap over timers the
 * caller embeds in its own objects.
 *
 * A `struct timer` lives inside the object it times (a connection, a
 * waiting fetch, a flush policy). The set only holds pointers to them, in
 * an array sized once at timer_set_init(): arming a timer never allocates,
 * and arming past the maximum is SL_EAGAIN (the caller decides what to drop).
 *
 * Time is whatever the caller says it is: every function that needs "now"
 * takes it as a parameter. The shard reads its injected clock
 * (shard_now_ns) and passes the value in, so tests drive time by hand.
 *
 * Invariants (timer_set_check):
 *   1. heap[0 .. count) holds armed timers only, and heap[i]->idx == i.
 *   2. Heap order on (deadline_ns, seq): a parent is never later than its
 *      children. `seq` is a per-set counter stamped when a timer is armed,
 *      so timers with equal deadlines fire in the order they were armed:
 *      the order is deterministic, which simulation tests rely on.
 *   3. A timer not in the heap has idx == TIMER_IDX_NONE.
 *
 * States of one timer and the functions behind each transition:
 *
 *   idle --timer_add / timer_rearm--> armed --deadline passes,
 *   timer_run_expired--> idle (then cb runs, and may re-arm it)
 *   armed --timer_cancel--> idle          armed --timer_rearm--> armed
 *
 * Runs on: the owning shard only; nothing here is thread-safe.
 */
#ifndef SL_TIMER_H
#define SL_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "sl.h"

#define TIMER_IDX_NONE UINT32_MAX
/* timer_next_deadline() when nothing is armed. */
#define TIMER_DEADLINE_NONE INT64_MAX

struct timer;
/* Called once when the timer expires; `ctx` is the set's ctx (the shard). */
typedef void timer_fn(struct timer *t, void *ctx);

struct timer {
	int64_t deadline_ns;
	uint64_t seq;
	timer_fn *cb;
	uint32_t idx;   /* position in the heap, or TIMER_IDX_NONE */
};

struct timer_set {
	struct timer **heap;
	uint32_t count;
	uint32_t count_max;
	uint64_t seq_next;
	void *ctx;      /* handed to every callback */
};

/*
 * Allocates the heap for at most `count_max` armed timers (> 0).
 * Returns SL_OK or SL_ENOMEM.
 */
enum sl_err timer_set_init(struct timer_set *ts, uint32_t count_max, void *ctx);

/* Frees the heap. Armed timers are forgotten (their idx is reset). */
void timer_set_free(struct timer_set *ts);

/* Prepares an embedded timer: idle, calling `cb` when it fires. */
void timer_init(struct timer *t, timer_fn *cb);

static inline bool timer_armed(const struct timer *t)
{
	return t->idx != TIMER_IDX_NONE;
}

/*
 * Arms idle timer `t` to fire at `deadline_ns`. A deadline in the past
 * fires on the next timer_run_expired(). Returns SL_OK, or SL_EAGAIN when
 * count_max timers are already armed (t stays idle).
 */
enum sl_err timer_add(struct timer_set *ts, struct timer *t, int64_t deadline_ns);

/* Disarms `t` if armed; a no-op on an idle timer. */
void timer_cancel(struct timer_set *ts, struct timer *t);

/*
 * Moves `t` to `deadline_ns`, arming it if idle. It then sorts after timers
 * already armed for the same deadline. SL_OK, or SL_EAGAIN as timer_add.
 */
enum sl_err timer_rearm(struct timer_set *ts, struct timer *t, int64_t deadline_ns);

/* The earliest deadline armed, or TIMER_DEADLINE_NONE. */
int64_t timer_next_deadline(const struct timer_set *ts);

/*
 * Fires every timer whose deadline is <= `now_ns`, earliest first: each is
 * disarmed, then its callback runs (and may arm or cancel any timer). At
 * most as many callbacks run as timers were armed on entry, so a callback
 * that re-arms itself in the past waits for the next call instead of
 * looping. Returns the number of callbacks run.
 */
uint32_t timer_run_expired(struct timer_set *ts, int64_t now_ns);

/* Checks invariants 1-3 (O(n)); called from SL_DEBUG_ASSERT and tests. */
bool timer_set_check(const struct timer_set *ts);

#endif
