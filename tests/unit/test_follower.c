/*
 * test_follower.c — the follower's truncation decisions
 * (follower_truncation_first / follower_truncation_answer, follower.h) and
 * the single-node OffsetForLeaderEpoch answer, driven against a simulated
 * leader: the leader's answers come from a real leader-epoch cache
 * (lepoch_end_offset_for), the follower applies each step to its own cache
 * and log end as follower.c does, until it fetches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "follower.h"
#include "kerr.h"
#include "lepoch.h"

struct sim {
	struct lepoch leader;
	int64_t leader_leo;
	struct lepoch f;            /* the follower's cache */
	int64_t f_leo;
	int64_t f_hw;
	int32_t asked[FOLLOWER_TRUNCATE_ROUNDS_MAX + 2];
	uint32_t asks;
};

static void sim_cache(struct lepoch *c, const int32_t (*e)[2], uint32_t n)
{
	lepoch_init(c, 0);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(lepoch_assign(c, e[i][0], e[i][1]), 1);
}

/* Runs the truncation to its end; returns the offset the follower fetches from. */
static int64_t sim_run(struct sim *s)
{
	int64_t offset;
	int32_t epoch;
	enum follower_trunc t = follower_truncation_first(&s->f, s->f_leo, s->f_hw, &offset, &epoch);

	for (uint32_t round = 1;; round++) {
		assert_true(round <= FOLLOWER_TRUNCATE_ROUNDS_MAX + 1);
		assert_true(offset <= s->f_leo);
		s->f_leo = offset;                       /* partition_truncate_to */
		lepoch_truncate_from_end(&s->f, offset);
		if (s->f_hw > s->f_leo)
			s->f_hw = s->f_leo;
		if (t == FOLLOWER_TRUNC_FETCH)
			return offset;
		assert_int_equal(t, FOLLOWER_TRUNC_ASK);
		s->asked[s->asks++] = epoch;
		int32_t le;
		int64_t lo;
		lepoch_end_offset_for(&s->leader, epoch, s->leader_leo, &le, &lo);
		t = follower_truncation_answer(&s->f, s->f_leo, s->f_hw, KERR_NONE, le, lo, round,
					       &offset, &epoch);
	}
}

static void test_first_step(void **state)
{
	struct lepoch c;
	int64_t off;
	int32_t ep;

	(void)state;
	lepoch_init(&c, 0);
	/* No epochs: Kafka's fallback, truncate to the HW. */
	assert_int_equal(follower_truncation_first(&c, 50, 20, &off, &ep), FOLLOWER_TRUNC_FETCH);
	assert_int_equal(off, 20);
	assert_int_equal(follower_truncation_first(&c, 10, 20, &off, &ep), FOLLOWER_TRUNC_FETCH);
	assert_int_equal(off, 10);
	assert_int_equal(lepoch_assign(&c, 3, 0), 1);
	assert_int_equal(lepoch_assign(&c, 5, 7), 1);
	assert_int_equal(follower_truncation_first(&c, 50, 20, &off, &ep), FOLLOWER_TRUNC_ASK);
	assert_int_equal(ep, 5);
	assert_int_equal(off, 50);
}

/* KIP-279's case: the follower has an epoch the leader never had. */
static void test_diverged_two_rounds(void **state)
{
	static struct sim s;
	static const int32_t le[][2] = { { 1, 0 }, { 3, 15 }, { 5, 25 } };
	static const int32_t fe[][2] = { { 1, 0 }, { 2, 10 }, { 4, 20 } };

	(void)state;
	memset(&s, 0, sizeof(s));
	sim_cache(&s.leader, le, 3);
	sim_cache(&s.f, fe, 3);
	s.leader_leo = 40;
	s.f_leo = 30;
	s.f_hw = 12;
	/* Ask 4 -> leader (3, 25): we lack 3, cut at the end of 2 (20), ask 2 ->
	 * leader (1, 15): we have 1, which ends at 10 here: fetch from 10. */
	assert_int_equal(sim_run(&s), 10);
	assert_int_equal(s.asks, 2);
	assert_int_equal(s.asked[0], 4);
	assert_int_equal(s.asked[1], 2);
	assert_int_equal(lepoch_latest_epoch(&s.f), 1);
}

static void test_same_epoch_shorter_leader(void **state)
{
	static struct sim s;
	static const int32_t le[][2] = { { 1, 0 }, { 3, 15 }, { 5, 25 } };
	static const int32_t fe[][2] = { { 1, 0 }, { 3, 15 } };

	(void)state;
	memset(&s, 0, sizeof(s));
	sim_cache(&s.leader, le, 3);
	sim_cache(&s.f, fe, 2);
	s.leader_leo = 40;
	s.f_leo = 30;   /* 25..29 were written in epoch 3 here only */
	s.f_hw = 20;
	assert_int_equal(sim_run(&s), 25);
	assert_int_equal(s.asks, 1);
	assert_int_equal(s.asked[0], 3);
}

