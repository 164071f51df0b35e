/*
 * test_batch.c — the record batch v2 codec (core/batch.c).
 *
 * Sources of batches:
 *   - tests/data/batch-*.bin, captured from kcat (librdkafka) and
 *     kafka-python by tools/capture_batches.py (see tests/data/README.md);
 *   - tb_build(): core/batch_build.h writing any number of standard records
 *     with keys, values, headers and nulls (tb_check_std_records reads them
 *     back field by field);
 *   - hand-crafted records (tb_put_record + tb_finish), written here from
 *     the format description, for the corrupt shapes batch_build would
 *     never produce: chosen offset deltas, lastOffsetDelta, recordsCount,
 *     attributes and timestamps that disagree with the records, raw
 *     record bytes.
 *
 * Every check on possibly-bad bytes runs on an exact-size heap copy so that
 * ASan catches any read past `len`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "batch_build.h"
#include "crc32c.h"

#define TB_CAP (256 * 1024)
#define TB_HEADERS_MAX 4
#define TB_BODY_MAX 4096
#define TB_SEED 0x0b47c4f00dULL
#define TB_TS0 1700000000000LL   /* baseTimestamp of the built batches */

/* ---------------------------------------------------------------- helpers */

static uint64_t tb_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Exact-size heap copy: ASan flags any byte read past `len`. */
static uint8_t *tb_dup(const uint8_t *buf, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	if (len)
		memcpy(p, buf, len);
	return p;
}

static enum sl_err tb_validate_exact(const uint8_t *buf, size_t len, enum batch_check checks,
				     struct batch_header *h)
{
	uint8_t *copy = tb_dup(buf, len);
	enum sl_err err = batch_validate(copy, len, checks, h);
	free(copy);
	return err;
}

static uint8_t *tb_load(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", SL_TEST_DATA_DIR, name);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	uint8_t *buf = malloc(TB_CAP);
	assert_non_null(buf);
	*len = fread(buf, 1, TB_CAP, f);
	fclose(f);
	assert_true(*len > 0 && *len < TB_CAP);
	return buf;
}

static size_t tb_put_bytes(uint8_t *out, const char *s)
{
	if (s == NULL)
		return batch_varlong_put(out, -1);
	size_t n = batch_varlong_put(out, (int64_t)strlen(s));
	memcpy(out + n, s, strlen(s));
	return n + strlen(s);
}

struct tb_kv {
	const char *key;
	const char *value;  /* NULL = null */
};

struct tb_record {
	int64_t ts_delta;
	int32_t offset_delta;
	const char *key;    /* NULL = null */
	const char *value;  /* NULL = null */
	int headers_count;
	struct tb_kv headers[TB_HEADERS_MAX];
};

/*
 * Appends one record at `out`; returns its size (length varint included).
 * Unlike batch_builder_add it takes the offset delta from `r`, so a test can
 * write deltas that are duplicated, decreasing or negative.
 */
static size_t tb_put_record(uint8_t *out, const struct tb_record *r)
{
	uint8_t body[TB_BODY_MAX];
	size_t n = 0;

	body[n++] = 0;  /* attributes */
	n += batch_varlong_put(body + n, r->ts_delta);
	n += batch_varlong_put(body + n, r->offset_delta);
	n += tb_put_bytes(body + n, r->key);
	n += tb_put_bytes(body + n, r->value);
	n += batch_varlong_put(body + n, r->headers_count);
	for (int i = 0; i < r->headers_count; i++) {
		n += tb_put_bytes(body + n, r->headers[i].key);
		n += tb_put_bytes(body + n, r->headers[i].value);
	}
	assert_true(n < TB_BODY_MAX - 64);
	size_t len_bytes = batch_varlong_put(out, (int64_t)n);
	memcpy(out + len_bytes, body, n);
	return len_bytes + n;
}

/* The header fields tb_finish writes, any values (the rest are ignored). */
static struct batch_header tb_batch_default(int32_t count)
{
	return (struct batch_header){
		.attributes = 0, .last_offset_delta = count > 0 ? count - 1 : 0,
		.base_timestamp = TB_TS0, .max_timestamp = TB_TS0 + 3 * count,
		.producer_id = -1, .producer_epoch = -1, .base_sequence = -1,
		.records_count = count,
	};
}

/* Recomputes the CRC of a batch after a test edited its bytes. */
static void tb_crc_refresh(uint8_t *buf)
{
	size_t size = BATCH_LOG_OVERHEAD + (size_t)(int32_t)be32_load(buf + BATCH_OFF_LENGTH);
	be32_store(buf + BATCH_OFF_CRC,
		   crc32c(0, buf + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES));
}

/* Writes the header in front of `records_len` record bytes already at
 * buf + BATCH_HEADER_BYTES; returns the batch size. Not batch_builder_finish:
 * that derives the fields from the records it added, and these tests need
 * headers that disagree with their records (or have no records at all). */
static size_t tb_finish(uint8_t *buf, size_t records_len, const struct batch_header *b)
{
	size_t size = BATCH_HEADER_BYTES + records_len;
	be64_store(buf + BATCH_OFF_BASE_OFFSET, 0);
	be32_store(buf + BATCH_OFF_LENGTH, (uint32_t)(size - BATCH_LOG_OVERHEAD));
	be32_store(buf + BATCH_OFF_LEADER_EPOCH, (uint32_t)-1);
	buf[BATCH_OFF_MAGIC] = BATCH_MAGIC_V2;
	be16_store(buf + BATCH_OFF_ATTRIBUTES, (uint16_t)b->attributes);
	be32_store(buf + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)b->last_offset_delta);
	be64_store(buf + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)b->base_timestamp);
	be64_store(buf + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)b->max_timestamp);
	be64_store(buf + BATCH_OFF_PRODUCER_ID, (uint64_t)b->producer_id);
	be16_store(buf + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)b->producer_epoch);
	be32_store(buf + BATCH_OFF_BASE_SEQUENCE, (uint32_t)b->base_sequence);
	be32_store(buf + BATCH_OFF_RECORDS_COUNT, (uint32_t)b->records_count);
	tb_crc_refresh(buf);
	return size;
}

/* The contents of standard record `i`, written into caller-owned strings. */
struct tb_std {
	char key[32];
	char value[64];
	char hkey[TB_HEADERS_MAX][16];
	char hval[TB_HEADERS_MAX][32];
	struct tb_record rec;
};

static void tb_std_record(int i, struct tb_std *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "key-%d", i);
	snprintf(s->value, sizeof(s->value), "value-%d-%.*s", i, i % 13, "abcdefghijklm");
	s->rec.ts_delta = 3 * i;
	s->rec.offset_delta = i;
	s->rec.key = (i % 5 == 3) ? NULL : s->key;
	s->rec.value = (i % 7 == 6) ? NULL : s->value;
	s->rec.headers_count = i % 3;
	for (int j = 0; j < s->rec.headers_count; j++) {
		snprintf(s->hkey[j], sizeof(s->hkey[j]), "h%d", j);
		snprintf(s->hval[j], sizeof(s->hval[j]), "hv%d-%d", j, i);
		s->rec.headers[j].key = s->hkey[j];
		s->rec.headers[j].value = (j == 1 && i % 2) ? NULL : s->hval[j];
	}
}

