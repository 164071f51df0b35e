/*
 * api_leader_and_isr.c — LeaderAndIsr (key 4), versions 0-7: the
 * controller tells this broker which partitions it replicates, who leads
 * them and in which epoch (Kafka's ReplicaManager.becomeLeaderOrFollower).
 *
 * Steps (each on its shard):
 *   1. connection's shard: flattens the partition states (v0-1 ungrouped,
 *      v2+ per topic) into entries and asks shard 0 (broker_topics_create
 *      with a `mutate`).
 *   2. shard 0 (lai_mutate): a broker epoch older than this process's
 *      registration (or any epoch before it registered) ->
 *      STALE_BROKER_EPOCH (the controller meant a previous incarnation);
 *      a controller epoch older than the newest seen ->
 *      STALE_CONTROLLER_EPOCH; both for the whole request, nothing
 *      changes. Else unknown topics are created with the controller's ids
 *      (catalog_topic_create_id), partition counts raised, and each
 *      partition's state set (catalog_pstate_set) unless the catalog
 *      already holds a newer leader epoch. The new catalog is published;
 *      the step ends once every shard adopted it, so the owners opened the
 *      partitions this broker now replicates (partition_set_sync).
 *   3. owner shards (lai_on_owner): repl_apply per partition (leader /
 *      follower, FENCED_LEADER_EPOCH for an older epoch).
 *   4. connection's shard: the answer, one error per partition.
 * Partitions whose replicas do not list this broker answer
 * UNKNOWN_TOPIC_OR_PARTITION (Kafka ignores them the same way); they stay
 * until StopReplica.
 */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "catalog.h"
#include "cluster.h"
#include "ctrl_rules.h"
#include "dispatch.h"
#include "kerr.h"
#include "log.h"
#include "partition.h"
#include "repl.h"
#include "replica_api.h"

struct lai_op;
struct lai_part;

struct lai_entry {
	struct kslice topic;               /* name from the request */
	struct kuuid topic_id;             /* from the request (v5+) or the catalog */
	int32_t index;
	int32_t topic_partitions;          /* highest index of its topic in the request + 1 */
	struct repl_state st;
	int32_t min_insync;
	bool replica;                      /* this broker is in st.replicas */
	int16_t error_code;
	struct LeaderAndIsrResponse_LeaderAndIsrPartitionError *slot;
	struct lai_entry *next;            /* in its part */
};

struct lai_part {
	struct lai_op *op;
	struct lai_entry *head, *tail;
	uint32_t shard;
};

struct lai_op {
	struct broker_create bc;           /* first: lai_mutate gets it */
	struct req *rq;
	const struct LeaderAndIsrRequest *req;
	struct LeaderAndIsrResponse resp;
	struct lai_entry *entries;
	uint32_t count;
	struct lai_part **parts;
	uint32_t outstanding;
	int16_t top_error;
};

/* ---- step 2: shard 0 ---- */

/* Creates or widens e's topic. Returns the Kafka error for the entry. */
static int16_t lai_topic_ensure(struct broker_shard *bs0, const struct lai_entry *e,
				uint32_t *changes)
{
	struct catalog *cat = bs0->b->catalog;
	const char *name = (const char *)e->topic.ptr;
	size_t len = (size_t)SL_MAX(e->topic.len, 0);
	const struct catalog_topic *t = catalog_snap_find(bs0->snap, name, len);
	enum sl_err err;

	if (t != NULL && !catalog_uuid_is_zero(&e->topic_id) &&
	    memcmp(t->id.b, e->topic_id.b, sizeof(t->id.b)) != 0) {
		LOG_W(bs0->sh->id, "LeaderAndIsr: topic %.*s has another id here; waiting for "
		      "its deletion", (int)len, name);
		return KERR_UNKNOWN_TOPIC_ID;
	}
	if (t == NULL) {
		uint32_t flags = catalog_name_internal(name, len) ? CATALOG_TOPIC_INTERNAL : 0;
		if (!catalog_uuid_is_zero(&e->topic_id))
			err = catalog_topic_create_id(cat, name, len, e->topic_partitions, flags,
						      &e->topic_id);
		else
			err = catalog_topic_create(cat, name, len, e->topic_partitions, flags, NULL);
		if (err == SL_OK)
			(*changes)++;
		else if (err != SL_EEXIST)
			return err == SL_EINVAL ? KERR_UNKNOWN_TOPIC_ID : KERR_KAFKA_STORAGE_ERROR;
		/* created (or created by an earlier entry of this request): the
		 * partition count may still need raising */
		err = catalog_topic_partitions_set(cat, name, len, e->topic_partitions);
		if (err == SL_OK)
			(*changes)++;
		return KERR_NONE;
	}
	if (t->partition_count < e->topic_partitions) {
		err = catalog_topic_partitions_set(cat, name, len, e->topic_partitions);
		if (err == SL_OK)
			(*changes)++;
		else if (err != SL_EINVAL)
			return KERR_KAFKA_STORAGE_ERROR;
	}
	return KERR_NONE;
}

