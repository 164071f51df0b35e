/*
 * producer_state.h — idempotent-producer state of one partition: per
 * producer id its epoch and the metadata of its last batches, so that a
 * retried batch is answered with its original offsets instead of being
 * written twice, a gap in sequence numbers is refused, and a fenced epoch
 * is refused. Kafka's ProducerStateManager / ProducerAppendInfo, rebuilt
 * for one owner shard and an append pipeline with writes in flight.
 *
 * Runs on: the partition's owner shard, like its plog. No locks.
 *
 * Rules (Kafka 3.x, checked in ProducerAppendInfo.checkProducerEpoch /
 * checkSequence and ProducerStateEntry.findDuplicateBatch), for a batch with
 * producerId >= 0 (producerId -1 skips everything):
 *   1. baseSequence < 0 (or producerEpoch < 0): INVALID_RECORD.
 *   2. same epoch and (first seq, last seq) equal to one of the producer's
 *      last PRODUCER_STATE_BATCHES_RETAINED batches: DUPLICATE; answer with
 *      that batch's offsets, write nothing.
 *   3. epoch < current epoch: INVALID_PRODUCER_EPOCH.
 *   4. epoch > current epoch: baseSequence must be 0 (the batches of the old
 *      epoch are forgotten once it is appended), else OUT_OF_ORDER.
 *   5. same epoch: baseSequence must follow the newest batch's last sequence
 *      (last + 1; after INT32_MAX comes 0), else OUT_OF_ORDER.
 *   6. unknown producer id: any sequence is accepted (Kafka >= 2.5, KIP-360:
 *      the state may have been expired or evicted, so the broker no longer
 *      answers UNKNOWN_PRODUCER_ID; it takes the batch and starts tracking).
 * The last sequence of a batch is baseSequence + lastOffsetDelta, wrapping
 * from INT32_MAX to 0 (Kafka's DefaultRecordBatch.incrementSequence).
 *
 * Pipeline. plog_append assigns offsets at submit and completes later, and
 * a producer may have several batches in flight (librdkafka and the Java
 * client send up to 5). So a batch goes through two steps:
 *   producer_state_check_and_reserve   before plog_append: validates against
 *       the completed and the in-flight ("pending") batches and, when OK,
 *       records the batch as pending with the offsets plog_append is about
 *       to assign (plog_next_offset: both run on the owner shard, nothing
 *       appends in between);
 *   producer_state_complete            in the append's done, res == SL_OK;
 *   producer_state_abort               if plog_append refused the batch, or
 *       in done with res != SL_OK (the log has FAILED then).
 * A retry of a batch still in flight is a DUPLICATE with `pending` = 1: its
 * offsets are known but not yet visible, so answer only once the original
 * has completed (plog_flush_wait calls back when it is durable, or with
 * SL_EIO if the log failed first).
 *
 * Usage, on the owner shard (one batch per append, as Kafka requires of a
 * Produce partition with magic 2):
 *
 *   struct producer_batch pb;
 *   producer_batch_from_header(&pb, &h);         (h after LogAppendTime)
 *   switch (producer_state_check_and_reserve(ps, &pb, plog_next_offset(log),
 *                                            &req->rsv)) {
 *   case PRODUCER_CHECK_OK:
 *           break;
 *   case PRODUCER_CHECK_DUPLICATE:              (no write)
 *           reply(req, NONE, req->rsv.first_offset)  — once the original
 *           completed if req->rsv.pending;
 *           return;
 *   case PRODUCER_CHECK_EAGAIN:                 (as plog_append SL_EAGAIN)
 *           park(req); return;
 *   default:                                    (map, reply the error)
 *           reply(req, kafka_code(r), -1); return;
 *   }
 *   if (plog_append(log, &req->a, now_ms) != SL_OK) {
 *           producer_state_abort(ps, &req->rsv);
 *           ...
 *   }
 *   SL_ASSERT(req->a.base_offset == req->rsv.first_offset);
 *
 *   append done:
 *   if (a->res == SL_OK) producer_state_complete(ps, &req->rsv);
 *   else producer_state_abort(ps, &req->rsv);
 *
 * complete and abort are no-ops for a non-idempotent batch (rsv.producer_id
 * is -1), so the caller needs no branch of its own.
 *
 * Invariants (producer_state_invariants_ok, checked at every change in
 * debug builds):
 *   1. Each live producer holds 1..PRODUCER_STATE_SLOTS batches in append
 *      (offset) order; its current epoch is its newest batch's epoch;
 *      epochs never decrease from older to newer batches.
 *   2. Pending batches are the newest `pending` ones, at most
 *      PRODUCER_STATE_PENDING_MAX: plog completes appends in order, so
 *      complete always names the oldest pending batch of its producer.
 *   3. Checks see only the "window": the newest BATCHES_RETAINED batches of
 *      the current epoch, pending or not. Older slots exist only so that an
 *      abort can restore exactly what a reservation displaced (an epoch bump
 *      hides, but keeps, the old epoch's batches until it completes).
 *   4. At most producers_max producers. A new one past the bound evicts the
 *      idle producer (no pending batch) with the oldest last timestamp;
 *      producers with pending batches are never evicted or expired.
 *
 * Timestamps: a batch's timestamp is its maxTimestamp (as Kafka records it:
 * with CreateTime that is the client's clock). A producer's last timestamp
 * is its newest batch's; it orders eviction, and producer_state_expire
 * removes idle producers whose last timestamp is expiration_ms or more
 * before now_ms (Kafka's producer.id.expiration.ms).
 *
 * Memory: an open-addressing index (linear probing, backward-shift delete,
 * no tombstones) of uint32 positions into a dense producer array; both grow
 * by doubling up to the bound, and only when a producer is added (a lookup
 * never allocates). If growing fails, the table acts as full and evicts.
 *
 * Snapshots: `<dir>/<20-digit offset>.snapshot` holds the completed state of
 * every batch below `offset` (binary, big-endian, CRC-32C; format in
 * producer_state.c). Written atomically (tmp, fsync, rename, fsync dir);
 * the two newest are kept. Start-up: producer_state_rebuild deletes
 * snapshots above the log end offset, loads the newest valid one at or
 * below it (a corrupt one is deleted and the next tried, down to a full
 * scan) and replays the batch headers after it with plog_scan.
 *
 * States: producer_state_create -> empty; producer_state_rebuild -> loaded
 * (also after plog_truncate_to); check_and_reserve / complete / abort /
 * expire while serving; producer_state_reset after plog_truncate_fully;
 * producer_state_destroy (no pending batch may remain).
 */
