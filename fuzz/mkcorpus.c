/*
 * mkcorpus.c - writes the seed corpus of the fuzz targets:
 *
 *   mkcorpus DIR    fills DIR/open/ and DIR/ops/ (created if missing)
 *
 * DIR/open/ gets small database images made by the library (empty, a few
 * keys, overflow values, a deep tree of long keys, named databases of each
 * key order, free pages, compressed values with a dictionary (once
 * <mmkv.h> has MMKV_COMPRESS), 4 KiB and 16 KiB pages), each cut to the pages in
 * use, and a few damaged variants: truncated, the newest meta zeroed, a
 * flipped byte, checksums zeroed (fuzz_open fills those in, so mutations
 * of such a seed reach the code behind the checksum), a text file and an
 * empty file. DIR/ops/ gets hand-written programs for fuzz_ops (their
 * encoding is described at the top of fuzz_ops.c).
 *
 * `make fuzz-corpus` runs it on $(srcdir)/fuzz/corpus; the images hold
 * random UUIDs, so a rerun changes every file. Inputs that once crashed a
 * target are kept in the corpus under names starting with "crash-"; this
 * program neither writes nor removes them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmkv.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

static const char *outdir;
static char tmpdir[PATH_MAX];

#define CHECK(call)                                                                              \
	do {                                                                                     \
		int rc_ = (call);                                                                \
		if (rc_ != 0) {                                                                  \
			fprintf(stderr, "mkcorpus: %s: %s\n", #call, mmkv_strerror(rc_));       \
			exit(1);                                                                 \
		}                                                                                \
	} while (0)

static void write_out(const char *sub, const char *name, const void *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (!f || (len && fwrite(buf, 1, len, f) != len) || fclose(f) != 0) {
		fprintf(stderr, "mkcorpus: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* ------------------------------------------------------------- images */

typedef struct image {
	unsigned char *buf;
	size_t len;
	uint32_t psize;
	uint64_t txnid;
} image;

typedef void(fill_fn)(mmkv_env *env);

/* A database made by fill, read back and cut to the pages in use (the file
 * itself grows in large steps). */
static image build(uint32_t psize, fill_fn *fill)
{
	char path[PATH_MAX + 16], lockp[PATH_MAX + 24];
	mmkv_env *env;
	mmkv_envinfo info;
	image im;
	FILE *f;

	snprintf(path, sizeof(path), "%s/db.mmkv", tmpdir);
	snprintf(lockp, sizeof(lockp), "%s-lock", path);
	unlink(path);
	unlink(lockp);
	CHECK(mmkv_env_create(&env));
	CHECK(mmkv_env_set_pagesize(env, psize));
	CHECK(mmkv_env_set_maxdbs(env, 8));
	CHECK(mmkv_env_open(env, path, MMKV_NOSYNC, 0644));
	fill(env);
	CHECK(mmkv_env_check(env, NULL, NULL, NULL));
	CHECK(mmkv_env_info(env, &info));
	mmkv_env_close(env);

	im.psize = info.page_size;
	im.txnid = info.last_txnid;
	im.len = (size_t)info.last_pgno * info.page_size;
	im.buf = malloc(im.len);
	f = fopen(path, "rb");
	if (!im.buf || !f || fread(im.buf, 1, im.len, f) != im.len) {
		fprintf(stderr, "mkcorpus: cannot read back %s\n", path);
		exit(1);
	}
	fclose(f);
	unlink(path);
	unlink(lockp);
	return im;
}

static void put(mmkv_txn *txn, mmkv_dbi dbi, const void *k, size_t ks, const void *v, size_t vs)
{
	mmkv_val key = { ks, (void *)k }, val = { vs, (void *)v };

	CHECK(mmkv_put(txn, dbi, &key, &val, 0));
}

static void fill_bytes(unsigned char *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(seed * 31 + i * 7 + i / 97);
}

static void fill_empty(mmkv_env *env)
{
	(void)env;
}

