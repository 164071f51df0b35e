/*
 * test_group.c — the classic group state machine (coordination/group.h):
 * every transition, KIP-394 member ids, protocol vote, initial delay,
 * session and rebalance timeouts driven by a hand-moved clock, static
 * membership, max size and the errors clients rely on; what `changed`
 * sees (the group metadata record's content) and group_restore.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "group.h"

#define ANS_MAX 64

/* One held request: what it was answered with. */
struct ans {
	bool done;
	int16_t err;
	int32_t generation;
	char member_id[256];
	char leader[256];
	char protocol[64];
	bool is_leader;
	bool skip;
	uint32_t members_seen;     /* leader: the group's member count */
	char assignment[64];
};

struct env {
	struct group_config cfg;
	struct group_ops ops;
	uint64_t seq;
	struct group *g;
	int64_t now;
	uint32_t changed;
	/* what the group looked like at the last `changed` (group metadata record) */
	enum group_state ch_state;
	uint32_t ch_members;
	char ch_assign[2][64];
	char ch_ptype[16];
};

static void env_join_done(void *ctx, struct group *g, void *waiter, const struct group_join_result *r)
{
	struct ans *a = waiter;

	(void)ctx;
	assert_false(a->done);
	a->done = true;
	a->err = r->error_code;
	a->generation = r->generation;
	snprintf(a->member_id, sizeof(a->member_id), "%s", r->member_id);
	snprintf(a->leader, sizeof(a->leader), "%s", r->leader_id != NULL ? r->leader_id : "");
	snprintf(a->protocol, sizeof(a->protocol), "%s", r->protocol_name != NULL ? r->protocol_name : "");
	a->is_leader = r->is_leader;
	a->skip = r->skip_assignment;
	a->members_seen = r->is_leader ? g->member_count : 0;
}

static void env_sync_done(void *ctx, struct group *g, void *waiter, int16_t err, const uint8_t *as,
			  int32_t len)
{
	struct ans *a = waiter;

	(void)ctx;
	(void)g;
	assert_false(a->done);
	a->done = true;
	a->err = err;
	snprintf(a->assignment, sizeof(a->assignment), "%.*s", (int)len, as != NULL ? (const char *)as : "");
}

static void env_changed(void *ctx, struct group *g)
{
	struct env *e = ctx;

	e->changed++;
	e->ch_state = g->state;
	e->ch_members = g->member_count;
	snprintf(e->ch_ptype, sizeof(e->ch_ptype), "%s", g->protocol_type ? g->protocol_type : "");
	for (uint32_t i = 0; i < 2; i++)
		snprintf(e->ch_assign[i], sizeof(e->ch_assign[i]), "%.*s",
			 i < g->member_count ? (int)g->members[i]->assignment_len : 0,
			 i < g->member_count && g->members[i]->assignment ?
			 (const char *)g->members[i]->assignment : "");
}

static int env_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	group_config_default(&e->cfg);
	e->cfg.initial_rebalance_delay_ms = 0;
	e->ops.join_done = env_join_done;
	e->ops.sync_done = env_sync_done;
	e->ops.changed = env_changed;
	e->now = 1000000;
	assert_int_equal(group_create(&e->g, "grp", 3, &e->cfg, &e->ops, e, &e->seq), SL_OK);
	*state = e;
	return 0;
}

static int env_teardown(void **state)
{
	struct env *e = *state;

	group_mark_dead(e->g);
	group_destroy(e->g);
	free(e);
	return 0;
}

/* A join with protocols "range" then "roundrobin" unless told otherwise. */
static void join_p(struct env *e, struct ans *a, const char *member, const char *instance,
		   const char *const *protos, uint32_t n, const char *meta, bool require_known)
{
	const char *names[4];
	int32_t name_lens[4];
	char mid[256];

	/* `member` may point into `a`, which is cleared below */
	if (member != NULL) {
		snprintf(mid, sizeof(mid), "%s", member);
		member = mid;
	}
	const uint8_t *metas[4];
	int32_t meta_lens[4];
	struct group_join_req jr = {
		.member_id = member, .member_id_len = member != NULL ? (int32_t)strlen(member) : 0,
		.instance_id = instance, .instance_id_len = instance != NULL ? (int32_t)strlen(instance) : -1,
		.client_id = "cli", .client_id_len = 3, .client_host = "/127.0.0.1", .client_host_len = 10,
		.protocol_type = "consumer", .protocol_type_len = 8,
		.session_timeout_ms = 10000, .rebalance_timeout_ms = 30000,
		.require_known_member_id = require_known, .protocol_count = n,
		.protocol_names = names, .protocol_name_lens = name_lens,
		.protocol_metas = metas, .protocol_meta_lens = meta_lens,
	};

	for (uint32_t i = 0; i < n; i++) {
		names[i] = protos[i];
		name_lens[i] = (int32_t)strlen(protos[i]);
		metas[i] = (const uint8_t *)meta;
		meta_lens[i] = (int32_t)strlen(meta);
	}
	memset(a, 0, sizeof(*a));
	group_join(e->g, e->now, &jr, a);
}

