/*
 * compact.h — log compaction (Kafka's cleanup.policy=compact) of one
 * partition log's SEALED segments: keeps the latest record per key, removes
 * tombstones (null value) once delete.retention.ms has passed, never
 * reorders or renumbers offsets. The active segment (and a SEALING one with
 * appends in flight) is never touched.
 *
 * One call (plog_compact):
 *   pass 1  builds a bounded map key-hash -> latest offset over the dirty
 *           part: offsets [clean_offset, first uncleanable offset), where
 *           clean_offset is persisted in `<dir>/compact.checkpoint` and the
 *           first uncleanable offset is the base of the first segment that
 *           is not SEALED. The map is open addressing over 16-byte hashes of
 *           the keys (two independent 64-bit hashes; not cryptographic: a
 *           128-bit collision would make the older of two keys disappear,
 *           Kafka accepts the same risk with MD5), sized from
 *           compact_config.map_bytes and filled to 90%. When it fills, or when
 *           max_dirty_bytes were scanned, the call covers only up to the
 *           offset reached (map_end) and the next call resumes there, as
 *           Kafka's cleaner does.
 *   pass 2  rewrites every sealed segment whose base offset is below
 *           map_end, one segment into one new segment with the same base
 *           offset (no grouping of small segments). A record at offset o < map_end
 *           is kept when it has no key (Kafka refuses keyless records in a
 *           compacted topic at produce; any present are kept), when its key is
 *           not in the map (its latest version is older than clean_offset), or
 *           when o is the map's offset for its key; a kept tombstone is then
 *           removed when its batch's maxTimestamp + delete_retention_ms <= now
 *           (Kafka measured from the segment's last-modified time, and since
 *           KIP-534 from the pass that first cleaned the tombstone; the
 *           batch's own time needs no extra state). Records
 *           at offsets >= map_end are always kept. Control batches are copied
 *           as they are (transactions are not compacted).
 *   Batches keep their base offset, base timestamp, producer fields and the
 *   kept records' bytes (so their offset and timestamp deltas); records
 *   count, lastOffsetDelta (= the last kept record's delta, batch.h),
 *   maxTimestamp (the kept records' largest, unless LogAppendTime), length
 *   and CRC are recomputed; a compressed batch is decompressed
 *   (core/compress.h) and its kept records recompressed with the same codec.
 *   A batch that keeps every record is copied byte for byte.
 *
 * Emptied batches: dropped, except the LAST batch of a segment, which stays
 *   as an empty batch (records count 0, no record bytes, codec NONE, original
 *   base offset, lastOffsetDelta and timestamps). So every segment keeps its
 *   offset range [base, next offset) and the log never shows a gap between
 *   segments (Kafka keeps empty batch headers for producer state in the same
 *   spirit). batch_validate accepts such batches (batch.h).
 *
 * Crash safety (one segment at a time), files in the partition directory:
 *   1. write `<base>.log.cleaned`, fdatasync it;
 *   2. rename it to `<base>.log.swap`, fsync the directory   <- commit point
 *   3. unlink `<base>.index` and `<base>.timeindex`;
 *   4. rename `<base>.log.swap` over `<base>.log`, fsync the directory;
 *   5. load the new segment (segment_load rebuilds and CRC-checks its
 *      indexes), seal and sync it, and put it in place of the old one, whose
 *      files stay open (unlinked) for read slices still holding it.
 *   The name `<base>.log` always holds a whole valid segment (old or new),
 *   so kill -9 anywhere loses nothing. compact_recover, run before
 *   plog_open, deletes leftover `.cleaned` files (before the commit point)
 *   and completes a leftover `.swap` (steps 3-4); plog_open ignores those
 *   names and rebuilds missing indexes.
 *
 * Incremental jobs (compact_job_*): the same work as a resumable state
 *   machine, so the owner shard keeps serving produce and fetch:
 *     PASS1 -> [OPEN -> REWRITE -> CLEANED_SYNCED -> COMMITTED -> SWAPPED]*
 *           -> CKPT -> CKPT_SYNCED -> DONE
 *   compact_job_step reads at most about budget_bytes of input (whole
 *   batches; at least one) and returns COMPACT_RUNNING (call again after
 *   yielding to the loop), COMPACT_WAITING (an fsync is in flight on
 *   cfg.ring; cfg.wake runs when it completed: call step then) or
 *   COMPACT_FINISHED. Every fsync (the .cleaned file, the commit and final
 *   directory fsyncs, the new segment's indexes, compact.checkpoint.tmp and
 *   its rename) is an IORING_OP_FSYNC on cfg.ring; with cfg.ring NULL they
 *   are done inline (plog_compact, tests). compact.checkpoint is replaced
 *   through `compact.checkpoint.tmp` (written, fdatasynced, renamed, dir
 *   fsynced). Reads and the rewrite use pread/pwrite of at most one slice.
 *   Still synchronous inside one step: loading the swapped-in segment
 *   (segment_load rebuilds its indexes, CRC-checking its batches), i.e. a
 *   step proportional to the new segment's size, once per rewritten segment.
 *   What may happen between steps, and what the job does:
 *   - appends, rolls, read slices: nothing (sealed segments are immutable;
 *     the job holds references on the segments it reads; a slice keeps the
 *     replaced segment's fd);
 *   - retention / DeleteRecords deleting a segment the job scans or
 *     rewrites: pass 1 goes on with the next segment; a rewrite of it is
 *     dropped (.cleaned or .swap unlinked, directory fsynced) and the job
 *     goes on with the next segment;
 *   - truncation that removes or replaces the first segment that was not
 *     sealed at the start (the map may then name offsets that no longer
 *     exist): the next step fails with SL_EAGAIN (free the job, retry later);
 *   - log failing or closing: the next step fails with SL_ECLOSED;
 *   - compact_job_free at any point (close, delete, errors): unlinks the
 *     job's .cleaned/.swap/.tmp file (the old `<base>.log` is intact, so this
 *     rolls the segment back), drops its references; with an fsync in flight
 *     the job frees itself in that completion (it owns a dup of the
 *     directory fd, so the log may close first).
 *   Memory: the map (map_bytes, calloc'd so starting is cheap) plus buffers
 *   of the largest batch.
 *
 * plog_compact runs one job to completion inline (BLOCKS the owner shard;
 *   for tests and tools): pass 1 reads at most max_dirty_bytes of dirty
 *   data (at least one batch), pass 2 reads the segments below map_end (the
 *   already-clean head plus those dirty bytes) and writes what is kept.
 *
 * Ownership: runs on the shard that owns the plog (io/ rules: no locks).
 */
