/*
 * api_update_metadata.c — UpdateMetadata (key 6), versions 0-8: the
 * controller tells every broker the live brokers and partition states.
 *
 *   api_update_metadata_handle (connection's shard) asks shard 0 to run
 *       um_mutate (broker_topics_create with a mutate function).
 *   um_mutate (shard 0): a stale broker epoch (ctrl_broker_epoch_stale:
 *       older than this process's registration, or any before it
 *       registered) answers STALE_BROKER_EPOCH; a controller epoch older
 *       than the newest seen
 *       (repl_controller_epoch, shared with LeaderAndIsr) answers
 *       STALE_CONTROLLER_EPOCH and changes nothing. Else: the live brokers
 *       and controller (catalog_cluster_brokers_set; the PLAINTEXT
 *       endpoint, else the first), each topic (created with the
 *       controller's id, grown to the partitions named; a name held by
 *       another id is replaced; a partition with leader -2 = deleted
 *       removes the topic), each partition state unless the catalog
 *       already has a newer one (leader epoch, then partition epoch:
 *       never backwards, as LeaderAndIsr applies them too). The catalog
 *       is published.
 *   um_done (connection's shard, once every shard adopted the snapshot)
 *       answers.
 * The first UpdateMetadata applied makes the broker ready (cluster.h).
 */
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "catalog.h"
#include "cluster.h"
#include "ctrl_rules.h"
#include "kerr.h"
#include "log.h"
#include "repl.h"
#include "req.h"

#define UM_LEADER_DELETED (-2)

struct um_op {
	struct broker_create bc;
	struct req *rq;
	int16_t error_code;
};

/* True when the catalog already holds something newer than st for (t, p). */
static bool um_catalog_newer(const struct broker_shard *bs0, const char *name, size_t len,
			     int32_t p, const struct catalog_pstate *st)
{
	const struct catalog_topic *t = catalog_snap_find(bs0->snap, name, len);

	if (t == NULL || t->pstates == NULL || p >= t->partition_count)
		return false;
	const struct catalog_pstate *cur = &t->pstates[p];
	if (cur->replica_count == 0)
		return false;
	if (cur->leader_epoch != st->leader_epoch)
		return cur->leader_epoch > st->leader_epoch;
	return cur->partition_epoch > st->partition_epoch;
}

/* Makes topic `name` exist with id `id` (zero: any) and >= `parts` partitions;
 * its configs come from ZooKeeper once per process (cluster_topic_config_load). */
static uint32_t um_topic_ensure(struct broker_shard *bs0, const char *name, size_t len,
				int32_t parts, const struct kuuid *id)
{
	struct catalog *cat = bs0->b->catalog;
	uint32_t flags = catalog_name_internal(name, len) ? CATALOG_TOPIC_INTERNAL : 0;
	uint32_t changes = 0;
	enum sl_err err;

	if (catalog_uuid_is_zero(id)) {
		err = catalog_topic_create(cat, name, len, parts, flags, NULL);
	} else {
		err = catalog_topic_create_id(cat, name, len, parts, flags, id);
		if (err == SL_EINVAL && catalog_topic_delete(cat, name, len) == SL_OK) {
			changes++;
			err = catalog_topic_create_id(cat, name, len, parts, flags, id);
		}
	}
	if (!catalog_uuid_is_zero(id) && (err == SL_OK || err == SL_EEXIST))
		cluster_topic_config_load(bs0->b->cluster, name, len, id->b);
	if (err == SL_OK)
		return changes + 1;
	if (err == SL_EEXIST && catalog_topic_partitions_set(cat, name, len, parts) == SL_OK)
		changes++;
	return changes;
}

/* One partition state into the catalog. */
static uint32_t um_pstate(struct broker_shard *bs0, const char *name, size_t len,
			  const struct UpdateMetadataRequest_UpdateMetadataPartitionState *in)
{
	struct catalog_pstate ps;

	memset(&ps, 0, sizeof(ps));
	ps.leader = in->Leader;
	ps.leader_epoch = in->LeaderEpoch;
	ps.partition_epoch = in->ZkVersion;
	ps.replica_count = (uint8_t)SL_MIN(SL_MAX(in->Replicas.count, 0), CATALOG_REPLICAS_MAX);
	ps.isr_count = (uint8_t)SL_MIN(SL_MAX(in->Isr.count, 0), CATALOG_REPLICAS_MAX);
	if (ps.replica_count > 0)
		memcpy(ps.replicas, in->Replicas.items, ps.replica_count * sizeof(int32_t));
	if (ps.isr_count > 0)
		memcpy(ps.isr, in->Isr.items, ps.isr_count * sizeof(int32_t));
	if (um_catalog_newer(bs0, name, len, in->PartitionIndex, &ps))
		return 0;
	return catalog_pstate_set(bs0->b->catalog, name, len, in->PartitionIndex, &ps) == SL_OK;
}

/* One topic's partition states (v5+ grouping, or one ungrouped state). */
static uint32_t um_topic(struct broker_shard *bs0, struct kslice name, const struct kuuid *id,
			 const struct UpdateMetadataRequest_UpdateMetadataPartitionState *st,
			 int32_t count)
{
	struct catalog *cat = bs0->b->catalog;
	const char *n = (const char *)name.ptr;
	size_t len = (size_t)SL_MAX(name.len, 0);
	int32_t parts = 0;
	uint32_t changes = 0;

	if (!catalog_name_valid(n, len))
		return 0;
	for (int32_t i = 0; i < count; i++) {
		if (st[i].Leader == UM_LEADER_DELETED) {
			if (catalog_topic_delete(cat, n, len) == SL_OK) {
				LOG_I(0, "update-metadata: topic %.*s deleted", (int)len, n);
				return 1;
			}
			return 0;
		}
		if (st[i].PartitionIndex >= 0 && st[i].PartitionIndex < CATALOG_PARTITIONS_MAX)
			parts = SL_MAX(parts, st[i].PartitionIndex + 1);
	}
	if (parts == 0)
		return 0;
	changes += um_topic_ensure(bs0, n, len, parts, id);
	for (int32_t i = 0; i < count; i++)
		if (st[i].PartitionIndex >= 0 && st[i].PartitionIndex < parts)
			changes += um_pstate(bs0, n, len, &st[i]);
	return changes;
}

