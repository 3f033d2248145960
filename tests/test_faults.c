/*
 * test_faults.c - fault injection through the OS table (lib/os.h).
 *
 * Each test builds a "golden" database once (a few hundred keys with inline
 * and overflow values in the default database, and a named database, written
 * by three transactions so that the free tree has records to reuse). Then,
 * for one kind of fault and n = 1, 2, ..., it copies the golden file, opens
 * the copy, takes a read snapshot, replaces entries of mmkv__os with wrappers
 * that fail on the n-th call, runs one write transaction T (updates, deletes,
 * inserts, MMKV_RESERVE puts, cursor deletes, creating a named database,
 * overflow values, and enough new data that the file grows and, in the
 * default write mode, dirty pages spill), and judges the outcome. The loop
 * ends with the first n at which T runs without the fault firing. Both write
 * modes run (util.h, RUN_BOTH_MODES); with MMKV_WRITEMAP dirty pages go
 * through the map, so pwritev faults never fire there while msync and
 * fallocate faults do.
 *
 * Outcomes required, by kind of fault:
 *
 *   I/O error, short write then error, 0-byte write, ENOMEM, full disk,
 *   failed fstat or byte lock:
 *       the failing call returns the injected error (the commit frees the
 *       transaction itself) or, where the library can recover, T commits;
 *       no panic (except for a failed meta write: the meta may be torn);
 *       contents, read through this handle and after close + reopen, equal
 *       the model before T; a new write transaction commits; the checker
 *       passes; no file descriptor or mapping leaks.
 *   EINTR once, short write then success: T commits; contents after T.
 *   failed fsync/fdatasync/msync: the commit returns the error; later write
 *       transactions get MMKV_PANIC; reads work and see the state before or
 *       after T, never a mix; after reopen the same, and the checker passes.
 *   In every case the snapshot taken before T still reads the state before.
 *
 * Also: faults while opening a new or an existing database (the handle then
 * opens again), allocation failures on the read paths, and a commit past the
 * size limit (MMKV_MAP_FULL, nothing lost).
 *
 * Memory leaks are found by LeakSanitizer in --enable-sanitize builds, which
 * is also asked after every kind of fault so that a leak names its fault.
 * Without TMPDIR the databases live in /dev/shm when it exists: every run
 * writes and syncs a fresh copy, which is slow on a busy disk.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define HAVE_LSAN 1
#endif

#include "mmkv.h"
#include "os.h"
#include "util.h"

/* ================================================================ faults */

enum {
	FN_PWRITE = 1u << 0,
	FN_PWRITEV = 1u << 1,
	FN_FSYNC = 1u << 2,
	FN_FDATASYNC = 1u << 3,
	FN_MSYNC = 1u << 4,
	FN_FALLOCATE = 1u << 5,
	FN_FTRUNCATE = 1u << 6,
	FN_MMAP = 1u << 7,
	FN_MALLOC = 1u << 8,
	FN_CALLOC = 1u << 9,
	FN_REALLOC = 1u << 10,
	FN_RENAME = 1u << 11,
	FN_FSYNC_DIR = 1u << 12,
	FN_PREAD = 1u << 13,
	FN_FSTAT = 1u << 14,
	FN_OPEN = 1u << 15,
	FN_FCNTL_LOCK = 1u << 16,
};

typedef enum fault_mode {
	FAIL_ONCE,       /* the n-th call fails with err */
	FAIL_FROM,       /* every call from the n-th on fails: a full disk */
	SHORT_WRITE,     /* the n-th write does half and reports it; later ones work */
	SHORT_THEN_FAIL, /* the n-th write does half; the next call fails with err */
	ZERO_WRITE,      /* the n-th write reports 0 bytes written */
	EINTR_ONCE       /* the n-th call is interrupted before doing anything */
} fault_mode;

/* What T must come to when the fault fires. */
typedef enum outcome {
	OUT_FAIL,  /* the injected error, cleanly (or recovery: T commits) */
	OUT_OK,    /* T commits */
	OUT_PANIC  /* the commit fails with the error; the environment panics */
} outcome;

typedef struct fault_spec {
	const char *name;
	unsigned fns;    /* calls counted and failed: FN_* */
	fault_mode mode;
	int err;         /* errno injected */
	outcome out;
	unsigned no_fallocate; /* fallocate reports EOPNOTSUPP, so growth uses ftruncate */
} fault_spec;

static struct fault_state {
	bool armed;
	unsigned fns;
	fault_mode mode;
	int err;
	long n;
	long calls;
	bool fired;
	unsigned fired_fns;
	bool fail_next;        /* SHORT_THEN_FAIL: the write after the short one fails */
	bool no_fallocate;
} F;

static void fault_disarm(void)
{
	F.armed = false;
	F.fail_next = false;
}

static void fault_arm(const fault_spec *fs, long n)
{
	memset(&F, 0, sizeof(F));
	F.fns = fs->fns;
	F.mode = fs->mode;
	F.err = fs->err;
	F.n = n;
	F.no_fallocate = fs->no_fallocate != 0;
	F.armed = true;
}

/* Count a call to fn; true when this call is to fail. */
static bool fault_hit(unsigned fn)
{
	long c;

	if (!F.armed || !(F.fns & fn))
		return false;
	if (F.fail_next) {
		F.fail_next = false;
		return true; /* mode handled by the caller as a plain failure */
	}
	c = ++F.calls;
	if (F.mode == FAIL_FROM ? c >= F.n : c == F.n) {
		F.fired = true;
		F.fired_fns |= fn;
		return true;
	}
	return false;
}

/* The failure of a call that is not a write: EINTR or err. */
static int fail_call(void)
{
	errno = F.mode == EINTR_ONCE ? EINTR : F.err;
	return -1;
}

static ssize_t w_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	bool second = F.fail_next;

	if (!fault_hit(FN_PWRITE))
		return mmkv__os_default.pwrite(fd, buf, n, off);
	if (second) {
		errno = F.err;
		return -1;
	}
	switch (F.mode) {
	case SHORT_WRITE:
	case SHORT_THEN_FAIL:
		if (n > 1) {
			F.fail_next = F.mode == SHORT_THEN_FAIL;
			return mmkv__os_default.pwrite(fd, buf, n / 2, off);
		}
		errno = F.err ? F.err : EIO;
		return -1;
	case ZERO_WRITE:
		return 0;
	case EINTR_ONCE:
		errno = EINTR;
		return -1;
	default:
		errno = F.err;
		return -1;
	}
}

