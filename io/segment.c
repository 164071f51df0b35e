/*
 * segment.c — see segment.h.
 *
 * Reads here are plain pread(2): batch headers (61 bytes) while locating an
 * offset, and whole batches only during recovery. They hit the page cache
 * in the common case; the bulk data path (appends, fsyncs, sendfile) is
 * io_uring and lives in plog.c and net/.
 *
 * Recovery never trusts a byte of the files: every length is checked
 * against the bytes present before it is used, every loop is bounded by
 * the file size, and a batch is accepted only after batch_validate (CRC
 * included) and an offset-order check.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* fallocate */
#endif
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Recovery reads the .log through a window of at least this many bytes. */
#define SEGMENT_READ_WINDOW_BYTES ((size_t)256 * 1024)

void segment_file_name(char *out, int64_t base_offset, const char *ext)
{
	int n = snprintf(out, SEGMENT_NAME_BYTES, "%020lld%s", (long long)base_offset, ext);
	SL_ASSERT(n > 0 && n < SEGMENT_NAME_BYTES);
}

static struct segment *segment_alloc(int64_t base_offset)
{
	struct segment *seg = calloc(1, sizeof(*seg));

	if (seg == NULL)
		return NULL;
	seg->base_offset = base_offset;
	seg->log_fd = -1;
	seg->oindex.fd = -1;
	seg->tindex.fd = -1;
	seg->refs = 1;
	seg->next_offset = base_offset;
	seg->max_timestamp = -1;
	seg->max_timestamp_offset = -1;
	seg->roll_base_ms = -1;
	segment_file_name(seg->name, base_offset, "");
	return seg;
}

static void segment_free(struct segment *seg)
{
	index_close(&seg->oindex);
	index_close(&seg->tindex);
	if (seg->log_fd >= 0)
		close(seg->log_fd);
	free(seg);
}

void segment_ref(struct segment *seg)
{
	SL_ASSERT(seg->refs > 0 && seg->refs < UINT32_MAX);
	seg->refs++;
}

void segment_unref(struct segment *seg)
{
	SL_ASSERT(seg->refs > 0);
	if (--seg->refs > 0)
		return;
	SL_ASSERT(seg->appends_pending == 0);
	segment_free(seg);
}

static int32_t segment_rel(const struct segment *seg, int64_t offset)
{
	SL_ASSERT(offset >= seg->base_offset &&
		  offset - seg->base_offset <= SEGMENT_REL_OFFSET_MAX);
	return (int32_t)(offset - seg->base_offset);
}

/* Opens the three files; the .log is created only with O_CREAT in `log_flags`. */
static enum sl_err segment_open_files(struct segment *seg, int dirfd, int log_flags,
				      int *oindex_existed, int *tindex_existed)
{
	char name[SEGMENT_NAME_BYTES];
	struct stat st;
	enum sl_err err;

	segment_file_name(name, seg->base_offset, ".log");
	seg->log_fd = openat(dirfd, name, O_RDWR | O_CLOEXEC | log_flags, 0644);
	if (seg->log_fd < 0) {
		LOG_E(LOG_NO_SHARD, "segment %s: open: %s", name, strerror(errno));
		return SL_EIO;
	}
	if (fstat(seg->log_fd, &st) != 0) {
		LOG_E(LOG_NO_SHARD, "segment %s: fstat: %s", name, strerror(errno));
		return SL_EIO;
	}
	if (st.st_size > SEGMENT_BYTES_MAX) {
		LOG_E(LOG_NO_SHARD, "segment %s: %lld bytes, larger than a segment can be",
		      name, (long long)st.st_size);
		return SL_ECORRUPT;
	}
	seg->file_bytes = st.st_size;
	seg->created_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;

	segment_file_name(name, seg->base_offset, ".index");
	err = index_open(&seg->oindex, dirfd, name, INDEX_KIND_OFFSET, oindex_existed);
	if (err != SL_OK)
		return err;
	segment_file_name(name, seg->base_offset, ".timeindex");
	return index_open(&seg->tindex, dirfd, name, INDEX_KIND_TIME, tindex_existed);
}

