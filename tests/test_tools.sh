#!/bin/sh
# test_tools.sh - mmkv_stat, mmkv_check and mmkv_copy on databases built by
# tests/mkdb: the figures they print match what mkdb wrote, the checker
# finds one damaged byte, hot copies taken while mkdb writes are clean and
# compaction shrinks them, and usage and errors follow the common rules
# (--help exit 0, bad usage exit 1, errors name the file).
#
# Environment: top_builddir (set by make check; default: the current
# directory), where the tools and tests/mkdb were built.
set -u

bld=${top_builddir:-.}
stat=$bld/tools/mmkv_stat
check=$bld/tools/mmkv_check
copy=$bld/tools/mmkv_copy
mkdb=$bld/tests/mkdb
N=500

dir=$(mktemp -d "${TMPDIR:-/tmp}/test_tools.XXXXXX") || exit 1
bgpid= bgpid2=
trap 'kill $bgpid $bgpid2 2>/dev/null; rm -rf "$dir"' EXIT
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run CMD...: run a tool, keeping its exit status in $rc and its output in
# $dir/out and $dir/err.
run() {
	"$@" >"$dir/out" 2>"$dir/err"
	rc=$?
}

# expect STATUS PATTERN WHAT: the last run exited STATUS and its stdout has a
# line matching the extended regular expression PATTERN.
expect() {
	if [ "$rc" -ne "$1" ]; then
		fail "$3: exit status $rc, expected $1"; cat "$dir/out" "$dir/err" >&2
	elif ! grep -Eq -- "$2" "$dir/out"; then
		fail "$3: no line matches '$2' in:"; cat "$dir/out" >&2
	fi
}

# expect_err PATTERN WHAT: the last run exited 1 with PATTERN on stderr.
expect_err() {
	if [ "$rc" -ne 1 ]; then
		fail "$2: exit status $rc, expected 1"
	elif ! grep -Fq -- "$1" "$dir/err"; then
		fail "$2: stderr lacks '$1':"; cat "$dir/err" >&2
	fi
}

# field NAME: the value of the "  NAME: value" line of the last run's stdout
# (the first one).
field() {
	sed -n "s/^ *$1: //p" "$dir/out" | head -n 1
}

# ---- usage, version, errors naming the file

for tool in "$stat" "$check" "$copy"; do
	name=$(basename "$tool")
	run "$tool" --help
	expect 0 "^usage: $name" "$name --help"
	run "$tool" -V
	expect 0 "libmmkv [0-9]+\.[0-9]+\.[0-9]+" "$name -V"
	run "$tool" -Z
	[ "$rc" -eq 1 ] && grep -q "^usage: $name" "$dir/err" || fail "$name -Z: exit $rc, no usage on stderr"
	run "$tool"
	[ "$rc" -eq 1 ] || fail "$name without arguments: exit $rc"
done
run "$stat" "$dir/missing.mmkv"
expect_err "$dir/missing.mmkv" "mmkv_stat of a missing file"
run "$check" "$dir/missing.mmkv"
expect_err "$dir/missing.mmkv" "mmkv_check of a missing file"
run "$copy" "$dir/missing.mmkv" "$dir/never.mmkv"
expect_err "$dir/missing.mmkv" "mmkv_copy of a missing file"
run "$stat" -a -s alpha "$dir/missing.mmkv"
[ "$rc" -eq 1 ] || fail "mmkv_stat -a -s: exit $rc"

# ---- a known database

db=$dir/db.mmkv
"$mkdb" "$db" $N || { echo "FAIL: mkdb could not build $db" >&2; exit 1; }

run "$stat" "$db"
expect 0 "^Status of Main DB" "mmkv_stat"
[ "$(field Entries)" = $N ] || fail "mmkv_stat: entries $(field Entries), expected $N"
[ "$(field 'Overflow pages')" -ge $((N / 10 * 3)) ] || fail "mmkv_stat: overflow pages $(field 'Overflow pages')"
[ "$(field 'Leaf pages')" -ge 2 ] && [ "$(field 'Tree depth')" -ge 2 ] ||
	fail "mmkv_stat: a tree of $N keys has one page"

run "$stat" -s alpha "$db"
expect 0 "^Status of alpha" "mmkv_stat -s alpha"
[ "$(field Entries)" = $((N / 2)) ] || fail "mmkv_stat -s alpha: entries $(field Entries)"
run "$stat" -s nosuch "$db"
expect_err "nosuch" "mmkv_stat -s of a missing database"

run "$stat" -a "$db"
expect 0 "^Status of beta" "mmkv_stat -a"
[ "$(grep -c '^Status of' "$dir/out")" -eq 3 ] || fail "mmkv_stat -a: not 3 databases"
[ "$(sed -n 's/^ *Entries: //p' "$dir/out" | tr '\n' ' ')" = "$N $((N / 2)) 3 " ] ||
	fail "mmkv_stat -a: entries $(sed -n 's/^ *Entries: //p' "$dir/out" | tr '\n' ' ')"

run "$stat" -e "$db"
expect 0 "^  UUID: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$" "mmkv_stat -e"
psize=$(field 'Page size')
inuse=$(field 'Pages in use')
fsize=$(field 'File size')
[ "$((inuse * psize))" -le "$fsize" ] || fail "mmkv_stat -e: $inuse pages of $psize in $fsize bytes"
[ "$(wc -c <"$db")" -eq "$fsize" ] || fail "mmkv_stat -e: file size $fsize, ls says $(wc -c <"$db")"
[ "$(field 'Last transaction ID')" -ge 1 ] || fail "mmkv_stat -e: no transaction"
[ "$(field 'Readers in use')" -ge 0 ] || fail "mmkv_stat -e: no reader count"

