"""test_cluster_broker_epoch.py — 1 ZooKeeper + 3 brokers, session timeout
10 s (the harness's ZooKeeper caps sessions there), replica.lag.time.max.ms
60 s, a topic with RF 3 and
min.insync.replicas=2: a follower restarted with an EMPTY data dir inside
its old ZooKeeper session (a "bounced" broker: same id, new registration,
Kafka's broker epoch = czxid of /brokers/ids/<id>).

Kafka's controller handles a registration whose czxid changed as a
failure followed by a startup; without that the restarted, empty broker
stays in the ISR (only the leader's 60 s lag timer would drop it) and can
be elected leader: acknowledged records lost. Steps:

  1. acks=all idempotent records to every partition (all acknowledged);
  2. F (a follower of partition P, not the controller C, not P's leader
     L) is killed with kill -9, its data dir emptied and it is started
     again at once: its old registration is still there, so it waits;
  3. C is paused (SIGSTOP) while F's old registration goes away (the test
     deletes it, standing in for the old session's expiry) and F
     registers again; C resumes (SIGCONT) and sees /brokers/ids/F present
     as before, only its czxid differs — the race Kafka's broker epoch
     covers, made deterministic;
  4. L is killed with kill -9 right away, so F cannot re-replicate from it;
  5. checks: the controller handles the bounce promptly (well before the
     60 s lag timer): every partition's state is rewritten (leader epoch
     up; F leaves the ISRs — where the leader is alive F may copy the
     little data and rejoin within milliseconds, so only P, whose leader is
     dead, is required to show F out of the ISR), a control request naming F's old epoch is answered
     STALE_BROKER_EPOCH (77) by F (StopReplica v1 over a raw socket, no
     partitions) while its current epoch is accepted; once L's session
     expires the new leader of P is never F while F is behind; F rejoins
     the ISR only after re-replicating (its log byte-identical to the
     leader's up to the HW); every acknowledged record is read back
     exactly once from every partition.

Exit 77 when ZooKeeper is missing."""
import json
import os
import shutil
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import MiniZk, SluiceCluster  # noqa: E402
from fault_checks import (FAILED, check, check_records, consume_all, create_topic, logs_identical,
                          parts_md, sanitizer_clean, shutdown)  # noqa: E402

TOPIC = "bep-t"
NPART = 3
SESSION_MS = 10000
LAG_MS = 60000


def zk_delete(c, path):
    """Deletes a znode (any version) with the harness's minimal client; the zk error code."""
    z = c.zk_client()
    try:
        err, _ = z._call(2, MiniZk._str(c.chroot + path) + struct.pack(">i", -1))
        return err
    finally:
        z.close()


def pstate(c, p):
    data, _ = c.zk_get("/brokers/topics/%s/partitions/%d/state" % (TOPIC, p))
    return json.loads(data) if data else None


def controller(c):
    data, _ = c.zk_get("/controller")
    return json.loads(data)["brokerid"] if data else None


def registration_epoch(c, i):
    _, st = c.zk_get("/brokers/ids/%d" % i)
    return st["czxid"] if st else None


