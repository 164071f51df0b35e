/*
 * api_metadata.c — Metadata (key 3), versions 0-12.
 *
 * Answered entirely on the connection's shard from its catalog snapshot.
 * Embedded single-node mode: one broker (this one, as advertised), the
 * cluster id, controller = this broker, and per topic its id (v10+) and
 * partitions, each led by this broker at leader epoch 0 with replicas =
 * isr = [this broker]. Cluster mode (snap->cluster): the live brokers and
 * the controller the controller last announced (UpdateMetadata), and per
 * partition its leader, leader epoch, replicas and ISR; replicas that are
 * not live brokers are listed offline (v5+); a partition whose leader is
 * none or not live answers LEADER_NOT_AVAILABLE with leader -1, as Kafka's
 * metadata cache does.
 *
 * Topics asked for by name that do not exist:
 *   - invalid name                         -> INVALID_TOPIC_EXCEPTION
 *   - auto.create.topics.enable, allowed by the request (v4+ field), not a
 *     reserved name -> creation is started on shard 0 and the answer is
 *     LEADER_NOT_AVAILABLE, as Kafka answers for a topic being created; the
 *     client asks again and then sees the topic
 *   - otherwise                            -> UNKNOWN_TOPIC_OR_PARTITION
 * Topics asked for by id (v10+, null name): UNKNOWN_TOPIC_ID when absent.
 * TopicAuthorizedOperations stays -2147483648 unless asked for; then it is
 * every topic operation (there is no authorizer).
 *
 * Runs on: the connection's shard; topic creation goes to shard 0.
 */
#include <limits.h>
#include <string.h>

#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"

/* READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS. */
#define METADATA_TOPIC_OPS_ALL ((1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | \
				(1 << 8) | (1 << 10) | (1 << 11))

struct metadata_ctx {
	struct req *rq;
	const struct MetadataRequest *req;
	struct broker *b;
	const struct catalog_snap *snap;
	int32_t *node_one;      /* [node id]: replicas and isr of every partition */
	bool cluster;           /* cluster mode (even before the first UpdateMetadata) */
};

/* Cluster mode: partition `i` of `t` from its replica state. SL_OK or SL_ENOMEM. */
static enum sl_err metadata_partition_cluster(struct metadata_ctx *mc, const struct catalog_topic *t,
					      int32_t i,
					      struct MetadataResponse_MetadataResponsePartition *p)
{
	const struct catalog_pstate *ps = t->pstates != NULL ? &t->pstates[i] : NULL;
	int32_t *off;
	int32_t noff = 0;

	if (ps == NULL || ps->replica_count == 0) {
		p->ErrorCode = KERR_LEADER_NOT_AVAILABLE;
		p->LeaderId = -1;
		p->LeaderEpoch = -1;
		p->ReplicaNodes.count = 0;
		p->IsrNodes.count = 0;
		p->OfflineReplicas.count = 0;
		return SL_OK;
	}
	off = req_alloc(mc->rq, (size_t)ps->replica_count * sizeof(*off));
	if (off == NULL)
		return SL_ENOMEM;
	for (uint32_t r = 0; r < ps->replica_count; r++)
		if (catalog_snap_broker(mc->snap, ps->replicas[r]) == NULL)
			off[noff++] = ps->replicas[r];
	bool live = ps->leader >= 0 && catalog_snap_broker(mc->snap, ps->leader) != NULL;
	p->ErrorCode = live ? KERR_NONE : KERR_LEADER_NOT_AVAILABLE;
	p->LeaderId = live ? ps->leader : -1;
	p->LeaderEpoch = ps->leader_epoch;
	/* The response is encoded before this snapshot can go away. */
	p->ReplicaNodes.count = ps->replica_count;
	p->ReplicaNodes.items = (int32_t *)ps->replicas;
	p->IsrNodes.count = ps->isr_count;
	p->IsrNodes.items = (int32_t *)ps->isr;
	p->OfflineReplicas.count = noff;
	p->OfflineReplicas.items = off;
	return SL_OK;
}

