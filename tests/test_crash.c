/*
 * test_crash.c - process crashes: a writer killed with SIGKILL at random
 * moments and at every I/O call of scripted workloads; after each kill the
 * database opens, passes the checker and holds exactly the last
 * acknowledged commit or the one after it.
 *
 * The workload is a function of (seed, commit number k) alone: commit k
 * applies a batch of puts and deletes chosen by a PRNG seeded with both
 * (commit_ops), so the parent rebuilds the model of any commit without data
 * from the child. The kind of a commit follows k modulo PERIOD: ordinary
 * batches (inline values, some overflow values > page/4, deletes) in the
 * default database and, while it exists, in the named database "aux";
 * every fourth commit also writes large overflow values (the file grows and,
 * with the smallest memory budget, dirty pages spill); k % PERIOD == 0
 * deletes most keys (pages merge, many are freed), 1 creates "aux" and 13
 * drops it. Every commit stores k under the key "commit", so a reader of the
 * database knows which model to compare it with: the whole contents (a
 * cursor scan of each database, the list of named databases, the entry
 * counts) must equal that model exactly.
 *
 * A writer child opens the database, checks that it holds the commit the
 * parent expects, then commits k + 1, k + 2, ... and writes each k to a pipe
 * after mmkv_txn_commit returned 0. It also keeps, in memory shared with the
 * parent (plain atomics, which SIGKILL cannot tear), its phase (opening,
 * building a transaction, inside mmkv_txn_commit, acknowledging, closing)
 * and the last commit that returned. After the kill the parent reads every
 * ack (A, the last one; they must be consecutive), opens the database
 * itself, runs the checker, reads "commit" = F and requires:
 *
 *   - F == A or F == A + 1; more precisely, with C the last commit that
 *     returned 0 (A <= C <= A + 1): F == C, or F == C + 1 when the kill
 *     landed inside mmkv_txn_commit (a returned commit is never lost;
 *     one in flight may or may not be there, never half);
 *   - a kill before the child's first commit changes nothing;
 *   - the contents equal model(F) exactly; the data file, if the kill came
 *     while the database was being created, is absent or complete.
 *
 * Tests (each in both write modes, util.h RUN_BOTH_MODES):
 *
 *   random_kills   the writer is killed at a random moment, over and over:
 *                  a random delay after its start, or, mostly, after its
 *                  first or second acknowledged commit (so that the kills
 *                  reach every phase however fast the build is). Each round
 *                  continues from the database the previous round left
 *                  (recovery from recovery), sometimes with MMKV_NOSYNC or
 *                  the smallest memory budget; now and then the database is
 *                  deleted and created anew. The data file must stay small:
 *                  space taken by killed commits is used again.
 *   io_kills       the child replaces entries of mmkv__os (open, pwrite,
 *                  pwritev, fsync, fdatasync, msync, ftruncate, fallocate,
 *                  mmap, rename, unlink, fsync_dir, fcntl locks) with
 *                  wrappers that count calls and SIGKILL the process just
 *                  before call N, for N = 1, 2, ... until a run completes
 *                  without reaching N. Counting starts before mmkv_env_open,
 *                  so every point of the open path is hit as well. Three
 *                  workloads: creating a database and its first commits
 *                  (with a named database); a commit that grows the file
 *                  with overflow values; a mass delete, the creation of a
 *                  named database and a commit that reuses the freed pages.
 *   open_kills     one or two children open and close the database over
 *                  and over (sometimes read-only, sometimes creating it,
 *                  sometimes with the lock file deleted, or left from the
 *                  previous database) and are killed at random, one after
 *                  the other (the second may have to take over a lock file
 *                  the first left half initialised); the contents must not
 *                  change at all.
 *   reader_kills   reader children keep snapshots (each must equal
 *                  model(k) for its own "commit" k, again when looked at
 *                  later, and k never goes back) while the writer is killed
 *                  at random; after each kill the parent checks the
 *                  database, then commits itself (a dead writer must not
 *                  block the next one); readers are killed too, and their
 *                  slots must be cleared by mmkv_reader_check.
 *
 * Nothing is asserted on time: random sleeps only choose the moment of a
 * kill. The seed is printed; MMKV_TEST_SEED=N reproduces the workloads and
 * the kill schedule (not the exact interleaving). MMKV_CRASH_KILLS (default
 * 2000) is the number of random writer kills of random_kills over both write
 * modes; the other random tests scale with it (a twentieth each). Children
 * never call cmocka: they report through their exit status, stderr and the
 * shared memory. Without TMPDIR the databases live in /dev/shm when it
 * exists, as in test_faults: the many syncs would be slow on a busy disk.
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
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmkv.h"
#include "os.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))

/* Seconds a writer or opener may live before its alarm ends it (readers
 * live as long as the program may). */
#define CHILD_ALARM 300
/* Databases are created with 4 KiB pages, so that 1100 bytes is an
 * overflow value on every machine. */
#define PAGE_SIZE_USED 4096u
#define OVERFLOW_MIN 1100u

/* ================================================================ workload */

#define NMAIN 400          /* ids of small and medium values in the default db */
#define NBIG 24            /* ids NMAIN .. NMAIN+NBIG-1: large overflow values */
#define MAIN_IDS (NMAIN + NBIG)
#define AUX_IDS 150        /* ids in "aux" */
#define PERIOD 24          /* commit kinds repeat with this period */
#define BIG_MIN 8000u
#define BIG_MAX 30000u
#define MAX_OPS 1024
/* The data file of random_kills stays below this (it holds about 2 MiB). */
#define MAX_FILE (16ull << 20)

enum { DB_MAIN, DB_AUX };
enum { OP_PUT, OP_DEL, OP_CREATE_AUX, OP_DROP_AUX };
enum { KIND_NORMAL, KIND_BIG, KIND_PURGE, KIND_CREATE_AUX, KIND_DROP_AUX };

typedef struct op {
	uint8_t kind, db;
	uint16_t id;
	uint32_t len;
	uint64_t vseed; /* the value is pattern_fill(vseed, len) */
} op;

static int commit_kind(uint64_t k)
{
	switch (k % PERIOD) {
	case 0:
		return KIND_PURGE;
	case 1:
		return KIND_CREATE_AUX;
	case 13:
		return KIND_DROP_AUX;
	default:
		return k % 4 == 2 ? KIND_BIG : KIND_NORMAL;
	}
}

/* Whether "aux" exists after commit k (created at 1, dropped at 13). */
static bool aux_live(uint64_t k)
{
	return k % PERIOD >= 1 && k % PERIOD < 13;
}

static uint32_t small_or_overflow(test_rng *r)
{
	if (rng_pct(r, 12))
		return (uint32_t)rng_range(r, OVERFLOW_MIN, 12000);
	return (uint32_t)rng_range(r, 0, 200);
}

static void add_op(op *ops, size_t *n, unsigned kind, unsigned db, unsigned id, uint32_t len,
                   uint64_t vseed)
{
	if (*n >= MAX_OPS)
		abort(); /* a bug of this test */
	ops[(*n)++] = (op){ (uint8_t)kind, (uint8_t)db, (uint16_t)id, len, vseed };
}

/* A random mix of puts (puts_lo to puts_hi of them) and deletes (dels_lo to
 * dels_hi) in one database. */
static void add_mix(test_rng *r, op *ops, size_t *n, unsigned db, unsigned puts_lo,
                    unsigned puts_hi, unsigned dels_lo, unsigned dels_hi)
{
	unsigned ids = db == DB_MAIN ? NMAIN : AUX_IDS;
	unsigned puts = (unsigned)rng_range(r, puts_lo, puts_hi);
	unsigned dels = (unsigned)rng_range(r, dels_lo, dels_hi);

	while (puts + dels > 0) {
		if (rng_below(r, puts + dels) < puts) {
			uint32_t len = small_or_overflow(r);
			add_op(ops, n, OP_PUT, db, (unsigned)rng_below(r, ids), len, rng_next(r));
			puts--;
		} else {
			add_op(ops, n, OP_DEL, db, (unsigned)rng_below(r, ids), 0, 0);
			dels--;
		}
	}
}

/* The operations of commit k (k >= 1), a function of (seed, k) only.
 * Deletes may name absent keys: they are no-ops. */
