/*
 * config.h — the broker configuration: Kafka's server.properties keys, typed.
 *
 * One `struct config` holds one typed field per key, named after the key with
 * dots turned into underscores (log.segment.bytes -> log_segment_bytes). A
 * static table in config.c describes every key (name, type, default, range,
 * field offset); parsing, defaults, range checks and config_log() all walk
 * that table, so a key exists in exactly one place. deploy/config/README.md
 * lists every key with its type, default, range and meaning.
 *
 * Life cycle (all on the main thread, before any shard starts):
 *
 *   config_init ──> config_load_file / config_set (any number, in order;
 *                   the last value of a key wins) ──> config_finish ──>
 *   read-only use by every shard ──> config_free
 *
 * Invariants:
 *   1. After config_init every field holds Kafka's default for its key
 *      (Sluice's own default for num.shards and log.level). Keys without a
 *      default in Kafka ("nullable": log.retention.ms, log.retention.minutes,
 *      log.roll.ms, log.flush.interval.ms, log.dirs, advertised.listeners,
 *      zookeeper.connection.timeout.ms) hold 0 / NULL until config_finish.
 *   2. Every value stored by config_load_file/config_set passed its key's
 *      type and range check; a rejected value leaves the field unchanged.
 *   3. After config_finish returned SL_OK, each field is the *effective*
 *      value: precedence between related keys is resolved INTO THE PRIMARY
 *      FIELD, so readers never look at the secondary keys:
 *        log_retention_ms  = log.retention.ms, else log.retention.minutes
 *                            * 60000, else log.retention.hours * 3600000;
 *                            any negative result is stored as -1
 *                            (unlimited); 0 is rejected (as Kafka does).
 *        log_roll_ms       = log.roll.ms, else log.roll.hours * 3600000.
 *        log_flush_interval_ms = log.flush.interval.ms, else
 *                            log.flush.scheduler.interval.ms.
 *        log_dirs          = log.dirs, else log.dir (normalised list).
 *        advertised_listeners = advertised.listeners, else listeners.
 *        zookeeper_connection_timeout_ms = the key, else
 *                            zookeeper.session.timeout.ms.
 *        log_message_timestamp_before_max_ms / _after_max_ms: when left at
 *                            Long.MAX, log.message.timestamp.difference.max.ms
 *                            (Kafka 3.6+ compatibility rule).
 *        log_retention_bytes: any negative value is stored as -1 (unlimited).
 *        num_shards        = 0 resolves to the CPUs this process may run on
 *                            (sched_getaffinity), at most CONFIG_SHARDS_MAX.
 *        broker_id         = -1 resolves to 0 in embedded single-node mode
 *                            (zookeeper.connect empty); with ZooKeeper it
 *                            must be set (Sluice does not generate ids).
 *      The secondary fields keep what the operator wrote (for config_log).
 *   4. List-valued strings (listeners, advertised_listeners, log_dirs,
 *      log_dir, zookeeper_connect) are normalised: items trimmed, empty items
 *      dropped, joined with "," and no spaces. Every char * field is owned
 *      by the struct (heap) and freed by config_free; "" means empty, NULL
 *      only appears for nullable keys before config_finish.
 *
 * Errors: every function that can fail returns an enum sl_err and writes one
 * human-readable line into `err` (truncated to err_len), naming where the
 * value came from, the key and the problem, e.g.
 *   config: server.properties:12: log.segment.bytes: "12x" is not an integer
 *   config: --set num.shards: "300" is out of range [0, 256]
 * Kafka broker keys that mean nothing in Sluice (thread counts, transaction
 * log settings, ...) are accepted with a LOG_W "ignored: <key> has no effect
 * in Sluice" so an existing server.properties loads; security-related keys
 * (ssl.*, sasl.*, authorizer...) are NOT ignored — they are unknown keys and
 * fail, because silently dropping them would weaken a deployment.
 */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "sl.h"

