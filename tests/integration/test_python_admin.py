#!/usr/bin/python3
"""test_python_admin.py — admin APIs and per-topic configs with Debian's
python3-kafka (kafka-python) and python3-confluent-kafka.

Starts its own broker (a tiny Python twin of lib.sh: free port, temp data
dir, --config, wait for "listening on" + the port, SIGTERM and exit 0 at
the end). Consumers use assign() + seek with no group (FindCoordinator and
the group APIs are not served yet). Every check that fails is reported;
the last line is "N passed, M failed" and the exit status is 1 on any
failure, 77 when a client library is missing.
"""
import os
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_harness  # noqa: E402

try:
    import kafka
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic
    from kafka import errors as kerrors
    import confluent_kafka
    from confluent_kafka import admin as cadmin
except ImportError as e:  # pragma: no cover
    print("SKIP: python client missing: %s" % e)
    sys.exit(77)

WAIT_S = 20
CK = sluice_harness.Checks(verbose=True)
check, eq = CK.check, CK.eq
BROKER = sluice_harness.Broker(CK, "sl-pyadmin-", ["log.retention.check.interval.ms=200"],
                               wait_s=WAIT_S)


def wait_for(fn, what, timeout=WAIT_S):
    """Polls fn() until truthy (bounded); returns its last value."""
    deadline = time.time() + timeout
    v = None
    while time.time() < deadline:
        try:
            v = fn()
        except Exception as e:  # noqa: BLE001 - report the last error
            v = None
            last = e
        if v:
            return v
        time.sleep(0.2)
    print("timeout waiting for %s" % what)
    return v


# ---------------------------------------------------------------- kafka-python


def kp_consume(bs, topic, partition, offset, n, timeout_s=10):
    c = KafkaConsumer(bootstrap_servers=bs, group_id=None, enable_auto_commit=False,
                      consumer_timeout_ms=int(timeout_s * 1000), api_version_auto_timeout_ms=5000)
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    c.seek(tp, offset)
    out = []
    deadline = time.time() + timeout_s
    while len(out) < n and time.time() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            out.extend(recs)
    c.close()
    return out


def kafka_python_part(bs):
    admin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=10000)
    # create, with configs
    admin.create_topics([NewTopic("kp-a", 3, 1, topic_configs={"retention.ms": "3600000",
                                                               "cleanup.policy": "delete"})])
    eq(sorted(admin.list_topics()).count("kp-a"), 1, "kafka-python: kp-a listed")
    try:
        admin.create_topics([NewTopic("kp-a", 1, 1)])
        check(False, "kafka-python: duplicate create raises TopicAlreadyExists")
    except kerrors.TopicAlreadyExistsError:
        check(True, "kafka-python: duplicate create raises TopicAlreadyExists")
    try:
        admin.create_topics([NewTopic("kp-rf", 1, 3)])
        check(False, "kafka-python: replication factor 3 refused")
    except kerrors.InvalidReplicationFactorError:
        check(True, "kafka-python: replication factor 3 refused")
    try:
        admin.create_topics([NewTopic("kp-bad", 1, 1, topic_configs={"no.such.config": "1"})])
        check(False, "kafka-python: unknown config refused")
    except kerrors.InvalidConfigurationError:
        check(True, "kafka-python: unknown config refused")
    try:
        admin.create_topics([NewTopic("bad/name", 1, 1)])
        check(False, "kafka-python: invalid name refused")
    except kerrors.InvalidTopicError:
        check(True, "kafka-python: invalid name refused")
    # describe configs
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-a")])
    entries = {e[0]: e for e in res[0].resources[0][4]}
    eq(entries.get("retention.ms", (None, None))[1], "3600000", "kafka-python: retention.ms value")
    eq(entries.get("retention.ms", [None] * 4)[3], 1, "kafka-python: retention.ms source DYNAMIC_TOPIC")
    eq(entries.get("segment.bytes", (None, None))[1], "1073741824", "kafka-python: segment.bytes default")
    eq(entries.get("segment.bytes", [None] * 4)[3], 5, "kafka-python: segment.bytes source DEFAULT")
    res = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0")])
    bentries = {e[0]: e for e in res[0].resources[0][4]}
    eq(bentries.get("num.partitions", (None, None))[1], "1", "kafka-python: broker num.partitions")
    # create partitions
    admin.create_partitions({"kp-a": NewPartitions(5)})
    md = wait_for(lambda: len(admin.describe_topics(["kp-a"])[0]["partitions"]) == 5,
                  "5 partitions")
    check(md, "kafka-python: create_partitions to 5")
    try:
        admin.create_partitions({"kp-a": NewPartitions(2)})
        check(False, "kafka-python: decreasing partitions refused")
    except kerrors.InvalidPartitionsError:
        check(True, "kafka-python: decreasing partitions refused")
    # produce / consume with assign
    p = KafkaProducer(bootstrap_servers=bs, acks=1)
    for i in range(10):
        p.send("kp-a", key=b"k%d" % i, value=b"v%d" % i, partition=4)
    p.flush(10)
    p.close()
    recs = kp_consume(bs, "kp-a", 4, 0, 10)
    eq([r.value for r in recs], [b"v%d" % i for i in range(10)], "kafka-python: consume assign()")
    # delete topic and recreate
    admin.delete_topics(["kp-a"])
    check(wait_for(lambda: "kp-a" not in admin.list_topics(), "kp-a gone"), "kafka-python: kp-a deleted")
    admin.create_topics([NewTopic("kp-a", 1, 1)])
    recs = kp_consume(bs, "kp-a", 0, 0, 1, timeout_s=2)
    eq(len(recs), 0, "kafka-python: recreated kp-a is empty")
    admin.close()


