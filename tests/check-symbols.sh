#!/bin/sh
# check-symbols.sh - the ABI guard: the dynamic symbols libmmkv.so exports
# must be exactly those listed in tests/symbols.txt, all named mmkv_ (never
# the internal mmkv__), and the list's first line, "# version-info C:R:A",
# must match configure.ac's MMKV_LT_VERSION. Changing the exported symbols
# therefore means changing the version-info too, in the same commit.
#
# Environment: top_srcdir, top_builddir, MMKV_LT_VERSION (set by make check).
# Skipped (77) when no shared library was built (--disable-shared).
set -eu

: "${top_srcdir:?} ${top_builddir:?} ${MMKV_LT_VERSION:?}"
lib=$top_builddir/lib/.libs/libmmkv.so
list=$top_srcdir/tests/symbols.txt
proposal=$top_builddir/tests/symbols.txt.new

if [ ! -f "$lib" ]; then
	echo "check-symbols: $lib not built (shared library disabled?)"
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Absolute (type A) symbols are version-node names, not code or data.
nm -D --defined-only "$lib" | awk 'NF == 3 && $2 != "A" { print $3 }' |
	LC_ALL=C sort -u > "$tmp/actual"
grep -v '^#' "$list" | LC_ALL=C sort -u > "$tmp/expected"
listed_version=$(sed -n '1s/^# version-info //p' "$list")
status=0

bad=$(grep -v '^mmkv_' "$tmp/actual"; grep '^mmkv__' "$tmp/actual") || true
if [ -n "$bad" ]; then
	echo "check-symbols: exported symbols outside the public mmkv_ namespace:" >&2
	printf '  %s\n' $bad >&2
	echo "Mark only public API functions MMKV_API; internal functions are mmkv__ and hidden." >&2
	status=1
fi

added=$(LC_ALL=C comm -13 "$tmp/expected" "$tmp/actual")
removed=$(LC_ALL=C comm -23 "$tmp/expected" "$tmp/actual")
if [ -n "$added$removed" ]; then
	echo "check-symbols: the symbols exported by libmmkv.so differ from tests/symbols.txt" >&2
	for s in $added; do echo "  added:   $s" >&2; done
	for s in $removed; do echo "  removed: $s" >&2; done
	status=1
fi
if [ -z "$added$removed" ] && [ "$listed_version" != "$MMKV_LT_VERSION" ]; then
	echo "check-symbols: configure.ac's version-info is $MMKV_LT_VERSION but tests/symbols.txt records ${listed_version:-none}" >&2
	status=1
fi

# The new list is offered only once the version-info has moved, so that the
# symbols and the version-info change together.
if [ $status -ne 0 ] && [ "$listed_version" = "$MMKV_LT_VERSION" ]; then
	cat >&2 <<MSG
The version-info is still $MMKV_LT_VERSION: an ABI change needs a new one. Update
both: set MMKV_LT_VERSION in configure.ac by the rules written beside it, rerun
configure and make check; this check then writes the list to copy over
tests/symbols.txt.
MSG
elif [ $status -ne 0 ]; then
	mkdir -p "$(dirname "$proposal")"
	{ echo "# version-info $MMKV_LT_VERSION"; cat "$tmp/actual"; } > "$proposal"
	cat >&2 <<MSG
The version-info changed ($listed_version -> $MMKV_LT_VERSION). Update
tests/symbols.txt to match: this build's list is in $proposal.
MSG
fi
exit $status
