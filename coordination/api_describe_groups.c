/*
 * api_describe_groups.c — DescribeGroups (key 15), versions 0-5.
 *
 *   api_describe_groups_handle  (connection's shard) one call per group.
 *   describe_groups_on_owner    (owner) state, protocol type, protocol,
 *                               members (client id, host, the chosen
 *                               protocol's metadata, the assignment) into
 *                               the call's arena. An unknown group is
 *                               described as "Dead" with no members and
 *                               no error, as Kafka does up to v5.
 *   describe_groups_done        (connection's shard) copies into the
 *                               response; it goes out when all answered.
 * AuthorizedOperations (v3+): INT32_MIN (not asked / not computed).
 */
#include <string.h>

#include "coord_internal.h"
#include "kerr.h"

struct dg_op {
	struct req *rq;
	struct DescribeGroupsResponse resp;
	struct coord_call *calls;
	uint32_t outstanding;
};

static size_t dg_member_bytes(const struct group *g, const struct group_member *m)
{
	size_t n = sizeof(struct DescribeGroupsResponse_DescribedGroupMember) + 64 +
		   strlen(m->member_id) + (m->instance_id ? strlen(m->instance_id) : 0) +
		   (m->client_id ? strlen(m->client_id) : 0) +
		   (m->client_host ? strlen(m->client_host) : 0) + (size_t)m->assignment_len;

	for (uint32_t k = 0; k < m->protocol_count; k++)
		if (g->protocol_name != NULL && strcmp(m->protocols[k].name, g->protocol_name) == 0)
			n += (size_t)m->protocols[k].meta_len;
	return n;
}

static struct kslice dg_bytes(struct coord_call *call, const uint8_t *p, int32_t len)
{
	if (len <= 0)
		return KSLICE_EMPTY;
	uint8_t *d = coord_call_result(call, (size_t)len);
	if (d == NULL)
		return KSLICE_EMPTY;
	memcpy(d, p, (size_t)len);
	return (struct kslice){ d, len };
}

/* Runs on: the owner. */
static void describe_groups_on_owner(struct coord *c, struct coord_call *call)
{
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 false);
	const struct group *g = cg != NULL ? cg->g : NULL;
	size_t need = sizeof(struct DescribeGroupsResponse_DescribedGroup) + 1024;

	for (uint32_t i = 0; g != NULL && i < g->member_count; i++)
		need += dg_member_bytes(g, g->members[i]);
	struct DescribeGroupsResponse_DescribedGroup *d = coord_call_result(call, need);
	if (d == NULL) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		coord_call_reply(c, call);
		return;
	}
	kafka_init_describe_groups_response_described_group(d);
	d->AuthorizedOperations = INT32_MIN;
	d->GroupState = coord_call_str(call, group_state_name(g != NULL ? g->state : GROUP_DEAD));
	d->ProtocolType = coord_call_str(call, g != NULL && g->protocol_type ? g->protocol_type : "");
	/* the protocol is only meaningful once chosen (Kafka: empty while rebalancing) */
	d->ProtocolData = coord_call_str(call, g != NULL && g->protocol_name != NULL &&
					 (g->state == GROUP_STABLE ||
					  g->state == GROUP_COMPLETING_REBALANCE)
					 ? g->protocol_name : "");
	d->Members.count = 0;
	d->Members.items = coord_call_result(call, ((g != NULL ? g->member_count : 0) + 1) *
							   sizeof(*d->Members.items));
	for (uint32_t i = 0; d->Members.items != NULL && g != NULL && i < g->member_count; i++) {
		const struct group_member *m = g->members[i];
		struct DescribeGroupsResponse_DescribedGroupMember *it = &d->Members.items[d->Members.count++];
		kafka_init_describe_groups_response_described_group_member(it);
		it->MemberId = coord_call_str(call, m->member_id);
		it->GroupInstanceId = coord_call_str(call, m->instance_id);
		it->ClientId = coord_call_str(call, m->client_id ? m->client_id : "");
		it->ClientHost = coord_call_str(call, m->client_host ? m->client_host : "");
		it->MemberMetadata = KSLICE_EMPTY;
		for (uint32_t k = 0; k < m->protocol_count && g->state == GROUP_STABLE; k++)
			if (g->protocol_name != NULL && strcmp(m->protocols[k].name, g->protocol_name) == 0)
				it->MemberMetadata = dg_bytes(call, m->protocols[k].meta,
							      m->protocols[k].meta_len);
		it->MemberAssignment = g->state == GROUP_STABLE
					       ? dg_bytes(call, m->assignment, m->assignment_len)
					       : KSLICE_EMPTY;
	}
	call->result = d;
	coord_call_reply(c, call);
}