# ------------------------------------------------- raw requests (kafka-python)
# The Debian clients (kafka-python 2.0.2, confluent-kafka 1.7) have no
# IncrementalAlterConfigs, DeleteRecords or DescribeCluster: those requests
# are built with kafka-python's protocol classes and sent on its connection.

from kafka.protocol.api import Request, Response
from kafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Int64, Schema, String


class IacResponse(Response):
    API_KEY = 44
    API_VERSION = 0
    SCHEMA = Schema(("throttle_time_ms", Int32),
                    ("responses", Array(("error_code", Int16), ("error_message", String("utf-8")),
                                        ("resource_type", Int8), ("resource_name", String("utf-8")))))


class IacRequest(Request):
    API_KEY = 44
    API_VERSION = 0
    RESPONSE_TYPE = IacResponse
    SCHEMA = Schema(("resources", Array(("resource_type", Int8), ("resource_name", String("utf-8")),
                                        ("configs", Array(("name", String("utf-8")),
                                                          ("config_operation", Int8),
                                                          ("value", String("utf-8")))))),
                    ("validate_only", Boolean))


class DrResponse(Response):
    API_KEY = 21
    API_VERSION = 0
    SCHEMA = Schema(("throttle_time_ms", Int32),
                    ("topics", Array(("name", String("utf-8")),
                                     ("partitions", Array(("partition", Int32), ("low_watermark", Int64),
                                                          ("error_code", Int16))))))


class DrRequest(Request):
    API_KEY = 21
    API_VERSION = 0
    RESPONSE_TYPE = DrResponse
    SCHEMA = Schema(("topics", Array(("name", String("utf-8")),
                                     ("partitions", Array(("partition", Int32), ("offset", Int64))))),
                    ("timeout_ms", Int32))


def raw_send(admin, req):
    f = admin._send_request_to_node(admin._client.least_loaded_node(), req)
    admin._wait_for_futures([f])
    return f.value


SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
TOPIC, BROKER_RES = 2, 4


def alter(admin, rtype, name, ops, validate_only=False):
    """ops: [(key, op, value)]. Returns the resource's error code."""
    r = raw_send(admin, IacRequest(resources=[(rtype, name, ops)], validate_only=validate_only))
    return r.responses[0][0]


def delete_records(admin, topic, partition, offset):
    r = raw_send(admin, DrRequest(topics=[(topic, [(partition, offset)])], timeout_ms=10000))
    _, low, err = r.topics[0][1][0]
    return err, low

