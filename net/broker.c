/*
 * broker.c — see broker.h: start/stop of each shard's broker state,
 * catalog publication from shard 0, topic creation, the stop barrier.
 *
 * Memory: struct broker, the broker_shard array, the controller state and
 * every catalog snapshot come from malloc on main and are freed by main
 * after the shards are joined (snapshots that go stale are freed by shard
 * 0 as soon as no shard holds them). Per-connection and per-partition
 * memory comes from the shard arenas and is freed on its shard.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "broker.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "kerr.h"
#include "log.h"
#include "mem.h"
#include "producer_ids.h"

/* How long start-up waits for a listening port still held (see broker_listeners). */
#define BROKER_PORT_WAIT_MS 5000
/* Auto-creations one shard may have in flight (Metadata storms). */
#define BROKER_AUTOCREATES_MAX 1024u

struct broker_ctl {
	struct catalog_snap *latest;
	struct catalog_snap **held;      /* [N]: what each shard last acknowledged */
	uint64_t *acked;                 /* [N]: its version */
	struct broker_create *wait_head, *wait_tail;
};

/* ---- start-up (main) ---- */

static void broker_plog_config(const struct config *c, struct plog_config *pc)
{
	plog_config_default(pc);
	pc->segment_bytes = c->log_segment_bytes;
	pc->roll_ms = c->log_roll_ms;
	pc->index_interval_bytes = c->log_index_interval_bytes;
	pc->index_size_max_bytes = c->log_index_size_max_bytes;
	pc->retention_ms = c->log_retention_ms;
	pc->retention_bytes = c->log_retention_bytes;
	pc->flush_interval_messages = c->log_flush_interval_messages;
	pc->flush_interval_ms = c->log_flush_interval_ms;
	pc->checkpoint_interval_ms = c->log_flush_offset_checkpoint_interval_ms;
	pc->preallocate = c->log_preallocate ? 1 : 0;
}

/* Listener 0 and advertised listener 0 into b. SL_OK or SL_EINVAL (logged). */
static enum sl_err broker_listeners(struct broker *b, const struct config *c)
{
	uint16_t port = 0, adv_port = 0;

	if (config_listener_count(c->listeners) > 1 || config_listener_count(c->advertised_listeners) > 1)
		LOG_W(LOG_NO_SHARD, "only the first listener is served: %s", c->listeners);
	if (config_listener_parse(c->listeners, 0, b->listen_host, sizeof(b->listen_host),
				  &port) != SL_OK ||
	    config_listener_parse(c->advertised_listeners, 0, b->adv_host, sizeof(b->adv_host),
				  &adv_port) != SL_OK) {
		LOG_E(LOG_NO_SHARD, "cannot parse listeners %s / advertised.listeners %s",
		      c->listeners, c->advertised_listeners);
		return SL_EINVAL;
	}
	if (listener_resolve(b->listen_host, port, &b->listen_addr, &b->listen_addr_len) != SL_OK)
		return SL_EINVAL;
	/*
	 * A process killed with io_uring operations on its listening socket
	 * keeps that socket in LISTEN until the kernel's ring teardown ends,
	 * a little after the process is gone: wait for it, bounded.
	 */
	for (int i = 0; port != 0; i++) {
		int rc = listener_probe(&b->listen_addr, b->listen_addr_len);
		if (rc == 0)
			break;
		if (rc != -EADDRINUSE || i >= BROKER_PORT_WAIT_MS / 50) {
			LOG_E(LOG_NO_SHARD, "cannot listen on %s:%u: %s", b->listen_host, port,
			      strerror(-rc));
			return SL_EIO;
		}
		if (i == 0)
			LOG_W(LOG_NO_SHARD, "port %u is in use; waiting up to %d ms for it", port,
			      BROKER_PORT_WAIT_MS);
		usleep(50 * 1000);
	}
	int fd = listener_socket(&b->listen_addr, b->listen_addr_len, c->socket_listen_backlog_size,
				 &b->port);
	if (fd < 0) {
		LOG_E(LOG_NO_SHARD, "cannot listen on %s:%u: %s", b->listen_host, port, strerror(-fd));
		return SL_EIO;
	}
	b->listen_fd0 = fd;
	/* Later shards bind the port shard 0 got (port 0: the kernel's pick). */
	if (b->listen_addr.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&b->listen_addr)->sin6_port = htons(b->port);
	else
		((struct sockaddr_in *)&b->listen_addr)->sin_port = htons(b->port);
	if (b->adv_host[0] == '\0' && gethostname(b->adv_host, sizeof(b->adv_host)) != 0)
		snprintf(b->adv_host, sizeof(b->adv_host), "localhost");
	b->adv_host[sizeof(b->adv_host) - 1] = '\0';
	b->adv_port = adv_port != 0 ? adv_port : b->port;
	return SL_OK;
}

