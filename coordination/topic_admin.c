/*
 * topic_admin.c — see topic_admin.h.
 *
 * Invariants:
 *   1. ta_op->zk_pending counts shard 0's ZooKeeper operations of the
 *      request; shard 0 replies (xmsg) exactly once, when it drops to zero
 *      (or at once when nothing was started).
 *   2. The requesting shard touches a->topics only after that reply.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "topic_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "catalog.h"
#include "cluster.h"
#include "ctrl_json.h"
#include "ctrl_rules.h"
#include "kerr.h"
#include "log.h"
#include "mem.h"
#include "zk.h"

struct ta_op {
	struct broker_zk_admin *a;
	struct broker_shard *bs;
	bool del;
	struct timer poll;
	int64_t deadline_ns;
	uint32_t zk_pending;             /* shard 0 (invariant 1) */
	struct xmsg msg;                 /* shard 0: the deferred request */
};

struct ta_call {
	struct ta_op *op;
	uint32_t idx;
	uint32_t tries;
	char path[CLUSTER_PATH_MAX];
};

static void ta_set_error(struct broker_zk_topic *t, int16_t code, const char *msg)
{
	t->error_code = code;
	snprintf(t->message, sizeof(t->message), "%s", msg != NULL ? msg : "");
}

static void ta_zk_error(struct broker_zk_topic *t, const struct zk_result *res, const char *what)
{
	ta_set_error(t, res->err == SL_EAGAIN || res->err == SL_ECLOSED ? KERR_REQUEST_TIMED_OUT
									 : KERR_UNKNOWN_SERVER_ERROR,
		     NULL);
	LOG_W(0, "topic-admin: %s %.*s: %s (zk %d)", what, (int)t->name_len, t->name,
	      sl_err_str(res->err), res->zrc);
}

/* Shard 0: one operation of op finished (invariant 1). */
static void ta_zk_done(struct ta_op *op)
{
	SL_ASSERT(op->zk_pending > 0);
	if (--op->zk_pending == 0)
		xmsg_reply(op->bs->b->shards[0].sh, &op->msg);
}

/* ---- the requesting shard ---- */

static bool ta_gone(const struct ta_op *op)
{
	for (uint32_t i = 0; i < op->a->count; i++) {
		const struct broker_zk_topic *t = &op->a->topics[i];
		if (t->error_code == KERR_NONE && catalog_snap_find_id(op->bs->snap, &t->id) != NULL)
			return false;
	}
	return true;
}

static void ta_finish(struct ta_op *op)
{
	struct broker_zk_admin *a = op->a;
	struct broker_shard *bs = op->bs;

	if (op->del && a->timeout_ms > 0)
		for (uint32_t i = 0; i < a->count; i++)
			if (a->topics[i].error_code == KERR_NONE &&
			    catalog_snap_find_id(bs->snap, &a->topics[i].id) != NULL)
				ta_set_error(&a->topics[i], KERR_REQUEST_TIMED_OUT,
					     "Deletion did not complete in time.");
	mem_free(bs->sh, op);
	a->done(bs, a);
}

static void ta_poll(struct timer *t, void *ctx)
{
	struct ta_op *op = (struct ta_op *)(void *)((char *)t - offsetof(struct ta_op, poll));
	struct shard *sh = ctx;

	if (!op->del || op->a->timeout_ms <= 0 || ta_gone(op) || op->bs->stopping ||
	    shard_now_ns(sh) >= op->deadline_ns) {
		ta_finish(op);
		return;
	}
	timer_add(&sh->timers, &op->poll, shard_now_ns(sh) + (int64_t)TA_POLL_MS * 1000000);
}

/* Runs on: the requesting shard, once shard 0 is done. */
static void ta_written(struct shard *sh, struct xmsg *m)
{
	struct ta_op *op = m->pl.ptr[0];

	ta_poll(&op->poll, sh);
}

/* ---- shard 0: DeleteTopics ---- */

