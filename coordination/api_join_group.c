/*
 * api_join_group.c — JoinGroup (key 11), versions 0-9.
 *
 *   api_join_group_handle  (connection's shard) checks the group id and
 *                          sends one call to the group's owner.
 *   join_group_on_owner    (owner) runs group_join; the answer comes
 *                          through coord_join_answer, at once or when the
 *                          join phase ends (the request is held meanwhile:
 *                          a response that completes later, like a Fetch
 *                          long poll).
 *   join_group_done        (connection's shard) responds.
 * The leader's response carries every member's metadata; v4+ first joins
 * without a member id get MEMBER_ID_REQUIRED (KIP-394); v5+ static
 * membership; v9 SkipAssignment for a static leader that rejoined.
 */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "coord_internal.h"
#include "kerr.h"

struct join_in {
	const struct JoinGroupRequest *req;
	int16_t version;
	struct kslice client_id;
	char host[80];
};

/* Runs on: the owner. */
static void join_group_on_owner(struct coord *c, struct coord_call *call)
{
	const struct join_in *in = call->in;
	const struct JoinGroupRequest *r = in->req;
	const char *names[GROUP_PROTOCOLS_MAX];
	int32_t name_lens[GROUP_PROTOCOLS_MAX];
	const uint8_t *metas[GROUP_PROTOCOLS_MAX];
	int32_t meta_lens[GROUP_PROTOCOLS_MAX];
	struct group_join_req jr;
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 true);

	if (cg == NULL) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		coord_call_reply(c, call);
		return;
	}
	memset(&jr, 0, sizeof(jr));
	uint32_t n = (uint32_t)SL_MAX(r->Protocols.count, 0);
	if (n > GROUP_PROTOCOLS_MAX)
		n = 0;  /* answered INCONSISTENT_GROUP_PROTOCOL */
	for (uint32_t i = 0; i < n; i++) {
		names[i] = (const char *)r->Protocols.items[i].Name.ptr;
		name_lens[i] = SL_MAX(r->Protocols.items[i].Name.len, 0);
		metas[i] = r->Protocols.items[i].Metadata.ptr;
		meta_lens[i] = SL_MAX(r->Protocols.items[i].Metadata.len, 0);
	}
	jr.member_id = (const char *)r->MemberId.ptr;
	jr.member_id_len = r->MemberId.len;
	jr.instance_id = (const char *)r->GroupInstanceId.ptr;
	jr.instance_id_len = r->GroupInstanceId.len;
	jr.client_id = (const char *)in->client_id.ptr;
	jr.client_id_len = in->client_id.len;
	jr.client_host = in->host;
	jr.client_host_len = (int32_t)strlen(in->host);
	jr.protocol_type = (const char *)r->ProtocolType.ptr;
	jr.protocol_type_len = r->ProtocolType.len;
	jr.session_timeout_ms = r->SessionTimeoutMs;
	jr.rebalance_timeout_ms = r->RebalanceTimeoutMs >= 0 ? r->RebalanceTimeoutMs
							      : r->SessionTimeoutMs;
	jr.require_known_member_id = in->version >= 4;
	jr.protocol_count = n;
	jr.protocol_names = names;
	jr.protocol_name_lens = name_lens;
	jr.protocol_metas = metas;
	jr.protocol_meta_lens = meta_lens;
	group_join(cg->g, coord_now_ms(c), &jr, call);
	coord_group_touch(cg);
}

