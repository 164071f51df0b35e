/*
 * cluster.h — a broker's presence in a ZooKeeper-mode cluster
 * (zookeeper.connect set). Shard 0 owns one ZooKeeper session (zk.h) and,
 * on every new session, in this order:
 *
 *   1. PATHS     creates Kafka's persistent paths (and the chroot of the
 *                connect string, which is applied by prefixing every path:
 *                the session itself is opened on the root, as Kafka
 *                creates its chroot);
 *   2. CLUSTERID reads /cluster/id, creating it with the catalog's id when
 *                absent; a catalog with topics but another id refuses to
 *                start (Kafka's InconsistentClusterIdException); a catalog
 *                without topics adopts ZooKeeper's id;
 *   3. REGISTER  creates the ephemeral /brokers/ids/<broker.id> (Kafka's
 *                JSON: PLAINTEXT endpoint = advertised host/port, rack) and
 *                reads it back: its czxid is the broker epoch (broker_epoch,
 *                -1 until then; LeaderAndIsr, UpdateMetadata and StopReplica
 *                naming an older epoch, or any epoch while it is -1, answer
 *                STALE_BROKER_EPOCH: they were meant for a previous
 *                incarnation of this broker.id). A
 *                node owned by another session is retried until the
 *                session timeout + 1 s has passed (a killed broker's node
 *                lingers that long), then the broker.id is a duplicate:
 *                logged, and the process stops with exit code 1;
 *   4. ELECT     exists-watch on /controller; absent -> create it; won ->
 *                controller_start (controller.h). The watch re-runs ELECT.
 *
 * Until the first UpdateMetadata is applied the catalog snapshot is not a
 * cluster snapshot: Metadata answers with no brokers (clients retry), no
 * partition is opened (partition_set.cluster), so no data is served.
 *
 * A session that expires (ZK_EVENT_EXPIRED) stops the controller at once;
 * SESSION_NEW runs the steps again. A step that fails with connection
 * loss marks the bootstrap stalled; CONNECTED re-runs it (every step is
 * idempotent).
 *
 * Topic creation in cluster mode (CreateTopics, auto-creation) goes
 * through broker->zk_topics_create = cluster_topics_create: shard 0
 * assigns replicas over the live brokers of its snapshot (ctrl_assign),
 * writes /config/topics/<t> and /brokers/topics/<t> (v3, new topic id) in
 * one multi, and the requesting shard answers once its own snapshot shows
 * every partition with a leader, or after the timeout (REQUEST_TIMED_OUT).
 *
 * Controlled shutdown (Kafka's KafkaServer.controlledShutdown), broker
 * side: on SIGTERM main calls cluster_controlled_shutdown before stopping
 * the shards. It wakes shard 0 through an eventfd (a read armed on shard
 * 0's ring) and waits, bounded, on a second eventfd while every loop keeps
 * running. Shard 0, when controlled.shutdown.enable and registered: reads
 * its own registration's czxid (the broker epoch; -1 when it cannot),
 * then per attempt reads /controller and the controller's registration
 * and sends ControlledShutdown v3 through a kclient; an error or
 * partitions still led is retried after controlled.shutdown.retry.backoff.ms
 * up to controlled.shutdown.max.retries attempts in all; then (success or
 * not) it signals main, which stops the shards.
 *
 * Runs on: main (create/destroy, cluster_controlled_shutdown), shard 0
 * (everything else) except cluster_topics_create (any shard).
 */
#ifndef SL_COORD_CLUSTER_H
#define SL_COORD_CLUSTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ring.h"
#include "sl.h"
#include "timer.h"

struct broker;
struct broker_shard;
struct broker_create;
struct controller;
struct kclient;
struct zk;

#define CLUSTER_ROOT_MAX 256
#define CLUSTER_PATH_MAX 1024

enum cluster_step {
	CLUSTER_IDLE = 0,
	CLUSTER_PATHS,
	CLUSTER_CLUSTERID,
	CLUSTER_REGISTER,
	CLUSTER_ELECT,
	CLUSTER_UP,          /* registered; election watch set */
};

