/*
 * test_cursor.c - cursors, through <mmkv.h> only.
 *
 * Covers mmkv_cursor_open/close argument errors; every cursor op (FIRST, LAST,
 * NEXT, PREV, SET, SET_KEY, SET_RANGE, GET_CURRENT) on an empty database and
 * on a multi-level tree, NOTFOUND at both ends (the cursor stays), unknown ops,
 * random walks in both directions checked against an in-memory oracle, in read
 * and in write transactions; mmkv_cursor_put (new keys, MMKV_CURRENT with value
 * size changes and key mismatch, NOOVERWRITE, APPEND, RESERVE);
 * mmkv_cursor_del (NEXT then returns the following key, deleting twice,
 * deleting everything); cursors of a write transaction that stay correct while
 * the same transaction inserts (causing splits) and deletes (causing merges)
 * through other cursors and mmkv_put/mmkv_del, including deletion of the key a
 * cursor sits on (NEXT then returns the key after it, also after later
 * unrelated changes split and merge pages around it); and a read cursor walking its snapshot while commits land.
 *
 * Every group runs twice: default write mode and MMKV_WRITEMAP.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmkv.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))

static uint64_t seed;

/* ------------------------------------------------------------- oracle */

/* Keys are the integers 0..UNIVERSE-1 written as 7 decimal digits, so byte
 * order is numeric order. A present key has a value named by (vseed, vlen). */
#define UNIVERSE 200000

typedef struct oracle {
	unsigned char *present;
	uint64_t *vseed;
	uint32_t *vlen;
	uint64_t count;
} oracle;

static void oracle_init(oracle *o)
{
	o->present = calloc(UNIVERSE, 1);
	o->vseed = calloc(UNIVERSE, sizeof(*o->vseed));
	o->vlen = calloc(UNIVERSE, sizeof(*o->vlen));
	o->count = 0;
	assert_true(o->present && o->vseed && o->vlen);
}

static void oracle_free(oracle *o)
{
	free(o->present);
	free(o->vseed);
	free(o->vlen);
}

static void keyname(char buf[8], long i)
{
	assert_true(i >= 0 && i < 10000000);
	for (int d = 6; d >= 0; d--, i /= 10)
		buf[d] = (char)('0' + i % 10);
	buf[7] = '\0';
}

static long keynum(const mmkv_val *k)
{
	char buf[8];

	assert_int_equal(k->size, 7);
	memcpy(buf, k->data, 7);
	buf[7] = '\0';
	return strtol(buf, NULL, 10);
}

/* Smallest present key > i (or >= i with incl), -1 if none. */
static long oracle_next(const oracle *o, long i, bool incl)
{
	for (long j = incl ? i : i + 1; j < UNIVERSE; j++)
		if (j >= 0 && o->present[j])
			return j;
	return -1;
}

/* Largest present key < i, -1 if none. */
static long oracle_prev(const oracle *o, long i)
{
	for (long j = i - 1; j >= 0; j--)
		if (o->present[j])
			return j;
	return -1;
}

static size_t pick_size(test_rng *r)
{
	uint64_t x = rng_below(r, 100);

	if (x < 10)
		return 0;
	if (x < 60)
		return rng_range(r, 1, 64);
	if (x < 85)
		return rng_range(r, 65, 600);
	if (x < 95)
		return rng_range(r, 600, 1100);
	return rng_range(r, 1100, 20000);
}

static unsigned char *scratch(size_t n)
{
	static unsigned char *buf;
	static size_t cap;

	if (n > cap) {
		free(buf);
		cap = n < 65536 ? 65536 : n;
		buf = malloc(cap);
		assert_non_null(buf);
	}
	return buf;
}

/* Store key i with a fresh value through mmkv_put (cur NULL) or a cursor. */
static void oracle_put(oracle *o, test_rng *r, mmkv_txn *txn, mmkv_dbi dbi, mmkv_cursor *cur, long i,
                       size_t size)
{
	char k[8];
	uint64_t vs = rng_next(r);
	unsigned char *buf = scratch(size);
	mmkv_val key, val;

	keyname(k, i);
	pattern_fill(vs, buf, size);
	key = mkval(k, 7);
	val = mkval(buf, size);
	if (cur)
		assert_ok(mmkv_cursor_put(cur, &key, &val, 0));
	else
		assert_ok(mmkv_put(txn, dbi, &key, &val, 0));
	if (!o->present[i])
		o->count++;
	o->present[i] = 1;
	o->vseed[i] = vs;
	o->vlen[i] = (uint32_t)size;
}

