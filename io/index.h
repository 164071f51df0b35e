/*
 * index.h — the two sparse indexes of a segment, in Kafka's on-disk format,
 * kept in a shared memory mapping of their file.
 *
 *   .index      8-byte entries: relativeOffset int32 BE | position int32 BE
 *   .timeindex 12-byte entries: timestamp int64 BE      | relativeOffset int32 BE
 *
 * relativeOffset = offset - the segment's base offset. As Kafka (3.x) writes
 * them, an offset entry holds the LAST offset of a batch and the file
 * position of that batch's first byte; a time entry holds the largest
 * timestamp seen so far in the segment and the last offset of the batch that
 * first carried it. Lookups return the largest entry not above the key and
 * the caller scans batch headers forward from there.
 *
 * Invariants:
 *   1. Entries [0, count) are strictly increasing: offset entries in both
 *      relativeOffset (> 0) and position (> 0) — the first batch of a segment
 *      is never indexed, so a zero entry is never valid; time entries in
 *      timestamp (> -1), with relativeOffset non-decreasing.
 *   2. count <= count_max and the mapping covers count_max entries.
 *   3. Active: the file is preallocated to count_max entries and everything
 *      after `count` is zero. Sealed: the file holds exactly `count` entries.
 *   4. An index belongs to one segment, used by one thread: no locks.
 *
 * States: index_open -> sealed (the file's size as found);
 * index_activate: sealed -> active; index_seal: active -> sealed (trims the
 * file); index_close from either. Durability is the owner's business: it
 * fsyncs `fd` (a shared mapping's dirty pages are written by fsync) when
 * `dirty` is set.
 */
#ifndef SL_IO_INDEX_H
#define SL_IO_INDEX_H

#include <stdint.h>

#include "sl.h"

#define INDEX_OFFSET_ENTRY_BYTES 8
#define INDEX_TIME_ENTRY_BYTES 12

enum index_kind {
	INDEX_KIND_OFFSET = 0,
	INDEX_KIND_TIME = 1,
};

struct index {
	int fd;
	enum index_kind kind;
	uint32_t entry_bytes;
	uint8_t *map;           /* NULL when map_bytes == 0 */
	size_t map_bytes;
	uint32_t count;         /* valid entries (invariant 1) */
	uint32_t count_max;     /* entries the mapping can hold */
	uint32_t count_on_file; /* entries the file held when opened */
	size_t bytes_on_file;   /* its size then (a partial entry included) */
	int ragged;             /* at open: size not a multiple, or invalid entries after `count` */
	int writable;           /* active (invariant 3) */
	int dirty;              /* changed since the owner last synced it */
};

/*
 * Opens (creating if missing) `name` relative to `dirfd` and maps it as
 * found. `count` is the longest valid prefix (invariant 1); *existed tells
 * whether the file was there. Errors: SL_EIO (logged), SL_ECORRUPT when the
 * file is larger than an index can be (2 GiB).
 */
enum sl_err index_open(struct index *idx, int dirfd, const char *name, enum index_kind kind,
		       int *existed);

/*
 * Makes the index writable with room for max(size_max_bytes / entry_bytes,
 * count) entries: extends the file, maps it, zeroes stale bytes after
 * `count`. SL_EIO on failure (the index stays as it was).
 */
enum sl_err index_activate(struct index *idx, int64_t size_max_bytes);

/* Trims the file to `count` entries and maps it read-only-sized. SL_EIO on failure. */
enum sl_err index_seal(struct index *idx);

/* Unmaps and closes. Does not trim: seal first. */
void index_close(struct index *idx);

/* 1 when no entry can be appended. */
static inline int index_full(const struct index *idx)
{
	return idx->count >= idx->count_max;
}

/* Entries that can still be appended. */
static inline uint32_t index_room(const struct index *idx)
{
	return idx->count_max - idx->count;
}

/* Keeps the first `count` entries, zeroing the rest of the mapping. */
void index_truncate(struct index *idx, uint32_t count);

/*
 * Offset index. Appends (rel, pos); both must exceed the last entry's
 * (asserted) and the index must not be full (asserted).
 */
void index_offset_append(struct index *idx, int32_t rel, int32_t pos);
void index_offset_get(const struct index *idx, uint32_t i, int32_t *rel, int32_t *pos);
/* Largest i with rel_i <= rel, or -1. */
int64_t index_offset_lookup(const struct index *idx, int64_t rel);
/* Number of entries with rel_i < rel. */
uint32_t index_offset_count_below(const struct index *idx, int64_t rel);

/*
 * Time index. Appends (ts, rel) if ts is larger than the last entry's
 * timestamp (Kafka's maybeAppend); returns 1 if appended. Asserts room.
 */
int index_time_maybe_append(struct index *idx, int64_t ts, int32_t rel);
void index_time_get(const struct index *idx, uint32_t i, int64_t *ts, int32_t *rel);
/* Largest i with ts_i < ts, or -1. */
int64_t index_time_lookup_below(const struct index *idx, int64_t ts);
/* Number of entries with rel_i < rel. */
uint32_t index_time_count_below(const struct index *idx, int64_t rel);
/* Last entry's timestamp, or -1 when empty. */
int64_t index_time_last_ts(const struct index *idx);

#endif