static void ta_del_created(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ta_call *call = arg;
	struct broker_zk_topic *t = &call->op->a->topics[call->idx];

	(void)zk;
	if (res->err == SL_OK || res->err == SL_EEXIST)
		LOG_I(0, "topic-admin: topic %.*s queued for deletion", (int)t->name_len, t->name);
	else
		ta_zk_error(t, res, "queueing the deletion of");
	struct ta_op *op = call->op;
	free(call);
	ta_zk_done(op);
}

static void ta_del_on_ctl(struct broker_shard *bs0, struct ta_op *op)
{
	struct cluster *cl = bs0->b->cluster;

	for (uint32_t i = 0; i < op->a->count; i++) {
		struct broker_zk_topic *t = &op->a->topics[i];
		if (t->error_code != KERR_NONE)
			continue;
		struct ta_call *call = calloc(1, sizeof(*call));
		if (cl == NULL || cl->zk == NULL || cl->stopping || call == NULL) {
			free(call);
			ta_set_error(t, KERR_REQUEST_TIMED_OUT, NULL);
			continue;
		}
		call->op = op;
		call->idx = i;
		cluster_path(cl, call->path, "/admin/delete_topics/%.*s", (int)t->name_len, t->name);
		if (zk_create(cl->zk, call->path, NULL, 0, ZK_PERSISTENT, ta_del_created, call) !=
		    SL_OK) {
			free(call);
			ta_set_error(t, KERR_REQUEST_TIMED_OUT, NULL);
			continue;
		}
		op->zk_pending++;
	}
}

/* ---- shard 0: CreatePartitions ---- */

static void ta_cp_read(struct ta_call *call);

static void ta_cp_set(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ta_call *call = arg;
	struct ta_op *op = call->op;
	struct broker_zk_topic *t = &op->a->topics[call->idx];

	(void)zk;
	if (res->err == SL_ERANGE && ++call->tries < TA_WRITE_TRIES) {
		ta_cp_read(call);   /* changed concurrently: judge again */
		return;
	}
	if (res->err == SL_OK)
		LOG_I(0, "topic-admin: topic %.*s now has %d partitions in ZooKeeper",
		      (int)t->name_len, t->name, t->count);
	else if (res->err == SL_ERANGE)
		ta_set_error(t, KERR_UNKNOWN_SERVER_ERROR, "The topic kept changing concurrently.");
	else
		ta_zk_error(t, res, "adding partitions to");
	free(call);
	ta_zk_done(op);
}

/* Checks the manual rows of t against the live brokers and rf; true when fine. */
static bool ta_cp_rows_ok(struct broker_zk_topic *t, const struct catalog_snap *snap,
			  uint32_t existing, uint32_t rf)
{
	char msg[BROKER_ZK_MSG_MAX];

	if (t->assign_rows != t->count - (int32_t)existing) {
		snprintf(msg, sizeof(msg), "Increasing the number of partitions by %d but %d "
			 "assignments provided.", t->count - (int32_t)existing, t->assign_rows);
		ta_set_error(t, KERR_INVALID_REPLICA_ASSIGNMENT, msg);
		return false;
	}
	for (int32_t r = 0; r < t->assign_rows; r++) {
		const struct karray_i32 *row = &t->assign[r];
		if (row->count <= 0 || (uint32_t)row->count != rf) {
			snprintf(msg, sizeof(msg), "Inconsistent replication factor between partitions, "
				 "partition 0 has %u while partition %u has %d.", rf,
				 existing + (uint32_t)r, row->count);
			ta_set_error(t, KERR_INVALID_REPLICA_ASSIGNMENT, msg);
			return false;
		}
		for (int32_t k = 0; k < row->count; k++) {
			if (catalog_snap_broker(snap, row->items[k]) == NULL) {
				snprintf(msg, sizeof(msg), "Unknown broker(s) in replica assignment: %d.",
					 row->items[k]);
				ta_set_error(t, KERR_INVALID_REPLICA_ASSIGNMENT, msg);
				return false;
			}
			for (int32_t j = 0; j < k; j++) {
				if (row->items[j] == row->items[k]) {
					ta_set_error(t, KERR_INVALID_REPLICA_ASSIGNMENT,
						     "Duplicate brokers not allowed in replica "
						     "assignment.");
					return false;
				}
			}
		}
	}
	return true;
}

