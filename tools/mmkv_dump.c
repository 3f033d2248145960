/*
 * mmkv_dump.c - write the records of a libmmkv database as text in the format
 * of LMDB's mdb_dump (described in mmkv_dump(1)), so that mmkv_load or LMDB's
 * mdb_load can read them back.
 *
 * Invariants:
 *  1. Everything one run writes comes from one read transaction, so a dump of
 *     several databases (-a) is a single consistent snapshot.
 *  2. The output is whole or the run fails: every write error, including one
 *     found only when the output is closed, makes the exit status 1.
 *  3. mapsize= is at least twice the space the database's pages take, rounded
 *     up to a MiB: LMDB's mdb_load takes that header as its map size, and
 *     libmmkv's own limit (1 TiB by default) would be absurd there.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mmkv.h>

#include "toolutil.h"

enum { MIB = 1 << 20 };

typedef struct dumper {
	FILE *out;
	const char *outname;  /* for messages */
	bool print;           /* -p: printable format, else bytevalue */
	uint64_t mapsize;     /* the mapsize= header */
	uint32_t maxreaders;
	uint64_t records;     /* written so far, for the progress line */
	tool_progress progress;
} dumper;

static void usage(FILE *to)
{
	fprintf(to,
	        "usage: %s [-a | -s NAME] [-p] [-n] [-f FILE] [-l] [-V] [--help] PATH\n"
	        "  -a       dump the default database (if it has records) and every named one\n"
	        "  -s NAME  dump the named database NAME instead of the default one\n"
	        "  -p       printable format (default: hexadecimal bytevalue)\n"
	        "  -n       accepted for LMDB compatibility: PATH is always the data file\n"
	        "  -f FILE  write to FILE instead of standard output\n"
	        "  -l       list the named databases\n"
	        "  -V       print the version and exit\n",
	        tool_name());
}

static const char hexdigits[] = "0123456789abcdef";

/* One key or value line: a space, the bytes encoded, a newline. Encoded
 * through a small buffer so large values cost few stdio calls. */
static void put_line(dumper *d, const mmkv_val *v)
{
	const unsigned char *p = v->data;
	char buf[8192];
	size_t n = 0;

	buf[n++] = ' ';
	for (size_t i = 0; i < v->size; i++) {
		unsigned char c = p[i];

		if (n > sizeof(buf) - 4) {
			fwrite(buf, 1, n, d->out);
			n = 0;
		}
		if (!d->print) {
			buf[n++] = hexdigits[c >> 4];
			buf[n++] = hexdigits[c & 15];
		} else if (c == '\\') {
			buf[n++] = '\\';
			buf[n++] = '\\';
		} else if (c >= 0x20 && c <= 0x7e) {
			buf[n++] = (char)c;
		} else {
			buf[n++] = '\\';
			buf[n++] = hexdigits[c >> 4];
			buf[n++] = hexdigits[c & 15];
		}
	}
	buf[n++] = '\n';
	fwrite(buf, 1, n, d->out);
}

/* One block: header, records in key order, DATA=END. name NULL is the
 * default database (no database= line). */
