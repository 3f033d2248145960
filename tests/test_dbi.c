/*
 * test_dbi.c - database handles, through <mmkv.h> only.
 *
 * Covers mmkv_dbi_open (argument errors, name length, NOTFOUND without
 * MMKV_CREATE or in a read transaction, the same handle for the same name,
 * reopening in later transactions and after reopening the environment, many
 * databases listed at once, MMKV_DBS_FULL past maxdbs, abort of the creating
 * transaction, MMKV_INCOMPATIBLE key flags and the empty-database exception);
 * mmkv_drop (del = 0 empties, del = 1 deletes, abort undoes, the default
 * database is only emptied, freed pages are accounted); mmkv_dbi_stat
 * (entries, depth growing with size, page counts) and mmkv_dbi_flags; key
 * orders: MMKV_INTEGERKEY with 4- and 8-byte keys in numeric order (and
 * MMKV_BAD_VALSIZE for other sizes), MMKV_REVERSEKEY, and a custom comparator
 * set with mmkv_set_compare, each checked against qsort with the same order.
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

/* ------------------------------------------------------------ handles */

static void test_dbi_open_errors(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 8);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi;
	char name[300];

	assert_rc(mmkv_dbi_open(NULL, NULL, 0, &dbi), EINVAL);
	assert_rc(mmkv_dbi_open(txn, NULL, 0, NULL), EINVAL);
	assert_rc(mmkv_dbi_open(txn, "x", 0x40000000u, &dbi), EINVAL);
	assert_rc(mmkv_dbi_open(txn, "x", MMKV_CREATE | MMKV_NOOVERWRITE, &dbi), EINVAL);
	assert_rc(mmkv_dbi_open(txn, "x", MMKV_INTEGERKEY | MMKV_REVERSEKEY | MMKV_CREATE | MMKV_RDONLY,
	                        &dbi),
	          EINVAL);
	memset(name, 'n', sizeof(name));
	name[256] = '\0';
	assert_rc(mmkv_dbi_open(txn, name, MMKV_CREATE, &dbi), EINVAL);
	name[255] = '\0';
	assert_ok(mmkv_dbi_open(txn, name, MMKV_CREATE, &dbi));
	put_str(txn, dbi, "k", "v");

	/* missing, without CREATE */
	assert_rc(mmkv_dbi_open(txn, "missing", 0, &dbi), MMKV_NOTFOUND);
	assert_rc(mmkv_dbi_stat(txn, dbi_ok(txn, name, 0), NULL), EINVAL);
	{
		unsigned int fl;
		assert_rc(mmkv_dbi_flags(txn, dbi_ok(txn, NULL, 0), NULL), EINVAL);
		assert_rc(mmkv_dbi_flags(NULL, dbi_ok(txn, NULL, 0), &fl), EINVAL);
	}
	assert_rc(mmkv_drop(NULL, dbi, 0), EINVAL);
	assert_rc(mmkv_set_compare(NULL, dbi, NULL), EINVAL);
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	/* missing in a read transaction, even with CREATE */
	assert_rc(mmkv_dbi_open(txn, "missing", 0, &dbi), MMKV_NOTFOUND);
	assert_rc(mmkv_dbi_open(txn, "missing", MMKV_CREATE, &dbi), MMKV_NOTFOUND);
	expect_str(txn, dbi_ok(txn, name, 0), "k", "v");
	mmkv_txn_reset(txn);
	assert_rc(mmkv_dbi_open(txn, name, 0, &dbi), MMKV_BAD_TXN);
	mmkv_txn_abort(txn);
	check_env(env);
}

