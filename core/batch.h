/*
 * batch.h — the Kafka record batch, format v2 (magic 2), as it travels in
 * Produce and Fetch and as it lies in .log segment files.
 *
 * Layout (big-endian), byte offsets from the batch start:
 *    0 baseOffset int64           — not covered by the CRC
 *    8 batchLength int32          — bytes after this field
 *   12 partitionLeaderEpoch int32 — not covered by the CRC
 *   16 magic int8 (= 2)
 *   17 crc uint32                 — CRC-32C of bytes [21, 12 + batchLength)
 *   21 attributes int16           — bits 0-2 compression, 3 timestamp type
 *                                   (1 = LogAppendTime), 4 transactional,
 *                                   5 control
 *   23 lastOffsetDelta int32
 *   27 baseTimestamp int64
 *   35 maxTimestamp int64
 *   43 producerId int64
 *   51 producerEpoch int16
 *   53 baseSequence int32
 *   57 records count int32
 *   61 records...
 *
 * Validation never trusts a length before checking it against the bytes at
 * hand. Rewriting baseOffset and partitionLeaderEpoch keeps the CRC valid
 * (they are outside it); rewriting maxTimestamp (LogAppendTime) recomputes it.
 */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "sl.h"

#define BATCH_HEADER_BYTES 61
#define BATCH_LOG_OVERHEAD 12           /* baseOffset + batchLength */
#define BATCH_MAGIC_V2 2
#define BATCH_OFF_BASE_OFFSET 0
#define BATCH_OFF_LENGTH 8
#define BATCH_OFF_LEADER_EPOCH 12
#define BATCH_OFF_MAGIC 16
#define BATCH_OFF_CRC 17
#define BATCH_OFF_ATTRIBUTES 21
#define BATCH_OFF_LAST_OFFSET_DELTA 23
#define BATCH_OFF_BASE_TIMESTAMP 27
#define BATCH_OFF_MAX_TIMESTAMP 35
#define BATCH_OFF_PRODUCER_ID 43
#define BATCH_OFF_PRODUCER_EPOCH 51
#define BATCH_OFF_BASE_SEQUENCE 53
#define BATCH_OFF_RECORDS_COUNT 57

#define BATCH_ATTR_COMPRESSION_MASK 0x07
#define BATCH_ATTR_TIMESTAMP_LOG_APPEND 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

enum batch_compression {
	BATCH_COMPRESSION_NONE = 0,
	BATCH_COMPRESSION_GZIP = 1,
	BATCH_COMPRESSION_SNAPPY = 2,
	BATCH_COMPRESSION_LZ4 = 3,
	BATCH_COMPRESSION_ZSTD = 4,
};

/* The header fields, decoded (host byte order). */
struct batch_header {
	int64_t base_offset;
	int32_t batch_length;
	int32_t partition_leader_epoch;
	int8_t magic;
	uint32_t crc;
	int16_t attributes;
	int32_t last_offset_delta;
	int64_t base_timestamp;
	int64_t max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t records_count;
};

/* Whole size of the batch on the wire / on disk: 12 + batchLength. */
static inline size_t batch_size_bytes(const struct batch_header *h)
{
	return (size_t)BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
}

static inline int64_t batch_last_offset(const struct batch_header *h)
{
	return h->base_offset + h->last_offset_delta;
}

/*
 * Decodes the fixed header from `buf` (`len` bytes available).
 * SL_ETRUNC: fewer than BATCH_HEADER_BYTES, or the batch claims more bytes
 *            than `len` (a torn tail when reading a segment);
 * SL_ECORRUPT: batchLength too small for a header, or magic is not 2.
 * Does not check the CRC.
 */
enum sl_err batch_header_parse(const uint8_t *buf, size_t len, struct batch_header *h);

enum batch_check {
	BATCH_CHECK_CRC = 1 << 0,       /* verify the CRC-32C */
	BATCH_CHECK_RECORDS = 1 << 1,   /* walk uncompressed records: count and lengths */
	BATCH_CHECK_ALL = BATCH_CHECK_CRC | BATCH_CHECK_RECORDS,
};

/*
 * Validates one whole batch at `buf` (exactly or at least its size in
 * `len`): header as batch_header_parse, then per `checks` the CRC, the
 * attributes (known compression codec, control batches only when
 * transactional), lastOffsetDelta >= 0 and consistent with the record count
 * (uncompressed: every record's length varint fits and the number of
 * records equals records count; compressed: count >= 1 unless the batch is
 * an empty one left by compaction, see BATCH_CHECK_PRODUCE below), and
 * maxTimestamp >= baseTimestamp unless LogAppendTime.
 * Fills `h` on success. Errors: SL_ETRUNC, SL_ECORRUPT.
 */
enum sl_err batch_validate(const uint8_t *buf, size_t len, enum batch_check checks,
			   struct batch_header *h);

