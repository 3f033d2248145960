/*
 * check.c - mmkv_env_check: verify a snapshot page by page.
 *
 * Walks, in a read transaction, the catalog, the default database, every
 * named database and the free tree, and checks:
 *  1. every page: number in range, header, checksum, kind at its depth,
 *     writer txnid not newer than the snapshot;
 *  2. every node within its page, the nodes tiling the node area without
 *     overlap or hole, keys in order within the page and within the bounds
 *     set by the parent's separators, branch node 0 key empty;
 *  3. overflow runs: kind, length matching the value, checksum;
 *  4. db records: entries and page counts match what was walked;
 *  4a. compressed values: only in databases with compression, and each
 *     decodes (with the dictionary it names) to exactly its original size;
 *     dictionary records are well formed;
 *  5. accounting: each page number below npages is a meta page, reachable
 *     exactly once, or listed exactly once in the free tree.
 * Each problem is reported with the page it concerns; the walk goes on so
 * that one run lists as much as it can.
 */
#include "page.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct checker {
	mmkv_txn *txn;
	uint32_t psize;
	uint64_t npages;
	uint8_t *seen; /* bitmap of pages accounted for */
	uint8_t *cover; /* bitmap of the bytes of one page that its nodes use */
	mmkv_check_func *report;
	void *ctx;
	mmkv_check_result res;
	unsigned char *vbuf; /* decompressed values, checked and dropped */
	size_t vcap;
} checker;

typedef struct tree_counts {
	uint64_t branch, leaf, overflow, entries;
} tree_counts;

__attribute__((format(printf, 3, 4))) static void problem(checker *ck, pgno_t pgno, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ck->res.problems++;
	if (ck->report)
		ck->report(ck->ctx, pgno, msg);
}

/* Account for pages [pgno, pgno + n) as `what`; false if any was bad. */
static bool claim(checker *ck, pgno_t pgno, uint64_t n, const char *what)
{
	if (pgno < MMKV_NUM_METAS || pgno >= ck->npages || n > ck->npages - pgno) {
		problem(ck, pgno, "%s page %llu (+%llu) lies outside pages 2..%llu", what,
		        (unsigned long long)pgno, (unsigned long long)n, (unsigned long long)ck->npages - 1);
		return false;
	}
	for (uint64_t i = 0; i < n; i++) {
		pgno_t p = pgno + i;
		if (ck->seen[p / 8] & (1u << (p % 8))) {
			problem(ck, p, "page %llu is used twice (again as %s)", (unsigned long long)p, what);
			return false;
		}
		ck->seen[p / 8] |= (uint8_t)(1u << (p % 8));
	}
	return true;
}

static void check_overflow(checker *ck, const mmkv_node *n, tree_counts *tc)
{
	uint64_t np = overflow_pages(n->vsize, ck->psize);
	unsigned char *run;

	if (!claim(ck, n->child, np, "overflow"))
		return;
	tc->overflow += np;
	if (mmkv__page_get(ck->txn, n->child, &run)) {
		problem(ck, n->child, "overflow page %llu has a bad header", (unsigned long long)n->child);
		return;
	}
	if (page_kind(run) != MMKV_PAGE_OVERFLOW || page_run(run) != np)
		problem(ck, n->child, "overflow run at page %llu has kind %u and %u pages, expected %llu",
		        (unsigned long long)n->child, page_kind(run), page_run(run), (unsigned long long)np);
	else if (!mmkv__page_checksum_ok(run, np * ck->psize))
		problem(ck, n->child, "overflow run at page %llu fails its checksum", (unsigned long long)n->child);
}

/* A compressed value (invariant 4a). */
static void check_compressed(checker *ck, const mmkv_db *db, pgno_t pgno, unsigned i, const mmkv_val *stored)
{
	mmkv_val out;

	if (!(db->flags & MMKV_DB_COMPRESS))
		problem(ck, pgno, "page %llu: node %u is compressed in a database without compression",
		        (unsigned long long)pgno, i);
	else if (mmkv__value_expand(ck->txn, stored, (mmkv_vbuf){ &ck->vbuf, &ck->vcap }, &out))
		problem(ck, pgno, "page %llu: compressed value of node %u does not decode",
		        (unsigned long long)pgno, i);
}