static void test_dbi_create_reopen(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 8);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi a, a2, b, main_dbi;
	unsigned int fl = 99;

	main_dbi = dbi_ok(txn, NULL, 0);
	a = dbi_ok(txn, "alpha", MMKV_CREATE);
	a2 = dbi_ok(txn, "alpha", MMKV_CREATE);
	assert_int_equal(a, a2);
	a2 = dbi_ok(txn, "alpha", 0);
	assert_int_equal(a, a2);
	b = dbi_ok(txn, "beta", MMKV_CREATE);
	assert_int_not_equal(a, b);
	assert_int_not_equal(a, main_dbi);
	assert_int_equal(dbi_ok(txn, NULL, 0), main_dbi);
	/* the same key in three databases */
	put_str(txn, main_dbi, "k", "main");
	put_str(txn, a, "k", "alpha");
	put_str(txn, b, "k", "beta");
	put_str(txn, a, "only-a", "1");
	assert_ok(mmkv_dbi_flags(txn, a, &fl));
	assert_int_equal(fl & (MMKV_INTEGERKEY | MMKV_REVERSEKEY), 0);
	assert_int_equal(db_entries(txn, a), 2);
	assert_int_equal(db_entries(txn, main_dbi), 1);
	assert_ok(mmkv_txn_commit(txn));

	/* handles stay valid in later transactions */
	txn = txn_read(env);
	expect_str(txn, a, "k", "alpha");
	expect_str(txn, b, "k", "beta");
	expect_str(txn, main_dbi, "k", "main");
	expect_missing(txn, main_dbi, "only-a", 6);
	assert_int_equal(dbi_ok(txn, "alpha", 0), a);
	mmkv_txn_abort(txn);
	/* env_stat: the default database only, named ones are not its keys */
	{
		mmkv_stat st;
		assert_ok(mmkv_env_stat(env, &st));
		assert_int_equal(st.entries, 1);
	}
	check_env(env);
	mmkv_env_close(env);

	/* after reopening, by name */
	env = fx->env = open_env_dbs(fx->path, 0, 8);
	txn = txn_read(env);
	b = dbi_ok(txn, "beta", 0);
	a = dbi_ok(txn, "alpha", 0);
	expect_str(txn, a, "k", "alpha");
	expect_str(txn, a, "only-a", "1");
	expect_str(txn, b, "k", "beta");
	expect_str(txn, dbi_ok(txn, NULL, 0), "k", "main");
	mmkv_txn_abort(txn);
	check_env(env);
}

static void test_dbi_many(void **state)
{
	test_fixture *fx = FX(state);
	enum { NDB = 100 };
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, NDB);
	mmkv_dbi dbis[NDB];
	mmkv_txn *txn = txn_write(env);
	char name[16], k[48];

	for (int i = 0; i < NDB; i++) {
		snprintf(name, sizeof(name), "db%03d", i);
		dbis[i] = dbi_ok(txn, name, MMKV_CREATE);
		for (int j = 0; j <= i; j++) {
			snprintf(k, sizeof(k), "%s-%d", name, j);
			put_str(txn, dbis[i], k, name);
		}
	}
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	mmkv_env_close(env);

	env = fx->env = open_env_dbs(fx->path, 0, NDB);
	txn = txn_read(env);
	/* opened in reverse order: contents still follow the names */
	for (int i = NDB - 1; i >= 0; i--) {
		snprintf(name, sizeof(name), "db%03d", i);
		dbis[i] = dbi_ok(txn, name, 0);
		assert_int_equal(db_entries(txn, dbis[i]), (uint64_t)i + 1);
		snprintf(k, sizeof(k), "%s-%d", name, i);
		expect_str(txn, dbis[i], k, name);
	}
	for (int i = 0; i < NDB; i++)
		for (int j = 0; j < i; j++)
			assert_int_not_equal(dbis[i], dbis[j]);
	mmkv_txn_abort(txn);
	check_env(env);
}

static void test_dbi_full(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 4);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi;
	char name[16];

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		put_str(txn, dbi_ok(txn, name, MMKV_CREATE), "k", name);
	}
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_write(env);
	assert_rc(mmkv_dbi_open(txn, "d4", MMKV_CREATE, &dbi), MMKV_DBS_FULL);
	mmkv_txn_abort(txn);
	/* opening existing names does not take new handles */
	txn = txn_read(env);
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		expect_str(txn, dbi_ok(txn, name, 0), "k", name);
	}
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);

	/* a fresh handle with room: the file held no fifth database */
	env = fx->env = open_env_dbs(fx->path, 0, 5);
	txn = txn_read(env);
	assert_rc(mmkv_dbi_open(txn, "d4", 0, &dbi), MMKV_NOTFOUND);
	mmkv_txn_abort(txn);
	check_env(env);
}

