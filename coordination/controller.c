/*
 * controller.c — see controller.h.
 *
 * Memory: the controller, its broker and topic tables and every
 * per-operation context come from malloc on shard 0. Every ZooKeeper
 * operation it starts counts in ctl->ops and takes a struct ctl_call; a
 * callback first checks ctl->dead (controller_stop ran) and frees the
 * controller when the last operation completes. Watches take the cluster
 * (long-lived), never the controller.
 *
 * Invariants:
 *   1. ctl->busy while a sync runs; `pending` counts its outstanding
 *      operations; the next phase starts when it drops to zero.
 *   2. A partition state in memory (ps[p], has[p]) is what ZooKeeper held
 *      at its version ps[p].partition_epoch, or what this controller wrote
 *      there (then dirty[p] until the next SEND).
 *   3. brokers[] holds exactly the children of /brokers/ids seen by the
 *      last BROKERS phase whose data could be read (alive).
 *   4. Every BROKERS phase reads every registration again; brokers[i].epoch
 *      is the czxid last read (Kafka's broker epoch, sent in every
 *      LeaderAndIsr / UpdateMetadata). A live broker whose czxid changed
 *      was restarted or got a new session (bounced): `bounced` until a
 *      WRITE phase without resync handled it as a failure (view without
 *      it: elections where it led, out of every ISR) and a startup
 *      (fresh: everything sent to it again).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cluster.h"
#include "ctrl_delete.h"
#include "ctrl_json.h"
#include "ctrl_rules.h"
#include "kclient.h"
#include "kerr.h"
#include "log.h"
#include "zk.h"

#define CTL_RETRY_MS 500
#define CTL_LAIR_VERSION 7
#define CTL_UM_VERSION 8
#define CTL_TYPE_INCREMENTAL 1
#define CTL_TYPE_FULL 2

enum ctl_phase { CTL_IDLE = 0, CTL_EPOCH, CTL_BROKERS, CTL_TOPICS, CTL_WRITE };

struct ctl_broker {
	int32_t id;
	char host[CTRLJ_HOST_MAX + 1];
	int32_t port;
	char rack[CTRLJ_RACK_MAX + 1];
	bool has_rack;
	bool alive;          /* data read */
	bool seen;           /* in the last children list */
	bool fresh;          /* needs everything (new, or a send failed) */
	bool shutting_down;  /* sent ControlledShutdown (this registration) */
	bool bounced;        /* re-registered (new epoch) since its failure was handled */
	int64_t epoch;       /* czxid of its registration */
	struct kclient *kc;
};

struct ctl_topic {
	char *name;
	struct kuuid id;
	uint32_t count;               /* partitions; 0 until read */
	struct ctrl_pstate *ps;
	bool *has;
	bool *dirty;
	bool *is_new;
	bool seen;
	bool deleting;                /* queued for deletion (ctrl_delete.h) */
};

struct controller {
	struct cluster *cl;
	bool dead;
	uint32_t ops;                 /* zk operations outstanding */
	int32_t epoch;
	int32_t epoch_version;
	enum ctl_phase phase;
	bool busy, resync;
	uint32_t pending;
	uint32_t retries;
	struct ctl_broker *brokers;
	uint32_t nb, capb;
	struct ctl_topic *topics;
	uint32_t nt, capt;
	struct ctrl_broker *view;     /* live brokers for the rules */
	struct timer retry;
	bool um_wanted;               /* send UpdateMetadata at the end of this sync */
	struct ctrl_del *del;         /* topic deletion queue (ctrl_delete.h) */
};

struct ctl_call {
	struct controller *ctl;
	uint32_t t, p;                /* topic / partition index, or broker index */
	int32_t id;
	struct ctrl_pstate next;
	struct ctl_ap *ap;
	struct AlterPartitionResponse_PartitionData *out;
	struct ctl_cs *cs;            /* ControlledShutdown writes */
};

static void ctl_sync(struct controller *ctl);
static void ctl_phase_done(struct controller *ctl);
static void ctl_brokers_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg);
static void ctl_topics_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg);

/* ---- helpers ---- */

static struct zk *ctl_zk(const struct controller *ctl)
{
	return ctl->cl->zk;
}

static struct ctl_call *ctl_call_new(struct controller *ctl, uint32_t t, uint32_t p)
{
	struct ctl_call *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->ctl = ctl;
	c->t = t;
	c->p = p;
	return c;
}

static void ctl_free(struct controller *ctl)
{
	for (uint32_t i = 0; i < ctl->nt; i++) {
		free(ctl->topics[i].name);
		free(ctl->topics[i].ps);
		free(ctl->topics[i].has);
		free(ctl->topics[i].dirty);
		free(ctl->topics[i].is_new);
	}
	free(ctl->topics);
	free(ctl->brokers);
	free(ctl->view);
	free(ctl);
}

/*
 * Every operation's callback starts here: one operation less; returns
 * false (and frees what is left) when the controller was stopped.
 */
static bool ctl_call_enter(struct ctl_call *c)
{
	struct controller *ctl = c->ctl;

	SL_ASSERT(ctl->ops > 0);
	ctl->ops--;
	if (!ctl->dead)
		return true;
	if (ctl->ops == 0)
		ctl_free(ctl);
	return false;
}

/* Starts an operation of the current phase (pending + ops); false if refused. */
static bool ctl_started(struct controller *ctl, enum sl_err err, struct ctl_call *c, bool phase)
{
	if (err != SL_OK) {
		free(c);
		return false;
	}
	ctl->ops++;
	if (phase)
		ctl->pending++;
	return true;
}

/* One phase operation finished. */
static void ctl_pending_done(struct controller *ctl)
{
	SL_ASSERT(ctl->pending > 0);
	if (--ctl->pending == 0)
		ctl_phase_done(ctl);
}

static void ctl_nop_done(struct zk *zk, const struct zk_result *res, void *arg)
{
	(void)zk;
	(void)res;
	(void)arg;
}

/* Deletes /controller only when this session owns it (never another's). */
static void ctl_resign_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	char path[CLUSTER_PATH_MAX];

	if (res->err != SL_OK || cl->stopping || cl->ctl != NULL ||
	    res->stat.ephemeral_owner != zk_session_id(zk))
		return;
	cluster_path(cl, path, "/controller");
	(void)zk_delete(zk, path, res->stat.version, ctl_nop_done, NULL);
}

/* Deposed or broken: stop acting; the election runs again (the exists
 * watch on /controller fires once our node is gone). */
static void ctl_resign(struct controller *ctl, const char *why)
{
	struct cluster *cl = ctl->cl;
	char path[CLUSTER_PATH_MAX];

	LOG_W(0, "controller: %s: resigning", why);
	controller_stop(cl);
	cluster_path(cl, path, "/controller");
	(void)zk_get(cl->zk, path, NULL, NULL, ctl_resign_got, cl);
}

static void ctl_retry_later(struct controller *ctl)
{
	struct shard *sh = ctl->cl->bs0->sh;

	if (!timer_armed(&ctl->retry))
		timer_add(&sh->timers, &ctl->retry,
			  shard_now_ns(sh) + (int64_t)CTL_RETRY_MS * 1000000);
}

static struct ctl_broker *ctl_broker_find(struct controller *ctl, int32_t id)
{
	for (uint32_t i = 0; i < ctl->nb; i++)
		if (ctl->brokers[i].id == id)
			return &ctl->brokers[i];
	return NULL;
}

static struct ctl_topic *ctl_topic_find(struct controller *ctl, const char *name, size_t len)
{
	for (uint32_t i = 0; i < ctl->nt; i++)
		if (strlen(ctl->topics[i].name) == len && memcmp(ctl->topics[i].name, name, len) == 0)
			return &ctl->topics[i];
	return NULL;
}

/* The live brokers as ctrl_rules sees them. */
static struct ctrl_cluster ctl_view(struct controller *ctl)
{
	struct ctrl_cluster c = { ctl->view, 0 };

	for (uint32_t i = 0; i < ctl->nb; i++) {
		if (!ctl->brokers[i].alive)
			continue;
		ctl->view[c.broker_count].id = ctl->brokers[i].id;
		ctl->view[c.broker_count].rack = ctl->brokers[i].has_rack ? ctl->brokers[i].rack
									  : NULL;
		ctl->view[c.broker_count].alive = true;
		ctl->view[c.broker_count].shutting_down = ctl->brokers[i].shutting_down;
		c.broker_count++;
	}
	return c;
}

