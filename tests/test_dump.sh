#!/bin/sh
# test_dump.sh - mmkv_dump and mmkv_load against each other and against
# LMDB's mdb_dump and mdb_load (Debian: lmdb-utils), in both text formats.
#
# The data: an awk script writes a bytevalue dump of four named databases:
# "bin" (every one-byte key 00..ff, empty values, a 1 MiB value), "ints"
# (integerkey), "text" (printable) and "pbin" (binary without backslashes,
# since LMDB 0.9.24 mishandles backslashes in print format). Checks:
#   1. LMDB -> libmmkv: mdb_load it, mdb_dump it (bytevalue -a, and print for
#      the databases without backslashes), mmkv_load that, mmkv_dump: the
#      records, database= and flag lines are identical.
#   2. libmmkv -> LMDB: mmkv_dump output loads with mdb_load, and mdb_dump
#      gives the same records again (both formats).
#   3. Print-format backslash escapes round-trip libmmkv -> libmmkv.
#   4. A bad line aborts the load: its message names the line, and the
#      database dumps exactly as before. VERSION=4 is refused the same way.
#   5. -N keeps existing values, -T loads plain text, -a appends.
#   6. Compression: mmkv_load -z compresses (mmkv_stat says so, and the file
#      compacted file is smaller); the dump holds the logical values and a compress=lz4
#      line; loading it recreates a compressed database; mdb_load reads it
#      (warning about the line) and gives the same records back;
#      compress=zstd is refused.
# Skipped (77) without mdb_load and mdb_dump.
#
# Environment: top_builddir (set by make check; default: the current directory).
set -eu

# Absolute, since the test works in a temporary directory.
build=$(cd "${top_builddir:-.}" && pwd)
dump="$build/tools/mmkv_dump"
load="$build/tools/mmkv_load"

for tool in mdb_load mdb_dump; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "test_dump: $tool not found, skipped (Debian: apt-get install lmdb-utils)"
		exit 77
	fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/test_dump.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir"

fail() {
	echo "test_dump: FAIL: $*" >&2
	exit 1
}

# The lines that must survive a round trip: records, database names, flags.
records() {
	grep -E '^( |database=|integerkey=|reversekey=|DATA=END)' "$1" || true
}

same_records() {
	records "$1" >"$1.rec"
	records "$2" >"$2.rec"
	cmp -s "$1.rec" "$2.rec" || {
		diff "$1.rec" "$2.rec" | head -20 >&2
		fail "$3: records of $1 and $2 differ"
	}
}

awk 'function hx(b) { return sprintf("%02x", b) }
function str(s,   i, out) {
	out = ""
	for (i = 1; i <= length(s); i++)
		out = out hx(ord[substr(s, i, 1)])
	return out
}
function header(name, flag) {
	print "VERSION=3"; print "format=bytevalue"; print "database=" name
	print "type=btree"; print "mapsize=67108864"; print "maxreaders=126"
	if (flag != "") print flag "=1"
	print "db_pagesize=4096"; print "HEADER=END"
}
BEGIN {
	for (i = 32; i < 127; i++) ord[sprintf("%c", i)] = i

	header("bin", "")
	for (i = 0; i < 256; i++) {
		v = ""
		for (j = 0; j < i % 7; j++) v = v hx((i * 31 + j) % 256)
		print " " hx(i); print " " v
		print " ff" hx(i) "00"; print " " hx(255 - i)
	}
	big = ""
	for (i = 0; i < 256; i++) big = big hx(i)
	while (length(big) < 2097152) big = big big
	print " ffff"; print " " big
	print "DATA=END"

	header("ints", "integerkey")
	for (i = 1; i <= 300; i++) {
		if (i % 256 == 92) continue  # a backslash byte: see above
		print " " hx(i % 256) hx(int(i / 256)) "0000"; print " " str("value " i)
	}
	print "DATA=END"

	header("text", "")
	for (i = 0; i < 200; i++) {
		print " " str(sprintf("key %04d ~!@#$%%^&*()", i)); print " " str("v" i)
	}
	print "DATA=END"

	header("pbin", "")
	for (i = 0; i < 256; i++) {
		if (i == 92) continue
		print " 00" hx(i); print " " hx(255 - i == 92 ? 0 : 255 - i) "41"
	}
	print "DATA=END"
}' >gen.txt

# ---- 1. LMDB -> libmmkv
mdb_load -n -f gen.txt lmdb.mdb 2>/dev/null || fail "mdb_load of the generated dump"
mdb_dump -n -a lmdb.mdb >lmdb.txt
"$load" -f lmdb.txt m.mmkv || fail "mmkv_load of mdb_dump output"
"$dump" -a m.mmkv >m.txt || fail "mmkv_dump -a"
same_records lmdb.txt m.txt "LMDB bytevalue -> libmmkv"
grep -q '^integerkey=1$' m.txt || fail "integerkey flag line missing"
[ "$(grep -c '^database=' m.txt)" -eq 4 ] || fail "mmkv_dump -a wrote other than 4 blocks"

