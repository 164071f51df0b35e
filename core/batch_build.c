/*
 * batch_build.c — see batch_build.h.
 */
#include "batch_build.h"

#include <string.h>

#include "batch.h"
#include "bytes.h"
#include "crc32c.h"

void batch_builder_init(struct batch_builder *b, uint8_t *buf, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->cap = cap;
	b->len = BATCH_HEADER_BYTES;
	b->producer_id = -1;
	b->producer_epoch = -1;
	b->base_sequence = -1;
	if (cap < BATCH_HEADER_BYTES)
		b->err = SL_EAGAIN;
}

void batch_builder_set_producer(struct batch_builder *b, int64_t producer_id,
				int16_t producer_epoch, int32_t base_sequence)
{
	b->producer_id = producer_id;
	b->producer_epoch = producer_epoch;
	b->base_sequence = base_sequence;
}

size_t batch_varlong_put(uint8_t *out, int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 0;

	/* At most 10 turns: each shifts 7 of the 64 bits out. */
	while (z >= 0x80) {
		out[n++] = (uint8_t)(z | 0x80);
		z >>= 7;
	}
	out[n++] = (uint8_t)z;
	SL_ASSERT(n >= 1 && n <= BATCH_VARLONG_BYTES_MAX);
	return n;
}

static size_t varlong_size(int64_t v)
{
	uint8_t tmp[BATCH_VARLONG_BYTES_MAX];
	return batch_varlong_put(tmp, v);
}

static size_t bytes_field_size(int32_t len)
{
	return varlong_size(len) + (len > 0 ? (size_t)len : 0);
}

static size_t bytes_field_put(uint8_t *out, const void *p, int32_t len)
{
	size_t n = batch_varlong_put(out, len);
	if (len > 0) {
		memcpy(out + n, p, (size_t)len);
		n += (size_t)len;
	}
	return n;
}

enum sl_err batch_builder_add(struct batch_builder *b, int64_t timestamp_ms,
			      const void *key, int32_t key_len,
			      const void *value, int32_t value_len,
			      const struct batch_kv *headers, int32_t headers_count)
{
	if (b->err != SL_OK)
		return b->err;
	SL_ASSERT(key_len >= -1 && value_len >= -1 && headers_count >= 0);
	if (b->count == 0)
		b->base_timestamp = timestamp_ms;
	if (b->count == 0 || timestamp_ms > b->max_timestamp)
		b->max_timestamp = timestamp_ms;

	/* Body size first: the record starts with its own length varint. */
	size_t body = 1 /* attributes */ + varlong_size(timestamp_ms - b->base_timestamp) +
		      varlong_size(b->count) + bytes_field_size(key_len) +
		      bytes_field_size(value_len) + varlong_size(headers_count);
	for (int32_t i = 0; i < headers_count; i++)
		body += bytes_field_size(headers[i].key_len) + bytes_field_size(headers[i].value_len);
	size_t need = varlong_size((int64_t)body) + body;
	if (body > INT32_MAX || need > b->cap - b->len) {
		b->err = SL_EAGAIN;
		return b->err;
	}

	uint8_t *p = b->buf + b->len;
	size_t n = batch_varlong_put(p, (int64_t)body);
	p[n++] = 0; /* record attributes: unused */
	n += batch_varlong_put(p + n, timestamp_ms - b->base_timestamp);
	n += batch_varlong_put(p + n, b->count);  /* offsetDelta */
	n += bytes_field_put(p + n, key, key_len);
	n += bytes_field_put(p + n, value, value_len);
	n += batch_varlong_put(p + n, headers_count);
	for (int32_t i = 0; i < headers_count; i++) {
		n += bytes_field_put(p + n, headers[i].key, headers[i].key_len);
		n += bytes_field_put(p + n, headers[i].value, headers[i].value_len);
	}
	SL_ASSERT(n == need);
	b->len += n;
	b->count++;
	return SL_OK;
}

size_t batch_builder_finish(struct batch_builder *b)
{
	if (b->err != SL_OK || b->count == 0)
		return 0;
	uint8_t *h = b->buf;
	be64_store(h + BATCH_OFF_BASE_OFFSET, 0);
	be32_store(h + BATCH_OFF_LENGTH, (uint32_t)(b->len - BATCH_LOG_OVERHEAD));
	be32_store(h + BATCH_OFF_LEADER_EPOCH, (uint32_t)-1);
	h[BATCH_OFF_MAGIC] = BATCH_MAGIC_V2;
	be16_store(h + BATCH_OFF_ATTRIBUTES, (uint16_t)b->attributes);
	be32_store(h + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count - 1));
	be64_store(h + BATCH_OFF_BASE_TIMESTAMP, (uint64_t)b->base_timestamp);
	be64_store(h + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)b->max_timestamp);
	be64_store(h + BATCH_OFF_PRODUCER_ID, (uint64_t)b->producer_id);
	be16_store(h + BATCH_OFF_PRODUCER_EPOCH, (uint16_t)b->producer_epoch);
	be32_store(h + BATCH_OFF_BASE_SEQUENCE, (uint32_t)b->base_sequence);
	be32_store(h + BATCH_OFF_RECORDS_COUNT, (uint32_t)b->count);
	uint32_t crc = crc32c(0, h + BATCH_OFF_ATTRIBUTES, b->len - BATCH_OFF_ATTRIBUTES);
	be32_store(h + BATCH_OFF_CRC, crc);
	return b->len;
}
