/*
 * partition.h — the partitions one shard owns: their logs (io/plog.h),
 * their timers, their parked appends and the fetches waiting on them.
 *
 * Ownership. Partition (topic id, index) belongs to shard
 * partition_owner(id, index, N) = hash(id, index) % N, a pure function of
 * the id, so every shard computes the same owner without asking anyone.
 * Only the owner touches a partition; other shards reach it with
 * cross-shard messages (api_produce.c, api_fetch.c, api_list_offsets.c).
 *
 * A shard's partition set follows the catalog snapshots it adopts
 * (partition_set_sync): partitions of new topics that it owns (in cluster
 * mode: only those whose replica state lists this broker; a topic with no
 * replica state yet keeps what is open and opens nothing) are opened
 * (created on disk as `<log dir>/<topic>-<index>/`, with Kafka's
 * partition.metadata), partitions of topics gone from the snapshot are
 * closed; with `delete_gone` (the broker sets it) their directories are
 * then renamed `<dir>.<topic id hex>-delete` and removed (DeleteTopics).
 * Topic config overrides in the snapshot set each partition's settings
 * (topic_config.h: plog config, max.message.bytes, LogAppendTime), at
 * open and again whenever they change.
 *
 * States of one partition and the function behind each transition:
 *   (absent) --partition_set_sync: plog_open ok--> OPEN
 *   (absent) --partition_set_sync: plog_open failed--> FAILED (no log;
 *            every operation answers KAFKA_STORAGE_ERROR)
 *   OPEN --partition_set_close / sync without its topic: parked appends
 *          failed, waiters woken, plog_close--> (freed)
 *
 * Invariants:
 *   1. high watermark = plog end offset (single node: every replica is
 *      this one, so an append is committed once it is visible), until
 *      replication takes the partition over (cluster mode,
 *      partition_hw_set): then it is what replication last set, within
 *      [log start, log end], and only partition_hw_set lowers it.
 *   2. The tick timer is armed iff the log has timed work
 *      (plog_next_deadline_ms < INT64_MAX); it is re-armed after every
 *      append completion and every tick.
 *   3. Appends are submitted to the plog in the order partition_append was
 *      called: once one is parked (plog said SL_EAGAIN), later ones queue
 *      behind it.
 *   4. A waiter is linked in at most one partition's list; waking unlinks
 *      it before calling its function.
 *
 * Runs on: the owning shard, always.
 */
#ifndef SL_NET_PARTITION_H
#define SL_NET_PARTITION_H

#include <stdbool.h>
#include <stdint.h>

#include "kread.h"
#include "plog.h"
#include "producer_state.h"
#include "shard.h"
#include "sl.h"
#include "timer.h"

struct catalog_snap;
struct config;
struct partition;

/* ---- appends ---- */

struct partition_append;
typedef void partition_append_done_fn(struct partition_append *a);

/*
 * One append, embedded in the caller's object (the produce handler's
 * per-partition entry, which may live in another shard's memory: the
 * owner only borrows it until `done`).
 */
struct partition_append {
	/* in */
	uint8_t *buf;                   /* validated batches; baseOffset is rewritten */
	size_t len;
	partition_append_done_fn *done;
	/* out, valid in done */
	int16_t error_code;             /* Kafka error code */
	int64_t base_offset;
	int64_t log_start_offset;
	/* private */
	struct plog_append pa;
	struct producer_reservation rsv;  /* idempotent producers (producer_state.h) */
	struct plog_flush_waiter fw;      /* a duplicate waiting for its original */
	struct partition *p;
	struct partition_append *next;  /* parked queue, or the duplicates to answer */
};

/*
 * Appends a->buf to partition p. Returns KERR_NONE when the append was
 * accepted: a->done then runs exactly once, later (never inside this
 * call), with error_code/base_offset/log_start_offset filled. Any other
 * return is the Kafka error of an append refused at once (partition
 * failed or closing, buffer larger than a segment); done is NOT called.
 *
 * Idempotent producers (producerId >= 0; io/producer_state.h): the record
 * set must be one batch (else INVALID_RECORD, as Kafka); a transactional
 * batch is refused with INVALID_TXN_STATE (no transaction coordinator
 * here, so no partition was ever added to a transaction — Kafka's answer
 * with transaction verification). At submit time (in order with the other
 * appends) the batch is checked against the partition's producer state:
 * a duplicate is not written and `done` reports the original's base
 * offset (once the original is durable if it is still in flight); out of
 * order -> OUT_OF_ORDER_SEQUENCE_NUMBER (via done, or returned when the
 * check runs at once); fenced epoch -> INVALID_PRODUCER_EPOCH.
 */
int16_t partition_append(struct partition *p, struct partition_append *a);