#ifndef SL_IO_PRODUCER_STATE_H
#define SL_IO_PRODUCER_STATE_H

#include <stdint.h>

#include "sl.h"

struct batch_header;
struct plog;

/* Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN. */
#define PRODUCER_STATE_BATCHES_RETAINED 5
/* In-flight batches per producer (the clients' max.in.flight with idempotence). */
#define PRODUCER_STATE_PENDING_MAX 5
/* Batch slots per producer: the window plus room to undo a reservation. */
#define PRODUCER_STATE_SLOTS 8
/* Default bound on producers per partition. */
#define PRODUCER_STATE_PRODUCERS_DEFAULT 4096
/* Hard upper bound for producers_max (also bounds a snapshot's size). */
#define PRODUCER_STATE_PRODUCERS_LIMIT (1u << 20)
/* Kafka's producer.id.expiration.ms default: one day. */
#define PRODUCER_STATE_EXPIRATION_MS_DEFAULT (24LL * 60 * 60 * 1000)
/* Kafka's producer.id.expiration.check.interval.ms default: ten minutes. */
#define PRODUCER_STATE_EXPIRE_INTERVAL_MS_DEFAULT (10LL * 60 * 1000)
/* Snapshot files kept in a partition directory. */
#define PRODUCER_STATE_SNAPSHOTS_KEPT 2
#define PRODUCER_STATE_SNAPSHOT_EXT ".snapshot"

