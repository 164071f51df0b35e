/*
 * ctrl_json.c — Kafka's ZooKeeper znode values (see ctrl_json.h), with
 * jansson. Field names and shapes follow Kafka's ZkData (BrokerIdZNode,
 * ControllerZNode, ControllerEpochZNode, TopicZNode,
 * TopicPartitionStateZNode, ConfigEntityZNode, ClusterIdZNode).
 *
 * Decoding is tolerant where Kafka is (unknown fields, older versions,
 * optional fields, a null rack or host) and strict where Kafka would
 * throw (wrong types, missing required fields), plus our own bounds.
 * jansson is asked to reject duplicate keys; it always rejects invalid
 * UTF-8, NUL bytes and trailing data. Integers are exact (a 1.0 is not an
 * int, as in Kafka's Json decoders).
 *
 * Runs on: shard 0.
 */
#include "ctrl_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses `data` as one JSON value; NULL with *reason on failure. */
static json_t *cj_load(const char *data, size_t len, const char **reason)
{
	json_error_t jerr;

	if (data == NULL || len == 0) {
		*reason = "empty value";
		return NULL;
	}
	if (len > CTRLJ_VALUE_MAX) {
		*reason = "value larger than 1 MiB";
		return NULL;
	}
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		*reason = "invalid JSON";
	return root;
}

static json_t *cj_load_object(const char *data, size_t len, const char **reason)
{
	json_t *root = cj_load(data, len, reason);

	if (root != NULL && !json_is_object(root)) {
		json_decref(root);
		*reason = "not a JSON object";
		return NULL;
	}
	return root;
}

static enum sl_err cj_dump(json_t *root, char *buf, size_t cap, size_t *len)
{
	enum sl_err err = SL_OK;

	if (root == NULL)
		return SL_ENOMEM;
	size_t need = json_dumpb(root, buf, cap, JSON_COMPACT);
	if (need == 0)
		err = SL_ENOMEM;
	else if (need > cap)
		err = SL_ERANGE;
	else
		*len = need;
	json_decref(root);
	return err;
}

static bool cj_is_int32(const json_t *v)
{
	if (!json_is_integer(v))
		return false;
	json_int_t x = json_integer_value(v);
	return x >= INT32_MIN && x <= INT32_MAX;
}

/* A required int32 field; false with *reason when missing or not one. */
static bool cj_req_int32(const json_t *obj, const char *key, int32_t *out, const char **reason,
			 const char *why)
{
	const json_t *v = json_object_get(obj, key);

	if (!cj_is_int32(v)) {
		*reason = why;
		return false;
	}
	*out = (int32_t)json_integer_value(v);
	return true;
}

/* Java's Integer.parseInt: [+-]digits, nothing else, in int32 range. */
static bool cj_parse_int32(const char *s, size_t len, int32_t *out)
{
	size_t i = 0;
	bool neg = false;
	int64_t v = 0;

	if (len > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len || len - i > 10)
		return false;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	v = neg ? -v : v;
	if (v < INT32_MIN || v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	return true;
}

/* Copies a JSON string of at most max bytes (no NUL inside) into out. */
static bool cj_copy_str(const json_t *v, char *out, size_t max)
{
	if (!json_is_string(v))
		return false;
	size_t n = json_string_length(v);
	const char *s = json_string_value(v);
	if (n > max || memchr(s, '\0', n) != NULL)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* An array of distinct broker ids (>= 0), at most CTRL_REPLICAS_MAX. */
static bool cj_ids(const json_t *v, int32_t *out, uint32_t *count)
{
	if (!json_is_array(v) || json_array_size(v) > CTRL_REPLICAS_MAX)
		return false;
	size_t n = json_array_size(v);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i);

		if (!cj_is_int32(e) || json_integer_value(e) < 0)
			return false;
		out[i] = (int32_t)json_integer_value(e);
		for (size_t j = 0; j < i; j++) {
			if (out[j] == out[i])
				return false;
		}
	}
	*count = (uint32_t)n;
	return true;
}

static json_t *cj_ids_json(const int32_t *ids, uint32_t count)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a != NULL && i < count; i++)
		json_array_append_new(a, json_integer(ids[i]));
	return a;
}

