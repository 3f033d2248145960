/*
 * test_lock.c - unit tests of the lock-file protocol (lib/lock.c).
 *
 * Several handles on one lock file in one process stand for several
 * processes (each handle is its own open file description, so OFD locks
 * conflict between them); forked children are used where a real second
 * process matters: death of a reader, and futex wake-ups across processes.
 * Ordering between threads is asserted with pipes and flags, not timing: a
 * sleep only gives a thread the chance to do something it must not, and a
 * time bound only tells a wake-up from a timeout many seconds away.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "format.h"
#include "lock.h"
#include "mmkv.h"
#include "os.h"
#include "util.h"

static const uint8_t test_uuid[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* ------------------------------------------------------------ fixtures */

/* tests/util.c gives a fresh directory; the lock file lives in it. */
static int setup(void **state)
{
	test_fixture *fx;

	if (tu_setup(state) != 0)
		return -1;
	fx = *state;
	test_dir_file(&fx->dir, "test.mmkv-lock", fx->path, sizeof(fx->path));
	return 0;
}

static const char *lock_path(void **state)
{
	return ((test_fixture *)*state)->path;
}

/* First opener: create and initialise, then share. */
static void open_init(mmkv_lock *lk, const char *path, uint32_t nslots, uint64_t txnid)
{
	int excl = -1;

	assert_int_equal(mmkv__lock_open(lk, path, 0644, &excl), 0);
	assert_int_equal(excl, 1);
	assert_int_equal(mmkv__lock_init(lk, test_uuid, nslots, MMKV_LOCK_MODE_PWRITE, txnid), 0);
	assert_int_equal(mmkv__lock_downgrade(lk), 0);
}

/* Later opener: attach to what the first one wrote. */
static void open_attach(mmkv_lock *lk, const char *path)
{
	uint8_t uuid[16];
	uint32_t mode;
	int excl = -1;

	assert_int_equal(mmkv__lock_open(lk, path, 0644, &excl), 0);
	assert_int_equal(excl, 0);
	assert_int_equal(mmkv__lock_attach(lk, uuid, &mode), 0);
	assert_memory_equal(uuid, test_uuid, 16);
	assert_int_equal(mode, MMKV_LOCK_MODE_PWRITE);
}

/* The same, in a forked child: no cmocka there, a failure is an exit code. */
static void child_attach(mmkv_lock *lk, const char *path)
{
	uint8_t uuid[16];
	uint32_t mode;
	int excl = -1;

	if (mmkv__lock_open(lk, path, 0644, &excl) != 0 || excl != 0)
		_exit(10);
	if (mmkv__lock_attach(lk, uuid, &mode) != 0)
		_exit(11);
}

static int wait_child(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void put32_at(int fd, uint64_t off, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
	                       (unsigned char)(v >> 24) };

	assert_int_equal(mmkv__os_pwrite_full(fd, b, 4, off), 0);
}

/* ------------------------------------------------------------ opening */

static void test_init_attach(void **state)
{
	mmkv_lock a, b, c;
	uint64_t size;
	int excl;

	open_init(&a, lock_path(state), 8, 5);
	assert_int_equal(a.nslots, 8);
	assert_int_equal(mmkv__os_file_size(a.fd, &size), 0);
	assert_int_equal(size, MMKV_LOCK_HEADER + 8 * MMKV_LOCK_SLOT_SIZE);
	open_attach(&b, lock_path(state));
	assert_int_equal(b.nslots, 8);
	assert_int_equal(mmkv__lock_published(&b), 5);
	assert_int_equal(mmkv__lock_oldest_reader(&b, 42), 42);
	assert_int_equal(mmkv__lock_reader_count(&b), 0);
	mmkv__lock_publish(&a, 6);
	assert_int_equal(mmkv__lock_published(&b), 6);
	mmkv__lock_close(&a);
	assert_int_equal(a.fd, -1);
	mmkv__lock_close(&b);

	/* Everyone left: the next opener re-initialises, with a new size. */
	assert_int_equal(mmkv__lock_open(&c, lock_path(state), 0644, &excl), 0);
	assert_int_equal(excl, 1);
	assert_int_equal(mmkv__lock_init(&c, test_uuid, 3, MMKV_LOCK_MODE_WRITEMAP, 9), 0);
	assert_int_equal(mmkv__os_file_size(c.fd, &size), 0);
	assert_int_equal(size, MMKV_LOCK_HEADER + 3 * MMKV_LOCK_SLOT_SIZE);
	assert_int_equal(mmkv__lock_published(&c), 9);
	mmkv__lock_close(&c);
}