/* ---- sending ---- */

struct ctl_send {
	struct controller *ctl;
	int32_t id;
	int16_t api;
	int64_t epoch;       /* the broker epoch the request carried */
};

static void ctl_send_done(struct kclient *kc, enum sl_err status, struct kread *body, void *arg)
{
	struct ctl_send *s = arg;
	struct controller *ctl = s->ctl;
	int16_t err = 0;

	(void)kc;
	if (status == SL_OK && body != NULL) {
		/* ErrorCode is the first field of both responses. */
		err = kread_i16(body);
	}
	if (status != SL_OK && status != SL_ECLOSED && !ctl->dead) {
		struct ctl_broker *b = ctl_broker_find(ctl, s->id);
		LOG_W(0, "controller: %s to broker %d failed: %s; resending",
		      s->api == KAFKA_API_UPDATE_METADATA ? "UpdateMetadata" : "LeaderAndIsr", s->id,
		      sl_err_str(status));
		if (b != NULL && b->alive) {
			b->fresh = true;
			ctl_retry_later(ctl);
		}
	} else if (status == SL_OK && err != 0) {
		LOG_W(0, "controller: broker %d answered %s with %s", s->id,
		      s->api == KAFKA_API_UPDATE_METADATA ? "UpdateMetadata" : "LeaderAndIsr",
		      kerr_name(err));
		/* STALE_BROKER_EPOCH: another process answers at that address
		 * (restarted, not registered yet or registered again): re-read
		 * the registrations (a new epoch is a bounce) and resend. */
		struct ctl_broker *b = ctl->dead ? NULL : ctl_broker_find(ctl, s->id);
		if (err == CTRL_KERR_STALE_BROKER_EPOCH && b != NULL && b->alive &&
		    b->epoch == s->epoch) {
			b->fresh = true;
			ctl_retry_later(ctl);
		}
	}
	free(s);
}

static void ctl_send(struct controller *ctl, struct ctl_broker *b, int16_t api, int16_t version,
		     const void *req)
{
	struct ctl_send *s = malloc(sizeof(*s));

	if (s == NULL || b->kc == NULL) {
		free(s);
		return;
	}
	s->ctl = ctl;
	s->id = b->id;
	s->api = api;
	s->epoch = b->epoch;
	enum sl_err err = kclient_send(b->kc, api, version, req, ctl_send_done, s);
	if (err != SL_OK) {
		LOG_W(0, "controller: cannot queue a request to broker %d: %s", b->id,
		      sl_err_str(err));
		free(s);
		b->fresh = true;
		ctl_retry_later(ctl);
	}
}

static struct karray_i32 ctl_arr(int32_t *items, uint32_t n)
{
	struct karray_i32 a = { (int32_t)n, items };
	return a;
}

/* Offline replicas of ps (not live) into out; returns the count. */
static uint32_t ctl_offline(struct controller *ctl, const struct ctrl_pstate *ps, int32_t *out)
{
	uint32_t n = 0;

	for (uint32_t r = 0; r < ps->replica_count; r++) {
		struct ctl_broker *b = ctl_broker_find(ctl, ps->replicas[r]);
		if (b == NULL || !b->alive)
			out[n++] = ps->replicas[r];
	}
	return n;
}

/* UpdateMetadata: every live broker and every partition with a state, to every live broker. */
static void ctl_send_um(struct controller *ctl)
{
	struct UpdateMetadataRequest rq;
	uint32_t total = 0;

	for (uint32_t t = 0; t < ctl->nt; t++)
		total += ctl->topics[t].count;
	struct UpdateMetadataRequest_UpdateMetadataBroker *lb =
		calloc(ctl->nb + 1, sizeof(*lb));
	struct UpdateMetadataRequest_UpdateMetadataEndpoint *ep = calloc(ctl->nb + 1, sizeof(*ep));
	struct UpdateMetadataRequest_UpdateMetadataTopicState *ts =
		calloc(ctl->nt + 1, sizeof(*ts));
	struct UpdateMetadataRequest_UpdateMetadataPartitionState *pst =
		calloc(total + 1, sizeof(*pst));
	int32_t *offline = calloc((size_t)total * CTRL_REPLICAS_MAX + 1, sizeof(int32_t));
	uint32_t nlb = 0;

	if (lb == NULL || ep == NULL || ts == NULL || pst == NULL || offline == NULL)
		goto out;
	for (uint32_t i = 0; i < ctl->nb; i++) {
		struct ctl_broker *b = &ctl->brokers[i];
		if (!b->alive)
			continue;
		kafka_init_update_metadata_request_update_metadata_broker(&lb[nlb]);
		kafka_init_update_metadata_request_update_metadata_endpoint(&ep[nlb]);
		ep[nlb].Port = b->port;
		ep[nlb].Host = (struct kslice){ (const uint8_t *)b->host, (int32_t)strlen(b->host) };
		ep[nlb].Listener = (struct kslice){ (const uint8_t *)"PLAINTEXT", 9 };
		ep[nlb].SecurityProtocol = 0;
		lb[nlb].Id = b->id;
		lb[nlb].V0Host = ep[nlb].Host;
		lb[nlb].V0Port = b->port;
		lb[nlb].Endpoints.count = 1;
		lb[nlb].Endpoints.items = &ep[nlb];
		lb[nlb].Rack = b->has_rack ? (struct kslice){ (const uint8_t *)b->rack,
							      (int32_t)strlen(b->rack) }
					   : KSLICE_NULL;
		nlb++;
	}
	/* Chunks of whole topics, each at most CONTROLLER_PARTS_PER_REQUEST
	 * partitions (a bigger topic goes alone). */
	uint32_t t = 0, pi = 0, oi = 0;
	for (uint32_t chunk = 0; chunk <= ctl->nt; chunk++) {
		uint32_t first_t = t, nparts = 0, nts = 0;
		while (t < ctl->nt && (nparts == 0 || nparts + ctl->topics[t].count <=
							       CONTROLLER_PARTS_PER_REQUEST)) {
			struct ctl_topic *tp = &ctl->topics[t];
			struct UpdateMetadataRequest_UpdateMetadataTopicState *x = &ts[first_t + nts];
			kafka_init_update_metadata_request_update_metadata_topic_state(x);
			x->TopicName = (struct kslice){ (const uint8_t *)tp->name,
							(int32_t)strlen(tp->name) };
			x->TopicId = tp->id;
			x->PartitionStates.items = &pst[pi];
			x->PartitionStates.count = 0;
			for (uint32_t p = 0; p < tp->count; p++) {
				if (!tp->has[p])
					continue;
				struct ctrl_pstate *ps = &tp->ps[p];
				struct UpdateMetadataRequest_UpdateMetadataPartitionState *o = &pst[pi++];
				kafka_init_update_metadata_request_update_metadata_partition_state(o);
				o->TopicName = x->TopicName;
				o->PartitionIndex = (int32_t)p;
				o->ControllerEpoch = ps->controller_epoch;
				o->Leader = tp->deleting ? CD_LEADER_DURING_DELETE : ps->leader;
				o->LeaderEpoch = ps->leader_epoch;
				o->Isr = ctl_arr(ps->isr, ps->isr_count);
				o->ZkVersion = ps->partition_epoch;
				o->Replicas = ctl_arr(ps->replicas, ps->replica_count);
				uint32_t no = ctl_offline(ctl, ps, &offline[oi]);
				o->OfflineReplicas = ctl_arr(&offline[oi], no);
				oi += no;
				x->PartitionStates.count++;
			}
			nparts += tp->count;
			nts++;
			t++;
		}
		if (nts == 0 && chunk > 0)
			break;
		kafka_init_update_metadata_request(&rq);
		rq.ControllerId = ctl->cl->b->node_id;
		rq.ControllerEpoch = ctl->epoch;
		rq.Type = 0;
		rq.UngroupedPartitionStates.count = 0;
		rq.TopicStates.count = (int32_t)nts;
		rq.TopicStates.items = &ts[first_t];
		rq.LiveBrokers.count = (int32_t)nlb;
		rq.LiveBrokers.items = lb;
		for (uint32_t i = 0; i < ctl->nb; i++) {
			struct ctl_broker *b = &ctl->brokers[i];
			if (!b->alive)
				continue;
			rq.BrokerEpoch = b->epoch;
			ctl_send(ctl, b, KAFKA_API_UPDATE_METADATA, CTL_UM_VERSION, &rq);
		}
		if (t >= ctl->nt)
			break;
	}
out:
	free(lb);
	free(ep);
	free(ts);
	free(pst);
	free(offline);
}

