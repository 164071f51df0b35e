/*
 * test_xmsg.c — cross-shard messages.
 *
 * The all-to-all test: every shard sends `per_pair` numbered messages to
 * every shard (itself included) through rings of capacity 4 or 8, so
 * xmsg_send says SL_EAGAIN all the time and the sender parks on an
 * xmsg_waiter. Each message carries a block the sender allocated from its
 * arena; the receiver reads it (borrowed) and answers in the payload; the
 * sender's done checks the answer and frees the block. Checked: every
 * message delivered exactly once and in order per (from, to), every reply
 * exactly once (in order too when nothing is deferred), sends == receipts
 * == replies, no arena block left, the grid empty, on_stop's messages still
 * delivered during shutdown. Run with N = 1..4, with real threads (both
 * wake-up mechanisms) and with the deterministic single-thread driver
 * (seeded random shard order), with and without deferred replies.
 *
 * Then: a shard sleeping with no timers is woken by a message, hundreds
 * of times in a row (the lost-wake-up race), with MSG_RING and eventfd;
 * credits and waiters in detail; sizes and defaults.
 *
 * Code running on shards never calls cmocka asserts (they longjmp on the
 * test thread): it counts failures in XT_CHECK, checked after join.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"
#include "mem.h"
#include "shard.h"
#include "xmsg.h"

#define NMAX 4
#define CAP_MAX 8
#define TOKEN_MAGIC 0x5eed5eed00000000ULL

enum { XT_DATA = 1, XT_BYE = 2 };

struct xt;

/* One shard's side of the test; touched only by that shard until join. */
struct xt_shard {
	struct xt *t;
	uint32_t id;
	uint64_t next_seq[NMAX];     /* sender: next sequence number to `to` */
	uint64_t expect_seq[NMAX];   /* receiver: next expected from `from` */
	uint64_t sent[NMAX];
	uint64_t received[NMAX];
	uint64_t replied[NMAX];
	uint64_t eagain;
	uint64_t bye_recv, bye_done;
	struct xmsg_waiter waiter[NMAX];
	struct xmsg deferred[NMAX * CAP_MAX];
	uint32_t deferred_count;
	struct timer defer_timer;
	bool finished;
	uint32_t errors;
	int error_line;
};

struct xt {
	uint32_t n;
	uint64_t per_pair;
	bool defer;
	struct shard_group *g;
	uint8_t *replied_map;        /* [from][to][seq], written by `from` */
	_Atomic uint32_t finished;
	struct xt_shard sh[NMAX];
};

#define XT_CHECK(s, cond) \
	do { \
		if (!(cond)) { \
			if ((s)->errors++ == 0) \
				(s)->error_line = __LINE__; \
		} \
	} while (0)

static uint64_t xt_answer(uint64_t seq, uint32_t replier)
{
	return seq * 2654435761u + replier + 1;
}

static void xt_pump(struct shard *sh, uint32_t to);

static void xt_waiter_fn(struct shard *sh, struct xmsg_waiter *w)
{
	struct xt_shard *s = sh->app;

	XT_CHECK(s, w->to < s->t->n && xmsg_credits(sh, w->to) > 0);
	xt_pump(sh, w->to);
}

/* Runs on the sender: the reply is back. */
static void xt_done(struct shard *sh, struct xmsg *m)
{
	struct xt_shard *s = sh->app;
	struct xt *t = s->t;
	uint32_t to = m->to;
	uint64_t seq = m->pl.u64[0];

	XT_CHECK(s, m->ctx == s && m->from == sh->id && m->type == XT_DATA);
	XT_CHECK(s, to < t->n && seq < t->per_pair);
	if (to >= t->n || seq >= t->per_pair)
		return;
	XT_CHECK(s, m->pl.u64[2] == xt_answer(seq, to));
	uint8_t *map = &t->replied_map[((size_t)sh->id * t->n + to) * t->per_pair];
	XT_CHECK(s, map[seq] == 0);
	map[seq] = 1;
	if (!t->defer)
		XT_CHECK(s, seq == s->replied[to]);
	s->replied[to]++;
	mem_free(sh, m->pl.ptr[1]);

	uint64_t total = 0;
	for (uint32_t i = 0; i < t->n; i++)
		total += s->replied[i];
	if (total == t->n * t->per_pair && !s->finished) {
		s->finished = true;
		if (atomic_fetch_add(&t->finished, 1) + 1 == t->n)
			shard_group_stop(t->g);
	}
}