static size_t commit_ops(uint64_t seed, uint64_t k, op *ops)
{
	test_rng r;
	size_t n = 0;
	bool aux = aux_live(k);

	rng_init(&r, seed ^ (k * 0x9E3779B97F4A7C15ull));
	switch (commit_kind(k)) {
	case KIND_PURGE:
		/* Most keys go: leaves and branches merge, many pages are freed. */
		for (unsigned id = 0; id < MAIN_IDS; id++)
			if (rng_pct(&r, id < NMAIN ? 75 : 50))
				add_op(ops, &n, OP_DEL, DB_MAIN, id, 0, 0);
		add_mix(&r, ops, &n, DB_MAIN, 3, 3, 0, 0);
		break;
	case KIND_CREATE_AUX:
		add_op(ops, &n, OP_CREATE_AUX, DB_AUX, 0, 0, 0);
		add_mix(&r, ops, &n, DB_AUX, 30, 60, 0, 0);
		add_mix(&r, ops, &n, DB_MAIN, 3, 3, 1, 1);
		break;
	case KIND_DROP_AUX:
		add_op(ops, &n, OP_DROP_AUX, DB_AUX, 0, 0, 0);
		add_mix(&r, ops, &n, DB_MAIN, 5, 5, 2, 2);
		break;
	case KIND_BIG:
		for (unsigned i = (unsigned)rng_range(&r, 8, 14); i > 0; i--) {
			unsigned id = NMAIN + (unsigned)rng_below(&r, NBIG);
			uint32_t len = (uint32_t)rng_range(&r, BIG_MIN, BIG_MAX);
			add_op(ops, &n, OP_PUT, DB_MAIN, id, len, rng_next(&r));
		}
		add_mix(&r, ops, &n, DB_MAIN, 5, 10, 0, 3);
		if (aux)
			add_mix(&r, ops, &n, DB_AUX, 1, 5, 0, 2);
		break;
	default:
		add_mix(&r, ops, &n, DB_MAIN, 5, 30, 0, 10);
		if (aux)
			add_mix(&r, ops, &n, DB_AUX, 3, 10, 0, 4);
		break;
	}
	return n;
}

/* ================================================================== model */

typedef struct rec {
	uint32_t len;
	uint32_t present;
	uint64_t vseed;
} rec;

/* What the database holds after commit k of the workload named by seed. */
typedef struct model {
	uint64_t seed;
	uint64_t k; /* 0: a new database, no "commit" key */
	bool aux;   /* "aux" exists */
	rec main[MAIN_IDS];
	rec auxr[AUX_IDS];
} model;

static void model_reset(model *m, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->seed = seed;
}

static void model_apply(model *m, uint64_t k)
{
	op ops[MAX_OPS];
	size_t n = commit_ops(m->seed, k, ops);

	for (size_t i = 0; i < n; i++) {
		const op *o = &ops[i];
		rec *r = o->db == DB_MAIN ? &m->main[o->id] : &m->auxr[o->id];

		switch (o->kind) {
		case OP_PUT:
			*r = (rec){ o->len, 1, o->vseed };
			break;
		case OP_DEL:
			r->present = 0;
			break;
		case OP_CREATE_AUX:
			m->aux = true;
			break;
		case OP_DROP_AUX:
			m->aux = false;
			memset(m->auxr, 0, sizeof(m->auxr));
			break;
		}
	}
	m->k = k;
}

/* Advance the model to commit target (>= m->k). */
static void model_advance(model *m, uint64_t target)
{
	while (m->k < target)
		model_apply(m, m->k + 1);
}

/* ============================================================ shared state */

enum phase {
	PH_NONE,   /* forked, not yet running the workload */
	PH_OPEN,   /* in mmkv_env_create / mmkv_env_open */
	PH_START,  /* reading the commit it starts from */
	PH_BUILD,  /* inside a write transaction, before mmkv_txn_commit */
	PH_COMMIT, /* inside mmkv_txn_commit */
	PH_ACK,    /* the commit returned 0; acknowledging it */
	PH_IDLE,   /* between commits */
	PH_CLOSE,  /* in mmkv_env_close */
	PH_DONE,   /* the workload is complete */
	NPHASE
};
static const char *const phase_name[NPHASE] = {
	"forked", "open", "start", "txn", "commit", "ack", "between", "close", "done",
};

enum { IO_OPEN, IO_PWRITE, IO_PWRITEV, IO_FSYNC, IO_FDATASYNC, IO_MSYNC, IO_FTRUNCATE,
       IO_FALLOCATE, IO_MMAP, IO_RENAME, IO_UNLINK, IO_FSYNC_DIR, IO_LOCK, NIO };
static const char *const io_name[NIO] = {
	"open", "pwrite", "pwritev", "fsync", "fdatasync", "msync", "ftruncate",
	"fallocate", "mmap", "rename", "unlink", "fsync_dir", "fcntl",
};

/* Shared by the parent and every child of one test (MAP_SHARED anonymous
 * memory): plain atomics, which SIGKILL cannot leave half-written. */
typedef struct shared {
	atomic_int phase;           /* the writer's */
	atomic_ullong committed;    /* the writer's last commit that returned 0 */
	atomic_long io_calls;       /* hooked calls the writer made */
	atomic_int io_fired;        /* the hook killed the writer */
	atomic_int io_fn;           /* before which call */
	atomic_ullong opens;        /* open_kills: completed open/close cycles */
	atomic_ullong snapshots;    /* reader_kills: snapshots verified */
	atomic_ullong rechecks;     /* ... and verified again after holding them */
	atomic_ullong violations;
	atomic_int have_msg;
	char msg[512];
} shared;

static shared *sh;

static void set_phase(int p)
{
	if (sh)
		atomic_store(&sh->phase, p);
}

/* A child's failure: counted, printed, the first one kept for the parent's
 * message. Returns code, the child's exit status. */
static int child_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int child_fail(int code, const char *fmt, ...)
{
	char buf[480];
	int zero = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "child %d: %s\n", (int)getpid(), buf);
	fflush(stderr);
	/* The message first: a parent that sees the count finds it. */
	if (atomic_compare_exchange_strong(&sh->have_msg, &zero, 2)) {
		snprintf(sh->msg, sizeof(sh->msg), "pid %d: %s", (int)getpid(), buf);
		atomic_store(&sh->have_msg, 1);
	}
	atomic_fetch_add(&sh->violations, 1);
	return code;
}

static void shared_new(void)
{
	if (sh != NULL) /* left by a failed test */
		munmap(sh, sizeof(*sh));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
}

static void shared_free(void)
{
	if (sh)
		munmap(sh, sizeof(*sh));
	sh = NULL;
}

/* ================================================== I/O hook (children) */

static long hook_kill_at; /* 0: the hook only passes calls on */
static long hook_calls;

/* Count one call; SIGKILL this process before call number hook_kill_at. */
static void io_point(int fn)
{
	if (hook_kill_at <= 0)
		return;
	atomic_store(&sh->io_calls, ++hook_calls);
	if (hook_calls == hook_kill_at) {
		atomic_store(&sh->io_fn, fn);
		atomic_store(&sh->io_fired, 1);
		kill(getpid(), SIGKILL);
		for (;;)
			pause();
	}
}

static int h_open(const char *path, int flags, mode_t mode)
{
	io_point(IO_OPEN);
	return mmkv__os_default.open(path, flags, mode);
}

static ssize_t h_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	io_point(IO_PWRITE);
	return mmkv__os_default.pwrite(fd, buf, n, off);
}

static ssize_t h_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	io_point(IO_PWRITEV);
	return mmkv__os_default.pwritev(fd, iov, cnt, off);
}

static int h_fsync(int fd)
{
	io_point(IO_FSYNC);
	return mmkv__os_default.fsync(fd);
}

static int h_fdatasync(int fd)
{
	io_point(IO_FDATASYNC);
	return mmkv__os_default.fdatasync(fd);
}

static int h_msync(void *addr, size_t len, int flags)
{
	io_point(IO_MSYNC);
	return mmkv__os_default.msync(addr, len, flags);
}

static int h_ftruncate(int fd, off_t len)
{
	io_point(IO_FTRUNCATE);
	return mmkv__os_default.ftruncate(fd, len);
}

static int h_fallocate(int fd, int mode, off_t off, off_t len)
{
	io_point(IO_FALLOCATE);
	return mmkv__os_default.fallocate(fd, mode, off, len);
}

static void *h_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	io_point(IO_MMAP);
	return mmkv__os_default.mmap(addr, len, prot, flags, fd, off);
}

static int h_rename(const char *from, const char *to)
{
	io_point(IO_RENAME);
	return mmkv__os_default.rename(from, to);
}

static int h_unlink(const char *path)
{
	io_point(IO_UNLINK);
	return mmkv__os_default.unlink(path);
}

static int h_fsync_dir(const char *path)
{
	io_point(IO_FSYNC_DIR);
	return mmkv__os_default.fsync_dir(path);
}

static int h_fcntl_lock(int fd, int cmd, struct flock *fl)
{
	io_point(IO_LOCK);
	return mmkv__os_default.fcntl_lock(fd, cmd, fl);
}

