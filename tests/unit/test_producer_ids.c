/*
 * test_producer_ids.c — producer id allocation (io/producer_ids.c): ids are
 * sequential inside a block with no I/O, the block end is persisted before
 * ids of a new block are handed out, a reopen (clean or after a "crash" in
 * the middle of a block) continues after the persisted end and never
 * reuses an id, an absent file starts at 0, a corrupt one is refused, a
 * failed persist hands out nothing, and exhaustion is reported.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include "checkpoint.h"
#include "io_testutil.h"
#include "producer_ids.h"

/* The block end stored in the file, or -1 when absent. */
static int64_t file_block_end(struct iot_dir_fixture *f)
{
	struct checkpoint_entry e = { .key = "producer_id_block_end" };
	enum sl_err err = checkpoint_read(f->dirfd, PRODUCER_IDS_FILE_NAME, &e, 1);
	if (err == SL_ENOTFOUND)
		return -1;
	assert_int_equal(err, SL_OK);
	assert_true(e.found);
	return e.value;
}

static int64_t next_id(struct producer_ids *pi)
{
	int64_t id = -1;
	int16_t epoch = -1;
	assert_int_equal(producer_ids_next(pi, &id, &epoch), SL_OK);
	assert_int_equal(epoch, PRODUCER_IDS_EPOCH_INITIAL);
	return id;
}

static void test_sequential_from_zero(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct producer_ids *pi;

	assert_int_equal(file_block_end(f), -1);
	assert_int_equal(producer_ids_open(&pi, f->d.base, PRODUCER_IDS_BLOCK_DEFAULT, -1), SL_OK);
	assert_int_equal(file_block_end(f), -1);  /* nothing written before the first id */
	for (int64_t i = 0; i < 500; i++)
		assert_int_equal(next_id(pi), i);
	assert_int_equal(file_block_end(f), 1000);
	assert_int_equal(producer_ids_blocks_persisted(pi), 1);
	assert_int_equal(producer_ids_next_id(pi), 500);
	assert_int_equal(producer_ids_block_end(pi), 1000);
	producer_ids_close(pi);
}

static void test_block_boundary(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct producer_ids *pi;

	assert_int_equal(producer_ids_open(&pi, f->d.base, 10, -1), SL_OK);
	for (int64_t i = 0; i < 25; i++) {
		assert_int_equal(next_id(pi), i);
		/* The block holding id i is durable by the time i is returned. */
		assert_true(file_block_end(f) > i);
		assert_int_equal(file_block_end(f), (i / 10 + 1) * 10);
	}
	assert_int_equal(producer_ids_blocks_persisted(pi), 3);
	producer_ids_close(pi);
}

static void test_reopen_no_reuse(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct producer_ids *pi;
	int64_t last = -1;

	/* Three "lives": each hands out a few ids, then stops mid-block. */
	for (int life = 0; life < 3; life++) {
		assert_int_equal(producer_ids_open(&pi, f->d.base, 100, -1), SL_OK);
		int64_t first = next_id(pi);
		assert_true(first > last);
		assert_int_equal(first, life * 100);  /* the old block's rest is skipped */
		for (int i = 0; i < 7; i++) {
			int64_t id = next_id(pi);
			assert_int_equal(id, first + 1 + i);
			last = id;
		}
		/*
		 * Stopping here is a crash as much as a clean stop: close writes
		 * nothing, so the file is all that survives either way.
		 */
		int64_t before = file_block_end(f);
		assert_int_equal(before, (life + 1) * 100);
		producer_ids_close(pi);
		assert_int_equal(file_block_end(f), before);
	}
	assert_int_equal(file_block_end(f), 300);
}

static void test_reopen_at_exact_boundary(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct producer_ids *pi;

	assert_int_equal(producer_ids_open(&pi, f->d.base, 5, -1), SL_OK);
	for (int64_t i = 0; i < 5; i++)
		assert_int_equal(next_id(pi), i);
	assert_int_equal(file_block_end(f), 5);  /* block used up, next not yet reserved */
	producer_ids_close(pi);
	assert_int_equal(producer_ids_open(&pi, f->d.base, 5, -1), SL_OK);
	assert_int_equal(next_id(pi), 5);  /* nothing skipped, nothing reused */
	assert_int_equal(file_block_end(f), 10);
	producer_ids_close(pi);
}

