/*
 * test_procs.c - behaviours that need several processes, through <mmkv.h> only.
 *
 * Covers: a reader table filled with the slots of readers killed while they
 * held snapshots (listed as stale, cleared by mmkv_reader_check, reclaimed
 * automatically when the table is full); mmkv_reader_list reporting pid,
 * snapshot, lag and pinned pages of live readers in this and other processes;
 * mmkv_env_wait waking processes on a commit and timing out without one; a
 * writer killed inside its write transaction not blocking the next writer,
 * its puts gone; one database opened twice in one process, one handle closed
 * while the other keeps its locks; an environment used across fork()
 * (MMKV_PANIC in the child); the snapshot lag limit (MMKV_SNAPSHOT_TOO_OLD)
 * and its absence by default; a hostile process writing random bytes into the
 * lock file while others read and write; MMKV_RDONLY on a data file the
 * process cannot write.
 *
 * Children never call cmocka: they report through pipes and their exit
 * status, print what went wrong on stderr, and leave with _exit(). The parent
 * synchronises with pipes and waitpid only; where a short sleep appears it
 * only makes an interleaving likely, and nothing is asserted on time. Every
 * child dies with the parent (PR_SET_PDEATHSIG) and on its own alarm.
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
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmkv.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))

/* Seconds a child may live (it also dies with the parent). */
#define CHILD_ALARM 120
/* Seconds the parent waits for a report before calling the child hung. */
#define REPORT_TIMEOUT 60
/* Exit status of the RDONLY child that could not become an unprivileged user. */
#define CHILD_SKIP 77

/* The program's watchdog, restored after a test shortens it. */
static const unsigned int program_watchdog = 600;

/* ------------------------------------------------------------ processes */


static int reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
	}
	return status;
}

/* Wait for the child and assert it exited with status code. */
static void expect_exit(pid_t pid, int code)
{
	int status = reap(pid);
	char what[96];

	if (!WIFEXITED(status) || WEXITSTATUS(status) != code) {
		describe_wait_status(status, what, sizeof(what));
		fail_msg("child %d ended with %s, expected exit status %d", (int)pid, what, code);
	}
}

/* SIGKILL the child and reap it; it must have been alive until then. */
static void kill_and_reap(pid_t pid)
{
	int status;
	char what[96];

	assert_int_equal(kill(pid, SIGKILL), 0);
	status = reap(pid);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		describe_wait_status(status, what, sizeof(what));
		fail_msg("child %d ended with %s before it was killed", (int)pid, what);
	}
}

/* A child's failure: say what and where on stderr, return the exit code. */
static int child_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int child_fail(int code, const char *fmt, ...)
{
	va_list ap;
	char buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "child %d: %s\n", (int)getpid(), buf);
	fflush(stderr);
	return code;
}

/* ---------------------------------------------------------------- pipes */

/* What children tell the parent: one atomic pipe write each. */
typedef struct report {
	int32_t rc;   /* an mmkv return code */
	int32_t pid;
	uint64_t a;   /* meaning depends on the test */
	uint64_t b;
} report;

typedef struct chan {
	int rd, wr;
} chan;

static chan chan_new(void)
{
	int fd[2];
	chan c;

	if (pipe(fd) != 0)
		fail_msg("pipe: %s", strerror(errno));
	c.rd = fd[0];
	c.wr = fd[1];
	return c;
}

static void fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void chan_close(chan *c)
{
	fd_close(&c->rd);
	fd_close(&c->wr);
}

static bool write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Blocking read of exactly n bytes; false on EOF or error. */
static bool read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* Child side: send a report. */
static bool send_report(int fd, int rc, uint64_t a, uint64_t b)
{
	report r = { rc, (int32_t)getpid(), a, b };

	return write_full(fd, &r, sizeof(r));
}

/* Parent side: the next report, failing if the children hang or all exit
 * without one (the parent must have closed its own write end). */
static report recv_report(int fd)
{
	report r;
	char *p = (char *)&r;
	size_t n = sizeof(r);

	while (n > 0) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int pr = poll(&pfd, 1, REPORT_TIMEOUT * 1000);
		ssize_t got;

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			fail_msg("no report from a child in %d s: hung?", REPORT_TIMEOUT);
		got = read(fd, p, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			fail_msg("children ended without reporting (see their stderr)");
		p += got;
		n -= (size_t)got;
	}
	return r;
}

/* Child side: block until the parent writes a byte (true) or closes (false). */
static bool wait_go(int fd)
{
	char c;

	return read_full(fd, &c, 1);
}

static void send_go(int fd)
{
	assert_true(write_full(fd, "g", 1));
}

/* ---------------------------------------------------------- environments */

/* Child side: open an environment, never asserting. */
static int child_open(const char *path, unsigned int extra, unsigned int maxreaders, mmkv_env **out)
{
	mmkv_env *env = NULL;
	int rc = mmkv_env_create(&env);

	if (rc)
		return rc;
	if (maxreaders)
		rc = mmkv_env_set_maxreaders(env, maxreaders);
	if (rc == 0)
		rc = mmkv_env_open(env, path, env_flags(extra), 0644);
	if (rc) {
		mmkv_env_close(env);
		return rc;
	}
	*out = env;
	return 0;
}

/* The default database's handle (not asserting: children use it too; a
 * failure shows up as MMKV_BAD_DBI in the call that uses it). */
static mmkv_dbi dflt(mmkv_txn *txn)
{
	mmkv_dbi dbi = (mmkv_dbi)-1;

	mmkv_dbi_open(txn, NULL, 0, &dbi);
	return dbi;
}

static mmkv_env *open_env_readers(const char *path, unsigned int extra, unsigned int maxreaders)
{
	mmkv_env *env = env_new();

	assert_ok(mmkv_env_set_maxreaders(env, maxreaders));
	env_open_ok(env, path, extra);
	return env;
}

static void put_u64(mmkv_txn *txn, mmkv_dbi dbi, const char *k, uint64_t v)
{
	put_ok(txn, dbi, k, strlen(k), &v, sizeof(v));
}

static uint64_t get_u64(mmkv_txn *txn, mmkv_dbi dbi, const char *k)
{
	mmkv_val key = sval(k), val;
	uint64_t v;

	assert_ok(mmkv_get(txn, dbi, &key, &val));
	assert_int_equal(val.size, sizeof(v));
	memcpy(&v, val.data, sizeof(v));
	return v;
}

/* Child side: the u64 at key k, or an error code. */
static int child_get_u64(mmkv_txn *txn, const char *k, uint64_t *v)
{
	mmkv_val key = sval(k), val;
	int rc = mmkv_get(txn, dflt(txn), &key, &val);

	if (rc)
		return rc;
	if (val.size != sizeof(*v))
		return MMKV_CORRUPTED;
	memcpy(v, val.data, sizeof(*v));
	return 0;
}

/* One committed write of k = v, in the default database. */
static uint64_t commit_u64(mmkv_env *env, const char *k, uint64_t v)
{
	mmkv_txn *txn = txn_write(env);
	uint64_t id = mmkv_txn_id(txn);

	put_u64(txn, dflt(txn), k, v);
	assert_ok(mmkv_txn_commit(txn));
	return id;
}

/* ---------------------------------------------------- reader listings */

#define MAX_LISTED 256

typedef struct listing {
	size_t n;
	mmkv_reader_info r[MAX_LISTED];
	int stop_with; /* nonzero: the callback returns it */
} listing;

