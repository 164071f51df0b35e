/*
 * partition.c — the partitions a shard owns (see partition.h).
 *
 * Time: plog wants wall-clock milliseconds (segment creation times and
 * retention compare with record timestamps), while shard timers run on the
 * shard's monotonic clock. A plog deadline is turned into a timer deadline
 * by its distance from "now" on the wall clock.
 *
 * Re-entry: plog_append may dispatch completions (ring_get_sqe on a full
 * SQ), so an append's completion can run while another partition_append
 * is on the stack; the parked queue is drained under a guard (`kicking`)
 * so it is never walked twice at once.
 *
 * Idempotent producers: each OPEN partition has a producer_state (created
 * and rebuilt from the log when it opens, snapshotted at clean close
 * before plog_close, expired on the retention timer). The check runs in
 * partition_submit, right before plog_append, so reservations follow the
 * order appends reach the log. A duplicate is never written: it goes on
 * the `dups` list, answered on the next loop turn by `dup_timer` (done
 * must not run inside partition_append), or, while its original is still
 * in flight, by a plog flush waiter once the original is durable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "partition.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "catalog.h"
#include "config.h"
#include "kerr.h"
#include "log.h"
#include "mem.h"
#include "compact.h"
#include "pcompact.h"
#include "plog_config.h"
#include "topic_config.h"

#define PARTITION_BUCKETS_MIN 64u
/* Waiters woken per high-watermark move (a bound, not a expected count). */
#define PARTITION_WAKE_MAX (1u << 20)
#define PARTITION_KICK_MAX 4096u

#define PARTITION_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct partition {
	struct partition_set *set;
	struct partition *hnext;         /* hash chain */
	struct kuuid topic_id;
	int32_t index;
	char *dir;                       /* log dir path (also the log-line name) */
	struct plog *log;                /* NULL: FAILED */
	struct timer tick;
	struct partition_append *parked_head, *parked_tail;
	uint32_t parked_count;
	struct partition_waiter waiters; /* sentinel of a circular list */
	uint32_t waiter_count;
	uint32_t appends_inflight;
	uint32_t replica_appends_inflight; /* of appends_inflight: partition_append_replica */
	int64_t last_end;                /* end offset the waiters last saw */
	struct producer_state *pstate;   /* idempotent producers; NULL if none */
	struct partition_append *dups_head, *dups_tail; /* duplicates to answer */
	uint32_t dups_count;
	uint32_t dups_waiting;           /* duplicates waiting on a flush */
	struct timer dup_timer;
	struct tcfg_effective eff;       /* topic settings it runs with */
	struct pcompact compact;         /* cleanup.policy=compact settings (pcompact.h) */
	bool closing;
	bool kicking;
	bool seen;                       /* mark for partition_set_sync */
	/* cluster mode (partition.h "replication's hooks") */
	bool hw_managed;                 /* hw is set by replication, not the log end */
	int64_t hw;                      /* the high watermark while hw_managed */
	void *repl;                      /* replication's per-partition state */
};

/* The high watermark reads and waits see (invariant 1). */
static int64_t partition_hw_now(const struct partition *p)
{
	SL_ASSERT(p->log != NULL);
	return p->hw_managed ? p->hw : plog_end_offset(p->log);
}

static int64_t partition_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a over the 16 id bytes and the big-endian index. */
static uint64_t partition_hash(const struct kuuid *id, int32_t index)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint8_t tail[4] = { (uint8_t)((uint32_t)index >> 24), (uint8_t)((uint32_t)index >> 16),
			    (uint8_t)((uint32_t)index >> 8), (uint8_t)index };

	for (size_t i = 0; i < sizeof(id->b); i++)
		h = (h ^ id->b[i]) * 0x100000001b3ull;
	for (size_t i = 0; i < sizeof(tail); i++)
		h = (h ^ tail[i]) * 0x100000001b3ull;
	/* Mix the high bits down: a modulus by a small N sees them too. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

uint32_t partition_owner(const struct kuuid *topic_id, int32_t index, uint32_t shard_count)
{
	SL_ASSERT(shard_count > 0 && index >= 0);
	return (uint32_t)(partition_hash(topic_id, index) % shard_count);
}

/* ---- timers ---- */

/* Re-arms p's tick timer from plog_next_deadline_ms (invariant 2). */
static void partition_tick_arm(struct partition *p)
{
	struct shard *sh = p->set->sh;
	int64_t deadline_ms;

	if (p->log == NULL || p->closing) {
		timer_cancel(&sh->timers, &p->tick);
		return;
	}
	deadline_ms = plog_next_deadline_ms(p->log);
	if (deadline_ms == INT64_MAX) {
		timer_cancel(&sh->timers, &p->tick);
		return;
	}
	int64_t delay_ms = deadline_ms - partition_now_ms();
	if (delay_ms < 0)
		delay_ms = 0;
	if (delay_ms > INT64_MAX / 2000000)
		delay_ms = INT64_MAX / 2000000;
	if (timer_rearm(&sh->timers, &p->tick, shard_now_ns(sh) + delay_ms * 1000000) != SL_OK)
		LOG_W(sh->id, "partition %s: timer table full, time-based flush delayed", p->dir);
}

static void partition_tick_fire(struct timer *t, void *ctx)
{
	struct partition *p = PARTITION_CONTAINER_OF(t, struct partition, tick);

	(void)ctx;
	if (p->log == NULL || p->closing)
		return;
	if (plog_tick(p->log, partition_now_ms()) != SL_OK)
		LOG_W(p->set->sh->id, "partition %s: plog_tick failed", p->dir);
	partition_tick_arm(p);
}

