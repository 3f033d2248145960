/*
 * cursor.c - the public key/value calls and cursors.
 *
 * Argument checking and the cursor state machine live here; the tree work
 * is btree.c's. Cursor states (flags in internal.h):
 *
 *   unpositioned --FIRST, LAST, SET_*, NEXT, PREV--> on an entry
 *   on an entry --cursor_del--> after-delete (on the successor, or past the
 *                                end; NEXT returns the successor itself)
 *   any positioned state --a change by this txn--> saved (key copied);
 *                                the next use re-seeks (mmkv__cursor_restore)
 *
 * Every change goes through mmkv__txn_begin_change first, which saves the
 * transaction's cursors and may spill dirty pages; a failure in the middle
 * of a change poisons the write transaction (MMKV_BAD_TXN afterwards).
 */
#include "page.h"

#include <stdlib.h>

static int check_value(const mmkv_val *data, unsigned int flags)
{
	if (!data || (data->size && !data->data && !(flags & MMKV_RESERVE)))
		return EINVAL;
	if (data->size > UINT32_MAX)
		return MMKV_BAD_VALSIZE;
	return 0;
}

/* The value at an internal cursor, decompressed into `where` if stored
 * compressed. */
static int read_value(mmkv_cursor *c, mmkv_val *key, mmkv_val *data, mmkv_vbuf where)
{
	unsigned nflags;
	int rc = mmkv__cursor_read_node(c, key, data, &nflags);

	if (rc == 0 && data && (nflags & MMKV_NODE_COMPRESSED))
		rc = mmkv__value_expand(c->txn, data, where, data);
	return rc;
}

/* Transaction-lifetime storage for values of mmkv_get. */
static const mmkv_vbuf TXN_ARENA = { NULL, NULL };

/* Store key -> data at cursor c (compressing the value if its database
 * asks for it); the common part of mmkv_put and mmkv_cursor_put. */
static int store(mmkv_cursor *c, const mmkv_val *key, mmkv_val *data, unsigned int flags)
{
	mmkv_val stored = *data;
	unsigned nflags = 0;
	int rc = mmkv__compress_before_put(c->txn, c->dbi);

	if (rc == 0 && !(flags & MMKV_RESERVE))
		rc = mmkv__value_compress(c->txn, c->dbi, data, &stored, &nflags);
	if (rc == 0)
		rc = mmkv__btree_put(c, key, &stored, flags, nflags);
	if (rc == MMKV_KEYEXIST && (flags & MMKV_NOOVERWRITE) && !(flags & MMKV_APPEND)) {
		/* The cursor is on the existing entry: hand back its value. */
		int rc2 = read_value(c, NULL, data, TXN_ARENA);
		if (rc2)
			rc = rc2;
	} else if (rc == 0 && (flags & MMKV_RESERVE)) {
		data->data = stored.data;
	}
	return rc;
}

/* A failure that may have left the tree half-changed poisons the txn. */
static int change_result(mmkv_txn *txn, int rc)
{
	if (rc && rc != MMKV_KEYEXIST && rc != MMKV_NOTFOUND)
		mmkv__txn_fail(txn);
	return rc;
}

MMKV_API int mmkv_get(mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *key, mmkv_val *data)
{
	mmkv_cursor c;
	mmkv_db *db;
	bool exact;
	int rc = mmkv__txn_check(txn, false);

	if (rc)
		return rc;
	if (!data)
		return EINVAL;
	rc = mmkv__txn_db(txn, dbi, &db);
	if (rc)
		return rc;
	rc = mmkv__check_key(txn, dbi, key);
	if (rc)
		return rc;
	mmkv__cursor_init(&c, txn, dbi);
	rc = mmkv__cursor_seek(&c, key, &exact);
	if (rc)
		return rc;
	if (!exact)
		return MMKV_NOTFOUND;
	rc = read_value(&c, NULL, data, TXN_ARENA);
	/* Evicted while reading: what was read may be reused pages. */
	return rc ? rc : mmkv__txn_snapshot_ok(txn);
}

