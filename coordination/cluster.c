/*
 * cluster.c — see cluster.h: the ZooKeeper session of every broker in
 * cluster mode (paths, cluster id, registration, controller election) and
 * cluster-mode topic creation.
 *
 * Invariants:
 *   1. cl->step only moves forward within one session (PATHS -> CLUSTERID
 *      -> REGISTER -> ELECT -> UP); a new session or a stalled step
 *      restarts at PATHS.
 *   2. cl->ctl != NULL only while step == UP and this broker created the
 *      /controller node in the current session.
 *   3. Every zk callback of this file takes `cl` (alive until after the
 *      session closed and main joined the shards) and checks cl->stopping.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cluster.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "catalog.h"
#include "controller.h"
#include "ctrl_json.h"
#include "ctrl_rules.h"
#include "dispatch.h"
#include "kclient.h"
#include "kerr.h"
#include "log.h"
#include "mem.h"
#include "zk.h"
#include "pid_block.h"
#include "hwsave.h"

#define CLUSTER_RETRY_MS 500
#define CLUSTER_CREATE_POLL_MS 20
#define CLUSTER_CREATE_TIMEOUT_MS 30000u

/* Kafka's persistent paths (KafkaZkClient.createTopLevelPaths), parents first. */
static const char *const cluster_paths[] = {
	"/consumers", "/brokers", "/brokers/ids", "/brokers/topics", "/brokers/seqid",
	"/config", "/config/changes", "/config/topics", "/config/clients", "/config/users",
	"/config/brokers", "/config/ips", "/admin", "/admin/delete_topics",
	"/isr_change_notification", "/latest_producer_id_block", "/log_dir_event_notification",
	"/cluster",
};

static void cluster_bootstrap(struct cluster *cl);
static void cluster_elect(struct cluster *cl);
static void cluster_cs_backoff_fire(struct timer *t, void *ctx);
static void cluster_cs_arm(struct cluster *cl);
static void cluster_cs_stop(struct cluster *cl);

static int64_t cluster_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cluster_path(const struct cluster *cl, char *buf, const char *fmt, ...)
{
	va_list ap;
	size_t n = strlen(cl->root);

	memcpy(buf, cl->root, n + 1);
	va_start(ap, fmt);
	vsnprintf(buf + n, CLUSTER_PATH_MAX - n, fmt, ap);
	va_end(ap);
}

bool cluster_failed(const struct cluster *cl)
{
	return cl != NULL && atomic_load(&cl->failed);
}

void cluster_fatal(struct cluster *cl, const char *why)
{
	LOG_E(0, "%s", why);
	fprintf(stderr, "sluice: %s\n", why);
	if (atomic_exchange(&cl->failed, true))
		return;
	/* main's sigwait turns this into an orderly stop of every shard. */
	kill(getpid(), SIGTERM);
}

/* A step failed: connection loss waits for CONNECTED, else log and retry there too. */
static void cluster_stall(struct cluster *cl, const char *what, const struct zk_result *res)
{
	if (cl->stopping)
		return;
	if (res->err != SL_EAGAIN)
		LOG_W(0, "cluster: %s failed: %s (zk %d); retrying", what, sl_err_str(res->err),
		      res->zrc);
	cl->stalled = true;
	if (zk_connected(cl->zk) && res->err != SL_EAGAIN && !timer_armed(&cl->retry))
		timer_add(&cl->bs0->sh->timers, &cl->retry,
			  shard_now_ns(cl->bs0->sh) + (int64_t)CLUSTER_RETRY_MS * 1000000);
}

/* ---- step 4: controller election ---- */

static void cluster_controller_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg);

static void cluster_controller_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	struct ctrlj_controller cj;
	const char *why = NULL;

	(void)zk;
	if (cl->stopping || cl->step != CLUSTER_UP)
		return;
	if (res->err == SL_ENOTFOUND) {
		cluster_elect(cl);
		return;
	}
	if (res->err != SL_OK) {
		cluster_stall(cl, "reading /controller", res);
		return;
	}
	if (ctrlj_controller_decode(res->data, res->data_len, &cj, &why) != SL_OK) {
		LOG_W(0, "cluster: /controller: %s", why);
		return;
	}
	cl->controller_id = cj.broker_id;
	if (cj.broker_id == cl->b->node_id && res->stat.ephemeral_owner == zk_session_id(cl->zk)) {
		if (cl->ctl == NULL)
			controller_start(cl);
	} else if (cl->ctl != NULL) {
		LOG_W(0, "cluster: /controller now names broker %d: resigning", cj.broker_id);
		controller_stop(cl);
	}
}

static void cluster_controller_created(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	char path[CLUSTER_PATH_MAX];

	if (cl->stopping || cl->step != CLUSTER_UP)
		return;
	if (res->err == SL_OK) {
		cl->controller_id = cl->b->node_id;
		LOG_I(0, "cluster: broker %d won the controller election", cl->b->node_id);
		if (cl->ctl == NULL)
			controller_start(cl);
		return;
	}
	if (res->err == SL_EEXIST) {
		cluster_path(cl, path, "/controller");
		if (zk_get(zk, path, NULL, NULL, cluster_controller_got, cl) != SL_OK)
			cl->stalled = true;
		return;
	}
	cluster_stall(cl, "creating /controller", res);
}

static void cluster_controller_exists(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	char path[CLUSTER_PATH_MAX];
	char buf[256];
	size_t len = 0;

	if (cl->stopping || cl->step != CLUSTER_UP)
		return;
	cluster_path(cl, path, "/controller");
	if (res->err == SL_OK) {
		if (zk_get(zk, path, NULL, NULL, cluster_controller_got, cl) != SL_OK)
			cl->stalled = true;
		return;
	}
	if (res->err != SL_ENOTFOUND) {
		cluster_stall(cl, "watching /controller", res);
		return;
	}
	if (cl->ctl != NULL) {
		LOG_W(0, "cluster: /controller is gone: resigning");
		controller_stop(cl);
	}
	cl->controller_id = -1;
	if (ctrlj_controller_encode(cl->b->node_id, cluster_wall_ms(), buf, sizeof(buf), &len) !=
		    SL_OK ||
	    zk_create(zk, path, buf, (uint32_t)len, ZK_EPHEMERAL, cluster_controller_created, cl) !=
		    SL_OK)
		cl->stalled = true;
}

/* Sets the exists-watch on /controller (which runs the election). */
static void cluster_elect(struct cluster *cl)
{
	char path[CLUSTER_PATH_MAX];

	cl->step = CLUSTER_UP;
	cluster_path(cl, path, "/controller");
	if (zk_exists(cl->zk, path, cluster_controller_watch, cl, cluster_controller_exists, cl) !=
	    SL_OK)
		cl->stalled = true;
}

