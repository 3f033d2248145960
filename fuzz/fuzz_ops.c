/*
 * fuzz_ops.c - libFuzzer target: the input is a program of operations on a
 * fresh database, run against libmmkv and an in-memory model at once.
 *
 * INPUT. Byte 0 configures the environment; every later operation is an
 * opcode byte followed by the argument bytes it needs (zeros once the input
 * runs out; the program ends when no opcode byte is left).
 *
 *   byte 0   bit 0  MMKV_WRITEMAP            bits 1-2  page size 4K, 4K, 8K, 16K
 *            bit 3  database "b" is MMKV_REVERSEKEY
 *            bit 4  both databases are created with MMKV_COMPRESS (once
 *                   <mmkv.h> defines it; until then the bit does nothing)
 *            bit 5  MMKV_VERIFY              bit 6  smallest dirty-page budget (spills)
 *            bit 7  syncs on (else MMKV_NOSYNC)
 *
 *   opcode   bits 0-3 the operation, bit 4 the database (the default one or
 *            the named "b"), bits 5-7 a variant V:
 *     0 PUT key vsize vseed     V&3: plain, NOOVERWRITE, APPEND, RESERVE;
 *                               V&4: read it back
 *     1 DEL key                 2 GET key (write txn, else a fresh snapshot)
 *     3 CURSOR [key]            V: FIRST LAST NEXT PREV SET SET_KEY SET_RANGE
 *                               GET_CURRENT on the write transaction's cursor
 *     4 CURSOR_PUT key vsize vseed   V&1: MMKV_CURRENT (V&2: with another
 *                               key, which must fail with EINVAL); V&4: read back
 *     5 CURSOR_DEL              6 COMMIT (V&1: then compare everything)
 *     7 ABORT                   8 SNAPSHOT begin in slot V&1 (V&2: by reset
 *                               and renew when the slot is busy)
 *     9 SNAPSHOT read key n     slot V&1; V>>1: get, scan forward, scan
 *                               backward, SET_RANGE and n steps
 *    10 SNAPSHOT end            11 REOPEN (V&1: the other write mode)
 *    12 DROP                    V&1 on "b": delete it, or create it again;
 *                               with MMKV_COMPRESS, V&2 instead: V&4
 *                               mmkv_dict_build, else mmkv_compress_set
 *                               (threshold, saving from two argument bytes)
 *    13 CHECK                   mmkv_env_check, and compare everything
 *    14 MISUSE                  V: calls that must fail cleanly (empty and
 *                               oversize keys, unknown flags and cursor ops,
 *                               writes in a read snapshot, unpositioned cursors)
 *    15 BULK key n vsize        V&3: put, delete, APPEND, NOOVERWRITE over n
 *                               keys in key order
 *
 *   A write transaction begins implicitly with the first operation that
 *   needs one. Keys are 256 fixed keys per run, of 1 byte to the maximum key
 *   size; values are 0 bytes to a few pages (inline, at the quarter-page
 *   boundary, overflow runs), compressible or not, generated from a seed
 *   byte, so the model stores only (seed, size).
 *
 * MODEL. For each database: the committed state, the write transaction's
 * state, and for each held snapshot the committed state when it began. A
 * long-lived cursor of the write transaction follows its own state machine
 * (unpositioned, on a key, after its key was deleted, unknown), with the rule
 * that a cursor survives every change of its transaction and, after its key
 * is deleted, NEXT returns the key after it. Any return code or byte that
 * differs from the model aborts (a crash for libFuzzer); so does an
 * undefined return code. At the end the write transaction commits, every
 * snapshot is compared in full, mmkv_env_check must pass, and a read-only
 * reopen must show the committed state.
 *
 * MMKV_FUZZ_TRACE set in the environment prints each operation on stderr
 * (with fuzz/replay.c: to read what a crashing input does).
 */
#define _GNU_SOURCE
#include "fuzzutil.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define NKEYS 256
#define NDB 2
#define NSNAP 2
#define MAPSIZE (256ull << 20)
#define MAX_PSIZE 16384u
#define MAX_VALUE (2 * MAX_PSIZE + 24 * 64)

#define CFG_WRITEMAP 0x01u
#define CFG_PSIZE_SHIFT 1
#define CFG_REVERSE 0x08u
#define CFG_COMPRESS 0x10u
#define CFG_VERIFY 0x20u
#define CFG_SPILL 0x40u
#define CFG_SYNC 0x80u

#ifdef MMKV_COMPRESS
#define COMPRESS_FLAG MMKV_COMPRESS
#else
#define COMPRESS_FLAG 0u
#endif

enum { OP_PUT, OP_DEL, OP_GET, OP_CURSOR, OP_CURSOR_PUT, OP_CURSOR_DEL, OP_COMMIT, OP_ABORT,
       OP_SNAP_BEGIN, OP_SNAP_READ, OP_SNAP_END, OP_REOPEN, OP_DROP, OP_CHECK, OP_MISUSE, OP_BULK };

/* Cursor states of the write transaction's cursor: none open; open, never
 * positioned; on the key of rank wpos; its key (rank wpos) was deleted, by
 * itself (wself) or another call, so NEXT returns the key after it; a
 * position the model does not know (after NOTFOUND at an empty database). */
enum { W_NONE, W_UNPOS, W_AT, W_AFTERDEL, W_UNKNOWN };

struct entry {
	bool present;
	uint8_t vseed;
	uint32_t vsize;
};

struct dbstate {
	bool exists;
	uint32_t count;
	struct entry e[NKEYS]; /* by key id */
};

struct db {
	const char *name;           /* NULL: the default database */
	unsigned int flags;         /* creation flags */
	bool reverse;
	bool have_dbi;
	mmkv_dbi dbi;
	uint8_t order[NKEYS];       /* key ids in the database's key order */
	uint8_t rank[NKEYS];        /* key id -> rank */
	struct dbstate committed, work;
	mmkv_cursor *walker;
	int wstate, wpos;
	bool wself;
};

struct snap {
	mmkv_txn *txn;
	struct dbstate st[NDB];
};

