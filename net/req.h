/*
 * req.h — one Kafka request on a connection, as an API handler sees it.
 * Implemented in conn.c (the connection owns its requests).
 *
 * What a handler (net/api_<name>.c, registered in dispatch.c) gets:
 *   rq->body         the decoded request (struct FooRequest *), valid until
 *                    the request is freed; its slices point into rq's frame
 *                    and its arrays into rq's memory
 *   rq->api_version  the version to answer in
 *   rq->bs / rq->sh  the connection's shard
 * and what it must do, exactly once, now or later (on this shard):
 *   req_respond(rq, &resp)   encode and queue the response, or
 *   req_respond_none(rq)     no response at all (Produce with acks=0).
 * Returning an error from the handler instead (before responding) closes
 * the connection: use it only for requests that cannot be answered
 * (malformed beyond what per-partition errors express).
 *
 * Memory: req_alloc hands out zeroed memory that lives as long as the
 * request (response structs, per-partition state, cross-shard parts other
 * shards borrow). It comes from the request's arena, then from extra
 * blocks, up to REQ_MEM_BYTES_MAX in all; NULL past that.
 *
 * Zero-copy records (Fetch): before responding, reserve n file slots with
 * req_files_reserve, set each deferred `Records = KSLICE_DEFERRED(len)` and
 * add its file range with req_file_add in the same order the encoder meets
 * them (topics, then partitions). The bytes then go from the file to the
 * socket (splice), never through user space.
 *
 * Hooks (optional):
 *   rq->cancel(rq)   the connection is closing while the handler still
 *                    works: cut waits short (the handler must still
 *                    respond; the response is dropped).
 *   rq->finish(rq)   the response was sent (or dropped); runs once. It may
 *                    keep the request alive with req_hold and let it go
 *                    with req_unhold (e.g. until segment references went
 *                    back to their owner shards).
 *
 * States: RECEIVING (frame arriving) -> HANDLING (handler running) ->
 * READY (response queued) -> SENT -> FINISHED (finish ran) -> freed when
 * no holds remain. Runs on: the connection's shard only.
 */
#ifndef SL_NET_REQ_H
#define SL_NET_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka_codec.h"
#include "sendq.h"
#include "sl.h"

#define REQ_MEM_BYTES_MAX (256u << 20)

struct conn;
struct req;
struct broker_shard;
struct shard;

typedef void req_hook_fn(struct req *rq);

enum req_state {
	REQ_RECEIVING = 0,
	REQ_HANDLING,
	REQ_READY,
	REQ_FINISHED,
};

struct req_block;

struct req {
	struct sendq_item item;          /* first: the connection's order */
	struct conn *conn;
	struct broker_shard *bs;
	struct shard *sh;
	struct req *prev, *next;         /* every request of the connection */
	enum req_state state;
	/* the frame (after its size prefix), exact size, from the shard arena */
	uint8_t *frame;
	uint32_t frame_len;
	/* decoded */
	struct RequestHeader hdr;
	int16_t api_key;
	int16_t api_version;
	int16_t resp_version;            /* version of the response body */
	void *body;
	/* memory */
	struct karena arena;
	void *arena_mem;
	struct req_block *blocks;
	size_t mem_bytes;                /* arena + blocks */
	/* response */
	struct kwrite out;
	struct kwrite_hole *holes;
	struct sendq_file *files;
	uint32_t file_cap;
	uint32_t file_count;
	bool has_response;
	/* handler */
	req_hook_fn *cancel;
	req_hook_fn *finish;
	void *api;                       /* the handler's state */
	uint32_t holds;
	int64_t start_ns;
	enum sl_err (*in_order)(struct req *rq);  /* req_in_order: waiting to run */
};

/*
 * Runs fn(rq) once every earlier request of rq's connection has its answer
 * ready: at once (returning fn's result) when they have, else later from
 * the connection's settle loop (then an error from fn closes the
 * connection, as a handler's error does) and SL_OK now. For answers that
 * describe state other requests change (Metadata): a pipelining client
 * must never get an answer computed before the effects of a request it
 * sent earlier — Kafka handles one request per connection at a time.
 */
enum sl_err req_in_order(struct req *rq, enum sl_err (*fn)(struct req *rq));

/* Zeroed request-lifetime memory, or NULL (REQ_MEM_BYTES_MAX reached). */
void *req_alloc(struct req *rq, size_t size);

/* Reserves `n` file slots for deferred records. SL_OK or SL_ENOMEM. */
enum sl_err req_files_reserve(struct req *rq, uint32_t n);
/* Adds the next deferred records' file range (in encoding order). */
void req_file_add(struct req *rq, int fd, int64_t pos, uint32_t len);

/*
 * Encodes `resp` (the response struct of rq's api, in rq->resp_version)
 * behind a response header and queues it. An encoding failure (response
 * larger than the cap) closes the connection (logged).
 */
void req_respond(struct req *rq, const void *resp);
/* The request is answered by silence (acks=0). */
void req_respond_none(struct req *rq);

/* True when the connection is closing: work may stop early. */
bool req_conn_closing(const struct req *rq);

/*
 * Closes rq's connection (logged with `why`), e.g. Produce with acks=0
 * that failed: Kafka closes so the client notices. The handler still
 * answers (req_respond / req_respond_none); the answer is dropped.
 */
void req_conn_close(struct req *rq, const char *why);

/* Keeps a finished request alive / lets it go (see above). */
void req_hold(struct req *rq);
void req_unhold(struct req *rq);

/* "api=Produce v9 corr=12 client=rdkafka" style prefix for log lines. */
const char *req_client_id(const struct req *rq, char *buf, size_t len);

#endif