/* LeaderAndIsr to broker b: its partitions that are dirty (or all when b->fresh). */
static void ctl_send_lair(struct controller *ctl, struct ctl_broker *b)
{
	uint32_t total = 0;

	for (uint32_t t = 0; t < ctl->nt; t++)
		total += ctl->topics[t].count;
	struct LeaderAndIsrRequest_LeaderAndIsrTopicState *ts = calloc(ctl->nt + 1, sizeof(*ts));
	struct LeaderAndIsrRequest_LeaderAndIsrPartitionState *pst =
		calloc(total + 1, sizeof(*pst));
	struct LeaderAndIsrRequest_LeaderAndIsrLiveLeader *ll = calloc(ctl->nb + 1, sizeof(*ll));
	struct LeaderAndIsrRequest rq;
	uint32_t nll = 0, pi = 0, nts = 0, nparts = 0;
	bool split = false;

	if (ts == NULL || pst == NULL || ll == NULL)
		goto out;
	for (uint32_t i = 0; i < ctl->nb; i++) {
		struct ctl_broker *x = &ctl->brokers[i];
		if (!x->alive)
			continue;
		kafka_init_leader_and_isr_request_leader_and_isr_live_leader(&ll[nll]);
		ll[nll].BrokerId = x->id;
		ll[nll].HostName = (struct kslice){ (const uint8_t *)x->host, (int32_t)strlen(x->host) };
		ll[nll].Port = x->port;
		nll++;
	}
	kafka_init_leader_and_isr_request(&rq);
	rq.ControllerId = ctl->cl->b->node_id;
	rq.ControllerEpoch = ctl->epoch;
	rq.BrokerEpoch = b->epoch;
	rq.UngroupedPartitionStates.count = 0;
	rq.LiveLeaders.count = (int32_t)nll;
	rq.LiveLeaders.items = ll;
	for (uint32_t t = 0; t <= ctl->nt; t++) {
		bool flush = t == ctl->nt;
		if (!flush) {
			struct ctl_topic *tp = &ctl->topics[t];
			struct LeaderAndIsrRequest_LeaderAndIsrTopicState *x = &ts[nts];
			kafka_init_leader_and_isr_request_leader_and_isr_topic_state(x);
			x->TopicName = (struct kslice){ (const uint8_t *)tp->name,
							(int32_t)strlen(tp->name) };
			x->TopicId = tp->id;
			x->PartitionStates.items = &pst[pi];
			x->PartitionStates.count = 0;
			for (uint32_t p = 0; p < tp->count; p++) {
				struct ctrl_pstate *ps = &tp->ps[p];
				if (!tp->has[p] || tp->deleting || !ctrl_pstate_has_replica(ps, b->id) ||
				    (!b->fresh && !tp->dirty[p]))
					continue;
				struct LeaderAndIsrRequest_LeaderAndIsrPartitionState *o = &pst[pi++];
				kafka_init_leader_and_isr_request_leader_and_isr_partition_state(o);
				o->TopicName = x->TopicName;
				o->PartitionIndex = (int32_t)p;
				o->ControllerEpoch = ps->controller_epoch;
				o->Leader = ps->leader;
				o->LeaderEpoch = ps->leader_epoch;
				o->Isr = ctl_arr(ps->isr, ps->isr_count);
				o->PartitionEpoch = ps->partition_epoch;
				o->Replicas = ctl_arr(ps->replicas, ps->replica_count);
				o->AddingReplicas = ctl_arr(NULL, 0);
				o->RemovingReplicas = ctl_arr(NULL, 0);
				o->IsNew = tp->is_new[p];
				o->LeaderRecoveryState = (int8_t)ps->leader_recovery_state;
				x->PartitionStates.count++;
				nparts++;
			}
			if (x->PartitionStates.count > 0)
				nts++;
			flush = nparts >= CONTROLLER_PARTS_PER_REQUEST;
		}
		if (!flush || (nts == 0 && !(b->fresh && t == ctl->nt && !split)))
			continue;
		split |= t < ctl->nt;
		rq.Type = b->fresh && !split ? CTL_TYPE_FULL : CTL_TYPE_INCREMENTAL;
		rq.TopicStates.count = (int32_t)nts;
		rq.TopicStates.items = ts;
		ctl_send(ctl, b, KAFKA_API_LEADER_AND_ISR, CTL_LAIR_VERSION, &rq);
		nts = 0;
		nparts = 0;
		pi = 0;
	}
out:
	free(ts);
	free(pst);
	free(ll);
}

/* End of a sync: tell the brokers, clear the marks, maybe run again. */
static void ctl_send_all(struct controller *ctl)
{
	for (uint32_t i = 0; i < ctl->nb; i++)
		if (ctl->brokers[i].alive)
			ctl_send_lair(ctl, &ctl->brokers[i]);
	ctl_send_um(ctl);
	for (uint32_t i = 0; i < ctl->nb; i++)
		ctl->brokers[i].fresh = false;
	for (uint32_t t = 0; t < ctl->nt; t++)
		for (uint32_t p = 0; p < ctl->topics[t].count; p++) {
			ctl->topics[t].dirty[p] = false;
			ctl->topics[t].is_new[p] = false;
		}
	ctl->um_wanted = false;
}

/* ---- WRITE ---- */

static void ctl_state_read(struct controller *ctl, uint32_t t, uint32_t p);

static void ctl_written(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;

	(void)zk;
	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	struct ctl_topic *tp = &ctl->topics[c->t];
	if (res->err == SL_OK) {
		tp->ps[c->p] = c->next;
		/* CREATE: version 0; SET: the new version. */
		tp->ps[c->p].partition_epoch = c->id == 1 && res->op_count > 1 ? res->ops[1].version
									       : 0;
		tp->has[c->p] = true;
		tp->dirty[c->p] = true;
	} else if (res->op_count > 0 && res->ops[0].zrc != ZK_ZOK &&
		   res->ops[0].zrc != ZK_ZRUNTIMEINCONSISTENCY) {
		free(c);
		ctl_resign(ctl, "the controller epoch moved on (another controller)");
		return;
	} else if (res->err == SL_ERANGE || res->err == SL_EEXIST || res->err == SL_ENOTFOUND) {
		/* Someone else changed the state: re-read it and sync again. */
		ctl->resync = true;
		ctl_state_read(ctl, c->t, c->p);
	} else {
		LOG_W(0, "controller: writing a partition state: %s (zk %d)", sl_err_str(res->err),
		      res->zrc);
		ctl->resync = true;
	}
	free(c);
	ctl_pending_done(ctl);
}

static void ctl_ignore_done(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;

	(void)zk;
	(void)res;
	(void)ctl_call_enter(c);
	free(c);
}

/* Writes `next` as partition p's state (create when `create`). */
static void ctl_state_write(struct controller *ctl, uint32_t t, uint32_t p,
			    const struct ctrl_pstate *next, bool create)
{
	struct ctl_topic *tp = &ctl->topics[t];
	char epath[CLUSTER_PATH_MAX], spath[CLUSTER_PATH_MAX], buf[1024];
	size_t len = 0;
	struct zk_op ops[2];
	struct ctl_call *c;

	if (ctrlj_pstate_encode(next, buf, sizeof(buf), &len) != SL_OK)
		return;
	if (create) {
		char ppath[CLUSTER_PATH_MAX];
		cluster_path(ctl->cl, ppath, "/brokers/topics/%s/partitions", tp->name);
		c = ctl_call_new(ctl, t, p);
		if (c != NULL)
			ctl_started(ctl, zk_create(ctl_zk(ctl), ppath, NULL, 0, ZK_PERSISTENT,
						   ctl_ignore_done, c), c, false);
		cluster_path(ctl->cl, ppath, "/brokers/topics/%s/partitions/%u", tp->name, p);
		c = ctl_call_new(ctl, t, p);
		if (c != NULL)
			ctl_started(ctl, zk_create(ctl_zk(ctl), ppath, NULL, 0, ZK_PERSISTENT,
						   ctl_ignore_done, c), c, false);
	}
	cluster_path(ctl->cl, epath, "/controller_epoch");
	cluster_path(ctl->cl, spath, "/brokers/topics/%s/partitions/%u/state", tp->name, p);
	memset(ops, 0, sizeof(ops));
	ops[0] = (struct zk_op){ .type = ZK_OP_CHECK, .path = epath, .version = ctl->epoch_version };
	if (create)
		ops[1] = (struct zk_op){ .type = ZK_OP_CREATE, .path = spath, .data = buf,
					 .data_len = (uint32_t)len, .flags = ZK_PERSISTENT };
	else
		ops[1] = (struct zk_op){ .type = ZK_OP_SET, .path = spath, .data = buf,
					 .data_len = (uint32_t)len, .version = next->partition_epoch };
	c = ctl_call_new(ctl, t, p);
	if (c == NULL)
		return;
	c->next = *next;
	c->next.partition_epoch = 0;
	c->id = create ? 0 : 1;
	ctl_started(ctl, zk_multi(ctl_zk(ctl), ops, 2, ctl_written, c), c, true);
}