static int32_t tb_len(const char *s)
{
	return s == NULL ? -1 : (int32_t)strlen(s);
}

/* A valid uncompressed producer batch of `n` standard records. */
static size_t tb_build(uint8_t *buf, size_t cap, int n)
{
	struct batch_builder b;
	struct batch_kv hdrs[TB_HEADERS_MAX];
	struct tb_std s;

	batch_builder_init(&b, buf, cap);
	for (int i = 0; i < n; i++) {
		tb_std_record(i, &s);
		assert_int_equal(s.rec.offset_delta, i);  /* what batch_builder_add assigns */
		for (int j = 0; j < s.rec.headers_count; j++)
			hdrs[j] = (struct batch_kv){
				.key = s.rec.headers[j].key, .key_len = tb_len(s.rec.headers[j].key),
				.value = s.rec.headers[j].value,
				.value_len = tb_len(s.rec.headers[j].value),
			};
		assert_int_equal(batch_builder_add(&b, TB_TS0 + s.rec.ts_delta, s.rec.key,
						   tb_len(s.rec.key), s.rec.value,
						   tb_len(s.rec.value), hdrs, s.rec.headers_count),
				 SL_OK);
	}
	size_t size = batch_builder_finish(&b);
	assert_true(size > BATCH_HEADER_BYTES && size <= cap);
	return size;
}

static uint8_t *tb_alloc(void)
{
	uint8_t *p = calloc(1, TB_CAP);
	assert_non_null(p);
	return p;
}

static void tb_assert_bytes(const uint8_t *got, int32_t got_len, const char *want)
{
	if (want == NULL) {
		assert_int_equal(got_len, -1);
		assert_null(got);
		return;
	}
	assert_int_equal(got_len, (int32_t)strlen(want));
	assert_non_null(got);
	assert_memory_equal(got, want, strlen(want));
}

/* ------------------------------------------------------- captured batches */

struct tb_capture {
	const char *file;
	int codec;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int headers_per_record;  /* uncompressed only: 2 kcat, 1 kafka-python */
	int kcat;                /* values carry the long kcat suffix */
};

static const struct tb_capture tb_captures[] = {
	{ "batch-kcat-none.bin", BATCH_COMPRESSION_NONE, -1, -1, -1, 2, 1 },
	{ "batch-kcat-gzip.bin", BATCH_COMPRESSION_GZIP, -1, -1, -1, 0, 1 },
	{ "batch-kcat-snappy.bin", BATCH_COMPRESSION_SNAPPY, -1, -1, -1, 0, 1 },
	{ "batch-kcat-lz4.bin", BATCH_COMPRESSION_LZ4, -1, -1, -1, 0, 1 },
	{ "batch-kcat-zstd.bin", BATCH_COMPRESSION_ZSTD, -1, -1, -1, 0, 1 },
	{ "batch-kcat-idempotent.bin", BATCH_COMPRESSION_NONE, 4242, 0, 0, 2, 1 },
	{ "batch-kafkapython-none.bin", BATCH_COMPRESSION_NONE, -1, -1, -1, 1, 0 },
	{ "batch-kafkapython-gzip.bin", BATCH_COMPRESSION_GZIP, -1, -1, -1, 0, 0 },
};

/* Checks the records of an uncompressed captured batch against the inputs
 * listed in tests/data/README.md. */
static void tb_check_captured_records(const uint8_t *buf, const struct batch_header *h,
				      const struct tb_capture *c)
{
	struct batch_record_iter it;
	struct batch_record r;
	int n = 0;

	batch_record_iter_init(&it, buf + BATCH_HEADER_BYTES,
			       batch_size_bytes(h) - BATCH_HEADER_BYTES, h->records_count);
	while (batch_record_next(&it, &r) == SL_OK) {
		char want[128];
		snprintf(want, sizeof(want), "k%d", n);
		tb_assert_bytes(r.key, r.key_len, want);
		snprintf(want, sizeof(want), "value %d \xe2\x80\x94 the quick brown fox%s", n,
			 c->kcat ? " jumps over the lazy dog xxxxxxxxxxxxxxxxxxxx" : "");
		tb_assert_bytes(r.value, r.value_len, want);
		assert_int_equal(r.offset_delta, n);
		assert_true(r.timestamp_delta >= 0);
		assert_true(h->base_timestamp + r.timestamp_delta <= h->max_timestamp);
		assert_int_equal(r.headers_count, c->headers_per_record);

		struct batch_record_header hdr;
		int32_t idx = 0;
		size_t pos = 0;
		assert_int_equal(batch_record_header_next(&r, &idx, &pos, &hdr), SL_OK);
		tb_assert_bytes(hdr.key, hdr.key_len, "app");
		tb_assert_bytes(hdr.value, hdr.value_len, "sluice");
		if (c->headers_per_record == 2) {
			assert_int_equal(batch_record_header_next(&r, &idx, &pos, &hdr), SL_OK);
			tb_assert_bytes(hdr.key, hdr.key_len, "trace");
			tb_assert_bytes(hdr.value, hdr.value_len, "t-1");
		}
		assert_int_equal(batch_record_header_next(&r, &idx, &pos, &hdr), SL_ENOTFOUND);
		n++;
	}
	assert_int_equal(batch_record_next(&it, &r), SL_ENOTFOUND);
	assert_int_equal(n, 5);
}

static void test_captured_batches(void **state)
{
	(void)state;
	for (size_t i = 0; i < SL_ARRAY_LEN(tb_captures); i++) {
		const struct tb_capture *c = &tb_captures[i];
		struct batch_header h;
		size_t len;
		uint8_t *buf = tb_load(c->file, &len);

		print_message("%s: %zu bytes\n", c->file, len);
		assert_int_equal(tb_validate_exact(buf, len, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &h),
				 SL_OK);
		assert_int_equal(batch_size_bytes(&h), len);
		assert_int_equal(h.magic, 2);
		assert_int_equal(h.base_offset, 0);
		assert_int_equal(h.records_count, 5);
		assert_int_equal(h.last_offset_delta, 4);
		assert_int_equal(h.attributes & BATCH_ATTR_COMPRESSION_MASK, c->codec);
		assert_int_equal(h.attributes & ~BATCH_ATTR_COMPRESSION_MASK, 0);
		assert_int_equal(h.producer_id, c->producer_id);
		assert_int_equal(h.producer_epoch, c->producer_epoch);
		assert_int_equal(h.base_sequence, c->base_sequence);
		assert_true(h.max_timestamp >= h.base_timestamp);
		assert_true(h.base_timestamp > 1500000000000LL);  /* a real clock */
		if (c->codec == BATCH_COMPRESSION_NONE)
			tb_check_captured_records(buf, &h, c);

		/* As a one-batch record set. */
		struct batch_iter it;
		const uint8_t *b = NULL;
		batch_iter_init(&it, buf, len, BATCH_CHECK_ALL);
		assert_int_equal(batch_iter_next(&it, &h, &b), SL_OK);
		assert_ptr_equal(b, buf);
		assert_int_equal(batch_iter_next(&it, &h, &b), SL_ENOTFOUND);
		free(buf);
	}
}