/* In a child only: die just before hooked call number kill_at. */
static void hook_install(long kill_at)
{
	hook_kill_at = kill_at;
	hook_calls = 0;
	mmkv__os = mmkv__os_default;
	mmkv__os.open = h_open;
	mmkv__os.pwrite = h_pwrite;
	mmkv__os.pwritev = h_pwritev;
	mmkv__os.fsync = h_fsync;
	mmkv__os.fdatasync = h_fdatasync;
	mmkv__os.msync = h_msync;
	mmkv__os.ftruncate = h_ftruncate;
	mmkv__os.fallocate = h_fallocate;
	mmkv__os.mmap = h_mmap;
	mmkv__os.rename = h_rename;
	mmkv__os.unlink = h_unlink;
	mmkv__os.fsync_dir = h_fsync_dir;
	mmkv__os.fcntl_lock = h_fcntl_lock;
}

/* ========================================================= the database */

static unsigned char valbuf[BIG_MAX];

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static size_t make_key(char buf[8], unsigned db, unsigned id)
{
	return (size_t)snprintf(buf, 8, "%c%05u", db == DB_MAIN ? 'm' : 'a', id);
}

/* Open an environment with the settings every process uses; no asserts
 * (children call it). */
static int open_env_rc(const char *path, unsigned int flags, uint64_t txn_memory, mmkv_env **out)
{
	mmkv_env *env = NULL;
	int rc = mmkv_env_create(&env);

	if (rc == 0)
		rc = mmkv_env_set_maxdbs(env, 4);
	if (rc == 0)
		rc = mmkv_env_set_pagesize(env, PAGE_SIZE_USED);
	if (rc == 0 && txn_memory)
		rc = mmkv_env_set_txn_memory(env, txn_memory);
	if (rc == 0)
		rc = mmkv_env_open(env, path, flags, 0644);
	if (rc) {
		mmkv_env_close(env);
		env = NULL;
	}
	*out = env;
	return rc;
}

/* The commit number a snapshot (or write transaction) holds: 0 without the
 * key, that is, in a new database. */
static int read_commit(mmkv_txn *txn, uint64_t *k)
{
	mmkv_val key = sval("commit"), v;
	mmkv_dbi dbi;
	int rc = mmkv_dbi_open(txn, NULL, 0, &dbi);

	if (rc == 0)
		rc = mmkv_get(txn, dbi, &key, &v);
	if (rc == MMKV_NOTFOUND) {
		*k = 0;
		return 0;
	}
	if (rc)
		return rc;
	if (v.size != 8)
		return MMKV_CORRUPTED;
	*k = get_le64(v.data);
	return *k == 0 ? MMKV_CORRUPTED : 0;
}

/* Commit number k of the workload seed, as one write transaction. *what
 * names the call that failed. */
static int apply_commit(mmkv_env *env, uint64_t seed, uint64_t k, const char **what)
{
	static op ops[MAX_OPS];
	size_t n = commit_ops(seed, k, ops);
	mmkv_dbi dbi[2] = { 0, 0 };
	bool have_aux = false;
	unsigned char kbuf[8];
	mmkv_txn *txn = NULL;
	int rc;

	*what = "begin";
	if ((rc = mmkv_txn_begin(env, NULL, 0, &txn)) != 0)
		return rc;
	*what = "open the default db";
	if ((rc = mmkv_dbi_open(txn, NULL, 0, &dbi[DB_MAIN])) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const op *o = &ops[i];
		char kb[8];
		mmkv_val key = { make_key(kb, o->db, o->id), kb };

		if (o->db == DB_AUX && !have_aux && o->kind != OP_CREATE_AUX) {
			*what = "open aux";
			if ((rc = mmkv_dbi_open(txn, "aux", 0, &dbi[DB_AUX])) != 0)
				goto fail;
			have_aux = true;
		}
		switch (o->kind) {
		case OP_CREATE_AUX:
			*what = "create aux";
			rc = mmkv_dbi_open(txn, "aux", MMKV_CREATE, &dbi[DB_AUX]);
			have_aux = rc == 0;
			break;
		case OP_DROP_AUX:
			*what = "drop aux";
			rc = mmkv_drop(txn, dbi[DB_AUX], 1);
			have_aux = false;
			break;
		case OP_PUT: {
			mmkv_val val = { o->len, valbuf };

			*what = "put";
			if (i % 5 == 0) {
				/* Reserve, then fill in place. */
				rc = mmkv_put(txn, dbi[o->db], &key, &val, MMKV_RESERVE);
				if (rc == 0)
					pattern_fill(o->vseed, val.data, o->len);
			} else {
				pattern_fill(o->vseed, valbuf, o->len);
				rc = mmkv_put(txn, dbi[o->db], &key, &val, 0);
			}
			break;
		}
		case OP_DEL:
			*what = "del";
			rc = mmkv_del(txn, dbi[o->db], &key, NULL);
			if (rc == MMKV_NOTFOUND)
				rc = 0;
			break;
		}
		if (rc)
			goto fail;
	}
	{
		mmkv_val key = sval("commit"), val = { 8, kbuf };

		put_le64(kbuf, k);
		*what = "put commit";
		if ((rc = mmkv_put(txn, dbi[DB_MAIN], &key, &val, 0)) != 0)
			goto fail;
	}
	*what = "commit";
	set_phase(PH_COMMIT);
	return mmkv_txn_commit(txn);
fail:
	mmkv_txn_abort(txn);
	return rc;
}

/* One database of the view against its part of the model, by a full cursor
 * scan: keys in order, each value's bytes, nothing missing, nothing extra,
 * and the entry count. The default database also holds "commit". */
static bool scan_db(mmkv_txn *txn, mmkv_dbi dbi, unsigned db, const model *m, char *why, size_t cap)
{
	const rec *recs = db == DB_MAIN ? m->main : m->auxr;
	unsigned nids = db == DB_MAIN ? MAIN_IDS : AUX_IDS, next = 0;
	char prefix = db == DB_MAIN ? 'm' : 'a';
	uint64_t count = 0, expected = 0;
	bool seen_commit = false;
	mmkv_cursor *cur;
	mmkv_val k, v;
	mmkv_stat st;
	int rc;

	if ((rc = mmkv_cursor_open(txn, dbi, &cur)) != 0) {
		snprintf(why, cap, "cursor_open(%c): %s", prefix, mmkv_strerror(rc));
		return false;
	}
	for (rc = mmkv_cursor_get(cur, &k, &v, MMKV_FIRST); rc == 0;
	     rc = mmkv_cursor_get(cur, &k, &v, MMKV_NEXT)) {
		const char *kp = k.data;
		unsigned id = 0;
		const rec *r;

		count++;
		if (db == DB_MAIN && k.size == 6 && memcmp(kp, "commit", 6) == 0) {
			if (seen_commit || next > 0 || v.size != 8 || get_le64(v.data) != m->k) {
				snprintf(why, cap, "commit key out of place or not %" PRIu64, m->k);
				goto bad;
			}
			seen_commit = true;
			continue;
		}
		if (k.size != 6 || kp[0] != prefix)
			goto unexpected;
		for (int i = 1; i < 6; i++) {
			if (kp[i] < '0' || kp[i] > '9')
				goto unexpected;
			id = id * 10 + (unsigned)(kp[i] - '0');
		}
		if (id >= nids || id < next)
			goto unexpected;
		for (; next < id; next++)
			if (recs[next].present) {
				snprintf(why, cap, "db %c: key %u missing", prefix, next);
				goto bad;
			}
		r = &recs[id];
		if (!r->present) {
			snprintf(why, cap, "db %c: key %u present, expected absent", prefix, id);
			goto bad;
		}
		if (v.size != r->len || !pattern_equal(r->vseed, v.data, v.size)) {
			snprintf(why, cap, "db %c: key %u holds %zu bytes, expected %u other bytes",
			         prefix, id, v.size, r->len);
			goto bad;
		}
		next = id + 1;
	}
	if (rc != MMKV_NOTFOUND) {
		snprintf(why, cap, "db %c: scan: %s", prefix, mmkv_strerror(rc));
		goto bad;
	}
	mmkv_cursor_close(cur);
	for (; next < nids; next++)
		if (recs[next].present) {
			snprintf(why, cap, "db %c: key %u missing", prefix, next);
			return false;
		}
	if (db == DB_MAIN && seen_commit != (m->k != 0)) {
		snprintf(why, cap, "commit key %s, expected commit %" PRIu64,
		         seen_commit ? "present" : "missing", m->k);
		return false;
	}
	for (unsigned id = 0; id < nids; id++)
		expected += recs[id].present;
	expected += db == DB_MAIN && m->k != 0;
	rc = mmkv_dbi_stat(txn, dbi, &st);
	if (rc || st.entries != count || count != expected) {
		snprintf(why, cap, "db %c: stat %s, %" PRIu64 " entries, %" PRIu64 " scanned, %" PRIu64
		         " expected", prefix, mmkv_strerror(rc), rc ? 0 : st.entries, count, expected);
		return false;
	}
	return true;
unexpected:
	snprintf(why, cap, "db %c: unexpected key %.*s", prefix, (int)(k.size > 16 ? 16 : k.size),
	         (const char *)k.data);
bad:
	mmkv_cursor_close(cur);
	return false;
}

