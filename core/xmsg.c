/*
 * xmsg.c — see xmsg.h for the protocol (credits, replies, wake-ups).
 */
#include "xmsg.h"

#include <stdlib.h>
#include <string.h>

#include "shard.h"

/* Minimum capacity the default picks, however many shards there are. */
#define XMSG_CAPACITY_DEFAULT_MIN 16u

static bool xmsg_is_pow2(uint32_t v)
{
	return v != 0 && (v & (v - 1)) == 0;
}

static struct xmsg_ring *xmsg_req_ring(const struct xmsg_grid *grid, uint32_t from, uint32_t to)
{
	SL_ASSERT(from < grid->shard_count && to < grid->shard_count);
	return &grid->req[(size_t)from * grid->shard_count + to];
}

static struct xmsg_ring *xmsg_rep_ring(const struct xmsg_grid *grid, uint32_t replier,
				       uint32_t requester)
{
	SL_ASSERT(replier < grid->shard_count && requester < grid->shard_count);
	return &grid->rep[(size_t)replier * grid->shard_count + requester];
}

/*
 * Producer side. Credits guarantee room, so a full ring is our bug. The
 * acquire on head orders the consumer's copy-out of a slot before our
 * overwrite of it; the release on tail publishes the slot.
 */
static void xmsg_ring_push(struct xmsg_ring *r, const struct xmsg *m)
{
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	if (tail - r->head_cache > r->mask) {
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		SL_ASSERT(tail - r->head_cache <= r->mask);
	}
	r->slots[tail & r->mask] = *m;
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

/* Consumer side: copies the oldest message out. False when empty. */
static bool xmsg_ring_pop(struct xmsg_ring *r, struct xmsg *out)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (head == r->tail_cache) {
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (head == r->tail_cache)
			return false;
	}
	SL_ASSERT(r->tail_cache - head <= r->mask + 1);
	*out = r->slots[head & r->mask];
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return true;
}

/* Consumer side, without taking anything. */
static bool xmsg_ring_nonempty(const struct xmsg_ring *r)
{
	return atomic_load_explicit(&r->tail, memory_order_acquire) !=
	       atomic_load_explicit(&r->head, memory_order_relaxed);
}

uint32_t xmsg_capacity_default(uint32_t shard_count)
{
	uint64_t rings = 2 * (uint64_t)shard_count * shard_count;
	uint32_t cap = XMSG_CAPACITY_DEFAULT;

	SL_ASSERT(shard_count > 0);
	while (cap > XMSG_CAPACITY_DEFAULT_MIN &&
	       rings * cap * sizeof(struct xmsg) > XMSG_GRID_BYTES_DEFAULT_MAX)
		cap /= 2;
	SL_ASSERT(xmsg_is_pow2(cap));
	return cap;
}

enum sl_err xmsg_grid_create(struct xmsg_grid *grid, uint32_t shard_count, uint32_t capacity)
{
	size_t ring_count = (size_t)shard_count * shard_count;

	memset(grid, 0, sizeof(*grid));
	if (shard_count == 0 || shard_count > UINT16_MAX || !xmsg_is_pow2(capacity) ||
	    capacity < XMSG_CAPACITY_MIN || capacity > XMSG_CAPACITY_MAX)
		return SL_EINVAL;
	grid->shard_count = shard_count;
	grid->capacity = capacity;
	grid->req = aligned_alloc(SL_CACHELINE, ring_count * sizeof(struct xmsg_ring));
	grid->rep = aligned_alloc(SL_CACHELINE, ring_count * sizeof(struct xmsg_ring));
	grid->slots = aligned_alloc(SL_CACHELINE, 2 * ring_count * capacity * sizeof(struct xmsg));
	if (grid->req == NULL || grid->rep == NULL || grid->slots == NULL) {
		xmsg_grid_destroy(grid);
		return SL_ENOMEM;
	}
	memset(grid->req, 0, ring_count * sizeof(struct xmsg_ring));
	memset(grid->rep, 0, ring_count * sizeof(struct xmsg_ring));
	for (size_t i = 0; i < 2 * ring_count; i++) {
		struct xmsg_ring *r = i < ring_count ? &grid->req[i] : &grid->rep[i - ring_count];
		r->slots = grid->slots + i * capacity;
		r->mask = capacity - 1;
		atomic_init(&r->head, 0);
		atomic_init(&r->tail, 0);
	}
	SL_ASSERT(xmsg_grid_empty(grid));
	return SL_OK;
}

void xmsg_grid_destroy(struct xmsg_grid *grid)
{
	free(grid->req);
	free(grid->rep);
	free(grid->slots);
	memset(grid, 0, sizeof(*grid));
}

bool xmsg_grid_empty(const struct xmsg_grid *grid)
{
	size_t ring_count = (size_t)grid->shard_count * grid->shard_count;

	for (size_t i = 0; i < ring_count; i++)
		if (xmsg_ring_nonempty(&grid->req[i]) || xmsg_ring_nonempty(&grid->rep[i]))
			return false;
	return true;
}

