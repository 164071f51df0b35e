"""test_cluster_topic_admin.py — 1 ZooKeeper + 3 brokers: DeleteTopics and
CreatePartitions in cluster mode (Kafka's ZooKeeper mode).

  - an RF 3 topic with data is deleted through confluent-kafka's
    AdminClient: it leaves every broker's Metadata, its partition
    directories leave every broker's data dir, /brokers/topics/<t>,
    /config/topics/<t> and /admin/delete_topics/<t> leave ZooKeeper;
  - deleting an unknown topic answers UNKNOWN_TOPIC_OR_PARTITION;
  - the name is created again: a new topic id, empty, produce/consume work;
  - create_partitions 3 -> 6 (kafka-python's KafkaAdminClient) on an RF 3
    topic: every broker's Metadata shows 6 partitions with leaders and
    full ISRs, acks=all produce to partitions 3..5 is read back; a smaller
    count answers INVALID_PARTITIONS;
  - a topic deleted (kafka-python) while one replica broker is down
    finishes once that broker is back (its directories are removed then).
Exit 77 when ZooKeeper is missing."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402
from fault_checks import (FAILED, check, consume_all, create_topic, parts_md, produce,
                          sanitizer_clean, shutdown)  # noqa: E402

UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_PARTITIONS = 37


def topic_dirs(c, i, topic):
    d = c.data_dir(i)
    if not os.path.isdir(d):
        return []
    return sorted(n for n in os.listdir(d) if n.rsplit("-", 1)[0] == topic or
                  n.startswith(topic + "-") and n.endswith("-delete"))


def topic_id(c, topic):
    data, _ = c.zk_get("/brokers/topics/" + topic)
    return json.loads(data)["topic_id"] if data is not None else None


def gone_everywhere(c, ids, topic):
    for i in ids:
        if topic in c.metadata(i).topics:
            return False
    return True


def confluent_delete(c, topic, via=1):
    """The error code of deleting `topic` (0 when fine)."""
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": "127.0.0.1:%d" % c.ports[via]})
    f = a.delete_topics([topic], operation_timeout=30, request_timeout=40)[topic]
    try:
        f.result(60)
        return 0
    except Exception as e:  # noqa: BLE001 (KafkaException carries the KafkaError)
        err = e.args[0] if e.args else None
        return err.code() if hasattr(err, "code") else repr(e)


def create_again(c, topic, nparts):
    """Creation of a name whose deletion may still be finishing: retried."""
    def ok():
        errs = create_topic(c, 2, topic, nparts)
        return errs == [0]
    c.wait(ok, "re-creating %s" % topic, timeout=60, interval=1.0)


def run(c):
    ids = [1, 2, 3]
    c.wait_cluster(timeout=90)

    # ---- deletion of an RF 3 topic with data ----
    t = "adm-del"
    check(create_topic(c, 1, t, 3) == [0], "created %s (3 partitions, RF 3)" % t)
    c.wait(lambda: all(len(parts_md(c, i, t)) == 3 for i in ids), "%s in every Metadata" % t)
    old_id = topic_id(c, t)
    acked, failed = produce(c, t, 0, "a", 20)
    check(len(acked) == 20 and not failed, "20 records acked on %s-0" % t)
    c.wait(lambda: all(len(topic_dirs(c, i, t)) == 3 for i in ids),
           "every broker holds 3 directories of %s" % t)
    check(confluent_delete(c, t) == 0, "delete_topics(%s) answered NONE" % t)
    check(t not in c.metadata(1).topics, "%s is gone from the receiving broker's Metadata" % t)
    c.wait(lambda: gone_everywhere(c, ids, t), "%s gone from every Metadata" % t)
    c.wait(lambda: all(not topic_dirs(c, i, t) for i in ids), "%s directories removed" % t)
    c.wait(lambda: c.zk_get("/brokers/topics/" + t)[0] is None and
           c.zk_get("/config/topics/" + t)[0] is None and
           c.zk_get("/admin/delete_topics/" + t)[0] is None,
           "the znodes of %s removed" % t)
    check(True, "%s left Metadata, data dirs and ZooKeeper" % t)

    # ---- unknown topic ----
    check(confluent_delete(c, "adm-never") == UNKNOWN_TOPIC_OR_PARTITION,
          "delete of an unknown topic -> UNKNOWN_TOPIC_OR_PARTITION")

    # ---- the same name again ----
    create_again(c, t, 2)
    c.wait(lambda: all(len(parts_md(c, i, t)) == 2 for i in ids), "new %s in every Metadata" % t)
    new_id = topic_id(c, t)
    check(new_id is not None and new_id != old_id, "new topic id (%s -> %s)" % (old_id, new_id))
    low, high, recs = consume_all(c, 2, t, 0)
    check(low == 0 and high == 0 and not recs, "re-created %s-0 is empty (%d..%d)" % (t, low, high))
    acked, failed = produce(c, t, 0, "b", 5)
    check(len(acked) == 5 and not failed, "5 records acked on the new %s-0" % t)
    low, high, recs = consume_all(c, 3, t, 0)
    check([v for _, v in recs] == ["b-%d" % k for k in range(5)],
          "the new %s-0 reads back exactly the new records" % t)

    # ---- CreatePartitions ----
    g = "adm-grow"
    check(create_topic(c, 2, g, 3) == [0], "created %s (3 partitions)" % g)
    c.wait(lambda: all(len(parts_md(c, i, g)) == 3 for i in ids), "%s in every Metadata" % g)
    from kafka import KafkaAdminClient
    from kafka.admin import NewPartitions
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap(), request_timeout_ms=30000)
    try:
        r = a.create_partitions({g: NewPartitions(6)}, timeout_ms=30000)
        check([e for _, e, *_ in r.topic_errors] == [0], "create_partitions 3 -> 6 (%s)" %
              (r.topic_errors,))
        try:
            r = a.create_partitions({g: NewPartitions(4)}, timeout_ms=30000)
            code = r.topic_errors[0][1]
        except Exception as e:  # noqa: BLE001
            code = getattr(e, "errno", repr(e))
        check(code == INVALID_PARTITIONS, "create_partitions 6 -> 4 -> INVALID_PARTITIONS (%s)"
              % (code,))
    finally:
        a.close()

    def grown():
        for i in ids:
            parts = parts_md(c, i, g)
            if len(parts) != 6:
                return False
            for p, (leader, reps, isr) in parts.items():
                if leader not in ids or len(reps) != 3 or isr != reps:
                    return False
        return True
    c.wait(grown, "6 partitions with leaders and full ISRs on every broker", timeout=90)
    check(True, "every broker shows 6 led partitions of %s with full ISRs" % g)
    for p in (3, 4, 5):
        acked, failed = produce(c, g, p, "g%d" % p, 5)
        check(len(acked) == 5 and not failed, "acks=all produce to %s-%d" % (g, p))
        low, high, recs = consume_all(c, 1 + p % 3, g, p)
        check(sorted(v for _, v in recs) == sorted(acked), "%s-%d reads back" % (g, p))

    # ---- deletion while a replica broker is down ----
    d = "adm-down"
    check(create_topic(c, 1, d, 2) == [0], "created %s" % d)
    c.wait(lambda: all(len(parts_md(c, i, d)) == 2 for i in ids), "%s in every Metadata" % d)
    acked, _ = produce(c, d, 0, "d", 3)
    check(len(acked) == 3, "records on %s" % d)
    c.wait(lambda: len(topic_dirs(c, 3, d)) == 2, "broker 3 holds %s" % d)
    c.kill(3)
    c.wait_cluster(ids=[1, 2], timeout=90)
    from kafka import KafkaAdminClient as KA
    a = KA(bootstrap_servers=c.bootstrap([1, 2]), request_timeout_ms=30000)
    try:
        r = a.delete_topics([d], timeout_ms=30000)
        check([e for _, e in r.topic_error_codes] == [0], "kafka-python delete_topics(%s)" % d)
    finally:
        a.close()
    c.wait(lambda: gone_everywhere(c, [1, 2], d), "%s gone from the live brokers" % d)
    check(c.zk_get("/brokers/topics/" + d)[0] is not None,
          "%s stays in ZooKeeper while replica broker 3 is down" % d)
    check(len(topic_dirs(c, 3, d)) == 2, "broker 3's directories are still there while it is down")
    c.start(3)
    c.wait_cluster(timeout=90)
    c.wait(lambda: c.zk_get("/brokers/topics/" + d)[0] is None and
           c.zk_get("/admin/delete_topics/" + d)[0] is None,
           "%s removed from ZooKeeper after broker 3 came back" % d, timeout=90)
    c.wait(lambda: not topic_dirs(c, 3, d), "broker 3's %s directories removed" % d, timeout=60)
    c.wait(lambda: gone_everywhere(c, ids, d), "%s gone from every Metadata" % d)
    check(True, "deletion finished after the replica broker came back")


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    # No auto-creation: a client still asking for a deleted topic would bring it back.
    with SluiceCluster(zk_servers=1, brokers=3, session_ms=6000,
                       conf=("auto.create.topics.enable=false",)) as c:
        try:
            run(c)
        except Exception as e:  # noqa: BLE001
            check(False, "unexpected: %r" % (e,))
        if FAILED:
            c.dump_logs(80)
        shutdown(c)
        sanitizer_clean(c)
    print("FAILED: %s" % FAILED if FAILED else "all ok")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
