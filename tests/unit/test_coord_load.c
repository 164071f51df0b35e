/*
 * test_coord_load.c — the coordinator's rebuild of __consumer_offsets
 * (coord_load_log), member restore and offset expiry, on a coordinator
 * made over a hand-built shard (injected shard clock and wall clock, no
 * ring loop, no catalog):
 *
 *   - compaction invariance: a realistic sequence of offset commits, group
 *     metadata, offset deletes, DeleteGroups tombstones, a group deleted
 *     and recreated, a group tombstone without offset tombstones, in a log
 *     of small segments; the state rebuilt after plog_compact (tombstones
 *     kept, then removed by delete.retention.ms) equals the state rebuilt
 *     from the uncompacted log, which is itself checked value by value;
 *     the compacted log has offset gaps and empty batches;
 *   - members: a real rebalance of two members through group.c, whose
 *     GroupMetadata records coord_group_changed writes (through the test
 *     sink) into a plog, is restored STABLE with the same generation,
 *     leader, members and assignments; sessions start at the load; a
 *     member that does not heartbeat is removed by the group's timer; an
 *     EMPTY record restores EMPTY;
 *   - expiry (KIP-211) with the injected clocks: standalone offsets expire
 *     retention after their commit, a consumer group's retention after it
 *     became EMPTY, not a millisecond before, checked on the interval
 *     grid; tombstones (and the group tombstone) are written; a STABLE
 *     group's offsets never expire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "io_testutil.h"

#include "broker.h"
#include "compact.h"
#include "config.h"
#include "coord.h"
#include "coord_internal.h"
#include "coord_log.h"
#include "group.h"
#include "shard.h"

#define TS 1000              /* record timestamps (ms) */
#define DUMP_MAX (1 << 16)
#define SINK_MAX 64

struct env {
	struct iot_log_fixture f;
	struct plog *log;
	struct config cfg;
	struct shard sh;
	struct broker b;
	struct broker_shard bs;
	int64_t now_ns;
	int64_t wall;
	/* the sink: batches the coordinator appended */
	bool sink_to_log;
	uint32_t sink_count;
	uint32_t sink_tombstones;
	uint32_t sink_group_tombstones;
	uint32_t sink_records;
};

static int64_t env_clock(void *ctx)
{
	return ((struct env *)ctx)->now_ns;
}

static int64_t env_wall(struct coord *c)
{
	return ((struct env *)c->test_ctx)->wall;
}

static void env_append(struct env *e, const uint8_t *batch, size_t len)
{
	struct iot_app t;

	assert_int_equal(iot_app_submit(e->log, &t, batch, len, TS, NULL), SL_OK);
	iot_drive(&e->f.ring, &t.done);
	assert_int_equal(t.res, SL_OK);
	iot_app_free(&t);
}

static void env_sink(struct coord *c, int32_t p, const uint8_t *batch, size_t len)
{
	struct env *e = c->test_ctx;
	struct batch_header h;
	struct batch_record_iter it;
	struct batch_record rec;

	assert_int_equal(p, 0);
	assert_int_equal(batch_header_parse(batch, len, &h), SL_OK);
	batch_record_iter_init(&it, batch + BATCH_HEADER_BYTES, len - BATCH_HEADER_BYTES,
			       h.records_count);
	for (int32_t i = 0; i < h.records_count; i++) {
		assert_int_equal(batch_record_next(&it, &rec), SL_OK);
		e->sink_records++;
		if (rec.value == NULL) {
			e->sink_tombstones++;
			if (be16_load(rec.key) == 2)
				e->sink_group_tombstones++;
		}
	}
	e->sink_count++;
	if (e->sink_to_log)
		env_append(e, batch, len);
}

static struct coord *env_coord(struct env *e)
{
	struct coord *c = coord_of(&e->bs);