enum sl_err xmsg_port_init(struct xmsg_port *port, uint32_t shard_count,
			   uint32_t capacity, uint32_t budget)
{
	memset(port, 0, sizeof(*port));
	SL_ASSERT(shard_count > 0 && shard_count <= UINT16_MAX);
	SL_ASSERT(xmsg_is_pow2(capacity) && budget > 0);
	port->shard_count = shard_count;
	port->capacity = capacity;
	port->budget = budget;
	port->outstanding = calloc(shard_count, sizeof(*port->outstanding));
	port->wake_list = calloc(shard_count, sizeof(*port->wake_list));
	port->wake_marked = calloc(shard_count, sizeof(*port->wake_marked));
	port->wait_head = calloc(shard_count, sizeof(*port->wait_head));
	port->wait_tail = calloc(shard_count, sizeof(*port->wait_tail));
	port->wait_count = calloc(shard_count, sizeof(*port->wait_count));
	port->credit_freed = calloc(shard_count, sizeof(*port->credit_freed));
	if (port->outstanding == NULL || port->wake_list == NULL || port->wake_marked == NULL ||
	    port->wait_head == NULL || port->wait_tail == NULL || port->wait_count == NULL ||
	    port->credit_freed == NULL) {
		xmsg_port_free(port);
		return SL_ENOMEM;
	}
	return SL_OK;
}

void xmsg_port_free(struct xmsg_port *port)
{
	free(port->outstanding);
	free(port->wake_list);
	free(port->wake_marked);
	free(port->wait_head);
	free(port->wait_tail);
	free(port->wait_count);
	free(port->credit_freed);
	memset(port, 0, sizeof(*port));
}

/* Remembers that `to` must be considered for a wake-up at the next flush. */
static void xmsg_wake_mark(struct shard *sh, uint32_t to)
{
	struct xmsg_port *port = &sh->xmsg;

	if (to == sh->id || port->wake_marked[to])
		return;
	SL_ASSERT(port->wake_count < port->shard_count);
	port->wake_marked[to] = 1;
	port->wake_list[port->wake_count++] = (uint16_t)to;
}

enum sl_err xmsg_send(struct shard *sh, uint32_t to, const struct xmsg *m)
{
	struct xmsg_port *port = &sh->xmsg;
	struct xmsg copy;

	SL_ASSERT(to < port->shard_count && m->fn != NULL);
	if (port->closed)
		return SL_ECLOSED;
	if (port->outstanding[to] == port->capacity) {
		port->eagain_count++;
		return SL_EAGAIN;
	}
	copy = *m;
	copy.from = (uint16_t)sh->id;
	copy.to = (uint16_t)to;
	xmsg_ring_push(xmsg_req_ring(sh->grid, sh->id, to), &copy);
	port->outstanding[to]++;
	port->outstanding_total++;
	port->sent_count++;
	xmsg_wake_mark(sh, to);
	SL_ASSERT(port->outstanding[to] <= port->capacity);
	SL_DEBUG_ASSERT(xmsg_port_check(port));
	return SL_OK;
}

/* Pushes the answer for `m` onto the reply ring towards its sender. */
static void xmsg_reply_push(struct shard *sh, const struct xmsg *m)
{
	SL_ASSERT(m->to == sh->id && m->from < sh->xmsg.shard_count);
	xmsg_ring_push(xmsg_rep_ring(sh->grid, sh->id, m->from), m);
	sh->xmsg.reply_count++;
	xmsg_wake_mark(sh, m->from);
}

void xmsg_reply(struct shard *sh, const struct xmsg *m)
{
	SL_ASSERT(sh->xmsg.deferred_count > 0);
	sh->xmsg.deferred_count--;
	xmsg_reply_push(sh, m);
}

uint32_t xmsg_credits(const struct shard *sh, uint32_t to)
{
	SL_ASSERT(to < sh->xmsg.shard_count);
	SL_ASSERT(sh->xmsg.outstanding[to] <= sh->xmsg.capacity);
	return sh->xmsg.capacity - sh->xmsg.outstanding[to];
}

void xmsg_waiter_add(struct shard *sh, uint32_t to, struct xmsg_waiter *w, xmsg_waiter_fn *fn)
{
	struct xmsg_port *port = &sh->xmsg;

	SL_ASSERT(to < port->shard_count && fn != NULL && !w->queued);
	w->fn = fn;
	w->to = to;
	w->next = NULL;
	w->prev = port->wait_tail[to];
	if (w->prev != NULL)
		w->prev->next = w;
	else
		port->wait_head[to] = w;
	port->wait_tail[to] = w;
	port->wait_count[to]++;
	w->queued = true;
}

void xmsg_waiter_cancel(struct shard *sh, struct xmsg_waiter *w)
{
	struct xmsg_port *port = &sh->xmsg;

	if (!w->queued)
		return;
	SL_ASSERT(w->to < port->shard_count && port->wait_count[w->to] > 0);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		port->wait_head[w->to] = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		port->wait_tail[w->to] = w->prev;
	port->wait_count[w->to]--;
	w->prev = w->next = NULL;
	w->queued = false;
}

