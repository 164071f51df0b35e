#!/usr/bin/env bash
# compare.sh — Sluice side by side with NATS JetStream and Redis Streams,
# against this machine's limits, in one run.
#
# Installs what is missing (deploy/setup.sh), builds sluice and sluice-bench
# if needed, measures the limits (bench/limits.sh), starts Sluice,
# nats-server (JetStream, file store) and redis-server (appendonly) on
# loopback with throwaway data directories, runs the same workloads against
# each with sluice-bench, stops them by PID, and writes into --out DIR:
#   results.json  {"runs": [one sluice-bench object per system x workload],
#                  "limits": {...limits.sh...}, "durability": {system: text}}
#   results.md    the table (durability of each system, throughput as a
#                 fraction of the relevant ceiling, latency percentiles)
#   latency.png   e2e latency by percentile, every system, every workload
# Workloads: 1 KiB at max throughput, 1 KiB at a fixed 50 MB/s, 100 B at max.
# Benchmarks never fail on a number: a run that fails is reported and skipped.
#
# usage: compare.sh [--out DIR] [--duration S] [--quick] [--build DIR]
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$SRC/build/bench/compare"
DURATION=30
WARMUP=3
QUICK=0
BUILD="$SRC/build"
while [[ $# -gt 0 ]]; do
	case "$1" in
	--out) OUT="$2"; shift 2 ;;
	--duration) DURATION="$2"; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--build) BUILD="$2"; shift 2 ;;
	*) echo "usage: compare.sh [--out DIR] [--duration S] [--quick] [--build DIR]" >&2; exit 2 ;;
	esac
done
if [[ $QUICK == 1 ]]; then DURATION=3; WARMUP=1; fi
PARTITIONS=2