static void oracle_del(oracle *o, mmkv_txn *txn, mmkv_dbi dbi, long i)
{
	char k[8];
	mmkv_val key;

	keyname(k, i);
	key = mkval(k, 7);
	assert_true(o->present[i]);
	assert_ok(mmkv_del(txn, dbi, &key, NULL));
	o->present[i] = 0;
	o->count--;
}

/* The cursor returned key/value: they must be key `want` of the oracle. */
static void expect_entry(const oracle *o, const mmkv_val *k, const mmkv_val *v, long want)
{
	long got = keynum(k);

	if (got != want)
		fail_msg("cursor returned key %ld, expected %ld", got, want);
	assert_int_equal(v->size, o->vlen[want]);
	if (!pattern_equal(o->vseed[want], v->data, v->size))
		fail_msg("value of key %ld differs", want);
}

static void expect_get(const oracle *o, mmkv_cursor *cur, mmkv_cursor_op op, long want)
{
	mmkv_val k, v;

	if (want < 0) {
		assert_rc(mmkv_cursor_get(cur, &k, &v, op), MMKV_NOTFOUND);
		return;
	}
	assert_ok(mmkv_cursor_get(cur, &k, &v, op));
	expect_entry(o, &k, &v, want);
}

/* The whole database equals the oracle, walked both ways. */
static void verify_all(const oracle *o, mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_cursor *cur;
	long want;
	uint64_t n = 0;

	assert_int_equal(db_entries(txn, dbi), o->count);
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	for (want = oracle_next(o, 0, true); want >= 0; want = oracle_next(o, want, false)) {
		expect_get(o, cur, n == 0 ? MMKV_FIRST : MMKV_NEXT, want);
		n++;
	}
	if (n == 0)
		expect_get(o, cur, MMKV_FIRST, -1);
	else
		expect_get(o, cur, MMKV_NEXT, -1);
	n = 0;
	for (want = oracle_prev(o, UNIVERSE); want >= 0; want = oracle_prev(o, want)) {
		expect_get(o, cur, n == 0 ? MMKV_LAST : MMKV_PREV, want);
		n++;
	}
	assert_int_equal(n, o->count);
	if (n)
		expect_get(o, cur, MMKV_PREV, -1);
	mmkv_cursor_close(cur);
}

/* Keys step, 2*step, ... n*step with random values, in one transaction. */
static void fill(oracle *o, test_rng *r, mmkv_env *env, mmkv_dbi *dbi, long n, long step)
{
	mmkv_txn *txn = txn_write(env);

	*dbi = dbi_ok(txn, NULL, 0);
	for (long i = 1; i <= n; i++)
		oracle_put(o, r, txn, *dbi, NULL, i * step, pick_size(r));
	assert_ok(mmkv_txn_commit(txn));
}

/* -------------------------------------------------------------- tests */