/*
 * A follower's append (replication): a->buf holds batches fetched from the
 * leader, offsets included (plog_append_replica: validated, the first at
 * or above the log end, increasing, gaps of a compacted leader kept,
 * written as received). No topic or producer
 * checks, but the idempotent batches are recorded in the producer state
 * (so this replica de-duplicates once it leads). KERR_NONE: a->done runs
 * later, exactly once (error_code NONE or KAFKA_STORAGE_ERROR, base_offset).
 * Refused at once (done not called): OFFSET_OUT_OF_RANGE (a baseOffset
 * below the log end, or overlapping), CORRUPT_MESSAGE, KAFKA_STORAGE_ERROR,
 * NOT_LEADER_OR_FOLLOWER (closing), REQUEST_TIMED_OUT (a client's append is
 * in flight or parked, or the plog is full: retry later).
 */
int16_t partition_append_replica(struct partition *p, struct partition_append *a);

/*
 * A follower's truncation: removes every offset >= `offset` (at a batch
 * boundary, plog_truncate_to), rebuilds the producer state from what is
 * left and lowers a replication-managed high watermark to the new end.
 * No-op when offset >= log end. SL_EAGAIN while appends, parked appends,
 * duplicate answers or a compaction job are in flight (retry later); the
 * plog's errors (SL_ERANGE below the log start, SL_EIO); SL_ECLOSED.
 * The leader-epoch cache is replication's to truncate.
 */
enum sl_err partition_truncate_to(struct partition *p, int64_t offset);

/*
 * Empties the log and starts it at `start_offset` (Kafka's
 * truncateFullyAndStartAt: the follower fell below the leader's log
 * start), forgets every producer, HW = start_offset. Errors as
 * partition_truncate_to.
 */
enum sl_err partition_truncate_fully(struct partition *p, int64_t start_offset);

/* ---- waiting for data (Fetch min_bytes) ---- */

struct partition_waiter;
typedef void partition_waiter_fn(struct partition_waiter *w);

struct partition_waiter {
	struct partition_waiter *prev, *next;
	partition_waiter_fn *fn;
	struct partition *p;            /* where it is linked, NULL if not */
};

/* Calls fn(w) (once, after unlinking w) when p's high watermark moves or p closes. */
void partition_wait(struct partition *p, struct partition_waiter *w, partition_waiter_fn *fn);
/* Unlinks w if linked. */
void partition_unwait(struct partition_waiter *w);

/* ---- reads and offsets ---- */

/* Kafka's view of a partition's offsets. */
struct partition_offsets {
	int64_t log_start_offset;
	int64_t high_watermark;
	int64_t last_stable_offset;
};

/* KERR_NONE and *out, or KAFKA_STORAGE_ERROR for a FAILED partition. */
int16_t partition_offsets(const struct partition *p, struct partition_offsets *out);

/*
 * Whole batches from `offset`, at most `max_bytes` (at least one batch),
 * below the high watermark: plog_read. The slice pins its segment until
 * plog_slice_release, which must run on this shard.
 * KERR_NONE (slice may be empty), OFFSET_OUT_OF_RANGE, KAFKA_STORAGE_ERROR.
 */
int16_t partition_read(struct partition *p, int64_t offset, uint32_t max_bytes,
		       struct plog_slice *out);

/* partition_read, bounded by the log end instead of the high watermark
 * when `to_log_end` (a follower's fetch). */
int16_t partition_read_upto(struct partition *p, int64_t offset, uint32_t max_bytes,
			    bool to_log_end, struct plog_slice *out);

/* The log of an OPEN partition, NULL if FAILED (ListOffsets lookups). */
struct plog *partition_log(struct partition *p);

/* ---- replication's hooks (cluster mode; runs on: the owner) ---- */

/*
 * An acks=all produce waiting for the high watermark to pass its last
 * offset (cluster mode). The Produce handler fills the `in` fields and
 * hands it to hooks->acks_wait; replication keeps it until `fn` runs.
 */
struct partition_acks_waiter;
typedef void partition_acks_fn(struct partition_acks_waiter *w);
struct partition_acks_waiter {
	/* in */
	int64_t last_offset;            /* the append's last offset */
	int64_t deadline_ns;            /* shard clock: REQUEST_TIMED_OUT after it */
	partition_acks_fn *fn;          /* runs once, later, with error_code set */
	/* out */
	int16_t error_code;
	/* private (replication) */
	struct partition_acks_waiter *prev, *next;
	struct timer timer;
	void *list;
};

