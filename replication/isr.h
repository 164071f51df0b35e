/*
 * isr.h — the leader's view of one partition's replicas: follower
 * positions, the in-sync replica set (ISR), the high watermark (HW) and the
 * acks=all rules. Pure state, no I/O; the clock is injected (now_ms
 * arguments), so every rule is unit-tested without sleeping.
 *
 * Kafka is the spec (ZooKeeper mode with AlterPartition, Kafka 3.x,
 * Partition.scala / Replica.scala):
 *   - A follower's fetch at offset F records its log end offset (LEO = F)
 *     and its last-caught-up time: F >= the leader's LEO now catches it up
 *     now; else F >= the leader's LEO as of its previous fetch catches it up
 *     at that previous fetch's time (isr_follower_fetch).
 *   - Caught up at time T: LEO == leader's LEO, or T - lastCaughtUp <=
 *     replica.lag.time.max.ms. A follower in the ISR that is not caught up
 *     is out of sync (isr_propose_shrink).
 *   - A follower outside the ISR may join once its LEO >= HW and >= the
 *     start offset of the leader's current epoch (isr_propose_expand; one
 *     replica per proposal, as Kafka).
 *   - HW = min LEO over the "maximal" ISR (committed ISR, plus the replica
 *     whose expansion is in flight) and over the caught-up followers outside
 *     it whose LEO is below (Kafka's shouldWaitForReplicaToJoinIsr), leader
 *     included. It only moves up.
 *   - One ISR change (AlterPartition) in flight at a time; no proposal while
 *     one is pending. A shrink takes effect only when committed; an
 *     expansion counts for the HW as soon as proposed (KIP-497).
 *   - acks=all: refused before the append with NOT_ENOUGH_REPLICAS when the
 *     committed ISR is smaller than min.insync.replicas; a waiting append
 *     completes once HW > its last offset, with
 *     NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal ISR is then smaller
 *     than min.insync.replicas (Kafka's checkEnoughReplicasReachOffset).
 *
 * Invariants (isr_check asserts them after every state change):
 *   1. replica ids are distinct, >= 0, at most ISR_REPLICAS_MAX; the leader
 *      is one of them.
 *   2. the committed ISR is a set of assigned replicas holding the leader.
 *   3. pending SHRINK: proposed ⊂ committed, holds the leader; pending
 *      EXPAND: proposed = committed + exactly one assigned replica.
 *   4. 0 <= hw <= leader LEO; hw never decreases while the object lives.
 *   5. a follower's LEO is -1 (unknown: no fetch since this leadership) or
 *      0 .. leader LEO.
 *
 * States (pending ISR change):
 *   NONE --isr_propose_shrink--> SHRINK --isr_pending_commit--> NONE
 *   NONE --isr_propose_expand--> EXPAND --isr_pending_fail----> NONE
 *   any  --isr_init (LeaderAndIsr: new leadership or epoch)----> NONE
 *
 * runs on: the partition's owner shard (no locks).
 */
#ifndef SL_REPLICATION_ISR_H
#define SL_REPLICATION_ISR_H

#include <stdint.h>

#include "sl.h"

#define ISR_REPLICAS_MAX 16
/* A time that is before every real time ("never"). */
#define ISR_TIME_NEVER INT64_MIN
/* A follower LEO not known yet (Kafka's UnknownOffset). */
#define ISR_OFFSET_UNKNOWN (-1)

enum isr_pending {
	ISR_PENDING_NONE = 0,
	ISR_PENDING_SHRINK,
	ISR_PENDING_EXPAND,
};

/* How isr_init treats the follower state already in the object. */
enum isr_init_mode {
	ISR_INIT_NEW_LEADER = 0,   /* this broker just became leader: forget followers */
	ISR_INIT_REELECTED,        /* still leader, new LeaderAndIsr: keep follower LEOs */
};

