/*
 * catalog.h — the topics catalog: topic name -> topic id (UUID v4),
 * partition count, flags and per-topic configuration overrides, plus the
 * cluster id; persisted in the first log dir; read by every shard through
 * immutable snapshots.
 *
 * Two objects:
 *   - struct catalog: the mutable catalog. Created by main before the shards
 *     start (catalog_open loads or initialises the file), then owned by
 *     shard 0, the controller shard: every mutation runs there.
 *   - struct catalog_snap: an immutable copy (catalog_snapshot). Shard 0
 *     publishes each new snapshot to every shard with cross-shard messages
 *     (broker.c); shards read only snapshots, so there are no locks. A
 *     snapshot's memory belongs to shard 0, which frees it once every shard
 *     has moved to a newer one (the bookkeeping is in broker.c, on shard 0
 *     only). Readers never keep a pointer into a snapshot beyond the
 *     function that looked it up: they copy the id / partition count.
 *
 * On disk: `<dir>/__sluice_catalog`, text, replaced atomically (write
 * `.tmp`, fsync, rename, fsync the directory) after every mutation:
 *
 *   sluice-catalog 1
 *   cluster.id <22 chars: base64url of 16 random bytes, as Kafka prints ids>
 *   topic <id, 22 chars base64url> <partitions> <flags> <name>
 *   config <topic name> <key> <value to end of line>
 *
 * Each partition directory also gets Kafka's `partition.metadata`
 * ("version: 0\ntopic_id: <id>\n"), written by the partition's owner.
 *
 * Invariants:
 *   1. Topic names are valid (catalog_name_valid) and unique, and no two
 *      collide once '.' is read as '_' (Kafka's rule: metric names).
 *   2. Topic ids are unique, never all-zero, never Kafka's reserved id 1,
 *      and their base64 form does not start with '-'.
 *   3. snapshot.version strictly increases with every mutation; a
 *      snapshot's topics are sorted by name, by_id by id.
 *   4. The file on disk equals the in-memory catalog whenever a mutation
 *      returned SL_OK (a failed write rolls the mutation back).
 *
 * Runs on: main (open, close) and shard 0 (everything that mutates);
 * snapshot lookups on any shard.
 */
#ifndef SL_NET_CATALOG_H
#define SL_NET_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kread.h"
#include "sl.h"

#define CATALOG_FILE_NAME "__sluice_catalog"
#define CATALOG_PARTITION_METADATA "partition.metadata"
#define CATALOG_TOPIC_NAME_MAX 249
#define CATALOG_TOPICS_MAX 100000u
#define CATALOG_PARTITIONS_MAX 100000
#define CATALOG_CONFIGS_MAX 64u          /* overrides per topic */
#define CATALOG_CONFIG_BYTES_MAX 4096u   /* key or value */
#define CATALOG_FILE_BYTES_MAX (64u << 20)
#define CATALOG_ID_CHARS 22              /* base64url of 16 bytes, no padding */

#define CATALOG_REPLICAS_MAX 16          /* replicas of one partition (cluster mode) */
#define CATALOG_BROKERS_MAX 1024
#define CATALOG_HOST_MAX 256
#define CATALOG_RACK_MAX 64

/* Topic flags. */
#define CATALOG_TOPIC_INTERNAL (1u << 0)  /* __consumer_offsets, __transaction_state */

struct catalog_config_entry {
	const char *key;
	const char *value;
};

/*
 * Cluster mode: one live broker, as the controller last described the
 * cluster to this broker (UpdateMetadata).
 */
struct catalog_broker {
	int32_t id;
	int32_t port;
	char host[CATALOG_HOST_MAX];   /* NUL-terminated */
	char rack[CATALOG_RACK_MAX];   /* "" = no rack */
};

/*
 * Cluster mode: one partition's replica state as the controller last told
 * this broker (LeaderAndIsr / UpdateMetadata). Not persisted: a broker
 * learns it again from the controller after a restart, as Kafka's do.
 */
