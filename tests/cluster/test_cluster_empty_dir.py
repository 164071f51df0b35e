"""test_cluster_empty_dir.py — 1 ZooKeeper + 3 brokers: broker 3 is stopped,
its data directory deleted, and it is started again (same broker.id, same
cluster). It must adopt the cluster id, re-replicate every partition it is
a replica of (its logs byte-identical to the leaders' up to the high
watermark), rejoin the ISR (Metadata of every broker), and, once made
leader (the other ISR members killed), serve every acknowledged record
exactly once and in order. Exit 77 when ZooKeeper is missing."""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402
from fault_checks import (FAILED, check, check_records, consume_all, create_topic, log_batches,
                          logs_identical, parts_md, produce, sanitizer_clean, shutdown)  # noqa: E402

TOPIC = "empty-dir-t"
RTOPIC = "empty-dir-ret"
NPART = 3


# ---- the test ----
def logs_identical_from(c, a, b, topic, part, hw):
    """Like logs_identical, from the larger of the two logs' first offsets
    (retention trims each replica on its own)."""
    la = [x for x in log_batches(c, a, topic, part) if x[1] < hw]
    lb = [x for x in log_batches(c, b, topic, part) if x[1] < hw]
    if not la or not lb:
        return hw == 0
    s = max(la[0][0], lb[0][0])
    la = [x for x in la if x[0] >= s]
    lb = [x for x in lb if x[0] >= s]
    return la == lb and la and la[-1][1] == hw - 1


def all_isr(c, ids, topic, n):
    return all(len(pm) == n and all(isr == ids for _, _, isr in pm.values())
               for pm in (parts_md(c, i, topic) for i in ids))


def wipe_round(c, how, acked, racked, cid):
    """Stops broker 3 (`how`), empties its data dir, starts it again and
    checks it re-replicates everything and rejoins every ISR."""
    ids = [1, 2, 3]
    start_before = consume_all(c, parts_md(c, 1, RTOPIC)[0][0], RTOPIC, 0)[0]
    if how == "stop":
        c.stop(3)
    else:
        # kill -9, then wait for the session to expire before the restart:
        # a restart within the session (a "bounced" broker the controller
        # does not notice) is a known gap, see the report of this wave.
        c.kill(3)
        c.wait(lambda: c.zk_get("/brokers/ids/3")[0] is None, "broker 3's session expired", timeout=90)
    c.wait(lambda: all(len(pm) == NPART and all(3 not in isr and l in (1, 2) for l, _, isr in pm.values())
                       for pm in (parts_md(c, i, TOPIC) for i in (1, 2))),
           "ISR without broker 3", timeout=90)
    shutil.rmtree(c.data_dir(3))
    for p in range(NPART):
        a, f = produce(c, TOPIC, p, "%s-b%d" % (how[:4], p), 30, ids=[1, 2])
        check(len(a) >= 20, "[%s] partition %d: records while broker 3 is away (%d acked, %d timed out)"
              % (how, p, len(a), len(f)))
        acked[p] += a
    a, f = produce(c, RTOPIC, 0, "%s-r" % how[:4], 60, ids=[1, 2])
    check(len(a) >= 40, "[%s] more records to the retention topic (%d acked)" % (how, len(a)))
    racked += a
    c.start(3)
    c.wait_cluster(timeout=90)
    check(c.metadata(3).cluster_id == cid, "[%s] broker 3 adopted the cluster id %s" % (how, cid))
    with open(os.path.join(c.data_dir(3), "__sluice_catalog")) as f:
        check(("cluster.id %s" % cid) in f.read(), "[%s] broker 3's catalog stores the cluster id" % how)
    c.wait(lambda: all_isr(c, ids, TOPIC, NPART) and all_isr(c, ids, RTOPIC, 1),
           "broker 3 back in every ISR (Metadata of all brokers)", timeout=120)
    check(True, "[%s] broker 3 rejoined the ISR of all %d+1 partitions" % (how, NPART))
    off = c.wait(lambda: (lambda pm: pm if len(pm) == 50 and all(isr == ids for _, _, isr in pm.values())
                          else None)(parts_md(c, 3, "__consumer_offsets")),
                 "broker 3 back in the ISR of every __consumer_offsets partition", timeout=120)
    check(len(off) == 50, "[%s] broker 3 rejoined the ISR of all 50 __consumer_offsets partitions" % how)
    for p in range(NPART):
        st, _ = c.zk_get("/brokers/topics/%s/partitions/%d/state" % (TOPIC, p))
        check(sorted(json.loads(st)["isr"]) == ids, "[%s] partition %d state znode ISR has 3" % (how, p))
    # Byte-identical logs up to the HW, every replica.
    for p in range(NPART):
        leader = parts_md(c, 1, TOPIC)[p][0]
        low, hw, recs = consume_all(c, leader, TOPIC, p)
        check(hw >= len(acked[p]) and low == 0, "[%s] partition %d: HW %d >= %d acknowledged" %
              (how, p, hw, len(acked[p])))
        check_records([v for _, v in recs], acked[p], "[%s] partition %d from leader %d" % (how, p, leader))
        for r in ids:
            if r != leader:
                ok = c.wait(lambda r=r: logs_identical(c, leader, r, TOPIC, p, hw),
                            "broker %d log of partition %d" % (r, p), timeout=30)
                check(ok, "[%s] partition %d: broker %d log byte-identical to leader %d up to HW %d"
                      % (how, p, r, leader, hw))
    # The retention topic: the leader's log starts above 0, so the empty
    # follower's first fetch is out of range and it restarts at the leader's
    # log start.
    leader = parts_md(c, 1, RTOPIC)[0][0]
    low, hw, recs = consume_all(c, leader, RTOPIC, 0)
    check(low > 0 and hw >= len(racked), "[%s] retention topic: leader %d log start %d > 0, HW %d >= %d"
          % (how, leader, low, hw, len(racked)))
    rk = set(racked)
    check([v for _, v in recs if v in rk] == [v for v in racked if v in set(x for _, x in recs)] and
          set(racked[-20:]) <= set(v for _, v in recs),
          "[%s] retention topic: acknowledged records from %d on intact, in order" % (how, low))
    first3 = [x[0] for x in log_batches(c, 3, RTOPIC, 0)][:1]
    check(first3 and first3[0] >= start_before > 0,
          "[%s] broker 3's retention-topic log starts at %s, not below the leader's log start %d "
          "before the wipe" % (how, first3, start_before))
    for r in ids:
        if r != leader:
            check(c.wait(lambda r=r: logs_identical_from(c, leader, r, RTOPIC, 0, hw), "identical",
                         timeout=30),
                  "[%s] retention topic: broker %d identical to leader %d up to HW %d" % (how, r, leader, hw))


