/*
 * repl.c — the replica side's control path and the leader's data path in
 * cluster mode (see repl.h for the per-partition contract).
 *
 * Objects:
 *   struct repl_shard      one per shard (bs->repl), made on first use:
 *                          the list of repl states on the shard, the
 *                          controller epoch seen (shard 0), the ISR tick
 *                          timer and the AlterPartition client.
 *   struct repl_partition  one per partition this broker replicates, hung
 *                          on the partition (partition_repl_set), created
 *                          by the first LeaderAndIsr naming it, freed by
 *                          StopReplica, the partition's close (on_close)
 *                          or the shard's stop.
 *
 * Roles (repl_decide picks the transition, repl_apply performs it):
 *   NONE     --LeaderAndIsr leader == me, newer epoch--> LEADER
 *   NONE     --LeaderAndIsr leader != me, newer epoch--> FOLLOWER
 *   LEADER   --same epoch, newer partition epoch------> LEADER (ISR update)
 *   LEADER   --newer epoch, other leader--------------> FOLLOWER (acks=all
 *              waiters fail NOT_LEADER_OR_FOLLOWER)
 *   FOLLOWER --newer epoch, leader == me--------------> LEADER (follower_stop)
 *   any      --leader -1------------------------------> NONE
 *   any      --older leader epoch---------------------> unchanged, FENCED_LEADER_EPOCH
 *
 * Leader data path (partition hooks, on the owner shard):
 *   on_end         isr_leader_append, HW advance, acks=all waiters checked.
 *   produce_check  leader? acks=-1: committed ISR >= min.insync? epoch to stamp.
 *   acks_wait      park until HW > last offset (isr_acks_all_check) or the
 *                  request's timeout (REQUEST_TIMED_OUT); bounded list.
 *   replica_fetch  epoch checks, isr_follower_fetch, HW advance, expansion.
 *   leader_check   KIP-320 epoch check and leadership for consumers.
 *
 * ISR changes: a per-shard timer every replica.lag.time.max.ms / 2 proposes
 * shrinks (isr_propose_shrink) and resends proposals marked for retry;
 * follower fetches propose expansions. A proposal goes to the controller
 * as AlterPartition v3 (topic ids) on this shard's kclient; the answer is
 * isr_pending_commit / isr_pending_fail, or a retry at the next tick
 * (NOT_CONTROLLER, timeouts, connection errors).
 *
 * Invariants:
 *   1. rs->parts holds exactly the repl states hung on this shard's
 *      partitions; partition_repl(rp->p) == rp.
 *   2. Waiters in rp->acks belong to rp->p, role LEADER; each has its timer
 *      armed or the timer table was full (then it waits for the HW or a
 *      role change only, logged).
 *   3. At most one AlterPartition per partition in flight (alter_inflight).
 *
 * Runs on: the partition's owner shard (everything per partition); shard 0
 * for the controller epoch.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "catalog.h"
#include "hwsave.h"
#include "kafka_codec.h"
#include "kclient.h"
#include "kerr.h"
#include "log.h"
#include "timer.h"

#define REPL_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define REPL_TICK_MIN_MS 50
#define REPL_PARTS_MAX (1u << 24)
#define REPL_ALTER_VERSION 3

struct repl_shard {
	struct broker_shard *bs;
	struct repl_partition *parts;    /* invariant 1 */
	uint32_t count;
	int32_t controller_epoch;        /* highest seen (shard 0 decides) */
	struct timer tick;
	struct kclient *ctl;             /* AlterPartition to the controller */
	int32_t ctl_id;
	bool stopped;
};

/* Where an AlterPartition answer goes (the repl state may be gone by then). */
struct repl_alter_ctx {
	struct repl_shard *rs;
	struct kuuid topic_id;
	int32_t index;
	int32_t leader_epoch;
};

/* Set once by main before the shards start, read-only afterwards. */
static const struct repl_follower_ops *repl_follower_ops;

void repl_follower_ops_set(const struct repl_follower_ops *ops)
{
	repl_follower_ops = ops;
}

/* Set once by main before the shards start, read-only afterwards (repl.h). */
static repl_role_fn *repl_role_hook;

void repl_role_hook_set(repl_role_fn *fn)
{
	repl_role_hook = fn;
}

/* Tells the layer above that p's leadership here changed. */
static void repl_role_notify(struct broker_shard *bs, struct partition *p, bool leader)
{
	if (repl_role_hook != NULL)
		repl_role_hook(bs, p, leader);
}

