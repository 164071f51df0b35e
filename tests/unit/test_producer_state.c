/*
 * test_producer_state.c — idempotent-producer state (io/producer_state.c).
 *
 * In memory: duplicates of each of the last 5 batches answered with their
 * original offsets and the 6th-oldest refused; gaps; the INT32_MAX
 * wraparound; epoch fencing and bumps; unknown producers (KIP-360);
 * 5 batches in flight then a retry of the 3rd; the abort paths (newest
 * only, a failed log taking every later batch, an undone epoch bump); the
 * producers_max bound with eviction; expiry; the hash table against a model
 * under random inserts and removals.
 *
 * With a real partition log (plog on an io_uring, batches built with
 * batch_build.h): the documented caller flow with completions and a failed
 * write; rebuild after close/reopen giving the same answers as the live
 * state; snapshots written, loaded, corrupt (fallback to an older one or a
 * full scan), renamed, and above the log end after a truncation; reset.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "batch_build.h"
#include "io_testutil.h"
#include "producer_state.h"

#define TS0 1700000000000LL   /* a plausible wall clock, ms */

/* ---- in-memory helpers ---- */

static struct producer_state *ps_new(uint32_t producers_max, int64_t expiration_ms)
{
	struct producer_state_config cfg;
	struct producer_state *ps;

	producer_state_config_default(&cfg);
	if (producers_max > 0)
		cfg.producers_max = producers_max;
	if (expiration_ms > 0)
		cfg.expiration_ms = expiration_ms;
	assert_int_equal(producer_state_create(&ps, &cfg), SL_OK);
	return ps;
}

static struct producer_batch pb_make(int64_t pid, int16_t epoch, int32_t seq, int32_t records,
				     int64_t ts)
{
	struct producer_batch b = {
		.producer_id = pid,
		.producer_epoch = epoch,
		.base_sequence = seq,
		.last_offset_delta = records - 1,
		.max_timestamp = ts,
	};
	return b;
}

static enum producer_check try_batch(struct producer_state *ps, int64_t pid, int16_t epoch,
				     int32_t seq, int32_t records, int64_t base, int64_t ts,
				     struct producer_reservation *rsv)
{
	struct producer_batch b = pb_make(pid, epoch, seq, records, ts);
	enum producer_check c = producer_state_check_and_reserve(ps, &b, base, rsv);
	assert_true(producer_state_invariants_ok(ps));
	return c;
}

/* Reserves and completes a batch at *next; returns its base offset. */
static int64_t append_ok(struct producer_state *ps, int64_t *next, int64_t pid, int16_t epoch,
			 int32_t seq, int32_t records, int64_t ts)
{
	struct producer_reservation rsv;
	int64_t base = *next;

	assert_int_equal(try_batch(ps, pid, epoch, seq, records, base, ts, &rsv),
			 PRODUCER_CHECK_OK);
	assert_int_equal(rsv.producer_id, pid);
	assert_int_equal(rsv.first_offset, base);
	assert_int_equal(rsv.last_offset, base + records - 1);
	producer_state_complete(ps, &rsv);
	assert_true(producer_state_invariants_ok(ps));
	*next += records;
	return base;
}

static void assert_info_equal(const struct producer_info *a, const struct producer_info *b)
{
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->last_sequence, b->last_sequence);
	assert_int_equal(a->last_offset, b->last_offset);
	assert_int_equal(a->last_timestamp, b->last_timestamp);
	assert_int_equal(a->window_count, b->window_count);
	assert_int_equal(a->pending, b->pending);
}

/* Expects a refusal (no reservation, state unchanged). */
static void expect_refused(struct producer_state *ps, int64_t pid, int16_t epoch, int32_t seq,
			   int32_t records, enum producer_check want)
{
	struct producer_reservation rsv;
	struct producer_info before, after;
	int known = producer_state_lookup(ps, pid, &before) == SL_OK;

	assert_int_equal(try_batch(ps, pid, epoch, seq, records, 1LL << 40, TS0, &rsv), want);
	assert_int_equal(rsv.producer_id, -1);
	if (known) {
		assert_int_equal(producer_state_lookup(ps, pid, &after), SL_OK);
		assert_info_equal(&before, &after);
	}
}

static void expect_dup(struct producer_state *ps, int64_t pid, int16_t epoch, int32_t seq,
		       int32_t records, int64_t first_offset, int pending)
{
	struct producer_reservation rsv;

	assert_int_equal(try_batch(ps, pid, epoch, seq, records, 1LL << 40, TS0, &rsv),
			 PRODUCER_CHECK_DUPLICATE);
	assert_int_equal(rsv.producer_id, -1);  /* nothing reserved */
	assert_int_equal(rsv.first_offset, first_offset);
	assert_int_equal(rsv.last_offset, first_offset + records - 1);
	assert_int_equal(rsv.pending, pending);
}

/* ---- in-memory tests ---- */

static void test_not_idempotent(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	struct producer_reservation rsv;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(try_batch(ps, -1, -1, -1, 10, 100 * i, TS0, &rsv),
				 PRODUCER_CHECK_OK);
		assert_int_equal(rsv.producer_id, -1);
		producer_state_complete(ps, &rsv);  /* no-ops */
		producer_state_abort(ps, &rsv);
	}
	assert_int_equal(producer_state_count(ps), 0);
	assert_int_equal(producer_state_stats(ps)->reserved, 0);
	producer_state_destroy(ps);
}

static void test_duplicates_window(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	int64_t next = 100, base[8];
	int32_t seq = 0;
	struct producer_info info;

	(void)state;
	/* 8 batches of 3 records, with non-idempotent data between them. */
	for (int i = 0; i < 8; i++) {
		base[i] = append_ok(ps, &next, 7, 0, seq, 3, TS0 + i);
		seq += 3;
		next += 10;
	}
	assert_int_equal(producer_state_lookup(ps, 7, &info), SL_OK);
	assert_int_equal(info.epoch, 0);
	assert_int_equal(info.last_sequence, 23);
	assert_int_equal(info.last_offset, base[7] + 2);
	assert_int_equal(info.window_count, PRODUCER_STATE_BATCHES_RETAINED);
	/* Each of the last 5 is a duplicate, answered with its own offsets. */
	for (int i = 3; i < 8; i++)
		expect_dup(ps, 7, 0, 3 * i, 3, base[i], 0);
	/* The 6th-oldest and older are out of the window: out of order. */
	expect_refused(ps, 7, 0, 3 * 2, 3, PRODUCER_CHECK_OUT_OF_ORDER);
	expect_refused(ps, 7, 0, 0, 3, PRODUCER_CHECK_OUT_OF_ORDER);
	/* Same first sequence, different length: not a duplicate. */
	expect_refused(ps, 7, 0, 21, 2, PRODUCER_CHECK_OUT_OF_ORDER);
	expect_refused(ps, 7, 0, 21, 4, PRODUCER_CHECK_OUT_OF_ORDER);
	/* A duplicate from another epoch is no duplicate. */
	expect_refused(ps, 7, 1, 21, 3, PRODUCER_CHECK_OUT_OF_ORDER);
	assert_int_equal(producer_state_stats(ps)->duplicates, 5);
	/* The state moved on by none of this: the next batch fits. */
	append_ok(ps, &next, 7, 0, 24, 1, TS0 + 9);
	producer_state_destroy(ps);
}

