/*
 * kread.c — the out-of-line half of the Kafka wire reader (kread.h): varints,
 * strings and bytes, array counts, primitive arrays, tagged-field sections,
 * and the karena bump allocator.
 *
 * Every function here keeps the invariants of kread.h: it checks r->err
 * before reading, never reads past r->end, and validates a length or count
 * against the bytes left before using it.
 */
#include "kread.h"

#include <stdlib.h>

#define KREAD_UVARINT_BYTES_MAX 5
#define KARENA_ALIGN _Alignof(max_align_t)

_Static_assert((KARENA_ALIGN & (KARENA_ALIGN - 1)) == 0, "alignment is a power of two");
_Static_assert(KREAD_COUNT_MAX > 0 && KREAD_COUNT_MAX <= INT32_MAX / 16, "count cap fits int32");

void karena_init(struct karena *a, void *mem, size_t size)
{
	SL_ASSERT(a != NULL);
	SL_ASSERT(mem != NULL || size == 0);
	a->base = mem;
	a->used = 0;
	a->size = size;
	a->owner = KARENA_BORROWED;
}

enum sl_err karena_init_heap(struct karena *a, size_t size)
{
	SL_ASSERT(a != NULL);
	karena_init(a, NULL, 0);
	if (size == 0)
		return SL_OK;
	a->base = malloc(size);
	if (a->base == NULL)
		return SL_ENOMEM;
	a->size = size;
	a->owner = KARENA_HEAP;
	return SL_OK;
}

/*
 * Hands out `size` zeroed bytes at the next aligned offset. Returns NULL,
 * and changes nothing, when they do not fit under the cap.
 */
void *karena_alloc(struct karena *a, size_t size)
{
	size_t start;
	uint8_t *p;

	SL_ASSERT(a != NULL && size > 0);
	SL_ASSERT(a->used <= a->size);
	if (a->base == NULL)
		return NULL;
	/* Align the address, not the offset: caller memory may start anywhere. */
	start = a->used + ((KARENA_ALIGN - ((uintptr_t)a->base + a->used) % KARENA_ALIGN)
			   % KARENA_ALIGN);
	if (start > a->size || size > a->size - start)
		return NULL;
	p = a->base + start;
	memset(p, 0, size);
	a->used = start + size;
	SL_ASSERT(a->used <= a->size);
	return p;
}

void karena_reset(struct karena *a)
{
	SL_ASSERT(a != NULL);
	a->used = 0;
}

void karena_destroy(struct karena *a)
{
	SL_ASSERT(a != NULL);
	if (a->owner == KARENA_HEAP)
		free(a->base);
	karena_init(a, NULL, 0);
}

/*
 * Reads an unsigned varint of at most 5 bytes. A fifth byte with a
 * continuation bit or with bits above 2^32 is SL_ECORRUPT.
 */
uint32_t kread_uvarint(struct kread *r)
{
	uint32_t v = 0;

	for (int i = 0; i < KREAD_UVARINT_BYTES_MAX; i++) {
		const uint8_t *p = kread_take(r, 1);

		if (p == NULL)
			return 0;
		if (i == KREAD_UVARINT_BYTES_MAX - 1 && (p[0] & 0xf0) != 0) {
			kread_fail(r, SL_ECORRUPT);
			return 0;
		}
		v |= (uint32_t)(p[0] & 0x7f) << (7 * i);
		if ((p[0] & 0x80) == 0)
			return v;
	}
	SL_ASSERT(0 && "unreachable: the fifth byte ends the varint");
	return 0;
}

/*
 * Reads a length prefix: int16 (STRING) or int32 (BYTES) when not compact,
 * else a varint of length + 1. Returns -1 for null, the length otherwise,
 * or 0 with r->err set. Null without KFMT_NULLABLE and negative lengths
 * other than null are SL_ECORRUPT; a length past the end is SL_ETRUNC.
 */
static int32_t kread_len(struct kread *r, unsigned fmt, int wide)
{
	int64_t len;

	if (fmt & KFMT_COMPACT)
		len = (int64_t)kread_uvarint(r) - 1;
	else
		len = wide ? kread_i32(r) : kread_i16(r);
	if (r->err != SL_OK)
		return 0;
	if (len == -1 && (fmt & KFMT_NULLABLE))
		return -1;
	if (len < 0 || len > INT32_MAX) {
		kread_fail(r, SL_ECORRUPT);
		return 0;
	}
	if ((uint64_t)len > kread_left(r)) {
		kread_fail(r, SL_ETRUNC);
		return 0;
	}
	return (int32_t)len;
}

static struct kslice kread_slice(struct kread *r, unsigned fmt, int wide)
{
	struct kslice s = KSLICE_EMPTY;
	int32_t len = kread_len(r, fmt, wide);

	if (r->err != SL_OK)
		return s;
	if (len < 0)
		return KSLICE_NULL;
	s.ptr = kread_take(r, (size_t)len);
	s.len = len;
	SL_ASSERT(s.ptr != NULL);
	return s;
}

