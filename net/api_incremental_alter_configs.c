/*
 * api_incremental_alter_configs.c — IncrementalAlterConfigs (key 44),
 * versions 0-1.
 *
 *   api_incremental_alter_configs_handle (connection's shard) judges each
 *       resource as a whole (one bad entry fails that resource only):
 *     - TOPIC (2): the topic must exist (UNKNOWN_TOPIC_OR_PARTITION);
 *       each entry names a known topic config (INVALID_CONFIG), at most
 *       once (INVALID_REQUEST); SET(0) checks the value, DELETE(1) drops
 *       the override, APPEND(2)/SUBTRACT(3) only for list configs
 *       (cleanup.policy) and computed from the current value (override,
 *       else the broker's) with tcfg_list_apply, then checked like SET.
 *     - BROKER (4): Sluice has no dynamic broker configs, so every
 *       alteration gets INVALID_REQUEST ("Cannot update these configs
 *       dynamically"), as Kafka answers for static broker keys.
 *     - other types: INVALID_REQUEST.
 *       ValidateOnly answers after the checks.
 *   alter_configs_on_ctl (shard 0) writes the overrides to the catalog
 *       (persisted); the catalog is published and every owner rebuilds
 *       its partitions' settings (partition.c: plog_config_update,
 *       max.message.bytes and LogAppendTime in partition_append).
 *   alter_configs_done (connection's shard, after every shard adopted the
 *       new catalog, so the change is in force) answers.
 * The new list values are computed from the connection shard's snapshot:
 * two concurrent APPENDs to one topic's list may lose one (Kafka
 * serialises them on its controller).
 */
#include <string.h>

#include "admin.h"
#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"
#include "topic_config.h"

#define IAC_TOPIC 2
#define IAC_BROKER 4
#define IAC_SET 0
#define IAC_DELETE 1
#define IAC_APPEND 2
#define IAC_SUBTRACT 3


struct iac_change {
	char *key;
	char *value;                 /* NULL: delete */
};

struct iac_res {
	struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *slot;
	char *topic;                 /* NUL-terminated */
	struct iac_change *changes;
	uint32_t count;
	bool go;
};

struct iac_op {
	struct req *rq;
	struct IncrementalAlterConfigsResponse resp;
	struct iac_res *res;
	uint32_t n;
	struct broker_create bc;
};

/* Runs on: shard 0. */
static uint32_t alter_configs_on_ctl(struct broker_shard *bs0, struct broker_create *bc)
{
	struct iac_op *op = bc->arg;
	uint32_t changes = 0;

	SL_ASSERT(bs0->sh->id == 0);
	for (uint32_t i = 0; i < op->n; i++) {
		struct iac_res *r = &op->res[i];
		for (uint32_t j = 0; r->go && j < r->count; j++) {
			enum sl_err err = catalog_topic_config_set(bs0->b->catalog, r->topic,
								   strlen(r->topic), r->changes[j].key,
								   r->changes[j].value);
			if (err == SL_OK) {
				changes++;
			} else if (!(err == SL_ENOTFOUND && r->changes[j].value == NULL)) {
				r->slot->ErrorCode = err == SL_ENOTFOUND ? KERR_UNKNOWN_TOPIC_OR_PARTITION
						   : err == SL_ERANGE || err == SL_EINVAL ? KERR_INVALID_CONFIG
											  : KERR_KAFKA_STORAGE_ERROR;
				break;
			}
		}
	}
	return changes;
}

static void alter_configs_done(struct broker_shard *bs, struct broker_create *bc)
{
	struct iac_op *op = bc->arg;

	(void)bs;
	req_respond(op->rq, &op->resp);
}

/* The new value for one entry (NULL: delete). KERR_NONE or the error. */
static int16_t alter_configs_value(struct req *rq, const struct catalog_topic *topic,
				   const struct IncrementalAlterConfigsRequest_AlterableConfig *c,
				   const struct tcfg_key *k, char **out)
{
	char why[256], cur_buf[TCFG_VALUE_MAX], next[TCFG_VALUE_MAX];
	struct kslice cur;

	*out = NULL;
	if (c->ConfigOperation == IAC_DELETE)
		return KERR_NONE;
	if (c->ConfigOperation == IAC_SET) {
		*out = admin_strdup(rq, c->Value);
	} else if (c->ConfigOperation == IAC_APPEND || c->ConfigOperation == IAC_SUBTRACT) {
		if (k->type != TCFG_T_LIST)
			return KERR_INVALID_CONFIG;   /* Kafka: append/subtract not allowed */
		char *arg = admin_strdup(rq, c->Value);
		(void)admin_topic_value(rq, k, topic, &cur);
		if (arg == NULL || cur.ptr == NULL || (size_t)cur.len >= sizeof(cur_buf))
			return KERR_INVALID_CONFIG;
		memcpy(cur_buf, cur.ptr, (size_t)cur.len);
		cur_buf[cur.len] = '\0';
		if (tcfg_list_apply(c->ConfigOperation == IAC_APPEND ? TCFG_LIST_APPEND
								     : TCFG_LIST_SUBTRACT,
				    cur_buf, arg, next, sizeof(next)) != SL_OK)
			return KERR_INVALID_CONFIG;
		*out = admin_strdup(rq, admin_slice(next));
	} else {
		return KERR_INVALID_REQUEST;
	}
	if (*out == NULL)
		return KERR_INVALID_CONFIG;
	return tcfg_validate(k->name, strlen(k->name), *out, strlen(*out), why, sizeof(why));
}