static int dump_db(dumper *d, mmkv_txn *txn, mmkv_dbi dbi, const char *name)
{
	mmkv_cursor *cur;
	mmkv_val key, val;
	mmkv_stat st;
	unsigned int flags;
	int rc;

	if ((rc = mmkv_dbi_flags(txn, dbi, &flags)) != 0 || (rc = mmkv_dbi_stat(txn, dbi, &st)) != 0)
		return rc;
	fprintf(d->out, "VERSION=3\nformat=%s\n", d->print ? "print" : "bytevalue");
	if (name)
		fprintf(d->out, "database=%s\n", name);
	fprintf(d->out, "type=btree\nmapsize=%llu\nmaxreaders=%u\n", (unsigned long long)d->mapsize,
	        d->maxreaders);
	/* LMDB's order of flag lines; libmmkv has only these two of them. */
	if (flags & MMKV_REVERSEKEY)
		fputs("reversekey=1\n", d->out);
	if (flags & MMKV_INTEGERKEY)
		fputs("integerkey=1\n", d->out);
	fprintf(d->out, "db_pagesize=%u\n", st.page_size);
	/* libmmkv's extension line: LMDB's loader warns and goes on. */
	if (flags & MMKV_COMPRESS)
		fputs("compress=lz4\n", d->out);
	fputs("HEADER=END\n", d->out);

	if ((rc = mmkv_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	while ((rc = mmkv_cursor_get(cur, &key, &val, MMKV_NEXT)) == 0) {
		put_line(d, &key);
		put_line(d, &val);
		tool_progress_update(&d->progress, ++d->records);
		if (ferror(d->out))
			break; /* the caller reports it */
	}
	mmkv_cursor_close(cur);
	if (rc != MMKV_NOTFOUND && rc != 0)
		return rc;
	fputs("DATA=END\n", d->out);
	return 0;
}

/* The named databases of the snapshot, collected by mmkv_dbi_list. */
typedef struct name_list {
	char **names;
	size_t n, cap;
} name_list;

static int collect_name(void *ctx, const mmkv_val *name)
{
	name_list *l = ctx;
	char *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **grown = realloc(l->names, cap * sizeof(*grown));

		if (!grown)
			return ENOMEM;
		l->names = grown;
		l->cap = cap;
	}
	if (!(copy = malloc(name->size + 1)))
		return ENOMEM;
	memcpy(copy, name->data, name->size);
	copy[name->size] = '\0';
	l->names[l->n++] = copy;
	return 0;
}

static void free_names(name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *subname = NULL, *outfile = NULL, *path;
	bool all = false, list = false;
	dumper d = { .out = stdout, .outname = "standard output" };
	mmkv_env *env = NULL;
	mmkv_txn *txn = NULL;
	mmkv_envinfo info;
	name_list names = { 0 };
	mmkv_dbi dbi;
	int opt, rc, status = 1;
	const char *failed_file;

	tool_init(argv[0]);
	while ((opt = getopt_long(argc, argv, "as:pnf:lV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a': all = true; break;
		case 's': subname = optarg; break;
		case 'p': d.print = true; break;
		case 'n': break; /* libmmkv always names the data file itself */
		case 'f': outfile = optarg; break;
		case 'l': list = true; break;
		case 'V': tool_print_version(); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc - 1 || (all && subname)) {
		usage(stderr);
		return 1;
	}
	path = argv[optind];
	failed_file = path;

	if ((rc = mmkv_env_create(&env)) != 0 ||
	    (rc = mmkv_env_set_maxdbs(env, all ? TOOL_MAXDBS : 1)) != 0 ||
	    (rc = mmkv_env_open(env, path, MMKV_RDONLY, 0)) != 0 ||
	    (rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn)) != 0)
		goto out;
	/* mmkv_env_info describes the newest snapshot, which is at least as
	 * large as ours: a safe upper bound for the mapsize hint. */
	if ((rc = mmkv_env_info(env, &info)) != 0)
		goto out;
	d.mapsize = (2 * info.last_pgno * info.page_size + MIB - 1) / MIB * MIB;
	d.maxreaders = info.max_readers;

	if (list || all) {
		if ((rc = mmkv_dbi_list(txn, collect_name, &names)) != 0)
			goto out;
		for (size_t i = 0; i < names.n; i++) {
			/* A newline would end the database= line early. */
			if (!list && strchr(names.names[i], '\n')) {
				tool_err(path, "database name with a newline cannot be dumped");
				goto fail;
			}
		}
	}
	if (outfile && !list) {
		if (!(d.out = fopen(outfile, "w"))) {
			rc = errno;
			failed_file = outfile;
			goto out;
		}
		d.outname = outfile;
		tool_progress_start(&d.progress, "dumped");
	}
	failed_file = path;
	if (list) {
		for (size_t i = 0; i < names.n; i++)
			fprintf(d.out, "%s\n", names.names[i]);
	} else if (all) {
		mmkv_stat st;

		if ((rc = mmkv_dbi_open(txn, NULL, 0, &dbi)) != 0 || (rc = mmkv_dbi_stat(txn, dbi, &st)) != 0)
			goto out;
		if (st.entries && (rc = dump_db(&d, txn, dbi, NULL)) != 0)
			goto out;
		for (size_t i = 0; i < names.n && !ferror(d.out); i++) {
			if ((rc = mmkv_dbi_open(txn, names.names[i], 0, &dbi)) != 0 ||
			    (rc = dump_db(&d, txn, dbi, names.names[i])) != 0)
				goto out;
		}
	} else {
		if ((rc = mmkv_dbi_open(txn, subname, 0, &dbi)) != 0 ||
		    (rc = dump_db(&d, txn, dbi, subname)) != 0)
			goto out;
	}
	/* Write errors: stdio keeps the first in the stream's error flag and
	 * errno; a full disk may show only when the buffer is flushed. */
	failed_file = d.outname;
	errno = 0;
	if (fflush(d.out) != 0 || ferror(d.out))
		rc = errno ? errno : EIO;
	if (d.out != stdout && fclose(d.out) != 0 && rc == 0)
		rc = errno ? errno : EIO;
	d.out = stdout;

out:
	if (rc) {
		if (subname && rc == MMKV_NOTFOUND && failed_file == path)
			tool_err(path, "no database named \"%s\"", subname);
		else
			tool_err(failed_file, "%s", mmkv_strerror(rc));
	} else {
		status = 0;
	}
fail:
	tool_progress_end(&d.progress);
	if (d.out != stdout)
		fclose(d.out);
	mmkv_txn_abort(txn);
	mmkv_env_close(env);
	free_names(&names);
	return status;
}