/* True when the catalog already holds a newer leader epoch for e. */
static bool lai_catalog_newer(const struct broker_shard *bs0, const struct lai_entry *e)
{
	const struct catalog_topic *t = catalog_snap_find(bs0->snap, (const char *)e->topic.ptr,
							  (size_t)SL_MAX(e->topic.len, 0));
	if (t == NULL || t->pstates == NULL || e->index >= t->partition_count)
		return false;
	const struct catalog_pstate *cur = &t->pstates[e->index];
	return cur->replica_count > 0 && cur->leader_epoch > e->st.leader_epoch;
}

static uint32_t lai_mutate(struct broker_shard *bs0, struct broker_create *bc)
{
	struct lai_op *op = (struct lai_op *)bc;
	uint32_t changes = 0;
	const struct cluster *cl = bs0->b->cluster;

	SL_ASSERT(bs0->sh->id == 0);
	if (cl != NULL && ctrl_broker_epoch_stale(op->req->BrokerEpoch, cl->broker_epoch)) {
		LOG_W(0, "LeaderAndIsr: stale broker epoch %lld (this registration: %lld)",
		      (long long)op->req->BrokerEpoch, (long long)cl->broker_epoch);
		op->top_error = KERR_STALE_BROKER_EPOCH;
		return 0;
	}
	if (op->req->ControllerEpoch < repl_controller_epoch(bs0)) {
		op->top_error = KERR_STALE_CONTROLLER_EPOCH;
		return 0;
	}
	repl_controller_epoch_set(bs0, op->req->ControllerEpoch);
	for (uint32_t i = 0; i < op->count; i++) {
		struct lai_entry *e = &op->entries[i];
		if (e->error_code != KERR_NONE)
			continue;
		e->error_code = lai_topic_ensure(bs0, e, &changes);
		if (e->error_code != KERR_NONE || lai_catalog_newer(bs0, e))
			continue;
		struct catalog_pstate ps;
		memset(&ps, 0, sizeof(ps));
		ps.leader = e->st.leader;
		ps.leader_epoch = e->st.leader_epoch;
		ps.partition_epoch = e->st.partition_epoch;
		ps.replica_count = (uint8_t)e->st.replica_count;
		ps.isr_count = (uint8_t)e->st.isr_count;
		memcpy(ps.replicas, e->st.replicas, e->st.replica_count * sizeof(ps.replicas[0]));
		memcpy(ps.isr, e->st.isr, e->st.isr_count * sizeof(ps.isr[0]));
		if (catalog_pstate_set(bs0->b->catalog, (const char *)e->topic.ptr,
				       (size_t)e->topic.len, e->index, &ps) == SL_OK)
			changes++;
		else
			e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
	}
	return changes;
}

/* ---- step 3: owners ---- */

static enum xmsg_fn_result lai_on_owner(struct shard *sh, struct xmsg *m)
{
	struct lai_part *part = m->pl.ptr[0];
	struct broker_shard *bs = broker_shard_of(sh);

	for (struct lai_entry *e = part->head; e != NULL; e = e->next) {
		struct partition *p = partition_set_find(&bs->parts, &e->topic_id, e->index);
		e->error_code = p == NULL ? KERR_KAFKA_STORAGE_ERROR
					  : repl_apply(bs, p, &e->st, e->min_insync);
	}
	return XMSG_REPLY;
}

/* ---- step 4: the answer ---- */

static void lai_respond(struct lai_op *op)
{
	for (uint32_t i = 0; i < op->count; i++) {
		struct lai_entry *e = &op->entries[i];
		e->slot->ErrorCode = op->top_error != KERR_NONE ? op->top_error : e->error_code;
	}
	op->resp.ErrorCode = op->top_error;
	req_respond(op->rq, &op->resp);
}

static void lai_part_done(struct shard *sh, struct xmsg *m)
{
	struct lai_op *op = m->ctx;

	(void)sh;
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding == 0)
		lai_respond(op);
}

