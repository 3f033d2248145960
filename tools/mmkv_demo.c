/*
 * mmkv_demo.c - one database shared by several processes: a writer commits
 * while readers check, from outside the library, that every snapshot they get
 * is whole.
 *
 * The parent creates DIR/demo.mmkv holding ACCOUNTS accounts of START each and
 * a generation counter at 0, then forks one writer and READERS readers. The
 * writer makes COMMITS transactions, each moving an amount from one account
 * to another and adding 1 to the generation. Each reader takes read snapshots
 * until it sees the last generation, and counts a violation whenever the
 * accounts do not add up to ACCOUNTS * START (it saw part of a commit) or the
 * generation is lower than in its previous snapshot (it went back in time).
 *
 * Each process opens its own environment: one must never be used across
 * fork(). The parent exits 0 when every child did and no reader saw a
 * violation.
 *
 * Usage: mmkv_demo DIR   (`make demo` runs it in a temporary directory)
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mmkv.h>

enum { ACCOUNTS = 16, START = 1000, COMMITS = 200, READERS = 3 };

static const char *db_path;
static char who[32];        /* this process's name in messages */
static const char *failed;  /* the call that failed, for the message */
static mmkv_val generation_key = { 10, "generation" };

/* Run an mmkv call; on failure remember which and go to the label "out". */
#define TRY(call)                              \
	do {                                   \
		if ((rc = (call)) != 0) {      \
			failed = #call;        \
			goto out;              \
		}                              \
	} while (0)

static int report(int rc)
{
	fprintf(stderr, "%s: %s: %s\n", who, failed, mmkv_strerror(rc));
	return rc;
}

static mmkv_val account(int i, char buf[32])
{
	mmkv_val key = { (size_t)snprintf(buf, 32, "account-%02d", i), buf };
	return key;
}

static int get_u64(mmkv_txn *txn, mmkv_dbi dbi, mmkv_val key, uint64_t *out)
{
	mmkv_val val;
	int rc = mmkv_get(txn, dbi, &key, &val);

	if (rc == 0 && val.size != sizeof(*out))
		rc = MMKV_CORRUPTED; /* this program only ever stores 8-byte values */
	if (rc == 0)
		memcpy(out, val.data, sizeof(*out));
	return rc;
}

static int put_u64(mmkv_txn *txn, mmkv_dbi dbi, mmkv_val key, uint64_t value)
{
	mmkv_val val = { sizeof(value), &value };

	return mmkv_put(txn, dbi, &key, &val, 0);
}

/* One write transaction. With a < 0 it sets every account to START and the
 * generation to 0; otherwise it moves part of account a's balance to account
 * b and adds 1 to the generation. */
static int commit(mmkv_env *env, int a, int b, uint64_t r)
{
	char a_buf[32], b_buf[32];
	uint64_t a_bal, b_bal, gen, amount;
	mmkv_txn *txn = NULL;
	mmkv_dbi dbi;
	int rc;

	TRY(mmkv_txn_begin(env, NULL, 0, &txn));
	TRY(mmkv_dbi_open(txn, NULL, 0, &dbi));
	if (a < 0) {
		for (int i = 0; i < ACCOUNTS; i++)
			TRY(put_u64(txn, dbi, account(i, a_buf), START));
		TRY(put_u64(txn, dbi, generation_key, 0));
	} else {
		TRY(get_u64(txn, dbi, account(a, a_buf), &a_bal));
		TRY(get_u64(txn, dbi, account(b, b_buf), &b_bal));
		TRY(get_u64(txn, dbi, generation_key, &gen));
		amount = r % (a_bal + 1);
		TRY(put_u64(txn, dbi, account(a, a_buf), a_bal - amount));
		TRY(put_u64(txn, dbi, account(b, b_buf), b_bal + amount));
		TRY(put_u64(txn, dbi, generation_key, gen + 1));
	}
	failed = "mmkv_txn_commit(txn)";
	rc = mmkv_txn_commit(txn); /* frees txn, whether it fails or not */
	txn = NULL;
out:
	mmkv_txn_abort(txn);
	return rc;
}

