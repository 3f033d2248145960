/*
 * test_compress.c - LZ4-compressed values (MMKV_COMPRESS) and dictionaries.
 *
 * A unit test: besides the public calls it reads leaf nodes through the
 * internal cursor (lib/internal.h) to see how each value is stored, plain or
 * as a compressed frame, and with which dictionary.
 *
 * Covers: the flag and settings (recorded, reported, persisted, errors);
 * which values are stored compressed (threshold, least saving, random data,
 * MMKV_RESERVE, overflow sizes) and that every one reads back exactly, by
 * mmkv_get and by cursors; replacing a compressed value in place by a plain
 * one; the automatic dictionary and the values compressed again with it,
 * mmkv_dict_build and values of an older dictionary staying readable; the
 * lifetimes of returned values; MMKV_NOOVERWRITE and MMKV_CURRENT; turning
 * compression on for a database that has values; copies, dropping a
 * database with its dictionaries; transactions larger than their memory
 * budget (spilled); and damaged frames, which read as MMKV_CORRUPTED and are
 * reported by the checker, never crash. Both write modes.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "page.h"
#include "util.h"

static uint64_t seed;

/* A string key as an mmkv_val pointer, for calls taking one. */
#define KEY(s) (&(mmkv_val){ strlen(s), (void *)(s) })

/* A record-like text value of about len bytes, different for every i: the
 * kind of value a cache or configuration store holds. */
static size_t record_value(int i, char *buf, size_t len)
{
	static const char *const words[] = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot" };
	size_t n = 0;

	for (int part = 0; n + 80 < len; part++)
		n += (size_t)snprintf(buf + n, len - n,
		                      "{\"id\":%d,\"part\":%d,\"name\":\"user-%d\",\"tag\":\"%s\",\"ok\":true},",
		                      i, part, (i * 7919 + part) % 100000, words[(i + part) % 6]);
	return n;
}

/* How the value of key is stored: node flags, stored size, dictionary id. */
typedef struct stored_as {
	unsigned nflags;
	size_t size;
	uint32_t dict;
} stored_as;

static uint32_t frame_dict(const mmkv_val *v)
{
	const unsigned char *p = v->data, *end = p + v->size;
	uint32_t x[2] = { 0, 0 };

	for (int k = 0; k < 2; k++)
		for (unsigned shift = 0; p < end; shift += 7) {
			x[k] |= (uint32_t)(*p & 0x7f) << shift;
			if (!(*p++ & 0x80))
				break;
		}
	return x[1];
}

static stored_as how_stored(mmkv_txn *txn, mmkv_dbi dbi, const char *key)
{
	mmkv_val k = sval(key), v;
	stored_as s = { 0, 0, 0 };
	mmkv_cursor c;
	mmkv_db *db;
	bool exact;

	assert_ok(mmkv__txn_db(txn, dbi, &db));
	mmkv__cursor_init(&c, txn, dbi);
	assert_ok(mmkv__cursor_seek(&c, &k, &exact));
	assert_true(exact);
	assert_ok(mmkv__cursor_read_node(&c, NULL, &v, &s.nflags));
	s.size = v.size;
	if (s.nflags & MMKV_NODE_COMPRESSED)
		s.dict = frame_dict(&v);
	return s;
}

static mmkv_env *open_z(const char *path)
{
	return open_env_dbs(path, 0, 8);
}

/* ------------------------------------------------------------------ tests */

