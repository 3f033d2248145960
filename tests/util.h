/*
 * util.h - helpers shared by the cmocka test programs of libmmkv.
 *
 * Write modes: every API test runs its group twice, once with
 * test_env_flags = 0 and once with test_env_flags = MMKV_WRITEMAP (see
 * run_group_both_modes), and opens every environment with test_env_flags.
 *
 * Fixtures: tu_setup/tu_teardown give each test a fresh temporary directory
 * (mkdtemp under $TMPDIR or /tmp, removed afterwards) holding the database
 * path fx->path, and close fx->env if the test left it open.
 *
 * Checks: assert_rc/assert_ok print the error names on failure; check_env
 * asserts that mmkv_env_check finds no problem (printing any it reports).
 *
 * Randomness: a splitmix64 generator; test_seed() takes MMKV_TEST_SEED from
 * the environment, else the time, and always prints the seed it uses.
 *
 * Include after <cmocka.h>.
 */
#ifndef MMKV_TEST_UTIL_H
#define MMKV_TEST_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <sys/types.h>

#include "mmkv.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* Flags every test passes to mmkv_env_open: 0 or MMKV_WRITEMAP. */
extern unsigned int test_env_flags;

/* Run a cmocka group once per write mode, as NAME_default and NAME_writemap.
 * Returns the number of failed tests. */
int run_group_both_modes(const char *name, const struct CMUnitTest *tests, size_t ntests,
                         CMFixtureFunction group_setup, CMFixtureFunction group_teardown);
#define RUN_BOTH_MODES(name, tests) \
	run_group_both_modes((name), (tests), sizeof(tests) / sizeof((tests)[0]), NULL, NULL)

/* A failed assertion names the call and both error codes. */
#define assert_rc(expr, want)                                                               \
	do {                                                                                \
		int rc_ = (expr);                                                           \
		int want_ = (want);                                                         \
		if (rc_ != want_)                                                           \
			fail_msg("%s returned %d (%s), expected %d (%s)", #expr, rc_,       \
			         mmkv_strerror(rc_), want_, mmkv_strerror(want_));          \
	} while (0)
