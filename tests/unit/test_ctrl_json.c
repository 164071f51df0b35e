/*
 * test_ctrl_json.c — Kafka's znode values (coordination/ctrl_json.h):
 * decoding samples exactly as Kafka 3.x (and older versions) writes them,
 * encode/decode round trips, endpoints with IPv6, and malformed inputs
 * (wrong types, missing fields, huge arrays, invalid UTF-8, trailing
 * bytes, truncations and byte flips of every sample) answering
 * SL_ECORRUPT with a reason instead of crashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ctrl_json.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Kafka 3.x samples (field order as a Java HashMap would print them). */
static const char k_broker_v5[] =
	"{\"features\":{},\"listener_security_protocol_map\":{\"PLAINTEXT\":\"PLAINTEXT\"},"
	"\"endpoints\":[\"PLAINTEXT://broker1:9092\"],\"jmx_port\":-1,\"port\":9092,"
	"\"host\":\"broker1\",\"version\":5,\"timestamp\":\"1700000000000\"}";
static const char k_broker_v5_rack[] =
	"{\"listener_security_protocol_map\":{\"INTERNAL\":\"PLAINTEXT\",\"EXTERNAL\":\"SASL_SSL\"},"
	"\"endpoints\":[\"INTERNAL://10.0.0.1:9092\",\"EXTERNAL://[2001:db8::1]:9093\"],"
	"\"rack\":\"us-east-1a\",\"jmx_port\":9999,\"features\":{\"metadata.version\":"
	"{\"min_version\":1,\"max_version\":7}},\"host\":null,\"timestamp\":\"1700000000001\","
	"\"port\":-1,\"version\":5}";
static const char k_broker_v1[] =
	"{\"jmx_port\":-1,\"timestamp\":\"1\",\"host\":\"old\",\"version\":1,\"port\":9092}";
static const char k_broker_v2[] =
	"{\"version\":2,\"host\":\"h\",\"port\":9092,\"jmx_port\":-1,"
	"\"endpoints\":[\"PLAINTEXT://h:9092\",\"SSL://h:9093\"]}";
static const char k_controller[] = "{\"version\":1,\"brokerid\":2,\"timestamp\":\"1700000000123\"}";
static const char k_controller_mig[] =
	"{\"version\":2,\"brokerid\":3000,\"timestamp\":\"5\",\"kraftControllerEpoch\":4}";
static const char k_topic_v3[] =
	"{\"partitions\":{\"1\":[2,3,1],\"0\":[1,2,3],\"2\":[3,1,2]},"
	"\"topic_id\":\"4L6g3nShT-eMCtK--X86sw\",\"adding_replicas\":{\"2\":[4]},"
	"\"removing_replicas\":{\"2\":[1]},\"version\":3}";
static const char k_topic_v1[] = "{\"version\":1,\"partitions\":{\"0\":[0,1]}}";
static const char k_pstate[] =
	"{\"controller_epoch\":3,\"leader\":1,\"version\":1,\"leader_epoch\":7,\"isr\":[1,2,3]}";
static const char k_pstate_rec[] =
	"{\"controller_epoch\":3,\"leader\":2,\"version\":1,\"leader_epoch\":8,\"isr\":[2],"
	"\"leader_recovery_state\":1}";
static const char k_config[] =
	"{\"version\":1,\"config\":{\"retention.ms\":\"1000\",\"cleanup.policy\":\"compact\"}}";
static const char k_cluster[] = "{\"version\":\"1\",\"id\":\"4L6g3nShT-eMCtK--X86sw\"}";

