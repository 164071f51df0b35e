/*
 * kwrite.c — the out-of-line half of the Kafka wire writer (kwrite.h):
 * buffer growth under the cap, varints, strings/bytes/records with holes,
 * arrays, tagged-field sizes and frame size prefixes.
 *
 * Every function keeps the invariants of kwrite.h: nothing is written once
 * w->err is set, len never passes size_max, holes stay in offset order.
 */
#include "kwrite.h"

#include <stdlib.h>

#define KWRITE_CAP_MIN 256
#define KWRITE_TAG_SIZE_BYTES 5   /* room reserved for a tagged field's size */

void kwrite_init(struct kwrite *w, size_t size_max)
{
	SL_ASSERT(w != NULL);
	memset(w, 0, sizeof(*w));
	w->size_max = size_max;
	w->mode = KWRITE_HEAP;
}

void kwrite_init_fixed(struct kwrite *w, void *buf, size_t size)
{
	SL_ASSERT(w != NULL);
	SL_ASSERT(buf != NULL || size == 0);
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = size;
	w->size_max = size;
	w->mode = KWRITE_FIXED;
}

void kwrite_holes_set(struct kwrite *w, struct kwrite_hole *holes, uint32_t hole_cap)
{
	SL_ASSERT(w != NULL && w->hole_count == 0);
	SL_ASSERT(holes != NULL || hole_cap == 0);
	w->holes = holes;
	w->hole_cap = hole_cap;
}

void kwrite_reset(struct kwrite *w)
{
	SL_ASSERT(w != NULL);
	w->len = 0;
	w->err = SL_OK;
	w->hole_count = 0;
	w->hole_bytes = 0;
}

void kwrite_destroy(struct kwrite *w)
{
	SL_ASSERT(w != NULL);
	if (w->mode == KWRITE_HEAP)
		free(w->buf);
	w->buf = NULL;
	w->len = 0;
	w->cap = 0;
	w->holes = NULL;
	w->hole_count = 0;
	w->hole_cap = 0;
}

/*
 * Makes room for `n` more bytes. A growable buffer doubles (at least
 * KWRITE_CAP_MIN) but never beyond size_max; past the cap, or when realloc
 * fails, the writer fails with SL_ENOMEM and keeps what it had.
 */
uint8_t *kwrite_reserve(struct kwrite *w, size_t n)
{
	size_t need;
	uint8_t *p;

	if (w->err != SL_OK)
		return NULL;
	if (__builtin_add_overflow(w->len, n, &need) || need > w->size_max) {
		kwrite_fail(w, SL_ENOMEM);
		return NULL;
	}
	if (need > w->cap) {
		size_t cap = w->cap < KWRITE_CAP_MIN ? KWRITE_CAP_MIN : w->cap;
		uint8_t *buf;

		SL_ASSERT(w->mode == KWRITE_HEAP);
		while (cap < need && cap <= SIZE_MAX / 2)
			cap *= 2;
		if (cap < need || cap > w->size_max)
			cap = w->size_max;
		buf = realloc(w->buf, cap);
		if (buf == NULL) {
			kwrite_fail(w, SL_ENOMEM);
			return NULL;
		}
		w->buf = buf;
		w->cap = cap;
	}
	p = w->buf + w->len;
	w->len = need;
	SL_ASSERT(w->len <= w->cap && w->cap <= w->size_max);
	return p;
}

void kwrite_uvarint(struct kwrite *w, uint32_t v)
{
	size_t n = kwrite_uvarint_bytes(v);
	uint8_t *p = kwrite_reserve(w, n);

	if (p == NULL)
		return;
	for (size_t i = 0; i + 1 < n; i++) {
		p[i] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n - 1] = (uint8_t)v;
	SL_ASSERT(v < 0x80);
}

/*
 * Writes a length prefix for `len` (-1 = null): int16 or int32 when not
 * compact, varint len + 1 when compact. Returns false (w->err set) when
 * the value cannot be written in this form.
 */
static bool kwrite_len(struct kwrite *w, int32_t len, unsigned fmt, int32_t len_max)
{
	if (len < -1 || (len == -1 && !(fmt & KFMT_NULLABLE))) {
		kwrite_fail(w, SL_EINVAL);
		return false;
	}
	if (fmt & KFMT_COMPACT) {
		kwrite_uvarint(w, (uint32_t)((int64_t)len + 1));
		return true;
	}
	if (len > len_max) {
		kwrite_fail(w, SL_EINVAL);
		return false;
	}
	if (len_max == INT16_MAX)
		kwrite_i16(w, (int16_t)len);
	else
		kwrite_i32(w, len);
	return true;
}

static void kwrite_slice(struct kwrite *w, struct kslice s, unsigned fmt, int32_t len_max)
{
	if (s.len > 0 && s.ptr == NULL) {
		kwrite_fail(w, SL_EINVAL);
		return;
	}
	if (kwrite_len(w, s.len, fmt, len_max) && s.len > 0)
		kwrite_raw(w, s.ptr, (size_t)s.len);
}

