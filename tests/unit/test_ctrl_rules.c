/*
 * test_ctrl_rules.c — the controller's decision rules (coordination/
 * ctrl_rules.h) on small clusters: Kafka's replica assignment examples
 * (rack-unaware and rack-aware, derived from AdminUtils' algorithm), new
 * partition states, offline / controlled-shutdown / preferred /
 * reassignment elections, broker failure, controlled shutdown,
 * AlterPartition validation, broker-epoch checks and bounced brokers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ctrl_rules.h"

static struct ctrl_broker g_b[8];

static struct ctrl_cluster mk(uint32_t n)
{
	memset(g_b, 0, sizeof(g_b));
	for (uint32_t i = 0; i < n; i++) {
		g_b[i].id = (int32_t)i;
		g_b[i].alive = true;
	}
	return (struct ctrl_cluster){g_b, n};
}

static struct ctrl_pstate ps_make(const int32_t *r, uint32_t rn, const int32_t *isr, uint32_t in,
				  int32_t leader, int32_t epoch)
{
	struct ctrl_pstate ps;

	memset(&ps, 0, sizeof(ps));
	memcpy(ps.replicas, r, rn * sizeof(*r));
	ps.replica_count = rn;
	memcpy(ps.isr, isr, in * sizeof(*isr));
	ps.isr_count = in;
	ps.leader = leader;
	ps.leader_epoch = epoch;
	ps.partition_epoch = 3;
	ps.controller_epoch = 1;
	return ps;
}

static void assert_ids(const int32_t *got, uint32_t n, const int32_t *want, uint32_t wn)
{
	assert_int_equal(n, wn);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(got[i], want[i]);
}

/* Kafka's AdminTest.testReplicaAssignment: 5 brokers, 10 partitions, rf 3, fixed start 0. */
static void test_assign_rack_unaware(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(5);
	static const int32_t want[10][3] = {{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1},
					    {0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}};
	int32_t out[30];

	assert_int_equal(ctrl_assign(&c, 10, 3, CTRL_RACK_ENFORCED, 0, 0, 0, out, 30), 0);
	for (int p = 0; p < 10; p++)
		assert_ids(&out[p * 3], 3, want[p], 3);
	/* Errors: rf 0, rf > brokers, partitions 0, small output. */
	assert_int_equal(ctrl_assign(&c, 10, 0, CTRL_RACK_ENFORCED, 0, 0, 0, out, 30),
			 CTRL_KERR_INVALID_REPLICATION_FACTOR);
	assert_int_equal(ctrl_assign(&c, 1, 6, CTRL_RACK_ENFORCED, 0, 0, 0, out, 30),
			 CTRL_KERR_INVALID_REPLICATION_FACTOR);
	assert_int_equal(ctrl_assign(&c, 0, 3, CTRL_RACK_ENFORCED, 0, 0, 0, out, 30),
			 CTRL_KERR_INVALID_PARTITIONS);
	assert_int_equal(ctrl_assign(&c, 11, 3, CTRL_RACK_ENFORCED, 0, 0, 0, out, 30),
			 CTRL_KERR_INVALID_REQUEST);
	/* A dead broker does not count: 4 registered brokers, rf 5 fails. */
	g_b[2].alive = false;
	assert_int_equal(ctrl_assign(&c, 1, 5, CTRL_RACK_ENFORCED, 0, 0, 0, out, 30),
			 CTRL_KERR_INVALID_REPLICATION_FACTOR);
	/* Brokers 0,1,3,4 with start 1, shift 2: first = 1 -> broker 1, then
	 * positions 1+1+(2%3)=4%4=0 -> 0, 1+1+(3%3)=2 -> 3. */
	assert_int_equal(ctrl_assign(&c, 1, 3, CTRL_RACK_ENFORCED, 1, 2, 0, out, 30), 0);
	assert_ids(out, 3, (const int32_t[]){1, 0, 3}, 3);
}