def run(c):
    ids = [1, 2, 3]
    c.wait_cluster(timeout=90)
    check(create_topic(c, 1, TOPIC, NPART) == [0], "CreateTopics %dx3 min.insync 2" % NPART)
    check(create_topic(c, 1, RTOPIC, 1, {"segment.bytes": "2048", "retention.bytes": "4096"}) == [0],
          "CreateTopics %s with segment.bytes 2048, retention.bytes 4096" % RTOPIC)
    c.wait(lambda: all_isr(c, ids, TOPIC, NPART) and all_isr(c, ids, RTOPIC, 1),
           "every partition with ISR 1,2,3", timeout=90)
    acked = {p: [] for p in range(NPART)}
    for p in range(NPART):
        a, f = produce(c, TOPIC, p, "a%d" % p, 40)
        check(not f and len(a) == 40, "partition %d: 40 acks=all records before the stop (%d failed)"
              % (p, len(f)))
        acked[p] += a
    racked, _ = produce(c, RTOPIC, 0, "r" + "x" * 100, 100)
    check(len(racked) == 100, "100 records to the retention topic")
    c.wait(lambda: consume_all(c, parts_md(c, 1, RTOPIC)[0][0], RTOPIC, 0)[0] > 0,
           "retention moves the log start of %s above 0" % RTOPIC, timeout=60)
    cid = c.metadata(1).cluster_id
    for how in ("stop", "kill -9"):
        wipe_round(c, how, acked, racked, cid)

    # Make broker 3 the leader of partition 0 (kill the other ISR members,
    # one at a time), then read everything from it.
    p = 0
    for _ in range(2):
        leader = parts_md(c, 3, TOPIC)[p][0]
        if leader == 3:
            break
        c.kill(leader)
        c.wait(lambda leader=leader: parts_md(c, 3, TOPIC)[p][0] not in (leader, -1),
               "a new leader of partition %d after killing %d" % (p, leader), timeout=90)
    check(parts_md(c, 3, TOPIC)[p][0] == 3, "broker 3 leads partition %d" % p)
    low, hw, recs = consume_all(c, 3, TOPIC, p)
    check(hw >= len(acked[p]), "broker 3 as leader: HW %d >= %d acknowledged" % (hw, len(acked[p])))
    ak = set(acked[p])
    check([v for _, v in recs if v in ak] == acked[p] and [o for o, _ in recs] == list(range(len(recs))),
          "broker 3 as leader serves every acknowledged record once, in order")
    shutdown(c)
    sanitizer_clean(c)


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    with SluiceCluster(zk_servers=1, brokers=3, session_ms=6000,
                       conf=["log.retention.check.interval.ms=500"]) as c:
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
