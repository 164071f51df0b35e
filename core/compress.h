/*
 * compress.h — the compression codecs of Kafka record batches: the bytes
 * after the 61-byte batch header, when attributes bits 0-2 name a codec.
 *
 * Framings (what Kafka clients and brokers put on the wire):
 *   gzip   — a gzip stream (RFC 1952), possibly several members back to back.
 *   snappy — either raw snappy (what librdkafka writes) or the xerial
 *            snappy-java stream the Java client writes: the 8-byte magic
 *            0x82 "SNAPPY" 0x00, int32 version, int32 compatible version,
 *            then blocks of [int32 compressed length][raw snappy block].
 *            Decoding accepts both (told apart by the magic); encoding
 *            writes the xerial stream, as the Java producer and broker do.
 *   lz4    — the standard LZ4 frame format (the header checksum bug of
 *            Kafka's old message format v0/v1 does not apply to batch v2);
 *            written with independent 64 KiB blocks, which Kafka's
 *            KafkaLZ4BlockInputStream requires.
 *   zstd   — one or more zstd frames.
 *
 * Invariants:
 *   1. Decoding never writes more than out_cap bytes and never allocates in
 *      proportion to what the input claims: a stream that would inflate past
 *      out_cap fails with SL_ENOMEM (a decompression bomb costs at most
 *      out_cap bytes of the caller's memory plus the codec's fixed state:
 *      32 KiB zlib window, at most 4 MiB lz4 block buffers, a zstd window of
 *      at most 2^COMPRESS_ZSTD_WINDOW_LOG_MAX bytes).
 *   2. Bad bytes (truncated, corrupt, checksum mismatch, trailing garbage)
 *      are SL_ECORRUPT; SL_EINVAL is only for a codec we do not know or
 *      BATCH_COMPRESSION_NONE.
 *   3. Every function is reentrant: codec state lives on the call's stack or
 *      in per-call contexts freed before returning. Runs on: any thread.
 */
#ifndef SL_COMPRESS_H
#define SL_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "sl.h"

/* Largest zstd window accepted when decoding (16 MiB, far above what a
 * producer uses for a batch of default message.max.bytes). */
#define COMPRESS_ZSTD_WINDOW_LOG_MAX 24
/* Uncompressed bytes per xerial snappy block when encoding (snappy-java's
 * default block size). */
#define COMPRESS_SNAPPY_BLOCK_BYTES (32 * 1024)
#define COMPRESS_XERIAL_HEADER_BYTES 16

/*
 * Decompresses `in` (`in_len` bytes, the whole compressed records section)
 * into `out` (at most `out_cap` bytes); *out_len is the decompressed size.
 * SL_EINVAL: unknown codec or NONE; SL_ENOMEM: the output would exceed
 * out_cap; SL_ECORRUPT: malformed or truncated input. *out_len is 0 on
 * error.
 */
enum sl_err compress_decode(enum batch_compression codec, const uint8_t *in, size_t in_len,
			    uint8_t *out, size_t out_cap, size_t *out_len);

/*
 * The most bytes compress_encode can write for `in_len` input bytes; 0 for
 * an unknown codec or NONE.
 */
size_t compress_bound(enum batch_compression codec, size_t in_len);

/*
 * Compresses `in` into `out` (`out_cap` bytes; compress_bound() is always
 * enough) in the framing described above. SL_EINVAL: unknown codec or
 * NONE; SL_ENOMEM: out_cap too small or the codec could not allocate its
 * state.
 */
enum sl_err compress_encode(enum batch_compression codec, const uint8_t *in, size_t in_len,
			    uint8_t *out, size_t out_cap, size_t *out_len);

/*
 * The records of a whole batch (`batch`, its header `h` already checked
 * by batch_validate or batch_header_parse and the batch entirely in
 * memory), ready for batch_record_iter_init(it, *records, *records_len,
 * h->records_count): an uncompressed batch's records are returned in place
 * (`out` unused); a compressed one's are decompressed into `out` (at most
 * `out_cap` bytes). Errors as compress_decode.
 */
enum sl_err compress_batch_records(const uint8_t *batch, const struct batch_header *h,
				   uint8_t *out, size_t out_cap, const uint8_t **records,
				   size_t *records_len);

/*
 * compress_batch_records, then batch_record_iter_init on the result: `it`
 * walks the batch's records with batch_record_next. The records may point
 * into `batch` or `out`: both must outlive the walk.
 */
enum sl_err compress_batch_record_iter_init(struct batch_record_iter *it, const uint8_t *batch,
					    const struct batch_header *h, uint8_t *out,
					    size_t out_cap);

#endif
