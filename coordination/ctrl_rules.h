/*
 * ctrl_rules.h — the ZooKeeper-mode controller's decision rules as pure
 * functions: replica assignment, leader elections, broker failure,
 * controlled shutdown, ISR change requests (AlterPartition) and broker
 * epochs (stale-epoch checks, new / dead / bounced brokers). No I/O,
 * no ZooKeeper, no clock: the caller reads the znodes, calls a rule,
 * writes the new states back conditionally and sends LeaderAndIsr.
 *
 * The rules are Kafka's (ZK-mode KafkaController, AdminUtils,
 * PartitionLeaderElectionAlgorithms, ReplicaStateMachine), so a cluster
 * mixing Sluice and Kafka brokers sees the same decisions:
 *
 *   - a replica is "online" when its broker is registered (alive) and not
 *     shutting down (Kafka's isReplicaOnline); controlled-shutdown
 *     elections also accept shutting-down brokers as "live".
 *   - every state change the controller writes bumps the leader epoch by
 *     one (LeaderAndIsr.newLeaderAndIsr), including ISR-only shrinks made
 *     by the controller; an AlterPartition from the leader does not.
 *   - removing a replica from the ISR never empties it: an ISR of one
 *     keeps its last member (so the last in-sync replica stays known) and
 *     the leader becomes -1 if it was that replica.
 *
 * Invariants of a struct ctrl_pstate (ctrl_pstate_check):
 *   1. 1 <= replica_count <= CTRL_REPLICAS_MAX, replicas distinct, >= 0.
 *   2. isr_count <= replica_count, ISR members distinct (usually replicas).
 *   3. leader == -1 or leader is in replicas.
 *   4. leader_epoch >= 0, partition_epoch >= 0.
 *
 * Runs on: the controller (shard 0 of the broker holding /controller).
 */
#ifndef SL_COORD_CTRL_RULES_H
#define SL_COORD_CTRL_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "sl.h"

#define CTRL_REPLICAS_MAX 16    /* replicas per partition */
#define CTRL_BROKERS_MAX 4096   /* brokers in one cluster view */
#define CTRL_NO_LEADER (-1)

/* Kafka error codes the rules answer with. */
enum ctrl_kerr {
	CTRL_KERR_UNKNOWN_SERVER_ERROR = -1,  /* Kafka: AdminOperationException */
	CTRL_KERR_NONE = 0,
	CTRL_KERR_NOT_LEADER_OR_FOLLOWER = 6,
	CTRL_KERR_INVALID_PARTITIONS = 37,
	CTRL_KERR_INVALID_REPLICATION_FACTOR = 38,
	CTRL_KERR_NOT_CONTROLLER = 41,
	CTRL_KERR_INVALID_REQUEST = 42,
	CTRL_KERR_OPERATION_NOT_ATTEMPTED = 55,
	CTRL_KERR_FENCED_LEADER_EPOCH = 74,
	CTRL_KERR_STALE_BROKER_EPOCH = 77,
	CTRL_KERR_PREFERRED_LEADER_NOT_AVAILABLE = 80,
	CTRL_KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE = 83,
	CTRL_KERR_ELECTION_NOT_NEEDED = 84,
	CTRL_KERR_INELIGIBLE_REPLICA = 107,
	CTRL_KERR_INVALID_UPDATE_VERSION = 108,
};

/* Kafka's LeaderRecoveryState (KIP-704). */
enum ctrl_recovery {
	CTRL_RECOVERED = 0,
	CTRL_RECOVERING = 1,
};

/* One broker as the controller sees it. */
struct ctrl_broker {
	int32_t id;
	const char *rack;        /* NULL: no broker.rack */
	bool alive;              /* registered under /brokers/ids */
	bool shutting_down;      /* sent ControlledShutdown */
};

/* The brokers known to the controller (borrowed array). */
struct ctrl_cluster {
	const struct ctrl_broker *brokers;
	uint32_t broker_count;
};