static int collect_reader(void *ctx, const mmkv_reader_info *info)
{
	listing *l = ctx;

	if (l->n < MAX_LISTED)
		l->r[l->n++] = *info;
	return l->stop_with;
}

static void list_readers(mmkv_env *env, listing *l)
{
	memset(l, 0, sizeof(*l));
	assert_ok(mmkv_reader_list(env, collect_reader, l));
}

/* The listed reader of pid holding txnid, or NULL. */
static const mmkv_reader_info *find_reader(const listing *l, pid_t pid, uint64_t txnid)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->r[i].pid == (uint32_t)pid && l->r[i].txnid == txnid)
			return &l->r[i];
	return NULL;
}

static size_t count_pid(const listing *l, pid_t pid)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += l->r[i].pid == (uint32_t)pid;
	return n;
}

/* ------------------------------------------------ snapshot holder child */

/* A child that opens its own read-only environment, takes a snapshot,
 * reports (rc, txnid, value of "k"), then holds the snapshot until the
 * parent closes go (or kills it). */
typedef struct holder_args {
	const char *path;
	unsigned int maxreaders;
	chan *report;
	chan *go;
} holder_args;

static int holder_main(void *arg)
{
	holder_args *a = arg;
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	uint64_t v = 0;
	int rc;

	fd_close(&a->report->rd);
	fd_close(&a->go->wr);
	rc = child_open(a->path, MMKV_RDONLY, a->maxreaders, &env);
	if (rc == 0)
		rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc == 0)
		rc = child_get_u64(txn, "k", &v);
	if (!send_report(a->report->wr, rc, rc == 0 ? mmkv_txn_id(txn) : 0, v))
		return child_fail(2, "report pipe closed");
	if (rc != 0)
		return 0; /* the parent decides whether rc was expected */
	while (wait_go(a->go->rd)) {
	}
	mmkv_txn_abort(txn);
	mmkv_env_close(env);
	return 0;
}

/* ---------------------------------------- reader table full of the dead */

#define SMALL_TABLE 4

static void test_dead_readers_fill_table(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *keep, *fresh, *third;
	mmkv_txn *held[SMALL_TABLE + 1], *extra;
	chan rep, go;
	holder_args ha;
	pid_t pids[SMALL_TABLE];
	uint64_t snap;
	listing *l = malloc(sizeof(*l));
	int cleared = -1, started, nheld = 0;

	assert_non_null(l);
	/* keep initialises the lock file with a table of SMALL_TABLE slots and
	 * stays open throughout: the dead slots must be handled as dead, not
	 * wiped by a re-initialisation. */
	keep = open_env_readers(fx->path, 0, SMALL_TABLE);
	snap = commit_u64(keep, "k", 42);

	/* Three readers die holding their snapshots. */
	rep = chan_new();
	go = chan_new();
	ha = (holder_args){ fx->path, SMALL_TABLE, &rep, &go };
	for (int i = 0; i < 3; i++)
		pids[i] = spawn_child(holder_main, &ha, CHILD_ALARM);
	fd_close(&rep.wr);
	for (int i = 0; i < 3; i++) {
		report r = recv_report(rep.rd);
		assert_rc(r.rc, 0);
		assert_int_equal(r.a, snap);
		assert_int_equal(r.b, 42);
	}
	for (int i = 0; i < 3; i++)
		kill_and_reap(pids[i]);
	chan_close(&rep);
	chan_close(&go);

	/* They are listed, stale, until mmkv_reader_check clears them. */
	list_readers(keep, l);
	for (int i = 0; i < 3; i++) {
		if (find_reader(l, pids[i], snap) == NULL)
			fail_msg("dead reader %d (snapshot %" PRIu64 ") not listed; %zu listed",
			         (int)pids[i], snap, l->n);
	}
	assert_ok(mmkv_reader_check(keep, &cleared));
	assert_int_equal(cleared, 3);
	list_readers(keep, l);
	for (int i = 0; i < 3; i++)
		assert_int_equal(count_pid(l, pids[i]), 0);
	assert_ok(mmkv_reader_check(keep, &cleared));
	assert_int_equal(cleared, 0);
	assert_ok(mmkv_reader_check(keep, NULL));

	/* Fill the whole table with readers, then kill them all. keep may own
	 * one slot by now (listing may take a snapshot), so the last child may
	 * find the table full of live readers. */
	rep = chan_new();
	go = chan_new();
	ha = (holder_args){ fx->path, SMALL_TABLE, &rep, &go };
	started = 0;
	for (int i = 0; i < SMALL_TABLE; i++) {
		report r;
		pid_t pid = spawn_child(holder_main, &ha, CHILD_ALARM);
		r = recv_report(rep.rd);
		if (r.rc == MMKV_READERS_FULL) {
			expect_exit(pid, 0);
			break;
		}
		assert_rc(r.rc, 0);
		pids[started++] = pid;
	}
	fd_close(&rep.wr);
	assert_true(started >= SMALL_TABLE - 1);
	print_message("%d readers filled the table of %d\n", started, SMALL_TABLE);
	/* Full of live readers: no slot may be taken from them. */
	fresh = open_env_readers(fx->path, 0, SMALL_TABLE);
	assert_rc(mmkv_txn_begin(fresh, NULL, MMKV_RDONLY, &extra), MMKV_READERS_FULL);
	for (int i = 0; i < started; i++)
		kill_and_reap(pids[i]);
	chan_close(&rep);
	chan_close(&go);

	/* Now full of dead readers: every slot can be had again, across two
	 * handles, and one more than the table holds is refused. */
	held[nheld++] = txn_read(keep);
	while (nheld < SMALL_TABLE)
		held[nheld++] = txn_read(fresh);
	for (int i = 0; i < nheld; i++)
		assert_int_equal(get_u64(held[i], dflt(held[i]), "k"), 42);
	assert_rc(mmkv_txn_begin(fresh, NULL, MMKV_RDONLY, &extra), MMKV_READERS_FULL);
	for (int i = 0; i < nheld; i++)
		mmkv_txn_abort(held[i]);
	assert_ok(mmkv_reader_check(keep, &cleared));
	assert_int_equal(cleared, 0);

	/* A third handle can still read, over and over. */
	mmkv_env_close(fresh);
	third = open_env_readers(fx->path, 0, SMALL_TABLE);
	for (int i = 0; i < 3 * SMALL_TABLE; i++) {
		mmkv_txn *t = txn_read(third);
		assert_int_equal(get_u64(t, dflt(t), "k"), 42);
		mmkv_txn_abort(t);
	}
	commit_u64(third, "k", 43);
	check_env(keep);
	mmkv_env_close(third);
	mmkv_env_close(keep);
	free(l);
}

/* ------------------------------------------------- reader list and lag */

#define LAG_KEYS 400
#define LAG_COMMITS 5

static void fill_lag_keys(mmkv_env *env, uint64_t round)
{
	mmkv_txn *txn = txn_write(env);
	unsigned char val[100];
	char k[16];

	for (unsigned int i = 0; i < LAG_KEYS; i++) {
		/* Every commit rewrites every leaf, freeing pages each time. */
		snprintf(k, sizeof(k), "key%04u", i);
		pattern_fill(round * 1000 + i, val, sizeof(val));
		put_ok(txn, dflt(txn), k, strlen(k), val, sizeof(val));
	}
	put_u64(txn, dflt(txn), "k", round);
	assert_ok(mmkv_txn_commit(txn));
}

