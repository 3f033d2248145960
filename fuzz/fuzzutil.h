/*
 * fuzzutil.h - what the libFuzzer targets of libmmkv share: the per-process
 * scratch directory their database files live in, the rule for return codes
 * ("0, a negative MMKV_* code of MMKV_ERRORS, or a positive errno value;
 * anything else is a bug"), and a failure that stops the process at once so
 * that libFuzzer, or the replay driver, records it as a crash.
 *
 * Not part of the library: each target links fuzz/fuzzutil.c itself and
 * uses only <mmkv.h> and libc.
 */
#ifndef MMKV_FUZZUTIL_H
#define MMKV_FUZZUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmkv.h"

/* Keeps libFuzzer's coverage instrumentation out of a function: for the
 * byte loops of the harness, which would otherwise cost more than the
 * library calls they check and tell the fuzzer nothing. */
#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#endif
#endif
#ifndef FUZZ_NO_COVERAGE
#define FUZZ_NO_COVERAGE
#endif

/* The entry point libFuzzer calls; fuzz/replay.c calls it too. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Report a broken expectation (a model mismatch, an undefined return code)
 * on stderr and abort(): libFuzzer saves the input as a crash. */
__attribute__((noreturn, format(printf, 3, 4))) void fuzz_fail(const char *file, int line,
                                                               const char *fmt, ...);
#define FUZZ_FAIL(...) fuzz_fail(__FILE__, __LINE__, __VA_ARGS__)
#define FUZZ_ASSERT(cond, ...)                  \
	do {                                    \
		if (!(cond))                    \
			FUZZ_FAIL(__VA_ARGS__); \
	} while (0)

/* True for the codes a libmmkv call may return: 0, the MMKV_ERRORS codes and
 * positive errno values. */
bool fuzz_rc_defined(int rc);

/* Evaluate a libmmkv call and fail unless its return code is defined. */
#define FUZZ_RC(expr)                                                                    \
	({                                                                               \
		int frc_ = (expr);                                                       \
		if (!fuzz_rc_defined(frc_))                                              \
			FUZZ_FAIL("%s returned the undefined code %d", #expr, frc_);     \
		frc_;                                                                    \
	})

/* Evaluate a libmmkv call and fail unless it returned want. */
#define FUZZ_EXPECT(expr, want)                                                          \
	do {                                                                             \
		int frc_ = (expr), fwant_ = (want);                                      \
		if (frc_ != fwant_)                                                      \
			FUZZ_FAIL("%s returned %d (%s), expected %d (%s)", #expr, frc_,  \
			          mmkv_strerror(frc_), fwant_, mmkv_strerror(fwant_));   \
	} while (0)

/* The process's scratch directory, mmkv-fuzz-PID, created on the first
 * call (under $TMPDIR if set, else /dev/shm when writable, else /tmp) and
 * removed with its files at exit; those of dead processes (libFuzzer may
 * leave with _Exit) are removed by the next first call. */
const char *fuzz_dir(void);

/* dir/name into buf (of PATH_MAX bytes). */
void fuzz_path(char *buf, const char *name);

/* Remove a database: the data file and its lock file. */
void fuzz_remove_db(const char *path);

/* Replace the file at path by len bytes of buf. */
void fuzz_write_file(const char *path, const void *buf, size_t len);

/* Read every byte of v, so that AddressSanitizer sees a pointer or size
 * that reaches outside what the library may hand out. */
void fuzz_touch(const mmkv_val *v);

#endif /* MMKV_FUZZUTIL_H */