static void test_close_is_safe(void **state)
{
	mmkv_lock lk;
	int excl;

	memset(&lk, 0, sizeof(lk));
	lk.fd = -1;
	mmkv__lock_close(&lk);
	mmkv__lock_close(&lk);

	/* An open that failed (a directory where the lock file should be). */
	assert_int_equal(mkdir(lock_path(state), 0755), 0);
	assert_int_equal(mmkv__lock_open(&lk, lock_path(state), 0644, &excl), MMKV_BAD_FILE);
	mmkv__lock_close(&lk);
	assert_int_equal(rmdir(lock_path(state)), 0);

	/* Opened, never initialised or attached. */
	assert_int_equal(mmkv__lock_open(&lk, lock_path(state), 0644, &excl), 0);
	mmkv__lock_close(&lk);
	mmkv__lock_close(&lk);
}

struct opener {
	const char *path;
	mmkv_lock lk;
	int started;
	int rc;
	int exclusive;
	int done;
};

static void *opener_main(void *arg)
{
	struct opener *o = arg;

	__atomic_store_n(&o->started, 1, __ATOMIC_SEQ_CST);
	o->rc = mmkv__lock_open(&o->lk, o->path, 0644, &o->exclusive);
	__atomic_store_n(&o->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void start_opener(struct opener *o, const char *path, pthread_t *th)
{
	memset(o, 0, sizeof(*o));
	o->path = path;
	o->exclusive = -1;
	assert_int_equal(pthread_create(th, NULL, opener_main, o), 0);
	while (!__atomic_load_n(&o->started, __ATOMIC_SEQ_CST))
		usleep(1000);
	usleep(50000); /* time to block on the OPEN byte: it must not return */
	assert_int_equal(__atomic_load_n(&o->done, __ATOMIC_SEQ_CST), 0);
}

static void test_open_waits_for_initialiser(void **state)
{
	struct opener o;
	mmkv_lock a;
	pthread_t th;
	int excl;

	/* A second opener waits while the first initialises ... */
	assert_int_equal(mmkv__lock_open(&a, lock_path(state), 0644, &excl), 0);
	assert_int_equal(excl, 1);
	start_opener(&o, lock_path(state), &th);
	assert_int_equal(mmkv__lock_init(&a, test_uuid, 4, MMKV_LOCK_MODE_PWRITE, 1), 0);
	assert_int_equal(mmkv__lock_downgrade(&a), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(o.rc, 0);
	assert_int_equal(o.exclusive, 0);
	mmkv__lock_close(&o.lk);
	mmkv__lock_close(&a);

	/* ... and takes over when the initialiser gives up. */
	assert_int_equal(mmkv__lock_open(&a, lock_path(state), 0644, &excl), 0);
	assert_int_equal(excl, 1);
	start_opener(&o, lock_path(state), &th);
	mmkv__lock_close(&a);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(o.rc, 0);
	assert_int_equal(o.exclusive, 1);
	mmkv__lock_close(&o.lk);
}

/* A new handle opens shared (someone holds the file) and attach gives want. */
static void expect_attach(const char *path, int want)
{
	mmkv_lock lk;
	uint8_t uuid[16];
	uint32_t mode;
	int excl;

	assert_int_equal(mmkv__lock_open(&lk, path, 0644, &excl), 0);
	assert_int_equal(excl, 0);
	assert_int_equal(mmkv__lock_attach(&lk, uuid, &mode), want);
	mmkv__lock_close(&lk);
}

/* Read-only openers leave the write mode unset; the first writer sets it and
 * a writer of the other mode is refused, whoever initialised the file. */
static void test_claim_mode(void **state)
{
	const char *path = lock_path(state);
	mmkv_lock a, b;
	uint8_t uuid[16];
	uint32_t mode;
	int excl = -1;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.fd = b.fd = -1;
	assert_int_equal(mmkv__lock_open(&a, path, 0644, &excl), 0);
	assert_int_equal(excl, 1);
	assert_int_equal(mmkv__lock_init(&a, test_uuid, 4, MMKV_LOCK_MODE_NONE, 1), 0);
	assert_int_equal(mmkv__lock_downgrade(&a), 0);
	assert_int_equal(mmkv__lock_open(&b, path, 0644, &excl), 0);
	assert_int_equal(mmkv__lock_attach(&b, uuid, &mode), 0);
	assert_int_equal(mode, MMKV_LOCK_MODE_NONE);
	assert_int_equal(mmkv__lock_claim_mode(&b, MMKV_LOCK_MODE_WRITEMAP), 0);
	assert_int_equal(mmkv__lock_claim_mode(&a, MMKV_LOCK_MODE_WRITEMAP), 0);
	assert_int_equal(mmkv__lock_claim_mode(&a, MMKV_LOCK_MODE_PWRITE), MMKV_INCOMPATIBLE);
	mmkv__lock_close(&b);
	mmkv__lock_close(&a);
}

static void test_header_validation(void **state)
{
	const char *path = lock_path(state);
	unsigned char good[MMKV_LOCK_HEADER];
	uint64_t good_size = MMKV_LOCK_HEADER + 8 * MMKV_LOCK_SLOT_SIZE;
	mmkv_lock a;
	int fd;

	/* A holds the file open (shared), so openers below attach. */
	open_init(&a, path, 8, 1);
	assert_int_equal(mmkv__os_open_file(path, O_RDWR, 0, &fd), 0);
	assert_int_equal(mmkv__os_pread_full(fd, good, sizeof(good), 0), 0);
	expect_attach(path, 0);

	put32_at(fd, MMKV_LOCK_MAGIC_OFF, 0x12345678);
	expect_attach(path, MMKV_INVALID);
	assert_int_equal(mmkv__os_pwrite_full(fd, good, sizeof(good), 0), 0);

	put32_at(fd, MMKV_LOCK_VERSION_OFF, MMKV_LOCK_VERSION + 1);
	expect_attach(path, MMKV_VERSION_MISMATCH);
	assert_int_equal(mmkv__os_pwrite_full(fd, good, sizeof(good), 0), 0);

	put32_at(fd, MMKV_LOCK_NSLOTS, 0);
	expect_attach(path, MMKV_CORRUPTED);
	put32_at(fd, MMKV_LOCK_NSLOTS, MMKV_LOCK_MAX_SLOTS + 1);
	expect_attach(path, MMKV_CORRUPTED);
	put32_at(fd, MMKV_LOCK_NSLOTS, UINT32_MAX);
	expect_attach(path, MMKV_CORRUPTED);
	put32_at(fd, MMKV_LOCK_NSLOTS, 9); /* more slots than the file holds */
	expect_attach(path, MMKV_CORRUPTED);
	assert_int_equal(mmkv__os_pwrite_full(fd, good, sizeof(good), 0), 0);

	put32_at(fd, MMKV_LOCK_WRITEMODE, MMKV_LOCK_MODE_NONE); /* only readers so far: valid */
	expect_attach(path, 0);
	put32_at(fd, MMKV_LOCK_WRITEMODE, 3);
	expect_attach(path, MMKV_CORRUPTED);
	assert_int_equal(mmkv__os_pwrite_full(fd, good, sizeof(good), 0), 0);
	expect_attach(path, 0);

	/* Short files. A's map stays unused until the file is whole again. */
	assert_int_equal(ftruncate(fd, 64), 0);
	expect_attach(path, MMKV_CORRUPTED);
	assert_int_equal(ftruncate(fd, 2), 0);
	expect_attach(path, MMKV_INVALID);
	assert_int_equal(ftruncate(fd, 0), 0);
	expect_attach(path, MMKV_INVALID);
	assert_int_equal(ftruncate(fd, (off_t)good_size), 0);
	assert_int_equal(mmkv__os_pwrite_full(fd, good, sizeof(good), 0), 0);
	expect_attach(path, 0);

	close(fd);
	mmkv__lock_close(&a);

	/* init refuses what attach would refuse. */
	{
		int excl;

		assert_int_equal(mmkv__lock_open(&a, path, 0644, &excl), 0);
		assert_int_equal(excl, 1);
		assert_int_equal(mmkv__lock_init(&a, test_uuid, 0, MMKV_LOCK_MODE_PWRITE, 1), EINVAL);
		assert_int_equal(mmkv__lock_init(&a, test_uuid, MMKV_LOCK_MAX_SLOTS + 1,
		                                 MMKV_LOCK_MODE_PWRITE, 1), EINVAL);
		assert_int_equal(mmkv__lock_init(&a, test_uuid, 1, 7, 1), EINVAL);
		mmkv__lock_close(&a);
	}
}

/* ------------------------------------------------------------ writer */

struct writer {
	mmkv_lock *lk;
	int pipe_w; /* one byte written once the lock is held */
	int rc;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char c = 'w';

	/* No cmocka asserts off the main thread: report through rc. */
	w->rc = mmkv__lock_writer_acquire(w->lk);
	if (write(w->pipe_w, &c, 1) != 1 && w->rc == 0)
		w->rc = -2;
	if (w->rc == 0 || w->rc == -2)
		mmkv__lock_writer_release(w->lk);
	return NULL;
}

/* Start a thread acquiring the writer lock on lk; check that it blocks. */
static void start_blocked_writer(struct writer *w, mmkv_lock *lk, int p[2], pthread_t *th)
{
	struct pollfd pfd;

	assert_int_equal(pipe(p), 0);
	w->lk = lk;
	w->pipe_w = p[1];
	w->rc = -1;
	assert_int_equal(pthread_create(th, NULL, writer_main, w), 0);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 100), 0);
}

static void finish_writer(struct writer *w, int p[2], pthread_t th)
{
	char c;

	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w->rc, 0);
	close(p[0]);
	close(p[1]);
}