static void fill_few(mmkv_env *env)
{
	mmkv_txn *txn;
	mmkv_dbi dbi;
	char k[16], v[32];

	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
	CHECK(mmkv_dbi_open(txn, NULL, 0, &dbi));
	for (int i = 0; i < 12; i++) {
		snprintf(k, sizeof(k), "key%02d", i);
		snprintf(v, sizeof(v), "value %d", i * i);
		put(txn, dbi, k, strlen(k), v, strlen(v));
	}
	put(txn, dbi, "empty", 5, "", 0);
	CHECK(mmkv_txn_commit(txn));
}

/* Overflow values of one to three pages among small ones, over two
 * commits (so the free tree has a record), and enough keys for two levels. */
static void fill_overflow(mmkv_env *env)
{
	static unsigned char big[3 * 16384];
	mmkv_txn *txn;
	mmkv_dbi dbi;
	char k[16];
	uint32_t ps = 4096;
	mmkv_envinfo info;

	CHECK(mmkv_env_info(env, &info));
	ps = info.page_size;
	for (int round = 0; round < 2; round++) {
		CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
		CHECK(mmkv_dbi_open(txn, NULL, 0, &dbi));
		for (int i = round; i < 70; i += 2) {
			size_t n = i % 30 == 0 ? ps + (size_t)i * 13 : i % 31 == 0 ? 2 * ps + 100 : (size_t)i % 50 + 1;
			snprintf(k, sizeof(k), "ov%04d", i);
			fill_bytes(big, n, (unsigned)i);
			put(txn, dbi, k, strlen(k), big, n);
		}
		CHECK(mmkv_txn_commit(txn));
	}
	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
	CHECK(mmkv_dbi_open(txn, NULL, 0, &dbi));
	{
		mmkv_val key = { 6, "ov0030" };
		CHECK(mmkv_del(txn, dbi, &key, NULL));
	}
	CHECK(mmkv_txn_commit(txn));
}

/* Keys of the largest size: few per page, so the tree is three deep. */
static void fill_deep(mmkv_env *env)
{
	static unsigned char key[65536];
	unsigned int maxkey = mmkv_env_get_maxkeysize(env);
	mmkv_txn *txn;
	mmkv_dbi dbi;

	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
	CHECK(mmkv_dbi_open(txn, NULL, 0, &dbi));
	for (int i = 0; i < 40; i++) {
		memset(key, 'k', maxkey);
		key[maxkey - 2] = (unsigned char)('A' + i / 26);
		key[maxkey - 1] = (unsigned char)('a' + i % 26);
		put(txn, dbi, key, maxkey, "v", 1);
	}
	CHECK(mmkv_txn_commit(txn));
}

/* Named databases of each key order, one dropped, over several commits. */
static void fill_named(mmkv_env *env)
{
	mmkv_txn *txn;
	mmkv_dbi main_db, alpha, rev, ints, gone;
	char k[16], v[64];

	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
	CHECK(mmkv_dbi_open(txn, NULL, 0, &main_db));
	CHECK(mmkv_dbi_open(txn, "alpha", MMKV_CREATE, &alpha));
	CHECK(mmkv_dbi_open(txn, "rev", MMKV_CREATE | MMKV_REVERSEKEY, &rev));
	CHECK(mmkv_dbi_open(txn, "ints", MMKV_CREATE | MMKV_INTEGERKEY, &ints));
	CHECK(mmkv_dbi_open(txn, "gone", MMKV_CREATE, &gone));
	put(txn, main_db, "main", 4, "default database", 16);
	for (int i = 0; i < 30; i++) {
		uint32_t ik = (uint32_t)i * 2654435761u;
		uint64_t ik8 = (uint64_t)i << 40;
		snprintf(k, sizeof(k), "a%03d", i);
		snprintf(v, sizeof(v), "alpha value %d", i);
		put(txn, alpha, k, strlen(k), v, strlen(v));
		snprintf(k, sizeof(k), "%03dr", i);
		put(txn, rev, k, strlen(k), v, (size_t)i);
		put(txn, ints, &ik, 4, &i, sizeof(i));
		if (i % 5 == 0)
			put(txn, gone, &ik8, 8, "x", 1);
	}
	CHECK(mmkv_txn_commit(txn));
	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
	CHECK(mmkv_drop(txn, gone, 1));
	for (int i = 0; i < 30; i += 3) {
		mmkv_val key;
		snprintf(k, sizeof(k), "a%03d", i);
		key.size = strlen(k);
		key.data = k;
		CHECK(mmkv_del(txn, alpha, &key, NULL));
	}
	CHECK(mmkv_txn_commit(txn));
}

