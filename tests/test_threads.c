/*
 * test_threads.c - threads sharing one environment, through <mmkv.h> only.
 *
 * Covers: reader threads that hold snapshots while a writer thread commits
 * new generations of every key, and check that each snapshot stays exactly as
 * it was (contents, txn id, value pointers) until they end it, also through
 * mmkv_txn_reset/renew; a read transaction begun in one thread and used in
 * another; a second writer (same handle, or a second handle of the same file)
 * that waits until the first commits or aborts, its ordering proven with a
 * pipe, atomics and what its transaction sees (never with timing); and many
 * writer threads incrementing one counter without losing an update.
 *
 * Threads never call cmocka: they record the first failure, and the main
 * thread asserts on it after joining them.
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
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mmkv.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))

/* A failure seen in a thread: the first one is kept. */
static pthread_mutex_t fail_mutex = PTHREAD_MUTEX_INITIALIZER;
static char fail_text[512];

static void thread_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void thread_fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&fail_mutex);
	if (fail_text[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(fail_text, sizeof(fail_text), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&fail_mutex);
}

static void assert_no_thread_failure(void)
{
	if (fail_text[0]) {
		char copy[sizeof(fail_text)];
		memcpy(copy, fail_text, sizeof(copy));
		fail_text[0] = '\0';
		fail_msg("in a thread: %s", copy);
	}
}

/* Record a failed call in a thread and leave the function. */
#define TCHECK(expr, want, ...)                                                          \
	do {                                                                             \
		int rc_ = (expr);                                                        \
		if (rc_ != (want)) {                                                     \
			thread_fail("%s:%d: %s returned %d (%s)", __FILE__, __LINE__,    \
			            #expr, rc_, mmkv_strerror(rc_));                     \
			__VA_ARGS__;                                                     \
			return NULL;                                                     \
		}                                                                        \
	} while (0)
#define TASSERT(cond, ...)                                                               \
	do {                                                                             \
		if (!(cond)) {                                                           \
			thread_fail("%s:%d: %s", __FILE__, __LINE__, #cond);             \
			__VA_ARGS__;                                                     \
			return NULL;                                                     \
		}                                                                        \
	} while (0)

/* ------------------------------------------------- generations of keys */

#define NKEYS 1500
#define GENERATIONS 120
#define READERS 4

static bool gen_present(uint64_t g, unsigned int i)
{
	return (i * 7 + g) % 5 != 0;
}

static size_t gen_size(uint64_t g, unsigned int i)
{
	return (i * 13 + g * 7) % 400 + (i % 100 == 0 ? 6000 + g : 0);
}

static uint64_t gen_seed(uint64_t g, unsigned int i)
{
	return g * 100003u + i;
}

static void gen_key(char buf[16], unsigned int i)
{
	snprintf(buf, 16, "key%05u", i);
}

/* Write generation g (in a write transaction). */
static int write_generation(mmkv_txn *txn, mmkv_dbi dbi, uint64_t g)
{
	static unsigned char buf[8192];
	char k[16];
	int rc;

	for (unsigned int i = 0; i < NKEYS; i++) {
		mmkv_val key, val;
		gen_key(k, i);
		key = sval(k);
		if (gen_present(g, i)) {
			size_t n = gen_size(g, i);
			pattern_fill(gen_seed(g, i), buf, n);
			val = mkval(buf, n);
			rc = mmkv_put(txn, dbi, &key, &val, 0);
		} else {
			rc = mmkv_del(txn, dbi, &key, NULL);
			if (rc == MMKV_NOTFOUND)
				rc = 0;
		}
		if (rc)
			return rc;
	}
	{
		mmkv_val key = sval("~gen"), val = mkval(&g, sizeof(g));
		return mmkv_put(txn, dbi, &key, &val, 0);
	}
}

/* Check that txn shows generation g exactly; returns a message or NULL. */
static const char *check_generation(mmkv_txn *txn, mmkv_dbi dbi, uint64_t g)
{
	mmkv_cursor *cur;
	mmkv_val k, v;
	unsigned int i = 0;
	char want[16];
	const char *err = NULL;

	if (mmkv_cursor_open(txn, dbi, &cur) != 0)
		return "cursor_open failed";
	while (mmkv_cursor_get(cur, &k, &v, MMKV_NEXT) == 0) {
		if (k.size == 4 && memcmp(k.data, "~gen", 4) == 0) {
			uint64_t stored;
			if (v.size != 8) {
				err = "bad ~gen size";
				break;
			}
			memcpy(&stored, v.data, 8);
			if (stored != g) {
				err = "~gen changed";
				break;
			}
			continue;
		}
		while (i < NKEYS && !gen_present(g, i))
			i++;
		if (i == NKEYS) {
			err = "extra key";
			break;
		}
		gen_key(want, i);
		if (k.size != strlen(want) || memcmp(k.data, want, k.size) != 0) {
			err = "wrong key";
			break;
		}
		if (v.size != gen_size(g, i) || !pattern_equal(gen_seed(g, i), v.data, v.size)) {
			err = "wrong value";
			break;
		}
		i++;
	}
	while (!err && i < NKEYS && !gen_present(g, i))
		i++;
	if (!err && i != NKEYS)
		err = "missing keys";
	mmkv_cursor_close(cur);
	return err;
}

struct gen_shared {
	mmkv_env *env;
	mmkv_dbi dbi;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t committed; /* newest generation committed */
	bool writer_done;
	atomic_uint snapshots;       /* snapshots verified twice */
	atomic_uint overlapped;      /* ... of which the writer advanced meanwhile */
};

static void *writer_main(void *arg)
{
	struct gen_shared *sh = arg;

	for (uint64_t g = 1; g <= GENERATIONS; g++) {
		mmkv_txn *txn;
		TCHECK(mmkv_txn_begin(sh->env, NULL, 0, &txn), 0, goto done);
		TCHECK(write_generation(txn, sh->dbi, g), 0, mmkv_txn_abort(txn); goto done);
		TCHECK(mmkv_txn_commit(txn), 0, goto done);
		pthread_mutex_lock(&sh->mu);
		sh->committed = g;
		pthread_cond_broadcast(&sh->cv);
		pthread_mutex_unlock(&sh->mu);
	}
done:
	pthread_mutex_lock(&sh->mu);
	sh->writer_done = true;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	return NULL;
}

static void *reader_main(void *arg)
{
	struct gen_shared *sh = arg;
	mmkv_txn *txn = NULL;
	unsigned int round = 0;

	for (;;) {
		uint64_t g, id, later;
		mmkv_val k = sval("~gen"), v, k0 = sval("key00001"), v0;
		const void *v0ptr;
		size_t v0size;
		bool done;
		const char *err;

		if (txn && round % 3 == 0) {
			/* reuse the handle through reset/renew */
			mmkv_txn_reset(txn);
			TASSERT(mmkv_txn_id(txn) == 0, mmkv_txn_abort(txn));
			TCHECK(mmkv_txn_renew(txn), 0, mmkv_txn_abort(txn));
		} else {
			mmkv_txn_abort(txn);
			TCHECK(mmkv_txn_begin(sh->env, NULL, MMKV_RDONLY, &txn), 0);
		}
		round++;
		id = mmkv_txn_id(txn);
		TCHECK(mmkv_get(txn, sh->dbi, &k, &v), 0, mmkv_txn_abort(txn));
		TASSERT(v.size == 8, mmkv_txn_abort(txn));
		memcpy(&g, v.data, 8);
		err = check_generation(txn, sh->dbi, g);
		if (err) {
			thread_fail("generation %" PRIu64 " at first look: %s", g, err);
			mmkv_txn_abort(txn);
			return NULL;
		}
		v0.data = NULL;
		v0size = 0;
		if (mmkv_get(txn, sh->dbi, &k0, &v0) == 0)
			v0size = v0.size;
		v0ptr = v0.data;

		/* hold the snapshot until the writer is two commits further */
		pthread_mutex_lock(&sh->mu);
		while (sh->committed < g + 2 && !sh->writer_done)
			pthread_cond_wait(&sh->cv, &sh->mu);
		later = sh->committed;
		done = sh->writer_done;
		pthread_mutex_unlock(&sh->mu);

		err = check_generation(txn, sh->dbi, g);
		if (err) {
			thread_fail("generation %" PRIu64 " held while %" PRIu64 " committed: %s", g, later,
			            err);
			mmkv_txn_abort(txn);
			return NULL;
		}
		TASSERT(mmkv_txn_id(txn) == id, mmkv_txn_abort(txn));
		if (v0ptr) {
			/* zero-copy pointers stay valid and unchanged */
			TASSERT(pattern_equal(gen_seed(g, 1), v0ptr, v0size), mmkv_txn_abort(txn));
			TCHECK(mmkv_get(txn, sh->dbi, &k0, &v0), 0, mmkv_txn_abort(txn));
			TASSERT(v0.data == v0ptr && v0.size == v0size, mmkv_txn_abort(txn));
		}
		atomic_fetch_add(&sh->snapshots, 1);
		if (later > g)
			atomic_fetch_add(&sh->overlapped, 1);
		if (done)
			break;
	}
	mmkv_txn_abort(txn);
	return NULL;
}

static void test_readers_hold_snapshots(void **state)
{
	test_fixture *fx = FX(state);
	struct gen_shared sh;
	pthread_t writer, readers[READERS];
	mmkv_txn *txn;

	memset(&sh, 0, sizeof(sh));
	pthread_mutex_init(&sh.mu, NULL);
	pthread_cond_init(&sh.cv, NULL);
	sh.env = fx->env = open_env(fx->path, 0);
	txn = txn_write(sh.env);
	sh.dbi = dbi_ok(txn, NULL, 0);
	assert_ok(write_generation(txn, sh.dbi, 0));
	assert_ok(mmkv_txn_commit(txn));

	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &sh), 0);
	assert_int_equal(pthread_create(&writer, NULL, writer_main, &sh), 0);
	pthread_join(writer, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(readers[i], NULL);
	assert_no_thread_failure();
	print_message("%u snapshots held, %u across commits\n", atomic_load(&sh.snapshots),
	              atomic_load(&sh.overlapped));
	assert_true(atomic_load(&sh.snapshots) >= READERS);
	assert_true(atomic_load(&sh.overlapped) >= 1);

	txn = txn_read(sh.env);
	assert_null(check_generation(txn, sh.dbi, GENERATIONS));
	mmkv_txn_abort(txn);
	check_env(sh.env);
	pthread_cond_destroy(&sh.cv);
	pthread_mutex_destroy(&sh.mu);
}

/* ------------------------------------- a read transaction changes thread */

struct handoff {
	mmkv_txn *txn;
	mmkv_dbi dbi;
	uint64_t g;
};

static void *verify_in_thread(void *arg)
{
	struct handoff *h = arg;
	const char *err = check_generation(h->txn, h->dbi, h->g);

	if (err)
		thread_fail("read transaction used in another thread: %s", err);
	return NULL;
}

static void test_read_txn_moves(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	struct handoff h;
	mmkv_txn *txn;
	pthread_t t;

	txn = txn_write(env);
	h.dbi = dbi_ok(txn, NULL, 0);
	assert_ok(write_generation(txn, h.dbi, 3));
	assert_ok(mmkv_txn_commit(txn));
	h.txn = txn_read(env);
	h.g = 3;
	assert_int_equal(pthread_create(&t, NULL, verify_in_thread, &h), 0);
	pthread_join(t, NULL);
	assert_no_thread_failure();
	/* a commit meanwhile, then the other thread again, then this one */
	txn = txn_write(env);
	assert_ok(write_generation(txn, h.dbi, 4));
	assert_ok(mmkv_txn_commit(txn));
	assert_int_equal(pthread_create(&t, NULL, verify_in_thread, &h), 0);
	pthread_join(t, NULL);
	assert_no_thread_failure();
	assert_null(check_generation(h.txn, h.dbi, 3));
	mmkv_txn_abort(h.txn);
	check_env(env);
}

/* ---------------------------------------------- the second writer waits */

struct two_writers {
	mmkv_env *env_a, *env_b;
	mmkv_dbi dbi, dbi_b; /* the default database in each handle */
	int to_b[2];   /* A -> B: A holds the write transaction */
	int to_a[2];   /* B -> A: B is about to begin its own */
	bool a_commits;
	atomic_int a_finishing;  /* A is about to commit or abort */
	atomic_int a_finished;
	atomic_int b_began;
	uint64_t a_id, b_id;
};

static void *writer_a(void *arg)
{
	struct two_writers *s = arg;
	mmkv_txn *txn;
	char c = 'a';
	mmkv_val k = sval("from-a"), v = sval("A");
	struct timespec pause = { 0, 30 * 1000 * 1000 };

	TCHECK(mmkv_txn_begin(s->env_a, NULL, 0, &txn), 0);
	s->a_id = mmkv_txn_id(txn);
	TCHECK(mmkv_put(txn, s->dbi, &k, &v, 0), 0, mmkv_txn_abort(txn));
	TASSERT(write(s->to_b[1], &c, 1) == 1, mmkv_txn_abort(txn));
	TASSERT(read(s->to_a[0], &c, 1) == 1, mmkv_txn_abort(txn));
	/* give B the chance to block in mmkv_txn_begin; nothing below
	 * depends on whether it already did */
	nanosleep(&pause, NULL);
	TASSERT(atomic_load(&s->b_began) == 0, mmkv_txn_abort(txn));
	atomic_store(&s->a_finishing, 1);
	if (s->a_commits) {
		TCHECK(mmkv_txn_commit(txn), 0);
	} else {
		mmkv_txn_abort(txn);
	}
	atomic_store(&s->a_finished, 1);
	return NULL;
}

static void *writer_b(void *arg)
{
	struct two_writers *s = arg;
	mmkv_txn *txn;
	char c;
	mmkv_val k = sval("from-a"), v, kb = sval("from-b"), vb = sval("B");
	int rc;

	TASSERT(read(s->to_b[0], &c, 1) == 1);
	TASSERT(write(s->to_a[1], &c, 1) == 1);
	TCHECK(mmkv_txn_begin(s->env_b, NULL, 0, &txn), 0);
	atomic_store(&s->b_began, 1);
	/* A had finished (or was finishing) before B got the transaction... */
	TASSERT(atomic_load(&s->a_finishing) == 1, mmkv_txn_abort(txn));
	/* ...and B sees exactly A's outcome */
	rc = mmkv_get(txn, s->dbi_b, &k, &v);
	if (s->a_commits) {
		TCHECK(rc, 0, mmkv_txn_abort(txn));
		TASSERT(v.size == 1 && memcmp(v.data, "A", 1) == 0, mmkv_txn_abort(txn));
	} else {
		TCHECK(rc, MMKV_NOTFOUND, mmkv_txn_abort(txn));
	}
	s->b_id = mmkv_txn_id(txn);
	TCHECK(mmkv_put(txn, s->dbi_b, &kb, &vb, 0), 0, mmkv_txn_abort(txn));
	TCHECK(mmkv_txn_commit(txn), 0);
	return NULL;
}

static void two_writers(test_fixture *fx, bool second_handle, bool a_commits)
{
	struct two_writers s;
	pthread_t ta, tb;
	mmkv_txn *txn;

	memset(&s, 0, sizeof(s));
	s.a_commits = a_commits;
	s.env_a = fx->env = open_env(fx->path, 0);
	s.env_b = second_handle ? open_env(fx->path, 0) : s.env_a;
	txn = txn_write(s.env_a);
	s.dbi = dbi_ok(txn, NULL, 0);
	assert_ok(mmkv_drop(txn, s.dbi, 0));
	put_str(txn, s.dbi, "base", "0");
	assert_ok(mmkv_txn_commit(txn));
	s.dbi_b = s.dbi;
	if (second_handle) {
		txn = txn_read(s.env_b);
		s.dbi_b = dbi_ok(txn, NULL, 0);
		mmkv_txn_abort(txn);
	}
	assert_int_equal(pipe(s.to_b), 0);
	assert_int_equal(pipe(s.to_a), 0);
	assert_int_equal(pthread_create(&tb, NULL, writer_b, &s), 0);
	assert_int_equal(pthread_create(&ta, NULL, writer_a, &s), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	close(s.to_a[0]);
	close(s.to_a[1]);
	close(s.to_b[0]);
	close(s.to_b[1]);
	assert_no_thread_failure();
	assert_int_equal(atomic_load(&s.a_finished), 1);
	assert_int_equal(atomic_load(&s.b_began), 1);

	txn = txn_read(s.env_a);
	expect_str(txn, s.dbi, "from-b", "B");
	expect_str(txn, s.dbi, "base", "0");
	if (a_commits) {
		expect_str(txn, s.dbi, "from-a", "A");
		assert_true(s.b_id > s.a_id);
	} else {
		expect_missing(txn, s.dbi, "from-a", 6);
	}
	mmkv_txn_abort(txn);
	check_env(s.env_a);
	if (second_handle)
		mmkv_env_close(s.env_b);
}

static void test_second_writer_waits_commit(void **state)
{
	two_writers(FX(state), false, true);
}

static void test_second_writer_waits_abort(void **state)
{
	two_writers(FX(state), false, false);
}

static void test_second_handle_writer_waits(void **state)
{
	two_writers(FX(state), true, true);
}

/* --------------------------------------------- no lost counter updates */

#define COUNTER_THREADS 4
#define INCREMENTS 150

struct counter_arg {
	mmkv_env *env;
	mmkv_dbi dbi;
	int id;
};

static void *increment_main(void *arg)
{
	struct counter_arg *a = arg;
	mmkv_val k = sval("counter"), v;

	for (int i = 0; i < INCREMENTS; i++) {
		mmkv_txn *txn;
		uint64_t n, again;

		TCHECK(mmkv_txn_begin(a->env, NULL, 0, &txn), 0);
		TCHECK(mmkv_get(txn, a->dbi, &k, &v), 0, mmkv_txn_abort(txn));
		TASSERT(v.size == 8, mmkv_txn_abort(txn));
		memcpy(&n, v.data, 8);
		n++;
		v = mkval(&n, 8);
		TCHECK(mmkv_put(txn, a->dbi, &k, &v, 0), 0, mmkv_txn_abort(txn));
		if (i % 10 == 0) {
			/* a longer transaction: nobody else may write meanwhile */
			char kb[32];
			snprintf(kb, sizeof(kb), "t%d-%d", a->id, i);
			mmkv_val k2 = sval(kb), v2 = mkval(&n, 8);
			TCHECK(mmkv_put(txn, a->dbi, &k2, &v2, 0), 0, mmkv_txn_abort(txn));
			sched_yield();
		}
		TCHECK(mmkv_get(txn, a->dbi, &k, &v), 0, mmkv_txn_abort(txn));
		memcpy(&again, v.data, 8);
		TASSERT(again == n, mmkv_txn_abort(txn));
		TCHECK(mmkv_txn_commit(txn), 0);
	}
	return NULL;
}

static void test_counter_no_lost_updates(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_env *other = open_env(fx->path, 0);
	struct counter_arg args[COUNTER_THREADS];
	pthread_t t[COUNTER_THREADS];
	mmkv_txn *txn;
	mmkv_dbi dbi, other_dbi;
	uint64_t zero = 0, total;
	mmkv_val k = sval("counter"), v;

	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	put_ok(txn, dbi, "counter", 7, &zero, 8);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(other);
	other_dbi = dbi_ok(txn, NULL, 0);
	mmkv_txn_abort(txn);
	for (int i = 0; i < COUNTER_THREADS; i++) {
		args[i].env = i % 2 ? other : env; /* two handles, two threads each */
		args[i].dbi = i % 2 ? other_dbi : dbi;
		args[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, increment_main, &args[i]), 0);
	}
	for (int i = 0; i < COUNTER_THREADS; i++)
		pthread_join(t[i], NULL);
	assert_no_thread_failure();
	txn = txn_read(env);
	assert_ok(mmkv_get(txn, dbi, &k, &v));
	memcpy(&total, v.data, 8);
	assert_int_equal(total, COUNTER_THREADS * INCREMENTS);
	assert_int_equal(db_entries(txn, dbi), 1 + COUNTER_THREADS * (INCREMENTS / 10));
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(other);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_readers_hold_snapshots),
		T(test_read_txn_moves),
		T(test_second_writer_waits_commit),
		T(test_second_writer_waits_abort),
		T(test_second_handle_writer_waits),
		T(test_counter_no_lost_updates),
	};

	watchdog(600);
	return RUN_BOTH_MODES("threads", tests) ? 1 : 0;
}
