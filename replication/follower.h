/*
 * follower.h — the follower data path (cluster mode): a partition this
 * broker follows is truncated by leader epoch, then fetched from its
 * leader, on the partition's owner shard. Kafka's ReplicaFetcherThread /
 * AbstractFetcherThread is the spec.
 *
 * Fetch loops. Per shard, one loop per source broker (the leader): it
 * batches every partition of this shard that follows that broker into one
 * request at a time, over one kclient (host/port from the shard's catalog
 * snapshot, catalog_snap_broker; request timeout replica.socket.timeout.ms).
 * A loop has at most one request in flight and holds at most one response
 * (taken from the kclient without a copy) until every append made from it
 * has completed: memory per loop is bounded by
 * replica.fetch.response.max.bytes plus one batch.
 *
 * One partition's states (struct follower) and the function behind each
 * transition:
 *   follower_start --> TRUNCATE (empty epoch cache: truncated to the HW at
 *       once --> FETCH)
 *   TRUNCATE --OffsetForLeaderEpoch answer, follower_truncation DONE,
 *       partition_truncate_to--> FETCH
 *   TRUNCATE --answer AGAIN (the leader named an epoch we lack): truncate,
 *       ask again with the new latest epoch (at most
 *       FOLLOWER_TRUNCATE_ROUNDS_MAX rounds, then fall back to the HW)
 *   FETCH --records: partition_append_replica, lepoch_assign per batch,
 *       HW = min(leader HW, log end)--> FETCH
 *   FETCH --OFFSET_OUT_OF_RANGE below the leader's log start:
 *       partition_truncate_fully(leader log start)--> FETCH; otherwise
 *       --> TRUNCATE
 *   any --FENCED_LEADER_EPOCH--> PAUSED (until B's next follower_start)
 *   any --NOT_LEADER_OR_FOLLOWER, UNKNOWN_LEADER_EPOCH, unknown topic,
 *       storage or connection errors--> same state, retried after
 *       replica.fetch.backoff.ms (Kafka delays these partitions: the
 *       leader may not have applied its LeaderAndIsr yet)
 *   any --follower_stop--> (freed; an answer in flight for it is ignored)
 *
 * Invariants:
 *   1. A follower is in exactly one loop, whose leader_id is its
 *      rp->leader_id at follower_start.
 *   2. A loop with a request in flight or appends pending is not freed;
 *      a loop with no followers closes its kclient and is freed once idle.
 *   3. Truncation and appends never overlap on a partition: truncation
 *      runs only when the loop has no append pending.
 *
 * Runs on: the partition's owner shard (the loop's shard), only.
 */
#ifndef SL_REPLICATION_FOLLOWER_H
#define SL_REPLICATION_FOLLOWER_H

#include <stdint.h>

#include "lepoch.h"
#include "sl.h"

struct repl_partition;

/* OffsetForLeaderEpoch rounds before giving up on epochs (HW fallback). */
#define FOLLOWER_TRUNCATE_ROUNDS_MAX 64u

/*
 * Starts following rp->leader_id in rp->leader_epoch (stopping a previous
 * follow first). SL_OK; SL_ENOMEM (logged; the partition does not follow).
 */
enum sl_err follower_start(struct repl_partition *rp);

/* Stops following: removes rp from its loop and frees its state. No-op
 * when rp does not follow. */
void follower_stop(struct repl_partition *rp);

/* Registers the OffsetForLeaderEpoch handler (main, before the shards start). */
void follower_api_register(void);

/* repl.h's follower ops, for repl_follower_ops_set (main.c). */
struct repl_follower_ops;
extern const struct repl_follower_ops follower_repl_ops;

/* ---- pure rules (unit-tested) ---- */

/* What the follower does after one truncation step. */
enum follower_trunc {
	FOLLOWER_TRUNC_FETCH = 0,   /* truncate to *offset, then fetch */
	FOLLOWER_TRUNC_ASK,         /* truncate to *offset, then ask the leader about
				     * *epoch (OffsetForLeaderEpoch) */
	FOLLOWER_TRUNC_RETRY,       /* keep everything, ask again after the backoff */
	FOLLOWER_TRUNC_PAUSE,       /* fenced: wait for a new LeaderAndIsr */
};

/*
 * The first step after follower_start: an empty cache truncates to the HW
 * (Kafka's fallback) and fetches; otherwise ask about the latest epoch
 * (*offset = log end: nothing to cut yet).
 */
enum follower_trunc follower_truncation_first(const struct lepoch *c, int64_t log_end,
					      int64_t hw, int64_t *offset, int32_t *epoch);

/*
 * The step after the leader's OffsetForLeaderEpoch answer (`error_code`,
 * `leader_epoch`, `leader_end_offset`) on round `round` (1 = first answer):
 * errors -> PAUSE (FENCED_LEADER_EPOCH) or RETRY; else lepoch_divergence:
 * DONE -> FETCH, AGAIN -> ASK with the latest epoch left below the cut
 * (the caller truncates the cache first), or, past
 * FOLLOWER_TRUNCATE_ROUNDS_MAX rounds or with no epoch left, FETCH after
 * truncating to min(HW, offset).
 */
enum follower_trunc follower_truncation_answer(const struct lepoch *c, int64_t log_end,
					       int64_t hw, int16_t error_code,
					       int32_t leader_epoch, int64_t leader_end_offset,
					       uint32_t round, int64_t *offset, int32_t *epoch);

/* The single-node answer of OffsetForLeaderEpoch (api_offset_for_leader_epoch.c). */
void ofle_single_node(int32_t current_leader_epoch, int32_t requested, int64_t log_start,
		      int64_t log_end, int16_t *error_code, int32_t *epoch, int64_t *end_offset);

#endif