static void fill_small16k(mmkv_env *env)
{
	static unsigned char big[5000];
	mmkv_txn *txn;
	mmkv_dbi dbi, named;

	fill_bytes(big, sizeof(big), 3);
	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
	CHECK(mmkv_dbi_open(txn, NULL, 0, &dbi));
	CHECK(mmkv_dbi_open(txn, "sixteen", MMKV_CREATE, &named));
	put(txn, dbi, "a", 1, "1", 1);
	put(txn, dbi, "c", 1, big, sizeof(big));
	put(txn, named, "n", 1, "named", 5);
	CHECK(mmkv_txn_commit(txn));
}

#ifdef MMKV_COMPRESS
/* A compressed database with a dictionary: values alike in shape, one
 * above the inline limit before compression. */
static void fill_compressed(mmkv_env *env)
{
	static char big[6000];
	mmkv_txn *txn;
	mmkv_dbi z;
	char k[16], v[256];

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = "abcabcabd"[i % 9];
	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
	CHECK(mmkv_dbi_open(txn, "zipped", MMKV_CREATE | MMKV_COMPRESS, &z));
	for (int i = 0; i < 40; i++) {
		snprintf(k, sizeof(k), "z%03d", i);
		snprintf(v, sizeof(v), "{\"id\": %d, \"name\": \"user%d\", \"tags\": [\"a\", \"b\"], "
		         "\"active\": true, \"score\": %d, \"note\": \"compressible text text text\"}",
		         i, i, i * 7);
		put(txn, z, k, strlen(k), v, strlen(v));
	}
	put(txn, z, "zbig", 4, big, sizeof(big));
	CHECK(mmkv_dict_build(txn, z));
	put(txn, z, "zlast", 5, v, strlen(v));
	CHECK(mmkv_txn_commit(txn));
}
#endif

/* ------------------------------------------------------------ damage */

/* Layout facts of lib/format.h: a page's checksum is its first 8 bytes (a
 * meta's covers its first 512); an overflow page has kind 3 at byte 24 and
 * its run length at byte 28. */
static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static image copy_of(const image *im)
{
	image c = *im;

	c.buf = malloc(im->len);
	if (!c.buf)
		exit(1);
	memcpy(c.buf, im->buf, im->len);
	return c;
}

/* Zero every checksum: fuzz_open fills them in again. */
static void zero_checksums(image *im)
{
	for (size_t pg = 0; (pg + 1) * im->psize <= im->len; pg++) {
		unsigned char *p = im->buf + pg * im->psize;
		uint32_t run = 1;
		if (pg >= 2 && p[24] == 3)
			run = rd32(p + 28);
		memset(p, 0, 8);
		if (run > 1)
			pg += run - 1;
	}
}

static void write_image(const char *name, const image *im)
{
	write_out("open", name, im->buf, im->len);
}