MMKV_API int mmkv_put(mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *key, mmkv_val *data,
                      unsigned int flags)
{
	mmkv_cursor c;
	mmkv_db *db;
	int rc = mmkv__txn_check(txn, true);

	if (rc)
		return rc;
	if (flags & ~(MMKV_NOOVERWRITE | MMKV_APPEND | MMKV_RESERVE))
		return EINVAL;
	rc = check_value(data, flags);
	if (rc == 0)
		rc = mmkv__txn_db(txn, dbi, &db);
	if (rc == 0)
		rc = mmkv__check_key(txn, dbi, key);
	if (rc)
		return rc;
	rc = mmkv__txn_begin_change(txn);
	if (rc)
		return rc;
	mmkv__cursor_init(&c, txn, dbi);
	return change_result(txn, store(&c, key, data, flags));
}

MMKV_API int mmkv_del(mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *key, const mmkv_val *data)
{
	mmkv_cursor c;
	mmkv_db *db;
	bool exact;
	int rc = mmkv__txn_check(txn, true);

	(void)data;
	if (rc)
		return rc;
	rc = mmkv__txn_db(txn, dbi, &db);
	if (rc == 0)
		rc = mmkv__check_key(txn, dbi, key);
	if (rc)
		return rc;
	rc = mmkv__txn_begin_change(txn);
	if (rc)
		return rc;
	mmkv__cursor_init(&c, txn, dbi);
	rc = mmkv__cursor_seek(&c, key, &exact);
	if (rc == 0 && !exact)
		rc = MMKV_NOTFOUND;
	if (rc == 0)
		rc = mmkv__btree_del(&c);
	return change_result(txn, rc);
}

/* ---------------------------------------------------------------- cursors */

MMKV_API int mmkv_cursor_open(mmkv_txn *txn, mmkv_dbi dbi, mmkv_cursor **ret)
{
	mmkv_cursor *c;
	mmkv_db *db;
	int rc = mmkv__txn_check(txn, false);

	if (rc)
		return rc;
	if (!ret)
		return EINVAL;
	rc = mmkv__txn_db(txn, dbi, &db);
	if (rc)
		return rc;
	c = mmkv__malloc(sizeof(*c));
	if (!c)
		return ENOMEM;
	mmkv__cursor_init(c, txn, dbi);
	c->next = txn->cursors;
	txn->cursors = c;
	*ret = c;
	return 0;
}

