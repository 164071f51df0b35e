/*
 * kclient.h — an outbound Kafka client connection for inter-broker
 * requests (controller -> brokers: LeaderAndIsr, UpdateMetadata,
 * StopReplica; follower -> leader: Fetch, OffsetForLeaderEpoch; leader ->
 * controller: AlterPartition; broker -> controller: ControlledShutdown).
 *
 * One kclient talks to one broker endpoint from one shard's io_uring loop:
 * no threads, no blocking calls after kclient_open. The caller hands it
 * request structs (or encoded bodies); it frames them with the right
 * request header, sends them in order, matches the responses and calls
 * each request's `done` exactly once.
 *
 * Socket states (kc->sock) and the function behind each transition:
 *
 *   IDLE --kc_connect (a request is queued, no backoff armed)--> CONNECTING
 *   CONNECTING --kc_connect_done ok--> OPEN        (backoff reset to base)
 *   CONNECTING --kc_connect_done error--> DRAINING (pending fail SL_EIO)
 *   OPEN --EOF, I/O error, protocol error, timeout (kc_sock_drop)--> DRAINING
 *   DRAINING --last operation completed; fd closed (kc_settle)--> IDLE
 *   any --kclient_close--> DRAINING / IDLE with `closed` set; the memory
 *        is freed by kc_settle once no operation is in flight.
 * Every drop arms the reconnect backoff (reconnect_backoff_ms, doubled per
 * consecutive failure up to reconnect_backoff_max_ms, no jitter so tests
 * are deterministic); a successful connect resets it. Requests sent while
 * disconnected or backing off wait in the queue (their timeout runs) and
 * go out once the next connection is up.
 *
 * Invariants (kc_check):
 *   1. The queue holds `count` <= inflight_max requests in send order;
 *      requests [0, sent) are fully written, [sent, count) are not; Kafka
 *      answers a connection's requests in order, so a response must carry
 *      the correlation id of the oldest request, which must be sent.
 *   2. queued_bytes = sum of frame_len of requests [sent, count) <=
 *      send_bytes_max; a fully sent request's frame is freed at once.
 *   3. `ops` = connect + recv + send + cancel operations in flight; the fd
 *      is closed and the object freed only when ops == 0. A buffer handed
 *      to the kernel (a frame in a send, rbuf / rx_frame in a recv) is not
 *      freed or moved until its completion (failed requests' frames wait
 *      in `orphans`).
 *   4. The request timer is armed iff count > 0 and not closed, at the
 *      oldest request's deadline (the oldest has the earliest: one timeout
 *      for all).
 *   5. Callbacks (done) run only from kc_settle or kc entry points with the
 *      depth counter held, so nothing is freed under a running callback.
 *
 * Memory per client: the queue (inflight_max slots), unsent frames <=
 * send_bytes_max, a 64 KiB receive buffer, and one frame larger than that
 * (<= response_bytes_max) while it is received and delivered; it is freed
 * right after its done returns unless done took it.
 *
 * Runs on: the shard given to kclient_open, only.
 */
#ifndef SL_NET_KCLIENT_H
#define SL_NET_KCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kread.h"
#include "sl.h"

struct shard;
struct kclient;

#define KCLIENT_INFLIGHT_MAX 64u
#define KCLIENT_INFLIGHT_DEFAULT 16u
#define KCLIENT_CLIENT_ID_MAX 255u
#define KCLIENT_TIMEOUT_MS_DEFAULT 30000u       /* request.timeout.ms */
#define KCLIENT_BACKOFF_MS_DEFAULT 50u          /* reconnect.backoff.ms */
#define KCLIENT_BACKOFF_MAX_MS_DEFAULT 1000u    /* reconnect.backoff.max.ms */
/* replica.fetch.response.max.bytes (10 MiB) + one oversized batch + headers. */
#define KCLIENT_RESPONSE_BYTES_DEFAULT (16u << 20)
#define KCLIENT_SEND_BYTES_DEFAULT (16u << 20)
#define KCLIENT_RBUF_BYTES (64u * 1024u)

/* Zero-initialise, then set what you need: zero means "default". */
struct kclient_config {
	const char *client_id;             /* copied; NULL: "sluice-broker" */
	uint32_t inflight_max;             /* requests queued + in flight, <= KCLIENT_INFLIGHT_MAX */
	uint32_t request_timeout_ms;
	uint32_t reconnect_backoff_ms;
	uint32_t reconnect_backoff_max_ms; /* >= reconnect_backoff_ms */
	uint32_t response_bytes_max;       /* a larger response frame fails the connection */
	uint32_t send_bytes_max;           /* unsent request bytes */
};

