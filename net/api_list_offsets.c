/*
 * api_list_offsets.c — ListOffsets (key 2), versions 1-8.
 *
 *   api_list_offsets_handle  (connection's shard) resolves topics, groups
 *                            partitions by owner, one message per owner.
 *   list_offsets_on_owner    (owner) answers each partition from its log:
 *       -2 EARLIEST (and -4 EARLIEST_LOCAL): the log start offset;
 *       -1 LATEST: the high watermark (= last stable offset: no
 *          transactions yet, so both isolation levels agree);
 *       -3 MAX_TIMESTAMP (v7+): offset and time of the largest timestamp;
 *       t >= 0: offset and timestamp of the first record whose
 *          timestamp >= t (record granularity, compressed batches
 *          included: plog_record_for_timestamp), or -1 / -1 if none.
 *   list_offsets_part_done   (connection's shard) gathers and answers.
 * Cluster mode (partition_set.hooks): leadership and the KIP-320
 * CurrentLeaderEpoch check as for a consumer's Fetch; LATEST is the HW.
 * Errors per partition: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
 * (owner does not have it yet), UNKNOWN_LEADER_EPOCH (client epoch > 0),
 * UNSUPPORTED_VERSION (-3 before v7), INVALID_REQUEST (other negative
 * timestamps), KAFKA_STORAGE_ERROR.
 */
#include <string.h>

#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"
#include "partition.h"
#include "plog_ts.h"

#define LIST_OFFSETS_EARLIEST (-2)
#define LIST_OFFSETS_LATEST (-1)
#define LIST_OFFSETS_MAX_TIMESTAMP (-3)
#define LIST_OFFSETS_EARLIEST_LOCAL (-4)

struct lo_op;
struct lo_part;

struct lo_entry {
	struct ListOffsetsResponse_ListOffsetsPartitionResponse *slot;
	struct lo_part *part;
	struct lo_entry *next;
	struct kuuid topic_id;
	int32_t index;
	int64_t timestamp;                 /* asked */
	int32_t leader_epoch;              /* asked */
	/* written by the owner */
	int16_t error_code;
	int64_t out_offset;
	int64_t out_timestamp;
};

struct lo_part {
	struct lo_op *op;
	struct lo_entry *entries, *tail;
	uint32_t shard;
	int16_t api_version;
};

struct lo_op {
	struct req *rq;
	struct ListOffsetsResponse resp;
	struct lo_entry *entries;
	uint32_t entry_count;
	struct lo_part **parts;
	uint32_t outstanding;
};

/* The answer for one partition. Runs on: the owner. */
static void list_offsets_one(struct partition *p, struct plog *log, int16_t version,
			     struct lo_entry *e)
{
	int64_t ts = e->timestamp;
	enum sl_err err;

	e->out_offset = -1;
	e->out_timestamp = -1;
	if (ts == LIST_OFFSETS_EARLIEST || ts == LIST_OFFSETS_EARLIEST_LOCAL) {
		e->out_offset = plog_start_offset(log);
	} else if (ts == LIST_OFFSETS_LATEST) {
		e->out_offset = partition_hw(p);   /* = log end on a single node */
	} else if (ts == LIST_OFFSETS_MAX_TIMESTAMP) {
		if (version < 7) {
			e->error_code = KERR_UNSUPPORTED_VERSION;
			return;
		}
		err = plog_max_timestamp(log, &e->out_timestamp, &e->out_offset);
		if (err != SL_OK) {
			e->out_offset = -1;
			e->out_timestamp = -1;
			if (err != SL_ENOTFOUND)
				e->error_code = KERR_KAFKA_STORAGE_ERROR;
		}
	} else if (ts < 0) {
		e->error_code = KERR_INVALID_REQUEST;
	} else {
		err = plog_record_for_timestamp(log, ts, &e->out_offset, &e->out_timestamp);
		if (err != SL_OK) {
			e->out_offset = -1;
			e->out_timestamp = -1;
			if (err != SL_ENOTFOUND)
				e->error_code = KERR_KAFKA_STORAGE_ERROR;
		}
	}
}

/* Runs on: the owner. */
static enum xmsg_fn_result list_offsets_on_owner(struct shard *sh, struct xmsg *m)
{
	struct lo_part *part = m->pl.ptr[0];
	struct broker_shard *bs = broker_shard_of(sh);

	for (struct lo_entry *e = part->entries; e != NULL; e = e->next) {
		struct partition *p = partition_set_find(&bs->parts, &e->topic_id, e->index);
		struct plog *log = p != NULL ? partition_log(p) : NULL;
		const struct partition_hooks *hooks = bs->parts.hooks;
		if (p == NULL) {
			e->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
		} else if (log == NULL) {
			e->error_code = KERR_KAFKA_STORAGE_ERROR;
		} else if (hooks != NULL && hooks->leader_check != NULL) {
			e->error_code = hooks->leader_check(p, e->leader_epoch);
			if (e->error_code == KERR_NONE)
				list_offsets_one(p, log, part->api_version, e);
		} else if (e->leader_epoch > 0) {
			e->error_code = KERR_UNKNOWN_LEADER_EPOCH;
		} else {
			e->error_code = KERR_NONE;
			list_offsets_one(p, log, part->api_version, e);
		}
	}
	return XMSG_REPLY;
}