/* -------------------------------------------------------------- builder */

static void tb_check_std_records(const uint8_t *buf, const struct batch_header *h, int n)
{
	struct batch_record_iter it;
	struct batch_record r;
	struct tb_std s;

	batch_record_iter_init(&it, buf + BATCH_HEADER_BYTES,
			       batch_size_bytes(h) - BATCH_HEADER_BYTES, h->records_count);
	for (int i = 0; i < n; i++) {
		tb_std_record(i, &s);
		assert_int_equal(batch_record_next(&it, &r), SL_OK);
		assert_int_equal(r.attributes, 0);
		assert_int_equal(r.timestamp_delta, s.rec.ts_delta);
		assert_int_equal(r.offset_delta, i);
		tb_assert_bytes(r.key, r.key_len, s.rec.key);
		tb_assert_bytes(r.value, r.value_len, s.rec.value);
		assert_int_equal(r.headers_count, s.rec.headers_count);

		struct batch_record_header hdr;
		int32_t idx = 0;
		size_t pos = 0;
		for (int j = 0; j < s.rec.headers_count; j++) {
			assert_int_equal(batch_record_header_next(&r, &idx, &pos, &hdr), SL_OK);
			tb_assert_bytes(hdr.key, hdr.key_len, s.rec.headers[j].key);
			tb_assert_bytes(hdr.value, hdr.value_len, s.rec.headers[j].value);
		}
		assert_int_equal(idx, s.rec.headers_count);
		assert_int_equal(pos, r.headers_bytes);
		assert_int_equal(batch_record_header_next(&r, &idx, &pos, &hdr), SL_ENOTFOUND);
	}
	assert_int_equal(batch_record_next(&it, &r), SL_ENOTFOUND);
	assert_int_equal(batch_record_next(&it, &r), SL_ENOTFOUND);
}

static void tb_assert_header_equal(const struct batch_header *a, const struct batch_header *b)
{
	assert_int_equal(a->base_offset, b->base_offset);
	assert_int_equal(a->batch_length, b->batch_length);
	assert_int_equal(a->partition_leader_epoch, b->partition_leader_epoch);
	assert_int_equal(a->magic, b->magic);
	assert_int_equal(a->crc, b->crc);
	assert_int_equal(a->attributes, b->attributes);
	assert_int_equal(a->last_offset_delta, b->last_offset_delta);
	assert_int_equal(a->base_timestamp, b->base_timestamp);
	assert_int_equal(a->max_timestamp, b->max_timestamp);
	assert_int_equal(a->producer_id, b->producer_id);
	assert_int_equal(a->producer_epoch, b->producer_epoch);
	assert_int_equal(a->base_sequence, b->base_sequence);
	assert_int_equal(a->records_count, b->records_count);
}

static void test_builder_roundtrip(void **state)
{
	static const int counts[] = { 1, 2, 3, 10, 100, 1000 };
	uint8_t *buf = tb_alloc();

	(void)state;
	for (size_t k = 0; k < SL_ARRAY_LEN(counts); k++) {
		int n = counts[k];
		struct batch_header h;
		size_t size = tb_build(buf, TB_CAP, n);

		assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &h),
				 SL_OK);
		assert_int_equal(h.records_count, n);
		assert_int_equal(h.last_offset_delta, n - 1);
		assert_int_equal(batch_size_bytes(&h), size);
		assert_int_equal(batch_last_offset(&h), n - 1);
		tb_check_std_records(buf, &h, n);

		/* header_parse alone agrees with validate. */
		struct batch_header h2;
		assert_int_equal(batch_header_parse(buf, size, &h2), SL_OK);
		tb_assert_header_equal(&h, &h2);
	}
	free(buf);
}

/* A buffer longer than the batch is fine: validate looks at one batch. */
static void test_validate_longer_buffer(void **state)
{
	uint8_t *buf = tb_alloc();
	struct batch_header h;

	(void)state;
	size_t size = tb_build(buf, TB_CAP, 4);
	assert_int_equal(tb_validate_exact(buf, size + 100, BATCH_CHECK_ALL, &h), SL_OK);
	assert_int_equal(batch_size_bytes(&h), size);
	free(buf);
}

/* ------------------------------------------------------------- varints */