static struct {
	const uint8_t *in;
	size_t len, pos;
	unsigned int cfg, envflags;
	uint32_t psize;
	unsigned int maxkey;
	bool stop;            /* a resource limit was met: end the run quietly */
	mmkv_env *env;
	mmkv_txn *wtxn;
	struct db db[NDB];
	struct snap snap[NSNAP];
	char path[PATH_MAX];
} S;

/* ------------------------------------------------------------ input */

static int next_op(void)
{
	return S.pos < S.len ? S.in[S.pos++] : -1;
}

static uint8_t arg(void)
{
	return S.pos < S.len ? S.in[S.pos++] : 0;
}

/* ------------------------------------------------------- keys, values */

static unsigned char *key_data[NKEYS];
static uint16_t key_size[NKEYS];
static unsigned char *key_arena;
static unsigned int key_arena_maxkey;

static size_t key_length(unsigned id)
{
	static const uint16_t lens[7] = { 1, 2, 3, 5, 12, 40, 200 };

	return (id & 7) == 7 ? S.maxkey : lens[id & 7];
}

/* Distinct by construction: 1-byte keys are the id itself; longer ones
 * hold the id in their second byte. */
static void build_keys(void)
{
	size_t total = 0;
	unsigned char *p;

	if (key_arena && key_arena_maxkey == S.maxkey)
		return;
	free(key_arena);
	for (unsigned id = 0; id < NKEYS; id++)
		total += key_length(id);
	key_arena = malloc(total);
	if (!key_arena)
		abort();
	key_arena_maxkey = S.maxkey;
	p = key_arena;
	for (unsigned id = 0; id < NKEYS; id++) {
		size_t n = key_length(id);
		key_data[id] = p;
		key_size[id] = (uint16_t)n;
		if (n == 1) {
			p[0] = (unsigned char)id;
		} else {
			p[0] = (unsigned char)('a' + id % 3);
			p[1] = (unsigned char)id;
			for (size_t i = 2; i < n; i++)
				p[i] = (unsigned char)"xyz"[(i + id / 64) % 3];
		}
		p += n;
	}
}

static int cmp_lex(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	size_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;

	return c ? c : (an < bn ? -1 : an > bn);
}

static int cmp_rev(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	size_t n = an < bn ? an : bn;

	for (size_t i = 1; i <= n; i++)
		if (a[an - i] != b[bn - i])
			return a[an - i] < b[bn - i] ? -1 : 1;
	return an < bn ? -1 : an > bn;
}

static const struct db *sorting;

static int id_cmp(const void *x, const void *y)
{
	unsigned a = *(const uint8_t *)x, b = *(const uint8_t *)y;

	return sorting->reverse ? cmp_rev(key_data[a], key_size[a], key_data[b], key_size[b])
	                        : cmp_lex(key_data[a], key_size[a], key_data[b], key_size[b]);
}

static void sort_keys(struct db *d)
{
	for (unsigned id = 0; id < NKEYS; id++)
		d->order[id] = (uint8_t)id;
	sorting = d;
	qsort(d->order, NKEYS, 1, id_cmp);
	for (unsigned r = 0; r < NKEYS; r++)
		d->rank[d->order[r]] = (uint8_t)r;
}

static mmkv_val key_val(unsigned id)
{
	mmkv_val k = { key_size[id], key_data[id] };

	return k;
}

/* Size from one byte: a class (low 3 bits) and a small offset. */
static size_t value_size(uint8_t b, unsigned id)
{
	long ps = (long)S.psize, delta = (long)(b >> 3) - 8; /* -8 .. 23 */
	long n;

	switch (b & 7) {
	case 0: n = 0; break;
	case 1: n = delta + 9; break;
	case 2: n = 100 + delta * 4; break;
	case 3: n = 400 + delta * 8; break;
	/* the largest inline value: a quarter of the usable page, less the
	 * slot, the node header and the key (see lib/format.h) */
	case 4: n = (ps - 32) / 4 - 2 - 8 - (long)key_size[id] + delta; break;
	case 5: n = ps / 2 + delta * 16; break;
	case 6: n = ps + delta * 32; break;
	default: n = 2 * ps + delta * 64; break;
	}
	return n < 0 ? 0 : n > MAX_VALUE ? MAX_VALUE : (size_t)n;
}

/* The value bytes of a seed: odd seeds give compressible bytes, even ones
 * noise. A value of n bytes is the first n bytes of its seed's stream;
 * each stream is made once per process. */
static const unsigned char *value_stream(uint8_t seed)
{
	static unsigned char *streams[256];
	unsigned char *buf = streams[seed];

	if (buf)
		return buf;
	buf = malloc(MAX_VALUE);
	if (!buf)
		abort();
	if (seed & 1) {
		size_t run = (size_t)(seed >> 1) % 7 + 1;
		for (size_t i = 0; i < MAX_VALUE; i++)
			buf[i] = (unsigned char)"abcdefgh"[(i / run + seed) % 8];
	} else {
		uint32_t x = seed * 2654435761u + 12345u;
		for (size_t i = 0; i < MAX_VALUE; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[i] = (unsigned char)x;
		}
	}
	streams[seed] = buf;
	return buf;
}

static void value_fill(uint8_t seed, unsigned char *buf, size_t n)
{
	if (n)
		memcpy(buf, value_stream(seed), n);
}

static unsigned char vbuf[MAX_VALUE];

static bool value_equal(const struct entry *e, const mmkv_val *v)
{
	fuzz_touch(v);
	return v->size == e->vsize && (e->vsize == 0 || memcmp(v->data, value_stream(e->vseed), e->vsize) == 0);
}

/* ------------------------------------------------------------- model */

static void set_entry(struct dbstate *st, unsigned id, uint8_t vseed, size_t vsize)
{
	if (!st->e[id].present)
		st->count++;
	st->e[id].present = true;
	st->e[id].vseed = vseed;
	st->e[id].vsize = (uint32_t)vsize;
}

static void clear_entry(struct dbstate *st, unsigned id)
{
	if (st->e[id].present)
		st->count--;
	st->e[id].present = false;
}