static bool ctl_state_same(const struct ctrl_pstate *a, const struct ctrl_pstate *b)
{
	return a->leader == b->leader && a->leader_epoch == b->leader_epoch &&
	       a->isr_count == b->isr_count &&
	       memcmp(a->isr, b->isr, a->isr_count * sizeof(a->isr[0])) == 0;
}

/* `view` without the bounced brokers, into `buf` (view.broker_count entries). */
static struct ctrl_cluster ctl_fail_view(const struct controller *ctl,
					 const struct ctrl_cluster *view, struct ctrl_broker *buf)
{
	struct ctrl_cluster c = { buf, 0 };

	for (uint32_t i = 0; i < view->broker_count; i++) {
		bool bounced = false;
		for (uint32_t k = 0; k < ctl->nb; k++)
			if (ctl->brokers[k].id == view->brokers[i].id)
				bounced = ctl->brokers[k].bounced;
		if (!bounced)
			buf[c.broker_count++] = view->brokers[i];
	}
	SL_ASSERT(c.broker_count <= view->broker_count);
	return c;
}

/* Decides and writes every partition that needs it. */
static void ctl_write_phase(struct controller *ctl)
{
	struct ctrl_cluster view = ctl_view(ctl);
	bool unclean = ctl->cl->b->config->unclean_leader_election_enable;
	/* The failure half of a bounce sees the bounced brokers as dead. */
	struct ctrl_broker *fb = calloc(view.broker_count + 1, sizeof(*fb));
	struct ctrl_cluster fview = fb != NULL ? ctl_fail_view(ctl, &view, fb) : view;

	ctl->phase = CTL_WRITE;
	for (uint32_t t = 0; t < ctl->nt; t++) {
		struct ctl_topic *tp = &ctl->topics[t];
		if (tp->deleting)
			continue;   /* no elections for a topic being deleted */
		for (uint32_t p = 0; p < tp->count; p++) {
			struct ctrl_pstate next;
			if (!tp->has[p]) {
				if (ctrl_pstate_init(&view, tp->ps[p].replicas, tp->ps[p].replica_count,
						     ctl->epoch, &next) != SL_OK)
					continue;
				tp->is_new[p] = true;
				ctl_state_write(ctl, t, p, &next, true);
				continue;
			}
			next = tp->ps[p];
			for (uint32_t r = 0; r < tp->ps[p].replica_count; r++) {
				int32_t id = tp->ps[p].replicas[r];
				enum ctrl_change chg;
				/* Registered (shutting down or not) and not bounced:
				 * not failed. */
				if (ctrl_cluster_find(&fview, id) != NULL)
					continue;
				if (next.leader != id && !ctrl_pstate_in_isr(&next, id))
					continue;
				(void)ctrl_broker_failed(&fview, id, &unclean, &next, 1, &chg, NULL);
			}
			if (next.leader == CTRL_NO_LEADER) {
				struct ctrl_pstate n2;
				if (ctrl_elect(&view, &next, unclean ? CTRL_ELECT_OFFLINE_UNCLEAN
								     : CTRL_ELECT_OFFLINE, &n2) ==
				    CTRL_KERR_NONE)
					next = n2;
			}
			if (ctl_state_same(&next, &tp->ps[p]))
				continue;
			next.controller_epoch = ctl->epoch;
			next.partition_epoch = tp->ps[p].partition_epoch;
			LOG_I(0, "controller: %s-%u leader %d -> %d, epoch %d, isr %u", tp->name, p,
			      tp->ps[p].leader, next.leader, next.leader_epoch, next.isr_count);
			ctl_state_write(ctl, t, p, &next, false);
		}
	}
	free(fb);
	if (ctl->pending == 0)
		ctl_phase_done(ctl);
}

/* ---- TOPICS ---- */

static void ctl_state_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;
	const char *why = NULL;

	(void)zk;
	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	struct ctl_topic *tp = &ctl->topics[c->t];
	if (c->p < tp->count) {
		if (res->err == SL_OK) {
			struct ctrl_pstate ps = tp->ps[c->p];
			if (ctrlj_pstate_decode(res->data, res->data_len, &ps, &why) == SL_OK) {
				ps.partition_epoch = res->stat.version;
				tp->ps[c->p] = ps;
				tp->has[c->p] = true;
			} else {
				LOG_W(0, "controller: %s-%u state: %s", tp->name, c->p, why);
			}
		} else if (res->err == SL_ENOTFOUND) {
			tp->has[c->p] = false;
		} else {
			ctl->resync = true;
		}
	}
	free(c);
	ctl_pending_done(ctl);
}

static void ctl_state_read(struct controller *ctl, uint32_t t, uint32_t p)
{
	char path[CLUSTER_PATH_MAX];
	struct ctl_call *c = ctl_call_new(ctl, t, p);

	if (c == NULL)
		return;
	cluster_path(ctl->cl, path, "/brokers/topics/%s/partitions/%u/state", ctl->topics[t].name, p);
	if (!ctl_started(ctl, zk_get(ctl_zk(ctl), path, NULL, NULL, ctl_state_got, c), c, true))
		ctl->resync = true;
}

static void ctl_topic_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;
	struct ctrlj_topic jt;
	const char *why = NULL;

	(void)zk;
	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	struct ctl_topic *tp = &ctl->topics[c->t];
	if (res->err == SL_OK &&
	    ctrlj_topic_decode(res->data, res->data_len, &jt, &why) == SL_OK) {
		uint32_t n = jt.partition_count;
		tp->ps = calloc(n + 1, sizeof(*tp->ps));
		tp->has = calloc(n + 1, sizeof(bool));
		tp->dirty = calloc(n + 1, sizeof(bool));
		tp->is_new = calloc(n + 1, sizeof(bool));
		if (jt.has_topic_id)
			(void)ctrlj_uuid_parse(jt.topic_id, strlen(jt.topic_id), tp->id.b);
		if (tp->ps != NULL && tp->has != NULL && tp->dirty != NULL && tp->is_new != NULL) {
			tp->count = n;
			for (uint32_t p = 0; p < n; p++) {
				tp->ps[p].replica_count = jt.parts[p].replica_count;
				memcpy(tp->ps[p].replicas, jt.parts[p].replicas,
				       jt.parts[p].replica_count * sizeof(int32_t));
				tp->ps[p].leader = CTRL_NO_LEADER;
				ctl_state_read(ctl, c->t, p);
			}
		}
		ctrlj_topic_free(&jt);
	} else if (res->err == SL_OK) {
		LOG_W(0, "controller: topic %s: %s", tp->name, why);
	} else if (res->err != SL_ENOTFOUND) {
		ctl->resync = true;
	}
	free(c);
	ctl_pending_done(ctl);
}

static void ctl_topics_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;
	char path[CLUSTER_PATH_MAX];

	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	free(c);
	if (res->err != SL_OK) {
		ctl->resync = true;
		ctl_retry_later(ctl);
		ctl_pending_done(ctl);
		return;
	}
	for (uint32_t i = 0; i < ctl->nt; i++)
		ctl->topics[i].seen = false;
	for (uint32_t i = 0; i < res->child_count; i++) {
		const char *name = res->children[i];
		struct ctl_topic *tp = ctl_topic_find(ctl, name, strlen(name));
		if (tp != NULL) {
			tp->seen = true;
			continue;
		}
		if (ctl->nt == ctl->capt) {
			uint32_t cap = ctl->capt ? ctl->capt * 2 : 16;
			struct ctl_topic *nt = realloc(ctl->topics, cap * sizeof(*nt));
			if (nt == NULL)
				break;
			ctl->topics = nt;
			ctl->capt = cap;
		}
		tp = &ctl->topics[ctl->nt];
		memset(tp, 0, sizeof(*tp));
		tp->name = strdup(name);
		if (tp->name == NULL)
			break;
		tp->seen = true;
		uint32_t idx = ctl->nt++;
		struct ctl_call *tc = ctl_call_new(ctl, idx, 0);
		if (tc == NULL)
			continue;
		cluster_path(ctl->cl, path, "/brokers/topics/%s", name);
		/* The data watch: partition modifications (ctrl_delete.h). */
		ctl_started(ctl, zk_get(zk, path, ctrl_topic_watch, ctl->cl, ctl_topic_got, tc), tc,
			    true);
	}
	/* Topics gone from ZooKeeper stay known (indexes are stable;
	 * deletion is not served yet). */
	ctl_pending_done(ctl);
}