static void repl_follower_start(struct repl_partition *rp)
{
	if (repl_follower_ops != NULL && repl_follower_ops->start != NULL)
		repl_follower_ops->start(rp);
}

static void repl_follower_stop(struct repl_partition *rp)
{
	if (repl_follower_ops != NULL && repl_follower_ops->stop != NULL)
		repl_follower_ops->stop(rp);
}

/* ---- pure rules ---- */

enum repl_transition repl_decide(const struct repl_partition *rp, int32_t me,
				 const struct repl_state *st)
{
	if (rp != NULL && st->leader_epoch < rp->leader_epoch)
		return REPL_T_FENCED;
	bool same = rp != NULL && st->leader_epoch == rp->leader_epoch;
	if (st->leader < 0)
		return same && rp->role == REPL_NONE ? REPL_T_NOOP : REPL_T_NO_LEADER;
	if (st->leader == me) {
		if (!same || rp->role != REPL_LEADER)
			return REPL_T_LEADER_NEW;
		return st->partition_epoch > rp->partition_epoch ? REPL_T_LEADER_UPDATE
								 : REPL_T_NOOP;
	}
	if (same && rp->role == REPL_FOLLOWER && rp->leader_id == st->leader)
		return REPL_T_NOOP;
	return REPL_T_FOLLOWER;
}

int16_t repl_epoch_check(const struct repl_partition *rp, int32_t current_leader_epoch)
{
	if (rp == NULL)
		return KERR_NOT_LEADER_OR_FOLLOWER;
	if (current_leader_epoch >= 0 && current_leader_epoch < rp->leader_epoch)
		return KERR_FENCED_LEADER_EPOCH;
	if (current_leader_epoch > rp->leader_epoch)
		return KERR_UNKNOWN_LEADER_EPOCH;
	return rp->role == REPL_LEADER ? KERR_NONE : KERR_NOT_LEADER_OR_FOLLOWER;
}

/* ---- acks=all waiters ---- */

static void repl_acks_unlink(struct repl_acks *l, struct partition_acks_waiter *w)
{
	SL_ASSERT(w->list == l && l->count > 0);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->prev = w->next = NULL;
	w->list = NULL;
	l->count--;
}

/* Unlinks w, stops its timer and answers it with `kerr`. */
static void repl_acks_finish(struct repl_acks *l, struct timer_set *ts,
			     struct partition_acks_waiter *w, int16_t kerr)
{
	repl_acks_unlink(l, w);
	timer_cancel(ts, &w->timer);
	w->error_code = kerr;
	w->fn(w);
}

static void repl_acks_timer_fire(struct timer *t, void *ctx)
{
	struct partition_acks_waiter *w = REPL_CONTAINER_OF(t, struct partition_acks_waiter, timer);

	(void)ctx;
	if (w->list == NULL)
		return;
	repl_acks_unlink(w->list, w);
	w->error_code = KERR_REQUEST_TIMED_OUT;
	w->fn(w);
}

static int16_t repl_acks_kerr(enum isr_acks a)
{
	switch (a) {
	case ISR_ACKS_OK:
		return KERR_NONE;
	case ISR_ACKS_NOT_ENOUGH_REPLICAS:
		return KERR_NOT_ENOUGH_REPLICAS;
	case ISR_ACKS_NOT_ENOUGH_AFTER_APPEND:
		return KERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
	case ISR_ACKS_WAIT:
		break;
	}
	return KERR_UNKNOWN_SERVER_ERROR;
}

int repl_acks_add(struct repl_partition *rp, struct timer_set *ts,
		  struct partition_acks_waiter *w)
{
	SL_ASSERT(w->fn != NULL && w->list == NULL);
	if (rp->role != REPL_LEADER) {
		w->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
		return 0;
	}
	enum isr_acks a = isr_acks_all_check(&rp->isr, w->last_offset);
	if (a != ISR_ACKS_WAIT) {
		w->error_code = repl_acks_kerr(a);
		return 0;
	}
	if (rp->acks.count >= REPL_ACKS_MAX) {
		w->error_code = KERR_REQUEST_TIMED_OUT;
		return 0;
	}
	timer_init(&w->timer, repl_acks_timer_fire);
	if (timer_add(ts, &w->timer, w->deadline_ns) != SL_OK)
		LOG_W(LOG_NO_SHARD, "repl: timer table full, an acks=all produce waits without its timeout");
	w->next = NULL;
	w->prev = rp->acks.tail;
	if (rp->acks.tail != NULL)
		rp->acks.tail->next = w;
	else
		rp->acks.head = w;
	rp->acks.tail = w;
	w->list = &rp->acks;
	rp->acks.count++;
	return 1;
}

