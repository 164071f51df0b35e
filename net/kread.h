/*
 * kread.h — the Kafka wire reader: a bounds-checked cursor with a sticky
 * error, the value types the generated codec (kafka_codec.h) is made of, and
 * karena, the bounded bump allocator decoded messages live in.
 *
 * Wire encodings (Kafka protocol guide, "Protocol Primitive Types"): all
 * fixed-width integers are big-endian; STRING has an int16 length, BYTES
 * and RECORDS an int32 length, ARRAY an int32 count, each -1 = null where
 * the field is nullable. Flexible versions use the COMPACT_ forms: an
 * unsigned varint holding length + 1 (0 = null). An unsigned varint is 7
 * bits per byte, low group first, high bit set on every byte but the last,
 * at most 5 bytes for 32 bits. A tagged-field section is an unsigned varint
 * count, then per field its tag, its size and size bytes of data.
 *
 * Invariants:
 *  1. r->p <= r->end always; no read touches a byte outside [p, end).
 *  2. The error is sticky: once r->err != SL_OK it never changes again,
 *     every read returns zero / an empty slice and p stays where it was.
 *     Callers run a whole block of reads and check r->err once.
 *  3. Slices (strings, bytes, records) point into the buffer given to
 *     kread_init; nothing is copied. That buffer must outlive the decoded
 *     message.
 *  4. No count or length from the wire is trusted: each is checked against
 *     the bytes left and KREAD_COUNT_MAX before anything is allocated, and
 *     memory comes only from a karena, which has a hard cap. A count of 2^31
 *     fails without allocating a byte.
 *
 * Errors: SL_ETRUNC when a value runs past the end of the buffer (inside a
 * complete frame this means the frame is malformed); SL_ECORRUPT for bytes
 * that can never be valid (an over-long varint, a negative length other
 * than -1, null in a non-nullable field, a count above KREAD_COUNT_MAX, a
 * tagged field whose size disagrees with its content); SL_ENOMEM when the
 * arena is full; SL_EINVAL for a version the schema does not define.
 *
 * karena states: karena_init / karena_init_heap -> in use (karena_alloc)
 * -> karena_reset (empty again, same memory) -> karena_destroy.
 *
 * Runs on: any thread; a kread and a karena belong to one thread at a time.
 */
#ifndef SL_KREAD_H
#define SL_KREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"
#include "sl.h"

/* Most elements one wire array may claim, whatever the bytes left. */
#define KREAD_COUNT_MAX (1 << 20)

/* Encoding flags shared by kread and kwrite (kwrite.h). */
enum kfmt {
	KFMT_COMPACT = 1u << 0,   /* flexible version: varint length + 1 */
	KFMT_NULLABLE = 1u << 1,  /* null (-1 / 0) is allowed here */
};

/*
 * A string, bytes or records value: `len` bytes at `ptr`, or null when
 * len == -1. Decoded slices point into the receive buffer. For a records
 * field being encoded, ptr == NULL with len > 0 means "deferred": the
 * writer emits only the length and leaves a hole (kwrite.h).
 */
struct kslice {
	const uint8_t *ptr;
	int32_t len;
};

#define KSLICE_NULL ((struct kslice){ NULL, -1 })
#define KSLICE_EMPTY ((struct kslice){ NULL, 0 })
/* A slice over a string literal (no NUL). */
#define KSLICE_LIT(s) ((struct kslice){ (const uint8_t *)(s), (int32_t)(sizeof(s) - 1) })
/* A records value whose `n` > 0 bytes the caller sends itself (kwrite.h). */
#define KSLICE_DEFERRED(n) ((struct kslice){ NULL, (n) })

/* A Kafka uuid: 16 bytes, in wire order. All zero = "no id". */
struct kuuid {
	uint8_t b[16];
};

/* Arrays of primitives; count -1 = null, items has count entries. */
struct karray_i16 {
	int32_t count;
	int16_t *items;
};
struct karray_i32 {
	int32_t count;
	int32_t *items;
};
struct karray_i64 {
	int32_t count;
	int64_t *items;
};
struct karray_str {
	int32_t count;
	struct kslice *items;
};
struct karray_uuid {
	int32_t count;
	struct kuuid *items;
};

/* Bump allocator over one block of memory with a hard size. */
enum karena_owner {
	KARENA_BORROWED = 0,  /* the caller owns `base` */
	KARENA_HEAP,          /* karena_init_heap malloc'd it; destroy frees it */
};

struct karena {
	uint8_t *base;
	size_t used;   /* bytes handed out, alignment padding included */
	size_t size;   /* hard cap: used <= size always */
	enum karena_owner owner;
};

struct kread {
	const uint8_t *p;
	const uint8_t *end;
	enum sl_err err;
};

/* Arena over caller memory `mem` of `size` bytes (borrowed until destroy). */
void karena_init(struct karena *a, void *mem, size_t size);
/* Arena over one malloc'd block of `size` bytes. SL_OK or SL_ENOMEM. */
enum sl_err karena_init_heap(struct karena *a, size_t size);
/* `size` zeroed bytes aligned for any type, or NULL when the cap is hit. */
void *karena_alloc(struct karena *a, size_t size);
/* Forgets every allocation; the memory is reused. */
void karena_reset(struct karena *a);
/* Frees the block if karena_init_heap made it. */
void karena_destroy(struct karena *a);

