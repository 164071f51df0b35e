/*
 * batch.c — the Kafka record batch v2: header decoding, validation, the
 * in-place rewrites the broker makes on append, and walkers over batches and
 * over the records inside an uncompressed batch.
 *
 * Record layout inside the batch (all varints zigzag-encoded):
 *   length varint            — bytes of the record after this field
 *   attributes int8          — unused, kept as is
 *   timestampDelta varlong   — from baseTimestamp
 *   offsetDelta varint       — from baseOffset
 *   keyLength varint, key    — -1 = null key
 *   valueLen varint, value   — -1 = null value
 *   headers count varint, then per header:
 *     headerKeyLength varint (>= 0), headerKey,
 *     headerValueLength varint (-1 = null), value
 *
 * Invariants this file keeps:
 *   1. No read past `len` (batches) or past the record set's end (records):
 *      every length and count is compared with the bytes left before it is
 *      used, and a count is compared with the smallest possible encoding of
 *      that many items before any loop runs on it.
 *   2. Varints are at most 5 bytes (int32) or 10 bytes (int64); a final
 *      byte carrying bits beyond the type is corrupt. Non-minimal encodings
 *      are accepted, as Kafka accepts them.
 *   3. Bytes from outside are never asserted on: a bad batch is SL_ETRUNC
 *      or SL_ECORRUPT. Assertions only guard our own callers' contracts.
 *   4. Every loop is bounded by a count already checked against the bytes.
 *
 * Nothing here allocates or keeps state; everything may run on any shard.
 */
#include "batch.h"

#include "crc32c.h"

/* Fixed header bytes counted by batchLength (from partitionLeaderEpoch on). */
#define BATCH_LENGTH_MIN (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD)
/* Smallest body after a record's length varint: six one-byte fields. */
#define BATCH_RECORD_BODY_MIN (BATCH_RECORD_BYTES_MIN - 1)
/* Smallest header: two one-byte length varints (empty key, empty value). */
#define BATCH_RECORD_HEADER_MIN 2
/* Codec numbers above this are unknown. */
#define BATCH_COMPRESSION_MAX BATCH_COMPRESSION_ZSTD

_Static_assert(BATCH_LENGTH_MIN == 49, "v2 header after the log overhead is 49 bytes");
_Static_assert(BATCH_OFF_RECORDS_COUNT + 4 == BATCH_HEADER_BYTES, "records count ends the header");

/* ---- varints ---- */

static int32_t batch_zigzag32(uint32_t raw)
{
	return (int32_t)(raw >> 1) ^ -(int32_t)(raw & 1);
}

static int64_t batch_zigzag64(uint64_t raw)
{
	return (int64_t)(raw >> 1) ^ -(int64_t)(raw & 1);
}

/*
 * Decodes an unsigned base-128 varint of at most `bytes_max` bytes whose
 * last allowed byte may not exceed `last_max`. SL_ETRUNC when `end` comes
 * first, SL_ECORRUPT when too long. *p advances only on success.
 */
static enum sl_err batch_uvarint_read(const uint8_t **p, const uint8_t *end, unsigned bytes_max,
				      uint8_t last_max, uint64_t *out)
{
	const uint8_t *q = *p;
	uint64_t raw = 0;

	SL_ASSERT(q <= end);
	SL_ASSERT(bytes_max >= 1 && bytes_max <= 10);
	for (unsigned i = 0; i < bytes_max; i++) {
		if (q == end)
			return SL_ETRUNC;
		uint8_t b = *q++;
		if (i == bytes_max - 1 && b > last_max)
			return SL_ECORRUPT;  /* overlong, or bits beyond the type */
		raw |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*p = q;
			*out = raw;
			return SL_OK;
		}
	}
	/* Unreachable: last_max < 0x80 rejects a continuation bit on the last byte. */
	return SL_ECORRUPT;
}

enum sl_err batch_varint_read(const uint8_t **p, const uint8_t *end, int32_t *out)
{
	uint64_t raw = 0;
	enum sl_err err = batch_uvarint_read(p, end, 5, 0x0f, &raw);

	if (err != SL_OK)
		return err;
	SL_ASSERT(raw <= UINT32_MAX);
	*out = batch_zigzag32((uint32_t)raw);
	return SL_OK;
}

