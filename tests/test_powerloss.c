/*
 * test_powerloss.c - power-loss simulation through the OS table (lib/os.h).
 *
 * A deterministic workload runs against a real file while wrappers on
 * mmkv__os record, in one ordered log, what reached the kernel: writes,
 * size changes, sync barriers, directory operations, and markers of the
 * commits begun and acknowledged. The log is then replayed, and at every
 * crash point the disk states a power cut could leave are built, written to
 * a fresh directory, opened and judged. Both write modes run (util.h,
 * RUN_BOTH_MODES); each crash state is opened in the recorded mode or, some
 * of the time, in the other one.
 *
 * The workload (NSTEPS write transactions, the same for both modes): step 0
 * is mmkv_env_open creating the database (temporary file, fsync, rename,
 * directory fsync); then inserts of inline and overflow values (> page/4) in
 * the default database, a named database "aux" created at step 10 with
 * MMKV_COMPRESS (its values compress, so it holds compressed frames), a big
 * step of overflow values (dirty pages spill in the default mode, whose
 * transaction memory is set to the minimum), a database "scratch" created
 * and later dropped, runs of deletes that empty and merge leaves, and
 * re-inserts that reuse freed pages. Some steps are preceded by a write
 * transaction that is aborted, and the environment is closed and reopened
 * twice. The growth step is lowered to 64 KiB (env->growth, in memory only)
 * so that the file grows five or six times on its way to 768 KiB or so
 * (8, 128, 192, 320, 512, 768 KiB). Every committed step
 * stores its number under the key "#commit", so a recovered database says
 * which commit it claims to be; the model of every commit is rebuilt from
 * the seed and compared exactly, database by database, by cursor scan.
 *
 * The disk model, per file (an inode; names map to inodes):
 *
 *   durable image   contents and size guaranteed on disk;
 *   pending         writes (byte ranges) and size changes since then, in order.
 *
 *   pwrite/pwritev  a pending write (a write past the end is a size change
 *                   followed by the write); ftruncate/fallocate: a pending
 *                   size change.
 *   fsync           every pending write and size change becomes durable.
 *   fdatasync       every pending write becomes durable; size changes stay
 *                   pending. This is stricter than Linux, where fdatasync
 *                   also flushes a size change that is needed to read the
 *                   data back; it is the rule the library keeps ("after the
 *                   file grows, the first sync is fsync"), so a commit that
 *                   relied on fdatasync for its growth would be caught.
 *   msync(MS_SYNC)  pending writes inside the range become durable (a write
 *                   straddling the range is split); size changes stay pending.
 *   directory       creating, renaming and unlinking a name are pending
 *                   directory operations until the directory is fsynced
 *                   (fsync_dir); a crash keeps a prefix of them (journaled
 *                   metadata is ordered). A file's own fsync does not make
 *                   its name durable.
 *
 * MMKV_WRITEMAP: dirty pages are stored through the MAP_SHARED writable map
 * (always on pages no durable meta reaches; the file is grown before a page
 * is touched), sealed at commit, and made durable by one msync over the
 * range of dirty pages, then fsync when the file grew; the meta is written
 * with pwrite and fdatasynced, as in the default mode. The recorder cannot
 * see stores to the map, so before every recorded call (and at each commit
 * marker) it compares the file, read with pread through the page cache,
 * with the contents it expects, and records every OS page that differs as
 * a write found in the map, just before that call. The kernel may write such
 * a page back at any moment, also half-modified: a pending write that may be
 * dropped, torn or garbage covers that. In the default mode the same
 * comparison must find nothing (a check of the recorder itself).
 *
 * Crash points: before each recorded disk event (the writes found by one
 * comparison are one batch, with no crash point inside it; a state that
 * drops some of them covers a crash in between). Markers between two disk
 * events change nothing on disk, so the points between them are one: the
 * recovered commit c must satisfy last acknowledged <= c <= last begun,
 * with the acknowledgement taken at the end of that run and the beginning at
 * its start (the strictest bound any of its points allows). Step 0 counts as
 * acknowledged once mmkv_env_open returned: from then on the database file
 * must exist in every crash state.
 *
 * Crash states at a point: the durable images, plus each pending write
 * applied, dropped, torn (a prefix or a random subset of its 512-byte or
 * 4 KiB sectors) or replaced by garbage; a prefix of the pending size
 * changes (writes past the resulting end are lost); a prefix of the pending
 * directory operations. Systematic states at every point: everything
 * applied (what a process crash leaves), nothing applied, and each pending
 * write dropped alone (up to DROP1_MAX per point). The rest of the budget
 * goes to random states (mixed fates, or in-order writeback cut at a random
 * write), weighted by the number of pending writes. The lock file is absent,
 * left over from the previous state (stale: its published txnid and reader
 * table come from another history), or garbage.
 *
 * Each crash state must: have the database file once step 0 was
 * acknowledged; open (creating a fresh empty database where none is);
 * pass mmkv_env_check with no problem; hold exactly the model of a commit c
 * in the bounds above (durable mode: never older than the last
 * acknowledged commit); and accept and commit a new write transaction
 * (every 16th state is checked again after it).
 *
 * The same runs with MMKV_NOMETASYNC, which promises that an OS crash may
 * lose the last commit (mmkv.h) and no more: c >= last acknowledged - 1,
 * everything else as above, with a smaller share of random states. (With
 * MMKV_WRITEMAP the msync of a commit covers only its dirty pages, so the
 * previous commit's unsynced meta needs a sync of its own.)
 * MMKV_NOSYNC gives no guarantee and is not tested here.
 *
 * MMKV_POWERLOSS_STATES is the number of durable-mode states, both write
 * modes together (default 20000; at least that many run, as every crash
 * point gets its systematic states); NOMETASYNC runs a twelfth of it per
 * write mode. The seed is printed and MMKV_TEST_SEED replays it. A
 * failing state's files are saved next to the test directories and named
 * in the failure. Without TMPDIR everything lives in /dev/shm when it
 * exists.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* env->growth: a smaller growth step, in memory only */
#include "mmkv.h"
#include "os.h"
#include "util.h"

#define PSIZE 4096u
#define GROWTH (64u * 1024u)
#define NSTEPS 48
#define MAXID 320
#define DROP1_MAX 12
#define DEFAULT_STATES 20000

/* ============================================================== recorder */

/* The names the recorder follows; everything else (the lock file) is not
 * part of the durable state. */
enum { NAME_DB, NAME_TMP, NNAMES };

typedef enum ev_kind {
	EV_WRITE,     /* off, len, data */
	EV_SIZE,      /* off: the new size */
	EV_FSYNC,
	EV_FDATASYNC,
	EV_MSYNC,     /* off, len: the range */
	EV_CREATE,    /* name, file */
	EV_RENAME,    /* name -> name2 */
	EV_UNLINK,    /* name */
	EV_DIRSYNC,
	EV_BEGIN,     /* commit: step begun */
	EV_ACK        /* commit: step acknowledged */
} ev_kind;

typedef struct event {
	uint8_t kind;
	bool mapped;  /* a write found in the writable map */
	bool batch;   /* continues the batch of the event before it */
	int8_t name, name2;
	int file;
	uint64_t off, len;
	unsigned char *data;
	long commit;
} event;

#define MAXFILES 8
#define MAXFDS 16
#define MAXMAPS 8

typedef struct rfile {
	unsigned char *cache; /* contents as the kernel has them; zero past size */
	uint64_t size, cap;
} rfile;

static struct recorder {
	bool on;
	char name[NNAMES][PATH_MAX];
	int live[NNAMES]; /* file under each name now, -1: none */
	rfile file[MAXFILES];
	int nfiles;
	struct {
		int fd, file;
	} fd[MAXFDS];
	int nfd;
	struct {
		unsigned char *addr;
		size_t len;
		int file, fd;
		bool writable;
	} map[MAXMAPS];
	int nmap;
	event *ev;
	size_t nev, evcap;
	unsigned char *scan;
	size_t scancap;
	unsigned ospage;
	bool changing;    /* a write transaction is making its changes */
	uint64_t spilled; /* writes made meanwhile: dirty pages spilled */
	char error[512];
} R;

