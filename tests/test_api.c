/*
 * test_api.c - the public API function by function, through <mmkv.h> only.
 *
 * Covers mmkv_version and mmkv_strerror (every code, errno values); the
 * environment: create/close, every option setter (valid and invalid values,
 * EINVAL after open), page sizes 4096..65536, open errors (NULL, bad flags,
 * twice, missing with MMKV_RDONLY, directory, symlink, FIFO, hard link, lock
 * file symlink, the other write mode while open), file modes, read-only
 * environments, env_info and env_stat fields, env_sync, the map size limit
 * (MMKV_MAP_FULL keeps the previous contents; a poisoned transaction returns
 * MMKV_BAD_TXN) and MMKV_READERS_FULL; transactions: begin errors (parent ->
 * ENOTSUP, write on a read-only env -> EACCES), commit/abort/reopen,
 * txn ids, reset/renew, several read snapshots in one thread; and key/value
 * calls: argument errors, key size limits, EACCES in read transactions,
 * NOOVERWRITE, APPEND, RESERVE, zero-length values, maximum-size keys and
 * overflow values from just over the inline limit to several MiB.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmkv.h"
#include "util.h"

#define FX(state) ((test_fixture *)*(state))

/* Read a whole file into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *len)
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

/* A small database at path: keys k000..k099 -> v000..v099. */
static void make_small_db(const char *path)
{
	mmkv_env *env = open_env(path, 0);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	char k[16], v[16];

	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "k%03d", i);
		snprintf(v, sizeof(v), "v%03d", i);
		put_str(txn, dbi, k, v);
	}
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	mmkv_env_close(env);
}

/* ------------------------------------------------------ version, errors */

static void test_version(void **state)
{
	int major = -1, minor = -1, patch = -1;
	const char *s;

	(void)state;
	s = mmkv_version(&major, &minor, &patch);
	assert_non_null(s);
	assert_non_null(strstr(s, MMKV_VERSION_STRING));
	assert_int_equal(major, MMKV_VERSION_MAJOR);
	assert_int_equal(minor, MMKV_VERSION_MINOR);
	assert_int_equal(patch, MMKV_VERSION_PATCH);
	assert_string_equal(mmkv_version(NULL, NULL, NULL), s);
}

static void test_strerror(void **state)
{
	static const struct {
		int code;
		const char *msg;
	} codes[] = {
#define CODE_(name, value, msg) { MMKV_##name, msg },
		MMKV_ERRORS(CODE_)
#undef CODE_
	};
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	static const int errnos[] = { EINVAL, ENOMEM, EIO, ENOSPC, EACCES, ENOENT, ENOTSUP, EAGAIN };
	static const int unknown[] = { -1, -31000, -31099, -30999, INT32_MIN };

	(void)state;
	assert_true(n >= 14);
	assert_non_null(mmkv_strerror(0));
	for (size_t i = 0; i < n; i++) {
		const char *s = mmkv_strerror(codes[i].code);

		assert_true(codes[i].code < 0);
		assert_non_null(s);
		/* the message of the list, so every code is named */
		assert_non_null(strstr(s, codes[i].msg));
		for (size_t j = 0; j < i; j++) {
			assert_int_not_equal(codes[i].code, codes[j].code);
			assert_string_not_equal(s, mmkv_strerror(codes[j].code));
		}
	}
	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
		const char *s = mmkv_strerror(errnos[i]);

		assert_non_null(s);
		assert_non_null(strstr(s, strerror(errnos[i])));
	}
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		const char *s = mmkv_strerror(unknown[i]);

		assert_non_null(s);
		assert_true(s[0] != '\0');
		for (size_t j = 0; j < n; j++)
			assert_string_not_equal(s, mmkv_strerror(codes[j].code));
	}
	assert_true(is_defined_rc(MMKV_BAD_FILE) && is_defined_rc(EIO) && !is_defined_rc(-1));
}

/* ----------------------------------------------------------- environment */

static void test_env_create_close(void **state)
{
	mmkv_env *env = NULL;

	(void)state;
	assert_rc(mmkv_env_create(NULL), EINVAL);
	mmkv_env_close(NULL);
	assert_ok(mmkv_env_create(&env));
	assert_non_null(env);
	assert_int_equal(mmkv_env_get_maxkeysize(env), 0);
	mmkv_env_close(env); /* never opened */
}

static void test_env_options(void **state)
{
	test_fixture *fx = FX(state);
	static const unsigned int bad_pagesizes[] = { 1000, 2048, 3000, 4095, 4097, 6144, 12288, 131072,
		                                      1u << 31 };
	mmkv_env *env;

	assert_rc(mmkv_env_set_maxreaders(NULL, 10), EINVAL);
	assert_rc(mmkv_env_set_maxdbs(NULL, 10), EINVAL);
	assert_rc(mmkv_env_set_mapsize(NULL, 1 << 20), EINVAL);
	assert_rc(mmkv_env_set_pagesize(NULL, 4096), EINVAL);
	assert_rc(mmkv_env_set_txn_memory(NULL, 1 << 20), EINVAL);

	env = fx->env = env_new();
	assert_rc(mmkv_env_set_maxreaders(env, 0), EINVAL);
	for (size_t i = 0; i < sizeof(bad_pagesizes) / sizeof(bad_pagesizes[0]); i++)
		assert_rc(mmkv_env_set_pagesize(env, bad_pagesizes[i]), EINVAL);
	for (unsigned int ps = 4096; ps <= 65536; ps *= 2)
		assert_ok(mmkv_env_set_pagesize(env, ps));
	assert_ok(mmkv_env_set_pagesize(env, 8192));
	assert_ok(mmkv_env_set_maxreaders(env, 50));
	assert_ok(mmkv_env_set_maxdbs(env, 40));
	assert_ok(mmkv_env_set_mapsize(env, 64ull << 20));
	assert_ok(mmkv_env_set_txn_memory(env, 8ull << 20));
	env_open_ok(env, fx->path, 0);

	/* options are for before open only */
	assert_rc(mmkv_env_set_maxreaders(env, 60), EINVAL);
	assert_rc(mmkv_env_set_maxdbs(env, 10), EINVAL);
	assert_rc(mmkv_env_set_mapsize(env, 128ull << 20), EINVAL);
	assert_rc(mmkv_env_set_pagesize(env, 4096), EINVAL);
	assert_rc(mmkv_env_set_txn_memory(env, 1ull << 20), EINVAL);

	{
		mmkv_envinfo info;
		assert_ok(mmkv_env_info(env, &info));
		assert_int_equal(info.page_size, 8192);
		assert_int_equal(info.max_readers, 50);
		assert_int_equal(info.map_size, 64ull << 20);
	}
	assert_true(mmkv_env_get_maxkeysize(env) >= 511);
	check_env(env);
}