static void test_cursor_open_errors(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_txn *txn = txn_read(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	mmkv_cursor *cur = NULL;
	mmkv_val k, v;

	assert_rc(mmkv_cursor_open(NULL, dbi, &cur), EINVAL);
	assert_rc(mmkv_cursor_open(txn, dbi, NULL), EINVAL);
	assert_rc2(mmkv_cursor_open(txn, 9999, &cur), MMKV_BAD_DBI, EINVAL);
	assert_rc(mmkv_cursor_get(NULL, &k, &v, MMKV_FIRST), EINVAL);
	assert_rc(mmkv_cursor_put(NULL, &k, &v, 0), EINVAL);
	assert_rc(mmkv_cursor_del(NULL, 0), EINVAL);
	mmkv_cursor_close(NULL);
	mmkv_txn_reset(txn);
	assert_rc(mmkv_cursor_open(txn, dbi, &cur), MMKV_BAD_TXN);
	assert_ok(mmkv_txn_renew(txn));
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	mmkv_cursor_close(cur);
	/* a cursor left open is closed with its transaction */
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	mmkv_txn_abort(txn);

	txn = txn_write(env);
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	{
		mmkv_val key = sval("a"), val = sval("b");
		assert_rc(mmkv_cursor_put(cur, NULL, &val, 0), EINVAL);
		assert_rc(mmkv_cursor_put(cur, &key, NULL, 0), EINVAL);
		assert_rc(mmkv_cursor_put(cur, &key, &val, 0x10000000u), EINVAL);
	}
	assert_ok(mmkv_txn_commit(txn)); /* closes the cursor */
	check_env(env);
}

static void empty_db_ops(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_cursor *cur;
	mmkv_val k = sval("x"), v, empty = { 0, (void *)"" };

	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_GET_CURRENT), EINVAL);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_FIRST), MMKV_NOTFOUND);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_LAST), MMKV_NOTFOUND);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_NEXT), MMKV_NOTFOUND);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_PREV), MMKV_NOTFOUND);
	k = sval("x");
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_SET), MMKV_NOTFOUND);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_SET_KEY), MMKV_NOTFOUND);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE), MMKV_NOTFOUND);
	assert_rc(mmkv_cursor_get(cur, &k, &v, (mmkv_cursor_op)99), EINVAL);
	assert_rc(mmkv_cursor_get(cur, &k, &v, (mmkv_cursor_op)-1), EINVAL);
	assert_rc(mmkv_cursor_get(cur, NULL, &v, MMKV_SET), EINVAL);
	assert_rc(mmkv_cursor_get(cur, NULL, &v, MMKV_SET_RANGE), EINVAL);
	assert_rc(mmkv_cursor_get(cur, &empty, &v, MMKV_SET), MMKV_BAD_VALSIZE);
	mmkv_cursor_close(cur);
}

static void test_cursor_empty_db(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	mmkv_cursor *cur;

	empty_db_ops(txn, dbi);
	/* a write cursor on an empty database: del on nothing */
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	assert_rc(mmkv_cursor_del(cur, 0), EINVAL);
	mmkv_cursor_close(cur);
	/* emptied by deletes */
	put_str(txn, dbi, "k", "v");
	{
		mmkv_val k = sval("k");
		assert_ok(mmkv_del(txn, dbi, &k, NULL));
	}
	empty_db_ops(txn, dbi);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	empty_db_ops(txn, dbi);
	mmkv_txn_abort(txn);
	check_env(env);
}

static void positioning(const oracle *o, test_rng *r, mmkv_txn *txn, mmkv_dbi dbi, long step, long n)
{
	mmkv_cursor *cur;
	mmkv_val k, v;
	char kb[8];
	long first = step, last = n * step;

	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	/* unpositioned NEXT / PREV */
	expect_get(o, cur, MMKV_NEXT, first);
	mmkv_cursor_close(cur);
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	expect_get(o, cur, MMKV_PREV, last);

	/* the ends: NOTFOUND and the cursor stays */
	expect_get(o, cur, MMKV_FIRST, first);
	expect_get(o, cur, MMKV_PREV, -1);
	expect_get(o, cur, MMKV_GET_CURRENT, first);
	expect_get(o, cur, MMKV_NEXT, 2 * step);
	expect_get(o, cur, MMKV_LAST, last);
	expect_get(o, cur, MMKV_NEXT, -1);
	expect_get(o, cur, MMKV_NEXT, -1);
	expect_get(o, cur, MMKV_GET_CURRENT, last);
	expect_get(o, cur, MMKV_PREV, last - step);

	/* key and data may be NULL where the op does not read them */
	assert_ok(mmkv_cursor_get(cur, NULL, NULL, MMKV_FIRST));
	assert_ok(mmkv_cursor_get(cur, NULL, NULL, MMKV_NEXT));
	expect_get(o, cur, MMKV_GET_CURRENT, 2 * step);

	/* SET: exact only, key left alone */
	keyname(kb, 5 * step);
	k = mkval(kb, 7);
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET));
	assert_ptr_equal(k.data, kb);
	assert_int_equal(k.size, 7);
	assert_int_equal(v.size, o->vlen[5 * step]);
	assert_true(pattern_equal(o->vseed[5 * step], v.data, v.size));
	expect_get(o, cur, MMKV_GET_CURRENT, 5 * step);
	expect_get(o, cur, MMKV_NEXT, 6 * step);
	keyname(kb, 5 * step + 1);
	k = mkval(kb, 7);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_SET), MMKV_NOTFOUND);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_SET_KEY), MMKV_NOTFOUND);
	{
		mmkv_val shortk = mkval(kb, 3); /* a prefix is not a match */
		assert_rc(mmkv_cursor_get(cur, &shortk, &v, MMKV_SET), MMKV_NOTFOUND);
	}

	/* SET_KEY: key set to the stored copy */
	keyname(kb, 7 * step);
	k = mkval(kb, 7);
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET_KEY));
	expect_entry(o, &k, &v, 7 * step);
	expect_get(o, cur, MMKV_PREV, 6 * step);

	/* SET_RANGE: exact, between, before the first, after the last */
	keyname(kb, 9 * step);
	k = mkval(kb, 7);
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE));
	expect_entry(o, &k, &v, 9 * step);
	keyname(kb, 9 * step + 1);
	k = mkval(kb, 7);
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE));
	expect_entry(o, &k, &v, 10 * step);
	expect_get(o, cur, MMKV_PREV, 9 * step);
	k = sval("0");
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE));
	expect_entry(o, &k, &v, first);
	keyname(kb, last + 1);
	k = mkval(kb, 7);
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE), MMKV_NOTFOUND);
	k = sval("9999999999");
	assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE), MMKV_NOTFOUND);
	k = sval("00000005"); /* 8 bytes: sorts after "0000000" and before "0000001" */
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE));
	expect_entry(o, &k, &v, oracle_next(o, 1, true));

	/* random walks */
	for (int round = 0; round < 200; round++) {
		long pos = (long)rng_below(r, (uint64_t)last + step);
		long want = oracle_next(o, pos, true);

		keyname(kb, pos);
		k = mkval(kb, 7);
		if (want < 0) {
			assert_rc(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE), MMKV_NOTFOUND);
			continue;
		}
		assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE));
		expect_entry(o, &k, &v, want);
		pos = want;
		for (int s = (int)rng_below(r, 60); s > 0; s--) {
			bool fwd = rng_pct(r, 50);
			long nxt = fwd ? oracle_next(o, pos, false) : oracle_prev(o, pos);

			expect_get(o, cur, fwd ? MMKV_NEXT : MMKV_PREV, nxt);
			if (nxt >= 0)
				pos = nxt;
			if (rng_pct(r, 10))
				expect_get(o, cur, MMKV_GET_CURRENT, pos);
		}
	}
	mmkv_cursor_close(cur);
	verify_all(o, txn, dbi);
}

