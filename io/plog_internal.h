/*
 * plog_internal.h — the partition log's state, shared by plog.c (open,
 * close, append, flush, tick), plog_read.c (reads, lookups, scan) and
 * plog_trim.c (truncation, deletion, retention). Not for other folders.
 *
 * Invariants (checked by plog_check in debug builds):
 *   1. segs[0..seg_count) sorted by base offset; the last is ACTIVE, the
 *      others SEALED or SEALING; seg_count >= 1 while open.
 *   2. flushed_offset <= flush_issued_offset <= end_offset <= next_offset,
 *      start_offset <= end_offset, and with no append pending end_offset
 *      is the active segment's next offset (the flushed offset may lag the
 *      start offset after plog_delete_before).
 *   3. writes: appends submitted, in offset order, some maybe written;
 *      deliver: appends made visible (or failed), waiting for their flush or
 *      for an earlier one; appends_pending = |writes| + |deliver|
 *      <= PLOG_APPENDS_INFLIGHT_MAX.
 *   4. At most one flush (group commit) in flight: flush_ops_inflight counts
 *      its fsyncs plus one token while it is being issued.
 *   5. waiters are in target order (targets are next_offset at call time).
 */
#ifndef SL_IO_PLOG_INTERNAL_H
#define SL_IO_PLOG_INTERNAL_H

#include <stddef.h>

#include "plog.h"
#include "segment.h"

#define PLOG_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

enum plog_append_state {
	PLOG_APPEND_IDLE = 0,
	PLOG_APPEND_WRITING,
	PLOG_APPEND_WRITTEN,
	PLOG_APPEND_DELIVERING,
};

struct plog {
	struct ring *ring;
	struct plog_config cfg;
	struct segment_config scfg;
	int dirfd;
	char *dir;                      /* for log lines */

	struct segment **segs;
	uint32_t seg_count;
	uint32_t seg_cap;

	int64_t start_offset;
	int64_t end_offset;
	int64_t next_offset;
	int64_t flushed_offset;         /* recovery point */
	int64_t flush_issued_offset;    /* target of the latest flush issued */
	int64_t flush_target;           /* target of the flush in flight */

	int64_t now_ms;                 /* latest clock reading passed in */
	int64_t last_flush_ms;
	int64_t ckpt_ms;
	int64_t ckpt_recovery_point;    /* recovery point in the last checkpoint */

	struct plog_append *writes_head, *writes_tail;
	struct plog_append *deliver_head, *deliver_tail;
	uint32_t appends_pending;
	struct plog_flush_waiter *waiters_head, *waiters_tail;

	uint32_t flush_ops_inflight;
	int flush_err;                  /* first -errno of the flush in flight */
	int flush_requested;            /* time policy or close */
	int dir_dirty;                  /* entries created/removed since the last sync */
	struct segment_sync dir_sync;

	int failed;
	int closing;
	int in_progress;                /* plog_progress is running (re-entry guard) */
	int progress_again;

	struct plog_stats stats;
};

static inline struct segment *plog_active(const struct plog *log)
{
	SL_ASSERT(log->seg_count > 0);
	return log->segs[log->seg_count - 1];
}

/* Index of the last segment whose base offset is <= offset, or -1. */
int64_t plog_seg_find(const struct plog *log, int64_t offset);

/* Writes the checkpoint (start, recovery point, clean flag). SL_EIO. */
enum sl_err plog_checkpoint_write(struct plog *log, int clean);

/* Enters the failed state (once), logging what failed. */
void plog_fail(struct plog *log, const char *what, int err);

/* Appends a segment to the list (growing it). SL_ENOMEM / SL_ECORRUPT. */
enum sl_err plog_segs_push(struct plog *log, struct segment *seg);

/* Unlinks and drops segments [from, seg_count). */
void plog_segs_delete_from(struct plog *log, uint32_t from);

/* Unlinks and drops the first n segments (all sealed, not the active one). */
void plog_segs_delete_front(struct plog *log, uint32_t n);

/* fdatasyncs the dirty files of seg synchronously. SL_EIO. */
enum sl_err plog_seg_sync_now(struct plog *log, struct segment *seg);

/* Debug-build invariant check (SL_DEBUG_ASSERT). */
void plog_check(const struct plog *log);

#endif