static void clear_all(struct dbstate *st)
{
	for (unsigned id = 0; id < NKEYS; id++)
		st->e[id].present = false;
	st->count = 0;
}

/* Rank of the first present key at or after rank r (after r unless incl);
 * -1 if none. */
static int succ(const struct db *d, const struct dbstate *st, int r, bool incl)
{
	for (int i = incl ? r : r + 1; i < NKEYS; i++)
		if (st->e[d->order[i]].present)
			return i;
	return -1;
}

static int pred(const struct db *d, const struct dbstate *st, int r)
{
	for (int i = r - 1; i >= 0; i--)
		if (st->e[d->order[i]].present)
			return i;
	return -1;
}

/* The rank of a key returned by the library, which must be present in st
 * with the value v. */
FUZZ_NO_COVERAGE static int locate(const struct db *d, const struct dbstate *st, const mmkv_val *k, const mmkv_val *v,
                  const char *how)
{
	fuzz_touch(k);
	for (unsigned id = 0; id < NKEYS; id++) {
		if (k->size == key_size[id] && memcmp(k->data, key_data[id], k->size) == 0) {
			FUZZ_ASSERT(st->e[id].present, "db %s: %s returned key id %u, which is absent",
			            d->name ? d->name : "default", how, id);
			FUZZ_ASSERT(value_equal(&st->e[id], v), "db %s: %s: value of key id %u differs (%zu bytes, model %u bytes seed %u)",
			            d->name ? d->name : "default", how, id, v->size, st->e[id].vsize, st->e[id].vseed);
			return d->rank[id];
		}
	}
	FUZZ_FAIL("db %s: %s returned a key of %zu bytes that was never stored",
	          d->name ? d->name : "default", how, k->size);
}

/* A positioning call whose result must be the key of rank want (-1:
 * MMKV_NOTFOUND). */
static void expect_at(const struct db *d, const struct dbstate *st, int rc, const mmkv_val *k,
                      const mmkv_val *v, int want, const char *how)
{
	if (want < 0) {
		FUZZ_ASSERT(rc == MMKV_NOTFOUND, "db %s: %s returned %d (%s), expected NOTFOUND",
		            d->name ? d->name : "default", how, rc, mmkv_strerror(rc));
		return;
	}
	FUZZ_ASSERT(rc == 0, "db %s: %s returned %d (%s), expected rank %d", d->name ? d->name : "default",
	            how, rc, mmkv_strerror(rc), want);
	FUZZ_ASSERT(locate(d, st, k, v, how) == want, "db %s: %s returned another key than rank %d",
	            d->name ? d->name : "default", how, want);
}

static void cursor_expect(const struct db *d, const struct dbstate *st, mmkv_cursor *c, mmkv_cursor_op op,
                          int want, const char *how)
{
	mmkv_val k, v;
	int rc = FUZZ_RC(mmkv_cursor_get(c, &k, &v, op));

	expect_at(d, st, rc, &k, &v, want, how);
}

static void get_expect(mmkv_txn *txn, const struct db *d, const struct dbstate *st, unsigned id)
{
	mmkv_val k = key_val(id), v;
	int rc = FUZZ_RC(mmkv_get(txn, d->dbi, &k, &v));

	if (!st->exists) {
		FUZZ_ASSERT(rc == MMKV_BAD_DBI || rc == MMKV_NOTFOUND,
		            "get in a database that does not exist returned %d (%s)", rc, mmkv_strerror(rc));
		return;
	}
	if (!st->e[id].present) {
		FUZZ_ASSERT(rc == MMKV_NOTFOUND, "db %s: get of absent key id %u returned %d (%s)",
		            d->name ? d->name : "default", id, rc, mmkv_strerror(rc));
		return;
	}
	FUZZ_ASSERT(rc == 0, "db %s: get of key id %u returned %d (%s)", d->name ? d->name : "default", id, rc,
	            mmkv_strerror(rc));
	FUZZ_ASSERT(value_equal(&st->e[id], &v), "db %s: get of key id %u: value differs",
	            d->name ? d->name : "default", id);
}

/* The whole database in txn equals st, walked forward (and backward). */
static void verify_db(mmkv_txn *txn, const struct db *d, const struct dbstate *st, bool backward)
{
	mmkv_cursor *c;
	mmkv_stat stat;
	int r, n = 0, rc;

	if (!d->have_dbi)
		return;
	rc = FUZZ_RC(mmkv_dbi_stat(txn, d->dbi, &stat));
	if (!st->exists) {
		FUZZ_ASSERT(rc == MMKV_BAD_DBI || rc == MMKV_NOTFOUND,
		            "stat of a database that does not exist returned %d (%s)", rc, mmkv_strerror(rc));
		return;
	}
	FUZZ_EXPECT(rc, 0);
	FUZZ_ASSERT(stat.entries == st->count, "db %s: stat says %llu entries, model %u",
	            d->name ? d->name : "default", (unsigned long long)stat.entries, st->count);
	FUZZ_ASSERT((stat.entries == 0) == (stat.depth == 0), "db %s: depth %u with %llu entries",
	            d->name ? d->name : "default", stat.depth, (unsigned long long)stat.entries);
	FUZZ_EXPECT(mmkv_cursor_open(txn, d->dbi, &c), 0);
	for (r = succ(d, st, 0, true); r >= 0; r = succ(d, st, r, false))
		cursor_expect(d, st, c, n++ ? MMKV_NEXT : MMKV_FIRST, r, "walk forward");
	cursor_expect(d, st, c, n ? MMKV_NEXT : MMKV_FIRST, -1, "end of walk forward");
	if (backward) {
		n = 0;
		for (r = pred(d, st, NKEYS); r >= 0; r = pred(d, st, r))
			cursor_expect(d, st, c, n++ ? MMKV_PREV : MMKV_LAST, r, "walk backward");
		cursor_expect(d, st, c, n ? MMKV_PREV : MMKV_LAST, -1, "end of walk backward");
	}
	mmkv_cursor_close(c);
}

