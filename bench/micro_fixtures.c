/*
 * micro_fixtures.c — the C fixtures that micro.cc times. See
 * micro_fixtures.h. Each fixture fails loudly (NULL / -1) rather than
 * reporting a figure for work it did not do.
 */
#define _GNU_SOURCE
#include "micro_fixtures.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "batch.h"
#include "batch_build.h"
#include "crc32c.h"
#include "kafka_codec.h"
#include "plog.h"
#include "ring.h"

#define MF_INFLIGHT_MAX 64
#define MF_RING_ENTRIES 256

uint32_t mf_crc32c(const void *buf, size_t len)
{
	return crc32c(0, buf, len);
}

uint32_t mf_crc32c_portable(const void *buf, size_t len)
{
	return crc32c_portable(0, buf, len);
}

struct mf_batch {
	uint8_t *buf;
	size_t len;
};

struct mf_batch *mf_batch_new(size_t batch_bytes, size_t record_bytes)
{
	struct mf_batch *b = calloc(1, sizeof(*b));
	uint8_t *value = malloc(record_bytes);
	struct batch_builder bb;

	if (b == NULL || value == NULL)
		goto fail;
	b->buf = malloc(batch_bytes);
	if (b->buf == NULL)
		goto fail;
	for (size_t i = 0; i < record_bytes; i++)
		value[i] = (uint8_t)('a' + i % 26);
	batch_builder_init(&bb, b->buf, batch_bytes);
	/* Fill until the next record would not fit: the batch is just under
	 * batch_bytes, made of whole records. */
	for (int i = 0; i < 1 << 20; i++) {
		char key[16];
		int key_len = snprintf(key, sizeof(key), "k%d", i);
		if (batch_builder_add(&bb, 1700000000000 + i, key, key_len, value,
				      (int32_t)record_bytes, NULL, 0) != SL_OK)
			break;
	}
	bb.err = SL_OK; /* the last add failed by design: the batch is full */
	b->len = batch_builder_finish(&bb);
	if (b->len == 0)
		goto fail;
	free(value);
	return b;
fail:
	free(value);
	if (b != NULL)
		free(b->buf);
	free(b);
	return NULL;
}

size_t mf_batch_size(const struct mf_batch *b)
{
	return b->len;
}

int mf_batch_validate(const struct mf_batch *b)
{
	struct batch_header h;
	return batch_validate(b->buf, b->len, BATCH_CHECK_ALL, &h) == SL_OK ? 0 : -1;
}

void mf_batch_free(struct mf_batch *b)
{
	if (b == NULL)
		return;
	free(b->buf);
	free(b);
}

/* ---- the storage engine ---- */

struct mf_log {
	struct ring ring;
	struct plog *plog;
	char dir[512];
	/* One buffer per append in flight: the engine rewrites baseOffset in
	 * the caller's buffer and the kernel reads it until completion. */
	uint8_t *bufs[MF_INFLIGHT_MAX];
	struct plog_append appends[MF_INFLIGHT_MAX];
	int pending;
	int failed;
};

/* `done` clears itself: the waiting loop in mf_log_append watches it. */
static void mf_append_done(struct plog_append *a)
{
	a->done = NULL;
}

struct mf_log *mf_log_open(const char *dir)
{
	struct mf_log *log = calloc(1, sizeof(*log));
	struct plog_config cfg;

	if (log == NULL)
		return NULL;
	snprintf(log->dir, sizeof(log->dir), "%s/bench-0", dir);
	if (ring_init(&log->ring, MF_RING_ENTRIES, RING_SETUP_BEST) != 0) {
		free(log);
		return NULL;
	}
	plog_config_default(&cfg);
	if (plog_open(&log->plog, &log->ring, log->dir, &cfg, 0) != SL_OK) {
		ring_exit(&log->ring);
		free(log);
		return NULL;
	}
	return log;
}