void repl_acks_check(struct repl_partition *rp, struct timer_set *ts)
{
	struct partition_acks_waiter *w = rp->acks.head;

	for (uint32_t n = 0; n < REPL_ACKS_MAX && w != NULL; n++) {
		struct partition_acks_waiter *next = w->next;
		enum isr_acks a = rp->role == REPL_LEADER ? isr_acks_all_check(&rp->isr, w->last_offset)
							  : ISR_ACKS_NOT_ENOUGH_REPLICAS;
		if (rp->role != REPL_LEADER)
			repl_acks_finish(&rp->acks, ts, w, KERR_NOT_LEADER_OR_FOLLOWER);
		else if (a != ISR_ACKS_WAIT)
			repl_acks_finish(&rp->acks, ts, w, repl_acks_kerr(a));
		w = next;
	}
}

void repl_acks_fail_all(struct repl_partition *rp, struct timer_set *ts, int16_t kerr)
{
	for (uint32_t n = 0; n <= REPL_ACKS_MAX && rp->acks.head != NULL; n++)
		repl_acks_finish(&rp->acks, ts, rp->acks.head, kerr);
	SL_ASSERT(rp->acks.count == 0);
}

/* ---- per-shard state ---- */

static int64_t repl_now_ms(const struct repl_shard *rs)
{
	return shard_now_ns(rs->bs->sh) / 1000000;
}

static int64_t repl_tick_ms(const struct repl_shard *rs)
{
	int64_t lag = rs->bs->b->config->replica_lag_time_max_ms;
	return SL_MAX(lag / 2, (int64_t)REPL_TICK_MIN_MS);
}

static void repl_tick_fire(struct timer *t, void *ctx);

/* This shard's replication state, made on first use; NULL once stopped or out of memory. */
static struct repl_shard *repl_shard_of(struct broker_shard *bs)
{
	struct repl_shard *rs = bs->repl;

	if (rs != NULL || bs->stopping)
		return rs;
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		return NULL;
	rs->bs = bs;
	rs->controller_epoch = -1;
	rs->ctl_id = -1;
	timer_init(&rs->tick, repl_tick_fire);
	if (timer_add(&bs->sh->timers, &rs->tick,
		      shard_now_ns(bs->sh) + repl_tick_ms(rs) * 1000000) != SL_OK)
		LOG_W(bs->sh->id, "repl: timer table full, no ISR shrink checks");
	bs->repl = rs;
	return rs;
}

int32_t repl_controller_epoch(struct broker_shard *bs)
{
	struct repl_shard *rs = repl_shard_of(bs);
	return rs != NULL ? rs->controller_epoch : -1;
}

void repl_controller_epoch_set(struct broker_shard *bs, int32_t epoch)
{
	struct repl_shard *rs = repl_shard_of(bs);
	if (rs != NULL && epoch > rs->controller_epoch)
		rs->controller_epoch = epoch;
}

/* Moves p's HW to the ISR's and answers the acks=all waiters it passed. */
static void repl_hw_sync(struct repl_partition *rp)
{
	partition_hw_advance(rp->p, isr_hw(&rp->isr));
	repl_acks_check(rp, &rp->rs->bs->sh->timers);
}

/* Frees rp: waiters fail with `kerr`, following stops, p lets go. */
static void repl_free(struct repl_partition *rp, int16_t kerr)
{
	struct repl_shard *rs = rp->rs;
	bool was_leader = rp->role == REPL_LEADER;

	repl_acks_fail_all(rp, &rs->bs->sh->timers, kerr);
	if (rp->role == REPL_FOLLOWER)
		repl_follower_stop(rp);
	rp->role = REPL_NONE;
	if (was_leader)
		repl_role_notify(rs->bs, rp->p, false);
	if (rp->prev != NULL)
		rp->prev->next = rp->next;
	else
		rs->parts = rp->next;
	if (rp->next != NULL)
		rp->next->prev = rp->prev;
	SL_ASSERT(rs->count > 0);
	rs->count--;
	partition_repl_set(rp->p, NULL);
	free(rp);
}

