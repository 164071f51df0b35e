/*
 * fuzz_batch.c — libFuzzer target for the record batch code (core/batch.h):
 * batch_header_parse, batch_validate under every check set, the batch
 * iterator, the record and record-header walkers and the in-place rewrites,
 * over arbitrary bytes. The input is a record set as a producer sends it
 * (one or more batches back to back); seeds are the captured batches in
 * tests/data/ (the .bin files).
 *
 * Properties checked (abort() with a message when one fails):
 *   1. No read outside the input (ASan: the input is an exact-size heap
 *      copy), no UB (UBSan), no SL_ASSERT, only documented error codes.
 *   2. Check sets are monotone: ALL|PRODUCE ok => ALL ok => RECORDS ok and
 *      CRC ok, with identical decoded headers, and batch_header_parse agrees.
 *   3. The iterator moves forward by whole batches that each validate on
 *      their own, and stops on the documented codes.
 *   4. In a batch that validates, the record walker yields exactly
 *      records_count records with strictly increasing offset deltas ending
 *      at lastOffsetDelta, every key/value/header inside the batch, headers
 *      that use exactly the bytes the record gives them.
 *   5. Rewriting baseOffset and leader epoch keeps the CRC valid;
 *      LogAppendTime recomputes it.
 *   6. The record walker and the varint readers on raw input never crash.
 * Each input is checked twice: as it is, and with every batch's CRC
 * recomputed, so that mutations behind the CRC reach properties 2-5.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "bytes.h"
#include "crc32c.h"
#include "sl.h"

/* Most batches one iteration may yield: each takes >= BATCH_HEADER_BYTES. */
#define FUZZ_BATCH_ITER_MAX(len) ((len) / BATCH_HEADER_BYTES + 1)
#define FUZZ_BATCH_RAW_RECORDS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the byte checksums go, so the compiler must do the reads. */
static volatile uint32_t fuzz_batch_sink;

static void fuzz_fail(const char *what, enum sl_err err)
{
	fprintf(stderr, "fuzz_batch: %s (%s)\n", what, sl_err_str(err));
	abort();
}

static int fuzz_header_equal(const struct batch_header *a, const struct batch_header *b)
{
	return a->base_offset == b->base_offset && a->batch_length == b->batch_length &&
	       a->partition_leader_epoch == b->partition_leader_epoch && a->magic == b->magic &&
	       a->crc == b->crc && a->attributes == b->attributes &&
	       a->last_offset_delta == b->last_offset_delta &&
	       a->base_timestamp == b->base_timestamp && a->max_timestamp == b->max_timestamp &&
	       a->producer_id == b->producer_id && a->producer_epoch == b->producer_epoch &&
	       a->base_sequence == b->base_sequence && a->records_count == b->records_count;
}

static int fuzz_err_known(enum sl_err err)
{
	return err == SL_OK || err == SL_ETRUNC || err == SL_ECORRUPT;
}

/* Reads every byte of a slice (ASan checks them) and folds them into *sum. */
static void fuzz_touch(const uint8_t *lo, const uint8_t *hi, const uint8_t *p, int32_t len,
		       uint32_t *sum)
{
	if (len == -1) {
		if (p != NULL)
			fuzz_fail("null slice with a pointer", SL_OK);
		return;
	}
	if (len < 0 || p == NULL || p < lo || p > hi || (size_t)len > (size_t)(hi - p))
		fuzz_fail("slice outside the batch", SL_OK);
	for (int32_t i = 0; i < len; i++)
		*sum = *sum * 31u + p[i];
}

/*
 * Walks every header of `r`: each inside [lo, hi), exactly headers_count of
 * them, using exactly headers_bytes.
 */
static void fuzz_walk_headers(const struct batch_record *r, const uint8_t *lo, const uint8_t *hi,
			      uint32_t *sum)
{
	struct batch_record_header hdr;
	int32_t idx = 0;
	size_t pos = 0;
	enum sl_err err = SL_OK;

	for (int32_t n = 0; n <= r->headers_count; n++) {
		err = batch_record_header_next(r, &idx, &pos, &hdr);
		if (err != SL_OK)
			break;
		if (hdr.key_len < 0)
			fuzz_fail("header with a null key", err);
		fuzz_touch(lo, hi, hdr.key, hdr.key_len, sum);
		fuzz_touch(lo, hi, hdr.value, hdr.value_len, sum);
	}
	if (err != SL_ENOTFOUND || idx != r->headers_count || pos != r->headers_bytes)
		fuzz_fail("record headers do not walk to their end", err);
}

