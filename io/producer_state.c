/*
 * producer_state.c — see producer_state.h for the rules, the pipeline and
 * the invariants.
 *
 * Layout. `prods` is a dense array of `count` producers; `index` is an
 * open-addressing table (linear probing) of positions into it, keyed by
 * producer id. Removing a producer backward-shifts its index run (no
 * tombstones, so probe lengths never decay) and moves the last dense
 * producer into the hole. Scans (expiry, eviction, snapshots) walk the
 * dense array only.
 *
 * Each producer keeps its batches in a ring of PRODUCER_STATE_SLOTS, oldest
 * at `head`. Pending batches are the newest `pending` ones.
 *
 * Snapshot file format (big-endian), `<20-digit offset>.snapshot`:
 *    0 magic     u32  "SLPS"
 *    4 version   u16  1
 *    6 reserved  u16  0
 *    8 crc       u32  CRC-32C of bytes [12, end)
 *   12 offset    i64  the state covers every batch below it (= the name)
 *   20 count     u32  producers, <= PRODUCER_STATE_PRODUCERS_LIMIT
 *   24 producers: producer_id i64, epoch i16, batches u8 (1..5), then per
 *      batch, oldest first: first_offset i64, timestamp i64, first_seq i32,
 *      offset_delta i32. Offsets increase and stay below `offset`.
 * Kafka's own snapshot keeps only the newest batch per producer; keeping
 * the whole window means a retry straight after a restart is still found.
 */
#include "producer_state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "bytes.h"
#include "checkpoint.h"
#include "crc32c.h"
#include "log.h"
#include "plog.h"

#define PS_EMPTY UINT32_MAX
#define PS_INDEX_CAP_MIN 16u
#define PS_PRODS_CAP_MIN 8u
#define PS_HASH_MUL 0x9E3779B97F4A7C15ull

#define PS_SNAP_MAGIC 0x534C5053u      /* "SLPS" */
#define PS_SNAP_VERSION 1
#define PS_SNAP_HEADER_BYTES 24
#define PS_SNAP_PRODUCER_BYTES 11
#define PS_SNAP_BATCH_BYTES 24
#define PS_SNAP_PRODUCER_MAX_BYTES \
	(PS_SNAP_PRODUCER_BYTES + PRODUCER_STATE_BATCHES_RETAINED * PS_SNAP_BATCH_BYTES)
#define PS_SNAP_FILE_BYTES_MAX \
	((size_t)PS_SNAP_HEADER_BYTES + \
	 (size_t)PRODUCER_STATE_PRODUCERS_LIMIT * PS_SNAP_PRODUCER_MAX_BYTES)
#define PS_SNAP_NAME_DIGITS 20
#define PS_SNAP_NAME_BYTES 64
#define PS_TMP_SUFFIX CHECKPOINT_TMP_SUFFIX  /* what checkpoint_write_file_atomic leaves */
/* Snapshot files considered by one directory scan (the rest are deleted). */
#define PS_SNAP_SCAN_MAX 16
/* Directory entries looked at by one scan (same bound as plog's). */
#define PS_DIR_ENTRIES_MAX (1u << 22)
/* Batch headers per plog_scan call during a rebuild. */
#define PS_SCAN_CHUNK 4096u

_Static_assert(PRODUCER_STATE_SLOTS <= UINT8_MAX, "ring indexes are u8");
_Static_assert(PRODUCER_STATE_BATCHES_RETAINED <= PRODUCER_STATE_SLOTS, "window fits");

/* One batch's metadata (32 bytes). */
struct ps_batch {
	int64_t first_offset;
	int64_t timestamp;       /* maxTimestamp */
	int32_t first_seq;
	int32_t offset_delta;    /* last offset - first offset = last seq - first seq */
	int16_t epoch;
};

struct ps_producer {
	int64_t producer_id;
	uint8_t head;            /* ring slot of the oldest batch */
	uint8_t count;           /* batches held, 1..SLOTS while live */
	uint8_t pending;         /* newest `pending` batches are in flight */
	struct ps_batch b[PRODUCER_STATE_SLOTS];
};

struct producer_state {
	struct producer_state_config cfg;
	uint32_t *index;         /* index_cap slots: position in prods or PS_EMPTY */
	uint32_t index_cap;      /* power of two */
	uint32_t index_cap_max;  /* keeps the load <= 1/2 at producers_max */
	struct ps_producer *prods;
	uint32_t prods_cap;
	uint32_t count;
	int64_t last_snapshot_offset;  /* -1: none written or loaded */
	struct producer_state_stats stats;
};

#define PS_VERIFY(ps) SL_DEBUG_ASSERT(producer_state_invariants_ok(ps))

/* ---- sequences and batches ---- */

/* seq + delta, wrapping from INT32_MAX to 0 (Kafka's incrementSequence). */
static int32_t ps_seq_add(int32_t seq, int32_t delta)
{
	int64_t s = (int64_t)seq + delta;

	SL_ASSERT(seq >= 0 && delta >= 0);
	if (s > INT32_MAX)
		s -= (int64_t)INT32_MAX + 1;
	SL_ASSERT(s >= 0 && s <= INT32_MAX);
	return (int32_t)s;
}

static int ps_in_sequence(int32_t last_seq, int32_t next_seq)
{
	return (int64_t)next_seq == (int64_t)last_seq + 1 ||
	       (last_seq == INT32_MAX && next_seq == 0);
}

static int32_t ps_batch_last_seq(const struct ps_batch *b)
{
	return ps_seq_add(b->first_seq, b->offset_delta);
}

static int64_t ps_batch_last_offset(const struct ps_batch *b)
{
	return b->first_offset + b->offset_delta;
}

/* The i-th oldest batch of p (0 <= i < count). */
static struct ps_batch *ps_at(struct ps_producer *p, uint32_t i)
{
	SL_ASSERT(i < p->count);
	return &p->b[(p->head + i) % PRODUCER_STATE_SLOTS];
}

static const struct ps_batch *ps_at_c(const struct ps_producer *p, uint32_t i)
{
	SL_ASSERT(i < p->count);
	return &p->b[(p->head + i) % PRODUCER_STATE_SLOTS];
}