static void test_varint_decode(void **state)
{
	static const struct { uint8_t b[6]; size_t n; int32_t v; } ok[] = {
		{ { 0x00 }, 1, 0 },
		{ { 0x01 }, 1, -1 },
		{ { 0x02 }, 1, 1 },
		{ { 0x7f }, 1, -64 },
		{ { 0x80, 0x01 }, 2, 64 },
		{ { 0x80, 0x00 }, 2, 0 },                           /* non-minimal */
		{ { 0xfe, 0xff, 0xff, 0xff, 0x0f }, 5, INT32_MAX },
		{ { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5, INT32_MIN },
		{ { 0x80, 0x80, 0x80, 0x80, 0x00 }, 5, 0 },
	};
	(void)state;
	for (size_t i = 0; i < SL_ARRAY_LEN(ok); i++) {
		const uint8_t *p = ok[i].b;
		int32_t v = 12345;
		assert_int_equal(batch_varint_read(&p, ok[i].b + ok[i].n, &v), SL_OK);
		assert_int_equal(v, ok[i].v);
		assert_ptr_equal(p, ok[i].b + ok[i].n);
	}

	/* Too long / bits beyond 32. */
	static const uint8_t six[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t big5[] = { 0xff, 0xff, 0xff, 0xff, 0x1f };
	const uint8_t *p = six;
	int32_t v;
	assert_int_equal(batch_varint_read(&p, six + sizeof(six), &v), SL_ECORRUPT);
	assert_ptr_equal(p, six);
	p = big5;
	assert_int_equal(batch_varint_read(&p, big5 + sizeof(big5), &v), SL_ECORRUPT);
	/* Ends mid-varint. */
	p = six;
	assert_int_equal(batch_varint_read(&p, six + 3, &v), SL_ETRUNC);
	assert_ptr_equal(p, six);
	assert_int_equal(batch_varint_read(&p, six, &v), SL_ETRUNC);
}

static void test_varlong_decode(void **state)
{
	uint8_t buf[16];
	int64_t v;
	const uint8_t *p;
	uint64_t seed = TB_SEED;

	(void)state;
	static const int64_t edge[] = { 0, -1, 1, INT64_MAX, INT64_MIN, INT32_MAX,
					(int64_t)INT32_MIN - 1, 1LL << 62, -(1LL << 62) };
	for (size_t i = 0; i < SL_ARRAY_LEN(edge) + 2000; i++) {
		int64_t want = i < SL_ARRAY_LEN(edge) ? edge[i]
			       : (int64_t)(tb_rand(&seed) >> (1 + tb_rand(&seed) % 63));
		if (i % 2 && i >= SL_ARRAY_LEN(edge))
			want = -want;
		size_t n = batch_varlong_put(buf, want);
		assert_true(n <= 10);
		p = buf;
		assert_int_equal(batch_varlong_read(&p, buf + n, &v), SL_OK);
		assert_true(v == want);
		assert_ptr_equal(p, buf + n);
		/* The same bytes through the 32-bit reader when they fit. */
		if (want >= INT32_MIN && want <= INT32_MAX) {
			int32_t v32;
			p = buf;
			assert_int_equal(batch_varint_read(&p, buf + n, &v32), SL_OK);
			assert_int_equal(v32, want);
		}
		/* Every shorter prefix is truncated. */
		for (size_t cut = 0; cut < n; cut++) {
			p = buf;
			assert_int_equal(batch_varlong_read(&p, buf + cut, &v), SL_ETRUNC);
		}
	}
	/* 10th byte above 0x01, and 11 bytes. */
	memset(buf, 0xff, 9);
	buf[9] = 0x03;
	p = buf;
	assert_int_equal(batch_varlong_read(&p, buf + 10, &v), SL_ECORRUPT);
	memset(buf, 0x80, 10);
	buf[10] = 0;
	p = buf;
	assert_int_equal(batch_varlong_read(&p, buf + 11, &v), SL_ECORRUPT);
	/* 6-byte int32 is corrupt even though it fits a varlong. */
	memset(buf, 0x80, 5);
	buf[5] = 0;
	p = buf;
	int32_t v32;
	assert_int_equal(batch_varint_read(&p, buf + 6, &v32), SL_ECORRUPT);
	p = buf;
	assert_int_equal(batch_varlong_read(&p, buf + 6, &v), SL_OK);
	assert_true(v == 0);
}

/* ----------------------------------------------------------- corruption */

/* Flip every byte of a small batch: outside the CRC it still validates,
 * anywhere else it never does (and nothing crashes). */
static void test_flip_each_byte(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 3);
	int outside = 0, rejected = 0;

	(void)state;
	for (size_t i = 0; i < size; i++) {
		static const uint8_t masks[] = { 0xff, 0x01, 0x80 };
		for (size_t m = 0; m < SL_ARRAY_LEN(masks); m++) {
			uint8_t *copy = tb_dup(buf, size);
			struct batch_header h;
			copy[i] ^= masks[m];
			enum sl_err err = batch_validate(copy, size, BATCH_CHECK_ALL, &h);
			int in_free_field = i < BATCH_OFF_LENGTH ||
					    (i >= BATCH_OFF_LEADER_EPOCH && i < BATCH_OFF_MAGIC);
			if (in_free_field) {
				assert_int_equal(err, SL_OK);
				outside++;
			} else {
				assert_true(err == SL_ECORRUPT || err == SL_ETRUNC);
				rejected++;
			}
			/* Without the CRC the structural checks must still be safe. */
			(void)batch_validate(copy, size, BATCH_CHECK_RECORDS, &h);
			free(copy);
		}
	}
	assert_int_equal(outside, 12 * 3);
	assert_int_equal(rejected, (int)(size - 12) * 3);
	free(buf);
}

/* Random damage to the record bytes with the CRC then repaired, so the
 * record walker sees the garbage and must stay in bounds. */
static void test_random_damage_crc_repaired(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 6);
	uint64_t seed = TB_SEED;
	int ok = 0, bad = 0;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		uint8_t *copy = tb_dup(buf, size);
		int flips = 1 + (int)(tb_rand(&seed) % 4);
		for (int f = 0; f < flips; f++) {
			size_t at = BATCH_HEADER_BYTES + tb_rand(&seed) % (size - BATCH_HEADER_BYTES);
			copy[at] = (uint8_t)tb_rand(&seed);
		}
		tb_crc_refresh(copy);
		struct batch_header h;
		enum sl_err err = batch_validate(copy, size, BATCH_CHECK_ALL, &h);
		if (err == SL_OK) {
			ok++;
			/* Whatever passed walks cleanly to the stated count. */
			struct batch_record_iter it;
			struct batch_record r;
			int32_t n = 0;
			batch_record_iter_init(&it, copy + BATCH_HEADER_BYTES,
					       size - BATCH_HEADER_BYTES, h.records_count);
			while (batch_record_next(&it, &r) == SL_OK)
				n++;
			assert_int_equal(n, h.records_count);
		} else {
			assert_int_equal(err, SL_ECORRUPT);
			bad++;
		}
		free(copy);
	}
	print_message("random damage: %d still valid (e.g. value bytes), %d rejected\n", ok, bad);
	assert_true(bad > 0);
	assert_true(ok > 0);
	free(buf);
}

static void test_truncate_every_length(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 5);

	(void)state;
	for (size_t len = 0; len < size; len++) {
		uint8_t *copy = tb_dup(buf, len);
		struct batch_header h;
		assert_int_equal(batch_header_parse(copy, len, &h), SL_ETRUNC);
		assert_int_equal(batch_validate(copy, len, BATCH_CHECK_ALL, &h), SL_ETRUNC);
		struct batch_iter it;
		const uint8_t *b;
		batch_iter_init(&it, copy, len, BATCH_CHECK_ALL);
		assert_int_equal(batch_iter_next(&it, &h, &b), len ? SL_ETRUNC : SL_ENOTFOUND);
		free(copy);
	}
	/* And the captured files. */
	for (size_t i = 0; i < SL_ARRAY_LEN(tb_captures); i++) {
		size_t flen;
		uint8_t *file = tb_load(tb_captures[i].file, &flen);
		for (size_t len = 0; len < flen; len++) {
			struct batch_header h;
			assert_int_equal(tb_validate_exact(file, len, BATCH_CHECK_ALL, &h), SL_ETRUNC);
		}
		free(file);
	}
	free(buf);
}

static void tb_set_length(uint8_t *buf, int32_t v)
{
	be32_store(buf + BATCH_OFF_LENGTH, (uint32_t)v);
}