/* Fills the new partitions of jt (grown to t->count); false with t's error set. */
static bool ta_cp_assign(struct broker_shard *bs0, struct broker_zk_topic *t,
			 struct ctrlj_topic *jt)
{
	const struct catalog_snap *snap = bs0->snap;
	uint32_t existing = jt->partition_count;
	uint32_t rf = jt->parts[0].replica_count;
	uint32_t more = (uint32_t)t->count - existing;
	struct ctrlj_assignment *np = calloc(t->count, sizeof(*np));
	struct ctrl_broker *brokers = calloc(snap->broker_count + 1, sizeof(*brokers));
	int32_t *out = calloc((size_t)more * SL_MAX(rf, 1u) + 1, sizeof(*out));
	bool ok = false;

	if (np == NULL || brokers == NULL || out == NULL) {
		ta_set_error(t, KERR_UNKNOWN_SERVER_ERROR, NULL);
		goto out;
	}
	memcpy(np, jt->parts, existing * sizeof(*np));
	if (t->assign != NULL) {
		if (!ta_cp_rows_ok(t, snap, existing, rf))
			goto out;
		for (uint32_t r = 0; r < more; r++)
			memcpy(&out[r * rf], t->assign[r].items, rf * sizeof(int32_t));
	} else {
		struct ctrl_cluster view = { brokers, snap->broker_count };
		for (uint32_t i = 0; i < snap->broker_count; i++) {
			brokers[i].id = snap->brokers[i].id;
			brokers[i].rack = snap->brokers[i].rack[0] != '\0' ? snap->brokers[i].rack
									   : NULL;
			brokers[i].alive = true;
		}
		int16_t kerr = ctrl_assign_more(&view, jt->parts[0].replicas, rf, (int32_t)existing,
						t->count, CTRL_RACK_SAFE, out,
						more * SL_MAX(rf, 1u));
		if (kerr != CTRL_KERR_NONE) {
			ta_set_error(t, kerr == CTRL_KERR_UNKNOWN_SERVER_ERROR ?
						KERR_UNKNOWN_SERVER_ERROR : kerr,
				     kerr == CTRL_KERR_INVALID_REPLICATION_FACTOR ?
					     "Not enough live brokers for the replication factor." :
					     NULL);
			goto out;
		}
	}
	for (uint32_t r = 0; r < more; r++) {
		np[existing + r].replica_count = rf;
		memcpy(np[existing + r].replicas, &out[r * rf], rf * sizeof(int32_t));
	}
	free(jt->parts);
	jt->parts = np;
	np = NULL;
	jt->partition_count = (uint32_t)t->count;
	ok = true;
out:
	free(np);
	free(brokers);
	free(out);
	return ok;
}

static void ta_cp_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ta_call *call = arg;
	struct ta_op *op = call->op;
	struct broker_zk_topic *t = &op->a->topics[call->idx];
	struct broker_shard *bs0 = &op->bs->b->shards[0];
	struct ctrlj_topic jt;
	const char *why = NULL;
	char msg[BROKER_ZK_MSG_MAX];
	char *buf = NULL;
	size_t len = 0;

	if (res->err == SL_ENOTFOUND) {
		ta_set_error(t, KERR_UNKNOWN_TOPIC_OR_PARTITION,
			     "This server does not host this topic-partition.");
		goto done;
	}
	if (res->err != SL_OK) {
		ta_zk_error(t, res, "reading");
		goto done;
	}
	if (ctrlj_topic_decode(res->data, res->data_len, &jt, &why) != SL_OK) {
		ta_set_error(t, KERR_UNKNOWN_SERVER_ERROR, why);
		goto done;
	}
	if (t->count <= (int32_t)jt.partition_count || jt.partition_count == 0 ||
	    t->count > CTRLJ_PARTITIONS_MAX) {
		snprintf(msg, sizeof(msg), "Topic currently has %u partitions, %d would not be an "
			 "increase.", jt.partition_count, t->count);
		ta_set_error(t, KERR_INVALID_PARTITIONS, msg);
	} else if (ta_cp_assign(bs0, t, &jt) && !op->a->validate_only) {
		buf = malloc(CTRLJ_VALUE_MAX);
		if (buf == NULL || ctrlj_topic_encode(&jt, buf, CTRLJ_VALUE_MAX, &len) != SL_OK) {
			ta_set_error(t, KERR_UNKNOWN_SERVER_ERROR, NULL);
		} else if (zk_set(zk, call->path, buf, (uint32_t)len, res->stat.version, ta_cp_set,
				  call) == SL_OK) {
			free(buf);
			ctrlj_topic_free(&jt);
			return;
		} else {
			ta_set_error(t, KERR_REQUEST_TIMED_OUT, NULL);
		}
	}
	free(buf);
	ctrlj_topic_free(&jt);
