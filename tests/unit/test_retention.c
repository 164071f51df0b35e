/*
 * test_retention.c — removing data (io/plog_trim.c) and the checkpoint file
 * (io/checkpoint.c): retention by time and by bytes (start offset moves,
 * files go, the active segment stays, the max_offset bound holds),
 * DeleteRecords (plog_delete_before), truncation for replication
 * (plog_truncate_to at and inside batches, across segments, busy ->
 * SL_EAGAIN; plog_truncate_fully), read slices keeping a deleted segment's
 * fd alive, and checkpoints written atomically and reloaded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "checkpoint.h"
#include "io_testutil.h"
#include "log.h"

/*
 * Segments of 2 batches each (segment_bytes 1000, ~400-byte batches):
 * batch i has 2 records and timestamps ts[i], ts[i] + 1.
 */
static struct plog *build(struct iot_log_fixture *f, int n, const int64_t *ts, int64_t *bases)
{
	struct plog *log;

	f->cfg.segment_bytes = 1000;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < n; i++) {
		int64_t b = iot_append_sync(log, &f->ring, 2, ts[i], 150, 0);
		if (bases != NULL)
			bases[i] = b;
	}
	return log;
}

static int64_t read_ckpt(struct iot_log_fixture *f, const char *key)
{
	int dfd = open(f->d.part, O_RDONLY | O_DIRECTORY);
	struct checkpoint_entry e = { .key = key };
	assert_int_equal(checkpoint_read(dfd, PLOG_CHECKPOINT_NAME, &e, 1), SL_OK);
	close(dfd);
	assert_true(e.found);
	return e.value;
}