static void xt_defer_fire(struct timer *tm, void *ctx)
{
	struct shard *sh = ctx;
	struct xt_shard *s = sh->app;

	(void)tm;
	/* Reply newest first, so that replies really come back out of order. */
	for (uint32_t i = s->deferred_count; i > 0; i--)
		xmsg_reply(sh, &s->deferred[i - 1]);
	s->deferred_count = 0;
}

/* Runs on the receiver. */
static enum xmsg_fn_result xt_fn(struct shard *sh, struct xmsg *m)
{
	struct xt_shard *s = sh->app;
	struct xt *t = s->t;
	uint32_t from = m->from;
	uint64_t seq = m->pl.u64[0];
	const uint64_t *tok = m->pl.ptr[1];

	XT_CHECK(s, m->to == sh->id && from < t->n && m->type == XT_DATA);
	if (from >= t->n)
		return XMSG_REPLY;
	XT_CHECK(s, seq == s->expect_seq[from]);
	s->expect_seq[from] = seq + 1;
	XT_CHECK(s, tok[0] == seq && tok[1] == (TOKEN_MAGIC ^ from));
	s->received[from]++;
	m->pl.u64[2] = xt_answer(seq, sh->id);
	if (t->defer && seq % 5 == 2) {
		XT_CHECK(s, s->deferred_count < SL_ARRAY_LEN(s->deferred));
		s->deferred[s->deferred_count++] = *m;
		if (!timer_armed(&s->defer_timer))
			XT_CHECK(s, timer_add(&sh->timers, &s->defer_timer, shard_now_ns(sh)) == SL_OK);
		return XMSG_DEFER;
	}
	return XMSG_REPLY;
}

/* Sends to `to` until done or out of credits (then parks on a waiter). */
static void xt_pump(struct shard *sh, uint32_t to)
{
	struct xt_shard *s = sh->app;
	struct xt *t = s->t;

	while (s->sent[to] < t->per_pair) {
		uint64_t *tok = mem_alloc(sh, 2 * sizeof(uint64_t));
		XT_CHECK(s, tok != NULL);
		if (tok == NULL)
			return;
		uint32_t credits = xmsg_credits(sh, to);
		tok[0] = s->next_seq[to];
		tok[1] = TOKEN_MAGIC ^ sh->id;
		struct xmsg m;
		memset(&m, 0, sizeof(m));
		m.type = XT_DATA;
		m.fn = xt_fn;
		m.done = xt_done;
		m.ctx = s;
		m.pl.u64[0] = s->next_seq[to];
		m.pl.ptr[1] = tok;
		enum sl_err err = xmsg_send(sh, to, &m);
		if (err == SL_EAGAIN) {
			XT_CHECK(s, credits == 0);
			mem_free(sh, tok);
			s->eagain++;
			xmsg_waiter_add(sh, to, &s->waiter[to], xt_waiter_fn);
			return;
		}
		XT_CHECK(s, err == SL_OK && credits > 0);
		XT_CHECK(s, xmsg_credits(sh, to) == credits - 1);
		s->next_seq[to]++;
		s->sent[to]++;
	}
}

static enum sl_err xt_on_start(struct shard *sh, void *arg)
{
	struct xt *t = arg;
	struct xt_shard *s = &t->sh[sh->id];

	s->t = t;
	s->id = sh->id;
	sh->app = s;
	timer_init(&s->defer_timer, xt_defer_fire);
	for (uint32_t to = 0; to < t->n; to++)
		xt_pump(sh, to);
	return SL_OK;
}

static enum xmsg_fn_result xt_bye_fn(struct shard *sh, struct xmsg *m)
{
	struct xt_shard *s = sh->app;

	XT_CHECK(s, m->type == XT_BYE && m->to == sh->id);
	s->bye_recv++;
	return XMSG_REPLY;
}

static void xt_bye_done(struct shard *sh, struct xmsg *m)
{
	struct xt_shard *s = sh->app;

	XT_CHECK(s, m->type == XT_BYE && m->ctx == s);
	s->bye_done++;
}