	assert_non_null(c);
	c->wall_fn = env_wall;
	c->append_sink = env_sink;
	c->test_ctx = e;
	c->cfg.initial_rebalance_delay_ms = 0;
	return c;
}

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	iot_log_fixture_init(&e->f);
	e->f.cfg.segment_bytes = 1024;
	config_init(&e->cfg);
	e->cfg.offsets_retention_minutes = 1;
	e->cfg.offsets_retention_check_interval_ms = 1000;
	e->now_ns = 5000ll * 1000000;
	e->wall = 1700000000000ll;
	e->sh.clock = env_clock;
	e->sh.clock_ctx = e;
	e->sh.app = &e->bs;
	assert_int_equal(timer_set_init(&e->sh.timers, 256, NULL), SL_OK);
	e->b.config = &e->cfg;
	e->b.shard_count = 1;
	e->bs.sh = &e->sh;
	e->bs.b = &e->b;
	assert_int_equal(plog_open(&e->log, &e->f.ring, e->f.d.part, &e->f.cfg, 0), SL_OK);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	coord_shard_stop(&e->bs);
	assert_int_equal(plog_close(e->log), SL_OK);
	timer_set_free(&e->sh.timers);
	config_free(&e->cfg);
	iot_log_fixture_fini(&e->f);
	free(e);
	return 0;
}

/* ---- building records ---- */

struct rec {
	uint8_t k[512];
	uint8_t v[4096];
	struct coord_buf key;
	struct coord_buf val;
	bool tomb;
};

static void rec_offset(struct rec *r, const char *g, const char *t, int32_t p, int64_t off)
{
	r->key = (struct coord_buf){ r->k, 0, sizeof(r->k), false };
	r->val = (struct coord_buf){ r->v, 0, sizeof(r->v), false };
	coord_key_offset(&r->key, g, (int32_t)strlen(g), t, (int32_t)strlen(t), p);
	r->tomb = off < 0;
	if (!r->tomb)
		coord_value_offset(&r->val, off, 3, "md", 2, TS + off);
}

static void rec_group_tomb(struct rec *r, const char *g)
{
	r->key = (struct coord_buf){ r->k, 0, sizeof(r->k), false };
	coord_key_group(&r->key, g, (int32_t)strlen(g));
	r->tomb = true;
}

/* Group metadata of `gen` with n members m-1.. (leader m-1), assignments "<prefix><i>". */
static void rec_group(struct rec *r, const char *g, int32_t gen, uint32_t n, const char *prefix)
{
	struct group_config gc;
	struct group_ops ops = { 0 };
	uint64_t seq = 0;
	struct group *grp;
	struct group_restore_member ms[4];
	char ids[4][16], as[4][32];

	assert_true(n <= 4);
	group_config_default(&gc);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(ids[i], sizeof(ids[i]), "m-%u", i + 1);
		snprintf(as[i], sizeof(as[i]), "%s%u", prefix, i + 1);
		ms[i] = (struct group_restore_member){
			.member_id = ids[i], .member_id_len = (int32_t)strlen(ids[i]),
			.instance_id = i == 1 ? "inst-2" : NULL, .instance_id_len = i == 1 ? 6 : -1,
			.client_id = "cli", .client_id_len = 3, .client_host = "/10.0.0.1",
			.client_host_len = 9, .rebalance_timeout_ms = 30000,
			.session_timeout_ms = 10000 + (int32_t)i * 1000,
			.subscription = (const uint8_t *)"sub", .subscription_len = 3,
			.assignment = (const uint8_t *)as[i], .assignment_len = (int32_t)strlen(as[i]) };
	}
	struct group_restore gr = { .protocol_type = "consumer", .protocol_type_len = 8,
				    .generation = gen, .protocol_name = "range",
				    .protocol_name_len = 5, .leader_id = "m-1", .leader_id_len = 3,
				    .member_count = n, .members = ms };
	assert_int_equal(group_create(&grp, g, strlen(g), &gc, &ops, NULL, &seq), SL_OK);
	assert_int_equal(group_restore(grp, 0, &gr), SL_OK);
	r->key = (struct coord_buf){ r->k, 0, sizeof(r->k), false };
	r->val = (struct coord_buf){ r->v, 0, sizeof(r->v), false };
	coord_key_group(&r->key, g, (int32_t)strlen(g));
	coord_value_group(&r->val, grp, TS + gen);
	assert_false(r->key.err || r->val.err);
	r->tomb = false;
	group_mark_dead(grp);
	group_destroy(grp);
}

