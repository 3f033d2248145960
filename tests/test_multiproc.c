/*
 * test_multiproc.c - many processes at once, killed at random: the stress
 * test of the lock file, the reader table and the commit protocol.
 *
 * One writer process keeps an invariant in every commit: NACCOUNTS accounts
 * whose total never changes (money moves between them), a generation counter
 * "g" that every commit increments, and "t", the txnid of the commit; it also
 * adds and deletes filler records so that the tree keeps changing shape. After
 * each commit returns 0 it writes the generation to a pipe: the parent knows
 * every acknowledged commit. Reader processes take snapshots over and over,
 * hold them for random short times (a few gets, sometimes a cursor scan, a
 * sleep, a second look), and verify: the total, "t" equal to the snapshot's
 * txnid, and generations that never go backwards within the process.
 *
 * The parent kills readers and the writer with SIGKILL at random moments and
 * starts new ones; after each writer kill it checks, and so does the next
 * writer, that the database's generation is at least the last acknowledged
 * one and the invariant holds. The reader table is small, so that new readers
 * can only start if the slots of killed ones are reclaimed. A parent handle
 * stays open throughout, so the lock file is never re-initialised.
 *
 * Afterwards, with every reader killed (most of them inside a snapshot),
 * more commits must not make the file grow for ever: the dead readers'
 * snapshots are released. Then the checker runs and the figures are printed.
 *
 * Nothing is asserted on time: random sleeps only decide when to kill. The
 * seed is printed; MMKV_TEST_SEED=N reproduces the kill schedule (not the
 * exact interleaving). The default run is sized for CI; a soak:
 *
 *     MMKV_SOAK_SECONDS=600 MMKV_SOAK_READERS=8 tests/test_multiproc
 *
 * (seconds for the whole program, split between the two write modes;
 * readers per mode; MMKV_SOAK_VERBOSE=1 adds a status line every second).
 * A watchdog fails the program if it hangs.
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
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmkv.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))

#define NACCOUNTS 64
#define INITIAL_BALANCE 1000u
#define TOTAL ((uint64_t)NACCOUNTS * INITIAL_BALANCE)
#define NFILLERS 500
#define FILLER_MAX 3000

/* Defaults of the CI run: seconds for the whole program, readers. */
#define DEFAULT_SECONDS 30
#define DEFAULT_READERS 3
#define MAX_READERS 64
/* Kills each write mode must reach, however long that takes. */
#define MIN_READER_KILLS 200
#define MIN_WRITER_KILLS 50
/* Commits per measurement of the growth phase. */
#define GROW_COMMITS 400
/* Pages the newest snapshot's high-water mark may rise between the last two
 * measurements (a leak of the dead readers' pins would add hundreds). */
#define GROW_SLACK_PAGES 32

static unsigned int soak_seconds = DEFAULT_SECONDS;
static unsigned int nreaders = DEFAULT_READERS;
static bool verbose; /* MMKV_SOAK_VERBOSE: a status line every second */

/* ----------------------------------------------------- shared counters */

/* Shared by every process of one run (MAP_SHARED | MAP_ANONYMOUS): plain
 * atomics, which SIGKILL cannot leave half-updated. */
typedef struct shared {
	atomic_ullong verified_reads;
	atomic_ullong scans;
	atomic_ullong renews;
	atomic_ullong violations;
	atomic_int have_msg;
	char msg[512];
} shared;

static shared *sh;

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void violation(const char *fmt, ...)
{
	char buf[480];
	int zero = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&sh->violations, 1);
	fprintf(stderr, "VIOLATION (pid %d): %s\n", (int)getpid(), buf);
	fflush(stderr);
	if (atomic_compare_exchange_strong(&sh->have_msg, &zero, 1))
		snprintf(sh->msg, sizeof(sh->msg), "pid %d: %s", (int)getpid(), buf);
}

/* ------------------------------------------------------------ processes */


/* SIGKILL a child and reap it. True when our signal ended it; otherwise it
 * had died on its own, which is a violation. */
static bool kill_child(pid_t pid, const char *what)
{
	int status;
	char how[96];

	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return true;
	describe_wait_status(status, how, sizeof(how));
	violation("%s %d ended by itself with %s", what, (int)pid, how);
	return false;
}

/* ------------------------------------------------------------ the data */

static void account_key(char k[8], unsigned int i)
{
	snprintf(k, 8, "a%02u", i);
}

