/*
 * topic_config.c — topic and broker configuration keys (see
 * topic_config.h): one table row per key, a renderer per struct config
 * field, strict parsers shared by validation and by the effective
 * settings (invariant 2 holds because both call the same parser).
 *
 * Runs on: any shard; pure.
 */
#include "topic_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kerr.h"

#define TCFG_LIST_ITEMS_MAX 16u
#define TCFG_LONG_MAX_TEXT "9223372036854775807"

/* Which value a row renders (a struct config field, or a constant). */
enum tcfg_value_id {
	V_CONST = 0,                  /* always kafka_default */
	V_CLEANUP_POLICY,
	V_COMPRESSION_TYPE,
	V_DELETE_RETENTION_MS,
	V_FLUSH_MESSAGES,
	V_FLUSH_MS,
	V_INDEX_INTERVAL_BYTES,
	V_MESSAGE_MAX_BYTES,
	V_TIMESTAMP_TYPE,
	V_TIMESTAMP_BEFORE_MS,
	V_TIMESTAMP_AFTER_MS,
	V_MIN_CLEANABLE_RATIO,
	V_MIN_INSYNC,
	V_PREALLOCATE,
	V_RETENTION_BYTES,
	V_RETENTION_MS,
	V_SEGMENT_BYTES,
	V_INDEX_SIZE_MAX,
	V_ROLL_MS,
	V_UNCLEAN,
	/* broker-only rows */
	V_BROKER_ID,
	V_NUM_PARTITIONS,
	V_DEFAULT_RF,
	V_LOG_DIRS,
	V_RETENTION_CHECK_MS,
	V_AUTO_CREATE,
	V_DELETE_TOPIC,
	V_LISTENERS,
	V_ADV_LISTENERS,
	V_SOCKET_REQUEST_MAX,
	V_MAX_CONNECTIONS,
	V_NUM_SHARDS,
	V_FETCH_MAX_BYTES,
};

static const char *const tcfg_cleanup_names[] = { "compact", "delete" };
static const char *const tcfg_compression_names[] = {
	"uncompressed", "gzip", "snappy", "lz4", "zstd", "producer",
};
static const char *const tcfg_timestamp_names[] = { "CreateTime", "LogAppendTime" };
static const char *const tcfg_bool_names[] = { "true", "false" };

#define I32MAX INT32_MAX
#define I64MAX INT64_MAX
#define ROW(n, t, syn, def, id, lo, hi) \
	{ .name = n, .type = t, .synonym = syn, .kafka_default = def, .value_id = id, .min = lo, \
	  .max = hi }
#define ROW_NAMES(n, t, syn, def, id, nm) \
	{ .name = n, .type = t, .synonym = syn, .kafka_default = def, .value_id = id, \
	  .names = nm, .names_count = (uint32_t)SL_ARRAY_LEN(nm) }