static inline void kread_init(struct kread *r, const void *buf, size_t len)
{
	SL_ASSERT(buf != NULL || len == 0);
	r->p = buf;
	/* NULL + 0 is undefined in C: an empty message may have no buffer. */
	r->end = len > 0 ? r->p + len : r->p;
	r->err = SL_OK;
}

static inline size_t kread_left(const struct kread *r)
{
	return (size_t)(r->end - r->p);
}

/* Sets the sticky error (the first error wins). */
static inline void kread_fail(struct kread *r, enum sl_err err)
{
	SL_ASSERT(err != SL_OK);
	if (r->err == SL_OK)
		r->err = err;
}

/* Consumes `n` bytes and returns where they start, or NULL on error. */
static inline const uint8_t *kread_take(struct kread *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->err != SL_OK)
		return NULL;
	if (n > kread_left(r)) {
		kread_fail(r, SL_ETRUNC);
		return NULL;
	}
	r->p += n;
	return p;
}

static inline int8_t kread_i8(struct kread *r)
{
	const uint8_t *p = kread_take(r, 1);
	return p ? (int8_t)p[0] : 0;
}

/* Any non-zero byte is true, as the Java client reads it. */
static inline bool kread_bool(struct kread *r)
{
	return kread_i8(r) != 0;
}

static inline int16_t kread_i16(struct kread *r)
{
	const uint8_t *p = kread_take(r, 2);
	return p ? (int16_t)be16_load(p) : 0;
}

static inline uint16_t kread_u16(struct kread *r)
{
	const uint8_t *p = kread_take(r, 2);
	return p ? be16_load(p) : 0;
}

static inline int32_t kread_i32(struct kread *r)
{
	const uint8_t *p = kread_take(r, 4);
	return p ? (int32_t)be32_load(p) : 0;
}

static inline uint32_t kread_u32(struct kread *r)
{
	const uint8_t *p = kread_take(r, 4);
	return p ? be32_load(p) : 0;
}

static inline int64_t kread_i64(struct kread *r)
{
	const uint8_t *p = kread_take(r, 8);
	return p ? (int64_t)be64_load(p) : 0;
}

static inline double kread_f64(struct kread *r)
{
	const uint8_t *p = kread_take(r, 8);
	uint64_t bits = p ? be64_load(p) : 0;
	double d;

	memcpy(&d, &bits, sizeof(d));
	return d;
}

static inline struct kuuid kread_uuid(struct kread *r)
{
	struct kuuid u = { { 0 } };
	const uint8_t *p = kread_take(r, sizeof(u.b));

	if (p != NULL)
		memcpy(u.b, p, sizeof(u.b));
	return u;
}

/* Consumes everything left (an unknown tagged field's data). */
static inline void kread_skip_rest(struct kread *r)
{
	if (r->err == SL_OK)
		r->p = r->end;
}

/* An unsigned varint of at most 5 bytes / 32 bits. */
uint32_t kread_uvarint(struct kread *r);

/* STRING / NULLABLE_STRING, or COMPACT_ forms with KFMT_COMPACT. */
struct kslice kread_string(struct kread *r, unsigned fmt);
/* BYTES / RECORDS (int32 length), or COMPACT_ forms with KFMT_COMPACT. */
struct kslice kread_bytes(struct kread *r, unsigned fmt);

/*
 * An array count: -1 for null (only with KFMT_NULLABLE), else 0..count.
 * Each element needs at least `elem_bytes_min` (>= 1) bytes, so a count
 * the bytes left cannot hold fails with SL_ETRUNC, and one above
 * KREAD_COUNT_MAX with SL_ECORRUPT, before anyone allocates.
 */
int32_t kread_array_len(struct kread *r, unsigned fmt, size_t elem_bytes_min);

/*
 * Zeroed room for `count` elements of `elem_size` from `a`; NULL when
 * count <= 0 or r->err is set. A full arena sets SL_ENOMEM.
 */
void *kread_alloc(struct kread *r, struct karena *a, int32_t count, size_t elem_size);

/* Whole arrays of primitives (count, then elements). */
void kread_array_i16(struct kread *r, unsigned fmt, struct karena *a, struct karray_i16 *out);
void kread_array_i32(struct kread *r, unsigned fmt, struct karena *a, struct karray_i32 *out);
void kread_array_i64(struct kread *r, unsigned fmt, struct karena *a, struct karray_i64 *out);
void kread_array_str(struct kread *r, unsigned fmt, struct karena *a, struct karray_str *out);
void kread_array_uuid(struct kread *r, unsigned fmt, struct karena *a, struct karray_uuid *out);

/* The count of a tagged-field section (checked against the bytes left). */
uint32_t kread_tags_count(struct kread *r);
/*
 * Reads one field's tag and size, points `t` at its size bytes and moves r
 * past them. Returns the tag (UINT32_MAX after an error, with t empty).
 */
uint32_t kread_tag_begin(struct kread *r, struct kread *t);
/* Carries t's error into r; a known field must consume exactly its size. */
void kread_tag_end(struct kread *r, const struct kread *t);
/* Skips a whole tagged-field section (a struct with no known tags). */
void kread_tags_skip(struct kread *r);

#endif
