/*
 * producer_ids.h — producer id allocation for InitProducerId: ids that are
 * never handed out twice, across restarts and crashes included.
 *
 * Runs on: shard 0 (one allocator per process, for all partitions). No
 * locks: other shards ask shard 0 through a cross-shard message.
 *
 * Ids are reserved in blocks of `block_size`. `<log dir>/producer_id_block`
 * (checkpoint.h text format, written atomically: tmp, fsync, rename, fsync
 * dir) holds one key:
 *
 *   producer_id_block_end N     no id below N will ever be handed out again
 *
 * Invariants:
 *   1. next_id <= block_end, and block_end is durable in the file before any
 *      id below it is returned.
 *   2. Allocating inside the current block is a counter increment (no I/O);
 *      crossing the boundary first persists block_end + block_size, then
 *      hands out ids from the new block.
 *   3. After a restart (clean or not) allocation starts at the persisted
 *      block_end: the unused rest of the old block is skipped, never reused.
 * The epoch of a newly allocated id is always PRODUCER_IDS_EPOCH_INITIAL: an
 * idempotent producer without transactional.id gets a fresh id each time
 * (Kafka's coordinator does the same for a null transactional id).
 *
 * File states: absent -> the allocator starts fresh at id 0 (first start of
 * a log dir; logged). Present but malformed, without the key, or negative ->
 * producer_ids_open fails with SL_ECORRUPT and a clear log line: starting
 * over at 0 could hand out ids that partitions still remember, so an
 * operator must decide (restore the file, or delete it knowingly).
 *
 * States: producer_ids_open -> ready; producer_ids_next (persisting at block
 * boundaries; a failed persist returns SL_EIO and hands out nothing, the
 * next call retries); producer_ids_close.
 */
#ifndef SL_IO_PRODUCER_IDS_H
#define SL_IO_PRODUCER_IDS_H

#include <stdint.h>

#include "sl.h"

#define PRODUCER_IDS_FILE_NAME "producer_id_block"
#define PRODUCER_IDS_BLOCK_DEFAULT 1000
#define PRODUCER_IDS_BLOCK_MAX (1LL << 30)
#define PRODUCER_IDS_EPOCH_INITIAL 0

struct producer_ids;

/*
 * Opens the allocator for `log_dir` (must exist), reading the block file.
 * block_size: 1 .. PRODUCER_IDS_BLOCK_MAX. shard_id for log lines.
 * SL_OK; SL_EINVAL (block size); SL_EIO (cannot open the directory or read
 * the file); SL_ECORRUPT (see above); SL_ENOMEM.
 */
enum sl_err producer_ids_open(struct producer_ids **out, const char *log_dir,
			      int64_t block_size, int shard_id);

/*
 * Hands out the next producer id and its epoch (always 0). Persists the
 * next block first when the current one is used up.
 * SL_OK; SL_EIO (the block file could not be written, logged: no id is
 * returned, a later call tries again); SL_ERANGE (ids exhausted near
 * INT64_MAX).
 */
enum sl_err producer_ids_next(struct producer_ids *pi, int64_t *producer_id, int16_t *epoch);

/* Frees the allocator. Nothing to write: the file already covers every id. */
void producer_ids_close(struct producer_ids *pi);

/* The next id to hand out and the durable end of the current block. */
int64_t producer_ids_next_id(const struct producer_ids *pi);
int64_t producer_ids_block_end(const struct producer_ids *pi);
/* How many blocks this instance persisted. */
uint64_t producer_ids_blocks_persisted(const struct producer_ids *pi);

#endif
