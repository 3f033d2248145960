/*
 * replay.c - a main() for the fuzz targets when libFuzzer is not linked:
 * runs LLVMFuzzerTestOneInput once on each file named on the command line,
 * and on each regular file in each directory named there (not recursively,
 * in name order). This is how `make check` replays the seed corpus with any
 * compiler, and how a crash input is reproduced under gdb or valgrind.
 *
 * Exit status: 0 when every input ran (a failing input aborts the process,
 * as under libFuzzer), 1 when an argument cannot be read or no input was
 * found. MMKV_FUZZ_VERBOSE=1 names each input before it runs.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzzutil.h"

static int verbose;

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			unsigned char *nb;
			cap = cap ? 2 * cap : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				fprintf(stderr, "replay: %s: out of memory\n", path);
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	if (verbose)
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	/* A copy of exactly len bytes, so that AddressSanitizer catches a read
	 * past the input as libFuzzer would. */
	{
		unsigned char *exact = malloc(len ? len : 1);
		if (!exact)
			abort();
		memcpy(exact, buf, len);
		free(buf);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned long ran = 0;
	int status = 0;
	const char *v = getenv("MMKV_FUZZ_VERBOSE");

	verbose = v && *v && *v != '0';
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent **list;
		int n;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			status = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) == 0)
				ran++;
			else
				status = 1;
			continue;
		}
		n = scandir(argv[i], &list, NULL, by_name);
		if (n < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			status = 1;
			continue;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];
			if (list[j]->d_name[0] != '.' &&
			    (size_t)snprintf(path, sizeof(path), "%s/%s", argv[i], list[j]->d_name) < sizeof(path) &&
			    stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (run_file(path) == 0)
					ran++;
				else
					status = 1;
			}
			free(list[j]);
		}
		free(list);
	}
	printf("replay: %lu inputs ran\n", ran);
	if (ran == 0) {
		fprintf(stderr, "replay: no input found\n");
		status = 1;
	}
	return status;
}
