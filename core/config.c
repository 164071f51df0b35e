/*
 * config.c — server.properties: the key table, the .properties parser, value
 * checks and cross-key resolution. See config.h for the contract.
 *
 * Everything is driven by config_keys[]: one descriptor per key giving its
 * name, type, default (as text, parsed by the same code as a file value),
 * range, and the offset and size of its field in struct config. config_init
 * parses each default; config_log formats each field; config_free frees each
 * string field. Adding a key = one table line + one struct field (+ README).
 *
 * Invariants:
 *   1. Every descriptor's `size` equals the size its type stores (checked by
 *      config_init, so a table/struct mismatch aborts at start-up, not later).
 *   2. Every default parses and is inside its own range (checked likewise).
 *   3. A value is written to its field only after it fully passed the key's
 *      checks; string fields are replaced (old one freed) only then.
 *   4. Loops are bounded by the input: the file is at most
 *      CONFIG_FILE_BYTES_MAX bytes, each parser turn consumes at least one
 *      byte, a logical line is at most CONFIG_LINE_BYTES_MAX bytes, list
 *      walks pass one comma per turn, and listener / directory lists hold
 *      at most CONFIG_LIST_ITEMS_MAX items.
 *
 * Runs on: the main thread, before shards start. No globals are written.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_KEY_BYTES_MAX 256
#define CONFIG_HOST_BYTES_MAX 256

enum config_type {
	CONFIG_T_INT32,   /* int32_t, decimal, [min, max] */
	CONFIG_T_INT64,   /* int64_t, decimal, [min, max] */
	CONFIG_T_BOOL,    /* bool, true/false in any case */
	CONFIG_T_DOUBLE,  /* double, finite, [dmin, dmax] */
	CONFIG_T_STRING,  /* char *, stored as given (trimmed) */
	CONFIG_T_LIST,    /* char *, comma list normalised (config.h inv. 4) */
	CONFIG_T_ENUM,    /* enum (int-sized), index into names[] */
	CONFIG_T_FLAGS,   /* uint32_t, comma list of names[] -> bit i per name */
};

/* Extra syntax check of a normalised STRING/LIST value; writes `why`. */
typedef enum sl_err config_check_fn(const char *value, char *why, size_t why_len);

struct config_key {
	const char *name;
	enum config_type type;
	const char *def;           /* default as text; NULL = no default (nullable) */
	int64_t min, max;          /* INT32 / INT64 */
	double dmin, dmax;         /* DOUBLE */
	const char *const *names;  /* ENUM / FLAGS */
	int names_count;
	config_check_fn *check;    /* STRING / LIST, or NULL */
	size_t offset;             /* of the field in struct config */
	size_t size;               /* of the field (invariant 1) */
};

static config_check_fn config_check_listeners;
static config_check_fn config_check_advertised;
static config_check_fn config_check_dirs;
static config_check_fn config_check_zookeeper;

static const char *const config_log_level_names[] = { "debug", "info", "warn", "error" };
static const char *const config_compression_names[] = {
	"uncompressed", "gzip", "snappy", "lz4", "zstd", "producer",
};
static const char *const config_timestamp_names[] = { "CreateTime", "LogAppendTime" };
static const char *const config_cleanup_names[] = { "delete", "compact" };

_Static_assert(LOG_DEBUG == 0 && LOG_INFO == 1 && LOG_WARN == 2 && LOG_ERROR == 3,
	       "log.level names are indexed by enum log_level");
_Static_assert(CONFIG_COMPRESSION_PRODUCER == 5 && CONFIG_TIMESTAMP_LOG_APPEND_TIME == 1,
	       "enum values are indices into the names tables");
_Static_assert(sizeof(enum log_level) == sizeof(int) &&
	       sizeof(enum config_compression_type) == sizeof(int) &&
	       sizeof(enum config_timestamp_type) == sizeof(int),
	       "ENUM fields are stored as int");

#define I32MIN INT32_MIN
#define I32MAX INT32_MAX
#define I64MIN INT64_MIN
#define I64MAX INT64_MAX
#define LONG_MAX_TEXT "9223372036854775807"

#define CK_FIELD(f) .offset = offsetof(struct config, f), .size = sizeof(((struct config *)0)->f)
#define CK_I32(n, f, d, lo, hi) \
	{ .name = n, .type = CONFIG_T_INT32, .def = d, .min = lo, .max = hi, CK_FIELD(f) }
#define CK_I64(n, f, d, lo, hi) \
	{ .name = n, .type = CONFIG_T_INT64, .def = d, .min = lo, .max = hi, CK_FIELD(f) }
#define CK_BOOL(n, f, d) { .name = n, .type = CONFIG_T_BOOL, .def = d, CK_FIELD(f) }
#define CK_DBL(n, f, d, lo, hi) \
	{ .name = n, .type = CONFIG_T_DOUBLE, .def = d, .dmin = lo, .dmax = hi, CK_FIELD(f) }
#define CK_STR(n, f, d) { .name = n, .type = CONFIG_T_STRING, .def = d, CK_FIELD(f) }
#define CK_LIST(n, f, d, chk) \
	{ .name = n, .type = CONFIG_T_LIST, .def = d, .check = chk, CK_FIELD(f) }
#define CK_ENUM(n, f, d, nm) { .name = n, .type = CONFIG_T_ENUM, .def = d, .names = nm, \
	.names_count = (int)SL_ARRAY_LEN(nm), CK_FIELD(f) }
#define CK_FLAGS(n, f, d, nm) { .name = n, .type = CONFIG_T_FLAGS, .def = d, .names = nm, \
	.names_count = (int)SL_ARRAY_LEN(nm), CK_FIELD(f) }

/*
 * Every key Sluice reads. Defaults and ranges are Kafka 3.9's; where Kafka
 * has no range but a value is meaningless (a timeout of 0, a replication
 * factor above what the protocol's int16 carries) the range is tighter and
 * deploy/config/README.md says so.
 */