static void partition_retention_fire(struct timer *t, void *ctx)
{
	struct partition_set *ps = PARTITION_CONTAINER_OF(t, struct partition_set, retention);
	int64_t now = partition_now_ms();

	(void)ctx;
	if (ps->closed)
		return;
	for (uint32_t b = 0; b < ps->bucket_count; b++) {
		for (struct partition *p = ps->buckets[b]; p != NULL; p = p->hnext) {
			uint32_t deleted = 0;
			if (p->log == NULL || p->closing)
				continue;
			if (p->pstate != NULL && producer_state_expire(p->pstate, now) > 0)
				LOG_D(ps->sh->id, "partition %s: expired idle producers", p->dir);
			/* Compaction (pcompact.h) runs on this timer too; a compact-only
			 * topic has no time/size retention, as in Kafka. */
			(void)pcompact_check(p->log, &p->compact, p->dir, ps->sh, now);
			if (p->compact.compact && !p->compact.delete_policy)
				continue;
			enum sl_err err = plog_retention_enforce(p->log, now, plog_end_offset(p->log),
								 &deleted);
			if (err != SL_OK)
				LOG_W(ps->sh->id, "partition %s: retention failed: %s", p->dir,
				      sl_err_str(err));
			else if (deleted > 0)
				LOG_I(ps->sh->id, "partition %s: retention deleted %u segment(s)",
				      p->dir, deleted);
		}
	}
	if (timer_add(&ps->sh->timers, &ps->retention,
		      shard_now_ns(ps->sh) + ps->retention_check_ms * 1000000) != SL_OK)
		LOG_W(ps->sh->id, "partitions: timer table full, retention checks stopped");
}

/* ---- waiters ---- */

void partition_wait(struct partition *p, struct partition_waiter *w, partition_waiter_fn *fn)
{
	SL_ASSERT(w->p == NULL && fn != NULL);
	w->fn = fn;
	w->p = p;
	w->prev = p->waiters.prev;
	w->next = &p->waiters;
	p->waiters.prev->next = w;
	p->waiters.prev = w;
	p->waiter_count++;
}

void partition_unwait(struct partition_waiter *w)
{
	struct partition *p = w->p;

	if (p == NULL)
		return;
	SL_ASSERT(p->waiter_count > 0);
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->p = NULL;
	p->waiter_count--;
}

/*
 * Wakes the waiters present on entry (invariant 4); a waiter re-added by
 * its own function waits for the next move.
 */
static void partition_wake(struct partition *p)
{
	uint32_t n = p->waiter_count;

	SL_ASSERT(n <= PARTITION_WAKE_MAX);
	for (uint32_t i = 0; i < n && p->waiters.next != &p->waiters; i++) {
		struct partition_waiter *w = p->waiters.next;
		partition_unwait(w);
		w->fn(w);
	}
}

/* ---- appends ---- */

static void partition_kick(struct partition *p);

static void partition_append_done(struct plog_append *pa)
{
	struct partition_append *a = PARTITION_CONTAINER_OF(pa, struct partition_append, pa);
	struct partition *p = a->p;

	SL_ASSERT(p != NULL && p->appends_inflight > 0);
	p->appends_inflight--;
	if (p->pstate != NULL) {
		if (pa->res == SL_OK)
			producer_state_complete(p->pstate, &a->rsv);
		else
			producer_state_abort(p->pstate, &a->rsv);
	}
	a->error_code = pa->res == SL_OK ? KERR_NONE : KERR_KAFKA_STORAGE_ERROR;
	a->base_offset = pa->base_offset;
	a->log_start_offset = p->log != NULL ? plog_start_offset(p->log) : -1;
	a->p = NULL;
	/* `a` belongs to the caller again once done runs: do not touch it after. */
	a->done(a);
	partition_kick(p);
}

/* Answers every queued duplicate (NONE, the original's offsets). */
static void partition_dups_deliver(struct partition *p)
{
	for (uint32_t n = 0; n <= PARTITION_WAKE_MAX && p->dups_head != NULL; n++) {
		struct partition_append *a = p->dups_head;
		p->dups_head = a->next;
		if (p->dups_head == NULL)
			p->dups_tail = NULL;
		SL_ASSERT(p->dups_count > 0);
		p->dups_count--;
		a->error_code = KERR_NONE;
		a->log_start_offset = p->log != NULL ? plog_start_offset(p->log) : -1;
		a->p = NULL;
		a->done(a);
	}
	SL_ASSERT(p->dups_head != NULL || p->dups_count == 0);
}

static void partition_dup_fire(struct timer *t, void *ctx)
{
	struct partition *p = PARTITION_CONTAINER_OF(t, struct partition, dup_timer);

	(void)ctx;
	partition_dups_deliver(p);
	if (p->dups_head != NULL &&
	    timer_rearm(&p->set->sh->timers, &p->dup_timer, shard_now_ns(p->set->sh)) != SL_OK)
		LOG_W(p->set->sh->id, "partition %s: timer table full, duplicates delayed", p->dir);
}

/* A pending duplicate's original is durable (SL_OK) or lost (SL_EIO). */
static void partition_dup_flushed(struct plog_flush_waiter *w, enum sl_err res)
{
	struct partition_append *a = PARTITION_CONTAINER_OF(w, struct partition_append, fw);
	struct partition *p = a->p;

	SL_ASSERT(p != NULL && p->dups_waiting > 0);
	p->dups_waiting--;
	a->error_code = res == SL_OK ? KERR_NONE : KERR_KAFKA_STORAGE_ERROR;
	if (res != SL_OK)
		a->base_offset = -1;
	a->log_start_offset = p->log != NULL ? plog_start_offset(p->log) : -1;
	a->p = NULL;
	a->done(a);
}

/*
 * `a` repeats a batch already appended (a->rsv describes the original):
 * answers the original's base offset later, without writing. KERR_NONE
 * (done will run), or the error to report (done will not run).
 */
