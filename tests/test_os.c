/*
 * test_os.c - unit tests of the OS layer (lib/os.c).
 *
 * Covers the safe open (every kind of file that is not a plain regular file
 * is refused without blocking), the full read and write loops under short
 * writes, EINTR and no-progress writes (injected by replacing entries of
 * mmkv__os), growth, sync retry rules, OFD byte locks between two open file
 * descriptions of one file, and futex wait/wake. Each test restores mmkv__os
 * and removes its temporary directory (tests/util.c).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mmkv.h"
#include "os.h"
#include "util.h"

/* ------------------------------------------------------------ fixtures */

/* A fresh directory per test (tests/util.c); the OS table is restored and
 * any watchdog cancelled afterwards, whatever the test did. */
static int teardown(void **state)
{
	mmkv__os = mmkv__os_default;
	alarm(0);
	return tu_teardown(state);
}

static void path_in(void **state, char *buf, const char *name)
{
	test_fixture *fx = *state;

	test_dir_file(&fx->dir, name, buf, PATH_MAX);
}

static int create_file(const char *path, size_t size)
{
	int fd;

	assert_int_equal(mmkv__os_open_file(path, O_RDWR | O_CREAT, 0644, &fd), 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* ------------------------------------------------------------ open */

static void test_open_regular(void **state)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, fl;

	path_in(state, path, "f");
	assert_int_equal(mmkv__os_open_file(path, O_RDWR, 0644, &fd), ENOENT);
	assert_int_equal(mmkv__os_open_file(path, O_RDWR | O_CREAT | O_EXCL, 0600, &fd), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	fl = fcntl(fd, F_GETFL);
	assert_false(fl & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	assert_int_equal(mmkv__os_open_file(path, O_RDWR | O_CREAT | O_EXCL, 0600, &fd), EEXIST);
	assert_int_equal(mmkv__os_open_file(path, O_RDONLY, 0, &fd), 0);
	close(fd);
}

static void test_open_refusals(void **state)
{
	char target[PATH_MAX], link_path[PATH_MAX], dangling[PATH_MAX], fifo[PATH_MAX];
	char dir[PATH_MAX], hard[PATH_MAX], sock_path[PATH_MAX], missing[PATH_MAX];
	struct sockaddr_un sa;
	int fd, s;

	/* A FIFO that blocked the open would stop the test here. */
	watchdog(10);
	path_in(state, target, "target");
	close(create_file(target, 0));

	path_in(state, link_path, "symlink");
	assert_int_equal(symlink(target, link_path), 0);
	assert_int_equal(mmkv__os_open_file(link_path, O_RDWR, 0, &fd), MMKV_BAD_FILE);
	assert_int_equal(mmkv__os_open_file(link_path, O_RDONLY, 0, &fd), MMKV_BAD_FILE);

	/* O_CREAT through a dangling symlink must not create its target. */
	path_in(state, dangling, "dangling");
	path_in(state, missing, "not-there");
	assert_int_equal(symlink(missing, dangling), 0);
	assert_int_equal(mmkv__os_open_file(dangling, O_RDWR | O_CREAT, 0644, &fd), MMKV_BAD_FILE);
	assert_int_equal(access(missing, F_OK), -1);

	path_in(state, fifo, "fifo");
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(mmkv__os_open_file(fifo, O_RDONLY, 0, &fd), MMKV_BAD_FILE);
	assert_int_equal(mmkv__os_open_file(fifo, O_RDWR, 0, &fd), MMKV_BAD_FILE);
	assert_int_equal(mmkv__os_open_file(fifo, O_RDWR | O_CREAT, 0644, &fd), MMKV_BAD_FILE);

	path_in(state, dir, "dir");
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mmkv__os_open_file(dir, O_RDONLY, 0, &fd), MMKV_BAD_FILE);
	assert_int_equal(mmkv__os_open_file(dir, O_RDWR, 0, &fd), MMKV_BAD_FILE);
	assert_int_equal(mmkv__os_open_file(dir, O_RDWR | O_CREAT, 0644, &fd), MMKV_BAD_FILE);

	path_in(state, hard, "hardlink");
	assert_int_equal(link(target, hard), 0);
	assert_int_equal(mmkv__os_open_file(hard, O_RDWR, 0, &fd), MMKV_BAD_FILE);
	assert_int_equal(mmkv__os_open_file(target, O_RDONLY, 0, &fd), MMKV_BAD_FILE);
	assert_int_equal(unlink(hard), 0);
	assert_int_equal(mmkv__os_open_file(target, O_RDONLY, 0, &fd), 0);
	close(fd);

	path_in(state, sock_path, "sock");
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(s >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock_path) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, sock_path);
		assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(mmkv__os_open_file(sock_path, O_RDWR, 0, &fd), MMKV_BAD_FILE);
	}
	close(s);

	assert_int_equal(mmkv__os_open_file("/dev/null", O_RDWR, 0, &fd), MMKV_BAD_FILE);
	assert_int_equal(mmkv__os_open_file(missing, O_RDONLY, 0, &fd), ENOENT);
}

