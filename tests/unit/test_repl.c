/*
 * test_repl.c — replication/repl.c's rules without a broker: role
 * transitions from LeaderAndIsr states (fencing of older epochs, ISR-only
 * updates, leader moves), the KIP-320 epoch check consumers and followers
 * get, and the acks=all waiting list driven by an injected clock (a timer
 * set run by hand): completion when the HW passes, NOT_ENOUGH_REPLICAS_
 * AFTER_APPEND, REQUEST_TIMED_OUT, failure of every waiter on a role
 * change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kerr.h"
#include "repl.h"
#include "timer.h"

#define ME 1
#define MS 1000000LL

static void state(struct repl_state *st, int32_t leader, int32_t epoch, int32_t pepoch)
{
	memset(st, 0, sizeof(*st));
	st->leader = leader;
	st->leader_epoch = epoch;
	st->partition_epoch = pepoch;
	st->replica_count = 3;
	st->replicas[0] = 1;
	st->replicas[1] = 2;
	st->replicas[2] = 3;
	st->isr_count = 3;
	memcpy(st->isr, st->replicas, sizeof(st->replicas[0]) * 3);
}

static void test_decide(void **unused)
{
	struct repl_partition rp;
	struct repl_state st;

	(void)unused;
	state(&st, ME, 3, 10);
	assert_int_equal(repl_decide(NULL, ME, &st), REPL_T_LEADER_NEW);
	state(&st, 2, 3, 10);
	assert_int_equal(repl_decide(NULL, ME, &st), REPL_T_FOLLOWER);

	memset(&rp, 0, sizeof(rp));
	rp.role = REPL_LEADER;
	rp.leader_id = ME;
	rp.leader_epoch = 3;
	rp.partition_epoch = 10;
	state(&st, ME, 2, 11);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_FENCED);
	state(&st, ME, 3, 10);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_NOOP);
	state(&st, ME, 3, 11);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_LEADER_UPDATE);
	state(&st, ME, 4, 11);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_LEADER_NEW);
	state(&st, 2, 4, 11);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_FOLLOWER);
	state(&st, -1, 4, 11);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_NO_LEADER);

	rp.role = REPL_FOLLOWER;
	rp.leader_id = 2;
	state(&st, 2, 3, 12);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_NOOP);
	state(&st, 3, 3, 12);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_FOLLOWER);
	state(&st, ME, 3, 12);
	assert_int_equal(repl_decide(&rp, ME, &st), REPL_T_LEADER_NEW);
}

static void test_epoch_check(void **unused)
{
	struct repl_partition rp;

	(void)unused;
	assert_int_equal(repl_epoch_check(NULL, -1), KERR_NOT_LEADER_OR_FOLLOWER);
	memset(&rp, 0, sizeof(rp));
	rp.role = REPL_LEADER;
	rp.leader_epoch = 5;
	assert_int_equal(repl_epoch_check(&rp, -1), KERR_NONE);
	assert_int_equal(repl_epoch_check(&rp, 5), KERR_NONE);
	assert_int_equal(repl_epoch_check(&rp, 4), KERR_FENCED_LEADER_EPOCH);
	assert_int_equal(repl_epoch_check(&rp, 6), KERR_UNKNOWN_LEADER_EPOCH);
	rp.role = REPL_FOLLOWER;
	assert_int_equal(repl_epoch_check(&rp, 5), KERR_NOT_LEADER_OR_FOLLOWER);
	assert_int_equal(repl_epoch_check(&rp, 4), KERR_FENCED_LEADER_EPOCH);
}

/* ---- acks=all ---- */

struct waiter {
	struct partition_acks_waiter w;
	int calls;
};

static void waiter_fn(struct partition_acks_waiter *w)
{
	((struct waiter *)(void *)w)->calls++;
}

static void waiter_make(struct waiter *x, int64_t last, int64_t deadline_ns)
{
	memset(x, 0, sizeof(*x));
	x->w.last_offset = last;
	x->w.deadline_ns = deadline_ns;
	x->w.fn = waiter_fn;
}

/* A leader of {1,2,3}, ISR as given, min.insync 2, LEO 10, HW 0. */
static void leader(struct repl_partition *rp, uint32_t isr_count)
{
	struct isr_config c;

	memset(rp, 0, sizeof(*rp));
	memset(&c, 0, sizeof(c));
	rp->role = REPL_LEADER;
	rp->leader_id = ME;
	rp->leader_epoch = 1;
	c.leader_id = ME;
	c.leader_epoch = 1;
	c.replica_count = 3;
	c.replicas[0] = 1;
	c.replicas[1] = 2;
	c.replicas[2] = 3;
	c.isr_count = isr_count;
	memcpy(c.isr, c.replicas, isr_count * sizeof(c.isr[0]));
	c.leader_leo = 10;
	c.min_insync_replicas = 2;
	c.replica_lag_time_max_ms = 1000;
	assert_int_equal(isr_init(&rp->isr, &c, ISR_INIT_NEW_LEADER, 0), SL_OK);
}