/* num.shards upper bound (and the cap of the "0 = one per CPU" rule). */
#define CONFIG_SHARDS_MAX 256
/* Bound on the number of keys the table may hold (for the set bitmaps). */
#define CONFIG_KEYS_MAX 128
/* A properties file larger than this is refused (a typo, not a config). */
#define CONFIG_FILE_BYTES_MAX (1u << 20)
/* One logical line (after joining continuation lines). */
#define CONFIG_LINE_BYTES_MAX (64u * 1024u)
/* At most this many items in log.dirs / log.dir and in listeners. */
#define CONFIG_LIST_ITEMS_MAX 64

/* log.message.timestamp.type; values equal Kafka's timestamp type ids. */
enum config_timestamp_type {
	CONFIG_TIMESTAMP_CREATE_TIME = 0,      /* "CreateTime" */
	CONFIG_TIMESTAMP_LOG_APPEND_TIME = 1,  /* "LogAppendTime" */
};

/*
 * compression.type; values 0..4 equal the codec bits of a record batch's
 * attributes, PRODUCER means "keep what the producer sent".
 */
enum config_compression_type {
	CONFIG_COMPRESSION_UNCOMPRESSED = 0,
	CONFIG_COMPRESSION_GZIP = 1,
	CONFIG_COMPRESSION_SNAPPY = 2,
	CONFIG_COMPRESSION_LZ4 = 3,
	CONFIG_COMPRESSION_ZSTD = 4,
	CONFIG_COMPRESSION_PRODUCER = 5,
};

/* log.cleanup.policy is a list; the field is a mask of these bits. */
#define CONFIG_CLEANUP_DELETE (1u << 0)
#define CONFIG_CLEANUP_COMPACT (1u << 1)

struct config {
	/* ---- broker ---- */
	int32_t broker_id;                 /* broker.id, -1 = unset (inv. 3) */
	char *broker_rack;                 /* broker.rack, "" = none */
	int32_t num_shards;                /* num.shards (Sluice), 0 = per CPU */
	enum log_level log_level;          /* log.level (Sluice) */
	int32_t message_max_bytes;         /* message.max.bytes */
	bool auto_create_topics_enable;    /* auto.create.topics.enable */
	bool delete_topic_enable;          /* delete.topic.enable */
	bool controlled_shutdown_enable;   /* controlled.shutdown.enable */
	int32_t controlled_shutdown_max_retries; /* controlled.shutdown.max.retries */
	int32_t controlled_shutdown_retry_backoff_ms; /* controlled.shutdown.retry.backoff.ms */
	enum config_compression_type compression_type; /* compression.type */
	int32_t fetch_max_bytes;           /* fetch.max.bytes */

	/* ---- network ---- */
	char *listeners;                   /* listeners */
	char *advertised_listeners;        /* advertised.listeners */
	int32_t socket_send_buffer_bytes;  /* socket.send.buffer.bytes, -1 = OS */
	int32_t socket_receive_buffer_bytes; /* socket.receive.buffer.bytes */
	int32_t socket_request_max_bytes;  /* socket.request.max.bytes */
	int32_t socket_listen_backlog_size; /* socket.listen.backlog.size */
	int32_t max_connections;           /* max.connections */
	int32_t max_connections_per_ip;    /* max.connections.per.ip */
	int64_t connections_max_idle_ms;   /* connections.max.idle.ms, -1 = never */
	int32_t queued_max_requests;       /* queued.max.requests */
	int64_t queued_max_request_bytes;  /* queued.max.request.bytes, <=0 = no limit */