__attribute__((format(printf, 1, 2))) static void rec_error(const char *fmt, ...)
{
	va_list ap;

	if (R.error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(R.error, sizeof(R.error), fmt, ap);
	va_end(ap);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (q == NULL) {
		fprintf(stderr, "test_powerloss: out of memory (%zu bytes)\n", n);
		abort();
	}
	return q;
}

/* Grow a zero-filled buffer to hold at least need bytes. */
static void buf_reserve(unsigned char **buf, uint64_t *cap, uint64_t need)
{
	uint64_t ncap = *cap ? *cap : 65536;

	if (need <= *cap && *buf)
		return;
	while (ncap < need)
		ncap *= 2;
	*buf = xrealloc(*buf, (size_t)ncap);
	memset(*buf + *cap, 0, (size_t)(ncap - *cap));
	*cap = ncap;
}

/* out = path + suffix (PATH_MAX bytes), and our pid after ".new-" as
 * create_database (lib/env.c) names its temporary file. */
static void path_suffix(char *out, const char *path, const char *suffix)
{
	int n;

	if (strcmp(suffix, ".new-") == 0)
		n = snprintf(out, PATH_MAX, "%s%s%u", path, suffix, (unsigned)getpid());
	else
		n = snprintf(out, PATH_MAX, "%s%s", path, suffix);
	if (n < 0 || n >= PATH_MAX)
		fail_msg("path too long: %s%s", path, suffix);
}

static event *push_event(ev_kind kind, int file)
{
	event *e;

	if (R.nev == R.evcap) {
		R.evcap = R.evcap ? R.evcap * 2 : 1024;
		R.ev = xrealloc(R.ev, R.evcap * sizeof(*R.ev));
	}
	e = &R.ev[R.nev++];
	memset(e, 0, sizeof(*e));
	e->kind = (uint8_t)kind;
	e->file = file;
	e->name = e->name2 = -1;
	return e;
}

static int name_of(const char *path)
{
	for (int i = 0; i < NNAMES; i++)
		if (strcmp(path, R.name[i]) == 0)
			return i;
	return -1;
}

static int file_of_fd(int fd)
{
	for (int i = 0; i < R.nfd; i++)
		if (R.fd[i].fd == fd)
			return R.fd[i].file;
	return -1;
}

static int fd_of_file(int file)
{
	for (int i = 0; i < R.nfd; i++)
		if (R.fd[i].file == file)
			return R.fd[i].fd;
	return -1;
}

static bool file_writably_mapped(int file)
{
	for (int i = 0; i < R.nmap; i++)
		if (R.map[i].file == file && R.map[i].writable)
			return true;
	return false;
}

static void rec_size(int file, uint64_t size, bool batch)
{
	rfile *f = &R.file[file];
	event *e = push_event(EV_SIZE, file);

	e->off = size;
	e->batch = batch;
	buf_reserve(&f->cache, &f->cap, size);
	if (size < f->size)
		memset(f->cache + size, 0, (size_t)(f->size - size));
	f->size = size;
}

static void rec_write(int file, uint64_t off, const void *data, uint64_t len, bool mapped, bool batch)
{
	rfile *f = &R.file[file];
	event *e;

	if (len == 0)
		return;
	if (off + len > f->size) {
		rec_size(file, off + len, batch);
		batch = true;
	}
	e = push_event(EV_WRITE, file);
	R.spilled += R.changing && !mapped;
	e->off = off;
	e->len = len;
	e->mapped = mapped;
	e->batch = batch;
	e->data = xrealloc(NULL, (size_t)len);
	memcpy(e->data, data, (size_t)len);
	memcpy(f->cache + off, data, (size_t)len);
}

/* Record, as writes found in the map, every OS page of every open file that
 * differs from what the recorded calls put there. */
static void scan_files(void)
{
	for (int file = 0; file < R.nfiles; file++) {
		rfile *f = &R.file[file];
		int fd = fd_of_file(file);
		bool first = true;
		struct stat st;
		uint64_t done = 0;

		if (fd < 0)
			continue;
		if (mmkv__os_default.fstat(fd, &st) != 0) {
			rec_error("fstat of file %d: %s", file, strerror(errno));
			continue;
		}
		if ((uint64_t)st.st_size != f->size) {
			rec_error("file %d: size %lld on disk, %" PRIu64 " recorded", file,
			          (long long)st.st_size, f->size);
			continue;
		}
		if (f->size > R.scancap) {
			R.scan = xrealloc(R.scan, (size_t)f->size);
			R.scancap = (size_t)f->size;
		}
		while (done < f->size) {
			ssize_t r = mmkv__os_default.pread(fd, R.scan + done, (size_t)(f->size - done),
			                                   (off_t)done);
			if (r <= 0) {
				rec_error("pread of file %d: %s", file, r < 0 ? strerror(errno) : "end of file");
				break;
			}
			done += (uint64_t)r;
		}
		if (done < f->size)
			continue;
		for (uint64_t off = 0; off < f->size; off += R.ospage) {
			uint64_t n = f->size - off < R.ospage ? f->size - off : R.ospage;
			if (memcmp(R.scan + off, f->cache + off, (size_t)n) == 0)
				continue;
			if (!file_writably_mapped(file))
				rec_error("file %d: bytes at %" PRIu64 " changed without a recorded call",
				          file, off);
			rec_write(file, off, R.scan + off, n, true, !first);
			first = false;
		}
	}
}

static void rec_marker(ev_kind kind, long commit)
{
	if (!R.on)
		return;
	scan_files();
	push_event(kind, -1)->commit = commit;
}

static int h_open(const char *path, int flags, mode_t mode)
{
	int name = R.on ? name_of(path) : -1;
	int fd = mmkv__os_default.open(path, flags, mode);

	if (fd < 0 || name < 0)
		return fd;
	if (R.live[name] < 0) {
		event *e;
		if (!(flags & O_CREAT) || R.nfiles == MAXFILES) {
			rec_error("%s opened without being created", path);
			return fd;
		}
		R.live[name] = R.nfiles++;
		memset(&R.file[R.live[name]], 0, sizeof(rfile));
		e = push_event(EV_CREATE, R.live[name]);
		e->name = (int8_t)name;
	}
	if (R.nfd == MAXFDS) {
		rec_error("too many open files");
		return fd;
	}
	R.fd[R.nfd].fd = fd;
	R.fd[R.nfd].file = R.live[name];
	R.nfd++;
	return fd;
}

static int h_close(int fd)
{
	if (R.on && file_of_fd(fd) >= 0) {
		scan_files();
		for (int i = 0; i < R.nfd; i++)
			if (R.fd[i].fd == fd)
				R.fd[i] = R.fd[--R.nfd];
	}
	return mmkv__os_default.close(fd);
}

static ssize_t h_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	int file = R.on ? file_of_fd(fd) : -1;
	ssize_t r;

	if (file >= 0)
		scan_files();
	r = mmkv__os_default.pwrite(fd, buf, n, off);
	if (file >= 0 && r > 0)
		rec_write(file, (uint64_t)off, buf, (uint64_t)r, false, false);
	return r;
}

static ssize_t h_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	int file = R.on ? file_of_fd(fd) : -1;
	unsigned char *flat;
	size_t left, pos = 0;
	ssize_t r;

	if (file >= 0)
		scan_files();
	r = mmkv__os_default.pwritev(fd, iov, cnt, off);
	if (file < 0 || r <= 0)
		return r;
	flat = xrealloc(NULL, (size_t)r);
	left = (size_t)r;
	for (int i = 0; i < cnt && left > 0; i++) {
		size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
		memcpy(flat + pos, iov[i].iov_base, k);
		pos += k;
		left -= k;
	}
	rec_write(file, (uint64_t)off, flat, (uint64_t)r, false, false);
	free(flat);
	return r;
}

static int h_ftruncate(int fd, off_t len)
{
	int file = R.on ? file_of_fd(fd) : -1;
	int r;

	if (file >= 0)
		scan_files();
	r = mmkv__os_default.ftruncate(fd, len);
	if (file >= 0 && r == 0 && (uint64_t)len != R.file[file].size)
		rec_size(file, (uint64_t)len, false);
	return r;
}

static int h_fallocate(int fd, int mode, off_t off, off_t len)
{
	int file = R.on ? file_of_fd(fd) : -1;
	int r;

	if (file >= 0)
		scan_files();
	r = mmkv__os_default.fallocate(fd, mode, off, len);
	if (file >= 0 && r == 0) {
		if (mode != 0)
			rec_error("fallocate mode %d is not modelled", mode);
		else if ((uint64_t)(off + len) > R.file[file].size)
			rec_size(file, (uint64_t)(off + len), false);
	}
	return r;
}

static int sync_hook(int fd, ev_kind kind)
{
	int file = R.on ? file_of_fd(fd) : -1;
	int r;

	if (file >= 0)
		scan_files();
	r = kind == EV_FSYNC ? mmkv__os_default.fsync(fd) : mmkv__os_default.fdatasync(fd);
	if (file >= 0 && r == 0)
		push_event(kind, file);
	return r;
}

static int h_fsync(int fd)
{
	return sync_hook(fd, EV_FSYNC);
}

static int h_fdatasync(int fd)
{
	return sync_hook(fd, EV_FDATASYNC);
}

static int h_msync(void *addr, size_t len, int flags)
{
	unsigned char *a = addr;
	int which = -1, r;

	for (int i = 0; R.on && i < R.nmap; i++)
		if (a >= R.map[i].addr && a < R.map[i].addr + R.map[i].len)
			which = i;
	if (which >= 0)
		scan_files();
	r = mmkv__os_default.msync(addr, len, flags);
	if (which >= 0 && r == 0 && (flags & MS_SYNC)) {
		event *e = push_event(EV_MSYNC, R.map[which].file);
		e->off = (uint64_t)(a - R.map[which].addr);
		e->len = len;
	}
	return r;
}

static void *h_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int file = R.on ? file_of_fd(fd) : -1;
	void *p = mmkv__os_default.mmap(addr, len, prot, flags, fd, off);

	if (file >= 0 && p != MAP_FAILED) {
		if (off != 0 || R.nmap == MAXMAPS) {
			rec_error("mapping at offset %lld not modelled", (long long)off);
			return p;
		}
		R.map[R.nmap].addr = p;
		R.map[R.nmap].len = len;
		R.map[R.nmap].file = file;
		R.map[R.nmap].fd = fd;
		R.map[R.nmap].writable = (prot & PROT_WRITE) != 0;
		R.nmap++;
	}
	return p;
}