/* Shutdown still carries messages: say goodbye to everyone. */
static void xt_on_stop(struct shard *sh, void *arg)
{
	struct xt_shard *s = sh->app;
	struct xt *t = arg;

	XT_CHECK(s, shard_stopping(sh));
	for (uint32_t to = 0; to < t->n; to++) {
		struct xmsg m;
		memset(&m, 0, sizeof(m));
		m.type = XT_BYE;
		m.fn = xt_bye_fn;
		m.done = xt_bye_done;
		m.ctx = s;
		XT_CHECK(s, xmsg_send(sh, to, &m) == SL_OK);
	}
}

enum xt_mode { XT_LOCAL, XT_THREADS };

static void xt_run(uint32_t n, uint32_t cap, uint64_t per_pair, enum xt_mode mode,
		   enum shard_wake wake, bool defer, uint64_t seed)
{
	struct xt *t = calloc(1, sizeof(*t));
	struct shard_group_options opt;

	assert_non_null(t);
	assert_true(n <= NMAX && cap <= CAP_MAX);
	t->n = n;
	t->per_pair = per_pair;
	t->defer = defer;
	t->replied_map = calloc((size_t)n * n * per_pair, 1);
	assert_non_null(t->replied_map);
	atomic_init(&t->finished, 0);

	memset(&opt, 0, sizeof(opt));
	opt.shard_count = n;
	opt.xmsg_capacity = cap;
	opt.xmsg_budget = 3;   /* small: turns end with work left over */
	opt.wake = wake;
	opt.on_start = xt_on_start;
	opt.on_stop = xt_on_stop;
	opt.arg = t;
	assert_int_equal(shard_group_create(&t->g, &opt), SL_OK);
	assert_int_equal(shard_group_count(t->g), n);

	if (mode == XT_THREADS) {
		alarm(120);   /* a lost wake-up hangs: fail instead */
		assert_int_equal(shard_group_start(t->g), SL_OK);
		assert_int_equal(shard_group_join(t->g), SL_OK);
		alarm(0);
	} else {
		assert_int_equal(shard_group_start_local(t->g), SL_OK);
		uint64_t turns = 0;
		for (; turns < 10000000 && atomic_load(&t->finished) < n; turns++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			struct shard *sh = shard_group_shard(t->g, (uint32_t)(seed >> 33) % n);
			assert_int_equal(shard_run_once(sh, 0), SL_OK);
		}
		assert_int_equal(atomic_load(&t->finished), n);
		assert_int_equal(shard_group_join(t->g), SL_OK);
	}

	uint64_t sends = 0, receipts = 0, replies = 0, eagain = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct xt_shard *s = &t->sh[i];
		struct shard *sh = shard_group_shard(t->g, i);
		if (s->errors != 0)
			fail_msg("shard %u: %u check(s) failed, first at line %d", i, s->errors,
				 s->error_line);
		for (uint32_t j = 0; j < n; j++) {
			assert_int_equal(s->sent[j], per_pair);
			assert_int_equal(s->received[j], per_pair);
			assert_int_equal(s->replied[j], per_pair);
			assert_int_equal(s->expect_seq[j], per_pair);
			sends += s->sent[j];
			receipts += s->received[j];
			replies += s->replied[j];
		}
		assert_int_equal(s->bye_recv, n);
		assert_int_equal(s->bye_done, n);
		assert_int_equal(s->deferred_count, 0);
		eagain += s->eagain;
		/* Port statistics agree with the test's own counts. */
		assert_int_equal(sh->xmsg.sent_count, n * per_pair + n);
		assert_int_equal(sh->xmsg.recv_count, n * per_pair + n);
		assert_int_equal(sh->xmsg.done_count, n * per_pair + n);
		assert_int_equal(sh->xmsg.eagain_count, s->eagain);
		assert_int_equal(sh->xmsg.outstanding_total, 0);
		assert_int_equal(sh->mem.live_count, 0);
		assert_int_equal(sh->state, SHARD_DONE);
		/* After shutdown, sending is refused. */
		struct xmsg m;
		memset(&m, 0, sizeof(m));
		m.fn = xt_fn;
		assert_int_equal(xmsg_send(sh, 0, &m), SL_ECLOSED);
	}
	assert_int_equal(sends, (uint64_t)n * n * per_pair);
	assert_int_equal(receipts, sends);
	assert_int_equal(replies, sends);
	for (size_t i = 0; i < (size_t)n * n * per_pair; i++)
		assert_int_equal(t->replied_map[i], 1);
	/* Rings this small must have pushed back. */
	assert_true(eagain > 0);
	assert_true(xmsg_grid_empty(shard_group_grid(t->g)));
	shard_group_destroy(t->g);
	free(t->replied_map);
	free(t);
}