static void test_flag_and_settings(void **state)
{
	test_fixture *fx = *state;
	mmkv_compress_stat z;
	unsigned int flags;
	mmkv_txn *txn;
	mmkv_dbi zdb, plain, main_db;

	fx->env = open_z(fx->path);
	txn = txn_write(fx->env);
	zdb = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	plain = dbi_ok(txn, "plain", MMKV_CREATE);
	main_db = dbi_ok(txn, NULL, MMKV_COMPRESS);
	assert_ok(mmkv_dbi_flags(txn, zdb, &flags));
	assert_int_equal(flags, MMKV_COMPRESS);
	assert_ok(mmkv_dbi_flags(txn, main_db, &flags));
	assert_int_equal(flags, MMKV_COMPRESS);
	assert_ok(mmkv_compress_info(txn, zdb, &z));
	assert_int_equal(z.threshold, 48);
	assert_int_equal(z.min_saving, 10);
	assert_int_equal(z.dict_id, 0);
	assert_int_equal(z.dict_count, 0);
	assert_rc(mmkv_compress_info(txn, plain, &z), MMKV_INCOMPATIBLE);
	assert_rc(mmkv_compress_info(txn, zdb, NULL), EINVAL);
	assert_rc(mmkv_compress_set(txn, plain, 10, 10), MMKV_INCOMPATIBLE);
	assert_rc(mmkv_compress_set(txn, zdb, 70000, 10), EINVAL);
	assert_rc(mmkv_compress_set(txn, zdb, 10, 100), EINVAL);
	assert_ok(mmkv_compress_set(txn, zdb, 100, 25));
	assert_rc(mmkv_dict_build(txn, plain), MMKV_INCOMPATIBLE);
	assert_rc(mmkv_dict_build(txn, zdb), MMKV_NOTFOUND); /* empty: nothing to sample */
	put_str(txn, zdb, "k", "v");                          /* the transaction still works */
	assert_ok(mmkv_txn_commit(txn));

	/* Recorded in the file: after reopening, opened without the flag. */
	mmkv_env_close(fx->env);
	fx->env = open_z(fx->path);
	txn = txn_read(fx->env);
	zdb = dbi_ok(txn, "z", 0);
	plain = dbi_ok(txn, "plain", 0);
	assert_ok(mmkv_dbi_flags(txn, zdb, &flags));
	assert_int_equal(flags, MMKV_COMPRESS);
	assert_ok(mmkv_compress_info(txn, zdb, &z));
	assert_int_equal(z.threshold, 100);
	assert_int_equal(z.min_saving, 25);
	assert_ok(mmkv_dbi_flags(txn, dbi_ok(txn, NULL, 0), &flags));
	assert_int_equal(flags, MMKV_COMPRESS);
	/* A read transaction cannot turn compression on, nor change settings. */
	assert_rc(mmkv_dbi_open(txn, "plain", MMKV_COMPRESS, &plain), MMKV_INCOMPATIBLE);
	assert_rc(mmkv_compress_set(txn, zdb, 10, 10), EACCES);
	assert_rc(mmkv_dict_build(txn, zdb), EACCES);
	/* The dictionary database is never listed, nor reachable by handle. */
	assert_rc(mmkv_get(txn, MMKV_DBI_DICT, &(mmkv_val){ 4, "\1\0\0\0" }, &(mmkv_val){ 0, NULL }), MMKV_BAD_DBI);
	mmkv_txn_abort(txn);
	check_env(fx->env);
}

static int count_names(void *ctx, const mmkv_val *name)
{
	(void)name;
	++*(int *)ctx;
	return 0;
}

