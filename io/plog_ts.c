/*
 * plog_ts.c — record-granular ListOffsets by timestamp (see plog_ts.h).
 *
 * Why not answer from the time index alone: it maps timestamps to batches,
 * and a batch of many records spans many timestamps; Kafka's answer is the
 * exact record, which only the records themselves tell. Why read the batch
 * synchronously: ListOffsets by time is rare (consumers seeking), the batch
 * is usually in the page cache, and the header scan before it already
 * preads the same way.
 */
#include "plog_ts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress.h"
#include "log.h"
#include "plog_internal.h"

#define PLOG_TS_RECORDS_BYTES_MIN (64 * 1024)
#define PLOG_TS_INFLATE_GUESS 4         /* first output buffer: 4x the batch */
#define PLOG_TS_PREAD_TURNS_MAX 64      /* short reads tolerated per batch */

/* Reads `len` bytes at `pos`. SL_EIO on an error or an early end of file. */
static enum sl_err plog_ts_pread(int fd, int64_t pos, uint8_t *buf, size_t len)
{
	size_t done = 0;

	for (int n = 0; done < len && n < PLOG_TS_PREAD_TURNS_MAX; n++) {
		ssize_t r = pread(fd, buf + done, len - done, (off_t)(pos + (int64_t)done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return SL_EIO;
		done += (size_t)r;
	}
	return done == len ? SL_OK : SL_EIO;
}

/*
 * Walks the records of `batch` (whole, CRC checked) for the first with
 * offset >= start_offset and timestamp >= ts_ms. SL_ENOTFOUND when none;
 * SL_ECORRUPT for malformed records.
 */
static enum sl_err plog_ts_walk(struct batch_record_iter *it, const struct batch_header *h,
				int64_t start_offset, int64_t ts_ms, int64_t *offset,
				int64_t *timestamp)
{
	int log_append = (h->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND) != 0;
	struct batch_record r;

	/* Each turn takes one record; batch_record_next stops after count. */
	for (int32_t n = 0; n <= h->records_count; n++) {
		enum sl_err err = batch_record_next(it, &r);
		if (err != SL_OK)
			return err;
		int64_t off = h->base_offset + r.offset_delta;
		int64_t ts = log_append ? h->max_timestamp : h->base_timestamp + r.timestamp_delta;
		if (off >= start_offset && ts >= ts_ms) {
			*offset = off;
			*timestamp = ts;
			return SL_OK;
		}
	}
	return SL_ECORRUPT;
}

/*
 * Decompresses the records of `batch` (growing the output buffer by
 * doubling up to PLOG_TS_RECORDS_BYTES_MAX) and walks them. *out is the
 * buffer to free. Errors: SL_ENOMEM (too large), SL_ECORRUPT, SL_ENOTFOUND.
 */
static enum sl_err plog_ts_records(const uint8_t *batch, const struct batch_header *h,
				   int64_t start_offset, int64_t ts_ms, uint8_t **out,
				   int64_t *offset, int64_t *timestamp)
{
	size_t size = batch_size_bytes(h);
	size_t cap = SL_MIN(SL_MAX(size * PLOG_TS_INFLATE_GUESS, (size_t)PLOG_TS_RECORDS_BYTES_MIN),
			    (size_t)PLOG_TS_RECORDS_BYTES_MAX);
	struct batch_record_iter it;
	enum sl_err err = SL_ENOMEM;

	SL_ASSERT(*out == NULL);
	if ((h->attributes & BATCH_ATTR_COMPRESSION_MASK) == BATCH_COMPRESSION_NONE)
		cap = 0;
	/* At most log2(MAX / MIN) + 1 turns: cap doubles each time. */
	for (int n = 0; n < 16; n++) {
		if (cap > 0) {
			*out = malloc(cap);
			if (*out == NULL)
				return SL_ENOMEM;
		}
		err = compress_batch_record_iter_init(&it, batch, h, *out, cap);
		if (err != SL_ENOMEM || cap >= PLOG_TS_RECORDS_BYTES_MAX)
			break;
		free(*out);
		*out = NULL;
		cap = SL_MIN(cap * 2, (size_t)PLOG_TS_RECORDS_BYTES_MAX);
	}
	if (err != SL_OK)
		return err;
	return plog_ts_walk(&it, h, start_offset, ts_ms, offset, timestamp);
}

/*
 * The record answer from the batch at `pos` of `seg` (header `h`).
 * SL_OK, SL_ENOTFOUND (no record of it qualifies), SL_EIO, or SL_ERANGE /
 * SL_ENOMEM / SL_ECORRUPT when it cannot be read at record granularity.
 */
static enum sl_err plog_ts_batch(const struct plog *log, const struct segment *seg, int64_t pos,
				 const struct batch_header *h, int64_t ts_ms, int64_t *offset,
				 int64_t *timestamp)
{
	size_t size = batch_size_bytes(h);
	uint8_t *batch = NULL, *out = NULL;
	struct batch_header check;
	enum sl_err err;

	SL_ASSERT(pos >= 0 && pos + (int64_t)size <= seg->size);
	if (size > PLOG_TS_BATCH_BYTES_MAX)
		return SL_ERANGE;
	batch = malloc(size);
	if (batch == NULL)
		return SL_ENOMEM;
	err = plog_ts_pread(seg->log_fd, pos, batch, size);
	if (err != SL_OK)
		goto out;
	err = batch_validate(batch, size, BATCH_CHECK_CRC, &check);
	if (err != SL_OK || check.base_offset != h->base_offset ||
	    check.batch_length != h->batch_length) {
		err = SL_ECORRUPT;
		goto out;
	}
	err = plog_ts_records(batch, &check, log->start_offset, ts_ms, &out, offset, timestamp);
	SL_ASSERT(err != SL_OK || (*offset >= h->base_offset && *offset <= batch_last_offset(h)));
out:
	free(out);
	free(batch);
	return err;
}

/*
 * Record granularity for plog_timestamp_walk: the batch's answer, or, when
 * the batch cannot be read record by record, its first offset (logged).
 */
static enum sl_err plog_ts_pick_record(const struct plog *log, const struct segment *seg,
				       int64_t pos, const struct batch_header *h, int64_t ts_ms,
				       int64_t *offset, int64_t *timestamp)
{
	enum sl_err err = plog_ts_batch(log, seg, pos, h, ts_ms, offset, timestamp);

	if (err == SL_OK || err == SL_EIO || err == SL_ENOTFOUND)
		return err;
	LOG_W(log->cfg.shard_id,
	      "plog %s: batch at %lld: %s; ListOffsets answers with its first offset", log->dir,
	      (long long)h->base_offset, sl_err_str(err));
	*offset = SL_MAX(h->base_offset, log->start_offset);
	*timestamp = h->max_timestamp;
	return SL_OK;
}

enum sl_err plog_record_for_timestamp(struct plog *log, int64_t ts_ms, int64_t *offset,
				      int64_t *timestamp)
{
	SL_ASSERT(ts_ms >= 0);
	return plog_timestamp_walk(log, ts_ms, plog_ts_pick_record, offset, timestamp);
}