void repl_shard_stop(struct broker_shard *bs)
{
	struct repl_shard *rs = bs->repl;

	if (rs == NULL)
		return;
	hwsave_shard_final(bs);   /* the HWs for the shutdown checkpoint (hwsave.h) */
	rs->stopped = true;
	timer_cancel(&bs->sh->timers, &rs->tick);
	for (uint32_t n = 0; n < REPL_PARTS_MAX && rs->parts != NULL; n++)
		repl_free(rs->parts, KERR_NOT_LEADER_OR_FOLLOWER);
	if (rs->ctl != NULL)
		kclient_close(rs->ctl);   /* pending answers see SL_ECLOSED */
	rs->ctl = NULL;
	bs->repl = NULL;
	free(rs);
}

/* ---- AlterPartition ---- */

static void repl_alter_done(struct kclient *kc, enum sl_err status, struct kread *body, void *arg);

/* The kclient to the current controller; NULL when unknown (retry later). */
static struct kclient *repl_ctl_client(struct repl_shard *rs)
{
	const struct catalog_snap *snap = rs->bs->snap;
	int32_t id = snap->controller_id;

	if (rs->ctl != NULL && rs->ctl_id == id)
		return rs->ctl;
	if (rs->ctl != NULL) {
		kclient_close(rs->ctl);
		rs->ctl = NULL;
		rs->ctl_id = -1;
	}
	const struct catalog_broker *cb = id >= 0 ? catalog_snap_broker(snap, id) : NULL;
	if (cb == NULL || cb->port <= 0 || cb->port > 65535)
		return NULL;
	struct kclient_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.client_id = "sluice-alter-partition";
	cfg.request_timeout_ms = (uint32_t)SL_MAX(rs->bs->b->config->replica_socket_timeout_ms, 1000);
	if (kclient_open(&rs->ctl, rs->bs->sh, cb->host, (uint16_t)cb->port, &cfg) != SL_OK) {
		rs->ctl = NULL;
		return NULL;
	}
	rs->ctl_id = id;
	return rs->ctl;
}

/* Sends rp's pending proposal. On any failure to send, retried at the next tick. */
static void repl_alter_send(struct repl_partition *rp)
{
	struct repl_shard *rs = rp->rs;
	struct isr_proposal prop;
	struct AlterPartitionRequest req;
	struct AlterPartitionRequest_TopicData td;
	struct AlterPartitionRequest_PartitionData pd;
	struct AlterPartitionRequest_BrokerState bsx[ISR_REPLICAS_MAX];

	if (rs->stopped || isr_pending_proposal(&rp->isr, &prop) != SL_OK)
		return;
	rp->alter_retry = true;   /* until a send succeeds */
	if (rp->alter_inflight)
		return;               /* sent again once that one is answered */
	struct kclient *kc = repl_ctl_client(rs);
	if (kc == NULL)
		return;
	struct repl_alter_ctx *ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return;
	ctx->rs = rs;
	ctx->topic_id = *partition_topic_id(rp->p);
	ctx->index = partition_index(rp->p);
	ctx->leader_epoch = prop.leader_epoch;
	kafka_init_alter_partition_request(&req);
	kafka_init_alter_partition_request_topic_data(&td);
	kafka_init_alter_partition_request_partition_data(&pd);
	for (uint32_t i = 0; i < prop.isr_count; i++) {
		kafka_init_alter_partition_request_broker_state(&bsx[i]);
		bsx[i].BrokerId = prop.isr[i];
		bsx[i].BrokerEpoch = -1;
	}
	pd.PartitionIndex = ctx->index;
	pd.LeaderEpoch = prop.leader_epoch;
	pd.PartitionEpoch = prop.partition_epoch;
	pd.LeaderRecoveryState = 0;
	pd.NewIsrWithEpochs.count = (int32_t)prop.isr_count;
	pd.NewIsrWithEpochs.items = bsx;
	td.TopicId = ctx->topic_id;
	td.Partitions.count = 1;
	td.Partitions.items = &pd;
	req.BrokerId = rs->bs->b->node_id;
	req.BrokerEpoch = -1;
	req.Topics.count = 1;
	req.Topics.items = &td;
	if (kclient_send(kc, KAFKA_API_ALTER_PARTITION, REPL_ALTER_VERSION, &req, repl_alter_done,
			 ctx) != SL_OK) {
		free(ctx);
		return;
	}
	rp->alter_inflight = true;
	rp->alter_retry = false;
	LOG_I(rs->bs->sh->id, "partition %s: proposing ISR of %u replica(s) (leader epoch %d)",
	      partition_dir(rp->p), prop.isr_count, prop.leader_epoch);
}