static void test_reader_list_lag(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env_w, *env_r;
	mmkv_txn *r, *fresh_r;
	mmkv_envinfo info;
	const mmkv_reader_info *mine, *theirs, *newest;
	listing *l = malloc(sizeof(*l));
	chan rep, go;
	holder_args ha;
	report hr;
	pid_t child;
	uint64_t t0;

	assert_non_null(l);
	env_w = open_env(fx->path, 0);
	fill_lag_keys(env_w, 0);
	env_r = open_env(fx->path, 0);
	r = txn_read(env_r);
	t0 = mmkv_txn_id(r);

	rep = chan_new();
	go = chan_new();
	ha = (holder_args){ fx->path, 0, &rep, &go };
	child = spawn_child(holder_main, &ha, CHILD_ALARM);
	fd_close(&rep.wr);
	fd_close(&go.rd);
	hr = recv_report(rep.rd);
	assert_rc(hr.rc, 0);
	assert_int_equal(hr.a, t0);

	for (uint64_t i = 1; i <= LAG_COMMITS; i++)
		fill_lag_keys(env_w, i);
	assert_ok(mmkv_env_info(env_w, &info));
	fresh_r = txn_read(env_w);

	list_readers(env_w, l);
	mine = find_reader(l, getpid(), t0);
	theirs = find_reader(l, child, t0);
	newest = find_reader(l, getpid(), info.last_txnid);
	if (mine == NULL || theirs == NULL || newest == NULL)
		fail_msg("listing of %zu readers lacks one of: this process at %" PRIu64
		         " (%s), child %d at %" PRIu64 " (%s), this process at %" PRIu64 " (%s)",
		         l->n, t0, mine ? "found" : "missing", (int)child, t0,
		         theirs ? "found" : "missing", info.last_txnid, newest ? "found" : "missing");
	assert_int_equal(mine->lag, LAG_COMMITS);
	assert_int_equal(theirs->lag, LAG_COMMITS);
	assert_int_equal(newest->lag, 0);
	assert_true(mine->pinned_pages > 0);
	assert_true(theirs->pinned_pages > 0);
	assert_true(mine->slot < info.max_readers);
	assert_true(theirs->slot < info.max_readers);
	assert_true(newest->slot < info.max_readers);
	assert_true(mine->slot != theirs->slot && mine->slot != newest->slot &&
	            theirs->slot != newest->slot);
	assert_int_equal(count_pid(l, child), 1);
	assert_int_equal(count_pid(l, getpid()), 2);
	print_message("lag %" PRIu64 ": %" PRIu64 " pages pinned here, %" PRIu64 " by the child\n",
	              mine->lag, mine->pinned_pages, theirs->pinned_pages);

	/* A nonzero callback return stops the listing and is returned. */
	memset(l, 0, sizeof(*l));
	l->stop_with = 7;
	assert_rc(mmkv_reader_list(env_w, collect_reader, l), 7);
	assert_int_equal(l->n, 1);
	assert_rc(mmkv_reader_list(NULL, collect_reader, l), EINVAL);

	/* Readers that end leave the listing. */
	mmkv_txn_abort(r);
	list_readers(env_w, l);
	assert_null(find_reader(l, getpid(), t0));
	assert_non_null(find_reader(l, child, t0));
	fd_close(&go.wr);
	expect_exit(child, 0);
	list_readers(env_w, l);
	assert_int_equal(count_pid(l, child), 0);
	mmkv_txn_abort(fresh_r);
	list_readers(env_w, l);
	assert_int_equal(l->n, 0);

	chan_close(&rep);
	chan_close(&go);
	check_env(env_w);
	mmkv_env_close(env_r);
	mmkv_env_close(env_w);
	free(l);
}

/* ---------------------------------------------------------- env_wait */

#define WAITERS 3

typedef struct waiter_args {
	const char *path;
	chan *report;
	int timeout_ms;
} waiter_args;

/* Report the newest txnid seen at open, then what mmkv_env_wait returned. */
static int waiter_main(void *arg)
{
	waiter_args *a = arg;
	mmkv_env *env = NULL;
	mmkv_envinfo info;
	uint64_t now = 0;
	int rc;

	fd_close(&a->report->rd);
	rc = child_open(a->path, MMKV_RDONLY, 0, &env);
	if (rc == 0)
		rc = mmkv_env_info(env, &info);
	if (!send_report(a->report->wr, rc, rc == 0 ? info.last_txnid : 0, 0))
		return child_fail(2, "report pipe closed");
	if (rc)
		return child_fail(3, "open/info: %s", mmkv_strerror(rc));
	rc = mmkv_env_wait(env, info.last_txnid, a->timeout_ms, &now);
	if (!send_report(a->report->wr, rc, info.last_txnid, now))
		return child_fail(2, "report pipe closed");
	mmkv_env_close(env);
	return 0;
}

static void test_env_wait(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = open_env(fx->path, 0);
	mmkv_envinfo info;
	chan rep = chan_new();
	waiter_args wa = { fx->path, &rep, 10000 };
	pid_t pids[WAITERS];
	uint64_t last, committed, now;

	commit_u64(env, "k", 1);
	assert_ok(mmkv_env_info(env, &info));
	last = info.last_txnid;

	for (int i = 0; i < WAITERS; i++)
		pids[i] = spawn_child(waiter_main, &wa, CHILD_ALARM);
	fd_close(&rep.wr);
	for (int i = 0; i < WAITERS; i++) {
		report r = recv_report(rep.rd);
		assert_rc(r.rc, 0);
		assert_int_equal(r.a, last);
	}
	/* Let the waiters fall asleep first, most likely; a waiter that has not
	 * yet called mmkv_env_wait must return at once all the same. */
	usleep(30000);
	committed = commit_u64(env, "k", 2);
	assert_true(committed > last);
	for (int i = 0; i < WAITERS; i++) {
		report r = recv_report(rep.rd);
		if (r.rc != 0)
			fail_msg("waiter %d: mmkv_env_wait returned %d (%s) after a commit", (int)r.pid,
			         r.rc, mmkv_strerror(r.rc));
		assert_int_equal(r.a, last);
		assert_true(r.b >= committed);
	}
	for (int i = 0; i < WAITERS; i++)
		expect_exit(pids[i], 0);
	chan_close(&rep);

	/* Nothing committed: a short wait times out and reports the newest. */
	assert_ok(mmkv_env_info(env, &info));
	last = info.last_txnid;
	assert_int_equal(last, committed);
	now = 0;
	assert_rc(mmkv_env_wait(env, last, 50, &now), ETIMEDOUT);
	assert_int_equal(now, last);
	assert_rc(mmkv_env_wait(env, last, 0, NULL), ETIMEDOUT);
	/* Something newer than last_txnid already: no sleep at all. */
	now = 0;
	assert_ok(mmkv_env_wait(env, last - 1, 50, &now));
	assert_int_equal(now, last);
	assert_ok(mmkv_env_wait(env, 0, -1, NULL));
	assert_rc(mmkv_env_wait(NULL, 0, 50, &now), EINVAL);

	check_env(env);
	mmkv_env_close(env);
}

/* ------------------------------------------------- killed writer */

#define GHOSTS 300

typedef struct writer_args {
	const char *path;
	chan *report;
	chan *go;
} writer_args;