static int16_t partition_dup_answer(struct partition *p, struct partition_append *a)
{
	enum plog_flush_state st = PLOG_FLUSH_DURABLE;

	SL_ASSERT(a->rsv.producer_id < 0 && a->rsv.first_offset >= 0);
	a->base_offset = a->rsv.first_offset;
	a->p = p;
	if (a->rsv.pending) {
		a->fw.done = partition_dup_flushed;
		enum sl_err err = plog_flush_wait(p->log, &a->fw, &st);
		if (err != SL_OK) {
			a->p = NULL;
			return kerr_from_storage(err);
		}
		if (st == PLOG_FLUSH_QUEUED) {
			p->dups_waiting++;
			return KERR_NONE;
		}
	}
	a->next = NULL;
	if (p->dups_tail != NULL)
		p->dups_tail->next = a;
	else
		p->dups_head = a;
	p->dups_tail = a;
	p->dups_count++;
	if (timer_rearm(&p->set->sh->timers, &p->dup_timer, shard_now_ns(p->set->sh)) != SL_OK)
		LOG_W(p->set->sh->id, "partition %s: timer table full, duplicates delayed", p->dir);
	return KERR_NONE;
}

enum partition_step {
	PARTITION_STEP_APPEND = 0,      /* go on to plog_append (reserved if idempotent) */
	PARTITION_STEP_PARK,            /* too many in flight for the producer */
	PARTITION_STEP_TAKEN,           /* duplicate: answered without a write */
};

/*
 * The producer-state check of one submit (file comment). Sets *step;
 * returns KERR_NONE or the error of a refused batch (nothing reserved).
 */
static int16_t partition_producer_check(struct partition *p, struct partition_append *a,
					enum partition_step *step)
{
	struct batch_header h;
	struct producer_batch pb;

	*step = PARTITION_STEP_APPEND;
	a->rsv.producer_id = -1;
	if (p->pstate == NULL)
		return KERR_NONE;
	if (batch_header_parse(a->buf, a->len, &h) != SL_OK)
		return KERR_CORRUPT_MESSAGE;
	if (h.producer_id < 0)
		return KERR_NONE;
	producer_batch_from_header(&pb, &h);
	switch (producer_state_check_and_reserve(p->pstate, &pb, plog_next_offset(p->log),
						 &a->rsv)) {
	case PRODUCER_CHECK_OK:
		return KERR_NONE;
	case PRODUCER_CHECK_DUPLICATE:
		*step = PARTITION_STEP_TAKEN;
		return partition_dup_answer(p, a);
	case PRODUCER_CHECK_EAGAIN:
		*step = PARTITION_STEP_PARK;
		return KERR_NONE;
	case PRODUCER_CHECK_OUT_OF_ORDER:
		return KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
	case PRODUCER_CHECK_INVALID_EPOCH:
		return KERR_INVALID_PRODUCER_EPOCH;
	case PRODUCER_CHECK_INVALID_RECORD:
		return KERR_INVALID_RECORD;
	}
	return KERR_INVALID_RECORD;
}

/*
 * Hands `a` to the plog after the producer-state check. KERR_NONE (queued
 * in the plog, parked when *parked, or a duplicate answered later), or the
 * error to report.
 */
static int16_t partition_submit(struct partition *p, struct partition_append *a, bool *parked)
{
	enum partition_step step;

	*parked = false;
	int16_t kerr = partition_producer_check(p, a, &step);
	if (kerr != KERR_NONE || step == PARTITION_STEP_TAKEN)
		return kerr;
	if (step == PARTITION_STEP_PARK) {
		*parked = true;
		return KERR_NONE;
	}
	a->pa.buf = a->buf;
	a->pa.len = a->len;
	a->pa.done = partition_append_done;
	a->p = p;
	enum sl_err err = plog_append(p->log, &a->pa, partition_now_ms());
	if (err == SL_OK) {
		SL_ASSERT(a->rsv.producer_id < 0 || a->pa.base_offset == a->rsv.first_offset);
		p->appends_inflight++;
		return KERR_NONE;
	}
	if (p->pstate != NULL)
		producer_state_abort(p->pstate, &a->rsv);
	a->rsv.producer_id = -1;
	a->p = NULL;
	if (err == SL_EAGAIN) {
		*parked = true;
		return KERR_NONE;
	}
	if (err == SL_EINVAL)
		return KERR_RECORD_LIST_TOO_LARGE;
	return kerr_from_storage(err);
}

static void partition_park(struct partition *p, struct partition_append *a)
{
	a->next = NULL;
	a->p = p;
	if (p->parked_tail != NULL)
		p->parked_tail->next = a;
	else
		p->parked_head = a;
	p->parked_tail = a;
	p->parked_count++;
}

/*
 * After a completion: resubmits parked appends in order (invariant 3),
 * fails them if the partition is closing or failed, wakes fetch waiters if
 * the high watermark moved, and re-arms the tick timer.
 */
static void partition_kick(struct partition *p)
{
	if (p->kicking)
		return;
	p->kicking = true;
	for (uint32_t n = 0; n < PARTITION_KICK_MAX && p->parked_head != NULL; n++) {
		struct partition_append *a = p->parked_head;
		bool parked = false;
		int16_t kerr = KERR_NOT_LEADER_OR_FOLLOWER;
		if (!p->closing && p->log != NULL)
			kerr = partition_submit(p, a, &parked);
		if (parked)
			break;
		p->parked_head = a->next;
		if (p->parked_head == NULL)
			p->parked_tail = NULL;
		p->parked_count--;
		if (kerr != KERR_NONE) {
			a->p = NULL;
			a->error_code = kerr;
			a->base_offset = -1;
			a->log_start_offset = -1;
			a->done(a);
		}
	}
	p->kicking = false;
	if (p->log != NULL && plog_end_offset(p->log) != p->last_end) {
		p->last_end = plog_end_offset(p->log);
		if (p->set->hooks != NULL && p->set->hooks->on_end != NULL && !p->closing)
			p->set->hooks->on_end(p, p->last_end);
		partition_wake(p);
	}
	partition_tick_arm(p);
}

/*
 * Kafka's record-set rules for producer ids (partition.h): one batch per
 * set from an idempotent producer, no transactional batch. The set was
 * validated by the produce handler.
 */
