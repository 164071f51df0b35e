"""test_cluster_ack_latency.py — 1 ZooKeeper server + 3 Sluice brokers,
topic RF 3, min.insync.replicas 2, replica.fetch.wait.max.ms = 60000: an
idle follower's Fetch parks on the leader for up to a minute, so every
acks=all produce depends on the leader's append answering that parked
Fetch (partition hooks on_end -> the fetch waiter), on the follower sending
its next Fetch as soon as its append is done, and on that Fetch moving the
high watermark and completing the acks=all waiter. If any of these waited
for the Fetch's max wait instead (a missed wake-up, a follower holding its
next Fetch, a waiter completed only by a later Fetch), each produce would
take about 60 s.

Checks, each bounded by a deadline far below 60 s (a liveness bound, not a
performance figure): SEQ acks=all produces one at a time, then PIPE sent at
once, over all partitions (so all three leaders), are all acknowledged
without error, and afterwards every follower's log holds them (the next
produce is answered only after both followers fetched the one before, so
the replicas' log end offsets equal the leader's). Exit 77 when ZooKeeper
is missing."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zk_harness  # noqa: E402
from cluster_harness import SluiceCluster  # noqa: E402
from fault_checks import FAILED, check, create_topic, parts_md  # noqa: E402

TOPIC = "ack-lat"
PARTS = 3
SEQ = 12
PIPE = 300
WAIT_MS = 60000
# Each phase must end well before one fetch max wait (60 s) elapses.
PHASE_S = 25.0


def producer(c):
    from confluent_kafka import Producer
    return Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "linger.ms": 0,
                     "message.send.max.retries": 0, "enable.idempotence": False,
                     "message.timeout.ms": int(PHASE_S * 1000),
                     "request.timeout.ms": int(PHASE_S * 1000)})


def run(c):
    c.wait_cluster(timeout=120)
    errs = create_topic(c, 1, TOPIC, PARTS)
    check(all(e == 0 for e in errs), "topic created (RF 3, min.insync 2): %s" % errs)
    c.wait(lambda: (lambda m: len(m) == PARTS and
                    all(l > 0 and isr == [1, 2, 3] for l, _r, isr in m.values()))(
                        parts_md(c, 1, TOPIC)),
           "every partition led with ISR [1, 2, 3]", timeout=120)
    # Let the followers' first fetches reach the end and park (no data).
    time.sleep(1.0)
    p = producer(c)
    acked, failed = [], []

    def cb(err, msg):
        (failed if err is not None else acked).append(msg.value())

    # One at a time: each waits for both followers' parked fetches to be
    # woken by the append and for their next fetches to move the HW.
    t0 = time.monotonic()
    for k in range(SEQ):
        p.produce(TOPIC, value=b"s%d" % k, partition=k % PARTS, on_delivery=cb)
        left = p.flush(PHASE_S)
        if left != 0 or time.monotonic() - t0 > PHASE_S:
            break
    check(len(acked) == SEQ and not failed,
          "%d sequential acks=all produces acknowledged within %.0f s (fetch max wait %d ms): "
          "%d acked, %d failed" % (SEQ, PHASE_S, WAIT_MS, len(acked), len(failed)))

    # Pipelined: all in flight at once.
    acked.clear()
    failed.clear()
    for k in range(PIPE):
        p.produce(TOPIC, value=b"p%d" % k, partition=k % PARTS, on_delivery=cb)
        p.poll(0)
    left = p.flush(PHASE_S)
    check(left == 0 and len(acked) == PIPE and not failed,
          "%d pipelined acks=all produces acknowledged within %.0f s: %d acked, %d failed, "
          "%d left" % (PIPE, PHASE_S, len(acked), len(failed), left))

    # The followers hold every acknowledged record: the leader's HW is its
    # log end, which only the followers' fetches could have moved there.
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "ack-lat-check",
                     "enable.auto.commit": False})
    try:
        want = SEQ // PARTS + PIPE // PARTS
        for part in range(PARTS):
            lo, hi = cons.get_watermark_offsets(TopicPartition(TOPIC, part), timeout=10)
            check(hi == want, "partition %d: high watermark %d == %d records produced"
                  % (part, hi, want))
    finally:
        cons.close()


def main():
    why = zk_harness.zk_available()
    if why:
        print("skip:", why)
        return 77
    conf = ["min.insync.replicas=2", "replica.fetch.wait.max.ms=%d" % WAIT_MS,
            "replica.lag.time.max.ms=%d" % (WAIT_MS * 2),
            "replica.socket.timeout.ms=%d" % (WAIT_MS * 2)]
    with SluiceCluster(zk_servers=1, brokers=3, session_ms=6000, conf=conf) as c:
        try:
            run(c)
        except Exception as e:  # noqa: BLE001 (reported as a failure with the logs)
            check(False, "exception: %r" % e)
        if FAILED:
            c.dump_logs(40)
    print("FAILED: %s" % FAILED if FAILED else "all checks passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
