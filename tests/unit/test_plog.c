/*
 * test_plog.c — the partition log's append pipeline and reads (io/plog.c,
 * io/plog_read.c): offsets assigned across many appends in flight,
 * completions in append order even when the kernel completes out of order
 * (a manual CQE dispatcher reorders them), short writes, write errors and
 * the failed state, the bounds (SL_EAGAIN, SL_EINVAL), "append = visible",
 * the flush policies (message count, time) and group commit (several
 * waiters released by one fdatasync, counted through plog_stats), write
 * coalescing (appends queued behind the write in flight go out as one
 * writev: short writevs, a failing one, the iovec / byte / segment bounds,
 * two write slots completing out of order, appends made from callbacks), reads
 * against a model (max_bytes, KIP-74, max_offset, segment boundary,
 * SL_ERANGE), timestamp lookups and the header scan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "io_testutil.h"

static void test_offsets_many_inflight(void **state)
{
	struct iot_log_fixture *f = *state;
	static struct iot_app apps[200];
	static uint8_t buf[8192];
	struct plog *log;
	int seq = 0;
	int64_t expect = 0;

	f->cfg.segment_bytes = 64 * 1024;  /* several rolls with writes in flight */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int wave = 0; wave < 200; wave += 40) {
		int64_t end_before = plog_end_offset(log);
		for (int i = wave; i < wave + 40; i++) {
			int32_t records = 1 + i % 7;
			size_t len = iot_batch(buf, sizeof(buf), records, i, 200 + i, (uint8_t)i);
			assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
			assert_int_equal(apps[i].a.base_offset, expect);
			assert_int_equal(apps[i].a.last_offset, expect + records - 1);
			assert_int_equal((int64_t)be64_load(apps[i].buf), expect);  /* rewritten */
			expect += records;
		}
		/* Append = visible: nothing is visible before its write completed. */
		assert_int_equal(plog_end_offset(log), end_before);
		assert_int_equal(plog_next_offset(log), expect);
		struct plog_slice s;
		assert_int_equal(plog_read(log, end_before, 1 << 20, INT64_MAX, &s), SL_OK);
		assert_int_equal(s.len, 0);
		assert_int_equal(plog_read(log, end_before + 1, 1 << 20, INT64_MAX, &s), SL_ERANGE);
		iot_drive(&f->ring, &apps[wave + 39].done);
		for (int i = wave; i < wave + 40; i++) {
			assert_true(apps[i].done);
			assert_int_equal(apps[i].res, SL_OK);
			assert_int_equal(apps[i].seq, i);  /* completion order = append order */
			/* Visible by the time done runs. */
			assert_true(apps[i].end_at_done >= apps[i].a.last_offset + 1);
			iot_app_free(&apps[i]);
		}
	}
	assert_int_equal(plog_end_offset(log), expect);
	assert_true(plog_segment_count(log) > 3);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_completion_order_reversed(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app apps[8];
	struct iot_cqe cqes[8];
	static uint8_t buf[4096];
	struct plog *log;
	int seq = 0;

	f->cfg.writes_inflight_max = 8;  /* one write per append: 8 CQEs to reorder */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 8; i++) {
		size_t len = iot_batch(buf, sizeof(buf), 2, i, 100, (uint8_t)i);
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
	}
	iot_reap(&f->ring, 8, cqes);
	/* The kernel "completes" them last to first. */
	for (int i = 7; i >= 1; i--) {
		iot_dispatch(&f->ring, &cqes[i], cqes[i].res);
		assert_int_equal(seq, 0);                 /* nothing delivered early */
		assert_int_equal(plog_end_offset(log), 0); /* nothing visible early */
	}
	iot_dispatch(&f->ring, &cqes[0], cqes[0].res);
	assert_int_equal(seq, 8);
	assert_int_equal(plog_end_offset(log), 16);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(apps[i].seq, i);
		assert_int_equal(apps[i].res, SL_OK);
		iot_app_free(&apps[i]);
	}
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_short_write(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app t;
	struct iot_cqe c;
	static uint8_t buf[4096], got[4096];
	struct plog *log;

	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	size_t len = iot_batch(buf, sizeof(buf), 4, 0, 300, 7);
	assert_int_equal(iot_app_submit(log, &t, buf, len, 0, NULL), SL_OK);
	iot_reap(&f->ring, 1, &c);
	assert_int_equal(c.res, (int)len);
	iot_dispatch(&f->ring, &c, 100);  /* pretend only 100 bytes went */
	assert_false(t.done);
	assert_int_equal(plog_stats(log)->writes_resubmitted, 1);
	iot_drive(&f->ring, &t.done);
	assert_int_equal(t.res, SL_OK);
	assert_int_equal(iot_read(log, 0, 1 << 20, INT64_MAX, got, sizeof(got), NULL), len);
	assert_memory_equal(got, t.buf, len);
	iot_app_free(&t);
	assert_int_equal(plog_close(log), SL_OK);
}

static void flush_done_count(struct plog_flush_waiter *w, enum sl_err res);

struct waiter {
	struct plog_flush_waiter w;
	int done;
	enum sl_err res;
	int seq;
	int *seq_counter;
};

static void flush_done_count(struct plog_flush_waiter *w, enum sl_err res)
{
	struct waiter *t = (struct waiter *)(void *)w;
	t->done = 1;
	t->res = res;
	if (t->seq_counter != NULL)
		t->seq = (*t->seq_counter)++;
}

