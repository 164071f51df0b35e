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
 * Load (coord_load): the first call for partition p on its owner scans
 * p's log from its start (plog_scan, pread each batch, walk its records),
 * applying records in offset order: later commits replace earlier ones,
 * tombstones delete. Group metadata restores the generation and protocol
 * type only; members are not restored (they rejoin after a restart, as
 * they would after their session timeout in Kafka). Compressed batches
 * (never written here) are skipped with a warning.
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

#define COORD_LOAD_BATCHES_MAX (1u << 30)
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
		ap->done(ap->c, ap->call, err);
	}
	coord_append_free(ap);
}

static void coord_append_done(struct partition_append *pa)
{
	struct coord_append *ap = (struct coord_append *)((char *)pa - offsetof(struct coord_append, pa));

	if (pa->error_code != KERR_NONE && ap->c != NULL)
		LOG_W(ap->sh->id, "coord: append to %s failed: error %d", COORD_OFFSETS_TOPIC,
		      pa->error_code);
	coord_append_finish(ap, pa->error_code);
}

static struct partition *coord_partition(struct coord *c, int32_t p)
{
	const struct catalog_topic *t = catalog_snap_find(c->bs->snap, COORD_OFFSETS_TOPIC,
							  strlen(COORD_OFFSETS_TOPIC));

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

	if (ap == NULL || len == 0 || part == NULL) {
		free(ap);
		free(cb->mem);
		cb->mem = NULL;
		if (done != NULL)
			done(c, call, KERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	ap->sh = c->bs->sh;
	ap->c = c;
	ap->call = call;
	ap->done = done;
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
		coord_append_finish(ap, err);
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
		cg->empty_since_wall_ms = coord_wall_ms();
	size_t vlen = coord_value_group_bytes(g);
	struct coord_buf val = { malloc(vlen), 0, vlen, false };
	if (val.p == NULL || coord_batch_init(&cb, vlen + sizeof(kbuf) + 128) != SL_OK) {
		free(val.p);
		return;
	}
	coord_key_group(&key, g->group_id, (int32_t)strlen(g->group_id));
	coord_value_group(&val, g, coord_wall_ms());
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

static void coord_load_record(struct coord *c, int32_t p, const struct batch_record *rec)
{
	struct coord_reader k = { rec->key, rec->key + SL_MAX(rec->key_len, 0), rec->key == NULL };
	int32_t glen, tlen, mlen;
	int16_t kv = kr_i16(&k);
	const char *group = kr_str(&k, &glen);

	if (k.err || glen <= 0)
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
		if (v.err || vv < 0 || vv > 4)
			return;
		coord_offset_put(cg, topic, tlen, part, off, epoch, meta, mlen, ts);
	} else if (kv == 2) {
		struct coord_group *cg = coord_group_get(c, group, glen, p, rec->value != NULL);
		if (cg == NULL)
			return;
		if (rec->value == NULL) {
			if (cg->g->member_count == 0) {
				group_mark_dead(cg->g);
				coord_group_remove(cg);
			}
			return;
		}
		struct coord_reader v = { rec->value, rec->value + rec->value_len, false };
		int16_t vv = kr_i16(&v);
		int32_t ptlen;
		kr_str(&v, &ptlen);
		int32_t gen = kr_i32(&v);
		if (v.err || vv < 0 || vv > 4)
			return;
		/* members rejoin; the generation carries on from the last one */
		if (gen > cg->g->generation)
			cg->g->generation = gen;
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

enum sl_err coord_load(struct coord *c, int32_t p)
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
	if (c->loaded[p])
		return SL_OK;
	struct partition *part = coord_partition(c, p);
	struct plog *log = part != NULL ? partition_log(part) : NULL;
	if (log == NULL)
		return SL_EAGAIN;   /* not opened here yet */
	struct coord_load_ctx lc = { .c = c, .p = p };
	int64_t from = plog_start_offset(log);
	int64_t end = plog_end_offset(log);
	for (uint32_t round = 0; from < end && round < COORD_LOAD_BATCHES_MAX; round++) {
		int64_t next = from;
		enum sl_err err = plog_scan(log, from, 4096, coord_load_batch, &lc, &next);
		if (err != SL_OK || lc.err != SL_OK) {
			LOG_E(c->bs->sh->id, "coord: cannot load %s-%d: %s", COORD_OFFSETS_TOPIC, p,
			      sl_err_str(err != SL_OK ? err : lc.err));
			free(lc.buf);
			return err != SL_OK ? err : lc.err;
		}
		if (next <= from)
			break;
		from = next;
	}
	free(lc.buf);
	c->loaded[p] = 1;
	if (lc.records > 0)
		LOG_I(c->bs->sh->id, "coord: loaded %s-%d: %llu record(s), %u group(s) on this shard",
		      COORD_OFFSETS_TOPIC, p, (unsigned long long)lc.records, c->group_count);
	/* loaded groups may have offsets to expire */
	for (uint32_t b = 0; b < COORD_BUCKETS; b++)
		for (struct coord_group *cg = c->buckets[b]; cg != NULL; cg = cg->next)
			if (cg->partition == p)
				coord_group_touch(cg);
	return SL_OK;
}

/* ---- offset expiry (offsets.retention.minutes) ---- */

static int64_t coord_retention_ms(const struct coord *c)
{
	return (int64_t)c->bs->b->config->offsets_retention_minutes * 60000;
}

void coord_offsets_expire(struct coord_group *cg)
{
	struct coord *c = cg->c;
	int64_t wall = coord_wall_ms();
	int64_t keep = coord_retention_ms(c);
	struct coord_batch cb;
	uint32_t n = 0;

	if (cg->g->state != GROUP_EMPTY || cg->off_count == 0 || keep <= 0)
		return;
	if (coord_batch_init(&cb, (size_t)cg->off_count * (GROUP_ID_BYTES_MAX * 3 + 64)) != SL_OK)
		return;
	for (uint32_t i = cg->off_count; i-- > 0;) {
		struct coord_offset *o = &cg->offs[i];
		if (SL_MAX(o->commit_ts_ms, cg->empty_since_wall_ms) + keep > wall)
			continue;
		uint8_t kbuf[GROUP_ID_BYTES_MAX * 3 + 64];
		struct coord_buf key = { kbuf, 0, sizeof(kbuf), false };
		coord_key_offset(&key, cg->g->group_id, (int32_t)strlen(cg->g->group_id), o->topic,
				 (int32_t)strlen(o->topic), o->partition);
		if (coord_batch_add(&cb, &key, NULL) == SL_OK)
			n++;
		coord_offset_del(cg, i);
	}
	if (n == 0) {
		coord_batch_free(&cb);
		return;
	}
	LOG_I(c->bs->sh->id, "coord: group %s: %u offset(s) expired", cg->g->group_id, n);
	coord_log_append(c, cg->partition, &cb, NULL, NULL);
}

int64_t coord_offsets_next_expiry(struct coord_group *cg)
{
	int64_t keep = coord_retention_ms(cg->c);
	int64_t oldest = INT64_MAX;

	if (cg->off_count == 0 || keep <= 0)
		return INT64_MAX;
	for (uint32_t i = 0; i < cg->off_count; i++)
		oldest = SL_MIN(oldest, SL_MAX(cg->offs[i].commit_ts_ms, cg->empty_since_wall_ms));
	/* wall-clock deadline -> the shard clock */
	int64_t left = oldest + keep - coord_wall_ms();
	return coord_now_ms(cg->c) + SL_MAX(left, 0);
}