static const struct config_key config_keys[] = {
	/* broker */
	CK_I32("broker.id", broker_id, "-1", -1, I32MAX),
	CK_STR("broker.rack", broker_rack, ""),
	CK_I32("num.shards", num_shards, "0", 0, CONFIG_SHARDS_MAX),
	CK_ENUM("log.level", log_level, "info", config_log_level_names),
	CK_I32("message.max.bytes", message_max_bytes, "1048588", 0, I32MAX),
	CK_BOOL("auto.create.topics.enable", auto_create_topics_enable, "true"),
	CK_BOOL("delete.topic.enable", delete_topic_enable, "true"),
	CK_BOOL("controlled.shutdown.enable", controlled_shutdown_enable, "true"),
	CK_I32("controlled.shutdown.max.retries", controlled_shutdown_max_retries, "3", 0, I32MAX),
	CK_I32("controlled.shutdown.retry.backoff.ms", controlled_shutdown_retry_backoff_ms, "5000",
	       0, I32MAX),
	CK_ENUM("compression.type", compression_type, "producer", config_compression_names),
	CK_I32("fetch.max.bytes", fetch_max_bytes, "57671680", 1024, I32MAX),
	/* network */
	CK_LIST("listeners", listeners, "PLAINTEXT://:9092", config_check_listeners),
	CK_LIST("advertised.listeners", advertised_listeners, NULL, config_check_advertised),
	CK_I32("socket.send.buffer.bytes", socket_send_buffer_bytes, "102400", -1, I32MAX),
	CK_I32("socket.receive.buffer.bytes", socket_receive_buffer_bytes, "102400", -1, I32MAX),
	CK_I32("socket.request.max.bytes", socket_request_max_bytes, "104857600", 1, I32MAX),
	CK_I32("socket.listen.backlog.size", socket_listen_backlog_size, "50", 1, I32MAX),
	CK_I32("max.connections", max_connections, "2147483647", 0, I32MAX),
	CK_I32("max.connections.per.ip", max_connections_per_ip, "2147483647", 1, I32MAX),
	CK_I64("connections.max.idle.ms", connections_max_idle_ms, "600000", -1, I64MAX),
	CK_I32("queued.max.requests", queued_max_requests, "500", 1, I32MAX),
	CK_I64("queued.max.request.bytes", queued_max_request_bytes, "-1", I64MIN, I64MAX),
	/* topics and logs */
	CK_I32("num.partitions", num_partitions, "1", 1, I32MAX),
	CK_I32("default.replication.factor", default_replication_factor, "1", 1, INT16_MAX),
	CK_I32("min.insync.replicas", min_insync_replicas, "1", 1, I32MAX),
	CK_LIST("log.dirs", log_dirs, NULL, config_check_dirs),
	CK_LIST("log.dir", log_dir, "/tmp/kafka-logs", config_check_dirs),
	CK_I32("log.segment.bytes", log_segment_bytes, "1073741824", 14, I32MAX),
	CK_I64("log.roll.ms", log_roll_ms, NULL, 1, I64MAX),
	CK_I32("log.roll.hours", log_roll_hours, "168", 1, I32MAX),
	CK_I64("log.retention.ms", log_retention_ms, NULL, I64MIN, I64MAX),
	CK_I32("log.retention.minutes", log_retention_minutes, NULL, I32MIN, I32MAX),
	CK_I32("log.retention.hours", log_retention_hours, "168", I32MIN, I32MAX),
	CK_I64("log.retention.bytes", log_retention_bytes, "-1", I64MIN, I64MAX),
	CK_I64("log.retention.check.interval.ms", log_retention_check_interval_ms, "300000", 1, I64MAX),
	CK_FLAGS("log.cleanup.policy", log_cleanup_policy, "delete", config_cleanup_names),
	CK_BOOL("log.cleaner.enable", log_cleaner_enable, "true"),
	CK_I64("log.cleaner.delete.retention.ms", log_cleaner_delete_retention_ms, "86400000", 0, I64MAX),
	CK_DBL("log.cleaner.min.cleanable.ratio", log_cleaner_min_cleanable_ratio, "0.5", 0.0, 1.0),
	CK_I32("log.index.size.max.bytes", log_index_size_max_bytes, "10485760", 4, I32MAX),
	CK_I32("log.index.interval.bytes", log_index_interval_bytes, "4096", 0, I32MAX),
	CK_I64("log.flush.interval.messages", log_flush_interval_messages, LONG_MAX_TEXT, 1, I64MAX),
	CK_I64("log.flush.interval.ms", log_flush_interval_ms, NULL, 0, I64MAX),
	CK_I64("log.flush.scheduler.interval.ms", log_flush_scheduler_interval_ms, LONG_MAX_TEXT, 0, I64MAX),
	CK_I32("log.flush.offset.checkpoint.interval.ms", log_flush_offset_checkpoint_interval_ms,
	       "60000", 0, I32MAX),
	CK_BOOL("log.preallocate", log_preallocate, "false"),
	CK_ENUM("log.message.timestamp.type", log_message_timestamp_type, "CreateTime",
		config_timestamp_names),
	CK_I64("log.message.timestamp.difference.max.ms", log_message_timestamp_difference_max_ms,
	       LONG_MAX_TEXT, 0, I64MAX),
	CK_I64("log.message.timestamp.before.max.ms", log_message_timestamp_before_max_ms,
	       LONG_MAX_TEXT, 0, I64MAX),
	CK_I64("log.message.timestamp.after.max.ms", log_message_timestamp_after_max_ms,
	       LONG_MAX_TEXT, 0, I64MAX),
	/* replication */
	CK_I64("replica.lag.time.max.ms", replica_lag_time_max_ms, "30000", 1, I64MAX),
	CK_I32("replica.fetch.max.bytes", replica_fetch_max_bytes, "1048576", 0, I32MAX),
	CK_I32("replica.fetch.wait.max.ms", replica_fetch_wait_max_ms, "500", 0, I32MAX),
	CK_I32("replica.fetch.min.bytes", replica_fetch_min_bytes, "1", 0, I32MAX),
	CK_I32("replica.fetch.response.max.bytes", replica_fetch_response_max_bytes, "10485760",
	       0, I32MAX),
	CK_I32("replica.fetch.backoff.ms", replica_fetch_backoff_ms, "1000", 0, I32MAX),
	CK_I32("replica.socket.timeout.ms", replica_socket_timeout_ms, "30000", 1, I32MAX),
	CK_I64("replica.high.watermark.checkpoint.interval.ms",
	       replica_high_watermark_checkpoint_interval_ms, "5000", 1, I64MAX),
	CK_BOOL("unclean.leader.election.enable", unclean_leader_election_enable, "false"),
	/* ZooKeeper */
	CK_LIST("zookeeper.connect", zookeeper_connect, "", config_check_zookeeper),
	CK_I32("zookeeper.session.timeout.ms", zookeeper_session_timeout_ms, "18000", 1, I32MAX),
	CK_I32("zookeeper.connection.timeout.ms", zookeeper_connection_timeout_ms, NULL, 1, I32MAX),
	/* consumer groups and committed offsets */
	CK_I32("group.initial.rebalance.delay.ms", group_initial_rebalance_delay_ms, "3000", 0, I32MAX),
	CK_I32("group.min.session.timeout.ms", group_min_session_timeout_ms, "6000", 1, I32MAX),
	CK_I32("group.max.session.timeout.ms", group_max_session_timeout_ms, "1800000", 1, I32MAX),
	CK_I32("group.max.size", group_max_size, "2147483647", 1, I32MAX),
	CK_I32("offsets.topic.num.partitions", offsets_topic_num_partitions, "50", 1, I32MAX),
	CK_I32("offsets.topic.replication.factor", offsets_topic_replication_factor, "3", 1, INT16_MAX),
	CK_I32("offsets.topic.segment.bytes", offsets_topic_segment_bytes, "104857600", 1, I32MAX),
	CK_I32("offsets.retention.minutes", offsets_retention_minutes, "10080", 1, I32MAX),
	CK_I64("offsets.retention.check.interval.ms", offsets_retention_check_interval_ms, "600000",
	       1, I64MAX),
	CK_I32("offsets.commit.timeout.ms", offsets_commit_timeout_ms, "5000", 1, I32MAX),
	CK_I32("offset.metadata.max.bytes", offset_metadata_max_bytes, "4096", 0, I32MAX),
};

_Static_assert(SL_ARRAY_LEN(config_keys) <= CONFIG_KEYS_MAX, "raise CONFIG_KEYS_MAX");

/*
 * Real Kafka broker keys that change nothing in Sluice (its threads, the
 * transaction log it does not have, JVM-side tuning). They are accepted with
 * a warning so an existing server.properties loads. A trailing '*' matches a
 * prefix. Security keys are deliberately absent (config.h).
 */
static const char *const config_ignored[] = {
	"num.network.threads", "num.io.threads", "num.recovery.threads.per.data.dir",
	"num.replica.fetchers", "num.replica.alter.log.dirs.threads", "background.threads",
	"log.cleaner.threads", "log.cleaner.dedupe.buffer.size", "log.cleaner.io.buffer.size",
	"log.cleaner.io.buffer.load.factor", "log.cleaner.io.max.bytes.per.second",
	"log.cleaner.backoff.ms", "log.cleaner.min.compaction.lag.ms",
	"log.cleaner.max.compaction.lag.ms", "log.roll.jitter.ms", "log.roll.jitter.hours",
	"log.segment.delete.delay.ms", "log.flush.start.offset.checkpoint.interval.ms",
	"log.message.format.version", "log.message.downconversion.enable",
	"transaction.state.log.*", "transactional.id.expiration.ms", "transaction.max.timeout.ms",
	"transaction.abort.timed.out.transaction.cleanup.interval.ms",
	"transaction.remove.expired.transaction.cleanup.interval.ms",
	"auto.leader.rebalance.enable", "leader.imbalance.per.broker.percentage",
	"leader.imbalance.check.interval.seconds", "zookeeper.max.in.flight.requests",
	"zookeeper.sync.time.ms", "fetch.purgatory.purge.interval.requests",
	"producer.purgatory.purge.interval.requests",
	"delete.records.purgatory.purge.interval.requests", "replica.socket.receive.buffer.bytes",
	"offsets.load.buffer.size", "offsets.commit.required.acks",
	"offsets.topic.compression.codec", "max.incremental.fetch.session.cache.slots",
	"inter.broker.protocol.version", "inter.broker.listener.name",
	"listener.security.protocol.map", "broker.id.generation.enable", "reserved.broker.max.id",
	"metric.reporters", "metrics.num.samples", "metrics.sample.window.ms",
	"metrics.recording.level", "kafka.metrics.reporters", "kafka.metrics.polling.interval.secs",
	"quota.window.num", "quota.window.size.seconds",
};

