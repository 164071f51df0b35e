/*
 * coord.h — the group coordinator of one shard: the groups whose
 * __consumer_offsets partition this shard owns, their timers and their
 * committed offsets; and the plumbing the coordination/api_*.c handlers
 * share to reach a group's owner shard.
 *
 * Where a group lives. Group G belongs to partition
 * p = Utils.abs(javaHashCode(G)) % offsets.topic.num.partitions of
 * __consumer_offsets (coord_partition_for, exactly Kafka's), and so to
 * the shard partition_owner(offsets topic id, p, N). Only that shard
 * touches the group; handlers on a connection's shard reach it with one
 * cross-shard call per group (coord_call_send): the owner runs
 * call->on_owner, which answers with coord_call_reply exactly once — at
 * once or later (JoinGroup held until the join phase ends, SyncGroup held
 * for the leader, OffsetCommit until its append completed). The owner
 * writes its answer into call->out, a heap arena it allocates; the
 * connection's shard reads it in call->done, encodes the response, and
 * sends the arena home to be freed on the owner (memory goes home).
 *
 * __consumer_offsets is created (offsets.topic.num.partitions partitions,
 * flagged internal, never through Metadata auto-creation) on the first
 * group request that finds it missing, with Kafka's overrides
 * cleanup.policy=compact, segment.bytes = offsets.topic.segment.bytes,
 * compression.type=producer; until it exists group requests answer
 * COORDINATOR_NOT_AVAILABLE, as Kafka does while it loads. A topic made by
 * an older version (no cleanup.policy override) gets the missing overrides
 * on first use (once per shard; the mutation on shard 0 is idempotent).
 *
 * Cluster mode (zookeeper.connect set): __consumer_offsets is created
 * through ZooKeeper like any topic (offsets.topic.replication.factor
 * replicas; COORDINATOR_NOT_AVAILABLE while fewer brokers are alive), and
 * a group's coordinator is the broker leading its partition. The owner
 * shard follows that leadership (coord_role_changed, called by
 * replication/repl.c through the hook main.c sets). Per partition p:
 *
 *   NONE --becomes leader--> PENDING --HW >= log end (poll timer or a
 *   call), coord_load--> LOADED --stops leading (follower, no leader,
 *   StopReplica, close)--> NONE (groups freed: held joins/syncs and
 *   in-flight appends answered NOT_COORDINATOR)
 *
 * A call for a partition this broker does not lead is answered
 * NOT_COORDINATOR (clients look the coordinator up again), one for a
 * PENDING partition COORDINATOR_LOAD_IN_PROGRESS. The groups are loaded
 * only once the high watermark covers the log end: everything the new
 * leader holds is committed, so the rebuilt state never contains a
 * record the ISR did not have. Appends stamp the leader epoch, need
 * min.insync.replicas (acks=-1) and are answered once the high watermark
 * passes them (Kafka's coordinator appends with acks=-1), so an
 * acknowledged commit survives the leader's death.
 *
 * States of a shard's coordinator: (none) --first call, coord_of-->
 * RUNNING --coord_shard_stop (broker_shard_stop)--> gone: held requests
 * answered COORDINATOR_NOT_AVAILABLE, groups freed; later calls are
 * answered COORDINATOR_NOT_AVAILABLE.
 *
 * Runs on: as tagged per function.
 */
#ifndef SL_COORD_COORD_H
#define SL_COORD_COORD_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.h"
#include "group.h"
#include "kread.h"
#include "req.h"
#include "sl.h"
#include "timer.h"

#define COORD_OFFSETS_TOPIC "__consumer_offsets"
#define COORD_BUCKETS 1024u
#define COORD_GROUPS_MAX 16384u         /* each may arm one shard timer (65536 per shard) */
#define COORD_OFFSETS_PER_GROUP_MAX 100000u
#define COORD_METADATA_BYTES_MAX 4096   /* offset.metadata.max.bytes */
#define COORD_LOAD_POLL_MS 50           /* cluster mode: PENDING partitions re-checked */

/* c->loaded[p]: a __consumer_offsets partition on its owner shard. */
enum coord_pstate {
	COORD_P_NONE = 0,                /* not loaded (single node: loads on first use) */
	COORD_P_LOADED = 1,              /* groups rebuilt from the log */
	COORD_P_PENDING = 2,             /* cluster mode: led here, waiting for HW >= log end */
};

struct coord;
struct coord_call;
struct coord_append;

/* One committed offset. */
struct coord_offset {
	char *topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	char *metadata;
	int64_t commit_ts_ms;
};

/* A group on its owner shard: the state machine, its timer, its offsets. */
struct coord_group {
	struct group *g;
	struct coord *c;
	struct timer t;
	int32_t partition;               /* of __consumer_offsets */
	struct coord_offset *offs;
	uint32_t off_count;
	uint32_t off_cap;
	int64_t empty_since_wall_ms;     /* EMPTY since (wall ms): a group with a protocol type
	                                  * expires offsets retention after max(this, commit);
	                                  * a standalone one after the commit (KIP-211) */
	bool has_meta;                   /* group metadata written / loaded (not a tombstone) */
	uint32_t appends;                /* appends in flight (the group waits for them) */
	struct coord_group *next;        /* bucket chain */
};

