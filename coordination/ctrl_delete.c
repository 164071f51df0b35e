/*
 * ctrl_delete.c — see ctrl_delete.h.
 *
 * Invariants:
 *   1. d->ops counts outstanding ZooKeeper operations and StopReplica
 *      requests; once d->dead, the last one to complete frees d.
 *   2. An entry's acked[i] is set only by a NONE answer of brokers[i];
 *      REMOVING starts only when every acked[i] is set.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ctrl_delete.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cluster.h"
#include "controller.h"
#include "ctrl_json.h"
#include "ctrl_rules.h"
#include "kclient.h"
#include "log.h"
#include "zk.h"

#define CD_STOP_REPLICA_VERSION 3
#define CD_ENTRIES_MAX 4096u

enum cd_state { CD_QUEUED = 0, CD_STOPPING, CD_REMOVING, CD_FORGET };

struct cd_entry {
	char name[CONTROLLER_TOPIC_MAX + 1];
	enum cd_state state;
	int32_t brokers[CTRL_REPLICAS_MAX * 8];
	bool acked[CTRL_REPLICAS_MAX * 8];
	bool inflight[CTRL_REPLICAS_MAX * 8];
	uint32_t nbrokers;
	uint32_t zk_pending;
	bool zk_failed;
	bool seen;
	bool gone;           /* finished: dropped at the next tick */
};

struct ctrl_del {
	struct cluster *cl;
	struct controller *ctl;
	bool dead;
	uint32_t ops;
	struct cd_entry *e;
	uint32_t n;
	struct timer tick;
};

struct cd_call {
	struct ctrl_del *d;
	char name[CONTROLLER_TOPIC_MAX + 1];
	int32_t broker;
	bool last;            /* the /admin/delete_topics delete */
};

static void cd_tick_arm(struct ctrl_del *d, int64_t ms);

/* Invariant 1: false (and d freed when last) once d is dead. */
static bool cd_enter(struct ctrl_del *d)
{
	SL_ASSERT(d->ops > 0);
	d->ops--;
	if (!d->dead)
		return true;
	if (d->ops == 0) {
		free(d->e);
		free(d);
	}
	return false;
}

static struct cd_entry *cd_find(struct ctrl_del *d, const char *name)
{
	for (uint32_t i = 0; i < d->n; i++)
		if (strcmp(d->e[i].name, name) == 0)
			return &d->e[i];
	return NULL;
}

/* ---- /admin/delete_topics children ---- */

static void cd_list(struct ctrl_del *d);

static void cd_children_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg)
{
	struct cluster *cl = arg;

	(void)zk;
	if (ev->type == ZK_WATCH_LOST || cl->ctl == NULL || cl->stopping)
		return;
	cd_list(controller_del(cl->ctl));
}

static void cd_children_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctrl_del *d = arg;

	(void)zk;
	if (!cd_enter(d))
		return;
	if (res->err != SL_OK) {
		cd_tick_arm(d, CD_TICK_MS);
		return;
	}
	for (uint32_t i = 0; i < res->child_count && d->n < CD_ENTRIES_MAX; i++) {
		const char *name = res->children[i];
		if (strlen(name) > CONTROLLER_TOPIC_MAX || cd_find(d, name) != NULL)
			continue;
		struct cd_entry *ne = realloc(d->e, (d->n + 1) * sizeof(*ne));
		if (ne == NULL)
			break;
		d->e = ne;
		memset(&d->e[d->n], 0, sizeof(d->e[d->n]));
		snprintf(d->e[d->n].name, sizeof(d->e[d->n].name), "%s", name);
		d->n++;
		LOG_I(0, "controller: topic %s is queued for deletion", name);
	}
	cd_tick_arm(d, 0);
}

static void cd_list(struct ctrl_del *d)
{
	char path[CLUSTER_PATH_MAX];

	if (d == NULL || d->dead)
		return;
	cluster_path(d->cl, path, "/admin/delete_topics");
	if (zk_get_children(d->cl->zk, path, cd_children_watch, d->cl, cd_children_got, d) ==
	    SL_OK)
		d->ops++;
	else
		cd_tick_arm(d, CD_TICK_MS);
}

