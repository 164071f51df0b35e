/*
 * test_hist.c — core/hist: bucket layout (every value maps into a bucket
 * whose [low, high] holds it, within 1/1024), percentiles of known
 * distributions (uniform, constant, bimodal), merging, bounds (0, the
 * largest trackable value, values beyond it), and reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hist.h"

/* |got - want| <= want / 1024 (+1 for the exact range). */
static void assert_close(uint64_t got, uint64_t want)
{
	uint64_t tol = want / 1024 + 1;
	uint64_t diff = got > want ? got - want : want - got;

	if (diff > tol)
		fail_msg("got %llu, want %llu (+-%llu)", (unsigned long long)got,
			 (unsigned long long)want, (unsigned long long)tol);
}

static void test_layout(void **state)
{
	uint64_t v;
	uint32_t prev = 0, idx;

	(void)state;
	/* exact below 2048 */
	for (v = 0; v < 2048; v++) {
		assert_int_equal(hist_index(v), v);
		assert_int_equal(hist_bucket_low((uint32_t)v), v);
		assert_int_equal(hist_bucket_high((uint32_t)v), v);
	}
	/* monotonic, contiguous and precise above, sampled geometrically */
	for (v = 2048; v <= HIST_VALUE_MAX; v += v / 997 + 1) {
		idx = hist_index(v);
		assert_true(idx >= prev);
		assert_true(hist_bucket_low(idx) <= v && v <= hist_bucket_high(idx));
		assert_true(hist_bucket_high(idx) - hist_bucket_low(idx) <= v / 1024);
		prev = idx;
	}
	/* neighbouring buckets tile with no gap */
	for (idx = 1; idx < HIST_COUNTS; idx++)
		assert_int_equal(hist_bucket_low(idx), hist_bucket_high(idx - 1) + 1);
	assert_int_equal(hist_index(HIST_VALUE_MAX), HIST_COUNTS - 1);
	assert_int_equal(hist_bucket_high(HIST_COUNTS - 1), HIST_VALUE_MAX);
	/* 60 s in µs is well inside the range */
	assert_true(HIST_VALUE_MAX > UINT64_C(60000000));
}

static void test_empty(void **state)
{
	struct hist *h = hist_new();

	(void)state;
	assert_non_null(h);
	assert_int_equal(hist_count(h), 0);
	assert_int_equal(hist_percentile(h, 50.0), 0);
	assert_int_equal(hist_max(h), 0);
	assert_int_equal(hist_min(h), 0);
	hist_free(h);
}

static void test_uniform(void **state)
{
	struct hist *h = hist_new();
	uint64_t v;

	(void)state;
	assert_non_null(h);
	/* 1..1,000,000 µs once each: p = v */
	for (v = 1; v <= 1000000; v++)
		hist_record(h, v);
	assert_int_equal(hist_count(h), 1000000);
	assert_close(hist_percentile(h, 50.0), 500000);
	assert_close(hist_percentile(h, 90.0), 900000);
	assert_close(hist_percentile(h, 99.0), 990000);
	assert_close(hist_percentile(h, 99.9), 999000);
	assert_close(hist_percentile(h, 99.99), 999900);
	assert_int_equal(hist_percentile(h, 100.0), 1000000);
	assert_int_equal(hist_max(h), 1000000);
	assert_int_equal(hist_min(h), 1);
	assert_close((uint64_t)hist_mean(h), 500000);
	/* small exact values: 1..1000 once each */
	hist_reset(h);
	for (v = 1; v <= 1000; v++)
		hist_record(h, v);
	assert_int_equal(hist_percentile(h, 50.0), 500);
	assert_int_equal(hist_percentile(h, 99.0), 990);
	assert_int_equal(hist_percentile(h, 0.001), 1);
	hist_free(h);
}

static void test_constant_and_bimodal(void **state)
{
	struct hist *h = hist_new();

	(void)state;
	assert_non_null(h);
	hist_record_n(h, 12345, 1000);
	assert_close(hist_percentile(h, 1.0), 12345);
	assert_close(hist_percentile(h, 99.99), 12345);
	assert_int_equal(hist_percentile(h, 100.0), 12345);
	/* 99% at 100 µs, 1% at 50 ms: p99 is 100, p99.9 is 50 ms */
	hist_reset(h);
	hist_record_n(h, 100, 9900);
	hist_record_n(h, 50000, 100);
	assert_int_equal(hist_percentile(h, 50.0), 100);
	assert_int_equal(hist_percentile(h, 99.0), 100);
	assert_close(hist_percentile(h, 99.9), 50000);
	assert_int_equal(hist_max(h), 50000);
	hist_free(h);
}

static void test_merge(void **state)
{
	struct hist *a = hist_new(), *b = hist_new(), *all = hist_new();
	uint64_t v;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(all);
	for (v = 1; v <= 200000; v++) {
		hist_record(v % 2 ? a : b, v * 7);
		hist_record(all, v * 7);
	}
	hist_merge(a, b);
	assert_int_equal(hist_count(a), 200000);
	assert_int_equal(hist_count(b), 100000);  /* source unchanged */
	assert_int_equal(hist_max(a), hist_max(all));
	assert_int_equal(hist_min(a), 7);
	assert_int_equal(hist_percentile(a, 50.0), hist_percentile(all, 50.0));
	assert_int_equal(hist_percentile(a, 99.9), hist_percentile(all, 99.9));
	/* merging an empty one changes nothing */
	hist_reset(b);
	hist_merge(a, b);
	assert_int_equal(hist_count(a), 200000);
	assert_int_equal(hist_min(a), 7);
	hist_free(a);
	hist_free(b);
	hist_free(all);
}

static void test_bounds(void **state)
{
	struct hist *h = hist_new();
	uint64_t sixty_s = UINT64_C(60000000);

	(void)state;
	assert_non_null(h);
	hist_record(h, 0);
	hist_record(h, sixty_s);
	hist_record(h, HIST_VALUE_MAX);
	assert_int_equal(h->clamped_count, 0);
	hist_record(h, UINT64_MAX);
	assert_int_equal(h->clamped_count, 1);
	assert_int_equal(hist_count(h), 4);
	assert_int_equal(hist_min(h), 0);
	assert_int_equal(hist_max(h), UINT64_MAX);
	assert_int_equal(hist_percentile(h, 25.0), 0);
	assert_close(hist_percentile(h, 50.0), sixty_s);
	assert_int_equal(hist_percentile(h, 75.0), HIST_VALUE_MAX);
	assert_int_equal(hist_percentile(h, 100.0), HIST_VALUE_MAX);
	hist_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_constant_and_bimodal),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