static void test_write_error_fails_log(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app apps[3], more;
	struct iot_cqe cqes[3];
	static uint8_t buf[4096], got[4096];
	struct plog *log;
	int seq = 0;

	f->cfg.writes_inflight_max = 3;  /* one write per append */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 3; i++) {
		size_t len = iot_batch(buf, sizeof(buf), 1, i, 50, (uint8_t)i);
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
	}
	iot_reap(&f->ring, 3, cqes);
	iot_dispatch(&f->ring, &cqes[2], cqes[2].res);
	iot_dispatch(&f->ring, &cqes[1], -EIO);
	assert_int_equal(seq, 0);
	assert_false(plog_failed(log));  /* the failure is seen in order */
	iot_dispatch(&f->ring, &cqes[0], cqes[0].res);
	assert_int_equal(seq, 3);
	assert_int_equal(apps[0].res, SL_OK);
	assert_int_equal(apps[1].res, SL_EIO);
	assert_int_equal(apps[2].res, SL_EIO);  /* after a hole: never visible */
	assert_true(plog_failed(log));
	assert_int_equal(plog_end_offset(log), 1);
	/* Later appends and flush waits fail at once; reads still work. */
	size_t len = iot_batch(buf, sizeof(buf), 1, 9, 50, 9);
	assert_int_equal(iot_app_submit(log, &more, buf, len, 0, NULL), SL_EIO);
	struct waiter w = { .w.done = flush_done_count };
	enum plog_flush_state st;
	assert_int_equal(plog_flush_wait(log, &w.w, &st), SL_EIO);
	assert_true(iot_read(log, 0, 1 << 20, INT64_MAX, got, sizeof(got), NULL) > 0);
	for (int i = 0; i < 3; i++)
		iot_app_free(&apps[i]);
	assert_int_equal(plog_close(log), SL_EIO);  /* no clean marker */

	/* Reopen: recovery scans (unclean) and the log is whole again. */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_false(plog_stats(log)->recovery_clean);
	assert_true(plog_end_offset(log) >= 1);
	assert_false(plog_failed(log));
	iot_append_sync(log, &f->ring, 1, 10, 10, 0);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_bounds(void **state)
{
	struct iot_log_fixture *f = *state;
	static struct iot_app apps[PLOG_APPENDS_INFLIGHT_MAX + 1];
	static uint8_t buf[4096];
	struct plog *log;
	struct plog_append a = { 0 };

	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	size_t len = iot_batch(buf, sizeof(buf), 1, 0, 10, 0);
	for (int i = 0; i < PLOG_APPENDS_INFLIGHT_MAX; i++)
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, NULL), SL_OK);
	assert_int_equal(iot_app_submit(log, &apps[PLOG_APPENDS_INFLIGHT_MAX], buf, len, 0, NULL),
			 SL_EAGAIN);
	iot_drive(&f->ring, &apps[PLOG_APPENDS_INFLIGHT_MAX - 1].done);
	for (int i = 0; i < PLOG_APPENDS_INFLIGHT_MAX; i++) {
		assert_int_equal(apps[i].res, SL_OK);
		iot_app_free(&apps[i]);
	}
	assert_int_equal(plog_end_offset(log), PLOG_APPENDS_INFLIGHT_MAX);

	/* Not whole batches. */
	a.done = iot_app_done;
	a.buf = buf;
	a.len = 0;
	assert_int_equal(plog_append(log, &a, 0), SL_EINVAL);
	a.len = len - 1;
	assert_int_equal(plog_append(log, &a, 0), SL_EINVAL);
	static uint8_t two[8192];
	memcpy(two, buf, len);
	memcpy(two + len, buf, len);
	a.buf = two;
	a.len = len + 30;
	assert_int_equal(plog_append(log, &a, 0), SL_EINVAL);
	memset(two, 0xff, 100);
	a.len = 100;
	assert_int_equal(plog_append(log, &a, 0), SL_EINVAL);
	assert_int_equal(plog_next_offset(log), PLOG_APPENDS_INFLIGHT_MAX);
	assert_int_equal(plog_close(log), SL_OK);
}

/* ---- coalesced writes (write-side group commit) ---- */

/* Each append (one batch each) reads back byte for byte. */
static void check_apps_read_back(struct plog *log, struct iot_app *apps, int n)
{
	static uint8_t got[PLOG_WRITE_BYTES_MAX + 8192];

	for (int i = 0; i < n; i++) {
		uint32_t len = iot_read(log, apps[i].a.base_offset, 1, INT64_MAX, got, sizeof(got),
					NULL);
		assert_int_equal(len, apps[i].a.len);
		assert_memory_equal(got, apps[i].buf, len);
	}
}