static void test_endpoint(void **st)
{
	(void)st;
	struct ctrlj_endpoint ep;
	const char *why = NULL;
	char buf[128];

	assert_int_equal(ctrlj_endpoint_parse(S("PLAINTEXT://[::1]:9092"), &ep, &why), SL_OK);
	assert_string_equal(ep.listener, "PLAINTEXT");
	assert_string_equal(ep.host, "::1");
	assert_int_equal(ep.port, 9092);
	assert_int_equal(ctrlj_endpoint_format(&ep, buf, sizeof(buf)), SL_OK);
	assert_string_equal(buf, "PLAINTEXT://[::1]:9092");
	assert_int_equal(ctrlj_endpoint_parse(S("CLIENT://:0"), &ep, &why), SL_OK);
	assert_string_equal(ep.host, "");
	assert_int_equal(ctrlj_endpoint_parse(S("X://fe80::1%eth0:65535"), &ep, &why), SL_OK);
	assert_string_equal(ep.host, "fe80::1%eth0");
	assert_int_equal(ep.port, 65535);
	static const char *const bad[] = {
		"PLAINTEXT://h:65536", "PLAINTEXT//h:1", "PLAINTEXT://h", "://h:1",
		"PLAIN TEXT://h:1", "PLAINTEXT://h:-1", "PLAINTEXT://h:+1", "PLAINTEXT://[::1:1",
		"PLAINTEXT://[::1]9092", "PLAINTEXT://h h:1", "PLAINTEXT://h:", "PLAINTEXT://h:1x",
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		why = NULL;
		assert_int_equal(ctrlj_endpoint_parse(bad[i], strlen(bad[i]), &ep, &why),
				 SL_ECORRUPT);
		assert_non_null(why);
	}
	assert_int_equal(ctrlj_endpoint_format(&ep, buf, 4), SL_ERANGE);
}

static void test_broker_kafka_samples(void **st)
{
	(void)st;
	struct ctrlj_broker b;
	const char *why = NULL;

	assert_int_equal(ctrlj_broker_decode(S(k_broker_v5), &b, &why), SL_OK);
	assert_int_equal(b.version, 5);
	assert_string_equal(b.host, "broker1");
	assert_int_equal(b.port, 9092);
	assert_int_equal(b.jmx_port, -1);
	assert_int_equal(b.timestamp_ms, 1700000000000LL);
	assert_false(b.has_rack);
	assert_int_equal(b.endpoint_count, 1);
	assert_string_equal(b.endpoints[0].security_protocol, "PLAINTEXT");

	assert_int_equal(ctrlj_broker_decode(S(k_broker_v5_rack), &b, &why), SL_OK);
	assert_true(b.has_rack);
	assert_string_equal(b.rack, "us-east-1a");
	assert_string_equal(b.host, "");
	assert_int_equal(b.port, -1);
	assert_int_equal(b.endpoint_count, 2);
	assert_string_equal(b.endpoints[1].listener, "EXTERNAL");
	assert_string_equal(b.endpoints[1].security_protocol, "SASL_SSL");
	assert_string_equal(b.endpoints[1].host, "2001:db8::1");
	assert_int_equal(b.endpoints[1].port, 9093);

	assert_int_equal(ctrlj_broker_decode(S(k_broker_v1), &b, &why), SL_OK);
	assert_int_equal(b.endpoint_count, 1);
	assert_string_equal(b.endpoints[0].listener, "PLAINTEXT");
	assert_string_equal(b.endpoints[0].host, "old");

	assert_int_equal(ctrlj_broker_decode(S(k_broker_v2), &b, &why), SL_OK);
	assert_int_equal(b.endpoint_count, 2);
	assert_string_equal(b.endpoints[1].security_protocol, "SSL");
}

