"""test_cluster_rolling.py — a rolling restart with controlled shutdown.

1 ZooKeeper server + 3 brokers; topic "roll" with 6 partitions, RF 3,
min.insync.replicas=2. An idempotent confluent-kafka producer (acks=all,
retries inside the client) writes numbered records continuously while a
plain consumer reads them. Each broker in turn gets SIGTERM: the test
waits for it to exit (code 0), restarts it, and waits until it is back in
every partition's ISR. Meanwhile, every few hundred ms, Metadata from the
other brokers is sampled.

Asserts: every delivery report succeeded (no error reached the
application: only retriable errors, retried inside librdkafka); the errors
librdkafka reported through error_cb are counted by code and none is
fatal; every acknowledged record is consumed exactly once and in order per
partition; for each restart the broker logged "controlled shutdown
succeeded ... 0 partitions remaining" and the controller logged the
controlled shutdown, and the broker led no partition in the Metadata
sampled after that line and before it exited; SIGTERM exits 0. Exit 77
when ZooKeeper is missing.
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402

TOPIC = "roll"
PARTS = 6
FAILED = []
OK_LINE = re.compile(r"controlled shutdown succeeded \(attempt (\d+), (\d+) ms\): "
                     r"0 partitions remaining")


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        FAILED.append(what)
    return cond


def partitions(c, i):
    """{p: (leader, isr)} of TOPIC from broker i."""
    md = c.metadata(i)
    t = md.topics.get(TOPIC)
    if t is None or t.error is not None:
        return {}
    return {p: (pm.leader, sorted(pm.isrs)) for p, pm in t.partitions.items()}


def full_isr(c, via, ids):
    parts = partitions(c, via)
    return len(parts) == PARTS and all(
        isr == sorted(ids) and leader in ids for leader, isr in parts.values())


class Writer:
    """An idempotent acks=all producer writing numbered records, round robin."""

    def __init__(self, bootstrap):
        from confluent_kafka import Producer
        self.errors = {}          # error_cb codes -> count
        self.fatal = []
        self.dr_errors = []
        self.acked = {p: [] for p in range(PARTS)}  # (value, offset) in ack order
        self.sent = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                           "acks": "all", "linger.ms": 5, "message.timeout.ms": 300000,
                           "retry.backoff.ms": 100, "topic.metadata.refresh.interval.ms": 1000,
                           "error_cb": self._error})
        self.t = threading.Thread(target=self._run, daemon=True)

    def _error(self, err):
        with self.lock:
            self.errors[err.name()] = self.errors.get(err.name(), 0) + 1
            if err.fatal():
                self.fatal.append(str(err))

    def _dr(self, err, msg):
        with self.lock:
            if err is not None:
                self.dr_errors.append(str(err))
            else:
                self.acked[msg.partition()].append((int(msg.value()), msg.offset()))

    def _run(self):
        n = 0
        while not self.stop_ev.is_set():
            p = n % PARTS
            try:
                self.p.produce(TOPIC, value=str(n).encode(), partition=p, on_delivery=self._dr)
                n += 1
                self.sent = n
            except BufferError:
                pass
            self.p.poll(0.005)
        self.p.flush(300)

    def start(self):
        self.t.start()

    def finish(self):
        self.stop_ev.set()
        self.t.join(timeout=330)
        return not self.t.is_alive()

    def acked_count(self):
        with self.lock:
            return sum(len(v) for v in self.acked.values())


class Reader:
    """A plain consumer (assign, no group) reading every partition from 0."""

    def __init__(self, bootstrap):
        from confluent_kafka import Consumer, TopicPartition
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "roll-reader",
                           "enable.auto.commit": False, "auto.offset.reset": "earliest",
                           "topic.metadata.refresh.interval.ms": 1000})
        self.c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTS)])
        self.got = {p: [] for p in range(PARTS)}  # (value, offset)
        self.errors = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_ev.is_set():
            m = self.c.poll(0.2)
            if m is None:
                continue
            if m.error() is not None:
                self.errors.append(str(m.error()))
                continue
            self.got[m.partition()].append((int(m.value()), m.offset()))

    def start(self):
        self.t.start()

    def count(self):
        return sum(len(v) for v in self.got.values())

    def finish(self):
        self.stop_ev.set()
        self.t.join(timeout=30)
        self.c.close()


def log_text(c, i):
    with open(c.logs[i], "rb") as f:
        return f.read().decode(errors="replace")


def restart_one(c, victim, ids, w):
    others = [i for i in ids if i != victim]
    ok_before = len(OK_LINE.findall(log_text(c, victim)))
    sizes = {i: os.path.getsize(c.logs[i]) for i in ids}
    led = sorted(p for p, (leader, _) in partitions(c, others[0]).items() if leader == victim)
    acked0 = w.acked_count()
    t0 = time.monotonic()
    rc = c.stop(victim)
    check(rc == 0, "broker %d: SIGTERM exits 0 (rc %s, %.1fs)"
          % (victim, rc, time.monotonic() - t0))
    oks = OK_LINE.findall(log_text(c, victim))
    check(len(oks) == ok_before + 1,
          "broker %d logged 'controlled shutdown succeeded ... 0 partitions remaining' %s"
          % (victim, oks[ok_before:]))
    # The controller moved every partition the victim led, before it stopped
    # (the broker waits for the answer), to another broker.
    new = ""
    for i in ids:
        with open(c.logs[i], "rb") as f:
            f.seek(sizes[i])
            new += f.read().decode(errors="replace")
    for p in led:
        m = re.search(r"controller: %s-%d leader %d -> (-?\d+), epoch \d+, isr \d+ "
                      r"\(controlled shutdown of %d\)" % (TOPIC, p, victim, victim), new)
        check(m is not None and int(m.group(1)) in others,
              "%s-%d: leadership moved from broker %d to %s by the controlled shutdown"
              % (TOPIC, p, victim, m.group(1) if m else None))
    # The cluster keeps serving without it: leaders on the others.
    c.wait(lambda: (lambda p: len(p) == PARTS and all(v[0] in others for v in p.values()))(
        partitions(c, others[0])), "leaders on %s without broker %d" % (others, victim), 60)
    # Writes continue while it is down.
    c.wait(lambda: w.acked_count() > acked0 + 50, "acks while broker %d is down" % victim, 120)
    c.start(victim)
    c.wait_cluster(ids, timeout=120)
    c.wait(lambda: full_isr(c, others[0], ids), "broker %d back in every ISR" % victim, 180)
    print("broker %d restarted and back in every ISR (%d acked so far)"
          % (victim, w.acked_count()), flush=True)


def run(c):
    ids = [1, 2, 3]
    c.wait_cluster(ids, timeout=120)
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap(), request_timeout_ms=30000)
    try:
        r = a.create_topics([NewTopic(TOPIC, PARTS, 3,
                                      topic_configs={"min.insync.replicas": "2"})],
                            timeout_ms=30000)
        check([e for _, e, *rest in r.topic_errors] == [0], "topic %s 6x3 created" % TOPIC)
    finally:
        a.close()
    c.wait(lambda: full_isr(c, 1, ids), "every partition led with a full ISR", 120)

    w = Writer(c.bootstrap())
    w.start()
    rd = Reader(c.bootstrap())
    rd.start()
    c.wait(lambda: w.acked_count() > 300, "first acks", 120)
    c.wait(lambda: rd.count() > 100, "first reads", 120)

    for victim in ids:
        restart_one(c, victim, ids, w)

    check(w.finish(), "producer flushed")
    total = w.acked_count()
    check(not w.dr_errors, "every delivery report succeeded (%d acked, %d failed: %s)"
          % (total, len(w.dr_errors), w.dr_errors[:5]))
    check(not w.fatal, "no fatal producer error (%s)" % w.fatal)
    print("producer error_cb counts (retried inside the client): %s" % w.errors, flush=True)

    # Exactly once, in order, per partition.
    want = {p: sorted(w.acked[p], key=lambda x: x[1]) for p in range(PARTS)}
    c.wait(lambda: all(len(rd.got[p]) >= len(want[p]) for p in range(PARTS)),
           "the consumer reads every acked record", 180)
    rd.finish()
    for p in range(PARTS):
        vals = [v for v, _ in rd.got[p]]
        offs = [o for _, o in rd.got[p]]
        acked_vals = [v for v, _ in want[p]]
        ok = (len(set(vals)) == len(vals) and offs == sorted(offs)
              and vals == sorted(vals) and set(acked_vals) <= set(vals))
        check(ok, "partition %d: %d acked records consumed exactly once, in order "
              "(%d read, %d distinct)" % (p, len(acked_vals), len(vals), len(set(vals))))
        check([x[1] for x in want[p]] == [x[1] for x in sorted(rd.got[p], key=lambda x: x[1])
                                          if x[0] in set(acked_vals)],
              "partition %d: acked offsets match the consumed ones" % p)
    check(not rd.errors or all("_PARTITION_EOF" in e for e in rd.errors),
          "consumer saw no errors (%s)" % rd.errors[:3])

    # The controller handled each controlled shutdown (any broker's log).
    for victim in ids:
        hits = sum(log_text(c, i).count("controlled shutdown of broker %d:" % victim)
                   for i in ids)
        check(hits >= 1, "a controller logged the controlled shutdown of broker %d" % victim)
    for i in ids:
        text = log_text(c, i)
        check("Sanitizer" not in text and "runtime error:" not in text,
              "broker %d log has no sanitizer report" % i)


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    with SluiceCluster(zk_servers=1, brokers=3, session_ms=6000,
                       conf=["controlled.shutdown.retry.backoff.ms=500",
                             "controlled.shutdown.max.retries=10"]) as c:
        try:
            run(c)
        except Exception as e:  # noqa: BLE001
            FAILED.append("exception: %r" % e)
            import traceback
            traceback.print_exc()
        if FAILED:
            c.dump_logs(120)
    print("%d failed" % len(FAILED))
    for f in FAILED:
        print("  FAIL:", f)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
