/*
 * checkpoint.h — small text files of named int64 values, replaced
 * atomically: the partition log's start offset, recovery point and
 * clean-shutdown flag live in one (plog.h); replication can keep its own
 * (high watermark, leader epochs) the same way.
 *
 * Format (like Kafka's checkpoint files: a version line, a count line, then
 * one entry per line), ASCII, '\n' line ends:
 *
 *   0                       version, always 0 for now
 *   3                       number of entries, <= CHECKPOINT_ENTRIES_MAX
 *   log_start_offset 0      key (1..CHECKPOINT_KEY_BYTES_MAX bytes of
 *   recovery_point 1234       [a-z0-9_]), one space, decimal int64
 *   clean_shutdown 0
 *
 * A reader ignores keys it does not ask for (newer writers may add some).
 *
 * Atomic replace: write `<name>.tmp`, fsync it, rename over `<name>`, fsync
 * the directory. A crash leaves either the old file or the new one, never a
 * mix; a leftover `.tmp` is garbage the next writer truncates.
 *
 * These are plain synchronous system calls: checkpoints are rare (open,
 * close, retention, truncation, a periodic recovery-point update), so they
 * are not worth an io_uring state machine.
 */
#ifndef SL_IO_CHECKPOINT_H
#define SL_IO_CHECKPOINT_H

#include <stdint.h>

#include "sl.h"

#define CHECKPOINT_ENTRIES_MAX 16
#define CHECKPOINT_KEY_BYTES_MAX 48
#define CHECKPOINT_FILE_BYTES_MAX 4096
#define CHECKPOINT_NAME_BYTES_MAX 256   /* a file name plus CHECKPOINT_TMP_SUFFIX and NUL */
#define CHECKPOINT_TMP_SUFFIX ".tmp"

struct checkpoint_entry {
	const char *key;
	int64_t value;
	int found;      /* checkpoint_read: 1 when the file had the key */
};

/*
 * Replaces `name` (relative to `dirfd`) with the `count` entries.
 * SL_EINVAL for a bad key or too many entries; SL_EIO (logged) on any
 * system call failure, in which case the old file is still in place.
 */
enum sl_err checkpoint_write(int dirfd, const char *name, const struct checkpoint_entry *entries,
			     uint32_t count);

/*
 * Replaces `name` (relative to `dirfd`) with the `len` bytes of `buf`, any
 * content: writes `<name>.tmp`, fsyncs it, renames it over `name`, fsyncs
 * the directory. Returns 0, -ENAMETOOLONG when `name` plus ".tmp" does not
 * fit CHECKPOINT_NAME_BYTES_MAX, or the first failing call's -errno; on
 * failure the old `name` (if any) is still in place and the `.tmp` is
 * removed. Logs nothing: the caller knows what the file is. Borrows `buf`
 * for the call only; synchronous, any thread. The one atomic-replace
 * routine of the project: checkpoint_write and the producer-state
 * snapshots go through it.
 */
int checkpoint_write_file_atomic(int dirfd, const char *name, const void *buf, size_t len);

/*
 * Reads `name` and fills value/found for each of the `count` keys asked.
 * SL_ENOTFOUND: no such file; SL_ECORRUPT: malformed (bad version, count,
 * line, number, or longer than CHECKPOINT_FILE_BYTES_MAX); SL_EIO.
 */
enum sl_err checkpoint_read(int dirfd, const char *name, struct checkpoint_entry *entries,
			    uint32_t count);

#endif