static void cluster_controller_watch(struct zk *zk, const struct zk_watch_event *ev, void *arg)
{
	struct cluster *cl = arg;

	(void)zk;
	if (cl->stopping || ev->type == ZK_WATCH_LOST || cl->step != CLUSTER_UP)
		return;
	cluster_elect(cl);
}

/* ---- step 3: registration ---- */

static void cluster_register(struct cluster *cl);

static void cluster_register_owner(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	char why[256];

	if (cl->stopping || cl->step != CLUSTER_REGISTER)
		return;
	if (res->err == SL_ENOTFOUND) {         /* gone meanwhile: try again */
		cluster_register(cl);
		return;
	}
	if (res->err != SL_OK) {
		cluster_stall(cl, "reading the broker registration", res);
		return;
	}
	if (res->stat.ephemeral_owner == zk_session_id(zk)) {
		/* Our registration: its czxid is this broker's epoch. */
		cl->broker_epoch = res->stat.czxid;
		LOG_I(0, "cluster: broker %d registered (this session), broker epoch %lld",
		      cl->b->node_id, (long long)cl->broker_epoch);
		cluster_elect(cl);
		return;
	}
	if (shard_now_ns(cl->bs0->sh) >= cl->register_deadline_ns) {
		snprintf(why, sizeof(why),
			 "broker.id %d is already registered in ZooKeeper by another broker "
			 "(/brokers/ids/%d exists, owned by session 0x%llx): refusing to start "
			 "with a duplicate broker.id",
			 cl->b->node_id, cl->b->node_id,
			 (unsigned long long)res->stat.ephemeral_owner);
		cluster_fatal(cl, why);
		return;
	}
	LOG_W(0, "cluster: /brokers/ids/%d is held by session 0x%llx; retrying until it expires",
	      cl->b->node_id, (unsigned long long)res->stat.ephemeral_owner);
	timer_add(&cl->bs0->sh->timers, &cl->retry,
		  shard_now_ns(cl->bs0->sh) + (int64_t)CLUSTER_RETRY_MS * 1000000);
}

static void cluster_registered(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	char path[CLUSTER_PATH_MAX];

	if (cl->stopping || cl->step != CLUSTER_REGISTER)
		return;
	if (res->err == SL_OK) {
		LOG_I(0, "cluster: registered broker %d at %s:%d", cl->b->node_id, cl->b->adv_host,
		      cl->b->adv_port);
		/* Read it back for its czxid (the broker epoch), then ELECT. */
		cluster_path(cl, path, "/brokers/ids/%d", cl->b->node_id);
		if (zk_get(zk, path, NULL, NULL, cluster_register_owner, cl) != SL_OK)
			cl->stalled = true;
		return;
	}
	if (res->err == SL_EEXIST) {
		cluster_path(cl, path, "/brokers/ids/%d", cl->b->node_id);
		if (zk_get(zk, path, NULL, NULL, cluster_register_owner, cl) != SL_OK)
			cl->stalled = true;
		return;
	}
	cluster_stall(cl, "registering the broker", res);
}

static void cluster_register(struct cluster *cl)
{
	struct ctrlj_broker jb;
	char path[CLUSTER_PATH_MAX];
	char buf[4096];
	size_t len = 0;

	cl->step = CLUSTER_REGISTER;
	cl->broker_epoch = -1;
	memset(&jb, 0, sizeof(jb));
	jb.version = 5;
	snprintf(jb.host, sizeof(jb.host), "%s", cl->b->adv_host);
	jb.port = cl->b->adv_port;
	jb.jmx_port = -1;
	jb.timestamp_ms = cluster_wall_ms();
	if (cl->b->rack != NULL) {
		jb.has_rack = true;
		snprintf(jb.rack, sizeof(jb.rack), "%s", cl->b->rack);
	}
	jb.endpoint_count = 1;
	snprintf(jb.endpoints[0].listener, sizeof(jb.endpoints[0].listener), "PLAINTEXT");
	snprintf(jb.endpoints[0].security_protocol, sizeof(jb.endpoints[0].security_protocol),
		 "PLAINTEXT");
	snprintf(jb.endpoints[0].host, sizeof(jb.endpoints[0].host), "%s", cl->b->adv_host);
	jb.endpoints[0].port = cl->b->adv_port;
	if (ctrlj_broker_encode(&jb, buf, sizeof(buf), &len) != SL_OK) {
		cluster_fatal(cl, "cannot encode the broker registration");
		return;
	}
	cluster_path(cl, path, "/brokers/ids/%d", cl->b->node_id);
	if (zk_create(cl->zk, path, buf, (uint32_t)len, ZK_EPHEMERAL, cluster_registered, cl) !=
	    SL_OK)
		cl->stalled = true;
}

static void cluster_retry_fire(struct timer *t, void *ctx)
{
	struct cluster *cl = (struct cluster *)(void *)((char *)t - offsetof(struct cluster, retry));

	(void)ctx;
	if (cl->stopping)
		return;
	if (cl->step == CLUSTER_REGISTER && !cl->stalled) {
		cluster_register(cl);
		return;
	}
	if (cl->stalled && zk_connected(cl->zk))
		cluster_bootstrap(cl);
}

/* ---- step 2: cluster id ---- */

static void cluster_id_step(struct cluster *cl);

static void cluster_id_created(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;

	(void)zk;
	if (cl->stopping || cl->step != CLUSTER_CLUSTERID)
		return;
	if (res->err == SL_OK || res->err == SL_EEXIST) {
		cluster_id_step(cl);
		return;
	}
	cluster_stall(cl, "creating /cluster/id", res);
}

