/*
 * fuzz_open.c - libFuzzer target: a data file image, opened and used.
 *
 * The input is the whole data file. It is written to a scratch directory
 * (fuzzutil.c) and then:
 *   1. opened read-only; mmkv_env_check; a full cursor scan, both ways, of
 *      the default database and of every named database mmkv_dbi_list
 *      names; SET_RANGE and mmkv_get of the keys met; statistics, info and
 *      the reader list;
 *   2. (the lock file removed) opened read-write: one small write
 *      transaction (overwrite, delete, an overflow value, a new named
 *      database), committed; mmkv_env_check again; a hot copy, plain or
 *      compact, which is opened and checked in turn.
 * Every call must return 0 or a defined code (fuzzutil.h), and nothing may
 * crash, hang or trip a sanitizer. When mmkv_env_check found the file clean,
 * more is required: scans and gets succeed and agree with each other and
 * with the statistics, the write transaction commits, its keys read back,
 * and the database and its copy stay clean.
 *
 * Two conveniences for the fuzzer, outside what the library reads:
 *   - Checksums: a meta or page whose checksum field (its first 8 bytes) is
 *     zero gets the right XXH3-64 filled in before the file is written, so
 *     that mutated headers, nodes and meta fields get past the checksum and
 *     reach the code behind it. The layout facts used for that (below) are
 *     those of lib/format.h; if the format moves, this only stops helping.
 *     This and <xxhash.h> are the one use of anything beyond <mmkv.h> and
 *     libc.
 *   - Options: byte 512 of page 0, which the meta does not cover (the meta
 *     is its first 512 bytes), selects MMKV_VERIFY, MMKV_WRITEMAP and a
 *     compact copy; the seeds have it zero.
 */
#define _GNU_SOURCE
#include "fuzzutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* Layout facts of lib/format.h used by the checksum fill-in. */
#define META_SIZE 512u
#define META_PAGESIZE 20u
#define PAGE_KIND 24u
#define PAGE_RUN 28u
#define PAGE_OVERFLOW 3u

/* Bits of the options byte (offset META_SIZE of page 0). */
#define OPT_VERIFY 0x01u
#define OPT_WRITEMAP 0x02u
#define OPT_COMPACT 0x04u

/* Enough for any image the fuzzer makes (-max_len) with room to spare;
 * larger inputs (from a replay) are skipped. */
#define MAX_IMAGE (8u << 20)
#define MAPSIZE (256ull << 20)
#define MAXDBS 64u
#define MAX_NAMES 16u
#define MAX_SAVED_KEYS 24u

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A zero checksum field at off, covering [off + 8, off + len): fill it in. */
static void fill_checksum(unsigned char *img, size_t off, size_t len)
{
	if (rd64(img + off) == 0)
		wr64(img + off, XXH3_64bits(img + off + 8, len - 8));
}

static void fill_checksums(unsigned char *img, size_t size)
{
	uint32_t ps;

	if (size < META_SIZE)
		return;
	fill_checksum(img, 0, META_SIZE);
	ps = rd32(img + META_PAGESIZE);
	if (ps < 4096 || ps > 65536 || (ps & (ps - 1)))
		return;
	if (size >= (size_t)ps + META_SIZE)
		fill_checksum(img, ps, META_SIZE);
	for (size_t pg = 2; (pg + 1) * ps <= size; pg++) {
		size_t off = pg * ps, len = ps;
		if (img[off + PAGE_KIND] == PAGE_OVERFLOW) {
			uint32_t run = rd32(img + off + PAGE_RUN);
			if (run >= 1 && run <= (size - off) / ps)
				len = (size_t)run * ps;
		}
		fill_checksum(img, off, len);
		pg += len / ps - 1;
	}
}

/* ------------------------------------------------------------ checking */

struct reports {
	uint64_t n;
};

static void count_report(void *ctx, uint64_t pgno, const char *problem)
{
	(void)pgno;
	FUZZ_ASSERT(problem && problem[0], "mmkv_env_check reported a problem without a description");
	((struct reports *)ctx)->n++;
}

