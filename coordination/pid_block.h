/*
 * pid_block.h — producer ids in cluster mode: blocks of PID_BLOCK_SIZE ids
 * reserved in ZooKeeper's /latest_producer_id_block, as Kafka's ZK-mode
 * ZkProducerIdManager does, so no two brokers ever hand out the same id.
 *
 * The znode (Kafka's ProducerIdBlockZNode, version 1; created empty with
 * the other persistent paths, cluster.h step PATHS):
 *
 *   {"version":1,"broker":N,"block_start":"S","block_end":"E"}
 *
 * block_start / block_end are decimal strings (Java Long.toString), E is
 * inclusive: the block holds S..E. An empty node means no block was ever
 * taken; the first block is 0..PID_BLOCK_SIZE-1.
 *
 * Reserving a block (shard 0, through the cluster's ZooKeeper session):
 *   get the node (data + version) -> the next block starts at E+1 ->
 *   set it with the version read (conditional). A version conflict (another
 *   broker won) re-reads, up to PID_ROUND_TRIES times. Only after the set
 *   succeeded are ids of the block handed out, so a block is owned by
 *   exactly one broker. A restarted broker takes a new block (the unused
 *   rest of its old one is skipped, never reused).
 *
 * Requests that find the current block used up wait (deferred xmsg, at most
 * PID_WAIT_MAX) for the round; when it fails (ZooKeeper unreachable,
 * stopping, malformed node) they get COORDINATOR_NOT_AVAILABLE, which
 * clients retry. The epoch is always 0 (an idempotent producer gets a
 * fresh id every time, api_init_producer_id.c).
 *
 * Invariants:
 *   1. next <= end + 1; ids next..end belong to this broker's latest block
 *      (written to ZooKeeper before the first of them was returned).
 *   2. count > 0 (requests waiting) implies busy (a round in flight).
 *   3. Every deferred request is answered exactly once: by the round's
 *      success, its failure, or pid_alloc_stop.
 *
 * Runs on: shard 0 (pid_alloc_*); the codec anywhere.
 */
#ifndef SL_COORD_PID_BLOCK_H
#define SL_COORD_PID_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl.h"
#include "xmsg.h"

#define PID_BLOCK_SIZE 1000
#define PID_BLOCK_PATH "/latest_producer_id_block"
#define PID_BLOCK_JSON_MAX 160
#define PID_WAIT_MAX 1024u
#define PID_ROUND_TRIES 32u

struct cluster;
struct shard;

/* One block: ids start..end (inclusive), owned by broker. */
struct pid_block {
	int32_t broker;
	int64_t start;
	int64_t end;
};

/* Kafka's JSON into buf (no NUL), *len its length. SL_ERANGE: cap short. */
enum sl_err pid_block_encode(const struct pid_block *pb, char *buf, size_t cap, size_t *len);

/*
 * Parses the znode's data. len 0 (or data NULL): SL_ENOTFOUND (no block
 * yet). SL_ECORRUPT with *reason: not JSON, broker not an int32,
 * block_start / block_end not decimal strings, start < 0 or end < start.
 */
enum sl_err pid_block_decode(const char *data, size_t len, struct pid_block *out,
			     const char **reason);

/*
 * The block `broker` takes after `prev` (NULL: none yet): start = prev->end
 * + 1 (0), PID_BLOCK_SIZE ids. SL_ERANGE when that would pass INT64_MAX.
 */
enum sl_err pid_block_next(const struct pid_block *prev, int32_t broker, struct pid_block *out);

/* broker->zk_producer_id (broker.h). Runs on: shard 0. */
enum xmsg_fn_result pid_alloc_on_shard0(struct shard *sh, struct xmsg *m);

/* Shard 0 stopping (cluster_shard_stop, before the session closes): the
 * waiting requests get COORDINATOR_NOT_AVAILABLE. NULL-safe. */
void pid_alloc_stop(struct cluster *cl);

/* Main, cluster_destroy. NULL-safe. */
void pid_alloc_free(struct cluster *cl);

#endif