static void test_cursor_positioning(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	test_rng r;
	oracle o;
	mmkv_dbi dbi;
	mmkv_txn *txn;
	mmkv_stat st;

	rng_init(&r, seed);
	oracle_init(&o);
	fill(&o, &r, env, &dbi, 6000, 10);
	txn = txn_read(env);
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_true(st.depth >= 2);
	positioning(&o, &r, txn, dbi, 10, 6000);
	mmkv_txn_abort(txn);
	/* the same in a write transaction with dirty pages */
	txn = txn_write(env);
	for (long i = 1; i <= 6000; i += 7)
		oracle_put(&o, &r, txn, dbi, NULL, i * 10, pick_size(&r));
	positioning(&o, &r, txn, dbi, 10, 6000);
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	oracle_free(&o);
}

static void test_cursor_put(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	test_rng r;
	oracle o;
	mmkv_dbi dbi;
	mmkv_txn *txn;
	mmkv_cursor *cur;
	mmkv_val k, v;
	char kb[8];
	static const size_t sizes[] = { 10, 30000, 3, 0, 5000, 900, 70000, 1 };

	rng_init(&r, seed ^ 1);
	oracle_init(&o);
	fill(&o, &r, env, &dbi, 2000, 10);
	txn = txn_write(env);
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));

	/* CURRENT on an unpositioned cursor */
	k = sval("0000010");
	v = sval("x");
	assert_rc(mmkv_cursor_put(cur, &k, &v, MMKV_CURRENT), EINVAL);

	/* a new key: the cursor is left on it */
	oracle_put(&o, &r, txn, dbi, cur, 555, 40);
	expect_get(&o, cur, MMKV_GET_CURRENT, 555);
	expect_get(&o, cur, MMKV_NEXT, 560);
	expect_get(&o, cur, MMKV_PREV, 555);
	expect_get(&o, cur, MMKV_PREV, 550);
	/* an existing key, replaced */
	oracle_put(&o, &r, txn, dbi, cur, 1230, 17);
	expect_get(&o, cur, MMKV_GET_CURRENT, 1230);
	expect_get(&o, cur, MMKV_NEXT, 1240);

	/* CURRENT: value sizes inline -> overflow -> inline -> empty */
	keyname(kb, 3000);
	k = mkval(kb, 7);
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *buf = scratch(sizes[i]);
		uint64_t vs = rng_next(&r);

		pattern_fill(vs, buf, sizes[i]);
		k = mkval(kb, 7);
		v = mkval(buf, sizes[i]);
		assert_ok(mmkv_cursor_put(cur, &k, &v, MMKV_CURRENT));
		o.vseed[3000] = vs;
		o.vlen[3000] = (uint32_t)sizes[i];
		expect_get(&o, cur, MMKV_GET_CURRENT, 3000);
	}
	expect_get(&o, cur, MMKV_NEXT, 3010);
	expect_get(&o, cur, MMKV_PREV, 3000);
	/* CURRENT with another key */
	keyname(kb, 3010);
	k = mkval(kb, 7);
	v = sval("nope");
	assert_rc(mmkv_cursor_put(cur, &k, &v, MMKV_CURRENT), EINVAL);
	expect_get(&o, cur, MMKV_GET_CURRENT, 3000);

	/* NOOVERWRITE: KEYEXIST with the stored value */
	keyname(kb, 4000);
	k = mkval(kb, 7);
	v = sval("other");
	assert_rc(mmkv_cursor_put(cur, &k, &v, MMKV_NOOVERWRITE), MMKV_KEYEXIST);
	assert_int_equal(v.size, o.vlen[4000]);
	assert_true(pattern_equal(o.vseed[4000], v.data, v.size));

	/* APPEND through the cursor */
	for (long i = 20001; i < 20200; i++) {
		unsigned char *buf = scratch(64);
		uint64_t vs = rng_next(&r);

		keyname(kb, i);
		pattern_fill(vs, buf, 64);
		k = mkval(kb, 7);
		v = mkval(buf, 64);
		assert_ok(mmkv_cursor_put(cur, &k, &v, MMKV_APPEND));
		o.present[i] = 1;
		o.vseed[i] = vs;
		o.vlen[i] = 64;
		o.count++;
	}
	expect_get(&o, cur, MMKV_GET_CURRENT, 20199);
	keyname(kb, 20100);
	k = mkval(kb, 7);
	v = sval("late");
	assert_rc(mmkv_cursor_put(cur, &k, &v, MMKV_APPEND), MMKV_KEYEXIST);

	/* RESERVE through the cursor */
	keyname(kb, 7777);
	k = mkval(kb, 7);
	v.size = 3000;
	v.data = NULL;
	assert_ok(mmkv_cursor_put(cur, &k, &v, MMKV_RESERVE));
	assert_non_null(v.data);
	pattern_fill(4242, v.data, 3000);
	o.present[7777] = 1;
	o.vseed[7777] = 4242;
	o.vlen[7777] = 3000;
	o.count++;
	expect_get(&o, cur, MMKV_GET_CURRENT, 7777);

	mmkv_cursor_close(cur);
	verify_all(&o, txn, dbi);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	verify_all(&o, txn, dbi);
	mmkv_txn_abort(txn);
	check_env(env);
	oracle_free(&o);
}

