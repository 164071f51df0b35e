/*
 * io_testutil.h — helpers shared by the storage tests (test_index.c,
 * test_segment.c, test_plog.c, test_recovery.c, test_retention.c,
 * test_producer_ids.c, test_producer_state.c): temporary directories, the
 * cmocka fixtures (iot_dir_fixture, iot_log_fixture), a record-batch
 * builder on top of core/batch_build.h, a ring, synchronous append
 * helpers, a "crash image" copier and a manual CQE dispatcher that can
 * reorder or alter completions.
 *
 * Everything is static inline so each test executable takes what it uses.
 * Include after <cmocka.h>.
 */
#ifndef SL_TESTS_IO_TESTUTIL_H
#define SL_TESTS_IO_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "batch_build.h"
#include "bytes.h"
#include "crc32c.h"
#include "plog.h"
#include "ring.h"

#define IOT_PATH_MAX 512
#define IOT_DRIVE_TURNS_MAX 1000000

/* ---- temporary directories ---- */

struct iot_dir {
	char base[IOT_PATH_MAX];    /* mkdtemp result */
	char part[IOT_PATH_MAX + 8]; /* base/t-0: the partition directory */
	char copy[IOT_PATH_MAX + 8]; /* base/copy: for crash images, not created */
};

static inline void iot_dir_make(struct iot_dir *d)
{
	snprintf(d->base, sizeof(d->base), "/tmp/sl-io-test-XXXXXX");
	assert_non_null(mkdtemp(d->base));
	snprintf(d->part, sizeof(d->part), "%s/t-0", d->base);
	snprintf(d->copy, sizeof(d->copy), "%s/copy", d->base);
}

/* Removes every file of `path` (one level) and the directory itself. */
static inline void iot_rm_flat(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *de;
	char p[IOT_PATH_MAX + 300];

	if (dir == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int n = snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(p))
			continue;
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			iot_rm_flat(p);
		else
			unlink(p);
	}
	closedir(dir);
	rmdir(path);
}

static inline void iot_dir_remove(struct iot_dir *d)
{
	iot_rm_flat(d->base);
}

static inline void iot_path(char *out, const char *dir, int64_t base, const char *ext)
{
	int n = snprintf(out, IOT_PATH_MAX, "%s/%020lld%s", dir, (long long)base, ext);
	assert_true(n > 0 && n < IOT_PATH_MAX);
}

static inline int iot_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static inline int64_t iot_file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return -1;
	return st.st_size;
}

/* Reads a whole file (at most cap bytes); returns its size. */
static inline size_t iot_read_file(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

static inline void iot_write_at(const char *path, int64_t pos, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, pos), (ssize_t)len);
	close(fd);
}

static inline void iot_flip(const char *path, int64_t pos)
{
	uint8_t b;
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, pos), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, pos), 1);
	close(fd);
}

static inline void iot_truncate(const char *path, int64_t size)
{
	assert_int_equal(truncate(path, size), 0);
}

/* Copies every regular file of dir `from` into a new directory `to`. */
static inline void iot_copy_dir(const char *from, const char *to)
{
	DIR *dir = opendir(from);
	struct dirent *de;
	static uint8_t buf[1 << 16];

	assert_non_null(dir);
	assert_true(mkdir(to, 0755) == 0 || errno == EEXIST);
	while ((de = readdir(dir)) != NULL) {
		char src[IOT_PATH_MAX + 300], dst[IOT_PATH_MAX + 300];
		if (de->d_name[0] == '.')
			continue;
		int n1 = snprintf(src, sizeof(src), "%s/%s", from, de->d_name);
		int n2 = snprintf(dst, sizeof(dst), "%s/%s", to, de->d_name);
		assert_true(n1 > 0 && (size_t)n1 < sizeof(src) && n2 > 0 && (size_t)n2 < sizeof(dst));
		int in = open(src, O_RDONLY);
		int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(in >= 0 && out >= 0);
		struct stat st;
		assert_int_equal(fstat(in, &st), 0);
		ssize_t n;
		while ((n = read(in, buf, sizeof(buf))) > 0)
			assert_int_equal(write(out, buf, (size_t)n), n);
		/* Keep the size (a preallocated, zero-filled tail reads as zeros). */
		assert_int_equal(ftruncate(out, st.st_size), 0);
		close(in);
		close(out);
	}
	closedir(dir);
}