typedef struct names {
	unsigned n;
	bool aux;
} names;

static int collect_name(void *ctx, const mmkv_val *name)
{
	names *nm = ctx;

	nm->n++;
	if (name->size == 3 && memcmp(name->data, "aux", 3) == 0)
		nm->aux = true;
	return 0;
}

/* Whether the view of txn holds exactly the model: the commit key, both
 * databases, and the catalog. */
static bool view_matches(mmkv_txn *txn, const model *m, char *why, size_t cap)
{
	names nm = { 0, false };
	mmkv_dbi dbi;
	int rc;

	if ((rc = mmkv_dbi_open(txn, NULL, 0, &dbi)) != 0) {
		snprintf(why, cap, "open the default db: %s", mmkv_strerror(rc));
		return false;
	}
	if (!scan_db(txn, dbi, DB_MAIN, m, why, cap))
		return false;
	rc = mmkv_dbi_open(txn, "aux", 0, &dbi);
	if (!m->aux && rc != MMKV_NOTFOUND) {
		snprintf(why, cap, "aux: open returned %s, expected NOTFOUND", mmkv_strerror(rc));
		return false;
	}
	if (m->aux) {
		if (rc) {
			snprintf(why, cap, "aux: open: %s", mmkv_strerror(rc));
			return false;
		}
		if (!scan_db(txn, dbi, DB_AUX, m, why, cap))
			return false;
	}
	rc = mmkv_dbi_list(txn, collect_name, &nm);
	if (rc || nm.n != (m->aux ? 1u : 0u) || nm.aux != m->aux) {
		snprintf(why, cap, "catalog: %s, %u names%s, expected %s", mmkv_strerror(rc), nm.n,
		         nm.aux ? " (aux among them)" : "", m->aux ? "aux" : "none");
		return false;
	}
	return true;
}

/* ============================================================ processes */

/* Children alive, so that a failed test does not leave them running into
 * the next one (they die with the program only). */
static pid_t live[8];

static pid_t spawn(test_child_fn *fn, void *arg, unsigned int alarm_seconds)
{
	pid_t pid = spawn_child(fn, arg, alarm_seconds);

	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == 0) {
			live[i] = pid;
			return pid;
		}
	fail_msg("more than %zu children", sizeof(live) / sizeof(live[0]));
	return pid;
}

static void forget(pid_t pid)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == pid)
			live[i] = 0;
}

static int reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
	}
	forget(pid);
	return status;
}

static void kill_leftover_children(void)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] > 0) {
			kill(live[i], SIGKILL);
			waitpid(live[i], NULL, 0);
			live[i] = 0;
		}
}

static bool killed_by_sigkill(int status)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* The first violation a child reported, for the parent's message. */
static const char *child_msg(void)
{
	return atomic_load(&sh->have_msg) == 1 ? sh->msg : "(no message yet; see stderr)";
}

/* A child ended with status, which must be SIGKILL (or exit 0 where
 * allowed). */
static void expect_killed(int status, bool exit0_ok, const char *what)
{
	char how[96];

	if (killed_by_sigkill(status) || (exit0_ok && WIFEXITED(status) && WEXITSTATUS(status) == 0))
		return;
	describe_wait_status(status, how, sizeof(how));
	fail_msg("%s ended with %s: %s", what, how, child_msg());
}

/* ------------------------------------------------------------- writer */

typedef struct writer_args {
	const char *path;
	uint64_t seed;       /* workload */
	uint64_t start;      /* the commit the database holds */
	uint64_t stop;       /* exit 0 after this commit; 0: never */
	long kill_at;        /* hooked call to die before; 0: none */
	unsigned int flags;  /* mmkv_env_open flags */
	uint64_t txn_memory; /* 0: the default */
	int ack_wr, ack_rd;  /* the ack pipe; the child closes ack_rd */
} writer_args;

static int writer_main(void *arg)
{
	writer_args *a = arg;
	const char *what;
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	uint64_t k = 0;
	int rc;

	close(a->ack_rd);
	if (a->kill_at)
		hook_install(a->kill_at);
	set_phase(PH_OPEN);
	rc = open_env_rc(a->path, a->flags, a->txn_memory, &env);
	if (rc)
		return child_fail(3, "writer: open: %s", mmkv_strerror(rc));
	set_phase(PH_START);
	rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc == 0)
		rc = read_commit(txn, &k);
	mmkv_txn_abort(txn);
	if (rc)
		return child_fail(3, "writer: reading the commit key: %s", mmkv_strerror(rc));
	if (k != a->start)
		return child_fail(6, "writer: the database holds commit %" PRIu64 ", expected %" PRIu64,
		                  k, a->start);
	while (a->stop == 0 || k < a->stop) {
		set_phase(PH_BUILD);
		rc = apply_commit(env, a->seed, k + 1, &what);
		if (rc)
			return child_fail(4, "writer: commit %" PRIu64 ": %s: %s", k + 1, what,
			                  mmkv_strerror(rc));
		k++;
		atomic_store(&sh->committed, k);
		set_phase(PH_ACK);
		if (write(a->ack_wr, &k, sizeof(k)) != (ssize_t)sizeof(k))
			return child_fail(5, "writer: ack pipe: %s", strerror(errno));
		set_phase(PH_IDLE);
	}
	set_phase(PH_CLOSE);
	mmkv_env_close(env);
	set_phase(PH_DONE);
	return 0;
}

typedef struct writer {
	pid_t pid;
	int ack_rd;        /* -1 once the writer's end is closed */
	uint64_t last_ack; /* the newest ack read, or the start */
	uint64_t nacks;
	writer_args args;
} writer;

static void writer_start(writer *w, const char *path, const model *m, uint64_t stop, long kill_at,
                         unsigned int extra, uint64_t txn_memory)
{
	int fd[2];

	if (pipe(fd) != 0)
		fail_msg("pipe: %s", strerror(errno));
	atomic_store(&sh->phase, PH_NONE);
	atomic_store(&sh->committed, m->k);
	atomic_store(&sh->io_calls, 0);
	atomic_store(&sh->io_fired, 0);
	atomic_store(&sh->io_fn, -1);
	w->args = (writer_args){ path, m->seed, m->k, stop, kill_at, env_flags(extra), txn_memory,
		                 fd[1], fd[0] };
	w->pid = spawn(writer_main, &w->args, CHILD_ALARM);
	/* Only the writer holds the write end: EOF when it is gone. */
	close(fd[1]);
	w->ack_rd = fd[0];
	w->last_ack = m->k;
	w->nacks = 0;
}

/* Read acks until the newest is at least until, or to EOF (then the pipe
 * is closed and false returned). Acks must count up one by one. */