static void test_broker_round_trip(void **st)
{
	(void)st;
	struct ctrlj_broker b, d;
	char buf[2048];
	size_t len = 0;
	const char *why = NULL;

	memset(&b, 0, sizeof(b));
	snprintf(b.host, sizeof(b.host), "node-1");
	b.port = 9092;
	b.jmx_port = -1;
	b.timestamp_ms = 1234;
	b.has_rack = true;
	snprintf(b.rack, sizeof(b.rack), "r1");
	b.endpoint_count = 2;
	snprintf(b.endpoints[0].listener, CTRLJ_NAME_MAX, "PLAINTEXT");
	snprintf(b.endpoints[0].security_protocol, CTRLJ_NAME_MAX, "PLAINTEXT");
	snprintf(b.endpoints[0].host, CTRLJ_HOST_MAX, "node-1");
	b.endpoints[0].port = 9092;
	snprintf(b.endpoints[1].listener, CTRLJ_NAME_MAX, "REPL");
	snprintf(b.endpoints[1].security_protocol, CTRLJ_NAME_MAX, "PLAINTEXT");
	snprintf(b.endpoints[1].host, CTRLJ_HOST_MAX, "fd00::7");
	b.endpoints[1].port = 9093;
	assert_int_equal(ctrlj_broker_encode(&b, buf, sizeof(buf), &len), SL_OK);
	/* Kafka's field names, version 5, string timestamp, bracketed IPv6. */
	buf[len] = '\0';
	assert_non_null(strstr(buf, "\"version\":5"));
	assert_non_null(strstr(buf, "\"timestamp\":\"1234\""));
	assert_non_null(strstr(buf, "\"jmx_port\":-1"));
	assert_non_null(strstr(buf, "\"features\":{}"));
	assert_non_null(strstr(buf, "\"REPL://[fd00::7]:9093\""));
	assert_non_null(strstr(buf, "\"listener_security_protocol_map\":{"));
	assert_non_null(strstr(buf, "\"rack\":\"r1\""));
	assert_int_equal(ctrlj_broker_decode(buf, len, &d, &why), SL_OK);
	b.version = 5;
	assert_memory_equal(&b, &d, sizeof(b));
	assert_int_equal(ctrlj_broker_encode(&b, buf, 20, &len), SL_ERANGE);
	/* Not UTF-8: refused, nothing leaked. */
	snprintf(b.endpoints[1].security_protocol, CTRLJ_NAME_MAX, "\xff");
	assert_int_equal(ctrlj_broker_encode(&b, buf, sizeof(buf), &len), SL_EINVAL);
}

static void test_broker_malformed(void **st)
{
	(void)st;
	struct ctrlj_broker b;
	static const char *const bad[] = {
		"{\"version\":\"5\",\"jmx_port\":-1,\"endpoints\":[]}",      /* version string */
		"{\"jmx_port\":-1,\"endpoints\":[]}",                        /* no version */
		"{\"version\":5,\"endpoints\":[]}",                          /* no jmx_port */
		"{\"version\":5,\"jmx_port\":-1}",                           /* no endpoints */
		"{\"version\":0,\"jmx_port\":-1,\"endpoints\":[]}",
		"{\"version\":5,\"jmx_port\":-1,\"endpoints\":[1]}",
		"{\"version\":5,\"jmx_port\":-1,\"endpoints\":[\"FOO://h:1\"]}", /* not in default map */
		"{\"version\":5,\"jmx_port\":-1,\"endpoints\":[\"A://h:1\"],"
		"\"listener_security_protocol_map\":{\"B\":\"SSL\"}}",
		"{\"version\":5,\"jmx_port\":-1,\"endpoints\":[],\"rack\":7}",
		"{\"version\":5,\"jmx_port\":-1,\"endpoints\":[],\"host\":[]}",
		"{\"version\":5,\"jmx_port\":1.5,\"endpoints\":[]}",
		"{\"version\":5,\"jmx_port\":4294967296,\"endpoints\":[]}",
		"{\"version\":1,\"jmx_port\":-1}",                           /* v1 without host */
		"{\"version\":5,\"version\":5,\"jmx_port\":-1,\"endpoints\":[]}",
		"{\"version\":5,\"jmx_port\":-1,\"endpoints\":[]} x",
		"{\"version\":5,\"jmx_port\":-1,\"endpoints\":[],\"rack\":\"\xff\"}",
		"[1,2]", "", "null", "{",
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		const char *why = NULL;

		assert_int_equal(ctrlj_broker_decode(bad[i], strlen(bad[i]), &b, &why), SL_ECORRUPT);
		assert_non_null(why);
	}
	/* 17 endpoints: over the bound. */
	char big[2048];
	int n = snprintf(big, sizeof(big), "{\"version\":5,\"jmx_port\":-1,\"endpoints\":[");
	for (int i = 0; i < 17; i++)
		n += snprintf(big + n, sizeof(big) - (size_t)n, "%s\"PLAINTEXT://h:%d\"",
			      i ? "," : "", i);
	n += snprintf(big + n, sizeof(big) - (size_t)n, "]}");
	const char *why = NULL;
	assert_int_equal(ctrlj_broker_decode(big, (size_t)n, &b, &why), SL_ECORRUPT);
}

