/*
 * kwrite.h — the Kafka wire writer: an output buffer with a hard cap and a
 * sticky error, plus "holes" for record data the caller sends itself.
 *
 * Buffer: either growable (kwrite_init: malloc/realloc, doubling, never
 * beyond size_max) or fixed (kwrite_init_fixed: caller memory, never
 * reallocated). A write that would pass the cap sets SL_ENOMEM; like kread,
 * the error is sticky and every later write is a no-op, so an encoder runs
 * to the end and the caller checks w->err once.
 *
 * Holes (zero-copy Fetch): a records value written as KSLICE_DEFERRED(n)
 * (ptr NULL, len n > 0) produces only its length prefix; the writer appends
 * { offset, len, src } to the caller's hole table, where offset is the
 * position in buf at which the n record bytes belong and src the slice
 * that asked for it. The bytes on the wire are then
 *   buf[0, h0.offset) + n0 file bytes + buf[h0.offset, h1.offset) + ...
 * which the sender turns into write + sendfile/splice steps. Holes are in
 * encoding order (= the order of topics and partitions in the response).
 * Frame sizes count hole bytes (kwrite_frame_end). A deferred value without
 * a hole table, or with a full one, is SL_EINVAL / SL_ENOMEM; a hole inside
 * a tagged field (whose size must be known) is SL_EINVAL.
 *
 * Invariants:
 *  1. len <= cap <= size_max; buf[0, len) holds everything written so far.
 *  2. Once err != SL_OK nothing changes except by kwrite_reset.
 *  3. holes[i].offset <= holes[i + 1].offset <= len; hole_bytes is the sum
 *     of holes[0, hole_count).len.
 *
 * States: kwrite_init / kwrite_init_fixed -> writing -> kwrite_reset (empty,
 * buffer kept) -> kwrite_destroy. Runs on: the thread that owns it.
 */
#ifndef SL_KWRITE_H
#define SL_KWRITE_H

#include "kread.h"

enum kwrite_mode {
	KWRITE_HEAP = 0,  /* buf is malloc'd here and grows up to size_max */
	KWRITE_FIXED,     /* buf is the caller's; size_max = its size */
};

struct kwrite_hole {
	size_t offset;              /* where in buf the deferred bytes go */
	int32_t len;                /* how many bytes the caller sends there */
	const struct kslice *src;   /* the records field that deferred them */
};

struct kwrite {
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t size_max;
	enum sl_err err;
	enum kwrite_mode mode;
	struct kwrite_hole *holes;  /* caller's table, may be NULL */
	uint32_t hole_count;
	uint32_t hole_cap;
	uint64_t hole_bytes;
};

/* Growable writer; nothing is allocated before the first write. */
void kwrite_init(struct kwrite *w, size_t size_max);
/* Writer over caller memory `buf` of `size` bytes (borrowed). */
void kwrite_init_fixed(struct kwrite *w, void *buf, size_t size);
/* Lends a hole table of `hole_cap` entries (borrowed until destroy). */
void kwrite_holes_set(struct kwrite *w, struct kwrite_hole *holes, uint32_t hole_cap);
/* Empties the writer (and its holes) and clears the error. */
void kwrite_reset(struct kwrite *w);
/* Frees a growable buffer. */
void kwrite_destroy(struct kwrite *w);

/* Appends room for `n` bytes and returns it, or NULL with w->err set. */
uint8_t *kwrite_reserve(struct kwrite *w, size_t n);

/* Sets the sticky error (the first error wins). */
static inline void kwrite_fail(struct kwrite *w, enum sl_err err)
{
	SL_ASSERT(err != SL_OK);
	if (w->err == SL_OK)
		w->err = err;
}

static inline void kwrite_raw(struct kwrite *w, const void *p, size_t n)
{
	uint8_t *dst;

	if (n == 0)
		return;
	dst = kwrite_reserve(w, n);
	if (dst != NULL)
		memcpy(dst, p, n);
}

