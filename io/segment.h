/*
 * segment.h — one segment of a partition log: `<base>.log` (record batches
 * exactly as on the wire), `<base>.index` and `<base>.timeindex` (index.h),
 * with `<base>` the segment's first offset as 20 zero-padded digits.
 *
 * The partition log (plog.c) owns the segments, decides when to roll, and
 * drives the writes; this file knows one segment's files: creating and
 * loading them (with recovery), tracking what a batch adds to the indexes,
 * finding the batch that holds an offset, sealing, truncating, deleting.
 *
 * Two sides of the state:
 *   - reserved (submit side): size_reserved, appends_pending — bytes and
 *     appends handed to the kernel, possibly not written yet;
 *   - visible: size, next_offset, max_timestamp, the indexes — only
 *     batches whose write completed, contiguously from the start. Readers
 *     see only this side; index entries are added when a batch becomes
 *     visible (segment_track_batch), so they never point at unwritten bytes.
 *
 * Invariants:
 *   1. base_offset <= every offset in the segment < base_offset + 2^31;
 *      size_reserved <= INT32_MAX.
 *   2. size <= size_reserved <= file_bytes, and [0, size) holds whole,
 *      validated batches with increasing offsets; next_offset is one past the
 *      last of them (base_offset when empty).
 *   3. max_timestamp is the largest maxTimestamp of the visible batches
 *      (-1: none) and max_timestamp_offset the last offset of the first
 *      batch that carried it.
 *   4. bytes_since_index counts the bytes appended since the last offset
 *      index entry (Kafka's cadence: a batch is indexed when more than
 *      index_interval_bytes came before it since the previous entry; the
 *      first batch never is).
 *   5. refs counts the partition log's reference (while listed), every
 *      read slice, and every fsync in flight; the files close at zero.
 *
 * States and transitions:
 *   segment_create / segment_load -> LOADED
 *   LOADED --segment_activate--> ACTIVE (indexes writable and preallocated,
 *       .log preallocated when configured)
 *   LOADED --segment_seal--> SEALED
 *   ACTIVE --(roll with appends in flight)--> SEALING --segment_seal--> SEALED
 *   SEALED --segment_activate--> ACTIVE (truncation made it the last one)
 *   any --segment_unlink--> DELETED (files unlinked, fds open until refs = 0)
 */
#ifndef SL_IO_SEGMENT_H
#define SL_IO_SEGMENT_H

#include <stdint.h>

#include "batch.h"
#include "index.h"
#include "ring.h"
#include "sl.h"

#define SEGMENT_NAME_BYTES 40   /* "%020lld.timeindex" + NUL fits */
#define SEGMENT_REL_OFFSET_MAX ((int64_t)INT32_MAX)
#define SEGMENT_BYTES_MAX ((int64_t)INT32_MAX)

struct segment_config {
	int64_t segment_bytes;         /* preallocation size */
	int32_t index_interval_bytes;
	int32_t index_size_max_bytes;
	int preallocate;
	int shard_id;                  /* for log lines */
};

enum segment_state {
	SEGMENT_LOADED = 0,
	SEGMENT_ACTIVE,
	SEGMENT_SEALING,
	SEGMENT_SEALED,
	SEGMENT_DELETED,
};

/* One fsync of one of the segment's files, started by the log's flush. */
struct segment_sync {
	struct ring_op op;
	void *owner;            /* the partition log */
	struct segment *seg;    /* NULL for a directory sync */
};

enum segment_file {
	SEGMENT_FILE_LOG = 0,
	SEGMENT_FILE_INDEX,
	SEGMENT_FILE_TIMEINDEX,
	SEGMENT_FILE_COUNT,
};

struct segment {
	int64_t base_offset;
	int log_fd;
	struct index oindex;
	struct index tindex;
	enum segment_state state;
	uint32_t refs;

	/* reserved side */
	int64_t size_reserved;
	int64_t file_bytes;             /* physical size (preallocation) */
	uint32_t appends_pending;       /* submitted, not yet made visible */
	uint32_t batches_pending;       /* batches in those appends */
	int64_t roll_base_ms;           /* first batch's maxTimestamp, or creation */

	/* visible side */
	int64_t size;
	int64_t next_offset;
	int64_t max_timestamp;
	int64_t max_timestamp_offset;
	int64_t bytes_since_index;
	int64_t created_ms;             /* creation, or the .log mtime when loaded */
	int log_dirty;                  /* visible bytes or size not yet fsynced */

	struct segment_sync sync[SEGMENT_FILE_COUNT];
	char name[SEGMENT_NAME_BYTES];  /* "<base>" for log lines */
};

