/*
 * lepoch.c — see lepoch.h. Entries live in one fixed array in offset order;
 * lookups are linear (a cache holds a handful of epochs: one per leader
 * election within retention), which keeps every rule a few obvious lines.
 */
#include "lepoch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "log.h"

/* A file may list more entries than we keep (the oldest are dropped). */
#define LEPOCH_FILE_ENTRIES_MAX 4096

_Static_assert(LEPOCH_FILE_BYTES_MAX >= 4 + 6 + LEPOCH_FILE_ENTRIES_MAX * 33,
	       "file bound holds the largest readable file");

void lepoch_check(const struct lepoch *c)
{
	SL_ASSERT(c->count <= LEPOCH_ENTRIES_MAX);
	for (uint32_t i = 0; i < c->count; i++) {
		SL_ASSERT(c->entries[i].epoch >= 0 && c->entries[i].start_offset >= 0);
		if (i > 0) {
			SL_ASSERT(c->entries[i].epoch > c->entries[i - 1].epoch);
			SL_ASSERT(c->entries[i].start_offset > c->entries[i - 1].start_offset);
		}
	}
}

void lepoch_init(struct lepoch *c, int shard_id)
{
	c->count = 0;
	c->shard_id = shard_id;
}

int32_t lepoch_latest_epoch(const struct lepoch *c)
{
	return c->count == 0 ? LEPOCH_UNDEFINED_EPOCH : c->entries[c->count - 1].epoch;
}

int lepoch_assign(struct lepoch *c, int32_t epoch, int64_t start_offset)
{
	uint32_t removed = 0;
	int64_t first_removed_start = -1;

	if (epoch < 0 || start_offset < 0)
		return -1;
	if (c->count > 0) {
		const struct lepoch_entry *last = &c->entries[c->count - 1];
		if (epoch == last->epoch && start_offset >= last->start_offset)
			return 0;
	}
	/* Kafka's maybeTruncateNonMonotonicEntries: pop while not monotonic. */
	while (c->count > 0) {
		const struct lepoch_entry *last = &c->entries[c->count - 1];
		if (last->epoch < epoch && last->start_offset < start_offset)
			break;
		first_removed_start = last->start_offset;
		c->count--;
		removed++;
	}
	/* Expected: the same start offset re-assigned (no data was written). */
	if (removed > 1 || (removed == 1 && first_removed_start != start_offset))
		LOG_W(c->shard_id, "lepoch: assigning epoch %d at %lld removed %u later entries",
		      epoch, (long long)start_offset, removed);
	if (c->count == LEPOCH_ENTRIES_MAX) {
		LOG_W(c->shard_id, "lepoch: %u entries, dropping the oldest (epoch %d at %lld)",
		      c->count, c->entries[0].epoch, (long long)c->entries[0].start_offset);
		memmove(&c->entries[0], &c->entries[1], (c->count - 1) * sizeof(c->entries[0]));
		c->count--;
	}
	c->entries[c->count].epoch = epoch;
	c->entries[c->count].start_offset = start_offset;
	c->count++;
	lepoch_check(c);
	SL_ASSERT(lepoch_latest_epoch(c) == epoch);
	return 1;
}

void lepoch_end_offset_for(const struct lepoch *c, int32_t requested, int64_t log_end_offset,
			   int32_t *epoch, int64_t *end_offset)
{
	uint32_t higher = c->count;     /* index of the first entry with epoch > requested */

	SL_ASSERT(epoch != NULL && end_offset != NULL);
	*epoch = LEPOCH_UNDEFINED_EPOCH;
	*end_offset = LEPOCH_UNDEFINED_OFFSET;
	if (requested == LEPOCH_UNDEFINED_EPOCH || c->count == 0)
		return;
	if (requested == lepoch_latest_epoch(c)) {
		/* The epoch still being written ends at the log end. */
		*epoch = requested;
		*end_offset = log_end_offset;
		return;
	}
	for (uint32_t i = 0; i < c->count; i++) {
		if (c->entries[i].epoch > requested) {
			higher = i;
			break;
		}
	}
	if (higher == c->count)
		return;                 /* newer than every epoch we know */
	if (higher == 0) {
		/* Older than all we know (retention removed it): the first start. */
		*epoch = requested;
		*end_offset = c->entries[0].start_offset;
		return;
	}
	*epoch = c->entries[higher - 1].epoch;
	*end_offset = c->entries[higher].start_offset;
	SL_ASSERT(*epoch <= requested && *end_offset >= 0);
}

