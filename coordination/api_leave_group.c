/*
 * api_leave_group.c — LeaveGroup (key 13), versions 0-5.
 *
 *   api_leave_group_handle  (connection's shard) one call to the owner.
 *   leave_group_on_owner    (owner) group_leave per member: v0-2 one
 *                           MemberId; v3+ a batch of members, each by
 *                           member id or group.instance.id, each with its
 *                           own error (UNKNOWN_MEMBER_ID,
 *                           FENCED_INSTANCE_ID).
 *   leave_group_done        (connection's shard) responds.
 */
#include "coord_internal.h"
#include "kerr.h"

struct leave_out {
	int16_t *errors;                 /* [members], request memory */
};

/* Runs on: the owner. */
static void leave_group_on_owner(struct coord *c, struct coord_call *call)
{
	const struct LeaveGroupRequest *r = call->in;
	int16_t *errors = call->arg;
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 false);
	int64_t now = coord_now_ms(c);

	if (call->rq->api_version < 3) {
		call->error_code = cg == NULL ? GROUP_KERR_UNKNOWN_MEMBER_ID
					      : group_leave(cg->g, now, (const char *)r->MemberId.ptr,
							    r->MemberId.len, NULL, -1);
	} else {
		call->error_code = KERR_NONE;
		for (int32_t i = 0; i < r->Members.count; i++) {
			const struct LeaveGroupRequest_MemberIdentity *mi = &r->Members.items[i];
			errors[i] = cg == NULL ? GROUP_KERR_UNKNOWN_MEMBER_ID
					       : group_leave(cg->g, now, (const char *)mi->MemberId.ptr,
							     mi->MemberId.len,
							     (const char *)mi->GroupInstanceId.ptr,
							     mi->GroupInstanceId.len);
		}
	}
	if (cg != NULL)
		coord_group_touch(cg);
	coord_call_reply(c, call);
}

static void leave_group_respond(struct req *rq, int16_t err, const int16_t *errors)
{
	const struct LeaveGroupRequest *r = rq->body;
	struct LeaveGroupResponse resp;

	kafka_init_leave_group_response(&resp);
	resp.ErrorCode = err;
	resp.Members.count = 0;
	if (rq->api_version >= 3 && r->Members.count > 0) {
		resp.Members.items = req_alloc(rq, (size_t)r->Members.count * sizeof(*resp.Members.items));
		if (resp.Members.items == NULL) {
			resp.ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
		} else {
			resp.Members.count = r->Members.count;
			for (int32_t i = 0; i < r->Members.count; i++) {
				struct LeaveGroupResponse_MemberResponse *m = &resp.Members.items[i];
				kafka_init_leave_group_response_member_response(m);
				m->MemberId = r->Members.items[i].MemberId;
				m->GroupInstanceId = r->Members.items[i].GroupInstanceId;
				m->ErrorCode = errors != NULL ? errors[i] : err;
			}
		}
	}
	req_respond(rq, &resp);
}

/* Runs on: the connection's shard. */
static void leave_group_done(struct coord_call *call)
{
	leave_group_respond(call->rq, call->error_code, call->arg);
}

enum sl_err api_leave_group_handle(struct req *rq)
{
	const struct LeaveGroupRequest *r = rq->body;
	struct coord_call *call = req_alloc(rq, sizeof(*call));
	int16_t *errors = req_alloc(rq, (size_t)(SL_MAX(r->Members.count, 0) + 1) * sizeof(int16_t));

	if (call == NULL || errors == NULL)
		return SL_ENOMEM;
	if (r->GroupId.len <= 0) {
		leave_group_respond(rq, GROUP_KERR_INVALID_GROUP_ID, NULL);
		return SL_OK;
	}
	call->rq = rq;
	call->group = (const char *)r->GroupId.ptr;
	call->group_len = r->GroupId.len;
	call->on_owner = leave_group_on_owner;
	call->done = leave_group_done;
	call->in = r;
	call->arg = errors;
	int16_t err = coord_call_send(rq->bs, call);
	if (err != KERR_NONE)
		leave_group_respond(rq, err, NULL);
	return SL_OK;
}