/*
 * Runs the waiters towards `to`, FIFO, while credits last. Only those
 * queued on entry run: one that re-adds itself waits for the next reply.
 */
static void xmsg_waiters_run(struct shard *sh, uint32_t to)
{
	struct xmsg_port *port = &sh->xmsg;
	uint32_t limit = port->wait_count[to];

	for (uint32_t i = 0; i < limit && port->wait_head[to] != NULL; i++) {
		if (xmsg_credits(sh, to) == 0)
			break;
		struct xmsg_waiter *w = port->wait_head[to];
		xmsg_waiter_cancel(sh, w);
		w->fn(sh, w);
	}
}

/* Runs done for up to `budget` replies coming back from `src`. */
static uint32_t xmsg_drain_replies(struct shard *sh, uint32_t src)
{
	struct xmsg_port *port = &sh->xmsg;
	struct xmsg_ring *r = xmsg_rep_ring(sh->grid, src, sh->id);
	struct xmsg m;
	uint32_t n = 0;

	for (; n < port->budget && xmsg_ring_pop(r, &m); n++) {
		SL_ASSERT(m.from == sh->id && m.to == src);
		SL_ASSERT(port->outstanding[src] > 0 && port->outstanding_total > 0);
		port->outstanding[src]--;
		port->outstanding_total--;
		port->done_count++;
		port->credit_freed[src] = 1;
		if (m.done != NULL)
			m.done(sh, &m);
	}
	return n;
}

/* Runs fn for up to `budget` requests from `src` and replies. */
static uint32_t xmsg_drain_requests(struct shard *sh, uint32_t src)
{
	struct xmsg_port *port = &sh->xmsg;
	struct xmsg_ring *r = xmsg_req_ring(sh->grid, src, sh->id);
	struct xmsg m;
	uint32_t n = 0;

	for (; n < port->budget && xmsg_ring_pop(r, &m); n++) {
		SL_ASSERT(m.from == src && m.to == sh->id && m.fn != NULL);
		port->recv_count++;
		enum xmsg_fn_result res = m.fn(sh, &m);
		SL_ASSERT(m.from == src && m.to == sh->id);
		if (res == XMSG_DEFER)
			port->deferred_count++;
		else
			xmsg_reply_push(sh, &m);
	}
	return n;
}

uint32_t xmsg_drain(struct shard *sh)
{
	struct xmsg_port *port = &sh->xmsg;
	uint32_t handled = 0;

	/* Replies first: they return credits the requests' fn may need. */
	for (uint32_t src = 0; src < port->shard_count; src++)
		handled += xmsg_drain_replies(sh, src);
	for (uint32_t src = 0; src < port->shard_count; src++)
		handled += xmsg_drain_requests(sh, src);
	for (uint32_t to = 0; to < port->shard_count; to++) {
		if (!port->credit_freed[to])
			continue;
		port->credit_freed[to] = 0;
		xmsg_waiters_run(sh, to);
	}
	SL_DEBUG_ASSERT(xmsg_port_check(port));
	return handled;
}

bool xmsg_pending(const struct shard *sh)
{
	for (uint32_t src = 0; src < sh->xmsg.shard_count; src++) {
		if (xmsg_ring_nonempty(xmsg_req_ring(sh->grid, src, sh->id)) ||
		    xmsg_ring_nonempty(xmsg_rep_ring(sh->grid, src, sh->id)))
			return true;
	}
	return false;
}

void xmsg_flush_wakes(struct shard *sh)
{
	struct xmsg_port *port = &sh->xmsg;

	if (port->wake_count == 0)
		return;
	/* Pairs with the fence in shard_run_once's sleep check (xmsg.h). */
	atomic_thread_fence(memory_order_seq_cst);
	for (uint32_t i = 0; i < port->wake_count; i++) {
		uint32_t to = port->wake_list[i];
		struct shard *peer = shard_peer(sh, to);
		port->wake_marked[to] = 0;
		if (atomic_load_explicit(&peer->sleeping, memory_order_relaxed) != 0 &&
		    atomic_exchange_explicit(&peer->sleeping, 0, memory_order_acq_rel) != 0)
			shard_wake_peer(sh, peer);
	}
	port->wake_count = 0;
}

bool xmsg_port_check(const struct xmsg_port *port)
{
	uint64_t total = 0;

	for (uint32_t d = 0; d < port->shard_count; d++) {
		if (port->outstanding[d] > port->capacity)
			return false;
		total += port->outstanding[d];
		uint32_t n = 0;
		const struct xmsg_waiter *prev = NULL;
		for (const struct xmsg_waiter *w = port->wait_head[d]; w != NULL; w = w->next) {
			if (++n > port->wait_count[d] || !w->queued || w->to != d || w->prev != prev)
				return false;
			prev = w;
		}
		if (n != port->wait_count[d] || port->wait_tail[d] != prev)
			return false;
	}
	return total == port->outstanding_total && port->wake_count <= port->shard_count;
}
