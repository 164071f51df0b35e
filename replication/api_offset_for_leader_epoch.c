/*
 * api_offset_for_leader_epoch.c — OffsetForLeaderEpoch (key 23), versions
 * 0-4: "where does leader epoch E end in your log?" Asked by followers
 * before they fetch (truncation, KIP-101/279) and by consumers after a
 * leader change (KIP-320 log-truncation detection; librdkafka and the
 * Java client send it).
 *
 *   api_offset_for_leader_epoch_handle  (connection's shard) resolves
 *       topics (unknown -> UNKNOWN_TOPIC_OR_PARTITION), groups partitions
 *       by owner shard, one message per owner.
 *   ofle_on_owner  (owner) answers each partition, Kafka's
 *       Partition.lastOffsetForLeaderEpoch with fetchOnlyFromLeader (every
 *       request, whatever its ReplicaId, is answered by the leader only):
 *         not hosted here                   NOT_LEADER_OR_FOLLOWER
 *         log offline                       KAFKA_STORAGE_ERROR
 *         cluster mode: CurrentLeaderEpoch older / newer than ours
 *                                           FENCED_LEADER_EPOCH /
 *                                           UNKNOWN_LEADER_EPOCH, then
 *                                           not the leader: NOT_LEADER_OR_FOLLOWER
 *         otherwise lepoch_end_offset_for(LeaderEpoch, log end offset),
 *         (-1, -1) when the epoch is unknown.
 *       Single-node mode (no repl state): this broker leads every
 *       partition in epoch 0 since the log start (the Produce handler
 *       stamps partitionLeaderEpoch 0), as Metadata and ListOffsets say:
 *       CurrentLeaderEpoch > 0 -> UNKNOWN_LEADER_EPOCH; epoch 0 -> (0, log
 *       end); a newer epoch -> (-1, -1). A partition whose repl state is
 *       not there yet in cluster mode -> NOT_LEADER_OR_FOLLOWER.
 *   ofle_part_done  (connection's shard) gathers and answers.
 */
#include <string.h>

#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "follower.h"
#include "kerr.h"
#include "lepoch.h"
#include "partition.h"
#include "repl.h"

struct ofle_op;
struct ofle_part;

struct ofle_entry {
	struct OffsetForLeaderEpochResponse_EpochEndOffset *slot;
	struct ofle_entry *next;           /* in its part, request order */
	struct kuuid topic_id;
	int32_t index;
	int32_t current_leader_epoch;      /* asked: CurrentLeaderEpoch */
	int32_t leader_epoch;              /* asked: LeaderEpoch */
	/* written by the owner */
	int16_t error_code;
	int32_t out_epoch;
	int64_t out_end_offset;
};

struct ofle_part {
	struct ofle_entry *entries, *tail;
};

struct ofle_op {
	struct req *rq;
	struct OffsetForLeaderEpochResponse resp;
	struct ofle_entry *entries;
	uint32_t entry_count;
	struct ofle_part **parts;          /* [shard count] */
	uint32_t outstanding;
};

/*
 * The single-node answer (file comment): a cache holding epoch 0 from the
 * log start. Pure.
 */
void ofle_single_node(int32_t current_leader_epoch, int32_t requested, int64_t log_start,
		      int64_t log_end, int16_t *error_code, int32_t *epoch, int64_t *end_offset)
{
	struct lepoch one;

	SL_ASSERT(log_start >= 0 && log_start <= log_end);
	*epoch = LEPOCH_UNDEFINED_EPOCH;
	*end_offset = LEPOCH_UNDEFINED_OFFSET;
	if (current_leader_epoch > 0) {
		*error_code = KERR_UNKNOWN_LEADER_EPOCH;
		return;
	}
	*error_code = KERR_NONE;
	lepoch_init(&one, -1);
	(void)lepoch_assign(&one, 0, log_start);
	lepoch_end_offset_for(&one, requested, log_end, epoch, end_offset);
	SL_ASSERT(*end_offset <= log_end);
}

/* One partition's answer. Runs on: the owner. */
static void ofle_one(struct partition_set *ps, struct ofle_entry *e)
{
	struct partition *p = partition_set_find(ps, &e->topic_id, e->index);

	e->out_epoch = LEPOCH_UNDEFINED_EPOCH;
	e->out_end_offset = LEPOCH_UNDEFINED_OFFSET;
	if (p == NULL) {
		e->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
		return;
	}
	struct plog *log = partition_log(p);
	if (log == NULL) {
		e->error_code = KERR_KAFKA_STORAGE_ERROR;
		return;
	}
	struct repl_partition *rp = repl_of(p);
	if (rp == NULL) {
		if (ps->cluster)
			e->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
		else
			ofle_single_node(e->current_leader_epoch, e->leader_epoch,
					 plog_start_offset(log), plog_end_offset(log),
					 &e->error_code, &e->out_epoch, &e->out_end_offset);
		return;
	}
	e->error_code = repl_epoch_check(rp, e->current_leader_epoch);
	if (e->error_code != KERR_NONE)
		return;
	lepoch_end_offset_for(&rp->epochs, e->leader_epoch, plog_end_offset(log), &e->out_epoch,
			      &e->out_end_offset);
}

/* Runs on: the owner. */
static enum xmsg_fn_result ofle_on_owner(struct shard *sh, struct xmsg *m)
{
	struct ofle_part *part = m->pl.ptr[0];
	struct broker_shard *bs = broker_shard_of(sh);

	for (struct ofle_entry *e = part->entries; e != NULL; e = e->next)
		ofle_one(&bs->parts, e);
	return XMSG_REPLY;
}

