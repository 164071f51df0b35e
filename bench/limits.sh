#!/usr/bin/env bash
# limits.sh — the ceilings of this machine, for comparing brokers against
# what the hardware allows. Writes one JSON object to --out FILE (and prints
# it):
#   loopback_tcp_mb_s              iperf3, one TCP stream over 127.0.0.1
#   disk_seq_write_mb_s            fio, 1 MiB sequential writes, buffered (one fsync at the end)
#   disk_seq_write_fdatasync_mb_s  fio, 64 KiB sequential writes, fdatasync after each
#   fdatasync_4k_p50_us / _p99_us  4 KiB append + fdatasync, latency percentiles
#   memcpy_gb_s                    one thread copying a 256 MiB buffer
# MB = 10^6 bytes. A measurement that cannot run (tool missing) is null;
# the script never fails on a number.
#
# usage: limits.sh --dir DATA_DIR --out FILE [--quick]
set -euo pipefail

DIR=""
OUT=""
QUICK=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	--dir) DIR="$2"; shift 2 ;;
	--out) OUT="$2"; shift 2 ;;
	--quick) QUICK=1; shift ;;
	*) echo "usage: limits.sh --dir DATA_DIR --out FILE [--quick]" >&2; exit 2 ;;
	esac
done
[[ -n "$DIR" && -n "$OUT" ]] || { echo "usage: limits.sh --dir DATA_DIR --out FILE [--quick]" >&2; exit 2; }
mkdir -p "$DIR"
WORK="$(mktemp -d "$DIR/limits-XXXXXX")"
IPERF_PID=""
cleanup() {
	if [[ -n "$IPERF_PID" ]] && kill -0 "$IPERF_PID" 2>/dev/null; then
		kill "$IPERF_PID" 2>/dev/null || true
		wait "$IPERF_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

if [[ $QUICK == 1 ]]; then T=2; SIZE=256M; SYNC_SIZE=32M; N_SYNC=300; else T=10; SIZE=2G; SYNC_SIZE=256M; N_SYNC=2000; fi

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---- loopback TCP (iperf3) ----
tcp=null
if command -v iperf3 >/dev/null; then
	port="$(free_port)"
	iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
	IPERF_PID=$!
	for ((i = 0; i < 50; i++)); do
		timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
		sleep 0.1
	done
	# the probe connection above may consume the one-shot server: restart if gone
	sleep 0.2
	if ! kill -0 "$IPERF_PID" 2>/dev/null; then
		iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
		IPERF_PID=$!
		sleep 0.5
	fi
	if iperf3 -c 127.0.0.1 -p "$port" -t "$T" -J >"$WORK/iperf.json" 2>/dev/null; then
		tcp=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f" % (d["end"]["sum_received"]["bits_per_second"]/8e6))' "$WORK/iperf.json" || echo null)
	fi
	wait "$IPERF_PID" 2>/dev/null || true
	IPERF_PID=""
fi

# ---- sequential writes (fio) ----
fio_bw() {   # prints MB/s of a fio JSON report's first job
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f" % (d["jobs"][0]["write"]["bw_bytes"]/1e6))' "$1" 2>/dev/null || echo null
}
seq=null
seq_sync=null
if command -v fio >/dev/null; then
	if fio --name=seq --directory="$WORK" --rw=write --bs=1M --size="$SIZE" --ioengine=psync \
		--end_fsync=1 --output-format=json >"$WORK/fio1.json" 2>/dev/null; then
		seq=$(fio_bw "$WORK/fio1.json")
	fi
	rm -f "$WORK"/seq.*
	if fio --name=seqsync --directory="$WORK" --rw=write --bs=64k --size="$SYNC_SIZE" \
		--ioengine=psync --fdatasync=1 --runtime="$T" --time_based=0 \
		--output-format=json >"$WORK/fio2.json" 2>/dev/null; then
		seq_sync=$(fio_bw "$WORK/fio2.json")
	fi
	rm -f "$WORK"/seqsync.*
fi

# ---- fdatasync latency of 4 KiB appends, and memcpy ----
read -r sync_p50 sync_p99 memcpy < <(python3 - "$WORK" "$N_SYNC" <<'PY'
import os, sys, time
work, n = sys.argv[1], int(sys.argv[2])
fd = os.open(os.path.join(work, "sync.dat"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = b"x" * 4096
lat = []
for _ in range(n):
    t = time.perf_counter_ns()
    os.write(fd, buf)
    os.fdatasync(fd)
    lat.append((time.perf_counter_ns() - t) / 1000.0)
os.close(fd)
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
src = bytearray(256 << 20)
dst = bytearray(256 << 20)
best = 0.0
for _ in range(5):
    t = time.perf_counter()
    dst[:] = src          # one memcpy of 256 MiB
    best = max(best, len(src) / (time.perf_counter() - t) / 1e9)
print("%.0f %.0f %.2f" % (p(0.50), p(0.99), best))
PY
)

python3 - "$OUT" <<PY
import json, sys
o = {"loopback_tcp_mb_s": $tcp, "disk_seq_write_mb_s": $seq,
     "disk_seq_write_fdatasync_mb_s": $seq_sync,
     "fdatasync_4k_p50_us": ${sync_p50:-null}, "fdatasync_4k_p99_us": ${sync_p99:-null},
     "memcpy_gb_s": ${memcpy:-null}}
json.dump(o, open(sys.argv[1], "w"), indent=1)
print(json.dumps(o))
PY