static void *release_writer_main(void *arg)
{
	mmkv__lock_writer_release(arg);
	return NULL;
}

static void test_writer_excludes(void **state)
{
	struct writer w;
	mmkv_lock a, b;
	pthread_t th;
	pid_t pid;
	int p[2];

	open_init(&a, lock_path(state), 4, 1);
	open_attach(&b, lock_path(state));

	/* Another handle (another process, as far as the kernel knows). */
	assert_int_equal(mmkv__lock_writer_acquire(&a), 0);
	start_blocked_writer(&w, &b, p, &th);
	mmkv__lock_writer_release(&a);
	finish_writer(&w, p, th);

	/* Another thread of the same handle waits on the gate ... */
	assert_int_equal(mmkv__lock_writer_acquire(&a), 0);
	start_blocked_writer(&w, &a, p, &th);
	mmkv__lock_writer_release(&a);
	finish_writer(&w, p, th);

	/* ... and any thread may release what another acquired. */
	assert_int_equal(mmkv__lock_writer_acquire(&a), 0);
	assert_int_equal(pthread_create(&th, NULL, release_writer_main, &a), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(mmkv__lock_writer_acquire(&b), 0);
	mmkv__lock_writer_release(&b);

	/* A writer killed while holding the lock does not block the next. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		mmkv_lock c;

		child_attach(&c, lock_path(state));
		if (mmkv__lock_writer_acquire(&c) != 0)
			_exit(12);
		raise(SIGKILL);
		_exit(13);
	}
	assert_true(WIFSIGNALED(wait_child(pid)));
	assert_int_equal(mmkv__lock_writer_acquire(&a), 0);

	/* Closing while holding it releases it. */
	start_blocked_writer(&w, &b, p, &th);
	mmkv__lock_close(&a);
	finish_writer(&w, p, th);
	mmkv__lock_close(&b);
}

/* ------------------------------------------------------------ readers */

static void test_reader_pool(void **state)
{
	mmkv_lock a, b;
	uint32_t s, s2, s3;

	open_init(&a, lock_path(state), 4, 1);
	open_attach(&b, lock_path(state));

	assert_int_equal(mmkv__lock_reader_acquire(&a, &s), 0);
	assert_true(s < 4);
	assert_int_equal(a.owned[s], 1);
	assert_int_equal(mmkv__lock_oldest_reader(&b, 99), 99); /* idle on return */
	assert_int_equal(mmkv__lock_reader_count(&b), 1);       /* but owned */
	mmkv__lock_reader_set(&a, s, 10);
	assert_int_equal(mmkv__lock_oldest_reader(&b, 99), 10);
	assert_int_equal(mmkv__lock_reader_acquire(&b, &s2), 0);
	assert_int_not_equal(s2, s);
	mmkv__lock_reader_set(&b, s2, 12);
	assert_int_equal(mmkv__lock_oldest_reader(&a, 99), 10);
	assert_int_equal(mmkv__lock_reader_count(&a), 2);

	/* A live reader of another handle is never cleared. */
	{
		int cleared = -1;

		assert_int_equal(mmkv__lock_reader_check(&a, &cleared), 0);
		assert_int_equal(cleared, 0);
		assert_int_equal(mmkv__lock_reader_check(&b, NULL), 0);
	}

	mmkv__lock_reader_release(&a, s);
	assert_int_equal(mmkv__lock_oldest_reader(&b, 99), 12);
	/* From the pool: the same slot, no scan. */
	assert_int_equal(mmkv__lock_reader_acquire(&a, &s3), 0);
	assert_int_equal(s3, s);
	assert_int_equal(a.npool, 0);
	mmkv__lock_reader_set(&a, s3, 11);
	assert_int_equal(mmkv__lock_oldest_reader(&b, 99), 11);
	mmkv__lock_reader_set(&a, s3, MMKV_SLOT_IDLE);
	assert_int_equal(mmkv__lock_oldest_reader(&b, 99), 12);
	mmkv__lock_reader_release(&a, s3);
	mmkv__lock_reader_release(&b, s2);
	assert_int_equal(mmkv__lock_oldest_reader(&b, 99), 99);

	/* Even if someone zeroes the pid of a slot a uses, a never takes it
	 * twice (its own byte lock would not stop it). */
	{
		uint32_t zero = 0, again;
		uint64_t off;

		assert_int_equal(mmkv__lock_reader_acquire(&a, &s), 0);
		off = MMKV_LOCK_HEADER + (uint64_t)s * MMKV_LOCK_SLOT_SIZE + MMKV_SLOT_PID;
		assert_int_equal(mmkv__os_pwrite_full(b.fd, &zero, 4, off), 0);
		assert_int_equal(mmkv__lock_reader_acquire(&a, &again), 0);
		assert_int_not_equal(again, s);
		mmkv__lock_reader_release(&a, again);
		mmkv__lock_reader_release(&a, s);
	}

	/* Close frees the slots for others. */
	mmkv__lock_close(&a);
	assert_int_equal(mmkv__lock_reader_count(&b), 1);
	mmkv__lock_close(&b);
}

static void test_readers_full(void **state)
{
	mmkv_lock a, b;
	uint32_t s[4], x;
	int i;

	open_init(&a, lock_path(state), 4, 1);
	open_attach(&b, lock_path(state));
	assert_int_equal(mmkv__lock_reader_acquire(&a, &s[0]), 0);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &s[1]), 0);
	assert_int_equal(mmkv__lock_reader_acquire(&b, &s[2]), 0);
	assert_int_equal(mmkv__lock_reader_acquire(&b, &s[3]), 0);
	for (i = 0; i < 4; i++)
		mmkv__lock_reader_set(i < 2 ? &a : &b, s[i], 20 + (uint64_t)i);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &x), MMKV_READERS_FULL);
	assert_int_equal(mmkv__lock_reader_acquire(&b, &x), MMKV_READERS_FULL);
	assert_int_equal(mmkv__lock_oldest_reader(&a, 0), 20);

	/* A released slot stays with its handle ... */
	mmkv__lock_reader_release(&a, s[0]);
	assert_int_equal(mmkv__lock_reader_acquire(&b, &x), MMKV_READERS_FULL);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &x), 0);
	assert_int_equal(x, s[0]);
	/* ... until the handle closes. */
	mmkv__lock_close(&a);
	assert_int_equal(mmkv__lock_reader_acquire(&b, &x), 0);
	assert_int_equal(mmkv__lock_reader_acquire(&b, &x), 0);
	assert_int_equal(mmkv__lock_reader_acquire(&b, &x), MMKV_READERS_FULL);
	mmkv__lock_close(&b);
}

