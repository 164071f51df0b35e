"""cluster_compare.py — acks=all on a 3-broker RF=3 cluster next to acks=1
on a single-node broker, measured in one run on this machine (issue 6's
closing figures). Driven by bench/cluster_compare.sh (which installs and
builds); usable directly:

    python3 bench/cluster_compare.py --build build --out bench/results/DATE \
        [--duration 20] [--warmup 2] [--partitions 3] [--mbps 20] \
        [--shards 2] [--cluster-shards N]

num.shards: the single node runs --shards (2); each cluster broker runs
--cluster-shards, by default 1 on a machine of at most 2 CPUs (3 brokers x
2 shards + ZooKeeper + the client oversubscribed 2 cores: runnable threads
queued behind each other at every replication hop), else --shards.

Cases, each measured by one sluice-bench process (1 KiB messages, 1
producer, 1 consumer, librdkafka, linger.ms=0):
  single  one broker (embedded mode, deploy/config/single-node.properties),
          topic RF 1, acks=1
  cluster 1 ZooKeeper + 3 brokers (tests/cluster/cluster_harness.py),
          topic created beforehand with RF 3 and min.insync.replicas=2,
          acks=all (the consumer sees records once the high watermark
          passes them, so e2e includes replication)
and for each: "max" (as fast as possible: throughput) and, with --mbps N,
an open-loop run at N MB/s (latency not confounded by saturation).

Broker CPU and RSS come from /proc of every broker of the case: CPU
seconds (user+system) over the whole sluice-bench invocation (warm-up and
drain included) summed over the brokers, and the largest VmHWM (peak RSS
since the broker started). ZooKeeper is not counted.

Writes DIR/cluster.md (the Markdown table, also printed) and
DIR/cluster.json. Never judges a number; a case that fails is reported and
left out. Everything started is stopped by PID (the harness also kills its
children if this process dies).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "cluster"))
import cluster_harness  # noqa: E402
import zk_harness  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("cluster_compare: " + msg, file=sys.stderr, flush=True)


# ---- /proc ----
def cpu_seconds(pid):
    """user+system CPU seconds of `pid` (all threads), None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_peak_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


# ---- one sluice-bench run ----
def run_bench(bench, url, pids, name, label, durability, args, work):
    """Runs sluice-bench once; returns its JSON object plus broker CPU/RSS
    and the message counts, or None when it failed."""
    out_json = os.path.join(work, "run-%s.json" % label)
    cmd = [bench, "--system", "kafka", "--url", url, "--durability", durability,
           "--name", name, "--workload", label, "--json", out_json] + args
    log("run %s: %s" % (label, " ".join(cmd)))
    cpu0 = {p: cpu_seconds(p) for p in pids}
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=600)
    wall = time.monotonic() - t0
    cpu1 = {p_: cpu_seconds(p_) for p_ in pids}
    sys.stderr.write(p.stderr[-2000:])
    if p.returncode != 0 or not os.path.exists(out_json):
        log("%s failed (exit %d); left out\n%s" % (label, p.returncode, p.stdout[-2000:]))
        return None
    r = json.load(open(out_json))
    m = re.search(r"produced (\d+), produce errors (\d+), consumed (\d+), missing (\d+)",
                  p.stdout)
    if m:
        r["produced"], r["produce_errors"], r["consumed"], r["missing"] = map(int, m.groups())
    if all(cpu0[x] is not None and cpu1[x] is not None for x in pids):
        r["brokers_cpu_s"] = sum(cpu1[x] - cpu0[x] for x in pids)
        r["brokers_cpu_pct"] = 100.0 * r["brokers_cpu_s"] / wall
    rss = [rss_peak_mb(x) for x in pids]
    r["broker_rss_peak_mb"] = max(x for x in rss if x is not None) if any(rss) else None
    r["bench_wall_s"] = wall
    r["brokers"] = len(pids)
    return r


def workloads(a):
    w = [("max", [])]
    if a.mbps > 0:
        w.append(("%gMBps" % a.mbps, ["--mbps", str(a.mbps)]))
    common = ["--msg-bytes", "1024", "--partitions", str(a.partitions),
              "--warmup", str(a.warmup), "--duration", str(a.duration)]
    return [(lbl, common + x) for lbl, x in w]


