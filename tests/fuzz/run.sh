#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for a bounded time, starting
# from its committed seed corpus. Exit 0 when no target crashed, 1 otherwise
# (the crashing input is kept and its path printed), 77 when nothing could
# run here.
#
#   tests/fuzz/run.sh <build-dir> [total-seconds]
#
# total-seconds (default 60, or $FUZZ_SECONDS) is split between the targets
# by weight: codec 5, batch 3, recovery 2 (recovery touches the disk and
# runs far fewer inputs per second), compress 1. New inputs found go to a
# temporary corpus that is deleted afterwards, so the committed seeds never change;
# to grow them, run a target by hand with the seed directory first.
set -euo pipefail

build=${1:?usage: run.sh <build-dir> [total-seconds]}
total=${2:-${FUZZ_SECONDS:-60}}
src=$(cd "$(dirname "$0")" && pwd)
bin="$build/tests/fuzz"

targets=(fuzz_codec:5 fuzz_batch:3 fuzz_recovery:2 fuzz_compress:1)
weight_sum=11

# Disk-heavy targets run on tmpfs when there is one (fsync is free there).
fuzz_tmp=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	fuzz_tmp=/dev/shm
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz-XXXXXX")
# The targets' own temp files (a crash leaves its partition directory behind).
fuzz_tmp=$(mktemp -d "$fuzz_tmp/sluice-fuzz-tmp-XXXXXX")
keep_work=0
cleanup() {
	rm -rf "$fuzz_tmp"
	if [ "$keep_work" -eq 0 ]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
ran=0
for entry in "${targets[@]}"; do
	name=${entry%%:*}
	weight=${entry##*:}
	secs=$(( total * weight / weight_sum ))
	[ "$secs" -ge 1 ] || secs=1
	exe="$bin/$name"
	if [ ! -x "$exe" ]; then
		echo "fuzz: $name: not built ($exe)" >&2
		failed=$((failed + 1))
		ran=$((ran + 1))
		continue
	fi
	mkdir -p "$work/$name/new" "$work/$name/artifacts"
	seeds=()
	[ -d "$src/corpus/$name" ] && seeds=("$src/corpus/$name")
	log="$work/$name/log"
	set +e
	TMPDIR="$fuzz_tmp" "$exe" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
		-error_exitcode=1 -timeout_exitcode=1 \
		-print_final_stats=1 -artifact_prefix="$work/$name/artifacts/" \
		"$work/$name/new" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -eq 77 ]; then
		echo "fuzz: $name: skipped: $(tail -n 1 "$log")"
		continue
	fi
	ran=$((ran + 1))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
	if [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		keep_work=1
		echo "fuzz: $name: FAILED (exit $rc) after ${secs}s; log and crashing input:" >&2
		tail -n 60 "$log" >&2
		ls -l "$work/$name/artifacts/" >&2
	else
		echo "fuzz: $name: ok, ${execs:-?} inputs in ${secs}s (${cov:-cov: ?})"
	fi
done

if [ "$failed" -ne 0 ]; then
	echo "fuzz: failures kept in $work" >&2
	echo "fuzz: $((ran - failed)) passed, $failed failed"
	exit 1
fi
if [ "$ran" -eq 0 ]; then
	exit 77
fi
echo "fuzz: $ran passed, 0 failed"
exit 0