/* Called by the partition set (partition_set.hooks, NULL: none). */
struct partition_hooks {
	/* The log end moved to `end` (appends completed). */
	void (*on_end)(struct partition *p, int64_t end);
	/* p is closing: free partition_repl(p) and partition_repl_set(p, NULL). */
	void (*on_close)(struct partition *p);
	/* Data-path checks of the request handlers (Kafka error codes). A NULL
	 * hook, or no hooks at all, is single-node behaviour. */
	/* A consumer's Fetch / ListOffsets: this broker leads p and the
	 * client's CurrentLeaderEpoch (-1: none) matches (KIP-320). */
	int16_t (*leader_check)(struct partition *p, int32_t current_leader_epoch);
	/* Produce, before appending: leader, and for acks -1 enough ISR
	 * members; *leader_epoch gets the epoch to stamp on the batches. */
	int16_t (*produce_check)(struct partition *p, int16_t acks, int32_t *leader_epoch);
	/* acks -1 after a successful append: 1 = w->fn runs later; 0 = done
	 * now, w->error_code set (fn never runs). */
	int (*acks_wait)(struct partition *p, struct partition_acks_waiter *w);
	/* A follower's Fetch at `fetch_offset` (its log end): leader and epoch
	 * checks, then the leader's view of it (may move the HW). */
	int16_t (*replica_fetch)(struct partition *p, int32_t replica_id,
				 int32_t current_leader_epoch, int64_t fetch_offset);
};

/* Log end offset; -1 when FAILED. */
int64_t partition_log_end(const struct partition *p);
/* High watermark (invariant 1); -1 when FAILED. */
int64_t partition_hw(const struct partition *p);
/* Sets the high watermark to `hw` clamped to [log start, log end] and
 * hands it to replication from now on; wakes waiters if it changed. */
void partition_hw_set(struct partition *p, int64_t hw);
/* Raises a replication-managed high watermark to `hw` (clamped to the log
 * end); never lowers it; wakes waiters if it moved. No-op when unmanaged. */
void partition_hw_advance(struct partition *p, int64_t hw);
/* Back to high watermark = log end (this broker alone). */
void partition_hw_unmanage(struct partition *p);
bool partition_hw_managed(const struct partition *p);
/* Replication's per-partition state, opaque here. */
void *partition_repl(const struct partition *p);
void partition_repl_set(struct partition *p, void *repl);
const struct kuuid *partition_topic_id(const struct partition *p);
int32_t partition_index(const struct partition *p);
const char *partition_dir(const struct partition *p);
struct partition_set *partition_set_of(const struct partition *p);

/* ---- the set ---- */

struct partition_set {
	struct shard *sh;
	uint32_t shard_count;
	struct plog_config plog_cfg;     /* built from the broker config */
	const char *log_dirs;            /* normalised list (config) */
	int64_t retention_check_ms;
	const struct config *config;     /* topic defaults (NULL: Kafka's); set after init */
	bool delete_gone;                /* delete the files of topics gone from the catalog
					  * (the broker: DeleteTopics); false keeps them */
	const struct partition_hooks *hooks; /* replication (cluster mode); NULL: none */
	bool cluster;                    /* zookeeper.connect set: hold only the partitions the
					  * controller made this broker a replica of */
	int32_t node_id;                 /* this broker (cluster mode) */
	void *follower;                  /* replication/follower.c's per-shard state, opaque */
	struct partition **buckets;      /* hash chains */
	uint32_t bucket_count;           /* power of two */
	uint32_t count;
	struct timer retention;
	bool closed;
};

uint32_t partition_owner(const struct kuuid *topic_id, int32_t index, uint32_t shard_count);

/*
 * Prepares an empty set for shard `sh`. `log_dirs` is borrowed (config
 * lifetime). SL_OK or SL_ENOMEM. Runs on: sh.
 */
enum sl_err partition_set_init(struct partition_set *ps, struct shard *sh,
			       const struct plog_config *cfg, const char *log_dirs,
			       int64_t retention_check_ms);

/*
 * Opens the partitions of `snap` this shard owns and does not have yet;
 * closes the ones whose topic is gone. Opening runs recovery (synchronous
 * disk work). A partition that fails to open is kept FAILED (logged).
 * Returns SL_OK or SL_ENOMEM.
 */
enum sl_err partition_set_sync(struct partition_set *ps, const struct catalog_snap *snap);

/* The partition, or NULL when this shard does not own/hold it. */
struct partition *partition_set_find(const struct partition_set *ps, const struct kuuid *id,
				     int32_t index);

/*
 * Closes everything: parked appends fail (NOT_LEADER_OR_FOLLOWER),
 * waiters wake, logs close cleanly (clean-shutdown marker). Later lookups
 * find nothing. May drive the ring (plog_close). Idempotent.
 */
void partition_set_close(struct partition_set *ps);

#endif