static void test_batch_length_bad(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 3);
	int32_t real = (int32_t)(size - BATCH_LOG_OVERHEAD);
	struct batch_header h;

	(void)state;
	static const int32_t small[] = { 48, 0, -1, 1, INT32_MIN, 12 };
	for (size_t i = 0; i < SL_ARRAY_LEN(small); i++) {
		uint8_t *copy = tb_dup(buf, size);
		tb_set_length(copy, small[i]);
		assert_int_equal(batch_header_parse(copy, size, &h), SL_ECORRUPT);
		assert_int_equal(batch_validate(copy, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
		/* Known corrupt as soon as the length field is in. */
		assert_int_equal(batch_header_parse(copy, BATCH_LOG_OVERHEAD, &h), SL_ECORRUPT);
		free(copy);
	}
	/* Huge or one too many: the batch claims bytes that are not there. */
	static const int32_t big[] = { INT32_MAX, 1 << 30, 0 };
	for (size_t i = 0; i < SL_ARRAY_LEN(big); i++) {
		uint8_t *copy = tb_dup(buf, size);
		tb_set_length(copy, big[i] ? big[i] : real + 1);
		assert_int_equal(batch_header_parse(copy, size, &h), SL_ETRUNC);
		assert_int_equal(batch_validate(copy, size, BATCH_CHECK_ALL, &h), SL_ETRUNC);
		free(copy);
	}
	/* One too few / one too many with bytes present: CRC, then records. */
	buf[size] = 0;
	for (int d = -1; d <= 1; d += 2) {
		uint8_t *copy = tb_dup(buf, size + 1);
		tb_set_length(copy, real + d);
		assert_int_equal(batch_validate(copy, size + 1, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
		tb_crc_refresh(copy);
		assert_int_equal(batch_validate(copy, size + 1, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
		free(copy);
	}
	/* The minimum, 49, is an empty batch: fine unless it must come from a producer. */
	{
		struct batch_header b = tb_batch_default(0);
		size_t esize = tb_finish(buf, 0, &b);
		assert_int_equal(esize, BATCH_HEADER_BYTES);
		assert_int_equal(tb_validate_exact(buf, esize, BATCH_CHECK_ALL, &h), SL_OK);
		assert_int_equal(h.batch_length, 49);
		assert_int_equal(h.records_count, 0);
		assert_int_equal(tb_validate_exact(buf, esize, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &h),
				 SL_ECORRUPT);
	}
	free(buf);
}

static void test_magic(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 2);
	struct batch_header h;

	(void)state;
	static const uint8_t magics[] = { 0, 1, 3, 0xff };
	for (size_t i = 0; i < SL_ARRAY_LEN(magics); i++) {
		uint8_t *copy = tb_dup(buf, size);
		copy[BATCH_OFF_MAGIC] = magics[i];
		assert_int_equal(batch_header_parse(copy, size, &h), SL_ECORRUPT);
		assert_int_equal(batch_validate(copy, size, 0, &h), SL_ECORRUPT);
		/* Known as soon as the magic byte is in. */
		assert_int_equal(batch_header_parse(copy, BATCH_OFF_MAGIC + 1, &h), SL_ECORRUPT);
		free(copy);
	}
	free(buf);
}

/* Rewrites a header field in a copy, refreshes the CRC, validates. */
static enum sl_err tb_edit_validate(const uint8_t *buf, size_t size, size_t off, int width,
				    int64_t v, enum batch_check checks)
{
	uint8_t *copy = tb_dup(buf, size);
	struct batch_header h;
	if (width == 2)
		be16_store(copy + off, (uint16_t)v);
	else if (width == 4)
		be32_store(copy + off, (uint32_t)v);
	else
		be64_store(copy + off, (uint64_t)v);
	tb_crc_refresh(copy);
	enum sl_err err = batch_validate(copy, size, checks, &h);
	free(copy);
	return err;
}

static void test_records_count_bad(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 4);
	size_t off = BATCH_OFF_RECORDS_COUNT;

	(void)state;
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 4, BATCH_CHECK_ALL), SL_OK);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, -1, BATCH_CHECK_ALL), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, INT32_MIN, BATCH_CHECK_ALL), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, INT32_MAX, BATCH_CHECK_ALL), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 1000000, BATCH_CHECK_ALL), SL_ECORRUPT);
	/* More/fewer records than there are (count <= lastOffsetDelta + 1 still). */
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 3, BATCH_CHECK_ALL), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 0, BATCH_CHECK_ALL), SL_ECORRUPT);
	/* Count checks against the bytes run even without walking records. */
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 1000000, 0), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, -1, 0), SL_ECORRUPT);
	/* Five records would fit in the bytes, but there are four. */
	uint8_t *copy = tb_dup(buf, size);
	be32_store(copy + off, 5);
	be32_store(copy + BATCH_OFF_LAST_OFFSET_DELTA, 4);
	tb_crc_refresh(copy);
	struct batch_header h;
	assert_int_equal(batch_validate(copy, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	assert_int_equal(batch_validate(copy, size, BATCH_CHECK_CRC, &h), SL_OK);
	free(copy);
	free(buf);
}

static void test_attributes_bad(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 2);
	size_t off = BATCH_OFF_ATTRIBUTES;

	(void)state;
	for (int codec = 5; codec <= 7; codec++)
		assert_int_equal(tb_edit_validate(buf, size, off, 2, codec, BATCH_CHECK_ALL),
				 SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 2, BATCH_ATTR_CONTROL, BATCH_CHECK_ALL),
			 SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 2, BATCH_ATTR_CONTROL, 0), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 2,
					  BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL,
					  BATCH_CHECK_ALL), SL_OK);
	assert_int_equal(tb_edit_validate(buf, size, off, 2, BATCH_ATTR_TRANSACTIONAL,
					  BATCH_CHECK_ALL), SL_OK);
	/* A compressed codec skips the record walk (the bytes are not parsed). */
	assert_int_equal(tb_edit_validate(buf, size, off, 2, BATCH_COMPRESSION_ZSTD,
					  BATCH_CHECK_ALL), SL_OK);

	/* Compressed: no records with bytes, or records with no bytes. */
	size_t zlen;
	uint8_t *z = tb_load("batch-kcat-zstd.bin", &zlen);
	assert_int_equal(tb_edit_validate(z, zlen, BATCH_OFF_RECORDS_COUNT, 4, 0, BATCH_CHECK_ALL),
			 SL_ECORRUPT);
	free(z);
	struct batch_header eb = tb_batch_default(1);
	eb.attributes = BATCH_COMPRESSION_GZIP;
	size_t esize = tb_finish(buf, 0, &eb);
	struct batch_header h;
	assert_int_equal(tb_validate_exact(buf, esize, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	eb.records_count = 0;  /* an empty compacted batch keeps its codec bits */
	esize = tb_finish(buf, 0, &eb);
	assert_int_equal(tb_validate_exact(buf, esize, BATCH_CHECK_ALL, &h), SL_OK);

	/* Codec 7 on a captured compressed batch too. */
	size_t flen;
	uint8_t *file = tb_load("batch-kcat-gzip.bin", &flen);
	assert_int_equal(tb_edit_validate(file, flen, off, 2, 7, BATCH_CHECK_ALL), SL_ECORRUPT);
	free(file);
	free(buf);
}

static void test_last_offset_delta_bad(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 4);
	size_t off = BATCH_OFF_LAST_OFFSET_DELTA;

	(void)state;
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 3, BATCH_CHECK_ALL), SL_OK);
	/* A lastOffsetDelta beyond the last record is what compaction leaves
	 * (Kafka keeps it); a producer's batch must end exactly there. */
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 4, BATCH_CHECK_ALL), SL_OK);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 4,
					  BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 2, BATCH_CHECK_ALL), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, -1, BATCH_CHECK_ALL), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, INT32_MIN, 0), SL_ECORRUPT);
	/* Without the record walk only count <= lastOffsetDelta + 1 is known. */
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 100, BATCH_CHECK_CRC), SL_OK);
	assert_int_equal(tb_edit_validate(buf, size, off, 4, 100,
					  BATCH_CHECK_CRC | BATCH_CHECK_PRODUCE), SL_ECORRUPT);

	/* Compressed: lastOffsetDelta 3 with 5 records is impossible; 10 is a
	 * compacted batch, fine unless fresh from a producer. */
	size_t flen;
	uint8_t *file = tb_load("batch-kcat-zstd.bin", &flen);
	assert_int_equal(tb_edit_validate(file, flen, off, 4, 3, BATCH_CHECK_ALL), SL_ECORRUPT);
	assert_int_equal(tb_edit_validate(file, flen, off, 4, 10, BATCH_CHECK_ALL), SL_OK);
	assert_int_equal(tb_edit_validate(file, flen, off, 4, 10,
					  BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE), SL_ECORRUPT);
	free(file);
	free(buf);
}

