"""test_cluster_zk_death.py — 3 ZooKeeper servers + 3 brokers: one ZooKeeper
server (the ensemble's leader, the hardest case) is killed with kill -9.
The cluster keeps serving: no broker session is lost, acks=all produce and
consume still work, every broker's Metadata stays correct (brokers,
controller, leaders, ISR), and a broker kill after that still fails over
(new leaders from the ISR, acks=all produce to them, every acknowledged
record read back exactly once). Exit 77 when ZooKeeper is missing."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402
from fault_checks import (FAILED, check, check_records, consume_all, create_topic,
                          logs_identical, parts_md, produce, sanitizer_clean, shutdown)  # noqa: E402

TOPIC = "zk-death-t"
NPART = 3


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
