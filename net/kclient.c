/*
 * kclient.c — the outbound Kafka client connection (see kclient.h for the
 * states, invariants and contracts).
 *
 * Re-entry discipline, as conn.c: entry points (public calls, completions,
 * timers) bracket their work with kc_enter / kc_leave, and only the
 * outermost kc_leave settles: delivers buffered responses, starts the
 * send, re-arms the receive, connects, closes a drained fd, frees a closed
 * client. Callbacks run with the depth held, so a done that calls
 * kclient_close or kclient_send never frees anything its caller still uses.
 *
 * SQEs: ring_get_sqe may dispatch completions when the SQ is full, so each
 * submission marks itself armed and counted in `ops` first, asks for the
 * SQE, then re-checks the state and fills the SQE from the state as it is
 * then (a zeroed SQE left unfilled is a NOP whose user_data is ignored).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kafka_codec.h"
#include "kwrite.h"
#include "log.h"
#include "mem.h"
#include "shard.h"
#include "timer.h"

#define KC_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))
/* Request frames gathered into one sendmsg. */
#define KC_IOV_MAX 16u
/* Passes of the settle loop. */
#define KC_SETTLE_MAX 64u
/* Responses delivered from the receive buffer per settle pass. */
#define KC_PARSE_MAX (KCLIENT_INFLIGHT_MAX + 1u)
/* Response correlation id: the first field of every ResponseHeader. */
#define KC_RESPONSE_BYTES_MIN 4u
#define KC_NAME_MAX 300u

enum kc_sock {
	KC_IDLE = 0,
	KC_CONNECTING,
	KC_OPEN,
	KC_DRAINING,
};

struct kc_req {
	int32_t correlation_id;
	int16_t api_key;
	int16_t api_version;
	bool in_kernel;          /* its frame is part of the send in flight */
	kclient_done_fn *done;
	void *arg;
	int64_t deadline_ns;
	uint8_t *frame;          /* malloc'd by kwrite; NULL once fully sent */
	uint32_t frame_len;      /* size prefix included */
};

struct kclient {
	struct shard *sh;
	enum kc_sock sock;
	bool closed;                 /* kclient_close was called */
	int fd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char name[KC_NAME_MAX];      /* "host:port" for log lines */
	char client_id[KCLIENT_CLIENT_ID_MAX + 1];
	struct kclient_config cfg;   /* defaults filled in; client_id -> the array */

	/* the queue (invariant 1) */
	struct kc_req *reqs;         /* ring of cfg.inflight_max slots */
	uint32_t head;
	uint32_t count;
	uint32_t sent;
	uint32_t send_off;           /* bytes of reqs[sent] already written */
	uint64_t queued_bytes;       /* invariant 2 */
	int32_t correlation_next;

	/* operations (invariant 3) */
	uint32_t ops;
	bool connect_armed;
	bool recv_armed;
	bool send_armed;
	bool cancel_armed;
	struct ring_op connect_op;
	struct ring_op recv_op;
	struct ring_op send_op;
	struct ring_op cancel_op;
	struct msghdr msg;
	struct iovec iov[KC_IOV_MAX];
	uint8_t *orphans[KC_IOV_MAX]; /* frames of failed requests still in a send */
	uint32_t orphan_count;

	/* receiving */
	uint8_t *rbuf;               /* KCLIENT_RBUF_BYTES, made at the first connect */
	uint32_t rpos;
	uint32_t rlen;
	uint8_t *rx_frame;           /* a frame too large for rbuf, exact size */
	uint32_t rx_len;
	uint32_t rx_have;

	/* the response being delivered (kclient_response_take) */
	const uint8_t *cur_ptr;
	uint32_t cur_len;
	uint8_t *cur_owned;          /* rx_frame handed to the delivery, or NULL */
	bool cur_taken;

	struct timer req_timer;      /* invariant 4 */
	struct timer backoff_timer;
	uint32_t backoff_ms;
	uint32_t fail_run;           /* consecutive failed attempts (log pacing) */
	uint32_t depth;
	uint64_t gen;                /* bumped by every change kc_settle must see */
	struct kclient_stats stats;
};

static void kc_enter(struct kclient *kc);
static void kc_leave(struct kclient *kc);
static void kc_connect_done(struct ring_op *op, int res, uint32_t cqe_flags);
static void kc_recv_done(struct ring_op *op, int res, uint32_t cqe_flags);
static void kc_send_done(struct ring_op *op, int res, uint32_t cqe_flags);
static void kc_cancel_done(struct ring_op *op, int res, uint32_t cqe_flags);

static struct ring *kc_ring(const struct kclient *kc)
{
	return &kc->sh->ring;
}

