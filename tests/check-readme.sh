#!/bin/sh
# check-readme.sh - keeps README.md honest: its first code block holds
# exactly two commands, the second of which is the command .ci/run runs (so
# the test instructions and CI cannot drift apart), and its C example is
# tests/readme_example.c, which make check builds and runs.
#
# Environment: top_srcdir (set by make check; default: the parent of the
# directory holding this script).
set -eu

top=${top_srcdir:-$(dirname "$0")/..}
readme=$top/README.md
status=0

# Lines of the first fenced block, and of the first fenced block tagged "c".
commands=$(awk '/^```/ { n++; next } n == 1' "$readme")
example=$(awk '/^```c$/ && !done { on = 1; next } on && /^```/ { on = 0; done = 1 } on' "$readme")

count=$(printf '%s\n' "$commands" | grep -c .) || true
if [ "$count" -ne 2 ]; then
	echo "check-readme: README.md's first code block has $count lines, not two commands" >&2
	status=1
fi

readme_cmd=$(printf '%s\n' "$commands" | sed -n 2p)
ci_cmd=$(tail -n 1 "$top/.ci/run")
if [ "$readme_cmd" != "$ci_cmd" ]; then
	echo "check-readme: the last line of .ci/run is not README.md's second command:" >&2
	echo "  README.md: $readme_cmd" >&2
	echo "  .ci/run:   $ci_cmd" >&2
	echo "Make them the same text." >&2
	status=1
fi

if ! printf '%s\n' "$example" | diff -u "$top/tests/readme_example.c" - >&2; then
	echo "check-readme: README.md's C example differs from tests/readme_example.c (diff above)" >&2
	status=1
fi

exit $status
