#!/usr/bin/env bash
# test_rdkafka.sh — librdkafka (C) against sluice: tests/integration/rdkafka_test.c
# built by CMake as $SLUICE_BUILD/tests/rdkafka_test. Cases (exact checks in the C file):
#   1. codecs: none, gzip, snappy, lz4, zstd round trips with keys;
#   2. idempotent: 20000 messages with enable.idempotence, exactly once and in order;
#   3. offsets: consume from beginning, offset 42, a timestamp (offsetsForTimes), the end;
#   4. the same after a clean restart (data and producer ids survive);
#   5. kill -9 of the broker in the middle of an idempotent acks=all produce run, restart:
#      every acknowledged message is at its offset, no value is in the log twice.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sl_init "rdkafka"
RDT="${SLUICE_BUILD:-}/tests/rdkafka_test"
[[ -x "$RDT" ]] || sl_skip "rdkafka_test not built (librdkafka-dev missing?): $RDT"
sl_config num.partitions=3
sl_start

"$RDT" codecs "$SL_BOOTSTRAP" || sl_fail "codecs"
"$RDT" idempotent "$SL_BOOTSTRAP" || sl_fail "idempotent producer"
"$RDT" offsets "$SL_BOOTSTRAP" || sl_fail "offsets"

# 5. kill -9 in the middle of a produce run. The producer keeps running
# while the broker is down and restarted; librdkafka retries with the same
# producer id and sequence numbers, which the restarted broker must
# recognise (producer state rebuilt from the log) instead of writing twice.
REPORTS="$SL_DIR/reports.txt"
COUNT=30000
"$RDT" produce-log "$SL_BOOTSTRAP" "$REPORTS" "$COUNT" >"$SL_DIR/produce.out" 2>&1 &
PRODUCER=$!
for ((i = 0; i < 600; i++)); do
	[[ -f "$REPORTS" ]] && (( $(wc -l <"$REPORTS") >= 3000 )) && break
	kill -0 "$PRODUCER" 2>/dev/null || break
	sleep 0.05
done
kill -0 "$PRODUCER" 2>/dev/null || { cat "$SL_DIR/produce.out" >&2; sl_fail "producer ended before the kill"; }
acked_before=$(grep -c '^ok ' "$REPORTS" || true)
sl_kill9
sleep 1
sl_start
rc=0
wait "$PRODUCER" || rc=$?
cat "$SL_DIR/produce.out"
[[ $rc -eq 0 ]] || sl_fail "produce-log exited with $rc"
acked=$(grep -c '^ok ' "$REPORTS" || true)
echo "acknowledged: $acked of $COUNT ($acked_before before the kill)"
(( acked > acked_before )) || sl_fail "nothing acknowledged after the restart"
"$RDT" verify-log "$SL_BOOTSTRAP" "$REPORTS" || sl_fail "verify-log after kill -9"

# 4. a clean restart: everything still there, exactly once.
sl_stop
sl_start
"$RDT" verify-log "$SL_BOOTSTRAP" "$REPORTS" || sl_fail "verify-log after a clean restart"
sl_stop
sl_pass