static inline void kwrite_i8(struct kwrite *w, int8_t v)
{
	uint8_t *p = kwrite_reserve(w, 1);
	if (p != NULL)
		p[0] = (uint8_t)v;
}

static inline void kwrite_bool(struct kwrite *w, bool v)
{
	kwrite_i8(w, v ? 1 : 0);
}

static inline void kwrite_i16(struct kwrite *w, int16_t v)
{
	uint8_t *p = kwrite_reserve(w, 2);
	if (p != NULL)
		be16_store(p, (uint16_t)v);
}

static inline void kwrite_u16(struct kwrite *w, uint16_t v)
{
	uint8_t *p = kwrite_reserve(w, 2);
	if (p != NULL)
		be16_store(p, v);
}

static inline void kwrite_i32(struct kwrite *w, int32_t v)
{
	uint8_t *p = kwrite_reserve(w, 4);
	if (p != NULL)
		be32_store(p, (uint32_t)v);
}

static inline void kwrite_u32(struct kwrite *w, uint32_t v)
{
	uint8_t *p = kwrite_reserve(w, 4);
	if (p != NULL)
		be32_store(p, v);
}

static inline void kwrite_i64(struct kwrite *w, int64_t v)
{
	uint8_t *p = kwrite_reserve(w, 8);
	if (p != NULL)
		be64_store(p, (uint64_t)v);
}

static inline void kwrite_f64(struct kwrite *w, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	kwrite_i64(w, (int64_t)bits);
}

static inline void kwrite_uuid(struct kwrite *w, const struct kuuid *u)
{
	kwrite_raw(w, u->b, sizeof(u->b));
}

/* Encoded size of an unsigned varint (1..5). */
static inline size_t kwrite_uvarint_bytes(uint32_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

void kwrite_uvarint(struct kwrite *w, uint32_t v);

/*
 * STRING / NULLABLE_STRING (int16 length) or the COMPACT_ forms. Null
 * without KFMT_NULLABLE, a non-compact string over 32767 bytes, or
 * len > 0 with ptr NULL are SL_EINVAL.
 */
void kwrite_string(struct kwrite *w, struct kslice s, unsigned fmt);
/* BYTES (int32 length) or COMPACT_BYTES; same rules. */
void kwrite_bytes(struct kwrite *w, struct kslice s, unsigned fmt);
/* RECORDS: as bytes, but a deferred slice leaves a hole (see above). */
void kwrite_records(struct kwrite *w, const struct kslice *s, unsigned fmt);
/* An array count (-1 = null, only with KFMT_NULLABLE). */
void kwrite_array_len(struct kwrite *w, int32_t count, unsigned fmt);

void kwrite_array_i16(struct kwrite *w, const struct karray_i16 *a, unsigned fmt);
void kwrite_array_i32(struct kwrite *w, const struct karray_i32 *a, unsigned fmt);
void kwrite_array_i64(struct kwrite *w, const struct karray_i64 *a, unsigned fmt);
void kwrite_array_str(struct kwrite *w, const struct karray_str *a, unsigned fmt);
void kwrite_array_uuid(struct kwrite *w, const struct karray_uuid *a, unsigned fmt);

/*
 * A tagged field's data: kwrite_tag_begin reserves room for its size and
 * returns a mark; the caller writes the data; kwrite_tag_end stores the
 * size in front of it (shifting the data down by the unused varint bytes).
 */
size_t kwrite_tag_begin(struct kwrite *w);
void kwrite_tag_end(struct kwrite *w, size_t mark);

/*
 * A size-prefixed frame: begin writes a 4-byte placeholder and returns its
 * offset; end stores the number of bytes after it, hole bytes included.
 * A frame over INT32_MAX bytes is SL_EINVAL.
 */
size_t kwrite_frame_begin(struct kwrite *w);
void kwrite_frame_end(struct kwrite *w, size_t mark);

#endif