_Static_assert(PRODUCER_STATE_SLOTS > PRODUCER_STATE_BATCHES_RETAINED, "undo room");
_Static_assert(PRODUCER_STATE_PENDING_MAX < PRODUCER_STATE_SLOTS, "a completed slot stays");

struct producer_state_config {
	uint32_t producers_max;   /* 1 .. PRODUCER_STATE_PRODUCERS_LIMIT */
	int64_t expiration_ms;    /* producer.id.expiration.ms, >= 1 */
	int shard_id;             /* for log lines only */
};

void producer_state_config_default(struct producer_state_config *cfg);

struct producer_state;

/* The header fields the checks need, from a batch about to be appended. */
struct producer_batch {
	int64_t producer_id;      /* producerId; < 0: not idempotent */
	int16_t producer_epoch;   /* producerEpoch */
	int32_t base_sequence;    /* baseSequence */
	int32_t last_offset_delta;/* lastOffsetDelta, >= 0 */
	int64_t max_timestamp;    /* maxTimestamp (after LogAppendTime if any) */
};

void producer_batch_from_header(struct producer_batch *b, const struct batch_header *h);

enum producer_check {
	PRODUCER_CHECK_OK = 0,          /* append it (reserved when idempotent) */
	PRODUCER_CHECK_DUPLICATE,       /* answer NONE with rsv's offsets; no write */
	PRODUCER_CHECK_OUT_OF_ORDER,    /* OUT_OF_ORDER_SEQUENCE_NUMBER (45) */
	PRODUCER_CHECK_INVALID_EPOCH,   /* INVALID_PRODUCER_EPOCH (47) */
	PRODUCER_CHECK_INVALID_RECORD,  /* INVALID_RECORD (87): negative sequence/epoch */
	PRODUCER_CHECK_EAGAIN,          /* PENDING_MAX in flight for this producer, or
					   the table is full of busy producers: retry
					   after a completion, like plog_append SL_EAGAIN */
};

const char *producer_check_str(enum producer_check c);

/*
 * Kept by the caller from check_and_reserve to complete/abort (embed it in
 * the request). For DUPLICATE it describes the original batch instead;
 * nothing is reserved then (producer_id is -1, so a stray complete/abort is
 * a no-op).
 */
struct producer_reservation {
	int64_t producer_id;      /* -1: nothing reserved */
	int64_t first_offset;     /* OK: offsets reserved; DUPLICATE: the original's */
	int64_t last_offset;
	int64_t timestamp;        /* DUPLICATE: the original's maxTimestamp */
	int pending;              /* DUPLICATE: 1 while the original is in flight */
};

/* Counters for tests and metrics. */
struct producer_state_stats {
	uint64_t reserved;
	uint64_t completed;
	uint64_t aborted;
	uint64_t duplicates;
	uint64_t out_of_order;
	uint64_t fenced;
	uint64_t evicted;          /* pushed out by the producers_max bound */
	uint64_t expired;
	/* from the last producer_state_rebuild */
	int64_t rebuild_snapshot_offset;   /* snapshot loaded, -1 if none */
	uint32_t rebuild_snapshots_corrupt;
	uint32_t rebuild_snapshots_deleted; /* above the log end, or beyond the kept ones */
	uint64_t rebuild_batches_replayed;
};

/* What producer_state_lookup reports about one producer. */
struct producer_info {
	int16_t epoch;            /* current epoch (newest batch's) */
	int32_t last_sequence;    /* newest batch's last sequence */
	int64_t last_offset;      /* newest batch's last offset */
	int64_t last_timestamp;
	uint32_t window_count;    /* batches a retry is checked against */
	uint32_t pending;
};

/* SL_OK, SL_EINVAL (config out of range), SL_ENOMEM. */
enum sl_err producer_state_create(struct producer_state **out,
				  const struct producer_state_config *cfg);

