/*
 * conn.c — client connections and their requests (see conn.h, req.h).
 *
 * Re-entry discipline. Functions reached from outside (completions,
 * handlers answering later, req_unhold from a cross-shard reply, close
 * from the broker) bracket their work with conn_enter / conn_leave. Only
 * the outermost conn_leave "settles" the connection: pops sent responses,
 * finishes and frees requests, parses buffered frames, starts the next
 * send, re-arms the receive, and finally frees a closed connection whose
 * last operation completed. So nothing is freed while a caller up the
 * stack still uses it, and a handler that answers synchronously from
 * inside the dispatch is just a nested call.
 *
 * SQEs: ring_get_sqe may dispatch completions when the SQ is full (ring.h),
 * so every submission counts itself in `ops` and marks its slot busy
 * before asking for the SQE, and reads the state it needs only after.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "dispatch.h"
#include "frame.h"
#include "kafka_codec.h"
#include "log.h"
#include "mem.h"
#include "timer.h"

#define CONN_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
/* Frames cut from the receive buffer per parse call (bounded by the in-flight limit anyway). */
#define CONN_PARSE_MAX (CONN_INFLIGHT_MAX + 1)
/* Passes of the settle loop in conn_leave. */
#define CONN_SETTLE_MAX 64
/* Extra request-memory blocks: at least this big. */
#define REQ_BLOCK_BYTES_MIN (64u * 1024u)
/* Idle sweep period: a quarter of connections.max.idle.ms, within these bounds. */
#define CONN_SWEEP_MS_MIN 10
#define CONN_SWEEP_MS_MAX 1000

struct req_block {
	struct req_block *next;
	struct karena arena;
};

/* conn_reap turns a popped sendq_item back into its request. */
_Static_assert(offsetof(struct req, item) == 0, "sendq_item must be first in struct req");

static void conn_enter(struct conn *c);
static void conn_leave(struct conn *c);
static void conn_recv_done(struct ring_op *op, int res, uint32_t cqe_flags);
static void conn_send_done(struct ring_op *op, int res, uint32_t cqe_flags);
static void conn_cancel_done(struct ring_op *op, int res, uint32_t cqe_flags);
static void conn_budget_kick(struct broker_shard *bs);

static struct ring *conn_ring(const struct conn *c)
{
	return &c->bs->sh->ring;
}

static uint32_t conn_shard_id(const struct conn *c)
{
	return c->bs->sh->id;
}

/* ---- requests: memory ---- */

void *req_alloc(struct req *rq, size_t size)
{
	void *p;

	SL_ASSERT(size > 0);
	p = karena_alloc(&rq->arena, size);
	if (p != NULL)
		return p;
	if (rq->blocks != NULL) {
		p = karena_alloc(&rq->blocks->arena, size);
		if (p != NULL)
			return p;
	}
	size_t bytes = SL_MAX(size + 64, (size_t)REQ_BLOCK_BYTES_MIN);
	if (rq->mem_bytes + bytes > REQ_MEM_BYTES_MAX)
		return NULL;
	struct req_block *blk = mem_alloc(rq->sh, sizeof(*blk) + bytes);
	if (blk == NULL)
		return NULL;
	karena_init(&blk->arena, blk + 1, bytes);
	blk->next = rq->blocks;
	rq->blocks = blk;
	rq->mem_bytes += bytes;
	p = karena_alloc(&blk->arena, size);
	SL_ASSERT(p != NULL);
	return p;
}

enum sl_err req_files_reserve(struct req *rq, uint32_t n)
{
	SL_ASSERT(rq->file_cap == 0 && n > 0);
	rq->holes = req_alloc(rq, (size_t)n * sizeof(*rq->holes));
	rq->files = req_alloc(rq, (size_t)n * sizeof(*rq->files));
	if (rq->holes == NULL || rq->files == NULL)
		return SL_ENOMEM;
	rq->file_cap = n;
	return SL_OK;
}

void req_file_add(struct req *rq, int fd, int64_t pos, uint32_t len)
{
	SL_ASSERT(rq->file_count < rq->file_cap && fd >= 0 && len > 0 && pos >= 0);
	rq->files[rq->file_count].fd = fd;
	rq->files[rq->file_count].pos = pos;
	rq->files[rq->file_count].len = len;
	rq->file_count++;
}