static void filler_key(char k[8], unsigned int i)
{
	snprintf(k, 8, "f%03u", i);
}

static mmkv_dbi dflt(mmkv_txn *txn)
{
	mmkv_dbi dbi = (mmkv_dbi)-1;

	mmkv_dbi_open(txn, NULL, 0, &dbi);
	return dbi;
}

static int get_u64(mmkv_txn *txn, mmkv_dbi dbi, const char *k, uint64_t *v)
{
	mmkv_val key = sval(k), val;
	int rc = mmkv_get(txn, dbi, &key, &val);

	if (rc)
		return rc;
	if (val.size != sizeof(*v))
		return MMKV_CORRUPTED;
	memcpy(v, val.data, sizeof(*v));
	return 0;
}

static int put_u64v(mmkv_txn *txn, mmkv_dbi dbi, const char *k, uint64_t v)
{
	mmkv_val key = sval(k), val = mkval(&v, sizeof(v));

	return mmkv_put(txn, dbi, &key, &val, 0);
}

/* The state of one snapshot (or write transaction). */
typedef struct view {
	uint64_t g, t;
	uint64_t bal[NACCOUNTS];
	uint64_t sum;
} view;

/* Read g, t and every balance, by gets or by a cursor scan. Returns 0 or an
 * error code; *what names the failing call. */
static int read_state(mmkv_txn *txn, bool scan, view *s, const char **what)
{
	mmkv_dbi dbi = dflt(txn);
	char k[8];
	int rc;

	s->sum = 0;
	*what = "get g";
	if ((rc = get_u64(txn, dbi, "g", &s->g)) != 0)
		return rc;
	*what = "get t";
	if ((rc = get_u64(txn, dbi, "t", &s->t)) != 0)
		return rc;
	if (!scan) {
		*what = "get account";
		for (unsigned int i = 0; i < NACCOUNTS; i++) {
			account_key(k, i);
			if ((rc = get_u64(txn, dbi, k, &s->bal[i])) != 0)
				return rc;
			s->sum += s->bal[i];
		}
		return 0;
	}
	{
		mmkv_cursor *cur;
		mmkv_val key = sval("a"), val;
		unsigned int n = 0;

		*what = "cursor";
		if ((rc = mmkv_cursor_open(txn, dbi, &cur)) != 0)
			return rc;
		rc = mmkv_cursor_get(cur, &key, &val, MMKV_SET_RANGE);
		while (rc == 0 && key.size == 3 && ((const char *)key.data)[0] == 'a') {
			if (n >= NACCOUNTS || val.size != 8) {
				rc = MMKV_CORRUPTED;
				*what = "cursor scan: extra account or bad size";
				break;
			}
			memcpy(&s->bal[n], val.data, 8);
			s->sum += s->bal[n++];
			rc = mmkv_cursor_get(cur, &key, &val, MMKV_NEXT);
		}
		if (rc == MMKV_NOTFOUND)
			rc = 0;
		if (rc == 0 && n != NACCOUNTS) {
			rc = MMKV_CORRUPTED;
			*what = "cursor scan: accounts missing";
		}
		mmkv_cursor_close(cur);
		return rc;
	}
}

/* Check the invariant of a snapshot whose txnid is id (0: a write
 * transaction, whose t must be below its own id). Reports violations; true
 * when all is well. */
static bool check_state(const view *s, uint64_t id, bool write, const char *who)
{
	bool ok = true;

	if (s->sum != TOTAL) {
		violation("%s: accounts total %" PRIu64 ", expected %" PRIu64 " (g %" PRIu64 ")", who,
		          s->sum, TOTAL, s->g);
		ok = false;
	}
	if (!write && s->t != id) {
		violation("%s: t = %" PRIu64 " in the snapshot of txn %" PRIu64, who, s->t, id);
		ok = false;
	}
	if (write && s->t >= id) {
		violation("%s: t = %" PRIu64 " not below the write txn %" PRIu64, who, s->t, id);
		ok = false;
	}
	return ok;
}

static void rpt(const char *who, const char *what, int rc)
{
	violation("%s: %s: %d (%s)", who, what, rc, mmkv_strerror(rc));
}

