/*
 * api_delete_groups.c — DeleteGroups (key 42), versions 0-2.
 *
 *   api_delete_groups_handle  (connection's shard) one call per group.
 *   delete_groups_on_owner    (owner) unknown or DEAD: GROUP_ID_NOT_FOUND;
 *                             members left: NON_EMPTY_GROUP; else the
 *                             group leaves the table at once (DEAD) and
 *                             tombstones for its offsets and its metadata
 *                             are appended; the answer waits for them.
 *   delete_groups_done        (connection's shard) gathers and responds.
 */
#include <string.h>

#include "coord_internal.h"
#include "coord_log.h"
#include "kerr.h"

struct dl_op {
	struct req *rq;
	struct DeleteGroupsResponse resp;
	struct coord_call *calls;
	uint32_t outstanding;
};

static void delete_groups_written(struct coord *c, struct coord_call *call, int16_t err)
{
	call->error_code = err == KERR_NONE ? KERR_NONE : KERR_COORDINATOR_NOT_AVAILABLE;
	coord_call_reply(c, call);
}

/* Runs on: the owner. */
static void delete_groups_on_owner(struct coord *c, struct coord_call *call)
{
	struct coord_group *cg = coord_group_get(c, call->group, call->group_len, call->partition,
						 false);
	struct coord_batch cb;

	if (cg == NULL || cg->g->state == GROUP_DEAD) {
		call->error_code = GROUP_KERR_GROUP_ID_NOT_FOUND;
	} else if (cg->g->state != GROUP_EMPTY || cg->g->member_count > 0) {
		call->error_code = GROUP_KERR_NON_EMPTY_GROUP;
	} else if (coord_batch_init(&cb, ((size_t)cg->off_count + 1) * (GROUP_ID_BYTES_MAX * 3 + 64)) !=
		   SL_OK) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
	} else {
		uint8_t kbuf[GROUP_ID_BYTES_MAX * 3 + 64];
		for (uint32_t i = 0; i < cg->off_count; i++) {
			struct coord_buf key = { kbuf, 0, sizeof(kbuf), false };
			coord_key_offset(&key, call->group, call->group_len, cg->offs[i].topic,
					 (int32_t)strlen(cg->offs[i].topic), cg->offs[i].partition);
			coord_batch_add(&cb, &key, NULL);
		}
		struct coord_buf key = { kbuf, 0, sizeof(kbuf), false };
		coord_key_group(&key, call->group, call->group_len);
		coord_batch_add(&cb, &key, NULL);
		group_mark_dead(cg->g);
		coord_group_remove(cg);
		coord_log_append(c, call->partition, &cb, call, delete_groups_written);
		return;
	}
	coord_call_reply(c, call);
}

static void dl_fill(struct dl_op *op, uint32_t i, int16_t err)
{
	const struct DeleteGroupsRequest *r = op->rq->body;
	struct DeleteGroupsResponse_DeletableGroupResult *d = &op->resp.Results.items[i];

	kafka_init_delete_groups_response_deletable_group_result(d);
	d->GroupId = r->GroupsNames.items[i];
	d->ErrorCode = err;
}

/* Runs on: the connection's shard. */
static void delete_groups_done(struct coord_call *call)
{
	struct dl_op *op = call->arg;

	dl_fill(op, (uint32_t)(call - op->calls), call->error_code);
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding == 0)
		req_respond(op->rq, &op->resp);
}

enum sl_err api_delete_groups_handle(struct req *rq)
{
	const struct DeleteGroupsRequest *r = rq->body;
	uint32_t n = (uint32_t)SL_MAX(r->GroupsNames.count, 0);
	struct dl_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	kafka_init_delete_groups_response(&op->resp);
	op->calls = req_alloc(rq, (n + 1) * sizeof(*op->calls));
	op->resp.Results.items = req_alloc(rq, (n + 1) * sizeof(*op->resp.Results.items));
	if (op->calls == NULL || op->resp.Results.items == NULL)
		return SL_ENOMEM;
	op->resp.Results.count = (int32_t)n;
	op->outstanding = 1;
	for (uint32_t i = 0; i < n; i++) {
		struct coord_call *call = &op->calls[i];
		call->rq = rq;
		call->group = (const char *)r->GroupsNames.items[i].ptr;
		call->group_len = r->GroupsNames.items[i].len;
		call->on_owner = delete_groups_on_owner;
		call->done = delete_groups_done;
		call->arg = op;
		int16_t err = call->group_len > 0 && call->group_len <= (int32_t)GROUP_ID_BYTES_MAX
				      ? coord_call_send(rq->bs, call) : GROUP_KERR_INVALID_GROUP_ID;
		if (err == KERR_NONE) {
			op->outstanding++;
			continue;
		}
		dl_fill(op, i, err);
	}
	if (--op->outstanding == 0)
		req_respond(rq, &op->resp);
	return SL_OK;
}
