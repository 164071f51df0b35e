/*
 * listener.h — one listening socket per shard, accepting through io_uring.
 *
 * Every shard binds its own socket to the same address with SO_REUSEPORT,
 * so the kernel spreads incoming connections across shards and a
 * connection lives on the shard that accepted it. Shard 0's socket is
 * bound by main before the shards start (listener_socket), which fixes
 * the port when the configuration says port 0; the other shards bind that
 * port.
 *
 * Accepting: IORING_OP_ACCEPT in multishot mode (one SQE, one CQE per
 * connection, IORING_CQE_F_MORE while it stays armed); when the kernel
 * ends it (no F_MORE) it is re-armed. Without multishot support a single
 * accept is re-armed after each completion. An accept error (EMFILE, ...)
 * re-arms after LISTENER_RETRY_MS instead of spinning.
 *
 * States and transitions:
 *   IDLE --listener_start--> ACCEPTING --listener_close: cancel-->
 *   CLOSING --last completion--> CLOSED (fd closed; broker notified)
 *
 * Runs on: the owning shard (listener_socket: main thread).
 */
#ifndef SL_NET_LISTENER_H
#define SL_NET_LISTENER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ring.h"
#include "sl.h"
#include "timer.h"

#define LISTENER_RETRY_MS 100

struct broker_shard;

enum listener_state {
	LISTENER_IDLE = 0,
	LISTENER_ACCEPTING,
	LISTENER_CLOSING,
	LISTENER_CLOSED,
};

struct listener {
	struct broker_shard *bs;
	int fd;
	enum listener_state state;
	bool armed;                  /* an accept SQE is in flight */
	bool multishot;
	struct ring_op accept_op;
	struct ring_op cancel_op;
	bool cancel_inflight;
	struct timer retry;
	uint64_t accepted;
	uint64_t errors;
};

/*
 * Resolves `host` ("" = every IPv4 address) and fills *addr / *addr_len
 * with `port`. SL_OK or SL_EINVAL (logged). Runs on: main.
 */
enum sl_err listener_resolve(const char *host, uint16_t port, struct sockaddr_storage *addr,
			     socklen_t *addr_len);

/*
 * Fails with -EADDRINUSE when something already listens on `addr` (a
 * fixed port): SO_REUSEPORT would otherwise let a second broker of the
 * same user share the port silently. Binds a plain socket (SO_REUSEADDR
 * only, so TIME_WAIT does not count) and closes it. 0 or -errno.
 */
int listener_probe(const struct sockaddr_storage *addr, socklen_t addr_len);

/*
 * A socket with SO_REUSEADDR + SO_REUSEPORT bound to `addr` and listening
 * with `backlog`. Returns the fd (blocking, CLOEXEC) and the bound port in
 * *port, or -errno (logged with `what`).
 */
int listener_socket(const struct sockaddr_storage *addr, socklen_t addr_len, int backlog,
		    uint16_t *port);

/* Starts accepting on `fd` (taken over: closed by the listener). Runs on: bs's shard. */
enum sl_err listener_start(struct listener *l, struct broker_shard *bs, int fd);

/* Stops accepting; CLOSED once the last completion arrived. Idempotent. */
void listener_close(struct listener *l);

static inline bool listener_closed(const struct listener *l)
{
	return l->state == LISTENER_CLOSED || l->state == LISTENER_IDLE;
}

#endif
