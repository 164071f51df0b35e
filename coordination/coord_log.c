/*
 * coord_log.c — committed offsets and group metadata as records of
 * __consumer_offsets, in Kafka's own formats, so tools reading that topic
 * understand them:
 *
 *   offset commit   key   int16 1 (version), group string, topic string,
 *                         partition int32                (OffsetCommitKey)
 *                   value int16 3, offset int64, leaderEpoch int32,
 *                         metadata string, commitTimestamp int64
 *                                                        (OffsetCommitValue v3)
 *   group metadata  key   int16 2, group string          (GroupMetadataKey)
 *                   value int16 3, protocolType string, generation int32,
 *                         protocol string?, leader string?,
 *                         currentStateTimestamp int64, members [int32 count]
 *                         { memberId, groupInstanceId?, clientId,
 *                         clientHost, rebalanceTimeout int32,
 *                         sessionTimeout int32, subscription bytes,
 *                         assignment bytes }         (GroupMetadataValue v3)
 *   tombstones      the key with a null value (offset deleted, group deleted)
 *
 * Batches are written uncompressed (one batch per commit request), with
 * no producer id. Offsets answer only after their append completed
 * (coord_log_append's done).
 *
 * Group metadata is written when a rebalance completes (the leader's
 * SyncGroup: STABLE with every member's subscription and assignment) and
 * when the group becomes EMPTY (no members), as Kafka does.
 *
 * Load (coord_load / coord_load_log): the first call for partition p on
 * its owner scans p's log from its start (plog_scan, pread each batch,
 * walk its records), applying records in offset order. The log may be
 * compacted (__consumer_offsets has cleanup.policy=compact): offsets have
 * gaps, batches may hold zero records, tombstones may be gone. So each
 * record only sets or clears the state of its own key: an offset key its
 * offset, a group key the group's metadata (group_restore: STABLE with the
 * stored generation, protocol, leader and members, sessions starting now;
 * EMPTY without members; a group tombstone clears the metadata but not
 * the offsets, which have their own tombstones). A group is kept when it
 * has metadata or offsets. The rebuilt state therefore depends only on
 * each key's latest record: what compaction keeps. Compressed batches
 * (never written here) are skipped with a warning; record versions beyond
 * those written here (flexible v4) are ignored.
 *
 * Offset expiry (KIP-211): see coord_offsets_expire.
 *
 * Cluster mode: an append first passes the partition's produce check
 * (leader, min.insync.replicas as for acks=-1), gets the leader epoch
 * stamped, and completes only once the high watermark passed it
 * (partition_set.hooks->acks_wait, deadline offsets.commit.timeout.ms).
 * Errors are mapped as Kafka's coordinator maps them (coord_append_kerr).
 * When the partition stops being led here (coord_log_unload) its appends
 * in flight are answered NOT_COORDINATOR.
 *
 * In-flight appends at shutdown: coord_shard_stop orphans them
 * (coord_log_orphan); their completion then answers
 * COORDINATOR_NOT_AVAILABLE without touching freed groups.
 *
 * Runs on: the owner shard of the partition.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "batch_build.h"
#include "bytes.h"
#include "catalog.h"
#include "coord_internal.h"
#include "coord_log.h"
#include "kerr.h"
#include "log.h"
#include "partition.h"
#include "repl.h"

#define COORD_LOAD_BATCH_BYTES_MAX (64u << 20)

int64_t coord_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- encoding ---- */

static void kw_i16(struct coord_buf *b, int16_t v)
{
	if (b->len + 2 > b->cap) {
		b->err = true;
		return;
	}
	be16_store(b->p + b->len, (uint16_t)v);
	b->len += 2;
}

static void kw_i32(struct coord_buf *b, int32_t v)
{
	if (b->len + 4 > b->cap) {
		b->err = true;
		return;
	}
	be32_store(b->p + b->len, (uint32_t)v);
	b->len += 4;
}

static void kw_i64(struct coord_buf *b, int64_t v)
{
	if (b->len + 8 > b->cap) {
		b->err = true;
		return;
	}
	be64_store(b->p + b->len, (uint64_t)v);
	b->len += 8;
}

