/*
 * api_find_coordinator.c — FindCoordinator (key 10), versions 0-4.
 *
 * Runs on: the connection's shard only. Single-node mode: this broker
 * coordinates every group; the answer is this broker as advertised.
 * Cluster mode: the current leader of the group's __consumer_offsets
 * partition as this broker's catalog snapshot knows it (node id, host and
 * port of the live broker), COORDINATOR_NOT_AVAILABLE while the partition
 * has no leader (or the leader is not among the live brokers). The leader
 * may still be loading: its group requests then answer
 * COORDINATOR_LOAD_IN_PROGRESS, and a stale answer NOT_COORDINATOR. v0-3 carry one
 * Key, v4 a batch (CoordinatorKeys) answered per key. Key type 0 (group)
 * only: 1 (transaction) is TRANSACTIONAL_ID_AUTHORIZATION_FAILED as for
 * InitProducerId (no transaction coordinator), others INVALID_REQUEST.
 * While __consumer_offsets does not exist yet its creation starts and the
 * answer is COORDINATOR_NOT_AVAILABLE (clients retry), as Kafka does.
 */
#include <string.h>

#include "catalog.h"
#include "coord_internal.h"
#include "kerr.h"

#define FIND_COORD_KEY_GROUP 0
#define FIND_COORD_KEY_TXN 1
#define FIND_COORD_TXN_AUTH_FAILED 53

/* One key's answer. */
struct find_coord_answer {
	int16_t error_code;
	int32_t node_id;
	struct kslice host;
	int32_t port;
};

/* Cluster mode: the leader of __consumer_offsets partition p, copied out of the snapshot. */
static int16_t find_coordinator_leader(struct req *rq, int32_t p, struct find_coord_answer *a)
{
	const struct catalog_snap *snap = rq->bs->snap;
	const struct catalog_topic *t =
		catalog_snap_find(snap, COORD_OFFSETS_TOPIC, strlen(COORD_OFFSETS_TOPIC));

	if (t == NULL || t->pstates == NULL || p < 0 || p >= t->partition_count)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	int32_t leader = t->pstates[p].leader;
	const struct catalog_broker *cb = leader >= 0 ? catalog_snap_broker(snap, leader) : NULL;
	if (cb == NULL)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	size_t len = strnlen(cb->host, sizeof(cb->host));
	char *h = req_alloc(rq, len + 1);
	if (h == NULL)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	memcpy(h, cb->host, len);
	h[len] = '\0';
	a->node_id = cb->id;
	a->host = (struct kslice){ (const uint8_t *)h, (int32_t)len };
	a->port = cb->port;
	return KERR_NONE;
}

/* The answer for one key. */
static void find_coordinator_one(struct req *rq, int8_t key_type, struct kslice key,
				 struct find_coord_answer *a)
{
	const struct broker *b = rq->bs->b;
	uint32_t shard;
	int32_t partition;

	a->node_id = -1;
	a->host = KSLICE_EMPTY;
	a->port = -1;
	if (key_type == FIND_COORD_KEY_TXN) {
		a->error_code = FIND_COORD_TXN_AUTH_FAILED;
		return;
	}
	if (key_type != FIND_COORD_KEY_GROUP) {
		a->error_code = KERR_INVALID_REQUEST;
		return;
	}
	a->error_code = coord_route(rq->bs, (const char *)key.ptr, (size_t)SL_MAX(key.len, 0),
				    &shard, &partition);
	if (a->error_code != KERR_NONE)
		return;
	if (rq->bs->snap->cluster) {
		a->error_code = find_coordinator_leader(rq, partition, a);
		if (a->error_code != KERR_NONE) {
			a->node_id = -1;
			a->host = KSLICE_EMPTY;
			a->port = -1;
		}
		return;
	}
	a->node_id = b->node_id;
	a->host = (struct kslice){ (const uint8_t *)b->adv_host, (int32_t)strlen(b->adv_host) };
	a->port = b->adv_port;
}

enum sl_err api_find_coordinator_handle(struct req *rq)
{
	const struct FindCoordinatorRequest *r = rq->body;
	struct FindCoordinatorResponse resp;
	struct find_coord_answer a;

	kafka_init_find_coordinator_response(&resp);
	if (rq->api_version < 4) {
		find_coordinator_one(rq, r->KeyType, r->Key, &a);
		resp.ErrorCode = a.error_code;
		resp.NodeId = a.node_id;
		resp.Host = a.host;
		resp.Port = a.port;
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
		find_coordinator_one(rq, r->KeyType, co->Key, &a);
		co->ErrorCode = a.error_code;
		co->NodeId = a.node_id;
		co->Host = a.host;
		co->Port = a.port;
	}
	req_respond(rq, &resp);
	return SL_OK;
}