static int16_t partition_batch_rules(const uint8_t *buf, size_t len)
{
	struct batch_header h;
	size_t pos = 0;
	uint32_t n = 0;
	bool idempotent = false;

	for (; n < (1u << 24) && pos < len; n++) {
		if (batch_header_parse(buf + pos, len - pos, &h) != SL_OK)
			return KERR_CORRUPT_MESSAGE;
		if (h.attributes & BATCH_ATTR_TRANSACTIONAL)
			return KERR_INVALID_TXN_STATE;
		if (h.producer_id >= 0)
			idempotent = true;
		pos += batch_size_bytes(&h);
	}
	if (idempotent && n > 1)
		return KERR_INVALID_RECORD;
	return KERR_NONE;
}

/*
 * The topic's rules for an append: every batch within max.message.bytes
 * (MESSAGE_TOO_LARGE), and under message.timestamp.type=LogAppendTime the
 * batches' timestamps rewritten to now (CRC recomputed).
 */
static int16_t partition_topic_rules(struct partition *p, struct partition_append *a)
{
	struct batch_header h;
	size_t pos = 0;
	int64_t now = partition_now_ms();

	for (uint32_t n = 0; n < PARTITION_KICK_MAX * 16u && pos < a->len; n++) {
		if (batch_header_parse(a->buf + pos, a->len - pos, &h) != SL_OK)
			return KERR_CORRUPT_MESSAGE;
		size_t size = batch_size_bytes(&h);
		if (size > (size_t)SL_MAX(p->eff.max_message_bytes, 0))
			return KERR_MESSAGE_TOO_LARGE;
		if (p->eff.log_append_time)
			batch_set_log_append_time(a->buf + pos, now);
		pos += size;
	}
	SL_ASSERT(pos <= a->len);
	return KERR_NONE;
}

int16_t partition_append(struct partition *p, struct partition_append *a)
{
	bool parked;
	int16_t kerr;

	SL_ASSERT(a->buf != NULL && a->len > 0 && a->done != NULL);
	if (p->log == NULL)
		return KERR_KAFKA_STORAGE_ERROR;
	if (p->closing)
		return KERR_NOT_LEADER_OR_FOLLOWER;
	kerr = partition_batch_rules(a->buf, a->len);
	if (kerr != KERR_NONE)
		return kerr;
	kerr = partition_topic_rules(p, a);
	if (kerr != KERR_NONE)
		return kerr;
	if (p->parked_head != NULL) {
		partition_park(p, a);
		return KERR_NONE;
	}
	kerr = partition_submit(p, a, &parked);
	if (kerr == KERR_NONE && parked)
		partition_park(p, a);
	SL_ASSERT(kerr != KERR_NONE || a->p == p);
	return kerr;
}

/* ---- a follower's appends and truncation (replication) ---- */

static void partition_replica_done(struct plog_append *pa)
{
	struct partition_append *a = PARTITION_CONTAINER_OF(pa, struct partition_append, pa);
	struct partition *p = a->p;

	SL_ASSERT(p != NULL && p->appends_inflight > 0 && p->replica_appends_inflight > 0);
	p->appends_inflight--;
	p->replica_appends_inflight--;
	a->error_code = pa->res == SL_OK ? KERR_NONE : KERR_KAFKA_STORAGE_ERROR;
	a->base_offset = pa->base_offset;
	a->log_start_offset = p->log != NULL ? plog_start_offset(p->log) : -1;
	a->p = NULL;
	a->done(a);
	partition_kick(p);
}

/*
 * Records the idempotent batches of a follower's append in the producer
 * state, in offset order, as completed (Kafka's follower updates it from
 * the batches it copies; the leader already checked them). Runs with no
 * other append in flight, so no reservation of a client's append is
 * pending. A batch the local rules refuse (state that expired here but not
 * on the leader) is logged and skipped.
 */
static void partition_replica_producers(struct partition *p, const uint8_t *buf, size_t len)
{
	struct batch_header h;
	struct producer_batch pb;
	struct producer_reservation rsv;
	size_t pos = 0;

	for (uint32_t n = 0; n < PARTITION_KICK_MAX * 16u && pos < len; n++) {
		if (batch_header_parse(buf + pos, len - pos, &h) != SL_OK)
			return;
		pos += batch_size_bytes(&h);
		if (h.producer_id < 0 || (h.attributes & BATCH_ATTR_CONTROL) != 0)
			continue;
		producer_batch_from_header(&pb, &h);
		enum producer_check c = producer_state_check_and_reserve(p->pstate, &pb,
									 h.base_offset, &rsv);
		if (c == PRODUCER_CHECK_OK)
			producer_state_complete(p->pstate, &rsv);
		else
			LOG_D(p->set->sh->id, "partition %s: replicated batch at %lld of producer "
			      "%lld not recorded (%s)", p->dir, (long long)h.base_offset,
			      (long long)h.producer_id, producer_check_str(c));
	}
}

int16_t partition_append_replica(struct partition *p, struct partition_append *a)
{
	SL_ASSERT(a->buf != NULL && a->len > 0 && a->done != NULL);
	if (p->log == NULL)
		return KERR_KAFKA_STORAGE_ERROR;
	if (p->closing)
		return KERR_NOT_LEADER_OR_FOLLOWER;
	/* A client's append still in flight or parked (leadership just moved):
	 * the follower retries once it has drained. */
	if (p->parked_head != NULL || p->appends_inflight > p->replica_appends_inflight)
		return KERR_REQUEST_TIMED_OUT;
	a->rsv.producer_id = -1;
	a->pa.buf = a->buf;
	a->pa.len = a->len;
	a->pa.done = partition_replica_done;
	a->p = p;
	enum sl_err err = plog_append_replica(p->log, &a->pa, partition_now_ms());
	if (err != SL_OK) {
		a->p = NULL;
		if (err == SL_ECORRUPT)
			return KERR_CORRUPT_MESSAGE;
		return kerr_from_storage(err);
	}
	p->appends_inflight++;
	p->replica_appends_inflight++;
	if (p->pstate != NULL)
		partition_replica_producers(p, a->buf, a->len);
	return KERR_NONE;
}

