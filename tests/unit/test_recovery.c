/*
 * test_recovery.c — plog_open's recovery (io/segment.c, io/plog.c): a clean
 * reopen scans nothing; a torn tail cut at every byte of the last batch
 * recovers to the previous batch and appends continue at the right offset;
 * garbage after the log, missing / truncated / corrupt indexes, a
 * zero-filled preallocated tail (also in a sealed segment), a corrupt
 * batch in the middle of the active segment and of a sealed one (later
 * segments deleted), a corrupt checkpoint, orphan files, a crash image taken
 * while the log is open, the resume-from-index path, and random damage
 * (seeded) that must never crash and must leave only valid batches.
 *
 * "Crash" = copying the partition directory while the log is open, or
 * rewriting its checkpoint without the clean flag.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "io_testutil.h"
#include "log.h"

/* Builds n batches (varied sizes) into f->d.part and closes cleanly.
 * Fills base offsets and positions (within their segment) if asked. */
static void build(struct iot_log_fixture *f, int n, int64_t *bases, int64_t *sizes)
{
	struct plog *log;

	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < n; i++) {
		int64_t before = plog_size_bytes(log);
		int64_t b = iot_append_sync(log, &f->ring, 1 + i % 3, 1000 + 10 * i, 30 + (i * 13) % 90, 0);
		if (bases != NULL)
			bases[i] = b;
		if (sizes != NULL)
			sizes[i] = plog_size_bytes(log) - before;
	}
	assert_int_equal(plog_close(log), SL_OK);
}

/* Opens `dir`, checks the end offset, appends one batch there, verifies,
 * closes, and checks the next open is clean with no scan. */