static int open_child_env(const char *path, unsigned int extra, mmkv_env **out)
{
	mmkv_env *env = NULL;
	int rc = mmkv_env_create(&env);

	if (rc == 0)
		rc = mmkv_env_set_maxreaders(env, nreaders + 13 > 16 ? nreaders + 13 : 16);
	if (rc == 0)
		rc = mmkv_env_open(env, path, env_flags(extra), 0644);
	if (rc) {
		mmkv_env_close(env);
		return rc;
	}
	*out = env;
	return 0;
}

/* --------------------------------------------------------------- writer */

typedef struct writer_args {
	const char *path;
	int ack_fd;           /* write end of the ack pipe */
	int ack_rd;           /* the parent's read end, closed in the child */
	uint64_t last_acked;  /* newest generation acknowledged before this writer */
	uint64_t seed;
} writer_args;

static int transfer(mmkv_txn *txn, mmkv_dbi dbi, test_rng *rng)
{
	unsigned int i = (unsigned int)rng_below(rng, NACCOUNTS);
	unsigned int j = (unsigned int)((i + 1 + rng_below(rng, NACCOUNTS - 1)) % NACCOUNTS);
	uint64_t bi, bj, x;
	char ki[8], kj[8];
	int rc;

	account_key(ki, i);
	account_key(kj, j);
	if ((rc = get_u64(txn, dbi, ki, &bi)) != 0 || (rc = get_u64(txn, dbi, kj, &bj)) != 0)
		return rc;
	x = rng_below(rng, bi + 1);
	if ((rc = put_u64v(txn, dbi, ki, bi - x)) != 0)
		return rc;
	return put_u64v(txn, dbi, kj, bj + x);
}

static int churn_filler(mmkv_txn *txn, mmkv_dbi dbi, test_rng *rng)
{
	static unsigned char buf[FILLER_MAX];
	unsigned int i = (unsigned int)rng_below(rng, NFILLERS);
	char k[8];
	mmkv_val key, val;
	int rc;

	filler_key(k, i);
	key = sval(k);
	if (rng_pct(rng, 40)) {
		rc = mmkv_del(txn, dbi, &key, NULL);
		return rc == MMKV_NOTFOUND ? 0 : rc;
	}
	val = mkval(buf, rng_range(rng, 8, FILLER_MAX));
	rng_fill(rng, buf, val.size);
	return mmkv_put(txn, dbi, &key, &val, 0);
}

/* One commit of the writer's workload; *g and *t receive its generation and
 * txnid. */
static int write_one(mmkv_env *env, test_rng *rng, bool fillers, bool verify, uint64_t last_acked,
                     uint64_t *g, uint64_t *t)
{
	mmkv_txn *txn = NULL;
	mmkv_dbi dbi;
	view s;
	const char *what = "begin";
	int rc = mmkv_txn_begin(env, NULL, 0, &txn);

	if (rc)
		goto fail;
	dbi = dflt(txn);
	if (verify) {
		/* A new writer takes over: nothing acknowledged may be lost. */
		rc = read_state(txn, rng_pct(rng, 50), &s, &what);
		if (rc)
			goto fail;
		check_state(&s, mmkv_txn_id(txn), true, "new writer");
		if (s.g < last_acked)
			violation("new writer: generation %" PRIu64 " < acknowledged %" PRIu64, s.g,
			          last_acked);
	}
	what = "transfer";
	for (unsigned int n = (unsigned int)rng_range(rng, 1, 4); n > 0; n--)
		if ((rc = transfer(txn, dbi, rng)) != 0)
			goto fail;
	what = "filler";
	if (fillers && rng_pct(rng, 40))
		for (unsigned int n = (unsigned int)rng_range(rng, 1, 3); n > 0; n--)
			if ((rc = churn_filler(txn, dbi, rng)) != 0)
				goto fail;
	what = "g and t";
	if ((rc = get_u64(txn, dbi, "g", g)) != 0 || (rc = put_u64v(txn, dbi, "g", ++*g)) != 0 ||
	    (rc = put_u64v(txn, dbi, "t", *t = mmkv_txn_id(txn))) != 0)
		goto fail;
	what = "commit";
	rc = mmkv_txn_commit(txn);
	txn = NULL;
	if (rc)
		goto fail;
	return 0;
fail:
	mmkv_txn_abort(txn);
	rpt("writer", what, rc);
	return rc;
}

