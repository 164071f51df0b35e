/*
 * test_isr.c — the leader's replica rules (replication/isr.c), driven by an
 * injected clock: the HW waits for every ISR member and never decreases,
 * Kafka's lastCaughtUpTime rule (now / previous fetch), ISR shrink after
 * replica.lag.time.max.ms, expansion once caught up (HW and leader-epoch
 * start), one pending change at a time, the HW with a pending expansion
 * (maximal ISR) and with caught-up non-members, commits and stale answers,
 * min.insync.replicas refusals before and after the append.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "isr.h"

#define LAG 100

/* Replicas {1,2,3}, leader 1, ISR as given, LEO/HW 0, min.insync `min_isr`. */
static void cfg_make(struct isr_config *c, const int32_t *isr, uint32_t isr_count,
		     int32_t min_isr)
{
	memset(c, 0, sizeof(*c));
	c->leader_id = 1;
	c->leader_epoch = 5;
	c->partition_epoch = 7;
	c->replica_count = 3;
	c->replicas[0] = 1;
	c->replicas[1] = 2;
	c->replicas[2] = 3;
	c->isr_count = isr_count;
	memcpy(c->isr, isr, isr_count * sizeof(*isr));
	c->min_insync_replicas = min_isr;
	c->replica_lag_time_max_ms = LAG;
}

static void init3(struct isr *s, int32_t min_isr, int64_t now)
{
	const int32_t isr[] = { 1, 2, 3 };
	struct isr_config c;

	cfg_make(&c, isr, 3, min_isr);
	assert_int_equal(isr_init(s, &c, ISR_INIT_NEW_LEADER, now), SL_OK);
}

static void fetch(struct isr *s, int32_t id, int64_t off, int64_t now, int want_moved)
{
	int moved = -1;

	assert_int_equal(isr_follower_fetch(s, id, off, now, &moved), SL_OK);
	assert_int_equal(moved, want_moved);
}

static void test_init_invalid(void **state)
{
	const int32_t good[] = { 1, 2 };
	const int32_t no_leader[] = { 2, 3 };
	const int32_t stranger[] = { 1, 9 };
	const int32_t dup[] = { 1, 1 };
	struct isr_config c;
	struct isr s;

	(void)state;
	init3(&s, 1, 0);
	cfg_make(&c, no_leader, 2, 1);
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_EINVAL);
	cfg_make(&c, stranger, 2, 1);
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_EINVAL);
	cfg_make(&c, dup, 2, 1);
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_EINVAL);
	cfg_make(&c, good, 2, 0);
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_EINVAL);
	cfg_make(&c, good, 2, 1);
	c.replicas[2] = 2;
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_EINVAL);
	cfg_make(&c, good, 2, 1);
	c.replica_count = ISR_REPLICAS_MAX + 1;
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_EINVAL);
	cfg_make(&c, good, 2, 1);
	c.leader_leo = 5;
	c.leader_epoch_start_offset = 6;
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_EINVAL);
	/* Unchanged by the refusals: still the 3-member ISR. */
	assert_int_equal(s.isr_count, 3);
	isr_check(&s);
}

static void test_hw_waits_for_every_isr_member(void **state)
{
	struct isr s;
	int moved = -1;

	(void)state;
	init3(&s, 1, 0);
	isr_leader_append(&s, 10, 1, &moved);
	assert_int_equal(moved, 0);             /* followers' LEO unknown */
	assert_int_equal(isr_hw(&s), 0);
	fetch(&s, 2, 5, 2, 0);                  /* 3 still unknown */
	fetch(&s, 3, 3, 3, 1);
	assert_int_equal(isr_hw(&s), 3);
	fetch(&s, 2, 10, 4, 0);                 /* 3 holds it at 3 */
	assert_int_equal(isr_hw(&s), 3);
	fetch(&s, 3, 10, 5, 1);
	assert_int_equal(isr_hw(&s), 10);
	/* A repeated fetch at the same offset recomputes nothing. */
	fetch(&s, 3, 10, 6, 0);
}