/* string (int16 length, -1 = null) */
static void kw_str(struct coord_buf *b, const char *s, int32_t len)
{
	if (s == NULL || len < 0) {
		kw_i16(b, -1);
		return;
	}
	if (len > INT16_MAX || b->len + 2 + (size_t)len > b->cap) {
		b->err = true;
		return;
	}
	kw_i16(b, (int16_t)len);
	memcpy(b->p + b->len, s, (size_t)len);
	b->len += (size_t)len;
}

/* bytes (int32 length) */
static void kw_bytes(struct coord_buf *b, const uint8_t *p, int32_t len)
{
	len = SL_MAX(len, 0);
	if (b->len + 4 + (size_t)len > b->cap) {
		b->err = true;
		return;
	}
	kw_i32(b, len);
	if (len > 0)
		memcpy(b->p + b->len, p, (size_t)len);
	b->len += (size_t)len;
}

void coord_key_offset(struct coord_buf *b, const char *group, int32_t glen, const char *topic,
		      int32_t tlen, int32_t partition)
{
	kw_i16(b, 1);
	kw_str(b, group, glen);
	kw_str(b, topic, tlen);
	kw_i32(b, partition);
}

void coord_value_offset(struct coord_buf *b, int64_t offset, int32_t leader_epoch, const char *meta,
			int32_t meta_len, int64_t ts_ms)
{
	kw_i16(b, 3);
	kw_i64(b, offset);
	kw_i32(b, leader_epoch);
	kw_str(b, meta != NULL ? meta : "", meta != NULL ? SL_MAX(meta_len, 0) : 0);
	kw_i64(b, ts_ms);
}

void coord_key_group(struct coord_buf *b, const char *group, int32_t glen)
{
	kw_i16(b, 2);
	kw_str(b, group, glen);
}

size_t coord_value_group_bytes(const struct group *g)
{
	size_t n = 64 + (g->protocol_type != NULL ? strlen(g->protocol_type) : 0) +
		   (g->protocol_name != NULL ? strlen(g->protocol_name) : 0) +
		   (g->leader_id != NULL ? strlen(g->leader_id) : 0);

	for (uint32_t i = 0; i < g->member_count; i++) {
		const struct group_member *m = g->members[i];
		n += 64 + strlen(m->member_id) + (m->instance_id ? strlen(m->instance_id) : 0) +
		     (m->client_id ? strlen(m->client_id) : 0) +
		     (m->client_host ? strlen(m->client_host) : 0) + (size_t)m->assignment_len;
		for (uint32_t k = 0; k < m->protocol_count; k++)
			n += (size_t)m->protocols[k].meta_len;
	}
	return n;
}

void coord_value_group(struct coord_buf *b, const struct group *g, int64_t ts_ms)
{
	const char *pt = g->protocol_type != NULL ? g->protocol_type : "";

	kw_i16(b, 3);
	kw_str(b, pt, (int32_t)strlen(pt));
	kw_i32(b, g->generation);
	kw_str(b, g->protocol_name, g->protocol_name ? (int32_t)strlen(g->protocol_name) : -1);
	kw_str(b, g->leader_id, g->leader_id ? (int32_t)strlen(g->leader_id) : -1);
	kw_i64(b, ts_ms);
	kw_i32(b, (int32_t)g->member_count);
	for (uint32_t i = 0; i < g->member_count; i++) {
		const struct group_member *m = g->members[i];
		const struct group_protocol *sub = NULL;
		for (uint32_t k = 0; g->protocol_name != NULL && k < m->protocol_count; k++)
			if (strcmp(m->protocols[k].name, g->protocol_name) == 0)
				sub = &m->protocols[k];
		kw_str(b, m->member_id, (int32_t)strlen(m->member_id));
		kw_str(b, m->instance_id, m->instance_id ? (int32_t)strlen(m->instance_id) : -1);
		kw_str(b, m->client_id ? m->client_id : "", m->client_id ? (int32_t)strlen(m->client_id) : 0);
		kw_str(b, m->client_host ? m->client_host : "",
		       m->client_host ? (int32_t)strlen(m->client_host) : 0);
		kw_i32(b, m->rebalance_timeout_ms);
		kw_i32(b, m->session_timeout_ms);
		kw_bytes(b, sub != NULL ? sub->meta : NULL, sub != NULL ? sub->meta_len : 0);
		kw_bytes(b, m->assignment, m->assignment_len);
	}
}