static void test_env_open_errors(void **state)
{
	test_fixture *fx = FX(state);
	char p[PATH_MAX], q[PATH_MAX];
	mmkv_env *env = fx->env = env_new();

	assert_rc(mmkv_env_open(NULL, fx->path, test_env_flags, 0644), EINVAL);
	assert_rc(mmkv_env_open(env, NULL, test_env_flags, 0644), EINVAL);
	assert_rc(mmkv_env_open(env, fx->path, test_env_flags | 0x40000000u, 0644), EINVAL);
	assert_rc(mmkv_env_open(env, fx->path, test_env_flags | MMKV_CREATE, 0644), EINVAL);
	assert_rc(mmkv_env_open(env, fx->path, test_env_flags | MMKV_NOOVERWRITE, 0644), EINVAL);
	/* nothing was created by the failed calls */
	assert_int_equal(access(fx->path, F_OK), -1);

	/* missing file with MMKV_RDONLY; the handle may be opened again */
	assert_rc(mmkv_env_open(env, fx->path, env_flags(MMKV_RDONLY), 0644), ENOENT);
	assert_int_equal(access(fx->path, F_OK), -1);

	/* a directory */
	test_dir_file(&fx->dir, "adir", p, sizeof(p));
	assert_int_equal(mkdir(p, 0755), 0);
	assert_rc(mmkv_env_open(env, p, test_env_flags, 0644), MMKV_BAD_FILE);

	/* a FIFO: refused, never opened for blocking I/O */
	test_dir_file(&fx->dir, "afifo", p, sizeof(p));
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_rc(mmkv_env_open(env, p, test_env_flags, 0644), MMKV_BAD_FILE);

	/* a symlink to a good database, and a dangling one */
	test_dir_file(&fx->dir, "real.mmkv", q, sizeof(q));
	make_small_db(q);
	test_dir_file(&fx->dir, "link.mmkv", p, sizeof(p));
	assert_int_equal(symlink(q, p), 0);
	assert_rc(mmkv_env_open(env, p, test_env_flags, 0644), MMKV_BAD_FILE);
	test_dir_file(&fx->dir, "dangling.mmkv", p, sizeof(p));
	assert_int_equal(symlink("/nonexistent/file.mmkv", p), 0);
	assert_rc(mmkv_env_open(env, p, test_env_flags, 0644), MMKV_BAD_FILE);

	/* a hard link */
	test_dir_file(&fx->dir, "hard.mmkv", p, sizeof(p));
	assert_int_equal(link(q, p), 0);
	assert_rc(mmkv_env_open(env, p, test_env_flags, 0644), MMKV_BAD_FILE);
	assert_int_equal(unlink(p), 0);

	/* the lock file as a symlink */
	{
		char lockp[PATH_MAX + 8], other[PATH_MAX];

		snprintf(lockp, sizeof(lockp), "%s-lock", q);
		unlink(lockp);
		test_dir_file(&fx->dir, "elsewhere", other, sizeof(other));
		assert_int_equal(symlink(other, lockp), 0);
		assert_rc(mmkv_env_open(env, q, test_env_flags, 0644), MMKV_BAD_FILE);
		assert_int_equal(access(other, F_OK), -1); /* nothing written through the link */
		assert_int_equal(unlink(lockp), 0);
		/* a directory where the lock file should be */
		assert_int_equal(mkdir(lockp, 0755), 0);
		assert_rc(mmkv_env_open(env, q, test_env_flags, 0644), MMKV_BAD_FILE);
		assert_int_equal(rmdir(lockp), 0);
	}

	/* after all those failures the same handle opens fine */
	env_open_ok(env, q, 0);
	{
		mmkv_txn *txn = txn_read(env);
		expect_str(txn, dbi_ok(txn, NULL, 0), "k042", "v042");
		mmkv_txn_abort(txn);
	}
	/* opened twice */
	assert_rc(mmkv_env_open(env, fx->path, test_env_flags, 0644), EINVAL);
	check_env(env);
}

