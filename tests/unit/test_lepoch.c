/*
 * test_lepoch.c — the leader-epoch cache (replication/lepoch.c): Kafka's
 * assign rules (no-op, non-monotonic entries removed), the
 * OffsetForLeaderEpoch answer in every case, truncation from both ends, the
 * entry bound, the `leader-epoch-checkpoint` file (Kafka's bytes, atomic
 * replace, corrupt files refused), the follower's divergence rule, and the
 * KIP-101 (scenarios 1 and 2) and KIP-279 (fast leader changes) cases
 * replayed on a small in-memory log model.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "lepoch.h"
#include "log.h"

static void expect_entries(const struct lepoch *c, const struct lepoch_entry *want, uint32_t n)
{
	assert_int_equal(c->count, n);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(c->entries[i].epoch, want[i].epoch);
		assert_int_equal(c->entries[i].start_offset, want[i].start_offset);
	}
	lepoch_check(c);
}

static void cache3(struct lepoch *c)
{
	lepoch_init(c, LOG_NO_SHARD);
	assert_int_equal(lepoch_assign(c, 1, 0), 1);
	assert_int_equal(lepoch_assign(c, 3, 10), 1);
	assert_int_equal(lepoch_assign(c, 5, 20), 1);
}

static void test_assign(void **state)
{
	struct lepoch c;

	(void)state;
	cache3(&c);
	/* Same epoch, same or later offset: nothing to record. */
	assert_int_equal(lepoch_assign(&c, 5, 20), 0);
	assert_int_equal(lepoch_assign(&c, 5, 35), 0);
	expect_entries(&c, (const struct lepoch_entry[]){ { 1, 0 }, { 3, 10 }, { 5, 20 } }, 3);
	/* Same epoch at a lower offset replaces the entry. */
	assert_int_equal(lepoch_assign(&c, 5, 15), 1);
	expect_entries(&c, (const struct lepoch_entry[]){ { 1, 0 }, { 3, 10 }, { 5, 15 } }, 3);
	/* A newer epoch starting at or below existing starts removes them. */
	assert_int_equal(lepoch_assign(&c, 6, 10), 1);
	expect_entries(&c, (const struct lepoch_entry[]){ { 1, 0 }, { 6, 10 } }, 2);
	/* An older epoch after a newer one removes the newer entries. */
	assert_int_equal(lepoch_assign(&c, 2, 30), 1);
	expect_entries(&c, (const struct lepoch_entry[]){ { 1, 0 }, { 2, 30 } }, 2);
	assert_int_equal(lepoch_latest_epoch(&c), 2);
	/* No epoch (-1, old batches) or a negative offset: ignored. */
	assert_int_equal(lepoch_assign(&c, LEPOCH_UNDEFINED_EPOCH, 40), -1);
	assert_int_equal(lepoch_assign(&c, 7, -1), -1);
	expect_entries(&c, (const struct lepoch_entry[]){ { 1, 0 }, { 2, 30 } }, 2);
	lepoch_init(&c, LOG_NO_SHARD);
	assert_int_equal(lepoch_latest_epoch(&c), LEPOCH_UNDEFINED_EPOCH);
}

static void eo(const struct lepoch *c, int32_t req, int64_t leo, int32_t want_epoch,
	       int64_t want_off)
{
	int32_t e = 99;
	int64_t o = 99;

	lepoch_end_offset_for(c, req, leo, &e, &o);
	assert_int_equal(e, want_epoch);
	assert_int_equal(o, want_off);
}

static void test_end_offset_for(void **state)
{
	struct lepoch c;

	(void)state;
	lepoch_init(&c, LOG_NO_SHARD);
	eo(&c, 0, 7, LEPOCH_UNDEFINED_EPOCH, LEPOCH_UNDEFINED_OFFSET);   /* empty */
	cache3(&c);                             /* {1@0, 3@10, 5@20} */
	eo(&c, LEPOCH_UNDEFINED_EPOCH, 30, LEPOCH_UNDEFINED_EPOCH, LEPOCH_UNDEFINED_OFFSET);
	eo(&c, 5, 30, 5, 30);                   /* latest: the log end */
	eo(&c, 3, 30, 3, 20);                   /* known: start of the next */
	eo(&c, 1, 30, 1, 10);
	eo(&c, 4, 30, 3, 20);                   /* unknown: largest below + next start */
	eo(&c, 2, 30, 1, 10);
	eo(&c, 0, 30, 0, 0);                    /* older than all: the first start */
	eo(&c, 6, 30, LEPOCH_UNDEFINED_EPOCH, LEPOCH_UNDEFINED_OFFSET);  /* newer than all */
	lepoch_truncate_from_start(&c, 4);      /* {1@4, 3@10, 5@20} */
	eo(&c, 0, 30, 0, 4);
}