enum sl_err broker_create(struct broker **out, const struct config *c)
{
	char dir[PATH_MAX];
	struct broker *b;
	enum sl_err err = SL_ENOMEM;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return SL_ENOMEM;
	b->listen_fd0 = -1;
	b->config = c;
	b->node_id = c->broker_id;
	b->shard_count = (uint32_t)c->num_shards;
	SL_ASSERT(b->shard_count > 0);
	b->rack = c->broker_rack != NULL && c->broker_rack[0] != '\0' ? c->broker_rack : NULL;
	b->conns_per_shard = (uint32_t)SL_MAX(1, c->max_connections / (int32_t)b->shard_count);
	broker_plog_config(c, &b->plog_cfg);
	b->shards = calloc(b->shard_count, sizeof(*b->shards));
	b->ctl = calloc(1, sizeof(*b->ctl));
	if (b->shards == NULL || b->ctl == NULL)
		goto out;
	b->ctl->held = calloc(b->shard_count, sizeof(*b->ctl->held));
	b->ctl->acked = calloc(b->shard_count, sizeof(*b->ctl->acked));
	if (b->ctl->held == NULL || b->ctl->acked == NULL)
		goto out;
	err = broker_listeners(b, c);
	if (err != SL_OK)
		goto out;
	err = config_list_get(c->log_dirs, 0, dir, sizeof(dir));
	if (err != SL_OK)
		goto out;
	err = catalog_open(&b->catalog, dir, NULL, NULL);
	if (err != SL_OK)
		goto out;
	err = catalog_snapshot(b->catalog, &b->snap_initial);
	if (err != SL_OK)
		goto out;
	memcpy(b->cluster_id, catalog_cluster_id(b->catalog), sizeof(b->cluster_id));
	b->snap_initial->holders = b->shard_count;
	b->ctl->latest = b->snap_initial;
	for (uint32_t i = 0; i < b->shard_count; i++) {
		b->ctl->held[i] = b->snap_initial;
		b->ctl->acked[i] = b->snap_initial->version;
	}
	LOG_I(LOG_NO_SHARD, "catalog: cluster id %s, %u topic(s) in %s", b->cluster_id,
	      b->snap_initial->topic_count, dir);
	*out = b;
	return SL_OK;
out:
	broker_destroy(b);
	return err;
}

void broker_destroy(struct broker *b)
{
	if (b == NULL)
		return;
	if (b->shards != NULL)
		for (uint32_t i = 0; i < b->shard_count; i++)
			if (b->shards[i].outbox.queues != NULL)
				outbox_free(&b->shards[i].outbox);
	if (b->ctl != NULL) {
		/* Every shard holds the latest one by now; older ones were freed. */
		catalog_snap_free(b->ctl->latest);
		free(b->ctl->held);
		free(b->ctl->acked);
		free(b->ctl);
	} else {
		catalog_snap_free(b->snap_initial);
	}
	catalog_close(b->catalog);
	if (b->producer_ids != NULL)
		producer_ids_close(b->producer_ids);
	if (b->listen_fd0 >= 0)
		close(b->listen_fd0);
	free(b->shards);
	free(b);
}

/* ---- shard start / stop ---- */

enum sl_err broker_shard_start(struct shard *sh, struct broker *b)
{
	struct broker_shard *bs;
	enum sl_err err;
	int fd;

