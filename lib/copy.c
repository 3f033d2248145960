/*
 * copy.c - hot copies of a database: mmkv_env_copy and mmkv_env_copyfd.
 *
 * A copy is taken from one read snapshot, so writers keep working while it
 * runs: they only ever write pages the snapshot cannot see.
 *
 *   plain     pages 2 .. npages-1 are copied as they are (free pages too, so
 *             the copy's free tree stays true), in large sequential writes.
 *   compact   every tree is walked depth first and each page written at the
 *             next page number after its children (post-order), so pages
 *             come out densely numbered and in ascending order; parents
 *             are patched with their children's new numbers, and named
 *             databases' roots are patched into the copied catalog. No free
 *             tree: the copy has no free pages.
 *
 * Either way the copy gets a fresh UUID (it is a new file with a history of
 * its own) and the snapshot's meta in both meta pages, so it opens like any
 * database and passes the checker.
 */
#include "page.h"

#include <stdlib.h>
#include <uuid/uuid.h>
#include <xxhash.h>

typedef struct copier {
	mmkv_txn *txn;
	int fd;
	uint32_t psize;
	pgno_t next;          /* next page number of the compact copy */
} copier;

static int write_pages(copier *cp, const void *buf, uint64_t npages, pgno_t at)
{
	return mmkv__os_pwrite_full(cp->fd, buf, npages * cp->psize, at * (uint64_t)cp->psize);
}

/* Copy an overflow run to the next page numbers; the first page's number
 * changes, so the run's checksum is computed anew (streamed: runs may be
 * larger than memory should hold twice). */
static int copy_run(copier *cp, pgno_t old, uint64_t vsize, pgno_t *fresh)
{
	uint64_t np = overflow_pages(vsize, cp->psize), bytes = np * cp->psize;
	unsigned char *run, *head;
	XXH3_state_t *st;
	int rc = mmkv__page_get(cp->txn, old, &run);

	if (rc)
		return rc;
	if (page_kind(run) != MMKV_PAGE_OVERFLOW || page_run(run) != np)
		return CORRUPT(old);
	head = mmkv__malloc(cp->psize);
	st = XXH3_createState();
	if (!head || !st) {
		mmkv__free(head);
		XXH3_freeState(st);
		return ENOMEM;
	}
	*fresh = cp->next;
	cp->next += np;
	memcpy(head, run, cp->psize);
	put64(head + MMKV_PAGE_PGNO, *fresh);
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, head + 8, cp->psize - 8);
	XXH3_64bits_update(st, run + cp->psize, bytes - cp->psize);
	put64(head + MMKV_PAGE_CHECKSUM, XXH3_64bits_digest(st));
	XXH3_freeState(st);
	rc = write_pages(cp, head, 1, *fresh);
	if (rc == 0 && np > 1)
		rc = write_pages(cp, run + cp->psize, np - 1, *fresh + 1);
	mmkv__free(head);
	return rc;
}

static int copy_tree(copier *cp, pgno_t old, uint32_t level, uint32_t depth, bool catalog, pgno_t *fresh);

/* A catalog entry's db record: copy that database's tree, patch its root. */
static int copy_named_db(copier *cp, unsigned char *value, uint32_t vsize)
{
	mmkv_db rec;
	int rc;

	if (vsize != MMKV_DBREC_SIZE)
		return CORRUPT(0);
	rc = mmkv__db_decode(value, &rec);
	if (rc == 0 && rec.root)
		rc = copy_tree(cp, rec.root, 0, rec.depth, false, &rec.root);
	if (rc == 0)
		mmkv__db_encode(&rec, value);
	return rc;
}

static int copy_tree(copier *cp, pgno_t old, uint32_t level, uint32_t depth, bool catalog, pgno_t *fresh)
{
	unsigned char *src, *p;
	int rc;

	if (level >= depth || level >= MMKV_MAX_DEPTH)
		return CORRUPT(old);
	rc = mmkv__page_get(cp->txn, old, &src);
	if (rc)
		return rc;
	if (page_kind(src) != (level + 1 == depth ? MMKV_PAGE_LEAF : MMKV_PAGE_BRANCH))
		return CORRUPT(old);
	p = mmkv__malloc(cp->psize);
	if (!p)
		return ENOMEM;
	memcpy(p, src, cp->psize);
	for (unsigned i = 0; rc == 0 && i < page_nkeys(p); i++) {
		mmkv_node n;
		pgno_t moved;
		rc = node_get(p, cp->psize, i, &n);
		if (rc)
			break;
		if (!page_is_leaf(p)) {
			rc = copy_tree(cp, n.child, level + 1, depth, catalog, &moved);
			if (rc == 0)
				put64(n.base + MMKV_BNODE_CHILD, moved);
		} else if (n.flags & MMKV_NODE_OVERFLOW) {
			rc = copy_run(cp, n.child, n.vsize, &moved);
			if (rc == 0)
				put64(n.value, moved);
		} else if (catalog) {
			rc = copy_named_db(cp, n.value, n.vsize);
		}
	}
	if (rc == 0) {
		*fresh = cp->next++;
		put64(p + MMKV_PAGE_PGNO, *fresh);
		mmkv__page_seal(p, cp->psize);
		rc = write_pages(cp, p, 1, *fresh);
	}
	mmkv__free(p);
	return rc;
}

