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

/* mkdtemp under /tmp and rm -rf. */
char *mf_tmpdir(void);
void mf_rmdir(char *dir);

#ifdef __cplusplus
}
#endif

#endif
