/*
 * api_fetch.c — Fetch (key 1), versions 4-16, zero-copy.
 *
 * Shards: the connection's shard builds the response and talks to the
 * owner shard of each partition with four messages, each carrying a
 * `fetch_part` (the partitions one owner serves; conn-shard memory the
 * owner borrows):
 *   READ     owner: per partition, offsets (log start, high watermark,
 *            last stable = HW) and plog_read up to the partition's byte
 *            budget and the HW: a slice pinning its segment. Idempotent:
 *            slices from an earlier round are released first.
 *   WAIT     owner: releases the part's slices, then parks a waiter on
 *            each partition; replies (deferred) when any of them gets data
 *            beyond what the read saw, or on CANCEL.
 *   CANCEL   owner: if the WAIT is still parked, unparks and answers it.
 *   RELEASE  owner: releases the part's slices (after the response left).
 *
 * Phases (connection's shard), the function behind each transition:
 *   READING --all READ replies: fetch_evaluate--> RESPONDING (enough bytes,
 *       an error, max_wait_ms 0, deadline passed, connection closing)
 *                                           or --> WAITING (fetch_wait_all)
 *   WAITING --a WAIT reply with data, or the max_wait_ms timer, or the
 *       connection closing: fetch_wake--> WAKING (CANCEL to the others)
 *   WAKING --every WAIT and CANCEL answered: fetch_read_all--> READING
 *   RESPONDING --req_respond; response sent or dropped: fetch_finish-->
 *       RELEASING (RELEASE per part; the request is held) --> done
 * No polling: a waiting fetch costs a timer and one parked waiter per
 * partition.
 *
 * Bytes: each partition reads at most min(partition_max_bytes, max_bytes);
 * then, in response order, a partition's records are kept while the total
 * stays within max_bytes, except that the first non-empty partition is
 * always kept whole (KIP-74). Records that do not fit are released and
 * that partition answers with no records (the client asks again).
 * The response is encoded with a hole per kept partition (kwrite.h) and
 * the bytes go file -> pipe -> socket (conn.c).
 *
 * Sessions (KIP-227): none are kept. SessionId 0 with epoch -1 (no
 * session) or 0 (asks for one) is served as a full fetch and answered with
 * SessionId 0, which tells the client it got no session, so it keeps
 * sending full fetches; any other SessionId -> FETCH_SESSION_ID_NOT_FOUND,
 * SessionId 0 with another epoch -> INVALID_FETCH_SESSION_EPOCH.
 * Topic ids from v13: an unknown id -> UNKNOWN_TOPIC_ID in its partitions.
 *
 * Cluster mode (partition_set.hooks, replication/repl.c): a consumer's
 * fetch needs this broker to lead the partition and its CurrentLeaderEpoch
 * to match (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH, KIP-320); it reads
 * below the HW. A follower's fetch (ReplicaId >= 0 before v15,
 * ReplicaState.ReplicaId from v15) first updates the leader's view of that
 * follower (which may move the HW), then reads up to the log end and is
 * answered the leader's HW; its WAIT also ends when the log end moves.
 * Without hooks (single node) a replica id is ignored.
 */
#include <stddef.h>
#include <string.h>

#include "broker.h"
#include "catalog.h"
#include "dispatch.h"
#include "kerr.h"
#include "log.h"
#include "partition.h"
#include "timer.h"

#define FETCH_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct fetch_op;
struct fetch_part;

/* One partition of the request. */
struct fetch_entry {
	struct FetchResponse_PartitionData *slot;
	struct fetch_part *part;
	struct fetch_entry *next;          /* in its part, request order */
	struct kuuid topic_id;
	int32_t index;
	int64_t offset;
	uint32_t max_bytes;
	int32_t leader_epoch;
	int32_t replica_id;                /* >= 0: a follower's fetch (cluster mode) */
	bool keep;                         /* conn side: records go in the response */
	/* written by the owner */
	int16_t error_code;
	struct partition_offsets offs;
	struct plog_slice slice;
	bool has_slice;
	int64_t seen_end;                  /* log end at the read (followers wait on it) */
	struct partition_waiter waiter;
};

