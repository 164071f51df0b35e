/*
 * broker.h — the Kafka broker's wiring: one process-wide `struct broker`
 * (configuration and what every shard reads), one `struct broker_shard`
 * per shard (its listener, connections, partitions, catalog snapshot), the
 * catalog's publication from shard 0 (the controller shard) to every
 * shard, and topic creation.
 *
 * Life cycle:
 *   main: broker_create (loads the catalog, binds shard 0's listening
 *         socket, so the real port is known before any shard runs)
 *   each shard, on_start: broker_shard_start (sh->app = its broker_shard;
 *         opens the partitions it owns, starts its listener)
 *   each shard, on_stop: broker_shard_stop (closes the listener and every
 *         connection, closes its partitions cleanly, and holds a "stop
 *         barrier" message to itself until the last connection is freed,
 *         so that the shard stays STOPPING — able to send the messages a
 *         closing connection still needs — see shard.h)
 *   main, after shard_group_join: broker_destroy
 *
 * Catalog snapshots (catalog.h). Shard 0 owns the mutable catalog. After
 * each mutation it builds a snapshot and sends it to every shard (itself
 * included) through the outbox; the receiver adopts it (bs->snap, then
 * partition_set_sync opens its new partitions) and replies with the
 * snapshot it held before. All bookkeeping happens on shard 0: a
 * snapshot's `holders` counts the shards holding it plus the publications
 * of it still in flight; when it drops to zero and the snapshot is not the
 * latest, shard 0 frees it. So no shard ever sees a freed snapshot, and no
 * lock or atomic is involved. Handlers copy what they need out of a
 * snapshot (ids, counts) and never keep pointers into it past their turn.
 *
 * Topic creation (broker_topics_create): the request goes to shard 0,
 * which creates the topics (persisting the catalog), publishes the new
 * snapshot, and replies only once every shard has acknowledged a snapshot
 * at least that new — so when the requester's `done` runs, every owner has
 * opened the new partitions and the requester's own snapshot has them.
 *
 * Invariants:
 *   1. Every shard holds exactly one snapshot (bs->snap); versions adopted
 *      by a shard strictly increase.
 *   2. snap->holders == shards holding it + publications in flight.
 *   3. A create is answered only when min(acked versions) >= its version.
 *
 * Runs on: as tagged per function.
 */
#ifndef SL_NET_BROKER_H
#define SL_NET_BROKER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "catalog.h"
#include "config.h"
#include "listener.h"
#include "outbox.h"
#include "partition.h"
#include "plog.h"
#include "rxbudget.h"
#include "shard.h"
#include "sl.h"

#define BROKER_HOST_MAX 256
/* pl.i64 slots of InitProducerId's message to shard 0 (zk_producer_id). */
#define BROKER_PID_ID 0
#define BROKER_PID_EPOCH 1
#define BROKER_PID_ERROR 2

struct conn;
struct broker_zk_admin;
struct broker_ctl;
struct broker_create;
struct producer_ids;

