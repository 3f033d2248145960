/*
 * test_corrupt.c - damaged, truncated and foreign data files, through
 * <mmkv.h> only.
 *
 * A database with a few thousand keys (a multi-level tree, overflow values,
 * a named and an integer-key database, free pages from earlier commits) is
 * built and closed; then, for many seeded variants, a copy of its file is
 * damaged: random bytes flipped in random pages, page headers hit, pages
 * zeroed, filled with noise or overwritten by other pages, the file
 * truncated at every page boundary and between boundaries, meta pages zeroed
 * or damaged.
 * Each copy is probed in a child process: open (0, MMKV_CORRUPTED,
 * MMKV_INVALID or MMKV_VERSION_MISMATCH), and if it opens, mmkv_env_check,
 * full cursor scans both ways and gets of every key of every database, and
 * one write transaction. Every return code must be 0 or a defined error, and
 * the child must not crash, hang or trip a sanitizer.
 *
 * Exact expectations: a text file or a file of zeros is MMKV_INVALID and is
 * left unchanged; an empty file becomes a fresh database; with the newest
 * meta damaged the previous commit is served, with the older one damaged the
 * newest is, and both pass mmkv_env_check; a byte flipped in a leaf page is
 * reported by mmkv_env_check as MMKV_CORRUPTED with a description naming the
 * page, and with MMKV_VERIFY a read of it returns MMKV_CORRUPTED.
 *
 * MMKV_TEST_SEED picks the variants; MMKV_CORRUPT_VARIANTS (default 200)
 * how many random ones per write mode. Runs in both write modes.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmkv.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))

static uint64_t seed;
static unsigned int nvariants = 200;

#define NMAIN 3000
#define NNAMED 500
#define NINTS 400

/* --------------------------------------------------------------- files */

static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	char lockp[PATH_MAX + 8];
	int fd;

	snprintf(lockp, sizeof(lockp), "%s-lock", path);
	unlink(lockp);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* ------------------------------------------------------- the base file */

static void main_key(char buf[16], int i)
{
	snprintf(buf, 16, "k%05d", i);
}

static void named_key(char buf[16], int i)
{
	snprintf(buf, 16, "n%04d", i);
}

static size_t main_size(int i)
{
	return i % 50 == 0 ? 5000 + (size_t)(i % 7) * 1000 : (size_t)(i * 37) % 300 + 1;
}

typedef struct base {
	unsigned char *img;
	size_t len;
	uint32_t ps;
	uint64_t last_txnid, prev_txnid;
} base;

/* Built over several commits so that the free tree has records too; the
 * last commit only adds "zz-last". */
static void build_base(const char *path, base *b)
{
	mmkv_env *env = open_env_dbs(path, 0, 4);
	unsigned char *buf = malloc(12000);
	mmkv_envinfo info;
	mmkv_txn *txn;
	mmkv_dbi m, n, ints;
	char k[16];

	assert_non_null(buf);
	for (int round = 0; round < 4; round++) {
		txn = txn_write(env);
		m = dbi_ok(txn, NULL, 0);
		n = dbi_ok(txn, "named", MMKV_CREATE);
		ints = dbi_ok(txn, "ints", MMKV_CREATE | MMKV_INTEGERKEY);
		for (int i = round; i < NMAIN; i += 2) {
			main_key(k, i);
			pattern_fill((uint64_t)i, buf, main_size(i));
			put_ok(txn, m, k, strlen(k), buf, main_size(i));
		}
		for (int i = round; i < NNAMED; i += 2) {
			named_key(k, i);
			pattern_fill((uint64_t)i + 100000, buf, 20 + (size_t)i % 80);
			put_ok(txn, n, k, strlen(k), buf, 20 + (size_t)i % 80);
		}
		for (uint32_t i = (uint32_t)round; i < NINTS; i += 2) {
			uint32_t key = i * 2654435761u;
			put_ok(txn, ints, &key, 4, &i, 4);
		}
		assert_ok(mmkv_txn_commit(txn));
	}
	assert_ok(mmkv_env_info(env, &info));
	b->prev_txnid = info.last_txnid;
	txn = txn_write(env);
	put_str(txn, dbi_ok(txn, NULL, 0), "zz-last", "last");
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	assert_ok(mmkv_env_info(env, &info));
	b->ps = info.page_size;
	b->last_txnid = info.last_txnid;
	mmkv_env_close(env);
	free(buf);
	b->img = read_file(path, &b->len);
	assert_true(b->len >= 2 * (size_t)b->ps);
	assert_true(b->len / b->ps >= 20);
}