static int h_munmap(void *addr, size_t len)
{
	for (int i = 0; R.on && i < R.nmap; i++) {
		if (R.map[i].addr == addr) {
			scan_files();
			R.map[i] = R.map[--R.nmap];
			break;
		}
	}
	return mmkv__os_default.munmap(addr, len);
}

static int h_rename(const char *from, const char *to)
{
	int nf = R.on ? name_of(from) : -1, nt = R.on ? name_of(to) : -1;
	int r = mmkv__os_default.rename(from, to);

	if (r == 0 && (nf >= 0 || nt >= 0)) {
		event *e;
		if (nf < 0 || nt < 0 || R.live[nf] < 0) {
			rec_error("rename %s -> %s not modelled", from, to);
			return r;
		}
		e = push_event(EV_RENAME, R.live[nf]);
		e->name = (int8_t)nf;
		e->name2 = (int8_t)nt;
		R.live[nt] = R.live[nf];
		R.live[nf] = -1;
	}
	return r;
}

static int h_unlink(const char *path)
{
	int name = R.on ? name_of(path) : -1;
	int r = mmkv__os_default.unlink(path);

	if (r == 0 && name >= 0 && R.live[name] >= 0) {
		event *e = push_event(EV_UNLINK, R.live[name]);
		e->name = (int8_t)name;
		R.live[name] = -1;
	}
	return r;
}

static int h_fsync_dir(const char *path)
{
	int name = R.on ? name_of(path) : -1;
	int r = mmkv__os_default.fsync_dir(path);

	if (r == 0 && name >= 0)
		push_event(EV_DIRSYNC, -1);
	return r;
}

static void recorder_start(const char *path)
{
	for (size_t i = 0; i < R.nev; i++)
		free(R.ev[i].data);
	for (int i = 0; i < MAXFILES; i++)
		free(R.file[i].cache);
	free(R.ev);
	free(R.scan);
	memset(&R, 0, sizeof(R));
	path_suffix(R.name[NAME_DB], path, "");
	/* The name create_database (lib/env.c) gives its temporary file. */
	path_suffix(R.name[NAME_TMP], path, ".new-");
	R.live[NAME_DB] = R.live[NAME_TMP] = -1;
	R.ospage = mmkv__os_page_size();
	mmkv__os = mmkv__os_default;
	mmkv__os.open = h_open;
	mmkv__os.close = h_close;
	mmkv__os.pwrite = h_pwrite;
	mmkv__os.pwritev = h_pwritev;
	mmkv__os.ftruncate = h_ftruncate;
	mmkv__os.fallocate = h_fallocate;
	mmkv__os.fsync = h_fsync;
	mmkv__os.fdatasync = h_fdatasync;
	mmkv__os.msync = h_msync;
	mmkv__os.mmap = h_mmap;
	mmkv__os.munmap = h_munmap;
	mmkv__os.rename = h_rename;
	mmkv__os.unlink = h_unlink;
	mmkv__os.fsync_dir = h_fsync_dir;
	R.on = true;
}

static void recorder_stop(void)
{
	R.on = false;
	mmkv__os = mmkv__os_default;
}

/* ================================================================= model */

enum { DB_MAIN, DB_AUX, DB_SCRATCH, NDB };
static const char *const db_name[NDB] = { NULL, "aux", "scratch" };

typedef struct rec {
	bool present;
	uint32_t len;
	uint64_t vseed;
} rec;

/* What the database holds after a commit; DB_MAIN always exists. */
typedef struct model {
	bool exists[NDB];
	rec r[NDB][MAXID];
} model;

enum { OP_PUT, OP_DEL, OP_CREATE, OP_DROP };

typedef struct op {
	uint8_t kind, db;
	uint16_t id;
	uint32_t len;
	uint64_t vseed;
} op;

#define MAXOPS 256

static uint64_t base_seed;

static uint64_t mix64(uint64_t a, uint64_t b)
{
	uint64_t z = a ^ (b * 0x9E3779B97F4A7C15ull) ^ 0x5851F42D4C957F2Dull;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Keys sort by id ("k00042-" first), then carry a filler of varying length
 * so that pages hold uneven numbers of them. */
static size_t make_key(int db, unsigned id, char *buf)
{
	size_t len = 7 + (id * 37u + (unsigned)db * 11u) % 41u;

	snprintf(buf, 8, "k%05u-", id);
	for (size_t i = 7; i < len; i++)
		buf[i] = (char)('a' + (id + i) % 26);
	return len;
}

static const char commit_key[] = "#commit";

static int pick_absent(const model *m, int db, test_rng *r)
{
	for (int tries = 0; tries < 64; tries++) {
		unsigned id = (unsigned)rng_below(r, MAXID);
		if (!m->r[db][id].present)
			return (int)id;
	}
	for (unsigned id = 0; id < MAXID; id++)
		if (!m->r[db][id].present)
			return (int)id;
	return -1;
}

static int pick_present(const model *m, int db, test_rng *r)
{
	unsigned start = (unsigned)rng_below(r, MAXID);

	for (unsigned k = 0; k < MAXID; k++) {
		unsigned id = (start + k) % MAXID;
		if (m->r[db][id].present)
			return (int)id;
	}
	return -1;
}

static void add_op(op *ops, size_t *n, int kind, int db, int id, uint32_t len, uint64_t vseed)
{
	assert_true(*n < MAXOPS);
	ops[*n] = (op){ (uint8_t)kind, (uint8_t)db, (uint16_t)id, len, vseed };
	(*n)++;
}

static void model_apply(model *m, const op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const op *o = &ops[i];
		switch (o->kind) {
		case OP_PUT:
			m->r[o->db][o->id] = (rec){ true, o->len, o->vseed };
			break;
		case OP_DEL:
			m->r[o->db][o->id].present = false;
			break;
		case OP_CREATE:
			m->exists[o->db] = true;
			break;
		case OP_DROP:
			m->exists[o->db] = false;
			memset(m->r[o->db], 0, sizeof(m->r[o->db]));
			break;
		}
	}
}

/* A put of a new or existing key: inline (up to 500 bytes, sometimes empty)
 * or overflow (more than a quarter page). The op is applied to the working
 * model at once so that later ops of the step see it. */
static void gen_put_len(model *w, op *ops, size_t *n, test_rng *r, int db, int id, uint32_t len)
{
	if (id < 0)
		return;
	add_op(ops, n, OP_PUT, db, id, len, rng_next(r) | 1);
	model_apply(w, &ops[*n - 1], 1);
}

static void gen_put(model *w, op *ops, size_t *n, test_rng *r, int db, int id, unsigned overflow_pct)
{
	uint32_t len = rng_pct(r, overflow_pct) ? (uint32_t)rng_range(r, 1100, 3000)
	               : rng_pct(r, 5)          ? 0
	                                        : (uint32_t)rng_range(r, 1, 500);

	gen_put_len(w, ops, n, r, db, id, len);
}

static void gen_del(model *w, op *ops, size_t *n, int db, int id)
{
	if (id < 0)
		return;
	add_op(ops, n, OP_DEL, db, id, 0, 0);
	model_apply(w, &ops[*n - 1], 1);
}

/* Delete a run of consecutive present keys: emptied leaves merge. */
static void gen_del_run(model *w, op *ops, size_t *n, test_rng *r, int db, unsigned count)
{
	int id = pick_present(w, db, r);

	for (unsigned k = 0; id >= 0 && k < count && *n < MAXOPS - 8; id++) {
		if (id >= MAXID)
			break;
		if (w->r[db][id].present) {
			gen_del(w, ops, n, db, id);
			k++;
		}
	}
}

