/*
 * compact.c — log compaction of a partition log's sealed segments (the
 * design, the keep rules and the crash-safe swap are in compact.h).
 *
 * Invariants:
 *   1. Only segments in state SEGMENT_SEALED before the first other one are
 *      read or replaced; the segment list keeps its length and order (a
 *      replaced segment has the same base offset).
 *   2. map_end is in (clean_offset, first uncleanable offset]: every keyed
 *      record at an offset in [clean_offset, map_end) is in the map with its
 *      key's latest offset below map_end. Records at offsets >= map_end are
 *      always kept.
 *   3. The name `<base>.log` always holds a whole valid segment; the
 *      commit point of a swap is the rename to `<base>.log.swap`.
 *   4. compact.checkpoint's clean_offset moves only after every segment
 *      below map_end was processed.
 */
#include "compact.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "bytes.h"
#include "checkpoint.h"
#include "compress.h"
#include "crc32c.h"
#include "log.h"
#include "plog_internal.h"
#include "segment.h"

#define COMPACT_CHUNK_BYTES (1u << 20)            /* read buffer, grows for a bigger batch */
#define COMPACT_WRITE_BYTES (1u << 20)            /* output buffer */
#define COMPACT_RECORDS_BYTES_MAX (256u << 20)    /* decompressed records of one batch */
#define COMPACT_RECOVER_ENTRIES_MAX (1u << 22)
#define COMPACT_NAME_BYTES (SEGMENT_NAME_BYTES + 16)
#define COMPACT_BATCH_LENGTH_EMPTY (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD)

/* ---- key map: open addressing over 128-bit key hashes ---- */

struct compact_slot {
	uint64_t h0;
	uint64_t h1;
	int64_t offset;         /* -1: empty */
};

struct compact_map {
	struct compact_slot *slots;
	uint64_t mask;          /* slot count - 1 (a power of two) */
	uint64_t used;
	uint64_t limit;         /* 90% of the slots */
};

static uint64_t compact_rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t compact_fmix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static uint64_t compact_mix(uint64_t k)
{
	k *= 0x87c37b91114253d5ULL;
	k = compact_rotl(k, 31);
	return k * 0x4cf5ad432745937fULL;
}

/* One 64-bit hash of n bytes; two seeds give the map's 128-bit key. */
static uint64_t compact_hash64(const uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
	uint64_t k = 0;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&k, p + i, 8);
		h ^= compact_mix(k);
		h = compact_rotl(h, 27) * 5 + 0x52dce729;
	}
	k = 0;
	for (size_t j = 0; i + j < n; j++)
		k |= (uint64_t)p[i + j] << (8 * j);
	h ^= compact_mix(k);
	return compact_fmix(h ^ (uint64_t)n);
}

static void compact_key_hash(const uint8_t *key, int32_t len, uint64_t *h0, uint64_t *h1)
{
	SL_ASSERT(key != NULL && len >= 0);
	*h0 = compact_hash64(key, (size_t)len, 0x243f6a8885a308d3ULL);
	*h1 = compact_hash64(key, (size_t)len, 0x13198a2e03707344ULL);
}

static enum sl_err compact_map_init(struct compact_map *m, size_t bytes)
{
	uint64_t n = 1;

	SL_ASSERT(bytes >= COMPACT_MAP_BYTES_MIN);
	while (n * 2 * sizeof(struct compact_slot) <= bytes && n < (1ULL << 40))
		n *= 2;
	m->slots = malloc(n * sizeof(struct compact_slot));
	if (m->slots == NULL)
		return SL_ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		m->slots[i].offset = -1;
	m->mask = n - 1;
	m->used = 0;
	m->limit = n - n / 10;
	SL_ASSERT(m->limit >= 1 && m->limit < n);
	return SL_OK;
}

/* Slot of the key, or the empty slot where it would go (the map never fills). */
static struct compact_slot *compact_map_slot(struct compact_map *m, uint64_t h0, uint64_t h1)
{
	uint64_t i = h0 & m->mask;

