/*
 * test_shard.c — the shard group: create/start/stop/join with N = 1..4
 * threads (pinned, hooks run once each), plain io_uring set-up instead of
 * the best flags, stop waking shards that sleep with nothing to do, failed
 * starts, the local (thread-less) driver, option checks, and the per-shard
 * arena.
 *
 * Code on shard threads records into per-shard slots and never calls
 * cmocka asserts; the test thread checks after join.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>

#include "log.h"
#include "mem.h"
#include "shard.h"

#define NMAX 8
#define PINGS 200

struct st_shard {
	int started;
	int stopped;
	int pinned_ok;          /* affinity is exactly {sh->cpu} */
	uint64_t pongs_recv;
	uint64_t pings_recv;
	uint32_t errors;
};

struct st {
	uint32_t fail_id;       /* on_start fails on this shard (UINT32_MAX: none) */
	bool ping;              /* send PINGS messages to every other shard */
	struct st_shard sh[NMAX];
};

static enum xmsg_fn_result st_ping_fn(struct shard *sh, struct xmsg *m)
{
	struct st *st = m->pl.ptr[0];

	st->sh[sh->id].pings_recv++;
	return XMSG_REPLY;
}

static void st_ping_done(struct shard *sh, struct xmsg *m)
{
	struct st *st = m->ctx;

	st->sh[sh->id].pongs_recv++;
}

static enum sl_err st_on_start(struct shard *sh, void *arg)
{
	struct st *st = arg;
	struct st_shard *s = &st->sh[sh->id];
	cpu_set_t set;

	s->started++;
	sh->app = st;
	if (sh->cpu >= 0 && pthread_getaffinity_np(pthread_self(), sizeof(set), &set) == 0)
		s->pinned_ok = CPU_COUNT(&set) == 1 && CPU_ISSET(sh->cpu, &set);
	if (st->ping) {
		for (uint32_t to = 0; to < shard_group_count(sh->group); to++) {
			for (int i = 0; i < PINGS; i++) {
				struct xmsg m;
				memset(&m, 0, sizeof(m));
				m.fn = st_ping_fn;
				m.done = st_ping_done;
				m.ctx = st;
				m.pl.ptr[0] = st;
				if (xmsg_send(sh, to, &m) != SL_OK)
					s->errors++;
			}
		}
	}
	return sh->id == st->fail_id ? SL_EIO : SL_OK;
}

static void st_on_stop(struct shard *sh, void *arg)
{
	struct st *st = arg;

	st->sh[sh->id].stopped++;
}

static void st_options(struct shard_group_options *opt, struct st *st, uint32_t n)
{
	memset(opt, 0, sizeof(*opt));
	memset(st, 0, sizeof(*st));
	st->fail_id = UINT32_MAX;
	opt->shard_count = n;
	opt->on_start = st_on_start;
	opt->on_stop = st_on_stop;
	opt->arg = st;
}

/* Bounded wait until every shard of `g` is blocked with nothing to do. */
static bool st_wait_all_asleep(struct shard_group *g)
{
	struct timespec ms = { .tv_sec = 0, .tv_nsec = 1000000 };

	for (int i = 0; i < 10000; i++) {
		uint32_t asleep = 0;
		for (uint32_t id = 0; id < shard_group_count(g); id++)
			asleep += atomic_load(&shard_group_shard(g, id)->sleeping);
		if (asleep == shard_group_count(g))
			return true;
		nanosleep(&ms, NULL);
	}
	return false;
}