/* ---------------------------------------------------------------- helpers */

static void config_errf(char *err, size_t err_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes one error line into err[err_len] (if the caller gave a buffer). */
static void config_errf(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

static bool config_is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\f' || ch == '\n' || ch == '\r' || ch == '\v';
}

/* Index of key `name` in config_keys[], or -1. */
static int config_key_index(const char *name)
{
	for (int i = 0; i < (int)SL_ARRAY_LEN(config_keys); i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return i;
	return -1;
}

/* Index of a key that must exist (our own code names it). */
static int config_key_must(const char *name)
{
	int i = config_key_index(name);

	SL_ASSERT(i >= 0);
	return i;
}

static bool config_key_ignored(const char *name)
{
	for (size_t i = 0; i < SL_ARRAY_LEN(config_ignored); i++) {
		const char *pat = config_ignored[i];
		size_t n = strlen(pat);

		if (n > 0 && pat[n - 1] == '*') {
			if (strncmp(name, pat, n - 1) == 0)
				return true;
		} else if (strcmp(name, pat) == 0) {
			return true;
		}
	}
	return false;
}

static bool config_bit_get(const uint64_t *bits, int i)
{
	SL_ASSERT(i >= 0 && i < CONFIG_KEYS_MAX);
	return (bits[i / 64] >> (i % 64)) & 1u;
}

static void config_bit_set(uint64_t *bits, int i)
{
	SL_ASSERT(i >= 0 && i < CONFIG_KEYS_MAX);
	bits[i / 64] |= (uint64_t)1 << (i % 64);
}

/* True when key `name` was given by a file or --set. */
static bool config_given(const struct config *c, const char *name)
{
	return config_bit_get(c->set_bits, config_key_must(name));
}

static void config_mark_derived(struct config *c, const char *name)
{
	config_bit_set(c->derived_bits, config_key_must(name));
}

static void *config_field(struct config *c, const struct config_key *k)
{
	return (char *)c + k->offset;
}

static const void *config_field_const(const struct config *c, const struct config_key *k)
{
	return (const char *)c + k->offset;
}

/* Size of the field each type stores (invariant 1). */
static size_t config_type_size(enum config_type t)
{
	switch (t) {
	case CONFIG_T_INT32: return sizeof(int32_t);
	case CONFIG_T_INT64: return sizeof(int64_t);
	case CONFIG_T_BOOL: return sizeof(bool);
	case CONFIG_T_DOUBLE: return sizeof(double);
	case CONFIG_T_STRING: return sizeof(char *);
	case CONFIG_T_LIST: return sizeof(char *);
	case CONFIG_T_ENUM: return sizeof(int);
	case CONFIG_T_FLAGS: return sizeof(uint32_t);
	}
	return 0;
}

/* Replaces the string field of `k` with `s` (ownership moves in). */
static void config_string_put(struct config *c, const struct config_key *k, char *s)
{
	char **field = config_field(c, k);

	SL_ASSERT(k->type == CONFIG_T_STRING || k->type == CONFIG_T_LIST);
	free(*field);
	*field = s;
}

/* ----------------------------------------------------------- number parsing */

/* True when s is one or more decimal digits and nothing else. */
static bool config_parse_digits_only(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/*
 * Parses a whole decimal integer (optional sign, digits only, as Java's
 * Long.parseLong). Returns SL_OK, SL_EINVAL (not an integer) or SL_ERANGE
 * (does not fit in int64).
 */
static enum sl_err config_parse_i64(const char *s, int64_t *out)
{
	uint64_t limit = (uint64_t)INT64_MAX;
	uint64_t v = 0;
	bool neg = false;
	size_t i = 0;

	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i = 1;
	}
	if (s[i] == '\0')
		return SL_EINVAL;
	if (neg)
		limit += 1;  /* |INT64_MIN| */
	for (; s[i] != '\0'; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return SL_EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (limit - d) / 10)
			return config_parse_digits_only(s + i) ? SL_ERANGE : SL_EINVAL;
		v = v * 10 + d;
	}
	*out = (neg && v > 0) ? -(int64_t)(v - 1) - 1 : (int64_t)v;
	return SL_OK;
}

/* ------------------------------------------------------------- comma lists */

/*
 * Iterates the non-empty, trimmed items of a comma list. *cursor starts at
 * the list and becomes NULL at the end. Each call passes at least one comma
 * or ends, so a list of n bytes takes at most n + 1 calls.
 */
static bool config_item_next(const char **cursor, const char **item, size_t *item_len)
{
	const char *p = *cursor;

	while (p != NULL) {
		const char *comma = strchr(p, ',');
		const char *a = p;
		const char *b = comma != NULL ? comma : p + strlen(p);

		while (a < b && config_is_ws(*a))
			a++;
		while (b > a && config_is_ws(b[-1]))
			b--;
		p = comma != NULL ? comma + 1 : NULL;
		if (b > a) {
			*cursor = p;
			*item = a;
			*item_len = (size_t)(b - a);
			return true;
		}
	}
	*cursor = NULL;
	return false;
}

int config_list_count(const char *list)
{
	const char *cur = list, *item;
	size_t n;
	int count = 0;

	while (config_item_next(&cur, &item, &n))
		count++;
	SL_ASSERT(count >= 0);
	return count;
}

/* Finds item `index` of a comma list; false if there is none. */
static bool config_item_find(const char *list, int index, const char **item, size_t *item_len)
{
	const char *cur = list;

	for (int i = 0; config_item_next(&cur, item, item_len); i++)
		if (i == index)
			return true;
	return false;
}

enum sl_err config_list_get(const char *list, int index, char *out, size_t out_len)
{
	const char *item;
	size_t n;

	SL_ASSERT(out != NULL && out_len > 0);
	if (index < 0 || !config_item_find(list, index, &item, &n))
		return SL_ENOTFOUND;
	if (n >= out_len)
		return SL_ERANGE;
	memcpy(out, item, n);
	out[n] = '\0';
	return SL_OK;
}

/*
 * Normalises a comma list (config.h invariant 4) into a new heap string.
 * Returns SL_OK with *out owned by the caller, or SL_ENOMEM.
 */
static enum sl_err config_list_normalize(const char *value, char **out)
{
	size_t cap = strlen(value) + 1;
	char *s = malloc(cap);
	const char *cur = value, *item;
	size_t n, len = 0;

	if (s == NULL)
		return SL_ENOMEM;
	while (config_item_next(&cur, &item, &n)) {
		if (len > 0)
			s[len++] = ',';
		memcpy(s + len, item, n);
		len += n;
	}
	SL_ASSERT(len < cap);
	s[len] = '\0';
	*out = s;
	return SL_OK;
}

/* -------------------------------------------------------- hosts and ports */

static bool config_host_char_ok(char ch, bool bracketed)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	if (ch == '-' || ch == '.' || ch == '_' || ch == '%')
		return true;
	return bracketed && ch == ':';
}

/* Parses a port of 1..5 digits, 0..65535, from s[0, n); -1 if malformed. */
static int32_t config_port_parse(const char *s, size_t n)
{
	int32_t v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= 65535 ? v : -1;
}

/*
 * Splits "host:port" or "[v6addr]:port" (s[0, n)) into host (brackets
 * removed, NUL-terminated in host[host_len]) and *port. With port_optional a
 * bare "host" is accepted and *port is -1. Returns SL_OK; SL_EINVAL with
 * *why; SL_ERANGE when the host does not fit.
 */