/* Kafka 3.9's topic configs (LogConfig), alphabetical; ranges are Kafka's. */
static const struct tcfg_key tcfg_topic_keys[] = {
	ROW_NAMES("cleanup.policy", TCFG_T_LIST, "log.cleanup.policy", "delete", V_CLEANUP_POLICY,
		  tcfg_cleanup_names),
	ROW_NAMES("compression.type", TCFG_T_STRING, "compression.type", "producer",
		  V_COMPRESSION_TYPE, tcfg_compression_names),
	ROW("delete.retention.ms", TCFG_T_LONG, "log.cleaner.delete.retention.ms", "86400000",
	    V_DELETE_RETENTION_MS, 0, I64MAX),
	ROW("file.delete.delay.ms", TCFG_T_LONG, "log.segment.delete.delay.ms", "60000", V_CONST, 0,
	    I64MAX),
	ROW("flush.messages", TCFG_T_LONG, "log.flush.interval.messages", TCFG_LONG_MAX_TEXT,
	    V_FLUSH_MESSAGES, 1, I64MAX),
	ROW("flush.ms", TCFG_T_LONG, "log.flush.interval.ms", TCFG_LONG_MAX_TEXT, V_FLUSH_MS, 0,
	    I64MAX),
	ROW("index.interval.bytes", TCFG_T_INT, "log.index.interval.bytes", "4096",
	    V_INDEX_INTERVAL_BYTES, 0, I32MAX),
	ROW("max.compaction.lag.ms", TCFG_T_LONG, "log.cleaner.max.compaction.lag.ms",
	    TCFG_LONG_MAX_TEXT, V_CONST, 1, I64MAX),
	ROW("max.message.bytes", TCFG_T_INT, "message.max.bytes", "1048588", V_MESSAGE_MAX_BYTES, 0,
	    I32MAX),
	ROW("message.timestamp.after.max.ms", TCFG_T_LONG, "log.message.timestamp.after.max.ms",
	    TCFG_LONG_MAX_TEXT, V_TIMESTAMP_AFTER_MS, 0, I64MAX),
	ROW("message.timestamp.before.max.ms", TCFG_T_LONG, "log.message.timestamp.before.max.ms",
	    TCFG_LONG_MAX_TEXT, V_TIMESTAMP_BEFORE_MS, 0, I64MAX),
	ROW_NAMES("message.timestamp.type", TCFG_T_STRING, "log.message.timestamp.type",
		  "CreateTime", V_TIMESTAMP_TYPE, tcfg_timestamp_names),
	ROW("min.cleanable.dirty.ratio", TCFG_T_DOUBLE, "log.cleaner.min.cleanable.ratio", "0.5",
	    V_MIN_CLEANABLE_RATIO, 0, 1),
	ROW("min.compaction.lag.ms", TCFG_T_LONG, "log.cleaner.min.compaction.lag.ms", "0", V_CONST,
	    0, I64MAX),
	ROW("min.insync.replicas", TCFG_T_INT, "min.insync.replicas", "1", V_MIN_INSYNC, 1, I32MAX),
	ROW("preallocate", TCFG_T_BOOLEAN, "log.preallocate", "false", V_PREALLOCATE, 0, 0),
	ROW("retention.bytes", TCFG_T_LONG, "log.retention.bytes", "-1", V_RETENTION_BYTES, INT64_MIN,
	    I64MAX),
	ROW("retention.ms", TCFG_T_LONG, "log.retention.ms", "604800000", V_RETENTION_MS, -1,
	    I64MAX),
	ROW("segment.bytes", TCFG_T_INT, "log.segment.bytes", "1073741824", V_SEGMENT_BYTES, 14,
	    I32MAX),
	ROW("segment.index.bytes", TCFG_T_INT, "log.index.size.max.bytes", "10485760",
	    V_INDEX_SIZE_MAX, 4, I32MAX),
	ROW("segment.jitter.ms", TCFG_T_LONG, "log.roll.jitter.ms", "0", V_CONST, 0, I64MAX),
	ROW("segment.ms", TCFG_T_LONG, "log.roll.ms", "604800000", V_ROLL_MS, 1, I64MAX),
	ROW_NAMES("unclean.leader.election.enable", TCFG_T_BOOLEAN,
		  "unclean.leader.election.enable", "false", V_UNCLEAN, tcfg_bool_names),
};

