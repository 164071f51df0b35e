#!/usr/bin/env bash
# test_kclient.sh — net/kclient.c (the inter-broker client) against a real
# broker: tests/kclient_tool sends ApiVersions v3, Metadata v12,
# CreateTopics v7, Produce v9 and Fetch v12 (replica id -1) and checks every
# decoded answer (the records come back as produced). Skips (77) when the
# tool was not built next to the broker.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
sl_init "kclient"
TOOL="${SLUICE_BUILD:-$(dirname "$SLUICE_BIN")}/tests/kclient_tool"
[[ -x "$TOOL" ]] || sl_skip "kclient_tool not built ($TOOL)"
sl_config num.partitions=1 auto.create.topics.enable=false
sl_start
out="$(timeout 60 "$TOOL" 127.0.0.1 "$SL_PORT" kclient-topic 2>&1)" || {
	echo "$out" >&2
	sl_fail "kclient_tool failed"
}
echo "$out"
grep -q "Fetch v12: " <<<"$out" || sl_fail "no Fetch step in the tool output"
grep -q "all checks passed" <<<"$out" || sl_fail "tool did not pass"
# the broker saw the tool's client id and stays healthy after it left
sl_stop
sl_pass