/* Which values are stored compressed, and that all of them read back. */
static void test_stored_forms(void **state)
{
	test_fixture *fx = *state;
	char *buf = malloc(300000), *rnd = malloc(60000);
	test_rng rng;
	mmkv_txn *txn;
	mmkv_dbi db;
	mmkv_val v;
	size_t n;

	assert_non_null(buf);
	assert_non_null(rnd);
	rng_init(&rng, seed);
	rng_fill(&rng, rnd, 60000);
	fx->env = open_z(fx->path);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	put_str(txn, db, "small", "below the threshold");               /* 19 bytes */
	n = record_value(1, buf, 600);
	put_ok(txn, db, "record", 6, buf, n);
	put_ok(txn, db, "random", 6, rnd, 500);
	put_ok(txn, db, "random-big", 10, rnd, 50000);                   /* overflow, plain */
	n = record_value(2, buf, 250000);
	put_ok(txn, db, "record-big", 10, buf, n);                       /* overflow, compressed */
	put_ok(txn, db, "empty", 5, "", 0);
	v = mkval(NULL, 400);
	assert_ok(mmkv_put(txn, db, &(mmkv_val){ 8, "reserved" }, &v, MMKV_RESERVE));
	record_value(3, v.data, 400);
	memset((char *)v.data + 300, 'x', 100);

	assert_int_equal(how_stored(txn, db, "small").nflags, 0);
	assert_int_equal(how_stored(txn, db, "record").nflags, MMKV_NODE_COMPRESSED);
	assert_true(how_stored(txn, db, "record").size < 600 / 2);
	assert_int_equal(how_stored(txn, db, "random").nflags, 0);
	assert_int_equal(how_stored(txn, db, "random-big").nflags, MMKV_NODE_OVERFLOW);
	assert_true(how_stored(txn, db, "record-big").nflags & MMKV_NODE_COMPRESSED);
	assert_int_equal(how_stored(txn, db, "empty").nflags, 0);
	assert_int_equal(how_stored(txn, db, "reserved").nflags, 0);  /* documented: plain */

	/* Least saving: 99% is more than these records save. */
	assert_ok(mmkv_compress_set(txn, db, 48, 99));
	n = record_value(4, buf, 600);
	put_ok(txn, db, "strict", 6, buf, n);
	assert_int_equal(how_stored(txn, db, "strict").nflags, 0);
	/* Threshold: nothing below 1000 bytes is tried. */
	assert_ok(mmkv_compress_set(txn, db, 1000, 0));
	put_ok(txn, db, "under", 5, buf, n);
	assert_int_equal(how_stored(txn, db, "under").nflags, 0);
	assert_ok(mmkv_compress_set(txn, db, 48, 10));
	assert_ok(mmkv_txn_commit(txn));

	mmkv_env_close(fx->env);
	fx->env = open_z(fx->path);
	txn = txn_read(fx->env);
	db = dbi_ok(txn, "z", 0);
	expect_str(txn, db, "small", "below the threshold");
	n = record_value(1, buf, 600);
	expect_val(txn, db, "record", 6, buf, n);
	expect_val(txn, db, "random", 6, rnd, 500);
	expect_val(txn, db, "random-big", 10, rnd, 50000);
	n = record_value(2, buf, 250000);
	expect_val(txn, db, "record-big", 10, buf, n);
	expect_val(txn, db, "empty", 5, "", 0);
	record_value(3, buf, 400);
	memset(buf + 300, 'x', 100);
	expect_val(txn, db, "reserved", 8, buf, 400);
	n = record_value(4, buf, 600);
	expect_val(txn, db, "strict", 6, buf, n);
	expect_val(txn, db, "under", 5, buf, n);

	/* The same through a cursor, both directions. */
	mmkv_cursor *c;
	mmkv_val k;
	int seen = 0;
	assert_ok(mmkv_cursor_open(txn, db, &c));
	while (mmkv_cursor_get(c, &k, &v, MMKV_NEXT) == 0) {
		mmkv_val want;
		assert_ok(mmkv_get(txn, db, &k, &want));
		assert_int_equal(v.size, want.size);
		assert_memory_equal(v.data, want.data, v.size);
		seen++;
	}
	assert_int_equal(seen, 9);
	while (mmkv_cursor_get(c, &k, &v, MMKV_PREV) == 0)
		seen--;
	assert_int_equal(seen, 1); /* the cursor stayed on the last key */
	mmkv_cursor_close(c);
	seen = 0;
	assert_ok(mmkv_dbi_list(txn, count_names, &seen));
	assert_int_equal(seen, 1); /* "z" only: the dictionary database is hidden */
	mmkv_txn_abort(txn);
	check_env(fx->env);
	free(buf);
	free(rnd);
}

