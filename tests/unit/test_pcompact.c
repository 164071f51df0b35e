/*
 * test_pcompact.c — net/pcompact.c: cleanup.policy / delete.retention.ms /
 * min.cleanable.dirty.ratio resolved from topic overrides over the broker
 * config, and the periodic check compacting a log only when compaction is
 * on and the dirty ratio reaches the minimum.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "catalog.h"
#include "compact.h"
#include "config.h"
#include "io_testutil.h"
#include "pcompact.h"

static void test_pcompact_settings(void **state)
{
	struct pcompact pc;
	struct config c;

	(void)state;
	pcompact_settings(NULL, NULL, 0, &pc);
	assert_false(pc.compact);
	assert_true(pc.delete_policy);
	assert_int_equal(pc.delete_retention_ms, 86400000);
	assert_true(pc.min_dirty_ratio == 0.5);

	struct catalog_config_entry ov[] = {
		{ "cleanup.policy", "delete,compact" },
		{ "delete.retention.ms", "1000" },
		{ "min.cleanable.dirty.ratio", "0.25" },
	};
	pcompact_settings(NULL, ov, 3, &pc);
	assert_true(pc.compact && pc.delete_policy);
	assert_int_equal(pc.delete_retention_ms, 1000);
	assert_true(pc.min_dirty_ratio == 0.25);

	struct catalog_config_entry bad[] = {
		{ "cleanup.policy", "compact" },
		{ "delete.retention.ms", "x" },
		{ "min.cleanable.dirty.ratio", "2" },
	};
	memset(&c, 0, sizeof(c));
	c.log_cleanup_policy = CONFIG_CLEANUP_DELETE;
	c.log_cleaner_enable = true;
	c.log_cleaner_delete_retention_ms = 5;
	c.log_cleaner_min_cleanable_ratio = 0.75;
	pcompact_settings(&c, bad, 3, &pc);
	assert_true(pc.compact && !pc.delete_policy);
	assert_int_equal(pc.delete_retention_ms, 5);
	assert_true(pc.min_dirty_ratio == 0.75);
	/* log.cleaner.enable=false turns compaction off. */
	c.log_cleaner_enable = false;
	pcompact_settings(&c, bad, 3, &pc);
	assert_false(pc.compact);
	/* The broker default policy alone. */
	c.log_cleaner_enable = true;
	c.log_cleanup_policy = CONFIG_CLEANUP_COMPACT;
	pcompact_settings(&c, NULL, 0, &pc);
	assert_true(pc.compact && !pc.delete_policy);
}

/* One batch of 3 records with keys 0..2. */
static void put3(struct iot_log_fixture *f, struct plog *log, int round)
{
	uint8_t buf[1024];
	struct batch_builder b;
	struct iot_app t;
	char key[8], val[16];

	batch_builder_init(&b, buf, sizeof(buf));
	for (int i = 0; i < 3; i++) {
		int kl = snprintf(key, sizeof(key), "k%d", i);
		int vl = snprintf(val, sizeof(val), "v%d-%d", round, i);
		assert_int_equal(batch_builder_add(&b, 100, key, kl, val, vl, NULL, 0), SL_OK);
	}
	size_t len = batch_builder_finish(&b);
	assert_int_equal(iot_app_submit(log, &t, buf, len, 100, NULL), SL_OK);
	iot_drive(&f->ring, &t.done);
	assert_int_equal(t.res, SL_OK);
	iot_app_free(&t);
}

static void test_pcompact_check(void **state)
{
	struct iot_log_fixture *f = *state;
	struct pcompact pc = { .compact = false, .delete_policy = false,
			       .delete_retention_ms = 1000, .min_dirty_ratio = 0.5 };
	struct compact_dirty d;
	struct plog *log;

	f->cfg.segment_bytes = 300;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int r = 0; r < 8; r++)
		put3(f, log, r);
	int64_t size0 = plog_size_bytes(log);
	/* Compaction off: nothing happens. */
	assert_int_equal(pcompact_check(log, &pc, "t-0", 0, 200), 0);
	assert_int_equal(plog_size_bytes(log), size0);
	/* On, ratio 1.0 >= 0.5: compacts, then the log is clean. */
	pc.compact = true;
	assert_int_equal(pcompact_check(log, &pc, "t-0", 0, 200), 1);
	assert_true(plog_size_bytes(log) < size0);
	assert_int_equal(plog_compact_dirty(log, &d), SL_OK);
	assert_true(d.ratio == 0.0);
	assert_int_equal(pcompact_check(log, &pc, "t-0", 0, 200), 0);
	/* A little new dirty data under a high minimum ratio: not yet. */
	put3(f, log, 9);
	put3(f, log, 10);
	assert_int_equal(plog_compact_dirty(log, &d), SL_OK);
	assert_true(d.dirty_bytes > 0 && d.ratio < 1.0);
	pc.min_dirty_ratio = 1.0;
	assert_int_equal(pcompact_check(log, &pc, "t-0", 0, 200), 0);
	pc.min_dirty_ratio = 0.0;
	assert_int_equal(pcompact_check(log, &pc, "t-0", 0, 200), 1);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcompact_settings),
		IOT_LOG_TEST(test_pcompact_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