done:
	free(call);
	ta_zk_done(op);
}

static void ta_cp_read(struct ta_call *call)
{
	struct ta_op *op = call->op;
	struct cluster *cl = op->bs->b->cluster;

	if (cl->zk != NULL && !cl->stopping &&
	    zk_get(cl->zk, call->path, NULL, NULL, ta_cp_got, call) == SL_OK)
		return;
	ta_set_error(&op->a->topics[call->idx], KERR_REQUEST_TIMED_OUT, NULL);
	free(call);
	ta_zk_done(op);
}

static void ta_cp_on_ctl(struct broker_shard *bs0, struct ta_op *op)
{
	struct cluster *cl = bs0->b->cluster;

	for (uint32_t i = 0; i < op->a->count; i++) {
		struct broker_zk_topic *t = &op->a->topics[i];
		if (t->error_code != KERR_NONE)
			continue;
		struct ta_call *call = calloc(1, sizeof(*call));
		if (cl == NULL || cl->zk == NULL || cl->stopping || call == NULL) {
			free(call);
			ta_set_error(t, KERR_REQUEST_TIMED_OUT, NULL);
			continue;
		}
		call->op = op;
		call->idx = i;
		cluster_path(cl, call->path, "/brokers/topics/%.*s", (int)t->name_len, t->name);
		op->zk_pending++;
		ta_cp_read(call);
	}
}

/* ---- entry ---- */

/* Runs on: shard 0. */
static enum xmsg_fn_result ta_on_ctl(struct shard *sh, struct xmsg *m)
{
	struct ta_op *op = m->pl.ptr[0];
	struct broker_shard *bs0 = broker_shard_of(sh);

	op->msg = *m;
	op->zk_pending = 1;   /* held while starting */
	if (op->del)
		ta_del_on_ctl(bs0, op);
	else
		ta_cp_on_ctl(bs0, op);
	if (--op->zk_pending == 0)
		return XMSG_REPLY;
	return XMSG_DEFER;
}

static enum sl_err ta_start(struct broker_shard *bs, struct broker_zk_admin *a, bool del)
{
	struct ta_op *op = mem_zalloc(bs->sh, sizeof(*op));
	struct xmsg m = { .fn = ta_on_ctl, .done = ta_written };
	enum sl_err err;

	if (op == NULL)
		return SL_ENOMEM;
	op->a = a;
	op->bs = bs;
	op->del = del;
	timer_init(&op->poll, ta_poll);
	op->deadline_ns = shard_now_ns(bs->sh) + (int64_t)SL_MAX(a->timeout_ms, 0) * 1000000;
	m.ctx = op;
	m.pl.ptr[0] = op;
	err = broker_send(bs, 0, &m);
	if (err != SL_OK)
		mem_free(bs->sh, op);
	return err;
}

enum sl_err topic_admin_delete(struct broker_shard *bs, struct broker_zk_admin *a)
{
	return ta_start(bs, a, true);
}

enum sl_err topic_admin_partitions(struct broker_shard *bs, struct broker_zk_admin *a)
{
	return ta_start(bs, a, false);
}
