/*
 * test_model.c - the randomised model test: libmmkv against an in-memory
 * oracle, through <mmkv.h> only.
 *
 * Six databases (the default one, bytewise; "named", bytewise, emptied and
 * deleted and recreated now and then; "int4" and "int8", MMKV_INTEGERKEY with
 * 4- and 8-byte keys; "rev", MMKV_REVERSEKEY; "zipped", MMKV_COMPRESS, whose
 * values are compressed where that pays and whose dictionaries are built as
 * it passes 512 entries) take a long random sequence of
 * operations: puts (values of 0 bytes to several pages, keys of 1 byte to the
 * maximum key size, plain, MMKV_NOOVERWRITE, MMKV_APPEND, MMKV_RESERVE),
 * deletes, gets, a long-lived cursor per database that walks both ways,
 * replaces (MMKV_CURRENT) and deletes under it while other calls change the
 * tree (its next step must be the key after the deleted one), short range
 * scans, drops; transactions commit or abort, and spill dirty pages past a
 * small memory budget (128 pages; not used with MMKV_WRITEMAP); the
 * environment is closed and reopened now and then (mostly with MMKV_NOSYNC,
 * which only saves time here). After every transaction the
 * keys it touched are compared with the oracle, every few transactions all
 * databases are walked both ways and compared, a read snapshot taken before a
 * write transaction must still show the old state after its commit, and
 * mmkv_env_check must pass.
 *
 * Each key universe is generated up front and sorted by the database's
 * order, so the oracle is an array indexed by rank: present?, value seed,
 * value length. Values are made from their seed by value_fill and never
 * stored: half of them (even seeds) repeat a short pattern, so that they
 * compress, the others are pseudo-random bytes, so that they do not.
 *
 * Environment: MMKV_TEST_SEED (default time-based; always printed),
 * MMKV_MODEL_OPS (operations per write mode, default 1000000),
 * MMKV_MODEL_CHECK_EVERY (transactions between mmkv_env_check, default 10),
 * MMKV_MODEL_VERIFY_EVERY (transactions between full comparisons, default 4).
 *
 * Runs twice: default write mode and MMKV_WRITEMAP.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mmkv.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))

static uint64_t seed;
static uint64_t ops_per_mode = 1000000;
static unsigned int check_every = 10;
static unsigned int verify_every = 4;

/* Where we are, for failure messages. */
static uint64_t cur_txn, cur_op;
static const char *cur_what = "";

#define MFAIL(...)                                                                            \
	do {                                                                                  \
		print_error("model: seed %" PRIu64 " mode %s txn %" PRIu64 " op %" PRIu64 " (%s)\n", \
		            seed, test_env_flags ? "writemap" : "default", cur_txn, cur_op,   \
		            cur_what);                                                        \
		fail_msg(__VA_ARGS__);                                                        \
	} while (0)

#define MCHECK_RC(expr, want)                                                                 \
	do {                                                                                  \
		int rc_ = (expr);                                                             \
		int want_ = (want);                                                           \
		if (rc_ != want_)                                                             \
			MFAIL("%s returned %d (%s), expected %d (%s)", #expr, rc_,            \
			      mmkv_strerror(rc_), want_, mmkv_strerror(want_));               \
	} while (0)

/* ------------------------------------------------------------ universes */

enum kind { K_BYTES, K_REV, K_INT4, K_INT8 };

typedef struct universe {
	size_t n;
	unsigned char **key;
	uint16_t *klen;
} universe;

static int rev_cmp(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	size_t n = an < bn ? an : bn;

	for (size_t i = 1; i <= n; i++)
		if (a[an - i] != b[bn - i])
			return a[an - i] < b[bn - i] ? -1 : 1;
	return an < bn ? -1 : an > bn;
}

static int fwd_cmp(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	return c ? c : (an < bn ? -1 : an > bn);
}

static enum kind sort_kind;

static int key_cmp(const unsigned char *a, size_t an, const unsigned char *b, size_t bn)
{
	switch (sort_kind) {
	case K_REV:
		return rev_cmp(a, an, b, bn);
	case K_INT4: {
		uint32_t x, y;
		memcpy(&x, a, 4);
		memcpy(&y, b, 4);
		return x < y ? -1 : x > y;
	}
	case K_INT8: {
		uint64_t x, y;
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		return x < y ? -1 : x > y;
	}
	default:
		return fwd_cmp(a, an, b, bn);
	}
}

struct ukey {
	unsigned char *p;
	uint16_t n;
};

static int ukey_cmp(const void *a, const void *b)
{
	const struct ukey *x = a, *y = b;

	return key_cmp(x->p, x->n, y->p, y->n);
}

static size_t key_length(test_rng *r, unsigned int maxkey)
{
	uint64_t x = rng_below(r, 1000);

	if (x < 20)
		return 1;
	if (x < 30)
		return maxkey;
	if (x < 300)
		return rng_range(r, 2, 6);
	if (x < 700)
		return rng_range(r, 7, 24);
	if (x < 900)
		return rng_range(r, 25, 120);
	return rng_range(r, 121, maxkey - 1);
}