static ssize_t w_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	bool second = F.fail_next;

	if (!fault_hit(FN_PWRITEV))
		return mmkv__os_default.pwritev(fd, iov, cnt, off);
	if (second) {
		errno = F.err;
		return -1;
	}
	switch (F.mode) {
	case SHORT_WRITE:
	case SHORT_THEN_FAIL: {
		size_t total = 0, half, left;
		struct iovec *part = malloc((size_t)cnt * sizeof(*part));
		int k = 0;
		ssize_t r;

		for (int i = 0; i < cnt; i++)
			total += iov[i].iov_len;
		half = left = total / 2;
		if (part == NULL || half == 0) {
			free(part);
			errno = EIO;
			return -1;
		}
		for (int i = 0; i < cnt && left > 0; i++) {
			part[k] = iov[i];
			if (part[k].iov_len > left)
				part[k].iov_len = left;
			left -= part[k].iov_len;
			k++;
		}
		r = mmkv__os_default.pwritev(fd, part, k, off);
		free(part);
		F.fail_next = F.mode == SHORT_THEN_FAIL;
		return r;
	}
	case ZERO_WRITE:
		return 0;
	case EINTR_ONCE:
		errno = EINTR;
		return -1;
	default:
		errno = F.err;
		return -1;
	}
}

static int w_fsync(int fd)
{
	return fault_hit(FN_FSYNC) ? fail_call() : mmkv__os_default.fsync(fd);
}

static int w_fdatasync(int fd)
{
	return fault_hit(FN_FDATASYNC) ? fail_call() : mmkv__os_default.fdatasync(fd);
}

static int w_msync(void *addr, size_t len, int flags)
{
	return fault_hit(FN_MSYNC) ? fail_call() : mmkv__os_default.msync(addr, len, flags);
}

static int w_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (F.armed && F.no_fallocate) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return fault_hit(FN_FALLOCATE) ? fail_call() : mmkv__os_default.fallocate(fd, mode, off, len);
}

static int w_ftruncate(int fd, off_t len)
{
	return fault_hit(FN_FTRUNCATE) ? fail_call() : mmkv__os_default.ftruncate(fd, len);
}

static void *w_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (fault_hit(FN_MMAP)) {
		errno = F.err;
		return MAP_FAILED;
	}
	return mmkv__os_default.mmap(addr, len, prot, flags, fd, off);
}