/* Broker keys DescribeConfigs shows (all static in Sluice). */
static const struct tcfg_key tcfg_broker_keys[] = {
	ROW("advertised.listeners", TCFG_T_STRING, NULL, "", V_ADV_LISTENERS, 0, 0),
	ROW("auto.create.topics.enable", TCFG_T_BOOLEAN, NULL, "true", V_AUTO_CREATE, 0, 0),
	ROW("broker.id", TCFG_T_INT, NULL, "-1", V_BROKER_ID, 0, 0),
	ROW("compression.type", TCFG_T_STRING, NULL, "producer", V_COMPRESSION_TYPE, 0, 0),
	ROW("default.replication.factor", TCFG_T_INT, NULL, "1", V_DEFAULT_RF, 0, 0),
	ROW("delete.topic.enable", TCFG_T_BOOLEAN, NULL, "true", V_DELETE_TOPIC, 0, 0),
	ROW("fetch.max.bytes", TCFG_T_INT, NULL, "57671680", V_FETCH_MAX_BYTES, 0, 0),
	ROW("listeners", TCFG_T_STRING, NULL, "PLAINTEXT://:9092", V_LISTENERS, 0, 0),
	ROW("log.cleaner.delete.retention.ms", TCFG_T_LONG, NULL, "86400000",
	    V_DELETE_RETENTION_MS, 0, 0),
	ROW("log.cleaner.min.cleanable.ratio", TCFG_T_DOUBLE, NULL, "0.5", V_MIN_CLEANABLE_RATIO, 0,
	    0),
	ROW("log.cleanup.policy", TCFG_T_LIST, NULL, "delete", V_CLEANUP_POLICY, 0, 0),
	ROW("log.dirs", TCFG_T_STRING, NULL, "/tmp/kafka-logs", V_LOG_DIRS, 0, 0),
	ROW("log.flush.interval.messages", TCFG_T_LONG, NULL, TCFG_LONG_MAX_TEXT, V_FLUSH_MESSAGES,
	    0, 0),
	ROW("log.flush.interval.ms", TCFG_T_LONG, NULL, TCFG_LONG_MAX_TEXT, V_FLUSH_MS, 0, 0),
	ROW("log.index.interval.bytes", TCFG_T_INT, NULL, "4096", V_INDEX_INTERVAL_BYTES, 0, 0),
	ROW("log.index.size.max.bytes", TCFG_T_INT, NULL, "10485760", V_INDEX_SIZE_MAX, 0, 0),
	ROW("log.message.timestamp.type", TCFG_T_STRING, NULL, "CreateTime", V_TIMESTAMP_TYPE, 0, 0),
	ROW("log.preallocate", TCFG_T_BOOLEAN, NULL, "false", V_PREALLOCATE, 0, 0),
	ROW("log.retention.bytes", TCFG_T_LONG, NULL, "-1", V_RETENTION_BYTES, 0, 0),
	ROW("log.retention.check.interval.ms", TCFG_T_LONG, NULL, "300000", V_RETENTION_CHECK_MS, 0,
	    0),
	ROW("log.retention.ms", TCFG_T_LONG, NULL, "604800000", V_RETENTION_MS, 0, 0),
	ROW("log.roll.ms", TCFG_T_LONG, NULL, "604800000", V_ROLL_MS, 0, 0),
	ROW("log.segment.bytes", TCFG_T_INT, NULL, "1073741824", V_SEGMENT_BYTES, 0, 0),
	ROW("max.connections", TCFG_T_INT, NULL, "2147483647", V_MAX_CONNECTIONS, 0, 0),
	ROW("message.max.bytes", TCFG_T_INT, NULL, "1048588", V_MESSAGE_MAX_BYTES, 0, 0),
	ROW("min.insync.replicas", TCFG_T_INT, NULL, "1", V_MIN_INSYNC, 0, 0),
	ROW("num.partitions", TCFG_T_INT, NULL, "1", V_NUM_PARTITIONS, 0, 0),
	ROW("num.shards", TCFG_T_INT, NULL, "0", V_NUM_SHARDS, 0, 0),
	ROW("socket.request.max.bytes", TCFG_T_INT, NULL, "104857600", V_SOCKET_REQUEST_MAX, 0, 0),
	ROW("unclean.leader.election.enable", TCFG_T_BOOLEAN, NULL, "false", V_UNCLEAN, 0, 0),
};

uint32_t tcfg_topic_count(void)
{
	return (uint32_t)SL_ARRAY_LEN(tcfg_topic_keys);
}

const struct tcfg_key *tcfg_topic_at(uint32_t i)
{
	SL_ASSERT(i < tcfg_topic_count());
	return &tcfg_topic_keys[i];
}