static void test_dbi_create_aborted(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 8);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi, again;

	dbi = dbi_ok(txn, "ghost", MMKV_CREATE);
	put_str(txn, dbi, "k", "v");
	mmkv_txn_abort(txn);

	txn = txn_read(env);
	assert_rc(mmkv_dbi_open(txn, "ghost", 0, &again), MMKV_NOTFOUND);
	mmkv_txn_abort(txn);
	txn = txn_write(env);
	assert_rc(mmkv_dbi_open(txn, "ghost", 0, &again), MMKV_NOTFOUND);
	/* created for real this time, empty */
	again = dbi_ok(txn, "ghost", MMKV_CREATE);
	assert_int_equal(db_entries(txn, again), 0);
	expect_missing(txn, again, "k", 1);
	put_str(txn, again, "k2", "v2");
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	expect_str(txn, dbi_ok(txn, "ghost", 0), "k2", "v2");
	expect_missing(txn, dbi_ok(txn, "ghost", 0), "k", 1);
	mmkv_txn_abort(txn);
	check_env(env);
}

static void fill_named(mmkv_txn *txn, mmkv_dbi dbi, int n, size_t vsize)
{
	unsigned char *buf = malloc(vsize + 1);
	char k[32];

	assert_non_null(buf);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "key%07d", i);
		pattern_fill((uint64_t)i, buf, vsize);
		put_ok(txn, dbi, k, strlen(k), buf, vsize);
	}
	free(buf);
}

static void test_drop(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 8);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi a, b, m, dbi;
	mmkv_stat st;
	mmkv_envinfo info;

	a = dbi_ok(txn, "a", MMKV_CREATE | MMKV_INTEGERKEY);
	b = dbi_ok(txn, "b", MMKV_CREATE);
	m = dbi_ok(txn, NULL, 0);
	for (uint32_t i = 0; i < 3000; i++)
		put_ok(txn, a, &i, 4, "value-of-a", 10);
	fill_named(txn, b, 3000, 300);
	fill_named(txn, m, 100, 9000); /* overflow values too */
	assert_ok(mmkv_txn_commit(txn));

	/* drop del = 0: empty, still there, keeps its flags */
	txn = txn_write(env);
	assert_ok(mmkv_drop(txn, a, 0));
	assert_ok(mmkv_dbi_stat(txn, a, &st));
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.leaf_pages + st.branch_pages + st.overflow_pages, 0);
	{
		uint32_t k = 5;
		expect_missing(txn, a, &k, 4);
		put_ok(txn, a, &k, 4, "again", 5);
	}
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	assert_int_equal(db_entries(txn, dbi_ok(txn, "a", 0)), 1);
	{
		unsigned int fl;
		assert_ok(mmkv_dbi_flags(txn, a, &fl));
		assert_true(fl & MMKV_INTEGERKEY);
	}
	mmkv_txn_abort(txn);

	/* drop del = 1, aborted: nothing happened */
	txn = txn_write(env);
	assert_ok(mmkv_drop(txn, b, 1));
	mmkv_txn_abort(txn);
	txn = txn_read(env);
	assert_int_equal(db_entries(txn, dbi_ok(txn, "b", 0)), 3000);
	mmkv_txn_abort(txn);

	/* drop del = 1: gone */
	txn = txn_write(env);
	assert_ok(mmkv_drop(txn, b, 1));
	assert_rc(mmkv_dbi_open(txn, "b", 0, &dbi), MMKV_NOTFOUND);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	assert_rc(mmkv_dbi_open(txn, "b", 0, &dbi), MMKV_NOTFOUND);
	mmkv_txn_abort(txn);
	check_env(env);

	/* the default database is only emptied */
	txn = txn_write(env);
	assert_ok(mmkv_drop(txn, m, 1));
	assert_int_equal(db_entries(txn, m), 0);
	put_str(txn, m, "still", "here");
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	assert_int_equal(dbi_ok(txn, NULL, 0), m);
	expect_str(txn, m, "still", "here");
	assert_int_equal(db_entries(txn, m), 1);
	mmkv_txn_abort(txn);

	/* the pages went to the free tree; recreate "b" from nothing */
	assert_ok(mmkv_env_info(env, &info));
	assert_true(info.free_pages > 0);
	txn = txn_write(env);
	b = dbi_ok(txn, "b", MMKV_CREATE);
	assert_int_equal(db_entries(txn, b), 0);
	fill_named(txn, b, 10, 10);
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	mmkv_env_close(env);
	env = fx->env = open_env_dbs(fx->path, 0, 8);
	txn = txn_read(env);
	assert_int_equal(db_entries(txn, dbi_ok(txn, "b", 0)), 10);
	assert_int_equal(db_entries(txn, dbi_ok(txn, "a", 0)), 1);
	mmkv_txn_abort(txn);
	check_env(env);
}