static void test_sequence_gaps(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	int64_t next = 0;

	(void)state;
	append_ok(ps, &next, 1, 0, 0, 5, TS0);          /* 0..4 */
	expect_refused(ps, 1, 0, 6, 1, PRODUCER_CHECK_OUT_OF_ORDER);   /* gap of one */
	expect_refused(ps, 1, 0, 1000, 1, PRODUCER_CHECK_OUT_OF_ORDER);
	expect_refused(ps, 1, 0, 4, 2, PRODUCER_CHECK_OUT_OF_ORDER);   /* overlaps */
	expect_refused(ps, 1, 0, 2, 1, PRODUCER_CHECK_OUT_OF_ORDER);   /* behind */
	expect_refused(ps, 1, 0, 0, 1, PRODUCER_CHECK_OUT_OF_ORDER);   /* restart, same epoch */
	assert_int_equal(producer_state_stats(ps)->out_of_order, 5);
	append_ok(ps, &next, 1, 0, 5, 1, TS0);
	/* Negative sequence or epoch with a producer id: INVALID_RECORD. */
	expect_refused(ps, 1, 0, -1, 1, PRODUCER_CHECK_INVALID_RECORD);
	expect_refused(ps, 1, -1, 6, 1, PRODUCER_CHECK_INVALID_RECORD);
	expect_refused(ps, 99, 0, -5, 1, PRODUCER_CHECK_INVALID_RECORD);
	assert_int_equal(producer_state_lookup(ps, 99, &(struct producer_info){ 0 }), SL_ENOTFOUND);
	producer_state_destroy(ps);
}

static void test_unknown_producer_any_sequence(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	int64_t next = 0;
	struct producer_info info;

	(void)state;
	/* KIP-360 / Kafka >= 2.5: state may have been expired; accept and track. */
	append_ok(ps, &next, 55, 3, 4242, 10, TS0);
	assert_int_equal(producer_state_lookup(ps, 55, &info), SL_OK);
	assert_int_equal(info.epoch, 3);
	assert_int_equal(info.last_sequence, 4251);
	expect_refused(ps, 55, 3, 4253, 1, PRODUCER_CHECK_OUT_OF_ORDER);
	append_ok(ps, &next, 55, 3, 4252, 1, TS0);
	producer_state_destroy(ps);
}

static void test_wraparound(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	int64_t next = 0;
	struct producer_info info;

	(void)state;
	append_ok(ps, &next, 9, 0, INT32_MAX - 4, 3, TS0);     /* MAX-4 .. MAX-2 */
	append_ok(ps, &next, 9, 0, INT32_MAX - 1, 2, TS0);     /* MAX-1 .. MAX */
	assert_int_equal(producer_state_lookup(ps, 9, &info), SL_OK);
	assert_int_equal(info.last_sequence, INT32_MAX);
	/* After INT32_MAX comes 0, not INT32_MAX + 1 nor 1. */
	expect_refused(ps, 9, 0, 1, 1, PRODUCER_CHECK_OUT_OF_ORDER);
	int64_t b0 = append_ok(ps, &next, 9, 0, 0, 2, TS0);    /* 0..1 */
	/* A batch that itself wraps: MAX-1, MAX, 0, 1 (another producer). */
	int64_t bw = append_ok(ps, &next, 10, 0, INT32_MAX - 1, 4, TS0);
	assert_int_equal(producer_state_lookup(ps, 10, &info), SL_OK);
	assert_int_equal(info.last_sequence, 1);
	expect_dup(ps, 10, 0, INT32_MAX - 1, 4, bw, 0);
	expect_refused(ps, 10, 0, INT32_MAX - 1, 3, PRODUCER_CHECK_OUT_OF_ORDER);
	append_ok(ps, &next, 10, 0, 2, 1, TS0);
	/* Duplicates on both sides of the wrap are still found. */
	expect_dup(ps, 9, 0, INT32_MAX - 1, 2, 3, 0);
	expect_dup(ps, 9, 0, 0, 2, b0, 0);
	producer_state_destroy(ps);
}

static void test_epoch_fencing_and_bump(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	int64_t next = 0, b[3];
	struct producer_info info;

	(void)state;
	for (int i = 0; i < 3; i++)
		b[i] = append_ok(ps, &next, 4, 3, 2 * i, 2, TS0);
	/* Older epoch: fenced, whatever the sequence (even a would-be duplicate). */
	expect_refused(ps, 4, 2, 6, 1, PRODUCER_CHECK_INVALID_EPOCH);
	expect_refused(ps, 4, 2, 0, 2, PRODUCER_CHECK_INVALID_EPOCH);
	assert_int_equal(producer_state_stats(ps)->fenced, 2);
	/* Newer epoch must start at sequence 0. */
	expect_refused(ps, 4, 4, 6, 1, PRODUCER_CHECK_OUT_OF_ORDER);
	expect_refused(ps, 4, 4, 1, 1, PRODUCER_CHECK_OUT_OF_ORDER);
	expect_dup(ps, 4, 3, 4, 2, b[2], 0);
	int64_t nb = append_ok(ps, &next, 4, 4, 0, 3, TS0);
	assert_int_equal(producer_state_lookup(ps, 4, &info), SL_OK);
	assert_int_equal(info.epoch, 4);
	assert_int_equal(info.last_sequence, 2);
	assert_int_equal(info.window_count, 1);   /* the old epoch's batches are gone */
	/* Retries from the old epoch are now fenced, not duplicates. */
	expect_refused(ps, 4, 3, 4, 2, PRODUCER_CHECK_INVALID_EPOCH);
	expect_dup(ps, 4, 4, 0, 3, nb, 0);
	/* A jump of several epochs is a bump too. */
	append_ok(ps, &next, 4, 9, 0, 1, TS0);
	expect_refused(ps, 4, 4, 3, 1, PRODUCER_CHECK_INVALID_EPOCH);
	producer_state_destroy(ps);
}