static void test_controller_and_epoch(void **st)
{
	(void)st;
	struct ctrlj_controller c;
	char buf[128];
	size_t len = 0;
	int32_t e = 0;
	const char *why = NULL;

	assert_int_equal(ctrlj_controller_decode(S(k_controller), &c, &why), SL_OK);
	assert_int_equal(c.broker_id, 2);
	assert_int_equal(c.timestamp_ms, 1700000000123LL);
	assert_int_equal(c.kraft_controller_epoch, -1);
	assert_int_equal(ctrlj_controller_decode(S(k_controller_mig), &c, &why), SL_OK);
	assert_int_equal(c.broker_id, 3000);
	assert_int_equal(c.kraft_controller_epoch, 4);
	assert_int_equal(ctrlj_controller_encode(7, 99, buf, sizeof(buf), &len), SL_OK);
	assert_int_equal(ctrlj_controller_decode(buf, len, &c, &why), SL_OK);
	assert_int_equal(c.broker_id, 7);
	assert_int_equal(c.timestamp_ms, 99);
	buf[len] = '\0';
	assert_non_null(strstr(buf, "\"version\":1"));
	assert_non_null(strstr(buf, "\"brokerid\":7"));
	assert_int_equal(ctrlj_controller_decode(S("{\"brokerid\":\"2\"}"), &c, &why), SL_ECORRUPT);
	assert_int_equal(ctrlj_controller_decode(S("{\"version\":1}"), &c, &why), SL_ECORRUPT);

	assert_int_equal(ctrlj_epoch_encode(-5, buf, sizeof(buf), &len), SL_OK);
	assert_memory_equal(buf, "-5", 2);
	assert_int_equal(ctrlj_epoch_decode(S("42"), &e, &why), SL_OK);
	assert_int_equal(e, 42);
	assert_int_equal(ctrlj_epoch_decode(S("+2147483647"), &e, &why), SL_OK);
	assert_int_equal(e, INT32_MAX);
	static const char *const bad[] = {"", "2147483648", " 1", "1 ", "0x1", "-", "1.0", "\"1\""};
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++)
		assert_int_equal(ctrlj_epoch_decode(bad[i], strlen(bad[i]), &e, &why), SL_ECORRUPT);
	assert_int_equal(ctrlj_epoch_encode(INT32_MIN, buf, 3, &len), SL_ERANGE);
}

static void test_uuid(void **st)
{
	(void)st;
	uint8_t id[16], back[16];
	char s[CTRLJ_TOPIC_ID_LEN + 1];

	memset(id, 0, sizeof(id));
	ctrlj_uuid_format(id, s);
	assert_string_equal(s, "AAAAAAAAAAAAAAAAAAAAAA");   /* Kafka's Uuid.ZERO_UUID */
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(i * 37 + 250);
	ctrlj_uuid_format(id, s);
	assert_int_equal(ctrlj_uuid_parse(s, strlen(s), back), SL_OK);
	assert_memory_equal(id, back, 16);
	assert_int_equal(ctrlj_uuid_parse(S("AAAAAAAAAAAAAAAAAAAAAB"), back), SL_ECORRUPT);
	assert_int_equal(ctrlj_uuid_parse(S("AAAAAAAAAAAAAAAAAAAAA="), back), SL_ECORRUPT);
	assert_int_equal(ctrlj_uuid_parse(S("AAAA"), back), SL_ECORRUPT);
}