uint32_t tcfg_broker_count(void)
{
	return (uint32_t)SL_ARRAY_LEN(tcfg_broker_keys);
}

const struct tcfg_key *tcfg_broker_at(uint32_t i)
{
	SL_ASSERT(i < tcfg_broker_count());
	return &tcfg_broker_keys[i];
}

static const struct tcfg_key *tcfg_find_in(const struct tcfg_key *rows, uint32_t n,
					   const char *name, size_t len)
{
	for (uint32_t i = 0; i < n; i++)
		if (strlen(rows[i].name) == len && memcmp(rows[i].name, name, len) == 0)
			return &rows[i];
	return NULL;
}

const struct tcfg_key *tcfg_topic_find(const char *name, size_t len)
{
	return tcfg_find_in(tcfg_topic_keys, tcfg_topic_count(), name, len);
}

const struct tcfg_key *tcfg_broker_find(const char *name, size_t len)
{
	return tcfg_find_in(tcfg_broker_keys, tcfg_broker_count(), name, len);
}

/* ---- parsers (shared by validation and tcfg_effective: invariant 2) ---- */

/* Strict decimal integer in [lo, hi], surrounding blanks allowed. */
static bool tcfg_parse_i64(const char *v, size_t len, int64_t lo, int64_t hi, int64_t *out)
{
	char buf[32];
	char *end;

	while (len > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, v, len);
	buf[len] = '\0';
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0' || x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

static bool tcfg_parse_double(const char *v, size_t len, double lo, double hi, double *out)
{
	char buf[64];
	char *end;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, v, len);
	buf[len] = '\0';
	errno = 0;
	double x = strtod(buf, &end);
	if (errno != 0 || *end != '\0' || !(x >= lo && x <= hi))
		return false;
	*out = x;
	return true;
}

static bool tcfg_parse_bool(const char *v, size_t len, bool *out)
{
	if (len == 4 && strncasecmp(v, "true", 4) == 0) {
		*out = true;
		return true;
	}
	if (len == 5 && strncasecmp(v, "false", 5) == 0) {
		*out = false;
		return true;
	}
	return false;
}

/* Index of `v` in k->names (exact, as Kafka's ValidString), or -1. */
static int tcfg_name_index(const struct tcfg_key *k, const char *v, size_t len)
{
	for (uint32_t i = 0; i < k->names_count; i++)
		if (strlen(k->names[i]) == len && memcmp(k->names[i], v, len) == 0)
			return (int)i;
	return -1;
}

/* A comma list whose every (trimmed) member is one of k->names. */
static bool tcfg_list_ok(const struct tcfg_key *k, const char *v, size_t len)
{
	size_t i = 0;
	uint32_t items = 0;

	if (len == 0)
		return false;
	while (i <= len && items < TCFG_LIST_ITEMS_MAX) {
		size_t j = i;
		while (j < len && v[j] != ',')
			j++;
		size_t a = i, b = j;
		while (a < b && v[a] == ' ')
			a++;
		while (b > a && v[b - 1] == ' ')
			b--;
		if (tcfg_name_index(k, v + a, b - a) < 0)
			return false;
		items++;
		if (j >= len)
			return true;
		i = j + 1;
	}
	return false;
}

