/*
 * plog_config.h — changing a live partition log's settings (per-topic
 * configs altered at run time: IncrementalAlterConfigs, or overrides given
 * at creation and applied when the partition opens).
 *
 * What takes effect and when:
 *   - retention_ms, retention_bytes: at the next plog_retention_enforce;
 *   - segment_bytes, roll_ms: at the next append / plog_tick (a segment
 *     already past the new size rolls on the next append);
 *   - flush_interval_messages, flush_interval_ms, checkpoint_interval_ms:
 *     at the next append / tick (the caller re-arms its tick timer from
 *     plog_next_deadline_ms);
 *   - index_interval_bytes: for the next index entry.
 * Kept as opened (they size memory maps and files of the active segment,
 * which must not change under it): index_size_max_bytes, preallocate,
 * writes_inflight_max, shard_id. A new value for them applies when the
 * partition is next opened.
 *
 * Runs on: the log's owner shard.
 */
#ifndef SL_IO_PLOG_CONFIG_H
#define SL_IO_PLOG_CONFIG_H

#include "plog.h"
#include "sl.h"

/*
 * Applies the run-time-changeable fields of `cfg` to `log` (see above).
 * Returns SL_OK, or SL_EINVAL when a value is out of its range
 * (segment_bytes < 14, index_interval_bytes < 0); the log is then unchanged.
 */
enum sl_err plog_config_update(struct plog *log, const struct plog_config *cfg);

/* The settings `log` currently runs with. */
void plog_config_get(const struct plog *log, struct plog_config *out);

#endif