static const char *const PROTOS[] = { "range", "roundrobin" };

static void join(struct env *e, struct ans *a, const char *member)
{
	join_p(e, a, member, NULL, PROTOS, 2, "m", false);
}

static void sync_g(struct env *e, struct ans *a, const char *member, int32_t gen, uint32_t n,
		   const char *const *ids, const char *const *assigns)
{
	int32_t id_lens[8], as_lens[8];
	const uint8_t *as[8];
	struct group_sync_req sr = {
		.member_id = member, .member_id_len = (int32_t)strlen(member), .instance_id_len = -1,
		.generation = gen, .protocol_type_len = -1, .protocol_name_len = -1,
		.assignment_count = n, .assign_member_ids = ids, .assign_member_id_lens = id_lens,
		.assignments = as, .assignment_lens = as_lens,
	};

	for (uint32_t i = 0; i < n; i++) {
		id_lens[i] = (int32_t)strlen(ids[i]);
		as[i] = (const uint8_t *)assigns[i];
		as_lens[i] = (int32_t)strlen(assigns[i]);
	}
	memset(a, 0, sizeof(*a));
	group_sync(e->g, e->now, &sr, a);
}

/* Two dynamic members through a full rebalance to STABLE. */
static void two_stable(struct env *e, struct ans *j1, struct ans *j2)
{
	struct ans s1, s2;

	join(e, j1, NULL);
	assert_true(j1->done);  /* alone: the join phase completes at once */
	assert_int_equal(j1->err, 0);
	assert_int_equal(j1->generation, 1);
	assert_int_equal(e->g->state, GROUP_COMPLETING_REBALANCE);
	sync_g(e, &s1, j1->member_id, 1, 1, (const char *const[]){ j1->member_id },
	       (const char *const[]){ "A" });
	assert_true(s1.done);
	assert_int_equal(e->g->state, GROUP_STABLE);
	/* a second member: PREPARING until the first rejoins */
	join(e, j2, NULL);
	assert_false(j2->done);
	assert_int_equal(e->g->state, GROUP_PREPARING_REBALANCE);
	assert_int_equal(group_heartbeat(e->g, e->now, j1->member_id, (int32_t)strlen(j1->member_id),
					 NULL, -1, 1),
			 GROUP_KERR_REBALANCE_IN_PROGRESS);
	join(e, j1, j1->member_id);
	assert_true(j1->done && j2->done);
	assert_int_equal(j1->generation, 2);
	assert_int_equal(j2->generation, 2);
	assert_true(j1->is_leader);
	assert_false(j2->is_leader);
	assert_int_equal(j1->members_seen, 2);
	assert_string_equal(j1->protocol, "range");
	sync_g(e, &s2, j2->member_id, 2, 0, NULL, NULL);
	assert_false(s2.done);  /* held until the leader syncs */
	sync_g(e, &s1, j1->member_id, 2, 2, (const char *const[]){ j1->member_id, j2->member_id },
	       (const char *const[]){ "A1", "B1" });
	assert_true(s1.done && s2.done);
	assert_string_equal(s1.assignment, "A1");
	assert_string_equal(s2.assignment, "B1");
	assert_int_equal(e->g->state, GROUP_STABLE);
}

