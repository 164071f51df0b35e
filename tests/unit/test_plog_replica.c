/*
 * test_plog_replica.c — plog_append_replica (io/plog.h): a follower's
 * append of batches fetched from the leader, offsets kept. A "leader" log
 * is written with plog_append; its bytes, read back in slices as a Fetch
 * would send them, are appended to a "follower" log; both .log files must
 * be byte-identical, offsets must match, a first offset below the log end,
 * overlapping batches or a bad CRC are refused with nothing written, and
 * the follower's log recovers the same after a reopen. Gaps (a compacted
 * leader, io/compact.h) are kept: a leader log compacted with plog_compact
 * replicates byte-identically, reopens, and reads inside a gap return the
 * next batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "compact.h"
#include "io_testutil.h"

#define REPLICA_BATCHES 60

/* Appends `len` bytes of `buf` to `log` as a follower and waits. */
static enum sl_err replica_append_sync(struct plog *log, struct ring *r, const uint8_t *buf,
				       size_t len)
{
	struct iot_app t;

	memset(&t, 0, sizeof(t));
	t.buf = malloc(len);
	assert_non_null(t.buf);
	memcpy(t.buf, buf, len);
	t.a.buf = t.buf;
	t.a.len = len;
	t.a.done = iot_app_done;
	t.log = log;
	t.seq = -1;
	enum sl_err err = plog_append_replica(log, &t.a, 0);
	if (err == SL_OK) {
		assert_int_equal(t.a.base_offset, (int64_t)be64_load(buf));
		iot_drive(r, &t.done);
		assert_int_equal(t.res, SL_OK);
	}
	iot_app_free(&t);
	return err;
}

/* Writes REPLICA_BATCHES batches of 1..5 records to a fresh leader log. */
static struct plog *leader_log(struct iot_log_fixture *f, const char *dir)
{
	struct plog *log;

	assert_int_equal(plog_open(&log, &f->ring, dir, &f->cfg, 0), SL_OK);
	for (int i = 0; i < REPLICA_BATCHES; i++)
		iot_append_sync(log, &f->ring, 1 + i % 5, 1000 + i, 100 + 7 * i, 0);
	return log;
}

/* Copies the leader's log into the follower's, slice by slice (max_bytes each). */
static void replicate(struct iot_log_fixture *f, struct plog *leader, struct plog *follower,
		      uint32_t max_bytes)
{
	static uint8_t buf[1 << 20];

	for (int n = 0; plog_end_offset(follower) < plog_end_offset(leader); n++) {
		assert_true(n < 100000);
		uint32_t len = iot_read(leader, plog_end_offset(follower), max_bytes, INT64_MAX, buf,
					sizeof(buf), NULL);
		assert_true(len > 0);
		assert_int_equal(replica_append_sync(follower, &f->ring, buf, len), SL_OK);
	}
	assert_int_equal(plog_end_offset(follower), plog_end_offset(leader));
}

static void assert_same_segments(const char *a, const char *b, int64_t base)
{
	static uint8_t x[1 << 21], y[1 << 21];
	char pa[IOT_PATH_MAX], pb[IOT_PATH_MAX];

	iot_path(pa, a, base, ".log");
	iot_path(pb, b, base, ".log");
	size_t na = iot_read_file(pa, x, sizeof(x));
	size_t nb = iot_read_file(pb, y, sizeof(y));
	assert_true(na > 0);
	assert_int_equal(na, nb);
	assert_memory_equal(x, y, na);
}

static void test_bytes_identical(void **state)
{
	struct iot_log_fixture *f = *state;
	char fdir[IOT_PATH_MAX + 16];
	struct plog *leader, *follower;

	snprintf(fdir, sizeof(fdir), "%s/t-1", f->d.base);
	f->cfg.segment_bytes = 1 << 20;
	leader = leader_log(f, f->d.part);
	assert_int_equal(plog_open(&follower, &f->ring, fdir, &f->cfg, 0), SL_OK);
	replicate(f, leader, follower, 1500);  /* many small appends, one batch or a few */
	assert_int_equal(plog_segment_count(follower), 1);
	assert_int_equal(plog_close(leader), SL_OK);
	assert_int_equal(plog_close(follower), SL_OK);
	assert_same_segments(f->d.part, fdir, 0);
}