const char *req_client_id(const struct req *rq, char *buf, size_t len)
{
	const struct kslice *id = &rq->hdr.ClientId;
	int n = id->len > 0 ? (int)SL_MIN((size_t)id->len, len - 1) : 0;

	SL_ASSERT(len > 1);
	if (n > 0)
		memcpy(buf, id->ptr, (size_t)n);
	buf[n] = '\0';
	/* Keep log lines printable whatever the client sent. */
	for (int i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			buf[i] = '?';
	return buf;
}

bool req_conn_closing(const struct req *rq)
{
	return rq->conn->state != CONN_OPEN;
}

void req_conn_close(struct req *rq, const char *why)
{
	conn_close(rq->conn, why);
}

/* ---- requests: life ---- */

/* A new request for a `len`-byte frame, queued in arrival order. NULL: no memory. */
static struct req *conn_req_new(struct conn *c, uint32_t len)
{
	struct shard *sh = c->bs->sh;
	struct req *rq = mem_zalloc(sh, sizeof(*rq));

	if (rq == NULL)
		return NULL;
	rq->frame = mem_alloc(sh, len);
	if (rq->frame == NULL) {
		mem_free(sh, rq);
		return NULL;
	}
	rq->frame_len = len;
	rq->conn = c;
	rq->bs = c->bs;
	rq->sh = sh;
	rq->state = REQ_RECEIVING;
	rq->start_ns = shard_now_ns(sh);
	rq->prev = c->reqs_tail;
	if (c->reqs_tail != NULL)
		c->reqs_tail->next = rq;
	else
		c->reqs_head = rq;
	c->reqs_tail = rq;
	c->req_count++;
	sendq_push(&c->q, &rq->item);
	return rq;
}

/* Frees a request that left the send queue and has no holds. */
static void conn_req_free(struct conn *c, struct req *rq)
{
	struct shard *sh = c->bs->sh;

	SL_ASSERT(rq->holds == 0 && rq->state == REQ_FINISHED);
	if (rq->prev != NULL)
		rq->prev->next = rq->next;
	else
		c->reqs_head = rq->next;
	if (rq->next != NULL)
		rq->next->prev = rq->prev;
	else
		c->reqs_tail = rq->prev;
	SL_ASSERT(c->req_count > 0);
	c->req_count--;
	kwrite_destroy(&rq->out);
	for (struct req_block *b = rq->blocks; b != NULL;) {
		struct req_block *next = b->next;
		mem_free(sh, b);
		b = next;
	}
	mem_free(sh, rq->arena_mem);
	mem_free(sh, rq->frame);
	rxbudget_release(&c->bs->rxb, rq->frame_len);   /* invariant 4 */
	mem_free(sh, rq);
	conn_budget_kick(c->bs);
}

/* The response left (or was dropped): finish hook, then free unless held. */
static void conn_req_finish(struct conn *c, struct req *rq)
{
	SL_ASSERT(rq->state == REQ_READY || rq->state == REQ_RECEIVING);
	rq->state = REQ_FINISHED;
	if (rq->finish != NULL)
		rq->finish(rq);
	if (rq->holds == 0)
		conn_req_free(c, rq);
}

void req_hold(struct req *rq)
{
	rq->holds++;
}

void req_unhold(struct req *rq)
{
	struct conn *c = rq->conn;

	SL_ASSERT(rq->holds > 0);
	conn_enter(c);
	rq->holds--;
	if (rq->holds == 0 && rq->state == REQ_FINISHED)
		conn_req_free(c, rq);
	conn_leave(c);
}

/* Marks rq answered with `len` bytes (0: nothing to send). */
static void conn_req_ready(struct req *rq, const uint8_t *buf, size_t len)
{
	rq->state = REQ_READY;
	sendq_item_ready(&rq->item, buf, len, rq->holes, rq->files,
			 buf != NULL ? rq->file_count : 0);
}

void req_respond_none(struct req *rq)
{
	struct conn *c = rq->conn;

	SL_ASSERT(rq->state == REQ_HANDLING);
	conn_enter(c);
	conn_req_ready(rq, NULL, 0);
	conn_leave(c);
}

void req_respond(struct req *rq, const void *resp)
{
	struct conn *c = rq->conn;
	const struct kafka_api *row = kafka_api_find(rq->api_key);
	struct ResponseHeader rh;
	size_t mark;

	SL_ASSERT(rq->state == REQ_HANDLING && row != NULL && resp != NULL);
	conn_enter(c);
	if (c->state != CONN_OPEN) {
		conn_req_ready(rq, NULL, 0);
		goto out;
	}
	kwrite_init(&rq->out, CONN_RESPONSE_BYTES_MAX);
	if (rq->file_cap > 0)
		kwrite_holes_set(&rq->out, rq->holes, rq->file_cap);
	mark = kwrite_frame_begin(&rq->out);
	kafka_init_response_header(&rh);
	rh.CorrelationId = rq->hdr.CorrelationId;
	kafka_encode_response_header(&rq->out,
				     kafka_response_header_version(rq->api_key, rq->resp_version), &rh);
	row->encode_response(&rq->out, rq->resp_version, resp);
	kwrite_frame_end(&rq->out, mark);
	if (rq->out.err != SL_OK || rq->out.hole_count != rq->file_count) {
		LOG_E(conn_shard_id(c), "conn %llu: cannot encode %s v%d response: %s",
		      (unsigned long long)c->id, row->name, rq->resp_version,
		      sl_err_str(rq->out.err != SL_OK ? rq->out.err : SL_EINVAL));
		conn_req_ready(rq, NULL, 0);
		conn_close(c, "response encoding failed");
		goto out;
	}
	rq->has_response = true;
	conn_req_ready(rq, rq->out.buf, rq->out.len);
out:
	SL_ASSERT(rq->state == REQ_READY);
	conn_leave(c);
}

/*
 * The header of an ApiVersions request in a version we do not serve: a
 * newer client's version may call for a header layout we cannot know, so
 * try the one its version names, then v1, and at worst keep only the
 * correlation id (always bytes 4-7) — the answer needs nothing else.
 */
static void conn_req_header_lenient(struct req *rq)
{
	struct kread r;

	kread_init(&r, rq->frame, rq->frame_len);
	if (kafka_decode_request_header_auto(&r, &rq->hdr, &rq->arena) == SL_OK)
		return;
	kread_init(&r, rq->frame, rq->frame_len);
	if (kafka_decode_request_header(&r, 1, &rq->hdr, &rq->arena) == SL_OK)
		return;
	SL_ASSERT(rq->frame_len >= FRAME_BYTES_MIN);
	kafka_init_request_header(&rq->hdr);
	rq->hdr.RequestApiKey = rq->api_key;
	rq->hdr.RequestApiVersion = rq->api_version;
	rq->hdr.CorrelationId = (int32_t)be32_load(rq->frame + 4);
	rq->hdr.ClientId = KSLICE_NULL;
}

/*
 * Decodes rq's header and body into an arena of the size `attempt` calls
 * for (frame.h). SL_OK with *verdict; SL_ENOMEM (retry bigger);
 * SL_ECORRUPT / SL_ETRUNC / SL_EINVAL: malformed (close).
 */
static enum sl_err conn_req_decode(struct conn *c, struct req *rq, uint32_t attempt,
				   enum dispatch_verdict *verdict)
{
	size_t bytes = frame_arena_bytes(rq->frame_len, attempt);
	struct kread r;
	enum sl_err err;

	if (bytes == 0)
		return SL_ERANGE;
	mem_free(c->bs->sh, rq->arena_mem);
	rq->arena_mem = mem_alloc(c->bs->sh, bytes);
	if (rq->arena_mem == NULL)
		return SL_ERANGE;
	rq->mem_bytes = bytes;
	karena_init(&rq->arena, rq->arena_mem, bytes);
	if (dispatch_check(rq->api_key, rq->api_version) == DISPATCH_BAD_VERSION_ANSWER) {
		conn_req_header_lenient(rq);
		*verdict = DISPATCH_BAD_VERSION_ANSWER;
		rq->body = NULL;
		rq->resp_version = 0;
		return SL_OK;
	}
	kread_init(&r, rq->frame, rq->frame_len);
	err = kafka_decode_request_header_auto(&r, &rq->hdr, &rq->arena);
	if (err != SL_OK) {
		*verdict = DISPATCH_UNKNOWN_KEY;   /* header unreadable */
		return err;
	}
	rq->api_key = rq->hdr.RequestApiKey;
	rq->api_version = rq->hdr.RequestApiVersion;
	*verdict = dispatch_check(rq->api_key, rq->api_version);
	if (*verdict != DISPATCH_OK) {
		rq->body = NULL;
		rq->resp_version = 0;
		return SL_OK;
	}
	const struct kafka_api *row = kafka_api_find(rq->api_key);
	SL_ASSERT(row != NULL && row->decode_request != NULL);
	rq->body = karena_alloc(&rq->arena, row->request_size);
	if (rq->body == NULL)
		return SL_ENOMEM;
	err = row->decode_request(&r, rq->api_version, rq->body, &rq->arena);
	rq->resp_version = rq->api_version;
	return err;
}

/* A whole frame arrived: decode, dispatch, call the handler. */
static void conn_req_start(struct conn *c, struct req *rq)
{
	enum dispatch_verdict verdict;
	enum sl_err err = SL_ENOMEM;
	char why[192], client[64];

	SL_ASSERT(rq->state == REQ_RECEIVING && rq->frame_len >= FRAME_BYTES_MIN);
	c->requests++;
	rq->state = REQ_HANDLING;
	/* Key and version sit at fixed places in every header version. */
	rq->api_key = (int16_t)be16_load(rq->frame);
	rq->api_version = (int16_t)be16_load(rq->frame + 2);
	verdict = dispatch_check(rq->api_key, rq->api_version);
	if (verdict == DISPATCH_UNKNOWN_KEY || verdict == DISPATCH_BAD_VERSION) {
		const struct kafka_api *row = kafka_api_find(rq->api_key);
		const struct dispatch_api *api = dispatch_find(rq->api_key);
		/* The client id is only known if the header decodes; best effort. */
		struct kread r;
		kread_init(&r, rq->frame, rq->frame_len);
		karena_init(&rq->arena, NULL, 0);
		if (kafka_decode_request_header_auto(&r, &rq->hdr, &rq->arena) != SL_OK)
			rq->hdr.ClientId = KSLICE_NULL;
		if (api == NULL)
			snprintf(why, sizeof(why), "unsupported api key %d (%s) v%d from client '%s'",
				 rq->api_key, row != NULL ? row->name : "unknown", rq->api_version,
				 req_client_id(rq, client, sizeof(client)));
		else
			snprintf(why, sizeof(why), "unsupported %s version %d (served %d-%d) from client '%s'",
				 row != NULL ? row->name : "?", rq->api_version, api->version_min,
				 api->version_max, req_client_id(rq, client, sizeof(client)));
		conn_req_ready(rq, NULL, 0);
		conn_close(c, why);
		return;
	}
	for (uint32_t attempt = 0; attempt < FRAME_ARENA_ATTEMPTS_MAX && err == SL_ENOMEM; attempt++)
		err = conn_req_decode(c, rq, attempt, &verdict);
	if (err != SL_OK) {
		const struct kafka_api *row = kafka_api_find(rq->api_key);
		snprintf(why, sizeof(why), "%s %s (api key %d, %s v%d): %s",
			 err == SL_ERANGE ? "cannot decode (too large)" : "malformed",
			 verdict == DISPATCH_UNKNOWN_KEY ? "request header" : "request body",
			 rq->api_key, row != NULL ? row->name : "unknown", rq->api_version,
			 sl_err_str(err));
		conn_req_ready(rq, NULL, 0);
		conn_close(c, why);
		return;
	}
	const struct dispatch_api *api = dispatch_find(rq->api_key);
	SL_ASSERT(api != NULL);
	err = api->handle(rq);
	/* On SL_OK the handler owns rq (it may even be answered already). */
	if (err != SL_OK) {
		SL_ASSERT(rq->state == REQ_HANDLING);
		snprintf(why, sizeof(why), "cannot handle %s v%d: %s",
			 kafka_api_find(rq->api_key)->name, rq->api_version, sl_err_str(err));
		conn_req_ready(rq, NULL, 0);
		conn_close(c, why);
	}
}

/* ---- receive ---- */

/*
 * Reserves request memory for the `size`-byte frame parse is about to
 * cut: the grant the wake timer made for it, or a fresh reservation. When
 * the budget refuses, parks `c` (no receive until granted) and returns
 * false. Logs the 1st, 2nd, 4th... park of the shard.
 */
static bool conn_budget_take(struct conn *c, uint32_t size)
{
	struct rxbudget *b = &c->bs->rxb;

	if (c->rx_granted != 0) {
		/* The prefix in rbuf did not change while parked. */
		SL_ASSERT(c->rx_granted == size);
		c->rx_granted = 0;
		return true;
	}
	if (rxbudget_reserve(b, size))
		return true;
	rxbudget_park(b, &c->rxw, size);
	if ((b->parks & (b->parks - 1)) == 0)
		LOG_W(conn_shard_id(c), "request memory budget full (%llu of %llu bytes held, "
		      "queued.max.request.bytes): pausing reads on connection %llu from %s for a "
		      "%u-byte frame (%llu pauses so far)", (unsigned long long)b->used,
		      (unsigned long long)b->bytes_max, (unsigned long long)c->id, c->peer, size,
		      (unsigned long long)b->parks);
	SL_ASSERT(c->rxw.waiting && !c->recv_armed);
	return false;
}

/*
 * Cuts whole frames out of the receive buffer while the in-flight bound
 * allows. A frame that is not all there gets its buffer now and the rest
 * is received into it (c->rx).
 */
static void conn_parse(struct conn *c)
{
	int32_t max = c->bs->b->config->socket_request_max_bytes;
	char why[128];

	for (uint32_t n = 0; n < CONN_PARSE_MAX; n++) {
		if (c->state != CONN_OPEN || c->rx != NULL || c->req_count >= CONN_INFLIGHT_MAX ||
		    c->rxw.waiting)
			break;
		uint32_t avail = c->rlen - c->rpos;
		if (avail < FRAME_PREFIX_BYTES)
			break;
		int32_t size = (int32_t)be32_load(c->rbuf + c->rpos);
		enum frame_verdict v = frame_size_check(size, max);
		if (v != FRAME_OK) {
			snprintf(why, sizeof(why), "%s (size %d, limit %d)", frame_verdict_str(v), size,
				 max);
			conn_close(c, why);
			return;
		}
		if (!conn_budget_take(c, (uint32_t)size))
			break;   /* parked: resumed by conn_budget_wake_fire */
		struct req *rq = conn_req_new(c, (uint32_t)size);
		if (rq == NULL) {
			rxbudget_release(&c->bs->rxb, (uint32_t)size);
			conn_budget_kick(c->bs);
			conn_close(c, "out of memory for a request buffer");
			return;
		}
		uint32_t copy = SL_MIN(avail - FRAME_PREFIX_BYTES, (uint32_t)size);
		memcpy(rq->frame, c->rbuf + c->rpos + FRAME_PREFIX_BYTES, copy);
		c->rpos += FRAME_PREFIX_BYTES + copy;
		if (copy < (uint32_t)size) {
			c->rx = rq;
			c->rx_have = copy;
			break;
		}
		conn_req_start(c, rq);
	}
	if (c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
}

/* Arms the receive unless closing, already armed, or at the in-flight bound. */
static void conn_recv_arm(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->state != CONN_OPEN || c->recv_armed)
		return;
	if (c->rx == NULL && c->req_count >= CONN_INFLIGHT_MAX)
		return;   /* backpressure: resumed when a request is freed */
	if (c->rxw.waiting || c->rx_granted != 0)
		return;   /* invariant 5: parked on request memory */
	c->recv_armed = true;
	c->ops++;
	sqe = ring_get_sqe(conn_ring(c));
	if (c->state != CONN_OPEN) {
		/* Closed while the SQE was being found: leave it a NOP. */
		c->recv_armed = false;
		c->ops--;
		return;
	}
	if (c->rx != NULL) {
		io_uring_prep_recv(sqe, c->fd, c->rx->frame + c->rx_have,
				   c->rx->frame_len - c->rx_have, 0);
	} else {
		if (c->rpos > 0) {
			memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
			c->rlen -= c->rpos;
			c->rpos = 0;
		}
		/* Whole frames that fit were cut; a partial one fits after compaction. */
		SL_ASSERT(c->rlen < CONN_RBUF_BYTES);
		io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, CONN_RBUF_BYTES - c->rlen, 0);
	}
	c->recv_op.done = conn_recv_done;
	ring_sqe_set_op(conn_ring(c), sqe, &c->recv_op);
}

