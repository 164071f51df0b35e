/*
 * micro_fixtures.h — the C side of the micro-benchmarks. micro.cc only
 * times these calls; everything that touches Sluice's C interfaces is here,
 * so no Sluice header has to compile as C++.
 */
#ifndef SL_MICRO_FIXTURES_H
#define SL_MICRO_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint32_t mf_crc32c(const void *buf, size_t len);
uint32_t mf_crc32c_portable(const void *buf, size_t len);

/* A batch of `batch_bytes` (about) made of `record_bytes` values. */
struct mf_batch;
struct mf_batch *mf_batch_new(size_t batch_bytes, size_t record_bytes);
size_t mf_batch_size(const struct mf_batch *b);
/* Validates the batch (CRC + record walk); returns 0 on success. */
int mf_batch_validate(const struct mf_batch *b);
void mf_batch_free(struct mf_batch *b);

/* The storage engine: appends copies of `b` into a partition log. */
struct mf_log;
struct mf_log *mf_log_open(const char *dir);
/* Appends `count` batches, waits for every completion; returns bytes or -1. */
int64_t mf_log_append(struct mf_log *log, const struct mf_batch *b, int count);
void mf_log_close(struct mf_log *log);

/* The same bytes with plain write(2) into one file in `dir`. */
struct mf_raw;
struct mf_raw *mf_raw_open(const char *dir);
int64_t mf_raw_append(struct mf_raw *raw, const struct mf_batch *b, int count);
void mf_raw_close(struct mf_raw *raw);

/* Offset index lookups over a log filled with `batches` batches. */
struct mf_index;
struct mf_index *mf_index_new(const char *dir, int batches);
/* Looks up `n` pseudo-random offsets; returns a checksum of results. */
int64_t mf_index_lookup(struct mf_index *ix, int n);
void mf_index_free(struct mf_index *ix);

/*
 * The Kafka codec (net/kafka_codec.h) on realistic messages:
 *   MF_PRODUCE_REQUEST  Produce v9, one topic, `partitions` x one batch of
 *                       `batch_bytes` of 1 KiB records (the records bytes
 *                       are borrowed by decode, copied by encode);
 *   MF_FETCH_REQUEST    Fetch v11 (librdkafka's), one topic, `partitions`;
 *   MF_FETCH_RESPONSE   Fetch v11 response, `partitions` x `batch_bytes`
 *                       records deferred as holes (zero-copy: only headers
 *                       are encoded; batch_bytes only sizes the holes).
 */
enum mf_codec_kind {
	MF_PRODUCE_REQUEST = 0,
	MF_FETCH_REQUEST = 1,
	MF_FETCH_RESPONSE = 2,
};
struct mf_codec;
struct mf_codec *mf_codec_new(enum mf_codec_kind kind, int partitions, size_t batch_bytes);
/* Bytes of the encoded message (holes included). */
size_t mf_codec_wire_bytes(const struct mf_codec *c);
/* Decodes the encoded message once (requests only); 0 on success, -1 on error. */
int mf_codec_decode(struct mf_codec *c);
/* Encodes the message once; bytes written (holes excluded) or -1. */
int64_t mf_codec_encode(struct mf_codec *c);
void mf_codec_free(struct mf_codec *c);

/*
 * The fetch path: bytes of a page-cached segment file to a connected
 * loopback TCP socket pair (a thread drains the far end), by
 *   MF_FP_READ_WRITE  pread into a 64 KiB buffer + write;
 *   MF_FP_SENDFILE    sendfile(2);
 *   MF_FP_SPLICE      splice file -> pipe (1 MiB) -> socket (the broker's way).
 */
enum mf_fetch_method {
	MF_FP_READ_WRITE = 0,
	MF_FP_SENDFILE = 1,
	MF_FP_SPLICE = 2,
};
struct mf_fetchpath;
struct mf_fetchpath *mf_fetchpath_new(const char *dir, enum mf_fetch_method m);
/* Sends `len` bytes from the next file position; returns len or -1. */
int64_t mf_fetchpath_send(struct mf_fetchpath *fp, size_t len);
void mf_fetchpath_free(struct mf_fetchpath *fp);

/* mkdtemp under /tmp and rm -rf. */
char *mf_tmpdir(void);
void mf_rmdir(char *dir);

#ifdef __cplusplus
}
#endif

#endif