static void test_join_sync_stable(void **state)
{
	struct env *e = *state;
	struct ans j1, j2;

	assert_int_equal(e->g->state, GROUP_EMPTY);
	two_stable(e, &j1, &j2);
	assert_true(group_check(e->g));
	assert_int_equal(group_heartbeat(e->g, e->now, j2.member_id, (int32_t)strlen(j2.member_id),
					 NULL, -1, 2), 0);
	assert_int_equal(group_heartbeat(e->g, e->now, j2.member_id, (int32_t)strlen(j2.member_id),
					 NULL, -1, 1), GROUP_KERR_ILLEGAL_GENERATION);
	assert_int_equal(group_heartbeat(e->g, e->now, "nobody", 6, NULL, -1, 2),
			 GROUP_KERR_UNKNOWN_MEMBER_ID);
	/* a rejoin with the same metadata in STABLE (not the leader): same generation */
	struct ans j;
	join(e, &j, j2.member_id);
	assert_true(j.done);
	assert_int_equal(j.generation, 2);
	assert_int_equal(e->g->state, GROUP_STABLE);
}

static void test_member_id_required(void **state)
{
	struct env *e = *state;
	struct ans a, b;

	join_p(e, &a, NULL, NULL, PROTOS, 2, "m", true);
	assert_true(a.done);
	assert_int_equal(a.err, GROUP_KERR_MEMBER_ID_REQUIRED);
	assert_true(strlen(a.member_id) > 4);
	assert_int_equal(e->g->state, GROUP_EMPTY);
	join_p(e, &b, a.member_id, NULL, PROTOS, 2, "m", true);
	assert_true(b.done);
	assert_int_equal(b.err, 0);
	assert_string_equal(b.member_id, a.member_id);
	/* an id never handed out */
	join_p(e, &b, "made-up", NULL, PROTOS, 2, "m", true);
	assert_int_equal(b.err, GROUP_KERR_UNKNOWN_MEMBER_ID);
	/* a pending id lapses after the session timeout */
	join_p(e, &a, NULL, NULL, PROTOS, 2, "m", true);
	assert_int_equal(a.err, GROUP_KERR_MEMBER_ID_REQUIRED);
	assert_int_equal(e->g->pending_count, 1);
	e->now += 10001;
	group_tick(e->g, e->now);
	assert_int_equal(e->g->pending_count, 0);
}

static void test_errors(void **state)
{
	struct env *e = *state;
	struct ans a, b;
	static const char *const OTHER[] = { "sticky" };

	struct group_join_req jr = { .session_timeout_ms = 100, .protocol_type = "consumer",
				     .protocol_type_len = 8, .instance_id_len = -1 };
	memset(&a, 0, sizeof(a));
	group_join(e->g, e->now, &jr, &a);
	assert_int_equal(a.err, GROUP_KERR_INVALID_SESSION_TIMEOUT);
	jr.session_timeout_ms = 2000000;
	memset(&a, 0, sizeof(a));
	group_join(e->g, e->now, &jr, &a);
	assert_int_equal(a.err, GROUP_KERR_INVALID_SESSION_TIMEOUT);
	/* no protocols at all */
	jr.session_timeout_ms = 10000;
	memset(&a, 0, sizeof(a));
	group_join(e->g, e->now, &jr, &a);
	assert_int_equal(a.err, GROUP_KERR_INCONSISTENT_GROUP_PROTOCOL);
	/* no protocol in common with the members */
	join(e, &a, NULL);
	assert_int_equal(a.err, 0);
	join_p(e, &b, NULL, NULL, OTHER, 1, "m", false);
	assert_int_equal(b.err, GROUP_KERR_INCONSISTENT_GROUP_PROTOCOL);
	/* sync with a wrong generation, unknown member */
	sync_g(e, &b, a.member_id, 7, 0, NULL, NULL);
	assert_int_equal(b.err, GROUP_KERR_ILLEGAL_GENERATION);
	sync_g(e, &b, "ghost", 1, 0, NULL, NULL);
	assert_int_equal(b.err, GROUP_KERR_UNKNOWN_MEMBER_ID);
	/* commits */
	assert_int_equal(group_commit_check(e->g, e->now, NULL, 0, NULL, -1, -1),
			 GROUP_KERR_ILLEGAL_GENERATION);
	assert_int_equal(group_commit_check(e->g, e->now, a.member_id, (int32_t)strlen(a.member_id),
					    NULL, -1, 1), GROUP_KERR_REBALANCE_IN_PROGRESS);
	/* dead group */
	group_mark_dead(e->g);
	join(e, &b, NULL);
	assert_int_equal(b.err, GROUP_KERR_COORDINATOR_NOT_AVAILABLE);
}