struct reader_thread {
	mmkv_lock *lk;
	int *in_use;
	int failures;
};

static void *reader_thread_main(void *arg)
{
	struct reader_thread *r = arg;
	uint32_t s1, s2;
	int i;

	for (i = 0; i < 500; i++) {
		if (mmkv__lock_reader_acquire(r->lk, &s1) != 0 ||
		    mmkv__lock_reader_acquire(r->lk, &s2) != 0) {
			r->failures++;
			return NULL;
		}
		if (__atomic_exchange_n(&r->in_use[s1], 1, __ATOMIC_SEQ_CST) ||
		    __atomic_exchange_n(&r->in_use[s2], 1, __ATOMIC_SEQ_CST))
			r->failures++;
		mmkv__lock_reader_set(r->lk, s1, 100 + (uint64_t)i);
		__atomic_store_n(&r->in_use[s1], 0, __ATOMIC_SEQ_CST);
		__atomic_store_n(&r->in_use[s2], 0, __ATOMIC_SEQ_CST);
		mmkv__lock_reader_release(r->lk, s2);
		mmkv__lock_reader_release(r->lk, s1);
	}
	return NULL;
}

static void test_reader_threads(void **state)
{
	enum { NTHREADS = 4 };
	struct reader_thread r[NTHREADS];
	pthread_t th[NTHREADS];
	int in_use[2 * NTHREADS] = { 0 };
	mmkv_lock a;
	int i;

	open_init(&a, lock_path(state), 2 * NTHREADS, 1);
	for (i = 0; i < NTHREADS; i++) {
		r[i].lk = &a;
		r[i].in_use = in_use;
		r[i].failures = 0;
		assert_int_equal(pthread_create(&th[i], NULL, reader_thread_main, &r[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(r[i].failures, 0);
	}
	assert_int_equal(mmkv__lock_oldest_reader(&a, 7), 7);
	mmkv__lock_close(&a);
}

/* A child that takes a slot, publishes txnid in it, reports the slot on
 * the pipe, then dies: by SIGKILL (kill != 0) or by _exit without closing. */
static uint32_t dead_reader(const char *path, uint64_t txnid, int kill_it)
{
	uint32_t slot = UINT32_MAX;
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		mmkv_lock c;
		uint32_t s;

		close(p[0]);
		child_attach(&c, path);
		if (mmkv__lock_reader_acquire(&c, &s) != 0)
			_exit(12);
		mmkv__lock_reader_set(&c, s, txnid);
		if (write(p[1], &s, sizeof(s)) != (ssize_t)sizeof(s))
			_exit(13);
		if (kill_it)
			pause();
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &slot, sizeof(slot)), (ssize_t)sizeof(slot));
	close(p[0]);
	if (kill_it)
		assert_int_equal(kill(pid, SIGKILL), 0);
	wait_child(pid);
	return slot;
}

static void test_reclaim_dead_readers(void **state)
{
	mmkv_lock a;
	uint32_t s, x, y;
	int cleared = -1;

	open_init(&a, lock_path(state), 2, 1);

	s = dead_reader(lock_path(state), 7, 1);
	assert_true(s < 2);
	/* The stale snapshot still pins pages until someone checks. */
	assert_int_equal(mmkv__lock_oldest_reader(&a, 99), 7);
	assert_int_equal(mmkv__lock_reader_count(&a), 1);
	assert_int_equal(mmkv__lock_reader_check(&a, &cleared), 0);
	assert_int_equal(cleared, 1);
	assert_int_equal(mmkv__lock_oldest_reader(&a, 99), 99);
	assert_int_equal(mmkv__lock_reader_count(&a), 0);

	/* Both slots stale: acquire reclaims them when the table is full. */
	dead_reader(lock_path(state), 8, 0);
	dead_reader(lock_path(state), 9, 1);
	assert_int_equal(mmkv__lock_oldest_reader(&a, 99), 8);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &x), 0);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &y), 0);
	assert_int_not_equal(x, y);
	assert_int_equal(mmkv__lock_oldest_reader(&a, 99), 99);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &x), MMKV_READERS_FULL);
	mmkv__lock_close(&a);
}