int64_t mf_log_append(struct mf_log *log, const struct mf_batch *b, int count)
{
	int64_t bytes = 0;

	if (count > MF_INFLIGHT_MAX)
		return -1;
	for (int i = 0; i < count; i++) {
		if (log->bufs[i] == NULL) {
			log->bufs[i] = malloc(b->len);
			if (log->bufs[i] == NULL)
				return -1;
			memcpy(log->bufs[i], b->buf, b->len);
		}
		struct plog_append *a = &log->appends[i];
		memset(a, 0, sizeof(*a));
		a->buf = log->bufs[i];
		a->len = b->len;
		a->done = mf_append_done;
		if (plog_append(log->plog, a, 0) != SL_OK)
			return -1;
		bytes += (int64_t)b->len;
	}
	/* Wait for every completion: `done` clears a->done. */
	for (int i = 0; i < count; i++) {
		for (int turns = 0; log->appends[i].done != NULL; turns++) {
			if (turns > 1000000 || ring_wait(&log->ring, 1, -1) < 0)
				return -1;
		}
		if (log->appends[i].res != SL_OK)
			return -1;
	}
	return bytes;
}

void mf_log_close(struct mf_log *log)
{
	if (log == NULL)
		return;
	plog_close(log->plog);
	ring_drain(&log->ring);
	ring_exit(&log->ring);
	for (int i = 0; i < MF_INFLIGHT_MAX; i++)
		free(log->bufs[i]);
	free(log);
}

/* ---- plain write(2) ---- */

struct mf_raw {
	int fd;
};

struct mf_raw *mf_raw_open(const char *dir)
{
	char path[512];
	struct mf_raw *raw = calloc(1, sizeof(*raw));

	if (raw == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/raw.log", dir);
	raw->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (raw->fd < 0) {
		free(raw);
		return NULL;
	}
	return raw;
}

int64_t mf_raw_append(struct mf_raw *raw, const struct mf_batch *b, int count)
{
	int64_t bytes = 0;
	for (int i = 0; i < count; i++) {
		size_t done = 0;
		while (done < b->len) {
			ssize_t n = write(raw->fd, b->buf + done, b->len - done);
			if (n <= 0)
				return -1;
			done += (size_t)n;
		}
		bytes += (int64_t)b->len;
	}
	return bytes;
}

void mf_raw_close(struct mf_raw *raw)
{
	if (raw == NULL)
		return;
	close(raw->fd);
	free(raw);
}

/* ---- index lookups ---- */

struct mf_index {
	struct mf_log *log;
	int64_t end;
	uint64_t rng;
};

struct mf_index *mf_index_new(const char *dir, int batches)
{
	struct mf_index *ix = calloc(1, sizeof(*ix));
	/* 4 KiB batches of 100-byte records: about one index entry per batch
	 * at the default 4096-byte interval, so a lookup is a binary search of
	 * the index plus a header read or two. */
	struct mf_batch *b = mf_batch_new(4096, 100);