static void test_coalesce_burst(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app apps[16];
	struct iot_cqe c;
	static uint8_t buf[8192];
	struct plog *log;
	int seq = 0;
	int rest = 0;

	/* Default: one write in flight. */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 16; i++) {
		size_t len = iot_batch(buf, sizeof(buf), 1 + i % 3, i, 100 + 37 * i, (uint8_t)i);
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
		/* The first append's write starts at once (no added latency);
		 * the others queue behind it. */
		assert_int_equal(plog_stats(log)->writes, 1);
		if (i > 0)
			rest += (int)len;
	}
	assert_int_equal(f->ring.inflight, 1);
	iot_reap(&f->ring, 1, &c);
	assert_int_equal(c.res, (int)apps[0].a.len);  /* the first append alone */
	iot_dispatch(&f->ring, &c, c.res);
	assert_int_equal(seq, 1);
	assert_int_equal(plog_end_offset(log), apps[0].a.last_offset + 1);
	/* The fifteen queued appends go out as one writev. */
	assert_int_equal(plog_stats(log)->writes, 2);
	assert_int_equal(f->ring.inflight, 1);
	iot_reap(&f->ring, 1, &c);
	assert_int_equal(c.res, rest);
	assert_int_equal(plog_end_offset(log), apps[0].a.last_offset + 1);  /* not before */
	iot_dispatch(&f->ring, &c, c.res);
	assert_int_equal(seq, 16);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(apps[i].res, SL_OK);
		assert_int_equal(apps[i].seq, i);
		assert_true(apps[i].end_at_done >= apps[i].a.last_offset + 1);
	}
	assert_int_equal(plog_end_offset(log), apps[15].a.last_offset + 1);
	assert_int_equal(plog_stats(log)->appends, 16);
	assert_int_equal(plog_stats(log)->writes, 2);
	check_apps_read_back(log, apps, 16);
	iot_verify_log(log);
	for (int i = 0; i < 16; i++)
		iot_app_free(&apps[i]);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_coalesce_short_writev(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app apps[5];
	struct iot_cqe c;
	static uint8_t buf[4096];
	struct plog *log;
	int seq = 0;
	int len[5];

	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 5; i++) {
		len[i] = (int)iot_batch(buf, sizeof(buf), 2, i, 150 + 10 * i, (uint8_t)(i + 1));
		assert_int_equal(iot_app_submit(log, &apps[i], buf, (size_t)len[i], 0, &seq), SL_OK);
	}
	iot_reap(&f->ring, 1, &c);
	iot_dispatch(&f->ring, &c, c.res);
	assert_int_equal(seq, 1);
	/* The writev of appends 1..4 stops 7 bytes into append 2. */
	iot_reap(&f->ring, 1, &c);
	assert_int_equal(c.res, len[1] + len[2] + len[3] + len[4]);
	iot_dispatch(&f->ring, &c, len[1] + 7);
	assert_int_equal(seq, 1);  /* nothing delivered: the write is not over */
	assert_int_equal(plog_end_offset(log), 2);
	assert_int_equal(plog_stats(log)->writes_resubmitted, 1);
	/* The rest is resubmitted from there; it stops at an iovec boundary. */
	iot_reap(&f->ring, 1, &c);
	assert_int_equal(c.res, len[2] - 7 + len[3] + len[4]);
	iot_dispatch(&f->ring, &c, len[2] - 7);
	assert_int_equal(seq, 1);
	assert_int_equal(plog_stats(log)->writes_resubmitted, 2);
	/* Interrupted: the same rest again. */
	iot_reap(&f->ring, 1, &c);
	assert_int_equal(c.res, len[3] + len[4]);
	iot_dispatch(&f->ring, &c, -EINTR);
	iot_reap(&f->ring, 1, &c);
	assert_int_equal(c.res, len[3] + len[4]);
	iot_dispatch(&f->ring, &c, c.res);
	assert_int_equal(seq, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(apps[i].res, SL_OK);
		assert_int_equal(apps[i].seq, i);
	}
	assert_int_equal(plog_stats(log)->writes, 2);
	assert_int_equal(plog_stats(log)->writes_resubmitted, 3);
	check_apps_read_back(log, apps, 5);
	iot_verify_log(log);
	for (int i = 0; i < 5; i++)
		iot_app_free(&apps[i]);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_coalesce_write_error(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app apps[6];
	struct iot_cqe c;
	static uint8_t buf[4096];
	struct plog *log;
	int seq = 0;

	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 4; i++) {
		size_t len = iot_batch(buf, sizeof(buf), 1, i, 80, (uint8_t)i);
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
	}
	iot_reap(&f->ring, 1, &c);
	iot_dispatch(&f->ring, &c, c.res);
	assert_int_equal(plog_stats(log)->writes, 2);  /* appends 1..3 in flight */
	/* Two more queue behind that writev. */
	for (int i = 4; i < 6; i++) {
		size_t len = iot_batch(buf, sizeof(buf), 1, i, 80, (uint8_t)i);
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
	}
	assert_int_equal(plog_stats(log)->writes, 2);
	/* The writev writes exactly append 1, then fails. */
	iot_reap(&f->ring, 1, &c);
	iot_dispatch(&f->ring, &c, (int)apps[1].a.len);
	assert_false(plog_failed(log));
	iot_reap(&f->ring, 1, &c);
	iot_dispatch(&f->ring, &c, -EIO);
	assert_int_equal(seq, 6);
	assert_true(plog_failed(log));
	assert_int_equal(apps[0].res, SL_OK);
	assert_int_equal(apps[1].res, SL_OK);   /* wholly written before the failure */
	assert_int_equal(apps[2].res, SL_EIO);
	assert_int_equal(apps[3].res, SL_EIO);
	assert_int_equal(apps[4].res, SL_EIO);  /* queued: never written */
	assert_int_equal(apps[5].res, SL_EIO);
	for (int i = 0; i < 6; i++)
		assert_int_equal(apps[i].seq, i);
	assert_int_equal(plog_stats(log)->writes, 2);
	assert_int_equal(f->ring.inflight, 0);
	assert_int_equal(plog_end_offset(log), 2);
	check_apps_read_back(log, apps, 2);
	for (int i = 0; i < 6; i++)
		iot_app_free(&apps[i]);
	assert_int_equal(plog_close(log), SL_EIO);

	/* Reopen: the two visible appends survive; appending works again. */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_true(plog_end_offset(log) >= 2);
	iot_append_sync(log, &f->ring, 1, 10, 10, 0);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

/* Appends n copies of a len-byte batch at once and drives them all. */
static void append_burst(struct iot_log_fixture *f, struct plog *log, struct iot_app *apps,
			 int n, const uint8_t *buf, size_t len)
{
	int seq = 0;

	for (int i = 0; i < n; i++)
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
	iot_drive(&f->ring, &apps[n - 1].done);
	for (int i = 0; i < n; i++) {
		assert_int_equal(apps[i].res, SL_OK);
		assert_int_equal(apps[i].seq, i);
	}
}

