/*
 * plog.h — the partition log: one topic-partition's ordered, durable
 * sequence of record batches, stored as Kafka stores it
 * (`<dir>/<20-digit base offset>.log|.index|.timeindex`, see segment.h).
 *
 * Contracts (the words later code relies on):
 *   - APPEND = VISIBLE. plog_append assigns offsets and file positions at
 *     once (it rewrites each batch's baseOffset in the caller's buffer) and
 *     hands the bytes to an io_uring write. When the write completes, in
 *     append order, the batches become visible: plog_end_offset moves past
 *     them and reads return them. Only then (and, under the message-count
 *     flush policy, only after the fdatasync that covers them) is the
 *     append's `done` called.
 *   - WRITES ARE COALESCED (write-side group commit). At most
 *     writes_inflight_max write SQEs (default 1) are in flight per log. An
 *     append arriving while none is in flight starts its own
 *     IORING_OP_WRITE at once (a lone append pays no extra latency); appends
 *     arriving while the writes are busy wait, positions already reserved,
 *     and when a write completes the queued ones go out together as ONE
 *     IORING_OP_WRITEV (contiguous bytes of one segment, at most
 *     PLOG_WRITE_IOVS_MAX appends and PLOG_WRITE_BYTES_MAX bytes, the first
 *     append always). Why: buffered writes to one inode are serialised by
 *     the kernel and each write SQE is handed to an io-wq worker; with one
 *     SQE per append the hand-offs, not the copies, set the throughput
 *     (measured with bench BM_LogAppend, 16 x 64 KiB appends in flight,
 *     ext4 on 6.18: 55-75% of plain write(2) with one SQE per append, about
 *     100% coalesced; a lone 1 KiB append's latency is unchanged). The
 *     completion of a writev completes all the appends it covers, in
 *     order; a short writev is continued from the first unwritten byte.
 *   - FLUSH = DURABLE. Data is durable only below plog_flushed_offset (the
 *     recovery point): an fdatasync issued after those writes completed has
 *     returned. plog_flush_wait calls back once everything appended before
 *     the call is durable. One fdatasync covers every append completed
 *     before it was issued (group commit).
 *   - A failed write or fdatasync puts the log in the FAILED state, logged
 *     loudly: every later append fails with SL_EIO, reads keep working up to
 *     the end offset, and the next plog_open recovers the files. The log is
 *     never silently torn.
 *   - Everything for one partition runs on its owner shard: no locks. The
 *     clock is injected (now_ms arguments); the owner calls plog_tick at
 *     plog_next_deadline_ms for time-based flush, roll and checkpoints.
 *
 * Offsets: flushed_offset <= end_offset <= next_offset, start_offset <= end_offset.
 *   start_offset   first offset readable (log start; moved by retention,
 *                  plog_delete_before)
 *   flushed_offset the recovery point: everything below it is durable
 *   end_offset     one past the last visible offset (Kafka's log end offset)
 *   next_offset    the next offset plog_append will assign (end_offset plus
 *                  the appends still in flight)
 *
 * Checkpoint: `<dir>/partition.checkpoint` (checkpoint.h format) with keys
 *   log_start_offset, recovery_point, clean_shutdown (1 only between a
 *   clean plog_close and the next plog_open, which resets it to 0 before it
 *   returns). Written at open, at close, when the start offset moves, after
 *   a truncation, and every checkpoint_interval_ms while the recovery point
 *   moves (plog_tick).
 *
 * Recovery (plog_open):
 *   - clean_shutdown = 1: the files are trusted; each segment only gets a
 *     header walk from its last offset index entry to EOF (must end exactly
 *     there, offsets in order, indexes whole). A failed check demotes that
 *     segment to a full scan.
 *   - otherwise: segments wholly below the recovery point get the same
 *     check; the others are scanned from the last valid offset index entry
 *     below the recovery point (or from their start), validating every
 *     batch's CRC. The .log is truncated at the first invalid batch; later
 *     segments are then deleted (LOG_W with counts) — except after a
 *     zero-filled (preallocated) tail that ends exactly where the next
 *     segment starts. Missing, short or bad indexes are rebuilt from the log.
 *     Recovered segments are fdatasync'ed and the recovery point set to the
 *     end offset.
 *   - A gap in offsets between two segments (a lost or shortened file; later,
 *     compaction) is kept and logged; a read inside it returns the next batch.
 *   - Trust has a price: with the clean flag (or below the recovery point) a
 *     sealed segment's middle bytes and middle index entries are not
 *     re-read, as in Kafka; a time index cut at an entry boundary there only
 *     understates that segment's max timestamp.
 *
 * States: plog_open -> OPEN; a write/fsync error -> FAILED (reads only);
 * plog_close (from OPEN or FAILED) -> freed.
 */