static void test_pipeline_retry_of_third(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	struct producer_reservation rsv[6];
	int64_t next = 1000;
	struct producer_info info;

	(void)state;
	/* Five batches in flight, none completed: each checked against the pending ones. */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(try_batch(ps, 3, 0, 10 * i, 10, next, TS0 + i, &rsv[i]),
				 PRODUCER_CHECK_OK);
		next += 10;
	}
	assert_int_equal(producer_state_lookup(ps, 3, &info), SL_OK);
	assert_int_equal(info.pending, 5);
	assert_int_equal(info.last_sequence, 49);
	/* The client retries the 3rd (its response was lost): in flight, same offsets. */
	expect_dup(ps, 3, 0, 20, 10, rsv[2].first_offset, 1);
	/* A sequence gap is still a gap, with pending batches. */
	expect_refused(ps, 3, 0, 60, 10, PRODUCER_CHECK_OUT_OF_ORDER);
	/* A 6th in flight is too many: retry after a completion. */
	assert_int_equal(try_batch(ps, 3, 0, 50, 10, next, TS0, &rsv[5]), PRODUCER_CHECK_EAGAIN);
	assert_int_equal(rsv[5].producer_id, -1);
	producer_state_complete(ps, &rsv[0]);
	producer_state_complete(ps, &rsv[1]);
	expect_dup(ps, 3, 0, 20, 10, rsv[2].first_offset, 1);
	producer_state_complete(ps, &rsv[2]);
	expect_dup(ps, 3, 0, 20, 10, rsv[2].first_offset, 0);  /* now answerable at once */
	expect_dup(ps, 3, 0, 40, 10, rsv[4].first_offset, 1);
	assert_int_equal(try_batch(ps, 3, 0, 50, 10, next, TS0, &rsv[5]), PRODUCER_CHECK_OK);
	producer_state_complete(ps, &rsv[3]);
	producer_state_complete(ps, &rsv[4]);
	producer_state_complete(ps, &rsv[5]);
	assert_true(producer_state_invariants_ok(ps));
	assert_int_equal(producer_state_lookup(ps, 3, &info), SL_OK);
	assert_int_equal(info.pending, 0);
	assert_int_equal(info.window_count, 5);
	for (int i = 1; i < 6; i++)
		expect_dup(ps, 3, 0, 10 * i, 10, rsv[i].first_offset, 0);
	expect_refused(ps, 3, 0, 0, 10, PRODUCER_CHECK_OUT_OF_ORDER);
	producer_state_destroy(ps);
}

static void test_abort_newest_restores(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	struct producer_reservation rsv, again;
	struct producer_info before, after;
	int64_t next = 0, b[8];

	(void)state;
	/* A full ring: 8 completed batches. */
	for (int i = 0; i < 8; i++)
		b[i] = append_ok(ps, &next, 8, 1, i, 1, TS0 + i);
	assert_int_equal(producer_state_lookup(ps, 8, &before), SL_OK);
	/* plog_append refuses the batch (SL_EAGAIN): abort the reservation. */
	assert_int_equal(try_batch(ps, 8, 1, 8, 1, next, TS0 + 8, &rsv), PRODUCER_CHECK_OK);
	producer_state_abort(ps, &rsv);
	assert_int_equal(producer_state_lookup(ps, 8, &after), SL_OK);
	assert_info_equal(&before, &after);
	for (int i = 3; i < 8; i++)
		expect_dup(ps, 8, 1, i, 1, b[i], 0);
	/* The same batch is accepted again, at the same offset. */
	assert_int_equal(try_batch(ps, 8, 1, 8, 1, next, TS0 + 8, &again), PRODUCER_CHECK_OK);
	producer_state_complete(ps, &again);

	/* An epoch bump that never reaches the log: the old epoch comes back whole. */
	next += 1;
	assert_int_equal(producer_state_lookup(ps, 8, &before), SL_OK);
	assert_int_equal(try_batch(ps, 8, 2, 0, 4, next, TS0 + 9, &rsv), PRODUCER_CHECK_OK);
	expect_refused(ps, 8, 1, 9, 1, PRODUCER_CHECK_INVALID_EPOCH);  /* bump seen at once */
	producer_state_abort(ps, &rsv);
	assert_int_equal(producer_state_lookup(ps, 8, &after), SL_OK);
	assert_info_equal(&before, &after);
	for (int i = 4; i < 8; i++)
		expect_dup(ps, 8, 1, i, 1, b[i], 0);
	expect_dup(ps, 8, 1, 8, 1, again.first_offset, 0);
	append_ok(ps, &next, 8, 1, 9, 1, TS0 + 10);

	/* A new producer whose only batch is aborted is forgotten. */
	assert_int_equal(try_batch(ps, 77, 0, 5, 1, next + 100, TS0, &rsv), PRODUCER_CHECK_OK);
	assert_int_equal(producer_state_count(ps), 2);
	producer_state_abort(ps, &rsv);
	assert_int_equal(producer_state_count(ps), 1);
	assert_int_equal(producer_state_lookup(ps, 77, &after), SL_ENOTFOUND);
	producer_state_abort(ps, &rsv);  /* again: no-op */
	producer_state_destroy(ps);
}

static void test_abort_after_failed_write(void **state)
{
	struct producer_state *ps = ps_new(0, 0);
	struct producer_reservation rsv[4], other;
	struct producer_info info;
	int64_t next = 0;

	(void)state;
	append_ok(ps, &next, 1, 0, 0, 2, TS0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(try_batch(ps, 1, 0, 2 + 2 * i, 2, next, TS0, &rsv[i]),
				 PRODUCER_CHECK_OK);
		next += 2;
	}
	assert_int_equal(try_batch(ps, 2, 0, 0, 1, next, TS0, &other), PRODUCER_CHECK_OK);
	/* The 1st completes, the 2nd's write fails: plog fails it and every later one. */
	producer_state_complete(ps, &rsv[0]);
	producer_state_abort(ps, &rsv[1]);
	assert_int_equal(producer_state_lookup(ps, 1, &info), SL_OK);
	assert_int_equal(info.pending, 0);
	assert_int_equal(info.last_sequence, 3);
	assert_int_equal(info.last_offset, rsv[0].last_offset);
	producer_state_abort(ps, &rsv[2]);  /* already gone with the 2nd */
	producer_state_abort(ps, &rsv[3]);
	producer_state_abort(ps, &other);
	assert_int_equal(producer_state_lookup(ps, 2, &info), SL_ENOTFOUND);
	assert_int_equal(producer_state_stats(ps)->aborted, 4);
	assert_true(producer_state_invariants_ok(ps));
	/* The failed batch was never written: its retry is new data, in sequence. */
	expect_refused(ps, 1, 0, 6, 2, PRODUCER_CHECK_OUT_OF_ORDER);
	append_ok(ps, &next, 1, 0, 4, 2, TS0);
	producer_state_destroy(ps);
}