/* ---- STOPPING ---- */

static void cd_stopped(struct kclient *kc, enum sl_err status, struct kread *body, void *arg)
{
	struct cd_call *c = arg;
	struct ctrl_del *d = c->d;
	int16_t err = -1;

	(void)kc;
	if (status == SL_OK && body != NULL)
		err = kread_i16(body);
	if (cd_enter(d)) {
		struct cd_entry *e = cd_find(d, c->name);
		for (uint32_t i = 0; e != NULL && i < e->nbrokers; i++) {
			if (e->brokers[i] != c->broker)
				continue;
			e->inflight[i] = false;
			e->acked[i] = err == 0;
			if (err != 0)
				LOG_W(0, "controller: StopReplica of %s to broker %d: %s (error %d); "
					 "retrying", c->name, c->broker, sl_err_str(status), err);
		}
		cd_tick_arm(d, err == 0 ? 0 : CD_TICK_MS);
	}
	free(c);
}

/* StopReplica (delete) of every partition of v that broker e->brokers[i] replicates. */
static void cd_send_stop(struct ctrl_del *d, struct cd_entry *e, uint32_t i,
			 const struct controller_topic_view *v)
{
	int64_t epoch = -1;
	struct kclient *kc = controller_broker_client(d->ctl, e->brokers[i], &epoch);
	struct StopReplicaRequest rq;
	struct StopReplicaRequest_StopReplicaTopicState ts;
	struct StopReplicaRequest_StopReplicaPartitionState *ps;
	struct cd_call *c;
	uint32_t n = 0;

	if (kc == NULL)
		return;   /* not live: retried when it is back */
	ps = calloc(v->count + 1, sizeof(*ps));
	c = calloc(1, sizeof(*c));
	if (ps == NULL || c == NULL)
		goto out;
	for (uint32_t p = 0; p < v->count; p++) {
		if (!ctrl_pstate_has_replica(&v->ps[p], e->brokers[i]))
			continue;
		kafka_init_stop_replica_request_stop_replica_partition_state(&ps[n]);
		ps[n].PartitionIndex = (int32_t)p;
		ps[n].LeaderEpoch = CD_LEADER_DURING_DELETE;
		ps[n].DeletePartition = true;
		n++;
	}
	kafka_init_stop_replica_request_stop_replica_topic_state(&ts);
	ts.TopicName = (struct kslice){ (const uint8_t *)e->name, (int32_t)strlen(e->name) };
	ts.PartitionStates.count = (int32_t)n;
	ts.PartitionStates.items = ps;
	kafka_init_stop_replica_request(&rq);
	rq.ControllerId = d->cl->b->node_id;
	rq.ControllerEpoch = controller_epoch_of(d->ctl);
	rq.BrokerEpoch = epoch;
	rq.DeletePartitions = true;
	rq.TopicStates.count = 1;
	rq.TopicStates.items = &ts;
	c->d = d;
	c->broker = e->brokers[i];
	snprintf(c->name, sizeof(c->name), "%s", e->name);
	if (kclient_send(kc, KAFKA_API_STOP_REPLICA, CD_STOP_REPLICA_VERSION, &rq, cd_stopped, c) ==
	    SL_OK) {
		d->ops++;
		e->inflight[i] = true;
		c = NULL;
	}
out:
	free(c);
	free(ps);
}

/* ---- REMOVING ---- */

static void cd_removed(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cd_call *c = arg;
	struct ctrl_del *d = c->d;

	(void)zk;
	if (cd_enter(d)) {
		struct cd_entry *e = cd_find(d, c->name);
		bool ok = res->err == SL_OK ||
			  (res->op_count > 1 && res->ops[0].zrc == ZK_ZOK &&
			   res->ops[1].err == SL_ENOTFOUND);
		if (e != NULL && e->state == CD_REMOVING) {
			e->zk_failed |= !ok;
			SL_ASSERT(e->zk_pending > 0);
			if (--e->zk_pending == 0) {
				if (e->zk_failed) {
					LOG_W(0, "controller: removing topic %s from ZooKeeper failed "
						 "(zk %d); retrying", e->name, res->zrc);
					e->state = CD_STOPPING;   /* every replica acked: back here */
				} else {
					e->state = CD_FORGET;
				}
				cd_tick_arm(d, 0);
			}
		}
	}
	free(c);
}