static int writer_main(void *arg)
{
	writer_args *a = arg;
	mmkv_env *env = NULL;
	test_rng rng;
	int rc;

	close(a->ack_rd);
	rng_init(&rng, a->seed);
	/* Durability across a process kill needs no sync: half the writers
	 * skip it, which changes where in a commit the kills land. */
	rc = open_child_env(a->path, rng_pct(&rng, 50) ? MMKV_NOSYNC : 0, &env);
	if (rc) {
		rpt("writer", "open", rc);
		_exit(3);
	}
	for (bool first = true;; first = false) {
		uint64_t ack[2];
		if (write_one(env, &rng, true, first, a->last_acked, &ack[0], &ack[1]) != 0)
			_exit(4);
		if (write(a->ack_fd, ack, sizeof(ack)) != (ssize_t)sizeof(ack)) {
			violation("writer: ack pipe: %s", strerror(errno));
			_exit(5);
		}
		if (rng_pct(&rng, 10))
			usleep((useconds_t)rng_below(&rng, 1000));
	}
}

/* --------------------------------------------------------------- reader */

typedef struct reader_args {
	const char *path;
	uint64_t seed;
} reader_args;

static int reader_main(void *arg)
{
	reader_args *a = arg;
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	test_rng rng;
	uint64_t last_t = 0, last_g = 0;
	const char *what;
	view s, again, prev;
	int rc;

	memset(&prev, 0, sizeof(prev));

	rng_init(&rng, a->seed);
	rc = open_child_env(a->path, rng_pct(&rng, 50) ? MMKV_RDONLY : 0, &env);
	if (rc) {
		rpt("reader", "open", rc);
		_exit(3);
	}
	for (;;) {
		uint64_t id;
		bool scan = rng_pct(&rng, 30);

		if (txn != NULL && rng_pct(&rng, 50)) {
			mmkv_txn_reset(txn);
			rc = mmkv_txn_renew(txn);
			what = "renew";
			atomic_fetch_add(&sh->renews, 1);
		} else {
			mmkv_txn_abort(txn);
			txn = NULL;
			rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
			what = "begin";
		}
		if (rc) {
			rpt("reader", what, rc);
			_exit(4);
		}
		id = mmkv_txn_id(txn);
		rc = read_state(txn, scan, &s, &what);
		if (rc) {
			rpt("reader", what, rc);
			_exit(4);
		}
		if (!check_state(&s, id, false, "reader"))
			_exit(6);
		if (last_t != 0 && (id < last_t || (id == last_t && s.g != last_g) ||
		                    (id > last_t && s.g <= last_g))) {
			violation("reader: went from txn %" PRIu64 " g %" PRIu64 " to txn %" PRIu64
			          " g %" PRIu64,
			          last_t, last_g, id, s.g);
			_exit(6);
		}
		/* One txnid, one content. */
		if (id == last_t && memcmp(prev.bal, s.bal, sizeof(s.bal)) != 0) {
			violation("reader: two snapshots of txn %" PRIu64 " (g %" PRIu64 ") differ", id,
			          s.g);
			_exit(6);
		}
		last_t = id;
		last_g = s.g;
		prev = s;

		/* Hold the snapshot a while, then look again: nothing moves. */
		if (rng_pct(&rng, 50)) {
			usleep((useconds_t)rng_below(&rng, rng_pct(&rng, 5) ? 30000 : 3000));
			rc = read_state(txn, !scan, &again, &what);
			if (rc) {
				rpt("reader", what, rc);
				_exit(4);
			}
			if (again.g != s.g || again.t != s.t ||
			    memcmp(again.bal, s.bal, sizeof(s.bal)) != 0 || mmkv_txn_id(txn) != id) {
				violation("reader: snapshot of txn %" PRIu64 " changed while held", id);
				_exit(6);
			}
		}
		if (scan)
			atomic_fetch_add(&sh->scans, 1);
		atomic_fetch_add(&sh->verified_reads, 1);
	}
}

/* --------------------------------------------------------------- parent */

typedef struct run_figures {
	uint64_t commits;       /* acknowledged */
	uint64_t last_acked, last_acked_t;
	uint64_t reader_kills, writer_kills, writers;
} run_figures;

/* Read the acks available now (fd non-blocking), or, with to_eof, all of
 * them until the writer's end is closed. An ack is (generation, txnid). */