/* ------------------------------------------------------------- probing */

/* In the child: fail with a message naming the variant. */
static const char *probe_label;
static int probe_failures;

#define PROBE(expr)                                                                         \
	({                                                                                  \
		int rc_ = (expr);                                                           \
		if (!is_defined_rc(rc_)) {                                                  \
			fprintf(stderr, "corrupt variant %s: %s returned undefined %d\n",   \
			        probe_label, #expr, rc_);                                   \
			probe_failures++;                                                   \
		}                                                                           \
		rc_;                                                                        \
	})

static void scan(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_cursor *cur;
	mmkv_val k, v;
	int rc, steps;

	if (PROBE(mmkv_cursor_open(txn, dbi, &cur)) != 0)
		return;
	rc = PROBE(mmkv_cursor_get(cur, &k, &v, MMKV_FIRST));
	for (steps = 0; rc == 0 && steps < 100000; steps++) {
		volatile unsigned char sink = 0;
		/* touch the returned bytes: they must be readable */
		if (k.size)
			sink ^= ((const unsigned char *)k.data)[k.size - 1];
		if (v.size)
			sink ^= ((const unsigned char *)v.data)[0] ^ ((const unsigned char *)v.data)[v.size - 1];
		(void)sink;
		rc = PROBE(mmkv_cursor_get(cur, &k, &v, MMKV_NEXT));
	}
	rc = PROBE(mmkv_cursor_get(cur, &k, &v, MMKV_LAST));
	for (steps = 0; rc == 0 && steps < 100000; steps++) {
		volatile unsigned char sink = 0;
		if (v.size)
			sink ^= ((const unsigned char *)v.data)[v.size - 1];
		(void)sink;
		rc = PROBE(mmkv_cursor_get(cur, &k, &v, MMKV_PREV));
	}
	{
		mmkv_val probe = sval("k01500");
		PROBE(mmkv_cursor_get(cur, &probe, &v, MMKV_SET_RANGE));
	}
	mmkv_cursor_close(cur);
}

static void probe_reads(mmkv_env *env)
{
	mmkv_txn *txn;
	mmkv_dbi m, n, ints;
	mmkv_val k, v;
	char kb[16];
	mmkv_stat st;

	if (PROBE(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn)) != 0)
		return;
	if (PROBE(mmkv_dbi_open(txn, NULL, 0, &m)) == 0) {
		PROBE(mmkv_dbi_stat(txn, m, &st));
		scan(txn, m);
		for (int i = 0; i < NMAIN; i++) {
			main_key(kb, i);
			k = sval(kb);
			if (PROBE(mmkv_get(txn, m, &k, &v)) == 0 && v.size) {
				volatile unsigned char sink = ((const unsigned char *)v.data)[v.size - 1];
				(void)sink;
			}
		}
	}
	if (PROBE(mmkv_dbi_open(txn, "named", 0, &n)) == 0) {
		scan(txn, n);
		for (int i = 0; i < NNAMED; i++) {
			named_key(kb, i);
			k = sval(kb);
			PROBE(mmkv_get(txn, n, &k, &v));
		}
	}
	if (PROBE(mmkv_dbi_open(txn, "ints", MMKV_INTEGERKEY, &ints)) == 0) {
		scan(txn, ints);
		for (uint32_t i = 0; i < NINTS; i++) {
			uint32_t key = i * 2654435761u;
			k = mkval(&key, 4);
			PROBE(mmkv_get(txn, ints, &k, &v));
		}
	}
	mmkv_txn_abort(txn);
}

