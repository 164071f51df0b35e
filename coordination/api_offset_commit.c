/*
 * api_offset_commit.c — OffsetCommit (key 8), versions 0-9.
 *
 *   api_offset_commit_handle  (connection's shard) builds the response
 *                             skeleton; partitions of unknown topics get
 *                             UNKNOWN_TOPIC_OR_PARTITION, metadata over
 *                             offset.metadata.max.bytes (4096)
 *                             OFFSET_METADATA_TOO_LARGE; one call to the
 *                             group's owner for the rest.
 *   offset_commit_on_owner    (owner) checks member and generation
 *                             (group_commit_check; generation -1 without a
 *                             member id is a commit from outside the group
 *                             protocol, allowed for an EMPTY or unknown
 *                             group), appends one batch of offset-commit
 *                             records to the group's __consumer_offsets
 *                             partition and, once written, applies them.
 *   offset_commit_done        (connection's shard) responds.
 * Offsets answer only after their append completed.
 */
#include <string.h>

#include "catalog.h"
#include "coord_internal.h"
#include "coord_log.h"
#include "kerr.h"

#define OFFSET_PENDING (-1)
#define KERR_OFFSET_METADATA_TOO_LARGE 12

struct oc_op {
	struct OffsetCommitResponse resp;   /* the owner writes the pending ErrorCodes */
};

static void oc_for_pending(const struct OffsetCommitRequest *r, struct OffsetCommitResponse *resp,
			   int16_t err)
{
	for (int32_t t = 0; t < r->Topics.count; t++)
		for (int32_t i = 0; i < r->Topics.items[t].Partitions.count; i++) {
			int16_t *e = &resp->Topics.items[t].Partitions.items[i].ErrorCode;
			if (*e == OFFSET_PENDING)
				*e = err;
		}
}

/* After the append. Runs on: the owner. */
static void offset_commit_applied(struct coord *c, struct coord_call *call, int16_t err)
{
	const struct OffsetCommitRequest *r = call->in;
	struct oc_op *op = call->arg;
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 true);
	int64_t ts = coord_wall(c);

	if (err != KERR_NONE || cg == NULL) {
		/* NOT_COORDINATOR: the partition's leadership moved (cluster mode) */
		oc_for_pending(r, &op->resp, err == GROUP_KERR_NOT_COORDINATOR ?
				   GROUP_KERR_NOT_COORDINATOR : KERR_COORDINATOR_NOT_AVAILABLE);
		coord_call_reply(c, call);
		return;
	}
	for (int32_t t = 0; t < r->Topics.count; t++) {
		const struct OffsetCommitRequest_OffsetCommitRequestTopic *rt = &r->Topics.items[t];
		for (int32_t i = 0; i < rt->Partitions.count; i++) {
			const struct OffsetCommitRequest_OffsetCommitRequestPartition *rp =
				&rt->Partitions.items[i];
			int16_t *e = &op->resp.Topics.items[t].Partitions.items[i].ErrorCode;
			if (*e != OFFSET_PENDING)
				continue;
			*e = coord_offset_put(cg, (const char *)rt->Name.ptr, rt->Name.len,
					      rp->PartitionIndex, rp->CommittedOffset,
					      rp->CommittedLeaderEpoch,
					      (const char *)rp->CommittedMetadata.ptr,
					      rp->CommittedMetadata.len, ts) == SL_OK
				     ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
		}
	}
	coord_group_touch(cg);
	coord_call_reply(c, call);
}

/* Runs on: the owner. */
static void offset_commit_on_owner(struct coord *c, struct coord_call *call)
{
	const struct OffsetCommitRequest *r = call->in;
	struct oc_op *op = call->arg;
	bool simple = r->GenerationIdOrMemberEpoch < 0 && r->MemberId.len <= 0;
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 simple);
	int16_t err;
	struct coord_batch cb;
	size_t bytes = 0;
	uint32_t n = 0;

	if (cg == NULL)
		err = simple ? KERR_COORDINATOR_NOT_AVAILABLE
			     : (r->GenerationIdOrMemberEpoch < 0 ? GROUP_KERR_UNKNOWN_MEMBER_ID
								 : GROUP_KERR_ILLEGAL_GENERATION);
	else
		err = group_commit_check(cg->g, coord_now_ms(c), (const char *)r->MemberId.ptr,
					 r->MemberId.len, (const char *)r->GroupInstanceId.ptr,
					 r->GroupInstanceId.len, r->GenerationIdOrMemberEpoch);
	if (err != KERR_NONE) {
		oc_for_pending(r, &op->resp, err);
		coord_call_reply(c, call);
		return;
	}
	for (int32_t t = 0; t < r->Topics.count; t++)
		for (int32_t i = 0; i < r->Topics.items[t].Partitions.count; i++)
			bytes += 96 + (size_t)call->group_len + (size_t)SL_MAX(r->Topics.items[t].Name.len, 0) +
				 (size_t)SL_MAX(r->Topics.items[t].Partitions.items[i].CommittedMetadata.len, 0);
	if (coord_batch_init(&cb, bytes) != SL_OK) {
		oc_for_pending(r, &op->resp, KERR_COORDINATOR_NOT_AVAILABLE);
		coord_call_reply(c, call);
		return;
	}
	int64_t ts = coord_wall(c);
	for (int32_t t = 0; t < r->Topics.count; t++) {
		const struct OffsetCommitRequest_OffsetCommitRequestTopic *rt = &r->Topics.items[t];
		for (int32_t i = 0; i < rt->Partitions.count; i++) {
			const struct OffsetCommitRequest_OffsetCommitRequestPartition *rp =
				&rt->Partitions.items[i];
			if (op->resp.Topics.items[t].Partitions.items[i].ErrorCode != OFFSET_PENDING)
				continue;
			uint8_t kbuf[GROUP_ID_BYTES_MAX * 3 + 64];
			uint8_t vbuf[COORD_METADATA_BYTES_MAX + 64];
			struct coord_buf key = { kbuf, 0, sizeof(kbuf), false };
			struct coord_buf val = { vbuf, 0, sizeof(vbuf), false };
			coord_key_offset(&key, call->group, call->group_len, (const char *)rt->Name.ptr,
					 rt->Name.len, rp->PartitionIndex);
			coord_value_offset(&val, rp->CommittedOffset, rp->CommittedLeaderEpoch,
					   (const char *)rp->CommittedMetadata.ptr,
					   rp->CommittedMetadata.len, ts);
			if (coord_batch_add(&cb, &key, &val) != SL_OK)
				op->resp.Topics.items[t].Partitions.items[i].ErrorCode =
					KERR_INVALID_REQUEST;
			else
				n++;
		}
	}
	if (n == 0) {
		coord_batch_free(&cb);
		coord_call_reply(c, call);
		return;
	}
	coord_log_append(c, call->partition, &cb, call, offset_commit_applied);
}