static void test_eviction_at_bound(void **state)
{
	struct producer_state *ps = ps_new(4, 0);
	struct producer_reservation busy, r;
	struct producer_info info;
	int64_t next = 0;

	(void)state;
	append_ok(ps, &next, 101, 0, 0, 1, TS0 + 40);
	append_ok(ps, &next, 102, 0, 0, 1, TS0 + 10);  /* oldest, but busy below */
	append_ok(ps, &next, 103, 0, 0, 1, TS0 + 20);
	append_ok(ps, &next, 104, 0, 0, 1, TS0 + 30);
	assert_int_equal(try_batch(ps, 102, 0, 1, 1, next++, TS0 + 5, &busy), PRODUCER_CHECK_OK);
	/* A 5th producer evicts the idle one with the oldest last timestamp: 103. */
	append_ok(ps, &next, 105, 0, 0, 1, TS0 + 50);
	assert_int_equal(producer_state_count(ps), 4);
	assert_int_equal(producer_state_lookup(ps, 103, &info), SL_ENOTFOUND);
	assert_int_equal(producer_state_lookup(ps, 102, &info), SL_OK);
	assert_int_equal(producer_state_stats(ps)->evicted, 1);
	/* Make every producer busy: a new one cannot get in. */
	struct producer_reservation h[3];
	assert_int_equal(try_batch(ps, 101, 0, 1, 1, next++, TS0, &h[0]), PRODUCER_CHECK_OK);
	assert_int_equal(try_batch(ps, 104, 0, 1, 1, next++, TS0, &h[1]), PRODUCER_CHECK_OK);
	assert_int_equal(try_batch(ps, 105, 0, 1, 1, next++, TS0, &h[2]), PRODUCER_CHECK_OK);
	assert_int_equal(try_batch(ps, 106, 0, 0, 1, next, TS0, &r), PRODUCER_CHECK_EAGAIN);
	assert_int_equal(producer_state_count(ps), 4);
	producer_state_complete(ps, &busy);
	producer_state_complete(ps, &h[0]);
	producer_state_complete(ps, &h[1]);
	producer_state_complete(ps, &h[2]);
	/* The evicted producer comes back with any sequence (unknown = accepted). */
	append_ok(ps, &next, 103, 0, 77, 1, TS0 + 60);
	assert_int_equal(producer_state_stats(ps)->evicted, 2);
	assert_int_equal(producer_state_count(ps), 4);
	producer_state_destroy(ps);
}

static void test_expiry(void **state)
{
	struct producer_state *ps = ps_new(0, 1000);
	struct producer_reservation busy;
	struct producer_info info;
	int64_t next = 0;

	(void)state;
	append_ok(ps, &next, 1, 0, 0, 1, 0);
	append_ok(ps, &next, 2, 0, 0, 1, 500);
	append_ok(ps, &next, 3, 0, 0, 1, 900);
	append_ok(ps, &next, 4, 0, 0, 1, 100);
	assert_int_equal(try_batch(ps, 4, 0, 1, 1, next++, 100, &busy), PRODUCER_CHECK_OK);
	assert_int_equal(producer_state_expire(ps, 999), 0);
	/* now - last >= expiration_ms: 1 (age 1500) and 2 (age exactly 1000); 4 is busy. */
	assert_int_equal(producer_state_expire(ps, 1500), 2);
	assert_int_equal(producer_state_lookup(ps, 1, &info), SL_ENOTFOUND);
	assert_int_equal(producer_state_lookup(ps, 2, &info), SL_ENOTFOUND);
	assert_int_equal(producer_state_lookup(ps, 3, &info), SL_OK);
	assert_int_equal(producer_state_lookup(ps, 4, &info), SL_OK);
	producer_state_complete(ps, &busy);
	assert_int_equal(producer_state_expire(ps, 1500), 1);
	assert_int_equal(producer_state_expire(ps, 1899), 0);
	assert_int_equal(producer_state_expire(ps, 1900), 1);
	assert_int_equal(producer_state_count(ps), 0);
	assert_int_equal(producer_state_stats(ps)->expired, 4);
	producer_state_destroy(ps);
}

static void test_config_bounds(void **state)
{
	struct producer_state_config cfg;
	struct producer_state *ps;

	(void)state;
	producer_state_config_default(&cfg);
	assert_int_equal(cfg.producers_max, PRODUCER_STATE_PRODUCERS_DEFAULT);
	assert_int_equal(cfg.expiration_ms, PRODUCER_STATE_EXPIRATION_MS_DEFAULT);
	cfg.producers_max = 0;
	assert_int_equal(producer_state_create(&ps, &cfg), SL_EINVAL);
	cfg.producers_max = PRODUCER_STATE_PRODUCERS_LIMIT + 1;
	assert_int_equal(producer_state_create(&ps, &cfg), SL_EINVAL);
	cfg.producers_max = 1;
	cfg.expiration_ms = 0;
	assert_int_equal(producer_state_create(&ps, &cfg), SL_EINVAL);
	cfg.expiration_ms = 1;
	assert_int_equal(producer_state_create(&ps, &cfg), SL_OK);
	int64_t next = 0;
	append_ok(ps, &next, 5, 0, 0, 1, TS0);
	append_ok(ps, &next, 6, 0, 0, 1, TS0);  /* evicts 5 */
	assert_int_equal(producer_state_count(ps), 1);
	producer_state_destroy(ps);
}

