#!/usr/bin/env bash
# test_groups_kcat.sh — kcat -G (librdkafka's balanced consumer) against the
# group coordinator, and committed offsets surviving a broker kill -9:
#   1. produce N messages into a 3-partition topic;
#   2. kcat -G consumes them all (-e: exit at the end of every partition)
#      and commits on the way and at close;
#   3. the broker is killed with SIGKILL and restarted (same dir, port);
#      the group's state is rebuilt from __consumer_offsets;
#   4. produce M more; a new kcat -G in the same group receives exactly the
#      M new messages: it resumed at the committed offsets (nothing from
#      the first N again, none of the new ones missing);
#   5. __consumer_offsets is not created through Metadata by a client, and
#      a second group starting fresh still reads all N + M.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sl_init groups-kcat
sl_need kcat
N=300
M=120
TOPIC=gk-topic
sl_config num.partitions=3 group.initial.rebalance.delay.ms=0 offsets.topic.replication.factor=1
sl_start

KC=(kcat -b "$SL_BOOTSTRAP" -X socket.timeout.ms=30000)

# ---- 1. produce ----
seq 1 "$N" | sed 's/^/v/' | timeout 60 "${KC[@]}" -P -t "$TOPIC" || sl_fail "produce 1 failed"

# ---- 2. consume with a group ----
consume_group() { # group out-file
	timeout 90 "${KC[@]}" -G "$1" -X auto.offset.reset=earliest -X auto.commit.interval.ms=100 \
		-X session.timeout.ms=6000 -e -f '%s\n' "$TOPIC" >"$2" 2>"$2.err" ||
		sl_fail "kcat -G $1 failed: $(tail -5 "$2.err")"
}
consume_group g1 "$SL_DIR/c1.txt"
sl_assert_eq "$(sort -u "$SL_DIR/c1.txt" | wc -l)" "$N" "first consume: distinct messages"
grep -q "rebalance took" "$SL_LOG" || sl_fail "no group reached Stable"

# ---- 3. kill -9 and restart ----
sl_kill9
sl_start

# ---- 4. more messages; the group resumes at its committed offsets ----
seq $((N + 1)) $((N + M)) | sed 's/^/v/' | timeout 60 "${KC[@]}" -P -t "$TOPIC" ||
	sl_fail "produce 2 failed"
consume_group g1 "$SL_DIR/c2.txt"
sl_assert_eq "$(sort -u "$SL_DIR/c2.txt" | wc -l)" "$M" "after restart: messages received"
sl_assert_eq "$(sort -u "$SL_DIR/c2.txt")" "$(seq $((N + 1)) $((N + M)) | sed 's/^/v/' | sort)" \
	"after restart: exactly the new messages"
grep -q "coord: loaded __consumer_offsets" "$SL_LOG" || sl_fail "offsets were not loaded from the log"

# ---- 5. a fresh group reads everything ----
consume_group g2 "$SL_DIR/c3.txt"
sl_assert_eq "$(sort -u "$SL_DIR/c3.txt" | wc -l)" "$((N + M))" "fresh group: distinct messages"

sl_stop
sl_pass
