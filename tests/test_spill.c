/*
 * test_spill.c - write transactions far larger than their memory budget, and
 * huge values, through <mmkv.h> only.
 *
 * Covers: with mmkv_env_set_txn_memory(64 pages), one transaction writing
 * about 20 MB of values of many sizes (inline to 200 KB), then updating keys
 * it wrote long before (spilled pages copied back), deleting some, and
 * reading everything back inside the transaction (gets, cursor walks both
 * ways, a cursor opened before the spills), after commit, and after reopen;
 * a read snapshot taken before the big transaction still sees the old data;
 * the same transaction aborted leaves the database as it was; anonymous
 * memory stays well below the transaction's size; a 64 MiB value written
 * with MMKV_RESERVE and a 16 MiB value written from a buffer under the small
 * budget round-trip, are replaced and deleted, and memory returns afterwards.
 * mmkv_env_check passes after each.
 *
 * Every group runs twice: default write mode and MMKV_WRITEMAP (where the
 * budget does not apply but the same results must hold).
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
#include <sys/mman.h>

#include "mmkv.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))
#define MiB (1024u * 1024u)
#define BUDGET (64u * 4096u)

static uint64_t seed;

typedef struct model {
	size_t n;
	unsigned char *present;
	uint64_t *vseed;
	uint32_t *vlen;
	uint64_t count;
} model;

static void model_init(model *m, size_t n)
{
	m->n = n;
	m->present = calloc(n, 1);
	m->vseed = calloc(n, sizeof(*m->vseed));
	m->vlen = calloc(n, sizeof(*m->vlen));
	m->count = 0;
	assert_true(m->present && m->vseed && m->vlen);
}

static void model_free(model *m)
{
	free(m->present);
	free(m->vseed);
	free(m->vlen);
}

static void key_of(char buf[24], size_t i)
{
	snprintf(buf, 24, "s%08zu", i);
}

static size_t spill_size(test_rng *r)
{
	uint64_t x = rng_below(r, 100);

	if (x < 70)
		return rng_range(r, 10, 300);
	if (x < 90)
		return rng_range(r, 301, 2000);
	if (x < 99)
		return rng_range(r, 2001, 20000);
	return rng_range(r, 20001, 200000);
}

static unsigned char *buffer(size_t n)
{
	static unsigned char *buf;
	static size_t cap;

	if (n > cap) {
		free(buf);
		cap = n;
		buf = malloc(cap);
		assert_non_null(buf);
	}
	return buf;
}

static void mput(model *m, mmkv_txn *txn, mmkv_dbi dbi, size_t i, uint64_t vs, size_t size)
{
	char k[24];
	unsigned char *buf = buffer(size);

	key_of(k, i);
	pattern_fill(vs, buf, size);
	put_ok(txn, dbi, k, strlen(k), buf, size);
	if (!m->present[i])
		m->count++;
	m->present[i] = 1;
	m->vseed[i] = vs;
	m->vlen[i] = (uint32_t)size;
}

static void mdel(model *m, mmkv_txn *txn, mmkv_dbi dbi, size_t i)
{
	char k[24];
	mmkv_val key;

	key_of(k, i);
	key = sval(k);
	assert_ok(mmkv_del(txn, dbi, &key, NULL));
	m->present[i] = 0;
	m->count--;
}

static void check_entry(const model *m, const mmkv_val *k, const mmkv_val *v, size_t i)
{
	char want[24];

	key_of(want, i);
	assert_int_equal(k->size, strlen(want));
	assert_memory_equal(k->data, want, k->size);
	assert_int_equal(v->size, m->vlen[i]);
	if (!pattern_equal(m->vseed[i], v->data, v->size))
		fail_msg("value of %s differs", want);
}

/* Everything in txn equals the model: gets, then walks both ways. */
static void verify(const model *m, mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_cursor *cur;
	mmkv_val k, v;
	size_t i;
	char kb[24];

	assert_int_equal(db_entries(txn, dbi), m->count);
	for (i = 0; i < m->n; i++) {
		key_of(kb, i);
		k = sval(kb);
		if (!m->present[i]) {
			assert_rc(mmkv_get(txn, dbi, &k, &v), MMKV_NOTFOUND);
			continue;
		}
		assert_ok(mmkv_get(txn, dbi, &k, &v));
		assert_int_equal(v.size, m->vlen[i]);
		if (!pattern_equal(m->vseed[i], v.data, v.size))
			fail_msg("value of %s differs", kb);
	}
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	i = 0;
	while (mmkv_cursor_get(cur, &k, &v, MMKV_NEXT) == 0) {
		while (i < m->n && !m->present[i])
			i++;
		assert_true(i < m->n);
		check_entry(m, &k, &v, i);
		i++;
	}
	while (i < m->n && !m->present[i])
		i++;
	assert_int_equal(i, m->n);
	/* and backwards from the last key */
	{
		uint64_t seen = 0;
		int rc = mmkv_cursor_get(cur, &k, &v, MMKV_LAST);

		while (rc == 0) {
			assert_true(i > 0);
			do
				i--;
			while (i > 0 && !m->present[i]);
			assert_true(m->present[i]);
			check_entry(m, &k, &v, i);
			seen++;
			rc = mmkv_cursor_get(cur, &k, &v, MMKV_PREV);
		}
		assert_rc(rc, MMKV_NOTFOUND);
		assert_int_equal(seen, m->count);
	}
	mmkv_cursor_close(cur);
}

