/*
 * api_stop_replica.c — StopReplica (key 5), versions 0-4: the controller
 * tells this broker to stop leading/following partitions and, with
 * DeletePartition(s), to delete them (Kafka's ReplicaManager.stopReplicas).
 *
 * Steps:
 *   1. shard 0 (sr_check, a catalog `mutate` that changes nothing): a
 *      stale broker epoch (ctrl_broker_epoch_stale) -> STALE_BROKER_EPOCH; a
 *      controller epoch older than the newest seen -> STALE_CONTROLLER_EPOCH
 *      for the whole request.
 *   2. owner shards (sr_on_owner): per partition, a LeaderEpoch (v3+) older
 *      than ours -> FENCED_LEADER_EPOCH (nothing stops); else repl_stop
 *      (waiters fail NOT_LEADER_OR_FOLLOWER, following stops).
 *   3. shard 0 (sr_delete), only if some partition is to be deleted: its
 *      catalog replica state loses this broker, so every shard's
 *      partition_set_sync closes it and removes its directory (the broker
 *      sets delete_gone). A state left without replicas keeps the
 *      placeholder replica -1, since "no replicas" means "not known yet"
 *      to partition_set_sync.
 *   4. the answer, one error per partition; first, for every partition to
 *      delete that this broker no longer replicates or whose topic it does
 *      not know, a leftover `<topic>-<index>` directory is removed (a
 *      broker back after its topic's deletion began never opened it).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

struct sr_op;

struct sr_entry {
	struct kslice topic;
	int32_t index;
	int32_t leader_epoch;              /* -1 / -2: no check */
	bool del;
	bool del_disk;                     /* unknown topic: remove a leftover directory */
	struct kuuid topic_id;
	int16_t error_code;
	struct StopReplicaResponse_StopReplicaPartitionError *slot;
	struct sr_entry *next;             /* in its part */
};

struct sr_part {
	struct sr_op *op;
	struct sr_entry *head, *tail;
};

struct sr_op {
	struct broker_create bc;           /* first: the mutate functions get it */
	struct req *rq;
	const struct StopReplicaRequest *req;
	struct StopReplicaResponse resp;
	struct sr_entry *entries;
	uint32_t count;
	struct sr_part **parts;
	uint32_t outstanding;
	int16_t top_error;
	bool deleting;
};

static void sr_respond(struct sr_op *op)
{
	for (uint32_t i = 0; i < op->count; i++)
		op->entries[i].slot->ErrorCode = op->top_error != KERR_NONE ? op->top_error
									    : op->entries[i].error_code;
	op->resp.ErrorCode = op->top_error;
	req_respond(op->rq, &op->resp);
}

/* ---- step 3 ---- */

static uint32_t sr_delete(struct broker_shard *bs0, struct broker_create *bc)
{
	struct sr_op *op = (struct sr_op *)bc;
	int32_t me = bs0->b->node_id;
	uint32_t changes = 0;

	for (uint32_t i = 0; i < op->count; i++) {
		struct sr_entry *e = &op->entries[i];
		if (!e->del || e->error_code != KERR_NONE)
			continue;
		const struct catalog_topic *t =
			catalog_snap_find(bs0->snap, (const char *)e->topic.ptr, (size_t)e->topic.len);
		if (t == NULL || t->pstates == NULL || e->index >= t->partition_count)
			continue;
		struct catalog_pstate ps = t->pstates[e->index];
		uint8_t n = 0, m = 0;
		for (uint8_t r = 0; r < ps.replica_count; r++)
			if (ps.replicas[r] != me)
				ps.replicas[n++] = ps.replicas[r];
		for (uint8_t r = 0; r < ps.isr_count; r++)
			if (ps.isr[r] != me)
				ps.isr[m++] = ps.isr[r];
		if (n == ps.replica_count && ps.replica_count > 0)
			continue;   /* already without this broker */
		if (n == 0)
			ps.replicas[n++] = -1;   /* placeholder: file comment */
		ps.replica_count = n;
		ps.isr_count = m;
		if (catalog_pstate_set(bs0->b->catalog, t->name, t->name_len, e->index, &ps) == SL_OK)
			changes++;
	}
	return changes;
}

/*
 * Removes `<log dir>/<topic>-<index>` from every log dir: the partition is
 * not this broker's any more (sr_delete) or its topic is unknown here, so
 * no open partition uses it — it was never opened (a broker back after the
 * deletion began) or partition_set_sync already removed it.
 */