/* Kafka's RackAwareTest: rack-alternated list 0,3,1,5,4,2 and its assignment. */
static void test_assign_rack_aware(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(6);
	static const char *racks[6] = {"rack1", "rack3", "rack3", "rack2", "rack2", "rack1"};
	static const int32_t want[7][3] = {{0, 3, 1}, {3, 1, 5}, {1, 5, 4}, {5, 4, 2},
					   {4, 2, 0}, {2, 0, 3}, {0, 4, 2}};
	int32_t out[21];

	for (int i = 0; i < 6; i++)
		g_b[i].rack = racks[i];
	assert_int_equal(ctrl_assign(&c, 7, 3, CTRL_RACK_ENFORCED, 0, 0, 0, out, 21), 0);
	for (int p = 0; p < 7; p++)
		assert_ids(&out[p * 3], 3, want[p], 3);
	/* rf 2 over 6 partitions with a random-looking start: every partition
	 * spans two racks. */
	assert_int_equal(ctrl_assign(&c, 6, 2, CTRL_RACK_ENFORCED, 4, 3, 0, out, 21), 0);
	for (int p = 0; p < 6; p++)
		assert_string_not_equal(racks[out[p * 2]], racks[out[p * 2 + 1]]);
	/* Leaders spread evenly: each broker leads one of 6 partitions. */
	int leads[6] = {0};
	for (int p = 0; p < 6; p++)
		leads[out[p * 2]]++;
	for (int b = 0; b < 6; b++)
		assert_int_equal(leads[b], 1);

	/* Mixed racks: error when enforced, racks ignored when safe. */
	g_b[5].rack = NULL;
	assert_int_equal(ctrl_assign(&c, 1, 3, CTRL_RACK_ENFORCED, 0, 0, 0, out, 21),
			 CTRL_KERR_UNKNOWN_SERVER_ERROR);
	assert_int_equal(ctrl_assign(&c, 1, 3, CTRL_RACK_SAFE, 0, 0, 0, out, 21), 0);
	assert_ids(out, 3, (const int32_t[]){0, 1, 2}, 3);
	assert_int_equal(ctrl_assign(&c, 1, 3, CTRL_RACK_DISABLED, 0, 0, 0, out, 21), 0);
	assert_ids(out, 3, (const int32_t[]){0, 1, 2}, 3);
}

/* rf == brokers with racks: every broker once per partition. */
static void test_assign_rack_full(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(4);
	int32_t out[16];

	g_b[0].rack = "a";
	g_b[1].rack = "a";
	g_b[2].rack = "b";
	g_b[3].rack = "b";
	assert_int_equal(ctrl_assign(&c, 4, 4, CTRL_RACK_ENFORCED, 1, 1, 0, out, 16), 0);
	for (int p = 0; p < 4; p++) {
		int seen[4] = {0};

		for (int j = 0; j < 4; j++)
			seen[out[p * 4 + j]]++;
		for (int b = 0; b < 4; b++)
			assert_int_equal(seen[b], 1);
		/* First two replicas in different racks. */
		assert_string_not_equal(g_b[out[p * 4]].rack, g_b[out[p * 4 + 1]].rack);
	}
}

/* CreatePartitions: Kafka's addPartitions start index and partition numbering. */
static void test_assign_more(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(5);
	int32_t out[6];

	/* Partition 0 = [2,3]; existing 2 partitions, grow to 4: start = index of
	 * broker 2 = 2, shift 2, partitions 2 and 3. p2: first=(2+2)%5=4 ->
	 * 4, 4+1+(2%4)=7%5=2 -> [4,2]; p3: first 0 -> [0, 0+1+2=3]. */
	assert_int_equal(ctrl_assign_more(&c, (const int32_t[]){2, 3}, 2, 2, 4, CTRL_RACK_ENFORCED,
					  out, 6), 0);
	assert_ids(out, 4, (const int32_t[]){4, 2, 0, 3}, 4);
	assert_int_equal(ctrl_assign_more(&c, (const int32_t[]){2, 3}, 2, 2, 2, CTRL_RACK_ENFORCED,
					  out, 6), CTRL_KERR_INVALID_PARTITIONS);
}

