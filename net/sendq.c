/*
 * sendq.c — see sendq.h.
 */
#include "sendq.h"

#include <string.h>

/* Upper bound on pieces walked by one sendq_next / sendq_advance. */
#define SENDQ_WALK_MAX (1u << 22)

static uint32_t sendq_pieces(const struct sendq_item *it)
{
	return 2 * it->hole_count + 1;
}

static bool sendq_piece_is_file(uint32_t piece)
{
	return (piece & 1) != 0;
}

/* Start of memory piece 2k in buf. */
static size_t sendq_mem_start(const struct sendq_item *it, uint32_t piece)
{
	uint32_t k = piece / 2;

	return k == 0 ? 0 : it->holes[k - 1].offset;
}

static size_t sendq_piece_size(const struct sendq_item *it, uint32_t piece)
{
	uint32_t k = piece / 2;

	SL_ASSERT(piece < sendq_pieces(it));
	if (sendq_piece_is_file(piece))
		return it->files[k].len;
	size_t end = k < it->hole_count ? it->holes[k].offset : it->len;
	return end - sendq_mem_start(it, piece);
}

/* Moves the cursor past empty pieces (invariant 2). */
static void sendq_item_skip_empty(struct sendq_item *it)
{
	uint32_t n = sendq_pieces(it);

	while (it->piece < n && it->piece_off == sendq_piece_size(it, it->piece)) {
		it->piece++;
		it->piece_off = 0;
	}
}

void sendq_init(struct sendq *q)
{
	memset(q, 0, sizeof(*q));
}

void sendq_push(struct sendq *q, struct sendq_item *it)
{
	memset(it, 0, sizeof(*it));
	it->state = SENDQ_PENDING;
	if (q->tail != NULL)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->count++;
	SL_ASSERT(q->head != NULL && q->tail == it);
}

void sendq_item_ready(struct sendq_item *it, const uint8_t *buf, size_t len,
		      const struct kwrite_hole *holes, const struct sendq_file *files,
		      uint32_t hole_count)
{
	SL_ASSERT(it->state == SENDQ_PENDING && it->piece == 0 && it->piece_off == 0);
	SL_ASSERT(hole_count == 0 || (holes != NULL && files != NULL));
	for (uint32_t i = 0; i < hole_count; i++) {
		SL_ASSERT(holes[i].len >= 0 && (uint32_t)holes[i].len == files[i].len);
		SL_ASSERT(holes[i].offset <= len && (i == 0 || holes[i - 1].offset <= holes[i].offset));
	}
	it->buf = buf;
	it->len = buf != NULL ? len : 0;
	it->holes = holes;
	it->files = files;
	it->hole_count = hole_count;
	it->state = SENDQ_READY;
	sendq_item_skip_empty(it);
}

bool sendq_item_done(const struct sendq_item *it)
{
	return it->state == SENDQ_READY && it->piece == sendq_pieces(it);
}

void sendq_next(const struct sendq *q, struct iovec *iov, uint32_t iov_max,
		struct sendq_next *out)
{
	const struct sendq_item *it = q->head;
	uint32_t piece = it != NULL ? it->piece : 0;
	size_t off = it != NULL ? it->piece_off : 0;

	SL_ASSERT(iov_max > 0);
	memset(out, 0, sizeof(*out));
	for (uint32_t n = 0; n < SENDQ_WALK_MAX && it != NULL && it->state == SENDQ_READY; n++) {
		if (piece == sendq_pieces(it)) {
			it = it->next;
			piece = 0;
			off = 0;
			continue;
		}
		size_t size = sendq_piece_size(it, piece);
		if (off == size) {
			piece++;
			off = 0;
			continue;
		}
		if (sendq_piece_is_file(piece)) {
			if (out->iov_count == 0) {
				const struct sendq_file *f = &it->files[piece / 2];
				out->kind = SENDQ_FILE;
				out->file.fd = f->fd;
				out->file.pos = f->pos + (int64_t)off;
				out->file.len = (uint32_t)(size - off);
				out->bytes = size - off;
			}
			break;
		}
		iov[out->iov_count].iov_base = (void *)(it->buf + sendq_mem_start(it, piece) + off);
		iov[out->iov_count].iov_len = size - off;
		out->iov_count++;
		out->bytes += size - off;
		out->kind = SENDQ_MEM;
		piece++;
		off = 0;
		if (out->iov_count == iov_max)
			break;
	}
	SL_ASSERT(out->kind != SENDQ_IDLE || out->bytes == 0);
}

void sendq_advance(struct sendq *q, size_t n)
{
	struct sendq_item *it = q->head;

	q->bytes_sent += n;
	for (uint32_t walk = 0; walk < SENDQ_WALK_MAX && n > 0; walk++) {
		SL_ASSERT(it != NULL && it->state == SENDQ_READY);
		if (it->piece == sendq_pieces(it)) {
			it = it->next;
			continue;
		}
		size_t left = sendq_piece_size(it, it->piece) - it->piece_off;
		size_t take = SL_MIN(left, n);
		it->piece_off += take;
		n -= take;
		sendq_item_skip_empty(it);
	}
	SL_ASSERT(n == 0);
	/* A fully sent item followed by a READY one: normalise that one too. */
	if (it != NULL && it->state == SENDQ_READY)
		sendq_item_skip_empty(it);
}

struct sendq_item *sendq_pop(struct sendq *q)
{
	struct sendq_item *it = q->head;

	if (it == NULL || !sendq_item_done(it))
		return NULL;
	q->head = it->next;
	if (q->head == NULL)
		q->tail = NULL;
	it->next = NULL;
	q->count--;
	return it;
}

void sendq_remove(struct sendq *q, struct sendq_item *it)
{
	struct sendq_item *prev = NULL;

	for (struct sendq_item *x = q->head; x != NULL; prev = x, x = x->next) {
		if (x != it)
			continue;
		if (prev != NULL)
			prev->next = x->next;
		else
			q->head = x->next;
		if (q->tail == x)
			q->tail = prev;
		x->next = NULL;
		q->count--;
		return;
	}
	SL_ASSERT(!"sendq_remove: item not queued");
}