static void test_coalesce_bounds(void **state)
{
	struct iot_log_fixture *f = *state;
	enum { N_IOV = PLOG_WRITE_IOVS_MAX + 6 };
	static struct iot_app apps[N_IOV];
	static uint8_t buf[PLOG_WRITE_BYTES_MAX / 3 + 4096];
	static uint8_t big[PLOG_WRITE_BYTES_MAX + 4096];
	struct plog *log;

	_Static_assert(N_IOV <= PLOG_APPENDS_INFLIGHT_MAX, "fits in flight");
	f->cfg.segment_bytes = 1 << 28;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	/* Iovec cap: 1 alone, then PLOG_WRITE_IOVS_MAX, then the last 5. */
	size_t len = iot_batch(buf, sizeof(buf), 1, 0, 30, 1);
	append_burst(f, log, apps, N_IOV, buf, len);
	assert_int_equal(plog_stats(log)->writes, 3);
	check_apps_read_back(log, apps, N_IOV);
	for (int i = 0; i < N_IOV; i++)
		iot_app_free(&apps[i]);

	/* Byte cap: appends of just over a third of it go two per writev. */
	len = iot_batch(buf, sizeof(buf), 1, 0, PLOG_WRITE_BYTES_MAX / 3 + 100, 2);
	assert_true(2 * len <= PLOG_WRITE_BYTES_MAX && 3 * len > PLOG_WRITE_BYTES_MAX);
	append_burst(f, log, apps, 7, buf, len);
	assert_int_equal(plog_stats(log)->writes, 3 + 4);
	check_apps_read_back(log, apps, 7);
	for (int i = 0; i < 7; i++)
		iot_app_free(&apps[i]);

	iot_verify_log(log);  /* (its read buffer is smaller than what follows) */

	/* An append larger than the cap still goes out (alone). */
	len = iot_batch(big, sizeof(big), 1, 0, PLOG_WRITE_BYTES_MAX + 10, 3);
	append_burst(f, log, apps, 3, big, len);
	assert_int_equal(plog_stats(log)->writes, 7 + 3);
	check_apps_read_back(log, apps, 3);
	for (int i = 0; i < 3; i++)
		iot_app_free(&apps[i]);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_coalesce_segment_boundary(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app apps[7];
	static uint8_t buf[4096];
	struct plog *log;

	size_t len = iot_batch(buf, sizeof(buf), 2, 0, 200, 4);
	f->cfg.segment_bytes = 3 * (int64_t)len;  /* three appends per segment */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	append_burst(f, log, apps, 7, buf, len);
	/* [0] alone, [1 2] rest of segment 0, [3 4 5] segment 1, [6] segment 2:
	 * a write never spans two files. */
	assert_int_equal(plog_segment_count(log), 3);
	assert_int_equal(plog_stats(log)->writes, 4);
	check_apps_read_back(log, apps, 7);
	iot_verify_log(log);
	for (int i = 0; i < 7; i++)
		iot_app_free(&apps[i]);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_coalesce_two_slots_out_of_order(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app apps[10];
	struct iot_cqe cqes[2], c;
	static uint8_t buf[4096];
	struct plog *log;
	int seq = 0;

	f->cfg.writes_inflight_max = 2;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 10; i++) {
		size_t len = iot_batch(buf, sizeof(buf), 1, i, 60 + 20 * i, (uint8_t)i);
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
	}
	assert_int_equal(plog_stats(log)->writes, 2);  /* [0] and [1]; 2..9 queue */
	iot_reap(&f->ring, 2, cqes);
	int second = cqes[0].res == (int)apps[1].a.len ? 0 : 1;
	assert_int_equal(cqes[second].res, (int)apps[1].a.len);
	assert_int_equal(cqes[1 - second].res, (int)apps[0].a.len);
	/* Append 1's write completes first: its slot takes the queued ones,
	 * but nothing is delivered or visible before append 0. */
	iot_dispatch(&f->ring, &cqes[second], cqes[second].res);
	assert_int_equal(seq, 0);
	assert_int_equal(plog_end_offset(log), 0);
	assert_int_equal(plog_stats(log)->writes, 3);
	iot_dispatch(&f->ring, &cqes[1 - second], cqes[1 - second].res);
	assert_int_equal(seq, 2);
	assert_int_equal(plog_end_offset(log), 2);
	iot_reap(&f->ring, 1, &c);
	iot_dispatch(&f->ring, &c, c.res);
	assert_int_equal(seq, 10);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(apps[i].res, SL_OK);
		assert_int_equal(apps[i].seq, i);
	}
	check_apps_read_back(log, apps, 10);
	for (int i = 0; i < 10; i++)
		iot_app_free(&apps[i]);
	assert_int_equal(plog_close(log), SL_OK);
}

/* Appends made from `done` callbacks (a produce pipeline refilling). */
enum { CHAIN_APPENDS = 150 };

struct chain_app {
	struct plog_append a;
	struct chain *ch;
	int done;
	enum sl_err res;
};

struct chain {
	struct chain_app apps[CHAIN_APPENDS];
	uint8_t *bufs[CHAIN_APPENDS];
	int submitted;
	int delivered;
	int out_of_order;
	int64_t next_base;
	struct plog *log;
};

static void chain_done(struct plog_append *a);

/* Submits the next append of the chain (a fresh batch, own buffer). */
static void chain_submit(struct chain *ch)
{
	static uint8_t buf[4096];
	int i = ch->submitted++;
	size_t len = iot_batch(buf, sizeof(buf), 1 + i % 4, i, 40 + (i * 13) % 200, (uint8_t)i);
	struct chain_app *t = &ch->apps[i];

	ch->bufs[i] = malloc(len);
	assert_non_null(ch->bufs[i]);
	memcpy(ch->bufs[i], buf, len);
	memset(t, 0, sizeof(*t));
	t->ch = ch;
	t->a.buf = ch->bufs[i];
	t->a.len = len;
	t->a.done = chain_done;
	assert_int_equal(plog_append(ch->log, &t->a, 0), SL_OK);
}

static void chain_done(struct plog_append *a)
{
	struct chain_app *t = (struct chain_app *)(void *)a;
	struct chain *ch = t->ch;

	assert_false(t->done);
	t->done = 1;
	t->res = a->res;
	if (a->base_offset != ch->next_base || plog_end_offset(ch->log) <= a->last_offset)
		ch->out_of_order++;
	ch->next_base = a->last_offset + 1;
	ch->delivered++;
	/* Each completion appends up to three more, while others are queued. */
	for (int k = 0; k < 3 && ch->submitted < CHAIN_APPENDS; k++)
		chain_submit(ch);
}

