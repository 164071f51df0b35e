#!/usr/bin/python3
"""compact_latency.py — produce latency on a shard while a big compaction runs.

Usage: /usr/bin/python3 compact_latency.py SLUICE_BIN [SLUICE_BIN2 ...] [--mib N] [--seconds S]

For each broker binary: starts it with num.shards=1 (every partition on the
same shard) and log.cleaner.enable=false, creates topic "big" (2 partitions,
cleanup.policy=compact, 8 MiB segments, min.cleanable.dirty.ratio=0.01),
fills big-0 with N MiB of 1 KiB values over 4096 keys, measures the
baseline: keyed 10-byte records to big-1 at 500/s (acks=1, linger 0) for
S/3 seconds; then restarts it with the cleaner on and measures the same for
S seconds while big-0 is compacted (the first check is 2 s after the start;
samples of the first 1.5 s of each phase, connection set-up, are dropped). Prints p50/p99/max of the delivery
latency (produce() -> delivery report) and the broker's compaction log
lines (their timestamps give the compaction time). Not a test: no assertions.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka import admin as cadmin


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def start(binary, d, port, cleaner):
    conf = os.path.join(d, "server.properties")
    with open(conf, "w") as f:
        f.write("listeners=PLAINTEXT://127.0.0.1:%d\nlog.dirs=%s\nnum.shards=1\n"
                "log.level=info\nlog.retention.check.interval.ms=2000\n"
                "log.cleaner.enable=%s\n" % (port, os.path.join(d, "data"),
                                             "true" if cleaner else "false"))
    logf = open(os.path.join(d, "broker.log"), "a")
    proc = subprocess.Popen([binary, "--config", conf], stdout=logf, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, logf


def stop(proc, logf):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    logf.close()


def measure(bs, seconds, rate, warm=1.5):
    """Latencies (ms) of keyed 10-byte records to big-1 at `rate` per second;
    those sent in the first `warm` seconds (connection set-up) are dropped."""
    lp = Producer({"bootstrap.servers": bs, "linger.ms": 0, "acks": 1})
    out = []
    t_warm = time.time() + warm
    t_end = time.time() + warm + seconds
    nxt = time.time()
    i = 0
    while time.time() < t_end:
        now = time.time()
        if now < nxt:
            lp.poll(min(nxt - now, 0.001))
            continue
        nxt += 1.0 / rate
        t0 = time.perf_counter()
        sink = out if now >= t_warm else []
        lp.produce("big", key=b"l%d" % (i % 100), value=b"x%09d" % i, partition=1,
                   on_delivery=lambda e, m, t0=t0, sink=sink: sink.append(
                       (time.perf_counter() - t0) * 1000.0))
        i += 1
        lp.poll(0)
    lp.flush(30)
    return out


def run(binary, mib, seconds, rate=500):
    """Fill big-0 with the cleaner off; baseline latency to big-1 (cleaner
    off); restart with the cleaner on and measure while it compacts big-0."""
    d = tempfile.mkdtemp(prefix="sl-clat-")
    os.mkdir(os.path.join(d, "data"))
    port = free_port()
    bs = "127.0.0.1:%d" % port
    proc = None
    try:
        proc, logf = start(binary, d, port, False)
        a = cadmin.AdminClient({"bootstrap.servers": bs})
        fs = a.create_topics([cadmin.NewTopic("big", 2, 1, config={
            "cleanup.policy": "compact", "segment.bytes": str(8 << 20),
            "min.cleanable.dirty.ratio": "0.01"})])
        for f in fs.values():
            f.result(20)
        p = Producer({"bootstrap.servers": bs, "linger.ms": 5, "acks": 1,
                      "queue.buffering.max.messages": 200000})
        val = b"v" * 1000
        n = (mib << 20) // 1040
        for i in range(n):
            while True:
                try:
                    p.produce("big", key=b"k%05d" % (i % 4096), value=val, partition=0)
                    break
                except BufferError:
                    p.poll(0.01)
            if i % 1000 == 0:
                p.poll(0)
        p.flush(60)
        time.sleep(2.0)
        base = measure(bs, seconds / 3.0, rate)
        stop(proc, logf)
        proc = None
        mark = os.path.getsize(os.path.join(d, "broker.log"))
        t0 = time.time()
        proc, logf = start(binary, d, port, True)
        during = measure(bs, seconds, rate)
        with open(os.path.join(d, "broker.log")) as f:
            f.seek(mark)
            text = f.read()
        lines = [ln for ln in text.splitlines() if "records removed" in ln]
        return base, during, lines
    finally:
        if proc is not None:
            stop(proc, logf)
        shutil.rmtree(d, ignore_errors=True)


def main():
    args = sys.argv[1:]
    mib, seconds, bins = 256, 30.0, []
    while args:
        a = args.pop(0)
        if a == "--mib":
            mib = int(args.pop(0))
        elif a == "--seconds":
            seconds = float(args.pop(0))
        else:
            bins.append(a)
    for b in bins:
        base, during, lines = run(b, mib, seconds)
        print("%s: %d MiB dirty, %d compaction runs:" % (b, mib, len(lines)))
        for ln in lines:
            print("    " + ln[:24] + " ... " + ln[ln.index("bytes") - 24:][:90])
        for name, xs in (("baseline", base), ("compaction", during)):
            print("  %-10s n=%5d p50=%7.2f ms p99=%8.2f ms max=%8.2f ms"
                  % (name, len(xs), pct(xs, 0.5), pct(xs, 0.99), max(xs) if xs else 0.0))


if __name__ == "__main__":
    main()
