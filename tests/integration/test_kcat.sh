#!/usr/bin/env bash
# test_kcat.sh — kcat (librdkafka) end to end against one broker:
#   1. kcat -L on an empty broker: the broker, no topics.
#   2. produce N keyed messages with two headers (kcat -P -K: -H ...) into a
#      topic auto-created with num.partitions=6;
#   3. kcat -L -t: 6 partitions led by broker 0, the advertised host:port;
#   4. consume everything (kcat -C -e) and compare byte for byte: every key
#      once, its value and headers exact, per-partition offsets 0..n-1 with
#      the producer's order preserved, timestamps (CreateTime, set by the
#      producer) within the produce window;
#      ListOffsets through kcat -Q: latest = messages in the partition,
#      earliest = 0;
#   5. SIGTERM (clean exit 0), restart on the same port and dir, consume
#      again: identical output, timestamps included;
#   6. produce M more, kill -9 right after kcat returned (every message
#      acknowledged), restart: all N + M there, none twice.
# N defaults to 100000 (SL_KCAT_MESSAGES overrides).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

sl_init kcat
sl_need kcat
N="${SL_KCAT_MESSAGES:-100000}"
M="${SL_KCAT_MORE:-20000}"
TOPIC=kcat-test
sl_config num.partitions=6 auto.create.topics.enable=true
sl_start

KC=(kcat -b "$SL_BOOTSTRAP" -X socket.timeout.ms=30000)

# ---- 1. metadata of an empty broker ----
timeout 30 "${KC[@]}" -L >"$SL_DIR/meta0.txt" || sl_fail "kcat -L failed"
grep -q "broker 0 at $SL_BOOTSTRAP" "$SL_DIR/meta0.txt" || sl_fail "kcat -L: broker missing: $(cat "$SL_DIR/meta0.txt")"
grep -q " 0 topics" "$SL_DIR/meta0.txt" || sl_fail "kcat -L: expected no topics: $(cat "$SL_DIR/meta0.txt")"

# ---- 2. produce ----
# Line i: "key-<prefix><i>:<value>" where values vary in length and content
# (spaces, ':' after the key delimiter, UTF-8, some empty).
gen_input() {
	python3 - "$1" "$2" <<'EOF'
import sys
prefix, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout
for i in range(n):
    if i % 997 == 0:
        value = ""
    else:
        value = "v%d:%s|%s" % (i, "abcdefghij" * (i % 23), "\u00e9\u4e2d" * (i % 3))
    out.write("key-%s%d:%s\n" % (prefix, i, value))
EOF
}
gen_input a "$N" >"$SL_DIR/in1.txt"
T0=$(($(date +%s%N) / 1000000))
timeout 300 "${KC[@]}" -P -t "$TOPIC" -K: -H "h1=first" -H "h2=second value" \
	<"$SL_DIR/in1.txt" 2>"$SL_DIR/produce1.err" || sl_fail "kcat -P failed: $(tail -5 "$SL_DIR/produce1.err")"
T1=$(($(date +%s%N) / 1000000))

# ---- 3. metadata of the topic ----
timeout 30 "${KC[@]}" -L -t "$TOPIC" >"$SL_DIR/meta1.txt" || sl_fail "kcat -L -t failed"
grep -q "topic \"$TOPIC\" with 6 partitions" "$SL_DIR/meta1.txt" ||
	sl_fail "kcat -L: expected 6 partitions: $(cat "$SL_DIR/meta1.txt")"
[[ $(grep -c "leader 0, replicas: 0, isrs: 0" "$SL_DIR/meta1.txt") -eq 6 ]] ||
	sl_fail "kcat -L: partitions not led by broker 0: $(cat "$SL_DIR/meta1.txt")"

# ---- 4. consume and compare ----
FMT='%p\t%o\t%k\t%s\t%h\t%T\n'
consume() {
	timeout 300 "${KC[@]}" -C -t "$TOPIC" -e -q -f "$FMT" >"$1" 2>"$1.err" ||
		sl_fail "kcat -C failed: $(tail -5 "$1.err")"
}

