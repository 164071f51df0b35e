/*
 * micro_fixtures.c — the C fixtures that micro.cc times. See
 * micro_fixtures.h. Each fixture fails loudly (NULL / -1) rather than
 * reporting a figure for work it did not do.
 */
#define _GNU_SOURCE
#include "micro_fixtures.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "batch_build.h"
#include "crc32c.h"
#include "plog.h"
#include "ring.h"

#define MF_INFLIGHT_MAX 64
#define MF_RING_ENTRIES 256

uint32_t mf_crc32c(const void *buf, size_t len)
{
	return crc32c(0, buf, len);
}

uint32_t mf_crc32c_portable(const void *buf, size_t len)
{
	return crc32c_portable(0, buf, len);
}

struct mf_batch {
	uint8_t *buf;
	size_t len;
};

struct mf_batch *mf_batch_new(size_t batch_bytes, size_t record_bytes)
{
	struct mf_batch *b = calloc(1, sizeof(*b));
	uint8_t *value = malloc(record_bytes);
	struct batch_builder bb;

	if (b == NULL || value == NULL)
		goto fail;
	b->buf = malloc(batch_bytes);
	if (b->buf == NULL)
		goto fail;
	for (size_t i = 0; i < record_bytes; i++)
		value[i] = (uint8_t)('a' + i % 26);
	batch_builder_init(&bb, b->buf, batch_bytes);
	/* Fill until the next record would not fit: the batch is just under
	 * batch_bytes, made of whole records. */
	for (int i = 0; i < 1 << 20; i++) {
		char key[16];
		int key_len = snprintf(key, sizeof(key), "k%d", i);
		if (batch_builder_add(&bb, 1700000000000 + i, key, key_len, value,
				      (int32_t)record_bytes, NULL, 0) != SL_OK)
			break;
	}
	bb.err = SL_OK; /* the last add failed by design: the batch is full */
	b->len = batch_builder_finish(&bb);
	if (b->len == 0)
		goto fail;
	free(value);
	return b;
fail:
	free(value);
	if (b != NULL)
		free(b->buf);
	free(b);
	return NULL;
}

size_t mf_batch_size(const struct mf_batch *b)
{
	return b->len;
}

int mf_batch_validate(const struct mf_batch *b)
{
	struct batch_header h;
	return batch_validate(b->buf, b->len, BATCH_CHECK_ALL, &h) == SL_OK ? 0 : -1;
}

void mf_batch_free(struct mf_batch *b)
{
	if (b == NULL)
		return;
	free(b->buf);
	free(b);
}

/* ---- the storage engine ---- */

struct mf_log {
	struct ring ring;
	struct plog *plog;
	char dir[512];
	/* One buffer per append in flight: the engine rewrites baseOffset in
	 * the caller's buffer and the kernel reads it until completion. */
	uint8_t *bufs[MF_INFLIGHT_MAX];
	struct plog_append appends[MF_INFLIGHT_MAX];
	int pending;
	int failed;
};

/* `done` clears itself: the waiting loop in mf_log_append watches it. */
static void mf_append_done(struct plog_append *a)
{
	a->done = NULL;
}

struct mf_log *mf_log_open(const char *dir)
{
	struct mf_log *log = calloc(1, sizeof(*log));
	struct plog_config cfg;

	if (log == NULL)
		return NULL;
	snprintf(log->dir, sizeof(log->dir), "%s/bench-0", dir);
	if (ring_init(&log->ring, MF_RING_ENTRIES, RING_SETUP_BEST) != 0) {
		free(log);
		return NULL;
	}
	plog_config_default(&cfg);
	if (plog_open(&log->plog, &log->ring, log->dir, &cfg, 0) != SL_OK) {
		ring_exit(&log->ring);
		free(log);
		return NULL;
	}
	return log;
}