/* After a truncation: the end the hooks and waiters saw, the HW clamped. */
static void partition_truncated(struct partition *p, int64_t hw_before)
{
	int64_t end = plog_end_offset(p->log);

	p->last_end = end;
	if (p->hw_managed)
		partition_hw_set(p, hw_before < end ? hw_before : end);
	else
		partition_wake(p);
	partition_tick_arm(p);
	SL_ASSERT(partition_hw_now(p) <= end);
}

/* SL_OK when p may be truncated now (partition.h). */
static enum sl_err partition_truncate_admit(const struct partition *p)
{
	if (p->log == NULL)
		return SL_EIO;
	if (p->closing)
		return SL_ECLOSED;
	if (p->appends_inflight > 0 || p->parked_head != NULL || p->dups_waiting > 0 ||
	    p->compact.job != NULL)
		return SL_EAGAIN;
	return SL_OK;
}

enum sl_err partition_truncate_to(struct partition *p, int64_t offset)
{
	enum sl_err err = partition_truncate_admit(p);

	if (err != SL_OK)
		return err;
	if (offset >= plog_end_offset(p->log))
		return SL_OK;
	int64_t hw = partition_hw_now(p);
	err = plog_truncate_to(p->log, offset);
	if (err != SL_OK)
		return err;
	if (p->pstate != NULL) {
		enum sl_err perr = producer_state_rebuild(p->pstate, p->log, p->dir,
							  partition_now_ms());
		if (perr != SL_OK)
			LOG_E(p->set->sh->id, "partition %s: producer state rebuild after truncation "
			      "failed: %s", p->dir, sl_err_str(perr));
	}
	partition_truncated(p, hw);
	SL_ASSERT(plog_end_offset(p->log) <= offset);
	return SL_OK;
}

enum sl_err partition_truncate_fully(struct partition *p, int64_t start_offset)
{
	enum sl_err err = partition_truncate_admit(p);

	if (err != SL_OK)
		return err;
	SL_ASSERT(start_offset >= 0);
	err = plog_truncate_fully(p->log, start_offset);
	if (err != SL_OK)
		return err;
	if (p->pstate != NULL && producer_state_reset(p->pstate, p->dir) != SL_OK)
		LOG_E(p->set->sh->id, "partition %s: producer state reset failed", p->dir);
	partition_truncated(p, start_offset);
	SL_ASSERT(plog_end_offset(p->log) == start_offset);
	return SL_OK;
}

/* ---- reads ---- */

int16_t partition_offsets(const struct partition *p, struct partition_offsets *out)
{
	if (p->log == NULL) {
		out->log_start_offset = out->high_watermark = out->last_stable_offset = -1;
		return KERR_KAFKA_STORAGE_ERROR;
	}
	out->log_start_offset = plog_start_offset(p->log);
	out->high_watermark = partition_hw_now(p);
	out->last_stable_offset = out->high_watermark;
	SL_ASSERT(out->log_start_offset <= out->high_watermark);
	return KERR_NONE;
}

int16_t partition_read_upto(struct partition *p, int64_t offset, uint32_t max_bytes,
			    bool to_log_end, struct plog_slice *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (p->log == NULL)
		return KERR_KAFKA_STORAGE_ERROR;
	if (p->closing)
		return KERR_NOT_LEADER_OR_FOLLOWER;
	/* A client's offset: INT64_MIN must not reach plog_read's offset - 1. */
	if (offset < 0)
		return KERR_OFFSET_OUT_OF_RANGE;
	enum sl_err err = plog_read(p->log, offset, max_bytes,
				    to_log_end ? plog_end_offset(p->log) : partition_hw_now(p), out);
	if (err != SL_OK) {
		memset(out, 0, sizeof(*out));
		out->fd = -1;
	}
	return kerr_from_storage(err);
}

int16_t partition_read(struct partition *p, int64_t offset, uint32_t max_bytes,
		       struct plog_slice *out)
{
	return partition_read_upto(p, offset, max_bytes, false, out);
}

/* ---- replication's hooks (cluster mode) ---- */

int64_t partition_log_end(const struct partition *p)
{
	return p->log != NULL ? plog_end_offset(p->log) : -1;
}

int64_t partition_hw(const struct partition *p)
{
	return p->log != NULL ? partition_hw_now(p) : -1;
}

void partition_hw_set(struct partition *p, int64_t hw)
{
	if (p->log == NULL)
		return;
	int64_t lo = plog_start_offset(p->log), hi = plog_end_offset(p->log);
	int64_t before = partition_hw_now(p);
	p->hw = hw < lo ? lo : hw > hi ? hi : hw;
	p->hw_managed = true;
	if (p->hw != before)
		partition_wake(p);
}

void partition_hw_advance(struct partition *p, int64_t hw)
{
	if (p->log == NULL || !p->hw_managed)
		return;
	int64_t hi = plog_end_offset(p->log);
	if (hw > hi)
		hw = hi;
	if (hw <= p->hw)
		return;
	p->hw = hw;
	partition_wake(p);
}

void partition_hw_unmanage(struct partition *p)
{
	bool moved = p->hw_managed && p->log != NULL && p->hw != plog_end_offset(p->log);
	p->hw_managed = false;
	if (moved)
		partition_wake(p);
}

bool partition_hw_managed(const struct partition *p)
{
	return p->hw_managed;
}

void *partition_repl(const struct partition *p)
{
	return p->repl;
}

void partition_repl_set(struct partition *p, void *repl)
{
	p->repl = repl;
}

const struct kuuid *partition_topic_id(const struct partition *p)
{
	return &p->topic_id;
}

int32_t partition_index(const struct partition *p)
{
	return p->index;
}

const char *partition_dir(const struct partition *p)
{
	return p->dir;
}

struct partition_set *partition_set_of(const struct partition *p)
{
	return p->set;
}

struct plog *partition_log(struct partition *p)
{
	return p->closing ? NULL : p->log;
}

/* ---- the set ---- */