/* The operations of committed step c (1..NSTEPS), given the model before it. */
static size_t gen_step(long c, const model *before, op *ops)
{
	model *w = xrealloc(NULL, sizeof(*w));
	test_rng r;
	size_t n = 0;

	*w = *before;
	rng_init(&r, mix64(base_seed, (uint64_t)c));
	if (c == 10)
		add_op(ops, &n, OP_CREATE, DB_AUX, 0, 0, 0);
	if (c == 20)
		add_op(ops, &n, OP_CREATE, DB_SCRATCH, 0, 0, 0);
	model_apply(w, ops, n);
	if (c <= 14) {
		for (int k = 0; k < 7; k++)
			gen_put(w, ops, &n, &r, DB_MAIN, pick_absent(w, DB_MAIN, &r), 25);
		if (c >= 10)
			for (int k = 0; k < 4; k++)
				gen_put(w, ops, &n, &r, DB_AUX, pick_absent(w, DB_AUX, &r), 30);
	} else if (c == 18) {
		/* The big step: 3-page overflow runs, more than the 64 pages of
		 * transaction memory, so default-mode dirty pages spill. In the
		 * default database, whose values do not compress ("aux" would
		 * shrink them to a few bytes). */
		for (int k = 0; k < 20; k++)
			gen_put_len(w, ops, &n, &r, DB_MAIN, pick_absent(w, DB_MAIN, &r),
			            (uint32_t)rng_range(&r, 8200, 12000));
		gen_put(w, ops, &n, &r, DB_MAIN, pick_present(w, DB_MAIN, &r), 100);
	} else if (c <= 30) {
		for (int k = 0; k < 3; k++)
			gen_put(w, ops, &n, &r, DB_MAIN, pick_present(w, DB_MAIN, &r), 40);
		for (int k = 0; k < 3; k++)
			gen_put(w, ops, &n, &r, DB_MAIN, pick_absent(w, DB_MAIN, &r), 30);
		for (int k = 0; k < 3; k++)
			gen_put(w, ops, &n, &r, DB_AUX, pick_absent(w, DB_AUX, &r), 30);
		for (int k = 0; k < 2; k++)
			gen_del(w, ops, &n, DB_MAIN, pick_present(w, DB_MAIN, &r));
		if (c >= 20 && c <= 25)
			for (int k = 0; k < 10; k++)
				gen_put(w, ops, &n, &r, DB_SCRATCH, pick_absent(w, DB_SCRATCH, &r), 40);
	} else if (c <= 42) {
		gen_del_run(w, ops, &n, &r, c % 3 == 0 ? DB_AUX : DB_MAIN, (unsigned)rng_range(&r, 8, 24));
		gen_put(w, ops, &n, &r, DB_MAIN, pick_absent(w, DB_MAIN, &r), 30);
	} else {
		for (int k = 0; k < 8; k++)
			gen_put(w, ops, &n, &r, DB_MAIN, pick_absent(w, DB_MAIN, &r), 30);
		for (int k = 0; k < 2; k++)
			gen_put(w, ops, &n, &r, DB_AUX, pick_absent(w, DB_AUX, &r), 30);
	}
	if (c == 27)
		add_op(ops, &n, OP_DROP, DB_SCRATCH, 0, 0, 0);
	free(w);
	return n;
}

/* Steps preceded by a write transaction that is aborted, and before which
 * the environment is closed and opened again. */
static bool abort_before(long c)
{
	return c % 9 == 4;
}

static bool reopen_before(long c)
{
	return c == 24 || c == 37;
}

/* ================================================================ the run */

/* Database "aux" is created with MMKV_COMPRESS, and its values repeat a
 * short pattern so that they are stored compressed; values of the other
 * databases are pseudo-random bytes. */
#define AUX_PERIOD 40

static void value_fill(int db, uint64_t vseed, unsigned char *v, size_t len)
{
	if (db != DB_AUX || len <= AUX_PERIOD) {
		pattern_fill(vseed, v, len);
		return;
	}
	pattern_fill(vseed, v, AUX_PERIOD);
	for (size_t i = AUX_PERIOD; i < len; i++)
		v[i] = v[i - AUX_PERIOD];
}

static bool value_equal(int db, uint64_t vseed, const unsigned char *v, size_t len)
{
	if (db != DB_AUX || len <= AUX_PERIOD)
		return pattern_equal(vseed, v, len);
	if (!pattern_equal(vseed, v, AUX_PERIOD))
		return false;
	for (size_t i = AUX_PERIOD; i < len; i++)
		if (v[i] != v[i - AUX_PERIOD])
			return false;
	return true;
}

static void put_value(mmkv_txn *txn, mmkv_dbi dbi, int db, unsigned id, uint32_t len, uint64_t vseed)
{
	char key[64];
	size_t klen = make_key(db, id, key);
	unsigned char *v = xrealloc(NULL, len ? len : 1);

	value_fill(db, vseed, v, len);
	put_ok(txn, dbi, key, klen, v, len);
	free(v);
}

static void txn_apply(mmkv_txn *txn, const model *before, const op *ops, size_t n)
{
	mmkv_dbi dbi[NDB] = { 0 };
	char key[64];

	dbi[DB_MAIN] = dbi_ok(txn, NULL, 0);
	for (int db = 1; db < NDB; db++)
		if (before->exists[db])
			dbi[db] = dbi_ok(txn, db_name[db], 0);
	for (size_t i = 0; i < n; i++) {
		const op *o = &ops[i];
		mmkv_val k;
		switch (o->kind) {
		case OP_CREATE:
			dbi[o->db] = dbi_ok(txn, db_name[o->db], MMKV_CREATE | (o->db == DB_AUX ? MMKV_COMPRESS : 0));
			break;
		case OP_DROP:
			assert_ok(mmkv_drop(txn, dbi[o->db], 1));
			break;
		case OP_PUT:
			put_value(txn, dbi[o->db], o->db, o->id, o->len, o->vseed);
			break;
		case OP_DEL:
			k = mkval(key, make_key(o->db, o->id, key));
			assert_ok(mmkv_del(txn, dbi[o->db], &k, NULL));
			break;
		}
	}
}

static void put_commit_key(mmkv_txn *txn, long c)
{
	uint64_t v = (uint64_t)c;

	put_ok(txn, dbi_ok(txn, NULL, 0), commit_key, strlen(commit_key), &v, sizeof(v));
}

static mmkv_env *open_recorded(const char *path, unsigned int flags)
{
	mmkv_env *env = env_new();

	assert_ok(mmkv_env_set_pagesize(env, PSIZE));
	assert_ok(mmkv_env_set_maxdbs(env, 4));
	if (!(flags & MMKV_WRITEMAP))
		assert_ok(mmkv_env_set_txn_memory(env, 64u * PSIZE));
	assert_ok(mmkv_env_open(env, path, flags, 0644));
	env->growth = GROWTH;
	return env;
}

/* Run the workload with the recorder on; snap[c] is the model after commit c. */
static void record_workload(const char *path, unsigned int flags, model *snap)
{
	mmkv_env *env;
	op *ops = xrealloc(NULL, MAXOPS * sizeof(*ops));
	model *m = &snap[0];

	recorder_start(path);
	rec_marker(EV_BEGIN, 0);
	env = open_recorded(path, flags);
	rec_marker(EV_ACK, 0);
	memset(m, 0, sizeof(*m));
	m->exists[DB_MAIN] = true;
	for (long c = 1; c <= NSTEPS; c++) {
		mmkv_txn *txn;
		size_t n;

		if (reopen_before(c)) {
			mmkv_env_close(env);
			env = open_recorded(path, flags);
		}
		if (abort_before(c)) {
			test_rng r;
			rng_init(&r, mix64(base_seed, (uint64_t)c + 1000));
			txn = txn_write(env);
			R.changing = true;
			for (int k = 0; k < 12; k++)
				put_value(txn, dbi_ok(txn, NULL, 0), DB_MAIN, (unsigned)rng_below(&r, MAXID),
				          (uint32_t)rng_range(&r, 200, 4000), rng_next(&r));
			R.changing = false;
			mmkv_txn_abort(txn);
		}
		rec_marker(EV_BEGIN, c);
		n = gen_step(c, &snap[c - 1], ops);
		txn = txn_write(env);
		R.changing = true;
		txn_apply(txn, &snap[c - 1], ops, n);
		put_commit_key(txn, c);
		R.changing = false;
		assert_ok(mmkv_txn_commit(txn));
		rec_marker(EV_ACK, c);
		snap[c] = snap[c - 1];
		model_apply(&snap[c], ops, n);
	}
	recorder_stop();
	check_env(env);
	mmkv_env_close(env);
	free(ops);
	if (R.error[0])
		fail_msg("recorder: %s", R.error);
}

/* ================================================================ replay */

typedef struct pend {
	uint32_t ev;    /* index of the EV_WRITE or EV_SIZE */
	uint64_t lo, hi; /* a write: the part of it still pending */
} pend;

typedef struct dfile {
	unsigned char *dur; /* durable contents; past size only what a sync made durable */
	uint64_t size, cap;
	pend *p;
	size_t np, pcap;
} dfile;

typedef struct replay {
	const event *ev;
	size_t nev;
	int nfiles;
	dfile f[MAXFILES];
	int dir[NNAMES];   /* durable directory */
	uint32_t *dirop;   /* pending directory operations */
	size_t ndirop, dircap;
} replay;

static bool is_marker(const event *e)
{
	return e->kind == EV_BEGIN || e->kind == EV_ACK;
}

static bool is_dirop(const event *e)
{
	return e->kind == EV_CREATE || e->kind == EV_RENAME || e->kind == EV_UNLINK;
}

static void pend_push(dfile *f, uint32_t ev, uint64_t lo, uint64_t hi)
{
	if (f->np == f->pcap) {
		f->pcap = f->pcap ? f->pcap * 2 : 64;
		f->p = xrealloc(f->p, f->pcap * sizeof(*f->p));
	}
	f->p[f->np++] = (pend){ ev, lo, hi };
}

static void dur_write(dfile *f, const event *e, uint64_t lo, uint64_t hi)
{
	buf_reserve(&f->dur, &f->cap, hi);
	memcpy(f->dur + lo, e->data + (lo - e->off), (size_t)(hi - lo));
}

static void dur_size(dfile *f, uint64_t size)
{
	buf_reserve(&f->dur, &f->cap, size);
	if (size < f->size)
		memset(f->dur + size, 0, (size_t)(f->cap - size));
	f->size = size;
}