static mmkv_env *open_small_budget(const char *path)
{
	mmkv_env *env = env_new();

	assert_ok(mmkv_env_set_txn_memory(env, BUDGET));
	env_open_ok(env, path, 0);
	return env;
}

/* Fill m with ~bytes of values in txn; returns the number of keys used. */
static void big_writes(model *m, test_rng *r, mmkv_txn *txn, mmkv_dbi dbi, size_t first, uint64_t bytes)
{
	uint64_t total = 0;

	for (size_t i = first; total < bytes; i++) {
		size_t size = spill_size(r);
		assert_true(i < m->n);
		mput(m, txn, dbi, i, rng_next(r), size);
		total += size;
	}
}

static void test_spill_big_txn(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_small_budget(fx->path);
	model base, m;
	test_rng r;
	mmkv_txn *txn, *snap;
	mmkv_dbi dbi;
	mmkv_cursor *early;
	mmkv_val k, v;
	uint64_t rss0, rss1;
	size_t last;

	rng_init(&r, seed);
	model_init(&m, 100000);
	model_init(&base, 100000);

	/* a committed base of 3000 keys, held by a snapshot */
	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	for (size_t i = 0; i < 3000; i++)
		mput(&m, txn, dbi, i * 3, rng_next(&r), (size_t)rng_range(&r, 0, 600));
	assert_ok(mmkv_txn_commit(txn));
	memcpy(base.present, m.present, m.n);
	memcpy(base.vseed, m.vseed, m.n * sizeof(*m.vseed));
	memcpy(base.vlen, m.vlen, m.n * sizeof(*m.vlen));
	base.count = m.count;
	snap = txn_read(env);

	rss0 = rss_anon_bytes();
	txn = txn_write(env);
	/* a cursor positioned before anything is spilled */
	assert_ok(mmkv_cursor_open(txn, dbi, &early));
	assert_ok(mmkv_cursor_get(early, &k, &v, MMKV_FIRST));
	check_entry(&m, &k, &v, 0);
	/* ~20 MB after the base keys */
	big_writes(&m, &r, txn, dbi, 9000, 20ull * MiB);
	rss1 = rss_anon_bytes();
	/* rewrite keys written long ago (spilled): the base and the first big ones */
	for (size_t i = 0; i < 12000; i += 2)
		mput(&m, txn, dbi, i, rng_next(&r), spill_size(&r));
	for (size_t i = 1; i < m.n; i += 7)
		if (m.present[i])
			mdel(&m, txn, dbi, i);
	/* the early cursor is still on key 0 */
	assert_ok(mmkv_cursor_get(early, &k, &v, MMKV_GET_CURRENT));
	check_entry(&m, &k, &v, 0);
	assert_ok(mmkv_cursor_get(early, &k, &v, MMKV_NEXT));
	for (last = 1; !m.present[last]; last++)
		;
	check_entry(&m, &k, &v, last);
	verify(&m, txn, dbi);
	assert_ok(mmkv_txn_commit(txn));

	if (!under_asan() && rss0 && rss1) {
		print_message("anonymous memory: %" PRIu64 " KiB before, %" PRIu64 " KiB after 20 MB\n",
		              rss0 / 1024, rss1 / 1024);
		if (rss1 > rss0 + 12ull * MiB)
			fail_msg("a 20 MB transaction with a %u-byte budget grew anonymous memory by %" PRIu64
			         " KiB",
			         BUDGET, (rss1 - rss0) / 1024);
	}

	/* the snapshot saw nothing of it */
	verify(&base, snap, dbi);
	mmkv_txn_abort(snap);
	txn = txn_read(env);
	verify(&m, txn, dbi);
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);

	env = fx->env = open_small_budget(fx->path);
	txn = txn_read(env);
	verify(&m, txn, dbi_ok(txn, NULL, 0));
	mmkv_txn_abort(txn);
	check_env(env);
	model_free(&m);
	model_free(&base);
}