/* Fills `out` for snapshot topic `t`. SL_OK or SL_ENOMEM. */
static enum sl_err metadata_topic_fill(struct metadata_ctx *mc, const struct catalog_topic *t,
				       struct MetadataResponse_MetadataResponseTopic *out)
{
	kafka_init_metadata_response_metadata_response_topic(out);
	out->ErrorCode = KERR_NONE;
	out->Name.ptr = (const uint8_t *)t->name;
	out->Name.len = (int32_t)t->name_len;
	out->TopicId = t->id;
	out->IsInternal = (t->flags & CATALOG_TOPIC_INTERNAL) != 0;
	if (mc->req->IncludeTopicAuthorizedOperations)
		out->TopicAuthorizedOperations = METADATA_TOPIC_OPS_ALL;
	out->Partitions.count = t->partition_count;
	out->Partitions.items = req_alloc(mc->rq, (size_t)t->partition_count *
						  sizeof(*out->Partitions.items));
	if (out->Partitions.items == NULL)
		return SL_ENOMEM;
	for (int32_t i = 0; i < t->partition_count; i++) {
		struct MetadataResponse_MetadataResponsePartition *p = &out->Partitions.items[i];
		kafka_init_metadata_response_metadata_response_partition(p);
		p->PartitionIndex = i;
		if (mc->cluster) {
			if (metadata_partition_cluster(mc, t, i, p) != SL_OK)
				return SL_ENOMEM;
			continue;
		}
		p->ErrorCode = KERR_NONE;
		p->LeaderId = mc->b->node_id;
		p->LeaderEpoch = 0;
		p->ReplicaNodes.count = 1;
		p->ReplicaNodes.items = mc->node_one;
		p->IsrNodes.count = 1;
		p->IsrNodes.items = mc->node_one;
		p->OfflineReplicas.count = 0;
		p->OfflineReplicas.items = NULL;
	}
	return SL_OK;
}

/* An absent topic asked for by name: error code, maybe auto-creation. */
static void metadata_topic_missing(struct metadata_ctx *mc, struct kslice name,
				   struct MetadataResponse_MetadataResponseTopic *out)
{
	const char *n = (const char *)name.ptr;
	size_t len = name.len > 0 ? (size_t)name.len : 0;
	bool allow = mc->b->config->auto_create_topics_enable &&
		     (mc->rq->api_version < 4 || mc->req->AllowAutoTopicCreation);

	kafka_init_metadata_response_metadata_response_topic(out);
	out->Name = name;
	out->Partitions.count = 0;
	if (!catalog_name_valid(n, len)) {
		out->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
	} else if (allow && !catalog_name_reserved(n, len)) {
		broker_topic_autocreate(mc->rq->bs, n, len);
		out->ErrorCode = KERR_LEADER_NOT_AVAILABLE;
	} else {
		out->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
	}
}

/* The answer, built once every earlier request on the connection is answered. */
static enum sl_err metadata_answer(struct req *rq)
{
	const struct MetadataRequest *req = rq->body;
	const struct catalog_snap *snap = rq->bs->snap;
	struct broker *b = rq->bs->b;
	struct metadata_ctx mc = { .rq = rq, .req = req, .b = b, .snap = snap };
	struct MetadataResponse resp;
	struct MetadataResponse_MetadataResponseBroker *broker;
	bool all = req->Topics.count < 0 || (rq->api_version == 0 && req->Topics.count == 0);
	int32_t n = all ? (int32_t)snap->topic_count : req->Topics.count;