static void test_in_sync_no_cut(void **state)
{
	static struct sim s;
	static const int32_t le[][2] = { { 2, 0 }, { 4, 30 } };

	(void)state;
	memset(&s, 0, sizeof(s));
	sim_cache(&s.leader, le, 2);
	sim_cache(&s.f, le, 2);
	s.leader_leo = 50;
	s.f_leo = 45;
	s.f_hw = 40;
	assert_int_equal(sim_run(&s), 45);
	assert_int_equal(s.asks, 1);
}

static void test_leader_lacks_epoch_uses_hw(void **state)
{
	static struct lepoch c;
	int64_t off;
	int32_t ep;

	(void)state;
	lepoch_init(&c, 0);
	assert_int_equal(lepoch_assign(&c, 7, 0), 1);
	/* Leader answered UNDEFINED_EPOCH_OFFSET: truncate to the HW. */
	assert_int_equal(follower_truncation_answer(&c, 30, 12, KERR_NONE, -1, -1, 1, &off, &ep),
			 FOLLOWER_TRUNC_FETCH);
	assert_int_equal(off, 12);
}

static void test_errors(void **state)
{
	static struct lepoch c;
	int64_t off;
	int32_t ep;

	(void)state;
	lepoch_init(&c, 0);
	assert_int_equal(lepoch_assign(&c, 7, 0), 1);
	assert_int_equal(follower_truncation_answer(&c, 30, 12, KERR_FENCED_LEADER_EPOCH, 7, 40, 1,
						    &off, &ep), FOLLOWER_TRUNC_PAUSE);
	assert_int_equal(off, 30);  /* nothing cut */
	assert_int_equal(follower_truncation_answer(&c, 30, 12, KERR_NOT_LEADER_OR_FOLLOWER, 7, 40,
						    1, &off, &ep), FOLLOWER_TRUNC_RETRY);
	assert_int_equal(off, 30);
	assert_int_equal(follower_truncation_answer(&c, 30, 12, KERR_UNKNOWN_LEADER_EPOCH, 7, 40, 1,
						    &off, &ep), FOLLOWER_TRUNC_RETRY);
	assert_int_equal(off, 30);
}

static void test_round_bound(void **state)
{
	static struct lepoch c;
	int64_t off;
	int32_t ep;

	(void)state;
	lepoch_init(&c, 0);
	assert_int_equal(lepoch_assign(&c, 1, 0), 1);
	assert_int_equal(lepoch_assign(&c, 2, 10), 1);
	assert_int_equal(lepoch_assign(&c, 4, 20), 1);
	/* The leader names epoch 3 (we lack it): AGAIN below the bound ... */
	assert_int_equal(follower_truncation_answer(&c, 30, 5, KERR_NONE, 3, 25, 1, &off, &ep),
			 FOLLOWER_TRUNC_ASK);
	assert_int_equal(off, 20);
	assert_int_equal(ep, 2);
	/* ... and the HW fallback once the rounds are used up. */
	assert_int_equal(follower_truncation_answer(&c, 30, 5, KERR_NONE, 3, 25,
						    FOLLOWER_TRUNCATE_ROUNDS_MAX, &off, &ep),
			 FOLLOWER_TRUNC_FETCH);
	assert_int_equal(off, 5);
}

static void test_single_node_answer(void **state)
{
	int16_t err;
	int32_t ep;
	int64_t end;

	(void)state;
	ofle_single_node(-1, 0, 3, 17, &err, &ep, &end);
	assert_int_equal(err, KERR_NONE);
	assert_int_equal(ep, 0);
	assert_int_equal(end, 17);
	ofle_single_node(0, 1, 3, 17, &err, &ep, &end);
	assert_int_equal(err, KERR_NONE);
	assert_int_equal(ep, -1);
	assert_int_equal(end, -1);
	ofle_single_node(0, -1, 0, 0, &err, &ep, &end);
	assert_int_equal(err, KERR_NONE);
	assert_int_equal(end, -1);
	ofle_single_node(1, 0, 0, 9, &err, &ep, &end);
	assert_int_equal(err, KERR_UNKNOWN_LEADER_EPOCH);
	ofle_single_node(-1, 0, 0, 0, &err, &ep, &end);
	assert_int_equal(ep, 0);
	assert_int_equal(end, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_step),
		cmocka_unit_test(test_diverged_two_rounds),
		cmocka_unit_test(test_same_epoch_shorter_leader),
		cmocka_unit_test(test_in_sync_no_cut),
		cmocka_unit_test(test_leader_lacks_epoch_uses_hw),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_round_bound),
		cmocka_unit_test(test_single_node_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
