"""test_cluster_controller.py — 3 ZooKeeper servers + 3 Sluice brokers:
registration, controller election, a duplicate broker.id, topic creation
with RF 3 through a non-controller broker, Metadata from every broker and
two client libraries, Kafka's znode JSON, failover of the controller
(kill -9) and the broker's return. Exit 77 when ZooKeeper is missing."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402

TOPIC = "ctl-t6"
FAILED = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what))
    if not cond:
        FAILED.append(what)
    return cond


def partitions_confluent(c, i, topic):
    """{p: (leader, replicas, isrs)} and (brokers, controller) from broker i."""
    md = c.metadata(i)
    t = md.topics.get(topic)
    parts = {}
    if t is not None and t.error is None:
        for p, pm in t.partitions.items():
            parts[p] = (pm.leader, sorted(pm.replicas), sorted(pm.isrs))
    return parts, sorted(md.brokers), md.controller_id


def partitions_kafka_python(c, i, topic):
    from kafka import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % c.ports[i], request_timeout_ms=5000)
    try:
        d = a.describe_topics([topic])[0]
        cl = a.describe_cluster()
        parts = {p["partition"]: (p["leader"], sorted(p["replicas"]), sorted(p["isr"]))
                 for p in d["partitions"]} if d["error_code"] == 0 else {}
        return parts, sorted(b["node_id"] for b in cl["brokers"]), cl["controller_id"]
    finally:
        a.close()


def create_error(admin, name, parts, rf):
    """The CreateTopics error code (kafka-python raises for non-zero ones)."""
    from kafka.admin import NewTopic
    try:
        r = admin.create_topics([NewTopic(name, parts, rf)], timeout_ms=30000)
        return r.topic_errors[0][1]
    except Exception as e:  # noqa: BLE001 (kafka.errors.* carry the code)
        return getattr(e, "errno", repr(e))


def all_led(parts, n, live):
    return (len(parts) == n and
            all(l in live and len(r) == 3 and set(isr) <= set(live) and l in isr
                for l, r, isr in parts.values()))


def controller(c):
    data, stat = c.zk_get("/controller")
    if data is None:
        return None, None
    epoch, _ = c.zk_get("/controller_epoch")
    return json.loads(data)["brokerid"], int(epoch)


def run(c):
    c.wait_cluster(timeout=90)
    # /brokers/ids: three registrations in Kafka's JSON.
    ids = sorted(int(x) for x in c.zk_children("/brokers/ids"))
    check(ids == [1, 2, 3], "/brokers/ids lists 1,2,3 (%s)" % ids)
    for i in ids:
        data, stat = c.zk_get("/brokers/ids/%d" % i)
        j = json.loads(data)
        check(j.get("version") == 5 and j.get("port") == c.ports[i] and
              j.get("host") == "127.0.0.1" and
              j.get("endpoints") == ["PLAINTEXT://127.0.0.1:%d" % c.ports[i]] and
              j.get("listener_security_protocol_map") == {"PLAINTEXT": "PLAINTEXT"} and
              stat["ephemeralOwner"] != 0,
              "broker %d registration is Kafka's ephemeral JSON: %s" % (i, j))
    ctl, epoch = controller(c)
    check(ctl in ids and epoch is not None and epoch >= 1,
          "exactly one /controller (broker %s, epoch %s)" % (ctl, epoch))
    cid, _ = c.zk_get("/cluster/id")
    cid = json.loads(cid)
    md = c.metadata(1)
    check(cid.get("version") == "1" and md.cluster_id == cid.get("id"),
          "/cluster/id %s is the cluster id brokers report (%s)" % (cid, md.cluster_id))

    # A fourth broker with a duplicate broker.id stops with an error naming it.
    dup = 4
    c.ports[dup] = c.spare_ports[0]
    p = c.start(dup, broker_id=2, port=c.spare_ports[0],
                data_dir=os.path.join(c.dir, "dup"))
    try:
        rc = p.wait(timeout=60)
    except Exception:  # noqa: BLE001
        rc = None
    with open(c.logs[dup], "rb") as f:
        log = f.read().decode(errors="replace")
    check(rc is not None and rc != 0, "duplicate broker.id exits non-zero (rc %s)" % rc)
    check("broker.id 2" in log and "duplicate" in log,
          "duplicate broker.id error names the id")
    del c.ports[dup]
    del c.procs[dup]
    check(sorted(int(x) for x in c.zk_children("/brokers/ids")) == [1, 2, 3],
          "the duplicate did not replace broker 2's registration")

    # A data dir of another cluster (topics, other id) refuses to start.
    import base64
    other = os.path.join(c.dir, "other")
    os.makedirs(other)
    b64 = lambda: base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    other_id = "A" + b64()[1:]
    with open(os.path.join(other, "__sluice_catalog"), "w") as f:
        f.write("sluice-catalog 1\ncluster.id %s\ntopic %s 1 0 old-topic\n" %
                (other_id, "A" + b64()[1:]))
    c.ports[5] = c.spare_ports[1]
    p = c.start(5, broker_id=5, port=c.spare_ports[1], data_dir=other)
    try:
        rc = p.wait(timeout=60)
    except Exception:  # noqa: BLE001
        rc = None
    with open(c.logs[5], "rb") as f:
        log = f.read().decode(errors="replace")
    check(rc is not None and rc != 0 and "InconsistentClusterIdException" in log and
          other_id in log, "a data dir of another cluster refuses to start (rc %s)" % rc)
    del c.ports[5]
    del c.procs[5]

    # Topic creation through a non-controller broker (kafka-python admin).
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    via = [i for i in ids if i != ctl][0]
    a = KafkaAdminClient(bootstrap_servers="127.0.0.1:%d" % c.ports[via],
                         request_timeout_ms=30000)
    try:
        r = a.create_topics([NewTopic(TOPIC, 6, 3,
                                      topic_configs={"min.insync.replicas": "2"})],
                            timeout_ms=30000)
        errs = [e for _, e, *rest in r.topic_errors]
        check(errs == [0], "CreateTopics 6x3 through broker %d answered %s" % (via, errs))
        check(create_error(a, TOPIC, 6, 3) == 36, "again: TOPIC_ALREADY_EXISTS")
        check(create_error(a, "ctl-rf4", 1, 4) == 38,
              "RF 4 on 3 brokers: INVALID_REPLICATION_FACTOR")
    finally:
        a.close()

    # Metadata from every broker, two libraries.
    for i in ids:
        parts, brokers, mctl = c.wait(
            lambda i=i: (lambda r: r if all_led(r[0], 6, ids) else None)(
                partitions_confluent(c, i, TOPIC)),
            "broker %d Metadata of %s" % (i, TOPIC), timeout=60)
        check(brokers == ids and mctl == ctl,
              "confluent-kafka via broker %d: brokers %s, controller %s" % (i, brokers, mctl))
        check(all(r == ids and isr == ids for _, r, isr in parts.values()),
              "broker %d: every partition has replicas and ISR of 3" % i)
        leaders = sorted(set(l for l, _, _ in parts.values()))
        check(leaders == ids, "broker %d: leaders spread over %s" % (i, leaders))
        kp = c.wait(lambda i=i: (lambda r: r if all_led(r[0], 6, ids) else None)(
            partitions_kafka_python(c, i, TOPIC)), "kafka-python via %d" % i, timeout=30)
        check(kp[0] == parts and kp[1] == ids and kp[2] == ctl,
              "kafka-python via broker %d sees the same (%s)" % (i, kp[2]))

    # ZooKeeper holds Kafka's JSON.
    data, _ = c.zk_get("/brokers/topics/%s" % TOPIC)
    tj = json.loads(data)
    check(tj.get("version") == 3 and len(tj.get("topic_id", "")) == 22 and
          sorted(tj["partitions"]) == [str(p) for p in range(6)] and
          all(sorted(v) == ids for v in tj["partitions"].values()),
          "/brokers/topics/%s is v3 JSON with 6 partitions of 3" % TOPIC)
    cfg, _ = c.zk_get("/config/topics/%s" % TOPIC)
    check(json.loads(cfg) == {"version": 1, "config": {"min.insync.replicas": "2"}},
          "/config/topics/%s holds the topic's configs" % TOPIC)
    for i in ids:
        want = "config %s min.insync.replicas 2" % TOPIC
        c.wait(lambda i=i: want in open(os.path.join(c.data_dir(i), "__sluice_catalog")).read(),
               "broker %d catalog has the topic config" % i, timeout=30)
        check(True, "broker %d applied the topic config from ZooKeeper" % i)
    for p in range(6):
        data, stat = c.zk_get("/brokers/topics/%s/partitions/%d/state" % (TOPIC, p))
        sj = json.loads(data)
        check(sj.get("version") == 1 and sj.get("leader") in ids and
              sorted(sj.get("isr")) == ids and sj.get("controller_epoch") == epoch and
              sj.get("leader_epoch") == 0,
              "partition %d state znode: %s (zkVersion %d)" % (p, sj, stat["version"]))

    # kill -9 the controller: another broker takes over with a higher epoch,
    # the dead broker's partitions move to ISR members.
    before, _, _ = partitions_confluent(c, via, TOPIC)
    c.kill(ctl)
    live = [i for i in ids if i != ctl]
    t0 = time.monotonic()
    new_ctl, new_epoch = c.wait(lambda: (lambda r: r if r[0] in live and r[1] > epoch else None)(
        controller(c)), "a new controller", timeout=60)
    check(new_ctl in live and new_epoch > epoch,
          "broker %d took over as controller, epoch %d > %d" % (new_ctl, new_epoch, epoch))
    for i in live:
        parts, brokers, mctl = c.wait(
            lambda i=i: (lambda r: r if all_led(r[0], 6, live) and r[1] == live and
                         r[2] == new_ctl else None)(partitions_confluent(c, i, TOPIC)),
            "broker %d Metadata after the failover" % i, timeout=60)
        check(all(l != ctl and ctl not in isr for l, _, isr in parts.values()),
              "broker %d: no partition led by (or ISR holding) the dead broker %d" % (i, ctl))
        moved = [p for p, (l, _, _) in before.items() if l == ctl]
        check(all(parts[p][0] in before[p][2] for p in moved),
              "broker %d: partitions %s got new leaders from their ISR" % (i, moved))
    print("failover to new leaders seen after %.1fs" % (time.monotonic() - t0))

    # Restart it: three brokers again everywhere.
    c.start(ctl)
    c.wait_cluster(timeout=90)
    for i in ids:
        _, brokers, mctl = partitions_confluent(c, i, TOPIC)
        check(brokers == ids and mctl == new_ctl,
              "after restart broker %d lists %s, controller %s" % (i, brokers, mctl))

    # Clean stops (SIGTERM): exit 0, and no sanitizer report in any log
    # (the asan preset runs this test too). The controller stops last.
    for i in sorted(ids, key=lambda x: x == new_ctl):
        rc = c.stop(i)
        check(rc == 0, "broker %d stopped cleanly on SIGTERM (rc %s)" % (i, rc))
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
    with SluiceCluster(zk_servers=3, brokers=3) as c:
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
