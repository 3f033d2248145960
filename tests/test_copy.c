/*
 * test_copy.c - hot copies: mmkv_env_copy and mmkv_env_copyfd, plain and
 * compacting (MMKV_CP_COMPACT).
 *
 * Covers: a copy holds exactly the snapshot's records (default and named
 * databases, overflow values) and passes mmkv_env_check; a compact copy
 * holds no free pages and is no larger than its trees need; a copy taken
 * while another thread keeps committing equals one snapshot (the invariant
 * the writer keeps holds in the copy) and is consistent; the copy is a
 * database of its own (new UUID, writable); errors: existing destination,
 * bad flags, bad descriptor.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static uint64_t seed;

enum { NKEYS = 3000, NAMED = 3 };

static size_t value_size(int i)
{
	return i % 97 == 0 ? 9000 + (size_t)i : (size_t)(i % 200);
}

/* Records in the default db and NAMED named dbs; then delete a third of
 * them so the file has free pages for the compact copy to drop. */
static void fill(mmkv_env *env)
{
	unsigned char *buf = malloc(20000);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbs[NAMED + 1];
	char k[32];

	assert_non_null(buf);
	dbs[0] = dbi_ok(txn, NULL, 0);
	for (int d = 1; d <= NAMED; d++) {
		snprintf(k, sizeof(k), "db%d", d);
		dbs[d] = dbi_ok(txn, k, MMKV_CREATE);
	}
	for (int i = 0; i < NKEYS; i++) {
		snprintf(k, sizeof(k), "key%06d", i);
		pattern_fill(seed + (uint64_t)i, buf, value_size(i));
		put_ok(txn, dbs[i % (NAMED + 1)], k, strlen(k), buf, value_size(i));
	}
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_write(env);
	for (int i = 0; i < NKEYS; i += 3) {
		mmkv_val key;
		snprintf(k, sizeof(k), "key%06d", i);
		key = sval(k);
		assert_ok(mmkv_del(txn, dbs[i % (NAMED + 1)], &key, NULL));
	}
	assert_ok(mmkv_txn_commit(txn));
	free(buf);
}

/* The copy at path holds exactly what fill() left. */
static void expect_filled(const char *path)
{
	mmkv_env *env = open_env_dbs(path, 0, 8);
	mmkv_txn *txn = txn_read(env);
	mmkv_dbi dbs[NAMED + 1];
	uint64_t total = 0;
	char k[32];

	dbs[0] = dbi_ok(txn, NULL, 0);
	for (int d = 1; d <= NAMED; d++) {
		snprintf(k, sizeof(k), "db%d", d);
		dbs[d] = dbi_ok(txn, k, 0);
	}
	for (int i = 0; i < NKEYS; i++) {
		mmkv_val key, val;
		int rc;
		snprintf(k, sizeof(k), "key%06d", i);
		key = sval(k);
		rc = mmkv_get(txn, dbs[i % (NAMED + 1)], &key, &val);
		if (i % 3 == 0) {
			assert_rc(rc, MMKV_NOTFOUND);
			continue;
		}
		assert_ok(rc);
		assert_int_equal(val.size, value_size(i));
		assert_true(pattern_equal(seed + (uint64_t)i, val.data, val.size));
		total++;
	}
	for (int d = 0; d <= NAMED; d++)
		total -= db_entries(txn, dbs[d]);
	assert_int_equal(total, 0);
	mmkv_txn_abort(txn);
	check_env(env);
	/* A copy is a database of its own: it takes writes. */
	txn = txn_write(env);
	put_str(txn, dbi_ok(txn, NULL, 0), "after-copy", "yes");
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	mmkv_env_close(env);
}

static void test_copy_plain_and_compact(void **state)
{
	test_fixture *fx = *state;
	mmkv_env *env = fx->env = open_env_dbs(fx->path, 0, 8);
	char plain[PATH_MAX], compact[PATH_MAX];
	mmkv_envinfo src, cinfo;
	mmkv_check_result res;
	struct stat sp, sc;

	fill(env);
	test_dir_file(&fx->dir, "plain.mmkv", plain, sizeof(plain));
	test_dir_file(&fx->dir, "compact.mmkv", compact, sizeof(compact));
	assert_ok(mmkv_env_copy(env, plain, 0));
	assert_ok(mmkv_env_copy(env, compact, MMKV_CP_COMPACT));
	assert_ok(mmkv_env_info(env, &src));
	assert_true(src.free_pages > 0);

	assert_int_equal(stat(plain, &sp), 0);
	assert_int_equal(stat(compact, &sc), 0);
	assert_true(sc.st_size < sp.st_size);

	{
		mmkv_env *c = open_env_dbs(compact, 0, 8);
		assert_ok(mmkv_env_info(c, &cinfo));
		assert_int_equal(cinfo.free_pages, 0);
		assert_memory_not_equal(cinfo.uuid, src.uuid, 16);
		assert_ok(mmkv_env_check(c, NULL, NULL, &res));
		/* dense: every page but the metas is a tree page */
		assert_int_equal(res.pages_tree + 2, res.pages_total);
		assert_int_equal((uint64_t)sc.st_size, res.pages_total * cinfo.page_size);
		mmkv_env_close(c);
	}
	expect_filled(plain);
	expect_filled(compact);
}