static void test_dbi_stat_depth(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 4);
	mmkv_txn *txn;
	mmkv_dbi dbi;
	mmkv_stat st;
	mmkv_envinfo info;
	uint32_t prev_depth = 0;
	int total = 0;
	static const int steps[] = { 1, 10, 100, 1000, 10000, 60000 };

	assert_ok(mmkv_env_info(env, &info));
	txn = txn_write(env);
	dbi = dbi_ok(txn, "s", MMKV_CREATE);
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.page_size, info.page_size);
	assert_ok(mmkv_txn_commit(txn));

	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		char k[32], v[64];

		txn = txn_write(env);
		for (; total < steps[s]; total++) {
			snprintf(k, sizeof(k), "%08d", (int)((total * 7919u) % 1000003u));
			snprintf(v, sizeof(v), "value %d, padded to be a little longer", total);
			put_str(txn, dbi, k, v);
		}
		assert_ok(mmkv_txn_commit(txn));
		txn = txn_read(env);
		assert_ok(mmkv_dbi_stat(txn, dbi, &st));
		assert_int_equal(st.entries, (uint64_t)total);
		assert_true(st.depth >= prev_depth);
		assert_true(st.leaf_pages >= 1);
		assert_int_equal(st.overflow_pages, 0);
		if (st.depth == 1)
			assert_int_equal(st.branch_pages, 0);
		else
			assert_true(st.branch_pages >= 1);
		/* at least depth - 1 branch levels and enough leaves for the data */
		assert_true(st.leaf_pages * info.page_size >= (uint64_t)total * 50);
		prev_depth = st.depth;
		mmkv_txn_abort(txn);
	}
	assert_true(prev_depth >= 3);

	/* deleting shrinks the counts back */
	txn = txn_write(env);
	for (int i = 0; i < total; i += 2) {
		char k[32];
		mmkv_val key;
		snprintf(k, sizeof(k), "%08d", (int)((i * 7919u) % 1000003u));
		key = sval(k);
		assert_ok(mmkv_del(txn, dbi, &key, NULL));
	}
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_int_equal(st.entries, (uint64_t)total / 2);
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
}

/* -------------------------------------------------------------- orders */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Walk dbi and compare with the n expected keys of width w, in order. */
static void walk_expect(mmkv_txn *txn, mmkv_dbi dbi, const unsigned char *keys, size_t n, size_t w,
                        bool backward)
{
	mmkv_cursor *cur;
	mmkv_val k, v;
	size_t i = 0;

	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	while (mmkv_cursor_get(cur, &k, &v, backward ? MMKV_PREV : MMKV_NEXT) == 0) {
		size_t at = backward ? n - 1 - i : i;
		assert_true(i < n);
		assert_int_equal(k.size, w);
		assert_memory_equal(k.data, keys + at * w, w);
		assert_int_equal(v.size, w);
		assert_memory_equal(v.data, keys + at * w, w);
		i++;
	}
	assert_int_equal(i, n);
	mmkv_cursor_close(cur);
}