/* A compressed value replaced by a plain one of the same stored size is
 * rewritten in place: the node's flag must change with it. */
static void test_replace_in_place(void **state)
{
	test_fixture *fx = *state;
	char buf[600], rnd[600];
	test_rng rng;
	mmkv_txn *txn;
	mmkv_dbi db;
	stored_as s;
	size_t n;

	rng_init(&rng, seed + 1);
	rng_fill(&rng, rnd, sizeof(rnd));
	fx->env = open_z(fx->path);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	n = record_value(5, buf, sizeof(buf));
	put_ok(txn, db, "key", 3, buf, n);
	s = how_stored(txn, db, "key");
	assert_int_equal(s.nflags, MMKV_NODE_COMPRESSED);
	assert_true(s.size >= 48);
	put_ok(txn, db, "key", 3, rnd, s.size);
	assert_int_equal(how_stored(txn, db, "key").nflags, 0);
	expect_val(txn, db, "key", 3, rnd, s.size);
	/* And back: a plain value replaced by a compressible one. */
	put_ok(txn, db, "key", 3, buf, n);
	assert_int_equal(how_stored(txn, db, "key").nflags, MMKV_NODE_COMPRESSED);
	expect_val(txn, db, "key", 3, buf, n);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(fx->env);
	expect_val(txn, db, "key", 3, buf, n);
	mmkv_txn_abort(txn);
	check_env(fx->env);
}

static void put_records(mmkv_txn *txn, mmkv_dbi db, int from, int to)
{
	char key[32], buf[1200];

	for (int i = from; i < to; i++) {
		snprintf(key, sizeof(key), "rec%06d", i);
		size_t n = record_value(i, buf, 300 + (size_t)(i % 7) * 100);
		put_ok(txn, db, key, strlen(key), buf, n);
	}
}

static void expect_records(mmkv_txn *txn, mmkv_dbi db, int from, int to)
{
	char key[32], buf[1200];

	for (int i = from; i < to; i++) {
		snprintf(key, sizeof(key), "rec%06d", i);
		size_t n = record_value(i, buf, 300 + (size_t)(i % 7) * 100);
		expect_val(txn, db, key, strlen(key), buf, n);
	}
}

static size_t stored_total(mmkv_txn *txn, mmkv_dbi db, int from, int to, uint32_t want_dict)
{
	size_t total = 0;
	char key[32];

	for (int i = from; i < to; i++) {
		snprintf(key, sizeof(key), "rec%06d", i);
		stored_as s = how_stored(txn, db, key);
		assert_int_equal(s.nflags, MMKV_NODE_COMPRESSED);
		assert_int_equal(s.dict, want_dict);
		total += s.size;
	}
	return total;
}