/* Rewrites the partition checkpoint as a crash would have left it. */
static inline void iot_set_checkpoint(const char *dir, int64_t start, int64_t rp, int clean)
{
	char p[IOT_PATH_MAX + 64];
	int n = snprintf(p, sizeof(p), "%s/%s", dir, PLOG_CHECKPOINT_NAME);
	assert_true(n > 0 && (size_t)n < sizeof(p));
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fprintf(f, "0\n3\nlog_start_offset %lld\nrecovery_point %lld\nclean_shutdown %d\n",
		(long long)start, (long long)rp, clean);
	fclose(f);
}

/* ---- batches ---- */

/*
 * Builds an uncompressed v2 batch of `records` records at buf with
 * core/batch_build.h: record i has timestamp ts0 + i (max = ts0 + records
 * - 1), a null key and a value of `value_bytes` bytes all equal to
 * fill + i. baseOffset 0. Returns the size.
 */
static inline size_t iot_batch(uint8_t *buf, size_t cap, int32_t records, int64_t ts0,
			       int32_t value_bytes, uint8_t fill)
{
	struct batch_builder b;
	struct batch_header h;
	uint8_t *value;

	assert_true(records >= 1 && value_bytes >= 0);
	value = malloc((size_t)value_bytes + 1);
	assert_non_null(value);
	batch_builder_init(&b, buf, cap);
	for (int32_t i = 0; i < records; i++) {
		memset(value, fill + i, (size_t)value_bytes);
		assert_int_equal(batch_builder_add(&b, ts0 + i, NULL, -1, value, value_bytes, NULL, 0),
				 SL_OK);
	}
	free(value);
	size_t len = batch_builder_finish(&b);
	assert_int_equal(batch_validate(buf, len, BATCH_CHECK_ALL, &h), SL_OK);
	assert_int_equal(h.records_count, records);
	assert_int_equal(h.max_timestamp, ts0 + records - 1);
	return len;
}

/* ---- ring and appends ---- */

/* SL_TEST_RING_PLAIN=1 in the environment runs the tests on a plain ring. */
static inline void iot_ring_init(struct ring *r)
{
	const char *plain = getenv("SL_TEST_RING_PLAIN");
	int rc = ring_init(r, 256, plain != NULL && plain[0] == '1' ? RING_SETUP_PLAIN
								 : RING_SETUP_BEST);
	if (rc != 0) {
		fprintf(stderr, "io_uring unavailable (%s): skipping\n", strerror(-rc));
		exit(77);
	}
}

/* Drives the ring until *flag is non-zero. */
static inline void iot_drive(struct ring *r, const int *flag)
{
	for (int n = 0; !*flag; n++) {
		assert_true(n < IOT_DRIVE_TURNS_MAX);
		assert_true(ring_wait(r, 1, 1000000000LL) >= 0);
	}
}

/* ---- fixtures ---- */

/*
 * The cmocka fixtures the storage tests share. Tests on files only (index,
 * producer ids) take iot_dir_fixture: a temporary directory, open as
 * `dirfd`. Tests on a partition log take iot_log_fixture: a temporary
 * directory, a ring and a default plog config; a test that keeps more
 * state embeds it as `io` and calls iot_log_fixture_init / _fini from its
 * own setup and teardown. Teardown checks that no I/O is left in flight
 * and removes the directory.
 */
struct iot_dir_fixture {
	struct iot_dir d;
	int dirfd;
};