static void dir_apply(int *dir, const event *e)
{
	switch (e->kind) {
	case EV_CREATE:
		dir[e->name] = e->file;
		break;
	case EV_RENAME:
		dir[e->name2] = dir[e->name];
		dir[e->name] = -1;
		break;
	case EV_UNLINK:
		dir[e->name] = -1;
		break;
	}
}

static void replay_init(replay *rp, const event *ev, size_t nev, int nfiles)
{
	memset(rp, 0, sizeof(*rp));
	rp->ev = ev;
	rp->nev = nev;
	rp->nfiles = nfiles;
	rp->dir[NAME_DB] = rp->dir[NAME_TMP] = -1;
}

static void replay_free(replay *rp)
{
	for (int i = 0; i < MAXFILES; i++) {
		free(rp->f[i].dur);
		free(rp->f[i].p);
	}
	free(rp->dirop);
}

/* A barrier on file f: its pending writes (those inside [a, b) when ranged;
 * a write straddling the range is split) and, with sizes, its pending size
 * changes become durable, in order. */
static void replay_sync(replay *rp, dfile *f, bool sizes, bool ranged, uint64_t a, uint64_t b)
{
	size_t n = f->np, k = 0;
	pend *old = xrealloc(NULL, (n ? n : 1) * sizeof(*old));

	if (n)
		memcpy(old, f->p, n * sizeof(*old));
	f->np = 0;
	for (; k < n; k++) {
		const event *e = &rp->ev[old[k].ev];
		uint64_t lo = old[k].lo, hi = old[k].hi, x, y;
		if (e->kind == EV_SIZE) {
			if (sizes)
				dur_size(f, e->off);
			else
				pend_push(f, old[k].ev, 0, 0);
			continue;
		}
		if (!ranged) {
			dur_write(f, e, lo, hi);
			continue;
		}
		x = lo > a ? lo : a;
		y = hi < b ? hi : b;
		if (x >= y) {
			pend_push(f, old[k].ev, lo, hi);
			continue;
		}
		dur_write(f, e, x, y);
		if (lo < x)
			pend_push(f, old[k].ev, lo, x);
		if (y < hi)
			pend_push(f, old[k].ev, y, hi);
	}
	free(old);
}

static void replay_apply(replay *rp, size_t i)
{
	const event *e = &rp->ev[i];
	dfile *f = e->file >= 0 ? &rp->f[e->file] : NULL;

	switch (e->kind) {
	case EV_WRITE:
		pend_push(f, (uint32_t)i, e->off, e->off + e->len);
		break;
	case EV_SIZE:
		pend_push(f, (uint32_t)i, 0, 0);
		break;
	case EV_FSYNC:
		replay_sync(rp, f, true, false, 0, 0);
		break;
	case EV_FDATASYNC:
		replay_sync(rp, f, false, false, 0, 0);
		break;
	case EV_MSYNC:
		replay_sync(rp, f, false, true, e->off, e->off + e->len);
		break;
	case EV_CREATE:
	case EV_RENAME:
	case EV_UNLINK:
		if (rp->ndirop == rp->dircap) {
			rp->dircap = rp->dircap ? rp->dircap * 2 : 16;
			rp->dirop = xrealloc(rp->dirop, rp->dircap * sizeof(*rp->dirop));
		}
		rp->dirop[rp->ndirop++] = (uint32_t)i;
		break;
	case EV_DIRSYNC:
		for (size_t k = 0; k < rp->ndirop; k++)
			dir_apply(rp->dir, &rp->ev[rp->dirop[k]]);
		rp->ndirop = 0;
		break;
	}
}

static size_t pending_writes(const replay *rp, int file)
{
	size_t n = 0;

	for (size_t k = 0; k < rp->f[file].np; k++)
		n += rp->ev[rp->f[file].p[k].ev].kind == EV_WRITE;
	return n;
}

static size_t pending_sizes(const replay *rp, int file)
{
	return rp->f[file].np - pending_writes(rp, file);
}

/* Called at each crash point: events [0, point) happened; lo and hi bound
 * the commit a recovery may show. */
typedef void point_fn(replay *rp, size_t point, long lo, long hi, void *arg);

static void replay_run(replay *rp, point_fn *fn, void *arg)
{
	long acked = -1, begun = -1, hi = -1;
	bool have_point = false;

	for (size_t i = 0; i <= rp->nev; i++) {
		const event *e = i < rp->nev ? &rp->ev[i] : NULL;
		if (e && is_marker(e)) {
			if (e->kind == EV_ACK)
				acked = e->commit;
			else
				begun = e->commit;
			continue;
		}
		if (e && e->batch) {
			replay_apply(rp, i);
			continue;
		}
		if (have_point)
			fn(rp, i, acked, hi, arg);
		if (!e)
			break;
		replay_apply(rp, i);
		have_point = true;
		hi = begun;
	}
}

/* ========================================================== crash states */

enum fate { F_APPLY, F_DROP, F_TORN512, F_TORN4K, F_GARBAGE, NFATES };
static const char *const fate_name[NFATES] = { "applied", "dropped", "torn/512", "torn/4K", "garbage" };

enum kind { K_ALL, K_NONE, K_DROP1, K_MIX, K_PREFIX, NKINDS };
static const char *const kind_name[NKINDS] = { "all", "none", "drop-one", "mixed", "prefix" };

enum lockfile { L_NONE, L_STALE, L_GARBAGE, NLOCKS };

typedef struct crash {
	int kind;
	uint8_t *fate;              /* per pending write, files in order */
	size_t nfate, fatecap;
	size_t sizes[MAXFILES];     /* pending size changes applied (a prefix) */
	size_t dirops;              /* pending directory operations applied */
	int lock;
	unsigned int open_flags;
} crash;

typedef struct stats {
	uint64_t states, kind[NKINDS], fate[NFATES], lock[NLOCKS];
	uint64_t points, points_pending, max_pending;
	uint64_t no_db, tmp_left, size_lost, other_mode;
	uint64_t at_acked, newer, older; /* recovered commit vs the last acknowledged */
	long commits_seen_lo, commits_seen_hi;
} stats;

typedef struct runner {
	unsigned int mode;  /* flags of the recording */
	const model *snap;
	test_dir dir;       /* the crash states are built here */
	char path[NNAMES][PATH_MAX], lockpath[PATH_MAX];
	unsigned char *img[NNAMES];
	uint64_t imgcap[NNAMES], imgsize[NNAMES];
	bool present[NNAMES];
	bool size_lost;     /* this state lost a size change */
	test_rng rng;
	stats st;
	long slack;         /* acknowledged commits a crash may lose */
	const char *label;  /* write mode and flags, for messages */
	/* allocation of states to points (pass 2) */
	size_t *alloc;
	size_t npoints, cur;
	/* what is being run, for failure messages */
	size_t point;
	long lo, hi;
	const crash *cr;
} runner;

__attribute__((format(printf, 2, 3))) static void state_fail(runner *rn, const char *fmt, ...)
{
	char msg[1024], saved[2 * PATH_MAX + 64] = "";
	const char *tmp = getenv("TMPDIR");
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (int nm = 0; nm < NNAMES; nm++) {
		char out[PATH_MAX];
		FILE *f;
		if (!rn->present[nm])
			continue;
		snprintf(out, sizeof(out), "%s/mmkv-powerloss-%u-%s", tmp && *tmp ? tmp : "/tmp",
		         (unsigned)getpid(), nm == NAME_DB ? "db" : "tmp");
		f = fopen(out, "wb");
		if (f && fwrite(rn->img[nm], 1, (size_t)rn->imgsize[nm], f) == rn->imgsize[nm]) {
			size_t used = strlen(saved);
			snprintf(saved + used, sizeof(saved) - used, " %s", out);
		}
		if (f)
			fclose(f);
	}
	fail_msg("%s, crash point %zu (commits %ld..%ld), %s state, opened %s: %s%s%s",
	         rn->label, rn->point, rn->lo, rn->hi,
	         kind_name[rn->cr->kind], rn->cr->open_flags & MMKV_WRITEMAP ? "writemap" : "default",
	         msg, saved[0] ? "; image saved as" : "", saved);
}

static void crash_reset(crash *cr, int kind, size_t nfate)
{
	cr->kind = kind;
	if (cr->fate == NULL || nfate > cr->fatecap) {
		cr->fatecap = nfate > cr->fatecap ? nfate : 16;
		cr->fate = xrealloc(cr->fate, cr->fatecap);
	}
	cr->nfate = nfate;
	memset(cr->sizes, 0, sizeof(cr->sizes));
	cr->dirops = 0;
}

