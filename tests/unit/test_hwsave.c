/*
 * test_hwsave.c — replication/hwsave.c's pure parts: splitting a partition
 * directory into (log dir, topic, partition), writing one
 * replication-offset-checkpoint per log dir from several shards'
 * snapshots, the merge rule (unreported entries kept only while their
 * partition directory exists), and reading a partition's HW back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "hwcheck.h"
#include "hwsave.h"

struct fx {
	char root[64];
	char d0[128], d1[128];
	char dirs[300];
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->root, "/tmp/sl-hwsave-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	snprintf(f->d0, sizeof(f->d0), "%s/log0", f->root);
	snprintf(f->d1, sizeof(f->d1), "%s/log1", f->root);
	assert_int_equal(mkdir(f->d0, 0700), 0);
	assert_int_equal(mkdir(f->d1, 0700), 0);
	snprintf(f->dirs, sizeof(f->dirs), "%s,%s", f->d0, f->d1);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void mkpart(const char *dir, const char *name)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(mkdir(p, 0700), 0);
}

static void test_entry_of(void **state)
{
	struct fx *f = *state;
	struct hwsave_entry e;
	char pd[256];

	snprintf(pd, sizeof(pd), "%s/my-topic-12", f->d1);
	assert_int_equal(hwsave_entry_of(f->dirs, pd, 12, &e), SL_OK);
	assert_string_equal(e.topic, "my-topic");
	assert_int_equal(e.partition, 12);
	assert_int_equal(e.dir, 1);
	snprintf(pd, sizeof(pd), "%s/t-0", f->d0);
	assert_int_equal(hwsave_entry_of(f->dirs, pd, 0, &e), SL_OK);
	assert_string_equal(e.topic, "t");
	assert_int_equal(e.dir, 0);
	/* Index mismatch, no topic, not under a log dir. */
	assert_int_equal(hwsave_entry_of(f->dirs, pd, 1, &e), SL_ENOTFOUND);
	snprintf(pd, sizeof(pd), "%s/-0", f->d0);
	assert_int_equal(hwsave_entry_of(f->dirs, pd, 0, &e), SL_ENOTFOUND);
	assert_int_equal(hwsave_entry_of(f->dirs, "/elsewhere/t-0", 0, &e), SL_ENOTFOUND);
	assert_int_equal(hwsave_entry_of(f->dirs, "t-0", 0, &e), SL_ENOTFOUND);
}

static void add(struct hwsave_snap **s, const char *topic, int32_t part, int64_t hw, int32_t dir)
{
	struct hwsave_entry e = { .partition = part, .hw = hw, .dir = dir };
	snprintf(e.topic, sizeof(e.topic), "%s", topic);
	assert_int_equal(hwsave_snap_add(s, &e), SL_OK);
}

static int64_t lookup(struct fx *f, const char *dir, const char *topic, int32_t part)
{
	char pd[256];
	int64_t hw = -7;
	snprintf(pd, sizeof(pd), "%s/%s-%d", dir, topic, part);
	enum sl_err err = hwsave_lookup(f->dirs, pd, part, &hw, 0);
	if (err == SL_ENOTFOUND)
		return -1;
	assert_int_equal(err, SL_OK);
	return hw;
}

static void test_write_two_shards_two_dirs(void **state)
{
	struct fx *f = *state;
	struct hwsave_snap *snaps[3] = { NULL, NULL, NULL };

	/* No file yet. */
	assert_int_equal(lookup(f, f->d0, "a", 0), -1);
	for (int i = 0; i < 40; i++)   /* grows the snapshot past its first block */
		add(&snaps[0], "a", i, 100 + i, 0);
	add(&snaps[2], "b.x_y", 3, 7, 1);
	add(&snaps[2], "c", 0, 0, 1);
	assert_int_equal(hwsave_write_dirs(f->dirs, snaps, 3, 0), SL_OK);
	for (int i = 0; i < 40; i++)
		assert_int_equal(lookup(f, f->d0, "a", i), 100 + i);
	assert_int_equal(lookup(f, f->d1, "b.x_y", 3), 7);
	assert_int_equal(lookup(f, f->d1, "c", 0), 0);
	/* Per log dir: a's entries are not in log1's file. */
	assert_int_equal(lookup(f, f->d1, "a", 0), -1);
	/* The file itself is Kafka's format, sorted. */
	char path[256], buf[64];
	snprintf(path, sizeof(path), "%s/%s", f->d1, HWCHECK_FILE_NAME);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	assert_string_equal(buf, "0\n2\nb.x_y 3 7\nc 0 0\n");
	free(snaps[0]);
	free(snaps[2]);
}

static void test_merge_rule(void **state)
{
	struct fx *f = *state;
	struct hwsave_snap *snaps[1] = { NULL };

	/* Old file: kept-1 (dir exists), gone-0 (no dir), t-0 (reported anew). */
	add(&snaps[0], "kept", 1, 55, 0);
	add(&snaps[0], "gone", 0, 66, 0);
	add(&snaps[0], "t", 0, 10, 0);
	assert_int_equal(hwsave_write_dirs(f->dirs, snaps, 1, 0), SL_OK);
	free(snaps[0]);
	snaps[0] = NULL;
	mkpart(f->d0, "kept-1");
	add(&snaps[0], "t", 0, 20, 0);
	assert_int_equal(hwsave_write_dirs(f->dirs, snaps, 1, 0), SL_OK);
	assert_int_equal(lookup(f, f->d0, "t", 0), 20);
	assert_int_equal(lookup(f, f->d0, "kept", 1), 55);
	assert_int_equal(lookup(f, f->d0, "gone", 0), -1);
	/* Nothing reported at all: the kept entry survives, t-0 (no dir) goes. */
	free(snaps[0]);
	snaps[0] = NULL;
	assert_int_equal(hwsave_write_dirs(f->dirs, snaps, 1, 0), SL_OK);
	assert_int_equal(lookup(f, f->d0, "kept", 1), 55);
	assert_int_equal(lookup(f, f->d0, "t", 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_entry_of, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_two_shards_two_dirs, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_merge_rule, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