static void test_dictionaries(void **state)
{
	test_fixture *fx = *state;
	mmkv_compress_stat z;
	mmkv_txn *txn;
	mmkv_dbi db, few;
	size_t with_dict, without;

	fx->env = open_z(fx->path);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	few = dbi_ok(txn, "few", MMKV_CREATE | MMKV_COMPRESS);
	put_records(txn, few, 0, 500); /* below the automatic build */
	put_records(txn, db, 0, 511);
	assert_ok(mmkv_compress_info(txn, db, &z));
	assert_int_equal(z.dict_id, 0);
	put_records(txn, db, 511, 600); /* the 513th put builds it */
	assert_ok(mmkv_compress_info(txn, db, &z));
	assert_int_equal(z.dict_id, 1);
	assert_int_equal(z.dict_count, 1);
	assert_true(z.dict_bytes > 1024 && z.dict_bytes <= 65536);
	assert_ok(mmkv_compress_info(txn, few, &z));
	assert_int_equal(z.dict_id, 0);
	/* Every value, those stored before it too, uses the dictionary, and
	 * that pays: the same values without one are much larger. */
	with_dict = stored_total(txn, db, 0, 500, 1);
	without = stored_total(txn, few, 0, 500, 0);
	print_message("500 records: %zu bytes stored with a dictionary, %zu without\n", with_dict, without);
	assert_true(with_dict * 10 < without * 7);
	assert_ok(mmkv_txn_commit(txn));

	/* A new dictionary on demand: new values use it, old ones keep theirs. */
	txn = txn_write(fx->env);
	assert_ok(mmkv_dict_build(txn, db));
	assert_ok(mmkv_compress_info(txn, db, &z));
	assert_int_equal(z.dict_id, 2);
	assert_int_equal(z.dict_count, 2);
	put_records(txn, db, 600, 700);
	stored_total(txn, db, 600, 700, 2);
	stored_total(txn, db, 0, 600, 1);
	assert_ok(mmkv_dict_build(txn, few));
	assert_ok(mmkv_txn_commit(txn));

	mmkv_env_close(fx->env);
	fx->env = open_z(fx->path);
	txn = txn_read(fx->env);
	db = dbi_ok(txn, "z", 0);
	few = dbi_ok(txn, "few", 0);
	expect_records(txn, db, 0, 700);
	expect_records(txn, few, 0, 500);
	assert_ok(mmkv_compress_info(txn, few, &z));
	assert_int_equal(z.dict_id, 3);
	assert_int_equal(z.dict_count, 1);
	mmkv_txn_abort(txn);
	check_env(fx->env);

	/* Aborting a build leaves nothing behind. */
	txn = txn_write(fx->env);
	assert_ok(mmkv_dict_build(txn, db));
	mmkv_txn_abort(txn);
	txn = txn_read(fx->env);
	assert_ok(mmkv_compress_info(txn, db, &z));
	assert_int_equal(z.dict_count, 2);
	mmkv_txn_abort(txn);
	check_env(fx->env);
}

/* Returned values: mmkv_get's live until the transaction ends; a cursor's
 * until its next call. */
static void test_lifetimes(void **state)
{
	test_fixture *fx = *state;
	char a[700], b[700];
	size_t na, nb;
	mmkv_txn *txn;
	mmkv_dbi db;
	mmkv_val va, vb, k;
	mmkv_cursor *c1, *c2;

	fx->env = open_z(fx->path);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	put_records(txn, db, 0, 50);
	assert_ok(mmkv_txn_commit(txn));
	na = record_value(0, a, 300);
	nb = record_value(1, b, 400);

	txn = txn_read(fx->env);
	assert_ok(mmkv_get(txn, db, KEY("rec000000"), &va));
	assert_ok(mmkv_get(txn, db, KEY("rec000001"), &vb));
	for (int i = 2; i < 50; i++) {
		char key[32];
		mmkv_val v;
		snprintf(key, sizeof(key), "rec%06d", i);
		assert_ok(mmkv_get(txn, db, KEY(key), &v));
	}
	assert_int_equal(va.size, na);
	assert_memory_equal(va.data, a, na);
	assert_int_equal(vb.size, nb);
	assert_memory_equal(vb.data, b, nb);

	/* Two cursors do not share a buffer. */
	assert_ok(mmkv_cursor_open(txn, db, &c1));
	assert_ok(mmkv_cursor_open(txn, db, &c2));
	assert_ok(mmkv_cursor_get(c1, &k, &va, MMKV_FIRST));
	assert_ok(mmkv_cursor_get(c2, &k, &vb, MMKV_SET_KEY));
	assert_ok(mmkv_cursor_get(c2, &k, &vb, MMKV_NEXT));
	assert_memory_equal(va.data, a, na);
	assert_memory_equal(vb.data, b, nb);
	mmkv_cursor_close(c1);
	mmkv_cursor_close(c2);

	/* Reset frees the transaction's values; renewed, it reads again. */
	mmkv_txn_reset(txn);
	assert_ok(mmkv_txn_renew(txn));
	expect_val(txn, db, "rec000000", 9, a, na);
	mmkv_txn_abort(txn);
	check_env(fx->env);
}

