/*
 * topic_admin.h — the broker side of DeleteTopics and CreatePartitions in
 * cluster mode (Kafka's ZK-mode AdminZkClient), wired by main as
 * broker->zk_topics_delete / zk_partitions_create (net/broker.h).
 *
 *   DeleteTopics: shard 0 creates /admin/delete_topics/<t> for every topic
 *       the requesting shard resolved (an existing node is fine); the
 *       controller (ctrl_delete.h) does the deletion. The requesting shard
 *       then waits, bounded by the request's timeout, until its snapshot no
 *       longer holds the topic id (Kafka's DelayedDeleteTopics): NONE, else
 *       REQUEST_TIMED_OUT. A timeout <= 0 answers once the node exists.
 *   CreatePartitions: shard 0 reads /brokers/topics/<t>; the new total
 *       must exceed ZooKeeper's count (INVALID_PARTITIONS); manual rows
 *       must number total - current, name live brokers once each and have
 *       partition 0's replication factor (INVALID_REPLICA_ASSIGNMENT);
 *       without rows ctrl_assign_more assigns over the live brokers of
 *       shard 0's snapshot. ValidateOnly stops here; else the znode is
 *       rewritten with its read version (a concurrent change re-reads, up
 *       to TA_WRITE_TRIES times). The answer comes once written, as in
 *       Kafka; the controller's data watch on the topic starts the new
 *       partitions.
 *
 * Memory: one struct ta_op per request on the requesting shard (mem.h);
 * per-topic ZooKeeper contexts on shard 0 (malloc). The request's
 * broker_zk_admin is written by shard 0 only until it replies.
 *
 * Runs on: the requesting shard (entry points, waiting) and shard 0 (ZooKeeper).
 */
#ifndef SL_COORD_TOPIC_ADMIN_H
#define SL_COORD_TOPIC_ADMIN_H

#include "sl.h"

struct broker_shard;
struct broker_zk_admin;

#define TA_WRITE_TRIES 5u
#define TA_POLL_MS 20

/* broker->zk_topics_delete. Runs on: any shard. */
enum sl_err topic_admin_delete(struct broker_shard *bs, struct broker_zk_admin *a);
/* broker->zk_partitions_create. Runs on: any shard. */
enum sl_err topic_admin_partitions(struct broker_shard *bs, struct broker_zk_admin *a);

#endif