/* Rewrites baseOffset in place; the CRC stays valid. */
void batch_set_base_offset(uint8_t *buf, int64_t base_offset);
/* Rewrites partitionLeaderEpoch in place; the CRC stays valid. */
void batch_set_leader_epoch(uint8_t *buf, int32_t leader_epoch);
/*
 * LogAppendTime: sets the timestamp-type bit, maxTimestamp = `ts_ms`, and
 * recomputes the CRC over the batch (whose size is taken from its header).
 */
void batch_set_log_append_time(uint8_t *buf, int64_t ts_ms);

/*
 * Iterates over consecutive batches in a buffer (a produce record set or a
 * segment read). batch_iter_next returns SL_OK with `h` and `*batch` set,
 * SL_ENOTFOUND at a clean end, SL_ETRUNC for a partial trailing batch, or
 * SL_ECORRUPT. `pos` is the byte offset of the next batch.
 */
struct batch_iter {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	enum batch_check checks;
};

void batch_iter_init(struct batch_iter *it, const uint8_t *buf, size_t len,
		     enum batch_check checks);
enum sl_err batch_iter_next(struct batch_iter *it, struct batch_header *h,
			    const uint8_t **batch);

/*
 * ---- Additions (batch.c owner): producer-batch check and a record walker ----
 *
 * BATCH_CHECK_PRODUCE adds what Kafka demands of a batch fresh from a
 * producer: records count >= 1 and == lastOffsetDelta + 1 (so, with
 * BATCH_CHECK_RECORDS, the offset deltas are exactly 0..n-1). Without it a
 * batch may be empty (records count 0, no record bytes: what compaction
 * leaves to keep producer state) or have gaps in its offset deltas (a
 * compacted batch), but deltas are always strictly increasing and the last
 * one is at most lastOffsetDelta (compaction keeps lastOffsetDelta when it
 * removes a batch's last records, as Kafka does, so producer state rebuilt
 * from the batch keeps the producer's last sequence).
 */
#define BATCH_CHECK_PRODUCE (1 << 2)

/* Smallest encoding of one record: six one-byte varints and attributes. */
#define BATCH_RECORD_BYTES_MIN 7

/*
 * One record of an uncompressed (or already decompressed) record set, as
 * slices of the caller's buffer. key/value are NULL when their length is -1
 * (null). `headers` points at the first header (after the count varint) and
 * `headers_bytes` runs to the record's end; walk them with
 * batch_record_header_next. `size_bytes` counts the length varint too.
 */
struct batch_record {
	int8_t attributes;
	int64_t timestamp_delta;
	int32_t offset_delta;
	const uint8_t *key;
	int32_t key_len;
	const uint8_t *value;
	int32_t value_len;
	int32_t headers_count;
	const uint8_t *headers;
	size_t headers_bytes;
	size_t size_bytes;
};

/* One record header; value is NULL when value_len is -1. */
struct batch_record_header {
	const uint8_t *key;
	int32_t key_len;
	const uint8_t *value;
	int32_t value_len;
};

/*
 * Walks `count` records packed in `records` (`len` bytes): for an
 * uncompressed batch, records = batch + BATCH_HEADER_BYTES,
 * len = batch_size_bytes(h) - BATCH_HEADER_BYTES, count = h->records_count;
 * for a compressed one, the decompressed bytes. The walker checks the
 * structure of every record (length varint equals the bytes the record
 * spans, varints at most 5 / 10 bytes, key/value lengths >= -1, header
 * count and lengths fit) but not the offset-delta order (batch_validate
 * does). Errors are sticky.
 */
struct batch_record_iter {
	const uint8_t *pos;
	const uint8_t *end;
	int32_t records_left;
	enum sl_err err;
};

void batch_record_iter_init(struct batch_record_iter *it, const uint8_t *records, size_t len,
			    int32_t count);
/*
 * SL_OK with `r` filled; SL_ENOTFOUND after `count` records when every
 * byte was used; SL_ECORRUPT for a malformed record, bytes left over, or
 * fewer records than `count`.
 */
enum sl_err batch_record_next(struct batch_record_iter *it, struct batch_record *r);
/*
 * Returns header number `*idx` of `r` (headers are only reachable in
 * order, so `*idx` must count from 0 and `*pos` from 0) and advances both.
 * SL_ENOTFOUND after the last one. A record returned by batch_record_next
 * has already had its headers checked, so SL_ECORRUPT only comes from a
 * record the caller filled itself.
 */
enum sl_err batch_record_header_next(const struct batch_record *r, int32_t *idx, size_t *pos,
				     struct batch_record_header *hdr);

/*
 * Zigzag varint (int32, at most 5 bytes) and varlong (int64, at most 10
 * bytes) decoding from [*p, end). On success advances *p and returns SL_OK;
 * SL_ECORRUPT for an encoding longer than allowed or that overflows the
 * type, SL_ETRUNC when the bytes end mid-varint (*p unchanged on error).
 */
enum sl_err batch_varint_read(const uint8_t **p, const uint8_t *end, int32_t *out);
enum sl_err batch_varlong_read(const uint8_t **p, const uint8_t *end, int64_t *out);

#endif