static void test_acks_complete_on_hw(void **unused)
{
	struct timer_set ts;
	struct repl_partition rp;
	struct waiter a, b;
	int moved = 0;

	(void)unused;
	assert_int_equal(timer_set_init(&ts, 16, NULL), SL_OK);
	leader(&rp, 3);
	waiter_make(&a, 4, 100 * MS);
	waiter_make(&b, 9, 100 * MS);
	assert_int_equal(repl_acks_add(&rp, &ts, &a.w), 1);
	assert_int_equal(repl_acks_add(&rp, &ts, &b.w), 1);
	assert_int_equal(rp.acks.count, 2);
	/* follower 2 at 10, follower 3 at 5: HW 5 passes a only */
	assert_int_equal(isr_follower_fetch(&rp.isr, 2, 10, 1, &moved), SL_OK);
	assert_int_equal(isr_follower_fetch(&rp.isr, 3, 5, 1, &moved), SL_OK);
	assert_int_equal(isr_hw(&rp.isr), 5);
	repl_acks_check(&rp, &ts);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.w.error_code, KERR_NONE);
	assert_int_equal(b.calls, 0);
	assert_int_equal(rp.acks.count, 1);
	assert_int_equal(isr_follower_fetch(&rp.isr, 3, 10, 2, &moved), SL_OK);
	repl_acks_check(&rp, &ts);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.w.error_code, KERR_NONE);
	/* nothing left to time out */
	assert_int_equal(timer_run_expired(&ts, 1000 * MS), 0);
	assert_int_equal(rp.acks.count, 0);
	/* already passed: answered at once, fn never runs */
	waiter_make(&a, 3, 100 * MS);
	assert_int_equal(repl_acks_add(&rp, &ts, &a.w), 0);
	assert_int_equal(a.w.error_code, KERR_NONE);
	assert_int_equal(a.calls, 0);
	timer_set_free(&ts);
}

static void test_acks_timeout_and_role_change(void **unused)
{
	struct timer_set ts;
	struct repl_partition rp;
	struct waiter a, b;

	(void)unused;
	assert_int_equal(timer_set_init(&ts, 16, NULL), SL_OK);
	leader(&rp, 3);
	waiter_make(&a, 4, 50 * MS);
	waiter_make(&b, 9, 500 * MS);
	assert_int_equal(repl_acks_add(&rp, &ts, &a.w), 1);
	assert_int_equal(repl_acks_add(&rp, &ts, &b.w), 1);
	assert_int_equal(timer_run_expired(&ts, 49 * MS), 0);
	assert_int_equal(a.calls, 0);
	assert_int_equal(timer_run_expired(&ts, 50 * MS), 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.w.error_code, KERR_REQUEST_TIMED_OUT);
	assert_int_equal(rp.acks.count, 1);
	/* leadership lost: the rest fail at once, their timers are cancelled */
	repl_acks_fail_all(&rp, &ts, KERR_NOT_LEADER_OR_FOLLOWER);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.w.error_code, KERR_NOT_LEADER_OR_FOLLOWER);
	assert_int_equal(timer_run_expired(&ts, 1000 * MS), 0);
	assert_int_equal(b.calls, 1);
	/* a follower never parks */
	rp.role = REPL_FOLLOWER;
	waiter_make(&a, 4, 50 * MS);
	assert_int_equal(repl_acks_add(&rp, &ts, &a.w), 0);
	assert_int_equal(a.w.error_code, KERR_NOT_LEADER_OR_FOLLOWER);
	timer_set_free(&ts);
}

static void test_acks_not_enough_after_append(void **unused)
{
	struct timer_set ts;
	struct repl_partition rp;
	struct waiter a;
	struct isr_proposal prop;
	int moved = 0;
	const int32_t isr1[] = { ME };

	(void)unused;
	assert_int_equal(timer_set_init(&ts, 16, NULL), SL_OK);
	leader(&rp, 2);   /* ISR {1,2} */
	assert_int_equal(isr_acks_all_append_check(&rp.isr), ISR_ACKS_OK);
	waiter_make(&a, 9, 100 * MS);
	assert_int_equal(repl_acks_add(&rp, &ts, &a.w), 1);
	/* follower 2 falls behind; the shrink to {1} commits: HW = LEO, but the
	 * ISR is below min.insync */
	assert_int_equal(isr_propose_shrink(&rp.isr, 2000, &prop), SL_OK);
	assert_int_equal(isr_pending_commit(&rp.isr, 1, isr1, 1, 1, 2000, &moved), SL_OK);
	repl_acks_check(&rp, &ts);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.w.error_code, KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
	/* and new acks=all appends are refused before appending */
	assert_int_equal(isr_acks_all_append_check(&rp.isr), ISR_ACKS_NOT_ENOUGH_REPLICAS);
	timer_set_free(&ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_epoch_check),
		cmocka_unit_test(test_acks_complete_on_hw),
		cmocka_unit_test(test_acks_timeout_and_role_change),
		cmocka_unit_test(test_acks_not_enough_after_append),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