/* Property 4 on one batch that validated with BATCH_CHECK_RECORDS. */
static void fuzz_walk_records(const uint8_t *batch, const struct batch_header *h, uint32_t *sum)
{
	const uint8_t *lo = batch + BATCH_HEADER_BYTES;
	const uint8_t *hi = batch + batch_size_bytes(h);
	struct batch_record_iter it;
	struct batch_record r;
	int64_t prev_delta = -1;
	int32_t seen = 0;
	enum sl_err err = SL_OK;

	batch_record_iter_init(&it, lo, (size_t)(hi - lo), h->records_count);
	for (int32_t n = 0; n <= h->records_count; n++) {
		err = batch_record_next(&it, &r);
		if (err != SL_OK)
			break;
		if (r.offset_delta <= prev_delta)
			fuzz_fail("offset deltas not increasing in a valid batch", err);
		prev_delta = r.offset_delta;
		if (r.headers_count < 0 || r.size_bytes < BATCH_RECORD_BYTES_MIN)
			fuzz_fail("impossible record in a valid batch", err);
		fuzz_touch(lo, hi, r.key, r.key_len, sum);
		fuzz_touch(lo, hi, r.value, r.value_len, sum);
		if (r.headers_bytes > 0)
			fuzz_touch(lo, hi, r.headers, (int32_t)r.headers_bytes, sum);
		fuzz_walk_headers(&r, lo, hi, sum);
		seen++;
	}
	if (err != SL_ENOTFOUND)
		fuzz_fail("record walker fails on a batch that validated", err);
	if (seen != h->records_count)
		fuzz_fail("record walker count differs from records count", err);
	/* Compacted batches may end before lastOffsetDelta (Kafka keeps it). */
	if (seen > 0 && prev_delta > h->last_offset_delta)
		fuzz_fail("last offset delta beyond lastOffsetDelta", err);
}

/* Property 5: rewrites on a copy of a batch that validated with CHECK_ALL. */
static void fuzz_rewrites(const uint8_t *batch, const struct batch_header *h)
{
	size_t len = batch_size_bytes(h);
	uint8_t *copy = malloc(len);
	struct batch_header h2;
	enum sl_err err;

	SL_ASSERT(copy != NULL);
	memcpy(copy, batch, len);
	batch_set_base_offset(copy, 1234567);
	batch_set_leader_epoch(copy, 42);
	err = batch_validate(copy, len, BATCH_CHECK_ALL, &h2);
	if (err != SL_OK || h2.base_offset != 1234567 || h2.partition_leader_epoch != 42)
		fuzz_fail("baseOffset / leader epoch rewrite broke the batch", err);
	batch_set_log_append_time(copy, 1700000000000LL);
	err = batch_validate(copy, len, BATCH_CHECK_ALL, &h2);
	if (err != SL_OK || h2.max_timestamp != 1700000000000LL ||
	    !(h2.attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND))
		fuzz_fail("LogAppendTime rewrite broke the batch", err);
	free(copy);
}

/* Property 2 on the first batch of the buffer. */
static void fuzz_check_sets(const uint8_t *buf, size_t len)
{
	static const int sets[] = {
		BATCH_CHECK_CRC, BATCH_CHECK_RECORDS, BATCH_CHECK_ALL,
		BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, BATCH_CHECK_RECORDS | BATCH_CHECK_PRODUCE,
	};
	struct batch_header h[SL_ARRAY_LEN(sets)];
	struct batch_header hp;
	enum sl_err err[SL_ARRAY_LEN(sets)];
	enum sl_err perr = batch_header_parse(buf, len, &hp);

	if (!fuzz_err_known(perr))
		fuzz_fail("batch_header_parse: undocumented error", perr);
	for (size_t i = 0; i < SL_ARRAY_LEN(sets); i++) {
		err[i] = batch_validate(buf, len, (enum batch_check)sets[i], &h[i]);
		if (!fuzz_err_known(err[i]))
			fuzz_fail("batch_validate: undocumented error", err[i]);
		if (err[i] == SL_OK && (perr != SL_OK || !fuzz_header_equal(&h[i], &hp) ||
					batch_size_bytes(&h[i]) > len))
			fuzz_fail("batch_validate ok but header parse disagrees", perr);
	}
	/* sets: 0 CRC, 1 RECORDS, 2 ALL, 3 ALL|PRODUCE, 4 RECORDS|PRODUCE */
	if (err[2] == SL_OK && (err[0] != SL_OK || err[1] != SL_OK))
		fuzz_fail("CHECK_ALL ok but CRC or RECORDS alone fails", err[2]);
	if (err[3] == SL_OK && (err[2] != SL_OK || err[4] != SL_OK))
		fuzz_fail("ALL|PRODUCE ok but a weaker set fails", err[3]);
	if (err[4] == SL_OK && err[1] != SL_OK)
		fuzz_fail("RECORDS|PRODUCE ok but RECORDS fails", err[4]);
	if (err[2] == SL_OK)
		fuzz_rewrites(buf, &h[2]);
}

