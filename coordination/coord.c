/*
 * coord.c — a shard's group coordinator: the group table, group timers,
 * cross-shard calls to a group's owner, routing (Kafka's partition hash),
 * creation of __consumer_offsets, and shutdown. See coord.h.
 */
#include "coord.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "coord_internal.h"
#include "coord_log.h"
#include "dispatch.h"
#include "kerr.h"
#include "log.h"
#include "partition.h"
#include "repl.h"

/* ---- Kafka's partition hash ---- */

int32_t coord_java_hash(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	uint32_t h = 0;
	size_t i = 0;

	/* decode UTF-8; each code point adds one or two UTF-16 units */
	while (i < len) {
		uint32_t cp;
		uint32_t need;
		uint8_t b = p[i];
		if (b < 0x80) {
			cp = b;
			need = 0;
		} else if ((b & 0xe0) == 0xc0) {
			cp = b & 0x1f;
			need = 1;
		} else if ((b & 0xf0) == 0xe0) {
			cp = b & 0x0f;
			need = 2;
		} else if ((b & 0xf8) == 0xf0) {
			cp = b & 0x07;
			need = 3;
		} else {
			cp = 0xfffd;
			need = 0;
		}
		i++;
		for (uint32_t k = 0; k < need; k++) {
			if (i >= len || (p[i] & 0xc0) != 0x80) {
				cp = 0xfffd;   /* malformed: Java's decoder substitutes U+FFFD */
				break;
			}
			cp = (cp << 6) | (p[i] & 0x3f);
			i++;
		}
		if (cp > 0x10ffff)
			cp = 0xfffd;
		if (cp >= 0x10000) {
			uint32_t v = cp - 0x10000;
			h = h * 31u + (0xd800u + (v >> 10));
			h = h * 31u + (0xdc00u + (v & 0x3ff));
		} else {
			h = h * 31u + cp;
		}
	}
	return (int32_t)h;
}

int32_t coord_partition_for(const char *group, size_t len, int32_t partitions)
{
	int32_t h = coord_java_hash(group, len);
	/* Kafka's Utils.abs: Math.abs, except Integer.MIN_VALUE -> 0 */
	int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);

	SL_ASSERT(partitions > 0);
	return a % partitions;
}

/* ---- the coordinator object ---- */

static void coord_load_tick(struct timer *t, void *ctx);
static bool coord_load_try(struct coord *c, int32_t p);

int64_t coord_now_ms(struct coord *c)
{
	return shard_now_ns(c->bs->sh) / 1000000;
}

/* This shard's coordinator, made on first use; NULL once stopping. */
struct coord *coord_of(struct broker_shard *bs)
{
	struct coord *c = bs->ext;

	if (c != NULL || bs->stopping)
		return c;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	const struct config *cfg = bs->b->config;
	c->bs = bs;
	group_config_default(&c->cfg);
	c->cfg.initial_rebalance_delay_ms = cfg->group_initial_rebalance_delay_ms;
	c->cfg.max_size = cfg->group_max_size;
	c->cfg.min_session_timeout_ms = cfg->group_min_session_timeout_ms;
	c->cfg.max_session_timeout_ms = cfg->group_max_session_timeout_ms;
	c->ops.join_done = coord_join_answer;
	c->ops.sync_done = coord_sync_answer;
	c->ops.changed = coord_group_changed;
	c->partitions = cfg->offsets_topic_num_partitions;
	c->cluster = bs->b->zk_topics_create != NULL;
	timer_init(&c->load_timer, coord_load_tick);
	c->loaded = calloc((size_t)c->partitions, 1);
	if (c->loaded == NULL) {
		free(c);
		return NULL;
	}
	/* member ids differ across restarts: seed the counter from the clock */
	c->id_seq = (uint64_t)shard_now_ns(bs->sh) ^ ((uint64_t)bs->sh->id << 56);
	bs->ext = c;
	return c;
}