enum sl_err segment_create(struct segment **out, int dirfd, int64_t base_offset,
			   const struct segment_config *cfg, int64_t now_ms)
{
	char name[SEGMENT_NAME_BYTES];
	struct segment *seg;
	int existed;
	enum sl_err err;

	SL_ASSERT(out != NULL && base_offset >= 0);
	seg = segment_alloc(base_offset);
	if (seg == NULL)
		return SL_ENOMEM;
	/* Stale indexes of a deleted segment with this base must not be reused. */
	segment_file_name(name, base_offset, ".index");
	(void)unlinkat(dirfd, name, 0);
	segment_file_name(name, base_offset, ".timeindex");
	(void)unlinkat(dirfd, name, 0);
	err = segment_open_files(seg, dirfd, O_CREAT | O_TRUNC, &existed, &existed);
	if (err != SL_OK)
		goto cleanup;
	seg->created_ms = now_ms;
	err = segment_activate(seg, cfg);
	if (err != SL_OK)
		goto cleanup;
	SL_ASSERT(seg->size == 0 && seg->oindex.count == 0 && seg->tindex.count == 0);
	*out = seg;
	return SL_OK;

cleanup:
	segment_free(seg);
	return err;
}

enum sl_err segment_activate(struct segment *seg, const struct segment_config *cfg)
{
	enum sl_err err;

	SL_ASSERT(seg->state != SEGMENT_DELETED && seg->state != SEGMENT_SEALING);
	err = index_activate(&seg->oindex, cfg->index_size_max_bytes);
	if (err == SL_OK)
		err = index_activate(&seg->tindex, cfg->index_size_max_bytes);
	if (err != SL_OK)
		return err;
	if (cfg->preallocate && seg->file_bytes < cfg->segment_bytes) {
		/* Mode 0 extends the size (zero-filled), as Kafka's preallocate
		 * does; recovery treats a zero tail as the end of the log. */
		if (fallocate(seg->log_fd, 0, 0, (off_t)cfg->segment_bytes) == 0)
			seg->file_bytes = cfg->segment_bytes;
		else
			LOG_W(cfg->shard_id, "segment %s: fallocate: %s (continuing without)",
			      seg->name, strerror(errno));
	}
	seg->state = SEGMENT_ACTIVE;
	SL_ASSERT(seg->oindex.writable && seg->tindex.writable);
	return SL_OK;
}

enum sl_err segment_seal(struct segment *seg)
{
	enum sl_err err = SL_OK;

	SL_ASSERT(seg->appends_pending == 0);
	SL_ASSERT(seg->state != SEGMENT_DELETED);
	/* Kafka adds the segment's largest timestamp when it becomes inactive,
	 * so a reload reads it from the last time index entry. */
	if (seg->tindex.writable && seg->max_timestamp >= 0 && index_room(&seg->tindex) > 0)
		(void)index_time_maybe_append(&seg->tindex, seg->max_timestamp,
					      segment_rel(seg, seg->max_timestamp_offset));
	if (index_seal(&seg->oindex) != SL_OK)
		err = SL_EIO;
	if (index_seal(&seg->tindex) != SL_OK)
		err = SL_EIO;
	if (seg->file_bytes != seg->size) {
		if (ftruncate(seg->log_fd, (off_t)seg->size) == 0) {
			seg->file_bytes = seg->size;
			seg->log_dirty = 1;
		} else {
			LOG_E(LOG_NO_SHARD, "segment %s: trim to %lld bytes: %s", seg->name,
			      (long long)seg->size, strerror(errno));
			err = SL_EIO;
		}
	}
	seg->size_reserved = seg->size;
	seg->state = SEGMENT_SEALED;
	SL_ASSERT(!seg->oindex.writable || err != SL_OK);
	return err;
}