/* mmkv_env_check with the rules every result must follow; true if clean. */
static bool check(mmkv_env *env)
{
	struct reports r = { 0 };
	mmkv_check_result res;
	int rc = FUZZ_RC(mmkv_env_check(env, count_report, &r, &res));

	if (rc == 0) {
		FUZZ_ASSERT(r.n == 0 && res.problems == 0, "check returned 0 with %llu problems",
		            (unsigned long long)r.n);
		FUZZ_ASSERT(res.pages_tree + res.pages_free + 2 == res.pages_total,
		            "clean check: %llu tree + %llu free + 2 != %llu pages",
		            (unsigned long long)res.pages_tree, (unsigned long long)res.pages_free,
		            (unsigned long long)res.pages_total);
		return true;
	}
	if (rc == MMKV_CORRUPTED)
		FUZZ_ASSERT(r.n > 0 && r.n == res.problems, "check returned CORRUPTED with %llu reports, %llu problems",
		            (unsigned long long)r.n, (unsigned long long)res.problems);
	return false;
}

/* A key met in a scan, with its value's size and a digest of its bytes
 * (values of a compressed database live in a per-transaction buffer that a
 * later read may reuse, so they are not kept). */
struct saved {
	unsigned char *key;
	size_t ksize, vsize;
	uint64_t vhash;
};

static uint64_t digest(const mmkv_val *v)
{
	fuzz_touch(v);
	return v->size ? XXH3_64bits(v->data, v->size) : 0;
}

/* Scan one database both ways, then look the keys met up again. strict:
 * the file checked clean, so every read must succeed and agree. */
static void scan_db(mmkv_txn *txn, mmkv_dbi dbi, bool strict, size_t image_size)
{
	/* Each entry takes at least a slot and a node header of the image:
	 * more steps than that means the walk repeats itself (a damaged tree
	 * may share pages); stop rather than loop for long. */
	const uint64_t cap = image_size / 8 + 16;
	struct saved keys[MAX_SAVED_KEYS];
	size_t nkeys = 0;
	mmkv_cursor *cur;
	mmkv_stat st;
	mmkv_val k, v;
	uint64_t fwd = 0, back = 0;
	int rc, strc;

	strc = FUZZ_RC(mmkv_dbi_stat(txn, dbi, &st));
	if (strict)
		FUZZ_EXPECT(strc, 0);
	if (FUZZ_RC(mmkv_cursor_open(txn, dbi, &cur)) != 0)
		return;
	for (rc = FUZZ_RC(mmkv_cursor_get(cur, &k, &v, MMKV_FIRST)); rc == 0 && fwd < cap;
	     rc = FUZZ_RC(mmkv_cursor_get(cur, &k, &v, MMKV_NEXT))) {
		uint64_t h = digest(&v);
		fuzz_touch(&k);
		fwd++;
		if (nkeys < MAX_SAVED_KEYS && (fwd < 8 || fwd % 16 == 0)) {
			struct saved *s = &keys[nkeys];
			s->key = malloc(k.size ? k.size : 1);
			if (!s->key)
				abort();
			if (k.size)
				memcpy(s->key, k.data, k.size);
			s->ksize = k.size;
			s->vsize = v.size;
			s->vhash = h;
			nkeys++;
		}
	}
	if (strict) {
		FUZZ_EXPECT(rc, MMKV_NOTFOUND);
		FUZZ_ASSERT(fwd == st.entries, "clean database: forward scan met %llu entries, stat says %llu",
		            (unsigned long long)fwd, (unsigned long long)st.entries);
	}
	for (rc = FUZZ_RC(mmkv_cursor_get(cur, &k, &v, MMKV_LAST)); rc == 0 && back < cap;
	     rc = FUZZ_RC(mmkv_cursor_get(cur, &k, &v, MMKV_PREV))) {
		digest(&v);
		fuzz_touch(&k);
		back++;
	}
	if (strict) {
		FUZZ_EXPECT(rc, MMKV_NOTFOUND);
		FUZZ_ASSERT(back == fwd, "clean database: %llu entries forward, %llu backward",
		            (unsigned long long)fwd, (unsigned long long)back);
	}
	for (size_t i = 0; i < nkeys; i++) {
		struct saved *s = &keys[i];
		mmkv_val key = { s->ksize, s->key }, out = key;

		rc = FUZZ_RC(mmkv_get(txn, dbi, &key, &v));
		if (rc == 0)
			digest(&v);
		if (strict) {
			FUZZ_EXPECT(rc, 0);
			FUZZ_ASSERT(v.size == s->vsize && digest(&v) == s->vhash,
			            "clean database: get returned another value than the scan");
		}
		rc = FUZZ_RC(mmkv_cursor_get(cur, &out, &v, MMKV_SET_RANGE));
		if (rc == 0) {
			fuzz_touch(&out);
			digest(&v);
		}
		if (strict) {
			FUZZ_EXPECT(rc, 0);
			FUZZ_ASSERT(out.size == s->ksize && (!out.size || memcmp(out.data, s->key, out.size) == 0),
			            "clean database: SET_RANGE of a stored key found another key");
		}
		rc = FUZZ_RC(mmkv_cursor_get(cur, &out, &v, MMKV_GET_CURRENT));
		if (rc == 0)
			digest(&v);
		FUZZ_RC(mmkv_cursor_get(cur, &out, &v, i % 2 ? MMKV_NEXT : MMKV_PREV));
		free(s->key);
	}
	mmkv_cursor_close(cur);
}