void kwrite_string(struct kwrite *w, struct kslice s, unsigned fmt)
{
	kwrite_slice(w, s, fmt, INT16_MAX);
}

void kwrite_bytes(struct kwrite *w, struct kslice s, unsigned fmt)
{
	kwrite_slice(w, s, fmt, INT32_MAX);
}

void kwrite_records(struct kwrite *w, const struct kslice *s, unsigned fmt)
{
	struct kwrite_hole *h;

	SL_ASSERT(s != NULL);
	if (s->ptr != NULL || s->len <= 0) {
		kwrite_slice(w, *s, fmt, INT32_MAX);
		return;
	}
	/* Deferred: the length now, the bytes later from the caller. */
	if (!kwrite_len(w, s->len, fmt, INT32_MAX) || w->err != SL_OK)
		return;
	if (w->holes == NULL) {
		kwrite_fail(w, SL_EINVAL);
		return;
	}
	if (w->hole_count == w->hole_cap) {
		kwrite_fail(w, SL_ENOMEM);
		return;
	}
	SL_ASSERT(w->hole_count == 0 || w->holes[w->hole_count - 1].offset <= w->len);
	h = &w->holes[w->hole_count++];
	h->offset = w->len;
	h->len = s->len;
	h->src = s;
	w->hole_bytes += (uint64_t)s->len;
}

void kwrite_array_len(struct kwrite *w, int32_t count, unsigned fmt)
{
	(void)kwrite_len(w, count, fmt, INT32_MAX);
}

/* Arrays of primitives: count, then each element; items must exist. */
#define KWRITE_ARRAY_BODY(write_one)                                      \
	do {                                                              \
		if (a->count > 0 && a->items == NULL) {                   \
			kwrite_fail(w, SL_EINVAL);                        \
			return;                                           \
		}                                                         \
		kwrite_array_len(w, a->count, fmt);                       \
		for (int32_t i = 0; i < a->count && w->err == SL_OK; i++) \
			write_one;                                        \
	} while (0)

void kwrite_array_i16(struct kwrite *w, const struct karray_i16 *a, unsigned fmt)
{
	KWRITE_ARRAY_BODY(kwrite_i16(w, a->items[i]));
}

void kwrite_array_i32(struct kwrite *w, const struct karray_i32 *a, unsigned fmt)
{
	KWRITE_ARRAY_BODY(kwrite_i32(w, a->items[i]));
}

void kwrite_array_i64(struct kwrite *w, const struct karray_i64 *a, unsigned fmt)
{
	KWRITE_ARRAY_BODY(kwrite_i64(w, a->items[i]));
}

void kwrite_array_str(struct kwrite *w, const struct karray_str *a, unsigned fmt)
{
	KWRITE_ARRAY_BODY(kwrite_string(w, a->items[i], fmt & KFMT_COMPACT));
}

void kwrite_array_uuid(struct kwrite *w, const struct karray_uuid *a, unsigned fmt)
{
	KWRITE_ARRAY_BODY(kwrite_uuid(w, &a->items[i]));
}

size_t kwrite_tag_begin(struct kwrite *w)
{
	size_t mark = w->len;

	(void)kwrite_reserve(w, KWRITE_TAG_SIZE_BYTES);
	return mark;
}

/*
 * The data after the reserved size bytes is now complete: store its size
 * as a varint at `mark` and move the data down over the unused bytes.
 */
void kwrite_tag_end(struct kwrite *w, size_t mark)
{
	size_t data;
	size_t k;

	if (w->err != SL_OK)
		return;
	SL_ASSERT(mark + KWRITE_TAG_SIZE_BYTES <= w->len);
	if (w->hole_count > 0 && w->holes[w->hole_count - 1].offset > mark) {
		kwrite_fail(w, SL_EINVAL);   /* its size would miss the hole */
		return;
	}
	data = w->len - mark - KWRITE_TAG_SIZE_BYTES;
	if (data > UINT32_MAX) {
		kwrite_fail(w, SL_EINVAL);
		return;
	}
	k = kwrite_uvarint_bytes((uint32_t)data);
	w->len = mark;
	kwrite_uvarint(w, (uint32_t)data);   /* fits: the 5 bytes were ours */
	SL_ASSERT(w->len == mark + k);
	memmove(w->buf + mark + k, w->buf + mark + KWRITE_TAG_SIZE_BYTES, data);
	w->len = mark + k + data;
}

size_t kwrite_frame_begin(struct kwrite *w)
{
	size_t mark = w->len;

	kwrite_i32(w, 0);
	return mark;
}

void kwrite_frame_end(struct kwrite *w, size_t mark)
{
	uint64_t bytes;

	if (w->err != SL_OK)
		return;
	SL_ASSERT(mark + 4 <= w->len);
	bytes = w->len - mark - 4;
	for (uint32_t i = 0; i < w->hole_count; i++) {
		if (w->holes[i].offset >= mark + 4)
			bytes += (uint64_t)w->holes[i].len;
	}
	if (bytes > INT32_MAX) {
		kwrite_fail(w, SL_EINVAL);
		return;
	}
	be32_store(w->buf + mark, (uint32_t)bytes);
}
