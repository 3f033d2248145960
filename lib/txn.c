/*
 * txn.c - transactions: snapshots, dirty pages, spilling, and the commit
 * protocol.
 *
 * Lifecycle of a transaction:
 *
 *   read:   begin -> (snapshot) --reset--> (idle slot) --renew--> (snapshot)
 *           any state --abort/commit--> freed
 *   write:  begin (writer lock) -> changes -> commit | abort -> freed
 *           a failed change -> TXN_BROKEN -> abort
 *
 * Read snapshot protocol (DESIGN.md section 5): publish the newest meta's
 * txnid in our reader slot, then read the newest meta again; repeat until
 * they agree. A writer that scanned the reader table before our publication
 * can only have reused pages freed before the meta we end up with.
 *
 * Dirty pages of a write transaction are found by page number in an
 * open-addressing hash table. In the default mode they live in private
 * memory; past the memory budget the least recently used ones are written
 * to their (new, unreachable) places in the file and read back through the
 * map ("spilled"); touching a spilled page copies it back. With
 * MMKV_WRITEMAP they are written in place in the shared map, always on
 * pages no snapshot can see.
 *
 * Commit ordering (DESIGN.md section 6):
 *   1. catalog records of changed databases, then the free tree (fixed point)
 *   2. checksum and write every dirty page in page order, growing the file
 *   3. fsync (after growth) or fdatasync          (not with MMKV_NOSYNC)
 *   4. write the meta to page txnid % 2; fdatasync (not with NOSYNC/NOMETASYNC)
 *   5. publish the txnid in the lock file; release the writer lock
 * A failed sync is never retried: the environment enters panic.
 */
#include "page.h"

#include <stdlib.h>
#include <sys/mman.h>

/* ------------------------------------------------------------ dirty table */

static size_t hash_slot(pgno_t pgno, size_t cap)
{
	uint64_t h = pgno * 0x9E3779B97F4A7C15ull;
	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static mmkv_dirty *dirty_find(mmkv_txn *txn, pgno_t pgno)
{
	if (!txn->ndirty)
		return NULL;
	for (size_t i = hash_slot(pgno, txn->hash_cap);; i = (i + 1) & (txn->hash_cap - 1)) {
		uint32_t e = txn->dirty_hash[i];
		if (e == 0)
			return NULL;
		if (txn->dirty[e - 1].pgno == pgno)
			return &txn->dirty[e - 1];
	}
}

static void hash_insert(mmkv_txn *txn, size_t index)
{
	size_t i = hash_slot(txn->dirty[index].pgno, txn->hash_cap);
	while (txn->dirty_hash[i])
		i = (i + 1) & (txn->hash_cap - 1);
	txn->dirty_hash[i] = (uint32_t)index + 1;
}

static int dirty_add(mmkv_txn *txn, pgno_t pgno, unsigned char *ptr, uint32_t npages)
{
	if (txn->ndirty == txn->dirty_cap) {
		size_t cap = txn->dirty_cap ? txn->dirty_cap * 2 : 256;
		mmkv_dirty *d = mmkv__realloc(txn->dirty, cap * sizeof(*d));
		if (!d)
			return ENOMEM;
		txn->dirty = d;
		txn->dirty_cap = cap;
	}
	if ((txn->ndirty + 1) * 2 > txn->hash_cap) {
		size_t cap = txn->hash_cap ? txn->hash_cap * 2 : 512;
		uint32_t *h = mmkv__calloc(cap, sizeof(*h));
		if (!h)
			return ENOMEM;
		mmkv__free(txn->dirty_hash);
		txn->dirty_hash = h;
		txn->hash_cap = cap;
		for (size_t i = 0; i < txn->ndirty; i++)
			hash_insert(txn, i);
	}
	txn->dirty[txn->ndirty] = (mmkv_dirty){ pgno, ptr, npages, false, txn->tick };
	hash_insert(txn, txn->ndirty);
	txn->ndirty++;
	return 0;
}

/* Remove an entry: backward-shift deletion in the hash (no tombstones), and
 * swap the last entry into its place in the array. */
static void dirty_remove(mmkv_txn *txn, mmkv_dirty *d)
{
	size_t index = (size_t)(d - txn->dirty), mask = txn->hash_cap - 1;
	size_t i = hash_slot(d->pgno, txn->hash_cap);

	while (txn->dirty_hash[i] != index + 1)
		i = (i + 1) & mask;
	for (size_t j = (i + 1) & mask; txn->dirty_hash[j]; j = (j + 1) & mask) {
		size_t home = hash_slot(txn->dirty[txn->dirty_hash[j] - 1].pgno, txn->hash_cap);
		/* Move j into the hole i if its home is not in (i, j]. */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			txn->dirty_hash[i] = txn->dirty_hash[j];
			i = j;
		}
	}
	txn->dirty_hash[i] = 0;

	size_t last = txn->ndirty - 1;
	if (index != last) {
		size_t k = hash_slot(txn->dirty[last].pgno, txn->hash_cap);
		while (txn->dirty_hash[k] != last + 1)
			k = (k + 1) & mask;
		txn->dirty[index] = txn->dirty[last];
		txn->dirty_hash[k] = (uint32_t)index + 1;
	}
	txn->ndirty--;
}