/* ---- appends ---- */

struct coord_append {
	struct partition_append pa;
	struct partition_acks_waiter aw; /* cluster mode: waiting for the HW */
	struct partition *part;
	int32_t p;                       /* of __consumer_offsets */
	bool stale;                      /* p unloaded meanwhile: answer NOT_COORDINATOR */
	struct shard *sh;
	struct coord *c;                 /* NULL once orphaned */
	struct coord_call *call;         /* NULL: nobody waits */
	coord_append_done_fn *done;
	uint8_t *buf;
	struct coord_append *prev, *next;
};

static void coord_append_free(struct coord_append *ap)
{
	if (ap->c != NULL) {
		if (ap->prev != NULL)
			ap->prev->next = ap->next;
		else
			ap->c->appends = ap->next;
		if (ap->next != NULL)
			ap->next->prev = ap->prev;
	}
	free(ap->buf);
	free(ap);
}

static void coord_append_finish(struct coord_append *ap, int16_t err)
{
	if (ap->c == NULL) {
		/* orphaned by coord_shard_stop: answer without the (freed) coordinator */
		if (ap->call != NULL) {
			ap->call->error_code = KERR_COORDINATOR_NOT_AVAILABLE;
			ap->call->replied = true;
			xmsg_reply(ap->sh, &ap->call->m);
		}
	} else if (ap->done != NULL) {
		ap->done(ap->c, ap->call, ap->stale ? GROUP_KERR_NOT_COORDINATOR : err);
	}
	coord_append_free(ap);
}

int16_t coord_append_kerr(int16_t append_err)
{
	switch (append_err) {
	case KERR_NONE:
		return KERR_NONE;
	case KERR_NOT_LEADER_OR_FOLLOWER:
	case KERR_KAFKA_STORAGE_ERROR:
	case GROUP_KERR_NOT_COORDINATOR:
		return GROUP_KERR_NOT_COORDINATOR;
	default:
		/* NOT_ENOUGH_REPLICAS(_AFTER_APPEND), REQUEST_TIMED_OUT, ... */
		return KERR_COORDINATOR_NOT_AVAILABLE;
	}
}

/* Cluster mode: the high watermark passed the append (or it failed). */
static void coord_append_acked(struct partition_acks_waiter *w)
{
	struct coord_append *ap = (struct coord_append *)((char *)w - offsetof(struct coord_append, aw));

	if (w->error_code != KERR_NONE && ap->c != NULL)
		LOG_W(ap->sh->id, "coord: append to %s-%d not replicated: error %d",
		      COORD_OFFSETS_TOPIC, ap->p, w->error_code);
	coord_append_finish(ap, coord_append_kerr(w->error_code));
}

static void coord_append_done(struct partition_append *pa)
{
	struct coord_append *ap = (struct coord_append *)((char *)pa - offsetof(struct coord_append, pa));

	if (pa->error_code != KERR_NONE && ap->c != NULL)
		LOG_W(ap->sh->id, "coord: append to %s failed: error %d", COORD_OFFSETS_TOPIC,
		      pa->error_code);
	const struct partition_hooks *hooks = partition_set_of(ap->part)->hooks;
	if (pa->error_code == KERR_NONE && ap->c != NULL && hooks != NULL &&
	    hooks->acks_wait != NULL) {
		struct batch_header h;
		int32_t delta = batch_header_parse(ap->buf, ap->pa.len, &h) == SL_OK ?
					h.last_offset_delta : 0;
		int64_t timeout_ms = ap->c != NULL ?
			SL_MAX(ap->c->bs->b->config->offsets_commit_timeout_ms, 1) : 5000;
		ap->aw.last_offset = pa->base_offset + SL_MAX(delta, 0);
		ap->aw.deadline_ns = shard_now_ns(ap->sh) + timeout_ms * 1000000;
		ap->aw.fn = coord_append_acked;
		if (hooks->acks_wait(ap->part, &ap->aw) == 1)
			return;   /* coord_append_acked finishes */
		coord_append_finish(ap, coord_append_kerr(ap->aw.error_code));
		return;
	}
	coord_append_finish(ap, coord_append_kerr(pa->error_code));
}