static void st_run_threads(uint32_t n, enum ring_setup setup, enum shard_wake wake, bool ping)
{
	struct shard_group_options opt;
	struct st st;
	struct shard_group *g;

	st_options(&opt, &st, n);
	opt.ring_setup = setup;
	opt.wake = wake;
	opt.xmsg_capacity = 256;   /* PINGS per destination fit */
	st.ping = ping;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	alarm(60);
	assert_int_equal(shard_group_start(g), SL_OK);
	/* start returned: every on_start ran, every ring exists. */
	for (uint32_t i = 0; i < n; i++) {
		struct shard *sh = shard_group_shard(g, i);
		assert_int_equal(st.sh[i].started, 1);
		assert_true(sh->cpu >= 0);
		if (setup == RING_SETUP_PLAIN)
			assert_int_equal(sh->ring.setup_flags, 0);
	}
	if (!ping)
		assert_true(st_wait_all_asleep(g));
	shard_group_stop(g);
	shard_group_stop(g);   /* idempotent */
	assert_int_equal(shard_group_join(g), SL_OK);
	alarm(0);
	for (uint32_t i = 0; i < n; i++) {
		struct shard *sh = shard_group_shard(g, i);
		assert_int_equal(st.sh[i].started, 1);
		assert_int_equal(st.sh[i].stopped, 1);
		assert_int_equal(st.sh[i].pinned_ok, 1);
		assert_int_equal(st.sh[i].errors, 0);
		assert_int_equal(sh->state, SHARD_DONE);
		assert_int_equal(sh->ring.inflight, 0);
		assert_int_equal(sh->wake_fd, -1);
		if (ping) {
			assert_int_equal(st.sh[i].pings_recv, (uint64_t)PINGS * n);
			assert_int_equal(st.sh[i].pongs_recv, (uint64_t)PINGS * n);
		} else {
			/* Each shard slept without a timeout until stop woke it. */
			assert_true(sh->block_count >= 1);
		}
		if (wake == SHARD_WAKE_EVENTFD)
			assert_false(sh->wake_msg_ring);
	}
	shard_group_destroy(g);
}

static void test_shard_group_lifecycle(void **state)
{
	(void)state;
	for (uint32_t n = 1; n <= 4; n++)
		st_run_threads(n, RING_SETUP_BEST, SHARD_WAKE_BEST, false);
}

static void test_shard_group_messages(void **state)
{
	(void)state;
	for (uint32_t n = 1; n <= 4; n++)
		st_run_threads(n, RING_SETUP_BEST, SHARD_WAKE_BEST, true);
}

static void test_shard_ring_plain_fallback(void **state)
{
	(void)state;
	for (uint32_t n = 1; n <= 4; n++) {
		st_run_threads(n, RING_SETUP_PLAIN, SHARD_WAKE_BEST, false);
		st_run_threads(n, RING_SETUP_PLAIN, SHARD_WAKE_BEST, true);
		st_run_threads(n, RING_SETUP_PLAIN, SHARD_WAKE_EVENTFD, true);
	}
}

/* Stop must wake shards blocked with no timer, repeatedly, at once. */
static void test_shard_stop_wakes_sleepers(void **state)
{
	(void)state;
	for (int round = 0; round < 20; round++)
		st_run_threads(4, RING_SETUP_BEST, (round & 1) ? SHARD_WAKE_EVENTFD : SHARD_WAKE_BEST,
			       false);
}

static void test_shard_start_failure_threads(void **state)
{
	struct shard_group_options opt;
	struct st st;
	struct shard_group *g;

	(void)state;
	st_options(&opt, &st, 3);
	st.fail_id = 1;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	alarm(60);
	/* start stops and joins the group itself on failure */
	assert_int_equal(shard_group_start(g), SL_EIO);
	alarm(0);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(st.sh[i].started, 1);
		/* on_stop only where on_start succeeded */
		assert_int_equal(st.sh[i].stopped, i == 1 ? 0 : 1);
	}
	shard_group_destroy(g);
}

static void test_shard_start_failure_local(void **state)
{
	struct shard_group_options opt;
	struct st st;
	struct shard_group *g;

	(void)state;
	st_options(&opt, &st, 2);
	st.fail_id = 0;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_EIO);
	assert_int_equal(st.sh[0].stopped, 0);
	assert_int_equal(st.sh[1].stopped, 1);
	shard_group_destroy(g);
}