#ifndef SL_IO_PLOG_H
#define SL_IO_PLOG_H

#include <stdint.h>

#include "ring.h"
#include "sl.h"

/* Appends submitted and not yet completed (delivered) per partition. */
#define PLOG_APPENDS_INFLIGHT_MAX 256
/* Upper bound of plog_config.writes_inflight_max (write SQEs in flight). */
#define PLOG_WRITES_INFLIGHT_MAX 16
/* Appends one coalesced write covers at most (its iovecs; <= UIO_MAXIOV). */
#define PLOG_WRITE_IOVS_MAX 64
/* Bytes one coalesced write covers at most, unless its first append alone
 * is larger: bounds how long the first append of a group waits for the
 * others (4 MiB is about 2 ms of page-cache copying). */
#define PLOG_WRITE_BYTES_MAX (4u << 20)
/* Upper bound on segments per partition (a directory holding more is refused). */
#define PLOG_SEGMENTS_MAX (1u << 20)
#define PLOG_CHECKPOINT_NAME "partition.checkpoint"

/* Kafka's topic/broker settings of the same names. */
struct plog_config {
	int64_t segment_bytes;            /* log.segment.bytes: 14 .. INT32_MAX */
	int64_t roll_ms;                  /* log.roll.ms; <= 0: never by time */
	int32_t index_interval_bytes;     /* log.index.interval.bytes: >= 0 */
	int32_t index_size_max_bytes;     /* log.index.size.max.bytes: >= 48 */
	int64_t retention_ms;             /* log.retention.ms; -1: unlimited */
	int64_t retention_bytes;          /* log.retention.bytes; -1: unlimited */
	int64_t flush_interval_messages;  /* log.flush.interval.messages; <= 0: never */
	int64_t flush_interval_ms;        /* log.flush.interval.ms; <= 0: never */
	int64_t checkpoint_interval_ms;   /* log.flush.offset.checkpoint.interval.ms */
	int preallocate;                  /* log.preallocate */
	int shard_id;                     /* for log lines only */
	/* Not Kafka's: write SQEs in flight at once, 1 .. PLOG_WRITES_INFLIGHT_MAX
	 * (0 means the default, 1: everything queued behind one write goes out as
	 * one writev). More only splits the coalescing; tests use it to complete
	 * writes out of order. */
	int32_t writes_inflight_max;
};

/* Kafka's defaults (1 GiB segments, 7 days, 4 KiB index interval, ...). */
void plog_config_default(struct plog_config *cfg);

struct plog;
struct segment;

/* Counters for tests and metrics. */
struct plog_stats {
	uint64_t appends;                 /* accepted by plog_append */
	uint64_t writes;                  /* write SQEs started (WRITE or WRITEV; resubmissions
					   * not counted): appends / writes = coalescing */
	uint64_t writes_resubmitted;      /* short writes continued */
	uint64_t flushes;                 /* group commits issued */
	uint64_t fsyncs;                  /* IORING_OP_FSYNC submitted (all files) */
	uint64_t rolls;
	uint64_t segments_deleted;        /* retention, delete_before, truncation */
	uint64_t checkpoints_written;
	/* from plog_open */
	uint64_t recovery_batches_validated;  /* batches CRC-checked by a scan */
	uint64_t recovery_headers_walked;     /* headers read by trusted checks */
	int64_t recovery_bytes_truncated;
	uint32_t recovery_segments_scanned;
	uint32_t recovery_segments_deleted;
	int recovery_clean;                   /* opened after a clean shutdown */
};