static void dirty_free_all(mmkv_txn *txn)
{
	if (!(txn->env->flags & MMKV_WRITEMAP))
		for (size_t i = 0; i < txn->ndirty; i++)
			mmkv__free(txn->dirty[i].ptr);
	mmkv__free(txn->dirty);
	mmkv__free(txn->dirty_hash);
	txn->dirty = NULL;
	txn->dirty_hash = NULL;
	txn->ndirty = txn->dirty_cap = txn->hash_cap = 0;
	txn->dirty_bytes = 0;
}

/* ------------------------------------------------------------ page access */

static inline unsigned char *map_page(const mmkv_env *env, pgno_t pgno)
{
	return env->map + pgno * (uint64_t)env->psize;
}

int mmkv__page_get(mmkv_txn *txn, pgno_t pgno, unsigned char **page)
{
	mmkv_env *env = txn->env;
	unsigned char *p;
	uint64_t len = env->psize;

	if (txn->ndirty) {
		mmkv_dirty *d = dirty_find(txn, pgno);
		if (d) {
			*page = d->spilled ? map_page(env, pgno) : d->ptr;
			return 0;
		}
	}
	if (pgno < MMKV_NUM_METAS || pgno >= txn->meta.npages)
		return CORRUPT(pgno);
	p = map_page(env, pgno);
	if (page_kind(p) == MMKV_PAGE_OVERFLOW) {
		uint32_t run = page_run(p);
		if (page_pgno(p) != pgno || run == 0 || run > txn->meta.npages - pgno)
			return CORRUPT(pgno);
		len = (uint64_t)run * env->psize;
	} else {
		int rc = mmkv__page_check_header(p, env->psize, pgno);
		if (rc)
			return rc;
	}
	if (page_txnid(p) > txn->meta.txnid)
		return CORRUPT(pgno);
	if ((env->flags & MMKV_VERIFY) && !mmkv__page_checksum_ok(p, len))
		return CORRUPT(pgno);
	*page = p;
	return 0;
}

bool mmkv__page_is_dirty(mmkv_txn *txn, pgno_t pgno)
{
	return dirty_find(txn, pgno) != NULL;
}

int mmkv__page_new(mmkv_txn *txn, uint32_t npages, pgno_t *pgno, unsigned char **page)
{
	mmkv_env *env = txn->env;
	uint64_t bytes = (uint64_t)npages * env->psize;
	unsigned char *p;
	int rc = mmkv__freelist_alloc(txn, npages, pgno);

	if (rc)
		return rc;
	if (env->flags & MMKV_WRITEMAP) {
		/* The page must exist in the file before it is touched through
		 * the map, or the store faults. */
		rc = mmkv__env_grow_file(env, (*pgno + npages) * (uint64_t)env->psize);
		if (rc == 0 && __atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE) > txn->meta.file_size)
			txn->grew = true;
		if (rc)
			return rc;
		p = map_page(env, *pgno);
	} else {
		p = mmkv__malloc(bytes);
		if (!p)
			return ENOMEM;
		txn->dirty_bytes += bytes;
	}
	rc = dirty_add(txn, *pgno, p, npages);
	if (rc) {
		if (!(env->flags & MMKV_WRITEMAP)) {
			mmkv__free(p);
			txn->dirty_bytes -= bytes;
		}
		return rc;
	}
	*page = p;
	return 0;
}