/* Appends one batch of the n records. */
static void put(struct env *e, struct rec *rs, uint32_t n)
{
	static uint8_t buf[1 << 16];
	struct batch_builder b;

	batch_builder_init(&b, buf, sizeof(buf));
	for (uint32_t i = 0; i < n; i++) {
		assert_false(rs[i].key.err);
		assert_int_equal(batch_builder_add(&b, TS, rs[i].key.p, (int32_t)rs[i].key.len,
						   rs[i].tomb ? NULL : rs[i].val.p,
						   rs[i].tomb ? -1 : (int32_t)rs[i].val.len, NULL, 0),
				 SL_OK);
	}
	size_t len = batch_builder_finish(&b);
	assert_true(len > 0);
	env_append(e, buf, len);
}

static void put1(struct env *e, struct rec *r)
{
	put(e, r, 1);
}

/* ---- a canonical dump of the coordinator's state ---- */

static int cg_cmp(const void *a, const void *b)
{
	return strcmp((*(struct coord_group *const *)a)->g->group_id,
		      (*(struct coord_group *const *)b)->g->group_id);
}

static int off_cmp(const void *a, const void *b)
{
	const struct coord_offset *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

struct collect {
	struct coord_group *gs[64];
	uint32_t n;
};

static bool collect_fn(struct coord_group *cg, void *arg)
{
	struct collect *co = arg;
	assert_true(co->n < 64);
	co->gs[co->n++] = cg;
	return true;
}

#define APPEND(...) \
	do { \
		int w_ = snprintf(out + len, DUMP_MAX - len, __VA_ARGS__); \
		assert_true(w_ >= 0 && (size_t)w_ < DUMP_MAX - len); \
		len += (size_t)w_; \
	} while (0)

static char *dump(struct coord *c)
{
	char *out = calloc(1, DUMP_MAX);
	size_t len = 0;
	struct collect co = { .n = 0 };

	assert_non_null(out);
	coord_groups_each(c, collect_fn, &co);
	qsort(co.gs, co.n, sizeof(co.gs[0]), cg_cmp);
	for (uint32_t i = 0; i < co.n; i++) {
		struct coord_group *cg = co.gs[i];
		struct group *g = cg->g;
		APPEND("%s %s gen=%d pt=%s pn=%s leader=%s meta=%d since=%lld\n", g->group_id,
		       group_state_name(g->state), g->generation, g->protocol_type ? g->protocol_type : "-",
		       g->protocol_name ? g->protocol_name : "-", g->leader_id ? g->leader_id : "-",
		       cg->has_meta, (long long)cg->empty_since_wall_ms);
		for (uint32_t m = 0; m < g->member_count; m++) {
			struct group_member *x = g->members[m];
			APPEND("  member %s inst=%s %s %s rt=%d st=%d sub=%.*s as=%.*s\n", x->member_id,
			       x->instance_id ? x->instance_id : "-", x->client_id, x->client_host,
			       x->rebalance_timeout_ms, x->session_timeout_ms,
			       x->protocol_count ? x->protocols[0].meta_len : 0,
			       x->protocol_count ? (const char *)x->protocols[0].meta : "",
			       x->assignment_len, x->assignment ? (const char *)x->assignment : "");
		}
		if (cg->off_count > 0)
			qsort(cg->offs, cg->off_count, sizeof(cg->offs[0]), off_cmp);
		for (uint32_t o = 0; o < cg->off_count; o++)
			APPEND("  offset %s/%d=%lld e=%d md=%s ts=%lld\n", cg->offs[o].topic,
			       cg->offs[o].partition, (long long)cg->offs[o].offset,
			       cg->offs[o].leader_epoch, cg->offs[o].metadata,
			       (long long)cg->offs[o].commit_ts_ms);
	}
	return out;
}

/* Rebuilds from the log into a fresh coordinator; returns the dump. */
static char *rebuild(struct env *e)
{
	coord_shard_stop(&e->bs);
	struct coord *c = env_coord(e);
	uint64_t records = 0;
	assert_int_equal(coord_load_log(c, 0, e->log, &records), SL_OK);
	return dump(c);
}

/* ---- compaction ---- */

struct shape {
	int64_t next;
	uint32_t batches;
	uint32_t empty_batches;
	uint32_t gaps;
};

static int shape_fn(void *arg, const struct batch_header *h, int fd, int64_t pos)
{
	struct shape *s = arg;

	(void)fd;
	(void)pos;
	if (s->batches > 0 && h->base_offset > s->next)
		s->gaps++;
	s->empty_batches += h->records_count == 0;
	s->batches++;
	s->next = batch_last_offset(h) + 1;
	return 0;
}

static struct shape log_shape(struct plog *log)
{
	struct shape s = { 0 };
	int64_t from = plog_start_offset(log);

	for (int i = 0; i < 1000 && from < plog_end_offset(log); i++) {
		int64_t next = from;
		assert_int_equal(plog_scan(log, from, 64, shape_fn, &s, &next), SL_OK);
		if (next <= from)
			break;
		from = next;
	}
	return s;
}

static void compact_all(struct env *e, int64_t delete_retention_ms, struct compact_stats *sum)
{
	struct compact_config cc;
	struct compact_stats st;

	compact_config_default(&cc);
	cc.delete_retention_ms = delete_retention_ms;
	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < 100; i++) {
		assert_int_equal(plog_compact(e->log, TS + 1000, &cc, &st), SL_OK);
		sum->records_removed += st.records_removed;
		sum->tombstones_removed += st.tombstones_removed;
		sum->batches_removed += st.batches_removed;
		if (!st.more)
			break;
	}
}

