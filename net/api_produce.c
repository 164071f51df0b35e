/*
 * api_produce.c — Produce (key 0), versions 3-11 (record batch v2 only).
 *
 *   api_produce_handle   (connection's shard) checks acks, resolves topics
 *                        against the snapshot (auto-creating unknown ones
 *                        when auto.create.topics.enable: the request then
 *                        waits for shard 0), validates every partition's
 *                        record set, groups partitions by owner shard and
 *                        sends one message per owner.
 *   produce_on_owner     (owner shard) appends each partition's batches
 *                        (partition_append: offsets are assigned by
 *                        rewriting baseOffset in the request buffer, which
 *                        the owner borrows and never frees) and replies once
 *                        every append completed (XMSG_DEFER until then).
 *   produce_part_done    (connection's shard) gathers; the last part fills
 *                        the response (per-partition errors in their own
 *                        slots) and answers. acks=0: no answer; if a
 *                        partition failed, the connection is closed, as
 *                        Kafka does, so the producer notices.
 *
 * Record-set checks (in this order, first failure wins, per partition):
 *   magic != 2 -> UNSUPPORTED_FOR_MESSAGE_FORMAT; header unreadable or
 *   truncated -> CORRUPT_MESSAGE; CRC mismatch -> CORRUPT_MESSAGE; any other defect
 *   (record framing, counts, offset deltas, control batch from a client)
 *   -> INVALID_RECORD; timestamp outside log.message.timestamp.before/
 *   after.max.ms (CreateTime) -> INVALID_TIMESTAMP.
 * acks=-1 behaves as acks=1 on a single node; the flush policy
 * (log.flush.interval.messages) still decides when an append is "done".
 * Cluster mode (partition_set.hooks, replication/repl.c): on the owner, a
 * partition this broker does not lead -> NOT_LEADER_OR_FOLLOWER; acks=-1
 * with the ISR below min.insync.replicas -> NOT_ENOUGH_REPLICAS; the
 * leader epoch is stamped on every batch; an acks=-1 append then waits
 * until the high watermark passes it (NOT_ENOUGH_REPLICAS_AFTER_APPEND,
 * or REQUEST_TIMED_OUT after the request's TimeoutMs).
 * On the owner, partition_append then applies the topic's rules
 * (max.message.bytes -> MESSAGE_TOO_LARGE, LogAppendTime rewrite) and the
 * idempotent-producer check (duplicates answered with their first offset).
 */
#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"
#include "log.h"
#include "partition.h"

#define PRODUCE_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
/* Batches walked per partition (a bound: each is at least 61 bytes). */
#define PRODUCE_BATCHES_MAX (1u << 24)

struct produce_op;
struct produce_part;

/* One partition of the request. */
struct produce_entry {
	struct partition_append app;        /* borrowed by the owner until done */
	struct produce_part *part;
	struct produce_entry *next;         /* in its part */
	struct ProduceResponse_PartitionProduceResponse *slot;
	struct kuuid topic_id;
	int32_t index;
	int16_t error_code;
	int64_t base_offset;
	int64_t log_start_offset;
	/* cluster mode, owner side: acks=-1 waits for the HW (partition.h) */
	struct partition_acks_waiter acks;
	struct partition *owner_p;
	int64_t offset_count;               /* offsets the record set takes */
};

/* The partitions of one owner shard: travels there in one message. */
struct produce_part {
	struct produce_op *op;
	struct produce_entry *entries, *tail;   /* request order */
	uint32_t count;
	uint32_t shard;
	int16_t acks;                       /* the request's */
	int32_t timeout_ms;
	/* owner side */
	struct shard *owner;
	uint32_t pending;
	struct xmsg msg;                    /* the deferred message */
};

struct produce_op {
	struct req *rq;
	const struct ProduceRequest *req;
	struct ProduceResponse resp;
	struct produce_entry *entries;      /* one per request partition, in order */
	uint32_t entry_count;
	struct produce_part **parts;        /* [shard count] */
	uint32_t parts_outstanding;
	struct broker_create create;
};

