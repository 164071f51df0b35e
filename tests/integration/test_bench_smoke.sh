#!/usr/bin/env bash
# test_bench_smoke.sh — a few-second smoke of each sluice-bench driver:
# kafka against Sluice, jetstream against nats-server (JetStream, file
# store), redis against redis-server (appendonly). Each must connect,
# produce, consume every acknowledged message and write a JSON object with
# exactly the documented fields. No number is judged (benchmarks never fail
# on a number). The servers run on free loopback ports with throwaway data
# directories under this test's temp dir and are stopped by PID.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sl_init "bench-smoke"
BENCH="${SLUICE_BUILD:-}/bench/sluice-bench"
[[ -x "$BENCH" ]] || sl_skip "sluice-bench not built (needs librdkafka, libnats, hiredis dev packages)"
sl_need nats-server redis-server

NATS_PID=""
REDIS_PID=""
bs_cleanup() {
	local rc=$?
	local pid
	for pid in "$NATS_PID" "$REDIS_PID"; do
		if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	(exit $rc)
	_sl_cleanup
}
trap bs_cleanup EXIT

# Waits (bounded, 10 s) until something accepts on 127.0.0.1:$1 while pid $2 lives.
bs_wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$2" 2>/dev/null || sl_fail "server pid $2 exited during start-up"
		timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
		sleep 0.1
	done
	sl_fail "nothing accepts on port $1"
}

# Checks the JSON object in $1: exactly the documented keys, a system name
# $2, and messages actually measured end to end.
bs_check_json() {
	python3 - "$1" "$2" <<'PY' || sl_fail "bad JSON from sluice-bench ($2)"
import json, sys
want = ["system", "workload", "msg_bytes", "target_rate", "msgs_per_s", "mb_per_s",
        "produce_p50_us", "produce_p99_us", "e2e_p50_us", "e2e_p90_us", "e2e_p99_us",
        "e2e_p999_us", "e2e_p9999_us", "e2e_max_us", "server_cpu_s", "server_rss_peak_mb"]
o = json.load(open(sys.argv[1]))
assert sorted(o) == sorted(want), sorted(set(o) ^ set(want))
assert o["system"] == sys.argv[2], o["system"]
assert o["msg_bytes"] == 200, o["msg_bytes"]
assert o["msgs_per_s"] > 0, "nothing consumed in the measured window"
assert o["e2e_p50_us"] <= o["e2e_p99_us"] <= o["e2e_max_us"], o
assert o["produce_p50_us"] <= o["produce_p99_us"], o
assert o["server_cpu_s"] is not None and o["server_rss_peak_mb"] > 0, o
print("ok", sys.argv[2], int(o["msgs_per_s"]), "msgs/s")
PY
}

# Runs one short open-loop workload ($1 system, $2 url, $3 server pid).
bs_run() {
	local out="$SL_DIR/$1.json"
	"$BENCH" --system "$1" --url "$2" --server-pid "$3" --msg-bytes 200 --rate 2000 \
		--partitions 2 --warmup 0.5 --duration 1.5 --json "$out" >"$SL_DIR/$1.out" 2>&1 ||
		{ cat "$SL_DIR/$1.out" >&2; sl_fail "sluice-bench --system $1 failed"; }
	grep -q "end-to-end" "$SL_DIR/$1.out" || sl_fail "$1: no human table"
	grep -q "missing 0," "$SL_DIR/$1.out" || { cat "$SL_DIR/$1.out" >&2; sl_fail "$1: messages lost"; }
	bs_check_json "$out" "$1"
}

sl_config num.partitions=2
sl_start
bs_run kafka "$SL_BOOTSTRAP" "$SL_PID"

NATS_PORT="$(sl_free_port)"
mkdir -p "$SL_DIR/nats"
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$SL_DIR/nats" >"$SL_DIR/nats.log" 2>&1 &
NATS_PID=$!
bs_wait_port "$NATS_PORT" "$NATS_PID"
bs_run jetstream "nats://127.0.0.1:$NATS_PORT" "$NATS_PID"

REDIS_PORT="$(sl_free_port)"
mkdir -p "$SL_DIR/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$SL_DIR/redis" --appendonly yes \
	--appendfsync everysec --save "" --daemonize no >"$SL_DIR/redis.log" 2>&1 &
REDIS_PID=$!
bs_wait_port "$REDIS_PORT" "$REDIS_PID"
bs_run redis "127.0.0.1:$REDIS_PORT" "$REDIS_PID"

sl_stop
sl_pass