static bool read_acks(writer *w, uint64_t until)
{
	uint64_t buf[512];

	while (w->ack_rd >= 0 && w->last_ack < until) {
		struct pollfd pfd = { w->ack_rd, POLLIN, 0 };
		ssize_t got;

		/* Not a measure of speed: only a hung writer takes this long. */
		if (poll(&pfd, 1, 120000) == 0)
			fail_msg("no ack from writer %d for two minutes", (int)w->pid);
		got = read(w->ack_rd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			fail_msg("read acks: %s", strerror(errno));
		if (got == 0) {
			close(w->ack_rd);
			w->ack_rd = -1;
			break;
		}
		/* 8-byte writes to a pipe are atomic: reads hold whole acks. */
		if (got % 8 != 0)
			fail_msg("partial ack (%zd bytes)", got);
		for (ssize_t i = 0; i < got / 8; i++) {
			if (buf[i] != w->last_ack + 1)
				fail_msg("ack %" PRIu64 " after %" PRIu64, buf[i], w->last_ack);
			w->last_ack = buf[i];
			w->nacks++;
		}
	}
	return w->ack_rd >= 0;
}

/* Every ack, to EOF (the writer is dead). Returns the last one, or the
 * start. */
static uint64_t drain_acks(writer *w)
{
	read_acks(w, UINT64_MAX);
	return w->last_ack;
}

/* Wait until a child has begun its work (or a while, if it died first:
 * reaping it tells). Only the moment of a kill depends on this. */
static void wait_started(void)
{
	for (int i = 0; i < 100000 && atomic_load(&sh->phase) == PH_NONE; i++)
		usleep(20);
}

/* Let a writer run until a random moment: now and then right after the
 * fork, often a random delay after it began (while it opens the database),
 * mostly a random delay after its first or second commit was acknowledged,
 * so that the kills reach every phase however fast this build and this
 * machine are. Only the moment of the kill depends on the waiting. False
 * when the writer ended by itself first (*status). */
static bool await_kill_moment(writer *w, test_rng *rng, int *status)
{
	unsigned int dice = (unsigned int)rng_below(rng, 100);
	useconds_t delay;

	if (dice < 5) {
		delay = (useconds_t)rng_below(rng, 300);
	} else if (dice < 30) {
		wait_started();
		delay = (useconds_t)rng_below(rng, 1500);
	} else {
		if (!read_acks(w, w->args.start + rng_range(rng, 1, 2))) {
			*status = reap(w->pid);
			return false;
		}
		delay = (useconds_t)(rng_pct(rng, 90) ? rng_below(rng, 1500)
		                                      : rng_range(rng, 1500, 10000));
	}
	usleep(delay);
	return true;
}

/* ================================================================ figures */

typedef struct figures {
	uint64_t kills;               /* random writer kills (random_kills) */
	uint64_t kills_in_commit;     /* ... inside mmkv_txn_commit */
	uint64_t kills_new, kills_old; /* ... of those, found the new commit, the old */
	uint64_t by_phase[NPHASE];    /* ... by the phase they landed in */
	uint64_t in_commit_new;       /* landed in mmkv_txn_commit, found the new commit */
	uint64_t in_commit_old;       /* ... found the one before */
	uint64_t found_unacked;       /* found A + 1: a commit not yet acknowledged */
	uint64_t fresh;               /* databases deleted and created anew */
	uint64_t nosync, spill;       /* writers with MMKV_NOSYNC, with the smallest budget */
	uint64_t io_runs, io_kills, io_by_fn[NIO], io_absent;
	uint64_t open_kills, open_pairs, open_cycles, open_absent;
	uint64_t rk_writer_kills, rk_reader_kills, rk_snapshots, rk_rechecks, rk_slots_cleared;
	uint64_t acks;                /* commits acknowledged by writers */
	uint64_t states;              /* databases opened, checked and compared */
	/* Maxima from here on. */
	uint64_t max_commit;          /* the highest commit number reached */
	uint64_t max_file;            /* the largest data file seen */
} figures;

static figures total;

static void figures_add(const figures *f)
{
	const uint64_t *src = (const uint64_t *)f;
	uint64_t *dst = (uint64_t *)&total;

	for (size_t i = 0; i < sizeof(*f) / sizeof(uint64_t); i++)
		if (i >= offsetof(figures, max_commit) / sizeof(uint64_t))
			dst[i] = src[i] > dst[i] ? src[i] : dst[i];
		else
			dst[i] += src[i];
}

static const char *mode_name(void)
{
	return test_env_flags & MMKV_WRITEMAP ? "writemap" : "default";
}

/* ============================================================== checking */

/* Open the database in this process, run the checker, compare it with the
 * model and close it. The database must hold a commit in [lo, hi]; m is
 * advanced to the one it holds, which is returned. Before opening: the data
 * file is absent (then nothing can have been committed) or complete. */
static uint64_t verify_db(const char *path, model *m, uint64_t lo, uint64_t hi, figures *f,
                          bool *absent, const char *where)
{
	char why[256];
	struct stat st;
	mmkv_env *env;
	mmkv_check_result res;
	uint64_t found, problems = 0;
	mmkv_txn *txn;
	int rc;

	assert_true(lo >= m->k && hi >= lo);
	memset(&res, 0, sizeof(res));
	*absent = stat(path, &st) != 0;
	if (*absent) {
		if (errno != ENOENT)
			fail_msg("%s: stat %s: %s", where, path, strerror(errno));
		if (lo != 0)
			fail_msg("%s: the data file is gone, yet commit %" PRIu64 " was acknowledged",
			         where, lo);
	} else if (st.st_size < 2 * (off_t)PAGE_SIZE_USED) {
		fail_msg("%s: the data file has %jd bytes: a database half created", where,
		         (intmax_t)st.st_size);
	}
	rc = open_env_rc(path, env_flags(0), 0, &env);
	if (rc)
		fail_msg("%s: open: %s", where, mmkv_strerror(rc));
	rc = check_env_quiet(env, &res, &problems, true);
	if (rc || problems || res.problems || res.pages_tree + res.pages_free + 2 != res.pages_total) {
		mmkv_env_close(env);
		fail_msg("%s: mmkv_env_check returned %s, %" PRIu64 " problems (pages: %" PRIu64
		         " in trees + %" PRIu64 " free + 2 metas, %" PRIu64 " in all)",
		         where, mmkv_strerror(rc), problems, res.pages_tree, res.pages_free,
		         res.pages_total);
	}
	rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc == 0)
		rc = read_commit(txn, &found);
	if (rc) {
		mmkv_txn_abort(txn);
		mmkv_env_close(env);
		fail_msg("%s: reading the commit key: %s", where, mmkv_strerror(rc));
	}
	if (found < lo || found > hi) {
		mmkv_txn_abort(txn);
		mmkv_env_close(env);
		fail_msg("%s: the database holds commit %" PRIu64 ", expected %" PRIu64 "%s%" PRIu64,
		         where, found, lo, lo == hi ? "" : " to ", hi);
	}
	model_advance(m, found);
	if (!view_matches(txn, m, why, sizeof(why))) {
		mmkv_txn_abort(txn);
		mmkv_env_close(env);
		fail_msg("%s: commit %" PRIu64 ": %s", where, found, why);
	}
	mmkv_txn_abort(txn);
	mmkv_env_close(env);
	f->states++;
	if (found > f->max_commit)
		f->max_commit = found;
	if (stat(path, &st) == 0 && (uint64_t)st.st_size > f->max_file)
		f->max_file = (uint64_t)st.st_size;
	return found;
}

/* After a writer ended (status): check the acks and the database against
 * what the writer's phase allows. Returns the commit found. */
static uint64_t judge_writer(writer *w, int status, model *m, figures *f, bool exit0_ok,
                             bool *absent, const char *where)
{
	uint64_t start = m->k, acked, committed, found;
	int phase = atomic_load(&sh->phase);
	char at[192];

	if (phase < 0 || phase >= NPHASE)
		fail_msg("%s: the writer's phase is %d", where, phase);
	snprintf(at, sizeof(at), "%s, in phase %s", where, phase_name[phase]);
	where = at;

	expect_killed(status, exit0_ok, where);
	if (atomic_load(&sh->violations))
		fail_msg("%s: %s", where, child_msg());
	acked = drain_acks(w);
	f->acks += w->nacks;
	committed = atomic_load(&sh->committed);
	if (committed < acked || committed > acked + 1)
		fail_msg("%s: commit %" PRIu64 " returned, %" PRIu64 " acknowledged", where, committed,
		         acked);
	/* A returned commit is never lost; one in flight is there or not. */
	found = verify_db(w->args.path, m, committed, phase == PH_COMMIT ? committed + 1 : committed, f,
	                  absent, where);
	if (found != acked && found != acked + 1) /* implied; the requirement as stated */
		fail_msg("%s: found commit %" PRIu64 " with %" PRIu64 " acknowledged", where, found,
		         acked);
	if (phase <= PH_START && found != start)
		fail_msg("%s: killed before its first commit, yet commit %" PRIu64 " replaced %" PRIu64,
		         where, found, start);
	if (phase == PH_COMMIT) {
		if (found > committed)
			f->in_commit_new++;
		else
			f->in_commit_old++;
	}
	f->found_unacked += found == acked + 1;
	f->by_phase[phase]++;
	return found;
}

/* ============================================================== fixtures */

static struct timespec test_start;

static int setup(void **state)
{
	int rc = tu_setup(state);

	shared_new();
	clock_gettime(CLOCK_MONOTONIC, &test_start);
	return rc;
}

static int teardown(void **state)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	print_message("    (%.1f s)\n", (double)(now.tv_sec - test_start.tv_sec) +
	                                     (double)(now.tv_nsec - test_start.tv_nsec) / 1e9);
	kill_leftover_children();
	shared_free();
	return tu_teardown(state);
}

/* ============================================================ parameters */

static unsigned int crash_kills = 2000; /* MMKV_CRASH_KILLS */
static unsigned int program_seconds;    /* the watchdog's limit */
static uint64_t run_seed;

