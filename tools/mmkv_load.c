/*
 * mmkv_load.c - read the text written by mmkv_dump or LMDB's mdb_dump (format
 * in mmkv_load(1)) and store its records in a libmmkv database.
 *
 * Invariants:
 *  1. The whole load is one write transaction: any error (a malformed line,
 *     a failed put, a failed commit) aborts it, and the database is exactly
 *     as it was before the run.
 *  2. Memory is bounded by the longest line, not by the input: the input is
 *     read one line at a time, and the engine spills the dirty pages of the
 *     large transaction to the file.
 *  3. Every message about the input names its line number.
 *
 * A run: read the first block's header (its db_pagesize= chooses the page
 * size of a file the load creates), open the environment and begin the write
 * transaction, then for each block open (creating) its database and put its
 * records until DATA=END; at the end of the input, commit.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <mmkv.h>

#include "toolutil.h"

/* One line of input, without its newline; the buffer grows with getline. */
typedef struct line {
	char *buf;
	size_t cap;
	size_t len;
} line;

/* What a block's header says. */
typedef struct header {
	bool print;           /* format=print, else bytevalue */
	char *dbname;         /* database=, or NULL */
	unsigned int flags;   /* MMKV_INTEGERKEY, MMKV_REVERSEKEY, MMKV_COMPRESS */
	unsigned int pagesize; /* db_pagesize=, 0 when absent */
} header;

typedef struct loader {
	FILE *in;
	const char *inname;   /* for messages */
	uint64_t lineno;      /* of the line read last */
	line key, val;
	unsigned int putflags; /* MMKV_NOOVERWRITE, MMKV_APPEND */
	unsigned int dbflags;  /* added to every database opened (-z: MMKV_COMPRESS) */
	bool compressed;       /* the current database compresses its values */
	unsigned char *vbuf;   /* decoded value, for compressed databases */
	size_t vcap;
	uint64_t records;
	tool_progress progress;
} loader;

static void usage(FILE *to)
{
	fprintf(to,
	        "usage: %s [-f FILE] [-s NAME] [-N] [-T] [-n] [-a] [-z] [-V] [--help] PATH\n"
	        "  -f FILE  read FILE instead of standard input\n"
	        "  -s NAME  load into the named database NAME (when the input has no database=)\n"
	        "  -N       do not overwrite keys that exist already\n"
	        "  -T       plain text input: key and value lines in print format, no header\n"
	        "  -n       accepted for LMDB compatibility: PATH is always the data file\n"
	        "  -a       append: the input is in key order (fastest)\n"
	        "  -z       compress the values of every database loaded (LZ4), as compress=lz4 does\n"
	        "  -V       print the version and exit\n",
	        tool_name());
}