static void conn_recv_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct conn *c = CONN_CONTAINER_OF(op, struct conn, recv_op);
	char why[96];

	(void)cqe_flags;
	conn_enter(c);
	SL_ASSERT(c->recv_armed && c->ops > 0);
	c->recv_armed = false;
	c->ops--;
	if (c->state != CONN_OPEN)
		goto out;
	if (res == 0) {
		conn_close(c, NULL);
		goto out;
	}
	if (res < 0) {
		if (res == -ECONNRESET || res == -EPIPE) {
			conn_close(c, NULL);
		} else {
			snprintf(why, sizeof(why), "receive failed: %s", strerror(-res));
			conn_close(c, why);
		}
		goto out;
	}
	c->bytes_in += (uint64_t)res;
	c->active_ns = shard_now_ns(c->bs->sh);
	if (c->rx != NULL) {
		c->rx_have += (uint32_t)res;
		SL_ASSERT(c->rx_have <= c->rx->frame_len);
		if (c->rx_have == c->rx->frame_len) {
			struct req *rq = c->rx;
			c->rx = NULL;
			conn_req_start(c, rq);
		}
	} else {
		c->rlen += (uint32_t)res;
		SL_ASSERT(c->rlen <= CONN_RBUF_BYTES);
	}
out:
	conn_leave(c);
}