static void drain_acks(int fd, run_figures *f, bool to_eof)
{
	uint64_t buf[512];

	for (;;) {
		ssize_t got = read(fd, buf, sizeof(buf));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN) {
			struct pollfd pfd = { fd, POLLIN, 0 };
			if (!to_eof)
				return;
			/* The writer is dead, so its end is closed: EOF is near. */
			if (poll(&pfd, 1, 60000) == 0)
				fail_msg("ack pipe still open after the writer died");
			continue;
		}
		if (got < 0)
			fail_msg("read acks: %s", strerror(errno));
		if (got == 0)
			return;
		/* 16-byte writes to a pipe are atomic: reads hold whole acks. */
		if (got % 16 != 0)
			fail_msg("partial ack (%zd bytes)", got);
		for (ssize_t i = 0; i < got / 8; i += 2) {
			f->commits++;
			if (buf[i] <= f->last_acked || buf[i + 1] <= f->last_acked_t)
				violation("commit acknowledged as generation %" PRIu64 ", txn %" PRIu64
				          " after generation %" PRIu64 ", txn %" PRIu64,
				          buf[i], buf[i + 1], f->last_acked, f->last_acked_t);
			f->last_acked = buf[i];
			f->last_acked_t = buf[i + 1];
		}
	}
}

/* After a writer died: the newest snapshot holds every acknowledged commit
 * and the invariant. */
static void check_after_writer(mmkv_env *env, const run_figures *f, const char *who)
{
	mmkv_txn *txn = NULL;
	const char *what;
	view s;
	int rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);

	if (rc == 0)
		rc = read_state(txn, false, &s, &what);
	else
		what = "begin";
	if (rc) {
		rpt(who, what, rc);
	} else {
		check_state(&s, mmkv_txn_id(txn), false, who);
		if (s.g < f->last_acked)
			violation("%s: generation %" PRIu64 " < acknowledged %" PRIu64, who, s.g,
			          f->last_acked);
	}
	mmkv_txn_abort(txn);
}

typedef struct writer_slot {
	pid_t pid;
	int ack_rd;
	writer_args args;
} writer_slot;

static void start_writer(writer_slot *w, const char *path, run_figures *f, test_rng *rng)
{
	int fd[2];

	if (pipe(fd) != 0)
		fail_msg("pipe: %s", strerror(errno));
	w->args = (writer_args){ path, fd[1], fd[0], f->last_acked, rng_next(rng) };
	w->pid = spawn_child(writer_main, &w->args, soak_seconds + 600);
	/* Only the writer holds the write end: EOF when it dies. */
	close(fd[1]);
	assert_int_equal(fcntl(fd[0], F_SETFL, O_NONBLOCK), 0);
	w->ack_rd = fd[0];
	f->writers++;
}

static void stop_writer(writer_slot *w, mmkv_env *monitor, run_figures *f)
{
	if (kill_child(w->pid, "writer"))
		f->writer_kills++;
	drain_acks(w->ack_rd, f, true);
	close(w->ack_rd);
	w->pid = -1;
	check_after_writer(monitor, f, "after writer kill");
}

typedef struct reader_slot {
	pid_t pid;
	reader_args args;
} reader_slot;

static void start_reader(reader_slot *r, const char *path, test_rng *rng)
{
	r->args = (reader_args){ path, rng_next(rng) };
	r->pid = spawn_child(reader_main, &r->args, soak_seconds + 600);
}