static void test_coalesce_appends_from_done(void **state)
{
	struct iot_log_fixture *f = *state;
	static struct chain ch;
	static uint8_t got[8192];
	int last_done = 0;

	memset(&ch, 0, sizeof(ch));
	f->cfg.segment_bytes = 16 * 1024;  /* rolls with writes in flight */
	assert_int_equal(plog_open(&ch.log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 4; i++)
		chain_submit(&ch);
	for (int n = 0; ch.delivered < CHAIN_APPENDS; n++) {
		assert_true(n < IOT_DRIVE_TURNS_MAX);
		assert_true(ring_wait(&f->ring, 1, 1000000000LL) >= 0);
	}
	last_done = ch.apps[CHAIN_APPENDS - 1].done;
	assert_true(last_done);
	assert_int_equal(ch.out_of_order, 0);
	assert_int_equal(plog_end_offset(ch.log), ch.next_base);
	/* Fewer writes than appends: the ones made meanwhile were coalesced. */
	assert_true(plog_stats(ch.log)->writes < CHAIN_APPENDS);
	for (int i = 0; i < CHAIN_APPENDS; i++) {
		assert_int_equal(ch.apps[i].res, SL_OK);
		uint32_t len = iot_read(ch.log, ch.apps[i].a.base_offset, 1, INT64_MAX, got,
					sizeof(got), NULL);
		assert_int_equal(len, ch.apps[i].a.len);
		assert_memory_equal(got, ch.bufs[i], len);
		free(ch.bufs[i]);
	}
	assert_true(plog_segment_count(ch.log) > 3);
	iot_verify_log(ch.log);
	assert_int_equal(plog_close(ch.log), SL_OK);
}

/* ---- reads against a model ---- */

struct mbatch {
	int64_t base, last, size, max_ts;
	uint32_t seg;
};

/* Builds a log of n batches of varied sizes; fills the model. */
static struct plog *build_model_log(struct iot_log_fixture *f, struct mbatch *m, int n)
{
	struct plog *log;
	int64_t last_ts = 0;

	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < n; i++) {
		int32_t records = 1 + (i * 7) % 5;
		int32_t value = 20 + (i * 37) % 300;
		int64_t ts0 = 1000 + 10 * i - ((i % 4 == 3) ? 25 : 0);  /* some dips */
		int64_t before = plog_size_bytes(log);
		uint32_t segs_before = plog_segment_count(log);
		m[i].base = iot_append_sync(log, &f->ring, records, ts0, value, 0);
		m[i].last = m[i].base + records - 1;
		m[i].size = plog_size_bytes(log) - before;
		m[i].max_ts = ts0 + records - 1;
		m[i].seg = plog_segment_count(log) - 1;
		if (i > 0 && plog_segment_count(log) == segs_before)
			assert_int_equal(m[i].seg, m[i - 1].seg);
		last_ts = m[i].max_ts;
	}
	(void)last_ts;
	return log;
}

/* What plog_read must return, by the rules in plog.h. */
static void model_read(const struct mbatch *m, int n, int64_t offset, uint32_t max_bytes,
		       int64_t max_offset, int64_t *len, int64_t *first, int64_t *last)
{
	int i = 0;

	*len = 0;
	while (i < n && m[i].last < offset)
		i++;
	if (i == n || offset >= max_offset || m[i].last >= max_offset)
		return;
	*first = m[i].base;
	*last = m[i].last;
	*len = m[i].size;
	for (int j = i + 1; j < n && m[j].seg == m[i].seg; j++) {
		if (m[j].last >= max_offset || *len + m[j].size > (int64_t)max_bytes)
			break;
		*len += m[j].size;
		*last = m[j].last;
	}
}

static void test_reads_model(void **state)
{
	struct iot_log_fixture *f = *state;
	enum { N = 60 };
	struct mbatch m[N];
	static const uint32_t max_bytes[] = { 0, 1, 200, 500, 1000, 2500, 5000, 1u << 20 };
	struct plog *log;

	f->cfg.segment_bytes = 6000;
	f->cfg.index_interval_bytes = 700;   /* index jumps inside reads */
	log = build_model_log(f, m, N);
	int64_t end = plog_end_offset(log);
	assert_int_equal(end, m[N - 1].last + 1);
	assert_true(plog_segment_count(log) >= 4);
	const int64_t max_offsets[] = { INT64_MAX, end, m[N / 2].base, m[N / 2].base + 1,
					m[7].last, 3 };
	for (int64_t off = 0; off <= end; off++)
		for (size_t b = 0; b < SL_ARRAY_LEN(max_bytes); b++)
			for (size_t mo = 0; mo < SL_ARRAY_LEN(max_offsets); mo++) {
				struct plog_slice s;
				int64_t len, first = -1, last = -1;
				model_read(m, N, off, max_bytes[b], max_offsets[mo], &len, &first,
					   &last);
				assert_int_equal(plog_read(log, off, max_bytes[b], max_offsets[mo], &s),
						 SL_OK);
				assert_int_equal(s.len, len);
				if (len > 0) {
					assert_int_equal(s.first_offset, first);
					assert_int_equal(s.last_offset, last);
					assert_true(s.fd >= 0);
				}
				plog_slice_release(&s);
			}
	/* max_bytes exactly at batch boundaries, and one byte short. */
	for (int i = 0; i < N; i++) {
		int64_t sum = 0;
		for (int j = i; j < N && j < i + 4 && m[j].seg == m[i].seg; j++) {
			sum += m[j].size;
			for (int64_t d = -1; d <= 0; d++) {
				struct plog_slice s;
				int64_t len, first = -1, last = -1;
				uint32_t mb = (uint32_t)(sum + d);
				model_read(m, N, m[i].base, mb, INT64_MAX, &len, &first, &last);
				assert_int_equal(len, d == 0 || j == i ? sum : sum - m[j].size);
				assert_int_equal(plog_read(log, m[i].base, mb, INT64_MAX, &s), SL_OK);
				assert_int_equal(s.len, len);
				assert_int_equal(s.last_offset, last);
				plog_slice_release(&s);
			}
		}
	}
	struct plog_slice s;
	assert_int_equal(plog_read(log, end + 1, 100, INT64_MAX, &s), SL_ERANGE);
	assert_int_equal(plog_read(log, -1, 100, INT64_MAX, &s), SL_ERANGE);
	iot_verify_log(log);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_timestamps(void **state)
{
	struct iot_log_fixture *f = *state;
	enum { N = 40 };
	struct mbatch m[N];
	struct plog *log;
	int64_t ts, off;

	f->cfg.segment_bytes = 4000;
	f->cfg.index_interval_bytes = 300;
	log = build_model_log(f, m, N);
	/* MAX_TIMESTAMP: the largest, at the first batch carrying it. */
	int best = 0;
	for (int i = 1; i < N; i++)
		if (m[i].max_ts > m[best].max_ts)
			best = i;
	assert_int_equal(plog_max_timestamp(log, &ts, &off), SL_OK);
	assert_int_equal(ts, m[best].max_ts);
	assert_int_equal(off, m[best].last);
	/* By timestamp: the first batch whose max timestamp >= ts. */
	for (int64_t t = 900; t <= m[best].max_ts + 2; t++) {
		int want = -1;
		for (int i = 0; i < N && want < 0; i++)
			if (m[i].max_ts >= t)
				want = i;
		enum sl_err err = plog_offset_for_timestamp(log, t, &off, &ts);
		if (want < 0) {
			assert_int_equal(err, SL_ENOTFOUND);
			continue;
		}
		assert_int_equal(err, SL_OK);
		assert_int_equal(off, m[want].base);
		assert_int_equal(ts, m[want].max_ts);
	}
	assert_int_equal(plog_close(log), SL_OK);

	/* The same after a clean reopen (time indexes from disk). */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_max_timestamp(log, &ts, &off), SL_OK);
	assert_int_equal(ts, m[best].max_ts);
	assert_int_equal(off, m[best].last);
	assert_int_equal(plog_offset_for_timestamp(log, m[20].max_ts, &off, &ts), SL_OK);
	assert_true(off <= m[20].base);
	assert_int_equal(plog_close(log), SL_OK);
}