static void universe_build(universe *u, enum kind kind, size_t n, unsigned int maxkey, test_rng *r)
{
	struct ukey *tmp = calloc(n, sizeof(*tmp));
	size_t m = 0;

	assert_non_null(tmp);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		if (kind == K_INT4 || kind == K_INT8) {
			uint64_t v;
			switch (rng_below(r, 4)) {
			case 0: v = rng_below(r, 4096); break;
			case 1: v = rng_next(r) | (1ull << 63); break;
			case 2: v = rng_below(r, 4) * 256 + 255; break;
			default: v = rng_next(r) >> rng_below(r, 64); break;
			}
			len = kind == K_INT4 ? 4 : 8;
			tmp[i].p = malloc(len);
			assert_non_null(tmp[i].p);
			if (kind == K_INT4) {
				uint32_t w = (uint32_t)(v ^ (v >> 32));
				memcpy(tmp[i].p, &w, 4);
			} else {
				memcpy(tmp[i].p, &v, 8);
			}
		} else {
			len = key_length(r, maxkey);
			tmp[i].p = malloc(len);
			assert_non_null(tmp[i].p);
			if (rng_pct(r, 50)) {
				/* few letters: long shared prefixes and suffixes */
				for (size_t j = 0; j < len; j++)
					tmp[i].p[j] = (unsigned char)"abc"[rng_below(r, 3)];
			} else {
				rng_fill(r, tmp[i].p, len);
			}
		}
		tmp[i].n = (uint16_t)len;
	}
	sort_kind = kind;
	qsort(tmp, n, sizeof(*tmp), ukey_cmp);
	u->key = calloc(n, sizeof(*u->key));
	u->klen = calloc(n, sizeof(*u->klen));
	assert_non_null(u->key);
	assert_non_null(u->klen);
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && key_cmp(u->key[m - 1], u->klen[m - 1], tmp[i].p, tmp[i].n) == 0) {
			free(tmp[i].p);
			continue;
		}
		u->key[m] = tmp[i].p;
		u->klen[m] = tmp[i].n;
		m++;
	}
	u->n = m;
	free(tmp);
}

static void universe_free(universe *u)
{
	for (size_t i = 0; i < u->n; i++)
		free(u->key[i]);
	free(u->key);
	free(u->klen);
}

/* -------------------------------------------------------------- oracle */

typedef struct dbstate {
	unsigned char *present;
	uint64_t *vseed;
	uint32_t *vlen;
	uint64_t count;
	bool exists;
} dbstate;

/* Walker states: none open; open, never positioned; on key wpos; its key
 * wpos was deleted (NEXT must return the key after it, resolved before any
 * change near that position); position unknown (after NOTFOUND of SET...). */
enum { W_NONE, W_UNPOS, W_AT, W_AFTERDEL, W_UNKNOWN };

typedef struct mdb {
	const char *name;      /* NULL: the default database */
	enum kind kind;
	unsigned int flags;    /* dbi_open key flags */
	universe u;
	mmkv_dbi dbi;
	dbstate work, committed, snap;
	/* the long-lived cursor of the current write transaction */
	mmkv_cursor *walker;
	int wstate;
	size_t wpos;
} mdb;

#define NDB 6
static mdb dbs[NDB];

static void dbstate_alloc(dbstate *s, size_t n)
{
	s->present = calloc(n, 1);
	s->vseed = calloc(n, sizeof(*s->vseed));
	s->vlen = calloc(n, sizeof(*s->vlen));
	assert_true(s->present && s->vseed && s->vlen);
	s->count = 0;
	s->exists = false;
}

static void dbstate_free(dbstate *s)
{
	free(s->present);
	free(s->vseed);
	free(s->vlen);
}

static void dbstate_copy(dbstate *dst, const dbstate *src, size_t n)
{
	memcpy(dst->present, src->present, n);
	memcpy(dst->vseed, src->vseed, n * sizeof(*dst->vseed));
	memcpy(dst->vlen, src->vlen, n * sizeof(*dst->vlen));
	dst->count = src->count;
	dst->exists = src->exists;
}

static long succ(const mdb *d, const dbstate *s, long rank, bool incl)
{
	for (size_t i = (size_t)(incl ? rank : rank + 1); i < d->u.n; i++)
		if (s->present[i])
			return (long)i;
	return -1;
}

static long pred(const dbstate *s, long rank)
{
	for (long i = rank - 1; i >= 0; i--)
		if (s->present[i])
			return i;
	return -1;
}

/* ------------------------------------------------------------- values */

static unsigned char *vbuf;
static size_t vbuf_cap;

/* The value of seed vs, n bytes: see the file comment. */
static void value_fill(uint64_t vs, unsigned char *buf, size_t n)
{
	const size_t period = 24 + vs % 40;

	if (vs % 2 || n <= period) {
		pattern_fill(vs, buf, n);
		return;
	}
	pattern_fill(vs, buf, period);
	for (size_t i = period; i < n; i++)
		buf[i] = buf[i - period];
}

static bool value_equal(uint64_t vs, const unsigned char *buf, size_t n)
{
	const size_t period = 24 + vs % 40;

	if (vs % 2 || n <= period)
		return pattern_equal(vs, buf, n);
	if (!pattern_equal(vs, buf, period))
		return false;
	for (size_t i = period; i < n; i++)
		if (buf[i] != buf[i - period])
			return false;
	return true;
}

static unsigned char *value_bytes(uint64_t vs, size_t n)
{
	if (n > vbuf_cap) {
		free(vbuf);
		vbuf_cap = n + 65536;
		vbuf = malloc(vbuf_cap);
		assert_non_null(vbuf);
	}
	value_fill(vs, vbuf, n);
	return vbuf;
}