static void probe_write(mmkv_env *env)
{
	mmkv_txn *txn;
	mmkv_dbi m, n;
	char kb[16];
	int rc = 0;

	if (PROBE(mmkv_txn_begin(env, NULL, 0, &txn)) != 0)
		return;
	if (PROBE(mmkv_dbi_open(txn, NULL, 0, &m)) != 0) {
		mmkv_txn_abort(txn);
		return;
	}
	for (int i = 0; i < 40 && rc == 0; i++) {
		unsigned char val[300];
		mmkv_val k, v = mkval(val, (size_t)(i * 7));
		memset(val, i, sizeof(val));
		main_key(kb, i * 71);
		k = sval(kb);
		if (i % 3 == 0) {
			rc = PROBE(mmkv_del(txn, m, &k, NULL));
			if (rc == MMKV_NOTFOUND)
				rc = 0;
		} else {
			rc = PROBE(mmkv_put(txn, m, &k, &v, 0));
		}
	}
	if (rc == 0 && PROBE(mmkv_dbi_open(txn, "named", 0, &n)) == 0) {
		mmkv_val k = sval("n0007");
		rc = PROBE(mmkv_del(txn, n, &k, NULL));
		if (rc == MMKV_NOTFOUND)
			rc = 0;
	}
	if (rc == 0)
		PROBE(mmkv_txn_commit(txn));
	else
		mmkv_txn_abort(txn);
}

static void count_report(void *ctx, uint64_t pgno, const char *problem)
{
	(void)pgno;
	if (problem == NULL || problem[0] == '\0') {
		fprintf(stderr, "corrupt variant %s: check reported a problem without a description\n",
		        probe_label);
		probe_failures++;
	}
	(*(uint64_t *)ctx)++;
}

/* The probe proper, run in a child: 1 on failures, else 2 if it opened. */
static int probe(const char *path, unsigned int flags)
{
	bool opened = false;

	mmkv_env *env = NULL;
	mmkv_check_result res;
	uint64_t reported = 0;
	int rc;

	probe_failures = 0;
	if (mmkv_env_create(&env) != 0)
		return 1;
	mmkv_env_set_maxdbs(env, 4);
	rc = mmkv_env_open(env, path, test_env_flags | flags | MMKV_NOSYNC, 0644);
	if (rc != 0 && rc != MMKV_CORRUPTED && rc != MMKV_INVALID && rc != MMKV_VERSION_MISMATCH) {
		fprintf(stderr, "corrupt variant %s: mmkv_env_open returned %d (%s)\n", probe_label, rc,
		        mmkv_strerror(rc));
		probe_failures++;
	}
	if (rc == 0) {
		opened = true;
		rc = PROBE(mmkv_env_check(env, count_report, &reported, &res));
		if (rc == 0 && (reported || res.problems)) {
			fprintf(stderr, "corrupt variant %s: check returned 0 with problems\n", probe_label);
			probe_failures++;
		}
		if (rc == MMKV_CORRUPTED && reported == 0) {
			fprintf(stderr, "corrupt variant %s: check returned CORRUPTED without a report\n",
			        probe_label);
			probe_failures++;
		}
		probe_reads(env);
		probe_write(env);
		PROBE(mmkv_env_check(env, NULL, NULL, NULL));
		probe_reads(env);
	}
	mmkv_env_close(env);
	return probe_failures ? 1 : opened ? 2 : 0;
}

struct tally {
	unsigned int variants, opened, failed;
};

/* Run probe() in a child; a crash, hang or undefined code fails the test. */
static void probe_in_child(const char *path, unsigned int flags, const char *label, struct tally *t)
{
	pid_t pid;
	int status;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(60);
		probe_label = label;
		_exit(probe(path, flags));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	t->variants++;
	if (WIFSIGNALED(status)) {
		print_error("corrupt variant %s (seed %" PRIu64 "): killed by signal %d (%s)\n", label, seed,
		            WTERMSIG(status), WTERMSIG(status) == SIGALRM ? "hang" : strsignal(WTERMSIG(status)));
		t->failed++;
	} else if (WEXITSTATUS(status) == 2) {
		t->opened++;
	} else if (WEXITSTATUS(status) != 0) {
		print_error("corrupt variant %s (seed %" PRIu64 "): exit status %d\n", label, seed,
		            WEXITSTATUS(status));
		t->failed++;
	}
}

