/*
 * api_create_partitions.c — CreatePartitions (key 37), versions 0-3.
 *
 *   api_create_partitions_handle (connection's shard) checks each topic
 *       in its snapshot: unknown -> UNKNOWN_TOPIC_OR_PARTITION; a count
 *       not above the current one -> INVALID_PARTITIONS (only increases,
 *       as in Kafka); manual assignments must give one replica on this
 *       node for each new partition (INVALID_REPLICA_ASSIGNMENT); a topic
 *       twice -> INVALID_REQUEST. ValidateOnly answers here.
 *   create_partitions_on_ctl (shard 0) raises the counts in the catalog
 *       (catalog_topic_partitions_set) and the catalog is published; the
 *       owners open the new partitions when they adopt it.
 *   create_partitions_done   (connection's shard) answers once every
 *       shard has the new partitions.
 *   Cluster mode (b->zk_partitions_create set): the topics that passed the
 *       name/count checks go to ZooKeeper instead (coordination/
 *       topic_admin.c: validation of manual rows against the live brokers
 *       and the topic's replication factor, ValidateOnly, a version-checked
 *       rewrite of /brokers/topics/<t>); the answer comes once the znode is
 *       written, as in Kafka; the controller then starts the partitions.
 */
#include <string.h>

#include "admin.h"
#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"

struct cp_topic {
	struct CreatePartitionsResponse_CreatePartitionsTopicResult *slot;
	char *name;
	int32_t count;
	bool go;
};

struct cp_op {
	struct req *rq;
	struct CreatePartitionsResponse resp;
	struct cp_topic *topics;
	uint32_t n;
	struct broker_create bc;
	struct broker_zk_admin za;       /* cluster mode */
	uint32_t *za_index;              /* cluster mode: request index of za.topics[k] */
};

static void create_partitions_zk_done(struct broker_shard *bs, struct broker_zk_admin *a)
{
	struct cp_op *op = a->arg;

	(void)bs;
	for (uint32_t k = 0; k < a->count; k++) {
		struct cp_topic *t = &op->topics[op->za_index[k]];
		t->slot->ErrorCode = a->topics[k].error_code;
		if (a->topics[k].message[0] != '\0')
			t->slot->ErrorMessage = admin_slice(a->topics[k].message);
	}
	req_respond(op->rq, &op->resp);
}

/*
 * Cluster mode (broker.h zk_partitions_create): the `todo` topics that
 * passed the checks (ValidateOnly included: ZooKeeper's assignment judges
 * the manual rows) go to shard 0, which rewrites /brokers/topics/<t>.
 * SL_OK or SL_ENOMEM.
 */
static enum sl_err create_partitions_zk(struct cp_op *op, uint32_t todo)
{
	struct req *rq = op->rq;
	const struct CreatePartitionsRequest *in = rq->body;
	uint32_t k = 0;

	if (todo == 0) {
		req_respond(rq, &op->resp);
		return SL_OK;
	}
	op->za.topics = req_alloc(rq, (todo + 1) * sizeof(*op->za.topics));
	op->za_index = req_alloc(rq, (todo + 1) * sizeof(*op->za_index));
	if (op->za.topics == NULL || op->za_index == NULL)
		return SL_ENOMEM;
	memset(op->za.topics, 0, (todo + 1) * sizeof(*op->za.topics));
	for (uint32_t i = 0; i < op->n; i++) {
		const struct CreatePartitionsRequest_CreatePartitionsTopic *ct = &in->Topics.items[i];
		if (!op->topics[i].go)
			continue;
		struct broker_zk_topic *zt = &op->za.topics[k];
		op->za_index[k++] = i;
		zt->name = op->topics[i].name;
		zt->name_len = (uint32_t)strlen(op->topics[i].name);
		zt->count = op->topics[i].count;
		zt->assign_rows = ct->Assignments.count;
		if (ct->Assignments.count >= 0) {
			struct karray_i32 *rows = req_alloc(rq, ((size_t)ct->Assignments.count + 1) *
								sizeof(*rows));
			if (rows == NULL)
				return SL_ENOMEM;
			for (int32_t j = 0; j < ct->Assignments.count; j++)
				rows[j] = ct->Assignments.items[j].BrokerIds;
			zt->assign = rows;
		}
		zt->error_code = KERR_NONE;
	}
	op->za.count = k;
	op->za.validate_only = in->ValidateOnly;
	op->za.timeout_ms = in->TimeoutMs;
	op->za.done = create_partitions_zk_done;
	op->za.arg = op;
	if (rq->bs->b->zk_partitions_create(rq->bs, &op->za) != SL_OK) {
		for (uint32_t i = 0; i < op->n; i++)
			if (op->topics[i].go)
				op->topics[i].slot->ErrorCode = KERR_REQUEST_TIMED_OUT;
		req_respond(rq, &op->resp);
	}
	return SL_OK;
}

/* Runs on: shard 0. */
static uint32_t create_partitions_on_ctl(struct broker_shard *bs0, struct broker_create *bc)
{
	struct cp_op *op = bc->arg;
	uint32_t changes = 0;

	SL_ASSERT(bs0->sh->id == 0);
	for (uint32_t i = 0; i < op->n; i++) {
		struct cp_topic *t = &op->topics[i];
		if (!t->go)
			continue;
		enum sl_err err = catalog_topic_partitions_set(bs0->b->catalog, t->name,
							       strlen(t->name), t->count);
		if (err == SL_OK) {
			changes++;
			continue;
		}
		t->slot->ErrorCode = err == SL_ENOTFOUND ? KERR_UNKNOWN_TOPIC_OR_PARTITION
				   : err == SL_EINVAL || err == SL_ERANGE ? KERR_INVALID_PARTITIONS
									  : KERR_KAFKA_STORAGE_ERROR;
	}
	return changes;
}