static void list_offsets_finish(struct lo_op *op)
{
	for (uint32_t i = 0; i < op->entry_count; i++) {
		struct lo_entry *e = &op->entries[i];
		e->slot->ErrorCode = e->error_code;
		if (e->error_code == KERR_NONE) {
			e->slot->Offset = e->out_offset;
			e->slot->Timestamp = e->out_timestamp;
			e->slot->LeaderEpoch = e->out_offset >= 0 ? 0 : -1;
		}
	}
	req_respond(op->rq, &op->resp);
}

static void list_offsets_part_done(struct shard *sh, struct xmsg *m)
{
	struct lo_op *op = m->ctx;

	(void)sh;
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding == 0)
		list_offsets_finish(op);
}

/* Skeleton, entries and parts in request order. SL_OK or SL_ENOMEM. */
static enum sl_err list_offsets_prepare(struct lo_op *op, const struct ListOffsetsRequest *req)
{
	struct req *rq = op->rq;
	const struct catalog_snap *snap = rq->bs->snap;
	uint32_t shards = rq->bs->b->shard_count;
	uint32_t k = 0;

	kafka_init_list_offsets_response(&op->resp);
	for (int32_t t = 0; t < req->Topics.count; t++)
		op->entry_count += (uint32_t)SL_MAX(req->Topics.items[t].Partitions.count, 0);
	op->resp.Topics.count = SL_MAX(req->Topics.count, 0);
	op->resp.Topics.items = req_alloc(rq, (size_t)(op->resp.Topics.count + 1) *
					      sizeof(*op->resp.Topics.items));
	op->entries = req_alloc(rq, (size_t)(op->entry_count + 1) * sizeof(*op->entries));
	op->parts = req_alloc(rq, shards * sizeof(*op->parts));
	if (op->resp.Topics.items == NULL || op->entries == NULL || op->parts == NULL)
		return SL_ENOMEM;
	for (int32_t t = 0; t < req->Topics.count; t++) {
		const struct ListOffsetsRequest_ListOffsetsTopic *lt = &req->Topics.items[t];
		struct ListOffsetsResponse_ListOffsetsTopicResponse *tr = &op->resp.Topics.items[t];
		int32_t n = SL_MAX(lt->Partitions.count, 0);
		const struct catalog_topic *topic =
			catalog_snap_find(snap, (const char *)lt->Name.ptr, (size_t)SL_MAX(lt->Name.len, 0));
		kafka_init_list_offsets_response_list_offsets_topic_response(tr);
		tr->Name = lt->Name;
		tr->Partitions.count = n;
		tr->Partitions.items = req_alloc(rq, (size_t)(n + 1) * sizeof(*tr->Partitions.items));
		if (tr->Partitions.items == NULL)
			return SL_ENOMEM;
		for (int32_t i = 0; i < n; i++, k++) {
			const struct ListOffsetsRequest_ListOffsetsPartition *lp = &lt->Partitions.items[i];
			struct ListOffsetsResponse_ListOffsetsPartitionResponse *slot =
				&tr->Partitions.items[i];
			struct lo_entry *e = &op->entries[k];
			kafka_init_list_offsets_response_list_offsets_partition_response(slot);
			slot->PartitionIndex = lp->PartitionIndex;
			e->slot = slot;
			if (topic == NULL || lp->PartitionIndex < 0 ||
			    lp->PartitionIndex >= topic->partition_count) {
				e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			e->topic_id = topic->id;
			e->index = lp->PartitionIndex;
			e->timestamp = lp->Timestamp;
			e->leader_epoch = lp->CurrentLeaderEpoch;
			uint32_t owner = partition_owner(&topic->id, lp->PartitionIndex, shards);
			struct lo_part *part = op->parts[owner];
			if (part == NULL) {
				part = req_alloc(rq, sizeof(*part));
				if (part == NULL)
					return SL_ENOMEM;
				part->op = op;
				part->shard = owner;
				part->api_version = rq->api_version;
				op->parts[owner] = part;
			}
			e->part = part;
			if (part->tail != NULL)
				part->tail->next = e;
			else
				part->entries = e;
			part->tail = e;
		}
	}
	SL_ASSERT(k == op->entry_count);
	return SL_OK;
}

enum sl_err api_list_offsets_handle(struct req *rq)
{
	struct lo_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	rq->api = op;
	op->rq = rq;
	if (list_offsets_prepare(op, rq->body) != SL_OK)
		return SL_ENOMEM;
	op->outstanding = 1;   /* held while sending */
	for (uint32_t s = 0; s < rq->bs->b->shard_count; s++) {
		struct lo_part *part = op->parts[s];
		if (part == NULL)
			continue;
		struct xmsg m = { .type = KAFKA_API_LIST_OFFSETS, .fn = list_offsets_on_owner,
				  .done = list_offsets_part_done, .ctx = op };
		m.pl.ptr[0] = part;
		if (broker_send(rq->bs, s, &m) == SL_OK) {
			op->outstanding++;
			continue;
		}
		for (struct lo_entry *e = part->entries; e != NULL; e = e->next)
			e->error_code = KERR_REQUEST_TIMED_OUT;
	}
	if (--op->outstanding == 0)
		list_offsets_finish(op);
	return SL_OK;
}