/* Begin a write transaction, put the ghosts, report, and wait to be killed. */
static int doomed_writer_main(void *arg)
{
	writer_args *a = arg;
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	unsigned char val[200];
	char k[16];
	int rc;

	fd_close(&a->report->rd);
	fd_close(&a->go->wr);
	rc = child_open(a->path, 0, 0, &env);
	if (rc == 0)
		rc = mmkv_txn_begin(env, NULL, 0, &txn);
	for (unsigned int i = 0; rc == 0 && i < GHOSTS; i++) {
		mmkv_val key, val_v = mkval(val, sizeof(val));
		snprintf(k, sizeof(k), "ghost%04u", i);
		key = sval(k);
		pattern_fill(i, val, sizeof(val));
		rc = mmkv_put(txn, dflt(txn), &key, &val_v, 0);
	}
	if (rc == 0) {
		mmkv_val key = sval("k"), val_v;
		uint64_t v = 666;
		val_v = mkval(&v, sizeof(v));
		rc = mmkv_put(txn, dflt(txn), &key, &val_v, 0);
	}
	send_report(a->report->wr, rc, mmkv_txn_id(txn), 0);
	if (rc)
		return child_fail(3, "doomed writer: %s", mmkv_strerror(rc));
	while (wait_go(a->go->rd)) {
	}
	return child_fail(4, "doomed writer was not killed");
}

/* A writer in another process that commits once and reports what it read. */
static int plain_writer_main(void *arg)
{
	writer_args *a = arg;
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	uint64_t before = 0;
	int rc;

	fd_close(&a->report->rd);
	if (a->go)
		fd_close(&a->go->wr);
	rc = child_open(a->path, 0, 0, &env);
	if (rc)
		return child_fail(3, "open: %s", mmkv_strerror(rc));
	send_report(a->report->wr, 0, 0, 0); /* about to begin */
	rc = mmkv_txn_begin(env, NULL, 0, &txn);
	if (rc == 0)
		rc = child_get_u64(txn, "k", &before);
	if (rc == 0) {
		mmkv_val key = sval("k"), val;
		uint64_t v = before * 10;
		val = mkval(&v, sizeof(v));
		rc = mmkv_put(txn, dflt(txn), &key, &val, 0);
	}
	if (rc == 0)
		rc = mmkv_txn_commit(txn);
	else
		mmkv_txn_abort(txn);
	send_report(a->report->wr, rc, before, 0);
	mmkv_env_close(env);
	return rc ? child_fail(5, "writer: %s", mmkv_strerror(rc)) : 0;
}

static void test_killed_writer(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = open_env(fx->path, 0);
	mmkv_txn *txn;
	chan rep = chan_new(), go = chan_new();
	writer_args wa = { fx->path, &rep, &go };
	report r;
	pid_t pid;
	char k[16];

	commit_u64(env, "k", 1);
	pid = spawn_child(doomed_writer_main, &wa, CHILD_ALARM);
	fd_close(&rep.wr);
	fd_close(&go.rd);
	r = recv_report(rep.rd);
	assert_rc(r.rc, 0);
	kill_and_reap(pid);
	chan_close(&rep);
	chan_close(&go);

	/* The dead writer's lock died with it; a hang here fails by SIGALRM. */
	watchdog(60);
	txn = txn_write(env);
	assert_int_equal(get_u64(txn, dflt(txn), "k"), 1);
	put_u64(txn, dflt(txn), "k", 2);
	put_str(txn, dflt(txn), "after", "yes");
	assert_ok(mmkv_txn_commit(txn));

	/* And another process can write after that. */
	rep = chan_new();
	wa = (writer_args){ fx->path, &rep, NULL };
	pid = spawn_child(plain_writer_main, &wa, CHILD_ALARM);
	fd_close(&rep.wr);
	assert_rc(recv_report(rep.rd).rc, 0);
	r = recv_report(rep.rd);
	assert_rc(r.rc, 0);
	assert_int_equal(r.a, 2);
	expect_exit(pid, 0);
	chan_close(&rep);
	watchdog(program_watchdog);

	txn = txn_read(env);
	assert_int_equal(get_u64(txn, dflt(txn), "k"), 20);
	expect_str(txn, dflt(txn), "after", "yes");
	for (unsigned int i = 0; i < GHOSTS; i++) {
		snprintf(k, sizeof(k), "ghost%04u", i);
		expect_missing(txn, dflt(txn), k, strlen(k));
	}
	assert_int_equal(db_entries(txn, dflt(txn)), 2);
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);
}

/* ------------------------------------------- one database, two handles */

static void test_same_db_twice(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *a = open_env(fx->path, 0), *b = open_env(fx->path, 0), *c;
	mmkv_txn *txn, *ra, *rb;
	listing *l = malloc(sizeof(*l));
	chan rep;
	writer_args wa;
	report r;
	pid_t pid;
	int cleared = -1;
	uint64_t id;

	assert_non_null(l);
	txn = txn_write(a);
	put_str(txn, dflt(txn), "a1", "from a");
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(b);
	expect_str(txn, dflt(txn), "a1", "from a");
	mmkv_txn_abort(txn);
	txn = txn_write(b);
	put_str(txn, dflt(txn), "b1", "from b");
	assert_ok(mmkv_txn_commit(txn));
	ra = txn_read(a);
	expect_str(ra, dflt(ra), "b1", "from b");

	/* a's snapshot stays put while b commits; a new one sees it. */
	txn = txn_write(b);
	put_str(txn, dflt(txn), "b2", "from b");
	assert_ok(mmkv_txn_commit(txn));
	expect_missing(ra, dflt(ra), "b2", 2);
	mmkv_txn_abort(ra);
	ra = txn_read(a);
	expect_str(ra, dflt(ra), "b2", "from b");
	mmkv_txn_abort(ra);

	/* Closing a must leave every lock of b in place. */
	mmkv_env_close(a);
	txn = txn_write(b);
	put_str(txn, dflt(txn), "b3", "after close");
	put_u64(txn, dflt(txn), "k", 3);
	assert_ok(mmkv_txn_commit(txn));
	rb = txn_read(b);
	expect_str(rb, dflt(rb), "b3", "after close");
	id = mmkv_txn_id(rb);

	/* b's reader slot is live: a third handle lists it and does not clear it. */
	c = open_env(fx->path, 0);
	list_readers(c, l);
	assert_non_null(find_reader(l, getpid(), id));
	assert_ok(mmkv_reader_check(c, &cleared));
	assert_int_equal(cleared, 0);
	list_readers(c, l);
	assert_non_null(find_reader(l, getpid(), id));
	txn = txn_write(c);
	put_str(txn, dflt(txn), "c1", "from c");
	assert_ok(mmkv_txn_commit(txn));
	expect_missing(rb, dflt(rb), "c1", 2);
	mmkv_txn_abort(rb);

	/* b's writer lock still excludes other processes: a writer child that
	 * begins while b writes must read what b committed. */
	txn = txn_write(b);
	rep = chan_new();
	wa = (writer_args){ fx->path, &rep, NULL };
	pid = spawn_child(plain_writer_main, &wa, CHILD_ALARM);
	fd_close(&rep.wr);
	assert_rc(recv_report(rep.rd).rc, 0);
	usleep(50000); /* likely lets the child reach mmkv_txn_begin first */
	put_u64(txn, dflt(txn), "k", 4);
	assert_ok(mmkv_txn_commit(txn));
	r = recv_report(rep.rd);
	assert_rc(r.rc, 0);
	if (r.a != 4)
		fail_msg("a writer in another process read k = %" PRIu64
		         " while b held the write transaction (expected 4)", r.a);
	expect_exit(pid, 0);
	chan_close(&rep);

	txn = txn_read(c);
	assert_int_equal(get_u64(txn, dflt(txn), "k"), 40);
	expect_str(txn, dflt(txn), "c1", "from c");
	mmkv_txn_abort(txn);
	txn = txn_read(b);
	assert_int_equal(get_u64(txn, dflt(txn), "k"), 40);
	mmkv_txn_abort(txn);
	check_env(b);
	mmkv_env_close(c);
	mmkv_env_close(b);
	free(l);
}

