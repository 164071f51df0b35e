/*
 * test_kclient.c — the outbound Kafka client (net/kclient.c) against a
 * peer the test controls: a listening socket on 127.0.0.1:0 served by a
 * thread with blocking I/O that speaks raw length-prefixed frames.
 *
 * The test thread drives a local (thread-less) shard with shard_run_once;
 * the peer thread never calls cmocka: it records what it saw and a failure
 * text, checked after it is joined. Every blocking peer read has a receive
 * timeout, so a broken client fails the test instead of hanging it.
 *
 * Covered: responses matched in order with several in flight, request and
 * response header versions (flexible, ControlledShutdown v0), a response
 * split into many small writes, a response larger than the receive buffer
 * (taken without a copy), a frame above the limit, a wrong correlation id,
 * the peer closing mid-response, a request timeout then a reconnect,
 * kclient_close inside done and outside, connection refused with backoff
 * growth, the synchronous refusals (EAGAIN / EINVAL). ASan checks leaks.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bytes.h"
#include "kafka_codec.h"
#include "kclient.h"
#include "kwrite.h"
#include "shard.h"

#define REQ_MAX 16
#define DRIVE_TURNS_MAX 5000   /* x 10 ms = 50 s at most */
#define BIG_BODY (300u * 1024u)

/* ---- the peer (runs on its own thread) ---- */

enum scenario {
	SC_ORDER,         /* 8 requests, answered in order with markers */
	SC_SPLIT,         /* 2 requests: 1-byte writes, then a 300 KiB body in 4 KiB writes */
	SC_TOO_LARGE,     /* 2 requests, a size prefix of 5000 */
	SC_BAD_CORR,      /* 2 requests, the answer carries another correlation id */
	SC_CLOSE_MID,     /* 2 requests, half a response, close */
	SC_TIMEOUT,       /* conn 1: 2 requests, no answer; conn 2: 1 request, answered */
	SC_CLOSE_IN_DONE, /* 3 requests, only the first answered */
	SC_SILENT,        /* accept, read until the client closes */
};

struct peer {
	enum scenario sc;
	int lfd;
	uint16_t port;
	pthread_t th;
	char fail[256];
	int n_req;                  /* requests read */
	int16_t keys[REQ_MAX];
	int16_t vers[REQ_MAX];
	int32_t corrs[REQ_MAX];
	int client_id_ok[REQ_MAX];  /* 1: as expected for its header version */
	int conns;                  /* connections accepted */
};

