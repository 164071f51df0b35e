/*
 * api_heartbeat.c — Heartbeat (key 12), versions 0-4.
 *
 *   api_heartbeat_handle  (connection's shard) one call to the owner.
 *   heartbeat_on_owner    (owner) group_heartbeat: refreshes the member's
 *                         session; REBALANCE_IN_PROGRESS tells it to rejoin.
 *   heartbeat_done        (connection's shard) responds.
 */
#include "coord_internal.h"
#include "kerr.h"

/* Runs on: the owner. */
static void heartbeat_on_owner(struct coord *c, struct coord_call *call)
{
	const struct HeartbeatRequest *r = call->in;
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 false);

	if (cg == NULL) {
		call->error_code = GROUP_KERR_UNKNOWN_MEMBER_ID;
	} else {
		call->error_code = group_heartbeat(cg->g, coord_now_ms(c), (const char *)r->MemberId.ptr,
						   r->MemberId.len, (const char *)r->GroupInstanceId.ptr,
						   r->GroupInstanceId.len, r->GenerationId);
		coord_group_touch(cg);
	}
	coord_call_reply(c, call);
}

static void heartbeat_respond(struct req *rq, int16_t err)
{
	struct HeartbeatResponse resp;

	kafka_init_heartbeat_response(&resp);
	resp.ErrorCode = err;
	req_respond(rq, &resp);
}

/* Runs on: the connection's shard. */
static void heartbeat_done(struct coord_call *call)
{
	heartbeat_respond(call->rq, call->error_code);
}

enum sl_err api_heartbeat_handle(struct req *rq)
{
	const struct HeartbeatRequest *r = rq->body;
	struct coord_call *call = req_alloc(rq, sizeof(*call));

	if (call == NULL)
		return SL_ENOMEM;
	if (r->GroupId.len <= 0) {
		heartbeat_respond(rq, GROUP_KERR_INVALID_GROUP_ID);
		return SL_OK;
	}
	call->rq = rq;
	call->group = (const char *)r->GroupId.ptr;
	call->group_len = r->GroupId.len;
	call->on_owner = heartbeat_on_owner;
	call->done = heartbeat_done;
	call->in = r;
	int16_t err = coord_call_send(rq->bs, call);
	if (err != KERR_NONE)
		heartbeat_respond(rq, err);
	return SL_OK;
}