static void test_refused(void **state)
{
	struct iot_log_fixture *f = *state;
	static uint8_t b1[8192], b2[8192], two[16384];
	char fdir[IOT_PATH_MAX + 16], seg[IOT_PATH_MAX];
	struct plog *follower;

	snprintf(fdir, sizeof(fdir), "%s/t-1", f->d.base);
	assert_int_equal(plog_open(&follower, &f->ring, fdir, &f->cfg, 0), SL_OK);
	size_t n1 = iot_batch(b1, sizeof(b1), 3, 10, 50, 1);   /* offsets 0..2 */
	size_t n2 = iot_batch(b2, sizeof(b2), 2, 20, 50, 2);

	/* Overlapping batches: 0..2 then 2..3. */
	memcpy(two, b1, n1);
	memcpy(two + n1, b2, n2);
	batch_set_base_offset(two + n1, 2);
	assert_int_equal(replica_append_sync(follower, &f->ring, two, n1 + n2), SL_ERANGE);
	/* A bad CRC in the second batch. */
	batch_set_base_offset(two + n1, 3);
	two[n1 + BATCH_HEADER_BYTES + 2] ^= 0x40;
	assert_int_equal(replica_append_sync(follower, &f->ring, two, n1 + n2), SL_ECORRUPT);
	/* Not whole batches. */
	assert_int_equal(replica_append_sync(follower, &f->ring, b1, n1 - 1), SL_ECORRUPT);
	assert_int_equal(plog_end_offset(follower), 0);
	assert_int_equal(plog_next_offset(follower), 0);
	assert_int_equal(plog_stats(follower)->appends, 0);
	iot_path(seg, fdir, 0, ".log");
	/* Nothing was written (the file may be preallocated, never grown by data). */
	assert_int_equal(plog_size_bytes(follower), 0);

	/* The good pair goes in, offsets kept. */
	two[n1 + BATCH_HEADER_BYTES + 2] ^= 0x40;
	assert_int_equal(replica_append_sync(follower, &f->ring, two, n1 + n2), SL_OK);
	assert_int_equal(plog_end_offset(follower), 5);
	/* Replaying the same batches again is refused (offsets below the end),
	 * so is a batch overlapping the end (4..6 with end 5). */
	assert_int_equal(replica_append_sync(follower, &f->ring, b1, n1), SL_ERANGE);
	batch_set_base_offset(b1, 4);
	assert_int_equal(replica_append_sync(follower, &f->ring, b1, n1), SL_ERANGE);
	assert_int_equal(plog_end_offset(follower), 5);
	/* A batch above the end (a compaction gap, 5..9 missing) goes in. */
	batch_set_base_offset(b1, 10);
	assert_int_equal(replica_append_sync(follower, &f->ring, b1, n1), SL_OK);
	assert_int_equal(plog_end_offset(follower), 13);
	assert_int_equal(plog_next_offset(follower), 13);
	assert_int_equal(plog_close(follower), SL_OK);
	assert_int_equal(iot_file_size(seg), (int64_t)(2 * n1 + n2));
}