/* One fenced delete of `path`. */
static void cd_remove(struct ctrl_del *d, struct cd_entry *e, const char *path)
{
	char epath[CLUSTER_PATH_MAX];
	struct zk_op ops[2];
	struct cd_call *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		e->zk_failed = true;
		return;
	}
	c->d = d;
	snprintf(c->name, sizeof(c->name), "%s", e->name);
	cluster_path(d->cl, epath, "/controller_epoch");
	memset(ops, 0, sizeof(ops));
	ops[0] = (struct zk_op){ .type = ZK_OP_CHECK, .path = epath,
				 .version = controller_epoch_zkversion(d->ctl) };
	ops[1] = (struct zk_op){ .type = ZK_OP_DELETE, .path = path, .version = -1 };
	if (zk_multi(d->cl->zk, ops, 2, cd_removed, c) != SL_OK) {
		free(c);
		e->zk_failed = true;
		return;
	}
	d->ops++;
	e->zk_pending++;
}

/* Issues every delete of e in order (one session: ZooKeeper keeps the order). */
static void cd_remove_all(struct ctrl_del *d, struct cd_entry *e, uint32_t count)
{
	char path[CLUSTER_PATH_MAX];

	e->state = CD_REMOVING;
	e->zk_failed = false;
	for (uint32_t p = 0; p < count; p++) {
		cluster_path(d->cl, path, "/brokers/topics/%s/partitions/%u/state", e->name, p);
		cd_remove(d, e, path);
		cluster_path(d->cl, path, "/brokers/topics/%s/partitions/%u", e->name, p);
		cd_remove(d, e, path);
	}
	cluster_path(d->cl, path, "/brokers/topics/%s/partitions", e->name);
	cd_remove(d, e, path);
	cluster_path(d->cl, path, "/brokers/topics/%s", e->name);
	cd_remove(d, e, path);
	cluster_path(d->cl, path, "/config/topics/%s", e->name);
	cd_remove(d, e, path);
	cluster_path(d->cl, path, "/admin/delete_topics/%s", e->name);
	cd_remove(d, e, path);
	if (e->zk_pending == 0)
		e->state = CD_STOPPING;
}

/* ---- the tick ---- */

static void cd_step(struct ctrl_del *d, struct cd_entry *e)
{
	struct controller_topic_view v;
	bool known = controller_topic_view(d->ctl, e->name, &v);
	bool all = true;

	switch (e->state) {
	case CD_QUEUED:
		if (!known) {
			char path[CLUSTER_PATH_MAX];
			LOG_I(0, "controller: topic %s queued for deletion does not exist", e->name);
			e->state = CD_REMOVING;
			e->zk_failed = false;
			cluster_path(d->cl, path, "/admin/delete_topics/%s", e->name);
			cd_remove(d, e, path);
			if (e->zk_pending == 0)
				e->state = CD_QUEUED;
			return;
		}
		e->nbrokers = 0;
		for (uint32_t p = 0; p < v.count; p++) {
			for (uint32_t r = 0; r < v.ps[p].replica_count; r++) {
				int32_t id = v.ps[p].replicas[r];
				bool have = false;
				for (uint32_t k = 0; k < e->nbrokers; k++)
					have |= e->brokers[k] == id;
				if (!have && e->nbrokers < CTRL_REPLICAS_MAX * 8)
					e->brokers[e->nbrokers++] = id;
			}
		}
		LOG_I(0, "controller: deleting topic %s (%u partitions, %u replica brokers)", e->name,
		      v.count, e->nbrokers);
		controller_topic_deleting(d->ctl, e->name);
		e->state = CD_STOPPING;
		/* fall through */
	case CD_STOPPING:
		if (!known)
			return;
		for (uint32_t i = 0; i < e->nbrokers; i++) {
			if (e->acked[i])
				continue;
			all = false;
			if (!e->inflight[i])
				cd_send_stop(d, e, i, &v);
		}
		if (all)
			cd_remove_all(d, e, v.count);
		return;
	case CD_FORGET:
		if (known)
			controller_topic_forget(d->ctl, e->name);
		LOG_I(0, "controller: topic %s deleted", e->name);
		e->gone = true;
		return;
	default:
		return;
	}
}