static void test_xmsg_local_all_to_all(void **state)
{
	(void)state;
	for (uint32_t n = 1; n <= 4; n++) {
		for (uint32_t cap = 4; cap <= 8; cap *= 2) {
			xt_run(n, cap, 500, XT_LOCAL, SHARD_WAKE_BEST, false, n * 100 + cap);
			xt_run(n, cap, 500, XT_LOCAL, SHARD_WAKE_BEST, true, n * 1000 + cap);
		}
	}
}

static void test_xmsg_threads_all_to_all(void **state)
{
	(void)state;
	for (uint32_t n = 1; n <= 4; n++) {
		for (uint32_t cap = 4; cap <= 8; cap *= 2) {
			xt_run(n, cap, 3000, XT_THREADS, SHARD_WAKE_BEST, false, 0);
			xt_run(n, cap, 3000, XT_THREADS, SHARD_WAKE_BEST, true, 0);
		}
	}
}

static void test_xmsg_threads_all_to_all_eventfd(void **state)
{
	(void)state;
	for (uint32_t n = 1; n <= 4; n++) {
		xt_run(n, 4, 3000, XT_THREADS, SHARD_WAKE_EVENTFD, false, 0);
		xt_run(n, 8, 3000, XT_THREADS, SHARD_WAKE_EVENTFD, true, 0);
	}
}

/*
 * Lost wake-up. Shard 1 has no timers: when idle it blocks in io_uring
 * with no timeout. Two variants:
 *   LW_ASLEEP:   shard 0 polls (a 20 us timer) until shard 1's sleeping
 *                flag is up, then sends one message: a message must wake a
 *                shard that is asleep.
 *   LW_PINGPONG: shard 0 sends the next message as soon as the reply is
 *                back, i.e. while shard 1 is on its way to sleep — the
 *                window the sleep re-check exists for.
 * Shard 0 then waits for the reply with only a watchdog timer armed, so the
 * reply must wake it too. A lost wake-up trips the watchdog (the test
 * fails instead of hanging).
 */
enum lw_mode { LW_ASLEEP, LW_PINGPONG };

struct lw {
	struct shard_group *g;
	enum lw_mode mode;
	uint32_t rounds_target;
	uint32_t rounds_done;
	bool in_flight;
	bool timed_out;
	struct timer tick;
	struct timer watchdog;
	uint64_t received;          /* on shard 1 */
	uint64_t sent_while_asleep;
	uint32_t errors;
	int error_line;
};

static enum xmsg_fn_result lw_fn(struct shard *sh, struct xmsg *m)
{
	struct lw *lw = m->pl.ptr[0];

	XT_CHECK(lw, sh->id == 1);
	lw->received++;
	return XMSG_REPLY;
}

static void lw_done(struct shard *sh, struct xmsg *m);

/* Shard 0 sends one round's message and re-arms the watchdog. */
static void lw_send(struct shard *sh, struct lw *lw)
{
	struct xmsg m;

	memset(&m, 0, sizeof(m));
	m.fn = lw_fn;
	m.done = lw_done;
	m.ctx = lw;
	m.pl.ptr[0] = lw;
	XT_CHECK(lw, xmsg_send(sh, 1, &m) == SL_OK);
	lw->in_flight = true;
	XT_CHECK(lw, timer_rearm(&sh->timers, &lw->watchdog, shard_now_ns(sh) + 5000000000LL) == SL_OK);
}

