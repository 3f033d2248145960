/*
 * dbi.c - database handles: the default database and named databases
 * listed in the catalog tree.
 *
 * A handle (mmkv_dbi) belongs to the environment and names a database; what
 * the database holds is per transaction: each transaction loads a named
 * database's record from its own snapshot of the catalog the first time the
 * handle is used in it (mmkv__dbi_load), and a write transaction writes the
 * records of the databases it changed back to the catalog at commit
 * (mmkv__dbi_save_records), before the free tree is saved.
 *
 * Invariants:
 *  1. env->dbis[0 .. ndbis) never changes once published (ndbis is stored
 *     with release order, under dbi_mutex), so readers need no lock.
 *  2. The default database's record lives in the meta, never in the catalog.
 *  3. The dictionary database (compress.c) has the fixed handle
 *     MMKV_DBI_DICT and a catalog name no user name can equal; it is saved
 *     like a named database but never listed or opened by name.
 */
#include "page.h"

#include <stdlib.h>

static uint32_t public_to_key_flags(unsigned int flags)
{
	return ((flags & MMKV_INTEGERKEY) ? MMKV_DB_INTEGERKEY : 0) |
	       ((flags & MMKV_REVERSEKEY) ? MMKV_DB_REVERSEKEY : 0);
}
#define DB_KEY_FLAGS (MMKV_DB_INTEGERKEY | MMKV_DB_REVERSEKEY)

/* Look the handle's name up in the transaction's catalog. */
static int catalog_lookup(mmkv_txn *txn, const char *name, size_t len, mmkv_db *rec, bool *found)
{
	mmkv_cursor c;
	mmkv_val key = { len, (void *)name }, val;
	bool exact;
	int rc;

	*found = false;
	mmkv__cursor_init(&c, txn, MMKV_DBI_CATALOG);
	rc = mmkv__cursor_seek(&c, &key, &exact);
	if (rc == MMKV_NOTFOUND)
		return 0;
	if (rc || !exact)
		return rc;
	rc = mmkv__cursor_read(&c, NULL, &val);
	if (rc)
		return rc;
	if (val.size != MMKV_DBREC_SIZE)
		return CORRUPT(c.pgnos[c.top]);
	rc = mmkv__db_decode(val.data, rec);
	if (rc == 0 && rec->root >= txn->meta.npages)
		rc = CORRUPT(rec->root);
	if (rc == 0)
		*found = true;
	return rc;
}

int mmkv__dbi_load(mmkv_txn *txn, mmkv_dbi dbi)
{
	const mmkv_dbi_slot *slot = &txn->env->dbis[dbi];
	bool found;
	int rc = catalog_lookup(txn, slot->name, slot->namelen, &txn->dbs[dbi], &found);

	if (rc)
		return rc;
	if (!found)
		return MMKV_BAD_DBI; /* not in this snapshot (dropped, or created later) */
	txn->dbstate[dbi] = DB_VALID;
	return 0;
}

int mmkv__dbi_save_records(mmkv_txn *txn)
{
	mmkv_env *env = txn->env;
	uint32_t n = __atomic_load_n(&env->ndbis, __ATOMIC_ACQUIRE);

	for (uint32_t i = MMKV_DBI_DICT; i < n; i++) {
		unsigned char buf[MMKV_DBREC_SIZE];
		mmkv_val key = { env->dbis[i].namelen, env->dbis[i].name }, val = { sizeof(buf), buf };
		mmkv_cursor c;
		int rc;

		if ((txn->dbstate[i] & (DB_DIRTY | DB_GONE)) != DB_DIRTY)
			continue;
		mmkv__db_encode(&txn->dbs[i], buf);
		mmkv__cursor_init(&c, txn, MMKV_DBI_CATALOG);
		rc = mmkv__btree_put(&c, &key, &val, 0, 0);
		if (rc)
			return rc;
	}
	return 0;
}