void lepoch_truncate_from_end(struct lepoch *c, int64_t end_offset)
{
	if (end_offset < 0)
		return;
	while (c->count > 0 && c->entries[c->count - 1].start_offset >= end_offset)
		c->count--;
	SL_ASSERT(c->count == 0 || c->entries[c->count - 1].start_offset < end_offset);
	lepoch_check(c);
}

void lepoch_truncate_from_start(struct lepoch *c, int64_t start_offset)
{
	uint32_t drop = 0;

	if (start_offset < 0 || c->count == 0 || c->entries[0].start_offset >= start_offset)
		return;
	/* Entries starting at or before the new start; the last of them stays, moved up. */
	while (drop < c->count && c->entries[drop].start_offset <= start_offset)
		drop++;
	SL_ASSERT(drop >= 1);
	drop--;
	memmove(&c->entries[0], &c->entries[drop], (c->count - drop) * sizeof(c->entries[0]));
	c->count -= drop;
	c->entries[0].start_offset = start_offset;
	lepoch_check(c);
}

enum lepoch_truncation lepoch_divergence(const struct lepoch *c, int64_t log_end_offset,
					 int64_t high_watermark, int32_t leader_epoch,
					 int64_t leader_end_offset, int64_t *offset)
{
	int32_t own_epoch;
	int64_t own_end;

	SL_ASSERT(offset != NULL && log_end_offset >= 0);
	if (leader_end_offset == LEPOCH_UNDEFINED_OFFSET) {
		/* The leader knows nothing of our epoch: fall back to the HW. */
		*offset = SL_MIN(high_watermark, log_end_offset);
		return LEPOCH_TRUNCATE_DONE;
	}
	if (leader_epoch == LEPOCH_UNDEFINED_EPOCH) {
		*offset = SL_MIN(leader_end_offset, log_end_offset);
		return LEPOCH_TRUNCATE_DONE;
	}
	lepoch_end_offset_for(c, leader_epoch, log_end_offset, &own_epoch, &own_end);
	if (own_end == LEPOCH_UNDEFINED_OFFSET) {
		/* We tracked no epoch at or below the leader's: trust its offset. */
		*offset = SL_MIN(leader_end_offset, log_end_offset);
		return LEPOCH_TRUNCATE_DONE;
	}
	if (own_epoch != leader_epoch) {
		/* We never saw the leader's epoch: cut to the end of our largest
		 * epoch below it and ask again about that one (KIP-279). */
		*offset = SL_MIN(own_end, log_end_offset);
		return LEPOCH_TRUNCATE_AGAIN;
	}
	*offset = SL_MIN(SL_MIN(own_end, leader_end_offset), log_end_offset);
	SL_ASSERT(*offset <= log_end_offset);
	return LEPOCH_TRUNCATE_DONE;
}

enum sl_err lepoch_write(const struct lepoch *c, int dirfd)
{
	/* 2 header lines plus count lines of at most 11 + 1 + 20 + 1 bytes. */
	char buf[32 + LEPOCH_ENTRIES_MAX * 34];
	size_t len;
	int rc;