/* Result of the acks=all checks; the Produce handler maps it to Kafka codes. */
enum isr_acks {
	ISR_ACKS_OK = 0,                 /* append may go on / waiting append done: NONE */
	ISR_ACKS_WAIT,                   /* HW not past the append yet: keep waiting */
	ISR_ACKS_NOT_ENOUGH_REPLICAS,    /* refuse before appending: Kafka error 19 */
	ISR_ACKS_NOT_ENOUGH_AFTER_APPEND,/* appended, ISR too small: Kafka error 20 */
};

struct isr_follower {
	int32_t id;
	int64_t leo;                     /* ISR_OFFSET_UNKNOWN until its first fetch */
	int64_t last_caught_up_ms;       /* ISR_TIME_NEVER: never caught up */
	int64_t last_fetch_ms;           /* ISR_TIME_NEVER: no fetch yet */
	int64_t last_fetch_leader_leo;   /* leader LEO at that fetch, or unknown */
};

/* The LeaderAndIsr state the leader starts from. */
struct isr_config {
	int32_t leader_id;
	int32_t leader_epoch;
	int32_t partition_epoch;         /* zkVersion of the partition state znode */
	uint32_t replica_count;          /* assignment, leader included */
	int32_t replicas[ISR_REPLICAS_MAX];
	uint32_t isr_count;
	int32_t isr[ISR_REPLICAS_MAX];
	int64_t leader_leo;              /* the leader's log end offset now */
	int64_t leader_epoch_start_offset; /* LEO when this leader epoch began */
	int64_t hw;                      /* the leader's HW so far (checkpoint); clamped to LEO */
	int32_t min_insync_replicas;     /* min.insync.replicas, >= 1 */
	int64_t replica_lag_time_max_ms; /* replica.lag.time.max.ms, >= 0 */
};

/* An AlterPartition to send: the new ISR for (leader epoch, partition epoch). */
struct isr_proposal {
	int32_t leader_id;
	int32_t leader_epoch;
	int32_t partition_epoch;
	uint32_t isr_count;
	int32_t isr[ISR_REPLICAS_MAX];
};

struct isr {
	struct isr_config cfg;           /* replicas, epochs, settings as last (re)initialised */
	uint32_t follower_count;         /* replica_count - 1 */
	struct isr_follower followers[ISR_REPLICAS_MAX - 1];
	uint32_t isr_count;              /* committed ISR */
	int32_t isr[ISR_REPLICAS_MAX];
	int32_t partition_epoch;
	enum isr_pending pending;
	uint32_t proposed_count;         /* valid while pending != NONE */
	int32_t proposed[ISR_REPLICAS_MAX];
	int64_t leader_leo;
	int64_t hw;
};

/*
 * Starts (or restarts, on a new LeaderAndIsr) the leader's view from `cfg`
 * at `now_ms`. ISR_INIT_NEW_LEADER: every follower's LEO is unknown (the HW
 * cannot move until each ISR member fetched), ISR members count as caught
 * up now, the others never. ISR_INIT_REELECTED: followers still assigned
 * keep their LEO; their last fetch is now (ISR) or never. Any pending change
 * is dropped. The HW starts at min(cfg->hw, LEO), or the old HW when
 * re-elected if higher, and may move at once (single-member ISR).
 * ISR_INIT_REELECTED reads the follower state already in `s`, so `s` must
 * have been initialised before (by either mode).
 * SL_EINVAL: counts out of range, duplicate or negative ids, leader not in
 * the ISR, an ISR member not assigned, min.insync < 1, offsets negative or
 * epoch start > LEO. On SL_EINVAL `s` is unchanged.
 */
enum sl_err isr_init(struct isr *s, const struct isr_config *cfg, enum isr_init_mode mode,
		     int64_t now_ms);

/*
 * The leader's own LEO moved to `leo` (an append completed; never lower).
 * *hw_moved (may be NULL) says whether the HW went up (waiting acks=all
 * appends and fetches should be re-checked then).
 */
void isr_leader_append(struct isr *s, int64_t leo, int64_t now_ms, int *hw_moved);