static void test_cursor_del(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	test_rng r;
	oracle o;
	mmkv_dbi dbi;
	mmkv_txn *txn;
	mmkv_cursor *cur;
	mmkv_val k, v;
	char kb[8];

	rng_init(&r, seed ^ 2);
	oracle_init(&o);
	fill(&o, &r, env, &dbi, 5000, 10);
	txn = txn_write(env);
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	assert_rc(mmkv_cursor_del(cur, 0), EINVAL); /* unpositioned */

	/* delete, then NEXT returns the key after the deleted one */
	keyname(kb, 1000);
	k = mkval(kb, 7);
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET));
	assert_rc(mmkv_cursor_del(cur, 1), EINVAL);
	assert_ok(mmkv_cursor_del(cur, 0));
	o.present[1000] = 0;
	o.count--;
	assert_rc(mmkv_cursor_del(cur, 0), MMKV_NOTFOUND); /* already deleted */
	expect_get(&o, cur, MMKV_NEXT, 1010);
	expect_get(&o, cur, MMKV_PREV, 990);

	/* delete every other key while walking forward */
	expect_get(&o, cur, MMKV_FIRST, 10);
	for (long want = 10; want >= 0;) {
		long after;

		assert_ok(mmkv_cursor_del(cur, 0));
		o.present[want] = 0;
		o.count--;
		after = oracle_next(&o, want, false);
		expect_get(&o, cur, MMKV_NEXT, after);
		if (after < 0)
			break;
		want = oracle_next(&o, after, false);
		expect_get(&o, cur, MMKV_NEXT, want);
	}
	verify_all(&o, txn, dbi);

	/* the last key: then NEXT is NOTFOUND */
	expect_get(&o, cur, MMKV_LAST, oracle_prev(&o, UNIVERSE));
	assert_ok(mmkv_cursor_del(cur, 0));
	o.present[oracle_prev(&o, UNIVERSE)] = 0;
	o.count--;
	expect_get(&o, cur, MMKV_NEXT, -1);
	expect_get(&o, cur, MMKV_LAST, oracle_prev(&o, UNIVERSE));
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	verify_all(&o, txn, dbi);
	mmkv_txn_abort(txn);

	/* everything: FIRST + del until empty */
	txn = txn_write(env);
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	while (mmkv_cursor_get(cur, &k, &v, MMKV_FIRST) == 0) {
		long i = keynum(&k);
		assert_true(o.present[i]);
		assert_ok(mmkv_cursor_del(cur, 0));
		o.present[i] = 0;
		o.count--;
	}
	assert_int_equal(o.count, 0);
	verify_all(&o, txn, dbi);
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);

	/* refill, then delete all walking with del + NEXT */
	fill(&o, &r, env, &dbi, 3000, 3);
	txn = txn_write(env);
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_FIRST));
	do {
		assert_ok(mmkv_cursor_del(cur, 0));
	} while (mmkv_cursor_get(cur, &k, &v, MMKV_NEXT) == 0);
	memset(o.present, 0, UNIVERSE);
	o.count = 0;
	verify_all(&o, txn, dbi);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	verify_all(&o, txn, dbi);
	mmkv_txn_abort(txn);
	check_env(env);
	oracle_free(&o);
}