enum sl_err batch_varlong_read(const uint8_t **p, const uint8_t *end, int64_t *out)
{
	uint64_t raw = 0;
	enum sl_err err = batch_uvarint_read(p, end, 10, 0x01, &raw);

	if (err != SL_OK)
		return err;
	*out = batch_zigzag64(raw);
	return SL_OK;
}

/*
 * Record-internal cursor with a sticky error. Inside a record the end is
 * known (the batch or the record length), so running out of bytes there is
 * corruption, not truncation: every failure becomes SL_ECORRUPT.
 */
struct batch_rd {
	const uint8_t *p;
	const uint8_t *end;
	enum sl_err err;
};

static int32_t batch_rd_varint(struct batch_rd *rd)
{
	int32_t v = 0;

	if (rd->err == SL_OK && batch_varint_read(&rd->p, rd->end, &v) != SL_OK)
		rd->err = SL_ECORRUPT;
	return rd->err == SL_OK ? v : 0;
}

static int64_t batch_rd_varlong(struct batch_rd *rd)
{
	int64_t v = 0;

	if (rd->err == SL_OK && batch_varlong_read(&rd->p, rd->end, &v) != SL_OK)
		rd->err = SL_ECORRUPT;
	return rd->err == SL_OK ? v : 0;
}

/*
 * Reads a length-prefixed byte field whose length must be >= `len_min`
 * (-1 allows null). Returns the field (NULL for null or on error) and sets
 * *len_out.
 */
static const uint8_t *batch_rd_bytes(struct batch_rd *rd, int32_t len_min, int32_t *len_out)
{
	int32_t n = batch_rd_varint(rd);
	const uint8_t *field = NULL;

	*len_out = 0;
	if (rd->err != SL_OK)
		return NULL;
	if (n < len_min || (n > 0 && (size_t)n > (size_t)(rd->end - rd->p))) {
		rd->err = SL_ECORRUPT;
		return NULL;
	}
	*len_out = n;
	if (n >= 0) {
		field = rd->p;
		rd->p += n;
	}
	SL_ASSERT(rd->p <= rd->end);
	return n >= 0 ? field : NULL;
}

/* Reads one record header (key length >= 0, value length >= -1). */
static void batch_rd_header(struct batch_rd *rd, struct batch_record_header *hdr)
{
	hdr->key = batch_rd_bytes(rd, 0, &hdr->key_len);
	hdr->value = batch_rd_bytes(rd, -1, &hdr->value_len);
}

/* ---- batch header ---- */

enum sl_err batch_header_parse(const uint8_t *buf, size_t len, struct batch_header *h)
{
	SL_ASSERT(buf != NULL || len == 0);
	SL_ASSERT(h != NULL);

	if (len < BATCH_LOG_OVERHEAD)
		return SL_ETRUNC;
	h->base_offset = (int64_t)be64_load(buf + BATCH_OFF_BASE_OFFSET);
	h->batch_length = (int32_t)be32_load(buf + BATCH_OFF_LENGTH);
	if (h->batch_length < BATCH_LENGTH_MIN)
		return SL_ECORRUPT;
	if (len < BATCH_OFF_CRC)
		return SL_ETRUNC;
	/* Magic before the rest: garbage in a torn tail is told from a short
	 * read as early as possible. */
	h->partition_leader_epoch = (int32_t)be32_load(buf + BATCH_OFF_LEADER_EPOCH);
	h->magic = (int8_t)buf[BATCH_OFF_MAGIC];
	if (h->magic != BATCH_MAGIC_V2)
		return SL_ECORRUPT;
	if (len < BATCH_HEADER_BYTES || batch_size_bytes(h) > len)
		return SL_ETRUNC;