static void make_open(void)
{
	image empty = build(4096, fill_empty);
	image few = build(4096, fill_few);
	image ov = build(4096, fill_overflow);
	image deep = build(4096, fill_deep);
	image named = build(4096, fill_named);
	image few16 = build(16384, fill_small16k);
	image d;

	write_image("empty-4k", &empty);
	write_image("few-4k", &few);
	write_image("overflow-4k", &ov);
	write_image("deep-4k", &deep);
	write_image("named-4k", &named);
	write_image("few-16k", &few16);

	/* the last page missing */
	d = copy_of(&ov);
	d.len -= d.psize;
	write_image("damaged-truncated", &d);
	free(d.buf);

	/* the newest meta zeroed: the previous commit is served */
	d = copy_of(&named);
	memset(d.buf + (d.txnid % 2) * d.psize, 0, d.psize);
	write_image("damaged-newest-meta", &d);
	free(d.buf);

	/* one byte of the last leaf flipped (bad checksum) */
	d = copy_of(&few);
	d.buf[d.len - 100] ^= 0x5a;
	write_image("damaged-flip", &d);
	free(d.buf);

	/* checksums to be filled in by fuzz_open: the same databases */
	d = copy_of(&named);
	zero_checksums(&d);
	write_image("fixup-named-4k", &d);
	free(d.buf);
	d = copy_of(&ov);
	zero_checksums(&d);
	write_image("fixup-overflow-4k", &d);
	free(d.buf);
	d = copy_of(&deep);
	zero_checksums(&d);
	write_image("fixup-deep-4k", &d);
	free(d.buf);

	/* ... and with a node's key size raised in the last leaf page */
	d = copy_of(&few);
	zero_checksums(&d);
	{
		unsigned char *p = d.buf + d.len - d.psize;
		unsigned slot0 = p[32] | p[33] << 8;
		if (slot0 + 4 < d.psize)
			p[slot0 + 2] = 0xff;
	}
	write_image("fixup-bad-key-size", &d);
	free(d.buf);

	/* options byte (fuzz_open.c): MMKV_VERIFY, MMKV_WRITEMAP, compact copy */
	d = copy_of(&named);
	d.buf[512] = 7;
	write_image("options-named-4k", &d);
	free(d.buf);

#ifdef MMKV_COMPRESS
	{
		image z = build(4096, fill_compressed);
		write_image("compressed-4k", &z);
		d = copy_of(&z);
		zero_checksums(&d);
		write_image("fixup-compressed-4k", &d);
		free(d.buf);
		free(z.buf);
	}
#endif
	write_out("open", "text", "this is not a database\n", 23);
	write_out("open", "zero-length", "", 0);

	free(empty.buf);
	free(few.buf);
	free(ov.buf);
	free(deep.buf);
	free(named.buf);
	free(few16.buf);
}

/* ------------------------------------------------------------ programs */

/* Opcodes of fuzz_ops.c: operation | db << 4 | variant << 5. */
#define OP(op, db, v) ((unsigned char)((op) | (db) << 4 | (v) << 5))
enum { PUT, DEL, GET, CURSOR, CURSOR_PUT, CURSOR_DEL, COMMIT, ABORT,
       SNAP_BEGIN, SNAP_READ, SNAP_END, REOPEN, DROP, CHECKOP, MISUSE, BULK };
/* Value size bytes (fuzz_ops.c value_size): class | (offset + 8) << 3. */
#define VS(cls, off) ((unsigned char)((cls) | ((off) + 8) << 3))

struct program {
	const char *name;
	size_t len;
	const unsigned char *bytes;
};

#define PROGRAM(name, ...) { name, sizeof((const unsigned char[]){ __VA_ARGS__ }), \
	                     (const unsigned char[]){ __VA_ARGS__ } }