static void reopen_check(struct iot_log_fixture *f, const char *dir, int64_t want_end)
{
	struct plog *log;

	assert_int_equal(plog_open(&log, &f->ring, dir, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(log), want_end);
	iot_verify_log(log);
	assert_int_equal(iot_append_sync(log, &f->ring, 2, 5000, 20, 0), want_end);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
	assert_int_equal(plog_open(&log, &f->ring, dir, &f->cfg, 0), SL_OK);
	assert_true(plog_stats(log)->recovery_clean);
	assert_int_equal(plog_stats(log)->recovery_batches_validated, 0);
	assert_int_equal(plog_stats(log)->recovery_segments_scanned, 0);
	assert_int_equal(plog_end_offset(log), want_end + 2);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_clean_reopen_no_scan(void **state)
{
	struct iot_log_fixture *f = *state;
	struct plog *log;

	f->cfg.segment_bytes = 2000;
	f->cfg.index_interval_bytes = 200;
	build(f, 40, NULL, NULL);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	const struct plog_stats *st = plog_stats(log);
	assert_true(st->recovery_clean);
	assert_int_equal(st->recovery_batches_validated, 0);
	assert_int_equal(st->recovery_segments_scanned, 0);
	/* Only the headers after each segment's last index entry. */
	uint32_t segs = plog_segment_count(log);
	assert_true(segs >= 5);
	assert_true(st->recovery_headers_walked <= (uint64_t)segs * 4);
	assert_true(st->recovery_headers_walked >= segs);
	int64_t end = plog_end_offset(log);
	assert_int_equal(end, 79);  /* 40 batches of 1, 2, 3, 1, ... records: 13 * 6 + 1 */
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
	reopen_check(f, f->d.part, end);
}

static void test_torn_tail_every_byte(void **state)
{
	struct iot_log_fixture *f = *state;
	enum { N = 6 };
	int64_t bases[N], sizes[N];
	char p[IOT_PATH_MAX];

	f->cfg.index_interval_bytes = 100;
	build(f, N, bases, sizes);
	int64_t last_pos = 0;
	for (int i = 0; i < N - 1; i++)
		last_pos += sizes[i];
	int64_t end_pos = last_pos + sizes[N - 1];
	assert_true(sizes[N - 1] > 100);
	for (int64_t cut = last_pos; cut <= end_pos; cut++) {
		iot_rm_flat(f->d.copy);
		iot_copy_dir(f->d.part, f->d.copy);
		iot_path(p, f->d.copy, 0, ".log");
		iot_truncate(p, cut);
		/* Alternate between "nothing known flushed" (full scan) and a
		 * recovery point inside the segment (resume from the index). */
		iot_set_checkpoint(f->d.copy, 0, (cut % 2) ? 0 : bases[N - 2], 0);
		struct plog *log;
		assert_int_equal(plog_open(&log, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
		/* Whole (cut == end): the last batch stays. */
		int64_t want = cut == end_pos ? bases[N - 1] + 1 + (N - 1) % 3 : bases[N - 1];
		assert_int_equal(plog_stats(log)->recovery_bytes_truncated, cut - last_pos -
				 (cut == end_pos ? sizes[N - 1] : 0));
		assert_int_equal(plog_end_offset(log), want);
		assert_int_equal(plog_close(log), SL_OK);
		reopen_check(f, f->d.copy, want);
	}
	iot_rm_flat(f->d.copy);
}

static void test_garbage_appended(void **state)
{
	struct iot_log_fixture *f = *state;
	static const size_t lens[] = { 1, 11, 12, 60, 61, 62, 200, 5000 };
	static uint8_t junk[5000];
	int64_t bases[5], sizes[5];
	char p[IOT_PATH_MAX];
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	build(f, 5, bases, sizes);
	int64_t end_pos = 0;
	for (int i = 0; i < 5; i++)
		end_pos += sizes[i];
	for (size_t i = 0; i < sizeof(junk); i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		junk[i] = (uint8_t)seed;
	}
	for (size_t k = 0; k < SL_ARRAY_LEN(lens); k++)
		for (int clean = 0; clean <= 1; clean++) {
			iot_rm_flat(f->d.copy);
			iot_copy_dir(f->d.part, f->d.copy);
			iot_path(p, f->d.copy, 0, ".log");
			iot_write_at(p, end_pos, junk, lens[k]);
			iot_set_checkpoint(f->d.copy, 0, 0, clean);
			struct plog *log;
			assert_int_equal(plog_open(&log, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
			assert_int_equal(plog_stats(log)->recovery_bytes_truncated, (int64_t)lens[k]);
			assert_int_equal(plog_close(log), SL_OK);
			reopen_check(f, f->d.copy, bases[4] + 2);
		}

	/* A copy of the last batch with a bad CRC after the log. */
	uint8_t last[4096];
	iot_rm_flat(f->d.copy);
	iot_copy_dir(f->d.part, f->d.copy);
	iot_path(p, f->d.copy, 0, ".log");
	int fd = open(p, O_RDWR);
	assert_int_equal(pread(fd, last, (size_t)sizes[4], end_pos - sizes[4]), sizes[4]);
	be64_store(last, (uint64_t)bases[4] + 2);
	last[sizes[4] - 1] ^= 0x40;
	assert_int_equal(pwrite(fd, last, (size_t)sizes[4], end_pos), sizes[4]);
	close(fd);
	iot_set_checkpoint(f->d.copy, 0, 0, 0);
	reopen_check(f, f->d.copy, bases[4] + 2);

	/* The last batch again, verbatim (a valid CRC, but its offsets go
	 * backwards: the base offset is outside the CRC). */
	for (int clean = 0; clean <= 1; clean++) {
		iot_rm_flat(f->d.copy);
		iot_copy_dir(f->d.part, f->d.copy);
		iot_path(p, f->d.copy, 0, ".log");
		fd = open(p, O_RDWR);
		assert_int_equal(pread(fd, last, (size_t)sizes[4], end_pos - sizes[4]), sizes[4]);
		assert_int_equal(pwrite(fd, last, (size_t)sizes[4], end_pos), sizes[4]);
		close(fd);
		iot_set_checkpoint(f->d.copy, 0, clean ? bases[4] + 2 : 0, clean);
		struct plog *log;
		assert_int_equal(plog_open(&log, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
		assert_int_equal(plog_end_offset(log), bases[4] + 2);
		assert_int_equal(plog_stats(log)->recovery_bytes_truncated, sizes[4]);
		assert_int_equal(plog_close(log), SL_OK);
		reopen_check(f, f->d.copy, bases[4] + 2);
	}
	iot_rm_flat(f->d.copy);
}

/* Builds a 2-segment log with dense indexes; returns the end offset. */
static int64_t build_indexed(struct iot_log_fixture *f)
{
	f->cfg.segment_bytes = 3000;
	f->cfg.index_interval_bytes = 150;
	build(f, 24, NULL, NULL);
	struct plog *log;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	int64_t end = plog_end_offset(log);
	assert_true(plog_segment_count(log) >= 2);
	assert_int_equal(plog_close(log), SL_OK);
	return end;
}

/* Damages an index file of segment `base` per `how`, reopens (clean flag
 * kept or not), and checks the index comes back byte-identical. */
enum damage { DMG_DELETE, DMG_HALF, DMG_RAGGED, DMG_MIDDLE, DMG_LAST_POS, DMG_LAST_OFF };

static void index_damage_case(struct iot_log_fixture *f, int64_t base, const char *ext,
			      enum damage how, int clean, int64_t end)
{
	static uint8_t orig[65536], now[65536];
	char p[IOT_PATH_MAX];
	size_t n, m;

	iot_rm_flat(f->d.copy);
	iot_copy_dir(f->d.part, f->d.copy);
	iot_path(p, f->d.copy, base, ext);
	n = iot_read_file(p, orig, sizeof(orig));
	assert_true(n >= 24);
	size_t entry = strcmp(ext, ".index") == 0 ? 8 : 12;
	uint8_t garbage[12] = { 0x7f, 0, 0, 0, 0x7f, 1, 2, 3, 4, 5, 6, 7 };
	switch (how) {
	case DMG_DELETE:
		assert_int_equal(unlink(p), 0);
		break;
	case DMG_HALF:
		iot_truncate(p, (int64_t)(n / entry / 2 * entry));
		break;
	case DMG_RAGGED:
		iot_truncate(p, (int64_t)n - 3);
		break;
	case DMG_MIDDLE:
		iot_write_at(p, (int64_t)(n / entry / 2 * entry), garbage, entry);
		break;
	case DMG_LAST_POS: {
		/* Still monotone, but pointing one byte into the batch. */
		uint8_t *e = orig + n - entry;
		uint8_t fix[12];
		memcpy(fix, e, entry);
		if (entry == 8)
			be32_store(fix + 4, be32_load(e + 4) + 1);
		else
			be32_store(fix + 8, be32_load(e + 8) + 1000);  /* past the segment */
		iot_write_at(p, (int64_t)(n - entry), fix, entry);
		break;
	}
	case DMG_LAST_OFF: {
		uint8_t *e = orig + n - entry;
		uint8_t fix[12];
		memcpy(fix, e, entry);
		if (entry == 8)
			be32_store(fix, be32_load(e) + 1);
		else
			be64_store(fix, be64_load(e) + 1);  /* undetectable, harmless: only max ts */
		iot_write_at(p, (int64_t)(n - entry), fix, entry);
		break;
	}
	}
	iot_set_checkpoint(f->d.copy, 0, clean ? end : 0, clean);
	struct plog *log;
	assert_int_equal(plog_open(&log, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(log), end);
	/* With the clean flag the files are trusted: a time index cut at an
	 * entry boundary, or a changed last timestamp, cannot be told from a
	 * good one (only the segment's max timestamp suffers). */
	int undetectable = entry == 12 && (how == DMG_LAST_OFF || (how == DMG_HALF && clean));
	if (!undetectable)
		assert_true(plog_stats(log)->recovery_segments_scanned >= 1);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
	m = iot_read_file(p, now, sizeof(now));
	if (!undetectable) {
		assert_int_equal(m, n);
		assert_memory_equal(now, orig, n);
	}
	reopen_check(f, f->d.copy, end);
}

static void test_index_damage(void **state)
{
	struct iot_log_fixture *f = *state;
	int64_t end = build_indexed(f);
	static const enum damage dmg[] = { DMG_DELETE, DMG_HALF, DMG_RAGGED, DMG_MIDDLE,
					   DMG_LAST_POS, DMG_LAST_OFF };
	struct plog *log;

	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	int64_t seg1 = -1;
	/* Find the second segment's base from the read of the offset past segment 0. */
	struct plog_slice s;
	assert_int_equal(plog_read(log, 0, 1 << 20, INT64_MAX, &s), SL_OK);
	seg1 = s.last_offset + 1;
	plog_slice_release(&s);
	assert_int_equal(plog_close(log), SL_OK);

	for (size_t d = 0; d < SL_ARRAY_LEN(dmg); d++)
		for (int clean = 0; clean <= 1; clean++) {
			index_damage_case(f, 0, ".index", dmg[d], clean, end);          /* sealed */
			index_damage_case(f, seg1, ".index", dmg[d], clean, end);       /* active */
			index_damage_case(f, 0, ".timeindex", dmg[d], clean, end);
			index_damage_case(f, seg1, ".timeindex", dmg[d], clean, end);
		}
	iot_rm_flat(f->d.copy);
}

static void test_zero_filled_preallocated_tail(void **state)
{
	struct iot_log_fixture *f = *state;
	struct plog *log, *log2;
	char p[IOT_PATH_MAX];

	f->cfg.preallocate = 1;
	f->cfg.segment_bytes = 64 * 1024;
	f->cfg.index_interval_bytes = 300;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	iot_path(p, f->d.part, 0, ".log");
	assert_int_equal(iot_file_size(p), 64 * 1024);  /* preallocated */
	for (int i = 0; i < 20; i++)
		iot_append_sync(log, &f->ring, 2, 100 + i, 100, 0);
	int64_t end = plog_end_offset(log);
	int64_t size = plog_size_bytes(log);
	/* Crash image while open: .log and indexes still preallocated. */
	iot_copy_dir(f->d.part, f->d.copy);
	assert_int_equal(plog_close(log), SL_OK);
	assert_int_equal(iot_file_size(p), size);  /* trimmed at close */

	assert_int_equal(plog_open(&log2, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
	assert_false(plog_stats(log2)->recovery_clean);
	assert_int_equal(plog_end_offset(log2), end);
	assert_int_equal(plog_stats(log2)->recovery_bytes_truncated, 64 * 1024 - size);
	assert_int_equal(plog_stats(log2)->recovery_segments_deleted, 0);
	iot_verify_log(log2);
	assert_int_equal(plog_close(log2), SL_OK);
	reopen_check(f, f->d.copy, end);
	iot_rm_flat(f->d.copy);
}

static void test_zero_tail_in_sealed_segment(void **state)
{
	struct iot_log_fixture *f = *state;
	char p[IOT_PATH_MAX];
	struct plog *log;
	int64_t end = build_indexed(f);

	/* A sealed segment whose trim was lost: zeros after its last batch,
	 * and the next segment starts exactly where its data ends. */
	iot_copy_dir(f->d.part, f->d.copy);
	iot_path(p, f->d.copy, 0, ".log");
	iot_truncate(p, iot_file_size(p) + 5000);
	iot_set_checkpoint(f->d.copy, 0, 0, 0);
	assert_int_equal(plog_open(&log, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(log), end);
	assert_int_equal(plog_stats(log)->recovery_bytes_truncated, 5000);
	assert_int_equal(plog_stats(log)->recovery_segments_deleted, 0);
	assert_true(plog_segment_count(log) >= 2);
	assert_int_equal(plog_close(log), SL_OK);
	reopen_check(f, f->d.copy, end);
	iot_rm_flat(f->d.copy);
}

static void test_corrupt_batch_middle_active(void **state)
{
	struct iot_log_fixture *f = *state;
	enum { N = 10 };
	int64_t bases[N], sizes[N];
	char p[IOT_PATH_MAX];

	f->cfg.index_interval_bytes = 200;
	build(f, N, bases, sizes);
	int64_t pos5 = 0;
	for (int i = 0; i < 5; i++)
		pos5 += sizes[i];
	iot_copy_dir(f->d.part, f->d.copy);
	iot_path(p, f->d.copy, 0, ".log");
	iot_flip(p, pos5 + 70);
	iot_set_checkpoint(f->d.copy, 0, 0, 0);
	struct plog *log;
	assert_int_equal(plog_open(&log, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(log), bases[5]);
	int64_t rest = 0;
	for (int i = 5; i < N; i++)
		rest += sizes[i];
	assert_int_equal(plog_stats(log)->recovery_bytes_truncated, rest);
	assert_int_equal(plog_close(log), SL_OK);
	reopen_check(f, f->d.copy, bases[5]);
	iot_rm_flat(f->d.copy);
}

static void test_corrupt_sealed_segment_deletes_later(void **state)
{
	struct iot_log_fixture *f = *state;
	enum { N = 30 };
	int64_t bases[N], sizes[N];
	char p[IOT_PATH_MAX];
	struct plog *log;

	f->cfg.segment_bytes = 2000;
	build(f, N, bases, sizes);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	uint32_t segs = plog_segment_count(log);
	assert_true(segs >= 4);
	struct plog_slice s;
	assert_int_equal(plog_read(log, 0, 1 << 20, INT64_MAX, &s), SL_OK);
	int64_t seg1 = s.last_offset + 1;  /* base of the second segment */
	plog_slice_release(&s);
	assert_int_equal(plog_close(log), SL_OK);
	/* Corrupt the second batch of segment 1. */
	int k = 0;
	while (bases[k] != seg1)
		k++;
	iot_copy_dir(f->d.part, f->d.copy);
	iot_path(p, f->d.copy, seg1, ".log");
	iot_flip(p, sizes[k] + BATCH_OFF_CRC);
	iot_set_checkpoint(f->d.copy, 0, 0, 0);
	assert_int_equal(plog_open(&log, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(log), bases[k + 1]);
	assert_int_equal(plog_segment_count(log), 2);
	assert_int_equal(plog_stats(log)->recovery_segments_deleted, segs - 2);
	assert_int_equal(plog_close(log), SL_OK);
	iot_path(p, f->d.copy, seg1, ".log");
	assert_true(iot_exists(p));          /* segment 1 itself is kept, cut */
	assert_int_equal(iot_file_size(p), sizes[k]);
	for (int i = k + 1; i < N; i++) {
		iot_path(p, f->d.copy, bases[i], ".log");
		assert_false(iot_exists(p));     /* every later segment is gone */
	}
	reopen_check(f, f->d.copy, bases[k + 1]);
	iot_rm_flat(f->d.copy);
}

static void test_resume_from_index(void **state)
{
	struct iot_log_fixture *f = *state;
	enum { N = 50 };
	int64_t bases[N];
	struct plog *log;

	f->cfg.index_interval_bytes = 100;
	build(f, N, bases, NULL);
	int64_t end = bases[N - 1] + 1 + (N - 1) % 3;
	iot_set_checkpoint(f->d.part, 0, bases[40], 0);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(log), end);
	/* Only from the last index entry below the recovery point: batch 39
	 * at the earliest (every batch is indexed at this interval). */
	uint64_t v = plog_stats(log)->recovery_batches_validated;
	assert_true(v >= N - 40 && v <= N - 38);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
	reopen_check(f, f->d.part, end);
}

static void test_checkpoint_and_orphans(void **state)
{
	struct iot_log_fixture *f = *state;
	char p[IOT_PATH_MAX + 64];
	int64_t bases[6];

	build(f, 6, bases, NULL);
	int64_t end = bases[5] + 3;
	snprintf(p, sizeof(p), "%s/%s", f->d.part, PLOG_CHECKPOINT_NAME);
	iot_write_at(p, 0, "zz\n", 3);                      /* corrupt checkpoint */
	snprintf(p, sizeof(p), "%s/%s.tmp", f->d.part, PLOG_CHECKPOINT_NAME);
	FILE *tmp = fopen(p, "w");
	fclose(tmp);
	char orphan[IOT_PATH_MAX];
	iot_path(orphan, f->d.part, 999, ".index");
	tmp = fopen(orphan, "w");
	fclose(tmp);
	struct plog *log;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_false(plog_stats(log)->recovery_clean);
	assert_int_equal(plog_end_offset(log), end);
	assert_false(iot_exists(p));
	assert_false(iot_exists(orphan));
	assert_int_equal(plog_close(log), SL_OK);
	reopen_check(f, f->d.part, end);
}

static void test_start_offset_past_end(void **state)
{
	struct iot_log_fixture *f = *state;
	struct plog *log;
	int64_t bases[4];

	/* DeleteRecords moved the start, then the unflushed tail was lost. */
	build(f, 4, bases, NULL);
	iot_set_checkpoint(f->d.part, 100, 0, 0);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_start_offset(log), 100);
	assert_int_equal(plog_end_offset(log), 100);
	assert_int_equal(plog_segment_count(log), 1);
	assert_int_equal(plog_close(log), SL_OK);
	reopen_check(f, f->d.part, 100);
}

static void test_crash_image_while_open(void **state)
{
	struct iot_log_fixture *f = *state;
	struct plog *log;

	f->cfg.segment_bytes = 1500;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 12; i++)
		iot_append_sync(log, &f->ring, 2, i, 100, 0);
	int64_t end = plog_end_offset(log);
	iot_copy_dir(f->d.part, f->d.copy);   /* the process "dies" here */
	assert_int_equal(plog_close(log), SL_OK);
	reopen_check(f, f->d.copy, end);
	iot_rm_flat(f->d.copy);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_damage(void **state)
{
	struct iot_log_fixture *f = *state;
	static uint8_t junk[4096];
	uint64_t seed = 0x5eed5eed1234ULL;
	char p[IOT_PATH_MAX];
	struct plog *log;

	f->cfg.segment_bytes = 2500;
	f->cfg.index_interval_bytes = 120;
	build(f, 30, NULL, NULL);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	int64_t end = plog_end_offset(log);
	int64_t seg_bases[64];
	uint32_t nseg = 0;
	for (int64_t off = 0; off < end && nseg < 64;) {
		struct plog_slice s;
		assert_int_equal(plog_read(log, off, 1 << 20, INT64_MAX, &s), SL_OK);
		if (s.file_pos == 0)
			seg_bases[nseg++] = s.first_offset;
		off = s.last_offset + 1;
		plog_slice_release(&s);
	}
	assert_int_equal(plog_close(log), SL_OK);
	assert_true(nseg >= 3);

	for (int iter = 0; iter < 120; iter++) {
		iot_rm_flat(f->d.copy);
		iot_copy_dir(f->d.part, f->d.copy);
		int damages = 1 + (int)(rnd(&seed) % 3);
		for (int d = 0; d < damages; d++) {
			static const char *const exts[] = { ".log", ".log", ".index", ".timeindex" };
			const char *ext = exts[rnd(&seed) % 4];
			iot_path(p, f->d.copy, seg_bases[rnd(&seed) % nseg], ext);
			int64_t fsz = iot_file_size(p);
			if (fsz < 0)
				continue;
			int64_t at = fsz > 0 ? (int64_t)(rnd(&seed) % (uint64_t)fsz) : 0;
			size_t len = 1 + rnd(&seed) % 200;
			for (size_t i = 0; i < len; i++)
				junk[i] = (uint8_t)rnd(&seed);
			switch (rnd(&seed) % 5) {
			case 0:
				iot_write_at(p, at, junk, 1);           /* flip a byte */
				break;
			case 1:
				iot_truncate(p, at);                    /* cut */
				break;
			case 2:
				iot_write_at(p, fsz, junk, len);        /* garbage after */
				break;
			case 3:
				memset(junk, 0, len);
				iot_write_at(p, at, junk, len);         /* zeros */
				break;
			default:
				unlink(p);                              /* lose a file */
				break;
			}
		}
		iot_set_checkpoint(f->d.copy, 0, 0, 0);
		assert_int_equal(plog_open(&log, &f->ring, f->d.copy, &f->cfg, 0), SL_OK);
		int64_t got = plog_end_offset(log);
		assert_true(got <= end);
		iot_verify_log(log);
		assert_int_equal(plog_close(log), SL_OK);
		reopen_check(f, f->d.copy, got);
	}
	iot_rm_flat(f->d.copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_LOG_TEST(test_clean_reopen_no_scan),
		IOT_LOG_TEST(test_torn_tail_every_byte),
		IOT_LOG_TEST(test_garbage_appended),
		IOT_LOG_TEST(test_index_damage),
		IOT_LOG_TEST(test_zero_filled_preallocated_tail),
		IOT_LOG_TEST(test_zero_tail_in_sealed_segment),
		IOT_LOG_TEST(test_corrupt_batch_middle_active),
		IOT_LOG_TEST(test_corrupt_sealed_segment_deletes_later),
		IOT_LOG_TEST(test_resume_from_index),
		IOT_LOG_TEST(test_checkpoint_and_orphans),
		IOT_LOG_TEST(test_start_offset_past_end),
		IOT_LOG_TEST(test_crash_image_while_open),
		IOT_LOG_TEST(test_random_damage),
	};
	log_level_set(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
