/*
 * os.c - the OS layer: every system call libmmkv makes, behind one table.
 *
 * This file owns the table mmkv__os (the calls tests may replace) and the
 * helpers that every caller of a system call needs: EINTR retry, loops over
 * short reads and writes, safe opening of regular files, byte-range locks,
 * futexes and clocks. Nothing above this layer includes a system header for
 * I/O or calls the kernel itself.
 *
 * Invariants:
 *  1. Every helper reaches a replaceable call only through mmkv__os, so a
 *     test that swaps one entry sees every use of it. Calls that cannot fail
 *     in a way worth injecting (getpid, clock_gettime, sysconf, the futex,
 *     fcntl(F_SETFL)) are made directly.
 *  2. Helpers return 0, a positive errno value, or a documented negative
 *     MMKV_* code; never -1, and errno is not part of the contract.
 *  3. EINTR is retried everywhere except mmkv__os_futex_wait, whose caller
 *     owns the timeout. A failed fsync/fdatasync/msync is returned, never
 *     retried: the kernel may already have marked the pages clean.
 *  4. A file is opened without following a symlink and without blocking, and
 *     is kept only if it is a regular file with exactly one link.
 */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mmkv.h"

/* open(2) and fcntl(2) are variadic; the table needs fixed signatures. */
static int os_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags, mode);
}

static int os_fcntl_lock(int fd, int cmd, struct flock *fl)
{
	return fcntl(fd, cmd, fl);
}

static int os_fsync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t len;
	int fd, rc, err = 0;

	if (slash == NULL) {
		strcpy(dir, ".");
	} else {
		/* "/name" lives in "/", not in "". */
		len = slash == path ? 1 : (size_t)(slash - path);
		if (len >= sizeof(dir)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(dir, path, len);
		dir[len] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	do
		rc = fsync(fd);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		err = errno;
	close(fd);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

#define OS_DEFAULTS                                                            \
	{                                                                      \
		.open = os_open, .close = close, .fstat = fstat,               \
		.pread = pread, .pwrite = pwrite, .pwritev = pwritev,          \
		.fsync = fsync, .fdatasync = fdatasync, .msync = msync,        \
		.ftruncate = ftruncate, .fallocate = fallocate, .mmap = mmap,  \
		.munmap = munmap, .fcntl_lock = os_fcntl_lock,                 \
		.rename = rename, .unlink = unlink, .fsync_dir = os_fsync_dir, \
		.malloc = malloc, .calloc = calloc, .realloc = realloc,        \
		.free = free,                                                  \
	}

mmkv_os_table mmkv__os = OS_DEFAULTS;
const mmkv_os_table mmkv__os_default = OS_DEFAULTS;

void *mmkv__malloc(size_t n)
{
	return mmkv__os.malloc(n);
}

void *mmkv__calloc(size_t n, size_t size)
{
	return mmkv__os.calloc(n, size);
}

void *mmkv__realloc(void *p, size_t n)
{
	return mmkv__os.realloc(p, n);
}

void mmkv__free(void *p)
{
	mmkv__os.free(p);
}

/* A byte range [off, off + n) that off_t can express, or EFBIG. */
static int check_range(uint64_t off, uint64_t n)
{
	return off > (uint64_t)INT64_MAX || n > (uint64_t)INT64_MAX - off ? EFBIG : 0;
}

int mmkv__os_open_file(const char *path, int flags, mode_t mode, int *fd)
{
	struct stat st;
	int f, fl, err;

	do
		f = mmkv__os.open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, mode);
	while (f < 0 && errno == EINTR);
	if (f < 0) {
		err = errno;
		/* ELOOP: the last component is a symlink (O_NOFOLLOW). EISDIR: a
		 * directory opened for writing. ENXIO, ENODEV: a socket, or a
		 * device with nothing behind it. None of them is a regular file. */
		if (err == ELOOP || err == EISDIR || err == ENXIO || err == ENODEV)
			return MMKV_BAD_FILE;
		return err;
	}
	if (mmkv__os.fstat(f, &st) < 0) {
		err = errno;
		mmkv__os.close(f);
		return err;
	}
	/* A second link would let someone else's name reach our file (and
	 * survive our unlink of the lock file); refuse it like a symlink. */
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		mmkv__os.close(f);
		return MMKV_BAD_FILE;
	}
	/* O_NONBLOCK was only for the open itself. */
	fl = fcntl(f, F_GETFL);
	if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		err = errno;
		mmkv__os.close(f);
		return err;
	}
	*fd = f;
	return 0;
}

