/*
 * bench_compress.c - what MMKV_COMPRESS saves and costs, side by side with a
 * plain libmmkv database and with LMDB, in one run. A benchmark: it prints
 * figures and fails only when a store fails.
 *
 * Usage: bench_compress [-r RUNS] DIR [FILE...]
 *
 * Data sets:
 *   packages  the stanzas of the Debian package files given (default:
 *             /var/lib/dpkg/status and /var/lib/apt/lists/\*Packages*,
 *             LZ4-compressed lists read through liblz4's frame decoder);
 *             key "name=version=arch", value the stanza. Real, compressible
 *             text of the kind a cache or configuration store holds.
 *   random    as many values of the same sizes, of random bytes: nothing
 *             to gain, so the cost of trying shows.
 *
 * For each data set and store (libmmkv plain, libmmkv MMKV_COMPRESS, LMDB
 * when built with it) and each of RUNS runs (default 3), in DIR:
 *   write  put every record in file order (not key order) in one write
 *          transaction, commit: MB/s of logical value bytes;
 *   size   bytes of a compacted copy (mmkv_env_copy / mdb_env_copy2 with
 *          compaction), so that growth steps and free pages do not count;
 *   read   get every key in a shuffled order in one read transaction and
 *          sum the value bytes (so that every byte is read): MB/s.
 * The median of the runs is printed, with ratios against plain libmmkv.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>
#include <lz4frame.h>
#include <mmkv.h>
#ifdef HAVE_LMDB
#include <lmdb.h>
#endif

typedef struct record {
	char *key;
	size_t klen;
	char *val;
	size_t vlen;
} record;

typedef struct dataset {
	const char *name;
	record *r;
	size_t n, cap;
	uint64_t bytes; /* value bytes */
} dataset;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_compress: %s: %s\n", what, detail);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("malloc", strerror(ENOMEM));
	return p;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole file, decompressed if it is an LZ4 frame. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 1 << 20, n = 0;
	char *buf = xmalloc(cap);

	if (!f)
		die(path, strerror(errno));
	for (size_t got; (got = fread(buf + n, 1, cap - n, f)) > 0;) {
		n += got;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
		if (!buf)
			die("realloc", strerror(ENOMEM));
	}
	fclose(f);
	if (n >= 4 && memcmp(buf, "\x04\x22\x4d\x18", 4) == 0) {
		LZ4F_dctx *dctx;
		size_t ocap = n * 4, on = 0, in = 0;
		char *out = xmalloc(ocap);
		if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
			die(path, "LZ4F context");
		while (in < n) {
			size_t src = n - in, dst = ocap - on;
			size_t r = LZ4F_decompress(dctx, out + on, &dst, buf + in, &src, NULL);
			if (LZ4F_isError(r))
				die(path, LZ4F_getErrorName(r));
			in += src;
			on += dst;
			if (on == ocap && (out = realloc(out, ocap *= 2)) == NULL)
				die("realloc", strerror(ENOMEM));
			if (r == 0 && src == 0)
				break;
		}
		LZ4F_freeDecompressionContext(dctx);
		free(buf);
		buf = out;
		n = on;
	}
	*len = n;
	return buf;
}

static const char *field(const char *stanza, size_t len, const char *name, size_t *flen)
{
	size_t nl = strlen(name);

	for (const char *p = stanza; p < stanza + len;) {
		const char *eol = memchr(p, '\n', (size_t)(stanza + len - p));
		if (!eol)
			eol = stanza + len;
		if ((size_t)(eol - p) > nl && memcmp(p, name, nl) == 0) {
			*flen = (size_t)(eol - p) - nl;
			return p + nl;
		}
		p = eol + 1;
	}
	*flen = 0;
	return "";
}

static void add(dataset *d, char *key, size_t klen, char *val, size_t vlen)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 4096;
		d->r = realloc(d->r, d->cap * sizeof(*d->r));
		if (!d->r)
			die("realloc", strerror(ENOMEM));
	}
	d->r[d->n++] = (record){ key, klen, val, vlen };
	d->bytes += vlen;
}