struct fetch_part {
	struct fetch_op *op;
	struct fetch_entry *entries, *tail;
	uint32_t count;
	uint32_t shard;
	/* connection side */
	bool wait_out;                     /* WAIT sent, not answered */
	bool cancel_out;                   /* CANCEL sent, not answered */
	/* owner side */
	struct shard *owner;
	bool waiting;                      /* WAIT deferred */
	bool woke;                         /* the WAIT ended because data arrived */
	struct xmsg wait_msg;
};

enum fetch_phase {
	FETCH_READING = 0,
	FETCH_WAITING,
	FETCH_WAKING,
	FETCH_RESPONDING,
	FETCH_RELEASING,
};

struct fetch_op {
	struct req *rq;
	const struct FetchRequest *req;
	struct FetchResponse resp;
	struct fetch_entry *entries;       /* request order */
	uint32_t entry_count;
	struct fetch_part **parts;         /* [shard count] */
	uint32_t outstanding;              /* messages sent, not answered */
	enum fetch_phase phase;
	struct timer timer;
	bool expired;
	bool timer_armed;
};

enum fetch_msg {
	FETCH_MSG_READ = 1,
	FETCH_MSG_WAIT,
	FETCH_MSG_CANCEL,
	FETCH_MSG_RELEASE,
};

/* ---- owner side ---- */

static void fetch_release_slices(struct fetch_part *part)
{
	for (struct fetch_entry *e = part->entries; e != NULL; e = e->next) {
		if (!e->has_slice)
			continue;
		plog_slice_release(&e->slice);
		e->has_slice = false;
		memset(&e->slice, 0, sizeof(e->slice));
	}
}

/* Runs on: the owner. */
static enum xmsg_fn_result fetch_read_on_owner(struct shard *sh, struct xmsg *m)
{
	struct fetch_part *part = m->pl.ptr[0];
	struct broker_shard *bs = broker_shard_of(sh);

	fetch_release_slices(part);
	for (struct fetch_entry *e = part->entries; e != NULL; e = e->next) {
		struct partition *p = partition_set_find(&bs->parts, &e->topic_id, e->index);
		if (p == NULL) {
			e->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
			continue;
		}
		const struct partition_hooks *hooks = bs->parts.hooks;
		bool replica = e->replica_id >= 0 && hooks != NULL && hooks->replica_fetch != NULL;
		e->error_code = partition_offsets(p, &e->offs);
		if (e->error_code != KERR_NONE)
			continue;
		if (replica) {
			/* the follower's view first: it may move the HW */
			e->error_code = hooks->replica_fetch(p, e->replica_id, e->leader_epoch,
							     e->offset);
			if (e->error_code == KERR_NONE)
				e->error_code = partition_offsets(p, &e->offs);
		} else if (hooks != NULL && hooks->leader_check != NULL) {
			e->error_code = hooks->leader_check(p, e->leader_epoch);
		} else if (e->leader_epoch > 0) {
			e->error_code = KERR_UNKNOWN_LEADER_EPOCH;   /* ours is 0 */
		}
		if (e->error_code != KERR_NONE)
			continue;
		e->seen_end = partition_log_end(p);
		e->error_code = partition_read_upto(p, e->offset, e->max_bytes, replica, &e->slice);
		e->has_slice = e->error_code == KERR_NONE && e->slice.len > 0;
	}
	return XMSG_REPLY;
}

/* Unparks every waiter of `part` and answers its WAIT. Runs on: the owner. */
static void fetch_unpark(struct fetch_part *part, bool woke)
{
	SL_ASSERT(part->waiting);
	for (struct fetch_entry *e = part->entries; e != NULL; e = e->next)
		partition_unwait(&e->waiter);
	part->waiting = false;
	part->woke = woke;
	xmsg_reply(part->owner, &part->wait_msg);
}

