/*
 * hwsave.h — keeping Kafka's replication-offset-checkpoint (hwcheck.h: one
 * file per log dir, every partition's high watermark) up to date in
 * cluster mode, and reading it back when a replica's state is created.
 *
 * Partitions live on different shards; the files are per log dir. So:
 *   - periodic: shard 0 arms a timer every
 *     replica.high.watermark.checkpoint.interval.ms; each round asks every
 *     shard (cross-shard message, itself included) for a snapshot of its
 *     replicated partitions (topic, partition, HW, log dir); the shard
 *     allocates the snapshot and hands it over in the reply (ownership
 *     moves to shard 0, which frees it after writing — an exception to
 *     "memory goes home", for a message every few seconds). Once every
 *     shard answered, shard 0 writes one file per configured log dir. A
 *     round in which a shard could not be asked, ran out of memory, or was
 *     already stopping writes nothing.
 *   - clean shutdown: each shard, in repl_shard_stop before its replication
 *     state is freed, leaves its final snapshot in its own slot of
 *     hs->final (only that shard writes that slot); hwsave_finish (main
 *     thread, after the shards joined: the join orders the writes) writes
 *     the files from them.
 *   - merge rule (both paths): an entry of the existing file that no shard
 *     reported is kept while its partition directory still exists in that
 *     log dir (a partition whose replica state is not created yet — no
 *     LeaderAndIsr since the restart — keeps its checkpointed HW; a deleted
 *     partition's entry goes away).
 *   - read: repl.c, when it creates a partition's replica state (before
 *     any role, so before follower truncation), starts the HW at the
 *     checkpointed value (partition_hw_set clamps it to [log start, log
 *     end]); no entry -> the log start, as before.
 *
 * Invariants:
 *   1. A file is only replaced through hwcheck_write (atomic rename), with
 *      entries that are each some shard's HW at collection time or a kept
 *      entry of the previous file.
 *   2. hs->round != NULL iff a collection is in flight; its `waiting`
 *      counts the replies still due; the timer is re-armed when it ends.
 *   3. final[k] is written only on shard k, read only after the join.
 *
 * Runs on: shard 0 (round, timer), every shard (collection, final slot),
 * main (create / finish); the pure helpers anywhere.
 */
#ifndef SL_REPLICATION_HWSAVE_H
#define SL_REPLICATION_HWSAVE_H

#include <stdbool.h>
#include <stdint.h>

#include "hwcheck.h"
#include "sl.h"
#include "timer.h"

struct broker;
struct broker_shard;

/* One partition's HW as its shard reports it. */
struct hwsave_entry {
	char topic[HWCHECK_TOPIC_BYTES_MAX + 1];
	int32_t partition;
	int64_t hw;
	int32_t dir;                     /* index in log.dirs */
};

/* One shard's snapshot (heap, one block). */
struct hwsave_snap {
	uint32_t count, cap;
	struct hwsave_entry e[];
};

struct hwsave_round;

/* One per process (b->hwsave), cluster mode only. */
struct hwsave {
	char *log_dirs;                  /* own copy (outlives the broker) */
	uint32_t shard_count;
	int64_t interval_ms;
	struct hwsave_snap **final;      /* [shard_count], invariant 3 */
	/* shard 0 */
	struct broker_shard *bs0;
	struct timer tick;
	struct hwsave_round *round;      /* invariant 2 */
	bool stopped;
	uint64_t rounds_written;         /* statistics */
};

/* Main, before the shards start (cluster mode): sets b->hwsave. */
enum sl_err hwsave_create(struct broker *b);
/* Main, after the shards joined: writes the final snapshots (if any shard
 * left one), frees everything. NULL-safe. */
void hwsave_finish(struct hwsave *hs);

/* Shard 0: arms the periodic timer / stops it (rounds in flight finish
 * without writing). No-ops when b->hwsave is NULL. */
void hwsave_shard0_start(struct broker_shard *bs);
void hwsave_shard0_stop(struct broker_shard *bs);

/* Shard k, stopping (repl_shard_stop, before its state is freed). */
void hwsave_shard_final(struct broker_shard *bs);

/* ---- pure helpers (unit-tested) ---- */

/*
 * Splits a partition directory "<log dir>/<topic>-<index>" into *out
 * (topic, partition = index, dir = the position of <log dir> in
 * `log_dirs`). SL_ENOTFOUND: not under a configured log dir, or the name
 * does not end in "-<index>"; SL_EINVAL: topic too long.
 */
enum sl_err hwsave_entry_of(const char *log_dirs, const char *pdir, int32_t index,
			    struct hwsave_entry *out);

/*
 * Writes the replication-offset-checkpoint of every log dir of `log_dirs`
 * from the snapshots (NULL ones skipped), merged with the existing file
 * (header rule). SL_OK, or the first error (the other dirs still tried).
 */
enum sl_err hwsave_write_dirs(const char *log_dirs, struct hwsave_snap *const *snaps,
			      uint32_t n, int shard_id);

/*
 * The checkpointed HW of the partition in directory `pdir` (index `index`):
 * SL_OK with *hw, SL_ENOTFOUND (no file, no entry, not under a log dir),
 * SL_ECORRUPT (logged by hwcheck_read), SL_EIO.
 */
enum sl_err hwsave_lookup(const char *log_dirs, const char *pdir, int32_t index, int64_t *hw,
			  int shard_id);

/* Appends one entry to *snap (growing it). SL_OK or SL_ENOMEM. */
enum sl_err hwsave_snap_add(struct hwsave_snap **snap, const struct hwsave_entry *e);

#endif