static void sr_dir_remove(struct broker_shard *bs, struct kslice topic, int32_t index)
{
	const char *dirs = bs->b->config->log_dirs;
	int n = config_list_count(dirs);
	char base[PATH_MAX], path[PATH_MAX];

	if (index < 0 || topic.len <= 0 ||
	    !catalog_name_valid((const char *)topic.ptr, (size_t)topic.len))
		return;
	for (int i = 0; i < n; i++) {
		if (config_list_get(dirs, i, base, sizeof(base)) != SL_OK ||
		    snprintf(path, sizeof(path), "%s/%.*s-%d", base, (int)topic.len,
			     (const char *)topic.ptr, index) >= (int)sizeof(path))
			continue;
		DIR *d = opendir(path);
		if (d == NULL)
			continue;
		int dfd = dirfd(d);
		struct dirent *de;
		for (uint32_t k = 0; k < 1000000u && (de = readdir(d)) != NULL; k++) {
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
			    unlinkat(dfd, de->d_name, 0) != 0)
				LOG_W(bs->sh->id, "StopReplica: cannot remove %s/%s: %s", path,
				      de->d_name, strerror(errno));
		}
		closedir(d);
		if (rmdir(path) == 0)
			LOG_I(bs->sh->id, "StopReplica: removed %s", path);
		else
			LOG_W(bs->sh->id, "StopReplica: cannot remove %s: %s", path, strerror(errno));
	}
}

static void sr_deleted(struct broker_shard *bs, struct broker_create *bc)
{
	struct sr_op *op = (struct sr_op *)bc;

	for (uint32_t i = 0; i < op->count; i++) {
		struct sr_entry *e = &op->entries[i];
		if (e->del_disk || (e->del && e->error_code == KERR_NONE))
			sr_dir_remove(bs, e->topic, e->index);
	}
	sr_respond(op);
}

/* ---- step 2 ---- */

static enum xmsg_fn_result sr_on_owner(struct shard *sh, struct xmsg *m)
{
	struct sr_part *part = m->pl.ptr[0];
	struct broker_shard *bs = broker_shard_of(sh);

	for (struct sr_entry *e = part->head; e != NULL; e = e->next) {
		struct partition *p = partition_set_find(&bs->parts, &e->topic_id, e->index);
		struct repl_partition *rp = p != NULL ? repl_of(p) : NULL;
		if (rp != NULL && e->leader_epoch >= 0 && e->leader_epoch < rp->leader_epoch) {
			e->error_code = KERR_FENCED_LEADER_EPOCH;
			continue;
		}
		if (p != NULL)
			repl_stop(p);
		e->error_code = KERR_NONE;
	}
	return XMSG_REPLY;
}

static void sr_part_done(struct shard *sh, struct xmsg *m)
{
	struct sr_op *op = m->ctx;

	(void)sh;
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding > 0)
		return;
	bool del = false;
	for (uint32_t i = 0; i < op->count; i++)
		del = del || (op->entries[i].del && op->entries[i].error_code == KERR_NONE) ||
		      op->entries[i].del_disk;
	if (del) {
		op->bc.mutate = sr_delete;
		op->bc.done = sr_deleted;
		if (broker_topics_create(op->rq->bs, &op->bc) == SL_OK)
			return;
		LOG_W(op->rq->sh->id, "StopReplica: cannot reach shard 0; partitions not deleted");
	}
	sr_respond(op);
}

/* ---- step 1 ---- */

static uint32_t sr_check(struct broker_shard *bs0, struct broker_create *bc)
{
	struct sr_op *op = (struct sr_op *)bc;
	const struct cluster *cl = bs0->b->cluster;

	if (cl != NULL && ctrl_broker_epoch_stale(op->req->BrokerEpoch, cl->broker_epoch))
		op->top_error = KERR_STALE_BROKER_EPOCH;
	else if (op->req->ControllerEpoch < repl_controller_epoch(bs0))
		op->top_error = KERR_STALE_CONTROLLER_EPOCH;
	else
		repl_controller_epoch_set(bs0, op->req->ControllerEpoch);
	return 0;
}