	for (uint64_t n = 0; n <= m->mask; n++) {
		struct compact_slot *s = &m->slots[(i + n) & m->mask];
		if (s->offset < 0 || (s->h0 == h0 && s->h1 == h1))
			return s;
	}
	SL_ASSERT(!"compact map has no empty slot");
	return NULL;
}

/* Records `offset` as the key's latest. 1 when a new key does not fit. */
static int compact_map_put(struct compact_map *m, uint64_t h0, uint64_t h1, int64_t offset)
{
	struct compact_slot *s = compact_map_slot(m, h0, h1);

	if (s->offset < 0) {
		if (m->used >= m->limit)
			return 1;
		m->used++;
		s->h0 = h0;
		s->h1 = h1;
	}
	/* Offsets only grow in a sound log; keep the largest seen regardless. */
	if (offset > s->offset)
		s->offset = offset;
	return 0;
}

static int64_t compact_map_get(struct compact_map *m, uint64_t h0, uint64_t h1)
{
	return compact_map_slot(m, h0, h1)->offset;
}

/* ---- buffered segment reader ---- */

struct compact_reader {
	int fd;
	int64_t limit;          /* visible bytes of the segment */
	int64_t bpos;           /* file position of buf[0] */
	size_t blen;
	uint8_t *buf;
	size_t cap;
};

static enum sl_err compact_grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (*cap >= need)
		return SL_OK;
	uint8_t *nb = realloc(*buf, need);
	if (nb == NULL)
		return SL_ENOMEM;
	*buf = nb;
	*cap = need;
	return SL_OK;
}