/* ------------------------------------------------------------- fork */

typedef struct fork_args {
	const char *path;
	mmkv_env *inherited;
} fork_args;

static int forked_main(void *arg)
{
	fork_args *a = arg;
	mmkv_env *own = NULL;
	mmkv_txn *txn = NULL;
	uint64_t v = 0;
	int rc;

	rc = mmkv_txn_begin(a->inherited, NULL, MMKV_RDONLY, &txn);
	if (rc != MMKV_PANIC)
		return child_fail(2, "read txn on the inherited env returned %d (%s), not MMKV_PANIC",
		                  rc, mmkv_strerror(rc));
	rc = mmkv_txn_begin(a->inherited, NULL, 0, &txn);
	if (rc != MMKV_PANIC)
		return child_fail(3, "write txn on the inherited env returned %d (%s), not MMKV_PANIC",
		                  rc, mmkv_strerror(rc));
	rc = child_open(a->path, 0, 0, &own);
	if (rc)
		return child_fail(4, "own env: %s", mmkv_strerror(rc));
	rc = mmkv_txn_begin(own, NULL, MMKV_RDONLY, &txn);
	if (rc == 0)
		rc = child_get_u64(txn, "k", &v);
	mmkv_txn_abort(txn);
	if (rc || v != 5)
		return child_fail(5, "read k in own env: %s, %" PRIu64, mmkv_strerror(rc), v);
	rc = mmkv_txn_begin(own, NULL, 0, &txn);
	if (rc == 0) {
		mmkv_val key = sval("child"), val = sval("yes");
		rc = mmkv_put(txn, dflt(txn), &key, &val, 0);
		if (rc == 0)
			rc = mmkv_txn_commit(txn);
		else
			mmkv_txn_abort(txn);
	}
	if (rc)
		return child_fail(6, "write in own env: %s", mmkv_strerror(rc));
	mmkv_env_close(own);
	return 0;
}

static void test_fork_panics(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = open_env(fx->path, 0);
	mmkv_txn *held, *txn;
	fork_args fa = { fx->path, env };
	pid_t pid;

	commit_u64(env, "k", 5);
	held = txn_read(env); /* a snapshot open across the fork */
	pid = spawn_child(forked_main, &fa, CHILD_ALARM);
	expect_exit(pid, 0);

	/* The parent's handle is untouched by the child. */
	assert_int_equal(get_u64(held, dflt(held), "k"), 5);
	expect_missing(held, dflt(held), "child", 5);
	mmkv_txn_abort(held);
	txn = txn_read(env);
	expect_str(txn, dflt(txn), "child", "yes");
	mmkv_txn_abort(txn);
	commit_u64(env, "k", 6);
	txn = txn_read(env);
	assert_int_equal(get_u64(txn, dflt(txn), "k"), 6);
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);
}

/* ------------------------------------------------------- snapshot lag */

#define LAG_LIMIT 5
#define LAG_RUN 10

typedef struct lag_args {
	const char *path;
	chan *report;
	chan *go;
} lag_args;

/* Take a snapshot, report it; on go, report what a get returns, then renew
 * and report the newest k. */
static int lagging_reader_main(void *arg)
{
	lag_args *a = arg;
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	uint64_t v = 0;
	int rc, rc_old;

	fd_close(&a->report->rd);
	fd_close(&a->go->wr);
	rc = child_open(a->path, MMKV_RDONLY, 0, &env);
	if (rc == 0)
		rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc == 0)
		rc = child_get_u64(txn, "k", &v);
	send_report(a->report->wr, rc, mmkv_txn_id(txn), v);
	if (rc)
		return child_fail(3, "reader: %s", mmkv_strerror(rc));
	if (!wait_go(a->go->rd))
		return child_fail(4, "no go");
	rc_old = child_get_u64(txn, "k", &v);
	mmkv_txn_reset(txn);
	rc = mmkv_txn_renew(txn);
	if (rc == 0)
		rc = child_get_u64(txn, "k", &v);
	send_report(a->report->wr, rc_old, (uint64_t)(int64_t)rc, v);
	mmkv_txn_abort(txn);
	mmkv_env_close(env);
	return 0;
}

static void test_snapshot_lag_limit(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env_w = open_env(fx->path, 0), *env_r;
	mmkv_txn *old_renew, *old_abort, *young = NULL;
	mmkv_cursor *cur;
	mmkv_val key, val;
	chan rep = chan_new(), go = chan_new();
	lag_args la = { fx->path, &rep, &go };
	report r;
	pid_t pid;
	uint64_t t0, last = 0;

	assert_rc(mmkv_env_set_max_lag(NULL, LAG_LIMIT), EINVAL);
	assert_ok(mmkv_env_set_max_lag(env_w, LAG_LIMIT));
	fill_lag_keys(env_w, 0);
	env_r = open_env(fx->path, 0);
	old_renew = txn_read(env_r);
	old_abort = txn_read(env_r);
	t0 = mmkv_txn_id(old_renew);
	assert_int_equal(get_u64(old_renew, dflt(old_renew), "k"), 0);
	assert_ok(mmkv_cursor_open(old_renew, dflt(old_renew), &cur));
	assert_ok(mmkv_cursor_get(cur, &key, &val, MMKV_FIRST));

	pid = spawn_child(lagging_reader_main, &la, CHILD_ALARM);
	fd_close(&rep.wr);
	fd_close(&go.rd);
	r = recv_report(rep.rd);
	assert_rc(r.rc, 0);
	assert_int_equal(r.a, t0);
	assert_int_equal(r.b, 0);

	for (uint64_t i = 1; i <= LAG_RUN; i++) {
		fill_lag_keys(env_w, i);
		if (i == LAG_RUN - LAG_LIMIT + 2)
			young = txn_read(env_r); /* LAG_LIMIT - 2 behind at the end */
	}
	assert_non_null(young);
	last = mmkv_txn_id(young);

	/* The old snapshots were released: every read call says so. */
	key = sval("k");
	assert_rc(mmkv_get(old_renew, dflt(old_renew), &key, &val), MMKV_SNAPSHOT_TOO_OLD);
	assert_rc(mmkv_cursor_get(cur, &key, &val, MMKV_NEXT), MMKV_SNAPSHOT_TOO_OLD);
	assert_rc(mmkv_cursor_get(cur, &key, &val, MMKV_FIRST), MMKV_SNAPSHOT_TOO_OLD);
	key = sval("k");
	assert_rc(mmkv_get(old_abort, dflt(old_abort), &key, &val), MMKV_SNAPSHOT_TOO_OLD);
	mmkv_cursor_close(cur);

	/* Within the limit: still readable, unchanged. */
	assert_int_equal(get_u64(young, dflt(young), "k"), LAG_RUN - LAG_LIMIT + 2);
	assert_int_equal(mmkv_txn_id(young), last);

	/* reset + renew, or abort + begin, reach the newest data. */
	mmkv_txn_reset(old_renew);
	assert_ok(mmkv_txn_renew(old_renew));
	assert_int_equal(get_u64(old_renew, dflt(old_renew), "k"), LAG_RUN);
	assert_true(mmkv_txn_id(old_renew) > t0);
	mmkv_txn_abort(old_abort);
	old_abort = txn_read(env_r);
	assert_int_equal(get_u64(old_abort, dflt(old_abort), "k"), LAG_RUN);

	/* The same in another process. */
	send_go(go.wr);
	r = recv_report(rep.rd);
	if (r.rc != MMKV_SNAPSHOT_TOO_OLD)
		fail_msg("lagging reader in another process: get returned %d (%s)", r.rc,
		         mmkv_strerror(r.rc));
	assert_rc((int)(int64_t)r.a, 0);
	assert_int_equal(r.b, LAG_RUN);
	expect_exit(pid, 0);
	chan_close(&rep);
	chan_close(&go);

	mmkv_txn_abort(old_renew);
	mmkv_txn_abort(old_abort);
	mmkv_txn_abort(young);
	check_env(env_w);
	mmkv_env_close(env_r);
	mmkv_env_close(env_w);
}

