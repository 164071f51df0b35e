/*
 * bench_jetstream.c — sluice-bench's jetstream driver: Debian's libnats (C
 * client) against nats-server with JetStream. Partition p is the subject
 * "<name>.<p>" of one stream "<name>" (file storage, one replica).
 *
 * - setup: js_AddStream (file storage, MaxBytes JB_STREAM_BYTES with
 *   discard-old so the disk use is bounded); teardown deletes the stream.
 * - producer: js_PublishAsync with PublishAsync.MaxPending =
 *   cfg->inflight_max (a full window waits JB_STALL_MS, then SL_EAGAIN). The
 *   ack handler runs on the library's one ack thread per jsCtx — the only
 *   writer of the producer worker's histogram — and reads the intended send
 *   time from the published message.
 * - consumer: one ephemeral push consumer per owned subject (AckNone,
 *   DeliverAll: the stream is new for the run). Each subscription's
 *   callback runs on its own library thread, so the worker's histogram is
 *   guarded by a mutex; consumer_poll only sleeps.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bench.h"

#define JB_STREAM_BYTES (4ll << 30)
#define JB_STALL_MS 10
#define JB_WAIT_MS 10000
#define JB_SUBJECT_MAX 200

struct jb_conn {
	natsConnection *nc;
	jsCtx *js;
	pthread_mutex_t lock;                          /* consumer: guards bench_msg */
	natsSubscription *subs[BENCH_PARTITIONS_MAX];  /* consumer only */
	int sub_count;
};

static void jb_ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct bench_worker *w = closure;
	struct bench_stamp st;

	(void)js;
	(void)pa;
	if (natsMsg_GetDataLength(msg) >= (int)sizeof(st)) {
		memcpy(&st, natsMsg_GetData(msg), sizeof(st));
		bench_ack(w, st.intended_ns, pae == NULL);
	} else {
		bench_ack(w, 0, 0);
	}
	natsMsg_Destroy(msg);
}

/* Connects and opens a JetStream context; `w` NULL for setup/teardown. */
static struct jb_conn *jb_open(const struct bench_cfg *cfg, struct bench_worker *w)
{
	struct jb_conn *jc = calloc(1, sizeof(*jc));
	jsOptions jo;
	natsStatus s;

	if (jc == NULL)
		return NULL;
	pthread_mutex_init(&jc->lock, NULL);
	s = natsConnection_ConnectTo(&jc->nc, cfg->url);
	if (s == NATS_OK) {
		jsOptions_Init(&jo);
		if (w != NULL) {
			jo.PublishAsync.MaxPending = cfg->inflight_max;
			jo.PublishAsync.AckHandler = jb_ack_handler;
			jo.PublishAsync.AckHandlerClosure = w;
			jo.PublishAsync.StallWait = JB_STALL_MS;
		}
		s = natsConnection_JetStream(&jc->js, jc->nc, &jo);
	}
	if (s != NATS_OK) {
		fprintf(stderr, "jetstream: connect %s: %s\n", cfg->url, natsStatus_GetText(s));
		natsConnection_Destroy(jc->nc);
		pthread_mutex_destroy(&jc->lock);
		free(jc);
		return NULL;
	}
	return jc;
}

static void jb_close(struct jb_conn *jc)
{
	int i;

	for (i = 0; i < jc->sub_count; i++) {
		natsSubscription_Unsubscribe(jc->subs[i]);
		natsSubscription_Destroy(jc->subs[i]);
	}
	jsCtx_Destroy(jc->js);
	natsConnection_Destroy(jc->nc);
	pthread_mutex_destroy(&jc->lock);
	free(jc);
}

static enum sl_err jb_setup(const struct bench_cfg *cfg)
{
	struct jb_conn *jc = jb_open(cfg, NULL);
	char subject[JB_SUBJECT_MAX];
	const char *subjects[1] = { subject };
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	natsStatus s;

	if (jc == NULL)
		return SL_EIO;
	snprintf(subject, sizeof(subject), "%s.>", cfg->name);
	jsStreamConfig_Init(&sc);
	sc.Name = cfg->name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.MaxBytes = JB_STREAM_BYTES;
	sc.Discard = js_DiscardOld;
	s = js_AddStream(NULL, jc->js, &sc, NULL, &jerr);
	if (s != NATS_OK)
		fprintf(stderr, "jetstream: add stream %s: %s (%d)\n", cfg->name,
			natsStatus_GetText(s), (int)jerr);
	jb_close(jc);
	return s == NATS_OK ? SL_OK : SL_EIO;
}

