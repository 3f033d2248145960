/*
 * mkdb.c - build a database for tests/test_tools.sh, and keep it busy.
 *
 * Usage: mkdb PATH N            create PATH holding known contents
 *        mkdb -w SECONDS PATH N rewrite values of PATH for SECONDS
 *        mkdb -r SECONDS PATH   hold a read snapshot of PATH for SECONDS
 *
 * Contents (one write transaction, so that no stale copy of any page is left
 * in the file: the marker below then occurs exactly once):
 *   default database  N keys "key-%08d"; every tenth value is 3 pages long
 *                     (an overflow run), the others 40 bytes; the value of
 *                     key-00000001 is MARKER, which the test finds with grep
 *                     to damage the page holding it;
 *   "alpha"           N / 2 keys;
 *   "beta"            3 keys.
 *
 * -w replaces values (some with overflow runs) in many small commits, so that
 * the file accumulates free pages while copies are taken; the number of keys
 * never changes. -r prints "reading TXNID" once its snapshot is held, so
 * that the test knows when to look at the reader table.
 *
 * Exits 0 on success, 1 with a message on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mmkv.h>

#define MARKER "<<mkdb-marker>>!" /* 16 bytes, found nowhere else */

static const char *db_path;

static int fail(const char *what, int rc)
{
	fprintf(stderr, "mkdb: %s: %s: %s\n", db_path, what, mmkv_strerror(rc));
	return 1;
}

static mmkv_val key_of(unsigned long i, char buf[16])
{
	mmkv_val k = { (size_t)snprintf(buf, 16, "key-%08lu", i), buf };
	return k;
}

/* A value of len bytes of one letter, chosen by seed: never the marker. */
static mmkv_val filler(char *buf, size_t len, unsigned long seed)
{
	mmkv_val v = { len, buf };

	memset(buf, 'a' + (int)(seed % 26), len);
	return v;
}

static int create(mmkv_env *env, unsigned long n, size_t big)
{
	mmkv_txn *txn;
	mmkv_dbi main_db, alpha, beta;
	char kbuf[16], *vbuf = malloc(big);
	int rc;

	if (!vbuf)
		return fail("malloc", 12);
	if ((rc = mmkv_txn_begin(env, NULL, 0, &txn)) != 0) {
		free(vbuf);
		return fail("mmkv_txn_begin", rc);
	}
	rc = mmkv_dbi_open(txn, NULL, 0, &main_db);
	if (rc == 0)
		rc = mmkv_dbi_open(txn, "alpha", MMKV_CREATE, &alpha);
	if (rc == 0)
		rc = mmkv_dbi_open(txn, "beta", MMKV_CREATE, &beta);
	for (unsigned long i = 0; rc == 0 && i < n; i++) {
		mmkv_val k = key_of(i, kbuf);
		mmkv_val v = filler(vbuf, i % 10 == 0 ? big : 40, i);
		mmkv_val marker = { 16, MARKER };

		rc = mmkv_put(txn, main_db, &k, i == 1 ? &marker : &v, 0);
		if (rc == 0 && i < n / 2)
			rc = mmkv_put(txn, alpha, &k, &v, 0);
		if (rc == 0 && i < 3)
			rc = mmkv_put(txn, beta, &k, &v, 0);
	}
	free(vbuf);
	if (rc) {
		mmkv_txn_abort(txn);
		return fail("filling", rc);
	}
	if ((rc = mmkv_txn_commit(txn)) != 0)
		return fail("mmkv_txn_commit", rc);
	return 0;
}

static int rewrite(mmkv_env *env, unsigned long n, size_t big, double seconds)
{
	struct timespec start, now, pause = { 0, 2000000 };
	unsigned long r = 88172645463325252ul, commits = 0;
	char kbuf[16], *vbuf = malloc(big);
	int rc = 0;

	if (!vbuf)
		return fail("malloc", 12);
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		mmkv_txn *txn;
		mmkv_dbi dbi;

		if ((rc = mmkv_txn_begin(env, NULL, 0, &txn)) != 0)
			break;
		rc = mmkv_dbi_open(txn, NULL, 0, &dbi);
		for (int j = 0; rc == 0 && j < 20; j++) {
			r ^= r << 13, r ^= r >> 7, r ^= r << 17; /* xorshift64 */
			unsigned long i = 2 + r % (n - 2);   /* keys 0, 1 keep their values */
			mmkv_val k = key_of(i, kbuf);
			mmkv_val v = filler(vbuf, r % 4 == 0 ? big : 40 + r % 64, r >> 8);

			rc = mmkv_put(txn, dbi, &k, &v, 0);
		}
		if (rc) {
			mmkv_txn_abort(txn);
			break;
		}
		if ((rc = mmkv_txn_commit(txn)) != 0)
			break;
		commits++;
		nanosleep(&pause, NULL); /* leave the writer lock free now and then */
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 <
	         seconds);
	free(vbuf);
	if (rc)
		return fail("rewriting", rc);
	printf("mkdb: %lu commits\n", commits);
	return 0;
}

static int hold_snapshot(mmkv_env *env, double seconds)
{
	struct timespec pause = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
	mmkv_txn *txn;
	int rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);

	if (rc)
		return fail("mmkv_txn_begin", rc);
	printf("reading %llu\n", (unsigned long long)mmkv_txn_id(txn));
	fflush(stdout);
	nanosleep(&pause, NULL);
	mmkv_txn_abort(txn);
	return 0;
}

int main(int argc, char **argv)
{
	double seconds = 0;
	unsigned long n = 0;
	int mode = 0, opt, rc;
	mmkv_env *env;

	while ((opt = getopt(argc, argv, "w:r:")) != -1) {
		if (opt != 'w' && opt != 'r')
			goto usage;
		mode = opt;
		seconds = atof(optarg);
	}
	if (argc - optind != (mode == 'r' ? 1 : 2))
		goto usage;
	db_path = argv[optind];
	if (mode != 'r' && (n = strtoul(argv[optind + 1], NULL, 10)) < 3)
		goto usage;

	if ((rc = mmkv_env_create(&env)) != 0)
		return fail("mmkv_env_create", rc);
	if ((rc = mmkv_env_set_maxdbs(env, 4)) != 0 ||
	    (rc = mmkv_env_open(env, db_path, mode == 'r' ? MMKV_RDONLY : 0, 0644)) != 0) {
		mmkv_env_close(env);
		return fail("mmkv_env_open", rc);
	}
	mmkv_envinfo info;
	if ((rc = mmkv_env_info(env, &info)) != 0) {
		mmkv_env_close(env);
		return fail("mmkv_env_info", rc);
	}
	size_t big = 3 * (size_t)info.page_size; /* an overflow run of 3 or 4 pages */
	if (mode == 0)
		rc = create(env, n, big);
	else if (mode == 'w')
		rc = rewrite(env, n, big, seconds);
	else
		rc = hold_snapshot(env, seconds);
	mmkv_env_close(env);
	return rc;

usage:
	fprintf(stderr, "usage: mkdb PATH N | mkdb -w SECONDS PATH N | mkdb -r SECONDS PATH\n");
	return 1;
}