struct catalog_pstate {
	int32_t leader;             /* broker id; -1: no leader */
	int32_t leader_epoch;
	int32_t partition_epoch;    /* version of the partition's state znode */
	uint8_t replica_count;      /* 0: not known yet */
	uint8_t isr_count;
	int32_t replicas[CATALOG_REPLICAS_MAX];   /* assignment order */
	int32_t isr[CATALOG_REPLICAS_MAX];
};

/* One topic in a snapshot; every pointer points into the snapshot. */
struct catalog_topic {
	const char *name;          /* NUL-terminated */
	uint32_t name_len;
	struct kuuid id;
	int32_t partition_count;
	uint32_t flags;
	uint32_t config_count;
	const struct catalog_config_entry *configs;
	/* Cluster mode: [partition_count], NULL until the controller told
	 * this broker about the topic's partitions. */
	const struct catalog_pstate *pstates;
};

struct catalog_snap {
	uint64_t version;
	char cluster_id[CATALOG_ID_CHARS + 1];
	uint32_t topic_count;
	struct catalog_topic *topics;   /* sorted by name */
	uint32_t *by_id;                /* indices into topics, sorted by id */
	char *blob;                     /* names, keys and values */
	struct catalog_config_entry *config_store;
	/* Cluster mode (zookeeper.connect set): the live brokers sorted by id
	 * and the controller; `cluster` false = embedded single-node mode,
	 * where this broker leads every partition alone. */
	bool cluster;
	int32_t controller_id;          /* -1: unknown */
	uint32_t broker_count;
	struct catalog_broker *brokers;
	struct catalog_pstate *pstate_store;
	uint32_t holders;               /* publisher's bookkeeping (broker.c) */
};

/* Fills `buf` with `len` random bytes. 0 or -errno. */
typedef int catalog_random_fn(void *ctx, void *buf, size_t len);

struct catalog;

/*
 * Opens the catalog kept in directory `dir` (which must exist): loads
 * `dir/__sluice_catalog`, or, when there is none, makes a new cluster id
 * and writes an empty catalog. `rnd` (NULL: getrandom) supplies randomness
 * for ids. Returns SL_OK; SL_ECORRUPT for a malformed file (logged with its
 * line); SL_EIO; SL_ENOMEM.
 */
enum sl_err catalog_open(struct catalog **out, const char *dir, catalog_random_fn *rnd,
			 void *rnd_ctx);
void catalog_close(struct catalog *c);

/* The version the next catalog_snapshot will carry. */
uint64_t catalog_version(const struct catalog *c);
const char *catalog_cluster_id(const struct catalog *c);
/*
 * Cluster mode: adopts the cluster id ZooKeeper holds (1..22 printable
 * chars), persisting. SL_OK, SL_EINVAL, SL_EIO (unchanged).
 */
enum sl_err catalog_cluster_id_set(struct catalog *c, const char *id);
uint32_t catalog_topic_count(const struct catalog *c);

/*
 * Creates topic `name` (`len` bytes) with `partitions` partitions and
 * `flags`, persisting the catalog. *id_out (may be NULL) gets the new id.
 * Returns SL_OK; SL_EEXIST (a topic of that name exists; *id_out gets its
 * id); SL_EINVAL (invalid name, or a '.'/'_' collision with another
 * topic); SL_ERANGE (partitions outside 1..CATALOG_PARTITIONS_MAX, or
 * CATALOG_TOPICS_MAX topics); SL_EIO (the file could not be written; the
 * catalog is unchanged); SL_ENOMEM.
 */
enum sl_err catalog_topic_create(struct catalog *c, const char *name, size_t len,
				 int32_t partitions, uint32_t flags, struct kuuid *id_out);

/*
 * Cluster mode: creates topic `name` with the id the controller gave it
 * (from ZooKeeper), persisting. SL_OK; SL_EEXIST (a topic of that name with
 * the same id exists); SL_EINVAL (invalid name, zero id, or the name or id
 * is taken by another topic: the caller deletes the stale one first);
 * SL_ERANGE; SL_EIO; SL_ENOMEM.
 */
enum sl_err catalog_topic_create_id(struct catalog *c, const char *name, size_t len,
				    int32_t partitions, uint32_t flags, const struct kuuid *id);

