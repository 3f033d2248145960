/*
 * toolutil.h - small helpers shared by the libmmkv command-line tools:
 * the program name and error messages in the form "PROG: FILE: message",
 * the -V version line, and a progress line for long work on a terminal.
 *
 * Not part of the library: each tool links tools/toolutil.c itself.
 */
#ifndef MMKV_TOOLUTIL_H
#define MMKV_TOOLUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Named database handles a tool asks for when it may meet any number of
 * databases (the library's upper limit): each costs a few dozen bytes per
 * transaction, and a tool runs one transaction at a time. */
#define TOOL_MAXDBS 32000u

/* The name messages begin with: argv[0] without its directory (libtool's
 * "lt-" prefix of uninstalled programs removed). Call first in main(). */
void tool_init(const char *argv0);
const char *tool_name(void);

/* Start of a getopt-based main(): tool_init, then, for a lone "--help",
 * print usage to stdout and return true (the tool exits 0); and quiet
 * getopt, which would name the program by its path (the tool reports bad
 * options itself). */
bool tool_start(int argc, char **argv, const char *usage);

/* Print "PROG: FILE: message\n" to stderr; file may be NULL (then
 * "PROG: message"). */
void tool_err(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print "PROG (libmmkv VERSION)" to stdout, for -V (mmkv_version() names the library). */
void tool_print_version(void);

/* A progress line on stderr, shown only when stderr is a terminal, and
 * redrawn at most a few times a second. */
typedef struct tool_progress {
	bool on;
	const char *what;       /* "loaded", "dumped" */
	struct timespec start;
	struct timespec last;   /* last redraw */
} tool_progress;

void tool_progress_start(tool_progress *p, const char *what);
/* Cheap enough to call per record: one clock read (vDSO) when shown. */
void tool_progress_update(tool_progress *p, uint64_t records);
/* Clear the line (if one was drawn). */
void tool_progress_end(tool_progress *p);

#endif /* MMKV_TOOLUTIL_H */
