/*
 * freelist.c - page allocation and reclamation, aware of snapshots.
 *
 * Free pages are recorded in the free tree (format.h): key = the txnid F that
 * freed them, value = their page numbers. A write transaction draws pages
 * from three places, in order:
 *
 *   pool     pages usable now, lowest first: records of the free tree it
 *            consumed, and pages it made itself and then freed;
 *   records  the next free-tree record with F <= reclaim_limit, moved into
 *            the pool (its key noted in `consumed`);
 *   tail     new pages at the end of the file (txn->npages grows).
 *
 * Invariants:
 *  1. A page freed by F is reused only when F <= every published snapshot
 *     and F < the last committed txnid C: pages of the previous meta's tree
 *     survive until a newer meta is durable (DESIGN.md section 6).
 *  2. Every page number < npages is, at commit, exactly one of: meta page,
 *     reachable from a root, or listed once in the free tree.
 *  3. Committed pages freed by this transaction go to `freed`, never to the
 *     pool: snapshots may still read them.
 *
 * Commit (mmkv__freelist_save) writes `freed` under this txnid and the pool's
 * leftovers back under the smallest consumed key. Changing the free tree
 * allocates and frees pages itself, so it runs to a fixed point: records are
 * reserved with slack, pages are drawn only from the pool or the tail, pages
 * freed meanwhile all go to `freed` (TXN_SAVING), and the reserved space is
 * filled once both lists fit. Unused reserved words stay zero (padding).
 */
#include "page.h"

#include <stdlib.h>

int mmkv__pglist_push(mmkv_pglist *l, pgno_t p)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		pgno_t *v = mmkv__realloc(l->v, cap * sizeof(*v));
		if (!v)
			return ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = p;
	return 0;
}

