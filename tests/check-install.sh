#!/bin/sh
# check-install.sh - `make install DESTDIR=...` installs what a user needs:
# the libraries, mmkv.h, libmmkv.pc, the tools and the man pages; and a
# program built against that tree with `pkg-config --cflags --libs libmmkv`
# (the README example) links and runs.
#
# Environment: top_srcdir, top_builddir (set by make check).
set -eu

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-$(dirname "$0")/..}
command -v pkg-config >/dev/null 2>&1 || { echo "pkg-config missing: skipped"; exit 77; }

dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "check-install: $*" >&2; exit 1; }

${MAKE:-make} -s -C "$top_builddir" install DESTDIR="$dest" >"$dest/install.log" 2>&1 ||
	{ cat "$dest/install.log" >&2; fail "make install failed"; }

pc=$(find "$dest" -name libmmkv.pc | head -n 1)
[ -n "$pc" ] || fail "libmmkv.pc not installed"
for f in include/mmkv.h; do
	[ -n "$(find "$dest" -path "*/$f")" ] || fail "$f not installed"
done
for lib in 'libmmkv.so*' libmmkv.a; do
	[ -n "$(find "$dest" -name "$lib")" ] || fail "$lib not installed"
done
for tool in mmkv_dump mmkv_load mmkv_stat mmkv_copy mmkv_check; do
	[ -n "$(find "$dest" -path "*/bin/$tool")" ] || fail "tool $tool not installed"
	[ -n "$(find "$dest" -name "$tool.1")" ] || fail "man page $tool.1 not installed"
done
[ -n "$(find "$dest" -name mmkv.3)" ] || fail "man page mmkv.3 not installed"

# The .pc file names the real prefix; the sysroot variable maps it into DESTDIR.
PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$dest
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
flags=$(pkg-config --cflags --libs libmmkv) || fail "pkg-config --cflags --libs libmmkv failed"
# The build's own flags too: a sanitizer build's library needs its runtime
# linked into the program.
${CC:-cc} ${MMKV_CFLAGS:-} -o "$dest/example" "$top_srcdir/tests/readme_example.c" $flags ||
	fail "the README example does not build against the installed tree"
libdir=$(dirname "$(find "$dest" -name 'libmmkv.so' | head -n 1)")
(cd "$dest" && LD_LIBRARY_PATH=$libdir ./example) >"$dest/out" || fail "the example failed to run"
grep -q world "$dest/out" || fail "the example printed $(cat "$dest/out")"
echo "installed tree OK: $(pkg-config --modversion libmmkv)"