static void ofle_finish(struct ofle_op *op)
{
	for (uint32_t i = 0; i < op->entry_count; i++) {
		struct ofle_entry *e = &op->entries[i];
		e->slot->ErrorCode = e->error_code;
		if (e->error_code == KERR_NONE) {
			e->slot->LeaderEpoch = e->out_epoch;
			e->slot->EndOffset = e->out_end_offset;
		}
	}
	req_respond(op->rq, &op->resp);
}

static void ofle_part_done(struct shard *sh, struct xmsg *m)
{
	struct ofle_op *op = m->ctx;

	(void)sh;
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding == 0)
		ofle_finish(op);
}

/* Adds entry e (a known partition) to its owner's part. SL_OK or SL_ENOMEM. */
static enum sl_err ofle_route(struct ofle_op *op, struct ofle_entry *e)
{
	uint32_t owner = partition_owner(&e->topic_id, e->index, op->rq->bs->b->shard_count);
	struct ofle_part *part = op->parts[owner];

	if (part == NULL) {
		part = req_alloc(op->rq, sizeof(*part));
		if (part == NULL)
			return SL_ENOMEM;
		op->parts[owner] = part;
	}
	if (part->tail != NULL)
		part->tail->next = e;
	else
		part->entries = e;
	part->tail = e;
	return SL_OK;
}

/* Skeleton, entries and parts in request order. SL_OK or SL_ENOMEM. */
static enum sl_err ofle_prepare(struct ofle_op *op, const struct OffsetForLeaderEpochRequest *req)
{
	struct req *rq = op->rq;
	const struct catalog_snap *snap = rq->bs->snap;
	uint32_t k = 0;

	kafka_init_offset_for_leader_epoch_response(&op->resp);
	for (int32_t t = 0; t < req->Topics.count; t++)
		op->entry_count += (uint32_t)SL_MAX(req->Topics.items[t].Partitions.count, 0);
	op->resp.Topics.count = SL_MAX(req->Topics.count, 0);
	op->resp.Topics.items = req_alloc(rq, (size_t)(op->resp.Topics.count + 1) *
					      sizeof(*op->resp.Topics.items));
	op->entries = req_alloc(rq, (size_t)(op->entry_count + 1) * sizeof(*op->entries));
	op->parts = req_alloc(rq, rq->bs->b->shard_count * sizeof(*op->parts));
	if (op->resp.Topics.items == NULL || op->entries == NULL || op->parts == NULL)
		return SL_ENOMEM;
	for (int32_t t = 0; t < req->Topics.count; t++) {
		const struct OffsetForLeaderEpochRequest_OffsetForLeaderTopic *rt = &req->Topics.items[t];
		struct OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *tr =
			&op->resp.Topics.items[t];
		int32_t n = SL_MAX(rt->Partitions.count, 0);
		const struct catalog_topic *topic = catalog_snap_find(
			snap, (const char *)rt->Topic.ptr, (size_t)SL_MAX(rt->Topic.len, 0));
		kafka_init_offset_for_leader_epoch_response_offset_for_leader_topic_result(tr);
		tr->Topic = rt->Topic;
		tr->Partitions.count = n;
		tr->Partitions.items = req_alloc(rq, (size_t)(n + 1) * sizeof(*tr->Partitions.items));
		if (tr->Partitions.items == NULL)
			return SL_ENOMEM;
		for (int32_t i = 0; i < n; i++, k++) {
			const struct OffsetForLeaderEpochRequest_OffsetForLeaderPartition *rp =
				&rt->Partitions.items[i];
			struct OffsetForLeaderEpochResponse_EpochEndOffset *slot = &tr->Partitions.items[i];
			struct ofle_entry *e = &op->entries[k];
			kafka_init_offset_for_leader_epoch_response_epoch_end_offset(slot);
			slot->Partition = rp->Partition;
			e->slot = slot;
			if (topic == NULL || rp->Partition < 0 || rp->Partition >= topic->partition_count) {
				e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			e->topic_id = topic->id;
			e->index = rp->Partition;
			e->current_leader_epoch = rp->CurrentLeaderEpoch;
			e->leader_epoch = rp->LeaderEpoch;
			if (ofle_route(op, e) != SL_OK)
				return SL_ENOMEM;
		}
	}
	SL_ASSERT(k == op->entry_count);
	return SL_OK;
}

/* Runs on: the connection's shard. */
static enum sl_err api_offset_for_leader_epoch_handle(struct req *rq)
{
	struct ofle_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	rq->api = op;
	op->rq = rq;
	if (ofle_prepare(op, rq->body) != SL_OK)
		return SL_ENOMEM;
	op->outstanding = 1;   /* held while sending */
	for (uint32_t s = 0; s < rq->bs->b->shard_count; s++) {
		struct ofle_part *part = op->parts[s];
		if (part == NULL)
			continue;
		struct xmsg m = { .type = KAFKA_API_OFFSET_FOR_LEADER_EPOCH, .fn = ofle_on_owner,
				  .done = ofle_part_done, .ctx = op };
		m.pl.ptr[0] = part;
		if (broker_send(rq->bs, s, &m) == SL_OK) {
			op->outstanding++;
			continue;
		}
		for (struct ofle_entry *e = part->entries; e != NULL; e = e->next)
			e->error_code = KERR_REQUEST_TIMED_OUT;
	}
	if (--op->outstanding == 0)
		ofle_finish(op);
	return SL_OK;
}

void follower_api_register(void)
{
	dispatch_register(KAFKA_API_OFFSET_FOR_LEADER_EPOCH, KAFKA_OFFSET_FOR_LEADER_EPOCH_VERSION_MIN,
			  KAFKA_OFFSET_FOR_LEADER_EPOCH_VERSION_MAX, api_offset_for_leader_epoch_handle);
}