struct scan_ctx {
	int n;
	int stop_at;
	int64_t bases[64];
};

static int scan_cb(void *arg, const struct batch_header *h, int fd, int64_t file_pos)
{
	struct scan_ctx *c = arg;
	uint8_t raw[BATCH_HEADER_BYTES];
	assert_int_equal(pread(fd, raw, sizeof(raw), file_pos), (ssize_t)sizeof(raw));
	assert_int_equal((int64_t)be64_load(raw), h->base_offset);
	c->bases[c->n++] = h->base_offset;
	return c->n == c->stop_at;
}

static void test_scan(void **state)
{
	struct iot_log_fixture *f = *state;
	enum { N = 30 };
	struct mbatch m[N];
	struct plog *log;
	int64_t next;

	f->cfg.segment_bytes = 3000;
	log = build_model_log(f, m, N);
	struct scan_ctx c = { .stop_at = -1 };
	assert_int_equal(plog_scan(log, m[3].base + 1, 64, scan_cb, &c, &next), SL_OK);
	assert_int_equal(c.n, N - 3);             /* across every segment */
	assert_int_equal(c.bases[0], m[3].base);  /* the batch holding the offset */
	assert_int_equal(next, plog_end_offset(log));
	struct scan_ctx c2 = { .stop_at = -1 };
	assert_int_equal(plog_scan(log, 0, 5, scan_cb, &c2, &next), SL_OK);
	assert_int_equal(c2.n, 5);                /* bounded */
	assert_int_equal(next, m[4].last + 1);
	struct scan_ctx c3 = { .stop_at = 2 };
	assert_int_equal(plog_scan(log, m[10].base, 64, scan_cb, &c3, &next), SL_OK);
	assert_int_equal(c3.n, 2);                /* the callback stopped it */
	assert_int_equal(next, m[11].last + 1);
	assert_int_equal(plog_scan(log, plog_end_offset(log) + 1, 5, scan_cb, &c3, &next),
			 SL_ERANGE);
	assert_int_equal(plog_close(log), SL_OK);
}

/* ---- flush ---- */

