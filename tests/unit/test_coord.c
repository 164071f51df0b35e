/*
 * test_coord.c — the coordinator's pure pieces: Kafka's partition for a
 * group id (Java's String.hashCode over UTF-16 code units, Utils.abs with
 * Integer.MIN_VALUE -> 0, mod offsets.topic.num.partitions), and the
 * __consumer_offsets record formats byte for byte (OffsetCommitKey v1,
 * OffsetCommitValue v3, GroupMetadataKey v2, GroupMetadataValue v3).
 * Expected hashes come from an independent UTF-16 implementation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "coord.h"
#include "coord_log.h"

static void test_java_hash(void **state)
{
	static const struct {
		const char *s;
		int32_t hash;
		int32_t partition;
	} cases[] = {
		{ "g1", 3242, 42 },
		{ "my-group", -1906497762, 12 },
		{ "console-consumer-12345", 158455506, 6 },
		{ "gr\xc3\xbc\xc3\x9f" "e", 98768023, 23 },        /* 2-byte UTF-8 */
		{ "\xe7\xbe\xa4\xe7\xbb\x84", 1045408, 8 },         /* 3-byte UTF-8 */
		{ "emoji-\xf0\x9f\x98\x80", 1164511306, 6 },        /* surrogate pair */
		{ "", 0, 0 },
		{ "polygenelubricants", INT32_MIN, 0 },             /* Utils.abs(MIN) = 0 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = strlen(cases[i].s);
		assert_int_equal(coord_java_hash(cases[i].s, len), cases[i].hash);
		assert_int_equal(coord_partition_for(cases[i].s, len, 50), cases[i].partition);
	}
	/* malformed UTF-8 hashes as U+FFFD, like Java's decoder */
	assert_int_equal(coord_java_hash("\xff", 1), 0xfffd);
}

static void test_offset_record(void **state)
{
	uint8_t k[64], v[64];
	struct coord_buf key = { k, 0, sizeof(k), false };
	struct coord_buf val = { v, 0, sizeof(v), false };
	static const uint8_t want_key[] = { 0, 1, 0, 2, 'g', '1', 0, 1, 't', 0, 0, 0, 5 };
	static const uint8_t want_val[] = { 0, 3, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 7,
					    0, 2, 'm', 'd', 0, 0, 0, 0, 0, 0, 0x03, 0xe8 };

	(void)state;
	coord_key_offset(&key, "g1", 2, "t", 1, 5);
	coord_value_offset(&val, 42, 7, "md", 2, 1000);
	assert_false(key.err || val.err);
	assert_int_equal(key.len, sizeof(want_key));
	assert_memory_equal(k, want_key, sizeof(want_key));
	assert_int_equal(val.len, sizeof(want_val));
	assert_memory_equal(v, want_val, sizeof(want_val));
	/* too small a buffer is a sticky error, not an overflow */
	struct coord_buf tiny = { k, 0, 5, false };
	coord_key_offset(&tiny, "g1", 2, "t", 1, 5);
	assert_true(tiny.err);
	assert_true(tiny.len <= 5);
}

static void test_group_record(void **state)
{
	uint8_t k[32];
	struct coord_buf key = { k, 0, sizeof(k), false };
	static const uint8_t want_key[] = { 0, 2, 0, 2, 'g', '1' };
	struct group_config cfg;
	struct group_ops ops = { 0 };
	struct group *g;
	uint64_t seq = 0;

	(void)state;
	coord_key_group(&key, "g1", 2);
	assert_int_equal(key.len, sizeof(want_key));
	assert_memory_equal(k, want_key, sizeof(want_key));
	/* an empty group: version 3, "", generation, null protocol/leader, ts, 0 members */
	group_config_default(&cfg);
	assert_int_equal(group_create(&g, "g1", 2, &cfg, &ops, NULL, &seq), SL_OK);
	g->generation = 9;
	uint8_t v[128];
	struct coord_buf val = { v, 0, sizeof(v), false };
	assert_true(coord_value_group_bytes(g) <= sizeof(v));
	coord_value_group(&val, g, 5);
	static const uint8_t want_val[] = { 0, 3, 0, 0, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff,
					    0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0 };
	assert_false(val.err);
	assert_int_equal(val.len, sizeof(want_val));
	assert_memory_equal(v, want_val, sizeof(want_val));
	group_destroy(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_java_hash),
		cmocka_unit_test(test_offset_record),
		cmocka_unit_test(test_group_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