MMKV_API void mmkv_cursor_close(mmkv_cursor *c)
{
	mmkv_cursor **pp;

	if (!c)
		return;
	for (pp = &c->txn->cursors; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	mmkv__free(c->saved);
	mmkv__free(c->vbuf);
	mmkv__free(c);
}

/* Common entry of every cursor call: the transaction is usable, the
 * database exists in it, and a saved cursor is re-seeked. */
static int cursor_ready(mmkv_cursor *c, bool write)
{
	mmkv_db *db;
	int rc;

	if (!c)
		return EINVAL;
	rc = mmkv__txn_check(c->txn, write);
	if (rc)
		return rc;
	rc = mmkv__txn_db(c->txn, c->dbi, &db);
	if (rc)
		return rc;
	return mmkv__cursor_restore(c);
}

static int seek_op(mmkv_cursor *c, mmkv_val *key, mmkv_cursor_op op)
{
	mmkv_cursor backup = *c;
	bool exact;
	int rc = mmkv__check_key(c->txn, c->dbi, key);

	if (rc)
		return rc;
	rc = mmkv__cursor_seek(c, key, &exact);
	if (rc == 0 && !mmkv__cursor_at_entry(c))
		rc = MMKV_NOTFOUND;
	if (rc == 0 && op != MMKV_SET_RANGE && !exact)
		rc = MMKV_NOTFOUND;
	if (rc == MMKV_NOTFOUND)
		*c = backup; /* a failed search leaves the cursor where it was */
	return rc;
}

MMKV_API int mmkv_cursor_get(mmkv_cursor *c, mmkv_val *key, mmkv_val *data, mmkv_cursor_op op)
{
	mmkv_val found;
	int rc = cursor_ready(c, false);

	if (rc)
		return rc;
	switch (op) {
	case MMKV_FIRST:
		rc = mmkv__cursor_first(c);
		break;
	case MMKV_LAST:
		rc = mmkv__cursor_last(c);
		break;
	case MMKV_NEXT:
		if (!(c->flags & C_POSITIONED)) {
			rc = mmkv__cursor_first(c);
		} else if (c->top < 0) {
			rc = MMKV_NOTFOUND;
		} else if (c->flags & C_AFTER_DEL) {
			/* The successor of the deleted key is under the cursor. */
			rc = mmkv__cursor_at_entry(c) ? 0 : MMKV_NOTFOUND;
			if (rc == 0)
				c->flags &= ~C_AFTER_DEL;
		} else {
			rc = mmkv__cursor_next(c);
		}
		break;
	case MMKV_PREV:
		if (!(c->flags & C_POSITIONED)) {
			rc = mmkv__cursor_last(c);
		} else if (c->top < 0) {
			rc = MMKV_NOTFOUND;
		} else {
			rc = mmkv__cursor_prev(c);
			if (rc == 0)
				c->flags &= ~C_AFTER_DEL;
		}
		break;
	case MMKV_SET:
	case MMKV_SET_KEY:
	case MMKV_SET_RANGE:
		if (!key)
			return EINVAL;
		rc = seek_op(c, key, op);
		break;
	case MMKV_GET_CURRENT:
		if (!(c->flags & C_POSITIONED))
			return EINVAL;
		rc = mmkv__cursor_at_entry(c) ? 0 : MMKV_NOTFOUND;
		break;
	default:
		return EINVAL;
	}
	if (rc)
		return rc;
	rc = read_value(c, &found, data, (mmkv_vbuf){ &c->vbuf, &c->vbuf_cap });
	if (rc == 0)
		rc = mmkv__txn_snapshot_ok(c->txn);
	if (rc == 0 && key && op != MMKV_SET)
		*key = found;
	return rc;
}

MMKV_API int mmkv_cursor_put(mmkv_cursor *c, const mmkv_val *key, mmkv_val *data, unsigned int flags)
{
	int rc = cursor_ready(c, true);

	if (rc)
		return rc;
	if (flags & ~(MMKV_NOOVERWRITE | MMKV_APPEND | MMKV_RESERVE | MMKV_CURRENT))
		return EINVAL;
	rc = check_value(data, flags);
	if (rc == 0)
		rc = mmkv__check_key(c->txn, c->dbi, key);
	if (rc)
		return rc;
	if (flags & MMKV_CURRENT) {
		mmkv_val here;
		if (!mmkv__cursor_at_entry(c) || (c->flags & C_AFTER_DEL))
			return EINVAL;
		rc = mmkv__cursor_read(c, &here, NULL);
		if (rc)
			return rc;
		if (mmkv__db_cmp(c->txn, c->dbi)(&here, key) != 0)
			return EINVAL;
		flags &= ~(MMKV_CURRENT | MMKV_NOOVERWRITE);
	}
	rc = mmkv__txn_begin_change(c->txn);
	if (rc)
		return rc;
	return change_result(c->txn, store(c, key, data, flags));
}

MMKV_API int mmkv_cursor_del(mmkv_cursor *c, unsigned int flags)
{
	bool exact;
	int rc = cursor_ready(c, true);

	if (rc)
		return rc;
	if (flags)
		return EINVAL;
	if (!(c->flags & C_POSITIONED))
		return EINVAL;
	if ((c->flags & C_AFTER_DEL) || !mmkv__cursor_at_entry(c))
		return MMKV_NOTFOUND;
	/* Saving copies the key the cursor will come back to. */
	rc = mmkv__txn_begin_change(c->txn);
	if (rc)
		return rc;
	mmkv_val key = { c->saved_len, c->saved };
	rc = mmkv__cursor_seek(c, &key, &exact);
	if (rc == 0 && !exact)
		rc = CORRUPT(0);
	if (rc == 0)
		rc = mmkv__btree_del(c);
	if (rc == 0)
		c->flags = C_POSITIONED | C_SAVED | C_AFTER_DEL;
	return change_result(c->txn, rc);
}