/*
 * Opens the partition log in directory `dir` (created if missing; its
 * parent must exist), recovering it as described above; `ring` is the
 * owner shard's ring, used by every later operation. now_ms is the current
 * wall clock (new segments' creation time, time-based policies).
 * SL_EINVAL (config out of range), SL_EIO (logged), SL_ENOMEM,
 * SL_ECORRUPT (a file no recovery can use, logged).
 */
enum sl_err plog_open(struct plog **out, struct ring *ring, const char *dir,
		      const struct plog_config *cfg, int64_t now_ms);

/*
 * Waits (driving the ring) until every append has completed and been
 * delivered, flushes, seals the active segment's files to their real
 * sizes, writes the checkpoint with clean_shutdown = 1, and frees the log.
 * Read slices still held keep their segment (and its fd) alive until
 * released. Must not be called from a plog callback. Returns SL_EIO if the
 * log had failed (no clean marker then) or the final sync failed; the log is
 * freed either way.
 */
enum sl_err plog_close(struct plog *log);

/* ---- append ---- */

struct plog_append;
typedef void plog_append_done_fn(struct plog_append *a);

/*
 * One append request, embedded in the caller's object (container_of in
 * `done`). The caller fills buf, len, done; plog fills the rest.
 */
struct plog_append {
	/* in */
	uint8_t *buf;                /* one or more whole batches, validated */
	size_t len;
	plog_append_done_fn *done;
	/* out, valid from plog_append's return */
	int64_t base_offset;         /* first offset assigned */
	int64_t last_offset;         /* last offset assigned */
	/* out, valid in done */
	enum sl_err res;             /* SL_OK or SL_EIO */
	/* private */
	struct plog *log;
	struct segment *seg;
	struct plog_append *next;
	int64_t file_pos;
	int64_t flush_need;          /* deliver once flushed_offset >= this */
	uint32_t batch_count;
	int32_t write_err;           /* -errno of the write that covered it */
	uint8_t state;
};

/*
 * Appends the batches in a->buf (a->len bytes, every batch already checked
 * with batch_validate by the caller; partitionLeaderEpoch and LogAppendTime
 * are the caller's to set). Offsets are assigned now: each batch's
 * baseOffset is rewritten in place, from plog_next_offset on, each batch
 * taking lastOffsetDelta + 1 offsets; a->base_offset/last_offset say which.
 * Rolls the active segment first if the append would make it exceed
 * segment_bytes, if it is older than roll_ms, or if its indexes are nearly
 * full. With a write slot free the write is queued on the ring at once
 * (submitted by the owner's next ring_wait); otherwise the append waits for
 * the write in flight and then goes out with the others that waited, in one
 * writev (see WRITES ARE COALESCED above).
 *
 * Ownership: the buffer belongs to the kernel and to plog until `done`
 * runs: keep it alive and unmodified. `done` runs exactly once, on the
 * owner shard, in append order, with a->res = SL_OK (written and visible;
 * durable too if flush_interval_messages demanded it) or SL_EIO.
 *
 * Returns (and `done` is NOT called): SL_OK queued; SL_EAGAIN
 * PLOG_APPENDS_INFLIGHT_MAX appends pending — retry after a completion;
 * SL_EINVAL len 0, not whole batches, or larger than segment_bytes;
 * SL_EIO the log failed, or a roll could not create files (logged);
 * SL_ECLOSED the log is closing.
 */
enum sl_err plog_append(struct plog *log, struct plog_append *a, int64_t now_ms);

