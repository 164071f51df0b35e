#!/usr/bin/python3
"""test_offsets_compaction.py — __consumer_offsets is a compacted topic and
committed offsets survive its compaction and a restart.

Broker: offsets.topic.num.partitions=1 (every group in one partition),
offsets.topic.segment.bytes=4096 (Kafka's broker key: the topic's
segment.bytes), log.cleaner.min.cleanable.ratio=0.01 and a compaction check
every 300 ms (log.retention.check.interval.ms).

Checks:
  1. DescribeConfigs of __consumer_offsets: cleanup.policy=compact,
     segment.bytes=4096, compression.type=producer (Kafka's
     offsetsTopicConfigs).
  2. ROUNDS rounds of synchronous commits (confluent-kafka, standalone
     commits, 4 partitions, two groups, offsets growing each round) fill
     many segments; within a bounded wait the partition directory holds
     fewer .log bytes than its peak (compaction happened; the broker logs
     it), and the broker answers the latest offsets.
  3. After SIGKILL and a restart the committed offsets come back exactly,
     and again after one more round of commits and a clean restart.
  4. Migration: the catalog is turned into the previous version's (no
     cleanup.policy / compression.type overrides, retention.* -1); after a
     restart the first group request adds cleanup.policy=compact (logged
     once, kept across a restart, other overrides untouched) and the
     offsets are intact.

Runs with /usr/bin/python3; needs SLUICE_BIN (skip 77 without it or without
confluent-kafka). Bounded waits only.
"""
import os
import signal
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_harness  # noqa: E402

try:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka import admin as cadmin
except ImportError as e:  # pragma: no cover
    print("SKIP: confluent-kafka missing: %s" % e)
    sys.exit(77)

WAIT_S = 30
ROUNDS = 150
TOPIC = "oc-topic"
PARTS = 4
GROUPS = ["oc-g1", "oc-g2"]
CK = sluice_harness.Checks(verbose=True)
check = CK.check
BROKER = sluice_harness.Broker(CK, "sl-offcompact-",
                               ["offsets.topic.num.partitions=1",
                                "offsets.topic.segment.bytes=4096",
                                "log.cleaner.min.cleanable.ratio=0.01",
                                "log.retention.check.interval.ms=300",
                                "group.initial.rebalance.delay.ms=0"],
                               wait_s=WAIT_S, fail_sig=signal.SIGKILL)
fail_exit = BROKER.fail_exit


def consumer(bs, group):
    return Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False,
                     "socket.timeout.ms": 10000})


def commit_round(clients, r):
    """Round r: group i commits offset r * 10 + i * 1000 + p on each partition."""
    for i, c in enumerate(clients):
        offs = [TopicPartition(TOPIC, p, r * 10 + i * 1000 + p) for p in range(PARTS)]
        res = c.commit(offsets=offs, asynchronous=False)
        for tp in res:
            if tp.error is not None:
                fail_exit("commit round %d group %d: %s" % (r, i, tp.error))


def committed(bs):
    """{group: [offset per partition]} read with fresh clients (OffsetFetch)."""
    out = {}
    for g in GROUPS:
        c = consumer(bs, g)
        deadline = time.time() + WAIT_S
        while True:
            try:
                got = c.committed([TopicPartition(TOPIC, p) for p in range(PARTS)], timeout=10)
                break
            except Exception as e:  # coordinator loading / not available yet
                if time.time() > deadline:
                    c.close()
                    fail_exit("OffsetFetch of %s: %s" % (g, e))
                time.sleep(0.3)
        out[g] = [tp.offset for tp in sorted(got, key=lambda t: t.partition)]
        c.close()
    return out


def want(r):
    return {g: [r * 10 + i * 1000 + p for p in range(PARTS)] for i, g in enumerate(GROUPS)}


def log_bytes(part_dir):
    try:
        return sum(os.path.getsize(os.path.join(part_dir, f)) for f in os.listdir(part_dir)
                   if f.endswith(".log"))
    except OSError:
        return 0


