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
 *   5. A job names segments by base offset and holds a reference on each
 *      one it reads; before touching one it checks that the listed segment
 *      with that base is still the same object (retention may delete it
 *      between steps), and that `guard` is still listed (else truncation).
 *   6. A job owns at most one temporary name at a time (`name`); freeing
 *      it unlinks that name, so a cancel leaves only whole `<base>.log`s.
 *   7. While sync_inflight > 0 nothing but the completion touches the job.
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
	int64_t off1;           /* the key's latest offset + 1; 0: empty (calloc) */
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
	/* calloc: large maps come zeroed from mmap, so starting a job does not
	 * touch every slot (empty = off1 0). */
	m->slots = calloc(n, sizeof(struct compact_slot));
	if (m->slots == NULL)
		return SL_ENOMEM;
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
		if (s->off1 == 0 || (s->h0 == h0 && s->h1 == h1))
			return s;
	}
	SL_ASSERT(!"compact map has no empty slot");
	return NULL;
}

/* Records `offset` as the key's latest. 1 when a new key does not fit. */
static int compact_map_put(struct compact_map *m, uint64_t h0, uint64_t h1, int64_t offset)
{
	struct compact_slot *s = compact_map_slot(m, h0, h1);

	if (s->off1 == 0) {
		if (m->used >= m->limit)
			return 1;
		m->used++;
		s->h0 = h0;
		s->h1 = h1;
	}
	/* Offsets only grow in a sound log; keep the largest seen regardless. */
	if (offset + 1 > s->off1)
		s->off1 = offset + 1;
	return 0;
}