static uint32_t coord_bucket(const char *id, int32_t len)
{
	return (uint32_t)coord_java_hash(id, (size_t)len) & (COORD_BUCKETS - 1);
}

static void coord_group_timer_fn(struct timer *t, void *ctx)
{
	struct coord_group *cg = (struct coord_group *)((char *)t - offsetof(struct coord_group, t));

	(void)ctx;
	group_tick(cg->g, coord_now_ms(cg->c));
	if (coord_offsets_expire(cg))
		return;   /* removed */
	coord_group_touch(cg);
}

void coord_group_touch(struct coord_group *cg)
{
	struct timer_set *ts = &cg->c->bs->sh->timers;
	int64_t d = group_next_deadline(cg->g);

	if (cg->g->state == GROUP_EMPTY)
		d = SL_MIN(d, coord_offsets_next_expiry(cg));
	if (d == INT64_MAX) {
		timer_cancel(ts, &cg->t);
		return;
	}
	/* ms -> the shard clock's ns; one extra ms so the deadline has passed */
	if (timer_rearm(ts, &cg->t, (d + 1) * 1000000) != SL_OK)
		LOG_W(cg->c->bs->sh->id, "coord: timer table full, group %s not timed",
		      cg->g->group_id);
}

struct coord_group *coord_group_get(struct coord *c, const char *id, int32_t len,
				    int32_t partition, bool create)
{
	uint32_t b = coord_bucket(id, len);

	SL_ASSERT(id != NULL && len > 0 && partition >= 0);
	for (struct coord_group *cg = c->buckets[b]; cg != NULL; cg = cg->next)
		if (strlen(cg->g->group_id) == (size_t)len && memcmp(cg->g->group_id, id, (size_t)len) == 0)
			return cg;
	if (!create || c->group_count >= COORD_GROUPS_MAX)
		return NULL;
	struct coord_group *cg = calloc(1, sizeof(*cg));
	if (cg == NULL)
		return NULL;
	if (group_create(&cg->g, id, (size_t)len, &c->cfg, &c->ops, cg, &c->id_seq) != SL_OK) {
		free(cg);
		return NULL;
	}
	cg->c = c;
	cg->partition = partition;
	cg->empty_since_wall_ms = coord_wall(c);
	timer_init(&cg->t, coord_group_timer_fn);
	cg->next = c->buckets[b];
	c->buckets[b] = cg;
	c->group_count++;
	return cg;
}

static void coord_group_free(struct coord_group *cg)
{
	timer_cancel(&cg->c->bs->sh->timers, &cg->t);
	for (uint32_t i = 0; i < cg->off_count; i++) {
		free(cg->offs[i].topic);
		free(cg->offs[i].metadata);
	}
	free(cg->offs);
	group_destroy(cg->g);
	free(cg);
}

void coord_group_remove(struct coord_group *cg)
{
	struct coord *c = cg->c;
	uint32_t b = coord_bucket(cg->g->group_id, (int32_t)strlen(cg->g->group_id));

	SL_ASSERT(cg->g->state == GROUP_DEAD || cg->g->member_count == 0);
	for (struct coord_group **pp = &c->buckets[b]; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == cg) {
			*pp = cg->next;
			c->group_count--;
			coord_group_free(cg);
			return;
		}
	}
	SL_ASSERT(!"group not in its bucket");
}

void coord_groups_each(struct coord *c, bool (*fn)(struct coord_group *cg, void *arg), void *arg)
{
	for (uint32_t b = 0; b < COORD_BUCKETS; b++)
		for (struct coord_group *cg = c->buckets[b]; cg != NULL; cg = cg->next)
			if (!fn(cg, arg))
				return;
}

/*
 * Cluster mode: partition p is no longer led here. Its groups are freed
 * (held joins and syncs answered NOT_COORDINATOR), its appends in flight
 * will answer NOT_COORDINATOR; the next leader loads them from its log.
 */