int16_t tcfg_validate(const char *key, size_t klen, const char *value, size_t vlen, char *why,
		      size_t why_len)
{
	const struct tcfg_key *k = tcfg_topic_find(key, klen);
	int64_t x;
	double d;
	bool bv;
	bool ok;

	SL_ASSERT(why != NULL && why_len > 0);
	why[0] = '\0';
	if (k == NULL) {
		snprintf(why, why_len, "Unknown topic config name: %.*s", (int)SL_MIN(klen, 200),
			 key);
		return KERR_INVALID_CONFIG;
	}
	if (value == NULL) {
		snprintf(why, why_len, "Null value not supported for topic configs: %s", k->name);
		return KERR_INVALID_CONFIG;
	}
	switch (k->type) {
	case TCFG_T_INT:
	case TCFG_T_SHORT:
	case TCFG_T_LONG:
		ok = tcfg_parse_i64(value, vlen, k->min, k->max, &x);
		break;
	case TCFG_T_DOUBLE:
		ok = tcfg_parse_double(value, vlen, (double)k->min, (double)k->max, &d);
		break;
	case TCFG_T_BOOLEAN:
		ok = tcfg_parse_bool(value, vlen, &bv);
		break;
	case TCFG_T_LIST:
		ok = tcfg_list_ok(k, value, vlen);
		break;
	default:
		ok = k->names == NULL || tcfg_name_index(k, value, vlen) >= 0;
		break;
	}
	if (!ok) {
		snprintf(why, why_len, "Invalid value %.*s for configuration %s",
			 (int)SL_MIN(vlen, 200), value, k->name);
		return KERR_INVALID_CONFIG;
	}
	return KERR_NONE;
}

/* ---- rendering ---- */

static void tcfg_put_i64(char *out, size_t len, int64_t v)
{
	snprintf(out, len, "%" PRId64, v);
}

static void tcfg_put_str(char *out, size_t len, const char *s)
{
	snprintf(out, len, "%s", s != NULL ? s : "");
}

/* Renders a struct config field into out; false for V_CONST. */
static bool tcfg_render(const struct config *c, int id, char *out, size_t len)
{
	switch (id) {
	case V_CLEANUP_POLICY:
		snprintf(out, len, "%s%s%s",
			 (c->log_cleanup_policy & CONFIG_CLEANUP_DELETE) ? "delete" : "",
			 (c->log_cleanup_policy & CONFIG_CLEANUP_DELETE) &&
					 (c->log_cleanup_policy & CONFIG_CLEANUP_COMPACT)
				 ? ","
				 : "",
			 (c->log_cleanup_policy & CONFIG_CLEANUP_COMPACT) ? "compact" : "");
		return true;
	case V_COMPRESSION_TYPE:
		tcfg_put_str(out, len, (unsigned)c->compression_type < SL_ARRAY_LEN(tcfg_compression_names)
					       ? tcfg_compression_names[c->compression_type]
					       : "producer");
		return true;
	case V_DELETE_RETENTION_MS: tcfg_put_i64(out, len, c->log_cleaner_delete_retention_ms); return true;
	case V_FLUSH_MESSAGES: tcfg_put_i64(out, len, c->log_flush_interval_messages); return true;
	case V_FLUSH_MS:
		tcfg_put_i64(out, len, c->log_flush_interval_ms > 0 ? c->log_flush_interval_ms : INT64_MAX);
		return true;
	case V_INDEX_INTERVAL_BYTES: tcfg_put_i64(out, len, c->log_index_interval_bytes); return true;
	case V_MESSAGE_MAX_BYTES: tcfg_put_i64(out, len, c->message_max_bytes); return true;
	case V_TIMESTAMP_TYPE:
		tcfg_put_str(out, len, tcfg_timestamp_names[c->log_message_timestamp_type ==
							    CONFIG_TIMESTAMP_LOG_APPEND_TIME]);
		return true;
	case V_TIMESTAMP_BEFORE_MS: tcfg_put_i64(out, len, c->log_message_timestamp_before_max_ms); return true;
	case V_TIMESTAMP_AFTER_MS: tcfg_put_i64(out, len, c->log_message_timestamp_after_max_ms); return true;
	case V_MIN_CLEANABLE_RATIO: snprintf(out, len, "%g", c->log_cleaner_min_cleanable_ratio); return true;
	case V_MIN_INSYNC: tcfg_put_i64(out, len, c->min_insync_replicas); return true;
	case V_PREALLOCATE: tcfg_put_str(out, len, c->log_preallocate ? "true" : "false"); return true;
	case V_RETENTION_BYTES: tcfg_put_i64(out, len, c->log_retention_bytes); return true;
	case V_RETENTION_MS: tcfg_put_i64(out, len, c->log_retention_ms); return true;
	case V_SEGMENT_BYTES: tcfg_put_i64(out, len, c->log_segment_bytes); return true;
	case V_INDEX_SIZE_MAX: tcfg_put_i64(out, len, c->log_index_size_max_bytes); return true;
	case V_ROLL_MS: tcfg_put_i64(out, len, c->log_roll_ms); return true;
	case V_UNCLEAN: tcfg_put_str(out, len, c->unclean_leader_election_enable ? "true" : "false"); return true;
	case V_BROKER_ID: tcfg_put_i64(out, len, c->broker_id); return true;
	case V_NUM_PARTITIONS: tcfg_put_i64(out, len, c->num_partitions); return true;
	case V_DEFAULT_RF: tcfg_put_i64(out, len, c->default_replication_factor); return true;
	case V_LOG_DIRS: tcfg_put_str(out, len, c->log_dirs); return true;
	case V_RETENTION_CHECK_MS: tcfg_put_i64(out, len, c->log_retention_check_interval_ms); return true;
	case V_AUTO_CREATE: tcfg_put_str(out, len, c->auto_create_topics_enable ? "true" : "false"); return true;
	case V_DELETE_TOPIC: tcfg_put_str(out, len, c->delete_topic_enable ? "true" : "false"); return true;
	case V_LISTENERS: tcfg_put_str(out, len, c->listeners); return true;
	case V_ADV_LISTENERS: tcfg_put_str(out, len, c->advertised_listeners); return true;
	case V_SOCKET_REQUEST_MAX: tcfg_put_i64(out, len, c->socket_request_max_bytes); return true;
	case V_MAX_CONNECTIONS: tcfg_put_i64(out, len, c->max_connections); return true;
	case V_NUM_SHARDS: tcfg_put_i64(out, len, c->num_shards); return true;
	case V_FETCH_MAX_BYTES: tcfg_put_i64(out, len, c->fetch_max_bytes); return true;
	default:
		return false;
	}
}