static void test_env_open_mode(void **state)
{
	test_fixture *fx = FX(state);
	char lockp[PATH_MAX + 8], p[PATH_MAX];
	struct stat st;
	mode_t old = umask(022);
	mmkv_env *env;

	env = fx->env = env_new();
	assert_ok(mmkv_env_open(env, fx->path, test_env_flags, 0600));
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(S_ISREG(st.st_mode));
	snprintf(lockp, sizeof(lockp), "%s-lock", fx->path);
	assert_int_equal(stat(lockp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	check_env(env);
	mmkv_env_close(env);

	/* mode 0 means 0644 */
	test_dir_file(&fx->dir, "zero.mmkv", p, sizeof(p));
	env = fx->env = env_new();
	assert_ok(mmkv_env_open(env, p, test_env_flags, 0));
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	check_env(env);
	umask(old);
}

/* The other write mode while the database is open elsewhere. */
static void test_env_write_mode_clash(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *a = fx->env = open_env(fx->path, 0);
	mmkv_env *b = env_new();
	mmkv_txn *txn;

	assert_rc(mmkv_env_open(b, fx->path, test_env_flags ^ MMKV_WRITEMAP, 0644), MMKV_INCOMPATIBLE);
	/* the same mode is fine, and both handles see each other's commits */
	env_open_ok(b, fx->path, 0);
	txn = txn_write(a);
	put_str(txn, dbi_ok(txn, NULL, 0), "from-a", "1");
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(b);
	expect_str(txn, dbi_ok(txn, NULL, 0), "from-a", "1");
	mmkv_txn_abort(txn);
	txn = txn_write(b);
	put_str(txn, dbi_ok(txn, NULL, 0), "from-b", "2");
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(a);
	expect_str(txn, dbi_ok(txn, NULL, 0), "from-b", "2");
	mmkv_txn_abort(txn);
	check_env(b);
	mmkv_env_close(b);
	mmkv_env_close(a);
	fx->env = NULL;

	/* once nobody has it open, the other mode may open it */
	b = fx->env = env_new();
	assert_ok(mmkv_env_open(b, fx->path, test_env_flags ^ MMKV_WRITEMAP, 0644));
	txn = txn_read(b);
	expect_str(txn, dbi_ok(txn, NULL, 0), "from-b", "2");
	mmkv_txn_abort(txn);
	check_env(b);
}

static void test_pagesizes(void **state)
{
	test_fixture *fx = FX(state);
	unsigned int prev_maxkey = 0;

	for (unsigned int ps = 4096; ps <= 65536; ps *= 2) {
		char p[PATH_MAX], name[32];
		mmkv_env *env;
		mmkv_txn *txn;
		mmkv_dbi dbi;
		mmkv_envinfo info;
		mmkv_stat st;
		unsigned int maxkey;
		unsigned char *key, *big;
		size_t bigsize = 3 * (size_t)ps + 17;

		snprintf(name, sizeof(name), "ps%u.mmkv", ps);
		test_dir_file(&fx->dir, name, p, sizeof(p));
		env = fx->env = env_new();
		assert_ok(mmkv_env_set_pagesize(env, ps));
		env_open_ok(env, p, 0);
		assert_ok(mmkv_env_info(env, &info));
		assert_int_equal(info.page_size, ps);
		maxkey = mmkv_env_get_maxkeysize(env);
		assert_true(maxkey >= 511);
		assert_true(maxkey > prev_maxkey);
		assert_true(maxkey < ps);
		prev_maxkey = maxkey;

		key = malloc(maxkey + 1);
		big = malloc(bigsize);
		assert_non_null(key);
		assert_non_null(big);
		pattern_fill(ps, big, bigsize);
		txn = txn_write(env);
		dbi = dbi_ok(txn, NULL, 0);
		for (unsigned int i = 0; i < 2000; i++) {
			char k[16];
			snprintf(k, sizeof(k), "key%05u", i);
			put_ok(txn, dbi, k, strlen(k), big, 1 + i % 300);
		}
		memset(key, 'm', maxkey + 1);
		put_ok(txn, dbi, key, maxkey, big, bigsize);
		{
			mmkv_val k = mkval(key, maxkey + 1), v = mkval(big, 1);
			assert_rc(mmkv_put(txn, dbi, &k, &v, 0), MMKV_BAD_VALSIZE);
		}
		assert_ok(mmkv_txn_commit(txn));
		check_env(env);
		mmkv_env_close(env);

		/* reopened without asking: the file's page size */
		env = fx->env = open_env(p, 0);
		assert_ok(mmkv_env_info(env, &info));
		assert_int_equal(info.page_size, ps);
		assert_int_equal(mmkv_env_get_maxkeysize(env), maxkey);
		txn = txn_read(env);
		dbi = dbi_ok(txn, NULL, 0);
		expect_val(txn, dbi, key, maxkey, big, bigsize);
		expect_val(txn, dbi, "key01999", 8, big, 1 + 1999 % 300);
		assert_ok(mmkv_dbi_stat(txn, dbi, &st));
		assert_int_equal(st.page_size, ps);
		assert_int_equal(st.entries, 2001);
		assert_true(st.overflow_pages >= 4);
		mmkv_txn_abort(txn);
		check_env(env);
		mmkv_env_close(env);

		/* asking for another page size than the file's: the file keeps its own */
		env = fx->env = env_new();
		assert_ok(mmkv_env_set_pagesize(env, ps == 4096 ? 8192 : 4096));
		env_open_ok(env, p, 0);
		assert_ok(mmkv_env_info(env, &info));
		assert_int_equal(info.page_size, ps);
		assert_int_equal(mmkv_env_get_maxkeysize(env), maxkey);
		txn = txn_read(env);
		dbi = dbi_ok(txn, NULL, 0);
		expect_val(txn, dbi, key, maxkey, big, bigsize);
		assert_ok(mmkv_dbi_stat(txn, dbi, &st));
		assert_int_equal(st.page_size, ps);
		mmkv_txn_abort(txn);
		mmkv_env_close(env);
		fx->env = NULL;
		free(key);
		free(big);
	}
}

static void test_env_info_stat(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env;
	mmkv_envinfo info, info2;
	mmkv_stat st;
	mmkv_txn *txn, *r1, *r2;
	mmkv_dbi dbi, named;
	uint64_t last, wid, size0;
	unsigned char *buf;
	char p[PATH_MAX];
	struct stat fst;

	env = fx->env = env_new();
	assert_rc(mmkv_env_info(env, &info), EINVAL); /* not open */
	assert_rc(mmkv_env_stat(env, &st), EINVAL);
	assert_ok(mmkv_env_set_maxdbs(env, 4));
	env_open_ok(env, fx->path, 0);
	assert_rc(mmkv_env_info(NULL, &info), EINVAL);
	assert_rc(mmkv_env_info(env, NULL), EINVAL);
	assert_rc(mmkv_env_stat(NULL, &st), EINVAL);
	assert_rc(mmkv_env_stat(env, NULL), EINVAL);

	assert_ok(mmkv_env_info(env, &info));
	assert_int_equal(info.page_size, (uint32_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(info.max_readers, 126);
	assert_int_equal(info.map_size, 1ull << 40);
	assert_true(info.growth_step > 0);
	assert_true(info.file_size >= 2ull * info.page_size);
	assert_true(info.file_size <= info.map_size);
	assert_true(info.last_pgno >= 2);
	assert_true(info.last_pgno * info.page_size <= info.file_size);
	{
		static const uint8_t zero[16];
		assert_memory_not_equal(info.uuid, zero, 16);
	}
	last = info.last_txnid;
	size0 = info.file_size;

	assert_ok(mmkv_env_stat(env, &st));
	assert_int_equal(st.page_size, info.page_size);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.depth, 0);

	/* txnids: a write commits as its id, the newest snapshot has it */
	txn = txn_write(env);
	wid = mmkv_txn_id(txn);
	assert_true(wid > last);
	dbi = dbi_ok(txn, NULL, 0);
	named = dbi_ok(txn, "named", MMKV_CREATE);
	put_str(txn, dbi, "a", "1");
	put_str(txn, named, "x", "1");
	put_str(txn, named, "y", "2");
	assert_ok(mmkv_txn_commit(txn));
	assert_ok(mmkv_env_info(env, &info));
	assert_int_equal(info.last_txnid, wid);
	last = wid;

	/* an aborted write does not count */
	txn = txn_write(env);
	put_str(txn, dbi, "b", "2");
	mmkv_txn_abort(txn);
	assert_ok(mmkv_env_info(env, &info));
	assert_int_equal(info.last_txnid, last);

	/* env_stat: the default database only */
	assert_ok(mmkv_env_stat(env, &st));
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.depth, 1);

	/* readers in the table */
	r1 = txn_read(env);
	r2 = txn_read(env);
	assert_int_equal(mmkv_txn_id(r1), last);
	assert_ok(mmkv_env_info(env, &info));
	assert_true(info.num_readers >= 2);
	assert_true(info.num_readers <= info.max_readers);
	mmkv_txn_abort(r1);
	mmkv_txn_abort(r2);

	/* the file grows on its own, no map size set; txnids keep increasing */
	buf = malloc(1 << 20);
	assert_non_null(buf);
	for (int round = 0; round < 8; round++) {
		char k[16];
		txn = txn_write(env);
		snprintf(k, sizeof(k), "big%d", round);
		pattern_fill((uint64_t)round, buf, 1 << 20);
		put_ok(txn, dbi, k, strlen(k), buf, 1 << 20);
		wid = mmkv_txn_id(txn);
		assert_true(wid > last);
		assert_ok(mmkv_txn_commit(txn));
		assert_ok(mmkv_env_info(env, &info));
		assert_int_equal(info.last_txnid, wid);
		last = wid;
	}
	free(buf);
	assert_true(info.file_size >= 8ull << 20);
	assert_true(info.file_size > size0);
	assert_true(info.last_pgno * info.page_size <= info.file_size);
	assert_int_equal(stat(fx->path, &fst), 0);
	assert_true((uint64_t)fst.st_size >= info.last_pgno * info.page_size);

	/* deleting everything leaves free pages */
	txn = txn_write(env);
	assert_ok(mmkv_drop(txn, dbi, 0));
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_write(env);
	put_str(txn, dbi, "c", "3");
	last = mmkv_txn_id(txn);
	assert_ok(mmkv_txn_commit(txn));
	assert_ok(mmkv_env_info(env, &info));
	assert_int_equal(info.last_txnid, last);
	assert_true(info.free_pages > 0);
	assert_ok(mmkv_env_stat(env, &st));
	assert_int_equal(st.entries, 1);
	check_env(env);

	/* the uuid is fixed at creation and differs between databases */
	mmkv_env_close(env);
	env = fx->env = open_env(fx->path, 0);
	assert_ok(mmkv_env_info(env, &info2));
	assert_memory_equal(info.uuid, info2.uuid, 16);
	assert_int_equal(info2.last_txnid, last);
	mmkv_env_close(env);
	test_dir_file(&fx->dir, "other.mmkv", p, sizeof(p));
	env = fx->env = open_env(p, 0);
	assert_ok(mmkv_env_info(env, &info2));
	assert_memory_not_equal(info.uuid, info2.uuid, 16);
	check_env(env);
}

static void test_env_rdonly(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env;
	mmkv_txn *txn = NULL;
	mmkv_dbi dbi;
	unsigned char *before, *after;
	size_t nbefore, nafter;

	make_small_db(fx->path);
	before = slurp(fx->path, &nbefore);
	env = fx->env = open_env(fx->path, MMKV_RDONLY);
	assert_rc(mmkv_txn_begin(env, NULL, 0, &txn), EACCES);
	assert_rc(mmkv_env_sync(env, 1), EACCES);
	txn = txn_read(env);
	dbi = dbi_ok(txn, NULL, 0);
	expect_str(txn, dbi, "k000", "v000");
	expect_str(txn, dbi, "k099", "v099");
	{
		mmkv_dbi d;
		assert_rc(mmkv_dbi_open(txn, "nope", MMKV_CREATE, &d), MMKV_NOTFOUND);
	}
	{
		mmkv_val k = sval("k001"), v = sval("x");
		assert_rc(mmkv_put(txn, dbi, &k, &v, 0), EACCES);
	}
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);
	fx->env = NULL;
	after = slurp(fx->path, &nafter);
	assert_int_equal(nbefore, nafter);
	assert_memory_equal(before, after, nbefore);
	free(before);
	free(after);
}

static void test_env_sync(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, MMKV_NOSYNC);
	mmkv_txn *txn;

	assert_rc(mmkv_env_sync(NULL, 1), EINVAL);
	txn = txn_write(env);
	put_str(txn, dbi_ok(txn, NULL, 0), "nosync", "1");
	assert_ok(mmkv_txn_commit(txn));
	assert_ok(mmkv_env_sync(env, 0));
	assert_ok(mmkv_env_sync(env, 1));
	check_env(env);
	mmkv_env_close(env);

	env = fx->env = open_env(fx->path, MMKV_NOMETASYNC);
	txn = txn_write(env);
	put_str(txn, dbi_ok(txn, NULL, 0), "nometasync", "2");
	assert_ok(mmkv_txn_commit(txn));
	assert_ok(mmkv_env_sync(env, 1));
	mmkv_env_close(env);

	env = fx->env = open_env(fx->path, MMKV_VERIFY);
	txn = txn_read(env);
	expect_str(txn, dbi_ok(txn, NULL, 0), "nosync", "1");
	expect_str(txn, dbi_ok(txn, NULL, 0), "nometasync", "2");
	mmkv_txn_abort(txn);
	check_env(env);
}

