#!/usr/bin/python3
"""test_list_offsets.py — ListOffsets by timestamp answers the exact record,
for uncompressed and compressed batches, with real clients.

For each codec (none, gzip, snappy, lz4, zstd) confluent-kafka (librdkafka)
produces RECORDS records with distinct timestamps T0 + 100*i to a fresh
one-partition topic with linger.ms set, so they travel in few batches (the
test reads the partition's .log file and requires at least one batch to
hold several records: otherwise it would not test anything); kafka-python
does the same for every codec it has a library for (gzip at least).
Every batch must arrive with the codec asked for: librdkafka 2.0 compresses
with gzip, snappy and lz4 only because the broker advertises Produce from
version 0 (as Kafka 4 does); without that it sends them uncompressed.
A producer that happens to send one record per batch (client timing) is
retried on a fresh topic, up to ATTEMPTS times. Then:
  - confluent-kafka offsets_for_times(T0 + 100*i - 50) = i (a timestamp in
    the middle of a batch gives that exact record), (T0 + 100*i) = i,
    (T0 - 1000) = 0, (past the last) = -1 (end);
  - kafka-python offsets_for_times gives the same offsets and the record's
    own timestamp (T0 + 100*i), and None past the last.

Runs with /usr/bin/python3; needs SLUICE_BIN (skip 77 without it or without
the client libraries).
"""
import glob
import os
import struct
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_harness  # noqa: E402

try:
    import confluent_kafka
    from confluent_kafka import admin as cadmin
    import kafka.codec
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KTopicPartition
except ImportError as e:  # pragma: no cover
    print("SKIP: client library missing: %s" % e)
    sys.exit(77)

WAIT_S = 20
RECORDS = 12
ATTEMPTS = 3
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CK = sluice_harness.Checks()
check, eq = CK.check, CK.eq
BROKER = sluice_harness.Broker(CK, "sl-listoffsets-", wait_s=WAIT_S)
fail_exit = BROKER.fail_exit


def batch_sizes(topic):
    """Records per batch in the partition's .log files (header walk)."""
    sizes = []
    for path in sorted(glob.glob(os.path.join(BROKER.data, topic + "-0", "*.log"))):
        with open(path, "rb") as f:
            buf = f.read()
        pos = 0
        while pos + 61 <= len(buf):
            base, blen = struct.unpack_from(">qi", buf, pos)
            if blen <= 0:
                break  # preallocated tail
            last_delta, = struct.unpack_from(">i", buf, pos + 23)
            attrs, = struct.unpack_from(">h", buf, pos + 21)
            sizes.append((last_delta + 1, attrs & 7))
            pos += 12 + blen
    return sizes


def produce_kafka_python(bs, topic, codec, t0):
    p = KafkaProducer(bootstrap_servers=bs, api_version=(2, 0, 0), compression_type=codec,
                      linger_ms=300, batch_size=65536)
    futures = []
    for i in range(RECORDS):
        value = b"value %d of %s " % (i, codec.encode()) + b"the quick brown fox " * 20
        futures.append(p.send(topic, value=value, key=b"k%d" % i, partition=0,
                              timestamp_ms=t0 + 100 * i))
    p.flush(WAIT_S)
    offsets = [f.get(WAIT_S).offset for f in futures]
    eq(offsets, list(range(RECORDS)), "kafka-python %s: offsets" % codec)
    p.close()


def produce(bs, topic, codec, t0):
    p = confluent_kafka.Producer({"bootstrap.servers": bs, "linger.ms": 300,
                                  "compression.type": codec, "batch.num.messages": 1000})
    p.list_topics(topic, timeout=WAIT_S)  # leader known and connected before queueing
    errors = []

    def cb(err, _msg):
        if err is not None:
            errors.append(err)

    for i in range(RECORDS):
        # Compressible values: librdkafka sends a batch uncompressed when
        # compression does not make it smaller.
        value = b"value %d of %s " % (i, codec.encode()) + b"the quick brown fox " * 20
        p.produce(topic, value=value,
                  key=b"k%d" % i, partition=0, timestamp=t0 + 100 * i, on_delivery=cb)
    left = p.flush(WAIT_S)
    eq(left, 0, "%s: all records delivered" % codec)
    eq(errors, [], "%s: delivery errors" % codec)


