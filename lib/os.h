/*
 * os.h - the OS layer: the only place libmmkv makes system calls.
 *
 * Every call that can fail goes through the table mmkv__os, so that tests can
 * replace any entry to inject faults (ENOSPC, EIO, short writes, failed syncs,
 * failed mmap or allocation) or to record writes for crash simulation. The
 * helpers below add what every caller needs: EINTR retry, loops over short
 * reads and writes, and safe opening of regular files.
 *
 * All helpers return 0 or a positive errno value (or a negative MMKV_* code
 * where documented), never -1.
 */
#ifndef MMKV_OS_H
#define MMKV_OS_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <fcntl.h>

typedef struct mmkv_os_table {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	int (*fstat)(int fd, struct stat *st);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	ssize_t (*pwritev)(int fd, const struct iovec *iov, int cnt, off_t off);
	int (*fsync)(int fd);
	int (*fdatasync)(int fd);
	int (*msync)(void *addr, size_t len, int flags);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd, off_t off);
	int (*munmap)(void *addr, size_t len);
	int (*fcntl_lock)(int fd, int cmd, struct flock *fl);
	int (*rename)(const char *from, const char *to);
	int (*unlink)(const char *path);
	int (*fsync_dir)(const char *path); /* fsync of the directory containing path; -1 and errno */
	void *(*malloc)(size_t n);
	void *(*calloc)(size_t n, size_t size);
	void *(*realloc)(void *p, size_t n);
	void (*free)(void *p);
} mmkv_os_table;

/* The table in use; starts as the real system calls. */
extern mmkv_os_table mmkv__os;
/* The real system calls, for tests that wrap them. */
extern const mmkv_os_table mmkv__os_default;

/* Allocation through the table. */
void *mmkv__malloc(size_t n);
void *mmkv__calloc(size_t n, size_t size);
void *mmkv__realloc(void *p, size_t n);
void mmkv__free(void *p);

/* Open path as a regular file, never through a symlink (O_NOFOLLOW) and with
 * O_CLOEXEC; flags are O_RDONLY or O_RDWR, optionally O_CREAT|O_EXCL.
 * Opening never blocks (a FIFO is opened O_NONBLOCK, then refused). After
 * fstat, anything but a regular file with exactly one link is refused and
 * closed. Returns 0 and *fd, or an errno (ENOENT, EACCES, ...), or
 * MMKV_BAD_FILE naming a symlink, FIFO, socket, directory, device or hard
 * link. (ELOOP from a symlink loop in a directory component is reported as
 * MMKV_BAD_FILE too.) */
int mmkv__os_open_file(const char *path, int flags, mode_t mode, int *fd);

/* Size of the open file in bytes. */
int mmkv__os_file_size(int fd, uint64_t *size);

/* Read exactly n bytes at off, retrying EINTR and short reads. Reaching the
 * end of the file first returns ENODATA; callers map it to their own error. */
int mmkv__os_pread_full(int fd, void *buf, size_t n, uint64_t off);

/* Write exactly n bytes at off, looping over short writes and EINTR. A write
 * that reports 0 bytes written (no progress, no error) returns ENOSPC. */
int mmkv__os_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);

/* Write the iovecs contiguously at off (any count; split by IOV_MAX), looping
 * over short writes and EINTR; no progress is ENOSPC as above. The iov array
 * (bases and lengths) is modified. */
int mmkv__os_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off);

/* fsync (full != 0) or fdatasync. Retries EINTR only; any other failure is
 * returned and must not be retried by the caller (the kernel may have marked
 * the pages clean): the caller enters panic. */
int mmkv__os_sync(int fd, int full);

/* msync(MS_SYNC) of a byte range of a mapping (start rounded down to the OS
 * page size). Same failure rule as mmkv__os_sync. */
int mmkv__os_msync(void *addr, size_t len);

/* Grow (or set) the file to size bytes: fallocate first so that a full disk
 * is reported now (ENOSPC) rather than as SIGBUS through a map; falls back to
 * ftruncate where fallocate is not supported. Never shrinks. */
int mmkv__os_grow(int fd, uint64_t size);

/* Set the file size exactly (ftruncate). */
int mmkv__os_truncate(int fd, uint64_t size);

/* Map len bytes of fd at offset 0, shared, read-only (writable != 0: read
 * write). len may exceed the file size (reserving address space for growth).
 * Returns 0 and *addr, or an errno. */
int mmkv__os_map(int fd, size_t len, int writable, void **addr);
void mmkv__os_unmap(void *addr, size_t len);

/* Open-file-description byte locks (F_OFD_SETLK / F_OFD_SETLKW).
 * type: F_RDLCK, F_WRLCK or F_UNLCK. wait != 0 blocks until granted
 * (retrying EINTR); wait == 0 returns EAGAIN when another holder conflicts. */
int mmkv__os_lock_byte(int fd, uint64_t offset, int type, int wait);

/* Whether another open file description holds a lock on the byte that
 * conflicts with a write lock (F_OFD_GETLK). Locks held through fd itself are
 * not reported. Returns 0 and *held (0 or 1), or an errno. */
int mmkv__os_lock_test(int fd, uint64_t offset, int *held);

/* Shared (inter-process) futex on a 32-bit word in a MAP_SHARED mapping.
 * wait sleeps while *word == expected, at most timeout_ms (< 0: no limit);
 * returns 0 when woken or the word differs, ETIMEDOUT, or EINTR.
 * wake wakes every sleeper. */
int mmkv__os_futex_wait(uint32_t *word, uint32_t expected, int timeout_ms);
void mmkv__os_futex_wake(uint32_t *word);

/* Process and thread ids, and the OS page size. */
uint32_t mmkv__os_pid(void);
uint32_t mmkv__os_tid(void);
unsigned int mmkv__os_page_size(void);

/* Monotonic clock in milliseconds. */
uint64_t mmkv__os_now_ms(void);

#endif /* MMKV_OS_H */