static int copy_compact(copier *cp, mmkv_meta *meta)
{
	int rc = 0;

	cp->next = MMKV_NUM_METAS;
	if (meta->main.root)
		rc = copy_tree(cp, meta->main.root, 0, meta->main.depth, false, &meta->main.root);
	if (rc == 0 && meta->catalog.root)
		rc = copy_tree(cp, meta->catalog.root, 0, meta->catalog.depth, true, &meta->catalog.root);
	memset(&meta->free, 0, sizeof(meta->free));
	meta->npages = cp->next;
	return rc;
}

static int copy_plain(copier *cp, const mmkv_meta *meta)
{
	const uint64_t chunk = (4u << 20) / cp->psize; /* pages per write */
	int rc = 0;

	for (pgno_t p = MMKV_NUM_METAS; rc == 0 && p < meta->npages; p += chunk) {
		uint64_t n = meta->npages - p < chunk ? meta->npages - p : chunk;
		rc = write_pages(cp, cp->txn->env->map + p * (uint64_t)cp->psize, n, p);
	}
	return rc;
}

/* Both meta pages of the copy hold the snapshot's meta (a tie goes to
 * page 0; the next commit overwrites one of them as usual). */
static int write_metas(copier *cp, mmkv_meta *meta)
{
	unsigned char *buf = mmkv__calloc(MMKV_NUM_METAS, cp->psize);
	int rc;

	if (!buf)
		return ENOMEM;
	uuid_generate(meta->uuid);
	meta->file_size = meta->npages * (uint64_t)cp->psize;
	for (unsigned i = 0; i < MMKV_NUM_METAS; i++)
		mmkv__meta_encode(meta, buf + (size_t)i * cp->psize);
	rc = write_pages(cp, buf, MMKV_NUM_METAS, 0);
	mmkv__free(buf);
	return rc;
}

MMKV_API int mmkv_env_copyfd(mmkv_env *env, int fd, unsigned int flags)
{
	copier cp;
	mmkv_meta meta;
	mmkv_txn *txn;
	int rc;

	if (fd < 0 || (flags & ~MMKV_CP_COMPACT))
		return EINVAL;
	rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc)
		return rc;
	memset(&cp, 0, sizeof(cp));
	cp.txn = txn;
	cp.fd = fd;
	cp.psize = env->psize;
	meta = txn->meta;
	rc = (flags & MMKV_CP_COMPACT) ? copy_compact(&cp, &meta) : copy_plain(&cp, &meta);
	if (rc == 0)
		rc = mmkv__txn_snapshot_ok(txn); /* evicted: the pages read may be reused */
	if (rc == 0)
		rc = write_metas(&cp, &meta);
	if (rc == 0)
		rc = mmkv__os_truncate(fd, meta.npages * (uint64_t)cp.psize);
	mmkv_txn_abort(txn);
	return rc;
}

MMKV_API int mmkv_env_copy(mmkv_env *env, const char *path, unsigned int flags)
{
	int fd = -1;
	int rc = mmkv__env_check_usable(env);

	if (rc)
		return rc;
	if (!path || !*path || (flags & ~MMKV_CP_COMPACT))
		return EINVAL;
	rc = mmkv__os_open_file(path, O_RDWR | O_CREAT | O_EXCL, 0644, &fd);
	if (rc)
		return rc;
	rc = mmkv_env_copyfd(env, fd, flags);
	if (rc == 0)
		rc = mmkv__os_sync(fd, 1);
	mmkv__os.close(fd);
	if (rc == 0 && mmkv__os.fsync_dir(path) != 0)
		rc = errno;
	if (rc)
		(void)mmkv__os.unlink(path);
	return rc;
}