static void test_pstate_init(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(4);
	struct ctrl_pstate ps;

	g_b[1].alive = false;
	g_b[2].shutting_down = true;
	assert_int_equal(ctrl_pstate_init(&c, (const int32_t[]){1, 2, 3, 0}, 4, 7, &ps), SL_OK);
	assert_int_equal(ps.leader, 3);
	assert_ids(ps.isr, ps.isr_count, (const int32_t[]){3, 0}, 2);
	assert_int_equal(ps.leader_epoch, 0);
	assert_int_equal(ps.partition_epoch, 0);
	assert_int_equal(ps.controller_epoch, 7);
	assert_int_equal(ctrl_pstate_init(&c, (const int32_t[]){1, 2}, 2, 7, &ps), SL_ENOTFOUND);
}

static void test_elect_offline(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(4);
	struct ctrl_pstate cur = ps_make((const int32_t[]){0, 1, 2}, 3, (const int32_t[]){0, 2}, 2,
					 0, 5);
	struct ctrl_pstate next;

	g_b[0].alive = false;
	/* 1 is alive but not in the ISR: 2 wins; ISR = online members. */
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_OFFLINE, &next), 0);
	assert_int_equal(next.leader, 2);
	assert_int_equal(next.leader_epoch, 6);
	assert_ids(next.isr, next.isr_count, (const int32_t[]){2}, 1);
	assert_int_equal(next.leader_recovery_state, CTRL_RECOVERED);
	/* 2 dead too: clean election fails, unclean picks 1 with ISR [1]. */
	g_b[2].alive = false;
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_OFFLINE, &next),
			 CTRL_KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE);
	assert_memory_equal(&next, &cur, sizeof(cur));
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_OFFLINE_UNCLEAN, &next), 0);
	assert_int_equal(next.leader, 1);
	assert_ids(next.isr, next.isr_count, (const int32_t[]){1}, 1);
	assert_int_equal(next.leader_recovery_state, CTRL_RECOVERING);
	/* A shutting-down broker is not online for offline elections. */
	g_b[2].alive = true;
	g_b[2].shutting_down = true;
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_OFFLINE, &next),
			 CTRL_KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE);
}

static void test_elect_controlled_shutdown_and_preferred(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(4);
	struct ctrl_pstate cur = ps_make((const int32_t[]){1, 2, 3}, 3,
					 (const int32_t[]){1, 2, 3}, 3, 1, 2);
	struct ctrl_pstate next;

	g_b[1].shutting_down = true;
	g_b[2].shutting_down = true;
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_CONTROLLED_SHUTDOWN, &next), 0);
	assert_int_equal(next.leader, 3);
	assert_int_equal(next.leader_epoch, 3);
	assert_ids(next.isr, next.isr_count, (const int32_t[]){3}, 1);
	g_b[3].alive = false;
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_CONTROLLED_SHUTDOWN, &next),
			 CTRL_KERR_ELIGIBLE_LEADERS_NOT_AVAILABLE);

	/* Preferred: replicas[0]=1 leads again when online and in the ISR. */
	c = mk(4);
	cur.leader = 2;
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_PREFERRED, &next), 0);
	assert_int_equal(next.leader, 1);
	assert_int_equal(next.leader_epoch, 3);
	assert_ids(next.isr, next.isr_count, cur.isr, cur.isr_count);
	cur.leader = 1;
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_PREFERRED, &next),
			 CTRL_KERR_ELECTION_NOT_NEEDED);
	cur.leader = 2;
	cur.isr[0] = 3;
	cur.isr_count = 2;   /* ISR [3,2]: preferred 1 not in it */
	assert_int_equal(ctrl_elect(&c, &cur, CTRL_ELECT_PREFERRED, &next),
			 CTRL_KERR_PREFERRED_LEADER_NOT_AVAILABLE);

	/* Reassignment: first of the target that is online and in ISR. */
	assert_int_equal(ctrl_elect_reassign(&c, &cur, (const int32_t[]){0, 3, 2}, 3, &next), 0);
	assert_int_equal(next.leader, 3);
	assert_int_equal(next.leader_epoch, cur.leader_epoch + 1);
}

