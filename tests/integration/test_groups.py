#!/usr/bin/python3
"""test_groups.py — consumer groups with Debian's python3-kafka
(kafka-python 2.0.2): the group coordinator (FindCoordinator, JoinGroup,
SyncGroup, Heartbeat, LeaveGroup) and committed offsets (OffsetCommit,
OffsetFetch).

Checks:
  1. Three consumers (separate processes) in group "g" on a 6-partition
     topic each get exactly 2 partitions, disjoint, covering all 6.
  2. One of them is killed with SIGKILL (no LeaveGroup): after the session
     timeout the other two own all 6 partitions between them (a group of
     two splits the partitions).
  3. Every produced message (before and after the kill) is consumed by
     group "g" at least once, none skipped.
  4. A second group "g2" gets every message too (publish/subscribe).
  5. The group's committed offsets (OffsetFetch through KafkaAdminClient)
     are at the end of each partition once the survivors are done.
Prints the 3-member rebalance time the broker logged (join to Stable).

Starts its own broker (free port, temp dir). Bounded waits only; exit 0
pass, 1 fail, 77 when kafka-python or SLUICE_BIN is missing.
"""
import os
import signal
import subprocess
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_harness  # noqa: E402

try:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic
except ImportError as e:  # pragma: no cover
    print("SKIP: kafka-python missing: %s" % e)
    sys.exit(77)

TOPIC = "grp-topic"
PARTS = 6
N1 = 300      # messages before the kill
N2 = 300      # after
WAIT_S = 60
SESSION_MS = 6000

CONSUMER = r'''
import sys, time
from kafka import KafkaConsumer
bs, group, topic = sys.argv[1], sys.argv[2], sys.argv[3]
c = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                  enable_auto_commit=True, auto_commit_interval_ms=200,
                  session_timeout_ms=%d, heartbeat_interval_ms=500, max_poll_records=50,
                  api_version_auto_timeout_ms=10000)
last = None
deadline = time.time() + 170
while time.time() < deadline:
    recs = c.poll(timeout_ms=200)
    a = sorted(tp.partition for tp in c.assignment())
    if a != last:
        print("ASSIGN " + ",".join(str(p) for p in a), flush=True)
        last = a
    for tp, ms in recs.items():
        for m in ms:
            print("MSG %%d %%d %%s" %% (tp.partition, m.offset, m.value.decode()), flush=True)
''' % SESSION_MS

CK = sluice_harness.Checks(verbose=True)
check = CK.check
STATE = {"procs": []}


def kill_consumers():
    for p in STATE["procs"]:
        if p.poll() is None:
            p.kill()
            p.wait()


BROKER = sluice_harness.Broker(CK, "sl-groups-", ["group.initial.rebalance.delay.ms=0", "offsets.topic.replication.factor=1"],
                               wait_s=20, on_fail=kill_consumers)
fail_exit = BROKER.fail_exit
broker_log = BROKER.log_text


def cleanup():
    kill_consumers()
    return BROKER.stop()