static void test_truncate(void **state)
{
	struct lepoch c;

	(void)state;
	cache3(&c);
	lepoch_truncate_from_end(&c, -1);
	lepoch_truncate_from_end(&c, 21);
	expect_entries(&c, (const struct lepoch_entry[]){ { 1, 0 }, { 3, 10 }, { 5, 20 } }, 3);
	lepoch_truncate_from_end(&c, 20);
	expect_entries(&c, (const struct lepoch_entry[]){ { 1, 0 }, { 3, 10 } }, 2);
	lepoch_truncate_from_end(&c, 0);
	assert_int_equal(c.count, 0);

	cache3(&c);
	lepoch_truncate_from_start(&c, 0);      /* nothing before 0 */
	expect_entries(&c, (const struct lepoch_entry[]){ { 1, 0 }, { 3, 10 }, { 5, 20 } }, 3);
	lepoch_truncate_from_start(&c, 15);
	expect_entries(&c, (const struct lepoch_entry[]){ { 3, 15 }, { 5, 20 } }, 2);
	lepoch_truncate_from_start(&c, 20);
	expect_entries(&c, (const struct lepoch_entry[]){ { 5, 20 } }, 1);
	lepoch_truncate_from_start(&c, 25);
	expect_entries(&c, (const struct lepoch_entry[]){ { 5, 25 } }, 1);
	lepoch_truncate_from_start(&c, 3);      /* below the first start: no-op */
	expect_entries(&c, (const struct lepoch_entry[]){ { 5, 25 } }, 1);
}

static void test_entry_bound_drops_oldest(void **state)
{
	struct lepoch *c = malloc(sizeof(*c));

	(void)state;
	assert_non_null(c);
	lepoch_init(c, LOG_NO_SHARD);
	for (int32_t e = 0; e < LEPOCH_ENTRIES_MAX + 5; e++)
		assert_int_equal(lepoch_assign(c, e, 10 * (int64_t)e), 1);
	assert_int_equal(c->count, LEPOCH_ENTRIES_MAX);
	assert_int_equal(c->entries[0].epoch, 5);
	assert_int_equal(lepoch_latest_epoch(c), LEPOCH_ENTRIES_MAX + 4);
	lepoch_check(c);
	free(c);
}

/* ---- the file ---- */

struct tdir {
	char path[64];
	int fd;
};