int mmkv__page_touch(mmkv_txn *txn, pgno_t *pgno, unsigned char **page)
{
	mmkv_env *env = txn->env;
	mmkv_dirty *d = dirty_find(txn, *pgno);
	unsigned char *src, *dst;
	uint32_t npages = 1;
	pgno_t fresh;
	int rc;

	if (d) {
		d->last_use = txn->tick;
		if (d->spilled) {
			uint64_t bytes = (uint64_t)d->npages * env->psize;
			unsigned char *buf = mmkv__malloc(bytes);
			if (!buf)
				return ENOMEM;
			memcpy(buf, map_page(env, d->pgno), bytes);
			d->ptr = buf;
			d->spilled = false;
			txn->dirty_bytes += bytes;
		}
		*page = d->ptr;
		return 0;
	}
	rc = mmkv__page_get(txn, *pgno, &src);
	if (rc)
		return rc;
	if (page_kind(src) == MMKV_PAGE_OVERFLOW)
		npages = page_run(src);
	/* A page copied into a new version is verified first, so damage is
	 * not carried into newer snapshots with a fresh checksum. */
	if (!(env->flags & MMKV_VERIFY) && !mmkv__page_checksum_ok(src, (uint64_t)npages * env->psize))
		return CORRUPT(*pgno);
	rc = mmkv__page_new(txn, npages, &fresh, &dst);
	if (rc)
		return rc;
	memcpy(dst, src, (uint64_t)npages * env->psize);
	put64(dst + MMKV_PAGE_PGNO, fresh);
	put64(dst + MMKV_PAGE_TXNID, txn->txnid);
	rc = mmkv__freelist_free(txn, *pgno, npages, false);
	if (rc)
		return rc;
	*pgno = fresh;
	*page = dst;
	return 0;
}

int mmkv__page_release(mmkv_txn *txn, pgno_t pgno, uint32_t npages)
{
	mmkv_dirty *d = dirty_find(txn, pgno);

	if (!d)
		return mmkv__freelist_free(txn, pgno, npages, false);
	if (!(txn->env->flags & MMKV_WRITEMAP) && !d->spilled) {
		mmkv__free(d->ptr);
		txn->dirty_bytes -= (uint64_t)d->npages * txn->env->psize;
	}
	dirty_remove(txn, d);
	return mmkv__freelist_free(txn, pgno, npages, true);
}

/* ------------------------------------------------------- writing pages out */

static int cmp_dirty_pgno(const void *a, const void *b)
{
	const mmkv_dirty *x = *(mmkv_dirty *const *)a, *y = *(mmkv_dirty *const *)b;
	return x->pgno < y->pgno ? -1 : x->pgno > y->pgno;
}

/* Seal and write the given dirty pages (private memory), coalescing
 * neighbours into one pwritev each. */
static int write_dirty(mmkv_txn *txn, mmkv_dirty **list, size_t n)
{
	mmkv_env *env = txn->env;
	uint64_t end = 0;
	struct iovec *iov;
	int rc = 0;

	if (n == 0)
		return 0;
	qsort(list, n, sizeof(*list), cmp_dirty_pgno);
	for (size_t i = 0; i < n; i++) {
		uint64_t e = (list[i]->pgno + list[i]->npages) * (uint64_t)env->psize;
		if (e > end)
			end = e;
	}
	rc = mmkv__env_grow_file(env, end);
	if (rc)
		return rc;
	if (__atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE) > txn->meta.file_size)
		txn->grew = true;
	iov = mmkv__malloc(n * sizeof(*iov));
	if (!iov)
		return ENOMEM;
	for (size_t i = 0; i < n && rc == 0;) {
		size_t j = i;
		int cnt = 0;
		do {
			uint64_t bytes = (uint64_t)list[j]->npages * env->psize;
			mmkv__page_seal(list[j]->ptr, bytes);
			iov[cnt].iov_base = list[j]->ptr;
			iov[cnt].iov_len = bytes;
			cnt++;
			j++;
		} while (j < n && list[j - 1]->pgno + list[j - 1]->npages == list[j]->pgno);
		rc = mmkv__os_pwritev_full(env->fd, iov, cnt, list[i]->pgno * (uint64_t)env->psize);
		i = j;
	}
	mmkv__free(iov);
	return rc;
}