static enum sl_err config_hostport_split(const char *s, size_t n, char *host, size_t host_len,
					 int32_t *port, bool port_optional, const char **why)
{
	const char *end = s + n, *h = s, *rest;
	bool bracketed = n > 0 && s[0] == '[';
	size_t hn;

	if (bracketed) {
		const char *close = memchr(s, ']', n);

		if (close == NULL || close == s + 1) {
			*why = "bad [IPv6] host";
			return SL_EINVAL;
		}
		h = s + 1;
		hn = (size_t)(close - h);
		rest = close + 1;
	} else {
		const char *colon = memrchr(s, ':', n);

		hn = colon != NULL ? (size_t)(colon - s) : n;
		rest = colon != NULL ? colon : end;
	}
	for (size_t i = 0; i < hn; i++) {
		if (!config_host_char_ok(h[i], bracketed)) {
			*why = "invalid character in host (an IPv6 address needs [brackets])";
			return SL_EINVAL;
		}
	}
	*port = -1;
	if (rest == end && !port_optional) {
		*why = "missing :port";
		return SL_EINVAL;
	}
	if (rest != end) {
		*port = *rest == ':' ? config_port_parse(rest + 1, (size_t)(end - rest - 1)) : -1;
		if (*port < 0) {
			*why = "port must be a number in 0..65535";
			return SL_EINVAL;
		}
	}
	if (hn >= host_len) {
		*why = "host name too long";
		return SL_ERANGE;
	}
	memcpy(host, h, hn);
	host[hn] = '\0';
	return SL_OK;
}

/* Parses one listener entry s[0, n): PLAINTEXT://host:port. */
static enum sl_err config_listener_split(const char *s, size_t n, char *host, size_t host_len,
					 uint16_t *port, const char **why)
{
	const char *sep = memmem(s, n, "://", 3);
	size_t name_len;
	int32_t p;
	enum sl_err e;

	if (sep == NULL) {
		*why = "expected PLAINTEXT://host:port";
		return SL_EINVAL;
	}
	name_len = (size_t)(sep - s);
	if (name_len != 9 || strncasecmp(s, "PLAINTEXT", 9) != 0) {
		*why = "only PLAINTEXT listeners are supported";
		return SL_EINVAL;
	}
	e = config_hostport_split(sep + 3, n - name_len - 3, host, host_len, &p, false, why);
	if (e != SL_OK)
		return e;
	SL_ASSERT(p >= 0 && p <= 65535);
	*port = (uint16_t)p;
	return SL_OK;
}

int config_listener_count(const char *listeners)
{
	return config_list_count(listeners);
}

enum sl_err config_listener_parse(const char *listeners, int index, char *host, size_t host_len,
				  uint16_t *port)
{
	const char *item, *why = NULL;
	size_t n;

	SL_ASSERT(host != NULL && host_len > 0 && port != NULL);
	if (index < 0 || !config_item_find(listeners, index, &item, &n))
		return SL_ENOTFOUND;
	return config_listener_split(item, n, host, host_len, port, &why);
}

/* ------------------------------------------------------ per-key syntax checks */

/*
 * Checks a listener list. For `listeners` two entries may not share a
 * non-zero port (Kafka requires distinct ports); for `advertised.listeners`
 * the unspecified addresses 0.0.0.0 and :: are refused (not routable).
 */
static enum sl_err config_check_listener_list(const char *value, bool advertised, char *why,
					      size_t why_len)
{
	uint16_t ports[CONFIG_LIST_ITEMS_MAX];
	const char *cur = value, *item;
	size_t n;
	int count = 0;

	if (config_list_count(value) == 0) {
		snprintf(why, why_len, "no listener given (expected PLAINTEXT://host:port)");
		return SL_EINVAL;
	}
	while (config_item_next(&cur, &item, &n)) {
		char host[CONFIG_HOST_BYTES_MAX];
		const char *reason = NULL;
		uint16_t port = 0;

		if (count == CONFIG_LIST_ITEMS_MAX) {
			snprintf(why, why_len, "more than %d listeners", CONFIG_LIST_ITEMS_MAX);
			return SL_EINVAL;
		}
		if (config_listener_split(item, n, host, sizeof(host), &port, &reason) != SL_OK) {
			snprintf(why, why_len, "\"%.*s\": %s", (int)n, item, reason);
			return SL_EINVAL;
		}
		if (advertised && (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)) {
			snprintf(why, why_len, "\"%.*s\": %s cannot be advertised (not routable)",
				 (int)n, item, host);
			return SL_EINVAL;
		}
		for (int j = 0; !advertised && port != 0 && j < count; j++) {
			if (ports[j] == port) {
				snprintf(why, why_len, "\"%.*s\": port %u is already used by another listener",
					 (int)n, item, port);
				return SL_EINVAL;
			}
		}
		ports[count++] = port;
	}
	return SL_OK;
}

static enum sl_err config_check_listeners(const char *value, char *why, size_t why_len)
{
	return config_check_listener_list(value, false, why, why_len);
}

static enum sl_err config_check_advertised(const char *value, char *why, size_t why_len)
{
	return config_check_listener_list(value, true, why, why_len);
}

/* log.dirs / log.dir: at least one directory, at most the list bound, no repeats. */
static enum sl_err config_check_dirs(const char *value, char *why, size_t why_len)
{
	const char *items[CONFIG_LIST_ITEMS_MAX];
	size_t lens[CONFIG_LIST_ITEMS_MAX];
	const char *cur = value, *item;
	size_t n;
	int count = 0;

	while (config_item_next(&cur, &item, &n)) {
		if (count == CONFIG_LIST_ITEMS_MAX) {
			snprintf(why, why_len, "more than %d directories", CONFIG_LIST_ITEMS_MAX);
			return SL_EINVAL;
		}
		for (int j = 0; j < count; j++) {
			if (lens[j] == n && memcmp(items[j], item, n) == 0) {
				snprintf(why, why_len, "directory \"%.*s\" is listed twice", (int)n, item);
				return SL_EINVAL;
			}
		}
		items[count] = item;
		lens[count++] = n;
	}
	if (count == 0) {
		snprintf(why, why_len, "no directory given");
		return SL_EINVAL;
	}
	return SL_OK;
}

/* A ZooKeeper chroot: "/a/b" — starts with '/', no empty segment, no trailing '/'. */
static bool config_chroot_ok(const char *s, size_t n)
{
	if (n == 0 || s[0] != '/')
		return false;
	if (n == 1)
		return true;
	if (s[n - 1] == '/')
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i] == '/' && s[i - 1] == '/')
			return false;
	return true;
}

/*
 * zookeeper.connect: "" (embedded mode) or host[:port],...[/chroot]; the
 * chroot may only follow the last host, ports are 1..65535.
 */
static enum sl_err config_check_zookeeper(const char *value, char *why, size_t why_len)
{
	const char *cur = value, *item;
	size_t n;

	while (config_item_next(&cur, &item, &n)) {
		const char *peek = cur, *next_item, *reason = NULL;
		const char *slash = memchr(item, '/', n);
		size_t host_n = slash != NULL ? (size_t)(slash - item) : n, next_n;
		bool last = !config_item_next(&peek, &next_item, &next_n);
		char host[CONFIG_HOST_BYTES_MAX];
		int32_t port = -1;

		if (slash != NULL && (!last || !config_chroot_ok(slash, n - host_n))) {
			snprintf(why, why_len, "\"%.*s\": a chroot path (/a/b) may only follow the last host",
				 (int)n, item);
			return SL_EINVAL;
		}
		if (host_n == 0 || config_hostport_split(item, host_n, host, sizeof(host), &port, true,
							 &reason) != SL_OK || host[0] == '\0' || port == 0) {
			snprintf(why, why_len, "\"%.*s\": expected host[:port] with port 1..65535",
				 (int)n, item);
			return SL_EINVAL;
		}
	}
	return SL_OK;
}

/* ----------------------------------------------------------- value storing */

/* The "out of range" error for integer key k, naming the allowed range. */
static void config_err_range(char *err, size_t err_len, const char *where,
			     const struct config_key *k, const char *value)
{
	bool is32 = k->type == CONFIG_T_INT32;
	int64_t tmin = is32 ? INT32_MIN : INT64_MIN;
	int64_t tmax = is32 ? INT32_MAX : INT64_MAX;

	if (k->min == tmin && k->max == tmax)
		config_errf(err, err_len, "config: %s%s: \"%s\" is out of range (a %s-bit integer)",
			    where, k->name, value, is32 ? "32" : "64");
	else if (k->max == tmax)
		config_errf(err, err_len, "config: %s%s: \"%s\" is out of range (at least %" PRId64 ")",
			    where, k->name, value, k->min);
	else
		config_errf(err, err_len, "config: %s%s: \"%s\" is out of range [%" PRId64 ", %" PRId64 "]",
			    where, k->name, value, k->min, k->max);
}

