/*
 * test_plog_ts.c — ListOffsets by timestamp at record granularity
 * (io/plog_ts.c) over a real partition log.
 *
 * The log holds batches of several records with distinct timestamps:
 * uncompressed, then one per codec (built uncompressed with
 * core/batch_build.h, the records section then compressed with
 * core/compress.h and the header patched: attributes, batchLength, CRC), a
 * batch whose timestamps are out of order, and a LogAppendTime batch. A
 * model list of (offset, timestamp) gives the expected answer for every
 * target: the first record in offset order whose timestamp >= target.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch_build.h"
#include "compress.h"
#include "crc32c.h"
#include "io_testutil.h"
#include "plog_ts.h"

#define TT_RECORDS 5
#define TT_BUF (64 * 1024)
#define TT_MODEL_MAX 64

struct tt_model {
	int64_t offset[TT_MODEL_MAX];
	int64_t ts[TT_MODEL_MAX];
	int count;
};

/*
 * Builds a batch of `n` records with timestamps ts[0..n) and compresses its
 * records with `codec` (NONE: left as is). Returns the size.
 */
static size_t tt_batch(uint8_t *buf, const int64_t *ts, int n, enum batch_compression codec)
{
	struct batch_builder b;
	struct batch_header h;
	char value[64];
	size_t len, zlen = 0;

	batch_builder_init(&b, buf, TT_BUF);
	for (int i = 0; i < n; i++) {
		int vl = snprintf(value, sizeof(value), "record %d at %lld, some filler text",
				  i, (long long)ts[i]);
		assert_int_equal(batch_builder_add(&b, ts[i], "k", 1, value, vl, NULL, 0), SL_OK);
	}
	len = batch_builder_finish(&b);
	assert_true(len > BATCH_HEADER_BYTES);
	if (codec == BATCH_COMPRESSION_NONE)
		return len;
	size_t body = len - BATCH_HEADER_BYTES;
	uint8_t *z = malloc(compress_bound(codec, body));
	assert_non_null(z);
	assert_int_equal(compress_encode(codec, buf + BATCH_HEADER_BYTES, body, z,
					 compress_bound(codec, body), &zlen),
			 SL_OK);
	assert_true(BATCH_HEADER_BYTES + zlen <= TT_BUF);
	memcpy(buf + BATCH_HEADER_BYTES, z, zlen);
	free(z);
	len = BATCH_HEADER_BYTES + zlen;
	be32_store(buf + BATCH_OFF_LENGTH, (uint32_t)(len - BATCH_LOG_OVERHEAD));
	be16_store(buf + BATCH_OFF_ATTRIBUTES,
		   (uint16_t)((be16_load(buf + BATCH_OFF_ATTRIBUTES) &
			       ~BATCH_ATTR_COMPRESSION_MASK) | codec));
	be32_store(buf + BATCH_OFF_CRC, crc32c(0, buf + BATCH_OFF_ATTRIBUTES,
					       len - BATCH_OFF_ATTRIBUTES));
	assert_int_equal(batch_validate(buf, len, BATCH_CHECK_ALL, &h), SL_OK);
	assert_int_equal(h.attributes & BATCH_ATTR_COMPRESSION_MASK, codec);
	return len;
}

static int64_t tt_append(struct iot_log_fixture *f, struct plog *log, const uint8_t *buf,
			 size_t len)
{
	struct iot_app t;

	assert_int_equal(iot_app_submit(log, &t, buf, len, 0, NULL), SL_OK);
	iot_drive(&f->ring, &t.done);
	assert_int_equal(t.res, SL_OK);
	iot_app_free(&t);
	return t.a.base_offset;
}

/* Appends a batch and records its records in the model. */
static void tt_add(struct iot_log_fixture *f, struct plog *log, struct tt_model *m,
		   const int64_t *ts, int n, enum batch_compression codec, int64_t log_append_ts)
{
	uint8_t *buf = malloc(TT_BUF);
	assert_non_null(buf);
	size_t len = tt_batch(buf, ts, n, codec);
	if (log_append_ts >= 0)
		batch_set_log_append_time(buf, log_append_ts);
	int64_t base = tt_append(f, log, buf, len);
	for (int i = 0; i < n; i++) {
		assert_true(m->count < TT_MODEL_MAX);
		m->offset[m->count] = base + i;
		m->ts[m->count] = log_append_ts >= 0 ? log_append_ts : ts[i];
		m->count++;
	}
	free(buf);
}

