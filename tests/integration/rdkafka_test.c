/*
 * rdkafka_test.c — librdkafka against a running Sluice broker. Driven by
 * test_rdkafka.sh, which starts (and kills, and restarts) the broker:
 *
 *   rdkafka_test codecs BOOTSTRAP
 *       for none, gzip, snappy, lz4, zstd: produce RDT_CODEC_MSGS keyed
 *       messages to topic "codec-<name>", consume them back from the
 *       beginning, compare every key, value and per-partition order.
 *   rdkafka_test idempotent BOOTSTRAP
 *       enable.idempotence=true, RDT_IDEM_MSGS messages over every
 *       partition of "idem": all delivered, consumed back exactly once each,
 *       in production order per partition.
 *   rdkafka_test offsets BOOTSTRAP
 *       one message per batch with timestamps T0 + i s to "offsets"
 *       (one partition): consume from the beginning, from offset 42, from
 *       the offset found by offsetsForTimes(T0 + 50 s) (must be 50), and
 *       from the end (sees only what is produced after the assignment).
 *   rdkafka_test produce-log BOOTSTRAP FILE COUNT
 *       idempotent producer, acks=all: COUNT messages "m<i>" to "crash";
 *       every delivery report is appended to FILE ("ok <partition>
 *       <offset> <value>" or "err <value> <error>") and flushed at once.
 *       Exits 0 when every report arrived (errors included).
 *   rdkafka_test verify-log BOOTSTRAP FILE
 *       reads every message of "crash": each acknowledged (partition,
 *       offset) holds exactly its value, and no value appears twice in
 *       the log (idempotence: not even unacknowledged ones).
 *
 * Exit status: 0 pass, 1 fail (with a line on stderr saying what), 2 usage.
 * All waits are bounded (RDT_WAIT_MS).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define RDT_CODEC_MSGS 1000
#define RDT_IDEM_MSGS 20000
#define RDT_OFFSETS_MSGS 100
#define RDT_WAIT_MS 60000
#define RDT_PARTITIONS_MAX 64
#define RDT_VALUE_MAX 64

static int64_t rdt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rdt_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void rdt_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static void rdt_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[256];

	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		rdt_die("config %s=%s: %s", k, v, err);
}

/* ---- producing ---- */

struct rdt_prod {
	uint64_t delivered;
	uint64_t failed;
	rd_kafka_resp_err_t first_err;
	FILE *log;                       /* produce-log: delivery reports */
};

static void rdt_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct rdt_prod *st = opaque;

	(void)rk;
	if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (st->failed++ == 0)
			st->first_err = m->err;
		if (st->log != NULL)
			fprintf(st->log, "err %.*s %s\n", (int)m->len, (const char *)m->payload,
				rd_kafka_err2name(m->err));
	} else {
		st->delivered++;
		if (st->log != NULL)
			fprintf(st->log, "ok %d %" PRId64 " %.*s\n", (int)m->partition, m->offset,
				(int)m->len, (const char *)m->payload);
	}
	if (st->log != NULL)
		fflush(st->log);
}

static rd_kafka_t *rdt_producer(const char *bootstrap, struct rdt_prod *st, const char *codec,
				bool idempotent)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[512];

	rdt_set(conf, "bootstrap.servers", bootstrap);
	rdt_set(conf, "compression.codec", codec);
	rdt_set(conf, "enable.idempotence", idempotent ? "true" : "false");
	rdt_set(conf, "linger.ms", "5");
	rdt_set(conf, "message.timeout.ms", "60000");
	rdt_set(conf, "acks", "all");
	rd_kafka_conf_set_dr_msg_cb(conf, rdt_dr);
	rd_kafka_conf_set_opaque(conf, st);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL)
		rdt_die("rd_kafka_new(producer): %s", err);
	return rk;
}

/* Produces with a retry on a full local queue. */
static void rdt_produce(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
			const char *value, int64_t ts)
{
	size_t key_len = key != NULL ? strlen(key) : 0;

	for (int tries = 0; tries < 10000; tries++) {
		rd_kafka_resp_err_t e = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
			RD_KAFKA_V_KEY(key, key_len),
			RD_KAFKA_V_VALUE((void *)(uintptr_t)value, strlen(value)),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts),
			RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			return;
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rdt_die("produce to %s: %s", topic, rd_kafka_err2str(e));
		rd_kafka_poll(rk, 10);
	}
	rdt_die("produce to %s: local queue stayed full", topic);
}