static int64_t compact_map_get(struct compact_map *m, uint64_t h0, uint64_t h1)
{
	return compact_map_slot(m, h0, h1)->off1 - 1;
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

/* ---- the job: one compaction as a resumable state machine ---- */

/*
 * Job states, in order (compact.h "Incremental jobs"). A state that ends with
 * an fsync hands it to cj_sync, which moves to the next state at once
 * (blocking mode) or when every fsync completed (ring mode).
 */
enum compact_jstate {
	CJ_PASS1 = 0,           /* scanning segment `seg` from `pos` into the map */
	CJ_OPEN,                /* pick the next segment below map_end, create .cleaned */
	CJ_REWRITE,             /* copying `seg` from `pos` into .cleaned */
	CJ_CLEANED_SYNCED,      /* .cleaned durable: discard it, or commit (.swap) */
	CJ_COMMITTED,           /* .swap durable: swap it in, load the new segment */
	CJ_SWAPPED,             /* the new segment and the directory are durable */
	CJ_CKPT,                /* write compact.checkpoint.tmp */
	CJ_CKPT_SYNCED,         /* rename it over compact.checkpoint */
	CJ_DONE,
};

/* Which temporary name the job owns now (unlinked by a cancel). */
enum compact_jname {
	CJ_NAME_NONE = 0,
	CJ_NAME_CLEANED,        /* <seg_base>.log.cleaned */
	CJ_NAME_SWAP,           /* <seg_base>.log.swap */
	CJ_NAME_CKPT_TMP,       /* compact.checkpoint.tmp */
};

#define CJ_SYNC_MAX 3
#define CJ_CKPT_TMP_NAME COMPACT_CHECKPOINT_NAME ".tmp"

struct compact_sync_op {
	struct ring_op op;      /* first member: the ring hands us this pointer */
	struct compact_job *job;
};

struct compact_job {
	struct plog *log;
	const struct compact_config *cfg;  /* = &cfg_copy */
	struct compact_config cfg_copy;
	struct compact_stats *st;          /* = &stats */
	struct compact_stats stats;
	int64_t now_ms;
	int64_t clean_offset;
	int64_t map_end;
	int64_t uncleanable;    /* base of `guard` */
	struct segment *guard;  /* ref: first segment not SEALED when the job began */
	struct segment *seg;    /* ref: segment being read (NULL between segments) */
	int64_t seg_base;       /* base of seg, or of the last one done (-1: none yet) */
	int64_t pos;            /* next batch position in seg */
	struct segment *nseg;   /* ref: swapped-in segment while its fsyncs run */
	enum compact_jstate state;
	enum compact_jname name;
	int dirfd;              /* dup of the log's: outlives a closed log */
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
	uint64_t slice;         /* input bytes read in this step */
	struct compact_sync_op sync[CJ_SYNC_MAX];
	uint32_t sync_inflight;
	int sync_res;           /* first failed fsync (-errno), 0 */
	int orphan;             /* freed while fsyncs were in flight */
};

/* The records of batch (header h): in place or decompressed into run->dbuf. */
static enum sl_err compact_records(struct compact_job *run, const uint8_t *batch,
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

static enum sl_err compact_write_flush(struct compact_job *run)
{
	enum sl_err err = compact_pwrite_all(run->wfd, run->wbuf, run->wlen, run->wpos);

	if (err != SL_OK)
		return err;
	run->wpos += (int64_t)run->wlen;
	run->wlen = 0;
	return SL_OK;
}

static enum sl_err compact_write(struct compact_job *run, const uint8_t *p, size_t n)
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
static size_t compact_batch_finish(struct compact_job *run, int32_t count, int32_t last_delta,
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
static int compact_keep(struct compact_job *run, const struct batch_record *r, int64_t off,
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
static enum sl_err compact_batch(struct compact_job *run, const uint8_t *batch,
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
/* ---- job helpers ---- */

/* The listed segment with this base offset, or NULL. */
static struct segment *cj_find(const struct plog *log, int64_t base)
{
	for (uint32_t i = 0; i < log->seg_count; i++)
		if (log->segs[i]->base_offset == base)
			return log->segs[i];
	return NULL;
}

static int cj_index_of(const struct plog *log, const struct segment *seg)
{
	for (uint32_t i = 0; i < log->seg_count; i++)
		if (log->segs[i] == seg)
			return (int)i;
	return -1;
}

/* First listed SEALED segment with base in (after, limit), or NULL. */
static struct segment *cj_next(const struct plog *log, int64_t after, int64_t limit)
{
	for (uint32_t i = 0; i + 1 < log->seg_count; i++) {
		struct segment *s = log->segs[i];
		if (s->state != SEGMENT_SEALED)
			break;
		if (s->base_offset > after && s->base_offset < limit)
			return s;
	}
	return NULL;
}

/* Writes the name of the temporary file `which` of the job into out. */
static void cj_name_of(const struct compact_job *j, enum compact_jname which, char *out)
{
	char name[SEGMENT_NAME_BYTES];

	if (which == CJ_NAME_CKPT_TMP) {
		snprintf(out, COMPACT_NAME_BYTES, "%s", CJ_CKPT_TMP_NAME);
		return;
	}
	segment_file_name(name, j->seg_base, ".log");
	snprintf(out, COMPACT_NAME_BYTES, "%s%s", name,
		 which == CJ_NAME_CLEANED ? ".cleaned" : ".swap");
}

/* Unlinks the temporary file the job owns (if any) and closes wfd. */
static void cj_drop_name(struct compact_job *j)
{
	char name[COMPACT_NAME_BYTES];

	if (j->wfd >= 0 && j->sync_inflight == 0) {
		close(j->wfd);
		j->wfd = -1;
	}
	if (j->name == CJ_NAME_NONE)
		return;
	cj_name_of(j, j->name, name);
	(void)unlinkat(j->dirfd, name, 0);
	j->name = CJ_NAME_NONE;
}

static void cj_seg_put(struct segment **s)
{
	if (*s != NULL)
		segment_unref(*s);
	*s = NULL;
}

/* Frees everything; no fsync may be in flight. */
static void cj_release(struct compact_job *j)
{
	SL_ASSERT(j->sync_inflight == 0);
	cj_drop_name(j);
	if (j->wfd >= 0)
		close(j->wfd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	cj_seg_put(&j->seg);
	cj_seg_put(&j->nseg);
	cj_seg_put(&j->guard);
	free(j->wbuf);
	free(j->obuf);
	free(j->kbuf);
	free(j->dbuf);
	free(j->rd.buf);
	free(j->map.slots);
	free(j);
}

static void cj_sync_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct compact_sync_op *s = (struct compact_sync_op *)op;
	struct compact_job *j = s->job;

	(void)cqe_flags;
	SL_ASSERT(j->sync_inflight > 0);
	j->sync_inflight--;
	if (res < 0 && j->sync_res == 0)
		j->sync_res = res;
	if (j->sync_inflight > 0)
		return;
	if (j->orphan) {
		cj_release(j);
		return;
	}
	if (j->cfg->wake != NULL)
		j->cfg->wake(j->cfg->wake_arg);
}

/*
 * Makes fds[0, n) durable (fdatasync where data[i], else fsync) and moves
 * to `next`: at once in blocking mode, through IORING_OP_FSYNC otherwise
 * (*wait = 1: the step returns COMPACT_WAITING).
 */
static enum sl_err cj_sync(struct compact_job *j, const int *fds, const int *data, uint32_t n,
			   enum compact_jstate next, int *wait)
{
	struct ring *ring = j->cfg->ring;

	SL_ASSERT(n >= 1 && n <= CJ_SYNC_MAX && j->sync_inflight == 0);
	j->state = next;
	if (ring == NULL) {
		for (uint32_t i = 0; i < n; i++) {
			int rc = data[i] ? fdatasync(fds[i]) : fsync(fds[i]);
			if (rc != 0) {
				LOG_E(j->cfg->shard_id, "compact %s: fsync: %s", j->log->dir,
				      strerror(errno));
				return SL_EIO;
			}
		}
		return SL_OK;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = ring_get_sqe(ring);
		io_uring_prep_fsync(sqe, fds[i], data[i] ? IORING_FSYNC_DATASYNC : 0);
		j->sync[i].job = j;
		j->sync[i].op.done = cj_sync_done;
		ring_sqe_set_op(ring, sqe, &j->sync[i].op);
		j->sync_inflight++;
	}
	*wait = 1;
	return SL_OK;
}

static enum sl_err cj_sync1(struct compact_job *j, int fd, int data, enum compact_jstate next,
			    int *wait)
{
	return cj_sync(j, &fd, &data, 1, next, wait);
}

/* Whether the job's current segment is still the listed one (retention or
 * DeleteRecords may have deleted it between steps). */
static int cj_seg_listed(const struct compact_job *j)
{
	return j->seg != NULL && cj_find(j->log, j->seg_base) == j->seg &&
	       j->seg->state == SEGMENT_SEALED;
}

/* ---- job states ---- */

/* CJ_PASS1: adds keyed records of [clean_offset, uncleanable) to the map. */
static enum sl_err cj_pass1(struct compact_job *j, uint64_t budget)
{
	struct plog *log = j->log;
	enum sl_err err = SL_OK;

	if (j->seg != NULL && !cj_seg_listed(j))
		cj_seg_put(&j->seg);     /* deleted meanwhile: older than the rest */
	if (j->seg == NULL) {
		struct segment *s = cj_next(log, j->seg_base, j->uncleanable);
		for (uint32_t n = 0; s != NULL && s->next_offset <= j->clean_offset &&
				     n < log->seg_count; n++)
			s = cj_next(log, s->base_offset, j->uncleanable);
		if (s == NULL) {
			j->map_end = j->uncleanable;
			j->state = CJ_OPEN;
			j->seg_base = -1;
			return SL_OK;
		}
		segment_ref(s);
		j->seg = s;
		j->seg_base = s->base_offset;
		j->pos = 0;
		j->rd = (struct compact_reader){ .fd = s->log_fd, .limit = s->size,
						 .buf = j->rd.buf, .cap = j->rd.cap };
	}
	struct segment *seg = j->seg;
	for (int64_t n = 0; j->pos < seg->size && n <= seg->size; n++) {
		struct batch_header h;
		const uint8_t *batch, *recs;
		size_t rlen;
		struct batch_record_iter it;
		struct batch_record r;

		if (budget > 0 && j->slice >= budget)
			return SL_OK;
		err = compact_reader_batch(&j->rd, j->pos, 0, &batch, &h);
		if (err != SL_OK)
			goto corrupt;
		j->slice += batch_size_bytes(&h);
		if (batch_last_offset(&h) < j->clean_offset ||
		    (h.attributes & BATCH_ATTR_CONTROL) || h.records_count == 0) {
			j->pos += (int64_t)batch_size_bytes(&h);
			continue;
		}
		if (j->cfg->max_dirty_bytes > 0 && j->st->bytes_scanned > 0 &&
		    (int64_t)(j->st->bytes_scanned + batch_size_bytes(&h)) > j->cfg->max_dirty_bytes) {
			j->map_end = h.base_offset;
			goto done;
		}
		j->pos += (int64_t)batch_size_bytes(&h);
		j->st->bytes_scanned += batch_size_bytes(&h);
		err = compact_records(j, batch, &h, &recs, &rlen);
		if (err != SL_OK)
			goto corrupt;
		batch_record_iter_init(&it, recs, rlen, h.records_count);
		while ((err = batch_record_next(&it, &r)) == SL_OK) {
			int64_t off = h.base_offset + r.offset_delta;
			uint64_t h0, h1;
			if (r.key == NULL || off < j->clean_offset)
				continue;
			compact_key_hash(r.key, r.key_len, &h0, &h1);
			if (compact_map_put(&j->map, h0, h1, off)) {
				j->map_end = off;
				j->st->map_full = 1;
				goto done;
			}
		}
		if (err != SL_ENOTFOUND)
			goto corrupt;
		err = SL_OK;
	}
	cj_seg_put(&j->seg);
	return SL_OK;
done:
	cj_seg_put(&j->seg);
	j->state = CJ_OPEN;
	j->seg_base = -1;
	return SL_OK;
corrupt:
	LOG_E(log->cfg.shard_id, "compact %s: segment %s: bad batch before position %lld: %s",
	      log->dir, seg->name, (long long)j->pos, sl_err_str(err));
	return err == SL_ENOMEM ? err : (err == SL_EIO ? SL_EIO : SL_ECORRUPT);
}

/* CJ_OPEN: the next sealed segment below map_end gets a `.cleaned`. */
static enum sl_err cj_open(struct compact_job *j)
{
	char cleaned[COMPACT_NAME_BYTES];
	struct segment *s = cj_next(j->log, j->seg_base, j->map_end);

	if (s == NULL) {
		j->state = CJ_CKPT;
		return SL_OK;
	}
	segment_ref(s);
	j->seg = s;
	j->seg_base = s->base_offset;
	cj_name_of(j, CJ_NAME_CLEANED, cleaned);
	j->wfd = openat(j->dirfd, cleaned, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (j->wfd < 0) {
		LOG_E(j->cfg->shard_id, "compact %s: create %s: %s", j->log->dir, cleaned,
		      strerror(errno));
		return SL_EIO;
	}
	j->name = CJ_NAME_CLEANED;
	j->wlen = 0;
	j->wpos = 0;
	j->pos = 0;
	j->rd = (struct compact_reader){ .fd = s->log_fd, .limit = s->size,
					 .buf = j->rd.buf, .cap = j->rd.cap };
	j->state = CJ_REWRITE;
	return SL_OK;
}

/* The current segment vanished (retention, DeleteRecords): forget its
 * rewrite and make the unlink durable before going on. */
static enum sl_err cj_skip(struct compact_job *j, int *wait)
{
	LOG_I(j->cfg->shard_id, "compact %s: segment %020lld was deleted during its rewrite",
	      j->log->dir, (long long)j->seg_base);
	cj_drop_name(j);
	cj_seg_put(&j->seg);
	return cj_sync1(j, j->dirfd, 0, CJ_OPEN, wait);
}

/* CJ_REWRITE: filters batches of seg into .cleaned, then fdatasyncs it. */
static enum sl_err cj_rewrite(struct compact_job *j, uint64_t budget, int *wait)
{
	struct segment *seg = j->seg;
	enum sl_err err = SL_OK;

	if (!cj_seg_listed(j))
		return cj_skip(j, wait);
	for (int64_t n = 0; j->pos < seg->size && n <= seg->size; n++) {
		struct batch_header h;
		const uint8_t *batch;
		if (budget > 0 && j->slice >= budget)
			return SL_OK;
		err = compact_reader_batch(&j->rd, j->pos, BATCH_CHECK_CRC, &batch, &h);
		if (err != SL_OK)
			break;
		j->slice += batch_size_bytes(&h);
		j->pos += (int64_t)batch_size_bytes(&h);
		err = compact_batch(j, batch, &h, j->pos == seg->size);
		if (err != SL_OK)
			break;
	}
	if (err == SL_OK)
		err = compact_write_flush(j);
	if (err != SL_OK) {
		LOG_E(j->cfg->shard_id, "compact %s: segment %s at position %lld: %s", j->log->dir,
		      seg->name, (long long)j->pos, sl_err_str(err));
		return err;
	}
	return cj_sync1(j, j->wfd, 1, CJ_CLEANED_SYNCED, wait);
}

/* CJ_CLEANED_SYNCED: an unchanged segment's .cleaned goes; otherwise the
 * rename to .swap is the commit point, made durable by the directory fsync. */
static enum sl_err cj_cleaned_synced(struct compact_job *j, int *wait)
{
	char cleaned[COMPACT_NAME_BYTES], swap[COMPACT_NAME_BYTES];
	struct segment *seg = j->seg;

	close(j->wfd);
	j->wfd = -1;
	if (!cj_seg_listed(j))
		return cj_skip(j, wait);
	j->st->bytes_before += (uint64_t)seg->size;
	if (j->wpos == seg->size) {
		cj_drop_name(j);
		j->st->segments_unchanged++;
		j->st->bytes_after += (uint64_t)seg->size;
		cj_seg_put(&j->seg);
		j->state = CJ_OPEN;
		return SL_OK;
	}
	SL_ASSERT(j->wpos < seg->size);
	j->st->bytes_after += (uint64_t)j->wpos;
	cj_name_of(j, CJ_NAME_CLEANED, cleaned);
	cj_name_of(j, CJ_NAME_SWAP, swap);
	if (renameat(j->dirfd, cleaned, j->dirfd, swap) != 0) {
		LOG_E(j->cfg->shard_id, "compact %s: segment %s: rename .cleaned: %s", j->log->dir,
		      seg->name, strerror(errno));
		return SL_EIO;
	}
	j->name = CJ_NAME_SWAP;
	return cj_sync1(j, j->dirfd, 0, CJ_COMMITTED, wait);
}

/* CJ_COMMITTED: steps 3-5 of the swap (compact.h); the final directory
 * fsync and the new indexes' fdatasync go out together. */
static enum sl_err cj_committed(struct compact_job *j, int *wait)
{
	struct plog *log = j->log;
	struct segment *old = j->seg;
	struct segment *nseg = NULL;
	struct segment_load_report rep = { 0 };
	char swap[COMPACT_NAME_BYTES], name[SEGMENT_NAME_BYTES];
	enum sl_err err;

	if (!cj_seg_listed(j))
		return cj_skip(j, wait);
	int idx = cj_index_of(log, old);
	SL_ASSERT(idx >= 0);
	cj_name_of(j, CJ_NAME_SWAP, swap);
	segment_file_name(name, old->base_offset, ".index");
	(void)unlinkat(j->dirfd, name, 0);
	segment_file_name(name, old->base_offset, ".timeindex");
	(void)unlinkat(j->dirfd, name, 0);
	segment_file_name(name, old->base_offset, ".log");
	if (renameat(j->dirfd, swap, j->dirfd, name) != 0) {
		LOG_E(log->cfg.shard_id, "compact %s: segment %s: rename .swap: %s", log->dir,
		      old->name, strerror(errno));
		return SL_EIO;
	}
	j->name = CJ_NAME_NONE;
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
	if (err != SL_OK) {
		segment_unref(nseg);
		return err;
	}
	/* The old segment's names now belong to the new files: no unlink, just
	 * drop the log's reference (read slices keep the old fd alive). */
	log->segs[idx] = nseg;
	old->state = SEGMENT_DELETED;
	segment_unref(old);
	cj_seg_put(&j->seg);
	segment_ref(nseg);
	j->nseg = nseg;
	int fds[3] = { j->dirfd, nseg->oindex.fd, nseg->tindex.fd };
	int data[3] = { 0, 1, 1 };
	return cj_sync(j, fds, data, 3, CJ_SWAPPED, wait);
}

/* CJ_CKPT: compact.checkpoint.tmp with clean_offset = map_end, fdatasynced
 * (the format of checkpoint_write, checkpoint.h). */
static enum sl_err cj_ckpt(struct compact_job *j, int *wait)
{
	char buf[128];
	int len = snprintf(buf, sizeof(buf), "0\n1\nclean_offset %lld\n", (long long)j->map_end);

	SL_ASSERT(len > 0 && (size_t)len < sizeof(buf));
	j->wfd = openat(j->dirfd, CJ_CKPT_TMP_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (j->wfd < 0) {
		LOG_E(j->cfg->shard_id, "compact %s: create %s: %s", j->log->dir, CJ_CKPT_TMP_NAME,
		      strerror(errno));
		return SL_EIO;
	}
	j->name = CJ_NAME_CKPT_TMP;
	if (compact_pwrite_all(j->wfd, (const uint8_t *)buf, (size_t)len, 0) != SL_OK) {
		LOG_E(j->cfg->shard_id, "compact %s: write %s failed", j->log->dir,
		      CJ_CKPT_TMP_NAME);
		return SL_EIO;
	}
	return cj_sync1(j, j->wfd, 1, CJ_CKPT_SYNCED, wait);
}

static enum sl_err cj_ckpt_synced(struct compact_job *j, int *wait)
{
	struct compact_stats *st = j->st;

	close(j->wfd);
	j->wfd = -1;
	if (renameat(j->dirfd, CJ_CKPT_TMP_NAME, j->dirfd, COMPACT_CHECKPOINT_NAME) != 0) {
		LOG_E(j->cfg->shard_id, "compact %s: rename %s: %s", j->log->dir, CJ_CKPT_TMP_NAME,
		      strerror(errno));
		return SL_EIO;
	}
	j->name = CJ_NAME_NONE;
	st->clean_offset_after = j->map_end;
	st->more = j->map_end < j->uncleanable;
	LOG_I(j->cfg->shard_id,
	      "compact %s: [.., %lld) %llu -> %llu bytes, %llu of %llu records removed "
	      "(%llu tombstones), %u segments rewritten%s", j->log->dir, (long long)j->map_end,
	      (unsigned long long)st->bytes_before, (unsigned long long)st->bytes_after,
	      (unsigned long long)st->records_removed, (unsigned long long)st->records_read,
	      (unsigned long long)st->tombstones_removed, st->segments_rewritten,
	      st->more ? ", more to do" : "");
	return cj_sync1(j, j->dirfd, 0, CJ_DONE, wait);
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

enum sl_err compact_job_start(struct compact_job **out, struct plog *log, int64_t now_ms,
			      const struct compact_config *cfg)
{
	struct compact_job *j;
	enum sl_err err;
	int nsealed;

	*out = NULL;
	if (cfg->delete_retention_ms < 0 || cfg->map_bytes < COMPACT_MAP_BYTES_MIN)
		return SL_EINVAL;
	if (log->failed || log->closing)
		return SL_ECLOSED;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return SL_ENOMEM;
	j->log = log;
	j->cfg_copy = *cfg;
	j->cfg = &j->cfg_copy;
	j->st = &j->stats;
	j->now_ms = now_ms;
	j->wfd = -1;
	j->seg_base = -1;
	j->dirfd = fcntl(log->dirfd, F_DUPFD_CLOEXEC, 0);
	if (j->dirfd < 0) {
		free(j);
		return SL_EIO;
	}
	err = compact_clean_offset_read(log, &j->clean_offset);
	if (err != SL_OK)
		goto fail;
	nsealed = compact_sealed_count(log);
	j->st->clean_offset_before = j->clean_offset;
	j->st->clean_offset_after = j->clean_offset;
	j->guard = log->segs[nsealed];
	segment_ref(j->guard);
	j->uncleanable = j->guard->base_offset;
	j->map_end = j->uncleanable;
	if (nsealed == 0 || j->clean_offset >= j->uncleanable) {
		j->state = CJ_DONE;
		*out = j;
		return SL_OK;
	}
	err = compact_map_init(&j->map, cfg->map_bytes);
	if (err != SL_OK)
		goto fail;
	j->wbuf = malloc(COMPACT_WRITE_BYTES);
	if (j->wbuf == NULL) {
		err = SL_ENOMEM;
		goto fail;
	}
	j->state = CJ_PASS1;
	*out = j;
	return SL_OK;
fail:
	cj_release(j);
	return err;
}

enum sl_err compact_job_step(struct compact_job *j, uint64_t budget_bytes,
			     enum compact_progress *prog)
{
	struct plog *log = j->log;
	enum sl_err err = SL_OK;
	int wait = 0;

	SL_ASSERT(j->sync_inflight == 0 && !j->orphan);
	*prog = COMPACT_RUNNING;
	if (j->sync_res != 0) {
		LOG_E(j->cfg->shard_id, "compact %s: fsync failed: %s", log->dir,
		      strerror(-j->sync_res));
		return SL_EIO;
	}
	if (j->state == CJ_DONE) {
		*prog = COMPACT_FINISHED;
		return SL_OK;
	}
	if (log->failed || log->closing)
		return SL_ECLOSED;
	/* Truncation below the first unclean segment invalidates the map. */
	if (cj_find(log, j->uncleanable) != j->guard || j->guard->state == SEGMENT_DELETED) {
		LOG_I(j->cfg->shard_id, "compact %s: log truncated or trimmed under the job, "
		      "giving up this round", log->dir);
		return SL_EAGAIN;
	}
	j->slice = 0;
	for (uint32_t n = 0; n < 64 && err == SL_OK && !wait; n++) {
		if (budget_bytes > 0 && j->slice >= budget_bytes)
			return SL_OK;
		switch (j->state) {
		case CJ_PASS1:
			err = cj_pass1(j, budget_bytes);
			break;
		case CJ_OPEN:
			err = cj_open(j);
			break;
		case CJ_REWRITE:
			err = cj_rewrite(j, budget_bytes, &wait);
			break;
		case CJ_CLEANED_SYNCED:
			err = cj_cleaned_synced(j, &wait);
			break;
		case CJ_COMMITTED:
			err = cj_committed(j, &wait);
			break;
		case CJ_SWAPPED:
			cj_seg_put(&j->nseg);
			j->st->segments_rewritten++;
			j->state = CJ_OPEN;
			break;
		case CJ_CKPT:
			err = cj_ckpt(j, &wait);
			break;
		case CJ_CKPT_SYNCED:
			err = cj_ckpt_synced(j, &wait);
			break;
		case CJ_DONE:
			*prog = COMPACT_FINISHED;
			return SL_OK;
		}
	}
	if (err == SL_OK && wait)
		*prog = COMPACT_WAITING;
	return err;
}

const struct compact_stats *compact_job_stats(const struct compact_job *j)
{
	return j->st;
}

void compact_job_free(struct compact_job *j)
{
	if (j == NULL)
		return;
	SL_ASSERT(!j->orphan);
	if (j->sync_inflight > 0) {
		/* The fsync completions free it; names go now. */
		j->orphan = 1;
		cj_drop_name(j);
		return;
	}
	cj_release(j);
}

enum sl_err plog_compact(struct plog *log, int64_t now_ms, const struct compact_config *cfg,
			 struct compact_stats *st)
{
	struct compact_config c = *cfg;
	struct compact_job *j = NULL;
	enum compact_progress prog = COMPACT_RUNNING;
	enum sl_err err;

	memset(st, 0, sizeof(*st));
	c.ring = NULL;              /* blocking: every fsync inline */
	err = compact_job_start(&j, log, now_ms, &c);
	if (err != SL_OK)
		return err;
	for (uint64_t n = 0; n < (1ull << 40) && prog != COMPACT_FINISHED; n++) {
		err = compact_job_step(j, 0, &prog);
		if (err != SL_OK)
			break;
	}
	*st = *j->st;
	compact_job_free(j);
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
		if (strcmp(de->d_name, CJ_CKPT_TMP_NAME) == 0) {
			/* A job's unfinished checkpoint: the old one stands. */
			(void)unlinkat(dfd, de->d_name, 0);
			changed = 1;
			continue;
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
