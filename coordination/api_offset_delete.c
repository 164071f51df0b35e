/*
 * api_offset_delete.c — OffsetDelete (key 47), version 0.
 *
 *   api_offset_delete_handle  (connection's shard) one call to the owner.
 *   offset_delete_on_owner    (owner) unknown or DEAD group:
 *                             GROUP_ID_NOT_FOUND (top level); a partition
 *                             of a topic a member of a non-empty
 *                             "consumer" group subscribes to:
 *                             GROUP_SUBSCRIBED_TO_TOPIC; the others are
 *                             removed and tombstoned, answered once the
 *                             tombstones are written.
 *   offset_delete_done        (connection's shard) responds.
 * Subscriptions are read from the chosen protocol's metadata
 * (ConsumerProtocolSubscription: int16 version, [int32] topic strings).
 */
#include <string.h>

#include "bytes.h"
#include "coord_internal.h"
#include "coord_log.h"
#include "kerr.h"

#define KERR_GROUP_SUBSCRIBED_TO_TOPIC 86

struct od_op {
	struct OffsetDeleteResponse resp;
};

/* True when `m`'s subscription (consumer protocol metadata) names the topic. */
static bool od_subscribed(const struct group *g, const struct group_member *m, const char *t,
			  int32_t tlen)
{
	for (uint32_t k = 0; k < m->protocol_count; k++) {
		if (g->protocol_name != NULL && strcmp(m->protocols[k].name, g->protocol_name) != 0)
			continue;
		const uint8_t *p = m->protocols[k].meta, *end = p + m->protocols[k].meta_len;
		if (end - p < 6)
			return false;
		int32_t n = (int32_t)be32_load(p + 2);
		p += 6;
		for (int32_t i = 0; i < n && i < 100000 && end - p >= 2; i++) {
			int16_t len = (int16_t)be16_load(p);
			p += 2;
			if (len < 0 || end - p < len)
				return false;
			if (len == tlen && memcmp(p, t, (size_t)len) == 0)
				return true;
			p += len;
		}
		return false;
	}
	return false;
}

static bool od_topic_in_use(const struct group *g, const char *t, int32_t tlen)
{
	if (g->member_count == 0 || g->protocol_type == NULL || strcmp(g->protocol_type, "consumer") != 0)
		return false;
	for (uint32_t i = 0; i < g->member_count; i++)
		if (od_subscribed(g, g->members[i], t, tlen))
			return true;
	return false;
}

static void offset_delete_written(struct coord *c, struct coord_call *call, int16_t err)
{
	struct od_op *op = call->arg;

	if (err != KERR_NONE)
		op->resp.ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
	coord_call_reply(c, call);
}

/* Runs on: the owner. */
static void offset_delete_on_owner(struct coord *c, struct coord_call *call)
{
	const struct OffsetDeleteRequest *r = call->in;
	struct od_op *op = call->arg;
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 false);
	struct coord_batch cb;
	uint32_t n = 0;

	if (cg == NULL || cg->g->state == GROUP_DEAD) {
		op->resp.ErrorCode = GROUP_KERR_GROUP_ID_NOT_FOUND;
		coord_call_reply(c, call);
		return;
	}
	size_t bytes = 0;
	for (int32_t t = 0; t < r->Topics.count; t++)
		bytes += (size_t)SL_MAX(r->Topics.items[t].Partitions.count, 0) *
			 (GROUP_ID_BYTES_MAX * 3 + 64);
	if (coord_batch_init(&cb, bytes) != SL_OK) {
		op->resp.ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
		coord_call_reply(c, call);
		return;
	}
	for (int32_t t = 0; t < r->Topics.count; t++) {
		const struct OffsetDeleteRequest_OffsetDeleteRequestTopic *rt = &r->Topics.items[t];
		const char *name = (const char *)rt->Name.ptr;
		int32_t nlen = SL_MAX(rt->Name.len, 0);
		bool in_use = od_topic_in_use(cg->g, name, nlen);
		for (int32_t i = 0; i < rt->Partitions.count; i++) {
			struct OffsetDeleteResponse_OffsetDeleteResponsePartition *pp =
				&op->resp.Topics.items[t].Partitions.items[i];
			if (in_use) {
				pp->ErrorCode = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
				continue;
			}
			struct coord_offset *o = coord_offset_find(cg, name, nlen, pp->PartitionIndex);
			if (o == NULL || nlen > (int32_t)GROUP_ID_BYTES_MAX)
				continue;
			uint8_t kbuf[GROUP_ID_BYTES_MAX * 3 + 64];
			struct coord_buf key = { kbuf, 0, sizeof(kbuf), false };
			coord_key_offset(&key, call->group, call->group_len, name, nlen, pp->PartitionIndex);
			if (coord_batch_add(&cb, &key, NULL) == SL_OK)
				n++;
			coord_offset_del(cg, (uint32_t)(o - cg->offs));
		}
	}
	if (n == 0) {
		coord_batch_free(&cb);
		coord_call_reply(c, call);
		return;
	}
	coord_log_append(c, call->partition, &cb, call, offset_delete_written);
}

