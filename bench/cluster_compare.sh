#!/usr/bin/env bash
# cluster_compare.sh — acks=all produce on a 3-broker cluster (1 ZooKeeper,
# topic RF 3, min.insync.replicas=2) next to acks=1 on a single-node broker,
# measured side by side in one run on this machine (issue 6's closing
# figures): throughput (msgs/s, MB/s), produce and end-to-end latency
# p50/p99, broker CPU and peak RSS, 1 KiB messages, as fast as possible and
# open loop at --mbps.
#
# Installs what is missing (deploy/setup.sh), builds sluice and sluice-bench
# if needed, then runs bench/cluster_compare.py, which starts and stops
# everything by PID on free loopback ports with throwaway data directories
# (the cluster through tests/cluster/cluster_harness.py) and writes
#   DIR/cluster.md    the Markdown table (also printed)
#   DIR/cluster.json  one sluice-bench object per row + broker CPU/RSS
# Benchmarks never fail on a number: a case that fails is reported and
# left out (exit 1 only when nothing could be measured).
#
# usage: cluster_compare.sh [--out DIR] [--duration S] [--quick] [--build DIR]
#                           [any bench/cluster_compare.py option...]
#   --out DIR     default bench/results/<today>
#   --duration S  seconds measured per row (default 20, after 2 s warm-up)
#   --quick       3 s per row after 1 s warm-up: proves it works, no figures
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$SRC/bench/results/$(date +%F)"
BUILD="$SRC/build"
ARGS=()
while [[ $# -gt 0 ]]; do
	case "$1" in
	--out) OUT="$2"; shift 2 ;;
	--build) BUILD="$2"; shift 2 ;;
	--quick) ARGS+=(--duration 3 --warmup 1); shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) ARGS+=("$1"); shift ;;
	esac
done

bash "$SRC/deploy/setup.sh" || echo "cluster_compare: deploy/setup.sh failed; continuing with what is installed" >&2
if [[ ! -x "$BUILD/sluice" || ! -x "$BUILD/bench/sluice-bench" ]]; then
	[[ -f "$BUILD/CMakeCache.txt" ]] || cmake -S "$SRC" -B "$BUILD" --preset release >/dev/null
	cmake --build "$BUILD" -j "$(nproc)" --target sluice sluice-bench
fi
# Debian's interpreter: python3-confluent-kafka is installed for it.
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
exec "$PY" "$SRC/bench/cluster_compare.py" --build "$BUILD" --out "$OUT" "${ARGS[@]}"