static void lw_done(struct shard *sh, struct xmsg *m)
{
	struct lw *lw = m->ctx;

	XT_CHECK(lw, sh->id == 0 && lw->in_flight);
	lw->in_flight = false;
	lw->rounds_done++;
	if (lw->rounds_done == lw->rounds_target) {
		shard_group_stop(lw->g);
		return;
	}
	if (lw->mode == LW_PINGPONG)
		lw_send(sh, lw);
	else
		XT_CHECK(lw, timer_add(&sh->timers, &lw->tick, shard_now_ns(sh) + 20000) == SL_OK);
}

static void lw_tick(struct timer *tm, void *ctx)
{
	struct shard *sh = ctx;
	struct lw *lw = sh->app;
	struct shard *peer = shard_peer(sh, 1);

	if (atomic_load(&peer->sleeping) == 0) {
		XT_CHECK(lw, timer_add(&sh->timers, tm, shard_now_ns(sh) + 20000) == SL_OK);
		return;
	}
	lw->sent_while_asleep++;
	lw_send(sh, lw);
}

static void lw_watchdog(struct timer *tm, void *ctx)
{
	struct shard *sh = ctx;
	struct lw *lw = sh->app;

	(void)tm;
	lw->timed_out = true;
	shard_group_stop(lw->g);
}

static enum sl_err lw_on_start(struct shard *sh, void *arg)
{
	struct lw *lw = arg;

	sh->app = lw;
	if (sh->id != 0)
		return SL_OK;
	timer_init(&lw->tick, lw_tick);
	timer_init(&lw->watchdog, lw_watchdog);
	if (timer_add(&sh->timers, &lw->tick, shard_now_ns(sh) + 20000) != SL_OK)
		return SL_EAGAIN;
	return SL_OK;
}

static void lw_on_stop(struct shard *sh, void *arg)
{
	struct lw *lw = arg;

	if (sh->id != 0)
		return;
	timer_cancel(&sh->timers, &lw->tick);
	timer_cancel(&sh->timers, &lw->watchdog);
}

static void lw_run(enum shard_wake wake, enum lw_mode mode)
{
	struct lw lw;
	struct shard_group_options opt;

	memset(&lw, 0, sizeof(lw));
	lw.mode = mode;
	lw.rounds_target = mode == LW_ASLEEP ? 300 : 20000;
	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 2;
	opt.wake = wake;
	opt.on_start = lw_on_start;
	opt.on_stop = lw_on_stop;
	opt.arg = &lw;
	assert_int_equal(shard_group_create(&lw.g, &opt), SL_OK);
	alarm(120);
	assert_int_equal(shard_group_start(lw.g), SL_OK);
	assert_int_equal(shard_group_join(lw.g), SL_OK);
	alarm(0);
	if (lw.errors != 0)
		fail_msg("%u check(s) failed, first at line %d", lw.errors, lw.error_line);
	assert_false(lw.timed_out);
	assert_int_equal(lw.rounds_done, lw.rounds_target);
	assert_int_equal(lw.received, lw.rounds_target);
	struct shard *s0 = shard_group_shard(lw.g, 0);
	struct shard *s1 = shard_group_shard(lw.g, 1);
	if (mode == LW_ASLEEP) {
		assert_int_equal(lw.sent_while_asleep, lw.rounds_target);
		/*
		 * Shard 1 blocked without a timeout between rounds. Not every
		 * round: the message may land between its flag store and its
		 * re-check, which then skips the wait (the race the re-check
		 * is for).
		 */
		assert_true(s1->block_count > 0);
	}
	assert_true(s0->wake_sent_count > 0);
	if (wake == SHARD_WAKE_EVENTFD) {
		assert_false(s0->wake_msg_ring);
		assert_true(s1->wake_read_count > 0);
	}
	shard_group_destroy(lw.g);
}

static void test_xmsg_lost_wakeup_msg_ring(void **state)
{
	(void)state;
	lw_run(SHARD_WAKE_BEST, LW_ASLEEP);
	lw_run(SHARD_WAKE_BEST, LW_PINGPONG);
}

static void test_xmsg_lost_wakeup_eventfd(void **state)
{
	(void)state;
	lw_run(SHARD_WAKE_EVENTFD, LW_ASLEEP);
	lw_run(SHARD_WAKE_EVENTFD, LW_PINGPONG);
}

