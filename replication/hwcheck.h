/*
 * hwcheck.h — Kafka's `replication-offset-checkpoint`: the high watermark
 * of every partition of one log directory, in one file at the top of the
 * directory, so a restarted broker knows which offsets were committed.
 *
 * Format (Kafka's CheckpointFile, version 0), ASCII, '\n' line ends:
 *   0                          version
 *   <count>                    entries, <= HWCHECK_ENTRIES_MAX
 *   <topic> <partition> <hw>   topic: 1..249 bytes of [a-zA-Z0-9._-];
 *   ...                        partition: int32 >= 0; hw: int64 >= 0
 *
 * Written atomically (write `.tmp`, fsync, rename, fsync the directory,
 * io/checkpoint.h): a crash leaves the old file or the new one. Reading
 * treats the file as untrusted bytes: any deviation (version, count,
 * number, topic characters, entry count not matching the lines, file
 * longer than HWCHECK_FILE_BYTES_MAX) is SL_ECORRUPT, logged once, and no
 * entry is handed out (the callback only runs after the whole file parsed).
 *
 * Synchronous system calls: written every
 * replica.high.watermark.checkpoint.interval.ms and at shutdown, read at
 * start-up. runs on: whichever shard owns the log dir's checkpoint (it
 * gathers the HWs from the owners first).
 */
#ifndef SL_REPLICATION_HWCHECK_H
#define SL_REPLICATION_HWCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "sl.h"

#define HWCHECK_FILE_NAME "replication-offset-checkpoint"
#define HWCHECK_TOPIC_BYTES_MAX 249
#define HWCHECK_ENTRIES_MAX (1u << 20)
/* One line: topic, space, int32, space, int64, newline. */
#define HWCHECK_LINE_BYTES_MAX (HWCHECK_TOPIC_BYTES_MAX + 1 + 11 + 1 + 20 + 1)
#define HWCHECK_FILE_BYTES_MAX (32 + (size_t)HWCHECK_ENTRIES_MAX * HWCHECK_LINE_BYTES_MAX)

struct hwcheck_entry {
	const char *topic;               /* NUL-terminated */
	int32_t partition;
	int64_t hw;
};

/*
 * Replaces the file in `dirfd` with the `count` entries (count may be 0).
 * SL_EINVAL: count > HWCHECK_ENTRIES_MAX, a bad topic name, a negative
 * partition or hw (nothing written); SL_ENOMEM; SL_EIO (logged, the old file
 * stays). shard_id is for log lines.
 */
enum sl_err hwcheck_write(int dirfd, const struct hwcheck_entry *entries, uint32_t count,
			  int shard_id);

/*
 * Called once per entry in file order; `topic` is NUL-terminated and valid
 * during the call only. Return 0 to go on, non-zero to stop (hwcheck_read
 * then returns SL_OK).
 */
typedef int hwcheck_entry_fn(void *arg, const char *topic, int32_t partition, int64_t hw);

/*
 * Reads the file in `dirfd`, checks all of it, then calls `cb` for each
 * entry. SL_ENOTFOUND no file (Kafka starts with no HWs then);
 * SL_ECORRUPT malformed (logged, cb never called); SL_ENOMEM; SL_EIO.
 */
enum sl_err hwcheck_read(int dirfd, hwcheck_entry_fn *cb, void *arg, int shard_id);

#endif