static void peer_failf(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->fail[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(p->fail, sizeof(p->fail), fmt, ap);
	va_end(ap);
}

static int peer_read_full(int fd, void *buf, size_t n)
{
	size_t have = 0;

	while (have < n) {
		ssize_t r = read(fd, (uint8_t *)buf + have, n - have);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return 0;
}

static int peer_write_full(int fd, const void *buf, size_t n)
{
	size_t have = 0;

	while (have < n) {
		ssize_t r = send(fd, (const uint8_t *)buf + have, n - have, MSG_NOSIGNAL);
		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	return 0;
}

static int peer_accept(struct peer *p)
{
	struct timeval tv = { .tv_sec = 10 };
	int one = 1;
	int fd = accept(p->lfd, NULL, NULL);

	if (fd < 0) {
		peer_failf(p, "accept: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->conns++;
	return fd;
}

/* Reads one request frame and records its header. 0, or -1 (recorded). */
static int peer_read_req(struct peer *p, int fd)
{
	uint8_t size_buf[4];
	static uint8_t frame[1 << 16];

	if (peer_read_full(fd, size_buf, 4) != 0) {
		peer_failf(p, "request %d: no size", p->n_req);
		return -1;
	}
	uint32_t size = be32_load(size_buf);
	if (size < 8 || size > sizeof(frame) || peer_read_full(fd, frame, size) != 0 ||
	    p->n_req >= REQ_MAX) {
		peer_failf(p, "request %d: bad frame of %u bytes", p->n_req, size);
		return -1;
	}
	int i = p->n_req++;
	p->keys[i] = (int16_t)be16_load(frame);
	p->vers[i] = (int16_t)be16_load(frame + 2);
	p->corrs[i] = (int32_t)be32_load(frame + 4);
	int16_t hv = kafka_request_header_version(p->keys[i], p->vers[i]);
	if (hv == 0) {
		p->client_id_ok[i] = 1;   /* header v0: no client id at all */
	} else {
		uint16_t len = be16_load(frame + 8);
		p->client_id_ok[i] = size >= 10u + len && len == 11 &&
				     memcmp(frame + 10, "test-client", 11) == 0;
		/* v2 adds an empty tagged-field section after the id */
		if (hv == 2)
			p->client_id_ok[i] &= frame[10 + len] == 0;
	}
	return 0;
}

/*
 * Writes a response: size, correlation id, an empty tag section when
 * `flexible_hdr`, then `body`, in writes of `chunk` bytes.
 */
static int peer_respond(int fd, int32_t corr, int flexible_hdr, const void *body, size_t len,
			size_t chunk)
{
	size_t total = 4 + 4 + (flexible_hdr ? 1 : 0) + len;
	uint8_t *buf = malloc(total);
	int rc = 0;

	if (buf == NULL)
		return -1;
	be32_store(buf, (uint32_t)(total - 4));
	be32_store(buf + 4, (uint32_t)corr);
	if (flexible_hdr)
		buf[8] = 0;
	if (len > 0)
		memcpy(buf + total - len, body, len);
	for (size_t off = 0; off < total && rc == 0; off += chunk) {
		rc = peer_write_full(fd, buf + off, SL_MIN(chunk, total - off));
		if (chunk < 64)
			usleep(50);   /* make the pieces separate segments */
	}
	free(buf);
	return rc;
}

static int peer_respond_marker(int fd, int32_t corr, int flexible_hdr, int32_t marker)
{
	uint8_t body[4];

	be32_store(body, (uint32_t)marker);
	return peer_respond(fd, corr, flexible_hdr, body, 4, 1 << 20);
}

/* Blocks until the client closes its side (read returns 0 or fails). */
static void peer_wait_eof(int fd)
{
	uint8_t b[256];

	for (int i = 0; i < 100000; i++)
		if (read(fd, b, sizeof(b)) <= 0)
			return;
}

static void peer_order(struct peer *p, int fd)
{
	for (int i = 0; i < 8; i++)
		if (peer_read_req(p, fd) != 0)
			return;
	for (int i = 0; i < 8 && p->fail[0] == '\0'; i++) {
		int flex = kafka_response_header_version(p->keys[i], p->vers[i]) == 1;
		if (p->keys[i] == KAFKA_API_API_VERSIONS && p->vers[i] == 3) {
			struct ApiVersionsResponse resp;
			struct ApiVersionsResponse_ApiVersion av = { KAFKA_API_FETCH, 4, 12 };
			struct kwrite w;
			kafka_init_api_versions_response(&resp);
			resp.ApiKeys.count = 1;
			resp.ApiKeys.items = &av;
			resp.ThrottleTimeMs = 7;
			kwrite_init(&w, 1 << 16);
			kafka_encode_api_versions_response(&w, 3, &resp);
			if (w.err != SL_OK || peer_respond(fd, p->corrs[i], flex, w.buf, w.len, 1 << 20))
				peer_failf(p, "ApiVersions response");
			kwrite_destroy(&w);
		} else if (peer_respond_marker(fd, p->corrs[i], flex, 1000 + i) != 0) {
			peer_failf(p, "write %d", i);
		}
	}
	peer_wait_eof(fd);
}

static void peer_split(struct peer *p, int fd)
{
	uint8_t small[200];
	uint8_t *big = malloc(BIG_BODY);

	for (int i = 0; i < 2; i++)
		if (peer_read_req(p, fd) != 0)
			goto out;
	for (size_t i = 0; i < sizeof(small); i++)
		small[i] = (uint8_t)(i * 3);
	for (size_t i = 0; i < BIG_BODY; i++)
		big[i] = (uint8_t)(i * 7 + 1);
	if (peer_respond(fd, p->corrs[0], 0, small, sizeof(small), 1) != 0 ||
	    peer_respond(fd, p->corrs[1], 0, big, BIG_BODY, 4096) != 0)
		peer_failf(p, "split write");
	peer_wait_eof(fd);
out:
	free(big);
}

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	int fd = peer_accept(p);
	uint8_t raw[16];

	if (fd < 0)
		return NULL;
	switch (p->sc) {
	case SC_ORDER:
		peer_order(p, fd);
		break;
	case SC_SPLIT:
		peer_split(p, fd);
		break;
	case SC_TOO_LARGE:
	case SC_BAD_CORR:
	case SC_CLOSE_MID:
		if (peer_read_req(p, fd) != 0 || peer_read_req(p, fd) != 0)
			break;
		if (p->sc == SC_TOO_LARGE) {
			be32_store(raw, 5000);
			be32_store(raw + 4, (uint32_t)p->corrs[0]);
			peer_write_full(fd, raw, 8);
		} else if (p->sc == SC_BAD_CORR) {
			peer_respond_marker(fd, p->corrs[0] + 5, 0, 1);
		} else {
			be32_store(raw, 100);
			be32_store(raw + 4, (uint32_t)p->corrs[0]);
			peer_write_full(fd, raw, 10);
			break;   /* close mid-response */
		}
		peer_wait_eof(fd);
		break;
	case SC_TIMEOUT:
		if (peer_read_req(p, fd) != 0 || peer_read_req(p, fd) != 0)
			break;
		peer_wait_eof(fd);   /* the client gives up on its own */
		close(fd);
		fd = peer_accept(p);
		if (fd < 0 || peer_read_req(p, fd) != 0)
			break;
		peer_respond_marker(fd, p->corrs[2], 0, 77);
		peer_wait_eof(fd);
		break;
	case SC_CLOSE_IN_DONE:
		for (int i = 0; i < 3; i++)
			if (peer_read_req(p, fd) != 0)
				goto done;
		peer_respond_marker(fd, p->corrs[0], 0, 5);
		peer_wait_eof(fd);
		break;
	case SC_SILENT:
		peer_wait_eof(fd);
		break;
	}
done:
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void peer_start(struct peer *p, enum scenario sc)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	memset(p, 0, sizeof(*p));
	p->sc = sc;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->lfd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 8), 0);
	struct timeval tv = { .tv_sec = 10 };   /* accept gives up too */
	setsockopt(p->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &len), 0);
	p->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&p->th, NULL, peer_main, p), 0);
}

