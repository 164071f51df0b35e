/*
 * bench_kafka.c — sluice-bench's kafka driver: librdkafka producer and
 * consumer, for Sluice or any Kafka-compatible broker.
 *
 * - setup: CreateTopics with cfg->partitions (an existing topic is fine);
 *   when the broker does not serve CreateTopics the topic is auto-created by
 *   a metadata request and uses the broker's num.partitions. Either way the
 *   partition count is then read back and must cover cfg->partitions.
 * - producer: explicit partition per message, acks from cfg->durability,
 *   payload copied by librdkafka (RD_KAFKA_MSG_F_COPY); the in-flight window
 *   is queue.buffering.max.messages = cfg->inflight_max, so a full queue is
 *   SL_EAGAIN. Delivery reports arrive on the producer thread inside
 *   rd_kafka_poll(), carrying the payload (and so the intended send time).
 * - consumer: no consumer group (Sluice does not serve groups yet):
 *   rd_kafka_assign() of its partitions from OFFSET_BEGINNING — the topic is
 *   new for the run, so nothing is skipped or replayed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "bench.h"

#define KB_TIMEOUT_MS 10000

static rd_kafka_conf_t *kb_conf(const struct bench_cfg *cfg)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];

	if (rd_kafka_conf_set(conf, "bootstrap.servers", cfg->url, err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK) {
		fprintf(stderr, "kafka: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set(conf, "client.id", "sluice-bench", err, sizeof(err));
	return conf;
}

/* Number of partitions of cfg->name (requesting it may auto-create it); -1 on error. */
static int kb_partition_count(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	int n = -1, tries;

	for (tries = 0; tries < 20 && n <= 0; tries++) {
		if (rd_kafka_metadata(rk, 0, rkt, &md, KB_TIMEOUT_MS / 10) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
				n = md->topics[0].partition_cnt;
			rd_kafka_metadata_destroy(md);
		}
	}
	rd_kafka_topic_destroy(rkt);
	return n;
}

static void kb_create_topic(rd_kafka_t *rk, const struct bench_cfg *cfg)
{
	rd_kafka_NewTopic_t *nt;
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev;
	char err[256];

	nt = rd_kafka_NewTopic_new(cfg->name, cfg->partitions, 1, err, sizeof(err));
	if (nt == NULL) {
		rd_kafka_queue_destroy(q);
		return;
	}
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, KB_TIMEOUT_MS);
	if (ev != NULL) {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t cnt = 0;
		const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;

		if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
			fprintf(stderr, "kafka: CreateTopics: %s (falling back to auto-create)\n",
				rd_kafka_event_error_string(ev));
		else if (cnt == 1 && rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR &&
			 rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			fprintf(stderr, "kafka: CreateTopics: %s (falling back to auto-create)\n",
				rd_kafka_topic_result_error_string(tr[0]));
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
}

static enum sl_err kb_setup(const struct bench_cfg *cfg)
{
	rd_kafka_conf_t *conf = kb_conf(cfg);
	rd_kafka_t *rk;
	char err[256];
	int n;

	if (conf == NULL)
		return SL_EINVAL;
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "kafka: %s\n", err);
		return SL_EIO;
	}
	kb_create_topic(rk, cfg);
	n = kb_partition_count(rk, cfg->name);
	rd_kafka_destroy(rk);
	if (n < cfg->partitions) {
		fprintf(stderr, "kafka: topic %s has %d partitions, %d wanted "
			"(start the broker with num.partitions=%d)\n", cfg->name, n,
			cfg->partitions, cfg->partitions);
		return SL_EIO;
	}
	return SL_OK;
}

static void kb_teardown(const struct bench_cfg *cfg)
{
	(void)cfg;   /* topics are left for the broker's retention; names are unique */
}

static void kb_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct bench_worker *w = opaque;
	struct bench_stamp st;

	(void)rk;
	if (m->len < sizeof(st)) {
		bench_ack(w, 0, 0);
		return;
	}
	memcpy(&st, m->payload, sizeof(st));
	bench_ack(w, st.intended_ns, m->err == RD_KAFKA_RESP_ERR_NO_ERROR);
}

static enum sl_err kb_producer_open(struct bench_worker *w)
{
	const struct bench_cfg *cfg = w->cfg;
	rd_kafka_conf_t *conf = kb_conf(cfg);
	const char *acks = cfg->durability;
	char err[256], num[32], linger[32];
	rd_kafka_t *rk;