/* ------------------------------------------------------------ read/write */

static void fill_pattern(unsigned char *p, size_t n, unsigned int seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31u + seed);
}

static void test_read_write_full(void **state)
{
	char path[PATH_MAX];
	unsigned char out[10000], in[10000];
	uint64_t size;
	int fd;

	path_in(state, path, "rw");
	fd = create_file(path, 0);
	fill_pattern(out, sizeof(out), 7);
	assert_int_equal(mmkv__os_pwrite_full(fd, out, sizeof(out), 4096), 0);
	assert_int_equal(mmkv__os_file_size(fd, &size), 0);
	assert_int_equal(size, 4096 + sizeof(out));
	assert_int_equal(mmkv__os_pread_full(fd, in, sizeof(in), 4096), 0);
	assert_memory_equal(in, out, sizeof(in));
	/* Past the end: ENODATA, not a silent short read. */
	assert_int_equal(mmkv__os_pread_full(fd, in, 100, 4096 + sizeof(out) - 50), ENODATA);
	assert_int_equal(mmkv__os_pwrite_full(fd, out, 0, 0), 0);
	assert_int_equal(mmkv__os_pwrite_full(fd, out, 1, UINT64_MAX), EFBIG);
	close(fd);
}

static void test_pwritev_many(void **state)
{
	enum { N = IOV_MAX * 2 + 37 };
	static unsigned char buf[N * 3];
	static unsigned char check[N * 3];
	static struct iovec iov[N];
	char path[PATH_MAX];
	size_t total = 0, len;
	int fd, i;

	path_in(state, path, "v");
	fd = create_file(path, 0);
	fill_pattern(buf, sizeof(buf), 3);
	for (i = 0; i < N; i++) {
		len = (size_t)(i % 4); /* some entries are empty */
		iov[i].iov_base = buf + total;
		iov[i].iov_len = len;
		total += len;
	}
	assert_int_equal(mmkv__os_pwritev_full(fd, iov, N, 100), 0);
	assert_int_equal(mmkv__os_pread_full(fd, check, total, 100), 0);
	assert_memory_equal(check, buf, total);
	close(fd);
}

/* Fakes: the first call fails with EINTR, then each call makes the least
 * progress allowed (one byte, or a few bytes across iovecs). */
static int fake_calls;
static int fake_max_cnt;

static ssize_t pwrite_one_byte(int fd, const void *buf, size_t n, off_t off)
{
	if (fake_calls++ == 0) {
		errno = EINTR;
		return -1;
	}
	return mmkv__os_default.pwrite(fd, buf, n > 0 ? 1 : 0, off);
}

static ssize_t pread_one_byte(int fd, void *buf, size_t n, off_t off)
{
	if (fake_calls++ == 0) {
		errno = EINTR;
		return -1;
	}
	return mmkv__os_default.pread(fd, buf, n > 0 ? 1 : 0, off);
}