static int64_t produce_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- validation (connection's shard) ---- */

/* |a - b| > limit, without overflow. */
static bool produce_ts_outside(int64_t ts, int64_t now, int64_t before_max, int64_t after_max)
{
	if (ts < 0)
		return false;   /* no timestamp (-1) */
	if (ts < now && (uint64_t)now - (uint64_t)ts > (uint64_t)before_max)
		return true;
	return ts > now && (uint64_t)ts - (uint64_t)now > (uint64_t)after_max;
}

/*
 * Checks every batch of one partition's record set (file comment) and sets
 * partitionLeaderEpoch to 0 in each. Returns the Kafka error code.
 */
static int16_t produce_validate(const struct config *cfg, uint8_t *buf, size_t len, int64_t now)
{
	struct batch_header h;
	size_t pos = 0;

	if (buf == NULL || len == 0)
		return KERR_INVALID_RECORD;
	for (uint32_t n = 0; n < PRODUCE_BATCHES_MAX && pos < len; n++) {
		uint8_t *b = buf + pos;
		size_t left = len - pos;
		if (left <= BATCH_OFF_MAGIC)
			return KERR_CORRUPT_MESSAGE;
		if (b[BATCH_OFF_MAGIC] != BATCH_MAGIC_V2)
			return KERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
		if (batch_header_parse(b, left, &h) != SL_OK)
			return KERR_CORRUPT_MESSAGE;
		size_t size = batch_size_bytes(&h);
		/* max.message.bytes is a topic config (message.max.bytes is only
		 * its default), so the owner checks it: partition_topic_rules. */
		if (batch_validate(b, size, BATCH_CHECK_CRC, &h) != SL_OK)
			return KERR_CORRUPT_MESSAGE;
		if (batch_validate(b, size, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &h) != SL_OK ||
		    (h.attributes & BATCH_ATTR_CONTROL) != 0)
			return KERR_INVALID_RECORD;
		if (!(h.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) &&
		    cfg->log_message_timestamp_type == CONFIG_TIMESTAMP_CREATE_TIME &&
		    (produce_ts_outside(h.base_timestamp, now, cfg->log_message_timestamp_before_max_ms,
					cfg->log_message_timestamp_after_max_ms) ||
		     produce_ts_outside(h.max_timestamp, now, cfg->log_message_timestamp_before_max_ms,
					cfg->log_message_timestamp_after_max_ms)))
			return KERR_INVALID_TIMESTAMP;
		batch_set_leader_epoch(b, 0);
		pos += size;
	}
	return pos == len ? KERR_NONE : KERR_CORRUPT_MESSAGE;
}

/* ---- owner side ---- */

/*
 * Cluster mode: stamps the leader's epoch on every batch (outside the
 * CRC) and counts the offsets the record set takes (already validated).
 */
static int64_t produce_stamp(uint8_t *buf, size_t len, int32_t leader_epoch)
{
	struct batch_header h;
	size_t pos = 0;
	int64_t count = 0;

	for (uint32_t n = 0; n < PRODUCE_BATCHES_MAX && pos < len; n++) {
		if (batch_header_parse(buf + pos, len - pos, &h) != SL_OK)
			break;
		batch_set_leader_epoch(buf + pos, leader_epoch);
		count += (int64_t)h.last_offset_delta + 1;
		pos += batch_size_bytes(&h);
	}
	return count;
}

/* acks=-1 in cluster mode: the HW passed the append, or it failed. */
static void produce_acks_done(struct partition_acks_waiter *w)
{
	struct produce_entry *e = PRODUCE_CONTAINER_OF(w, struct produce_entry, acks);
	struct produce_part *part = e->part;

	e->error_code = w->error_code;
	SL_ASSERT(part->pending > 0);
	if (--part->pending == 0)
		xmsg_reply(part->owner, &part->msg);
}

static void produce_append_done(struct partition_append *a)
{
	struct produce_entry *e = PRODUCE_CONTAINER_OF(a, struct produce_entry, app);
	struct produce_part *part = e->part;
	const struct partition_hooks *hooks =
		e->owner_p != NULL ? partition_set_of(e->owner_p)->hooks : NULL;

	e->error_code = a->error_code;
	e->base_offset = a->error_code == KERR_NONE ? a->base_offset : -1;
	e->log_start_offset = a->log_start_offset;
	if (a->error_code == KERR_NONE && part->acks == -1 && hooks != NULL &&
	    hooks->acks_wait != NULL) {
		e->acks.last_offset = a->base_offset + SL_MAX(e->offset_count, (int64_t)1) - 1;
		e->acks.deadline_ns = shard_now_ns(part->owner) +
				      (int64_t)SL_MAX(part->timeout_ms, 0) * 1000000;
		e->acks.fn = produce_acks_done;
		if (hooks->acks_wait(e->owner_p, &e->acks) == 1)
			return;   /* produce_acks_done answers */
		e->error_code = e->acks.error_code;
	}
	SL_ASSERT(part->pending > 0);
	if (--part->pending == 0)
		xmsg_reply(part->owner, &part->msg);
}

/*
 * Runs on: the owner shard. Appends each entry of the part; replies when
 * the last append completed. The part and the record bytes are borrowed.
 */
static enum xmsg_fn_result produce_on_owner(struct shard *sh, struct xmsg *m)
{
	struct produce_part *part = m->pl.ptr[0];
	struct broker_shard *bs = broker_shard_of(sh);

	SL_ASSERT(part->shard == sh->id && part->count > 0);
	part->owner = sh;
	part->msg = *m;
	part->pending = 1;   /* held by this loop: no reply before it ends */
	for (struct produce_entry *e = part->entries; e != NULL; e = e->next) {
		struct partition *p = partition_set_find(&bs->parts, &e->topic_id, e->index);
		if (p == NULL) {
			/* Not (yet) here: a snapshot race or shutdown. Retriable. */
			e->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
			continue;
		}
		const struct partition_hooks *hooks = bs->parts.hooks;
		if (hooks != NULL && hooks->produce_check != NULL) {
			int32_t epoch = 0;
			e->error_code = hooks->produce_check(p, part->acks, &epoch);
			if (e->error_code != KERR_NONE)
				continue;
			e->offset_count = produce_stamp(e->app.buf, e->app.len, epoch);
			e->owner_p = p;
		}
		e->app.done = produce_append_done;
		part->pending++;
		int16_t kerr = partition_append(p, &e->app);
		if (kerr != KERR_NONE) {
			part->pending--;
			e->error_code = kerr;
		}
	}
	if (--part->pending == 0)
		return XMSG_REPLY;
	return XMSG_DEFER;
}

/* ---- connection side ---- */

static void produce_finish(struct produce_op *op)
{
	struct req *rq = op->rq;
	bool failed = false;

	for (uint32_t i = 0; i < op->entry_count; i++) {
		struct produce_entry *e = &op->entries[i];
		e->slot->ErrorCode = e->error_code;
		e->slot->BaseOffset = e->error_code == KERR_NONE ? e->base_offset : -1;
		e->slot->LogStartOffset = e->log_start_offset;
		if (e->error_code != KERR_NONE)
			failed = true;
	}
	if (op->req->Acks == 0) {
		if (failed)
			req_conn_close(rq, "a produce request with acks=0 failed on some partition");
		req_respond_none(rq);
		return;
	}
	req_respond(rq, &op->resp);
}

static void produce_part_done(struct shard *sh, struct xmsg *m)
{
	struct produce_part *part = m->pl.ptr[0];
	struct produce_op *op = part->op;

	(void)sh;
	SL_ASSERT(op->parts_outstanding > 0);
	if (--op->parts_outstanding == 0)
		produce_finish(op);
}

/*
 * Validates and groups the partitions by owner, then sends the parts.
 * Topics still unknown get UNKNOWN_TOPIC_OR_PARTITION.
 */
static void produce_route(struct produce_op *op)
{
	struct req *rq = op->rq;
	struct broker_shard *bs = rq->bs;
	const struct catalog_snap *snap = bs->snap;
	const struct config *cfg = bs->b->config;
	uint32_t shards = bs->b->shard_count;
	int64_t now = produce_now_ms();
	uint32_t k = 0;

	for (int32_t t = 0; t < op->req->TopicData.count; t++) {
		const struct ProduceRequest_TopicProduceData *td = &op->req->TopicData.items[t];
		const struct catalog_topic *topic =
			catalog_snap_find(snap, (const char *)td->Name.ptr, (size_t)td->Name.len);
		for (int32_t i = 0; i < td->PartitionData.count; i++, k++) {
			struct produce_entry *e = &op->entries[k];
			const struct ProduceRequest_PartitionProduceData *pd = &td->PartitionData.items[i];
			if (e->error_code != KERR_NONE)
				continue;   /* already judged (invalid topic name) */
			if (topic == NULL || pd->Index < 0 || pd->Index >= topic->partition_count) {
				e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			uint8_t *records = (uint8_t *)(uintptr_t)pd->Records.ptr;
			size_t len = pd->Records.len > 0 ? (size_t)pd->Records.len : 0;
			e->error_code = produce_validate(cfg, records, len, now);
			if (e->error_code != KERR_NONE)
				continue;
			e->topic_id = topic->id;
			e->index = pd->Index;
			e->app.buf = records;
			e->app.len = len;
			uint32_t owner = partition_owner(&topic->id, pd->Index, shards);
			struct produce_part *part = op->parts[owner];
			if (part == NULL) {
				part = req_alloc(rq, sizeof(*part));
				if (part == NULL) {
					e->error_code = KERR_UNKNOWN_SERVER_ERROR;
					continue;
				}
				part->op = op;
				part->shard = owner;
				part->acks = op->req->Acks;
				part->timeout_ms = op->req->TimeoutMs;
				op->parts[owner] = part;
			}
			e->part = part;
			e->next = NULL;
			if (part->tail != NULL)
				part->tail->next = e;
			else
				part->entries = e;
			part->tail = e;
			part->count++;
		}
	}
	SL_ASSERT(k == op->entry_count);
	op->parts_outstanding = 1;   /* held while sending */
	for (uint32_t s = 0; s < shards; s++) {
		struct produce_part *part = op->parts[s];
		if (part == NULL)
			continue;
		struct xmsg m = { .type = KAFKA_API_PRODUCE, .fn = produce_on_owner,
				  .done = produce_part_done, .ctx = op };
		m.pl.ptr[0] = part;
		if (broker_send(bs, s, &m) != SL_OK) {
			for (struct produce_entry *e = part->entries; e != NULL; e = e->next)
				e->error_code = KERR_REQUEST_TIMED_OUT;
			continue;
		}
		op->parts_outstanding++;
	}
	if (--op->parts_outstanding == 0)
		produce_finish(op);
}

static void produce_created(struct broker_shard *bs, struct broker_create *c)
{
	struct produce_op *op = c->arg;

	(void)bs;
	for (uint32_t i = 0; i < c->count; i++)
		if (c->topics[i].error_code != KERR_NONE &&
		    c->topics[i].error_code != KERR_TOPIC_ALREADY_EXISTS)
			LOG_W(bs->sh->id, "auto-creating topic %.*s failed: %s",
			      (int)c->topics[i].name_len, c->topics[i].name,
			      kerr_name(c->topics[i].error_code));
	produce_route(op);
}

/* Builds the response skeleton and the entries, in request order. */
static enum sl_err produce_prepare(struct produce_op *op)
{
	struct req *rq = op->rq;
	const struct ProduceRequest *req = op->req;
	uint32_t k = 0;

	kafka_init_produce_response(&op->resp);
	for (int32_t t = 0; t < req->TopicData.count; t++)
		op->entry_count += (uint32_t)SL_MAX(req->TopicData.items[t].PartitionData.count, 0);
	op->resp.Responses.count = SL_MAX(req->TopicData.count, 0);
	op->resp.Responses.items = req_alloc(rq, (size_t)(op->resp.Responses.count + 1) *
						 sizeof(*op->resp.Responses.items));
	op->entries = req_alloc(rq, (size_t)(op->entry_count + 1) * sizeof(*op->entries));
	op->parts = req_alloc(rq, rq->bs->b->shard_count * sizeof(*op->parts));
	if (op->resp.Responses.items == NULL || op->entries == NULL || op->parts == NULL)
		return SL_ENOMEM;
	for (int32_t t = 0; t < req->TopicData.count; t++) {
		const struct ProduceRequest_TopicProduceData *td = &req->TopicData.items[t];
		struct ProduceResponse_TopicProduceResponse *tr = &op->resp.Responses.items[t];
		int32_t n = SL_MAX(td->PartitionData.count, 0);
		kafka_init_produce_response_topic_produce_response(tr);
		tr->Name = td->Name;
		tr->PartitionResponses.count = n;
		tr->PartitionResponses.items = req_alloc(rq, (size_t)(n + 1) *
							 sizeof(*tr->PartitionResponses.items));
		if (tr->PartitionResponses.items == NULL)
			return SL_ENOMEM;
		for (int32_t i = 0; i < n; i++, k++) {
			struct ProduceResponse_PartitionProduceResponse *slot =
				&tr->PartitionResponses.items[i];
			kafka_init_produce_response_partition_produce_response(slot);
			slot->Index = td->PartitionData.items[i].Index;
			slot->RecordErrors.count = 0;
			op->entries[k].slot = slot;
			op->entries[k].base_offset = -1;
			op->entries[k].log_start_offset = -1;
		}
	}
	SL_ASSERT(k == op->entry_count);
	return SL_OK;
}

/*
 * Marks topics that cannot exist (invalid name, or unknown without
 * auto-creation) and collects those to auto-create. Returns how many
 * topics were queued for creation in op->create.
 */
static uint32_t produce_resolve(struct produce_op *op)
{
	struct req *rq = op->rq;
	const struct ProduceRequest *req = op->req;
	const struct catalog_snap *snap = rq->bs->snap;
	bool autocreate = rq->bs->b->config->auto_create_topics_enable;
	uint32_t k = 0, creating = 0;

	for (int32_t t = 0; t < req->TopicData.count; t++) {
		const struct ProduceRequest_TopicProduceData *td = &req->TopicData.items[t];
		const char *name = (const char *)td->Name.ptr;
		size_t len = td->Name.len > 0 ? (size_t)td->Name.len : 0;
		int16_t kerr = KERR_NONE;
		int32_t n = SL_MAX(td->PartitionData.count, 0);

		if (catalog_snap_find(snap, name, len) == NULL) {
			if (!catalog_name_valid(name, len)) {
				kerr = KERR_INVALID_TOPIC_EXCEPTION;
			} else if (autocreate && !catalog_name_reserved(name, len) &&
				   creating < (uint32_t)req->TopicData.count) {
				struct broker_create_topic *ct = &op->create.topics[creating++];
				ct->name = name;
				ct->name_len = (uint32_t)len;
				ct->partitions = 0;
			}
		}
		for (int32_t i = 0; i < n; i++, k++)
			op->entries[k].error_code = kerr;
	}
	return creating;
}

enum sl_err api_produce_handle(struct req *rq)
{
	const struct ProduceRequest *req = rq->body;
	struct produce_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	rq->api = op;
	op->rq = rq;
	op->req = req;
	if (produce_prepare(op) != SL_OK)
		return SL_ENOMEM;
	if (req->Acks != 0 && req->Acks != 1 && req->Acks != -1) {
		for (uint32_t i = 0; i < op->entry_count; i++)
			op->entries[i].error_code = KERR_INVALID_REQUIRED_ACKS;
		produce_finish(op);
		return SL_OK;
	}
	op->create.topics = req_alloc(rq, (size_t)(SL_MAX(req->TopicData.count, 0) + 1) *
					  sizeof(*op->create.topics));
	if (op->create.topics == NULL)
		return SL_ENOMEM;
	op->create.count = produce_resolve(op);
	if (op->create.count > 0) {
		op->create.done = produce_created;
		op->create.arg = op;
		if (broker_topics_create(rq->bs, &op->create) == SL_OK)
			return SL_OK;
		/* Could not ask: the unknown topics fail below. */
	}
	produce_route(op);
	return SL_OK;
}