void segment_track_batch(struct segment *seg, int64_t pos, const struct batch_header *h,
			 int32_t index_interval_bytes)
{
	int64_t last = batch_last_offset(h);
	int64_t bytes = (int64_t)batch_size_bytes(h);

	SL_ASSERT(pos == seg->size);
	SL_ASSERT(h->base_offset >= seg->base_offset && last >= h->base_offset);
	SL_ASSERT(last - seg->base_offset <= SEGMENT_REL_OFFSET_MAX);
	SL_ASSERT(pos + bytes <= SEGMENT_BYTES_MAX);

	if (h->max_timestamp > seg->max_timestamp) {
		seg->max_timestamp = h->max_timestamp;
		seg->max_timestamp_offset = last;
	}
	if (seg->bytes_since_index > index_interval_bytes) {
		if (seg->oindex.writable && !index_full(&seg->oindex))
			index_offset_append(&seg->oindex, segment_rel(seg, last), (int32_t)pos);
		if (seg->tindex.writable && !index_full(&seg->tindex) && seg->max_timestamp >= 0)
			(void)index_time_maybe_append(&seg->tindex, seg->max_timestamp,
						      segment_rel(seg, seg->max_timestamp_offset));
		seg->bytes_since_index = 0;
	}
	seg->bytes_since_index += bytes;
	seg->size = pos + bytes;
	seg->next_offset = last + 1;
	SL_ASSERT(seg->size <= SEGMENT_BYTES_MAX);
}

/* pread of exactly len bytes; SL_ETRUNC at EOF, SL_EIO on error. */
static enum sl_err segment_pread(int fd, void *buf, size_t len, int64_t pos)
{
	size_t done = 0;

	/* Each turn reads at least one byte or ends. */
	while (done < len) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, len - done, (off_t)pos + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			LOG_E(LOG_NO_SHARD, "segment: pread at %lld: %s", (long long)pos,
			      strerror(errno));
			return SL_EIO;
		}
		if (r == 0)
			return SL_ETRUNC;
		done += (size_t)r;
	}
	return SL_OK;
}

enum sl_err segment_read_header(const struct segment *seg, int64_t pos, int64_t limit,
				struct batch_header *h)
{
	uint8_t buf[BATCH_HEADER_BYTES];
	enum sl_err err;

	SL_ASSERT(pos >= 0 && limit >= 0);
	if (pos > limit || limit - pos < BATCH_HEADER_BYTES)
		return SL_ETRUNC;
	err = segment_pread(seg->log_fd, buf, sizeof(buf), pos);
	if (err != SL_OK)
		return err;
	/* The parser reads only the fixed header; `limit - pos` is what the
	 * file holds after it, so a batch claiming more is SL_ETRUNC. */
	return batch_header_parse(buf, (size_t)(limit - pos), h);
}

enum sl_err segment_locate(const struct segment *seg, int64_t offset, int64_t *pos,
			   struct batch_header *h)
{
	int64_t p = 0;
	int64_t i;
	enum sl_err err;

	if (offset >= seg->next_offset)
		return SL_ENOTFOUND;
	i = index_offset_lookup(&seg->oindex, offset - seg->base_offset);
	if (i >= 0) {
		int32_t rel, ipos;
		index_offset_get(&seg->oindex, (uint32_t)i, &rel, &ipos);
		p = ipos;
	}
	SL_ASSERT(p <= seg->size);
	/* Each turn moves past one batch of >= BATCH_HEADER_BYTES bytes. */
	for (int64_t n = 0; p < seg->size && n <= seg->size / BATCH_HEADER_BYTES; n++) {
		err = segment_read_header(seg, p, seg->size, h);
		if (err != SL_OK) {
			LOG_E(LOG_NO_SHARD, "segment %s: bad batch header at %lld (visible data)",
			      seg->name, (long long)p);
			return err == SL_EIO ? SL_EIO : SL_ECORRUPT;
		}
		if (batch_last_offset(h) >= offset) {
			*pos = p;
			return SL_OK;
		}
		p += (int64_t)batch_size_bytes(h);
	}
	return SL_ENOTFOUND;
}