class Consumer:
    """One consumer process; its ASSIGN/MSG lines collected by a thread."""

    def __init__(self, bs, group):
        self.proc = subprocess.Popen([sys.executable, "-c", CONSUMER, bs, group, TOPIC],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        STATE["procs"].append(self.proc)
        self.assignment = None
        self.values = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            parts = line.split()
            with self.lock:
                if parts and parts[0] == "ASSIGN":
                    self.assignment = [int(p) for p in parts[1].split(",")] if len(parts) > 1 else []
                elif parts and parts[0] == "MSG" and len(parts) == 4:
                    self.values.add(int(parts[3]))

    def assigned(self):
        with self.lock:
            return list(self.assignment) if self.assignment is not None else None

    def seen(self):
        with self.lock:
            return set(self.values)


def wait_for(fn, what, timeout=WAIT_S):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return True
        time.sleep(0.2)
    print("timeout waiting for %s" % what)
    return False


def produce(bs, start, n):
    p = KafkaProducer(bootstrap_servers=bs, api_version_auto_timeout_ms=10000)
    for i in range(start, start + n):
        p.send(TOPIC, value=str(i).encode(), partition=i % PARTS)
    p.flush(30)
    p.close()


def admin_checks(bs, admin):
    """ListGroups, DescribeGroups, DeleteGroups through KafkaAdminClient."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata
    listed = dict(admin.list_consumer_groups())
    check(listed.get("g") == "consumer" and listed.get("g2") == "consumer",
          "ListGroups shows g and g2 as consumer groups: %r" % listed)
    d = admin.describe_consumer_groups(["g"])[0]
    check(d.state == "Stable" and len(d.members) == 2 and d.protocol == "range",
          "DescribeGroups g: Stable, 2 members, range (%s, %d, %s)"
          % (d.state, len(d.members), d.protocol))
    check(all(m.member_assignment is not None for m in d.members),
          "DescribeGroups g: every member has its assignment")
    # an assign-mode consumer commits into an empty group g3
    c = KafkaConsumer(bootstrap_servers=bs, group_id="g3", enable_auto_commit=False,
                      api_version_auto_timeout_ms=10000)
    tp = TopicPartition(TOPIC, 1)
    c.assign([tp])
    c.commit({tp: OffsetAndMetadata(7, "meta")})
    got = c.committed(tp)
    c.close()
    check(got == 7, "a simple commit (generation -1) to an empty group reads back: %r" % got)
    res = dict((g, e) for g, e in admin.delete_consumer_groups(["g3", "g", "nope"]))
    errs = {k: getattr(v, "errno", 0) for k, v in res.items()}
    check(errs == {"g3": 0, "g": 68, "nope": 69},
          "DeleteGroups: g3 deleted, g NON_EMPTY_GROUP (68), nope GROUP_ID_NOT_FOUND (69): %r"
          % errs)
    offs = admin.list_consumer_group_offsets("g3")
    check(len(offs) == 0, "a deleted group has no offsets: %r" % offs)
    check("g3" not in dict(admin.list_consumer_groups()), "a deleted group is not listed")


def main():
    bs = BROKER.start()
    admin = KafkaAdminClient(bootstrap_servers=bs, api_version_auto_timeout_ms=10000)
    admin.create_topics([NewTopic(TOPIC, PARTS, 1)])
    produce(bs, 0, N1)

    cs = [Consumer(bs, "g") for _ in range(3)]

    def three_way():
        a = [c.assigned() for c in cs]
        return all(x is not None and len(x) == 2 for x in a) and \
            sorted(sum(a, [])) == list(range(PARTS))
    if not check(wait_for(three_way, "3 x 2 partitions"),
                 "three consumers get 2 partitions each, disjoint"):
        fail_exit("assignment: %r" % [c.assigned() for c in cs])

    def all_seen(consumers, n):
        s = set()
        for c in consumers:
            s |= c.seen()
        return s >= set(range(n))
    check(wait_for(lambda: all_seen(cs, N1), "first messages"),
          "group g consumes the first %d messages" % N1)

    # kill one member without LeaveGroup
    cs[0].proc.send_signal(signal.SIGKILL)
    cs[0].proc.wait()
    t_kill = time.time()
    produce(bs, N1, N2)
    survivors = cs[1:]

    def two_way():
        a = [c.assigned() for c in survivors]
        return all(x is not None and len(x) > 0 for x in a) and \
            sorted(sum(a, [])) == list(range(PARTS))
    ok = check(wait_for(two_way, "survivors own all 6"),
               "after SIGKILL + session timeout the two survivors own all 6 partitions")
    if ok:
        print("     reassigned %.1f s after the kill (session timeout %d ms)"
              % (time.time() - t_kill, SESSION_MS))
        a = [c.assigned() for c in survivors]
        check(sorted(len(x) for x in a) == [3, 3], "the two survivors split 3 + 3: %r" % a)
    s = set()
    ok = wait_for(lambda: all_seen(cs, N1 + N2), "every message")
    for c in cs:
        s |= c.seen()
    check(ok, "every message consumed at least once, none skipped (%d of %d; missing %r)"
          % (len(s & set(range(N1 + N2))), N1 + N2, sorted(set(range(N1 + N2)) - s)[:10]))

    # a second group gets everything too
    g2 = Consumer(bs, "g2")
    check(wait_for(lambda: all_seen([g2], N1 + N2), "group g2"),
          "a second group receives every message")

    # committed offsets of g reach the end of every partition
    def committed_at_end():
        offs = admin.list_consumer_group_offsets("g")
        total = sum(v.offset for v in offs.values())
        return len(offs) == PARTS and total == N1 + N2
    check(wait_for(committed_at_end, "committed offsets"),
          "group g's committed offsets are at the end of each partition")

    admin_checks(bs, admin)

    times = [line for line in broker_log().splitlines() if "3 member(s)" in line and
             "rebalance took" in line]
    if times:
        print("     broker: " + times[0].split("] ", 1)[-1])
    admin.close()
    rc = cleanup()
    check(rc == 0, "broker stops cleanly (exit %r)" % rc)
    if CK.failed == 0:
        BROKER.remove_dir()
    CK.finish()


if __name__ == "__main__":
    try:
        main()
    except Exception:
        # an unexpected client error: never leave the broker running
        cleanup()
        raise