/* Build file's image in rn->img[nm] under cr; fates from *fi on. */
static void build_image(runner *rn, const replay *rp, const crash *cr, int file, size_t *fi, int nm)
{
	const dfile *f = &rp->f[file];
	uint64_t need = f->cap, size = f->size;
	size_t sizes = 0;
	unsigned char *img;

	for (size_t k = 0; k < f->np; k++) {
		const event *e = &rp->ev[f->p[k].ev];
		uint64_t end = e->kind == EV_SIZE ? e->off : f->p[k].hi;
		if (end > need)
			need = end;
	}
	buf_reserve(&rn->img[nm], &rn->imgcap[nm], need);
	img = rn->img[nm];
	if (f->cap)
		memcpy(img, f->dur, (size_t)f->cap);
	memset(img + f->cap, 0, (size_t)(rn->imgcap[nm] - f->cap));
	for (size_t k = 0; k < f->np; k++) {
		const event *e = &rp->ev[f->p[k].ev];
		uint64_t lo = f->p[k].lo, hi = f->p[k].hi, g;
		const unsigned char *src;
		uint8_t fate;

		if (e->kind == EV_SIZE) {
			if (sizes++ < cr->sizes[file]) {
				if (e->off < size)
					memset(img + e->off, 0, (size_t)(need - e->off));
				size = e->off;
			}
			continue;
		}
		src = e->data + (lo - e->off);
		fate = cr->fate[(*fi)++];
		rn->st.fate[fate]++;
		switch (fate) {
		case F_APPLY:
			memcpy(img + lo, src, (size_t)(hi - lo));
			break;
		case F_DROP:
			break;
		case F_TORN512:
		case F_TORN4K: {
			/* Sectors of the write, by file offset; a prefix of them or
			 * a random subset reaches the disk. */
			uint64_t first, nsect, cut;
			bool subset = rng_pct(&rn->rng, 50);
			g = fate == F_TORN512 ? 512 : 4096;
			first = lo / g;
			nsect = (hi + g - 1) / g - first;
			cut = nsect > 1 ? rng_range(&rn->rng, 1, nsect - 1) : rng_below(&rn->rng, 2);
			for (uint64_t s = 0; s < nsect; s++) {
				uint64_t a = (first + s) * g, b = a + g;
				if (a < lo)
					a = lo;
				if (b > hi)
					b = hi;
				if (subset ? rng_pct(&rn->rng, 50) : s < cut)
					memcpy(img + a, src + (a - lo), (size_t)(b - a));
			}
			break;
		}
		case F_GARBAGE:
			rng_fill(&rn->rng, img + lo, (size_t)(hi - lo));
			break;
		}
	}
	rn->size_lost |= sizes > cr->sizes[file];
	rn->imgsize[nm] = size;
}