/* A seed of its own for each test and write mode. */
static uint64_t test_seed_for(unsigned int test)
{
	uint64_t s = run_seed ^ ((uint64_t)test << 40) ^
	             (test_env_flags & MMKV_WRITEMAP ? 0x5bd1e995u : 0);
	test_rng r;

	rng_init(&r, s);
	return rng_next(&r);
}

static void remove_db(const char *path)
{
	char lock[PATH_MAX + 8];

	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
}

/* Remove the temporary files of creators that were killed (PATH.new-PID). */
static void remove_leftovers(const test_dir *d, const char *path)
{
	const char *base = strrchr(path, '/') + 1;
	size_t blen = strlen(base);
	DIR *dir = opendir(d->path);
	struct dirent *e;
	char p[PATH_MAX];

	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL) {
		if (strncmp(e->d_name, base, blen) == 0 && strncmp(e->d_name + blen, ".new-", 5) == 0) {
			test_dir_file(d, e->d_name, p, sizeof(p));
			unlink(p);
		}
	}
	closedir(dir);
}

/* The parent commits up to target itself (asserting), then closes. */
static void parent_commits(const char *path, model *m, uint64_t target)
{
	const char *what;
	mmkv_env *env;
	int rc = open_env_rc(path, env_flags(0), 0, &env);

	if (rc)
		fail_msg("open %s: %s", path, mmkv_strerror(rc));
	while (m->k < target) {
		rc = apply_commit(env, m->seed, m->k + 1, &what);
		if (rc) {
			mmkv_env_close(env);
			fail_msg("parent: commit %" PRIu64 ": %s: %s", m->k + 1, what,
			         mmkv_strerror(rc));
		}
		model_apply(m, m->k + 1);
	}
	mmkv_env_close(env);
}

/* ====================================================== random writer kills */

static void test_random_kills(void **state)
{
	test_fixture *fx = FX(state);
	unsigned int rounds = (crash_kills + 1) / 2;
	test_rng rng;
	figures f = { 0 };
	model *m = malloc(sizeof(*m));
	char where[128];

	assert_non_null(m);
	rng_init(&rng, test_seed_for(1));
	model_reset(m, rng_next(&rng));
	for (unsigned int round = 0; round < rounds; round++) {
		unsigned int extra = 0;
		uint64_t txn_memory = 0;
		bool absent;
		writer w;
		int status;

		/* Now and then a new database: creation is killed too. */
		if (round > 0 && rng_pct(&rng, 2)) {
			/* Sometimes beside the old database's lock file. */
			if (rng_pct(&rng, 50))
				remove_db(fx->path);
			else
				unlink(fx->path);
			remove_leftovers(&fx->dir, fx->path);
			model_reset(m, rng_next(&rng));
			f.fresh++;
		}
		if (rng_pct(&rng, 30)) {
			extra |= MMKV_NOSYNC;
			f.nosync++;
		}
		if (!(test_env_flags & MMKV_WRITEMAP) && rng_pct(&rng, 50)) {
			txn_memory = 1; /* the smallest budget: commits spill */
			f.spill++;
		}
		writer_start(&w, fx->path, m, 0, 0, extra, txn_memory);
		if (await_kill_moment(&w, &rng, &status)) {
			kill(w.pid, SIGKILL);
			status = reap(w.pid);
		}
		snprintf(where, sizeof(where), "random kill %u (%s, from commit %" PRIu64 ")", round,
		         mode_name(), m->k);
		judge_writer(&w, status, m, &f, false, &absent, where);
		f.kills++;
	}
	print_message("crash random_kills %s: %" PRIu64 " writer kills (forked %" PRIu64
	              ", open %" PRIu64 ", start %" PRIu64 ", txn %" PRIu64 ", commit %" PRIu64
	              ", ack %" PRIu64 ", between %" PRIu64 "); in commit: %" PRIu64
	              " found the new commit, %" PRIu64 " the old; %" PRIu64
	              " found a commit not yet acknowledged; %" PRIu64
	              " commits acknowledged, up to commit %" PRIu64 "; %" PRIu64
	              " new databases, %" PRIu64 " NOSYNC, %" PRIu64
	              " spilling writers; data file up to %" PRIu64 " KiB\n",
	              mode_name(), f.kills, f.by_phase[PH_NONE], f.by_phase[PH_OPEN],
	              f.by_phase[PH_START], f.by_phase[PH_BUILD], f.by_phase[PH_COMMIT],
	              f.by_phase[PH_ACK], f.by_phase[PH_IDLE], f.in_commit_new, f.in_commit_old,
	              f.found_unacked, f.acks, f.max_commit, f.fresh, f.nosync, f.spill,
	              f.max_file >> 10);
	assert_int_equal(f.kills, rounds);
	assert_int_equal(atomic_load(&sh->violations), 0);
	/* Most rounds wait for an ack before they kill (where in the child the
	 * kills land depends on timing: it is printed, not asserted). */
	if (rounds >= 100)
		assert_true(f.acks > 0);
	/* The live data stays near 2 MiB: space that killed commits took (the
	 * file grown, pages allocated) must be used again, not lost. */
	if (f.max_file > MAX_FILE)
		fail_msg("the data file reached %" PRIu64 " KiB", f.max_file >> 10);
	f.kills_in_commit = f.by_phase[PH_COMMIT];
	f.kills_new = f.in_commit_new;
	f.kills_old = f.in_commit_old;
	figures_add(&f);
	free(m);
}

/* ============================================================ I/O kills */

typedef struct workload {
	const char *name;
	uint64_t start, stop; /* commits start+1 .. stop; start 0: a new database */
	bool must_grow;       /* the last run must grow the file */
} workload;

/* The second workload's commit is the first commit with large values, from
 * commit 10 on, that grows the file (find_growing_commit). */
static const workload workloads[] = {
	{ "new database, named db, large values", 0, 3, false },
	{ "file growth, large values", 9, 10, true },
	{ "purge (merges), create db, reuse", 23, 26, false },
};

/* Build golden up to the commit before the first commit with large values,
 * from first on, that grows the file (tried on a copy). Returns that
 * commit's number; m is the model of golden. */
static uint64_t find_growing_commit(const char *golden, const char *trial, model *m, uint64_t first)
{
	model *t = malloc(sizeof(*t));
	uint64_t k;

	assert_non_null(t);
	for (k = first;; k += 4) {
		uint64_t size0;

		if (k > first + 400)
			fail_msg("no commit from %" PRIu64 " to %" PRIu64 " grows the file", first, k);
		if (commit_kind(k) != KIND_BIG)
			continue;
		parent_commits(golden, m, k - 1);
		remove_db(trial);
		copy_file(golden, trial);
		size0 = file_size(trial);
		*t = *m;
		parent_commits(trial, t, k);
		if (file_size(trial) > size0)
			break;
	}
	remove_db(trial);
	free(t);
	return k;
}