/* Removes topic `name`, persisting. SL_OK, SL_ENOTFOUND, SL_EIO, SL_ENOMEM. */
enum sl_err catalog_topic_delete(struct catalog *c, const char *name, size_t len);

/*
 * Raises topic `name`'s partition count to `partitions`, persisting
 * (CreatePartitions). SL_OK, SL_ENOTFOUND, SL_EINVAL (not larger than
 * now), SL_ERANGE (above CATALOG_PARTITIONS_MAX), SL_EIO.
 */
enum sl_err catalog_topic_partitions_set(struct catalog *c, const char *name, size_t len,
					 int32_t partitions);

/*
 * Sets (value non-NULL) or removes (value NULL) the override `key` of
 * topic `name`, persisting. SL_OK, SL_ENOTFOUND (no topic; or no such key
 * to remove), SL_EINVAL (key or value empty, too long, or with a newline,
 * space in the key), SL_ERANGE (CATALOG_CONFIGS_MAX), SL_EIO, SL_ENOMEM.
 */
enum sl_err catalog_topic_config_set(struct catalog *c, const char *name, size_t len,
				     const char *key, const char *value);

/*
 * Cluster mode: replaces the live broker list (`n` brokers, any order; ids
 * unique) and the controller id, and turns the catalog's snapshots into
 * cluster snapshots. Not persisted. SL_OK, SL_EINVAL (duplicate id),
 * SL_ERANGE (more than CATALOG_BROKERS_MAX), SL_ENOMEM.
 */
enum sl_err catalog_cluster_brokers_set(struct catalog *c, const struct catalog_broker *b,
					uint32_t n, int32_t controller_id);

/*
 * Cluster mode: sets partition `partition` of topic `name`'s replica
 * state. Not persisted. SL_OK, SL_ENOTFOUND (no topic), SL_ERANGE
 * (partition out of range, counts above CATALOG_REPLICAS_MAX), SL_ENOMEM.
 */
enum sl_err catalog_pstate_set(struct catalog *c, const char *name, size_t len,
			       int32_t partition, const struct catalog_pstate *st);

/* An immutable copy of the catalog. SL_OK or SL_ENOMEM. */
enum sl_err catalog_snapshot(const struct catalog *c, struct catalog_snap **out);
void catalog_snap_free(struct catalog_snap *s);

/* Lookups (binary search); NULL when absent. */
const struct catalog_topic *catalog_snap_find(const struct catalog_snap *s, const char *name,
					      size_t len);
const struct catalog_topic *catalog_snap_find_id(const struct catalog_snap *s,
						 const struct kuuid *id);

/* Cluster mode: the live broker `id` in snapshot `s`, NULL when absent. */
const struct catalog_broker *catalog_snap_broker(const struct catalog_snap *s, int32_t id);

/* Kafka's rule: 1..249 chars of [a-zA-Z0-9._-], and not "." or "..". */
bool catalog_name_valid(const char *name, size_t len);
/* Kafka's internal topics: __consumer_offsets, __transaction_state. */
bool catalog_name_internal(const char *name, size_t len);
/* Names never auto-created: the internal ones and anything "__sluice*". */
bool catalog_name_reserved(const char *name, size_t len);

/* base64url without padding (Kafka's Uuid.toString): out gets 22 chars + NUL. */
void catalog_uuid_format(const struct kuuid *id, char out[CATALOG_ID_CHARS + 1]);
/* Parses the 22-char form. SL_OK or SL_EINVAL. */
enum sl_err catalog_uuid_parse(const char *s, size_t len, struct kuuid *out);
bool catalog_uuid_is_zero(const struct kuuid *id);

/*
 * Writes `<dir>/partition.metadata` atomically ("version: 0", "topic_id:
 * <id>"). SL_OK or SL_EIO (logged).
 */
enum sl_err catalog_partition_metadata_write(const char *dir, const struct kuuid *id);
/* Reads it back. SL_OK, SL_ENOTFOUND (no file), SL_ECORRUPT, SL_EIO. */
enum sl_err catalog_partition_metadata_read(const char *dir, struct kuuid *id);

#endif
