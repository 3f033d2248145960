#!/bin/sh
# run-fuzz.sh - what `make fuzz` runs for each target: one libFuzzer target
# for a fixed time, then one line saying how long it ran (wall and CPU
# time), how many inputs it ran, and whether it found anything.
#
#   run-fuzz.sh TARGET SEEDS WORKDIR SECONDS [libFuzzer options...]
#
# The corpus grows in WORKDIR/corpus (created, kept between runs; SEEDS, the
# seed corpus, is only read), crash, timeout and leak inputs land in
# WORKDIR/artifacts/, and libFuzzer's output in WORKDIR/fuzz.log.
# Exit status: 0 when nothing was found, 1 otherwise.
set -u

if [ $# -lt 4 ]; then
	echo "usage: $0 TARGET SEEDS WORKDIR SECONDS [libFuzzer options...]" >&2
	exit 2
fi
target=$1 seeds=$2 work=$3 seconds=$4
shift 4
name=$(basename "$target")
mkdir -p "$work/corpus" "$work/artifacts" || exit 2
log=$work/fuzz.log
before=$(ls "$work/artifacts" | wc -l)

echo "$name: fuzzing for $seconds s (log: $log)"
start=$(date +%s)
"$target" -max_total_time="$seconds" -timeout=30 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds" >"$log" 2>&1
rc=$?
end=$(date +%s)

# CPU time of the children of this shell (the target): the second line of
# `times`, "XmY.YYs XmY.YYs" (user, system). Not in a $(...) subshell, which
# has no children of its own.
times >"$work/times"
cpu=$(awk 'NR == 2 {
	t = 0
	for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
	printf "%.1f", t
}' "$work/times")
stat() {
	sed -n "s/^stat::$1: *//p" "$log" | tail -n 1
}
runs=$(stat number_of_executed_units)
rate=$(stat average_exec_per_sec)
added=$(stat new_units_added)
rss=$(stat peak_rss_mb)
found=$(($(ls "$work/artifacts" | wc -l) - before))

summary="$name: $((end - start)) s wall, ${cpu:-?} s CPU, ${runs:-?} runs (${rate:-?}/s), ${added:-?} new corpus inputs, peak RSS ${rss:-?} MB"
if [ "$rc" -eq 0 ] && [ "$found" -eq 0 ]; then
	echo "$summary: no finding"
	exit 0
fi
echo "$summary: FOUND SOMETHING (exit status $rc)"
ls -t "$work/artifacts" | head -n "$((found > 0 ? found : 1))" | sed "s|^|  artifact: $work/artifacts/|"
grep -E "^(==[0-9]+==ERROR|SUMMARY|.*fuzz failure|.*runtime error|ALARM|==[0-9]+== ERROR: libFuzzer)" "$log" | head -n 5 | sed 's/^/  /'
echo "  reproduce: $target ARTIFACT   (full output: $log)"
exit 1