static int kc_shard_id(const struct kclient *kc)
{
	return (int)kc->sh->id;
}

static struct kc_req *kc_at(struct kclient *kc, uint32_t pos)
{
	SL_ASSERT(pos < kc->count);
	return &kc->reqs[(kc->head + pos) % kc->cfg.inflight_max];
}

/* Invariants 1-4 of kclient.h (O(count)). */
static bool kc_check(struct kclient *kc)
{
	uint64_t bytes = 0;

	if (kc->count > kc->cfg.inflight_max || kc->sent > kc->count)
		return false;
	for (uint32_t i = kc->sent; i < kc->count; i++)
		bytes += kc_at(kc, i)->frame_len;
	if (bytes != kc->queued_bytes || bytes > kc->cfg.send_bytes_max)
		return false;
	if (kc->ops != (uint32_t)kc->connect_armed + kc->recv_armed + kc->send_armed +
		       kc->cancel_armed)
		return false;
	if (!kc->closed && (kc->count > 0) != timer_armed(&kc->req_timer))
		return false;
	return kc->rpos <= kc->rlen && kc->rlen <= KCLIENT_RBUF_BYTES;
}

/* ---- the queue ---- */

/*
 * Removes the oldest request and returns a copy. Its frame is freed, or
 * parked in `orphans` while a send still reads it (invariant 3).
 */
static struct kc_req kc_pop(struct kclient *kc)
{
	struct kc_req *slot = kc_at(kc, 0);
	struct kc_req r = *slot;

	if (kc->sent > 0) {
		kc->sent--;
	} else {
		SL_ASSERT(kc->queued_bytes >= r.frame_len);
		kc->queued_bytes -= r.frame_len;
		kc->send_off = 0;
	}
	if (r.frame != NULL) {
		if (r.in_kernel) {
			SL_ASSERT(kc->orphan_count < KC_IOV_MAX);
			kc->orphans[kc->orphan_count++] = r.frame;
		} else {
			free(r.frame);
		}
	}
	memset(slot, 0, sizeof(*slot));
	kc->head = (kc->head + 1) % kc->cfg.inflight_max;
	kc->count--;
	kc->gen++;
	if (kc->count == 0)
		timer_cancel(&kc->sh->timers, &kc->req_timer);
	else if (!kc->closed)
		(void)timer_rearm(&kc->sh->timers, &kc->req_timer, kc_at(kc, 0)->deadline_ns);
	r.frame = NULL;
	return r;
}

/* Completes the oldest request with `status` (not SL_OK). */
static void kc_fail_head(struct kclient *kc, enum sl_err status)
{
	struct kc_req r = kc_pop(kc);

	SL_ASSERT(status != SL_OK);
	kc->stats.failures++;
	r.done(kc, status, NULL, r.arg);
}

/*
 * Fails the `n` oldest requests (those pending now; a done may queue new
 * ones, which stay for the next connection) with `status`.
 */
static void kc_fail_pending(struct kclient *kc, uint32_t n, enum sl_err status)
{
	for (uint32_t i = 0; i < n && kc->count > 0; i++)
		kc_fail_head(kc, status);
}

/* ---- the socket ---- */

static void kc_backoff_fire(struct timer *t, void *ctx)
{
	struct kclient *kc = KC_CONTAINER_OF(t, struct kclient, backoff_timer);

	(void)ctx;
	kc_enter(kc);
	kc->gen++;
	kc_leave(kc);
}

/* Arms the reconnect backoff and doubles the next one, up to the max. */
static void kc_backoff_arm(struct kclient *kc)
{
	int64_t at;

	if (kc->closed)
		return;
	at = shard_now_ns(kc->sh) + (int64_t)kc->backoff_ms * 1000000;
	(void)timer_rearm(&kc->sh->timers, &kc->backoff_timer, at);   /* EAGAIN: no backoff */
	kc->backoff_ms = SL_MIN(kc->backoff_ms * 2, kc->cfg.reconnect_backoff_max_ms);
	SL_ASSERT(kc->backoff_ms >= kc->cfg.reconnect_backoff_ms);
}

/*
 * Tears the connection (or the attempt) down: shutdown, cancel what is
 * queued on the fd, forget receive state, arm the backoff. The fd is
 * closed by kc_settle once the operations completed. Pending requests are
 * the caller's to fail. `why` is logged (NULL: debug only).
 */