static int64_t cj_timestamp(const json_t *obj)
{
	const json_t *v = json_object_get(obj, "timestamp");
	int64_t ts = 0;

	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 18)
		return -1;
	const char *s = json_string_value(v);
	for (size_t i = 0; i < json_string_length(v); i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		ts = ts * 10 + (s[i] - '0');
	}
	return ts;
}

/* ---- endpoints ---- */

static bool cj_listener_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-';
}

static bool cj_host_char(char ch)
{
	return cj_listener_char(ch) || ch == '.' || ch == '%' || ch == ':';
}

enum sl_err ctrlj_endpoint_parse(const char *s, size_t len, struct ctrlj_endpoint *ep,
				 const char **reason)
{
	const char *sep = NULL;
	const char *host, *host_end, *port;

	memset(ep, 0, sizeof(*ep));
	for (size_t i = 0; i + 2 < len; i++) {
		if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') {
			sep = s + i;
			break;
		}
	}
	*reason = "endpoint not NAME://host:port";
	if (sep == NULL || sep == s || (size_t)(sep - s) > CTRLJ_NAME_MAX)
		return SL_ECORRUPT;
	for (const char *p = s; p < sep; p++) {
		if (!cj_listener_char(*p))
			return SL_ECORRUPT;
	}
	host = sep + 3;
	const char *end = s + len;
	if (host < end && *host == '[') {
		host++;
		host_end = memchr(host, ']', (size_t)(end - host));
		if (host_end == NULL || host_end + 1 >= end || host_end[1] != ':')
			return SL_ECORRUPT;
		port = host_end + 2;
	} else {
		host_end = NULL;
		for (const char *p = end; p > host; p--) {
			if (p[-1] == ':') {
				host_end = p - 1;
				break;
			}
		}
		if (host_end == NULL)
			return SL_ECORRUPT;
		port = host_end + 1;
	}
	if ((size_t)(host_end - host) > CTRLJ_HOST_MAX)
		return SL_ECORRUPT;
	for (const char *p = host; p < host_end; p++) {
		if (!cj_host_char(*p))
			return SL_ECORRUPT;
	}
	int32_t portv = 0;
	if (end - port > 5 || !cj_parse_int32(port, (size_t)(end - port), &portv) || port[0] == '+' ||
	    port[0] == '-' || portv > 65535)
		return SL_ECORRUPT;
	memcpy(ep->listener, s, (size_t)(sep - s));
	memcpy(ep->host, host, (size_t)(host_end - host));
	ep->port = portv;
	*reason = NULL;
	return SL_OK;
}

enum sl_err ctrlj_endpoint_format(const struct ctrlj_endpoint *ep, char *buf, size_t cap)
{
	bool v6 = strchr(ep->host, ':') != NULL;
	int n = snprintf(buf, cap, v6 ? "%s://[%s]:%d" : "%s://%s:%d", ep->listener, ep->host,
			 (int)ep->port);

	return n < 0 || (size_t)n >= cap ? SL_ERANGE : SL_OK;
}

/* ---- /brokers/ids/<id> ---- */

enum sl_err ctrlj_broker_encode(const struct ctrlj_broker *b, char *buf, size_t cap,
				size_t *len)
{
	char ep[CTRLJ_NAME_MAX + CTRLJ_HOST_MAX + 16];
	char ts[24];
	json_t *root = json_object();
	json_t *eps = json_array();
	json_t *map = json_object();
	enum sl_err err = SL_ENOMEM;

	SL_ASSERT(b != NULL && b->endpoint_count <= CTRLJ_ENDPOINTS_MAX);
	if (root == NULL || eps == NULL || map == NULL)
		goto fail;
	for (uint32_t i = 0; i < b->endpoint_count; i++) {
		const struct ctrlj_endpoint *e = &b->endpoints[i];

		if (ctrlj_endpoint_format(e, ep, sizeof(ep)) != SL_OK ||
		    json_array_append_new(eps, json_string(ep)) != 0 ||
		    json_object_set_new(map, e->listener, json_string(e->security_protocol)) != 0) {
			err = SL_EINVAL;   /* too long or not UTF-8 */
			goto fail;
		}
	}
	snprintf(ts, sizeof(ts), "%lld", (long long)b->timestamp_ms);
	json_object_set_new(root, "features", json_object());
	json_object_set_new(root, "listener_security_protocol_map", map);
	json_object_set_new(root, "endpoints", eps);
	json_object_set_new(root, "jmx_port", json_integer(b->jmx_port));
	json_object_set_new(root, "port", json_integer(b->port));
	json_object_set_new(root, "host", b->host[0] != '\0' ? json_string(b->host) : json_null());
	json_object_set_new(root, "version", json_integer(5));
	json_object_set_new(root, "timestamp", json_string(ts));
	if (b->has_rack)
		json_object_set_new(root, "rack", json_string(b->rack));
	return cj_dump(root, buf, cap, len);
fail:
	json_decref(eps);
	json_decref(map);
	json_decref(root);
	return err;
}