/* "PROG: FILE:LINE: message" */
static void line_err(const loader *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_err(const loader *l, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s:%llu: ", tool_name(), l->inname, (unsigned long long)l->lineno);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Read the next line into ln. Returns 1, 0 at the end of the input, or -1
 * after reporting a read error. */
static int read_line(loader *l, line *ln)
{
	ssize_t n = getline(&ln->buf, &ln->cap, l->in);

	if (n < 0) {
		if (ferror(l->in)) {
			tool_err(l->inname, "%s", mmkv_strerror(errno ? errno : EIO));
			return -1;
		}
		return 0;
	}
	l->lineno++;
	ln->len = (size_t)n;
	if (ln->len && ln->buf[ln->len - 1] == '\n')
		ln->buf[--ln->len] = '\0';
	return 1;
}

static bool line_is(const line *ln, const char *s)
{
	return ln->len == strlen(s) && memcmp(ln->buf, s, ln->len) == 0;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s[0..n) into out, which may be NULL to only validate; *outlen gets
 * the decoded size. Returns NULL, or what is wrong with the text. */
static const char *decode(const char *s, size_t n, bool print, unsigned char *out, size_t *outlen)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (!print) {
		if (n % 2)
			return "odd number of hex digits";
		for (size_t i = 0; i < n; i += 2) {
			int hi = hexval(p[i]), lo = hexval(p[i + 1]);

			if (hi < 0 || lo < 0)
				return "bad hex digit";
			if (out)
				out[o] = (unsigned char)(hi << 4 | lo);
			o++;
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			unsigned char c = p[i];

			if (c == '\\') {
				int hi, lo;

				if (i + 1 < n && p[i + 1] == '\\') {
					i++;
				} else {
					if (i + 2 >= n || (hi = hexval(p[i + 1])) < 0 || (lo = hexval(p[i + 2])) < 0)
						return "bad escape (a backslash must be followed by a backslash or two hex digits)";
					c = (unsigned char)(hi << 4 | lo);
					i += 2;
				}
			}
			if (out)
				out[o] = c;
			o++;
		}
	}
	*outlen = o;
	return NULL;
}

/* Parse a decimal header value. */
static bool parse_uint(const char *s, unsigned long long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

/* Read one block's header up to HEADER=END into h (cleared first). Returns 1,
 * 0 when the input ends before a header begins, -1 after reporting an error. */
static int read_header(loader *l, header *h)
{
	/* LMDB's flag lines; only the first two exist in libmmkv. */
	static const struct {
		const char *name;
		unsigned int flag;
	} flag_keys[] = {
		{ "reversekey", MMKV_REVERSEKEY }, { "integerkey", MMKV_INTEGERKEY },
		{ "duplicates", 0 }, { "dupsort", 0 }, { "dupfixed", 0 }, { "integerdup", 0 }, { "reversedup", 0 },
	};
	line *ln = &l->key;
	bool first = true;
	int rc;

	free(h->dbname);
	memset(h, 0, sizeof(*h));
	while ((rc = read_line(l, ln)) == 1) {
		unsigned long long num;
		char *value, *eq;
		size_t k;

		first = false;
		if (line_is(ln, "HEADER=END"))
			return 1;
		if (memchr(ln->buf, '\0', ln->len) || !(eq = strchr(ln->buf, '='))) {
			line_err(l, "not a header line (KEY=VALUE expected)");
			return -1;
		}
		*eq = '\0';
		value = eq + 1;
		if (strcmp(ln->buf, "VERSION") == 0) {
			if (!parse_uint(value, &num) || num > 3) {
				line_err(l, "unsupported VERSION=%s (3 at most)", value);
				return -1;
			}
		} else if (strcmp(ln->buf, "format") == 0) {
			if (strcmp(value, "print") == 0) {
				h->print = true;
			} else if (strcmp(value, "bytevalue") == 0) {
				h->print = false;
			} else {
				line_err(l, "unsupported format=%s (print or bytevalue)", value);
				return -1;
			}
		} else if (strcmp(ln->buf, "type") == 0) {
			if (strcmp(value, "btree") != 0) {
				line_err(l, "unsupported type=%s (btree only)", value);
				return -1;
			}
		} else if (strcmp(ln->buf, "database") == 0) {
			free(h->dbname);
			if (!(h->dbname = strdup(value))) {
				tool_err(NULL, "%s", mmkv_strerror(ENOMEM));
				return -1;
			}
		} else if (strcmp(ln->buf, "db_pagesize") == 0) {
			if (!parse_uint(value, &num) || num > UINT32_MAX) {
				line_err(l, "bad db_pagesize=%s", value);
				return -1;
			}
			h->pagesize = (unsigned int)num;
		} else if (strcmp(ln->buf, "compress") == 0) {
			/* libmmkv's extension line (LMDB's loader skips it). */
			if (strcmp(value, "lz4") == 0) {
				h->flags |= MMKV_COMPRESS;
			} else if (strcmp(value, "none") != 0) {
				line_err(l, "unsupported compress=%s (lz4 or none)", value);
				return -1;
			}
		} else if (strcmp(ln->buf, "mapsize") == 0 || strcmp(ln->buf, "maxreaders") == 0) {
			/* Hints for LMDB; libmmkv's file grows and its reader
			 * table is sized by whoever opens it first. */
		} else {
			for (k = 0; k < sizeof(flag_keys) / sizeof(flag_keys[0]); k++)
				if (strcmp(ln->buf, flag_keys[k].name) == 0)
					break;
			if (k == sizeof(flag_keys) / sizeof(flag_keys[0])) {
				fprintf(stderr, "%s: %s:%llu: unknown header key ignored: %s\n", tool_name(),
				        l->inname, (unsigned long long)l->lineno, ln->buf);
				continue;
			}
			if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0) {
				line_err(l, "bad flag value %s=%s (0 or 1)", ln->buf, value);
				return -1;
			}
			if (value[0] == '1') {
				if (!flag_keys[k].flag) {
					line_err(l, "%s=1: libmmkv has no sorted-duplicate databases", ln->buf);
					return -1;
				}
				h->flags |= flag_keys[k].flag;
			}
		}
	}
	if (rc == 0 && !first) {
		line_err(l, "end of input inside a header (no HEADER=END)");
		return -1;
	}
	return rc;
}

/* Store one record: key and value are the raw lines (leading space already
 * skipped). The value is validated first and then decoded straight into the
 * space MMKV_RESERVE gives it, so a large value is never copied twice;
 * except in a compressed database, where a reserved value would be stored
 * uncompressed: there it is decoded into a buffer and put from there. */
static int put_record(loader *l, mmkv_txn *txn, mmkv_dbi dbi, bool print, char *k, size_t klen,
                      const char *v, size_t vlen, uint64_t keyline)
{
	const char *bad;
	mmkv_val key, val;
	size_t n;
	int rc;

	if ((bad = decode(k, klen, print, (unsigned char *)k, &n)) != NULL) {
		l->lineno = keyline;
		line_err(l, "%s", bad);
		return -1;
	}
	key.data = k;
	key.size = n;
	if ((bad = decode(v, vlen, print, NULL, &n)) != NULL) {
		line_err(l, "%s", bad);
		return -1;
	}
	val.size = n;
	if (l->compressed) {
		if (n > l->vcap) {
			unsigned char *b = realloc(l->vbuf, n);
			if (!b) {
				tool_err(NULL, "%s", mmkv_strerror(ENOMEM));
				return -1;
			}
			l->vbuf = b;
			l->vcap = n;
		}
		decode(v, vlen, print, l->vbuf, &n);
		val.data = l->vbuf;
		rc = mmkv_put(txn, dbi, &key, &val, l->putflags);
	} else {
		rc = mmkv_put(txn, dbi, &key, &val, l->putflags | MMKV_RESERVE);
	}
	if (rc == MMKV_KEYEXIST && (l->putflags & MMKV_NOOVERWRITE))
		return 0;
	if (rc) {
		l->lineno = keyline;
		if (rc == MMKV_KEYEXIST)
			line_err(l, "key out of order (-a needs the input in key order)");
		else
			line_err(l, "%s", mmkv_strerror(rc));
		return -1;
	}
	if (!l->compressed)
		decode(v, vlen, print, val.data, &n);
	tool_progress_update(&l->progress, ++l->records);
	return 0;
}

/* Records of one block, up to DATA=END. */
static int load_block(loader *l, mmkv_txn *txn, mmkv_dbi dbi, bool print)
{
	int rc;

	for (;;) {
		uint64_t keyline;

		if ((rc = read_line(l, &l->key)) <= 0) {
			if (rc == 0)
				line_err(l, "end of input before DATA=END");
			return -1;
		}
		if (line_is(&l->key, "DATA=END"))
			return 0;
		if (l->key.buf[0] != ' ') {
			line_err(l, "missing leading space");
			return -1;
		}
		keyline = l->lineno;
		if ((rc = read_line(l, &l->val)) <= 0 || line_is(&l->val, "DATA=END")) {
			if (rc >= 0)
				line_err(l, "key without a value");
			return -1;
		}
		if (l->val.buf[0] != ' ') {
			line_err(l, "missing leading space");
			return -1;
		}
		if (put_record(l, txn, dbi, print, l->key.buf + 1, l->key.len - 1, l->val.buf + 1,
		               l->val.len - 1, keyline) != 0)
			return -1;
	}
}

/* -T: alternating key and value lines in print format, up to the end. */
static int load_text(loader *l, mmkv_txn *txn, mmkv_dbi dbi)
{
	int rc;

	while ((rc = read_line(l, &l->key)) == 1) {
		uint64_t keyline = l->lineno;

		if ((rc = read_line(l, &l->val)) <= 0) {
			if (rc == 0)
				line_err(l, "key without a value");
			return -1;
		}
		if (put_record(l, txn, dbi, true, l->key.buf, l->key.len, l->val.buf, l->val.len,
		               keyline) != 0)
			return -1;
	}
	return rc;
}

/* Open (creating) the database a block goes to. */
static int open_db(loader *l, mmkv_txn *txn, const char *name, unsigned int flags, mmkv_dbi *dbi)
{
	unsigned int have = 0;
	int rc = mmkv_dbi_open(txn, name, MMKV_CREATE | flags | l->dbflags, dbi);

	if (rc == 0)
		rc = mmkv_dbi_flags(txn, *dbi, &have);
	l->compressed = (have & MMKV_COMPRESS) != 0;
	if (rc) {
		if (name)
			line_err(l, "database \"%s\": %s", name, mmkv_strerror(rc));
		else
			line_err(l, "default database: %s", mmkv_strerror(rc));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *infile = NULL, *subname = NULL, *path;
	bool text = false;
	loader l = { .in = stdin, .inname = "stdin" };
	header h = { 0 };
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	mmkv_dbi dbi;
	int opt, rc, more = 0, status = 1;

	tool_init(argv[0]);
	while ((opt = getopt_long(argc, argv, "f:s:NTnazV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': infile = optarg; break;
		case 's': subname = optarg; break;
		case 'N': l.putflags |= MMKV_NOOVERWRITE; break;
		case 'T': text = true; break;
		case 'n': break; /* libmmkv always names the data file itself */
		case 'a': l.putflags |= MMKV_APPEND; break;
		case 'z': l.dbflags |= MMKV_COMPRESS; break;
		case 'V': tool_print_version(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 1;
	}
	path = argv[optind];
	if (infile && !(l.in = fopen(infile, "r"))) {
		tool_err(infile, "%s", mmkv_strerror(errno));
		return 1;
	}
	if (infile)
		l.inname = infile;

	if (!text && (more = read_header(&l, &h)) < 0)
		goto out;
	if ((rc = mmkv_env_create(&env)) != 0 || (rc = mmkv_env_set_maxdbs(env, TOOL_MAXDBS)) != 0)
		goto env_failed;
	/* A hint like mapsize=: a size libmmkv cannot use leaves the default. */
	if (h.pagesize && mmkv_env_set_pagesize(env, h.pagesize) != 0)
		fprintf(stderr, "%s: %s: db_pagesize=%u not supported, default page size used\n",
		        tool_name(), l.inname, h.pagesize);
	if ((rc = mmkv_env_open(env, path, 0, 0)) != 0 ||
	    (rc = mmkv_txn_begin(env, NULL, 0, &txn)) != 0)
		goto env_failed;
	tool_progress_start(&l.progress, "loaded");

	if (text) {
		if (open_db(&l, txn, subname, 0, &dbi) != 0 || load_text(&l, txn, dbi) != 0)
			goto out;
	}
	while (more == 1) {
		if (open_db(&l, txn, h.dbname ? h.dbname : subname, h.flags, &dbi) != 0 ||
		    load_block(&l, txn, dbi, h.print) != 0 || (more = read_header(&l, &h)) < 0)
			goto out;
	}
	rc = mmkv_txn_commit(txn);
	txn = NULL;
	if (rc)
		goto env_failed;
	status = 0;
	goto out;

env_failed:
	tool_err(path, "%s", mmkv_strerror(rc));
out:
	tool_progress_end(&l.progress);
	mmkv_txn_abort(txn);
	mmkv_env_close(env);
	if (l.in != stdin)
		fclose(l.in);
	free(h.dbname);
	free(l.key.buf);
	free(l.val.buf);
	free(l.vbuf);
	return status;
}