static void test_hw_never_decreases(void **state)
{
	const int32_t isr[] = { 1, 2, 3 };
	struct isr_config c;
	struct isr s;

	(void)state;
	init3(&s, 1, 0);
	isr_leader_append(&s, 10, 0, NULL);
	fetch(&s, 2, 10, 1, 0);
	fetch(&s, 3, 10, 1, 1);
	assert_int_equal(isr_hw(&s), 10);
	/* A follower that truncated fetches from below the HW. */
	fetch(&s, 3, 4, 2, 0);
	assert_int_equal(isr_hw(&s), 10);
	assert_int_equal(isr_follower(&s, 3)->leo, 4);
	/* Re-elected with an older checkpointed HW: the HW stays. */
	cfg_make(&c, isr, 3, 1);
	c.leader_leo = 12;
	c.hw = 2;
	c.leader_epoch = 6;
	assert_int_equal(isr_init(&s, &c, ISR_INIT_REELECTED, 3), SL_OK);
	assert_int_equal(isr_hw(&s), 10);
	assert_int_equal(isr_follower(&s, 2)->leo, 10);   /* kept */
	/* A new leadership forgets the followers: HW from the checkpoint. */
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 3), SL_OK);
	assert_int_equal(isr_hw(&s), 2);
	assert_int_equal(isr_follower(&s, 2)->leo, ISR_OFFSET_UNKNOWN);
}

/*
 * Kafka's lastCaughtUpTime: a fetch at >= the leader's LEO catches up now;
 * one at >= the leader's LEO of the previous fetch catches up at the
 * previous fetch's time; anything else leaves it.
 */
static void test_last_caught_up_rule(void **state)
{
	const int32_t isr[] = { 1, 2 };
	struct isr_config c;
	struct isr s;

	(void)state;
	cfg_make(&c, isr, 2, 1);
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_OK);
	assert_int_equal(isr_follower(&s, 2)->last_caught_up_ms, 0);  /* ISR: now */
	assert_int_equal(isr_follower(&s, 3)->last_caught_up_ms, ISR_TIME_NEVER);

	isr_leader_append(&s, 10, 900, NULL);
	fetch(&s, 2, 10, 1000, 1);              /* at the leader's LEO: now */
	assert_int_equal(isr_follower(&s, 2)->last_caught_up_ms, 1000);
	isr_leader_append(&s, 20, 1000, NULL);
	/* 10 < LEO 20, but >= the LEO (10) of its previous fetch at 1000. */
	fetch(&s, 2, 10, 1050, 0);
	assert_int_equal(isr_follower(&s, 2)->last_caught_up_ms, 1000);
	/* 15 < 20 (LEO at its previous fetch): no catch-up. */
	fetch(&s, 2, 15, 1080, 1);
	assert_int_equal(isr_follower(&s, 2)->last_caught_up_ms, 1000);
	/* 20 >= 20 (LEO at the 1080 fetch) while the LEO is 30: caught up at 1080. */
	isr_leader_append(&s, 30, 1090, NULL);
	fetch(&s, 2, 20, 1095, 1);
	assert_int_equal(isr_follower(&s, 2)->last_caught_up_ms, 1080);

	/* Never before the first fetch: the previous-fetch rule needs a fetch. */
	fetch(&s, 3, 0, 1100, 0);
	assert_int_equal(isr_follower(&s, 3)->last_caught_up_ms, ISR_TIME_NEVER);
	fetch(&s, 3, 30, 1110, 0);
	assert_int_equal(isr_follower(&s, 3)->last_caught_up_ms, 1110);
}

static void test_shrink_after_lag(void **state)
{
	struct isr_proposal p;
	struct isr s;
	const int32_t committed[] = { 1, 2 };
	int moved = -1;

	(void)state;
	init3(&s, 1, 0);
	isr_leader_append(&s, 10, 0, NULL);
	fetch(&s, 2, 10, 50, 0);
	/* 3 never fetched but the ISR members count as caught up at init. */
	assert_int_equal(isr_propose_shrink(&s, LAG, &p), SL_ENOTFOUND);
	assert_int_equal(s.pending, ISR_PENDING_NONE);
	assert_int_equal(isr_propose_shrink(&s, LAG + 1, &p), SL_OK);
	assert_int_equal(p.isr_count, 2);
	assert_int_equal(p.isr[0], 1);
	assert_int_equal(p.isr[1], 2);
	assert_int_equal(p.leader_epoch, 5);
	assert_int_equal(p.partition_epoch, 7);
	/* Pending: nothing else may be proposed; the shrink does not count yet. */
	assert_int_equal(isr_propose_shrink(&s, LAG + 2, &p), SL_EAGAIN);
	assert_int_equal(isr_propose_expand(&s, &p), SL_EAGAIN);
	assert_true(isr_contains(&s, 3));
	assert_int_equal(isr_hw(&s), 0);
	/* Stale answers are ignored and the change stays pending. */
	assert_int_equal(isr_pending_commit(&s, 4, committed, 2, 8, LAG + 2, &moved), SL_ERANGE);
	assert_int_equal(isr_pending_commit(&s, 5, committed, 2, 6, LAG + 2, &moved), SL_ERANGE);
	assert_int_equal(s.pending, ISR_PENDING_SHRINK);
	assert_int_equal(isr_pending_commit(&s, 5, committed, 2, 8, LAG + 2, &moved), SL_OK);
	assert_int_equal(moved, 1);
	assert_int_equal(isr_hw(&s), 10);
	assert_false(isr_contains(&s, 3));
	assert_int_equal(s.partition_epoch, 8);
	assert_int_equal(isr_pending_commit(&s, 5, committed, 2, 8, LAG + 2, &moved), SL_ENOTFOUND);
}