/* A child that died without our signal is a violation; it is replaced. */
static bool died_unasked(pid_t pid, const char *what)
{
	int status;
	char how[96];
	pid_t r = waitpid(pid, &status, WNOHANG);

	if (r == 0 || (r < 0 && errno == EINTR))
		return false;
	if (r < 0)
		fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
	describe_wait_status(status, how, sizeof(how));
	violation("%s %d died unasked: %s", what, (int)pid, how);
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct listing {
	uint64_t n, max_lag, pinned;
} listing;

static int count_reader(void *ctx, const mmkv_reader_info *info)
{
	listing *l = ctx;

	l->n++;
	if (info->lag > l->max_lag)
		l->max_lag = info->lag;
	l->pinned += info->pinned_pages;
	return 0;
}

static listing list_readers(mmkv_env *env)
{
	listing l = { 0, 0, 0 };

	assert_ok(mmkv_reader_list(env, count_reader, &l));
	return l;
}

static void test_many_processes(void **state)
{
	test_fixture *fx = FX(state);
	const char *mode = test_env_flags & MMKV_WRITEMAP ? "writemap" : "default";
	uint64_t seed = test_seed("test_multiproc");
	uint64_t run_ms = (uint64_t)soak_seconds * 1000 / 2, start, last_status, g, t;
	unsigned int maxreaders = nreaders + 13 > 16 ? nreaders + 13 : 16;
	reader_slot readers[MAX_READERS];
	writer_slot writer;
	run_figures f = { 0 };
	mmkv_envinfo i1, i2, i3;
	listing before, after;
	mmkv_env *monitor, *genv;
	mmkv_txn *txn;
	test_rng rng;
	char k[8];

	rng_init(&rng, seed);
	if (sh != NULL) /* left by a failed run of the other write mode */
		munmap(sh, sizeof(*sh));
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));

	/* The monitor initialises the lock file and stays open to the end. */
	monitor = fx->env = env_new(); /* closed by the teardown if a check fails */
	assert_ok(mmkv_env_set_maxreaders(monitor, maxreaders));
	env_open_ok(monitor, fx->path, 0);
	txn = txn_write(monitor);
	for (unsigned int i = 0; i < NACCOUNTS; i++) {
		uint64_t b = INITIAL_BALANCE;
		account_key(k, i);
		put_ok(txn, dflt(txn), k, strlen(k), &b, sizeof(b));
	}
	assert_ok(put_u64v(txn, dflt(txn), "g", 0));
	assert_ok(put_u64v(txn, dflt(txn), "t", mmkv_txn_id(txn)));
	assert_ok(mmkv_txn_commit(txn));

	start_writer(&writer, fx->path, &f, &rng);
	for (unsigned int i = 0; i < nreaders; i++)
		start_reader(&readers[i], fx->path, &rng);

	/* The kill phase: random moments, random victims. */
	start = last_status = now_ms();
	while (now_ms() - start < run_ms || f.reader_kills < MIN_READER_KILLS ||
	       f.writer_kills < MIN_WRITER_KILLS) {
		unsigned int dice;

		if (verbose && now_ms() - last_status >= 1000) {
			mmkv_envinfo in;
			listing l = list_readers(monitor);
			last_status = now_ms();
			assert_ok(mmkv_env_info(monitor, &in));
			print_message("%5.1f s: %" PRIu64 " commits, %llu reads, %" PRIu64
			              " reader / %" PRIu64 " writer kills; file %" PRIu64
			              " MB, %" PRIu64 " pages in use, %" PRIu64 " free; %" PRIu64
			              " readers listed, lag up to %" PRIu64 ", %" PRIu64 " pages pinned\n",
			              (double)(last_status - start) / 1000, f.commits,
			              (unsigned long long)sh->verified_reads, f.reader_kills,
			              f.writer_kills, in.file_size >> 20, in.last_pgno, in.free_pages,
			              l.n, l.max_lag, l.pinned);
		}

		drain_acks(writer.ack_rd, &f, false);
		for (unsigned int i = 0; i < nreaders; i++)
			if (died_unasked(readers[i].pid, "reader"))
				start_reader(&readers[i], fx->path, &rng);
		if (died_unasked(writer.pid, "writer")) {
			drain_acks(writer.ack_rd, &f, true);
			close(writer.ack_rd);
			start_writer(&writer, fx->path, &f, &rng);
		}
		usleep((useconds_t)rng_range(&rng, 500, 15000));
		dice = (unsigned int)rng_below(&rng, 100);
		if (dice < 25) {
			reader_slot *r = &readers[rng_below(&rng, nreaders)];
			if (kill_child(r->pid, "reader"))
				f.reader_kills++;
			start_reader(r, fx->path, &rng);
		} else if (dice < 31) {
			stop_writer(&writer, monitor, &f);
			start_writer(&writer, fx->path, &f, &rng);
		}
	}

	/* Everyone dies, most readers inside a snapshot. */
	stop_writer(&writer, monitor, &f);
	for (unsigned int i = 0; i < nreaders; i++)
		if (kill_child(readers[i].pid, "reader"))
			f.reader_kills++;

	/* No live reader now: commits must reuse pages again once the dead
	 * readers' slots are cleared, so the file stops growing. */
	before = list_readers(monitor);
	genv = env_new();
	assert_ok(mmkv_env_set_maxreaders(genv, maxreaders));
	env_open_ok(genv, fx->path, MMKV_NOSYNC);
	for (int i = 0; i < GROW_COMMITS; i++)
		assert_ok(write_one(genv, &rng, false, false, 0, &g, &t));
	after = list_readers(monitor);
	assert_ok(mmkv_env_info(genv, &i1));
	for (int i = 0; i < GROW_COMMITS; i++)
		assert_ok(write_one(genv, &rng, false, false, 0, &g, &t));
	assert_ok(mmkv_env_info(genv, &i2));
	for (int i = 0; i < GROW_COMMITS; i++)
		assert_ok(write_one(genv, &rng, false, false, 0, &g, &t));
	assert_ok(mmkv_env_info(genv, &i3));
	mmkv_env_close(genv);
	assert_ok(mmkv_env_sync(monitor, 1));

	print_message("multiproc %s: %" PRIu64 " commits acknowledged (%" PRIu64
	              " writers), %llu verified reads (%llu cursor scans, %llu renews), %" PRIu64
	              " reader kills, %" PRIu64 " writer kills, %llu violations\n",
	              mode, f.commits, f.writers, (unsigned long long)sh->verified_reads,
	              (unsigned long long)sh->scans, (unsigned long long)sh->renews, f.reader_kills,
	              f.writer_kills, (unsigned long long)sh->violations);
	print_message("multiproc %s: after the kills %" PRIu64 " dead readers listed (lag up to %" PRIu64
	              ", %" PRIu64 " pages pinned), %" PRIu64 " after %d commits; file %" PRIu64
	              " / %" PRIu64 " / %" PRIu64 " bytes, %" PRIu64 " / %" PRIu64 " / %" PRIu64
	              " pages in use after %d / %d / %d more commits\n",
	              mode, before.n, before.max_lag, before.pinned, after.n, GROW_COMMITS,
	              i1.file_size, i2.file_size, i3.file_size, i1.last_pgno, i2.last_pgno,
	              i3.last_pgno, GROW_COMMITS, 2 * GROW_COMMITS, 3 * GROW_COMMITS);

	if (atomic_load(&sh->violations) != 0)
		fail_msg("%llu violations; first: %s", (unsigned long long)sh->violations, sh->msg);
	assert_true(f.reader_kills >= MIN_READER_KILLS);
	assert_true(f.writer_kills >= MIN_WRITER_KILLS);
	assert_true(sh->verified_reads > 0);
	assert_true(f.commits > 0);

	/* Dead readers may stay listed while they hold back nothing the
	 * writer needs; the file must stop growing all the same. */
	if (i3.last_pgno > i2.last_pgno + GROW_SLACK_PAGES)
		fail_msg("pages in use keep growing with no reader: %" PRIu64 " -> %" PRIu64
		         " -> %" PRIu64,
		         i1.last_pgno, i2.last_pgno, i3.last_pgno);
	{
		/* At most one growth step of the file (it grows by half its size
		 * or growth_step at least, so any growth is one step). */
		uint64_t step = i2.file_size / 2 > i2.growth_step ? i2.file_size / 2 : i2.growth_step;
		if (i3.file_size > i2.file_size + step + 65536)
			fail_msg("file keeps growing with no reader: %" PRIu64 " -> %" PRIu64
			         " -> %" PRIu64 " bytes",
			         i1.file_size, i2.file_size, i3.file_size);
	}

	/* The final state: every acknowledged commit, the invariant, the check. */
	check_after_writer(monitor, &f, "final");
	txn = txn_read(monitor);
	{
		uint64_t fg;
		assert_ok(get_u64(txn, dflt(txn), "g", &fg));
		assert_int_equal(fg, g);
		assert_true(fg >= f.last_acked + 3 * GROW_COMMITS);
	}
	mmkv_txn_abort(txn);
	assert_int_equal(atomic_load(&sh->violations), 0);
	check_env(monitor);
	mmkv_env_close(monitor);
	fx->env = NULL;
	munmap(sh, sizeof(*sh));
	sh = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_many_processes, tu_setup, tu_teardown),
	};

	soak_seconds = env_uint("MMKV_SOAK_SECONDS", DEFAULT_SECONDS, 2, 7 * 24 * 3600);
	nreaders = env_uint("MMKV_SOAK_READERS", DEFAULT_READERS, 1, MAX_READERS);
	verbose = env_uint("MMKV_SOAK_VERBOSE", 0, 0, 1) != 0;
	printf("test_multiproc: %u s, %u readers per write mode\n", soak_seconds, nreaders);
	/* Generous: the minimum kill counts may stretch a slow run. */
	watchdog(soak_seconds * 2 + 300);
	return RUN_BOTH_MODES("multiproc", tests) ? 1 : 0;
}