# The generated dump loads the same directly.
"$load" -f gen.txt direct.mmkv || fail "mmkv_load of the generated dump"
"$dump" -a -f direct.txt direct.mmkv || fail "mmkv_dump -f"
same_records lmdb.txt direct.txt "generated dump"

for db in text pbin ints; do
	mdb_dump -n -p -s $db lmdb.mdb >lmdb.$db.p
	"$load" -f lmdb.$db.p p.mmkv || fail "mmkv_load of mdb_dump -p -s $db"
	"$dump" -p -s $db p.mmkv >p.$db.p || fail "mmkv_dump -p -s $db"
	same_records lmdb.$db.p p.$db.p "LMDB print -> libmmkv ($db)"
done

# ---- 2. libmmkv -> LMDB
mdb_load -n -f m.txt back.mdb 2>/dev/null || fail "mdb_load of mmkv_dump output"
mdb_dump -n -a back.mdb >back.txt
same_records m.txt back.txt "libmmkv bytevalue -> LMDB"
for db in text pbin; do
	mdb_load -n -f p.$db.p backp.mdb 2>/dev/null || fail "mdb_load of mmkv_dump -p -s $db"
	mdb_dump -n -p -s $db backp.mdb >backp.$db.p
	same_records p.$db.p backp.$db.p "libmmkv print -> LMDB ($db)"
done

# ---- 3. backslashes in print format, libmmkv -> libmmkv
"$dump" -p -s bin m.mmkv >bin.p
grep -q '^ \\\\$' bin.p || fail "a backslash key is not written as \\\\"
"$load" -f bin.p bs.mmkv || fail "mmkv_load of print format with backslashes"
"$dump" -s bin bs.mmkv >bs.txt
"$dump" -s bin m.mmkv >bin.txt
same_records bin.txt bs.txt "print-format backslashes"
# \5c is a backslash too, and upper-case hex digits are accepted.
printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n a\\5cb\n \\5C\\\\\nDATA=END\n' >esc.p
"$load" -f esc.p esc.mmkv || fail "mmkv_load of \\5c"
"$dump" esc.mmkv | grep -qx ' 615c62' || fail "\\5c in a key not read as a backslash"
"$dump" esc.mmkv | grep -qx ' 5c5c' || fail "\\5C\\\\ in a value not read as two backslashes"

# ---- 4. a bad line commits nothing
"$dump" -a m.mmkv >before.txt
{
	printf 'VERSION=3\nformat=bytevalue\ndatabase=new\ntype=btree\nHEADER=END\n'
	printf ' 6b31\n 7631\nDATA=END\n'
	printf 'VERSION=3\nformat=bytevalue\ndatabase=bin\ntype=btree\nHEADER=END\n'
	printf ' 00\n 7a7a7a\n 6b32\n 763\nDATA=END\n'
} >bad.txt
if "$load" -f bad.txt m.mmkv 2>bad.err; then
	fail "a load with an odd number of hex digits succeeded"
fi
grep -q 'bad.txt:17: odd number of hex digits' bad.err || {
	cat bad.err >&2
	fail "the error does not name line 17"
}
"$dump" -a m.mmkv >after.txt
cmp -s before.txt after.txt || fail "a failed load changed the database"

printf 'VERSION=4\nformat=bytevalue\ntype=btree\nHEADER=END\nDATA=END\n' >v4.txt
if "$load" -f v4.txt m.mmkv 2>v4.err; then
	fail "VERSION=4 accepted"
fi
grep -q 'v4.txt:1: unsupported VERSION=4' v4.err || fail "VERSION=4 error does not name line 1"
printf 'VERSION=3\nformat=bytevalue\ntype=btree\nnovel=1\nHEADER=END\n 61\n 62\nDATA=END\n' >novel.txt
"$load" -f novel.txt novel.mmkv 2>novel.err || fail "an unknown header key is an error"
grep -q 'novel.txt:4: unknown header key ignored: novel' novel.err || fail "no warning for an unknown key"

# ---- 5. -N, -T, -a
printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n key 0001 ~!@#$%%^&*()\n changed\n zzz\n new\nDATA=END\n' >n.p
"$load" -N -s text -f n.p m.mmkv || fail "mmkv_load -N"
"$dump" -p -s text m.mmkv >n.out
grep -qx ' v1' n.out || fail "-N overwrote an existing value"
grep -qx ' changed' n.out && fail "-N stored the new value"
grep -qx ' zzz' n.out || fail "-N did not add a new key"