static size_t value_size(test_rng *r, size_t ps)
{
	uint64_t x = rng_below(r, 1000);

	if (x < 80)
		return 0;
	if (x < 480)
		return rng_range(r, 1, 32);
	if (x < 730)
		return rng_range(r, 33, 300);
	if (x < 880)
		return rng_range(r, 301, ps / 4 + 64); /* around the inline limit */
	if (x < 960)
		return rng_range(r, ps / 4 + 64, ps + 64);
	if (x < 996)
		return rng_range(r, ps + 65, 4 * ps);
	return rng_range(r, 4 * ps, 16 * ps); /* several pages */
}

/* --------------------------------------------------------- comparisons */

static void expect_entry(const mdb *d, const dbstate *s, long rank, const mmkv_val *k, const mmkv_val *v,
                         const char *how)
{
	if (k && (k->size != d->u.klen[rank] || memcmp(k->data, d->u.key[rank], k->size) != 0)) {
		long found = -1;
		for (size_t i = 0; i < d->u.n; i++)
			if (k->size == d->u.klen[i] && memcmp(k->data, d->u.key[i], k->size) == 0)
				found = (long)i;
		MFAIL("db %s: %s returned the key of rank %ld (size %zu), expected rank %ld",
		      d->name ? d->name : "(default)", how, found, k->size, rank);
	}
	if (v->size != s->vlen[rank])
		MFAIL("db %s: %s: value of rank %ld has %zu bytes, expected %u",
		      d->name ? d->name : "(default)", how, rank, v->size, s->vlen[rank]);
	if (!value_equal(s->vseed[rank], v->data, v->size))
		MFAIL("db %s: %s: value bytes of rank %ld differ", d->name ? d->name : "(default)", how,
		      rank);
}

/* Position-changing cursor op with an expected rank (-1: NOTFOUND). */
static void cursor_expect(const mdb *d, const dbstate *s, mmkv_cursor *c, mmkv_cursor_op op, long want,
                          const char *how)
{
	mmkv_val k, v;
	int rc = mmkv_cursor_get(c, &k, &v, op);

	if (want < 0) {
		if (rc != MMKV_NOTFOUND)
			MFAIL("db %s: %s: expected NOTFOUND, got %d (%s)", d->name ? d->name : "(default)",
			      how, rc, mmkv_strerror(rc));
		return;
	}
	if (rc != 0)
		MFAIL("db %s: %s: expected rank %ld, got %d (%s)", d->name ? d->name : "(default)", how,
		      want, rc, mmkv_strerror(rc));
	expect_entry(d, s, want, &k, &v, how);
}

static void get_expect(const mdb *d, const dbstate *s, mmkv_txn *txn, long rank, const char *how)
{
	mmkv_val k = mkval(d->u.key[rank], d->u.klen[rank]), v;
	int rc = mmkv_get(txn, d->dbi, &k, &v);

	if (!s->present[rank]) {
		if (rc != MMKV_NOTFOUND)
			MFAIL("db %s: %s of absent rank %ld returned %d (%s)",
			      d->name ? d->name : "(default)", how, rank, rc, mmkv_strerror(rc));
		return;
	}
	if (rc != 0)
		MFAIL("db %s: %s of rank %ld returned %d (%s)", d->name ? d->name : "(default)", how, rank,
		      rc, mmkv_strerror(rc));
	expect_entry(d, s, rank, NULL, &v, how);
}

/* The whole database in txn equals state s (forward walk; backward too). */
static void verify_db(mdb *d, const dbstate *s, mmkv_txn *txn, bool backward)
{
	mmkv_cursor *c;
	mmkv_stat st;
	long r;
	uint64_t n = 0;

	if (!s->exists) {
		mmkv_dbi x;
		MCHECK_RC(mmkv_dbi_open(txn, d->name, 0, &x), MMKV_NOTFOUND);
		return;
	}
	MCHECK_RC(mmkv_dbi_stat(txn, d->dbi, &st), 0);
	if (st.entries != s->count)
		MFAIL("db %s: %" PRIu64 " entries, expected %" PRIu64, d->name ? d->name : "(default)",
		      st.entries, s->count);
	if ((st.entries == 0) != (st.depth == 0))
		MFAIL("db %s: depth %u with %" PRIu64 " entries", d->name ? d->name : "(default)", st.depth,
		      st.entries);
	MCHECK_RC(mmkv_cursor_open(txn, d->dbi, &c), 0);
	for (r = succ(d, s, 0, true); r >= 0; r = succ(d, s, r, false))
		cursor_expect(d, s, c, n++ ? MMKV_NEXT : MMKV_FIRST, r, "full walk forward");
	cursor_expect(d, s, c, n ? MMKV_NEXT : MMKV_FIRST, -1, "end of full walk forward");
	if (backward) {
		n = 0;
		for (r = pred(s, (long)d->u.n); r >= 0; r = pred(s, r))
			cursor_expect(d, s, c, n++ ? MMKV_PREV : MMKV_LAST, r, "full walk backward");
		cursor_expect(d, s, c, n ? MMKV_PREV : MMKV_LAST, -1, "end of full walk backward");
	}
	mmkv_cursor_close(c);
}

