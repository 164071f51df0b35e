#!/usr/bin/python3
"""test_group_restore.py — a Stable consumer group survives a broker crash:
the coordinator restores its members from GroupMetadataValue.

Two kafka-python consumers (separate processes; session.timeout.ms 10000,
heartbeats every 1 s, auto-commit every 200 ms) form group "gr" on a
4-partition topic and consume N1 messages; once their offsets are committed
at the end of every partition the broker is killed with SIGKILL and
restarted at once (well within the session timeout). Checks:
  1. the broker logs the group restored with its generation and 2 members;
  2. no new generation is logged for "gr" after the restart (the members
     go on heartbeating in their generation: no rebalance);
  3. DescribeGroups after the restart: Stable, the same two member ids and
     the same assignments as before;
  4. the consumers keep consuming: every one of N2 messages produced after
     the restart is consumed, and no message is consumed twice (all of N1
     was committed before the kill);
  5. the consumers' generation (kafka-python's view) did not change.
Bounded (about 30 s). Exit 0 pass, 1 fail, 77 when kafka-python or
SLUICE_BIN is missing.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluice_harness  # noqa: E402

try:
    from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
except ImportError as e:  # pragma: no cover
    print("SKIP: kafka-python missing: %s" % e)
    sys.exit(77)

TOPIC = "gr-topic"
GROUP = "gr"
PARTS = 4
N1 = 200
N2 = 200
WAIT_S = 25

CONSUMER = r'''
import sys, time
from kafka import KafkaConsumer
bs, group, topic = sys.argv[1], sys.argv[2], sys.argv[3]
c = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                  enable_auto_commit=True, auto_commit_interval_ms=200,
                  session_timeout_ms=10000, heartbeat_interval_ms=1000, max_poll_records=50,
                  reconnect_backoff_max_ms=200, api_version=(2, 3))
last = None
deadline = time.time() + 90
while time.time() < deadline:
    recs = c.poll(timeout_ms=200)
    try:
        gen = c._coordinator._generation.generation_id
    except Exception:
        gen = -2
    a = (gen, sorted(tp.partition for tp in c.assignment()))
    if a != last:
        print("ASSIGN %d %s" % (a[0], ",".join(str(p) for p in a[1])), flush=True)
        last = a
    for tp, ms in recs.items():
        for m in ms:
            print("MSG %d %d" % (tp.partition, m.offset), flush=True)
'''

CK = sluice_harness.Checks(verbose=True)
check = CK.check
STATE = {"procs": [], "lines": [[], []]}


def kill_consumers():
    for p in STATE["procs"]:
        if p.poll() is None:
            p.kill()
            p.wait()


BROKER = sluice_harness.Broker(CK, "sl-grestore-", ["group.initial.rebalance.delay.ms=0",
                                                    "offsets.topic.num.partitions=4"],
                               wait_s=20, fail_sig=signal.SIGKILL, on_fail=kill_consumers)
fail_exit = BROKER.fail_exit


def reader(i, proc):
    for ln in proc.stdout:
        STATE["lines"][i].append(ln.strip())


def msgs():
    out = []
    for i in range(2):
        for ln in list(STATE["lines"][i]):
            if ln.startswith("MSG "):
                _, p, o = ln.split()
                out.append((int(p), int(o)))
    return out


def assigns(i):
    return [ln for ln in list(STATE["lines"][i]) if ln.startswith("ASSIGN ")]


def wait_for(cond, what, timeout=WAIT_S):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    fail_exit("timed out waiting for " + what)


def committed(admin):
    res = admin.list_consumer_group_offsets(GROUP, partitions=[TopicPartition(TOPIC, p)
                                                              for p in range(PARTS)])
    return {tp.partition: om.offset for tp, om in res.items()}


def describe(admin):
    d = admin.describe_consumer_groups([GROUP])[0]
    return d.state, {m.member_id: bytes(m.member_assignment.encode()) if hasattr(
        m.member_assignment, "encode") else repr(m.member_assignment) for m in d.members}


def produce(bs, start, n):
    p = KafkaProducer(bootstrap_servers=bs, api_version=(2, 3))
    for i in range(start, start + n):
        p.send(TOPIC, value=b"m%d" % i, partition=i % PARTS)
    p.flush(15)
    p.close()


def main():
    bs = BROKER.start()
    admin = KafkaAdminClient(bootstrap_servers=bs, api_version=(2, 3))
    admin.create_topics([NewTopic(TOPIC, PARTS, 1)])
    produce(bs, 0, N1)
    for i in range(2):
        p = subprocess.Popen([sys.executable, "-c", CONSUMER, bs, GROUP, TOPIC],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        STATE["procs"].append(p)
        threading.Thread(target=reader, args=(i, p), daemon=True).start()
    end1 = {p: N1 // PARTS for p in range(PARTS)}

    def stable_and_done():
        a0, a1 = assigns(0), assigns(1)
        if not a0 or not a1:
            return False
        p0 = a0[-1].split()[2] if len(a0[-1].split()) > 2 else ""
        p1 = a1[-1].split()[2] if len(a1[-1].split()) > 2 else ""
        parts = [x for x in (p0 + "," + p1).split(",") if x]
        if sorted(parts) != [str(p) for p in range(PARTS)]:
            return False
        try:
            return committed(admin) == end1
        except Exception:
            return False
    wait_for(stable_and_done, "a Stable group of 2 with N1 committed")
    state0, members0 = describe(admin)
    CK.eq(state0, "Stable", "group state before the crash")
    CK.eq(len(members0), 2, "members before the crash")
    gens = re.findall(r"group %s generation (\d+) stable" % GROUP, BROKER.log_text())
    gen0 = int(gens[-1])
    assign0 = [assigns(i)[-1] for i in range(2)]
    admin.close()

    # crash and restart at once
    mark = len(BROKER.log_text())
    BROKER.stop(signal.SIGKILL)
    bs = BROKER.start()
    admin = KafkaAdminClient(bootstrap_servers=bs, api_version=(2, 3))
    produce(bs, N1, N2)
    want = set((p, o) for p in range(PARTS) for o in range((N1 + N2) // PARTS))
    wait_for(lambda: want <= set(msgs()), "every message consumed after the restart")
    end2 = {p: (N1 + N2) // PARTS for p in range(PARTS)}
    wait_for(lambda: committed(admin) == end2, "offsets committed after the restart")
    after = BROKER.log_text()[mark:]
    check(re.search(r"group %s restored: generation %d, 2 member\(s\)" % (GROUP, gen0), after)
          is not None, "the broker restored group %s generation %d with 2 members" % (GROUP, gen0))
    check(re.search(r"group %s generation \d+ stable" % GROUP, after) is None,
          "no new generation after the restart")
    state1, members1 = describe(admin)
    CK.eq(state1, "Stable", "group state after the restart")
    CK.eq(sorted(members1), sorted(members0), "member ids after the restart")
    CK.eq(members1, members0, "assignments after the restart")
    CK.eq([assigns(i)[-1] for i in range(2)], assign0, "consumers' generation and partitions")
    got = msgs()
    dups = len(got) - len(set(got))
    CK.eq(dups, 0, "messages consumed twice")
    admin.close()
    kill_consumers()
    BROKER.stop(signal.SIGTERM)
    BROKER.remove_dir()
    CK.finish()


if __name__ == "__main__":
    main()
