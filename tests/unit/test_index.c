/*
 * test_index.c — io/index.c: the mmapped offset and time indexes, their
 * Kafka byte format, lookups (exact, between entries, before the first,
 * after the last), sealing (trim) and reopening (valid-prefix counting of
 * zero-filled, corrupt and partial files).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "index.h"
#include "io_testutil.h"

static int64_t file_size_at(struct iot_dir_fixture *f, const char *name)
{
	char p[IOT_PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", f->d.base, name);
	return iot_file_size(p);
}

/* Entries (rel, pos): (10,100) (20,200) ... (50,500). */
static void fill_offsets(struct index *idx)
{
	for (int i = 1; i <= 5; i++)
		index_offset_append(idx, i * 10, i * 100);
}

static void test_offset_lookup(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct index idx;
	int existed = 1;
	int32_t rel, pos;

	assert_int_equal(index_open(&idx, f->dirfd, "a.index", INDEX_KIND_OFFSET, &existed), SL_OK);
	assert_false(existed);
	assert_int_equal(idx.count, 0);
	assert_int_equal(index_offset_lookup(&idx, 5), -1);   /* empty */
	assert_int_equal(index_activate(&idx, 80), SL_OK);    /* 10 entries */
	assert_int_equal(idx.count_max, 10);
	assert_int_equal(file_size_at(f, "a.index"), 80);     /* preallocated */
	fill_offsets(&idx);

	assert_int_equal(index_offset_lookup(&idx, 30), 2);   /* exact */
	index_offset_get(&idx, 2, &rel, &pos);
	assert_int_equal(rel, 30);
	assert_int_equal(pos, 300);
	assert_int_equal(index_offset_lookup(&idx, 35), 2);   /* between */
	assert_int_equal(index_offset_lookup(&idx, 9), -1);   /* before the first */
	assert_int_equal(index_offset_lookup(&idx, -3), -1);
	assert_int_equal(index_offset_lookup(&idx, 10), 0);   /* first, exact */
	assert_int_equal(index_offset_lookup(&idx, 999), 4);  /* after the last */
	assert_int_equal(index_offset_lookup(&idx, (int64_t)INT32_MAX + 5), 4);
	assert_int_equal(index_offset_count_below(&idx, 30), 2);
	assert_int_equal(index_offset_count_below(&idx, 31), 3);
	assert_int_equal(index_offset_count_below(&idx, 0), 0);
	assert_int_equal(index_offset_count_below(&idx, 1000), 5);

	/* Kafka's byte format: int32 BE relative offset, int32 BE position. */
	uint8_t raw[80];
	char p[IOT_PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/a.index", f->d.base);
	assert_int_equal(index_seal(&idx), SL_OK);
	assert_int_equal(file_size_at(f, "a.index"), 40);      /* trimmed */
	assert_int_equal(iot_read_file(p, raw, sizeof(raw)), 40);
	assert_int_equal(be32_load(raw + 16), 30);
	assert_int_equal(be32_load(raw + 20), 300);
	assert_int_equal(index_offset_lookup(&idx, 45), 3);    /* still readable sealed */
	index_close(&idx);

	/* Reopen: all five entries valid, nothing ragged. */
	assert_int_equal(index_open(&idx, f->dirfd, "a.index", INDEX_KIND_OFFSET, &existed), SL_OK);
	assert_true(existed);
	assert_int_equal(idx.count, 5);
	assert_false(idx.ragged);
	assert_int_equal(index_offset_lookup(&idx, 50), 4);
	index_close(&idx);
}

static void test_offset_full_and_truncate(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct index idx;
	int existed;

	assert_int_equal(index_open(&idx, f->dirfd, "b.index", INDEX_KIND_OFFSET, &existed), SL_OK);
	assert_int_equal(index_activate(&idx, 43), SL_OK);    /* rounds down: 5 entries */
	assert_int_equal(idx.count_max, 5);
	fill_offsets(&idx);
	assert_true(index_full(&idx));
	assert_int_equal(index_room(&idx), 0);
	index_truncate(&idx, 2);
	assert_int_equal(idx.count, 2);
	assert_int_equal(index_offset_lookup(&idx, 999), 1);
	/* Truncated entries are zeroed in the file (invariant 3). */
	uint8_t raw[40];
	char p[IOT_PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/b.index", f->d.base);
	assert_int_equal(iot_read_file(p, raw, sizeof(raw)), 40);
	for (int i = 16; i < 40; i++)
		assert_int_equal(raw[i], 0);
	index_offset_append(&idx, 25, 250);
	assert_int_equal(idx.count, 3);
	index_close(&idx);  /* not sealed: file stays preallocated */

	/* Reopen an unsealed (zero-filled tail) index: 3 valid entries. */
	assert_int_equal(index_open(&idx, f->dirfd, "b.index", INDEX_KIND_OFFSET, &existed), SL_OK);
	assert_int_equal(idx.count, 3);
	assert_true(idx.ragged);  /* zero entries after the valid ones */
	index_close(&idx);
}

static void test_offset_corrupt_files(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct index idx;
	int existed;
	char p[IOT_PATH_MAX + 64];
	uint8_t bad[8];

	snprintf(p, sizeof(p), "%s/c.index", f->d.base);
	assert_int_equal(index_open(&idx, f->dirfd, "c.index", INDEX_KIND_OFFSET, &existed), SL_OK);
	assert_int_equal(index_activate(&idx, 80), SL_OK);
	fill_offsets(&idx);
	assert_int_equal(index_seal(&idx), SL_OK);
	index_close(&idx);

	/* Entry 3 goes backwards: only the first three count. */
	be32_store(bad, 5);
	be32_store(bad + 4, 999);
	iot_write_at(p, 24, bad, 8);
	assert_int_equal(index_open(&idx, f->dirfd, "c.index", INDEX_KIND_OFFSET, &existed), SL_OK);
	assert_int_equal(idx.count, 3);
	assert_true(idx.ragged);
	index_close(&idx);

	/* A partial trailing entry. */
	iot_truncate(p, 21);
	assert_int_equal(index_open(&idx, f->dirfd, "c.index", INDEX_KIND_OFFSET, &existed), SL_OK);
	assert_int_equal(idx.count, 2);
	assert_true(idx.ragged);
	/* Sealing trims the partial entry away. */
	assert_int_equal(index_seal(&idx), SL_OK);
	assert_int_equal(file_size_at(f, "c.index"), 16);
	index_close(&idx);

	/* A first entry of zeros is never valid. */
	uint8_t zeros[16] = { 0 };
	iot_write_at(p, 0, zeros, 16);
	assert_int_equal(index_open(&idx, f->dirfd, "c.index", INDEX_KIND_OFFSET, &existed), SL_OK);
	assert_int_equal(idx.count, 0);
	index_close(&idx);
}

static void test_time_index(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct index idx;
	int existed;
	int64_t ts;
	int32_t rel;

	assert_int_equal(index_open(&idx, f->dirfd, "a.timeindex", INDEX_KIND_TIME, &existed), SL_OK);
	assert_int_equal(index_activate(&idx, 120), SL_OK);   /* 10 entries */
	assert_int_equal(index_time_last_ts(&idx), -1);
	assert_int_equal(index_time_lookup_below(&idx, 100), -1);
	/* maybeAppend: only a larger timestamp adds an entry. */
	assert_int_equal(index_time_maybe_append(&idx, 1000, 3), 1);
	assert_int_equal(index_time_maybe_append(&idx, 1000, 5), 0);
	assert_int_equal(index_time_maybe_append(&idx, 900, 6), 0);
	assert_int_equal(index_time_maybe_append(&idx, 2000, 7), 1);
	assert_int_equal(index_time_maybe_append(&idx, 3000, 7), 1);  /* same offset is fine */
	assert_int_equal(idx.count, 3);
	assert_int_equal(index_time_last_ts(&idx), 3000);

	assert_int_equal(index_time_lookup_below(&idx, 2000), 0);   /* exact: strictly below */
	assert_int_equal(index_time_lookup_below(&idx, 2001), 1);   /* between */
	assert_int_equal(index_time_lookup_below(&idx, 1000), -1);  /* at the first */
	assert_int_equal(index_time_lookup_below(&idx, 5), -1);     /* before the first */
	assert_int_equal(index_time_lookup_below(&idx, 99999), 2);  /* after the last */
	index_time_get(&idx, 1, &ts, &rel);
	assert_int_equal(ts, 2000);
	assert_int_equal(rel, 7);
	assert_int_equal(index_time_count_below(&idx, 7), 1);
	assert_int_equal(index_time_count_below(&idx, 8), 3);

	assert_int_equal(index_seal(&idx), SL_OK);
	assert_int_equal(file_size_at(f, "a.timeindex"), 36);
	uint8_t raw[36];
	char p[IOT_PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/a.timeindex", f->d.base);
	assert_int_equal(iot_read_file(p, raw, sizeof(raw)), 36);
	assert_int_equal((int64_t)be64_load(raw + 12), 2000);  /* int64 BE timestamp */
	assert_int_equal(be32_load(raw + 20), 7);              /* int32 BE relative offset */
	index_close(&idx);

	assert_int_equal(index_open(&idx, f->dirfd, "a.timeindex", INDEX_KIND_TIME, &existed), SL_OK);
	assert_int_equal(idx.count, 3);
	assert_false(idx.ragged);
	/* Reactivating keeps the entries and allows more. */
	assert_int_equal(index_activate(&idx, 120), SL_OK);
	assert_int_equal(index_time_maybe_append(&idx, 4000, 9), 1);
	assert_int_equal(idx.count, 4);
	index_close(&idx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_DIR_TEST(test_offset_lookup),
		IOT_DIR_TEST(test_offset_full_and_truncate),
		IOT_DIR_TEST(test_offset_corrupt_files),
		IOT_DIR_TEST(test_time_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
