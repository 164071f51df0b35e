/*
 * api_delete_records.c — DeleteRecords (key 21), versions 0-2.
 *
 *   api_delete_records_handle (connection's shard) resolves topics in its
 *       snapshot (UNKNOWN_TOPIC_OR_PARTITION), groups partitions by owner,
 *       one message per owner.
 *   delete_records_on_owner   (owner) moves the log start offset up:
 *       plog_delete_before(offset), offset -1 meaning the high watermark;
 *       beyond the high watermark or below -1: OFFSET_OUT_OF_RANGE. The
 *       answer is the new low watermark (log start offset), which never
 *       moves down (an offset below it changes nothing).
 *   delete_records_part_done  (connection's shard) gathers and answers.
 */
#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"
#include "partition.h"

#define DELETE_RECORDS_HIGH_WATERMARK (-1)

struct dr_entry {
	struct DeleteRecordsResponse_DeleteRecordsPartitionResult *slot;
	struct dr_entry *next;
	struct kuuid topic_id;
	int32_t index;
	int64_t offset;          /* asked */
	int16_t error_code;      /* owner */
	int64_t low_watermark;   /* owner */
};

struct dr_op {
	struct req *rq;
	struct DeleteRecordsResponse resp;
	struct dr_entry *entries;
	uint32_t entry_count;
	struct dr_entry **heads;  /* [shard]: entries owned there */
	uint32_t outstanding;
};

/* One partition. Runs on: the owner. */
static void delete_records_one(struct partition *p, struct dr_entry *e)
{
	struct plog *log = p != NULL ? partition_log(p) : NULL;

	if (p == NULL) {
		e->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
		return;
	}
	if (log == NULL) {
		e->error_code = KERR_KAFKA_STORAGE_ERROR;
		return;
	}
	int64_t hw = plog_end_offset(log);
	int64_t target = e->offset == DELETE_RECORDS_HIGH_WATERMARK ? hw : e->offset;
	if (target < 0 || target > hw) {
		e->error_code = KERR_OFFSET_OUT_OF_RANGE;
		return;
	}
	enum sl_err err = target > plog_start_offset(log) ? plog_delete_before(log, target) : SL_OK;
	e->error_code = kerr_from_storage(err);
	e->low_watermark = plog_start_offset(log);
	SL_ASSERT(err != SL_OK || e->low_watermark >= target);
}

/* Runs on: the owner. */
static enum xmsg_fn_result delete_records_on_owner(struct shard *sh, struct xmsg *m)
{
	struct broker_shard *bs = broker_shard_of(sh);

	for (struct dr_entry *e = m->pl.ptr[0]; e != NULL; e = e->next)
		delete_records_one(partition_set_find(&bs->parts, &e->topic_id, e->index), e);
	return XMSG_REPLY;
}

static void delete_records_finish(struct dr_op *op)
{
	for (uint32_t i = 0; i < op->entry_count; i++) {
		struct dr_entry *e = &op->entries[i];
		e->slot->ErrorCode = e->error_code;
		e->slot->LowWatermark = e->error_code == KERR_NONE ? e->low_watermark : -1;
	}
	req_respond(op->rq, &op->resp);
}

static void delete_records_part_done(struct shard *sh, struct xmsg *m)
{
	struct dr_op *op = m->ctx;

	(void)sh;
	SL_ASSERT(op->outstanding > 0);
	if (--op->outstanding == 0)
		delete_records_finish(op);
}

/* Builds the response skeleton and the per-owner lists. SL_OK or SL_ENOMEM. */
static enum sl_err delete_records_prepare(struct dr_op *op, const struct DeleteRecordsRequest *in)
{
	struct req *rq = op->rq;
	uint32_t shards = rq->bs->b->shard_count;
	uint32_t k = 0;

	kafka_init_delete_records_response(&op->resp);
	for (int32_t t = 0; t < in->Topics.count; t++)
		op->entry_count += (uint32_t)SL_MAX(in->Topics.items[t].Partitions.count, 0);
	op->resp.Topics.count = SL_MAX(in->Topics.count, 0);
	op->resp.Topics.items = req_alloc(rq, (size_t)(op->resp.Topics.count + 1) *
					      sizeof(*op->resp.Topics.items));
	op->entries = req_alloc(rq, (op->entry_count + 1) * sizeof(*op->entries));
	op->heads = req_alloc(rq, shards * sizeof(*op->heads));
	if (op->resp.Topics.items == NULL || op->entries == NULL || op->heads == NULL)
		return SL_ENOMEM;
	for (int32_t t = 0; t < in->Topics.count; t++) {
		const struct DeleteRecordsRequest_DeleteRecordsTopic *dt = &in->Topics.items[t];
		struct DeleteRecordsResponse_DeleteRecordsTopicResult *tr = &op->resp.Topics.items[t];
		int32_t n = SL_MAX(dt->Partitions.count, 0);
		const struct catalog_topic *topic = catalog_snap_find(
			rq->bs->snap, (const char *)dt->Name.ptr, (size_t)SL_MAX(dt->Name.len, 0));
		kafka_init_delete_records_response_delete_records_topic_result(tr);
		tr->Name = dt->Name;
		tr->Partitions.count = n;
		tr->Partitions.items = req_alloc(rq, (size_t)(n + 1) * sizeof(*tr->Partitions.items));
		if (tr->Partitions.items == NULL)
			return SL_ENOMEM;
		for (int32_t i = 0; i < n; i++, k++) {
			const struct DeleteRecordsRequest_DeleteRecordsPartition *dp = &dt->Partitions.items[i];
			struct dr_entry *e = &op->entries[k];
			e->slot = &tr->Partitions.items[i];
			kafka_init_delete_records_response_delete_records_partition_result(e->slot);
			e->slot->PartitionIndex = dp->PartitionIndex;
			if (topic == NULL || dp->PartitionIndex < 0 ||
			    dp->PartitionIndex >= topic->partition_count) {
				e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			e->topic_id = topic->id;
			e->index = dp->PartitionIndex;
			e->offset = dp->Offset;
			uint32_t owner = partition_owner(&topic->id, dp->PartitionIndex, shards);
			e->next = op->heads[owner];
			op->heads[owner] = e;
		}
	}
	SL_ASSERT(k == op->entry_count);
	return SL_OK;
}

enum sl_err api_delete_records_handle(struct req *rq)
{
	struct dr_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	rq->api = op;
	op->rq = rq;
	if (delete_records_prepare(op, rq->body) != SL_OK)
		return SL_ENOMEM;
	op->outstanding = 1;   /* held while sending */
	for (uint32_t s = 0; s < rq->bs->b->shard_count; s++) {
		if (op->heads[s] == NULL)
			continue;
		struct xmsg m = { .type = KAFKA_API_DELETE_RECORDS, .fn = delete_records_on_owner,
				  .done = delete_records_part_done, .ctx = op };
		m.pl.ptr[0] = op->heads[s];
		if (broker_send(rq->bs, s, &m) == SL_OK) {
			op->outstanding++;
			continue;
		}
		for (struct dr_entry *e = op->heads[s]; e != NULL; e = e->next)
			e->error_code = KERR_REQUEST_TIMED_OUT;
	}
	if (--op->outstanding == 0)
		delete_records_finish(op);
	return SL_OK;
}