static void test_protocol_vote(void **state)
{
	struct env *e = *state;
	struct ans a, b, c;
	static const char *const P1[] = { "roundrobin", "range" };
	static const char *const P2[] = { "roundrobin", "range" };
	static const char *const P3[] = { "range", "roundrobin" };

	e->cfg.initial_rebalance_delay_ms = 100;
	join_p(e, &a, NULL, NULL, P3, 2, "m", false);
	join_p(e, &b, NULL, NULL, P1, 2, "m", false);
	join_p(e, &c, NULL, NULL, P2, 2, "m", false);
	assert_false(a.done);
	e->now += 1000;
	group_tick(e->g, e->now);
	assert_true(a.done && b.done && c.done);
	assert_string_equal(a.protocol, "roundrobin");   /* two votes against one */
	assert_int_equal(a.generation, 1);
}

static void test_initial_delay(void **state)
{
	struct env *e = *state;
	struct ans a, b;

	e->cfg.initial_rebalance_delay_ms = 3000;
	join(e, &a, NULL);
	assert_false(a.done);
	assert_int_equal(e->g->state, GROUP_PREPARING_REBALANCE);
	assert_int_equal(group_next_deadline(e->g), e->now + 3000);
	e->now += 2000;
	join(e, &b, NULL);     /* extends the delay by 3 s from now */
	group_tick(e->g, e->now + 1500);
	assert_false(a.done);
	e->now += 3000;
	group_tick(e->g, e->now);
	assert_true(a.done && b.done);
	assert_int_equal(a.generation, 1);
	assert_int_equal(e->g->member_count, 2);
	assert_int_equal(e->g->state, GROUP_COMPLETING_REBALANCE);
}

static void test_session_timeout(void **state)
{
	struct env *e = *state;
	struct ans j1, j2, j;

	two_stable(e, &j1, &j2);
	/* j1 heartbeats, j2 goes silent */
	e->now += 6000;
	assert_int_equal(group_heartbeat(e->g, e->now, j1.member_id, (int32_t)strlen(j1.member_id),
					 NULL, -1, 2), 0);
	assert_true(group_next_deadline(e->g) <= e->now + 4000);
	e->now += 4001;
	group_tick(e->g, e->now);
	assert_int_equal(e->g->member_count, 1);
	assert_int_equal(e->g->state, GROUP_PREPARING_REBALANCE);
	join(e, &j, j1.member_id);
	assert_true(j.done);
	assert_int_equal(j.generation, 3);
	assert_true(j.is_leader);
	assert_int_equal(e->g->state, GROUP_COMPLETING_REBALANCE);
}

static void test_rebalance_timeout(void **state)
{
	struct env *e = *state;
	struct ans j1, j2, j3;

	two_stable(e, &j1, &j2);
	join(e, &j3, NULL);
	assert_int_equal(e->g->state, GROUP_PREPARING_REBALANCE);
	/* j1 rejoins, j2 never does (but keeps heartbeating) */
	join(e, &j1, j1.member_id);
	assert_false(j1.done);
	for (int i = 0; i < 10; i++) {
		e->now += 3000;
		group_heartbeat(e->g, e->now, j2.member_id, (int32_t)strlen(j2.member_id), NULL, -1, 2);
		group_tick(e->g, e->now);
	}
	assert_true(j1.done && j3.done);
	assert_int_equal(j1.generation, 3);
	assert_int_equal(e->g->member_count, 2);
	assert_null(group_member_find(e->g, j2.member_id, (int32_t)strlen(j2.member_id)));
	assert_int_equal(group_heartbeat(e->g, e->now, j2.member_id, (int32_t)strlen(j2.member_id),
					 NULL, -1, 3), GROUP_KERR_UNKNOWN_MEMBER_ID);
}