static void peer_join(struct peer *p)
{
	assert_int_equal(pthread_join(p->th, NULL), 0);
	close(p->lfd);
	if (p->fail[0] != '\0')
		fail_msg("peer: %s", p->fail);
}

/* ---- the client side ---- */

struct env {
	struct shard_group *g;
	struct shard *sh;
};

struct call {
	int done;
	enum sl_err status;
	int32_t marker;          /* first int32 of the body, or -1 */
	size_t body_left;        /* body bytes after the marker */
	int order;
	void *taken;             /* kclient_response_take result */
	struct kread taken_body; /* the body, re-pointed into `taken` */
	int take;                /* take the response */
	int close_in_done;       /* kclient_close from done */
	int16_t av_max;          /* ApiVersions: the decoded MaxVersion, else -1 */
	int32_t av_throttle;
};

static int call_order;

static void env_start(struct env *e)
{
	struct shard_group_options opt;

	memset(&opt, 0, sizeof(opt));
	opt.shard_count = 1;
	assert_int_equal(shard_group_create(&e->g, &opt), SL_OK);
	assert_int_equal(shard_group_start_local(e->g), SL_OK);
	e->sh = shard_group_shard(e->g, 0);
	call_order = 0;
}

static void env_stop(struct env *e)
{
	shard_group_stop(e->g);
	assert_int_equal(shard_group_join(e->g), SL_OK);
	shard_group_destroy(e->g);
}