/* A ring that cannot be made fails the start cleanly, threads or not. */
static void test_shard_setup_failure(void **state)
{
	struct shard_group_options opt;
	struct st st;
	struct shard_group *g;

	(void)state;
	for (int local = 0; local < 2; local++) {
		st_options(&opt, &st, 2);
		opt.ring_entries = 1u << 20;   /* above IORING_MAX_ENTRIES: EINVAL */
		assert_int_equal(shard_group_create(&g, &opt), SL_OK);
		alarm(60);
		if (local)
			assert_int_equal(shard_group_start_local(g), SL_EIO);
		else
			assert_int_equal(shard_group_start(g), SL_EIO);
		alarm(0);
		for (uint32_t i = 0; i < 2; i++) {
			assert_int_equal(st.sh[i].started, 0);
			assert_int_equal(st.sh[i].stopped, 0);
			assert_false(shard_group_shard(g, i)->ring_ready);
			assert_int_equal(shard_group_shard(g, i)->wake_fd, -1);
		}
		shard_group_destroy(g);
	}
}

/* The local driver: no threads, the test decides who runs when. */
static void test_shard_local_driver(void **state)
{
	struct shard_group_options opt;
	struct st st;
	struct shard_group *g;

	(void)state;
	st_options(&opt, &st, 3);
	opt.xmsg_capacity = 256;
	st.ping = true;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_OK);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(shard_group_shard(g, i)->cpu, -1);
		assert_int_equal(shard_group_shard(g, i)->state, SHARD_RUNNING);
	}
	/* Only shard 0 runs: it answers every ping sent to it, nothing else. */
	assert_int_equal(shard_run_once(shard_group_shard(g, 0), 0), SL_OK);
	/* One turn takes at most the budget (64) from each of the 3 rings. */
	assert_int_equal(st.sh[0].pings_recv, 3 * XMSG_BUDGET_DEFAULT);
	for (int i = 0; i < 10; i++)
		assert_int_equal(shard_run_once(shard_group_shard(g, 0), 0), SL_OK);
	assert_int_equal(st.sh[0].pings_recv, 3 * PINGS);
	assert_int_equal(st.sh[1].pings_recv, 0);
	assert_int_equal(st.sh[0].pongs_recv, PINGS);     /* its own pings only */
	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(st.sh[i].pings_recv, 3 * PINGS);
		assert_int_equal(st.sh[i].pongs_recv, 3 * PINGS);
		assert_int_equal(st.sh[i].stopped, 1);
		assert_int_equal(shard_group_shard(g, i)->state, SHARD_DONE);
	}
	shard_group_destroy(g);
}

/*
 * A turn with a timer armed waits for it — not forever, not less — then
 * runs it. Timer A fires first and arms timer B 2 ms later from its
 * callback, so the turn that runs A must then sleep until B's deadline
 * (however late A ran on a loaded machine).
 */
struct st_timer {
	struct timer t;
	int fired;
	struct st_timer *next;   /* armed 2 ms after this one fires */
	struct timer_set *ts;
};

static void st_timer_fire(struct timer *t, void *ctx)
{
	struct st_timer *x = (struct st_timer *)((char *)t - offsetof(struct st_timer, t));
	struct shard *sh = ctx;

	x->fired++;
	if (x->next != NULL && timer_add(x->ts, &x->next->t, shard_now_ns(sh) + 2000000) != SL_OK)
		x->fired = -1000;
}

static void test_shard_turn_waits_for_timer(void **state)
{
	struct shard_group_options opt;
	struct shard_group *g;
	struct st_timer a, b;

	(void)state;
	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 1;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_OK);
	struct shard *sh = shard_group_shard(g, 0);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	timer_init(&a.t, st_timer_fire);
	timer_init(&b.t, st_timer_fire);
	a.next = &b;
	a.ts = &sh->timers;
	int64_t t0 = shard_now_ns(sh);
	assert_int_equal(timer_add(&sh->timers, &a.t, t0 + 2000000), SL_OK);
	/* No cap on the wait (-1): only the timers end it. */
	alarm(10);
	int turns = 0;
	for (; turns < 100 && a.fired == 0; turns++)
		assert_int_equal(shard_run_once(sh, -1), SL_OK);
	alarm(0);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 0);
	assert_true(timer_armed(&b.t));
	assert_true(turns >= 2);
	assert_true(shard_now_ns(sh) >= b.t.deadline_ns);
	assert_int_equal(shard_run_once(sh, 0), SL_OK);
	assert_int_equal(b.fired, 1);
	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	shard_group_destroy(g);
}

