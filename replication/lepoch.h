/*
 * lepoch.h — the leader-epoch cache of one partition (Kafka's
 * LeaderEpochFileCache, KIP-101/KIP-279): which leader epoch wrote which
 * offsets, so a follower can find where its log and the leader's diverge
 * (OffsetForLeaderEpoch) instead of trusting its high watermark.
 *
 * An entry (epoch, start offset) says: the first batch written in `epoch`
 * has base offset `start offset`; the epoch ends where the next entry
 * starts (the last one at the log end offset).
 *
 * Invariants (lepoch_check):
 *   1. 0 <= count <= LEPOCH_ENTRIES_MAX.
 *   2. epochs strictly increase, start offsets strictly increase, both >= 0.
 *
 * Transitions (all keep the invariants):
 *   lepoch_assign(e, o)          a batch of epoch e at offset o was appended
 *                                (leader: on becoming leader and at each
 *                                append; follower: for each fetched batch).
 *                                No-op when e is the latest epoch and o is
 *                                not below its start. Otherwise every entry
 *                                from the end with epoch >= e or start >= o
 *                                is removed first (Kafka's non-monotonic
 *                                handling: a leader's log rewritten under a
 *                                newer entry), then (e, o) appended. At
 *                                LEPOCH_ENTRIES_MAX the OLDEST entry is
 *                                dropped (LOG_W): an OffsetForLeaderEpoch for
 *                                an epoch older than the oldest kept entry
 *                                then gets the answer Kafka gives for epochs
 *                                removed by retention (requested epoch, start
 *                                of the oldest kept entry). Reaching the bound
 *                                takes LEPOCH_ENTRIES_MAX leader elections of
 *                                one partition within its retention.
 *   lepoch_truncate_from_end(o)  the log was truncated to end at o: entries
 *                                starting at or after o go.
 *   lepoch_truncate_from_start(o) the log start moved to o: entries starting
 *                                at or before o go, except the last of them,
 *                                which stays with start offset o.
 *
 * File: `leader-epoch-checkpoint` in the partition directory, Kafka's
 * format: "0\n<count>\n<epoch> <start offset>\n...", replaced atomically
 * (io/checkpoint.h). The reader applies the entries with lepoch_assign, as
 * Kafka does, so an older non-monotonic file loads the same way.
 *
 * runs on: the partition's owner shard. Pure except for the two file calls.
 */
#ifndef SL_REPLICATION_LEPOCH_H
#define SL_REPLICATION_LEPOCH_H

#include <stdint.h>

#include "sl.h"

#define LEPOCH_ENTRIES_MAX 256
#define LEPOCH_FILE_NAME "leader-epoch-checkpoint"
/* Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET. */
#define LEPOCH_UNDEFINED_EPOCH (-1)
#define LEPOCH_UNDEFINED_OFFSET (-1)

struct lepoch_entry {
	int32_t epoch;
	int64_t start_offset;
};

struct lepoch {
	uint32_t count;
	int shard_id;                    /* for log lines */
	struct lepoch_entry entries[LEPOCH_ENTRIES_MAX];
};

/* An empty cache. */
void lepoch_init(struct lepoch *c, int shard_id);

/*
 * Records that epoch `epoch` wrote from `start_offset`. Returns 1 when the
 * cache changed (the caller then writes the file), 0 when it already said
 * so, -1 (nothing changed) when either is negative: a fetched batch without
 * a partition leader epoch (-1) carries no epoch to record.
 */
int lepoch_assign(struct lepoch *c, int32_t epoch, int64_t start_offset);

/* Latest epoch, or LEPOCH_UNDEFINED_EPOCH when empty. */
int32_t lepoch_latest_epoch(const struct lepoch *c);

/*
 * Kafka's answer to OffsetForLeaderEpoch for `requested` on a log whose end
 * offset is `log_end_offset`: *epoch / *end_offset =
 *   UNDEFINED/UNDEFINED  requested is UNDEFINED, or no known epoch is
 *                        greater than it and it is not the latest (empty
 *                        cache, or newer than all);
 *   requested/LEO        requested is the latest epoch;
 *   requested/start of the first entry   requested is older than all entries;
 *   otherwise            the largest epoch <= requested and the start offset
 *                        of the first epoch > requested.
 */
void lepoch_end_offset_for(const struct lepoch *c, int32_t requested, int64_t log_end_offset,
			   int32_t *epoch, int64_t *end_offset);

void lepoch_truncate_from_end(struct lepoch *c, int64_t end_offset);
void lepoch_truncate_from_start(struct lepoch *c, int64_t start_offset);

/* What the follower does next after an OffsetForLeaderEpoch answer. */
enum lepoch_truncation {
	LEPOCH_TRUNCATE_DONE = 0,   /* truncate to *offset, then fetch from there */
	LEPOCH_TRUNCATE_AGAIN,      /* truncate to *offset, then ask again with the
				     * (now lower) latest epoch: the follower lacks
				     * the epoch the leader answered with */
};

/*
 * The follower's divergence rule (Kafka's AbstractFetcherThread truncation,
 * KIP-279): it asked the leader about its latest epoch and got
 * (`leader_epoch`, `leader_end_offset`); `c` is its own cache, `log_end_offset`
 * its LEO and `high_watermark` its HW. *offset =
 *   min(HW, LEO)            the leader answered UNDEFINED_EPOCH_OFFSET;
 *   min(leader end, LEO)    the leader answered UNDEFINED_EPOCH (old
 *                           protocol), or the follower has no entry at or
 *                           below the leader's epoch;
 *   min(own end of that epoch, leader end, LEO)   the follower has the
 *                           leader's epoch: DONE;
 *   min(own end of its largest epoch below, LEO)  it has only smaller
 *                           epochs: AGAIN (truncate, ask with the new
 *                           latest epoch).
 * A follower with an empty cache does not ask: it truncates to its HW.
 * After truncating the log the caller also calls lepoch_truncate_from_end.
 */
enum lepoch_truncation lepoch_divergence(const struct lepoch *c, int64_t log_end_offset,
					 int64_t high_watermark, int32_t leader_epoch,
					 int64_t leader_end_offset, int64_t *offset);

/*
 * Replaces `leader-epoch-checkpoint` in directory `dirfd` atomically.
 * SL_EIO (logged) with the old file still in place.
 */
enum sl_err lepoch_write(const struct lepoch *c, int dirfd);

/*
 * Loads `leader-epoch-checkpoint` from `dirfd` into `c` (emptied first).
 * SL_ENOTFOUND no file (c empty); SL_ECORRUPT malformed: bad version,
 * count, line, negative or out-of-range number, entry count not matching,
 * longer than LEPOCH_FILE_BYTES_MAX (logged, c empty); SL_EIO (logged).
 */
#define LEPOCH_FILE_BYTES_MAX (64 + 33 * 4096)
enum sl_err lepoch_read(struct lepoch *c, int dirfd);

/* Asserts invariants 1-2. */
void lepoch_check(const struct lepoch *c);

#endif