static void kc_sock_drop(struct kclient *kc, const char *why)
{
	if (kc->sock != KC_CONNECTING && kc->sock != KC_OPEN)
		return;
	kc->sock = KC_DRAINING;
	kc->gen++;
	kc->stats.drops++;
	kc->fail_run++;
	if (why != NULL && (kc->fail_run & (kc->fail_run - 1)) == 0)
		LOG_W(kc_shard_id(kc), "kclient %s: %s (drop %u in a row, backoff %u ms)",
		      kc->name, why, kc->fail_run, kc->backoff_ms);
	else
		LOG_D(kc_shard_id(kc), "kclient %s: %s", kc->name, why ? why : "closed");
	(void)shutdown(kc->fd, SHUT_RDWR);
	kc->rpos = kc->rlen = 0;
	if (kc->rx_frame != NULL && !kc->recv_armed) {
		mem_free(kc->sh, kc->rx_frame);
		kc->rx_frame = NULL;
	}
	kc->sent = 0;
	kc->send_off = 0;
	kc->queued_bytes = 0;
	for (uint32_t i = 0; i < kc->count; i++)
		kc->queued_bytes += kc_at(kc, i)->frame_len;
	if (kc->ops > 0 && !kc->cancel_armed) {
		kc->cancel_armed = true;
		kc->ops++;
		struct io_uring_sqe *sqe = ring_get_sqe(kc_ring(kc));
		io_uring_prep_cancel_fd(sqe, kc->fd, IORING_ASYNC_CANCEL_ALL);
		kc->cancel_op.done = kc_cancel_done;
		ring_sqe_set_op(kc_ring(kc), sqe, &kc->cancel_op);
	}
	kc_backoff_arm(kc);
}

/* Drops the connection and fails every pending request with `status`. */
static void kc_fail_all(struct kclient *kc, enum sl_err status, const char *why)
{
	uint32_t n = kc->count;

	kc_sock_drop(kc, why);
	kc_fail_pending(kc, n, status);
}

static void kc_connect(struct kclient *kc)
{
	struct io_uring_sqe *sqe;
	int one = 1;
	int fd;

	SL_ASSERT(kc->sock == KC_IDLE && kc->fd < 0 && kc->ops == 0);
	kc->stats.connect_attempts++;
	if (kc->rbuf == NULL) {
		kc->rbuf = mem_alloc(kc->sh, KCLIENT_RBUF_BYTES);
		if (kc->rbuf == NULL) {
			kc_backoff_arm(kc);
			kc_fail_pending(kc, kc->count, SL_ENOMEM);
			return;
		}
	}
	fd = socket(kc->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		LOG_W(kc_shard_id(kc), "kclient %s: socket: %s", kc->name, strerror(errno));
		kc_backoff_arm(kc);
		kc_fail_pending(kc, kc->count, SL_EIO);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	kc->fd = fd;
	kc->sock = KC_CONNECTING;
	kc->gen++;
	kc->connect_armed = true;
	kc->ops++;
	sqe = ring_get_sqe(kc_ring(kc));
	if (kc->sock != KC_CONNECTING) {
		kc->connect_armed = false;   /* closed meanwhile: leave a NOP */
		kc->ops--;
		return;
	}
	io_uring_prep_connect(sqe, kc->fd, (struct sockaddr *)&kc->addr, kc->addr_len);
	kc->connect_op.done = kc_connect_done;
	ring_sqe_set_op(kc_ring(kc), sqe, &kc->connect_op);
}

static void kc_connect_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct kclient *kc = KC_CONTAINER_OF(op, struct kclient, connect_op);
	char why[128];

	(void)cqe_flags;
	kc_enter(kc);
	SL_ASSERT(kc->connect_armed && kc->ops > 0);
	kc->connect_armed = false;
	kc->ops--;
	kc->gen++;
	if (kc->sock != KC_CONNECTING)
		goto out;
	if (res < 0) {
		snprintf(why, sizeof(why), "connect failed: %s", strerror(-res));
		kc_fail_all(kc, SL_EIO, why);
		goto out;
	}
	kc->sock = KC_OPEN;
	kc->stats.connects++;
	kc->backoff_ms = kc->cfg.reconnect_backoff_ms;
	if (kc->fail_run > 0)
		LOG_I(kc_shard_id(kc), "kclient %s: connected after %u failures", kc->name,
		      kc->fail_run);
	kc->fail_run = 0;
out:
	kc_leave(kc);
}

static void kc_cancel_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct kclient *kc = KC_CONTAINER_OF(op, struct kclient, cancel_op);

	(void)res;   /* -ENOENT: nothing was left to cancel */
	(void)cqe_flags;
	kc_enter(kc);
	SL_ASSERT(kc->cancel_armed && kc->ops > 0);
	kc->cancel_armed = false;
	kc->ops--;
	kc->gen++;
	kc_leave(kc);
}

/* ---- sending ---- */

