/*
 * api_describe_configs.c — DescribeConfigs (key 32), versions 1-4.
 *
 *   api_describe_configs_handle (connection's shard) answers from its
 *   catalog snapshot and the broker configuration:
 *     - TOPIC (2): every topic config of topic_config.h, value = the
 *       topic's override (DYNAMIC_TOPIC_CONFIG) or the broker value it
 *       defaults from (STATIC_BROKER_CONFIG when server.properties / --set
 *       moved it from Kafka's default, else DEFAULT_CONFIG); read_only
 *       false; synonyms when asked (override, then the broker key).
 *       Unknown topic: UNKNOWN_TOPIC_OR_PARTITION in that resource's slot.
 *     - BROKER (4), name = this node id or "" : the broker keys of
 *       topic_config.h, all read-only (Sluice has no dynamic broker
 *       configs). Another id: INVALID_REQUEST in that slot.
 *     - anything else: INVALID_REQUEST in that slot.
 *   ConfigurationKeys (non-null) restricts the list; unknown keys are left
 *   out, as Kafka does. ConfigType from v3; Documentation null.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"
#include "topic_config.h"

#define DESCRIBE_CONFIGS_TOPIC 2
#define DESCRIBE_CONFIGS_BROKER 4


/* Was key `name` asked for (keys null: everything)? */
static bool describe_configs_wanted(const struct karray_str *keys, const char *name)
{
	size_t len = strlen(name);

	if (keys->count < 0)
		return true;
	for (int32_t i = 0; i < keys->count; i++)
		if ((size_t)SL_MAX(keys->items[i].len, 0) == len &&
		    memcmp(keys->items[i].ptr, name, len) == 0)
			return true;
	return false;
}

/* Fills one entry for key k. SL_OK or SL_ENOMEM. */
static enum sl_err describe_configs_entry(struct req *rq, bool synonyms, const struct tcfg_key *k,
					  const struct catalog_topic *topic, struct DescribeConfigsResponse_DescribeConfigsResourceResult *e)
{
	char buf[TCFG_VALUE_MAX];

	kafka_init_describe_configs_response_describe_configs_resource_result(e);
	e->Name = admin_slice(k->name);
	e->ConfigType = (int8_t)k->type;
	e->Documentation = admin_slice(NULL);
	if (topic != NULL) {
		e->ConfigSource = admin_topic_value(rq, k, topic, &e->Value);
		e->ReadOnly = false;
	} else {
		e->ConfigSource = (int8_t)tcfg_broker_value(rq->bs->b->config, k, buf, sizeof(buf));
		e->Value = admin_slice(admin_strdup(rq, admin_slice(buf)));
		e->ReadOnly = true;
	}
	if (e->Value.ptr == NULL)
		return SL_ENOMEM;
	e->IsDefault = e->ConfigSource == TCFG_SRC_DEFAULT;
	e->Synonyms.count = 0;
	if (!synonyms)
		return SL_OK;
	struct DescribeConfigsResponse_DescribeConfigsSynonym *s = req_alloc(rq, 2 * sizeof(*s));
	if (s == NULL)
		return SL_ENOMEM;
	e->Synonyms.items = s;
	if (topic != NULL && e->ConfigSource == TCFG_SRC_DYNAMIC_TOPIC) {
		s[0].Name = e->Name;
		s[0].Value = e->Value;
		s[0].Source = TCFG_SRC_DYNAMIC_TOPIC;
		e->Synonyms.count = 1;
	}
	if (topic == NULL || k->synonym == NULL) {
		s[e->Synonyms.count].Name = e->Name;
		s[e->Synonyms.count].Value = e->Value;
		s[e->Synonyms.count].Source = e->ConfigSource;
		e->Synonyms.count++;
		return SL_OK;
	}
	struct DescribeConfigsResponse_DescribeConfigsSynonym *b = &s[e->Synonyms.count++];
	b->Name = admin_slice(k->synonym);
	b->Source = (int8_t)tcfg_broker_value(rq->bs->b->config, k, buf, sizeof(buf));
	b->Value = admin_slice(admin_strdup(rq, admin_slice(buf)));
	return b->Value.ptr != NULL ? SL_OK : SL_ENOMEM;
}

/* One resource. SL_OK or SL_ENOMEM (errors go in r). */
static enum sl_err describe_configs_resource(struct req *rq,
					     const struct DescribeConfigsRequest_DescribeConfigsResource *in,
					     struct DescribeConfigsResponse_DescribeConfigsResult *r)
{
	const struct DescribeConfigsRequest *req = rq->body;
	const struct catalog_topic *topic = NULL;
	uint32_t n;
	char me[16];

	r->ResourceType = in->ResourceType;
	r->ResourceName = in->ResourceName;
	r->Configs.count = 0;
	if (in->ResourceType == DESCRIBE_CONFIGS_TOPIC) {
		topic = catalog_snap_find(rq->bs->snap, (const char *)in->ResourceName.ptr,
					  (size_t)SL_MAX(in->ResourceName.len, 0));
		if (topic == NULL) {
			r->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			r->ErrorMessage = admin_slice("This server does not host this topic-partition.");
			return SL_OK;
		}
		n = tcfg_topic_count();
	} else if (in->ResourceType == DESCRIBE_CONFIGS_BROKER) {
		snprintf(me, sizeof(me), "%d", rq->bs->b->node_id);
		if (in->ResourceName.len > 0 &&
		    ((size_t)in->ResourceName.len != strlen(me) ||
		     memcmp(in->ResourceName.ptr, me, strlen(me)) != 0)) {
			r->ErrorCode = KERR_INVALID_REQUEST;
			r->ErrorMessage = admin_msg(rq, "Unexpected broker id, expected %s", me);
			return SL_OK;
		}
		n = tcfg_broker_count();
	} else {
		r->ErrorCode = KERR_INVALID_REQUEST;
		r->ErrorMessage = admin_msg(rq, "Unsupported resource type %d", in->ResourceType);
		return SL_OK;
	}
	r->Configs.items = req_alloc(rq, (n + 1) * sizeof(*r->Configs.items));
	if (r->Configs.items == NULL)
		return SL_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const struct tcfg_key *k = topic != NULL ? tcfg_topic_at(i) : tcfg_broker_at(i);
		if (!describe_configs_wanted(&in->ConfigurationKeys, k->name))
			continue;
		if (describe_configs_entry(rq, req->IncludeSynonyms, k, topic,
					   &r->Configs.items[r->Configs.count]) != SL_OK)
			return SL_ENOMEM;
		r->Configs.count++;
	}
	SL_ASSERT((uint32_t)r->Configs.count <= n);
	return SL_OK;
}

enum sl_err api_describe_configs_handle(struct req *rq)
{
	const struct DescribeConfigsRequest *in = rq->body;
	struct DescribeConfigsResponse resp;
	int32_t n = SL_MAX(in->Resources.count, 0);

	kafka_init_describe_configs_response(&resp);
	resp.Results.count = n;
	resp.Results.items = req_alloc(rq, (size_t)(n + 1) * sizeof(*resp.Results.items));
	if (resp.Results.items == NULL)
		return SL_ENOMEM;
	for (int32_t i = 0; i < n; i++) {
		kafka_init_describe_configs_response_describe_configs_result(&resp.Results.items[i]);
		if (describe_configs_resource(rq, &in->Resources.items[i], &resp.Results.items[i]) !=
		    SL_OK)
			return SL_ENOMEM;
	}
	req_respond(rq, &resp);
	return SL_OK;
}