/* ------------------------------------------------------------ variants */

static void test_damaged_variants(void **state)
{
	test_fixture *fx = FX(state);
	char basep[PATH_MAX], vp[PATH_MAX], label[128];
	base b;
	test_rng r;
	struct tally t = { 0, 0, 0 };
	unsigned char *img;
	size_t npages;

	test_dir_file(&fx->dir, "base.mmkv", basep, sizeof(basep));
	test_dir_file(&fx->dir, "v.mmkv", vp, sizeof(vp));
	build_base(basep, &b);
	npages = b.len / b.ps;
	img = malloc(b.len);
	assert_non_null(img);
	rng_init(&r, seed);

	for (unsigned int v = 0; v < nvariants; v++) {
		uint64_t kind = rng_below(&r, 100);
		size_t len = b.len;
		unsigned int flags = rng_pct(&r, 25) ? MMKV_VERIFY : 0;

		memcpy(img, b.img, b.len);
		if (kind < 40) {
			/* a few bytes of one page */
			size_t pg = (size_t)rng_range(&r, 2, npages - 1);
			int nflip = (int)rng_range(&r, 1, 8);
			for (int i = 0; i < nflip; i++)
				img[pg * b.ps + rng_below(&r, b.ps)] ^= (unsigned char)rng_range(&r, 1, 255);
			snprintf(label, sizeof(label), "#%u flip %d bytes in page %zu", v, nflip, pg);
		} else if (kind < 55) {
			/* the start of a page, where its header is */
			size_t pg = (size_t)rng_range(&r, 2, npages - 1);
			size_t off = rng_below(&r, 64);
			img[pg * b.ps + off] ^= (unsigned char)(1u << rng_below(&r, 8));
			snprintf(label, sizeof(label), "#%u flip a bit at byte %zu of page %zu", v, off, pg);
		} else if (kind < 63) {
			size_t pg = (size_t)rng_range(&r, 2, npages - 1);
			memset(img + pg * b.ps, 0, b.ps);
			snprintf(label, sizeof(label), "#%u zero page %zu", v, pg);
		} else if (kind < 68) {
			size_t pg = (size_t)rng_range(&r, 2, npages - 1);
			rng_fill(&r, img + pg * b.ps, b.ps);
			snprintf(label, sizeof(label), "#%u noise in page %zu", v, pg);
		} else if (kind < 75) {
			size_t from = (size_t)rng_range(&r, 2, npages - 1), to = (size_t)rng_range(&r, 2, npages - 1);
			memcpy(img + to * b.ps, b.img + from * b.ps, b.ps);
			snprintf(label, sizeof(label), "#%u page %zu copied over page %zu", v, from, to);
		} else if (kind < 82) {
			/* many pages at once */
			for (int i = 0; i < 12; i++) {
				size_t pg = (size_t)rng_range(&r, 2, npages - 1);
				img[pg * b.ps + rng_below(&r, b.ps)] ^= (unsigned char)rng_range(&r, 1, 255);
			}
			snprintf(label, sizeof(label), "#%u flips in 12 pages", v);
		} else if (kind < 88) {
			size_t pages = (size_t)rng_range(&r, 1, npages - 1);
			len = pages * b.ps;
			snprintf(label, sizeof(label), "#%u truncated to %zu pages", v, pages);
		} else if (kind < 94) {
			len = (size_t)rng_range(&r, 1, b.len - 1);
			snprintf(label, sizeof(label), "#%u truncated to %zu bytes", v, len);
		} else {
			/* meta pages: bytes of one or both */
			int which = (int)rng_below(&r, 3);
			for (int mp = 0; mp < 2; mp++) {
				if (which != 2 && which != mp)
					continue;
				for (int i = (int)rng_range(&r, 1, 4); i > 0; i--)
					img[(size_t)mp * b.ps + rng_below(&r, 512)] ^= (unsigned char)rng_range(&r, 1, 255);
			}
			snprintf(label, sizeof(label), "#%u flips in meta %s", v,
			         which == 2 ? "0 and 1" : which ? "1" : "0");
		}
		if (flags)
			strncat(label, " (MMKV_VERIFY)", sizeof(label) - strlen(label) - 1);
		write_file(vp, img, len);
		probe_in_child(vp, flags, label, &t);
	}

	/* fixed cases: truncation at each interesting boundary */
	{
		const size_t cuts[] = { 1, 100, 511, 512, b.ps - 1, b.ps, b.ps + 1, 2 * (size_t)b.ps - 1,
			                2 * (size_t)b.ps, 2 * (size_t)b.ps + b.ps / 2, 3 * (size_t)b.ps,
			                b.len / 2, b.len / 2 + b.ps / 2, b.len - b.ps, b.len - 1 };
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			snprintf(label, sizeof(label), "truncated to %zu bytes", cuts[i]);
			write_file(vp, b.img, cuts[i]);
			probe_in_child(vp, 0, label, &t);
		}
	}
	/* truncation at every page boundary of the file */
	for (size_t pages = 1; pages * b.ps < b.len; pages++) {
		snprintf(label, sizeof(label), "truncated to page boundary %zu", pages);
		write_file(vp, b.img, pages * b.ps);
		probe_in_child(vp, 0, label, &t);
	}
	/* fixed cases: meta pages zeroed, one or both, or swapped */
	for (int which = 0; which < 4; which++) {
		memcpy(img, b.img, b.len);
		if (which == 0 || which == 2)
			memset(img, 0, b.ps);
		if (which == 1 || which == 2)
			memset(img + b.ps, 0, b.ps);
		if (which == 3) {
			memcpy(img, b.img + b.ps, b.ps);
			memcpy(img + b.ps, b.img, b.ps);
		}
		snprintf(label, sizeof(label), "meta %s", which == 0 ? "0 zeroed" : which == 1 ? "1 zeroed" :
		                                          which == 2 ? "0 and 1 zeroed" : "0 and 1 swapped");
		write_file(vp, img, b.len);
		probe_in_child(vp, 0, label, &t);
		if (which == 2) {
			/* no valid meta: refused, never silently re-created */
			mmkv_env *env = env_new();
			int rc = mmkv_env_open(env, vp, test_env_flags, 0644);
			mmkv_env_close(env);
			if (rc != MMKV_CORRUPTED && rc != MMKV_INVALID)
				fail_msg("both metas zeroed: open returned %d (%s)", rc, mmkv_strerror(rc));
		}
	}

	print_message("%u damaged variants probed, %u opened, %u failed\n", t.variants, t.opened, t.failed);
	assert_int_equal(t.failed, 0);
	free(img);
	free(b.img);
}