/* ---------------------------------------------------------------- run */

typedef struct run {
	test_rng r;
	mmkv_env *env;
	const char *path;
	size_t ps;
	/* (db, rank) touched in the current write transaction */
	uint32_t *touched;
	size_t ntouched, touched_cap;
	uint64_t commits, aborts, reopens, checks, verifies, snapshots, drops;
	uint32_t max_dict; /* highest dictionary id of "zipped" seen */
} run;

static void touch(run *m, int db, size_t rank)
{
	if (m->ntouched == m->touched_cap) {
		m->touched_cap = m->touched_cap ? 2 * m->touched_cap : 1024;
		m->touched = realloc(m->touched, m->touched_cap * sizeof(*m->touched));
		assert_non_null(m->touched);
	}
	m->touched[m->ntouched++] = (uint32_t)db << 24 | (uint32_t)rank;
}

static void open_handles(run *m)
{
	mmkv_txn *txn = txn_read(m->env);

	for (int i = 0; i < NDB; i++) {
		mdb *d = &dbs[i];
		if (!d->committed.exists)
			continue;
		MCHECK_RC(mmkv_dbi_open(txn, d->name, d->flags, &d->dbi), 0);
	}
	mmkv_txn_abort(txn);
}

/* A small dirty-page budget, so that large transactions spill. Syncs cost
 * most of the time and are not what this test is about: most opens use
 * MMKV_NOSYNC, every fourth does not. */
static mmkv_env *model_open(const char *path, uint64_t nth)
{
	mmkv_env *env = env_new();

	assert_ok(mmkv_env_set_maxdbs(env, 8));
	assert_ok(mmkv_env_set_txn_memory(env, 128 * 4096));
	env_open_ok(env, path, nth % 4 == 3 ? 0 : MMKV_NOSYNC);
	return env;
}

static void reopen(run *m)
{
	mmkv_env_close(m->env);
	m->env = model_open(m->path, m->reopens + 1);
	open_handles(m);
	m->reopens++;
}

/* The walker's key was deleted: NEXT returns the key after it. */
static void resolve(mdb *d)
{
	long want;

	if (!d->walker || d->wstate != W_AFTERDEL)
		return;
	want = succ(d, &d->work, (long)d->wpos, false);
	cur_what = "NEXT after the walker's key was deleted";
	cursor_expect(d, &d->work, d->walker, MMKV_NEXT, want, cur_what);
	if (want >= 0) {
		d->wstate = W_AT;
		d->wpos = (size_t)want;
	} else {
		d->wstate = W_UNKNOWN;
	}
}

/* A change to the key of rank r is coming: if the walker waits after a
 * deleted key and r lies between it and the next key (where the meaning of
 * NEXT would depend on how the cursor is kept), resolve it first. */
static void before_change(mdb *d, size_t r)
{
	long s;

	if (!d->walker || d->wstate != W_AFTERDEL || r < d->wpos)
		return;
	s = succ(d, &d->work, (long)d->wpos, false);
	if (s < 0 || (long)r <= s)
		resolve(d);
}

/* The key of rank r of d is gone: a walker on it now waits after it. The
 * NEXT is checked at once or after unrelated changes. */
static void deleted(run *m, mdb *d, size_t rank)
{
	if (d->walker && d->wstate == W_AT && d->wpos == rank) {
		d->wstate = W_AFTERDEL;
		if (rng_pct(&m->r, 40))
			resolve(d);
	}
}

static void op_put(run *m, mdb *d, int di, mmkv_txn *txn)
{
	size_t rank = rng_below(&m->r, d->u.n);
	size_t size = value_size(&m->r, m->ps);
	uint64_t vs = rng_next(&m->r);
	mmkv_val k, v;
	uint64_t how = rng_below(&m->r, 100);
	int rc;

	if (how < 6) {
		/* APPEND: after the last key, or out of order */
		long last = pred(&d->work, (long)d->u.n);
		bool in_order = rng_pct(&m->r, 60) && (size_t)(last + 1) < d->u.n;
		if (in_order)
			rank = (size_t)rng_range(&m->r, (uint64_t)(last + 1), d->u.n - 1);
		before_change(d, rank);
		k = mkval(d->u.key[rank], d->u.klen[rank]);
		v = mkval(value_bytes(vs, size), size);
		cur_what = "put APPEND";
		rc = mmkv_put(txn, d->dbi, &k, &v, MMKV_APPEND);
		if ((long)rank > last) {
			MCHECK_RC(rc, 0);
		} else {
			MCHECK_RC(rc, MMKV_KEYEXIST);
			return;
		}
	} else if (how < 14) {
		before_change(d, rank);
		k = mkval(d->u.key[rank], d->u.klen[rank]);
		v = mkval(value_bytes(vs, size), size);
		cur_what = "put NOOVERWRITE";
		rc = mmkv_put(txn, d->dbi, &k, &v, MMKV_NOOVERWRITE);
		if (d->work.present[rank]) {
			MCHECK_RC(rc, MMKV_KEYEXIST);
			expect_entry(d, &d->work, (long)rank, NULL, &v, cur_what);
			return;
		}
		MCHECK_RC(rc, 0);
	} else if (how < 20) {
		before_change(d, rank);
		k = mkval(d->u.key[rank], d->u.klen[rank]);
		v.size = size;
		v.data = NULL;
		cur_what = "put RESERVE";
		MCHECK_RC(mmkv_put(txn, d->dbi, &k, &v, MMKV_RESERVE), 0);
		if (size && v.data == NULL)
			MFAIL("RESERVE returned no space");
		value_fill(vs, v.data, size);
	} else {
		before_change(d, rank);
		k = mkval(d->u.key[rank], d->u.klen[rank]);
		v = mkval(value_bytes(vs, size), size);
		cur_what = "put";
		MCHECK_RC(mmkv_put(txn, d->dbi, &k, &v, 0), 0);
	}
	if (!d->work.present[rank])
		d->work.count++;
	d->work.present[rank] = 1;
	d->work.vseed[rank] = vs;
	d->work.vlen[rank] = (uint32_t)size;
	touch(m, di, rank);
	if (rng_pct(&m->r, 5))
		get_expect(d, &d->work, txn, (long)rank, "get after put");
}

