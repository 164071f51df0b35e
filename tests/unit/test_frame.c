/*
 * test_frame.c — framing decisions (net/frame.h): the size verdict taken
 * before any allocation, and the decode-arena growth policy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

static void test_size_verdicts(void **state)
{
	const int32_t max = 100 * 1024 * 1024;

	(void)state;
	assert_int_equal(frame_size_check(-1, max), FRAME_NEGATIVE);
	assert_int_equal(frame_size_check(INT32_MIN, max), FRAME_NEGATIVE);
	for (int32_t s = 0; s < FRAME_BYTES_MIN; s++)
		assert_int_equal(frame_size_check(s, max), FRAME_TOO_SMALL);
	assert_int_equal(frame_size_check(FRAME_BYTES_MIN, max), FRAME_OK);
	assert_int_equal(frame_size_check(max, max), FRAME_OK);
	assert_int_equal(frame_size_check(max + 1, max), FRAME_TOO_LARGE);
	/* a 2 GiB prefix is refused without allocating anything */
	assert_int_equal(frame_size_check(INT32_MAX, max), FRAME_TOO_LARGE);
	/* the smallest legal limit */
	assert_int_equal(frame_size_check(FRAME_BYTES_MIN, 1), FRAME_TOO_LARGE);
}

static void test_verdict_strings(void **state)
{
	(void)state;
	assert_string_equal(frame_verdict_str(FRAME_OK), "ok");
	assert_non_null(strstr(frame_verdict_str(FRAME_NEGATIVE), "negative"));
	assert_non_null(strstr(frame_verdict_str(FRAME_TOO_LARGE), "socket.request.max.bytes"));
	assert_non_null(strstr(frame_verdict_str(FRAME_TOO_SMALL), "small"));
}

static void test_arena_growth(void **state)
{
	(void)state;
	/* small request: the first attempt is the floor, then x8 per attempt */
	assert_int_equal(frame_arena_bytes(100, 0), FRAME_ARENA_BYTES_FIRST + 25);
	assert_int_equal(frame_arena_bytes(100, 1), (FRAME_ARENA_BYTES_FIRST + 25) * 8);
	assert_int_equal(frame_arena_bytes(100, 2), (FRAME_ARENA_BYTES_FIRST + 25) * 64);
	/* attempts are bounded */
	assert_int_equal(frame_arena_bytes(100, FRAME_ARENA_ATTEMPTS_MAX), 0);
	/* large request: capped, and no attempt after the capped one */
	size_t big = frame_arena_bytes(100u << 20, 0);
	assert_int_equal(big, FRAME_ARENA_BYTES_FIRST + (25u << 20));
	assert_int_equal(frame_arena_bytes(100u << 20, 1), FRAME_ARENA_BYTES_MAX);
	assert_int_equal(frame_arena_bytes(100u << 20, 2), 0);
	/* monotonic for every size until it stops */
	for (uint32_t len = 8; len < (200u << 20); len = len * 3 + 1) {
		size_t prev = 0;
		for (uint32_t a = 0; a < FRAME_ARENA_ATTEMPTS_MAX; a++) {
			size_t b = frame_arena_bytes(len, a);
			if (b == 0)
				break;
			assert_true(b > prev && b <= FRAME_ARENA_BYTES_MAX);
			prev = b;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_verdicts),
		cmocka_unit_test(test_verdict_strings),
		cmocka_unit_test(test_arena_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