static void test_integerkey(void **state)
{
	test_fixture *fx = FX(state);
	enum { N = 20000 };
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 4);
	uint32_t *k4 = malloc(N * sizeof(uint32_t));
	uint64_t *k8 = malloc(N * sizeof(uint64_t));
	mmkv_txn *txn;
	mmkv_dbi d4, d8;
	test_rng r;
	size_t n4 = 0, n8 = 0;
	unsigned int fl;

	assert_non_null(k4);
	assert_non_null(k8);
	rng_init(&r, seed);
	txn = txn_write(env);
	d4 = dbi_ok(txn, "int4", MMKV_CREATE | MMKV_INTEGERKEY);
	d8 = dbi_ok(txn, "int8", MMKV_CREATE | MMKV_INTEGERKEY);
	assert_ok(mmkv_dbi_flags(txn, d4, &fl));
	assert_int_equal(fl & (MMKV_INTEGERKEY | MMKV_REVERSEKEY), MMKV_INTEGERKEY);
	for (int i = 0; i < N; i++) {
		/* values that differ from byte order on a little-endian host:
		 * small, with the top bit, and around byte boundaries */
		uint32_t a;
		uint64_t b;
		switch (i % 4) {
		case 0: a = (uint32_t)rng_below(&r, 1000); break;
		case 1: a = 0x80000000u | (uint32_t)rng_next(&r); break;
		case 2: a = 255u + (uint32_t)rng_below(&r, 3) * 256u; break;
		default: a = (uint32_t)rng_next(&r); break;
		}
		switch (i % 3) {
		case 0: b = rng_below(&r, 1u << 20); break;
		case 1: b = 0x8000000000000000ull | rng_next(&r); break;
		default: b = rng_next(&r) >> rng_below(&r, 64); break;
		}
		if (i == 0)
			a = 0, b = 0;
		if (i == 1)
			a = UINT32_MAX, b = UINT64_MAX;
		put_ok(txn, d4, &a, 4, &a, 4);
		put_ok(txn, d8, &b, 8, &b, 8);
	}
	/* wrong key sizes */
	{
		mmkv_val k3 = mkval("abc", 3), k5 = mkval("abcde", 5), k1 = mkval("a", 1), v = sval("v"), out;
		assert_rc(mmkv_put(txn, d4, &k3, &v, 0), MMKV_BAD_VALSIZE);
		assert_rc(mmkv_get(txn, d4, &k3, &out), MMKV_BAD_VALSIZE);
		assert_rc(mmkv_del(txn, d4, &k3, NULL), MMKV_BAD_VALSIZE);
		assert_rc(mmkv_put(txn, d4, &k5, &v, 0), MMKV_BAD_VALSIZE);
		assert_rc(mmkv_put(txn, d8, &k1, &v, 0), MMKV_BAD_VALSIZE);
		assert_rc(mmkv_put(txn, d8, &k3, &v, 0), MMKV_BAD_VALSIZE);
	}
	assert_ok(mmkv_txn_commit(txn));

	/* the expected orders: the distinct keys, numerically sorted */
	txn = txn_read(env);
	{
		mmkv_cursor *cur;
		mmkv_val k, v;
		assert_ok(mmkv_cursor_open(txn, d4, &cur));
		while (mmkv_cursor_get(cur, &k, &v, MMKV_NEXT) == 0) {
			assert_int_equal(k.size, 4);
			memcpy(&k4[n4++], k.data, 4);
		}
		mmkv_cursor_close(cur);
		assert_ok(mmkv_cursor_open(txn, d8, &cur));
		while (mmkv_cursor_get(cur, &k, &v, MMKV_NEXT) == 0) {
			assert_int_equal(k.size, 8);
			memcpy(&k8[n8++], k.data, 8);
		}
		mmkv_cursor_close(cur);
	}
	assert_int_equal(db_entries(txn, d4), n4);
	assert_int_equal(db_entries(txn, d8), n8);
	assert_true(n4 > N / 2 && n8 > N / 2);
	for (size_t i = 1; i < n4; i++)
		assert_true(k4[i - 1] < k4[i]);
	for (size_t i = 1; i < n8; i++)
		assert_true(k8[i - 1] < k8[i]);
	assert_int_equal(k4[0], 0);
	assert_int_equal(k4[n4 - 1], UINT32_MAX);
	assert_int_equal(k8[0], 0);
	assert_true(k8[n8 - 1] == UINT64_MAX);
	/* regenerate the inserted keys independently: same set */
	{
		uint32_t *e4 = malloc(N * sizeof(uint32_t));
		uint64_t *e8 = malloc(N * sizeof(uint64_t));
		size_t m4 = 0, m8 = 0;
		assert_non_null(e4);
		assert_non_null(e8);
		rng_init(&r, seed);
		for (int i = 0; i < N; i++) {
			uint32_t a;
			uint64_t b;
			switch (i % 4) {
			case 0: a = (uint32_t)rng_below(&r, 1000); break;
			case 1: a = 0x80000000u | (uint32_t)rng_next(&r); break;
			case 2: a = 255u + (uint32_t)rng_below(&r, 3) * 256u; break;
			default: a = (uint32_t)rng_next(&r); break;
			}
			switch (i % 3) {
			case 0: b = rng_below(&r, 1u << 20); break;
			case 1: b = 0x8000000000000000ull | rng_next(&r); break;
			default: b = rng_next(&r) >> rng_below(&r, 64); break;
			}
			if (i == 0)
				a = 0, b = 0;
			if (i == 1)
				a = UINT32_MAX, b = UINT64_MAX;
			e4[i] = a;
			e8[i] = b;
		}
		qsort(e4, N, 4, cmp_u32);
		qsort(e8, N, 8, cmp_u64);
		for (size_t i = 0; i < N; i++) {
			if (i == 0 || e4[i] != e4[i - 1])
				e4[m4++] = e4[i];
			if (i == 0 || e8[i] != e8[i - 1])
				e8[m8++] = e8[i];
		}
		assert_int_equal(m4, n4);
		assert_int_equal(m8, n8);
		assert_memory_equal(e4, k4, n4 * 4);
		assert_memory_equal(e8, k8, n8 * 8);
		walk_expect(txn, d4, (unsigned char *)e4, m4, 4, true);
		walk_expect(txn, d8, (unsigned char *)e8, m8, 8, true);
		/* SET_RANGE is numeric too */
		{
			mmkv_cursor *cur;
			uint32_t probe = 256;
			mmkv_val k = mkval(&probe, 4), v;
			size_t i = 0;
			while (e4[i] < probe)
				i++;
			assert_ok(mmkv_cursor_open(txn, d4, &cur));
			assert_ok(mmkv_cursor_get(cur, &k, &v, MMKV_SET_RANGE));
			assert_memory_equal(k.data, &e4[i], 4);
			mmkv_cursor_close(cur);
		}
		free(e4);
		free(e8);
	}
	mmkv_txn_abort(txn);
	check_env(env);
	free(k4);
	free(k8);
}