struct names {
	size_t n;
	char name[MAX_NAMES][256];
};

static int collect_name(void *ctx, const mmkv_val *name)
{
	struct names *ns = ctx;

	fuzz_touch(name);
	/* A name with a NUL byte (a damaged catalog) cannot be asked for. */
	if (ns->n < MAX_NAMES && name->size > 0 && name->size < 256 && !memchr(name->data, 0, name->size)) {
		memcpy(ns->name[ns->n], name->data, name->size);
		ns->name[ns->n][name->size] = 0;
		ns->n++;
	}
	return 0;
}

static int count_reader(void *ctx, const mmkv_reader_info *r)
{
	(void)r;
	(*(unsigned *)ctx)++;
	return 0;
}

static mmkv_env *env_new(void)
{
	mmkv_env *env;

	FUZZ_EXPECT(mmkv_env_create(&env), 0);
	FUZZ_EXPECT(mmkv_env_set_maxdbs(env, MAXDBS), 0);
	FUZZ_EXPECT(mmkv_env_set_mapsize(env, MAPSIZE), 0);
	return env;
}

/* Step 1: read-only. Returns whether the file checked clean. */
static bool probe_read(const char *path, unsigned int flags, size_t size)
{
	mmkv_env *env = env_new();
	mmkv_envinfo info;
	mmkv_stat st;
	struct names ns;
	mmkv_txn *txn;
	mmkv_dbi dbi;
	unsigned readers = 0;
	bool clean;
	int rc;

	rc = FUZZ_RC(mmkv_env_open(env, path, MMKV_RDONLY | flags, 0644));
	if (rc) {
		mmkv_env_close(env);
		return false;
	}
	FUZZ_ASSERT(mmkv_env_get_maxkeysize(env) >= 511, "max key size below 511");
	FUZZ_RC(mmkv_env_info(env, &info));
	FUZZ_RC(mmkv_env_stat(env, &st));
	clean = check(env);
	if (FUZZ_RC(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn)) == 0) {
		FUZZ_RC(mmkv_reader_list(env, count_reader, &readers));
		rc = FUZZ_RC(mmkv_dbi_open(txn, NULL, 0, &dbi));
		if (clean)
			FUZZ_EXPECT(rc, 0);
		if (rc == 0)
			scan_db(txn, dbi, clean, size);
		ns.n = 0;
		rc = FUZZ_RC(mmkv_dbi_list(txn, collect_name, &ns));
		if (clean)
			FUZZ_EXPECT(rc, 0);
		for (size_t i = 0; i < ns.n; i++) {
			rc = FUZZ_RC(mmkv_dbi_open(txn, ns.name[i], 0, &dbi));
			if (clean)
				FUZZ_EXPECT(rc, 0);
			if (rc == 0)
				scan_db(txn, dbi, clean, size);
		}
		mmkv_txn_abort(txn);
	}
	mmkv_env_close(env);
	return clean;
}