def produce_idem(c, ids, prefix, count):
    """Idempotent acks=all producer, `count` numbered records per partition.
    Returns {partition: [acknowledged values]}."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.bootstrap(ids), "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5,
                  "message.timeout.ms": 60000})
    acked = {q: [] for q in range(NPART)}
    failed = []

    def cb(err, msg):
        if err is None:
            acked[msg.partition()].append(msg.value().decode())
        else:
            failed.append(msg.value().decode())
    for k in range(count):
        for q in range(NPART):
            p.produce(TOPIC, value=("%s-%d-%d" % (prefix, q, k)).encode(), partition=q,
                      on_delivery=cb)
        p.poll(0)
    p.flush(90)
    return acked, failed


def stop_replica_v1(port, controller_id, controller_epoch, broker_epoch):
    """StopReplica v1 without partitions; returns the top-level ErrorCode."""
    body = struct.pack(">iiq?i", controller_id, controller_epoch, broker_epoch, False, 0)
    client = b"bep-test"
    hdr = struct.pack(">hhih", 5, 1, 4242, len(client)) + client
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        msg = hdr + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        buf = b""
        for _ in range(1000):
            if len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">i", buf[:4])[0]:
                break
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        corr, err = struct.unpack(">ih", buf[4:10])
        check(corr == 4242, "StopReplica answer correlates")
        return err
    finally:
        s.close()


def run(c):
    ids = [1, 2, 3]
    c.wait_cluster(timeout=90)
    check(create_topic(c, 1, TOPIC, NPART) == [0], "CreateTopics %dx3 min.insync 2" % NPART)
    c.wait(lambda: all(len(pm) == NPART and all(r == ids and isr == ids for _, r, isr in pm.values())
                       for pm in (parts_md(c, i, TOPIC) for i in ids)),
           "every partition with ISR 1,2,3", timeout=90)
    acked, failed = produce_idem(c, ids, "a", 200)
    check(not failed and all(len(acked[q]) == 200 for q in range(NPART)),
          "200 acks=all records per partition before the bounce (%d failed)" % len(failed))

    ctl = controller(c)
    states = {q: pstate(c, q) for q in range(NPART)}
    epochs0 = {q: states[q]["leader_epoch"] for q in range(NPART)}
    part = [q for q in range(NPART) if states[q]["leader"] != ctl][0]
    lead = states[part]["leader"]
    fol = [i for i in ids if i not in (ctl, lead)][0]
    third = ctl
    old_epoch = registration_epoch(c, fol)
    cepoch = json.loads(c.zk_get("/controller_epoch")[0])
    print("partition %d: leader %d, controller %d; bouncing follower %d (epoch %d)" %
          (part, lead, ctl, fol, old_epoch))

    # 2. kill -9 F, empty its data dir, start it again inside its old session.
    c.kill(fol)
    shutil.rmtree(c.data_dir(fol))
    os.makedirs(c.data_dir(fol))
    c.start(fol)
    # 3. C paused while F's old registration goes and F registers again.
    os.kill(c.pid(ctl), signal.SIGSTOP)
    try:
        check(zk_delete(c, "/brokers/ids/%d" % fol) == 0,
              "old registration of broker %d removed (its session's expiry)" % fol)
        new_epoch = c.wait(lambda: (lambda e: e if e is not None and e != old_epoch else None)(
            registration_epoch(c, fol)), "broker %d registered again" % fol, timeout=30)
        # 4. L dies before F can copy anything from it.
        c.kill(lead)
    finally:
        os.kill(c.pid(ctl), signal.SIGCONT)
    t0 = time.monotonic()
    print("broker %d registered again (epoch %d -> %d); leader %d killed" %
          (fol, old_epoch, new_epoch, lead))

    # 5a. The controller noticed the new epoch: failure handling rewrote
    # every partition (leader epoch up) and F is out of P's ISR (P's
    # leader is dead: F cannot have copied anything).
    def noticed():
        st = {q: pstate(c, q) for q in range(NPART)}
        return all(st[q]["leader_epoch"] > epochs0[q] for q in range(NPART)) and \
            fol not in st[part]["isr"] and st
    st = c.wait(noticed, "the controller handling broker %d's bounce" % fol, timeout=30)
    dt = time.monotonic() - t0
    print("bounce handled %.1fs after the controller resumed: %s" %
          (dt, {q: (s["leader"], s["leader_epoch"], s["isr"]) for q, s in st.items()}))
    check(dt * 1000 < LAG_MS / 2, "the bounced broker left the ISRs in %.1fs, well before "
          "replica.lag.time.max.ms (%d ms)" % (dt, LAG_MS))
    check(fol not in st[part]["isr"], "partition %d's ISR %s without the bounced broker %d" %
          (part, st[part]["isr"], fol))

    # 5b. F answers a control request naming its old epoch with STALE_BROKER_EPOCH.
    ce = json.loads(c.zk_get("/controller_epoch")[0])
    check(ce == cepoch, "controller epoch unchanged (%s)" % ce)
    err_old = c.wait(lambda: (lambda e: e if e in (0, 77) else None)(
        stop_replica_v1(c.ports[fol], ctl, ce, old_epoch)), "StopReplica answer", timeout=30)
    check(err_old == 77, "StopReplica with broker %d's old epoch: error %d (77 expected)" %
          (fol, err_old))
    err_new = stop_replica_v1(c.ports[fol], ctl, ce, new_epoch)
    check(err_new == 0, "StopReplica with its current epoch: error %d (0 expected)" % err_new)

    # 5c. Once L's session expires, P's new leader is the in-sync broker,
    # never the emptied one while it is behind.
    def led():
        st = pstate(c, part)
        if st is None or st["leader"] in (lead, -1):
            return None
        return st
    st = c.wait(led, "a new leader of partition %d" % part, timeout=SESSION_MS / 1000 + 60)
    print("partition %d: new leader %d, isr %s, %.1fs after the kill" %
          (part, st["leader"], st["isr"], time.monotonic() - t0))
    check(st["leader"] == third, "partition %d's new leader is %d (in sync), not the emptied %d"
          % (part, st["leader"], fol))

    # F re-replicates from the new leaders and rejoins every ISR; at the
    # moment it is back its log matches the leader's up to the HW.
    def rejoined(q):
        s = pstate(c, q)
        return s if s and fol in s["isr"] else None
    for q in range(NPART):
        s = c.wait(lambda q=q: rejoined(q), "broker %d back in partition %d's ISR" % (fol, q),
                   timeout=120)
        ld = s["leader"]
        _, hw, recs = consume_all(c, ld, TOPIC, q)
        check(c.wait(lambda: logs_identical(c, ld, fol, TOPIC, q, hw), "identical logs",
                     timeout=30),
              "partition %d: broker %d's log identical to leader %d's up to HW %d" %
              (q, fol, ld, hw))
        check_records([v for _, v in recs], acked[q], "partition %d from leader %d" % (q, ld))

    # More acks=all records with L still down (ISR of 2: C and F).
    more, failed = produce_idem(c, [fol, third], "b", 50)
    check(not failed and all(len(more[q]) == 50 for q in range(NPART)),
          "50 more acks=all records per partition with broker %d down (%d failed)" %
          (lead, len(failed)))
    for q in range(NPART):
        ld = pstate(c, q)["leader"]
        _, _, recs = consume_all(c, ld, TOPIC, q)
        check_records([v for _, v in recs], acked[q] + more[q],
                      "partition %d at the end (leader %d)" % (q, ld))
    shutdown(c)
    sanitizer_clean(c)


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    with SluiceCluster(zk_servers=1, brokers=3, session_ms=SESSION_MS,
                       conf=["replica.lag.time.max.ms=%d" % LAG_MS]) as c:
        try:
            run(c)
        except Exception as e:  # noqa: BLE001
            check(False, "exception: %r" % e)
            import traceback
            traceback.print_exc()
        if FAILED:
            c.dump_logs(80)
    print("FAILED: %s" % FAILED if FAILED else "all checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