enum sl_err partition_set_init(struct partition_set *ps, struct shard *sh,
			       const struct plog_config *cfg, const char *log_dirs,
			       int64_t retention_check_ms)
{
	memset(ps, 0, sizeof(*ps));
	ps->sh = sh;
	ps->shard_count = sh->xmsg.shard_count;
	ps->plog_cfg = *cfg;
	ps->plog_cfg.shard_id = (int)sh->id;
	ps->log_dirs = log_dirs;
	ps->retention_check_ms = retention_check_ms > 0 ? retention_check_ms : 300000;
	ps->bucket_count = PARTITION_BUCKETS_MIN;
	ps->buckets = mem_zalloc(sh, ps->bucket_count * sizeof(*ps->buckets));
	if (ps->buckets == NULL)
		return SL_ENOMEM;
	timer_init(&ps->retention, partition_retention_fire);
	if (timer_add(&sh->timers, &ps->retention,
		      shard_now_ns(sh) + ps->retention_check_ms * 1000000) != SL_OK)
		LOG_W(sh->id, "partitions: timer table full, no retention checks");
	return SL_OK;
}

struct partition *partition_set_find(const struct partition_set *ps, const struct kuuid *id,
				     int32_t index)
{
	if (ps->buckets == NULL || index < 0)
		return NULL;
	uint32_t b = (uint32_t)partition_hash(id, index) & (ps->bucket_count - 1);
	for (struct partition *p = ps->buckets[b]; p != NULL; p = p->hnext)
		if (p->index == index && memcmp(p->topic_id.b, id->b, sizeof(id->b)) == 0)
			return p;
	return NULL;
}

/* Doubles the bucket array when the load passes 1. SL_OK or SL_ENOMEM (kept as is). */
static enum sl_err partition_set_grow(struct partition_set *ps)
{
	uint32_t n = ps->bucket_count * 2;
	struct partition **nb;

	if (ps->count < ps->bucket_count)
		return SL_OK;
	nb = mem_zalloc(ps->sh, n * sizeof(*nb));
	if (nb == NULL)
		return SL_ENOMEM;
	for (uint32_t b = 0; b < ps->bucket_count; b++) {
		struct partition *p = ps->buckets[b];
		while (p != NULL) {
			struct partition *next = p->hnext;
			uint32_t nbk = (uint32_t)partition_hash(&p->topic_id, p->index) & (n - 1);
			p->hnext = nb[nbk];
			nb[nbk] = p;
			p = next;
		}
	}
	mem_free(ps->sh, ps->buckets);
	ps->buckets = nb;
	ps->bucket_count = n;
	return SL_OK;
}

/*
 * Picks the partition's directory: an existing `<dir>/<topic>-<index>` in
 * any log dir, else the log dir chosen by the partition hash. Writes it
 * into path[PATH_MAX]. SL_OK or SL_ERANGE (too long / no log dir).
 */
static enum sl_err partition_dir_pick(const struct partition_set *ps, const char *topic,
				      const struct kuuid *id, int32_t index, char *path)
{
	char base[PATH_MAX];
	int n = config_list_count(ps->log_dirs);
	struct stat st;

	if (n <= 0)
		return SL_ERANGE;
	for (int i = 0; i < n; i++) {
		if (config_list_get(ps->log_dirs, i, base, sizeof(base)) != SL_OK)
			return SL_ERANGE;
		if (snprintf(path, PATH_MAX, "%s/%s-%d", base, topic, index) >= PATH_MAX)
			return SL_ERANGE;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return SL_OK;
	}
	int pick = (int)(partition_hash(id, index) % (uint64_t)n);
	if (config_list_get(ps->log_dirs, pick, base, sizeof(base)) != SL_OK)
		return SL_ERANGE;
	if (snprintf(path, PATH_MAX, "%s/%s-%d", base, topic, index) >= PATH_MAX)
		return SL_ERANGE;
	return SL_OK;
}

/*
 * Creates p's producer state and rebuilds it from the log (snapshot plus
 * the batches after it). On failure the partition still serves, without
 * de-duplication (logged): refusing every write would be worse.
 */
static void partition_open_producers(struct partition_set *ps, struct partition *p)
{
	struct producer_state_config cfg;

	producer_state_config_default(&cfg);
	cfg.shard_id = (int)ps->sh->id;
	if (producer_state_create(&p->pstate, &cfg) != SL_OK) {
		p->pstate = NULL;
		LOG_E(ps->sh->id, "partition %s: no memory for producer state; "
		      "idempotent producers are not de-duplicated", p->dir);
		return;
	}
	enum sl_err err = producer_state_rebuild(p->pstate, p->log, p->dir, partition_now_ms());
	if (err != SL_OK)
		LOG_E(ps->sh->id, "partition %s: producer state rebuild failed: %s (starting empty)",
		      p->dir, sl_err_str(err));
}

/* Opens the plog of p (dir set) and checks/writes partition.metadata. */
static void partition_open_log(struct partition_set *ps, struct partition *p)
{
	struct kuuid on_disk;
	enum sl_err err;

	/* Finishes or discards a compaction a crash interrupted (logged). */
	(void)compact_recover(p->dir, (int)ps->sh->id);
	err = plog_open(&p->log, &ps->sh->ring, p->dir, &p->eff.plog, partition_now_ms());
	if (err != SL_OK) {
		p->log = NULL;
		LOG_E(ps->sh->id, "partition %s: cannot open: %s (partition offline)", p->dir,
		      sl_err_str(err));
		return;
	}
	err = catalog_partition_metadata_read(p->dir, &on_disk);
	if (err == SL_OK && memcmp(on_disk.b, p->topic_id.b, sizeof(on_disk.b)) != 0) {
		LOG_E(ps->sh->id, "partition %s: partition.metadata names another topic id; "
		      "partition offline", p->dir);
		plog_close(p->log);
		p->log = NULL;
		return;
	}
	if (err != SL_OK && catalog_partition_metadata_write(p->dir, &p->topic_id) != SL_OK)
		LOG_W(ps->sh->id, "partition %s: cannot write partition.metadata", p->dir);
	p->last_end = plog_end_offset(p->log);
	partition_open_producers(ps, p);
	LOG_D(ps->sh->id, "partition %s open: offsets [%lld, %lld)", p->dir,
	      (long long)plog_start_offset(p->log), (long long)plog_end_offset(p->log));
}