static ssize_t pwritev_few_bytes(int fd, const struct iovec *iov, int cnt, off_t off)
{
	unsigned char tmp[3];
	size_t n = 0, k;
	int i;

	if (cnt > fake_max_cnt)
		fake_max_cnt = cnt;
	if (fake_calls++ == 0) {
		errno = EINTR;
		return -1;
	}
	for (i = 0; i < cnt && n < sizeof(tmp); i++) {
		for (k = 0; k < iov[i].iov_len && n < sizeof(tmp); k++)
			tmp[n++] = ((const unsigned char *)iov[i].iov_base)[k];
	}
	return mmkv__os_default.pwrite(fd, tmp, n, off);
}

static ssize_t pwrite_nothing(int fd, const void *buf, size_t n, off_t off)
{
	(void)fd;
	(void)buf;
	(void)n;
	(void)off;
	fake_calls++;
	return 0;
}

static ssize_t pwritev_nothing(int fd, const struct iovec *iov, int cnt, off_t off)
{
	(void)fd;
	(void)iov;
	(void)cnt;
	(void)off;
	fake_calls++;
	return 0;
}

static void test_short_writes_and_eintr(void **state)
{
	enum { N = IOV_MAX + 50 };
	static struct iovec iov[N];
	static unsigned char vbuf[N * 2], vcheck[N * 2];
	char path[PATH_MAX];
	unsigned char out[100], in[100];
	size_t total = 0;
	int fd, i;

	path_in(state, path, "short");
	fd = create_file(path, 0);
	fill_pattern(out, sizeof(out), 11);

	fake_calls = 0;
	mmkv__os.pwrite = pwrite_one_byte;
	assert_int_equal(mmkv__os_pwrite_full(fd, out, sizeof(out), 10), 0);
	assert_int_equal(fake_calls, 1 + (int)sizeof(out));
	mmkv__os.pwrite = mmkv__os_default.pwrite;

	fake_calls = 0;
	mmkv__os.pread = pread_one_byte;
	assert_int_equal(mmkv__os_pread_full(fd, in, sizeof(in), 10), 0);
	assert_int_equal(fake_calls, 1 + (int)sizeof(in));
	mmkv__os.pread = mmkv__os_default.pread;
	assert_memory_equal(in, out, sizeof(in));

	/* Partial writes that end inside an iovec, and chunks of IOV_MAX. */
	fill_pattern(vbuf, sizeof(vbuf), 5);
	for (i = 0; i < N; i++) {
		iov[i].iov_base = vbuf + total;
		iov[i].iov_len = (size_t)(i % 3);
		total += iov[i].iov_len;
	}
	fake_calls = 0;
	fake_max_cnt = 0;
	mmkv__os.pwritev = pwritev_few_bytes;
	assert_int_equal(mmkv__os_pwritev_full(fd, iov, N, 1000), 0);
	mmkv__os.pwritev = mmkv__os_default.pwritev;
	assert_true(fake_max_cnt <= IOV_MAX);
	assert_true(fake_calls > 1);
	assert_int_equal(mmkv__os_pread_full(fd, vcheck, total, 1000), 0);
	assert_memory_equal(vcheck, vbuf, total);
	close(fd);
}

static void test_zero_write_is_enospc(void **state)
{
	char path[PATH_MAX];
	unsigned char out[10] = { 0 };
	struct iovec iov[2] = { { out, 0 }, { out, sizeof(out) } };
	int fd;

	path_in(state, path, "zero");
	fd = create_file(path, 0);
	fake_calls = 0;
	mmkv__os.pwrite = pwrite_nothing;
	assert_int_equal(mmkv__os_pwrite_full(fd, out, sizeof(out), 0), ENOSPC);
	assert_int_equal(fake_calls, 1);
	fake_calls = 0;
	mmkv__os.pwritev = pwritev_nothing;
	assert_int_equal(mmkv__os_pwritev_full(fd, iov, 2, 0), ENOSPC);
	assert_int_equal(fake_calls, 1);
	close(fd);
}