/* Cursor A walks (forward or backward) while the same transaction changes
 * the database around it through mmkv_put, mmkv_del, and cursor B. After
 * every change A's next step must be the oracle's neighbour of A's key. */
static void stability(mmkv_env *env, uint64_t s, bool forward, bool del_current)
{
	test_rng r;
	oracle o;
	mmkv_dbi dbi;
	mmkv_txn *txn;
	mmkv_cursor *a, *b;
	mmkv_val k, v;
	long pos, visits = 0;

	rng_init(&r, s);
	oracle_init(&o);
	/* Keys 16..192000: a forward (backward) step uses up about five keys
	 * ahead on average (the step itself, single deletes and the 5 % bursts
	 * of 80 deletes), so 12000 keys last some 2000+ checked steps. */
	fill(&o, &r, env, &dbi, 12000, 16);
	txn = txn_write(env);
	assert_ok(mmkv_cursor_open(txn, dbi, &a));
	assert_ok(mmkv_cursor_open(txn, dbi, &b));
	pos = forward ? oracle_next(&o, 0, true) : oracle_prev(&o, UNIVERSE);
	expect_get(&o, a, forward ? MMKV_FIRST : MMKV_LAST, pos);
	for (;;) {
		uint64_t what = rng_below(&r, 100);
		bool deleted = false;

		visits++;
		if (what < 25) {
			/* delete every other key ahead of A */
			long x = forward ? oracle_next(&o, pos, false) : oracle_prev(&o, pos);
			if (x >= 0)
				oracle_del(&o, txn, dbi, x);
		} else if (what < 35) {
			/* delete a key anywhere else */
			long x = oracle_next(&o, (long)rng_below(&r, UNIVERSE), true);
			if (x >= 0 && x != pos)
				oracle_del(&o, txn, dbi, x);
		} else if (what < 60) {
			/* insert through B near A, ahead or behind */
			long x = pos + (long)rng_range(&r, 1, 40) * (rng_pct(&r, 50) ? 1 : -1);
			if (x >= 0 && x < UNIVERSE && x != pos)
				oracle_put(&o, &r, txn, dbi, b, x, pick_size(&r));
		} else if (what < 65) {
			/* a burst of inserts right after A: splits A's page */
			for (int i = 0; i < 60; i++) {
				long x = pos + (forward ? 1 : -1) * (long)rng_range(&r, 1, 15);
				if (x >= 0 && x < UNIVERSE && x != pos)
					oracle_put(&o, &r, txn, dbi, rng_pct(&r, 50) ? b : NULL, x,
					           rng_range(&r, 100, 900));
			}
		} else if (what < 70) {
			/* a burst of deletes ahead of A: merges pages */
			for (int i = 0; i < 80; i++) {
				long x = forward ? oracle_next(&o, pos, false) : oracle_prev(&o, pos);
				if (x < 0)
					break;
				oracle_del(&o, txn, dbi, x);
			}
		} else if (what < 75) {
			/* replace A's own value */
			oracle_put(&o, &r, txn, dbi, NULL, pos, pick_size(&r));
			expect_get(&o, a, MMKV_GET_CURRENT, pos);
		} else if (what < 80 && del_current && forward) {
			/* delete A's key under it, by mmkv_del or by cursor B */
			if (rng_pct(&r, 50)) {
				oracle_del(&o, txn, dbi, pos);
			} else {
				char kb[8];
				keyname(kb, pos);
				k = mkval(kb, 7);
				assert_ok(mmkv_cursor_get(b, &k, &v, MMKV_SET));
				assert_ok(mmkv_cursor_del(b, 0));
				o.present[pos] = 0;
				o.count--;
			}
			deleted = true;
		}
		if (!deleted && rng_pct(&r, 10))
			expect_get(&o, a, MMKV_GET_CURRENT, pos);
		{
			long want = forward ? oracle_next(&o, pos, false) : oracle_prev(&o, pos);
			mmkv_val kk, vv;
			int rc = mmkv_cursor_get(a, &kk, &vv, forward ? MMKV_NEXT : MMKV_PREV);

			if (want < 0) {
				if (rc != MMKV_NOTFOUND)
					fail_msg("after %ld steps at key %ld: expected the end, got rc %d key %ld",
					         visits, pos, rc, rc == 0 ? keynum(&kk) : -1L);
				break;
			}
			if (rc != 0)
				fail_msg("after %ld steps at key %ld: expected key %ld, got %d (%s)", visits,
				         pos, want, rc, mmkv_strerror(rc));
			if (keynum(&kk) != want)
				fail_msg("after %ld steps at key %ld%s: expected key %ld, got %ld", visits, pos,
				         deleted ? " (deleted)" : "", want, keynum(&kk));
			expect_entry(&o, &kk, &vv, want);
			pos = want;
		}
	}
	assert_true(visits > 1000);
	mmkv_cursor_close(a);
	mmkv_cursor_close(b);
	verify_all(&o, txn, dbi);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	verify_all(&o, txn, dbi);
	mmkv_txn_abort(txn);
	check_env(env);
	/* empty the database for the next round */
	txn = txn_write(env);
	assert_ok(mmkv_drop(txn, dbi, 0));
	assert_ok(mmkv_txn_commit(txn));
	oracle_free(&o);
}