	kafka_init_metadata_response(&resp);
	mc.node_one = req_alloc(rq, sizeof(*mc.node_one));
	broker = req_alloc(rq, sizeof(*broker));
	resp.Topics.items = req_alloc(rq, (size_t)SL_MAX(n, 1) * sizeof(*resp.Topics.items));
	if (mc.node_one == NULL || broker == NULL || resp.Topics.items == NULL)
		return SL_ENOMEM;
	*mc.node_one = b->node_id;
	kafka_init_metadata_response_metadata_response_broker(broker);
	broker->NodeId = b->node_id;
	broker->Host.ptr = (const uint8_t *)b->adv_host;
	broker->Host.len = (int32_t)strlen(b->adv_host);
	broker->Port = b->adv_port;
	broker->Rack = b->rack != NULL ? (struct kslice){ (const uint8_t *)b->rack,
							  (int32_t)strlen(b->rack) } : KSLICE_NULL;
	resp.Brokers.count = 1;
	resp.Brokers.items = broker;
	resp.ClusterId.ptr = (const uint8_t *)snap->cluster_id;
	resp.ClusterId.len = (int32_t)strlen(snap->cluster_id);
	resp.ControllerId = b->node_id;
	/* Cluster mode before the first UpdateMetadata: no brokers, no
	 * controller, partitions LEADER_NOT_AVAILABLE (clients retry). */
	mc.cluster = snap->cluster || b->config->zookeeper_connect[0] != '\0';
	if (mc.cluster) {
		resp.ControllerId = snap->cluster ? snap->controller_id : -1;
		resp.Brokers.count = (int32_t)snap->broker_count;
		resp.Brokers.items = req_alloc(rq, (size_t)SL_MAX(snap->broker_count, 1u) *
						   sizeof(*resp.Brokers.items));
		if (resp.Brokers.items == NULL)
			return SL_ENOMEM;
		for (uint32_t i = 0; i < snap->broker_count; i++) {
			const struct catalog_broker *cb = &snap->brokers[i];
			struct MetadataResponse_MetadataResponseBroker *o = &resp.Brokers.items[i];
			kafka_init_metadata_response_metadata_response_broker(o);
			o->NodeId = cb->id;
			o->Host = (struct kslice){ (const uint8_t *)cb->host, (int32_t)strlen(cb->host) };
			o->Port = cb->port;
			o->Rack = cb->rack[0] != '\0' ?
				  (struct kslice){ (const uint8_t *)cb->rack, (int32_t)strlen(cb->rack) } :
				  KSLICE_NULL;
		}
	}
	resp.Topics.count = n;
	for (int32_t i = 0; i < n; i++) {
		struct MetadataResponse_MetadataResponseTopic *out = &resp.Topics.items[i];
		const struct catalog_topic *t;
		if (all) {
			if (metadata_topic_fill(&mc, &snap->topics[i], out) != SL_OK)
				return SL_ENOMEM;
			continue;
		}
		const struct MetadataRequest_MetadataRequestTopic *want = &req->Topics.items[i];
		if (want->Name.len < 0) {
			t = catalog_snap_find_id(snap, &want->TopicId);
			if (t == NULL) {
				kafka_init_metadata_response_metadata_response_topic(out);
				out->ErrorCode = KERR_UNKNOWN_TOPIC_ID;
				/* Name is nullable from v12; before, "" */
				out->Name = rq->api_version >= 12 ? KSLICE_NULL : KSLICE_EMPTY;
				out->TopicId = want->TopicId;
				out->Partitions.count = 0;
				continue;
			}
		} else {
			t = catalog_snap_find(snap, (const char *)want->Name.ptr, (size_t)want->Name.len);
			if (t == NULL) {
				metadata_topic_missing(&mc, want->Name, out);
				continue;
			}
		}
		if (metadata_topic_fill(&mc, t, out) != SL_OK)
			return SL_ENOMEM;
	}
	/* Encoded now: the slices into the snapshot are not kept past this call. */
	req_respond(rq, &resp);
	return SL_OK;
}

enum sl_err api_metadata_handle(struct req *rq)
{
	/* A client pipelining Produce and Metadata on one connection must not
	 * get leaders from before the effects of its earlier requests (a
	 * stale leader after a failover sends librdkafka back to a dead
	 * broker): answer in order, as Kafka does. */
	return req_in_order(rq, metadata_answer);
}