/* A put or delete of the write step: true if the transaction may go on. */
static bool write_ok(int rc, bool strict, const char *what)
{
	if (strict && rc != 0)
		FUZZ_FAIL("clean database: %s returned %d (%s)", what, rc, mmkv_strerror(rc));
	return rc == 0 || rc == MMKV_NOTFOUND || rc == MMKV_KEYEXIST;
}

/* Copy the database, open the copy and check it (clean: it must be). */
static void probe_copy(mmkv_env *env, const char *copy, unsigned int cpflags, bool strict)
{
	int fd, rc;

	fuzz_remove_db(copy);
	fd = open(copy, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_ASSERT(fd >= 0, "cannot create %s", copy);
	rc = FUZZ_RC(mmkv_env_copyfd(env, fd, cpflags));
	close(fd);
	if (strict)
		FUZZ_EXPECT(rc, 0);
	if (rc == 0 && strict) {
		mmkv_env *c = env_new();
		/* The copy keeps the meta's size limit, which the map reserves:
		 * with the original still mapped, two reservations of a huge
		 * (but valid) limit may not both fit the address space. */
		rc = FUZZ_RC(mmkv_env_open(c, copy, MMKV_RDONLY, 0644));
		if (rc != ENOMEM)
			FUZZ_EXPECT(rc, 0);
		if (rc == 0)
			FUZZ_ASSERT(check(c), "the %s copy of a clean database is not clean",
			            cpflags ? "compact" : "plain");
		mmkv_env_close(c);
	}
	fuzz_remove_db(copy);
}

/* Step 2: read-write, one small write transaction. */
static void probe_write(const char *path, const char *copy, unsigned int opts, bool strict)
{
	static unsigned char big[3 * 65536];
	unsigned int flags = MMKV_NOSYNC | ((opts & OPT_VERIFY) ? MMKV_VERIFY : 0) |
	                     ((opts & OPT_WRITEMAP) ? MMKV_WRITEMAP : 0);
	mmkv_env *env = env_new();
	mmkv_envinfo info;
	mmkv_txn *txn;
	mmkv_dbi dbi, named;
	mmkv_cursor *cur;
	mmkv_val k, v;
	uint64_t ikey1 = 0x0123456789abcdefull, ikey2 = 0xfedcba9876543210ull;
	mmkv_val key1 = { 11, "fuzz-inline" }, key2 = { 13, "fuzz-overflow" };
	unsigned int dflags = 0;
	bool go = true;
	size_t bigsize = 0;
	int rc;

	rc = FUZZ_RC(mmkv_env_open(env, path, flags, 0644));
	if (strict)
		FUZZ_EXPECT(rc, 0);
	if (rc) {
		mmkv_env_close(env);
		return;
	}
	if (FUZZ_RC(mmkv_env_info(env, &info)) == 0)
		bigsize = info.page_size / 2 * 3 + 7; /* an overflow run of two pages */
	if (bigsize > sizeof(big))
		bigsize = sizeof(big);
	for (size_t i = 0; i < bigsize; i++)
		big[i] = (unsigned char)(i * 7 + i / 251);

	rc = FUZZ_RC(mmkv_txn_begin(env, NULL, 0, &txn));
	if (strict)
		FUZZ_EXPECT(rc, 0);
	if (rc) {
		mmkv_env_close(env);
		return;
	}
	rc = FUZZ_RC(mmkv_dbi_open(txn, NULL, 0, &dbi));
	go = write_ok(rc, strict, "dbi_open");
	if (go && FUZZ_RC(mmkv_cursor_open(txn, dbi, &cur)) == 0) {
		/* Replace the first value, delete the second key. */
		rc = FUZZ_RC(mmkv_cursor_get(cur, &k, &v, MMKV_FIRST));
		if (rc == 0) {
			mmkv_val nv = { 5, "first" };
			go = write_ok(FUZZ_RC(mmkv_cursor_put(cur, &k, &nv, MMKV_CURRENT)), strict, "put CURRENT");
		}
		if (go && FUZZ_RC(mmkv_cursor_get(cur, &k, &v, MMKV_NEXT)) == 0)
			go = write_ok(FUZZ_RC(mmkv_cursor_del(cur, 0)), strict, "cursor_del");
		mmkv_cursor_close(cur);
	}
	/* Keys the default database takes: integers if it wants them. */
	if (go && FUZZ_RC(mmkv_dbi_flags(txn, dbi, &dflags)) == 0 && (dflags & MMKV_INTEGERKEY)) {
		key1 = (mmkv_val){ 8, &ikey1 };
		key2 = (mmkv_val){ 8, &ikey2 };
	}
	if (go) {
		mmkv_val val = { 6, "value1" };
		go = write_ok(FUZZ_RC(mmkv_put(txn, dbi, &key1, &val, 0)), strict, "put");
	}
	if (go) {
		mmkv_val val = { bigsize, big };
		go = write_ok(FUZZ_RC(mmkv_put(txn, dbi, &key2, &val, 0)), strict, "put overflow");
	}
	if (go) {
		rc = FUZZ_RC(mmkv_dbi_open(txn, "fuzz-named", MMKV_CREATE, &named));
		go = write_ok(rc, strict, "dbi_open CREATE");
		if (go && rc == 0) {
			mmkv_val key = { 1, "n" }, val = { 0, NULL };
			go = write_ok(FUZZ_RC(mmkv_put(txn, named, &key, &val, 0)), strict, "put named");
		}
	}
	if (go) {
		rc = FUZZ_RC(mmkv_txn_commit(txn));
		if (strict)
			FUZZ_EXPECT(rc, 0);
	} else {
		mmkv_txn_abort(txn);
		rc = -1;
	}
	if (strict && rc == 0) {
		FUZZ_EXPECT(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn), 0);
		FUZZ_EXPECT(mmkv_get(txn, dbi, &key2, &v), 0);
		FUZZ_ASSERT(v.size == bigsize && memcmp(v.data, big, bigsize) == 0,
		            "clean database: the value just committed reads back wrong");
		mmkv_txn_abort(txn);
	}
	if (!check(env) && strict)
		FUZZ_FAIL("a clean database is not clean after a small write transaction");
	probe_copy(env, copy, (opts & OPT_COMPACT) ? MMKV_CP_COMPACT : 0, strict);
	mmkv_env_close(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[PATH_MAX], copy[PATH_MAX], lockp[PATH_MAX + 8];
	unsigned char *img;
	unsigned int opts;
	bool clean;

	if (size > MAX_IMAGE)
		return 0;
	if (!path[0]) {
		fuzz_path(path, "open.mmkv");
		fuzz_path(copy, "copy.mmkv");
		snprintf(lockp, sizeof(lockp), "%s-lock", path);
	}
	img = malloc(size ? size : 1);
	if (!img)
		abort();
	if (size)
		memcpy(img, data, size);
	fill_checksums(img, size);
	opts = size > META_SIZE ? img[META_SIZE] : 0;

	fuzz_remove_db(path);
	fuzz_write_file(path, img, size);
	clean = probe_read(path, (opts & OPT_VERIFY) ? MMKV_VERIFY : 0, size);
	unlink(lockp);
	probe_write(path, copy, opts, clean);
	fuzz_remove_db(path);
	free(img);
	return 0;
}