static enum sl_err config_store_int(struct config *c, const struct config_key *k, const char *value,
				    const char *where, char *err, size_t err_len)
{
	int64_t v = 0;
	enum sl_err e = config_parse_i64(value, &v);

	if (e == SL_EINVAL) {
		config_errf(err, err_len, "config: %s%s: \"%s\" is not an integer", where, k->name, value);
		return SL_EINVAL;
	}
	if (e == SL_ERANGE || v < k->min || v > k->max) {
		config_err_range(err, err_len, where, k, value);
		return SL_ERANGE;
	}
	if (k->type == CONFIG_T_INT32)
		*(int32_t *)config_field(c, k) = (int32_t)v;
	else
		*(int64_t *)config_field(c, k) = v;
	return SL_OK;
}

static enum sl_err config_store_bool(struct config *c, const struct config_key *k, const char *value,
				     const char *where, char *err, size_t err_len)
{
	bool *field = config_field(c, k);

	if (strcasecmp(value, "true") == 0) {
		*field = true;
	} else if (strcasecmp(value, "false") == 0) {
		*field = false;
	} else {
		config_errf(err, err_len, "config: %s%s: \"%s\" is not a boolean (true or false)",
			    where, k->name, value);
		return SL_EINVAL;
	}
	return SL_OK;
}

/* Decimal floating point only: no hex, no NaN/Infinity (Kafka's ranges reject those too). */
static enum sl_err config_store_double(struct config *c, const struct config_key *k, const char *value,
				       const char *where, char *err, size_t err_len)
{
	char *end = NULL;
	double v;

	if (value[0] == '\0' || strspn(value, "0123456789+-.eE") != strlen(value)) {
		config_errf(err, err_len, "config: %s%s: \"%s\" is not a number", where, k->name, value);
		return SL_EINVAL;
	}
	v = strtod(value, &end);
	if (end == value || *end != '\0') {
		config_errf(err, err_len, "config: %s%s: \"%s\" is not a number", where, k->name, value);
		return SL_EINVAL;
	}
	if (!isfinite(v) || v < k->dmin || v > k->dmax) {
		config_errf(err, err_len, "config: %s%s: \"%s\" is out of range [%g, %g]",
			    where, k->name, value, k->dmin, k->dmax);
		return SL_ERANGE;
	}
	*(double *)config_field(c, k) = v;
	return SL_OK;
}

/* Index of s[0, n) in k->names (exact, case-sensitive as Kafka), or -1. */
static int config_name_index(const struct config_key *k, const char *s, size_t n)
{
	for (int i = 0; i < k->names_count; i++)
		if (strlen(k->names[i]) == n && memcmp(k->names[i], s, n) == 0)
			return i;
	return -1;
}

/* "a, b, c" from k->names, for error messages. */
static void config_names_join(const struct config_key *k, char *out, size_t out_len)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < k->names_count && len < out_len; i++) {
		int w = snprintf(out + len, out_len - len, "%s%s", i > 0 ? ", " : "", k->names[i]);

		if (w < 0)
			break;
		len += (size_t)w;
	}
}

static enum sl_err config_store_enum(struct config *c, const struct config_key *k, const char *value,
				     const char *where, char *err, size_t err_len)
{
	int v = config_name_index(k, value, strlen(value));
	char names[256];

	if (v < 0) {
		config_names_join(k, names, sizeof(names));
		config_errf(err, err_len, "config: %s%s: \"%s\" is not one of %s",
			    where, k->name, value, names);
		return SL_EINVAL;
	}
	memcpy(config_field(c, k), &v, sizeof(v));
	return SL_OK;
}

/* A comma list of names; an empty list is accepted and stores 0 (as Kafka). */
static enum sl_err config_store_flags(struct config *c, const struct config_key *k, const char *value,
				      const char *where, char *err, size_t err_len)
{
	const char *cur = value, *item;
	uint32_t mask = 0;
	char names[256];
	size_t n;

	SL_ASSERT(k->names_count <= 32);
	while (config_item_next(&cur, &item, &n)) {
		int i = config_name_index(k, item, n);

		if (i < 0) {
			config_names_join(k, names, sizeof(names));
			config_errf(err, err_len, "config: %s%s: \"%.*s\" is not one of %s",
				    where, k->name, (int)n, item, names);
			return SL_EINVAL;
		}
		mask |= 1u << i;
	}
	*(uint32_t *)config_field(c, k) = mask;
	return SL_OK;
}

/* STRING and LIST keys: copy (LIST: normalise), run the key's check, replace. */
static enum sl_err config_store_text(struct config *c, const struct config_key *k, const char *value,
				     const char *where, char *err, size_t err_len)
{
	char why[512];
	char *s = NULL;
	enum sl_err e;

	SL_ASSERT(k->type == CONFIG_T_STRING || k->type == CONFIG_T_LIST);
	SL_ASSERT(k->check == NULL || k->type == CONFIG_T_LIST);

	if (k->type == CONFIG_T_LIST) {
		e = config_list_normalize(value, &s);
	} else {
		s = strdup(value);
		e = s != NULL ? SL_OK : SL_ENOMEM;
	}
	if (e != SL_OK) {
		config_errf(err, err_len, "config: %s%s: out of memory", where, k->name);
		return e;
	}
	if (k->check != NULL) {
		e = k->check(s, why, sizeof(why));
		if (e != SL_OK) {
			config_errf(err, err_len, "config: %s%s: %s", where, k->name, why);
			free(s);
			return e;
		}
	}
	config_string_put(c, k, s);
	return SL_OK;
}

/* Parses `value` for key k and stores it (invariant 3). */
static enum sl_err config_store(struct config *c, const struct config_key *k, const char *value,
				const char *where, char *err, size_t err_len)
{
	switch (k->type) {
	case CONFIG_T_INT32:
	case CONFIG_T_INT64:
		return config_store_int(c, k, value, where, err, err_len);
	case CONFIG_T_BOOL:
		return config_store_bool(c, k, value, where, err, err_len);
	case CONFIG_T_DOUBLE:
		return config_store_double(c, k, value, where, err, err_len);
	case CONFIG_T_STRING:
	case CONFIG_T_LIST:
		return config_store_text(c, k, value, where, err, err_len);
	case CONFIG_T_ENUM:
		return config_store_enum(c, k, value, where, err, err_len);
	case CONFIG_T_FLAGS:
		return config_store_flags(c, k, value, where, err, err_len);
	}
	SL_ASSERT(!"unknown config type");
	return SL_EINVAL;
}

/*
 * Applies key=value coming from `where` ("path:12: " or "--set "). Unknown
 * keys fail; keys on the ignored list log a warning and succeed.
 */
static enum sl_err config_apply(struct config *c, const char *key, const char *value,
				const char *where, char *err, size_t err_len)
{
	enum sl_err e;
	int i;

	SL_ASSERT(c != NULL && key != NULL && value != NULL && where != NULL);
	if (c->init_err != SL_OK) {
		config_errf(err, err_len, "config: out of memory while setting defaults");
		return c->init_err;
	}
	if (key[0] == '\0') {
		config_errf(err, err_len, "config: %smissing key before \"%s\"", where, value);
		return SL_EINVAL;
	}
	i = config_key_index(key);
	if (i < 0) {
		if (config_key_ignored(key)) {
			LOG_W(LOG_NO_SHARD, "config: %signored: %s has no effect in Sluice", where, key);
			return SL_OK;
		}
		config_errf(err, err_len, "config: %s%s: unknown key", where, key);
		return SL_EINVAL;
	}
	e = config_store(c, &config_keys[i], value, where, err, err_len);
	if (e == SL_OK)
		config_bit_set(c->set_bits, i);
	return e;
}

/* -------------------------------------------------------- init, set, free */

void config_init(struct config *c)
{
	char err[256];

	SL_ASSERT(c != NULL);
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < SL_ARRAY_LEN(config_keys); i++) {
		const struct config_key *k = &config_keys[i];
		enum sl_err e;

		SL_ASSERT(k->size == config_type_size(k->type));            /* invariant 1 */
		SL_ASSERT(k->offset + k->size <= offsetof(struct config, set_bits));
		SL_ASSERT(config_key_index(k->name) == (int)i);            /* no duplicates */
		if (k->def == NULL)
			continue;
		e = config_store(c, k, k->def, "default ", err, sizeof(err));
		if (e == SL_ENOMEM) {
			c->init_err = SL_ENOMEM;
			continue;
		}
		SL_ASSERT(e == SL_OK);                                       /* invariant 2 */
	}
}

