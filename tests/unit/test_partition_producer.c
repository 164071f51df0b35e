/*
 * test_partition_producer.c — the idempotent-producer checks of
 * partition_append (net/partition.h) on a one-shard group: a retried batch
 * answered with its original offset and not written (pipelined behind its
 * original, and after it completed), sequence gaps, fenced epochs, two
 * batches from one idempotent producer, transactional batches, and the
 * state surviving a close/reopen (snapshot at clean close).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "io_testutil.h"

#include "batch.h"
#include "batch_build.h"
#include "catalog.h"
#include "kerr.h"
#include "partition.h"
#include "shard.h"

#define DRIVE_TURNS_MAX 100000
#define PID 7

struct app {
	struct partition_append a;      /* first: container */
	uint8_t buf[512];
	int done;
};

static void app_done(struct partition_append *a)
{
	struct app *x = (struct app *)(void *)a;

	x->done++;
}

static void drive_until(struct shard *sh, const int *flag)
{
	for (int i = 0; i < DRIVE_TURNS_MAX && *flag < 1; i++)
		assert_int_equal(shard_run_once(sh, 1000000), SL_OK);
	assert_int_equal(*flag, 1);
}

/* One batch of `records` records from producer PID at `buf`. */
static size_t build(uint8_t *buf, size_t cap, int16_t epoch, int32_t seq, int32_t records,
		    int16_t attributes)
{
	struct batch_builder b;
	/* Now: the producer state expires producers idle for a day (by batch time). */
	int64_t now_ms = (int64_t)time(NULL) * 1000;

	batch_builder_init(&b, buf, cap);
	batch_builder_set_producer(&b, PID, epoch, seq);
	b.attributes = attributes;
	for (int32_t i = 0; i < records; i++)
		assert_int_equal(batch_builder_add(&b, now_ms + i, "k", 1, "v", 1, NULL, 0), SL_OK);
	size_t n = batch_builder_finish(&b);
	assert_true(n > 0);
	return n;
}

static void app_init(struct app *x, int16_t epoch, int32_t seq, int32_t records)
{
	memset(x, 0, sizeof(*x));
	x->a.len = build(x->buf, sizeof(x->buf), epoch, seq, records, 0);
	x->a.buf = x->buf;
	x->a.done = app_done;
}

/* Appends and waits for done; returns the error code, *base the offset. */
static int16_t append_wait(struct shard *sh, struct partition *p, struct app *x, int64_t *base)
{
	int16_t kerr = partition_append(p, &x->a);

	if (kerr != KERR_NONE)
		return kerr;
	assert_int_equal(x->done, 0);   /* never synchronously */
	drive_until(sh, &x->done);
	*base = x->a.base_offset;
	return x->a.error_code;
}

static int64_t end_of(struct partition *p)
{
	struct partition_offsets o;

	assert_int_equal(partition_offsets(p, &o), KERR_NONE);
	return o.high_watermark;
}