#define assert_ok(expr) assert_rc((expr), 0)
/* Either of two codes (where the contract allows both). */
#define assert_rc2(expr, want1, want2)                                                      \
	do {                                                                                \
		int rc_ = (expr);                                                           \
		if (rc_ != (want1) && rc_ != (want2))                                       \
			fail_msg("%s returned %d (%s), expected %s or %s", #expr, rc_,      \
			         mmkv_strerror(rc_), #want1, #want2);                       \
	} while (0)

/* ---- child processes ---- */

/* A child's body; its return value is the child's exit status. */
typedef int(test_child_fn)(void *arg);

/* Exit status of a child whose parent died before it started. */
#define TEST_CHILD_ORPHAN 90

/* Run fn(arg) in a child process that leaves with _exit(fn's return), is
 * killed when its parent dies (PR_SET_PDEATHSIG), and by SIGALRM after
 * alarm_seconds, so a hung child fails its test instead of blocking it.
 * Children must not call cmocka asserts: they report through their exit
 * status or a pipe. */
pid_t spawn_child(test_child_fn *fn, void *arg, unsigned int alarm_seconds);

/* A waitpid() status in words ("exit status 3", "signal 9 (Killed)"). */
void describe_wait_status(int status, char *buf, size_t cap);

/* ---- temporary directories ---- */

typedef struct test_dir {
	char path[PATH_MAX]; /* the directory */
} test_dir;

/* Create a fresh directory (asserts). */
void test_dir_create(test_dir *d);
/* Remove it and everything in it. */
void test_dir_remove(test_dir *d);
/* out = d->path + "/" + name. */
void test_dir_file(const test_dir *d, const char *name, char *out, size_t cap);

/* Per-test fixture: a directory, the database path in it, an optional env. */
typedef struct test_fixture {
	test_dir dir;
	char path[PATH_MAX]; /* dir/test.mmkv */
	mmkv_env *env;       /* closed by tu_teardown when not NULL */
} test_fixture;

int tu_setup(void **state);
int tu_teardown(void **state);

/* ---- environments ---- */

/* test_env_flags | extra, without MMKV_WRITEMAP when extra has MMKV_RDONLY
 * (a read-only environment has no write mode; the library refuses both). */
unsigned int env_flags(unsigned int extra);
/* mmkv_env_create, asserting success. */
mmkv_env *env_new(void);
/* Open env at path with test_env_flags | extra, asserting success. */
void env_open_ok(mmkv_env *env, const char *path, unsigned int extra);
/* Both of the above. */
mmkv_env *open_env(const char *path, unsigned int extra);
/* Both of the above with maxdbs set first. */
mmkv_env *open_env_dbs(const char *path, unsigned int extra, unsigned int maxdbs);

/* Assert that mmkv_env_check returns 0 with no problems and that its page
 * accounting adds up; problems are printed. */
void check_env(mmkv_env *env);
/* mmkv_env_check, counting problems and printing them only if verbose;
 * returns the check's return code. */
int check_env_quiet(mmkv_env *env, mmkv_check_result *res, uint64_t *reported, bool verbose);

/* True when rc is 0, one of the negative MMKV_* codes, or a positive errno. */
bool is_defined_rc(int rc);

/* ---- transactions and values ---- */

mmkv_txn *txn_write(mmkv_env *env);
mmkv_txn *txn_read(mmkv_env *env);
/* mmkv_dbi_open asserting success. */
mmkv_dbi dbi_ok(mmkv_txn *txn, const char *name, unsigned int flags);

static inline mmkv_val mkval(const void *p, size_t n)
{
	mmkv_val v = { n, (void *)p };
	return v;
}
/* A NUL-terminated string as a key or value (without the NUL). */
mmkv_val sval(const char *s);

/* put/get/del asserting the result. */
void put_ok(mmkv_txn *txn, mmkv_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen);
void put_str(mmkv_txn *txn, mmkv_dbi dbi, const char *k, const char *v);
/* Assert that key holds exactly (v, vlen). */
void expect_val(mmkv_txn *txn, mmkv_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen);
void expect_str(mmkv_txn *txn, mmkv_dbi dbi, const char *k, const char *v);
void expect_missing(mmkv_txn *txn, mmkv_dbi dbi, const void *k, size_t klen);

/* Entries of dbi in txn's view (mmkv_dbi_stat). */
uint64_t db_entries(mmkv_txn *txn, mmkv_dbi dbi);

/* ---- pseudo-random numbers ---- */

typedef struct test_rng {
	uint64_t s;
} test_rng;

/* The seed for this run: MMKV_TEST_SEED if set, else time-based; printed
 * together with the program name. */
uint64_t test_seed(const char *prog);
static inline void rng_init(test_rng *r, uint64_t seed)
{
	r->s = seed;
}
uint64_t rng_next(test_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t rng_below(test_rng *r, uint64_t n);
/* Uniform in [lo, hi]. */
uint64_t rng_range(test_rng *r, uint64_t lo, uint64_t hi);
/* True with probability pct / 100. */
bool rng_pct(test_rng *r, unsigned int pct);
void rng_fill(test_rng *r, void *buf, size_t n);

/* Deterministic value bytes: byte i of the value named by seed. Filling and
 * comparing need no stored copy of the value. */
void pattern_fill(uint64_t seed, void *buf, size_t n);
/* True when buf[0..n) equals pattern_fill(seed, ., n). */
bool pattern_equal(uint64_t seed, const void *buf, size_t n);

/* Anonymous memory of this process (RssAnon from /proc/self/status), bytes;
 * 0 when unknown. */
uint64_t rss_anon_bytes(void);

/* Whether the program runs under AddressSanitizer (its allocator keeps freed
 * memory in quarantine, so RSS checks mean nothing there). */
bool under_asan(void);

/* ---- files and settings ---- */

/* Copy a file's bytes (asserts). */
void copy_file(const char *from, const char *to);
/* Size of a file in bytes (asserts). */
uint64_t file_size(const char *path);
/* An unsigned setting from the environment: def when unset or empty,
 * else clamped to [lo, hi]. */
unsigned int env_uint(const char *name, unsigned int def, unsigned int lo, unsigned int hi);

/* Abort the process (SIGALRM) if a test hangs longer than seconds. */
void watchdog(unsigned int seconds);

#endif /* MMKV_TEST_UTIL_H */