/* ---- send ---- */

/* Makes the connection's pipe on first use. 0 or -errno. */
static int conn_pipe_make(struct conn *c)
{
	int fds[2];

	if (c->pipe_rd >= 0)
		return 0;
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -errno;
	c->pipe_rd = fds[0];
	c->pipe_wr = fds[1];
	/* Best effort: the default (64 KiB) only costs more splice rounds. */
	(void)fcntl(c->pipe_wr, F_SETPIPE_SZ, (int)CONN_PIPE_BYTES);
	int cap = fcntl(c->pipe_wr, F_GETPIPE_SZ);
	c->pipe_cap = cap > 0 ? (uint32_t)cap : 65536u;
	return 0;
}

/*
 * Starts the next send: pipe -> socket if the pipe holds bytes, else what
 * the send queue offers (gathered memory, or a file range into the pipe).
 */
static void conn_send_pump(struct conn *c)
{
	struct io_uring_sqe *sqe;
	struct sendq_next nx;
	char why[96];

	if (c->state != CONN_OPEN || c->send_armed)
		return;
	if (c->pipe_fill == 0) {
		sendq_next(&c->q, c->iov, CONN_IOV_MAX, &nx);
		if (nx.kind == SENDQ_IDLE)
			return;
		if (nx.kind == SENDQ_FILE) {
			int rc = conn_pipe_make(c);
			if (rc < 0) {
				snprintf(why, sizeof(why), "cannot make a pipe: %s", strerror(-rc));
				conn_close(c, why);
				return;
			}
		}
	}
	c->send_armed = true;
	c->ops++;
	sqe = ring_get_sqe(conn_ring(c));
	if (c->state != CONN_OPEN) {
		c->send_armed = false;
		c->ops--;
		return;
	}
	if (c->pipe_fill > 0) {
		io_uring_prep_splice(sqe, c->pipe_rd, -1, c->fd, -1, c->pipe_fill, 0);
		c->splice = CONN_SPLICE_OUT;
		c->send_bytes = c->pipe_fill;
	} else {
		/* Recompute: a completion dispatched by ring_get_sqe may have moved things. */
		sendq_next(&c->q, c->iov, CONN_IOV_MAX, &nx);
		if (nx.kind == SENDQ_MEM) {
			memset(&c->msg, 0, sizeof(c->msg));
			c->msg.msg_iov = c->iov;
			c->msg.msg_iovlen = nx.iov_count;
			io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
			c->splice = CONN_SPLICE_NONE;
			c->send_bytes = nx.bytes;
		} else if (nx.kind == SENDQ_FILE && c->pipe_rd >= 0) {
			uint32_t len = SL_MIN(nx.file.len, c->pipe_cap);
			io_uring_prep_splice(sqe, nx.file.fd, nx.file.pos, c->pipe_wr, -1, len, 0);
			c->splice = CONN_SPLICE_IN;
			c->send_bytes = len;
		} else {
			c->send_armed = false;
			c->ops--;
			return;   /* the SQE stays a NOP */
		}
	}
	c->send_op.done = conn_send_done;
	ring_sqe_set_op(conn_ring(c), sqe, &c->send_op);
}