/* SET_RANGE at key id, then steps (bit i of pattern: NEXT, else PREV). */
static void scan_from(mmkv_txn *txn, const struct db *d, const struct dbstate *st, unsigned id,
                      unsigned steps, uint8_t pattern)
{
	mmkv_cursor *c;
	mmkv_val k = key_val(id), v;
	int pos = succ(d, st, d->rank[id], true), rc;

	if (!d->have_dbi || !st->exists)
		return;
	FUZZ_EXPECT(mmkv_cursor_open(txn, d->dbi, &c), 0);
	rc = FUZZ_RC(mmkv_cursor_get(c, &k, &v, MMKV_SET_RANGE));
	expect_at(d, st, rc, &k, &v, pos, "scan SET_RANGE");
	for (unsigned i = 0; pos >= 0 && i < steps; i++) {
		bool fwd = (pattern >> (i % 8)) & 1;
		int want = fwd ? succ(d, st, pos, false) : pred(d, st, pos);
		cursor_expect(d, st, c, fwd ? MMKV_NEXT : MMKV_PREV, want, "scan step");
		if (want >= 0)
			pos = want;
	}
	mmkv_cursor_close(c);
}

static void verify_committed(bool backward)
{
	mmkv_txn *txn;

	FUZZ_EXPECT(mmkv_txn_begin(S.env, NULL, MMKV_RDONLY, &txn), 0);
	for (int i = 0; i < NDB; i++)
		verify_db(txn, &S.db[i], &S.db[i].committed, backward);
	mmkv_txn_abort(txn);
}

static void report_problem(void *ctx, uint64_t pgno, const char *problem)
{
	(void)ctx;
	fprintf(stderr, "mmkv_env_check: page %llu: %s\n", (unsigned long long)pgno, problem);
}

static void check_clean(void)
{
	mmkv_check_result res;
	uint64_t total = 0;

	FUZZ_EXPECT(mmkv_env_check(S.env, report_problem, NULL, &res), 0);
	FUZZ_ASSERT(res.problems == 0 && res.pages_tree + res.pages_free + 2 == res.pages_total,
	            "check: %llu problems, %llu tree + %llu free + 2 != %llu pages",
	            (unsigned long long)res.problems, (unsigned long long)res.pages_tree,
	            (unsigned long long)res.pages_free, (unsigned long long)res.pages_total);
	for (int i = 0; i < NDB; i++)
		if (S.db[i].committed.exists)
			total += S.db[i].committed.count;
	FUZZ_ASSERT(res.entries == total, "check counts %llu entries, the model %llu",
	            (unsigned long long)res.entries, (unsigned long long)total);
}

/* ------------------------------------------- the write transaction's cursor */

/* The walker waits after a deleted key: NEXT returns the key after it. */
static void resolve(struct db *d)
{
	int want;

	if (!d->walker || d->wstate != W_AFTERDEL)
		return;
	want = succ(d, &d->work, d->wpos, false);
	cursor_expect(d, &d->work, d->walker, MMKV_NEXT, want, "NEXT after the cursor's key was deleted");
	d->wstate = want >= 0 ? W_AT : W_UNKNOWN;
	d->wpos = want;
}

/* A change at rank r is coming: where NEXT of a walker waiting after a
 * deleted key would depend on how the cursor is kept (r lies between the
 * deleted key and the next one), resolve it first. */
static void before_change(struct db *d, int r)
{
	int s;

	if (!d->walker || d->wstate != W_AFTERDEL || r < d->wpos)
		return;
	s = succ(d, &d->work, d->wpos, false);
	if (s < 0 || r <= s)
		resolve(d);
}

static void deleted(struct db *d, int r)
{
	if (d->walker && d->wstate == W_AT && d->wpos == r) {
		d->wstate = W_AFTERDEL;
		d->wself = false;
	}
}

static void close_walker(struct db *d)
{
	mmkv_cursor_close(d->walker);
	d->walker = NULL;
	d->wstate = W_NONE;
}

/* ---------------------------------------------------- transactions */

/* A resource limit (not a bug): stop the program where it is. */
static bool limited(int rc)
{
	if (rc == MMKV_MAP_FULL || rc == ENOSPC || rc == ENOMEM) {
		S.stop = true;
		return true;
	}
	return false;
}

static void begin_write(void)
{
	if (S.wtxn)
		return;
	FUZZ_EXPECT(mmkv_txn_begin(S.env, NULL, 0, &S.wtxn), 0);
	for (int i = 0; i < NDB; i++) {
		S.db[i].work = S.db[i].committed;
		S.db[i].walker = NULL;
		S.db[i].wstate = W_NONE;
	}
}

/* The database is there to write in (beginning the transaction). */
static bool writable(struct db *d)
{
	begin_write();
	return d->work.exists && d->have_dbi;
}

static void end_write(bool commit)
{
	int rc = 0;

	if (!S.wtxn)
		return;
	if (commit)
		rc = FUZZ_RC(mmkv_txn_commit(S.wtxn));
	else
		mmkv_txn_abort(S.wtxn);
	S.wtxn = NULL;
	for (int i = 0; i < NDB; i++) {
		S.db[i].walker = NULL; /* closed with the transaction */
		S.db[i].wstate = W_NONE;
	}
	if (commit && limited(rc))
		commit = false;
	else if (commit)
		FUZZ_EXPECT(rc, 0);
	for (int i = 0; i < NDB; i++) {
		if (commit)
			S.db[i].committed = S.db[i].work;
		else
			S.db[i].work = S.db[i].committed;
	}
}

static void snap_end(int slot)
{
	mmkv_txn_abort(S.snap[slot].txn);
	S.snap[slot].txn = NULL;
}

static void snap_begin(int slot, bool renew)
{
	struct snap *s = &S.snap[slot];

	if (s->txn && renew) {
		mmkv_txn_reset(s->txn);
		FUZZ_ASSERT(mmkv_txn_id(s->txn) == 0, "a reset snapshot still has an id");
		FUZZ_EXPECT(mmkv_txn_renew(s->txn), 0);
	} else {
		if (s->txn)
			snap_end(slot);
		FUZZ_EXPECT(mmkv_txn_begin(S.env, NULL, MMKV_RDONLY, &s->txn), 0);
	}
	for (int i = 0; i < NDB; i++)
		s->st[i] = S.db[i].committed;
}