static void *w_malloc(size_t n)
{
	if (fault_hit(FN_MALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return mmkv__os_default.malloc(n);
}

static void *w_calloc(size_t n, size_t size)
{
	if (fault_hit(FN_CALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return mmkv__os_default.calloc(n, size);
}

static void *w_realloc(void *p, size_t n)
{
	if (fault_hit(FN_REALLOC)) {
		errno = ENOMEM;
		return NULL;
	}
	return mmkv__os_default.realloc(p, n);
}

static int w_rename(const char *from, const char *to)
{
	return fault_hit(FN_RENAME) ? fail_call() : mmkv__os_default.rename(from, to);
}

static int w_fsync_dir(const char *path)
{
	return fault_hit(FN_FSYNC_DIR) ? fail_call() : mmkv__os_default.fsync_dir(path);
}

static ssize_t w_pread(int fd, void *buf, size_t n, off_t off)
{
	return fault_hit(FN_PREAD) ? fail_call() : mmkv__os_default.pread(fd, buf, n, off);
}

static int w_fstat(int fd, struct stat *st)
{
	return fault_hit(FN_FSTAT) ? fail_call() : mmkv__os_default.fstat(fd, st);
}

static int w_open(const char *path, int flags, mode_t mode)
{
	return fault_hit(FN_OPEN) ? fail_call() : mmkv__os_default.open(path, flags, mode);
}

static int w_fcntl_lock(int fd, int cmd, struct flock *fl)
{
	return fault_hit(FN_FCNTL_LOCK) ? fail_call() : mmkv__os_default.fcntl_lock(fd, cmd, fl);
}

static void fault_install(void)
{
	mmkv__os = mmkv__os_default;
	mmkv__os.pwrite = w_pwrite;
	mmkv__os.pwritev = w_pwritev;
	mmkv__os.fsync = w_fsync;
	mmkv__os.fdatasync = w_fdatasync;
	mmkv__os.msync = w_msync;
	mmkv__os.fallocate = w_fallocate;
	mmkv__os.ftruncate = w_ftruncate;
	mmkv__os.mmap = w_mmap;
	mmkv__os.malloc = w_malloc;
	mmkv__os.calloc = w_calloc;
	mmkv__os.realloc = w_realloc;
	mmkv__os.rename = w_rename;
	mmkv__os.fsync_dir = w_fsync_dir;
	mmkv__os.pread = w_pread;
	mmkv__os.fstat = w_fstat;
	mmkv__os.open = w_open;
	mmkv__os.fcntl_lock = w_fcntl_lock;
	fault_disarm();
}

/* ================================================================ model */

enum { DB_MAIN, DB_AUX, DB_NEW, NDB };
static const char *const db_name[NDB] = { NULL, "aux", "new" };
static const char db_prefix[NDB] = { 'm', 'a', 'n' };

#define MAXID 2000
#define VAL_MAX (64u * 1024u)

typedef struct rec {
	bool present;
	uint32_t len;
	uint64_t seed;
} rec;

/* What the database should hold. DB_MAIN always exists. */
typedef struct model {
	bool exists[NDB];
	rec r[NDB][MAXID];
} model;

enum { OP_PUT, OP_DEL, OP_CDEL };

typedef struct op {
	uint8_t db, kind;
	uint16_t id;
	uint32_t len;
	uint64_t seed;
} op;

typedef struct plan {
	op ops[1024];
	size_t n;
} plan;

static void plan_add(plan *pl, model *m, unsigned db, unsigned kind, unsigned id, uint32_t len,
                     uint64_t seed)
{
	op *o;

	assert_true(pl->n < sizeof(pl->ops) / sizeof(pl->ops[0]));
	assert_true(id < MAXID && len <= VAL_MAX);
	if (kind != OP_PUT && !m->r[db][id].present)
		return; /* deletes only of present keys */
	o = &pl->ops[pl->n++];
	*o = (op){ (uint8_t)db, (uint8_t)kind, (uint16_t)id, len, seed };
	m->exists[db] = true;
	if (kind == OP_PUT) {
		m->r[db][id] = (rec){ true, len, seed };
	} else {
		m->r[db][id].present = false;
	}
}

/* Small values mostly, an overflow value (> MMKV_NODE_MAX of 4 KiB pages)
 * every so often. */
static uint32_t value_len(test_rng *rng, unsigned overflow_pct, uint32_t big)
{
	if (rng_pct(rng, overflow_pct))
		return (uint32_t)rng_range(rng, 1100, big);
	return (uint32_t)rng_range(rng, 0, 200);
}

/* The golden database: three transactions, so that the free tree holds
 * records T can reuse. */
static void plan_base(plan pl[3], model *m)
{
	test_rng rng;

	rng_init(&rng, 1001);
	memset(m, 0, sizeof(*m));
	m->exists[DB_MAIN] = true;
	for (int i = 0; i < 3; i++)
		pl[i].n = 0;
	for (unsigned id = 0; id < 300; id++)
		plan_add(&pl[0], m, DB_MAIN, OP_PUT, id, value_len(&rng, 10, 20000), rng_next(&rng));
	for (unsigned id = 0; id < 80; id++)
		plan_add(&pl[0], m, DB_AUX, OP_PUT, id, value_len(&rng, 5, 9000), rng_next(&rng));
	for (unsigned id = 300; id < 400; id++)
		plan_add(&pl[1], m, DB_MAIN, OP_PUT, id, value_len(&rng, 10, 20000), rng_next(&rng));
	for (unsigned id = 0; id < 400; id += 13)
		plan_add(&pl[1], m, DB_MAIN, OP_DEL, id, 0, 0);
	for (unsigned id = 5; id < 400; id += 7)
		plan_add(&pl[2], m, DB_MAIN, OP_PUT, id, value_len(&rng, 10, 20000), rng_next(&rng));
	for (unsigned id = 1; id < 80; id += 9)
		plan_add(&pl[2], m, DB_AUX, OP_DEL, id, 0, 0);
}

/* T, applied to a copy of the base model. big: add enough overflow data
 * that the file must grow (and, in the default mode, pages spill). */
static void plan_change(plan *pl, model *m, bool big, uint64_t seed)
{
	test_rng rng;

	rng_init(&rng, seed);
	pl->n = 0;
	if (!big) {
		for (unsigned id = 2; id < 400; id += 41)
			plan_add(pl, m, DB_MAIN, OP_PUT, id, value_len(&rng, 15, 6000), rng_next(&rng));
		for (unsigned id = 3; id < 400; id += 53)
			plan_add(pl, m, DB_MAIN, OP_DEL, id, 0, 0);
		plan_add(pl, m, DB_MAIN, OP_PUT, 1500, 3000, rng_next(&rng));
		plan_add(pl, m, DB_AUX, OP_CDEL, 4, 0, 0);
		plan_add(pl, m, DB_AUX, OP_PUT, 200, 10, rng_next(&rng));
		for (unsigned id = 0; id < 4; id++)
			plan_add(pl, m, DB_NEW, OP_PUT, id, value_len(&rng, 25, 5000), rng_next(&rng));
		return;
	}
	for (unsigned id = 1; id < 400; id += 6)
		plan_add(pl, m, DB_MAIN, OP_PUT, id, value_len(&rng, 15, 20000), rng_next(&rng));
	for (unsigned id = 2; id < 400; id += 9)
		plan_add(pl, m, DB_MAIN, OP_DEL, id, 0, 0);
	for (unsigned id = 400; id < 460; id++)
		plan_add(pl, m, DB_MAIN, OP_PUT, id, value_len(&rng, 25, 12000), rng_next(&rng));
	/* New data well past the slack of the file: it grows. */
	for (unsigned id = 1000; id < 1040; id++)
		plan_add(pl, m, DB_MAIN, OP_PUT, id, 30000 + id, rng_next(&rng));
	for (unsigned id = 2; id < 80; id += 5)
		plan_add(pl, m, DB_AUX, OP_CDEL, id, 0, 0);
	for (unsigned id = 80; id < 100; id++)
		plan_add(pl, m, DB_AUX, OP_PUT, id, value_len(&rng, 10, 9000), rng_next(&rng));
	for (unsigned id = 0; id < 30; id++)
		plan_add(pl, m, DB_NEW, OP_PUT, id, value_len(&rng, 10, 9000), rng_next(&rng));
}

/* ============================================================ database */

static unsigned char valbuf[VAL_MAX];

static size_t make_key(char *buf, unsigned db, unsigned id)
{
	return (size_t)sprintf(buf, "%c%05u", db_prefix[db], id);
}

enum { ST_BEGIN, ST_OPS, ST_COMMIT };

/* Run the plan as one write transaction. Returns the first error (the
 * transaction is then gone: aborted here, or freed by the commit). */
static int run_plan(mmkv_env *env, const plan *pl, int *stage)
{
	mmkv_dbi dbi[NDB] = { 0 };
	bool need[NDB] = { true, false, false };
	mmkv_txn *txn;
	int rc;

	for (size_t i = 0; i < pl->n; i++)
		need[pl->ops[i].db] = true;
	*stage = ST_BEGIN;
	rc = mmkv_txn_begin(env, NULL, 0, &txn);
	if (rc)
		return rc;
	*stage = ST_OPS;
	for (unsigned d = 0; d < NDB; d++) {
		if (need[d] && (rc = mmkv_dbi_open(txn, db_name[d], MMKV_CREATE, &dbi[d])) != 0)
			goto fail;
	}
	for (size_t i = 0; i < pl->n; i++) {
		const op *o = &pl->ops[i];
		char kb[16];
		mmkv_val key = { make_key(kb, o->db, o->id), kb };

		if (o->kind == OP_PUT) {
			mmkv_val val = { o->len, valbuf };

			if (i % 4 == 0) {
				/* Reserve, then fill in place. */
				rc = mmkv_put(txn, dbi[o->db], &key, &val, MMKV_RESERVE);
				if (rc == 0)
					pattern_fill(o->seed, val.data, o->len);
			} else {
				pattern_fill(o->seed, valbuf, o->len);
				rc = mmkv_put(txn, dbi[o->db], &key, &val, 0);
			}
		} else if (o->kind == OP_DEL) {
			rc = mmkv_del(txn, dbi[o->db], &key, NULL);
		} else {
			mmkv_cursor *cur;

			rc = mmkv_cursor_open(txn, dbi[o->db], &cur);
			if (rc == 0) {
				rc = mmkv_cursor_get(cur, &key, NULL, MMKV_SET);
				if (rc == 0)
					rc = mmkv_cursor_del(cur, 0);
				mmkv_cursor_close(cur);
			}
		}
		if (rc)
			goto fail;
	}
	*stage = ST_COMMIT;
	return mmkv_txn_commit(txn);
fail:
	mmkv_txn_abort(txn);
	return rc;
}

/* Compare one database with the model by a full scan. */
static bool scan_db(mmkv_txn *txn, mmkv_dbi dbi, unsigned db, const model *m, char *why, size_t cap)
{
	mmkv_cursor *cur;
	mmkv_val k, v;
	unsigned next = 0; /* ids below were seen or checked absent */
	uint64_t count = 0, present = 0;
	mmkv_stat st;
	int rc;

	if ((rc = mmkv_cursor_open(txn, dbi, &cur)) != 0) {
		snprintf(why, cap, "cursor_open(%c): %s", db_prefix[db], mmkv_strerror(rc));
		return false;
	}
	for (rc = mmkv_cursor_get(cur, &k, &v, MMKV_FIRST); rc == 0;
	     rc = mmkv_cursor_get(cur, &k, &v, MMKV_NEXT)) {
		char kb[16], copy[8];
		unsigned id;

		if (k.size == 6) {
			memcpy(copy, k.data, 6);
			copy[6] = '\0';
		}
		if (k.size != 6 || copy[0] != db_prefix[db] || sscanf(copy + 1, "%5u", &id) != 1 ||
		    id >= MAXID || id < next) {
			snprintf(why, cap, "db %c: unexpected key %.*s", db_prefix[db], (int)k.size,
			         (char *)k.data);
			goto bad;
		}
		make_key(kb, db, id);
		if (memcmp(kb, k.data, 6) != 0) {
			snprintf(why, cap, "db %c: malformed key %.6s", db_prefix[db], (char *)k.data);
			goto bad;
		}
		for (; next < id; next++)
			if (m->r[db][next].present) {
				snprintf(why, cap, "db %c: key %u missing", db_prefix[db], next);
				goto bad;
			}
		const rec *r = &m->r[db][id];
		if (!r->present) {
			snprintf(why, cap, "db %c: key %u present, expected absent", db_prefix[db], id);
			goto bad;
		}
		if (v.size != r->len || !pattern_equal(r->seed, v.data, v.size)) {
			snprintf(why, cap, "db %c: key %u has a %zu-byte value, expected %u other bytes",
			         db_prefix[db], id, v.size, r->len);
			goto bad;
		}
		next = id + 1;
		count++;
	}
	if (rc != MMKV_NOTFOUND) {
		snprintf(why, cap, "db %c: scan: %s", db_prefix[db], mmkv_strerror(rc));
		goto bad;
	}
	for (; next < MAXID; next++)
		if (m->r[db][next].present) {
			snprintf(why, cap, "db %c: key %u missing", db_prefix[db], next);
			goto bad;
		}
	mmkv_cursor_close(cur);
	for (unsigned id = 0; id < MAXID; id++)
		present += m->r[db][id].present;
	rc = mmkv_dbi_stat(txn, dbi, &st);
	if (rc || st.entries != count || count != present) {
		snprintf(why, cap, "db %c: stat %s, %" PRIu64 " entries, %" PRIu64 " scanned, %" PRIu64
		         " expected", db_prefix[db], mmkv_strerror(rc), st.entries, count, present);
		return false;
	}
	return true;
bad:
	mmkv_cursor_close(cur);
	return false;
}

/* Whether the transaction's view holds exactly the model. */
static bool view_matches(mmkv_txn *txn, const model *m, char *why, size_t cap)
{
	bool ok = true;
	int rc;

	for (unsigned d = 0; d < NDB && ok; d++) {
		mmkv_dbi dbi;

		rc = mmkv_dbi_open(txn, db_name[d], 0, &dbi);
		if (!m->exists[d]) {
			if (rc != MMKV_NOTFOUND) {
				snprintf(why, cap, "db %c: open returned %s, expected NOTFOUND",
				         db_prefix[d], mmkv_strerror(rc));
				ok = false;
			}
			continue;
		}
		if (rc) {
			snprintf(why, cap, "db %c: open: %s", db_prefix[d], mmkv_strerror(rc));
			ok = false;
			continue;
		}
		ok = scan_db(txn, dbi, d, m, why, cap);
	}
	return ok;
}

/* Whether the newest snapshot holds exactly the model. */
static bool contents_match(mmkv_env *env, const model *m, char *why, size_t cap)
{
	mmkv_txn *txn;
	bool ok;
	int rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);

	if (rc) {
		snprintf(why, cap, "read txn: %s", mmkv_strerror(rc));
		return false;
	}
	ok = view_matches(txn, m, why, cap);
	mmkv_txn_abort(txn);
	return ok;
}

static void expect_contents(mmkv_env *env, const model *m, const char *ctx)
{
	char why[256];

	if (!contents_match(env, m, why, sizeof(why)))
		fail_msg("%s: %s", ctx, why);
}

/* ======================================================= environment */

static mmkv_env *open_db(const char *path, uint64_t mapsize)
{
	mmkv_env *env = env_new();

	assert_ok(mmkv_env_set_maxdbs(env, 4));
	/* The smallest budget (64 pages): T spills in the default mode. */
	assert_ok(mmkv_env_set_txn_memory(env, 1));
	if (mapsize)
		assert_ok(mmkv_env_set_mapsize(env, mapsize));
	env_open_ok(env, path, 0);
	return env;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Whether a mapping of a file whose name contains name is left. */
static bool mapped(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	bool found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, name) != NULL;
	fclose(f);
	return found;
}

/* Per test: the fixture, the golden copy and the models. */
typedef struct ctx {
	test_fixture *fx;
	char golden[PATH_MAX];
	char lockpath[PATH_MAX + 8];
	uint64_t mapsize;
	model base;        /* the golden database */
	model before, after;
	plan base_plans[3];
	plan change;
	uint64_t follow_seed;
} ctx;

/* The context of the running test, freed by the teardown. A test that did
 * not complete leaves allocations behind that would be blamed on the faults
 * of later tests, so leak checks stop then. */
static ctx *current_ctx;
static bool test_completed, leaks_tainted;

static void build_golden(ctx *c, uint64_t mapsize)
{
	mmkv_env *env;
	int stage;

	test_dir_file(&c->fx->dir, "golden.mmkv", c->golden, sizeof(c->golden));
	snprintf(c->lockpath, sizeof(c->lockpath), "%s-lock", c->fx->path);
	c->mapsize = mapsize;
	plan_base(c->base_plans, &c->base);
	env = open_db(c->golden, mapsize);
	c->fx->env = env;
	for (int i = 0; i < 3; i++)
		assert_ok(run_plan(env, &c->base_plans[i], &stage));
	expect_contents(env, &c->base, "golden");
	check_env(env);
	mmkv_env_close(env);
	c->fx->env = NULL;
}

static ctx *ctx_new(void **state, bool big, uint64_t mapsize)
{
	ctx *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	current_ctx = c;
	c->fx = *state;
	build_golden(c, mapsize);
	c->before = c->base;
	c->after = c->base;
	plan_change(&c->change, &c->after, big, 2002);
	c->follow_seed = 3003;
	return c;
}

/* A fresh copy of the golden database at fx->path, opened. */
static mmkv_env *open_work(ctx *c)
{
	unlink(c->lockpath);
	copy_file(c->golden, c->fx->path);
	c->fx->env = open_db(c->fx->path, c->mapsize);
	return c->fx->env;
}

static void close_work(ctx *c)
{
	mmkv_env_close(c->fx->env);
	c->fx->env = NULL;
}

/* One small write transaction after the fault; it updates m. */
static int follow_up(ctx *c, mmkv_env *env, model *m)
{
	plan pl = { .n = 0 };
	model next = *m;
	int stage, rc;

	plan_add(&pl, &next, DB_MAIN, OP_PUT, 1999, 100, c->follow_seed++);
	plan_add(&pl, &next, DB_AUX, OP_PUT, 1999, 2000, c->follow_seed++);
	rc = run_plan(env, &pl, &stage);
	if (rc == 0)
		*m = next;
	return rc;
}

/* ====================================================== the fault loop */

typedef struct tally {
	long runs, fired, failed, recovered, panicked, meta_panics;
	long failed_at[3]; /* by stage: begin, operations, commit */
} tally;

static int expected_error(const fault_spec *fs)
{
	if (fs->mode == ZERO_WRITE)
		return ENOSPC;
	if (fs->fns & (FN_MALLOC | FN_CALLOC | FN_REALLOC))
		return ENOMEM;
	return fs->err;
}

/* After T failed cleanly (no panic): this handle, a follow-up transaction,
 * and a reopened handle all see the state before T. */
static void judge_clean_failure(ctx *c, mmkv_env *env, const fault_spec *fs, long n, model *m)
{
	char where[160];
	int rc;

	snprintf(where, sizeof(where), "%s n=%ld: after the failure", fs->name, n);
	expect_contents(env, &c->before, where);
	check_env(env);
	*m = c->before;
	if (fs->mode == FAIL_FROM) {
		/* The disk is still full: a small transaction fits in the file or
		 * fails cleanly, like T. */
		fault_arm(fs, 1);
		rc = follow_up(c, env, m);
		fault_disarm();
		if (rc != 0 && rc != expected_error(fs))
			fail_msg("%s n=%ld: follow-up on the full disk returned %s", fs->name, n,
			         mmkv_strerror(rc));
		expect_contents(env, m, where);
	}
	rc = follow_up(c, env, m);
	if (rc)
		fail_msg("%s n=%ld: write transaction after the failure returned %s", fs->name, n,
		         mmkv_strerror(rc));
	snprintf(where, sizeof(where), "%s n=%ld: follow-up committed", fs->name, n);
	expect_contents(env, m, where);
}

/* After a failed sync: no more writes, reads see the state before or after
 * T. Returns whether T is visible. */
static bool judge_panic(ctx *c, mmkv_env *env, const fault_spec *fs, long n, model *m)
{
	bool after = false;
	char why[256], where[160];
	mmkv_txn *txn = NULL;

	assert_rc(mmkv_txn_begin(env, NULL, 0, &txn), MMKV_PANIC);
	assert_null(txn);
	assert_rc(mmkv_env_sync(env, 1), MMKV_PANIC);
	/* Reads still work, and see one state or the other. */
	if (contents_match(env, &c->before, why, sizeof(why)))
		*m = c->before;
	else if ((after = contents_match(env, &c->after, why, sizeof(why))))
		*m = c->after;
	else
		fail_msg("%s n=%ld: after the panic reads see neither state (%s)", fs->name, n, why);
	snprintf(where, sizeof(where), "%s n=%ld: in panic", fs->name, n);
	expect_contents(env, m, where);
	check_env(env);
	return after;
}

static void run_fault(ctx *c, const fault_spec *fs, tally *t)
{
	for (long n = 1;; n++) {
		char where[160], why[256];
		model m;
		bool fired, meta, panicked = false;
		int rc, stage, fds;
		uint64_t size0;
		mmkv_env *env;
		mmkv_txn *reader;

		if (n > 20000)
			fail_msg("%s: the fault still fires at n=%ld", fs->name, n);
		fds = count_fds();
		env = open_work(c);
		size0 = file_size(c->fx->path);
		/* A reader of the state before T, whatever happens to T. */
		reader = txn_read(env);
		fault_arm(fs, n);
		rc = run_plan(env, &c->change, &stage);
		fired = F.fired;
		meta = (F.fired_fns & FN_PWRITE) != 0;
		fault_disarm();
		t->runs++;
		t->fired += fired;
		if (!view_matches(reader, &c->before, why, sizeof(why)))
			fail_msg("%s n=%ld: a reader of the snapshot before T sees: %s", fs->name, n, why);
		mmkv_txn_abort(reader);

		if (!fired || rc == 0) {
			/* Nothing happened, or the library recovered. */
			if (rc)
				fail_msg("%s n=%ld: no fault fired, yet %s at stage %d", fs->name, n,
				         mmkv_strerror(rc), stage);
			if (fired)
				t->recovered++;
			if (!fired && (fs->fns & (FN_FALLOCATE | FN_FTRUNCATE)) &&
			    file_size(c->fx->path) <= size0)
				fail_msg("%s: T did not grow the file", fs->name);
			if (fired && fs->out == OUT_PANIC)
				fail_msg("%s n=%ld: the sync failed but the commit succeeded", fs->name, n);
			m = c->after;
			snprintf(where, sizeof(where), "%s n=%ld: committed", fs->name, n);
			expect_contents(env, &m, where);
			check_env(env);
			assert_ok(follow_up(c, env, &m));
		} else {
			if (fs->out == OUT_OK)
				fail_msg("%s n=%ld: T must commit, got %s at stage %d", fs->name, n,
				         mmkv_strerror(rc), stage);
			if (rc != expected_error(fs))
				fail_msg("%s n=%ld: T failed with %s at stage %d, expected %s", fs->name, n,
				         mmkv_strerror(rc), stage, mmkv_strerror(expected_error(fs)));
			t->failed++;
			t->failed_at[stage]++;
			if (fs->out == OUT_PANIC) {
				assert_int_equal(stage, ST_COMMIT);
				t->panicked++;
				panicked = true;
				judge_panic(c, env, fs, n, &m);
			} else {
				mmkv_txn *txn = NULL;
				int brc = mmkv_txn_begin(env, NULL, 0, &txn);

				if (brc == MMKV_PANIC && meta) {
					/* The meta write failed: it may be torn on disk. */
					t->meta_panics++;
					panicked = true;
					if (judge_panic(c, env, fs, n, &m))
						fail_msg("%s n=%ld: the meta write failed, yet T is visible",
						         fs->name, n);
				} else {
					if (brc)
						fail_msg("%s n=%ld: after a clean failure, begin returned %s",
						         fs->name, n, mmkv_strerror(brc));
					mmkv_txn_abort(txn);
					judge_clean_failure(c, env, fs, n, &m);
				}
			}
		}
		close_work(c);
		if (mapped(c->fx->path))
			fail_msg("%s n=%ld: the data file is still mapped after close", fs->name, n);
		if (count_fds() != fds)
			fail_msg("%s n=%ld: %d file descriptors before, %d after close", fs->name, n, fds,
			         count_fds());

		/* Reopened: the same contents and a clean check; writable again
		 * after a panic (elsewhere a write was shown above already). */
		env = open_db(c->fx->path, c->mapsize);
		c->fx->env = env;
		snprintf(where, sizeof(where), "%s n=%ld: reopened", fs->name, n);
		expect_contents(env, &m, where);
		check_env(env);
		if (panicked || !fired) {
			if (follow_up(c, env, &m) != 0)
				fail_msg("%s n=%ld: write transaction after reopen failed", fs->name, n);
			expect_contents(env, &m, where);
		}
		close_work(c);
		if (!fired)
			break;
	}
}

static void leak_check(const char *name)
{
#ifdef HAVE_LSAN
	if (!leaks_tainted && __lsan_do_recoverable_leak_check())
		fail_msg("%s: memory leaked (see the LeakSanitizer report above)", name);
#else
	(void)name;
#endif
}

static void run_specs(void **state, const fault_spec *specs, size_t nspecs, bool big)
{
	ctx *c = ctx_new(state, big, 0);

	for (size_t i = 0; i < nspecs; i++) {
		tally t = { 0 };

		run_fault(c, &specs[i], &t);
		printf("    %-30s %s: %3ld runs, fired %3ld, failed %3ld (in begin %ld, ops %ld, "
		       "commit %ld; panic %ld, meta %ld), recovered %ld\n",
		       specs[i].name, test_env_flags ? "writemap" : "default ", t.runs, t.fired,
		       t.failed, t.failed_at[ST_BEGIN], t.failed_at[ST_OPS], t.failed_at[ST_COMMIT],
		       t.panicked, t.meta_panics, t.recovered);
		leak_check(specs[i].name);
	}
	test_completed = true;
}

/* ============================================================= fixtures */

static int setup(void **state)
{
	int rc = tu_setup(state);

	fault_install();
	test_completed = false;
	return rc;
}

static int teardown(void **state)
{
	fault_disarm();
	mmkv__os = mmkv__os_default;
	if (!test_completed)
		leaks_tainted = true;
	free(current_ctx);
	current_ctx = NULL;
	return tu_teardown(state);
}

/* ================================================================ tests */

/* Data pages: pwritev at commit and at spill (default mode only). */
static void test_pwritev_faults(void **state)
{
	static const fault_spec specs[] = {
		{ "pwritev EIO", FN_PWRITEV, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "pwritev ENOSPC", FN_PWRITEV, FAIL_ONCE, ENOSPC, OUT_FAIL, 0 },
		{ "pwritev half, then ENOSPC", FN_PWRITEV, SHORT_THEN_FAIL, ENOSPC, OUT_FAIL, 0 },
		{ "pwritev writes 0 bytes", FN_PWRITEV, ZERO_WRITE, 0, OUT_FAIL, 0 },
		{ "pwritev half, then on", FN_PWRITEV, SHORT_WRITE, 0, OUT_OK, 0 },
		{ "pwritev EINTR", FN_PWRITEV, EINTR_ONCE, 0, OUT_OK, 0 },
	};

	run_specs(state, specs, sizeof(specs) / sizeof(specs[0]), true);
}

/* The meta page: pwrite at commit. */
static void test_pwrite_faults(void **state)
{
	static const fault_spec specs[] = {
		{ "pwrite EIO", FN_PWRITE, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "pwrite ENOSPC", FN_PWRITE, FAIL_ONCE, ENOSPC, OUT_FAIL, 0 },
		{ "pwrite half, then EIO", FN_PWRITE, SHORT_THEN_FAIL, EIO, OUT_FAIL, 0 },
		{ "pwrite writes 0 bytes", FN_PWRITE, ZERO_WRITE, 0, OUT_FAIL, 0 },
		{ "pwrite half, then on", FN_PWRITE, SHORT_WRITE, 0, OUT_OK, 0 },
		{ "pwrite EINTR", FN_PWRITE, EINTR_ONCE, 0, OUT_OK, 0 },
	};

	run_specs(state, specs, sizeof(specs) / sizeof(specs[0]), false);
}

/* File growth on a full disk: "a full disk fails that commit cleanly and
 * loses nothing". */
static void test_growth_faults(void **state)
{
	static const fault_spec specs[] = {
		{ "fallocate ENOSPC (disk full)", FN_FALLOCATE, FAIL_FROM, ENOSPC, OUT_FAIL, 0 },
		{ "fallocate ENOSPC once", FN_FALLOCATE, FAIL_ONCE, ENOSPC, OUT_FAIL, 0 },
		{ "fallocate EIO once", FN_FALLOCATE, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "fallocate EINTR", FN_FALLOCATE, EINTR_ONCE, 0, OUT_OK, 0 },
		{ "ftruncate ENOSPC (disk full)", FN_FTRUNCATE, FAIL_FROM, ENOSPC, OUT_FAIL, 1 },
		{ "ftruncate EINTR", FN_FTRUNCATE, EINTR_ONCE, 0, OUT_OK, 1 },
	};

	run_specs(state, specs, sizeof(specs) / sizeof(specs[0]), true);
}

static void test_sync_faults(void **state)
{
	static const fault_spec specs[] = {
		{ "fsync/fdatasync EIO", FN_FSYNC | FN_FDATASYNC, FAIL_ONCE, EIO, OUT_PANIC, 0 },
		{ "fdatasync ENOSPC", FN_FDATASYNC, FAIL_ONCE, ENOSPC, OUT_PANIC, 0 },
		{ "msync EIO", FN_MSYNC, FAIL_ONCE, EIO, OUT_PANIC, 0 },
		{ "fsync/fdatasync EINTR", FN_FSYNC | FN_FDATASYNC, EINTR_ONCE, 0, OUT_OK, 0 },
		{ "msync EINTR", FN_MSYNC, EINTR_ONCE, 0, OUT_OK, 0 },
	};

	run_specs(state, specs, sizeof(specs) / sizeof(specs[0]), true);
}

static void test_alloc_faults(void **state)
{
	static const fault_spec specs[] = {
		{ "malloc ENOMEM", FN_MALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
		{ "calloc ENOMEM", FN_CALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
		{ "realloc ENOMEM", FN_REALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
	};

	run_specs(state, specs, sizeof(specs) / sizeof(specs[0]), true);
}

/* The other calls a write transaction makes: the size of the file (at
 * begin and before growth) and the writer's byte lock. */
static void test_other_faults(void **state)
{
	static const fault_spec specs[] = {
		{ "fstat EIO", FN_FSTAT, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "byte lock ENOLCK", FN_FCNTL_LOCK, FAIL_ONCE, ENOLCK, OUT_FAIL, 0 },
		{ "byte lock EINTR", FN_FCNTL_LOCK, EINTR_ONCE, 0, OUT_OK, 0 },
		{ "pread EIO", FN_PREAD, FAIL_ONCE, EIO, OUT_FAIL, 0 },
	};

	run_specs(state, specs, sizeof(specs) / sizeof(specs[0]), true);
}

/* Reading with allocations failing: every call returns ENOMEM or works,
 * and nothing leaks. */
static int read_everything(mmkv_env *env)
{
	mmkv_txn *txn;
	mmkv_cursor *cur;
	mmkv_dbi main, aux;
	mmkv_val k, v, key = { 6, "m00005" };
	mmkv_check_result res;
	mmkv_envinfo info;
	mmkv_stat st;
	int rc;

	rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc)
		return rc;
	rc = mmkv_dbi_open(txn, NULL, 0, &main);
	if (rc == 0)
		rc = mmkv_dbi_open(txn, "aux", 0, &aux);
	if (rc == 0)
		rc = mmkv_get(txn, main, &key, &v);
	if (rc == 0 && (rc = mmkv_cursor_open(txn, aux, &cur)) == 0) {
		while ((rc = mmkv_cursor_get(cur, &k, &v, MMKV_NEXT)) == 0)
			;
		if (rc == MMKV_NOTFOUND)
			rc = 0;
		mmkv_cursor_close(cur);
	}
	if (rc == 0)
		mmkv_txn_reset(txn);
	if (rc == 0)
		rc = mmkv_txn_renew(txn);
	mmkv_txn_abort(txn);
	if (rc == 0)
		rc = mmkv_env_check(env, NULL, NULL, &res);
	if (rc == 0)
		rc = mmkv_env_info(env, &info);
	if (rc == 0)
		rc = mmkv_env_stat(env, &st);
	return rc;
}

static void test_read_alloc_faults(void **state)
{
	static const fault_spec specs[] = {
		{ "read: malloc ENOMEM", FN_MALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
		{ "read: calloc ENOMEM", FN_CALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
		{ "read: realloc ENOMEM", FN_REALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
	};
	ctx *c = ctx_new(state, false, 0);
	mmkv_env *env = open_work(c);

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		long n;

		for (n = 1;; n++) {
			bool fired;
			int rc;

			fault_arm(&specs[i], n);
			rc = read_everything(env);
			fired = F.fired;
			fault_disarm();
			if (rc != 0 && (!fired || rc != ENOMEM))
				fail_msg("%s n=%ld: returned %s", specs[i].name, n, mmkv_strerror(rc));
			if (!fired)
				break;
		}
		expect_contents(env, &c->base, specs[i].name);
		check_env(env);
		printf("    %-34s %s: %ld runs\n", specs[i].name,
		       test_env_flags ? "writemap" : "default ", n);
		leak_check(specs[i].name);
	}
	close_work(c);
	test_completed = true;
}

/* A size limit reached by a commit: MMKV_MAP_FULL, nothing lost. */
static void test_map_full(void **state)
{
	ctx *c = ctx_new(state, true, 2u << 20);
	mmkv_env *env;
	model m;
	plan huge = { .n = 0 };
	int rc, stage;

	/* 4 MiB of new values in a 2 MiB database. */
	m = c->base;
	for (unsigned id = 1100; id < 1200; id++)
		plan_add(&huge, &m, DB_MAIN, OP_PUT, id, 40000, id);
	env = open_work(c);
	rc = run_plan(env, &huge, &stage);
	if (rc != MMKV_MAP_FULL)
		fail_msg("a transaction past the size limit returned %s at stage %d", mmkv_strerror(rc),
		         stage);
	m = c->base;
	expect_contents(env, &m, "after MAP_FULL");
	check_env(env);
	assert_ok(follow_up(c, env, &m));
	expect_contents(env, &m, "follow-up after MAP_FULL");
	close_work(c);
	env = open_db(c->fx->path, c->mapsize);
	c->fx->env = env;
	expect_contents(env, &m, "reopened after MAP_FULL");
	check_env(env);
	close_work(c);
	test_completed = true;
}

/* Faults while opening: a new database (created through a temporary file)
 * and an existing one. A failed open returns the error, leaks neither file
 * descriptors nor mappings, and the same handle then opens. */
static void test_open_faults(void **state)
{
	static const fault_spec specs[] = {
		{ "open: mmap ENOMEM", FN_MMAP, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
		{ "open: malloc ENOMEM", FN_MALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
		{ "open: calloc ENOMEM", FN_CALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
		{ "open: realloc ENOMEM", FN_REALLOC, FAIL_ONCE, ENOMEM, OUT_FAIL, 0 },
		{ "open: fallocate ENOSPC", FN_FALLOCATE, FAIL_FROM, ENOSPC, OUT_FAIL, 0 },
		{ "open: ftruncate EIO", FN_FTRUNCATE, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "open: pwrite EIO", FN_PWRITE, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "open: pwrite writes 0 bytes", FN_PWRITE, ZERO_WRITE, 0, OUT_FAIL, 0 },
		{ "open: fsync EIO", FN_FSYNC, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "open: rename EIO", FN_RENAME, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "open: fsync_dir EIO", FN_FSYNC_DIR, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "open: fsync EINTR", FN_FSYNC, EINTR_ONCE, 0, OUT_OK, 0 },
		{ "open: open EMFILE", FN_OPEN, FAIL_ONCE, EMFILE, OUT_FAIL, 0 },
		{ "open: open EINTR", FN_OPEN, EINTR_ONCE, 0, OUT_OK, 0 },
		{ "open: fstat EIO", FN_FSTAT, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "open: pread EIO", FN_PREAD, FAIL_ONCE, EIO, OUT_FAIL, 0 },
		{ "open: pread EINTR", FN_PREAD, EINTR_ONCE, 0, OUT_OK, 0 },
		{ "open: byte lock ENOLCK", FN_FCNTL_LOCK, FAIL_ONCE, ENOLCK, OUT_FAIL, 0 },
	};
	ctx *c = ctx_new(state, false, 0);
	model empty;

	memset(&empty, 0, sizeof(empty));
	empty.exists[DB_MAIN] = true;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		const fault_spec *fs = &specs[i];

		for (int existing = 0; existing < 2; existing++) {
			const model *want = existing ? &c->base : &empty;
			long n;

			for (n = 1;; n++) {
				char where[160];
				mmkv_env *env;
				int rc, fds;
				bool fired;

				if (n > 1000)
					fail_msg("%s: the fault still fires at n=%ld", fs->name, n);
				unlink(c->lockpath);
				unlink(c->fx->path);
				if (existing)
					copy_file(c->golden, c->fx->path);
				fds = count_fds();
				env = env_new();
				c->fx->env = env;
				assert_ok(mmkv_env_set_maxdbs(env, 4));
				fault_arm(fs, n);
				rc = mmkv_env_open(env, c->fx->path, test_env_flags, 0644);
				fired = F.fired;
				fault_disarm();
				snprintf(where, sizeof(where), "%s (%s) n=%ld", fs->name,
				         existing ? "existing" : "new", n);
				if (rc) {
					if (!fired)
						fail_msg("%s: open failed with %s, no fault fired", where,
						         mmkv_strerror(rc));
					if (fs->out == OUT_OK)
						fail_msg("%s: open must succeed, got %s", where, mmkv_strerror(rc));
					if (rc != expected_error(fs))
						fail_msg("%s: open returned %s, expected %s", where,
						         mmkv_strerror(rc), mmkv_strerror(expected_error(fs)));
					if (mapped(c->fx->path))
						fail_msg("%s: a file is still mapped after the failed open", where);
					/* The handle may be opened again. */
					rc = mmkv_env_open(env, c->fx->path, test_env_flags, 0644);
					if (rc)
						fail_msg("%s: opening again returned %s", where, mmkv_strerror(rc));
				}
				expect_contents(env, want, where);
				check_env(env);
				close_work(c);
				if (mapped(c->fx->path))
					fail_msg("%s: a file is still mapped after close", where);
				if (count_fds() != fds)
					fail_msg("%s: %d file descriptors before, %d after close", where, fds,
					         count_fds());
				if (!fired)
					break;
			}
			printf("    %-34s %s %s: %ld runs\n", fs->name,
			       test_env_flags ? "writemap" : "default ", existing ? "existing" : "new", n);
		}
		leak_check(fs->name);
	}
	test_completed = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pwritev_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pwrite_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_growth_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_alloc_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_faults, setup, teardown),
	};

	/* Each run writes a fresh copy of the database and syncs it: on a
	 * disk that is slow, on tmpfs it is not. TMPDIR, when set, wins. */
	if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK | X_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	watchdog(600);
	return RUN_BOTH_MODES("faults", tests);
}
