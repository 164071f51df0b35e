/*
 * plog_read.c — reads and lookups over the visible part of the partition
 * log: byte ranges for Fetch, timestamps for ListOffsets, a header scan for
 * start-up state rebuilds. Runs on the owner shard; reads only visible
 * bytes (segment `size`), never bytes of writes still in flight.
 *
 * Headers are read with pread (page cache). To keep a large read cheap the
 * offset index is used twice: once to find where the first batch is, once
 * to jump to the last indexed batch that still fits; only the batches after
 * that (about one index interval) have their headers read.
 */
#include "plog_internal.h"

#include "log.h"

/*
 * The batch holding `offset` (or the first after it) in segment i or a
 * later one. Sets *seg_idx, *pos, *h. SL_ENOTFOUND when none.
 */
static enum sl_err plog_locate(const struct plog *log, int64_t offset, uint32_t *seg_idx,
			       int64_t *pos, struct batch_header *h)
{
	int64_t i = plog_seg_find(log, offset);

	if (i < 0)
		i = 0;
	for (; i < log->seg_count; i++) {
		enum sl_err err = segment_locate(log->segs[i], offset, pos, h);
		if (err == SL_ENOTFOUND)
			continue;  /* offset past this segment's data: next one */
		if (err == SL_OK)
			*seg_idx = (uint32_t)i;
		return err;
	}
	return SL_ENOTFOUND;
}

/*
 * From the batch after the first one (at `p`), finds where the read ends:
 * jumps to the last indexed batch that starts within max_bytes and below
 * max_offset, then walks headers. Updates *len and *last.
 */
static enum sl_err plog_read_extend(const struct segment *seg, int64_t start_pos, int64_t p,
				    uint32_t max_bytes, int64_t max_offset, int64_t *len,
				    int64_t *last)
{
	const struct index *oi = &seg->oindex;
	int64_t limit = start_pos + (int64_t)max_bytes;
	struct batch_header h;
	enum sl_err err;

	if (oi->count > 0) {
		/* Entries are increasing in position and offset: both bounds are
		 * prefixes of the index. */
		uint32_t by_pos = 0, by_off;
		uint32_t lo = 0, hi = oi->count;
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo) / 2;
			int32_t rel, ipos;
			index_offset_get(oi, mid, &rel, &ipos);
			if ((int64_t)ipos <= limit)
				lo = mid + 1;
			else
				hi = mid;
		}
		by_pos = lo;
		by_off = max_offset - seg->base_offset > SEGMENT_REL_OFFSET_MAX
				 ? oi->count
				 : index_offset_count_below(oi, max_offset - seg->base_offset);
		uint32_t j = SL_MIN(by_pos, by_off);
		if (j > 0) {
			int32_t rel, ipos;
			index_offset_get(oi, j - 1, &rel, &ipos);
			if ((int64_t)ipos > p && (int64_t)ipos <= seg->size) {
				/* Whole batches in [p, ipos): all end before the
				 * indexed batch, whose last offset < max_offset. */
				err = segment_read_header(seg, ipos, seg->size, &h);
				if (err != SL_OK)
					return err == SL_EIO ? SL_EIO : SL_ECORRUPT;
				p = ipos;
				*len = p - start_pos;
				*last = h.base_offset - 1;
			}
		}
	}
	/* Each turn passes one batch of >= BATCH_HEADER_BYTES bytes. */
	for (int64_t n = 0; p < seg->size && n <= seg->size / BATCH_HEADER_BYTES; n++) {
		err = segment_read_header(seg, p, seg->size, &h);
		if (err != SL_OK)
			return err == SL_EIO ? SL_EIO : SL_ECORRUPT;
		int64_t size = (int64_t)batch_size_bytes(&h);
		if (batch_last_offset(&h) >= max_offset || *len + size > (int64_t)max_bytes)
			break;
		*len += size;
		*last = batch_last_offset(&h);
		p += size;
	}
	return SL_OK;
}

enum sl_err plog_read(struct plog *log, int64_t offset, uint32_t max_bytes, int64_t max_offset,
		      struct plog_slice *out)
{
	struct batch_header h;
	struct segment *seg;
	uint32_t si = 0;
	int64_t pos = 0, len, last;
	enum sl_err err;

	SL_ASSERT(log != NULL && out != NULL);
	out->fd = -1;
	out->file_pos = 0;
	out->len = 0;
	out->first_offset = offset;
	out->last_offset = -1;
	out->seg = NULL;
	/* Checked before any arithmetic on `offset`: it comes from the network
	 * and may be INT64_MIN. */
	if (offset < log->start_offset || offset > log->end_offset)
		return SL_ERANGE;
	out->last_offset = offset - 1;
	if (offset == log->end_offset || offset >= max_offset)
		return SL_OK;
	err = plog_locate(log, offset, &si, &pos, &h);
	if (err == SL_ENOTFOUND)
		return SL_OK;
	if (err != SL_OK)
		return err;
	seg = log->segs[si];
	if (batch_last_offset(&h) >= max_offset)
		return SL_OK;
	len = (int64_t)batch_size_bytes(&h);  /* KIP-74: the first batch, whatever its size */
	last = batch_last_offset(&h);
	err = plog_read_extend(seg, pos, pos + len, max_bytes, max_offset, &len, &last);
	if (err != SL_OK)
		return err;
	SL_ASSERT(len > 0 && pos + len <= seg->size && len <= UINT32_MAX);
	SL_ASSERT(last >= offset && last < max_offset);
	segment_ref(seg);
	out->fd = seg->log_fd;
	out->file_pos = pos;
	out->len = (uint32_t)len;
	out->first_offset = h.base_offset;
	out->last_offset = last;
	out->seg = seg;
	return SL_OK;
}

