/*
 * mmkv_copy.c - hot backup of a libmmkv database: mmkv_env_copy from a
 * read-only open of SRC to the new file DST, optionally compacted.
 *
 * The copy is one read snapshot of SRC, so writers keep working meanwhile.
 * DST is created by the library with O_EXCL: an existing file is never
 * overwritten, and a failed copy is removed.
 *
 * On a terminal, a second thread redraws a progress line from the size DST
 * has reached (the library writes the pages in ascending order and the meta
 * pages last, so the size tracks the work done), and a summary line follows;
 * when stderr is not a terminal the tool prints nothing on success.
 *
 * Usage: mmkv_copy [-V] [-c] [-n] SRC DST
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mmkv.h>

#include "toolutil.h"

static const char usage_text[] =
	"usage: mmkv_copy [-V] [-c] [-n] SRC DST\n"
	"  -c  compact: copy only the pages in use, renumbered densely\n"
	"  -n  accepted for mdb_copy compatibility (paths always name data files)\n"
	"  -V  print the version and exit\n";

/* The progress thread's view of the copy. */
typedef struct progress {
	const char *dst;
	uint64_t expected;     /* estimated size of the copy, bytes */
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
} progress;

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

static void *show_progress(void *arg)
{
	progress *p = arg;
	struct timespec until;
	struct stat st;

	pthread_mutex_lock(&p->lock);
	while (!p->done) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		if (pthread_cond_timedwait(&p->done_cond, &p->lock, &until) != ETIMEDOUT)
			continue;
		if (stat(p->dst, &st) == 0) {
			fprintf(stderr, "\r%s: %.1f of about %.1f MiB copied ", tool_name(),
			        mib((uint64_t)st.st_size), mib(p->expected));
			fflush(stderr);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	unsigned int flags = 0;
	int opt, rc, status = 1;
	const char *src, *dst;
	mmkv_env *env = NULL;
	mmkv_envinfo info;
	struct timespec start;
	progress p = { .lock = PTHREAD_MUTEX_INITIALIZER, .done_cond = PTHREAD_COND_INITIALIZER };
	pthread_t thread;
	bool show = isatty(STDERR_FILENO), thread_started = false;
	struct stat st;

	if (tool_start(argc, argv, usage_text))
		return 0;
	while ((opt = getopt(argc, argv, "Vcn")) != -1) {
		switch (opt) {
		case 'V':
			tool_print_version();
			return 0;
		case 'c':
			flags |= MMKV_CP_COMPACT;
			break;
		case 'n':
			break;
		default:
			tool_err(NULL, "option -%c is unknown or lacks its argument", optopt);
			fputs(usage_text, stderr);
			return 1;
		}
	}
	if (argc - optind != 2) {
		fputs(usage_text, stderr);
		return 1;
	}
	src = argv[optind];
	dst = argv[optind + 1];

	if ((rc = mmkv_env_create(&env)) != 0 || (rc = mmkv_env_open(env, src, MMKV_RDONLY, 0)) != 0) {
		tool_err(src, "%s", mmkv_strerror(rc));
		goto out;
	}
	if (show && mmkv_env_info(env, &info) == 0) {
		/* Plain copies hold every page in use; compact ones drop the
		 * free pages (and the free tree's own pages, not counted here). */
		p.dst = dst;
		p.expected = info.last_pgno * info.page_size;
		if (flags & MMKV_CP_COMPACT)
			p.expected -= info.free_pages * info.page_size;
		thread_started = pthread_create(&thread, NULL, show_progress, &p) == 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = mmkv_env_copy(env, dst, flags);
	if (thread_started) {
		pthread_mutex_lock(&p.lock);
		p.done = true;
		pthread_cond_signal(&p.done_cond);
		pthread_mutex_unlock(&p.lock);
		pthread_join(thread, NULL);
		fputs("\r\033[K", stderr);
	}
	if (rc == EEXIST) {
		tool_err(dst, "%s (the copy must be a new file)", mmkv_strerror(rc));
		goto out;
	}
	if (rc) {
		tool_err(src, "copying to %s: %s", dst, mmkv_strerror(rc));
		goto out;
	}
	if (show && stat(dst, &st) == 0)
		fprintf(stderr, "%s: %s -> %s: %.1f MiB%s in %.2f s\n", tool_name(), src, dst,
		        mib((uint64_t)st.st_size), flags & MMKV_CP_COMPACT ? " (compacted)" : "",
		        seconds_since(&start));
	status = 0;
out:
	mmkv_env_close(env);
	return status;
}