static void conn_send_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct conn *c = CONN_CONTAINER_OF(op, struct conn, send_op);
	enum conn_splice what = c->splice;
	char why[128];

	(void)cqe_flags;
	conn_enter(c);
	SL_ASSERT(c->send_armed && c->ops > 0);
	c->send_armed = false;
	c->ops--;
	c->splice = CONN_SPLICE_NONE;
	if (c->state != CONN_OPEN)
		goto out;
	if (res < 0) {
		if (res == -EPIPE || res == -ECONNRESET) {
			conn_close(c, NULL);
		} else {
			snprintf(why, sizeof(why), "%s failed: %s",
				 what == CONN_SPLICE_IN ? "reading a segment file" : "send",
				 strerror(-res));
			conn_close(c, why);
		}
		goto out;
	}
	if (res == 0) {
		conn_close(c, what == CONN_SPLICE_IN
				      ? "segment file shorter than the fetch response (truncated meanwhile)"
				      : (what == CONN_SPLICE_OUT ? NULL : "socket took no bytes"));
		goto out;
	}
	SL_ASSERT((size_t)res <= c->send_bytes);
	c->active_ns = shard_now_ns(c->bs->sh);
	if (what == CONN_SPLICE_IN) {
		c->pipe_fill = (uint32_t)res;   /* sent by the next pump */
	} else {
		if (what == CONN_SPLICE_OUT) {
			SL_ASSERT((uint32_t)res <= c->pipe_fill);
			c->pipe_fill -= (uint32_t)res;
		}
		sendq_advance(&c->q, (size_t)res);
	}
