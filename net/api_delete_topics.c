/*
 * api_delete_topics.c — DeleteTopics (key 20), versions 1-6.
 *
 *   api_delete_topics_handle (connection's shard) resolves each topic by
 *       name (v1-5 TopicNames, v6 Topics[].Name) or by id (v6, when the
 *       name is null) in its snapshot: UNKNOWN_TOPIC_OR_PARTITION /
 *       UNKNOWN_TOPIC_ID; delete.topic.enable=false gives
 *       TOPIC_DELETION_DISABLED for all.
 *   delete_topics_on_ctl     (shard 0) removes the topics from the catalog
 *       (persisted) and the catalog is published. Each owner shard, when
 *       it adopts that snapshot, closes the partitions (parked appends
 *       fail, fetch waiters wake), renames each directory to
 *       `<dir>.<id hex>-delete` and removes it (partition.c).
 *   delete_topics_done       (connection's shard, once every shard adopted
 *       the snapshot, so the files are gone) answers. A topic of the same
 *       name can be created right after, with a new id.
 *   Cluster mode (b->zk_topics_delete set): the resolved topics go to
 *       ZooKeeper instead (/admin/delete_topics/<t>, coordination/
 *       topic_admin.c); delete_topics_zk_done answers once this broker's
 *       metadata lost them (Kafka's DelayedDeleteTopics) or TimeoutMs
 *       passed (REQUEST_TIMED_OUT); the controller does the deletion.
 */
#include <string.h>

#include "admin.h"
#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"
#include "log.h"

struct dt_topic {
	struct DeleteTopicsResponse_DeletableTopicResult *slot;
	char *name;                       /* resolved, NUL-terminated */
	struct kuuid id;
	bool go;
};

struct dt_op {
	struct req *rq;
	struct DeleteTopicsResponse resp;
	struct dt_topic *topics;
	uint32_t count;
	struct broker_create bc;
	struct broker_zk_admin za;       /* cluster mode */
};

/* Cluster mode: every queued topic's outcome into its slot, then the answer. */
static void delete_topics_zk_done(struct broker_shard *bs, struct broker_zk_admin *a)
{
	struct dt_op *op = a->arg;
	uint32_t k = 0;

	(void)bs;
	for (uint32_t i = 0; i < op->count && k < a->count; i++) {
		if (!op->topics[i].go)
			continue;
		struct broker_zk_topic *zt = &a->topics[k++];
		op->topics[i].slot->ErrorCode = zt->error_code;
		if (zt->message[0] != '\0')
			op->topics[i].slot->ErrorMessage = admin_slice(zt->message);
	}
	req_respond(op->rq, &op->resp);
}

/*
 * Cluster mode (broker.h zk_topics_delete): hands the `todo` topics to
 * ZooKeeper; the answer comes from delete_topics_zk_done. SL_OK or SL_ENOMEM.
 */
static enum sl_err delete_topics_zk(struct dt_op *op, uint32_t todo)
{
	struct req *rq = op->rq;
	const struct DeleteTopicsRequest *in = rq->body;
	uint32_t k = 0;

	op->za.topics = req_alloc(rq, (todo + 1) * sizeof(*op->za.topics));
	if (op->za.topics == NULL)
		return SL_ENOMEM;
	memset(op->za.topics, 0, (todo + 1) * sizeof(*op->za.topics));
	for (uint32_t i = 0; i < op->count; i++) {
		if (!op->topics[i].go)
			continue;
		struct broker_zk_topic *zt = &op->za.topics[k++];
		zt->name = op->topics[i].name;
		zt->name_len = (uint32_t)strlen(op->topics[i].name);
		zt->id = op->topics[i].id;
		zt->error_code = KERR_NONE;
	}
	op->za.count = k;
	op->za.timeout_ms = in->TimeoutMs;
	op->za.done = delete_topics_zk_done;
	op->za.arg = op;
	if (rq->bs->b->zk_topics_delete(rq->bs, &op->za) != SL_OK) {
		for (uint32_t i = 0; i < op->count; i++)
			if (op->topics[i].go)
				op->topics[i].slot->ErrorCode = KERR_REQUEST_TIMED_OUT;
		req_respond(rq, &op->resp);
	}
	return SL_OK;
}