/* Credits, EAGAIN, waiter FIFO and cancel, on a local pair with CAP 2. */
struct cw {
	int order[8];
	int count;
	struct xmsg_waiter w[3];
};

static void cw_fn_0(struct shard *sh, struct xmsg_waiter *w)
{
	struct cw *cw = sh->app;

	(void)w;
	cw->order[cw->count++] = 0;
}

static void cw_fn_2(struct shard *sh, struct xmsg_waiter *w)
{
	struct cw *cw = sh->app;

	(void)w;
	cw->order[cw->count++] = 2;
}

static enum xmsg_fn_result cw_echo(struct shard *sh, struct xmsg *m)
{
	(void)sh;
	m->pl.i64[0] = -m->pl.i64[0];
	return XMSG_REPLY;
}

static void cw_done(struct shard *sh, struct xmsg *m)
{
	int64_t *sum = m->ctx;

	(void)sh;
	*sum += m->pl.i64[0];
}

/* An echo message adding `v` to the int64 at `sum` when it comes back. */
static void cw_msg_init(struct xmsg *m, int64_t *sum, int64_t v)
{
	memset(m, 0, sizeof(*m));
	m->fn = cw_echo;
	m->done = cw_done;
	m->ctx = sum;
	m->pl.i64[0] = v;
}

/* Two local shards with 2 credits per direction; shard 0's app is `cw`. */
static struct shard_group *cw_group_start(struct cw *cw)
{
	struct shard_group_options opt;
	struct shard_group *g;

	memset(cw, 0, sizeof(*cw));
	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 2;
	opt.xmsg_capacity = 2;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_OK);
	shard_group_shard(g, 0)->app = cw;
	return g;
}

static void test_xmsg_credits_and_waiters(void **state)
{
	struct shard_group *g;
	struct cw cw;
	int64_t sum = 0;

	(void)state;
	g = cw_group_start(&cw);
	struct shard *s0 = shard_group_shard(g, 0);
	struct shard *s1 = shard_group_shard(g, 1);

	struct xmsg m;
	cw_msg_init(&m, &sum, 5);
	assert_int_equal(xmsg_credits(s0, 1), 2);
	assert_int_equal(xmsg_send(s0, 1, &m), SL_OK);
	m.pl.i64[0] = 7;
	assert_int_equal(xmsg_send(s0, 1, &m), SL_OK);
	assert_int_equal(xmsg_credits(s0, 1), 0);
	assert_int_equal(xmsg_send(s0, 1, &m), SL_EAGAIN);
	assert_int_equal(xmsg_credits(s0, 0), 2);   /* other destinations unaffected */
	assert_true(xmsg_pending(s1));
	assert_false(xmsg_pending(s0));

	xmsg_waiter_add(s0, 1, &cw.w[0], cw_fn_0);
	xmsg_waiter_add(s0, 1, &cw.w[1], cw_fn_0);
	xmsg_waiter_add(s0, 1, &cw.w[2], cw_fn_2);
	xmsg_waiter_cancel(s0, &cw.w[1]);
	xmsg_waiter_cancel(s0, &cw.w[1]);   /* twice: a no-op */
	assert_false(cw.w[1].queued);

	/* The receiver answers; nothing returns to shard 0 before its turn. */
	assert_int_equal(shard_run_once(s1, 0), SL_OK);
	assert_int_equal(s1->xmsg.recv_count, 2);
	assert_int_equal(cw.count, 0);
	assert_int_equal(xmsg_credits(s0, 1), 0);
	assert_true(xmsg_pending(s0));
	assert_int_equal(shard_run_once(s0, 0), SL_OK);
	assert_int_equal(sum, -12);
	assert_int_equal(xmsg_credits(s0, 1), 2);
	assert_int_equal(cw.count, 2);
	assert_int_equal(cw.order[0], 0);
	assert_int_equal(cw.order[1], 2);
	assert_false(cw.w[0].queued || cw.w[2].queued);

	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	shard_group_destroy(g);
}

/* Waiters that send run only while credits last; the rest wait their turn. */
static int64_t cw_sum;

static void cw_fn_send(struct shard *sh, struct xmsg_waiter *w)
{
	struct cw *cw = sh->app;
	struct xmsg m;

	cw->order[cw->count++] = (int)(w - cw->w);
	cw_msg_init(&m, &cw_sum, 1);
	assert_int_equal(xmsg_send(sh, w->to, &m), SL_OK);
}