def main():
    bs = BROKER.start()
    a = cadmin.AdminClient({"bootstrap.servers": bs})
    fs = a.create_topics([cadmin.NewTopic(TOPIC, PARTS, 1)])
    fs[TOPIC].result(timeout=15)

    clients = [consumer(bs, g) for g in GROUPS]
    # the first commit creates __consumer_offsets (COORDINATOR_NOT_AVAILABLE meanwhile)
    deadline = time.time() + WAIT_S
    while True:
        try:
            commit_round(clients, 0)
            break
        except Exception as e:
            if time.time() > deadline:
                fail_exit("first commit: %s" % e)
            time.sleep(0.3)

    # 1. the topic's configuration
    res = cadmin.ConfigResource("topic", "__consumer_offsets")
    cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
    CK.eq(cfg["cleanup.policy"].value, "compact", "__consumer_offsets cleanup.policy")
    CK.eq(cfg["segment.bytes"].value, "4096", "__consumer_offsets segment.bytes")
    CK.eq(cfg["compression.type"].value, "producer", "__consumer_offsets compression.type")

    # 2. many commits, compaction
    part_dir = os.path.join(BROKER.data, "__consumer_offsets-0")
    peak = 0
    for r in range(1, ROUNDS + 1):
        commit_round(clients, r)
        peak = max(peak, log_bytes(part_dir))
    segs = len([f for f in os.listdir(part_dir) if f.endswith(".log")])
    check(segs > 5, "commits filled %d segments (peak %d bytes)" % (segs, peak))
    deadline = time.time() + WAIT_S
    now = peak
    while time.time() < deadline:
        now = log_bytes(part_dir)
        if now < peak // 2 and "compact " in BROKER.log_text():
            break
        time.sleep(0.3)
    print("__consumer_offsets-0: %d bytes at the peak, %d after compaction" % (peak, now))
    check(now < peak // 2, "compaction shrank the partition (%d -> %d bytes)" % (peak, now))
    check(any("__consumer_offsets-0" in ln and "compact" in ln
              for ln in BROKER.log_text().splitlines()),
          "the broker logged a compaction of __consumer_offsets-0")
    CK.eq(committed(bs), want(ROUNDS), "committed offsets after compaction")
    for c in clients:
        c.close()

    # 3. SIGKILL, restart: the offsets come back exactly
    BROKER.stop(signal.SIGKILL)
    bs = BROKER.start()
    CK.eq(committed(bs), want(ROUNDS), "committed offsets after SIGKILL + restart")
    clients = [consumer(bs, g) for g in GROUPS]
    commit_round(clients, ROUNDS + 1)
    for c in clients:
        c.close()
    rc = BROKER.stop(signal.SIGTERM)
    CK.eq(rc, 0, "clean shutdown")
    bs = BROKER.start()
    CK.eq(committed(bs), want(ROUNDS + 1), "committed offsets after a second restart")
    BROKER.stop(signal.SIGTERM)

    # 4. migration: a data dir of the previous version (its overrides were
    #    retention.ms/retention.bytes -1, no cleanup.policy) gets compact on first use
    cat = os.path.join(BROKER.data, "__sluice_catalog")
    with open(cat) as f:
        lines = f.read().splitlines()
    old = [ln for ln in lines if not (ln.startswith("config __consumer_offsets ") and
                                      ln.split()[2] in ("cleanup.policy", "compression.type"))]
    old += ["config __consumer_offsets retention.ms -1", "config __consumer_offsets retention.bytes -1"]
    with open(cat, "w") as f:
        f.write("\n".join(old) + "\n")
    bs = BROKER.start()
    a = cadmin.AdminClient({"bootstrap.servers": bs})
    cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
    CK.eq(cfg["cleanup.policy"].value, "delete", "old data dir: cleanup.policy before first use")
    CK.eq(committed(bs), want(ROUNDS + 1), "committed offsets in the old data dir")
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
        if cfg["cleanup.policy"].value == "compact":
            break
        time.sleep(0.2)
    CK.eq(cfg["cleanup.policy"].value, "compact", "old data dir: cleanup.policy after migration")
    CK.eq(cfg["retention.ms"].value, "-1", "old data dir: other overrides kept")
    CK.eq(BROKER.log_text().count("made by an older version"), 1, "migration logged once")
    BROKER.stop(signal.SIGTERM)
    bs = BROKER.start()
    CK.eq(committed(bs), want(ROUNDS + 1), "committed offsets after the migration and a restart")
    cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
    CK.eq(cfg["cleanup.policy"].value, "compact", "migration persisted")
    CK.eq(BROKER.log_text().count("made by an older version"), 1, "no second migration")
    BROKER.stop(signal.SIGTERM)
    BROKER.remove_dir()
    CK.finish()


if __name__ == "__main__":
    main()
