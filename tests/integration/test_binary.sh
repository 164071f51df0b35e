#!/usr/bin/env bash
# test_binary.sh — smoke test of the sluice binary: --version and --help,
# usage and configuration errors (exit 2, the culprit named), creating
# log.dirs, starting with a temp config, and a clean exit 0 within a few
# seconds of SIGTERM and of SIGINT.
#
# Env: SLUICE_BIN (set by CTest) points at the binary.
set -euo pipefail

BIN="${SLUICE_BIN:-}"
if [[ -z "$BIN" || ! -x "$BIN" ]]; then
	echo "SKIP: SLUICE_BIN is not an executable (got '${BIN}')" >&2
	exit 77
fi

TMP="$(mktemp -d /tmp/sluice-binary-XXXXXX)"
PID=""
cleanup() {
	if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
		kill -9 "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Runs the binary with "$@", capturing output; sets RC and OUT.
run() {
	set +e
	OUT="$("$BIN" "$@" 2>&1)"
	RC=$?
	set -e
}

# --- version and help ---
run --version
[[ $RC -eq 0 ]] || fail "--version exited $RC"
[[ "$OUT" =~ ^sluice\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version printed '$OUT'"

run --help
[[ $RC -eq 0 ]] || fail "--help exited $RC"
for opt in --config --set --help --version; do
	grep -q -- "$opt" <<<"$OUT" || fail "--help does not mention $opt"
done

# --- usage errors: exit 2, message and usage ---
run --no-such-option
[[ $RC -eq 2 ]] || fail "unknown option exited $RC"
grep -q -- "--no-such-option" <<<"$OUT" || fail "unknown option not named: $OUT"
grep -q "usage:" <<<"$OUT" || fail "no usage after an unknown option"

run
[[ $RC -eq 2 ]] || fail "no --config exited $RC"

run --config
[[ $RC -eq 2 ]] || fail "--config without a value exited $RC"

run --config "$TMP/none.properties" --set novalue
[[ $RC -eq 2 ]] || fail "--set without '=' exited $RC"

# --- configuration errors: exit 2, the key named ---
LOGDIR="$TMP/data/a/b"
CONF="$TMP/server.properties"
cat >"$CONF" <<EOF
log.dirs=$LOGDIR
listeners=PLAINTEXT://127.0.0.1:0
num.shards=2
log.level=info
EOF

BAD="$TMP/bad.properties"
cp "$CONF" "$BAD"
echo "no.such.key.for.sure=1" >>"$BAD"
run --config "$BAD"
[[ $RC -eq 2 ]] || fail "unknown key in file exited $RC"
grep -q "no.such.key.for.sure" <<<"$OUT" || fail "bad key not named: $OUT"

run --config "$CONF" --set another.bogus.key=3
[[ $RC -eq 2 ]] || fail "unknown --set key exited $RC"
grep -q "another.bogus.key" <<<"$OUT" || fail "bad --set key not named: $OUT"

run --config "$CONF" --set num.shards=notanumber
[[ $RC -eq 2 ]] || fail "bad --set value exited $RC"
grep -q "num.shards" <<<"$OUT" || fail "bad value's key not named: $OUT"

run --config "$TMP/does-not-exist.properties"
[[ $RC -eq 2 ]] || fail "missing config file exited $RC"

# --- a log dir that cannot be created: exit 1 with the path ---
touch "$TMP/plainfile"
run --config "$CONF" --set "log.dirs=$TMP/plainfile/sub"
[[ $RC -eq 1 ]] || fail "uncreatable log dir exited $RC"
grep -q "$TMP/plainfile/sub" <<<"$OUT" || fail "uncreatable log dir not named: $OUT"

# --- start, log, stop on a signal ---
# Starts the broker in the background (log in $1), waits for every shard.
start_broker() {
	local log="$1"
	shift
	"$BIN" --config "$CONF" "$@" >"$log" 2>&1 &
	PID=$!
	for _ in $(seq 1 100); do
		if grep -q "running with" "$log"; then
			return 0
		fi
		kill -0 "$PID" 2>/dev/null || fail "broker exited early: $(cat "$log")"
		sleep 0.1
	done
	fail "broker did not report running within 10 s: $(cat "$log")"
}

# Sends $1 to the broker and expects exit 0 within 5 s.
stop_broker() {
	local sig="$1" log="$2"
	kill -"$sig" "$PID"
	for _ in $(seq 1 50); do
		if ! kill -0 "$PID" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if kill -0 "$PID" 2>/dev/null; then
		kill -9 "$PID" 2>/dev/null || true
		fail "broker still running 5 s after SIG$sig"
	fi
	set +e
	wait "$PID"
	local rc=$?
	set -e
	PID=""
	[[ $rc -eq 0 ]] || fail "broker exited $rc after SIG$sig: $(cat "$log")"
	grep -q "shutting down" "$log" || fail "no 'shutting down' line after SIG$sig"
}

LOG1="$TMP/run1.log"
start_broker "$LOG1"
[[ -d "$LOGDIR" ]] || fail "log.dirs entry $LOGDIR was not created"
[[ $(grep -c "shard [0-9]* up: cpu" "$LOG1") -eq 2 ]] || fail "expected 2 shard lines: $(cat "$LOG1")"
grep -q "config: num.shards=2" "$LOG1" || fail "configuration not logged"
stop_broker TERM "$LOG1"

# --set overrides the file, and SIGINT stops too.
LOG2="$TMP/run2.log"
start_broker "$LOG2" --set num.shards=1
[[ $(grep -c "shard [0-9]* up: cpu" "$LOG2") -eq 1 ]] || fail "--set num.shards=1 not applied"
stop_broker INT "$LOG2"

echo "PASS: test_binary"
