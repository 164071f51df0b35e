/*
 * rxbudget.c — see rxbudget.h.
 */
#include "rxbudget.h"

#include <stddef.h>

/* Longest waiter list rxbudget_check walks (connections per shard fit well below). */
#define RXBUDGET_CHECK_MAX (1u << 24)

uint64_t rxbudget_bytes_for(int64_t queued_max_request_bytes, int32_t socket_request_max_bytes,
			    uint32_t shards)
{
	uint64_t bytes;

	SL_ASSERT(shards > 0 && socket_request_max_bytes > 0);
	if (queued_max_request_bytes > 0)
		bytes = ((uint64_t)queued_max_request_bytes + shards - 1) / shards;
	else
		bytes = (uint64_t)RXBUDGET_DEFAULT_FRAMES * (uint64_t)socket_request_max_bytes;
	bytes = SL_MAX(bytes, (uint64_t)1);
	SL_ASSERT(bytes >= 1);
	return bytes;
}

void rxbudget_init(struct rxbudget *b, uint64_t bytes_max)
{
	SL_ASSERT(bytes_max > 0);
	*b = (struct rxbudget){ .bytes_max = bytes_max };
}

/* Rule 1 alone: would `bytes` fit now? */
static bool rxbudget_fits(const struct rxbudget *b, uint32_t bytes)
{
	return b->used == 0 || b->used + bytes <= b->bytes_max;
}

static void rxbudget_take(struct rxbudget *b, uint32_t bytes)
{
	b->used += bytes;
	b->grant_count++;
	if (b->used > b->used_peak)
		b->used_peak = b->used;
}

bool rxbudget_reserve(struct rxbudget *b, uint32_t bytes)
{
	SL_ASSERT(bytes > 0);
	if (b->wait_count > 0 || !rxbudget_fits(b, bytes))
		return false;
	rxbudget_take(b, bytes);
	SL_ASSERT(b->used >= bytes);
	return true;
}

void rxbudget_release(struct rxbudget *b, uint32_t bytes)
{
	SL_ASSERT(bytes > 0 && b->used >= bytes && b->grant_count > 0);
	b->used -= bytes;
	b->grant_count--;
	SL_ASSERT((b->grant_count == 0) == (b->used == 0));
}

void rxbudget_park(struct rxbudget *b, struct rxbudget_waiter *w, uint32_t need)
{
	SL_ASSERT(!w->waiting && need > 0);
	w->need = need;
	w->waiting = true;
	w->next = NULL;
	w->prev = b->tail;
	if (b->tail != NULL)
		b->tail->next = w;
	else
		b->head = w;
	b->tail = w;
	b->wait_count++;
	b->parks++;
	SL_ASSERT(b->tail == w && b->head != NULL);
}

void rxbudget_unpark(struct rxbudget *b, struct rxbudget_waiter *w)
{
	if (!w->waiting)
		return;
	SL_ASSERT(b->wait_count > 0);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		b->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		b->tail = w->prev;
	w->prev = w->next = NULL;
	w->waiting = false;
	b->wait_count--;
	SL_ASSERT((b->wait_count == 0) == (b->head == NULL));
}

struct rxbudget_waiter *rxbudget_grant_next(struct rxbudget *b)
{
	struct rxbudget_waiter *w = b->head;

	if (w == NULL || !rxbudget_fits(b, w->need))
		return NULL;
	rxbudget_unpark(b, w);
	rxbudget_take(b, w->need);
	SL_ASSERT(!w->waiting && b->used >= w->need);
	return w;
}

bool rxbudget_check(const struct rxbudget *b)
{
	const struct rxbudget_waiter *w = b->head, *prev = NULL;
	uint32_t n = 0;

	if (b->bytes_max == 0 || b->used_peak < b->used)
		return false;
	if (b->used > b->bytes_max && b->grant_count != 1)
		return false;   /* invariant 2 */
	for (; w != NULL && n < RXBUDGET_CHECK_MAX; n++) {
		if (!w->waiting || w->need == 0 || w->prev != prev)
			return false;
		prev = w;
		w = w->next;
	}
	return w == NULL && n == b->wait_count && b->tail == prev;
}