enum sl_err config_set(struct config *c, const char *key, const char *value,
		       char *err, size_t err_len)
{
	char k[CONFIG_KEY_BYTES_MAX];
	const char *ka = key, *kb, *va = value, *vb;
	char *v;
	enum sl_err e;

	SL_ASSERT(c != NULL && key != NULL && value != NULL);
	kb = key + strlen(key);
	vb = value + strlen(value);
	while (ka < kb && config_is_ws(*ka))
		ka++;
	while (kb > ka && config_is_ws(kb[-1]))
		kb--;
	while (va < vb && config_is_ws(*va))
		va++;
	while (vb > va && config_is_ws(vb[-1]))
		vb--;
	if ((size_t)(kb - ka) >= sizeof(k) || (size_t)(vb - va) > CONFIG_LINE_BYTES_MAX) {
		config_errf(err, err_len, "config: --set %.*s: key or value too long",
			    (int)SL_MIN(kb - ka, 64), ka);
		return SL_EINVAL;
	}
	memcpy(k, ka, (size_t)(kb - ka));
	k[kb - ka] = '\0';
	v = strndup(va, (size_t)(vb - va));
	if (v == NULL) {
		config_errf(err, err_len, "config: --set %s: out of memory", k);
		return SL_ENOMEM;
	}
	e = config_apply(c, k, v, "--set ", err, err_len);
	free(v);
	return e;
}

void config_free(struct config *c)
{
	SL_ASSERT(c != NULL);
	for (size_t i = 0; i < SL_ARRAY_LEN(config_keys); i++) {
		const struct config_key *k = &config_keys[i];

		if (k->type == CONFIG_T_STRING || k->type == CONFIG_T_LIST)
			config_string_put(c, k, NULL);
	}
}

/* ------------------------------------------------------ .properties parser */

struct config_parse {
	struct config *c;
	const char *path;
	const char *buf;       /* the whole file, NUL-terminated */
	size_t len;
	size_t pos;            /* start of the next natural line */
	int line_no;           /* number of the last natural line read */
	char *logical;         /* raw logical line, CONFIG_LINE_BYTES_MAX + 1 */
	size_t logical_len;
	char *value;           /* decoded value, CONFIG_LINE_BYTES_MAX + 1 */
	char *err;
	size_t err_len;
};

/* Whitespace as java.util.Properties sees it inside a line. */
static bool config_is_prop_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\f';
}

static size_t config_skip_prop_ws(const char *buf, size_t a, size_t b)
{
	while (a < b && config_is_prop_ws(buf[a]))
		a++;
	return a;
}

/*
 * Returns the natural line at p->pos as [*a, *b) and moves past its
 * terminator (\n, \r or \r\n). Consumes at least one byte (invariant 4).
 */
static void config_line_next(struct config_parse *p, size_t *a, size_t *b)
{
	size_t start = p->pos, i = p->pos;

	SL_ASSERT(p->pos < p->len);
	while (i < p->len && p->buf[i] != '\n' && p->buf[i] != '\r')
		i++;
	*a = start;
	*b = i;
	if (i < p->len && p->buf[i] == '\r')
		i++;
	if (i < p->len && p->buf[i] == '\n')
		i++;
	p->pos = i;
	p->line_no++;
	SL_ASSERT(p->pos > start && p->pos <= p->len);
}

/*
 * Joins natural line [a, b) and its continuations into p->logical, escapes
 * kept: a line ending in an odd number of backslashes continues on the next
 * one, whose leading whitespace is dropped. Returns SL_OK or SL_EINVAL (the
 * logical line is longer than CONFIG_LINE_BYTES_MAX).
 */
static enum sl_err config_logical_read(struct config_parse *p, size_t a, size_t b)
{
	p->logical_len = 0;
	for (;;) {  /* each turn consumes one natural line: bounded by the file */
		size_t bs = 0, end;
		bool cont;

		while (b - bs > a && p->buf[b - bs - 1] == '\\')
			bs++;
		cont = (bs % 2) == 1;
		end = cont ? b - 1 : b;
		if (p->logical_len + (end - a) > CONFIG_LINE_BYTES_MAX)
			return SL_EINVAL;
		memcpy(p->logical + p->logical_len, p->buf + a, end - a);
		p->logical_len += end - a;
		if (!cont || p->pos >= p->len)
			break;
		config_line_next(p, &a, &b);
		a = config_skip_prop_ws(p->buf, a, b);
	}
	p->logical[p->logical_len] = '\0';
	return SL_OK;
}

static int config_hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The 4 hex digits at s (n bytes available) as a number, or -1. */
static int32_t config_hex4(const char *s, size_t n)
{
	int32_t v = 0;

	if (n < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int d = config_hex_digit(s[i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* UTF-8 of code point cp (1..0x10FFFF, no surrogates) into out; returns the byte count. */
static size_t config_utf8_put(char *out, uint32_t cp)
{
	SL_ASSERT(cp > 0 && cp <= 0x10FFFF);
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * Decodes a \uXXXX escape whose hex digits start at s (n bytes available),
 * joining a UTF-16 surrogate pair written as two escapes. Returns the code
 * point and the bytes consumed in *used, or -1 with *why.
 */
static int32_t config_unicode_escape(const char *s, size_t n, size_t *used, const char **why)
{
	int32_t cp = config_hex4(s, n), lo = -1;

	*used = 4;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (n >= 10 && s[4] == '\\' && s[5] == 'u')
			lo = config_hex4(s + 6, n - 6);
		cp = (lo >= 0xDC00 && lo <= 0xDFFF) ? 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00) : -2;
		*used = 10;
	} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
		cp = -2;
	}
	if (cp == -1)
		*why = "malformed \\uXXXX escape";
	else if (cp == -2)
		*why = "unpaired UTF-16 surrogate in \\u escape";
	else if (cp == 0)
		*why = "\\u0000 is not allowed";
	return cp > 0 ? cp : -1;
}

/*
 * Decodes the escapes of s[0, n) into out[cap], NUL-terminated: \t \n \r
 * \f, \uXXXX (as UTF-8), \<other> = <other>; a lone trailing backslash is
 * dropped. With trim_tail, trailing unescaped whitespace is cut. Returns
 * SL_OK; SL_EINVAL with *why (bad escape); SL_ERANGE (does not fit).
 */
static enum sl_err config_unescape(const char *s, size_t n, char *out, size_t cap, bool trim_tail,
				   const char **why)
{
	size_t i = 0, len = 0, keep = 0;

	while (i < n) {  /* each turn consumes >= 1 input byte */
		char tmp[4];
		size_t tn = 1, used = 0;
		bool escaped = s[i] == '\\';

		tmp[0] = s[i];
		if (escaped && i + 1 >= n) {
			i++;
			continue;
		}
		if (escaped) {
			char ch = s[i + 1];
			int32_t cp;

			i += 2;
			tmp[0] = ch == 't' ? '\t' : ch == 'n' ? '\n' : ch == 'r' ? '\r' : ch == 'f' ? '\f' : ch;
			if (ch == 'u') {
				cp = config_unicode_escape(s + i, n - i, &used, why);
				if (cp < 0)
					return SL_EINVAL;
				i += used;
				tn = config_utf8_put(tmp, (uint32_t)cp);
			}
		} else {
			i++;
		}
		if (len + tn >= cap) {
			*why = "too long";
			return SL_ERANGE;
		}
		memcpy(out + len, tmp, tn);
		len += tn;
		if (escaped || !config_is_prop_ws(tmp[0]))
			keep = len;
	}
	if (trim_tail)
		len = keep;
	out[len] = '\0';
	return SL_OK;
}

/*
 * Splits p->logical into key and value (Java rules: the key ends at the first
 * unescaped '=', ':' or whitespace; then whitespace, at most one '=' or ':',
 * whitespace), decodes both and applies them.
 */
static enum sl_err config_logical_apply(struct config_parse *p, int line)
{
	char key[CONFIG_KEY_BYTES_MAX];
	char where[PATH_MAX + 32];
	const char *s = p->logical, *why = "bad escape";
	size_t n = p->logical_len, i = 0, key_end;
	enum sl_err e;

	SL_ASSERT(n <= CONFIG_LINE_BYTES_MAX && s[n] == '\0');
	while (i < n && s[i] != '=' && s[i] != ':' && !config_is_prop_ws(s[i]))
		i += s[i] == '\\' ? 2 : 1;
	key_end = SL_MIN(i, n);
	i = config_skip_prop_ws(s, key_end, n);
	if (i < n && (s[i] == '=' || s[i] == ':'))
		i = config_skip_prop_ws(s, i + 1, n);
	snprintf(where, sizeof(where), "%s:%d: ", p->path, line);
	e = config_unescape(s, key_end, key, sizeof(key), false, &why);
	if (e != SL_OK) {
		config_errf(p->err, p->err_len, "config: %s%.*s: %s", where, (int)SL_MIN(key_end, 64), s,
			    e == SL_ERANGE ? "key too long" : why);
		return SL_EINVAL;
	}
	e = config_unescape(s + i, n - i, p->value, CONFIG_LINE_BYTES_MAX + 1, true, &why);
	if (e != SL_OK) {
		config_errf(p->err, p->err_len, "config: %s%s: %s", where, key, why);
		return SL_EINVAL;
	}
	return config_apply(p->c, key, p->value, where, p->err, p->err_len);
}

/* Walks the file: skips blank and comment lines, applies each logical line. */
static enum sl_err config_parse_run(struct config_parse *p)
{
	while (p->pos < p->len) {  /* each turn consumes >= 1 byte (config_line_next) */
		size_t a, b;
		int first;
		enum sl_err e;

		config_line_next(p, &a, &b);
		first = p->line_no;
		a = config_skip_prop_ws(p->buf, a, b);
		if (a == b || p->buf[a] == '#' || p->buf[a] == '!')
			continue;
		if (config_logical_read(p, a, b) != SL_OK) {
			config_errf(p->err, p->err_len, "config: %s:%d: line longer than %u bytes",
				    p->path, first, CONFIG_LINE_BYTES_MAX);
			return SL_EINVAL;
		}
		e = config_logical_apply(p, first);
		if (e != SL_OK)
			return e;
	}
	return SL_OK;
}

/*
 * Reads the regular file at `path` (at most CONFIG_FILE_BYTES_MAX bytes)
 * into a new NUL-terminated heap buffer. Returns SL_OK, SL_ENOTFOUND,
 * SL_EIO or SL_ENOMEM with `err` set.
 */
static enum sl_err config_file_read(const char *path, char **buf_out, size_t *len_out,
				    char *err, size_t err_len)
{
	char ebuf[128];
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	enum sl_err e = SL_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int en = errno;

		config_errf(err, err_len, "config: %s: %s", path, strerror_r(en, ebuf, sizeof(ebuf)));
		return en == ENOENT ? SL_ENOTFOUND : SL_EIO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_BYTES_MAX) {
		config_errf(err, err_len, "config: %s: not a regular file of at most %u bytes",
			    path, CONFIG_FILE_BYTES_MAX);
		e = SL_EIO;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		config_errf(err, err_len, "config: %s: out of memory", path);
		e = SL_ENOMEM;
		goto out;
	}
	for (int tries = 0; len < (size_t)st.st_size && tries < 1000; tries++) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			config_errf(err, err_len, "config: %s: %s", path,
				    strerror_r(errno, ebuf, sizeof(ebuf)));
			e = SL_EIO;
			goto out;
		}
		if (r == 0)
			break;  /* the file shrank while we read it */
		len += (size_t)r;
	}
	buf[len] = '\0';
