/*
 * ctrl_json.h — the JSON values of Kafka's ZooKeeper znodes (ZK mode
 * layout, see notes on cluster mode): encode exactly the field names Kafka
 * writes, decode what Kafka 3.x writes and the older versions it still
 * reads, ignore unknown fields, reject malformed values.
 *
 *   /brokers/ids/<id>        ctrlj_broker_*      (version 5; reads 1..5)
 *   /controller              ctrlj_controller_*  (version 1)
 *   /controller_epoch        ctrlj_epoch_*       (plain decimal text)
 *   /brokers/topics/<t>      ctrlj_topic_*       (version 3; reads 1..3)
 *   /brokers/topics/<t>/partitions/<p>/state
 *                            ctrlj_pstate_*      (version 1)
 *   /config/topics/<t>       ctrlj_config_*      (version 1)
 *   /cluster/id              ctrlj_cluster_id_*  (version "1")
 *
 * Every decoder takes bytes (not NUL-terminated), accepts at most
 * CTRLJ_VALUE_MAX of them (ZooKeeper's 1 MiB jute.maxbuffer), and answers
 * SL_ECORRUPT with a static reason string for invalid JSON (including
 * invalid UTF-8, NUL bytes, duplicate keys, trailing bytes), a wrong type,
 * a missing required field, an out-of-range number or an over-long
 * string or array. Encoders write into the caller's buffer (no NUL
 * added) and answer SL_ERANGE when it is too small. All jansson objects
 * are released before returning.
 *
 * Runs on: shard 0 (ZooKeeper session and controller).
 */
#ifndef SL_COORD_CTRL_JSON_H
#define SL_COORD_CTRL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrl_rules.h"
#include "sl.h"

#define CTRLJ_VALUE_MAX (1024 * 1024)
#define CTRLJ_HOST_MAX 255           /* host name bytes */
#define CTRLJ_NAME_MAX 64            /* listener / security protocol names */
#define CTRLJ_RACK_MAX 255
#define CTRLJ_ENDPOINTS_MAX 16
#define CTRLJ_PARTITIONS_MAX 65536   /* partitions per topic */
#define CTRLJ_TOPIC_ID_LEN 22        /* Kafka Uuid.toString: base64url, no padding */
#define CTRLJ_CLUSTER_ID_MAX 64
#define CTRLJ_CONFIG_MAX 1024        /* config entries per topic */
#define CTRLJ_CONFIG_STR_MAX 4096    /* config key / value bytes */

/* "LISTENER://host:port" with its security protocol from the map. */
struct ctrlj_endpoint {
	char listener[CTRLJ_NAME_MAX + 1];
	char security_protocol[CTRLJ_NAME_MAX + 1];
	char host[CTRLJ_HOST_MAX + 1];   /* IPv6 without brackets; may be "" */
	int32_t port;
};

/* /brokers/ids/<id>. */
struct ctrlj_broker {
	int32_t version;                 /* encoders write 5 */
	char host[CTRLJ_HOST_MAX + 1];   /* the PLAINTEXT endpoint's, or "" */
	int32_t port;                    /* its port, or -1 */
	int32_t jmx_port;                /* -1: none */
	int64_t timestamp_ms;            /* -1 when absent */
	bool has_rack;
	char rack[CTRLJ_RACK_MAX + 1];
	uint32_t endpoint_count;
	struct ctrlj_endpoint endpoints[CTRLJ_ENDPOINTS_MAX];
};

/*
 * Parses "NAME://host:port" (host may be "[v6]" or empty, port 0..65535)
 * into ep (security_protocol left empty). SL_ECORRUPT with *reason.
 */
enum sl_err ctrlj_endpoint_parse(const char *s, size_t len, struct ctrlj_endpoint *ep,
				 const char **reason);
/* Writes "NAME://host:port" (brackets around IPv6) + NUL; SL_ERANGE if cap short. */
enum sl_err ctrlj_endpoint_format(const struct ctrlj_endpoint *ep, char *buf, size_t cap);

enum sl_err ctrlj_broker_encode(const struct ctrlj_broker *b, char *buf, size_t cap,
				size_t *len);