/* Builds a batch from explicit offset deltas (batch_builder cannot: it
 * numbers records 0, 1, 2...). */
static size_t tb_build_deltas(uint8_t *buf, const int32_t *deltas, int n, int32_t lod)
{
	size_t pos = BATCH_HEADER_BYTES;
	struct tb_std s;
	for (int i = 0; i < n; i++) {
		tb_std_record(i, &s);
		s.rec.offset_delta = deltas[i];
		pos += tb_put_record(buf + pos, &s.rec);
	}
	struct batch_header b = tb_batch_default(n);
	b.last_offset_delta = lod;
	return tb_finish(buf, pos - BATCH_HEADER_BYTES, &b);
}

static void test_offset_deltas(void **state)
{
	uint8_t *buf = tb_alloc();
	struct batch_header h;
	size_t size;

	(void)state;
	static const int32_t gaps[] = { 0, 2, 5 };
	size = tb_build_deltas(buf, gaps, 3, 5);      /* compacted */
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_OK);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &h),
			 SL_ECORRUPT);
	size = tb_build_deltas(buf, gaps, 3, 6);      /* compacted, last record removed */
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_OK);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &h),
			 SL_ECORRUPT);
	size = tb_build_deltas(buf, gaps, 3, 4);      /* a record past lastOffsetDelta */
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);

	static const int32_t dup[] = { 0, 1, 1 };
	size = tb_build_deltas(buf, dup, 3, 2);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	static const int32_t down[] = { 0, 2, 1 };
	size = tb_build_deltas(buf, down, 3, 2);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	static const int32_t neg[] = { -1, 0, 1 };
	size = tb_build_deltas(buf, neg, 3, 2);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	/* Out of order but ending on lastOffsetDelta: only the order check sees it. */
	static const int32_t tail_dup[] = { 0, 2, 2 };
	size = tb_build_deltas(buf, tail_dup, 3, 2);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	static const int32_t swap[] = { 0, 3, 2 };
	size = tb_build_deltas(buf, swap, 3, 2);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	static const int32_t neg_first[] = { -1, 1, 2 };
	size = tb_build_deltas(buf, neg_first, 3, 2);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	static const int32_t late[] = { 1, 2, 3 };    /* gaps at the front (compacted) */
	size = tb_build_deltas(buf, late, 3, 3);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h), SL_OK);
	assert_int_equal(tb_validate_exact(buf, size, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &h),
			 SL_ECORRUPT);
	free(buf);
}

static void test_timestamps(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 3);
	uint8_t *copy = tb_dup(buf, size);
	struct batch_header h;

	(void)state;
	be64_store(copy + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)TB_TS0 - 1);
	tb_crc_refresh(copy);
	assert_int_equal(batch_validate(copy, size, BATCH_CHECK_ALL, &h), SL_ECORRUPT);
	be16_store(copy + BATCH_OFF_ATTRIBUTES, BATCH_ATTR_TIMESTAMP_LOG_APPEND);
	tb_crc_refresh(copy);
	assert_int_equal(batch_validate(copy, size, BATCH_CHECK_ALL, &h), SL_OK);
	free(copy);
	free(buf);
}

/* Hand-made records for the record-level corruptions. */
static size_t tb_one_raw_record(uint8_t *buf, const uint8_t *rec, size_t rec_len, int32_t count)
{
	memcpy(buf + BATCH_HEADER_BYTES, rec, rec_len);
	struct batch_header b = tb_batch_default(count);
	return tb_finish(buf, rec_len, &b);
}

static enum sl_err tb_raw_validate(const uint8_t *rec, size_t rec_len)
{
	uint8_t *buf = tb_alloc();
	struct batch_header h;
	size_t size = tb_one_raw_record(buf, rec, rec_len, 1);
	enum sl_err err = tb_validate_exact(buf, size, BATCH_CHECK_ALL, &h);
	free(buf);
	return err;
}

