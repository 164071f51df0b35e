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
struct repl_shard;
struct req;
struct kclient;
struct timer_set;

/* acks=all produces waiting on one partition (bounded: REPL_ACKS_MAX). */
#define REPL_ACKS_MAX 65536u
struct repl_acks {
	struct partition_acks_waiter *head, *tail;
	uint32_t count;
};

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
	/* repl.c's bookkeeping (leader side) */
	struct repl_shard *rs;       /* this shard's replication state */
	struct repl_partition *prev, *next;   /* rs->parts */
	struct repl_acks acks;       /* acks=all produces waiting for the HW */
	bool alter_inflight;         /* an AlterPartition for this partition is out */
	bool alter_retry;            /* resend the pending proposal at the next tick */
	int32_t min_insync;          /* min.insync.replicas in force */
};

/* The partition's replication state, NULL in single-node mode. */
static inline struct repl_partition *repl_of(struct partition *p)
{
	return (struct repl_partition *)partition_repl(p);
}

/* ---- repl.c ---- */

/* What a LeaderAndIsr partition state means for the local replica. */
enum repl_transition {
	REPL_T_FENCED = 0,      /* older leader epoch: refused, FENCED_LEADER_EPOCH */
	REPL_T_NOOP,            /* same epochs: nothing to do */
	REPL_T_LEADER_NEW,      /* becomes leader (or leads in a newer epoch) */
	REPL_T_LEADER_UPDATE,   /* still leader, same epoch, newer partition epoch (ISR) */
	REPL_T_FOLLOWER,        /* follows `leader` in a newer epoch */
	REPL_T_NO_LEADER,       /* leader -1: stop leading/following */
};

/* One partition's state as LeaderAndIsr carries it. */
struct repl_state {
	int32_t controller_epoch;
	int32_t leader;
	int32_t leader_epoch;
	int32_t partition_epoch;
	uint32_t replica_count;
	int32_t replicas[ISR_REPLICAS_MAX];
	uint32_t isr_count;
	int32_t isr[ISR_REPLICAS_MAX];
};

/* Pure: the transition `st` asks of `rp` (NULL: no state yet) on broker `me`. */
enum repl_transition repl_decide(const struct repl_partition *rp, int32_t me,
				 const struct repl_state *st);

/*
 * Pure, KIP-320: a client's CurrentLeaderEpoch against ours. NONE (-1 =
 * no check, or equal), FENCED_LEADER_EPOCH (older), UNKNOWN_LEADER_EPOCH
 * (newer); then NOT_LEADER_OR_FOLLOWER when rp is not the leader.
 */
int16_t repl_epoch_check(const struct repl_partition *rp, int32_t current_leader_epoch);

/*
 * acks=all waiting list of rp (its own timers in `ts`, shard clock ns).
 * repl_acks_add: 1 waiting (fn later; the timer fires REQUEST_TIMED_OUT at
 * w->deadline_ns), 0 answered now (w->error_code). repl_acks_check
 * completes the waiters the HW passed (isr_acks_all_check);
 * repl_acks_fail_all answers every waiter with `kerr`.
 */
int repl_acks_add(struct repl_partition *rp, struct timer_set *ts,
		  struct partition_acks_waiter *w);
void repl_acks_check(struct repl_partition *rp, struct timer_set *ts);
void repl_acks_fail_all(struct repl_partition *rp, struct timer_set *ts, int16_t kerr);

/* The partition set hooks (net/partition.h) main.c installs in cluster mode. */
extern const struct partition_hooks repl_partition_hooks;

/*
 * Applies one partition's LeaderAndIsr state on its owner shard: creates
 * the repl state (loading leader-epoch-checkpoint), then becomes leader or
 * follower. Returns the partition's Kafka error code. Runs on: p's owner.
 */
int16_t repl_apply(struct broker_shard *bs, struct partition *p, const struct repl_state *st,
		   int32_t min_insync);

/* StopReplica: stops leading/following p and frees its repl state. */
void repl_stop(struct partition *p);

/* Calls fn(arg, p) for every partition of bs with replication state
 * (fn must not create or free any). Runs on: bs's shard. */
void repl_each(struct broker_shard *bs, void (*fn)(void *arg, struct partition *p), void *arg);

/* Per-shard: the highest controller epoch seen (shard 0 checks it). */
int32_t repl_controller_epoch(struct broker_shard *bs);
void repl_controller_epoch_set(struct broker_shard *bs, int32_t epoch);

/* Shard stop (main.c's ext_stop chain): frees every repl state and the
 * AlterPartition client. Runs on: bs's shard. */
void repl_shard_stop(struct broker_shard *bs);

/*
 * Leadership changes for a layer above replication (the group coordinator
 * follows its __consumer_offsets partitions; main.c sets the hook, since
 * replication/ never includes coordination/). Called on p's owner shard
 * after the change took effect: `leader` true when this broker starts
 * leading p (from NONE or FOLLOWER), false when it stops (FOLLOWER, NONE,
 * StopReplica, the partition closing, the shard stopping). Never called
 * for a same-role update. NULL (the default): nothing is told.
 */
typedef void repl_role_fn(struct broker_shard *bs, struct partition *p, bool leader);
/* Sets the hook for every shard (main, before the shards start). */
void repl_role_hook_set(repl_role_fn *fn);

/* Follower hooks (follower.c), set by main.c; NULL: not wired. */
struct repl_follower_ops {
	void (*start)(struct repl_partition *rp);
	void (*stop)(struct repl_partition *rp);
};
/* Sets the follower ops for every shard (main, before the shards start). */
void repl_follower_ops_set(const struct repl_follower_ops *ops);

#endif