/* Kafka's default listener map when a registration has none. */
static const char *cj_default_protocol(const char *listener)
{
	static const char *const known[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};

	for (size_t i = 0; i < SL_ARRAY_LEN(known); i++) {
		if (strcmp(known[i], listener) == 0)
			return known[i];
	}
	return NULL;
}

static enum sl_err cj_broker_endpoints(const json_t *root, struct ctrlj_broker *out,
				       const char **reason)
{
	const json_t *eps = json_object_get(root, "endpoints");
	const json_t *map = json_object_get(root, "listener_security_protocol_map");

	if (!json_is_array(eps) || json_array_size(eps) > CTRLJ_ENDPOINTS_MAX) {
		*reason = "endpoints missing, not an array or too long";
		return SL_ECORRUPT;
	}
	if (map != NULL && !json_is_object(map)) {
		*reason = "listener_security_protocol_map not an object";
		return SL_ECORRUPT;
	}
	for (size_t i = 0; i < json_array_size(eps); i++) {
		const json_t *e = json_array_get(eps, i);
		struct ctrlj_endpoint *ep = &out->endpoints[i];

		if (!json_is_string(e)) {
			*reason = "endpoint not a string";
			return SL_ECORRUPT;
		}
		if (ctrlj_endpoint_parse(json_string_value(e), json_string_length(e), ep,
					 reason) != SL_OK)
			return SL_ECORRUPT;
		if (map != NULL) {
			if (!cj_copy_str(json_object_get(map, ep->listener), ep->security_protocol,
					 CTRLJ_NAME_MAX)) {
				*reason = "listener missing from listener_security_protocol_map";
				return SL_ECORRUPT;
			}
		} else {
			const char *p = cj_default_protocol(ep->listener);

			if (p == NULL) {
				*reason = "unknown listener without a protocol map";
				return SL_ECORRUPT;
			}
			snprintf(ep->security_protocol, sizeof(ep->security_protocol), "%s", p);
		}
	}
	out->endpoint_count = (uint32_t)json_array_size(eps);
	return SL_OK;
}

static enum sl_err cj_broker_fields(const json_t *root, struct ctrlj_broker *out,
				    const char **reason)
{
	const json_t *host = json_object_get(root, "host");
	const json_t *port = json_object_get(root, "port");
	const json_t *rack = json_object_get(root, "rack");

	if (!cj_req_int32(root, "version", &out->version, reason, "version missing or not an int") ||
	    !cj_req_int32(root, "jmx_port", &out->jmx_port, reason, "jmx_port missing or not an int"))
		return SL_ECORRUPT;
	if (out->version < 1) {
		*reason = "unsupported broker registration version";
		return SL_ECORRUPT;
	}
	out->port = -1;
	if (host != NULL && !json_is_null(host) && !cj_copy_str(host, out->host, CTRLJ_HOST_MAX)) {
		*reason = "host not a string or too long";
		return SL_ECORRUPT;
	}
	if (port != NULL && !cj_is_int32(port)) {
		*reason = "port not an int";
		return SL_ECORRUPT;
	}
	if (port != NULL)
		out->port = (int32_t)json_integer_value(port);
	if (rack != NULL && !json_is_null(rack)) {
		if (!cj_copy_str(rack, out->rack, CTRLJ_RACK_MAX)) {
			*reason = "rack not a string or too long";
			return SL_ECORRUPT;
		}
		out->has_rack = true;
	}
	out->timestamp_ms = cj_timestamp(root);
	return SL_OK;
}