/* Property 3 (and 4 per batch) over the whole buffer with `checks`. */
static void fuzz_iterate(const uint8_t *buf, size_t len, enum batch_check checks, uint32_t *sum)
{
	struct batch_iter it;
	struct batch_header h, h2;
	const uint8_t *batch;
	enum sl_err err = SL_OK;

	batch_iter_init(&it, buf, len, checks);
	for (size_t n = 0; n <= FUZZ_BATCH_ITER_MAX(len); n++) {
		size_t pos = it.pos;

		err = batch_iter_next(&it, &h, &batch);
		if (err != SL_OK)
			break;
		if (batch != buf + pos || it.pos != pos + batch_size_bytes(&h) || it.pos > len)
			fuzz_fail("iterator did not advance by one whole batch", err);
		if (batch_validate(batch, len - pos, checks, &h2) != SL_OK ||
		    !fuzz_header_equal(&h, &h2))
			fuzz_fail("iterated batch does not validate alone", err);
		if ((checks & BATCH_CHECK_RECORDS) &&
		    (h.attributes & BATCH_ATTR_COMPRESSION_MASK) == BATCH_COMPRESSION_NONE)
			fuzz_walk_records(batch, &h, sum);
	}
	if (err == SL_OK)
		fuzz_fail("iterator yielded more batches than fit", err);
	if (err != SL_ENOTFOUND && err != SL_ETRUNC && err != SL_ECORRUPT)
		fuzz_fail("iterator: undocumented error", err);
	if (err == SL_ENOTFOUND && it.pos != len)
		fuzz_fail("iterator ended cleanly before the end", err);
}

/* Property 6: the walkers on raw bytes, the record count from byte 0. */
static void fuzz_raw(const uint8_t *buf, size_t len, uint32_t *sum)
{
	struct batch_record_iter it;
	struct batch_record r;
	const uint8_t *p = buf;
	const uint8_t *end = buf + len;
	int32_t count;

	if (len == 0)
		return;
	count = buf[0] % FUZZ_BATCH_RAW_RECORDS_MAX;
	batch_record_iter_init(&it, buf + 1, len - 1, count);
	for (int32_t n = 0; n <= count; n++) {
		if (batch_record_next(&it, &r) != SL_OK)
			break;
		fuzz_touch(buf, end, r.key, r.key_len, sum);
		fuzz_touch(buf, end, r.value, r.value_len, sum);
		fuzz_walk_headers(&r, buf, end, sum);
	}
	for (size_t n = 0; n < len && p < end; n++) {
		int32_t v32;
		int64_t v64;
		const uint8_t *q = p;

		if (batch_varlong_read(&q, end, &v64) == SL_OK && q <= p)
			fuzz_fail("varlong read did not advance", SL_OK);
		q = p;
		if (batch_varint_read(&q, end, &v32) != SL_OK)
			q = p + 1;
		if (q <= p || q > end)
			fuzz_fail("varint read moved the cursor wrongly", SL_OK);
		p = q;
	}
}

/*
 * Recomputes the CRC of every batch whose header parses, front to back, so
 * that mutated records and attributes get past the CRC check and reach the
 * deeper checks (a mutated input almost never carries a right CRC).
 * Returns how many batches were repaired.
 */
static size_t fuzz_fix_crcs(uint8_t *buf, size_t len)
{
	size_t pos = 0;
	size_t n;

	for (n = 0; n < FUZZ_BATCH_ITER_MAX(len) && pos < len; n++) {
		struct batch_header h;
		size_t size;

		if (batch_header_parse(buf + pos, len - pos, &h) != SL_OK)
			break;
		size = batch_size_bytes(&h);
		be32_store(buf + pos + BATCH_OFF_CRC,
			   crc32c(0, buf + pos + BATCH_OFF_ATTRIBUTES, size - BATCH_OFF_ATTRIBUTES));
		pos += size;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy we may write to (the rewrites take copies too). */
	uint8_t *buf = malloc(size > 0 ? size : 1);
	uint32_t sum = 0;

	SL_ASSERT(buf != NULL);
	if (size > 0)
		memcpy(buf, data, size);
	fuzz_check_sets(buf, size);
	fuzz_iterate(buf, size, BATCH_CHECK_RECORDS, &sum);
	fuzz_iterate(buf, size, BATCH_CHECK_ALL, &sum);
	fuzz_raw(buf, size, &sum);
	/* The same bytes with every CRC made right: the checks behind the CRC. */
	if (fuzz_fix_crcs(buf, size) > 0) {
		fuzz_check_sets(buf, size);
		fuzz_iterate(buf, size, BATCH_CHECK_ALL | BATCH_CHECK_PRODUCE, &sum);
	}
	free(buf);
	/* Keeps the touched bytes live so the reads are not optimised away. */
	fuzz_batch_sink = sum;
	return 0;
}