static const struct ps_batch *ps_newest(const struct ps_producer *p)
{
	SL_ASSERT(p->count > 0);
	return ps_at_c(p, p->count - 1u);
}

static void ps_drop_oldest(struct ps_producer *p)
{
	SL_ASSERT(p->count > p->pending);
	p->head = (uint8_t)((p->head + 1) % PRODUCER_STATE_SLOTS);
	p->count--;
}

/* Appends a batch as the newest, dropping the oldest (completed) one if full. */
static void ps_push(struct ps_producer *p, const struct ps_batch *b)
{
	if (p->count > 0)
		SL_ASSERT(b->first_offset > ps_batch_last_offset(ps_newest(p)) &&
			  b->epoch >= ps_newest(p)->epoch);
	if (p->count == PRODUCER_STATE_SLOTS)
		ps_drop_oldest(p);
	p->b[(p->head + p->count) % PRODUCER_STATE_SLOTS] = *b;
	p->count++;
	SL_ASSERT(p->count <= PRODUCER_STATE_SLOTS);
}

/* ---- the index ---- */

static uint32_t ps_home(int64_t producer_id, uint32_t cap)
{
	uint64_t h = (uint64_t)producer_id * PS_HASH_MUL;

	h ^= h >> 32;
	return (uint32_t)h & (cap - 1u);
}

/*
 * Finds producer_id's index slot: returns 1 with *slot set when present,
 * 0 with *slot = the empty slot where it would go.
 */
static int ps_find_slot(const struct producer_state *ps, int64_t producer_id, uint32_t *slot)
{
	uint32_t mask = ps->index_cap - 1u;
	uint32_t i = ps_home(producer_id, ps->index_cap);

	/* The load stays below 1, so an empty slot ends every probe. */
	for (uint32_t n = 0; n < ps->index_cap; n++, i = (i + 1u) & mask) {
		uint32_t pos = ps->index[i];
		if (pos == PS_EMPTY) {
			*slot = i;
			return 0;
		}
		if (ps->prods[pos].producer_id == producer_id) {
			*slot = i;
			return 1;
		}
	}
	SL_ASSERT(!"producer_state: index full");
	return 0;
}

static struct ps_producer *ps_lookup(const struct producer_state *ps, int64_t producer_id)
{
	uint32_t slot;

	if (!ps_find_slot(ps, producer_id, &slot))
		return NULL;
	return &ps->prods[ps->index[slot]];
}