# ------------------------------------------------------------- confluent-kafka


def ck_result(futures, what):
    """Waits for every future; returns {key: exception or None}."""
    out = {}
    for k, f in futures.items():
        try:
            f.result(timeout=15)
            out[k] = None
        except Exception as e:  # noqa: BLE001
            out[k] = e
    return out


def ck_code(exc):
    if exc is None:
        return None
    if exc.args and isinstance(exc.args[0], confluent_kafka.KafkaError):
        return exc.args[0].code()
    return exc


def ck_produce(bs, topic, values, partition=0, conf=None):
    c = {"bootstrap.servers": bs, "linger.ms": 0}
    c.update(conf or {})
    p = confluent_kafka.Producer(c)
    errs = []
    for v in values:
        p.produce(topic, value=v, partition=partition,
                  on_delivery=lambda err, msg: errs.append(err))
    p.flush(15)
    return errs


def ck_consume(bs, topic, partition, offset, n, timeout_s=10):
    c = confluent_kafka.Consumer({"bootstrap.servers": bs, "group.id": "unused",
                                  "enable.auto.commit": False, "enable.auto.offset.store": False})
    c.assign([confluent_kafka.TopicPartition(topic, partition, offset)])
    out = []
    deadline = time.time() + timeout_s
    while len(out) < n and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            out.append(m)
    c.close()
    return out


