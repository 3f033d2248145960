/*
 * mmkv_stat.c - print statistics of a libmmkv database: its environment,
 * free pages, reader table and the trees of its databases, as "Name: value"
 * lines grouped under headings, in the manner of LMDB's mdb_stat.
 *
 * The database is opened read-only, so that the tool may look at a database
 * in use, and at one it may not write. Every figure comes from the public
 * API; the database figures of one run all come from one read snapshot, the
 * environment figures from the newest snapshot when they are printed.
 *
 * Usage: mmkv_stat [-V] [-e] [-f] [-r[r]] [-a | -s NAME] PATH
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mmkv.h>

#include "toolutil.h"

static const char usage_text[] =
	"usage: mmkv_stat [-V] [-e] [-f] [-r[r]] [-a | -s NAME] PATH\n"
	"  -e       environment: file, pages, transactions, readers\n"
	"  -f       free pages\n"
	"  -r       reader table; -rr also clears the slots of dead processes\n"
	"  -a       every database, the default one and all named ones\n"
	"  -s NAME  the named database NAME instead of the default one\n"
	"  -V       print the version and exit\n";

static const char *db_path;

static void print_tree(const char *title, const mmkv_stat *st)
{
	printf("Status of %s\n", title);
	printf("  Page size: %" PRIu32 "\n", st->page_size);
	printf("  Tree depth: %" PRIu32 "\n", st->depth);
	printf("  Branch pages: %" PRIu64 "\n", st->branch_pages);
	printf("  Leaf pages: %" PRIu64 "\n", st->leaf_pages);
	printf("  Overflow pages: %" PRIu64 "\n", st->overflow_pages);
	printf("  Entries: %" PRIu64 "\n", st->entries);
}

/* The compression lines of a database opened with MMKV_COMPRESS. */
static int print_compression(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_compress_stat z;
	int rc = mmkv_compress_info(txn, dbi, &z);

	if (rc == MMKV_INCOMPATIBLE)
		return 0; /* not compressed */
	if (rc) {
		tool_err(db_path, "compression settings: %s", mmkv_strerror(rc));
		return rc;
	}
	printf("  Compression: lz4, values of %u bytes or more, kept when saving %u%%\n", z.threshold,
	       z.min_saving);
	printf("  Dictionaries: %" PRIu32 " (%" PRIu64 " bytes), current id %" PRIu32 "\n", z.dict_count,
	       z.dict_bytes, z.dict_id);
	return 0;
}

/* Statistics of the database name (NULL: the default one) in txn. */
static int print_db(mmkv_txn *txn, const char *name)
{
	mmkv_dbi dbi;
	mmkv_stat st;
	int rc = mmkv_dbi_open(txn, name, 0, &dbi);

	if (rc == 0)
		rc = mmkv_dbi_stat(txn, dbi, &st);
	if (rc) {
		if (name)
			tool_err(db_path, "database \"%s\": %s", name, mmkv_strerror(rc));
		else
			tool_err(db_path, "%s", mmkv_strerror(rc));
		return rc;
	}
	print_tree(name ? name : "Main DB", &st);
	return print_compression(txn, dbi);
}

/* What print_named needs; failed tells its own errors, already reported,
 * from those of mmkv_dbi_list, since both end the listing with a return code. */
typedef struct listing {
	mmkv_txn *txn;
	int failed;
} listing;

/* mmkv_dbi_list callback: names are bytes, not C strings, so each is copied
 * and NUL-terminated; a name holding a NUL cannot be opened by name and is
 * reported rather than skipped. */
static int print_named(void *ctx, const mmkv_val *name)
{
	listing *l = ctx;
	char *s = malloc(name->size + 1);

	if (!s) {
		tool_err(db_path, "%s", mmkv_strerror(ENOMEM));
		return l->failed = 1;
	}
	memcpy(s, name->data, name->size);
	s[name->size] = '\0';
	if (strlen(s) != name->size) {
		tool_err(db_path, "database name \"%s...\" holds a NUL byte", s);
		l->failed = 1;
	} else {
		l->failed = print_db(l->txn, s) != 0;
	}
	free(s);
	return l->failed;
}