	/* ---- topics and logs ---- */
	int32_t num_partitions;            /* num.partitions */
	int32_t default_replication_factor; /* default.replication.factor */
	int32_t min_insync_replicas;       /* min.insync.replicas */
	char *log_dirs;                    /* log.dirs (effective, inv. 3) */
	char *log_dir;                     /* log.dir */
	int32_t log_segment_bytes;         /* log.segment.bytes */
	int64_t log_roll_ms;               /* log.roll.ms (effective) */
	int32_t log_roll_hours;            /* log.roll.hours */
	int64_t log_retention_ms;          /* log.retention.ms (effective), -1 = unlimited */
	int32_t log_retention_minutes;     /* log.retention.minutes */
	int32_t log_retention_hours;       /* log.retention.hours */
	int64_t log_retention_bytes;       /* log.retention.bytes, -1 = unlimited */
	int64_t log_retention_check_interval_ms; /* log.retention.check.interval.ms */
	uint32_t log_cleanup_policy;       /* log.cleanup.policy, CONFIG_CLEANUP_* */
	bool log_cleaner_enable;           /* log.cleaner.enable */
	int64_t log_cleaner_delete_retention_ms; /* log.cleaner.delete.retention.ms */
	double log_cleaner_min_cleanable_ratio; /* log.cleaner.min.cleanable.ratio */
	int32_t log_index_size_max_bytes;  /* log.index.size.max.bytes */
	int32_t log_index_interval_bytes;  /* log.index.interval.bytes */
	int64_t log_flush_interval_messages; /* log.flush.interval.messages */
	int64_t log_flush_interval_ms;     /* log.flush.interval.ms (effective) */
	int64_t log_flush_scheduler_interval_ms; /* log.flush.scheduler.interval.ms */
	int32_t log_flush_offset_checkpoint_interval_ms; /* log.flush.offset.checkpoint.interval.ms */
	bool log_preallocate;              /* log.preallocate */
	enum config_timestamp_type log_message_timestamp_type; /* log.message.timestamp.type */
	int64_t log_message_timestamp_difference_max_ms; /* ...difference.max.ms (deprecated) */
	int64_t log_message_timestamp_before_max_ms; /* ...before.max.ms (effective) */
	int64_t log_message_timestamp_after_max_ms;  /* ...after.max.ms (effective) */

	/* ---- replication ---- */
	int64_t replica_lag_time_max_ms;   /* replica.lag.time.max.ms */
	int32_t replica_fetch_max_bytes;   /* replica.fetch.max.bytes */
	int32_t replica_fetch_wait_max_ms; /* replica.fetch.wait.max.ms */
	int32_t replica_fetch_min_bytes;   /* replica.fetch.min.bytes */
	int32_t replica_fetch_response_max_bytes; /* replica.fetch.response.max.bytes */
	int32_t replica_fetch_backoff_ms;  /* replica.fetch.backoff.ms */
	int32_t replica_socket_timeout_ms; /* replica.socket.timeout.ms */
	int64_t replica_high_watermark_checkpoint_interval_ms; /* replica.high.watermark.checkpoint.interval.ms */
	bool unclean_leader_election_enable; /* unclean.leader.election.enable */

	/* ---- ZooKeeper ---- */
	char *zookeeper_connect;           /* zookeeper.connect, "" = embedded single-node */
	int32_t zookeeper_session_timeout_ms; /* zookeeper.session.timeout.ms */
	int32_t zookeeper_connection_timeout_ms; /* zookeeper.connection.timeout.ms (effective) */

	/* ---- consumer groups and committed offsets ---- */
	int32_t group_initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms */
	int32_t group_min_session_timeout_ms; /* group.min.session.timeout.ms */
	int32_t group_max_session_timeout_ms; /* group.max.session.timeout.ms */
	int32_t group_max_size;            /* group.max.size */
	int32_t offsets_topic_num_partitions; /* offsets.topic.num.partitions */
	int32_t offsets_topic_replication_factor; /* offsets.topic.replication.factor */
	int32_t offsets_topic_segment_bytes; /* offsets.topic.segment.bytes */
	int32_t offsets_retention_minutes; /* offsets.retention.minutes */
	int64_t offsets_retention_check_interval_ms; /* offsets.retention.check.interval.ms */
	int32_t offsets_commit_timeout_ms; /* offsets.commit.timeout.ms */
	int32_t offset_metadata_max_bytes; /* offset.metadata.max.bytes */

	/* ---- bookkeeping (config.c only) ---- */
	uint64_t set_bits[CONFIG_KEYS_MAX / 64];     /* key given by file / --set */
	uint64_t derived_bits[CONFIG_KEYS_MAX / 64]; /* value filled by config_finish */
	enum sl_err init_err;  /* sticky: config_init could not allocate a default */
};

/*
 * Fills `c` (uninitialised memory) with every key's default. Cannot fail
 * visibly: an allocation failure is remembered and reported by the next
 * config_load_file / config_set / config_finish as SL_ENOMEM.
 */