out:
	conn_leave(c);
}

/* ---- settle, close, free ---- */

/*
 * Pops responses that left and finishes their requests; when closing and
 * no send is in flight, drops every answered request. True if anything
 * changed.
 */
static bool conn_reap(struct conn *c)
{
	bool any = false;
	struct sendq_item *it;

	if (c->state == CONN_OPEN) {
		for (uint32_t n = 0; n <= CONN_INFLIGHT_MAX && (it = sendq_pop(&c->q)) != NULL; n++) {
			conn_req_finish(c, (struct req *)(void *)it);
			any = true;
		}
		return any;
	}
	if (c->send_armed)
		return false;
	struct req *rq = c->reqs_head;
	for (uint32_t n = 0; n <= CONN_INFLIGHT_MAX + 1 && rq != NULL; n++) {
		struct req *next = rq->next;
		if (rq->state == REQ_READY) {
			sendq_remove(&c->q, &rq->item);
			conn_req_finish(c, rq);
			any = true;
		} else if (rq == c->rx && !c->recv_armed) {
			c->rx = NULL;
			sendq_remove(&c->q, &rq->item);
			conn_req_finish(c, rq);
			any = true;
		}
		rq = next;
	}
	return any;
}

static void conn_free(struct conn *c)
{
	struct broker_shard *bs = c->bs;

	SL_ASSERT(c->ops == 0 && c->req_count == 0 && c->reqs_head == NULL);
	SL_ASSERT(!c->rxw.waiting && c->rx_granted == 0);
	close(c->fd);
	if (c->pipe_rd >= 0) {
		close(c->pipe_rd);
		close(c->pipe_wr);
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		bs->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	SL_ASSERT(bs->conn_count > 0);
	bs->conn_count--;
	LOG_D(bs->sh->id, "conn %llu (%s) freed after %llu requests", (unsigned long long)c->id,
	      c->peer, (unsigned long long)c->requests);
	mem_free(bs->sh, c->rbuf);
	mem_free(bs->sh, c);
	broker_shard_check_barrier(bs);
}

enum sl_err req_in_order(struct req *rq, enum sl_err (*fn)(struct req *rq))
{
	SL_ASSERT(rq->state == REQ_HANDLING && rq->in_order == NULL);
	for (struct req *p = rq->prev; p != NULL; p = p->prev) {
		if (p->state == REQ_RECEIVING || p->state == REQ_HANDLING) {
			rq->in_order = fn;
			return SL_OK;
		}
	}
	return fn(rq);
}

/*
 * Runs the requests waiting in req_in_order whose predecessors are all
 * answered, in arrival order. Returns whether one ran.
 */
static bool conn_run_in_order(struct conn *c)
{
	bool ran = false;
	uint32_t n = 0;
	char why[160];

	for (struct req *rq = c->reqs_head; rq != NULL && n < CONN_INFLIGHT_MAX + 1; rq = rq->next, n++) {
		if (rq->state == REQ_READY || rq->state == REQ_FINISHED)
			continue;
		if (rq->state != REQ_HANDLING || rq->in_order == NULL)
			break;
		enum sl_err (*fn)(struct req *) = rq->in_order;
		rq->in_order = NULL;
		ran = true;
		enum sl_err err = fn(rq);
		if (err != SL_OK) {
			SL_ASSERT(rq->state == REQ_HANDLING);
			snprintf(why, sizeof(why), "cannot handle %s v%d: %s",
				 kafka_api_find(rq->api_key)->name, rq->api_version, sl_err_str(err));
			conn_req_ready(rq, NULL, 0);
			conn_close(c, why);
		}
		if (rq->state == REQ_HANDLING)
			break;   /* answered later: later requests keep waiting */
	}
	return ran;
}

static void conn_enter(struct conn *c)
{
	SL_ASSERT(c->depth < 64);
	c->depth++;
}

/*
 * Leaves a bracket; the outermost one settles the connection (file
 * comment) and may free it: the caller must not touch `c` afterwards.
 */
static void conn_leave(struct conn *c)
{
	SL_ASSERT(c->depth > 0);
	if (c->depth > 1) {
		c->depth--;
		return;
	}
	for (uint32_t n = 0; n < CONN_SETTLE_MAX; n++) {
		uint32_t before = c->req_count;
		bool changed = conn_run_in_order(c);
		changed = conn_reap(c) || changed;
		if (c->state == CONN_OPEN) {
			conn_parse(c);
			conn_send_pump(c);
			conn_recv_arm(c);
		}
		if (!changed && before == c->req_count)
			break;
	}
	c->depth--;
	if (c->state != CONN_OPEN && c->ops == 0 && c->req_count == 0)
		conn_free(c);
}

static void conn_cancel_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct conn *c = CONN_CONTAINER_OF(op, struct conn, cancel_op);

	(void)res;   /* -ENOENT (nothing left to cancel) is fine */
	(void)cqe_flags;
	conn_enter(c);
	SL_ASSERT(c->cancel_armed && c->ops > 0);
	c->cancel_armed = false;
	c->ops--;
	conn_leave(c);
}