/* A writer thread moves amounts between accounts (total constant) while
 * the copies are taken. */
typedef struct writer_arg {
	mmkv_env *env;
	atomic_int stop;
	atomic_int commits;
	int error;
} writer_arg;

enum { ACCOUNTS = 64, START = 1000 };

static void *writer(void *p)
{
	writer_arg *w = p;
	test_rng r;
	rng_init(&r, seed ^ 77);
	while (!atomic_load(&w->stop)) {
		mmkv_txn *txn;
		mmkv_dbi dbi;
		uint64_t a = rng_below(&r, ACCOUNTS), b = (a + 1 + rng_below(&r, ACCOUNTS - 1)) % ACCOUNTS;
		uint64_t va, vb;
		mmkv_val ka = { 8, &a }, kb = { 8, &b }, v;
		int rc = mmkv_txn_begin(w->env, NULL, 0, &txn);
		if (rc == 0)
			rc = mmkv_dbi_open(txn, NULL, 0, &dbi);
		if (rc == 0)
			rc = mmkv_get(txn, dbi, &ka, &v);
		if (rc == 0) {
			memcpy(&va, v.data, 8);
			rc = mmkv_get(txn, dbi, &kb, &v);
		}
		if (rc == 0) {
			memcpy(&vb, v.data, 8);
			va -= 1;
			vb += 1;
			v = (mmkv_val){ 8, &va };
			rc = mmkv_put(txn, dbi, &ka, &v, 0);
			v = (mmkv_val){ 8, &vb };
			if (rc == 0)
				rc = mmkv_put(txn, dbi, &kb, &v, 0);
		}
		if (rc == 0)
			rc = mmkv_txn_commit(txn);
		else
			mmkv_txn_abort(txn);
		if (rc) {
			w->error = rc;
			break;
		}
		atomic_fetch_add(&w->commits, 1);
	}
	return NULL;
}

static void expect_total(const char *path)
{
	mmkv_env *env = open_env(path, 0);
	mmkv_txn *txn = txn_read(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	uint64_t total = 0;

	for (uint64_t a = 0; a < ACCOUNTS; a++) {
		mmkv_val k = { 8, &a }, v;
		uint64_t x;
		assert_ok(mmkv_get(txn, dbi, &k, &v));
		memcpy(&x, v.data, 8);
		total += x;
	}
	assert_int_equal(total, (uint64_t)ACCOUNTS * START);
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);
}

static void test_copy_under_writer(void **state)
{
	test_fixture *fx = *state;
	mmkv_env *env = fx->env = open_env(fx->path, MMKV_NOSYNC);
	writer_arg w = { .env = env };
	pthread_t th;
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	char dst[PATH_MAX];

	for (uint64_t a = 0; a < ACCOUNTS; a++) {
		uint64_t v = START;
		put_ok(txn, dbi, &a, 8, &v, 8);
	}
	assert_ok(mmkv_txn_commit(txn));
	assert_int_equal(pthread_create(&th, NULL, writer, &w), 0);
	for (int i = 0; i < 6; i++) {
		char name[32];
		/* copies start once the writer has committed a few times */
		while (atomic_load(&w.commits) < 20 * (i + 1) && !w.error)
			sched_yield();
		snprintf(name, sizeof(name), "hot%d.mmkv", i);
		test_dir_file(&fx->dir, name, dst, sizeof(dst));
		assert_ok(mmkv_env_copy(env, dst, i % 2 ? MMKV_CP_COMPACT : 0));
	}
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(w.error, 0);
	for (int i = 0; i < 6; i++) {
		char name[32];
		snprintf(name, sizeof(name), "hot%d.mmkv", i);
		test_dir_file(&fx->dir, name, dst, sizeof(dst));
		expect_total(dst);
	}
	check_env(env);
}

static void test_copy_errors(void **state)
{
	test_fixture *fx = *state;
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	char dst[PATH_MAX];
	FILE *f;

	test_dir_file(&fx->dir, "exists.mmkv", dst, sizeof(dst));
	f = fopen(dst, "w");
	assert_non_null(f);
	fputs("keep me", f);
	fclose(f);
	assert_rc(mmkv_env_copy(env, dst, 0), EEXIST);
	{
		struct stat st;
		assert_int_equal(stat(dst, &st), 0);
		assert_int_equal(st.st_size, 7); /* untouched */
	}
	assert_rc(mmkv_env_copy(env, dst, 0x80), EINVAL);
	assert_rc(mmkv_env_copy(env, NULL, 0), EINVAL);
	assert_rc(mmkv_env_copy(NULL, dst, 0), EINVAL);
	assert_rc(mmkv_env_copyfd(env, -1, 0), EINVAL);
	/* an empty database copies too */
	test_dir_file(&fx->dir, "empty.mmkv", dst, sizeof(dst));
	assert_ok(mmkv_env_copy(env, dst, MMKV_CP_COMPACT));
	{
		mmkv_env *c = open_env(dst, 0);
		check_env(c);
		mmkv_env_close(c);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_copy_plain_and_compact),
		T(test_copy_under_writer),
		T(test_copy_errors),
	};

	watchdog(300);
	seed = test_seed("test_copy");
	return RUN_BOTH_MODES("copy", tests) ? 1 : 0;
}