static void test_nooverwrite_and_current(void **state)
{
	test_fixture *fx = *state;
	char a[700], b[700];
	size_t na, nb;
	mmkv_txn *txn;
	mmkv_dbi db;
	mmkv_val v, k;
	mmkv_cursor *c;

	fx->env = open_z(fx->path);
	na = record_value(10, a, 500);
	nb = record_value(11, b, 600);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	put_ok(txn, db, "key", 3, a, na);
	v = mkval(b, nb);
	assert_rc(mmkv_put(txn, db, KEY("key"), &v, MMKV_NOOVERWRITE), MMKV_KEYEXIST);
	assert_int_equal(v.size, na); /* the existing value, decompressed */
	assert_memory_equal(v.data, a, na);

	assert_ok(mmkv_cursor_open(txn, db, &c));
	assert_ok(mmkv_cursor_get(c, &k, &v, MMKV_FIRST));
	v = mkval(b, nb);
	assert_ok(mmkv_cursor_put(c, KEY("key"), &v, MMKV_CURRENT));
	assert_ok(mmkv_cursor_get(c, &k, &v, MMKV_GET_CURRENT));
	assert_int_equal(v.size, nb);
	assert_memory_equal(v.data, b, nb);
	assert_int_equal(how_stored(txn, db, "key").nflags, MMKV_NODE_COMPRESSED);
	assert_ok(mmkv_cursor_del(c, 0));
	mmkv_cursor_close(c);
	expect_missing(txn, db, "key", 3);
	put_ok(txn, db, "key", 3, a, na);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(fx->env);
	expect_val(txn, db, "key", 3, a, na);
	mmkv_txn_abort(txn);
	check_env(fx->env);
}

/* Compression turned on for a database that has values: they stay plain
 * and readable; new values are compressed. */
static void test_enable_later(void **state)
{
	test_fixture *fx = *state;
	mmkv_txn *txn;
	mmkv_dbi db;

	fx->env = open_z(fx->path);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE);
	put_records(txn, db, 0, 100);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_write(fx->env);
	assert_int_equal(dbi_ok(txn, "z", MMKV_COMPRESS), db);
	put_records(txn, db, 100, 200);
	assert_int_equal(how_stored(txn, db, "rec000050").nflags, 0);
	assert_int_equal(how_stored(txn, db, "rec000150").nflags, MMKV_NODE_COMPRESSED);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(fx->env);
	expect_records(txn, db, 0, 200);
	mmkv_txn_abort(txn);
	check_env(fx->env);
}

static void expect_copy(const char *path, int nrec)
{
	mmkv_env *env = open_z(path);
	mmkv_compress_stat z;
	mmkv_txn *txn = txn_read(env);
	mmkv_dbi db = dbi_ok(txn, "z", 0);

	expect_records(txn, db, 0, nrec);
	assert_ok(mmkv_compress_info(txn, db, &z));
	assert_int_equal(z.dict_count, 1);
	mmkv_txn_abort(txn);
	check_env(env);
	/* The copy's dictionary works for new values too. */
	txn = txn_write(env);
	put_records(txn, db, nrec, nrec + 10);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	expect_records(txn, db, 0, nrec + 10);
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);
}

