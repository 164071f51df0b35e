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
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

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
PASSED = 0
FAILED = 0
BROKER = {}


def check(cond, what):
    global PASSED, FAILED
    if cond:
        PASSED += 1
    else:
        FAILED += 1
        print("FAIL " + what)
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_broker():
    binary = os.environ.get("SLUICE_BIN")
    if not binary or not os.access(binary, os.X_OK):
        print("SKIP: SLUICE_BIN not set or not executable")
        sys.exit(77)
    if "dir" not in BROKER:
        d = tempfile.mkdtemp(prefix="sl-compaction-")
        data = os.path.join(d, "data")
        os.mkdir(data)
        BROKER.update(dir=d, data=data, port=free_port())
    d, port = BROKER["dir"], BROKER["port"]
    conf = os.path.join(d, "server.properties")
    with open(conf, "w") as f:
        f.write("listeners=PLAINTEXT://127.0.0.1:%d\nlog.dirs=%s\nnum.shards=2\n"
                "log.level=info\nlog.retention.check.interval.ms=300\n" % (port, BROKER["data"]))
    log = open(os.path.join(d, "broker.log"), "a")
    mark = os.path.getsize(os.path.join(d, "broker.log"))
    proc = subprocess.Popen([binary, "--config", conf], stdout=log, stderr=subprocess.STDOUT)
    BROKER.update(proc=proc, log=log)
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        if proc.poll() is not None:
            fail_exit("broker exited during start-up")
        with open(os.path.join(d, "broker.log")) as f:
            f.seek(mark)
            up = "listening on " in f.read()
        if up:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                return "127.0.0.1:%d" % port
            except OSError:
                pass
        time.sleep(0.1)
    fail_exit("broker not ready in %d s" % WAIT_S)


def stop_broker(sig=signal.SIGTERM):
    proc = BROKER.get("proc")
    if proc is None:
        return None
    proc.send_signal(sig)
    try:
        rc = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    BROKER["proc"] = None
    BROKER["log"].close()
    return rc


def show_log():
    try:
        with open(os.path.join(BROKER["dir"], "broker.log")) as f:
            lines = f.readlines()
        print("---- last broker log lines ----")
        sys.stdout.write("".join(lines[-40:]))
    except (OSError, KeyError):
        pass


def fail_exit(msg):
    print("FAIL " + msg)
    show_log()
    stop_broker(signal.SIGKILL)
    shutil.rmtree(BROKER.get("dir", "/nonexistent"), ignore_errors=True)
    print("%d passed, %d failed" % (PASSED, FAILED + 1))
    sys.exit(1)


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
    bs = start_broker()
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

        stop_broker(signal.SIGKILL)
        bs = start_broker()
        check(end_offset(bs) == end, "end offset after SIGKILL restart")
        recs2, _ = verify(bs, produced, end, "after restart")
        check(len(recs2) <= len(recs), "restart did not bring records back")
    except Exception as e:  # noqa: BLE001 - any client failure fails the test
        fail_exit("unexpected %s: %s" % (type(e).__name__, e))
    rc = stop_broker()
    check(rc == 0, "broker exit status %r" % rc)
    if FAILED:
        show_log()
    shutil.rmtree(BROKER["dir"], ignore_errors=True)
    print("%d passed, %d failed" % (PASSED, FAILED))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