static void coord_unload(struct coord *c, int32_t p)
{
	uint32_t n = 0;

	if (p >= c->partitions)
		return;
	c->loaded[p] = COORD_P_NONE;
	coord_log_unload(c, p);
	c->unloading = true;
	for (uint32_t b = 0; b < COORD_BUCKETS; b++) {
		struct coord_group *cg = c->buckets[b];
		while (cg != NULL) {
			struct coord_group *next = cg->next;
			if (cg->partition == p) {
				group_mark_dead(cg->g);
				coord_group_remove(cg);
				n++;
			}
			cg = next;
		}
	}
	c->unloading = false;
	LOG_I(c->bs->sh->id, "coord: unloaded %s-%d: %u group(s) (no longer the leader)",
	      COORD_OFFSETS_TOPIC, p, n);
}

void coord_role_changed(struct broker_shard *bs, struct partition *p, bool leader)
{
	const struct catalog_topic *t =
		bs->snap != NULL ? catalog_snap_find_id(bs->snap, partition_topic_id(p)) : NULL;
	int32_t idx = partition_index(p);

	if (t == NULL || t->name_len != strlen(COORD_OFFSETS_TOPIC) ||
	    memcmp(t->name, COORD_OFFSETS_TOPIC, t->name_len) != 0)
		return;
	if (!leader) {
		struct coord *c = bs->ext;   /* never made here just to unload */
		if (c != NULL)
			coord_unload(c, idx);
		return;
	}
	struct coord *c = coord_of(bs);
	if (c == NULL || coord_table_ensure(c, idx) != SL_OK)
		return;   /* the first call loads it */
	LOG_I(bs->sh->id, "coord: leader of %s-%d: loading its groups once the HW covers the log end",
	      COORD_OFFSETS_TOPIC, idx);
	(void)coord_load_try(c, idx);
}

void coord_shard_stop(struct broker_shard *bs)
{
	struct coord *c = bs->ext;

	if (c == NULL)
		return;
	coord_log_orphan(c);
	timer_cancel(&bs->sh->timers, &c->load_timer);
	for (uint32_t b = 0; b < COORD_BUCKETS; b++) {
		struct coord_group *cg = c->buckets[b];
		while (cg != NULL) {
			struct coord_group *next = cg->next;
			group_mark_dead(cg->g);  /* answers held joins and syncs */
			coord_group_free(cg);
			cg = next;
		}
		c->buckets[b] = NULL;
	}
	free(c->loaded);
	free(c);
	bs->ext = NULL;
}

/* ---- offsets ---- */

struct coord_offset *coord_offset_find(struct coord_group *cg, const char *topic, int32_t tlen,
				       int32_t partition)
{
	for (uint32_t i = 0; i < cg->off_count; i++) {
		struct coord_offset *o = &cg->offs[i];
		if (o->partition == partition && strlen(o->topic) == (size_t)tlen &&
		    memcmp(o->topic, topic, (size_t)tlen) == 0)
			return o;
	}
	return NULL;
}

enum sl_err coord_offset_put(struct coord_group *cg, const char *topic, int32_t tlen,
			     int32_t partition, int64_t offset, int32_t leader_epoch,
			     const char *meta, int32_t meta_len, int64_t ts_ms)
{
	struct coord_offset *o = coord_offset_find(cg, topic, tlen, partition);
	char *m;

	SL_ASSERT(topic != NULL && tlen > 0 && cg->off_count <= cg->off_cap);
	m = malloc((size_t)SL_MAX(meta_len, 0) + 1);

	if (m == NULL)
		return SL_ENOMEM;
	if (meta_len > 0)
		memcpy(m, meta, (size_t)meta_len);
	m[SL_MAX(meta_len, 0)] = '\0';
	if (o == NULL) {
		if (cg->off_count >= COORD_OFFSETS_PER_GROUP_MAX) {
			free(m);
			return SL_EAGAIN;
		}
		if (cg->off_count == cg->off_cap) {
			uint32_t cap = cg->off_cap == 0 ? 16 : cg->off_cap * 2;
			struct coord_offset *a = realloc(cg->offs, cap * sizeof(*a));
			if (a == NULL) {
				free(m);
				return SL_ENOMEM;
			}
			cg->offs = a;
			cg->off_cap = cap;
		}
		o = &cg->offs[cg->off_count];
		memset(o, 0, sizeof(*o));
		o->topic = malloc((size_t)tlen + 1);
		if (o->topic == NULL) {
			free(m);
			return SL_ENOMEM;
		}
		memcpy(o->topic, topic, (size_t)tlen);
		o->topic[tlen] = '\0';
		o->partition = partition;
		cg->off_count++;
	}
	free(o->metadata);
	o->metadata = m;
	o->offset = offset;
	o->leader_epoch = leader_epoch;
	o->commit_ts_ms = ts_ms;
	return SL_OK;
}