void conn_close(struct conn *c, const char *why)
{
	conn_enter(c);
	if (c->state != CONN_OPEN)
		goto out;
	c->state = CONN_CLOSING;
	if (why != NULL)
		LOG_W(conn_shard_id(c), "closing connection %llu from %s: %s",
		      (unsigned long long)c->id, c->peer, why);
	else
		LOG_D(conn_shard_id(c), "connection %llu from %s closed by the peer",
		      (unsigned long long)c->id, c->peer);
	/* Leave the request-memory queue; give back a grant parse did not use. */
	rxbudget_unpark(&c->bs->rxb, &c->rxw);
	if (c->rx_granted != 0) {
		rxbudget_release(&c->bs->rxb, c->rx_granted);
		c->rx_granted = 0;
		conn_budget_kick(c->bs);
	}
	/* Pending socket operations complete at once (0 / -EPIPE) ... */
	shutdown(c->fd, SHUT_RDWR);
	/* ... and whatever is queued on the fd is cancelled. */
	if ((c->recv_armed || c->send_armed) && !c->cancel_armed) {
		c->cancel_armed = true;
		c->ops++;
		struct io_uring_sqe *sqe = ring_get_sqe(conn_ring(c));
		io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
		c->cancel_op.done = conn_cancel_done;
		ring_sqe_set_op(conn_ring(c), sqe, &c->cancel_op);
	}
	/* Handlers still working: let them cut their waits short. */
	struct req *rq = c->reqs_head;
	for (uint32_t n = 0; n <= CONN_INFLIGHT_MAX + 1 && rq != NULL; n++) {
		struct req *next = rq->next;
		if (rq->state == REQ_HANDLING && rq->cancel != NULL)
			rq->cancel(rq);
		rq = next;
	}
out:
	conn_leave(c);
}

/* "1.2.3.4:5678" / "[::1]:5678" of the peer, or "?" */
static void conn_peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	snprintf(out, len, "?");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) != NULL)
			snprintf(out, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) != NULL)
			snprintf(out, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	}
}

/* Socket options Kafka sets: TCP_NODELAY, and the configured buffer sizes. */
static void conn_socket_setup(struct broker_shard *bs, int fd)
{
	const struct config *cfg = bs->b->config;
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (cfg->socket_send_buffer_bytes > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cfg->socket_send_buffer_bytes,
				 sizeof(cfg->socket_send_buffer_bytes));
	if (cfg->socket_receive_buffer_bytes > 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg->socket_receive_buffer_bytes,
				 sizeof(cfg->socket_receive_buffer_bytes));
}

void conn_accept(struct broker_shard *bs, int fd)
{
	struct shard *sh = bs->sh;
	struct conn *c;

	if (bs->stopping || bs->conn_count >= bs->b->conns_per_shard) {
		bs->conns_refused++;
		/* Log the 1st, 2nd, 4th, 8th... refusal: visible, never a flood. */
		if ((bs->conns_refused & (bs->conns_refused - 1)) == 0)
			LOG_W(sh->id, "refusing a connection: %s (%u open on this shard, "
			      "max.connections allows %u per shard; %llu refused so far)",
			      bs->stopping ? "shutting down" : "connection limit reached",
			      bs->conn_count, bs->b->conns_per_shard,
			      (unsigned long long)bs->conns_refused);
		close(fd);
		return;
	}
	c = mem_zalloc(sh, sizeof(*c));
	if (c != NULL)
		c->rbuf = mem_alloc(sh, CONN_RBUF_BYTES);
	if (c == NULL || c->rbuf == NULL) {
		LOG_E(sh->id, "out of memory for a connection: refusing it");
		if (c != NULL)
			mem_free(sh, c);
		close(fd);
		return;
	}
	c->bs = bs;
	c->fd = fd;
	c->id = ++bs->conn_seq;
	c->pipe_rd = c->pipe_wr = -1;
	c->state = CONN_OPEN;
	c->active_ns = shard_now_ns(sh);
	sendq_init(&c->q);
	conn_peer_name(fd, c->peer, sizeof(c->peer));
	conn_socket_setup(bs, fd);
	c->next = bs->conns;
	if (bs->conns != NULL)
		bs->conns->prev = c;
	bs->conns = c;
	bs->conn_count++;
	LOG_D(sh->id, "conn %llu from %s", (unsigned long long)c->id, c->peer);
	conn_enter(c);
	conn_leave(c);   /* arms the first receive */
}