static void jb_teardown(const struct bench_cfg *cfg)
{
	struct jb_conn *jc = jb_open(cfg, NULL);

	if (jc == NULL)
		return;
	js_DeleteStream(jc->js, cfg->name, NULL, NULL);
	jb_close(jc);
}

static enum sl_err jb_producer_open(struct bench_worker *w)
{
	struct jb_conn *jc = jb_open(w->cfg, w);

	if (jc == NULL)
		return SL_EIO;
	w->drv = jc;
	return SL_OK;
}

static enum sl_err jb_produce(struct bench_worker *w, int partition, const void *buf, size_t len)
{
	struct jb_conn *jc = w->drv;
	char subject[JB_SUBJECT_MAX];
	natsStatus s;

	snprintf(subject, sizeof(subject), "%s.%d", w->cfg->name, partition);
	s = js_PublishAsync(jc->js, subject, buf, (int)len, NULL);
	if (s == NATS_TIMEOUT)
		return SL_EAGAIN;
	if (s != NATS_OK) {
		bench_ack(w, 0, 0);
		return SL_EIO;
	}
	return SL_OK;
}

static void jb_producer_poll(struct bench_worker *w, int timeout_ms)
{
	(void)w;   /* acks arrive on the library's thread */
	if (timeout_ms > 0)
		usleep((useconds_t)timeout_ms * 1000);
}

static void jb_producer_flush(struct bench_worker *w, int timeout_ms)
{
	struct jb_conn *jc = w->drv;
	jsPubOptions po;

	jsPubOptions_Init(&po);
	po.MaxWait = timeout_ms;
	js_PublishAsyncComplete(jc->js, &po);
}

static void jb_producer_close(struct bench_worker *w)
{
	jb_close(w->drv);
	w->drv = NULL;
}

static void jb_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct bench_worker *w = closure;
	struct jb_conn *jc = w->drv;

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&jc->lock);
	bench_msg(w, natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
	pthread_mutex_unlock(&jc->lock);
	natsMsg_Destroy(msg);
}

static enum sl_err jb_consumer_open(struct bench_worker *w)
{
	const struct bench_cfg *cfg = w->cfg;
	struct jb_conn *jc = jb_open(cfg, NULL);
	char subject[JB_SUBJECT_MAX];
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s = NATS_OK;
	int p;

	if (jc == NULL)
		return SL_EIO;
	w->drv = jc;   /* before the first callback can run */
	for (p = w->idx; p < cfg->partitions && s == NATS_OK; p += cfg->consumers) {
		snprintf(subject, sizeof(subject), "%s.%d", cfg->name, p);
		jsSubOptions_Init(&so);
		so.Stream = cfg->name;
		so.Config.AckPolicy = js_AckNone;
		so.Config.DeliverPolicy = js_DeliverAll;
		pthread_mutex_lock(&jc->lock);
		s = js_Subscribe(&jc->subs[jc->sub_count], jc->js, subject, jb_on_msg, w, NULL,
				 &so, &jerr);
		if (s == NATS_OK)
			jc->sub_count++;
		pthread_mutex_unlock(&jc->lock);
	}
	if (s != NATS_OK) {
		fprintf(stderr, "jetstream: subscribe: %s (%d)\n", natsStatus_GetText(s), (int)jerr);
		jb_close(jc);
		w->drv = NULL;
		return SL_EIO;
	}
	return SL_OK;
}

static void jb_consumer_poll(struct bench_worker *w, int timeout_ms)
{
	(void)w;   /* messages arrive on the subscriptions' threads */
	usleep((useconds_t)timeout_ms * 1000);
}

static void jb_consumer_close(struct bench_worker *w)
{
	jb_close(w->drv);
	w->drv = NULL;
}

const struct bench_driver bench_jetstream_driver = {
	.name = "jetstream",
	.setup = jb_setup,
	.teardown = jb_teardown,
	.producer_open = jb_producer_open,
	.produce = jb_produce,
	.producer_poll = jb_producer_poll,
	.producer_flush = jb_producer_flush,
	.producer_close = jb_producer_close,
	.consumer_open = jb_consumer_open,
	.consumer_poll = jb_consumer_poll,
	.consumer_close = jb_consumer_close,
};
