/*
 * sendq.h — a connection's responses in request order, and the cursor
 * that turns them into socket operations (pure: no I/O here).
 *
 * Every request gets an item when it is read (sendq_push), so the queue
 * order is the request order. An item becomes READY when its handler has
 * produced the response (or decided there is none: acks=0). Only a READY
 * prefix of the queue is ever sent, so a response that is ready early
 * waits behind earlier requests: responses leave in request order, as
 * Kafka requires, even when later requests finish first.
 *
 * A response is an encoded buffer with "holes" (kwrite.h): pieces
 *   mem 0 = buf[0, holes[0].offset), file 0 = files[0] (holes[0].len bytes),
 *   mem 1 = buf[holes[0].offset, holes[1].offset), file 1, ...,
 *   mem h = buf[holes[h-1].offset, len)
 * i.e. 2h + 1 pieces, memory at even indices, file ranges at odd ones.
 * sendq_next offers either up to `iov_max` memory ranges (gathered across
 * pieces and across consecutive READY items: one sendmsg for many small
 * responses) or one file range (spliced to the socket); sendq_advance
 * moves the cursors by the bytes the socket took.
 *
 * Invariants:
 *   1. Items are in push order; only items in the READY prefix have a
 *      cursor other than (0, 0).
 *   2. An item's cursor never points at an empty piece unless it is at
 *      the end (piece == 2h + 1): empty pieces are skipped eagerly.
 *   3. sendq_pop returns only the head, only when READY and fully sent.
 *
 * Runs on: the connection's shard.
 */
#ifndef SL_NET_SENDQ_H
#define SL_NET_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kwrite.h"
#include "sl.h"

/* A byte range of a file, sent without copying it through user space. */
struct sendq_file {
	int fd;
	int64_t pos;
	uint32_t len;
};

enum sendq_state {
	SENDQ_PENDING = 0,   /* the handler is still working */
	SENDQ_READY,         /* response encoded (or none) */
};

struct sendq_item {
	struct sendq_item *next;
	enum sendq_state state;
	const uint8_t *buf;
	size_t len;
	const struct kwrite_hole *holes;
	const struct sendq_file *files;
	uint32_t hole_count;
	uint32_t piece;       /* cursor: piece index, 0 .. 2 * hole_count + 1 */
	size_t piece_off;     /* cursor: bytes of that piece already sent */
};

struct sendq {
	struct sendq_item *head, *tail;
	uint32_t count;
	uint64_t bytes_sent;
};

enum sendq_kind {
	SENDQ_IDLE = 0,      /* nothing sendable now */
	SENDQ_MEM,           /* iov[0, iov_count), `bytes` in all */
	SENDQ_FILE,          /* `file` */
};

struct sendq_next {
	enum sendq_kind kind;
	uint32_t iov_count;
	size_t bytes;
	struct sendq_file file;
};

void sendq_init(struct sendq *q);

/* Appends `it` (PENDING) at the tail. */
void sendq_push(struct sendq *q, struct sendq_item *it);

/*
 * Marks `it` READY with its response: `len` bytes at `buf` and
 * `hole_count` holes whose bytes come from files[i] (same order, same
 * lengths: asserted). buf NULL / len 0 / no holes: no response.
 * The memory is borrowed until the item is popped.
 */
void sendq_item_ready(struct sendq_item *it, const uint8_t *buf, size_t len,
		      const struct kwrite_hole *holes, const struct sendq_file *files,
		      uint32_t hole_count);

/* What to send next (see the file comment). */
void sendq_next(const struct sendq *q, struct iovec *iov, uint32_t iov_max,
		struct sendq_next *out);

/* The socket took `n` bytes of what sendq_next offered (n <= its size). */
void sendq_advance(struct sendq *q, size_t n);

/* True when `it` is READY and every piece has been sent. */
bool sendq_item_done(const struct sendq_item *it);

/* Unlinks and returns the head if it is done (invariant 3), else NULL. */
struct sendq_item *sendq_pop(struct sendq *q);

/* Unlinks `it` wherever it is (closing connection: order no longer matters). */
void sendq_remove(struct sendq *q, struct sendq_item *it);

#endif