static void cluster_id_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	struct broker *b = cl->b;
	char id[CTRLJ_CLUSTER_ID_MAX + 1];
	char path[CLUSTER_PATH_MAX];
	char buf[256];
	char why[512];
	const char *reason = NULL;
	size_t len = 0;

	if (cl->stopping || cl->step != CLUSTER_CLUSTERID)
		return;
	if (res->err == SL_ENOTFOUND) {
		cluster_path(cl, path, "/cluster/id");
		if (ctrlj_cluster_id_encode(catalog_cluster_id(b->catalog), buf, sizeof(buf), &len) !=
			    SL_OK ||
		    zk_create(zk, path, buf, (uint32_t)len, ZK_PERSISTENT, cluster_id_created, cl) !=
			    SL_OK)
			cl->stalled = true;
		return;
	}
	if (res->err != SL_OK) {
		cluster_stall(cl, "reading /cluster/id", res);
		return;
	}
	if (ctrlj_cluster_id_decode(res->data, res->data_len, id, &reason) != SL_OK) {
		snprintf(why, sizeof(why), "/cluster/id in ZooKeeper is malformed: %s", reason);
		cluster_fatal(cl, why);
		return;
	}
	if (strcmp(id, catalog_cluster_id(b->catalog)) != 0) {
		if (catalog_topic_count(b->catalog) > 0 || strlen(id) > CATALOG_ID_CHARS) {
			snprintf(why, sizeof(why),
				 "InconsistentClusterIdException: the cluster id %s in ZooKeeper "
				 "does not match the cluster id %s stored in the data directory; "
				 "this broker belongs to another cluster (or its data directory does)",
				 id, catalog_cluster_id(b->catalog));
			cluster_fatal(cl, why);
			return;
		}
		if (catalog_cluster_id_set(b->catalog, id) != SL_OK) {
			cluster_fatal(cl, "cannot store the cluster id in the data directory");
			return;
		}
		/* Read by other shards only through snapshots from here on
		 * (the first UpdateMetadata publishes one). */
		memcpy(b->cluster_id, id, strlen(id) + 1);
		LOG_I(0, "cluster: adopted cluster id %s from ZooKeeper", id);
	}
	cluster_register(cl);
}

static void cluster_id_step(struct cluster *cl)
{
	char path[CLUSTER_PATH_MAX];

	cl->step = CLUSTER_CLUSTERID;
	cluster_path(cl, path, "/cluster/id");
	if (zk_get(cl->zk, path, NULL, NULL, cluster_id_got, cl) != SL_OK)
		cl->stalled = true;
}

/* ---- step 1: paths ---- */

static void cluster_path_created(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;

	(void)zk;
	if (cl->stopping || cl->step != CLUSTER_PATHS)
		return;
	SL_ASSERT(cl->pending > 0);
	if (res->err != SL_OK && res->err != SL_EEXIST)
		cl->stalled = true;
	if (--cl->pending > 0)
		return;
	if (cl->stalled) {
		cluster_stall(cl, "creating the persistent paths", res);
		return;
	}
	cluster_id_step(cl);
}

static void cluster_create_one(struct cluster *cl, const char *path)
{
	if (zk_create(cl->zk, path, NULL, 0, ZK_PERSISTENT, cluster_path_created, cl) == SL_OK)
		cl->pending++;
	else
		cl->stalled = true;
}

/* Runs every step from the start (new session, or a stalled one). */
static void cluster_bootstrap(struct cluster *cl)
{
	char path[CLUSTER_PATH_MAX];

	if (cl->stopping)
		return;
	if (cl->ctl != NULL)
		controller_stop(cl);
	if (timer_armed(&cl->retry))
		timer_cancel(&cl->bs0->sh->timers, &cl->retry);
	cl->step = CLUSTER_PATHS;
	cl->stalled = false;
	cl->pending = 0;
	/* The chroot's components, then Kafka's paths below it. */
	for (size_t i = 1; cl->root[i - 1] != '\0'; i++) {
		if (cl->root[i] != '/' && cl->root[i] != '\0')
			continue;
		memcpy(path, cl->root, i);
		path[i] = '\0';
		cluster_create_one(cl, path);
	}
	for (size_t i = 0; i < SL_ARRAY_LEN(cluster_paths); i++) {
		cluster_path(cl, path, "%s", cluster_paths[i]);
		cluster_create_one(cl, path);
	}
	if (cl->pending == 0)
		cl->stalled = true;
}

static void cluster_on_event(struct zk *zk, const struct zk_event *ev, void *arg)
{
	struct cluster *cl = arg;

	(void)zk;
	if (cl->stopping)
		return;
	LOG_I(0, "cluster: zookeeper %s (session 0x%llx)", zk_event_str(ev->type),
	      (unsigned long long)ev->session_id);
	switch (ev->type) {
	case ZK_EVENT_SESSION_NEW:
		cl->register_deadline_ns =
			shard_now_ns(cl->bs0->sh) +
			((int64_t)cl->b->config->zookeeper_session_timeout_ms + 1000) * 1000000;
		cluster_bootstrap(cl);
		break;
	case ZK_EVENT_EXPIRED:
		/* Ephemerals are gone: stop acting as controller at once. */
		if (cl->ctl != NULL)
			controller_stop(cl);
		cl->step = CLUSTER_IDLE;
		break;
	case ZK_EVENT_CONNECTED:
		if (cl->stalled)
			cluster_bootstrap(cl);
		else if (cl->ctl != NULL)
			controller_reconnected(cl);
		break;
	case ZK_EVENT_DISCONNECTED:
		break;
	}
}

/* ---- life cycle ---- */

enum sl_err cluster_create(struct cluster **out, struct broker *b)
{
	struct cluster *cl = calloc(1, sizeof(*cl));
	const char *connect = b->config->zookeeper_connect;
	const char *slash = strchr(connect, '/');
	size_t hosts = slash != NULL ? (size_t)(slash - connect) : strlen(connect);

	*out = NULL;
	if (cl == NULL)
		return SL_ENOMEM;
	if (hosts == 0 || hosts >= sizeof(cl->connect) ||
	    (slash != NULL && strlen(slash) >= sizeof(cl->root))) {
		free(cl);
		return SL_EINVAL;
	}
	memcpy(cl->connect, connect, hosts);
	cl->connect[hosts] = '\0';
	if (slash != NULL && strcmp(slash, "/") != 0) {
		snprintf(cl->root, sizeof(cl->root), "%s", slash);
		size_t n = strlen(cl->root);
		if (cl->root[n - 1] == '/')
			cl->root[n - 1] = '\0';
	}
	cl->b = b;
	cl->controller_id = -1;
	cl->broker_epoch = -1;
	atomic_init(&cl->failed, false);
	atomic_init(&cl->ready, false);
	timer_init(&cl->retry, cluster_retry_fire);
	timer_init(&cl->cs.backoff, cluster_cs_backoff_fire);
	cl->cs.req_fd = eventfd(0, EFD_CLOEXEC);
	cl->cs.done_fd = eventfd(0, EFD_CLOEXEC);
	if (cl->cs.req_fd < 0 || cl->cs.done_fd < 0) {
		if (cl->cs.req_fd >= 0)
			close(cl->cs.req_fd);
		if (cl->cs.done_fd >= 0)
			close(cl->cs.done_fd);
		free(cl);
		return SL_EIO;
	}
	b->cluster = cl;
	b->zk_topics_create = cluster_topics_create;
	b->zk_producer_id = pid_alloc_on_shard0;
	*out = cl;
	return SL_OK;
}