enum sl_err ctrlj_broker_decode(const char *data, size_t len, struct ctrlj_broker *out,
				const char **reason);

/* /controller: {"version":1,"brokerid":N,"timestamp":"<ms>"}. */
struct ctrlj_controller {
	int32_t broker_id;
	int64_t timestamp_ms;            /* -1 when absent */
	int32_t kraft_controller_epoch;  /* -1 when absent (migration mode) */
};
enum sl_err ctrlj_controller_encode(int32_t broker_id, int64_t timestamp_ms, char *buf,
				    size_t cap, size_t *len);
enum sl_err ctrlj_controller_decode(const char *data, size_t len, struct ctrlj_controller *out,
				    const char **reason);

/* /controller_epoch: decimal text (Java Integer.parseInt rules). */
enum sl_err ctrlj_epoch_encode(int32_t epoch, char *buf, size_t cap, size_t *len);
enum sl_err ctrlj_epoch_decode(const char *data, size_t len, int32_t *out, const char **reason);

/* One partition's assignment in /brokers/topics/<t>. */
struct ctrlj_assignment {
	uint32_t replica_count;
	uint32_t adding_count;
	uint32_t removing_count;
	int32_t replicas[CTRL_REPLICAS_MAX];
	int32_t adding[CTRL_REPLICAS_MAX];
	int32_t removing[CTRL_REPLICAS_MAX];
};

/* /brokers/topics/<t>; parts[p] is partition p (ids are 0..count-1). */
struct ctrlj_topic {
	bool has_topic_id;
	char topic_id[CTRLJ_TOPIC_ID_LEN + 1];
	uint32_t partition_count;
	struct ctrlj_assignment *parts;  /* heap; ctrlj_topic_free */
};
enum sl_err ctrlj_topic_encode(const struct ctrlj_topic *t, char *buf, size_t cap, size_t *len);
/* Fills *out (parts allocated); on error *out holds nothing to free. */
enum sl_err ctrlj_topic_decode(const char *data, size_t len, struct ctrlj_topic *out,
			       const char **reason);
void ctrlj_topic_free(struct ctrlj_topic *t);

/* Kafka Uuid text (22 chars base64url) <-> 16 bytes. */
enum sl_err ctrlj_uuid_parse(const char *s, size_t len, uint8_t out[16]);
void ctrlj_uuid_format(const uint8_t id[16], char out[CTRLJ_TOPIC_ID_LEN + 1]);

/*
 * .../partitions/<p>/state <-> the leader, leader_epoch, controller_epoch,
 * isr and leader_recovery_state fields of a ctrl_pstate (replicas and
 * partition_epoch, the zkVersion, are not in the value and untouched).
 */
enum sl_err ctrlj_pstate_encode(const struct ctrl_pstate *ps, char *buf, size_t cap,
				size_t *len);
enum sl_err ctrlj_pstate_decode(const char *data, size_t len, struct ctrl_pstate *ps,
				const char **reason);

/* /config/topics/<t>: {"version":1,"config":{"k":"v",...}}. */
struct ctrlj_config_entry {
	const char *key;
	const char *value;
};
enum sl_err ctrlj_config_encode(const struct ctrlj_config_entry *e, uint32_t count, char *buf,
				size_t cap, size_t *len);
/*
 * Calls fn(ctx, key, value) for each entry (strings valid only during the
 * call); a non-SL_OK from fn stops and is returned. A value without
 * "config" is an empty config (as Kafka reads it).
 */
enum sl_err ctrlj_config_decode(const char *data, size_t len,
				enum sl_err (*fn)(void *ctx, const char *key, const char *value),
				void *ctx, const char **reason);

/* /cluster/id: {"version":"1","id":"<id>"}; out has CTRLJ_CLUSTER_ID_MAX + 1 bytes. */
enum sl_err ctrlj_cluster_id_encode(const char *id, char *buf, size_t cap, size_t *len);
enum sl_err ctrlj_cluster_id_decode(const char *data, size_t len, char *out,
				    const char **reason);

#endif