/* The repl state an AlterPartition answer is about, or NULL. */
static struct repl_partition *repl_alter_target(struct repl_alter_ctx *ctx)
{
	struct partition *p = partition_set_find(&ctx->rs->bs->parts, &ctx->topic_id, ctx->index);
	return p != NULL ? repl_of(p) : NULL;
}

/* Applies one partition's answer. */
static void repl_alter_apply(struct repl_partition *rp, int16_t kerr,
			     const struct AlterPartitionResponse_PartitionData *pd)
{
	struct repl_shard *rs = rp->rs;
	int moved = 0;

	if (kerr == KERR_NONE && pd != NULL) {
		if (pd->Isr.count < 0 || pd->Isr.count > ISR_REPLICAS_MAX) {
			rp->alter_retry = true;
			return;
		}
		enum sl_err err = isr_pending_commit(&rp->isr, pd->LeaderEpoch, pd->Isr.items,
						     (uint32_t)pd->Isr.count, pd->PartitionEpoch,
						     repl_now_ms(rs), &moved);
		if (err == SL_OK) {
			rp->partition_epoch = pd->PartitionEpoch;
			LOG_I(rs->bs->sh->id, "partition %s: ISR now %d replica(s), partition epoch %d",
			      partition_dir(rp->p), pd->Isr.count, pd->PartitionEpoch);
			if (moved)
				repl_hw_sync(rp);
			else
				repl_acks_check(rp, &rs->bs->sh->timers);
		}
		return;
	}
	if (kerr == KERR_OPERATION_NOT_ATTEMPTED || kerr == KERR_INELIGIBLE_REPLICA) {
		isr_pending_fail(&rp->isr);
		return;
	}
	if (kerr == KERR_FENCED_LEADER_EPOCH || kerr == KERR_UNKNOWN_TOPIC_OR_PARTITION ||
	    kerr == KERR_UNKNOWN_TOPIC_ID || kerr == KERR_INVALID_UPDATE_VERSION)
		return;   /* pending until the next LeaderAndIsr (isr.h) */
	rp->alter_retry = true;   /* NOT_CONTROLLER, timeouts, ...: next tick */
}

static void repl_alter_done(struct kclient *kc, enum sl_err status, struct kread *body, void *arg)
{
	struct repl_alter_ctx *ctx = arg;
	struct AlterPartitionResponse resp;
	struct karena arena;

	(void)kc;
	if (status == SL_ECLOSED) {
		/* Shard stop (rs->stopped: partitions gone), or repl_ctl_client
		 * closed the client of a former controller (synchronously, rs
		 * alive): then the proposal must be sent again to the new one,
		 * else alter_inflight stays set and the ISR never changes. */
		if (!ctx->rs->stopped) {
			struct repl_partition *rp = repl_alter_target(ctx);
			if (rp != NULL) {
				rp->alter_inflight = false;
				rp->alter_retry = true;
			}
		}
		free(ctx);
		return;
	}
	struct repl_partition *rp = repl_alter_target(ctx);
	if (rp == NULL || rp->leader_epoch != ctx->leader_epoch) {
		if (rp != NULL)
			rp->alter_inflight = false;
		free(ctx);
		return;
	}
	rp->alter_inflight = false;
	if (status != SL_OK) {
		rp->alter_retry = true;
		free(ctx);
		return;
	}
	if (karena_init_heap(&arena, 64 * 1024) != SL_OK) {
		rp->alter_retry = true;
		free(ctx);
		return;
	}
	kafka_init_alter_partition_response(&resp);
	if (kafka_decode_alter_partition_response(body, REPL_ALTER_VERSION, &resp, &arena) != SL_OK) {
		rp->alter_retry = true;
	} else if (resp.ErrorCode != KERR_NONE) {
		repl_alter_apply(rp, resp.ErrorCode, NULL);
	} else {
		bool found = false;
		for (int32_t t = 0; t < resp.Topics.count && !found; t++) {
			const struct AlterPartitionResponse_TopicData *td = &resp.Topics.items[t];
			if (memcmp(td->TopicId.b, ctx->topic_id.b, sizeof(ctx->topic_id.b)) != 0)
				continue;
			for (int32_t i = 0; i < td->Partitions.count && !found; i++) {
				const struct AlterPartitionResponse_PartitionData *pd =
					&td->Partitions.items[i];
				if (pd->PartitionIndex != ctx->index)
					continue;
				found = true;
				repl_alter_apply(rp, pd->ErrorCode, pd);
			}
		}
		if (!found)
			rp->alter_retry = true;
	}
	karena_destroy(&arena);
	free(ctx);
}