void mmkv__pglist_free(mmkv_pglist *l)
{
	mmkv__free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static int cmp_desc(const void *a, const void *b)
{
	pgno_t x = *(const pgno_t *)a, y = *(const pgno_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_asc(const void *a, const void *b)
{
	return -cmp_desc(a, b);
}

void mmkv__freelist_reset(mmkv_txn *txn)
{
	txn->pool.n = txn->freed.n = txn->consumed.n = 0;
	txn->next_record = 0;
	txn->freetree_done = false;
	txn->readers_checked = false;
}

/* Insert into the pool keeping it sorted descending (lowest at the end). */
static int pool_insert(mmkv_txn *txn, pgno_t p)
{
	mmkv_pglist *l = &txn->pool;
	size_t lo = 0, hi;
	int rc = mmkv__pglist_push(l, p);

	if (rc)
		return rc;
	hi = l->n - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->v[mid] > p)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(l->v + lo + 1, l->v + lo, (l->n - 1 - lo) * sizeof(pgno_t));
	l->v[lo] = p;
	return 0;
}

/* Move the next usable free-tree record into the pool. MMKV_NOTFOUND when
 * there is none (left). */
static int load_record(mmkv_txn *txn)
{
	mmkv_cursor c;
	mmkv_val key, val;
	uint64_t k = txn->next_record;
	mmkv_val want = { 8, &k };
	bool exact;
	txnid_t f;
	size_t before = txn->pool.n;
	int rc;

	if (txn->freetree_done || (txn->flags & TXN_SAVING))
		return MMKV_NOTFOUND;
	mmkv__cursor_init(&c, txn, MMKV_DBI_FREE);
	rc = mmkv__cursor_seek(&c, &want, &exact);
	if (rc == 0 && !mmkv__cursor_at_entry(&c))
		rc = MMKV_NOTFOUND;
	if (rc == 0)
		rc = mmkv__cursor_read(&c, &key, &val);
	if (rc == 0 && (key.size != 8 || val.size % 8))
		rc = CORRUPT(c.pgnos[c.top]);
	if (rc == 0) {
		memcpy(&f, key.data, 8);
		if (f > txn->reclaim_limit)
			rc = MMKV_NOTFOUND;
	}
	if (rc) {
		if (rc == MMKV_NOTFOUND)
			txn->freetree_done = true;
		return rc;
	}
	for (size_t i = 0; i < val.size / 8; i++) {
		pgno_t p = le64((const unsigned char *)val.data + 8 * i);
		if (p == 0)
			continue; /* padding */
		if (p < MMKV_NUM_METAS || p >= txn->meta.npages)
			return CORRUPT(p);
		rc = mmkv__pglist_push(&txn->pool, p);
		if (rc)
			return rc;
	}
	rc = mmkv__pglist_push(&txn->consumed, f);
	if (rc)
		return rc;
	txn->next_record = f + 1;
	if (txn->pool.n != before)
		qsort(txn->pool.v, txn->pool.n, sizeof(pgno_t), cmp_desc);
	/* A page listed twice would be handed out twice. */
	for (size_t i = 1; i < txn->pool.n; i++)
		if (txn->pool.v[i] == txn->pool.v[i - 1])
			return CORRUPT(txn->pool.v[i]);
	return 0;
}

/* Take n consecutive pages from the pool, lowest run first. */
static bool pool_take_run(mmkv_txn *txn, uint32_t n, pgno_t *pgno)
{
	mmkv_pglist *l = &txn->pool;

	if (l->n < n)
		return false;
	if (n == 1) {
		*pgno = l->v[--l->n];
		return true;
	}
	/* v is strictly descending, so v[j - n + 1] == v[j] + n - 1 means the
	 * n entries from v[j] upwards are consecutive. */
	for (size_t j = l->n - 1; j + 1 >= n; j--) {
		if (l->v[j - n + 1] == l->v[j] + n - 1) {
			*pgno = l->v[j];
			memmove(l->v + j - n + 1, l->v + j + 1, (l->n - j - 1) * sizeof(pgno_t));
			l->n -= n;
			return true;
		}
		if (j == 0)
			break;
	}
	return false;
}

/* Stale reader slots can pin old pages; clear them once per transaction
 * before growing the file, and widen the reclaim limit. */
static void recheck_readers(mmkv_txn *txn)
{
	mmkv_env *env = txn->env;
	txnid_t limit;
	int cleared = 0;

	txn->readers_checked = true;
	if (txn->reclaim_limit + 1 >= txn->meta.txnid)
		return; /* no reader holds anything back */
	if (mmkv__lock_reader_check(&env->lock, &cleared) || cleared == 0)
		return;
	limit = mmkv__lock_oldest_reader(&env->lock, UINT64_MAX);
	if (limit > txn->meta.txnid - 1)
		limit = txn->meta.txnid - 1;
	if (limit > txn->reclaim_limit) {
		txn->reclaim_limit = limit;
		txn->freetree_done = false;
	}
}

int mmkv__freelist_alloc(mmkv_txn *txn, uint32_t n, pgno_t *pgno)
{
	mmkv_env *env = txn->env;
	int rc;

	for (;;) {
		if (pool_take_run(txn, n, pgno))
			return 0;
		rc = load_record(txn);
		if (rc == 0)
			continue;
		if (rc != MMKV_NOTFOUND)
			return rc;
		if (!txn->readers_checked && !(txn->flags & TXN_SAVING)) {
			recheck_readers(txn);
			if (!txn->freetree_done)
				continue;
		}
		break;
	}
	if ((txn->npages + n) * (uint64_t)env->psize > env->mapsize)
		return MMKV_MAP_FULL;
	*pgno = txn->npages;
	txn->npages += n;
	return 0;
}

int mmkv__freelist_free(mmkv_txn *txn, pgno_t pgno, uint32_t n, bool was_dirty)
{
	int rc = 0;

	for (uint32_t i = 0; i < n && rc == 0; i++) {
		if (was_dirty && !(txn->flags & TXN_SAVING))
			rc = pool_insert(txn, pgno + i);
		else
			rc = mmkv__pglist_push(&txn->freed, pgno + i);
	}
	return rc;
}

/* Reserve a record of `words` page numbers under key k. */
static int reserve_record(mmkv_txn *txn, txnid_t k, size_t words)
{
	mmkv_cursor c;
	mmkv_val key = { 8, &k }, val = { words * 8, NULL };

	mmkv__cursor_init(&c, txn, MMKV_DBI_FREE);
	return mmkv__btree_put(&c, &key, &val, MMKV_RESERVE, 0);
}

/* Position c on the free-tree record k, which must exist. */
static int seek_record(mmkv_txn *txn, txnid_t k, mmkv_cursor *c)
{
	mmkv_val key = { 8, &k };
	bool exact;
	int rc;

	mmkv__cursor_init(c, txn, MMKV_DBI_FREE);
	rc = mmkv__cursor_seek(c, &key, &exact);
	if (rc == 0 && !exact)
		rc = CORRUPT(0);
	return rc;
}

static int delete_record(mmkv_txn *txn, txnid_t k)
{
	mmkv_cursor c;
	int rc = seek_record(txn, k, &c);

	return rc ? rc : mmkv__btree_del(&c);
}

/* Write the pages of list, ascending, into the reserved record k. */
static int fill_record(mmkv_txn *txn, txnid_t k, mmkv_pglist *list)
{
	mmkv_cursor c;
	unsigned char *dst;
	size_t size;
	int rc = seek_record(txn, k, &c);

	if (rc)
		return rc;
	rc = mmkv__btree_value_ptr(&c, &dst, &size);
	if (rc)
		return rc;
	assert(size >= list->n * 8);
	qsort(list->v, list->n, sizeof(pgno_t), cmp_asc);
	for (size_t i = 0; i < list->n; i++)
		put64(dst + 8 * i, list->v[i]);
	memset(dst + 8 * list->n, 0, size - 8 * list->n);
	return 0;
}

/* Before saving, take enough reusable pages into the pool for the free
 * tree's own changes: while saving, records cannot be consumed (the set of
 * records to delete is fixed), so a dry pool would take pages from the end
 * of the file at every commit and the file would grow without end. */
static int stock_pool(mmkv_txn *txn)
{
	uint64_t per_page = txn->env->psize / 8;
	size_t want = 16 + 2 * txn->dbs[MMKV_DBI_FREE].depth +
	              2 * (size_t)((txn->freed.n + txn->pool.n) / per_page);
	int rc = 0;

	while (txn->pool.n < want) {
		rc = load_record(txn);
		if (rc == MMKV_NOTFOUND && !txn->readers_checked) {
			recheck_readers(txn); /* dead readers may hold records back */
			rc = txn->freetree_done ? MMKV_NOTFOUND : 0;
			continue;
		}
		if (rc)
			break;
	}
	return rc == MMKV_NOTFOUND ? 0 : rc;
}

int mmkv__freelist_save(mmkv_txn *txn)
{
	txnid_t kmin = 0;
	size_t reserved_freed = 0;
	bool pool_reserved = false;
	int rc = stock_pool(txn);

	if (rc)
		return rc;
	txn->flags |= TXN_SAVING;
	/* Without a consumed record to hold them, pool pages (made and freed by
	 * this transaction) join this transaction's own record. */
	if (txn->consumed.n == 0 || txn->pool.n == 0) {
		for (size_t i = 0; i < txn->pool.n && rc == 0; i++)
			rc = mmkv__pglist_push(&txn->freed, txn->pool.v[i]);
		txn->pool.n = 0;
	} else {
		kmin = txn->consumed.v[0];
		for (size_t i = 1; i < txn->consumed.n; i++)
			if (txn->consumed.v[i] < kmin)
				kmin = txn->consumed.v[i];
	}
	for (size_t i = 0; i < txn->consumed.n && rc == 0; i++)
		if (txn->consumed.v[i] != kmin)
			rc = delete_record(txn, txn->consumed.v[i]);
	if (rc)
		return rc;

	/* Fixed point: the pool only shrinks and `freed` only grows while the
	 * free tree changes, so reserve until both fit. */
	for (int round = 0;; round++) {
		if (round > 64)
			return CORRUPT(0); /* cannot happen: growth is bounded */
		if (txn->freed.n > reserved_freed) {
			reserved_freed = txn->freed.n + txn->freed.n / 16 + 16;
			rc = reserve_record(txn, txn->txnid, reserved_freed);
			if (rc)
				return rc;
			continue;
		}
		if (kmin && !pool_reserved) {
			pool_reserved = true;
			if (txn->pool.n == 0) { /* deleting consumed records used it up */
				rc = delete_record(txn, kmin);
				kmin = 0;
			} else {
				rc = reserve_record(txn, kmin, txn->pool.n);
			}
			if (rc)
				return rc;
			continue;
		}
		break;
	}
	if (reserved_freed)
		rc = fill_record(txn, txn->txnid, &txn->freed);
	if (rc == 0 && kmin)
		rc = fill_record(txn, kmin, &txn->pool);
	return rc;
}