/* xorshift64: a fixed-seed generator for the model test. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define MODEL_N 1000

static void test_table_against_model(void **state)
{
	struct producer_state *ps = ps_new(MODEL_N, 1000);
	static int64_t ids[MODEL_N], ts[MODEL_N];
	static int32_t seq[MODEL_N];
	static int live[MODEL_N];
	uint64_t s = 0x5eed5eed1234ULL;
	int64_t next = 0, now = 0;

	(void)state;
	for (int i = 0; i < MODEL_N; i++)
		ids[i] = (int64_t)(rnd(&s) >> 2);  /* random 62-bit ids: scattered homes */
	for (int round = 0; round < 40; round++) {
		now += 100;
		for (int k = 0; k < 150; k++) {
			int i = (int)(rnd(&s) % MODEL_N);
			if (!live[i])
				seq[i] = (int32_t)(rnd(&s) % 1000);
			struct producer_batch b = pb_make(ids[i], 0, seq[i], 1, now);
			struct producer_reservation rsv;
			/* No O(n) check per step here: once per round, below. */
			assert_int_equal(producer_state_check_and_reserve(ps, &b, next++, &rsv),
					 PRODUCER_CHECK_OK);
			producer_state_complete(ps, &rsv);
			seq[i]++;
			live[i] = 1;
			ts[i] = now;
		}
		uint32_t want = 0;
		for (int i = 0; i < MODEL_N; i++)
			if (live[i] && now + 50 - ts[i] >= 1000) {
				live[i] = 0;
				want++;
			}
		assert_int_equal(producer_state_expire(ps, now + 50), want);
		uint32_t n = 0;
		for (int i = 0; i < MODEL_N; i++) {
			struct producer_info info;
			enum sl_err err = producer_state_lookup(ps, ids[i], &info);
			assert_int_equal(err, live[i] ? SL_OK : SL_ENOTFOUND);
			if (live[i]) {
				assert_int_equal(info.last_sequence, seq[i] - 1);
				n++;
			}
		}
		assert_int_equal(producer_state_count(ps), n);
		assert_true(producer_state_invariants_ok(ps));
	}
	producer_state_destroy(ps);
}

/* ---- with a real partition log ---- */

struct fixture {
	struct iot_log_fixture io;
	struct plog *log;
	struct producer_state *ps;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	iot_log_fixture_init(&f->io);
	f->io.cfg.segment_bytes = 4096;   /* several segments */
	f->ps = ps_new(0, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->log != NULL)
		assert_int_equal(plog_close(f->log), SL_OK);
	producer_state_destroy(f->ps);
	iot_log_fixture_fini(&f->io);
	free(f);
	return 0;
}

static void log_open(struct fixture *f)
{
	assert_null(f->log);
	assert_int_equal(plog_open(&f->log, &f->io.ring, f->io.d.part, &f->io.cfg, TS0), SL_OK);
}

static void log_close(struct fixture *f)
{
	assert_int_equal(plog_close(f->log), SL_OK);
	f->log = NULL;
}

/* One Produce request for one partition, as the net/ caller would hold it. */
struct preq {
	struct plog_append a;
	uint8_t buf[2048];
	struct producer_reservation rsv;
	struct producer_state *ps;
	int done;
	enum sl_err res;
};

static void preq_done(struct plog_append *a)
{
	struct preq *q = (struct preq *)(void *)((char *)a - offsetof(struct preq, a));
	q->done = 1;
	q->res = a->res;
	if (a->res == SL_OK)
		producer_state_complete(q->ps, &q->rsv);
	else
		producer_state_abort(q->ps, &q->rsv);
}

/*
 * The documented flow: build the batch, check and reserve at
 * plog_next_offset, append, abort if plog_append refuses. Returns the check
 * result; *append_err gets plog_append's result when it was called.
 */
static enum producer_check preq_submit(struct plog *log, struct producer_state *ps,
				       struct preq *q, int64_t pid, int16_t epoch, int32_t seq,
				       int32_t records, int64_t ts, enum sl_err *append_err)
{
	struct batch_builder bb;
	struct batch_header h;
	struct producer_batch pb;
	char value[32];

	memset(q, 0, sizeof(*q));
	q->ps = ps;
	batch_builder_init(&bb, q->buf, sizeof(q->buf));
	if (pid >= 0)
		batch_builder_set_producer(&bb, pid, epoch, seq);
	for (int32_t i = 0; i < records; i++) {
		int n = snprintf(value, sizeof(value), "p%lld-s%lld", (long long)pid,
				 (long long)seq + i);
		assert_int_equal(batch_builder_add(&bb, ts - records + 1 + i, NULL, -1, value, n,
						   NULL, 0), SL_OK);
	}
	size_t len = batch_builder_finish(&bb);
	assert_true(len > 0);
	assert_int_equal(batch_validate(q->buf, len, BATCH_CHECK_ALL, &h), SL_OK);
	producer_batch_from_header(&pb, &h);
	assert_int_equal(pb.max_timestamp, ts);
	int64_t base = plog_next_offset(log);
	enum producer_check c = producer_state_check_and_reserve(ps, &pb, base, &q->rsv);
	if (append_err != NULL)
		*append_err = SL_OK;
	if (c != PRODUCER_CHECK_OK)
		return c;
	q->a.buf = q->buf;
	q->a.len = len;
	q->a.done = preq_done;
	enum sl_err err = plog_append(log, &q->a, ts);
	if (append_err != NULL)
		*append_err = err;
	if (err != SL_OK) {
		producer_state_abort(ps, &q->rsv);
		return c;
	}
	assert_int_equal(q->a.base_offset, base);
	assert_int_equal(q->a.last_offset, base + records - 1);
	return c;
}

/* What was produced, to ask both the live and the rebuilt state about. */
struct hist {
	int64_t pid;
	int16_t epoch;
	int32_t seq;
	int32_t records;
	int64_t base;
};

#define HIST_MAX 256

struct scenario {
	struct hist h[HIST_MAX];
	int n;
	int64_t pids[8];
	int npids;
	uint64_t idempotent_batches;
};

static void produce(struct fixture *f, struct scenario *sc, int64_t pid, int16_t epoch,
		    int32_t seq, int32_t records, int64_t ts)
{
	static struct preq q;
	enum sl_err err;

	assert_int_equal(preq_submit(f->log, f->ps, &q, pid, epoch, seq, records, ts, &err),
			 PRODUCER_CHECK_OK);
	assert_int_equal(err, SL_OK);
	iot_drive(&f->io.ring, &q.done);
	assert_int_equal(q.res, SL_OK);
	if (pid < 0)
		return;
	assert_true(sc->n < HIST_MAX);
	sc->h[sc->n++] = (struct hist){ pid, epoch, seq, records, q.a.base_offset };
	sc->idempotent_batches++;
	int known = 0;
	for (int i = 0; i < sc->npids; i++)
		known |= sc->pids[i] == pid;
	if (!known)
		sc->pids[sc->npids++] = pid;
}

/*
 * Three producers, plain data between them: 1000 runs on; 3000 starts near
 * INT32_MAX and wraps (inside a batch, too); 2000 bumps its epoch on every
 * call. Sequences carry over between calls (reset with a fresh scenario).
 */