static void test_copy_and_drop(void **state)
{
	test_fixture *fx = *state;
	char plain[PATH_MAX], compact[PATH_MAX];
	mmkv_compress_stat z;
	mmkv_txn *txn;
	mmkv_dbi db, other;

	test_dir_file(&fx->dir, "plain.mmkv", plain, sizeof(plain));
	test_dir_file(&fx->dir, "compact.mmkv", compact, sizeof(compact));
	fx->env = open_z(fx->path);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	other = dbi_ok(txn, "other", MMKV_CREATE | MMKV_COMPRESS);
	put_records(txn, db, 0, 600);
	put_records(txn, other, 0, 600);
	assert_ok(mmkv_txn_commit(txn));
	assert_ok(mmkv_env_copy(fx->env, plain, 0));
	assert_ok(mmkv_env_copy(fx->env, compact, MMKV_CP_COMPACT));
	expect_copy(plain, 600);
	expect_copy(compact, 600);

	/* Emptying keeps the dictionary; deleting the database deletes it. */
	txn = txn_write(fx->env);
	assert_ok(mmkv_drop(txn, other, 0));
	assert_ok(mmkv_compress_info(txn, other, &z));
	assert_int_equal(z.dict_count, 1);
	assert_ok(mmkv_drop(txn, other, 1));
	assert_ok(mmkv_txn_commit(txn));
	check_env(fx->env); /* the dictionary's pages were freed, not leaked */
	txn = txn_write(fx->env);
	other = dbi_ok(txn, "other", MMKV_CREATE | MMKV_COMPRESS);
	assert_ok(mmkv_compress_info(txn, other, &z));
	assert_int_equal(z.dict_count, 0);
	assert_ok(mmkv_compress_info(txn, db, &z));
	assert_int_equal(z.dict_count, 1);
	/* A new dictionary for "other" gets an id of its own. */
	put_records(txn, other, 0, 600);
	assert_ok(mmkv_compress_info(txn, other, &z));
	assert_int_equal(z.dict_id, 2);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(fx->env);
	expect_records(txn, db, 0, 600);
	expect_records(txn, other, 0, 600);
	mmkv_txn_abort(txn);
	check_env(fx->env);
}

/* A transaction far larger than its memory budget spills dirty pages; the
 * dictionary it reads must survive that. */
static void test_spilled_transaction(void **state)
{
	test_fixture *fx = *state;
	mmkv_txn *txn;
	mmkv_dbi db;

	fx->env = env_new();
	assert_ok(mmkv_env_set_maxdbs(fx->env, 4));
	assert_ok(mmkv_env_set_txn_memory(fx->env, 256 * 1024));
	env_open_ok(fx->env, fx->path, 0);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	put_records(txn, db, 0, 6000);
	assert_ok(mmkv_dict_build(txn, db));
	put_records(txn, db, 6000, 7000);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(fx->env);
	expect_records(txn, db, 0, 7000);
	mmkv_txn_abort(txn);
	check_env(fx->env);
}

/* ---------------------------------------------------------------- damage */

typedef struct found_node {
	pgno_t pgno;
	unsigned offset; /* of the stored value within the page */
	unsigned size;
} found_node;

/* Where the inline stored bytes of key are in the file. */
static found_node locate(mmkv_env *env, mmkv_dbi db, const char *key)
{
	mmkv_txn *txn = txn_read(env);
	mmkv_val k = sval(key);
	mmkv_cursor c;
	mmkv_node n;
	bool exact;
	found_node f;

	assert_ok(mmkv__txn_db(txn, db, &(mmkv_db *){ NULL }));
	mmkv__cursor_init(&c, txn, db);
	assert_ok(mmkv__cursor_seek(&c, &k, &exact));
	assert_true(exact);
	assert_ok(node_get(c.pages[c.top], env->psize, c.idx[c.top], &n));
	assert_int_equal(n.flags, MMKV_NODE_COMPRESSED);
	f.pgno = c.pgnos[c.top];
	f.offset = (unsigned)(n.value - c.pages[c.top]);
	f.size = n.vsize;
	mmkv_txn_abort(txn);
	return f;
}

/* Rewrite the page holding f with edit applied to the stored value, and a
 * checksum that matches again, so that only the frame is wrong. */
typedef void(frame_edit)(unsigned char *frame, unsigned size);

static void damage(const char *path, uint32_t psize, found_node f, frame_edit *edit)
{
	unsigned char *page = malloc(psize);
	int fd = open(path, O_RDWR);

	assert_non_null(page);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, page, psize, (off_t)(f.pgno * psize)), psize);
	edit(page + f.offset, f.size);
	mmkv__page_seal(page, psize);
	assert_int_equal(pwrite(fd, page, psize, (off_t)(f.pgno * psize)), psize);
	close(fd);
	free(page);
}

