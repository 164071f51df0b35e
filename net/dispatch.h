/*
 * dispatch.h — which Kafka APIs the broker serves, in which versions, and
 * by which handler: one table, indexed by api key. ApiVersions answers
 * from this same table, so what is advertised is exactly what is served.
 *
 * Adding an API: write net/api_<name>.c with
 *     enum sl_err api_<name>_handle(struct req *rq);
 * declare it below and add one line to the table in dispatch.c:
 *     [KAFKA_API_FOO] = { 0, 3, api_foo_handle, 0 },
 * The version range must lie within what the generated codec decodes
 * (kafka_api_find(key)->version_min/max; asserted by the unit test).
 * ApiVersions advertises exactly the served range, with one exception
 * that Kafka makes too (Produce, see dispatch.c).
 *
 * Runs on: any shard (the table is read-only).
 */
#ifndef SL_NET_DISPATCH_H
#define SL_NET_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kafka_codec.h"
#include "req.h"
#include "sl.h"

/* Api keys are small integers; the table covers 0 .. DISPATCH_KEYS - 1. */
#define DISPATCH_KEYS 128

typedef enum sl_err dispatch_handler_fn(struct req *rq);

/* Flags. */
#define DISPATCH_ANY_VERSION (1u << 0)  /* handler also gets versions out of range (body NULL) */
/* ApiVersions advertises MinVersion 0; requests below version_min are
 * still refused. Only Produce, for the reason given in dispatch.c. */
#define DISPATCH_ADVERTISE_V0 (1u << 1)

struct dispatch_api {
	int16_t version_min;
	int16_t version_max;
	dispatch_handler_fn *handle;    /* NULL: not served */
	uint32_t flags;
};

enum dispatch_verdict {
	DISPATCH_OK = 0,
	DISPATCH_UNKNOWN_KEY,           /* not served at all: close */
	DISPATCH_BAD_VERSION,           /* served, not this version: close */
	DISPATCH_BAD_VERSION_ANSWER,    /* ApiVersions: answer UNSUPPORTED_VERSION */
};

/*
 * Adds a handler from a layer above net/ (coordination/: the group
 * coordinator), so net/ never depends on it. Called from main.c before
 * the shards start (the table is read-only once they run); the range must
 * lie within the codec's. Registering the same handler again is a no-op.
 */
void dispatch_register(int16_t key, int16_t min, int16_t max, dispatch_handler_fn *handle);

/* The row for `key`, or NULL when it is not served. */
const struct dispatch_api *dispatch_find(int16_t key);

/* What to do with a request of (key, version). */
enum dispatch_verdict dispatch_check(int16_t key, int16_t version);

/* Number of served api keys. */
uint32_t dispatch_count(void);

/* The MinVersion ApiVersions advertises for a served api. */
int16_t dispatch_advertised_min(const struct dispatch_api *api);

/*
 * Writes the served keys, ascending, into items[0, cap) (cap >=
 * dispatch_count()). Returns how many were written.
 */
uint32_t dispatch_fill_api_versions(struct ApiVersionsResponse_ApiVersion *items, uint32_t cap);

/* Writes the table as Markdown (README; `sluice --api-versions`). */
void dispatch_print_markdown(FILE *out);

/* ---- handlers (net/api_<name>.c) ---- */
enum sl_err api_api_versions_handle(struct req *rq);
enum sl_err api_metadata_handle(struct req *rq);
enum sl_err api_produce_handle(struct req *rq);
enum sl_err api_fetch_handle(struct req *rq);
enum sl_err api_list_offsets_handle(struct req *rq);
enum sl_err api_create_topics_handle(struct req *rq);
enum sl_err api_delete_topics_handle(struct req *rq);
enum sl_err api_delete_records_handle(struct req *rq);
enum sl_err api_describe_configs_handle(struct req *rq);
enum sl_err api_create_partitions_handle(struct req *rq);
enum sl_err api_incremental_alter_configs_handle(struct req *rq);
enum sl_err api_describe_cluster_handle(struct req *rq);
enum sl_err api_init_producer_id_handle(struct req *rq);

#endif