static void op_del(run *m, mdb *d, int di, mmkv_txn *txn)
{
	size_t rank = rng_below(&m->r, d->u.n);
	mmkv_val k;

	if (rng_pct(&m->r, 70)) {
		long x = succ(d, &d->work, (long)rank, true);
		if (x < 0)
			x = succ(d, &d->work, 0, true);
		if (x >= 0)
			rank = (size_t)x;
	}
	before_change(d, rank);
	k = mkval(d->u.key[rank], d->u.klen[rank]);
	cur_what = "del";
	if (!d->work.present[rank]) {
		MCHECK_RC(mmkv_del(txn, d->dbi, &k, NULL), MMKV_NOTFOUND);
		return;
	}
	MCHECK_RC(mmkv_del(txn, d->dbi, &k, NULL), 0);
	d->work.present[rank] = 0;
	d->work.count--;
	touch(m, di, rank);
	deleted(m, d, rank);
}

static void op_walk(run *m, mdb *d, mmkv_txn *txn)
{
	dbstate *s = &d->work;
	uint64_t how;

	if (!d->walker) {
		MCHECK_RC(mmkv_cursor_open(txn, d->dbi, &d->walker), 0);
		d->wstate = W_UNPOS;
	}
	resolve(d);
	how = rng_below(&m->r, 100);
	if (d->wstate == W_UNKNOWN && how < 50)
		how = 50 + how % 40; /* only absolute positioning */
	if (d->wstate == W_AT && how < 50) {
		/* a few steps one way or the other */
		for (int n = (int)rng_range(&m->r, 1, 20); n > 0; n--) {
			bool fwd = rng_pct(&m->r, 50);
			long want = fwd ? succ(d, s, (long)d->wpos, false) : pred(s, (long)d->wpos);

			cur_what = fwd ? "walker NEXT" : "walker PREV";
			cursor_expect(d, s, d->walker, fwd ? MMKV_NEXT : MMKV_PREV, want, cur_what);
			if (want >= 0)
				d->wpos = (size_t)want;
		}
		if (rng_pct(&m->r, 30)) {
			cur_what = "walker GET_CURRENT";
			cursor_expect(d, s, d->walker, MMKV_GET_CURRENT, (long)d->wpos, cur_what);
		}
		return;
	}
	if (d->wstate == W_UNPOS && how < 50) {
		bool fwd = rng_pct(&m->r, 50);
		long want = fwd ? succ(d, s, 0, true) : pred(s, (long)d->u.n);

		cur_what = fwd ? "walker NEXT unpositioned" : "walker PREV unpositioned";
		cursor_expect(d, s, d->walker, fwd ? MMKV_NEXT : MMKV_PREV, want, cur_what);
		if (want >= 0) {
			d->wstate = W_AT;
			d->wpos = (size_t)want;
		}
		return;
	}
	if (how < 60) {
		bool first = rng_pct(&m->r, 50);
		long want = first ? succ(d, s, 0, true) : pred(s, (long)d->u.n);

		cur_what = first ? "walker FIRST" : "walker LAST";
		cursor_expect(d, s, d->walker, first ? MMKV_FIRST : MMKV_LAST, want, cur_what);
		if (want >= 0) {
			d->wstate = W_AT;
			d->wpos = (size_t)want;
		}
		return;
	}
	{
		size_t rank = rng_below(&m->r, d->u.n);
		mmkv_val k = mkval(d->u.key[rank], d->u.klen[rank]), v;
		int rc;

		if (how < 75) {
			/* SET_RANGE */
			long want = succ(d, s, (long)rank, true);
			cur_what = "walker SET_RANGE";
			rc = mmkv_cursor_get(d->walker, &k, &v, MMKV_SET_RANGE);
			if (want < 0) {
				MCHECK_RC(rc, MMKV_NOTFOUND);
				d->wstate = W_UNKNOWN;
				return;
			}
			MCHECK_RC(rc, 0);
			expect_entry(d, s, want, &k, &v, cur_what);
			d->wstate = W_AT;
			d->wpos = (size_t)want;
			return;
		}
		/* SET or SET_KEY */
		if (rng_pct(&m->r, 60)) {
			long x = succ(d, s, (long)rank, true);
			if (x >= 0)
				rank = (size_t)x;
			k = mkval(d->u.key[rank], d->u.klen[rank]);
		}
		if (how < 85) {
			const void *before = k.data;
			cur_what = "walker SET";
			rc = mmkv_cursor_get(d->walker, &k, &v, MMKV_SET);
			if (rc == 0 && (k.data != before || k.size != d->u.klen[rank]))
				MFAIL("MMKV_SET changed the key");
		} else {
			cur_what = "walker SET_KEY";
			rc = mmkv_cursor_get(d->walker, &k, &v, MMKV_SET_KEY);
		}
		if (!s->present[rank]) {
			MCHECK_RC(rc, MMKV_NOTFOUND);
			d->wstate = W_UNKNOWN;
			return;
		}
		MCHECK_RC(rc, 0);
		expect_entry(d, s, (long)rank, &k, &v, cur_what);
		d->wstate = W_AT;
		d->wpos = rank;
	}
}