static void kc_send_pump(struct kclient *kc)
{
	struct io_uring_sqe *sqe;
	uint32_t n = 0;

	if (kc->sock != KC_OPEN || kc->send_armed || kc->sent == kc->count)
		return;
	kc->send_armed = true;
	kc->ops++;
	sqe = ring_get_sqe(kc_ring(kc));
	if (kc->sock != KC_OPEN || kc->sent == kc->count) {
		kc->send_armed = false;
		kc->ops--;
		return;
	}
	for (uint32_t i = kc->sent; i < kc->count && n < KC_IOV_MAX; i++, n++) {
		struct kc_req *r = kc_at(kc, i);
		uint32_t off = i == kc->sent ? kc->send_off : 0;

		SL_ASSERT(r->frame != NULL && off < r->frame_len);
		kc->iov[n].iov_base = r->frame + off;
		kc->iov[n].iov_len = r->frame_len - off;
		r->in_kernel = true;
	}
	memset(&kc->msg, 0, sizeof(kc->msg));
	kc->msg.msg_iov = kc->iov;
	kc->msg.msg_iovlen = n;
	io_uring_prep_sendmsg(sqe, kc->fd, &kc->msg, MSG_NOSIGNAL);
	kc->send_op.done = kc_send_done;
	ring_sqe_set_op(kc_ring(kc), sqe, &kc->send_op);
}

/* Accounts `bytes` written from the unsent requests, freeing whole frames. */
static void kc_send_advance(struct kclient *kc, uint32_t bytes)
{
	for (uint32_t i = 0; i < KC_IOV_MAX && bytes > 0; i++) {
		SL_ASSERT(kc->sent < kc->count);
		struct kc_req *r = kc_at(kc, kc->sent);
		uint32_t left = r->frame_len - kc->send_off;

		if (bytes < left) {
			kc->send_off += bytes;
			return;
		}
		bytes -= left;
		kc->send_off = 0;
		kc->queued_bytes -= r->frame_len;
		free(r->frame);
		r->frame = NULL;
		kc->sent++;
	}
	SL_ASSERT(bytes == 0);
}

static void kc_send_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct kclient *kc = KC_CONTAINER_OF(op, struct kclient, send_op);
	char why[128];

	(void)cqe_flags;
	kc_enter(kc);
	SL_ASSERT(kc->send_armed && kc->ops > 0);
	kc->send_armed = false;
	kc->ops--;
	kc->gen++;
	for (uint32_t i = 0; i < kc->count; i++)
		kc_at(kc, i)->in_kernel = false;
	for (uint32_t i = 0; i < kc->orphan_count; i++)
		free(kc->orphans[i]);
	kc->orphan_count = 0;
	if (kc->sock != KC_OPEN)
		goto out;
	if (res <= 0) {
		snprintf(why, sizeof(why), "send failed: %s", res < 0 ? strerror(-res) : "0 bytes");
		kc_fail_all(kc, SL_EIO, why);
		goto out;
	}
	kc_send_advance(kc, (uint32_t)res);
out:
	kc_leave(kc);
}

/* ---- receiving ---- */

static void kc_recv_arm(struct kclient *kc)
{
	struct io_uring_sqe *sqe;

	if (kc->sock != KC_OPEN || kc->recv_armed)
		return;
	kc->recv_armed = true;
	kc->ops++;
	sqe = ring_get_sqe(kc_ring(kc));
	if (kc->sock != KC_OPEN) {
		kc->recv_armed = false;
		kc->ops--;
		return;
	}
	if (kc->rx_frame != NULL) {
		io_uring_prep_recv(sqe, kc->fd, kc->rx_frame + kc->rx_have,
				   kc->rx_len - kc->rx_have, 0);
	} else {
		if (kc->rpos > 0) {
			memmove(kc->rbuf, kc->rbuf + kc->rpos, kc->rlen - kc->rpos);
			kc->rlen -= kc->rpos;
			kc->rpos = 0;
		}
		/* Whole frames were delivered; a partial one fits after compaction. */
		SL_ASSERT(kc->rlen < KCLIENT_RBUF_BYTES);
		io_uring_prep_recv(sqe, kc->fd, kc->rbuf + kc->rlen, KCLIENT_RBUF_BYTES - kc->rlen, 0);
	}
	kc->recv_op.done = kc_recv_done;
	ring_sqe_set_op(kc_ring(kc), sqe, &kc->recv_op);
}

/*
 * Hands one response frame (`len` bytes after the size prefix at `buf`;
 * `owned` when it is rx_frame, passed over) to the oldest request's done.
 * A response nobody waits for, a wrong correlation id or a bad header is
 * a protocol error: the connection drops and everything pending fails.
 */