static void drive_until(struct env *e, const int *flag, int want)
{
	for (int i = 0; i < DRIVE_TURNS_MAX && *flag < want; i++)
		assert_int_equal(shard_run_once(e->sh, 10 * 1000 * 1000), SL_OK);
	assert_true(*flag >= want);
}

static void call_done(struct kclient *kc, enum sl_err status, struct kread *body, void *arg)
{
	struct call *c = arg;

	c->done++;
	c->status = status;
	c->order = call_order++;
	c->marker = -1;
	c->av_max = -1;
	if (body != NULL) {
		if (c->take) {
			c->taken = kclient_response_take(kc, body);
			c->taken_body = *body;
		}
		struct kread r = *body;
		c->marker = kread_i32(&r);
		c->body_left = kread_left(&r);
	}
	if (c->close_in_done)
		kclient_close(kc);
}

/* ApiVersions v3 responses decode here. */
static void call_done_av(struct kclient *kc, enum sl_err status, struct kread *body, void *arg)
{
	struct call *c = arg;
	struct ApiVersionsResponse resp;
	struct karena a;

	(void)kc;
	c->done++;
	c->status = status;
	c->order = call_order++;
	c->av_max = -1;
	if (body == NULL)
		return;
	assert_int_equal(karena_init_heap(&a, 4096), SL_OK);
	if (kafka_decode_api_versions_response(body, 3, &resp, &a) == SL_OK &&
	    kread_left(body) == 0 && resp.ApiKeys.count == 1) {
		c->av_max = resp.ApiKeys.items[0].MaxVersion;
		c->av_throttle = resp.ThrottleTimeMs;
	}
	karena_destroy(&a);
}

static struct kclient_config test_cfg(void)
{
	struct kclient_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.client_id = "test-client";
	cfg.reconnect_backoff_ms = 10;
	cfg.reconnect_backoff_max_ms = 40;
	cfg.request_timeout_ms = 20000;
	return cfg;
}

static const uint8_t empty_body[1];

/* ApiVersions v0 with an empty body: the simplest request there is. */
static enum sl_err send_raw(struct kclient *kc, struct call *c)
{
	return kclient_send_encoded(kc, KAFKA_API_API_VERSIONS, 0, empty_body, 0, call_done, c);
}

static void test_order_and_headers(void **state)
{
	struct env e;
	struct peer p;
	struct kclient *kc;
	struct kclient_config cfg = test_cfg();
	struct call c[8];
	struct ApiVersionsRequest av;
	struct MetadataRequest md;
	struct ControlledShutdownRequest cs;
	struct kclient_stats st;

	(void)state;
	memset(c, 0, sizeof(c));
	env_start(&e);
	peer_start(&p, SC_ORDER);
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", p.port, &cfg), SL_OK);
	assert_false(kclient_connected(kc));
	kafka_init_api_versions_request(&av);
	av.ClientSoftwareName = KSLICE_LIT("sluice");
	av.ClientSoftwareVersion = KSLICE_LIT("1");
	kafka_init_metadata_request(&md);
	md.Topics.count = -1;
	kafka_init_controlled_shutdown_request(&cs);
	cs.BrokerId = 3;
	assert_int_equal(kclient_send(kc, KAFKA_API_API_VERSIONS, 3, &av, call_done_av, &c[0]),
			 SL_OK);
	assert_int_equal(kclient_send(kc, KAFKA_API_METADATA, 12, &md, call_done, &c[1]), SL_OK);
	assert_int_equal(kclient_send(kc, KAFKA_API_CONTROLLED_SHUTDOWN, 0, &cs, call_done, &c[2]),
			 SL_OK);
	for (int i = 3; i < 8; i++)
		assert_int_equal(send_raw(kc, &c[i]), SL_OK);
	assert_int_equal(kclient_pending(kc), 8);
	assert_int_equal(c[0].done, 0);   /* never synchronously */
	drive_until(&e, &c[7].done, 1);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(c[i].done, 1);
		assert_int_equal(c[i].status, SL_OK);
		assert_int_equal(c[i].order, i);
	}
	assert_int_equal(c[0].av_max, 12);
	assert_int_equal(c[0].av_throttle, 7);
	for (int i = 1; i < 8; i++) {
		assert_int_equal(c[i].marker, 1000 + i);   /* flexible header skipped for Metadata */
		assert_int_equal(c[i].body_left, 0);
	}
	assert_true(kclient_connected(kc));
	assert_int_equal(kclient_pending(kc), 0);
	kclient_stats(kc, &st);
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.responses, 8);
	kclient_close(kc);
	peer_join(&p);
	assert_int_equal(p.n_req, 8);
	assert_int_equal(p.keys[1], KAFKA_API_METADATA);
	assert_int_equal(p.vers[1], 12);
	for (int i = 0; i < 8; i++) {
		assert_true(p.client_id_ok[i]);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(p.corrs[i], p.corrs[j]);
	}
	env_stop(&e);
}