static void test_spill_abort(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_small_budget(fx->path);
	model m, keep;
	test_rng r;
	mmkv_txn *txn;
	mmkv_dbi dbi;

	rng_init(&r, seed ^ 1);
	model_init(&m, 50000);
	model_init(&keep, 50000);
	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	for (size_t i = 0; i < 2000; i++)
		mput(&m, txn, dbi, i, rng_next(&r), spill_size(&r));
	assert_ok(mmkv_txn_commit(txn));
	memcpy(keep.present, m.present, m.n);
	memcpy(keep.vseed, m.vseed, m.n * sizeof(*m.vseed));
	memcpy(keep.vlen, m.vlen, m.n * sizeof(*m.vlen));
	keep.count = m.count;

	/* a big transaction that changes everything, aborted */
	txn = txn_write(env);
	for (size_t i = 0; i < 2000; i += 3)
		mdel(&m, txn, dbi, i);
	big_writes(&m, &r, txn, dbi, 2000, 12ull * MiB);
	for (size_t i = 1; i < 2000; i += 3)
		mput(&m, txn, dbi, i, rng_next(&r), spill_size(&r));
	verify(&m, txn, dbi);
	mmkv_txn_abort(txn);

	txn = txn_read(env);
	verify(&keep, txn, dbi);
	mmkv_txn_abort(txn);
	check_env(env);
	/* and the next transaction is fine */
	txn = txn_write(env);
	mput(&keep, txn, dbi, 40000, 5, 5000);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	verify(&keep, txn, dbi);
	mmkv_txn_abort(txn);
	check_env(env);
	model_free(&m);
	model_free(&keep);
}

static void huge_value(mmkv_env *env, const char *path, size_t size, bool reserve, bool small_budget)
{
	mmkv_txn *txn;
	mmkv_dbi dbi;
	mmkv_val k = sval("huge"), v;
	mmkv_stat st;
	mmkv_envinfo info;
	uint64_t rss0 = rss_anon_bytes(), rss1;

	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	put_str(txn, dbi, "before", "1");
	if (reserve) {
		v.size = size;
		v.data = NULL;
		assert_ok(mmkv_put(txn, dbi, &k, &v, MMKV_RESERVE));
		assert_non_null(v.data);
		pattern_fill(size, v.data, size);
	} else {
		/* mmap, not malloc: freeing it must give the memory back, so
		 * that the measurement below sees only the library's */
		unsigned char *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		assert_true(buf != MAP_FAILED);
		pattern_fill(size, buf, size);
		v = mkval(buf, size);
		assert_ok(mmkv_put(txn, dbi, &k, &v, 0));
		munmap(buf, size);
	}
	put_str(txn, dbi, "zafter", "2");
	assert_ok(mmkv_get(txn, dbi, &k, &v));
	assert_int_equal(v.size, size);
	assert_true(pattern_equal(size, v.data, size));
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	assert_ok(mmkv_get(txn, dbi, &k, &v));
	assert_int_equal(v.size, size);
	assert_true(pattern_equal(size, v.data, size));
	expect_str(txn, dbi, "before", "1");
	expect_str(txn, dbi, "zafter", "2");
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_ok(mmkv_env_info(env, &info));
	assert_true(st.overflow_pages * info.page_size >= size);
	mmkv_txn_abort(txn);
	rss1 = rss_anon_bytes();
	if (!under_asan() && rss0 && rss1) {
		print_message("%zu MiB value: anonymous memory %" PRIu64 " KiB before, %" PRIu64
		              " KiB after\n",
		              size / MiB, rss0 / 1024, rss1 / 1024);
		/* the transaction's copy is gone after the commit */
		if (rss1 > rss0 + 16ull * MiB)
			fail_msg("anonymous memory grew by %" PRIu64 " KiB and stayed",
			         (rss1 - rss0) / 1024);
	}
	check_env(env);
	mmkv_env_close(env);

	/* after reopening: replaced by a small value, then deleted */
	env = small_budget ? open_small_budget(path) : open_env(path, 0);
	txn = txn_read(env);
	dbi = dbi_ok(txn, NULL, 0);
	assert_ok(mmkv_get(txn, dbi, &k, &v));
	assert_int_equal(v.size, size);
	assert_true(pattern_equal(size, v.data, size));
	mmkv_txn_abort(txn);
	txn = txn_write(env);
	put_str(txn, dbi, "huge", "small now");
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_int_equal(st.overflow_pages, 0);
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	txn = txn_write(env);
	assert_ok(mmkv_del(txn, dbi, &k, NULL));
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	expect_missing(txn, dbi, "huge", 4);
	assert_int_equal(db_entries(txn, dbi), 2);
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);
}

static void test_value_64m_reserve(void **state)
{
	test_fixture *fx = FX(state);

	huge_value(open_env(fx->path, 0), fx->path, 64u * MiB, true, false);
}

static void test_value_16m_small_budget(void **state)
{
	test_fixture *fx = FX(state);

	huge_value(open_small_budget(fx->path), fx->path, 16u * MiB + 12345, false, true);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_spill_big_txn),
		T(test_spill_abort),
		T(test_value_64m_reserve),
		T(test_value_16m_small_budget),
	};

	watchdog(900);
	seed = test_seed("test_spill");
	return RUN_BOTH_MODES("spill", tests) ? 1 : 0;
}