/* Runs on: the connection's shard. */
static void offset_delete_done(struct coord_call *call)
{
	struct od_op *op = call->arg;

	if (call->error_code != KERR_NONE)
		op->resp.ErrorCode = call->error_code;
	req_respond(call->rq, &op->resp);
}

enum sl_err api_offset_delete_handle(struct req *rq)
{
	const struct OffsetDeleteRequest *r = rq->body;
	struct coord_call *call = req_alloc(rq, sizeof(*call));
	struct od_op *op = req_alloc(rq, sizeof(*op));
	int32_t nt = SL_MAX(r->Topics.count, 0);

	if (call == NULL || op == NULL)
		return SL_ENOMEM;
	kafka_init_offset_delete_response(&op->resp);
	op->resp.Topics.count = nt;
	op->resp.Topics.items = req_alloc(rq, (size_t)(nt + 1) * sizeof(*op->resp.Topics.items));
	if (op->resp.Topics.items == NULL)
		return SL_ENOMEM;
	for (int32_t t = 0; t < nt; t++) {
		struct OffsetDeleteResponse_OffsetDeleteResponseTopic *tt = &op->resp.Topics.items[t];
		int32_t np = SL_MAX(r->Topics.items[t].Partitions.count, 0);
		kafka_init_offset_delete_response_offset_delete_response_topic(tt);
		tt->Name = r->Topics.items[t].Name;
		tt->Partitions.count = np;
		tt->Partitions.items = req_alloc(rq, (size_t)(np + 1) * sizeof(*tt->Partitions.items));
		if (tt->Partitions.items == NULL)
			return SL_ENOMEM;
		for (int32_t i = 0; i < np; i++) {
			kafka_init_offset_delete_response_offset_delete_response_partition(
				&tt->Partitions.items[i]);
			tt->Partitions.items[i].PartitionIndex =
				r->Topics.items[t].Partitions.items[i].PartitionIndex;
		}
	}
	if (r->GroupId.len <= 0 || r->GroupId.len > (int32_t)GROUP_ID_BYTES_MAX) {
		op->resp.ErrorCode = GROUP_KERR_INVALID_GROUP_ID;
		req_respond(rq, &op->resp);
		return SL_OK;
	}
	call->rq = rq;
	call->group = (const char *)r->GroupId.ptr;
	call->group_len = r->GroupId.len;
	call->on_owner = offset_delete_on_owner;
	call->done = offset_delete_done;
	call->in = r;
	call->arg = op;
	int16_t err = coord_call_send(rq->bs, call);
	if (err != KERR_NONE) {
		op->resp.ErrorCode = err;
		req_respond(rq, &op->resp);
	}
	return SL_OK;
}