/* ------------------------------------------------------- exact cases */

/* Open path with test_env_flags (plus extra); the env is left in fx->env
 * (closed by the teardown if an assertion fails) and closed here. */
static int try_open(test_fixture *fx, const char *path, unsigned int extra)
{
	int rc;

	fx->env = env_new();
	rc = mmkv_env_open(fx->env, path, env_flags(extra), 0644);
	mmkv_env_close(fx->env);
	fx->env = NULL;
	return rc;
}

static void expect_unchanged(const char *path, const void *want, size_t n)
{
	size_t got;
	unsigned char *after = read_file(path, &got);
	bool same = got == n && memcmp(after, want, n) == 0;

	free(after);
	if (!same)
		fail_msg("%s was changed by a failed open", path);
}

static void test_foreign_files(void **state)
{
	test_fixture *fx = FX(state);
	static char text[64 * 1024];
	static const char zeros[8192];
	char p[PATH_MAX];
	int rc;

	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n"[i % 57];

	/* 64 KiB of text */
	test_dir_file(&fx->dir, "text.mmkv", p, sizeof(p));
	write_file(p, text, sizeof(text));
	assert_rc(try_open(fx, p, 0), MMKV_INVALID);
	assert_rc(try_open(fx, p, MMKV_RDONLY), MMKV_INVALID);
	expect_unchanged(p, text, sizeof(text));

	/* two pages of zeros */
	test_dir_file(&fx->dir, "zeros.mmkv", p, sizeof(p));
	write_file(p, zeros, sizeof(zeros));
	rc = try_open(fx, p, 0);
	if (rc != MMKV_INVALID && rc != MMKV_CORRUPTED)
		fail_msg("a file of zeros: open returned %d (%s)", rc, mmkv_strerror(rc));
	expect_unchanged(p, zeros, sizeof(zeros));

	/* an empty file becomes a fresh database */
	test_dir_file(&fx->dir, "empty.mmkv", p, sizeof(p));
	write_file(p, "", 0);
	fx->env = open_env(p, 0);
	{
		mmkv_txn *txn = txn_write(fx->env);
		mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
		assert_int_equal(db_entries(txn, dbi), 0);
		put_str(txn, dbi, "k", "v");
		assert_ok(mmkv_txn_commit(txn));
		txn = txn_read(fx->env);
		expect_str(txn, dbi, "k", "v");
		mmkv_txn_abort(txn);
	}
	check_env(fx->env);
	mmkv_env_close(fx->env);
	fx->env = NULL;

	/* short text files, smaller than a meta and than two pages: still
	 * not a libmmkv file */
	test_dir_file(&fx->dir, "short.mmkv", p, sizeof(p));
	write_file(p, text, 100);
	assert_rc(try_open(fx, p, 0), MMKV_INVALID);
	expect_unchanged(p, text, 100);
	write_file(p, text, 5000);
	assert_rc(try_open(fx, p, 0), MMKV_INVALID);
	expect_unchanged(p, text, 5000);
}