/* Periodic: shrink proposals and retries on every leader of the shard. */
static void repl_tick_fire(struct timer *t, void *ctx)
{
	struct repl_shard *rs = REPL_CONTAINER_OF(t, struct repl_shard, tick);
	int64_t now = repl_now_ms(rs);

	(void)ctx;
	if (rs->stopped)
		return;
	struct repl_partition *rp = rs->parts;
	for (uint32_t n = 0; n < REPL_PARTS_MAX && rp != NULL; n++, rp = rp->next) {
		struct isr_proposal prop;
		if (rp->role != REPL_LEADER)
			continue;
		if (isr_propose_shrink(&rp->isr, now, &prop) == SL_OK) {
			rp->alter_retry = false;
			repl_alter_send(rp);
		} else if (rp->alter_retry) {
			repl_alter_send(rp);
		}
	}
	if (timer_add(&rs->bs->sh->timers, &rs->tick,
		      shard_now_ns(rs->bs->sh) + repl_tick_ms(rs) * 1000000) != SL_OK)
		LOG_W(rs->bs->sh->id, "repl: timer table full, ISR shrink checks stopped");
}

/* ---- roles ---- */

/* Writes rp's leader-epoch-checkpoint. SL_OK or SL_EIO. */
static enum sl_err repl_epochs_write(struct repl_partition *rp)
{
	int dfd = open(partition_dir(rp->p), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return SL_EIO;
	enum sl_err err = lepoch_write(&rp->epochs, dfd);
	close(dfd);
	return err;
}

/* The repl state of p, created (epochs loaded) when absent. NULL: out of memory. */
static struct repl_partition *repl_get(struct repl_shard *rs, struct partition *p)
{
	struct repl_partition *rp = repl_of(p);

	if (rp != NULL)
		return rp;
	rp = calloc(1, sizeof(*rp));
	if (rp == NULL)
		return NULL;
	rp->p = p;
	rp->rs = rs;
	rp->role = REPL_NONE;
	rp->leader_id = -1;
	rp->leader_epoch = -1;
	rp->partition_epoch = -1;
	rp->controller_epoch = -1;
	lepoch_init(&rp->epochs, (int)rs->bs->sh->id);
	int dfd = open(partition_dir(p), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		enum sl_err err = lepoch_read(&rp->epochs, dfd);
		if (err != SL_OK && err != SL_ENOTFOUND)
			LOG_W(rs->bs->sh->id, "partition %s: leader-epoch-checkpoint unreadable, "
			      "starting empty", partition_dir(p));
		close(dfd);
	}
	/* The epochs beyond the log end were never written here. */
	lepoch_truncate_from_end(&rp->epochs, partition_log_end(p));
	/* The HW a replica starts with: what it had, else its log dir's
	 * replication-offset-checkpoint (hwsave.h), else only the log start
	 * (safe: it moves up as the ISR fetches). partition_hw_set clamps. */
	if (!partition_hw_managed(p)) {
		struct partition_offsets o;
		int64_t hw = -1;
		if (hwsave_lookup(rs->bs->b->config->log_dirs, partition_dir(p), partition_index(p),
				  &hw, (int)rs->bs->sh->id) == SL_OK) {
			partition_hw_set(p, hw);
			LOG_I(rs->bs->sh->id, "partition %s: high watermark %lld from %s (checkpoint %lld)",
			      partition_dir(p), (long long)partition_hw(p), HWCHECK_FILE_NAME,
			      (long long)hw);
		} else if (partition_offsets(p, &o) == KERR_NONE)
			partition_hw_set(p, o.log_start_offset);
	}
	rp->next = rs->parts;
	if (rs->parts != NULL)
		rs->parts->prev = rp;
	rs->parts = rp;
	rs->count++;
	partition_repl_set(p, rp);
	return rp;
}

/* The start offset of `epoch` in rp's cache (LEO when absent). */
static int64_t repl_epoch_start(const struct repl_partition *rp, int32_t epoch, int64_t leo)
{
	for (uint32_t i = rp->epochs.count; i > 0; i--)
		if (rp->epochs.entries[i - 1].epoch == epoch)
			return SL_MIN(rp->epochs.entries[i - 1].start_offset, leo);
	return leo;
}

static int16_t repl_become_leader(struct repl_partition *rp, const struct repl_state *st,
				  enum isr_init_mode mode)
{
	struct repl_shard *rs = rp->rs;
	struct isr_config cfg;
	int64_t leo = partition_log_end(rp->p);
	struct partition_offsets o;

