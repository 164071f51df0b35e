/*
 * fuzz_recovery.c — libFuzzer target for partition-log recovery (io/plog.h,
 * io/segment.c): a valid log with a torn tail of arbitrary bytes must open,
 * keep every valid batch, and take appends again.
 *
 * Once per process (LLVMFuzzerInitialize) a template partition is written
 * with plog itself: FUZZ_REC_BATCHES uncompressed batches from
 * core/batch_build.h (keys, values, headers, varied sizes) in segments of
 * FUZZ_REC_SEGMENT_BYTES, so there are sealed segments and an active one,
 * with offset and time index entries; it is closed cleanly and its files
 * kept in memory.
 *
 * Per input:
 *   byte 0  mode: bits 0-1 the checkpoint (0 the clean one plog_close wrote,
 *           1 unclean with recovery point = the valid end, 2 unclean with
 *           recovery point 0, 3 no checkpoint file); bit 2 preallocate on
 *           reopen; bit 3 delete the active segment's .index; bit 4
 *           recompute the CRC of each batch in the tail whose header parses
 *           (so mutations reach the offset and length checks behind the CRC)
 *   rest    appended to the active segment's .log: the torn tail
 * The template files are written to a fresh directory, the tail appended,
 * and then:
 *   1. plog_open succeeds (a torn tail is never fatal);
 *   2. start offset 0, end offset >= the template's end offset (a tail may
 *      hold more whole valid batches, never fewer);
 *   3. every batch from start to end reads back and passes the check
 *      recovery promises (batch_validate with BATCH_CHECK_CRC: header and
 *      CRC; records are not walked, as in Kafka: a batch whose CRC holds was
 *      validated in full when it was produced), offsets strictly increasing;
 *   4. an append lands at the end offset and becomes visible;
 *   5. plog_close succeeds, and a second plog_open is clean with the same
 *      end offset.
 * A failed property aborts with a message. Logging is off (recovery warns
 * per input by design); SL_FUZZ_LOG=1 turns it on.
 *
 * Temp files live under $TMPDIR (default /tmp) in one mkdtemp directory,
 * removed at exit; run.sh points TMPDIR at /dev/shm when it can, so the
 * fsyncs of checkpoints and recovered segments cost nothing. Harness state
 * is static: one thread, one input at a time. io_uring missing: exit 77.
 */
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
#include "checkpoint.h"
#include "crc32c.h"
#include "log.h"
#include "plog.h"
#include "ring.h"
#include "sl.h"

#define FUZZ_REC_BATCHES 12
#define FUZZ_REC_SEGMENT_BYTES 1024
#define FUZZ_REC_FILES_MAX 32
#define FUZZ_REC_PATH_MAX 512
#define FUZZ_REC_BATCH_BYTES_MAX 4096
#define FUZZ_REC_DRIVE_TURNS_MAX 100000
#define FUZZ_REC_READ_BYTES_MAX (1u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_rec_file {
	char name[64];
	uint8_t *bytes;
	size_t len;
};

struct fuzz_rec {
	struct ring ring;
	struct plog_config cfg;
	char base[FUZZ_REC_PATH_MAX];       /* mkdtemp directory */
	char part[FUZZ_REC_PATH_MAX + 16];  /* base/p: the partition of one input */
	struct fuzz_rec_file files[FUZZ_REC_FILES_MAX];
	uint32_t file_count;
	int active_log;                     /* files[] index of the active .log */
	int active_index;                   /* files[] index of its .index, -1 if none */
	int64_t valid_end;                  /* the template's end offset */
	uint8_t batch[FUZZ_REC_BATCH_BYTES_MAX];  /* the batch appended after recovery */
	size_t batch_len;
	uint8_t *read_buf;                  /* FUZZ_REC_READ_BYTES_MAX */
};

static struct fuzz_rec fuzz_rec_state;

static void fuzz_fail(const char *what, enum sl_err err)
{
	fprintf(stderr, "fuzz_recovery: %s (%s)\n", what, sl_err_str(err));
	abort();
}

/* Removes every file of `path` (one level) and the directory. */
static void fuzz_rm_dir(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *de;
	char p[FUZZ_REC_PATH_MAX + 300];

	if (dir == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		int n;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		n = snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (n > 0 && (size_t)n < sizeof(p))
			unlink(p);
	}
	closedir(dir);
	rmdir(path);
}