static void test_topic(void **st)
{
	(void)st;
	struct ctrlj_topic t, d;
	const char *why = NULL;
	char buf[1024];
	size_t len = 0;

	assert_int_equal(ctrlj_topic_decode(S(k_topic_v3), &t, &why), SL_OK);
	assert_true(t.has_topic_id);
	assert_string_equal(t.topic_id, "4L6g3nShT-eMCtK--X86sw");
	assert_int_equal(t.partition_count, 3);
	assert_int_equal(t.parts[1].replica_count, 3);
	assert_int_equal(t.parts[1].replicas[0], 2);
	assert_int_equal(t.parts[2].adding_count, 1);
	assert_int_equal(t.parts[2].adding[0], 4);
	assert_int_equal(t.parts[2].removing[0], 1);
	assert_int_equal(t.parts[0].adding_count, 0);
	assert_int_equal(ctrlj_topic_encode(&t, buf, sizeof(buf), &len), SL_OK);
	assert_int_equal(ctrlj_topic_decode(buf, len, &d, &why), SL_OK);
	assert_int_equal(d.partition_count, 3);
	assert_memory_equal(t.parts, d.parts, 3 * sizeof(*t.parts));
	buf[len] = '\0';
	assert_non_null(strstr(buf, "\"version\":3"));
	assert_non_null(strstr(buf, "\"adding_replicas\":{\"2\":[4]}"));
	assert_non_null(strstr(buf, "\"0\":[1,2,3]"));
	ctrlj_topic_free(&d);
	ctrlj_topic_free(&t);

	assert_int_equal(ctrlj_topic_decode(S(k_topic_v1), &t, &why), SL_OK);
	assert_false(t.has_topic_id);
	assert_int_equal(t.partition_count, 1);
	assert_int_equal(t.parts[0].replicas[1], 1);
	ctrlj_topic_free(&t);

	static const char *const bad[] = {
		"{\"partitions\":{\"1\":[0]}}",               /* not 0..n-1 */
		"{\"partitions\":{\"0\":[0],\"01\":[1]}}",     /* "01" is 1 (toInt): accepted */
		"{\"partitions\":{\"0\":[]}}",
		"{\"partitions\":{\"0\":[1,1]}}",
		"{\"partitions\":{\"0\":[-1]}}",
		"{\"partitions\":{\"0\":\"1,2\"}}",
		"{\"partitions\":{\"x\":[1]}}",
		"{\"partitions\":[[1]]}",
		"{\"partitions\":{\"0\":[1]},\"topic_id\":\"short\"}",
		"{\"partitions\":{\"0\":[1]},\"topic_id\":5}",
		"{\"partitions\":{\"0\":[1]},\"adding_replicas\":[]}",
		"{\"partitions\":{\"0\":[1]},\"adding_replicas\":{\"0\":[true]}}",
		"{\"partitions\":{\"0\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}}",
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		why = NULL;
		enum sl_err err = ctrlj_topic_decode(bad[i], strlen(bad[i]), &t, &why);

		if (i == 1) {
			/* "01" parses as partition 1 (Java's toInt): accepted. */
			assert_int_equal(err, SL_OK);
			ctrlj_topic_free(&t);
			continue;
		}
		assert_int_equal(err, SL_ECORRUPT);
		assert_non_null(why);
		assert_null(t.parts);
	}
}