	SL_ASSERT(sh->id < b->shard_count && sh->xmsg.shard_count == b->shard_count);
	bs = &b->shards[sh->id];
	bs->sh = sh;
	bs->b = b;
	bs->snap = b->snap_initial;
	sh->app = bs;
	err = outbox_init(&bs->outbox, sh);
	if (err != SL_OK)
		return err;
	err = partition_set_init(&bs->parts, sh, &b->plog_cfg, b->config->log_dirs,
				 b->config->log_retention_check_interval_ms);
	if (err != SL_OK)
		return err;
	bs->parts.config = b->config;
	bs->parts.delete_gone = true;
	bs->parts.cluster = b->config->zookeeper_connect[0] != '\0';
	bs->parts.node_id = b->node_id;
	err = partition_set_sync(&bs->parts, bs->snap);
	if (err != SL_OK)
		return err;
	if (sh->id == 0) {
		fd = b->listen_fd0;
		b->listen_fd0 = -1;
	} else {
		uint16_t port = 0;
		fd = listener_socket(&b->listen_addr, b->listen_addr_len,
				     b->config->socket_listen_backlog_size, &port);
		if (fd < 0) {
			partition_set_close(&bs->parts);
			return SL_EIO;
		}
		SL_ASSERT(port == b->port);
	}
	conn_limits_start(bs);
	err = listener_start(&bs->lis, bs, fd);
	if (err != SL_OK)
		return err;
	LOG_D(sh->id, "broker shard up: %u partition(s) owned", bs->parts.count);
	if (sh->id == 0)
		LOG_I(sh->id, "listening on %s:%u (advertised as %s:%d, broker id %d, cluster id %s)",
		      b->listen_host[0] != '\0' ? b->listen_host : "0.0.0.0", b->port, b->adv_host,
		      b->adv_port, b->node_id, b->cluster_id);
	return SL_OK;
}

static enum xmsg_fn_result broker_barrier_fn(struct shard *sh, struct xmsg *m)
{
	struct broker_shard *bs = broker_shard_of(sh);

	if (bs->conn_count == 0 && listener_closed(&bs->lis))
		return XMSG_REPLY;
	bs->barrier = *m;
	bs->barrier_held = true;
	return XMSG_DEFER;
}

void broker_shard_check_barrier(struct broker_shard *bs)
{
	if (!bs->barrier_held || bs->conn_count != 0 || !listener_closed(&bs->lis))
		return;
	bs->barrier_held = false;
	xmsg_reply(bs->sh, &bs->barrier);
}

void broker_shard_stop(struct shard *sh, struct broker *b)
{
	struct broker_shard *bs = broker_shard_of(sh);
	uint32_t n = 0;

	(void)b;
	if (bs == NULL)
		return;
	bs->stopping = true;
	if (bs->b->ext_stop != NULL)
		bs->b->ext_stop(bs);
	listener_close(&bs->lis);
	conn_limits_stop(bs);
	for (struct conn *c = bs->conns; c != NULL && n <= bs->b->conns_per_shard; n++) {
		struct conn *next = c->next;
		conn_close(c, NULL);
		c = next;
	}
	partition_set_close(&bs->parts);
	/* Stay STOPPING until every connection is freed (broker.h). */
	struct xmsg m = { .type = 0, .fn = broker_barrier_fn };
	if (broker_send(bs, sh->id, &m) != SL_OK)
		LOG_E(sh->id, "broker: cannot post the stop barrier");
	LOG_D(sh->id, "broker shard stopping: %u connection(s) closing", bs->conn_count);
}

/* ---- catalog publication (shard 0) ---- */

static uint64_t broker_min_acked(const struct broker *b)
{
	uint64_t v = UINT64_MAX;

	for (uint32_t i = 0; i < b->shard_count; i++)
		v = SL_MIN(v, b->ctl->acked[i]);
	return v;
}

