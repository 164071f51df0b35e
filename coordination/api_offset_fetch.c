/*
 * api_offset_fetch.c — OffsetFetch (key 9), versions 0-9.
 *
 *   api_offset_fetch_handle  (connection's shard) one call per group:
 *                            v0-7 one GroupId, v8+ a batch of Groups.
 *   offset_fetch_on_owner    (owner) answers each group from its committed
 *                            offsets into the call's result arena: the
 *                            listed partitions (offset -1, metadata ""
 *                            when none), or every committed partition when
 *                            Topics is null (v2+).
 *   offset_fetch_done        (connection's shard) gathers; the response
 *                            goes out when every group answered.
 * RequireStable (v7+) needs no waiting: there are no transactions.
 */
#include <string.h>

#include "coord_internal.h"
#include "kerr.h"

/* One group asked, in the v8 shape either way. */
struct of_group_in {
	struct kslice group;
	int32_t topic_count;             /* -1: all */
	const struct kslice *topic_names;
	const struct karray_i32 *topic_parts;
};

struct of_op {
	struct req *rq;
	struct OffsetFetchResponse resp;
	struct of_group_in *ins;
	struct coord_call *calls;
	uint32_t count;
	uint32_t outstanding;
};

static void of_fill_partition(struct OffsetFetchResponse_OffsetFetchResponsePartitions *pp,
			      struct coord_call *call, const struct coord_offset *o, int32_t index)
{
	kafka_init_offset_fetch_response_offset_fetch_response_partitions(pp);
	pp->PartitionIndex = index;
	pp->CommittedOffset = o != NULL ? o->offset : -1;
	pp->CommittedLeaderEpoch = o != NULL ? o->leader_epoch : -1;
	pp->Metadata = o != NULL ? coord_call_str(call, o->metadata) : KSLICE_EMPTY;
	pp->ErrorCode = KERR_NONE;
}

/* Every committed partition of cg, grouped by topic. */
static void of_all(struct coord_group *cg, struct coord_call *call,
		   struct OffsetFetchResponse_OffsetFetchResponseGroup *out)
{
	uint32_t n = cg != NULL ? cg->off_count : 0;

	out->Topics.count = 0;
	out->Topics.items = coord_call_result(call, (n + 1) * sizeof(*out->Topics.items));
	if (out->Topics.items == NULL) {
		out->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct coord_offset *o = &cg->offs[i];
		struct OffsetFetchResponse_OffsetFetchResponseTopics *tt = NULL;
		for (int32_t t = 0; t < out->Topics.count; t++)
			if ((size_t)out->Topics.items[t].Name.len == strlen(o->topic) &&
			    memcmp(out->Topics.items[t].Name.ptr, o->topic, strlen(o->topic)) == 0)
				tt = &out->Topics.items[t];
		if (tt == NULL) {
			tt = &out->Topics.items[out->Topics.count++];
			kafka_init_offset_fetch_response_offset_fetch_response_topics(tt);
			tt->Name = coord_call_str(call, o->topic);
			tt->Partitions.count = 0;
			/* at most n partitions for any topic */
			tt->Partitions.items = coord_call_result(call, (n + 1) * sizeof(*tt->Partitions.items));
			if (tt->Partitions.items == NULL) {
				out->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
				return;
			}
		}
		of_fill_partition(&tt->Partitions.items[tt->Partitions.count++], call, o, o->partition);
	}
}

/* Runs on: the owner. */
static void offset_fetch_on_owner(struct coord *c, struct coord_call *call)
{
	const struct of_group_in *in = call->in;
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 false);
	size_t need = sizeof(struct OffsetFetchResponse_OffsetFetchResponseGroup) + 4096;

	if (cg != NULL)
		for (uint32_t i = 0; i < cg->off_count; i++)
			need += 2 * sizeof(struct OffsetFetchResponse_OffsetFetchResponseTopics) +
				cg->off_count * sizeof(struct OffsetFetchResponse_OffsetFetchResponsePartitions) +
				strlen(cg->offs[i].topic) + strlen(cg->offs[i].metadata) + 32;
	for (int32_t t = 0; t < in->topic_count; t++)
		need += sizeof(struct OffsetFetchResponse_OffsetFetchResponseTopics) + 64 +
			(size_t)SL_MAX(in->topic_parts[t].count, 0) *
				(sizeof(struct OffsetFetchResponse_OffsetFetchResponsePartitions) +
				 COORD_METADATA_BYTES_MAX + 16);
	struct OffsetFetchResponse_OffsetFetchResponseGroup *out = coord_call_result(call, need);
	if (out == NULL) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		coord_call_reply(c, call);
		return;
	}
	kafka_init_offset_fetch_response_offset_fetch_response_group(out);
	out->GroupId = in->group;
	call->result = out;
	if (in->topic_count < 0) {
		of_all(cg, call, out);
		coord_call_reply(c, call);
		return;
	}
	out->Topics.count = in->topic_count;
	out->Topics.items = coord_call_result(call, (size_t)(in->topic_count + 1) *
							     sizeof(*out->Topics.items));
	for (int32_t t = 0; out->Topics.items != NULL && t < in->topic_count; t++) {
		struct OffsetFetchResponse_OffsetFetchResponseTopics *tt = &out->Topics.items[t];
		int32_t np = SL_MAX(in->topic_parts[t].count, 0);
		kafka_init_offset_fetch_response_offset_fetch_response_topics(tt);
		tt->Name = in->topic_names[t];
		tt->Partitions.count = np;
		tt->Partitions.items = coord_call_result(call, (size_t)(np + 1) * sizeof(*tt->Partitions.items));
		if (tt->Partitions.items == NULL) {
			tt->Partitions.count = 0;
			out->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
			continue;
		}
		for (int32_t i = 0; i < np; i++) {
			int32_t idx = in->topic_parts[t].items[i];
			const struct coord_offset *o =
				cg != NULL ? coord_offset_find(cg, (const char *)tt->Name.ptr,
							       SL_MAX(tt->Name.len, 0), idx)
					   : NULL;
			of_fill_partition(&tt->Partitions.items[i], call, o, idx);
		}
	}
	if (out->Topics.items == NULL) {
		out->Topics.count = 0;
		out->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
	}
	coord_call_reply(c, call);
}