static void test_pstate(void **st)
{
	(void)st;
	struct ctrl_pstate ps, d;
	const char *why = NULL;
	char buf[256];
	size_t len = 0;

	memset(&ps, 0, sizeof(ps));
	assert_int_equal(ctrlj_pstate_decode(S(k_pstate), &ps, &why), SL_OK);
	assert_int_equal(ps.leader, 1);
	assert_int_equal(ps.leader_epoch, 7);
	assert_int_equal(ps.controller_epoch, 3);
	assert_int_equal(ps.isr_count, 3);
	assert_int_equal(ps.isr[2], 3);
	assert_int_equal(ps.leader_recovery_state, CTRL_RECOVERED);
	assert_int_equal(ctrlj_pstate_encode(&ps, buf, sizeof(buf), &len), SL_OK);
	buf[len] = '\0';
	assert_null(strstr(buf, "leader_recovery_state"));
	assert_non_null(strstr(buf, "\"isr\":[1,2,3]"));
	assert_non_null(strstr(buf, "\"version\":1"));
	memset(&d, 0, sizeof(d));
	assert_int_equal(ctrlj_pstate_decode(buf, len, &d, &why), SL_OK);
	assert_memory_equal(&ps, &d, sizeof(ps));

	assert_int_equal(ctrlj_pstate_decode(S(k_pstate_rec), &ps, &why), SL_OK);
	assert_int_equal(ps.leader_recovery_state, CTRL_RECOVERING);
	assert_int_equal(ctrlj_pstate_encode(&ps, buf, sizeof(buf), &len), SL_OK);
	buf[len] = '\0';
	assert_non_null(strstr(buf, "\"leader_recovery_state\":1"));
	/* Leader -1 with a kept ISR, as Kafka writes after the last ISR member died. */
	assert_int_equal(ctrlj_pstate_decode(S("{\"controller_epoch\":1,\"leader\":-1,\"version\":1,"
					       "\"leader_epoch\":2,\"isr\":[0]}"), &ps, &why),
			 SL_OK);
	assert_int_equal(ps.leader, -1);

	static const char *const bad[] = {
		"{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":2}",
		"{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":2,\"isr\":{}}",
		"{\"controller_epoch\":1,\"leader\":-2,\"leader_epoch\":2,\"isr\":[]}",
		"{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":-1,\"isr\":[]}",
		"{\"controller_epoch\":1,\"leader\":\"1\",\"leader_epoch\":2,\"isr\":[]}",
		"{\"leader\":1,\"leader_epoch\":2,\"isr\":[]}",
		"{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":2,\"isr\":[],"
		"\"leader_recovery_state\":2}",
		"{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":2,\"isr\":[1,2,1]}",
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		why = NULL;
		assert_int_equal(ctrlj_pstate_decode(bad[i], strlen(bad[i]), &ps, &why), SL_ECORRUPT);
		assert_non_null(why);
	}
}

struct cfg_seen {
	int count;
	char last[64];
};

static enum sl_err cfg_cb(void *ctx, const char *key, const char *value)
{
	struct cfg_seen *s = ctx;

	s->count++;
	if (strcmp(key, "retention.ms") == 0)
		snprintf(s->last, sizeof(s->last), "%s", value);
	return s->count >= 100 ? SL_EINVAL : SL_OK;
}

static void test_config_and_cluster_id(void **st)
{
	(void)st;
	struct cfg_seen seen = {0};
	const char *why = NULL;
	char buf[256], id[CTRLJ_CLUSTER_ID_MAX + 1];
	size_t len = 0;

	assert_int_equal(ctrlj_config_decode(S(k_config), cfg_cb, &seen, &why), SL_OK);
	assert_int_equal(seen.count, 2);
	assert_string_equal(seen.last, "1000");
	struct ctrlj_config_entry e[2] = {{"segment.bytes", "1048576"}, {"retention.ms", "5"}};
	assert_int_equal(ctrlj_config_encode(e, 2, buf, sizeof(buf), &len), SL_OK);
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(ctrlj_config_decode(buf, len, cfg_cb, &seen, &why), SL_OK);
	assert_int_equal(seen.count, 2);
	assert_string_equal(seen.last, "5");
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(ctrlj_config_decode(S("{\"version\":1}"), cfg_cb, &seen, &why), SL_OK);
	assert_int_equal(seen.count, 0);
	assert_int_equal(ctrlj_config_decode(S("{\"version\":1,\"config\":{\"a\":1}}"), cfg_cb,
					     &seen, &why), SL_ECORRUPT);
	assert_int_equal(ctrlj_config_decode(S("{\"version\":1,\"config\":[]}"), cfg_cb, &seen,
					     &why), SL_ECORRUPT);
	assert_int_equal(seen.count, 0);   /* nothing delivered before validation */

	assert_int_equal(ctrlj_cluster_id_decode(S(k_cluster), id, &why), SL_OK);
	assert_string_equal(id, "4L6g3nShT-eMCtK--X86sw");
	assert_int_equal(ctrlj_cluster_id_encode("abc", buf, sizeof(buf), &len), SL_OK);
	buf[len] = '\0';
	assert_non_null(strstr(buf, "\"version\":\"1\""));
	assert_int_equal(ctrlj_cluster_id_decode(buf, len, id, &why), SL_OK);
	assert_string_equal(id, "abc");
	assert_int_equal(ctrlj_cluster_id_decode(S("{\"id\":1}"), id, &why), SL_ECORRUPT);
	assert_int_equal(ctrlj_cluster_id_decode(S("{\"id\":\"\"}"), id, &why), SL_ECORRUPT);
	assert_int_equal(ctrlj_cluster_id_encode("", buf, sizeof(buf), &len), SL_EINVAL);
}

