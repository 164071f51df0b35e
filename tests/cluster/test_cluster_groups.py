"""test_cluster_groups.py — consumer groups in cluster mode: 1 ZooKeeper +
3 brokers, __consumer_offsets created through ZooKeeper (RF 3, 6
partitions, Kafka's overrides in /config/topics), a kafka-python group of
two consumers on a 6-partition RF 3 topic consumes and commits; the
coordinator (FindCoordinator) is the leader of the group's
__consumer_offsets partition; SIGKILL it; the group finds the new leader,
the committed offsets are there (OffsetFetch through confluent-kafka
equals what was committed before the kill), consumption resumes without
skipping a record, and commits keep working on the new coordinator.
Every wait is bounded. Exit 77 when ZooKeeper is missing."""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402

TOPIC = "grp-t6"
GROUP = "cluster-group-1"
PARTS = 6
OFFSETS_PARTS = 6
RECORDS = 600
FAILED = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        FAILED.append(what)
    return cond


def java_hash(s):
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def offsets_partition(group):
    h = java_hash(group)
    a = 0 if h == -(1 << 31) else abs(h)
    return a % OFFSETS_PARTS


def leaders(c, i, topic):
    md = c.metadata(i)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p: pm.leader for p, pm in t.partitions.items()}


def find_coordinator(c, i):
    """FindCoordinator for GROUP through broker i (kafka-python admin)."""
    from kafka import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % c.ports[i], request_timeout_ms=5000)
    try:
        return a._find_coordinator_ids([GROUP])[GROUP]
    finally:
        a.close()


def committed(c, ids):
    """{partition: committed offset} of GROUP (confluent-kafka OffsetFetch, bounded)."""
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap(ids), "group.id": GROUP,
                     "enable.auto.commit": False, "socket.timeout.ms": 5000})
    try:
        tps = cons.committed([TopicPartition(TOPIC, p) for p in range(PARTS)], timeout=15)
        return {tp.partition: tp.offset for tp in tps if tp.error is None}
    finally:
        cons.close()


def produce(c, lo, hi, ends):
    """Records lo..hi-1 (record n to partition n % PARTS), acks=all; ends updated."""
    from kafka import KafkaProducer
    prod = KafkaProducer(bootstrap_servers=c.bootstrap(), acks="all", retries=50,
                         retry_backoff_ms=300, max_in_flight_requests_per_connection=1,
                         metadata_max_age_ms=2000, request_timeout_ms=15000)
    try:
        for n in range(lo, hi):
            md = prod.send(TOPIC, key=b"%d" % n, value=b"v%d" % n, partition=n % PARTS).get(60)
            ends[md.partition] = max(ends.get(md.partition, 0), md.offset + 1)
    finally:
        prod.close()


class Member(threading.Thread):
    """One kafka-python group member on its own thread (a member blocks in
    poll while it joins, so two members cannot share a thread). The test
    talks to it through flags: paused (poll without fetching, so the member
    still follows rebalances and coordinator moves) and commit requests."""

    def __init__(self, c, seen, lock):
        super().__init__(daemon=True)
        from kafka import KafkaConsumer
        self.cons = KafkaConsumer(bootstrap_servers=c.bootstrap(), group_id=GROUP,
                                  enable_auto_commit=False, auto_offset_reset="earliest",
                                  session_timeout_ms=10000, heartbeat_interval_ms=1000,
                                  max_poll_records=20, metadata_max_age_ms=2000,
                                  retry_backoff_ms=200, reconnect_backoff_max_ms=1000)
        self.cons.subscribe([TOPIC])
        self.seen, self.lock = seen, lock
        self.paused = False
        self.stop = False
        self.assigned = []
        self.commit_req = threading.Event()
        self.commit_done = threading.Event()
        self.committed = None
        self.error = None

    def _commit(self):
        from kafka.structs import OffsetAndMetadata
        try:
            pos = {tp: self.cons.position(tp) for tp in self.cons.assignment()}
            if pos:
                self.cons.commit({tp: OffsetAndMetadata(o, "") for tp, o in pos.items()})
            self.committed = {tp.partition: o for tp, o in pos.items()}
        except Exception as e:  # noqa: BLE001 (reported to the test, which retries)
            self.committed = None
            self.error = e

    def run(self):
        while not self.stop:
            if self.commit_req.is_set():
                self.commit_req.clear()
                self._commit()
                self.commit_done.set()
            asg = self.cons.assignment()
            if self.paused and asg:
                self.cons.pause(*asg)
            elif asg:
                self.cons.resume(*asg)
            try:
                got = self.cons.poll(timeout_ms=200)
            except Exception as e:  # noqa: BLE001 (retriable group errors)
                self.error = e
                time.sleep(0.2)
                continue
            self.assigned = sorted(tp.partition for tp in self.cons.assignment())
            with self.lock:
                for tp, recs in got.items():
                    for r in recs:
                        self.seen.setdefault(tp.partition, []).append(r.offset)
        self.cons.close()

    def commit(self, timeout=30):
        self.commit_done.clear()
        self.commit_req.set()
        if not self.commit_done.wait(timeout):
            raise RuntimeError("commit did not finish")
        if self.committed is None:
            raise RuntimeError("commit failed: %r" % self.error)
        return self.committed


def commit_positions(members):
    """Each member commits its position on every assigned partition; the union."""
    out = {}
    for m in members:
        out.update(m.commit())
    return out


def total(seen, lock):
    with lock:
        return sum(len(v) for v in seen.values())