static void test_remove_from_isr(void **st)
{
	(void)st;
	struct ctrl_pstate ps = ps_make((const int32_t[]){0, 1}, 2, (const int32_t[]){0, 1}, 2, 0, 4);

	assert_int_equal(ctrl_remove_from_isr(&ps, 3), CTRL_CHANGE_NONE);
	assert_int_equal(ps.leader_epoch, 4);
	assert_int_equal(ctrl_remove_from_isr(&ps, 1), CTRL_CHANGE_ISR);
	assert_ids(ps.isr, ps.isr_count, (const int32_t[]){0}, 1);
	assert_int_equal(ps.leader_epoch, 5);
	/* Last member: ISR kept, leader gone. */
	assert_int_equal(ctrl_remove_from_isr(&ps, 0), CTRL_CHANGE_OFFLINE);
	assert_int_equal(ps.leader, CTRL_NO_LEADER);
	assert_ids(ps.isr, ps.isr_count, (const int32_t[]){0}, 1);
	assert_int_equal(ps.leader_epoch, 6);
}

static void test_broker_failed(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(3);
	struct ctrl_pstate s[4];
	enum ctrl_change ch[4];
	uint32_t moved[4];
	bool unclean[4] = {false, false, false, false};

	s[0] = ps_make((const int32_t[]){0, 1, 2}, 3, (const int32_t[]){0, 1, 2}, 3, 0, 1); /* led */
	s[1] = ps_make((const int32_t[]){1, 0, 2}, 3, (const int32_t[]){1, 0}, 2, 1, 1);    /* follows */
	s[2] = ps_make((const int32_t[]){1, 2}, 2, (const int32_t[]){1, 2}, 2, 1, 1);       /* absent */
	s[3] = ps_make((const int32_t[]){0, 2}, 2, (const int32_t[]){0}, 1, 0, 1);          /* sole ISR */
	g_b[0].alive = false;
	assert_int_equal(ctrl_broker_failed(&c, 0, unclean, s, 4, ch, moved), 2);
	assert_int_equal(moved[0], 0);
	assert_int_equal(moved[1], 3);
	/* p0: new leader 1, ISR [1,2], one epoch bump. */
	assert_int_equal(ch[0], CTRL_CHANGE_LEADER);
	assert_int_equal(s[0].leader, 1);
	assert_int_equal(s[0].leader_epoch, 2);
	assert_ids(s[0].isr, s[0].isr_count, (const int32_t[]){1, 2}, 2);
	/* p1: ISR shrink, leader stays, epoch bumped (ZK controller does). */
	assert_int_equal(ch[1], CTRL_CHANGE_ISR);
	assert_int_equal(s[1].leader, 1);
	assert_int_equal(s[1].leader_epoch, 2);
	assert_ids(s[1].isr, s[1].isr_count, (const int32_t[]){1}, 1);
	assert_int_equal(ch[2], CTRL_CHANGE_NONE);
	assert_int_equal(s[2].leader_epoch, 1);
	/* p3: no ISR candidate: leader -1, ISR keeps [0], epoch bumped. */
	assert_int_equal(ch[3], CTRL_CHANGE_OFFLINE);
	assert_int_equal(s[3].leader, CTRL_NO_LEADER);
	assert_ids(s[3].isr, s[3].isr_count, (const int32_t[]){0}, 1);
	assert_int_equal(s[3].leader_epoch, 2);

	/* Broker 0 returns, then broker 2 dies with unclean election on p3:
	 * 2 not online, 0 online: clean offline election finds 0 in ISR. */
	g_b[0].alive = true;
	g_b[2].alive = false;
	unclean[3] = true;
	assert_int_equal(ctrl_broker_failed(&c, 2, unclean, s, 4, ch, NULL), 1);
	assert_int_equal(s[3].leader, 0);
	assert_int_equal(s[3].leader_epoch, 3);
	assert_int_equal(ch[3], CTRL_CHANGE_LEADER);
	/* p2 was led by 1 with ISR [1,2]: shrink only. */
	assert_int_equal(ch[2], CTRL_CHANGE_ISR);
	assert_ids(s[2].isr, s[2].isr_count, (const int32_t[]){1}, 1);
	/* p0 led by 1, ISR [1,2] -> [1]. */
	assert_int_equal(s[0].leader, 1);
	assert_ids(s[0].isr, s[0].isr_count, (const int32_t[]){1}, 1);
}