static void kc_deliver(struct kclient *kc, const uint8_t *buf, uint32_t len, uint8_t *owned)
{
	uint8_t arena_mem[256];
	struct karena arena;
	struct ResponseHeader hdr;
	struct kread r;
	char why[128];

	SL_ASSERT(len >= KC_RESPONSE_BYTES_MIN);
	int32_t corr = (int32_t)be32_load(buf);
	if (kc->sent == 0) {
		snprintf(why, sizeof(why), "response (correlation id %d) to no request", corr);
		goto protocol;
	}
	struct kc_req *head = kc_at(kc, 0);
	if (corr != head->correlation_id) {
		snprintf(why, sizeof(why), "correlation id %d, expected %d", corr,
			 head->correlation_id);
		goto protocol;
	}
	karena_init(&arena, arena_mem, sizeof(arena_mem));
	kread_init(&r, buf, len);
	if (kafka_decode_response_header(&r, kafka_response_header_version(head->api_key,
					 head->api_version), &hdr, &arena) != SL_OK) {
		snprintf(why, sizeof(why), "bad response header (correlation id %d)", corr);
		goto protocol;
	}
	struct kc_req req = kc_pop(kc);
	kc->cur_ptr = buf;
	kc->cur_len = len;
	kc->cur_owned = owned;
	kc->cur_taken = false;
	kc->stats.responses++;
	req.done(kc, SL_OK, &r, req.arg);
	if (owned != NULL && !kc->cur_taken)
		mem_free(kc->sh, owned);
	kc->cur_ptr = NULL;
	kc->cur_owned = NULL;
	return;
protocol:
	if (owned != NULL)
		mem_free(kc->sh, owned);
	kc_fail_all(kc, SL_ECORRUPT, why);
}

/* Judges a response size prefix; false (after failing all) when bad. */
static bool kc_size_ok(struct kclient *kc, int32_t size)
{
	char why[128];

	if (size >= (int32_t)KC_RESPONSE_BYTES_MIN && (uint32_t)size <= kc->cfg.response_bytes_max)
		return true;
	snprintf(why, sizeof(why), "response frame of %d bytes (limit %u)", size,
		 kc->cfg.response_bytes_max);
	kc_fail_all(kc, SL_ECORRUPT, why);
	return false;
}

/*
 * Delivers the whole frames buffered in rbuf; a frame that cannot fit rbuf
 * moves to an exact-size rx_frame, received straight into.
 */
static void kc_parse(struct kclient *kc)
{
	for (uint32_t n = 0; n < KC_PARSE_MAX && kc->sock == KC_OPEN && kc->rx_frame == NULL; n++) {
		uint32_t avail = kc->rlen - kc->rpos;
		if (avail < 4)
			return;
		int32_t size = (int32_t)be32_load(kc->rbuf + kc->rpos);
		if (!kc_size_ok(kc, size))
			return;
		if (avail - 4 >= (uint32_t)size) {
			const uint8_t *frame = kc->rbuf + kc->rpos + 4;
			kc->rpos += 4 + (uint32_t)size;
			kc->gen++;
			kc_deliver(kc, frame, (uint32_t)size, NULL);
			continue;
		}
		if ((uint32_t)size + 4 <= KCLIENT_RBUF_BYTES)
			return;   /* the rest comes into rbuf */
		kc->rx_frame = mem_alloc(kc->sh, (size_t)size);
		if (kc->rx_frame == NULL) {
			kc_fail_all(kc, SL_ENOMEM, "no memory for a response");
			return;
		}
		kc->rx_len = (uint32_t)size;
		kc->rx_have = avail - 4;
		memcpy(kc->rx_frame, kc->rbuf + kc->rpos + 4, kc->rx_have);
		kc->rpos = kc->rlen = 0;
		kc->gen++;
	}
}

static void kc_recv_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct kclient *kc = KC_CONTAINER_OF(op, struct kclient, recv_op);
	char why[128];

	(void)cqe_flags;
	kc_enter(kc);
	SL_ASSERT(kc->recv_armed && kc->ops > 0);
	kc->recv_armed = false;
	kc->ops--;
	kc->gen++;
	if (kc->sock != KC_OPEN) {
		if (kc->rx_frame != NULL) {   /* kept for the kernel until now */
			mem_free(kc->sh, kc->rx_frame);
			kc->rx_frame = NULL;
		}
		goto out;
	}
	if (res <= 0) {
		if (res == 0)
			snprintf(why, sizeof(why), "connection closed by the peer");
		else
			snprintf(why, sizeof(why), "receive failed: %s", strerror(-res));
		kc_fail_all(kc, SL_EIO, why);
		goto out;
	}
	if (kc->rx_frame != NULL) {
		kc->rx_have += (uint32_t)res;
		SL_ASSERT(kc->rx_have <= kc->rx_len);
		if (kc->rx_have == kc->rx_len) {
			uint8_t *frame = kc->rx_frame;
			kc->rx_frame = NULL;
			kc_deliver(kc, frame, kc->rx_len, frame);
		}
	} else {
		kc->rlen += (uint32_t)res;
		SL_ASSERT(kc->rlen <= KCLIENT_RBUF_BYTES);
	}