run "$stat" -f "$db"
expect 0 "^  Free pages: [0-9]+$" "mmkv_stat -f"
[ "$(field 'Free bytes')" = $(($(field 'Free pages') * psize)) ] || fail "mmkv_stat -f: bytes"

# Reader table: none, then two snapshots held by mkdb; then one of them is
# killed, leaving its slot behind (the other process keeps the lock file in
# use: a database nobody has open starts with an empty reader table), and
# -rr clears that slot.
run "$stat" -r "$db"
expect 0 "no active readers" "mmkv_stat -r without readers"
"$mkdb" -r 30 "$db" >"$dir/reader1" &
bgpid=$!
"$mkdb" -r 30 "$db" >"$dir/reader2" &
bgpid2=$!
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	grep -q reading "$dir/reader1" && grep -q reading "$dir/reader2" && break
	sleep 0.2
done
snap=$(sed -n 's/reading //p' "$dir/reader1")
run "$stat" -r "$db"
expect 0 "^ +[0-9]+ +$bgpid +[0-9]+ +$snap +0 +0$" "mmkv_stat -r, first reader"
expect 0 "^ +[0-9]+ +$bgpid2 +[0-9]+ +$snap +0 +0$" "mmkv_stat -r, second reader"
kill -KILL "$bgpid2"; wait "$bgpid2" 2>/dev/null; bgpid2=
run "$stat" -rr "$db"
expect 0 "Stale readers cleared: 1$" "mmkv_stat -rr"
[ "$(grep -c "^ *[0-9]* *$bgpid " "$dir/out")" -eq 2 ] || fail "mmkv_stat -rr: live reader not listed twice"
run "$stat" -rr "$db"
expect 0 "Stale readers cleared: 0$" "mmkv_stat -rr again"
kill "$bgpid"; wait "$bgpid" 2>/dev/null; bgpid=

run "$check" -v "$db"
expect 0 "^Entries: $((N + N / 2 + 3))$" "mmkv_check -v"
[ "$(wc -l <"$dir/out")" -eq 4 ] || fail "mmkv_check -v: more than the totals printed"
run "$check" "$db"
[ "$rc" -eq 0 ] && [ ! -s "$dir/out" ] && [ ! -s "$dir/err" ] || fail "mmkv_check: not silent on a clean database"

# ---- one damaged byte: the value mkdb wrote once, found by its contents

bad=$dir/bad.mmkv
cp "$db" "$bad"
marker='<<mkdb-marker>>!'
[ "$(grep -c -a -F -- "$marker" "$bad")" -eq 1 ] || fail "the marker is not in the file once"
off=$(grep -a -b -o -F -- "$marker" "$bad" | head -n 1 | cut -d: -f1)
printf 'X' | dd of="$bad" bs=1 seek="$off" conv=notrunc 2>/dev/null
run "$check" "$bad"
expect 1 "^page $((off / psize)) " "mmkv_check of a damaged page"
tail -n 1 "$dir/out" | grep -Eq "^$bad: [0-9]+ problems?$" || fail "mmkv_check: last line '$(tail -n 1 "$dir/out")'"

# ---- hot copies while mkdb writes

"$mkdb" -w 3 "$db" $N >"$dir/writer" 2>&1 &
bgpid=$!
run "$stat" -e "$db"
start=$(field 'Last transaction ID')
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	run "$stat" -e "$db"
	[ "$(field 'Last transaction ID')" -gt $((start + 5)) ] && break
	sleep 0.1
done
plain=$dir/plain.mmkv
compact=$dir/compact.mmkv
run "$copy" "$db" "$plain"
[ "$rc" -eq 0 ] && [ ! -s "$dir/err" ] || { fail "mmkv_copy: exit $rc"; cat "$dir/err" >&2; }
run "$copy" -c -n "$db" "$compact"
[ "$rc" -eq 0 ] && [ ! -s "$dir/err" ] || { fail "mmkv_copy -c: exit $rc"; cat "$dir/err" >&2; }
run "$stat" -e "$db"
[ "$(field 'Last transaction ID')" -gt $((start + 5)) ] || fail "mkdb -w made no commits during the copies"
wait "$bgpid" || { fail "mkdb -w failed"; cat "$dir/writer" >&2; }
bgpid=

run "$copy" "$db" "$plain"
expect_err "$plain" "mmkv_copy to an existing file"

for c in "$plain" "$compact"; do
	run "$check" -v "$c"
	expect 0 "^Entries: $((N + N / 2 + 3))$" "mmkv_check -v of copy $c"
	run "$stat" -a "$c"
	[ "$(sed -n 's/^ *Entries: //p' "$dir/out" | tr '\n' ' ')" = "$N $((N / 2)) 3 " ] ||
		fail "mmkv_stat -a of copy $c: entries $(sed -n 's/^ *Entries: //p' "$dir/out" | tr '\n' ' ')"
done
run "$check" -v "$compact"
tree=$(field 'Pages in trees')
[ "$(field 'Pages free')" -eq 0 ] || fail "compact copy has $(field 'Pages free') free pages"
csize=$(wc -c <"$compact")
[ "$csize" -le $(((tree + 2) * psize)) ] || fail "compact copy: $csize bytes for $tree tree pages"
[ "$csize" -lt "$(wc -c <"$plain")" ] || fail "compact copy is not smaller than the plain one"
run "$stat" -f "$plain"
[ "$(field 'Free pages')" -gt 0 ] || fail "plain copy lost the free pages"

[ "$failures" -eq 0 ] || { echo "$failures failures" >&2; exit 1; }
echo "test_tools: all passed"