static void test_broker_failed_unclean(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(3);
	struct ctrl_pstate s = ps_make((const int32_t[]){0, 1}, 2, (const int32_t[]){0}, 1, 0, 7);
	enum ctrl_change ch;
	bool unclean = true;

	g_b[0].alive = false;
	assert_int_equal(ctrl_broker_failed(&c, 0, &unclean, &s, 1, &ch, NULL), 1);
	assert_int_equal(ch, CTRL_CHANGE_LEADER);
	assert_int_equal(s.leader, 1);
	assert_int_equal(s.leader_epoch, 8);
	assert_ids(s.isr, s.isr_count, (const int32_t[]){1}, 1);
	assert_int_equal(s.leader_recovery_state, CTRL_RECOVERING);
}

static void test_controlled_shutdown(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(3);
	struct ctrl_pstate s[4];
	enum ctrl_change ch[4];
	uint32_t rem[4];

	s[0] = ps_make((const int32_t[]){1, 0, 2}, 3, (const int32_t[]){1, 0, 2}, 3, 1, 1); /* led */
	s[1] = ps_make((const int32_t[]){0, 1}, 2, (const int32_t[]){0, 1}, 2, 0, 1);       /* follows */
	s[2] = ps_make((const int32_t[]){1, 2}, 2, (const int32_t[]){1}, 1, 1, 1);          /* stuck */
	s[3] = ps_make((const int32_t[]){1}, 1, (const int32_t[]){1}, 1, 1, 1);             /* rf 1 */
	g_b[1].shutting_down = true;
	assert_int_equal(ctrl_controlled_shutdown(&c, 1, s, 4, ch, rem), 1);
	assert_int_equal(rem[0], 2);
	assert_int_equal(ch[0], CTRL_CHANGE_LEADER);
	assert_int_equal(s[0].leader, 0);
	assert_int_equal(s[0].leader_epoch, 2);
	assert_ids(s[0].isr, s[0].isr_count, (const int32_t[]){0, 2}, 2);
	assert_int_equal(ch[1], CTRL_CHANGE_ISR);
	assert_int_equal(s[1].leader, 0);
	assert_ids(s[1].isr, s[1].isr_count, (const int32_t[]){0}, 1);
	assert_int_equal(ch[2], CTRL_CHANGE_NONE);
	assert_int_equal(s[2].leader, 1);
	assert_int_equal(s[2].leader_epoch, 1);
	assert_int_equal(ch[3], CTRL_CHANGE_NONE);
	assert_int_equal(s[3].leader_epoch, 1);
}