/* Copies the owner's v8-shaped answer into the response (request memory). */
static void of_copy_group(struct of_op *op, uint32_t gi, const struct coord_call *call)
{
	struct req *rq = op->rq;
	struct OffsetFetchResponse_OffsetFetchResponseGroup *dst = &op->resp.Groups.items[gi];
	const struct OffsetFetchResponse_OffsetFetchResponseGroup *src = call->result;

	kafka_init_offset_fetch_response_offset_fetch_response_group(dst);
	dst->GroupId = op->ins[gi].group;
	if (call->error_code != KERR_NONE || src == NULL) {
		dst->ErrorCode = call->error_code != KERR_NONE ? call->error_code
							       : KERR_COORDINATOR_NOT_AVAILABLE;
		dst->Topics.count = 0;
		return;
	}
	/* the owner's arena goes home after this: copy what the response points at */
	dst->ErrorCode = src->ErrorCode;
	dst->Topics.count = src->Topics.count;
	dst->Topics.items = req_alloc(rq, (size_t)(src->Topics.count + 1) * sizeof(*dst->Topics.items));
	if (dst->Topics.items == NULL) {
		dst->Topics.count = 0;
		dst->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
		return;
	}
	for (int32_t t = 0; t < src->Topics.count; t++) {
		const struct OffsetFetchResponse_OffsetFetchResponseTopics *st = &src->Topics.items[t];
		struct OffsetFetchResponse_OffsetFetchResponseTopics *dt = &dst->Topics.items[t];
		*dt = *st;
		char *name = req_alloc(rq, (size_t)SL_MAX(st->Name.len, 0) + 1);
		dt->Partitions.items = req_alloc(rq, (size_t)(st->Partitions.count + 1) *
							     sizeof(*dt->Partitions.items));
		if (name == NULL || dt->Partitions.items == NULL) {
			dst->Topics.count = t;
			dst->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
			return;
		}
		if (st->Name.len > 0)
			memcpy(name, st->Name.ptr, (size_t)st->Name.len);
		dt->Name = (struct kslice){ (const uint8_t *)name, st->Name.len };
		for (int32_t i = 0; i < st->Partitions.count; i++) {
			dt->Partitions.items[i] = st->Partitions.items[i];
			const struct kslice *m = &st->Partitions.items[i].Metadata;
			char *mp = req_alloc(rq, (size_t)SL_MAX(m->len, 0) + 1);
			if (mp == NULL) {
				dt->Partitions.items[i].Metadata = KSLICE_EMPTY;
				continue;
			}
			if (m->len > 0)
				memcpy(mp, m->ptr, (size_t)m->len);
			dt->Partitions.items[i].Metadata = (struct kslice){ (const uint8_t *)mp,
									    SL_MAX(m->len, 0) };
		}
	}
}

/* v0-7: the single group's answer in the old shape. */
static void of_finish_old(struct of_op *op)
{
	const struct OffsetFetchResponse_OffsetFetchResponseGroup *g = &op->resp.Groups.items[0];
	struct OffsetFetchResponse *resp = &op->resp;

	resp->ErrorCode = g->ErrorCode;
	resp->Topics.count = 0;
	resp->Topics.items = req_alloc(op->rq, (size_t)(SL_MAX(g->Topics.count, 0) + 1) *
						       sizeof(*resp->Topics.items));
	for (int32_t t = 0; resp->Topics.items != NULL && t < g->Topics.count; t++) {
		const struct OffsetFetchResponse_OffsetFetchResponseTopics *st = &g->Topics.items[t];
		struct OffsetFetchResponse_OffsetFetchResponseTopic *dt =
			&resp->Topics.items[resp->Topics.count++];
		kafka_init_offset_fetch_response_offset_fetch_response_topic(dt);
		dt->Name = st->Name;
		dt->Partitions.count = 0;
		dt->Partitions.items = req_alloc(op->rq, (size_t)(st->Partitions.count + 1) *
								 sizeof(*dt->Partitions.items));
		for (int32_t i = 0; dt->Partitions.items != NULL && i < st->Partitions.count; i++) {
			const struct OffsetFetchResponse_OffsetFetchResponsePartitions *sp =
				&st->Partitions.items[i];
			struct OffsetFetchResponse_OffsetFetchResponsePartition *dp =
				&dt->Partitions.items[dt->Partitions.count++];
			kafka_init_offset_fetch_response_offset_fetch_response_partition(dp);
			dp->PartitionIndex = sp->PartitionIndex;
			dp->CommittedOffset = sp->CommittedOffset;
			dp->CommittedLeaderEpoch = sp->CommittedLeaderEpoch;
			dp->Metadata = sp->Metadata;
			/* before v2 there is no group-level error: put it on each partition */
			dp->ErrorCode = op->rq->api_version < 2 && g->ErrorCode != KERR_NONE
						? g->ErrorCode : sp->ErrorCode;
		}
	}
	resp->Groups.count = 0;
}