static void fetch_waiter_fire(struct partition_waiter *w)
{
	struct fetch_entry *e = FETCH_CONTAINER_OF(w, struct fetch_entry, waiter);

	if (e->part->waiting)
		fetch_unpark(e->part, true);
}

/* Runs on: the owner. */
static enum xmsg_fn_result fetch_wait_on_owner(struct shard *sh, struct xmsg *m)
{
	struct fetch_part *part = m->pl.ptr[0];
	struct broker_shard *bs = broker_shard_of(sh);
	uint32_t parked = 0;

	fetch_release_slices(part);
	part->owner = sh;
	part->woke = false;
	part->wait_msg = *m;
	for (struct fetch_entry *e = part->entries; e != NULL; e = e->next) {
		struct partition *p = partition_set_find(&bs->parts, &e->topic_id, e->index);
		struct partition_offsets now;
		if (p == NULL || partition_offsets(p, &now) != KERR_NONE ||
		    now.high_watermark != e->offs.high_watermark ||
		    (e->replica_id >= 0 && partition_log_end(p) != e->seen_end)) {
			/* Gone, failed, or data arrived since the read: no waiting. */
			for (struct fetch_entry *x = part->entries; x != e; x = x->next)
				partition_unwait(&x->waiter);
			part->woke = true;
			return XMSG_REPLY;
		}
		partition_wait(p, &e->waiter, fetch_waiter_fire);
		parked++;
	}
	if (parked == 0)
		return XMSG_REPLY;
	part->waiting = true;
	return XMSG_DEFER;
}

/* Runs on: the owner. */
static enum xmsg_fn_result fetch_cancel_on_owner(struct shard *sh, struct xmsg *m)
{
	struct fetch_part *part = m->pl.ptr[0];

	(void)sh;
	if (part->waiting)
		fetch_unpark(part, false);
	return XMSG_REPLY;
}

/* Runs on: the owner. */
static enum xmsg_fn_result fetch_release_on_owner(struct shard *sh, struct xmsg *m)
{
	(void)sh;
	fetch_release_slices(m->pl.ptr[0]);
	return XMSG_REPLY;
}

/* ---- connection side ---- */

static void fetch_part_done(struct shard *sh, struct xmsg *m);
static void fetch_read_all(struct fetch_op *op);
static void fetch_respond(struct fetch_op *op);

static xmsg_fn *const fetch_fns[] = {
	[FETCH_MSG_READ] = fetch_read_on_owner,
	[FETCH_MSG_WAIT] = fetch_wait_on_owner,
	[FETCH_MSG_CANCEL] = fetch_cancel_on_owner,
	[FETCH_MSG_RELEASE] = fetch_release_on_owner,
};

/* Sends message `kind` about `part`. SL_OK or the outbox's error. */
static enum sl_err fetch_send(struct fetch_op *op, struct fetch_part *part, enum fetch_msg kind)
{
	struct xmsg m = { .type = kind, .fn = fetch_fns[kind], .done = fetch_part_done, .ctx = op };

	m.pl.ptr[0] = part;
	enum sl_err err = broker_send(op->rq->bs, part->shard, &m);
	if (err == SL_OK)
		op->outstanding++;
	else
		LOG_W(op->rq->sh->id, "fetch: cannot reach shard %u: %s", part->shard, sl_err_str(err));
	return err;
}

static void fetch_timer_stop(struct fetch_op *op)
{
	if (op->timer_armed) {
		timer_cancel(&op->rq->sh->timers, &op->timer);
		op->timer_armed = false;
	}
}

/* WAITING -> WAKING: cancel the WAITs still parked. */
static void fetch_wake(struct fetch_op *op)
{
	SL_ASSERT(op->phase == FETCH_WAITING);
	op->phase = FETCH_WAKING;
	for (uint32_t s = 0; s < op->rq->bs->b->shard_count; s++) {
		struct fetch_part *part = op->parts[s];
		if (part == NULL || !part->wait_out || part->cancel_out)
			continue;
		if (fetch_send(op, part, FETCH_MSG_CANCEL) == SL_OK)
			part->cancel_out = true;
	}
}