/* Write the least recently used dirty pages to the file until at most half
 * the budget stays in memory. */
static int spill(mmkv_txn *txn)
{
	mmkv_env *env = txn->env;
	mmkv_dirty **list = mmkv__malloc(txn->ndirty * sizeof(*list));
	size_t n = 0, pick = 0;
	uint64_t keep = env->opt_txn_memory / 2, bytes = txn->dirty_bytes;
	int rc;

	if (!list)
		return ENOMEM;
	for (size_t i = 0; i < txn->ndirty; i++)
		if (!txn->dirty[i].spilled)
			list[n++] = &txn->dirty[i];
	/* Oldest first: a counting pass would do, but n log n is cheap next to
	 * the writes. */
	for (size_t i = 1; i < n; i++) {
		mmkv_dirty *x = list[i];
		size_t j = i;
		while (j > 0 && list[j - 1]->last_use > x->last_use) {
			list[j] = list[j - 1];
			j--;
		}
		list[j] = x;
	}
	while (pick < n && bytes > keep) {
		bytes -= (uint64_t)list[pick]->npages * env->psize;
		pick++;
	}
	rc = write_dirty(txn, list, pick);
	if (rc == 0) {
		for (size_t i = 0; i < pick; i++) {
			mmkv__free(list[i]->ptr);
			list[i]->ptr = NULL;
			list[i]->spilled = true;
		}
		txn->dirty_bytes = bytes;
	}
	mmkv__free(list);
	return rc;
}

/* ---------------------------------------------------------- transaction */

int mmkv__txn_check(mmkv_txn *txn, bool write)
{
	int rc;

	if (!txn)
		return EINVAL;
	rc = mmkv__env_check_usable(txn->env);
	if (rc)
		return rc;
	if (txn->flags & (TXN_BROKEN | TXN_RESET))
		return MMKV_BAD_TXN;
	if (write && (txn->flags & TXN_RDONLY))
		return EACCES;
	return mmkv__txn_snapshot_ok(txn);
}

void mmkv__txn_fail(mmkv_txn *txn)
{
	if (!(txn->flags & TXN_RDONLY))
		txn->flags |= TXN_BROKEN;
}

int mmkv__txn_begin_change(mmkv_txn *txn)
{
	int rc = mmkv__txn_check(txn, true);

	if (rc)
		return rc;
	for (mmkv_cursor *c = txn->cursors; c; c = c->next) {
		rc = mmkv__cursor_save(c);
		if (rc)
			return rc;
	}
	txn->gen++;
	txn->tick++;
	if (!(txn->env->flags & MMKV_WRITEMAP) && txn->dirty_bytes > txn->env->opt_txn_memory) {
		rc = spill(txn);
		if (rc)
			mmkv__txn_fail(txn);
	}
	return rc;
}

int mmkv__txn_db(mmkv_txn *txn, mmkv_dbi dbi, mmkv_db **db)
{
	uint32_t n = __atomic_load_n(&txn->env->ndbis, __ATOMIC_ACQUIRE);
	int rc;

	if (dbi < MMKV_DBI_MAIN || dbi == MMKV_DBI_DICT || dbi >= n)
		return MMKV_BAD_DBI;
	if (!(txn->dbstate[dbi] & DB_VALID)) {
		rc = mmkv__dbi_load(txn, dbi);
		if (rc)
			return rc;
	}
	if (txn->dbstate[dbi] & DB_GONE)
		return MMKV_BAD_DBI;
	*db = &txn->dbs[dbi];
	return 0;
}

