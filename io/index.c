/*
 * index.c — see index.h.
 *
 * Every mutation keeps invariant 1 (strictly increasing entries) by
 * assertion: the segment computes entries from batches it has validated, so
 * a violation is our bug. Bytes found in a file at open are never trusted:
 * index_open counts only the valid prefix.
 */
#include "index.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "log.h"

/* An index never exceeds what an int32 position could address. */
#define INDEX_FILE_BYTES_MAX ((int64_t)INT32_MAX)

static uint8_t *index_entry(const struct index *idx, uint32_t i)
{
	SL_ASSERT(i < idx->count_max);
	return idx->map + (size_t)i * idx->entry_bytes;
}

/* Is entry i valid after entry i-1 (invariant 1)? */
static int index_entry_follows(const struct index *idx, uint32_t i)
{
	const uint8_t *e = index_entry(idx, i);

	if (idx->kind == INDEX_KIND_OFFSET) {
		int32_t rel = (int32_t)be32_load(e);
		int32_t pos = (int32_t)be32_load(e + 4);
		int32_t prev_rel = 0;
		int32_t prev_pos = 0;
		if (i > 0) {
			prev_rel = (int32_t)be32_load(e - INDEX_OFFSET_ENTRY_BYTES);
			prev_pos = (int32_t)be32_load(e - INDEX_OFFSET_ENTRY_BYTES + 4);
		}
		return rel > prev_rel && pos > prev_pos;
	}
	int64_t ts = (int64_t)be64_load(e);
	int32_t rel = (int32_t)be32_load(e + 8);
	int64_t prev_ts = -1;
	int32_t prev_rel = 0;
	if (i > 0) {
		prev_ts = (int64_t)be64_load(e - INDEX_TIME_ENTRY_BYTES);
		prev_rel = (int32_t)be32_load(e - INDEX_TIME_ENTRY_BYTES + 8);
	}
	return ts > prev_ts && rel >= prev_rel;
}

/* Replaces the mapping with one of `entries` entries (0: none). */
static enum sl_err index_map(struct index *idx, uint32_t entries)
{
	size_t bytes = (size_t)entries * idx->entry_bytes;
	void *m = NULL;

	if (bytes > 0) {
		m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, idx->fd, 0);
		if (m == MAP_FAILED) {
			LOG_E(LOG_NO_SHARD, "index: mmap %zu bytes: %s", bytes, strerror(errno));
			return SL_EIO;
		}
	}
	if (idx->map != NULL)
		munmap(idx->map, idx->map_bytes);
	idx->map = m;
	idx->map_bytes = bytes;
	idx->count_max = entries;
	SL_ASSERT(idx->count <= idx->count_max);
	return SL_OK;
}

enum sl_err index_open(struct index *idx, int dirfd, const char *name, enum index_kind kind,
		       int *existed)
{
	struct stat st;
	enum sl_err err = SL_EIO;

	SL_ASSERT(idx != NULL && name != NULL && existed != NULL);
	memset(idx, 0, sizeof(*idx));
	idx->fd = -1;
	idx->kind = kind;
	idx->entry_bytes = kind == INDEX_KIND_OFFSET ? INDEX_OFFSET_ENTRY_BYTES
						     : INDEX_TIME_ENTRY_BYTES;
	*existed = fstatat(dirfd, name, &st, 0) == 0;
	idx->fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (idx->fd < 0) {
		LOG_E(LOG_NO_SHARD, "index: open %s: %s", name, strerror(errno));
		goto cleanup;
	}
	if (fstat(idx->fd, &st) != 0) {
		LOG_E(LOG_NO_SHARD, "index: fstat %s: %s", name, strerror(errno));
		goto cleanup;
	}
	if (st.st_size > INDEX_FILE_BYTES_MAX) {
		LOG_W(LOG_NO_SHARD, "index: %s is %lld bytes, larger than any index",
		      name, (long long)st.st_size);
		err = SL_ECORRUPT;
		goto cleanup;
	}
	idx->count_on_file = (uint32_t)(st.st_size / idx->entry_bytes);
	idx->bytes_on_file = (size_t)st.st_size;
	idx->ragged = st.st_size % idx->entry_bytes != 0;
	err = index_map(idx, idx->count_on_file);
	if (err != SL_OK)
		goto cleanup;
	/* Bounded by the entries on file. */
	while (idx->count < idx->count_on_file && index_entry_follows(idx, idx->count))
		idx->count++;
	if (idx->count < idx->count_on_file)
		idx->ragged = 1;
	SL_ASSERT(idx->count <= idx->count_max);
	return SL_OK;

cleanup:
	if (idx->fd >= 0)
		close(idx->fd);
	idx->fd = -1;
	return err;
}