static void filler(struct env *e, int from, int n)
{
	struct rec r;

	for (int i = from; i < from + n; i++) {
		rec_offset(&r, "g-busy", "x", 0, i);
		put1(e, &r);
	}
}

/* The realistic sequence (file comment); returns the state rebuilt from it, checked. */
static char *build_sequence(struct env *e)
{
	struct rec rs[6];

	/* g-std: standalone commits, one offset deleted (OffsetDelete) */
	for (int i = 0; i < 5; i++)
		rec_offset(&rs[i], "g-std", "t", i, 10 + i);
	put(e, rs, 5);
	/* g-cons: generation 1, two members, commits */
	rec_group(&rs[0], "g-cons", 1, 2, "A");
	put1(e, &rs[0]);
	rec_offset(&rs[0], "g-cons", "t", 0, 100);
	rec_offset(&rs[1], "g-cons", "t", 1, 101);
	put(e, rs, 2);
	/* g-gone: commits and an empty group */
	rec_offset(&rs[0], "g-gone", "u", 0, 5);
	rec_group(&rs[1], "g-gone", 1, 0, "");
	put(e, rs, 2);
	rec_offset(&rs[0], "g-std", "t", 3, 33);
	put1(e, &rs[0]);
	rec_offset(&rs[0], "g-std", "t", 3, -1);
	put1(e, &rs[0]);
	filler(e, 0, 40);
	/* g-cons: generation 2 */
	rec_group(&rs[0], "g-cons", 2, 2, "B");
	put1(e, &rs[0]);
	rec_offset(&rs[0], "g-cons", "t", 0, 200);
	put1(e, &rs[0]);
	/* g-gone: DeleteGroups (offset and group tombstones in one batch) */
	rec_offset(&rs[0], "g-gone", "u", 0, -1);
	rec_group_tomb(&rs[1], "g-gone");
	put(e, rs, 2);
	/* g-del: deleted, then recreated by a standalone commit */
	rec_offset(&rs[0], "g-del", "v", 0, 1);
	rec_group(&rs[1], "g-del", 3, 0, "");
	put(e, rs, 2);
	rec_offset(&rs[0], "g-del", "v", 0, -1);
	rec_group_tomb(&rs[1], "g-del");
	put(e, rs, 2);
	rec_offset(&rs[0], "g-del", "v", 0, 2);
	put1(e, &rs[0]);
	/* g-meta: a group tombstone without offset tombstones: the offset stays */
	rec_offset(&rs[0], "g-meta", "w", 0, 7);
	rec_group(&rs[1], "g-meta", 1, 1, "M");
	put(e, rs, 2);
	rec_group_tomb(&rs[0], "g-meta");
	put1(e, &rs[0]);
	/* g-live: stays STABLE */
	rec_group(&rs[0], "g-live", 4, 3, "L");
	put1(e, &rs[0]);
	/* g-cons: becomes EMPTY at generation 3 */
	rec_group(&rs[0], "g-cons", 3, 0, "");
	put1(e, &rs[0]);
	filler(e, 40, 60);
	assert_true(plog_segment_count(e->log) > 5);

	char *full = rebuild(e);
	const char *want[] = {
		"g-busy Empty gen=0 pt=- pn=- leader=- meta=0",
		"  offset x/0=99 e=3 md=md ts=1099\n",
		"g-cons Empty gen=3 pt=consumer pn=- leader=- meta=1 since=1003\n"
		"  offset t/0=200 e=3 md=md ts=1200\n  offset t/1=101 e=3 md=md ts=1101\n",
		"g-del Empty gen=0 pt=- pn=- leader=- meta=0",
		"  offset v/0=2 e=3",
		"g-live Stable gen=4 pt=consumer pn=range leader=m-1 meta=1 since=1004\n"
		"  member m-1 inst=- cli /10.0.0.1 rt=30000 st=10000 sub=sub as=L1\n"
		"  member m-2 inst=inst-2 cli /10.0.0.1 rt=30000 st=11000 sub=sub as=L2\n"
		"  member m-3 inst=- cli /10.0.0.1 rt=30000 st=12000 sub=sub as=L3\n",
		"g-meta Empty gen=0 pt=- pn=- leader=- meta=0",
		"  offset w/0=7 e=3",
		"g-std Empty gen=0 pt=- pn=- leader=- meta=0",
		"  offset t/0=10 e=3 md=md ts=1010\n  offset t/1=11 e=3 md=md ts=1011\n"
		"  offset t/2=12 e=3 md=md ts=1012\n  offset t/4=14 e=3 md=md ts=1014\n",
	};
	for (size_t i = 0; i < SL_ARRAY_LEN(want); i++)
		if (strstr(full, want[i]) == NULL)
			fail_msg("missing <%s> in\n%s", want[i], full);
	assert_null(strstr(full, "g-gone"));
	assert_null(strstr(full, "t/3"));
	/* the live group's sessions run from the load */
	struct coord_group *live = coord_group_get(e->bs.ext, "g-live", 6, 0, false);
	assert_non_null(live);
	assert_int_equal(group_next_deadline(live->g), e->now_ns / 1000000 + 10000);

	return full;
}

