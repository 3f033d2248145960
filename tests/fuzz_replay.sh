#!/bin/sh
# fuzz_replay.sh - replays the seed corpus of the fuzz targets (and the
# crash inputs kept in it) in `make check`: every file of fuzz/corpus/open/
# through fuzz/fuzz_open, every file of fuzz/corpus/ops/ through
# fuzz/fuzz_ops. Each target aborts on a failed expectation, so the test
# fails when one input does. Works with either main() of the targets:
# fuzz/replay.c, or libFuzzer's in a --enable-fuzzing build (which runs
# files given as arguments once each).
#
# Environment: top_srcdir, top_builddir (set by make check; default: the
# parent of this script's directory, and the current directory).
set -u

top=${top_srcdir:-$(dirname "$0")/..}
build=${top_builddir:-.}
status=0

for t in open ops; do
	bin=$build/fuzz/fuzz_$t
	set -- "$top"/fuzz/corpus/$t/*
	if [ ! -f "$1" ]; then
		echo "fuzz_replay: no inputs in $top/fuzz/corpus/$t" >&2
		status=1
		continue
	fi
	n=$#
	if "$bin" "$@"; then
		echo "fuzz_replay: fuzz_$t: $n inputs replayed"
	else
		echo "fuzz_replay: fuzz_$t failed on an input of $top/fuzz/corpus/$t (output above)" >&2
		status=1
	fi
done
exit $status