enum tcfg_source tcfg_broker_value(const struct config *c, const struct tcfg_key *k, char *out,
				   size_t len)
{
	SL_ASSERT(k != NULL && out != NULL && len > 0);
	if (c == NULL || !tcfg_render(c, k->value_id, out, len)) {
		tcfg_put_str(out, len, k->kafka_default);
		return TCFG_SRC_DEFAULT;
	}
	return strcmp(out, k->kafka_default) == 0 ? TCFG_SRC_DEFAULT : TCFG_SRC_STATIC_BROKER;
}

/* ---- effective settings ---- */

/* Applies one parsed override. */
static void tcfg_apply_one(struct tcfg_effective *e, const struct tcfg_key *k, const char *v)
{
	size_t len = strlen(v);
	struct plog_config *p = &e->plog;
	int64_t x = 0;
	bool b = false;

	if (k->type == TCFG_T_BOOLEAN) {
		if (!tcfg_parse_bool(v, len, &b))
			return;
	} else if (k->type == TCFG_T_INT || k->type == TCFG_T_LONG) {
		if (!tcfg_parse_i64(v, len, k->min, k->max, &x))
			return;
	}
	switch (k->value_id) {
	case V_RETENTION_MS: p->retention_ms = x; break;
	case V_RETENTION_BYTES: p->retention_bytes = x; break;
	case V_SEGMENT_BYTES: p->segment_bytes = x; break;
	case V_ROLL_MS: p->roll_ms = x; break;
	case V_FLUSH_MESSAGES: p->flush_interval_messages = x == INT64_MAX ? 0 : x; break;
	case V_FLUSH_MS: p->flush_interval_ms = x == INT64_MAX ? 0 : x; break;
	case V_INDEX_INTERVAL_BYTES: p->index_interval_bytes = (int32_t)x; break;
	case V_INDEX_SIZE_MAX: p->index_size_max_bytes = (int32_t)SL_MAX(x, 48); break;
	case V_PREALLOCATE: p->preallocate = b ? 1 : 0; break;
	case V_MESSAGE_MAX_BYTES: e->max_message_bytes = (int32_t)x; break;
	case V_TIMESTAMP_TYPE: e->log_append_time = strcmp(v, "LogAppendTime") == 0; break;
	default: break;   /* accepted and shown, not acted on (no compaction, one replica) */
	}
}