static void test_shard_options(void **state)
{
	struct shard_group_options opt;
	struct shard_group *g = NULL;
	cpu_set_t set;

	(void)state;
	memset(&opt, 0, sizeof(opt));
	opt.shard_count = SHARD_COUNT_MAX + 1;
	assert_int_equal(shard_group_create(&g, &opt), SL_EINVAL);
	assert_null(g);
	opt.shard_count = 2;
	opt.xmsg_capacity = 6;
	assert_int_equal(shard_group_create(&g, &opt), SL_EINVAL);
	/* 0 shards: one per CPU of the affinity mask */
	memset(&opt, 0, sizeof(opt));
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_count(g), (uint32_t)CPU_COUNT(&set));
	assert_int_equal(shard_group_shard(g, 0)->state, SHARD_NEW);
	shard_group_destroy(g);   /* never started: fine */
	assert_string_equal(shard_ring_flags_str(0), "plain");
	assert_string_equal(shard_ring_flags_str(IORING_SETUP_SINGLE_ISSUER |
						 IORING_SETUP_DEFER_TASKRUN),
			    "SINGLE_ISSUER|DEFER_TASKRUN");
}

/* The arena: counts, zeroing, and nothing left at the end. */
static void test_shard_mem(void **state)
{
	struct shard_group_options opt;
	struct shard_group *g;
	void *p[64];

	(void)state;
	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 2;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_OK);
	struct shard *s0 = shard_group_shard(g, 0);
	struct shard *s1 = shard_group_shard(g, 1);
	for (size_t i = 0; i < SL_ARRAY_LEN(p); i++) {
		size_t size = (size_t)16 << (i % 12);
		p[i] = i % 2 ? mem_zalloc(s0, size) : mem_alloc(s0, size);
		assert_non_null(p[i]);
		if (i % 2)
			for (size_t b = 0; b < size; b++)
				assert_int_equal(((unsigned char *)p[i])[b], 0);
		memset(p[i], 0xab, size);
	}
	assert_int_equal(s0->mem.live_count, (int64_t)SL_ARRAY_LEN(p));
	assert_int_equal(s1->mem.live_count, 0);
	void *q = mem_alloc(s1, 100);
	assert_non_null(q);
	mem_free(s1, q);
	mem_free(s0, NULL);
	for (size_t i = 0; i < SL_ARRAY_LEN(p); i++)
		mem_free(s0, p[i]);
	assert_int_equal(s0->mem.live_count, 0);
	assert_int_equal(s1->mem.live_count, 0);
#ifdef SL_HAVE_JEMALLOC
	assert_true(s0->mem.arena != s1->mem.arena);
#endif
	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	shard_group_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shard_options),
		cmocka_unit_test(test_shard_mem),
		cmocka_unit_test(test_shard_turn_waits_for_timer),
		cmocka_unit_test(test_shard_local_driver),
		cmocka_unit_test(test_shard_setup_failure),
		cmocka_unit_test(test_shard_start_failure_local),
		cmocka_unit_test(test_shard_start_failure_threads),
		cmocka_unit_test(test_shard_group_lifecycle),
		cmocka_unit_test(test_shard_group_messages),
		cmocka_unit_test(test_shard_ring_plain_fallback),
		cmocka_unit_test(test_shard_stop_wakes_sleepers),
	};

	log_level_set(LOG_WARN);
	/* SL_TEST_FILTER=pattern runs only the matching tests. */
	if (getenv("SL_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("SL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