/* A 1 MiB limit: the transaction that needs more fails, the rest stays. */
/* Regression: pages taken from the end of the file and freed again in the
 * same transaction are never written; the commit must still grow the file
 * over them, or its meta (npages past the end of the file) is rejected and
 * the commit is lost. */
static void test_commit_after_freed_tail_pages(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	size_t big = 4u << 20;
	unsigned char *buf = malloc(big);
	mmkv_txn *txn;
	mmkv_dbi dbi;
	uint64_t before;
	mmkv_val k;

	assert_non_null(buf);
	memset(buf, 7, big);
	/* Free pages to reuse: rewrite many keys a few times, so the final
	 * transaction consumes a free-tree record (and keeps its leftovers in
	 * that record instead of taking new pages at the end). */
	for (int round = 0; round < 4; round++) {
		txn = txn_write(env);
		dbi = dbi_ok(txn, NULL, 0);
		for (int i = 0; i < 2000; i++) {
			char kb[16], vb[32];
			snprintf(kb, sizeof(kb), "k%05d", i);
			snprintf(vb, sizeof(vb), "round %d value %d", round, i);
			put_str(txn, dbi, kb, vb);
		}
		put_str(txn, dbi, "small", "1");
		assert_ok(mmkv_txn_commit(txn));
	}
	txn = txn_read(env);
	before = mmkv_txn_id(txn);
	mmkv_txn_abort(txn);

	txn = txn_write(env);
	put_ok(txn, dbi, "big", 3, buf, big); /* a run at the end of the file */
	k = sval("big");
	assert_ok(mmkv_del(txn, dbi, &k, NULL)); /* its pages go back to the pool */
	put_str(txn, dbi, "small", "2");
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	assert_int_equal(mmkv_txn_id(txn), before + 1);
	expect_str(txn, dbi, "small", "2");
	mmkv_txn_abort(txn);
	check_env(env);
	mmkv_env_close(env);
	env = fx->env = open_env(fx->path, 0);
	txn = txn_read(env);
	expect_str(txn, dbi_ok(txn, NULL, 0), "small", "2");
	mmkv_txn_abort(txn);
	check_env(env);
	free(buf);
}