static void size_plus_one(unsigned char *p, unsigned size)
{
	(void)size;
	p[0] = (unsigned char)(p[0] + 1); /* a one-byte size stays one byte up to 127 */
}
static void size_minus_one(unsigned char *p, unsigned size)
{
	(void)size;
	p[0] = (unsigned char)(p[0] - 1);
}
static void missing_dict(unsigned char *p, unsigned size)
{
	(void)size;
	unsigned i = 0;
	while (p[i] & 0x80)
		i++;
	p[i + 1] = 0x63; /* dictionary 99: never built */
}
static void garbage_block(unsigned char *p, unsigned size)
{
	memset(p + 3, 0xff, size - 3);
}
static void endless_number(unsigned char *p, unsigned size)
{
	memset(p, 0x80, size);
}

static void test_damaged_frames(void **state)
{
	test_fixture *fx = *state;
	static frame_edit *const edits[] = { size_plus_one, size_minus_one, missing_dict, garbage_block,
	                                     endless_number };
	char key[32];
	mmkv_txn *txn;
	mmkv_dbi db;
	uint32_t psize;

	fx->env = open_z(fx->path);
	txn = txn_write(fx->env);
	db = dbi_ok(txn, "z", MMKV_CREATE | MMKV_COMPRESS);
	put_records(txn, db, 0, 600);
	assert_ok(mmkv_txn_commit(txn));
	psize = fx->env->psize;

	for (size_t e = 0; e < sizeof(edits) / sizeof(edits[0]); e++) {
		mmkv_check_result res;
		uint64_t problems = 0;
		mmkv_cursor *c;
		mmkv_val v, k;
		int rc;

		/* Records of 300 bytes (i % 7 == 0): sizes below 128 once
		 * compressed... the original size is 2 LEB bytes; edit the
		 * low one. */
		snprintf(key, sizeof(key), "rec%06d", (int)(7 * (10 + e)));
		found_node f = locate(fx->env, db, key);
		mmkv_env_close(fx->env);
		damage(fx->path, psize, f, edits[e]);
		fx->env = open_z(fx->path);
		txn = txn_read(fx->env);
		db = dbi_ok(txn, "z", 0);
		assert_rc(mmkv_get(txn, db, KEY(key), &v), MMKV_CORRUPTED);
		assert_ok(mmkv_cursor_open(txn, db, &c));
		assert_rc(mmkv_cursor_get(c, KEY(key), &v, MMKV_SET_KEY), MMKV_CORRUPTED);
		/* A scan stops at the damaged value, then the rest reads on. */
		while ((rc = mmkv_cursor_get(c, &k, &v, MMKV_NEXT)) == 0)
			;
		assert_int_equal(rc, MMKV_NOTFOUND);
		mmkv_cursor_close(c);
		mmkv_txn_abort(txn);
		assert_rc(check_env_quiet(fx->env, &res, &problems, false), MMKV_CORRUPTED);
		assert_true(problems >= 1);

		/* Repair: rewriting the value makes the database whole again. */
		char buf[1200];
		int i = 7 * (10 + (int)e);
		size_t n = record_value(i, buf, 300 + (size_t)(i % 7) * 100);
		txn = txn_write(fx->env);
		put_ok(txn, db, key, strlen(key), buf, n);
		assert_ok(mmkv_txn_commit(txn));
		check_env(fx->env);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_flag_and_settings),
		T(test_stored_forms),
		T(test_replace_in_place),
		T(test_dictionaries),
		T(test_lifetimes),
		T(test_nooverwrite_and_current),
		T(test_enable_later),
		T(test_copy_and_drop),
		T(test_spilled_transaction),
		T(test_damaged_frames),
	};

	watchdog(300);
	seed = test_seed("test_compress");
	return RUN_BOTH_MODES("compress", tests) ? 1 : 0;
}