def check_confluent(bs, topic, codec, t0):
    c = confluent_kafka.Consumer({"bootstrap.servers": bs, "group.id": "lo-" + topic,
                                  "enable.auto.commit": False})
    try:
        def ask(ts):
            r = c.offsets_for_times([confluent_kafka.TopicPartition(topic, 0, ts)], timeout=10)
            check(r[0].error is None, "%s: offsets_for_times(%d) error %r" % (codec, ts, r[0].error))
            return r[0].offset

        for i in range(RECORDS):
            eq(ask(t0 + 100 * i - 50), i, "%s: confluent offset for T0+%d" % (codec, 100 * i - 50))
            eq(ask(t0 + 100 * i), i, "%s: confluent offset for T0+%d" % (codec, 100 * i))
        eq(ask(t0 - 1000), 0, "%s: confluent offset before the first" % codec)
        eq(ask(t0 + 100 * RECORDS), confluent_kafka.OFFSET_END,
           "%s: confluent offset past the last" % codec)
    finally:
        c.close()


def check_kafka_python(bs, topic, codec, t0):
    c = KafkaConsumer(bootstrap_servers=bs, api_version=(2, 0, 0), request_timeout_ms=11000)
    try:
        tp = KTopicPartition(topic, 0)
        for i in range(RECORDS):
            r = c.offsets_for_times({tp: t0 + 100 * i - 30})[tp]
            got = None if r is None else (r.offset, r.timestamp)
            eq(got, (i, t0 + 100 * i), "%s: kafka-python offset and timestamp for T0+%d"
               % (codec, 100 * i - 30))
        eq(c.offsets_for_times({tp: t0 + 100 * RECORDS})[tp], None,
           "%s: kafka-python past the last" % codec)
    finally:
        c.close()


def main():
    bs = BROKER.start()
    try:
        a = cadmin.AdminClient({"bootstrap.servers": bs})
        kp_codecs = ["gzip"] + [c for c in ("snappy", "lz4", "zstd")
                                if getattr(kafka.codec, "has_" + c)()]
        runs = [("confluent", c) for c in CODECS] + [("kafka-python", c) for c in kp_codecs]
        topics = ["lo-%s-%s" % r for r in runs]
        fs = a.create_topics([cadmin.NewTopic(t, 1, 1) for t in topics], request_timeout=15)
        for t, f in fs.items():
            f.result(15)
        t0 = int(time.time() * 1000) - 600000
        for client, codec in runs:
            topic = "lo-%s-%s" % (client, codec)
            for attempt in range(ATTEMPTS):
                if attempt > 0:
                    topic = "lo-%s-%s-%d" % (client, codec, attempt)
                    a.create_topics([cadmin.NewTopic(topic, 1, 1)])[topic].result(15)
                if client == "confluent":
                    produce(bs, topic, codec, t0)
                else:
                    produce_kafka_python(bs, topic, codec, t0)
                sizes = batch_sizes(topic)
                if max(n for n, _ in sizes) > 1:
                    break
                print("note: %s %s attempt %d sent one record per batch %r; again"
                      % (client, codec, attempt + 1, sizes))
            eq(sum(n for n, _ in sizes), RECORDS, "%s: records in the log" % codec)
            check(max(n for n, _ in sizes) > 1,
                  "%s: some batch holds several records (batches %r)" % (codec, sizes))
            want = CODECS.index(codec)
            check(all(a == want for _, a in sizes),
                  "%s %s: codec bits %r" % (client, codec, sizes))
            print("%s %s: batches (records, codec) %r" % (client, codec, sizes))
            check_confluent(bs, topic, codec, t0)
            check_kafka_python(bs, topic, codec, t0)
    except Exception as e:  # noqa: BLE001 - any client failure fails the test
        fail_exit("unexpected %s: %s" % (type(e).__name__, e))
    rc = BROKER.stop()
    eq(rc, 0, "broker exit status")
    if CK.failed:
        BROKER.show_log()
    BROKER.remove_dir()
    CK.finish()


if __name__ == "__main__":
    main()