static void take_snapshot_dbs(mmkv_txn *txn)
{
	memset(txn->dbstate, 0, txn->env->maxdbis);
	txn->dbs[MMKV_DBI_FREE] = txn->meta.free;
	txn->dbs[MMKV_DBI_CATALOG] = txn->meta.catalog;
	txn->dbs[MMKV_DBI_MAIN] = txn->meta.main;
	txn->dbstate[MMKV_DBI_FREE] = txn->dbstate[MMKV_DBI_CATALOG] = txn->dbstate[MMKV_DBI_MAIN] = DB_VALID;
}

/* The snapshot must lie inside the file and the map: a meta claiming more
 * pages than the file holds is damage (reading there would fault). */
static int check_snapshot_bounds(mmkv_env *env, const mmkv_meta *meta)
{
	uint64_t need = meta->npages * (uint64_t)env->psize;

	if (need > env->mapsize)
		return MMKV_MAP_FULL;
	if (need > __atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE)) {
		uint64_t size;
		int rc = mmkv__os_file_size(env->fd, &size);
		if (rc)
			return rc;
		if (need > size)
			return CORRUPT(meta->npages);
		__atomic_store_n(&env->file_size, size, __ATOMIC_RELEASE);
	}
	return 0;
}

static int read_snapshot(mmkv_txn *txn)
{
	mmkv_env *env = txn->env;
	mmkv_meta again;
	int rc;

	for (;;) {
		rc = mmkv__env_newest_meta(env, &txn->meta);
		if (rc)
			return rc;
		mmkv__lock_reader_set(&env->lock, txn->slot, txn->meta.txnid);
		rc = mmkv__env_newest_meta(env, &again);
		if (rc)
			return rc;
		if (again.txnid == txn->meta.txnid)
			break;
	}
	rc = check_snapshot_bounds(env, &txn->meta);
	if (rc)
		return rc;
	txn->txnid = txn->meta.txnid;
	txn->npages = txn->meta.npages;
	take_snapshot_dbs(txn);
	return 0;
}

static int write_begin(mmkv_txn *txn)
{
	mmkv_env *env = txn->env;
	uint64_t size;
	txnid_t oldest;
	int rc;

	rc = mmkv__lock_writer_acquire(&env->lock);
	if (rc)
		return rc;
	rc = mmkv__env_newest_meta(env, &txn->meta);
	if (rc == 0)
		rc = mmkv__os_file_size(env->fd, &size);
	if (rc == 0) {
		if (size > __atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE))
			__atomic_store_n(&env->file_size, size, __ATOMIC_RELEASE);
		rc = check_snapshot_bounds(env, &txn->meta);
	}
	if (rc) {
		mmkv__lock_writer_release(&env->lock);
		return rc;
	}
	txn->txnid = txn->meta.txnid + 1;
	txn->npages = txn->meta.npages;
	take_snapshot_dbs(txn);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mmkv__readers_evict_laggards(env, txn->meta.txnid);
	oldest = mmkv__lock_oldest_reader(&env->lock, UINT64_MAX);
	txn->reclaim_limit = txn->meta.txnid - 1;
	if (oldest < txn->reclaim_limit)
		txn->reclaim_limit = oldest;
	env->write_txn = txn;
	return 0;
}

MMKV_API int mmkv_txn_begin(mmkv_env *env, mmkv_txn *parent, unsigned int flags, mmkv_txn **ret)
{
	mmkv_txn *txn;
	int rc;

	if (!env || !ret || (flags & ~MMKV_RDONLY))
		return EINVAL;
	*ret = NULL;
	rc = mmkv__env_check_usable(env);
	if (rc)
		return rc;
	if (parent)
		return ENOTSUP;
	if (!(flags & MMKV_RDONLY)) {
		if (env->flags & MMKV_RDONLY)
			return EACCES;
		if (__atomic_load_n(&env->panic, __ATOMIC_ACQUIRE))
			return MMKV_PANIC;
	}
	txn = mmkv__calloc(1, sizeof(*txn) + env->maxdbis * (sizeof(mmkv_db) + 1));
	if (!txn)
		return ENOMEM;
	txn->env = env;
	txn->dbs = (mmkv_db *)(txn + 1);
	txn->dbstate = (uint8_t *)(txn->dbs + env->maxdbis);
	if (flags & MMKV_RDONLY) {
		txn->flags = TXN_RDONLY;
		rc = mmkv__lock_reader_acquire(&env->lock, &txn->slot);
		if (rc == 0) {
			txn->has_slot = true;
			rc = read_snapshot(txn);
		}
	} else {
		rc = write_begin(txn);
	}
	if (rc) {
		if (txn->has_slot)
			mmkv__lock_reader_release(&env->lock, txn->slot);
		mmkv__free(txn);
		return rc;
	}
	*ret = txn;
	return 0;
}

