/*
 * test_timer.c — the per-shard timer heap: firing order (deadline, then
 * arming order), cancel, re-arm, the fixed bound, bounded runs when a
 * callback re-arms itself, a randomised comparison with a brute-force
 * model, and the shard's injected clock driving timers in a local group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "log.h"
#include "shard.h"
#include "timer.h"

#define FIRED_MAX 256

struct rec {
	int order[FIRED_MAX];
	int count;
};

struct tmr {
	struct timer t;
	int id;
	struct rec *rec;
	int rearm_in;         /* > 0: re-arm this far after the deadline */
	struct timer_set *ts;
};

static void tmr_fire(struct timer *t, void *ctx)
{
	struct tmr *x = (struct tmr *)((char *)t - offsetof(struct tmr, t));

	(void)ctx;
	assert_false(timer_armed(t));
	assert_true(x->rec->count < FIRED_MAX);
	x->rec->order[x->rec->count++] = x->id;
	if (x->rearm_in != 0)
		assert_int_equal(timer_add(x->ts, t, t->deadline_ns + x->rearm_in), SL_OK);
}

static void tmr_setup(struct tmr *x, int id, struct rec *rec, struct timer_set *ts)
{
	timer_init(&x->t, tmr_fire);
	x->id = id;
	x->rec = rec;
	x->rearm_in = 0;
	x->ts = ts;
}

static void test_timer_order(void **state)
{
	struct timer_set ts;
	struct tmr x[6];
	struct rec rec = { .count = 0 };
	/* deadlines: ids 2 and 4 share 30, armed 2 first -> 2 before 4 */
	const int64_t dl[6] = { 50, 10, 30, 20, 30, 40 };

	(void)state;
	assert_int_equal(timer_set_init(&ts, 16, NULL), SL_OK);
	assert_int_equal(timer_next_deadline(&ts), TIMER_DEADLINE_NONE);
	for (int i = 0; i < 6; i++) {
		tmr_setup(&x[i], i, &rec, &ts);
		assert_int_equal(timer_add(&ts, &x[i].t, dl[i]), SL_OK);
		assert_true(timer_armed(&x[i].t));
	}
	assert_true(timer_set_check(&ts));
	assert_int_equal(timer_next_deadline(&ts), 10);
	assert_int_equal(timer_run_expired(&ts, 9), 0);
	assert_int_equal(timer_run_expired(&ts, 30), 4);
	const int want[] = { 1, 3, 2, 4 };
	assert_int_equal(rec.count, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rec.order[i], want[i]);
	assert_int_equal(timer_next_deadline(&ts), 40);
	assert_int_equal(timer_run_expired(&ts, 1000), 2);
	assert_int_equal(rec.order[4], 5);
	assert_int_equal(rec.order[5], 0);
	assert_int_equal(timer_next_deadline(&ts), TIMER_DEADLINE_NONE);
	timer_set_free(&ts);
}

static void test_timer_cancel(void **state)
{
	struct timer_set ts;
	struct tmr x[5];
	struct rec rec = { .count = 0 };

	(void)state;
	assert_int_equal(timer_set_init(&ts, 8, NULL), SL_OK);
	for (int i = 0; i < 5; i++) {
		tmr_setup(&x[i], i, &rec, &ts);
		assert_int_equal(timer_add(&ts, &x[i].t, 100 + i), SL_OK);
	}
	timer_cancel(&ts, &x[0].t);   /* the root */
	timer_cancel(&ts, &x[3].t);   /* an inner node */
	timer_cancel(&ts, &x[3].t);   /* twice: a no-op */
	assert_false(timer_armed(&x[0].t));
	assert_true(timer_set_check(&ts));
	assert_int_equal(ts.count, 3);
	assert_int_equal(timer_next_deadline(&ts), 101);
	assert_int_equal(timer_run_expired(&ts, 1000), 3);
	assert_int_equal(rec.count, 3);
	assert_int_equal(rec.order[0], 1);
	assert_int_equal(rec.order[1], 2);
	assert_int_equal(rec.order[2], 4);
	timer_set_free(&ts);
}

static void test_timer_rearm(void **state)
{
	struct timer_set ts;
	struct tmr x[3];
	struct rec rec = { .count = 0 };

	(void)state;
	assert_int_equal(timer_set_init(&ts, 8, NULL), SL_OK);
	for (int i = 0; i < 3; i++) {
		tmr_setup(&x[i], i, &rec, &ts);
		assert_int_equal(timer_add(&ts, &x[i].t, 10 * (i + 1)), SL_OK);
	}
	assert_int_equal(timer_rearm(&ts, &x[0].t, 25), SL_OK);   /* later */
	assert_int_equal(timer_rearm(&ts, &x[2].t, 5), SL_OK);    /* earlier */
	/* An idle timer is armed by rearm. */
	assert_int_equal(timer_run_expired(&ts, 5), 1);
	assert_int_equal(timer_rearm(&ts, &x[2].t, 20), SL_OK);   /* ties x[1]: after it */
	assert_true(timer_set_check(&ts));
	assert_int_equal(timer_run_expired(&ts, 100), 3);
	const int want[] = { 2, 1, 2, 0 };
	assert_int_equal(rec.count, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rec.order[i], want[i]);
	timer_set_free(&ts);
}