static void test_io_kills(void **state)
{
	test_fixture *fx = FX(state);
	uint64_t seed = test_seed_for(2);
	char golden[PATH_MAX], trial[PATH_MAX], where[160];
	model *m = malloc(sizeof(*m));
	figures f = { 0 };

	assert_non_null(m);
	test_dir_file(&fx->dir, "golden.mmkv", golden, sizeof(golden));
	test_dir_file(&fx->dir, "trial.mmkv", trial, sizeof(trial));
	for (size_t wi = 0; wi < sizeof(workloads) / sizeof(workloads[0]); wi++) {
		const workload *wl = &workloads[wi];
		uint64_t fn_before[NIO], size0 = 0, new_before = f.in_commit_new;
		uint64_t start = wl->start, stop = wl->stop;
		long n, total_calls = 0;

		memcpy(fn_before, f.io_by_fn, sizeof(fn_before));
		if (start > 0) {
			remove_db(golden);
			model_reset(m, seed);
			if (wl->must_grow) {
				stop = find_growing_commit(golden, trial, m, wl->stop);
				start = stop - 1;
			} else {
				parent_commits(golden, m, start);
			}
			size0 = file_size(golden);
		}
		remove_db(fx->path);
		for (n = 1;; n++) {
			writer w;
			int status;
			bool absent;

			if (n > 20000)
				fail_msg("%s: still killed at call %ld", wl->name, n);
			/* The lock file stays as the previous run left it (re-initialised
			 * by the next opener), except for a new database. */
			if (start == 0) {
				remove_db(fx->path);
				remove_leftovers(&fx->dir, fx->path);
			} else {
				copy_file(golden, fx->path);
			}
			model_reset(m, seed);
			model_advance(m, start);
			/* The smallest budget: the big commits spill (default mode). */
			writer_start(&w, fx->path, m, stop, n, 0, 1);
			status = reap(w.pid);
			f.io_runs++;
			snprintf(where, sizeof(where), "%s (%s), killed before call %ld", wl->name,
			         mode_name(), n);
			if (killed_by_sigkill(status)) {
				int fn = atomic_load(&sh->io_fn);

				if (!atomic_load(&sh->io_fired) || fn < 0 || fn >= NIO)
					fail_msg("%s: SIGKILL, but not from the hook", where);
				f.io_kills++;
				f.io_by_fn[fn]++;
				judge_writer(&w, status, m, &f, false, &absent, where);
				f.io_absent += absent;
				continue;
			}
			/* The run completed: n is past its last hooked call. */
			snprintf(where, sizeof(where), "%s (%s), complete run", wl->name, mode_name());
			if (atomic_load(&sh->io_fired) || atomic_load(&sh->phase) != PH_DONE)
				fail_msg("%s: the hook fired, or the child did not finish", where);
			total_calls = atomic_load(&sh->io_calls);
			assert_true(total_calls < n);
			if (drain_acks(&w) != stop)
				fail_msg("%s: the last ack is not commit %" PRIu64, where, stop);
			f.acks += w.nacks;
			verify_db(fx->path, m, stop, stop, &f, &absent, where);
			assert_false(absent);
			if (wl->must_grow && file_size(fx->path) <= size0)
				fail_msg("%s: the file did not grow (%" PRIu64 " bytes)", where, size0);
			break;
		}
		print_message("crash io_kills %s: %-36s commits %2" PRIu64 "-%-2" PRIu64
		              ": %3ld calls (", mode_name(), wl->name, start + 1, stop, total_calls);
		for (int i = 0, first = 1; i < NIO; i++)
			if (f.io_by_fn[i] != fn_before[i]) {
				print_message("%s%s %" PRIu64, first ? "" : ", ", io_name[i],
				              f.io_by_fn[i] - fn_before[i]);
				first = 0;
			}
		print_message("); %" PRIu64 " kills found the commit in flight\n",
		              f.in_commit_new - new_before);
		assert_true(total_calls > 0);
	}
	assert_int_equal(atomic_load(&sh->violations), 0);
	figures_add(&f);
	free(m);
}

/* =========================================================== open kills */

typedef struct opener_args {
	const char *path;
	uint64_t seed, rseed;
	uint64_t expect; /* the commit the database holds (0: also none at all) */
} opener_args;

/* Open and close the database over and over; it must hold the expected
 * commit whenever it is looked at. */
static int opener_main(void *arg)
{
	opener_args *a = arg;
	model *m = malloc(sizeof(*m));
	char why[256];
	test_rng rng;

	if (m == NULL)
		return child_fail(2, "opener: out of memory");
	rng_init(&rng, a->rseed);
	model_reset(m, a->seed);
	model_advance(m, a->expect);
	for (;;) {
		bool rdonly = rng_pct(&rng, 25);
		mmkv_env *env;
		mmkv_txn *txn;
		uint64_t k;
		int rc;

		set_phase(PH_OPEN);
		rc = open_env_rc(a->path, env_flags(rdonly ? MMKV_RDONLY : 0), 0, &env);
		if (rc == ENOENT && rdonly)
			continue; /* not created yet: read-only openers do not create */
		if (rc)
			return child_fail(3, "opener: open%s: %s", rdonly ? " (read-only)" : "",
			                  mmkv_strerror(rc));
		set_phase(PH_START);
		if (rng_pct(&rng, 50)) {
			rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
			if (rc == 0)
				rc = read_commit(txn, &k);
			if (rc)
				return child_fail(3, "opener: read: %s", mmkv_strerror(rc));
			if (k != a->expect)
				return child_fail(6, "opener: commit %" PRIu64 ", expected %" PRIu64, k,
				                  a->expect);
			if (rng_pct(&rng, 20) && !view_matches(txn, m, why, sizeof(why)))
				return child_fail(6, "opener: commit %" PRIu64 ": %s", k, why);
			mmkv_txn_abort(txn);
		}
		set_phase(PH_CLOSE);
		mmkv_env_close(env);
		atomic_fetch_add(&sh->opens, 1);
	}
}

static void test_open_kills(void **state)
{
	test_fixture *fx = FX(state);
	unsigned int rounds = crash_kills / 20 > 1 ? crash_kills / 20 : 1;
	uint64_t by_phase[NPHASE] = { 0 };
	model *m = malloc(sizeof(*m));
	figures f = { 0 };
	char where[128];
	test_rng rng;

	assert_non_null(m);
	rng_init(&rng, test_seed_for(3));
	model_reset(m, rng_next(&rng));
	for (unsigned int round = 0; round < rounds; round++) {
		unsigned int dice = (unsigned int)rng_below(&rng, 100);
		unsigned int nopen = rng_pct(&rng, 40) ? 2 : 1;
		opener_args a[2];
		pid_t pid[2];
		bool absent;

		if (dice < 20) {
			/* A new database, sometimes beside the old lock file. */
			if (dice < 15)
				remove_db(fx->path);
			else
				unlink(fx->path);
			remove_leftovers(&fx->dir, fx->path);
			model_reset(m, rng_next(&rng));
			f.fresh++;
		} else if (dice < 30) {
			char lock[PATH_MAX + 8];
			snprintf(lock, sizeof(lock), "%s-lock", fx->path);
			unlink(lock);
		}
		atomic_store(&sh->phase, PH_NONE);
		for (unsigned int i = 0; i < nopen; i++) {
			a[i] = (opener_args){ fx->path, m->seed, rng_next(&rng), m->k };
			pid[i] = spawn(opener_main, &a[i], CHILD_ALARM);
		}
		if (rng_pct(&rng, 90))
			wait_started();
		/* With two, the second goes on alone for a while: it may have to
		 * take over a lock file the first left half initialised. */
		for (unsigned int i = 0; i < nopen; i++) {
			usleep((useconds_t)rng_below(&rng, 3000));
			if (i == 0)
				by_phase[atomic_load(&sh->phase)]++;
			kill(pid[i], SIGKILL);
		}
		snprintf(where, sizeof(where), "open kill %u (%s, commit %" PRIu64 ", %u openers)",
		         round, mode_name(), m->k, nopen);
		for (unsigned int i = 0; i < nopen; i++)
			expect_killed(reap(pid[i]), false, where);
		if (atomic_load(&sh->violations))
			fail_msg("%s: %s", where, child_msg());
		/* Opening and closing changes nothing, whatever the moment. */
		verify_db(fx->path, m, m->k, m->k, &f, &absent, where);
		f.open_absent += absent;
		f.open_kills += nopen;
		f.open_pairs += nopen == 2;
		if (rng_pct(&rng, 30))
			parent_commits(fx->path, m, m->k + rng_range(&rng, 1, 3));
	}
	f.open_cycles = atomic_load(&sh->opens);
	print_message("crash open_kills %s: %" PRIu64 " kills in %u rounds, %" PRIu64
	              " of them with two openers (first kill: forked %" PRIu64 ", open %" PRIu64
	              ", reading %" PRIu64 ", close %" PRIu64 ") over %" PRIu64
	              " open/close cycles; %" PRIu64 " new databases, %" PRIu64
	              " times the data file was not created yet\n",
	              mode_name(), f.open_kills, rounds, f.open_pairs, by_phase[PH_NONE],
	              by_phase[PH_OPEN], by_phase[PH_START], by_phase[PH_CLOSE], f.open_cycles, f.fresh,
	              f.open_absent);
	assert_int_equal(f.open_kills, rounds + f.open_pairs);
	figures_add(&f);
	free(m);
}

/* ========================================================= reader kills */

#define NREADERS 2

typedef struct reader_args {
	const char *path;
	uint64_t seed, rseed;
} reader_args;

/* Take snapshots over and over: each equals the model of its own commit,
 * still does after being held a while, and commits never go back. */
