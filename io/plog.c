/*
 * plog.c — the partition log's life cycle, appends and flushes (plog.h);
 * reads are in plog_read.c, truncation and retention in plog_trim.c.
 *
 * The append pipeline, all on the owner shard:
 *
 *   plog_append ──(offsets assigned, bytes reserved)──► writes, QUEUED
 *       a write slot free? ── IORING_OP_WRITE of this append now ──► WRITING
 *   write CQE ──(short: resubmit the rest)──► its appends WRITTEN
 *       then plog_writes_pump: the appends QUEUED meanwhile, contiguous in
 *       one segment (<= PLOG_WRITE_IOVS_MAX, <= PLOG_WRITE_BYTES_MAX), go
 *       out as ONE IORING_OP_WRITEV ──► WRITING
 *   plog_progress, in offset order over `writes`:
 *       head WRITTEN? ── make visible: index entries, end_offset, dirty
 *                        (or SL_EIO once anything failed) ──► deliver
 *       a flush needed and its writes visible? ── IORING_OP_FSYNC(DATASYNC)
 *                        on every dirty file (+ the directory) ──► one flush
 *       head of `deliver` durable enough? ── done(a); waiters ── done(w)
 *
 * Coalescing (write-side group commit): the kernel serialises buffered
 * writes to one inode and punts each write SQE to an io-wq worker, so with
 * one SQE per append the per-SQE hand-off dominated (16 x 64 KiB in flight:
 * 55-75% of plain write(2); coalesced: about 100%). With one write in
 * flight (writes_inflight_max = 1) a burst of appends costs two SQEs: the
 * first append's, at once, and one writev for the rest. Rejected: holding
 * the first append back until the others of its loop turn arrive (io/
 * does not know loop turns; it would delay a lone append); amending a
 * not-yet-submitted SQE (depends on liburing's private SQ bookkeeping);
 * IOSQE_ASYNC on writes (no measurable gain on ext4, where they are punted
 * anyway, and it would stop filesystems with non-blocking buffered writes
 * from completing them inline).
 *
 * A flush covers what was visible when it was issued (flush_target); its
 * fsyncs are submitted only after those writes completed, so the kernel
 * cannot reorder them. Appends and waiters that arrive meanwhile wait for
 * the next flush, issued as soon as this one completes: group commit.
 *
 * Re-entry: callbacks may call plog_append / plog_flush_wait, and
 * ring_get_sqe may dispatch completions while we submit; plog_progress is
 * guarded (in_progress / progress_again) so it never runs nested, a write
 * slot is reserved (busy) before ring_get_sqe so an append from a callback
 * queues behind it instead of racing for it, and a flush holds a token in
 * flush_ops_inflight while its fsyncs are being submitted so it cannot
 * complete half-issued. plog_append calls the ring only before it changes
 * anything, so its own `done` never runs before it returns.
 */
#include "plog_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "log.h"

/* Short writes continued per write before it is treated as failed. */
#define PLOG_WRITE_RESUBMITS_MAX 64
/* UIO_MAXIOV (not exported next to <sys/uio.h>): the kernel's writev limit. */
_Static_assert(PLOG_WRITE_IOVS_MAX >= 1 && PLOG_WRITE_IOVS_MAX <= 1024, "iovecs per writev");
_Static_assert(PLOG_WRITES_INFLIGHT_MAX >= 1 && PLOG_WRITES_INFLIGHT_MAX <= 64, "write slots");
_Static_assert(PLOG_WRITE_BYTES_MAX <= (uint32_t)INT32_MAX, "a write's byte count fits res");
/* plog_progress turns per call (each turn handles every ready item). */
#define PLOG_PROGRESS_TURNS_MAX 1024
/* ring_wait turns plog_close may spend; our operations always complete. */
#define PLOG_CLOSE_WAIT_TURNS_MAX (1u << 30)
/* Directory entries plog_open looks at. */
#define PLOG_DIR_ENTRIES_MAX (PLOG_SEGMENTS_MAX * 4u)

static void plog_progress(struct plog *log);
static void plog_sync_done(struct ring_op *op, int res, uint32_t cqe_flags);
static void plog_write_done(struct ring_op *op, int res, uint32_t cqe_flags);

static int64_t plog_add_sat(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	return a + b;
}

void plog_config_default(struct plog_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->segment_bytes = 1073741824;           /* 1 GiB */
	cfg->roll_ms = 7LL * 24 * 3600 * 1000;     /* log.roll.hours = 168 */
	cfg->index_interval_bytes = 4096;
	cfg->index_size_max_bytes = 10485760;      /* 10 MiB */
	cfg->retention_ms = 7LL * 24 * 3600 * 1000;
	cfg->retention_bytes = -1;
	cfg->flush_interval_messages = INT64_MAX;
	cfg->flush_interval_ms = INT64_MAX;
	cfg->checkpoint_interval_ms = 60000;
	cfg->preallocate = 0;
	cfg->shard_id = LOG_NO_SHARD;
	cfg->writes_inflight_max = 1;
}

static enum sl_err plog_config_check(const struct plog_config *cfg)
{
	if (cfg->segment_bytes < 14 || cfg->segment_bytes > SEGMENT_BYTES_MAX)
		return SL_EINVAL;
	if (cfg->index_interval_bytes < 0)
		return SL_EINVAL;
	if (cfg->index_size_max_bytes < 4 * INDEX_TIME_ENTRY_BYTES)
		return SL_EINVAL;
	if (cfg->retention_ms < -1 || cfg->retention_bytes < -1)
		return SL_EINVAL;
	if (cfg->checkpoint_interval_ms < 0)
		return SL_EINVAL;
	if (cfg->writes_inflight_max < 0 || cfg->writes_inflight_max > PLOG_WRITES_INFLIGHT_MAX)
		return SL_EINVAL;
	return SL_OK;
}

void plog_fail(struct plog *log, const char *what, int err)
{
	if (log->failed)
		return;
	log->failed = 1;
	LOG_E(log->cfg.shard_id, "plog %s: %s failed: %s; the partition log is FAILED: "
	      "appends fail with SL_EIO until it is reopened (recovery will check the files)",
	      log->dir, what, strerror(err < 0 ? -err : err));
}

enum sl_err plog_checkpoint_write(struct plog *log, int clean)
{
	struct checkpoint_entry e[] = {
		{ .key = "log_start_offset", .value = log->start_offset },
		{ .key = "recovery_point", .value = log->flushed_offset },
		{ .key = "clean_shutdown", .value = clean ? 1 : 0 },
	};
	enum sl_err err = checkpoint_write(log->dirfd, PLOG_CHECKPOINT_NAME, e, SL_ARRAY_LEN(e));

	if (err != SL_OK)
		return SL_EIO;
	log->ckpt_recovery_point = log->flushed_offset;
	log->ckpt_ms = log->now_ms;
	log->stats.checkpoints_written++;
	return SL_OK;
}