static void rdt_flush(rd_kafka_t *rk, struct rdt_prod *st, uint64_t expect)
{
	rd_kafka_resp_err_t e = rd_kafka_flush(rk, RDT_WAIT_MS);

	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		rdt_die("flush: %s", rd_kafka_err2str(e));
	if (st->failed != 0)
		rdt_die("%" PRIu64 " delivery failures, first: %s", st->failed,
			rd_kafka_err2name(st->first_err));
	if (st->delivered != expect)
		rdt_die("delivered %" PRIu64 ", expected %" PRIu64, st->delivered, expect);
}

/* ---- consuming ---- */

struct rdt_msg {
	int32_t partition;
	int64_t offset;
	int64_t timestamp;
	char key[RDT_VALUE_MAX];
	char value[RDT_VALUE_MAX];
};

static int32_t rdt_partition_count(rd_kafka_t *rk, const char *topic)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
	int32_t n = -1;

	for (int tries = 0; tries < 100 && n <= 0; tries++) {
		if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
				n = md->topics[0].partition_cnt;
			rd_kafka_metadata_destroy(md);
		}
	}
	rd_kafka_topic_destroy(t);
	if (n <= 0 || n > RDT_PARTITIONS_MAX)
		rdt_die("topic %s: no usable metadata (partitions %d)", topic, n);
	return n;
}

static rd_kafka_t *rdt_consumer(const char *bootstrap)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[512];

	rdt_set(conf, "bootstrap.servers", bootstrap);
	rdt_set(conf, "enable.partition.eof", "true");
	rdt_set(conf, "enable.auto.commit", "false");
	/* Required by rd_kafka_assign in librdkafka 2.x; assign only, nothing is committed. */
	rdt_set(conf, "group.id", "rdkafka-test");
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL)
		rdt_die("rd_kafka_new(consumer): %s", err);
	return rk;
}

