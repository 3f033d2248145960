/*
 * fuzzutil.c - the helpers of fuzzutil.h shared by the libFuzzer targets:
 * the scratch directory, return-code rules, failure reports and file
 * writing. Uses only <mmkv.h> and libc.
 */
#define _GNU_SOURCE
#include "fuzzutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

void fuzz_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: fuzz failure: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

bool fuzz_rc_defined(int rc)
{
	/* errno values are small; anything above is garbage, not an errno. */
	if (rc >= 0)
		return rc < 4096 && mmkv_strerror(rc) != NULL;
	switch (rc) {
#define FUZZ_ERROR_CASE_(name, value, msg) case MMKV_##name:
		MMKV_ERRORS(FUZZ_ERROR_CASE_)
#undef FUZZ_ERROR_CASE_
		return mmkv_strerror(rc) != NULL;
	default:
		return false;
	}
}

#define DIR_PREFIX "mmkv-fuzz-"

static char dir_path[PATH_MAX];

/* Remove a scratch directory and the files in it (it has no subdirectories). */
static void remove_dir_at(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX + 256];

	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

static void remove_dir(void)
{
	remove_dir_at(dir_path);
}

/* libFuzzer may end the process with _Exit (after -max_total_time, or on a
 * crash), which skips atexit: the directories of processes that are gone
 * are swept when the next target starts. They are named by pid. */
static void sweep_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;
	char p[PATH_MAX + 256];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid;
		if (strncmp(e->d_name, DIR_PREFIX, strlen(DIR_PREFIX)) != 0)
			continue;
		pid = strtol(e->d_name + strlen(DIR_PREFIX), &end, 10);
		if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(p, sizeof(p), "%s/%s", base, e->d_name);
		remove_dir_at(p);
	}
	closedir(d);
}

const char *fuzz_dir(void)
{
	const char *base;
	struct stat st;

	if (dir_path[0])
		return dir_path;
	base = getenv("TMPDIR");
	if (!base || !*base) {
		base = "/tmp";
		if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
			base = "/dev/shm"; /* no disk: faster, and syncs cost nothing */
	}
	sweep_stale(base);
	if ((size_t)snprintf(dir_path, sizeof(dir_path), "%s/" DIR_PREFIX "%ld", base, (long)getpid()) >=
	    sizeof(dir_path)) {
		fprintf(stderr, "fuzz: %s: path too long\n", base);
		exit(2);
	}
	remove_dir(); /* left by a dead process of the same pid */
	if (mkdir(dir_path, 0700) != 0) {
		fprintf(stderr, "fuzz: cannot create %s: %s\n", dir_path, strerror(errno));
		exit(2);
	}
	atexit(remove_dir);
	return dir_path;
}

void fuzz_path(char *buf, const char *name)
{
	if ((size_t)snprintf(buf, PATH_MAX, "%s/%s", fuzz_dir(), name) >= PATH_MAX)
		FUZZ_FAIL("path too long");
}

void fuzz_remove_db(const char *path)
{
	char lockp[PATH_MAX + 8];

	snprintf(lockp, sizeof(lockp), "%s-lock", path);
	unlink(lockp);
	unlink(path);
}

void fuzz_write_file(const char *path, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		FUZZ_FAIL("cannot create %s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			FUZZ_FAIL("cannot write %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	close(fd);
}

FUZZ_NO_COVERAGE void fuzz_touch(const mmkv_val *v)
{
	const volatile unsigned char *p = v->data;
	unsigned char sink = 0;

	if (v->size && !v->data)
		FUZZ_FAIL("a value of %zu bytes at NULL", v->size);
	for (size_t i = 0; i < v->size; i++)
		sink ^= p[i];
	(void)sink;
}