static int reader_main(void *arg)
{
	reader_args *a = arg;
	model *m = malloc(sizeof(*m));
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	char why[256];
	test_rng rng;
	int rc;

	if (m == NULL)
		return child_fail(2, "reader: out of memory");
	rng_init(&rng, a->rseed);
	model_reset(m, a->seed);
	rc = open_env_rc(a->path, env_flags(rng_pct(&rng, 50) ? MMKV_RDONLY : 0), 0, &env);
	if (rc)
		return child_fail(3, "reader: open: %s", mmkv_strerror(rc));
	for (;;) {
		uint64_t k, id;

		if (txn != NULL && rng_pct(&rng, 50)) {
			mmkv_txn_reset(txn);
			rc = mmkv_txn_renew(txn);
		} else {
			mmkv_txn_abort(txn);
			txn = NULL;
			rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
		}
		if (rc == 0)
			rc = read_commit(txn, &k);
		if (rc)
			return child_fail(4, "reader: snapshot: %s", mmkv_strerror(rc));
		if (k < m->k)
			return child_fail(6, "reader: commit %" PRIu64 " after commit %" PRIu64, k,
			                  m->k);
		model_advance(m, k);
		id = mmkv_txn_id(txn);
		if (!view_matches(txn, m, why, sizeof(why)))
			return child_fail(6, "reader: snapshot %" PRIu64 " of commit %" PRIu64 ": %s",
			                  id, k, why);
		atomic_fetch_add(&sh->snapshots, 1);
		/* Hold it while writers commit and die, then look again. */
		usleep((useconds_t)rng_below(&rng, 4000));
		if (rng_pct(&rng, 40)) {
			if (mmkv_txn_id(txn) != id || !view_matches(txn, m, why, sizeof(why)))
				return child_fail(6, "reader: snapshot %" PRIu64 " of commit %" PRIu64
				                  " changed while held: %s", id, k, why);
			atomic_fetch_add(&sh->rechecks, 1);
		}
		if (rng_pct(&rng, 30)) {
			mmkv_txn_reset(txn);
			usleep((useconds_t)rng_below(&rng, 2000));
		}
	}
}

typedef struct reader_slot {
	pid_t pid;
	reader_args args;
} reader_slot;

static void reader_start(reader_slot *r, const char *path, uint64_t seed, test_rng *rng)
{
	r->args = (reader_args){ path, seed, rng_next(rng) };
	r->pid = spawn(reader_main, &r->args, program_seconds);
}

/* A reader must live until we kill it. */
static void reader_alive(const reader_slot *r)
{
	int status;
	char how[96];
	pid_t got = waitpid(r->pid, &status, WNOHANG);

	if (got == 0)
		return;
	if (got < 0)
		fail_msg("waitpid(%d): %s", (int)r->pid, strerror(errno));
	forget(r->pid);
	describe_wait_status(status, how, sizeof(how));
	fail_msg("reader %d ended with %s: %s", (int)r->pid, how, child_msg());
}

typedef struct pid_search {
	uint32_t pid;
	unsigned int listed, found;
} pid_search;

static int find_pid(void *ctx, const mmkv_reader_info *info)
{
	pid_search *s = ctx;

	s->listed++;
	s->found += info->pid == s->pid;
	return 0;
}

/* After a reader was killed: mmkv_reader_check clears its slot (if nothing
 * else did first), and it is listed no more. */
static void expect_reader_gone(const char *path, pid_t pid, figures *f)
{
	pid_search s = { (uint32_t)pid, 0, 0 };
	mmkv_env *env;
	int cleared = -1, rc = open_env_rc(path, env_flags(0), 0, &env);

	if (rc)
		fail_msg("open: %s", mmkv_strerror(rc));
	rc = mmkv_reader_check(env, &cleared);
	if (rc == 0)
		rc = mmkv_reader_list(env, find_pid, &s);
	mmkv_env_close(env);
	if (rc)
		fail_msg("reader check / list: %s", mmkv_strerror(rc));
	/* Killed writers leave slots behind as well (their handles keep the
	 * slots of ended read transactions for reuse). */
	if (cleared < 0 || s.found)
		fail_msg("killed reader %d: %d slots cleared, then listed %u times", (int)pid, cleared,
		         s.found);
	/* The live readers hold a snapshot each at most, this handle one. */
	if (s.listed > NREADERS + 1)
		fail_msg("%u readers listed with %d alive", s.listed, NREADERS);
	f->rk_slots_cleared += (uint64_t)cleared;
}

static void test_reader_kills(void **state)
{
	test_fixture *fx = FX(state);
	unsigned int rounds = crash_kills / 20 > 1 ? crash_kills / 20 : 1;
	model *m = malloc(sizeof(*m));
	reader_slot readers[NREADERS];
	figures f = { 0 };
	char where[128];
	test_rng rng;

	assert_non_null(m);
	rng_init(&rng, test_seed_for(4));
	model_reset(m, rng_next(&rng));
	parent_commits(fx->path, m, 20);
	for (int i = 0; i < NREADERS; i++)
		reader_start(&readers[i], fx->path, m->seed, &rng);
	/* Readers at work before the first kill (a hung one meets the
	 * watchdog). */
	while (atomic_load(&sh->snapshots) < NREADERS) {
		for (int i = 0; i < NREADERS; i++)
			reader_alive(&readers[i]);
		usleep(100);
	}
	for (unsigned int round = 0; round < rounds; round++) {
		bool absent;
		writer w;
		int status;

		for (int i = 0; i < NREADERS; i++)
			reader_alive(&readers[i]);
		writer_start(&w, fx->path, m, 0, 0, rng_pct(&rng, 30) ? MMKV_NOSYNC : 0, 0);
		if (await_kill_moment(&w, &rng, &status)) {
			kill(w.pid, SIGKILL);
			status = reap(w.pid);
		}
		snprintf(where, sizeof(where),
		         "writer kill %u with readers (%s, from commit %" PRIu64 ")", round,
		         mode_name(), m->k);
		judge_writer(&w, status, m, &f, false, &absent, where);
		f.rk_writer_kills++;
		/* The dead writer's lock is gone: the next writer proceeds. */
		parent_commits(fx->path, m, m->k + 1);
		if (rng_pct(&rng, 25)) {
			reader_slot *r = &readers[rng_below(&rng, NREADERS)];

			kill(r->pid, SIGKILL);
			expect_killed(reap(r->pid), false, "reader");
			expect_reader_gone(fx->path, r->pid, &f);
			f.rk_reader_kills++;
			reader_start(r, fx->path, m->seed, &rng);
		}
	}
	for (int i = 0; i < NREADERS; i++) {
		reader_alive(&readers[i]);
		kill(readers[i].pid, SIGKILL);
		expect_killed(reap(readers[i].pid), false, "reader");
		f.rk_reader_kills++;
	}
	if (atomic_load(&sh->violations))
		fail_msg("%s", child_msg());
	{
		bool absent;
		verify_db(fx->path, m, m->k, m->k, &f, &absent, "after the reader test");
	}
	f.rk_snapshots = atomic_load(&sh->snapshots);
	f.rk_rechecks = atomic_load(&sh->rechecks);
	print_message("crash reader_kills %s: %" PRIu64 " writer kills (%" PRIu64
	              " in commit), %" PRIu64 " reader kills (%" PRIu64
	              " slots cleared by reader_check), %" PRIu64
	              " snapshots verified by readers (%" PRIu64
	              " again after holding them), up to commit %" PRIu64
	              "; data file up to %" PRIu64 " KiB\n",
	              mode_name(), f.rk_writer_kills, f.by_phase[PH_COMMIT], f.rk_reader_kills,
	              f.rk_slots_cleared, f.rk_snapshots, f.rk_rechecks, f.max_commit,
	              f.max_file >> 10);
	assert_true(f.rk_snapshots >= NREADERS);
	figures_add(&f);
	free(m);
}

/* ================================================================= main */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_io_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_kills, setup, teardown),
	};
	int failed;

	/* Without TMPDIR, tmpfs: thousands of databases are synced. */
	if (getenv("TMPDIR") == NULL && access("/dev/shm", W_OK | X_OK) == 0)
		setenv("TMPDIR", "/dev/shm", 1);
	crash_kills = env_uint("MMKV_CRASH_KILLS", 2000, 2, 10000000);
	run_seed = test_seed("test_crash");
	printf("test_crash: %u random writer kills over both write modes (MMKV_CRASH_KILLS)\n",
	       crash_kills);
	/* Generous: only a hang should meet it. */
	program_seconds = 900 + crash_kills / 4;
	watchdog(program_seconds);
	failed = RUN_BOTH_MODES("crash", tests);
	printf("test_crash: %" PRIu64 " random writer kills (%" PRIu64
	       " inside mmkv_txn_commit: %" PRIu64
	       " found the new commit, %" PRIu64 " the old), %" PRIu64 " I/O-index kills in %" PRIu64
	       " runs, %" PRIu64 " kills while opening/closing, %" PRIu64 " writer and %" PRIu64
	       " reader kills with readers active; %" PRIu64 " states opened, checked and compared "
	       "with the model; %" PRIu64 " commits acknowledged; %s\n",
	       total.kills, total.kills_in_commit, total.kills_new, total.kills_old,
	       total.io_kills, total.io_runs, total.open_kills, total.rk_writer_kills,
	       total.rk_reader_kills, total.states, total.acks, failed ? "FAILED" : "all passed");
	return failed ? 1 : 0;
}