static void ctl_topics_phase(struct controller *ctl)
{
	char path[CLUSTER_PATH_MAX];
	struct ctl_call *c = ctl_call_new(ctl, 0, 0);

	ctl->phase = CTL_TOPICS;
	cluster_path(ctl->cl, path, "/brokers/topics");
	if (c == NULL || !ctl_started(ctl, zk_get_children(ctl_zk(ctl), path, ctl_topics_watch,
							   ctl->cl, ctl_topics_got, c), c, true)) {
		ctl->resync = true;
		ctl_retry_later(ctl);
		ctl_write_phase(ctl);
	}
}

/* ---- BROKERS ---- */

static void ctl_broker_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;
	struct ctrlj_broker jb;
	const char *why = NULL;

	(void)zk;
	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	struct ctl_broker *b = ctl_broker_find(ctl, c->id);
	if (b != NULL && b->alive && res->err == SL_OK && res->stat.czxid == b->epoch) {
		/* Same registration (re-read because it is shutting down). */
	} else if (b != NULL && res->err == SL_OK &&
	    ctrlj_broker_decode(res->data, res->data_len, &jb, &why) == SL_OK) {
		if (b->alive && res->stat.czxid != b->epoch) {
			/* Restarted (or a new session) since we last looked: the
			 * write phase handles a failure, then this startup. */
			LOG_W(0, "controller: broker %d registered again (epoch %lld -> %lld): "
			      "bounced", b->id, (long long)b->epoch, (long long)res->stat.czxid);
			b->bounced = true;
			if (b->kc != NULL)
				kclient_close(b->kc);
			b->kc = NULL;
		}
		snprintf(b->host, sizeof(b->host), "%s", jb.host);
		b->port = jb.port;
		for (uint32_t e = 0; e < jb.endpoint_count; e++) {
			if (strcmp(jb.endpoints[e].listener, "PLAINTEXT") == 0 ||
			    (b->port < 0 && e == 0)) {
				snprintf(b->host, sizeof(b->host), "%s", jb.endpoints[e].host);
				b->port = jb.endpoints[e].port;
			}
		}
		b->has_rack = jb.has_rack;
		snprintf(b->rack, sizeof(b->rack), "%s", jb.has_rack ? jb.rack : "");
		b->epoch = res->stat.czxid;
		if (b->kc == NULL && b->port > 0) {
			struct kclient_config kcfg;
			memset(&kcfg, 0, sizeof(kcfg));
			kcfg.client_id = "sluice-controller";
			kcfg.inflight_max = KCLIENT_INFLIGHT_MAX;
			if (kclient_open(&b->kc, ctl->cl->bs0->sh,
					 b->host[0] != '\0' ? b->host : "127.0.0.1",
					 (uint16_t)b->port, &kcfg) != SL_OK)
				b->kc = NULL;
		}
		b->alive = true;
		b->fresh = true;
		b->shutting_down = false;
		LOG_I(0, "controller: broker %d is live at %s:%d", b->id, b->host, b->port);
	} else if (b != NULL) {
		if (res->err == SL_OK)
			LOG_W(0, "controller: broker %d registration: %s", b->id, why);
		else if (res->err != SL_ENOTFOUND)
			ctl->resync = true;
	}
	free(c);
	ctl_pending_done(ctl);
}

static void ctl_brokers_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;
	char path[CLUSTER_PATH_MAX];

	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	free(c);
	if (res->err != SL_OK) {
		ctl->resync = true;
		ctl_retry_later(ctl);
		ctl_pending_done(ctl);
		return;
	}
	for (uint32_t i = 0; i < ctl->nb; i++)
		ctl->brokers[i].seen = false;
	for (uint32_t i = 0; i < res->child_count; i++) {
		char *end = NULL;
		long id = strtol(res->children[i], &end, 10);
		if (end == res->children[i] || *end != '\0' || id < 0 || id > INT32_MAX)
			continue;
		struct ctl_broker *b = ctl_broker_find(ctl, (int32_t)id);
		/* Every registration is read again: its czxid (the broker
		 * epoch) tells a broker restarted inside its old session
		 * (bounced) from the one we know (Kafka's processBrokerChange). */
		if (b == NULL) {
			if (ctl->nb == ctl->capb) {
				uint32_t cap = ctl->capb ? ctl->capb * 2 : 8;
				struct ctl_broker *nb = realloc(ctl->brokers, cap * sizeof(*nb));
				struct ctrl_broker *nv = realloc(ctl->view, cap * sizeof(*nv));
				if (nb != NULL)
					ctl->brokers = nb;
				if (nv != NULL)
					ctl->view = nv;
				if (nb == NULL || nv == NULL)
					break;
				ctl->capb = cap;
			}
			b = &ctl->brokers[ctl->nb++];
			memset(b, 0, sizeof(*b));
			b->id = (int32_t)id;
		}
		b->seen = true;
		struct ctl_call *bc = ctl_call_new(ctl, 0, 0);
		if (bc == NULL)
			continue;
		bc->id = (int32_t)id;
		cluster_path(ctl->cl, path, "/brokers/ids/%ld", id);
		ctl_started(ctl, zk_get(zk, path, NULL, NULL, ctl_broker_got, bc), bc, true);
	}
	/* Brokers whose registration is gone. */
	for (uint32_t i = 0; i < ctl->nb;) {
		struct ctl_broker *b = &ctl->brokers[i];
		if (b->seen) {
			i++;
			continue;
		}
		LOG_I(0, "controller: broker %d is gone", b->id);
		if (b->kc != NULL)
			kclient_close(b->kc);
		ctl->brokers[i] = ctl->brokers[--ctl->nb];
	}
	ctl_pending_done(ctl);
}

static void ctl_brokers_phase(struct controller *ctl)
{
	char path[CLUSTER_PATH_MAX];
	struct ctl_call *c = ctl_call_new(ctl, 0, 0);

	ctl->phase = CTL_BROKERS;
	cluster_path(ctl->cl, path, "/brokers/ids");
	if (c == NULL || !ctl_started(ctl, zk_get_children(ctl_zk(ctl), path, ctl_brokers_watch,
							   ctl->cl, ctl_brokers_got, c), c, true)) {
		ctl->resync = true;
		ctl_retry_later(ctl);
		ctl_topics_phase(ctl);
	}
}

/* ---- EPOCH ---- */

static void ctl_epoch_get(struct controller *ctl);

static void ctl_epoch_set(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;

	(void)zk;
	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	int32_t epoch = c->id;
	free(c);
	ctl->pending--;
	if (res->err != SL_OK) {
		ctl_resign(ctl, "cannot bump /controller_epoch");
		return;
	}
	ctl->epoch = epoch;
	ctl->epoch_version = res->stat.version;
	LOG_I(0, "controller: broker %d is the controller, epoch %d (zkVersion %d)",
	      ctl->cl->b->node_id, ctl->epoch, ctl->epoch_version);
	ctl_brokers_phase(ctl);
}

static void ctl_epoch_created(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;

	(void)zk;
	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	free(c);
	ctl->pending--;
	if (res->err != SL_OK && res->err != SL_EEXIST) {
		ctl_resign(ctl, "cannot create /controller_epoch");
		return;
	}
	ctl_epoch_get(ctl);
}