/* Key flags asked for at open must match the database's, except that an
 * empty database may take new ones in a write transaction. MMKV_COMPRESS
 * turns compression on for any database in a write transaction (values
 * stored before stay as they are); a read transaction cannot. */
static int apply_flags(mmkv_txn *txn, mmkv_dbi dbi, uint32_t want, bool compress)
{
	mmkv_db *db = &txn->dbs[dbi];
	bool rdonly = (txn->flags & TXN_RDONLY) != 0;

	if (want != 0 && want != (db->flags & DB_KEY_FLAGS)) {
		if (rdonly || db->entries != 0)
			return MMKV_INCOMPATIBLE;
		db->flags = (db->flags & ~DB_KEY_FLAGS) | want;
		txn->dbstate[dbi] |= DB_DIRTY;
	}
	if (compress && !(db->flags & MMKV_DB_COMPRESS)) {
		if (rdonly)
			return MMKV_INCOMPATIBLE;
		return mmkv__compress_enable(txn, dbi);
	}
	return 0;
}

static int find_or_add_slot(mmkv_env *env, const char *name, size_t len, bool add, mmkv_dbi *dbi)
{
	uint32_t n = env->ndbis;

	for (uint32_t i = MMKV_DBI_USER; i < n; i++) {
		if (env->dbis[i].namelen == len && memcmp(env->dbis[i].name, name, len) == 0) {
			*dbi = i;
			return 0;
		}
	}
	if (!add)
		return MMKV_NOTFOUND;
	if (n >= env->maxdbis)
		return MMKV_DBS_FULL;
	env->dbis[n].name = mmkv__malloc(len + 1);
	if (!env->dbis[n].name)
		return ENOMEM;
	memcpy(env->dbis[n].name, name, len + 1);
	env->dbis[n].namelen = len;
	env->dbis[n].cmp = NULL;
	__atomic_store_n(&env->ndbis, n + 1, __ATOMIC_RELEASE);
	*dbi = n;
	return 0;
}

MMKV_API int mmkv_dbi_open(mmkv_txn *txn, const char *name, unsigned int flags, mmkv_dbi *dbi)
{
	const unsigned int known = MMKV_CREATE | MMKV_INTEGERKEY | MMKV_REVERSEKEY | MMKV_COMPRESS;
	uint32_t want = public_to_key_flags(flags);
	bool compress = (flags & MMKV_COMPRESS) != 0;
	mmkv_env *env;
	mmkv_db rec;
	bool found;
	size_t len;
	mmkv_dbi h;
	int rc = mmkv__txn_check(txn, false);

	if (rc)
		return rc;
	if (!dbi || (flags & ~known) || (want == (MMKV_DB_INTEGERKEY | MMKV_DB_REVERSEKEY)))
		return EINVAL;
	if (!name) {
		rc = apply_flags(txn, MMKV_DBI_MAIN, want, compress);
		if (rc == 0)
			*dbi = MMKV_DBI_MAIN;
		return rc;
	}
	len = strlen(name);
	if (len == 0 || len > MMKV_NAME_MAX)
		return EINVAL;
	env = txn->env;
	pthread_mutex_lock(&env->dbi_mutex);
	rc = find_or_add_slot(env, name, len, false, &h);
	if (rc == 0 && (txn->dbstate[h] & DB_VALID) && !(txn->dbstate[h] & DB_GONE)) {
		rc = apply_flags(txn, h, want, compress);
		goto out;
	}
	rc = catalog_lookup(txn, name, len, &rec, &found);
	if (rc)
		goto out;
	if (!found) {
		if (!(flags & MMKV_CREATE) || (txn->flags & TXN_RDONLY)) {
			rc = MMKV_NOTFOUND;
			goto out;
		}
		memset(&rec, 0, sizeof(rec));
		rec.flags = want;
		rec.mod_txnid = txn->txnid;
	}
	rc = find_or_add_slot(env, name, len, true, &h);
	if (rc)
		goto out;
	txn->dbs[h] = rec;
	txn->dbstate[h] = DB_VALID | (found ? 0 : DB_DIRTY);
	rc = apply_flags(txn, h, want, compress);
out:
	pthread_mutex_unlock(&env->dbi_mutex);
	if (rc == 0)
		*dbi = h;
	return rc;
}

