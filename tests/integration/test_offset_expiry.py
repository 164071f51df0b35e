#!/usr/bin/python3
"""test_offset_expiry.py — committed offsets expire as in Kafka (KIP-211):
offsets.retention.minutes=1, offsets.retention.check.interval.ms=1000.

Three groups on a one-partition topic (kafka-python):
  exp-solo  a standalone commit (no subscription: no protocol type) at T0;
  exp-left  subscribes, commits, leaves (close: LeaveGroup) at T1 >= T0 + 6 s,
            so the group is Empty from T1;
  exp-live  subscribes, commits once and stays a Stable member throughout.
Checks (OffsetFetch through KafkaAdminClient, polled every 0.5 s):
  1. exp-solo's offset is there until at least T0 + 60 s, then -1 (bounded);
  2. exp-left's offset is still there when exp-solo's expired and until at
     least T1 + 60 s (retention counts from when the group became Empty),
     then -1 (bounded);
  3. exp-live's offset never expires (still there at the end, also after a
     broker restart);
  4. the expiry wrote tombstones: __consumer_offsets holds a null-value
     record for exp-solo's offset key and for its group key;
  5. after a restart, the expired offsets stay gone.
About 80 s. Exit 0 pass, 1 fail, 77 when kafka-python or SLUICE_BIN is
missing.
"""
import os
import signal
import struct
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_harness  # noqa: E402

try:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.structs import OffsetAndMetadata
except ImportError as e:  # pragma: no cover
    print("SKIP: kafka-python missing: %s" % e)
    sys.exit(77)

TOPIC = "exp-topic"
TP = TopicPartition(TOPIC, 0)
RETENTION_S = 60
WAIT_S = 20
CK = sluice_harness.Checks(verbose=True)
check = CK.check
BROKER = sluice_harness.Broker(CK, "sl-expiry-", ["offsets.retention.minutes=1",
                                                  "offsets.retention.check.interval.ms=1000",
                                                  "offsets.topic.num.partitions=1",
                                                  "group.initial.rebalance.delay.ms=0"],
                               wait_s=20, fail_sig=signal.SIGKILL)
fail_exit = BROKER.fail_exit
API = (2, 3)


def fetch(admin, group):
    try:
        res = admin.list_consumer_group_offsets(group, partitions=[TP])
    except Exception as e:  # coordinator loading after a restart
        print("OffsetFetch %s: %s" % (group, e))
        return None
    return res[TP].offset if TP in res else -1


def member(bs, group):
    c = KafkaConsumer(bootstrap_servers=bs, group_id=group, enable_auto_commit=False,
                      session_timeout_ms=10000, heartbeat_interval_ms=1000, api_version=API,
                      auto_offset_reset="earliest")
    c.subscribe([TOPIC])
    deadline = time.time() + WAIT_S
    while not c.assignment():
        if time.time() > deadline:
            fail_exit("%s never got a partition" % group)
        c.poll(timeout_ms=200)
    return c


def key_offset(group):
    g, t = group.encode(), TOPIC.encode()
    return struct.pack(">hh", 1, len(g)) + g + struct.pack(">h", len(t)) + t + struct.pack(">i", 0)


def key_group(group):
    g = group.encode()
    return struct.pack(">hh", 2, len(g)) + g


def tombstones(bs):
    """Keys of the null-value records of __consumer_offsets-0."""
    c = KafkaConsumer(bootstrap_servers=bs, enable_auto_commit=False, api_version=API,
                      consumer_timeout_ms=3000)
    tp = TopicPartition("__consumer_offsets", 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out = set()
    for m in c:
        if m.value is None:
            out.add(m.key)
    c.close()
    return out


def main():
    bs = BROKER.start()
    admin = KafkaAdminClient(bootstrap_servers=bs, api_version=API)
    admin.create_topics([NewTopic(TOPIC, 1, 1)])

    # exp-solo: a standalone commit (retried while __consumer_offsets is created)
    solo = KafkaConsumer(bootstrap_servers=bs, group_id="exp-solo", enable_auto_commit=False,
                         api_version=API)
    deadline = time.time() + WAIT_S
    while True:
        t0 = time.time()
        try:
            solo.commit({TP: OffsetAndMetadata(5, "")})
            break
        except Exception as e:
            if time.time() > deadline:
                fail_exit("standalone commit: %s" % e)
            time.sleep(0.3)
    solo.close()
    CK.eq(fetch(admin, "exp-solo"), 5, "exp-solo committed")

    live = member(bs, "exp-live")
    live.commit({TP: OffsetAndMetadata(9, "")})
    left = member(bs, "exp-left")
    left.commit({TP: OffsetAndMetadata(7, "")})
    while time.time() < t0 + 6:
        live.poll(timeout_ms=200)
    t1 = time.time()
    left.close()   # LeaveGroup: Empty from here
    CK.eq(fetch(admin, "exp-left"), 7, "exp-left committed")
    CK.eq(fetch(admin, "exp-live"), 9, "exp-live committed")

    solo_gone = left_gone = None
    early = []
    deadline = t1 + RETENTION_S + 15
    while time.time() < deadline and (solo_gone is None or left_gone is None):
        live.poll(timeout_ms=500)
        now = time.time()
        s, lf = fetch(admin, "exp-solo"), fetch(admin, "exp-left")
        if s == -1 and solo_gone is None:
            solo_gone = now
            check(lf == 7, "exp-left still committed when exp-solo expired (got %r)" % lf)
        if lf == -1 and left_gone is None:
            left_gone = now
        if s == -1 and now < t0 + RETENTION_S:
            early.append("exp-solo at T0+%.1f" % (now - t0))
        if lf == -1 and now < t1 + RETENTION_S:
            early.append("exp-left at T1+%.1f" % (now - t1))
    CK.eq(early, [], "offsets gone before their retention")
    check(solo_gone is not None, "exp-solo expired (%s s after its commit)" %
          ("%.1f" % (solo_gone - t0) if solo_gone else "never"))
    check(left_gone is not None, "exp-left expired (%s s after it became Empty)" %
          ("%.1f" % (left_gone - t1) if left_gone else "never"))
    CK.eq(fetch(admin, "exp-live"), 9, "exp-live (Stable) never expires")

    keys = tombstones(bs)
    check(key_offset("exp-solo") in keys, "offset tombstone for exp-solo written")
    check(key_group("exp-solo") in keys, "group tombstone for exp-solo written")
    check(key_offset("exp-left") in keys, "offset tombstone for exp-left written")
    check(key_offset("exp-live") not in keys, "no tombstone for exp-live")
    check("offset(s) expired" in BROKER.log_text(), "the broker logged the expiry")

    # a restart: expired stays expired, the live group keeps its offset
    admin.close()
    BROKER.stop(signal.SIGTERM)
    bs = BROKER.start()
    admin = KafkaAdminClient(bootstrap_servers=bs, api_version=API)
    got = None
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        live.poll(timeout_ms=200)
        got = (fetch(admin, "exp-solo"), fetch(admin, "exp-left"), fetch(admin, "exp-live"))
        if None not in got:
            break
    CK.eq(got, (-1, -1, 9), "after a restart: exp-solo, exp-left, exp-live")
    live.close()
    admin.close()
    BROKER.stop(signal.SIGTERM)
    BROKER.remove_dir()
    CK.finish()


if __name__ == "__main__":
    main()