static void test_snapshot_no_lag_limit(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env_w = open_env(fx->path, 0), *env_r;
	mmkv_txn *old;
	mmkv_cursor *cur;
	mmkv_val key = sval("key0007"), val, ck, cv;
	unsigned char want[100];
	const void *ptr;
	uint64_t t0, n = 0;

	fill_lag_keys(env_w, 0);
	env_r = open_env(fx->path, 0);
	old = txn_read(env_r);
	t0 = mmkv_txn_id(old);
	assert_ok(mmkv_get(old, dflt(old), &key, &val));
	ptr = val.data;
	for (uint64_t i = 1; i <= LAG_RUN; i++)
		fill_lag_keys(env_w, i);

	/* Ten commits later the snapshot is intact: the value obtained before
	 * (its bytes are still the old ones), and a new look at it. */
	assert_int_equal(mmkv_txn_id(old), t0);
	assert_int_equal(get_u64(old, dflt(old), "k"), 0);
	pattern_fill(7, want, sizeof(want));
	assert_int_equal(val.size, sizeof(want));
	assert_memory_equal(ptr, want, sizeof(want));
	assert_ok(mmkv_get(old, dflt(old), &key, &val));
	assert_true(val.data == ptr);
	assert_memory_equal(val.data, want, sizeof(want));
	assert_ok(mmkv_cursor_open(old, dflt(old), &cur));
	while (mmkv_cursor_get(cur, &ck, &cv, MMKV_NEXT) == 0) {
		char name[16] = "";
		if (ck.size < sizeof(name))
			memcpy(name, ck.data, ck.size);
		if (strncmp(name, "key", 3) == 0) {
			/* round 0 wrote pattern i under key i */
			uint64_t i = strtoull(name + 3, NULL, 10);
			assert_int_equal(cv.size, sizeof(want));
			assert_true(pattern_equal(i, cv.data, cv.size));
		} else {
			assert_string_equal(name, "k");
		}
		n++;
	}
	assert_int_equal(n, LAG_KEYS + 1);
	mmkv_cursor_close(cur);
	mmkv_txn_abort(old);
	check_env(env_w);
	mmkv_env_close(env_r);
	mmkv_env_close(env_w);
}

/* ------------------------------------------------ hostile lock writer */

#define HOSTILE_MS 1500
#define HOSTILE_READERS 2
#define HOSTILE_WRITERS 2
/* A small reader table, so that scribbles often hit live slots. */
#define HOSTILE_SLOTS 8

typedef struct hostile_shared {
	atomic_int stop;
	atomic_ullong reads, read_errors, commits, write_errors, scribbles;
	atomic_ullong too_old, corrupted; /* errors of these two kinds */
	atomic_int first_error; /* first error code seen by a reader or writer */
} hostile_shared;

typedef struct hostile_args {
	const char *path;
	hostile_shared *sh;
	chan *ready;
	chan *acks;
	uint64_t seed;
} hostile_args;

static void note_error(hostile_shared *sh, int rc)
{
	int zero = 0;

	if (rc == MMKV_SNAPSHOT_TOO_OLD)
		atomic_fetch_add(&sh->too_old, 1);
	else if (rc == MMKV_CORRUPTED)
		atomic_fetch_add(&sh->corrupted, 1);
	atomic_compare_exchange_strong(&sh->first_error, &zero, rc);
}

static size_t value_size(uint64_t gen)
{
	return 16 + (size_t)(gen * 37 % 300);
}

static void value_key(char *k, size_t cap, uint64_t gen)
{
	snprintf(k, cap, "v%08" PRIu64, gen);
}

/* Each commit takes the next generation g and adds key v<g>; an ack goes to
 * the parent after the commit returned 0. */
static int hostile_writer_main(void *arg)
{
	hostile_args *a = arg;
	mmkv_env *env = NULL;
	test_rng rng;
	unsigned char buf[400];
	char k[32];
	int rc;

	fd_close(&a->ready->rd);
	fd_close(&a->acks->rd);
	rng_init(&rng, a->seed);
	/* No syncs: more commits, more reuse of pages under the readers. */
	rc = child_open(a->path, MMKV_NOSYNC, HOSTILE_SLOTS, &env);
	send_report(a->ready->wr, rc, 0, 0);
	if (rc)
		return child_fail(3, "writer open: %s", mmkv_strerror(rc));
	while (!atomic_load(&a->sh->stop)) {
		mmkv_txn *txn = NULL;
		uint64_t g = 0;
		mmkv_val key, val;

		rc = mmkv_txn_begin(env, NULL, 0, &txn);
		if (rc == 0) {
			rc = child_get_u64(txn, "g", &g);
			g++;
		}
		if (rc == 0) {
			key = sval("g");
			val = mkval(&g, sizeof(g));
			rc = mmkv_put(txn, dflt(txn), &key, &val, 0);
		}
		if (rc == 0) {
			value_key(k, sizeof(k), g);
			key = sval(k);
			pattern_fill(g, buf, value_size(g));
			val = mkval(buf, value_size(g));
			rc = mmkv_put(txn, dflt(txn), &key, &val, 0);
		}
		if (rc == 0) {
			rc = mmkv_txn_commit(txn);
			if (rc == 0) {
				atomic_fetch_add(&a->sh->commits, 1);
				if (!write_full(a->acks->wr, &g, sizeof(g)))
					return child_fail(2, "ack pipe closed");
			}
		} else if (txn) {
			mmkv_txn_abort(txn);
		}
		if (rc) {
			atomic_fetch_add(&a->sh->write_errors, 1);
			note_error(a->sh, rc);
		}
		if (rng_pct(&rng, 20))
			usleep((useconds_t)rng_below(&rng, 500));
	}
	mmkv_env_close(env);
	return 0;
}