void cluster_destroy(struct cluster *cl)
{
	if (cl != NULL) {
		free(cl->cfg_loaded);
		if (cl->cs.req_fd >= 0)
			close(cl->cs.req_fd);
		if (cl->cs.done_fd >= 0)
			close(cl->cs.done_fd);
	}
	pid_alloc_free(cl);
	free(cl);
}

enum sl_err cluster_shard_start(struct broker_shard *bs)
{
	struct cluster *cl = bs->b->cluster;
	enum sl_err err;

	SL_ASSERT(bs->sh->id == 0 && cl != NULL);
	cl->bs0 = bs;
	err = zk_open(&cl->zk, bs->sh, cl->connect, bs->b->config->zookeeper_session_timeout_ms,
		      cluster_on_event, cl);
	if (err != SL_OK) {
		LOG_E(0, "cluster: cannot open a ZooKeeper session to %s: %s", cl->connect,
		      sl_err_str(err));
		return err;
	}
	cluster_cs_arm(cl);
	LOG_I(0, "cluster: connecting to ZooKeeper %s%s%s (session timeout %d ms)", cl->connect,
	      cl->root[0] != '\0' ? " chroot " : "", cl->root,
	      bs->b->config->zookeeper_session_timeout_ms);
	hwsave_shard0_start(bs);   /* replication-offset-checkpoint rounds */
	return SL_OK;
}

void cluster_shard_stop(struct broker_shard *bs)
{
	struct cluster *cl = bs->b->cluster;

	if (cl == NULL || bs->sh->id != 0 || cl->bs0 == NULL || cl->stopping)
		return;
	if (cl->ctl != NULL)
		controller_stop(cl);
	cluster_cs_stop(cl);
	cl->stopping = true;
	pid_alloc_stop(cl);
	hwsave_shard0_stop(bs);
	if (timer_armed(&cl->retry))
		timer_cancel(&bs->sh->timers, &cl->retry);
	if (cl->zk != NULL)
		zk_close(cl->zk);
	cl->zk = NULL;
}

/* ---- controlled shutdown (broker side) ---- */

#define CLUSTER_CS_VERSION 3
#define CLUSTER_CS_TIMEOUT_MS 30000u     /* Kafka's controller.socket.timeout.ms */
#define CLUSTER_CS_LIST_MAX 8            /* remaining partitions named in the log */

static void cluster_cs_attempt(struct cluster *cl);

/* Done (success or not): main may stop the shards. Runs on: shard 0. */
static void cluster_cs_finish(struct cluster *cl, bool ok)
{
	uint64_t one = 1;
	struct cluster_cs *cs = &cl->cs;

	cs->running = false;
	cs->succeeded = ok;
	if (timer_armed(&cs->backoff))
		timer_cancel(&cl->bs0->sh->timers, &cs->backoff);
	if (cs->kc != NULL)
		kclient_close(cs->kc);
	cs->kc = NULL;
	if (write(cs->done_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		LOG_W(0, "controlled shutdown: cannot wake main: %s", strerror(errno));
}

/* An attempt failed: retry after the backoff, or give up. */
static void cluster_cs_retry(struct cluster *cl, const char *why)
{
	struct cluster_cs *cs = &cl->cs;
	const struct config *c = cl->b->config;

	if (cl->stopping || !cs->running)
		return;
	if (cs->attempts >= (uint32_t)c->controlled_shutdown_max_retries) {
		LOG_W(0, "controlled shutdown failed after %u attempts (%s): proceeding to an "
		      "unclean shutdown", cs->attempts, why);
		cluster_cs_finish(cl, false);
		return;
	}
	LOG_W(0, "controlled shutdown: attempt %u failed (%s); retrying in %d ms", cs->attempts,
	      why, c->controlled_shutdown_retry_backoff_ms);
	timer_add(&cl->bs0->sh->timers, &cs->backoff,
		  shard_now_ns(cl->bs0->sh) +
			  (int64_t)c->controlled_shutdown_retry_backoff_ms * 1000000);
}

static void cluster_cs_backoff_fire(struct timer *t, void *ctx)
{
	struct cluster *cl =
		(struct cluster *)(void *)((char *)t - offsetof(struct cluster, cs.backoff));

	(void)ctx;
	if (!cl->stopping && cl->cs.running)
		cluster_cs_attempt(cl);
}

static void cluster_cs_answered(struct kclient *kc, enum sl_err status, struct kread *body,
				void *arg)
{
	struct cluster *cl = arg;
	struct cluster_cs *cs = &cl->cs;
	struct ControlledShutdownResponse resp;
	struct karena arena;
	bool arena_ok = false;
	char why[512];

	(void)kc;
	if (status == SL_ECLOSED || cl->stopping || !cs->running)
		return;
	if (status == SL_OK) {
		arena_ok = karena_init_heap(&arena, kread_left(body) * 4 + 4096) == SL_OK;
		if (!arena_ok || kafka_decode_controlled_shutdown_response(
					 body, CLUSTER_CS_VERSION, &resp, &arena) != SL_OK)
			status = SL_ECORRUPT;
	}
	if (status != SL_OK) {
		snprintf(why, sizeof(why), "request: %s", sl_err_str(status));
		/* Maybe the controller moved: a fresh connection next time. */
		kclient_close(cs->kc);
		cs->kc = NULL;
		cluster_cs_retry(cl, why);
	} else if (resp.ErrorCode != 0) {
		snprintf(why, sizeof(why), "controller answered %s", kerr_name(resp.ErrorCode));
		cluster_cs_retry(cl, why);
	} else if (resp.RemainingPartitions.count > 0) {
		size_t off = (size_t)snprintf(why, sizeof(why), "%d partitions remaining:",
					      resp.RemainingPartitions.count);
		for (int32_t i = 0; i < resp.RemainingPartitions.count && i < CLUSTER_CS_LIST_MAX &&
				    off < sizeof(why);
		     i++) {
			const struct ControlledShutdownResponse_RemainingPartition *r =
				&resp.RemainingPartitions.items[i];
			off += (size_t)snprintf(why + off, sizeof(why) - off, " %.*s-%d",
						SL_MAX(r->TopicName.len, 0),
						(const char *)r->TopicName.ptr, r->PartitionIndex);
		}
		cluster_cs_retry(cl, why);
	} else {
		LOG_I(0, "controlled shutdown succeeded (attempt %u, %lld ms): 0 partitions "
		      "remaining", cs->attempts,
		      (long long)((shard_now_ns(cl->bs0->sh) - cs->start_ns) / 1000000));
		cluster_cs_finish(cl, true);
	}
	if (arena_ok)
		karena_destroy(&arena);
}

/* The controller's registration: connect and ask. */
static void cluster_cs_target_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	struct cluster_cs *cs = &cl->cs;
	struct ctrlj_broker jb;
	struct ControlledShutdownRequest rq;
	struct kclient_config kcfg;
	const char *why = NULL;

	(void)zk;
	if (cl->stopping || !cs->running)
		return;
	if (res->err != SL_OK ||
	    ctrlj_broker_decode(res->data, res->data_len, &jb, &why) != SL_OK) {
		cluster_cs_retry(cl, "cannot read the controller's registration");
		return;
	}
	const char *host = jb.host;
	int32_t port = jb.port;
	for (uint32_t e = 0; e < jb.endpoint_count; e++) {
		if (strcmp(jb.endpoints[e].listener, "PLAINTEXT") == 0 || (port < 0 && e == 0)) {
			host = jb.endpoints[e].host;
			port = jb.endpoints[e].port;
		}
	}
	if (port <= 0 || port > UINT16_MAX) {
		cluster_cs_retry(cl, "the controller has no usable endpoint");
		return;
	}
	if (cs->kc != NULL)
		kclient_close(cs->kc);
	cs->kc = NULL;
	memset(&kcfg, 0, sizeof(kcfg));
	kcfg.client_id = "sluice-controlled-shutdown";
	kcfg.request_timeout_ms = CLUSTER_CS_TIMEOUT_MS;
	if (kclient_open(&cs->kc, cl->bs0->sh, host[0] != '\0' ? host : "127.0.0.1",
			 (uint16_t)port, &kcfg) != SL_OK) {
		cs->kc = NULL;
		cluster_cs_retry(cl, "cannot reach the controller");
		return;
	}
	kafka_init_controlled_shutdown_request(&rq);
	rq.BrokerId = cl->b->node_id;
	rq.BrokerEpoch = cs->broker_epoch;
	if (kclient_send(cs->kc, KAFKA_API_CONTROLLED_SHUTDOWN, CLUSTER_CS_VERSION, &rq,
			 cluster_cs_answered, cl) != SL_OK)
		cluster_cs_retry(cl, "cannot queue the request");
}

static void cluster_cs_controller_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;
	struct ctrlj_controller cj;
	char path[CLUSTER_PATH_MAX];
	const char *why = NULL;

	if (cl->stopping || !cl->cs.running)
		return;
	if (res->err != SL_OK ||
	    ctrlj_controller_decode(res->data, res->data_len, &cj, &why) != SL_OK) {
		cluster_cs_retry(cl, "no controller");
		return;
	}
	LOG_I(0, "controlled shutdown: attempt %u: asking controller %d", cl->cs.attempts,
	      cj.broker_id);
	cluster_path(cl, path, "/brokers/ids/%d", cj.broker_id);
	if (zk_get(zk, path, NULL, NULL, cluster_cs_target_got, cl) != SL_OK)
		cluster_cs_retry(cl, "ZooKeeper refused a read");
}