static void test_cursor_stability_forward(void **state)
{
	test_fixture *fx = FX(state);

	fx->env = open_env(fx->path, 0);
	stability(fx->env, seed ^ 3, true, false);
}

static void test_cursor_stability_backward(void **state)
{
	test_fixture *fx = FX(state);

	fx->env = open_env(fx->path, 0);
	stability(fx->env, seed ^ 4, false, false);
}

static void test_cursor_stability_del_current(void **state)
{
	test_fixture *fx = FX(state);

	fx->env = open_env(fx->path, 0);
	stability(fx->env, seed ^ 5, true, true);
}

/* A cursor whose key was deleted (by mmkv_del or another cursor) waits after
 * it through later, unrelated changes: splits and merges around it. */
static void test_cursor_del_then_changes(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	test_rng r;
	oracle o;
	mmkv_dbi dbi;
	mmkv_txn *txn;
	mmkv_cursor *a, *b;
	mmkv_val k, v;
	char kb[8];

	rng_init(&r, seed ^ 7);
	oracle_init(&o);
	fill(&o, &r, env, &dbi, 3000, 10);
	txn = txn_write(env);
	assert_ok(mmkv_cursor_open(txn, dbi, &a));
	assert_ok(mmkv_cursor_open(txn, dbi, &b));
	for (int round = 0; round < 40; round++) {
		long x = oracle_next(&o, (long)rng_range(&r, 100, 29000), true), after;

		assert_true(x >= 0);
		keyname(kb, x);
		k = mkval(kb, 7);
		assert_ok(mmkv_cursor_get(a, &k, &v, MMKV_SET));
		if (round % 2) {
			oracle_del(&o, txn, dbi, x);
		} else {
			assert_ok(mmkv_cursor_get(b, &k, &v, MMKV_SET));
			assert_ok(mmkv_cursor_del(b, 0));
			o.present[x] = 0;
			o.count--;
		}
		after = oracle_next(&o, x, false);
		/* keys just before x, and just beyond the key after it: A's page splits */
		for (int i = 0; i < 80; i++) {
			long y = x - (long)rng_range(&r, 1, 9);
			if (y > 0 && !o.present[y])
				oracle_put(&o, &r, txn, dbi, rng_pct(&r, 50) ? b : NULL, y, rng_range(&r, 50, 500));
			y = after + (long)rng_range(&r, 1, 9);
			if (after > 0 && y < UNIVERSE)
				oracle_put(&o, &r, txn, dbi, NULL, y, rng_range(&r, 50, 500));
		}
		/* far away: deletes (merges) and inserts */
		for (int i = 0; i < 60; i++) {
			long y = oracle_next(&o, (long)rng_range(&r, 0, x > 2000 ? (uint64_t)x - 2000 : 0), true);
			if (y >= 0 && y < x - 100)
				oracle_del(&o, txn, dbi, y);
			oracle_put(&o, &r, txn, dbi, NULL, (long)rng_range(&r, 60000, 90000), pick_size(&r));
		}
		expect_get(&o, a, MMKV_NEXT, after);
		expect_get(&o, a, MMKV_PREV, oracle_prev(&o, after));
	}
	mmkv_cursor_close(a);
	mmkv_cursor_close(b);
	verify_all(&o, txn, dbi);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	verify_all(&o, txn, dbi);
	mmkv_txn_abort(txn);
	check_env(env);
	oracle_free(&o);
}