out:
	kc_leave(kc);
}

/* ---- timeouts ---- */

static void kc_timeout_fire(struct timer *t, void *ctx)
{
	struct kclient *kc = KC_CONTAINER_OF(t, struct kclient, req_timer);
	int64_t now = shard_now_ns(kc->sh);

	(void)ctx;
	kc_enter(kc);
	kc->gen++;
	if (kc->count == 0 || kc->closed)
		goto out;
	if (kc_at(kc, 0)->deadline_ns > now) {
		(void)timer_rearm(&kc->sh->timers, &kc->req_timer, kc_at(kc, 0)->deadline_ns);
		goto out;
	}
	if (kc->sock == KC_OPEN || kc->sock == KC_CONNECTING) {
		/* As Kafka's clients: a timed-out request costs its connection. */
		uint32_t others = kc->count - 1;
		kc_sock_drop(kc, "request timed out");
		kc_fail_head(kc, SL_ETIMEDOUT);
		kc_fail_pending(kc, others, SL_EIO);
		goto out;
	}
	/* Not connected (backing off): only the expired requests fail. */
	for (uint32_t n = kc->count; n > 0 && kc->count > 0 && !kc->closed; n--) {
		if (kc_at(kc, 0)->deadline_ns > now)
			break;
		kc_fail_head(kc, SL_ETIMEDOUT);
	}
out:
	kc_leave(kc);
}

/* ---- settle, free ---- */

static void kc_free(struct kclient *kc)
{
	struct shard *sh = kc->sh;

	SL_ASSERT(kc->closed && kc->ops == 0 && kc->count == 0 && kc->depth == 0);
	SL_ASSERT(kc->orphan_count == 0);
	timer_cancel(&sh->timers, &kc->req_timer);
	timer_cancel(&sh->timers, &kc->backoff_timer);
	if (kc->fd >= 0)
		close(kc->fd);
	mem_free(sh, kc->rx_frame);
	mem_free(sh, kc->rbuf);
	mem_free(sh, kc->reqs);
	mem_free(sh, kc);
}

/* One pass of the settle loop (file comment). */
static void kc_settle_pass(struct kclient *kc)
{
	if (kc->sock == KC_DRAINING && kc->ops == 0) {
		close(kc->fd);
		kc->fd = -1;
		kc->sock = KC_IDLE;
		kc->gen++;
	}
	if (kc->closed)
		return;
	if (kc->sock == KC_IDLE && kc->count > 0 && !timer_armed(&kc->backoff_timer))
		kc_connect(kc);
	if (kc->sock == KC_OPEN) {
		kc_parse(kc);
		kc_send_pump(kc);
		kc_recv_arm(kc);
	}
}

static void kc_enter(struct kclient *kc)
{
	SL_ASSERT(kc->depth < 64);
	kc->depth++;
}

/*
 * Leaves a bracket; the outermost settles and may free a closed client:
 * the caller must not touch `kc` afterwards.
 */
static void kc_leave(struct kclient *kc)
{
	SL_ASSERT(kc->depth > 0);
	if (kc->depth > 1) {
		kc->depth--;
		return;
	}
	for (uint32_t n = 0; n < KC_SETTLE_MAX; n++) {
		uint64_t gen = kc->gen;
		kc_settle_pass(kc);
		if (gen == kc->gen)
			break;
	}
	SL_DEBUG_ASSERT(kc_check(kc));
	kc->depth--;
	if (kc->closed && kc->ops == 0)
		kc_free(kc);
}

/* ---- public ---- */