	if (ix == NULL || b == NULL)
		goto fail;
	ix->log = mf_log_open(dir);
	if (ix->log == NULL)
		goto fail;
	for (int done = 0; done < batches; done += 16)
		if (mf_log_append(ix->log, b, 16) < 0)
			goto fail;
	ix->end = plog_end_offset(ix->log->plog);
	ix->rng = 0x9E3779B97F4A7C15ull;
	mf_batch_free(b);
	return ix;
fail:
	mf_batch_free(b);
	if (ix != NULL)
		mf_log_close(ix->log);
	free(ix);
	return NULL;
}

int64_t mf_index_lookup(struct mf_index *ix, int n)
{
	int64_t sum = 0;
	for (int i = 0; i < n; i++) {
		ix->rng ^= ix->rng << 13;
		ix->rng ^= ix->rng >> 7;
		ix->rng ^= ix->rng << 17;
		int64_t off = (int64_t)(ix->rng % (uint64_t)ix->end);
		struct plog_slice s;
		if (plog_read(ix->log->plog, off, 1, ix->end, &s) != SL_OK)
			return -1;
		sum += s.file_pos;
		plog_slice_release(&s);
	}
	return sum;
}

void mf_index_free(struct mf_index *ix)
{
	if (ix == NULL)
		return;
	mf_log_close(ix->log);
	free(ix);
}

/* ---- the Kafka codec ---- */

#define MF_CODEC_PARTITIONS_MAX 1024
#define MF_CODEC_ARENA_BYTES (1u << 20)
#define MF_TOPIC "bench-topic-0001"

struct mf_codec {
	enum mf_codec_kind kind;
	int16_t version;
	struct mf_batch *batch;                 /* the records of every partition */
	struct karena arena;                    /* decode output + message arrays */
	struct karena scratch;                  /* reset on every decode */
	struct kwrite w;                        /* reused on every encode */
	struct kwrite_hole holes[MF_CODEC_PARTITIONS_MAX];
	struct kslice deferred;                 /* KSLICE_DEFERRED(batch_bytes) */
	struct ProduceRequest produce;
	struct FetchRequest fetch;
	struct FetchResponse fetch_resp;
	uint8_t *wire;                          /* one encoding, for decode */
	size_t wire_len;
	size_t wire_bytes;                      /* wire_len + hole bytes */
};

static void mf_codec_build_produce(struct mf_codec *c, int partitions)
{
	struct ProduceRequest *m = &c->produce;
	struct ProduceRequest_TopicProduceData *t =
		karena_alloc(&c->arena, sizeof(*t));
	struct ProduceRequest_PartitionProduceData *p =
		karena_alloc(&c->arena, sizeof(*p) * (size_t)partitions);

	SL_ASSERT(t != NULL && p != NULL);
	kafka_init_produce_request(m);
	m->Acks = -1;
	m->TimeoutMs = 30000;
	kafka_init_produce_request_topic_produce_data(t);
	t->Name = KSLICE_LIT(MF_TOPIC);
	for (int i = 0; i < partitions; i++) {
		kafka_init_produce_request_partition_produce_data(&p[i]);
		p[i].Index = i;
		p[i].Records = (struct kslice){ c->batch->buf, (int32_t)c->batch->len };
	}
	t->PartitionData.count = partitions;
	t->PartitionData.items = p;
	m->TopicData.count = 1;
	m->TopicData.items = t;
	c->version = 9;
}

static void mf_codec_build_fetch(struct mf_codec *c, int partitions)
{
	struct FetchRequest *m = &c->fetch;
	struct FetchRequest_FetchTopic *t = karena_alloc(&c->arena, sizeof(*t));
	struct FetchRequest_FetchPartition *p =
		karena_alloc(&c->arena, sizeof(*p) * (size_t)partitions);

	SL_ASSERT(t != NULL && p != NULL);
	kafka_init_fetch_request(m);
	m->MaxWaitMs = 500;
	m->MinBytes = 1;
	m->MaxBytes = 52428800;
	m->SessionId = 0;
	m->SessionEpoch = -1;
	kafka_init_fetch_request_fetch_topic(t);
	t->Topic = KSLICE_LIT(MF_TOPIC);
	for (int i = 0; i < partitions; i++) {
		kafka_init_fetch_request_fetch_partition(&p[i]);
		p[i].Partition = i;
		p[i].FetchOffset = 123456789 + i;
		p[i].PartitionMaxBytes = 1048576;
	}
	t->Partitions.count = partitions;
	t->Partitions.items = p;
	m->Topics.count = 1;
	m->Topics.items = t;
	c->version = 11;
}

static void mf_codec_build_fetch_response(struct mf_codec *c, int partitions, size_t batch_bytes)
{
	struct FetchResponse *m = &c->fetch_resp;
	struct FetchResponse_FetchableTopicResponse *t = karena_alloc(&c->arena, sizeof(*t));
	struct FetchResponse_PartitionData *p =
		karena_alloc(&c->arena, sizeof(*p) * (size_t)partitions);

	SL_ASSERT(t != NULL && p != NULL);
	c->deferred = KSLICE_DEFERRED((int32_t)batch_bytes);
	kafka_init_fetch_response(m);
	kafka_init_fetch_response_fetchable_topic_response(t);
	t->Topic = KSLICE_LIT(MF_TOPIC);
	for (int i = 0; i < partitions; i++) {
		kafka_init_fetch_response_partition_data(&p[i]);
		p[i].PartitionIndex = i;
		p[i].HighWatermark = 223456789 + i;
		p[i].LastStableOffset = p[i].HighWatermark;
		p[i].LogStartOffset = 0;
		p[i].Records = c->deferred;
	}
	t->Partitions.count = partitions;
	t->Partitions.items = p;
	m->Responses.count = 1;
	m->Responses.items = t;
	c->version = 11;
}

struct mf_codec *mf_codec_new(enum mf_codec_kind kind, int partitions, size_t batch_bytes)
{
	struct mf_codec *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	/* Zeroed arenas (borrowed, no base) and an initialised writer make the
	 * one cleanup path below safe from any point. */
	kwrite_init(&c->w, 1u << 30);
	c->kind = kind;
	if (partitions < 1 || partitions > MF_CODEC_PARTITIONS_MAX ||
	    karena_init_heap(&c->arena, MF_CODEC_ARENA_BYTES) != SL_OK ||
	    karena_init_heap(&c->scratch, MF_CODEC_ARENA_BYTES) != SL_OK)
		goto fail;
	switch (kind) {
	case MF_PRODUCE_REQUEST:
		c->batch = mf_batch_new(batch_bytes, 1024);
		if (c->batch == NULL)
			goto fail;
		mf_codec_build_produce(c, partitions);
		break;
	case MF_FETCH_REQUEST:
		mf_codec_build_fetch(c, partitions);
		break;
	case MF_FETCH_RESPONSE:
		mf_codec_build_fetch_response(c, partitions, batch_bytes);
		break;
	default:
		goto fail;
	}
	if (mf_codec_encode(c) < 0)
		goto fail;
	c->wire_len = c->w.len;
	c->wire_bytes = c->w.len + (size_t)c->w.hole_bytes;
	c->wire = malloc(c->wire_len);
	if (c->wire == NULL)
		goto fail;
	memcpy(c->wire, c->w.buf, c->wire_len);
	return c;
fail:
	mf_codec_free(c);
	return NULL;
}

size_t mf_codec_wire_bytes(const struct mf_codec *c)
{
	return c->wire_bytes;
}

int mf_codec_decode(struct mf_codec *c)
{
	struct kread r;
	enum sl_err err;

	karena_reset(&c->scratch);
	kread_init(&r, c->wire, c->wire_len);
	switch (c->kind) {
	case MF_PRODUCE_REQUEST: {
		struct ProduceRequest m;
		err = kafka_decode_produce_request(&r, c->version, &m, &c->scratch);
		if (err == SL_OK && m.TopicData.items[0].PartitionData.items[0].Records.len !=
					    (int32_t)c->batch->len)
			err = SL_EINVAL;
		break;
	}
	case MF_FETCH_REQUEST: {
		struct FetchRequest m;
		err = kafka_decode_fetch_request(&r, c->version, &m, &c->scratch);
		if (err == SL_OK && m.Topics.items[0].Partitions.count !=
					    c->fetch.Topics.items[0].Partitions.count)
			err = SL_EINVAL;
		break;
	}
	default:
		/* A zero-copy response has holes: there is nothing whole to decode. */
		err = SL_EINVAL;
		break;
	}
	return err == SL_OK && kread_left(&r) == 0 ? 0 : -1;
}

int64_t mf_codec_encode(struct mf_codec *c)
{
	enum sl_err err;

	kwrite_reset(&c->w);
	kwrite_holes_set(&c->w, c->holes, MF_CODEC_PARTITIONS_MAX);
	switch (c->kind) {
	case MF_PRODUCE_REQUEST:
		err = kafka_encode_produce_request(&c->w, c->version, &c->produce);
		break;
	case MF_FETCH_REQUEST:
		err = kafka_encode_fetch_request(&c->w, c->version, &c->fetch);
		break;
	case MF_FETCH_RESPONSE:
		err = kafka_encode_fetch_response(&c->w, c->version, &c->fetch_resp);
		break;
	default:
		err = SL_EINVAL;
		break;
	}
	return err == SL_OK && c->w.err == SL_OK ? (int64_t)c->w.len : -1;
}

void mf_codec_free(struct mf_codec *c)
{
	if (c == NULL)
		return;
	free(c->wire);
	kwrite_destroy(&c->w);
	mf_batch_free(c->batch);
	karena_destroy(&c->scratch);
	karena_destroy(&c->arena);
	free(c);
}

/* ---- the fetch path: segment file -> TCP socket ---- */

#define MF_FP_FILE_BYTES (32u << 20)
#define MF_FP_BUF_BYTES (64u << 10)
#define MF_FP_PIPE_BYTES (1u << 20)
#define MF_FP_TURNS_MAX (1 << 24)
#define MF_FP_SINK_BYTES (256u << 10)

struct mf_fetchpath {
	enum mf_fetch_method method;
	int file_fd;
	int tx_fd;          /* the broker's end */
	int rx_fd;          /* the consumer's end, drained by `drainer` */
	int pipe_rd;
	int pipe_wr;
	off_t pos;          /* next file position to send from */
	uint8_t *buf;       /* read + write bounce buffer */
	pthread_t drainer;
	bool drainer_started;
	char path[512];
};

/* Reads and discards until the sender closes its end. */
static void *mf_fetchpath_drain(void *arg)
{
	struct mf_fetchpath *fp = arg;
	uint8_t *sink = malloc(MF_FP_SINK_BYTES);

	for (int turns = 0; sink != NULL && turns < (1 << 30); turns++) {
		ssize_t n = read(fp->rx_fd, sink, MF_FP_SINK_BYTES);
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	/* Without a sink the sender would block forever: closing our end
	 * makes its next write fail instead. */
	if (sink == NULL)
		shutdown(fp->rx_fd, SHUT_RDWR);
	free(sink);
	return NULL;
}

/* A connected loopback TCP pair with TCP_NODELAY; 0 or -1. */
static int mf_tcp_pair(int *tx, int *rx)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int one = 1, lfd = -1, ret = -1;

	*tx = *rx = -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
		goto out;
	*rx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*rx < 0 || connect(*rx, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	*tx = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*tx < 0)
		goto out;
	(void)setsockopt(*tx, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ret = 0;
out:
	if (lfd >= 0)
		close(lfd);
	return ret;
}

struct mf_fetchpath *mf_fetchpath_new(const char *dir, enum mf_fetch_method m)
{
	struct mf_fetchpath *fp = calloc(1, sizeof(*fp));
	int fds[2];

	if (fp == NULL)
		return NULL;
	fp->method = m;
	fp->file_fd = fp->tx_fd = fp->rx_fd = fp->pipe_rd = fp->pipe_wr = -1;
	fp->buf = malloc(MF_FP_BUF_BYTES);
	if (fp->buf == NULL)
		goto fail;
	memset(fp->buf, 0x5A, MF_FP_BUF_BYTES);
	snprintf(fp->path, sizeof(fp->path), "%s/00000000000000000000.log", dir);
	fp->file_fd = open(fp->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fp->file_fd < 0)
		goto fail;
	/* The segment is written once, so it sits in the page cache like the
	 * tail of a live log that consumers keep up with. */
	for (size_t done = 0; done < MF_FP_FILE_BYTES; done += MF_FP_BUF_BYTES)
		if (write(fp->file_fd, fp->buf, MF_FP_BUF_BYTES) != (ssize_t)MF_FP_BUF_BYTES)
			goto fail;
	if (pipe2(fds, O_CLOEXEC) != 0)
		goto fail;
	fp->pipe_rd = fds[0];
	fp->pipe_wr = fds[1];
	(void)fcntl(fp->pipe_wr, F_SETPIPE_SZ, (int)MF_FP_PIPE_BYTES);
	if (mf_tcp_pair(&fp->tx_fd, &fp->rx_fd) != 0)
		goto fail;
	if (pthread_create(&fp->drainer, NULL, mf_fetchpath_drain, fp) != 0)
		goto fail;
	fp->drainer_started = true;
	return fp;
fail:
	mf_fetchpath_free(fp);
	return NULL;
}

/* write(2) all of buf[0, len); 0 or -1. */
static int mf_write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	for (int turns = 0; done < len && turns < MF_FP_TURNS_MAX; turns++) {
		ssize_t n = write(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return done == len ? 0 : -1;
}

static int mf_send_read_write(struct mf_fetchpath *fp, off_t pos, size_t len)
{
	size_t done = 0;
	for (int turns = 0; done < len && turns < MF_FP_TURNS_MAX; turns++) {
		size_t want = len - done < MF_FP_BUF_BYTES ? len - done : MF_FP_BUF_BYTES;
		ssize_t n = pread(fp->file_fd, fp->buf, want, pos + (off_t)done);
		if (n <= 0 || mf_write_all(fp->tx_fd, fp->buf, (size_t)n) != 0)
			return -1;
		done += (size_t)n;
	}
	return done == len ? 0 : -1;
}

static int mf_send_sendfile(struct mf_fetchpath *fp, off_t pos, size_t len)
{
	off_t off = pos;
	size_t done = 0;
	for (int turns = 0; done < len && turns < MF_FP_TURNS_MAX; turns++) {
		ssize_t n = sendfile(fp->tx_fd, fp->file_fd, &off, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return done == len ? 0 : -1;
}

static int mf_send_splice(struct mf_fetchpath *fp, off_t pos, size_t len)
{
	loff_t off = pos;
	size_t done = 0;
	for (int turns = 0; done < len && turns < MF_FP_TURNS_MAX; turns++) {
		ssize_t in = splice(fp->file_fd, &off, fp->pipe_wr, NULL, len - done,
				    SPLICE_F_MOVE);
		if (in <= 0)
			return -1;
		for (ssize_t out = 0; out < in;) {
			ssize_t n = splice(fp->pipe_rd, NULL, fp->tx_fd, NULL, (size_t)(in - out),
					   SPLICE_F_MOVE);
			if (n <= 0)
				return -1;
			out += n;
		}
		done += (size_t)in;
	}
	return done == len ? 0 : -1;
}

int64_t mf_fetchpath_send(struct mf_fetchpath *fp, size_t len)
{
	int rc;

	if (len == 0 || len > MF_FP_FILE_BYTES)
		return -1;
	if ((size_t)fp->pos + len > MF_FP_FILE_BYTES)
		fp->pos = 0;
	switch (fp->method) {
	case MF_FP_READ_WRITE:
		rc = mf_send_read_write(fp, fp->pos, len);
		break;
	case MF_FP_SENDFILE:
		rc = mf_send_sendfile(fp, fp->pos, len);
		break;
	case MF_FP_SPLICE:
		rc = mf_send_splice(fp, fp->pos, len);
		break;
	default:
		rc = -1;
		break;
	}
	fp->pos += (off_t)len;
	return rc == 0 ? (int64_t)len : -1;
}

void mf_fetchpath_free(struct mf_fetchpath *fp)
{
	if (fp == NULL)
		return;
	if (fp->tx_fd >= 0)
		shutdown(fp->tx_fd, SHUT_RDWR);
	if (fp->drainer_started)
		pthread_join(fp->drainer, NULL);
	int fds[] = { fp->file_fd, fp->tx_fd, fp->rx_fd, fp->pipe_rd, fp->pipe_wr };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (fp->path[0] != '\0')
		unlink(fp->path);
	free(fp->buf);
	free(fp);
}

/* ---- temp dirs ---- */

char *mf_tmpdir(void)
{
	char *dir = strdup("/tmp/sluice-micro-XXXXXX");
	if (dir == NULL || mkdtemp(dir) == NULL) {
		free(dir);
		return NULL;
	}
	return dir;
}

static int mf_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void mf_rmdir(char *dir)
{
	if (dir == NULL)
		return;
	nftw(dir, mf_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}