/* Frees everything. No batch may be pending (asserted). */
void producer_state_destroy(struct producer_state *ps);

/*
 * Checks batch `b` against the rules above; when it may be appended and is
 * idempotent, reserves it as pending at [base_offset, base_offset +
 * last_offset_delta] (base_offset = plog_next_offset, read just before
 * plog_append). Fills *rsv in every case (producer_id -1 when nothing was
 * reserved). May evict an idle producer to make room for a new one.
 */
enum producer_check producer_state_check_and_reserve(struct producer_state *ps,
						     const struct producer_batch *b,
						     int64_t base_offset,
						     struct producer_reservation *rsv);

/*
 * The reserved batch's append completed (res SL_OK): it becomes part of the
 * completed state; if it started a new epoch, the old epoch's batches are
 * dropped. Must be the oldest pending batch of its producer (asserted: plog
 * completes in append order). No-op when rsv->producer_id < 0.
 */
void producer_state_complete(struct producer_state *ps, const struct producer_reservation *rsv);

/*
 * The reserved batch will never be visible: plog_append refused it, or its
 * write failed. Removes it and every newer pending batch of its producer
 * (after a failed write plog fails all later appends too; aborting one
 * already removed that way is a no-op). A producer left without batches is
 * forgotten, one whose epoch bump is undone returns to its old epoch.
 * No-op when rsv->producer_id < 0.
 */
void producer_state_abort(struct producer_state *ps, const struct producer_reservation *rsv);

/*
 * Removes idle producers whose last timestamp is at least expiration_ms
 * before now_ms. Call every PRODUCER_STATE_EXPIRE_INTERVAL_MS_DEFAULT or so.
 * O(producers). Returns how many were removed.
 */
uint32_t producer_state_expire(struct producer_state *ps, int64_t now_ms);

/*
 * Rebuilds the state from `log` (opened on directory `dir`): clears the
 * table, deletes snapshots above the log end offset, loads the newest valid
 * snapshot at or below it (corrupt ones are logged and deleted), replays
 * every idempotent, non-control batch header after the snapshot (or from
 * the log start offset) with plog_scan, then expires with now_ms. Call after
 * plog_open and after plog_truncate_to, with no batch pending (asserted).
 * Synchronous reads (pread through plog_scan), start-up only.
 * SL_OK; SL_EIO / SL_ECORRUPT from the scan (state left empty); SL_ENOMEM.
 */
enum sl_err producer_state_rebuild(struct producer_state *ps, struct plog *log, const char *dir,
				   int64_t now_ms);

/*
 * Writes `<dir>/<offset>.snapshot` with the completed state, where offset =
 * end_offset (the log end offset) lowered to the first pending batch if one
 * is in flight below it, and deletes older snapshots beyond the two newest.
 * Skipped (SL_OK) when a snapshot at that offset was already written. At a
 * clean shutdown: after the last append completed, before plog_close, with
 * end_offset = plog_end_offset. Synchronous (fsyncs): keep it off the hot
 * path (shutdown, segment roll, a timer). SL_OK; SL_EIO (logged; the old
 * snapshots stay); SL_ENOMEM.
 */
enum sl_err producer_state_snapshot_write(struct producer_state *ps, const char *dir,
					  int64_t end_offset);

/*
 * Forgets every producer and deletes every snapshot in `dir`: call after
 * plog_truncate_fully (no batch may be pending). SL_OK or SL_EIO.
 */
enum sl_err producer_state_reset(struct producer_state *ps, const char *dir);

/* SL_OK with *out filled, or SL_ENOTFOUND. */
enum sl_err producer_state_lookup(const struct producer_state *ps, int64_t producer_id,
				  struct producer_info *out);
uint32_t producer_state_count(const struct producer_state *ps);
const struct producer_state_stats *producer_state_stats(const struct producer_state *ps);

/* 1 when every invariant holds (O(producers); used by tests and debug builds). */
int producer_state_invariants_ok(const struct producer_state *ps);

#endif