/* Open the environment and the handles of the databases the committed
 * state has; create: a new file, and both databases in its first commit. */
static void env_open(unsigned int flags, bool create)
{
	mmkv_txn *txn;
	int rc;

	FUZZ_EXPECT(mmkv_env_create(&S.env), 0);
	FUZZ_EXPECT(mmkv_env_set_maxdbs(S.env, 4), 0);
	FUZZ_EXPECT(mmkv_env_set_mapsize(S.env, MAPSIZE), 0);
	FUZZ_EXPECT(mmkv_env_set_pagesize(S.env, S.psize), 0);
	if (S.cfg & CFG_SPILL)
		FUZZ_EXPECT(mmkv_env_set_txn_memory(S.env, 64ull * S.psize), 0);
	FUZZ_EXPECT(mmkv_env_open(S.env, S.path, flags, 0644), 0);
	S.maxkey = mmkv_env_get_maxkeysize(S.env);
	FUZZ_ASSERT(S.maxkey >= 511 && S.maxkey < S.psize / 2, "max key size %u", S.maxkey);
	if (create) {
		FUZZ_EXPECT(mmkv_txn_begin(S.env, NULL, 0, &txn), 0);
		for (int i = 0; i < NDB; i++) {
			FUZZ_EXPECT(mmkv_dbi_open(txn, S.db[i].name, MMKV_CREATE | S.db[i].flags, &S.db[i].dbi), 0);
			S.db[i].have_dbi = true;
		}
		FUZZ_EXPECT(mmkv_txn_commit(txn), 0);
		return;
	}
	FUZZ_EXPECT(mmkv_txn_begin(S.env, NULL, MMKV_RDONLY, &txn), 0);
	for (int i = 0; i < NDB; i++) {
		struct db *d = &S.db[i];
		rc = FUZZ_RC(mmkv_dbi_open(txn, d->name, 0, &d->dbi));
		d->have_dbi = rc == 0;
		if (d->committed.exists)
			FUZZ_EXPECT(rc, 0);
		else
			FUZZ_EXPECT(rc, MMKV_NOTFOUND);
	}
	mmkv_txn_abort(txn);
}

static void env_close(void)
{
	for (int i = 0; i < NSNAP; i++)
		if (S.snap[i].txn)
			snap_end(i);
	end_write(false);
	mmkv_env_close(S.env);
	S.env = NULL;
}

/* ---------------------------------------------------------- operations */

static void op_put(struct db *d, unsigned v)
{
	unsigned id = arg();
	size_t size = value_size(arg(), id);
	uint8_t vseed = arg();
	unsigned how = v & 3;
	int r = d->rank[id], rc;
	mmkv_val k = key_val(id), val;

	if (!writable(d))
		return;
	before_change(d, r);
	value_fill(vseed, vbuf, size);
	val.size = size;
	val.data = how == 3 ? NULL : vbuf;
	rc = FUZZ_RC(mmkv_put(S.wtxn, d->dbi, &k, &val,
	                      how == 1 ? MMKV_NOOVERWRITE : how == 2 ? MMKV_APPEND : how == 3 ? MMKV_RESERVE : 0));
	if (limited(rc))
		return;
	if (how == 1 && d->work.e[id].present) {
		FUZZ_EXPECT(rc, MMKV_KEYEXIST);
		FUZZ_ASSERT(value_equal(&d->work.e[id], &val), "NOOVERWRITE returned another value");
		return;
	}
	if (how == 2 && pred(d, &d->work, NKEYS) >= r) {
		FUZZ_EXPECT(rc, MMKV_KEYEXIST);
		return;
	}
	FUZZ_EXPECT(rc, 0);
	if (how == 3) {
		FUZZ_ASSERT(size == 0 || val.data != NULL, "RESERVE returned no space");
		FUZZ_ASSERT(val.size == size, "RESERVE changed the size");
		value_fill(vseed, val.data, size);
	}
	set_entry(&d->work, id, vseed, size);
	if (v & 4)
		get_expect(S.wtxn, d, &d->work, id);
}

static void op_del(struct db *d)
{
	unsigned id = arg();
	mmkv_val k = key_val(id);
	int rc;

	if (!writable(d))
		return;
	before_change(d, d->rank[id]);
	rc = FUZZ_RC(mmkv_del(S.wtxn, d->dbi, &k, NULL));
	if (limited(rc))
		return;
	if (!d->work.e[id].present) {
		FUZZ_EXPECT(rc, MMKV_NOTFOUND);
		return;
	}
	FUZZ_EXPECT(rc, 0);
	clear_entry(&d->work, id);
	deleted(d, d->rank[id]);
}

static void op_get(struct db *d)
{
	unsigned id = arg();
	mmkv_txn *txn;

	if (!d->have_dbi)
		return;
	if (S.wtxn) {
		if (d->work.exists)
			get_expect(S.wtxn, d, &d->work, id);
		return;
	}
	FUZZ_EXPECT(mmkv_txn_begin(S.env, NULL, MMKV_RDONLY, &txn), 0);
	get_expect(txn, d, &d->committed, id);
	mmkv_txn_abort(txn);
}

static void open_walker(struct db *d)
{
	if (!d->walker) {
		FUZZ_EXPECT(mmkv_cursor_open(S.wtxn, d->dbi, &d->walker), 0);
		d->wstate = W_UNPOS;
	}
}

/* A call on a cursor whose position the model lost: whatever it returns
 * must be a present key with its value, and then the model knows again. */
static void relearn(struct db *d, int rc, const mmkv_val *k, const mmkv_val *v, const char *how)
{
	FUZZ_ASSERT(rc == 0 || rc == MMKV_NOTFOUND || rc == EINVAL, "%s returned %d (%s)", how, rc,
	            mmkv_strerror(rc));
	if (rc == 0) {
		d->wpos = locate(d, &d->work, k, v, how);
		d->wstate = W_AT;
	}
}