static void test_record_shapes(void **state)
{
	(void)state;
	/* length 7 (zigzag 14): attr, ts 0, off 0, key "a", value null, 0 headers */
	static const uint8_t good[] = { 14, 0, 0, 0, 2, 'a', 1, 0 };
	assert_int_equal(tb_raw_validate(good, sizeof(good)), SL_OK);
	/* Same length in a 5-byte non-minimal varint: Kafka accepts it. */
	static const uint8_t long5[] = { 0x8e, 0x80, 0x80, 0x80, 0x00, 0, 0, 0, 2, 'a', 1, 0 };
	assert_int_equal(tb_raw_validate(long5, sizeof(long5)), SL_OK);
	/* Overlong: six bytes. */
	static const uint8_t long6[] = { 0x8e, 0x80, 0x80, 0x80, 0x80, 0x00, 0, 0, 0, 2, 'a', 1, 0 };
	assert_int_equal(tb_raw_validate(long6, sizeof(long6)), SL_ECORRUPT);
	/* Length one too big / too small / negative / below the minimum. */
	static const uint8_t big[] = { 16, 0, 0, 0, 2, 'a', 1, 0, 0 };
	assert_int_equal(tb_raw_validate(big, sizeof(big)), SL_ECORRUPT);
	static const uint8_t small[] = { 12, 0, 0, 0, 2, 'a', 1, 0 };
	assert_int_equal(tb_raw_validate(small, sizeof(small)), SL_ECORRUPT);
	static const uint8_t neg[] = { 13, 0, 0, 0, 2, 'a', 1, 0 };
	assert_int_equal(tb_raw_validate(neg, sizeof(neg)), SL_ECORRUPT);
	static const uint8_t tiny[] = { 2, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(tb_raw_validate(tiny, sizeof(tiny)), SL_ECORRUPT);
	/* Key length -2, and key longer than the record. */
	static const uint8_t key_m2[] = { 14, 0, 0, 0, 3, 'a', 1, 0 };
	assert_int_equal(tb_raw_validate(key_m2, sizeof(key_m2)), SL_ECORRUPT);
	static const uint8_t key_long[] = { 14, 0, 0, 0, 20, 'a', 1, 0 };
	assert_int_equal(tb_raw_validate(key_long, sizeof(key_long)), SL_ECORRUPT);
	/* Headers: one with key "k", null value; null key is corrupt; count
	 * beyond the bytes; count negative. */
	static const uint8_t hdr_ok[] = { 20, 0, 0, 0, 2, 'a', 1, 2, 2, 'k', 1 };
	assert_int_equal(tb_raw_validate(hdr_ok, sizeof(hdr_ok)), SL_OK);
	static const uint8_t hdr_nullkey[] = { 18, 0, 0, 0, 2, 'a', 1, 2, 1, 1 };
	assert_int_equal(tb_raw_validate(hdr_nullkey, sizeof(hdr_nullkey)), SL_ECORRUPT);
	static const uint8_t hdr_many[] = { 20, 0, 0, 0, 2, 'a', 1, 0x7e, 2, 'k', 1 };
	assert_int_equal(tb_raw_validate(hdr_many, sizeof(hdr_many)), SL_ECORRUPT);
	static const uint8_t hdr_neg[] = { 20, 0, 0, 0, 2, 'a', 1, 1, 2, 'k', 1 };
	assert_int_equal(tb_raw_validate(hdr_neg, sizeof(hdr_neg)), SL_ECORRUPT);
	/* Timestamp delta as an 11-byte varlong. */
	static const uint8_t ts11[] = { 34, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
					0x80, 0x80, 0x00, 0, 2, 'a', 1, 0 };
	assert_int_equal(tb_raw_validate(ts11, sizeof(ts11)), SL_ECORRUPT);
}

static void test_record_walker_errors(void **state)
{
	uint8_t *buf = tb_alloc();
	size_t size = tb_build(buf, TB_CAP, 3);
	const uint8_t *recs = buf + BATCH_HEADER_BYTES;
	size_t len = size - BATCH_HEADER_BYTES;
	struct batch_record_iter it;
	struct batch_record r;

	(void)state;
	/* Count one more than present: three OK then corrupt, sticky. */
	batch_record_iter_init(&it, recs, len, 4);
	for (int i = 0; i < 3; i++)
		assert_int_equal(batch_record_next(&it, &r), SL_OK);
	assert_int_equal(batch_record_next(&it, &r), SL_ECORRUPT);
	assert_int_equal(batch_record_next(&it, &r), SL_ECORRUPT);
	/* One fewer: bytes left over. */
	batch_record_iter_init(&it, recs, len, 2);
	assert_int_equal(batch_record_next(&it, &r), SL_OK);
	assert_int_equal(batch_record_next(&it, &r), SL_OK);
	assert_int_equal(batch_record_next(&it, &r), SL_ECORRUPT);
	assert_int_equal(batch_record_next(&it, &r), SL_ECORRUPT);
	/* Negative count, and empty. */
	batch_record_iter_init(&it, recs, len, -1);
	assert_int_equal(batch_record_next(&it, &r), SL_ECORRUPT);
	batch_record_iter_init(&it, recs, 0, 0);
	assert_int_equal(batch_record_next(&it, &r), SL_ENOTFOUND);
	/* The record set cut anywhere is corrupt, never an overread. */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = tb_dup(recs, cut);
		enum sl_err err = SL_OK;
		batch_record_iter_init(&it, copy, cut, 3);
		for (int i = 0; i < 4 && err == SL_OK; i++)
			err = batch_record_next(&it, &r);
		assert_int_equal(err, SL_ECORRUPT);
		free(copy);
	}
	/* Sizes add up. */
	size_t total = 0;
	batch_record_iter_init(&it, recs, len, 3);
	while (batch_record_next(&it, &r) == SL_OK)
		total += r.size_bytes;
	assert_int_equal(total, len);
	free(buf);
}

/* A header walk over a hand-filled record with bad bytes reports corruption. */
static void test_header_walker_bad(void **state)
{
	static const uint8_t hdrs[] = { 2, 'k', 0x7f };  /* value length -64 */
	struct batch_record r = { .headers_count = 1, .headers = hdrs, .headers_bytes = 3 };
	struct batch_record_header hdr;
	int32_t idx = 0;
	size_t pos = 0;

	(void)state;
	assert_int_equal(batch_record_header_next(&r, &idx, &pos, &hdr), SL_ECORRUPT);
	assert_int_equal(idx, 0);
	assert_int_equal(pos, 0);
	/* Bytes after the last header. */
	static const uint8_t extra[] = { 2, 'k', 0, 9 };
	struct batch_record r2 = { .headers_count = 1, .headers = extra, .headers_bytes = 4 };
	assert_int_equal(batch_record_header_next(&r2, &idx, &pos, &hdr), SL_OK);
	assert_int_equal(hdr.value_len, 0);
	assert_int_equal(batch_record_header_next(&r2, &idx, &pos, &hdr), SL_ECORRUPT);
}

/* ------------------------------------------------------------- rewrites */

static void test_set_offset_and_epoch(void **state)
{
	size_t len;
	uint8_t *buf = tb_load("batch-kcat-idempotent.bin", &len);
	struct batch_header h;
	uint32_t crc_before = be32_load(buf + BATCH_OFF_CRC);

	(void)state;
	batch_set_base_offset(buf, 123456789012LL);
	batch_set_leader_epoch(buf, 77);
	assert_int_equal(be32_load(buf + BATCH_OFF_CRC), crc_before);
	assert_int_equal(tb_validate_exact(buf, len, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &h),
			 SL_OK);
	assert_int_equal(h.base_offset, 123456789012LL);
	assert_int_equal(h.partition_leader_epoch, 77);
	assert_int_equal(batch_last_offset(&h), 123456789012LL + 4);
	assert_int_equal(h.producer_id, 4242);
	batch_set_leader_epoch(buf, -1);
	batch_set_base_offset(buf, 0);
	assert_int_equal(tb_validate_exact(buf, len, BATCH_CHECK_ALL, &h), SL_OK);
	assert_int_equal(h.partition_leader_epoch, -1);
	assert_int_equal(h.base_offset, 0);
	free(buf);
}