bash "$SRC/deploy/setup.sh" || echo "compare: deploy/setup.sh failed; continuing with what is installed" >&2
if [[ ! -x "$BUILD/sluice" || ! -x "$BUILD/bench/sluice-bench" ]]; then
	[[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S "$SRC" -B "$BUILD" --preset release >/dev/null
	cmake --build "$BUILD" -j "$(nproc)" --target sluice sluice-bench
fi
BENCH="$BUILD/bench/sluice-bench"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d /tmp/sluice-compare-XXXXXX)"
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {   # port pid: bounded wait until something accepts
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$2" 2>/dev/null || { echo "compare: server pid $2 died" >&2; return 1; }
		timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
stop_pid() {
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

echo "== limits" >&2
LIMITS_ARGS=(--dir "$WORK/limits" --out "$WORK/limits.json")
[[ $QUICK == 1 ]] && LIMITS_ARGS+=(--quick)
bash "$SRC/bench/limits.sh" "${LIMITS_ARGS[@]}" >&2 || echo '{}' >"$WORK/limits.json"

WORKLOADS=(
	"1KiB-max|--msg-bytes 1024"
	"1KiB-50MBps|--msg-bytes 1024 --mbps 50"
	"100B-max|--msg-bytes 100"
)
SLUICE_DUR="acks=all, 1 replica, fdatasync every 1 s (log.flush.interval.ms=1000)"
NATS_DUR="JetStream file storage, 1 replica, server's default sync"
REDIS_DUR="appendonly yes, appendfsync everysec"

# run_system NAME URL PID: every workload against one running server
run_system() {
	local sys="$1" url="$2" pid="$3" w label args
	for w in "${WORKLOADS[@]}"; do
		label="${w%%|*}"
		args="${w#*|}"
		echo "== $sys $label" >&2
		# shellcheck disable=SC2086
		"$BENCH" --system "$sys" --url "$url" --server-pid "$pid" $args \
			--partitions "$PARTITIONS" --warmup "$WARMUP" --duration "$DURATION" \
			--workload "$label" --json "$WORK/run-$sys-$label.json" \
			--curve "$WORK/curve-$sys-$label.dat" ||
			echo "compare: $sys $label failed; left out" >&2
	done
}

# Sluice
port="$(free_port)"
mkdir -p "$WORK/sluice"
"$BUILD/sluice" --config "$SRC/deploy/config/single-node.properties" \
	--set "listeners=PLAINTEXT://127.0.0.1:$port" --set "log.dirs=$WORK/sluice" \
	--set "num.partitions=$PARTITIONS" --set log.flush.interval.ms=1000 \
	--set log.level=warn >"$WORK/sluice.log" 2>&1 &
pid=$!
PIDS+=("$pid")
if wait_port "$port" "$pid"; then run_system kafka "127.0.0.1:$port" "$pid"; fi
stop_pid "$pid"

# NATS JetStream
port="$(free_port)"
mkdir -p "$WORK/nats"
nats-server -a 127.0.0.1 -p "$port" -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
pid=$!
PIDS+=("$pid")
if wait_port "$port" "$pid"; then run_system jetstream "nats://127.0.0.1:$port" "$pid"; fi
stop_pid "$pid"

# Redis Streams
port="$(free_port)"
mkdir -p "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$port" --dir "$WORK/redis" --appendonly yes \
	--appendfsync everysec --save "" --daemonize no >"$WORK/redis.log" 2>&1 &
pid=$!
PIDS+=("$pid")
if wait_port "$port" "$pid"; then run_system redis "127.0.0.1:$port" "$pid"; fi
stop_pid "$pid"

echo "== report" >&2
python3 - "$WORK" "$OUT" "$DURATION" "$SLUICE_DUR" "$NATS_DUR" "$REDIS_DUR" <<'PY'
import glob, json, os, sys
work, out, duration = sys.argv[1], sys.argv[2], sys.argv[3]
dur = {"kafka": sys.argv[4], "jetstream": sys.argv[5], "redis": sys.argv[6]}
names = {"kafka": "Sluice (kafka)", "jetstream": "NATS JetStream", "redis": "Redis Streams"}
limits = json.load(open(os.path.join(work, "limits.json")))
runs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(work, "run-*.json")))]
order = {"kafka": 0, "jetstream": 1, "redis": 2}
wl_order = {"1KiB-max": 0, "1KiB-50MBps": 1, "100B-max": 2}
runs.sort(key=lambda r: (wl_order.get(r["workload"], 9), order.get(r["system"], 9)))
json.dump({"runs": runs, "limits": limits, "durability": dur}, open(os.path.join(out, "results.json"), "w"), indent=1)

tcp, disk = limits.get("loopback_tcp_mb_s"), limits.get("disk_seq_write_mb_s")
ceiling = min(x for x in (tcp, disk) if x) if (tcp or disk) else None
def f(x, fmt="%.0f"):
    return "n/a" if x is None else fmt % x
L = []
L.append("# Sluice vs NATS JetStream vs Redis Streams\n")
L.append("Duration %s s per run (after warm-up), %s partitions/streams/subjects, 1 producer, 1 consumer, "
         "all on loopback on this machine. MB = 10^6 bytes. Latency in µs; e2e = consumer receive time "
         "minus intended send time (open loop at 50 MB/s: no coordinated omission).\n" % (duration, "2"))
L.append("## Durability\n")
for s in ("kafka", "jetstream", "redis"):
    L.append("- **%s**: %s" % (names[s], dur[s]))
L.append("")
L.append("## Client settings (same sluice-bench process for every system)\n")
L.append("- producer: 1 thread, open loop at the target rate (sleeps to each send time, 10 µs timer slack, "
         "never spins) or as fast as possible; at most 10000 unacknowledged messages")
L.append("- **%s**: librdkafka %s, acks=all, linger.ms=0, idempotence off; consumer assign() from the "
         "beginning, fetch.wait.max.ms=100, fetch.min.bytes=1 (default)" % (names["kafka"], "2.0"))