static void test_reopen_and_roll(void **state)
{
	struct iot_log_fixture *f = *state;
	char fdir[IOT_PATH_MAX + 16];
	struct plog *leader, *follower;

	snprintf(fdir, sizeof(fdir), "%s/t-1", f->d.base);
	f->cfg.segment_bytes = 8 * 1024;  /* both logs roll */
	leader = leader_log(f, f->d.part);
	assert_int_equal(plog_open(&follower, &f->ring, fdir, &f->cfg, 0), SL_OK);
	/* Half, then a crash-like reopen (no clean close: recovery scans). */
	int64_t half = plog_end_offset(leader) / 2;
	static uint8_t buf[1 << 16];
	for (int n = 0; plog_end_offset(follower) < half; n++) {
		assert_true(n < 10000);
		uint32_t len = iot_read(leader, plog_end_offset(follower), 700, INT64_MAX, buf,
					sizeof(buf), NULL);
		assert_int_equal(replica_append_sync(follower, &f->ring, buf, len), SL_OK);
	}
	int64_t mid = plog_end_offset(follower);
	assert_int_equal(plog_close(follower), SL_OK);
	iot_set_checkpoint(fdir, 0, 0, 0);
	assert_int_equal(plog_open(&follower, &f->ring, fdir, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_end_offset(follower), mid);
	assert_true(plog_stats(follower)->recovery_segments_scanned > 0);
	replicate(f, leader, follower, 1 << 16);
	iot_verify_log(follower);
	assert_int_equal(plog_segment_count(follower), plog_segment_count(leader));
	uint32_t segs = plog_segment_count(leader);
	assert_true(segs > 2);
	/* The same segment bases and bytes: read each leader segment's base. */
	int64_t bases[64];
	uint32_t nb = 0;
	for (int64_t off = 0; off < plog_end_offset(leader) && nb < 64;) {
		struct plog_slice s;
		assert_int_equal(plog_read(leader, off, 1 << 20, INT64_MAX, &s), SL_OK);
		if (s.file_pos == 0)
			bases[nb++] = s.first_offset;
		off = s.last_offset + 1;
		plog_slice_release(&s);
	}
	assert_int_equal(nb, segs);
	assert_int_equal(plog_close(leader), SL_OK);
	assert_int_equal(plog_close(follower), SL_OK);
	for (uint32_t i = 0; i < nb; i++)
		assert_same_segments(f->d.part, fdir, bases[i]);
}

/* ---- a compacted leader: gaps between batches ---- */

#define GAP_BATCHES 240
#define GAP_KEYS 7

/* One keyed record per batch (key i % GAP_KEYS): compaction removes most. */
static void gap_leader_fill(struct iot_log_fixture *f, struct plog *log)
{
	static uint8_t buf[4096];
	char key[16], val[32];

	for (int i = 0; i < GAP_BATCHES; i++) {
		struct batch_builder b;
		struct iot_app t;
		int kl = snprintf(key, sizeof(key), "k%d", i % GAP_KEYS);
		int vl = snprintf(val, sizeof(val), "value-%06d", i);
		batch_builder_init(&b, buf, sizeof(buf));
		assert_int_equal(batch_builder_add(&b, 1000 + i, key, kl, val, vl, NULL, 0), SL_OK);
		size_t len = batch_builder_finish(&b);
		assert_int_equal(iot_app_submit(log, &t, buf, len, 1000 + i, NULL), SL_OK);
		iot_drive(&f->ring, &t.done);
		assert_int_equal(t.res, SL_OK);
		iot_app_free(&t);
	}
}

/* Every *.log file of `dir` in name (= offset) order, concatenated. */
static size_t concat_logs(const char *dir, uint8_t *out, size_t cap)
{
	struct dirent **names;
	size_t len = 0;
	int n = scandir(dir, &names, NULL, alphasort);

	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		size_t nl = strlen(names[i]->d_name);
		if (nl > 4 && strcmp(names[i]->d_name + nl - 4, ".log") == 0) {
			char path[IOT_PATH_MAX + 64];
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			len += iot_read_file(path, out + len, cap - len);
		}
		free(names[i]);
	}
	free(names);
	return len;
}

/*
 * Walks `log` batch by batch: offsets increase, each read at `off`
 * returns the batch holding off or the next one (a gap). Returns the
 * number of gaps and the first offset inside one (-1: none).
 */
static int walk_gaps(struct plog *log, int64_t *gap_off)
{
	int64_t off = plog_start_offset(log), end = plog_end_offset(log);
	int gaps = 0;

	*gap_off = -1;
	for (int n = 0; off < end; n++) {
		struct plog_slice s;
		assert_true(n < 100000);
		assert_int_equal(plog_read(log, off, 1, INT64_MAX, &s), SL_OK);
		assert_true(s.len > 0 && s.first_offset <= s.last_offset && s.last_offset >= off);
		if (s.first_offset > off) {
			gaps++;
			if (*gap_off < 0)
				*gap_off = off;
		}
		off = s.last_offset + 1;
		plog_slice_release(&s);
	}
	return gaps;
}