static void fuzz_rec_cleanup(void)
{
	struct fuzz_rec *f = &fuzz_rec_state;

	fuzz_rm_dir(f->part);
	rmdir(f->base);
}

/*
 * Builds one batch of `records` records into buf (keys, values of varied
 * length, a header on odd records), timestamps from ts0. Returns its size.
 */
static size_t fuzz_rec_build(uint8_t *buf, size_t cap, int32_t records, int64_t ts0)
{
	static const uint8_t fill[256] = { 0 };
	struct batch_builder b;
	struct batch_kv hdr = { "trace", 5, "t-1", 3 };
	size_t len;

	batch_builder_init(&b, buf, cap);
	for (int32_t i = 0; i < records; i++) {
		char key[16];
		int klen = snprintf(key, sizeof(key), "k%d", (int)(ts0 + i));

		batch_builder_add(&b, ts0 + i, key, klen, fill, (int32_t)((ts0 * 7 + i * 13) % 200),
				  (i & 1) ? &hdr : NULL, (i & 1) ? 1 : 0);
	}
	len = batch_builder_finish(&b);
	SL_ASSERT(len > 0);
	return len;
}

struct fuzz_rec_app {
	struct plog_append a;
	int done;
};

static void fuzz_rec_app_done(struct plog_append *a)
{
	struct fuzz_rec_app *t = (struct fuzz_rec_app *)(void *)((char *)a -
		offsetof(struct fuzz_rec_app, a));

	t->done = 1;
}

/* Appends a copy of `len` bytes of `batch` and waits. Returns the base offset. */
static int64_t fuzz_rec_append(struct fuzz_rec *f, struct plog *log, const uint8_t *batch,
			       size_t len)
{
	struct fuzz_rec_app t;
	uint8_t *copy = malloc(len);
	enum sl_err err;

	SL_ASSERT(copy != NULL);
	memcpy(copy, batch, len);
	memset(&t, 0, sizeof(t));
	t.a.buf = copy;
	t.a.len = len;
	t.a.done = fuzz_rec_app_done;
	err = plog_append(log, &t.a, 0);
	if (err != SL_OK)
		fuzz_fail("append refused", err);
	for (int n = 0; !t.done; n++) {
		if (n >= FUZZ_REC_DRIVE_TURNS_MAX || ring_wait(&f->ring, 1, 1000000000LL) < 0)
			fuzz_fail("append never completed", SL_EIO);
	}
	if (t.a.res != SL_OK)
		fuzz_fail("append failed", t.a.res);
	free(copy);
	return t.a.base_offset;
}

/* Property 3: every visible batch reads back valid, offsets increasing. */
static void fuzz_rec_verify(struct fuzz_rec *f, struct plog *log)
{
	int64_t off = plog_start_offset(log);
	int64_t end = plog_end_offset(log);

	for (int n = 0; off < end; n++) {
		struct plog_slice s;
		struct batch_iter it;
		struct batch_header h;
		const uint8_t *b;
		int64_t expect;
		enum sl_err err = plog_read(log, off, FUZZ_REC_READ_BYTES_MAX, INT64_MAX, &s);

		if (n > FUZZ_REC_BATCHES * 64 || err != SL_OK || s.len == 0 ||
		    s.len > FUZZ_REC_READ_BYTES_MAX)
			fuzz_fail("visible offsets do not read back", err);
		if (pread(s.fd, f->read_buf, s.len, s.file_pos) != (ssize_t)s.len)
			fuzz_fail("pread of a read slice", SL_EIO);
		if (s.last_offset < off || s.first_offset > s.last_offset)
			fuzz_fail("read slice offsets out of order", SL_OK);
		expect = s.first_offset;
		batch_iter_init(&it, f->read_buf, s.len, BATCH_CHECK_CRC);
		while ((err = batch_iter_next(&it, &h, &b)) == SL_OK) {
			if (h.base_offset < expect)
				fuzz_fail("batch offsets go backwards", SL_OK);
			expect = batch_last_offset(&h) + 1;
		}
		if (err != SL_ENOTFOUND || it.pos != s.len || expect - 1 != s.last_offset)
			fuzz_fail("a visible batch is invalid", err);
		off = s.last_offset + 1;
		plog_slice_release(&s);
	}
}

