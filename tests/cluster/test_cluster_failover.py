"""draft_cluster_failover.py — 3 ZooKeeper servers + 3 Sluice brokers, a
topic of 6 partitions with replication factor 3 and min.insync.replicas=2.
An idempotent confluent-kafka producer (acks=all) writes numbered records
(value = a unique sequence number, key = the partition) continuously while
the test, ROUNDS times: SIGKILLs the leader of a partition (from
Metadata), times the failover with a second acks=all producer (SIGKILL ->
first acknowledged produce to the new leader), waits until Metadata names a
new leader, restarts the killed broker and waits until it is back in the
ISR of every partition. Afterwards: every acknowledged record is consumed
exactly once, at the offset its acknowledgement named, sequence numbers
increase within each partition, and the replicas' .log files hold
byte-identical batches below the high watermark.

Prints "failover: N ms (zookeeper.session.timeout.ms=X)" per round and
min/median/max. Exit 77 when ZooKeeper is missing."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402
from fault_checks import log_batches  # noqa: E402

TOPIC = "fo-t6"
PARTS = 6
ROUNDS = int(os.environ.get("SL_FAILOVER_ROUNDS", "10"))
SESSION_MS = 5000
IDS = [1, 2, 3]
FAILED = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        FAILED.append(what)
    return cond


def partitions(c, i):
    """{p: (leader, sorted isr)} of TOPIC from broker i (empty on errors)."""
    md = c.metadata(i)
    t = md.topics.get(TOPIC)
    if t is None or t.error is not None:
        return {}
    return {p: (pm.leader, sorted(pm.isrs)) for p, pm in t.partitions.items()}


def live_partitions(c, live):
    """Metadata of the first live broker that answers."""
    last = None
    for i in live:
        try:
            r = partitions(c, i)
            if len(r) == PARTS:
                return r
        except Exception as e:  # noqa: BLE001
            last = e
    raise RuntimeError("no live broker answers Metadata (%s)" % last)


class Writer:
    """The idempotent producer thread: numbered records round-robin over the
    partitions; acknowledged ones are kept as {p: [(offset, seq)]}."""

    def __init__(self, bootstrap):
        from confluent_kafka import Producer
        self.fatal = []
        self.errors = {}
        self.acked = {p: [] for p in range(PARTS)}
        self.lock = threading.Lock()
        dbg = {}
        if os.environ.get("SL_FAILOVER_DEBUG"):
            import logging
            lg = logging.getLogger("writer")
            lg.addHandler(logging.FileHandler(os.environ["SL_FAILOVER_DEBUG"]))
            lg.setLevel(logging.DEBUG)
            dbg = {"debug": "eos,protocol,broker,metadata,topic", "logger": lg}
        self.p = Producer(dict(dbg, **{"bootstrap.servers": bootstrap, "enable.idempotence": True,
                           "acks": "all", "linger.ms": 5, "message.timeout.ms": 120000,
                           "topic.metadata.refresh.interval.ms": 1000,
                           "log_level": 2 if not dbg else 7, "error_cb": self._error}))
        self.seq = 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)

    def _error(self, err):
        if err.fatal():
            self.fatal.append(str(err))

    def acked_per_partition(self):
        with self.lock:
            return [len(self.acked[p]) for p in range(PARTS)]

    def _dr(self, err, msg):
        if err is not None:
            k = "%s@%d" % (err.name(), msg.partition())
            with self.lock:
                self.errors[k] = self.errors.get(k, 0) + 1
            return
        with self.lock:
            self.acked[msg.partition()].append((msg.offset(), int(msg.value())))

    def _run(self):
        for _ in range(100000000):
            if self.stop_ev.is_set():
                break
            p = self.seq % PARTS
            try:
                self.p.produce(TOPIC, key=b"p%d" % p, value=b"%d" % self.seq,
                               partition=p, on_delivery=self._dr)
                self.seq += 1
            except BufferError:
                pass
            self.p.poll(0.004)

    def start(self):
        self.t.start()

    def finish(self):
        self.stop_ev.set()
        self.t.join(timeout=30)
        left = self.p.flush(150)
        return left

    def count(self):
        with self.lock:
            return sum(len(v) for v in self.acked.values())


def time_failover(c, prod, part, victim, t_kill, timeout=60.0):
    """Produces to `part` until one acks=all produce succeeds; returns ms
    from t_kill. The victim is dead, so the success is the new leader's."""
    res = []
    deadline = time.monotonic() + timeout
    for _ in range(10000):
        if time.monotonic() > deadline:
            return None
        res.clear()
        prod.produce(TOPIC, key=b"timing", value=b"-1", partition=part,
                     on_delivery=lambda e, m: res.append((e, time.monotonic())))
        for _ in range(10000):
            if res or time.monotonic() > deadline:
                break
            prod.poll(0.005)
        if res and res[0][0] is None:
            return (res[0][1] - t_kill) * 1000.0
        time.sleep(0.01)
    return None