# verify OUT "prefix:input:first_ts:last_ts" ... — checks OUT holds exactly
# the messages of the given inputs; prints per-partition counts ("p n" lines).
verify() {
	python3 - "$@" <<'EOF'
import sys
out_path, specs = sys.argv[1], sys.argv[2:]
want = {}          # key -> (index in its input, value, prefix)
windows = {}
for spec in specs:
    prefix, path, t0, t1 = spec.split(":")
    windows[prefix] = (int(t0) - 10000, int(t1) + 10000)
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            k, _, v = line.rstrip(b"\n").partition(b":")
            want[k] = (i, v, prefix)
seen = {}
parts = {}
def fail(msg):
    print("verify: " + msg, file=sys.stderr)
    sys.exit(1)
with open(out_path, "rb") as f:
    for n, line in enumerate(f):
        fields = line.rstrip(b"\n").split(b"\t")
        if len(fields) != 6:
            fail("line %d: %d fields: %r" % (n + 1, len(fields), line[:200]))
        p, o, k, v, h, ts = fields
        if k not in want:
            fail("unexpected key %r" % k)
        if k in seen:
            fail("key %r consumed twice" % k)
        i, wv, prefix = want[k]
        if v != wv:
            fail("key %r: value %r, expected %r" % (k, v[:80], wv[:80]))
        if h != b"h1=first,h2=second value":
            fail("key %r: headers %r" % (k, h))
        lo, hi = windows[prefix]
        if not lo <= int(ts) <= hi:
            fail("key %r: timestamp %s outside [%d, %d]" % (k, ts, lo, hi))
        seen[k] = True
        parts.setdefault(int(p), []).append((int(o), prefix, i))
if len(seen) != len(want):
    missing = [k for k in want if k not in seen][:5]
    fail("%d of %d messages consumed; missing e.g. %r" % (len(seen), len(want), missing))
if sorted(parts) != list(range(6)):
    fail("partitions used: %r" % sorted(parts))
for p, rows in sorted(parts.items()):
    rows.sort()
    if [r[0] for r in rows] != list(range(len(rows))):
        fail("partition %d: offsets not contiguous from 0" % p)
    order = [(specs.index(next(s for s in specs if s.startswith(r[1] + ":"))), r[2]) for r in rows]
    if order != sorted(order):
        fail("partition %d: producer order not preserved" % p)
    print(p, len(rows))
EOF
}

consume "$SL_DIR/out1.txt"
verify "$SL_DIR/out1.txt" "a:$SL_DIR/in1.txt:$T0:$T1" >"$SL_DIR/counts1.txt" ||
	sl_fail "first consume does not match what was produced"

# ListOffsets (kcat -Q): latest == messages in the partition, earliest == 0.
QARGS=()
for p in 0 1 2 3 4 5; do QARGS+=(-t "$TOPIC:$p:-1"); done
timeout 30 "${KC[@]}" -Q "${QARGS[@]}" >"$SL_DIR/latest.txt" || sl_fail "kcat -Q failed"
while read -r p n; do
	grep -q "^$TOPIC \[$p\] offset $n\$" "$SL_DIR/latest.txt" ||
		sl_fail "ListOffsets latest of partition $p is not $n: $(cat "$SL_DIR/latest.txt")"
done <"$SL_DIR/counts1.txt"
timeout 30 "${KC[@]}" -Q -t "$TOPIC:3:-2" | grep -q "^$TOPIC \[3\] offset 0\$" ||
	sl_fail "ListOffsets earliest is not 0"

# ---- 5. clean restart ----
sl_stop
grep -q "clean_shutdown 1" "$SL_DATA/$TOPIC-0/partition.checkpoint" ||
	sl_fail "no clean-shutdown marker after SIGTERM"
sl_start
consume "$SL_DIR/out2.txt"
sort -n -k1,1 -k2,2 "$SL_DIR/out1.txt" >"$SL_DIR/out1.sorted"
sort -n -k1,1 -k2,2 "$SL_DIR/out2.txt" >"$SL_DIR/out2.sorted"
cmp -s "$SL_DIR/out1.sorted" "$SL_DIR/out2.sorted" ||
	sl_fail "data after a clean restart differs from before"

# ---- 6. kill -9 after acknowledged writes ----
gen_input b "$M" >"$SL_DIR/in2.txt"
T2=$(($(date +%s%N) / 1000000))
timeout 300 "${KC[@]}" -P -t "$TOPIC" -K: -H "h1=first" -H "h2=second value" \
	<"$SL_DIR/in2.txt" 2>"$SL_DIR/produce2.err" || sl_fail "second kcat -P failed"
T3=$(($(date +%s%N) / 1000000))
sl_kill9
sl_start
consume "$SL_DIR/out3.txt"
verify "$SL_DIR/out3.txt" "a:$SL_DIR/in1.txt:$T0:$T1" "b:$SL_DIR/in2.txt:$T2:$T3" \
	>/dev/null || sl_fail "after kill -9 and restart, acknowledged messages are missing or doubled"
sl_stop
sl_pass