/* What loading one segment did (plog sums these into its stats). */
struct segment_load_report {
	uint64_t batches_validated;     /* full CRC validations (recovery scan) */
	uint64_t headers_walked;        /* header-only sanity walk */
	int64_t bytes_truncated;        /* cut from the .log */
	int rebuilt;                    /* indexes rebuilt from the log */
	int corrupt;                    /* cut at a torn/corrupt batch (not a zero tail) */
	int zero_tail;                  /* cut at a zero-filled tail */
};

enum segment_load_mode {
	/* Trust the files: sanity-check the indexes and walk headers from the
	 * last offset index entry to EOF; on any doubt, fall back to RECOVER
	 * from the base offset. */
	SEGMENT_LOAD_TRUSTED = 0,
	/* Data below `recover_from` is known durable: resume from the last
	 * good index entry below it and validate every batch after. */
	SEGMENT_LOAD_RECOVER,
};

/* Writes "<20-digit base><ext>" into out (SEGMENT_NAME_BYTES). */
void segment_file_name(char *out, int64_t base_offset, const char *ext);

/*
 * Creates an empty segment at `base_offset` (truncating stale files of that
 * name) and makes it ACTIVE. now_ms is its creation time. SL_EIO (logged).
 */
enum sl_err segment_create(struct segment **out, int dirfd, int64_t base_offset,
			   const struct segment_config *cfg, int64_t now_ms);

/*
 * Opens an existing segment (its .log must exist) and recovers it per
 * `mode`: afterwards [0, size) holds only valid batches (anything after the
 * first invalid one was truncated, LOG_W) and the indexes match them. The
 * result is LOADED: the caller seals or activates it.
 * SL_EIO / SL_ECORRUPT (unusable file: too big) / SL_ENOMEM.
 */
enum sl_err segment_load(struct segment **out, int dirfd, int64_t base_offset,
			 const struct segment_config *cfg, enum segment_load_mode mode,
			 int64_t recover_from, struct segment_load_report *rep);

/* Makes the segment the writable one (indexes preallocated). SL_EIO. */
enum sl_err segment_activate(struct segment *seg, const struct segment_config *cfg);

/*
 * Seals a segment with no append pending: final time index entry (as Kafka
 * adds when a segment becomes inactive), indexes trimmed, a preallocated
 * .log cut to its size. Marks what changed dirty. SL_EIO (logged; the
 * segment stays readable).
 */
enum sl_err segment_seal(struct segment *seg);

/*
 * Accounts for one batch made visible at `pos` (header `h`): offsets, max
 * timestamp, and the index cadence (invariant 4). Room in the indexes was
 * reserved by the caller; when an index is full the entry is skipped.
 */
void segment_track_batch(struct segment *seg, int64_t pos, const struct batch_header *h,
			 int32_t index_interval_bytes);

/*
 * Reads and parses the batch header at `pos`, where `limit` bytes of the
 * file are valid. SL_ETRUNC (the batch runs past limit), SL_ECORRUPT, SL_EIO.
 */
enum sl_err segment_read_header(const struct segment *seg, int64_t pos, int64_t limit,
				struct batch_header *h);

/*
 * Finds the first visible batch whose last offset is >= `offset`: index
 * lookup, then a header walk. Sets *pos and *h. SL_ENOTFOUND when none
 * (offset past this segment's data), SL_ECORRUPT / SL_EIO.
 */
enum sl_err segment_locate(const struct segment *seg, int64_t offset, int64_t *pos,
			   struct batch_header *h);

/*
 * Position to start a scan for the first batch whose maxTimestamp >= ts:
 * via the time index and then the offset index. Never past `size`.
 */
int64_t segment_time_scan_start(const struct segment *seg, int64_t ts);

/*
 * Cuts the segment at `pos` (a batch boundary, at most size) whose next
 * offset becomes `new_next_offset`: .log truncated (and preallocated again
 * when active and configured), index entries at or past it dropped, max
 * timestamp and index cadence recomputed by a header walk from the last
 * kept index entry. Requires no append pending. SL_EIO / SL_ECORRUPT.
 */
enum sl_err segment_truncate(struct segment *seg, int64_t pos, int64_t new_next_offset,
			     const struct segment_config *cfg);

/* Removes the three files (errors logged, ignored); state DELETED. */
void segment_unlink(struct segment *seg, int dirfd);

void segment_ref(struct segment *seg);
/* Drops a reference; at zero closes the files and frees the segment. */
void segment_unref(struct segment *seg);

/* Bytes of visible data. */
static inline int64_t segment_size(const struct segment *seg)
{
	return seg->size;
}

/* 1 when the segment has no batch, visible or in flight. */
static inline int segment_empty(const struct segment *seg)
{
	return seg->size_reserved == 0;
}

#endif