static void test_live_reader_kept(void **state)
{
	mmkv_lock a;
	uint32_t s, x;
	int ready[2], quit[2], cleared = -1;
	pid_t pid;
	char c;

	open_init(&a, lock_path(state), 2, 1);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(quit), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		mmkv_lock k;

		close(ready[0]);
		close(quit[1]);
		child_attach(&k, lock_path(state));
		if (mmkv__lock_reader_acquire(&k, &s) != 0)
			_exit(12);
		mmkv__lock_reader_set(&k, s, 5);
		if (write(ready[1], &s, sizeof(s)) != (ssize_t)sizeof(s))
			_exit(13);
		/* Live until the parent closes its end. */
		while (read(quit[0], &c, 1) > 0)
			;
		mmkv__lock_close(&k);
		_exit(0);
	}
	close(ready[1]);
	close(quit[0]);
	assert_int_equal(read(ready[0], &s, sizeof(s)), (ssize_t)sizeof(s));

	assert_int_equal(mmkv__lock_reader_check(&a, &cleared), 0);
	assert_int_equal(cleared, 0);
	assert_int_equal(mmkv__lock_oldest_reader(&a, 99), 5);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &x), 0);
	assert_int_not_equal(x, s);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &x), MMKV_READERS_FULL);

	close(quit[1]);
	assert_int_equal(wait_child(pid), 0);
	close(ready[0]);
	/* It closed cleanly: its slot is free, not stale. */
	assert_int_equal(mmkv__lock_oldest_reader(&a, 99), 99);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &x), 0);
	assert_int_equal(x, s);
	mmkv__lock_close(&a);
}