struct kclient_stats {
	uint64_t connect_attempts;
	uint64_t connects;          /* attempts that succeeded */
	uint64_t drops;             /* connections or attempts torn down */
	uint64_t responses;         /* requests completed with SL_OK */
	uint64_t failures;          /* requests completed with an error */
	uint32_t backoff_ms;        /* the backoff the next drop arms */
};

/*
 * Completion of one request, called exactly once per accepted request:
 *   SL_OK             `body` is positioned after the response header; decode
 *                     it with kafka_decode_<api>_response(body, version, ..).
 *                     It points into a buffer that lives until done returns,
 *                     unless kclient_response_take keeps it.
 *   SL_ETIMEDOUT request_timeout_ms passed (the connection is closed,
 *                     the other pending requests fail with SL_EIO)
 *   SL_EIO            connect failed, the peer closed, a socket error
 *   SL_ECORRUPT       the peer broke the protocol (frame size < 4 or above
 *                     response_bytes_max, wrong correlation id, bad header):
 *                     every pending request fails so
 *   SL_ECLOSED        kclient_close
 * `body` is NULL unless status is SL_OK. done may call kclient_send (the
 * request goes out on the current or the next connection) and
 * kclient_close (then `kc` stays valid until done returns).
 */
typedef void kclient_done_fn(struct kclient *kc, enum sl_err status, struct kread *body,
			     void *arg);

/*
 * Creates a client for `host`:`port` on shard `sh`; nothing is connected
 * until the first kclient_send. `host` is resolved here, once: a numeric
 * address never blocks; a name goes through getaddrinfo, which may block,
 * so open clients when a broker's registration is read, not per request
 * (reconnects reuse the address). `cfg` may be NULL (all defaults) and is
 * copied. Returns SL_OK; SL_EINVAL for a bad config; SL_ENOTFOUND when the
 * host does not resolve; SL_ENOMEM. Runs on: sh.
 */
enum sl_err kclient_open(struct kclient **out, struct shard *sh, const char *host, uint16_t port,
			 const struct kclient_config *cfg);

/*
 * Queues request struct `request` (struct <Api>Request of `api_key`, encoded
 * now with the generated codec in `api_version`; the caller may free it on
 * return) and connects if needed. The header is RequestHeader v2 for
 * flexible versions, v0 for ControlledShutdown v0, else v1 (the codec's
 * rule), with a fresh correlation id and the configured client id.
 * Returns SL_OK (done will run exactly once); SL_EAGAIN when inflight_max
 * requests are queued or the unsent bytes would pass send_bytes_max (retry
 * after a done); SL_EINVAL for an unknown api, a version outside the
 * schema, an encoding error, a frame larger than send_bytes_max, or a
 * Produce with acks=0 (no response would ever come); SL_ECLOSED after
 * kclient_close. done is never called synchronously from here.
 */
enum sl_err kclient_send(struct kclient *kc, int16_t api_key, int16_t api_version,
			 const void *request, kclient_done_fn *done, void *arg);

/*
 * As kclient_send with a body already encoded in `api_version` (copied).
 * The caller vouches that a response will come.
 */
enum sl_err kclient_send_encoded(struct kclient *kc, int16_t api_key, int16_t api_version,
				 const void *body, size_t body_len, kclient_done_fn *done,
				 void *arg);

/*
 * Inside a done with SL_OK only, with the `body` it was given: keeps the
 * response beyond the callback. Returns the buffer holding the whole frame
 * (the bytes after the size prefix), allocated on kc's shard, and
 * re-points `body` into it at the same position when it had to copy
 * (responses that fit the 64 KiB receive buffer are copied; larger ones,
 * replication Fetch responses, change hands without a copy). So take
 * first, then decode from `body`. NULL when out of memory (`body` is
 * unchanged and valid until done returns). At most once per response.
 * Free with kclient_response_free on the same shard.
 */
void *kclient_response_take(struct kclient *kc, struct kread *body);
void kclient_response_free(struct shard *sh, void *buf);

/*
 * Fails every pending request with SL_ECLOSED (their done run before this
 * returns), cancels the socket's operations and frees the client once they
 * completed — so the shard must keep running its loop (shard_group_join
 * does). Safe from inside a done callback (kc stays valid until that done
 * returns). `kc` must not be used after the call. Runs on: kc's shard.
 */
void kclient_close(struct kclient *kc);

/* Requests queued or in flight. */
uint32_t kclient_pending(const struct kclient *kc);
/* True while a connection is established. */
bool kclient_connected(const struct kclient *kc);
void kclient_stats(const struct kclient *kc, struct kclient_stats *out);

#endif