out:
	close(fd);
	if (e != SL_OK) {
		free(buf);
		return e;
	}
	*buf_out = buf;
	*len_out = len;
	return SL_OK;
}

enum sl_err config_load_file(struct config *c, const char *path, char *err, size_t err_len)
{
	struct config_parse p = { .c = c, .path = path, .err = err, .err_len = err_len };
	char *buf = NULL;
	const char *nul;
	enum sl_err e;

	SL_ASSERT(c != NULL && path != NULL);
	if (c->init_err != SL_OK) {
		config_errf(err, err_len, "config: out of memory while setting defaults");
		return c->init_err;
	}
	e = config_file_read(path, &buf, &p.len, err, err_len);
	if (e != SL_OK)
		return e;
	p.buf = buf;
	p.logical = malloc(2 * ((size_t)CONFIG_LINE_BYTES_MAX + 1));
	if (p.logical == NULL) {
		config_errf(err, err_len, "config: %s: out of memory", path);
		e = SL_ENOMEM;
		goto out;
	}
	p.value = p.logical + CONFIG_LINE_BYTES_MAX + 1;
	nul = memchr(buf, '\0', p.len);
	if (nul != NULL) {
		int line = 1;

		for (const char *q = buf; q < nul; q++)
			line += *q == '\n';
		config_errf(err, err_len, "config: %s:%d: NUL byte in file", path, line);
		e = SL_EINVAL;
		goto out;
	}
	e = config_parse_run(&p);
out:
	free(p.logical);
	free(buf);
	return e;
}

/* ------------------------------------------------------------ config_finish */

/* log.retention.ms > .minutes > .hours; negative = unlimited (-1); 0 refused. */
static enum sl_err config_resolve_retention(struct config *c, char *err, size_t err_len)
{
	const char *src = "log.retention.ms";
	int64_t ms = c->log_retention_ms;

	if (!config_given(c, "log.retention.ms")) {
		if (config_given(c, "log.retention.minutes")) {
			src = "log.retention.minutes";
			ms = (int64_t)c->log_retention_minutes * 60 * 1000;
		} else {
			src = "log.retention.hours";
			ms = (int64_t)c->log_retention_hours * 60 * 60 * 1000;
		}
		config_mark_derived(c, "log.retention.ms");
	}
	if (ms < 0)
		ms = -1;
	if (ms == 0) {
		config_errf(err, err_len, "config: %s: a retention of 0 ms is not allowed; "
			    "use -1 for unlimited or a positive value", src);
		return SL_ERANGE;
	}
	c->log_retention_ms = ms;
	return SL_OK;
}

/* The numeric fallbacks of config.h invariant 3. Cannot fail. */
static void config_resolve_numbers(struct config *c)
{
	if (!config_given(c, "log.roll.ms")) {
		c->log_roll_ms = (int64_t)c->log_roll_hours * 60 * 60 * 1000;
		config_mark_derived(c, "log.roll.ms");
	}
	if (!config_given(c, "log.flush.interval.ms")) {
		c->log_flush_interval_ms = c->log_flush_scheduler_interval_ms;
		config_mark_derived(c, "log.flush.interval.ms");
	}
	if (!config_given(c, "zookeeper.connection.timeout.ms")) {
		c->zookeeper_connection_timeout_ms = c->zookeeper_session_timeout_ms;
		config_mark_derived(c, "zookeeper.connection.timeout.ms");
	}
	if (c->log_message_timestamp_before_max_ms == INT64_MAX &&
	    c->log_message_timestamp_difference_max_ms != INT64_MAX) {
		c->log_message_timestamp_before_max_ms = c->log_message_timestamp_difference_max_ms;
		config_mark_derived(c, "log.message.timestamp.before.max.ms");
	}
	if (c->log_message_timestamp_after_max_ms == INT64_MAX &&
	    c->log_message_timestamp_difference_max_ms != INT64_MAX) {
		c->log_message_timestamp_after_max_ms = c->log_message_timestamp_difference_max_ms;
		config_mark_derived(c, "log.message.timestamp.after.max.ms");
	}
	if (c->log_retention_bytes < 0)
		c->log_retention_bytes = -1;
	SL_ASSERT(c->log_roll_ms >= 1 && c->zookeeper_connection_timeout_ms >= 1);
}

/* Copies string key `from` into the unset key `to` and marks it derived. */
static enum sl_err config_resolve_copy(struct config *c, const char *to, const char *from,
				       char *err, size_t err_len)
{
	const struct config_key *kt = &config_keys[config_key_must(to)];
	const struct config_key *kf = &config_keys[config_key_must(from)];
	const char *src = *(char *const *)config_field_const(c, kf);
	char *s;

	SL_ASSERT(src != NULL);
	s = strdup(src);
	if (s == NULL) {
		config_errf(err, err_len, "config: %s: out of memory", to);
		return SL_ENOMEM;
	}
	config_string_put(c, kt, s);
	config_mark_derived(c, to);
	return SL_OK;
}