#ifndef SL_IO_COMPACT_H
#define SL_IO_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "sl.h"

struct plog;
struct ring;
struct compact_job;

/* Called when a job's fsyncs completed (from the ring's completion dispatch). */
typedef void compact_wake_fn(void *arg);

#define COMPACT_CHECKPOINT_NAME "compact.checkpoint"
#define COMPACT_MAP_BYTES_MIN 4096
#define COMPACT_MAP_BYTES_DEFAULT (16u << 20)
#define COMPACT_DELETE_RETENTION_MS_DEFAULT 86400000LL   /* delete.retention.ms */
#define COMPACT_DIRTY_RATIO_DEFAULT 0.5                 /* min.cleanable.dirty.ratio */

struct compact_config {
	int64_t delete_retention_ms;   /* delete.retention.ms, >= 0 */
	size_t map_bytes;              /* key map budget, >= COMPACT_MAP_BYTES_MIN */
	int64_t max_dirty_bytes;       /* pass 1 bytes per call; <= 0: unlimited */
	int shard_id;                  /* for log lines */
	struct ring *ring;             /* jobs: fsyncs on this ring (the log's); NULL: inline */
	compact_wake_fn *wake;         /* jobs with a ring: an fsync wait ended */
	void *wake_arg;
};

enum compact_progress {
	COMPACT_RUNNING = 0,           /* more to do: call compact_job_step again */
	COMPACT_WAITING,               /* fsyncs in flight: wait for cfg.wake */
	COMPACT_FINISHED,              /* done: compact_job_stats, compact_job_free */
};