/* Empties index slot `i`, shifting the rest of its probe run back. */
static void ps_index_delete(struct producer_state *ps, uint32_t i)
{
	uint32_t mask = ps->index_cap - 1u;
	uint32_t j = i;

	SL_ASSERT(ps->index[i] != PS_EMPTY);
	for (uint32_t n = 0; n < ps->index_cap; n++) {
		j = (j + 1u) & mask;
		uint32_t pos = ps->index[j];
		if (pos == PS_EMPTY)
			break;
		uint32_t home = ps_home(ps->prods[pos].producer_id, ps->index_cap);
		/* Move it back to i unless its home lies in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			ps->index[i] = pos;
			i = j;
		}
	}
	ps->index[i] = PS_EMPTY;
}

static void ps_index_fill(uint32_t *index, uint32_t cap)
{
	memset(index, 0xff, (size_t)cap * sizeof(*index));
}

/* Doubles the index and rehashes. SL_ENOMEM leaves the old one in place. */
static enum sl_err ps_index_grow(struct producer_state *ps)
{
	uint32_t cap = ps->index_cap * 2u;
	uint32_t *old = ps->index;
	uint32_t old_cap = ps->index_cap;
	uint32_t *index;

	SL_ASSERT(cap <= ps->index_cap_max);
	index = malloc((size_t)cap * sizeof(*index));
	if (index == NULL)
		return SL_ENOMEM;
	ps_index_fill(index, cap);
	ps->index = index;
	ps->index_cap = cap;
	for (uint32_t pos = 0; pos < ps->count; pos++) {
		uint32_t slot;
		int found = ps_find_slot(ps, ps->prods[pos].producer_id, &slot);
		SL_ASSERT(!found);
		ps->index[slot] = pos;
	}
	free(old);
	SL_ASSERT(ps->index_cap == old_cap * 2u);
	return SL_OK;
}

static enum sl_err ps_prods_grow(struct producer_state *ps)
{
	uint32_t cap = SL_MIN(ps->prods_cap * 2u, ps->cfg.producers_max);
	struct ps_producer *p;

	SL_ASSERT(cap > ps->prods_cap);
	p = realloc(ps->prods, (size_t)cap * sizeof(*p));
	if (p == NULL)
		return SL_ENOMEM;
	ps->prods = p;
	ps->prods_cap = cap;
	return SL_OK;
}

/* Removes the producer at dense position pos. */
static void ps_remove_at(struct producer_state *ps, uint32_t pos)
{
	uint32_t slot, last = ps->count - 1u;
	int found;

	SL_ASSERT(pos < ps->count && ps->prods[pos].pending == 0);
	found = ps_find_slot(ps, ps->prods[pos].producer_id, &slot);
	SL_ASSERT(found && ps->index[slot] == pos);
	ps_index_delete(ps, slot);
	if (pos != last) {
		ps->prods[pos] = ps->prods[last];
		found = ps_find_slot(ps, ps->prods[pos].producer_id, &slot);
		SL_ASSERT(found && ps->index[slot] == last);
		ps->index[slot] = pos;
	}
	ps->count--;
}

static uint32_t ps_pos(const struct producer_state *ps, const struct ps_producer *p)
{
	SL_ASSERT(p >= ps->prods && p < ps->prods + ps->count);
	return (uint32_t)(p - ps->prods);
}

/*
 * Evicts the idle producer with the oldest last timestamp (ties: the lowest
 * position). Returns 0 when every producer has a batch in flight.
 */
static int ps_evict_oldest(struct producer_state *ps)
{
	uint32_t victim = PS_EMPTY;
	int64_t oldest = INT64_MAX;

	for (uint32_t pos = 0; pos < ps->count; pos++) {
		const struct ps_producer *p = &ps->prods[pos];
		if (p->pending > 0)
			continue;
		int64_t ts = ps_newest(p)->timestamp;
		if (victim == PS_EMPTY || ts < oldest) {
			victim = pos;
			oldest = ts;
		}
	}
	if (victim == PS_EMPTY)
		return 0;
	LOG_D(ps->cfg.shard_id, "producer_state: evicting producer %" PRId64 " (bound %u)",
	      ps->prods[victim].producer_id, ps->cfg.producers_max);
	ps_remove_at(ps, victim);
	ps->stats.evicted++;
	return 1;
}

/* Makes room for one more producer (growing or evicting). 0: impossible. */
static int ps_make_room(struct producer_state *ps)
{
	if (ps->count < ps->cfg.producers_max) {
		if ((ps->count + 1u) * 2u > ps->index_cap && ps->index_cap < ps->index_cap_max)
			(void)ps_index_grow(ps);
		if (ps->count == ps->prods_cap)
			(void)ps_prods_grow(ps);
		/* A failed growth is survivable: allow a load up to 3/4, then evict. */
		if (ps->count < ps->prods_cap &&
		    (uint64_t)(ps->count + 1u) * 4u <= (uint64_t)ps->index_cap * 3u)
			return 1;
	}
	return ps_evict_oldest(ps);
}

/* Adds a producer with no batch yet; NULL when no room can be made. */
static struct ps_producer *ps_insert(struct producer_state *ps, int64_t producer_id)
{
	uint32_t slot;
	struct ps_producer *p;

	SL_ASSERT(producer_id >= 0);
	if (!ps_make_room(ps))
		return NULL;
	int found = ps_find_slot(ps, producer_id, &slot);
	SL_ASSERT(!found);
	p = &ps->prods[ps->count];
	memset(p, 0, sizeof(*p));
	p->producer_id = producer_id;
	ps->index[slot] = ps->count;
	ps->count++;
	SL_ASSERT(ps->count <= ps->cfg.producers_max);
	return p;
}

static void ps_clear(struct producer_state *ps)
{
	ps_index_fill(ps->index, ps->index_cap);
	ps->count = 0;
}

static uint32_t ps_pending_total(const struct producer_state *ps)
{
	uint32_t n = 0;

	for (uint32_t pos = 0; pos < ps->count; pos++)
		n += ps->prods[pos].pending;
	return n;
}

/* ---- create / destroy ---- */

void producer_state_config_default(struct producer_state_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->producers_max = PRODUCER_STATE_PRODUCERS_DEFAULT;
	cfg->expiration_ms = PRODUCER_STATE_EXPIRATION_MS_DEFAULT;
	cfg->shard_id = LOG_NO_SHARD;
}

static uint32_t ps_pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

enum sl_err producer_state_create(struct producer_state **out,
				  const struct producer_state_config *cfg)
{
	struct producer_state *ps;

	SL_ASSERT(out != NULL && cfg != NULL);
	*out = NULL;
	if (cfg->producers_max < 1 || cfg->producers_max > PRODUCER_STATE_PRODUCERS_LIMIT ||
	    cfg->expiration_ms < 1)
		return SL_EINVAL;
	ps = calloc(1, sizeof(*ps));
	if (ps == NULL)
		return SL_ENOMEM;
	ps->cfg = *cfg;
	ps->index_cap_max = ps_pow2_at_least(cfg->producers_max) * 2u;
	ps->index_cap = SL_MIN(PS_INDEX_CAP_MIN, ps->index_cap_max);
	ps->prods_cap = SL_MIN(PS_PRODS_CAP_MIN, cfg->producers_max);
	ps->index = malloc((size_t)ps->index_cap * sizeof(*ps->index));
	ps->prods = malloc((size_t)ps->prods_cap * sizeof(*ps->prods));
	if (ps->index == NULL || ps->prods == NULL) {
		free(ps->index);
		free(ps->prods);
		free(ps);
		return SL_ENOMEM;
	}
	ps_clear(ps);
	ps->last_snapshot_offset = -1;
	ps->stats.rebuild_snapshot_offset = -1;
	PS_VERIFY(ps);
	*out = ps;
	return SL_OK;
}

void producer_state_destroy(struct producer_state *ps)
{
	if (ps == NULL)
		return;
	SL_ASSERT(ps_pending_total(ps) == 0);
	free(ps->index);
	free(ps->prods);
	free(ps);
}

/* ---- the checks ---- */

void producer_batch_from_header(struct producer_batch *b, const struct batch_header *h)
{
	SL_ASSERT(b != NULL && h != NULL);
	b->producer_id = h->producer_id;
	b->producer_epoch = h->producer_epoch;
	b->base_sequence = h->base_sequence;
	b->last_offset_delta = h->last_offset_delta;
	b->max_timestamp = h->max_timestamp;
}

const char *producer_check_str(enum producer_check c)
{
	switch (c) {
	case PRODUCER_CHECK_OK: return "ok";
	case PRODUCER_CHECK_DUPLICATE: return "duplicate";
	case PRODUCER_CHECK_OUT_OF_ORDER: return "out of order sequence";
	case PRODUCER_CHECK_INVALID_EPOCH: return "invalid producer epoch";
	case PRODUCER_CHECK_INVALID_RECORD: return "invalid record";
	case PRODUCER_CHECK_EAGAIN: return "busy";
	}
	return "?";
}

/*
 * Looks for a batch with exactly [first_seq, last_seq] in p's window (the
 * newest BATCHES_RETAINED batches of the current epoch). Returns its ring
 * position (0 = oldest) or -1.
 */
static int ps_find_duplicate(const struct ps_producer *p, int32_t first_seq, int32_t last_seq)
{
	int16_t epoch = ps_newest(p)->epoch;
	uint32_t seen = 0;

	for (uint32_t i = p->count; i-- > 0 && seen < PRODUCER_STATE_BATCHES_RETAINED; seen++) {
		const struct ps_batch *b = ps_at_c(p, i);
		if (b->epoch != epoch)
			break;
		if (b->first_seq == first_seq && ps_batch_last_seq(b) == last_seq)
			return (int)i;
	}
	return -1;
}

/* Rules 2-5 for a producer already known. PRODUCER_CHECK_OK: may append. */
static enum producer_check ps_check_known(struct producer_state *ps, const struct ps_producer *p,
					  const struct producer_batch *b,
					  struct producer_reservation *rsv)
{
	const struct ps_batch *newest = ps_newest(p);
	int16_t epoch = newest->epoch;

	if (b->producer_epoch == epoch) {
		int32_t last_seq = ps_seq_add(b->base_sequence, b->last_offset_delta);
		int i = ps_find_duplicate(p, b->base_sequence, last_seq);
		if (i >= 0) {
			const struct ps_batch *d = ps_at_c(p, (uint32_t)i);
			rsv->first_offset = d->first_offset;
			rsv->last_offset = ps_batch_last_offset(d);
			rsv->timestamp = d->timestamp;
			rsv->pending = (uint32_t)i >= (uint32_t)(p->count - p->pending);
			ps->stats.duplicates++;
			return PRODUCER_CHECK_DUPLICATE;
		}
	}
	if (b->producer_epoch < epoch) {
		ps->stats.fenced++;
		return PRODUCER_CHECK_INVALID_EPOCH;
	}
	if (b->producer_epoch > epoch) {
		if (b->base_sequence == 0)
			return PRODUCER_CHECK_OK;
		ps->stats.out_of_order++;
		return PRODUCER_CHECK_OUT_OF_ORDER;
	}
	if (ps_in_sequence(ps_batch_last_seq(newest), b->base_sequence))
		return PRODUCER_CHECK_OK;
	ps->stats.out_of_order++;
	return PRODUCER_CHECK_OUT_OF_ORDER;
}

enum producer_check producer_state_check_and_reserve(struct producer_state *ps,
						     const struct producer_batch *b,
						     int64_t base_offset,
						     struct producer_reservation *rsv)
{
	struct ps_producer *p;
	enum producer_check c;

	SL_ASSERT(ps != NULL && b != NULL && rsv != NULL && base_offset >= 0);
	rsv->producer_id = -1;
	rsv->first_offset = -1;
	rsv->last_offset = -1;
	rsv->timestamp = -1;
	rsv->pending = 0;
	if (b->producer_id < 0)
		return PRODUCER_CHECK_OK;
	SL_ASSERT(b->last_offset_delta >= 0);
	if (b->base_sequence < 0 || b->producer_epoch < 0)
		return PRODUCER_CHECK_INVALID_RECORD;
	p = ps_lookup(ps, b->producer_id);
	if (p != NULL) {
		c = ps_check_known(ps, p, b, rsv);
		if (c != PRODUCER_CHECK_OK)
			return c;
		if (p->pending >= PRODUCER_STATE_PENDING_MAX)
			return PRODUCER_CHECK_EAGAIN;
	} else {
		p = ps_insert(ps, b->producer_id);  /* rule 6: any sequence */
		if (p == NULL)
			return PRODUCER_CHECK_EAGAIN;
	}
	struct ps_batch nb = {
		.first_offset = base_offset,
		.timestamp = b->max_timestamp,
		.first_seq = b->base_sequence,
		.offset_delta = b->last_offset_delta,
		.epoch = b->producer_epoch,
	};
	ps_push(p, &nb);
	p->pending++;
	rsv->producer_id = b->producer_id;
	rsv->first_offset = base_offset;
	rsv->last_offset = base_offset + b->last_offset_delta;
	rsv->timestamp = b->max_timestamp;
	ps->stats.reserved++;
	SL_ASSERT(p->pending <= PRODUCER_STATE_PENDING_MAX && p->pending <= p->count);
	PS_VERIFY(ps);
	return PRODUCER_CHECK_OK;
}

void producer_state_complete(struct producer_state *ps, const struct producer_reservation *rsv)
{
	struct ps_producer *p;
	const struct ps_batch *b;

	SL_ASSERT(ps != NULL && rsv != NULL);
	if (rsv->producer_id < 0)
		return;
	p = ps_lookup(ps, rsv->producer_id);
	SL_ASSERT(p != NULL && p->pending > 0);
	b = ps_at(p, (uint32_t)(p->count - p->pending));
	SL_ASSERT(b->first_offset == rsv->first_offset && ps_batch_last_offset(b) == rsv->last_offset);
	p->pending--;
	/* An epoch bump is now in the log: the old epoch's batches go. */
	for (uint32_t n = 0; n < PRODUCER_STATE_SLOTS && ps_at(p, 0)->epoch != b->epoch; n++)
		ps_drop_oldest(p);
	SL_ASSERT(ps_at(p, 0)->epoch == b->epoch);
	ps->stats.completed++;
	PS_VERIFY(ps);
}

void producer_state_abort(struct producer_state *ps, const struct producer_reservation *rsv)
{
	struct ps_producer *p;
	uint32_t i;

	SL_ASSERT(ps != NULL && rsv != NULL);
	if (rsv->producer_id < 0)
		return;
	p = ps_lookup(ps, rsv->producer_id);
	if (p == NULL)
		return;  /* its last batch went with an older abort */
	for (i = (uint32_t)(p->count - p->pending); i < p->count; i++)
		if (ps_at(p, i)->first_offset == rsv->first_offset)
			break;
	if (i == p->count)
		return;  /* removed with an older pending batch */
	uint32_t removed = p->count - i;
	SL_ASSERT(removed <= p->pending);
	p->count = (uint8_t)i;
	p->pending = (uint8_t)(p->pending - removed);
	ps->stats.aborted += removed;
	if (p->count == 0)
		ps_remove_at(ps, ps_pos(ps, p));
	PS_VERIFY(ps);
}

uint32_t producer_state_expire(struct producer_state *ps, int64_t now_ms)
{
	uint32_t removed = 0, pos = 0;
	uint32_t steps_max = ps->count * 2u + 1u;

	SL_ASSERT(ps != NULL);
	/* Each step either keeps a producer (pos++) or removes one. */
	for (uint32_t n = 0; pos < ps->count; n++) {
		SL_ASSERT(n < steps_max);
		const struct ps_producer *p = &ps->prods[pos];
		if (p->pending == 0 && now_ms - ps_newest(p)->timestamp >= ps->cfg.expiration_ms) {
			ps_remove_at(ps, pos);  /* the last one moves into pos */
			removed++;
		} else {
			pos++;
		}
	}
	ps->stats.expired += removed;
	PS_VERIFY(ps);
	return removed;
}

/* ---- introspection ---- */

enum sl_err producer_state_lookup(const struct producer_state *ps, int64_t producer_id,
				  struct producer_info *out)
{
	const struct ps_producer *p;
	const struct ps_batch *newest;

	SL_ASSERT(ps != NULL && out != NULL);
	if (producer_id < 0 || (p = ps_lookup(ps, producer_id)) == NULL)
		return SL_ENOTFOUND;
	newest = ps_newest(p);
	out->epoch = newest->epoch;
	out->last_sequence = ps_batch_last_seq(newest);
	out->last_offset = ps_batch_last_offset(newest);
	out->last_timestamp = newest->timestamp;
	out->window_count = 0;
	for (uint32_t i = p->count; i-- > 0 && out->window_count < PRODUCER_STATE_BATCHES_RETAINED;)
		if (ps_at_c(p, i)->epoch == newest->epoch)
			out->window_count++;
		else
			break;
	out->pending = p->pending;
	return SL_OK;
}

uint32_t producer_state_count(const struct producer_state *ps)
{
	return ps->count;
}

const struct producer_state_stats *producer_state_stats(const struct producer_state *ps)
{
	return &ps->stats;
}

static int ps_producer_ok(const struct producer_state *ps, uint32_t pos)
{
	const struct ps_producer *p = &ps->prods[pos];
	uint32_t slot;

	if (p->producer_id < 0 || p->count < 1 || p->count > PRODUCER_STATE_SLOTS ||
	    p->pending > p->count || p->pending > PRODUCER_STATE_PENDING_MAX ||
	    p->head >= PRODUCER_STATE_SLOTS)
		return 0;
	for (uint32_t i = 0; i < p->count; i++) {
		const struct ps_batch *b = ps_at_c(p, i);
		if (b->first_seq < 0 || b->offset_delta < 0 || b->epoch < 0 || b->first_offset < 0)
			return 0;
		if (i > 0) {
			const struct ps_batch *prev = ps_at_c(p, i - 1u);
			if (prev->epoch > b->epoch || ps_batch_last_offset(prev) >= b->first_offset)
				return 0;
		}
	}
	return ps_find_slot(ps, p->producer_id, &slot) && ps->index[slot] == pos;
}

int producer_state_invariants_ok(const struct producer_state *ps)
{
	uint32_t used = 0;

	if (ps->count > ps->cfg.producers_max || ps->count > ps->prods_cap ||
	    ps->index_cap > ps->index_cap_max || (ps->index_cap & (ps->index_cap - 1u)) != 0)
		return 0;
	for (uint32_t i = 0; i < ps->index_cap; i++) {
		if (ps->index[i] == PS_EMPTY)
			continue;
		if (ps->index[i] >= ps->count)
			return 0;
		used++;
	}
	if (used != ps->count)
		return 0;
	for (uint32_t pos = 0; pos < ps->count; pos++)
		if (!ps_producer_ok(ps, pos))
			return 0;
	return 1;
}

/* ---- replay (rebuild and snapshot load) ---- */

/* Applies one completed batch, as read back from the log or a snapshot. */
static void ps_apply(struct producer_state *ps, int64_t producer_id, const struct ps_batch *b)
{
	struct ps_producer *p = ps_lookup(ps, producer_id);

	if (p == NULL) {
		p = ps_insert(ps, producer_id);
		SL_ASSERT(p != NULL);  /* nothing pending: eviction always succeeds */
	}
	/* A new epoch (or, in a damaged log, an older one) starts over, as Kafka does. */
	if (p->count > 0 && ps_newest(p)->epoch != b->epoch) {
		p->count = 0;
		p->head = 0;
	}
	if (p->count > 0 && b->first_offset <= ps_batch_last_offset(ps_newest(p)))
		return;  /* not after what we hold: cannot come from an ordered log */
	ps_push(p, b);
}

struct ps_replay {
	struct producer_state *ps;
	int64_t from;
	uint64_t replayed;
};

static int ps_replay_batch(void *arg, const struct batch_header *h, int fd, int64_t file_pos)
{
	struct ps_replay *r = arg;

	(void)fd;
	(void)file_pos;
	if (batch_last_offset(h) < r->from || h->producer_id < 0 ||
	    (h->attributes & BATCH_ATTR_CONTROL) != 0)
		return 0;
	if (h->base_sequence < 0 || h->producer_epoch < 0 || h->last_offset_delta < 0)
		return 0;  /* never accepted by check_and_reserve */
	struct ps_batch b = {
		.first_offset = h->base_offset,
		.timestamp = h->max_timestamp,
		.first_seq = h->base_sequence,
		.offset_delta = h->last_offset_delta,
		.epoch = h->producer_epoch,
	};
	ps_apply(r->ps, h->producer_id, &b);
	r->replayed++;
	return 0;
}

/* ---- snapshot files ---- */

static void ps_snap_name(char *out, int64_t offset, const char *suffix)
{
	int n = snprintf(out, PS_SNAP_NAME_BYTES, "%020" PRId64 "%s%s", offset,
			 PRODUCER_STATE_SNAPSHOT_EXT, suffix);
	SL_ASSERT(n > 0 && n < PS_SNAP_NAME_BYTES);
}

/* Parses "<20 digits>.snapshot" (tmp = 0) or "....snapshot.tmp" (tmp = 1). */
static int ps_snap_parse_name(const char *name, int tmp, int64_t *offset)
{
	size_t ext = strlen(PRODUCER_STATE_SNAPSHOT_EXT);
	size_t want = PS_SNAP_NAME_DIGITS + ext + (tmp ? strlen(PS_TMP_SUFFIX) : 0);
	int64_t v = 0;

	if (strlen(name) != want ||
	    memcmp(name + PS_SNAP_NAME_DIGITS, PRODUCER_STATE_SNAPSHOT_EXT, ext) != 0 ||
	    (tmp && strcmp(name + PS_SNAP_NAME_DIGITS + ext, PS_TMP_SUFFIX) != 0))
		return 0;
	for (int i = 0; i < PS_SNAP_NAME_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		if (v > (INT64_MAX - (name[i] - '0')) / 10)
			return 0;
		v = v * 10 + (name[i] - '0');
	}
	*offset = v;
	return 1;
}

static void ps_snap_unlink(const struct producer_state *ps, int dirfd, int64_t offset)
{
	char name[PS_SNAP_NAME_BYTES];

	ps_snap_name(name, offset, "");
	if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
		LOG_W(ps->cfg.shard_id, "producer_state: unlink %s: %s", name, strerror(errno));
}

/*
 * Snapshot offsets found in a directory: the PS_SNAP_SCAN_MAX largest,
 * descending. Smaller ones and leftover temporary files are deleted.
 */
struct ps_snap_list {
	int64_t off[PS_SNAP_SCAN_MAX];
	uint32_t n;
	uint32_t deleted;
};

static void ps_snap_list_add(struct producer_state *ps, int dirfd, struct ps_snap_list *l,
			     int64_t off)
{
	uint32_t i;

	if (l->n == PS_SNAP_SCAN_MAX) {
		int64_t drop = l->off[l->n - 1u];
		if (off < drop) {
			ps_snap_unlink(ps, dirfd, off);
			l->deleted++;
			return;
		}
		ps_snap_unlink(ps, dirfd, drop);
		l->deleted++;
		l->n--;
	}
	for (i = l->n; i > 0 && l->off[i - 1u] < off; i--)
		l->off[i] = l->off[i - 1u];
	l->off[i] = off;
	l->n++;
}

static enum sl_err ps_snap_scan(struct producer_state *ps, int dirfd, struct ps_snap_list *l)
{
	struct dirent *de;
	DIR *d;
	int fd;

	l->n = 0;
	l->deleted = 0;
	fd = dup(dirfd);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		LOG_E(ps->cfg.shard_id, "producer_state: opendir: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return SL_EIO;
	}
	rewinddir(d);  /* the dup shares the file position with dirfd */
	for (uint32_t n = 0; n < PS_DIR_ENTRIES_MAX && (de = readdir(d)) != NULL; n++) {
		int64_t off;
		if (ps_snap_parse_name(de->d_name, 0, &off))
			ps_snap_list_add(ps, dirfd, l, off);
		else if (ps_snap_parse_name(de->d_name, 1, &off))
			(void)unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
	return SL_OK;
}

static int ps_open_dir(const struct producer_state *ps, const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		LOG_E(ps->cfg.shard_id, "producer_state: open %s: %s", dir, strerror(errno));
	return fd;
}

/* Reads a whole file (at most max bytes). SL_OK with *buf (malloc'd) and *len. */
static enum sl_err ps_read_file(int dirfd, const char *name, size_t max, uint8_t **buf,
				size_t *len)
{
	struct stat st;
	uint8_t *p = NULL;
	size_t got = 0;
	enum sl_err err = SL_EIO;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

	*buf = NULL;
	if (fd < 0)
		return errno == ENOENT ? SL_ENOTFOUND : SL_EIO;
	if (fstat(fd, &st) != 0)
		goto cleanup;
	if (st.st_size < 0 || (uint64_t)st.st_size > max) {
		err = SL_ECORRUPT;
		goto cleanup;
	}
	p = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (p == NULL) {
		err = SL_ENOMEM;
		goto cleanup;
	}
	/* Each turn reads at least one byte or stops. */
	while (got < (size_t)st.st_size) {
		ssize_t r = pread(fd, p + got, (size_t)st.st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != (size_t)st.st_size)
		goto cleanup;
	*buf = p;
	*len = got;
	p = NULL;
	err = SL_OK;

cleanup:
	free(p);
	close(fd);
	return err;
}

/* Reads one producer record at *pos into the table. 0 when malformed. */
static int ps_snap_parse_producer(struct producer_state *ps, const uint8_t *buf, size_t len,
				  size_t *pos, int64_t snap_offset)
{
	const uint8_t *q = buf + *pos;
	int64_t prev_last = -1;

	if (len - *pos < PS_SNAP_PRODUCER_BYTES)
		return 0;
	int64_t producer_id = (int64_t)be64_load(q);
	int16_t epoch = (int16_t)be16_load(q + 8);
	uint8_t n = q[10];
	if (producer_id < 0 || epoch < 0 || n < 1 || n > PRODUCER_STATE_BATCHES_RETAINED ||
	    len - *pos - PS_SNAP_PRODUCER_BYTES < (size_t)n * PS_SNAP_BATCH_BYTES ||
	    ps_lookup(ps, producer_id) != NULL)
		return 0;
	q += PS_SNAP_PRODUCER_BYTES;
	for (uint8_t i = 0; i < n; i++, q += PS_SNAP_BATCH_BYTES) {
		struct ps_batch b = {
			.first_offset = (int64_t)be64_load(q),
			.timestamp = (int64_t)be64_load(q + 8),
			.first_seq = (int32_t)be32_load(q + 16),
			.offset_delta = (int32_t)be32_load(q + 20),
			.epoch = epoch,
		};
		if (b.first_offset <= prev_last || b.first_seq < 0 || b.offset_delta < 0 ||
		    b.first_offset > snap_offset - 1 - b.offset_delta)
			return 0;
		prev_last = ps_batch_last_offset(&b);
		ps_apply(ps, producer_id, &b);
	}
	*pos += PS_SNAP_PRODUCER_BYTES + (size_t)n * PS_SNAP_BATCH_BYTES;
	return 1;
}

/* Validates and loads a snapshot image into the (empty) table. */
static enum sl_err ps_snap_parse(struct producer_state *ps, const uint8_t *buf, size_t len,
				 int64_t name_offset)
{
	size_t pos = PS_SNAP_HEADER_BYTES;

	SL_ASSERT(ps->count == 0);
	if (len < PS_SNAP_HEADER_BYTES || be32_load(buf) != PS_SNAP_MAGIC ||
	    be16_load(buf + 4) != PS_SNAP_VERSION || be16_load(buf + 6) != 0 ||
	    be32_load(buf + 8) != crc32c(0, buf + 12, len - 12) ||
	    (int64_t)be64_load(buf + 12) != name_offset)
		return SL_ECORRUPT;
	uint32_t count = be32_load(buf + 20);
	if (count > PRODUCER_STATE_PRODUCERS_LIMIT)
		return SL_ECORRUPT;
	for (uint32_t i = 0; i < count; i++)
		if (!ps_snap_parse_producer(ps, buf, len, &pos, name_offset))
			return SL_ECORRUPT;
	return pos == len ? SL_OK : SL_ECORRUPT;
}

static enum sl_err ps_snap_load(struct producer_state *ps, int dirfd, int64_t offset)
{
	char name[PS_SNAP_NAME_BYTES];
	uint8_t *buf;
	size_t len = 0;
	enum sl_err err;

	ps_snap_name(name, offset, "");
	err = ps_read_file(dirfd, name, PS_SNAP_FILE_BYTES_MAX, &buf, &len);
	if (err != SL_OK)
		return err == SL_ENOMEM ? SL_ENOMEM : SL_ECORRUPT;
	err = ps_snap_parse(ps, buf, len, offset);
	free(buf);
	if (err != SL_OK)
		ps_clear(ps);
	return err;
}

/*
 * Loads the newest usable snapshot at or below end_offset; deletes those
 * above it and corrupt ones. *loaded = its offset, or -1.
 */
static enum sl_err ps_snap_load_best(struct producer_state *ps, int dirfd, int64_t end_offset,
				     int64_t *loaded)
{
	struct ps_snap_list l;
	enum sl_err err;

	*loaded = -1;
	err = ps_snap_scan(ps, dirfd, &l);
	if (err != SL_OK)
		return err;
	ps->stats.rebuild_snapshots_deleted += l.deleted;
	for (uint32_t i = 0; i < l.n; i++) {
		if (l.off[i] > end_offset) {
			LOG_W(ps->cfg.shard_id, "producer_state: snapshot %020" PRId64
			      " is above the log end %" PRId64 ": deleted", l.off[i], end_offset);
			ps_snap_unlink(ps, dirfd, l.off[i]);
			ps->stats.rebuild_snapshots_deleted++;
			continue;
		}
		err = ps_snap_load(ps, dirfd, l.off[i]);
		if (err == SL_OK) {
			*loaded = l.off[i];
			return SL_OK;
		}
		if (err == SL_ENOMEM)
			return err;
		LOG_W(ps->cfg.shard_id, "producer_state: snapshot %020" PRId64
		      " is corrupt: deleted, trying an older one", l.off[i]);
		ps_snap_unlink(ps, dirfd, l.off[i]);
		ps->stats.rebuild_snapshots_corrupt++;
	}
	return SL_OK;
}

/* ---- rebuild ---- */

static enum sl_err ps_replay_log(struct producer_state *ps, struct plog *log, int64_t from,
				 uint64_t *replayed)
{
	struct ps_replay r = { .ps = ps, .from = from, .replayed = 0 };
	int64_t end = plog_end_offset(log);
	int64_t next = from;
	enum sl_err err = SL_OK;

	SL_ASSERT(from >= plog_start_offset(log) && from <= end);
	/* Each turn passes at least one batch of at least one offset. */
	for (int64_t turns = 0; next < end; turns++) {
		int64_t got = next;
		SL_ASSERT(turns <= end - from);
		err = plog_scan(log, next, PS_SCAN_CHUNK, ps_replay_batch, &r, &got);
		if (err != SL_OK || got <= next)
			break;
		next = got;
	}
	*replayed = r.replayed;
	return err;
}

enum sl_err producer_state_rebuild(struct producer_state *ps, struct plog *log, const char *dir,
				   int64_t now_ms)
{
	int64_t end, start, snap = -1;
	uint64_t replayed = 0;
	enum sl_err err;
	int dirfd;

	SL_ASSERT(ps != NULL && log != NULL && dir != NULL);
	SL_ASSERT(ps_pending_total(ps) == 0);
	ps_clear(ps);
	ps->last_snapshot_offset = -1;
	ps->stats.rebuild_snapshot_offset = -1;
	ps->stats.rebuild_snapshots_corrupt = 0;
	ps->stats.rebuild_snapshots_deleted = 0;
	ps->stats.rebuild_batches_replayed = 0;
	end = plog_end_offset(log);
	start = plog_start_offset(log);
	dirfd = ps_open_dir(ps, dir);
	if (dirfd < 0)
		return SL_EIO;
	err = ps_snap_load_best(ps, dirfd, end, &snap);
	close(dirfd);
	if (err != SL_OK)
		goto cleanup;
	err = ps_replay_log(ps, log, SL_MAX(snap, start), &replayed);
	if (err != SL_OK)
		goto cleanup;
	ps->last_snapshot_offset = snap;
	ps->stats.rebuild_snapshot_offset = snap;
	ps->stats.rebuild_batches_replayed = replayed;
	(void)producer_state_expire(ps, now_ms);
	LOG_I(ps->cfg.shard_id, "producer_state %s: %u producers (snapshot %" PRId64
	      ", %" PRIu64 " batches replayed up to %" PRId64 ")", dir, ps->count, snap,
	      replayed, end);

cleanup:
	if (err != SL_OK) {
		LOG_E(ps->cfg.shard_id, "producer_state %s: rebuild failed: %s", dir,
		      sl_err_str(err));
		ps_clear(ps);
	}
	PS_VERIFY(ps);
	return err;
}

/* ---- snapshot write ---- */

/* The offset a snapshot taken now covers: end_offset, below any pending batch. */
static int64_t ps_snap_offset(const struct producer_state *ps, int64_t end_offset)
{
	int64_t off = end_offset;

	for (uint32_t pos = 0; pos < ps->count; pos++) {
		const struct ps_producer *p = &ps->prods[pos];
		if (p->pending > 0)
			off = SL_MIN(off, ps_at_c(p, (uint32_t)(p->count - p->pending))->first_offset);
	}
	return off;
}

/* Serialises the completed state below `offset`; returns the image size. */
static size_t ps_snap_serialize(const struct producer_state *ps, int64_t offset, uint8_t *buf)
{
	size_t pos = PS_SNAP_HEADER_BYTES;
	uint32_t written = 0;

	for (uint32_t i = 0; i < ps->count; i++) {
		const struct ps_producer *p = &ps->prods[i];
		uint32_t done = (uint32_t)(p->count - p->pending);
		uint32_t n = 0;
		if (done == 0)
			continue;
		int16_t epoch = ps_at_c(p, done - 1u)->epoch;
		while (n < done && n < PRODUCER_STATE_BATCHES_RETAINED &&
		       ps_at_c(p, done - 1u - n)->epoch == epoch)
			n++;
		be64_store(buf + pos, (uint64_t)p->producer_id);
		be16_store(buf + pos + 8, (uint16_t)epoch);
		buf[pos + 10] = (uint8_t)n;
		pos += PS_SNAP_PRODUCER_BYTES;
		for (uint32_t k = done - n; k < done; k++, pos += PS_SNAP_BATCH_BYTES) {
			const struct ps_batch *b = ps_at_c(p, k);
			SL_ASSERT(ps_batch_last_offset(b) < offset);
			be64_store(buf + pos, (uint64_t)b->first_offset);
			be64_store(buf + pos + 8, (uint64_t)b->timestamp);
			be32_store(buf + pos + 16, (uint32_t)b->first_seq);
			be32_store(buf + pos + 20, (uint32_t)b->offset_delta);
		}
		written++;
	}
	be32_store(buf, PS_SNAP_MAGIC);
	be16_store(buf + 4, PS_SNAP_VERSION);
	be16_store(buf + 6, 0);
	be64_store(buf + 12, (uint64_t)offset);
	be32_store(buf + 20, written);
	be32_store(buf + 8, crc32c(0, buf + 12, pos - 12));
	return pos;
}

/* tmp, fsync, rename, fsync dir (checkpoint.h). Returns 0 or -errno. */
static int ps_write_atomic(int dirfd, int64_t offset, const uint8_t *buf, size_t len)
{
	char name[PS_SNAP_NAME_BYTES];

	_Static_assert(PS_SNAP_NAME_BYTES + sizeof(PS_TMP_SUFFIX) <= CHECKPOINT_NAME_BYTES_MAX,
		       "snapshot names must fit checkpoint_write_file_atomic");
	ps_snap_name(name, offset, "");
	return checkpoint_write_file_atomic(dirfd, name, buf, len);
}

/* Deletes snapshots above `keep_top` and all but the KEPT newest below it. */
static void ps_snap_prune(struct producer_state *ps, int dirfd, int64_t keep_top)
{
	struct ps_snap_list l;
	uint32_t kept = 0;

	if (ps_snap_scan(ps, dirfd, &l) != SL_OK)
		return;
	for (uint32_t i = 0; i < l.n; i++) {
		if (l.off[i] <= keep_top && kept < PRODUCER_STATE_SNAPSHOTS_KEPT) {
			kept++;
			continue;
		}
		ps_snap_unlink(ps, dirfd, l.off[i]);
	}
}

enum sl_err producer_state_snapshot_write(struct producer_state *ps, const char *dir,
					  int64_t end_offset)
{
	uint8_t *buf = NULL;
	size_t len;
	int64_t offset;
	int dirfd = -1, rc = 0;
	enum sl_err err = SL_OK;

	SL_ASSERT(ps != NULL && dir != NULL && end_offset >= 0);
	offset = ps_snap_offset(ps, end_offset);
	if (offset == ps->last_snapshot_offset)
		return SL_OK;
	buf = malloc(PS_SNAP_HEADER_BYTES + (size_t)ps->count * PS_SNAP_PRODUCER_MAX_BYTES);
	if (buf == NULL)
		return SL_ENOMEM;
	len = ps_snap_serialize(ps, offset, buf);
	dirfd = ps_open_dir(ps, dir);
	if (dirfd < 0) {
		err = SL_EIO;
		goto cleanup;
	}
	rc = ps_write_atomic(dirfd, offset, buf, len);
	if (rc != 0) {
		LOG_E(ps->cfg.shard_id, "producer_state %s: writing snapshot %020" PRId64 ": %s",
		      dir, offset, strerror(-rc));
		err = SL_EIO;
		goto cleanup;
	}
	ps->last_snapshot_offset = offset;
	ps_snap_prune(ps, dirfd, offset);

cleanup:
	if (dirfd >= 0)
		close(dirfd);
	free(buf);
	return err;
}

enum sl_err producer_state_reset(struct producer_state *ps, const char *dir)
{
	struct ps_snap_list l;
	enum sl_err err;
	int dirfd;

	SL_ASSERT(ps != NULL && dir != NULL);
	SL_ASSERT(ps_pending_total(ps) == 0);
	ps_clear(ps);
	ps->last_snapshot_offset = -1;
	dirfd = ps_open_dir(ps, dir);
	if (dirfd < 0)
		return SL_EIO;
	/* The scan itself deletes all but the PS_SNAP_SCAN_MAX newest. */
	err = ps_snap_scan(ps, dirfd, &l);
	for (uint32_t i = 0; err == SL_OK && i < l.n; i++)
		ps_snap_unlink(ps, dirfd, l.off[i]);
	if (err == SL_OK && fsync(dirfd) != 0)
		err = SL_EIO;
	close(dirfd);
	PS_VERIFY(ps);
	return err;
}
