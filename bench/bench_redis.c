/*
 * bench_redis.c — sluice-bench's redis driver: hiredis against Redis
 * Streams. Partition p is the stream key "<name>:<p>".
 *
 * - setup: CONFIG SET appendfsync to cfg->durability (everysec | always);
 *   the server is expected to run with appendonly yes (compare.sh starts it
 *   so), which setup checks and reports.
 * - producer: XADD <key> MAXLEN ~ RB_MAXLEN * d <payload>, pipelined: up
 *   to cfg->inflight_max (capped at RB_WINDOW_MAX) commands written before
 *   their replies are read. Replies come back in order, so a ring of the
 *   intended send times (sized once at open) pairs each reply with its
 *   message. MAXLEN bounds the server's memory: a consumer more than
 *   RB_MAXLEN entries behind loses entries, which the report shows as
 *   "missing".
 * - consumer: XREAD COUNT RB_BATCH BLOCK <ms> STREAMS <its keys> <last ids>,
 *   starting from 0-0 (the keys are new for the run).
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "bench.h"

#define RB_MAXLEN 200000
#define RB_WINDOW_MAX 4096
#define RB_BATCH 1000
#define RB_KEY_MAX 160
#define RB_ID_MAX 48

struct rb_prod {
	redisContext *c;
	uint64_t *intended;   /* ring of RB_WINDOW_MAX send times */
	uint32_t head, count, window;
};

struct rb_cons {
	redisContext *c;
	int key_count;
	const char *argv[2 + 2 + 2 + 2 * BENCH_PARTITIONS_MAX];
	size_t argl[2 + 2 + 2 + 2 * BENCH_PARTITIONS_MAX];
	char keys[BENCH_PARTITIONS_MAX][RB_KEY_MAX];
	char ids[BENCH_PARTITIONS_MAX][RB_ID_MAX];
};

/* Connects to cfg->url (host:port); NULL on failure (reason printed). */
static redisContext *rb_connect(const struct bench_cfg *cfg)
{
	char host[128];
	const char *colon = strrchr(cfg->url, ':');
	struct timeval tv = { .tv_sec = 5 };
	redisContext *c;
	size_t n;

	if (colon == NULL || (n = (size_t)(colon - cfg->url)) >= sizeof(host)) {
		fprintf(stderr, "redis: bad --url %s (want host:port)\n", cfg->url);
		return NULL;
	}
	memcpy(host, cfg->url, n);
	host[n] = '\0';
	c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
	if (c == NULL || c->err) {
		fprintf(stderr, "redis: connect %s: %s\n", cfg->url, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	return c;
}

static enum sl_err rb_setup(const struct bench_cfg *cfg)
{
	redisContext *c = rb_connect(cfg);
	redisReply *r;
	enum sl_err err = SL_OK;

	if (c == NULL)
		return SL_EIO;
	r = redisCommand(c, "CONFIG SET appendfsync %s", cfg->durability);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "redis: CONFIG SET appendfsync %s: %s\n", cfg->durability,
			r ? r->str : c->errstr);
		err = SL_EINVAL;
	}
	freeReplyObject(r);
	r = redisCommand(c, "CONFIG GET appendonly");
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    strcmp(r->element[1]->str, "yes") != 0)
		fprintf(stderr, "redis: warning: appendonly is off on the server\n");
	freeReplyObject(r);
	redisFree(c);
	return err;
}

static void rb_teardown(const struct bench_cfg *cfg)
{
	redisContext *c = rb_connect(cfg);
	int p;

	if (c == NULL)
		return;
	for (p = 0; p < cfg->partitions; p++)
		freeReplyObject(redisCommand(c, "DEL %s:%d", cfg->name, p));
	redisFree(c);
}

static enum sl_err rb_producer_open(struct bench_worker *w)
{
	struct rb_prod *rp = calloc(1, sizeof(*rp));

	if (rp == NULL)
		return SL_ENOMEM;
	rp->window = (uint32_t)SL_MIN(w->cfg->inflight_max, RB_WINDOW_MAX);
	rp->intended = calloc(RB_WINDOW_MAX, sizeof(uint64_t));
	rp->c = rb_connect(w->cfg);
	if (rp->intended == NULL || rp->c == NULL) {
		if (rp->c)
			redisFree(rp->c);
		free(rp->intended);
		free(rp);
		return SL_EIO;
	}
	w->drv = rp;
	return SL_OK;
}

/* Takes one parsed reply (blocking when `block`); 1 if one was consumed. */
static int rb_take_reply(struct bench_worker *w, struct rb_prod *rp, int block)
{
	void *reply = NULL;
	int ok;

	if (rp->count == 0)
		return 0;
	if (redisReaderGetReply(rp->c->reader, &reply) != REDIS_OK)
		return 0;
	if (reply == NULL) {
		if (block) {
			if (redisGetReply(rp->c, &reply) != REDIS_OK)
				reply = NULL;
		} else {
			struct pollfd pfd = { .fd = rp->c->fd, .events = POLLIN };

			if (poll(&pfd, 1, 0) <= 0 || redisBufferRead(rp->c) != REDIS_OK ||
			    redisReaderGetReply(rp->c->reader, &reply) != REDIS_OK)
				reply = NULL;
		}
	}
	if (reply == NULL) {
		if (block && rp->c->err) {   /* connection lost: fail the whole window */
			for (; rp->count > 0; rp->count--, rp->head = (rp->head + 1) % RB_WINDOW_MAX)
				bench_ack(w, rp->intended[rp->head], 0);
		}
		return 0;
	}
	ok = ((redisReply *)reply)->type != REDIS_REPLY_ERROR;
	bench_ack(w, rp->intended[rp->head], ok);
	rp->head = (rp->head + 1) % RB_WINDOW_MAX;
	rp->count--;
	freeReplyObject(reply);
	return 1;
}

