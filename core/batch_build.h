/*
 * batch_build.h — writes uncompressed record batches (magic 2) into a
 * caller's buffer: used by tests, benchmarks, and later by compaction and
 * the broker's own internal topics.
 *
 * Usage: batch_builder_init over a buffer, batch_builder_add per record,
 * batch_builder_finish to write the header and CRC. The sticky error makes
 * a full buffer a single check at the end: once `err` is set, later adds do
 * nothing and finish returns 0.
 */
#ifndef SL_BATCH_BUILD_H
#define SL_BATCH_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "sl.h"

struct batch_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;              /* bytes written so far, header included */
	int32_t count;           /* records added */
	int64_t base_timestamp;  /* first record's timestamp */
	int64_t max_timestamp;
	int64_t producer_id;     /* -1 unless idempotent */
	int16_t producer_epoch;
	int32_t base_sequence;
	int16_t attributes;
	enum sl_err err;
};

struct batch_kv {
	const void *key;
	int32_t key_len;         /* -1 for a null header value is not allowed for keys */
	const void *value;
	int32_t value_len;       /* -1 = null */
};

#define BATCH_VARLONG_BYTES_MAX 10

void batch_builder_init(struct batch_builder *b, uint8_t *buf, size_t cap);

/* Idempotent producer fields; default is producer id -1 (none). */
void batch_builder_set_producer(struct batch_builder *b, int64_t producer_id,
				int16_t producer_epoch, int32_t base_sequence);

/*
 * Appends one record. key_len / value_len -1 mean null. `headers` may be
 * NULL when `headers_count` is 0. SL_EAGAIN (sticky) when it does not fit.
 */
enum sl_err batch_builder_add(struct batch_builder *b, int64_t timestamp_ms,
			      const void *key, int32_t key_len,
			      const void *value, int32_t value_len,
			      const struct batch_kv *headers, int32_t headers_count);

/*
 * Writes the header (baseOffset 0, leader epoch -1) and the CRC.
 * Returns the batch size in bytes, or 0 if any add failed or no record was
 * added.
 */
size_t batch_builder_finish(struct batch_builder *b);

/*
 * Writes `v` as a zigzag varint (Kafka's varlong; an int32 gives the same
 * bytes as a varint) at `out`, which must have BATCH_VARLONG_BYTES_MAX
 * bytes of room. Returns the bytes written, 1..BATCH_VARLONG_BYTES_MAX.
 * The reading side is batch_varint_read / batch_varlong_read (batch.h).
 */
size_t batch_varlong_put(uint8_t *out, int64_t v);

#endif
