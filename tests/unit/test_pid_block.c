/*
 * test_pid_block.c — coordination/pid_block.c's codec for Kafka's
 * /latest_producer_id_block znode: the exact JSON Kafka's
 * ProducerIdBlockZNode writes, decoding what Kafka writes (strings for the
 * offsets, unknown fields ignored), rejecting malformed values, and the
 * next-block rule (contiguous, never overlapping, exhaustion refused).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pid_block.h"

static void test_encode_exact(void **state)
{
	(void)state;
	struct pid_block pb = { .broker = 3, .start = 2000, .end = 2999 };
	char buf[PID_BLOCK_JSON_MAX];
	size_t len = 0;

	assert_int_equal(pid_block_encode(&pb, buf, sizeof(buf), &len), SL_OK);
	const char *want = "{\"version\":1,\"broker\":3,\"block_start\":\"2000\",\"block_end\":\"2999\"}";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	assert_int_equal(pid_block_encode(&pb, buf, len - 1, &len), SL_ERANGE);
}

static void test_roundtrip_and_kafka(void **state)
{
	(void)state;
	struct pid_block pb = { .broker = 7, .start = 9223372036854774807LL,
				.end = 9223372036854775806LL };
	struct pid_block out;
	const char *reason = NULL;
	char buf[PID_BLOCK_JSON_MAX];
	size_t len = 0;

	assert_int_equal(pid_block_encode(&pb, buf, sizeof(buf), &len), SL_OK);
	assert_int_equal(pid_block_decode(buf, len, &out, &reason), SL_OK);
	assert_int_equal(out.broker, 7);
	assert_true(out.start == pb.start && out.end == pb.end);
	/* As Kafka writes it (other key order, unknown fields ignored). */
	const char *k = "{\"block_end\":\"999\",\"broker\":1,\"extra\":[1],\"version\":1,"
			"\"block_start\":\"0\"}";
	assert_int_equal(pid_block_decode(k, strlen(k), &out, &reason), SL_OK);
	assert_int_equal(out.broker, 1);
	assert_int_equal(out.start, 0);
	assert_int_equal(out.end, 999);
	/* An empty node (created by PATHS): no block yet. */
	assert_int_equal(pid_block_decode(NULL, 0, &out, &reason), SL_ENOTFOUND);
	assert_int_equal(pid_block_decode("", 0, &out, &reason), SL_ENOTFOUND);
}

static void test_decode_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"{",
		"[1]",
		"{\"broker\":1,\"block_start\":0,\"block_end\":\"999\"}",        /* number */
		"{\"broker\":1,\"block_start\":\"-1\",\"block_end\":\"999\"}",   /* negative */
		"{\"broker\":1,\"block_start\":\"10\",\"block_end\":\"9\"}",     /* end < start */
		"{\"broker\":1,\"block_start\":\"1x\",\"block_end\":\"9\"}",
		"{\"broker\":1,\"block_start\":\"\",\"block_end\":\"9\"}",
		"{\"broker\":1,\"block_start\":\"0\",\"block_end\":\"9223372036854775808\"}",
		"{\"broker\":\"1\",\"block_start\":\"0\",\"block_end\":\"9\"}",
		"{\"broker\":4294967296,\"block_start\":\"0\",\"block_end\":\"9\"}",
		"{\"block_start\":\"0\",\"block_end\":\"9\"}",
		"{\"broker\":1,\"block_start\":\"0\",\"block_end\":\"9\",\"broker\":2}",
		"{\"broker\":1,\"block_start\":\"0\",\"block_end\":\"9\"} x",
	};
	struct pid_block out;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *reason = NULL;
		assert_int_equal(pid_block_decode(bad[i], strlen(bad[i]), &out, &reason),
				 SL_ECORRUPT);
		assert_non_null(reason);
	}
}

static void test_next(void **state)
{
	(void)state;
	struct pid_block a, b;

	assert_int_equal(pid_block_next(NULL, 2, &a), SL_OK);
	assert_int_equal(a.broker, 2);
	assert_int_equal(a.start, 0);
	assert_int_equal(a.end, PID_BLOCK_SIZE - 1);
	assert_int_equal(pid_block_next(&a, 5, &b), SL_OK);
	assert_int_equal(b.broker, 5);
	assert_int_equal(b.start, PID_BLOCK_SIZE);
	assert_int_equal(b.end, 2 * PID_BLOCK_SIZE - 1);
	/* Near the end of the id space: refused, never wrapped. */
	a.end = INT64_MAX - 10;
	assert_int_equal(pid_block_next(&a, 1, &b), SL_ERANGE);
	a.end = INT64_MAX - 1 - PID_BLOCK_SIZE;
	assert_int_equal(pid_block_next(&a, 1, &b), SL_OK);
	assert_true(b.end == INT64_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_exact),
		cmocka_unit_test(test_roundtrip_and_kafka),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_next),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