static void fetch_timer_fire(struct timer *t, void *ctx)
{
	struct fetch_op *op = FETCH_CONTAINER_OF(t, struct fetch_op, timer);

	(void)ctx;
	op->timer_armed = false;
	op->expired = true;
	if (op->phase == FETCH_WAITING)
		fetch_wake(op);
}

/* Connection closing: stop waiting now (the answer is dropped anyway). */
static void fetch_cancel_hook(struct req *rq)
{
	struct fetch_op *op = rq->api;

	op->expired = true;
	fetch_timer_stop(op);
	if (op->phase == FETCH_WAITING)
		fetch_wake(op);
}

/* READING -> WAITING: park on every part's partitions. */
static void fetch_wait_all(struct fetch_op *op)
{
	struct req *rq = op->rq;

	op->phase = FETCH_WAITING;
	if (!op->timer_armed && !op->expired) {
		int64_t deadline = rq->start_ns + (int64_t)op->req->MaxWaitMs * 1000000;
		if (timer_add(&rq->sh->timers, &op->timer, deadline) == SL_OK)
			op->timer_armed = true;
		else
			op->expired = true;   /* no timer left: do not wait at all */
	}
	for (uint32_t s = 0; s < rq->bs->b->shard_count && !op->expired; s++) {
		struct fetch_part *part = op->parts[s];
		if (part == NULL)
			continue;
		if (fetch_send(op, part, FETCH_MSG_WAIT) != SL_OK) {
			op->expired = true;
			break;
		}
		part->wait_out = true;
	}
	if (op->outstanding == 0) {
		op->phase = FETCH_READING;
		fetch_respond(op);
	} else if (op->expired) {
		fetch_wake(op);
	}
}

/* After a READ round: respond, or wait for more data. */
static void fetch_evaluate(struct fetch_op *op)
{
	const struct FetchRequest *req = op->req;
	int64_t total = 0;
	bool error = false, dropped = false;

	for (uint32_t i = 0; i < op->entry_count; i++) {
		struct fetch_entry *e = &op->entries[i];
		e->keep = false;
		/* Any partition error completes the fetch at once, as in Kafka. */
		if (e->error_code != KERR_NONE)
			error = true;
		if (!e->has_slice)
			continue;
		if (total == 0 || total + e->slice.len <= (int64_t)req->MaxBytes) {
			e->keep = true;
			total += e->slice.len;
		} else {
			dropped = true;
		}
	}
	if (error || dropped || total >= req->MinBytes || req->MaxWaitMs <= 0 || op->expired ||
	    req_conn_closing(op->rq)) {
		fetch_respond(op);
		return;
	}
	fetch_wait_all(op);
}

/* Every message of the current round was answered. */
static void fetch_round_done(struct fetch_op *op)
{
	switch (op->phase) {
	case FETCH_READING:
		fetch_evaluate(op);
		break;
	case FETCH_WAKING:
		fetch_read_all(op);
		break;
	case FETCH_RELEASING:
		break;
	case FETCH_WAITING:
	case FETCH_RESPONDING:
		SL_ASSERT(!"fetch: round ended in a phase without messages");
		break;
	}
}

static void fetch_part_done(struct shard *sh, struct xmsg *m)
{
	struct fetch_op *op = m->ctx;
	struct fetch_part *part = m->pl.ptr[0];

	(void)sh;
	SL_ASSERT(op->outstanding > 0);
	op->outstanding--;
	if (m->type == FETCH_MSG_WAIT) {
		part->wait_out = false;
		for (struct fetch_entry *e = part->entries; e != NULL; e = e->next)
			SL_ASSERT(!e->has_slice);
		if (op->phase == FETCH_WAITING && part->woke) {
			fetch_timer_stop(op);
			fetch_wake(op);
		}
	} else if (m->type == FETCH_MSG_CANCEL) {
		part->cancel_out = false;
	} else if (m->type == FETCH_MSG_RELEASE) {
		req_unhold(op->rq);   /* may free the request: touch nothing after */
		return;
	}
	if (op->outstanding == 0)
		fetch_round_done(op);
}