static void print_env(const mmkv_envinfo *in)
{
	const uint8_t *u = in->uuid;

	printf("Environment Info\n");
	printf("  File size: %" PRIu64 "\n", in->file_size);
	printf("  Page size: %" PRIu32 "\n", in->page_size);
	printf("  Last transaction ID: %" PRIu64 "\n", in->last_txnid);
	printf("  UUID: %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	       "%02x%02x%02x%02x%02x%02x\n",
	       u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
	       u[13], u[14], u[15]);
	printf("  Pages in use: %" PRIu64 "\n", in->last_pgno);
	printf("  Map size: %" PRIu64 "\n", in->map_size);
	printf("  Growth step: %" PRIu64 "\n", in->growth_step);
	printf("  Max readers: %" PRIu32 "\n", in->max_readers);
	printf("  Readers in use: %" PRIu32 "\n", in->num_readers);
}

static void print_free(const mmkv_envinfo *in)
{
	printf("Freelist Status\n");
	printf("  Free pages: %" PRIu64 "\n", in->free_pages);
	printf("  Free bytes: %" PRIu64 "\n", in->free_pages * in->page_size);
}

static int print_reader(void *ctx, const mmkv_reader_info *r)
{
	(*(unsigned *)ctx)++;
	printf("  %6" PRIu32 " %10" PRIu32 " %10" PRIu32 " %12" PRIu64 " %8" PRIu64 " %10" PRIu64 "\n",
	       r->slot, r->pid, r->tid, r->txnid, r->lag, r->pinned_pages);
	return 0;
}

static int print_readers(mmkv_env *env)
{
	unsigned count = 0;
	int rc;

	printf("Reader Table Status\n");
	printf("  %6s %10s %10s %12s %8s %10s\n", "slot", "pid", "tid", "txnid", "lag", "pinned");
	rc = mmkv_reader_list(env, print_reader, &count);
	if (rc) {
		tool_err(db_path, "reader table: %s", mmkv_strerror(rc));
		return rc;
	}
	if (count == 0)
		printf("  (no active readers)\n");
	return 0;
}

static int clear_stale_readers(mmkv_env *env)
{
	int cleared = 0, rc = mmkv_reader_check(env, &cleared);

	if (rc) {
		tool_err(db_path, "reader check: %s", mmkv_strerror(rc));
		return rc;
	}
	printf("  Stale readers cleared: %d\n", cleared);
	/* As mdb_stat does: show what the table holds after the clearing. */
	return cleared > 0 ? print_readers(env) : 0;
}

int main(int argc, char **argv)
{
	int opt_env = 0, opt_free = 0, opt_readers = 0, opt_all = 0, opt, rc, status = 1;
	const char *name = NULL;
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	mmkv_envinfo info;

	if (tool_start(argc, argv, usage_text))
		return 0;
	while ((opt = getopt(argc, argv, "Vefras:")) != -1) {
		switch (opt) {
		case 'V':
			tool_print_version();
			return 0;
		case 'e': opt_env = 1; break;
		case 'f': opt_free = 1; break;
		case 'r': opt_readers++; break;
		case 'a': opt_all = 1; break;
		case 's': name = optarg; break;
		default:
			tool_err(NULL, "option -%c is unknown or lacks its argument", optopt);
			fputs(usage_text, stderr);
			return 1;
		}
	}
	if (argc - optind != 1 || (opt_all && name)) {
		fputs(usage_text, stderr);
		return 1;
	}
	db_path = argv[optind];

	if ((rc = mmkv_env_create(&env)) != 0 ||
	    (rc = mmkv_env_set_maxdbs(env, TOOL_MAXDBS)) != 0 ||
	    (rc = mmkv_env_open(env, db_path, MMKV_RDONLY, 0)) != 0) {
		tool_err(db_path, "%s", mmkv_strerror(rc));
		goto out;
	}
	if (opt_env || opt_free) {
		if ((rc = mmkv_env_info(env, &info)) != 0) {
			tool_err(db_path, "%s", mmkv_strerror(rc));
			goto out;
		}
		if (opt_env)
			print_env(&info);
		if (opt_free)
			print_free(&info);
	}
	if (opt_readers && print_readers(env) != 0)
		goto out;
	if (opt_readers > 1 && clear_stale_readers(env) != 0)
		goto out;

	if ((rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn)) != 0) {
		tool_err(db_path, "%s", mmkv_strerror(rc));
		goto out;
	}
	if (print_db(txn, name) != 0)
		goto out;
	if (opt_all) {
		listing l = { txn, 0 };

		if ((rc = mmkv_dbi_list(txn, print_named, &l)) != 0) {
			if (!l.failed)
				tool_err(db_path, "listing databases: %s", mmkv_strerror(rc));
			goto out;
		}
	}
	status = 0;
out:
	mmkv_txn_abort(txn);
	mmkv_env_close(env);
	return status;
}