/* Open a copy with one meta damaged; the expected commit must be served. */
static void meta_fallback(test_fixture *fx, const base *b, int meta_page, bool expect_last)
{
	char p[PATH_MAX];
	unsigned char *img = malloc(b->len);
	mmkv_env *env;
	mmkv_txn *txn;
	mmkv_dbi m, n;
	mmkv_envinfo info;
	char kb[16];

	assert_non_null(img);
	memcpy(img, b->img, b->len);
	img[(size_t)meta_page * b->ps + 100] ^= 0x5a;
	test_dir_file(&fx->dir, "meta.mmkv", p, sizeof(p));
	write_file(p, img, b->len);
	env = fx->env = open_env(p, 0);
	assert_ok(mmkv_env_info(env, &info));
	assert_int_equal(info.last_txnid, expect_last ? b->last_txnid : b->prev_txnid);
	txn = txn_read(env);
	m = dbi_ok(txn, NULL, 0);
	n = dbi_ok(txn, "named", 0);
	if (expect_last)
		expect_str(txn, m, "zz-last", "last");
	else
		expect_missing(txn, m, "zz-last", 7);
	assert_int_equal(db_entries(txn, m), NMAIN + (expect_last ? 1 : 0));
	assert_int_equal(db_entries(txn, n), NNAMED);
	for (int i = 0; i < NMAIN; i += 13) {
		mmkv_val k, v;
		main_key(kb, i);
		k = sval(kb);
		assert_ok(mmkv_get(txn, m, &k, &v));
		assert_int_equal(v.size, main_size(i));
		assert_true(pattern_equal((uint64_t)i, v.data, v.size));
	}
	mmkv_txn_abort(txn);
	check_env(env);
	/* and it takes new commits */
	txn = txn_write(env);
	put_str(txn, m, "after", "fallback");
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	mmkv_env_close(env);
	fx->env = NULL;
	free(img);
}