/* Sends READ to every part (also after a wait). */
static void fetch_read_all(struct fetch_op *op)
{
	op->phase = FETCH_READING;
	for (uint32_t s = 0; s < op->rq->bs->b->shard_count; s++) {
		struct fetch_part *part = op->parts[s];
		if (part == NULL)
			continue;
		if (fetch_send(op, part, FETCH_MSG_READ) != SL_OK)
			for (struct fetch_entry *e = part->entries; e != NULL; e = e->next)
				e->error_code = KERR_REQUEST_TIMED_OUT;
	}
	if (op->outstanding == 0)
		fetch_evaluate(op);
}

/* After the response left (or was dropped): send the slices home. */
static void fetch_finish(struct req *rq)
{
	struct fetch_op *op = rq->api;

	op->phase = FETCH_RELEASING;
	for (uint32_t s = 0; s < rq->bs->b->shard_count; s++) {
		struct fetch_part *part = op->parts[s];
		bool held = false;
		if (part == NULL)
			continue;
		for (struct fetch_entry *e = part->entries; e != NULL; e = e->next)
			held = held || e->has_slice;
		if (!held)
			continue;
		if (fetch_send(op, part, FETCH_MSG_RELEASE) == SL_OK)
			req_hold(rq);
		else
			LOG_E(rq->sh->id, "fetch: segment references on shard %u leaked", part->shard);
	}
}

/* Fills every slot and answers; kept records become file holes. */
static void fetch_respond(struct fetch_op *op)
{
	struct req *rq = op->rq;
	uint32_t kept = 0;

	SL_ASSERT(op->outstanding == 0);
	op->phase = FETCH_RESPONDING;
	fetch_timer_stop(op);
	for (uint32_t i = 0; i < op->entry_count; i++)
		kept += op->entries[i].keep ? 1 : 0;
	if (kept > 0 && req_files_reserve(rq, kept) != SL_OK)
		kept = 0;
	for (uint32_t i = 0; i < op->entry_count; i++) {
		struct fetch_entry *e = &op->entries[i];
		struct FetchResponse_PartitionData *slot = e->slot;
		slot->ErrorCode = e->error_code;
		if (e->error_code == KERR_NONE || e->error_code == KERR_OFFSET_OUT_OF_RANGE) {
			slot->HighWatermark = e->offs.high_watermark;
			slot->LastStableOffset = e->offs.last_stable_offset;
			slot->LogStartOffset = e->offs.log_start_offset;
		}
		if (kept > 0 && e->keep) {
			slot->Records = KSLICE_DEFERRED((int32_t)e->slice.len);
			req_file_add(rq, e->slice.fd, e->slice.file_pos, e->slice.len);
		}
	}
	rq->finish = fetch_finish;
	rq->cancel = NULL;
	req_respond(rq, &op->resp);
}

/* ---- request intake ---- */

/* The response skeleton, entries and parts, in request order. */
static enum sl_err fetch_prepare(struct fetch_op *op)
{
	struct req *rq = op->rq;
	const struct FetchRequest *req = op->req;
	const struct catalog_snap *snap = rq->bs->snap;
	uint32_t shards = rq->bs->b->shard_count;
	bool by_id = rq->api_version >= 13;
	uint32_t k = 0;