/* The nodes of a branch or leaf page cover [upper, page size) exactly, each
 * byte once (page.c keeps the node area compact): overlapping nodes would be
 * read as valid and then mangled by the next change to the page. */
static bool check_node_area(checker *ck, const unsigned char *p, pgno_t pgno)
{
	uint32_t used = 0;

	memset(ck->cover, 0, ck->psize / 8);
	for (unsigned i = 0; i < page_nkeys(p); i++) {
		mmkv_node n;
		if (node_get(p, ck->psize, i, &n))
			return true; /* reported by the caller */
		uint32_t off = (uint32_t)(n.base - p);
		for (uint32_t b = off; b < off + n.size; b++) {
			if (ck->cover[b / 8] & (1u << (b % 8))) {
				problem(ck, pgno, "page %llu: node %u overlaps another node", (unsigned long long)pgno, i);
				return false;
			}
			ck->cover[b / 8] |= (uint8_t)(1u << (b % 8));
		}
		used += n.size;
	}
	if (used != ck->psize - page_upper(p)) {
		problem(ck, pgno, "page %llu: nodes use %u of the %u bytes above upper", (unsigned long long)pgno,
		        used, ck->psize - page_upper(p));
		return false;
	}
	return true;
}

/* Visitor for leaf entries of special trees (free tree, catalog). */
typedef void (*entry_fn)(checker *ck, pgno_t leaf, const mmkv_val *key, const mmkv_val *val, void *arg);

static void walk(checker *ck, mmkv_keycmp cmp, const mmkv_db *db, pgno_t pgno, uint32_t level,
                 const mmkv_val *lo, const mmkv_val *hi, tree_counts *tc, entry_fn fn, void *arg)
{
	uint32_t psize = ck->psize;
	unsigned char *p;
	mmkv_val prev = { 0, NULL };
	bool leaf;

	if (!claim(ck, pgno, 1, level == 0 ? "root" : "tree"))
		return;
	if (mmkv__page_get(ck->txn, pgno, &p) || page_kind(p) == MMKV_PAGE_OVERFLOW) {
		problem(ck, pgno, "page %llu has a bad header", (unsigned long long)pgno);
		return;
	}
	if (!mmkv__page_checksum_ok(p, psize)) {
		problem(ck, pgno, "page %llu fails its checksum", (unsigned long long)pgno);
		return;
	}
	if (!check_node_area(ck, p, pgno))
		return;
	leaf = page_is_leaf(p);
	if (leaf != (level + 1 == db->depth)) {
		problem(ck, pgno, "page %llu is a %s at level %u of a tree of depth %u",
		        (unsigned long long)pgno, leaf ? "leaf" : "branch", level, db->depth);
		return;
	}
	if (leaf)
		tc->leaf++;
	else
		tc->branch++;
	for (unsigned i = 0; i < page_nkeys(p); i++) {
		mmkv_node n;
		if (node_get(p, psize, i, &n)) {
			problem(ck, pgno, "page %llu: node %u lies outside the page", (unsigned long long)pgno, i);
			return;
		}
		bool has_key = leaf || i > 0;
		if (!leaf && i == 0 && n.key.size != 0)
			problem(ck, pgno, "page %llu: first branch node has a key", (unsigned long long)pgno);
		if (has_key) {
			if (n.key.size > MMKV_KEY_MAX(psize))
				problem(ck, pgno, "page %llu: node %u key of %zu bytes is too long",
				        (unsigned long long)pgno, i, n.key.size);
			if (n.key.size == 0)
				problem(ck, pgno, "page %llu: node %u has an empty key", (unsigned long long)pgno, i);
			if (prev.data && cmp(&prev, &n.key) >= 0)
				problem(ck, pgno, "page %llu: key %u is not above the key before it",
				        (unsigned long long)pgno, i);
			if ((lo && cmp(&n.key, lo) < 0) || (hi && cmp(&n.key, hi) >= 0))
				problem(ck, pgno, "page %llu: key %u lies outside its parent's range",
				        (unsigned long long)pgno, i);
			prev = n.key;
		}
		if (leaf) {
			mmkv_val val = { n.vsize, n.value };
			bool have_val = true;
			tc->entries++;
			if (n.flags & MMKV_NODE_OVERFLOW) {
				unsigned char *run;
				uint64_t before = ck->res.problems;
				check_overflow(ck, &n, tc);
				have_val = ck->res.problems == before && mmkv__page_get(ck->txn, n.child, &run) == 0;
				if (have_val)
					val.data = run + MMKV_PAGE_HEADER;
			}
			if (have_val && (n.flags & MMKV_NODE_COMPRESSED))
				check_compressed(ck, db, pgno, i, &val);
			else if (have_val && fn)
				fn(ck, pgno, &n.key, &val, arg);
		} else {
			const mmkv_val *child_lo = i == 0 ? lo : &n.key;
			mmkv_val next_key;
			const mmkv_val *child_hi = hi;
			mmkv_node next;
			if (i + 1 < page_nkeys(p) && node_get(p, psize, i + 1, &next) == 0) {
				next_key = next.key;
				child_hi = &next_key;
			}
			walk(ck, cmp, db, n.child, level + 1, child_lo, child_hi, tc, fn, arg);
		}
	}
}