static void test_leave(void **state)
{
	struct env *e = *state;
	struct ans j1, j2, j, s;

	two_stable(e, &j1, &j2);
	assert_int_equal(group_leave(e->g, e->now, "ghost", 5, NULL, -1), GROUP_KERR_UNKNOWN_MEMBER_ID);
	assert_int_equal(group_leave(e->g, e->now, j1.member_id, (int32_t)strlen(j1.member_id), NULL, -1), 0);
	assert_int_equal(e->g->state, GROUP_PREPARING_REBALANCE);
	join(e, &j, j2.member_id);
	assert_true(j.done);
	assert_true(j.is_leader);  /* the leader left: the next one leads */
	assert_int_equal(e->g->state, GROUP_COMPLETING_REBALANCE);
	/* leaving while the others wait in sync: they get REBALANCE_IN_PROGRESS? no, alone */
	sync_g(e, &s, j2.member_id, 3, 1, (const char *const[]){ j2.member_id }, (const char *const[]){ "X" });
	assert_true(s.done);
	assert_int_equal(group_leave(e->g, e->now, j2.member_id, (int32_t)strlen(j2.member_id), NULL, -1), 0);
	assert_int_equal(e->g->state, GROUP_EMPTY);
	assert_int_equal(e->g->member_count, 0);
	assert_int_equal(group_commit_check(e->g, e->now, NULL, 0, NULL, -1, -1), 0);
}

static void test_sync_rebalance_interrupt(void **state)
{
	struct env *e = *state;
	struct ans j1, j2, s2, j3;

	two_stable(e, &j1, &j2);
	join(e, &j3, NULL);
	join(e, &j1, j1.member_id);
	join(e, &j2, j2.member_id);
	assert_true(j1.done && j2.done && j3.done);
	assert_int_equal(e->g->state, GROUP_COMPLETING_REBALANCE);
	sync_g(e, &s2, j2.member_id, 3, 0, NULL, NULL);
	assert_false(s2.done);
	/* j3 leaves before the leader syncs: the held sync is told to rejoin */
	assert_int_equal(group_leave(e->g, e->now, j3.member_id, (int32_t)strlen(j3.member_id), NULL, -1), 0);
	assert_true(s2.done);
	assert_int_equal(s2.err, GROUP_KERR_REBALANCE_IN_PROGRESS);
	assert_int_equal(e->g->state, GROUP_PREPARING_REBALANCE);
}

static void test_max_size(void **state)
{
	struct env *e = *state;
	struct ans a, b;

	e->cfg.max_size = 1;
	join(e, &a, NULL);
	assert_int_equal(a.err, 0);
	join(e, &b, NULL);
	assert_int_equal(b.err, GROUP_KERR_GROUP_MAX_SIZE_REACHED);
	assert_int_equal(e->g->member_count, 1);
}

static void test_static_member(void **state)
{
	struct env *e = *state;
	struct ans a, s, b, c;

	join_p(e, &a, NULL, "inst-1", PROTOS, 2, "m", true);
	assert_int_equal(a.err, 0);   /* static members need no MEMBER_ID_REQUIRED */
	sync_g(e, &s, a.member_id, 1, 1, (const char *const[]){ a.member_id }, (const char *const[]){ "P" });
	assert_int_equal(e->g->state, GROUP_STABLE);
	/* restart with the same instance id and metadata: new id, no rebalance */
	join_p(e, &b, NULL, "inst-1", PROTOS, 2, "m", true);
	assert_true(b.done);
	assert_int_equal(b.err, 0);
	assert_string_not_equal(b.member_id, a.member_id);
	assert_int_equal(b.generation, 1);
	assert_true(b.skip);           /* the leader keeps its assignment */
	assert_int_equal(e->g->state, GROUP_STABLE);
	sync_g(e, &s, b.member_id, 1, 0, NULL, NULL);
	assert_string_equal(s.assignment, "P");
	/* the old id is fenced */
	assert_int_equal(group_heartbeat(e->g, e->now, a.member_id, (int32_t)strlen(a.member_id),
					 "inst-1", 6, 1), GROUP_KERR_FENCED_INSTANCE_ID);
	join_p(e, &c, a.member_id, "inst-1", PROTOS, 2, "m", true);
	assert_int_equal(c.err, GROUP_KERR_FENCED_INSTANCE_ID);
	assert_int_equal(group_leave(e->g, e->now, a.member_id, (int32_t)strlen(a.member_id), "inst-1", 6),
			 GROUP_KERR_FENCED_INSTANCE_ID);
	/* changed metadata: a rebalance */
	join_p(e, &c, NULL, "inst-1", PROTOS, 2, "other", true);
	assert_true(c.done);
	assert_int_equal(c.generation, 2);
	/* a static member leaves by instance id */
	assert_int_equal(group_leave(e->g, e->now, NULL, 0, "inst-1", 6), 0);
	assert_int_equal(e->g->state, GROUP_EMPTY);
}

