/*
 * toolutil.c - helpers shared by the libmmkv command-line tools (see
 * toolutil.h): program name, "PROG: FILE: message" errors, version line,
 * progress line.
 *
 * The progress line is drawn only on a terminal so that logs and pipes never
 * receive carriage returns, and at most PROGRESS_HZ times a second so that
 * drawing it costs nothing next to the work it reports.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mmkv.h>

#include "toolutil.h"

enum { PROGRESS_HZ = 4 };

static const char *progname = "mmkv";

void tool_init(const char *argv0)
{
	const char *slash;

	if (!argv0 || !*argv0)
		return;
	slash = strrchr(argv0, '/');
	progname = slash ? slash + 1 : argv0;
	if (strncmp(progname, "lt-", 3) == 0)
		progname += 3;
}

bool tool_start(int argc, char **argv, const char *usage)
{
	tool_init(argv[0]);
	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		fputs(usage, stdout);
		return true;
	}
	opterr = 0;
	return false;
}

const char *tool_name(void)
{
	return progname;
}

void tool_err(const char *file, const char *fmt, ...)
{
	va_list ap;

	if (file)
		fprintf(stderr, "%s: %s: ", progname, file);
	else
		fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void tool_print_version(void)
{
	printf("%s (%s)\n", progname, mmkv_version(NULL, NULL, NULL));
}

static double seconds_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

void tool_progress_start(tool_progress *p, const char *what)
{
	memset(p, 0, sizeof(*p));
	p->on = isatty(STDERR_FILENO);
	p->what = what;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	p->last = p->start;
}

void tool_progress_update(tool_progress *p, uint64_t records)
{
	struct timespec now;
	double elapsed;

	if (!p->on)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (seconds_between(&p->last, &now) < 1.0 / PROGRESS_HZ)
		return;
	p->last = now;
	elapsed = seconds_between(&p->start, &now);
	fprintf(stderr, "\r%s: %llu records %s, %.0f records/s ", progname,
	        (unsigned long long)records, p->what, elapsed > 0 ? (double)records / elapsed : 0.0);
	fflush(stderr);
}

void tool_progress_end(tool_progress *p)
{
	/* Only a line that was drawn needs erasing: last moves on each redraw. */
	if (p->on && (p->last.tv_sec != p->start.tv_sec || p->last.tv_nsec != p->start.tv_nsec))
		fputs("\r\033[K", stderr);
}