/* Reads the whole template directory into f->files. */
static void fuzz_rec_snapshot(struct fuzz_rec *f)
{
	DIR *dir = opendir(f->part);
	struct dirent *de;
	char best[64] = "";

	SL_ASSERT(dir != NULL);
	f->active_index = -1;
	while ((de = readdir(dir)) != NULL) {
		struct fuzz_rec_file *file;
		char p[FUZZ_REC_PATH_MAX + 300];
		struct stat st;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		SL_ASSERT(f->file_count < FUZZ_REC_FILES_MAX);
		SL_ASSERT(strlen(de->d_name) < sizeof(file->name));
		file = &f->files[f->file_count++];
		snprintf(file->name, sizeof(file->name), "%s", de->d_name);
		snprintf(p, sizeof(p), "%s/%s", f->part, de->d_name);
		fd = open(p, O_RDONLY);
		if (fd < 0 || fstat(fd, &st) != 0)
			fuzz_fail("open template file", SL_EIO);
		file->len = (size_t)st.st_size;
		file->bytes = malloc(file->len > 0 ? file->len : 1);
		SL_ASSERT(file->bytes != NULL);
		if (pread(fd, file->bytes, file->len, 0) != (ssize_t)file->len)
			fuzz_fail("read template file", SL_EIO);
		close(fd);
		/* The active segment is the one with the largest base offset. */
		if (strstr(file->name, ".log") != NULL && strcmp(file->name, best) > 0)
			snprintf(best, sizeof(best), "%s", file->name);
	}
	closedir(dir);
	for (uint32_t i = 0; i < f->file_count; i++) {
		if (strcmp(f->files[i].name, best) == 0)
			f->active_log = (int)i;
	}
	for (uint32_t i = 0; i < f->file_count; i++) {
		if (strncmp(f->files[i].name, best, 20) == 0 &&
		    strcmp(f->files[i].name + 20, ".index") == 0)
			f->active_index = (int)i;
	}
	SL_ASSERT(best[0] != '\0');
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct fuzz_rec *f = &fuzz_rec_state;
	const char *tmp = getenv("TMPDIR");
	const char *log_env = getenv("SL_FUZZ_LOG");
	uint8_t buf[FUZZ_REC_BATCH_BYTES_MAX];
	struct plog *log;
	int rc;

	(void)argc;
	(void)argv;
	log_level_set(log_env != NULL && log_env[0] == '1' ? LOG_INFO : LOG_OFF);
	rc = ring_init(&f->ring, 64, RING_SETUP_BEST);
	if (rc != 0) {
		fprintf(stderr, "fuzz_recovery: io_uring unavailable (%s): skipping\n",
			strerror(-rc));
		exit(77);
	}
	snprintf(f->base, sizeof(f->base), "%s/sl-fuzz-recovery-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(f->base) == NULL) {
		perror(f->base);
		abort();
	}
	snprintf(f->part, sizeof(f->part), "%s/p", f->base);
	atexit(fuzz_rec_cleanup);
	f->read_buf = malloc(FUZZ_REC_READ_BYTES_MAX);
	SL_ASSERT(f->read_buf != NULL);

	plog_config_default(&f->cfg);
	f->cfg.segment_bytes = FUZZ_REC_SEGMENT_BYTES;
	f->cfg.index_interval_bytes = 100;
	f->cfg.index_size_max_bytes = 4096;
	if (plog_open(&log, &f->ring, f->part, &f->cfg, 0) != SL_OK)
		fuzz_fail("template open", SL_EIO);
	for (int i = 0; i < FUZZ_REC_BATCHES; i++) {
		size_t len = fuzz_rec_build(buf, sizeof(buf), 1 + i % 4, 1000 + 10 * i);

		(void)fuzz_rec_append(f, log, buf, len);
	}
	f->valid_end = plog_end_offset(log);
	if (plog_segment_count(log) < 2)
		fuzz_fail("template has no sealed segment", SL_OK);
	if (plog_close(log) != SL_OK)
		fuzz_fail("template close", SL_EIO);
	fuzz_rec_snapshot(f);
	fuzz_rm_dir(f->part);
	f->batch_len = fuzz_rec_build(f->batch, sizeof(f->batch), 3, 5000);
	return 0;
}