int mmkv__os_file_size(int fd, uint64_t *size)
{
	struct stat st;

	if (mmkv__os.fstat(fd, &st) < 0)
		return errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

int mmkv__os_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	unsigned char *p = buf;
	ssize_t r;
	int err = check_range(off, n);

	if (err)
		return err;
	while (n > 0) {
		r = mmkv__os.pread(fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0)
			return ENODATA;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int mmkv__os_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	const unsigned char *p = buf;
	ssize_t r;
	int err = check_range(off, n);

	if (err)
		return err;
	while (n > 0) {
		r = mmkv__os.pwrite(fd, p, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		/* The kernel writes nothing without an error only when it has no
		 * room left (e.g. at a file size limit of the file system). */
		if (r == 0)
			return ENOSPC;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int mmkv__os_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	uint64_t total = 0;
	ssize_t r;
	size_t done;
	int i, chunk, err;

	for (i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	err = check_range(off, total);
	if (err)
		return err;
	while (cnt > 0) {
		/* Empty entries at the front would let a chunk write 0 bytes
		 * legitimately; drop them so that 0 always means no room. */
		if (iov->iov_len == 0) {
			iov++;
			cnt--;
			continue;
		}
		chunk = cnt < IOV_MAX ? cnt : IOV_MAX;
		r = mmkv__os.pwritev(fd, iov, chunk, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0)
			return ENOSPC;
		off += (uint64_t)r;
		done = (size_t)r;
		while (done > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (done > 0) {
			iov->iov_base = (unsigned char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

int mmkv__os_sync(int fd, int full)
{
	int rc;

	do
		rc = full ? mmkv__os.fsync(fd) : mmkv__os.fdatasync(fd);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? errno : 0;
}

int mmkv__os_msync(void *addr, size_t len)
{
	uintptr_t mask = (uintptr_t)mmkv__os_page_size() - 1;
	uintptr_t start = (uintptr_t)addr & ~mask;
	int rc;

	len += (uintptr_t)addr - start;
	do
		rc = mmkv__os.msync((void *)start, len, MS_SYNC);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? errno : 0;
}

int mmkv__os_truncate(int fd, uint64_t size)
{
	int rc, err = check_range(0, size);

	if (err)
		return err;
	do
		rc = mmkv__os.ftruncate(fd, (off_t)size);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? errno : 0;
}

int mmkv__os_grow(int fd, uint64_t size)
{
	uint64_t cur;
	int rc, err = check_range(0, size);

	if (err)
		return err;
	err = mmkv__os_file_size(fd, &cur);
	if (err)
		return err;
	if (size <= cur)
		return 0;
	do
		rc = mmkv__os.fallocate(fd, 0, (off_t)cur, (off_t)(size - cur));
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return errno;
	return mmkv__os_truncate(fd, size);
}

int mmkv__os_map(int fd, size_t len, int writable, void **addr)
{
	int prot = PROT_READ | (writable ? PROT_WRITE : 0);
	void *p = mmkv__os.mmap(NULL, len, prot, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return errno;
	*addr = p;
	return 0;
}

void mmkv__os_unmap(void *addr, size_t len)
{
	/* munmap of a range we mapped fails only on a bug: nothing to undo. */
	mmkv__os.munmap(addr, len);
}

int mmkv__os_lock_byte(int fd, uint64_t offset, int type, int wait)
{
	struct flock fl;
	int rc, err = check_range(offset, 1);

	if (err)
		return err;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = (short)type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)offset;
	fl.l_len = 1;
	fl.l_pid = 0; /* required by OFD locks */
	do
		rc = mmkv__os.fcntl_lock(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		return 0;
	/* POSIX lets a conflict be reported as EACCES too. */
	return errno == EACCES ? EAGAIN : errno;
}

int mmkv__os_lock_test(int fd, uint64_t offset, int *held)
{
	struct flock fl;
	int rc, err = check_range(offset, 1);

	if (err)
		return err;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)offset;
	fl.l_len = 1;
	fl.l_pid = 0;
	do
		rc = mmkv__os.fcntl_lock(fd, F_OFD_GETLK, &fl);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return errno;
	*held = fl.l_type != F_UNLCK;
	return 0;
}

int mmkv__os_futex_wait(uint32_t *word, uint32_t expected, int timeout_ms)
{
	struct timespec ts, *tsp = NULL;
	long rc;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	/* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
	rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0);
	if (rc == 0 || errno == EAGAIN)
		return 0;
	return errno;
}

void mmkv__os_futex_wake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

uint32_t mmkv__os_pid(void)
{
	return (uint32_t)getpid();
}

uint32_t mmkv__os_tid(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
	return (uint32_t)gettid();
#else
	return (uint32_t)syscall(SYS_gettid);
#endif
}

unsigned int mmkv__os_page_size(void)
{
	return (unsigned int)sysconf(_SC_PAGESIZE);
}

uint64_t mmkv__os_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