void coord_offset_del(struct coord_group *cg, uint32_t idx)
{
	SL_ASSERT(idx < cg->off_count);
	free(cg->offs[idx].topic);
	free(cg->offs[idx].metadata);
	cg->offs[idx] = cg->offs[--cg->off_count];
}

/* ---- calls to the owner ---- */

void *coord_call_result(struct coord_call *call, size_t size)
{
	if (call->out == NULL) {
		call->out = calloc(1, sizeof(*call->out));
		if (call->out == NULL)
			return NULL;
		/* the arena header and the result share one block */
		if (karena_init_heap(call->out, size + 4096) != SL_OK) {
			free(call->out);
			call->out = NULL;
			return NULL;
		}
	}
	return karena_alloc(call->out, size);
}

struct kslice coord_call_str(struct coord_call *call, const char *s)
{
	if (s == NULL)
		return KSLICE_NULL;
	size_t len = strlen(s);
	char *p = len > 0 ? coord_call_result(call, len) : NULL;
	if (len > 0 && p == NULL)
		return KSLICE_EMPTY;
	if (len > 0)
		memcpy(p, s, len);
	return (struct kslice){ (const uint8_t *)p, (int32_t)len };
}

void coord_call_reply(struct coord *c, struct coord_call *call)
{
	SL_ASSERT(!call->replied);
	call->replied = true;
	if (!call->in_fn)
		xmsg_reply(c->bs->sh, &call->m);
}

static enum sl_err coord_load_owned(struct coord *c);

/* Cluster mode: this broker leads __consumer_offsets partition p. */
static bool coord_leads(struct coord *c, int32_t p)
{
	struct partition *part = coord_partition(c, p);
	const struct repl_partition *rp = part != NULL ? repl_of(part) : NULL;

	return rp != NULL && rp->role == REPL_LEADER;
}

/* Cluster mode: everything in p's log is committed (HW covers the log end). */
static bool coord_log_complete(struct coord *c, int32_t p)
{
	struct partition *part = coord_partition(c, p);

	return part != NULL && partition_log_end(part) >= 0 &&
	       partition_hw(part) >= partition_log_end(part);
}

/* Arms the poll of PENDING partitions (once). */
static void coord_load_arm(struct coord *c)
{
	if (c->load_armed)
		return;
	int64_t at = shard_now_ns(c->bs->sh) + (int64_t)COORD_LOAD_POLL_MS * 1000000;
	if (timer_rearm(&c->bs->sh->timers, &c->load_timer, at) != SL_OK) {
		LOG_W(c->bs->sh->id, "coord: timer table full, %s loads wait for a call",
		      COORD_OFFSETS_TOPIC);
		return;
	}
	c->load_armed = true;
}

/*
 * Cluster mode: loads PENDING partition p when it is still led here and
 * its log is complete. Returns true when p is LOADED.
 */
static bool coord_load_try(struct coord *c, int32_t p)
{
	if (c->loaded[p] == COORD_P_LOADED)
		return true;
	if (!coord_leads(c, p)) {
		c->loaded[p] = COORD_P_NONE;
		return false;
	}
	c->loaded[p] = COORD_P_PENDING;
	if (!coord_log_complete(c, p) || coord_load(c, p) != SL_OK) {
		coord_load_arm(c);
		return false;
	}
	return true;
}