/* A read cursor walks its snapshot while the writer rewrites everything. */
static void test_cursor_read_snapshot(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	test_rng r;
	oracle o, now;
	mmkv_dbi dbi;
	mmkv_txn *rd, *w;
	mmkv_cursor *cur;
	long pos;
	int step = 0;

	rng_init(&r, seed ^ 6);
	oracle_init(&o);
	oracle_init(&now);
	fill(&o, &r, env, &dbi, 3000, 10);
	memcpy(now.present, o.present, UNIVERSE);
	memcpy(now.vseed, o.vseed, UNIVERSE * sizeof(*o.vseed));
	memcpy(now.vlen, o.vlen, UNIVERSE * sizeof(*o.vlen));
	now.count = o.count;

	rd = txn_read(env);
	assert_ok(mmkv_cursor_open(rd, dbi, &cur));
	pos = oracle_next(&o, 0, true);
	expect_get(&o, cur, MMKV_FIRST, pos);
	while (pos >= 0) {
		if (step++ % 100 == 0) {
			/* a commit that changes keys around the reader */
			w = txn_write(env);
			for (int i = 0; i < 200; i++) {
				long x = (long)rng_below(&r, 31000);
				if (now.present[x] && rng_pct(&r, 50))
					oracle_del(&now, w, dbi, x);
				else
					oracle_put(&now, &r, w, dbi, NULL, x, pick_size(&r));
			}
			assert_ok(mmkv_txn_commit(w));
		}
		pos = oracle_next(&o, pos, false);
		expect_get(&o, cur, MMKV_NEXT, pos);
	}
	mmkv_cursor_close(cur);
	verify_all(&o, rd, dbi);
	mmkv_txn_abort(rd);
	rd = txn_read(env);
	verify_all(&now, rd, dbi);
	mmkv_txn_abort(rd);
	check_env(env);
	oracle_free(&o);
	oracle_free(&now);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_cursor_open_errors),
		T(test_cursor_empty_db),
		T(test_cursor_positioning),
		T(test_cursor_put),
		T(test_cursor_del),
		T(test_cursor_stability_forward),
		T(test_cursor_stability_backward),
		T(test_cursor_stability_del_current),
		T(test_cursor_del_then_changes),
		T(test_cursor_read_snapshot),
	};

	watchdog(600);
	seed = test_seed("test_cursor");
	return RUN_BOTH_MODES("cursor", tests) ? 1 : 0;
}