	h->crc = be32_load(buf + BATCH_OFF_CRC);
	h->attributes = (int16_t)be16_load(buf + BATCH_OFF_ATTRIBUTES);
	h->last_offset_delta = (int32_t)be32_load(buf + BATCH_OFF_LAST_OFFSET_DELTA);
	h->base_timestamp = (int64_t)be64_load(buf + BATCH_OFF_BASE_TIMESTAMP);
	h->max_timestamp = (int64_t)be64_load(buf + BATCH_OFF_MAX_TIMESTAMP);
	h->producer_id = (int64_t)be64_load(buf + BATCH_OFF_PRODUCER_ID);
	h->producer_epoch = (int16_t)be16_load(buf + BATCH_OFF_PRODUCER_EPOCH);
	h->base_sequence = (int32_t)be32_load(buf + BATCH_OFF_BASE_SEQUENCE);
	h->records_count = (int32_t)be32_load(buf + BATCH_OFF_RECORDS_COUNT);
	SL_ASSERT(batch_size_bytes(h) >= BATCH_HEADER_BYTES && batch_size_bytes(h) <= len);
	return SL_OK;
}

/*
 * Header-only consistency: codec, control/transactional, offsets, counts
 * against the bytes that follow the header, timestamps. Cheap, so it runs
 * whatever `checks` says.
 */
static enum sl_err batch_check_header(const struct batch_header *h, enum batch_check checks)
{
	int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
	size_t record_bytes = batch_size_bytes(h) - BATCH_HEADER_BYTES;

	if (codec > BATCH_COMPRESSION_MAX)
		return SL_ECORRUPT;
	if ((h->attributes & BATCH_ATTR_CONTROL) && !(h->attributes & BATCH_ATTR_TRANSACTIONAL))
		return SL_ECORRUPT;
	if (h->last_offset_delta < 0 || h->records_count < 0)
		return SL_ECORRUPT;
	/* Deltas are >= 0 and strictly increasing, so n records need
	 * lastOffsetDelta >= n - 1. */
	if ((int64_t)h->records_count > (int64_t)h->last_offset_delta + 1)
		return SL_ECORRUPT;
	/* Empty batch (compaction leftover): no record bytes at all. */
	if ((h->records_count == 0) != (record_bytes == 0))
		return SL_ECORRUPT;
	if (codec == BATCH_COMPRESSION_NONE &&
	    (size_t)h->records_count > record_bytes / BATCH_RECORD_BYTES_MIN)
		return SL_ECORRUPT;
	if (!(h->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) &&
	    h->max_timestamp < h->base_timestamp)
		return SL_ECORRUPT;
	/* lastOffsetDelta >= 0 was checked, so this also means count >= 1. */
	if ((checks & BATCH_CHECK_PRODUCE) &&
	    (int64_t)h->records_count != (int64_t)h->last_offset_delta + 1)
		return SL_ECORRUPT;
	return SL_OK;
}

/*
 * Walks the records of an uncompressed batch: structure (by the record
 * walker), count, offset deltas strictly increasing from >= 0 and the last
 * at most lastOffsetDelta.
 */
static enum sl_err batch_check_records(const uint8_t *buf, const struct batch_header *h)
{
	struct batch_record_iter it;
	struct batch_record r;
	int64_t prev_delta = -1;
	int32_t seen = 0;
	enum sl_err err;

	SL_ASSERT((h->attributes & BATCH_ATTR_COMPRESSION_MASK) == BATCH_COMPRESSION_NONE);
	batch_record_iter_init(&it, buf + BATCH_HEADER_BYTES,
			       batch_size_bytes(h) - BATCH_HEADER_BYTES, h->records_count);
	while ((err = batch_record_next(&it, &r)) == SL_OK) {
		if ((int64_t)r.offset_delta <= prev_delta)
			return SL_ECORRUPT;
		prev_delta = r.offset_delta;
		seen++;
	}
	if (err != SL_ENOTFOUND)
		return err;
	SL_ASSERT(seen == h->records_count);
	/* Producers write deltas 0..lastOffsetDelta (BATCH_CHECK_PRODUCE checks
	 * that); compaction removes records but keeps lastOffsetDelta, as Kafka
	 * does, so the producer state rebuilt from the batch stays right. */
	if (seen > 0 && prev_delta > h->last_offset_delta)
		return SL_ECORRUPT;
	return SL_OK;
}

enum sl_err batch_validate(const uint8_t *buf, size_t len, enum batch_check checks,
			   struct batch_header *h)
{
	struct batch_header tmp;
	enum sl_err err;