static void test_retention_by_time(void **state)
{
	struct iot_log_fixture *f = *state;
	int64_t ts[8] = { 100, 200, 300, 400, 500, 600, 700, 800 };
	char p[IOT_PATH_MAX];
	uint32_t deleted;

	f->cfg.retention_ms = 1000;
	struct plog *log = build(f, 8, ts, NULL);
	assert_int_equal(plog_segment_count(log), 4);  /* [0,4) [4,8) [8,12) [12,16) */
	/* Segment maxima: 201, 401, 601, 801. */
	assert_int_equal(plog_retention_enforce(log, 1201, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 0);                  /* 1201 - 201 = 1000: not older */
	assert_int_equal(plog_retention_enforce(log, 1402, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 2);
	assert_int_equal(plog_start_offset(log), 8);
	assert_int_equal(read_ckpt(f, "log_start_offset"), 8);
	iot_path(p, f->d.part, 0, ".log");
	assert_false(iot_exists(p));
	iot_path(p, f->d.part, 4, ".timeindex");
	assert_false(iot_exists(p));
	iot_path(p, f->d.part, 8, ".log");
	assert_true(iot_exists(p));
	struct plog_slice s;
	assert_int_equal(plog_read(log, 7, 100, INT64_MAX, &s), SL_ERANGE);
	/* Everything expired: the active segment still stays. */
	assert_int_equal(plog_retention_enforce(log, 100000, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(plog_segment_count(log), 1);
	assert_int_equal(plog_start_offset(log), 12);
	assert_int_equal(plog_end_offset(log), 16);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
	/* The start offset survives a reopen. */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_start_offset(log), 12);
	assert_int_equal(plog_end_offset(log), 16);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_retention_by_bytes_and_bound(void **state)
{
	struct iot_log_fixture *f = *state;
	int64_t ts[10] = { 0 };
	int64_t bases[10];
	uint32_t deleted;

	f->cfg.retention_bytes = 0;  /* set below, once sizes are known */
	f->cfg.retention_ms = -1;
	struct plog *log = build(f, 10, ts, bases);
	assert_int_equal(plog_segment_count(log), 5);
	int64_t total = plog_size_bytes(log);
	int64_t seg = total / 5;
	assert_int_equal(plog_close(log), SL_OK);

	/* Keep ~2.5 segments: the first 2 go (the third would leave too little). */
	f->cfg.retention_bytes = total - 2 * seg - seg / 2;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	/* Bounded by the high watermark: only segments wholly below it. */
	assert_int_equal(plog_retention_enforce(log, 0, bases[3], &deleted), SL_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(plog_start_offset(log), bases[2]);
	assert_int_equal(plog_retention_enforce(log, 0, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(plog_start_offset(log), bases[4]);
	assert_int_equal(plog_size_bytes(log), total - 2 * seg);
	assert_int_equal(plog_retention_enforce(log, 0, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(plog_close(log), SL_OK);

	/* Exactly at the limit after deleting: Kafka deletes (diff - size >= 0). */
	f->cfg.retention_bytes = total - 3 * seg;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_retention_enforce(log, 0, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(plog_size_bytes(log), total - 3 * seg);
	assert_int_equal(plog_close(log), SL_OK);

	/* Unlimited: nothing; tiny limit: all but the active segment. */
	f->cfg.retention_bytes = -1;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_retention_enforce(log, 0, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 0);
	assert_int_equal(plog_close(log), SL_OK);
	f->cfg.retention_bytes = 1;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_retention_enforce(log, 0, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(plog_segment_count(log), 1);
	assert_int_equal(plog_start_offset(log), bases[8]);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_slice_outlives_deletion(void **state)
{
	struct iot_log_fixture *f = *state;
	int64_t ts[6] = { 1, 2, 3, 4, 5, 6 };
	static uint8_t a[4096], b[4096];
	uint32_t deleted;

	f->cfg.retention_ms = 10;
	struct plog *log = build(f, 6, ts, NULL);
	struct plog_slice s;
	assert_int_equal(plog_read(log, 0, 1 << 20, INT64_MAX, &s), SL_OK);
	assert_int_equal(pread(s.fd, a, s.len, s.file_pos), (ssize_t)s.len);
	assert_int_equal(plog_retention_enforce(log, 100000, INT64_MAX, &deleted), SL_OK);
	assert_int_equal(deleted, 2);
	/* The file is unlinked, the fd still reads the same bytes. */
	char p[IOT_PATH_MAX];
	iot_path(p, f->d.part, 0, ".log");
	assert_false(iot_exists(p));
	assert_int_equal(pread(s.fd, b, s.len, s.file_pos), (ssize_t)s.len);
	assert_memory_equal(a, b, s.len);
	/* Even past plog_close. */
	assert_int_equal(plog_close(log), SL_OK);
	assert_int_equal(pread(s.fd, b, s.len, s.file_pos), (ssize_t)s.len);
	assert_memory_equal(a, b, s.len);
	plog_slice_release(&s);
}

static void test_delete_before(void **state)
{
	struct iot_log_fixture *f = *state;
	int64_t ts[8] = { 0 };
	int64_t bases[8];

	struct plog *log = build(f, 8, ts, bases);
	assert_int_equal(plog_delete_before(log, 17), SL_ERANGE);
	assert_int_equal(plog_delete_before(log, 1), SL_OK);        /* inside batch 0 */
	assert_int_equal(plog_start_offset(log), 1);
	assert_int_equal(plog_segment_count(log), 4);
	struct plog_slice s;
	assert_int_equal(plog_read(log, 0, 100, INT64_MAX, &s), SL_ERANGE);
	assert_int_equal(plog_read(log, 1, 100, INT64_MAX, &s), SL_OK);
	assert_int_equal(s.first_offset, 0);  /* the batch holding offset 1 */
	plog_slice_release(&s);
	assert_int_equal(plog_delete_before(log, 0), SL_OK);        /* never backwards */
	assert_int_equal(plog_start_offset(log), 1);
	assert_int_equal(plog_delete_before(log, 3), SL_OK);        /* segment 0 still holds 3 */
	assert_int_equal(plog_segment_count(log), 4);
	assert_int_equal(plog_read(log, 3, 100, INT64_MAX, &s), SL_OK);
	assert_int_equal(s.last_offset, 3);
	plog_slice_release(&s);
	assert_int_equal(plog_delete_before(log, 4), SL_OK);        /* now it goes */
	assert_int_equal(plog_segment_count(log), 3);
	assert_int_equal(plog_delete_before(log, 9), SL_OK);
	assert_int_equal(plog_start_offset(log), 9);
	assert_int_equal(plog_segment_count(log), 2);               /* [8,12) [12,16) */
	assert_int_equal(plog_stats(log)->segments_deleted, 2);
	assert_int_equal(read_ckpt(f, "log_start_offset"), 9);
	assert_int_equal(plog_delete_before(log, 16), SL_OK);       /* = end: active kept */
	assert_int_equal(plog_start_offset(log), 16);
	assert_int_equal(plog_segment_count(log), 1);
	assert_int_equal(plog_read(log, 16, 100, INT64_MAX, &s), SL_OK);
	assert_int_equal(s.len, 0);
	assert_int_equal(plog_close(log), SL_OK);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_start_offset(log), 16);
	assert_int_equal(plog_end_offset(log), 16);
	assert_int_equal(iot_append_sync(log, &f->ring, 1, 0, 10, 0), 16);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_truncate_to(void **state)
{
	struct iot_log_fixture *f = *state;
	int64_t ts[8] = { 10, 20, 30, 40, 50, 60, 70, 80 };
	int64_t bases[8];
	char p[IOT_PATH_MAX];
	int64_t t, o;

	f->cfg.index_interval_bytes = 0;
	struct plog *log = build(f, 8, ts, bases);
	assert_int_equal(plog_truncate_to(log, 99), SL_OK);          /* past the end: no-op */
	assert_int_equal(plog_end_offset(log), 16);
	/* Inside batch 6 ([12,14)): cut at its start, which is the last
	 * segment's base: that segment stays, empty (as Kafka keeps it). */
	assert_int_equal(plog_truncate_to(log, 13), SL_OK);
	assert_int_equal(plog_end_offset(log), 12);
	assert_int_equal(plog_segment_count(log), 4);
	iot_path(p, f->d.part, 12, ".log");
	assert_int_equal(iot_file_size(p), 0);
	/* Across segments, at a batch boundary in a sealed one. */
	assert_int_equal(plog_truncate_to(log, 6), SL_OK);
	assert_int_equal(plog_end_offset(log), 6);
	assert_int_equal(plog_segment_count(log), 2);
	assert_true(plog_flushed_offset(log) <= 6);
	assert_int_equal(plog_max_timestamp(log, &t, &o), SL_OK);
	assert_int_equal(t, 31);                      /* batch 2's max */
	assert_int_equal(o, 5);
	assert_int_equal(plog_offset_for_timestamp(log, 35, &o, &t), SL_ENOTFOUND);
	assert_int_equal(plog_offset_for_timestamp(log, 25, &o, &t), SL_OK);
	assert_int_equal(o, 4);
	iot_path(p, f->d.part, 8, ".log");
	assert_false(iot_exists(p));
	iot_verify_log(log);
	/* Appends continue in the (re-activated) segment. */
	assert_int_equal(iot_append_sync(log, &f->ring, 2, 90, 150, 0), 6);
	assert_int_equal(plog_segment_count(log), 2);  /* room again in segment [4,..) */
	iot_verify_log(log);
	assert_int_equal(read_ckpt(f, "recovery_point") <= 6, 1);

	/* Busy: appends in flight. */
	struct iot_app app;
	static uint8_t buf[4096];
	size_t len = iot_batch(buf, sizeof(buf), 1, 100, 10, 1);
	assert_int_equal(iot_app_submit(log, &app, buf, len, 0, NULL), SL_OK);
	assert_int_equal(plog_truncate_to(log, 2), SL_EAGAIN);
	iot_drive(&f->ring, &app.done);
	iot_app_free(&app);
	assert_int_equal(plog_delete_before(log, 2), SL_OK);
	assert_int_equal(plog_truncate_to(log, 1), SL_ERANGE);      /* below the start */
	assert_int_equal(plog_truncate_to(log, 3), SL_OK);          /* inside batch 1 ([2,4)) */
	assert_int_equal(plog_end_offset(log), 2);
	assert_int_equal(plog_start_offset(log), 2);
	assert_int_equal(plog_segment_count(log), 1);
	assert_int_equal(plog_close(log), SL_OK);

	/* Reopen clean and unclean: same end, appends at the right offset. */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(log), 2);
	assert_int_equal(plog_stats(log)->recovery_batches_validated, 0);
	assert_int_equal(plog_close(log), SL_OK);
	iot_set_checkpoint(f->d.part, 2, 0, 0);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(log), 2);
	assert_int_equal(iot_append_sync(log, &f->ring, 1, 0, 10, 0), 2);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_truncate_fully(void **state)
{
	struct iot_log_fixture *f = *state;
	int64_t ts[6] = { 0 };
	char p[IOT_PATH_MAX];

	struct plog *log = build(f, 6, ts, NULL);
	assert_int_equal(plog_truncate_fully(log, 4), SL_OK);  /* reuses base 4's name */
	assert_int_equal(plog_start_offset(log), 4);
	assert_int_equal(plog_end_offset(log), 4);
	assert_int_equal(plog_segment_count(log), 1);
	iot_path(p, f->d.part, 0, ".log");
	assert_false(iot_exists(p));
	iot_path(p, f->d.part, 4, ".log");
	assert_int_equal(iot_file_size(p), 0);
	assert_int_equal(iot_append_sync(log, &f->ring, 1, 0, 10, 0), 4);
	assert_int_equal(plog_close(log), SL_OK);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_start_offset(log), 4);
	assert_int_equal(plog_end_offset(log), 5);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_checkpoint_file(void **state)
{
	struct iot_log_fixture *f = *state;
	int dfd = open(f->d.base, O_RDONLY | O_DIRECTORY);
	char p[IOT_PATH_MAX + 64];
	char text[256];

	assert_true(dfd >= 0);
	struct checkpoint_entry w[] = {
		{ .key = "alpha", .value = 0 },
		{ .key = "beta_2", .value = INT64_MAX },
		{ .key = "gamma", .value = INT64_MIN },
	};
	assert_int_equal(checkpoint_write(dfd, "x.checkpoint", w, 3), SL_OK);
	snprintf(p, sizeof(p), "%s/x.checkpoint", f->d.base);
	size_t n = iot_read_file(p, (uint8_t *)text, sizeof(text) - 1);
	text[n] = 0;
	assert_string_equal(text, "0\n3\nalpha 0\nbeta_2 9223372036854775807\n"
				  "gamma -9223372036854775808\n");
	snprintf(p, sizeof(p), "%s/x.checkpoint.tmp", f->d.base);
	assert_false(iot_exists(p));  /* renamed over the target */

	struct checkpoint_entry r[] = { { .key = "gamma" }, { .key = "beta_2" },
					{ .key = "missing" } };
	assert_int_equal(checkpoint_read(dfd, "x.checkpoint", r, 3), SL_OK);
	assert_true(r[0].found && r[1].found && !r[2].found);
	assert_int_equal(r[0].value, INT64_MIN);
	assert_int_equal(r[1].value, INT64_MAX);
	assert_int_equal(checkpoint_read(dfd, "nope", r, 3), SL_ENOTFOUND);

	/* Bad keys and too many entries are refused; the old file stays. */
	struct checkpoint_entry bad = { .key = "Bad Key", .value = 1 };
	assert_int_equal(checkpoint_write(dfd, "x.checkpoint", &bad, 1), SL_EINVAL);
	assert_int_equal(checkpoint_read(dfd, "x.checkpoint", r, 3), SL_OK);

	/* Malformed files. */
	static const char *const broken[] = {
		"", "1\n0\n", "0\n2\nalpha 1\n", "0\n1\nalpha 1", "0\n1\nalpha x\n",
		"0\n1\nalpha 99999999999999999999\n", "0\n1\nalpha 1\ntrailing", "0\n17\n",
		"0\n-1\n", "0\n1\n 5\n",
	};
	snprintf(p, sizeof(p), "%s/y.checkpoint", f->d.base);
	for (size_t i = 0; i < SL_ARRAY_LEN(broken); i++) {
		FILE *fp = fopen(p, "w");
		fputs(broken[i], fp);
		fclose(fp);
		assert_int_equal(checkpoint_read(dfd, "y.checkpoint", r, 3), SL_ECORRUPT);
	}
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_LOG_TEST(test_retention_by_time),
		IOT_LOG_TEST(test_retention_by_bytes_and_bound),
		IOT_LOG_TEST(test_slice_outlives_deletion),
		IOT_LOG_TEST(test_delete_before),
		IOT_LOG_TEST(test_truncate_to),
		IOT_LOG_TEST(test_truncate_fully),
		IOT_LOG_TEST(test_checkpoint_file),
	};
	log_level_set(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