static void ctl_epoch_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;
	char path[CLUSTER_PATH_MAX], buf[32];
	size_t len = 0;
	int32_t epoch = 0;
	const char *why = NULL;

	if (!ctl_call_enter(c)) {
		free(c);
		return;
	}
	ctl->pending--;
	cluster_path(ctl->cl, path, "/controller_epoch");
	if (res->err == SL_ENOTFOUND) {
		/* Kafka's initial epoch 0 (zkVersion 0); the bump makes it 1. */
		if (!ctl_started(ctl, zk_create(zk, path, "0", 1, ZK_PERSISTENT, ctl_epoch_created,
						c), c, true))
			ctl_resign(ctl, "cannot create /controller_epoch");
		return;
	}
	if (res->err != SL_OK || res->data == NULL ||
	    ctrlj_epoch_decode(res->data, res->data_len, &epoch, &why) != SL_OK) {
		free(c);
		ctl_resign(ctl, "cannot read /controller_epoch");
		return;
	}
	c->id = epoch + 1;
	if (ctrlj_epoch_encode(epoch + 1, buf, sizeof(buf), &len) != SL_OK ||
	    !ctl_started(ctl, zk_set(zk, path, buf, (uint32_t)len, res->stat.version, ctl_epoch_set,
				     c), c, true))
		ctl_resign(ctl, "cannot bump /controller_epoch");
}

static void ctl_epoch_get(struct controller *ctl)
{
	char path[CLUSTER_PATH_MAX];
	struct ctl_call *c = ctl_call_new(ctl, 0, 0);

	ctl->phase = CTL_EPOCH;
	cluster_path(ctl->cl, path, "/controller_epoch");
	if (c == NULL ||
	    !ctl_started(ctl, zk_get(ctl_zk(ctl), path, NULL, NULL, ctl_epoch_got, c), c, true))
		ctl_resign(ctl, "cannot read /controller_epoch");
}

/* ---- the sync loop ---- */

static void ctl_phase_done(struct controller *ctl)
{
	switch (ctl->phase) {
	case CTL_BROKERS:
		ctl_topics_phase(ctl);
		return;
	case CTL_TOPICS:
		ctl_write_phase(ctl);
		return;
	case CTL_WRITE:
		ctl_send_all(ctl);
		/* Every write of the failure half went through: the bounced
		 * brokers are plain live brokers now (else the next sync
		 * handles their failure again). */
		for (uint32_t i = 0; i < ctl->nb && !ctl->resync; i++)
			ctl->brokers[i].bounced = false;
		ctl->phase = CTL_IDLE;
		ctl->busy = false;
		if (ctl->resync && ctl->retries < CONTROLLER_SYNC_RETRIES) {
			ctl->retries++;
			ctl->resync = false;
			ctl_sync(ctl);
		} else if (!ctl->resync) {
			ctl->retries = 0;
		} else {
			ctl->resync = false;
			ctl->retries = 0;
			ctl_retry_later(ctl);
		}
		return;
	default:
		return;
	}
}

static void ctl_sync(struct controller *ctl)
{
	if (ctl->dead)
		return;
	if (ctl->busy || ctl->phase == CTL_EPOCH) {
		ctl->resync = true;
		return;
	}
	ctl->busy = true;
	ctl->pending = 0;
	ctl_brokers_phase(ctl);
}

static void ctl_retry_fire(struct timer *t, void *ctx)
{
	struct controller *ctl =
		(struct controller *)(void *)((char *)t - offsetof(struct controller, retry));

	(void)ctx;
	ctl_sync(ctl);
}

static void ctl_brokers_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg)
{
	struct cluster *cl = arg;

	(void)zk;
	if (ev->type != ZK_WATCH_LOST && cl->ctl != NULL)
		ctl_sync(cl->ctl);
}

static void ctl_topics_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg)
{
	struct cluster *cl = arg;

	(void)zk;
	if (ev->type != ZK_WATCH_LOST && cl->ctl != NULL)
		ctl_sync(cl->ctl);
}

/* ---- public ---- */

void controller_start(struct cluster *cl)
{
	struct controller *ctl = calloc(1, sizeof(*ctl));

	SL_ASSERT(cl->ctl == NULL);
	if (ctl == NULL) {
		LOG_E(0, "controller: out of memory");
		return;
	}
	ctl->cl = cl;
	timer_init(&ctl->retry, ctl_retry_fire);
	cl->ctl = ctl;
	ctl->busy = true;
	ctl->del = ctrl_delete_start(cl, ctl);
	ctl_epoch_get(ctl);
}

void controller_stop(struct cluster *cl)
{
	struct controller *ctl = cl->ctl;

	if (ctl == NULL)
		return;
	cl->ctl = NULL;
	ctl->dead = true;
	ctrl_delete_stop(ctl->del);
	ctl->del = NULL;
	if (timer_armed(&ctl->retry))
		timer_cancel(&cl->bs0->sh->timers, &ctl->retry);
	for (uint32_t i = 0; i < ctl->nb; i++) {
		if (ctl->brokers[i].kc != NULL)
			kclient_close(ctl->brokers[i].kc);
		ctl->brokers[i].kc = NULL;
	}
	LOG_I(0, "controller: broker %d stopped acting as controller (epoch %d)", cl->b->node_id,
	      ctl->epoch);
	if (ctl->ops == 0)
		ctl_free(ctl);
}

void controller_reconnected(struct cluster *cl)
{
	if (cl->ctl != NULL && !cl->ctl->busy)
		ctl_sync(cl->ctl);
}

/* ---- AlterPartition ---- */

struct ctl_ap {
	uint32_t pending;
	controller_ap_done_fn *done;
	void *arg;
	bool um;
};

static void ctl_ap_finish(struct controller *ctl, struct ctl_ap *ap)
{
	if (--ap->pending > 0)
		return;
	bool um = ap->um;
	ap->done(ap->arg);
	free(ap);
	if (um && ctl != NULL && !ctl->dead) {
		if (ctl->busy)
			ctl->resync = true;
		else
			ctl_send_um(ctl);
	}
}

static void ctl_ap_fill(struct AlterPartitionResponse_PartitionData *o, const struct ctrl_pstate *ps,
			int16_t err)
{
	o->ErrorCode = err;
	if (err != 0)
		return;
	o->LeaderId = ps->leader;
	o->LeaderEpoch = ps->leader_epoch;
	o->PartitionEpoch = ps->partition_epoch;
	o->LeaderRecoveryState = (int8_t)ps->leader_recovery_state;
	/* Isr points into the controller's memory: copied by the caller's
	 * encoder before the controller changes it (same shard turn). */
}

static void ctl_ap_written(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;
	struct ctl_ap *ap = c->ap;

	(void)zk;
	if (!ctl_call_enter(c)) {
		c->out->ErrorCode = CTRL_KERR_NOT_CONTROLLER;
		free(c);
		ctl_ap_finish(NULL, ap);
		return;
	}
	struct ctl_topic *tp = &ctl->topics[c->t];
	if (res->err == SL_OK && c->t < ctl->nt && c->p < tp->count) {
		tp->ps[c->p] = c->next;
		tp->ps[c->p].partition_epoch = res->ops[1].version;
		ctl_ap_fill(c->out, &tp->ps[c->p], 0);
		memcpy(c->out->Isr.items, tp->ps[c->p].isr, tp->ps[c->p].isr_count * sizeof(int32_t));
		c->out->Isr.count = (int32_t)tp->ps[c->p].isr_count;
		ap->um = true;
	} else if (res->op_count > 0 && res->ops[0].zrc != ZK_ZOK &&
		   res->ops[0].zrc != ZK_ZRUNTIMEINCONSISTENCY) {
		c->out->ErrorCode = CTRL_KERR_NOT_CONTROLLER;
	} else if (res->err == SL_ERANGE) {
		c->out->ErrorCode = CTRL_KERR_INVALID_UPDATE_VERSION;
		ctl_state_read(ctl, c->t, c->p);
	} else {
		c->out->ErrorCode = KERR_REQUEST_TIMED_OUT;
	}
	free(c);
	ctl_ap_finish(ctl, ap);
}