void plog_slice_release(struct plog_slice *s)
{
	if (s->seg != NULL)
		segment_unref(s->seg);
	s->seg = NULL;
	s->fd = -1;
	s->len = 0;
}

enum sl_err plog_timestamp_walk(struct plog *log, int64_t ts_ms, plog_ts_pick_fn *pick,
				int64_t *offset, int64_t *timestamp)
{
	SL_ASSERT(log != NULL && pick != NULL && offset != NULL && timestamp != NULL);
	for (uint32_t i = 0; i < log->seg_count; i++) {
		const struct segment *seg = log->segs[i];
		if (seg->max_timestamp < ts_ms || seg->next_offset <= log->start_offset)
			continue;
		int64_t p = segment_time_scan_start(seg, ts_ms);
		/* Each turn passes one batch of >= BATCH_HEADER_BYTES bytes. */
		for (int64_t n = 0; p < seg->size && n <= seg->size / BATCH_HEADER_BYTES; n++) {
			struct batch_header h;
			enum sl_err err = segment_read_header(seg, p, seg->size, &h);
			if (err != SL_OK)
				return err == SL_EIO ? SL_EIO : SL_ECORRUPT;
			if (h.max_timestamp >= ts_ms && batch_last_offset(&h) >= log->start_offset) {
				err = pick(log, seg, p, &h, ts_ms, offset, timestamp);
				if (err != SL_ENOTFOUND)
					return err;
			}
			p += (int64_t)batch_size_bytes(&h);
		}
	}
	return SL_ENOTFOUND;
}

/* Batch granularity: the qualifying batch's first offset and max timestamp. */
static enum sl_err plog_ts_pick_batch(const struct plog *log, const struct segment *seg,
				      int64_t pos, const struct batch_header *h, int64_t ts_ms,
				      int64_t *offset, int64_t *timestamp)
{
	(void)seg;
	(void)pos;
	(void)ts_ms;
	*offset = SL_MAX(h->base_offset, log->start_offset);
	*timestamp = h->max_timestamp;
	return SL_OK;
}

enum sl_err plog_offset_for_timestamp(struct plog *log, int64_t ts_ms, int64_t *offset,
				      int64_t *timestamp)
{
	return plog_timestamp_walk(log, ts_ms, plog_ts_pick_batch, offset, timestamp);
}

enum sl_err plog_max_timestamp(const struct plog *log, int64_t *timestamp, int64_t *offset)
{
	int64_t best = -1, best_off = -1;

	for (uint32_t i = 0; i < log->seg_count; i++) {
		const struct segment *seg = log->segs[i];
		if (seg->max_timestamp > best) {
			best = seg->max_timestamp;
			best_off = seg->max_timestamp_offset;
		}
	}
	if (best < 0)
		return SL_ENOTFOUND;
	*timestamp = best;
	*offset = best_off;
	return SL_OK;
}

enum sl_err plog_scan(struct plog *log, int64_t from_offset, uint32_t max_batches,
		      plog_scan_fn *cb, void *arg, int64_t *next_offset)
{
	struct batch_header h;
	uint32_t si = 0, done = 0;
	int64_t pos = 0;
	enum sl_err err;

	SL_ASSERT(log != NULL && cb != NULL && next_offset != NULL);
	*next_offset = from_offset;
	if (from_offset < log->start_offset || from_offset > log->end_offset)
		return SL_ERANGE;
	if (from_offset == log->end_offset || max_batches == 0)
		return SL_OK;
	err = plog_locate(log, from_offset, &si, &pos, &h);
	if (err == SL_ENOTFOUND)
		return SL_OK;
	if (err != SL_OK)
		return err;
	for (; si < log->seg_count; si++, pos = 0) {
		const struct segment *seg = log->segs[si];
		/* Each turn passes one batch; at most max_batches turns overall. */
		while (pos < seg->size && done < max_batches) {
			err = segment_read_header(seg, pos, seg->size, &h);
			if (err != SL_OK)
				return err == SL_EIO ? SL_EIO : SL_ECORRUPT;
			done++;
			*next_offset = batch_last_offset(&h) + 1;
			if (cb(arg, &h, seg->log_fd, pos) != 0)
				return SL_OK;
			pos += (int64_t)batch_size_bytes(&h);
		}
		if (done >= max_batches)
			break;
	}
	return SL_OK;
}