enum sl_err ctrlj_broker_decode(const char *data, size_t len, struct ctrlj_broker *out,
				const char **reason)
{
	enum sl_err err = SL_ECORRUPT;
	json_t *root = cj_load_object(data, len, reason);

	memset(out, 0, sizeof(*out));
	if (root == NULL)
		return SL_ECORRUPT;
	err = cj_broker_fields(root, out, reason);
	if (err != SL_OK)
		goto out;
	if (out->version == 1) {
		/* Version 1: host and port only, one PLAINTEXT endpoint. */
		if (json_object_get(root, "host") == NULL || json_object_get(root, "port") == NULL ||
		    out->port < 0 || out->port > 65535) {
			*reason = "version 1 registration without host and port";
			err = SL_ECORRUPT;
			goto out;
		}
		struct ctrlj_endpoint *ep = &out->endpoints[0];
		snprintf(ep->listener, sizeof(ep->listener), "PLAINTEXT");
		snprintf(ep->security_protocol, sizeof(ep->security_protocol), "PLAINTEXT");
		memcpy(ep->host, out->host, sizeof(ep->host));
		ep->port = out->port;
		out->endpoint_count = 1;
	} else {
		err = cj_broker_endpoints(root, out, reason);
	}
out:
	json_decref(root);
	if (err != SL_OK)
		memset(out, 0, sizeof(*out));
	return err;
}

/* ---- /controller and /controller_epoch ---- */

enum sl_err ctrlj_controller_encode(int32_t broker_id, int64_t timestamp_ms, char *buf,
				    size_t cap, size_t *len)
{
	char ts[24];
	json_t *root = json_object();

	snprintf(ts, sizeof(ts), "%lld", (long long)timestamp_ms);
	if (root != NULL) {
		json_object_set_new(root, "version", json_integer(1));
		json_object_set_new(root, "brokerid", json_integer(broker_id));
		json_object_set_new(root, "timestamp", json_string(ts));
	}
	return cj_dump(root, buf, cap, len);
}

enum sl_err ctrlj_controller_decode(const char *data, size_t len, struct ctrlj_controller *out,
				    const char **reason)
{
	enum sl_err err = SL_ECORRUPT;
	json_t *root = cj_load_object(data, len, reason);
	const json_t *kepoch;

	memset(out, 0, sizeof(*out));
	out->kraft_controller_epoch = -1;
	if (root == NULL)
		return SL_ECORRUPT;
	if (!cj_req_int32(root, "brokerid", &out->broker_id, reason,
			  "brokerid missing or not an int") || out->broker_id < 0) {
		*reason = "brokerid missing, not an int or negative";
		goto out;
	}
	kepoch = json_object_get(root, "kraftControllerEpoch");
	if (kepoch != NULL) {
		if (!cj_is_int32(kepoch)) {
			*reason = "kraftControllerEpoch not an int";
			goto out;
		}
		out->kraft_controller_epoch = (int32_t)json_integer_value(kepoch);
	}
	out->timestamp_ms = cj_timestamp(root);
	err = SL_OK;
out:
	json_decref(root);
	return err;
}

enum sl_err ctrlj_epoch_encode(int32_t epoch, char *buf, size_t cap, size_t *len)
{
	char tmp[16];
	int n = snprintf(tmp, sizeof(tmp), "%d", (int)epoch);

	SL_ASSERT(n > 0 && (size_t)n < sizeof(tmp));
	if ((size_t)n > cap)
		return SL_ERANGE;
	memcpy(buf, tmp, (size_t)n);
	*len = (size_t)n;
	return SL_OK;
}

enum sl_err ctrlj_epoch_decode(const char *data, size_t len, int32_t *out, const char **reason)
{
	if (data == NULL || !cj_parse_int32(data, len, out)) {
		*reason = "controller epoch not a decimal int";
		return SL_ECORRUPT;
	}
	return SL_OK;
}

/* ---- topic ids ---- */

static int cj_b64url(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	return ch == '_' ? 63 : -1;
}

enum sl_err ctrlj_uuid_parse(const char *s, size_t len, uint8_t out[16])
{
	uint32_t acc = 0;
	uint32_t bits = 0;
	uint32_t w = 0;