/* Answers the creates every shard has caught up with (invariant 3). */
static void broker_creates_release(struct broker_shard *bs0)
{
	struct broker_ctl *ctl = bs0->b->ctl;
	uint64_t min = broker_min_acked(bs0->b);
	struct broker_create **pp = &ctl->wait_head, *last = NULL;

	for (uint32_t n = 0; *pp != NULL && n < (1u << 20); n++) {
		struct broker_create *c = *pp;
		if (c->need_version > min) {
			last = c;
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		c->next = NULL;
		xmsg_reply(bs0->sh, &c->msg);
	}
	ctl->wait_tail = last;
}

/* Runs on: every shard. Adopts the snapshot; replies with the one it replaces. */
static enum xmsg_fn_result broker_snap_adopt(struct shard *sh, struct xmsg *m)
{
	struct broker_shard *bs = broker_shard_of(sh);
	const struct catalog_snap *s = m->pl.ptr[0];
	const struct catalog_snap *old = bs->snap;

	SL_ASSERT(s->version > old->version);
	bs->snap = s;
	if (partition_set_sync(&bs->parts, s) != SL_OK)
		LOG_E(sh->id, "broker: out of memory opening new partitions");
	m->pl.ptr[1] = (void *)(uintptr_t)old;
	return XMSG_REPLY;
}

/* Runs on: shard 0, when shard m->to adopted ptr[0] and let go of ptr[1]. */
static void broker_snap_adopted(struct shard *sh, struct xmsg *m)
{
	struct broker_shard *bs0 = broker_shard_of(sh);
	struct broker_ctl *ctl = bs0->b->ctl;
	struct catalog_snap *s = m->pl.ptr[0];
	struct catalog_snap *old = m->pl.ptr[1];

	SL_ASSERT(sh->id == 0 && old->holders > 0);
	ctl->held[m->to] = s;            /* the publication's pin becomes the hold */
	ctl->acked[m->to] = s->version;
	if (--old->holders == 0 && old != ctl->latest) {
		if (old == bs0->b->snap_initial)
			bs0->b->snap_initial = NULL;
		catalog_snap_free(old);
	}
	broker_creates_release(bs0);
}

/* Snapshots the catalog and sends it to every shard. Runs on: shard 0. */
static void broker_publish(struct broker_shard *bs0)
{
	struct broker_ctl *ctl = bs0->b->ctl;
	struct catalog_snap *s, *prev = ctl->latest;

	if (catalog_snapshot(bs0->b->catalog, &s) != SL_OK) {
		LOG_E(bs0->sh->id, "catalog: out of memory for a snapshot; shards keep the old one");
		return;
	}
	memcpy(s->cluster_id, bs0->b->cluster_id, sizeof(s->cluster_id));
	ctl->latest = s;
	for (uint32_t i = 0; i < bs0->b->shard_count; i++) {
		struct xmsg m = { .fn = broker_snap_adopt, .done = broker_snap_adopted };
		m.pl.ptr[0] = s;
		if (broker_send(bs0, i, &m) == SL_OK)
			s->holders++;
		else
			LOG_E(bs0->sh->id, "catalog: cannot publish to shard %u", i);
	}
	if (prev->holders == 0) {
		if (prev == bs0->b->snap_initial)
			bs0->b->snap_initial = NULL;
		catalog_snap_free(prev);
	}
}

/* Maps catalog_topic_create's result to a Kafka error code. */
static int16_t broker_create_kerr(enum sl_err err)
{
	switch (err) {
	case SL_OK:
		return KERR_NONE;
	case SL_EEXIST:
		return KERR_TOPIC_ALREADY_EXISTS;
	case SL_EINVAL:
		return KERR_INVALID_TOPIC_EXCEPTION;
	case SL_ERANGE:
		return KERR_INVALID_PARTITIONS;
	default:
		return KERR_KAFKA_STORAGE_ERROR;
	}
}

/* Runs on: shard 0. Creates, publishes, answers once every shard caught up. */
static enum xmsg_fn_result broker_create_on_ctl(struct shard *sh, struct xmsg *m)
{
	struct broker_shard *bs0 = broker_shard_of(sh);
	struct broker *b = bs0->b;
	struct broker_create *c = m->pl.ptr[0];
	uint32_t created = 0;
	char id[CATALOG_ID_CHARS + 1];

	SL_ASSERT(sh->id == 0);
	if (c->mutate != NULL && !bs0->stopping)
		created = c->mutate(bs0, c);
	for (uint32_t i = 0; c->mutate == NULL && i < c->count; i++) {
		struct broker_create_topic *t = &c->topics[i];
		if (bs0->stopping) {
			t->error_code = KERR_REQUEST_TIMED_OUT;
			continue;
		}
		int32_t parts = t->partitions > 0 ? t->partitions : b->config->num_partitions;
		uint32_t flags = catalog_name_internal(t->name, t->name_len) ? CATALOG_TOPIC_INTERNAL : 0;
		enum sl_err err = catalog_topic_create(b->catalog, t->name, t->name_len, parts, flags,
						       &t->id);
		t->error_code = broker_create_kerr(err);
		if (err == SL_OK) {
			created++;
			catalog_uuid_format(&t->id, id);
			LOG_I(sh->id, "created topic %.*s: %d partition(s), id %s", (int)t->name_len,
			      t->name, parts, id);
		} else if (t->error_code == KERR_KAFKA_STORAGE_ERROR) {
			LOG_E(sh->id, "cannot create topic %.*s: %s", (int)t->name_len, t->name,
			      sl_err_str(err));
		}
	}
	if (created > 0)
		broker_publish(bs0);
	c->need_version = b->ctl->latest->version;
	if (bs0->stopping || broker_min_acked(b) >= c->need_version)
		return XMSG_REPLY;
	c->msg = *m;
	c->next = NULL;
	if (b->ctl->wait_tail != NULL)
		b->ctl->wait_tail->next = c;
	else
		b->ctl->wait_head = c;
	b->ctl->wait_tail = c;
	return XMSG_DEFER;
}

/* Runs on: the requesting shard. */
static void broker_create_done(struct shard *sh, struct xmsg *m)
{
	struct broker_create *c = m->pl.ptr[0];

	c->done(broker_shard_of(sh), c);
}

enum sl_err broker_topics_create(struct broker_shard *bs, struct broker_create *c)
{
	struct xmsg m = { .fn = broker_create_on_ctl, .done = broker_create_done, .ctx = c };

	SL_ASSERT((c->count > 0 || c->mutate != NULL) && c->done != NULL);
	if (c->mutate == NULL && bs->b->zk_topics_create != NULL)
		return bs->b->zk_topics_create(bs, c);
	m.pl.ptr[0] = c;
	return broker_send(bs, 0, &m);
}

/* One auto-creation: the request and its name, owned by the requester. */
struct broker_autocreate {
	struct broker_create c;
	struct broker_create_topic t;
	char name[CATALOG_TOPIC_NAME_MAX + 1];
};

static void broker_autocreate_done(struct broker_shard *bs, struct broker_create *c)
{
	struct broker_autocreate *ac = (struct broker_autocreate *)(void *)c;

	if (ac->t.error_code != KERR_NONE && ac->t.error_code != KERR_TOPIC_ALREADY_EXISTS)
		LOG_W(bs->sh->id, "auto-creating topic %s failed: %s", ac->name,
		      kerr_name(ac->t.error_code));
	SL_ASSERT(bs->autocreates > 0);
	bs->autocreates--;
	mem_free(bs->sh, ac);
}

void broker_topic_autocreate(struct broker_shard *bs, const char *name, size_t len)
{
	struct broker_autocreate *ac;

	if (len == 0 || len > CATALOG_TOPIC_NAME_MAX || bs->autocreates >= BROKER_AUTOCREATES_MAX ||
	    bs->stopping)
		return;
	ac = mem_zalloc(bs->sh, sizeof(*ac));
	if (ac == NULL)
		return;
	memcpy(ac->name, name, len);
	ac->t.name = ac->name;
	ac->t.name_len = (uint32_t)len;
	ac->c.topics = &ac->t;
	ac->c.count = 1;
	ac->c.done = broker_autocreate_done;
	if (broker_topics_create(bs, &ac->c) != SL_OK) {
		mem_free(bs->sh, ac);
		return;
	}
	bs->autocreates++;
}
