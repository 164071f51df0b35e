/*
 * test_dispatch.c — the dispatch table (net/dispatch.h) against the codec
 * and against what ApiVersions advertises: every served range decodes,
 * every served key has a handler, verdicts for unknown keys and versions,
 * and an ApiVersions response built from the table survives an
 * encode/decode round trip in every served version unchanged.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"
#include "kafka_codec.h"

static void test_table_within_codec(void **state)
{
	uint32_t served = 0;

	(void)state;
	for (int16_t k = 0; k < DISPATCH_KEYS; k++) {
		const struct dispatch_api *api = dispatch_find(k);
		if (api == NULL)
			continue;
		const struct kafka_api *row = kafka_api_find(k);
		assert_non_null(row);
		assert_non_null(api->handle);
		assert_true(api->version_min <= api->version_max);
		assert_true(api->version_min >= row->version_min);
		assert_true(api->version_max <= row->version_max);
		assert_non_null(row->decode_request);
		assert_non_null(row->encode_response);
		served++;
	}
	assert_int_equal(served, dispatch_count());
	assert_null(dispatch_find(-1));
	assert_null(dispatch_find(DISPATCH_KEYS));
	assert_null(dispatch_find(INT16_MAX));
}

/* The ranges issue 3 asks for are at least what is served. */
static void test_required_ranges(void **state)
{
	static const struct { int16_t key, min, max; } want[] = {
		{ KAFKA_API_API_VERSIONS, 0, 3 }, { KAFKA_API_METADATA, 0, 12 },
		{ KAFKA_API_PRODUCE, 3, 11 },     { KAFKA_API_FETCH, 4, 16 },
		{ KAFKA_API_LIST_OFFSETS, 1, 8 },
	};

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
		const struct dispatch_api *api = dispatch_find(want[i].key);
		assert_non_null(api);
		assert_true(api->version_min <= want[i].min);
		assert_true(api->version_max >= want[i].max);
	}
}

static void test_verdicts(void **state)
{
	const struct dispatch_api *av = dispatch_find(KAFKA_API_API_VERSIONS);
	const struct dispatch_api *pr = dispatch_find(KAFKA_API_PRODUCE);

	(void)state;
	assert_int_equal(dispatch_check(999, 0), DISPATCH_UNKNOWN_KEY);
	assert_int_equal(dispatch_check(-1, 0), DISPATCH_UNKNOWN_KEY);
	assert_int_equal(dispatch_check(DISPATCH_KEYS - 1, 0), DISPATCH_UNKNOWN_KEY);
	assert_int_equal(dispatch_check(KAFKA_API_PRODUCE, pr->version_min), DISPATCH_OK);
	assert_int_equal(dispatch_check(KAFKA_API_PRODUCE, pr->version_max), DISPATCH_OK);
	assert_int_equal(dispatch_check(KAFKA_API_PRODUCE, (int16_t)(pr->version_min - 1)),
			 DISPATCH_BAD_VERSION);
	/* advertised from 0 (as Kafka 4, for librdkafka's compression), still refused */
	assert_int_equal(dispatch_advertised_min(pr), 0);
	assert_int_equal(dispatch_check(KAFKA_API_PRODUCE, 0), DISPATCH_BAD_VERSION);
	assert_int_equal(dispatch_check(KAFKA_API_PRODUCE, (int16_t)(pr->version_max + 1)),
			 DISPATCH_BAD_VERSION);
	/* ApiVersions beyond its range is answered, not closed (as Kafka does) */
	assert_int_equal(dispatch_check(KAFKA_API_API_VERSIONS, (int16_t)(av->version_max + 1)),
			 DISPATCH_BAD_VERSION_ANSWER);
	assert_int_equal(dispatch_check(KAFKA_API_API_VERSIONS, INT16_MAX),
			 DISPATCH_BAD_VERSION_ANSWER);
	assert_int_equal(dispatch_check(KAFKA_API_API_VERSIONS, av->version_max), DISPATCH_OK);
}

/* What ApiVersions advertises, round-tripped through the codec, is the table. */
static void test_api_versions_is_the_table(void **state)
{
	const struct dispatch_api *av = dispatch_find(KAFKA_API_API_VERSIONS);
	uint32_t n = dispatch_count();
	struct ApiVersionsResponse_ApiVersion *items = calloc(n, sizeof(*items));

	(void)state;
	assert_non_null(items);
	assert_int_equal(dispatch_fill_api_versions(items, n), n);
	for (uint32_t i = 0; i < n; i++) {
		const struct dispatch_api *api = dispatch_find(items[i].ApiKey);
		assert_non_null(api);
		if (items[i].ApiKey == KAFKA_API_PRODUCE)
			assert_int_equal(items[i].MinVersion, 0);
		else
			assert_int_equal(items[i].MinVersion, api->version_min);
		assert_int_equal(items[i].MaxVersion, api->version_max);
		if (i > 0)
			assert_true(items[i - 1].ApiKey < items[i].ApiKey);
	}
	for (int16_t v = av->version_min; v <= av->version_max; v++) {
		struct ApiVersionsResponse resp, back;
		struct kwrite w;
		struct kread r;
		struct karena arena;

		kafka_init_api_versions_response(&resp);
		resp.ApiKeys.count = (int32_t)n;
		resp.ApiKeys.items = items;
		kwrite_init(&w, 1 << 16);
		assert_int_equal(kafka_encode_api_versions_response(&w, v, &resp), SL_OK);
		assert_int_equal(karena_init_heap(&arena, 1 << 16), SL_OK);
		kread_init(&r, w.buf, w.len);
		assert_int_equal(kafka_decode_api_versions_response(&r, v, &back, &arena), SL_OK);
		assert_int_equal(kread_left(&r), 0);
		assert_int_equal(back.ErrorCode, 0);
		assert_int_equal(back.ApiKeys.count, (int32_t)n);
		assert_memory_equal(back.ApiKeys.items, items, n * sizeof(*items));
		karena_destroy(&arena);
		kwrite_destroy(&w);
	}
	free(items);
}

static void test_markdown(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	char line[64];

	(void)state;
	assert_non_null(f);
	dispatch_print_markdown(f);
	fclose(f);
	assert_non_null(strstr(text, "| API | key | versions served |"));
	for (int16_t k = 0; k < DISPATCH_KEYS; k++) {
		const struct dispatch_api *api = dispatch_find(k);
		if (api == NULL)
			continue;
		snprintf(line, sizeof(line), "| %s | %d | %d–%d |", kafka_api_find(k)->name, k,
			 api->version_min, api->version_max);
		assert_non_null(strstr(text, line));
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_within_codec),
		cmocka_unit_test(test_required_ranges),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_api_versions_is_the_table),
		cmocka_unit_test(test_markdown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
