/*
 * repl.h — one partition's replication state on this broker (cluster mode),
 * hung on the partition with partition_repl_set (net/partition.h) and freed
 * by the partition set's on_close hook.
 *
 * Who writes what (all on the partition's owner shard):
 *   - repl.c (role changes, leader side): created and updated from the
 *     controller's LeaderAndIsr; as LEADER it stamps partitionLeaderEpoch on
 *     appended batches, records new epochs in `epochs`, feeds follower
 *     fetches into `isr` and moves the high watermark
 *     (partition_hw_advance), answers acks=all appends when the HW passes
 *     them, and proposes ISR changes to the controller (AlterPartition).
 *   - follower.c (follower side): as FOLLOWER, truncates by leader epoch
 *     (OffsetForLeaderEpoch to the leader), then fetches from the leader
 *     (one fetch session per source broker per shard), appends the batches
 *     with their offsets, records their epochs in `epochs`, and sets the
 *     high watermark to min(leader's HW, own log end).
 *
 * Single-node (embedded) mode has no repl state: the partition's high
 * watermark is its log end (partition.h invariant 1).
 *
 * Invariants:
 *   1. role == REPL_LEADER iff leader_id == this broker's id.
 *   2. leader_epoch only increases while the object lives (a LeaderAndIsr
 *      with an older epoch is refused with STALE_CONTROLLER_EPOCH /
 *      FENCED_LEADER_EPOCH and changes nothing).
 *   3. `epochs` is persisted (leader-epoch-checkpoint) before an append
 *      that needs the new entry is acknowledged.
 */
#ifndef SL_REPLICATION_REPL_H
#define SL_REPLICATION_REPL_H

#include <stdbool.h>
#include <stdint.h>

#include "isr.h"
#include "lepoch.h"
#include "partition.h"

struct partition;
struct broker_shard;
struct follower;

enum repl_role {
	REPL_NONE = 0,       /* replica known, no leader yet (leader -1) */
	REPL_LEADER,
	REPL_FOLLOWER,
};

struct repl_partition {
	struct partition *p;
	enum repl_role role;
	int32_t leader_id;           /* -1: none */
	int32_t leader_epoch;
	int32_t partition_epoch;     /* state znode version, for AlterPartition */
	int32_t controller_epoch;    /* of the last LeaderAndIsr applied */
	struct lepoch epochs;        /* leader-epoch cache (lepoch.h) */
	struct isr isr;              /* role == REPL_LEADER */
	struct follower *follower;   /* role == REPL_FOLLOWER: follower.c's state */
};

/* The partition's replication state, NULL in single-node mode. */
static inline struct repl_partition *repl_of(struct partition *p)
{
	return (struct repl_partition *)partition_repl(p);
}

#endif