static void write_raw(struct iot_dir_fixture *f, const char *text)
{
	char p[IOT_PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", f->d.base, PRODUCER_IDS_FILE_NAME);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_corrupt_file_refused(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct producer_ids *pi = (struct producer_ids *)(uintptr_t)1;
	static const char *const bad[] = {
		"",                                        /* empty */
		"0\n1\nproducer_id_block_end 12x\n",       /* not a number */
		"0\n1\nproducer_id_block_end -5\n",        /* negative */
		"0\n1\nsomething_else 7\n",                /* key missing */
		"0\n2\nproducer_id_block_end 7\n",         /* count lies */
		"9\n1\nproducer_id_block_end 7\n",         /* unknown version */
		"0\n1\nproducer_id_block_end 7",           /* torn: no final newline */
	};

	for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
		write_raw(f, bad[i]);
		assert_int_equal(producer_ids_open(&pi, f->d.base, 10, -1), SL_ECORRUPT);
		assert_null(pi);
	}
	write_raw(f, "0\n1\nproducer_id_block_end 4242\n");
	assert_int_equal(producer_ids_open(&pi, f->d.base, 10, -1), SL_OK);
	assert_int_equal(next_id(pi), 4242);
	producer_ids_close(pi);
}

static void test_bad_arguments(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct producer_ids *pi;
	char missing[IOT_PATH_MAX + 16];

	assert_int_equal(producer_ids_open(&pi, f->d.base, 0, -1), SL_EINVAL);
	assert_int_equal(producer_ids_open(&pi, f->d.base, PRODUCER_IDS_BLOCK_MAX + 1, -1),
			 SL_EINVAL);
	snprintf(missing, sizeof(missing), "%s/nope", f->d.base);
	assert_int_equal(producer_ids_open(&pi, missing, 10, -1), SL_EIO);
}

static void test_persist_failure_hands_out_nothing(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct producer_ids *pi;
	char sub[IOT_PATH_MAX + 16], file[IOT_PATH_MAX + 64];
	int64_t id;
	int16_t epoch;

	snprintf(sub, sizeof(sub), "%s/logs", f->d.base);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(producer_ids_open(&pi, sub, 3, -1), SL_OK);
	for (int64_t i = 0; i < 3; i++)
		assert_int_equal(next_id(pi), i);
	/* The directory disappears under the allocator: the next block cannot persist. */
	snprintf(file, sizeof(file), "%s/%s", sub, PRODUCER_IDS_FILE_NAME);
	assert_int_equal(unlink(file), 0);
	assert_int_equal(rmdir(sub), 0);
	id = -7;
	assert_int_equal(producer_ids_next(pi, &id, &epoch), SL_EIO);
	assert_int_equal(id, -7);
	assert_int_equal(producer_ids_next(pi, &id, &epoch), SL_EIO);  /* retried, still failing */
	assert_int_equal(producer_ids_next_id(pi), 3);
	assert_int_equal(producer_ids_block_end(pi), 3);
	producer_ids_close(pi);
}

static void test_exhaustion(void **state)
{
	struct iot_dir_fixture *f = *state;
	struct producer_ids *pi;
	char text[128];
	int64_t id;
	int16_t epoch;

	snprintf(text, sizeof(text), "0\n1\nproducer_id_block_end %lld\n",
		 (long long)(INT64_MAX - 15));
	write_raw(f, text);
	assert_int_equal(producer_ids_open(&pi, f->d.base, 10, -1), SL_OK);
	for (int i = 0; i < 10; i++)
		assert_int_equal(next_id(pi), INT64_MAX - 15 + i);
	assert_int_equal(producer_ids_next(pi, &id, &epoch), SL_ERANGE);
	producer_ids_close(pi);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_DIR_TEST(test_sequential_from_zero),
		IOT_DIR_TEST(test_block_boundary),
		IOT_DIR_TEST(test_reopen_no_reuse),
		IOT_DIR_TEST(test_reopen_at_exact_boundary),
		IOT_DIR_TEST(test_corrupt_file_refused),
		IOT_DIR_TEST(test_bad_arguments),
		IOT_DIR_TEST(test_persist_failure_hands_out_nothing),
		IOT_DIR_TEST(test_exhaustion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