static void write_file(runner *rn, int nm)
{
	int fd = open(rn->path[nm], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	uint64_t done = 0;

	if (fd < 0)
		fail_msg("open %s: %s", rn->path[nm], strerror(errno));
	while (done < rn->imgsize[nm]) {
		ssize_t r = write(fd, rn->img[nm] + done, (size_t)(rn->imgsize[nm] - done));
		if (r <= 0)
			fail_msg("write %s: %s", rn->path[nm], strerror(errno));
		done += (uint64_t)r;
	}
	close(fd);
}

static void prepare_lock(runner *rn, int lock)
{
	struct stat st;

	if (lock == L_STALE && stat(rn->lockpath, &st) != 0)
		lock = L_NONE; /* nothing left over yet */
	rn->st.lock[lock]++;
	if (lock == L_NONE) {
		unlink(rn->lockpath);
	} else if (lock == L_GARBAGE) {
		unsigned char junk[1500];
		size_t n = (size_t)rng_range(&rn->rng, 1, sizeof(junk));
		int fd;
		unlink(rn->lockpath);
		fd = open(rn->lockpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		rng_fill(&rn->rng, junk, n);
		assert_int_equal(write(fd, junk, n), (ssize_t)n);
		close(fd);
	}
}

typedef struct names_ctx {
	char names[NDB][16];
	int n;
	bool overflow;
} names_ctx;

static int collect_name(void *ctx, const mmkv_val *name)
{
	names_ctx *nc = ctx;

	if (nc->n == NDB || name->size >= sizeof(nc->names[0])) {
		nc->overflow = true;
		return 0;
	}
	memcpy(nc->names[nc->n], name->data, name->size);
	nc->names[nc->n][name->size] = '\0';
	nc->n++;
	return 0;
}

/* Compare database db with the model of commit c by cursor scan; returns
 * false and describes the first difference in why. */
static bool compare_db(mmkv_txn *txn, int db, const model *m, long c, char *why, size_t cap)
{
	mmkv_dbi dbi;
	mmkv_cursor *cur;
	mmkv_val k, v;
	char key[64];
	unsigned id = 0;
	int rc;
	bool ok = true;

	rc = mmkv_dbi_open(txn, db_name[db], 0, &dbi);
	if (rc) {
		snprintf(why, cap, "database %s does not open: %s", db_name[db] ? db_name[db] : "(default)",
		         mmkv_strerror(rc));
		return false;
	}
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	rc = mmkv_cursor_get(cur, &k, &v, MMKV_FIRST);
	if (db == DB_MAIN && c > 0) {
		/* "#commit" sorts before every "k" key. */
		if (rc || k.size != strlen(commit_key) || memcmp(k.data, commit_key, k.size)) {
			snprintf(why, cap, "first key of the default database is not %s", commit_key);
			ok = false;
		}
		if (ok)
			rc = mmkv_cursor_get(cur, &k, &v, MMKV_NEXT);
	}
	for (; ok; id++) {
		size_t klen;
		while (id < MAXID && !m->r[db][id].present)
			id++;
		if (id == MAXID) {
			if (rc != MMKV_NOTFOUND) {
				snprintf(why, cap, "database %s: unexpected key %.*s (%s)",
				         db_name[db] ? db_name[db] : "(default)", rc ? 0 : (int)k.size,
				         rc ? "" : (const char *)k.data, mmkv_strerror(rc));
				ok = false;
			}
			break;
		}
		klen = make_key(db, id, key);
		if (rc) {
			snprintf(why, cap, "database %s: key %u missing (%s)",
			         db_name[db] ? db_name[db] : "(default)", id, mmkv_strerror(rc));
			ok = false;
		} else if (k.size != klen || memcmp(k.data, key, klen)) {
			snprintf(why, cap, "database %s: key %.*s where key %u was expected",
			         db_name[db] ? db_name[db] : "(default)", (int)k.size, (const char *)k.data, id);
			ok = false;
		} else if (v.size != m->r[db][id].len || !value_equal(db, m->r[db][id].vseed, v.data, v.size)) {
			snprintf(why, cap, "database %s: key %u has a value of %zu bytes, expected %u (%s)",
			         db_name[db] ? db_name[db] : "(default)", id, v.size, m->r[db][id].len,
			         v.size == m->r[db][id].len ? "other bytes" : "other size");
			ok = false;
		} else {
			rc = mmkv_cursor_get(cur, &k, &v, MMKV_NEXT);
		}
	}
	mmkv_cursor_close(cur);
	return ok;
}

/* Open, check and compare the crash state now in rn->dir. */
static void judge_state(runner *rn, long lo, long hi)
{
	mmkv_env *env = env_new();
	mmkv_check_result res;
	uint64_t reported = 0, cval = 0;
	mmkv_txn *txn;
	mmkv_val k = mkval(commit_key, strlen(commit_key)), v;
	names_ctx nc;
	char why[512];
	long c, oldest;
	int rc;

	assert_ok(mmkv_env_set_maxdbs(env, 4));
	rc = mmkv_env_open(env, rn->path[NAME_DB], rn->cr->open_flags, 0644);
	if (rc) {
		mmkv_env_close(env);
		state_fail(rn, "mmkv_env_open: %s", mmkv_strerror(rc));
	}
	rc = check_env_quiet(env, &res, &reported, true);
	if (rc || reported || res.problems ||
	    res.pages_tree + res.pages_free + 2 != res.pages_total)
		state_fail(rn, "mmkv_env_check: %s, %" PRIu64 " problems (tree %" PRIu64 " + free %" PRIu64
		               " + 2 != total %" PRIu64 "?)",
		           mmkv_strerror(rc), reported, res.pages_tree, res.pages_free, res.pages_total);

	txn = txn_read(env);
	rc = mmkv_get(txn, dbi_ok(txn, NULL, 0), &k, &v);
	if (rc == 0 && v.size == sizeof(cval))
		memcpy(&cval, v.data, sizeof(cval));
	else if (rc != MMKV_NOTFOUND)
		state_fail(rn, "reading %s: %s (%zu bytes)", commit_key, mmkv_strerror(rc), rc ? 0 : v.size);
	c = (long)cval;
	/* Creation (commit 0) is always synced; later commits may lose slack. */
	oldest = lo > 0 ? (lo - rn->slack > 0 ? lo - rn->slack : 0) : lo;
	if (c < oldest || c > hi || c > NSTEPS)
		state_fail(rn, "recovered commit %ld, outside %ld..%ld", c, oldest, hi);
	if (c == lo)
		rn->st.at_acked++;
	else if (c > lo)
		rn->st.newer++;
	else
		rn->st.older++;
	for (int db = 0; db < NDB; db++)
		if (rn->snap[c].exists[db] && !compare_db(txn, db, &rn->snap[c], c, why, sizeof(why)))
			state_fail(rn, "commit %ld: %s", c, why);
	/* The named databases listed are exactly the model's, in name order. */
	memset(&nc, 0, sizeof(nc));
	assert_ok(mmkv_dbi_list(txn, collect_name, &nc));
	{
		int n = 0;
		for (int db = 1; db < NDB; db++) {
			if (!rn->snap[c].exists[db])
				continue;
			if (n >= nc.n || strcmp(nc.names[n], db_name[db]) != 0)
				state_fail(rn, "commit %ld: database %s not listed", c, db_name[db]);
			n++;
		}
		if (nc.n != n || nc.overflow)
			state_fail(rn, "commit %ld: %d named databases listed, %d expected", c, nc.n, n);
	}
	mmkv_txn_abort(txn);

	/* The recovered database takes new writes. */
	txn = NULL;
	rc = mmkv_txn_begin(env, NULL, 0, &txn);
	if (rc)
		state_fail(rn, "write transaction after recovery: %s", mmkv_strerror(rc));
	{
		mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
		uint64_t after = (uint64_t)c + 1000;
		int id = -1;
		char key[64];
		put_ok(txn, dbi, commit_key, strlen(commit_key), &after, sizeof(after));
		for (unsigned i = 0; i < MAXID && id < 0; i++)
			if (rn->snap[c].r[DB_MAIN][i].present)
				id = (int)i;
		if (id >= 0) {
			mmkv_val dk = mkval(key, make_key(DB_MAIN, (unsigned)id, key));
			assert_ok(mmkv_del(txn, dbi, &dk, NULL));
		}
		put_value(txn, dbi, DB_MAIN, MAXID + 1, 2000, after);
		rc = mmkv_txn_commit(txn);
		if (rc)
			state_fail(rn, "commit after recovery: %s", mmkv_strerror(rc));
	}
	txn = txn_read(env);
	assert_ok(mmkv_get(txn, dbi_ok(txn, NULL, 0), &k, &v));
	assert_int_equal(v.size, sizeof(cval));
	memcpy(&cval, v.data, sizeof(cval));
	assert_int_equal(cval, (uint64_t)c + 1000);
	mmkv_txn_abort(txn);
	if (rn->st.states % 16 == 0) {
		rc = check_env_quiet(env, &res, &reported, true);
		if (rc || reported)
			state_fail(rn, "mmkv_env_check after the new commit: %s", mmkv_strerror(rc));
	}
	mmkv_env_close(env);
}

static void run_state(runner *rn, const replay *rp, const crash *cr, size_t point, long lo, long hi)
{
	int dir[NNAMES];
	size_t fi_base[MAXFILES + 1];

	rn->point = point;
	rn->lo = lo;
	rn->hi = hi;
	rn->cr = cr;
	memcpy(dir, rp->dir, sizeof(dir));
	for (size_t k = 0; k < cr->dirops; k++)
		dir_apply(dir, &rp->ev[rp->dirop[k]]);
	fi_base[0] = 0;
	for (int f = 0; f < rp->nfiles; f++)
		fi_base[f + 1] = fi_base[f] + pending_writes(rp, f);
	assert_int_equal(fi_base[rp->nfiles], cr->nfate);

	for (int nm = 0; nm < NNAMES; nm++) {
		unlink(rn->path[nm]);
		rn->present[nm] = false;
	}
	prepare_lock(rn, cr->lock);
	rn->size_lost = false;
	for (int nm = 0; nm < NNAMES; nm++) {
		size_t fi;
		if (dir[nm] < 0)
			continue;
		fi = fi_base[dir[nm]];
		build_image(rn, rp, cr, dir[nm], &fi, nm);
		write_file(rn, nm);
		rn->present[nm] = true;
	}
	rn->st.states++;
	rn->st.kind[cr->kind]++;
	rn->st.size_lost += rn->size_lost;
	rn->st.no_db += !rn->present[NAME_DB];
	rn->st.tmp_left += rn->present[NAME_TMP];
	rn->st.other_mode += (cr->open_flags & MMKV_WRITEMAP) != (rn->mode & MMKV_WRITEMAP);
	if (lo >= 0 && !rn->present[NAME_DB])
		state_fail(rn, "the database file is gone although its creation was acknowledged");
	judge_state(rn, lo, hi);
}

/* Fill in the random parts of a crash: size and directory prefixes, lock
 * file, open mode. */
static void crash_extras(runner *rn, const replay *rp, crash *cr, bool random)
{
	for (int f = 0; f < rp->nfiles; f++) {
		size_t ns = pending_sizes(rp, f);
		if (cr->kind == K_NONE)
			cr->sizes[f] = 0;
		else if (!random || rng_pct(&rn->rng, 50))
			cr->sizes[f] = ns;
		else
			cr->sizes[f] = (size_t)rng_below(&rn->rng, ns + 1);
	}
	cr->dirops = cr->kind == K_NONE ? 0
	             : random           ? (size_t)rng_below(&rn->rng, rp->ndirop + 1)
	                                : rp->ndirop;
	cr->lock = rng_pct(&rn->rng, 10) ? L_GARBAGE : rng_pct(&rn->rng, 50) ? L_STALE : L_NONE;
	cr->open_flags = rng_pct(&rn->rng, 35) ? (rn->mode ^ MMKV_WRITEMAP) : rn->mode;
}

static uint8_t random_fate(test_rng *r)
{
	uint64_t x = rng_below(r, 100);

	return x < 45 ? F_APPLY : x < 70 ? F_DROP : x < 80 ? F_TORN512 : x < 90 ? F_TORN4K : F_GARBAGE;
}

typedef struct pass1 {
	size_t *weight, *sys;
	size_t n, cap;
} pass1;

static size_t total_pending_writes(const replay *rp)
{
	size_t n = 0;

	for (int f = 0; f < rp->nfiles; f++)
		n += pending_writes(rp, f);
	return n;
}

static bool anything_pending(const replay *rp)
{
	for (int f = 0; f < rp->nfiles; f++)
		if (rp->f[f].np)
			return true;
	return rp->ndirop > 0;
}

static size_t systematic_count(const replay *rp)
{
	size_t p = total_pending_writes(rp);

	if (!anything_pending(rp))
		return 1;
	return 2 + (p >= 2 ? (p < DROP1_MAX ? p : DROP1_MAX) : 0);
}

static void count_point(replay *rp, size_t point, long lo, long hi, void *arg)
{
	pass1 *p1 = arg;

	(void)point;
	(void)lo;
	(void)hi;
	if (p1->n == p1->cap) {
		p1->cap = p1->cap ? p1->cap * 2 : 256;
		p1->weight = xrealloc(p1->weight, p1->cap * sizeof(*p1->weight));
		p1->sys = xrealloc(p1->sys, p1->cap * sizeof(*p1->sys));
	}
	p1->weight[p1->n] = anything_pending(rp) ? total_pending_writes(rp) + 1 : 0;
	p1->sys[p1->n] = systematic_count(rp);
	p1->n++;
}

static void run_point(replay *rp, size_t point, long lo, long hi, void *arg)
{
	runner *rn = arg;
	size_t p = total_pending_writes(rp), nrand = rn->alloc[rn->cur++];
	crash cr;

	memset(&cr, 0, sizeof(cr));
	rn->st.points++;
	if (anything_pending(rp))
		rn->st.points_pending++;
	if (p > rn->st.max_pending)
		rn->st.max_pending = p;
	if (lo < rn->st.commits_seen_lo)
		rn->st.commits_seen_lo = lo;
	if (hi > rn->st.commits_seen_hi)
		rn->st.commits_seen_hi = hi;

	crash_reset(&cr, K_ALL, p);
	memset(cr.fate, F_APPLY, p);
	crash_extras(rn, rp, &cr, false);
	run_state(rn, rp, &cr, point, lo, hi);
	if (anything_pending(rp)) {
		crash_reset(&cr, K_NONE, p);
		memset(cr.fate, F_DROP, p);
		crash_extras(rn, rp, &cr, false);
		run_state(rn, rp, &cr, point, lo, hi);
	}
	if (p >= 2) {
		size_t n = p < DROP1_MAX ? p : DROP1_MAX;
		for (size_t j = 0; j < n; j++) {
			crash_reset(&cr, K_DROP1, p);
			memset(cr.fate, F_APPLY, p);
			cr.fate[p <= DROP1_MAX ? j : (size_t)rng_below(&rn->rng, p)] = F_DROP;
			crash_extras(rn, rp, &cr, false);
			run_state(rn, rp, &cr, point, lo, hi);
		}
	}
	for (size_t j = 0; j < nrand; j++) {
		if (rng_pct(&rn->rng, 70) || p == 0) {
			crash_reset(&cr, K_MIX, p);
			for (size_t w = 0; w < p; w++)
				cr.fate[w] = random_fate(&rn->rng);
		} else {
			/* In-order writeback cut short: a crash at an earlier point
			 * of this epoch, with the write in flight damaged. */
			size_t cut = (size_t)rng_below(&rn->rng, p + 1);
			crash_reset(&cr, K_PREFIX, p);
			for (size_t w = 0; w < p; w++)
				cr.fate[w] = w < cut ? F_APPLY : F_DROP;
			if (cut < p)
				cr.fate[cut] = (uint8_t)rng_range(&rn->rng, F_APPLY, F_GARBAGE);
		}
		crash_extras(rn, rp, &cr, true);
		run_state(rn, rp, &cr, point, lo, hi);
	}
	free(cr.fate);
}

/* ================================================================= tests */

static size_t states_budget(void)
{
	const char *s = getenv("MMKV_POWERLOSS_STATES");
	long long n = s && *s ? atoll(s) : DEFAULT_STATES;

	return n > 0 ? (size_t)n : 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t total_states, durable_states;

/* The directories of the running test, removed by cleanup_dirs even when
 * an assertion ends the test early (test_dir_remove empties the path). */
static test_dir *dirs_in_use[2];

static int cleanup_dirs(void **state)
{
	(void)state;
	mmkv__os = mmkv__os_default;
	for (int i = 0; i < 2; i++)
		if (dirs_in_use[i])
			test_dir_remove(dirs_in_use[i]);
	dirs_in_use[0] = dirs_in_use[1] = NULL;
	return 0;
}

/* Record the workload with test_env_flags | extra, then build, open and judge
 * about budget crash states; slack is how many acknowledged commits a crash
 * may lose (0 in the durable mode). */
static void run_powerloss(unsigned int extra, size_t budget, long slack)
{
	char mode[64];
	size_t sys = 0, wsum = 0, given = 0, acc = 0;
	uint64_t n_write = 0, n_mapped = 0, n_size = 0, n_fsync = 0, n_fdatasync = 0, n_msync = 0,
	         n_dir = 0, n_dirsync = 0, n_ack = 0, max_size = 0;
	model *snap = xrealloc(NULL, (NSTEPS + 1) * sizeof(*snap));
	static test_dir rdir;
	char rpath[PATH_MAX];
	replay rp;
	pass1 p1;
	runner *rn;
	double t0 = now_s(), t1, t2;

	snprintf(mode, sizeof(mode), "%s%s", test_env_flags & MMKV_WRITEMAP ? "writemap" : "default",
	         extra & MMKV_NOMETASYNC ? "+nometasync" : "");
	mmkv__os = mmkv__os_default;
	test_dir_create(&rdir);
	dirs_in_use[0] = &rdir;
	test_dir_file(&rdir, "db.mmkv", rpath, sizeof(rpath));
	record_workload(rpath, test_env_flags | extra, snap);
	test_dir_remove(&rdir);
	dirs_in_use[0] = NULL;
	t1 = now_s();

	for (size_t i = 0; i < R.nev; i++) {
		const event *e = &R.ev[i];
		switch (e->kind) {
		case EV_WRITE:
			n_write++;
			n_mapped += e->mapped;
			break;
		case EV_SIZE:
			n_size++;
			if (e->off > max_size)
				max_size = e->off;
			break;
		case EV_FSYNC:
			n_fsync++;
			break;
		case EV_FDATASYNC:
			n_fdatasync++;
			break;
		case EV_MSYNC:
			n_msync++;
			break;
		case EV_DIRSYNC:
			n_dirsync++;
			break;
		case EV_ACK:
			n_ack++;
			break;
		default:
			n_dir += is_dirop(e);
			break;
		}
	}
	/* The workload did what it is meant to exercise (which syncs the
	 * library made is for the crash states to judge, not asserted here). */
	assert_int_equal(n_ack, NSTEPS + 1);
	assert_true(n_size >= 5); /* creation, then four growths */
	assert_true(n_dir >= 2);  /* temporary file, rename */
	if (test_env_flags & MMKV_WRITEMAP)
		assert_true(n_mapped > 0);
	else
		assert_true(R.spilled > 0);

	/* Pass 1: the crash points and how many states each gets. */
	memset(&p1, 0, sizeof(p1));
	replay_init(&rp, R.ev, R.nev, R.nfiles);
	replay_run(&rp, count_point, &p1);
	replay_free(&rp);
	for (size_t i = 0; i < p1.n; i++) {
		sys += p1.sys[i];
		wsum += p1.weight[i];
	}
	rn = calloc(1, sizeof(*rn));
	assert_non_null(rn);
	rn->alloc = xrealloc(NULL, (p1.n ? p1.n : 1) * sizeof(*rn->alloc));
	rn->npoints = p1.n;
	for (size_t i = 0; i < p1.n; i++) {
		size_t rest = budget > sys ? budget - sys : 0;
		/* Cumulative rounding: the random states add up to rest. */
		acc += p1.weight[i];
		rn->alloc[i] = wsum ? (size_t)((uint64_t)rest * acc / wsum) - given : 0;
		given += rn->alloc[i];
	}

	/* Pass 2: build, open and judge every state. */
	rn->mode = test_env_flags | extra;
	rn->slack = slack;
	rn->label = mode;
	rn->snap = snap;
	rng_init(&rn->rng, mix64(base_seed, test_env_flags + 77));
	rn->st.commits_seen_lo = NSTEPS;
	rn->st.commits_seen_hi = -1;
	test_dir_create(&rn->dir);
	dirs_in_use[1] = &rn->dir;
	test_dir_file(&rn->dir, "db.mmkv", rn->path[NAME_DB], PATH_MAX);
	path_suffix(rn->path[NAME_TMP], rn->path[NAME_DB], ".new-");
	path_suffix(rn->lockpath, rn->path[NAME_DB], "-lock");
	replay_init(&rp, R.ev, R.nev, R.nfiles);
	replay_run(&rp, run_point, rn);
	replay_free(&rp);
	test_dir_remove(&rn->dir);
	dirs_in_use[1] = NULL;
	t2 = now_s();

	assert_int_equal(rn->cur, rn->npoints);
	assert_true(rn->st.states >= budget);
	assert_true(rn->st.no_db > 0 && rn->st.tmp_left > 0);
	total_states += rn->st.states;
	if (slack == 0)
		durable_states += rn->st.states;

	printf("powerloss[%s]: %d commits; %zu events: %" PRIu64 " writes (%" PRIu64
	       " found in the map, %" PRIu64 " spilled), %" PRIu64 " size changes (largest %" PRIu64 " KiB), %" PRIu64
	       " fsync, %" PRIu64 " fdatasync, %" PRIu64 " msync, %" PRIu64 " directory ops, %" PRIu64
	       " directory syncs\n",
	       mode, NSTEPS, R.nev, n_write, n_mapped, R.spilled, n_size, max_size / 1024, n_fsync, n_fdatasync,
	       n_msync, n_dir, n_dirsync);
	printf("powerloss[%s]: %" PRIu64 " crash points (%" PRIu64 " with pending changes, up to %" PRIu64
	       " pending writes), commits %ld..%ld\n",
	       mode, rn->st.points, rn->st.points_pending, rn->st.max_pending, rn->st.commits_seen_lo,
	       rn->st.commits_seen_hi);
	printf("powerloss[%s]: %" PRIu64 " states in %.1f s (recording %.1f s):", mode, rn->st.states,
	       t2 - t1, t1 - t0);
	for (int k = 0; k < NKINDS; k++)
		printf(" %s %" PRIu64 "%s", kind_name[k], rn->st.kind[k], k + 1 < NKINDS ? "," : "\n");
	printf("powerloss[%s]: pending writes", mode);
	for (int f = 0; f < NFATES; f++)
		printf(" %s %" PRIu64 "%s", fate_name[f], rn->st.fate[f], f + 1 < NFATES ? "," : "\n");
	printf("powerloss[%s]: size changes lost in %" PRIu64 " states; no database file in %" PRIu64
	       ", temporary file left in %" PRIu64 "; lock file none %" PRIu64 ", stale %" PRIu64
	       ", garbage %" PRIu64 "; opened in the other mode %" PRIu64 "\n",
	       mode, rn->st.size_lost, rn->st.no_db, rn->st.tmp_left, rn->st.lock[L_NONE],
	       rn->st.lock[L_STALE], rn->st.lock[L_GARBAGE], rn->st.other_mode);
	printf("powerloss[%s]: recovered the last acknowledged commit in %" PRIu64
	       " states, a newer begun one in %" PRIu64 ", an older one (allowed: %ld) in %" PRIu64 "\n",
	       mode, rn->st.at_acked, rn->st.newer, slack, rn->st.older);
	fflush(stdout);

	for (int nm = 0; nm < NNAMES; nm++)
		free(rn->img[nm]);
	free(rn->alloc);
	free(rn);
	free(p1.weight);
	free(p1.sys);
	free(snap);
}

/* The durable mode (default flags): no acknowledged commit is lost. */
static void test_powerloss(void **state)
{
	(void)state;
	run_powerloss(0, states_budget() / 2, 0);
}

/* MMKV_NOMETASYNC: "an OS crash may lose the last commit" (mmkv.h), never
 * more, and never the database. A smaller share of the states. */
static void test_powerloss_nometasync(void **state)
{
	(void)state;
	run_powerloss(MMKV_NOMETASYNC, states_budget() / 12, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_powerloss, cleanup_dirs),
		cmocka_unit_test_teardown(test_powerloss_nometasync, cleanup_dirs),
	};
	int failed;

	/* Every state is a fresh file that is written and opened: on tmpfs that
	 * is cheap, on a busy disk it is not. TMPDIR, when set, wins. */
	if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK | X_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	base_seed = test_seed("test_powerloss");
	failed = RUN_BOTH_MODES("powerloss", tests);
	if (failed == 0) {
		printf("powerloss: %" PRIu64 " crash states in both write modes, %" PRIu64
		       " of them durable\n", total_states, durable_states);
		if (durable_states < states_budget())
			failed = 1;
	}
	return failed;
}
