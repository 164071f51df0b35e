/*
 * topic_config.h — Kafka's per-topic configuration keys as Sluice knows
 * them: names, types, validation, broker-derived defaults, and the
 * effective settings a partition runs with (its plog configuration plus
 * what the append path checks). Also the read-only broker configuration
 * as DescribeConfigs shows it.
 *
 * Pure logic: no I/O, no shard state. Used by CreateTopics (validation),
 * DescribeConfigs (rendering), IncrementalAlterConfigs (validation,
 * list APPEND/SUBTRACT) and partition.c (effective settings, on the owner).
 *
 * Invariants:
 *   1. Every key in the table has a broker-derived default renderable
 *      without a struct config (Kafka's default text), so rendering never
 *      fails for a known key.
 *   2. A value accepted by tcfg_validate parses in tcfg_effective: an
 *      override stored in the catalog after validation always applies.
 *
 * Runs on: any shard (read-only tables).
 */
#ifndef SL_NET_TOPIC_CONFIG_H
#define SL_NET_TOPIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "config.h"
#include "plog.h"
#include "sl.h"

/* Kafka's DescribeConfigs ConfigType (v3+). */
enum tcfg_type {
	TCFG_T_UNKNOWN = 0,
	TCFG_T_BOOLEAN = 1,
	TCFG_T_STRING = 2,
	TCFG_T_INT = 3,
	TCFG_T_SHORT = 4,
	TCFG_T_LONG = 5,
	TCFG_T_DOUBLE = 6,
	TCFG_T_LIST = 7,
};

/* Kafka's DescribeConfigs ConfigSource. */
enum tcfg_source {
	TCFG_SRC_UNKNOWN = 0,
	TCFG_SRC_DYNAMIC_TOPIC = 1,
	TCFG_SRC_DYNAMIC_BROKER = 2,
	TCFG_SRC_DYNAMIC_DEFAULT_BROKER = 3,
	TCFG_SRC_STATIC_BROKER = 4,
	TCFG_SRC_DEFAULT = 5,
};

/* Longest rendered value (log.dirs, listeners may be long). */
#define TCFG_VALUE_MAX 1024

/* One key (topic or broker). */
struct tcfg_key {
	const char *name;
	enum tcfg_type type;
	const char *synonym;       /* topic key: the broker key it defaults from */
	const char *kafka_default; /* the broker key's default text (invariant 1) */
	int value_id;              /* private: which struct config field renders it */
	int64_t min, max;          /* INT / LONG / SHORT */
	const char *const *names;  /* STRING enum / LIST members, NULL = free text */
	uint32_t names_count;
};

/* Topic keys, in Kafka's (alphabetical) order. */
uint32_t tcfg_topic_count(void);
const struct tcfg_key *tcfg_topic_at(uint32_t i);
/* The topic key `name` (`len` bytes), or NULL when Kafka has no such topic config. */
const struct tcfg_key *tcfg_topic_find(const char *name, size_t len);

/* Broker keys DescribeConfigs lists (all read-only in Sluice). */
uint32_t tcfg_broker_count(void);
const struct tcfg_key *tcfg_broker_at(uint32_t i);
const struct tcfg_key *tcfg_broker_find(const char *name, size_t len);

/*
 * Checks `value` for topic key `key`: type, range, allowed names.
 * Returns KERR_NONE or KERR_INVALID_CONFIG (unknown key, bad value, NULL
 * value) with a reason in why[why_len] (Kafka puts it in ErrorMessage).
 */
int16_t tcfg_validate(const char *key, size_t klen, const char *value, size_t vlen, char *why,
		      size_t why_len);

/*
 * The broker-level value behind key `k` (a topic key's synonym or a
 * broker key) as text into out[len]; with c == NULL, Kafka's default.
 * Returns the source Kafka reports for it: STATIC_BROKER_CONFIG when it
 * differs from Kafka's default, DEFAULT_CONFIG otherwise.
 */
enum tcfg_source tcfg_broker_value(const struct config *c, const struct tcfg_key *k, char *out,
				   size_t len);

/* What a partition runs with. */
struct tcfg_effective {
	struct plog_config plog;
	int32_t max_message_bytes;     /* max.message.bytes (Produce, per batch) */
	bool log_append_time;          /* message.timestamp.type = LogAppendTime */
};

/*
 * Applies the overrides `ov[0, n)` to the broker-level settings: `base`
 * (the plog configuration built from the broker config) and `c` (may be
 * NULL: Kafka's defaults for max.message.bytes / timestamp type). Unknown
 * keys and values that do not parse are ignored (they cannot be stored:
 * invariant 2). Always fills *out.
 */
void tcfg_effective(const struct config *c, const struct plog_config *base,
		    const struct catalog_config_entry *ov, uint32_t n, struct tcfg_effective *out);

enum tcfg_list_op {
	TCFG_LIST_APPEND = 2,          /* Kafka's AlterConfigOp.OpType values */
	TCFG_LIST_SUBTRACT = 3,
};

/*
 * List configs (cleanup.policy): APPEND adds the members of `arg` not yet
 * in `cur`; SUBTRACT removes those of `arg`. Both comma lists; the result
 * (no spaces, no duplicates, in order) goes to out[len]. SL_OK, or
 * SL_ERANGE when it does not fit. An empty result is "" (the caller
 * validates it like any value).
 */
enum sl_err tcfg_list_apply(enum tcfg_list_op op, const char *cur, const char *arg, char *out,
			    size_t len);

#endif