int64_t segment_time_scan_start(const struct segment *seg, int64_t ts)
{
	int64_t i = index_time_lookup_below(&seg->tindex, ts);
	int64_t tts;
	int32_t rel, ipos;

	if (i < 0)
		return 0;
	index_time_get(&seg->tindex, (uint32_t)i, &tts, &rel);
	SL_ASSERT(tts < ts);
	/* Every batch up to offset base+rel has maxTimestamp < ts: start at an
	 * indexed batch not after the one holding base+rel+1. */
	i = index_offset_lookup(&seg->oindex, (int64_t)rel + 1);
	if (i < 0)
		return 0;
	index_offset_get(&seg->oindex, (uint32_t)i, &rel, &ipos);
	return SL_MIN((int64_t)ipos, seg->size);
}

/* ---- recovery ---- */

/* A window over the .log for the recovery scan. */
struct segment_reader {
	int fd;
	uint8_t *buf;
	size_t cap;
	int64_t win_pos;
	size_t win_len;
	int64_t end;
};

/* Points *out at `need` bytes at `pos` (pos + need <= end). */
static enum sl_err segment_reader_get(struct segment_reader *r, int64_t pos, size_t need,
				      const uint8_t **out)
{
	size_t want;
	enum sl_err err;

	SL_ASSERT(pos >= 0 && pos + (int64_t)need <= r->end);
	if (r->buf != NULL && pos >= r->win_pos &&
	    pos + (int64_t)need <= r->win_pos + (int64_t)r->win_len) {
		*out = r->buf + (pos - r->win_pos);
		return SL_OK;
	}
	want = SL_MAX(need, SEGMENT_READ_WINDOW_BYTES);
	want = (size_t)SL_MIN((int64_t)want, r->end - pos);
	SL_ASSERT(want >= need);
	if (want > r->cap) {
		uint8_t *nb = realloc(r->buf, want);
		if (nb == NULL)
			return SL_ENOMEM;
		r->buf = nb;
		r->cap = want;
	}
	r->win_len = 0;
	err = segment_pread(r->fd, r->buf, want, pos);
	if (err != SL_OK)
		return err == SL_ETRUNC ? SL_EIO : err;  /* the file shrank under us */
	r->win_pos = pos;
	r->win_len = want;
	*out = r->buf;
	return SL_OK;
}

static int segment_all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* First batch's maxTimestamp (or creation time) decides roll.ms. */
static void segment_roll_base_load(struct segment *seg)
{
	struct batch_header h;

	seg->roll_base_ms = -1;
	if (seg->size > 0 && segment_read_header(seg, 0, seg->size, &h) == SL_OK)
		seg->roll_base_ms = h.max_timestamp >= 0 ? h.max_timestamp : seg->created_ms;
}

/* Takes the largest timestamp (and its offset) from the time index's last
 * entry; leaves both as they are when the time index is empty. */
static void segment_max_ts_from_tindex(struct segment *seg)
{
	int64_t ts;
	int32_t rel;

	if (seg->tindex.count == 0)
		return;
	index_time_get(&seg->tindex, seg->tindex.count - 1, &ts, &rel);
	seg->max_timestamp = ts;
	seg->max_timestamp_offset = seg->base_offset + rel;
}

/*
 * Resets the visible state to "everything up to and including the batch of
 * offset index entry `keep - 1`" (or empty when keep == 0), keeping index
 * entries at or before it. Returns the position to scan from.
 */