	if (len != CTRLJ_TOPIC_ID_LEN)
		return SL_ECORRUPT;
	for (size_t i = 0; i < len; i++) {
		int v = cj_b64url(s[i]);

		if (v < 0)
			return SL_ECORRUPT;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			SL_ASSERT(w < 16);
			out[w++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* 132 bits carry 128: the 4 left over must be zero (canonical). */
	return w == 16 && acc == 0 ? SL_OK : SL_ECORRUPT;
}

void ctrlj_uuid_format(const uint8_t id[16], char out[CTRLJ_TOPIC_ID_LEN + 1])
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	uint32_t bits = 0;
	uint32_t w = 0;

	for (uint32_t i = 0; i < 16; i++) {
		acc = (acc << 8) | id[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[w++] = abc[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	out[w++] = abc[(acc << (6 - bits)) & 63];
	SL_ASSERT(w == CTRLJ_TOPIC_ID_LEN);
	out[w] = '\0';
}

/* ---- /brokers/topics/<t> ---- */

enum sl_err ctrlj_topic_encode(const struct ctrlj_topic *t, char *buf, size_t cap, size_t *len)
{
	char key[16];
	json_t *root = json_object();
	json_t *parts = json_object();
	json_t *adding = json_object();
	json_t *removing = json_object();

	SL_ASSERT(t != NULL && t->partition_count <= CTRLJ_PARTITIONS_MAX);
	if (root == NULL || parts == NULL || adding == NULL || removing == NULL) {
		json_decref(parts);
		json_decref(adding);
		json_decref(removing);
		json_decref(root);
		return SL_ENOMEM;
	}
	for (uint32_t p = 0; p < t->partition_count; p++) {
		const struct ctrlj_assignment *a = &t->parts[p];

		snprintf(key, sizeof(key), "%u", p);
		json_object_set_new(parts, key, cj_ids_json(a->replicas, a->replica_count));
		if (a->adding_count > 0)
			json_object_set_new(adding, key, cj_ids_json(a->adding, a->adding_count));
		if (a->removing_count > 0)
			json_object_set_new(removing, key,
					    cj_ids_json(a->removing, a->removing_count));
	}
	json_object_set_new(root, "version", json_integer(3));
	if (t->has_topic_id)
		json_object_set_new(root, "topic_id", json_string(t->topic_id));
	json_object_set_new(root, "partitions", parts);
	json_object_set_new(root, "adding_replicas", adding);
	json_object_set_new(root, "removing_replicas", removing);
	return cj_dump(root, buf, cap, len);
}

/* A partition-id key "0".."count-1". */
static bool cj_partition_key(const char *key, uint32_t count, uint32_t *p)
{
	int32_t v = 0;

	if (!cj_parse_int32(key, strlen(key), &v) || key[0] == '+' || key[0] == '-' || v < 0 ||
	    (uint32_t)v >= count)
		return false;
	*p = (uint32_t)v;
	return true;
}

/* adding_replicas / removing_replicas: optional objects of id lists. */
static enum sl_err cj_topic_moves(const json_t *root, const char *field, struct ctrlj_topic *t,
				  bool adding, const char **reason)
{
	const json_t *obj = json_object_get(root, field);
	const char *key;
	json_t *v;

	if (obj == NULL || json_is_null(obj))
		return SL_OK;
	if (!json_is_object(obj)) {
		*reason = "adding/removing_replicas not an object";
		return SL_ECORRUPT;
	}
	json_object_foreach((json_t *)obj, key, v) {
		uint32_t p = 0;
		struct ctrlj_assignment *a;

		if (!cj_partition_key(key, UINT32_MAX, &p)) {
			*reason = "bad partition id in adding/removing_replicas";
			return SL_ECORRUPT;
		}
		if (p >= t->partition_count)
			continue;   /* Kafka reads these only for known partitions */
		a = &t->parts[p];
		if (!cj_ids(v, adding ? a->adding : a->removing,
			    adding ? &a->adding_count : &a->removing_count)) {
			*reason = "bad replica list in adding/removing_replicas";
			return SL_ECORRUPT;
		}
	}
	return SL_OK;
}

static enum sl_err cj_topic_parts(const json_t *root, struct ctrlj_topic *t, const char **reason)
{
	const json_t *parts = json_object_get(root, "partitions");
	const char *key;
	json_t *v;

	if (parts == NULL || json_is_null(parts))
		return SL_OK;
	if (!json_is_object(parts) || json_object_size(parts) > CTRLJ_PARTITIONS_MAX) {
		*reason = "partitions not an object or too many";
		return SL_ECORRUPT;
	}
	t->partition_count = (uint32_t)json_object_size(parts);
	if (t->partition_count == 0)
		return SL_OK;
	t->parts = calloc(t->partition_count, sizeof(*t->parts));
	if (t->parts == NULL)
		return SL_ENOMEM;
	json_object_foreach((json_t *)parts, key, v) {
		uint32_t p = 0;
		struct ctrlj_assignment *a;

		if (!cj_partition_key(key, t->partition_count, &p)) {
			*reason = "partition ids not 0..count-1";
			return SL_ECORRUPT;
		}
		a = &t->parts[p];
		if (a->replica_count != 0) {
			*reason = "duplicate partition id";
			return SL_ECORRUPT;
		}
		if (!cj_ids(v, a->replicas, &a->replica_count) || a->replica_count == 0) {
			*reason = "bad replica list";
			return SL_ECORRUPT;
		}
	}
	return SL_OK;
}

enum sl_err ctrlj_topic_decode(const char *data, size_t len, struct ctrlj_topic *out,
			       const char **reason)
{
	enum sl_err err = SL_ECORRUPT;
	json_t *root = cj_load_object(data, len, reason);
	const json_t *id;
	uint8_t raw[16];

	memset(out, 0, sizeof(*out));
	if (root == NULL)
		return SL_ECORRUPT;
	id = json_object_get(root, "topic_id");
	if (id != NULL && !json_is_null(id)) {
		if (!json_is_string(id) ||
		    ctrlj_uuid_parse(json_string_value(id), json_string_length(id), raw) != SL_OK) {
			*reason = "topic_id not a Kafka Uuid";
			goto out;
		}
		memcpy(out->topic_id, json_string_value(id), CTRLJ_TOPIC_ID_LEN);
		out->has_topic_id = true;
	}
	err = cj_topic_parts(root, out, reason);
	if (err == SL_OK)
		err = cj_topic_moves(root, "adding_replicas", out, true, reason);
	if (err == SL_OK)
		err = cj_topic_moves(root, "removing_replicas", out, false, reason);
out:
	json_decref(root);
	if (err != SL_OK)
		ctrlj_topic_free(out);
	return err;
}

void ctrlj_topic_free(struct ctrlj_topic *t)
{
	free(t->parts);
	memset(t, 0, sizeof(*t));
}

/* ---- partition state ---- */

enum sl_err ctrlj_pstate_encode(const struct ctrl_pstate *ps, char *buf, size_t cap,
				size_t *len)
{
	json_t *root = json_object();

	SL_ASSERT(ps != NULL && ps->isr_count <= CTRL_REPLICAS_MAX);
	if (root != NULL) {
		json_object_set_new(root, "controller_epoch", json_integer(ps->controller_epoch));
		json_object_set_new(root, "leader", json_integer(ps->leader));
		json_object_set_new(root, "version", json_integer(1));
		json_object_set_new(root, "leader_epoch", json_integer(ps->leader_epoch));
		json_object_set_new(root, "isr", cj_ids_json(ps->isr, ps->isr_count));
		if (ps->leader_recovery_state != CTRL_RECOVERED)
			json_object_set_new(root, "leader_recovery_state",
					    json_integer(ps->leader_recovery_state));
	}
	return cj_dump(root, buf, cap, len);
}

enum sl_err ctrlj_pstate_decode(const char *data, size_t len, struct ctrl_pstate *ps,
				const char **reason)
{
	enum sl_err err = SL_ECORRUPT;
	json_t *root = cj_load_object(data, len, reason);
	int32_t leader = 0, epoch = 0, cepoch = 0;
	int32_t isr[CTRL_REPLICAS_MAX] = {0};
	uint32_t isr_count = 0;
	const json_t *lrs;

	if (root == NULL)
		return SL_ECORRUPT;
	if (!cj_req_int32(root, "leader", &leader, reason, "leader missing or not an int") ||
	    !cj_req_int32(root, "leader_epoch", &epoch, reason, "leader_epoch missing or not an int") ||
	    !cj_req_int32(root, "controller_epoch", &cepoch, reason,
			  "controller_epoch missing or not an int"))
		goto out;
	if (leader < CTRL_NO_LEADER || epoch < 0) {
		*reason = "leader or leader_epoch out of range";
		goto out;
	}
	if (!cj_ids(json_object_get(root, "isr"), isr, &isr_count)) {
		*reason = "isr missing, not distinct ids or too long";
		goto out;
	}
	lrs = json_object_get(root, "leader_recovery_state");
	ps->leader_recovery_state = CTRL_RECOVERED;
	if (lrs != NULL) {
		if (!json_is_integer(lrs) || json_integer_value(lrs) < 0 ||
		    json_integer_value(lrs) > CTRL_RECOVERING) {
			*reason = "leader_recovery_state not 0 or 1";
			goto out;
		}
		ps->leader_recovery_state = (uint8_t)json_integer_value(lrs);
	}
	ps->leader = leader;
	ps->leader_epoch = epoch;
	ps->controller_epoch = cepoch;
	memcpy(ps->isr, isr, sizeof(isr));
	ps->isr_count = isr_count;
	err = SL_OK;
out:
	json_decref(root);
	return err;
}

/* ---- /config/topics/<t> ---- */

enum sl_err ctrlj_config_encode(const struct ctrlj_config_entry *e, uint32_t count, char *buf,
				size_t cap, size_t *len)
{
	json_t *root = json_object();
	json_t *cfg = json_object();

	if (root == NULL || cfg == NULL || count > CTRLJ_CONFIG_MAX) {
		json_decref(cfg);
		json_decref(root);
		return count > CTRLJ_CONFIG_MAX ? SL_EINVAL : SL_ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		json_t *v = json_string(e[i].value);

		if (v == NULL || json_object_set_new(cfg, e[i].key, v) != 0) {
			json_decref(cfg);
			json_decref(root);
			return SL_EINVAL;   /* not UTF-8 */
		}
	}
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "config", cfg);
	return cj_dump(root, buf, cap, len);
}

enum sl_err ctrlj_config_decode(const char *data, size_t len,
				enum sl_err (*fn)(void *ctx, const char *key, const char *value),
				void *ctx, const char **reason)
{
	enum sl_err err = SL_ECORRUPT;
	json_t *root = cj_load_object(data, len, reason);
	const json_t *cfg;
	const char *key;
	json_t *v;

	if (root == NULL)
		return SL_ECORRUPT;
	cfg = json_object_get(root, "config");
	if (cfg == NULL || json_is_null(cfg)) {
		err = SL_OK;
		goto out;
	}
	if (!json_is_object(cfg) || json_object_size(cfg) > CTRLJ_CONFIG_MAX) {
		*reason = "config not an object or too many entries";
		goto out;
	}
	json_object_foreach((json_t *)cfg, key, v) {
		if (!json_is_string(v) || json_string_length(v) > CTRLJ_CONFIG_STR_MAX ||
		    strlen(key) > CTRLJ_CONFIG_STR_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			*reason = "config value not a string or too long";
			goto out;
		}
	}
	err = SL_OK;
	json_object_foreach((json_t *)cfg, key, v) {
		err = fn(ctx, key, json_string_value(v));
		if (err != SL_OK)
			break;
	}
out:
	json_decref(root);
	return err;
}

/* ---- /cluster/id ---- */

enum sl_err ctrlj_cluster_id_encode(const char *id, char *buf, size_t cap, size_t *len)
{
	json_t *root = json_object();

	SL_ASSERT(id != NULL);
	if (strlen(id) == 0 || strlen(id) > CTRLJ_CLUSTER_ID_MAX) {
		json_decref(root);
		return SL_EINVAL;
	}
	if (root != NULL) {
		json_object_set_new(root, "version", json_string("1"));
		json_object_set_new(root, "id", json_string(id));
	}
	return cj_dump(root, buf, cap, len);
}

enum sl_err ctrlj_cluster_id_decode(const char *data, size_t len, char *out,
				    const char **reason)
{
	enum sl_err err = SL_ECORRUPT;
	json_t *root = cj_load_object(data, len, reason);

	if (root == NULL)
		return SL_ECORRUPT;
	if (!cj_copy_str(json_object_get(root, "id"), out, CTRLJ_CLUSTER_ID_MAX) || out[0] == '\0') {
		*reason = "id missing, not a string or too long";
		out[0] = '\0';
	} else {
		err = SL_OK;
	}
	json_decref(root);
	return err;
}
