/*
 * conn.h — one client connection on one shard: framing, request
 * pipeline, ordered responses, zero-copy sends.
 *
 * Receive: one IORING_OP_RECV at a time into a CONN_RBUF_BYTES buffer;
 * frames are cut from it (frame.h judges the size before any allocation);
 * a frame larger than what the buffer holds gets its exact-size request
 * buffer at once and the rest is received straight into it. Each frame
 * becomes a `struct req` (req.h): header decoded, api looked up in the
 * dispatch table (an unknown key or unsupported version closes the
 * connection — except ApiVersions, answered with UNSUPPORTED_VERSION),
 * body decoded, handler called.
 *
 * Backpressure: at most CONN_INFLIGHT_MAX requests per connection between
 * their first byte and their last response byte. At the bound the
 * connection stops receiving; it resumes when a request is freed.
 * Request memory per shard: every frame buffer is reserved from the
 * shard's budget (rxbudget.h, bs->rxb) before it is allocated; a frame
 * that does not fit parks the connection (PARKED: no receive armed, the
 * size prefix stays in rbuf) until freed request memory lets the budget
 * grant it (conn_budget_wake_fire, a zero-delay timer, so a release never
 * re-enters another connection). The budget always admits a frame when
 * the shard holds no request memory, so parking cannot deadlock.
 *
 * Idle: a per-shard sweep timer closes connections that moved no byte
 * for connections.max.idle.ms and have no request (<= 0: never).
 * Connections beyond max.connections / num.shards on a shard are refused
 * at accept (logged 1st, 2nd, 4th... time).
 *
 * Send: responses leave in request order (sendq.h): one IORING_OP_SENDMSG
 * gathers up to CONN_IOV_MAX memory pieces across ready responses; record
 * bytes of Fetch responses go file -> pipe -> socket with two
 * IORING_OP_SPLICE steps (a pipe per connection, made on first use and
 * sized with F_SETPIPE_SZ). A file shorter than the response promised
 * (truncation raced with the read) closes the connection: a malformed
 * response must never be sent.
 *
 * Close: state CLOSING, shutdown(2) the socket, cancel every operation on
 * it, call the cancel hook of requests still being handled; free each
 * request once its handler responded and no operation can touch its
 * memory; free the connection when the last operation completed and the
 * last request is gone (STYLE.md: cancel, wait for completions, free).
 *
 * States: OPEN --conn_close--> CLOSING --ops == 0 && no requests--> freed.
 * While OPEN: receiving <--conn_parse: frame does not fit / budget grant--> PARKED.
 *
 * Invariants:
 *   1. ops counts this connection's SQEs whose final CQE has not been
 *      dispatched; at most one recv, one send/splice and one cancel.
 *   2. reqs (list) == every request not yet freed, in arrival order; the
 *      sendq holds those not yet popped, in the same order.
 *   3. req_count <= CONN_INFLIGHT_MAX (+1 for the frame in RECEIVING).
 *   4. Each request's frame_len bytes are reserved in bs->rxb from just
 *      before its frame is allocated until it is freed; rx_granted bytes
 *      are reserved for the frame parse will cut next (0: none).
 *   5. Parked (rxw.waiting) or granted => no receive armed.
 *
 * Runs on: the connection's shard.
 */
#ifndef SL_NET_CONN_H
#define SL_NET_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "req.h"
#include "ring.h"
#include "rxbudget.h"
#include "sendq.h"
#include "sl.h"

/* 128: an acks=all produce is held for a replication round (follower
 * fetch, its append, its next fetch); librdkafka with linger.ms=0 sends one
 * request per message, so the window bounds a connection's rate at
 * CONN_INFLIGHT_MAX per round (16 capped it near 5k/s on 2 cores and the
 * rest queued in the socket). Memory stays bounded by rxbudget. */
#define CONN_INFLIGHT_MAX 128u
#define CONN_RBUF_BYTES (64u * 1024u)
#define CONN_IOV_MAX 64u
#define CONN_RESPONSE_BYTES_MAX (64u << 20)  /* in-memory part of one response */
#define CONN_PIPE_BYTES (1u << 20)
#define CONN_PEER_MAX 64

struct broker_shard;

enum conn_state {
	CONN_OPEN = 0,
	CONN_CLOSING,
};

enum conn_splice {
	CONN_SPLICE_NONE = 0,
	CONN_SPLICE_IN,                  /* file -> pipe in flight */
	CONN_SPLICE_OUT,                 /* pipe -> socket in flight */
};

struct conn {
	struct broker_shard *bs;
	struct conn *prev, *next;        /* bs->conns */
	uint64_t id;
	int fd;
	char peer[CONN_PEER_MAX];
	enum conn_state state;
	uint32_t ops;                    /* invariant 1 */
	/* receive */
	uint8_t *rbuf;
	uint32_t rlen;                   /* bytes in rbuf */
	uint32_t rpos;                   /* first unparsed byte */
	struct req *rx;                  /* frame being received into its own buffer */
	uint32_t rx_have;
	bool recv_armed;
	struct ring_op recv_op;
	struct rxbudget_waiter rxw;      /* parked on bs->rxb (invariant 5) */
	uint32_t rx_granted;             /* invariant 4 */
	int64_t active_ns;               /* last byte in or out (idle sweep) */
	/* requests */
	struct req *reqs_head, *reqs_tail;
	uint32_t req_count;
	struct sendq q;
	/* send */
	bool send_armed;
	struct ring_op send_op;
	struct msghdr msg;
	struct iovec iov[CONN_IOV_MAX];
	size_t send_bytes;               /* bytes offered to the op in flight */
	/* splice */
	int pipe_rd, pipe_wr;
	uint32_t pipe_cap;
	uint32_t pipe_fill;              /* bytes in the pipe */
	enum conn_splice splice;
	/* close */
	bool cancel_armed;
	struct ring_op cancel_op;
	uint32_t depth;                  /* conn_enter nesting (conn.c) */
	/* statistics */
	uint64_t requests;
	uint64_t bytes_in;
};

/*
 * Takes over accepted socket `fd`: makes a connection and starts
 * receiving, or closes fd when the shard is at its connection limit or
 * stopping (logged, rate-limited). Runs on: bs's shard.
 */
void conn_accept(struct broker_shard *bs, int fd);

/* Closes `c` (idempotent); `why` is logged (NULL: quietly, peer closed). */
void conn_close(struct conn *c, const char *why);

/*
 * Per-shard connection limits, from bs->b->config: sizes the request
 * memory budget bs->rxb (rxbudget_bytes_for: queued.max.request.bytes /
 * shards, or 2 x socket.request.max.bytes when unbounded) and arms the idle
 * sweep (connections.max.idle.ms). Before the listener starts. Runs on: bs's shard.
 */
void conn_limits_start(struct broker_shard *bs);
/* Disarms the limit timers (shutdown; bs->stopping is set). */
void conn_limits_stop(struct broker_shard *bs);

#endif
