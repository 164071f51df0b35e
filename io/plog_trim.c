/*
 * plog_trim.c — removing data from the partition log: truncation from the
 * end (replication), DeleteRecords and retention from the start. Runs on
 * the owner shard.
 *
 * Deleted segments are unlinked at once; a read slice or an fsync still
 * holding one keeps its fd open until it lets go (segment refs), so a
 * pending sendfile never reads a closed or reused fd.
 *
 * Truncation is made durable before it returns (fdatasync of the cut file,
 * checkpoint with the lowered recovery point, directory fsync): otherwise a
 * crash could bring the cut batches back, valid CRCs and all, and recovery
 * would resurrect records the replication protocol had removed.
 */
#include "plog_internal.h"

#include <errno.h>

#include "log.h"

static enum sl_err plog_trim_idle(const struct plog *log)
{
	if (log->closing)
		return SL_ECLOSED;
	if (log->failed)
		return SL_EIO;
	if (log->appends_pending > 0 || log->flush_ops_inflight > 0)
		return SL_EAGAIN;
	return SL_OK;
}

enum sl_err plog_truncate_to(struct plog *log, int64_t offset)
{
	struct batch_header h;
	struct segment *seg;
	int64_t i, pos, new_end;
	enum sl_err err;

	SL_ASSERT(log != NULL);
	err = plog_trim_idle(log);
	if (err != SL_OK)
		return err;
	if (offset < log->start_offset)
		return SL_ERANGE;
	if (offset >= log->end_offset)
		return SL_OK;
	i = plog_seg_find(log, offset);
	SL_ASSERT(i >= 0);
	seg = log->segs[i];
	err = segment_locate(seg, offset, &pos, &h);
	if (err == SL_ENOTFOUND) {
		pos = seg->size;               /* offset in a gap after this segment's data */
		new_end = seg->next_offset;
	} else if (err != SL_OK) {
		return err;
	} else {
		new_end = SL_MIN(h.base_offset, offset);
	}
	LOG_I(log->cfg.shard_id, "plog %s: truncating to offset %lld (asked %lld): %u later "
	      "segments deleted, segment %s cut at %lld", log->dir, (long long)new_end,
	      (long long)offset, (unsigned)(log->seg_count - (uint32_t)i - 1), seg->name,
	      (long long)pos);
	plog_segs_delete_from(log, (uint32_t)i + 1);
	err = segment_truncate(seg, pos, new_end, &log->scfg);
	if (err == SL_OK && seg->state != SEGMENT_ACTIVE)
		err = segment_activate(seg, &log->scfg);
	log->end_offset = new_end;
	log->next_offset = new_end;
	log->flushed_offset = SL_MIN(log->flushed_offset, new_end);
	log->flush_issued_offset = SL_MIN(log->flush_issued_offset, new_end);
	log->start_offset = SL_MIN(log->start_offset, new_end);
	if (err == SL_OK)
		err = plog_seg_sync_now(log, seg);
	if (err == SL_OK)
		err = plog_checkpoint_write(log, 0);  /* fsyncs the directory too */
	if (err != SL_OK) {
		plog_fail(log, "truncation", -EIO);
		return SL_EIO;
	}
	log->dir_dirty = 0;
	plog_check(log);
	SL_ASSERT(log->end_offset <= offset);
	return SL_OK;
}

enum sl_err plog_truncate_fully(struct plog *log, int64_t new_start_offset)
{
	enum sl_err err;

	SL_ASSERT(log != NULL);
	if (new_start_offset < 0)
		return SL_EINVAL;
	err = plog_trim_idle(log);
	if (err != SL_OK)
		return err;
	LOG_I(log->cfg.shard_id, "plog %s: truncating fully, new start offset %lld", log->dir,
	      (long long)new_start_offset);
	/* Unlink first: the new segment may reuse an old base offset's names. */
	plog_segs_delete_from(log, 0);
	err = plog_segs_push_new(log, new_start_offset);
	if (err != SL_OK) {
		/* No segment at all: nothing can be appended until reopened. */
		plog_fail(log, "creating the segment of a full truncation", -EIO);
		return SL_EIO;
	}
	log->start_offset = new_start_offset;
	log->end_offset = new_start_offset;
	log->next_offset = new_start_offset;
	log->flushed_offset = new_start_offset;
	log->flush_issued_offset = new_start_offset;
	if (plog_checkpoint_write(log, 0) != SL_OK) {
		plog_fail(log, "checkpoint after a full truncation", -EIO);
		return SL_EIO;
	}
	log->dir_dirty = 0;
	plog_check(log);
	return SL_OK;
}

/* Number of leading segments that may go: sealed, not active, below max_offset. */
static int plog_deletable(const struct plog *log, uint32_t i, int64_t max_offset)
{
	return i + 1 < log->seg_count && log->segs[i]->state == SEGMENT_SEALED &&
	       log->segs[i + 1]->base_offset <= max_offset;
}

enum sl_err plog_delete_before(struct plog *log, int64_t offset)
{
	uint32_t n = 0;

	SL_ASSERT(log != NULL);
	if (log->closing)
		return SL_ECLOSED;
	if (offset > log->end_offset)
		return SL_ERANGE;
	if (offset <= log->start_offset)
		return SL_OK;
	log->start_offset = offset;
	/* Bounded by seg_count. */
	while (plog_deletable(log, n, offset))
		n++;
	if (n > 0)
		plog_segs_delete_front(log, n);
	plog_check(log);
	SL_ASSERT(log->segs[0]->base_offset <= log->start_offset);
	return plog_checkpoint_write(log, 0);
}

/* Retention's idea of a segment's age: its largest timestamp, else its file time. */
static int64_t plog_seg_time(const struct segment *seg)
{
	return seg->max_timestamp >= 0 ? seg->max_timestamp : seg->created_ms;
}

enum sl_err plog_retention_enforce(struct plog *log, int64_t now_ms, int64_t max_offset,
				   uint32_t *deleted)
{
	uint32_t by_time = 0, by_size = 0, n;

	SL_ASSERT(log != NULL);
	if (deleted != NULL)
		*deleted = 0;
	if (log->closing)
		return SL_ECLOSED;
	log->now_ms = now_ms;
	if (log->cfg.retention_ms >= 0) {
		/* Bounded by seg_count. */
		while (plog_deletable(log, by_time, max_offset) &&
		       now_ms - plog_seg_time(log->segs[by_time]) > log->cfg.retention_ms)
			by_time++;
	}
	if (log->cfg.retention_bytes >= 0) {
		/* Deleting a prefix while what remains still exceeds the limit by
		 * at least the next segment: the same as Kafka's sequential
		 * time-then-size passes, since both delete a prefix. */
		int64_t excess = plog_size_bytes(log) - log->cfg.retention_bytes;
		while (plog_deletable(log, by_size, max_offset) &&
		       excess - segment_size(log->segs[by_size]) >= 0) {
			excess -= segment_size(log->segs[by_size]);
			by_size++;
		}
	}
	n = SL_MAX(by_time, by_size);
	if (n == 0)
		return SL_OK;
	LOG_I(log->cfg.shard_id, "plog %s: retention deletes %u segments (%u by time, %u by "
	      "size), new start offset %lld", log->dir, n, by_time, by_size,
	      (long long)SL_MAX(log->start_offset, log->segs[n]->base_offset));
	plog_segs_delete_front(log, n);
	log->start_offset = SL_MAX(log->start_offset, log->segs[0]->base_offset);
	if (deleted != NULL)
		*deleted = n;
	plog_check(log);
	return plog_checkpoint_write(log, 0);
}
