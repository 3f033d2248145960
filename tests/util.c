/*
 * util.c - helpers shared by the cmocka test programs (see util.h): write-mode
 * group runner, temporary directories, environment and transaction shortcuts
 * that assert success, the checker wrapper, and a seeded PRNG.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mmkv.h"
#include "util.h"

unsigned int test_env_flags;

int run_group_both_modes(const char *name, const struct CMUnitTest *tests, size_t ntests,
                         CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
	static const struct {
		const char *suffix;
		unsigned int flags;
	} modes[] = { { "default", 0 }, { "writemap", MMKV_WRITEMAP } };
	char group[256];
	int failed = 0;

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		test_env_flags = modes[i].flags;
		snprintf(group, sizeof(group), "%s_%s", name, modes[i].suffix);
		failed += _cmocka_run_group_tests(group, tests, ntests, group_setup, group_teardown);
	}
	test_env_flags = 0;
	return failed;
}

/* ------------------------------------------------------------ directories */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void test_dir_create(test_dir *d)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(d->path, sizeof(d->path), "%s/mmkv-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(d->path) == NULL)
		fail_msg("mkdtemp(%s): %s", d->path, strerror(errno));
}

void test_dir_remove(test_dir *d)
{
	if (d->path[0])
		nftw(d->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	d->path[0] = '\0';
}

void test_dir_file(const test_dir *d, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", d->path, name);

	assert_true(n > 0 && (size_t)n < cap);
}

int tu_setup(void **state)
{
	test_fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	test_dir_create(&fx->dir);
	test_dir_file(&fx->dir, "test.mmkv", fx->path, sizeof(fx->path));
	*state = fx;
	return 0;
}

int tu_teardown(void **state)
{
	test_fixture *fx = *state;

	if (fx == NULL)
		return 0;
	mmkv_env_close(fx->env);
	test_dir_remove(&fx->dir);
	free(fx);
	*state = NULL;
	return 0;
}

/* ---------------------------------------------------------- environments */

mmkv_env *env_new(void)
{
	mmkv_env *env = NULL;

	assert_ok(mmkv_env_create(&env));
	assert_non_null(env);
	return env;
}

unsigned int env_flags(unsigned int extra)
{
	unsigned int flags = test_env_flags | extra;

	if (flags & MMKV_RDONLY)
		flags &= ~MMKV_WRITEMAP;
	return flags;
}

void env_open_ok(mmkv_env *env, const char *path, unsigned int extra)
{
	assert_ok(mmkv_env_open(env, path, env_flags(extra), 0644));
}

mmkv_env *open_env(const char *path, unsigned int extra)
{
	mmkv_env *env = env_new();

	env_open_ok(env, path, extra);
	return env;
}

mmkv_env *open_env_dbs(const char *path, unsigned int extra, unsigned int maxdbs)
{
	mmkv_env *env = env_new();

	assert_ok(mmkv_env_set_maxdbs(env, maxdbs));
	env_open_ok(env, path, extra);
	return env;
}

struct report_ctx {
	uint64_t count;
	bool verbose;
};

static void report_problem(void *ctx, uint64_t pgno, const char *problem)
{
	struct report_ctx *rc = ctx;

	rc->count++;
	if (problem == NULL || problem[0] == '\0')
		fail_msg("mmkv_env_check reported a problem without a description (page %" PRIu64 ")",
		         pgno);
	if (rc->verbose && rc->count <= 50)
		print_error("mmkv_env_check: page %" PRIu64 ": %s\n", pgno, problem);
}

int check_env_quiet(mmkv_env *env, mmkv_check_result *res, uint64_t *reported, bool verbose)
{
	struct report_ctx ctx = { 0, verbose };
	int rc = mmkv_env_check(env, report_problem, &ctx, res);

	if (reported)
		*reported = ctx.count;
	return rc;
}

void check_env(mmkv_env *env)
{
	mmkv_check_result res;
	uint64_t reported = 0;
	int rc;

	memset(&res, 0xa5, sizeof(res));
	rc = check_env_quiet(env, &res, &reported, true);
	if (rc != 0)
		fail_msg("mmkv_env_check returned %d (%s), %" PRIu64 " problems reported", rc,
		         mmkv_strerror(rc), reported);
	assert_int_equal(reported, 0);
	assert_int_equal(res.problems, 0);
	if (res.pages_tree + res.pages_free + 2 != res.pages_total)
		fail_msg("mmkv_env_check accounting: tree %" PRIu64 " + free %" PRIu64
		         " + 2 metas != total %" PRIu64,
		         res.pages_tree, res.pages_free, res.pages_total);
}

bool is_defined_rc(int rc)
{
	if (rc >= 0)
		return true;
	switch (rc) {
#define TU_ERROR_CASE_(name, value, msg) case MMKV_##name:
		MMKV_ERRORS(TU_ERROR_CASE_)
#undef TU_ERROR_CASE_
		return true;
	default:
		return false;
	}
}

/* ---------------------------------------------------- transactions, values */

mmkv_txn *txn_write(mmkv_env *env)
{
	mmkv_txn *txn = NULL;

	assert_ok(mmkv_txn_begin(env, NULL, 0, &txn));
	assert_non_null(txn);
	return txn;
}

mmkv_txn *txn_read(mmkv_env *env)
{
	mmkv_txn *txn = NULL;

	assert_ok(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn));
	assert_non_null(txn);
	return txn;
}