static void test_xmsg_waiters_stop_at_zero_credits(void **state)
{
	struct shard_group *g;
	struct cw cw;
	struct xmsg m;

	(void)state;
	cw_sum = 0;
	g = cw_group_start(&cw);
	struct shard *s0 = shard_group_shard(g, 0);
	struct shard *s1 = shard_group_shard(g, 1);

	cw_msg_init(&m, &cw_sum, 1);
	assert_int_equal(xmsg_send(s0, 1, &m), SL_OK);
	assert_int_equal(xmsg_send(s0, 1, &m), SL_OK);
	for (int i = 0; i < 3; i++)
		xmsg_waiter_add(s0, 1, &cw.w[i], cw_fn_send);
	/* Two replies free two credits: waiters 0 and 1 each spend one. */
	assert_int_equal(shard_run_once(s1, 0), SL_OK);
	assert_int_equal(shard_run_once(s0, 0), SL_OK);
	assert_int_equal(cw.count, 2);
	assert_int_equal(cw.order[0], 0);
	assert_int_equal(cw.order[1], 1);
	assert_true(cw.w[2].queued);
	assert_int_equal(xmsg_credits(s0, 1), 0);
	/* No reply, no waiter. */
	assert_int_equal(shard_run_once(s0, 0), SL_OK);
	assert_int_equal(cw.count, 2);
	assert_int_equal(shard_run_once(s1, 0), SL_OK);
	assert_int_equal(shard_run_once(s0, 0), SL_OK);
	assert_int_equal(cw.count, 3);
	assert_int_equal(cw.order[2], 2);
	assert_false(cw.w[2].queued);
	assert_int_equal(cw_sum, -4);

	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	assert_int_equal(cw_sum, -5);
	shard_group_destroy(g);
}

static void test_xmsg_sizes(void **state)
{
	struct xmsg_grid grid;

	(void)state;
	assert_int_equal(sizeof(struct xmsg), 64);
	assert_int_equal(sizeof(struct xmsg_ring) % SL_CACHELINE, 0);
	assert_int_equal(offsetof(struct xmsg_ring, head) - offsetof(struct xmsg_ring, tail),
			 SL_CACHELINE);
	assert_int_equal(xmsg_capacity_default(1), XMSG_CAPACITY_DEFAULT);
	assert_int_equal(xmsg_capacity_default(4), XMSG_CAPACITY_DEFAULT);
	for (uint32_t n = 1; n <= SHARD_COUNT_MAX; n *= 2) {
		uint32_t cap = xmsg_capacity_default(n);
		assert_true(cap >= 16 && (cap & (cap - 1)) == 0);
		assert_true(cap == 16 || 2ull * n * n * cap * 64 <= XMSG_GRID_BYTES_DEFAULT_MAX);
	}
	assert_int_equal(xmsg_grid_create(&grid, 2, 3), SL_EINVAL);
	assert_int_equal(xmsg_grid_create(&grid, 2, 1), SL_EINVAL);
	assert_int_equal(xmsg_grid_create(&grid, 0, 4), SL_EINVAL);
	assert_int_equal(xmsg_grid_create(&grid, 3, 4), SL_OK);
	assert_true(xmsg_grid_empty(&grid));
	assert_int_equal(grid.req[0].mask, 3);
	xmsg_grid_destroy(&grid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xmsg_sizes),
		cmocka_unit_test(test_xmsg_credits_and_waiters),
		cmocka_unit_test(test_xmsg_waiters_stop_at_zero_credits),
		cmocka_unit_test(test_xmsg_local_all_to_all),
		cmocka_unit_test(test_xmsg_threads_all_to_all),
		cmocka_unit_test(test_xmsg_threads_all_to_all_eventfd),
		cmocka_unit_test(test_xmsg_lost_wakeup_msg_ring),
		cmocka_unit_test(test_xmsg_lost_wakeup_eventfd),
	};

	log_level_set(LOG_WARN);
	/* SL_TEST_FILTER=pattern runs only the matching tests. */
	if (getenv("SL_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("SL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