/* Runs on: shard 0. */
static uint32_t delete_topics_on_ctl(struct broker_shard *bs0, struct broker_create *bc)
{
	struct dt_op *op = bc->arg;
	uint32_t changes = 0;
	char idtext[CATALOG_ID_CHARS + 1];

	SL_ASSERT(bs0->sh->id == 0);
	for (uint32_t i = 0; i < op->count; i++) {
		struct dt_topic *t = &op->topics[i];
		if (!t->go)
			continue;
		enum sl_err err = catalog_topic_delete(bs0->b->catalog, t->name, strlen(t->name));
		if (err == SL_OK) {
			changes++;
			catalog_uuid_format(&t->id, idtext);
			LOG_I(bs0->sh->id, "deleted topic %s (id %s)", t->name, idtext);
			continue;
		}
		t->slot->ErrorCode = err == SL_ENOTFOUND ? KERR_UNKNOWN_TOPIC_OR_PARTITION
							 : KERR_KAFKA_STORAGE_ERROR;
	}
	return changes;
}

static void delete_topics_done(struct broker_shard *bs, struct broker_create *bc)
{
	struct dt_op *op = bc->arg;

	(void)bs;
	req_respond(op->rq, &op->resp);
}

/* Resolves entry i (file comment) into t and its slot. SL_OK or SL_ENOMEM. */
static enum sl_err delete_topics_resolve(struct dt_op *op, uint32_t i, struct dt_topic *t)
{
	struct req *rq = op->rq;
	const struct DeleteTopicsRequest *in = rq->body;
	struct DeleteTopicsResponse_DeletableTopicResult *r = t->slot;
	const struct catalog_topic *topic;
	struct kslice name;

	if (rq->api_version >= 6) {
		name = in->Topics.items[i].Name;
		r->TopicId = in->Topics.items[i].TopicId;
	} else {
		name = in->TopicNames.items[i];
	}
	r->Name = name;
	if (name.len >= 0) {
		topic = catalog_snap_find(rq->bs->snap, (const char *)name.ptr, (size_t)name.len);
		if (topic == NULL) {
			r->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			r->ErrorMessage = admin_slice("This server does not host this topic-partition.");
			return SL_OK;
		}
	} else {
		topic = catalog_snap_find_id(rq->bs->snap, &r->TopicId);
		if (topic == NULL) {
			r->ErrorCode = KERR_UNKNOWN_TOPIC_ID;
			r->ErrorMessage = admin_slice("This server does not host this topic ID.");
			return SL_OK;
		}
	}
	t->name = admin_strdup(rq, admin_slice(topic->name));
	if (t->name == NULL)
		return SL_ENOMEM;
	t->id = topic->id;
	r->Name = admin_slice(t->name);
	r->TopicId = topic->id;
	if (!rq->bs->b->config->delete_topic_enable) {
		r->ErrorCode = KERR_TOPIC_DELETION_DISABLED;
		r->ErrorMessage = admin_slice("Topic deletion is disabled.");
		return SL_OK;
	}
	/* The same topic twice in one request: delete it once. */
	for (uint32_t j = 0; j < i; j++) {
		if (op->topics[j].go && strcmp(op->topics[j].name, t->name) == 0)
			return SL_OK;
	}
	t->go = true;
	return SL_OK;
}

enum sl_err api_delete_topics_handle(struct req *rq)
{
	const struct DeleteTopicsRequest *in = rq->body;
	struct dt_op *op = req_alloc(rq, sizeof(*op));
	uint32_t todo = 0;

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	rq->api = op;
	kafka_init_delete_topics_response(&op->resp);
	op->count = (uint32_t)SL_MAX(rq->api_version >= 6 ? in->Topics.count : in->TopicNames.count, 0);
	op->topics = req_alloc(rq, (op->count + 1) * sizeof(*op->topics));
	op->resp.Responses.items = req_alloc(rq, (op->count + 1) * sizeof(*op->resp.Responses.items));
	if (op->topics == NULL || op->resp.Responses.items == NULL)
		return SL_ENOMEM;
	op->resp.Responses.count = (int32_t)op->count;
	for (uint32_t i = 0; i < op->count; i++) {
		op->topics[i].slot = &op->resp.Responses.items[i];
		kafka_init_delete_topics_response_deletable_topic_result(op->topics[i].slot);
		if (delete_topics_resolve(op, i, &op->topics[i]) != SL_OK)
			return SL_ENOMEM;
		todo += op->topics[i].go;
	}
	if (todo == 0) {
		req_respond(rq, &op->resp);
		return SL_OK;
	}
	if (rq->bs->b->zk_topics_delete != NULL)
		return delete_topics_zk(op, todo);
	if (admin_mutate(rq, &op->bc, delete_topics_on_ctl, delete_topics_done, op) != SL_OK) {
		for (uint32_t i = 0; i < op->count; i++)
			if (op->topics[i].go)
				op->topics[i].slot->ErrorCode = KERR_REQUEST_TIMED_OUT;
		req_respond(rq, &op->resp);
	}
	return SL_OK;
}