	if (leo < 0 || partition_offsets(rp->p, &o) != KERR_NONE)
		return KERR_KAFKA_STORAGE_ERROR;
	if (rp->role == REPL_FOLLOWER)
		repl_follower_stop(rp);
	if (lepoch_assign(&rp->epochs, st->leader_epoch, leo) == 1 &&
	    repl_epochs_write(rp) != SL_OK)
		return KERR_KAFKA_STORAGE_ERROR;
	memset(&cfg, 0, sizeof(cfg));
	cfg.leader_id = st->leader;
	cfg.leader_epoch = st->leader_epoch;
	cfg.partition_epoch = st->partition_epoch;
	cfg.replica_count = st->replica_count;
	memcpy(cfg.replicas, st->replicas, st->replica_count * sizeof(cfg.replicas[0]));
	cfg.isr_count = st->isr_count;
	memcpy(cfg.isr, st->isr, st->isr_count * sizeof(cfg.isr[0]));
	cfg.leader_leo = leo;
	cfg.leader_epoch_start_offset = repl_epoch_start(rp, st->leader_epoch, leo);
	cfg.hw = SL_MAX(o.high_watermark, o.log_start_offset);
	cfg.min_insync_replicas = SL_MAX(rp->min_insync, 1);
	cfg.replica_lag_time_max_ms = SL_MAX(rs->bs->b->config->replica_lag_time_max_ms, (int64_t)0);
	if (rp->role != REPL_LEADER)
		mode = ISR_INIT_NEW_LEADER;
	if (isr_init(&rp->isr, &cfg, mode, repl_now_ms(rs)) != SL_OK) {
		LOG_W(rs->bs->sh->id, "partition %s: LeaderAndIsr state refused by the ISR rules",
		      partition_dir(rp->p));
		return KERR_INVALID_REQUEST;
	}
	rp->role = REPL_LEADER;
	rp->leader_id = st->leader;
	rp->leader_epoch = st->leader_epoch;
	rp->partition_epoch = st->partition_epoch;
	rp->alter_retry = false;
	partition_hw_set(rp->p, isr_hw(&rp->isr));
	repl_acks_check(rp, &rs->bs->sh->timers);
	LOG_I(rs->bs->sh->id, "partition %s: leader in epoch %d, ISR %u/%u, HW %lld",
	      partition_dir(rp->p), st->leader_epoch, st->isr_count, st->replica_count,
	      (long long)partition_hw(rp->p));
	return KERR_NONE;
}

/* Leaves LEADER / FOLLOWER for `role` (FOLLOWER or NONE). */
static void repl_leave_role(struct repl_partition *rp)
{
	if (rp->role == REPL_LEADER)
		repl_acks_fail_all(rp, &rp->rs->bs->sh->timers, KERR_NOT_LEADER_OR_FOLLOWER);
	else if (rp->role == REPL_FOLLOWER)
		repl_follower_stop(rp);
	rp->role = REPL_NONE;
}

int16_t repl_apply(struct broker_shard *bs, struct partition *p, const struct repl_state *st,
		   int32_t min_insync)
{
	struct repl_shard *rs = repl_shard_of(bs);

	if (rs == NULL)
		return KERR_UNKNOWN_SERVER_ERROR;
	if (partition_log(p) == NULL)
		return KERR_KAFKA_STORAGE_ERROR;
	if (st->replica_count > ISR_REPLICAS_MAX || st->isr_count > ISR_REPLICAS_MAX)
		return KERR_INVALID_REQUEST;
	struct repl_partition *rp = repl_get(rs, p);
	if (rp == NULL)
		return KERR_UNKNOWN_SERVER_ERROR;
	rp->min_insync = min_insync;
	int16_t kerr = KERR_NONE;
	bool was_leader = rp->role == REPL_LEADER;
	switch (repl_decide(rp, bs->b->node_id, st)) {
	case REPL_T_FENCED:
		return KERR_FENCED_LEADER_EPOCH;
	case REPL_T_NOOP:
		break;
	case REPL_T_LEADER_NEW:
		kerr = repl_become_leader(rp, st, ISR_INIT_NEW_LEADER);
		break;
	case REPL_T_LEADER_UPDATE:
		kerr = repl_become_leader(rp, st, ISR_INIT_REELECTED);
		break;
	case REPL_T_FOLLOWER:
		repl_leave_role(rp);
		rp->leader_id = st->leader;
		rp->leader_epoch = st->leader_epoch;
		rp->partition_epoch = st->partition_epoch;
		rp->role = REPL_FOLLOWER;
		LOG_I(bs->sh->id, "partition %s: follower of broker %d in epoch %d", partition_dir(p),
		      st->leader, st->leader_epoch);
		repl_follower_start(rp);
		break;
	case REPL_T_NO_LEADER:
		repl_leave_role(rp);
		rp->leader_id = -1;
		rp->leader_epoch = st->leader_epoch;
		rp->partition_epoch = st->partition_epoch;
		break;
	}
	if (kerr == KERR_NONE)
		rp->controller_epoch = st->controller_epoch;
	if (was_leader != (rp->role == REPL_LEADER))
		repl_role_notify(bs, p, rp->role == REPL_LEADER);
	return kerr;
}

void repl_stop(struct partition *p)
{
	struct repl_partition *rp = repl_of(p);

	if (rp != NULL)
		repl_free(rp, KERR_NOT_LEADER_OR_FOLLOWER);
}

/* ---- partition hooks ---- */

static void repl_on_end(struct partition *p, int64_t end)
{
	struct repl_partition *rp = repl_of(p);
	int moved = 0;

	if (rp == NULL || rp->role != REPL_LEADER)
		return;
	isr_leader_append(&rp->isr, end, repl_now_ms(rp->rs), &moved);
	if (moved)
		repl_hw_sync(rp);
}

static void repl_on_close(struct partition *p)
{
	repl_stop(p);
}

static int16_t repl_leader_check(struct partition *p, int32_t current_leader_epoch)
{
	return repl_epoch_check(repl_of(p), current_leader_epoch);
}

static int16_t repl_produce_check(struct partition *p, int16_t acks, int32_t *leader_epoch)
{
	struct repl_partition *rp = repl_of(p);

	if (rp == NULL || rp->role != REPL_LEADER)
		return KERR_NOT_LEADER_OR_FOLLOWER;
	if (acks == -1 && isr_acks_all_append_check(&rp->isr) != ISR_ACKS_OK)
		return KERR_NOT_ENOUGH_REPLICAS;
	*leader_epoch = rp->leader_epoch;
	return KERR_NONE;
}

static int repl_acks_wait(struct partition *p, struct partition_acks_waiter *w)
{
	struct repl_partition *rp = repl_of(p);

	if (rp == NULL) {
		w->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
		return 0;
	}
	return repl_acks_add(rp, &rp->rs->bs->sh->timers, w);
}

static int16_t repl_replica_fetch(struct partition *p, int32_t replica_id,
				  int32_t current_leader_epoch, int64_t fetch_offset)
{
	struct repl_partition *rp = repl_of(p);
	int moved = 0;

	int16_t kerr = repl_epoch_check(rp, current_leader_epoch);
	if (kerr != KERR_NONE)
		return kerr;
	switch (isr_follower_fetch(&rp->isr, replica_id, fetch_offset, repl_now_ms(rp->rs), &moved)) {
	case SL_OK:
		break;
	case SL_ERANGE:
		return KERR_OFFSET_OUT_OF_RANGE;
	default:
		return KERR_NOT_LEADER_OR_FOLLOWER;   /* not a replica of p */
	}
	if (moved)
		repl_hw_sync(rp);
	struct isr_proposal prop;
	if (!rp->alter_inflight && isr_propose_expand(&rp->isr, &prop) == SL_OK)
		repl_alter_send(rp);
	return KERR_NONE;
}

const struct partition_hooks repl_partition_hooks = {
	.on_end = repl_on_end,
	.on_close = repl_on_close,
	.leader_check = repl_leader_check,
	.produce_check = repl_produce_check,
	.acks_wait = repl_acks_wait,
	.replica_fetch = repl_replica_fetch,
};

void repl_each(struct broker_shard *bs, void (*fn)(void *arg, struct partition *p), void *arg)
{
	struct repl_shard *rs = bs->repl;
	uint32_t n = 0;

	for (struct repl_partition *rp = rs != NULL ? rs->parts : NULL;
	     rp != NULL && n < REPL_PARTS_MAX; rp = rp->next, n++)
		fn(arg, rp->p);
}