static void rb_flush_out(struct rb_prod *rp)
{
	int done = 0, i;

	for (i = 0; i < 1000 && !done; i++)
		if (redisBufferWrite(rp->c, &done) != REDIS_OK)
			return;
}

static enum sl_err rb_produce(struct bench_worker *w, int partition, const void *buf, size_t len)
{
	struct rb_prod *rp = w->drv;
	struct bench_stamp st;

	if (rp->count >= rp->window) {
		rb_flush_out(rp);
		rb_take_reply(w, rp, 1);
		if (rp->count >= rp->window)
			return SL_EAGAIN;
	}
	memcpy(&st, buf, sizeof(st));
	if (redisAppendCommand(rp->c, "XADD %s:%d MAXLEN ~ %d * d %b", w->cfg->name, partition,
			       RB_MAXLEN, buf, len) != REDIS_OK)
		return SL_EIO;
	rp->intended[(rp->head + rp->count) % RB_WINDOW_MAX] = st.intended_ns;
	rp->count++;
	/* write out in chunks so the server works while we build the next */
	if (rp->count % 64 == 0)
		rb_flush_out(rp);
	return SL_OK;
}

static void rb_producer_poll(struct bench_worker *w, int timeout_ms)
{
	struct rb_prod *rp = w->drv;
	int i;

	rb_flush_out(rp);
	for (i = 0; i < RB_WINDOW_MAX && rb_take_reply(w, rp, 0); i++)
		;
	if (timeout_ms > 0 && rp->count > 0) {
		struct pollfd pfd = { .fd = rp->c->fd, .events = POLLIN };

		if (poll(&pfd, 1, timeout_ms) > 0)
			for (i = 0; i < RB_WINDOW_MAX && rb_take_reply(w, rp, 0); i++)
				;
	}
}

static void rb_producer_flush(struct bench_worker *w, int timeout_ms)
{
	struct rb_prod *rp = w->drv;
	uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	rb_flush_out(rp);
	while (rp->count > 0 && bench_now_ns() < deadline && rp->c->err == 0)
		rb_take_reply(w, rp, 1);
}

static void rb_producer_close(struct bench_worker *w)
{
	struct rb_prod *rp = w->drv;

	redisFree(rp->c);
	free(rp->intended);
	free(rp);
	w->drv = NULL;
}

static enum sl_err rb_consumer_open(struct bench_worker *w)
{
	const struct bench_cfg *cfg = w->cfg;
	struct rb_cons *rc = calloc(1, sizeof(*rc));
	int p;

	if (rc == NULL)
		return SL_ENOMEM;
	for (p = w->idx; p < cfg->partitions; p += cfg->consumers) {
		snprintf(rc->keys[rc->key_count], RB_KEY_MAX, "%s:%d", cfg->name, p);
		snprintf(rc->ids[rc->key_count], RB_ID_MAX, "0-0");
		rc->key_count++;
	}
	rc->c = rb_connect(cfg);
	if (rc->c == NULL) {
		free(rc);
		return SL_EIO;
	}
	w->drv = rc;
	return SL_OK;
}

static void rb_consumer_poll(struct bench_worker *w, int timeout_ms)
{
	struct rb_cons *rc = w->drv;
	char block[24];
	redisReply *r;
	size_t s, e;
	int argc = 0, k;

	if (rc->key_count == 0)
		return;
	snprintf(block, sizeof(block), "%d", timeout_ms);
	rc->argv[argc++] = "XREAD";
	rc->argv[argc++] = "COUNT";
	rc->argv[argc++] = "1000";
	rc->argv[argc++] = "BLOCK";
	rc->argv[argc++] = block;
	rc->argv[argc++] = "STREAMS";
	for (k = 0; k < rc->key_count; k++)
		rc->argv[argc++] = rc->keys[k];
	for (k = 0; k < rc->key_count; k++)
		rc->argv[argc++] = rc->ids[k];
	for (k = 0; k < argc; k++)
		rc->argl[k] = strlen(rc->argv[k]);
	r = redisCommandArgv(rc->c, argc, rc->argv, rc->argl);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return;
	}
	for (s = 0; s < r->elements; s++) {
		redisReply *stream = r->element[s], *entries;

		if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2)
			continue;
		for (k = 0; k < rc->key_count; k++)
			if (strcmp(rc->keys[k], stream->element[0]->str) == 0)
				break;
		entries = stream->element[1];
		for (e = 0; k < rc->key_count && e < entries->elements; e++) {
			redisReply *ent = entries->element[e];

			if (ent->elements != 2 || ent->element[1]->elements != 2)
				continue;
			snprintf(rc->ids[k], RB_ID_MAX, "%s", ent->element[0]->str);
			bench_msg(w, ent->element[1]->element[1]->str,
				  ent->element[1]->element[1]->len);
		}
	}
	freeReplyObject(r);
}

static void rb_consumer_close(struct bench_worker *w)
{
	struct rb_cons *rc = w->drv;

	redisFree(rc->c);
	free(rc);
	w->drv = NULL;
}

const struct bench_driver bench_redis_driver = {
	.name = "redis",
	.setup = rb_setup,
	.teardown = rb_teardown,
	.producer_open = rb_producer_open,
	.produce = rb_produce,
	.producer_poll = rb_producer_poll,
	.producer_flush = rb_producer_flush,
	.producer_close = rb_producer_close,
	.consumer_open = rb_consumer_open,
	.consumer_poll = rb_consumer_poll,
	.consumer_close = rb_consumer_close,
};