static void test_set_log_append_time(void **state)
{
	static const char *files[] = { "batch-kcat-none.bin", "batch-kcat-lz4.bin" };
	(void)state;
	for (size_t i = 0; i < SL_ARRAY_LEN(files); i++) {
		size_t len;
		uint8_t *buf = tb_load(files[i], &len);
		struct batch_header before, after;
		assert_int_equal(batch_validate(buf, len, BATCH_CHECK_ALL, &before), SL_OK);

		int64_t now = before.base_timestamp - 5000;  /* even earlier than base */
		batch_set_log_append_time(buf, now);
		assert_int_equal(tb_validate_exact(buf, len, BATCH_CHECK_ALL, &after), SL_OK);
		assert_true(after.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND);
		assert_int_equal(after.attributes & BATCH_ATTR_COMPRESSION_MASK,
				 before.attributes & BATCH_ATTR_COMPRESSION_MASK);
		assert_int_equal(after.max_timestamp, now);
		assert_int_equal(after.base_timestamp, before.base_timestamp);
		assert_int_not_equal(after.crc, before.crc);
		assert_int_equal(after.crc, crc32c(0, buf + BATCH_OFF_ATTRIBUTES,
						   len - BATCH_OFF_ATTRIBUTES));
		/* Idempotent: a second call gives the same bytes. */
		uint8_t *copy = tb_dup(buf, len);
		batch_set_log_append_time(copy, now);
		assert_memory_equal(copy, buf, len);
		free(copy);
		free(buf);
	}
}

/* ------------------------------------------------------------- iterator */

static void test_iter_concat(void **state)
{
	uint8_t *set = tb_alloc();
	uint8_t *one = tb_alloc();
	size_t starts[5], sizes[5], pos = 0, flen;
	uint8_t *file = tb_load("batch-kcat-gzip.bin", &flen);

	(void)state;
	for (int i = 0; i < 4; i++) {
		size_t n = i == 2 ? flen : tb_build(one, TB_CAP, 1 + i * 3);
		const uint8_t *src = i == 2 ? file : one;
		memcpy(set + pos, src, n);
		batch_set_base_offset(set + pos, (int64_t)(100 * i));
		starts[i] = pos;
		sizes[i] = n;
		pos += n;
	}

	/* Clean end. */
	uint8_t *exact = tb_dup(set, pos);
	struct batch_iter it;
	struct batch_header h;
	const uint8_t *b;
	batch_iter_init(&it, exact, pos, BATCH_CHECK_ALL);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(batch_iter_next(&it, &h, &b), SL_OK);
		assert_ptr_equal(b, exact + starts[i]);
		assert_int_equal(batch_size_bytes(&h), sizes[i]);
		assert_int_equal(h.base_offset, 100 * i);
		assert_int_equal(it.pos, starts[i] + sizes[i]);
	}
	assert_int_equal(batch_iter_next(&it, &h, &b), SL_ENOTFOUND);
	assert_int_equal(batch_iter_next(&it, &h, &b), SL_ENOTFOUND);
	free(exact);

	/* Partial trailing batch: every cut of a fifth batch is SL_ETRUNC,
	 * pos stays at its start, and the error repeats. */
	size_t fifth = tb_build(one, TB_CAP, 2);
	memcpy(set + pos, one, fifth);
	for (size_t cut = 1; cut < fifth; cut++) {
		uint8_t *tail = tb_dup(set, pos + cut);
		batch_iter_init(&it, tail, pos + cut, BATCH_CHECK_ALL);
		for (int i = 0; i < 4; i++)
			assert_int_equal(batch_iter_next(&it, &h, &b), SL_OK);
		assert_int_equal(batch_iter_next(&it, &h, &b), SL_ETRUNC);
		assert_int_equal(it.pos, pos);
		assert_int_equal(batch_iter_next(&it, &h, &b), SL_ETRUNC);
		free(tail);
	}

	/* Garbage after the good batches: random bytes, zeros, and a batch with
	 * a damaged CRC. */
	static const uint8_t fills[] = { 0xab, 0x00, 0xff };
	for (size_t f = 0; f < SL_ARRAY_LEN(fills) + 1; f++) {
		if (f < SL_ARRAY_LEN(fills)) {
			memset(set + pos, fills[f], 64);
		} else {
			memcpy(set + pos, one, 64);
			set[pos + 40] ^= 1;
		}
		uint8_t *g = tb_dup(set, pos + 64);
		batch_iter_init(&it, g, pos + 64, BATCH_CHECK_ALL);
		for (int i = 0; i < 4; i++)
			assert_int_equal(batch_iter_next(&it, &h, &b), SL_OK);
		enum sl_err err = batch_iter_next(&it, &h, &b);
		/* 0xff.. is batchLength -1, zeros batchLength 0: both too small;
		 * the damaged batch is cut to 64 bytes but claims more, so
		 * truncation is what can be said about it. */
		assert_int_equal(err, f < SL_ARRAY_LEN(fills) ? SL_ECORRUPT : SL_ETRUNC);
		assert_int_equal(it.pos, pos);
		free(g);
	}
	/* A whole fifth batch with a bad CRC is corrupt. */
	memcpy(set + pos, one, fifth);
	set[pos + fifth - 1] ^= 0x40;
	uint8_t *g = tb_dup(set, pos + fifth);
	batch_iter_init(&it, g, pos + fifth, BATCH_CHECK_ALL);
	for (int i = 0; i < 4; i++)
		assert_int_equal(batch_iter_next(&it, &h, &b), SL_OK);
	assert_int_equal(batch_iter_next(&it, &h, &b), SL_ECORRUPT);
	free(g);

	free(file);
	free(one);
	free(set);
}

static void test_iter_empty(void **state)
{
	struct batch_iter it;
	struct batch_header h;
	const uint8_t *b;

	(void)state;
	batch_iter_init(&it, NULL, 0, BATCH_CHECK_ALL);
	assert_int_equal(batch_iter_next(&it, &h, &b), SL_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captured_batches),
		cmocka_unit_test(test_builder_roundtrip),
		cmocka_unit_test(test_validate_longer_buffer),
		cmocka_unit_test(test_varint_decode),
		cmocka_unit_test(test_varlong_decode),
		cmocka_unit_test(test_flip_each_byte),
		cmocka_unit_test(test_random_damage_crc_repaired),
		cmocka_unit_test(test_truncate_every_length),
		cmocka_unit_test(test_batch_length_bad),
		cmocka_unit_test(test_magic),
		cmocka_unit_test(test_records_count_bad),
		cmocka_unit_test(test_attributes_bad),
		cmocka_unit_test(test_last_offset_delta_bad),
		cmocka_unit_test(test_offset_deltas),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_record_shapes),
		cmocka_unit_test(test_record_walker_errors),
		cmocka_unit_test(test_header_walker_bad),
		cmocka_unit_test(test_set_offset_and_epoch),
		cmocka_unit_test(test_set_log_append_time),
		cmocka_unit_test(test_iter_concat),
		cmocka_unit_test(test_iter_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