static void test_mapsize_full(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env;
	mmkv_txn *txn;
	mmkv_dbi dbi;
	mmkv_envinfo info;
	unsigned char *buf = malloc(16384);
	int rc = 0, i;

	assert_non_null(buf);
	env = fx->env = env_new();
	assert_ok(mmkv_env_set_mapsize(env, 1 << 20));
	env_open_ok(env, fx->path, 0);
	assert_ok(mmkv_env_info(env, &info));
	assert_int_equal(info.map_size, 1 << 20);

	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	for (i = 0; i < 100; i++) {
		char k[24];
		snprintf(k, sizeof(k), "small%03d", i);
		put_ok(txn, dbi, k, strlen(k), k, strlen(k));
	}
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_write(env);
	for (i = 0; i < 1024 && rc == 0; i++) {
		char k[16];
		mmkv_val key, val;
		snprintf(k, sizeof(k), "big%04d", i);
		pattern_fill((uint64_t)i, buf, 16384);
		key = sval(k);
		val = mkval(buf, 16384);
		rc = mmkv_put(txn, dbi, &key, &val, 0);
	}
	if (rc != 0) {
		/* failed inside the transaction: it is poisoned */
		mmkv_val key = sval("small000"), val = sval("x"), out;
		mmkv_cursor *cur;

		assert_rc(rc, MMKV_MAP_FULL);
		print_message("MMKV_MAP_FULL from put %d, transaction poisoned\n", i);
		assert_rc(mmkv_get(txn, dbi, &key, &out), MMKV_BAD_TXN);
		assert_rc(mmkv_put(txn, dbi, &key, &val, 0), MMKV_BAD_TXN);
		assert_rc(mmkv_del(txn, dbi, &key, NULL), MMKV_BAD_TXN);
		assert_rc(mmkv_cursor_open(txn, dbi, &cur), MMKV_BAD_TXN);
		assert_rc(mmkv_txn_commit(txn), MMKV_BAD_TXN);
	} else {
		print_message("MMKV_MAP_FULL from the commit\n");
		assert_rc(mmkv_txn_commit(txn), MMKV_MAP_FULL);
	}

	/* exactly the previous contents */
	txn = txn_read(env);
	assert_int_equal(db_entries(txn, dbi), 100);
	expect_str(txn, dbi, "small042", "small042");
	expect_missing(txn, dbi, "big0000", 7);
	mmkv_txn_abort(txn);
	check_env(env);

	/* and still writable within the limit */
	txn = txn_write(env);
	put_str(txn, dbi, "after", "full");
	assert_ok(mmkv_txn_commit(txn));
	mmkv_env_close(env);

	env = fx->env = open_env(fx->path, 0);
	txn = txn_read(env);
	dbi = dbi_ok(txn, NULL, 0);
	assert_int_equal(db_entries(txn, dbi), 101);
	expect_str(txn, dbi, "after", "full");
	mmkv_txn_abort(txn);
	assert_ok(mmkv_env_info(env, &info));
	assert_true(info.file_size <= 1 << 20);
	check_env(env);
	free(buf);
}

static void test_readers_full(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env;
	mmkv_txn *r[4], *extra = NULL, *w;

	env = fx->env = env_new();
	assert_ok(mmkv_env_set_maxreaders(env, 4));
	env_open_ok(env, fx->path, 0);
	for (int i = 0; i < 4; i++)
		r[i] = txn_read(env);
	assert_rc(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &extra), MMKV_READERS_FULL);
	/* the writer needs no reader slot */
	w = txn_write(env);
	put_str(w, dbi_ok(w, NULL, 0), "k", "v");
	assert_ok(mmkv_txn_commit(w));
	mmkv_txn_abort(r[2]);
	extra = txn_read(env);
	expect_str(extra, dbi_ok(extra, NULL, 0), "k", "v");
	/* a reset transaction keeps its slot */
	mmkv_txn_reset(extra);
	{
		mmkv_txn *t = NULL;
		assert_rc(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &t), MMKV_READERS_FULL);
	}
	assert_ok(mmkv_txn_renew(extra));
	mmkv_txn_abort(extra);
	for (int i = 0; i < 4; i++)
		if (i != 2)
			mmkv_txn_abort(r[i]);
	check_env(env);
}

/* --------------------------------------------------------- transactions */

static void test_txn_begin_errors(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = env_new();
	mmkv_txn *txn = NULL, *child = NULL;

	assert_rc(mmkv_txn_begin(env, NULL, 0, &txn), EINVAL); /* not open */
	env_open_ok(env, fx->path, 0);
	assert_rc(mmkv_txn_begin(NULL, NULL, 0, &txn), EINVAL);
	assert_rc(mmkv_txn_begin(env, NULL, 0, NULL), EINVAL);
	assert_rc(mmkv_txn_begin(env, NULL, MMKV_RDONLY, NULL), EINVAL);
	assert_rc(mmkv_txn_begin(env, NULL, 0x40000000u, &txn), EINVAL);
	assert_rc(mmkv_txn_begin(env, NULL, MMKV_RDONLY | 0x40000000u, &txn), EINVAL);

	/* nested transactions are not supported: an error, not a wait */
	txn = txn_write(env);
	assert_rc(mmkv_txn_begin(env, txn, 0, &child), ENOTSUP);
	assert_rc2(mmkv_txn_begin(env, txn, MMKV_RDONLY, &child), ENOTSUP, EINVAL);
	put_str(txn, dbi_ok(txn, NULL, 0), "k", "v");
	assert_ok(mmkv_txn_commit(txn));

	assert_rc(mmkv_txn_commit(NULL), EINVAL);
	assert_rc(mmkv_txn_renew(NULL), EINVAL);
	mmkv_txn_abort(NULL);
	mmkv_txn_reset(NULL);
	assert_int_equal(mmkv_txn_id(NULL), 0);
	check_env(env);
}

static void test_txn_commit_abort_reopen(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_txn *txn, *r;
	mmkv_dbi dbi;

	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	put_str(txn, dbi, "kept", "1");
	put_str(txn, dbi, "changed", "old");
	/* a write sees its own changes */
	expect_str(txn, dbi, "kept", "1");
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_write(env);
	put_str(txn, dbi, "discarded", "2");
	put_str(txn, dbi, "changed", "new");
	{
		mmkv_val k = sval("kept");
		assert_ok(mmkv_del(txn, dbi, &k, NULL));
	}
	expect_missing(txn, dbi, "kept", 4);
	expect_str(txn, dbi, "changed", "new");
	/* a reader meanwhile sees the committed state only */
	r = txn_read(env);
	expect_str(r, dbi, "changed", "old");
	expect_missing(r, dbi, "discarded", 9);
	mmkv_txn_abort(r);
	mmkv_txn_abort(txn);

	txn = txn_read(env);
	expect_str(txn, dbi, "kept", "1");
	expect_str(txn, dbi, "changed", "old");
	expect_missing(txn, dbi, "discarded", 9);
	/* committing a read transaction just ends it */
	assert_ok(mmkv_txn_commit(txn));

	/* an empty write transaction commits */
	txn = txn_write(env);
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	mmkv_env_close(env);

	env = fx->env = open_env(fx->path, 0);
	txn = txn_read(env);
	dbi = dbi_ok(txn, NULL, 0);
	expect_str(txn, dbi, "kept", "1");
	expect_str(txn, dbi, "changed", "old");
	expect_missing(txn, dbi, "discarded", 9);
	assert_int_equal(db_entries(txn, dbi), 2);
	mmkv_txn_abort(txn);
	check_env(env);
}

static void commit_value(mmkv_env *env, const char *k, const char *v)
{
	mmkv_txn *txn = txn_write(env);

	put_str(txn, dbi_ok(txn, NULL, 0), k, v);
	assert_ok(mmkv_txn_commit(txn));
}