/*
 * A follower's append (replication): the batches in a->buf were fetched
 * from the leader and keep the offsets the leader gave them. Each batch is
 * validated (batch_validate with BATCH_CHECK_ALL: CRC, attributes, record
 * walk; not the producer checks, which the leader ran), the first batch's
 * baseOffset must be >= plog_next_offset (the log end plus appends in
 * flight) and each later one must start above its predecessor's last
 * offset. Gaps are kept, as Kafka's follower keeps them: a compacted
 * leader (io/compact.h) has dropped batches, and a read inside a gap
 * returns the next batch, on the leader and here alike. The offsets of
 * one append span at most SEGMENT_REL_OFFSET_MAX. Then it is plog_append:
 * the same roll (at plog_next_offset; at the first batch when a gap is
 * wider than a segment's relative offsets), index, flush, coalescing and
 * completion rules, and the bytes land on disk exactly as received (no
 * baseOffset is rewritten); plog_next_offset / the log end move past the
 * last batch.
 * Returns plog_append's results, and (nothing written, done not called):
 * SL_ERANGE a baseOffset below plog_next_offset or overlapping the batch
 * before it, or offsets too far apart (above); SL_ECORRUPT a batch fails
 * validation or the buffer is not whole batches.
 */
enum sl_err plog_append_replica(struct plog *log, struct plog_append *a, int64_t now_ms);

/* ---- flush ---- */

struct plog_flush_waiter;
typedef void plog_flush_done_fn(struct plog_flush_waiter *w, enum sl_err res);

struct plog_flush_waiter {
	plog_flush_done_fn *done;    /* in */
	/* private */
	int64_t target;
	struct plog_flush_waiter *next;
};

enum plog_flush_state {
	PLOG_FLUSH_DURABLE = 0,      /* already durable; done will not be called */
	PLOG_FLUSH_QUEUED = 1,       /* done will be called once, later */
};

/*
 * "Call me when everything appended so far (up to plog_next_offset, in
 * flight included) is durable." Starts a flush if none is running and the
 * covered writes have completed; all waiters one fdatasync covers are
 * released together with res SL_OK, or SL_EIO if the log fails first.
 * Returns SL_OK and *state; SL_EIO (failed), SL_ECLOSED (closing).
 */
enum sl_err plog_flush_wait(struct plog *log, struct plog_flush_waiter *w,
			    enum plog_flush_state *state);

/* ---- time ---- */

/*
 * Time-based work: flush when flush_interval_ms passed since the last one
 * and data is unflushed; roll a non-empty active segment older than
 * roll_ms; write the checkpoint when the recovery point moved and
 * checkpoint_interval_ms passed. SL_EIO if a roll or checkpoint failed.
 */
enum sl_err plog_tick(struct plog *log, int64_t now_ms);

/*
 * When plog_tick has work next (INT64_MAX: nothing timed pending). Moves
 * earlier after appends complete, so the owner asks again after callbacks.
 */
int64_t plog_next_deadline_ms(const struct plog *log);

/* ---- reads ---- */

/*
 * A byte range of one segment file, to send as is (sendfile/splice). Holds
 * a reference on the segment: the fd stays open (even if retention or
 * truncation deletes the segment) until plog_slice_release.
 */
struct plog_slice {
	int fd;
	int64_t file_pos;
	uint32_t len;                /* 0: nothing to read */
	int64_t first_offset;        /* base offset of the first batch (may be < asked) */
	int64_t last_offset;         /* last offset of the last batch included */
	struct segment *seg;         /* NULL when len == 0 */
};

/*
 * Whole batches starting with the one that holds `offset`: stops before a
 * batch that would exceed `max_bytes` (but the first batch is always
 * included, KIP-74), before a batch whose last offset is >= `max_offset`
 * (exclusive bound such as the high watermark; the batch holding it is not
 * returned), and at the segment end (a read never spans two segments: ask
 * again from last_offset + 1).
 * SL_OK with len 0: offset == end offset, or nothing below max_offset.
 * SL_ERANGE: offset < start offset or > end offset (OFFSET_OUT_OF_RANGE).
 * SL_ECORRUPT / SL_EIO: bad bytes in visible data (logged).
 */
enum sl_err plog_read(struct plog *log, int64_t offset, uint32_t max_bytes, int64_t max_offset,
		      struct plog_slice *out);