static void tdir_make(struct tdir *d)
{
	strcpy(d->path, "/tmp/sl-lepoch-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	d->fd = open(d->path, O_RDONLY | O_DIRECTORY);
	assert_true(d->fd >= 0);
}

static void tdir_put(struct tdir *d, const char *text)
{
	int fd = openat(d->fd, LEPOCH_FILE_NAME, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void tdir_remove(struct tdir *d)
{
	(void)unlinkat(d->fd, LEPOCH_FILE_NAME, 0);
	close(d->fd);
	assert_int_equal(rmdir(d->path), 0);
}

static void test_file_roundtrip(void **state)
{
	const char *kafka = "0\n3\n1 0\n3 10\n5 20\n";
	struct tdir d;
	struct lepoch c, r;
	char buf[128];
	ssize_t n;
	int fd;

	(void)state;
	tdir_make(&d);
	lepoch_init(&r, LOG_NO_SHARD);
	assert_int_equal(lepoch_read(&r, d.fd), SL_ENOTFOUND);
	cache3(&c);
	assert_int_equal(lepoch_write(&c, d.fd), SL_OK);
	fd = openat(d.fd, LEPOCH_FILE_NAME, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, kafka);          /* Kafka's bytes exactly */
	assert_int_equal(faccessat(d.fd, LEPOCH_FILE_NAME ".tmp", F_OK, 0), -1);
	assert_int_equal(lepoch_read(&r, d.fd), SL_OK);
	expect_entries(&r, c.entries, 3);
	/* Empty cache: "0\n0\n". */
	lepoch_init(&c, LOG_NO_SHARD);
	assert_int_equal(lepoch_write(&c, d.fd), SL_OK);
	assert_int_equal(lepoch_read(&r, d.fd), SL_OK);
	assert_int_equal(r.count, 0);
	/* A non-monotonic file loads the way Kafka's assign loads it. */
	tdir_put(&d, "0\n2\n3 10\n2 20\n");
	assert_int_equal(lepoch_read(&r, d.fd), SL_OK);
	expect_entries(&r, (const struct lepoch_entry[]){ { 2, 20 } }, 1);
	tdir_remove(&d);
}

static void test_file_corrupt(void **state)
{
	static const char *const bad[] = {
		"",
		"1\n0\n",                 /* version */
		"0\n2\n1 0\n",            /* fewer entries than counted */
		"0\n1\n1 0\n3 10\n",      /* more */
		"0\n1\n1 0",              /* no final newline */
		"0\n1\n1 -4\n",           /* negative offset */
		"0\n1\n-1 4\n",           /* negative epoch */
		"0\n1\n1 x\n",
		"0\n1\n1  4\n",
		"0\n1\n1\t4\n",
		"0\n1\n2147483648 4\n",   /* epoch beyond int32 */
		"0\n1\n1 99999999999999999999\n",
		"0\n99999\n",             /* count beyond the bound */
		"0\n-1\n",
	};
	struct tdir d;
	struct lepoch r;

	(void)state;
	tdir_make(&d);
	log_level_set(LOG_OFF);
	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		cache3(&r);
		tdir_put(&d, bad[i]);
		assert_int_equal(lepoch_read(&r, d.fd), SL_ECORRUPT);
		assert_int_equal(r.count, 0);
	}
	log_level_set(LOG_INFO);
	tdir_remove(&d);
}

/* ---- divergence ---- */

static void test_divergence_rules(void **state)
{
	struct lepoch c;
	int64_t off = -5;

	(void)state;
	cache3(&c);                               /* {1@0, 3@10, 5@20}, LEO 30 */
	/* Leader knows nothing: the HW. */
	assert_int_equal(lepoch_divergence(&c, 30, 12, LEPOCH_UNDEFINED_EPOCH,
					   LEPOCH_UNDEFINED_OFFSET, &off), LEPOCH_TRUNCATE_DONE);
	assert_int_equal(off, 12);
	/* Old protocol answer (no epoch): its offset, at most our LEO. */
	assert_int_equal(lepoch_divergence(&c, 30, 12, LEPOCH_UNDEFINED_EPOCH, 25, &off),
			 LEPOCH_TRUNCATE_DONE);
	assert_int_equal(off, 25);
	assert_int_equal(lepoch_divergence(&c, 30, 12, LEPOCH_UNDEFINED_EPOCH, 45, &off),
			 LEPOCH_TRUNCATE_DONE);
	assert_int_equal(off, 30);
	/* Same epoch, leader's end smaller / larger than ours. */
	assert_int_equal(lepoch_divergence(&c, 30, 12, 5, 27, &off), LEPOCH_TRUNCATE_DONE);
	assert_int_equal(off, 27);
	assert_int_equal(lepoch_divergence(&c, 30, 12, 5, 40, &off), LEPOCH_TRUNCATE_DONE);
	assert_int_equal(off, 30);
	/* Leader answers a smaller epoch we have: min of both ends. */
	assert_int_equal(lepoch_divergence(&c, 30, 12, 3, 25, &off), LEPOCH_TRUNCATE_DONE);
	assert_int_equal(off, 20);
	assert_int_equal(lepoch_divergence(&c, 30, 12, 3, 15, &off), LEPOCH_TRUNCATE_DONE);
	assert_int_equal(off, 15);
	/* Leader answers epoch 4 we never saw: cut to the end of our epoch 3, ask again. */
	assert_int_equal(lepoch_divergence(&c, 30, 12, 4, 25, &off), LEPOCH_TRUNCATE_AGAIN);
	assert_int_equal(off, 20);
	/* No entries at all: trust the leader's offset. */
	lepoch_init(&c, LOG_NO_SHARD);
	assert_int_equal(lepoch_divergence(&c, 30, 12, 4, 25, &off), LEPOCH_TRUNCATE_DONE);
	assert_int_equal(off, 25);
}

/* ---- an in-memory log: one record per offset, tagged with its epoch ---- */

#define MLOG_MAX 64

struct mlog {
	int64_t leo;
	int64_t hw;
	int32_t epoch[MLOG_MAX];
	char rec[MLOG_MAX][8];
	struct lepoch cache;
};

static void mlog_init(struct mlog *l)
{
	memset(l, 0, sizeof(*l));
	lepoch_init(&l->cache, LOG_NO_SHARD);
}

static void mlog_append(struct mlog *l, int32_t epoch, const char *rec)
{
	assert_true(l->leo < MLOG_MAX);
	(void)lepoch_assign(&l->cache, epoch, l->leo);
	l->epoch[l->leo] = epoch;
	snprintf(l->rec[l->leo], sizeof(l->rec[0]), "%s", rec);
	l->leo++;
}

static void mlog_truncate(struct mlog *l, int64_t to)
{
	assert_true(to >= 0 && to <= l->leo);
	l->leo = to;
	l->hw = SL_MIN(l->hw, to);
	lepoch_truncate_from_end(&l->cache, to);
}

/*
 * `f` becomes a follower of `leader`: the OffsetForLeaderEpoch rounds until
 * DONE (at most 8), then it fetches everything. Returns the rounds taken.
 */
static int mlog_follow(struct mlog *f, const struct mlog *leader)
{
	int rounds = 0;

	for (; rounds < 8; rounds++) {
		int32_t e;
		int64_t end, to;
		enum lepoch_truncation t;

		if (f->cache.count == 0) {
			mlog_truncate(f, f->hw);
			break;
		}
		lepoch_end_offset_for(&leader->cache, lepoch_latest_epoch(&f->cache), leader->leo,
				      &e, &end);
		t = lepoch_divergence(&f->cache, f->leo, f->hw, e, end, &to);
		mlog_truncate(f, to);
		if (t == LEPOCH_TRUNCATE_DONE)
			break;
	}
	assert_true(rounds < 8);
	for (int64_t o = f->leo; o < leader->leo; o++)
		mlog_append(f, leader->epoch[o], leader->rec[o]);
	f->hw = leader->hw;
	return rounds + 1;
}

static void mlog_assert_same(const struct mlog *a, const struct mlog *b)
{
	assert_int_equal(a->leo, b->leo);
	for (int64_t o = 0; o < a->leo; o++) {
		assert_string_equal(a->rec[o], b->rec[o]);
		assert_int_equal(a->epoch[o], b->epoch[o]);
	}
	expect_entries(&a->cache, b->cache.entries, b->cache.count);
}

/*
 * KIP-101 scenario 1: the follower's HW lags its log. B has m1, m2 but its
 * HW is still 1 when it restarts; truncating to the HW would drop m2, which
 * A acknowledged (A's HW is 2), and then A dies. With epochs B keeps m2.
 */
static void test_kip101_scenario1_no_loss(void **state)
{
	struct mlog a, b;

	(void)state;
	mlog_init(&a);
	mlog_init(&b);
	mlog_append(&a, 0, "m1");
	mlog_append(&a, 0, "m2");
	a.hw = 2;
	mlog_append(&b, 0, "m1");
	mlog_append(&b, 0, "m2");
	b.hw = 1;
	/* B restarts and follows A again. */
	assert_int_equal(mlog_follow(&b, &a), 1);
	assert_int_equal(b.leo, 2);               /* not truncated to its HW (1) */
	/* A dies, B leads epoch 1 and still has the acknowledged m2. */
	mlog_append(&b, 1, "m3");
	assert_string_equal(b.rec[1], "m2");
	/* A comes back as a follower of B and ends up identical. */
	mlog_follow(&a, &b);
	mlog_assert_same(&a, &b);
}

/*
 * KIP-101 scenario 2: divergent logs. A (leader, epoch 0) has m1, m2; B has
 * only m1. Both crash; B returns first, leads epoch 1 and writes m3 at
 * offset 1. A returns as follower: it must drop m2 and take m3, not keep
 * m2 at the offset where B has m3.
 */
static void test_kip101_scenario2_divergence(void **state)
{
	struct mlog a, b;

	(void)state;
	mlog_init(&a);
	mlog_init(&b);
	mlog_append(&a, 0, "m1");
	mlog_append(&a, 0, "m2");
	a.hw = 2;
	mlog_append(&b, 0, "m1");
	b.hw = 1;
	mlog_append(&b, 1, "m3");                 /* B leads epoch 1 */
	assert_int_equal(mlog_follow(&a, &b), 1);
	assert_string_equal(a.rec[1], "m3");
	mlog_assert_same(&a, &b);
}

/*
 * KIP-279: fast leader changes. A leads epoch 1: m1 (replicated to B) and
 * m2 (not). B leads epoch 2 and writes m3 at offset 1 (not replicated),
 * then dies; A leads epoch 3 and writes m4. B returns: it asks about its
 * epoch 2, which A never had. Before KIP-279 A answered 2 (the start of its
 * next epoch) and B kept m3 at offset 1 where A has m2; now A answers
 * (epoch 1, 2) and B truncates to the end of its own epoch 1.
 */
static void test_kip279_fast_leader_changes(void **state)
{
	struct mlog a, b;
	int32_t e;
	int64_t end;

	(void)state;
	mlog_init(&a);
	mlog_init(&b);
	mlog_append(&a, 1, "m1");
	mlog_append(&b, 1, "m1");
	mlog_append(&a, 1, "m2");
	mlog_append(&b, 2, "m3");
	mlog_append(&a, 3, "m4");
	lepoch_end_offset_for(&a.cache, 2, a.leo, &e, &end);
	assert_int_equal(e, 1);
	assert_int_equal(end, 2);
	assert_int_equal(mlog_follow(&b, &a), 1);
	assert_string_equal(b.rec[1], "m2");
	mlog_assert_same(&b, &a);
}

/* The iterative case: the leader answers an epoch the follower lacks. */
static void test_divergence_iterates(void **state)
{
	struct mlog l, f;

	(void)state;
	mlog_init(&l);
	mlog_init(&f);
	for (int i = 0; i < 3; i++) {
		mlog_append(&l, 0, "a");
		mlog_append(&f, 0, "a");
	}
	/* Leader: epoch 1 at 3..7, epoch 3 from 8. Follower: epoch 0 up to 4,
	 * then its own epoch 2 at 5..7 that nobody else saw. */
	for (int i = 3; i < 8; i++)
		mlog_append(&l, 1, "b");
	mlog_append(&l, 3, "d");
	mlog_append(&l, 3, "d");
	mlog_append(&f, 0, "x");
	mlog_append(&f, 0, "x");
	for (int i = 5; i < 8; i++)
		mlog_append(&f, 2, "c");
	/* Round 1: asks epoch 2 -> (1, 8); it lacks 1 -> cut at 5, ask again.
	 * Round 2: asks epoch 0 -> (0, 3) -> cut at 3. */
	assert_int_equal(mlog_follow(&f, &l), 2);
	mlog_assert_same(&f, &l);
}

/* A follower with no epochs at all falls back to its high watermark. */
static void test_no_epochs_truncates_to_hw(void **state)
{
	struct mlog l, f;

	(void)state;
	mlog_init(&l);
	mlog_init(&f);
	mlog_append(&l, 0, "a");
	mlog_append(&l, 0, "b");
	f.leo = 2;
	snprintf(f.rec[0], sizeof(f.rec[0]), "a");
	snprintf(f.rec[1], sizeof(f.rec[1]), "z");
	f.hw = 1;
	assert_int_equal(mlog_follow(&f, &l), 1);
	assert_int_equal(f.leo, 2);
	assert_string_equal(f.rec[1], "b");
	/* Its cache starts where it started tracking: offset 1. */
	expect_entries(&f.cache, (const struct lepoch_entry[]){ { 0, 1 } }, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assign),
		cmocka_unit_test(test_end_offset_for),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_entry_bound_drops_oldest),
		cmocka_unit_test(test_file_roundtrip),
		cmocka_unit_test(test_file_corrupt),
		cmocka_unit_test(test_divergence_rules),
		cmocka_unit_test(test_kip101_scenario1_no_loss),
		cmocka_unit_test(test_kip101_scenario2_divergence),
		cmocka_unit_test(test_kip279_fast_leader_changes),
		cmocka_unit_test(test_divergence_iterates),
		cmocka_unit_test(test_no_epochs_truncates_to_hw),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