static void scenario_run(struct fixture *f, struct scenario *sc, int rounds, int64_t ts)
{
	static int32_t seq_a, seq_c;
	static int16_t epoch_b;

	if (sc->n == 0) {
		seq_a = 0;
		seq_c = INT32_MAX - 4;
		epoch_b = 2;
	}
	for (int r = 0; r < rounds; r++) {
		int32_t ra = 1 + r % 3;
		produce(f, sc, 1000, 0, seq_a, ra, ts + r);
		seq_a += ra;
		produce(f, sc, -1, -1, -1, 2, ts + r);
		produce(f, sc, 3000, 5, seq_c, 2, ts + r);
		seq_c = (int32_t)(((int64_t)seq_c + 2) % ((int64_t)INT32_MAX + 1));
	}
	for (int i = 0; i < 3; i++)
		produce(f, sc, 2000, epoch_b, 4 * i, 4, ts);
	epoch_b++;
	for (int i = 0; i < 2; i++)
		produce(f, sc, 2000, epoch_b, 4 * i, 4, ts);
	epoch_b++;
}

/* The history entries of pid in its newest epoch, newest first. */
static int hist_window(const struct scenario *sc, int64_t pid, int64_t below,
		       const struct hist **out, int cap)
{
	int n = 0;
	int16_t epoch = -1;

	for (int i = sc->n; i-- > 0;) {
		const struct hist *h = &sc->h[i];
		if (h->pid != pid || h->base >= below)
			continue;
		if (epoch < 0)
			epoch = h->epoch;
		if (h->epoch != epoch || n == cap)
			break;
		out[n++] = h;
	}
	return n;
}

/*
 * Asks `ps` what a retry of each recent batch would get: the last 5 of the
 * current epoch are duplicates with their original offsets, the 6th is out
 * of order, older epochs are fenced (only history below `below` counts).
 */
static void check_answers(struct producer_state *ps, const struct scenario *sc, int64_t below)
{
	for (int k = 0; k < sc->npids; k++) {
		const struct hist *w[PRODUCER_STATE_BATCHES_RETAINED + 1];
		int64_t pid = sc->pids[k];
		int n = hist_window(sc, pid, below, w, PRODUCER_STATE_BATCHES_RETAINED + 1);
		struct producer_info info;
		if (n == 0) {
			assert_int_equal(producer_state_lookup(ps, pid, &info), SL_ENOTFOUND);
			continue;
		}
		assert_int_equal(producer_state_lookup(ps, pid, &info), SL_OK);
		assert_int_equal(info.epoch, w[0]->epoch);
		assert_int_equal(info.last_offset, w[0]->base + w[0]->records - 1);
		assert_int_equal(info.window_count, SL_MIN(n, PRODUCER_STATE_BATCHES_RETAINED));
		for (int i = 0; i < n && i < PRODUCER_STATE_BATCHES_RETAINED; i++)
			expect_dup(ps, pid, w[i]->epoch, w[i]->seq, w[i]->records, w[i]->base, 0);
		if (n > PRODUCER_STATE_BATCHES_RETAINED)
			expect_refused(ps, pid, w[n - 1]->epoch, w[n - 1]->seq, w[n - 1]->records,
				       PRODUCER_CHECK_OUT_OF_ORDER);
		if (w[0]->epoch > 0)
			expect_refused(ps, pid, (int16_t)(w[0]->epoch - 1), 0, 1,
				       PRODUCER_CHECK_INVALID_EPOCH);
	}
}

/* Closes the log, reopens it into a fresh producer_state and rebuilds. */
static void reopen_rebuild(struct fixture *f, int64_t now_ms)
{
	log_close(f);
	producer_state_destroy(f->ps);
	f->ps = ps_new(0, 0);
	log_open(f);
	assert_int_equal(producer_state_rebuild(f->ps, f->log, f->io.d.part, now_ms), SL_OK);
	assert_true(producer_state_invariants_ok(f->ps));
}

static void snap_path(char *out, const struct fixture *f, int64_t off)
{
	iot_path(out, f->io.d.part, off, PRODUCER_STATE_SNAPSHOT_EXT);
}

static void test_log_flow_and_failed_write(void **state)
{
	struct fixture *f = *state;
	struct preq q[6];
	struct iot_cqe cqes[2];
	enum sl_err err;
	struct producer_info info;

	log_open(f);
	/* Five in flight on the log; a retry of the 3rd while they are. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(preq_submit(f->log, f->ps, &q[i], 42, 0, 3 * i, 3, TS0, &err),
				 PRODUCER_CHECK_OK);
	assert_int_equal(preq_submit(f->log, f->ps, &q[5], 42, 0, 6, 3, TS0, NULL),
			 PRODUCER_CHECK_DUPLICATE);
	assert_int_equal(q[5].rsv.first_offset, q[2].a.base_offset);
	assert_int_equal(q[5].rsv.pending, 1);
	assert_int_equal(plog_end_offset(f->log), 0);  /* nothing visible yet */
	iot_drive(&f->io.ring, &q[4].done);
	for (int i = 0; i < 5; i++)
		assert_int_equal(q[i].res, SL_OK);
	assert_int_equal(preq_submit(f->log, f->ps, &q[5], 42, 0, 6, 3, TS0, NULL),
			 PRODUCER_CHECK_DUPLICATE);
	assert_int_equal(q[5].rsv.pending, 0);
	assert_int_equal(plog_end_offset(f->log), 15);

	/*
	 * Three more; the kernel fails the write after the 1st one (plog sends
	 * the 1st alone, then the two queued behind it as one writev; without
	 * coalescing the 3rd fails anyway, after the hole).
	 */
	for (int i = 0; i < 3; i++)
		assert_int_equal(preq_submit(f->log, f->ps, &q[i], 42, 0, 15 + 2 * i, 2, TS0, &err),
				 PRODUCER_CHECK_OK);
	iot_reap(&f->io.ring, 1, &cqes[0]);
	iot_dispatch(&f->io.ring, &cqes[0], cqes[0].res);
	assert_true(q[0].done);
	iot_reap(&f->io.ring, 1, &cqes[1]);
	iot_dispatch(&f->io.ring, &cqes[1], -EIO);
	iot_drive(&f->io.ring, &q[2].done);
	assert_true(q[0].done && q[1].done && q[2].done);
	assert_int_equal(q[0].res, SL_OK);
	assert_int_equal(q[1].res, SL_EIO);
	assert_int_equal(q[2].res, SL_EIO);
	assert_true(plog_failed(f->log));
	assert_int_equal(producer_state_lookup(f->ps, 42, &info), SL_OK);
	assert_int_equal(info.pending, 0);
	assert_int_equal(info.last_sequence, 16);
	assert_int_equal(info.last_offset, 16);
	/* A failed log refuses appends at once: the reservation is undone. */
	assert_int_equal(preq_submit(f->log, f->ps, &q[3], 42, 0, 17, 2, TS0, &err),
			 PRODUCER_CHECK_OK);
	assert_int_equal(err, SL_EIO);
	struct producer_info after;
	assert_int_equal(producer_state_lookup(f->ps, 42, &after), SL_OK);
	assert_info_equal(&info, &after);
	assert_true(producer_state_invariants_ok(f->ps));
	assert_int_equal(plog_close(f->log), SL_EIO);
	f->log = NULL;
	/* Reopened and rebuilt: the log (recovered) and the state agree. */
	producer_state_destroy(f->ps);
	f->ps = ps_new(0, 0);
	log_open(f);
	assert_int_equal(producer_state_rebuild(f->ps, f->log, f->io.d.part, TS0), SL_OK);
	assert_int_equal(producer_state_lookup(f->ps, 42, &after), SL_OK);
	assert_int_equal(after.last_offset, plog_end_offset(f->log) - 1);
	assert_int_equal(after.last_sequence, (int32_t)after.last_offset);
}

