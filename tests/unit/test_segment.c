/*
 * test_segment.c — segments as the partition log lays them out: the .log
 * holds the batches exactly as appended (base offsets rewritten), file
 * names are 20-digit base offsets, the offset and time indexes follow
 * Kafka's cadence and byte format, and segments roll by size, by time
 * (injected clock, on append and on tick) and when an index is full.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "io_testutil.h"

static void test_append_read_files(void **state)
{
	struct iot_log_fixture *f = *state;
	static uint8_t b[3][4096], got[16384], file[16384];
	size_t len[3];
	struct plog *log;
	char p[IOT_PATH_MAX];

	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 1000), SL_OK);
	assert_int_equal(plog_start_offset(log), 0);
	assert_int_equal(plog_end_offset(log), 0);
	len[0] = iot_batch(b[0], sizeof(b[0]), 3, 100, 20, 1);
	len[1] = iot_batch(b[1], sizeof(b[1]), 1, 200, 50, 2);
	len[2] = iot_batch(b[2], sizeof(b[2]), 5, 300, 10, 3);
	for (int i = 0; i < 3; i++) {
		struct iot_app t;
		assert_int_equal(iot_app_submit(log, &t, b[i], len[i], 1000, NULL), SL_OK);
		iot_drive(&f->ring, &t.done);
		assert_int_equal(t.res, SL_OK);
		assert_int_equal(t.a.base_offset, i == 0 ? 0 : i == 1 ? 3 : 4);
		memcpy(b[i], t.buf, len[i]);  /* the engine rewrote baseOffset */
		iot_app_free(&t);
	}
	assert_int_equal((int64_t)be64_load(b[1]), 3);
	assert_int_equal(plog_end_offset(log), 9);

	/* Reads: one batch per offset inside it, exactly the appended bytes. */
	uint32_t n = iot_read(log, 4, 1 << 20, INT64_MAX, got, sizeof(got), NULL);
	assert_int_equal(n, len[2]);
	assert_memory_equal(got, b[2], len[2]);
	struct plog_slice s;
	n = iot_read(log, 1, 1 << 20, INT64_MAX, got, sizeof(got), &s);
	assert_int_equal(n, len[0] + len[1] + len[2]);
	assert_int_equal(s.first_offset, 0);
	assert_int_equal(s.last_offset, 8);

	assert_int_equal(plog_close(log), SL_OK);
	/* On disk: the .log is the batches, back to back. */
	iot_path(p, f->d.part, 0, ".log");
	size_t fl = iot_read_file(p, file, sizeof(file));
	assert_int_equal(fl, len[0] + len[1] + len[2]);
	assert_memory_equal(file, b[0], len[0]);
	assert_memory_equal(file + len[0], b[1], len[1]);
	assert_memory_equal(file + len[0] + len[1], b[2], len[2]);
	iot_path(p, f->d.part, 0, ".index");
	assert_true(iot_exists(p));
	assert_int_equal(iot_file_size(p), 0);  /* 4 KiB interval: no entry yet */
	iot_path(p, f->d.part, 0, ".timeindex");
	/* The final entry Kafka adds when a segment becomes inactive. */
	assert_int_equal(iot_file_size(p), 12);
	size_t tl = iot_read_file(p, file, sizeof(file));
	assert_int_equal(tl, 12);
	assert_int_equal((int64_t)be64_load(file), 304);  /* max timestamp */
	assert_int_equal(be32_load(file + 8), 8);         /* its batch's last offset */
}

/* Kafka's cadence: an entry when more than index_interval_bytes came since the last. */
static void test_index_cadence_on_disk(void **state)
{
	struct iot_log_fixture *f = *state;
	static uint8_t raw[4096];
	struct plog *log;
	char p[IOT_PATH_MAX];
	int64_t pos[10];
	size_t blen = 0;

	f->cfg.index_interval_bytes = 250;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 10; i++) {
		pos[i] = plog_size_bytes(log);
		iot_append_sync(log, &f->ring, 2, 1000 + 10 * i, 40, 0);
		if (i == 0)
			blen = (size_t)plog_size_bytes(log);
	}
	assert_int_equal(plog_close(log), SL_OK);
	/* Each batch is blen bytes (> 100): entries at batches whose preceding
	 * bytes since the last entry exceed 250. */
	size_t per = 250 / blen + 1;  /* batches between entries */
	iot_path(p, f->d.part, 0, ".index");
	size_t n = iot_read_file(p, raw, sizeof(raw));
	assert_true(n > 0 && n % 8 == 0);
	for (size_t e = 0; e < n / 8; e++) {
		size_t batch = per * (e + 1);
		assert_int_equal(be32_load(raw + 8 * e), 2 * batch + 1);   /* last offset of the batch */
		assert_int_equal(be32_load(raw + 8 * e + 4), pos[batch]); /* its position */
	}
	assert_int_equal(n / 8, (10 - 1) / per);
	/* Time index: one entry per offset entry (timestamps grew) + the final one. */
	iot_path(p, f->d.part, 0, ".timeindex");
	size_t tn = iot_read_file(p, raw, sizeof(raw));
	assert_int_equal(tn / 12, n / 8 + 1);
	assert_int_equal((int64_t)be64_load(raw + tn - 12), 1000 + 90 + 1);
	assert_int_equal(be32_load(raw + tn - 4), 19);
}

