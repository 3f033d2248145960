/*
 * readers.c - what the reader table tells: the list of readers and their
 * lag, clearing dead readers, the limit on snapshot lag, and waiting for
 * commits of other processes.
 *
 * The table itself (slots, liveness locks, the futex word) is lock.c's; this
 * module turns it into the public calls and owns the lag policy:
 *
 *  1. A write transaction that begins while max_lag is set marks every
 *     snapshot more than max_lag commits old as evicted (lock.c, with a CAS)
 *     before computing which freed pages it may reuse, so it reuses pages
 *     those snapshots could still see.
 *  2. A read transaction checks its slot before and after each call
 *     (mmkv__txn_snapshot_ok): once evicted, every call but abort, reset
 *     and commit fails with MMKV_SNAPSHOT_TOO_OLD, and a call that was
 *     reading while the eviction happened does not return what it read.
 */
#include "page.h"

#include <stdlib.h>

MMKV_API int mmkv_env_set_max_lag(mmkv_env *env, uint64_t max_lag)
{
	if (!env)
		return EINVAL;
	__atomic_store_n(&env->max_lag, max_lag, __ATOMIC_RELAXED);
	return 0;
}

void mmkv__readers_evict_laggards(mmkv_env *env, txnid_t last_committed)
{
	uint64_t max_lag = __atomic_load_n(&env->max_lag, __ATOMIC_RELAXED);

	if (max_lag && last_committed > max_lag)
		mmkv__lock_evict_before(&env->lock, last_committed - max_lag);
}

int mmkv__txn_snapshot_ok(const mmkv_txn *txn)
{
	if (!(txn->flags & TXN_RDONLY) || !txn->has_slot)
		return 0;
	if (mmkv__lock_reader_get(&txn->env->lock, txn->slot) != txn->txnid)
		return MMKV_SNAPSHOT_TOO_OLD;
	return 0;
}

MMKV_API int mmkv_reader_check(mmkv_env *env, int *cleared)
{
	int rc = mmkv__env_check_usable(env);

	if (rc)
		return rc;
	return mmkv__lock_reader_check(&env->lock, cleared);
}

/* Pages freed by each transaction, from the free tree, ascending by txnid:
 * a reader at snapshot T pins the pages freed by every F > T. */
typedef struct freed_by {
	txnid_t txnid;
	uint64_t pages;
} freed_by;

static int collect_freed(mmkv_txn *txn, freed_by **out, size_t *n)
{
	mmkv_cursor c;
	mmkv_val k, v;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	mmkv__cursor_init(&c, txn, MMKV_DBI_FREE);
	for (rc = mmkv__cursor_first(&c); rc == 0; rc = mmkv__cursor_next(&c)) {
		freed_by f = { 0, 0 };
		rc = mmkv__cursor_read(&c, &k, &v);
		if (rc)
			break;
		if (k.size != 8) {
			rc = CORRUPT(c.pgnos[c.top]);
			break;
		}
		memcpy(&f.txnid, k.data, 8);
		for (size_t i = 0; i + 8 <= v.size; i += 8)
			f.pages += le64((const unsigned char *)v.data + i) != 0;
		if (*n == cap) {
			freed_by *g = mmkv__realloc(*out, (cap = cap ? 2 * cap : 64) * sizeof(*g));
			if (!g) {
				rc = ENOMEM;
				break;
			}
			*out = g;
		}
		(*out)[(*n)++] = f;
	}
	return rc == MMKV_NOTFOUND ? 0 : rc;
}

MMKV_API int mmkv_reader_list(mmkv_env *env, mmkv_reader_func *fn, void *ctx)
{
	mmkv_txn *txn;
	freed_by *freed;
	size_t nfreed;
	int rc;

	if (!fn)
		return EINVAL;
	rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc)
		return rc;
	rc = collect_freed(txn, &freed, &nfreed);
	for (uint32_t i = 0; rc == 0 && i < env->lock.nslots; i++) {
		mmkv_reader_info r = { .slot = i };
		if (!mmkv__lock_reader_peek(&env->lock, i, &r.txnid, &r.pid, &r.tid))
			continue;
		if (txn->has_slot && i == txn->slot)
			continue; /* this listing's own snapshot */
		r.lag = txn->meta.txnid > r.txnid ? txn->meta.txnid - r.txnid : 0;
		for (size_t j = 0; j < nfreed; j++)
			if (freed[j].txnid > r.txnid)
				r.pinned_pages += freed[j].pages;
		rc = fn(ctx, &r);
	}
	mmkv__free(freed);
	mmkv_txn_abort(txn);
	return rc;
}

MMKV_API int mmkv_env_wait(mmkv_env *env, uint64_t last_txnid, int timeout_ms, uint64_t *new_txnid)
{
	int rc = mmkv__env_check_usable(env);

	if (rc)
		return rc;
	return mmkv__lock_wait_commit(&env->lock, last_txnid, timeout_ms, new_txnid);
}