static void op_cursor_put(run *m, mdb *d, int di, mmkv_txn *txn)
{
	size_t size = value_size(&m->r, m->ps);
	uint64_t vs = rng_next(&m->r);
	size_t rank;
	mmkv_val k, v;
	unsigned int flags = 0;

	if (!d->walker) {
		MCHECK_RC(mmkv_cursor_open(txn, d->dbi, &d->walker), 0);
		d->wstate = W_UNPOS;
	}
	if (d->wstate == W_AT && rng_pct(&m->r, 60)) {
		rank = d->wpos;
		flags = MMKV_CURRENT;
		cur_what = "cursor_put CURRENT";
	} else {
		rank = rng_below(&m->r, d->u.n);
		cur_what = "cursor_put";
	}
	k = mkval(d->u.key[rank], d->u.klen[rank]);
	v = mkval(value_bytes(vs, size), size);
	MCHECK_RC(mmkv_cursor_put(d->walker, &k, &v, flags), 0);
	if (!d->work.present[rank])
		d->work.count++;
	d->work.present[rank] = 1;
	d->work.vseed[rank] = vs;
	d->work.vlen[rank] = (uint32_t)size;
	d->wstate = W_AT;
	d->wpos = rank;
	touch(m, di, rank);
	if (rng_pct(&m->r, 30)) {
		cur_what = "GET_CURRENT after cursor_put";
		cursor_expect(d, &d->work, d->walker, MMKV_GET_CURRENT, (long)rank, cur_what);
	}
}

static void op_cursor_del(run *m, mdb *d, int di, mmkv_txn *txn)
{
	(void)txn;
	resolve(d);
	if (!d->walker || d->wstate != W_AT)
		return;
	cur_what = "cursor_del";
	MCHECK_RC(mmkv_cursor_del(d->walker, 0), 0);
	d->work.present[d->wpos] = 0;
	d->work.count--;
	touch(m, di, d->wpos);
	deleted(m, d, d->wpos);
}

static void op_get(run *m, mdb *d, mmkv_txn *txn)
{
	size_t rank = rng_below(&m->r, d->u.n);

	if (rng_pct(&m->r, 50)) {
		long x = succ(d, &d->work, (long)rank, true);
		if (x >= 0)
			rank = (size_t)x;
	}
	get_expect(d, &d->work, txn, (long)rank, "get");
}

/* A short-lived cursor: SET_RANGE, then steps both ways. */
static void op_scan(run *m, mdb *d, mmkv_txn *txn, const dbstate *s)
{
	mmkv_cursor *c;
	size_t rank = rng_below(&m->r, d->u.n);
	mmkv_val k = mkval(d->u.key[rank], d->u.klen[rank]), v;
	long pos = succ(d, s, (long)rank, true);
	int rc;

	cur_what = "scan";
	MCHECK_RC(mmkv_cursor_open(txn, d->dbi, &c), 0);
	rc = mmkv_cursor_get(c, &k, &v, MMKV_SET_RANGE);
	if (pos < 0) {
		MCHECK_RC(rc, MMKV_NOTFOUND);
	} else {
		MCHECK_RC(rc, 0);
		expect_entry(d, s, pos, &k, &v, "scan SET_RANGE");
		for (int n = (int)rng_range(&m->r, 1, 64); n > 0; n--) {
			bool fwd = rng_pct(&m->r, 60);
			long want = fwd ? succ(d, s, pos, false) : pred(s, pos);

			cursor_expect(d, s, c, fwd ? MMKV_NEXT : MMKV_PREV, want, "scan step");
			if (want >= 0)
				pos = want;
		}
	}
	mmkv_cursor_close(c);
}

static void close_walker(mdb *d)
{
	mmkv_cursor_close(d->walker);
	d->walker = NULL;
	d->wstate = W_NONE;
}

/* Ensure d exists in this write transaction (the named one may be gone). */
static bool ensure_db(run *m, mdb *d, mmkv_txn *txn)
{
	if (d->work.exists)
		return true;
	if (!rng_pct(&m->r, 20))
		return false;
	cur_what = "dbi_open CREATE";
	MCHECK_RC(mmkv_dbi_open(txn, d->name, d->flags | MMKV_CREATE, &d->dbi), 0);
	d->work.exists = true;
	return true;
}

static void op_drop(run *m, mdb *d, mmkv_txn *txn)
{
	int del = d->name && rng_pct(&m->r, 50);

	close_walker(d);
	cur_what = del ? "drop del=1" : "drop del=0";
	MCHECK_RC(mmkv_drop(txn, d->dbi, del), 0);
	memset(d->work.present, 0, d->u.n);
	d->work.count = 0;
	if (del)
		d->work.exists = false;
	m->drops++;
}