static int64_t segment_resume_at(struct segment *seg, uint32_t keep)
{
	int64_t pos = 0;
	int32_t rel = -1;

	if (keep > 0) {
		int32_t ipos;
		index_offset_get(&seg->oindex, keep - 1, &rel, &ipos);
		pos = ipos;
	}
	index_truncate(&seg->oindex, keep);
	index_truncate(&seg->tindex, keep > 0 ? index_time_count_below(&seg->tindex, (int64_t)rel + 1)
					      : 0);
	seg->max_timestamp = -1;
	seg->max_timestamp_offset = -1;
	segment_max_ts_from_tindex(seg);
	seg->size = pos;
	seg->next_offset = seg->base_offset;
	seg->bytes_since_index = 0;
	return pos;
}

/*
 * Trusted load, step 1: the indexes must be whole. Sets the visible state
 * to "up to the last indexed batch" keeping every entry (the time index's
 * last one is a sealed segment's largest timestamp) and returns the
 * position to walk from; *expect_last is that batch's last offset (-1 when
 * the walk starts at 0). SL_ECORRUPT with *why on doubt.
 */
static enum sl_err segment_trusted_start(struct segment *seg, int oindex_existed,
					 int tindex_existed, int64_t *pos, int64_t *expect_last,
					 const char **why)
{
	*pos = 0;
	*expect_last = -1;
	if (!oindex_existed || !tindex_existed) {
		*why = "an index file is missing";
		return SL_ECORRUPT;
	}
	if (seg->oindex.ragged || seg->tindex.ragged) {
		*why = "an index has invalid entries or a partial entry";
		return SL_ECORRUPT;
	}
	if (seg->oindex.count > 0) {
		int32_t rel, ipos;
		index_offset_get(&seg->oindex, seg->oindex.count - 1, &rel, &ipos);
		if (ipos >= seg->file_bytes) {
			*why = "the last index entry points past the log";
			return SL_ECORRUPT;
		}
		*pos = ipos;
		*expect_last = seg->base_offset + rel;
	}
	segment_max_ts_from_tindex(seg);
	seg->size = *pos;
	seg->next_offset = seg->base_offset;
	seg->bytes_since_index = 0;
	return SL_OK;
}

/*
 * Trusted load, step 2: headers from `p` must run exactly to EOF, in
 * order, starting with the indexed batch, and (unless an index is full) no
 * batch may be one the cadence would have indexed.
 */
static enum sl_err segment_trusted_walk(struct segment *seg, const struct segment_config *cfg,
					int64_t p, int64_t expect_last,
					struct segment_load_report *rep, const char **why)
{
	/* A full index legitimately skipped entries: no cadence check then. */
	int check_cadence =
		seg->oindex.count + 1 < (uint32_t)(cfg->index_size_max_bytes / INDEX_OFFSET_ENTRY_BYTES) &&
		seg->tindex.count + 2 < (uint32_t)(cfg->index_size_max_bytes / INDEX_TIME_ENTRY_BYTES);

	/* Each turn passes one batch of >= BATCH_HEADER_BYTES bytes. */
	for (int64_t n = 0; p < seg->file_bytes && n <= seg->file_bytes / BATCH_HEADER_BYTES; n++) {
		struct batch_header h;
		enum sl_err err = segment_read_header(seg, p, seg->file_bytes, &h);
		rep->headers_walked++;
		if (err == SL_EIO)
			return err;
		if (err != SL_OK) {
			*why = "a batch header after the last index entry is torn or invalid";
			return SL_ECORRUPT;
		}
		if (expect_last >= 0 && batch_last_offset(&h) != expect_last) {
			*why = "the last index entry does not match the log";
			return SL_ECORRUPT;
		}
		expect_last = -1;
		if (h.base_offset < seg->next_offset || h.last_offset_delta < 0 ||
		    batch_last_offset(&h) - seg->base_offset > SEGMENT_REL_OFFSET_MAX) {
			*why = "batch offsets out of order";
			return SL_ECORRUPT;
		}
		if (check_cadence && seg->bytes_since_index > cfg->index_interval_bytes) {
			*why = "the offset index is missing entries";
			return SL_ECORRUPT;
		}
		segment_track_batch(seg, p, &h, cfg->index_interval_bytes);
		p += (int64_t)batch_size_bytes(&h);
	}
	SL_ASSERT(p == seg->file_bytes);
	return SL_OK;
}