static void test_split_and_large(void **state)
{
	struct env e;
	struct peer p;
	struct kclient *kc;
	struct kclient_config cfg = test_cfg();
	struct call c[2];

	(void)state;
	memset(c, 0, sizeof(c));
	c[0].take = c[1].take = 1;
	env_start(&e);
	peer_start(&p, SC_SPLIT);
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", p.port, &cfg), SL_OK);
	assert_int_equal(send_raw(kc, &c[0]), SL_OK);
	assert_int_equal(send_raw(kc, &c[1]), SL_OK);
	drive_until(&e, &c[1].done, 1);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(c[i].status, SL_OK);
		assert_non_null(c[i].taken);
	}
	/* the taken bodies outlive their callbacks and hold the peer's bytes */
	assert_int_equal(kread_left(&c[0].taken_body), 200);
	for (size_t i = 0; i < 200; i++)
		assert_int_equal(c[0].taken_body.p[i], (uint8_t)(i * 3));
	assert_int_equal(kread_left(&c[1].taken_body), BIG_BODY);
	for (size_t i = 0; i < BIG_BODY; i++)
		if (c[1].taken_body.p[i] != (uint8_t)(i * 7 + 1))
			fail_msg("big body byte %zu", i);
	/* the big frame changed hands without a copy: the body starts 4 bytes in */
	assert_ptr_equal(c[1].taken_body.p, (uint8_t *)c[1].taken + 4);
	kclient_response_free(e.sh, c[0].taken);
	kclient_response_free(e.sh, c[1].taken);
	kclient_close(kc);
	peer_join(&p);
	env_stop(&e);
}

/* Two requests; the peer misbehaves (`sc`); both fail with `want`. */
static void run_fail_both(enum scenario sc, enum sl_err want)
{
	struct env e;
	struct peer p;
	struct kclient *kc;
	struct kclient_config cfg = test_cfg();
	struct kclient_stats st;
	struct call c[2];

	memset(c, 0, sizeof(c));
	cfg.response_bytes_max = 1000;
	env_start(&e);
	peer_start(&p, sc);
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", p.port, &cfg), SL_OK);
	assert_int_equal(send_raw(kc, &c[0]), SL_OK);
	assert_int_equal(send_raw(kc, &c[1]), SL_OK);
	drive_until(&e, &c[1].done, 1);
	assert_int_equal(c[0].done, 1);
	assert_int_equal(c[0].status, want);
	assert_int_equal(c[1].status, want);
	assert_int_equal(c[0].order, 0);
	assert_false(kclient_connected(kc));
	kclient_stats(kc, &st);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.drops, 1);
	kclient_close(kc);
	peer_join(&p);
	env_stop(&e);
}