/* One attempt: who is the controller now? */
static void cluster_cs_attempt(struct cluster *cl)
{
	char path[CLUSTER_PATH_MAX];

	cl->cs.attempts++;
	cluster_path(cl, path, "/controller");
	if (cl->zk == NULL || zk_get(cl->zk, path, NULL, NULL, cluster_cs_controller_got, cl) !=
				      SL_OK)
		cluster_cs_retry(cl, "ZooKeeper refused a read");
}

/* Our registration's czxid is the broker epoch (as Kafka's). */
static void cluster_cs_epoch_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster *cl = arg;

	if (cl->stopping || !cl->cs.running)
		return;
	cl->cs.broker_epoch = res->err == SL_OK && res->stat.ephemeral_owner == zk_session_id(zk)
				      ? res->stat.czxid
				      : -1;
	LOG_I(0, "controlled shutdown: starting (broker %d, epoch %lld)", cl->b->node_id,
	      (long long)cl->cs.broker_epoch);
	cluster_cs_attempt(cl);
}

/* Main asked (eventfd read completed). Runs on: shard 0. */
static void cluster_cs_begin(struct cluster *cl)
{
	struct cluster_cs *cs = &cl->cs;
	const struct config *c = cl->b->config;
	char path[CLUSTER_PATH_MAX];

	if (cs->running)
		return;
	if (!c->controlled_shutdown_enable || c->controlled_shutdown_max_retries <= 0 ||
	    cl->stopping || cl->step != CLUSTER_UP || cluster_failed(cl) || cl->zk == NULL) {
		LOG_I(0, "controlled shutdown: skipped (%s)",
		      !c->controlled_shutdown_enable ? "controlled.shutdown.enable=false"
						     : "not registered");
		cluster_cs_finish(cl, false);
		return;
	}
	cs->running = true;
	cs->attempts = 0;
	cs->broker_epoch = -1;
	cs->start_ns = shard_now_ns(cl->bs0->sh);
	cluster_path(cl, path, "/brokers/ids/%d", cl->b->node_id);
	if (zk_get(cl->zk, path, NULL, NULL, cluster_cs_epoch_got, cl) != SL_OK)
		cluster_cs_attempt(cl);
}

static void cluster_cs_read_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct cluster *cl = (struct cluster *)(void *)((char *)op - offsetof(struct cluster,
									      cs.req_op));

	(void)cqe_flags;
	SL_ASSERT(cl->cs.armed);
	cl->cs.armed = false;
	if (res == (int)sizeof(cl->cs.req_buf) && !cl->stopping)
		cluster_cs_begin(cl);
}

/* Arms the read on req_fd (shard 0's ring). */
static void cluster_cs_arm(struct cluster *cl)
{
	struct ring *r = &cl->bs0->sh->ring;
	struct io_uring_sqe *sqe = ring_get_sqe(r);

	SL_ASSERT(!cl->cs.armed && cl->cs.req_fd >= 0);
	io_uring_prep_read(sqe, cl->cs.req_fd, &cl->cs.req_buf, sizeof(cl->cs.req_buf), 0);
	cl->cs.req_op.done = cluster_cs_read_done;
	ring_sqe_set_op(r, sqe, &cl->cs.req_op);
	cl->cs.armed = true;
}