/*
 * Trusted load: indexes whole, headers from the last offset index entry
 * exactly to EOF, the time index within the data. Sets *why and returns
 * SL_ECORRUPT on any doubt (the caller then recovers the segment).
 */
static enum sl_err segment_check_trusted(struct segment *seg, const struct segment_config *cfg,
					 int oindex_existed, int tindex_existed,
					 struct segment_load_report *rep, const char **why)
{
	int64_t p, expect_last;
	enum sl_err err;

	err = segment_trusted_start(seg, oindex_existed, tindex_existed, &p, &expect_last, why);
	if (err == SL_OK)
		err = segment_trusted_walk(seg, cfg, p, expect_last, rep, why);
	if (err != SL_OK)
		return err;
	if (seg->tindex.count > 0) {
		int64_t ts;
		int32_t rel;
		index_time_get(&seg->tindex, seg->tindex.count - 1, &ts, &rel);
		if (seg->base_offset + rel >= seg->next_offset) {
			*why = "the time index points past the log";
			return SL_ECORRUPT;
		}
	}
	seg->size_reserved = seg->size;
	segment_roll_base_load(seg);
	SL_ASSERT(seg->size == seg->file_bytes);
	return SL_OK;
}

/*
 * Chooses where the recovery scan starts: the last offset index entry below
 * `recover_from` whose batch is really there (header matches, CRC good).
 * Returns the number of index entries to keep.
 */
static uint32_t segment_recover_resume(struct segment *seg, int64_t recover_from,
				       struct segment_reader *rd)
{
	struct batch_header h;
	int64_t k;
	int32_t rel, ipos;
	const uint8_t *b;

	if (recover_from <= seg->base_offset || seg->oindex.count == 0)
		return 0;
	k = index_offset_lookup(&seg->oindex, recover_from - 1 - seg->base_offset);
	if (k < 0)
		return 0;
	index_offset_get(&seg->oindex, (uint32_t)k, &rel, &ipos);
	if (ipos >= seg->file_bytes ||
	    segment_read_header(seg, ipos, seg->file_bytes, &h) != SL_OK ||
	    batch_last_offset(&h) != seg->base_offset + rel ||
	    segment_reader_get(rd, ipos, batch_size_bytes(&h), &b) != SL_OK ||
	    batch_validate(b, batch_size_bytes(&h), BATCH_CHECK_CRC, &h) != SL_OK) {
		LOG_W(LOG_NO_SHARD, "segment %s: index entry %lld does not match the log; "
		      "rebuilding the indexes", seg->name, (long long)k);
		return 0;
	}
	return (uint32_t)k + 1;
}

/*
 * Why the scan stopped at `pos`: SL_OK for a zero-filled tail, SL_ECORRUPT
 * otherwise; SL_EIO / SL_ENOMEM pass through.
 */
static enum sl_err segment_scan_one(struct segment *seg, struct segment_reader *rd, int64_t pos,
				    int64_t expected_min, struct batch_header *h)
{
	int64_t avail = seg->file_bytes - pos;
	size_t head = (size_t)SL_MIN(avail, (int64_t)BATCH_HEADER_BYTES);
	const uint8_t *p;
	enum sl_err err;

	err = segment_reader_get(rd, pos, head, &p);
	if (err != SL_OK)
		return err;
	if (segment_all_zero(p, head))
		return SL_ENOTFOUND;  /* zero-filled (preallocated) tail */
	err = batch_header_parse(p, (size_t)avail, h);
	if (err != SL_OK)
		return SL_ECORRUPT;
	err = segment_reader_get(rd, pos, batch_size_bytes(h), &p);
	if (err != SL_OK)
		return err;
	if (batch_validate(p, batch_size_bytes(h), BATCH_CHECK_CRC, h) != SL_OK)
		return SL_ECORRUPT;
	if (h->base_offset < expected_min ||
	    batch_last_offset(h) - seg->base_offset > SEGMENT_REL_OFFSET_MAX)
		return SL_ECORRUPT;
	return SL_OK;
}