static const struct program programs[] = {
	/* put, get, commit, compare */
	PROGRAM("basic", 0x00,
	        OP(PUT, 0, 4), 10, VS(1, 0), 1, OP(PUT, 0, 0), 20, VS(2, 0), 2, OP(PUT, 1, 0), 30, VS(3, 0), 3,
	        OP(GET, 0, 0), 10, OP(GET, 0, 0), 11, OP(COMMIT, 0, 1), OP(GET, 1, 0), 30, OP(DEL, 0, 0), 20,
	        OP(DEL, 0, 0), 21, OP(COMMIT, 0, 0), OP(CHECKOP, 0, 1)),
	/* values around the inline limit and overflow runs, replaced and deleted */
	PROGRAM("overflow", 0x00,
	        OP(PUT, 0, 4), 1, VS(4, 0), 5, OP(PUT, 0, 4), 2, VS(4, 1), 6, OP(PUT, 0, 4), 3, VS(5, 0), 7,
	        OP(PUT, 0, 4), 4, VS(6, 3), 8, OP(PUT, 0, 4), 7, VS(7, -2), 9, OP(COMMIT, 0, 0),
	        OP(PUT, 0, 4), 4, VS(1, 0), 10, OP(PUT, 0, 4), 1, VS(7, 5), 11, OP(DEL, 0, 0), 7,
	        OP(COMMIT, 0, 1), OP(CHECKOP, 0, 1)),
	/* a cursor walking while its keys are deleted and replaced */
	PROGRAM("cursor", 0x00,
	        OP(BULK, 0, 0), 0, 40, VS(2, 0), OP(COMMIT, 0, 0), OP(CURSOR, 0, 0), OP(CURSOR, 0, 2),
	        OP(CURSOR_DEL, 0, 0), OP(CURSOR, 0, 2), OP(CURSOR_PUT, 0, 5), 0, VS(3, 0), 4,
	        OP(CURSOR, 0, 6), 100, OP(CURSOR_DEL, 0, 0), OP(CURSOR_DEL, 0, 0), OP(CURSOR, 0, 3),
	        OP(CURSOR, 0, 1), OP(CURSOR, 0, 3), OP(CURSOR, 0, 7), OP(CURSOR_PUT, 0, 3), 50, VS(1, 0), 1,
	        OP(CURSOR, 0, 4), 77, OP(DEL, 0, 0), 77, OP(CURSOR, 0, 2), OP(COMMIT, 0, 1)),
	/* snapshots held across commits, one renewed */
	PROGRAM("snapshots", 0x00,
	        OP(PUT, 0, 0), 5, VS(2, 0), 1, OP(COMMIT, 0, 0), OP(SNAP_BEGIN, 0, 0), OP(PUT, 0, 0), 5,
	        VS(6, 0), 2, OP(PUT, 1, 0), 6, VS(1, 0), 3, OP(COMMIT, 0, 0), OP(SNAP_BEGIN, 0, 1),
	        OP(SNAP_READ, 0, 0), 5, 0, OP(SNAP_READ, 0, 2), 0, 0, OP(DEL, 0, 0), 5, OP(COMMIT, 0, 0),
	        OP(SNAP_READ, 0, 1), 5, 0, OP(SNAP_READ, 1, 6), 0, 0x35, OP(SNAP_BEGIN, 0, 2),
	        OP(SNAP_READ, 0, 4), 0, 0, OP(SNAP_END, 0, 3), OP(SNAP_END, 0, 2)),
	/* reopen in both write modes, with a write transaction open */
	PROGRAM("reopen", 0x01,
	        OP(BULK, 0, 0), 10, 20, VS(3, 0), OP(COMMIT, 0, 0), OP(PUT, 0, 0), 3, VS(1, 0), 0,
	        OP(REOPEN, 0, 3), OP(PUT, 1, 0), 4, VS(5, 0), 1, OP(COMMIT, 0, 0), OP(REOPEN, 0, 1),
	        OP(GET, 0, 0), 3, OP(GET, 1, 0), 4, OP(CHECKOP, 0, 0)),
	/* the named database emptied, deleted, created again, aborted */
	PROGRAM("drop", 0x08,
	        OP(BULK, 1, 0), 0, 30, VS(2, 0), OP(COMMIT, 0, 0), OP(DROP, 1, 0), OP(ABORT, 0, 0),
	        OP(DROP, 1, 1), OP(COMMIT, 0, 0), OP(GET, 1, 0), 4, OP(REOPEN, 0, 2), OP(DROP, 1, 0),
	        OP(PUT, 1, 0), 9, VS(1, 0), 1, OP(COMMIT, 0, 0), OP(DROP, 0, 0), OP(COMMIT, 0, 1),
	        OP(CHECKOP, 0, 1)),
	/* every misuse, then the transaction must still work */
	PROGRAM("misuse", 0x00,
	        OP(PUT, 0, 0), 1, VS(1, 0), 1, OP(MISUSE, 0, 0), OP(MISUSE, 0, 1), OP(MISUSE, 0, 2),
	        OP(MISUSE, 0, 3), OP(MISUSE, 0, 4), OP(MISUSE, 0, 5), OP(MISUSE, 0, 6), OP(MISUSE, 0, 7),
	        OP(MISUSE, 1, 1), OP(PUT, 0, 4), 2, VS(2, 0), 2, OP(COMMIT, 0, 1)),
	/* APPEND in order and out of order, NOOVERWRITE, RESERVE */
	PROGRAM("flags", 0x00,
	        OP(BULK, 0, 2), 0, 63, VS(1, 0), OP(PUT, 0, 2), 0, VS(1, 0), 0, OP(PUT, 0, 1), 5, VS(2, 0), 1,
	        OP(PUT, 0, 5), 200, VS(6, 0), 2, OP(PUT, 0, 7), 201, VS(4, 0), 3, OP(BULK, 0, 3), 0, 63,
	        VS(2, 0), OP(COMMIT, 0, 1), OP(BULK, 1, 2), 0, 20, VS(6, 0), OP(COMMIT, 0, 1)),
	/* many overflow values past a small dirty-page budget: spills */
	PROGRAM("spill", 0x40,
	        OP(BULK, 0, 0), 0, 63, VS(6, 0), OP(BULK, 1, 0), 64, 63, VS(7, 0), OP(BULK, 0, 1), 10, 20, 0,
	        OP(COMMIT, 0, 1), OP(BULK, 0, 0), 128, 63, VS(5, 0), OP(ABORT, 0, 0), OP(CHECKOP, 0, 0)),
	/* compression settings and dictionaries (with MMKV_COMPRESS) */
	PROGRAM("compress", 0x10,
	        OP(BULK, 0, 0), 0, 63, VS(3, 0), OP(BULK, 1, 0), 0, 63, VS(2, 3), OP(DROP, 0, 2), 4, 5,
	        OP(DROP, 0, 6), 0, 0, OP(PUT, 0, 4), 9, VS(5, 0), 3, OP(COMMIT, 0, 1), OP(DROP, 1, 6), 0, 0,
	        OP(PUT, 0, 3), 10, VS(6, 0), 5, OP(SNAP_BEGIN, 0, 0), OP(DROP, 0, 2), 0, 0,
	        OP(BULK, 0, 0), 64, 63, VS(7, 0), OP(COMMIT, 0, 0), OP(SNAP_READ, 0, 2), 0, 0, OP(CHECKOP, 0, 1)),
	/* 16 KiB pages, MMKV_WRITEMAP, reverse keys, the compression bit */
	PROGRAM("writemap-16k-rev", 0x1d,
	        OP(BULK, 1, 0), 0, 63, VS(4, 0), OP(BULK, 0, 0), 0, 63, VS(1, 0), OP(COMMIT, 0, 0),
	        OP(SNAP_BEGIN, 0, 1), OP(BULK, 1, 1), 5, 30, 0, OP(CURSOR, 1, 1), OP(CURSOR, 1, 3),
	        OP(CURSOR_DEL, 1, 0), OP(CURSOR, 1, 2), OP(COMMIT, 0, 0), OP(SNAP_READ, 1, 5), 0, 0,
	        OP(CHECKOP, 0, 1)),
	/* durable syncs and MMKV_VERIFY, 8 KiB pages */
	PROGRAM("sync-verify-8k", 0xa4,
	        OP(PUT, 0, 0), 1, VS(7, 0), 1, OP(COMMIT, 0, 0), OP(PUT, 0, 0), 2, VS(2, 0), 2,
	        OP(COMMIT, 0, 0), OP(REOPEN, 0, 2), OP(GET, 0, 0), 1),
};

static void make_ops(void)
{
	for (size_t i = 0; i < sizeof(programs) / sizeof(programs[0]); i++)
		write_out("ops", programs[i].name, programs[i].bytes, programs[i].len);
}

int main(int argc, char **argv)
{
	char sub[PATH_MAX + 8];
	const char *base = getenv("TMPDIR");

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	for (int i = 0; i < 2; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", outdir, i ? "ops" : "open");
		if (mkdir(outdir, 0755) != 0 && errno != EEXIST)
			break;
		if (mkdir(sub, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "mkcorpus: cannot create %s: %s\n", sub, strerror(errno));
			return 1;
		}
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/mmkv-mkcorpus-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		fprintf(stderr, "mkcorpus: cannot create a temporary directory: %s\n", strerror(errno));
		return 1;
	}
	make_open();
	make_ops();
	rmdir(tmpdir);
	return 0;
}