/* Runs on: the connection's shard. */
static void offset_commit_done(struct coord_call *call)
{
	struct oc_op *op = call->arg;

	if (call->error_code != KERR_NONE)
		oc_for_pending(call->in, &op->resp, call->error_code);
	oc_for_pending(call->in, &op->resp, KERR_COORDINATOR_NOT_AVAILABLE);
	req_respond(call->rq, &op->resp);
}

/* The skeleton, with per-partition checks done here. SL_OK or SL_ENOMEM. */
static enum sl_err offset_commit_prepare(struct req *rq, struct oc_op *op, uint32_t *pending)
{
	const struct OffsetCommitRequest *r = rq->body;
	int32_t nt = SL_MAX(r->Topics.count, 0);

	kafka_init_offset_commit_response(&op->resp);
	op->resp.Topics.count = nt;
	op->resp.Topics.items = req_alloc(rq, (size_t)(nt + 1) * sizeof(*op->resp.Topics.items));
	if (op->resp.Topics.items == NULL)
		return SL_ENOMEM;
	for (int32_t t = 0; t < nt; t++) {
		const struct OffsetCommitRequest_OffsetCommitRequestTopic *rt = &r->Topics.items[t];
		struct OffsetCommitResponse_OffsetCommitResponseTopic *tt = &op->resp.Topics.items[t];
		int32_t np = SL_MAX(rt->Partitions.count, 0);
		const struct catalog_topic *topic = catalog_snap_find(
			rq->bs->snap, (const char *)rt->Name.ptr, (size_t)SL_MAX(rt->Name.len, 0));
		kafka_init_offset_commit_response_offset_commit_response_topic(tt);
		tt->Name = rt->Name;
		tt->Partitions.count = np;
		tt->Partitions.items = req_alloc(rq, (size_t)(np + 1) * sizeof(*tt->Partitions.items));
		if (tt->Partitions.items == NULL)
			return SL_ENOMEM;
		for (int32_t i = 0; i < np; i++) {
			const struct OffsetCommitRequest_OffsetCommitRequestPartition *rp =
				&rt->Partitions.items[i];
			struct OffsetCommitResponse_OffsetCommitResponsePartition *pp =
				&tt->Partitions.items[i];
			kafka_init_offset_commit_response_offset_commit_response_partition(pp);
			pp->PartitionIndex = rp->PartitionIndex;
			if (topic == NULL || rp->PartitionIndex < 0 ||
			    rp->PartitionIndex >= topic->partition_count || rt->Name.len <= 0 ||
			    rt->Name.len > (int32_t)GROUP_ID_BYTES_MAX)
				pp->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (rp->CommittedMetadata.len > COORD_METADATA_BYTES_MAX)
				pp->ErrorCode = KERR_OFFSET_METADATA_TOO_LARGE;
			else {
				pp->ErrorCode = OFFSET_PENDING;
				(*pending)++;
			}
		}
	}
	return SL_OK;
}

enum sl_err api_offset_commit_handle(struct req *rq)
{
	const struct OffsetCommitRequest *r = rq->body;
	struct coord_call *call = req_alloc(rq, sizeof(*call));
	struct oc_op *op = req_alloc(rq, sizeof(*op));
	uint32_t pending = 0;

	if (call == NULL || op == NULL || offset_commit_prepare(rq, op, &pending) != SL_OK)
		return SL_ENOMEM;
	if (r->GroupId.len <= 0 || r->GroupId.len > (int32_t)GROUP_ID_BYTES_MAX) {
		oc_for_pending(r, &op->resp, GROUP_KERR_INVALID_GROUP_ID);
		req_respond(rq, &op->resp);
		return SL_OK;
	}
	if (pending == 0) {
		req_respond(rq, &op->resp);
		return SL_OK;
	}
	call->rq = rq;
	call->group = (const char *)r->GroupId.ptr;
	call->group_len = r->GroupId.len;
	call->on_owner = offset_commit_on_owner;
	call->done = offset_commit_done;
	call->in = r;
	call->arg = op;
	int16_t err = coord_call_send(rq->bs, call);
	if (err != KERR_NONE) {
		oc_for_pending(r, &op->resp, err);
		req_respond(rq, &op->resp);
	}
	return SL_OK;
}