enum sl_err index_activate(struct index *idx, int64_t size_max_bytes)
{
	int64_t want = size_max_bytes / idx->entry_bytes;
	uint32_t entries;
	enum sl_err err;

	SL_ASSERT(idx->fd >= 0);
	SL_ASSERT(size_max_bytes > 0 && size_max_bytes <= INDEX_FILE_BYTES_MAX);
	entries = (uint32_t)SL_MAX(want, (int64_t)idx->count);
	if (entries < idx->count_max)
		entries = idx->count_max;
	/* Drop the old mapping first: it may cover stale entries we zero below. */
	if (ftruncate(idx->fd, (off_t)entries * idx->entry_bytes) != 0) {
		LOG_E(LOG_NO_SHARD, "index: extend to %u entries: %s", entries, strerror(errno));
		return SL_EIO;
	}
	err = index_map(idx, entries);
	if (err != SL_OK)
		return err;
	idx->writable = 1;
	/* Invariant 3: zeros after count (stale entries from a crash or truncation). */
	index_truncate(idx, idx->count);
	SL_ASSERT(idx->count_max >= idx->count);
	return SL_OK;
}

enum sl_err index_seal(struct index *idx)
{
	off_t bytes = (off_t)idx->count * idx->entry_bytes;
	enum sl_err err;

	SL_ASSERT(idx->fd >= 0);
	if (idx->count_max != idx->count || idx->ragged) {
		/* Unmap before shrinking: touching a page past EOF would SIGBUS. */
		if (idx->map != NULL)
			munmap(idx->map, idx->map_bytes);
		idx->map = NULL;
		idx->map_bytes = 0;
		idx->count_max = 0;
		if (ftruncate(idx->fd, bytes) != 0) {
			LOG_E(LOG_NO_SHARD, "index: trim to %u entries: %s", idx->count,
			      strerror(errno));
			idx->count_max = idx->count;
			(void)index_map(idx, idx->count);
			return SL_EIO;
		}
		err = index_map(idx, idx->count);
		if (err != SL_OK)
			return err;
		idx->dirty = 1;
	}
	idx->writable = 0;
	idx->ragged = 0;
	SL_ASSERT(idx->count_max == idx->count);
	return SL_OK;
}

void index_close(struct index *idx)
{
	if (idx->map != NULL)
		munmap(idx->map, idx->map_bytes);
	idx->map = NULL;
	idx->map_bytes = 0;
	if (idx->fd >= 0)
		close(idx->fd);
	idx->fd = -1;
}

void index_truncate(struct index *idx, uint32_t count)
{
	SL_ASSERT(idx->count <= idx->count_max);
	if (count > idx->count)
		count = idx->count;
	if (idx->map != NULL) {
		/* Stale bytes: old entries, and whatever the file held at open
		 * (invalid entries, a partial one). */
		size_t from = (size_t)count * idx->entry_bytes;
		size_t upto = SL_MAX((size_t)idx->count * idx->entry_bytes, idx->bytes_on_file);
		if (upto > idx->map_bytes)
			upto = idx->map_bytes;
		if (upto > from) {
			memset(idx->map + from, 0, upto - from);
			idx->dirty = 1;
		}
	}
	if (count != idx->count)
		idx->dirty = 1;
	idx->count = count;
	idx->count_on_file = SL_MIN(idx->count_on_file, count);
	idx->bytes_on_file = SL_MIN(idx->bytes_on_file, (size_t)count * idx->entry_bytes);
}

