/*
 * api_create_topics.c — CreateTopics (key 19), versions 2-7.
 *
 *   api_create_topics_handle (connection's shard) checks every topic:
 *       name (INVALID_TOPIC_EXCEPTION), duplicates in the request
 *       (INVALID_REQUEST), partitions (-1 = num.partitions; 0 or < -1:
 *       INVALID_PARTITIONS), replication factor (-1 = default; only 1 is
 *       possible on one node: INVALID_REPLICATION_FACTOR, Kafka's message
 *       "larger than available brokers"), manual assignments (one replica,
 *       this broker, partitions 0..n-1: else INVALID_REPLICA_ASSIGNMENT /
 *       INVALID_REQUEST), configs (topic_config.h: INVALID_CONFIG), and
 *       TOPIC_ALREADY_EXISTS from its snapshot. validateOnly answers here.
 *   create_topics_on_ctl     (shard 0) creates the valid topics and their
 *       overrides in the catalog (a topic whose overrides cannot be stored
 *       is removed again); the catalog is published.
 *   create_topics_done       (connection's shard, after every shard opened
 *       the partitions) answers; v5+ with partitions, replication factor
 *       and every topic config (value and source), v7 with the topic id.
 * timeoutMs is honoured loosely: creation is synchronous on shard 0.
 */
#include <string.h>

#include "admin.h"
#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"
#include "topic_config.h"

struct ct_topic {
	struct CreateTopicsResponse_CreatableTopicResult *slot;
	char *name;                    /* NUL-terminated, request memory */
	int32_t partitions;
	int32_t rf;                    /* replication factor (cluster mode) */
	uint32_t config_count;
	char **keys, **values;
	bool go;                       /* valid: create it */
	struct kuuid id;               /* out */
	int16_t error_code;            /* out */
};

struct ct_op {
	struct req *rq;
	struct CreateTopicsResponse resp;
	struct ct_topic *topics;
	uint32_t count;
	struct broker_create bc;
	struct broker_create_topic *zt; /* cluster mode: what goes to ZooKeeper */
};

/* Fills a v5+ result: counts and every topic config. */
static void create_topics_describe(struct req *rq, struct ct_topic *t,
				   const struct catalog_topic *topic)
{
	struct CreateTopicsResponse_CreatableTopicResult *r = t->slot;
	uint32_t n = tcfg_topic_count();

	r->NumPartitions = t->partitions;
	r->ReplicationFactor = (int16_t)SL_MAX(t->rf, 1);
	r->Configs.items = req_alloc(rq, n * sizeof(*r->Configs.items));
	if (r->Configs.items == NULL)
		return;
	r->Configs.count = (int32_t)n;
	for (uint32_t i = 0; i < n; i++) {
		struct CreateTopicsResponse_CreatableTopicConfigs *c = &r->Configs.items[i];
		const struct tcfg_key *k = tcfg_topic_at(i);
		kafka_init_create_topics_response_creatable_topic_configs(c);
		c->Name = admin_slice(k->name);
		if (topic == NULL) {
			/* validateOnly: the request's own values count as overrides. */
			c->ConfigSource = admin_topic_value(rq, k, NULL, &c->Value);
			for (uint32_t j = 0; j < t->config_count; j++) {
				if (strcmp(t->keys[j], k->name) == 0) {
					c->Value = admin_slice(t->values[j]);
					c->ConfigSource = TCFG_SRC_DYNAMIC_TOPIC;
				}
			}
		} else {
			c->ConfigSource = admin_topic_value(rq, k, topic, &c->Value);
		}
	}
}

/* Runs on: the connection's shard. */
static void create_topics_answer(struct ct_op *op)
{
	struct req *rq = op->rq;

	for (uint32_t i = 0; i < op->count; i++) {
		struct ct_topic *t = &op->topics[i];
		struct CreateTopicsResponse_CreatableTopicResult *r = t->slot;
		if (!t->go) {
			continue;
		}
		r->ErrorCode = t->error_code;
		if (t->error_code == KERR_TOPIC_ALREADY_EXISTS)
			r->ErrorMessage = admin_msg(rq, "Topic '%s' already exists.", t->name);
		else if (t->error_code != KERR_NONE)
			r->ErrorMessage = admin_msg(rq, "%s", kerr_name(t->error_code));
		if (t->error_code != KERR_NONE || rq->api_version < 5)
			continue;
		const struct catalog_topic *topic =
			catalog_snap_find(rq->bs->snap, t->name, strlen(t->name));
		r->TopicId = topic != NULL ? topic->id : t->id;
		create_topics_describe(rq, t, topic);
	}
	req_respond(rq, &op->resp);
}