static void sr_checked(struct broker_shard *bs, struct broker_create *bc)
{
	struct sr_op *op = (struct sr_op *)bc;
	struct req *rq = op->rq;
	uint32_t shards = bs->b->shard_count;

	if (op->top_error != KERR_NONE) {
		sr_respond(op);
		return;
	}
	for (uint32_t i = 0; i < op->count; i++) {
		struct sr_entry *e = &op->entries[i];
		const struct catalog_topic *t =
			catalog_snap_find(bs->snap, (const char *)e->topic.ptr,
					  (size_t)SL_MAX(e->topic.len, 0));
		if (t == NULL || e->index < 0 || e->index >= t->partition_count) {
			e->error_code = KERR_NONE;   /* nothing here to stop */
			e->del_disk = e->del && t == NULL;   /* maybe a leftover directory */
			e->del = false;
			continue;
		}
		e->topic_id = t->id;
		uint32_t owner = partition_owner(&t->id, e->index, shards);
		struct sr_part *part = op->parts[owner];
		if (part == NULL) {
			part = req_alloc(rq, sizeof(*part));
			if (part == NULL) {
				e->error_code = KERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			part->op = op;
			op->parts[owner] = part;
		}
		e->next = NULL;
		if (part->tail != NULL)
			part->tail->next = e;
		else
			part->head = e;
		part->tail = e;
	}
	op->outstanding = 1;   /* held while sending */
	for (uint32_t s = 0; s < shards; s++) {
		struct sr_part *part = op->parts[s];
		if (part == NULL)
			continue;
		struct xmsg m = { .type = KAFKA_API_STOP_REPLICA, .fn = sr_on_owner,
				  .done = sr_part_done, .ctx = op };
		m.pl.ptr[0] = part;
		if (broker_send(bs, s, &m) == SL_OK) {
			op->outstanding++;
			continue;
		}
		for (struct sr_entry *e = part->head; e != NULL; e = e->next) {
			e->error_code = KERR_REQUEST_TIMED_OUT;
			e->del = false;
		}
	}
	struct xmsg self = { .ctx = op };
	sr_part_done(bs->sh, &self);
}

/* Adds one partition to the entries and the flat response. */
static void sr_add(struct sr_op *op, uint32_t *k, struct kslice topic, int32_t index,
		   int32_t leader_epoch, bool del)
{
	struct sr_entry *e = &op->entries[*k];
	struct StopReplicaResponse_StopReplicaPartitionError *slot =
		&op->resp.PartitionErrors.items[*k];

	kafka_init_stop_replica_response_stop_replica_partition_error(slot);
	slot->TopicName = topic;
	slot->PartitionIndex = index;
	e->slot = slot;
	e->topic = topic;
	e->index = index;
	e->leader_epoch = leader_epoch;
	e->del = del;
	e->del_disk = false;
	(*k)++;
}

static enum sl_err sr_prepare(struct sr_op *op)
{
	struct req *rq = op->rq;
	const struct StopReplicaRequest *req = op->req;
	uint32_t k = 0;

	kafka_init_stop_replica_response(&op->resp);
	if (rq->api_version == 0) {
		op->count = (uint32_t)SL_MAX(req->UngroupedPartitions.count, 0);
	} else if (rq->api_version <= 2) {
		for (int32_t t = 0; t < req->Topics.count; t++)
			op->count += (uint32_t)SL_MAX(req->Topics.items[t].PartitionIndexes.count, 0);
	} else {
		for (int32_t t = 0; t < req->TopicStates.count; t++)
			op->count += (uint32_t)SL_MAX(req->TopicStates.items[t].PartitionStates.count, 0);
	}
	op->entries = req_alloc(rq, (op->count + 1) * sizeof(*op->entries));
	op->parts = req_alloc(rq, rq->bs->b->shard_count * sizeof(*op->parts));
	op->resp.PartitionErrors.items =
		req_alloc(rq, (op->count + 1) * sizeof(*op->resp.PartitionErrors.items));
	if (op->entries == NULL || op->parts == NULL || op->resp.PartitionErrors.items == NULL)
		return SL_ENOMEM;
	op->resp.PartitionErrors.count = (int32_t)op->count;
	if (rq->api_version == 0) {
		for (int32_t i = 0; i < req->UngroupedPartitions.count; i++)
			sr_add(op, &k, req->UngroupedPartitions.items[i].TopicName,
			       req->UngroupedPartitions.items[i].PartitionIndex, -1,
			       req->DeletePartitions);
	} else if (rq->api_version <= 2) {
		for (int32_t t = 0; t < req->Topics.count; t++) {
			const struct StopReplicaRequest_StopReplicaTopicV1 *tv = &req->Topics.items[t];
			for (int32_t i = 0; i < tv->PartitionIndexes.count; i++)
				sr_add(op, &k, tv->Name, tv->PartitionIndexes.items[i], -1,
				       req->DeletePartitions);
		}
	} else {
		for (int32_t t = 0; t < req->TopicStates.count; t++) {
			const struct StopReplicaRequest_StopReplicaTopicState *ts =
				&req->TopicStates.items[t];
			for (int32_t i = 0; i < ts->PartitionStates.count; i++) {
				const struct StopReplicaRequest_StopReplicaPartitionState *ps =
					&ts->PartitionStates.items[i];
				sr_add(op, &k, ts->TopicName, ps->PartitionIndex, ps->LeaderEpoch,
				       ps->DeletePartition);
			}
		}
	}
	SL_ASSERT(k == op->count);
	return SL_OK;
}

enum sl_err api_stop_replica_handle(struct req *rq)
{
	struct sr_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	rq->api = op;
	op->rq = rq;
	op->req = rq->body;
	if (sr_prepare(op) != SL_OK)
		return SL_ENOMEM;
	op->bc.count = 0;
	op->bc.mutate = sr_check;
	op->bc.done = sr_checked;
	op->bc.arg = op;
	if (broker_topics_create(rq->bs, &op->bc) != SL_OK) {
		op->top_error = KERR_REQUEST_TIMED_OUT;
		sr_respond(op);
	}
	return SL_OK;
}
