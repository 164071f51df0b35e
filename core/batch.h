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
 * records equals records count; compressed: count >= 1), and
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

#endif