static int rev_memcmp(const void *a, size_t alen, const void *b, size_t blen)
{
	const unsigned char *x = (const unsigned char *)a + alen, *y = (const unsigned char *)b + blen;
	size_t n = alen < blen ? alen : blen;

	while (n--) {
		--x;
		--y;
		if (*x != *y)
			return *x < *y ? -1 : 1;
	}
	return alen < blen ? -1 : alen > blen;
}

struct vkey {
	unsigned char b[24];
	size_t n;
};

static int cmp_vkey_rev(const void *a, const void *b)
{
	const struct vkey *x = a, *y = b;
	return rev_memcmp(x->b, x->n, y->b, y->n);
}

/* Descending bytewise: the custom comparator. */
static int cmp_desc(const mmkv_val *a, const mmkv_val *b)
{
	size_t n = a->size < b->size ? a->size : b->size;
	int c = memcmp(a->data, b->data, n);

	if (c == 0)
		c = a->size < b->size ? -1 : a->size > b->size;
	return -c;
}

static int cmp_vkey_desc(const void *a, const void *b)
{
	const struct vkey *x = a, *y = b;
	mmkv_val va = mkval(x->b, x->n), vb = mkval(y->b, y->n);
	return cmp_desc(&va, &vb);
}

/* Random keys of 1..24 bytes over a small alphabet (many shared prefixes
 * and suffixes), inserted into dbi; returns them sorted by cmp, deduplicated. */