/* Shard 0 stops: cancel the read, the retries and the client. */
static void cluster_cs_stop(struct cluster *cl)
{
	struct cluster_cs *cs = &cl->cs;

	if (cs->armed) {
		struct io_uring_sqe *sqe = ring_get_sqe(&cl->bs0->sh->ring);
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&cs->req_op, 0);
	}
	if (cs->running)
		cluster_cs_finish(cl, false);
	if (timer_armed(&cs->backoff))
		timer_cancel(&cl->bs0->sh->timers, &cs->backoff);
	if (cs->kc != NULL)
		kclient_close(cs->kc);
	cs->kc = NULL;
}

bool cluster_controlled_shutdown(struct cluster *cl)
{
	const struct config *c;
	uint64_t one = 1, got = 0;

	if (cl == NULL || cluster_failed(cl) || cl->bs0 == NULL || cl->cs.req_fd < 0)
		return false;
	c = cl->b->config;
	/* Every attempt: two ZooKeeper reads, a request, a backoff. */
	int64_t per = (int64_t)CLUSTER_CS_TIMEOUT_MS + c->controlled_shutdown_retry_backoff_ms +
		      2 * (int64_t)c->zookeeper_session_timeout_ms;
	int64_t bound_ms = per * SL_MAX(c->controlled_shutdown_max_retries, 0) + 5000;
	struct pollfd pfd = { .fd = cl->cs.done_fd, .events = POLLIN };
	struct timespec t0, t1;

	if (write(cl->cs.req_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		return false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Each pass waits at most 1 s; bounded by bound_ms overall. */
	for (int64_t i = 0; i <= bound_ms / 1000 + 1; i++) {
		int rc = poll(&pfd, 1, 1000);
		if (rc > 0) {
			if (read(cl->cs.done_fd, &got, sizeof(got)) != (ssize_t)sizeof(got))
				return false;
			return cl->cs.succeeded;
		}
		if (rc < 0 && errno != EINTR)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > bound_ms)
			break;
	}
	LOG_W(LOG_NO_SHARD, "controlled shutdown did not finish in time: stopping anyway");
	return false;
}

/* ---- topic creation (cluster mode) ---- */

/* One creation request, on the requesting shard. */
struct cluster_create {
	struct broker_create *c;
	struct broker_shard *bs;
	struct timer poll;
	int64_t deadline_ns;
	uint32_t zk_pending;             /* shard 0: multis outstanding */
	struct xmsg msg;                 /* shard 0: the deferred request */
	bool *go;                        /* [count]: written, wait for leaders */
};

/* True when bs's snapshot has topic t with a leader for every partition. */
static bool cluster_topic_led(const struct broker_shard *bs, const struct broker_create_topic *t)
{
	const struct catalog_topic *ct = catalog_snap_find(bs->snap, t->name, t->name_len);

	if (ct == NULL || ct->pstates == NULL)
		return false;
	for (int32_t p = 0; p < ct->partition_count; p++)
		if (ct->pstates[p].replica_count == 0 || ct->pstates[p].leader < 0)
			return false;
	return true;
}

static void cluster_create_finish(struct cluster_create *cc)
{
	struct broker_create *c = cc->c;
	struct broker_shard *bs = cc->bs;

	for (uint32_t i = 0; i < c->count; i++) {
		struct broker_create_topic *t = &c->topics[i];
		if (!cc->go[i])
			continue;
		const struct catalog_topic *ct = catalog_snap_find(bs->snap, t->name, t->name_len);
		if (ct != NULL)
			t->id = ct->id;
		if (!cluster_topic_led(bs, t))
			t->error_code = KERR_REQUEST_TIMED_OUT;
	}
	mem_free(bs->sh, cc->go);
	mem_free(bs->sh, cc);
	c->done(bs, c);
}

static void cluster_create_poll(struct timer *t, void *ctx)
{
	struct cluster_create *cc =
		(struct cluster_create *)(void *)((char *)t - offsetof(struct cluster_create, poll));
	struct shard *sh = ctx;
	bool all = true;

	for (uint32_t i = 0; i < cc->c->count && all; i++)
		if (cc->go[i] && !cluster_topic_led(cc->bs, &cc->c->topics[i]))
			all = false;
	if (all || cc->bs->stopping || shard_now_ns(sh) >= cc->deadline_ns) {
		cluster_create_finish(cc);
		return;
	}
	timer_add(&sh->timers, &cc->poll,
		  shard_now_ns(sh) + (int64_t)CLUSTER_CREATE_POLL_MS * 1000000);
}

/* Runs on: the requesting shard, once shard 0 wrote the znodes. */
static void cluster_create_written(struct shard *sh, struct xmsg *m)
{
	struct cluster_create *cc = m->pl.ptr[0];

	cluster_create_poll(&cc->poll, sh);
}

struct cluster_create_call {
	struct cluster_create *cc;
	uint32_t idx;
};

static void cluster_create_done_zk(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster_create_call *call = arg;
	struct cluster_create *cc = call->cc;
	struct broker_create_topic *t = &cc->c->topics[call->idx];

	(void)zk;
	if (res->err == SL_OK) {
		t->error_code = KERR_NONE;
		cc->go[call->idx] = true;
		LOG_I(0, "cluster: wrote topic %.*s to ZooKeeper", (int)t->name_len, t->name);
	} else if (res->err == SL_EEXIST) {
		t->error_code = KERR_TOPIC_ALREADY_EXISTS;
	} else {
		t->error_code = res->err == SL_EAGAIN || res->err == SL_ECLOSED ?
					KERR_REQUEST_TIMED_OUT : KERR_UNKNOWN_SERVER_ERROR;
		LOG_W(0, "cluster: creating topic %.*s: %s (zk %d)", (int)t->name_len, t->name,
		      sl_err_str(res->err), res->zrc);
	}
	free(call);
	SL_ASSERT(cc->zk_pending > 0);
	if (--cc->zk_pending > 0)
		return;
	xmsg_reply(cc->bs->b->shards[0].sh, &cc->msg);
}

/* Random Kafka Uuid (not zero, not reserved, base64 not starting with '-'). */
static void cluster_uuid_new(uint8_t id[16])
{
	for (int i = 0; i < 8; i++) {
		if (getrandom(id, 16, 0) != 16)
			for (int j = 0; j < 16; j++)
				id[j] = (uint8_t)rand();
		id[0] &= 0x7f;
		if (id[0] != 0)
			break;
	}
	if (id[0] == 0)
		id[0] = 1;
}

/* Shard 0: assignment + one multi per topic. Sets zk_pending. */
static void cluster_create_write(struct broker_shard *bs0, struct cluster_create *cc)
{
	struct cluster *cl = bs0->b->cluster;
	const struct config *cfg = bs0->b->config;
	const struct catalog_snap *snap = bs0->snap;
	struct ctrl_broker *brokers = calloc(SL_MAX(snap->broker_count, 1u), sizeof(*brokers));
	struct ctrl_cluster cc_view = { brokers, snap->broker_count };
	uint32_t seed;

	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint32_t)shard_now_ns(bs0->sh);
	for (uint32_t i = 0; brokers != NULL && i < snap->broker_count; i++) {
		brokers[i].id = snap->brokers[i].id;
		brokers[i].rack = snap->brokers[i].rack[0] != '\0' ? snap->brokers[i].rack : NULL;
		brokers[i].alive = true;
	}
	for (uint32_t i = 0; i < cc->c->count; i++) {
		struct broker_create_topic *t = &cc->c->topics[i];
		bool offsets = t->name_len == 18 && memcmp(t->name, "__consumer_offsets", 18) == 0;
		int32_t parts = t->partitions > 0 ? t->partitions
				: offsets ? cfg->offsets_topic_num_partitions : cfg->num_partitions;
		int32_t rf = t->replication_factor > 0 ? t->replication_factor
			     : offsets ? cfg->offsets_topic_replication_factor
				       : cfg->default_replication_factor;
		struct ctrlj_topic jt;
		struct zk_op ops[4];
		char tpath[CLUSTER_PATH_MAX], cpath[CLUSTER_PATH_MAX], dpath[CLUSTER_PATH_MAX];
		char *tbuf = NULL, *cbuf = NULL;
		size_t tlen = 0, clen = 0;
		int32_t *assign = NULL;

		t->error_code = KERR_NONE;
		if (brokers == NULL || cl == NULL || cl->zk == NULL || cl->stopping ||
		    snap->broker_count == 0) {
			t->error_code = KERR_REQUEST_TIMED_OUT;
			continue;
		}
		if (catalog_snap_find(snap, t->name, t->name_len) != NULL) {
			t->error_code = KERR_TOPIC_ALREADY_EXISTS;
			continue;
		}
		if (parts <= 0 || parts > CTRLJ_PARTITIONS_MAX) {
			t->error_code = KERR_INVALID_PARTITIONS;
			continue;
		}
		assign = calloc((size_t)parts * (size_t)SL_MAX(rf, 1), sizeof(*assign));
		memset(&jt, 0, sizeof(jt));
		jt.parts = calloc((size_t)parts, sizeof(*jt.parts));
		tbuf = malloc(CTRLJ_VALUE_MAX);
		cbuf = malloc(CTRLJ_VALUE_MAX);
		if (assign == NULL || jt.parts == NULL || tbuf == NULL || cbuf == NULL) {
			t->error_code = KERR_UNKNOWN_SERVER_ERROR;
			goto next;
		}
		int32_t nb = (int32_t)snap->broker_count;
		int16_t kerr = ctrl_assign(&cc_view, parts, rf, CTRL_RACK_SAFE,
					   (int32_t)(seed % (uint32_t)nb),
					   (int32_t)((seed >> 16) % (uint32_t)nb), 0, assign,
					   (uint32_t)parts * (uint32_t)SL_MAX(rf, 1));
		if (kerr != CTRL_KERR_NONE) {
			t->error_code = kerr == CTRL_KERR_UNKNOWN_SERVER_ERROR ?
						KERR_UNKNOWN_SERVER_ERROR : kerr;
			goto next;
		}
		uint8_t id[16];
		cluster_uuid_new(id);
		memcpy(t->id.b, id, 16);
		jt.has_topic_id = true;
		ctrlj_uuid_format(id, jt.topic_id);
		jt.partition_count = (uint32_t)parts;
		for (int32_t p = 0; p < parts; p++) {
			jt.parts[p].replica_count = (uint32_t)rf;
			memcpy(jt.parts[p].replicas, &assign[p * rf], (size_t)rf * sizeof(int32_t));
		}
		struct ctrlj_config_entry ce[CATALOG_CONFIGS_MAX];
		uint32_t nce = SL_MIN(t->config_count, CATALOG_CONFIGS_MAX);
		for (uint32_t k = 0; k < nce; k++) {
			ce[k].key = t->keys[k];
			ce[k].value = t->values[k];
		}
		if (ctrlj_topic_encode(&jt, tbuf, CTRLJ_VALUE_MAX, &tlen) != SL_OK ||
		    ctrlj_config_encode(ce, nce, cbuf, CTRLJ_VALUE_MAX, &clen) != SL_OK) {
			t->error_code = KERR_INVALID_REQUEST;
			goto next;
		}
		cluster_path(cl, cpath, "/config/topics/%.*s", (int)t->name_len, t->name);
		cluster_path(cl, tpath, "/brokers/topics/%.*s", (int)t->name_len, t->name);
		memset(ops, 0, sizeof(ops));
		/* Creating and deleting /admin/delete_topics/<t> in the same multi
		 * fails (NODEEXISTS -> TOPIC_ALREADY_EXISTS) while the name is
		 * marked for deletion (Kafka's isTopicMarkedForDeletion check). */
		cluster_path(cl, dpath, "/admin/delete_topics/%.*s", (int)t->name_len, t->name);
		ops[0] = (struct zk_op){ .type = ZK_OP_CREATE, .path = dpath, .flags = ZK_PERSISTENT };
		ops[1] = (struct zk_op){ .type = ZK_OP_DELETE, .path = dpath, .version = -1 };
		ops[2] = (struct zk_op){ .type = ZK_OP_CREATE, .path = cpath, .data = cbuf,
					 .data_len = (uint32_t)clen, .flags = ZK_PERSISTENT };
		ops[3] = (struct zk_op){ .type = ZK_OP_CREATE, .path = tpath, .data = tbuf,
					 .data_len = (uint32_t)tlen, .flags = ZK_PERSISTENT };
		struct cluster_create_call *call = malloc(sizeof(*call));
		if (call == NULL) {
			t->error_code = KERR_UNKNOWN_SERVER_ERROR;
			goto next;
		}
		call->cc = cc;
		call->idx = i;
		if (zk_multi(cl->zk, ops, 4, cluster_create_done_zk, call) != SL_OK) {
			free(call);
			t->error_code = KERR_REQUEST_TIMED_OUT;
			goto next;
		}
		cc->zk_pending++;
next:
		free(assign);
		free(jt.parts);
		free(tbuf);
		free(cbuf);
	}
	free(brokers);
}