/* Compaction keeping the tombstones (delete.retention.ms not reached). */
static void test_load_compacted_keep(void **state)
{
	struct env *e = *state;
	char *full = build_sequence(e);
	int64_t size0 = plog_size_bytes(e->log);
	struct compact_stats st;

	compact_all(e, 1000000000000ll, &st);
	assert_true(st.records_removed > 50);
	assert_int_equal(st.tombstones_removed, 0);
	assert_true(plog_size_bytes(e->log) < size0);
	struct shape sh = log_shape(e->log);
	assert_true(sh.gaps > 0);
	char *kept = rebuild(e);
	assert_string_equal(kept, full);
	free(full);
	free(kept);
}

/* Compaction removing them (delete.retention.ms 0), then a reopened log. */
static void test_load_compacted_drop(void **state)
{
	struct env *e = *state;
	char *full = build_sequence(e);
	struct compact_stats st;

	compact_all(e, 0, &st);
	assert_true(st.tombstones_removed >= 4);
	assert_int_equal(plog_close(e->log), SL_OK);
	assert_int_equal(plog_open(&e->log, &e->f.ring, e->f.d.part, &e->f.cfg, 0), SL_OK);
	struct shape sh = log_shape(e->log);
	assert_true(sh.gaps > 0);
	assert_true(sh.empty_batches > 0);
	char *gone = rebuild(e);
	assert_string_equal(gone, full);
	free(full);
	free(gone);
}

/* ---- members through a real rebalance ---- */

struct held {
	bool done;
	int16_t err;
	int32_t gen;
	char member[128];
	char as[32];
};

static void t_join_done(void *ctx, struct group *g, void *waiter, const struct group_join_result *r)
{
	struct held *h = waiter;

	(void)ctx;
	(void)g;
	h->done = true;
	h->err = r->error_code;
	h->gen = r->generation;
	snprintf(h->member, sizeof(h->member), "%s", r->member_id);
}