struct kslice kread_string(struct kread *r, unsigned fmt)
{
	return kread_slice(r, fmt, 0);
}

struct kslice kread_bytes(struct kread *r, unsigned fmt)
{
	return kread_slice(r, fmt, 1);
}

int32_t kread_array_len(struct kread *r, unsigned fmt, size_t elem_bytes_min)
{
	int64_t count;

	SL_ASSERT(elem_bytes_min >= 1);
	if (fmt & KFMT_COMPACT)
		count = (int64_t)kread_uvarint(r) - 1;
	else
		count = kread_i32(r);
	if (r->err != SL_OK)
		return 0;
	if (count == -1 && (fmt & KFMT_NULLABLE))
		return -1;
	if (count < 0 || count > KREAD_COUNT_MAX) {
		kread_fail(r, SL_ECORRUPT);
		return 0;
	}
	if ((uint64_t)count > kread_left(r) / elem_bytes_min) {
		kread_fail(r, SL_ETRUNC);
		return 0;
	}
	return (int32_t)count;
}

void *kread_alloc(struct kread *r, struct karena *a, int32_t count, size_t elem_size)
{
	size_t bytes;
	void *p;

	SL_ASSERT(a != NULL && elem_size > 0);
	if (r->err != SL_OK || count <= 0)
		return NULL;
	SL_ASSERT(count <= KREAD_COUNT_MAX);
	if (__builtin_mul_overflow((size_t)count, elem_size, &bytes)) {
		kread_fail(r, SL_ENOMEM);
		return NULL;
	}
	p = karena_alloc(a, bytes);
	if (p == NULL)
		kread_fail(r, SL_ENOMEM);
	return p;
}

/*
 * The primitive arrays share one shape: count, room, elements. On any
 * error the count is left at 0 so that `items` never claims more entries
 * than were allocated.
 */
#define KREAD_ARRAY_BODY(elem_bytes, read_one)                               \
	do {                                                                 \
		int32_t n = kread_array_len(r, fmt, (elem_bytes));           \
		out->items = kread_alloc(r, a, n, sizeof(*out->items));      \
		out->count = r->err == SL_OK ? n : 0;                        \
		for (int32_t i = 0; i < out->count && r->err == SL_OK; i++)  \
			out->items[i] = (read_one);                          \
	} while (0)

void kread_array_i16(struct kread *r, unsigned fmt, struct karena *a, struct karray_i16 *out)
{
	KREAD_ARRAY_BODY(2, kread_i16(r));
}

void kread_array_i32(struct kread *r, unsigned fmt, struct karena *a, struct karray_i32 *out)
{
	KREAD_ARRAY_BODY(4, kread_i32(r));
}

void kread_array_i64(struct kread *r, unsigned fmt, struct karena *a, struct karray_i64 *out)
{
	KREAD_ARRAY_BODY(8, kread_i64(r));
}

void kread_array_str(struct kread *r, unsigned fmt, struct karena *a, struct karray_str *out)
{
	/* An element is at least its length prefix: 1 byte compact, else 2. */
	KREAD_ARRAY_BODY((fmt & KFMT_COMPACT) ? 1 : 2,
			 kread_string(r, fmt & KFMT_COMPACT));
}

void kread_array_uuid(struct kread *r, unsigned fmt, struct karena *a, struct karray_uuid *out)
{
	KREAD_ARRAY_BODY(16, kread_uuid(r));
}

uint32_t kread_tags_count(struct kread *r)
{
	uint32_t n = kread_uvarint(r);

	/* Each field takes at least two bytes: its tag and its size. */
	if (r->err == SL_OK && n > kread_left(r) / 2) {
		kread_fail(r, SL_ETRUNC);
		return 0;
	}
	return n;
}

uint32_t kread_tag_begin(struct kread *r, struct kread *t)
{
	uint32_t tag = kread_uvarint(r);
	uint32_t size = kread_uvarint(r);
	const uint8_t *data = kread_take(r, size);

	if (data == NULL) {
		t->p = r->p;
		t->end = r->p;
		t->err = r->err;
		SL_ASSERT(r->err != SL_OK);
		return UINT32_MAX;
	}
	t->p = data;
	t->end = data + size;
	t->err = SL_OK;
	SL_ASSERT(t->end <= r->end);
	return tag;
}

void kread_tag_end(struct kread *r, const struct kread *t)
{
	if (t->err != SL_OK)
		kread_fail(r, t->err);
	else if (t->p != t->end)
		kread_fail(r, SL_ECORRUPT);
}

void kread_tags_skip(struct kread *r)
{
	uint32_t n = kread_tags_count(r);

	for (uint32_t i = 0; i < n && r->err == SL_OK; i++) {
		struct kread t;

		(void)kread_tag_begin(r, &t);
		kread_skip_rest(&t);
		kread_tag_end(r, &t);
	}
}