	SL_ASSERT(buf != NULL || len == 0);
	SL_ASSERT(h != NULL);

	err = batch_header_parse(buf, len, &tmp);
	if (err != SL_OK)
		return err;
	if (checks & BATCH_CHECK_CRC) {
		size_t crc_len = batch_size_bytes(&tmp) - BATCH_OFF_ATTRIBUTES;
		if (crc32c(0, buf + BATCH_OFF_ATTRIBUTES, crc_len) != tmp.crc)
			return SL_ECORRUPT;
	}
	err = batch_check_header(&tmp, checks);
	if (err != SL_OK)
		return err;
	if ((checks & BATCH_CHECK_RECORDS) &&
	    (tmp.attributes & BATCH_ATTR_COMPRESSION_MASK) == BATCH_COMPRESSION_NONE) {
		err = batch_check_records(buf, &tmp);
		if (err != SL_OK)
			return err;
	}
	*h = tmp;
	SL_ASSERT(batch_size_bytes(h) <= len);
	return SL_OK;
}

/* ---- in-place rewrites ---- */

void batch_set_base_offset(uint8_t *buf, int64_t base_offset)
{
	SL_ASSERT(buf != NULL);
	SL_ASSERT(base_offset >= 0);
	be64_store(buf + BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void batch_set_leader_epoch(uint8_t *buf, int32_t leader_epoch)
{
	SL_ASSERT(buf != NULL);
	SL_ASSERT(leader_epoch >= -1);
	be32_store(buf + BATCH_OFF_LEADER_EPOCH, (uint32_t)leader_epoch);
}

/*
 * The caller has validated the batch, so its length field is trusted here
 * (asserted, not checked). baseTimestamp and the records stay: under
 * LogAppendTime consumers read every record's timestamp as maxTimestamp.
 */
void batch_set_log_append_time(uint8_t *buf, int64_t ts_ms)
{
	int32_t batch_length;
	uint16_t attributes;
	uint32_t crc;

	SL_ASSERT(buf != NULL);
	SL_ASSERT(buf[BATCH_OFF_MAGIC] == BATCH_MAGIC_V2);
	batch_length = (int32_t)be32_load(buf + BATCH_OFF_LENGTH);
	SL_ASSERT(batch_length >= BATCH_LENGTH_MIN);

	attributes = be16_load(buf + BATCH_OFF_ATTRIBUTES);
	be16_store(buf + BATCH_OFF_ATTRIBUTES, attributes | BATCH_ATTR_TIMESTAMP_LOG_APPEND);
	be64_store(buf + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)ts_ms);
	crc = crc32c(0, buf + BATCH_OFF_ATTRIBUTES,
		     (size_t)BATCH_LOG_OVERHEAD + (size_t)batch_length - BATCH_OFF_ATTRIBUTES);
	be32_store(buf + BATCH_OFF_CRC, crc);
	SL_ASSERT(be32_load(buf + BATCH_OFF_CRC) == crc);
}

/* ---- batch iterator ---- */

void batch_iter_init(struct batch_iter *it, const uint8_t *buf, size_t len,
		     enum batch_check checks)
{
	SL_ASSERT(it != NULL);
	SL_ASSERT(buf != NULL || len == 0);
	it->buf = buf;
	it->len = len;
	it->pos = 0;
	it->checks = checks;
}

/*
 * On an error `pos` stays at the start of the bad batch (where a recovering
 * segment is truncated) and the same error comes back on every later call.
 */
enum sl_err batch_iter_next(struct batch_iter *it, struct batch_header *h,
			    const uint8_t **batch)
{
	enum sl_err err;

	SL_ASSERT(it != NULL && h != NULL && batch != NULL);
	SL_ASSERT(it->pos <= it->len);
	if (it->pos == it->len)
		return SL_ENOTFOUND;
	err = batch_validate(it->buf + it->pos, it->len - it->pos, it->checks, h);
	if (err != SL_OK)
		return err;
	*batch = it->buf + it->pos;
	it->pos += batch_size_bytes(h);
	SL_ASSERT(it->pos <= it->len);
	return SL_OK;
}

/* ---- record walker ---- */

void batch_record_iter_init(struct batch_record_iter *it, const uint8_t *records, size_t len,
			    int32_t count)
{
	SL_ASSERT(it != NULL);
	SL_ASSERT(records != NULL || len == 0);
	it->pos = records;
	it->end = len > 0 ? records + len : records;  /* NULL + 0 is UB */
	it->records_left = count;
	it->err = count < 0 ? SL_ECORRUPT : SL_OK;
}

/* Checks the headers of a record whose count was read; rd ends at the record end. */
static void batch_rd_headers(struct batch_rd *rd, int32_t count)
{
	struct batch_record_header hdr;

	if (rd->err != SL_OK)
		return;
	if (count < 0 || (size_t)count > (size_t)(rd->end - rd->p) / BATCH_RECORD_HEADER_MIN) {
		rd->err = SL_ECORRUPT;
		return;
	}
	for (int32_t i = 0; i < count && rd->err == SL_OK; i++)
		batch_rd_header(rd, &hdr);
}

/* Decodes one record at rd->p; on success rd->p is the record's end. */
static void batch_rd_record(struct batch_rd *rd, struct batch_record *r)
{
	const uint8_t *start = rd->p;
	int32_t length = batch_rd_varint(rd);

	if (rd->err != SL_OK)
		return;
	if (length < BATCH_RECORD_BODY_MIN || (size_t)length > (size_t)(rd->end - rd->p)) {
		rd->err = SL_ECORRUPT;
		return;
	}
	/* From here the record's own end bounds every read. */
	struct batch_rd body = { .p = rd->p, .end = rd->p + length, .err = SL_OK };
	r->attributes = (int8_t)*body.p++;
	r->timestamp_delta = batch_rd_varlong(&body);
	r->offset_delta = batch_rd_varint(&body);
	r->key = batch_rd_bytes(&body, -1, &r->key_len);
	r->value = batch_rd_bytes(&body, -1, &r->value_len);
	r->headers_count = batch_rd_varint(&body);
	r->headers = body.p;
	batch_rd_headers(&body, r->headers_count);
	if (body.err == SL_OK && body.p != body.end)
		body.err = SL_ECORRUPT;  /* length varint disagrees with the fields */
	if (body.err != SL_OK) {
		rd->err = body.err;
		return;
	}
	r->headers_bytes = (size_t)(body.end - r->headers);
	r->size_bytes = (size_t)(body.end - start);
	rd->p = body.end;
}

enum sl_err batch_record_next(struct batch_record_iter *it, struct batch_record *r)
{
	SL_ASSERT(it != NULL && r != NULL);
	SL_ASSERT(it->pos <= it->end);
	if (it->err != SL_OK)
		return it->err;
	if (it->records_left == 0) {
		if (it->pos != it->end)
			it->err = SL_ECORRUPT;  /* bytes beyond records count */
		return it->pos == it->end ? SL_ENOTFOUND : SL_ECORRUPT;
	}

	struct batch_rd rd = { .p = it->pos, .end = it->end, .err = SL_OK };
	batch_rd_record(&rd, r);
	if (rd.err != SL_OK) {
		it->err = rd.err;
		return it->err;
	}
	SL_ASSERT(rd.p > it->pos && rd.p <= it->end);
	it->pos = rd.p;
	it->records_left--;
	return SL_OK;
}

enum sl_err batch_record_header_next(const struct batch_record *r, int32_t *idx, size_t *pos,
				     struct batch_record_header *hdr)
{
	SL_ASSERT(r != NULL && idx != NULL && pos != NULL && hdr != NULL);
	SL_ASSERT(*idx >= 0 && *pos <= r->headers_bytes);
	if (*idx >= r->headers_count)
		return *pos == r->headers_bytes ? SL_ENOTFOUND : SL_ECORRUPT;

	struct batch_rd rd = {
		.p = r->headers + *pos, .end = r->headers + r->headers_bytes, .err = SL_OK,
	};
	batch_rd_header(&rd, hdr);
	if (rd.err != SL_OK)
		return rd.err;
	*pos = (size_t)(rd.p - r->headers);
	(*idx)++;
	SL_ASSERT(*pos <= r->headers_bytes);
	return SL_OK;
}