static void test_txn_ids_snapshots(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_txn *r[5], *w;
	mmkv_dbi dbi;
	uint64_t ids[5];
	char v[16];

	/* five snapshots held at once in one thread, one per commit */
	for (int i = 0; i < 5; i++) {
		snprintf(v, sizeof(v), "%d", i);
		commit_value(env, "n", v);
		r[i] = txn_read(env);
		ids[i] = mmkv_txn_id(r[i]);
		if (i > 0)
			assert_true(ids[i] > ids[i - 1]);
	}
	w = txn_write(env);
	assert_true(mmkv_txn_id(w) > ids[4]);
	dbi = dbi_ok(w, NULL, 0);
	put_str(w, dbi, "n", "w");
	assert_ok(mmkv_txn_commit(w));
	for (int i = 0; i < 5; i++) {
		snprintf(v, sizeof(v), "%d", i);
		expect_str(r[i], dbi, "n", v);
		assert_int_equal(mmkv_txn_id(r[i]), ids[i]);
	}

	/* reset / renew moves a reader to the newest snapshot */
	mmkv_txn_reset(r[0]);
	assert_int_equal(mmkv_txn_id(r[0]), 0);
	{
		mmkv_val k = sval("n"), out;
		mmkv_cursor *cur = NULL;
		mmkv_stat st;
		assert_rc(mmkv_get(r[0], dbi, &k, &out), MMKV_BAD_TXN);
		assert_rc(mmkv_cursor_open(r[0], dbi, &cur), MMKV_BAD_TXN);
		assert_rc(mmkv_dbi_stat(r[0], dbi, &st), MMKV_BAD_TXN);
	}
	assert_ok(mmkv_txn_renew(r[0]));
	assert_true(mmkv_txn_id(r[0]) > ids[4]);
	expect_str(r[0], dbi, "n", "w");
	/* renew of a live read transaction */
	assert_rc(mmkv_txn_renew(r[1]), MMKV_BAD_TXN);
	expect_str(r[1], dbi, "n", "1");
	/* reset twice, then renew: sees a commit made while reset */
	mmkv_txn_reset(r[2]);
	mmkv_txn_reset(r[2]);
	commit_value(env, "n", "later");
	assert_ok(mmkv_txn_renew(r[2]));
	expect_str(r[2], dbi, "n", "later");
	expect_str(r[0], dbi, "n", "w");
	for (int i = 0; i < 5; i++)
		mmkv_txn_abort(r[i]);

	/* renew of a write transaction */
	w = txn_write(env);
	assert_rc(mmkv_txn_renew(w), MMKV_BAD_TXN);
	mmkv_txn_abort(w);
	/* a reset reader can be aborted without renewing */
	r[0] = txn_read(env);
	mmkv_txn_reset(r[0]);
	mmkv_txn_abort(r[0]);
	check_env(env);
}

/* ------------------------------------------------------------ key/value */

static void test_kv_arg_errors(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	unsigned int maxkey = mmkv_env_get_maxkeysize(env);
	unsigned char *longkey = calloc(1, maxkey + 2);
	mmkv_txn *txn, *r;
	mmkv_dbi dbi;
	mmkv_val k = sval("key"), v = sval("val"), out, empty = { 0, (void *)"" };
	mmkv_val toolong = mkval(longkey, maxkey + 1), maxk = mkval(longkey, maxkey);
	const mmkv_dbi bad = 12345;
	mmkv_cursor *cur;
	mmkv_stat st;
	unsigned int fl;

	assert_non_null(longkey);
	memset(longkey, 'L', maxkey + 1);
	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);

	assert_rc(mmkv_get(NULL, dbi, &k, &out), EINVAL);
	assert_rc(mmkv_get(txn, dbi, NULL, &out), EINVAL);
	assert_rc(mmkv_get(txn, dbi, &k, NULL), EINVAL);
	assert_rc(mmkv_put(NULL, dbi, &k, &v, 0), EINVAL);
	assert_rc(mmkv_put(txn, dbi, NULL, &v, 0), EINVAL);
	assert_rc(mmkv_put(txn, dbi, &k, NULL, 0), EINVAL);
	assert_rc(mmkv_del(NULL, dbi, &k, NULL), EINVAL);
	assert_rc(mmkv_del(txn, dbi, NULL, NULL), EINVAL);
	assert_rc(mmkv_put(txn, dbi, &k, &v, 0x10000000u), EINVAL);
	assert_rc(mmkv_put(txn, dbi, &k, &v, MMKV_CREATE), EINVAL);

	/* key sizes */
	assert_rc(mmkv_put(txn, dbi, &empty, &v, 0), MMKV_BAD_VALSIZE);
	assert_rc(mmkv_get(txn, dbi, &empty, &out), MMKV_BAD_VALSIZE);
	assert_rc(mmkv_del(txn, dbi, &empty, NULL), MMKV_BAD_VALSIZE);
	assert_rc(mmkv_put(txn, dbi, &toolong, &v, 0), MMKV_BAD_VALSIZE);
	assert_rc(mmkv_get(txn, dbi, &toolong, &out), MMKV_BAD_VALSIZE);
	assert_rc(mmkv_del(txn, dbi, &toolong, NULL), MMKV_BAD_VALSIZE);
	assert_ok(mmkv_put(txn, dbi, &maxk, &v, 0));
	/* a value of 4 GiB is one byte too many */
	{
		mmkv_val huge = { 1ull << 32, (void *)"tiny" };
		assert_rc(mmkv_put(txn, dbi, &k, &huge, 0), MMKV_BAD_VALSIZE);
	}

	/* not found is no failure of the transaction */
	assert_rc(mmkv_get(txn, dbi, &k, &out), MMKV_NOTFOUND);
	assert_rc(mmkv_del(txn, dbi, &k, NULL), MMKV_NOTFOUND);

	/* none of the above poisoned the transaction */
	assert_ok(mmkv_put(txn, dbi, &k, &v, 0));
	assert_ok(mmkv_txn_commit(txn));

	/* handles that name nothing (the transaction may be poisoned after) */
	txn = txn_write(env);
	assert_rc2(mmkv_get(txn, bad, &k, &out), MMKV_BAD_DBI, EINVAL);
	assert_rc2(mmkv_put(txn, bad, &k, &v, 0), MMKV_BAD_DBI, EINVAL);
	assert_rc2(mmkv_del(txn, bad, &k, NULL), MMKV_BAD_DBI, EINVAL);
	assert_rc2(mmkv_dbi_stat(txn, bad, &st), MMKV_BAD_DBI, EINVAL);
	assert_rc2(mmkv_dbi_flags(txn, bad, &fl), MMKV_BAD_DBI, EINVAL);
	assert_rc2(mmkv_cursor_open(txn, bad, &cur), MMKV_BAD_DBI, EINVAL);
	assert_rc2(mmkv_drop(txn, bad, 0), MMKV_BAD_DBI, EINVAL);
	mmkv_txn_abort(txn);

	/* writes in a read transaction */
	r = txn_read(env);
	assert_rc(mmkv_put(r, dbi, &k, &v, 0), EACCES);
	assert_rc(mmkv_del(r, dbi, &k, NULL), EACCES);
	assert_rc(mmkv_drop(r, dbi, 0), EACCES);
	assert_ok(mmkv_cursor_open(r, dbi, &cur));
	assert_ok(mmkv_cursor_get(cur, NULL, NULL, MMKV_FIRST));
	assert_rc(mmkv_cursor_put(cur, &k, &v, 0), EACCES);
	assert_rc(mmkv_cursor_del(cur, 0), EACCES);
	mmkv_cursor_close(cur);
	expect_str(r, dbi, "key", "val");
	expect_val(r, dbi, longkey, maxkey, "val", 3);
	assert_rc(mmkv_get(r, dbi, &toolong, &out), MMKV_BAD_VALSIZE);
	mmkv_txn_abort(r);
	check_env(env);
	free(longkey);
}

