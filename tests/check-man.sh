#!/bin/sh
# check-man.sh - the man pages in man/ are clean for mandoc -Tlint at level
# "warning", and the EXAMPLES program in mmkv(3) is tests/readme_example.c,
# which make check builds and runs. Skipped (77) without mandoc, after the
# example check, which needs no mandoc.
#
# Environment: top_srcdir (set by make check; default: the parent of the
# directory holding this script).
set -eu

top=${top_srcdir:-$(dirname "$0")/..}
status=0

# The literal display after ".Sh EXAMPLES", with mdoc's \e turned back into
# the backslash it prints.
example=$(awk '/^\.Sh EXAMPLES/ { sec = 1 } sec && /^\.Bd -literal/ { on = 1; next }
	on && /^\.Ed/ { exit } on' "$top/man/mmkv.3" | sed 's/\\e/\\/g')
if ! printf '%s\n' "$example" | diff -u "$top/tests/readme_example.c" - >&2; then
	echo "check-man: the example in man/mmkv.3 differs from tests/readme_example.c (diff above)" >&2
	status=1
fi

if ! command -v mandoc >/dev/null 2>&1; then
	echo "check-man: mandoc not found, man pages not linted (Debian: apt-get install mandoc)"
	[ $status -eq 0 ] && exit 77
	exit $status
fi

for page in "$top"/man/*.[1-9]; do
	if ! out=$(mandoc -Tlint -W warning "$page" 2>&1) || [ -n "$out" ]; then
		printf '%s\n' "$out" >&2
		echo "check-man: mandoc -Tlint -W warning reports problems in $page" >&2
		status=1
	fi
done

exit $status