int64_t mf_log_append(struct mf_log *log, const struct mf_batch *b, int count)
{
	int64_t bytes = 0;

	if (count > MF_INFLIGHT_MAX)
		return -1;
	for (int i = 0; i < count; i++) {
		if (log->bufs[i] == NULL) {
			log->bufs[i] = malloc(b->len);
			if (log->bufs[i] == NULL)
				return -1;
			memcpy(log->bufs[i], b->buf, b->len);
		}
		struct plog_append *a = &log->appends[i];
		memset(a, 0, sizeof(*a));
		a->buf = log->bufs[i];
		a->len = b->len;
		a->done = mf_append_done;
		if (plog_append(log->plog, a, 0) != SL_OK)
			return -1;
		bytes += (int64_t)b->len;
	}
	/* Wait for every completion: `done` clears a->done. */
	for (int i = 0; i < count; i++) {
		for (int turns = 0; log->appends[i].done != NULL; turns++) {
			if (turns > 1000000 || ring_wait(&log->ring, 1, -1) < 0)
				return -1;
		}
		if (log->appends[i].res != SL_OK)
			return -1;
	}
	return bytes;
}

void mf_log_close(struct mf_log *log)
{
	if (log == NULL)
		return;
	plog_close(log->plog);
	ring_drain(&log->ring);
	ring_exit(&log->ring);
	for (int i = 0; i < MF_INFLIGHT_MAX; i++)
		free(log->bufs[i]);
	free(log);
}

/* ---- plain write(2) ---- */

struct mf_raw {
	int fd;
};

struct mf_raw *mf_raw_open(const char *dir)
{
	char path[512];
	struct mf_raw *raw = calloc(1, sizeof(*raw));

	if (raw == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/raw.log", dir);
	raw->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (raw->fd < 0) {
		free(raw);
		return NULL;
	}
	return raw;
}

int64_t mf_raw_append(struct mf_raw *raw, const struct mf_batch *b, int count)
{
	int64_t bytes = 0;
	for (int i = 0; i < count; i++) {
		size_t done = 0;
		while (done < b->len) {
			ssize_t n = write(raw->fd, b->buf + done, b->len - done);
			if (n <= 0)
				return -1;
			done += (size_t)n;
		}
		bytes += (int64_t)b->len;
	}
	return bytes;
}

void mf_raw_close(struct mf_raw *raw)
{
	if (raw == NULL)
		return;
	close(raw->fd);
	free(raw);
}

/* ---- index lookups ---- */

struct mf_index {
	struct mf_log *log;
	int64_t end;
	uint64_t rng;
};

struct mf_index *mf_index_new(const char *dir, int batches)
{
	struct mf_index *ix = calloc(1, sizeof(*ix));
	/* 4 KiB batches of 100-byte records: about one index entry per batch
	 * at the default 4096-byte interval, so a lookup is a binary search of
	 * the index plus a header read or two. */
	struct mf_batch *b = mf_batch_new(4096, 100);

	if (ix == NULL || b == NULL)
		goto fail;
	ix->log = mf_log_open(dir);
	if (ix->log == NULL)
		goto fail;
	for (int done = 0; done < batches; done += 16)
		if (mf_log_append(ix->log, b, 16) < 0)
			goto fail;
	ix->end = plog_end_offset(ix->log->plog);
	ix->rng = 0x9E3779B97F4A7C15ull;
	mf_batch_free(b);
	return ix;
fail:
	mf_batch_free(b);
	if (ix != NULL)
		mf_log_close(ix->log);
	free(ix);
	return NULL;
}

int64_t mf_index_lookup(struct mf_index *ix, int n)
{
	int64_t sum = 0;
	for (int i = 0; i < n; i++) {
		ix->rng ^= ix->rng << 13;
		ix->rng ^= ix->rng >> 7;
		ix->rng ^= ix->rng << 17;
		int64_t off = (int64_t)(ix->rng % (uint64_t)ix->end);
		struct plog_slice s;
		if (plog_read(ix->log->plog, off, 1, ix->end, &s) != SL_OK)
			return -1;
		sum += s.file_pos;
		plog_slice_release(&s);
	}
	return sum;
}

void mf_index_free(struct mf_index *ix)
{
	if (ix == NULL)
		return;
	mf_log_close(ix->log);
	free(ix);
}

/* ---- temp dirs ---- */

char *mf_tmpdir(void)
{
	char *dir = strdup("/tmp/sluice-micro-XXXXXX");
	if (dir == NULL || mkdtemp(dir) == NULL) {
		free(dir);
		return NULL;
	}
	return dir;
}

static int mf_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void mf_rmdir(char *dir)
{
	if (dir == NULL)
		return;
	nftw(dir, mf_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}