/* log.dirs <- log.dir; advertised.listeners <- listeners (and then checked). */
static enum sl_err config_resolve_strings(struct config *c, char *err, size_t err_len)
{
	char why[512];
	enum sl_err e = SL_OK;

	if (!config_given(c, "log.dirs"))
		e = config_resolve_copy(c, "log.dirs", "log.dir", err, err_len);
	if (e == SL_OK && !config_given(c, "advertised.listeners")) {
		e = config_resolve_copy(c, "advertised.listeners", "listeners", err, err_len);
		if (e == SL_OK && config_check_advertised(c->advertised_listeners, why, sizeof(why)) != SL_OK) {
			config_errf(err, err_len, "config: advertised.listeners: not set, so listeners "
				    "would be advertised, but %s; set advertised.listeners", why);
			e = SL_EINVAL;
		}
	}
	SL_ASSERT(e != SL_OK || (c->log_dirs != NULL && c->advertised_listeners != NULL));
	return e;
}

/* Checks that involve two keys (Kafka's, plus Sluice's session-timeout order). */
static enum sl_err config_check_cross(const struct config *c, char *err, size_t err_len)
{
	if (c->replica_fetch_wait_max_ms > c->replica_lag_time_max_ms) {
		config_errf(err, err_len, "config: replica.fetch.wait.max.ms: %" PRId32 " must not exceed "
			    "replica.lag.time.max.ms (%" PRId64 ")", c->replica_fetch_wait_max_ms,
			    c->replica_lag_time_max_ms);
		return SL_EINVAL;
	}
	if (c->replica_fetch_wait_max_ms > c->replica_socket_timeout_ms) {
		config_errf(err, err_len, "config: replica.fetch.wait.max.ms: %" PRId32 " must not exceed "
			    "replica.socket.timeout.ms (%" PRId32 ")", c->replica_fetch_wait_max_ms,
			    c->replica_socket_timeout_ms);
		return SL_EINVAL;
	}
	if (c->group_min_session_timeout_ms > c->group_max_session_timeout_ms) {
		config_errf(err, err_len, "config: group.min.session.timeout.ms: %" PRId32 " must not "
			    "exceed group.max.session.timeout.ms (%" PRId32 ")",
			    c->group_min_session_timeout_ms, c->group_max_session_timeout_ms);
		return SL_EINVAL;
	}
	if (c->queued_max_request_bytes > 0 && c->queued_max_request_bytes < c->socket_request_max_bytes) {
		config_errf(err, err_len, "config: queued.max.request.bytes: %" PRId64 " must be <= 0 "
			    "(no limit) or at least socket.request.max.bytes (%" PRId32 ")",
			    c->queued_max_request_bytes, c->socket_request_max_bytes);
		return SL_EINVAL;
	}
	return SL_OK;
}

/* CPUs this process may run on, clamped to 1..CONFIG_SHARDS_MAX. */
static int32_t config_cpus_available(void)
{
	cpu_set_t set;
	long n;

	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return (int32_t)SL_MAX(1, SL_MIN(n, (long)CONFIG_SHARDS_MAX));
}

/* broker.id and num.shards (config.h invariant 3). */
static enum sl_err config_resolve_broker(struct config *c, char *err, size_t err_len)
{
	bool embedded = c->zookeeper_connect[0] == '\0';

	if (c->broker_id < 0 && !embedded) {
		config_errf(err, err_len, "config: broker.id: must be set (0..%d) when zookeeper.connect "
			    "is set; Sluice does not generate broker ids", INT32_MAX);
		return SL_EINVAL;
	}
	if (c->broker_id < 0) {
		c->broker_id = 0;
		config_mark_derived(c, "broker.id");
	}
	if (c->num_shards == 0) {
		c->num_shards = config_cpus_available();
		config_mark_derived(c, "num.shards");
	}
	SL_ASSERT(c->broker_id >= 0 && c->num_shards >= 1 && c->num_shards <= CONFIG_SHARDS_MAX);
	return SL_OK;
}

/* Embedded single-node mode has one broker: say so when asked for more replicas. */
static void config_warn_single_node(const struct config *c)
{
	if (c->zookeeper_connect[0] != '\0')
		return;
	if (c->offsets_topic_replication_factor > 1)
		LOG_W(LOG_NO_SHARD, "config: offsets.topic.replication.factor=%" PRId32 " but embedded "
		      "single-node mode has 1 broker: __consumer_offsets is created with 1 replica",
		      c->offsets_topic_replication_factor);
	if (c->default_replication_factor > 1)
		LOG_W(LOG_NO_SHARD, "config: default.replication.factor=%" PRId32 " but embedded "
		      "single-node mode has 1 broker: creating topics with it will fail",
		      c->default_replication_factor);
	if (c->min_insync_replicas > 1)
		LOG_W(LOG_NO_SHARD, "config: min.insync.replicas=%" PRId32 " but embedded single-node "
		      "mode has 1 broker: it is not enforced there", c->min_insync_replicas);
}

enum sl_err config_finish(struct config *c, char *err, size_t err_len)
{
	enum sl_err e;

	SL_ASSERT(c != NULL);
	if (c->init_err != SL_OK) {
		config_errf(err, err_len, "config: out of memory while setting defaults");
		return c->init_err;
	}
	memset(c->derived_bits, 0, sizeof(c->derived_bits));
	e = config_resolve_retention(c, err, err_len);
	if (e != SL_OK)
		return e;
	config_resolve_numbers(c);
	e = config_resolve_strings(c, err, err_len);
	if (e != SL_OK)
		return e;
	e = config_check_cross(c, err, err_len);
	if (e != SL_OK)
		return e;
	e = config_resolve_broker(c, err, err_len);
	if (e != SL_OK)
		return e;
	config_warn_single_node(c);
	SL_ASSERT(c->log_retention_ms == -1 || c->log_retention_ms >= 1);
	return SL_OK;
}

/* --------------------------------------------------------------- config_log */

/* Formats the value of key i into out[out_len]. */
static void config_value_format(const struct config *c, int i, char *out, size_t out_len)
{
	const struct config_key *k = &config_keys[i];
	const void *f = config_field_const(c, k);
	bool unset = k->def == NULL && !config_bit_get(c->set_bits, i) &&
		     !config_bit_get(c->derived_bits, i);
	int v;

	if (unset) {
		snprintf(out, out_len, "(unset)");
		return;
	}
	switch (k->type) {
	case CONFIG_T_INT32:
		snprintf(out, out_len, "%" PRId32, *(const int32_t *)f);
		return;
	case CONFIG_T_INT64:
		snprintf(out, out_len, "%" PRId64, *(const int64_t *)f);
		return;
	case CONFIG_T_BOOL:
		snprintf(out, out_len, "%s", *(const bool *)f ? "true" : "false");
		return;
	case CONFIG_T_DOUBLE:
		snprintf(out, out_len, "%.15g", *(const double *)f);
		return;
	case CONFIG_T_STRING:
	case CONFIG_T_LIST:
		snprintf(out, out_len, "%s", *(char *const *)f != NULL ? *(char *const *)f : "(unset)");
		return;
	case CONFIG_T_ENUM:
		memcpy(&v, f, sizeof(v));
		SL_ASSERT(v >= 0 && v < k->names_count);
		snprintf(out, out_len, "%s", k->names[v]);
		return;
	case CONFIG_T_FLAGS:
		out[0] = '\0';
		for (int b = 0, len = 0; b < k->names_count && (size_t)len < out_len; b++)
			if (*(const uint32_t *)f & (1u << b))
				len += snprintf(out + len, out_len - (size_t)len, "%s%s",
						len > 0 ? "," : "", k->names[b]);
		return;
	}
}

void config_log(const struct config *c)
{
	SL_ASSERT(c != NULL);
	for (int i = 0; i < (int)SL_ARRAY_LEN(config_keys); i++) {
		const struct config_key *k = &config_keys[i];
		const char *mark = "";
		char value[512];

		if (config_bit_get(c->derived_bits, i))
			mark = " (derived)";
		else if (!config_bit_get(c->set_bits, i) && k->def != NULL)
			mark = " (default)";
		config_value_format(c, i, value, sizeof(value));
		LOG_I(LOG_NO_SHARD, "config: %s=%s%s", k->name, value, mark);
	}
}
