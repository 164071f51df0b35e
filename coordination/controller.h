/*
 * controller.h — the ZooKeeper-mode controller (Kafka's KafkaController),
 * on shard 0 of the broker whose session created /controller.
 *
 * One loop, the "sync", serves start-up and every change:
 *   EPOCH    (start-up only) bumps /controller_epoch with a conditional
 *            set (created as "0" when absent, as Kafka does): its new
 *            zkVersion fences every later write of this controller;
 *   BROKERS  /brokers/ids children (watched) and each new broker's data;
 *   TOPICS   /brokers/topics children (watched), each new topic's
 *            assignment and partition states;
 *   WRITE    partitions without a state get ctrl_pstate_init; partitions
 *            whose leader or ISR names a dead broker get ctrl_broker_failed;
 *            partitions without a leader get an offline election (a broker
 *            that came back in the ISR leads again). Each write is a multi
 *            (check /controller_epoch version + create/set the state with
 *            its expected version); a failed epoch check means deposed
 *            (stop, re-elect), a stale state is re-read and the sync runs
 *            again (bounded);
 *   SEND     LeaderAndIsr (v7) to every live replica of a changed
 *            partition, full (Type 2) to brokers new since the last sync,
 *            and UpdateMetadata (v8, every live broker and every partition)
 *            to every live broker, split into requests of at most
 *            CONTROLLER_PARTS_PER_REQUEST partitions.
 * A watch firing during a sync sets `resync`: the loop runs once more.
 * A request that fails (connection, timeout) marks its broker for a full
 * resend, retried by a timer.
 *
 * Deposed (session expired, /controller changed, epoch check failed):
 * controller_stop closes every client at once; the object is freed when
 * its last ZooKeeper operation completed.
 *
 * Runs on: shard 0.
 */
#ifndef SL_COORD_CONTROLLER_H
#define SL_COORD_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka_codec.h"
#include "sl.h"

struct cluster;

#define CONTROLLER_PARTS_PER_REQUEST 2000u
#define CONTROLLER_SYNC_RETRIES 16u

/* This broker won /controller: start acting (cl->ctl set). */
void controller_start(struct cluster *cl);
/* Stop acting at once (cl->ctl cleared). */
void controller_stop(struct cluster *cl);
/* The session reconnected (same session): re-run the sync. */
void controller_reconnected(struct cluster *cl);

typedef void controller_ap_done_fn(void *arg);

/*
 * AlterPartition from a leader: validates every partition with
 * ctrl_alter_partition, writes accepted ones conditionally and fills
 * `out` (Topics/Partitions preallocated by the caller to mirror `in`;
 * the caller's memory, written on shard 0 until done). Returns false when
 * this broker is not the controller (nothing ran); else `done(arg)` runs
 * exactly once on shard 0, after which an UpdateMetadata goes to every
 * broker.
 */
bool controller_alter_partition(struct cluster *cl, const struct AlterPartitionRequest *in,
				int16_t version, struct AlterPartitionResponse *out,
				controller_ap_done_fn *done, void *arg);

/* Kafka error codes of ControlledShutdown not in net/kerr.h. */
#define CONTROLLER_KERR_BROKER_NOT_AVAILABLE 8
#define CONTROLLER_KERR_STALE_BROKER_EPOCH 77
#define CONTROLLER_TOPIC_MAX 255

/* One partition the shutting-down broker still leads. */
struct controller_cs_part {
	int32_t partition;
	char topic[CONTROLLER_TOPIC_MAX + 1];
};

/* The answer to a ControlledShutdown (filled on shard 0 before done). */
struct controller_cs_result {
	int16_t error;                     /* Kafka error code */
	uint32_t count;
	struct controller_cs_part *parts;  /* malloc'd (count entries); the caller frees */
};

typedef void controller_cs_done_fn(void *arg);

/*
 * ControlledShutdown of broker `broker_id` (Kafka's doControlledShutdown):
 * unknown or unregistered broker -> BROKER_NOT_AVAILABLE; `broker_epoch`
 * (-1: not checked) older than the czxid of its registration ->
 * STALE_BROKER_EPOCH. Else the broker is marked shutting down (until its
 * registration goes away or is replaced: no election picks it, no ISR
 * takes it back), ctrl_controlled_shutdown runs over every partition it
 * replicates, changed states are written conditionally (epoch-checked
 * multis), LeaderAndIsr goes to the replicas of the changed partitions
 * and UpdateMetadata to every broker; `out` lists the replicated
 * partitions it still leads. Returns false when this broker is not the
 * controller (nothing ran); else done(arg) runs exactly once on shard 0
 * (maybe before this returns). Runs on: shard 0.
 */
bool controller_controlled_shutdown(struct cluster *cl, int32_t broker_id, int64_t broker_epoch,
				    struct controller_cs_result *out, controller_cs_done_fn *done,
				    void *arg);

#endif