/* A huge array, deep nesting and an oversized value are refused. */
static void test_huge_inputs(void **st)
{
	(void)st;
	const char *why = NULL;
	struct ctrl_pstate ps;
	size_t cap = CTRLJ_VALUE_MAX + 16;
	char *big = malloc(cap);
	size_t n = 0;

	assert_non_null(big);
	n += (size_t)snprintf(big, cap, "{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":2,\"isr\":[");
	for (int i = 0; i < 100000; i++)
		n += (size_t)snprintf(big + n, cap - n, "%s%d", i ? "," : "", i);
	n += (size_t)snprintf(big + n, cap - n, "]}");
	assert_int_equal(ctrlj_pstate_decode(big, n, &ps, &why), SL_ECORRUPT);
	/* 100 000 levels of nesting. */
	memset(big, '[', 100000);
	assert_int_equal(ctrlj_pstate_decode(big, 100000, &ps, &why), SL_ECORRUPT);
	/* Over 1 MiB. */
	memset(big, ' ', cap);
	assert_int_equal(ctrlj_pstate_decode(big, CTRLJ_VALUE_MAX + 1, &ps, &why), SL_ECORRUPT);
	/* NUL inside. */
	assert_int_equal(ctrlj_cluster_id_decode("{\"id\":\"a\0b\"}", 12, big, &why), SL_ECORRUPT);
	free(big);
}

/* Every truncation and a byte flip at every position of every sample:
 * decoders answer OK or ECORRUPT and leak nothing (ASan). */
static void test_mutations(void **st)
{
	(void)st;
	static const char *const samples[] = {k_broker_v5, k_broker_v5_rack, k_broker_v1,
					      k_controller, k_topic_v3, k_pstate, k_config,
					      k_cluster};
	char buf[1024];

	for (size_t s = 0; s < SL_ARRAY_LEN(samples); s++) {
		size_t len = strlen(samples[s]);

		for (size_t cut = 0; cut <= len; cut++) {
			for (int flip = -1; flip < 3; flip++) {
				static const char repl[] = {'"', '\xc3', '9'};
				struct ctrlj_broker b;
				struct ctrlj_controller c;
				struct ctrlj_topic t;
				struct ctrl_pstate ps;
				struct cfg_seen seen = {0};
				const char *why = NULL;
				size_t l = cut;
				enum sl_err e;

				memcpy(buf, samples[s], len);
				if (flip >= 0) {
					l = len;
					if (cut < len)
						buf[cut] = repl[flip];
				}
				e = ctrlj_broker_decode(buf, l, &b, &why);
				assert_true(e == SL_OK || e == SL_ECORRUPT);
				e = ctrlj_controller_decode(buf, l, &c, &why);
				assert_true(e == SL_OK || e == SL_ECORRUPT);
				e = ctrlj_topic_decode(buf, l, &t, &why);
				assert_true(e == SL_OK || e == SL_ECORRUPT);
				ctrlj_topic_free(&t);
				e = ctrlj_pstate_decode(buf, l, &ps, &why);
				assert_true(e == SL_OK || e == SL_ECORRUPT);
				e = ctrlj_config_decode(buf, l, cfg_cb, &seen, &why);
				assert_true(e == SL_OK || e == SL_ECORRUPT);
				if (flip < 0 && cut < len)
					assert_int_equal(e, SL_ECORRUPT);   /* truncated JSON */
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_broker_kafka_samples),
		cmocka_unit_test(test_broker_round_trip),
		cmocka_unit_test(test_broker_malformed),
		cmocka_unit_test(test_controller_and_epoch),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_topic),
		cmocka_unit_test(test_pstate),
		cmocka_unit_test(test_config_and_cluster_id),
		cmocka_unit_test(test_huge_inputs),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
