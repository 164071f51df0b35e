/*
 * test_pcompact.c — net/pcompact.c: cleanup.policy / delete.retention.ms /
 * min.cleanable.dirty.ratio resolved from topic overrides over the broker
 * config, the periodic check compacting a log only when compaction is on
 * and the dirty ratio reaches the minimum (inline without a shard), and the
 * background job on a local shard (slices between appends, stop mid-way).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <string.h>

#include "catalog.h"
#include "compact.h"
#include "config.h"
#include "io_testutil.h"
#include "pcompact.h"
#include "shard.h"

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

/* One batch of 3 records with keys 0..2, driven on `ring`. */
static void put3_on(struct ring *ring, struct plog *log, int round)
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
	iot_drive(ring, &t.done);
	assert_int_equal(t.res, SL_OK);
	iot_app_free(&t);
}

static void put3(struct iot_log_fixture *f, struct plog *log, int round)
{
	put3_on(&f->ring, log, round);
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
	assert_int_equal(pcompact_check(log, &pc, "t-0", NULL, 200), 0);
	assert_int_equal(plog_size_bytes(log), size0);
	/* On, ratio 1.0 >= 0.5: compacts, then the log is clean. */
	pc.compact = true;
	assert_int_equal(pcompact_check(log, &pc, "t-0", NULL, 200), 1);
	assert_true(plog_size_bytes(log) < size0);
	assert_int_equal(plog_compact_dirty(log, &d), SL_OK);
	assert_true(d.ratio == 0.0);
	assert_int_equal(pcompact_check(log, &pc, "t-0", NULL, 200), 0);
	/* A little new dirty data under a high minimum ratio: not yet. */
	put3(f, log, 9);
	put3(f, log, 10);
	assert_int_equal(plog_compact_dirty(log, &d), SL_OK);
	assert_true(d.dirty_bytes > 0 && d.ratio < 1.0);
	pc.min_dirty_ratio = 1.0;
	assert_int_equal(pcompact_check(log, &pc, "t-0", NULL, 200), 0);
	pc.min_dirty_ratio = 0.0;
	assert_int_equal(pcompact_check(log, &pc, "t-0", NULL, 200), 1);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

/*
 * The background job on a (local) shard: the check starts it and returns at
 * once, the shard's loop runs it in slices (step timer, fsync completions)
 * while appends on the same shard go on between slices; a check while it
 * runs does nothing; at the end the sealed part is compacted. A second job
 * is stopped half-way (pcompact_stop, as partition close does) and leaves
 * no temporary file.
 */
static void test_pcompact_background(void **state)
{
	struct iot_log_fixture *f = *state;
	struct shard_group_options opt = { 0 };
	struct shard_group *g;
	struct pcompact pc = { .compact = true, .delete_retention_ms = 1000,
			       .min_dirty_ratio = 0.1 };
	struct compact_dirty d;
	struct plog *log;

	opt.shard_count = 1;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_OK);
	struct shard *sh = shard_group_shard(g, 0);
	f->cfg.segment_bytes = 300;
	assert_int_equal(plog_open(&log, &sh->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int r = 0; r < 60; r++)
		put3_on(&sh->ring, log, r);
	int64_t size0 = plog_size_bytes(log), end0 = plog_end_offset(log);
	assert_int_equal(pcompact_check(log, &pc, "t-0", sh, 200), 1);
	assert_non_null(pc.job);
	assert_int_equal(plog_size_bytes(log), size0);     /* nothing done inline */
	assert_int_equal(pcompact_check(log, &pc, "t-0", sh, 200), 0);
	int turns = 0;
	for (; pc.job != NULL; turns++) {
		assert_true(turns < 100000);
		assert_int_equal(shard_run_once(sh, 1000000000LL), SL_OK);
		if (turns < 20)
			put3_on(&sh->ring, log, 100 + turns);
	}
	assert_true(pc.jobs_finished >= 1 && pc.steps > 1);
	assert_true(plog_size_bytes(log) < size0);
	assert_true(plog_end_offset(log) > end0);
	assert_int_equal(plog_compact_dirty(log, &d), SL_OK);
	assert_true(d.clean_offset > 0);
	iot_verify_log(log);

	/* Stop a job in the middle (one step run, maybe an fsync in flight). */
	for (int r = 0; r < 60; r++)
		put3_on(&sh->ring, log, 200 + r);
	assert_int_equal(pcompact_check(log, &pc, "t-0", sh, 300), 1);
	assert_int_equal(shard_run_once(sh, 0), SL_OK);
	pcompact_stop(&pc);
	assert_null(pc.job);
	assert_int_equal(plog_close(log), SL_OK);
	for (int n = 0; n < 100 && sh->ring.inflight > 0; n++)
		assert_int_equal(shard_run_once(sh, 1000000LL), SL_OK);
	DIR *dir = opendir(f->d.part);
	struct dirent *de;
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		assert_null(strstr(de->d_name, ".cleaned"));
		assert_null(strstr(de->d_name, ".swap"));
		assert_null(strstr(de->d_name, ".tmp"));
	}
	closedir(dir);
	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	shard_group_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcompact_settings),
		IOT_LOG_TEST(test_pcompact_check),
		IOT_LOG_TEST(test_pcompact_background),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