int64_t plog_seg_find(const struct plog *log, int64_t offset)
{
	uint32_t lo = 0;
	uint32_t hi = log->seg_count;

	/* Binary search: first segment with base > offset. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (log->segs[mid]->base_offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int64_t)lo - 1;
}

enum sl_err plog_segs_push(struct plog *log, struct segment *seg)
{
	if (log->seg_count == log->seg_cap) {
		uint32_t cap = log->seg_cap == 0 ? 8 : log->seg_cap * 2;
		if (cap > PLOG_SEGMENTS_MAX)
			return SL_ECORRUPT;
		struct segment **n = realloc(log->segs, (size_t)cap * sizeof(*n));
		if (n == NULL)
			return SL_ENOMEM;
		log->segs = n;
		log->seg_cap = cap;
	}
	SL_ASSERT(log->seg_count == 0 ||
		  log->segs[log->seg_count - 1]->base_offset < seg->base_offset);
	log->segs[log->seg_count++] = seg;
	return SL_OK;
}

enum sl_err plog_segs_push_new(struct plog *log, int64_t base_offset)
{
	struct segment *seg;
	enum sl_err err;

	SL_ASSERT(base_offset >= 0);
	err = segment_create(&seg, log->dirfd, base_offset, &log->scfg, log->now_ms);
	if (err != SL_OK)
		return err;
	err = plog_segs_push(log, seg);
	if (err != SL_OK)
		segment_unref(seg);
	SL_ASSERT(err != SL_OK || plog_active(log) == seg);
	return err;
}

void plog_segs_delete_from(struct plog *log, uint32_t from)
{
	SL_ASSERT(from <= log->seg_count);
	for (uint32_t i = from; i < log->seg_count; i++) {
		struct segment *seg = log->segs[i];
		SL_ASSERT(seg->appends_pending == 0);
		segment_unlink(seg, log->dirfd);
		segment_unref(seg);
		log->stats.segments_deleted++;
	}
	log->seg_count = from;
	log->dir_dirty = 1;
}

void plog_segs_delete_front(struct plog *log, uint32_t n)
{
	SL_ASSERT(n < log->seg_count);
	for (uint32_t i = 0; i < n; i++) {
		struct segment *seg = log->segs[i];
		SL_ASSERT(seg->state == SEGMENT_SEALED);
		segment_unlink(seg, log->dirfd);
		segment_unref(seg);
		log->stats.segments_deleted++;
	}
	memmove(log->segs, log->segs + n, (size_t)(log->seg_count - n) * sizeof(log->segs[0]));
	log->seg_count -= n;
	log->dir_dirty = 1;
}

/* fdatasyncs fd if *dirty; returns 0 or -errno. */
static int plog_fdatasync_dirty(int fd, int *dirty)
{
	if (!*dirty)
		return 0;
	if (fdatasync(fd) != 0)
		return -errno;
	*dirty = 0;
	return 0;
}

enum sl_err plog_seg_sync_now(struct plog *log, struct segment *seg)
{
	int rc = plog_fdatasync_dirty(seg->log_fd, &seg->log_dirty);

	if (rc == 0)
		rc = plog_fdatasync_dirty(seg->oindex.fd, &seg->oindex.dirty);
	if (rc == 0)
		rc = plog_fdatasync_dirty(seg->tindex.fd, &seg->tindex.dirty);
	if (rc != 0) {
		LOG_E(log->cfg.shard_id, "plog %s: fdatasync of segment %s failed: %s",
		      log->dir, seg->name, strerror(-rc));
		return SL_EIO;
	}
	return SL_OK;
}

void plog_check(const struct plog *log)
{
#ifdef SL_DEBUG
	SL_ASSERT(log->seg_count >= 1);
	for (uint32_t i = 0; i + 1 < log->seg_count; i++) {
		SL_ASSERT(log->segs[i]->base_offset < log->segs[i + 1]->base_offset);
		SL_ASSERT(log->segs[i]->state == SEGMENT_SEALED ||
			  log->segs[i]->state == SEGMENT_SEALING);
	}
	SL_ASSERT(plog_active(log)->state == SEGMENT_ACTIVE);
	SL_ASSERT(log->flushed_offset <= log->flush_issued_offset || log->failed);
	SL_ASSERT(log->flush_issued_offset <= log->end_offset);
	SL_ASSERT(log->end_offset <= log->next_offset);
	SL_ASSERT(log->start_offset <= log->end_offset);
	SL_ASSERT(log->appends_pending <= PLOG_APPENDS_INFLIGHT_MAX);
	uint32_t busy = 0;
	for (int32_t i = 0; i < log->cfg.writes_inflight_max; i++)
		busy += log->wslots[i].busy;
	SL_ASSERT(busy == log->writes_inflight);
	SL_ASSERT(log->write_next == NULL || log->writes_inflight > 0);
	SL_ASSERT(log->write_next == NULL || log->write_next->state == PLOG_APPEND_QUEUED);
	if (log->appends_pending == 0 && !log->failed)
		SL_ASSERT(plog_active(log)->next_offset == log->end_offset &&
			  log->end_offset == log->next_offset);
#else
	(void)log;
#endif
}

/* ---- open ---- */

/* Parses "<20 digits><ext>"; returns 1 and *base on a match. */
static int plog_parse_name(const char *name, const char *ext, int64_t *base)
{
	size_t n = strlen(name);
	size_t e = strlen(ext);
	int64_t v = 0;

	if (n != 20 + e || strcmp(name + 20, ext) != 0)
		return 0;
	for (size_t i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		int d = name[i] - '0';
		if (v > (INT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*base = v;
	return 1;
}

static int plog_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a;
	int64_t y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

struct plog_i64s {
	int64_t *v;
	uint32_t n;
	uint32_t cap;
};

static enum sl_err plog_i64s_push(struct plog_i64s *a, int64_t x)
{
	if (a->n == a->cap) {
		uint32_t cap = a->cap == 0 ? 16 : a->cap * 2;
		if (cap > PLOG_SEGMENTS_MAX)
			return SL_ECORRUPT;
		int64_t *nv = realloc(a->v, (size_t)cap * sizeof(*nv));
		if (nv == NULL)
			return SL_ENOMEM;
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = x;
	return SL_OK;
}

static int plog_i64s_has(const struct plog_i64s *a, int64_t x)
{
	return a->n > 0 && bsearch(&x, a->v, a->n, sizeof(x), plog_cmp_i64) != NULL;
}

/*
 * Lists the segments (sorted base offsets of the .log files), removes
 * leftovers: indexes without a .log and temporary checkpoint files.
 */
static enum sl_err plog_list_segments(struct plog *log, struct plog_i64s *bases)
{
	struct plog_i64s orphans = { 0 };
	struct dirent *de;
	DIR *d = NULL;
	int fd;
	enum sl_err err = SL_OK;

	fd = dup(log->dirfd);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		LOG_E(log->cfg.shard_id, "plog %s: opendir: %s", log->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SL_EIO;
	}
	for (uint32_t n = 0; n < PLOG_DIR_ENTRIES_MAX && (de = readdir(d)) != NULL; n++) {
		int64_t base;
		size_t len = strlen(de->d_name);
		if (plog_parse_name(de->d_name, ".log", &base))
			err = plog_i64s_push(bases, base);
		else if (plog_parse_name(de->d_name, ".index", &base) ||
			 plog_parse_name(de->d_name, ".timeindex", &base))
			err = plog_i64s_push(&orphans, base);
		else if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
			(void)unlinkat(log->dirfd, de->d_name, 0);
		if (err != SL_OK)
			goto cleanup;
	}
	if (bases->n > 1)
		qsort(bases->v, bases->n, sizeof(int64_t), plog_cmp_i64);
	for (uint32_t i = 0; i < orphans.n; i++) {
		if (plog_i64s_has(bases, orphans.v[i]))
			continue;
		char name[SEGMENT_NAME_BYTES];
		segment_file_name(name, orphans.v[i], ".index");
		(void)unlinkat(log->dirfd, name, 0);
		segment_file_name(name, orphans.v[i], ".timeindex");
		(void)unlinkat(log->dirfd, name, 0);
		LOG_W(log->cfg.shard_id, "plog %s: removed indexes of %020lld without a .log",
		      log->dir, (long long)orphans.v[i]);
	}

cleanup:
	free(orphans.v);
	closedir(d);
	return err;
}

/* Removes the files of segments that are not loaded. */
static void plog_unlink_bases(struct plog *log, const int64_t *bases, uint32_t n)
{
	static const char *const exts[] = { ".log", ".index", ".timeindex" };
	char name[SEGMENT_NAME_BYTES];

	for (uint32_t i = 0; i < n; i++)
		for (size_t e = 0; e < SL_ARRAY_LEN(exts); e++) {
			segment_file_name(name, bases[i], exts[e]);
			(void)unlinkat(log->dirfd, name, 0);
		}
}

static void plog_report_add(struct plog *log, const struct segment_load_report *rep,
			    enum segment_load_mode mode)
{
	log->stats.recovery_batches_validated += rep->batches_validated;
	log->stats.recovery_headers_walked += rep->headers_walked;
	log->stats.recovery_bytes_truncated += rep->bytes_truncated;
	if (mode == SEGMENT_LOAD_RECOVER || rep->rebuilt)
		log->stats.recovery_segments_scanned++;
}

/*
 * Loads the listed segments in order, stopping after one cut at invalid
 * data (later ones are deleted). Segments wholly below the start offset
 * are deleted first.
 */
static enum sl_err plog_load_segments(struct plog *log, const struct plog_i64s *bases,
				      int64_t ck_start, int64_t ck_rp, int clean)
{
	uint32_t first = 0;

	while (first + 1 < bases->n && bases->v[first + 1] <= ck_start)
		first++;
	if (first > 0) {
		LOG_I(log->cfg.shard_id, "plog %s: removing %u segments below the log start "
		      "offset %lld", log->dir, first, (long long)ck_start);
		plog_unlink_bases(log, bases->v, first);
	}
	for (uint32_t i = first; i < bases->n; i++) {
		struct segment_load_report rep = { 0 };
		struct segment *seg = NULL;
		int last = i + 1 == bases->n;
		enum segment_load_mode mode = SEGMENT_LOAD_RECOVER;
		if (clean || (!last && bases->v[i + 1] <= ck_rp))
			mode = SEGMENT_LOAD_TRUSTED;
		enum sl_err err = segment_load(&seg, log->dirfd, bases->v[i], &log->scfg, mode,
					       ck_rp, &rep);
		if (err != SL_OK)
			return err;
		plog_report_add(log, &rep, mode);
		int stop = rep.corrupt ||
			   (!last && rep.zero_tail && seg->next_offset != bases->v[i + 1]) ||
			   (!last && seg->next_offset > bases->v[i + 1]);
		if (!last && !stop && seg->size == 0) {
			LOG_W(log->cfg.shard_id, "plog %s: removing empty segment %s",
			      log->dir, seg->name);
			segment_unlink(seg, log->dirfd);
			segment_unref(seg);
			continue;
		}
		err = plog_segs_push(log, seg);
		if (err != SL_OK) {
			segment_unref(seg);
			return err;
		}
		if (!stop && !last && seg->next_offset < bases->v[i + 1])
			LOG_W(log->cfg.shard_id, "recovery: plog %s: offsets [%lld, %lld) are missing "
			      "between segment %s and the next one", log->dir,
			      (long long)seg->next_offset, (long long)bases->v[i + 1], seg->name);
		if (stop && !last) {
			uint32_t later = bases->n - i - 1;
			LOG_W(log->cfg.shard_id, "recovery: plog %s: invalid data in segment %s "
			      "(log now ends at offset %lld): DELETING the %u later segments",
			      log->dir, seg->name, (long long)seg->next_offset, later);
			plog_unlink_bases(log, bases->v + i + 1, later);
			log->stats.recovery_segments_deleted += later;
			break;
		}
	}
	return SL_OK;
}

/* Seals all but the last segment, activates the last, sets the offsets. */
static enum sl_err plog_open_finish(struct plog *log, int64_t ck_start)
{
	enum sl_err err;

	if (log->seg_count == 0) {
		err = plog_segs_push_new(log, SL_MAX(ck_start, 0));
		if (err != SL_OK)
			return err;
	}
	for (uint32_t i = 0; i + 1 < log->seg_count; i++)
		if (segment_seal(log->segs[i]) != SL_OK)
			return SL_EIO;
	err = segment_activate(plog_active(log), &log->scfg);
	if (err != SL_OK)
		return err;
	log->start_offset = SL_MAX(ck_start, log->segs[0]->base_offset);
	log->end_offset = plog_active(log)->next_offset;
	if (log->start_offset > log->end_offset) {
		/* The checkpoint's start is past the data (lost unflushed tail):
		 * start an empty log there, as Kafka does. */
		LOG_W(log->cfg.shard_id, "plog %s: log start offset %lld is past the end %lld; "
		      "starting an empty log there", log->dir, (long long)log->start_offset,
		      (long long)log->end_offset);
		int64_t start = log->start_offset;
		plog_segs_delete_from(log, 0);
		err = plog_segs_push_new(log, start);
		if (err != SL_OK)
			return err;
		log->start_offset = start;
		log->end_offset = start;
	}
	log->next_offset = log->end_offset;
	/* Whatever recovery rewrote becomes durable now; then the whole log is. */
	for (uint32_t i = 0; i < log->seg_count; i++)
		if (plog_seg_sync_now(log, log->segs[i]) != SL_OK)
			return SL_EIO;
	log->flushed_offset = log->end_offset;
	log->flush_issued_offset = log->end_offset;
	/* The checkpoint write fsyncs the directory: creations and deletions
	 * above are durable with it. */
	log->dir_dirty = 0;
	return plog_checkpoint_write(log, 0);
}

/* Allocates the log and opens (creating) its directory. */
static enum sl_err plog_alloc(struct plog **out, struct ring *ring, const char *dir,
			      const struct plog_config *cfg, int64_t now_ms)
{
	struct plog *log = calloc(1, sizeof(*log));
	enum sl_err err;

	if (log == NULL)
		return SL_ENOMEM;
	*out = log;
	log->ring = ring;
	log->cfg = *cfg;
	log->scfg = (struct segment_config){
		.segment_bytes = cfg->segment_bytes,
		.index_interval_bytes = cfg->index_interval_bytes,
		.index_size_max_bytes = cfg->index_size_max_bytes,
		.preallocate = cfg->preallocate,
		.shard_id = cfg->shard_id,
	};
	if (log->cfg.writes_inflight_max == 0)
		log->cfg.writes_inflight_max = 1;
	log->dirfd = -1;
	log->now_ms = now_ms;
	log->last_flush_ms = now_ms;
	log->ckpt_ms = now_ms;
	log->dir_sync.op.done = plog_sync_done;
	log->dir_sync.owner = log;
	log->dir = strdup(dir);
	log->wslots = calloc((size_t)log->cfg.writes_inflight_max, sizeof(*log->wslots));
	err = SL_ENOMEM;
	if (log->dir == NULL || log->wslots == NULL)
		goto cleanup;
	for (int32_t i = 0; i < log->cfg.writes_inflight_max; i++) {
		log->wslots[i].log = log;
		log->wslots[i].op.done = plog_write_done;
	}
	err = SL_EIO;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		LOG_E(cfg->shard_id, "plog %s: mkdir: %s", dir, strerror(errno));
		goto cleanup;
	}
	log->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (log->dirfd < 0) {
		LOG_E(cfg->shard_id, "plog %s: open: %s", dir, strerror(errno));
		goto cleanup;
	}
	err = SL_OK;

cleanup:
	return err;
}

/* Frees a log that was never (or no longer) in use by appends. */
static void plog_free(struct plog *log)
{
	for (uint32_t i = 0; i < log->seg_count; i++)
		segment_unref(log->segs[i]);
	free(log->segs);
	if (log->dirfd >= 0)
		close(log->dirfd);
	free(log->dir);
	free(log->wslots);
	free(log);
}

static void plog_open_report(const struct plog *log, int created, int clean)
{
	const struct plog_stats *st = &log->stats;

	if (created)
		LOG_I(log->cfg.shard_id, "plog %s: created, start offset %lld", log->dir,
		      (long long)log->start_offset);
	else if (!clean || st->recovery_segments_scanned > 0)
		LOG_I(log->cfg.shard_id, "plog %s: opened after %s shutdown: %u segments, "
		      "offsets [%lld, %lld), %u scanned (%llu batches validated), %lld bytes "
		      "truncated, %u segments deleted", log->dir, clean ? "a clean" : "an unclean",
		      log->seg_count, (long long)log->start_offset, (long long)log->end_offset,
		      st->recovery_segments_scanned,
		      (unsigned long long)st->recovery_batches_validated,
		      (long long)st->recovery_bytes_truncated, st->recovery_segments_deleted);
}

enum sl_err plog_open(struct plog **out, struct ring *ring, const char *dir,
		      const struct plog_config *cfg, int64_t now_ms)
{
	struct checkpoint_entry ck[] = {
		{ .key = "log_start_offset" },
		{ .key = "recovery_point" },
		{ .key = "clean_shutdown" },
	};
	struct plog_i64s bases = { 0 };
	struct plog *log = NULL;
	int clean = 0;
	enum sl_err err;

	SL_ASSERT(out != NULL && ring != NULL && dir != NULL && cfg != NULL);
	err = plog_config_check(cfg);
	if (err != SL_OK)
		return err;
	err = plog_alloc(&log, ring, dir, cfg, now_ms);
	if (err != SL_OK)
		goto cleanup;
	err = checkpoint_read(log->dirfd, PLOG_CHECKPOINT_NAME, ck, SL_ARRAY_LEN(ck));
	if (err == SL_EIO)
		goto cleanup;
	if (err == SL_ECORRUPT)
		LOG_W(cfg->shard_id, "plog %s: unreadable checkpoint: recovering every segment",
		      dir);
	if (err != SL_OK)
		memset(ck, 0, sizeof(ck));
	clean = err == SL_OK && ck[2].found && ck[2].value == 1;
	log->stats.recovery_clean = clean;

	err = plog_list_segments(log, &bases);
	if (err == SL_OK)
		err = plog_load_segments(log, &bases, SL_MAX(ck[0].value, 0),
					 clean ? INT64_MAX : SL_MAX(ck[1].value, 0), clean);
	if (err == SL_OK)
		err = plog_open_finish(log, SL_MAX(ck[0].value, 0));
	if (err != SL_OK)
		goto cleanup;
	plog_open_report(log, bases.n == 0 && !clean, clean);
	plog_check(log);
	free(bases.v);
	*out = log;
	return SL_OK;

cleanup:
	free(bases.v);
	if (log != NULL)
		plog_free(log);
	return err;
}

/* ---- append ---- */

/*
 * Walks the caller's batches: counts them and their offsets. SL_EINVAL if
 * the buffer is not whole batches.
 */
static enum sl_err plog_append_scan(const struct plog_append *a, uint32_t *batches,
				    int64_t *offsets, int64_t *first_max_ts)
{
	size_t p = 0;

	*batches = 0;
	*offsets = 0;
	*first_max_ts = -1;
	/* Each turn passes one batch of >= BATCH_HEADER_BYTES bytes. */
	while (p < a->len) {
		struct batch_header h;
		if (batch_header_parse(a->buf + p, a->len - p, &h) != SL_OK || h.last_offset_delta < 0)
			return SL_EINVAL;
		if (*batches == 0)
			*first_max_ts = h.max_timestamp;
		(*batches)++;
		*offsets += (int64_t)h.last_offset_delta + 1;
		p += batch_size_bytes(&h);
	}
	SL_ASSERT(p == a->len && *batches > 0);
	return SL_OK;
}

/* Kafka's shouldRoll, with index room reserved for appends in flight. */
static int plog_should_roll(const struct plog *log, size_t len, uint32_t batches,
			    int64_t last, int64_t now_ms)
{
	const struct segment *seg = plog_active(log);

	if (segment_empty(seg))
		return 0;
	if (seg->size_reserved + (int64_t)len > log->cfg.segment_bytes)
		return 1;
	if (log->cfg.roll_ms > 0 && now_ms - seg->roll_base_ms > log->cfg.roll_ms)
		return 1;
	if (last - seg->base_offset > SEGMENT_REL_OFFSET_MAX)
		return 1;
	uint64_t need = (uint64_t)seg->batches_pending + batches;
	return index_room(&seg->oindex) < need || index_room(&seg->tindex) < need + 1;
}

static void plog_seal(struct plog *log, struct segment *seg)
{
	if (segment_seal(seg) != SL_OK)
		LOG_W(log->cfg.shard_id, "plog %s: sealing segment %s failed (still readable)",
		      log->dir, seg->name);
}

/* Starts a new active segment at `base` (next_offset, or a follower's
 * first batch above it); the old one seals when its writes are done.
 * SL_EIO / SL_ENOMEM. */
static enum sl_err plog_roll(struct plog *log, int64_t base)
{
	struct segment *old = plog_active(log);
	struct segment *seg;
	enum sl_err err;

	SL_ASSERT(!segment_empty(old) && log->next_offset > old->base_offset &&
		  base >= log->next_offset);
	err = segment_create(&seg, log->dirfd, base, &log->scfg, log->now_ms);
	if (err != SL_OK) {
		LOG_E(log->cfg.shard_id, "plog %s: roll to %lld failed", log->dir,
		      (long long)base);
		return err;
	}
	err = plog_segs_push(log, seg);
	if (err != SL_OK) {
		segment_unlink(seg, log->dirfd);
		segment_unref(seg);
		return err;
	}
	if (old->appends_pending > 0)
		old->state = SEGMENT_SEALING;
	else
		plog_seal(log, old);
	log->dir_dirty = 1;
	log->stats.rolls++;
	SL_ASSERT(plog_active(log) == seg);
	return SL_OK;
}

/*
 * Rewrites each batch's baseOffset from next_offset on (the CRC stays
 * valid); a follower's batches (`keep`) keep theirs, which plog_replica_check
 * found increasing from next_offset on, possibly with gaps (a compacted
 * leader). Either way next_offset moves past the last batch.
 */
static void plog_append_assign(struct plog *log, struct plog_append *a, bool keep)
{
	int64_t off = log->next_offset;
	int64_t first = -1;
	size_t p = 0;

	/* Bounded: the batches were counted by plog_append_scan. */
	while (p < a->len) {
		struct batch_header h;
		enum sl_err err = batch_header_parse(a->buf + p, a->len - p, &h);
		SL_ASSERT(err == SL_OK);
		if (keep) {
			SL_ASSERT(h.base_offset >= off);
			off = h.base_offset;
		} else {
			batch_set_base_offset(a->buf + p, off);
		}
		if (first < 0)
			first = off;
		off += (int64_t)h.last_offset_delta + 1;
		p += batch_size_bytes(&h);
	}
	SL_ASSERT(first >= log->next_offset);
	a->base_offset = first;
	a->last_offset = off - 1;
	log->next_offset = off;
	SL_ASSERT(p == a->len && a->last_offset >= a->base_offset);
}

/* ---- writes: one SQE per run of queued appends ---- */

/* A free write slot, or NULL when writes_inflight_max writes are busy. */
static struct plog_write *plog_wslot_free(struct plog *log)
{
	if (log->writes_inflight >= (uint32_t)log->cfg.writes_inflight_max)
		return NULL;
	for (int32_t i = 0; i < log->cfg.writes_inflight_max; i++)
		if (!log->wslots[i].busy)
			return &log->wslots[i];
	SL_ASSERT(!"plog_wslot_free: writes_inflight out of step with the slots");
	return NULL;
}

static void plog_wslot_reserve(struct plog *log, struct plog_write *w)
{
	SL_ASSERT(!w->busy && w->first == NULL);
	w->busy = 1;
	log->writes_inflight++;
	SL_ASSERT(log->writes_inflight <= (uint32_t)log->cfg.writes_inflight_max);
}

static void plog_wslot_release(struct plog *log, struct plog_write *w)
{
	SL_ASSERT(w->busy && log->writes_inflight > 0);
	w->busy = 0;
	w->first = NULL;
	log->writes_inflight--;
}

/*
 * Prepares `sqe` for what slot w has not written yet: IORING_OP_WRITE when
 * one iovec is left (a lone append: no iovec import), IORING_OP_WRITEV
 * otherwise, at the position right after the bytes already written.
 */
static void plog_write_prep(struct plog *log, struct plog_write *w, struct io_uring_sqe *sqe)
{
	uint32_t left = w->iov_count - w->iov_idx;
	uint64_t pos = (uint64_t)(w->file_pos + (int64_t)w->written);

	SL_ASSERT(w->busy && left > 0 && left <= PLOG_WRITE_IOVS_MAX && w->written < w->bytes);
	if (left == 1)
		io_uring_prep_write(sqe, w->seg->log_fd, w->iov[w->iov_idx].iov_base,
				    (unsigned)w->iov[w->iov_idx].iov_len, pos);
	else
		io_uring_prep_writev(sqe, w->seg->log_fd, &w->iov[w->iov_idx], left, pos);
	ring_sqe_set_op(log->ring, sqe, &w->op);
}

/*
 * Covers the queued appends from write_next on with the reserved slot w:
 * those of write_next's segment (contiguous there by reservation), at most
 * PLOG_WRITE_IOVS_MAX of them and PLOG_WRITE_BYTES_MAX bytes (the first
 * always), and prepares `sqe` for them. Does not call into the ring.
 */
static void plog_write_fill(struct plog *log, struct plog_write *w, struct io_uring_sqe *sqe)
{
	struct plog_append *a = log->write_next;

	SL_ASSERT(w->busy && w->first == NULL && a != NULL && a->state == PLOG_APPEND_QUEUED);
	w->first = a;
	w->seg = a->seg;
	w->file_pos = a->file_pos;
	w->bytes = 0;
	w->written = 0;
	w->iov_consumed = 0;
	w->iov_count = 0;
	w->iov_idx = 0;
	w->resubmits = 0;
	/* Bounded by PLOG_WRITE_IOVS_MAX. */
	for (; a != NULL && w->iov_count < PLOG_WRITE_IOVS_MAX; a = a->next) {
		if (a->seg != w->seg || (w->iov_count > 0 && w->bytes + a->len > PLOG_WRITE_BYTES_MAX))
			break;
		SL_ASSERT(a->state == PLOG_APPEND_QUEUED);
		SL_ASSERT(a->file_pos == w->file_pos + (int64_t)w->bytes);
		w->iov[w->iov_count].iov_base = a->buf;
		w->iov[w->iov_count].iov_len = a->len;
		w->iov_count++;
		w->bytes += a->len;
		a->state = PLOG_APPEND_WRITING;
	}
	w->append_count = w->iov_count;
	log->write_next = a;
	log->stats.writes++;
	SL_ASSERT(w->append_count >= 1 && w->bytes > 0);
	plog_write_prep(log, w, sqe);
}

/*
 * The queued appends will never be written (the log failed, or a write
 * before them did): WRITTEN with -ECANCELED, so plog_writes_process
 * delivers them SL_EIO in order after the failure that caused it.
 */
static void plog_writes_cancel(struct plog *log)
{
	/* Bounded by the list (<= PLOG_APPENDS_INFLIGHT_MAX). */
	for (struct plog_append *a = log->write_next; a != NULL; a = a->next) {
		SL_ASSERT(a->state == PLOG_APPEND_QUEUED);
		a->state = PLOG_APPEND_WRITTEN;
		a->write_err = -ECANCELED;
	}
	log->write_next = NULL;
}

/*
 * Starts writes for the queued appends while a slot is free (after a
 * write completed). Each slot is reserved before ring_get_sqe, which may
 * dispatch completions whose callbacks append (those queue behind it) or
 * fail the log; if nothing is left to write then, the SQE stays a NOP.
 */
static void plog_writes_pump(struct plog *log)
{
	/* Each turn fills a slot, or finds the queue emptied or the log failed. */
	for (uint32_t n = 0; n < 2 * PLOG_WRITES_INFLIGHT_MAX + 2 && log->write_next != NULL; n++) {
		if (log->failed) {
			plog_writes_cancel(log);
			break;
		}
		struct plog_write *w = plog_wslot_free(log);
		if (w == NULL)
			break;
		plog_wslot_reserve(log, w);
		struct io_uring_sqe *sqe = ring_get_sqe(log->ring);
		if (log->failed || log->write_next == NULL) {
			plog_wslot_release(log, w);  /* the SQE stays a NOP (user_data 0) */
			continue;
		}
		plog_write_fill(log, w, sqe);
	}
	SL_ASSERT(log->write_next == NULL || log->writes_inflight > 0);
}

/* Moves the iovecs past what the last (short) write wrote. */
static void plog_write_advance(struct plog_write *w)
{
	uint64_t skip = w->written - w->iov_consumed;

	SL_ASSERT(w->written > w->iov_consumed && w->written < w->bytes);
	/* Bounded by iov_count: skip is less than what the iovecs hold. */
	while (w->iov_idx < w->iov_count && skip >= w->iov[w->iov_idx].iov_len) {
		skip -= w->iov[w->iov_idx].iov_len;
		w->iov_idx++;
	}
	SL_ASSERT(w->iov_idx < w->iov_count && skip < w->iov[w->iov_idx].iov_len);
	w->iov[w->iov_idx].iov_base = (uint8_t *)w->iov[w->iov_idx].iov_base + skip;
	w->iov[w->iov_idx].iov_len -= skip;
	w->iov_consumed = w->written;
}

/*
 * The write's appends are done: WRITTEN, each with write_err 0 if all its
 * bytes were written before the failure `err` (0: no failure), else err.
 */
static void plog_write_finish(struct plog_write *w, int err)
{
	struct plog_append *a = w->first;
	uint64_t end = 0;

	SL_ASSERT(err <= 0 && (err != 0 || w->written == w->bytes));
	for (uint32_t i = 0; i < w->append_count; i++, a = a->next) {
		SL_ASSERT(a != NULL && a->state == PLOG_APPEND_WRITING);
		end += a->len;
		a->write_err = end <= w->written ? 0 : err;
		a->state = PLOG_APPEND_WRITTEN;
	}
	SL_ASSERT(end == w->bytes);
}

/*
 * A write CQE: continues a short write (or -EINTR / -EAGAIN) at the first
 * unwritten byte, up to PLOG_WRITE_RESUBMITS_MAX times; otherwise ends the
 * write, starts the next one for the appends queued meanwhile (or cancels
 * them after a failure: nothing is written past a hole), and makes
 * progress. Runs on the owner shard from ring dispatch.
 */
static void plog_write_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct plog_write *w = PLOG_CONTAINER_OF(op, struct plog_write, op);
	struct plog *log = w->log;
	int err = 0;

	(void)cqe_flags;
	SL_ASSERT(w->busy && w->first != NULL && w->written < w->bytes);
	if (res > 0) {
		w->written += (uint64_t)res;
		SL_ASSERT(w->written <= w->bytes);
	}
	int retry = res == -EINTR || res == -EAGAIN || (res > 0 && w->written < w->bytes);
	if (retry && w->resubmits < PLOG_WRITE_RESUBMITS_MAX) {
		/* ring_get_sqe may dispatch other completions; the slot stays busy
		 * so appends from their callbacks queue behind it. */
		w->resubmits++;
		log->stats.writes_resubmitted++;
		if (w->written > w->iov_consumed)
			plog_write_advance(w);
		plog_write_prep(log, w, ring_get_sqe(log->ring));
		return;
	}
	if (res < 0)
		err = res;
	else if (w->written < w->bytes)
		err = -EIO;  /* zero-byte write, or too many short ones */
	plog_write_finish(w, err);
	plog_wslot_release(log, w);
	if (err != 0)
		plog_writes_cancel(log);
	else
		plog_writes_pump(log);
	plog_progress(log);
}

/* May an append start now? */
static enum sl_err plog_append_admit(const struct plog *log)
{
	if (log->closing)
		return SL_ECLOSED;
	if (log->failed)
		return SL_EIO;
	if (log->appends_pending >= PLOG_APPENDS_INFLIGHT_MAX)
		return SL_EAGAIN;
	return SL_OK;
}

/* Reserves a's bytes at the end of the active segment and queues it. */
static void plog_append_enqueue(struct plog *log, struct plog_append *a, uint32_t batches)
{
	struct segment *seg = plog_active(log);

	a->log = log;
	a->seg = seg;
	a->file_pos = seg->size_reserved;
	a->write_err = 0;
	a->batch_count = batches;
	a->flush_need = 0;
	a->res = SL_OK;
	a->next = NULL;
	a->state = PLOG_APPEND_QUEUED;
	seg->size_reserved += (int64_t)a->len;
	seg->file_bytes = SL_MAX(seg->file_bytes, seg->size_reserved);
	seg->appends_pending++;
	seg->batches_pending += batches;
	SL_ASSERT(seg->size_reserved <= SEGMENT_BYTES_MAX);

	if (log->writes_tail != NULL)
		log->writes_tail->next = a;
	else
		log->writes_head = a;
	log->writes_tail = a;
	if (log->write_next == NULL)
		log->write_next = a;
	log->appends_pending++;
	log->stats.appends++;
}

/*
 * plog_append, and for a follower's append (expect_base >= 0: its first
 * batch's baseOffset, `replica_last` its last offset) the check that the
 * offsets it carries start at or above next_offset, made after the last
 * point where completions may run (their callbacks may append).
 */
static enum sl_err plog_append_at(struct plog *log, struct plog_append *a, int64_t now_ms,
				  int64_t expect_base, int64_t replica_last)
{
	struct io_uring_sqe *sqe = NULL;
	struct plog_write *w;
	struct segment *seg;
	uint32_t batches;
	int64_t offsets, first_max_ts;
	enum sl_err err;

	SL_ASSERT(log != NULL && a != NULL && a->done != NULL);
	if (a->buf == NULL || a->len == 0 || (int64_t)a->len > log->cfg.segment_bytes)
		return SL_EINVAL;
	err = plog_append_scan(a, &batches, &offsets, &first_max_ts);
	if (err != SL_OK)
		return err;
	err = plog_append_admit(log);
	if (err != SL_OK)
		return err;
	/* With a write slot free this append starts a write: take the SQE
	 * before changing anything, since ring_get_sqe may dispatch completions
	 * (and callbacks that append, or fail the log); check again after it.
	 * With every slot busy the append only queues: no SQE, and nothing
	 * below calls into the ring. */
	if (plog_wslot_free(log) != NULL) {
		sqe = ring_get_sqe(log->ring);
		err = plog_append_admit(log);
		if (err != SL_OK)
			return err;  /* the SQE stays a NOP (user_data 0, ignored) */
	}
	if (expect_base >= 0 && log->next_offset > expect_base)
		return SL_ERANGE;  /* an append from a callback came first */
	int64_t last = expect_base >= 0 ? replica_last : log->next_offset + offsets - 1;
	/* A follower's batches far above an empty active segment's base (a
	 * compaction gap of 2^31 offsets) would not fit its relative offsets. */
	if (segment_empty(plog_active(log)) &&
	    last - plog_active(log)->base_offset > SEGMENT_REL_OFFSET_MAX)
		return SL_ERANGE;
	log->now_ms = now_ms;
	if (plog_should_roll(log, a->len, batches, last, now_ms)) {
		/* Roll at next_offset; at the first batch when the gap is too wide. */
		int64_t base = last - log->next_offset > SEGMENT_REL_OFFSET_MAX ? expect_base
									: log->next_offset;
		if (plog_roll(log, base) != SL_OK)
			return SL_EIO;
	}

	seg = plog_active(log);
	plog_append_assign(log, a, expect_base >= 0);
	if (segment_empty(seg))
		seg->roll_base_ms = first_max_ts >= 0 ? first_max_ts : seg->created_ms;
	plog_append_enqueue(log, a, batches);
	/* A callback run by ring_get_sqe may have taken the free slot: then
	 * this append waits for that write (the SQE stays a NOP). */
	w = sqe != NULL ? plog_wslot_free(log) : NULL;
	if (w != NULL) {
		plog_wslot_reserve(log, w);
		plog_write_fill(log, w, sqe);
	}
	SL_ASSERT(log->writes_inflight > 0 && a->state != PLOG_APPEND_IDLE);
	SL_ASSERT(a->last_offset >= a->base_offset && log->next_offset == a->last_offset + 1);
	return SL_OK;
}

enum sl_err plog_append(struct plog *log, struct plog_append *a, int64_t now_ms)
{
	return plog_append_at(log, a, now_ms, -1, -1);
}

/*
 * Checks a follower's batches (plog.h): valid, each starting at or above
 * the end of the one before it (gaps allowed: a compacted leader), the
 * first at or above next_offset, all within one segment's relative-offset
 * range. SL_OK with *last (the last offset), SL_ERANGE, SL_ECORRUPT.
 */
static enum sl_err plog_replica_check(const struct plog *log, const struct plog_append *a,
				      int64_t *last)
{
	int64_t expect = log->next_offset;
	int64_t first = -1;
	size_t p = 0;

	/* Each turn passes one batch of >= BATCH_HEADER_BYTES bytes. */
	while (p < a->len) {
		struct batch_header h;
		if (batch_validate(a->buf + p, a->len - p, BATCH_CHECK_ALL, &h) != SL_OK)
			return SL_ECORRUPT;
		if (h.base_offset < expect)
			return SL_ERANGE;
		if (first < 0)
			first = h.base_offset;
		expect = batch_last_offset(&h) + 1;
		p += batch_size_bytes(&h);
	}
	SL_ASSERT(p == a->len && expect > log->next_offset && first >= log->next_offset);
	if (expect - 1 - first > SEGMENT_REL_OFFSET_MAX)
		return SL_ERANGE;
	*last = expect - 1;
	return SL_OK;
}

enum sl_err plog_append_replica(struct plog *log, struct plog_append *a, int64_t now_ms)
{
	enum sl_err err;

	SL_ASSERT(log != NULL && a != NULL && a->done != NULL);
	if (a->buf == NULL || a->len == 0 || (int64_t)a->len > log->cfg.segment_bytes)
		return SL_EINVAL;
	int64_t last = -1;
	err = plog_replica_check(log, a, &last);
	if (err != SL_OK)
		return err;
	int64_t first = (int64_t)be64_load(a->buf + BATCH_OFF_BASE_OFFSET);
	err = plog_append_at(log, a, now_ms, first, last);
	SL_ASSERT(err != SL_OK || a->base_offset == first);
	return err;
}

/* The head append's batches become visible: indexes, offsets, flush need. */
static void plog_append_make_visible(struct plog *log, struct plog_append *a)
{
	struct segment *seg = a->seg;
	size_t p = 0;

	SL_ASSERT(a->file_pos == seg->size);
	SL_ASSERT(a->base_offset >= log->end_offset);   /* above: a follower's gap */
	for (uint32_t i = 0; i < a->batch_count; i++) {
		struct batch_header h;
		enum sl_err err = batch_header_parse(a->buf + p, a->len - p, &h);
		SL_ASSERT(err == SL_OK);
		segment_track_batch(seg, a->file_pos + (int64_t)p, &h,
				    log->cfg.index_interval_bytes);
		p += batch_size_bytes(&h);
	}
	SL_ASSERT(p == a->len && seg->next_offset == a->last_offset + 1);
	seg->log_dirty = 1;
	log->end_offset = a->last_offset + 1;
	a->res = SL_OK;
	a->flush_need = 0;
	if (log->cfg.flush_interval_messages > 0 &&
	    log->end_offset - log->flush_issued_offset >= log->cfg.flush_interval_messages)
		a->flush_need = log->end_offset;
}

/* Moves written appends, in order, from `writes` to `deliver`. */
static void plog_writes_process(struct plog *log)
{
	struct plog_append *a;

	/* Bounded: each turn removes one of at most appends_pending items. */
	while ((a = log->writes_head) != NULL && a->state == PLOG_APPEND_WRITTEN) {
		struct segment *seg = a->seg;
		log->writes_head = a->next;
		if (log->writes_head == NULL)
			log->writes_tail = NULL;
		a->next = NULL;
		if (a->write_err != 0 || log->failed) {
			if (!log->failed)
				plog_fail(log, "a segment write", a->write_err);
			a->res = SL_EIO;
			a->flush_need = 0;
		} else {
			plog_append_make_visible(log, a);
		}
		SL_ASSERT(seg->appends_pending > 0 && seg->batches_pending >= a->batch_count);
		seg->appends_pending--;
		seg->batches_pending -= a->batch_count;
		if (seg->appends_pending == 0 && seg->state == SEGMENT_SEALING)
			plog_seal(log, seg);
		a->state = PLOG_APPEND_DELIVERING;
		if (log->deliver_tail != NULL)
			log->deliver_tail->next = a;
		else
			log->deliver_head = a;
		log->deliver_tail = a;
	}
}

/* ---- flush ---- */

/* Is there a parked append or waiter that a flush issued now would release? */
static int plog_flush_wanted(const struct plog *log)
{
	if (log->flush_requested)
		return 1;
	for (const struct plog_append *a = log->deliver_head; a != NULL; a = a->next)
		if (a->flush_need > log->flushed_offset)
			return a->flush_need <= log->end_offset;
	for (const struct plog_flush_waiter *w = log->waiters_head; w != NULL; w = w->next)
		if (w->target > log->flushed_offset)
			return w->target <= log->end_offset;
	return 0;
}

/* fsync_flags: IORING_FSYNC_DATASYNC for files, 0 (full) for the directory. */
static void plog_sync_submit(struct plog *log, struct segment_sync *s, int fd,
			     unsigned fsync_flags)
{
	struct io_uring_sqe *sqe = ring_get_sqe(log->ring);

	io_uring_prep_fsync(sqe, fd, fsync_flags);
	s->op.done = plog_sync_done;
	s->owner = log;
	if (s->seg != NULL)
		segment_ref(s->seg);
	log->flush_ops_inflight++;
	log->stats.fsyncs++;
	ring_sqe_set_op(log->ring, sqe, &s->op);
}

/* One fsync of the flush in flight ended (or the issuing token dropped). */
static void plog_flush_op_finished(struct plog *log)
{
	SL_ASSERT(log->flush_ops_inflight > 0);
	if (--log->flush_ops_inflight > 0)
		return;
	if (log->flush_err != 0)
		plog_fail(log, "fdatasync", log->flush_err);
	else if (log->flush_target > log->flushed_offset)
		log->flushed_offset = log->flush_target;
	plog_progress(log);
}

static void plog_sync_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct segment_sync *s = PLOG_CONTAINER_OF(op, struct segment_sync, op);
	struct plog *log = s->owner;
	struct segment *seg = s->seg;

	(void)cqe_flags;
	if (res < 0 && log->flush_err == 0)
		log->flush_err = res;
	if (seg != NULL)
		segment_unref(seg);  /* may free seg (and s): not touched after */
	plog_flush_op_finished(log);
}

/* Issues a group commit covering end_offset if one is wanted and none runs. */
static void plog_flush_maybe_issue(struct plog *log)
{
	if (log->flush_ops_inflight > 0 || log->failed)
		return;
	if (log->end_offset <= log->flushed_offset) {
		log->flush_requested = 0;
		return;
	}
	if (!plog_flush_wanted(log))
		return;
	log->flush_target = log->end_offset;
	log->flush_issued_offset = log->end_offset;
	log->last_flush_ms = log->now_ms;
	log->flush_requested = 0;
	log->flush_err = 0;
	log->flush_ops_inflight = 1;  /* the issuing token (invariant 4) */
	log->stats.flushes++;
	for (uint32_t i = 0; i < log->seg_count; i++) {
		struct segment *seg = log->segs[i];
		seg->sync[SEGMENT_FILE_LOG].seg = seg;
		seg->sync[SEGMENT_FILE_INDEX].seg = seg;
		seg->sync[SEGMENT_FILE_TIMEINDEX].seg = seg;
		if (seg->log_dirty) {
			seg->log_dirty = 0;
			plog_sync_submit(log, &seg->sync[SEGMENT_FILE_LOG], seg->log_fd,
					 IORING_FSYNC_DATASYNC);
		}
		if (seg->oindex.dirty) {
			seg->oindex.dirty = 0;
			plog_sync_submit(log, &seg->sync[SEGMENT_FILE_INDEX], seg->oindex.fd,
					 IORING_FSYNC_DATASYNC);
		}
		if (seg->tindex.dirty) {
			seg->tindex.dirty = 0;
			plog_sync_submit(log, &seg->sync[SEGMENT_FILE_TIMEINDEX], seg->tindex.fd,
					 IORING_FSYNC_DATASYNC);
		}
	}
	if (log->dir_dirty) {
		log->dir_dirty = 0;
		plog_sync_submit(log, &log->dir_sync, log->dirfd, 0);
	}
	plog_flush_op_finished(log);
}

/* Calls done for every deliverable append and waiter, in order. */
static void plog_deliver(struct plog *log)
{
	struct plog_append *a;
	struct plog_flush_waiter *w;
	int flush_hopeless;

	/* Bounded: each turn removes one item of a finite list. */
	while ((a = log->deliver_head) != NULL) {
		flush_hopeless = log->failed && log->flush_ops_inflight == 0;
		if (a->flush_need > log->flushed_offset) {
			if (!flush_hopeless)
				break;
			a->res = SL_EIO;
		}
		log->deliver_head = a->next;
		if (log->deliver_head == NULL)
			log->deliver_tail = NULL;
		a->next = NULL;
		a->state = PLOG_APPEND_IDLE;
		SL_ASSERT(log->appends_pending > 0);
		log->appends_pending--;
		a->done(a);
	}
	while ((w = log->waiters_head) != NULL) {
		enum sl_err res = SL_OK;
		flush_hopeless = log->failed && log->flush_ops_inflight == 0;
		if (w->target > log->flushed_offset) {
			if (!flush_hopeless)
				break;
			res = SL_EIO;
		}
		log->waiters_head = w->next;
		if (log->waiters_head == NULL)
			log->waiters_tail = NULL;
		w->next = NULL;
		w->done(w, res);
	}
}

static void plog_progress(struct plog *log)
{
	if (log->in_progress) {
		log->progress_again = 1;
		return;
	}
	log->in_progress = 1;
	for (int n = 0; n < PLOG_PROGRESS_TURNS_MAX; n++) {
		log->progress_again = 0;
		plog_writes_process(log);
		plog_flush_maybe_issue(log);
		plog_deliver(log);
		if (!log->progress_again)
			break;
	}
	log->in_progress = 0;
	plog_check(log);
}

static void plog_waiter_unlink(struct plog *log, struct plog_flush_waiter *w)
{
	struct plog_flush_waiter *prev = NULL;

	/* Bounded by the list length. */
	for (struct plog_flush_waiter *it = log->waiters_head; it != NULL; it = it->next) {
		if (it == w) {
			if (prev != NULL)
				prev->next = w->next;
			else
				log->waiters_head = w->next;
			if (log->waiters_tail == w)
				log->waiters_tail = prev;
			w->next = NULL;
			return;
		}
		prev = it;
	}
	SL_ASSERT(!"plog_waiter_unlink: waiter not queued");
}

enum sl_err plog_flush_wait(struct plog *log, struct plog_flush_waiter *w,
			    enum plog_flush_state *state)
{
	enum sl_err err = SL_OK;
	int nested;

	SL_ASSERT(log != NULL && w != NULL && w->done != NULL && state != NULL);
	if (log->closing)
		return SL_ECLOSED;
	if (log->failed)
		return SL_EIO;
	*state = PLOG_FLUSH_DURABLE;
	if (log->next_offset <= log->flushed_offset)
		return SL_OK;
	w->target = log->next_offset;
	w->next = NULL;
	SL_ASSERT(log->waiters_tail == NULL || log->waiters_tail->target <= w->target);
	if (log->waiters_tail != NULL)
		log->waiters_tail->next = w;
	else
		log->waiters_head = w;
	log->waiters_tail = w;
	*state = PLOG_FLUSH_QUEUED;
	/* Issue under the re-entry guard so `done` never runs before we return. */
	nested = log->in_progress;
	log->in_progress = 1;
	plog_flush_maybe_issue(log);
	log->in_progress = nested;
	/* The flush may have ended while its fsyncs were submitted (a full SQ
	 * makes ring_get_sqe reap): answer now rather than call back early. */
	if (w->target <= log->flushed_offset || log->failed) {
		plog_waiter_unlink(log, w);
		*state = PLOG_FLUSH_DURABLE;
		if (w->target > log->flushed_offset)
			err = SL_EIO;
	}
	if (!nested && log->progress_again)
		plog_progress(log);
	return err;
}

/* ---- time ---- */

enum sl_err plog_tick(struct plog *log, int64_t now_ms)
{
	enum sl_err err = SL_OK;

	SL_ASSERT(log != NULL && !log->closing);
	log->now_ms = now_ms;
	if (!log->failed) {
		if (log->cfg.flush_interval_ms > 0 && log->end_offset > log->flush_issued_offset &&
		    now_ms - log->last_flush_ms >= log->cfg.flush_interval_ms)
			log->flush_requested = 1;
		struct segment *act = plog_active(log);
		if (log->cfg.roll_ms > 0 && !segment_empty(act) &&
		    now_ms - act->roll_base_ms > log->cfg.roll_ms &&
		    plog_roll(log, log->next_offset) != SL_OK)
			err = SL_EIO;
	}
	plog_progress(log);
	if (log->flushed_offset != log->ckpt_recovery_point &&
	    now_ms - log->ckpt_ms >= log->cfg.checkpoint_interval_ms &&
	    plog_checkpoint_write(log, 0) != SL_OK)
		err = SL_EIO;
	return err;
}

int64_t plog_next_deadline_ms(const struct plog *log)
{
	int64_t d = INT64_MAX;
	const struct segment *act = plog_active(log);

	if (!log->failed && log->cfg.flush_interval_ms > 0 &&
	    log->end_offset > log->flush_issued_offset)
		d = SL_MIN(d, plog_add_sat(log->last_flush_ms, log->cfg.flush_interval_ms));
	if (!log->failed && log->cfg.roll_ms > 0 && !segment_empty(act))
		d = SL_MIN(d, plog_add_sat(plog_add_sat(act->roll_base_ms, log->cfg.roll_ms), 1));
	if (log->flushed_offset != log->ckpt_recovery_point)
		d = SL_MIN(d, plog_add_sat(log->ckpt_ms, log->cfg.checkpoint_interval_ms));
	return d;
}

/* ---- close ---- */

static int plog_idle(const struct plog *log)
{
	return log->writes_head == NULL && log->deliver_head == NULL &&
	       log->waiters_head == NULL && log->flush_ops_inflight == 0 &&
	       (log->failed || log->flushed_offset >= log->end_offset);
}

enum sl_err plog_close(struct plog *log)
{
	enum sl_err err = SL_OK;
	int clean;

	SL_ASSERT(log != NULL && !log->in_progress);
	log->closing = 1;
	for (uint32_t n = 0; !plog_idle(log); n++) {
		SL_ASSERT(n < PLOG_CLOSE_WAIT_TURNS_MAX);
		if (!log->failed && log->end_offset > log->flushed_offset)
			log->flush_requested = 1;
		plog_progress(log);
		if (plog_idle(log))
			break;
		int rc = ring_wait(log->ring, 1, -1);
		SL_ASSERT(rc >= 0);
	}
	SL_ASSERT(log->appends_pending == 0 && log->flush_ops_inflight == 0);
	clean = !log->failed;
	if (segment_seal(plog_active(log)) != SL_OK)
		clean = 0;
	for (uint32_t i = 0; i < log->seg_count; i++)
		if (plog_seg_sync_now(log, log->segs[i]) != SL_OK)
			clean = 0;
	if (plog_checkpoint_write(log, clean) != SL_OK)
		clean = 0;
	if (!clean)
		err = SL_EIO;
	plog_free(log);
	return err;
}

/* ---- getters ---- */

int64_t plog_start_offset(const struct plog *log)
{
	return log->start_offset;
}

int64_t plog_end_offset(const struct plog *log)
{
	return log->end_offset;
}

int64_t plog_next_offset(const struct plog *log)
{
	return log->next_offset;
}

int64_t plog_flushed_offset(const struct plog *log)
{
	return log->flushed_offset;
}

int64_t plog_size_bytes(const struct plog *log)
{
	int64_t total = 0;

	for (uint32_t i = 0; i < log->seg_count; i++)
		total += segment_size(log->segs[i]);
	return total;
}

uint32_t plog_segment_count(const struct plog *log)
{
	return log->seg_count;
}

int plog_failed(const struct plog *log)
{
	return log->failed;
}

const struct plog_stats *plog_stats(const struct plog *log)
{
	return &log->stats;
}