static void op_cursor(struct db *d, unsigned v)
{
	const struct dbstate *st = &d->work;
	mmkv_val k, val;
	int want, rc;
	unsigned id;

	if (!writable(d))
		return;
	open_walker(d);
	if (d->wstate == W_AFTERDEL && (v == 3 || v == 7))
		resolve(d); /* PREV and GET_CURRENT after a delete are not specified */
	switch (v) {
	case 0: /* FIRST */
	case 1: /* LAST */
		want = v == 0 ? succ(d, st, 0, true) : pred(d, st, NKEYS);
		cursor_expect(d, st, d->walker, v == 0 ? MMKV_FIRST : MMKV_LAST, want, v == 0 ? "FIRST" : "LAST");
		d->wstate = want >= 0 ? W_AT : W_UNKNOWN;
		d->wpos = want;
		break;
	case 2: /* NEXT */
	case 3: /* PREV */
		if (d->wstate == W_AFTERDEL) {
			resolve(d);
			break;
		}
		if (d->wstate == W_UNKNOWN) {
			rc = FUZZ_RC(mmkv_cursor_get(d->walker, &k, &val, v == 2 ? MMKV_NEXT : MMKV_PREV));
			relearn(d, rc, &k, &val, "NEXT/PREV from an unknown position");
			break;
		}
		if (d->wstate == W_UNPOS)
			want = v == 2 ? succ(d, st, 0, true) : pred(d, st, NKEYS);
		else
			want = v == 2 ? succ(d, st, d->wpos, false) : pred(d, st, d->wpos);
		cursor_expect(d, st, d->walker, v == 2 ? MMKV_NEXT : MMKV_PREV, want, v == 2 ? "NEXT" : "PREV");
		if (want >= 0) {
			d->wstate = W_AT;
			d->wpos = want;
		} else if (d->wstate == W_UNPOS) {
			d->wstate = W_UNKNOWN;
		} /* else: moved past an end, the cursor stays where it was */
		break;
	case 4: /* SET */
	case 5: /* SET_KEY */
	case 6: /* SET_RANGE */
		id = arg();
		k = key_val(id);
		want = v == 6 ? succ(d, st, d->rank[id], true) : st->e[id].present ? d->rank[id] : -1;
		rc = FUZZ_RC(mmkv_cursor_get(d->walker, &k, &val,
		                             v == 4 ? MMKV_SET : v == 5 ? MMKV_SET_KEY : MMKV_SET_RANGE));
		if (v == 4 && rc == 0)
			FUZZ_ASSERT(k.data == key_data[id] && k.size == key_size[id], "MMKV_SET changed the key");
		expect_at(d, st, rc, &k, &val, want, v == 4 ? "SET" : v == 5 ? "SET_KEY" : "SET_RANGE");
		if (want >= 0) {
			d->wstate = W_AT;
			d->wpos = want;
		} /* else: a failed search leaves the cursor where it was */
		break;
	default: /* GET_CURRENT */
		rc = FUZZ_RC(mmkv_cursor_get(d->walker, &k, &val, MMKV_GET_CURRENT));
		if (d->wstate == W_AT)
			expect_at(d, st, rc, &k, &val, d->wpos, "GET_CURRENT");
		else if (d->wstate == W_UNPOS)
			FUZZ_EXPECT(rc, EINVAL);
		else if (rc == 0)
			/* A present key, but the position stays unknown: after a
			 * delete, GET_CURRENT shows the key after it and NEXT
			 * returns that same key (as in LMDB). */
			locate(d, st, &k, &val, "GET_CURRENT at an unknown position");
		else
			FUZZ_ASSERT(rc == MMKV_NOTFOUND || rc == EINVAL, "GET_CURRENT returned %d (%s)", rc,
			            mmkv_strerror(rc));
		break;
	}
}

static void op_cursor_put(struct db *d, unsigned v)
{
	unsigned id = arg();
	size_t size = value_size(arg(), id);
	uint8_t vseed = arg();
	mmkv_val k, val;
	int rc;

	if (!writable(d))
		return;
	open_walker(d);
	val.size = size;
	val.data = vbuf; /* filled just before the call: checks reuse vbuf */
	if ((v & 1) && d->wstate == W_AT) {
		unsigned here = d->order[d->wpos];
		if ((v & 2) && id != here) {
			k = key_val(id);
			FUZZ_EXPECT(mmkv_cursor_put(d->walker, &k, &val, MMKV_CURRENT), EINVAL);
			return;
		}
		id = here;
		k = key_val(id);
		value_fill(vseed, vbuf, size);
		rc = FUZZ_RC(mmkv_cursor_put(d->walker, &k, &val, MMKV_CURRENT));
	} else {
		k = key_val(id);
		before_change(d, d->rank[id]);
		value_fill(vseed, vbuf, size);
		rc = FUZZ_RC(mmkv_cursor_put(d->walker, &k, &val, 0));
	}
	if (limited(rc))
		return;
	FUZZ_EXPECT(rc, 0);
	set_entry(&d->work, id, vseed, size);
	d->wstate = W_AT;
	d->wpos = d->rank[id];
	if (v & 4)
		cursor_expect(d, &d->work, d->walker, MMKV_GET_CURRENT, d->wpos, "GET_CURRENT after cursor_put");
}

static void op_cursor_del(struct db *d)
{
	int rc;

	if (!writable(d))
		return;
	open_walker(d);
	switch (d->wstate) {
	case W_UNPOS:
		FUZZ_EXPECT(mmkv_cursor_del(d->walker, 0), EINVAL);
		return;
	case W_AFTERDEL:
		if (d->wself) {
			FUZZ_EXPECT(mmkv_cursor_del(d->walker, 0), MMKV_NOTFOUND);
			return;
		}
		resolve(d);
		if (d->wstate != W_AT)
			return;
		break;
	case W_AT:
		break;
	default:
		return;
	}
	rc = FUZZ_RC(mmkv_cursor_del(d->walker, 0));
	if (limited(rc))
		return;
	FUZZ_EXPECT(rc, 0);
	clear_entry(&d->work, d->order[d->wpos]);
	d->wstate = W_AFTERDEL;
	d->wself = true;
}