/* ------------------------------------------------------------ grow, sync */

static int fallocate_unsupported(int fd, int mode, off_t off, off_t len)
{
	(void)fd;
	(void)mode;
	(void)off;
	(void)len;
	fake_calls++;
	errno = EOPNOTSUPP;
	return -1;
}

static int fallocate_full(int fd, int mode, off_t off, off_t len)
{
	(void)fd;
	(void)mode;
	(void)off;
	(void)len;
	errno = ENOSPC;
	return -1;
}

static void test_grow(void **state)
{
	char path[PATH_MAX];
	uint64_t size;
	int fd;

	path_in(state, path, "grow");
	fd = create_file(path, 100);
	assert_int_equal(mmkv__os_grow(fd, 8192), 0);
	assert_int_equal(mmkv__os_file_size(fd, &size), 0);
	assert_int_equal(size, 8192);
	assert_int_equal(mmkv__os_grow(fd, 4096), 0);
	assert_int_equal(mmkv__os_file_size(fd, &size), 0);
	assert_int_equal(size, 8192);

	fake_calls = 0;
	mmkv__os.fallocate = fallocate_unsupported;
	assert_int_equal(mmkv__os_grow(fd, 12288), 0);
	assert_int_equal(fake_calls, 1);
	assert_int_equal(mmkv__os_file_size(fd, &size), 0);
	assert_int_equal(size, 12288);

	mmkv__os.fallocate = fallocate_full;
	assert_int_equal(mmkv__os_grow(fd, 16384), ENOSPC);
	assert_int_equal(mmkv__os_file_size(fd, &size), 0);
	assert_int_equal(size, 12288);
	mmkv__os = mmkv__os_default;

	assert_int_equal(mmkv__os_truncate(fd, 10), 0);
	assert_int_equal(mmkv__os_file_size(fd, &size), 0);
	assert_int_equal(size, 10);
	close(fd);
}

static int fdatasync_eintr_once(int fd)
{
	if (fake_calls++ == 0) {
		errno = EINTR;
		return -1;
	}
	return mmkv__os_default.fdatasync(fd);
}

static int fsync_eio(int fd)
{
	(void)fd;
	fake_calls++;
	errno = EIO;
	return -1;
}

static void *msync_addr;
static size_t msync_len;

static int msync_record(void *addr, size_t len, int flags)
{
	assert_int_equal(flags, MS_SYNC);
	msync_addr = addr;
	msync_len = len;
	return 0;
}

static void test_sync(void **state)
{
	char path[PATH_MAX];
	unsigned int ps = mmkv__os_page_size();
	void *map;
	int fd;

	path_in(state, path, "sync");
	fd = create_file(path, 2 * ps);
	assert_int_equal(mmkv__os_sync(fd, 1), 0);
	assert_int_equal(mmkv__os_sync(fd, 0), 0);

	/* EINTR is retried ... */
	fake_calls = 0;
	mmkv__os.fdatasync = fdatasync_eintr_once;
	assert_int_equal(mmkv__os_sync(fd, 0), 0);
	assert_int_equal(fake_calls, 2);
	/* ... any other failure is not. */
	fake_calls = 0;
	mmkv__os.fsync = fsync_eio;
	assert_int_equal(mmkv__os_sync(fd, 1), EIO);
	assert_int_equal(fake_calls, 1);
	mmkv__os = mmkv__os_default;

	assert_int_equal(mmkv__os_map(fd, 2 * ps, 1, &map), 0);
	assert_int_equal(mmkv__os_msync((unsigned char *)map + ps + 100, 10), 0);
	mmkv__os.msync = msync_record;
	assert_int_equal(mmkv__os_msync((unsigned char *)map + ps + 100, 10), 0);
	assert_ptr_equal(msync_addr, (unsigned char *)map + ps);
	assert_int_equal(msync_len, 110);
	mmkv__os = mmkv__os_default;
	mmkv__os_unmap(map, 2 * ps);

	assert_int_equal(mmkv__os.fsync_dir(path), 0);
	assert_int_equal(mmkv__os.fsync_dir("relative-name"), 0);
	assert_int_equal(mmkv__os.fsync_dir("/"), 0);
	assert_int_equal(mmkv__os.fsync_dir("/no/such/dir/file"), -1);
	assert_int_equal(errno, ENOENT);
	close(fd);
}