static void coord_load_tick(struct timer *t, void *ctx)
{
	struct coord *c = (struct coord *)((char *)t - offsetof(struct coord, load_timer));

	(void)ctx;
	c->load_armed = false;
	for (int32_t p = 0; p < c->partitions; p++)
		if (c->loaded[p] == COORD_P_PENDING)
			(void)coord_load_try(c, p);
}

/*
 * Whether calls for partition p can run here: KERR_NONE (loaded),
 * NOT_COORDINATOR (cluster mode: not led here), COORDINATOR_LOAD_IN_PROGRESS.
 */
static int16_t coord_ready(struct coord *c, int32_t p)
{
	if (!c->cluster)
		return coord_load(c, p) == SL_OK ? KERR_NONE : GROUP_KERR_COORDINATOR_LOAD_IN_PROGRESS;
	if (coord_table_ensure(c, p) != SL_OK)
		return GROUP_KERR_COORDINATOR_LOAD_IN_PROGRESS;
	if (!coord_leads(c, p)) {
		if (c->loaded[p] != COORD_P_NONE)
			coord_unload(c, p);
		return GROUP_KERR_NOT_COORDINATOR;
	}
	return coord_load_try(c, p) ? KERR_NONE : GROUP_KERR_COORDINATOR_LOAD_IN_PROGRESS;
}

/* Runs on: the owner. */
static enum xmsg_fn_result coord_call_on_owner(struct shard *sh, struct xmsg *m)
{
	struct coord_call *call = m->pl.ptr[0];
	struct coord *c = coord_of(broker_shard_of(sh));

	SL_ASSERT(call != NULL && m->to == sh->id);
	call->m = *m;
	call->replied = false;
	if (c == NULL) {
		call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
		return XMSG_REPLY;
	}
	int16_t ready = call->partition < 0 ? (coord_load_owned(c) == SL_OK ? KERR_NONE :
					       GROUP_KERR_COORDINATOR_LOAD_IN_PROGRESS)
					    : coord_ready(c, call->partition);
	if (ready != KERR_NONE) {
		call->error_code = ready;
		return XMSG_REPLY;
	}
	call->in_fn = true;
	call->on_owner(c, call);
	call->in_fn = false;
	return call->replied ? XMSG_REPLY : XMSG_DEFER;
}

/* Runs on: the owner: frees a result arena sent home. */
static enum xmsg_fn_result coord_arena_free_fn(struct shard *sh, struct xmsg *m)
{
	struct karena *a = m->pl.ptr[0];

	(void)sh;
	karena_destroy(a);
	free(a);
	return XMSG_REPLY;
}

/* Runs on: the connection's shard. */
static void coord_call_done(struct shard *sh, struct xmsg *m)
{
	struct coord_call *call = m->ctx;
	struct broker_shard *bs = broker_shard_of(sh);

	call->done(call);
	if (call->out != NULL) {
		struct xmsg f = { .type = 0, .fn = coord_arena_free_fn };
		f.pl.ptr[0] = call->out;
		if (broker_send(bs, m->to, &f) != SL_OK)
			LOG_W(sh->id, "coord: cannot send a result arena home (leaked)");
		call->out = NULL;
	}
}

/* Loads every __consumer_offsets partition this shard owns (ListGroups). */
static enum sl_err coord_load_owned(struct coord *c)
{
	const struct catalog_topic *t = catalog_snap_find(c->bs->snap, COORD_OFFSETS_TOPIC,
							  strlen(COORD_OFFSETS_TOPIC));