/* Runs on: shard 0. */
static uint32_t um_mutate(struct broker_shard *bs0, struct broker_create *bc)
{
	struct um_op *op = (struct um_op *)(void *)bc;
	const struct UpdateMetadataRequest *in = op->rq->body;
	int16_t v = op->rq->api_version;
	struct cluster *cl = bs0->b->cluster;
	uint32_t changes = 0;

	SL_ASSERT(bs0->sh->id == 0);
	if (cl != NULL && ctrl_broker_epoch_stale(in->BrokerEpoch, cl->broker_epoch)) {
		LOG_W(0, "UpdateMetadata: stale broker epoch %lld (this registration: %lld)",
		      (long long)in->BrokerEpoch, (long long)cl->broker_epoch);
		op->error_code = KERR_STALE_BROKER_EPOCH;
		return 0;
	}
	if (in->ControllerEpoch < repl_controller_epoch(bs0)) {
		op->error_code = KERR_STALE_CONTROLLER_EPOCH;
		return 0;
	}
	repl_controller_epoch_set(bs0, in->ControllerEpoch);
	uint32_t nb = (uint32_t)SL_MAX(in->LiveBrokers.count, 0);
	struct catalog_broker *brokers = calloc(nb + 1, sizeof(*brokers));
	if (brokers == NULL) {
		op->error_code = KERR_UNKNOWN_SERVER_ERROR;
		return 0;
	}
	for (uint32_t i = 0; i < nb; i++) {
		const struct UpdateMetadataRequest_UpdateMetadataBroker *lb = &in->LiveBrokers.items[i];
		struct kslice host = lb->V0Host;
		int32_t port = lb->V0Port;
		if (v >= 1 && lb->Endpoints.count > 0) {
			const struct UpdateMetadataRequest_UpdateMetadataEndpoint *e =
				&lb->Endpoints.items[0];
			for (int32_t k = 0; k < lb->Endpoints.count; k++) {
				const struct UpdateMetadataRequest_UpdateMetadataEndpoint *x =
					&lb->Endpoints.items[k];
				if (x->Listener.len == 9 && memcmp(x->Listener.ptr, "PLAINTEXT", 9) == 0)
					e = x;
			}
			host = e->Host;
			port = e->Port;
		}
		brokers[i].id = lb->Id;
		brokers[i].port = port;
		if (host.len > 0)
			memcpy(brokers[i].host, host.ptr,
			       SL_MIN((size_t)host.len, sizeof(brokers[i].host) - 1));
		if (lb->Rack.len > 0)
			memcpy(brokers[i].rack, lb->Rack.ptr,
			       SL_MIN((size_t)lb->Rack.len, sizeof(brokers[i].rack) - 1));
	}
	if (catalog_cluster_brokers_set(bs0->b->catalog, brokers, nb, in->ControllerId) == SL_OK)
		changes++;
	else
		op->error_code = KERR_INVALID_REQUEST;
	free(brokers);
	if (v >= 5) {
		for (int32_t i = 0; i < in->TopicStates.count; i++) {
			const struct UpdateMetadataRequest_UpdateMetadataTopicState *ts =
				&in->TopicStates.items[i];
			struct kuuid zero;
			memset(&zero, 0, sizeof(zero));
			changes += um_topic(bs0, ts->TopicName, v >= 7 ? &ts->TopicId : &zero,
					    ts->PartitionStates.items, ts->PartitionStates.count);
		}
	} else {
		struct kuuid zero;
		memset(&zero, 0, sizeof(zero));
		for (int32_t i = 0; i < in->UngroupedPartitionStates.count; i++) {
			const struct UpdateMetadataRequest_UpdateMetadataPartitionState *st =
				&in->UngroupedPartitionStates.items[i];
			changes += um_topic(bs0, st->TopicName, &zero, st, 1);
		}
	}
	if (cl != NULL && !atomic_exchange(&cl->ready, true))
		LOG_I(0, "cluster: first UpdateMetadata applied (controller %d, epoch %d, %u "
			 "broker(s)): serving as a cluster member", in->ControllerId,
		      in->ControllerEpoch, nb);
	return changes;
}

static void um_done(struct broker_shard *bs, struct broker_create *bc)
{
	struct um_op *op = (struct um_op *)(void *)bc;
	struct UpdateMetadataResponse resp;

	(void)bs;
	kafka_init_update_metadata_response(&resp);
	resp.ErrorCode = op->error_code;
	req_respond(op->rq, &resp);
}

enum sl_err api_update_metadata_handle(struct req *rq)
{
	struct um_op *op = req_alloc(rq, sizeof(*op));
	struct UpdateMetadataResponse resp;

	if (op == NULL)
		return SL_ENOMEM;
	op->rq = rq;
	rq->api = op;
	op->bc.mutate = um_mutate;
	op->bc.done = um_done;
	op->bc.arg = op;
	if (broker_topics_create(rq->bs, &op->bc) != SL_OK) {
		kafka_init_update_metadata_response(&resp);
		resp.ErrorCode = KERR_REQUEST_TIMED_OUT;
		req_respond(rq, &resp);
	}
	return SL_OK;
}