void plog_slice_release(struct plog_slice *s);

/*
 * Batch-level ListOffsets by timestamp: the first visible batch whose
 * maxTimestamp >= ts_ms (time index, then a header scan). *offset is its
 * base offset (at least the start offset), *timestamp its maxTimestamp.
 * SL_ENOTFOUND when no batch qualifies (Kafka answers -1).
 */
enum sl_err plog_offset_for_timestamp(struct plog *log, int64_t ts_ms, int64_t *offset,
				      int64_t *timestamp);

/*
 * Largest maxTimestamp of the visible batches and the last offset of the
 * first batch that carried it (ListOffsets MAX_TIMESTAMP). SL_ENOTFOUND when
 * the log holds no batch with a timestamp.
 */
enum sl_err plog_max_timestamp(const struct plog *log, int64_t *timestamp, int64_t *offset);

/*
 * Calls cb for each visible batch header from the batch holding
 * `from_offset` on, at most `max_batches` of them (state rebuild at
 * start-up: producer ids, epochs, control batches). `fd`/`file_pos` let the
 * callback pread the batch body. cb returns 0 to go on, non-zero to stop.
 * *next_offset is one past the last batch passed (from_offset if none).
 * SL_ERANGE for a from_offset outside [start, end]; SL_ECORRUPT / SL_EIO.
 */
struct batch_header;
typedef int plog_scan_fn(void *arg, const struct batch_header *h, int fd, int64_t file_pos);
enum sl_err plog_scan(struct plog *log, int64_t from_offset, uint32_t max_batches,
		      plog_scan_fn *cb, void *arg, int64_t *next_offset);

int64_t plog_start_offset(const struct plog *log);
int64_t plog_end_offset(const struct plog *log);
int64_t plog_next_offset(const struct plog *log);
int64_t plog_flushed_offset(const struct plog *log);
/* Bytes of visible data over all segments. */
int64_t plog_size_bytes(const struct plog *log);
uint32_t plog_segment_count(const struct plog *log);
int plog_failed(const struct plog *log);
const struct plog_stats *plog_stats(const struct plog *log);

/* ---- removal ---- */

/*
 * Removes everything at and after `offset` (replication: follower
 * truncation). If `offset` is inside a batch, the cut is at that batch's
 * start: the new end offset is the batch's base offset (Kafka cuts at batch
 * boundaries too). Deletes later segments, truncates the containing one and
 * its indexes, fdatasyncs the cut and the directory, lowers the recovery
 * point and writes the checkpoint. No-op when offset >= end offset.
 * SL_EAGAIN: appends or a flush in flight (retry when idle); SL_ERANGE:
 * offset < start offset (use plog_truncate_fully); SL_EIO; SL_ECLOSED.
 */
enum sl_err plog_truncate_to(struct plog *log, int64_t offset);

/*
 * Deletes every segment and starts an empty log at `new_start_offset`
 * (Kafka's truncateFullyAndStartAt: a follower whose fetch offset is out of
 * the leader's range). Same idleness rule and errors as plog_truncate_to.
 */
enum sl_err plog_truncate_fully(struct plog *log, int64_t new_start_offset);

/*
 * DeleteRecords: moves the start offset up to `offset` (never down) and
 * deletes sealed segments wholly below it. SL_ERANGE: offset > end offset.
 */
enum sl_err plog_delete_before(struct plog *log, int64_t offset);

/*
 * Retention: deletes the oldest sealed segments while their largest
 * timestamp is more than retention_ms before now_ms (the .log mtime for a
 * segment without timestamps), and while the total size exceeds
 * retention_bytes by at least the segment's size — never the active
 * segment, and only segments wholly below `max_offset` (pass the high
 * watermark, or INT64_MAX). Advances the start offset and writes the
 * checkpoint. *deleted (may be NULL) counts the segments removed.
 */
enum sl_err plog_retention_enforce(struct plog *log, int64_t now_ms, int64_t max_offset,
				   uint32_t *deleted);

#endif