static void rdt_copy(char *dst, const void *src, size_t len)
{
	if (src == NULL)
		len = 0;
	if (len >= RDT_VALUE_MAX)
		rdt_die("key/value longer than %d bytes", RDT_VALUE_MAX - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * Assigns partitions [0, n) of `topic` at `start[i]` and reads until
 * every partition reached its end (EOF) and at least `min_total`
 * messages arrived, or RDT_WAIT_MS passed (fail). Returns the messages
 * (malloc'd, *count set), in arrival order (per partition: offset order).
 */
static struct rdt_msg *rdt_consume(rd_kafka_t *rk, const char *topic, int32_t n,
				   const int64_t *start, size_t min_total, size_t *count)
{
	rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(n);
	size_t cap = min_total + 1024, len = 0;
	struct rdt_msg *out = malloc(cap * sizeof(*out));
	bool eof[RDT_PARTITIONS_MAX] = { false };
	int32_t eofs = 0;
	int64_t deadline = rdt_now_ms() + RDT_WAIT_MS;

	if (out == NULL)
		rdt_die("out of memory");
	for (int32_t i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(tp, topic, i)->offset = start[i];
	rd_kafka_resp_err_t e = rd_kafka_assign(rk, tp);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		rdt_die("assign %s: %s", topic, rd_kafka_err2name(e));
	rd_kafka_topic_partition_list_destroy(tp);
	while (eofs < n || len < min_total) {
		if (rdt_now_ms() > deadline)
			rdt_die("%s: consumed %zu messages (%d/%d partitions at end) in %d ms, "
				"expected %zu", topic, len, eofs, n, RDT_WAIT_MS, min_total);
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (m->partition >= 0 && m->partition < n && !eof[m->partition]) {
				eof[m->partition] = true;
				eofs++;
			}
		} else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			rdt_die("consume %s [%d]: %s", topic, (int)m->partition,
				rd_kafka_message_errstr(m));
		} else {
			if (len == cap) {
				cap *= 2;
				out = realloc(out, cap * sizeof(*out));
				if (out == NULL)
					rdt_die("out of memory");
			}
			struct rdt_msg *r = &out[len++];
			r->partition = m->partition;
			r->offset = m->offset;
			r->timestamp = rd_kafka_message_timestamp(m, NULL);
			rdt_copy(r->key, m->key, m->key_len);
			rdt_copy(r->value, m->payload, m->len);
			if (m->partition >= 0 && m->partition < n && eof[m->partition]) {
				eof[m->partition] = false;   /* more arrived after the end */
				eofs--;
			}
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_assign(rk, NULL);
	*count = len;
	return out;
}

/* ---- cases ---- */

/*
 * Checks messages produced as key "k<i>", value "<tag>-<i>" with i in
 * [0, total): each exactly once, and increasing i per partition.
 */
static void rdt_check_sequence(const struct rdt_msg *msgs, size_t len, size_t total,
			       const char *tag, const char *what)
{
	unsigned char *seen = calloc(total, 1);
	long last[RDT_PARTITIONS_MAX];

	if (seen == NULL)
		rdt_die("out of memory");
	for (int i = 0; i < RDT_PARTITIONS_MAX; i++)
		last[i] = -1;
	if (len != total)
		rdt_die("%s: consumed %zu messages, produced %zu", what, len, total);
	for (size_t j = 0; j < len; j++) {
		const struct rdt_msg *m = &msgs[j];
		char want[RDT_VALUE_MAX];
		long i = -1;
		if (sscanf(m->key, "k%ld", &i) != 1 || i < 0 || (size_t)i >= total)
			rdt_die("%s: unexpected key '%s'", what, m->key);
		snprintf(want, sizeof(want), "%s-%ld", tag, i);
		if (strcmp(m->value, want) != 0)
			rdt_die("%s: key %s has value '%s', expected '%s'", what, m->key, m->value,
				want);
		if (seen[i]++)
			rdt_die("%s: key %s consumed twice", what, m->key);
		if (i <= last[m->partition])
			rdt_die("%s: partition %d out of order (%ld after %ld)", what,
				(int)m->partition, i, last[m->partition]);
		last[m->partition] = i;
	}
	free(seen);
}

/* Produces total keyed messages spread by key, then reads them all back. */
static void rdt_roundtrip(const char *bootstrap, const char *topic, const char *codec,
			  bool idempotent, size_t total)
{
	struct rdt_prod st = { 0 };
	rd_kafka_t *p = rdt_producer(bootstrap, &st, codec, idempotent);
	char key[32], value[RDT_VALUE_MAX];

	for (size_t i = 0; i < total; i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		snprintf(value, sizeof(value), "%s-%zu", codec, i);
		rdt_produce(p, topic, RD_KAFKA_PARTITION_UA, key, value, 0);
		rd_kafka_poll(p, 0);
	}
	rdt_flush(p, &st, total);
	rd_kafka_destroy(p);

	rd_kafka_t *c = rdt_consumer(bootstrap);
	int32_t n = rdt_partition_count(c, topic);
	int64_t start[RDT_PARTITIONS_MAX];
	size_t len;
	for (int32_t i = 0; i < n; i++)
		start[i] = RD_KAFKA_OFFSET_BEGINNING;
	struct rdt_msg *msgs = rdt_consume(c, topic, n, start, total, &len);
	rdt_check_sequence(msgs, len, total, codec, topic);
	free(msgs);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	printf("ok %s: %zu messages over %d partitions (%s%s)\n", topic, total, n, codec,
	       idempotent ? ", idempotent" : "");
}

static int rdt_codecs(const char *bootstrap)
{
	static const char *const codecs[] = { "none", "gzip", "snappy", "lz4", "zstd" };
	char topic[64];

	for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
		snprintf(topic, sizeof(topic), "codec-%s", codecs[i]);
		rdt_roundtrip(bootstrap, topic, codecs[i], false, RDT_CODEC_MSGS);
	}
	return 0;
}

static int rdt_idempotent(const char *bootstrap)
{
	rdt_roundtrip(bootstrap, "idem", "lz4", true, RDT_IDEM_MSGS);
	return 0;
}

static void rdt_expect_first(const struct rdt_msg *msgs, size_t len, size_t want_len,
			     int64_t want_offset, const char *what)
{
	if (len != want_len)
		rdt_die("%s: %zu messages, expected %zu", what, len, want_len);
	if (len > 0 && msgs[0].offset != want_offset)
		rdt_die("%s: first offset %" PRId64 ", expected %" PRId64, what, msgs[0].offset,
			want_offset);
	for (size_t j = 0; j < len; j++) {
		char want[RDT_VALUE_MAX];
		snprintf(want, sizeof(want), "v-%" PRId64, msgs[j].offset);
		if (msgs[j].offset != want_offset + (int64_t)j || strcmp(msgs[j].value, want) != 0)
			rdt_die("%s: message %zu is offset %" PRId64 " '%s'", what, j,
				msgs[j].offset, msgs[j].value);
	}
}

static int rdt_offsets(const char *bootstrap)
{
	const char *topic = "offsets";
	struct rdt_prod st = { 0 };
	rd_kafka_t *p = rdt_producer(bootstrap, &st, "none", false);
	int64_t t0 = (int64_t)time(NULL) * 1000 - 3600 * 1000;   /* an hour ago */
	char value[RDT_VALUE_MAX];
	size_t len;

	/* One message per batch (flush after each), to partition 0 only. */
	for (int i = 0; i < RDT_OFFSETS_MSGS; i++) {
		snprintf(value, sizeof(value), "v-%d", i);
		rdt_produce(p, topic, 0, NULL, value, t0 + (int64_t)i * 1000);
		rdt_flush(p, &st, (uint64_t)i + 1);
	}

	rd_kafka_t *c = rdt_consumer(bootstrap);
	int32_t n = rdt_partition_count(c, topic);
	int64_t start[RDT_PARTITIONS_MAX];
	for (int32_t i = 0; i < n; i++)
		start[i] = RD_KAFKA_OFFSET_END;   /* other partitions: nothing */

	start[0] = RD_KAFKA_OFFSET_BEGINNING;
	struct rdt_msg *msgs = rdt_consume(c, topic, n, start, RDT_OFFSETS_MSGS, &len);
	rdt_expect_first(msgs, len, RDT_OFFSETS_MSGS, 0, "from the beginning");
	for (size_t j = 0; j < len; j++)
		if (msgs[j].timestamp != t0 + (int64_t)j * 1000)
			rdt_die("offset %zu: timestamp %" PRId64 ", expected %" PRId64, j,
				msgs[j].timestamp, t0 + (int64_t)j * 1000);
	free(msgs);

	start[0] = 42;
	msgs = rdt_consume(c, topic, n, start, RDT_OFFSETS_MSGS - 42, &len);
	rdt_expect_first(msgs, len, RDT_OFFSETS_MSGS - 42, 42, "from offset 42");
	free(msgs);

	rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = t0 + 50 * 1000;
	rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(c, tp, 10000);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR || tp->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
		rdt_die("offsetsForTimes: %s / %s", rd_kafka_err2name(e),
			rd_kafka_err2name(tp->elems[0].err));
	if (tp->elems[0].offset != 50)
		rdt_die("offsetsForTimes(t0 + 50 s) = %" PRId64 ", expected 50", tp->elems[0].offset);
	start[0] = tp->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(tp);
	msgs = rdt_consume(c, topic, n, start, RDT_OFFSETS_MSGS - 50, &len);
	rdt_expect_first(msgs, len, RDT_OFFSETS_MSGS - 50, 50, "from a timestamp");
	free(msgs);

	/*
	 * From the end: assign at END in a separate consumer loop, wait until
	 * partition 0 reports EOF (position known), then produce 3 more: only
	 * those may arrive.
	 */
	rd_kafka_topic_partition_list_t *end = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(end, topic, 0)->offset = RD_KAFKA_OFFSET_END;
	if (rd_kafka_assign(c, end) != RD_KAFKA_RESP_ERR_NO_ERROR)
		rdt_die("assign at end");
	rd_kafka_topic_partition_list_destroy(end);
	bool at_end = false;
	for (int64_t deadline = rdt_now_ms() + RDT_WAIT_MS; !at_end;) {
		if (rdt_now_ms() > deadline)
			rdt_die("from the end: no end-of-partition event");
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			at_end = true;
		else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
			rdt_die("from the end: got old offset %" PRId64, m->offset);
		else
			rdt_die("from the end: %s", rd_kafka_message_errstr(m));
		rd_kafka_message_destroy(m);
	}
	for (int i = RDT_OFFSETS_MSGS; i < RDT_OFFSETS_MSGS + 3; i++) {
		snprintf(value, sizeof(value), "v-%d", i);
		rdt_produce(p, topic, 0, NULL, value, t0 + (int64_t)i * 1000);
	}
	rdt_flush(p, &st, RDT_OFFSETS_MSGS + 3);
	size_t got = 0;
	for (int64_t deadline = rdt_now_ms() + RDT_WAIT_MS; got < 3;) {
		if (rdt_now_ms() > deadline)
			rdt_die("from the end: %zu of 3 new messages", got);
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			char want[RDT_VALUE_MAX];
			snprintf(want, sizeof(want), "v-%zu", RDT_OFFSETS_MSGS + got);
			if (m->offset != (int64_t)(RDT_OFFSETS_MSGS + got) ||
			    m->len != strlen(want) || memcmp(m->payload, want, m->len) != 0)
				rdt_die("from the end: offset %" PRId64 " unexpected", m->offset);
			got++;
		} else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rdt_die("from the end: %s", rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_assign(c, NULL);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	rd_kafka_destroy(p);
	printf("ok offsets: beginning, offset 42, timestamp -> 50, end\n");
	return 0;
}

static int rdt_produce_log(const char *bootstrap, const char *path, long count)
{
	struct rdt_prod st = { 0 };
	char value[RDT_VALUE_MAX];

	st.log = fopen(path, "w");
	if (st.log == NULL)
		rdt_die("cannot write %s", path);
	rd_kafka_t *p = rdt_producer(bootstrap, &st, "none", true);
	for (long i = 0; i < count; i++) {
		snprintf(value, sizeof(value), "m%ld", i);
		rdt_produce(p, "crash", RD_KAFKA_PARTITION_UA, value, value, 0);
		rd_kafka_poll(p, 0);
		if (i % 100 == 99)
			rd_kafka_poll(p, 5);   /* spread the run over time */
	}
	rd_kafka_flush(p, 2 * RDT_WAIT_MS);
	uint64_t reports = st.delivered + st.failed;
	rd_kafka_destroy(p);
	fclose(st.log);
	printf("produce-log: %" PRIu64 " delivered, %" PRIu64 " failed\n", st.delivered, st.failed);
	if (reports != (uint64_t)count)
		rdt_die("%" PRIu64 " delivery reports for %ld messages", reports, count);
	return 0;
}

static int rdt_cmp_msg(const void *a, const void *b)
{
	const struct rdt_msg *x = a, *y = b;

	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int rdt_verify_log(const char *bootstrap, const char *path)
{
	rd_kafka_t *c = rdt_consumer(bootstrap);
	int32_t n = rdt_partition_count(c, "crash");
	int64_t start[RDT_PARTITIONS_MAX];
	size_t len, acked = 0;
	char line[256];

	for (int32_t i = 0; i < n; i++)
		start[i] = RD_KAFKA_OFFSET_BEGINNING;
	struct rdt_msg *msgs = rdt_consume(c, "crash", n, start, 0, &len);
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	qsort(msgs, len, sizeof(*msgs), rdt_cmp_msg);

	/* No value twice in the whole log. */
	long max = 0;
	for (size_t j = 0; j < len; j++) {
		long i;
		if (sscanf(msgs[j].value, "m%ld", &i) != 1 || i < 0)
			rdt_die("unexpected value '%s'", msgs[j].value);
		if (i + 1 > max)
			max = i + 1;
	}
	unsigned char *seen = calloc((size_t)max + 1, 1);
	if (seen == NULL)
		rdt_die("out of memory");
	for (size_t j = 0; j < len; j++) {
		long i = strtol(msgs[j].value + 1, NULL, 10);
		if (seen[i]++)
			rdt_die("value %s written twice (partition %d offset %" PRId64 ")",
				msgs[j].value, (int)msgs[j].partition, msgs[j].offset);
	}
	free(seen);

	/* Every acknowledged message at its offset. */
	FILE *f = fopen(path, "r");
	if (f == NULL)
		rdt_die("cannot read %s", path);
	while (fgets(line, sizeof(line), f) != NULL) {
		struct rdt_msg key = { 0 };
		char val[RDT_VALUE_MAX];
		int part;
		if (strncmp(line, "ok ", 3) != 0)
			continue;
		if (sscanf(line, "ok %d %" SCNd64 " %63s", &part, &key.offset, val) != 3)
			rdt_die("bad report line '%s'", line);
		key.partition = part;
		const struct rdt_msg *m = bsearch(&key, msgs, len, sizeof(*msgs), rdt_cmp_msg);
		if (m == NULL)
			rdt_die("acknowledged %s at %d/%" PRId64 " is missing", val, part, key.offset);
		if (strcmp(m->value, val) != 0)
			rdt_die("acknowledged %s at %d/%" PRId64 " but the log has %s", val, part,
				key.offset, m->value);
		acked++;
	}
	fclose(f);
	free(msgs);
	if (acked == 0)
		rdt_die("no acknowledged message in %s", path);
	printf("verify-log: %zu acknowledged messages present, %zu in the log, no duplicate\n",
	       acked, len);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "codecs") == 0)
		return rdt_codecs(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "idempotent") == 0)
		return rdt_idempotent(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "offsets") == 0)
		return rdt_offsets(argv[2]);
	if (argc >= 5 && strcmp(argv[1], "produce-log") == 0)
		return rdt_produce_log(argv[2], argv[3], strtol(argv[4], NULL, 10));
	if (argc >= 4 && strcmp(argv[1], "verify-log") == 0)
		return rdt_verify_log(argv[2], argv[3]);
	fprintf(stderr, "usage: %s codecs|idempotent|offsets BOOTSTRAP\n"
		"       %s produce-log BOOTSTRAP FILE COUNT\n"
		"       %s verify-log BOOTSTRAP FILE\n", argv[0], argv[0], argv[0]);
	return 2;
}