def log_below(c, i, p, hw):
    """The bytes of broker i's replica of partition p: every batch whose last
    offset is below hw, segments in order, plus whether it reaches hw."""
    out = []
    last = -1
    for _base, lst, b in log_batches(c, i, TOPIC, p):
        if lst < hw:
            out.append(b)
            last = lst
    return b"".join(out), last == hw - 1


def run(c):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    c.wait_cluster(timeout=120)
    a = AdminClient({"bootstrap.servers": c.bootstrap()})
    fs = a.create_topics([NewTopic(TOPIC, PARTS, 3, config={"min.insync.replicas": "2"})],
                         request_timeout=30)
    fs[TOPIC].result(60)
    c.wait(lambda: (lambda r: len(r) == PARTS and all(
        l in IDS and isr == IDS for l, isr in r.values()))(live_partitions(c, IDS)),
        "every partition led with an ISR of 3", timeout=90)
    check(True, "topic %s: %d partitions, RF 3, min.insync.replicas=2" % (TOPIC, PARTS))

    w = Writer(c.bootstrap())
    w.start()
    c.wait(lambda: w.count() >= 300, "the first 300 acknowledged records", timeout=60)
    timing = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all",
                       "message.timeout.ms": 60000,
                       "topic.metadata.refresh.interval.ms": 1000,
                       "retry.backoff.ms": 20, "log_level": 2})
    fo = []
    kills_ctl = 0
    t_start = time.monotonic()
    for r in range(ROUNDS):
        md = live_partitions(c, IDS)
        try:
            ctl = c.metadata(md[0][0]).controller_id
        except Exception:  # noqa: BLE001 (only for choosing and the report)
            ctl = -1
        # Even rounds: the leader of partition r % PARTS; odd rounds prefer
        # a leader that is not the controller (both failover paths run).
        part = r % PARTS
        if r % 2 == 1:
            others = [q for q in range(PARTS) if md[q][0] != ctl]
            part = others[r % len(others)] if others else part
        victim = md[part][0]
        before = w.acked_per_partition()
        t_kill = time.monotonic()
        at = time.strftime("%H:%M:%S", time.gmtime()) + ".%03d" % (time.time() * 1000 % 1000)
        os.kill(c.pid(victim), signal.SIGKILL)
        c.procs[victim].wait(timeout=30)
        live = [i for i in IDS if i != victim]
        ms = time_failover(c, timing, part, victim, t_kill)
        if not check(ms is not None, "round %d: acks=all produce to partition %d succeeds "
                     "after killing its leader %d" % (r, part, victim)):
            return
        fo.append(ms)
        print("failover: %d ms (zookeeper.session.timeout.ms=%d)" % (ms, SESSION_MS),
              flush=True)
        c.wait(lambda: all(l in live for l, _ in live_partitions(c, live).values()),
               "Metadata names live leaders for every partition", timeout=60)
        try:
            c.wait(lambda: all(n > b + 10 for n, b in zip(w.acked_per_partition(), before)),
                   "the writer's records to every partition are acknowledged again",
                   timeout=60)
        except RuntimeError:
            print("acknowledged per partition: before %s, now %s; errors %s" % (
                before, w.acked_per_partition(), w.errors))
            for i in live:
                try:
                    print("Metadata of broker %d: %s" % (i, partitions(c, i)))
                except Exception as e:  # noqa: BLE001
                    print("Metadata of broker %d: %r" % (i, e))
            raise
        c.start(victim)
        c.wait(lambda: all(l in IDS and isr == IDS
                           for l, isr in live_partitions(c, IDS).values()),
               "broker %d back in the ISR of every partition" % victim, timeout=90)
        check(True, "round %d: killed leader %d%s of partition %d at %s UTC, failover %d ms, "
              "back in the ISR; %d acknowledged" % (
                  r, victim, " (the controller)" if ctl == victim else "", part, at, ms,
                  w.count()))
        kills_ctl += ctl == victim
    print("rounds took %.1fs, %d of %d killed the controller" % (
        time.monotonic() - t_start, kills_ctl, ROUNDS))
    timing.flush(30)
    left = w.finish()
    check(left == 0, "the writer's queue drained (%d left)" % left)
    check(not w.fatal, "no fatal idempotent producer error (%s)" % w.fatal)
    check(not w.errors, "no delivery failed (%s)" % w.errors)
    fo.sort()
    print("failover min/median/max: %d / %d / %d ms (zookeeper.session.timeout.ms=%d, "
          "%d rounds)" % (fo[0], fo[len(fo) // 2], fo[-1], SESSION_MS, len(fo)))

    # Consume every partition from the beginning to its end offset.
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "fo-check",
                     "enable.auto.commit": False, "enable.partition.eof": True,
                     "log_level": 2})
    ends = {}
    for p in range(PARTS):
        lo, hi = cons.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=30)
        ends[p] = hi
    cons.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTS)])
    got = {p: [] for p in range(PARTS)}
    done = set(p for p in range(PARTS) if ends[p] == 0)
    deadline = time.monotonic() + 120
    for _ in range(10000000):
        if len(done) == PARTS or time.monotonic() > deadline:
            break
        m = cons.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                if m.offset() >= ends[m.partition()]:
                    done.add(m.partition())
                continue
            check(False, "consumer error %s" % m.error())
            break
        if m.offset() < ends[m.partition()]:
            got[m.partition()].append((m.offset(), m.key(), m.value()))
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    cons.close()
    check(len(done) == PARTS, "consumed every partition to its end offset %s" % ends)

    total_acked = 0
    for p in range(PARTS):
        recs = [(o, int(v)) for o, k, v in got[p] if k == b"p%d" % p]
        seqs = [s for _, s in recs]
        at = dict(recs)
        acked = w.acked[p]
        total_acked += len(acked)
        missing = [(o, s) for o, s in acked if at.get(o) != s]
        check(not missing, "partition %d: all %d acknowledged records consumed at their "
              "offsets (missing/moved: %s)" % (p, len(acked), missing[:10]))
        dup = len(seqs) - len(set(seqs))
        check(dup == 0, "partition %d: no sequence number twice (%d duplicates)" % (p, dup))
        inc = all(x < y for x, y in zip(seqs, seqs[1:]))
        check(inc, "partition %d: sequence numbers increase (%d records)" % (p, len(seqs)))
        check(all(s % PARTS == p for s in seqs), "partition %d holds only its own keys" % p)
    check(total_acked >= 1000, "%d records acknowledged in all" % total_acked)

    # Replicas byte-identical below the high watermark (followers may still
    # be fetching the last batches: bounded wait until all reach it).
    for p in range(PARTS):
        hw = ends[p]
        logs = {}

        def same(p=p, hw=hw):
            for i in IDS:
                logs[i] = log_below(c, i, p, hw)
            return all(ok for _, ok in logs.values()) and \
                len(set(b for b, _ in logs.values())) == 1
        try:
            c.wait(same, "replicas of partition %d equal below %d" % (p, hw), timeout=30)
            check(True, "partition %d: 3 replicas byte-identical below HW %d (%d bytes)" %
                  (p, hw, len(logs[1][0])))
        except RuntimeError:
            check(False, "partition %d: replicas differ below HW %d: %s" % (
                p, hw, {i: (len(b), ok) for i, (b, ok) in logs.items()}))

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
    with SluiceCluster(zk_servers=3, brokers=3, session_ms=SESSION_MS) as c:
        try:
            run(c)
        except Exception as e:  # noqa: BLE001
            FAILED.append("exception: %r" % e)
            import traceback
            traceback.print_exc()
        if FAILED:
            c.dump_logs(lines=int(os.environ.get("SL_DUMP_LINES", "60")))
    print("%d failed" % len(FAILED))
    for f in FAILED:
        print("  FAIL:", f)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