static void op_snap_read(struct db *d, unsigned v)
{
	int slot = v & 1;
	unsigned id = arg(), n = arg();
	struct snap *s = &S.snap[slot];
	const struct dbstate *st = &s->st[d - S.db];

	if (!s->txn)
		snap_begin(slot, false);
	if (!d->have_dbi)
		return;
	switch (v >> 1) {
	case 0:
		get_expect(s->txn, d, st, id);
		break;
	case 1:
	case 2:
		verify_db(s->txn, d, st, (v >> 1) == 2);
		break;
	default:
		scan_from(s->txn, d, st, id, n & 15, (uint8_t)(n ^ id));
		break;
	}
}

static void op_drop(struct db *d, unsigned v)
{
	int rc;

#ifdef MMKV_COMPRESS
	if (v & 2) {
		/* Compression settings and dictionaries change no value. */
		unsigned threshold = arg() * 8u, saving = arg() % 100u;
		if (!writable(d))
			return;
		if (v & 4)
			rc = FUZZ_RC(mmkv_dict_build(S.wtxn, d->dbi));
		else
			rc = FUZZ_RC(mmkv_compress_set(S.wtxn, d->dbi, threshold, saving));
		if (limited(rc))
			return;
		if (!(d->flags & MMKV_COMPRESS))
			FUZZ_EXPECT(rc, MMKV_INCOMPATIBLE);
		else if (v & 4)
			FUZZ_ASSERT(rc == 0 || rc == MMKV_NOTFOUND, "mmkv_dict_build returned %d (%s)", rc,
			            mmkv_strerror(rc));
		else
			FUZZ_EXPECT(rc, 0);
		return;
	}
#endif
	begin_write();
	if (d->name && (!d->work.exists || !d->have_dbi)) {
		/* create it again */
		rc = FUZZ_RC(mmkv_dbi_open(S.wtxn, d->name, MMKV_CREATE | d->flags, &d->dbi));
		if (limited(rc))
			return;
		FUZZ_EXPECT(rc, 0);
		d->have_dbi = true;
		d->work.exists = true;
		clear_all(&d->work);
		return;
	}
	if (!d->work.exists)
		return;
	close_walker(d);
	rc = FUZZ_RC(mmkv_drop(S.wtxn, d->dbi, d->name && (v & 1)));
	if (limited(rc))
		return;
	FUZZ_EXPECT(rc, 0);
	clear_all(&d->work);
	if (d->name && (v & 1))
		d->work.exists = false;
}

static void op_misuse(struct db *d, unsigned v)
{
	static unsigned char longkey[65536];
	mmkv_val k = { 0, longkey }, val = { 3, "abc" };
	mmkv_cursor *c;

	if (!d->have_dbi)
		return;
	switch (v) {
	case 0: /* empty key */
	case 1: /* a key one byte over the limit */
		if (!writable(d))
			return;
		k.size = v == 0 ? 0 : S.maxkey + 1;
		FUZZ_EXPECT(mmkv_put(S.wtxn, d->dbi, &k, &val, 0), MMKV_BAD_VALSIZE);
		FUZZ_EXPECT(mmkv_del(S.wtxn, d->dbi, &k, NULL), MMKV_BAD_VALSIZE);
		break;
	case 2:
		if (!writable(d))
			return;
		FUZZ_EXPECT(mmkv_get(S.wtxn, d->dbi, &k, &val), MMKV_BAD_VALSIZE);
		break;
	case 3: /* unknown cursor op; unpositioned cursor */
	case 5:
		if (!writable(d))
			return;
		FUZZ_EXPECT(mmkv_cursor_open(S.wtxn, d->dbi, &c), 0);
		if (v == 3)
			FUZZ_EXPECT(mmkv_cursor_get(c, &k, &val, (mmkv_cursor_op)99), EINVAL);
		FUZZ_EXPECT(mmkv_cursor_get(c, &k, &val, MMKV_GET_CURRENT), EINVAL);
		FUZZ_EXPECT(mmkv_cursor_del(c, 0), EINVAL);
		mmkv_cursor_close(c);
		break;
	case 4: /* writes in a read snapshot */
		if (!S.snap[0].txn)
			snap_begin(0, false);
		k = key_val(1);
		FUZZ_EXPECT(mmkv_put(S.snap[0].txn, d->dbi, &k, &val, 0), EACCES);
		FUZZ_EXPECT(mmkv_del(S.snap[0].txn, d->dbi, &k, NULL), EACCES);
		break;
	case 6: /* MMKV_CURRENT on a cursor that is nowhere */
		if (!writable(d))
			return;
		FUZZ_EXPECT(mmkv_cursor_open(S.wtxn, d->dbi, &c), 0);
		k = key_val(2);
		FUZZ_EXPECT(mmkv_cursor_put(c, &k, &val, MMKV_CURRENT), EINVAL);
		mmkv_cursor_close(c);
		break;
	default: /* unknown flags */
		if (!writable(d))
			return;
		k = key_val(3);
		FUZZ_EXPECT(mmkv_put(S.wtxn, d->dbi, &k, &val, 0x80000000u), EINVAL);
		FUZZ_EXPECT(mmkv_cursor_open(S.wtxn, d->dbi, &c), 0);
		FUZZ_EXPECT(mmkv_cursor_del(c, 1), EINVAL);
		mmkv_cursor_close(c);
		break;
	}
}