/* Creates and opens partition (topic, index). SL_OK or SL_ENOMEM. */
static enum sl_err partition_add(struct partition_set *ps, const char *topic,
				 const struct kuuid *id, int32_t index,
				 const struct tcfg_effective *eff)
{
	char path[PATH_MAX];
	struct partition *p;

	if (partition_set_grow(ps) != SL_OK)
		return SL_ENOMEM;
	if (partition_dir_pick(ps, topic, id, index, path) != SL_OK) {
		LOG_E(ps->sh->id, "partition %s-%d: no usable log dir path", topic, index);
		return SL_OK;
	}
	p = mem_zalloc(ps->sh, sizeof(*p));
	if (p == NULL)
		return SL_ENOMEM;
	size_t plen = strlen(path);
	p->dir = mem_alloc(ps->sh, plen + 1);
	if (p->dir == NULL) {
		mem_free(ps->sh, p);
		return SL_ENOMEM;
	}
	memcpy(p->dir, path, plen + 1);
	p->set = ps;
	p->topic_id = *id;
	p->index = index;
	p->eff = *eff;
	p->waiters.prev = p->waiters.next = &p->waiters;
	timer_init(&p->tick, partition_tick_fire);
	timer_init(&p->dup_timer, partition_dup_fire);
	p->seen = true;
	partition_open_log(ps, p);
	uint32_t b = (uint32_t)partition_hash(id, index) & (ps->bucket_count - 1);
	p->hnext = ps->buckets[b];
	ps->buckets[b] = p;
	ps->count++;
	partition_tick_arm(p);
	return SL_OK;
}

/* Closes and frees p (already unlinked from the set). */
static void partition_free(struct partition_set *ps, struct partition *p)
{
	p->closing = true;
	timer_cancel(&ps->sh->timers, &p->tick);
	partition_kick(p);          /* fails the parked appends */
	partition_wake(p);          /* waiters see a closing partition */
	SL_ASSERT(p->parked_head == NULL);
	timer_cancel(&ps->sh->timers, &p->dup_timer);
	partition_dups_deliver(p);  /* their originals completed: answer them */
	/* A follower's append in flight already recorded its batches in the
	 * producer state (partition_replica_producers) above the log end: no
	 * snapshot then (the next open replays the log instead). */
	if (p->log != NULL && p->pstate != NULL && !plog_failed(p->log) &&
	    p->replica_appends_inflight == 0 &&
	    producer_state_snapshot_write(p->pstate, p->dir, plog_end_offset(p->log)) != SL_OK)
		LOG_W(ps->sh->id, "partition %s: producer state snapshot failed", p->dir);
	pcompact_stop(&p->compact);  /* cancels a background compaction job */
	if (ps->hooks != NULL && ps->hooks->on_close != NULL)
		ps->hooks->on_close(p);  /* replication lets go of p (p->repl) */
	SL_ASSERT(p->repl == NULL);
	if (p->log != NULL) {
		enum sl_err err = plog_close(p->log);
		if (err != SL_OK)
			LOG_E(ps->sh->id, "partition %s: unclean close: %s", p->dir, sl_err_str(err));
		p->log = NULL;
	}
	/* plog_close delivered every append, so nothing refers to p any more. */
	SL_ASSERT(p->appends_inflight == 0 && p->waiter_count == 0);
	SL_ASSERT(p->dups_waiting == 0 && p->dups_head == NULL);
	if (p->pstate != NULL)
		producer_state_destroy(p->pstate);
	p->pstate = NULL;
	timer_cancel(&ps->sh->timers, &p->tick);
	timer_cancel(&ps->sh->timers, &p->dup_timer);
	mem_free(ps->sh, p->dir);
	mem_free(ps->sh, p);
}

/*
 * Applies new topic settings to an open partition (plog_config_update;
 * the tick timer is re-armed since flush/roll deadlines may have moved).
 */
static void partition_reconfigure(struct partition *p, const struct tcfg_effective *eff)
{
	const struct plog_config *a = &p->eff.plog, *b = &eff->plog;
	if (a->segment_bytes == b->segment_bytes && a->roll_ms == b->roll_ms &&
	    a->index_interval_bytes == b->index_interval_bytes &&
	    a->index_size_max_bytes == b->index_size_max_bytes &&
	    a->retention_ms == b->retention_ms && a->retention_bytes == b->retention_bytes &&
	    a->flush_interval_messages == b->flush_interval_messages &&
	    a->flush_interval_ms == b->flush_interval_ms && a->preallocate == b->preallocate &&
	    p->eff.max_message_bytes == eff->max_message_bytes &&
	    p->eff.log_append_time == eff->log_append_time)
		return;
	p->eff = *eff;
	if (p->log == NULL || p->closing)
		return;
	if (plog_config_update(p->log, &eff->plog) != SL_OK)
		LOG_W(p->set->sh->id, "partition %s: new topic settings refused by the log", p->dir);
	else
		LOG_I(p->set->sh->id, "partition %s: topic settings changed", p->dir);
	partition_tick_arm(p);
}

/*
 * Deletes a closed partition's directory as Kafka does: rename to
 * `<dir>.<topic id hex>-delete` (so a re-created topic of the same name
 * gets a fresh directory at once), then remove its files and itself.
 * Failures are logged; the renamed directory is then left behind.
 */