	if (conf == NULL)
		return SL_EINVAL;
	if (strncmp(acks, "acks=", 5) == 0)
		acks += 5;
	snprintf(num, sizeof(num), "%d", cfg->inflight_max);
	snprintf(linger, sizeof(linger), "%d", cfg->linger_ms);
	if (rd_kafka_conf_set(conf, "acks", acks, err, sizeof(err)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "queue.buffering.max.messages", num, err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "linger.ms", linger, err, sizeof(err)) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "false", err, sizeof(err)) !=
	    RD_KAFKA_CONF_OK) {
		fprintf(stderr, "kafka: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return SL_EINVAL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, kb_dr_cb);
	rd_kafka_conf_set_opaque(conf, w);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "kafka: %s\n", err);
		return SL_EIO;
	}
	w->drv = rk;
	return SL_OK;
}

static enum sl_err kb_produce(struct bench_worker *w, int partition, const void *buf, size_t len)
{
	rd_kafka_resp_err_t e;

	e = rd_kafka_producev(w->drv, RD_KAFKA_V_TOPIC(w->cfg->name),
			      RD_KAFKA_V_PARTITION(partition),
			      RD_KAFKA_V_VALUE((void *)buf, len),
			      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
	if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return SL_EAGAIN;
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		bench_ack(w, 0, 0);
		return SL_EIO;
	}
	return SL_OK;
}

static void kb_producer_poll(struct bench_worker *w, int timeout_ms)
{
	rd_kafka_poll(w->drv, timeout_ms);
}

static void kb_producer_flush(struct bench_worker *w, int timeout_ms)
{
	rd_kafka_flush(w->drv, timeout_ms);
}

static void kb_producer_close(struct bench_worker *w)
{
	rd_kafka_destroy(w->drv);
	w->drv = NULL;
}

static enum sl_err kb_consumer_open(struct bench_worker *w)
{
	const struct bench_cfg *cfg = w->cfg;
	rd_kafka_conf_t *conf = kb_conf(cfg);
	rd_kafka_topic_partition_list_t *parts;
	char err[256];
	rd_kafka_resp_err_t e;
	rd_kafka_t *rk;
	int p;

	if (conf == NULL)
		return SL_EINVAL;
	/* librdkafka's assign() wants a group.id even though no group is joined
	 * and nothing is committed (Sluice does not serve groups yet) */
	rd_kafka_conf_set(conf, "group.id", cfg->name, err, sizeof(err));
	rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.partition.eof", "false", err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "kafka: %s\n", err);
		return SL_EIO;
	}
	rd_kafka_poll_set_consumer(rk);
	parts = rd_kafka_topic_partition_list_new(cfg->partitions);
	for (p = w->idx; p < cfg->partitions; p += cfg->consumers)
		rd_kafka_topic_partition_list_add(parts, cfg->name, p)->offset =
			RD_KAFKA_OFFSET_BEGINNING;
	e = rd_kafka_assign(rk, parts);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafka: assign: %s\n", rd_kafka_err2str(e));
		rd_kafka_topic_partition_list_destroy(parts);
		rd_kafka_destroy(rk);
		return SL_EIO;
	}
	rd_kafka_topic_partition_list_destroy(parts);
	w->drv = rk;
	return SL_OK;
}

static void kb_consumer_poll(struct bench_worker *w, int timeout_ms)
{
	rd_kafka_message_t *m;
	int i;

	/* a bounded burst per call, waiting only for the first */
	for (i = 0; i < 10000; i++) {
		m = rd_kafka_consumer_poll(w->drv, i == 0 ? timeout_ms : 0);
		if (m == NULL)
			return;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
			bench_msg(w, m->payload, m->len);
		else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			fprintf(stderr, "kafka: consume: %s\n", rd_kafka_message_errstr(m));
		rd_kafka_message_destroy(m);
	}
}

static void kb_consumer_close(struct bench_worker *w)
{
	rd_kafka_consumer_close(w->drv);
	rd_kafka_destroy(w->drv);
	w->drv = NULL;
}

const struct bench_driver bench_kafka_driver = {
	.name = "kafka",
	.setup = kb_setup,
	.teardown = kb_teardown,
	.producer_open = kb_producer_open,
	.produce = kb_produce,
	.producer_poll = kb_producer_poll,
	.producer_flush = kb_producer_flush,
	.producer_close = kb_producer_close,
	.consumer_open = kb_consumer_open,
	.consumer_poll = kb_consumer_poll,
	.consumer_close = kb_consumer_close,
};