printf 'alpha\none\nbeta\\0a\n\ngamma\\\\\n\\00\\ff\n' | "$load" -T -s plain t.mmkv || fail "mmkv_load -T"
"$dump" -s plain t.mmkv >t.txt
[ "$(records t.txt | tr '\n' ,)" = "database=plain, 616c706861, 6f6e65, 626574610a, , 67616d6d615c, 00ff,DATA=END," ] || {
	cat t.txt >&2
	fail "-T records"
}

"$dump" -s text lmdb2.mmkv >/dev/null 2>&1 && fail "mmkv_dump of a missing file succeeded"
"$load" -a -f lmdb.text.p a.mmkv || fail "mmkv_load -a of sorted input"
"$dump" -p -s text a.mmkv >a.p
same_records lmdb.text.p a.p "append mode"
printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n b\n 1\n a\n 2\nDATA=END\n' >unsorted.p
"$load" -a -f unsorted.p u.mmkv 2>u.err && fail "mmkv_load -a of unsorted input succeeded"
grep -q 'unsorted.p:7: ' u.err || fail "-a error does not name line 7"

"$dump" -l m.mmkv >names.txt
[ "$(tr '\n' ,  <names.txt)" = "bin,ints,new,pbin,text," ] && fail "the failed load created database new"
[ "$(tr '\n' ,  <names.txt)" = "bin,ints,pbin,text," ] || fail "mmkv_dump -l: $(cat names.txt)"

"$dump" --help | grep -q '^usage: mmkv_dump' || fail "mmkv_dump --help"
"$load" -V | grep -q libmmkv || fail "mmkv_load -V"
"$load" -x m.mmkv 2>/dev/null && fail "mmkv_load accepted -x"

# ---- 6. compressed databases
stat="$build/tools/mmkv_stat"
awk 'BEGIN {
	print "VERSION=3"; print "format=print"; print "database=pkgs"; print "type=btree"
	print "HEADER=END"
	for (i = 0; i < 2000; i++) {
		printf " package-%05d\n", i
		printf " Package: package-%05d\\0aVersion: 1.%d-%d\\0aArchitecture: amd64\\0aMaintainer: Team %d <team%d@example.org>\\0aDescription: a package of the test corpus, number %d\n", i, i % 13, i % 5, i % 17, i % 17, i
	}
	print "DATA=END"
}' >pkgs.p
"$load" -f pkgs.p plainpk.mmkv || fail "mmkv_load of the package dump"
"$load" -z -f pkgs.p zpk.mmkv || fail "mmkv_load -z"
"$stat" -s pkgs zpk.mmkv | grep -q 'Compression: lz4' || fail "mmkv_stat does not report compression"
"$stat" -s pkgs zpk.mmkv | grep -q 'Dictionaries: 1 ' || fail "no dictionary was built"
"$stat" -s pkgs plainpk.mmkv | grep -q 'Compression' && fail "mmkv_stat reports compression of a plain database"
mmkv_copy="$build/tools/mmkv_copy"
"$mmkv_copy" -c zpk.mmkv zpk.copy || fail "mmkv_copy -c of a compressed database"
"$mmkv_copy" -c plainpk.mmkv plainpk.copy || fail "mmkv_copy -c"
zsize=$(wc -c <zpk.copy)
psize=$(wc -c <plainpk.copy)
[ "$zsize" -lt "$psize" ] || fail "compressed copy $zsize bytes, plain $psize: not smaller"
"$dump" -p -s pkgs zpk.mmkv >z.p || fail "mmkv_dump of a compressed database"
grep -qx 'compress=lz4' z.p || fail "no compress=lz4 line in the dump"
"$dump" -p -s pkgs plainpk.mmkv >plain.p
grep -q '^compress=' plain.p && fail "compress= line in the dump of a plain database"
same_records plain.p z.p "compressed dump"
"$load" -f z.p z2.mmkv || fail "mmkv_load of a compressed dump"
"$stat" -s pkgs z2.mmkv | grep -q 'Compression: lz4' || fail "compress=lz4 did not recreate a compressed database"
"$dump" -p -s pkgs z2.mmkv >z2.p
same_records z.p z2.p "compressed reload"
"$dump" -s pkgs zpk.mmkv >z.txt
mdb_load -n -f z.txt zl.mdb 2>zl.err || fail "mdb_load of a compressed database's dump"
mdb_dump -n -s pkgs zl.mdb >zl.txt
same_records z.txt zl.txt "compressed dump -> LMDB"
sed 's/^compress=lz4$/compress=zstd/' z.p >zstd.p
"$load" -f zstd.p zstd.mmkv 2>zstd.err && fail "compress=zstd accepted"
grep -q 'unsupported compress=zstd' zstd.err || fail "compress=zstd error message"

echo "test_dump: all checks passed"