/* ---- per-shard limits: request memory, idle connections ---- */

/*
 * Request memory was freed: if connections wait for it, fire the wake
 * timer on the next loop turn. A timer rather than a direct call, so that
 * freeing a request never runs another connection's code up the caller's
 * stack. If the timer table is full, the idle sweep retries the wake.
 */
static void conn_budget_kick(struct broker_shard *bs)
{
	struct shard *sh = bs->sh;

	if (bs->rxb.wait_count == 0 || bs->stopping || timer_armed(&bs->rxb_wake))
		return;
	if (timer_add(&sh->timers, &bs->rxb_wake, shard_now_ns(sh)) != SL_OK)
		LOG_W(sh->id, "timer table full: parked connections resume at the next idle sweep");
}

/* Grants waiting connections in arrival order while their frames fit. */
static void conn_budget_wake_fire(struct timer *t, void *ctx)
{
	struct broker_shard *bs = CONN_CONTAINER_OF(t, struct broker_shard, rxb_wake);
	uint32_t n_max = bs->rxb.wait_count;

	(void)ctx;
	for (uint32_t n = 0; n < n_max; n++) {
		struct rxbudget_waiter *w = rxbudget_grant_next(&bs->rxb);
		if (w == NULL)
			break;
		struct conn *c = CONN_CONTAINER_OF(w, struct conn, rxw);
		SL_ASSERT(c->state == CONN_OPEN && c->rx_granted == 0);
		c->rx_granted = w->need;
		conn_enter(c);
		conn_leave(c);   /* parses the frame with its grant, re-arms the receive */
	}
	SL_DEBUG_ASSERT(rxbudget_check(&bs->rxb));
}

static int64_t conn_sweep_period_ns(const struct broker_shard *bs)
{
	int64_t idle_ms = bs->b->config->connections_max_idle_ms;
	int64_t ms = idle_ms > 0 ? idle_ms / 4 : CONN_SWEEP_MS_MAX;

	ms = SL_MAX(ms, (int64_t)CONN_SWEEP_MS_MIN);
	ms = SL_MIN(ms, (int64_t)CONN_SWEEP_MS_MAX);
	return ms * 1000000;
}

/*
 * Closes connections idle (no byte in or out, no request, not parked) for
 * connections.max.idle.ms, retries a wake the full timer table prevented,
 * and re-arms itself.
 */
static void conn_idle_sweep_fire(struct timer *t, void *ctx)
{
	struct broker_shard *bs = CONN_CONTAINER_OF(t, struct broker_shard, idle_sweep);
	int64_t idle_ms = bs->b->config->connections_max_idle_ms;
	int64_t now = shard_now_ns(bs->sh);
	uint32_t n = 0;
	char why[96];

	(void)ctx;
	if (bs->stopping)
		return;
	for (struct conn *c = bs->conns; c != NULL && n <= bs->conn_count; n++) {
		struct conn *next = c->next;   /* closing c never frees another connection */
		if (idle_ms > 0 && c->state == CONN_OPEN && c->req_count == 0 && !c->rxw.waiting &&
		    c->rx_granted == 0 && now - c->active_ns >= idle_ms * 1000000) {
			snprintf(why, sizeof(why), "idle for %lld ms (connections.max.idle.ms %lld)",
				 (long long)((now - c->active_ns) / 1000000), (long long)idle_ms);
			conn_close(c, why);
		}
		c = next;
	}
	conn_budget_kick(bs);
	if (timer_add(&bs->sh->timers, &bs->idle_sweep, now + conn_sweep_period_ns(bs)) != SL_OK)
		LOG_E(bs->sh->id, "timer table full: idle connections are no longer closed");
}

void conn_limits_start(struct broker_shard *bs)
{
	const struct config *cfg = bs->b->config;
	struct shard *sh = bs->sh;

	SL_ASSERT(bs->conn_count == 0);
	rxbudget_init(&bs->rxb, rxbudget_bytes_for(cfg->queued_max_request_bytes,
						  cfg->socket_request_max_bytes, bs->b->shard_count));
	timer_init(&bs->rxb_wake, conn_budget_wake_fire);
	timer_init(&bs->idle_sweep, conn_idle_sweep_fire);
	if (timer_add(&sh->timers, &bs->idle_sweep, shard_now_ns(sh) + conn_sweep_period_ns(bs)) !=
	    SL_OK)
		LOG_E(sh->id, "timer table full: idle connections will not be closed");
	LOG_D(sh->id, "request memory budget %llu bytes per shard, idle close after %lld ms",
	      (unsigned long long)bs->rxb.bytes_max, (long long)cfg->connections_max_idle_ms);
	SL_ASSERT(bs->rxb.bytes_max > 0);
}

void conn_limits_stop(struct broker_shard *bs)
{
	if (bs->rxb.bytes_max == 0)
		return;   /* conn_limits_start never ran (start failed early) */
	timer_cancel(&bs->sh->timers, &bs->rxb_wake);
	timer_cancel(&bs->sh->timers, &bs->idle_sweep);
}
