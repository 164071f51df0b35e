#!/usr/bin/env bash
# test_codec_regen.sh — the committed codec (net/kafka_codec*) is exactly what
# tools/gen_kafka_codec.py makes from the schemas, and the generator is
# deterministic: two runs into fresh temp dirs give byte-identical files.
# Exit 0 pass, 1 fail, 77 skip (no schema dir or no python3 here).
set -euo pipefail

src="${SLUICE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}"
schemas="$(dirname "$src")/shared/kafka-protocol"

if [ ! -f "$schemas/FetchRequest.json" ]; then
	echo "skip: no Kafka schemas at $schemas"
	exit 77
fi
if ! command -v python3 >/dev/null; then
	echo "skip: python3 not installed"
	exit 77
fi

tmp="$(mktemp -d /tmp/sluice-codec-regen.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/a" "$tmp/b"

python3 "$src/tools/gen_kafka_codec.py" --schemas "$schemas" --out "$tmp/a"
python3 "$src/tools/gen_kafka_codec.py" --schemas "$schemas" --out "$tmp/b"

if ! diff -r "$tmp/a" "$tmp/b" >/dev/null; then
	echo "FAIL: two runs of the generator differ"
	diff -r "$tmp/a" "$tmp/b" | head -40
	exit 1
fi

n=0
for f in "$tmp"/a/*; do
	name="$(basename "$f")"
	n=$((n + 1))
	if ! cmp -s "$f" "$src/net/$name"; then
		echo "FAIL: net/$name is stale or hand-edited; run 'make codec'"
		diff -u "$src/net/$name" "$f" | head -40 || true
		exit 1
	fi
done
# Every kafka_codec* file in net/ must come from the generator.
for f in "$src"/net/kafka_codec*; do
	if [ ! -f "$tmp/a/$(basename "$f")" ]; then
		echo "FAIL: net/$(basename "$f") is not produced by the generator"
		exit 1
	fi
done
if [ "$n" -lt 3 ]; then
	echo "FAIL: the generator wrote only $n files"
	exit 1
fi
echo "ok: $n generated files match net/ and regenerate identically"