/* One partition: its assignment and its state znode. */
struct ctrl_pstate {
	int32_t replicas[CTRL_REPLICAS_MAX];  /* assignment order; [0] preferred */
	uint32_t replica_count;
	int32_t isr[CTRL_REPLICAS_MAX];
	uint32_t isr_count;
	int32_t leader;                       /* CTRL_NO_LEADER: none */
	int32_t leader_epoch;
	int32_t controller_epoch;             /* of the controller that wrote it */
	int32_t partition_epoch;              /* zkVersion of the state znode */
	uint8_t leader_recovery_state;        /* enum ctrl_recovery */
};

/* How ctrl_assign treats racks (Kafka's RackAwareMode). */
enum ctrl_rack_mode {
	CTRL_RACK_ENFORCED = 0,  /* racks on all brokers or none; mixed: error */
	CTRL_RACK_SAFE,          /* mixed: ignore racks */
	CTRL_RACK_DISABLED,      /* always ignore racks */
};

enum ctrl_elect {
	CTRL_ELECT_OFFLINE = 0,         /* leader gone: first online ISR replica */
	CTRL_ELECT_OFFLINE_UNCLEAN,     /* same, else first online replica */
	CTRL_ELECT_CONTROLLED_SHUTDOWN, /* first live ISR replica not shutting down */
	CTRL_ELECT_PREFERRED,           /* replicas[0] if online and in ISR */
};

/* What a rule did to one partition. */
enum ctrl_change {
	CTRL_CHANGE_NONE = 0,
	CTRL_CHANGE_ISR,      /* ISR shrank, same leader; epoch bumped */
	CTRL_CHANGE_LEADER,   /* a new leader was elected; epoch bumped */
	CTRL_CHANGE_OFFLINE,  /* leader is now -1; epoch bumped */
};

/* The broker with `id`, or NULL. */
const struct ctrl_broker *ctrl_cluster_find(const struct ctrl_cluster *c, int32_t id);
/* Kafka's isReplicaOnline: registered and not shutting down. */
bool ctrl_replica_online(const struct ctrl_cluster *c, int32_t id);

/* Asserts the invariants in the header comment. */
void ctrl_pstate_check(const struct ctrl_pstate *ps);
bool ctrl_pstate_in_isr(const struct ctrl_pstate *ps, int32_t id);
bool ctrl_pstate_has_replica(const struct ctrl_pstate *ps, int32_t id);

/*
 * Replica assignment for `partitions` new partitions numbered from
 * `start_partition` (0 for a new topic) with `rf` replicas each, over the
 * registered brokers of `c` in id order (Kafka's
 * AdminUtils.assignReplicasToBrokers): rack-unaware, or rack-aware over
 * the rack-alternated broker list when racks apply (`mode`). `start_idx`
 * and `shift` are Kafka's random startIndex and nextReplicaShift (pass
 * random values in [0, brokers), or the same fixed value as Kafka's
 * fixedStartIndex). Writes partitions*rf ids row by row into `out`
 * (`out_cap` entries). Errors: INVALID_PARTITIONS (partitions <= 0),
 * INVALID_REPLICATION_FACTOR (rf <= 0, rf > brokers or > CTRL_REPLICAS_MAX),
 * UNKNOWN_SERVER_ERROR (mixed racks under ENFORCED, Kafka's
 * AdminOperationException), INVALID_REQUEST (out too small, bad index).
 */
int16_t ctrl_assign(const struct ctrl_cluster *c, int32_t partitions, int32_t rf,
		    enum ctrl_rack_mode mode, int32_t start_idx, int32_t shift,
		    int32_t start_partition, int32_t *out, uint32_t out_cap);

/*
 * CreatePartitions: assignment of partitions existing_count ..
 * new_total-1 the way Kafka's AdminZkClient.addPartitions does it: rf =
 * partition 0's replica count, fixed start index = position of the first
 * broker (by id) >= partition 0's first replica. Errors as ctrl_assign;
 * INVALID_PARTITIONS when new_total <= existing_count.
 */