static void test_producer_checks(void **state)
{
	struct shard_group_options opt;
	struct shard_group *g;
	struct shard *sh;
	struct iot_dir d;
	struct catalog *cat;
	struct catalog_snap *snap;
	struct kuuid id;
	struct partition_set ps;
	struct plog_config cfg;
	static struct app a1, a2, x;
	int64_t base = -1;

	(void)state;
	iot_dir_make(&d);
	assert_int_equal(catalog_open(&cat, d.base, NULL, NULL), SL_OK);
	assert_int_equal(catalog_topic_create(cat, "t", 1, 1, 0, &id), SL_OK);
	assert_int_equal(catalog_snapshot(cat, &snap), SL_OK);
	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 1;
	assert_int_equal(shard_group_create(&g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(g), SL_OK);
	sh = shard_group_shard(g, 0);
	plog_config_default(&cfg);
	assert_int_equal(partition_set_init(&ps, sh, &cfg, d.base, 60000), SL_OK);
	assert_int_equal(partition_set_sync(&ps, snap), SL_OK);
	struct partition *p = partition_set_find(&ps, &id, 0);
	assert_non_null(p);

	/* a retry pipelined right behind its original: same offset, one write */
	app_init(&a1, 0, 0, 3);
	app_init(&a2, 0, 0, 3);
	assert_int_equal(partition_append(p, &a1.a), KERR_NONE);
	assert_int_equal(partition_append(p, &a2.a), KERR_NONE);
	drive_until(sh, &a1.done);
	drive_until(sh, &a2.done);
	assert_int_equal(a1.a.error_code, KERR_NONE);
	assert_int_equal(a2.a.error_code, KERR_NONE);
	assert_int_equal(a1.a.base_offset, 0);
	assert_int_equal(a2.a.base_offset, 0);
	assert_int_equal(end_of(p), 3);

	/* a retry after completion */
	app_init(&x, 0, 0, 3);
	assert_int_equal(append_wait(sh, p, &x, &base), KERR_NONE);
	assert_int_equal(base, 0);
	assert_int_equal(end_of(p), 3);

	/* the next batch, then a gap and a fenced epoch */
	app_init(&x, 0, 3, 2);
	assert_int_equal(append_wait(sh, p, &x, &base), KERR_NONE);
	assert_int_equal(base, 3);
	app_init(&x, 0, 9, 1);
	assert_int_equal(append_wait(sh, p, &x, &base), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	app_init(&x, 1, 0, 1);
	assert_int_equal(append_wait(sh, p, &x, &base), KERR_NONE);
	assert_int_equal(base, 5);
	app_init(&x, 0, 5, 1);
	assert_int_equal(append_wait(sh, p, &x, &base), KERR_INVALID_PRODUCER_EPOCH);

	/* two batches in one set; a transactional batch */
	memset(&x, 0, sizeof(x));
	size_t n1 = build(x.buf, sizeof(x.buf), 1, 1, 1, 0);
	size_t n2 = build(x.buf + n1, sizeof(x.buf) - n1, 1, 2, 1, 0);
	x.a.buf = x.buf;
	x.a.len = n1 + n2;
	x.a.done = app_done;
	assert_int_equal(partition_append(p, &x.a), KERR_INVALID_RECORD);
	memset(&x, 0, sizeof(x));
	x.a.len = build(x.buf, sizeof(x.buf), 1, 1, 1, BATCH_ATTR_TRANSACTIONAL);
	x.a.buf = x.buf;
	x.a.done = app_done;
	assert_int_equal(partition_append(p, &x.a), KERR_INVALID_TXN_STATE);
	assert_int_equal(x.done, 0);
	assert_int_equal(end_of(p), 6);

	/* close (snapshot) and reopen: the state is back */
	partition_set_close(&ps);
	assert_int_equal(partition_set_init(&ps, sh, &cfg, d.base, 60000), SL_OK);
	assert_int_equal(partition_set_sync(&ps, snap), SL_OK);
	p = partition_set_find(&ps, &id, 0);
	assert_non_null(p);
	char path[700];
	snprintf(path, sizeof(path), "%s/t-0/%020d%s", d.base, 6, PRODUCER_STATE_SNAPSHOT_EXT);
	assert_int_equal(access(path, F_OK), 0);
	app_init(&x, 1, 0, 1);
	assert_int_equal(append_wait(sh, p, &x, &base), KERR_NONE);
	assert_int_equal(base, 5);
	app_init(&x, 1, 2, 1);
	assert_int_equal(append_wait(sh, p, &x, &base), KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
	app_init(&x, 1, 1, 1);
	assert_int_equal(append_wait(sh, p, &x, &base), KERR_NONE);
	assert_int_equal(base, 6);
	assert_int_equal(end_of(p), 7);

	partition_set_close(&ps);
	shard_group_stop(g);
	assert_int_equal(shard_group_join(g), SL_OK);
	shard_group_destroy(g);
	catalog_snap_free(snap);
	catalog_close(cat);
	iot_dir_remove(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_producer_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