/* min.insync.replicas of `t` (override) or the broker default. */
static int32_t lai_min_insync(const struct broker_shard *bs, const struct catalog_topic *t)
{
	for (uint32_t i = 0; t != NULL && i < t->config_count; i++) {
		if (strcmp(t->configs[i].key, "min.insync.replicas") != 0)
			continue;
		long v = strtol(t->configs[i].value, NULL, 10);
		if (v >= 1 && v <= ISR_REPLICAS_MAX)
			return (int32_t)v;
	}
	return SL_MAX(bs->b->config->min_insync_replicas, 1);
}

/* Runs on the connection's shard once every shard adopted the catalog. */
static void lai_adopted(struct broker_shard *bs, struct broker_create *bc)
{
	struct lai_op *op = (struct lai_op *)bc;
	struct req *rq = op->rq;
	uint32_t shards = bs->b->shard_count;

	op->outstanding = 1;   /* held while sending */
	for (uint32_t i = 0; i < op->count && op->top_error == KERR_NONE; i++) {
		struct lai_entry *e = &op->entries[i];
		if (e->error_code != KERR_NONE)
			continue;
		if (!e->replica) {
			e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			continue;
		}
		const struct catalog_topic *t =
			catalog_snap_find(bs->snap, (const char *)e->topic.ptr, (size_t)e->topic.len);
		if (t == NULL || e->index >= t->partition_count) {
			e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			continue;
		}
		e->topic_id = t->id;
		e->min_insync = lai_min_insync(bs, t);
		uint32_t owner = partition_owner(&t->id, e->index, shards);
		struct lai_part *part = op->parts[owner];
		if (part == NULL) {
			part = req_alloc(rq, sizeof(*part));
			if (part == NULL) {
				e->error_code = KERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			part->op = op;
			part->shard = owner;
			op->parts[owner] = part;
		}
		e->next = NULL;
		if (part->tail != NULL)
			part->tail->next = e;
		else
			part->head = e;
		part->tail = e;
	}
	for (uint32_t s = 0; s < shards && op->top_error == KERR_NONE; s++) {
		struct lai_part *part = op->parts[s];
		if (part == NULL)
			continue;
		struct xmsg m = { .type = KAFKA_API_LEADER_AND_ISR, .fn = lai_on_owner,
				  .done = lai_part_done, .ctx = op };
		m.pl.ptr[0] = part;
		if (broker_send(bs, s, &m) == SL_OK) {
			op->outstanding++;
			continue;
		}
		for (struct lai_entry *e = part->head; e != NULL; e = e->next)
			e->error_code = KERR_REQUEST_TIMED_OUT;
	}
	if (--op->outstanding == 0)
		lai_respond(op);
}

/* ---- step 1: intake ---- */

/* Fills e from one partition state. */
static void lai_entry_fill(struct lai_op *op, struct lai_entry *e, struct kslice topic,
			   const struct kuuid *id,
			   const struct LeaderAndIsrRequest_LeaderAndIsrPartitionState *ps)
{
	int32_t me = op->rq->bs->b->node_id;

	e->topic = topic;
	if (id != NULL)
		e->topic_id = *id;
	e->index = ps->PartitionIndex;
	e->topic_partitions = ps->PartitionIndex + 1;
	e->st.controller_epoch = ps->ControllerEpoch;
	e->st.leader = ps->Leader;
	e->st.leader_epoch = ps->LeaderEpoch;
	e->st.partition_epoch = ps->PartitionEpoch;
	if (topic.len <= 0 || !catalog_name_valid((const char *)topic.ptr, (size_t)topic.len) ||
	    ps->PartitionIndex < 0 || ps->PartitionIndex >= CATALOG_PARTITIONS_MAX) {
		e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	if (ps->Replicas.count <= 0 || ps->Replicas.count > ISR_REPLICAS_MAX ||
	    ps->Isr.count < 0 || ps->Isr.count > ISR_REPLICAS_MAX) {
		e->error_code = KERR_INVALID_REQUEST;
		return;
	}
	e->st.replica_count = (uint32_t)ps->Replicas.count;
	memcpy(e->st.replicas, ps->Replicas.items, e->st.replica_count * sizeof(int32_t));
	e->st.isr_count = (uint32_t)ps->Isr.count;
	memcpy(e->st.isr, ps->Isr.items, e->st.isr_count * sizeof(int32_t));
	for (uint32_t r = 0; r < e->st.replica_count; r++)
		e->replica = e->replica || e->st.replicas[r] == me;
}

/* Response skeleton and entries, in request order. SL_OK or SL_ENOMEM. */
static enum sl_err lai_prepare(struct lai_op *op)
{
	struct req *rq = op->rq;
	const struct LeaderAndIsrRequest *req = op->req;
	bool grouped = rq->api_version >= 2;
	bool by_topic = rq->api_version >= 5;
	uint32_t k = 0;

	kafka_init_leader_and_isr_response(&op->resp);
	if (grouped) {
		for (int32_t t = 0; t < req->TopicStates.count; t++)
			op->count += (uint32_t)SL_MAX(req->TopicStates.items[t].PartitionStates.count, 0);
	} else {
		op->count = (uint32_t)SL_MAX(req->UngroupedPartitionStates.count, 0);
	}
	op->entries = req_alloc(rq, (op->count + 1) * sizeof(*op->entries));
	op->parts = req_alloc(rq, rq->bs->b->shard_count * sizeof(*op->parts));
	struct LeaderAndIsrResponse_LeaderAndIsrPartitionError *flat =
		req_alloc(rq, (op->count + 1) * sizeof(*flat));
	if (op->entries == NULL || op->parts == NULL || flat == NULL)
		return SL_ENOMEM;
	op->resp.PartitionErrors.count = by_topic ? 0 : (int32_t)op->count;
	op->resp.PartitionErrors.items = flat;
	if (by_topic) {
		op->resp.Topics.count = SL_MAX(req->TopicStates.count, 0);
		op->resp.Topics.items = req_alloc(rq, (size_t)(op->resp.Topics.count + 1) *
						      sizeof(*op->resp.Topics.items));
		if (op->resp.Topics.items == NULL)
			return SL_ENOMEM;
	} else {
		op->resp.Topics.count = 0;
	}
	if (!grouped) {
		for (int32_t i = 0; i < req->UngroupedPartitionStates.count; i++, k++) {
			const struct LeaderAndIsrRequest_LeaderAndIsrPartitionState *ps =
				&req->UngroupedPartitionStates.items[i];
			kafka_init_leader_and_isr_response_leader_and_isr_partition_error(&flat[k]);
			flat[k].TopicName = ps->TopicName;
			flat[k].PartitionIndex = ps->PartitionIndex;
			op->entries[k].slot = &flat[k];
			lai_entry_fill(op, &op->entries[k], ps->TopicName, NULL, ps);
		}
		SL_ASSERT(k == op->count);
		return SL_OK;
	}
	for (int32_t t = 0; t < req->TopicStates.count; t++) {
		const struct LeaderAndIsrRequest_LeaderAndIsrTopicState *ts = &req->TopicStates.items[t];
		int32_t n = SL_MAX(ts->PartitionStates.count, 0), most = 0;
		uint32_t first = k;
		if (by_topic) {
			struct LeaderAndIsrResponse_LeaderAndIsrTopicError *te = &op->resp.Topics.items[t];
			kafka_init_leader_and_isr_response_leader_and_isr_topic_error(te);
			te->TopicId = ts->TopicId;
			te->PartitionErrors.count = n;
			te->PartitionErrors.items = &flat[k];
		}
		for (int32_t i = 0; i < n; i++, k++) {
			const struct LeaderAndIsrRequest_LeaderAndIsrPartitionState *ps =
				&ts->PartitionStates.items[i];
			kafka_init_leader_and_isr_response_leader_and_isr_partition_error(&flat[k]);
			flat[k].TopicName = ts->TopicName;
			flat[k].PartitionIndex = ps->PartitionIndex;
			op->entries[k].slot = &flat[k];
			lai_entry_fill(op, &op->entries[k], ts->TopicName, by_topic ? &ts->TopicId : NULL,
				       ps);
			most = SL_MAX(most, op->entries[k].topic_partitions);
		}
		for (uint32_t j = first; j < k; j++)
			op->entries[j].topic_partitions = most;
	}
	SL_ASSERT(k == op->count);
	return SL_OK;
}

enum sl_err api_leader_and_isr_handle(struct req *rq)
{
	struct lai_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	rq->api = op;
	op->rq = rq;
	op->req = rq->body;
	if (lai_prepare(op) != SL_OK)
		return SL_ENOMEM;
	op->bc.count = 0;
	op->bc.mutate = lai_mutate;
	op->bc.done = lai_adopted;
	op->bc.arg = op;
	if (broker_topics_create(rq->bs, &op->bc) != SL_OK) {
		op->top_error = KERR_REQUEST_TIMED_OUT;
		lai_respond(op);
	}
	return SL_OK;
}

void replica_api_register(void)
{
	dispatch_register(KAFKA_API_LEADER_AND_ISR, 0, 7, api_leader_and_isr_handle);
	dispatch_register(KAFKA_API_STOP_REPLICA, 0, 4, api_stop_replica_handle);
}
