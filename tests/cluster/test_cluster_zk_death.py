"""test_cluster_zk_death.py — 3 ZooKeeper servers + 3 brokers: one ZooKeeper
server (the ensemble's leader, the hardest case) is killed with kill -9.
The cluster keeps serving: no broker session is lost, acks=all produce and
consume still work, every broker's Metadata stays correct (brokers,
controller, leaders, ISR), and a broker kill after that still fails over
(new leaders from the ISR, acks=all produce to them, every acknowledged
record read back exactly once). Exit 77 when ZooKeeper is missing."""
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402

TOPIC = "zk-death-t"
NPART = 3
FAILED = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILED.append(what)
    return cond


# ---- helpers (kept in each fault test so every file stands alone) ----
def parts_md(c, i, topic):
    """{p: (leader, replicas, isr)} as broker i's Metadata reports it."""
    t = c.metadata(i).topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p: (pm.leader, sorted(pm.replicas), sorted(pm.isrs)) for p, pm in t.partitions.items()}


def create_topic(c, via, topic, nparts):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    a = KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % c.ports[via], request_timeout_ms=30000)
    try:
        r = a.create_topics([NewTopic(topic, nparts, 3, topic_configs={"min.insync.replicas": "2"})],
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


# ---- the test ----
def controller(c):
    data, _ = c.zk_get("/controller")
    return json.loads(data)["brokerid"] if data else None


def run(c):
    ids = [1, 2, 3]
    c.wait_cluster(timeout=90)
    check(create_topic(c, 1, TOPIC, NPART) == [0], "CreateTopics %dx3 min.insync 2" % NPART)
    c.wait(lambda: all(len(pm) == NPART and all(r == ids and isr == ids for _, r, isr in pm.values())
                       for pm in (parts_md(c, i, TOPIC) for i in ids)),
           "every partition with ISR 1,2,3", timeout=90)
    acked = {p: [] for p in range(NPART)}
    for p in range(NPART):
        a, f = produce(c, TOPIC, p, "a%d" % p, 20)
        check(not f, "partition %d: 20 acks=all records before the ZooKeeper kill" % p)
        acked[p] += a
    ctl = controller(c)
    owners = {i: c.zk_get("/brokers/ids/%d" % i)[1]["ephemeralOwner"] for i in ids}
    before = parts_md(c, 1, TOPIC)

    # kill -9 the ZooKeeper leader; the other two elect a new one.
    zl = c.zk.leader()
    check(zl is not None, "ZooKeeper ensemble has a leader (%s)" % zl)
    c.zk.kill(zl)
    t0 = time.monotonic()
    c.wait(lambda: c.zk.leader() not in (None, zl), "a new ZooKeeper leader", timeout=60)
    print("ZooKeeper server %d killed; new ZooKeeper leader %d after %.1fs" %
          (zl, c.zk.leader(), time.monotonic() - t0))

    # Still serving: produce acks=all and consume on every partition.
    for p in range(NPART):
        a, f = produce(c, TOPIC, p, "b%d" % p, 20)
        check(not f and len(a) == 20, "partition %d: acks=all produce after the ZooKeeper kill (%d failed)"
              % (p, len(f)))
        acked[p] += a
        _, hw, recs = consume_all(c, before[p][0], TOPIC, p)
        check_records([v for _, v in recs], acked[p], "partition %d after the ZooKeeper kill" % p)
    # No broker lost its session, the controller is the same, Metadata unchanged.
    check(sorted(int(x) for x in c.zk_children("/brokers/ids")) == ids, "/brokers/ids still 1,2,3")
    check(all(c.zk_get("/brokers/ids/%d" % i)[1]["ephemeralOwner"] == owners[i] for i in ids),
          "every broker kept its ZooKeeper session")
    check(controller(c) == ctl, "controller still broker %s" % ctl)
    for i in ids:
        md = c.metadata(i)
        check(sorted(md.brokers) == ids and md.controller_id == ctl and parts_md(c, i, TOPIC) == before,
              "broker %d Metadata unchanged (brokers %s, controller %s)" % (i, sorted(md.brokers),
                                                                           md.controller_id))

    # A broker kill still fails over: kill a non-controller leading partitions.
    victim = [l for l, _, _ in before.values() if l != ctl]
    victim = victim[0] if victim else [i for i in ids if i != ctl][0]
    live = [i for i in ids if i != victim]
    c.kill(victim)
    t0 = time.monotonic()
    c.wait(lambda: all(len(pm) == NPART and all(l in live and victim not in isr for l, _, isr in pm.values())
                       for pm in (parts_md(c, i, TOPIC) for i in live)),
           "failover off broker %d" % victim, timeout=90)
    print("failover off broker %d seen after %.1fs" % (victim, time.monotonic() - t0))
    after = parts_md(c, live[0], TOPIC)
    check(all(after[p][0] in before[p][2] for p in range(NPART)), "new leaders come from the ISR")
    for p in range(NPART):
        a, f = produce(c, TOPIC, p, "c%d" % p, 20, ids=live)
        check(not f and len(a) == 20, "partition %d: acks=all produce after the failover (%d failed)"
              % (p, len(f)))
        acked[p] += a
        low, hw, recs = consume_all(c, after[p][0], TOPIC, p)
        check(hw == len(acked[p]), "partition %d: HW %d == %d acknowledged" % (p, hw, len(acked[p])))
        check([v for _, v in recs] == acked[p], "partition %d: every acknowledged record once, in order" % p)
        other = [i for i in live if i != after[p][0]][0]
        check(c.wait(lambda: logs_identical(c, after[p][0], other, TOPIC, p, hw), "identical logs",
                     timeout=30),
              "partition %d: brokers %s byte-identical up to HW %d" % (p, live, hw))
    shutdown(c)
    sanitizer_clean(c)


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    with SluiceCluster(zk_servers=3, brokers=3, session_ms=6000) as c:
        try:
            run(c)
        except Exception as e:  # noqa: BLE001
            FAILED.append("exception: %r" % e)
            import traceback
            traceback.print_exc()
        if FAILED:
            c.dump_logs()
    print("%d failed" % len(FAILED))
    for f in FAILED:
        print("  FAIL:", f)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