# ---- (a) single node, acks=1 ----
def case_single(a, bench, work, results):
    port = zk_harness.free_ports(1)[0]
    ddir = os.path.join(work, "single")
    os.makedirs(ddir)
    cmd = [os.path.join(a.build, "sluice"), "--config",
           os.path.join(SRC, "deploy", "config", "single-node.properties"),
           "--set", "listeners=PLAINTEXT://127.0.0.1:%d" % port, "--set", "log.dirs=" + ddir,
           "--set", "num.partitions=%d" % a.partitions, "--set", "num.shards=%d" % a.shards,
           "--set", "log.level=warn"]
    logf = open(os.path.join(work, "single.log"), "wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=zk_harness._die_with_parent)
    logf.close()
    try:
        if not wait_port(port, proc):
            log("single-node broker did not start; left out")
            return
        for lbl, args in workloads(a):
            name = "cc-single-%s-%d" % (lbl, os.getpid())
            r = run_bench(bench, "127.0.0.1:%d" % port, [proc.pid], name, "single-" + lbl,
                          "acks=1", args, work)
            if r:
                r["case"], r["load"] = "single", lbl
                results.append(r)
    finally:
        stop(proc)


def wait_port(port, proc, timeout=60.0):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


# ---- (b) 3 brokers, RF 3, min.insync 2, acks=all ----
def create_rf3_topic(c, name, partitions, timeout=90.0):
    """CreateTopics RF 3 / min.insync.replicas=2, then waits (bounded) until
    every partition has a leader and an ISR of 3 on every broker's Metadata."""
    from confluent_kafka.admin import AdminClient, NewTopic
    adm = AdminClient({"bootstrap.servers": c.bootstrap(), "socket.timeout.ms": 10000})
    fs = adm.create_topics([NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"})],
                           request_timeout=60)
    for _t, f in fs.items():
        f.result(timeout=70)

    def ready():
        for i in range(1, c.n + 1):
            md = c.metadata(i)
            t = md.topics.get(name)
            if t is None or t.error is not None or len(t.partitions) != partitions:
                return False
            for p in t.partitions.values():
                if p.leader < 0 or len(p.isrs) != 3:
                    return False
        return True
    c.wait(ready, "topic %s: leaders and ISR of 3 everywhere" % name, timeout)


def case_cluster(a, bench, work, results):
    why = zk_harness.zk_available()
    if why:
        log("cluster case skipped: " + why)
        return
    os.environ["SLUICE_BIN"] = os.path.join(a.build, "sluice")
    conf = ["min.insync.replicas=2", "num.partitions=%d" % a.partitions,
            "num.shards=%d" % a.cluster_shards, "unclean.leader.election.enable=false",
            "log.level=warn"]
    c = cluster_harness.SluiceCluster(zk_servers=1, brokers=3, conf=conf,
                                      session_ms=a.session_ms)
    try:
        t0 = time.monotonic()
        c.wait_cluster(timeout=120)
        log("cluster up in %.1f s (%s)" % (time.monotonic() - t0, c.bootstrap()))
        pids = [c.pid(i) for i in range(1, 4)]
        for lbl, args in workloads(a):
            name = "cc-rf3-%s-%d" % (lbl, os.getpid())
            create_rf3_topic(c, name, a.partitions)
            r = run_bench(bench, c.bootstrap(), pids, name, "cluster-" + lbl, "acks=all",
                          args, work)
            if r:
                r["case"], r["load"] = "cluster", lbl
                results.append(r)
    except Exception as e:  # noqa: BLE001 (a benchmark reports, never fails on a case)
        log("cluster case failed: %s" % e)
        c.dump_logs(30)
    finally:
        c.close()


# ---- report ----
def fmt(x, f="%.0f"):
    return "n/a" if x is None else f % x


def report(a, results, out):
    desc = {"single": "single node, RF 1, acks=1",
            "cluster": "3 brokers, RF 3, min.insync 2, acks=all"}
    L = ["# Sluice: 3-broker RF=3 acks=all vs single-node acks=1\n",
         "Run %s on %s (%d CPUs), one run, side by side. 1 KiB messages, %d partitions, "
         "1 producer + 1 consumer (sluice-bench, librdkafka, linger.ms=0, at most 10000 "
         "unacknowledged), %g s measured after %g s warm-up per row. Single node: num.shards=%d; "
         "cluster brokers: num.shards=%d each%s; the cluster has 1 ZooKeeper (zookeeper.session.timeout.ms=%d) and all three brokers, "
         "ZooKeeper and the client share this one machine (loopback, one disk): RF 3 writes every "
         "byte three times to the same disk and sends it twice more over loopback, so this "
         "measures the cost of replication here, not a cluster of separate hosts.\n"
         % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), os.uname().nodename,
            os.cpu_count(), a.partitions, a.duration, a.warmup, a.shards, a.cluster_shards,
            " (fewer than the single node's on purpose: 3 brokers x %d shards + ZooKeeper + the "
            "client would oversubscribe %d CPUs; --cluster-shards)" % (a.shards, os.cpu_count())
            if a.cluster_shards < a.shards else "", a.session_ms),
         "Latency in µs. produce = ack latency (for acks=all: the high watermark passed the "
         "batch); e2e = consumer receive time − intended send time (the consumer only sees "
         "records below the high watermark). max = as fast as possible (throughput; latency "
         "includes queueing); %s = open loop at that rate. Broker CPU = user+system seconds of "
         "all brokers of the case over the whole sluice-bench run ÷ its wall time (100%% = one "
         "core); RSS = the largest broker's peak (VmHWM) so far.\n"
         % ("%gMBps" % a.mbps if a.mbps > 0 else "(no fixed-rate rows)"),
         "| case | load | msgs/s | MB/s | produce p50 | produce p99 | e2e p50 | e2e p99 | e2e max "
         "| produce errors | missing | broker CPU % | peak RSS MB |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        L.append("| %s | %s | %.0f | %.1f | %d | %d | %d | %d | %d | %s | %s | %s | %s |" % (
            desc[r["case"]], r["load"], r["msgs_per_s"], r["mb_per_s"], r["produce_p50_us"],
            r["produce_p99_us"], r["e2e_p50_us"], r["e2e_p99_us"], r["e2e_max_us"],
            fmt(r.get("produce_errors"), "%d"), fmt(r.get("missing"), "%d"),
            fmt(r.get("brokers_cpu_pct")), fmt(r.get("broker_rss_peak_mb"), "%.1f")))
    by = {(r["case"], r["load"]): r for r in results}
    L.append("")
    for lbl, _ in workloads(a):
        s, c = by.get(("single", lbl)), by.get(("cluster", lbl))
        if s and c and s["msgs_per_s"] > 0:
            L.append("- %s: RF 3 acks=all reaches %.0f%% of single-node acks=1 throughput; "
                     "produce p99 %d vs %d µs, e2e p99 %d vs %d µs." % (
                         lbl, 100.0 * c["msgs_per_s"] / s["msgs_per_s"], c["produce_p99_us"],
                         s["produce_p99_us"], c["e2e_p99_us"], s["e2e_p99_us"]))
    text = "\n".join(L) + "\n"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "cluster.md"), "w") as f:
        f.write(text)
    with open(os.path.join(out, "cluster.json"), "w") as f:
        json.dump({"runs": results, "args": vars(a)}, f, indent=1)
    print(text)
    log("wrote %s/cluster.md and cluster.json" % out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--out", default=os.path.join(
        SRC, "bench", "results", datetime.date.today().isoformat()))
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--shards", type=int, default=2, help="num.shards of the single node")
    ap.add_argument("--cluster-shards", type=int, default=0,
                    help="num.shards of each cluster broker (0: 1 on a machine of <= 2 CPUs, "
                    "where 3 brokers x 2 shards + ZooKeeper + the client oversubscribe the "
                    "cores, else --shards)")
    ap.add_argument("--mbps", type=float, default=20,
                    help="also run open loop at this rate (0: max only)")
    ap.add_argument("--session-ms", type=int, default=6000)
    ap.add_argument("--cases", default="single,cluster")
    a = ap.parse_args()
    if a.cluster_shards <= 0:
        a.cluster_shards = 1 if (os.cpu_count() or 1) <= 2 else a.shards
    a.build = os.path.abspath(a.build)
    a.out = os.path.abspath(a.out)
    bench = os.path.join(a.build, "bench", "sluice-bench")
    for p in (bench, os.path.join(a.build, "sluice")):
        if not os.access(p, os.X_OK):
            log("%s missing: build first (bench/cluster_compare.sh does)" % p)
            return 2
    work = tempfile.mkdtemp(prefix="sl-cluster-compare-")
    results = []
    try:
        cases = a.cases.split(",")
        if "single" in cases:
            case_single(a, bench, work, results)
        if "cluster" in cases:
            case_cluster(a, bench, work, results)
        report(a, results, a.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