static void test_alter_partition(void **st)
{
	(void)st;
	struct ctrl_cluster c = mk(4);
	struct ctrl_pstate cur = ps_make((const int32_t[]){0, 1, 2}, 3, (const int32_t[]){0, 1}, 2,
					 0, 5);
	struct ctrl_pstate next;
	int32_t grow[3] = {0, 1, 2};
	struct ctrl_isr_req r = {.broker_id = 0, .leader_epoch = 5, .partition_epoch = 3,
				 .isr = grow, .isr_count = 3, .api_version = 2};

	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), 0);
	assert_ids(next.isr, next.isr_count, grow, 3);
	assert_int_equal(next.leader_epoch, 5);
	assert_int_equal(next.partition_epoch, 4);
	/* Idempotent retry with the stale partition epoch once applied. */
	struct ctrl_pstate applied = next;
	assert_int_equal(ctrl_alter_partition(&c, &applied, &r, &next), 0);
	assert_int_equal(next.partition_epoch, 4);

	r.leader_epoch = 4;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_FENCED_LEADER_EPOCH);
	assert_memory_equal(&next, &cur, sizeof(cur));
	r.leader_epoch = 6;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_NOT_CONTROLLER);
	r.leader_epoch = 5;
	r.partition_epoch = 2;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_INVALID_UPDATE_VERSION);
	r.partition_epoch = 3;
	r.broker_id = 1;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next),
			 CTRL_KERR_NOT_LEADER_OR_FOLLOWER);
	r.broker_id = 0;
	/* KIP-841: adding a dead or shutting-down replica. */
	g_b[2].shutting_down = true;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_INELIGIBLE_REPLICA);
	g_b[2].shutting_down = false;
	g_b[2].alive = false;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_INELIGIBLE_REPLICA);
	r.api_version = 1;   /* before KIP-841's error code */
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next),
			 CTRL_KERR_OPERATION_NOT_ATTEMPTED);
	r.api_version = 2;
	/* Malformed ISRs. */
	int32_t bad1[2] = {1, 2};     /* leader missing */
	int32_t bad2[2] = {0, 3};     /* 3 is not a replica */
	int32_t bad3[2] = {0, 0};     /* duplicate */
	r.isr = bad1;
	r.isr_count = 2;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_INVALID_REQUEST);
	r.isr = bad2;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_INVALID_REQUEST);
	r.isr = bad3;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_INVALID_REQUEST);
	/* Shrink accepted; RECOVERED -> RECOVERING refused. */
	int32_t shrink[1] = {0};
	r.isr = shrink;
	r.isr_count = 1;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), 0);
	assert_ids(next.isr, next.isr_count, shrink, 1);
	r.leader_recovery_state = CTRL_RECOVERING;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), CTRL_KERR_INVALID_REQUEST);
	/* RECOVERING -> RECOVERED with ISR growth is how recovery completes. */
	cur.leader_recovery_state = CTRL_RECOVERING;
	cur.isr_count = 1;
	g_b[2].alive = true;
	r.leader_recovery_state = CTRL_RECOVERED;
	r.isr = grow;
	r.isr_count = 2;
	assert_int_equal(ctrl_alter_partition(&c, &cur, &r, &next), 0);
	assert_int_equal(next.leader_recovery_state, CTRL_RECOVERED);
}

/* Stale-epoch rules: "older" for control requests, "exact" for AlterPartition. */
static void test_broker_epoch_stale(void **state)
{
	(void)state;
	/* No epoch in the request (old versions): never stale. */
	assert_false(ctrl_broker_epoch_stale(-1, 100));
	assert_false(ctrl_broker_epoch_stale(-1, -1));
	/* Older registration: stale; same or newer (ZooKeeper lag): not. */
	assert_true(ctrl_broker_epoch_stale(99, 100));
	assert_false(ctrl_broker_epoch_stale(100, 100));
	assert_false(ctrl_broker_epoch_stale(101, 100));
	/* The receiver has no registration (yet): any epoch is another's. */
	assert_true(ctrl_broker_epoch_stale(100, -1));

	assert_false(ctrl_broker_epoch_exact_stale(-1, 100));
	assert_false(ctrl_broker_epoch_exact_stale(100, 100));
	assert_true(ctrl_broker_epoch_exact_stale(99, 100));
	assert_true(ctrl_broker_epoch_exact_stale(101, 100));
	assert_true(ctrl_broker_epoch_exact_stale(100, -1));
}