static void test_del(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	mmkv_val k = sval("k"), d = sval("ignored");

	put_str(txn, dbi, "k", "v1");
	assert_int_equal(db_entries(txn, dbi), 1);
	assert_ok(mmkv_del(txn, dbi, &k, &d)); /* data is ignored */
	assert_int_equal(db_entries(txn, dbi), 0);
	assert_rc(mmkv_del(txn, dbi, &k, NULL), MMKV_NOTFOUND);
	put_str(txn, dbi, "k", "v2");
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_write(env);
	expect_str(txn, dbi, "k", "v2");
	assert_ok(mmkv_del(txn, dbi, &k, NULL));
	expect_missing(txn, dbi, "k", 1);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	expect_missing(txn, dbi, "k", 1);
	assert_int_equal(db_entries(txn, dbi), 0);
	mmkv_txn_abort(txn);
	check_env(env);
}

static void test_put_noovewrite_append(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	mmkv_val k, v, out;
	char kb[16];

	/* NOOVERWRITE: KEYEXIST and the existing value in data */
	put_str(txn, dbi, "exists", "original");
	k = sval("exists");
	v = sval("replacement");
	assert_rc(mmkv_put(txn, dbi, &k, &v, MMKV_NOOVERWRITE), MMKV_KEYEXIST);
	assert_int_equal(v.size, 8);
	assert_memory_equal(v.data, "original", 8);
	expect_str(txn, dbi, "exists", "original");
	k = sval("fresh");
	v = sval("value");
	assert_ok(mmkv_put(txn, dbi, &k, &v, MMKV_NOOVERWRITE));
	expect_str(txn, dbi, "fresh", "value");
	assert_ok(mmkv_drop(txn, dbi, 0));

	/* APPEND: in order works, out of order or equal is KEYEXIST */
	for (int i = 0; i < 3000; i++) {
		snprintf(kb, sizeof(kb), "a%06d", i * 2);
		k = sval(kb);
		v = sval(kb);
		assert_ok(mmkv_put(txn, dbi, &k, &v, MMKV_APPEND));
	}
	k = sval("a000100");
	v = sval("x");
	assert_rc(mmkv_put(txn, dbi, &k, &v, MMKV_APPEND), MMKV_KEYEXIST);
	k = sval("a000001");
	assert_rc(mmkv_put(txn, dbi, &k, &v, MMKV_APPEND), MMKV_KEYEXIST);
	k = sval("a005998");
	assert_rc(mmkv_put(txn, dbi, &k, &v, MMKV_APPEND), MMKV_KEYEXIST);
	expect_str(txn, dbi, "a005998", "a005998");
	k = sval("b");
	assert_ok(mmkv_put(txn, dbi, &k, &v, MMKV_APPEND));
	/* a normal put in the middle of appended keys */
	put_str(txn, dbi, "a000001", "mid");
	assert_int_equal(db_entries(txn, dbi), 3002);
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	{
		mmkv_cursor *cur;
		int i = 0;
		assert_ok(mmkv_cursor_open(txn, dbi, &cur));
		while (mmkv_cursor_get(cur, &k, &out, MMKV_NEXT) == 0) {
			if (i == 1) {
				assert_int_equal(k.size, 7);
				assert_memory_equal(k.data, "a000001", 7);
			} else if (i == 3002 - 1) {
				assert_int_equal(k.size, 1);
				assert_memory_equal(k.data, "b", 1);
			} else {
				snprintf(kb, sizeof(kb), "a%06d", (i > 1 ? i - 1 : i) * 2);
				assert_int_equal(k.size, strlen(kb));
				assert_memory_equal(k.data, kb, k.size);
			}
			i++;
		}
		assert_int_equal(i, 3002);
		mmkv_cursor_close(cur);
	}
	mmkv_txn_abort(txn);
	check_env(env);
}

static void test_put_reserve(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_envinfo info;
	mmkv_txn *txn;
	mmkv_dbi dbi;
	size_t sizes[4];
	unsigned char *expect;

	assert_ok(mmkv_env_info(env, &info));
	sizes[0] = 1;
	sizes[1] = 100;
	sizes[2] = info.page_size * 3u + 5;
	sizes[3] = 1u << 20;
	expect = malloc(sizes[3]);
	assert_non_null(expect);

	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	for (int i = 0; i < 4; i++) {
		char kb[16];
		mmkv_val k, v = { sizes[i], NULL };
		snprintf(kb, sizeof(kb), "r%d", i);
		k = sval(kb);
		assert_ok(mmkv_put(txn, dbi, &k, &v, MMKV_RESERVE));
		assert_non_null(v.data);
		assert_int_equal(v.size, sizes[i]);
		pattern_fill((uint64_t)i, v.data, sizes[i]);
	}
	/* RESERVE over an existing value of another size */
	{
		mmkv_val k = sval("r1"), v = { 5000, NULL };
		assert_ok(mmkv_put(txn, dbi, &k, &v, MMKV_RESERVE));
		assert_non_null(v.data);
		pattern_fill(77, v.data, 5000);
		pattern_fill(77, expect, 5000);
		expect_val(txn, dbi, "r1", 2, expect, 5000);
	}
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	for (int i = 0; i < 4; i++) {
		char kb[16];
		size_t n = i == 1 ? 5000 : sizes[i];
		snprintf(kb, sizeof(kb), "r%d", i);
		pattern_fill(i == 1 ? 77 : (uint64_t)i, expect, n);
		expect_val(txn, dbi, kb, strlen(kb), expect, n);
	}
	mmkv_txn_abort(txn);
	check_env(env);
	free(expect);
}

static void test_zero_length_values(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	mmkv_txn *txn = txn_write(env);
	mmkv_dbi dbi = dbi_ok(txn, NULL, 0);
	mmkv_val k, v, out;
	char kb[16];

	for (int i = 0; i < 500; i++) {
		snprintf(kb, sizeof(kb), "z%04d", i);
		k = sval(kb);
		v.size = 0;
		v.data = i % 2 ? NULL : (void *)"";
		assert_ok(mmkv_put(txn, dbi, &k, &v, 0));
	}
	expect_val(txn, dbi, "z0007", 5, "", 0);
	/* empty -> non-empty -> empty */
	put_str(txn, dbi, "z0001", "now filled");
	expect_str(txn, dbi, "z0001", "now filled");
	put_ok(txn, dbi, "z0001", 5, "", 0);
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	assert_int_equal(db_entries(txn, dbi), 500);
	for (int i = 0; i < 500; i++) {
		snprintf(kb, sizeof(kb), "z%04d", i);
		k = sval(kb);
		out.size = 99;
		assert_ok(mmkv_get(txn, dbi, &k, &out));
		assert_int_equal(out.size, 0);
	}
	mmkv_txn_abort(txn);
	check_env(env);
}