static int hostile_reader_main(void *arg)
{
	hostile_args *a = arg;
	mmkv_env *env = NULL;
	test_rng rng;
	char k[32];
	int rc;

	fd_close(&a->ready->rd);
	fd_close(&a->acks->rd);
	fd_close(&a->acks->wr);
	rng_init(&rng, a->seed);
	rc = child_open(a->path, rng_pct(&rng, 50) ? MMKV_RDONLY : 0, HOSTILE_SLOTS, &env);
	send_report(a->ready->wr, rc, 0, 0);
	if (rc)
		return child_fail(3, "reader open: %s", mmkv_strerror(rc));
	while (!atomic_load(&a->sh->stop)) {
		mmkv_txn *txn = NULL;
		mmkv_cursor *cur = NULL;
		mmkv_val key, val;
		uint64_t g = 0;

		rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
		if (rc == 0)
			rc = child_get_u64(txn, "g", &g);
		if (rc == 0 && rng_pct(&rng, 20))
			usleep((useconds_t)rng_below(&rng, 2000)); /* hold the snapshot */
		if (rc == 0 && g > 0) {
			/* Values are looked at, never trusted: with a scribbled
			 * reader table the writer may reuse this snapshot's pages. */
			value_key(k, sizeof(k), rng_range(&rng, 1, g));
			key = sval(k);
			rc = mmkv_get(txn, dflt(txn), &key, &val);
			if (rc == MMKV_NOTFOUND)
				rc = 0;
		}
		if (rc == 0 && rng_pct(&rng, 10)) {
			rc = mmkv_cursor_open(txn, dflt(txn), &cur);
			for (int i = 0; rc == 0 && i < 200; i++) {
				rc = mmkv_cursor_get(cur, &key, &val, MMKV_NEXT);
				if (rc == MMKV_NOTFOUND) {
					rc = 0;
					break;
				}
			}
			mmkv_cursor_close(cur);
		}
		mmkv_txn_abort(txn);
		atomic_fetch_add(&a->sh->reads, 1);
		if (rc) {
			atomic_fetch_add(&a->sh->read_errors, 1);
			note_error(a->sh, rc);
		}
	}
	mmkv_env_close(env);
	return 0;
}

/* Overwrite bytes of the lock file at random, through a shared map and
 * with pwrite, for HOSTILE_MS; never truncate it. */
static int scribbler_main(void *arg)
{
	hostile_args *a = arg;
	char lockpath[PATH_MAX + 8];
	struct stat st;
	unsigned char *map;
	test_rng rng;
	uint64_t end_ms;
	struct timespec ts;
	int fd;

	fd_close(&a->ready->rd);
	fd_close(&a->acks->rd);
	fd_close(&a->acks->wr);
	rng_init(&rng, a->seed);
	snprintf(lockpath, sizeof(lockpath), "%s-lock", a->path);
	fd = open(lockpath, O_RDWR);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 128)
		return child_fail(3, "lock file %s: %s", lockpath, strerror(errno));
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return child_fail(3, "mmap lock file: %s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	end_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + HOSTILE_MS;
	for (;;) {
		uint64_t word, off;
		size_t len;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		if ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 >= end_ms)
			break;
		/* A third each: the header, the snapshot word of a reader slot,
		 * anywhere. */
		switch (rng_below(&rng, 3)) {
		case 0:
			off = rng_below(&rng, 128);
			break;
		case 1:
			off = 128 + 64 * rng_below(&rng, HOSTILE_SLOTS);
			break;
		default:
			off = rng_below(&rng, (uint64_t)st.st_size);
			break;
		}
		switch (rng_below(&rng, 4)) {
		case 0:
			len = 1;
			break;
		case 1:
			len = 4;
			off &= ~(uint64_t)3;
			break;
		default:
			len = 8;
			off &= ~(uint64_t)7;
			break;
		}
		switch (rng_below(&rng, 5)) {
		case 0:
			word = 0;
			break;
		case 1:
			word = ~(uint64_t)0;
			break;
		case 2:
			word = rng_below(&rng, 1000); /* plausible txnids, counts, pids */
			break;
		case 3:
			word = ~(uint64_t)0 - rng_below(&rng, 4); /* near the sentinels */
			break;
		default:
			word = rng_next(&rng);
			break;
		}
		if (off + len > (uint64_t)st.st_size)
			continue;
		if (rng_pct(&rng, 80))
			memcpy(map + off, &word, len);
		else if (pwrite(fd, &word, len, (off_t)off) != (ssize_t)len)
			return child_fail(4, "pwrite lock file: %s", strerror(errno));
		atomic_fetch_add(&a->sh->scribbles, 1);
		if (rng_pct(&rng, 30))
			usleep((useconds_t)rng_below(&rng, 300));
	}
	munmap(map, (size_t)st.st_size);
	close(fd);
	return 0;
}

/* Read the acks available now (fd is non-blocking); true at end of file. */
static bool drain_acks(int fd, uint64_t *max, uint64_t *count)
{
	uint64_t buf[512];

	for (;;) {
		ssize_t got = read(fd, buf, sizeof(buf));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			return false;
		if (got <= 0)
			return true;
		/* 8-byte writes to a pipe are atomic, so reads come in whole acks. */
		assert_int_equal(got % 8, 0);
		for (ssize_t i = 0; i < got / 8; i++) {
			(*count)++;
			if (buf[i] > *max)
				*max = buf[i];
		}
	}
}

/* Reap the children, each of which must exit with status 0, draining acks
 * meanwhile; on a failure the others are told to stop first. */
static void wait_draining(const pid_t *pids, int n, int fd, uint64_t *max, uint64_t *count,
                          hostile_shared *sh)
{
	bool done[HOSTILE_READERS + HOSTILE_WRITERS] = { false };
	int left = n;

	assert_true(n <= HOSTILE_READERS + HOSTILE_WRITERS);
	while (left > 0) {
		drain_acks(fd, max, count);
		for (int i = 0; i < n; i++) {
			int status;
			char what[96];
			pid_t r;

			if (done[i])
				continue;
			r = waitpid(pids[i], &status, WNOHANG);
			if (r == 0 || (r < 0 && errno == EINTR))
				continue;
			if (r < 0)
				fail_msg("waitpid(%d): %s", (int)pids[i], strerror(errno));
			done[i] = true;
			left--;
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				atomic_store(&sh->stop, 1);
				describe_wait_status(status, what, sizeof(what));
				fail_msg("child %d ended with %s while the lock file was scribbled on",
				         (int)pids[i], what);
			}
		}
		usleep(2000);
	}
}