static void t_sync_done(void *ctx, struct group *g, void *waiter, int16_t err, const uint8_t *as,
			int32_t len)
{
	struct held *h = waiter;

	(void)ctx;
	(void)g;
	h->done = true;
	h->err = err;
	snprintf(h->as, sizeof(h->as), "%.*s", (int)len, as != NULL ? (const char *)as : "");
}

static void t_join(struct group *g, int64_t now, struct held *h, const char *member, const char *cli)
{
	const char *names[1] = { "range" };
	int32_t nl[1] = { 5 };
	const uint8_t *metas[1] = { (const uint8_t *)"sub-t" };
	int32_t ml[1] = { 5 };
	char mid[128];

	if (member != NULL) {   /* it may point into h, cleared below */
		snprintf(mid, sizeof(mid), "%s", member);
		member = mid;
	}
	struct group_join_req jr = {
		.member_id = member, .member_id_len = member ? (int32_t)strlen(member) : 0,
		.instance_id_len = -1, .client_id = cli, .client_id_len = (int32_t)strlen(cli),
		.client_host = "/127.0.0.1", .client_host_len = 10,
		.protocol_type = "consumer", .protocol_type_len = 8, .session_timeout_ms = 10000,
		.rebalance_timeout_ms = 20000, .protocol_count = 1, .protocol_names = names,
		.protocol_name_lens = nl, .protocol_metas = metas, .protocol_meta_lens = ml,
	};
	memset(h, 0, sizeof(*h));
	group_join(g, now, &jr, h);
}

static void t_sync(struct group *g, int64_t now, struct held *h, const char *member, int32_t gen,
		   uint32_t n, const char *const *ids, const char *const *as)
{
	int32_t il[2], al[2];
	const uint8_t *ap[2];
	struct group_sync_req sr = {
		.member_id = member, .member_id_len = (int32_t)strlen(member), .instance_id_len = -1,
		.generation = gen, .protocol_type_len = -1, .protocol_name_len = -1,
		.assignment_count = n, .assign_member_ids = ids, .assign_member_id_lens = il,
		.assignments = ap, .assignment_lens = al,
	};
	for (uint32_t i = 0; i < n; i++) {
		il[i] = (int32_t)strlen(ids[i]);
		ap[i] = (const uint8_t *)as[i];
		al[i] = (int32_t)strlen(as[i]);
	}
	memset(h, 0, sizeof(*h));
	group_sync(g, now, &sr, h);
}