mmkv_dbi dbi_ok(mmkv_txn *txn, const char *name, unsigned int flags)
{
	mmkv_dbi dbi = 0;

	assert_ok(mmkv_dbi_open(txn, name, flags, &dbi));
	return dbi;
}

mmkv_val sval(const char *s)
{
	return mkval(s, strlen(s));
}

void put_ok(mmkv_txn *txn, mmkv_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen)
{
	mmkv_val key = mkval(k, klen), val = mkval(v, vlen);

	assert_ok(mmkv_put(txn, dbi, &key, &val, 0));
}

void put_str(mmkv_txn *txn, mmkv_dbi dbi, const char *k, const char *v)
{
	put_ok(txn, dbi, k, strlen(k), v, strlen(v));
}

void expect_val(mmkv_txn *txn, mmkv_dbi dbi, const void *k, size_t klen, const void *v, size_t vlen)
{
	mmkv_val key = mkval(k, klen), out = { 0, NULL };

	assert_ok(mmkv_get(txn, dbi, &key, &out));
	assert_int_equal(out.size, vlen);
	if (vlen)
		assert_memory_equal(out.data, v, vlen);
}

void expect_str(mmkv_txn *txn, mmkv_dbi dbi, const char *k, const char *v)
{
	expect_val(txn, dbi, k, strlen(k), v, strlen(v));
}

void expect_missing(mmkv_txn *txn, mmkv_dbi dbi, const void *k, size_t klen)
{
	mmkv_val key = mkval(k, klen), out = { 0, NULL };

	assert_rc(mmkv_get(txn, dbi, &key, &out), MMKV_NOTFOUND);
}

uint64_t db_entries(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_stat st;

	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	return st.entries;
}

/* ------------------------------------------------------------------ PRNG */

uint64_t test_seed(const char *prog)
{
	const char *env = getenv("MMKV_TEST_SEED");
	uint64_t seed;

	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
		       ((uint64_t)getpid() << 32);
	}
	printf("%s: seed %" PRIu64 " (rerun with MMKV_TEST_SEED=%" PRIu64 ")\n", prog, seed, seed);
	fflush(stdout);
	return seed;
}

static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

uint64_t rng_next(test_rng *r)
{
	return splitmix64(&r->s);
}

uint64_t rng_below(test_rng *r, uint64_t n)
{
	/* Multiply-shift; the bias is irrelevant for tests. */
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

uint64_t rng_range(test_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + rng_below(r, hi - lo + 1);
}

bool rng_pct(test_rng *r, unsigned int pct)
{
	return rng_below(r, 100) < pct;
}

void rng_fill(test_rng *r, void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n >= 8) {
		uint64_t x = rng_next(r);
		memcpy(p, &x, 8);
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t x = rng_next(r);
		memcpy(p, &x, n);
	}
}

/* Word i of the pattern named by seed. */
static inline uint64_t pattern_word(uint64_t seed, uint64_t i)
{
	uint64_t s = seed ^ (i * 0xD1B54A32D192ED03ull);

	return splitmix64(&s);
}

void pattern_fill(uint64_t seed, void *buf, size_t n)
{
	unsigned char *p = buf;
	uint64_t i = 0;

	for (; n >= 8; n -= 8, p += 8, i++) {
		uint64_t w = pattern_word(seed, i);
		memcpy(p, &w, 8);
	}
	if (n) {
		uint64_t w = pattern_word(seed, i);
		memcpy(p, &w, n);
	}
}

bool pattern_equal(uint64_t seed, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	uint64_t i = 0, w, got;

	for (; n >= 8; n -= 8, p += 8, i++) {
		memcpy(&got, p, 8);
		if (got != pattern_word(seed, i))
			return false;
	}
	if (n) {
		w = pattern_word(seed, i);
		return memcmp(p, &w, n) == 0;
	}
	return true;
}

/* ------------------------------------------------------------ process */

uint64_t rss_anon_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "RssAnon: %" SCNu64, &kb) == 1)
			break;
	}
	fclose(f);
	return kb * 1024;
}

bool under_asan(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#else
	return false;
#endif
#else
	return false;
#endif
}

void watchdog(unsigned int seconds)
{
	signal(SIGALRM, SIG_DFL);
	alarm(seconds);
}

pid_t spawn_child(test_child_fn *fn, void *arg, unsigned int alarm_seconds)
{
	pid_t parent = getpid(), pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGALRM, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(TEST_CHILD_ORPHAN);
		alarm(alarm_seconds);
		_exit(fn(arg));
	}
	return pid;
}

void describe_wait_status(int status, char *buf, size_t cap)
{
	if (WIFEXITED(status))
		snprintf(buf, cap, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, cap, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, cap, "wait status %#x", status);
}

/* ------------------------------------------------------------ files */

void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out;
	char buf[1 << 16];
	ssize_t r;

	assert_true(in >= 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(out >= 0);
	while ((r = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)r), r);
	assert_int_equal(r, 0);
	close(in);
	close(out);
}

uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

unsigned int env_uint(const char *name, unsigned int def, unsigned int lo, unsigned int hi)
{
	const char *s = getenv(name);
	unsigned long v;

	if (s == NULL || *s == '\0')
		return def;
	v = strtoul(s, NULL, 10);
	return v < lo ? lo : v > hi ? hi : (unsigned int)v;
}
