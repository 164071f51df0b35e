/*
 * api_sync_group.c — SyncGroup (key 14), versions 0-5.
 *
 *   api_sync_group_handle  (connection's shard) one call to the owner.
 *   sync_group_on_owner    (owner) group_sync: followers are held until
 *                          the leader's SyncGroup brings the assignment;
 *                          the answer comes through coord_sync_answer.
 *   sync_group_done        (connection's shard) responds.
 * v5 checks ProtocolType/ProtocolName (INCONSISTENT_GROUP_PROTOCOL).
 */
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "kerr.h"

#define SYNC_ASSIGN_MAX GROUP_MEMBERS_MAX

/* Runs on: the owner. */
static void sync_group_on_owner(struct coord *c, struct coord_call *call)
{
	const struct SyncGroupRequest *r = call->in;
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 false);
	struct group_sync_req sr;

	if (cg == NULL) {
		call->error_code = GROUP_KERR_UNKNOWN_MEMBER_ID;
		coord_call_reply(c, call);
		return;
	}
	uint32_t n = (uint32_t)SL_MAX(r->Assignments.count, 0);
	n = SL_MIN(n, SYNC_ASSIGN_MAX);
	const char **ids = calloc(n + 1, sizeof(*ids));
	int32_t *id_lens = calloc(n + 1, sizeof(*id_lens));
	const uint8_t **as = calloc(n + 1, sizeof(*as));
	int32_t *as_lens = calloc(n + 1, sizeof(*as_lens));
	if (ids == NULL || id_lens == NULL || as == NULL || as_lens == NULL) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		coord_call_reply(c, call);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++) {
		ids[i] = (const char *)r->Assignments.items[i].MemberId.ptr;
		id_lens[i] = SL_MAX(r->Assignments.items[i].MemberId.len, 0);
		as[i] = r->Assignments.items[i].Assignment.ptr;
		as_lens[i] = SL_MAX(r->Assignments.items[i].Assignment.len, 0);
	}
	memset(&sr, 0, sizeof(sr));
	sr.member_id = (const char *)r->MemberId.ptr;
	sr.member_id_len = r->MemberId.len;
	sr.instance_id = (const char *)r->GroupInstanceId.ptr;
	sr.instance_id_len = r->GroupInstanceId.len;
	sr.generation = r->GenerationId;
	sr.protocol_type = (const char *)r->ProtocolType.ptr;
	sr.protocol_type_len = r->ProtocolType.len;
	sr.protocol_name = (const char *)r->ProtocolName.ptr;
	sr.protocol_name_len = r->ProtocolName.len;
	sr.assignment_count = n;
	sr.assign_member_ids = ids;
	sr.assign_member_id_lens = id_lens;
	sr.assignments = as;
	sr.assignment_lens = as_lens;
	group_sync(cg->g, coord_now_ms(c), &sr, call);
	coord_group_touch(cg);
out:
	free(ids);
	free(id_lens);
	free(as);
	free(as_lens);
}

/* group_ops.sync_done. Runs on: the owner. */
void coord_sync_answer(void *ctx, struct group *g, void *waiter, int16_t error_code,
		       const uint8_t *assignment, int32_t assignment_len)
{
	struct coord_group *cg = ctx;
	struct coord_call *call = waiter;
	struct SyncGroupResponse *resp =
		coord_call_result(call, sizeof(*resp) + (size_t)SL_MAX(assignment_len, 0) + 1024);

	if (resp == NULL) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		coord_call_reply(cg->c, call);
		return;
	}
	kafka_init_sync_group_response(resp);
	/* cluster mode: the partition's leadership moved away (coord_unload) */
	if (cg->c->unloading && error_code == KERR_COORDINATOR_NOT_AVAILABLE)
		error_code = GROUP_KERR_NOT_COORDINATOR;
	resp->ErrorCode = error_code;
	resp->Assignment = KSLICE_EMPTY;
	if (error_code == GROUP_KERR_NONE) {
		resp->ProtocolType = coord_call_str(call, g->protocol_type);
		resp->ProtocolName = coord_call_str(call, g->protocol_name);
		if (assignment_len > 0) {
			uint8_t *p = coord_call_result(call, (size_t)assignment_len);
			if (p != NULL) {
				memcpy(p, assignment, (size_t)assignment_len);
				resp->Assignment = (struct kslice){ p, assignment_len };
			}
		}
	}
	call->result = resp;
	call->error_code = KERR_NONE;
	coord_call_reply(cg->c, call);
}

static void sync_group_fail(struct req *rq, int16_t err)
{
	struct SyncGroupResponse resp;

	kafka_init_sync_group_response(&resp);
	resp.ErrorCode = err;
	resp.Assignment = KSLICE_EMPTY;
	req_respond(rq, &resp);
}

/* Runs on: the connection's shard. */
static void sync_group_done(struct coord_call *call)
{
	if (call->error_code != KERR_NONE || call->result == NULL) {
		sync_group_fail(call->rq, call->error_code != KERR_NONE
						  ? call->error_code : KERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	req_respond(call->rq, call->result);
}

enum sl_err api_sync_group_handle(struct req *rq)
{
	const struct SyncGroupRequest *r = rq->body;
	struct coord_call *call = req_alloc(rq, sizeof(*call));

	if (call == NULL)
		return SL_ENOMEM;
	if (r->GroupId.len <= 0) {
		sync_group_fail(rq, GROUP_KERR_INVALID_GROUP_ID);
		return SL_OK;
	}
	call->rq = rq;
	call->group = (const char *)r->GroupId.ptr;
	call->group_len = r->GroupId.len;
	call->on_owner = sync_group_on_owner;
	call->done = sync_group_done;
	call->in = r;
	int16_t err = coord_call_send(rq->bs, call);
	if (err != KERR_NONE)
		sync_group_fail(rq, err);
	return SL_OK;
}