static void partition_dir_delete(struct partition_set *ps, const char *path,
				 const struct kuuid *id)
{
	char gone[PATH_MAX + 64];
	char hex[33];

	for (size_t i = 0; i < sizeof(id->b); i++)
		snprintf(hex + 2 * i, 3, "%02x", id->b[i]);
	if (snprintf(gone, sizeof(gone), "%s.%s-delete", path, hex) >= (int)sizeof(gone))
		return;
	if (rename(path, gone) != 0) {
		LOG_W(ps->sh->id, "partition %s: cannot rename for deletion: %s", path,
		      strerror(errno));
		return;
	}
	DIR *d = opendir(gone);
	if (d == NULL) {
		LOG_W(ps->sh->id, "partition %s: cannot list for deletion: %s", gone, strerror(errno));
		return;
	}
	int dfd = dirfd(d);
	struct dirent *de;
	for (uint32_t n = 0; n < PLOG_SEGMENTS_MAX * 4u && (de = readdir(d)) != NULL; n++) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dfd, de->d_name, 0) != 0)
			LOG_W(ps->sh->id, "partition %s: cannot remove %s: %s", gone, de->d_name,
			      strerror(errno));
	}
	closedir(d);
	if (rmdir(gone) != 0)
		LOG_W(ps->sh->id, "partition %s: cannot remove: %s", gone, strerror(errno));
}

/* Unlinks and closes every partition not marked `seen`; clears the marks. */
static void partition_set_sweep(struct partition_set *ps)
{
	for (uint32_t b = 0; b < ps->bucket_count; b++) {
		struct partition **pp = &ps->buckets[b];
		while (*pp != NULL) {
			struct partition *p = *pp;
			if (p->seen) {
				p->seen = false;
				pp = &p->hnext;
				continue;
			}
			*pp = p->hnext;
			ps->count--;
			LOG_I(ps->sh->id, "partition %s: topic gone from the catalog, %s", p->dir,
			      ps->delete_gone ? "deleting" : "closing");
			char path[PATH_MAX];
			struct kuuid id = p->topic_id;
			snprintf(path, sizeof(path), "%s", p->dir);
			partition_free(ps, p);
			if (ps->delete_gone)
				partition_dir_delete(ps, path, &id);
		}
	}
}

/*
 * Whether this broker holds partition i of `topic`: always in single-node
 * mode; in cluster mode when its replica state lists this broker. -1: not
 * known yet (cluster mode, no replica state): keep what is open.
 */
static int partition_is_replica(const struct partition_set *ps, const struct catalog_topic *topic,
				int32_t i)
{
	if (!ps->cluster)
		return 1;
	if (topic->pstates == NULL || topic->pstates[i].replica_count == 0)
		return -1;
	for (uint32_t r = 0; r < topic->pstates[i].replica_count; r++)
		if (topic->pstates[i].replicas[r] == ps->node_id)
			return 1;
	return 0;
}

enum sl_err partition_set_sync(struct partition_set *ps, const struct catalog_snap *snap)
{
	uint32_t opened = 0;

	if (ps->closed)
		return SL_OK;
	/* Mark and reconfigure what stays, drop what left (so a topic deleted
	 * and re-created under its name never meets its old directory), then
	 * open what is new. */
	for (uint32_t t = 0; t < snap->topic_count; t++) {
		const struct catalog_topic *topic = &snap->topics[t];
		struct tcfg_effective eff;
		tcfg_effective(ps->config, &ps->plog_cfg, topic->configs, topic->config_count, &eff);
		for (int32_t i = 0; i < topic->partition_count; i++) {
			if (partition_owner(&topic->id, i, ps->shard_count) != ps->sh->id)
				continue;
			struct partition *p = partition_set_find(ps, &topic->id, i);
			if (p != NULL && partition_is_replica(ps, topic, i) != 0) {
				p->seen = true;
				partition_reconfigure(p, &eff);
				pcompact_settings(ps->config, topic->configs, topic->config_count,
						  &p->compact);
			}
		}
	}
	partition_set_sweep(ps);
	for (uint32_t t = 0; t < snap->topic_count; t++) {
		const struct catalog_topic *topic = &snap->topics[t];
		struct tcfg_effective eff;
		tcfg_effective(ps->config, &ps->plog_cfg, topic->configs, topic->config_count, &eff);
		for (int32_t i = 0; i < topic->partition_count; i++) {
			if (partition_owner(&topic->id, i, ps->shard_count) != ps->sh->id ||
			    partition_set_find(ps, &topic->id, i) != NULL ||
			    partition_is_replica(ps, topic, i) != 1)
				continue;
			if (partition_add(ps, topic->name, &topic->id, i, &eff) != SL_OK)
				return SL_ENOMEM;
			struct partition *np = partition_set_find(ps, &topic->id, i);
			if (np != NULL)
				pcompact_settings(ps->config, topic->configs, topic->config_count,
						  &np->compact);
			opened++;
		}
	}
	/* New partitions start unmarked, like the survivors after the sweep. */
	for (uint32_t b = 0; b < ps->bucket_count; b++)
		for (struct partition *p = ps->buckets[b]; p != NULL; p = p->hnext)
			p->seen = false;
	if (opened > 0)
		LOG_D(ps->sh->id, "partitions: opened %u, %u owned", opened, ps->count);
	return SL_OK;
}

void partition_set_close(struct partition_set *ps)
{
	if (ps->closed || ps->buckets == NULL)
		return;
	ps->closed = true;
	timer_cancel(&ps->sh->timers, &ps->retention);
	/* First stop every partition (no new appends, waiters released), then
	 * close the logs: plog_close drives the ring, and completions of other
	 * partitions must find them closing rather than accepting work. */
	for (uint32_t b = 0; b < ps->bucket_count; b++)
		for (struct partition *p = ps->buckets[b]; p != NULL; p = p->hnext)
			p->closing = true;
	for (uint32_t b = 0; b < ps->bucket_count; b++) {
		struct partition *p = ps->buckets[b];
		ps->buckets[b] = NULL;
		while (p != NULL) {
			struct partition *next = p->hnext;
			partition_free(ps, p);
			ps->count--;
			p = next;
		}
	}
	SL_ASSERT(ps->count == 0);
	mem_free(ps->sh, ps->buckets);
	ps->buckets = NULL;
}
