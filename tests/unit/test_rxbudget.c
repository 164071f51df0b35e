/*
 * test_rxbudget.c — the per-shard request-memory budget (net/rxbudget.h):
 * sizing from the configuration, reservations against the cap, the
 * "alone always fits" rule that keeps parking deadlock-free, FIFO grants,
 * unparking a closed connection, and the invariant checker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rxbudget.h"

static void test_sizing(void **state)
{
	(void)state;
	/* Kafka's -1 (unbounded): two max frames per shard. */
	assert_int_equal(rxbudget_bytes_for(-1, 100 << 20, 4), 2ull * (100 << 20));
	assert_int_equal(rxbudget_bytes_for(0, 1000, 1), 2000);
	/* A set queued.max.request.bytes is broker-wide: split over shards, rounded up. */
	assert_int_equal(rxbudget_bytes_for(1000, 100, 3), 334);
	assert_int_equal(rxbudget_bytes_for(1000, 100, 1), 1000);
	assert_int_equal(rxbudget_bytes_for(1, 1, 8), 1);
}

static void test_reserve_release(void **state)
{
	struct rxbudget b;

	(void)state;
	rxbudget_init(&b, 100);
	assert_true(rxbudget_reserve(&b, 60));
	assert_true(rxbudget_reserve(&b, 40));
	assert_int_equal(b.used, 100);
	assert_false(rxbudget_reserve(&b, 1));   /* full */
	rxbudget_release(&b, 40);
	assert_false(rxbudget_reserve(&b, 41));
	assert_true(rxbudget_reserve(&b, 40));
	rxbudget_release(&b, 60);
	rxbudget_release(&b, 40);
	assert_int_equal(b.used, 0);
	assert_int_equal(b.grant_count, 0);
	assert_int_equal(b.used_peak, 100);
	assert_true(rxbudget_check(&b));
}

/* Rule 1: a frame larger than the budget goes through when the shard holds nothing. */
static void test_alone_always_fits(void **state)
{
	struct rxbudget b;
	struct rxbudget_waiter w;

	(void)state;
	memset(&w, 0, sizeof(w));
	rxbudget_init(&b, 100);
	assert_true(rxbudget_reserve(&b, 500));
	assert_true(rxbudget_check(&b));          /* over the cap, but alone */
	assert_false(rxbudget_reserve(&b, 1));    /* nothing else meanwhile */
	rxbudget_park(&b, &w, 1000);
	assert_null(rxbudget_grant_next(&b));
	rxbudget_release(&b, 500);
	/* Empty again: the big waiter is granted, nothing is stuck. */
	assert_ptr_equal(rxbudget_grant_next(&b), &w);
	assert_false(w.waiting);
	assert_int_equal(b.used, 1000);
	assert_true(rxbudget_check(&b));
	rxbudget_release(&b, 1000);
	assert_int_equal(b.used, 0);
}

/* Rule 2: waiters go first, in order; a later small frame cannot overtake. */
static void test_fifo(void **state)
{
	struct rxbudget b;
	struct rxbudget_waiter w[3];

	(void)state;
	memset(w, 0, sizeof(w));
	rxbudget_init(&b, 100);
	assert_true(rxbudget_reserve(&b, 90));
	rxbudget_park(&b, &w[0], 50);
	rxbudget_park(&b, &w[1], 10);
	rxbudget_park(&b, &w[2], 30);
	assert_int_equal(b.wait_count, 3);
	assert_int_equal(b.parks, 3);
	assert_true(rxbudget_check(&b));
	/* 10 would fit but someone waits: refused. */
	assert_false(rxbudget_reserve(&b, 5));
	assert_null(rxbudget_grant_next(&b));   /* w0's 50 does not fit yet */
	rxbudget_release(&b, 90);
	assert_ptr_equal(rxbudget_grant_next(&b), &w[0]);
	assert_ptr_equal(rxbudget_grant_next(&b), &w[1]);
	assert_ptr_equal(rxbudget_grant_next(&b), &w[2]);
	assert_null(rxbudget_grant_next(&b));
	assert_int_equal(b.used, 90);
	assert_int_equal(b.wait_count, 0);
	assert_true(rxbudget_check(&b));
	/* Nobody waits: reservations work again. */
	assert_true(rxbudget_reserve(&b, 10));
	assert_false(rxbudget_reserve(&b, 1));
}

/* A closing connection leaves the queue from anywhere in it. */
static void test_unpark(void **state)
{
	struct rxbudget b;
	struct rxbudget_waiter w[3];

	(void)state;
	memset(w, 0, sizeof(w));
	rxbudget_init(&b, 10);
	assert_true(rxbudget_reserve(&b, 10));
	for (int i = 0; i < 3; i++)
		rxbudget_park(&b, &w[i], 5);
	rxbudget_unpark(&b, &w[1]);             /* middle */
	assert_true(rxbudget_check(&b));
	rxbudget_unpark(&b, &w[1]);             /* idempotent */
	assert_int_equal(b.wait_count, 2);
	rxbudget_unpark(&b, &w[2]);             /* tail */
	rxbudget_unpark(&b, &w[0]);             /* head */
	assert_int_equal(b.wait_count, 0);
	assert_null(b.head);
	assert_null(b.tail);
	assert_true(rxbudget_check(&b));
	/* parked again after unparking */
	rxbudget_park(&b, &w[1], 5);
	rxbudget_release(&b, 10);
	assert_ptr_equal(rxbudget_grant_next(&b), &w[1]);
	assert_true(rxbudget_check(&b));
}

/* The checker notices a broken list and an over-cap shared budget. */
static void test_check_detects(void **state)
{
	struct rxbudget b;
	struct rxbudget_waiter w[2];

	(void)state;
	memset(w, 0, sizeof(w));
	rxbudget_init(&b, 10);
	assert_true(rxbudget_reserve(&b, 5));
	rxbudget_park(&b, &w[0], 5);
	rxbudget_park(&b, &w[1], 5);
	b.wait_count = 1;
	assert_false(rxbudget_check(&b));
	b.wait_count = 2;
	assert_true(rxbudget_check(&b));
	b.used = b.used_peak = 50;               /* two grants cannot exceed the cap */
	b.grant_count = 2;
	assert_false(rxbudget_check(&b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizing),
		cmocka_unit_test(test_reserve_release),
		cmocka_unit_test(test_alone_always_fits),
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_unpark),
		cmocka_unit_test(test_check_detects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