/* Every target from below the first to past the last timestamp. */
static void tt_check_all(struct plog *log, const struct tt_model *m, int64_t start_offset)
{
	int64_t hi = 0;
	for (int i = 0; i < m->count; i++)
		hi = SL_MAX(hi, m->ts[i]);
	for (int64_t t = 0; t <= hi + 2; t += (t % 10 == 9 ? 1 : 3)) {
		int want = -1;
		int64_t off = -7, ts = -7;
		for (int i = 0; i < m->count && want < 0; i++)
			if (m->offset[i] >= start_offset && m->ts[i] >= t)
				want = i;
		enum sl_err err = plog_record_for_timestamp(log, t, &off, &ts);
		if (want < 0) {
			assert_int_equal(err, SL_ENOTFOUND);
			continue;
		}
		assert_int_equal(err, SL_OK);
		if (off != m->offset[want] || ts != m->ts[want])
			fail_msg("t=%lld: got %lld@%lld, want %lld@%lld", (long long)t,
				 (long long)off, (long long)ts, (long long)m->offset[want],
				 (long long)m->ts[want]);
	}
}

static void test_record_granularity(void **state)
{
	struct iot_log_fixture *f = *state;
	static const enum batch_compression codecs[] = {
		BATCH_COMPRESSION_NONE, BATCH_COMPRESSION_GZIP, BATCH_COMPRESSION_SNAPPY,
		BATCH_COMPRESSION_LZ4, BATCH_COMPRESSION_ZSTD,
	};
	struct tt_model m = { .count = 0 };
	struct plog *log;
	int64_t ts[TT_RECORDS];

	f->cfg.segment_bytes = 900;  /* several segments */
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	assert_int_equal(plog_record_for_timestamp(log, 0, &ts[0], &ts[1]), SL_ENOTFOUND);
	for (size_t c = 0; c < SL_ARRAY_LEN(codecs); c++) {
		for (int i = 0; i < TT_RECORDS; i++)
			ts[i] = 100 + 100 * (int64_t)c + 10 * i;
		tt_add(f, log, &m, ts, TT_RECORDS, codecs[c], -1);
	}
	/* Out of order inside a batch: the first in offset order wins. */
	int64_t shuffled[4] = { 700, 760, 730, 790 };
	tt_add(f, log, &m, shuffled, 4, BATCH_COMPRESSION_ZSTD, -1);
	/* LogAppendTime: every record carries the batch's maxTimestamp. */
	for (int i = 0; i < TT_RECORDS; i++)
		ts[i] = 800 + i;
	tt_add(f, log, &m, ts, TT_RECORDS, BATCH_COMPRESSION_LZ4, 900);
	tt_check_all(log, &m, 0);

	/* A start offset inside a batch: records below it never answer. */
	assert_int_equal(plog_delete_before(log, 7), SL_OK);
	tt_check_all(log, &m, 7);
	assert_int_equal(plog_delete_before(log, m.offset[m.count - 2]), SL_OK);
	tt_check_all(log, &m, m.offset[m.count - 2]);
	assert_int_equal(plog_close(log), SL_OK);
}

/* A batch whose compressed records are damaged (CRC repaired so the
 * header scan accepts it) answers at batch granularity instead of failing. */
static void test_corrupt_records_fall_back(void **state)
{
	struct iot_log_fixture *f = *state;
	int64_t ts[TT_RECORDS] = { 10, 20, 30, 40, 50 };
	uint8_t *buf = malloc(TT_BUF);
	struct plog *log;
	int64_t off = -1, t = -1;

	assert_non_null(buf);
	assert_int_equal(plog_open(&log, &f->ring, f->d.part, &f->cfg, 0), SL_OK);
	size_t len = tt_batch(buf, ts, TT_RECORDS, BATCH_COMPRESSION_GZIP);
	buf[len - 3] ^= 0xff;  /* inside the gzip trailer */
	be32_store(buf + BATCH_OFF_CRC, crc32c(0, buf + BATCH_OFF_ATTRIBUTES,
					       len - BATCH_OFF_ATTRIBUTES));
	int64_t base = tt_append(f, log, buf, len);
	assert_int_equal(plog_record_for_timestamp(log, 35, &off, &t), SL_OK);
	assert_int_equal(off, base);
	assert_int_equal(t, 50);
	assert_int_equal(plog_record_for_timestamp(log, 51, &off, &t), SL_ENOTFOUND);
	assert_int_equal(plog_close(log), SL_OK);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		IOT_LOG_TEST(test_record_granularity),
		IOT_LOG_TEST(test_corrupt_records_fall_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