L.append("- **%s**: libnats js_PublishAsync (MaxPending 10000), push consumer" % names["jetstream"])
L.append("- **%s**: hiredis, pipelined XADD MAXLEN ~ 200000 (window 4096 commands), XREAD BLOCK" % names["redis"])
L.append("")
L.append("## Limits of this machine\n")
L.append("| loopback TCP MB/s | seq write MB/s (buffered) | seq write MB/s (fdatasync each 64 KiB) | fdatasync 4 KiB p50 / p99 µs | memcpy GB/s |")
L.append("|---|---|---|---|---|")
L.append("| %s | %s | %s | %s / %s | %s |" % (f(tcp), f(disk), f(limits.get("disk_seq_write_fdatasync_mb_s")),
         f(limits.get("fdatasync_4k_p50_us")), f(limits.get("fdatasync_4k_p99_us")), f(limits.get("memcpy_gb_s"), "%.2f")))
L.append("\nRelevant ceiling for a broker's throughput: min(loopback TCP, buffered sequential write) = %s MB/s "
         "(every byte crosses the socket in and is written to the log).\n" % f(ceiling))
L.append("## Results\n")
L.append("| workload | system | durability | msgs/s | MB/s | of ceiling | produce p50 / p99 | e2e p50 | p90 | p99 | p99.9 | p99.99 | max | server CPU s | peak RSS MB |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    frac = "%.1f%%" % (100.0 * r["mb_per_s"] / ceiling) if ceiling else "n/a"
    L.append("| %s | %s | %s | %.0f | %.1f | %s | %d / %d | %d | %d | %d | %d | %d | %d | %s | %s |" % (
        r["workload"], names.get(r["system"], r["system"]), dur.get(r["system"], "?"), r["msgs_per_s"], r["mb_per_s"], frac,
        r["produce_p50_us"], r["produce_p99_us"], r["e2e_p50_us"], r["e2e_p90_us"], r["e2e_p99_us"],
        r["e2e_p999_us"], r["e2e_p9999_us"], r["e2e_max_us"], f(r["server_cpu_s"], "%.2f"), f(r["server_rss_peak_mb"], "%.1f")))
L.append("\n## Sluice relative to its peers\n")
by = {(r["system"], r["workload"]): r for r in runs}
for wl in wl_order:
    k = by.get(("kafka", wl))
    if not k:
        continue
    parts = []
    for s in ("jetstream", "redis"):
        p = by.get((s, wl))
        if p and p["msgs_per_s"] > 0:
            parts.append("%.2f× %s throughput, e2e p99 %d vs %d µs" % (k["msgs_per_s"] / p["msgs_per_s"], names[s], k["e2e_p99_us"], p["e2e_p99_us"]))
    L.append("- %s: %s" % (wl, "; ".join(parts) if parts else "no peer results"))
L.append("\nPlot: latency.png (e2e latency by percentile, every system and workload).")
open(os.path.join(out, "results.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY

# latency.png: every curve on one chart
plot=""
for c in "$WORK"/curve-*.dat; do
	[[ -f "$c" ]] || continue
	t="$(basename "$c" .dat)"
	t="${t#curve-}"
	t="${t/#kafka-/sluice-}"
	plot+="${plot:+, }'$c' using 2:3 with linespoints title '${t}'"
done
if [[ -n "$plot" ]] && command -v gnuplot >/dev/null; then
	gnuplot -e "set terminal png size 1100,700; set output '$OUT/latency.png'; \
set logscale x; set logscale y; set grid; set key outside right top; \
set title 'end-to-end latency by percentile'; set xlabel 'percentile'; set ylabel 'latency (us)'; \
set xtics ('p50' 2, 'p90' 10, 'p99' 100, 'p99.9' 1000, 'p99.99' 10000, 'p99.999' 100000); \
plot $plot" || echo "compare: gnuplot failed; no latency.png" >&2
fi
echo "compare: wrote $OUT/results.json $OUT/results.md $OUT/latency.png" >&2