static void of_finish(struct of_op *op)
{
	if (op->rq->api_version < 8)
		of_finish_old(op);
	req_respond(op->rq, &op->resp);
}

/* Runs on: the connection's shard. */
static void offset_fetch_done(struct coord_call *call)
{
	struct of_op *op = call->arg;

	of_copy_group(op, (uint32_t)(call - op->calls), call);
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding == 0)
		of_finish(op);
}

/* The groups asked, in the v8 shape. SL_OK or SL_ENOMEM. */
static enum sl_err offset_fetch_inputs(struct of_op *op)
{
	struct req *rq = op->rq;
	const struct OffsetFetchRequest *r = rq->body;

	op->count = rq->api_version >= 8 ? (uint32_t)SL_MAX(r->Groups.count, 0) : 1;
	op->ins = req_alloc(rq, (op->count + 1) * sizeof(*op->ins));
	op->calls = req_alloc(rq, (op->count + 1) * sizeof(*op->calls));
	op->resp.Groups.items = req_alloc(rq, (op->count + 1) * sizeof(*op->resp.Groups.items));
	if (op->ins == NULL || op->calls == NULL || op->resp.Groups.items == NULL)
		return SL_ENOMEM;
	op->resp.Groups.count = (int32_t)op->count;
	for (uint32_t g = 0; g < op->count; g++) {
		struct of_group_in *in = &op->ins[g];
		if (rq->api_version < 8) {
			in->group = r->GroupId;
			in->topic_count = r->Topics.count;
			if (r->Topics.count > 0) {
				struct kslice *names = req_alloc(rq, (size_t)r->Topics.count * sizeof(*names));
				struct karray_i32 *parts = req_alloc(rq, (size_t)r->Topics.count * sizeof(*parts));
				if (names == NULL || parts == NULL)
					return SL_ENOMEM;
				for (int32_t t = 0; t < r->Topics.count; t++) {
					names[t] = r->Topics.items[t].Name;
					parts[t] = r->Topics.items[t].PartitionIndexes;
				}
				in->topic_names = names;
				in->topic_parts = parts;
			}
			continue;
		}
		const struct OffsetFetchRequest_OffsetFetchRequestGroup *rg = &r->Groups.items[g];
		in->group = rg->GroupId;
		in->topic_count = rg->Topics.count;
		if (rg->Topics.count > 0) {
			struct kslice *names = req_alloc(rq, (size_t)rg->Topics.count * sizeof(*names));
			struct karray_i32 *parts = req_alloc(rq, (size_t)rg->Topics.count * sizeof(*parts));
			if (names == NULL || parts == NULL)
				return SL_ENOMEM;
			for (int32_t t = 0; t < rg->Topics.count; t++) {
				names[t] = rg->Topics.items[t].Name;
				parts[t] = rg->Topics.items[t].PartitionIndexes;
			}
			in->topic_names = names;
			in->topic_parts = parts;
		}
	}
	return SL_OK;
}

enum sl_err api_offset_fetch_handle(struct req *rq)
{
	struct of_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	kafka_init_offset_fetch_response(&op->resp);
	if (offset_fetch_inputs(op) != SL_OK)
		return SL_ENOMEM;
	op->outstanding = 1;  /* held while sending */
	for (uint32_t g = 0; g < op->count; g++) {
		struct coord_call *call = &op->calls[g];
		call->rq = rq;
		call->group = (const char *)op->ins[g].group.ptr;
		call->group_len = op->ins[g].group.len;
		call->on_owner = offset_fetch_on_owner;
		call->done = offset_fetch_done;
		call->in = &op->ins[g];
		call->arg = op;
		int16_t err = call->group_len > 0 ? coord_call_send(rq->bs, call)
						  : GROUP_KERR_INVALID_GROUP_ID;
		if (err == KERR_NONE) {
			op->outstanding++;
			continue;
		}
		call->error_code = err;
		of_copy_group(op, g, call);
	}
	if (--op->outstanding == 0)
		of_finish(op);
	return SL_OK;
}