static size_t make_keys(test_rng *r, struct vkey *keys, size_t n, int (*cmp)(const void *, const void *))
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		keys[i].n = (size_t)rng_range(r, 1, sizeof(keys[i].b));
		for (size_t j = 0; j < keys[i].n; j++)
			keys[i].b[j] = (unsigned char)("ab\x01\xff"[rng_below(r, 4)]);
	}
	qsort(keys, n, sizeof(*keys), cmp);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || cmp(&keys[m - 1], &keys[i]) != 0)
			keys[m++] = keys[i];
	return m;
}

static void walk_vkeys(mmkv_txn *txn, mmkv_dbi dbi, const struct vkey *keys, size_t n)
{
	mmkv_cursor *cur;
	mmkv_val k, v;
	size_t i = 0;

	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	while (mmkv_cursor_get(cur, &k, &v, MMKV_NEXT) == 0) {
		assert_true(i < n);
		assert_int_equal(k.size, keys[i].n);
		assert_memory_equal(k.data, keys[i].b, k.size);
		i++;
	}
	assert_int_equal(i, n);
	while (mmkv_cursor_get(cur, &k, &v, MMKV_PREV) == 0) {
		i--;
		assert_int_equal(k.size, keys[i - 1].n);
		assert_memory_equal(k.data, keys[i - 1].b, k.size);
	}
	assert_int_equal(i, 1);
	mmkv_cursor_close(cur);
}

static void test_reversekey(void **state)
{
	test_fixture *fx = FX(state);
	enum { N = 15000 };
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 4);
	struct vkey *keys = malloc(N * sizeof(*keys));
	mmkv_txn *txn;
	mmkv_dbi dbi;
	test_rng r;
	size_t n;
	unsigned int fl;

	assert_non_null(keys);
	rng_init(&r, seed ^ 1);
	n = make_keys(&r, keys, N, cmp_vkey_rev);
	txn = txn_write(env);
	dbi = dbi_ok(txn, "rev", MMKV_CREATE | MMKV_REVERSEKEY);
	/* insert in a shuffled order */
	for (size_t i = 0; i < n; i++) {
		size_t j = (i * 7919u) % n;
		put_ok(txn, dbi, keys[j].b, keys[j].n, "v", 1);
	}
	walk_vkeys(txn, dbi, keys, n);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	assert_ok(mmkv_dbi_flags(txn, dbi, &fl));
	assert_int_equal(fl & (MMKV_INTEGERKEY | MMKV_REVERSEKEY), MMKV_REVERSEKEY);
	assert_int_equal(db_entries(txn, dbi), n);
	walk_vkeys(txn, dbi, keys, n);
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);
	env = fx->env = open_env_dbs(fx->path, 0, 4);
	txn = txn_read(env);
	walk_vkeys(txn, dbi_ok(txn, "rev", 0), keys, n);
	mmkv_txn_abort(txn);
	check_env(env);
	free(keys);
}