/* Fills the defaults of kclient.h into `c`; false when out of range. */
static bool kc_config_fill(struct kclient_config *c)
{
	if (c->inflight_max == 0)
		c->inflight_max = KCLIENT_INFLIGHT_DEFAULT;
	if (c->request_timeout_ms == 0)
		c->request_timeout_ms = KCLIENT_TIMEOUT_MS_DEFAULT;
	if (c->reconnect_backoff_ms == 0)
		c->reconnect_backoff_ms = KCLIENT_BACKOFF_MS_DEFAULT;
	if (c->reconnect_backoff_max_ms == 0)
		c->reconnect_backoff_max_ms = SL_MAX(KCLIENT_BACKOFF_MAX_MS_DEFAULT,
						     c->reconnect_backoff_ms);
	if (c->response_bytes_max == 0)
		c->response_bytes_max = KCLIENT_RESPONSE_BYTES_DEFAULT;
	if (c->send_bytes_max == 0)
		c->send_bytes_max = KCLIENT_SEND_BYTES_DEFAULT;
	return c->inflight_max <= KCLIENT_INFLIGHT_MAX &&
	       c->reconnect_backoff_max_ms >= c->reconnect_backoff_ms &&
	       c->reconnect_backoff_max_ms <= INT32_MAX / 2 &&
	       c->response_bytes_max >= KC_RESPONSE_BYTES_MIN &&
	       c->response_bytes_max <= INT32_MAX &&
	       (c->client_id == NULL || strlen(c->client_id) <= KCLIENT_CLIENT_ID_MAX);
}

/* Resolves host:port once (see kclient_open). */
static enum sl_err kc_resolve(struct kclient *kc, const char *host, uint16_t port)
{
	struct addrinfo hints, *res = NULL;
	char port_str[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port_str, sizeof(port_str), "%u", (unsigned)port);
	rc = getaddrinfo(host, port_str, &hints, &res);
	if (rc == EAI_NONAME) {
		hints.ai_flags = AI_NUMERICSERV;   /* a name: may block (kclient.h) */
		rc = getaddrinfo(host, port_str, &hints, &res);
	}
	if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(kc->addr)) {
		LOG_W(kc_shard_id(kc), "kclient %s: cannot resolve: %s", kc->name,
		      rc != 0 ? gai_strerror(rc) : "no address");
		if (res != NULL)
			freeaddrinfo(res);
		return SL_ENOTFOUND;
	}
	memcpy(&kc->addr, res->ai_addr, res->ai_addrlen);
	kc->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	return SL_OK;
}

enum sl_err kclient_open(struct kclient **out, struct shard *sh, const char *host, uint16_t port,
			 const struct kclient_config *cfg)
{
	struct kclient *kc = NULL;
	enum sl_err err;

	SL_ASSERT(out != NULL && sh != NULL && host != NULL);
	*out = NULL;
	kc = mem_zalloc(sh, sizeof(*kc));
	if (kc == NULL)
		return SL_ENOMEM;
	kc->sh = sh;
	kc->fd = -1;
	if (cfg != NULL)
		kc->cfg = *cfg;
	err = SL_EINVAL;
	if (port == 0 || !kc_config_fill(&kc->cfg))
		goto fail;
	snprintf(kc->client_id, sizeof(kc->client_id), "%s",
		 kc->cfg.client_id != NULL ? kc->cfg.client_id : "sluice-broker");
	kc->cfg.client_id = kc->client_id;
	snprintf(kc->name, sizeof(kc->name), "%s:%u", host, (unsigned)port);
	err = kc_resolve(kc, host, port);
	if (err != SL_OK)
		goto fail;
	err = SL_ENOMEM;
	kc->reqs = mem_zalloc(sh, (size_t)kc->cfg.inflight_max * sizeof(*kc->reqs));
	if (kc->reqs == NULL)
		goto fail;
	timer_init(&kc->req_timer, kc_timeout_fire);
	timer_init(&kc->backoff_timer, kc_backoff_fire);
	kc->backoff_ms = kc->cfg.reconnect_backoff_ms;
	kc->correlation_next = 1;
	SL_ASSERT(kc_check(kc));
	*out = kc;
	return SL_OK;
fail:
	mem_free(sh, kc->reqs);
	mem_free(sh, kc);
	return err;
}

/* Writes the frame (size, header, body from `enc`) into `w`. */
static enum sl_err kc_frame(struct kclient *kc, struct kwrite *w, int16_t api_key,
			    int16_t api_version, int32_t corr, kafka_encode_fn *enc,
			    const void *request, const void *body, size_t body_len)
{
	struct RequestHeader hdr;
	size_t mark;

	kafka_init_request_header(&hdr);
	hdr.RequestApiKey = api_key;
	hdr.RequestApiVersion = api_version;
	hdr.CorrelationId = corr;
	hdr.ClientId.ptr = (const uint8_t *)kc->client_id;
	hdr.ClientId.len = (int32_t)strlen(kc->client_id);
	mark = kwrite_frame_begin(w);
	(void)kafka_encode_request_header(w, kafka_request_header_version(api_key, api_version),
					  &hdr);
	if (enc != NULL)
		(void)enc(w, api_version, request);
	else
		kwrite_raw(w, body, body_len);
	kwrite_frame_end(w, mark);
	/* The writer's cap is send_bytes_max: a larger frame is SL_ENOMEM there. */
	return w->err == SL_OK ? SL_OK : SL_EINVAL;
}