/* Stanzas of one package file. The text is kept: values point into it. */
static void load_packages(dataset *d, const char *path)
{
	size_t len;
	char *text = slurp(path, &len);

	for (char *p = text; p < text + len;) {
		char *end = memmem(p, (size_t)(text + len - p), "\n\n", 2);
		size_t slen = end ? (size_t)(end - p) + 1 : (size_t)(text + len - p);
		size_t nl, vl, al;
		const char *name = field(p, slen, "Package: ", &nl);
		const char *ver = field(p, slen, "Version: ", &vl);
		const char *arch = field(p, slen, "Architecture: ", &al);
		if (nl) {
			char *key = xmalloc(nl + vl + al + 3);
			int kl = sprintf(key, "%.*s=%.*s=%.*s", (int)nl, name, (int)vl, ver, (int)al, arch);
			if (kl > 0 && kl < 500)
				add(d, key, (size_t)kl, p, slen);
		}
		p += slen + 1;
	}
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Random values of the packages' sizes, under the packages' keys. */
static void make_random(dataset *d, const dataset *like)
{
	for (size_t i = 0; i < like->n; i++) {
		char *v = xmalloc(like->r[i].vlen);
		for (size_t j = 0; j < like->r[i].vlen; j++)
			v[j] = (char)rng();
		add(d, like->r[i].key, like->r[i].klen, v, like->r[i].vlen);
	}
}

/* ------------------------------------------------------------- stores */

typedef struct result {
	double write_mbs, read_mbs;
	uint64_t size;
} result;

enum store { PLAIN, COMPRESSED, LMDB, NSTORES };
static const char *const store_names[] = { "libmmkv", "libmmkv+lz4", "LMDB" };

#define CHECK(call)                                                                  \
	do {                                                                         \
		int rc_ = (call);                                                    \
		if (rc_)                                                             \
			die(#call, mmkv_strerror(rc_));                              \
	} while (0)

static uint64_t file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		die(path, strerror(errno));
	return (uint64_t)st.st_size;
}

static void remove_db(const char *path)
{
	char lock[4300];
	snprintf(lock, sizeof(lock), "%s-lock", path);
	unlink(path);
	unlink(lock);
}

static result run_mmkv(const dataset *d, const size_t *order, const char *dir, bool compress)
{
	char path[4096], copy[4200];
	mmkv_env *env;
	mmkv_txn *txn;
	mmkv_dbi dbi;
	result r;
	double t;
	uint64_t sum = 0;

	snprintf(path, sizeof(path), "%s/bench.mmkv", dir);
	snprintf(copy, sizeof(copy), "%s/bench-copy.mmkv", dir);
	remove_db(path);
	remove_db(copy);
	CHECK(mmkv_env_create(&env));
	CHECK(mmkv_env_open(env, path, MMKV_NOSYNC, 0644));

	t = now();
	CHECK(mmkv_txn_begin(env, NULL, 0, &txn));
	CHECK(mmkv_dbi_open(txn, NULL, compress ? MMKV_COMPRESS : 0, &dbi));
	for (size_t i = 0; i < d->n; i++) {
		mmkv_val k = { d->r[i].klen, d->r[i].key }, v = { d->r[i].vlen, d->r[i].val };
		CHECK(mmkv_put(txn, dbi, &k, &v, 0));
	}
	CHECK(mmkv_txn_commit(txn));
	r.write_mbs = (double)d->bytes / 1e6 / (now() - t);

	CHECK(mmkv_env_copy(env, copy, MMKV_CP_COMPACT));
	r.size = file_size(copy);

	CHECK(mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn));
	t = now();
	for (size_t i = 0; i < d->n; i++) {
		const record *rec = &d->r[order[i]];
		mmkv_val k = { rec->klen, rec->key }, v;
		CHECK(mmkv_get(txn, dbi, &k, &v));
		for (size_t j = 0; j < v.size; j += 64)
			sum += ((const unsigned char *)v.data)[j];
		/* Compressed values live until the transaction ends: renew
		 * it now and then, as a long scan in a real program would. */
		if (i % 1024 == 1023) {
			mmkv_txn_reset(txn);
			CHECK(mmkv_txn_renew(txn));
		}
	}
	r.read_mbs = (double)d->bytes / 1e6 / (now() - t);
	mmkv_txn_abort(txn);
	mmkv_env_close(env);
	remove_db(path);
	remove_db(copy);
	if (sum == 42)
		putchar(' '); /* keep the reads */
	return r;
}