static void test_custom_compare(void **state)
{
	test_fixture *fx = FX(state);
	enum { N = 15000 };
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 4);
	struct vkey *keys = malloc(N * sizeof(*keys));
	mmkv_txn *txn;
	mmkv_dbi dbi, main_dbi;
	test_rng r;
	size_t n;

	assert_non_null(keys);
	rng_init(&r, seed ^ 2);
	n = make_keys(&r, keys, N, cmp_vkey_desc);
	txn = txn_write(env);
	dbi = dbi_ok(txn, "desc", MMKV_CREATE);
	main_dbi = dbi_ok(txn, NULL, 0);
	assert_rc(mmkv_set_compare(txn, dbi, NULL), EINVAL);
	assert_rc2(mmkv_set_compare(txn, 9999, cmp_desc), MMKV_BAD_DBI, EINVAL);
	assert_ok(mmkv_set_compare(txn, dbi, cmp_desc));
	assert_ok(mmkv_set_compare(txn, main_dbi, cmp_desc));
	for (size_t i = 0; i < n; i++) {
		size_t j = (i * 7919u) % n;
		put_ok(txn, dbi, keys[j].b, keys[j].n, "v", 1);
		put_ok(txn, main_dbi, keys[j].b, keys[j].n, "m", 1);
	}
	walk_vkeys(txn, dbi, keys, n);
	walk_vkeys(txn, main_dbi, keys, n);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	walk_vkeys(txn, dbi, keys, n);
	expect_val(txn, dbi, keys[n / 2].b, keys[n / 2].n, "v", 1);
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);

	/* every process sets it again, in its first transaction using the handle */
	env = fx->env = open_env_dbs(fx->path, 0, 4);
	txn = txn_write(env);
	dbi = dbi_ok(txn, "desc", 0);
	main_dbi = dbi_ok(txn, NULL, 0);
	assert_ok(mmkv_set_compare(txn, dbi, cmp_desc));
	assert_ok(mmkv_set_compare(txn, main_dbi, cmp_desc));
	walk_vkeys(txn, dbi, keys, n);
	walk_vkeys(txn, main_dbi, keys, n);
	for (size_t i = 0; i < n; i += 3) {
		mmkv_val k = mkval(keys[i].b, keys[i].n);
		assert_ok(mmkv_del(txn, dbi, &k, NULL));
	}
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	free(keys);
}

/* Key flags: recorded at creation, may only change while the db is empty. */
static void test_key_flags_incompatible(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 4);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi, d2;
	unsigned int fl;
	uint32_t k = 7;

	dbi = dbi_ok(txn, "flags", MMKV_CREATE | MMKV_INTEGERKEY);
	put_ok(txn, dbi, &k, 4, "x", 1);
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	assert_rc(mmkv_dbi_open(txn, "flags", MMKV_REVERSEKEY, &d2), MMKV_INCOMPATIBLE);
	/* no key flags asked: opens with the recorded ones */
	d2 = dbi_ok(txn, "flags", 0);
	assert_ok(mmkv_dbi_flags(txn, d2, &fl));
	assert_true(fl & MMKV_INTEGERKEY);
	mmkv_txn_abort(txn);

	/* an empty database in a write transaction takes new flags */
	txn = txn_write(env);
	assert_ok(mmkv_drop(txn, dbi, 0));
	d2 = dbi_ok(txn, "flags", MMKV_REVERSEKEY);
	assert_ok(mmkv_dbi_flags(txn, d2, &fl));
	assert_int_equal(fl & (MMKV_INTEGERKEY | MMKV_REVERSEKEY), MMKV_REVERSEKEY);
	put_str(txn, d2, "ab", "1");
	put_str(txn, d2, "ba", "2");
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	{
		mmkv_cursor *cur;
		mmkv_val key, val;
		assert_ok(mmkv_cursor_open(txn, d2, &cur));
		assert_ok(mmkv_cursor_get(cur, &key, &val, MMKV_FIRST));
		assert_memory_equal(key.data, "ba", 2); /* "a" < "b" from the end */
		mmkv_cursor_close(cur);
	}
	mmkv_txn_abort(txn);
	check_env(env);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_dbi_open_errors),
		T(test_dbi_create_reopen),
		T(test_dbi_many),
		T(test_dbi_full),
		T(test_dbi_create_aborted),
		T(test_drop),
		T(test_dbi_stat_depth),
		T(test_integerkey),
		T(test_reversekey),
		T(test_custom_compare),
		T(test_key_flags_incompatible),
	};

	watchdog(600);
	seed = test_seed("test_dbi");
	return RUN_BOTH_MODES("dbi", tests) ? 1 : 0;
}