/* Runs on: shard 0. */
static uint32_t create_topics_on_ctl(struct broker_shard *bs0, struct broker_create *bc)
{
	struct ct_op *op = bc->arg;
	struct catalog *cat = bs0->b->catalog;
	uint32_t changes = 0;

	SL_ASSERT(bs0->sh->id == 0);
	for (uint32_t i = 0; i < op->count; i++) {
		struct ct_topic *t = &op->topics[i];
		size_t len = strlen(t->name);
		if (!t->go)
			continue;
		uint32_t flags = catalog_name_internal(t->name, len) ? CATALOG_TOPIC_INTERNAL : 0;
		enum sl_err err = catalog_topic_create(cat, t->name, len, t->partitions, flags, &t->id);
		if (err == SL_EEXIST) {
			t->error_code = KERR_TOPIC_ALREADY_EXISTS;
			continue;
		}
		if (err != SL_OK) {
			t->error_code = err == SL_EINVAL ? KERR_INVALID_TOPIC_EXCEPTION
				      : err == SL_ERANGE ? KERR_INVALID_PARTITIONS
							 : KERR_KAFKA_STORAGE_ERROR;
			continue;
		}
		for (uint32_t j = 0; j < t->config_count && err == SL_OK; j++)
			err = catalog_topic_config_set(cat, t->name, len, t->keys[j], t->values[j]);
		if (err != SL_OK) {
			t->error_code = err == SL_ERANGE ? KERR_INVALID_CONFIG : KERR_KAFKA_STORAGE_ERROR;
			(void)catalog_topic_delete(cat, t->name, len);
			continue;
		}
		t->error_code = KERR_NONE;
		changes++;
	}
	return changes;
}

static void create_topics_done(struct broker_shard *bs, struct broker_create *bc)
{
	(void)bs;
	create_topics_answer(bc->arg);
}

/* Cluster mode: the ZooKeeper creation finished (broker.h zk_topics_create). */
static void create_topics_zk_done(struct broker_shard *bs, struct broker_create *bc)
{
	struct ct_op *op = bc->arg;
	uint32_t k = 0;

	(void)bs;
	for (uint32_t i = 0; i < op->count && k < bc->count; i++) {
		if (!op->topics[i].go)
			continue;
		op->topics[i].error_code = op->zt[k].error_code;
		op->topics[i].id = op->zt[k].id;
		k++;
	}
	create_topics_answer(op);
}

/* Cluster mode: hands the valid topics to broker_topics_create (ZooKeeper). */
static enum sl_err create_topics_zk(struct ct_op *op, uint32_t todo)
{
	const struct CreateTopicsRequest *in = op->rq->body;
	uint32_t k = 0;

	op->zt = req_alloc(op->rq, (todo + 1) * sizeof(*op->zt));
	if (op->zt == NULL)
		return SL_ENOMEM;
	for (uint32_t i = 0; i < op->count; i++) {
		struct ct_topic *t = &op->topics[i];
		if (!t->go)
			continue;
		op->zt[k].name = t->name;
		op->zt[k].name_len = (uint32_t)strlen(t->name);
		op->zt[k].partitions = t->partitions;
		op->zt[k].replication_factor = t->rf;
		op->zt[k].config_count = t->config_count;
		op->zt[k].keys = t->keys;
		op->zt[k].values = t->values;
		k++;
	}
	op->bc.topics = op->zt;
	op->bc.count = k;
	op->bc.done = create_topics_zk_done;
	op->bc.arg = op;
	op->bc.timeout_ms = in->timeoutMs > 0 ? (uint32_t)in->timeoutMs : 0;
	return broker_topics_create(op->rq->bs, &op->bc);
}