static void check_tree(checker *ck, const char *name, const mmkv_db *db, mmkv_keycmp cmp,
                       entry_fn fn, bool user)
{
	tree_counts tc = { 0, 0, 0, 0 };

	if (db->root)
		walk(ck, cmp, db, db->root, 0, NULL, NULL, &tc, fn, NULL);
	if (tc.entries != db->entries || tc.branch != db->branch_pages || tc.leaf != db->leaf_pages ||
	    tc.overflow != db->overflow_pages)
		problem(ck, db->root,
		        "database %s: record says %llu entries, %llu/%llu/%llu branch/leaf/overflow pages; "
		        "found %llu, %llu/%llu/%llu",
		        name, (unsigned long long)db->entries, (unsigned long long)db->branch_pages,
		        (unsigned long long)db->leaf_pages, (unsigned long long)db->overflow_pages,
		        (unsigned long long)tc.entries, (unsigned long long)tc.branch,
		        (unsigned long long)tc.leaf, (unsigned long long)tc.overflow);
	ck->res.pages_tree += tc.branch + tc.leaf + tc.overflow;
	if (user)
		ck->res.entries += tc.entries;
}

static void free_entry(checker *ck, pgno_t leaf, const mmkv_val *key, const mmkv_val *val, void *arg)
{
	txnid_t f = 0;

	(void)arg;
	if (key->size == 8)
		memcpy(&f, key->data, 8);
	if (key->size != 8 || f > ck->txn->meta.txnid || val->size % 8) {
		problem(ck, leaf, "free tree record in page %llu is malformed", (unsigned long long)leaf);
		return;
	}
	for (size_t i = 0; i < val->size; i += 8) {
		pgno_t p = le64((const unsigned char *)val->data + i);
		if (p && claim(ck, p, 1, "free"))
			ck->res.pages_free++;
	}
}

/* A named database's comparator: the one set on an open handle of that
 * name, else the one its flags imply. */
static mmkv_keycmp named_cmp(checker *ck, const mmkv_val *name, const mmkv_db *rec)
{
	mmkv_env *env = ck->txn->env;
	uint32_t n = __atomic_load_n(&env->ndbis, __ATOMIC_ACQUIRE);

	for (uint32_t i = MMKV_DBI_USER; i < n; i++)
		if (env->dbis[i].namelen == name->size && env->dbis[i].cmp &&
		    memcmp(env->dbis[i].name, name->data, name->size) == 0)
			return env->dbis[i].cmp;
	return mmkv__flags_cmp(rec->flags);
}