static void test_max_size_keys(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	unsigned int maxkey = mmkv_env_get_maxkeysize(env);
	unsigned char *key = malloc(maxkey), *val = malloc(20000);
	mmkv_txn *txn;
	mmkv_dbi dbi;
	mmkv_cursor *cur;
	mmkv_val k, v;
	mmkv_stat st;
	int n = 0;

	assert_non_null(key);
	assert_non_null(val);
	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	/* enough maximum-size keys to split branch pages too; values inline and overflow */
	for (int i = 0; i < 400; i++) {
		memset(key, 'a' + i % 26, maxkey);
		/* the last 8 bytes: i in decimal digits, no NUL */
		for (int d = 7, x = i; d >= 0; d--, x /= 10)
			key[maxkey - 8 + d] = (unsigned char)('0' + x % 10);
		pattern_fill((uint64_t)i, val, 20000);
		put_ok(txn, dbi, key, maxkey, val, i % 5 == 0 ? 20000 : (size_t)(i % 700));
	}
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_int_equal(st.entries, 400);
	assert_true(st.depth >= 3);
	assert_ok(mmkv_cursor_open(txn, dbi, &cur));
	{
		unsigned char *prev = malloc(maxkey);
		size_t prevlen = 0;

		assert_non_null(prev);
		while (mmkv_cursor_get(cur, &k, &v, MMKV_NEXT) == 0) {
			int i;
			char digits[9];

			assert_int_equal(k.size, maxkey);
			/* exactly the 8 digits at the end of the key */
			memcpy(digits, (const char *)k.data + maxkey - 8, 8);
			digits[8] = '\0';
			i = atoi(digits);
			assert_true(i >= 0 && i < 400);
			assert_int_equal(((const unsigned char *)k.data)[0], 'a' + i % 26);
			assert_int_equal(v.size, i % 5 == 0 ? 20000 : i % 700);
			assert_true(pattern_equal((uint64_t)i, v.data, v.size));
			if (prevlen)
				assert_true(memcmp(prev, k.data, maxkey) < 0);
			memcpy(prev, k.data, maxkey);
			prevlen = maxkey;
			n++;
		}
		free(prev);
	}
	assert_int_equal(n, 400);
	mmkv_cursor_close(cur);
	mmkv_txn_abort(txn);
	check_env(env);
	free(key);
	free(val);
}

/* Values around the inline limit, one page, several pages and MiB. */
static void test_overflow_values(void **state)
{
	test_fixture *fx = FX(state);
	mmkv_env *env = fx->env = open_env(fx->path, 0);
	unsigned int maxkey = mmkv_env_get_maxkeysize(env);
	mmkv_envinfo info;
	mmkv_stat st;
	mmkv_txn *txn;
	mmkv_dbi dbi;
	size_t sizes[16], n = 0, ps, inl;
	unsigned char *buf;
	char kb[16];

	assert_ok(mmkv_env_info(env, &info));
	ps = info.page_size;
	/* the inline limit for a 4-byte key (lib/format.h: a leaf node of at
	 * most a quarter page; maxkeysize leaves room for an 8-byte reference) */
	inl = maxkey + 8 - 4;
	sizes[n++] = inl - 1;
	sizes[n++] = inl;
	sizes[n++] = inl + 1;
	sizes[n++] = ps - 32;
	sizes[n++] = ps - 1;
	sizes[n++] = ps;
	sizes[n++] = ps + 1;
	sizes[n++] = 2 * ps;
	sizes[n++] = 7 * ps + 3;
	sizes[n++] = 3u << 20;
	sizes[n++] = (5u << 20) + 1;
	buf = malloc(sizes[n - 1]);
	assert_non_null(buf);

	txn = txn_write(env);
	dbi = dbi_ok(txn, NULL, 0);
	for (size_t i = 0; i < n; i++) {
		snprintf(kb, sizeof(kb), "v%03zu", i);
		pattern_fill(i, buf, sizes[i]);
		put_ok(txn, dbi, kb, 4, buf, sizes[i]);
		expect_val(txn, dbi, kb, 4, buf, sizes[i]);
	}
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_true(st.overflow_pages >= ((3u << 20) + (5u << 20)) / ps);
	assert_ok(mmkv_txn_commit(txn));

	txn = txn_read(env);
	for (size_t i = 0; i < n; i++) {
		snprintf(kb, sizeof(kb), "v%03zu", i);
		pattern_fill(i, buf, sizes[i]);
		expect_val(txn, dbi, kb, 4, buf, sizes[i]);
	}
	mmkv_txn_abort(txn);
	check_env(env);

	/* large -> small -> large, and delete: no overflow pages left over */
	txn = txn_write(env);
	for (size_t i = 0; i < n; i++) {
		snprintf(kb, sizeof(kb), "v%03zu", i);
		put_ok(txn, dbi, kb, 4, "s", 1);
	}
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_int_equal(st.overflow_pages, 0);
	pattern_fill(99, buf, 4 * ps);
	put_ok(txn, dbi, "v000", 4, buf, 4 * ps);
	assert_ok(mmkv_txn_commit(txn));
	txn = txn_read(env);
	expect_val(txn, dbi, "v000", 4, buf, 4 * ps);
	expect_val(txn, dbi, "v010", 4, "s", 1);
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_true(st.overflow_pages >= 4);
	mmkv_txn_abort(txn);
	txn = txn_write(env);
	{
		mmkv_val k = sval("v000");
		assert_ok(mmkv_del(txn, dbi, &k, NULL));
	}
	assert_ok(mmkv_dbi_stat(txn, dbi, &st));
	assert_int_equal(st.overflow_pages, 0);
	assert_int_equal(st.entries, n - 1);
	assert_ok(mmkv_txn_commit(txn));
	check_env(env);
	free(buf);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_env_create_close),
	};
	const struct CMUnitTest tests[] = {
		T(test_env_options),
		T(test_env_open_errors),
		T(test_env_open_mode),
		T(test_env_write_mode_clash),
		T(test_pagesizes),
		T(test_env_info_stat),
		T(test_env_rdonly),
		T(test_env_sync),
		T(test_commit_after_freed_tail_pages),
		T(test_mapsize_full),
		T(test_readers_full),
		T(test_txn_begin_errors),
		T(test_txn_commit_abort_reopen),
		T(test_txn_ids_snapshots),
		T(test_kv_arg_errors),
		T(test_del),
		T(test_put_noovewrite_append),
		T(test_put_reserve),
		T(test_zero_length_values),
		T(test_max_size_keys),
		T(test_overflow_values),
	};
	int failed;

	watchdog(600);
	failed = cmocka_run_group_tests_name("api", once, NULL, NULL);
	failed += RUN_BOTH_MODES("api", tests);
	return failed ? 1 : 0;
}