	for (int32_t p = 0; t != NULL && p < t->partition_count; p++) {
		if (partition_owner(&t->id, p, c->bs->b->shard_count) != c->bs->sh->id)
			continue;
		if (c->cluster) {
			/* groups of partitions led here only */
			int16_t ready = coord_ready(c, p);
			if (ready == GROUP_KERR_COORDINATOR_LOAD_IN_PROGRESS)
				return SL_EAGAIN;
			continue;
		}
		enum sl_err err = coord_load(c, p);
		if (err != SL_OK)
			return err;
	}
	return SL_OK;
}

int16_t coord_call_send(struct broker_shard *bs, struct coord_call *call)
{
	uint32_t shard;
	int16_t err;

	/* every record key must fit the fixed buffers of coord_log.c */
	if (call->group_len <= 0 || call->group_len > (int32_t)GROUP_ID_BYTES_MAX)
		return GROUP_KERR_INVALID_GROUP_ID;
	err = coord_route(bs, call->group, (size_t)call->group_len, &shard, &call->partition);
	if (err != KERR_NONE)
		return err;
	return coord_call_send_to(bs, call, shard);
}

int16_t coord_call_send_to(struct broker_shard *bs, struct coord_call *call, uint32_t shard)
{
	SL_ASSERT(shard < bs->b->shard_count && call->rq != NULL);
	SL_ASSERT(call->on_owner != NULL && call->done != NULL);
	call->owner = shard;
	struct xmsg m = { .type = (uint32_t)call->rq->api_key, .fn = coord_call_on_owner,
			  .done = coord_call_done, .ctx = call };
	m.pl.ptr[0] = call;
	if (broker_send(bs, shard, &m) != SL_OK)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	return KERR_NONE;
}

/* ---- routing and __consumer_offsets ---- */

const char *coord_topic_override(const struct catalog_topic *t, const char *key)
{
	for (uint32_t i = 0; i < t->config_count; i++)
		if (strcmp(t->configs[i].key, key) == 0)
			return t->configs[i].value;
	return NULL;
}

struct coord_create {
	struct broker_create bc;
	struct broker_create_topic t;
	/* cluster mode: the overrides written to /config/topics */
	char seg[32];
	char *keys[3];
	char *values[3];
};

static void coord_create_done(struct broker_shard *bs, struct broker_create *bc)
{
	struct coord_create *cc = (struct coord_create *)bc;
	struct coord *c = bs->ext;

	if (cc->t.error_code != KERR_NONE && cc->t.error_code != KERR_TOPIC_ALREADY_EXISTS)
		LOG_W(bs->sh->id, "coord: cannot create %s: error %d", COORD_OFFSETS_TOPIC,
		      cc->t.error_code);
	else
		LOG_I(bs->sh->id, "coord: %s ready (%d partitions)", COORD_OFFSETS_TOPIC,
		      bs->b->config->offsets_topic_num_partitions);
	if (c != NULL)
		c->creating = false;
	free(cc);
}

/*
 * Sets the overrides Kafka gives __consumer_offsets (its
 * offsetsTopicConfigs): cleanup.policy=compact, segment.bytes =
 * offsets.topic.segment.bytes and compression.type=producer (the
 * coordinator writes uncompressed batches: offsets.topic.compression.codec
 * none). With `only_missing`, a key already overridden is left alone (the
 * migration of a topic made by an older version must not undo an
 * operator's IncrementalAlterConfigs). Returns the number of keys set, or
 * -1 when the catalog refused a write. Runs on: shard 0.
 */
static int coord_topic_overrides(struct broker_shard *bs0, const struct catalog_topic *t,
				 bool only_missing)
{
	struct catalog *cat = bs0->b->catalog;
	const char *name = COORD_OFFSETS_TOPIC;
	size_t len = strlen(name);
	char seg[32];
	int set = 0;

	snprintf(seg, sizeof(seg), "%d", bs0->b->config->offsets_topic_segment_bytes);
	const char *const kv[][2] = {
		{ "cleanup.policy", "compact" },
		{ "segment.bytes", seg },
		{ "compression.type", "producer" },
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(kv); i++) {
		if (only_missing && t != NULL && coord_topic_override(t, kv[i][0]) != NULL)
			continue;
		if (catalog_topic_config_set(cat, name, len, kv[i][0], kv[i][1]) != SL_OK)
			return -1;
		set++;
	}
	return set;
}