static size_t txn_length(test_rng *r)
{
	uint64_t x = rng_below(r, 100);

	if (x < 25)
		return rng_range(r, 1, 20);
	if (x < 85)
		return rng_range(r, 1, 1000);
	return rng_range(r, 1, 2000);
}

/* One write transaction of n operations; returns the operations done. */
static size_t write_txn(run *m, size_t n)
{
	mmkv_txn *txn = txn_write(m->env);
	bool commit = rng_pct(&m->r, 85);
	mmkv_dbi saved[NDB];

	m->ntouched = 0;
	for (int i = 0; i < NDB; i++)
		saved[i] = dbs[i].dbi;
	for (size_t i = 0; i < n; i++) {
		uint64_t pick = rng_below(&m->r, 100);
		int di = pick < 30 ? 0 : pick < 47 ? 1 : pick < 60 ? 2 : pick < 73 ? 3 : pick < 86 ? 4 : 5;
		mdb *d = &dbs[di];
		uint64_t op = rng_below(&m->r, 1000);

		cur_op = i;
		if (!ensure_db(m, d, txn))
			continue;
		if (op < 350)
			op_put(m, d, di, txn);
		else if (op < 550)
			op_del(m, d, di, txn);
		else if (op < 690)
			op_get(m, d, txn);
		else if (op < 850)
			op_walk(m, d, txn);
		else if (op < 900)
			op_cursor_put(m, d, di, txn);
		else if (op < 950)
			op_cursor_del(m, d, di, txn);
		else if (op < 999)
			op_scan(m, d, txn, &d->work);
		else if (rng_pct(&m->r, 5))
			op_drop(m, d, txn); /* about once in 20000 operations */
	}
	for (int i = 0; i < NDB; i++)
		dbs[i].walker = NULL; /* closed with the transaction */
	cur_what = commit ? "commit" : "abort";
	if (commit) {
		MCHECK_RC(mmkv_txn_commit(txn), 0);
		for (int i = 0; i < NDB; i++)
			dbstate_copy(&dbs[i].committed, &dbs[i].work, dbs[i].u.n);
		m->commits++;
	} else {
		mmkv_txn_abort(txn);
		for (int i = 0; i < NDB; i++) {
			dbstate_copy(&dbs[i].work, &dbs[i].committed, dbs[i].u.n);
			dbs[i].dbi = saved[i];
		}
		m->aborts++;
	}
	for (int i = 0; i < NDB; i++)
		dbs[i].wstate = W_NONE;
	return n;
}

/* The keys the last transaction touched hold their committed values. */
static void verify_touched(run *m)
{
	mmkv_txn *txn = txn_read(m->env);

	cur_what = "verify touched keys";
	for (size_t i = 0; i < m->ntouched; i++) {
		mdb *d = &dbs[m->touched[i] >> 24];
		if (!d->committed.exists)
			continue;
		get_expect(d, &d->committed, txn, (long)(m->touched[i] & 0xffffff), cur_what);
	}
	mmkv_txn_abort(txn);
}

static void verify_all(run *m, mmkv_txn *txn, bool snapshot_state, bool backward)
{
	bool own = txn == NULL;

	if (own)
		txn = txn_read(m->env);
	cur_what = snapshot_state ? "verify snapshot" : "verify all";
	for (int i = 0; i < NDB; i++) {
		mdb *d = &dbs[i];
		const dbstate *s = snapshot_state ? &d->snap : &d->committed;
		mmkv_compress_stat z;
		verify_db(d, s, txn, backward);
		if ((d->flags & MMKV_COMPRESS) && s->exists) {
			MCHECK_RC(mmkv_compress_info(txn, d->dbi, &z), 0);
			if (z.dict_id > m->max_dict)
				m->max_dict = z.dict_id;
		}
		if (s->exists)
			for (int j = 0; j < 4; j++)
				op_scan(m, d, txn, s);
	}
	if (own)
		mmkv_txn_abort(txn);
	m->verifies++;
}