/* Mode bit 4: makes the CRC of every batch in `tail` whose header parses right. */
static void fuzz_rec_fix_crcs(uint8_t *tail, size_t len)
{
	size_t pos = 0;

	for (size_t n = 0; n <= len / BATCH_HEADER_BYTES && pos < len; n++) {
		struct batch_header h;
		size_t size;

		if (batch_header_parse(tail + pos, len - pos, &h) != SL_OK)
			break;
		size = batch_size_bytes(&h);
		be32_store(tail + pos + BATCH_OFF_CRC,
			   crc32c(0, tail + pos + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES));
		pos += size;
	}
}

/* Writes the template files (and the tail, and the checkpoint mode) to f->part. */
static void fuzz_rec_lay_out(struct fuzz_rec *f, unsigned mode, const uint8_t *tail,
			     size_t tail_len)
{
	if (mkdir(f->part, 0755) != 0)
		fuzz_fail("mkdir partition", SL_EIO);
	for (uint32_t i = 0; i < f->file_count; i++) {
		const struct fuzz_rec_file *file = &f->files[i];
		char p[FUZZ_REC_PATH_MAX + 300];
		int fd;
		int ok;

		if (((mode & 3) == 3 && strcmp(file->name, PLOG_CHECKPOINT_NAME) == 0) ||
		    ((mode & 8) && (int)i == f->active_index))
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->part, file->name);
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			fuzz_fail("create template file", SL_EIO);
		ok = write(fd, file->bytes, file->len) == (ssize_t)file->len;
		if ((int)i == f->active_log && tail_len > 0)
			ok = ok && write(fd, tail, tail_len) == (ssize_t)tail_len;
		close(fd);
		if (!ok)
			fuzz_fail("write template file", SL_EIO);
	}
	if ((mode & 3) == 1 || (mode & 3) == 2) {
		struct checkpoint_entry e[3] = {
			{ "log_start_offset", 0, 0 },
			{ "recovery_point", (mode & 3) == 1 ? f->valid_end : 0, 0 },
			{ "clean_shutdown", 0, 0 },
		};
		int dfd = open(f->part, O_RDONLY | O_DIRECTORY);

		if (dfd < 0 || checkpoint_write(dfd, PLOG_CHECKPOINT_NAME, e, 3) != SL_OK)
			fuzz_fail("write checkpoint", SL_EIO);
		close(dfd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_rec *f = &fuzz_rec_state;
	struct plog_config cfg = f->cfg;
	struct plog *log;
	unsigned mode;
	uint8_t *tail;
	int64_t end, base;
	enum sl_err err;

	if (size < 1)
		return 0;
	mode = data[0];
	cfg.preallocate = (mode & 4) != 0;
	tail = malloc(size);
	SL_ASSERT(tail != NULL);
	memcpy(tail, data + 1, size - 1);
	if (mode & 16)
		fuzz_rec_fix_crcs(tail, size - 1);
	fuzz_rec_lay_out(f, mode, tail, size - 1);
	free(tail);

	err = plog_open(&log, &f->ring, f->part, &cfg, 0);
	if (err != SL_OK)
		fuzz_fail("plog_open refused a log with a torn tail", err);
	end = plog_end_offset(log);
	if (plog_start_offset(log) != 0 || end < f->valid_end)
		fuzz_fail("recovery lost valid batches", SL_OK);
	fuzz_rec_verify(f, log);
	base = fuzz_rec_append(f, log, f->batch, f->batch_len);
	if (base != end || plog_end_offset(log) != end + 3)
		fuzz_fail("append after recovery not at the end offset", SL_OK);
	fuzz_rec_verify(f, log);
	if (plog_close(log) != SL_OK)
		fuzz_fail("plog_close after recovery", SL_EIO);

	err = plog_open(&log, &f->ring, f->part, &cfg, 0);
	if (err != SL_OK || plog_end_offset(log) != end + 3 || !plog_stats(log)->recovery_clean)
		fuzz_fail("reopen after a clean close is not clean", err);
	if (plog_close(log) != SL_OK)
		fuzz_fail("second plog_close", SL_EIO);
	fuzz_rm_dir(f->part);
	return 0;
}