/* New / dead / bounced / same brokers from two snapshots of /brokers/ids. */
static void test_reg_diff(void **state)
{
	(void)state;
	const struct ctrl_reg prev[] = { { 1, 10 }, { 2, 20 }, { 3, 30 } };
	/* 1 same, 2 bounced (restarted inside its old session), 3 gone, 4 new. */
	const struct ctrl_reg cur[] = { { 4, 45 }, { 2, 44 }, { 1, 10 } };
	int32_t ids[8];
	enum ctrl_reg_change ch[8];

	assert_int_equal(ctrl_reg_classify(prev, 3, cur, 3, 1), CTRL_REG_SAME);
	assert_int_equal(ctrl_reg_classify(prev, 3, cur, 3, 2), CTRL_REG_BOUNCED);
	assert_int_equal(ctrl_reg_classify(prev, 3, cur, 3, 3), CTRL_REG_DEAD);
	assert_int_equal(ctrl_reg_classify(prev, 3, cur, 3, 4), CTRL_REG_NEW);
	assert_int_equal(ctrl_reg_classify(prev, 3, cur, 3, 5), CTRL_REG_ABSENT);
	assert_int_equal(ctrl_reg_classify(NULL, 0, NULL, 0, 1), CTRL_REG_ABSENT);

	assert_int_equal(ctrl_reg_diff(prev, 3, cur, 3, ids, ch, 8), 4);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ch[0], CTRL_REG_SAME);
	assert_int_equal(ids[1], 2);
	assert_int_equal(ch[1], CTRL_REG_BOUNCED);
	assert_int_equal(ids[2], 3);
	assert_int_equal(ch[2], CTRL_REG_DEAD);
	assert_int_equal(ids[3], 4);
	assert_int_equal(ch[3], CTRL_REG_NEW);
	/* Capacity bounds the output. */
	assert_int_equal(ctrl_reg_diff(prev, 3, cur, 3, ids, ch, 2), 2);
	/* Everything new / everything dead. */
	assert_int_equal(ctrl_reg_diff(NULL, 0, cur, 3, ids, ch, 8), 3);
	assert_int_equal(ch[0], CTRL_REG_NEW);
	assert_int_equal(ch[2], CTRL_REG_NEW);
	assert_int_equal(ctrl_reg_diff(prev, 3, NULL, 0, ids, ch, 8), 3);
	assert_int_equal(ch[1], CTRL_REG_DEAD);
}

/*
 * A bounced broker is handled as a failure (with a view that does not
 * hold it) then a startup: where it led a leader is elected from the
 * others of the ISR, and it leaves every ISR.
 */
static void test_bounced_broker_failure(void **state)
{
	(void)state;
	struct ctrl_cluster c = mk(3);
	const int32_t r[] = { 1, 0, 2 };
	struct ctrl_pstate st[2];
	enum ctrl_change ch[2];
	uint32_t moved[2];

	st[0] = ps_make(r, 3, r, 3, 1, 5);        /* led by the bounced broker 1 */
	st[1] = ps_make(r, 3, r, 3, 0, 7);        /* followed by it */
	g_b[1].alive = false;                     /* the failure half: not in the view */
	assert_int_equal(ctrl_broker_failed(&c, 1, NULL, st, 2, ch, moved), 1);
	assert_int_equal(moved[0], 0);
	assert_int_equal(st[0].leader, 0);
	assert_false(ctrl_pstate_in_isr(&st[0], 1));
	assert_int_equal(st[0].leader_epoch, 6);
	assert_int_equal(st[1].leader, 0);
	assert_false(ctrl_pstate_in_isr(&st[1], 1));
	assert_int_equal(st[1].leader_epoch, 8);
	g_b[1].alive = true;                      /* the startup half */
	/* It rejoins only through AlterPartition from the leader. */
	assert_false(ctrl_pstate_in_isr(&st[0], 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assign_rack_unaware),
		cmocka_unit_test(test_assign_rack_aware),
		cmocka_unit_test(test_assign_rack_full),
		cmocka_unit_test(test_assign_more),
		cmocka_unit_test(test_pstate_init),
		cmocka_unit_test(test_elect_offline),
		cmocka_unit_test(test_elect_controlled_shutdown_and_preferred),
		cmocka_unit_test(test_remove_from_isr),
		cmocka_unit_test(test_broker_failed),
		cmocka_unit_test(test_broker_failed_unclean),
		cmocka_unit_test(test_controlled_shutdown),
		cmocka_unit_test(test_alter_partition),
		cmocka_unit_test(test_broker_epoch_stale),
		cmocka_unit_test(test_reg_diff),
		cmocka_unit_test(test_bounced_broker_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