static void cd_tick(struct timer *t, void *ctx)
{
	struct ctrl_del *d = (struct ctrl_del *)(void *)((char *)t - offsetof(struct ctrl_del, tick));
	bool waiting = false;

	(void)ctx;
	if (d->dead)
		return;
	if (!controller_idle(d->ctl)) {
		cd_tick_arm(d, CD_TICK_MS);
		return;
	}
	for (uint32_t i = 0; i < d->n; i++) {
		struct cd_entry *e = &d->e[i];
		if (e->state == CD_QUEUED && e->zk_pending > 0)
			continue;   /* an unknown topic's node being removed */
		if (e->state != CD_REMOVING)
			cd_step(d, e);
		waiting |= !e->gone;
	}
	for (uint32_t i = 0; i < d->n;) {
		if (d->e[i].gone && d->e[i].zk_pending == 0)
			d->e[i] = d->e[--d->n];
		else
			i++;
	}
	if (waiting)
		cd_tick_arm(d, CD_TICK_MS);
}

static void cd_tick_arm(struct ctrl_del *d, int64_t ms)
{
	struct shard *sh = d->cl->bs0->sh;
	int64_t at = shard_now_ns(sh) + ms * 1000000;

	if (d->dead)
		return;
	if (timer_armed(&d->tick)) {
		if (ms > 0)
			return;
		timer_cancel(&sh->timers, &d->tick);
	}
	timer_add(&sh->timers, &d->tick, at);
}

/* ---- partition modifications ---- */

struct cd_topic_read {
	struct cluster *cl;
	char name[CONTROLLER_TOPIC_MAX + 1];
};

static void cd_topic_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cd_topic_read *r = arg;
	struct ctrlj_topic jt;
	const char *why = NULL;

	(void)zk;
	if (res->err == SL_OK && !r->cl->stopping && r->cl->ctl != NULL &&
	    ctrlj_topic_decode(res->data, res->data_len, &jt, &why) == SL_OK) {
		controller_topic_grow(r->cl->ctl, r->name, &jt);
		ctrlj_topic_free(&jt);
	}
	free(r);
}

void ctrl_topic_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg)
{
	struct cluster *cl = arg;
	const char *slash;
	struct cd_topic_read *r;

	if (ev->type != ZK_WATCH_CHANGED || cl->ctl == NULL || cl->stopping || ev->path == NULL)
		return;
	slash = strrchr(ev->path, '/');
	if (slash == NULL || strlen(slash + 1) > CONTROLLER_TOPIC_MAX)
		return;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return;
	r->cl = cl;
	snprintf(r->name, sizeof(r->name), "%s", slash + 1);
	if (zk_get(zk, ev->path, ctrl_topic_watch, cl, cd_topic_got, r) != SL_OK)
		free(r);
}

/* ---- public ---- */

struct ctrl_del *ctrl_delete_start(struct cluster *cl, struct controller *ctl)
{
	struct ctrl_del *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->cl = cl;
	d->ctl = ctl;
	timer_init(&d->tick, cd_tick);
	cd_list(d);
	return d;
}

void ctrl_delete_stop(struct ctrl_del *d)
{
	if (d == NULL)
		return;
	d->dead = true;
	if (timer_armed(&d->tick))
		timer_cancel(&d->cl->bs0->sh->timers, &d->tick);
	if (d->ops == 0) {
		free(d->e);
		free(d);
	}
}