/* Points *out at the n bytes at pos (pos + n <= limit), reading as needed. */
static enum sl_err compact_reader_get(struct compact_reader *r, int64_t pos, size_t n,
				      const uint8_t **out)
{
	enum sl_err err;

	SL_ASSERT(pos >= 0 && pos + (int64_t)n <= r->limit);
	if (pos >= r->bpos && pos + (int64_t)n <= r->bpos + (int64_t)r->blen) {
		*out = r->buf + (pos - r->bpos);
		return SL_OK;
	}
	err = compact_grow(&r->buf, &r->cap, SL_MAX(n, (size_t)COMPACT_CHUNK_BYTES));
	if (err != SL_OK)
		return err;
	size_t want = (size_t)SL_MIN((int64_t)r->cap, r->limit - pos);
	size_t got = 0;
	for (uint32_t tries = 0; got < want && tries < 1000; tries++) {
		ssize_t k = pread(r->fd, r->buf + got, want - got, pos + (int64_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	r->bpos = pos;
	r->blen = got;
	if (got < n)
		return SL_EIO;
	*out = r->buf;
	return SL_OK;
}

/* The whole batch at pos: header parsed into h. SL_ECORRUPT / SL_EIO. */
static enum sl_err compact_reader_batch(struct compact_reader *r, int64_t pos,
					enum batch_check checks, const uint8_t **batch,
					struct batch_header *h)
{
	const uint8_t *p;
	enum sl_err err;

	if (r->limit - pos < BATCH_HEADER_BYTES)
		return SL_ECORRUPT;
	err = compact_reader_get(r, pos, BATCH_HEADER_BYTES, &p);
	if (err != SL_OK)
		return err;
	int64_t size = (int64_t)BATCH_LOG_OVERHEAD + (int32_t)be32_load(p + BATCH_OFF_LENGTH);
	if (size < BATCH_HEADER_BYTES || size > r->limit - pos)
		return SL_ECORRUPT;
	err = compact_reader_get(r, pos, (size_t)size, &p);
	if (err != SL_OK)
		return err;
	err = checks != 0 ? batch_validate(p, (size_t)size, checks, h)
			  : batch_header_parse(p, (size_t)size, h);
	if (err != SL_OK)
		return SL_ECORRUPT;
	*batch = p;
	return SL_OK;
}

/* ---- one call's state ---- */

struct compact_run {
	struct plog *log;
	const struct compact_config *cfg;
	struct compact_stats *st;
	int64_t now_ms;
	int64_t clean_offset;
	int64_t map_end;
	struct compact_map map;
	struct compact_reader rd;
	uint8_t *dbuf;          /* decompressed records */
	size_t dcap;
	uint8_t *kbuf;          /* kept records of a compressed batch */
	size_t kcap;
	uint8_t *obuf;          /* one output batch */
	size_t ocap;
	uint8_t *wbuf;          /* output file buffer */
	size_t wlen;
	int64_t wpos;
	int wfd;
};

/* The records of batch (header h): in place or decompressed into run->dbuf. */
static enum sl_err compact_records(struct compact_run *run, const uint8_t *batch,
				   const struct batch_header *h, const uint8_t **recs, size_t *len)
{
	enum sl_err err = SL_ENOMEM;
	size_t cap = SL_MAX((size_t)COMPACT_CHUNK_BYTES, batch_size_bytes(h) * 4);

	for (uint32_t tries = 0; tries < 16 && cap <= COMPACT_RECORDS_BYTES_MAX; tries++) {
		if (compact_grow(&run->dbuf, &run->dcap, cap) != SL_OK)
			return SL_ENOMEM;
		err = compress_batch_records(batch, h, run->dbuf, run->dcap, recs, len);
		if (err != SL_ENOMEM)
			break;
		cap *= 2;
	}
	if (err == SL_ENOMEM || err == SL_EINVAL)
		err = SL_ECORRUPT;
	return err;
}

static int compact_sealed_count(const struct plog *log)
{
	uint32_t n = 0;

	while (n + 1 < log->seg_count && log->segs[n]->state == SEGMENT_SEALED)
		n++;
	return (int)n;
}

static enum sl_err compact_clean_offset_read(struct plog *log, int64_t *out)
{
	struct checkpoint_entry e = { .key = "clean_offset" };
	enum sl_err err = checkpoint_read(log->dirfd, COMPACT_CHECKPOINT_NAME, &e, 1);

	if (err == SL_ENOTFOUND || (err == SL_OK && !e.found)) {
		*out = log->start_offset;
		return SL_OK;
	}
	if (err != SL_OK) {
		LOG_E(log->cfg.shard_id, "compact %s: cannot read %s: %s", log->dir,
		      COMPACT_CHECKPOINT_NAME, sl_err_str(err));
		return err;
	}
	*out = SL_MAX(e.value, log->start_offset);
	return SL_OK;
}

/* ---- pass 1 ---- */

/*
 * Adds the keyed records of [clean_offset, uncleanable) to the map; sets
 * run->map_end where it stopped (map full, or max_dirty_bytes scanned).
 */
static enum sl_err compact_pass1(struct compact_run *run, int nsealed)
{
	struct plog *log = run->log;
	int64_t uncleanable = log->segs[nsealed]->base_offset;
	int64_t budget = run->cfg->max_dirty_bytes;
	enum sl_err err = SL_OK;

	run->map_end = uncleanable;
	for (int i = 0; i < nsealed; i++) {
		struct segment *seg = log->segs[i];
		if (seg->next_offset <= run->clean_offset)
			continue;
		run->rd = (struct compact_reader){ .fd = seg->log_fd, .limit = seg->size,
						   .buf = run->rd.buf, .cap = run->rd.cap };
		int64_t pos = 0;
		for (int64_t n = 0; pos < seg->size && n <= seg->size; n++) {
			struct batch_header h;
			const uint8_t *batch, *recs;
			size_t rlen;
			struct batch_record_iter it;
			struct batch_record r;

			err = compact_reader_batch(&run->rd, pos, 0, &batch, &h);
			if (err != SL_OK)
				goto corrupt;
			pos += (int64_t)batch_size_bytes(&h);
			if (batch_last_offset(&h) < run->clean_offset ||
			    (h.attributes & BATCH_ATTR_CONTROL) || h.records_count == 0)
				continue;
			if (budget > 0 && run->st->bytes_scanned > 0 &&
			    (int64_t)(run->st->bytes_scanned + batch_size_bytes(&h)) > budget) {
				run->map_end = h.base_offset;
				return SL_OK;
			}
			run->st->bytes_scanned += batch_size_bytes(&h);
			err = compact_records(run, batch, &h, &recs, &rlen);
			if (err != SL_OK)
				goto corrupt;
			batch_record_iter_init(&it, recs, rlen, h.records_count);
			while ((err = batch_record_next(&it, &r)) == SL_OK) {
				int64_t off = h.base_offset + r.offset_delta;
				uint64_t h0, h1;
				if (r.key == NULL || off < run->clean_offset)
					continue;
				compact_key_hash(r.key, r.key_len, &h0, &h1);
				if (compact_map_put(&run->map, h0, h1, off)) {
					run->map_end = off;
					run->st->map_full = 1;
					return SL_OK;
				}
			}
			if (err != SL_ENOTFOUND)
				goto corrupt;
			err = SL_OK;
		}
		continue;
corrupt:
		LOG_E(log->cfg.shard_id, "compact %s: segment %s: bad batch before position %lld: %s",
		      log->dir, seg->name, (long long)pos, sl_err_str(err));
		return err == SL_ENOMEM ? err : (err == SL_EIO ? SL_EIO : SL_ECORRUPT);
	}
	return SL_OK;
}

/* ---- pass 2 ---- */

/* pwrite of all n bytes at pos. SL_EIO. */
static enum sl_err compact_pwrite_all(int fd, const uint8_t *p, size_t n, int64_t pos)
{
	size_t done = 0;

	for (uint32_t tries = 0; done < n && tries < 1000; tries++) {
		ssize_t k = pwrite(fd, p + done, n - done, pos + (int64_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		done += (size_t)k;
	}
	return done == n ? SL_OK : SL_EIO;
}

static enum sl_err compact_write_flush(struct compact_run *run)
{
	enum sl_err err = compact_pwrite_all(run->wfd, run->wbuf, run->wlen, run->wpos);

	if (err != SL_OK)
		return err;
	run->wpos += (int64_t)run->wlen;
	run->wlen = 0;
	return SL_OK;
}

static enum sl_err compact_write(struct compact_run *run, const uint8_t *p, size_t n)
{
	enum sl_err err;

	if (run->wlen + n > COMPACT_WRITE_BYTES) {
		err = compact_write_flush(run);
		if (err != SL_OK)
			return err;
	}
	if (n > COMPACT_WRITE_BYTES) {
		err = compact_pwrite_all(run->wfd, p, n, run->wpos);
		if (err == SL_OK)
			run->wpos += (int64_t)n;
		return err;
	}
	memcpy(run->wbuf + run->wlen, p, n);
	run->wlen += n;
	return SL_OK;
}

/* Finishes the header of the batch in run->obuf (payload_len record bytes). */
static size_t compact_batch_finish(struct compact_run *run, int32_t count, int32_t last_delta,
				   int64_t max_ts, size_t payload_len, int16_t attributes)
{
	uint8_t *b = run->obuf;
	size_t size = BATCH_HEADER_BYTES + payload_len;

	be32_store(b + BATCH_OFF_LENGTH, (uint32_t)(size - BATCH_LOG_OVERHEAD));
	be16_store(b + BATCH_OFF_ATTRIBUTES, (uint16_t)attributes);
	be32_store(b + BATCH_OFF_LAST_OFFSET_DELTA, (uint32_t)last_delta);
	be64_store(b + BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
	be32_store(b + BATCH_OFF_RECORDS_COUNT, (uint32_t)count);
	be32_store(b + BATCH_OFF_CRC, crc32c(0, b + BATCH_OFF_ATTRIBUTES,
					     size - BATCH_OFF_ATTRIBUTES));
	return size;
}

/* Whether a record at `off` (key, tombstone) of a batch with max ts stays. */
static int compact_keep(struct compact_run *run, const struct batch_record *r, int64_t off,
			int64_t batch_max_ts)
{
	uint64_t h0, h1;

	if (r->key == NULL || off >= run->map_end)
		return 1;
	compact_key_hash(r->key, r->key_len, &h0, &h1);
	int64_t latest = compact_map_get(&run->map, h0, h1);
	if (latest >= 0 && off < latest)
		return 0;
	if (r->value == NULL && batch_max_ts + run->cfg->delete_retention_ms <= run->now_ms) {
		run->st->tombstones_removed++;
		return 0;
	}
	return 1;
}

/*
 * Filters one batch into the output: copied as is when every record stays,
 * rebuilt with the kept records otherwise, an empty header when none stays
 * and it is the segment's last batch, nothing else.
 */
static enum sl_err compact_batch(struct compact_run *run, const uint8_t *batch,
				 const struct batch_header *h, int last_in_segment)
{
	int codec = h->attributes & BATCH_ATTR_COMPRESSION_MASK;
	size_t size = batch_size_bytes(h);
	const uint8_t *recs;
	size_t rlen, klen = 0, out;
	struct batch_record_iter it;
	struct batch_record r;
	int32_t kept = 0;
	int64_t max_ts = -1;
	enum sl_err err;

	if ((h->attributes & BATCH_ATTR_CONTROL) || h->records_count == 0)
		return compact_write(run, batch, size);
	err = compact_records(run, batch, h, &recs, &rlen);
	if (err != SL_OK)
		return err;
	if (compact_grow(&run->kbuf, &run->kcap, rlen + 1) != SL_OK ||
	    compact_grow(&run->obuf, &run->ocap,
			 BATCH_HEADER_BYTES + SL_MAX(rlen, compress_bound(codec, rlen)) + 1) != SL_OK)
		return SL_ENOMEM;
	uint8_t *kdst = codec == BATCH_COMPRESSION_NONE ? run->obuf + BATCH_HEADER_BYTES : run->kbuf;
	batch_record_iter_init(&it, recs, rlen, h->records_count);
	for (;;) {
		const uint8_t *start = it.pos;
		err = batch_record_next(&it, &r);
		if (err != SL_OK)
			break;
		run->st->records_read++;
		if (!compact_keep(run, &r, h->base_offset + r.offset_delta, h->max_timestamp)) {
			run->st->records_removed++;
			continue;
		}
		memcpy(kdst + klen, start, r.size_bytes);
		klen += r.size_bytes;
		kept++;
		max_ts = SL_MAX(max_ts, h->base_timestamp + r.timestamp_delta);
	}
	if (err != SL_ENOTFOUND)
		return SL_ECORRUPT;
	if (kept == h->records_count)
		return compact_write(run, batch, size);
	if (kept == 0 && !last_in_segment) {
		run->st->batches_removed++;
		return SL_OK;
	}
	memcpy(run->obuf, batch, BATCH_HEADER_BYTES);
	if (h->attributes & BATCH_ATTR_TIMESTAMP_LOG_APPEND || kept == 0)
		max_ts = h->max_timestamp;
	if (kept == 0) {
		out = compact_batch_finish(run, 0, h->last_offset_delta, max_ts, 0,
					   (int16_t)(h->attributes & ~BATCH_ATTR_COMPRESSION_MASK));
	} else if (codec == BATCH_COMPRESSION_NONE) {
		out = compact_batch_finish(run, kept, h->last_offset_delta, max_ts, klen,
					   h->attributes);
	} else {
		size_t clen;
		err = compress_encode((enum batch_compression)codec, run->kbuf, klen,
				      run->obuf + BATCH_HEADER_BYTES,
				      run->ocap - BATCH_HEADER_BYTES, &clen);
		if (err != SL_OK)
			return err == SL_EINVAL ? SL_ECORRUPT : err;
		out = compact_batch_finish(run, kept, h->last_offset_delta, max_ts, clen,
					   h->attributes);
	}
	/* Insurance before anything reaches the disk: the rebuilt batch must pass
	 * the checks a read or a recovery applies. */
	struct batch_header nh;
	if (batch_validate(run->obuf, out, BATCH_CHECK_ALL, &nh) != SL_OK) {
		SL_ASSERT(!"compaction built an invalid batch");
		return SL_ECORRUPT;
	}
	return compact_write(run, run->obuf, out);
}

static int compact_fsync_dir(struct plog *log)
{
	return fsync(log->dirfd) == 0 ? 0 : -errno;
}

/*
 * Steps 2-5 of the swap (compact.h) for segs[idx] whose `.log.cleaned` is
 * written and synced.
 */
static enum sl_err compact_swap(struct compact_run *run, uint32_t idx)
{
	struct plog *log = run->log;
	struct segment *old = log->segs[idx];
	struct segment *nseg = NULL;
	struct segment_load_report rep = { 0 };
	char cleaned[COMPACT_NAME_BYTES], swap[COMPACT_NAME_BYTES], name[SEGMENT_NAME_BYTES];
	enum sl_err err;
	int rc = 0;
	const char *what = "rename .cleaned";

	segment_file_name(name, old->base_offset, ".log");
	snprintf(cleaned, sizeof(cleaned), "%s.cleaned", name);
	snprintf(swap, sizeof(swap), "%s.swap", name);
	if (renameat(log->dirfd, cleaned, log->dirfd, swap) != 0) {
		rc = -errno;
		(void)unlinkat(log->dirfd, cleaned, 0);
		goto cleanup;
	}
	what = "fsync dir";
	rc = compact_fsync_dir(log);
	if (rc != 0)
		goto cleanup;
	segment_file_name(name, old->base_offset, ".index");
	(void)unlinkat(log->dirfd, name, 0);
	segment_file_name(name, old->base_offset, ".timeindex");
	(void)unlinkat(log->dirfd, name, 0);
	segment_file_name(name, old->base_offset, ".log");
	what = "rename .swap";
	if (renameat(log->dirfd, swap, log->dirfd, name) != 0) {
		rc = -errno;
		goto cleanup;
	}
	what = "fsync dir";
	rc = compact_fsync_dir(log);
	if (rc != 0)
		goto cleanup;
	err = segment_load(&nseg, log->dirfd, old->base_offset, &log->scfg, SEGMENT_LOAD_RECOVER,
			   old->base_offset, &rep);
	if (err != SL_OK) {
		LOG_E(log->cfg.shard_id, "compact %s: loading compacted segment %s: %s", log->dir,
		      old->name, sl_err_str(err));
		return err;
	}
	if (rep.bytes_truncated != 0 || nseg->next_offset > old->next_offset) {
		LOG_E(log->cfg.shard_id, "compact %s: compacted segment %s does not match (cut %lld)",
		      log->dir, old->name, (long long)rep.bytes_truncated);
		segment_unref(nseg);
		return SL_ECORRUPT;
	}
	err = segment_seal(nseg);
	if (err == SL_OK)
		err = plog_seg_sync_now(log, nseg);
	if (err != SL_OK) {
		segment_unref(nseg);
		return err;
	}
	/* The old segment's names now belong to the new files: no unlink, just
	 * drop the log's reference (read slices keep the old fd alive). */
	log->segs[idx] = nseg;
	old->state = SEGMENT_DELETED;
	segment_unref(old);
	return SL_OK;

cleanup:
	LOG_E(log->cfg.shard_id, "compact %s: segment %s: %s: %s", log->dir, old->name, what,
	      strerror(-rc));
	return SL_EIO;
}

/* Rewrites segs[idx] into `<base>.log.cleaned` and swaps it in if it shrank. */
static enum sl_err compact_segment(struct compact_run *run, uint32_t idx)
{
	struct plog *log = run->log;
	struct segment *seg = log->segs[idx];
	char cleaned[COMPACT_NAME_BYTES], name[SEGMENT_NAME_BYTES];
	enum sl_err err = SL_OK;
	int64_t pos = 0;

	segment_file_name(name, seg->base_offset, ".log");
	snprintf(cleaned, sizeof(cleaned), "%s.cleaned", name);
	run->wfd = openat(log->dirfd, cleaned, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (run->wfd < 0) {
		LOG_E(log->cfg.shard_id, "compact %s: create %s: %s", log->dir, cleaned,
		      strerror(errno));
		return SL_EIO;
	}
	run->wlen = 0;
	run->wpos = 0;
	run->rd = (struct compact_reader){ .fd = seg->log_fd, .limit = seg->size,
					   .buf = run->rd.buf, .cap = run->rd.cap };
	for (int64_t n = 0; pos < seg->size && n <= seg->size; n++) {
		struct batch_header h;
		const uint8_t *batch;
		err = compact_reader_batch(&run->rd, pos, BATCH_CHECK_CRC, &batch, &h);
		if (err != SL_OK)
			break;
		pos += (int64_t)batch_size_bytes(&h);
		err = compact_batch(run, batch, &h, pos == seg->size);
		if (err != SL_OK)
			break;
	}
	if (err == SL_OK)
		err = compact_write_flush(run);
	if (err == SL_OK && fdatasync(run->wfd) != 0)
		err = SL_EIO;
	close(run->wfd);
	run->wfd = -1;
	if (err != SL_OK) {
		LOG_E(log->cfg.shard_id, "compact %s: segment %s at position %lld: %s", log->dir,
		      seg->name, (long long)pos, sl_err_str(err));
		(void)unlinkat(log->dirfd, cleaned, 0);
		return err;
	}
	run->st->bytes_before += (uint64_t)seg->size;
	if (run->wpos == seg->size) {
		(void)unlinkat(log->dirfd, cleaned, 0);
		run->st->segments_unchanged++;
		run->st->bytes_after += (uint64_t)seg->size;
		return SL_OK;
	}
	SL_ASSERT(run->wpos < seg->size);
	run->st->bytes_after += (uint64_t)run->wpos;
	err = compact_swap(run, idx);
	if (err == SL_OK)
		run->st->segments_rewritten++;
	return err;
}

/* ---- public ---- */

void compact_config_default(struct compact_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->delete_retention_ms = COMPACT_DELETE_RETENTION_MS_DEFAULT;
	cfg->map_bytes = COMPACT_MAP_BYTES_DEFAULT;
	cfg->max_dirty_bytes = 0;
	cfg->shard_id = LOG_NO_SHARD;
}

enum sl_err plog_compact(struct plog *log, int64_t now_ms, const struct compact_config *cfg,
			 struct compact_stats *st)
{
	struct compact_run run = { .log = log, .cfg = cfg, .st = st, .now_ms = now_ms, .wfd = -1 };
	enum sl_err err;
	int nsealed;

	memset(st, 0, sizeof(*st));
	if (cfg->delete_retention_ms < 0 || cfg->map_bytes < COMPACT_MAP_BYTES_MIN)
		return SL_EINVAL;
	if (log->failed || log->closing)
		return SL_ECLOSED;
	err = compact_clean_offset_read(log, &run.clean_offset);
	if (err != SL_OK)
		return err;
	nsealed = compact_sealed_count(log);
	st->clean_offset_before = run.clean_offset;
	st->clean_offset_after = run.clean_offset;
	if (nsealed == 0 || run.clean_offset >= log->segs[nsealed]->base_offset)
		return SL_OK;
	err = compact_map_init(&run.map, cfg->map_bytes);
	if (err != SL_OK)
		return err;
	run.wbuf = malloc(COMPACT_WRITE_BYTES);
	if (run.wbuf == NULL) {
		err = SL_ENOMEM;
		goto cleanup;
	}
	err = compact_pass1(&run, nsealed);
	if (err != SL_OK)
		goto cleanup;
	SL_ASSERT(run.map_end > run.clean_offset &&
		  run.map_end <= log->segs[nsealed]->base_offset);
	for (int i = 0; i < nsealed && log->segs[i]->base_offset < run.map_end; i++) {
		err = compact_segment(&run, (uint32_t)i);
		if (err != SL_OK)
			goto cleanup;
	}
	struct checkpoint_entry e = { .key = "clean_offset", .value = run.map_end };
	err = checkpoint_write(log->dirfd, COMPACT_CHECKPOINT_NAME, &e, 1);
	if (err != SL_OK)
		goto cleanup;
	st->clean_offset_after = run.map_end;
	st->more = run.map_end < log->segs[nsealed]->base_offset;
	LOG_I(log->cfg.shard_id,
	      "compact %s: [.., %lld) %llu -> %llu bytes, %llu of %llu records removed "
	      "(%llu tombstones), %u segments rewritten%s", log->dir, (long long)run.map_end,
	      (unsigned long long)st->bytes_before, (unsigned long long)st->bytes_after,
	      (unsigned long long)st->records_removed, (unsigned long long)st->records_read,
	      (unsigned long long)st->tombstones_removed, st->segments_rewritten,
	      st->more ? ", more to do" : "");

cleanup:
	free(run.wbuf);
	free(run.obuf);
	free(run.kbuf);
	free(run.dbuf);
	free(run.rd.buf);
	free(run.map.slots);
	return err;
}

enum sl_err plog_compact_dirty(struct plog *log, struct compact_dirty *out)
{
	int nsealed = compact_sealed_count(log);
	enum sl_err err;

	memset(out, 0, sizeof(*out));
	err = compact_clean_offset_read(log, &out->clean_offset);
	if (err != SL_OK)
		return err;
	for (int i = 0; i < nsealed; i++) {
		const struct segment *seg = log->segs[i];
		if (seg->next_offset <= out->clean_offset)
			out->clean_bytes += seg->size;
		else
			out->dirty_bytes += seg->size;
	}
	if (out->clean_bytes + out->dirty_bytes > 0)
		out->ratio = (double)out->dirty_bytes /
			     (double)(out->clean_bytes + out->dirty_bytes);
	return SL_OK;
}

/* "<20 digits><ext>" -> base; 0 when the name is something else. */
static int compact_parse_name(const char *name, const char *ext, char *base_out)
{
	size_t n = strlen(name), e = strlen(ext);

	if (n != 20 + e || strcmp(name + 20, ext) != 0)
		return 0;
	for (size_t i = 0; i < 20; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	memcpy(base_out, name, 20);
	base_out[20] = '\0';
	return 1;
}

enum sl_err compact_recover(const char *dir, int shard_id)
{
	static const char *const drop[] = { ".log.cleaned", ".index.cleaned",
					    ".timeindex.cleaned", ".index.swap",
					    ".timeindex.swap" };
	char base[24], name[COMPACT_NAME_BYTES];
	struct dirent *de;
	enum sl_err err = SL_OK;
	int changed = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (dfd < 0)
		return errno == ENOENT ? SL_OK : SL_EIO;
	int fd2 = dup(dfd);
	d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (d == NULL) {
		if (fd2 >= 0)
			close(fd2);
		close(dfd);
		return SL_EIO;
	}
	for (uint32_t n = 0; n < COMPACT_RECOVER_ENTRIES_MAX && (de = readdir(d)) != NULL; n++) {
		for (size_t i = 0; i < SL_ARRAY_LEN(drop); i++) {
			if (!compact_parse_name(de->d_name, drop[i], base))
				continue;
			(void)unlinkat(dfd, de->d_name, 0);
			LOG_W(shard_id, "compact %s: removed unfinished %s", dir, de->d_name);
			changed = 1;
		}
		if (!compact_parse_name(de->d_name, ".log.swap", base))
			continue;
		/* Past the commit point: finish the swap (compact.h steps 3-4). */
		snprintf(name, sizeof(name), "%s.index", base);
		(void)unlinkat(dfd, name, 0);
		snprintf(name, sizeof(name), "%s.timeindex", base);
		(void)unlinkat(dfd, name, 0);
		snprintf(name, sizeof(name), "%s.log", base);
		if (renameat(dfd, de->d_name, dfd, name) != 0) {
			LOG_E(shard_id, "compact %s: completing swap of %s: %s", dir, name,
			      strerror(errno));
			err = SL_EIO;
		} else {
			LOG_W(shard_id, "compact %s: completed interrupted swap of %s", dir, name);
		}
		changed = 1;
	}
	if (changed && fsync(dfd) != 0)
		err = SL_EIO;
	closedir(d);
	close(dfd);
	return err;
}