struct iot_log_fixture {
	struct iot_dir d;
	struct ring ring;
	struct plog_config cfg;
};

static inline int iot_dir_setup(void **state)
{
	struct iot_dir_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	iot_dir_make(&f->d);
	f->dirfd = open(f->d.base, O_RDONLY | O_DIRECTORY);
	assert_true(f->dirfd >= 0);
	*state = f;
	return 0;
}

static inline int iot_dir_teardown(void **state)
{
	struct iot_dir_fixture *f = *state;
	close(f->dirfd);
	iot_dir_remove(&f->d);
	free(f);
	return 0;
}

static inline void iot_log_fixture_init(struct iot_log_fixture *f)
{
	iot_dir_make(&f->d);
	iot_ring_init(&f->ring);
	plog_config_default(&f->cfg);
}

static inline void iot_log_fixture_fini(struct iot_log_fixture *f)
{
	assert_int_equal(f->ring.inflight, 0);
	ring_exit(&f->ring);
	iot_dir_remove(&f->d);
}

static inline int iot_log_setup(void **state)
{
	struct iot_log_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	iot_log_fixture_init(f);
	*state = f;
	return 0;
}

static inline int iot_log_teardown(void **state)
{
	struct iot_log_fixture *f = *state;
	iot_log_fixture_fini(f);
	free(f);
	return 0;
}

/* A test run with the file-only or the partition-log fixture. */
#define IOT_DIR_TEST(fn) cmocka_unit_test_setup_teardown(fn, iot_dir_setup, iot_dir_teardown)
#define IOT_LOG_TEST(fn) cmocka_unit_test_setup_teardown(fn, iot_log_setup, iot_log_teardown)

/* An append owned by a test, with its own buffer and completion record. */
struct iot_app {
	struct plog_append a;
	uint8_t *buf;
	int done;
	enum sl_err res;
	int64_t flushed_at_done;    /* plog_flushed_offset seen in done */
	int64_t end_at_done;        /* plog_end_offset seen in done */
	int seq;                    /* completion sequence number */
	int *seq_counter;
	struct plog *log;
};

static inline void iot_app_done(struct plog_append *a)
{
	struct iot_app *t = (struct iot_app *)(void *)((char *)a - offsetof(struct iot_app, a));
	t->done = 1;
	t->res = a->res;
	t->flushed_at_done = plog_flushed_offset(t->log);
	t->end_at_done = plog_end_offset(t->log);
	if (t->seq_counter != NULL)
		t->seq = (*t->seq_counter)++;
}

/* Fills t with a copy of len bytes of buf and submits it. */
static inline enum sl_err iot_app_submit(struct plog *log, struct iot_app *t, const uint8_t *buf,
					 size_t len, int64_t now_ms, int *seq_counter)
{
	memset(t, 0, sizeof(*t));
	t->buf = malloc(len);
	assert_non_null(t->buf);
	memcpy(t->buf, buf, len);
	t->a.buf = t->buf;
	t->a.len = len;
	t->a.done = iot_app_done;
	t->log = log;
	t->seq = -1;
	t->seq_counter = seq_counter;
	enum sl_err err = plog_append(log, &t->a, now_ms);
	if (err != SL_OK) {
		free(t->buf);
		t->buf = NULL;
	}
	return err;
}

static inline void iot_app_free(struct iot_app *t)
{
	free(t->buf);
	t->buf = NULL;
}

/* Appends one batch of `records` records (timestamps from ts0) and waits. */
static inline int64_t iot_append_sync(struct plog *log, struct ring *r, int32_t records,
				      int64_t ts0, int32_t value_bytes, int64_t now_ms)
{
	static uint8_t buf[1 << 20];
	struct iot_app t;
	size_t len = iot_batch(buf, sizeof(buf), records, ts0, value_bytes, (uint8_t)ts0);

	assert_int_equal(iot_app_submit(log, &t, buf, len, now_ms, NULL), SL_OK);
	iot_drive(r, &t.done);
	assert_int_equal(t.res, SL_OK);
	int64_t base = t.a.base_offset;
	iot_app_free(&t);
	return base;
}