int16_t ctrl_assign_more(const struct ctrl_cluster *c, const int32_t *p0_replicas,
			 uint32_t p0_count, int32_t existing_count, int32_t new_total,
			 enum ctrl_rack_mode mode, int32_t *out, uint32_t out_cap);

/*
 * The first state of a new partition (Kafka's NewPartition ->
 * OnlinePartition): ISR = online replicas in assignment order, leader =
 * the first of them, leader epoch 0, partition epoch 0. SL_ENOTFOUND when
 * no replica is online (Kafka leaves the partition without a state).
 */
enum sl_err ctrl_pstate_init(const struct ctrl_cluster *c, const int32_t *replicas,
			     uint32_t replica_count, int32_t controller_epoch,
			     struct ctrl_pstate *out);

/*
 * A leader election of kind `how` on `cur`; on success `next` is the new
 * state (leader epoch + 1) and the answer is NONE. OFFLINE: ISR = online
 * ISR members (or just the new leader after an unclean election, which
 * also sets RECOVERING). CONTROLLED_SHUTDOWN: ISR loses every
 * shutting-down broker. PREFERRED: ISR unchanged. Failures leave `next`
 * == `cur`: ELIGIBLE_LEADERS_NOT_AVAILABLE (no candidate),
 * PREFERRED_LEADER_NOT_AVAILABLE, ELECTION_NOT_NEEDED (preferred replica
 * already leads).
 */
int16_t ctrl_elect(const struct ctrl_cluster *c, const struct ctrl_pstate *cur,
		   enum ctrl_elect how, struct ctrl_pstate *next);

/*
 * Reassignment election (Kafka's reassignPartitionLeaderElection): the
 * first of `target` that is online and in the ISR; ISR unchanged.
 */
int16_t ctrl_elect_reassign(const struct ctrl_cluster *c, const struct ctrl_pstate *cur,
			    const int32_t *target, uint32_t target_count,
			    struct ctrl_pstate *next);

/*
 * Kafka's ReplicaStateMachine removeReplicasFromIsr for one partition:
 * if `broker` is in the ISR, it leaves it (unless it is the only member),
 * the leader becomes -1 if it was `broker`, the leader epoch goes up by
 * one. Returns what changed.
 */
enum ctrl_change ctrl_remove_from_isr(struct ctrl_pstate *ps, int32_t broker);

/*
 * Broker `broker` died (c must already show it not alive). For each of
 * `states[0..count)` holding it as a replica, in Kafka's order: an
 * offline-leader election (unclean when `unclean[i]`, unclean may be
 * NULL) for partitions whose leader is not online, then removal from the
 * ISR. `states` are updated in place, `changes[i]` says what happened
 * (CTRL_CHANGE_NONE: nothing to write). `moved` (capacity count, may be
 * NULL) gets the indexes whose leader changed (new leader or -1); their
 * number is returned.
 */
uint32_t ctrl_broker_failed(const struct ctrl_cluster *c, int32_t broker,
			    const bool *unclean, struct ctrl_pstate *states, uint32_t count,
			    enum ctrl_change *changes, uint32_t *moved);

/*
 * ControlledShutdown of `broker` (c must already mark it shutting down).
 * Partitions with one replica are left alone, as in Kafka. Partitions it
 * leads get a controlled-shutdown election (unchanged when nobody else is
 * in the ISR); partitions it follows drop it from the ISR. `remaining`
 * (capacity count) gets the indexes of replicated partitions it still
 * leads (ControlledShutdownResponse.RemainingPartitions); their number is
 * returned.
 */
uint32_t ctrl_controlled_shutdown(const struct ctrl_cluster *c, int32_t broker,
				  struct ctrl_pstate *states, uint32_t count,
				  enum ctrl_change *changes, uint32_t *remaining);

/* One partition of an AlterPartition request. */
struct ctrl_isr_req {
	int32_t broker_id;          /* the sender, which claims to lead */
	int32_t leader_epoch;
	int32_t partition_epoch;
	const int32_t *isr;
	uint32_t isr_count;
	uint8_t leader_recovery_state;
	int16_t api_version;        /* of the AlterPartition request */
};