/* Process-wide; read-only once the shards run (except as noted). */
struct broker {
	const struct config *config;
	uint32_t shard_count;            /* set by the first broker_shard_start */
	int32_t node_id;                 /* broker.id (resolved) */
	char listen_host[BROKER_HOST_MAX];
	uint16_t port;                   /* the port actually bound */
	struct sockaddr_storage listen_addr;
	socklen_t listen_addr_len;
	int listen_fd0;                  /* shard 0's socket; -1 once taken */
	char adv_host[BROKER_HOST_MAX];
	int32_t adv_port;
	const char *rack;                /* broker.rack, NULL when empty */
	char cluster_id[CATALOG_ID_CHARS + 1];
	struct plog_config plog_cfg;
	uint32_t conns_per_shard;        /* max.connections / shards, >= 1 */
	struct broker_shard *shards;     /* [shard_count]; shard i only touches its own */
	struct catalog_snap *snap_initial; /* every shard starts from it */
	/* Shard 0 only, once running (main before and after). */
	struct catalog *catalog;
	struct broker_ctl *ctl;
	struct producer_ids *producer_ids; /* InitProducerId; opened on first use (api_init_producer_id.c) */
	/* A layer above net/ (coordination/): run first in broker_shard_stop on
	 * every shard, to answer held requests and free bs->ext. Set by main
	 * before the shards start; NULL: none. */
	void (*ext_stop)(struct broker_shard *bs);
	/* Cluster mode (coordination/cluster.c, set by main before the shards
	 * start; NULL in embedded mode): topic creation through ZooKeeper.
	 * broker_topics_create hands it every request without `mutate`; same
	 * contract (done runs later on bs's shard, once bs's snapshot shows
	 * the topics with leaders, or after timeout_ms). */
	enum sl_err (*zk_topics_create)(struct broker_shard *bs, struct broker_create *c);
	/* Cluster mode: InitProducerId's id allocator (blocks from ZooKeeper,
	 * coordination/pid_block.h); NULL: io/producer_ids.h. Runs as the xmsg
	 * fn on shard 0; answers (now, or deferred) in m->pl.i64
	 * [BROKER_PID_ID] / [BROKER_PID_EPOCH] / [BROKER_PID_ERROR] (a Kafka
	 * error code; KERR_NONE with id >= 0 and epoch >= 0). */
	xmsg_fn *zk_producer_id;
	void *cluster;                   /* coordination/'s struct cluster (shard 0) */
	/* Cluster mode: replication/hwsave.h's HW checkpoint upkeep (main). */
	void *hwsave;
	/* Cluster mode (coordination/topic_admin.h, set by main; NULL in
	 * embedded mode): DeleteTopics queues /admin/delete_topics/<t> and
	 * `done` runs on bs's shard once bs's snapshot no longer has the topic
	 * (or after timeout_ms: REQUEST_TIMED_OUT); CreatePartitions rewrites
	 * /brokers/topics/<t> (version-checked) and `done` runs once written.
	 * SL_OK: done will run; else nothing was sent. Runs on: any shard. */
	enum sl_err (*zk_topics_delete)(struct broker_shard *bs, struct broker_zk_admin *a);
	enum sl_err (*zk_partitions_create)(struct broker_shard *bs, struct broker_zk_admin *a);
};

/* One per shard: sh->app. Touched only by its shard. */
struct broker_shard {
	struct shard *sh;
	struct broker *b;
	const struct catalog_snap *snap; /* invariant 1 */
	struct outbox outbox;
	struct partition_set parts;
	struct listener lis;
	struct conn *conns;              /* doubly linked, conn.c */
	uint32_t conn_count;
	uint64_t conn_seq;
	bool stopping;
	bool barrier_held;
	struct xmsg barrier;             /* the deferred stop barrier */
	uint32_t autocreates;            /* broker_topic_autocreate in flight */
	uint64_t conns_refused;          /* statistics */
	struct rxbudget rxb;             /* conn.c: request-buffer memory budget */
	struct timer rxb_wake;           /* conn.c: resumes connections parked on rxb */
	struct timer idle_sweep;         /* conn.c: connections.max.idle.ms */
	void *ext;                       /* coordination/'s per-shard state (b->ext_stop frees it) */
	void *repl;                      /* replication/'s per-shard state (repl.c; cluster mode) */
};

static inline struct broker_shard *broker_shard_of(struct shard *sh)
{
	return (struct broker_shard *)sh->app;
}

/*
 * Main thread, before the shards: resolves listeners[0] and
 * advertised.listeners[0], binds and listens on shard 0's socket (port 0:
 * the kernel picks; the advertised port 0 becomes the bound one), opens
 * the catalog in the first log dir. Returns SL_OK; SL_EINVAL (bad
 * listener), SL_EIO (bind/listen or catalog failure; logged), SL_ENOMEM.
 */
enum sl_err broker_create(struct broker **out, const struct config *c);

/* Main thread, after shard_group_join (or if the group never started). */
void broker_destroy(struct broker *b);

/* on_start / on_stop hooks (runs on: sh). */
enum sl_err broker_shard_start(struct shard *sh, struct broker *b);
void broker_shard_stop(struct shard *sh, struct broker *b);

/*
 * Called by conn.c / listener.c when a connection was freed or the
 * listener closed: releases the stop barrier once nothing is left.
 */