static void test_flush_messages_policy(void **state)
{
	struct iot_log_fixture *f = *state;
	struct iot_app apps[10];
	struct iot_cqe cqes[10];
	static uint8_t buf[4096];
	struct plog *log;
	int seq = 0;

	/* acks=1 with flush.interval.messages=1: durable before done. */
	f->cfg.flush_interval_messages = 1;
	f->cfg.writes_inflight_max = 10;  /* one write per append: 10 CQEs */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 10; i++) {
		size_t len = iot_batch(buf, sizeof(buf), 1, i, 40, (uint8_t)i);
		assert_int_equal(iot_app_submit(log, &apps[i], buf, len, 0, &seq), SL_OK);
	}
	/* All ten writes complete together: the first triggers a flush that
	 * covers it; the nine made visible meanwhile wait for the next one,
	 * which covers them all (group commit). */
	iot_reap(&f->ring, 10, cqes);
	for (int i = 0; i < 10; i++)
		iot_dispatch(&f->ring, &cqes[i], cqes[i].res);
	assert_int_equal(seq, 0);   /* none acknowledged before its fdatasync */
	assert_int_equal(plog_end_offset(log), 10);
	assert_int_equal(plog_flushed_offset(log), 0);
	iot_drive(&f->ring, &apps[9].done);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(apps[i].res, SL_OK);
		assert_int_equal(apps[i].seq, i);
		assert_true(apps[i].flushed_at_done >= apps[i].a.last_offset + 1);
		iot_app_free(&apps[i]);
	}
	assert_int_equal(plog_stats(log)->flushes, 2);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_flush_messages_interval(void **state)
{
	struct iot_log_fixture *f = *state;
	static uint8_t buf[4096];
	struct plog *log;

	f->cfg.flush_interval_messages = 5;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	for (int i = 0; i < 10; i++) {
		struct iot_app t;
		size_t len = iot_batch(buf, sizeof(buf), 1, i, 40, (uint8_t)i);
		assert_int_equal(iot_app_submit(log, &t, buf, len, 0, NULL), SL_OK);
		iot_drive(&f->ring, &t.done);
		if (i == 4 || i == 9)
			assert_true(t.flushed_at_done >= i + 1);  /* the fifth waits */
		else
			assert_int_equal(t.flushed_at_done, i < 5 ? 0 : 5);
		iot_app_free(&t);
	}
	assert_int_equal(plog_stats(log)->flushes, 2);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_group_commit_waiters(void **state)
{
	struct iot_log_fixture *f = *state;
	struct waiter w[8];
	enum plog_flush_state st;
	struct plog *log;
	int seq = 0;

	memset(w, 0, sizeof(w));
	for (int i = 0; i < 8; i++) {
		w[i].w.done = flush_done_count;
		w[i].seq_counter = &seq;
	}
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	/* Nothing appended: already durable, no callback. */
	assert_int_equal(plog_flush_wait(log, &w[0].w, &st), SL_OK);
	assert_int_equal(st, PLOG_FLUSH_DURABLE);
	for (int i = 0; i < 5; i++)
		iot_append_sync(log, &f->ring, 2, i, 30, 0);
	uint64_t fsyncs0 = plog_stats(log)->fsyncs;
	/* Five waiters, one fdatasync. */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(plog_flush_wait(log, &w[i].w, &st), SL_OK);
		assert_int_equal(st, PLOG_FLUSH_QUEUED);
		assert_false(w[i].done);  /* never called back before returning */
	}
	assert_int_equal(plog_stats(log)->flushes, 1);
	iot_drive(&f->ring, &w[4].done);
	for (int i = 0; i < 5; i++) {
		assert_true(w[i].done);
		assert_int_equal(w[i].res, SL_OK);
	}
	assert_int_equal(plog_stats(log)->flushes, 1);
	assert_int_equal(plog_stats(log)->fsyncs - fsyncs0, 1);  /* the .log only */
	assert_int_equal(plog_flushed_offset(log), 10);

	/* A waiter for data appended while a flush runs needs the next one. */
	iot_append_sync(log, &f->ring, 1, 10, 30, 0);
	assert_int_equal(plog_flush_wait(log, &w[5].w, &st), SL_OK);    /* flush #2 */
	assert_int_equal(plog_stats(log)->flushes, 2);
	struct iot_app t;
	static uint8_t buf[4096];
	size_t len = iot_batch(buf, sizeof(buf), 1, 11, 30, 1);
	assert_int_equal(iot_app_submit(log, &t, buf, len, 0, NULL), SL_OK);
	assert_int_equal(plog_flush_wait(log, &w[6].w, &st), SL_OK);    /* waits */
	assert_int_equal(st, PLOG_FLUSH_QUEUED);
	assert_int_equal(plog_stats(log)->flushes, 2);
	iot_drive(&f->ring, &w[6].done);
	assert_true(w[5].seq < w[6].seq);
	assert_int_equal(w[6].res, SL_OK);
	assert_true(t.done);
	assert_int_equal(plog_stats(log)->flushes, 3);
	assert_int_equal(plog_flushed_offset(log), 12);
	iot_app_free(&t);
	assert_int_equal(plog_close(log), SL_OK);
}

static void test_flush_time_policy_and_checkpoint(void **state)
{
	struct iot_log_fixture *f = *state;
	struct plog *log;
	char p[IOT_PATH_MAX + 64];
	char text[256];

	f->cfg.flush_interval_ms = 100;
	f->cfg.checkpoint_interval_ms = 1000;
	f->cfg.roll_ms = -1;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_next_deadline_ms(log), INT64_MAX);
	iot_append_sync(log, &f->ring, 3, 0, 10, 10);
	assert_int_equal(plog_next_deadline_ms(log), 100);
	assert_int_equal(plog_tick(log, 50), SL_OK);
	assert_int_equal(plog_stats(log)->flushes, 0);
	assert_int_equal(plog_tick(log, 100), SL_OK);
	assert_int_equal(plog_stats(log)->flushes, 1);
	for (int n = 0; plog_flushed_offset(log) < 3; n++) {
		assert_true(n < 1000);
		assert_true(ring_wait(&f->ring, 1, 1000000000LL) >= 0);
	}
	/* Recovery point moved: the checkpoint is due at ckpt time + 1000. */
	assert_int_equal(plog_next_deadline_ms(log), 1000);
	uint64_t ck = plog_stats(log)->checkpoints_written;
	assert_int_equal(plog_tick(log, 999), SL_OK);
	assert_int_equal(plog_stats(log)->checkpoints_written, ck);
	assert_int_equal(plog_tick(log, 1000), SL_OK);
	assert_int_equal(plog_stats(log)->checkpoints_written, ck + 1);
	assert_int_equal(plog_next_deadline_ms(log), INT64_MAX);
	snprintf(p, sizeof(p), "%s/%s", f->d.part, PLOG_CHECKPOINT_NAME);
	size_t n = iot_read_file(p, (uint8_t *)text, sizeof(text) - 1);
	text[n] = 0;
	assert_non_null(strstr(text, "recovery_point 3\n"));
	assert_non_null(strstr(text, "clean_shutdown 0\n"));
	assert_int_equal(plog_close(log), SL_OK);
	n = iot_read_file(p, (uint8_t *)text, sizeof(text) - 1);
	text[n] = 0;
	assert_non_null(strstr(text, "clean_shutdown 1\n"));
}

/* ---- random operations against a model ---- */

struct model {
	int64_t base[4096];
	int32_t records[4096];
	int n;
	int64_t start;
};

struct collect {
	const struct model *m;
	int idx;
	int mismatches;
};

