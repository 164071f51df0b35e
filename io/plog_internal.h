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
 *   3. writes: appends accepted, in offset order: first those covered by
 *      a write slot (WRITING, or WRITTEN awaiting an earlier one), then from
 *      write_next on the QUEUED ones no write covers yet; deliver: appends
 *      made visible (or failed), waiting for their flush or for an earlier
 *      one; appends_pending = |writes| + |deliver| <= PLOG_APPENDS_INFLIGHT_MAX.
 *   3a. writes_inflight = busy slots <= cfg.writes_inflight_max; a busy
 *      slot covers append_count consecutive appends of `writes`, all in one
 *      segment, whose bytes are contiguous from its file_pos. Whenever
 *      write_next is set, writes_inflight > 0 (a queued append always has a
 *      write ahead of it whose completion starts the next one); it may lapse
 *      only between a slot's release in plog_write_done and the
 *      plog_writes_pump after it, and between plog_append's enqueue and its
 *      fill, neither of which calls into the ring.
 *   4. At most one flush (group commit) in flight: flush_ops_inflight counts
 *      its fsyncs plus one token while it is being issued.
 *   5. waiters are in target order (targets are next_offset at call time).
 */
#ifndef SL_IO_PLOG_INTERNAL_H
#define SL_IO_PLOG_INTERNAL_H

#include <stddef.h>
#include <sys/uio.h>

#include "plog.h"
#include "segment.h"

#define PLOG_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/*
 * An append's states: plog_append -> QUEUED (offsets and position reserved)
 * --plog_write_fill--> WRITING (a slot covers it) --plog_write_done-->
 * WRITTEN (or QUEUED --plog_writes_cancel--> WRITTEN with -ECANCELED)
 * --plog_writes_process--> DELIVERING --plog_deliver--> IDLE (done called).
 */
enum plog_append_state {
	PLOG_APPEND_IDLE = 0,
	PLOG_APPEND_QUEUED,
	PLOG_APPEND_WRITING,
	PLOG_APPEND_WRITTEN,
	PLOG_APPEND_DELIVERING,
};

/*
 * One write SQE (IORING_OP_WRITE for one append, IORING_OP_WRITEV for
 * several) and the run of appends it covers. The iovecs point into the
 * appends' buffers and belong to the kernel while busy; a short write
 * advances iov_idx / the partial iovec and resubmits the rest.
 */
struct plog_write {
	struct ring_op op;
	struct plog *log;
	struct segment *seg;
	struct plog_append *first;      /* first append covered (NULL unless filled) */
	int64_t file_pos;               /* position of the first byte */
	uint64_t bytes;                 /* total covered */
	uint64_t written;               /* completed so far */
	uint64_t iov_consumed;          /* of written, already cut from the iovecs */
	uint32_t append_count;          /* = iov_count */
	uint32_t iov_count;
	uint32_t iov_idx;               /* first iovec not wholly written */
	uint16_t resubmits;
	uint8_t busy;                   /* reserved or in flight */
	struct iovec iov[PLOG_WRITE_IOVS_MAX];
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
	struct plog_append *write_next;  /* first QUEUED append of `writes`, or NULL */
	struct plog_write *wslots;       /* cfg.writes_inflight_max slots */
	uint32_t writes_inflight;        /* busy slots */
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

/*
 * Creates the segment at `base_offset` (segment_create) and appends it as
 * the new last segment; on a push failure the segment is dropped again
 * (its files stay). segment_create's errors, SL_ENOMEM / SL_ECORRUPT.
 */
enum sl_err plog_segs_push_new(struct plog *log, int64_t base_offset);

/* Unlinks and drops segments [from, seg_count). */
void plog_segs_delete_from(struct plog *log, uint32_t from);

/* Unlinks and drops the first n segments (all sealed, not the active one). */
void plog_segs_delete_front(struct plog *log, uint32_t n);

/* fdatasyncs the dirty files of seg synchronously. SL_EIO. */
enum sl_err plog_seg_sync_now(struct plog *log, struct segment *seg);

/* Debug-build invariant check (SL_DEBUG_ASSERT). */
void plog_check(const struct plog *log);

/*
 * A timestamp lookup's answer for one candidate batch `h` at file position
 * `pos` of `seg`: SL_OK with the offset and timestamp set, SL_ENOTFOUND to look
 * at the next batch, or an error that ends the lookup.
 */
typedef enum sl_err plog_ts_pick_fn(const struct plog *log, const struct segment *seg,
				    int64_t pos, const struct batch_header *h, int64_t ts_ms,
				    int64_t *offset, int64_t *timestamp);

/*
 * Walks, in offset order, the batches whose max timestamp is >= ts_ms and
 * that end at or after the log start offset (time index first, then batch
 * headers), asking `pick` for each until it answers. SL_ENOTFOUND when no
 * batch answers; SL_EIO or SL_ECORRUPT for unreadable headers.
 */
enum sl_err plog_timestamp_walk(struct plog *log, int64_t ts_ms, plog_ts_pick_fn *pick,
				int64_t *offset, int64_t *timestamp);

#endif
