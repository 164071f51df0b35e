"""test_cluster_hw.py — 1 ZooKeeper server + 2 Sluice brokers: the
replication-offset-checkpoint (Kafka's file, one per log dir) is written
periodically (replica.high.watermark.checkpoint.interval.ms) with every
partition's high watermark, again at a clean shutdown, and read back when a
restarted replica's state is created: after a clean restart of a follower
it starts from the committed end (logged), not from 0. Exit 77 when
ZooKeeper is missing."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402

TOPIC = "hw-t"
PARTS = 2
RECORDS = 200
FAILED = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        FAILED.append(what)
    return cond


def checkpoint(c, i):
    """{(topic, partition): hw} from broker i's file, None when absent.
    Checks Kafka's format on the way."""
    p = os.path.join(c.data_dir(i), "replication-offset-checkpoint")
    try:
        with open(p) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return None
    assert lines[0] == "0", lines[:2]
    n = int(lines[1])
    assert lines[-1] == "" and len(lines) == n + 3, lines
    out = {}
    for ln in lines[2:2 + n]:
        t, part, hw = ln.split(" ")
        out[(t, int(part))] = int(hw)
    return out


def topic_state(c, i):
    md = c.metadata(i)
    t = md.topics.get(TOPIC)
    if t is None or t.error is not None:
        return None
    return {p: (pm.leader, sorted(pm.isrs)) for p, pm in t.partitions.items()}


def run(c):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    c.wait_cluster(timeout=120)
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    fs = a.create_topics([NewTopic(TOPIC, PARTS, 2)], request_timeout=60)
    for f in fs.values():
        f.result(timeout=60)
    c.wait(lambda: (lambda s: s is not None and len(s) == PARTS and
                    all(l > 0 and isr == [1, 2] for l, isr in s.values()))(topic_state(c, 1)),
           "both partitions led with ISR [1, 2]", timeout=120)
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5})
    acked = [0] * PARTS
    errors = []

    def cb(err, msg):
        if err is None:
            acked[msg.partition()] += 1
        else:
            errors.append(err)
    for n in range(RECORDS):
        for part in range(PARTS):
            p.produce(TOPIC, value=b"v%d" % n, partition=part, on_delivery=cb)
        p.poll(0)
    p.flush(60)
    check(errors == [] and acked == [RECORDS] * PARTS, "%s records acknowledged (%s)" %
          (acked, errors[:3]))
    want = {(TOPIC, q): RECORDS for q in range(PARTS)}

    # Periodic: both brokers' files reach the committed end (followers
    # learn it from the leader's next fetch response).
    for i in (1, 2):
        c.wait(lambda: (lambda ck: ck is not None and
                        all(ck.get(k) == v for k, v in want.items()))(checkpoint(c, i)),
               "broker %d's checkpoint shows HW %d" % (i, RECORDS), timeout=60)
        check(True, "broker %d's periodic checkpoint holds HW %d for every partition"
              % (i, RECORDS))

    # Clean stop of partition 0's follower: its file holds the HWs.
    st = topic_state(c, 1)
    follower = 2 if st[0][0] == 1 else 1
    rc = c.stop(follower)
    check(rc == 0, "broker %d stopped cleanly (rc %s)" % (follower, rc))
    with open(c.logs[follower], "rb") as f:
        check(b"replication-offset-checkpoint written at shutdown" in f.read(),
              "broker %d wrote the checkpoint at shutdown (logged)" % follower)
    ck = checkpoint(c, follower)
    check(ck is not None and all(ck.get(k) == v for k, v in want.items()),
          "after the clean stop broker %d's checkpoint holds %s (%s)" % (follower, want, ck))

    # Restart: the replica starts from the checkpointed HW (logged), not 0.
    logp = c.logs[follower]
    with open(logp, "rb") as f:
        seen_before = len(f.read())
    c.start(follower)
    c.wait_cluster(timeout=120)

    def started_at():
        with open(logp, "rb") as f:
            data = f.read()[seen_before:].decode(errors="replace")
        got = {}
        for m in re.finditer(r"partition \S*/%s-(\d+): high watermark (\d+) from "
                             r"replication-offset-checkpoint" % TOPIC, data):
            got[int(m.group(1))] = int(m.group(2))
        return got if len(got) == PARTS else None
    got = c.wait(started_at, "the restarted replica logs its checkpointed HWs", timeout=60)
    check(got == {q: RECORDS for q in range(PARTS)},
          "restarted broker %d starts with HW %d on every partition (%s)" %
          (follower, RECORDS, got))
    # And keeps writing it (the periodic rounds of the new process).
    os.unlink(os.path.join(c.data_dir(follower), "replication-offset-checkpoint"))
    c.wait(lambda: (lambda ck: ck is not None and
                    all(ck.get(k) == v for k, v in want.items()))(checkpoint(c, follower)),
           "the restarted broker rewrites its checkpoint", timeout=60)
    check(True, "the restarted broker rewrites its checkpoint with HW %d" % RECORDS)


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    with SluiceCluster(zk_servers=1, brokers=2, session_ms=6000,
                       conf=["replica.high.watermark.checkpoint.interval.ms=300"]) as c:
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
