#!/usr/bin/python3
"""test_groups_rdkafka.py — librdkafka (through Debian's
python3-confluent-kafka) against the group coordinator:

  1. cooperative-sticky: consumer A alone owns all 4 partitions; B joins
     and the rebalance is incremental (A is asked to give up exactly the
     2 partitions B then gets, never its whole assignment); B closes
     (LeaveGroup) and A gets those 2 back incrementally.
  2. static membership (group.instance.id): two static members split the
     partitions; one closes (static members send no LeaveGroup) and a new
     consumer with the same instance id starts within the session timeout:
     it gets the same partitions back and the group does not rebalance (no
     new generation reaches Stable in the broker log).

Starts its own broker; bounded waits; exit 0 pass, 1 fail, 77 when the
client library or SLUICE_BIN is missing.
"""
import os
import sys
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_harness  # noqa: E402

try:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
except ImportError as e:  # pragma: no cover
    print("SKIP: confluent-kafka missing: %s" % e)
    sys.exit(77)

PARTS = 4
WAIT_S = 60
CK = sluice_harness.Checks(verbose=True)
check = CK.check
BROKER = sluice_harness.Broker(CK, "sl-groups-rdk-", ["group.initial.rebalance.delay.ms=0", "offsets.topic.replication.factor=1"],
                               wait_s=20, keep_dir_on_fail=True)
fail_exit = BROKER.fail_exit
broker_log = BROKER.log_text
stop_broker = BROKER.stop


class Member:
    """A consumer with its assignment tracked through the rebalance callbacks."""

    def __init__(self, bs, group, topic, **extra):
        conf = {"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "earliest",
                "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
                "enable.auto.commit": True}
        conf.update(extra)
        self.c = Consumer(conf)
        self.incremental = extra.get("partition.assignment.strategy") == "cooperative-sticky"
        self.owned = set()
        self.revoked = []        # each revocation's partition set
        self.assigned = []       # each assignment's partition set
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, c, parts):
        ps = set(p.partition for p in parts)
        self.assigned.append(ps)
        if self.incremental:
            self.owned |= ps
        else:
            self.owned = ps

    def _on_revoke(self, c, parts):
        ps = set(p.partition for p in parts)
        self.revoked.append(ps)
        if self.incremental:
            self.owned -= ps
        else:
            self.owned = set()

    def poll(self):
        self.c.poll(0.05)


def pump(members, cond, what, timeout=WAIT_S):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in members:
            m.poll()
        if cond():
            return True
    if what != "settle":
        print("timeout waiting for %s" % what)
    return False


def stable_lines(group):
    return [l for l in broker_log().splitlines() if "group %s generation" % group in l and
            "stable" in l]


def cooperative(bs):
    topic = "coop"
    a = Member(bs, "gc", topic, **{"partition.assignment.strategy": "cooperative-sticky"})
    check(pump([a], lambda: a.owned == set(range(PARTS)), "A owns all"),
          "cooperative: A alone owns all %d partitions" % PARTS)
    b = Member(bs, "gc", topic, **{"partition.assignment.strategy": "cooperative-sticky"})
    ok = pump([a, b], lambda: len(a.owned) == 2 and len(b.owned) == 2 and
              a.owned | b.owned == set(range(PARTS)), "A and B split")
    check(ok, "cooperative: B joins, A and B own 2 each (A %r, B %r)" % (a.owned, b.owned))
    check(all(len(r) < PARTS for r in a.revoked),
          "cooperative: A was never asked to revoke everything (revocations %r)" % a.revoked)
    given = set().union(*a.revoked) if a.revoked else set()
    check(given == b.owned, "cooperative: A gave up exactly what B got (%r vs %r)"
          % (given, b.owned))
    b_parts = set(b.owned)
    b.c.close()
    ok = pump([a], lambda: a.owned == set(range(PARTS)), "A owns all again")
    check(ok and a.assigned[-1] == b_parts,
          "cooperative: after B leaves A gets B's partitions incrementally (%r)" % a.assigned[-1:])
    a.c.close()


def static_membership(bs):
    topic = "static"
    s1 = Member(bs, "gs", topic, **{"group.instance.id": "s1"})
    s2 = Member(bs, "gs", topic, **{"group.instance.id": "s2"})
    ok = pump([s1, s2], lambda: len(s1.owned) == 2 and len(s2.owned) == 2 and
              s1.owned | s2.owned == set(range(PARTS)), "static split")
    check(ok, "static: two members split the partitions (%r / %r)" % (s1.owned, s2.owned))
    pump([s1, s2], lambda: False, "settle", timeout=1.5)
    before = len(stable_lines("gs"))
    s1_parts = set(s1.owned)
    s2_assigns = len(s2.assigned)
    s1.c.close()           # a static member sends no LeaveGroup
    s1b = Member(bs, "gs", topic, **{"group.instance.id": "s1"})
    ok = pump([s1b, s2], lambda: s1b.owned == s1_parts, "s1 back")
    check(ok, "static: the restarted member gets its partitions back (%r)" % s1b.owned)
    pump([s1b, s2], lambda: False, "settle", timeout=2)
    check(len(stable_lines("gs")) == before,
          "static: no rebalance (stable generations %d -> %d)" % (before, len(stable_lines("gs"))))
    check(len(s2.assigned) == s2_assigns and s2.owned | s1b.owned == set(range(PARTS)),
          "static: the other member kept its assignment untouched")
    s1b.c.close()
    s2.c.close()


def main():
    bs = BROKER.start()
    admin = AdminClient({"bootstrap.servers": bs})
    for f in admin.create_topics([NewTopic("coop", PARTS, 1), NewTopic("static", PARTS, 1)]).values():
        f.result(20)
    p = Producer({"bootstrap.servers": bs})
    for i in range(100):
        p.produce("coop", str(i).encode(), partition=i % PARTS)
        p.produce("static", str(i).encode(), partition=i % PARTS)
    p.flush(20)
    cooperative(bs)
    static_membership(bs)
    rc = stop_broker()
    check(rc == 0, "broker stops cleanly (exit %r)" % rc)
    if CK.failed == 0:
        BROKER.remove_dir()
    else:
        sys.stdout.write("".join(broker_log().splitlines(True)[-30:]))
    CK.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        # an unexpected client error: never leave the broker running
        stop_broker()
        raise
