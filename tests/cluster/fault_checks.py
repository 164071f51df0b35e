"""fault_checks.py — what the fault tests (test_cluster_partition.py,
test_cluster_zk_death.py, test_cluster_empty_dir.py; log_batches also
test_cluster_failover.py) share: check() with
its FAILED list, topic creation (RF 3, min.insync.replicas 2), one-shot
acks=all produce, reading a partition back, comparing replicas' batch
bytes below the high watermark, and the end-of-test checks."""
import os
import struct

FAILED = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILED.append(what)
    return cond


def parts_md(c, i, topic):
    """{p: (leader, replicas, isr)} as broker i's Metadata reports it."""
    t = c.metadata(i).topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p: (pm.leader, sorted(pm.replicas), sorted(pm.isrs)) for p, pm in t.partitions.items()}


def create_topic(c, via, topic, nparts, configs=None):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    a = KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % c.ports[via], request_timeout_ms=30000)
    try:
        configs = dict({"min.insync.replicas": "2"}, **(configs or {}))
        r = a.create_topics([NewTopic(topic, nparts, 3, topic_configs=configs)],
                            timeout_ms=30000)
        return [e for _, e, *rest in r.topic_errors]
    finally:
        a.close()


def produce(c, topic, part, prefix, count, ids=None, timeout=60.0, each=True):
    """acks=all, no client retries (each attempt has a unique value), one
    record per request (each=False: all sent at once, then one flush).
    Returns (acked values, failed values)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.bootstrap(ids), "acks": "all",
                  "message.send.max.retries": 0, "linger.ms": 0,
                  "message.timeout.ms": int(timeout * 1000), "request.timeout.ms": 10000,
                  "enable.idempotence": False})
    acked, failed = [], []

    def cb(err, msg):
        (failed if err is not None else acked).append(msg.value().decode())
    for k in range(count):
        v = "%s-%d" % (prefix, k)
        p.produce(topic, value=v.encode(), partition=part, on_delivery=cb)
        if each:
            p.flush(timeout + 5)
    p.flush(timeout + 5)
    return acked, failed


def consume_all(c, i, topic, part, timeout=60.0):
    """Every record of the partition up to the high watermark, from broker i."""
    from confluent_kafka import Consumer, TopicPartition
    con = Consumer({"bootstrap.servers": "127.0.0.1:%d" % c.ports[i], "group.id": "fault-check",
                    "enable.auto.commit": False, "auto.offset.reset": "earliest",
                    "fetch.wait.max.ms": 100})
    try:
        low, high = con.get_watermark_offsets(TopicPartition(topic, part), timeout=timeout)
        con.assign([TopicPartition(topic, part, low)])
        out, last = [], low - 1
        for _ in range(100000):
            if last + 1 >= high:
                break
            m = con.poll(1.0)
            if m is None or m.error() is not None:
                continue
            out.append((m.offset(), m.value().decode()))
            last = m.offset()
        return low, high, out
    finally:
        con.close()


def log_batches(c, i, topic, part):
    """[(base offset, last offset, raw batch bytes)] from broker i's segment files."""
    d = os.path.join(c.data_dir(i), "%s-%d" % (topic, part))
    out = []
    if not os.path.isdir(d):
        return out
    for name in sorted(n for n in os.listdir(d) if n.endswith(".log")):
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        off = 0
        while off + 61 <= len(data):
            base, length = struct.unpack(">qi", data[off:off + 12])
            if length <= 0 or off + 12 + length > len(data):
                break
            (delta,) = struct.unpack(">i", data[off + 23:off + 27])
            out.append((base, base + delta, data[off:off + 12 + length]))
            off += 12 + length
    return out


def logs_identical(c, a, b, topic, part, hw):
    """True when brokers a and b hold the same batch bytes below hw."""
    la = [x for x in log_batches(c, a, topic, part) if x[1] < hw]
    lb = [x for x in log_batches(c, b, topic, part) if x[1] < hw]
    return la == lb and (hw == 0 or (la and la[-1][1] == hw - 1))


def check_records(values, acked, what):
    seen = {}
    for v in values:
        seen[v] = seen.get(v, 0) + 1
    missing = [v for v in acked if seen.get(v, 0) != 1]
    dup = [v for v, n in seen.items() if n > 1]
    return check(not missing and not dup,
                 "%s: %d acknowledged records all present exactly once (missing/dup %s %s)" %
                 (what, len(acked), missing[:5], dup[:5]))


def shutdown(c):
    """Ends the running brokers with kill -9: a SIGTERM'd broker whose
    controlled shutdown cannot move its partitions (the last one, or one
    that is alone in some ISR) retries for longer than the harness waits.
    test_cluster_controller.py checks clean stops."""
    for i in sorted(c.procs):
        c.kill(i)


def sanitizer_clean(c):
    for i, path in sorted(c.logs.items()):
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
        check("Sanitizer" not in text and "runtime error:" not in text,
              "broker %d log has no sanitizer report" % i)