static void test_roll_by_size(void **state)
{
	struct iot_log_fixture *f = *state;
	struct plog *log;
	char p[IOT_PATH_MAX];
	static uint8_t got[8192];

	f->cfg.segment_bytes = 1000;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	/* Each batch: 3 records of 100 bytes -> ~ 380 bytes; two fit per segment. */
	for (int i = 0; i < 7; i++)
		assert_int_equal(iot_append_sync(log, &f->ring, 3, i * 10, 100, 0), 3 * i);
	assert_int_equal(plog_segment_count(log), 4);
	assert_int_equal(plog_stats(log)->rolls, 3);
	/* A read never spans segments: from offset 0 it stops after batch 2. */
	struct plog_slice s;
	uint32_t n = iot_read(log, 0, 1 << 20, INT64_MAX, got, sizeof(got), &s);
	assert_int_equal(s.last_offset, 5);
	assert_int_equal(n, 2 * (n / 2));
	n = iot_read(log, 6, 1 << 20, INT64_MAX, got, sizeof(got), &s);
	assert_int_equal(s.first_offset, 6);
	assert_int_equal(s.last_offset, 11);
	assert_int_equal(plog_close(log), SL_OK);

	for (int64_t base = 0; base <= 18; base += 6) {
		iot_path(p, f->d.part, base, ".log");
		assert_true(iot_exists(p));
		assert_true(iot_file_size(p) <= 1000);
	}
	iot_path(p, f->d.part, 3, ".log");
	assert_false(iot_exists(p));
	/* An append larger than a segment is refused. */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	static uint8_t big[4096];
	size_t len = iot_batch(big, sizeof(big), 10, 0, 100, 0);
	struct iot_app t;
	assert_int_equal(iot_app_submit(log, &t, big, len, 0, NULL), SL_EINVAL);
	assert_int_equal(plog_end_offset(log), 21);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_roll_by_time(void **state)
{
	struct iot_log_fixture *f = *state;
	struct plog *log;

	f->cfg.roll_ms = 1000;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_next_deadline_ms(log), INT64_MAX);  /* empty active: no roll */
	/* First batch's max timestamp is 5000: the segment's age counts from it. */
	iot_append_sync(log, &f->ring, 1, 5000, 10, 5000);
	assert_int_equal(plog_next_deadline_ms(log), 5000 + 1000 + 1);
	iot_append_sync(log, &f->ring, 1, 5500, 10, 5500);
	assert_int_equal(plog_segment_count(log), 1);
	iot_append_sync(log, &f->ring, 1, 6000, 10, 6000);   /* exactly roll_ms: no roll */
	assert_int_equal(plog_segment_count(log), 1);
	iot_append_sync(log, &f->ring, 1, 6001, 10, 6001);   /* older than roll_ms */
	assert_int_equal(plog_segment_count(log), 2);
	assert_int_equal(plog_stats(log)->rolls, 1);

	/* On tick too, without appends: the new segment started at 6001. */
	assert_int_equal(plog_tick(log, 7001), SL_OK);
	assert_int_equal(plog_segment_count(log), 2);
	assert_int_equal(plog_next_deadline_ms(log), 7002);
	assert_int_equal(plog_tick(log, 7002), SL_OK);
	assert_int_equal(plog_segment_count(log), 3);
	assert_int_equal(plog_next_deadline_ms(log), INT64_MAX);
	assert_int_equal(plog_tick(log, 99999), SL_OK);       /* empty: never rolls */
	assert_int_equal(plog_segment_count(log), 3);
	assert_int_equal(iot_append_sync(log, &f->ring, 1, 99999, 10, 99999), 4);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_roll_by_index_full(void **state)
{
	struct iot_log_fixture *f = *state;
	struct plog *log;
	char p[IOT_PATH_MAX];

	f->cfg.index_interval_bytes = 0;        /* every batch but the first indexed */
	f->cfg.index_size_max_bytes = 48;       /* 6 offset entries, 4 time entries */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 20; i++)
		iot_append_sync(log, &f->ring, 1, 100 + i, 10, 0);
	/* The time index (4 entries, one kept back for the final entry) fills
	 * first: 4 batches per segment (3 indexed + the unindexed first); the
	 * final entry is not needed as the last indexed batch holds the max. */
	assert_int_equal(plog_segment_count(log), 5);
	assert_int_equal(plog_close(log), SL_OK);
	for (int64_t base = 0; base < 20; base += 4) {
		iot_path(p, f->d.part, base, ".index");
		assert_int_equal(iot_file_size(p), 3 * 8);
		iot_path(p, f->d.part, base, ".timeindex");
		assert_int_equal(iot_file_size(p), 3 * 12);
	}
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_stats(log)->recovery_batches_validated, 0);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_LOG_TEST(test_append_read_files),
		IOT_LOG_TEST(test_index_cadence_on_disk),
		IOT_LOG_TEST(test_roll_by_size),
		IOT_LOG_TEST(test_roll_by_time),
		IOT_LOG_TEST(test_roll_by_index_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