/*
 * Creates __consumer_offsets in the catalog with Kafka's overrides
 * (coord_topic_overrides). Runs on: shard 0 (broker_topics_create).
 */
static uint32_t coord_topic_create_on_ctl(struct broker_shard *bs0, struct broker_create *bc)
{
	struct coord_create *cc = (struct coord_create *)bc;
	struct catalog *cat = bs0->b->catalog;
	const char *name = COORD_OFFSETS_TOPIC;
	size_t len = strlen(name);

	SL_ASSERT(bs0->sh->id == 0);
	enum sl_err err = catalog_topic_create(cat, name, len, cc->t.partitions,
					       CATALOG_TOPIC_INTERNAL, &cc->t.id);
	if (err == SL_EEXIST) {
		cc->t.error_code = KERR_TOPIC_ALREADY_EXISTS;
		return 0;
	}
	if (err != SL_OK || coord_topic_overrides(bs0, NULL, false) < 0) {
		cc->t.error_code = KERR_KAFKA_STORAGE_ERROR;
		(void)catalog_topic_delete(cat, name, len);
		return 0;
	}
	cc->t.error_code = KERR_NONE;
	return 1;
}

/*
 * Migration of a __consumer_offsets made before it was compacted (no
 * cleanup.policy override): adds the missing overrides. Idempotent, so
 * shards racing to start it are harmless. Runs on: shard 0.
 */
static uint32_t coord_topic_migrate_on_ctl(struct broker_shard *bs0, struct broker_create *bc)
{
	struct coord_create *cc = (struct coord_create *)bc;
	const struct catalog_topic *t = catalog_snap_find(bs0->snap, COORD_OFFSETS_TOPIC,
							  strlen(COORD_OFFSETS_TOPIC));

	SL_ASSERT(bs0->sh->id == 0);
	if (t == NULL || coord_topic_override(t, "cleanup.policy") != NULL) {
		cc->t.error_code = KERR_NONE;
		return 0;
	}
	int set = coord_topic_overrides(bs0, t, true);
	cc->t.error_code = set < 0 ? KERR_KAFKA_STORAGE_ERROR : KERR_NONE;
	if (set > 0)
		LOG_I(bs0->sh->id, "coord: %s made by an older version: added cleanup.policy=compact",
		      COORD_OFFSETS_TOPIC);
	return set > 0 ? (uint32_t)set : 0;
}

static void coord_migrate_done(struct broker_shard *bs, struct broker_create *bc)
{
	struct coord_create *cc = (struct coord_create *)bc;

	if (cc->t.error_code != KERR_NONE)
		LOG_W(bs->sh->id, "coord: cannot migrate %s: error %d", COORD_OFFSETS_TOPIC,
		      cc->t.error_code);
	free(cc);
}

/* Starts the migration once per shard when the topic lacks cleanup.policy. */
static void coord_topic_migrate(struct broker_shard *bs, const struct catalog_topic *t)
{
	struct coord *c = coord_of(bs);

	/* cluster mode: the overrides come from /config/topics, never local */
	if (c == NULL || c->cluster || c->migrated ||
	    coord_topic_override(t, "cleanup.policy") != NULL)
		return;
	struct coord_create *cc = calloc(1, sizeof(*cc));
	if (cc == NULL)
		return;
	cc->bc.count = 0;
	cc->bc.done = coord_migrate_done;
	cc->bc.mutate = coord_topic_migrate_on_ctl;
	if (broker_topics_create(bs, &cc->bc) != SL_OK) {
		free(cc);
		return;
	}
	c->migrated = true;
}

