/*
 * api_api_versions.c — ApiVersions (key 18), versions 0-3.
 *
 * The answer comes from the dispatch table (dispatch.c), so what is
 * advertised is what is served. A request for a version above the served
 * range is answered as Kafka does: ErrorCode UNSUPPORTED_VERSION with the
 * full ApiKeys table, in response version 0 (header v0), so a client can
 * pick a version it shares with us and retry on the same connection.
 * Features (v3 tagged fields) are left at their defaults: none supported,
 * FinalizedFeaturesEpoch -1.
 *
 * Runs on: the connection's shard; no other shard is involved.
 */
#include "dispatch.h"
#include "kerr.h"

enum sl_err api_api_versions_handle(struct req *rq)
{
	struct ApiVersionsResponse resp;
	uint32_t n = dispatch_count();

	kafka_init_api_versions_response(&resp);
	resp.ApiKeys.items = req_alloc(rq, n * sizeof(*resp.ApiKeys.items));
	if (resp.ApiKeys.items == NULL)
		return SL_ENOMEM;
	resp.ApiKeys.count = (int32_t)dispatch_fill_api_versions(resp.ApiKeys.items, n);
	if (dispatch_check(rq->api_key, rq->api_version) != DISPATCH_OK) {
		/* conn.c set resp_version to 0 and left the body undecoded. */
		SL_ASSERT(rq->body == NULL && rq->resp_version == 0);
		resp.ErrorCode = KERR_UNSUPPORTED_VERSION;
	}
	SL_ASSERT(resp.ApiKeys.count > 0);
	req_respond(rq, &resp);
	return SL_OK;
}