static void test_meta_fallback(void **state)
{
	test_fixture *fx = FX(state);
	char basep[PATH_MAX];
	base b;
	int newest;

	test_dir_file(&fx->dir, "base.mmkv", basep, sizeof(basep));
	build_base(basep, &b);
	newest = (int)(b.last_txnid % 2);
	/* the two metas hold the last two commits */
	assert_int_equal(b.prev_txnid % 2, 1 - newest);
	meta_fallback(fx, &b, newest, false);
	meta_fallback(fx, &b, 1 - newest, true);
	free(b.img);
}

struct problems {
	uint64_t count;
	uint64_t pgno_hit;
	uint64_t pages[8]; /* pages holding a flipped copy */
	unsigned int ncopies;
};

static void record_problem(void *ctx, uint64_t pgno, const char *problem)
{
	struct problems *p = ctx;

	p->count++;
	if (problem && problem[0])
		print_message("mmkv_env_check (expected): page %" PRIu64 ": %s\n", pgno, problem);
	else
		fail_msg("a problem without a description");
	for (unsigned int i = 0; i < p->ncopies; i++)
		if (pgno == p->pages[i])
			p->pgno_hit++;
}

/* One flipped byte inside a value stored in a leaf page. */
static void test_check_reports_leaf_flip(void **state)
{
	test_fixture *fx = FX(state);
	static const char marker[] = "MARKER-VALUE-7f3a9c-in-a-leaf";
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	mmkv_envinfo info;
	mmkv_check_result res;
	struct problems pr = { 0, 0, { 0 }, 0 };
	unsigned char *img, *hit;
	size_t len;
	char kb[16];
	int rc;

	/* one commit on a fresh file: no stale copies of the leaf anywhere */
	for (int i = 0; i < 2000; i++) {
		snprintf(kb, sizeof(kb), "key%05d", i);
		if (i == 1234)
			put_str(txn, dbi, kb, marker);
		else
			put_str(txn, dbi, kb, "an ordinary value");
	}
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	assert_ok(mmkv_env_info(env, &info));
	mmkv_env_close(env);
	fx->env = NULL;

	img = read_file(fx->path, &len);
	/* every copy of the marker (a page freed inside the transaction may
	 * hold a stale one): the live leaf is among them */
	for (hit = memmem(img, len, marker, sizeof(marker) - 1); hit;
	     hit = memmem(hit + 1, len - (size_t)(hit + 1 - img), marker, sizeof(marker) - 1)) {
		uint64_t pg = (uint64_t)(hit - img) / info.page_size;
		assert_true(pg >= 2);
		assert_true(pr.ncopies < 8);
		pr.pages[pr.ncopies++] = pg;
		hit[7] ^= 0x01;
	}
	assert_true(pr.ncopies >= 1);
	write_file(fx->path, img, len);

	env = fx->env = open_env(fx->path, 0);
	rc = mmkv_env_check(env, record_problem, &pr, &res);
	assert_rc(rc, MMKV_CORRUPTED);
	assert_true(pr.count >= 1);
	assert_true(res.problems >= 1);
	assert_true(pr.pgno_hit >= 1);
	mmkv_env_close(env);

	/* reads verify checksums with MMKV_VERIFY */
	env = fx->env = open_env(fx->path, MMKV_VERIFY);
	txn = txn_read(env);
	{
		mmkv_val k = sval("key01234"), v;
		assert_rc(mmkv_get(txn, dbi_ok(txn, NULL, 0), &k, &v), MMKV_CORRUPTED);
	}
	mmkv_txn_abort(txn);
	free(img);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest tests[] = {
		T(test_foreign_files),
		T(test_meta_fallback),
		T(test_check_reports_leaf_flip),
		T(test_damaged_variants),
	};
	const char *s = getenv("MMKV_CORRUPT_VARIANTS");

	watchdog(1200);
	seed = test_seed("test_corrupt");
	if (s && *s)
		nvariants = (unsigned int)strtoul(s, NULL, 0);
	return RUN_BOTH_MODES("corrupt", tests) ? 1 : 0;
}