/* Starts creating __consumer_offsets (once per shard at a time). */
static void coord_topic_create(struct broker_shard *bs)
{
	struct coord *c = coord_of(bs);

	if (c == NULL || c->creating)
		return;
	struct coord_create *cc = calloc(1, sizeof(*cc));
	if (cc == NULL)
		return;
	cc->t.name = COORD_OFFSETS_TOPIC;
	cc->t.name_len = (uint32_t)strlen(COORD_OFFSETS_TOPIC);
	cc->t.partitions = bs->b->config->offsets_topic_num_partitions;
	cc->bc.count = 0;
	cc->bc.done = coord_create_done;
	cc->bc.mutate = coord_topic_create_on_ctl;
	if (c->cluster) {
		/* through ZooKeeper like any topic, with the overrides as configs */
		snprintf(cc->seg, sizeof(cc->seg), "%d", bs->b->config->offsets_topic_segment_bytes);
		cc->keys[0] = (char *)"cleanup.policy";
		cc->values[0] = (char *)"compact";
		cc->keys[1] = (char *)"segment.bytes";
		cc->values[1] = cc->seg;
		cc->keys[2] = (char *)"compression.type";
		cc->values[2] = (char *)"producer";
		cc->t.replication_factor = bs->b->config->offsets_topic_replication_factor;
		cc->t.config_count = 3;
		cc->t.keys = cc->keys;
		cc->t.values = cc->values;
		cc->bc.topics = &cc->t;
		cc->bc.count = 1;
		cc->bc.mutate = NULL;
	}
	if (broker_topics_create(bs, &cc->bc) != SL_OK) {
		free(cc);
		return;
	}
	c->creating = true;
}

int16_t coord_route(struct broker_shard *bs, const char *group, size_t len, uint32_t *shard,
		    int32_t *partition)
{
	const struct catalog_topic *t =
		catalog_snap_find(bs->snap, COORD_OFFSETS_TOPIC, strlen(COORD_OFFSETS_TOPIC));

	if (t == NULL || t->partition_count <= 0) {
		/* cluster mode: Kafka waits for offsets.topic.replication.factor
		 * live brokers before creating it */
		if (!bs->snap->cluster && bs->b->zk_topics_create != NULL)
			return KERR_COORDINATOR_NOT_AVAILABLE;
		if (bs->snap->cluster && (int64_t)bs->snap->broker_count <
					 (int64_t)bs->b->config->offsets_topic_replication_factor)
			return KERR_COORDINATOR_NOT_AVAILABLE;
		coord_topic_create(bs);
		return KERR_COORDINATOR_NOT_AVAILABLE;
	}
	coord_topic_migrate(bs, t);
	/* the partition count of the existing topic decides (Kafka reads it too) */
	*partition = coord_partition_for(group, len, t->partition_count);
	*shard = partition_owner(&t->id, *partition, bs->b->shard_count);
	return KERR_NONE;
}

void coord_register(void)
{
	dispatch_register(KAFKA_API_FIND_COORDINATOR, 0, 4, api_find_coordinator_handle);
	dispatch_register(KAFKA_API_JOIN_GROUP, 0, 9, api_join_group_handle);
	dispatch_register(KAFKA_API_SYNC_GROUP, 0, 5, api_sync_group_handle);
	dispatch_register(KAFKA_API_HEARTBEAT, 0, 4, api_heartbeat_handle);
	dispatch_register(KAFKA_API_LEAVE_GROUP, 0, 5, api_leave_group_handle);
	dispatch_register(KAFKA_API_OFFSET_COMMIT, 0, 9, api_offset_commit_handle);
	dispatch_register(KAFKA_API_OFFSET_FETCH, 0, 9, api_offset_fetch_handle);
	dispatch_register(KAFKA_API_LIST_GROUPS, 0, 5, api_list_groups_handle);
	dispatch_register(KAFKA_API_DESCRIBE_GROUPS, 0, 5, api_describe_groups_handle);
	dispatch_register(KAFKA_API_DELETE_GROUPS, 0, 2, api_delete_groups_handle);
	dispatch_register(KAFKA_API_OFFSET_DELETE, 0, 0, api_offset_delete_handle);
}