/* One read snapshot: the sum of the accounts and the generation. */
static int snapshot(mmkv_env *env, uint64_t *total, uint64_t *gen)
{
	char buf[32];
	uint64_t balance;
	mmkv_txn *txn = NULL;
	mmkv_dbi dbi;
	int rc;

	*total = 0;
	TRY(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn));
	TRY(mmkv_dbi_open(txn, NULL, 0, &dbi));
	for (int i = 0; i < ACCOUNTS; i++) {
		TRY(get_u64(txn, dbi, account(i, buf), &balance));
		*total += balance;
	}
	TRY(get_u64(txn, dbi, generation_key, gen));
out:
	mmkv_txn_abort(txn); /* a read transaction has nothing to commit */
	return rc;
}

static int run_writer(mmkv_env *env)
{
	struct timespec pause = { 0, 1000000 };
	uint64_t r = 0x9e3779b97f4a7c15u;
	int rc, a, b;

	for (int i = 0; i < COMMITS; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17; /* xorshift64 */
		a = (int)(r % ACCOUNTS);
		b = (a + 1 + (int)(r / ACCOUNTS % (ACCOUNTS - 1))) % ACCOUNTS; /* b != a */
		if ((rc = commit(env, a, b, r >> 32)) != 0)
			return report(rc);
		nanosleep(&pause, NULL); /* so that readers catch many generations */
	}
	printf("writer:   %d commits made, generation 0..%d\n", COMMITS, COMMITS);
	return 0;
}

static int run_reader(mmkv_env *env)
{
	uint64_t total, gen, first = 0, last = 0;
	unsigned long snapshots = 0, generations = 0, violations = 0;
	int rc;

	do {
		if ((rc = snapshot(env, &total, &gen)) != 0)
			return report(rc);
		if (snapshots == 0)
			first = last = gen;
		if (total != (uint64_t)ACCOUNTS * START || gen < last)
			violations++;
		if (snapshots++ == 0 || gen != last)
			generations++;
		last = gen;
	} while (gen < COMMITS);
	printf("%s: %lu snapshots read, %lu generations seen (%" PRIu64 "..%" PRIu64
	       "), violations = %lu\n", who, snapshots, generations, first, last, violations);
	return violations != 0;
}

/* Open the database, play this process's part (id 0: the creator, -1: the
 * writer, n > 0: reader n), close it. Returns 0 on success. */
static int run(int id)
{
	mmkv_env *env = NULL;
	int rc;

	if (id > 0)
		snprintf(who, sizeof(who), "reader %d", id);
	else
		snprintf(who, sizeof(who), id == 0 ? "parent" : "writer");
	TRY(mmkv_env_create(&env));
	TRY(mmkv_env_open(env, db_path, 0, 0644));
	if (id > 0)
		rc = run_reader(env); /* these two report their own failures */
	else if (id < 0)
		rc = run_writer(env);
	else if ((rc = commit(env, -1, 0, 0)) != 0)
		report(rc);
	mmkv_env_close(env);
	return rc;
out:
	report(rc);
	mmkv_env_close(env);
	return rc;
}

static pid_t spawn(int id)
{
	pid_t pid;

	fflush(stdout); /* else the child would print the parent's buffer again */
	pid = fork();
	if (pid == 0)
		exit(run(id) != 0);
	if (pid < 0)
		perror("fork");
	return pid;
}

static int child_ok(pid_t pid)
{
	int status;

	if (pid < 0)
		return 0;
	if (waitpid(pid, &status, 0) < 0) {
		perror("waitpid");
		return 0;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	char path[4096];
	pid_t writer, readers[READERS];
	int ok = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: mmkv_demo DIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/demo.mmkv", argv[1]);
	db_path = path;

	/* The parent closes its environment before forking: the children open
	 * their own. */
	if (run(0) != 0)
		return 1;
	printf("parent:   created %s: %d accounts of %d, generation 0\n", path, ACCOUNTS, START);

	for (int i = 0; i < READERS; i++)
		readers[i] = spawn(i + 1);
	writer = spawn(-1);

	if (!child_ok(writer)) {
		ok = 0;
		/* the readers wait for the last generation, which will never come */
		for (int i = 0; i < READERS; i++)
			if (readers[i] > 0)
				kill(readers[i], SIGTERM);
	}
	for (int i = 0; i < READERS; i++)
		if (!child_ok(readers[i]))
			ok = 0;

	printf("parent:   1 writer, %d readers: %s\n", READERS,
	       ok ? "every snapshot was consistent" : "FAILED");
	return ok ? 0 : 1;
}