/* Controlled shutdown, broker side (see the file comment). */
struct cluster_cs {
	int req_fd;                  /* eventfd: main asks; -1 when closed */
	int done_fd;                 /* eventfd: shard 0 answers; -1 when closed */
	uint64_t req_buf;            /* the kernel's while the read is armed */
	struct ring_op req_op;
	bool armed;                  /* the read on req_fd is in flight */
	bool running;                /* attempts under way */
	bool succeeded;
	uint32_t attempts;
	int64_t broker_epoch;        /* czxid of our registration, or -1 */
	int64_t start_ns;
	struct kclient *kc;          /* to the current controller */
	struct timer backoff;
};

struct cluster {
	struct broker *b;
	struct broker_shard *bs0;           /* shard 0, once started */
	struct zk *zk;
	char connect[1024];                 /* hosts only (no chroot) */
	char root[CLUSTER_ROOT_MAX];        /* chroot or "" */
	enum cluster_step step;
	bool stalled;                       /* a step failed on connection loss */
	bool stopping;
	uint32_t pending;                   /* PATHS creates outstanding */
	int64_t register_deadline_ns;       /* REGISTER retries until then */
	int64_t broker_epoch;               /* czxid of this session's registration; -1 until
					     * read (control requests naming any epoch are
					     * stale until then: ctrl_broker_epoch_stale) */
	struct timer retry;                 /* REGISTER retry */
	int32_t controller_id;              /* from /controller, -1 unknown */
	struct controller *ctl;             /* non-NULL while this broker is the controller */
	uint8_t (*cfg_loaded)[16];          /* topic ids whose configs were read, sorted */
	uint32_t cfg_count, cfg_cap;
	struct pid_alloc *pids;             /* InitProducerId blocks (pid_block.h), lazily */
	atomic_bool failed;                 /* fatal: main exits 1 */
	atomic_bool ready;                  /* first UpdateMetadata applied */
	struct cluster_cs cs;               /* controlled shutdown (broker side) */
};

/* Main, before the shards: the cluster object (b->cluster, b->zk_topics_create). */
enum sl_err cluster_create(struct cluster **out, struct broker *b);
/* Main, after shard_group_join. NULL is fine. */
void cluster_destroy(struct cluster *cl);

/* Shard 0, after broker_shard_start: opens the session. */
enum sl_err cluster_shard_start(struct broker_shard *bs);
/* Shard 0, first in its stop: the controller stops, the session closes. */
void cluster_shard_stop(struct broker_shard *bs);

/*
 * Main thread, on SIGTERM/SIGINT, before shard_group_stop: controlled
 * shutdown (file comment). Returns once shard 0 is done or after a bound
 * derived from the retries, the backoff and the request timeout; true
 * when the controller reported no partition left on this broker. No-op
 * (false) for NULL, a failed cluster or shards that never started.
 */
bool cluster_controlled_shutdown(struct cluster *cl);

/* True when a fatal condition (duplicate broker.id, cluster id) stopped the broker. */
bool cluster_failed(const struct cluster *cl);

/* Stops the process with exit code 1 after logging `why`. Runs on: shard 0. */
void cluster_fatal(struct cluster *cl, const char *why);

/* "<root><rel>" into buf (CLUSTER_PATH_MAX). */
void cluster_path(const struct cluster *cl, char *buf, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Adds UpdateMetadata and AlterPartition (and ControlledShutdown) to the
 * dispatch table. main.c, cluster mode, before the shards start. */
void cluster_api_register(void);

/*
 * A topic (id) this process has not seen yet (UpdateMetadata): reads
 * /config/topics/<t> once and applies its overrides to the catalog
 * (published), so every broker has the topic configs the creator wrote.
 * Runs on: shard 0.
 */
void cluster_topic_config_load(struct cluster *cl, const char *name, size_t len,
			       const uint8_t id[16]);

/* broker->zk_topics_create (see file comment). Runs on: any shard. */
enum sl_err cluster_topics_create(struct broker_shard *bs, struct broker_create *c);

/* Handlers (api_update_metadata.c, api_alter_partition.c). */
struct req;
enum sl_err api_update_metadata_handle(struct req *rq);
enum sl_err api_alter_partition_handle(struct req *rq);
enum sl_err api_controlled_shutdown_handle(struct req *rq);

#endif