/*
 * A Fetch from follower `replica_id` at `fetch_offset` (its LEO) at
 * `now_ms`: updates its LEO and last-caught-up time (rule above) and the
 * HW. SL_ENOTFOUND: not a follower of this partition; SL_ERANGE:
 * fetch_offset < 0 or > leader LEO (Kafka answers OFFSET_OUT_OF_RANGE);
 * nothing changes then. *hw_moved as in isr_leader_append.
 */
enum sl_err isr_follower_fetch(struct isr *s, int32_t replica_id, int64_t fetch_offset,
			       int64_t now_ms, int *hw_moved);

/*
 * Periodic check (Kafka runs it every lag/2): proposes removing every ISR
 * follower not caught up at `now_ms`. SL_OK with *out filled and the state
 * SHRINK; SL_ENOTFOUND nobody is out of sync; SL_EAGAIN a change is pending.
 */
enum sl_err isr_propose_shrink(struct isr *s, int64_t now_ms, struct isr_proposal *out);

/*
 * Proposes adding the first assigned follower (assignment order) outside
 * the ISR whose LEO >= HW and >= the leader epoch's start offset. SL_OK with
 * *out filled and the state EXPAND (the HW now waits for it too);
 * SL_ENOTFOUND none qualifies; SL_EAGAIN a change is pending.
 */
enum sl_err isr_propose_expand(struct isr *s, struct isr_proposal *out);

/*
 * The controller accepted an ISR change: `isr`/`isr_count` as it wrote
 * them (may differ from the proposal), `partition_epoch` the state node's
 * new version. Commits, leaves the pending state and recomputes the HW
 * (*hw_moved, may be NULL). SL_ENOTFOUND nothing pending; SL_ERANGE a stale
 * answer (leader epoch differs or partition epoch older): ignored, still
 * pending (a LeaderAndIsr will follow); SL_EINVAL an ISR breaking invariant
 * 2: ignored, still pending.
 */
enum sl_err isr_pending_commit(struct isr *s, int32_t leader_epoch, const int32_t *isr,
			       uint32_t isr_count, int32_t partition_epoch, int64_t now_ms,
			       int *hw_moved);

/*
 * The controller said the change was not applied (Kafka's
 * OPERATION_NOT_ATTEMPTED / INELIGIBLE_REPLICA): back to the committed
 * state, nothing pending. Other errors are not this call: for
 * UNKNOWN_TOPIC_OR_PARTITION, FENCED_LEADER_EPOCH and INVALID_UPDATE_VERSION
 * Kafka stays pending until the next LeaderAndIsr (isr_init); anything else
 * is retried with the same proposal (isr_pending_proposal).
 */
void isr_pending_fail(struct isr *s);

/* The change in flight, to resend. SL_ENOTFOUND when nothing is pending. */
enum sl_err isr_pending_proposal(const struct isr *s, struct isr_proposal *out);

/* acks=all before appending: OK, or NOT_ENOUGH_REPLICAS (committed ISR < min.insync). */
enum isr_acks isr_acks_all_append_check(const struct isr *s);

/*
 * acks=all append whose last offset is `last_offset`, waiting: WAIT while
 * HW <= last_offset; then OK, or NOT_ENOUGH_AFTER_APPEND when the maximal
 * ISR is below min.insync.replicas.
 */
enum isr_acks isr_acks_all_check(const struct isr *s, int64_t last_offset);

int64_t isr_hw(const struct isr *s);
/* 1 when `replica_id` is in the committed ISR. */
int isr_contains(const struct isr *s, int32_t replica_id);
/* Committed ISR plus the replica of a pending expansion. */
uint32_t isr_maximal_count(const struct isr *s);
/* The follower's state, or NULL (tests, metrics, Fetch handling). */
const struct isr_follower *isr_follower(const struct isr *s, int32_t replica_id);

/* Asserts invariants 1-5 (called after every state change). */
void isr_check(const struct isr *s);

#endif