/* PREPARING_REBALANCE where nobody rejoins before the deadline: EMPTY, next generation. */
static void test_rebalance_to_empty(void **state)
{
	struct env *e = *state;
	struct ans j1, j2;

	two_stable(e, &j1, &j2);
	assert_int_equal(group_commit_check(e->g, e->now, j1.member_id, (int32_t)strlen(j1.member_id),
					    NULL, -1, 2), 0);
	assert_int_equal(group_commit_check(e->g, e->now, j1.member_id, (int32_t)strlen(j1.member_id),
					    NULL, -1, 1), GROUP_KERR_ILLEGAL_GENERATION);
	/* j2 leaves: PREPARING; j1 heartbeats but never rejoins */
	assert_int_equal(group_leave(e->g, e->now, j2.member_id, (int32_t)strlen(j2.member_id), NULL, -1), 0);
	assert_int_equal(e->g->state, GROUP_PREPARING_REBALANCE);
	uint32_t changed = e->changed;
	for (int i = 0; i < 20 && e->g->state == GROUP_PREPARING_REBALANCE; i++) {
		e->now += 2000;
		group_heartbeat(e->g, e->now, j1.member_id, (int32_t)strlen(j1.member_id), NULL, -1, 2);
		group_tick(e->g, e->now);
	}
	assert_int_equal(e->g->state, GROUP_EMPTY);
	assert_int_equal(e->g->generation, 3);
	assert_int_equal(e->g->member_count, 0);
	assert_true(e->changed > changed);   /* EMPTY is reported (group metadata record) */
	assert_int_equal(group_next_deadline(e->g), INT64_MAX);
	/* a new member starts generation 4 */
	struct ans j;
	join(e, &j, NULL);
	assert_true(j.done);
	assert_int_equal(j.generation, 4);
}

/*
 * What the coordinator persists: `changed` runs when the leader's sync
 * completes the rebalance, with every member and assignment in place, and
 * when the group becomes EMPTY (protocol type kept, as in Kafka).
 */
static void test_changed_carries_members(void **state)
{
	struct env *e = *state;
	struct ans j1, j2;

	two_stable(e, &j1, &j2);
	assert_int_equal(e->ch_state, GROUP_STABLE);
	assert_int_equal(e->ch_members, 2);
	bool first_is_j1 = strcmp(e->g->members[0]->member_id, j1.member_id) == 0;
	assert_string_equal(e->ch_assign[first_is_j1 ? 0 : 1], "A1");
	assert_string_equal(e->ch_assign[first_is_j1 ? 1 : 0], "B1");
	assert_int_equal(group_leave(e->g, e->now, j1.member_id, (int32_t)strlen(j1.member_id), NULL, -1), 0);
	assert_int_equal(group_leave(e->g, e->now, j2.member_id, (int32_t)strlen(j2.member_id), NULL, -1), 0);
	assert_int_equal(e->g->state, GROUP_EMPTY);
	assert_int_equal(e->ch_state, GROUP_EMPTY);
	assert_int_equal(e->ch_members, 0);
	assert_string_equal(e->ch_ptype, "consumer");
	assert_string_equal(e->g->protocol_type, "consumer");
}

static void restore_two(struct env *e, const char *leader, int32_t gen, enum sl_err want)
{
	struct group_restore_member ms[2] = {
		{ .member_id = "m-1", .member_id_len = 3, .instance_id_len = -1,
		  .client_id = "c1", .client_id_len = 2, .client_host = "/h", .client_host_len = 2,
		  .rebalance_timeout_ms = 30000, .session_timeout_ms = 10000,
		  .subscription = (const uint8_t *)"m", .subscription_len = 1,
		  .assignment = (const uint8_t *)"A1", .assignment_len = 2 },
		{ .member_id = "m-2", .member_id_len = 3, .instance_id = "inst", .instance_id_len = 4,
		  .client_id = "c2", .client_id_len = 2, .client_host = "/h", .client_host_len = 2,
		  .rebalance_timeout_ms = 30000, .session_timeout_ms = 6000,
		  .subscription = (const uint8_t *)"m", .subscription_len = 1,
		  .assignment = (const uint8_t *)"B1", .assignment_len = 2 },
	};
	struct group_restore r = {
		.protocol_type = "consumer", .protocol_type_len = 8, .generation = gen,
		.protocol_name = "range", .protocol_name_len = 5,
		.leader_id = leader, .leader_id_len = (int32_t)strlen(leader),
		.member_count = 2, .members = ms,
	};
	assert_int_equal(group_restore(e->g, e->now, &r), want);
}