struct coord {
	struct broker_shard *bs;
	struct group_config cfg;
	struct group_ops ops;
	uint64_t id_seq;
	struct coord_group *buckets[COORD_BUCKETS];
	uint32_t group_count;
	int32_t partitions;              /* offsets.topic.num.partitions */
	uint8_t *loaded;                 /* [partitions]: enum coord_pstate */
	bool cluster;                    /* zookeeper.connect set: follow leadership */
	bool unloading;                  /* coord_unload running: held answers NOT_COORDINATOR */
	bool load_armed;                 /* load_timer armed (PENDING partitions) */
	struct timer load_timer;
	bool creating;                   /* __consumer_offsets creation in flight */
	bool migrated;                   /* cleanup.policy migration started (once) */
	struct coord_append *appends;    /* in flight (coord_log.c) */
	/* tests only (NULL in the broker): the wall clock, and a sink taking
	 * every appended batch instead of the partition */
	int64_t (*wall_fn)(struct coord *c);
	void (*append_sink)(struct coord *c, int32_t p, const uint8_t *batch, size_t len);
	void *test_ctx;
};

/* Owner-side work of a call; ends with coord_call_reply (now or later). */
typedef void coord_owner_fn(struct coord *c, struct coord_call *call);
/* Back on the connection's shard. */
typedef void coord_done_fn(struct coord_call *call);

struct coord_call {
	/* in (connection's shard) */
	struct req *rq;
	const char *group;               /* borrowed from rq */
	int32_t group_len;
	int32_t partition;               /* of __consumer_offsets */
	coord_owner_fn *on_owner;
	coord_done_fn *done;
	const void *in;                  /* api-specific input, borrowed */
	void *arg;                       /* the handler's; the owner may write per-item answers there */
	/* out (owner) */
	int16_t error_code;
	struct karena *out;              /* owner heap; freed on the owner */
	void *result;                    /* in `out` */
	/* private (owner) */
	struct xmsg m;
	uint32_t owner;
	bool in_fn;
	bool replied;
	struct coord_call *next;         /* held on the owner (commit appends) */
};

/* ---- connection's shard ---- */

/* Registers every group API in net/dispatch (main.c, before the shards). */
void coord_register(void);

/* broker->ext_stop. Runs on: each shard, first thing in broker_shard_stop. */
void coord_shard_stop(struct broker_shard *bs);

/*
 * replication's role hook (repl_role_hook_set, main.c): p's leadership on
 * this broker changed. For a __consumer_offsets partition: leader -> its
 * groups are loaded once the HW covers the log end; not leader -> they
 * are unloaded. Other topics are ignored. Runs on: p's owner shard.
 */
void coord_role_changed(struct broker_shard *bs, struct partition *p, bool leader);

/* Kafka's Utils.abs(String.hashCode(group)) % partitions (UTF-16 code units). */
int32_t coord_partition_for(const char *group, size_t len, int32_t partitions);
/* Java's String.hashCode of the UTF-8 string decoded to UTF-16. */
int32_t coord_java_hash(const char *s, size_t len);

/*
 * Finds the shard owning `group`: KERR_NONE with *shard and *partition,
 * or COORDINATOR_NOT_AVAILABLE while __consumer_offsets does not exist
 * yet (its creation is started). Runs on: any shard.
 */
int16_t coord_route(struct broker_shard *bs, const char *group, size_t len, uint32_t *shard,
		    int32_t *partition);

/* The value of topic t's override `key`, or NULL. */
struct catalog_topic;
const char *coord_topic_override(const struct catalog_topic *t, const char *key);

/*
 * Sends `call` (rq, group, on_owner, done filled) to the group's owner.
 * KERR_NONE: done runs later. Otherwise the error to answer with (done
 * does not run): INVALID_GROUP_ID for an empty group id or one longer
 * than GROUP_ID_BYTES_MAX (255), COORDINATOR_NOT_AVAILABLE.
 */
int16_t coord_call_send(struct broker_shard *bs, struct coord_call *call);

/*
 * Sends `call` to shard `shard` (call->partition -1: the owner first
 * loads every __consumer_offsets partition it owns). As coord_call_send.
 */
int16_t coord_call_send_to(struct broker_shard *bs, struct coord_call *call, uint32_t shard);

/* ---- owner shard ---- */

/* Answers a call (exactly once). */
void coord_call_reply(struct coord *c, struct coord_call *call);

/* The owner's result arena for `call`, `size` bytes; NULL on ENOMEM. */
void *coord_call_result(struct coord_call *call, size_t size);
/* Copies a string into the call's arena as a kslice. */
struct kslice coord_call_str(struct coord_call *call, const char *s);

/* The group, or NULL; with `create`, made (EMPTY) when missing. */
struct coord_group *coord_group_get(struct coord *c, const char *id, int32_t len,
				    int32_t partition, bool create);
/* Re-arms the group's timer after a change. */
void coord_group_touch(struct coord_group *cg);
/* Removes and frees a DEAD group. */
void coord_group_remove(struct coord_group *cg);

int64_t coord_now_ms(struct coord *c);

/* Offsets of one group. */
struct coord_offset *coord_offset_find(struct coord_group *cg, const char *topic, int32_t tlen,
				       int32_t partition);
enum sl_err coord_offset_put(struct coord_group *cg, const char *topic, int32_t tlen,
			     int32_t partition, int64_t offset, int32_t leader_epoch,
			     const char *meta, int32_t meta_len, int64_t ts_ms);
void coord_offset_del(struct coord_group *cg, uint32_t idx);

/* Iterates every group of this shard (ListGroups); fn returns false to stop. */
void coord_groups_each(struct coord *c, bool (*fn)(struct coord_group *cg, void *arg), void *arg);

#endif
