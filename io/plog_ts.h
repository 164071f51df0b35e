/*
 * plog_ts.h — ListOffsets by timestamp at record granularity, as Kafka
 * answers it: the offset and timestamp of the first record (at or after
 * the log start offset) whose timestamp is >= the target.
 *
 * The batch is found by plog_offset_for_timestamp's method (time index,
 * then headers: the first batch whose maxTimestamp >= target); that batch
 * is then read whole with pread, its CRC checked, its records
 * decompressed (core/compress.h) into a buffer of bounded size and walked.
 * A record's timestamp is baseTimestamp + timestampDelta, or the batch's
 * maxTimestamp for every record of a LogAppendTime batch.
 *
 * Bounds: a batch larger than PLOG_TS_BATCH_BYTES_MAX, or whose records
 * inflate past PLOG_TS_RECORDS_BYTES_MAX, or whose compressed records are
 * corrupt, is answered at batch granularity (its first offset at or after
 * the start offset and its maxTimestamp, the pre-record behaviour) and a
 * warning logged; only a failed read is an error.
 * Runs on: the partition's owner shard (synchronous pread, page cache).
 */
#ifndef SL_IO_PLOG_TS_H
#define SL_IO_PLOG_TS_H

#include <stdint.h>

#include "plog.h"

#define PLOG_TS_BATCH_BYTES_MAX (16 * 1024 * 1024)
#define PLOG_TS_RECORDS_BYTES_MAX (64 * 1024 * 1024)

/*
 * Sets *offset and *timestamp to the first record, at or after the log
 * start offset, whose timestamp >= ts_ms (ts_ms >= 0). SL_ENOTFOUND when
 * no record qualifies (Kafka answers -1 / -1); SL_EIO for a failed read,
 * SL_ECORRUPT for a batch header that does not parse.
 */
enum sl_err plog_record_for_timestamp(struct plog *log, int64_t ts_ms, int64_t *offset,
				      int64_t *timestamp);

#endif