void compact_config_default(struct compact_config *cfg);

/* What one plog_compact call did. */
struct compact_stats {
	int64_t clean_offset_before;
	int64_t clean_offset_after;    /* = map_end when the call succeeded */
	uint64_t bytes_scanned;        /* pass 1 */
	uint64_t bytes_before;         /* pass 2: sizes of the segments processed */
	uint64_t bytes_after;          /* ... and of what they became */
	uint64_t records_read;         /* pass 2 */
	uint64_t records_removed;      /* superseded + tombstones */
	uint64_t tombstones_removed;
	uint64_t batches_removed;
	uint32_t segments_rewritten;   /* swapped in */
	uint32_t segments_unchanged;   /* nothing to remove: .cleaned discarded */
	int map_full;                  /* pass 1 stopped at the map's capacity */
	int more;                      /* dirty sealed data remains: call again */
};

/* Clean/dirty split of the sealed segments (Kafka's cleanable ratio). */
struct compact_dirty {
	int64_t clean_offset;
	int64_t clean_bytes;           /* sealed segments wholly below clean_offset */
	int64_t dirty_bytes;           /* the other sealed segments */
	double ratio;                  /* dirty / (clean + dirty); 0 when no sealed segment */
};

/*
 * Compacts the sealed segments of `log` as described above, at `now_ms`
 * (wall clock, for delete.retention.ms). Fills *st. SL_OK also when there
 * was nothing to do. SL_EINVAL bad config; SL_EIO (logged) a system call
 * failed (the log's files stay consistent; after a failure past the commit
 * point the next plog_open finishes the job); SL_ECORRUPT bad bytes in a
 * sealed segment (logged); SL_ENOMEM; SL_ECLOSED the log failed or is closing.
 */
enum sl_err plog_compact(struct plog *log, int64_t now_ms, const struct compact_config *cfg,
			 struct compact_stats *st);

/*
 * Starts an incremental job (above) over the log's current sealed segments
 * at now_ms; *cfg is copied. A job with nothing to do finishes at its first
 * step. SL_EINVAL bad config; SL_ECLOSED; SL_EIO / SL_ECORRUPT (checkpoint);
 * SL_ENOMEM.
 */
enum sl_err compact_job_start(struct compact_job **out, struct plog *log, int64_t now_ms,
			      const struct compact_config *cfg);

/*
 * One slice of at most about budget_bytes of input (0: no limit). Must not
 * be called while COMPACT_WAITING. Errors as plog_compact, plus SL_EAGAIN
 * (log truncated under the job); after an error only compact_job_free.
 */
enum sl_err compact_job_step(struct compact_job *job, uint64_t budget_bytes,
			     enum compact_progress *prog);

/* What the job did so far (all of it once FINISHED). */
const struct compact_stats *compact_job_stats(const struct compact_job *job);

/* Cancels (see above) or releases a job; NULL is fine. */
void compact_job_free(struct compact_job *job);

/*
 * Computes the dirty ratio from the segments and `compact.checkpoint`.
 * SL_EIO / SL_ECORRUPT when the checkpoint cannot be read (a missing one
 * means clean_offset = start offset).
 */
enum sl_err plog_compact_dirty(struct plog *log, struct compact_dirty *out);

/*
 * Crash recovery of compaction files in partition directory `dir` (a
 * missing directory is fine): deletes `*.cleaned` and a job's
 * `compact.checkpoint.tmp`, completes `<base>.log.swap`
 * (unlinks that base's indexes, renames it over `<base>.log`), fsyncs the
 * directory when it changed anything. Call before plog_open. SL_EIO (logged).
 */
enum sl_err compact_recover(const char *dir, int shard_id);

#endif