/*
 * AlterPartition (KIP-497, KIP-841) against the current state `cur`, in
 * the ZK controller's order: a newer leader or partition epoch than ours
 * -> NOT_CONTROLLER; an older leader epoch -> FENCED_LEADER_EPOCH; sender
 * not the leader -> NOT_LEADER_OR_FOLLOWER; already in the requested
 * state -> NONE with `next` = `cur` (idempotent retry); an older
 * partition epoch -> INVALID_UPDATE_VERSION; malformed ISR (empty,
 * duplicates, not replicas, leader missing) or an illegal recovery state
 * -> INVALID_REQUEST; a member that is not online (dead or shutting
 * down) -> INELIGIBLE_REPLICA (OPERATION_NOT_ATTEMPTED for request
 * versions 0 and 1, which predate that code). Accepted: `next` = `cur` with the new ISR
 * and recovery state, same leader epoch, partition epoch + 1 (the
 * zkVersion after the conditional write).
 */
int16_t ctrl_alter_partition(const struct ctrl_cluster *c, const struct ctrl_pstate *cur,
			     const struct ctrl_isr_req *req, struct ctrl_pstate *next);

/* ---- broker epochs (Kafka's broker epoch = czxid of /brokers/ids/<id>) ---- */

#define CTRL_EPOCH_UNKNOWN (-1)   /* a request without a broker epoch / no registration */

/*
 * The receiving side's check of a control request (LeaderAndIsr,
 * UpdateMetadata, StopReplica, ControlledShutdown): `req_epoch` from the
 * request, `cur_epoch` the receiver's current registration of that broker
 * (CTRL_EPOCH_UNKNOWN: not registered, or not known yet). A request
 * without an epoch (-1, older versions) is never stale; one naming an
 * older registration is (only "older": the registration may be newer than
 * what the receiver read, Kafka's rule); with no known registration any
 * epoch is stale (it names a registration that is not this process's).
 */
bool ctrl_broker_epoch_stale(int64_t req_epoch, int64_t cur_epoch);

/*
 * AlterPartition's stricter check (Kafka's ZK controller): the sender
 * must be registered (`cur_epoch` != CTRL_EPOCH_UNKNOWN) with exactly
 * `req_epoch`. A request without an epoch (-1) is accepted (Sluice's own
 * followers do not send one).
 */
bool ctrl_broker_epoch_exact_stale(int64_t req_epoch, int64_t cur_epoch);

/* One registration under /brokers/ids. */
struct ctrl_reg {
	int32_t id;
	int64_t epoch;            /* czxid */
};

/* What happened to one broker id between two snapshots of /brokers/ids. */
enum ctrl_reg_change {
	CTRL_REG_ABSENT = 0,      /* in neither */
	CTRL_REG_SAME,            /* same registration (same epoch) */
	CTRL_REG_NEW,             /* registered now, not before: startup */
	CTRL_REG_DEAD,            /* registered before, not now: failure */
	CTRL_REG_BOUNCED,         /* registered in both, another epoch: failure + startup */
};

/* `id` between `prev` and `cur` (unsorted; ids distinct within each). */
enum ctrl_reg_change ctrl_reg_classify(const struct ctrl_reg *prev, uint32_t prev_count,
				       const struct ctrl_reg *cur, uint32_t cur_count, int32_t id);

/*
 * Every id of either snapshot classified: `ids[i]`/`changes[i]` for i <
 * the returned count (capacity `cap`, at most prev_count + cur_count),
 * prev's ids first, then cur's ids absent from prev.
 */
uint32_t ctrl_reg_diff(const struct ctrl_reg *prev, uint32_t prev_count,
		       const struct ctrl_reg *cur, uint32_t cur_count, int32_t *ids,
		       enum ctrl_reg_change *changes, uint32_t cap);

#endif