/* The common part of kclient_send / _encoded. */
static enum sl_err kc_send(struct kclient *kc, int16_t api_key, int16_t api_version,
			   const void *request, const void *body, size_t body_len,
			   kclient_done_fn *done, void *arg)
{
	const struct kafka_api *api = kafka_api_find(api_key);
	struct kwrite w;
	enum sl_err err;

	SL_ASSERT(done != NULL);
	if (kc->closed)
		return SL_ECLOSED;
	if (api == NULL || api_version < api->version_min || api_version > api->version_max)
		return SL_EINVAL;
	if (api_key == KAFKA_API_PRODUCE && request != NULL &&
	    ((const struct ProduceRequest *)request)->Acks == 0)
		return SL_EINVAL;
	if (kc->count >= kc->cfg.inflight_max)
		return SL_EAGAIN;
	int32_t corr = kc->correlation_next;
	kwrite_init(&w, kc->cfg.send_bytes_max);
	err = kc_frame(kc, &w, api_key, api_version, corr,
		       request != NULL ? api->encode_request : NULL, request, body, body_len);
	if (err != SL_OK)
		goto fail;
	err = SL_EAGAIN;
	if (kc->queued_bytes + w.len > kc->cfg.send_bytes_max)
		goto fail;
	int64_t deadline = shard_now_ns(kc->sh) + (int64_t)kc->cfg.request_timeout_ms * 1000000;
	if (kc->count == 0 && timer_rearm(&kc->sh->timers, &kc->req_timer, deadline) != SL_OK)
		goto fail;

	kc_enter(kc);
	struct kc_req *r = &kc->reqs[(kc->head + kc->count) % kc->cfg.inflight_max];
	r->correlation_id = corr;
	r->api_key = api_key;
	r->api_version = api_version;
	r->in_kernel = false;
	r->done = done;
	r->arg = arg;
	r->deadline_ns = deadline;
	r->frame = w.buf;     /* ownership moves from the writer to the request */
	r->frame_len = (uint32_t)w.len;
	kc->count++;
	kc->queued_bytes += w.len;
	kc->correlation_next = corr == INT32_MAX ? 1 : corr + 1;
	kc->gen++;
	kc_leave(kc);
	return SL_OK;
fail:
	kwrite_destroy(&w);
	return err;
}

enum sl_err kclient_send(struct kclient *kc, int16_t api_key, int16_t api_version,
			 const void *request, kclient_done_fn *done, void *arg)
{
	SL_ASSERT(request != NULL);
	return kc_send(kc, api_key, api_version, request, NULL, 0, done, arg);
}

enum sl_err kclient_send_encoded(struct kclient *kc, int16_t api_key, int16_t api_version,
				 const void *body, size_t body_len, kclient_done_fn *done,
				 void *arg)
{
	SL_ASSERT(body != NULL || body_len == 0);
	return kc_send(kc, api_key, api_version, NULL, body, body_len, done, arg);
}

void *kclient_response_take(struct kclient *kc, struct kread *body)
{
	uint8_t *buf;

	SL_ASSERT(kc->cur_ptr != NULL && !kc->cur_taken);
	SL_ASSERT(body->p >= kc->cur_ptr && body->end <= kc->cur_ptr + kc->cur_len);
	if (kc->cur_owned != NULL) {
		kc->cur_taken = true;
		return kc->cur_owned;
	}
	buf = mem_alloc(kc->sh, kc->cur_len);
	if (buf == NULL)
		return NULL;
	memcpy(buf, kc->cur_ptr, kc->cur_len);
	body->p = buf + (body->p - kc->cur_ptr);
	body->end = buf + (body->end - kc->cur_ptr);
	kc->cur_taken = true;
	return buf;
}

void kclient_response_free(struct shard *sh, void *buf)
{
	mem_free(sh, buf);
}

void kclient_close(struct kclient *kc)
{
	kc_enter(kc);
	if (kc->closed)
		goto out;
	kc->closed = true;
	kc->gen++;
	timer_cancel(&kc->sh->timers, &kc->backoff_timer);
	kc_sock_drop(kc, NULL);
	kc_fail_pending(kc, kc->count, SL_ECLOSED);
	SL_ASSERT(kc->count == 0);
	timer_cancel(&kc->sh->timers, &kc->req_timer);
out:
	kc_leave(kc);
}

uint32_t kclient_pending(const struct kclient *kc)
{
	return kc->count;
}

bool kclient_connected(const struct kclient *kc)
{
	return kc->sock == KC_OPEN;
}

void kclient_stats(const struct kclient *kc, struct kclient_stats *out)
{
	*out = kc->stats;
	out->backoff_ms = kc->backoff_ms;
}