/* group_ops.join_done. Runs on: the owner. */
void coord_join_answer(void *ctx, struct group *g, void *waiter, const struct group_join_result *r)
{
	struct coord_group *cg = ctx;
	struct coord_call *call = waiter;
	size_t need = sizeof(struct JoinGroupResponse);

	if (r->is_leader && r->error_code == GROUP_KERR_NONE) {
		need += g->member_count * sizeof(struct JoinGroupResponse_JoinGroupResponseMember);
		for (uint32_t i = 0; i < g->member_count; i++) {
			const struct group_member *m = g->members[i];
			need += strlen(m->member_id) + 16;
			need += m->instance_id != NULL ? strlen(m->instance_id) + 16 : 0;
			for (uint32_t k = 0; k < m->protocol_count; k++)
				if (strcmp(m->protocols[k].name, g->protocol_name) == 0)
					need += (size_t)m->protocols[k].meta_len + 16;
		}
	}
	struct JoinGroupResponse *resp = coord_call_result(call, need + 1024);
	if (resp == NULL) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		coord_call_reply(cg->c, call);
		return;
	}
	kafka_init_join_group_response(resp);
	resp->ErrorCode = r->error_code;
	/* cluster mode: the partition's leadership moved away (coord_unload) */
	if (cg->c->unloading && r->error_code == KERR_COORDINATOR_NOT_AVAILABLE)
		resp->ErrorCode = GROUP_KERR_NOT_COORDINATOR;
	resp->GenerationId = r->generation;
	resp->ProtocolType = coord_call_str(call, r->protocol_type);
	resp->ProtocolName = coord_call_str(call, r->protocol_name);
	resp->Leader = coord_call_str(call, r->leader_id != NULL ? r->leader_id : "");
	resp->MemberId = coord_call_str(call, r->member_id != NULL ? r->member_id : "");
	resp->SkipAssignment = r->skip_assignment;
	resp->Members.count = 0;
	if (r->is_leader && r->error_code == GROUP_KERR_NONE) {
		resp->Members.items = coord_call_result(call, (g->member_count + 1) *
								  sizeof(*resp->Members.items));
		for (uint32_t i = 0; resp->Members.items != NULL && i < g->member_count; i++) {
			const struct group_member *m = g->members[i];
			struct JoinGroupResponse_JoinGroupResponseMember *it =
				&resp->Members.items[resp->Members.count++];
			kafka_init_join_group_response_join_group_response_member(it);
			it->MemberId = coord_call_str(call, m->member_id);
			it->GroupInstanceId = coord_call_str(call, m->instance_id);
			it->Metadata = KSLICE_EMPTY;
			for (uint32_t k = 0; k < m->protocol_count; k++) {
				if (strcmp(m->protocols[k].name, g->protocol_name) != 0)
					continue;
				uint8_t *p = coord_call_result(call, (size_t)m->protocols[k].meta_len + 1);
				if (p != NULL) {
					memcpy(p, m->protocols[k].meta, (size_t)m->protocols[k].meta_len);
					it->Metadata = (struct kslice){ p, m->protocols[k].meta_len };
				}
				break;
			}
		}
	}
	call->result = resp;
	call->error_code = KERR_NONE;
	coord_call_reply(cg->c, call);
}

/* Runs on: the connection's shard. */
static void join_group_done(struct coord_call *call)
{
	struct JoinGroupResponse err_resp;
	struct JoinGroupResponse *resp = call->result;

	if (call->error_code != KERR_NONE || resp == NULL) {
		kafka_init_join_group_response(&err_resp);
		err_resp.ErrorCode = call->error_code != KERR_NONE ? call->error_code
								   : KERR_COORDINATOR_NOT_AVAILABLE;
		err_resp.ProtocolName = call->rq->api_version >= 7 ? KSLICE_NULL : KSLICE_EMPTY;
		err_resp.Leader = KSLICE_EMPTY;
		err_resp.MemberId = KSLICE_EMPTY;
		resp = &err_resp;
	}
	/* ProtocolName is nullable from v7 only */
	if (call->rq->api_version < 7 && resp->ProtocolName.len < 0)
		resp->ProtocolName = KSLICE_EMPTY;
	req_respond(call->rq, resp);
}

static void join_group_fail(struct req *rq, int16_t err)
{
	struct JoinGroupResponse resp;

	kafka_init_join_group_response(&resp);
	resp.ErrorCode = err;
	resp.ProtocolName = rq->api_version >= 7 ? KSLICE_NULL : KSLICE_EMPTY;
	resp.Leader = KSLICE_EMPTY;
	resp.MemberId = KSLICE_EMPTY;
	req_respond(rq, &resp);
}

enum sl_err api_join_group_handle(struct req *rq)
{
	const struct JoinGroupRequest *r = rq->body;
	struct coord_call *call = req_alloc(rq, sizeof(*call));
	struct join_in *in = req_alloc(rq, sizeof(*in));

	if (call == NULL || in == NULL)
		return SL_ENOMEM;
	if (r->GroupId.len <= 0) {
		join_group_fail(rq, GROUP_KERR_INVALID_GROUP_ID);
		return SL_OK;
	}
	in->req = r;
	in->version = rq->api_version;
	in->client_id = rq->hdr.ClientId;
	/* Kafka's client host: "/" + address */
	const char *peer = rq->conn != NULL ? rq->conn->peer : "";
	const char *colon = strrchr(peer, ':');
	int plen = colon != NULL ? (int)(colon - peer) : (int)strlen(peer);
	snprintf(in->host, sizeof(in->host), "/%.*s", SL_MIN(plen, 70), peer);
	call->rq = rq;
	call->group = (const char *)r->GroupId.ptr;
	call->group_len = r->GroupId.len;
	call->on_owner = join_group_on_owner;
	call->done = join_group_done;
	call->in = in;
	int16_t err = coord_call_send(rq->bs, call);
	if (err != KERR_NONE)
		join_group_fail(rq, err);
	return SL_OK;
}