static void test_rebuild_full_scan(void **state)
{
	struct fixture *f = *state;
	static struct scenario sc;

	memset(&sc, 0, sizeof(sc));
	log_open(f);
	scenario_run(f, &sc, 30, TS0);
	int64_t end = plog_end_offset(f->log);
	assert_true(plog_segment_count(f->log) > 1);
	check_answers(f->ps, &sc, end);   /* the live state */
	reopen_rebuild(f, TS0 + 1000);
	const struct producer_state_stats *st = producer_state_stats(f->ps);
	assert_int_equal(st->rebuild_snapshot_offset, -1);
	assert_int_equal(st->rebuild_batches_replayed, sc.idempotent_batches);
	assert_int_equal(producer_state_count(f->ps), 3);
	check_answers(f->ps, &sc, end);   /* the same answers after the rebuild */
	/* And it goes on from there: next in sequence for the wrapped producer. */
	struct producer_info info;
	assert_int_equal(producer_state_lookup(f->ps, 3000, &info), SL_OK);
	produce(f, &sc, 3000, 5, (int32_t)(((int64_t)info.last_sequence + 1) % ((int64_t)INT32_MAX + 1)),
		1, TS0 + 2000);
	/* A rebuild long after the last append expires everything (one day). */
	reopen_rebuild(f, TS0 + PRODUCER_STATE_EXPIRATION_MS_DEFAULT + 3000);
	assert_int_equal(producer_state_count(f->ps), 0);
}

static void test_snapshot_at_close_and_replay(void **state)
{
	struct fixture *f = *state;
	static struct scenario sc;
	char p[IOT_PATH_MAX];

	memset(&sc, 0, sizeof(sc));
	log_open(f);
	scenario_run(f, &sc, 12, TS0);
	int64_t e1 = plog_end_offset(f->log);
	/* Clean shutdown: appends drained, snapshot at the end offset, close. */
	assert_int_equal(producer_state_snapshot_write(f->ps, f->io.d.part, e1), SL_OK);
	snap_path(p, f, e1);
	assert_true(iot_exists(p));
	assert_int_equal(producer_state_snapshot_write(f->ps, f->io.d.part, e1), SL_OK); /* skipped */
	reopen_rebuild(f, TS0);
	const struct producer_state_stats *st = producer_state_stats(f->ps);
	assert_int_equal(st->rebuild_snapshot_offset, e1);
	assert_int_equal(st->rebuild_batches_replayed, 0);
	check_answers(f->ps, &sc, e1);
	/* More data after the snapshot, then an unclean-looking stop (no snapshot). */
	uint64_t before = sc.idempotent_batches;
	scenario_run(f, &sc, 4, TS0 + 100);
	int64_t e2 = plog_end_offset(f->log);
	reopen_rebuild(f, TS0);
	st = producer_state_stats(f->ps);
	assert_int_equal(st->rebuild_snapshot_offset, e1);
	assert_int_equal(st->rebuild_batches_replayed, sc.idempotent_batches - before);
	check_answers(f->ps, &sc, e2);
}

/*
 * Opens the log with a fresh scenario, runs `rounds1` rounds (from TS0) and
 * snapshots at the end offset *e1, runs `rounds2` more (from TS0 + 10) and
 * snapshots at *e2; p1 / p2 get the two snapshot paths.
 */
static void two_snapshots(struct fixture *f, struct scenario *sc, int rounds1, int rounds2,
			  int64_t *e1, int64_t *e2, char *p1, char *p2)
{
	memset(sc, 0, sizeof(*sc));
	log_open(f);
	scenario_run(f, sc, rounds1, TS0);
	*e1 = plog_end_offset(f->log);
	assert_int_equal(producer_state_snapshot_write(f->ps, f->io.d.part, *e1), SL_OK);
	scenario_run(f, sc, rounds2, TS0 + 10);
	*e2 = plog_end_offset(f->log);
	assert_int_equal(producer_state_snapshot_write(f->ps, f->io.d.part, *e2), SL_OK);
	snap_path(p1, f, *e1);
	snap_path(p2, f, *e2);
}