/* Runs on: shard 0. */
static enum xmsg_fn_result cluster_create_on_ctl(struct shard *sh, struct xmsg *m)
{
	struct cluster_create *cc = m->pl.ptr[0];

	cluster_create_write(broker_shard_of(sh), cc);
	if (cc->zk_pending == 0)
		return XMSG_REPLY;
	cc->msg = *m;
	return XMSG_DEFER;
}

enum sl_err cluster_topics_create(struct broker_shard *bs, struct broker_create *c)
{
	struct cluster_create *cc = mem_zalloc(bs->sh, sizeof(*cc));
	struct xmsg m = { .fn = cluster_create_on_ctl, .done = cluster_create_written };
	enum sl_err err;

	if (cc == NULL)
		return SL_ENOMEM;
	cc->go = mem_zalloc(bs->sh, (c->count + 1) * sizeof(*cc->go));
	if (cc->go == NULL) {
		mem_free(bs->sh, cc);
		return SL_ENOMEM;
	}
	cc->c = c;
	cc->bs = bs;
	timer_init(&cc->poll, cluster_create_poll);
	cc->deadline_ns = shard_now_ns(bs->sh) +
			  (int64_t)(c->timeout_ms != 0 ? c->timeout_ms : CLUSTER_CREATE_TIMEOUT_MS) *
				  1000000;
	m.ctx = cc;
	m.pl.ptr[0] = cc;
	err = broker_send(bs, 0, &m);
	if (err != SL_OK) {
		mem_free(bs->sh, cc->go);
		mem_free(bs->sh, cc);
	}
	return err;
}

