/*
 * api_list_groups.c — ListGroups (key 16), versions 0-5.
 *
 *   api_list_groups_handle  (connection's shard) one call to every shard
 *                           (groups live on the owners of their
 *                           __consumer_offsets partitions).
 *   list_groups_on_owner    (owner) loads its partitions if needed and
 *                           lists its groups (not DEAD), filtered by state
 *                           (v4+ StatesFilter, Kafka's names, any case)
 *                           and type (v5+ TypesFilter: "classic" only).
 *   list_groups_done        (connection's shard) gathers, copies, responds.
 */
#include <string.h>
#include <strings.h>

#include "coord_internal.h"
#include "kerr.h"

struct lg_op {
	struct req *rq;
	struct coord_call *calls;        /* [shards] */
	uint32_t outstanding;
	struct ListGroupsResponse resp;
	int32_t cap;
};

/* What one owner found. */
struct lg_result {
	struct ListGroupsResponse_ListedGroup *items;
	int32_t count;
};

struct lg_walk {
	const struct ListGroupsRequest *req;
	struct coord_call *call;
	struct lg_result *res;
	uint32_t cap;
};

static bool lg_filter_has(const struct karray_str *f, const char *name)
{
	if (f->count <= 0)
		return true;
	for (int32_t i = 0; i < f->count; i++)
		if ((size_t)f->items[i].len == strlen(name) &&
		    strncasecmp((const char *)f->items[i].ptr, name, strlen(name)) == 0)
			return true;
	return false;
}

static bool list_groups_one(struct coord_group *cg, void *arg)
{
	struct lg_walk *w = arg;
	const struct group *g = cg->g;

	if (g->state == GROUP_DEAD || (uint32_t)w->res->count >= w->cap)
		return (uint32_t)w->res->count < w->cap;
	if (!lg_filter_has(&w->req->StatesFilter, group_state_name(g->state)) ||
	    !lg_filter_has(&w->req->TypesFilter, "classic"))
		return true;
	struct ListGroupsResponse_ListedGroup *it = &w->res->items[w->res->count++];
	kafka_init_list_groups_response_listed_group(it);
	it->GroupId = coord_call_str(w->call, g->group_id);
	it->ProtocolType = coord_call_str(w->call, g->protocol_type != NULL ? g->protocol_type : "");
	it->GroupState = coord_call_str(w->call, group_state_name(g->state));
	it->GroupType = coord_call_str(w->call, "classic");
	return true;
}

/* Runs on: the owner. */
static void list_groups_on_owner(struct coord *c, struct coord_call *call)
{
	size_t need = sizeof(struct lg_result) + 4096;
	uint32_t n = c->group_count;

	for (uint32_t b = 0; b < COORD_BUCKETS; b++)
		for (struct coord_group *cg = c->buckets[b]; cg != NULL; cg = cg->next)
			need += sizeof(struct ListGroupsResponse_ListedGroup) + strlen(cg->g->group_id) +
				(cg->g->protocol_type != NULL ? strlen(cg->g->protocol_type) : 0) + 64;
	struct lg_result *res = coord_call_result(call, need);
	if (res != NULL)
		res->items = coord_call_result(call, (n + 1) * sizeof(*res->items));
	if (res == NULL || res->items == NULL) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		coord_call_reply(c, call);
		return;
	}
	struct lg_walk w = { .req = call->in, .call = call, .res = res, .cap = n };
	coord_groups_each(c, list_groups_one, &w);
	call->result = res;
	coord_call_reply(c, call);
}

static struct kslice lg_copy(struct req *rq, struct kslice s)
{
	if (s.len <= 0)
		return s;
	uint8_t *p = req_alloc(rq, (size_t)s.len);
	if (p == NULL)
		return KSLICE_EMPTY;
	memcpy(p, s.ptr, (size_t)s.len);
	return (struct kslice){ p, s.len };
}

static void list_groups_finish(struct lg_op *op)
{
	req_respond(op->rq, &op->resp);
}

/* Runs on: the connection's shard. */
static void list_groups_done(struct coord_call *call)
{
	struct lg_op *op = call->arg;
	const struct lg_result *res = call->result;

	if (call->error_code != KERR_NONE || res == NULL) {
		op->resp.ErrorCode = call->error_code != KERR_NONE ? call->error_code
								   : KERR_COORDINATOR_NOT_AVAILABLE;
	} else if (res->count > 0) {
		int32_t need = op->resp.Groups.count + res->count;
		if (need > op->cap) {
			int32_t cap = SL_MAX(need, op->cap * 2);
			struct ListGroupsResponse_ListedGroup *a = req_alloc(op->rq, (size_t)cap * sizeof(*a));
			if (a == NULL) {
				op->resp.ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
				goto out;
			}
			if (op->resp.Groups.count > 0)
				memcpy(a, op->resp.Groups.items,
				       (size_t)op->resp.Groups.count * sizeof(*a));
			op->resp.Groups.items = a;
			op->cap = cap;
		}
		for (int32_t i = 0; i < res->count; i++) {
			struct ListGroupsResponse_ListedGroup *d =
				&op->resp.Groups.items[op->resp.Groups.count++];
			*d = res->items[i];
			d->GroupId = lg_copy(op->rq, d->GroupId);
			d->ProtocolType = lg_copy(op->rq, d->ProtocolType);
			d->GroupState = lg_copy(op->rq, d->GroupState);
			d->GroupType = lg_copy(op->rq, d->GroupType);
		}
	}
out:
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding == 0)
		list_groups_finish(op);
}

enum sl_err api_list_groups_handle(struct req *rq)
{
	uint32_t shards = rq->bs->b->shard_count;
	struct lg_op *op = req_alloc(rq, sizeof(*op));
	uint32_t dummy_shard;
	int32_t dummy_part;

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	kafka_init_list_groups_response(&op->resp);
	op->resp.Groups.count = 0;
	op->calls = req_alloc(rq, shards * sizeof(*op->calls));
	if (op->calls == NULL)
		return SL_ENOMEM;
	/* without __consumer_offsets there are no groups (and this creates it) */
	if (coord_route(rq->bs, "", 0, &dummy_shard, &dummy_part) != KERR_NONE) {
		list_groups_finish(op);
		return SL_OK;
	}
	op->outstanding = 1;  /* held while sending */
	for (uint32_t s = 0; s < shards; s++) {
		struct coord_call *call = &op->calls[s];
		call->rq = rq;
		call->partition = -1;
		call->on_owner = list_groups_on_owner;
		call->done = list_groups_done;
		call->in = rq->body;
		call->arg = op;
		int16_t err = coord_call_send_to(rq->bs, call, s);
		if (err == KERR_NONE)
			op->outstanding++;
		else
			op->resp.ErrorCode = err;
	}
	if (--op->outstanding == 0)
		list_groups_finish(op);
	return SL_OK;
}