/* An entry of the dictionary database (format.h, DICTIONARY DATABASE). */
static void dict_entry(checker *ck, pgno_t leaf, const mmkv_val *key, const mmkv_val *val, void *arg)
{
	const unsigned char *v = val->data;

	(void)arg;
	if (key->size != 4 || val->size < 2 || val->size < 2u + v[0] ||
	    val->size - 1 - v[0] > MMKV_DICT_MAX)
		problem(ck, leaf, "dictionary record in page %llu is malformed", (unsigned long long)leaf);
}

static void catalog_entry(checker *ck, pgno_t leaf, const mmkv_val *key, const mmkv_val *val, void *arg)
{
	char name[MMKV_NAME_MAX + 1];
	bool dicts = key->size == MMKV_DICT_DB_NAMELEN &&
	             memcmp(key->data, MMKV_DICT_DB_NAME, MMKV_DICT_DB_NAMELEN) == 0;
	mmkv_db rec;

	(void)arg;
	if (key->size == 0 || key->size > MMKV_NAME_MAX || val->size != MMKV_DBREC_SIZE ||
	    mmkv__db_decode(val->data, &rec) || rec.root >= ck->npages ||
	    (!dicts && memchr(key->data, 0, key->size)) ||
	    (dicts && rec.flags != MMKV_DB_INTEGERKEY)) {
		problem(ck, leaf, "catalog entry in page %llu is malformed", (unsigned long long)leaf);
		return;
	}
	if (dicts) {
		check_tree(ck, "(dictionaries)", &rec, mmkv__flags_cmp(rec.flags), dict_entry, false);
		return;
	}
	memcpy(name, key->data, key->size);
	name[key->size] = 0;
	check_tree(ck, name, &rec, named_cmp(ck, key, &rec), NULL, true);
}

MMKV_API int mmkv_env_check(mmkv_env *env, mmkv_check_func *report, void *ctx, mmkv_check_result *result)
{
	checker ck;
	mmkv_txn *txn;
	int rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);

	if (rc)
		return rc;
	memset(&ck, 0, sizeof(ck));
	ck.txn = txn;
	ck.psize = env->psize;
	ck.npages = txn->meta.npages;
	ck.report = report;
	ck.ctx = ctx;
	ck.seen = mmkv__calloc(ck.npages / 8 + 1, 1);
	ck.cover = mmkv__calloc(ck.psize / 8, 1);
	if (!ck.seen || !ck.cover) {
		mmkv__free(ck.seen);
		mmkv__free(ck.cover);
		mmkv_txn_abort(txn);
		return ENOMEM;
	}
	ck.seen[0] |= 3; /* the meta pages */

	check_tree(&ck, "(default)", &txn->meta.main, mmkv__db_cmp(txn, MMKV_DBI_MAIN), NULL, true);
	check_tree(&ck, "(catalog)", &txn->meta.catalog, mmkv__flags_cmp(0), catalog_entry, false);
	check_tree(&ck, "(free pages)", &txn->meta.free, mmkv__flags_cmp(MMKV_DB_INTEGERKEY), free_entry, false);

	for (pgno_t p = MMKV_NUM_METAS; p < ck.npages; p++) {
		if (!(ck.seen[p / 8] & (1u << (p % 8)))) {
			problem(&ck, p, "page %llu is neither reachable nor free (leaked)", (unsigned long long)p);
			if (ck.res.problems > 1000)
				break;
		}
	}
	ck.res.pages_total = ck.npages;
	mmkv__free(ck.seen);
	mmkv__free(ck.cover);
	mmkv__free(ck.vbuf);
	mmkv_txn_abort(txn);
	if (result)
		*result = ck.res;
	return ck.res.problems ? MMKV_CORRUPTED : 0;
}