static void test_map_beyond_eof(void **state)
{
	char path[PATH_MAX];
	/* An address-space reservation far past the end of the file. */
	size_t len = sizeof(size_t) >= 8 ? (size_t)1 << 40 : (size_t)1 << 28;
	unsigned char *map;
	void *p;
	int fd;

	path_in(state, path, "map");
	fd = create_file(path, 0);
	assert_int_equal(mmkv__os_pwrite_full(fd, "hello", 5, 0), 0);
	assert_int_equal(mmkv__os_map(fd, len, 0, &p), 0);
	map = p;
	assert_memory_equal(map, "hello", 5);
	/* Growth is visible through the existing map. */
	assert_int_equal(mmkv__os_grow(fd, 1 << 20), 0);
	assert_int_equal(mmkv__os_pwrite_full(fd, "x", 1, (1 << 20) - 1), 0);
	assert_int_equal(map[(1 << 20) - 1], 'x');
	mmkv__os_unmap(map, len);
	close(fd);
}

/* ------------------------------------------------------------ locks */

struct lock_waiter {
	int fd;
	int started;
	int acquired;
	int rc;
};

static void *lock_waiter_main(void *arg)
{
	struct lock_waiter *w = arg;

	__atomic_store_n(&w->started, 1, __ATOMIC_SEQ_CST);
	w->rc = mmkv__os_lock_byte(w->fd, 5, F_WRLCK, 1);
	__atomic_store_n(&w->acquired, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_lock_byte(void **state)
{
	char path[PATH_MAX];
	struct lock_waiter w;
	pthread_t th;
	int a, b, held;

	path_in(state, path, "locks");
	a = create_file(path, 0);
	assert_int_equal(mmkv__os_open_file(path, O_RDWR, 0, &b), 0);

	/* Exclusive conflicts between two open file descriptions ... */
	assert_int_equal(mmkv__os_lock_byte(a, 5, F_WRLCK, 0), 0);
	assert_int_equal(mmkv__os_lock_byte(b, 5, F_WRLCK, 0), EAGAIN);
	assert_int_equal(mmkv__os_lock_byte(b, 5, F_RDLCK, 0), EAGAIN);
	assert_int_equal(mmkv__os_lock_byte(b, 6, F_WRLCK, 0), 0);
	/* ... but not within one, even from the same process. */
	assert_int_equal(mmkv__os_lock_byte(a, 5, F_WRLCK, 0), 0);

	assert_int_equal(mmkv__os_lock_test(b, 5, &held), 0);
	assert_int_equal(held, 1);
	assert_int_equal(mmkv__os_lock_test(a, 5, &held), 0);
	assert_int_equal(held, 0); /* its own lock is not reported */
	assert_int_equal(mmkv__os_lock_test(a, 7, &held), 0);
	assert_int_equal(held, 0);

	/* Shared locks coexist; an upgrade fails while the other holds one,
	 * and the failed upgrade keeps the shared lock. */
	assert_int_equal(mmkv__os_lock_byte(a, 7, F_RDLCK, 0), 0);
	assert_int_equal(mmkv__os_lock_byte(b, 7, F_RDLCK, 0), 0);
	assert_int_equal(mmkv__os_lock_byte(a, 7, F_WRLCK, 0), EAGAIN);
	assert_int_equal(mmkv__os_lock_test(b, 7, &held), 0);
	assert_int_equal(held, 1);
	assert_int_equal(mmkv__os_lock_byte(b, 7, F_UNLCK, 0), 0);
	assert_int_equal(mmkv__os_lock_byte(a, 7, F_WRLCK, 0), 0);

	/* Bytes far past the end of the file lock too. */
	assert_int_equal(mmkv__os_lock_byte(a, 65536 + 100, F_WRLCK, 0), 0);
	assert_int_equal(mmkv__os_lock_byte(b, 65536 + 100, F_WRLCK, 0), EAGAIN);

	/* A blocking lock waits for the holder. */
	memset(&w, 0, sizeof(w));
	w.fd = b;
	assert_int_equal(pthread_create(&th, NULL, lock_waiter_main, &w), 0);
	while (!__atomic_load_n(&w.started, __ATOMIC_SEQ_CST))
		usleep(1000);
	usleep(50000); /* give it time to block: it cannot succeed meanwhile */
	assert_int_equal(__atomic_load_n(&w.acquired, __ATOMIC_SEQ_CST), 0);
	assert_int_equal(mmkv__os_lock_byte(a, 5, F_UNLCK, 0), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_int_equal(mmkv__os_lock_test(a, 5, &held), 0);
	assert_int_equal(held, 1);

	/* Closing a description drops its locks. */
	close(b);
	assert_int_equal(mmkv__os_lock_byte(a, 5, F_WRLCK, 0), 0);
	close(a);
}

/* ------------------------------------------------------------ futex */

struct futex_waiter {
	uint32_t word;
	int started;
	int done;
	int rc;
};

static void *futex_waiter_main(void *arg)
{
	struct futex_waiter *w = arg;

	__atomic_store_n(&w->started, 1, __ATOMIC_SEQ_CST);
	w->rc = mmkv__os_futex_wait(&w->word, 0, 5000);
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_futex(void **state)
{
	struct futex_waiter w;
	uint32_t word = 3;
	uint64_t t0;
	pthread_t th;

	(void)state;
	/* The value differs: no sleep at all. */
	assert_int_equal(mmkv__os_futex_wait(&word, 4, 5000), 0);

	t0 = mmkv__os_now_ms();
	assert_int_equal(mmkv__os_futex_wait(&word, 3, 50), ETIMEDOUT);
	assert_true(mmkv__os_now_ms() - t0 >= 49);

	/* A wake with the word unchanged ends the wait: repeat the wake until
	 * the waiter reports, since it may not be asleep yet. */
	memset(&w, 0, sizeof(w));
	assert_int_equal(pthread_create(&th, NULL, futex_waiter_main, &w), 0);
	while (!__atomic_load_n(&w.started, __ATOMIC_SEQ_CST))
		usleep(1000);
	while (!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST)) {
		mmkv__os_futex_wake(&w.word);
		usleep(1000);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, 0);
}

/* ------------------------------------------------------------ misc */

static void *malloc_fail(size_t n)
{
	(void)n;
	return NULL;
}

static void test_ids_and_alloc(void **state)
{
	unsigned int ps = mmkv__os_page_size();
	uint64_t a, b;
	void *p;

	(void)state;
	assert_int_equal(mmkv__os_pid(), (uint32_t)getpid());
	assert_int_equal(mmkv__os_tid(), mmkv__os_pid()); /* main thread */
	assert_true(ps >= 4096 && (ps & (ps - 1)) == 0);
	a = mmkv__os_now_ms();
	b = mmkv__os_now_ms();
	assert_true(b >= a);

	p = mmkv__malloc(10);
	assert_non_null(p);
	p = mmkv__realloc(p, 100);
	assert_non_null(p);
	mmkv__free(p);
	p = mmkv__calloc(3, 5);
	assert_non_null(p);
	assert_int_equal(((unsigned char *)p)[14], 0);
	mmkv__free(p);
	mmkv__os.malloc = malloc_fail;
	assert_null(mmkv__malloc(10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_regular, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refusals, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write_full, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_pwritev_many, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_writes_and_eintr, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_write_is_enospc, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_grow, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_beyond_eof, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_byte, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_futex, tu_setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_and_alloc, tu_setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