/* ------------------------------------------------------------ commits */

static void test_wait_commit_other_process(void **state)
{
	uint32_t *waiters;
	uint64_t now = 0;
	mmkv_lock a;
	pid_t pid;
	int i;

	open_init(&a, lock_path(state), 2, 5);
	waiters = (uint32_t *)(void *)(a.map + MMKV_LOCK_WAITERS);

	/* Already newer: no wait. */
	assert_int_equal(mmkv__lock_wait_commit(&a, 4, 5000, &now), 0);
	assert_int_equal(now, 5);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		mmkv_lock c;
		uint64_t seen = 0, t;
		int rc;

		child_attach(&c, lock_path(state));
		t = mmkv__os_now_ms();
		rc = mmkv__lock_wait_commit(&c, 5, 20000, &seen);
		/* Woken, not found by a last check at the deadline. */
		t = mmkv__os_now_ms() - t;
		_exit(rc == 0 && seen == 6 && t < 15000 ? 0 : 20);
	}
	/* Publish once the child sleeps (or at worst after 5 s: it must still
	 * see the commit, only the test gets weaker). */
	for (i = 0; i < 5000 && __atomic_load_n(waiters, __ATOMIC_SEQ_CST) == 0; i++)
		usleep(1000);
	mmkv__lock_publish(&a, 6);
	assert_int_equal(wait_child(pid), 0);
	assert_int_equal(__atomic_load_n(waiters, __ATOMIC_SEQ_CST), 0);
	mmkv__lock_close(&a);
}

