#!/usr/bin/python3
"""test_compaction.py — log compaction on a live broker (io/compact.c, net/pcompact.c).

A one-partition topic with cleanup.policy=compact, tiny segments
(segment.bytes=4096; the producer sends at most 5 records per batch,
since a batch larger than a segment is refused, as in Kafka), min.cleanable.dirty.ratio=0.01 and delete.retention.ms=0,
on a broker checking every 300 ms (log.retention.check.interval.ms). confluent-kafka
produces ROUNDS rounds of KEYS keys, then tombstones for a few keys, then one
more round of other keys. Within a bounded wait the partition must hold fewer
records than were produced, and then:
  - every record read back is exactly the one produced at that offset (no
    renumbering, nothing invented), offsets strictly increasing;
  - each key's latest record is still there, unless it is a tombstone in a
    sealed segment (delete.retention.ms=0 lets the cleaner drop those);
  - the end offset is unchanged;
and the same holds after the broker is killed with SIGKILL and restarted.

Runs with /usr/bin/python3; needs SLUICE_BIN (skip 77 without it or without
confluent-kafka).
"""
import os
import signal
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_harness  # noqa: E402

try:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka import admin as cadmin
except ImportError as e:  # pragma: no cover
    print("SKIP: client library missing: %s" % e)
    sys.exit(77)

WAIT_S = 30
ROUNDS = 4
KEYS = 40
TOPIC = "compacted"
CK = sluice_harness.Checks()
check = CK.check
BROKER = sluice_harness.Broker(CK, "sl-compaction-", ["log.retention.check.interval.ms=300"],
                               wait_s=WAIT_S, fail_sig=signal.SIGKILL)
fail_exit = BROKER.fail_exit


def read_all(bs, end):
    """Every record of partition 0 from offset 0 to `end`: [(offset, key, value)]."""
    c = Consumer({"bootstrap.servers": bs, "group.id": "compaction-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(TOPIC, 0, 0)])
    out = []
    deadline = time.time() + WAIT_S
    try:
        while time.time() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    if out and out[-1][0] >= end - 1 or not out:
                        break
                    continue
                fail_exit("consume error: %s" % m.error())
            out.append((m.offset(), m.key(), m.value()))
            if m.offset() >= end - 1:
                break
    finally:
        c.close()
    return out


def verify(bs, produced, end, what):
    recs = read_all(bs, end)
    prev = -1
    ok = True
    for off, k, v in recs:
        ok = check(off > prev, "%s: offsets increase at %d" % (what, off)) and ok
        prev = off
        ok = check(off in produced and produced[off] == (k, v),
                   "%s: record at %d is the one produced" % (what, off)) and ok
    have = {off for off, _, _ in recs}
    latest = {}
    for off in sorted(produced):
        latest[produced[off][0]] = off
    for k, off in latest.items():
        if produced[off][1] is not None:
            ok = check(off in have, "%s: latest record of %r (offset %d) kept" % (what, k, off)) and ok
    return recs, ok


def end_offset(bs):
    c = Consumer({"bootstrap.servers": bs, "group.id": "compaction-wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)[1]
    finally:
        c.close()


def main():
    bs = BROKER.start()
    try:
        a = cadmin.AdminClient({"bootstrap.servers": bs})
        fs = a.create_topics([cadmin.NewTopic(TOPIC, 1, 1, config={
            "cleanup.policy": "compact", "segment.bytes": "4096",
            "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"})],
            request_timeout=15)
        for f in fs.values():
            f.result(15)
        p = Producer({"bootstrap.servers": bs, "linger.ms": 5, "acks": "all",
                      "batch.num.messages": 5})
        order = []
        for r in range(ROUNDS):
            for k in range(KEYS):
                order.append((b"key-%03d" % k, b"value-%d-%03d-" % (r, k) + b"x" * 60))
        for k in range(5):
            order.append((b"key-%03d" % k, None))
        for k in range(KEYS, KEYS + 60):
            order.append((b"key-%03d" % k, b"tail-%03d" % k + b"y" * 60))
        produced = {}
        for k, v in order:
            def cb(err, msg, k=k, v=v):
                if err is None:
                    produced[msg.offset()] = (k, v)
                else:
                    print("delivery failed: %s" % err)
            p.produce(TOPIC, key=k, value=v, partition=0, on_delivery=cb)
            p.poll(0)
        p.flush(30)
        check(len(produced) == len(order), "every record acknowledged")
        end = end_offset(bs)
        check(end == len(order), "end offset %d == %d" % (end, len(order)))

        deadline = time.time() + WAIT_S
        recs = []
        while time.time() < deadline:
            recs = read_all(bs, end)
            if len(recs) < len(order):
                break
            time.sleep(0.5)
        if not check(len(recs) < len(order), "compaction removed records (%d of %d left)"
                     % (len(recs), len(order))):
            fail_exit("no compaction")
        print("compaction left %d of %d records" % (len(recs), len(order)))
        verify(bs, produced, end, "live")

        BROKER.stop(signal.SIGKILL)
        bs = BROKER.start()
        check(end_offset(bs) == end, "end offset after SIGKILL restart")
        recs2, _ = verify(bs, produced, end, "after restart")
        check(len(recs2) <= len(recs), "restart did not bring records back")
    except Exception as e:  # noqa: BLE001 - any client failure fails the test
        fail_exit("unexpected %s: %s" % (type(e).__name__, e))
    rc = BROKER.stop()
    check(rc == 0, "broker exit status %r" % rc)
    if CK.failed:
        BROKER.show_log()
    BROKER.remove_dir()
    CK.finish()


if __name__ == "__main__":
    main()
