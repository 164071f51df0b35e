/*
 * listener.c — see listener.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "conn.h"
#include "log.h"

#define LISTENER_CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

enum sl_err listener_resolve(const char *host, uint16_t port, struct sockaddr_storage *addr,
			     socklen_t *addr_len)
{
	struct addrinfo hints, *res = NULL;
	char service[8];
	int rc;

	memset(addr, 0, sizeof(*addr));
	if (host[0] == '\0') {
		struct sockaddr_in *in = (struct sockaddr_in *)addr;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		*addr_len = sizeof(*in);
		return SL_OK;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc != 0 || res == NULL) {
		LOG_E(LOG_NO_SHARD, "listener: cannot resolve %s: %s", host, gai_strerror(rc));
		return SL_EINVAL;
	}
	SL_ASSERT(res->ai_addrlen <= sizeof(*addr));
	memcpy(addr, res->ai_addr, res->ai_addrlen);
	*addr_len = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	return SL_OK;
}

int listener_probe(const struct sockaddr_storage *addr, socklen_t addr_len)
{
	int one = 1, rc = 0;
	int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)addr, addr_len) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

int listener_socket(const struct sockaddr_storage *addr, socklen_t addr_len, int backlog,
		    uint16_t *port)
{
	struct sockaddr_storage bound;
	socklen_t bound_len = sizeof(bound);
	const char *what = "socket";
	int one = 1;
	int fd, rc;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	what = "setsockopt";
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
		rc = -errno;
		goto fail;
	}
	what = "bind";
	if (bind(fd, (const struct sockaddr *)addr, addr_len) != 0) {
		rc = -errno;
		goto fail;
	}
	what = "listen";
	if (listen(fd, backlog) != 0) {
		rc = -errno;
		goto fail;
	}
	what = "getsockname";
	if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
		rc = -errno;
		goto fail;
	}
	*port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						  : ((struct sockaddr_in *)&bound)->sin_port);
	return fd;
fail:
	LOG_E(LOG_NO_SHARD, "listener: %s failed: %s", what, strerror(-rc));
	if (fd >= 0)
		close(fd);
	return rc;
}

static void listener_accept_done(struct ring_op *op, int res, uint32_t cqe_flags);

/* Queues one accept SQE (multishot when supported). */
static void listener_arm(struct listener *l)
{
	struct ring *ring = &l->bs->sh->ring;

	SL_ASSERT(!l->armed && l->state == LISTENER_ACCEPTING);
	l->armed = true;
	struct io_uring_sqe *sqe = ring_get_sqe(ring);
	if (l->multishot)
		io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
	l->accept_op.done = listener_accept_done;
	ring_sqe_set_op(ring, sqe, &l->accept_op);
}

static void listener_finish(struct listener *l)
{
	if (l->state != LISTENER_CLOSING || l->armed || l->cancel_inflight)
		return;
	close(l->fd);
	l->fd = -1;
	l->state = LISTENER_CLOSED;
	broker_shard_check_barrier(l->bs);
}

static void listener_retry_fire(struct timer *t, void *ctx)
{
	struct listener *l = LISTENER_CONTAINER_OF(t, struct listener, retry);

	(void)ctx;
	if (l->state == LISTENER_ACCEPTING && !l->armed)
		listener_arm(l);
}

static void listener_accept_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct listener *l = LISTENER_CONTAINER_OF(op, struct listener, accept_op);
	struct shard *sh = l->bs->sh;

	if (!(cqe_flags & IORING_CQE_F_MORE))
		l->armed = false;
	if (res >= 0) {
		l->accepted++;
		if (l->state == LISTENER_ACCEPTING)
			conn_accept(l->bs, res);
		else
			close(res);
	} else if (res == -EINVAL && l->multishot && l->accepted == 0 && l->errors == 0) {
		/* An old kernel without multishot accept: fall back. */
		LOG_I(sh->id, "listener: multishot accept unsupported, using single accepts");
		l->multishot = false;
	} else if (res != -ECANCELED) {
		l->errors++;
		LOG_W(sh->id, "listener: accept failed: %s (retrying in %d ms)", strerror(-res),
		      LISTENER_RETRY_MS);
		if (l->armed) {
			/* Still armed: nothing to re-arm. */
		} else if (l->state == LISTENER_ACCEPTING &&
			   timer_add(&sh->timers, &l->retry,
				     shard_now_ns(sh) + (int64_t)LISTENER_RETRY_MS * 1000000) == SL_OK) {
			return;
		}
	}
	if (!l->armed && l->state == LISTENER_ACCEPTING)
		listener_arm(l);
	listener_finish(l);
}

enum sl_err listener_start(struct listener *l, struct broker_shard *bs, int fd)
{
	memset(l, 0, sizeof(*l));
	l->bs = bs;
	l->fd = fd;
	l->multishot = true;
	l->state = LISTENER_ACCEPTING;
	timer_init(&l->retry, listener_retry_fire);
	listener_arm(l);
	SL_ASSERT(l->armed);
	return SL_OK;
}

static void listener_cancel_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct listener *l = LISTENER_CONTAINER_OF(op, struct listener, cancel_op);

	(void)res;
	(void)cqe_flags;
	l->cancel_inflight = false;
	listener_finish(l);
}

void listener_close(struct listener *l)
{
	if (l->state != LISTENER_ACCEPTING)
		return;
	struct ring *ring = &l->bs->sh->ring;
	l->state = LISTENER_CLOSING;
	timer_cancel(&l->bs->sh->timers, &l->retry);
	if (l->armed) {
		l->cancel_inflight = true;
		struct io_uring_sqe *sqe = ring_get_sqe(ring);
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&l->accept_op, 0);
		l->cancel_op.done = listener_cancel_done;
		ring_sqe_set_op(ring, sqe, &l->cancel_op);
	}
	listener_finish(l);
}
