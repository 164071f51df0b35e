/*
 * test_partition.c — a shard's partition set (net/partition.h) on a local
 * one-shard group: ownership hashing, opening partitions from a catalog
 * snapshot (directories, partition.metadata), appends in call order past
 * the plog's in-flight limit (parking), fetch waiters woken by data and by
 * closing, reads and offsets, closing partitions whose topic left the
 * snapshot and reopening them with their data.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "io_testutil.h"

#include "catalog.h"
#include "kerr.h"
#include "partition.h"
#include "shard.h"

#define APPENDS (PLOG_APPENDS_INFLIGHT_MAX + 60)
#define DRIVE_TURNS_MAX 100000

struct app {
	struct partition_append a;
	int done;
	int order;
};

static int done_order;

static void app_done(struct partition_append *a)
{
	struct app *x = (struct app *)(void *)a;

	x->done++;
	x->order = done_order++;
}

static int woke;

static void waiter_fn(struct partition_waiter *w)
{
	(void)w;
	woke++;
}

static void drive_until(struct shard *sh, const int *flag, int want)
{
	for (int i = 0; i < DRIVE_TURNS_MAX && *flag < want; i++)
		assert_int_equal(shard_run_once(sh, 1000000), SL_OK);
	assert_true(*flag >= want);
}

static void test_owner_hash(void **state)
{
	uint32_t counts[8];
	struct kuuid id;

	(void)state;
	for (uint32_t n = 1; n <= 8; n++) {
		memset(counts, 0, sizeof(counts));
		for (int t = 0; t < 1000; t++) {
			for (int i = 0; i < 16; i++)
				id.b[i] = (uint8_t)(t * 31 + i * 7);
			for (int32_t p = 0; p < 6; p++) {
				uint32_t o = partition_owner(&id, p, n);
				assert_true(o < n);
				assert_int_equal(o, partition_owner(&id, p, n));   /* stable */
				counts[o]++;
			}
		}
		for (uint32_t s = 0; s < n; s++) {
			/* 6000 partitions: each shard within 20% of its share */
			assert_true(counts[s] > 6000 / n * 8 / 10);
			assert_true(counts[s] < 6000 / n * 12 / 10);
		}
	}
}

static void test_partitions_on_a_shard(void **state)
{
	struct shard_group_options opt;
	struct shard_group *g;
	struct shard *sh;
	struct iot_dir d;
	struct catalog *cat;
	struct catalog_snap *snap, *empty;
	struct kuuid id;
	struct partition_set ps;
	struct plog_config cfg;
	struct partition_offsets offs;
	struct plog_slice slice;
	static uint8_t batch[APPENDS][256];
	static struct app apps[APPENDS];
	char path[600];

	(void)state;
	iot_dir_make(&d);
	assert_int_equal(catalog_open(&cat, d.base, NULL, NULL), SL_OK);
	assert_int_equal(catalog_topic_create(cat, "t", 1, 3, 0, &id), SL_OK);
	assert_int_equal(catalog_snapshot(cat, &snap), SL_OK);
	assert_int_equal(catalog_topic_delete(cat, "t", 1), SL_OK);
	assert_int_equal(catalog_snapshot(cat, &empty), SL_OK);

	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 1;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_OK);
	sh = shard_group_shard(g, 0);

	plog_config_default(&cfg);
	cfg.segment_bytes = 16 * 1024;   /* several segments */
	assert_int_equal(partition_set_init(&ps, sh, &cfg, d.base, 60000), SL_OK);
	assert_int_equal(partition_set_sync(&ps, snap), SL_OK);
	assert_int_equal(ps.count, 3);
	for (int32_t i = 0; i < 3; i++) {
		assert_non_null(partition_set_find(&ps, &id, i));
		snprintf(path, sizeof(path), "%s/t-%d", d.base, i);
		struct kuuid back;
		assert_int_equal(catalog_partition_metadata_read(path, &back), SL_OK);
		assert_memory_equal(back.b, id.b, 16);
	}
	assert_null(partition_set_find(&ps, &id, 3));
	assert_null(partition_set_find(&ps, &id, -1));

	/* a waiter on partition 0 wakes when data arrives, once */
	struct partition *p0 = partition_set_find(&ps, &id, 0);
	struct partition_waiter w = { 0 };
	partition_wait(p0, &w, waiter_fn);
	woke = 0;
	/* appends in call order, more than the plog takes at once */
	for (int i = 0; i < APPENDS; i++) {
		size_t len = iot_batch(batch[i], sizeof(batch[i]), 2, 1000 + i, 20, (uint8_t)i);
		apps[i].a.buf = batch[i];
		apps[i].a.len = len;
		apps[i].a.done = app_done;
		assert_int_equal(partition_append(p0, &apps[i].a), KERR_NONE);
		assert_int_equal(apps[i].done, 0);   /* never synchronously */
	}
	drive_until(sh, &apps[APPENDS - 1].done, 1);
	for (int i = 0; i < APPENDS; i++) {
		assert_int_equal(apps[i].done, 1);
		assert_int_equal(apps[i].a.error_code, KERR_NONE);
		assert_int_equal(apps[i].a.base_offset, 2 * i);
		assert_int_equal(apps[i].order, i);
		assert_int_equal(apps[i].a.log_start_offset, 0);
	}
	assert_int_equal(woke, 1);
	assert_null(w.p);

	assert_int_equal(partition_offsets(p0, &offs), KERR_NONE);
	assert_int_equal(offs.high_watermark, 2 * APPENDS);
	assert_int_equal(offs.last_stable_offset, 2 * APPENDS);
	assert_int_equal(offs.log_start_offset, 0);
	assert_int_equal(partition_read(p0, 5, 1 << 20, &slice), KERR_NONE);
	assert_true(slice.len > 0 && slice.fd >= 0);
	assert_int_equal(slice.first_offset, 4);   /* the batch holding offset 5 */
	plog_slice_release(&slice);
	assert_int_equal(partition_read(p0, 2 * APPENDS, 1 << 20, &slice), KERR_NONE);
	assert_int_equal(slice.len, 0);
	assert_int_equal(partition_read(p0, 2 * APPENDS + 1, 1 << 20, &slice),
			 KERR_OFFSET_OUT_OF_RANGE);

	/* the topic leaves the snapshot: its partitions close, waiters wake */
	struct partition *p1 = partition_set_find(&ps, &id, 1);
	partition_wait(p1, &w, waiter_fn);
	woke = 0;
	assert_int_equal(partition_set_sync(&ps, empty), SL_OK);
	assert_int_equal(woke, 1);
	assert_int_equal(ps.count, 0);
	assert_null(partition_set_find(&ps, &id, 0));
	/* it comes back with its data */
	assert_int_equal(partition_set_sync(&ps, snap), SL_OK);
	p0 = partition_set_find(&ps, &id, 0);
	assert_non_null(p0);
	assert_int_equal(partition_offsets(p0, &offs), KERR_NONE);
	assert_int_equal(offs.high_watermark, 2 * APPENDS);

	partition_set_close(&ps);
	partition_set_close(&ps);   /* idempotent */
	assert_null(partition_set_find(&ps, &id, 0));
	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	shard_group_destroy(g);
	catalog_snap_free(snap);
	catalog_snap_free(empty);
	catalog_close(cat);
	iot_dir_remove(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner_hash),
		cmocka_unit_test(test_partitions_on_a_shard),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