static void test_snapshot_corrupt_fallback(void **state)
{
	struct fixture *f = *state;
	static struct scenario sc;
	char p1[IOT_PATH_MAX], p2[IOT_PATH_MAX];
	int64_t e1, e2;

	two_snapshots(f, &sc, 10, 5, &e1, &e2, p1, p2);
	assert_true(iot_exists(p1) && iot_exists(p2));

	/* One flipped bit in the newest: deleted, the older one used, the rest replayed. */
	iot_flip(p2, iot_file_size(p2) - 3);
	reopen_rebuild(f, TS0);
	const struct producer_state_stats *st = producer_state_stats(f->ps);
	assert_int_equal(st->rebuild_snapshots_corrupt, 1);
	assert_int_equal(st->rebuild_snapshot_offset, e1);
	assert_false(iot_exists(p2));
	check_answers(f->ps, &sc, e2);

	/* A torn (short) file: deleted, full scan. */
	iot_truncate(p1, 30);
	reopen_rebuild(f, TS0);
	st = producer_state_stats(f->ps);
	assert_int_equal(st->rebuild_snapshots_corrupt, 1);
	assert_int_equal(st->rebuild_snapshot_offset, -1);
	assert_int_equal(st->rebuild_batches_replayed, sc.idempotent_batches);
	assert_false(iot_exists(p1));
	check_answers(f->ps, &sc, e2);

	/* A valid file under another name (its header says otherwise): corrupt too. */
	assert_int_equal(producer_state_snapshot_write(f->ps, f->io.d.part, e2), SL_OK);
	char moved[IOT_PATH_MAX];
	snap_path(moved, f, e1);
	assert_int_equal(rename(p2, moved), 0);
	reopen_rebuild(f, TS0);
	st = producer_state_stats(f->ps);
	assert_int_equal(st->rebuild_snapshots_corrupt, 1);
	assert_int_equal(st->rebuild_snapshot_offset, -1);
	check_answers(f->ps, &sc, e2);

	/* Garbage named like a snapshot, and a leftover temporary file. */
	uint8_t junk[100];
	memset(junk, 0xab, sizeof(junk));
	snap_path(moved, f, 1);
	int fd = open(moved, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	reopen_rebuild(f, TS0);
	st = producer_state_stats(f->ps);
	assert_int_equal(st->rebuild_snapshots_corrupt, 1);
	check_answers(f->ps, &sc, e2);
}

static void test_snapshot_above_log_end(void **state)
{
	struct fixture *f = *state;
	static struct scenario sc;
	char p1[IOT_PATH_MAX], p2[IOT_PATH_MAX];
	int64_t e1, e2;

	two_snapshots(f, &sc, 6, 6, &e1, &e2, p1, p2);

	/* Replication truncates the log between the two snapshots. */
	int64_t cut = -1;
	for (int i = 0; i < sc.n; i++)
		if (sc.h[i].base > e1 + 5) {
			cut = sc.h[i].base;
			break;
		}
	assert_true(cut > e1 && cut < e2);
	assert_int_equal(plog_truncate_to(f->log, cut), SL_OK);
	assert_int_equal(plog_end_offset(f->log), cut);
	assert_int_equal(producer_state_rebuild(f->ps, f->log, f->io.d.part, TS0), SL_OK);
	const struct producer_state_stats *st = producer_state_stats(f->ps);
	assert_int_equal(st->rebuild_snapshots_deleted, 1);
	assert_false(iot_exists(p2));
	assert_int_equal(st->rebuild_snapshot_offset, e1);
	check_answers(f->ps, &sc, cut);
	/* The cut batch is gone: its retry is accepted as new data, in sequence. */
	const struct hist *gone = NULL;
	for (int i = 0; i < sc.n; i++)
		if (sc.h[i].base == cut)
			gone = &sc.h[i];
	assert_non_null(gone);
	struct preq q;
	assert_int_equal(preq_submit(f->log, f->ps, &q, gone->pid, gone->epoch, gone->seq,
				     gone->records, TS0 + 50, NULL), PRODUCER_CHECK_OK);
	iot_drive(&f->io.ring, &q.done);
	assert_int_equal(q.res, SL_OK);

	/* Same after a restart, from a snapshot taken then. */
	log_close(f);
	log_open(f);
	producer_state_destroy(f->ps);
	f->ps = ps_new(0, 0);
	assert_int_equal(producer_state_rebuild(f->ps, f->log, f->io.d.part, TS0), SL_OK);
	expect_dup(f->ps, gone->pid, gone->epoch, gone->seq, gone->records, cut, 0);

	/* Follower truncation to nothing: reset forgets everything and every snapshot. */
	assert_int_equal(producer_state_snapshot_write(f->ps, f->io.d.part,
						       plog_end_offset(f->log)), SL_OK);
	assert_int_equal(plog_truncate_fully(f->log, 5000), SL_OK);
	assert_int_equal(producer_state_reset(f->ps, f->io.d.part), SL_OK);
	assert_int_equal(producer_state_count(f->ps), 0);
	assert_false(iot_exists(p1));
	assert_int_equal(producer_state_rebuild(f->ps, f->log, f->io.d.part, TS0), SL_OK);
	assert_int_equal(producer_state_count(f->ps), 0);
	assert_int_equal(producer_state_stats(f->ps)->rebuild_snapshot_offset, -1);
}

static void test_snapshot_with_pending_and_pruning(void **state)
{
	struct fixture *f = *state;
	struct producer_state *ps = f->ps;
	struct producer_reservation r1, r2;
	char p[IOT_PATH_MAX];
	int64_t next = 0;

	assert_int_equal(mkdir(f->io.d.part, 0755), 0);
	append_ok(ps, &next, 1, 0, 0, 10, TS0);      /* 0..9 completed */
	assert_int_equal(try_batch(ps, 2, 0, 0, 3, 10, TS0, &r1), PRODUCER_CHECK_OK);
	assert_int_equal(try_batch(ps, 1, 0, 10, 2, 13, TS0, &r2), PRODUCER_CHECK_OK);
	/* Visible up to 15, but 10.. still pending here: the snapshot stops at 10. */
	assert_int_equal(producer_state_snapshot_write(ps, f->io.d.part, 15), SL_OK);
	snap_path(p, f, 10);
	assert_true(iot_exists(p));
	snap_path(p, f, 15);
	assert_false(iot_exists(p));
	producer_state_complete(ps, &r1);
	producer_state_complete(ps, &r2);
	assert_int_equal(producer_state_snapshot_write(ps, f->io.d.part, 15), SL_OK);
	assert_true(iot_exists(p));
	append_ok(ps, &(int64_t){ 15 }, 1, 0, 12, 5, TS0);
	assert_int_equal(producer_state_snapshot_write(ps, f->io.d.part, 20), SL_OK);
	/* Two kept: 15 and 20; 10 pruned. */
	snap_path(p, f, 10);
	assert_false(iot_exists(p));
	snap_path(p, f, 15);
	assert_true(iot_exists(p));
	snap_path(p, f, 20);
	assert_true(iot_exists(p));
	assert_int_equal(producer_state_reset(ps, f->io.d.part), SL_OK);
	assert_false(iot_exists(p));
	assert_int_equal(producer_state_count(ps), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_idempotent),
		cmocka_unit_test(test_duplicates_window),
		cmocka_unit_test(test_sequence_gaps),
		cmocka_unit_test(test_unknown_producer_any_sequence),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_epoch_fencing_and_bump),
		cmocka_unit_test(test_pipeline_retry_of_third),
		cmocka_unit_test(test_abort_newest_restores),
		cmocka_unit_test(test_abort_after_failed_write),
		cmocka_unit_test(test_eviction_at_bound),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_config_bounds),
		cmocka_unit_test(test_table_against_model),
		cmocka_unit_test_setup_teardown(test_log_flow_and_failed_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_full_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_at_close_and_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_corrupt_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_above_log_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_with_pending_and_pruning, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