static void close_cursors(mmkv_txn *txn)
{
	mmkv_cursor *c = txn->cursors, *next;
	for (; c; c = next) {
		next = c->next;
		mmkv__free(c->saved);
		mmkv__free(c->vbuf);
		mmkv__free(c);
	}
	txn->cursors = NULL;
}

static void txn_free(mmkv_txn *txn)
{
	mmkv_env *env = txn->env;

	close_cursors(txn);
	mmkv__zstate_free(txn);
	if (txn->flags & TXN_RDONLY) {
		if (txn->has_slot)
			mmkv__lock_reader_release(&env->lock, txn->slot);
	} else {
		dirty_free_all(txn);
		mmkv__pglist_free(&txn->pool);
		mmkv__pglist_free(&txn->freed);
		mmkv__pglist_free(&txn->consumed);
		env->write_txn = NULL;
		mmkv__lock_writer_release(&env->lock);
	}
	mmkv__free(txn);
}

MMKV_API void mmkv_txn_abort(mmkv_txn *txn)
{
	if (txn)
		txn_free(txn);
}

static bool txn_changed(const mmkv_txn *txn)
{
	if (txn->ndirty || txn->freed.n)
		return true;
	for (uint32_t i = 0; i < txn->env->maxdbis; i++)
		if (txn->dbstate[i] & (DB_DIRTY | DB_GONE))
			return true;
	return false;
}

static void build_meta(mmkv_txn *txn, mmkv_meta *m)
{
	mmkv_env *env = txn->env;

	*m = txn->meta;
	m->txnid = txn->txnid;
	m->npages = txn->npages;
	m->file_size = __atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE);
	if (m->limit < env->mapsize)
		m->limit = env->mapsize;
	m->written = txn->ndirty;
	m->free = txn->dbs[MMKV_DBI_FREE];
	m->catalog = txn->dbs[MMKV_DBI_CATALOG];
	m->main = txn->dbs[MMKV_DBI_MAIN];
}

/* Steps 2 and 3 of the commit: every dirty page on disk. */
static int write_and_sync_pages(mmkv_txn *txn)
{
	mmkv_env *env = txn->env;
	/* The file covers every page in use, written or not: the highest pages
	 * may have been allocated and freed again, and a meta whose npages lies
	 * past the end of the file is (rightly) rejected as damaged. */
	int rc = mmkv__env_grow_file(env, txn->npages * (uint64_t)env->psize);

	if (rc)
		return rc;
	if (__atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE) > txn->meta.file_size)
		txn->grew = true;
	if (env->flags & MMKV_WRITEMAP) {
		pgno_t lo = UINT64_MAX, hi = 0;
		for (size_t i = 0; i < txn->ndirty; i++) {
			mmkv_dirty *d = &txn->dirty[i];
			mmkv__page_seal(d->ptr, (uint64_t)d->npages * env->psize);
			if (d->pgno < lo)
				lo = d->pgno;
			if (d->pgno + d->npages > hi)
				hi = d->pgno + d->npages;
		}
		if (env->flags & MMKV_NOSYNC)
			return 0;
		if (txn->ndirty)
			rc = mmkv__os_msync(map_page(env, lo), (hi - lo) * (uint64_t)env->psize);
		/* With MMKV_NOMETASYNC the previous commit's meta was written but
		 * not synced, and the msync above covers only the dirty pages:
		 * sync the meta pages too, or a crash could fall back past
		 * commits whose freed pages this one reuses. (In the default
		 * mode the fdatasync of the whole file does this.) */
		if (rc == 0 && (env->flags & MMKV_NOMETASYNC))
			rc = mmkv__os_msync(env->map, (uint64_t)MMKV_NUM_METAS * env->psize);
		if (rc == 0 && txn->grew)
			rc = mmkv__os_sync(env->fd, 1);
	} else {
		mmkv_dirty **list = mmkv__malloc((txn->ndirty + 1) * sizeof(*list));
		size_t n = 0;
		if (!list)
			return ENOMEM;
		for (size_t i = 0; i < txn->ndirty; i++)
			if (!txn->dirty[i].spilled)
				list[n++] = &txn->dirty[i];
		rc = write_dirty(txn, list, n);
		mmkv__free(list);
		if (rc)
			return rc;
		if (env->flags & MMKV_NOSYNC)
			return 0;
		rc = mmkv__os_sync(env->fd, txn->grew);
	}
	if (rc)
		__atomic_store_n(&env->panic, 1, __ATOMIC_RELEASE);
	return rc;
}