/* Judges topic resource i. SL_OK or SL_ENOMEM (errors go in the slot). */
static enum sl_err alter_configs_topic(struct iac_op *op, uint32_t i,
				       const struct IncrementalAlterConfigsRequest_AlterConfigsResource *in)
{
	struct req *rq = op->rq;
	struct iac_res *r = &op->res[i];
	int32_t n = SL_MAX(in->Configs.count, 0);
	const struct catalog_topic *topic = catalog_snap_find(
		rq->bs->snap, (const char *)in->ResourceName.ptr, (size_t)SL_MAX(in->ResourceName.len, 0));

	if (topic == NULL) {
		r->slot->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		r->slot->ErrorMessage = admin_slice("This server does not host this topic-partition.");
		return SL_OK;
	}
	r->topic = admin_strdup(rq, admin_slice(topic->name));
	r->changes = req_alloc(rq, (size_t)(n + 1) * sizeof(*r->changes));
	if (r->topic == NULL || r->changes == NULL)
		return SL_ENOMEM;
	for (int32_t j = 0; j < n; j++) {
		const struct IncrementalAlterConfigsRequest_AlterableConfig *c = &in->Configs.items[j];
		const struct tcfg_key *k =
			tcfg_topic_find((const char *)c->Name.ptr, (size_t)SL_MAX(c->Name.len, 0));
		if (k == NULL) {
			r->slot->ErrorCode = KERR_INVALID_CONFIG;
			r->slot->ErrorMessage = admin_msg(rq, "Unknown topic config name: %.*s",
							  (int)SL_MAX(c->Name.len, 0),
							  (const char *)c->Name.ptr);
			return SL_OK;
		}
		for (int32_t p = 0; p < j; p++) {
			if (strcmp(r->changes[p].key, k->name) == 0) {
				r->slot->ErrorCode = KERR_INVALID_REQUEST;
				r->slot->ErrorMessage = admin_msg(rq, "Error due to duplicate config "
								  "keys: %s", k->name);
				return SL_OK;
			}
		}
		r->changes[j].key = (char *)(uintptr_t)k->name;
		int16_t kerr = alter_configs_value(rq, topic, c, k, &r->changes[j].value);
		if (kerr != KERR_NONE) {
			r->slot->ErrorCode = kerr;
			r->slot->ErrorMessage = admin_msg(rq, "Invalid value or operation %d for "
							  "configuration %s", c->ConfigOperation,
							  k->name);
			return SL_OK;
		}
	}
	r->count = (uint32_t)n;
	r->go = n > 0 && !((const struct IncrementalAlterConfigsRequest *)rq->body)->ValidateOnly;
	return SL_OK;
}

enum sl_err api_incremental_alter_configs_handle(struct req *rq)
{
	const struct IncrementalAlterConfigsRequest *in = rq->body;
	struct iac_op *op = req_alloc(rq, sizeof(*op));
	uint32_t todo = 0;

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	kafka_init_incremental_alter_configs_response(&op->resp);
	op->n = (uint32_t)SL_MAX(in->Resources.count, 0);
	op->res = req_alloc(rq, (op->n + 1) * sizeof(*op->res));
	op->resp.Responses.items = req_alloc(rq, (op->n + 1) * sizeof(*op->resp.Responses.items));
	if (op->res == NULL || op->resp.Responses.items == NULL)
		return SL_ENOMEM;
	op->resp.Responses.count = (int32_t)op->n;
	for (uint32_t i = 0; i < op->n; i++) {
		const struct IncrementalAlterConfigsRequest_AlterConfigsResource *res = &in->Resources.items[i];
		struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *slot = &op->resp.Responses.items[i];
		kafka_init_incremental_alter_configs_response_alter_configs_resource_response(slot);
		slot->ResourceType = res->ResourceType;
		slot->ResourceName = res->ResourceName;
		op->res[i].slot = slot;
		if (res->ResourceType == IAC_TOPIC) {
			if (alter_configs_topic(op, i, res) != SL_OK)
				return SL_ENOMEM;
		} else if (res->ResourceType == IAC_BROKER) {
			slot->ErrorCode = KERR_INVALID_REQUEST;
			slot->ErrorMessage = admin_slice("Cannot update these configs dynamically: Sluice "
							 "broker configs are static (server.properties)");
		} else {
			slot->ErrorCode = KERR_INVALID_REQUEST;
			slot->ErrorMessage = admin_msg(rq, "Unsupported resource type %d",
						       res->ResourceType);
		}
		todo += op->res[i].go;
	}
	rq->api = op;
	if (todo == 0) {
		req_respond(rq, &op->resp);
		return SL_OK;
	}
	if (admin_mutate(rq, &op->bc, alter_configs_on_ctl, alter_configs_done, op) != SL_OK) {
		for (uint32_t i = 0; i < op->n; i++)
			if (op->res[i].go)
				op->res[i].slot->ErrorCode = KERR_REQUEST_TIMED_OUT;
		req_respond(rq, &op->resp);
	}
	return SL_OK;
}