/* A read at `off` on both logs starts at the same batch. */
static void same_read(struct plog *a, struct plog *b, int64_t off)
{
	struct plog_slice x, y;

	assert_int_equal(plog_read(a, off, 1, INT64_MAX, &x), SL_OK);
	assert_int_equal(plog_read(b, off, 1, INT64_MAX, &y), SL_OK);
	assert_true(x.len > 0 && x.first_offset > off);   /* inside a gap: the next batch */
	assert_int_equal(x.first_offset, y.first_offset);
	assert_int_equal(x.last_offset, y.last_offset);
	assert_int_equal(x.len, y.len);
	plog_slice_release(&x);
	plog_slice_release(&y);
}

static void test_compacted_leader_gaps(void **state)
{
	struct iot_log_fixture *f = *state;
	static uint8_t x[1 << 20], y[1 << 20];
	char fdir[IOT_PATH_MAX + 16];
	struct plog *leader, *follower;
	struct compact_config cc;
	struct compact_stats st;

	snprintf(fdir, sizeof(fdir), "%s/t-1", f->d.base);
	f->cfg.segment_bytes = 2048;   /* several sealed segments to compact */
	assert_int_equal(plog_open(&leader, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	gap_leader_fill(f, leader);
	compact_config_default(&cc);
	assert_int_equal(plog_compact(leader, 10000, &cc, &st), SL_OK);
	assert_true(st.batches_removed > 0);
	int64_t gap_off;
	int leader_gaps = walk_gaps(leader, &gap_off);
	assert_true(leader_gaps > 1 && gap_off >= 0);

	/* The follower rolls too (smaller segments than the leader's). */
	f->cfg.segment_bytes = 1024;
	assert_int_equal(plog_open(&follower, &f->ring, fdir, &f->cfg, 0), SL_OK);
	replicate(f, leader, follower, 300);
	assert_true(plog_segment_count(follower) > 1);
	assert_int_equal(plog_next_offset(follower), plog_end_offset(leader));
	int64_t fgap;
	assert_int_equal(walk_gaps(follower, &fgap), leader_gaps);
	assert_int_equal(fgap, gap_off);
	same_read(leader, follower, gap_off);
	/* A replayed batch below the end is still refused. */
	uint32_t len = iot_read(leader, plog_start_offset(leader), 1, INT64_MAX, x, sizeof(x), NULL);
	assert_int_equal(replica_append_sync(follower, &f->ring, x, len), SL_ERANGE);

	/* Crash-like reopen: recovery scans every segment and keeps the gaps. */
	assert_int_equal(plog_close(follower), SL_OK);
	iot_set_checkpoint(fdir, 0, 0, 0);
	assert_int_equal(plog_open(&follower, &f->ring, fdir, &f->cfg, 0), SL_OK);
	assert_true(plog_stats(follower)->recovery_segments_scanned > 0);
	assert_int_equal(plog_end_offset(follower), plog_end_offset(leader));
	assert_int_equal(walk_gaps(follower, &fgap), leader_gaps);
	same_read(leader, follower, gap_off);
	/* More data after the reopen lands after the gaps. */
	gap_leader_fill(f, leader);
	replicate(f, leader, follower, 900);   /* below the follower's segment.bytes */
	assert_int_equal(plog_close(leader), SL_OK);
	assert_int_equal(plog_close(follower), SL_OK);

	/* The same batches, byte for byte (segment boundaries may differ). */
	size_t nx = concat_logs(f->d.part, x, sizeof(x));
	size_t ny = concat_logs(fdir, y, sizeof(y));
	assert_true(nx > 0);
	assert_int_equal(nx, ny);
	assert_memory_equal(x, y, nx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_LOG_TEST(test_bytes_identical),
		IOT_LOG_TEST(test_refused),
		IOT_LOG_TEST(test_reopen_and_roll),
		IOT_LOG_TEST(test_compacted_leader_gaps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