static void test_shrink_spares_followers_at_leo(void **state)
{
	struct isr_proposal p;
	struct isr s;

	(void)state;
	init3(&s, 1, 0);
	isr_leader_append(&s, 10, 0, NULL);
	fetch(&s, 2, 10, 1, 0);
	fetch(&s, 3, 10, 1, 1);
	/* Idle partition: followers at the LEO stay in sync however long. */
	assert_int_equal(isr_propose_shrink(&s, 100 * LAG, &p), SL_ENOTFOUND);
	/* Idle polls, then new data: 3's next fetch is still at 10, the LEO of
	 * its previous poll, so it counts as caught up at that poll's time. */
	fetch(&s, 2, 10, 100 * LAG, 0);
	fetch(&s, 3, 10, 100 * LAG, 0);
	isr_leader_append(&s, 20, 100 * LAG, NULL);
	fetch(&s, 2, 20, 100 * LAG + 10, 0);
	fetch(&s, 3, 10, 100 * LAG + 10, 0);
	assert_int_equal(isr_follower(&s, 3)->last_caught_up_ms, 100 * LAG);
	assert_int_equal(isr_propose_shrink(&s, 100 * LAG + LAG, &p), SL_ENOTFOUND);
	/* 3 stops fetching: out after the lag, measured from its last catch-up. */
	assert_int_equal(isr_propose_shrink(&s, 100 * LAG + LAG + 1, &p), SL_OK);
	assert_int_equal(p.isr_count, 2);
	assert_int_equal(p.isr[1], 2);
	/* A retried AlterPartition resends exactly the same proposal. */
	{
		struct isr_proposal again;
		memset(&again, 0xff, sizeof(again));
		assert_int_equal(isr_pending_proposal(&s, &again), SL_OK);
		assert_int_equal(again.isr_count, p.isr_count);
		assert_memory_equal(again.isr, p.isr, p.isr_count * sizeof(p.isr[0]));
		assert_int_equal(again.partition_epoch, p.partition_epoch);
	}
	/* A failed AlterPartition reverts to the committed ISR. */
	isr_pending_fail(&s);
	assert_int_equal(s.pending, ISR_PENDING_NONE);
	assert_true(isr_contains(&s, 3));
	assert_int_equal(isr_pending_proposal(&s, &p), SL_ENOTFOUND);
}

static void test_expand_when_caught_up(void **state)
{
	const int32_t isr[] = { 1 };
	const int32_t grown[] = { 1, 2 };
	struct isr_proposal p;
	struct isr_config c;
	struct isr s;
	int moved = -1;

	(void)state;
	cfg_make(&c, isr, 1, 1);
	c.leader_leo = 10;
	c.leader_epoch_start_offset = 8;
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_OK);
	assert_int_equal(isr_hw(&s), 10);        /* ISR {1}: HW = leader LEO at once */
	assert_int_equal(isr_propose_expand(&s, &p), SL_ENOTFOUND);
	fetch(&s, 2, 5, 1, 0);
	assert_int_equal(isr_propose_expand(&s, &p), SL_ENOTFOUND);  /* 5 < HW */
	fetch(&s, 2, 10, 2, 0);
	assert_int_equal(isr_propose_expand(&s, &p), SL_OK);
	assert_int_equal(p.isr_count, 2);
	assert_int_equal(p.isr[1], 2);
	assert_int_equal(s.pending, ISR_PENDING_EXPAND);
	assert_int_equal(isr_maximal_count(&s), 2);
	assert_false(isr_contains(&s, 2));       /* not committed yet */
	assert_int_equal(isr_propose_expand(&s, &p), SL_EAGAIN);
	assert_int_equal(isr_pending_commit(&s, 5, grown, 2, 8, 3, &moved), SL_OK);
	assert_true(isr_contains(&s, 2));
	assert_int_equal(isr_maximal_count(&s), 2);
}