static void test_hostile_lock_writer(void **state)
{
	test_fixture *fx = FX(state);
	hostile_shared *sh;
	hostile_args ha[HOSTILE_READERS + HOSTILE_WRITERS + 1];
	pid_t pids[HOSTILE_READERS + HOSTILE_WRITERS], scribbler;
	chan ready = chan_new(), acks = chan_new();
	mmkv_env *env;
	mmkv_txn *txn;
	uint64_t seed = test_seed("test_procs hostile"), acked = 0, g, nacks = 0;
	int n = 0;
	char k[32];

	env = open_env(fx->path, 0);
	commit_u64(env, "g", 0);
	mmkv_env_close(env);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	memset(sh, 0, sizeof(*sh));

	for (int i = 0; i < HOSTILE_READERS + HOSTILE_WRITERS + 1; i++)
		ha[i] = (hostile_args){ fx->path, sh, &ready, &acks, seed + (uint64_t)i * 7919 };
	for (int i = 0; i < HOSTILE_WRITERS; i++, n++)
		pids[n] = spawn_child(hostile_writer_main, &ha[n], CHILD_ALARM);
	for (int i = 0; i < HOSTILE_READERS; i++, n++)
		pids[n] = spawn_child(hostile_reader_main, &ha[n], CHILD_ALARM);
	fd_close(&ready.wr);
	fd_close(&acks.wr);
	for (int i = 0; i < n; i++)
		assert_rc(recv_report(ready.rd).rc, 0);

	/* Everyone is in; now the lock file is fair game. Acks are drained
	 * all along so that no writer blocks on a full pipe. */
	assert_int_equal(fcntl(acks.rd, F_SETFL, O_NONBLOCK), 0);
	scribbler = spawn_child(scribbler_main, &ha[n], CHILD_ALARM);
	wait_draining(&scribbler, 1, acks.rd, &acked, &nacks, sh);
	usleep(100000); /* some work after the last scribble, too */
	atomic_store(&sh->stop, 1);
	wait_draining(pids, n, acks.rd, &acked, &nacks, sh);
	drain_acks(acks.rd, &acked, &nacks);
	chan_close(&ready);
	chan_close(&acks);
	print_message("%llu lock file scribbles; %llu reads (%llu failed), %llu commits "
	              "(%llu writes failed); %llu MMKV_SNAPSHOT_TOO_OLD, %llu MMKV_CORRUPTED; "
	              "first error %d (%s)\n",
	              (unsigned long long)sh->scribbles, (unsigned long long)sh->reads,
	              (unsigned long long)sh->read_errors, (unsigned long long)sh->commits,
	              (unsigned long long)sh->write_errors, (unsigned long long)sh->too_old,
	              (unsigned long long)sh->corrupted, sh->first_error,
	              sh->first_error ? mmkv_strerror(sh->first_error) : "none");
	assert_int_equal(nacks, sh->commits);
	assert_true(sh->scribbles > 0);

	/* Everyone has closed: a fresh open finds every acknowledged commit. */
	env = open_env(fx->path, 0);
	check_env(env);
	txn = txn_read(env);
	g = get_u64(txn, dflt(txn), "g");
	/* Every writer exited normally, so every commit that returned 0 was
	 * acknowledged, and a failed commit must have changed nothing. */
	if (g != acked)
		fail_msg("generation %" PRIu64 ", last acknowledged %" PRIu64, g, acked);
	for (uint64_t i = 1; i <= g; i++) {
		mmkv_val key, val;
		value_key(k, sizeof(k), i);
		key = sval(k);
		if (mmkv_get(txn, dflt(txn), &key, &val) != 0 || val.size != value_size(i) ||
		    !pattern_equal(i, val.data, val.size))
			fail_msg("generation %" PRIu64 " of %" PRIu64 " (acknowledged %" PRIu64
			         ") lost or damaged",
			         i, g, acked);
	}
	assert_int_equal(db_entries(txn, dflt(txn)), g + 1);
	mmkv_txn_abort(txn);
	commit_u64(env, "g", g + 1);
	check_env(env);
	mmkv_env_close(env);
	munmap(sh, sizeof(*sh));
}

/* ------------------------------------------------------ read-only data */

typedef struct rdonly_args {
	const char *path;
} rdonly_args;

/* As an unprivileged user: a read-only open works, a read-write one does not. */
static int unprivileged_main(void *arg)
{
	rdonly_args *a = arg;
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	uint64_t v = 0;
	int rc;

	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
		return child_fail(CHILD_SKIP, "cannot become uid 65534: %s", strerror(errno));
	if (access(a->path, R_OK) != 0 || access(a->path, W_OK) == 0)
		return child_fail(CHILD_SKIP, "%s not readable-only for uid 65534", a->path);
	rc = child_open(a->path, MMKV_RDONLY, 0, &env);
	if (rc)
		return child_fail(2, "MMKV_RDONLY open without write permission: %s", mmkv_strerror(rc));
	rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc == 0)
		rc = child_get_u64(txn, "k", &v);
	mmkv_txn_abort(txn);
	if (rc || v != 9)
		return child_fail(3, "read: %s, k = %" PRIu64, mmkv_strerror(rc), v);
	rc = mmkv_txn_begin(env, NULL, 0, &txn);
	if (rc != EACCES)
		return child_fail(4, "write txn on a read-only env returned %s", mmkv_strerror(rc));
	mmkv_env_close(env);
	rc = child_open(a->path, 0, 0, &env);
	if (rc != EACCES)
		return child_fail(5, "read-write open without permission returned %d (%s)", rc,
		                  mmkv_strerror(rc));
	return 0;
}

static void test_rdonly_open(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = open_env(fx->path, 0);
	mmkv_txn *txn;
	char lockpath[PATH_MAX + 8];
	rdonly_args ra = { fx->path };
	pid_t pid;
	int status, fd;

	commit_u64(env, "k", 9);
	mmkv_env_close(env);

	/* Read-only handle: reads work, writes are refused. */
	env = open_env(fx->path, MMKV_RDONLY);
	txn = txn_read(env);
	assert_int_equal(get_u64(txn, dflt(txn), "k"), 9);
	mmkv_txn_abort(txn);
	assert_rc(mmkv_txn_begin(env, NULL, 0, &txn), EACCES);
	assert_rc(mmkv_env_sync(env, 1), EACCES);
	mmkv_env_close(env);

	/* A data file this process cannot write. */
	assert_int_equal(chmod(fx->path, 0444), 0);
	if (geteuid() != 0) {
		env = open_env(fx->path, MMKV_RDONLY);
		txn = txn_read(env);
		assert_int_equal(get_u64(txn, dflt(txn), "k"), 9);
		mmkv_txn_abort(txn);
		assert_rc(mmkv_txn_begin(env, NULL, 0, &txn), EACCES);
		mmkv_env_close(env);
		env = env_new();
		assert_rc(mmkv_env_open(env, fx->path, env_flags(0), 0644), EACCES);
		mmkv_env_close(env);
	} else {
		/* Root writes any file: let a child give up root instead. The
		 * lock file must stay writable by all (it is shared state). */
		snprintf(lockpath, sizeof(lockpath), "%s-lock", fx->path);
		assert_int_equal(chmod(fx->dir.path, 0755), 0);
		fd = open(lockpath, O_RDWR | O_CREAT, 0666);
		assert_true(fd >= 0);
		assert_int_equal(fchmod(fd, 0666), 0);
		close(fd);
		pid = spawn_child(unprivileged_main, &ra, CHILD_ALARM);
		status = reap(pid);
		if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_SKIP) {
			print_message("running as root and cannot drop to uid 65534: "
			              "the unwritable-file part is skipped\n");
			assert_int_equal(chmod(fx->path, 0644), 0);
			skip();
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			char what[96];
			describe_wait_status(status, what, sizeof(what));
			fail_msg("unprivileged reader ended with %s", what);
		}
	}
	assert_int_equal(chmod(fx->path, 0644), 0);
	env = open_env(fx->path, 0);
	check_env(env);
	mmkv_env_close(env);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_dead_readers_fill_table),
		T(test_reader_list_lag),
		T(test_env_wait),
		T(test_killed_writer),
		T(test_same_db_twice),
		T(test_fork_panics),
		T(test_snapshot_lag_limit),
		T(test_snapshot_no_lag_limit),
		T(test_hostile_lock_writer),
		T(test_rdonly_open),
	};

	watchdog(program_watchdog);
	return RUN_BOTH_MODES("procs", tests) ? 1 : 0;
}