/* ---- topic configs of topics new to this broker ---- */

struct cluster_cfg_load {
	struct broker_create bc;
	char name[CATALOG_TOPIC_NAME_MAX + 1];
	uint32_t count;
	char *keys[CATALOG_CONFIGS_MAX];
	char *values[CATALOG_CONFIGS_MAX];
};

static void cluster_cfg_free(struct cluster_cfg_load *ld)
{
	for (uint32_t i = 0; i < ld->count; i++) {
		free(ld->keys[i]);
		free(ld->values[i]);
	}
	free(ld);
}

static enum sl_err cluster_cfg_entry(void *ctx, const char *key, const char *value)
{
	struct cluster_cfg_load *ld = ctx;

	if (ld->count == CATALOG_CONFIGS_MAX)
		return SL_ERANGE;
	ld->keys[ld->count] = strdup(key);
	ld->values[ld->count] = strdup(value);
	if (ld->keys[ld->count] == NULL || ld->values[ld->count] == NULL) {
		free(ld->keys[ld->count]);
		free(ld->values[ld->count]);
		return SL_ENOMEM;
	}
	ld->count++;
	return SL_OK;
}

/* Runs on: shard 0 (broker_topics_create from shard 0 to itself). */
static uint32_t cluster_cfg_mutate(struct broker_shard *bs0, struct broker_create *bc)
{
	struct cluster_cfg_load *ld = (struct cluster_cfg_load *)(void *)bc;
	uint32_t changes = 0;

	for (uint32_t i = 0; i < ld->count; i++) {
		enum sl_err err = catalog_topic_config_set(bs0->b->catalog, ld->name, strlen(ld->name),
							   ld->keys[i], ld->values[i]);
		if (err == SL_OK)
			changes++;
		else
			LOG_W(0, "cluster: topic %s config %s: %s", ld->name, ld->keys[i],
			      sl_err_str(err));
	}
	return changes;
}

static void cluster_cfg_done(struct broker_shard *bs, struct broker_create *bc)
{
	(void)bs;
	cluster_cfg_free((struct cluster_cfg_load *)(void *)bc);
}

static void cluster_cfg_got(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct cluster_cfg_load *ld = arg;
	struct cluster *cl = NULL;
	const char *why = NULL;

	(void)zk;
	if (res->err != SL_OK || res->data == NULL) {
		cluster_cfg_free(ld);
		return;
	}
	if (ctrlj_config_decode(res->data, res->data_len, cluster_cfg_entry, ld, &why) != SL_OK)
		LOG_W(0, "cluster: /config/topics/%s: %s", ld->name, why != NULL ? why : "too many");
	cl = ld->bc.arg;
	if (ld->count == 0 || cl->stopping || broker_topics_create(cl->bs0, &ld->bc) != SL_OK)
		cluster_cfg_free(ld);
}

/* Marks id as loaded; false when it already was (or no memory). */
static bool cluster_cfg_mark(struct cluster *cl, const uint8_t id[16])
{
	uint32_t lo = 0, hi = cl->cfg_count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(cl->cfg_loaded[mid], id, 16);
		if (c == 0)
			return false;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (cl->cfg_count == cl->cfg_cap) {
		uint32_t cap = cl->cfg_cap ? cl->cfg_cap * 2 : 64;
		void *n = realloc(cl->cfg_loaded, (size_t)cap * 16);
		if (n == NULL)
			return false;
		cl->cfg_loaded = n;
		cl->cfg_cap = cap;
	}
	memmove(cl->cfg_loaded[lo + 1], cl->cfg_loaded[lo], (size_t)(cl->cfg_count - lo) * 16);
	memcpy(cl->cfg_loaded[lo], id, 16);
	cl->cfg_count++;
	return true;
}

void cluster_topic_config_load(struct cluster *cl, const char *name, size_t len,
			       const uint8_t id[16])
{
	struct cluster_cfg_load *ld;
	char path[CLUSTER_PATH_MAX];

	if (cl == NULL || cl->zk == NULL || cl->stopping || len > CATALOG_TOPIC_NAME_MAX)
		return;
	if (!cluster_cfg_mark(cl, id))
		return;
	ld = calloc(1, sizeof(*ld));
	if (ld == NULL)
		return;
	memcpy(ld->name, name, len);
	ld->bc.mutate = cluster_cfg_mutate;
	ld->bc.done = cluster_cfg_done;
	ld->bc.arg = cl;
	cluster_path(cl, path, "/config/topics/%s", ld->name);
	if (zk_get(cl->zk, path, NULL, NULL, cluster_cfg_got, ld) != SL_OK)
		free(ld);
}

/* ---- registration of the handlers ---- */

void cluster_api_register(void)
{
	dispatch_register(KAFKA_API_UPDATE_METADATA, 0, 8, api_update_metadata_handle);
	dispatch_register(KAFKA_API_ALTER_PARTITION, 0, 3, api_alter_partition_handle);
	dispatch_register(KAFKA_API_CONTROLLED_SHUTDOWN, 0, 3, api_controlled_shutdown_handle);
}