static void test_expand_needs_leader_epoch_start(void **state)
{
	const int32_t isr[] = { 1, 2 };
	struct isr_proposal p;
	struct isr_config c;
	struct isr s;

	(void)state;
	cfg_make(&c, isr, 2, 1);
	c.leader_leo = 10;
	c.hw = 4;
	c.leader_epoch_start_offset = 10;
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_OK);
	assert_int_equal(isr_hw(&s), 4);         /* 2 has not fetched yet */
	/* 3 is past the HW but below the epoch start (it may still hold
	 * divergent entries of an older epoch): not yet. */
	fetch(&s, 3, 9, 1, 0);
	assert_int_equal(isr_propose_expand(&s, &p), SL_ENOTFOUND);
	fetch(&s, 3, 10, 2, 0);
	assert_int_equal(isr_propose_expand(&s, &p), SL_OK);
	assert_int_equal(p.isr_count, 3);
	assert_int_equal(p.isr[2], 3);
	assert_int_equal(isr_hw(&s), 4);
}

/* KIP-497: an expansion in flight already holds the HW back. */
static void test_hw_with_pending_expansion(void **state)
{
	const int32_t isr[] = { 1 };
	struct isr_proposal p;
	struct isr_config c;
	struct isr s;
	int moved = -1;

	(void)state;
	cfg_make(&c, isr, 1, 1);
	c.leader_leo = 10;
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_OK);
	fetch(&s, 2, 10, 1, 0);
	assert_int_equal(isr_propose_expand(&s, &p), SL_OK);
	/* Long after any lag: only the maximal ISR can be holding the HW. */
	isr_leader_append(&s, 30, 10 * LAG, &moved);
	assert_int_equal(moved, 0);
	assert_int_equal(isr_hw(&s), 10);
	fetch(&s, 2, 25, 10 * LAG + 1, 1);
	assert_int_equal(isr_hw(&s), 25);
	/* Failed: back to ISR {1}; 2 is no longer caught up, the HW runs ahead. */
	isr_pending_fail(&s);
	isr_leader_append(&s, 40, 30 * LAG, &moved);
	assert_int_equal(moved, 1);
	assert_int_equal(isr_hw(&s), 40);
}

/* Kafka's shouldWaitForReplicaToJoinIsr: caught-up non-members hold the HW. */
static void test_hw_waits_for_caught_up_non_member(void **state)
{
	const int32_t isr[] = { 1 };
	struct isr_config c;
	struct isr s;
	int moved = -1;

	(void)state;
	cfg_make(&c, isr, 1, 1);
	c.leader_leo = 10;
	assert_int_equal(isr_init(&s, &c, ISR_INIT_NEW_LEADER, 0), SL_OK);
	fetch(&s, 2, 10, 100, 0);               /* caught up at 100 */
	isr_leader_append(&s, 20, 150, &moved);
	assert_int_equal(moved, 0);
	assert_int_equal(isr_hw(&s), 10);
	isr_leader_append(&s, 21, 100 + LAG, &moved);
	assert_int_equal(isr_hw(&s), 10);
	/* Lagging too long: no longer waited for. */
	isr_leader_append(&s, 22, 101 + LAG, &moved);
	assert_int_equal(moved, 1);
	assert_int_equal(isr_hw(&s), 22);
}

