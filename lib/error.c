/*
 * error.c - error messages, the version call, and the corruption hook.
 *
 * The codes and their messages come from the one MMKV_ERRORS list in mmkv.h,
 * so a code cannot exist without its message.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

MMKV_API const char *mmkv_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define MMKV_ERROR_CASE_(name, value, msg) \
	case MMKV_##name:                  \
		return "MMKV_" #name ": " msg;
		MMKV_ERRORS(MMKV_ERROR_CASE_)
#undef MMKV_ERROR_CASE_
	default:
		break;
	}
	if (err > 0)
		return strerror(err);
	return "unknown error";
}

bool mmkv__is_error(int rc)
{
	switch (rc) {
#define MMKV_ERROR_IS_(name, value, msg) case MMKV_##name:
		MMKV_ERRORS(MMKV_ERROR_IS_)
#undef MMKV_ERROR_IS_
		return true;
	default:
		return rc > 0;
	}
}

MMKV_API const char *mmkv_version(int *major, int *minor, int *patch)
{
	if (major)
		*major = MMKV_VERSION_MAJOR;
	if (minor)
		*minor = MMKV_VERSION_MINOR;
	if (patch)
		*patch = MMKV_VERSION_PATCH;
	return "libmmkv " MMKV_VERSION_STRING;
}

void mmkv__corrupt(const char *file, int line, pgno_t pgno)
{
#ifndef NDEBUG
	/* Debug builds name the check that fired; set MMKV_DEBUG_CORRUPT to see it. */
	static int verbose = -1;
	if (verbose < 0)
		verbose = getenv("MMKV_DEBUG_CORRUPT") != NULL;
	if (verbose)
		fprintf(stderr, "libmmkv: corruption detected at %s:%d (page %llu)\n", file, line,
		        (unsigned long long)pgno);
#else
	(void)file;
	(void)line;
	(void)pgno;
#endif
}