/* group_restore: STABLE as stored, sessions from the load, expiry rebalances. */
static void test_restore(void **state)
{
	struct env *e = *state;
	struct ans s, j;

	restore_two(e, "m-9", 7, SL_EINVAL);   /* the leader is not a member */
	assert_int_equal(e->g->state, GROUP_EMPTY);
	assert_int_equal(e->g->generation, 7);
	assert_int_equal(e->g->member_count, 0);
	assert_string_equal(e->g->protocol_type, "consumer");
	restore_two(e, "m-1", 7, SL_OK);
	assert_int_equal(e->g->state, GROUP_STABLE);
	assert_int_equal(e->g->generation, 7);
	assert_int_equal(e->g->member_count, 2);
	assert_string_equal(e->g->leader_id, "m-1");
	assert_string_equal(e->g->protocol_name, "range");
	assert_string_equal(group_member_find(e->g, "m-2", 3)->instance_id, "inst");
	assert_int_equal(group_next_deadline(e->g), e->now + 6000);
	assert_int_equal(e->changed, 0);   /* a load writes nothing */
	/* the members carry on in their generation */
	assert_int_equal(group_heartbeat(e->g, e->now, "m-1", 3, NULL, -1, 7), 0);
	assert_int_equal(group_heartbeat(e->g, e->now, "m-1", 3, NULL, -1, 6),
			 GROUP_KERR_ILLEGAL_GENERATION);
	sync_g(e, &s, "m-2", 7, 0, NULL, NULL);
	assert_int_equal(s.err, 0);
	assert_string_equal(s.assignment, "B1");
	assert_int_equal(group_commit_check(e->g, e->now, "m-2", 3, "inst", 4, 7), 0);
	/* m-1 heartbeats, m-2 does not: m-2 expires after its session, a rebalance follows */
	e->now += 5000;
	assert_int_equal(group_heartbeat(e->g, e->now, "m-1", 3, NULL, -1, 7), 0);
	e->now += 1001;
	group_tick(e->g, e->now);
	assert_null(group_member_find(e->g, "m-2", 3));
	assert_int_equal(e->g->state, GROUP_PREPARING_REBALANCE);
	assert_int_equal(group_heartbeat(e->g, e->now, "m-1", 3, NULL, -1, 7),
			 GROUP_KERR_REBALANCE_IN_PROGRESS);
	join_p(e, &j, "m-1", NULL, (const char *const[]){ "range" }, 1, "m", false);
	assert_true(j.done);
	assert_int_equal(j.generation, 8);
	/* an empty record: EMPTY with the stored generation */
	struct ans s1;
	sync_g(e, &s1, "m-1", 8, 1, (const char *const[]){ "m-1" }, (const char *const[]){ "X" });
	assert_int_equal(e->g->state, GROUP_STABLE);
	struct group_restore empty = { .protocol_type = "consumer", .protocol_type_len = 8,
				       .generation = 9 };
	assert_int_equal(group_restore(e->g, e->now, &empty), SL_OK);
	assert_int_equal(e->g->state, GROUP_EMPTY);
	assert_int_equal(e->g->generation, 9);
	assert_int_equal(group_next_deadline(e->g), INT64_MAX);
}

static void test_state_names(void **state)
{
	(void)state;
	for (int s = GROUP_EMPTY; s <= GROUP_DEAD; s++) {
		const char *n = group_state_name((enum group_state)s);
		assert_int_equal(group_state_parse(n, strlen(n)), s);
	}
	assert_int_equal(group_state_parse("stable", 6), GROUP_STABLE);
	assert_int_equal(group_state_parse("nope", 4), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_join_sync_stable, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_member_id_required, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_errors, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_protocol_vote, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_initial_delay, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_session_timeout, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_rebalance_timeout, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_leave, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_sync_rebalance_interrupt, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_max_size, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_static_member, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_rebalance_to_empty, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_changed_carries_members, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_restore, env_setup, env_teardown),
		cmocka_unit_test(test_state_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