static void model_check(run *m)
{
	mmkv_check_result res;
	uint64_t reported = 0;
	int rc;

	cur_what = "mmkv_env_check";
	rc = check_env_quiet(m->env, &res, &reported, true);
	if (rc != 0 || reported != 0 || res.problems != 0)
		MFAIL("mmkv_env_check returned %d (%s), %" PRIu64 " problems", rc, mmkv_strerror(rc),
		      reported);
	if (res.pages_tree + res.pages_free + 2 != res.pages_total)
		MFAIL("mmkv_env_check accounting: %" PRIu64 " + %" PRIu64 " + 2 != %" PRIu64,
		      res.pages_tree, res.pages_free, res.pages_total);
	{
		uint64_t total = 0;
		for (int i = 0; i < NDB; i++)
			if (dbs[i].committed.exists)
				total += dbs[i].committed.count;
		/* records of all user databases (maybe the catalog's too) */
		if (res.entries < total)
			MFAIL("mmkv_env_check counts %" PRIu64 " entries, expected at least %" PRIu64,
			      res.entries, total);
	}
	m->checks++;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_model(void **state)
{
	test_fixture *fx = FX(state);
	static const struct {
		const char *name;
		enum kind kind;
		unsigned int flags;
		size_t n;
	} spec[NDB] = {
		{ NULL, K_BYTES, 0, 6000 },
		{ "named", K_BYTES, 0, 3000 },
		{ "int4", K_INT4, MMKV_INTEGERKEY, 3000 },
		{ "int8", K_INT8, MMKV_INTEGERKEY, 3000 },
		{ "rev", K_REV, MMKV_REVERSEKEY, 3000 },
		{ "zipped", K_BYTES, MMKV_COMPRESS, 3000 },
	};
	run m;
	mmkv_envinfo info;
	uint64_t done = 0, txns = 0;
	double t0 = now_s();

	memset(&m, 0, sizeof(m));
	rng_init(&m.r, seed);
	m.path = fx->path;
	m.env = model_open(fx->path, 0);
	assert_ok(mmkv_env_info(m.env, &info));
	m.ps = info.page_size;

	/* universes and the databases, created in the first transaction */
	{
		unsigned int maxkey = mmkv_env_get_maxkeysize(m.env);
		mmkv_txn *txn = txn_write(m.env);

		for (int i = 0; i < NDB; i++) {
			mdb *d = &dbs[i];
			memset(d, 0, sizeof(*d));
			d->name = spec[i].name;
			d->kind = spec[i].kind;
			d->flags = spec[i].flags;
			universe_build(&d->u, d->kind, spec[i].n, maxkey, &m.r);
			dbstate_alloc(&d->work, d->u.n);
			dbstate_alloc(&d->committed, d->u.n);
			dbstate_alloc(&d->snap, d->u.n);
			d->dbi = dbi_ok(txn, d->name, d->flags | MMKV_CREATE);
			d->work.exists = d->committed.exists = true;
		}
		assert_ok(mmkv_txn_commit(txn));
	}

	while (done < ops_per_mode) {
		size_t n = txn_length(&m.r);
		mmkv_txn *snap = NULL;

		cur_txn = txns;
		if (n > ops_per_mode - done)
			n = (size_t)(ops_per_mode - done);
		/* now and then, a snapshot held across the write transaction */
		if (rng_pct(&m.r, 5)) {
			snap = txn_read(m.env);
			for (int i = 0; i < NDB; i++)
				dbstate_copy(&dbs[i].snap, &dbs[i].committed, dbs[i].u.n);
		}
		done += write_txn(&m, n);
		txns++;
		verify_touched(&m);
		if (snap) {
			verify_all(&m, snap, true, rng_pct(&m.r, 50));
			mmkv_txn_abort(snap);
			m.snapshots++;
		}
		if (txns % verify_every == 0)
			verify_all(&m, NULL, false, txns % (4 * verify_every) == 0);
		if (txns % check_every == 0)
			model_check(&m);
		if (rng_pct(&m.r, 1)) {
			cur_what = "reopen";
			reopen(&m);
			verify_all(&m, NULL, false, true);
		}
	}
	cur_what = "final";
	verify_all(&m, NULL, false, true);
	model_check(&m);
	reopen(&m);
	verify_all(&m, NULL, false, true);
	model_check(&m);
	printf("model (%s): %" PRIu64 " ops in %" PRIu64 " txns (%" PRIu64 " committed, %" PRIu64
	       " aborted), %" PRIu64 " reopens, %" PRIu64 " drops, %" PRIu64 " snapshots, %" PRIu64
	       " full comparisons, %" PRIu64 " checks, %.1f s\n",
	       test_env_flags ? "writemap" : "default", done, txns, m.commits, m.aborts, m.reopens,
	       m.drops, m.snapshots, m.verifies, m.checks, now_s() - t0);
	printf("model (%s): \"zipped\" reached dictionary id %" PRIu32 "\n",
	       test_env_flags ? "writemap" : "default", m.max_dict);
	/* A run long enough to pass 512 entries must have built dictionaries. */
	if (ops_per_mode >= 200000 && m.max_dict == 0)
		fail_msg("the compressed database never built a dictionary");
	printf("model (%s): entries at the end:", test_env_flags ? "writemap" : "default");
	for (int i = 0; i < NDB; i++)
		printf(" %s %" PRIu64 "/%zu", dbs[i].name ? dbs[i].name : "default", dbs[i].committed.count,
		       dbs[i].u.n);
	printf("\n");
	if (ops_per_mode >= 1000000)
		assert_true(txns >= 1000);
	mmkv_env_close(m.env);
	for (int i = 0; i < NDB; i++) {
		universe_free(&dbs[i].u);
		dbstate_free(&dbs[i].work);
		dbstate_free(&dbs[i].committed);
		dbstate_free(&dbs[i].snap);
	}
	free(m.touched);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : dflt;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model, tu_setup, tu_teardown),
	};

	watchdog(1800);
	seed = test_seed("test_model");
	ops_per_mode = env_u64("MMKV_MODEL_OPS", 1000000);
	check_every = (unsigned int)env_u64("MMKV_MODEL_CHECK_EVERY", 10);
	verify_every = (unsigned int)env_u64("MMKV_MODEL_VERIFY_EVERY", 4);
	if (check_every == 0)
		check_every = 1;
	if (verify_every == 0)
		verify_every = 1;
	printf("test_model: %" PRIu64 " operations per write mode, check every %u, full compare every %u\n",
	       ops_per_mode, check_every, verify_every);
	return RUN_BOTH_MODES("model", tests) ? 1 : 0;
}