	for (int32_t t = 0; t < req->Topics.count; t++)
		op->entry_count += (uint32_t)SL_MAX(req->Topics.items[t].Partitions.count, 0);
	op->resp.Responses.count = SL_MAX(req->Topics.count, 0);
	op->resp.Responses.items = req_alloc(rq, (size_t)(op->resp.Responses.count + 1) *
						 sizeof(*op->resp.Responses.items));
	op->entries = req_alloc(rq, (size_t)(op->entry_count + 1) * sizeof(*op->entries));
	op->parts = req_alloc(rq, shards * sizeof(*op->parts));
	if (op->resp.Responses.items == NULL || op->entries == NULL || op->parts == NULL)
		return SL_ENOMEM;
	for (int32_t t = 0; t < req->Topics.count; t++) {
		const struct FetchRequest_FetchTopic *ft = &req->Topics.items[t];
		struct FetchResponse_FetchableTopicResponse *tr = &op->resp.Responses.items[t];
		int32_t n = SL_MAX(ft->Partitions.count, 0);
		const struct catalog_topic *topic =
			by_id ? catalog_snap_find_id(snap, &ft->TopicId)
			      : catalog_snap_find(snap, (const char *)ft->Topic.ptr,
						  (size_t)SL_MAX(ft->Topic.len, 0));
		kafka_init_fetch_response_fetchable_topic_response(tr);
		tr->Topic = ft->Topic;
		tr->TopicId = ft->TopicId;
		tr->Partitions.count = n;
		tr->Partitions.items = req_alloc(rq, (size_t)(n + 1) * sizeof(*tr->Partitions.items));
		if (tr->Partitions.items == NULL)
			return SL_ENOMEM;
		for (int32_t i = 0; i < n; i++, k++) {
			const struct FetchRequest_FetchPartition *fp = &ft->Partitions.items[i];
			struct FetchResponse_PartitionData *slot = &tr->Partitions.items[i];
			struct fetch_entry *e = &op->entries[k];
			kafka_init_fetch_response_partition_data(slot);
			slot->PartitionIndex = fp->Partition;
			slot->HighWatermark = -1;
			slot->Records = KSLICE_EMPTY;
			/* null for READ_UNCOMMITTED, empty when committed reads ask */
			slot->AbortedTransactions.count = req->IsolationLevel == 0 ? -1 : 0;
			e->slot = slot;
			if (topic == NULL) {
				e->error_code = by_id ? KERR_UNKNOWN_TOPIC_ID
						      : KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			if (fp->Partition < 0 || fp->Partition >= topic->partition_count) {
				e->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			e->topic_id = topic->id;
			e->index = fp->Partition;
			e->offset = fp->FetchOffset;
			e->leader_epoch = fp->CurrentLeaderEpoch;
			e->replica_id = rq->api_version >= 15 ? req->ReplicaState.ReplicaId
							      : req->ReplicaId;
			int32_t budget = SL_MIN(fp->PartitionMaxBytes, req->MaxBytes);
			e->max_bytes = budget > 0 ? (uint32_t)budget : 1;
			uint32_t owner = partition_owner(&topic->id, fp->Partition, shards);
			struct fetch_part *part = op->parts[owner];
			if (part == NULL) {
				part = req_alloc(rq, sizeof(*part));
				if (part == NULL)
					return SL_ENOMEM;
				part->op = op;
				part->shard = owner;
				op->parts[owner] = part;
			}
			e->part = part;
			if (part->tail != NULL)
				part->tail->next = e;
			else
				part->entries = e;
			part->tail = e;
			part->count++;
		}
	}
	SL_ASSERT(k == op->entry_count);
	return SL_OK;
}

enum sl_err api_fetch_handle(struct req *rq)
{
	const struct FetchRequest *req = rq->body;
	struct fetch_op *op = req_alloc(rq, sizeof(*op));

	if (op == NULL)
		return SL_ENOMEM;
	rq->api = op;
	op->rq = rq;
	op->req = req;
	timer_init(&op->timer, fetch_timer_fire);
	kafka_init_fetch_response(&op->resp);
	op->resp.SessionId = 0;
	if (req->SessionId != 0 || (req->SessionEpoch != -1 && req->SessionEpoch != 0)) {
		op->resp.ErrorCode = req->SessionId != 0 ? KERR_FETCH_SESSION_ID_NOT_FOUND
							 : KERR_INVALID_FETCH_SESSION_EPOCH;
		op->resp.Responses.count = 0;
		op->phase = FETCH_RESPONDING;
		req_respond(rq, &op->resp);
		return SL_OK;
	}
	if (fetch_prepare(op) != SL_OK)
		return SL_ENOMEM;
	rq->cancel = fetch_cancel_hook;
	fetch_read_all(op);
	return SL_OK;
}
