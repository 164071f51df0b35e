/*
 * test_topic_config.c — net/topic_config.c: validation of topic configs,
 * broker-derived defaults and their sources, effective partition settings,
 * list APPEND/SUBTRACT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "kerr.h"
#include "plog.h"
#include "topic_config.h"

static int16_t validate(const char *k, const char *v)
{
	char why[256];

	return tcfg_validate(k, strlen(k), v, v != NULL ? strlen(v) : 0, why, sizeof(why));
}

static void test_validate(void **state)
{
	(void)state;
	assert_int_equal(validate("retention.ms", "1000"), KERR_NONE);
	assert_int_equal(validate("retention.ms", "-1"), KERR_NONE);
	assert_int_equal(validate("retention.ms", "-2"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("retention.ms", "abc"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("retention.ms", ""), KERR_INVALID_CONFIG);
	assert_int_equal(validate("retention.ms", NULL), KERR_INVALID_CONFIG);
	assert_int_equal(validate("segment.bytes", "13"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("segment.bytes", "14"), KERR_NONE);
	assert_int_equal(validate("segment.bytes", "2147483648"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("cleanup.policy", "delete,compact"), KERR_NONE);
	assert_int_equal(validate("cleanup.policy", "delete, compact"), KERR_NONE);
	assert_int_equal(validate("cleanup.policy", "remove"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("cleanup.policy", ""), KERR_INVALID_CONFIG);
	assert_int_equal(validate("message.timestamp.type", "LogAppendTime"), KERR_NONE);
	assert_int_equal(validate("message.timestamp.type", "logappendtime"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("preallocate", "TRUE"), KERR_NONE);
	assert_int_equal(validate("preallocate", "yes"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("min.cleanable.dirty.ratio", "0.25"), KERR_NONE);
	assert_int_equal(validate("min.cleanable.dirty.ratio", "1.5"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("compression.type", "zstd"), KERR_NONE);
	assert_int_equal(validate("compression.type", "brotli"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("no.such.key", "1"), KERR_INVALID_CONFIG);
	assert_int_equal(validate("log.retention.ms", "1"), KERR_INVALID_CONFIG); /* broker key */
}

static void test_defaults(void **state)
{
	struct config c;
	char buf[TCFG_VALUE_MAX], err[256];
	const struct tcfg_key *k = tcfg_topic_find("retention.ms", 12);

	(void)state;
	assert_non_null(k);
	assert_int_equal(tcfg_broker_value(NULL, k, buf, sizeof(buf)), TCFG_SRC_DEFAULT);
	assert_string_equal(buf, "604800000");
	config_init(&c);
	assert_int_equal(config_finish(&c, err, sizeof(err)), SL_OK);
	assert_int_equal(tcfg_broker_value(&c, k, buf, sizeof(buf)), TCFG_SRC_DEFAULT);
	assert_string_equal(buf, "604800000");
	assert_int_equal(config_set(&c, "log.retention.ms", "1234", err, sizeof(err)), SL_OK);
	assert_int_equal(config_finish(&c, err, sizeof(err)), SL_OK);
	assert_int_equal(tcfg_broker_value(&c, k, buf, sizeof(buf)), TCFG_SRC_STATIC_BROKER);
	assert_string_equal(buf, "1234");
	k = tcfg_topic_find("cleanup.policy", 14);
	assert_int_equal(tcfg_broker_value(&c, k, buf, sizeof(buf)), TCFG_SRC_DEFAULT);
	assert_string_equal(buf, "delete");
	/* every topic and broker key renders */
	for (uint32_t i = 0; i < tcfg_topic_count(); i++) {
		tcfg_broker_value(&c, tcfg_topic_at(i), buf, sizeof(buf));
		assert_true(buf[0] != '\0');
		assert_int_equal(tcfg_topic_find(tcfg_topic_at(i)->name, strlen(tcfg_topic_at(i)->name)),
				 tcfg_topic_at(i));
	}
	for (uint32_t i = 0; i < tcfg_broker_count(); i++)
		tcfg_broker_value(&c, tcfg_broker_at(i), buf, sizeof(buf));
	config_free(&c);
}

static void test_effective(void **state)
{
	struct plog_config base;
	struct tcfg_effective e;
	const struct catalog_config_entry ov[] = {
		{ "retention.ms", "300" }, { "segment.ms", "200" }, { "segment.bytes", "4096" },
		{ "max.message.bytes", "1000" }, { "message.timestamp.type", "LogAppendTime" },
		{ "flush.messages", "9223372036854775807" }, { "retention.bytes", "bogus" },
		{ "unknown.key", "1" },
	};

	(void)state;
	plog_config_default(&base);
	base.retention_bytes = 77;
	tcfg_effective(NULL, &base, NULL, 0, &e);
	assert_int_equal(e.max_message_bytes, 1048588);
	assert_false(e.log_append_time);
	assert_int_equal(e.plog.retention_ms, base.retention_ms);
	tcfg_effective(NULL, &base, ov, (uint32_t)(sizeof(ov) / sizeof(ov[0])), &e);
	assert_int_equal(e.plog.retention_ms, 300);
	assert_int_equal(e.plog.roll_ms, 200);
	assert_int_equal(e.plog.segment_bytes, 4096);
	assert_int_equal(e.max_message_bytes, 1000);
	assert_true(e.log_append_time);
	assert_int_equal(e.plog.flush_interval_messages, 0);   /* Long.MAX = never */
	assert_int_equal(e.plog.retention_bytes, 77);           /* unparsable ignored */
}

static void test_list_apply(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(tcfg_list_apply(TCFG_LIST_APPEND, "delete", "compact", out, sizeof(out)), SL_OK);
	assert_string_equal(out, "delete,compact");
	assert_int_equal(tcfg_list_apply(TCFG_LIST_APPEND, "delete", "delete", out, sizeof(out)), SL_OK);
	assert_string_equal(out, "delete");
	assert_int_equal(tcfg_list_apply(TCFG_LIST_SUBTRACT, "delete, compact", "delete", out,
					 sizeof(out)), SL_OK);
	assert_string_equal(out, "compact");
	assert_int_equal(tcfg_list_apply(TCFG_LIST_SUBTRACT, "delete", "delete", out, sizeof(out)),
			 SL_OK);
	assert_string_equal(out, "");
	assert_int_equal(tcfg_list_apply(TCFG_LIST_APPEND, "delete", "compact", out, 10), SL_ERANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_effective),
		cmocka_unit_test(test_list_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