MMKV_API int mmkv_dbi_list(mmkv_txn *txn, mmkv_name_func *fn, void *ctx)
{
	mmkv_cursor c;
	mmkv_val name;
	int rc = mmkv__txn_check(txn, false);

	if (rc)
		return rc;
	if (!fn)
		return EINVAL;
	mmkv__cursor_init(&c, txn, MMKV_DBI_CATALOG);
	for (rc = mmkv__cursor_first(&c); rc == 0; rc = mmkv__cursor_next(&c)) {
		rc = mmkv__cursor_read(&c, &name, NULL);
		if (rc == 0 && name.size && *(const char *)name.data == 0)
			continue; /* the dictionary database (invariant 3) */
		if (rc == 0)
			rc = fn(ctx, &name);
		if (rc)
			return rc;
	}
	return rc == MMKV_NOTFOUND ? 0 : rc;
}

MMKV_API int mmkv_dbi_flags(mmkv_txn *txn, mmkv_dbi dbi, unsigned int *flags)
{
	mmkv_db *db;
	int rc = mmkv__txn_check(txn, false);

	if (rc)
		return rc;
	if (!flags)
		return EINVAL;
	rc = mmkv__txn_db(txn, dbi, &db);
	if (rc)
		return rc;
	*flags = ((db->flags & MMKV_DB_INTEGERKEY) ? MMKV_INTEGERKEY : 0) |
	         ((db->flags & MMKV_DB_REVERSEKEY) ? MMKV_REVERSEKEY : 0) |
	         ((db->flags & MMKV_DB_COMPRESS) ? MMKV_COMPRESS : 0);
	return 0;
}

MMKV_API int mmkv_set_compare(mmkv_txn *txn, mmkv_dbi dbi, mmkv_cmp_func *cmp)
{
	int rc = mmkv__txn_check(txn, false);

	if (rc)
		return rc;
	if (!cmp)
		return EINVAL;
	if (dbi < MMKV_DBI_MAIN || dbi >= __atomic_load_n(&txn->env->ndbis, __ATOMIC_ACQUIRE))
		return MMKV_BAD_DBI;
	txn->env->dbis[dbi].cmp = cmp;
	return 0;
}

MMKV_API int mmkv_drop(mmkv_txn *txn, mmkv_dbi dbi, int del)
{
	mmkv_db *db;
	int rc = mmkv__txn_check(txn, true);

	if (rc)
		return rc;
	rc = mmkv__txn_db(txn, dbi, &db);
	if (rc)
		return rc;
	rc = mmkv__txn_begin_change(txn);
	if (rc == 0)
		rc = mmkv__btree_drop(txn, dbi);
	if (rc == 0 && del && dbi >= MMKV_DBI_USER && (db->flags & MMKV_DB_COMPRESS))
		rc = mmkv__dict_drop_owned(txn, dbi);
	if (rc == 0 && del && dbi >= MMKV_DBI_USER) {
		mmkv_env *env = txn->env;
		mmkv_val key = { env->dbis[dbi].namelen, env->dbis[dbi].name };
		mmkv_cursor c;
		bool exact;

		mmkv__cursor_init(&c, txn, MMKV_DBI_CATALOG);
		rc = mmkv__cursor_seek(&c, &key, &exact);
		if (rc == 0 && exact)
			rc = mmkv__btree_del(&c);
		else if (rc == MMKV_NOTFOUND || rc == 0)
			rc = 0; /* created in this transaction: not in the catalog yet */
		txn->dbstate[dbi] = DB_VALID | DB_GONE;
	}
	if (rc)
		mmkv__txn_fail(txn);
	return rc;
}
