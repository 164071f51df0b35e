/*
 * api_find_coordinator.c — FindCoordinator (key 10), versions 0-4.
 *
 * Runs on: the connection's shard only. This single broker coordinates
 * every group; the answer is this broker as advertised. v0-3 carry one
 * Key, v4 a batch (CoordinatorKeys) answered per key. Key type 0 (group)
 * only: 1 (transaction) is TRANSACTIONAL_ID_AUTHORIZATION_FAILED as for
 * InitProducerId (no transaction coordinator), others INVALID_REQUEST.
 * While __consumer_offsets does not exist yet its creation starts and the
 * answer is COORDINATOR_NOT_AVAILABLE (clients retry), as Kafka does.
 */
#include <string.h>

#include "coord_internal.h"
#include "kerr.h"

#define FIND_COORD_KEY_GROUP 0
#define FIND_COORD_KEY_TXN 1
#define FIND_COORD_TXN_AUTH_FAILED 53

/* The error for one key. */
static int16_t find_coordinator_one(struct req *rq, int8_t key_type, struct kslice key)
{
	uint32_t shard;
	int32_t partition;

	if (key_type == FIND_COORD_KEY_TXN)
		return FIND_COORD_TXN_AUTH_FAILED;
	if (key_type != FIND_COORD_KEY_GROUP)
		return KERR_INVALID_REQUEST;
	return coord_route(rq->bs, (const char *)key.ptr, (size_t)SL_MAX(key.len, 0), &shard,
			   &partition);
}

enum sl_err api_find_coordinator_handle(struct req *rq)
{
	const struct FindCoordinatorRequest *r = rq->body;
	const struct broker *b = rq->bs->b;
	struct FindCoordinatorResponse resp;
	struct kslice host = { (const uint8_t *)b->adv_host, (int32_t)strlen(b->adv_host) };

	kafka_init_find_coordinator_response(&resp);
	if (rq->api_version < 4) {
		resp.ErrorCode = find_coordinator_one(rq, r->KeyType, r->Key);
		resp.NodeId = resp.ErrorCode == KERR_NONE ? b->node_id : -1;
		resp.Host = resp.ErrorCode == KERR_NONE ? host : KSLICE_EMPTY;
		resp.Port = resp.ErrorCode == KERR_NONE ? b->adv_port : -1;
		req_respond(rq, &resp);
		return SL_OK;
	}
	int32_t n = SL_MAX(r->CoordinatorKeys.count, 0);
	resp.Coordinators.count = n;
	resp.Coordinators.items = req_alloc(rq, (size_t)(n + 1) * sizeof(*resp.Coordinators.items));
	if (resp.Coordinators.items == NULL)
		return SL_ENOMEM;
	for (int32_t i = 0; i < n; i++) {
		struct FindCoordinatorResponse_Coordinator *co = &resp.Coordinators.items[i];
		kafka_init_find_coordinator_response_coordinator(co);
		co->Key = r->CoordinatorKeys.items[i];
		co->ErrorCode = find_coordinator_one(rq, r->KeyType, co->Key);
		co->NodeId = co->ErrorCode == KERR_NONE ? b->node_id : -1;
		co->Host = co->ErrorCode == KERR_NONE ? host : KSLICE_EMPTY;
		co->Port = co->ErrorCode == KERR_NONE ? b->adv_port : -1;
	}
	req_respond(rq, &resp);
	return SL_OK;
}