void index_offset_append(struct index *idx, int32_t rel, int32_t pos)
{
	SL_ASSERT(idx->kind == INDEX_KIND_OFFSET && idx->writable);
	SL_ASSERT(!index_full(idx));
	uint8_t *e = index_entry(idx, idx->count);
	be32_store(e, (uint32_t)rel);
	be32_store(e + 4, (uint32_t)pos);
	SL_ASSERT(index_entry_follows(idx, idx->count));
	idx->count++;
	idx->dirty = 1;
}

void index_offset_get(const struct index *idx, uint32_t i, int32_t *rel, int32_t *pos)
{
	SL_ASSERT(idx->kind == INDEX_KIND_OFFSET && i < idx->count);
	const uint8_t *e = index_entry(idx, i);
	*rel = (int32_t)be32_load(e);
	*pos = (int32_t)be32_load(e + 4);
}

/* Number of entries whose key (per `kind` field at `key_at`) is < `key`. */
static uint32_t index_count_rel_below(const struct index *idx, int64_t rel, size_t rel_at)
{
	uint32_t lo = 0;
	uint32_t hi = idx->count;

	/* Binary search: bounded by log2(count) turns. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int32_t r = (int32_t)be32_load(index_entry(idx, mid) + rel_at);
		if ((int64_t)r < rel)
			lo = mid + 1;
		else
			hi = mid;
	}
	SL_ASSERT(lo <= idx->count);
	return lo;
}

int64_t index_offset_lookup(const struct index *idx, int64_t rel)
{
	SL_ASSERT(idx->kind == INDEX_KIND_OFFSET);
	if (rel >= INT32_MAX)
		return (int64_t)idx->count - 1;
	/* Entries with rel_i <= rel = entries with rel_i < rel + 1. */
	return (int64_t)index_count_rel_below(idx, rel + 1, 0) - 1;
}

uint32_t index_offset_count_below(const struct index *idx, int64_t rel)
{
	SL_ASSERT(idx->kind == INDEX_KIND_OFFSET);
	return index_count_rel_below(idx, rel, 0);
}

int index_time_maybe_append(struct index *idx, int64_t ts, int32_t rel)
{
	SL_ASSERT(idx->kind == INDEX_KIND_TIME && idx->writable);
	if (ts <= index_time_last_ts(idx))
		return 0;
	SL_ASSERT(!index_full(idx));
	uint8_t *e = index_entry(idx, idx->count);
	be64_store(e, (uint64_t)ts);
	be32_store(e + 8, (uint32_t)rel);
	SL_ASSERT(index_entry_follows(idx, idx->count));
	idx->count++;
	idx->dirty = 1;
	return 1;
}

void index_time_get(const struct index *idx, uint32_t i, int64_t *ts, int32_t *rel)
{
	SL_ASSERT(idx->kind == INDEX_KIND_TIME && i < idx->count);
	const uint8_t *e = index_entry(idx, i);
	*ts = (int64_t)be64_load(e);
	*rel = (int32_t)be32_load(e + 8);
}

int64_t index_time_lookup_below(const struct index *idx, int64_t ts)
{
	uint32_t lo = 0;
	uint32_t hi = idx->count;

	SL_ASSERT(idx->kind == INDEX_KIND_TIME);
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if ((int64_t)be64_load(index_entry(idx, mid)) < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int64_t)lo - 1;
}

uint32_t index_time_count_below(const struct index *idx, int64_t rel)
{
	SL_ASSERT(idx->kind == INDEX_KIND_TIME);
	return index_count_rel_below(idx, rel, 8);
}

int64_t index_time_last_ts(const struct index *idx)
{
	SL_ASSERT(idx->kind == INDEX_KIND_TIME);
	if (idx->count == 0)
		return -1;
	return (int64_t)be64_load(index_entry(idx, idx->count - 1));
}