def confluent_part(bs):
    a = cadmin.AdminClient({"bootstrap.servers": bs})
    kadmin = KafkaAdminClient(bootstrap_servers=bs, request_timeout_ms=10000)
    KE = confluent_kafka.KafkaError
    r = ck_result(a.create_topics([cadmin.NewTopic("ck-a", 2, 1, config={"max.message.bytes": "200000"}),
                                   cadmin.NewTopic("ck-b", 1, 1)]), "create")
    eq(r, {"ck-a": None, "ck-b": None}, "confluent: create ck-a, ck-b")
    r = ck_result(a.create_topics([cadmin.NewTopic("ck-v", 1, 1)], validate_only=True), "validate")
    eq(ck_code(r["ck-v"]), None, "confluent: validate_only ok")
    md = a.list_topics(timeout=10)
    check("ck-v" not in md.topics, "confluent: validate_only created nothing")
    eq(len(md.topics["ck-a"].partitions), 2, "confluent: ck-a has 2 partitions")
    r = ck_result(a.create_topics([cadmin.NewTopic("ck-x", 1, 1, config={"retention.ms": "abc"})]), "bad")
    eq(ck_code(r["ck-x"]), KE.INVALID_CONFIG, "confluent: bad value INVALID_CONFIG")
    r = ck_result(a.create_topics([cadmin.NewTopic("ck-z", 0, 1)]), "zero")
    eq(ck_code(r["ck-z"]), KE.INVALID_PARTITIONS, "confluent: 0 partitions INVALID_PARTITIONS")
    # describe configs
    res = cadmin.ConfigResource("topic", "ck-a")
    cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
    eq(cfg["max.message.bytes"].value, "200000", "confluent: max.message.bytes value")
    eq(cfg["max.message.bytes"].source, cadmin.CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG,
       "confluent: max.message.bytes source")
    eq(cfg["cleanup.policy"].value, "delete", "confluent: cleanup.policy default")
    eq(cfg["cleanup.policy"].source, cadmin.CONFIG_SOURCE_DEFAULT_CONFIG,
       "confluent: cleanup.policy source DEFAULT_CONFIG")
    eq(cfg["retention.ms"].value, "604800000", "confluent: retention.ms broker default")
    bcfg = list(a.describe_configs([cadmin.ConfigResource("broker", "0")]).values())[0].result(timeout=15)
    eq(bcfg["log.retention.check.interval.ms"].value, "200", "confluent: broker key value")
    eq(bcfg["log.retention.check.interval.ms"].source, cadmin.CONFIG_SOURCE_STATIC_BROKER_CONFIG,
       "confluent: broker key source STATIC_BROKER_CONFIG")
    check(bcfg["log.retention.check.interval.ms"].is_read_only, "confluent: broker key read-only")
    # max.message.bytes takes effect (IncrementalAlterConfigs, raw)
    errs = ck_produce(bs, "ck-a", [b"x" * 150000])
    eq([e is None for e in errs], [True], "confluent: 150 kB message under 200000 accepted")
    eq(alter(kadmin, TOPIC, "ck-a", [("max.message.bytes", SET, "1000")]), 0,
       "raw: alter max.message.bytes")
    errs = ck_produce(bs, "ck-a", [b"y" * 5000], conf={"message.send.max.retries": 0})
    eq([e.code() if e else None for e in errs], [KE.MSG_SIZE_TOO_LARGE],
       "confluent: 5 kB message now MESSAGE_TOO_LARGE")
    cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
    eq(cfg["max.message.bytes"].value, "1000", "confluent: altered value described")
    eq(alter(kadmin, TOPIC, "ck-a", [("retention.ms", SET, "5")], validate_only=True), 0,
       "raw: validate_only alter")
    cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
    eq(cfg["retention.ms"].value, "604800000", "confluent: validate_only changed nothing")
    # APPEND to a list config, DELETE an override
    eq(alter(kadmin, TOPIC, "ck-a", [("cleanup.policy", APPEND, "compact"),
                                     ("max.message.bytes", DELETE, None)]), 0,
       "raw: append + delete")
    cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
    eq(cfg["cleanup.policy"].value, "delete,compact", "confluent: cleanup.policy appended")
    eq(cfg["max.message.bytes"].source, cadmin.CONFIG_SOURCE_DEFAULT_CONFIG,
       "confluent: max.message.bytes back to default")
    eq(alter(kadmin, TOPIC, "ck-a", [("cleanup.policy", SUBTRACT, "delete")]), 0, "raw: subtract")
    cfg = list(a.describe_configs([res]).values())[0].result(timeout=15)
    eq(cfg["cleanup.policy"].value, "compact", "confluent: cleanup.policy subtracted")
    eq(alter(kadmin, TOPIC, "ck-a", [("retention.ms", APPEND, "1")]), KE.INVALID_CONFIG,
       "raw: append to a non-list refused")
    eq(alter(kadmin, TOPIC, "ck-a", [("nope.nope", SET, "1")]), KE.INVALID_CONFIG,
       "raw: unknown key refused")
    eq(alter(kadmin, TOPIC, "ck-none", [("retention.ms", SET, "1")]), KE.UNKNOWN_TOPIC_OR_PART,
       "raw: unknown topic")
    eq(alter(kadmin, BROKER_RES, "0", [("log.retention.ms", SET, "1")]), KE.INVALID_REQUEST,
       "raw: broker alteration refused")
    # LogAppendTime
    eq(alter(kadmin, TOPIC, "ck-b", [("message.timestamp.type", SET, "LogAppendTime")]), 0,
       "raw: LogAppendTime set")
    before = int(time.time() * 1000)
    p = confluent_kafka.Producer({"bootstrap.servers": bs})
    p.produce("ck-b", value=b"old", partition=0, timestamp=1000)
    p.flush(15)
    msgs = ck_consume(bs, "ck-b", 0, 0, 1)
    ok = len(msgs) == 1 and msgs[0].timestamp()[0] == confluent_kafka.TIMESTAMP_LOG_APPEND_TIME \
        and msgs[0].timestamp()[1] >= before - 1000
    check(ok, "confluent: LogAppendTime rewrites the timestamp (%r)" %
          ([m.timestamp() for m in msgs],))
    # list offsets, offsets_for_times, delete records
    ck_produce(bs, "ck-b", [b"m%d" % i for i in range(9)])
    c = confluent_kafka.Consumer({"bootstrap.servers": bs, "group.id": "unused"})
    lo, hi = c.get_watermark_offsets(confluent_kafka.TopicPartition("ck-b", 0), timeout=10)
    eq((lo, hi), (0, 10), "confluent: watermarks")
    t = c.offsets_for_times([confluent_kafka.TopicPartition("ck-b", 0, before - 1000)], timeout=10)
    eq(t[0].offset, 0, "confluent: offsets_for_times")
    c.close()
    eq(delete_records(kadmin, "ck-b", 0, 4), (0, 4), "raw: delete_records low watermark")
    eq(delete_records(kadmin, "ck-b", 0, 100)[0], KE.OFFSET_OUT_OF_RANGE,
       "raw: delete beyond HW refused")
    eq(delete_records(kadmin, "ck-b", 0, 2), (0, 4), "raw: delete below start keeps it")
    c = confluent_kafka.Consumer({"bootstrap.servers": bs, "group.id": "unused"})
    lo, hi = c.get_watermark_offsets(confluent_kafka.TopicPartition("ck-b", 0), timeout=10)
    c.close()
    eq((lo, hi), (4, 10), "confluent: watermarks after delete_records")
    msgs = ck_consume(bs, "ck-b", 0, 4, 6)
    eq([m.offset() for m in msgs], [4, 5, 6, 7, 8, 9], "confluent: consume after delete_records")
    # create partitions
    r = ck_result(a.create_partitions([cadmin.NewPartitions("ck-b", 3)]), "cp")
    eq(r, {"ck-b": None}, "confluent: create_partitions 3")
    r = ck_result(a.create_partitions([cadmin.NewPartitions("ck-b", 3)]), "cp2")
    eq(ck_code(r["ck-b"]), KE.INVALID_PARTITIONS, "confluent: same count INVALID_PARTITIONS")
    errs = ck_produce(bs, "ck-b", [b"p2"], partition=2)
    eq([e is None for e in errs], [True], "confluent: produce to new partition 2")
    # retention: small retention.ms + segment.ms deletes old data
    r = ck_result(a.create_topics([cadmin.NewTopic("ck-ret", 1, 1, config={
        "segment.ms": "200", "retention.ms": "300"})]), "ret")
    eq(r, {"ck-ret": None}, "confluent: create ck-ret")
    ck_produce(bs, "ck-ret", [b"r%d" % i for i in range(5)])

    def start_moved():
        time.sleep(0.3)
        ck_produce(bs, "ck-ret", [b"tick"])   # rolls the old segment
        cc = confluent_kafka.Consumer({"bootstrap.servers": bs, "group.id": "unused"})
        lo2, _ = cc.get_watermark_offsets(confluent_kafka.TopicPartition("ck-ret", 0), timeout=5)
        cc.close()
        return lo2 >= 5
    check(wait_for(start_moved, "retention", timeout=30), "confluent: retention deleted old segments")
    # delete topic, recreate with a new id
    r = ck_result(a.delete_topics(["ck-a"]), "del")
    eq(r, {"ck-a": None}, "confluent: delete ck-a")
    r = ck_result(a.delete_topics(["ck-none"]), "del2")
    eq(ck_code(r["ck-none"]), KE.UNKNOWN_TOPIC_OR_PART, "confluent: delete unknown topic")
    r = ck_result(a.create_topics([cadmin.NewTopic("ck-a", 1, 1)]), "recreate")
    eq(r, {"ck-a": None}, "confluent: recreate ck-a")
    errs = ck_produce(bs, "ck-a", [b"again"])
    eq([e is None for e in errs], [True], "confluent: produce to recreated ck-a")
    msgs = ck_consume(bs, "ck-a", 0, 0, 1)
    eq([m.value() for m in msgs], [b"again"], "confluent: recreated ck-a holds only new data")
    gone = [n for n in os.listdir(BROKER.data) if n.endswith("-delete")]
    eq(gone, [], "no -delete directories left")
    kadmin.close()


def main():
    bs = BROKER.start()
    try:
        for part in (kafka_python_part, confluent_part):
            try:
                part(bs)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                check(False, "%s raised %r" % (part.__name__, e))
    finally:
        rc = BROKER.stop()
    eq(rc, 0, "broker exits 0 on SIGTERM")
    if CK.failed:
        BROKER.show_log()
    BROKER.remove_dir()
    CK.finish()


if __name__ == "__main__":
    main()