static void test_min_insync_refusals(void **state)
{
	const int32_t two[] = { 1, 2 };
	const int32_t one[] = { 1 };
	struct isr_proposal p;
	struct isr s;

	(void)state;
	init3(&s, 3, 0);
	assert_int_equal(isr_acks_all_append_check(&s), ISR_ACKS_OK);
	/* An acks=all append of offsets 0..9 waits for the HW to pass 9. */
	isr_leader_append(&s, 10, 1, NULL);
	assert_int_equal(isr_acks_all_check(&s, 9), ISR_ACKS_WAIT);
	fetch(&s, 2, 10, 2, 0);
	assert_int_equal(isr_acks_all_check(&s, 9), ISR_ACKS_WAIT);
	/* 3 is stuck; it is dropped and the HW passes the append with ISR {1,2}. */
	assert_int_equal(isr_propose_shrink(&s, 2 + LAG, &p), SL_OK);
	/* Still pending: the committed ISR (3) allows appends. */
	assert_int_equal(isr_acks_all_append_check(&s), ISR_ACKS_OK);
	assert_int_equal(isr_acks_all_check(&s, 9), ISR_ACKS_WAIT);
	assert_int_equal(isr_pending_commit(&s, 5, two, 2, 8, 3 + LAG, NULL), SL_OK);
	assert_int_equal(isr_hw(&s), 10);
	assert_int_equal(isr_acks_all_check(&s, 9), ISR_ACKS_NOT_ENOUGH_AFTER_APPEND);
	assert_int_equal(isr_acks_all_append_check(&s), ISR_ACKS_NOT_ENOUGH_REPLICAS);

	/* min.insync 2: ISR {1,2} fine; down to {1} refused; a pending
	 * expansion counts for the completion check, not for the append. */
	init3(&s, 2, 0);
	isr_leader_append(&s, 10, 0, NULL);
	fetch(&s, 2, 10, 1, 0);
	assert_int_equal(isr_propose_shrink(&s, 1 + LAG, &p), SL_OK);
	assert_int_equal(isr_pending_commit(&s, 5, two, 2, 8, 1 + LAG, NULL), SL_OK);
	assert_int_equal(isr_acks_all_append_check(&s), ISR_ACKS_OK);
	assert_int_equal(isr_acks_all_check(&s, 9), ISR_ACKS_OK);
	isr_leader_append(&s, 15, 2 * LAG, NULL);
	assert_int_equal(isr_propose_shrink(&s, 10 * LAG, &p), SL_OK);
	assert_int_equal(p.isr_count, 1);
	assert_int_equal(isr_pending_commit(&s, 5, one, 1, 9, 10 * LAG, NULL), SL_OK);
	assert_int_equal(isr_acks_all_append_check(&s), ISR_ACKS_NOT_ENOUGH_REPLICAS);
	isr_leader_append(&s, 20, 10 * LAG, NULL);
	assert_int_equal(isr_hw(&s), 20);
	assert_int_equal(isr_acks_all_check(&s, 19), ISR_ACKS_NOT_ENOUGH_AFTER_APPEND);
	fetch(&s, 3, 20, 10 * LAG + 1, 0);
	assert_int_equal(isr_propose_expand(&s, &p), SL_OK);
	assert_int_equal(isr_acks_all_append_check(&s), ISR_ACKS_NOT_ENOUGH_REPLICAS);
	assert_int_equal(isr_acks_all_check(&s, 19), ISR_ACKS_OK);
}

static void test_fetch_and_commit_errors(void **state)
{
	const int32_t no_leader[] = { 2 };
	const int32_t other[] = { 1, 3 };
	struct isr_proposal p;
	struct isr s;
	int moved = -1;

	(void)state;
	init3(&s, 1, 0);
	isr_leader_append(&s, 10, 0, NULL);
	assert_int_equal(isr_follower_fetch(&s, 9, 0, 1, &moved), SL_ENOTFOUND);
	assert_int_equal(isr_follower_fetch(&s, 1, 0, 1, &moved), SL_ENOTFOUND);
	assert_int_equal(isr_follower_fetch(&s, 2, 11, 1, &moved), SL_ERANGE);
	assert_int_equal(isr_follower_fetch(&s, 2, -1, 1, &moved), SL_ERANGE);
	assert_int_equal(moved, 0);
	assert_int_equal(isr_follower(&s, 2)->leo, ISR_OFFSET_UNKNOWN);
	fetch(&s, 3, 10, 1, 0);
	assert_int_equal(isr_propose_shrink(&s, 2 + LAG, &p), SL_OK);   /* drops 2 */
	assert_int_equal(p.isr_count, 2);
	assert_int_equal(isr_pending_commit(&s, 5, no_leader, 1, 8, 3 + LAG, NULL), SL_EINVAL);
	assert_int_equal(s.pending, ISR_PENDING_SHRINK);
	/* The controller's answer wins even when it differs from the proposal;
	 * an unchanged partition epoch (no write needed) also commits. */
	assert_int_equal(isr_pending_commit(&s, 5, other, 2, 7, 3 + LAG, &moved), SL_OK);
	assert_int_equal(moved, 1);
	assert_int_equal(isr_hw(&s), 10);
	assert_false(isr_contains(&s, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_invalid),
		cmocka_unit_test(test_hw_waits_for_every_isr_member),
		cmocka_unit_test(test_hw_never_decreases),
		cmocka_unit_test(test_last_caught_up_rule),
		cmocka_unit_test(test_shrink_after_lag),
		cmocka_unit_test(test_shrink_spares_followers_at_leo),
		cmocka_unit_test(test_expand_when_caught_up),
		cmocka_unit_test(test_expand_needs_leader_epoch_start),
		cmocka_unit_test(test_hw_with_pending_expansion),
		cmocka_unit_test(test_hw_waits_for_caught_up_non_member),
		cmocka_unit_test(test_min_insync_refusals),
		cmocka_unit_test(test_fetch_and_commit_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