#ifdef HAVE_LMDB
#define LCHECK(call)                                                                 \
	do {                                                                         \
		int rc_ = (call);                                                    \
		if (rc_)                                                             \
			die(#call, mdb_strerror(rc_));                               \
	} while (0)

static result run_lmdb(const dataset *d, const size_t *order, const char *dir)
{
	char path[4096], copy[4200];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	result r;
	double t;
	uint64_t sum = 0;

	snprintf(path, sizeof(path), "%s/bench.mdb", dir);
	snprintf(copy, sizeof(copy), "%s/bench-copy.mdb", dir);
	remove_db(path);
	remove_db(copy);
	LCHECK(mdb_env_create(&env));
	LCHECK(mdb_env_set_mapsize(env, (size_t)d->bytes * 4 + (256u << 20)));
	LCHECK(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOSYNC, 0644));

	t = now();
	LCHECK(mdb_txn_begin(env, NULL, 0, &txn));
	LCHECK(mdb_dbi_open(txn, NULL, 0, &dbi));
	for (size_t i = 0; i < d->n; i++) {
		MDB_val k = { d->r[i].klen, d->r[i].key }, v = { d->r[i].vlen, d->r[i].val };
		LCHECK(mdb_put(txn, dbi, &k, &v, 0));
	}
	LCHECK(mdb_txn_commit(txn));
	r.write_mbs = (double)d->bytes / 1e6 / (now() - t);

	LCHECK(mdb_env_copy2(env, copy, MDB_CP_COMPACT));
	r.size = file_size(copy);

	LCHECK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
	t = now();
	for (size_t i = 0; i < d->n; i++) {
		const record *rec = &d->r[order[i]];
		MDB_val k = { rec->klen, rec->key }, v;
		LCHECK(mdb_get(txn, dbi, &k, &v));
		for (size_t j = 0; j < v.mv_size; j += 64)
			sum += ((const unsigned char *)v.mv_data)[j];
		if (i % 1024 == 1023) {
			mdb_txn_reset(txn);
			LCHECK(mdb_txn_renew(txn));
		}
	}
	r.read_mbs = (double)d->bytes / 1e6 / (now() - t);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	remove_db(path);
	remove_db(copy);
	if (sum == 42)
		putchar(' ');
	return r;
}
#endif

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bench(const dataset *d, const char *dir, int runs)
{
	size_t *order = xmalloc(d->n * sizeof(*order));
	double w[NSTORES][16], rd[NSTORES][16], sz[NSTORES][16];
	result med[NSTORES];
	int nstores = 2;

	for (size_t i = 0; i < d->n; i++)
		order[i] = i;
	for (size_t i = d->n; i > 1; i--) {
		size_t j = (size_t)(rng() % i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
#ifdef HAVE_LMDB
	nstores = 3;
#endif
	/* Runs interleave the stores, so that drift of the machine hits all. */
	for (int run = 0; run < runs; run++) {
		for (int s = 0; s < nstores; s++) {
			result r;
#ifdef HAVE_LMDB
			if (s == LMDB)
				r = run_lmdb(d, order, dir);
			else
#endif
				r = run_mmkv(d, order, dir, s == COMPRESSED);
			w[s][run] = r.write_mbs;
			rd[s][run] = r.read_mbs;
			sz[s][run] = (double)r.size;
		}
	}
	printf("\n%s: %zu records, %.1f MB of values (median of %d runs)\n", d->name, d->n,
	       (double)d->bytes / 1e6, runs);
	printf("  %-12s %12s %8s %10s %8s %10s %8s\n", "store", "file bytes", "x plain", "write MB/s",
	       "x plain", "read MB/s", "x plain");
	for (int s = 0; s < nstores; s++) {
		med[s].size = (uint64_t)median(sz[s], runs);
		med[s].write_mbs = median(w[s], runs);
		med[s].read_mbs = median(rd[s], runs);
	}
	for (int s = 0; s < nstores; s++)
		printf("  %-12s %12" PRIu64 " %8.2f %10.1f %8.2f %10.1f %8.2f\n", store_names[s], med[s].size,
		       (double)med[s].size / (double)med[PLAIN].size, med[s].write_mbs,
		       med[s].write_mbs / med[PLAIN].write_mbs, med[s].read_mbs,
		       med[s].read_mbs / med[PLAIN].read_mbs);
	printf("  compressed file is %.2fx smaller than plain", (double)med[PLAIN].size / (double)med[COMPRESSED].size);
#ifdef HAVE_LMDB
	printf(", %.2fx smaller than LMDB", (double)med[LMDB].size / (double)med[COMPRESSED].size);
#endif
	printf("; compressed reads take %.2fx the time of plain ones\n", med[PLAIN].read_mbs / med[COMPRESSED].read_mbs);
	free(order);
}

int main(int argc, char **argv)
{
	dataset pk = { "packages", NULL, 0, 0, 0 }, rnd = { "random", NULL, 0, 0, 0 };
	int runs = 3, opt;

	while ((opt = getopt(argc, argv, "r:")) != -1) {
		if (opt != 'r' || (runs = atoi(optarg)) < 1 || runs > 16) {
			fprintf(stderr, "usage: bench_compress [-r RUNS (1-16)] DIR [FILE...]\n");
			return 1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: bench_compress [-r RUNS (1-16)] DIR [FILE...]\n");
		return 1;
	}
	const char *dir = argv[optind++];
	if (optind < argc) {
		for (; optind < argc; optind++)
			load_packages(&pk, argv[optind]);
	} else {
		glob_t g;
		load_packages(&pk, "/var/lib/dpkg/status");
		if (glob("/var/lib/apt/lists/*_Packages*", 0, NULL, &g) == 0) {
			for (size_t i = 0; i < g.gl_pathc; i++)
				if (!strstr(g.gl_pathv[i], ".diff"))
					load_packages(&pk, g.gl_pathv[i]);
			globfree(&g);
		}
	}
	if (pk.n == 0)
		die("no package stanzas found", "give package files, or run apt-get update");
	make_random(&rnd, &pk);
	printf("%s, LZ4 %s", mmkv_version(NULL, NULL, NULL), LZ4_versionString());
#ifdef HAVE_LMDB
	printf(", %s", mdb_version(NULL, NULL, NULL));
#endif
	printf("\n");
	bench(&pk, dir, runs);
	bench(&rnd, dir, runs);
	return 0;
}
