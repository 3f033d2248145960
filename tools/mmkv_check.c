/*
 * mmkv_check.c - verify a libmmkv database with mmkv_env_check and print
 * each problem it finds, one line each, on stdout.
 *
 * The database is opened read-only and checked on a read snapshot, so the
 * check runs while other processes write; it sees the newest commit at the
 * time it starts. Exit status: 0 clean, 1 problems found (the last line then
 * counts them) or the check could not run (a message on stderr).
 *
 * Usage: mmkv_check [-V] [-v] PATH
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mmkv.h>

#include "toolutil.h"

static const char usage_text[] =
	"usage: mmkv_check [-V] [-v] PATH\n"
	"  -v  also print the page and entry totals\n"
	"  -V  print the version and exit\n";

/* The checker's sentences name the page they concern ("page 7 fails its
 * checksum"), so they are printed as they are. */
static void print_problem(void *ctx, uint64_t pgno, const char *problem)
{
	(void)ctx;
	(void)pgno;
	printf("%s\n", problem);
}

int main(int argc, char **argv)
{
	int verbose = 0, opt, rc, status = 1;
	const char *path;
	mmkv_check_result res;
	mmkv_env *env = NULL;

	if (tool_start(argc, argv, usage_text))
		return 0;
	while ((opt = getopt(argc, argv, "Vv")) != -1) {
		switch (opt) {
		case 'V':
			tool_print_version();
			return 0;
		case 'v':
			verbose = 1;
			break;
		default:
			tool_err(NULL, "option -%c is unknown or lacks its argument", optopt);
			fputs(usage_text, stderr);
			return 1;
		}
	}
	if (argc - optind != 1) {
		fputs(usage_text, stderr);
		return 1;
	}
	path = argv[optind];

	/* Named databases are walked through the catalog, not through handles,
	 * so the default maxdbs will do. */
	if ((rc = mmkv_env_create(&env)) != 0 || (rc = mmkv_env_open(env, path, MMKV_RDONLY, 0)) != 0) {
		tool_err(path, "%s", mmkv_strerror(rc));
		goto out;
	}
	memset(&res, 0, sizeof(res));
	rc = mmkv_env_check(env, print_problem, NULL, &res);
	if (rc != 0 && rc != MMKV_CORRUPTED) {
		tool_err(path, "%s", mmkv_strerror(rc));
		goto out;
	}
	if (verbose) {
		printf("Pages total: %" PRIu64 "\n", res.pages_total);
		printf("Pages in trees: %" PRIu64 "\n", res.pages_tree);
		printf("Pages free: %" PRIu64 "\n", res.pages_free);
		printf("Entries: %" PRIu64 "\n", res.entries);
	}
	if (rc == MMKV_CORRUPTED) {
		printf("%s: %" PRIu64 " problem%s\n", path, res.problems, res.problems == 1 ? "" : "s");
		goto out;
	}
	status = 0;
out:
	mmkv_env_close(env);
	return status;
}