static struct kslice dg_copy(struct req *rq, struct kslice s)
{
	if (s.len <= 0)
		return s;
	uint8_t *p = req_alloc(rq, (size_t)s.len);
	if (p == NULL)
		return KSLICE_EMPTY;
	memcpy(p, s.ptr, (size_t)s.len);
	return (struct kslice){ p, s.len };
}

static void dg_fill(struct dg_op *op, uint32_t i, const struct coord_call *call)
{
	struct req *rq = op->rq;
	struct DescribeGroupsResponse_DescribedGroup *d = &op->resp.Groups.items[i];
	const struct DescribeGroupsResponse_DescribedGroup *s = call->result;
	const struct DescribeGroupsRequest *r = rq->body;

	kafka_init_describe_groups_response_described_group(d);
	d->GroupId = r->Groups.items[i];
	d->AuthorizedOperations = INT32_MIN;
	d->GroupState = KSLICE_EMPTY;
	d->ProtocolType = KSLICE_EMPTY;
	d->ProtocolData = KSLICE_EMPTY;
	d->Members.count = 0;
	if (call->error_code != KERR_NONE || s == NULL) {
		d->ErrorCode = call->error_code != KERR_NONE ? call->error_code
							     : KERR_COORDINATOR_NOT_AVAILABLE;
		return;
	}
	d->GroupState = dg_copy(rq, s->GroupState);
	d->ProtocolType = dg_copy(rq, s->ProtocolType);
	d->ProtocolData = dg_copy(rq, s->ProtocolData);
	d->Members.items = req_alloc(rq, (size_t)(s->Members.count + 1) * sizeof(*d->Members.items));
	for (int32_t k = 0; d->Members.items != NULL && k < s->Members.count; k++) {
		const struct DescribeGroupsResponse_DescribedGroupMember *sm = &s->Members.items[k];
		struct DescribeGroupsResponse_DescribedGroupMember *dm = &d->Members.items[d->Members.count++];
		*dm = *sm;
		dm->MemberId = dg_copy(rq, sm->MemberId);
		dm->GroupInstanceId = dg_copy(rq, sm->GroupInstanceId);
		dm->ClientId = dg_copy(rq, sm->ClientId);
		dm->ClientHost = dg_copy(rq, sm->ClientHost);
		dm->MemberMetadata = dg_copy(rq, sm->MemberMetadata);
		dm->MemberAssignment = dg_copy(rq, sm->MemberAssignment);
	}
}

/* Runs on: the connection's shard. */
static void describe_groups_done(struct coord_call *call)
{
	struct dg_op *op = call->arg;

	dg_fill(op, (uint32_t)(call - op->calls), call);
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding == 0)
		req_respond(op->rq, &op->resp);
}

enum sl_err api_describe_groups_handle(struct req *rq)
{
	const struct DescribeGroupsRequest *r = rq->body;
	uint32_t n = (uint32_t)SL_MAX(r->Groups.count, 0);
	struct dg_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	kafka_init_describe_groups_response(&op->resp);
	op->calls = req_alloc(rq, (n + 1) * sizeof(*op->calls));
	op->resp.Groups.items = req_alloc(rq, (n + 1) * sizeof(*op->resp.Groups.items));
	if (op->calls == NULL || op->resp.Groups.items == NULL)
		return SL_ENOMEM;
	op->resp.Groups.count = (int32_t)n;
	op->outstanding = 1;
	for (uint32_t i = 0; i < n; i++) {
		struct coord_call *call = &op->calls[i];
		call->rq = rq;
		call->group = (const char *)r->Groups.items[i].ptr;
		call->group_len = r->Groups.items[i].len;
		call->on_owner = describe_groups_on_owner;
		call->done = describe_groups_done;
		call->arg = op;
		int16_t err = call->group_len > 0 ? coord_call_send(rq->bs, call)
						  : GROUP_KERR_INVALID_GROUP_ID;
		if (err == KERR_NONE) {
			op->outstanding++;
			continue;
		}
		call->error_code = err;
		dg_fill(op, i, call);
	}
	if (--op->outstanding == 0)
		req_respond(rq, &op->resp);
	return SL_OK;
}
