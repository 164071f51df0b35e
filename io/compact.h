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
 * Cost: plog_compact is synchronous (pread/pwrite/fdatasync) and BLOCKS the
 *   owner shard while it runs: pass 1 reads at most max_dirty_bytes of dirty
 *   data (at least one batch), pass 2 reads the segments below map_end (the
 *   already-clean head plus those dirty bytes) and writes what is kept.
 *   Memory: the map (map_bytes) plus buffers of the largest batch.
 *
 * Ownership: runs on the shard that owns the plog (io/ rules: no locks).
 */
#ifndef SL_IO_COMPACT_H
#define SL_IO_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "sl.h"

struct plog;

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
 * Computes the dirty ratio from the segments and `compact.checkpoint`.
 * SL_EIO / SL_ECORRUPT when the checkpoint cannot be read (a missing one
 * means clean_offset = start offset).
 */
enum sl_err plog_compact_dirty(struct plog *log, struct compact_dirty *out);

/*
 * Crash recovery of compaction files in partition directory `dir` (a
 * missing directory is fine): deletes `*.cleaned`, completes `<base>.log.swap`
 * (unlinks that base's indexes, renames it over `<base>.log`), fsyncs the
 * directory when it changed anything. Call before plog_open. SL_EIO (logged).
 */
enum sl_err compact_recover(const char *dir, int shard_id);

#endif