static int txn_commit_write(mmkv_txn *txn)
{
	mmkv_env *env = txn->env;
	unsigned char buf[MMKV_META_SIZE];
	mmkv_meta meta;
	int rc;

	close_cursors(txn);
	if (!txn_changed(txn))
		return 0;
	rc = mmkv__dbi_save_records(txn);
	if (rc == 0)
		rc = mmkv__freelist_save(txn);
	if (rc == 0)
		rc = write_and_sync_pages(txn);
	if (rc)
		return rc;

	build_meta(txn, &meta);
	mmkv__meta_encode(&meta, buf);
	rc = mmkv__os_pwrite_full(env->fd, buf, sizeof(buf), (txn->txnid % 2) * (uint64_t)env->psize);
	if (rc == 0 && !(env->flags & (MMKV_NOSYNC | MMKV_NOMETASYNC)))
		rc = mmkv__os_sync(env->fd, 0);
	if (rc) {
		/* The meta may or may not be on disk: nothing more may be
		 * written through this handle. */
		__atomic_store_n(&env->panic, 1, __ATOMIC_RELEASE);
		return rc;
	}
	mmkv__lock_publish(&env->lock, txn->txnid);
	return 0;
}

MMKV_API int mmkv_txn_commit(mmkv_txn *txn)
{
	int rc;

	if (!txn)
		return EINVAL;
	if (txn->flags & TXN_RDONLY) {
		txn_free(txn);
		return 0;
	}
	rc = mmkv__txn_check(txn, true);
	if (rc == 0)
		rc = txn_commit_write(txn);
	txn_free(txn);
	return rc;
}

MMKV_API void mmkv_txn_reset(mmkv_txn *txn)
{
	if (!txn)
		return;
	if (!(txn->flags & TXN_RDONLY)) {
		txn->flags |= TXN_BROKEN;
		return;
	}
	if (txn->flags & TXN_RESET)
		return;
	mmkv__lock_reader_set(&txn->env->lock, txn->slot, MMKV_SLOT_IDLE);
	mmkv__zstate_reset(txn);
	txn->flags |= TXN_RESET;
	txn->txnid = 0;
}

MMKV_API int mmkv_txn_renew(mmkv_txn *txn)
{
	int rc;

	if (!txn)
		return EINVAL;
	if (!(txn->flags & TXN_RDONLY) || !(txn->flags & TXN_RESET))
		return MMKV_BAD_TXN;
	rc = mmkv__env_check_usable(txn->env);
	if (rc)
		return rc;
	for (mmkv_cursor *c = txn->cursors; c; c = c->next) {
		c->flags = 0;
		c->top = -1;
	}
	rc = read_snapshot(txn);
	if (rc) {
		mmkv__lock_reader_set(&txn->env->lock, txn->slot, MMKV_SLOT_IDLE);
		return rc;
	}
	txn->flags &= ~TXN_RESET;
	return 0;
}

MMKV_API uint64_t mmkv_txn_id(const mmkv_txn *txn)
{
	return txn ? txn->txnid : 0;
}