	lepoch_check(c);
	len = (size_t)snprintf(buf, sizeof(buf), "0\n%u\n", c->count);
	for (uint32_t i = 0; i < c->count; i++) {
		rc = snprintf(buf + len, sizeof(buf) - len, "%d %lld\n", c->entries[i].epoch,
			      (long long)c->entries[i].start_offset);
		SL_ASSERT(rc > 0 && (size_t)rc < sizeof(buf) - len);
		len += (size_t)rc;
	}
	rc = checkpoint_write_file_atomic(dirfd, LEPOCH_FILE_NAME, buf, len);
	if (rc != 0) {
		LOG_E(c->shard_id, "lepoch: writing %s failed: %s", LEPOCH_FILE_NAME, strerror(-rc));
		return SL_EIO;
	}
	return SL_OK;
}

/*
 * Parses a decimal integer in [min, max] from *p up to `end` (no sign other
 * than a leading '-', no blanks, at most 19 digits), stopping at `stop`.
 * Returns 0 and advances *p past `stop`, or -1.
 */
static int lepoch_parse_num(const char **p, const char *end, char stop, int64_t min, int64_t max,
			    int64_t *out)
{
	const char *s = *p;
	int neg = 0, digits = 0;
	uint64_t v = 0;                 /* 19 digits always fit */
	int64_t sv;

	if (s < end && *s == '-') {
		neg = 1;
		s++;
	}
	while (s < end && *s >= '0' && *s <= '9' && digits < 19) {
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
		digits++;
	}
	if (digits == 0 || s >= end || *s != stop || v > (uint64_t)INT64_MAX)
		return -1;
	sv = neg ? -(int64_t)v : (int64_t)v;
	if (sv < min || sv > max)
		return -1;
	*out = sv;
	*p = s + 1;
	return 0;
}

/* Parses the file body; 0 or -1 (malformed). */
static int lepoch_parse(struct lepoch *c, const char *p, const char *end)
{
	int64_t version, count, epoch, offset;

	if (lepoch_parse_num(&p, end, '\n', 0, 0, &version) != 0 ||
	    lepoch_parse_num(&p, end, '\n', 0, LEPOCH_FILE_ENTRIES_MAX, &count) != 0)
		return -1;
	for (int64_t i = 0; i < count; i++) {
		if (lepoch_parse_num(&p, end, ' ', 0, INT32_MAX, &epoch) != 0 ||
		    lepoch_parse_num(&p, end, '\n', 0, INT64_MAX, &offset) != 0)
			return -1;
		(void)lepoch_assign(c, (int32_t)epoch, offset);
	}
	return p == end ? 0 : -1;
}

enum sl_err lepoch_read(struct lepoch *c, int dirfd)
{
	char *buf = NULL;
	enum sl_err err = SL_OK;
	ssize_t n = 0;
	int fd;

	c->count = 0;
	fd = openat(dirfd, LEPOCH_FILE_NAME, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return SL_ENOTFOUND;
		LOG_E(c->shard_id, "lepoch: open %s: %s", LEPOCH_FILE_NAME, strerror(errno));
		return SL_EIO;
	}
	buf = malloc(LEPOCH_FILE_BYTES_MAX + 1);
	if (buf == NULL) {
		err = SL_ENOMEM;
		goto out;
	}
	/* One read past the bound tells a too-long file apart. */
	for (int tries = 0; tries < 64; tries++) {
		ssize_t r = pread(fd, buf + n, (size_t)(LEPOCH_FILE_BYTES_MAX + 1 - n), n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			LOG_E(c->shard_id, "lepoch: read %s: %s", LEPOCH_FILE_NAME, strerror(errno));
			err = SL_EIO;
			goto out;
		}
		if (r == 0)
			break;
		n += r;
		if (n > LEPOCH_FILE_BYTES_MAX)
			break;
	}
	if (n > LEPOCH_FILE_BYTES_MAX || lepoch_parse(c, buf, buf + n) != 0) {
		LOG_E(c->shard_id, "lepoch: %s is corrupt (%zd bytes): not \"0\\n<count>\\n<epoch> "
		      "<offset>\\n...\"; ignoring it", LEPOCH_FILE_NAME, n);
		c->count = 0;
		err = SL_ECORRUPT;
	}
out:
	free(buf);
	close(fd);
	lepoch_check(c);
	return err;
}