def run(c):
    c.wait_cluster(timeout=120)
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(), request_timeout_ms=30000)
    admin.create_topics([NewTopic(TOPIC, PARTS, 3)], timeout_ms=30000)
    admin.close()
    c.wait(lambda: len(leaders(c, 1, TOPIC)) == PARTS and
           all(l > 0 for l in leaders(c, 1, TOPIC).values()), "topic leaders", 90)

    ends = {}
    produce(c, 0, RECORDS // 2, ends)
    check(ends == {p: RECORDS // 2 // PARTS for p in range(PARTS)},
          "produced %d records (ends %s)" % (RECORDS // 2, ends))

    # The group: two kafka-python members; consume about half, commit.
    seen, lock = {}, threading.Lock()
    members = [Member(c, seen, lock), Member(c, seen, lock)]
    for m in members:
        m.start()
    half = {p: RECORDS // 2 // PARTS for p in range(PARTS)}

    def phase1_done():
        with lock:
            got = {p: len(set(v)) for p, v in seen.items()}
        return got == half and all(len(m.assigned) == PARTS // 2 for m in members)
    c.wait(phase1_done, "the first half consumed by a stable group of two", 120)
    for m in members:
        m.paused = True
    time.sleep(1.0)   # let a poll in flight finish before the positions are read
    check(sorted(members[0].assigned + members[1].assigned) == list(range(PARTS)),
          "two members share the 6 partitions 3/3 (%s)" % [m.assigned for m in members])
    before = c.wait(lambda: (lambda d: d if len(d) == PARTS else None)(
        commit_positions(members)), "a commit covering every partition", 60)
    check(before == half, "committed what was consumed (%s)" % before)

    # __consumer_offsets: made through ZooKeeper with RF 3 and the overrides.
    data, _ = c.zk_get("/brokers/topics/__consumer_offsets")
    asg = json.loads(data)["partitions"] if data else {}
    check(len(asg) == OFFSETS_PARTS and all(len(r) == 3 for r in asg.values()),
          "/brokers/topics/__consumer_offsets: %d partitions RF 3" % len(asg))
    cfg, _ = c.zk_get("/config/topics/__consumer_offsets")
    cfg = json.loads(cfg)["config"] if cfg else {}
    check(cfg.get("cleanup.policy") == "compact" and cfg.get("compression.type") == "producer" and
          "segment.bytes" in cfg, "/config/topics/__consumer_offsets overrides: %s" % cfg)

    # The coordinator is the leader of the group's __consumer_offsets partition.
    op = offsets_partition(GROUP)
    lead = leaders(c, 1, "__consumer_offsets").get(op)
    coord = find_coordinator(c, 1)
    check(coord == lead and coord in (1, 2, 3),
          "FindCoordinator answers the leader of __consumer_offsets-%d (%s, leader %s)" %
          (op, coord, lead))
    check(all(find_coordinator(c, i) == coord for i in (2, 3)),
          "every broker names the same coordinator")
    check(committed(c, None) == before, "OffsetFetch before the kill equals the commit")

    # SIGKILL the coordinator.
    c.kill(coord)
    live = [i for i in (1, 2, 3) if i != coord]
    t0 = time.monotonic()
    new = c.wait(lambda: (lambda l: l if l in live else None)(
        leaders(c, live[0], "__consumer_offsets").get(op)), "a new offsets leader", 90)
    c.wait(lambda: find_coordinator(c, live[0]) == new, "FindCoordinator names it", 60)
    check(new in live, "new coordinator %d (after %.1f s)" % (new, time.monotonic() - t0))
    after = c.wait(lambda: (lambda d: d if len(d) == PARTS else None)(committed(c, live)),
                   "OffsetFetch from the new coordinator", 90)
    check(after == before, "committed offsets survive the kill: %s == %s" % (after, before))

    # Consumption resumes from the committed offsets: the second half
    # (produced after the kill), every record, no gap.
    produce(c, RECORDS // 2, RECORDS, ends)
    check(sum(ends.values()) == RECORDS, "produced the second half after the kill (%s)" % ends)
    with lock:
        seen.clear()
    for m in members:
        m.paused = False

    def all_seen():
        with lock:
            return all(set(range(before[p], ends[p])) <= set(seen.get(p, []))
                       for p in range(PARTS))
    try:
        c.wait(all_seen, "every record consumed after the failover", 180)
    except RuntimeError as e:
        check(False, str(e))
    with lock:
        gaps = {p: sorted(set(range(before[p], ends[p])) - set(seen.get(p, [])))
                for p in range(PARTS)}
        first = {p: min(seen[p]) if seen.get(p) else None for p in range(PARTS)}
    check(all(not g for g in gaps.values()), "no record skipped (missing per partition: %s)" %
          {p: len(g) for p, g in gaps.items()})
    check(first == before, "every partition resumed at its committed offset (%s)" % first)

    # Commits keep working on the new coordinator (answered once replicated).
    for m in members:
        m.paused = True
    time.sleep(1.0)
    final = c.wait(lambda: (lambda d: d if len(d) == PARTS else None)(
        commit_positions(members)), "the final commit", 90)
    check(final == ends, "final commit at the log ends (%s)" % final)
    check(c.wait(lambda: committed(c, live) == ends, "final OffsetFetch", 60),
          "OffsetFetch after the failover equals the final commit")
    for m in members:
        m.stop = True
    for m in members:
        m.join(30)
    for i, path in sorted(c.logs.items()):
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
        check("Sanitizer" not in text and "runtime error:" not in text,
              "broker %d log has no sanitizer report" % i)


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    conf = ["offsets.topic.num.partitions=%d" % OFFSETS_PARTS,
            "group.initial.rebalance.delay.ms=0", "min.insync.replicas=2"]
    with SluiceCluster(zk_servers=1, brokers=3, conf=conf, session_ms=6000) as c:
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