void config_init(struct config *c);

/*
 * Reads a Java .properties file at `path` and applies each key in order.
 * Syntax: `#`/`!` comment lines, blank lines, `key=value`, `key: value`,
 * `key value`, whitespace trimmed around key and value, a line ending in an
 * odd number of backslashes continues on the next line (whose leading
 * whitespace is dropped), escapes \t \n \r \f \\ \= \: \# \! \<space> and
 * \uXXXX (stored as UTF-8). A key given twice: the last one wins.
 * Stops at the first error. Returns SL_OK; SL_ENOTFOUND (no such file);
 * SL_EIO (unreadable, not a regular file, larger than
 * CONFIG_FILE_BYTES_MAX); SL_EINVAL (syntax, unknown key, malformed value);
 * SL_ERANGE (value outside the key's range); SL_ENOMEM. `err` names the
 * file, the line number and the key.
 */
enum sl_err config_load_file(struct config *c, const char *path, char *err, size_t err_len);

/*
 * Applies one `--set key=value` from the command line (value already split
 * off; surrounding whitespace is trimmed, no escapes are processed). Same
 * results as config_load_file; `err` says "--set" and names the key.
 */
enum sl_err config_set(struct config *c, const char *key, const char *value,
		       char *err, size_t err_len);

/*
 * Resolves precedence between related keys (invariant 3) and checks what
 * involves several keys: log.retention.* resolving to 0, replica.fetch.wait.max.ms
 * <= replica.lag.time.max.ms and <= replica.socket.timeout.ms,
 * group.min.session.timeout.ms <= group.max.session.timeout.ms,
 * queued.max.request.bytes (if > 0) >= socket.request.max.bytes, broker.id
 * set when ZooKeeper is used, advertised listeners (also when taken from
 * `listeners`) not 0.0.0.0 or ::. Port 0 in an advertised listener means
 * "the port actually bound" (as in Kafka): net/ substitutes it. Logs a warning
 * when embedded single-node mode is asked for replication factors above 1.
 * Idempotent: calling it twice gives the same result. Returns SL_OK,
 * SL_EINVAL or SL_ERANGE (with `err`), SL_ENOMEM.
 */
enum sl_err config_finish(struct config *c, char *err, size_t err_len);

/*
 * Logs every key's effective value at LOG_INFO (shard LOG_NO_SHARD), one
 * "config: key=value" line each in table order, marked "(default)" when not
 * given and "(derived)" when config_finish filled it from another key.
 */
void config_log(const struct config *c);

/* Frees every string field; `c` must be config_init'ed again before reuse. */
void config_free(struct config *c);

/*
 * Listener lists ("PLAINTEXT://host:port,PLAINTEXT://[::1]:9093"), as held
 * in c->listeners / c->advertised_listeners after config_finish.
 *
 * config_listener_count() returns the number of non-empty comma-separated
 * entries (0 for NULL or "").
 *
 * config_listener_parse() parses entry number `index` (0-based, empty
 * entries skipped): the name before "://" must be PLAINTEXT (any case); the
 * host may be empty (all interfaces), a name, an IPv4 address or a
 * bracketed IPv6 address (brackets are removed in `host`); the port is
 * 0..65535 (0 = let the kernel choose). Writes the NUL-terminated host into
 * host[host_len] and the port into *port. Returns SL_OK; SL_ENOTFOUND when
 * there is no entry `index`; SL_EINVAL when the entry is malformed;
 * SL_ERANGE when the host does not fit in host_len bytes.
 */
int config_listener_count(const char *listeners);
enum sl_err config_listener_parse(const char *listeners, int index, char *host,
				  size_t host_len, uint16_t *port);

/*
 * Normalised comma lists (c->log_dirs): config_list_count() returns the
 * number of items; config_list_get() copies item `index` into out[out_len].
 * Returns SL_OK, SL_ENOTFOUND (no such item) or SL_ERANGE (does not fit).
 */
int config_list_count(const char *list);
enum sl_err config_list_get(const char *list, int index, char *out, size_t out_len);

#endif