static void test_wait_commit_timeout(void **state)
{
	uint64_t t0, now = 0;
	mmkv_lock a;

	open_init(&a, lock_path(state), 2, 5);
	t0 = mmkv__os_now_ms();
	assert_int_equal(mmkv__lock_wait_commit(&a, 5, 100, &now), ETIMEDOUT);
	assert_true(mmkv__os_now_ms() - t0 >= 100);
	assert_int_equal(now, 5);
	assert_int_equal(mmkv__lock_wait_commit(&a, 5, 0, NULL), ETIMEDOUT);
	assert_int_equal(*(uint32_t *)(void *)(a.map + MMKV_LOCK_WAITERS), 0);
	mmkv__lock_close(&a);
}

/* ------------------------------------------------------------ hostility */

struct scribbler {
	unsigned char *map;
	size_t len;
	int stop;
	unsigned int seed;
};

static void *scribbler_main(void *arg)
{
	struct scribbler *s = arg;
	size_t i;

	while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
		for (i = 0; i < s->len; i++)
			s->map[i] = (unsigned char)rand_r(&s->seed);
	}
	return NULL;
}

static void exercise(mmkv_lock *a, mmkv_lock *b)
{
	uint64_t now;
	uint32_t s;
	int rc, cleared;

	mmkv__lock_oldest_reader(a, 0);
	mmkv__lock_reader_count(b);
	assert_int_equal(mmkv__lock_reader_check(b, &cleared), 0);
	/* a owns two slots; b can always get one of the others. */
	assert_int_equal(mmkv__lock_reader_acquire(b, &s), 0);
	assert_true(s < b->nslots && !a->owned[s]);
	mmkv__lock_reader_set(b, s, 3);
	mmkv__lock_reader_release(b, s);
	mmkv__lock_publish(a, mmkv__lock_published(a) + 1);
	rc = mmkv__lock_wait_commit(b, UINT64_MAX, 0, &now);
	assert_int_equal(rc, ETIMEDOUT);
	rc = mmkv__lock_wait_commit(b, 0, 1, &now);
	assert_true(rc == 0 || rc == ETIMEDOUT);
}