/*
 * Truncates the .log after the scan stopped at `size` (stop: SL_ENOTFOUND
 * for a zero-filled tail, anything else for torn or corrupt bytes).
 */
static enum sl_err segment_cut_tail(struct segment *seg, const struct segment_config *cfg,
				    enum sl_err stop, struct segment_load_report *rep)
{
	int64_t pos = seg->size;
	int64_t cut = seg->file_bytes - pos;

	if (cut == 0)
		return SL_OK;
	SL_ASSERT(cut > 0);
	if (stop == SL_ENOTFOUND) {
		rep->zero_tail = 1;
		LOG_I(cfg->shard_id, "recovery: segment %s: zero-filled tail at %lld (%lld bytes), "
		      "end of log", seg->name, (long long)pos, (long long)cut);
	} else {
		rep->corrupt = 1;
		LOG_W(cfg->shard_id, "recovery: segment %s: torn or corrupt batch at position "
		      "%lld: truncating %lld bytes", seg->name, (long long)pos, (long long)cut);
	}
	if (ftruncate(seg->log_fd, (off_t)pos) != 0) {
		LOG_E(cfg->shard_id, "recovery: segment %s: truncate: %s", seg->name,
		      strerror(errno));
		return SL_EIO;
	}
	seg->file_bytes = pos;
	rep->bytes_truncated += cut;
	return SL_OK;
}

/* Scans from the resume point, validating every batch; truncates the rest. */
static enum sl_err segment_recover(struct segment *seg, const struct segment_config *cfg,
				   int64_t recover_from, struct segment_load_report *rep)
{
	struct segment_reader rd = { .fd = seg->log_fd, .end = seg->file_bytes };
	enum sl_err stop = SL_OK;
	enum sl_err err;
	uint32_t keep;
	int64_t pos;
	int64_t expected_min = seg->base_offset;

	err = index_activate(&seg->oindex, cfg->index_size_max_bytes);
	if (err == SL_OK)
		err = index_activate(&seg->tindex, cfg->index_size_max_bytes);
	if (err != SL_OK)
		goto cleanup;
	keep = segment_recover_resume(seg, recover_from, &rd);
	if (keep == 0)
		rep->rebuilt = 1;
	pos = segment_resume_at(seg, keep);

	/* Each turn accepts one batch of >= BATCH_HEADER_BYTES bytes or stops. */
	for (int64_t n = 0; pos < seg->file_bytes && n <= seg->file_bytes / BATCH_HEADER_BYTES; n++) {
		struct batch_header h;
		stop = segment_scan_one(seg, &rd, pos, expected_min, &h);
		if (stop != SL_OK)
			break;
		rep->batches_validated++;
		segment_track_batch(seg, pos, &h, cfg->index_interval_bytes);
		expected_min = batch_last_offset(&h) + 1;
		pos += (int64_t)batch_size_bytes(&h);
	}
	if (stop == SL_EIO || stop == SL_ENOMEM) {
		err = stop;
		goto cleanup;
	}
	SL_ASSERT(pos == seg->size);
	err = segment_cut_tail(seg, cfg, stop, rep);
	if (err != SL_OK)
		goto cleanup;
	seg->size_reserved = seg->size;
	seg->log_dirty = 1;
	seg->oindex.dirty = 1;
	seg->tindex.dirty = 1;
	segment_roll_base_load(seg);
	err = SL_OK;

cleanup:
	free(rd.buf);
	return err;
}

