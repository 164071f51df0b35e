/*
 * dispatch.c — the table of served APIs (see dispatch.h).
 */
#include "dispatch.h"

/*
 * [api key] = { first version, last version, handler, flags }.
 * Versions follow issue 3: Produce from 3 (message format v2 only),
 * Fetch from 4 (v2 record batches, isolation level), ListOffsets from 1.
 *
 * Produce is advertised from version 0 while versions 0-2 are refused
 * (connection closed, as for any unserved version), as Kafka 4 does
 * (KAFKA-18659): librdkafka before 2.10 compresses with gzip, snappy or
 * lz4 only when the broker's advertised Produce range includes version 0,
 * and otherwise sends its batches uncompressed. Clients pick the highest
 * version both sides know, so none of them sends v0-2 to a broker that
 * also advertises v3 and up.
 */
static struct dispatch_api dispatch_table[DISPATCH_KEYS] = {
	[KAFKA_API_PRODUCE] = { 3, 11, api_produce_handle, DISPATCH_ADVERTISE_V0 },
	[KAFKA_API_FETCH] = { 4, 16, api_fetch_handle, 0 },
	[KAFKA_API_LIST_OFFSETS] = { 1, 8, api_list_offsets_handle, 0 },
	[KAFKA_API_METADATA] = { 0, 12, api_metadata_handle, 0 },
	[KAFKA_API_API_VERSIONS] = { 0, 3, api_api_versions_handle, DISPATCH_ANY_VERSION },
	[KAFKA_API_CREATE_TOPICS] = { 2, 7, api_create_topics_handle, 0 },
	[KAFKA_API_DELETE_TOPICS] = { 1, 6, api_delete_topics_handle, 0 },
	[KAFKA_API_DELETE_RECORDS] = { 0, 2, api_delete_records_handle, 0 },
	[KAFKA_API_DESCRIBE_CONFIGS] = { 1, 4, api_describe_configs_handle, 0 },
	[KAFKA_API_CREATE_PARTITIONS] = { 0, 3, api_create_partitions_handle, 0 },
	[KAFKA_API_INCREMENTAL_ALTER_CONFIGS] = { 0, 1, api_incremental_alter_configs_handle, 0 },
	[KAFKA_API_DESCRIBE_CLUSTER] = { 0, 1, api_describe_cluster_handle, 0 },
	[KAFKA_API_INIT_PRODUCER_ID] = { 0, 4, api_init_producer_id_handle, 0 },
};

void dispatch_register(int16_t key, int16_t min, int16_t max, dispatch_handler_fn *handle)
{
	const struct kafka_api *row = kafka_api_find(key);

	SL_ASSERT(key >= 0 && key < DISPATCH_KEYS && handle != NULL);
	SL_ASSERT(dispatch_table[key].handle == NULL || dispatch_table[key].handle == handle);
	SL_ASSERT(row != NULL && min >= row->version_min && max <= row->version_max && min <= max);
	dispatch_table[key] = (struct dispatch_api){ min, max, handle, 0 };
}

const struct dispatch_api *dispatch_find(int16_t key)
{
	if (key < 0 || key >= DISPATCH_KEYS || dispatch_table[key].handle == NULL)
		return NULL;
	return &dispatch_table[key];
}

enum dispatch_verdict dispatch_check(int16_t key, int16_t version)
{
	const struct dispatch_api *api = dispatch_find(key);

	if (api == NULL)
		return DISPATCH_UNKNOWN_KEY;
	if (version >= api->version_min && version <= api->version_max)
		return DISPATCH_OK;
	return (api->flags & DISPATCH_ANY_VERSION) ? DISPATCH_BAD_VERSION_ANSWER
						   : DISPATCH_BAD_VERSION;
}

int16_t dispatch_advertised_min(const struct dispatch_api *api)
{
	return (api->flags & DISPATCH_ADVERTISE_V0) ? 0 : api->version_min;
}

uint32_t dispatch_count(void)
{
	uint32_t n = 0;

	for (int16_t k = 0; k < DISPATCH_KEYS; k++)
		if (dispatch_find(k) != NULL)
			n++;
	return n;
}

uint32_t dispatch_fill_api_versions(struct ApiVersionsResponse_ApiVersion *items, uint32_t cap)
{
	uint32_t n = 0;

	for (int16_t k = 0; k < DISPATCH_KEYS; k++) {
		const struct dispatch_api *api = dispatch_find(k);
		if (api == NULL)
			continue;
		SL_ASSERT(n < cap);
		items[n].ApiKey = k;
		items[n].MinVersion = dispatch_advertised_min(api);
		items[n].MaxVersion = api->version_max;
		n++;
	}
	SL_ASSERT(n == dispatch_count());
	return n;
}

void dispatch_print_markdown(FILE *out)
{
	fprintf(out, "| API | key | versions served |\n|---|---|---|\n");
	for (int16_t k = 0; k < DISPATCH_KEYS; k++) {
		const struct dispatch_api *api = dispatch_find(k);
		if (api == NULL)
			continue;
		const struct kafka_api *row = kafka_api_find(k);
		fprintf(out, "| %s | %d | %d–%d |\n", row != NULL ? row->name : "?", k,
			api->version_min, api->version_max);
	}
}