static void test_restore_members(void **state)
{
	struct env *e = *state;
	struct coord *c = env_coord(e);
	struct held j1, j2, s1, s2;
	int64_t now = e->now_ns / 1000000;

	e->sink_to_log = true;
	c->ops.join_done = t_join_done;
	c->ops.sync_done = t_sync_done;
	struct coord_group *cg = coord_group_get(c, "grp", 3, 0, true);
	assert_non_null(cg);
	t_join(cg->g, now, &j1, NULL, "c1");
	assert_true(j1.done && j1.gen == 1);
	t_sync(cg->g, now, &s1, j1.member, 1, 1, (const char *const[]){ j1.member },
	       (const char *const[]){ "X" });
	assert_int_equal(e->sink_count, 1);   /* STABLE generation 1 written */
	t_join(cg->g, now, &j2, NULL, "c2");
	assert_false(j2.done);
	t_join(cg->g, now, &j1, j1.member, "c1");
	assert_true(j1.done && j2.done && j1.gen == 2);
	t_sync(cg->g, now, &s2, j2.member, 2, 0, NULL, NULL);
	t_sync(cg->g, now, &s1, j1.member, 2, 2, (const char *const[]){ j1.member, j2.member },
	       (const char *const[]){ "as-one", "as-two" });
	assert_true(s1.done && s2.done);
	assert_int_equal(e->sink_count, 2);
	char *before = dump(c);

	/* a restart: the members come back, STABLE, same generation */
	e->now_ns += 3000ll * 1000000;
	char *after = rebuild(e);
	c = e->bs.ext;
	/* equal except the timers, which the dump leaves out */
	char *since = strstr(before, "since=");
	char *since2 = strstr(after, "since=");
	assert_non_null(since);
	assert_non_null(since2);
	assert_string_equal(strchr(since, '\n'), strchr(since2, '\n'));
	cg = coord_group_get(c, "grp", 3, 0, false);
	assert_non_null(cg);
	assert_int_equal(cg->g->state, GROUP_STABLE);
	assert_int_equal(cg->g->generation, 2);
	assert_int_equal(cg->g->member_count, 2);
	assert_string_equal(cg->g->leader_id, j1.member);
	struct group_member *m1 = group_member_find(cg->g, j1.member, (int32_t)strlen(j1.member));
	struct group_member *m2 = group_member_find(cg->g, j2.member, (int32_t)strlen(j2.member));
	assert_non_null(m1);
	assert_non_null(m2);
	assert_memory_equal(m2->assignment, "as-two", 6);
	assert_string_equal(m1->client_id, "c1");
	assert_int_equal(m1->rebalance_timeout_ms, 20000);
	now = e->now_ns / 1000000;
	assert_int_equal(m1->heartbeat_deadline_ms, now + 10000);
	/* a follower's SyncGroup of the same generation gets its assignment back */
	c->ops.join_done = t_join_done;
	c->ops.sync_done = t_sync_done;
	t_sync(cg->g, now, &s2, j2.member, 2, 0, NULL, NULL);
	assert_true(s2.done);
	assert_int_equal(s2.err, 0);
	assert_string_equal(s2.as, "as-two");
	/* m1 heartbeats, m2 does not: the group's timer removes m2 */
	e->now_ns += 9000ll * 1000000;
	assert_int_equal(group_heartbeat(cg->g, e->now_ns / 1000000, j1.member,
					 (int32_t)strlen(j1.member), NULL, -1, 2), 0);
	coord_group_touch(cg);
	e->now_ns += 1500ll * 1000000;
	timer_run_expired(&e->sh.timers, e->now_ns);
	assert_null(group_member_find(cg->g, j2.member, (int32_t)strlen(j2.member)));
	assert_int_equal(cg->g->state, GROUP_PREPARING_REBALANCE);
	/* m1 leaves too: EMPTY written, restored EMPTY with the protocol type */
	now = e->now_ns / 1000000;
	assert_int_equal(group_leave(cg->g, now, j1.member, (int32_t)strlen(j1.member), NULL, -1), 0);
	assert_int_equal(cg->g->state, GROUP_EMPTY);
	assert_int_equal(e->sink_count, 3);
	free(rebuild(e));
	cg = coord_group_get(e->bs.ext, "grp", 3, 0, false);
	assert_non_null(cg);
	assert_int_equal(cg->g->state, GROUP_EMPTY);
	assert_int_equal(cg->g->generation, 3);
	assert_string_equal(cg->g->protocol_type, "consumer");
	assert_int_equal(cg->empty_since_wall_ms, e->wall);
	free(before);
	free(after);
}

/* ---- offset expiry ---- */

/* Moves both clocks by ms and runs the shard's due timers. */
static void advance(struct env *e, int64_t ms)
{
	e->now_ns += ms * 1000000;
	e->wall += ms;
	timer_run_expired(&e->sh.timers, e->now_ns);
}

/* advance() in steps of at most 1 s, the live group's member heartbeating. */
static void advance_live(struct env *e, struct coord_group *l, int64_t ms)
{
	while (ms > 0) {
		int64_t step = SL_MIN(ms, 1000);
		assert_int_equal(group_heartbeat(l->g, e->now_ns / 1000000, "m", 1, NULL, -1, 2), 0);
		coord_group_touch(l);
		advance(e, step);
		ms -= step;
	}
}