/* Reads [offset, ...) with plog_read and preads the bytes; returns len. */
static inline uint32_t iot_read(struct plog *log, int64_t offset, uint32_t max_bytes,
				int64_t max_offset, uint8_t *out, size_t cap,
				struct plog_slice *slice_out)
{
	struct plog_slice s;
	assert_int_equal(plog_read(log, offset, max_bytes, max_offset, &s), SL_OK);
	if (s.len > 0) {
		assert_true(s.len <= cap);
		assert_int_equal(pread(s.fd, out, s.len, s.file_pos), (ssize_t)s.len);
	}
	if (slice_out != NULL)
		*slice_out = s;
	uint32_t len = s.len;
	plog_slice_release(&s);
	return len;
}

/*
 * Checks that every offset in [start, end) reads back as valid batches
 * (CRC checked) with increasing offsets, walking the whole log. A read
 * inside a gap between segments (a lost file) returns the next batch.
 */
static inline void iot_verify_log(struct plog *log)
{
	static uint8_t buf[1 << 22];
	int64_t off = plog_start_offset(log);
	int64_t end = plog_end_offset(log);

	for (int n = 0; off < end; n++) {
		struct plog_slice s;
		assert_true(n < 1000000);
		assert_int_equal(plog_read(log, off, 1 << 20, INT64_MAX, &s), SL_OK);
		assert_true(s.len > 0 && s.len <= sizeof(buf));
		assert_int_equal(pread(s.fd, buf, s.len, s.file_pos), (ssize_t)s.len);
		assert_true(s.last_offset >= off && s.first_offset <= s.last_offset);
		if (s.first_offset > off)
			assert_int_equal(s.file_pos, 0);  /* a gap: the next segment's start */
		struct batch_iter it;
		struct batch_header h;
		const uint8_t *b;
		int64_t expect = s.first_offset;
		batch_iter_init(&it, buf, s.len, BATCH_CHECK_ALL);
		while (batch_iter_next(&it, &h, &b) == SL_OK) {
			assert_true(h.base_offset >= expect);
			expect = batch_last_offset(&h) + 1;
		}
		assert_int_equal(it.pos, s.len);
		assert_int_equal(expect - 1, s.last_offset);
		off = s.last_offset + 1;
		plog_slice_release(&s);
	}
}

/* ---- manual completion control ---- */

struct iot_cqe {
	uint64_t user_data;
	int res;
	uint32_t flags;
};

/* Submits and reaps exactly `want` CQEs (our ops) without dispatching them. */
static inline void iot_reap(struct ring *r, unsigned want, struct iot_cqe *out)
{
	unsigned have = 0;

	for (int n = 0; have < want; n++) {
		struct io_uring_cqe *cqe;
		assert_true(n < IOT_DRIVE_TURNS_MAX);
		assert_true(io_uring_submit_and_wait(&r->uring, 1) >= 0);
		while (have < want && io_uring_peek_cqe(&r->uring, &cqe) == 0 && cqe != NULL) {
			uint64_t ud = cqe->user_data;
			if (ud >= RING_UDATA_RESERVED) {
				out[have].user_data = ud;
				out[have].res = cqe->res;
				out[have].flags = cqe->flags;
				have++;
			}
			io_uring_cqe_seen(&r->uring, cqe);
		}
	}
}

/* Dispatches one reaped CQE as ring_dispatch would, with res replaced. */
static inline void iot_dispatch(struct ring *r, const struct iot_cqe *c, int res)
{
	struct ring_op *op = (struct ring_op *)(uintptr_t)c->user_data;
	if (!(c->flags & IORING_CQE_F_MORE)) {
		assert_true(r->inflight > 0);
		r->inflight--;
	}
	op->done(op, res, c->flags);
}

#endif