static void test_timer_bound(void **state)
{
	struct timer_set ts;
	struct tmr x[5];
	struct rec rec = { .count = 0 };

	(void)state;
	assert_int_equal(timer_set_init(&ts, 4, NULL), SL_OK);
	for (int i = 0; i < 5; i++)
		tmr_setup(&x[i], i, &rec, &ts);
	for (int i = 0; i < 4; i++)
		assert_int_equal(timer_add(&ts, &x[i].t, i), SL_OK);
	assert_int_equal(timer_add(&ts, &x[4].t, 0), SL_EAGAIN);
	assert_false(timer_armed(&x[4].t));
	assert_int_equal(timer_rearm(&ts, &x[4].t, 0), SL_EAGAIN);
	assert_int_equal(timer_rearm(&ts, &x[3].t, 9), SL_OK);    /* armed: no slot needed */
	assert_int_equal(timer_run_expired(&ts, 0), 1);
	assert_int_equal(timer_add(&ts, &x[4].t, 0), SL_OK);
	assert_int_equal(timer_run_expired(&ts, 100), 4);
	timer_set_free(&ts);
}

/* A callback re-arming itself in the past must not make run_expired spin. */
static void test_timer_self_rearm_bounded(void **state)
{
	struct timer_set ts;
	struct tmr x;
	struct rec rec = { .count = 0 };

	(void)state;
	assert_int_equal(timer_set_init(&ts, 2, NULL), SL_OK);
	tmr_setup(&x, 7, &rec, &ts);
	x.rearm_in = 1;   /* deadline + 1, still <= now */
	assert_int_equal(timer_add(&ts, &x.t, 0), SL_OK);
	assert_int_equal(timer_run_expired(&ts, 1000), 1);
	assert_true(timer_armed(&x.t));
	assert_int_equal(timer_run_expired(&ts, 1000), 1);
	assert_int_equal(rec.count, 2);
	timer_cancel(&ts, &x.t);
	timer_set_free(&ts);
}

static uint64_t rng_next(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

/* Random add/cancel/rearm/run against a brute-force minimum. */
static void test_timer_random_model(void **state)
{
	enum { N = 64 };
	struct timer_set ts;
	struct tmr x[N];
	struct rec rec = { .count = 0 };
	uint64_t seed = 42;

	(void)state;
	assert_int_equal(timer_set_init(&ts, N, NULL), SL_OK);
	for (int i = 0; i < N; i++)
		tmr_setup(&x[i], i, &rec, &ts);
	for (int op = 0; op < 20000; op++) {
		struct tmr *t = &x[rng_next(&seed) % N];
		int64_t dl = (int64_t)(rng_next(&seed) % 1000);
		switch (rng_next(&seed) % 4) {
		case 0:
			if (!timer_armed(&t->t))
				assert_int_equal(timer_add(&ts, &t->t, dl), SL_OK);
			break;
		case 1:
			timer_cancel(&ts, &t->t);
			break;
		case 2:
			assert_int_equal(timer_rearm(&ts, &t->t, dl), SL_OK);
			break;
		default:
			rec.count = 0;
			(void)timer_run_expired(&ts, dl / 4);
			break;
		}
		int64_t min = TIMER_DEADLINE_NONE;
		uint32_t armed = 0;
		for (int i = 0; i < N; i++) {
			if (timer_armed(&x[i].t)) {
				armed++;
				if (x[i].t.deadline_ns < min)
					min = x[i].t.deadline_ns;
			}
		}
		assert_int_equal(armed, ts.count);
		assert_int_equal(timer_next_deadline(&ts), min);
		assert_true(timer_set_check(&ts));
	}
	timer_set_free(&ts);
	for (int i = 0; i < N; i++)
		assert_false(timer_armed(&x[i].t));
}

/* The shard's clock is injected: timers follow the fake time only. */
struct fake_clock {
	int64_t now;
};

static int64_t fake_clock_now(void *ctx)
{
	return ((struct fake_clock *)ctx)->now;
}

static void test_timer_injected_clock(void **state)
{
	struct fake_clock clk = { .now = 1000 };
	struct shard_group_options opt = { 0 };
	struct shard_group *g;
	struct tmr x[2];
	struct rec rec = { .count = 0 };

	(void)state;
	opt.shard_count = 1;
	opt.clock = fake_clock_now;
	opt.clock_ctx = &clk;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_OK);
	struct shard *sh = shard_group_shard(g, 0);
	assert_int_equal(shard_now_ns(sh), 1000);
	for (int i = 0; i < 2; i++)
		tmr_setup(&x[i], i, &rec, &sh->timers);
	assert_int_equal(timer_add(&sh->timers, &x[0].t, 5000), SL_OK);
	assert_int_equal(timer_add(&sh->timers, &x[1].t, 2000), SL_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(shard_run_once(sh, 0), SL_OK);
	assert_int_equal(rec.count, 0);
	clk.now = 2000;
	assert_int_equal(shard_run_once(sh, 0), SL_OK);
	assert_int_equal(rec.count, 1);
	assert_int_equal(rec.order[0], 1);
	clk.now = 4999;
	assert_int_equal(shard_run_once(sh, 0), SL_OK);
	assert_int_equal(rec.count, 1);
	clk.now = 1000000;
	assert_int_equal(shard_run_once(sh, 0), SL_OK);
	assert_int_equal(rec.count, 2);
	assert_int_equal(rec.order[1], 0);
	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	shard_group_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_order),
		cmocka_unit_test(test_timer_cancel),
		cmocka_unit_test(test_timer_rearm),
		cmocka_unit_test(test_timer_bound),
		cmocka_unit_test(test_timer_self_rearm_bounded),
		cmocka_unit_test(test_timer_random_model),
		cmocka_unit_test(test_timer_injected_clock),
	};

	log_level_set(LOG_WARN);
	/* SL_TEST_FILTER=pattern runs only the matching tests. */
	if (getenv("SL_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("SL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
