/*
 * timer.c — see timer.h. A textbook binary heap; sift loops are bounded by
 * the heap depth (at most 32 levels for a uint32_t count).
 */
#include "timer.h"

#include <stdlib.h>

/* True when a must fire before b. */
static bool timer_before(const struct timer *a, const struct timer *b)
{
	if (a->deadline_ns != b->deadline_ns)
		return a->deadline_ns < b->deadline_ns;
	return a->seq < b->seq;
}

static void timer_heap_put(struct timer_set *ts, uint32_t idx, struct timer *t)
{
	ts->heap[idx] = t;
	t->idx = idx;
}

/* Moves the timer at `idx` towards the root until its parent is earlier. */
static void timer_sift_up(struct timer_set *ts, uint32_t idx)
{
	struct timer *t = ts->heap[idx];

	SL_ASSERT(idx < ts->count);
	for (uint32_t level = 0; level < 32 && idx > 0; level++) {
		uint32_t parent = (idx - 1) / 2;
		if (!timer_before(t, ts->heap[parent]))
			break;
		timer_heap_put(ts, idx, ts->heap[parent]);
		idx = parent;
	}
	timer_heap_put(ts, idx, t);
}

/* Moves the timer at `idx` towards the leaves until no child is earlier. */
static void timer_sift_down(struct timer_set *ts, uint32_t idx)
{
	struct timer *t = ts->heap[idx];

	SL_ASSERT(idx < ts->count);
	for (uint32_t level = 0; level < 32; level++) {
		uint64_t left = 2 * (uint64_t)idx + 1;
		if (left >= ts->count)
			break;
		uint32_t child = (uint32_t)left;
		if (child + 1 < ts->count && timer_before(ts->heap[child + 1], ts->heap[child]))
			child++;
		if (!timer_before(ts->heap[child], t))
			break;
		timer_heap_put(ts, idx, ts->heap[child]);
		idx = child;
	}
	timer_heap_put(ts, idx, t);
}

/* Removes the timer at `idx`, filling the hole with the last one. */
static void timer_heap_remove(struct timer_set *ts, uint32_t idx)
{
	struct timer *t = ts->heap[idx];

	SL_ASSERT(ts->count > 0 && idx < ts->count);
	ts->count--;
	if (idx != ts->count) {
		struct timer *moved = ts->heap[ts->count];
		timer_heap_put(ts, idx, moved);
		timer_sift_up(ts, idx);
		timer_sift_down(ts, moved->idx);
	}
	ts->heap[ts->count] = NULL;
	t->idx = TIMER_IDX_NONE;
}

enum sl_err timer_set_init(struct timer_set *ts, uint32_t count_max, void *ctx)
{
	SL_ASSERT(count_max > 0);
	ts->heap = calloc(count_max, sizeof(*ts->heap));
	if (ts->heap == NULL)
		return SL_ENOMEM;
	ts->count = 0;
	ts->count_max = count_max;
	ts->seq_next = 0;
	ts->ctx = ctx;
	return SL_OK;
}

void timer_set_free(struct timer_set *ts)
{
	for (uint32_t i = 0; i < ts->count; i++)
		ts->heap[i]->idx = TIMER_IDX_NONE;
	free(ts->heap);
	ts->heap = NULL;
	ts->count = 0;
}

void timer_init(struct timer *t, timer_fn *cb)
{
	SL_ASSERT(cb != NULL);
	t->deadline_ns = 0;
	t->seq = 0;
	t->cb = cb;
	t->idx = TIMER_IDX_NONE;
}

enum sl_err timer_add(struct timer_set *ts, struct timer *t, int64_t deadline_ns)
{
	SL_ASSERT(!timer_armed(t) && t->cb != NULL);
	if (ts->count == ts->count_max)
		return SL_EAGAIN;
	t->deadline_ns = deadline_ns;
	t->seq = ts->seq_next++;
	ts->count++;
	timer_heap_put(ts, ts->count - 1, t);
	timer_sift_up(ts, ts->count - 1);
	SL_ASSERT(timer_armed(t) && ts->heap[t->idx] == t);
	SL_DEBUG_ASSERT(timer_set_check(ts));
	return SL_OK;
}

void timer_cancel(struct timer_set *ts, struct timer *t)
{
	if (!timer_armed(t))
		return;
	SL_ASSERT(t->idx < ts->count && ts->heap[t->idx] == t);
	timer_heap_remove(ts, t->idx);
	SL_ASSERT(!timer_armed(t));
	SL_DEBUG_ASSERT(timer_set_check(ts));
}

enum sl_err timer_rearm(struct timer_set *ts, struct timer *t, int64_t deadline_ns)
{
	if (!timer_armed(t))
		return timer_add(ts, t, deadline_ns);
	SL_ASSERT(t->idx < ts->count && ts->heap[t->idx] == t);
	t->deadline_ns = deadline_ns;
	t->seq = ts->seq_next++;
	/* The key moved one way or the other: one of the sifts is a no-op. */
	timer_sift_up(ts, t->idx);
	timer_sift_down(ts, t->idx);
	SL_DEBUG_ASSERT(timer_set_check(ts));
	return SL_OK;
}

int64_t timer_next_deadline(const struct timer_set *ts)
{
	if (ts->count == 0)
		return TIMER_DEADLINE_NONE;
	return ts->heap[0]->deadline_ns;
}

uint32_t timer_run_expired(struct timer_set *ts, int64_t now_ns)
{
	uint32_t limit = ts->count;
	uint32_t ran = 0;

	while (ran < limit && ts->count > 0 && ts->heap[0]->deadline_ns <= now_ns) {
		struct timer *t = ts->heap[0];
		timer_heap_remove(ts, 0);
		ran++;
		t->cb(t, ts->ctx);
	}
	SL_ASSERT(ran <= limit);
	return ran;
}

bool timer_set_check(const struct timer_set *ts)
{
	if (ts->count > ts->count_max)
		return false;
	for (uint32_t i = 0; i < ts->count; i++) {
		const struct timer *t = ts->heap[i];
		if (t == NULL || t->idx != i)
			return false;
		if (i > 0 && timer_before(t, ts->heap[(i - 1) / 2]))
			return false;
	}
	return true;
}