static void create_partitions_done(struct broker_shard *bs, struct broker_create *bc)
{
	struct cp_op *op = bc->arg;

	(void)bs;
	req_respond(op->rq, &op->resp);
}

/* Judges topic i; the error goes in its slot. SL_OK or SL_ENOMEM. */
static enum sl_err create_partitions_check(struct cp_op *op, uint32_t i)
{
	struct req *rq = op->rq;
	const struct CreatePartitionsRequest *in = rq->body;
	const struct CreatePartitionsRequest_CreatePartitionsTopic *ct = &in->Topics.items[i];
	struct cp_topic *t = &op->topics[i];
	struct CreatePartitionsResponse_CreatePartitionsTopicResult *r = t->slot;
	size_t len = (size_t)SL_MAX(ct->Name.len, 0);

	for (uint32_t j = 0; j < op->n; j++) {
		if (j != i && in->Topics.items[j].Name.len == ct->Name.len &&
		    memcmp(in->Topics.items[j].Name.ptr, ct->Name.ptr, len) == 0) {
			r->ErrorCode = KERR_INVALID_REQUEST;
			r->ErrorMessage = admin_slice("Duplicate topic in request.");
			return SL_OK;
		}
	}
	const struct catalog_topic *topic = catalog_snap_find(rq->bs->snap, (const char *)ct->Name.ptr, len);
	if (topic == NULL) {
		r->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		r->ErrorMessage = admin_slice("This server does not host this topic-partition.");
		return SL_OK;
	}
	if (ct->Count <= topic->partition_count || ct->Count > CATALOG_PARTITIONS_MAX) {
		r->ErrorCode = KERR_INVALID_PARTITIONS;
		r->ErrorMessage = ct->Count == topic->partition_count
			? admin_msg(rq, "Topic already has %d partitions.", topic->partition_count)
			: admin_msg(rq, "Topic currently has %d partitions, which is higher than the "
				    "requested %d.", topic->partition_count, ct->Count);
		return SL_OK;
	}
	if (ct->Assignments.count >= 0 && rq->bs->b->zk_partitions_create != NULL) {
		/* Cluster mode: rows checked against ZooKeeper's assignment (topic_admin.c). */
	} else if (ct->Assignments.count >= 0) {
		if (ct->Assignments.count != ct->Count - topic->partition_count) {
			r->ErrorCode = KERR_INVALID_REPLICA_ASSIGNMENT;
			r->ErrorMessage = admin_msg(rq, "Increasing the number of partitions by %d but "
						    "%d assignments provided.",
						    ct->Count - topic->partition_count,
						    ct->Assignments.count);
			return SL_OK;
		}
		for (int32_t j = 0; j < ct->Assignments.count; j++) {
			const struct karray_i32 *ids = &ct->Assignments.items[j].BrokerIds;
			if (ids->count != 1 || ids->items[0] != rq->bs->b->node_id) {
				r->ErrorCode = KERR_INVALID_REPLICA_ASSIGNMENT;
				r->ErrorMessage = admin_msg(rq, "Assignments may only name this single "
							    "broker (%d), once.", rq->bs->b->node_id);
				return SL_OK;
			}
		}
	}
	if (in->ValidateOnly && rq->bs->b->zk_partitions_create == NULL)
		return SL_OK;
	t->name = admin_strdup(rq, ct->Name);
	if (t->name == NULL)
		return SL_ENOMEM;
	t->count = ct->Count;
	t->go = true;
	return SL_OK;
}

enum sl_err api_create_partitions_handle(struct req *rq)
{
	const struct CreatePartitionsRequest *in = rq->body;
	struct cp_op *op = req_alloc(rq, sizeof(*op));
	uint32_t todo = 0;

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	rq->api = op;
	kafka_init_create_partitions_response(&op->resp);
	op->n = (uint32_t)SL_MAX(in->Topics.count, 0);
	op->topics = req_alloc(rq, (op->n + 1) * sizeof(*op->topics));
	op->resp.Results.items = req_alloc(rq, (op->n + 1) * sizeof(*op->resp.Results.items));
	if (op->topics == NULL || op->resp.Results.items == NULL)
		return SL_ENOMEM;
	op->resp.Results.count = (int32_t)op->n;
	for (uint32_t i = 0; i < op->n; i++) {
		op->topics[i].slot = &op->resp.Results.items[i];
		kafka_init_create_partitions_response_create_partitions_topic_result(op->topics[i].slot);
		op->topics[i].slot->Name = in->Topics.items[i].Name;
		if (create_partitions_check(op, i) != SL_OK)
			return SL_ENOMEM;
		todo += op->topics[i].go;
	}
	if (rq->bs->b->zk_partitions_create != NULL)
		return create_partitions_zk(op, todo);
	if (todo == 0) {
		req_respond(rq, &op->resp);
		return SL_OK;
	}
	if (admin_mutate(rq, &op->bc, create_partitions_on_ctl, create_partitions_done, op) != SL_OK) {
		for (uint32_t i = 0; i < op->n; i++)
			if (op->topics[i].go)
				op->topics[i].slot->ErrorCode = KERR_REQUEST_TIMED_OUT;
		req_respond(rq, &op->resp);
	}
	return SL_OK;
}