struct partition *coord_partition(struct coord *c, int32_t p)
{
	const struct catalog_topic *t = c->bs->snap == NULL ? NULL :
		catalog_snap_find(c->bs->snap, COORD_OFFSETS_TOPIC, strlen(COORD_OFFSETS_TOPIC));

	if (t == NULL || p < 0 || p >= t->partition_count)
		return NULL;
	return partition_set_find(&c->bs->parts, &t->id, p);
}

void coord_log_append(struct coord *c, int32_t p, struct coord_batch *cb, struct coord_call *call,
		      coord_append_done_fn *done)
{
	struct coord_append *ap = calloc(1, sizeof(*ap));
	size_t len = batch_builder_finish(&cb->bb);
	struct partition *part = coord_partition(c, p);
	int16_t err = KERR_NONE;

	if (c->append_sink != NULL && ap != NULL && len > 0) {
		/* tests: the batch goes to the sink instead of a partition */
		free(ap);
		c->append_sink(c, p, cb->mem, len);
		free(cb->mem);
		cb->mem = NULL;
		if (done != NULL)
			done(c, call, KERR_NONE);
		return;
	}
	if (ap == NULL || len == 0 || part == NULL) {
		free(ap);
		free(cb->mem);
		cb->mem = NULL;
		if (done != NULL)
			done(c, call, KERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	const struct partition_hooks *hooks = c->bs->parts.hooks;
	if (hooks != NULL && hooks->produce_check != NULL) {
		/* cluster mode: as a produce with acks=-1, stamped with the epoch */
		int32_t epoch = 0;
		err = hooks->produce_check(part, -1, &epoch);
		if (err != KERR_NONE) {
			free(ap);
			free(cb->mem);
			cb->mem = NULL;
			if (done != NULL)
				done(c, call, coord_append_kerr(err));
			return;
		}
		batch_set_leader_epoch(cb->mem, epoch);
	}
	ap->sh = c->bs->sh;
	ap->c = c;
	ap->call = call;
	ap->done = done;
	ap->part = part;
	ap->p = p;
	ap->buf = cb->mem;
	cb->mem = NULL;
	ap->pa.buf = ap->buf;
	ap->pa.len = len;
	ap->pa.done = coord_append_done;
	ap->next = c->appends;
	if (c->appends != NULL)
		c->appends->prev = ap;
	c->appends = ap;
	err = partition_append(part, &ap->pa);
	if (err != KERR_NONE)
		coord_append_finish(ap, coord_append_kerr(err));
}

void coord_log_unload(struct coord *c, int32_t p)
{
	for (struct coord_append *ap = c->appends; ap != NULL; ap = ap->next)
		if (ap->p == p)
			ap->stale = true;
}

void coord_log_orphan(struct coord *c)
{
	for (struct coord_append *ap = c->appends; ap != NULL; ap = ap->next)
		ap->c = NULL;
	c->appends = NULL;
}

enum sl_err coord_batch_init(struct coord_batch *cb, size_t bytes)
{
	bytes += 256;
	cb->mem = malloc(bytes);
	if (cb->mem == NULL)
		return SL_ENOMEM;
	batch_builder_init(&cb->bb, cb->mem, bytes);
	return SL_OK;
}

void coord_batch_free(struct coord_batch *cb)
{
	free(cb->mem);
	cb->mem = NULL;
}

enum sl_err coord_batch_add(struct coord_batch *cb, const struct coord_buf *key,
			    const struct coord_buf *value)
{
	if (key->err || (value != NULL && value->err))
		return SL_EINVAL;
	return batch_builder_add(&cb->bb, coord_wall_ms(), key->p, (int32_t)key->len,
				 value != NULL ? value->p : NULL, value != NULL ? (int32_t)value->len : -1,
				 NULL, 0);
}

/* ---- group metadata on rebalance completion ---- */

void coord_group_changed(void *ctx, struct group *g)
{
	struct coord_group *cg = ctx;
	struct coord *c = cg->c;
	struct coord_batch cb;
	uint8_t kbuf[GROUP_ID_BYTES_MAX + 16];
	struct coord_buf key = { kbuf, 0, sizeof(kbuf), false };
	int64_t now = coord_now_ms(c);

	if (g->state == GROUP_STABLE)
		LOG_I(c->bs->sh->id, "group %s generation %d stable: %u member(s), protocol %s, "
		      "rebalance took %lld ms", g->group_id, g->generation, g->member_count,
		      g->protocol_name, (long long)(now - g->rebalance_start_ms));
	if (g->state == GROUP_EMPTY)
		cg->empty_since_wall_ms = coord_wall(c);
	cg->has_meta = true;
	size_t vlen = coord_value_group_bytes(g);
	struct coord_buf val = { malloc(vlen), 0, vlen, false };
	if (val.p == NULL || coord_batch_init(&cb, vlen + sizeof(kbuf) + 128) != SL_OK) {
		free(val.p);
		return;
	}
	coord_key_group(&key, g->group_id, (int32_t)strlen(g->group_id));
	coord_value_group(&val, g, coord_wall(c));
	if (coord_batch_add(&cb, &key, &val) != SL_OK)
		coord_batch_free(&cb);
	else
		coord_log_append(c, cg->partition, &cb, NULL, NULL);
	free(val.p);
}

/* ---- load ---- */

struct coord_reader {
	const uint8_t *p, *end;
	bool err;
};

static int16_t kr_i16(struct coord_reader *r)
{
	if (r->end - r->p < 2) {
		r->err = true;
		return 0;
	}
	int16_t v = (int16_t)be16_load(r->p);
	r->p += 2;
	return v;
}

static int32_t kr_i32(struct coord_reader *r)
{
	if (r->end - r->p < 4) {
		r->err = true;
		return 0;
	}
	int32_t v = (int32_t)be32_load(r->p);
	r->p += 4;
	return v;
}

static int64_t kr_i64(struct coord_reader *r)
{
	if (r->end - r->p < 8) {
		r->err = true;
		return 0;
	}
	int64_t v = (int64_t)be64_load(r->p);
	r->p += 8;
	return v;
}

/* A string: *len -1 for null. */
static const char *kr_str(struct coord_reader *r, int32_t *len)
{
	int16_t n = kr_i16(r);

	*len = -1;
	if (r->err || n < 0)
		return NULL;
	if (r->end - r->p < n) {
		r->err = true;
		return NULL;
	}
	const char *s = (const char *)r->p;
	r->p += n;
	*len = n;
	return s;
}

/* bytes (int32 length, -1 = null): *len -1 for null. */
static const uint8_t *kr_bytes(struct coord_reader *r, int32_t *len)
{
	int32_t n = kr_i32(r);

	*len = -1;
	if (r->err || n < 0)
		return NULL;
	if (r->end - r->p < n) {
		r->err = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	*len = n;
	return p;
}

/*
 * Parses GroupMetadataValue v0-v3 into *out (strings point into the
 * value); out->members is heap memory the caller frees. *state_ts gets
 * currentStateTimestamp (-1 before v2). SL_OK, SL_ECORRUPT (malformed or
 * an unknown version: v4 is flexible and never written here), SL_ENOMEM.
 */
static enum sl_err coord_parse_group(const uint8_t *val, int32_t vlen, struct group_restore *out,
				     int64_t *state_ts)
{
	struct coord_reader v = { val, val + vlen, false };
	int16_t vv = kr_i16(&v);
	int32_t n;

	memset(out, 0, sizeof(*out));
	*state_ts = -1;
	if (v.err || vv < 0 || vv > 3)
		return SL_ECORRUPT;
	out->protocol_type = kr_str(&v, &out->protocol_type_len);
	out->generation = kr_i32(&v);
	out->protocol_name = kr_str(&v, &out->protocol_name_len);
	out->leader_id = kr_str(&v, &out->leader_id_len);
	if (vv >= 2)
		*state_ts = kr_i64(&v);
	n = kr_i32(&v);
	if (v.err || n < 0 || n > (int32_t)GROUP_MEMBERS_MAX)
		return SL_ECORRUPT;
	struct group_restore_member *ms = calloc((size_t)n + 1, sizeof(*ms));
	if (ms == NULL)
		return SL_ENOMEM;
	for (int32_t i = 0; i < n; i++) {
		struct group_restore_member *m = &ms[i];
		m->member_id = kr_str(&v, &m->member_id_len);
		m->instance_id_len = -1;
		if (vv >= 3)
			m->instance_id = kr_str(&v, &m->instance_id_len);
		m->client_id = kr_str(&v, &m->client_id_len);
		m->client_host = kr_str(&v, &m->client_host_len);
		m->rebalance_timeout_ms = vv >= 1 ? kr_i32(&v) : 0;
		m->session_timeout_ms = kr_i32(&v);
		if (vv == 0)
			m->rebalance_timeout_ms = m->session_timeout_ms;
		m->subscription = kr_bytes(&v, &m->subscription_len);
		m->assignment = kr_bytes(&v, &m->assignment_len);
	}
	if (v.err) {
		free(ms);
		return SL_ECORRUPT;
	}
	out->member_count = (uint32_t)n;
	out->members = ms;
	return SL_OK;
}

/*
 * Applies one record. Every key's effect depends on its own latest record
 * only (an offset key sets or deletes that offset; a group key replaces
 * or clears the group's metadata, never its offsets), so the state
 * rebuilt from a compacted log equals the one rebuilt from the whole log.
 */
static void coord_load_record(struct coord *c, int32_t p, const struct batch_record *rec)
{
	struct coord_reader k = { rec->key, rec->key + SL_MAX(rec->key_len, 0), rec->key == NULL };
	int32_t glen, tlen, mlen;
	int16_t kv = kr_i16(&k);
	const char *group = kr_str(&k, &glen);
	int64_t now = coord_now_ms(c);

	if (k.err || glen <= 0 || glen > (int32_t)GROUP_ID_BYTES_MAX)
		return;
	if (kv == 0 || kv == 1) {
		const char *topic = kr_str(&k, &tlen);
		int32_t part = kr_i32(&k);
		if (k.err || tlen <= 0)
			return;
		struct coord_group *cg = coord_group_get(c, group, glen, p, rec->value != NULL);
		if (cg == NULL)
			return;
		if (rec->value == NULL) {
			struct coord_offset *o = coord_offset_find(cg, topic, tlen, part);
			if (o != NULL)
				coord_offset_del(cg, (uint32_t)(o - cg->offs));
			return;
		}
		struct coord_reader v = { rec->value, rec->value + rec->value_len, false };
		int16_t vv = kr_i16(&v);
		int64_t off = kr_i64(&v);
		int32_t epoch = vv >= 3 ? kr_i32(&v) : -1;
		const char *meta = kr_str(&v, &mlen);
		int64_t ts = kr_i64(&v);
		if (v.err || vv < 0 || vv > 3)
			return;
		(void)coord_offset_put(cg, topic, tlen, part, off, epoch, meta, mlen, ts);
	} else if (kv == 2) {
		struct coord_group *cg = coord_group_get(c, group, glen, p, rec->value != NULL);
		struct group_restore r;
		int64_t state_ts = -1;
		if (cg == NULL)
			return;
		if (rec->value == NULL) {
			/* the group's metadata is gone; its offsets have their own keys */
			memset(&r, 0, sizeof(r));
			(void)group_restore(cg->g, now, &r);
			cg->has_meta = false;
			cg->empty_since_wall_ms = coord_wall(c);
			return;
		}
		enum sl_err err = coord_parse_group(rec->value, rec->value_len, &r, &state_ts);
		if (err == SL_OK)
			err = group_restore(cg->g, now, &r);
		free((void *)r.members);
		if (err != SL_OK)
			LOG_W(c->bs->sh->id, "coord: group %.*s: metadata not restored (%s): empty",
			      (int)glen, group, sl_err_str(err));
		cg->has_meta = true;
		cg->empty_since_wall_ms = state_ts >= 0 ? state_ts : coord_wall(c);
	}
}

struct coord_load_ctx {
	struct coord *c;
	int32_t p;
	uint8_t *buf;
	size_t cap;
	enum sl_err err;
	uint64_t records;
};

static int coord_load_batch(void *arg, const struct batch_header *h, int fd, int64_t pos)
{
	struct coord_load_ctx *lc = arg;
	size_t size = batch_size_bytes(h);

	if (size > COORD_LOAD_BATCH_BYTES_MAX) {
		lc->err = SL_ECORRUPT;
		return 1;
	}
	if ((h->attributes & 0x07) != 0 || (h->attributes & 0x20) != 0) {
		if ((h->attributes & 0x20) == 0)
			LOG_W(lc->c->bs->sh->id, "coord: skipping a compressed batch at offset %lld",
			      (long long)h->base_offset);
		return 0;  /* compressed (never written here) or control batch */
	}
	if (size > lc->cap) {
		uint8_t *nb = realloc(lc->buf, size);
		if (nb == NULL) {
			lc->err = SL_ENOMEM;
			return 1;
		}
		lc->buf = nb;
		lc->cap = size;
	}
	ssize_t n = pread(fd, lc->buf, size, pos);
	if (n != (ssize_t)size) {
		lc->err = SL_EIO;
		return 1;
	}
	struct batch_record_iter it;
	struct batch_record rec;
	batch_record_iter_init(&it, lc->buf + BATCH_HEADER_BYTES, size - BATCH_HEADER_BYTES,
			       h->records_count);
	for (int32_t i = 0; i < h->records_count; i++) {
		if (batch_record_next(&it, &rec) != SL_OK)
			break;
		coord_load_record(lc->c, lc->p, &rec);
		lc->records++;
	}
	return 0;
}

/*
 * After partition p's records: drops groups left with neither metadata
 * nor offsets (only tombstones of theirs were read; Kafka does not
 * create those either), logs restored members and arms the timers
 * (sessions, offset expiry).
 */
static void coord_load_finish(struct coord *c, int32_t p)
{
	for (uint32_t b = 0; b < COORD_BUCKETS; b++) {
		struct coord_group *cg = c->buckets[b];
		while (cg != NULL) {
			struct coord_group *next = cg->next;
			if (cg->partition == p && !cg->has_meta && cg->off_count == 0) {
				group_mark_dead(cg->g);
				coord_group_remove(cg);
			} else if (cg->partition == p) {
				if (cg->g->member_count > 0)
					LOG_I(c->bs->sh->id, "coord: group %s restored: generation %d, "
					      "%u member(s), protocol %s", cg->g->group_id,
					      cg->g->generation, cg->g->member_count,
					      cg->g->protocol_name);
				coord_group_touch(cg);
			}
			cg = next;
		}
	}
}

enum sl_err coord_load_log(struct coord *c, int32_t p, struct plog *log, uint64_t *records)
{
	struct coord_load_ctx lc = { .c = c, .p = p };
	int64_t from = plog_start_offset(log);
	int64_t end = plog_end_offset(log);

	/* each round passes >= 1 batch, so at most (end - from) rounds */
	for (int64_t round = 0; from < end && round < end - plog_start_offset(log) + 1; round++) {
		int64_t next = from;
		enum sl_err err = plog_scan(log, from, 4096, coord_load_batch, &lc, &next);
		if (err != SL_OK || lc.err != SL_OK) {
			LOG_E(c->bs->sh->id, "coord: cannot load %s-%d: %s", COORD_OFFSETS_TOPIC, p,
			      sl_err_str(err != SL_OK ? err : lc.err));
			free(lc.buf);
			return err != SL_OK ? err : lc.err;
		}
		if (next <= from)
			break;   /* nothing at or after `from` */
		from = next;
	}
	free(lc.buf);
	if (records != NULL)
		*records = lc.records;
	coord_load_finish(c, p);
	return SL_OK;
}

enum sl_err coord_table_ensure(struct coord *c, int32_t p)
{
	SL_ASSERT(p >= 0);
	if (p >= c->partitions) {
		/* the topic has more partitions than the config says: grow the table */
		uint8_t *nl = realloc(c->loaded, (size_t)p + 1);
		if (nl == NULL)
			return SL_ENOMEM;
		memset(nl + c->partitions, 0, (size_t)(p + 1 - c->partitions));
		c->loaded = nl;
		c->partitions = p + 1;
	}
	return SL_OK;
}

enum sl_err coord_load(struct coord *c, int32_t p)
{
	SL_ASSERT(p >= 0);
	if (coord_table_ensure(c, p) != SL_OK)
		return SL_ENOMEM;
	if (c->loaded[p] == COORD_P_LOADED)
		return SL_OK;
	struct partition *part = coord_partition(c, p);
	struct plog *log = part != NULL ? partition_log(part) : NULL;
	if (log == NULL)
		return SL_EAGAIN;   /* not opened here yet */
	uint64_t records = 0;
	enum sl_err err = coord_load_log(c, p, log, &records);
	if (err != SL_OK)
		return err;
	c->loaded[p] = COORD_P_LOADED;
	if (records > 0 || c->cluster)
		LOG_I(c->bs->sh->id, "coord: loaded %s-%d: %llu record(s), %u group(s) on this shard",
		      COORD_OFFSETS_TOPIC, p, (unsigned long long)records, c->group_count);
	return SL_OK;
}

/* ---- offset expiry (offsets.retention.minutes) ---- */

int64_t coord_wall(struct coord *c)
{
	return c->wall_fn != NULL ? c->wall_fn(c) : coord_wall_ms();
}

static int64_t coord_retention_ms(const struct coord *c)
{
	return (int64_t)c->bs->b->config->offsets_retention_minutes * 60000;
}

/*
 * When offset o may expire (KIP-211): retention after the group became
 * EMPTY for a group that has a protocol type (never before the offset's
 * own commit either: a commit to an empty group restarts its clock), after
 * its commit for a standalone group (no protocol type: assign() + commit).
 */
static int64_t coord_offset_base(const struct coord_group *cg, const struct coord_offset *o)
{
	if (cg->g->protocol_type == NULL)
		return o->commit_ts_ms;
	return SL_MAX(o->commit_ts_ms, cg->empty_since_wall_ms);
}

bool coord_offsets_expire(struct coord_group *cg)
{
	struct coord *c = cg->c;
	int64_t wall = coord_wall(c);
	int64_t keep = coord_retention_ms(c);
	struct coord_batch cb;
	uint32_t n = 0;

	if (cg->g->state != GROUP_EMPTY || cg->off_count == 0 || keep <= 0)
		return false;
	if (coord_batch_init(&cb, ((size_t)cg->off_count + 1) * (GROUP_ID_BYTES_MAX * 3 + 64)) != SL_OK)
		return false;
	uint8_t kbuf[GROUP_ID_BYTES_MAX * 3 + 64];
	for (uint32_t i = cg->off_count; i-- > 0;) {
		struct coord_offset *o = &cg->offs[i];
		if (coord_offset_base(cg, o) + keep > wall)
			continue;
		struct coord_buf key = { kbuf, 0, sizeof(kbuf), false };
		coord_key_offset(&key, cg->g->group_id, (int32_t)strlen(cg->g->group_id), o->topic,
				 (int32_t)strlen(o->topic), o->partition);
		if (coord_batch_add(&cb, &key, NULL) == SL_OK)
			n++;
		coord_offset_del(cg, i);
	}
	if (n == 0) {
		coord_batch_free(&cb);
		return false;
	}
	/* an EMPTY group left without offsets is removed with a tombstone, as in Kafka */
	bool remove = cg->off_count == 0 && cg->g->member_count == 0;
	if (remove) {
		struct coord_buf key = { kbuf, 0, sizeof(kbuf), false };
		coord_key_group(&key, cg->g->group_id, (int32_t)strlen(cg->g->group_id));
		(void)coord_batch_add(&cb, &key, NULL);
	}
	LOG_I(c->bs->sh->id, "coord: group %s: %u offset(s) expired%s", cg->g->group_id, n,
	      remove ? ", group removed" : "");
	int32_t p = cg->partition;
	if (remove) {
		group_mark_dead(cg->g);
		coord_group_remove(cg);
	}
	coord_log_append(c, p, &cb, NULL, NULL);
	return remove;
}

int64_t coord_offsets_next_expiry(struct coord_group *cg)
{
	int64_t keep = coord_retention_ms(cg->c);
	int64_t every = cg->c->bs->b->config->offsets_retention_check_interval_ms;
	int64_t oldest = INT64_MAX;

	if (cg->off_count == 0 || keep <= 0)
		return INT64_MAX;
	for (uint32_t i = 0; i < cg->off_count; i++)
		oldest = SL_MIN(oldest, coord_offset_base(cg, &cg->offs[i]));
	/* wall-clock deadline -> the shard clock */
	int64_t at = coord_now_ms(cg->c) + SL_MAX(oldest + keep - coord_wall(cg->c), 0);
	/* checked every offsets.retention.check.interval.ms, as Kafka's task */
	if (every > 0)
		at = (at / every + 1) * every;
	return at;
}