/* Checks a manual assignment. KERR_NONE or the error (message in *msg). */
static int16_t create_topics_check_assignments(struct req *rq,
					       const struct CreateTopicsRequest_CreatableTopic *ct,
					       struct kslice *msg)
{
	int32_t n = ct->Assignments.count;

	if (ct->NumPartitions != -1 || ct->ReplicationFactor != -1) {
		*msg = admin_slice("Both numPartitions or replicationFactor and replicasAssignments "
				   "were set. Both cannot be used at the same time.");
		return KERR_INVALID_REQUEST;
	}
	for (int32_t i = 0; i < n; i++) {
		const struct CreateTopicsRequest_CreatableReplicaAssignment *a = &ct->Assignments.items[i];
		if (a->PartitionIndex < 0 || a->PartitionIndex >= n) {
			*msg = admin_slice("Partitions should be a consecutive 0-based integer sequence");
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
		for (int32_t j = 0; j < i; j++) {
			if (ct->Assignments.items[j].PartitionIndex == a->PartitionIndex) {
				*msg = admin_slice("Duplicate partition in the replica assignment");
				return KERR_INVALID_REPLICA_ASSIGNMENT;
			}
		}
		if (a->BrokerIds.count != 1 || a->BrokerIds.items[0] != rq->bs->b->node_id) {
			*msg = admin_msg(rq, "Replica assignment of partition %d names brokers other "
					 "than this single node (%d)", a->PartitionIndex,
					 rq->bs->b->node_id);
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
	}
	return KERR_NONE;
}

/* Judges one topic (file comment). Fills t; the error goes in t->slot. */
static enum sl_err create_topics_check(struct ct_op *op, const struct CreateTopicsRequest *in,
				       int32_t idx, struct ct_topic *t)
{
	struct req *rq = op->rq;
	const struct CreateTopicsRequest_CreatableTopic *ct = &in->Topics.items[idx];
	struct CreateTopicsResponse_CreatableTopicResult *r = t->slot;
	const struct config *cfg = rq->bs->b->config;
	size_t len = (size_t)SL_MAX(ct->Name.len, 0);
	char why[256];

	t->name = admin_strdup(rq, ct->Name);
	if (t->name == NULL)
		return SL_ENOMEM;
	r->ErrorCode = KERR_NONE;
	if (!catalog_name_valid(t->name, len) || strlen(t->name) != len) {
		r->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
		r->ErrorMessage = admin_msg(rq, "Topic name \"%s\" is illegal", t->name);
		return SL_OK;
	}
	for (int32_t j = 0; j < in->Topics.count; j++) {
		if (j != idx && in->Topics.items[j].Name.len == ct->Name.len &&
		    memcmp(in->Topics.items[j].Name.ptr, ct->Name.ptr, len) == 0) {
			r->ErrorCode = KERR_INVALID_REQUEST;
			r->ErrorMessage = admin_msg(rq, "Create topics request contains multiple "
						    "entries for the following topics: %s", t->name);
			return SL_OK;
		}
	}
	int32_t rf = ct->ReplicationFactor == -1 ? cfg->default_replication_factor
						 : ct->ReplicationFactor;
	t->partitions = ct->NumPartitions == -1 ? cfg->num_partitions : ct->NumPartitions;
	if (ct->Assignments.count > 0) {
		r->ErrorCode = create_topics_check_assignments(rq, ct, &r->ErrorMessage);
		if (r->ErrorCode != KERR_NONE)
			return SL_OK;
		t->partitions = ct->Assignments.count;
		rf = 1;
	}
	if (t->partitions <= 0 || t->partitions > CATALOG_PARTITIONS_MAX) {
		r->ErrorCode = KERR_INVALID_PARTITIONS;
		r->ErrorMessage = admin_msg(rq, "Number of partitions must be larger than 0 (and at "
					    "most %d).", CATALOG_PARTITIONS_MAX);
		return SL_OK;
	}
	if (rf <= 0) {
		r->ErrorCode = KERR_INVALID_REPLICATION_FACTOR;
		r->ErrorMessage = admin_slice("Replication factor must be larger than 0.");
		return SL_OK;
	}
	t->rf = rf;
	/* Cluster mode: checked against the live brokers where the topic is written. */
	if (rf > 1 && rq->bs->b->zk_topics_create == NULL) {
		r->ErrorCode = KERR_INVALID_REPLICATION_FACTOR;
		r->ErrorMessage = admin_msg(rq, "Unable to replicate the partition %d time(s): The "
					    "target replication factor of %d cannot be reached because "
					    "only 1 broker(s) are registered.", rf, rf);
		return SL_OK;
	}
	int32_t nc = SL_MAX(ct->Configs.count, 0);
	if ((uint32_t)nc > CATALOG_CONFIGS_MAX) {
		r->ErrorCode = KERR_INVALID_CONFIG;
		r->ErrorMessage = admin_msg(rq, "At most %u topic configs", CATALOG_CONFIGS_MAX);
		return SL_OK;
	}
	t->keys = req_alloc(rq, (size_t)(nc + 1) * sizeof(char *));
	t->values = req_alloc(rq, (size_t)(nc + 1) * sizeof(char *));
	if (t->keys == NULL || t->values == NULL)
		return SL_ENOMEM;
	for (int32_t j = 0; j < nc; j++) {
		const struct CreateTopicsRequest_CreatableTopicConfig *c = &ct->Configs.items[j];
		int16_t kerr = tcfg_validate((const char *)c->Name.ptr, (size_t)SL_MAX(c->Name.len, 0),
					     c->Value.len < 0 ? NULL : (const char *)c->Value.ptr,
					     (size_t)SL_MAX(c->Value.len, 0), why, sizeof(why));
		if (kerr != KERR_NONE) {
			r->ErrorCode = kerr;
			r->ErrorMessage = admin_msg(rq, "%s", why);
			return SL_OK;
		}
		t->keys[j] = admin_strdup(rq, c->Name);
		t->values[j] = admin_strdup(rq, c->Value);
		if (t->keys[j] == NULL || t->values[j] == NULL)
			return SL_ENOMEM;
	}
	t->config_count = (uint32_t)nc;
	if (catalog_snap_find(rq->bs->snap, t->name, len) != NULL) {
		r->ErrorCode = KERR_TOPIC_ALREADY_EXISTS;
		r->ErrorMessage = admin_msg(rq, "Topic '%s' already exists.", t->name);
		return SL_OK;
	}
	if (in->validateOnly) {
		if (rq->api_version >= 5)
			create_topics_describe(rq, t, NULL);
		return SL_OK;
	}
	t->go = true;
	return SL_OK;
}

enum sl_err api_create_topics_handle(struct req *rq)
{
	const struct CreateTopicsRequest *in = rq->body;
	struct ct_op *op = req_alloc(rq, sizeof(*op));
	uint32_t todo = 0;

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	rq->api = op;
	kafka_init_create_topics_response(&op->resp);
	op->count = (uint32_t)SL_MAX(in->Topics.count, 0);
	op->topics = req_alloc(rq, (op->count + 1) * sizeof(*op->topics));
	op->resp.Topics.items = req_alloc(rq, (op->count + 1) * sizeof(*op->resp.Topics.items));
	if (op->topics == NULL || op->resp.Topics.items == NULL)
		return SL_ENOMEM;
	op->resp.Topics.count = (int32_t)op->count;
	for (uint32_t i = 0; i < op->count; i++) {
		struct ct_topic *t = &op->topics[i];
		t->slot = &op->resp.Topics.items[i];
		kafka_init_create_topics_response_creatable_topic_result(t->slot);
		t->slot->Name = in->Topics.items[i].Name;
		if (create_topics_check(op, in, (int32_t)i, t) != SL_OK)
			return SL_ENOMEM;
		if (t->go)
			todo++;
	}
	if (todo == 0) {
		create_topics_answer(op);
		return SL_OK;
	}
	if (rq->bs->b->zk_topics_create != NULL ? create_topics_zk(op, todo) != SL_OK
	    : admin_mutate(rq, &op->bc, create_topics_on_ctl, create_topics_done, op) != SL_OK) {
		for (uint32_t i = 0; i < op->count; i++)
			if (op->topics[i].go)
				op->topics[i].error_code = KERR_REQUEST_TIMED_OUT;
		create_topics_answer(op);
	}
	return SL_OK;
}