static void test_offset_expiry(void **state)
{
	struct env *e = *state;
	struct coord *c = env_coord(e);
	int64_t w0 = e->wall;

	/* standalone: 60 s after the commit */
	struct coord_group *s = coord_group_get(c, "solo", 4, 0, true);
	assert_int_equal(coord_offset_put(s, "t", 1, 0, 5, -1, "", 0, w0), SL_OK);
	assert_int_equal(coord_offset_put(s, "t", 1, 1, 6, -1, "", 0, w0 + 20000), SL_OK);
	coord_group_touch(s);
	/* a consumer group EMPTY since w0 + 10 s, with offsets committed long before */
	struct coord_group *k = coord_group_get(c, "cons", 4, 0, true);
	struct group_restore er = { .protocol_type = "consumer", .protocol_type_len = 8,
				    .generation = 5 };
	assert_int_equal(group_restore(k->g, e->now_ns / 1000000, &er), SL_OK);
	k->empty_since_wall_ms = w0 + 10000;
	assert_int_equal(coord_offset_put(k, "t", 1, 0, 50, -1, "", 0, w0 - 3600000), SL_OK);
	coord_group_touch(k);
	/* a STABLE group with old offsets */
	struct group_restore_member lm = { .member_id = "m", .member_id_len = 1,
					   .instance_id_len = -1, .session_timeout_ms = 10000,
					   .rebalance_timeout_ms = 10000 };
	struct group_restore lr = { .protocol_type = "consumer", .protocol_type_len = 8,
				    .generation = 2, .protocol_name = "range",
				    .protocol_name_len = 5, .leader_id = "m", .leader_id_len = 1,
				    .member_count = 1, .members = &lm };
	struct coord_group *l = coord_group_get(c, "live", 4, 0, true);
	assert_int_equal(group_restore(l->g, e->now_ns / 1000000, &lr), SL_OK);
	assert_int_equal(coord_offset_put(l, "t", 1, 0, 70, -1, "", 0, w0 - 3600000), SL_OK);
	coord_group_touch(l);
	assert_false(coord_offsets_expire(l));   /* STABLE: never */

	/* checks run on the 1 s grid: the first due one after w0 + 60 s */
	int64_t due = coord_offsets_next_expiry(s);
	assert_true(due % 1000 == 0);
	assert_true(due > e->now_ns / 1000000 + 60000 - 1 && due <= e->now_ns / 1000000 + 61000);
	advance_live(e, l, 59999);
	assert_int_equal(s->off_count, 2);
	assert_int_equal(k->off_count, 1);
	assert_int_equal(e->sink_tombstones, 0);
	for (int i = 0; i < 12; i++) {   /* heartbeats keep "live" STABLE */
		assert_int_equal(group_heartbeat(l->g, e->now_ns / 1000000, "m", 1, NULL, -1, 2), 0);
		coord_group_touch(l);
		advance(e, 100);
	}
	/* w0 + 61.2 s: solo t/0 expired (one tombstone), t/1 not yet */
	assert_int_equal(s->off_count, 1);
	assert_int_equal(s->offs[0].partition, 1);
	assert_int_equal(e->sink_tombstones, 1);
	/* cons: retention after it became EMPTY (w0 + 10 s), not after its commit */
	assert_int_equal(k->off_count, 1);
	for (int i = 0; i < 100 && coord_group_get(c, "cons", 4, 0, false) != NULL; i++) {
		assert_int_equal(group_heartbeat(l->g, e->now_ns / 1000000, "m", 1, NULL, -1, 2), 0);
		coord_group_touch(l);
		advance(e, 100);
		assert_true(e->wall < w0 + 70000 || e->wall <= w0 + 71100);
		if (e->wall < w0 + 70000)
			assert_non_null(coord_group_get(c, "cons", 4, 0, false));
	}
	/* its last offset gone: the group is removed with a group tombstone */
	assert_null(coord_group_get(c, "cons", 4, 0, false));
	assert_int_equal(e->sink_group_tombstones, 1);
	assert_int_equal(e->sink_tombstones, 3);
	/* solo's last offset: at w0 + 80 s on the grid */
	for (int i = 0; i < 200 && coord_group_get(c, "solo", 4, 0, false) != NULL; i++) {
		assert_int_equal(group_heartbeat(l->g, e->now_ns / 1000000, "m", 1, NULL, -1, 2), 0);
		coord_group_touch(l);
		advance(e, 100);
	}
	assert_null(coord_group_get(c, "solo", 4, 0, false));
	assert_true(e->wall >= w0 + 80000 && e->wall <= w0 + 81100);
	assert_int_equal(e->sink_group_tombstones, 2);
	assert_int_equal(e->sink_tombstones, 5);
	/* the live group kept its offset */
	assert_int_equal(l->off_count, 1);
	assert_int_equal(l->g->state, GROUP_STABLE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_compacted_keep, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_load_compacted_drop, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_restore_members, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_offset_expiry, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