static void test_too_large(void **state)
{
	(void)state;
	run_fail_both(SC_TOO_LARGE, SL_ECORRUPT);
}

static void test_bad_correlation(void **state)
{
	(void)state;
	run_fail_both(SC_BAD_CORR, SL_ECORRUPT);
}

static void test_peer_closes_mid_response(void **state)
{
	(void)state;
	run_fail_both(SC_CLOSE_MID, SL_EIO);
}

static void test_timeout_then_reconnect(void **state)
{
	struct env e;
	struct peer p;
	struct kclient *kc;
	struct kclient_config cfg = test_cfg();
	struct kclient_stats st;
	struct call c[3];

	(void)state;
	memset(c, 0, sizeof(c));
	cfg.request_timeout_ms = 200;
	env_start(&e);
	peer_start(&p, SC_TIMEOUT);
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", p.port, &cfg), SL_OK);
	assert_int_equal(send_raw(kc, &c[0]), SL_OK);
	assert_int_equal(send_raw(kc, &c[1]), SL_OK);
	drive_until(&e, &c[1].done, 1);
	assert_int_equal(c[0].status, SL_ETIMEDOUT);
	assert_int_equal(c[1].status, SL_EIO);
	assert_int_equal(c[0].order, 0);
	/* the next send connects again (after the backoff) and is answered */
	assert_int_equal(send_raw(kc, &c[2]), SL_OK);
	drive_until(&e, &c[2].done, 1);
	assert_int_equal(c[2].status, SL_OK);
	assert_int_equal(c[2].marker, 77);
	kclient_stats(kc, &st);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.backoff_ms, 10);   /* reset by the successful connect */
	kclient_close(kc);
	peer_join(&p);
	assert_int_equal(p.conns, 2);
	env_stop(&e);
}

static void test_close_in_done(void **state)
{
	struct env e;
	struct peer p;
	struct kclient *kc;
	struct kclient_config cfg = test_cfg();
	struct call c[3];

	(void)state;
	memset(c, 0, sizeof(c));
	c[0].close_in_done = 1;
	env_start(&e);
	peer_start(&p, SC_CLOSE_IN_DONE);
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", p.port, &cfg), SL_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(send_raw(kc, &c[i]), SL_OK);
	drive_until(&e, &c[2].done, 1);
	assert_int_equal(c[0].status, SL_OK);
	assert_int_equal(c[0].marker, 5);
	assert_int_equal(c[1].status, SL_ECLOSED);
	assert_int_equal(c[2].status, SL_ECLOSED);
	assert_int_equal(c[1].done + c[2].done, 2);
	/* the peer sees the client go away; the loop frees the client (ASan) */
	peer_join(&p);
	env_stop(&e);
}

static void test_close_with_pending(void **state)
{
	struct env e;
	struct peer p;
	struct kclient *kc;
	struct kclient_config cfg = test_cfg();
	struct call c[2];

	(void)state;
	memset(c, 0, sizeof(c));
	env_start(&e);
	peer_start(&p, SC_SILENT);
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", p.port, &cfg), SL_OK);
	assert_int_equal(send_raw(kc, &c[0]), SL_OK);
	assert_int_equal(send_raw(kc, &c[1]), SL_OK);
	/* connect and send, then close with both in flight */
	for (int i = 0; i < DRIVE_TURNS_MAX && !kclient_connected(kc); i++)
		assert_int_equal(shard_run_once(e.sh, 10 * 1000 * 1000), SL_OK);
	assert_true(kclient_connected(kc));
	kclient_close(kc);
	assert_int_equal(c[0].done, 1);
	assert_int_equal(c[1].done, 1);
	assert_int_equal(c[0].status, SL_ECLOSED);
	assert_int_equal(c[1].status, SL_ECLOSED);
	peer_join(&p);
	env_stop(&e);
}