enum sl_err segment_load(struct segment **out, int dirfd, int64_t base_offset,
			 const struct segment_config *cfg, enum segment_load_mode mode,
			 int64_t recover_from, struct segment_load_report *rep)
{
	struct segment *seg;
	int oexisted = 0, texisted = 0;
	const char *why = "";
	enum sl_err err;

	SL_ASSERT(out != NULL && rep != NULL && base_offset >= 0);
	seg = segment_alloc(base_offset);
	if (seg == NULL)
		return SL_ENOMEM;
	err = segment_open_files(seg, dirfd, 0, &oexisted, &texisted);
	if (err != SL_OK)
		goto cleanup;
	if (mode == SEGMENT_LOAD_TRUSTED) {
		err = segment_check_trusted(seg, cfg, oexisted, texisted, rep, &why);
		if (err == SL_EIO)
			goto cleanup;
		if (err != SL_OK) {
			LOG_W(cfg->shard_id, "recovery: segment %s: %s; rebuilding its indexes "
			      "from the log", seg->name, why);
			recover_from = base_offset;
		}
	}
	if (mode == SEGMENT_LOAD_RECOVER || err != SL_OK) {
		err = segment_recover(seg, cfg, recover_from, rep);
		if (err != SL_OK)
			goto cleanup;
	}
	SL_ASSERT(seg->size == seg->file_bytes || seg->file_bytes > seg->size);
	SL_ASSERT(seg->next_offset >= seg->base_offset);
	*out = seg;
	return SL_OK;

cleanup:
	segment_free(seg);
	return err;
}

enum sl_err segment_truncate(struct segment *seg, int64_t pos, int64_t new_next_offset,
			     const struct segment_config *cfg)
{
	int64_t rel_end = new_next_offset - seg->base_offset;
	int64_t p;

	SL_ASSERT(seg->appends_pending == 0);
	SL_ASSERT(pos >= 0 && pos <= seg->size);
	SL_ASSERT(rel_end >= 0 && new_next_offset <= seg->next_offset);
	if (ftruncate(seg->log_fd, (off_t)pos) != 0) {
		LOG_E(cfg->shard_id, "segment %s: truncate to %lld: %s", seg->name,
		      (long long)pos, strerror(errno));
		return SL_EIO;
	}
	seg->file_bytes = pos;
	index_truncate(&seg->oindex, index_offset_count_below(&seg->oindex, rel_end));
	index_truncate(&seg->tindex, index_time_count_below(&seg->tindex, rel_end));
	/* Recompute cadence and max timestamp from the last kept entry. */
	p = segment_resume_at(seg, seg->oindex.count);
	for (int64_t n = 0; p < pos && n <= pos / BATCH_HEADER_BYTES; n++) {
		struct batch_header h;
		if (segment_read_header(seg, p, pos, &h) != SL_OK) {
			LOG_E(cfg->shard_id, "segment %s: bad batch header at %lld while truncating",
			      seg->name, (long long)p);
			return SL_ECORRUPT;
		}
		segment_track_batch(seg, p, &h, cfg->index_interval_bytes);
		p += (int64_t)batch_size_bytes(&h);
	}
	SL_ASSERT(seg->size == pos);
	seg->next_offset = new_next_offset;
	seg->size_reserved = pos;
	seg->log_dirty = 1;
	if (pos == 0)
		seg->roll_base_ms = -1;
	if (seg->state == SEGMENT_ACTIVE && cfg->preallocate &&
	    fallocate(seg->log_fd, 0, 0, (off_t)cfg->segment_bytes) == 0)
		seg->file_bytes = cfg->segment_bytes;
	return SL_OK;
}

void segment_unlink(struct segment *seg, int dirfd)
{
	static const char *const exts[] = { ".log", ".index", ".timeindex" };
	char name[SEGMENT_NAME_BYTES];

	for (size_t i = 0; i < SL_ARRAY_LEN(exts); i++) {
		segment_file_name(name, seg->base_offset, exts[i]);
		if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
			LOG_W(LOG_NO_SHARD, "segment %s: unlink %s: %s", seg->name, name,
			      strerror(errno));
	}
	seg->state = SEGMENT_DELETED;
}