bool controller_alter_partition(struct cluster *cl, const struct AlterPartitionRequest *in,
				int16_t version, struct AlterPartitionResponse *out,
				controller_ap_done_fn *done, void *arg)
{
	struct controller *ctl = cl->ctl;
	struct ctl_ap *ap;

	if (ctl == NULL || ctl->dead || ctl->phase == CTL_EPOCH)
		return false;
	/* Kafka's ZK controller: the sender must be registered with exactly
	 * the epoch it names (-1: not sent, Sluice's own brokers). */
	const struct ctl_broker *sender = ctl_broker_find(ctl, in->BrokerId);
	if (ctrl_broker_epoch_exact_stale(in->BrokerEpoch, sender != NULL && sender->alive
							   ? sender->epoch : CTRL_EPOCH_UNKNOWN)) {
		LOG_W(0, "controller: AlterPartition from broker %d with stale broker epoch %lld",
		      in->BrokerId, (long long)in->BrokerEpoch);
		out->ErrorCode = CTRL_KERR_STALE_BROKER_EPOCH;
		done(arg);
		return true;
	}
	ap = calloc(1, sizeof(*ap));
	if (ap == NULL)
		return false;
	ap->pending = 1;
	ap->done = done;
	ap->arg = arg;
	struct ctrl_cluster view = ctl_view(ctl);
	for (int32_t i = 0; i < in->Topics.count; i++) {
		const struct AlterPartitionRequest_TopicData *td = &in->Topics.items[i];
		struct AlterPartitionResponse_TopicData *to = &out->Topics.items[i];
		uint32_t t = UINT32_MAX;
		for (uint32_t k = 0; k < ctl->nt; k++) {
			if (version >= 2 ? memcmp(ctl->topics[k].id.b, td->TopicId.b, 16) == 0
					 : (td->TopicName.len >= 0 &&
					    strlen(ctl->topics[k].name) == (size_t)td->TopicName.len &&
					    memcmp(ctl->topics[k].name, td->TopicName.ptr,
						   (size_t)td->TopicName.len) == 0)) {
				t = k;
				break;
			}
		}
		for (int32_t j = 0; j < td->Partitions.count; j++) {
			const struct AlterPartitionRequest_PartitionData *pd = &td->Partitions.items[j];
			struct AlterPartitionResponse_PartitionData *o = &to->Partitions.items[j];
			o->PartitionIndex = pd->PartitionIndex;
			if (t == UINT32_MAX || pd->PartitionIndex < 0 ||
			    (uint32_t)pd->PartitionIndex >= ctl->topics[t].count ||
			    !ctl->topics[t].has[pd->PartitionIndex]) {
				o->ErrorCode = version >= 2 ? KERR_UNKNOWN_TOPIC_ID
							    : KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			struct ctl_topic *tp = &ctl->topics[t];
			struct ctrl_pstate *cur = &tp->ps[pd->PartitionIndex];
			int32_t isr[CTRL_REPLICAS_MAX];
			uint32_t n = 0;
			if (version >= 3) {
				for (int32_t k = 0; k < pd->NewIsrWithEpochs.count && n < CTRL_REPLICAS_MAX; k++)
					isr[n++] = pd->NewIsrWithEpochs.items[k].BrokerId;
			} else {
				for (int32_t k = 0; k < pd->NewIsr.count && n < CTRL_REPLICAS_MAX; k++)
					isr[n++] = pd->NewIsr.items[k];
			}
			struct ctrl_isr_req rq = {
				.broker_id = in->BrokerId, .leader_epoch = pd->LeaderEpoch,
				.partition_epoch = pd->PartitionEpoch, .isr = isr, .isr_count = n,
				.leader_recovery_state = (uint8_t)pd->LeaderRecoveryState,
				.api_version = version,
			};
			struct ctrl_pstate next;
			int16_t kerr = ctrl_alter_partition(&view, cur, &rq, &next);
			if (kerr != CTRL_KERR_NONE) {
				o->ErrorCode = kerr;
				continue;
			}
			if (next.partition_epoch == cur->partition_epoch) {
				ctl_ap_fill(o, cur, 0);
				memcpy(o->Isr.items, cur->isr, cur->isr_count * sizeof(int32_t));
				o->Isr.count = (int32_t)cur->isr_count;
				continue;
			}
			char epath[CLUSTER_PATH_MAX], spath[CLUSTER_PATH_MAX], buf[1024];
			size_t len = 0;
			struct zk_op ops[2];
			next.controller_epoch = ctl->epoch;
			if (ctrlj_pstate_encode(&next, buf, sizeof(buf), &len) != SL_OK) {
				o->ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			cluster_path(cl, epath, "/controller_epoch");
			cluster_path(cl, spath, "/brokers/topics/%s/partitions/%d/state", tp->name,
				     pd->PartitionIndex);
			memset(ops, 0, sizeof(ops));
			ops[0] = (struct zk_op){ .type = ZK_OP_CHECK, .path = epath,
						 .version = ctl->epoch_version };
			ops[1] = (struct zk_op){ .type = ZK_OP_SET, .path = spath, .data = buf,
						 .data_len = (uint32_t)len,
						 .version = cur->partition_epoch };
			struct ctl_call *c = ctl_call_new(ctl, t, (uint32_t)pd->PartitionIndex);
			if (c == NULL) {
				o->ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			c->next = next;
			c->ap = ap;
			c->out = o;
			if (!ctl_started(ctl, zk_multi(ctl_zk(ctl), ops, 2, ctl_ap_written, c), c,
					 false)) {
				o->ErrorCode = KERR_REQUEST_TIMED_OUT;
				continue;
			}
			ap->pending++;
		}
	}
	ctl_ap_finish(ctl, ap);
	return true;
}

/* ---- ControlledShutdown ---- */

struct ctl_cs {
	uint32_t pending;             /* writes outstanding + 1 while issuing */
	int32_t broker;
	bool wrote;                   /* a state changed: tell the brokers */
	struct controller_cs_result *out;
	controller_cs_done_fn *done;
	void *arg;
};

/* Fills out->parts with the replicated partitions `broker` still leads. */
static void ctl_cs_remaining(struct controller *ctl, struct ctl_cs *cs)
{
	uint32_t n = 0;

	for (uint32_t t = 0; t < ctl->nt; t++)
		for (uint32_t p = 0; p < ctl->topics[t].count; p++)
			if (ctl->topics[t].has[p] && ctl->topics[t].ps[p].leader == cs->broker &&
			    ctl->topics[t].ps[p].replica_count > 1)
				n++;
	cs->out->count = 0;
	if (n == 0)
		return;
	cs->out->parts = calloc(n, sizeof(*cs->out->parts));
	if (cs->out->parts == NULL) {
		cs->out->error = KERR_UNKNOWN_SERVER_ERROR;
		return;
	}
	for (uint32_t t = 0; t < ctl->nt; t++) {
		struct ctl_topic *tp = &ctl->topics[t];
		for (uint32_t p = 0; p < tp->count && cs->out->count < n; p++) {
			if (!tp->has[p] || tp->ps[p].leader != cs->broker || tp->ps[p].replica_count <= 1)
				continue;
			struct controller_cs_part *o = &cs->out->parts[cs->out->count++];
			o->partition = (int32_t)p;
			snprintf(o->topic, sizeof(o->topic), "%s", tp->name);
		}
	}
}

/* One write (or the issuing pass) finished; the last one answers. */
static void ctl_cs_finish(struct controller *ctl, struct ctl_cs *cs)
{
	SL_ASSERT(cs->pending > 0);
	if (--cs->pending > 0)
		return;
	if (ctl == NULL || ctl->dead) {
		cs->out->error = CTRL_KERR_NOT_CONTROLLER;
	} else {
		ctl_cs_remaining(ctl, cs);
		if (cs->wrote) {
			/* A running sync sends the dirty partitions at its end. */
			if (ctl->busy)
				ctl->resync = true;
			else
				ctl_send_all(ctl);
		}
		LOG_I(0, "controller: controlled shutdown of broker %d: %u partitions remaining",
		      cs->broker, cs->out->count);
	}
	cs->done(cs->arg);
	free(cs);
}

static void ctl_cs_written(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct ctl_call *c = arg;
	struct controller *ctl = c->ctl;
	struct ctl_cs *cs = c->cs;

	(void)zk;
	if (!ctl_call_enter(c)) {
		free(c);
		ctl_cs_finish(NULL, cs);
		return;
	}
	struct ctl_topic *tp = &ctl->topics[c->t];
	if (res->err == SL_OK && c->p < tp->count) {
		tp->ps[c->p] = c->next;
		tp->ps[c->p].partition_epoch = res->ops[1].version;
		tp->dirty[c->p] = true;
		cs->wrote = true;
	} else if (res->op_count > 0 && res->ops[0].zrc != ZK_ZOK &&
		   res->ops[0].zrc != ZK_ZRUNTIMEINCONSISTENCY) {
		free(c);
		ctl_resign(ctl, "the controller epoch moved on (another controller)");
		ctl_cs_finish(NULL, cs);
		return;
	} else if (res->err == SL_ERANGE) {
		/* This controller's own concurrent write won (and updated the
		 * state in memory): the broker's retry decides again. */
	} else {
		LOG_W(0, "controller: controlled shutdown write: %s (zk %d)", sl_err_str(res->err),
		      res->zrc);
	}
	free(c);
	ctl_cs_finish(ctl, cs);
}

/* Writes `next` over partition (t, p) for the shutdown `cs`. */
static void ctl_cs_write(struct controller *ctl, struct ctl_cs *cs, uint32_t t, uint32_t p,
			 const struct ctrl_pstate *next)
{
	struct ctl_topic *tp = &ctl->topics[t];
	char epath[CLUSTER_PATH_MAX], spath[CLUSTER_PATH_MAX], buf[1024];
	size_t len = 0;
	struct zk_op ops[2];
	struct ctl_call *c;

	if (ctrlj_pstate_encode(next, buf, sizeof(buf), &len) != SL_OK)
		return;
	cluster_path(ctl->cl, epath, "/controller_epoch");
	cluster_path(ctl->cl, spath, "/brokers/topics/%s/partitions/%u/state", tp->name, p);
	memset(ops, 0, sizeof(ops));
	ops[0] = (struct zk_op){ .type = ZK_OP_CHECK, .path = epath, .version = ctl->epoch_version };
	ops[1] = (struct zk_op){ .type = ZK_OP_SET, .path = spath, .data = buf,
				 .data_len = (uint32_t)len, .version = tp->ps[p].partition_epoch };
	c = ctl_call_new(ctl, t, p);
	if (c == NULL)
		return;
	c->next = *next;
	c->cs = cs;
	if (ctl_started(ctl, zk_multi(ctl_zk(ctl), ops, 2, ctl_cs_written, c), c, false))
		cs->pending++;
}

bool controller_controlled_shutdown(struct cluster *cl, int32_t broker_id, int64_t broker_epoch,
				    struct controller_cs_result *out, controller_cs_done_fn *done,
				    void *arg)
{
	struct controller *ctl = cl->ctl;
	struct ctl_broker *b;
	struct ctl_cs *cs;

	if (ctl == NULL || ctl->dead || ctl->phase == CTL_EPOCH)
		return false;
	cs = calloc(1, sizeof(*cs));
	if (cs == NULL)
		return false;
	cs->pending = 1;
	cs->broker = broker_id;
	cs->out = out;
	cs->done = done;
	cs->arg = arg;
	out->error = 0;
	out->count = 0;
	out->parts = NULL;
	b = ctl_broker_find(ctl, broker_id);
	if (b == NULL || !b->alive) {
		LOG_W(0, "controller: controlled shutdown of broker %d: not registered", broker_id);
		out->error = CONTROLLER_KERR_BROKER_NOT_AVAILABLE;
		cs->done(cs->arg);
		free(cs);
		return true;
	}
	if (ctrl_broker_epoch_stale(broker_epoch, b->epoch)) {
		LOG_W(0, "controller: controlled shutdown of broker %d: stale broker epoch %lld < %lld",
		      broker_id, (long long)broker_epoch, (long long)b->epoch);
		out->error = CONTROLLER_KERR_STALE_BROKER_EPOCH;
		cs->done(cs->arg);
		free(cs);
		return true;
	}
	if (!b->shutting_down)
		LOG_I(0, "controller: broker %d is shutting down (controlled shutdown)", broker_id);
	b->shutting_down = true;
	struct ctrl_cluster view = ctl_view(ctl);
	for (uint32_t t = 0; t < ctl->nt; t++) {
		struct ctl_topic *tp = &ctl->topics[t];
		for (uint32_t p = 0; p < tp->count; p++) {
			struct ctrl_pstate next;
			enum ctrl_change chg = CTRL_CHANGE_NONE;
			uint32_t rem = 0;
			if (!tp->has[p] || !ctrl_pstate_has_replica(&tp->ps[p], broker_id))
				continue;
			next = tp->ps[p];
			(void)ctrl_controlled_shutdown(&view, broker_id, &next, 1, &chg, &rem);
			if (chg == CTRL_CHANGE_NONE)
				continue;
			next.controller_epoch = ctl->epoch;
			LOG_I(0, "controller: %s-%u leader %d -> %d, epoch %d, isr %u (controlled "
			      "shutdown of %d)", tp->name, p, tp->ps[p].leader, next.leader,
			      next.leader_epoch, next.isr_count, broker_id);
			ctl_cs_write(ctl, cs, t, p, &next);
		}
	}
	ctl_cs_finish(ctl, cs);
	return true;
}

/* ---- topic deletion and partition modifications (ctrl_delete.h) ---- */

bool controller_topic_view(struct controller *ctl, const char *name,
			   struct controller_topic_view *out)
{
	struct ctl_topic *tp = ctl_topic_find(ctl, name, strlen(name));

	if (tp == NULL || tp->count == 0)
		return false;
	out->name = tp->name;
	out->id = tp->id;
	out->count = tp->count;
	out->ps = tp->ps;
	return true;
}

void controller_topic_deleting(struct controller *ctl, const char *name)
{
	struct ctl_topic *tp = ctl_topic_find(ctl, name, strlen(name));

	if (tp == NULL || tp->deleting)
		return;
	tp->deleting = true;
	ctl_send_um(ctl);
}

void controller_topic_forget(struct controller *ctl, const char *name)
{
	struct ctl_topic *tp = ctl_topic_find(ctl, name, strlen(name));

	SL_ASSERT(controller_idle(ctl));
	if (tp == NULL)
		return;
	/* The slot stays (indexes are stable) but matches no name again. */
	free(tp->ps);
	free(tp->has);
	free(tp->dirty);
	free(tp->is_new);
	tp->ps = NULL;
	tp->has = tp->dirty = tp->is_new = NULL;
	tp->count = 0;
	tp->deleting = false;
	tp->name[0] = '\0';
	/* A topic of that name created since is read afresh. */
	ctl_sync(ctl);
}

bool controller_idle(const struct controller *ctl)
{
	return !ctl->dead && !ctl->busy && ctl->phase == CTL_IDLE;
}

struct kclient *controller_broker_client(struct controller *ctl, int32_t id, int64_t *epoch)
{
	struct ctl_broker *b = ctl_broker_find(ctl, id);

	if (b == NULL || !b->alive || b->kc == NULL)
		return NULL;
	*epoch = b->epoch;
	return b->kc;
}

int32_t controller_epoch_of(const struct controller *ctl)
{
	return ctl->epoch;
}

int32_t controller_epoch_zkversion(const struct controller *ctl)
{
	return ctl->epoch_version;
}

struct ctrl_del *controller_del(struct controller *ctl)
{
	return ctl->del;
}

void controller_topic_grow(struct controller *ctl, const char *name, const struct ctrlj_topic *jt)
{
	struct ctl_topic *tp = ctl_topic_find(ctl, name, strlen(name));
	uint32_t n = jt->partition_count;

	if (tp == NULL || tp->count == 0 || tp->deleting || n <= tp->count)
		return;
	struct ctrl_pstate *ps = realloc(tp->ps, (n + 1) * sizeof(*ps));
	if (ps != NULL)
		tp->ps = ps;
	bool *has = realloc(tp->has, (n + 1) * sizeof(bool));
	if (has != NULL)
		tp->has = has;
	bool *dirty = realloc(tp->dirty, (n + 1) * sizeof(bool));
	if (dirty != NULL)
		tp->dirty = dirty;
	bool *is_new = realloc(tp->is_new, (n + 1) * sizeof(bool));
	if (is_new != NULL)
		tp->is_new = is_new;
	if (ps == NULL || has == NULL || dirty == NULL || is_new == NULL) {
		LOG_E(0, "controller: out of memory growing topic %s", name);
		return;
	}
	for (uint32_t p = tp->count; p < n; p++) {
		memset(&tp->ps[p], 0, sizeof(tp->ps[p]));
		tp->ps[p].replica_count = jt->parts[p].replica_count;
		memcpy(tp->ps[p].replicas, jt->parts[p].replicas,
		       jt->parts[p].replica_count * sizeof(int32_t));
		tp->ps[p].leader = CTRL_NO_LEADER;
		tp->has[p] = false;
		tp->dirty[p] = false;
		tp->is_new[p] = false;
	}
	LOG_I(0, "controller: topic %s grows from %u to %u partitions", name, tp->count, n);
	tp->count = n;
	ctl_sync(ctl);
}