static int collect_cb(void *arg, const struct batch_header *h, int fd, int64_t file_pos)
{
	struct collect *c = arg;
	(void)fd;
	(void)file_pos;
	/* Skip model batches wholly below the start offset. */
	while (c->idx < c->m->n && c->m->base[c->idx] + c->m->records[c->idx] <= h->base_offset)
		c->idx++;
	if (c->idx >= c->m->n || c->m->base[c->idx] != h->base_offset ||
	    c->m->records[c->idx] != h->last_offset_delta + 1)
		c->mismatches++;
	c->idx++;
	return 0;
}

static void model_check(struct plog *log, const struct model *m)
{
	int64_t end = m->n > 0 ? m->base[m->n - 1] + m->records[m->n - 1] : m->start;
	assert_int_equal(plog_end_offset(log), SL_MAX(end, m->start));
	assert_int_equal(plog_start_offset(log), m->start);
	struct collect c = { .m = m };
	int64_t next;
	assert_int_equal(plog_scan(log, m->start, 1 << 20, collect_cb, &c, &next), SL_OK);
	assert_int_equal(c.mismatches, 0);
	iot_verify_log(log);
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_ops(void **state)
{
	struct iot_log_fixture *f = *state;
	static struct iot_app apps[16];
	static uint8_t buf[8192];
	static struct model m;
	uint64_t seed = 0xfeedbeef12345ULL;
	int64_t now = 1000;
	struct plog *log;

	memset(&m, 0, sizeof(m));
	f->cfg.segment_bytes = 3000;
	f->cfg.index_interval_bytes = 250;
	f->cfg.flush_interval_messages = 7;
	f->cfg.flush_interval_ms = 50;
	f->cfg.roll_ms = 400;
	f->cfg.preallocate = 1;
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, now), SL_OK);
	for (int step = 0; step < 400; step++) {
		now += (int64_t)(xs(&seed) % 40);
		switch (xs(&seed) % 10) {
		case 0: case 1: case 2: case 3: {  /* appends in flight */
			int k = 1 + (int)(xs(&seed) % 16);
			for (int i = 0; i < k && m.n < 4000; i++) {
				int32_t rec = 1 + (int32_t)(xs(&seed) % 4);
				size_t len = iot_batch(buf, sizeof(buf), rec, now, 20 + (int32_t)(xs(&seed) % 300),
						       (uint8_t)step);
				assert_int_equal(iot_app_submit(log, &apps[i], buf, len, now, NULL), SL_OK);
				m.base[m.n] = apps[i].a.base_offset;
				m.records[m.n] = rec;
				m.n++;
				if (i == k - 1) {
					iot_drive(&f->ring, &apps[i].done);
					for (int j = 0; j < k; j++) {
						assert_int_equal(apps[j].res, SL_OK);
						iot_app_free(&apps[j]);
					}
				}
			}
			break;
		}
		case 4: {  /* truncate */
			int64_t end = plog_end_offset(log);
			if (end == m.start)
				break;
			int64_t off = m.start + (int64_t)(xs(&seed) % (uint64_t)(end - m.start));
			assert_int_equal(plog_truncate_to(log, off), SL_OK);
			while (m.n > 0 && m.base[m.n - 1] + m.records[m.n - 1] > off)
				m.n--;
			if (m.start > plog_end_offset(log))
				m.start = plog_end_offset(log);
			break;
		}
		case 5: {  /* delete records */
			int64_t end = plog_end_offset(log);
			int64_t off = m.start + (int64_t)(xs(&seed) % (uint64_t)(end - m.start + 1)) / 3;
			assert_int_equal(plog_delete_before(log, off), SL_OK);
			if (off > m.start)
				m.start = off;
			break;
		}
		case 6: {  /* tick, flush wait */
			assert_int_equal(plog_tick(log, now), SL_OK);
			struct waiter w = { .w.done = flush_done_count };
			enum plog_flush_state st;
			assert_int_equal(plog_flush_wait(log, &w.w, &st), SL_OK);
			if (st == PLOG_FLUSH_QUEUED)
				iot_drive(&f->ring, &w.done);
			assert_int_equal(plog_flushed_offset(log), plog_end_offset(log));
			break;
		}
		case 7: {  /* retention by bytes keeps the start offset in the model */
			uint32_t del = 0;
			assert_int_equal(plog_retention_enforce(log, now, INT64_MAX, &del), SL_OK);
			if (plog_start_offset(log) > m.start)
				m.start = plog_start_offset(log);
			break;
		}
		case 8: {  /* clean reopen, sometimes with the clean flag dropped */
			int64_t end = plog_end_offset(log);
			assert_int_equal(plog_close(log), SL_OK);
			if (xs(&seed) % 2)
				iot_set_checkpoint(f->d.part, m.start,
						   (int64_t)(xs(&seed) % (uint64_t)(end + 1)), 0);
			assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, now), SL_OK);
			break;
		}
		default:
			break;
		}
		if (step % 10 == 0 || step == 399)
			model_check(log, &m);
	}
	assert_int_equal(plog_close(log), SL_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_LOG_TEST(test_offsets_many_inflight),
		IOT_LOG_TEST(test_completion_order_reversed),
		IOT_LOG_TEST(test_short_write),
		IOT_LOG_TEST(test_write_error_fails_log),
		IOT_LOG_TEST(test_bounds),
		IOT_LOG_TEST(test_coalesce_burst),
		IOT_LOG_TEST(test_coalesce_short_writev),
		IOT_LOG_TEST(test_coalesce_write_error),
		IOT_LOG_TEST(test_coalesce_bounds),
		IOT_LOG_TEST(test_coalesce_segment_boundary),
		IOT_LOG_TEST(test_coalesce_two_slots_out_of_order),
		IOT_LOG_TEST(test_coalesce_appends_from_done),
		IOT_LOG_TEST(test_reads_model),
		IOT_LOG_TEST(test_timestamps),
		IOT_LOG_TEST(test_scan),
		IOT_LOG_TEST(test_flush_messages_policy),
		IOT_LOG_TEST(test_flush_messages_interval),
		IOT_LOG_TEST(test_group_commit_waiters),
		IOT_LOG_TEST(test_flush_time_policy_and_checkpoint),
		IOT_LOG_TEST(test_random_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