void tcfg_effective(const struct config *c, const struct plog_config *base,
		    const struct catalog_config_entry *ov, uint32_t n, struct tcfg_effective *out)
{
	SL_ASSERT(base != NULL && out != NULL && (n == 0 || ov != NULL));
	memset(out, 0, sizeof(*out));
	out->plog = *base;
	out->max_message_bytes = c != NULL ? c->message_max_bytes : 1048588;
	out->log_append_time = c != NULL &&
			       c->log_message_timestamp_type == CONFIG_TIMESTAMP_LOG_APPEND_TIME;
	for (uint32_t i = 0; i < n && i < CATALOG_CONFIGS_MAX; i++) {
		const struct tcfg_key *k = tcfg_topic_find(ov[i].key, strlen(ov[i].key));
		if (k != NULL && ov[i].value != NULL)
			tcfg_apply_one(out, k, ov[i].value);
	}
	SL_ASSERT(out->plog.segment_bytes >= 14);
}

/* ---- list configs ---- */

/* Is the member v[0, len) in the comma list `list`? */
static bool tcfg_list_has(const char *list, const char *v, size_t len)
{
	const char *p = list;

	for (uint32_t n = 0; n < TCFG_LIST_ITEMS_MAX && *p != '\0'; n++) {
		const char *e = strchr(p, ',');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
		const char *a = p;
		while (l > 0 && *a == ' ') {
			a++;
			l--;
		}
		while (l > 0 && a[l - 1] == ' ')
			l--;
		if (l == len && memcmp(a, v, len) == 0)
			return true;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return false;
}

/*
 * Appends to out the members of `src` (trimmed, non-empty) for which
 * keep(member) holds and that out does not have yet.
 */
static enum sl_err tcfg_list_copy(const char *src, const char *other, bool want_in_other,
				  char *out, size_t len)
{
	const char *p = src;

	for (uint32_t n = 0; n < TCFG_LIST_ITEMS_MAX && *p != '\0'; n++) {
		const char *e = strchr(p, ',');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);
		const char *a = p;
		while (l > 0 && *a == ' ') {
			a++;
			l--;
		}
		while (l > 0 && a[l - 1] == ' ')
			l--;
		bool in_other = other != NULL && tcfg_list_has(other, a, l);
		if (l > 0 && (other == NULL || in_other == want_in_other) && !tcfg_list_has(out, a, l)) {
			size_t used = strlen(out);
			if (used + (used > 0) + l + 1 > len)
				return SL_ERANGE;
			if (used > 0)
				out[used++] = ',';
			memcpy(out + used, a, l);
			out[used + l] = '\0';
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
	return SL_OK;
}

enum sl_err tcfg_list_apply(enum tcfg_list_op op, const char *cur, const char *arg, char *out,
			    size_t len)
{
	enum sl_err err;

	SL_ASSERT(cur != NULL && arg != NULL && out != NULL && len > 0);
	SL_ASSERT(op == TCFG_LIST_APPEND || op == TCFG_LIST_SUBTRACT);
	out[0] = '\0';
	if (op == TCFG_LIST_APPEND) {
		err = tcfg_list_copy(cur, NULL, false, out, len);
		if (err == SL_OK)
			err = tcfg_list_copy(arg, NULL, false, out, len);
	} else {
		err = tcfg_list_copy(cur, arg, false, out, len);
	}
	SL_ASSERT(err != SL_OK || strlen(out) < len);
	return err;
}