static void op_bulk(struct db *d, unsigned v)
{
	unsigned start = arg(), n = arg() % 64 + 1;
	uint8_t vb = arg();
	int r;

	if (!writable(d))
		return;
	r = d->rank[start];
	if ((v & 3) == 2) {
		r = pred(d, &d->work, NKEYS) + 1; /* APPEND: past the last key */
		if (r >= NKEYS)
			return;
	}
	for (unsigned i = 0; i < n && !S.stop; i++, r = (r + 1) % NKEYS) {
		unsigned id = d->order[r];
		size_t size = value_size(vb, id);
		uint8_t vseed = (uint8_t)(vb + i);
		mmkv_val k = key_val(id), val = { size, vbuf };
		int rc;

		before_change(d, r);
		value_fill(vseed, vbuf, size);
		switch (v & 3) {
		case 1:
			rc = FUZZ_RC(mmkv_del(S.wtxn, d->dbi, &k, NULL));
			if (limited(rc))
				return;
			FUZZ_EXPECT(rc, d->work.e[id].present ? 0 : MMKV_NOTFOUND);
			if (rc == 0) {
				clear_entry(&d->work, id);
				deleted(d, r);
			}
			continue;
		case 2:
			if (r == NKEYS - 1)
				n = i + 1; /* the last key: stop after it */
			rc = FUZZ_RC(mmkv_put(S.wtxn, d->dbi, &k, &val, MMKV_APPEND));
			break;
		case 3:
			rc = FUZZ_RC(mmkv_put(S.wtxn, d->dbi, &k, &val, MMKV_NOOVERWRITE));
			if (rc == MMKV_KEYEXIST && d->work.e[id].present)
				continue;
			break;
		default:
			rc = FUZZ_RC(mmkv_put(S.wtxn, d->dbi, &k, &val, 0));
			break;
		}
		if (limited(rc))
			return;
		FUZZ_EXPECT(rc, 0);
		set_entry(&d->work, id, vseed, size);
	}
}

static const char *const op_names[16] = {
	"PUT", "DEL", "GET", "CURSOR", "CURSOR_PUT", "CURSOR_DEL", "COMMIT", "ABORT",
	"SNAP_BEGIN", "SNAP_READ", "SNAP_END", "REOPEN", "DROP", "CHECK", "MISUSE", "BULK"
};

static bool trace;

static void run_op(int op)
{
	struct db *d = &S.db[(op >> 4) & 1];
	unsigned v = (unsigned)op >> 5;

	if (trace) {
		fprintf(stderr, "op@%zu %s db=%s v=%u args", S.pos - 1, op_names[op & 15],
		        d->name ? d->name : "default", v);
		for (size_t i = S.pos; i < S.pos + 3 && i < S.len; i++)
			fprintf(stderr, " %u", S.in[i]);
		fprintf(stderr, "  [walker state %d pos %d]\n", d->wstate, d->wpos);
	}

	switch (op & 15) {
	case OP_PUT: op_put(d, v); break;
	case OP_DEL: op_del(d); break;
	case OP_GET: op_get(d); break;
	case OP_CURSOR: op_cursor(d, v); break;
	case OP_CURSOR_PUT: op_cursor_put(d, v); break;
	case OP_CURSOR_DEL: op_cursor_del(d); break;
	case OP_COMMIT:
		begin_write();
		end_write(true);
		if ((v & 1) && !S.stop)
			verify_committed(false);
		break;
	case OP_ABORT:
		begin_write();
		end_write(false);
		break;
	case OP_SNAP_BEGIN: snap_begin(v & 1, (v & 2) != 0); break;
	case OP_SNAP_READ: op_snap_read(d, v); break;
	case OP_SNAP_END:
		if (S.snap[v & 1].txn) {
			if (v & 2)
				for (int i = 0; i < NDB; i++)
					verify_db(S.snap[v & 1].txn, &S.db[i], &S.snap[v & 1].st[i], false);
			snap_end(v & 1);
		}
		break;
	case OP_REOPEN:
		env_close();
		S.envflags ^= (v & 1) ? MMKV_WRITEMAP : 0;
		env_open(S.envflags, false);
		if (v & 2)
			verify_committed(true);
		break;
	case OP_DROP: op_drop(d, v); break;
	case OP_CHECK:
		check_clean();
		verify_committed((v & 1) != 0);
		break;
	case OP_MISUSE: op_misuse(d, v); break;
	default: op_bulk(d, v); break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t psizes[4] = { 4096, 4096, 8192, 16384 };
	int op;

	if (size < 1)
		return 0;
	trace = getenv("MMKV_FUZZ_TRACE") != NULL;
	memset(&S.db, 0, sizeof(S.db));
	memset(&S.snap, 0, sizeof(S.snap));
	S.in = data;
	S.len = size;
	S.pos = 1;
	S.stop = false;
	S.wtxn = NULL;
	S.cfg = data[0];
	S.psize = psizes[(S.cfg >> CFG_PSIZE_SHIFT) & 3];
	S.envflags = ((S.cfg & CFG_WRITEMAP) ? MMKV_WRITEMAP : 0) | ((S.cfg & CFG_VERIFY) ? MMKV_VERIFY : 0) |
	             ((S.cfg & CFG_SYNC) ? 0 : MMKV_NOSYNC);
	if (!S.path[0])
		fuzz_path(S.path, "ops.mmkv");
	fuzz_remove_db(S.path);

	S.db[0].name = NULL;
	S.db[1].name = "b";
	S.db[1].reverse = (S.cfg & CFG_REVERSE) != 0;
	for (int i = 0; i < NDB; i++) {
		S.db[i].flags = (S.cfg & CFG_COMPRESS) ? COMPRESS_FLAG : 0;
		S.db[i].committed.exists = true;
	}
	if (S.db[1].reverse)
		S.db[1].flags |= MMKV_REVERSEKEY;

	env_open(S.envflags, true);
	build_keys();
	for (int i = 0; i < NDB; i++)
		sort_keys(&S.db[i]);

	while (!S.stop && (op = next_op()) >= 0)
		run_op(op);

	if (!S.stop)
		end_write(true);
	for (int i = 0; i < NSNAP; i++) {
		if (S.snap[i].txn && !S.stop)
			for (int j = 0; j < NDB; j++)
				verify_db(S.snap[i].txn, &S.db[j], &S.snap[i].st[j], true);
	}
	if (!S.stop) {
		verify_committed(true);
		check_clean();
	}
	env_close();
	if (!S.stop) {
		/* What was committed is what a new reader finds. */
		S.envflags = MMKV_RDONLY;
		env_open(S.envflags, false);
		verify_committed(true);
		env_close();
	}
	fuzz_remove_db(S.path);
	return 0;
}