void broker_shard_check_barrier(struct broker_shard *bs);

/* ---- topic creation (any shard -> shard 0) ---- */

struct broker_create_topic {
	const char *name;                /* borrowed until done */
	uint32_t name_len;
	int32_t partitions;              /* <= 0: num.partitions */
	int16_t error_code;              /* out: KERR_NONE, TOPIC_ALREADY_EXISTS, ... */
	struct kuuid id;                 /* out: the topic's id when it exists */
	/* Cluster mode only (zk_topics_create): <= 0: default.replication.factor */
	int32_t replication_factor;
	uint32_t config_count;           /* overrides written to /config/topics/<t> */
	char **keys, **values;           /* borrowed until done */
};

struct broker_create;
typedef void broker_create_done_fn(struct broker_shard *bs, struct broker_create *c);
/*
 * A catalog mutation of an admin API (delete topics, alter configs, add
 * partitions, create with configs): runs on shard 0 with bs0->b->catalog,
 * returns how many changes it made (the catalog is published when > 0).
 */
typedef uint32_t broker_mutate_fn(struct broker_shard *bs0, struct broker_create *c);

struct broker_create {
	/* in */
	struct broker_create_topic *topics;
	uint32_t count;
	broker_create_done_fn *done;     /* runs on the requesting shard */
	void *arg;
	broker_mutate_fn *mutate;        /* NULL: create `topics`; else run this instead */
	uint32_t timeout_ms;             /* cluster-mode creation wait; 0: 30000 */
	/* private (shard 0 writes here while it holds the request) */
	struct xmsg msg;
	uint64_t need_version;
	struct broker_create *next;
};

/*
 * Asks shard 0 to create `c->topics`. Returns SL_OK: c->done runs later on
 * bs's shard, with every topic's error_code set (TOPIC_ALREADY_EXISTS for
 * a topic that was there). `c` and the names are borrowed until then.
 * SL_EAGAIN / SL_ECLOSED / SL_ENOMEM: nothing was sent, done will not run.
 * With c->mutate set, shard 0 runs c->mutate instead of creating (count
 * may be 0) and done runs once every shard adopted the resulting catalog
 * (so owners have opened, closed or reconfigured their partitions).
 * Runs on: any shard.
 */
enum sl_err broker_topics_create(struct broker_shard *bs, struct broker_create *c);

/*
 * Fire-and-forget auto-creation of one topic (Metadata): copies the name,
 * creates with num.partitions, logs failures. Runs on: any shard.
 */
void broker_topic_autocreate(struct broker_shard *bs, const char *name, size_t len);

/* ---- cluster-mode topic administration (broker->zk_topics_delete, zk_partitions_create) ---- */

#define BROKER_ZK_MSG_MAX 160

/* One topic of a DeleteTopics / CreatePartitions handed to ZooKeeper. */
struct broker_zk_topic {
	const char *name;                /* borrowed until done */
	uint32_t name_len;
	struct kuuid id;                 /* DeleteTopics: the id this broker resolved */
	int32_t count;                   /* CreatePartitions: the new total */
	/* CreatePartitions: manual assignment, one row per new partition
	 * (borrowed until done), or NULL: assigned over the live brokers. */
	const struct karray_i32 *assign;
	int32_t assign_rows;
	int16_t error_code;              /* in: KERR_NONE to act on it; out */
	char message[BROKER_ZK_MSG_MAX]; /* out: error message or "" */
};

struct broker_zk_admin;
typedef void broker_zk_admin_done_fn(struct broker_shard *bs, struct broker_zk_admin *a);

struct broker_zk_admin {
	struct broker_zk_topic *topics;
	uint32_t count;
	bool validate_only;              /* CreatePartitions */
	int32_t timeout_ms;              /* DeleteTopics wait; <= 0: do not wait */
	broker_zk_admin_done_fn *done;   /* runs on the requesting shard */
	void *arg;
};

/* Sends a cross-shard message through this shard's outbox (outbox.h). */
static inline enum sl_err broker_send(struct broker_shard *bs, uint32_t to, const struct xmsg *m)
{
	return outbox_send(&bs->outbox, to, m);
}

#endif