static void test_refused_backoff(void **state)
{
	struct env e;
	struct kclient *kc;
	struct kclient_config cfg = test_cfg();
	struct kclient_stats st;
	struct call c[3];
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd;

	(void)state;
	memset(c, 0, sizeof(c));
	/* a port nothing listens on: bound, then closed */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	env_start(&e);
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", ntohs(a.sin_port), &cfg), SL_OK);
	uint32_t want_backoff[3] = { 20, 40, 40 };   /* doubled, capped at the max */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(send_raw(kc, &c[i]), SL_OK);
		drive_until(&e, &c[i].done, 1);
		assert_int_equal(c[i].status, SL_EIO);
		kclient_stats(kc, &st);
		assert_int_equal(st.connect_attempts, (uint64_t)i + 1);
		assert_int_equal(st.connects, 0);
		assert_int_equal(st.backoff_ms, want_backoff[i]);
	}
	kclient_close(kc);
	env_stop(&e);
}

static void test_refusals(void **state)
{
	struct env e;
	struct kclient *kc;
	struct kclient_config cfg = test_cfg();
	struct call c[4];
	struct ProduceRequest pr;
	static uint8_t big[4096];

	(void)state;
	memset(c, 0, sizeof(c));
	env_start(&e);
	/* bad configs and hosts */
	cfg.inflight_max = KCLIENT_INFLIGHT_MAX + 1;
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", 9092, &cfg), SL_EINVAL);
	cfg = test_cfg();
	cfg.reconnect_backoff_max_ms = 5;   /* below the base */
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", 9092, &cfg), SL_EINVAL);
	cfg = test_cfg();
	assert_int_equal(kclient_open(&kc, e.sh, "no-such-host.invalid", 9092, &cfg), SL_ENOTFOUND);

	/* a listener that never accepts: connects complete in its backlog */
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	cfg.inflight_max = 3;
	cfg.send_bytes_max = 1024;
	assert_int_equal(kclient_open(&kc, e.sh, "127.0.0.1", ntohs(a.sin_port), &cfg), SL_OK);
	assert_int_equal(kclient_send_encoded(kc, KAFKA_API_API_VERSIONS, 0, big, sizeof(big),
					      call_done, &c[0]), SL_EINVAL);   /* > send_bytes_max */
	assert_int_equal(kclient_send_encoded(kc, KAFKA_API_API_VERSIONS, 99, empty_body, 0,
					      call_done, &c[0]), SL_EINVAL);   /* no such version */
	assert_int_equal(kclient_send_encoded(kc, 17, 0, empty_body, 0, call_done, &c[0]),
			 SL_EINVAL);   /* api not in the codec */
	kafka_init_produce_request(&pr);
	pr.Acks = 0;
	assert_int_equal(kclient_send(kc, KAFKA_API_PRODUCE, 9, &pr, call_done, &c[0]), SL_EINVAL);
	assert_int_equal(send_raw(kc, &c[0]), SL_OK);
	assert_int_equal(send_raw(kc, &c[1]), SL_OK);
	/* 990 more unsent bytes would pass send_bytes_max; the frame alone would not */
	assert_int_equal(kclient_send_encoded(kc, KAFKA_API_API_VERSIONS, 0, big, 990, call_done,
					      &c[2]), SL_EAGAIN);
	assert_int_equal(send_raw(kc, &c[2]), SL_OK);
	assert_int_equal(send_raw(kc, &c[3]), SL_EAGAIN);   /* inflight_max */
	assert_int_equal(kclient_pending(kc), 3);
	kclient_close(kc);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].done, 1);
		assert_int_equal(c[i].status, SL_ECLOSED);
	}
	assert_int_equal(c[3].done, 0);
	env_stop(&e);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_headers),
		cmocka_unit_test(test_split_and_large),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_bad_correlation),
		cmocka_unit_test(test_peer_closes_mid_response),
		cmocka_unit_test(test_timeout_then_reconnect),
		cmocka_unit_test(test_close_in_done),
		cmocka_unit_test(test_close_with_pending),
		cmocka_unit_test(test_refused_backoff),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