static void test_hostile_bytes(void **state)
{
	size_t len = MMKV_LOCK_HEADER + 8 * MMKV_LOCK_SLOT_SIZE;
	unsigned char junk[MMKV_LOCK_HEADER + 8 * MMKV_LOCK_SLOT_SIZE];
	struct scribbler sc;
	unsigned int seed = 12345;
	mmkv_lock a, b, c;
	uint32_t s1, s2;
	pthread_t th;
	size_t j;
	void *map;
	int fd, round, excl;
	uint8_t uuid[16];
	uint32_t mode;

	open_init(&a, lock_path(state), 8, 1);
	open_attach(&b, lock_path(state));
	assert_int_equal(mmkv__lock_reader_acquire(&a, &s1), 0);
	assert_int_equal(mmkv__lock_reader_acquire(&a, &s2), 0);
	assert_int_equal(mmkv__os_open_file(lock_path(state), O_RDWR, 0, &fd), 0);

	/* Whole-file garbage, round after round. */
	for (round = 0; round < 200; round++) {
		for (j = 0; j < len; j++)
			junk[j] = (unsigned char)rand_r(&seed);
		/* Some rounds keep the header valid-looking but the rest wild. */
		if (round % 4 == 0)
			assert_int_equal(mmkv__os_pread_full(fd, junk, 24, 0), 0);
		assert_int_equal(mmkv__os_pwrite_full(fd, junk, len, 0), 0);
		exercise(&a, &b);
		assert_int_equal(mmkv__lock_open(&c, lock_path(state), 0644, &excl), 0);
		assert_int_equal(excl, 0);
		mmkv__lock_attach(&c, uuid, &mode);
		mmkv__lock_close(&c);
	}

	/* Garbage written concurrently through another map. */
	assert_int_equal(mmkv__os_map(fd, len, 1, &map), 0);
	memset(&sc, 0, sizeof(sc));
	sc.map = map;
	sc.len = len;
	sc.seed = 777;
	assert_int_equal(pthread_create(&th, NULL, scribbler_main, &sc), 0);
	for (round = 0; round < 300; round++)
		exercise(&a, &b);
	__atomic_store_n(&sc.stop, 1, __ATOMIC_SEQ_CST);
	assert_int_equal(pthread_join(th, NULL), 0);
	mmkv__os_unmap(map, len);

	/* Whatever the bytes said, b never took the slots a owns. */
	{
		int held;

		assert_int_equal(mmkv__lock_reader_check(&b, NULL), 0);
		assert_int_equal(mmkv__os_lock_test(b.fd, MMKV_LOCKBYTE_SLOT + s1, &held), 0);
		assert_int_equal(held, 1);
		assert_int_equal(mmkv__os_lock_test(b.fd, MMKV_LOCKBYTE_SLOT + s2, &held), 0);
		assert_int_equal(held, 1);
	}
	close(fd);
	mmkv__lock_close(&b);
	mmkv__lock_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_attach, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_close_is_safe, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_open_waits_for_initialiser, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_header_validation, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_claim_mode, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_writer_excludes, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_reader_pool, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_readers_full, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_reader_threads, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_dead_readers, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_live_reader_kept, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_wait_commit_other_process, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_wait_commit_timeout, setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_hostile_bytes, setup, tu_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
