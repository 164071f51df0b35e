# lib.sh — helpers for integration tests that run a real sluice broker.
# Source it from a test script (bash, set -euo pipefail is fine):
#
#   . "$(dirname "$0")/lib.sh"
#   sl_init "kcat"              # temp dir, cleanup trap, free port; skips (77) without $SLUICE_BIN
#   sl_config num.partitions=6  # writes $SL_CONF (listener, log.dirs, ...) plus these keys
#   sl_start                    # starts the broker, waits (bounded) until the port accepts
#   ... kcat -b "$SL_BOOTSTRAP" ...
#   sl_stop                     # SIGTERM, bounded wait, checks exit 0 ("clean")
#   sl_start                    # restart: same port, same data dir
#   sl_kill9                    # kill -9 (no clean shutdown)
#   sl_pass                     # prints PASS and exits 0
#
# Variables set by sl_init: SL_NAME, SL_DIR (temp dir, removed at exit unless
# SL_KEEP=1), SL_DATA (log.dirs), SL_CONF, SL_LOG (broker stdout+stderr, all
# runs appended), SL_PORT, SL_BOOTSTRAP (127.0.0.1:port), SL_PID (while running).
#
# Functions:
#   sl_init NAME            set up; exit 77 (skip) if SLUICE_BIN is unusable
#   sl_skip WHY             exit 77 with a reason
#   sl_need CMD...          skip unless every command exists
#   sl_free_port            print a free loopback TCP port (binds port 0)
#   sl_config [key=v]...    write $SL_CONF: listeners on $SL_PORT, log.dirs, num.shards=2,
#                           log.level=info, then the given keys (later ones win)
#   sl_start                start in the background (log appended to $SL_LOG); ready when this
#                           run logged "listening on" and the port accepts; fail if it exits or
#                           is not ready within SL_START_TIMEOUT s (20)
#   sl_stop                 SIGTERM, wait up to SL_STOP_TIMEOUT s (30), then kill -9 and fail;
#                           fails unless the exit status is 0
#   sl_kill9                kill -9 and reap
#   sl_running              true while the broker process lives
#   sl_fail MSG...          print FAIL, the last 40 broker log lines, exit 1
#   sl_assert_eq A B MSG    fail with MSG unless A == B
#   sl_pass                 print PASS NAME, exit 0 (the trap cleans up)

SL_START_TIMEOUT="${SL_START_TIMEOUT:-20}"
SL_STOP_TIMEOUT="${SL_STOP_TIMEOUT:-30}"
SL_PID=""

sl_skip() {
	echo "SKIP: $*" >&2
	exit 77
}

sl_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || sl_skip "$c is not installed"
	done
}

sl_fail() {
	echo "FAIL ($SL_NAME): $*" >&2
	if [[ -n "${SL_LOG:-}" && -f "$SL_LOG" ]]; then
		echo "---- last broker log lines ($SL_LOG) ----" >&2
		tail -n 40 "$SL_LOG" >&2
		echo "----" >&2
	fi
	exit 1
}

sl_assert_eq() {
	[[ "$1" == "$2" ]] || sl_fail "$3: expected '$2', got '$1'"
}

sl_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

sl_running() {
	[[ -n "$SL_PID" ]] && kill -0 "$SL_PID" 2>/dev/null
}

_sl_cleanup() {
	local rc=$?
	if sl_running; then
		kill -9 "$SL_PID" 2>/dev/null || true
		wait "$SL_PID" 2>/dev/null || true
	fi
	if [[ "${SL_KEEP:-0}" == "1" ]]; then
		echo "kept $SL_DIR" >&2
	elif [[ -n "${SL_DIR:-}" && -d "$SL_DIR" ]]; then
		rm -rf "$SL_DIR"
	fi
	exit $rc
}

sl_init() {
	SL_NAME="$1"
	if [[ -z "${SLUICE_BIN:-}" || ! -x "${SLUICE_BIN:-}" ]]; then
		sl_skip "SLUICE_BIN is not an executable (got '${SLUICE_BIN:-}')"
	fi
	sl_need python3
	SL_DIR="$(mktemp -d "/tmp/sluice-$SL_NAME-XXXXXX")"
	trap _sl_cleanup EXIT
	SL_DATA="$SL_DIR/data"
	SL_CONF="$SL_DIR/server.properties"
	SL_LOG="$SL_DIR/broker.log"
	SL_PORT="$(sl_free_port)"
	SL_BOOTSTRAP="127.0.0.1:$SL_PORT"
	: >"$SL_LOG"
}

sl_config() {
	{
		echo "listeners=PLAINTEXT://127.0.0.1:$SL_PORT"
		echo "log.dirs=$SL_DATA"
		echo "num.shards=2"
		echo "log.level=info"
		local kv
		for kv in "$@"; do
			echo "$kv"
		done
	} >"$SL_CONF"
}

# True once something accepts on the port (bash's /dev/tcp, 1 s timeout).
_sl_port_open() {
	timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SL_PORT" 2>/dev/null
}

# Lines of $SL_LOG saying "listening on" (one per successful start).
_sl_listening_count() {
	grep -c "listening on " "$SL_LOG" || true
}

sl_start() {
	local i before
	sl_running && sl_fail "sl_start: a broker is already running (pid $SL_PID)"
	before=$(_sl_listening_count)
	echo "==== start $(date +%H:%M:%S.%N) ====" >>"$SL_LOG"
	"$SLUICE_BIN" --config "$SL_CONF" >>"$SL_LOG" 2>&1 &
	SL_PID=$!
	# Ready = this run logged "listening on" (a killed predecessor's socket can
	# linger for a moment, so the port alone proves nothing) and it accepts.
	for ((i = 0; i < SL_START_TIMEOUT * 10; i++)); do
		sl_running || { SL_PID=""; sl_fail "broker exited during start-up"; }
		if [[ $(_sl_listening_count) -gt $before ]] && _sl_port_open; then
			return 0
		fi
		sleep 0.1
	done
	sl_fail "broker did not accept on $SL_BOOTSTRAP within ${SL_START_TIMEOUT}s"
}

sl_stop() {
	local i rc
	sl_running || sl_fail "sl_stop: no broker running"
	kill -TERM "$SL_PID"
	for ((i = 0; i < SL_STOP_TIMEOUT * 10; i++)); do
		sl_running || break
		sleep 0.1
	done
	if sl_running; then
		kill -9 "$SL_PID" 2>/dev/null || true
		wait "$SL_PID" 2>/dev/null || true
		SL_PID=""
		sl_fail "broker still running ${SL_STOP_TIMEOUT}s after SIGTERM"
	fi
	set +e
	wait "$SL_PID"
	rc=$?
	set -e
	SL_PID=""
	[[ $rc -eq 0 ]] || sl_fail "broker exited with status $rc after SIGTERM"
}

sl_kill9() {
	sl_running || sl_fail "sl_kill9: no broker running"
	kill -9 "$SL_PID"
	wait "$SL_PID" 2>/dev/null || true
	SL_PID=""
}

sl_pass() {
	echo "PASS: $SL_NAME"
	exit 0
}
