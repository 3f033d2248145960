/*
 * btree.c - the copy-on-write B+tree: search, cursor movement, insert with
 * split, delete with merge, large values in overflow runs, and drop.
 *
 * A cursor's stack holds, for each level from the root (0) to the leaf (top),
 * the page, its number and the index of the node followed. Every change first
 * "touches" the stack: each page not yet dirty in this transaction is copied
 * to a new page number and its parent re-pointed, so committed pages are never
 * written (txn.c, freelist.c).
 *
 * Invariants:
 *  1. All leaves are at depth db->depth; a branch page has >= 1 node and
 *     node 0 has an empty key; keys in child i lie in [key i, key i+1).
 *  2. No page reachable from a root is empty: a leaf that loses its last
 *     node is removed from its parent, a root branch with one child is
 *     replaced by it.
 *  3. After a split or a merge the changing cursor's stack is stale; the
 *     caller re-seeks (cheap: the path is dirty and hot). Other cursors of
 *     the transaction were saved by mmkv__txn_begin_change before the change
 *     and re-seek to their saved key when next used.
 *  4. A value goes inline when its leaf node fits MMKV_NODE_MAX, else into an
 *     overflow run of contiguous pages; runs are freed with their node.
 */
#include "page.h"

#include <stdlib.h>

/* ---------------------------------------------------------------- compare */

static int cmp_lex(const mmkv_val *a, const mmkv_val *b)
{
	size_t n = a->size < b->size ? a->size : b->size;
	int r = n ? memcmp(a->data, b->data, n) : 0;
	if (r)
		return r;
	return a->size < b->size ? -1 : a->size > b->size;
}

static int cmp_reverse(const mmkv_val *a, const mmkv_val *b)
{
	const unsigned char *pa = (const unsigned char *)a->data + a->size;
	const unsigned char *pb = (const unsigned char *)b->data + b->size;
	size_t n = a->size < b->size ? a->size : b->size;

	while (n--) {
		int d = (int)*--pa - (int)*--pb;
		if (d)
			return d;
	}
	return a->size < b->size ? -1 : a->size > b->size;
}

/* Native unsigned integers of 4 or 8 bytes; other sizes (only in a damaged
 * file) still get a total order. */
static int cmp_int(const mmkv_val *a, const mmkv_val *b)
{
	if (a->size != b->size)
		return a->size < b->size ? -1 : 1;
	if (a->size == 8) {
		uint64_t x, y;
		memcpy(&x, a->data, 8);
		memcpy(&y, b->data, 8);
		return x < y ? -1 : x > y;
	}
	if (a->size == 4) {
		uint32_t x, y;
		memcpy(&x, a->data, 4);
		memcpy(&y, b->data, 4);
		return x < y ? -1 : x > y;
	}
	return cmp_lex(a, b);
}

mmkv_keycmp mmkv__flags_cmp(uint32_t db_flags)
{
	if (db_flags & MMKV_DB_INTEGERKEY)
		return cmp_int;
	if (db_flags & MMKV_DB_REVERSEKEY)
		return cmp_reverse;
	return cmp_lex;
}

mmkv_keycmp mmkv__db_cmp(const mmkv_txn *txn, mmkv_dbi dbi)
{
	if (dbi == MMKV_DBI_FREE)
		return cmp_int;
	if (txn->env->dbis[dbi].cmp)
		return txn->env->dbis[dbi].cmp;
	return mmkv__flags_cmp(txn->dbs[dbi].flags);
}

int mmkv__check_key(const mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *key)
{
	if (!key || (key->size && !key->data))
		return EINVAL;
	if (key->size == 0 || key->size > MMKV_KEY_MAX(txn->env->psize))
		return MMKV_BAD_VALSIZE;
	if ((txn->dbs[dbi].flags & MMKV_DB_INTEGERKEY) && key->size != 4 && key->size != 8)
		return MMKV_BAD_VALSIZE;
	return 0;
}

/* ------------------------------------------------------------ navigation */

static inline mmkv_db *cursor_db(const mmkv_cursor *c) { return &c->txn->dbs[c->dbi]; }

void mmkv__cursor_init(mmkv_cursor *c, mmkv_txn *txn, mmkv_dbi dbi)
{
	memset(c, 0, offsetof(mmkv_cursor, saved));
	c->txn = txn;
	c->dbi = dbi;
	c->top = -1;
	c->gen = txn->gen;
	c->saved = NULL;
	c->saved_len = c->saved_cap = 0;
	c->vbuf = NULL;
	c->vbuf_cap = 0;
}

/* Load the page at level of the stack, checking its kind against the depth
 * the db record promises (a damaged file could otherwise loop or mix kinds). */
static int load_level(mmkv_cursor *c, int level, pgno_t pgno)
{
	mmkv_db *db = cursor_db(c);
	unsigned char *p;
	int rc;

	if (level >= MMKV_MAX_DEPTH || (uint32_t)level >= db->depth)
		return CORRUPT(pgno);
	rc = mmkv__page_get(c->txn, pgno, &p);
	if (rc)
		return rc;
	if (page_kind(p) != ((uint32_t)level + 1 == db->depth ? MMKV_PAGE_LEAF : MMKV_PAGE_BRANCH))
		return CORRUPT(pgno);
	c->pages[level] = p;
	c->pgnos[level] = pgno;
	return 0;
}

static int child_of(const mmkv_cursor *c, int level, pgno_t *child)
{
	mmkv_node n;
	int rc = node_get(c->pages[level], c->txn->env->psize, c->idx[level], &n);
	if (rc)
		return rc;
	*child = n.child;
	return 0;
}

/* Descend from level (already loaded, idx set) to the leaf, taking the first
 * (leftmost) or last node of every page below. */
static int descend(mmkv_cursor *c, int level, bool leftmost)
{
	for (;;) {
		unsigned char *p = c->pages[level];
		pgno_t child;
		int rc;

		if (page_is_leaf(p)) {
			c->top = level;
			c->flags = (c->flags & ~(C_AFTER_DEL | C_SAVED)) | C_POSITIONED;
			c->gen = c->txn->gen;
			return 0;
		}
		rc = child_of(c, level, &child);
		if (rc)
			return rc;
		rc = load_level(c, level + 1, child);
		if (rc)
			return rc;
		level++;
		c->idx[level] = leftmost ? 0 : page_nkeys(c->pages[level]) - 1;
	}
}

static int load_root(mmkv_cursor *c)
{
	mmkv_db *db = cursor_db(c);

	c->top = -1;
	c->flags &= ~(C_POSITIONED | C_AFTER_DEL | C_SAVED);
	c->gen = c->txn->gen;
	if (db->root == 0)
		return MMKV_NOTFOUND;
	return load_level(c, 0, db->root);
}

int mmkv__cursor_first(mmkv_cursor *c)
{
	int rc = load_root(c);
	if (rc)
		return rc;
	c->idx[0] = 0;
	return descend(c, 0, true);
}

int mmkv__cursor_last(mmkv_cursor *c)
{
	int rc = load_root(c);
	if (rc)
		return rc;
	c->idx[0] = page_nkeys(c->pages[0]) - 1;
	return descend(c, 0, false);
}

/* Position at the first key >= key, within the leaf the key belongs to: the
 * index may equal nkeys (the key sorts after every key of that leaf). */
static int seek_raw(mmkv_cursor *c, const mmkv_val *key, bool *exact)
{
	mmkv_keycmp cmp = mmkv__db_cmp(c->txn, c->dbi);
	uint32_t psize = c->txn->env->psize;
	int rc = load_root(c);
	int level = 0;

	*exact = false;
	if (rc)
		return rc;
	for (;;) {
		unsigned char *p = c->pages[level];
		unsigned n = page_nkeys(p);
		mmkv_node node;

		if (page_is_leaf(p)) {
			unsigned lo = 0, hi = n;
			while (lo < hi) {
				unsigned mid = lo + (hi - lo) / 2;
				int r;
				rc = node_get(p, psize, mid, &node);
				if (rc)
					return rc;
				r = cmp(&node.key, key);
				if (r < 0) {
					lo = mid + 1;
				} else {
					hi = mid;
					if (r == 0)
						*exact = true;
				}
			}
			/* exact was set by some probe equal to key: that probe is lo. */
			c->idx[level] = lo;
			c->top = level;
			c->flags = (c->flags & ~(C_AFTER_DEL | C_SAVED)) | C_POSITIONED;
			c->gen = c->txn->gen;
			return 0;
		}
		/* Branch: the last node whose key is <= key (node 0 is -infinity). */
		unsigned lo = 1, hi = n, found = 0;
		while (lo < hi) {
			unsigned mid = lo + (hi - lo) / 2;
			rc = node_get(p, psize, mid, &node);
			if (rc)
				return rc;
			if (cmp(&node.key, key) <= 0) {
				found = mid;
				lo = mid + 1;
			} else {
				hi = mid;
			}
		}
		c->idx[level] = found;
		rc = node_get(p, psize, found, &node);
		if (rc)
			return rc;
		rc = load_level(c, level + 1, node.child);
		if (rc)
			return rc;
		level++;
	}
}

bool mmkv__cursor_at_entry(const mmkv_cursor *c)
{
	return (c->flags & C_POSITIONED) && c->top >= 0 &&
	       c->idx[c->top] < page_nkeys(c->pages[c->top]);
}

/* Move to the next leaf's first node; MMKV_NOTFOUND (stack unchanged) at the
 * end of the tree. */
static int next_leaf(mmkv_cursor *c)
{
	for (int level = c->top - 1; level >= 0; level--) {
		if (c->idx[level] + 1 < page_nkeys(c->pages[level])) {
			uint32_t saved_idx = c->idx[level];
			int rc;
			c->idx[level]++;
			rc = descend(c, level, true);
			if (rc)
				c->idx[level] = saved_idx;
			return rc;
		}
	}
	return MMKV_NOTFOUND;
}

static int prev_leaf(mmkv_cursor *c)
{
	for (int level = c->top - 1; level >= 0; level--) {
		if (c->idx[level] > 0) {
			int rc;
			c->idx[level]--;
			rc = descend(c, level, false);
			if (rc)
				c->idx[level]++;
			return rc;
		}
	}
	return MMKV_NOTFOUND;
}

/* Seek and normalise: a position past the end of a leaf moves to the next
 * leaf, so the cursor is on the first key >= key, or past the last key. */
int mmkv__cursor_seek(mmkv_cursor *c, const mmkv_val *key, bool *exact)
{
	int rc = seek_raw(c, key, exact);
	if (rc)
		return rc;
	if (c->idx[c->top] >= page_nkeys(c->pages[c->top])) {
		rc = next_leaf(c);
		if (rc == MMKV_NOTFOUND)
			return 0; /* past the end of the tree */
	}
	return rc;
}

int mmkv__cursor_next(mmkv_cursor *c)
{
	if (c->idx[c->top] + 1 < page_nkeys(c->pages[c->top])) {
		c->idx[c->top]++;
		return 0;
	}
	return next_leaf(c);
}

int mmkv__cursor_prev(mmkv_cursor *c)
{
	if (c->idx[c->top] > 0) {
		c->idx[c->top]--;
		return 0;
	}
	return prev_leaf(c);
}

/* The value of a leaf node: inline bytes, or the body of its overflow run. */
static int node_value(mmkv_txn *txn, const mmkv_node *n, mmkv_val *data)
{
	unsigned char *run;
	uint32_t psize = txn->env->psize;
	int rc;

	data->size = n->vsize;
	if (!(n->flags & MMKV_NODE_OVERFLOW)) {
		data->data = n->value;
		return 0;
	}
	rc = mmkv__page_get(txn, n->child, &run);
	if (rc)
		return rc;
	if (page_kind(run) != MMKV_PAGE_OVERFLOW || page_run(run) != overflow_pages(n->vsize, psize))
		return CORRUPT(n->child);
	data->data = run + MMKV_PAGE_HEADER;
	return 0;
}

int mmkv__cursor_read_node(mmkv_cursor *c, mmkv_val *key, mmkv_val *data, unsigned *nflags)
{
	mmkv_node n;
	int rc = node_get(c->pages[c->top], c->txn->env->psize, c->idx[c->top], &n);

	if (rc)
		return rc;
	if (key)
		*key = n.key;
	if (nflags)
		*nflags = n.flags;
	if (data)
		return node_value(c->txn, &n, data);
	return 0;
}

int mmkv__cursor_read(mmkv_cursor *c, mmkv_val *key, mmkv_val *data)
{
	return mmkv__cursor_read_node(c, key, data, NULL);
}

/* -------------------------------------------------- saving and restoring */

int mmkv__cursor_save(mmkv_cursor *c)
{
	mmkv_node n;
	int rc;

	if (!(c->flags & C_POSITIONED) || (c->flags & C_SAVED))
		return 0;
	if (!(c->flags & C_AFTER_DEL)) {
		if (!mmkv__cursor_at_entry(c)) {
			/* Past the end with no deleted key to return to: forget. */
			c->flags &= ~C_POSITIONED;
			return 0;
		}
		rc = node_get(c->pages[c->top], c->txn->env->psize, c->idx[c->top], &n);
		if (rc)
			return rc;
		if (n.key.size > c->saved_cap) {
			unsigned char *b = mmkv__realloc(c->saved, n.key.size);
			if (!b)
				return ENOMEM;
			c->saved = b;
			c->saved_cap = n.key.size;
		}
		if (n.key.size) /* an empty key (damaged page) and no buffer yet */
			memcpy(c->saved, n.key.data, n.key.size);
		c->saved_len = n.key.size;
	}
	c->flags |= C_SAVED;
	return 0;
}

/* Re-seek a saved cursor. If its key is gone, the cursor lands on the key
 * after it, marked C_AFTER_DEL. */
int mmkv__cursor_restore(mmkv_cursor *c)
{
	mmkv_val key = { c->saved_len, c->saved };
	bool exact, after_del = c->flags & C_AFTER_DEL;
	int rc;

	if (!(c->flags & C_SAVED))
		return 0;
	rc = mmkv__cursor_seek(c, &key, &exact);
	if (rc == MMKV_NOTFOUND) { /* tree is now empty */
		c->flags = C_POSITIONED | C_AFTER_DEL;
		c->top = -1;
		return 0;
	}
	if (rc)
		return rc;
	if (!exact || after_del)
		c->flags |= C_AFTER_DEL;
	return 0;
}

/* ------------------------------------------------------------- changing */

/* Make every page on the stack dirty, re-pointing parents at the copies. */
static int cursor_touch(mmkv_cursor *c)
{
	mmkv_txn *txn = c->txn;
	mmkv_db *db = cursor_db(c);

	for (int level = 0; level <= c->top; level++) {
		pgno_t pgno = c->pgnos[level];
		unsigned char *p;
		int rc = mmkv__page_touch(txn, &pgno, &p);
		if (rc)
			return rc;
		if (pgno != c->pgnos[level]) {
			if (level == 0) {
				db->root = pgno;
			} else {
				mmkv_node parent;
				rc = node_get(c->pages[level - 1], txn->env->psize, c->idx[level - 1], &parent);
				if (rc)
					return rc;
				put64(parent.base + MMKV_BNODE_CHILD, pgno);
			}
			c->pgnos[level] = pgno;
		}
		c->pages[level] = p;
	}
	db->mod_txnid = txn->txnid;
	txn->dbstate[c->dbi] |= DB_DIRTY;
	return 0;
}

static int new_tree_page(mmkv_cursor *c, unsigned kind, pgno_t *pgno, unsigned char **p)
{
	mmkv_db *db = cursor_db(c);
	int rc = mmkv__page_new(c->txn, 1, pgno, p);
	if (rc)
		return rc;
	mmkv__page_init(*p, c->txn->env->psize, *pgno, c->txn->txnid, kind);
	if (kind == MMKV_PAGE_LEAF)
		db->leaf_pages++;
	else
		db->branch_pages++;
	return 0;
}

static int release_tree_page(mmkv_cursor *c, pgno_t pgno, unsigned kind)
{
	mmkv_db *db = cursor_db(c);
	if (kind == MMKV_PAGE_LEAF)
		db->leaf_pages--;
	else
		db->branch_pages--;
	return mmkv__page_release(c->txn, pgno, 1);
}

static int release_overflow(mmkv_cursor *c, const mmkv_node *n)
{
	mmkv_db *db = cursor_db(c);
	uint64_t np = overflow_pages(n->vsize, c->txn->env->psize);
	unsigned char *run;
	int rc = mmkv__page_get(c->txn, n->child, &run);

	if (rc)
		return rc;
	if (page_kind(run) != MMKV_PAGE_OVERFLOW || page_run(run) != np)
		return CORRUPT(n->child);
	db->overflow_pages -= np;
	return mmkv__page_release(c->txn, n->child, (uint32_t)np);
}

/* A node held outside any page while a split moves nodes around. */
typedef struct loose_node {
	const unsigned char *body;
	uint32_t size;
} loose_node;

/* Copy a branch node with a replaced key into buf. */
static uint32_t branch_node_rekey(unsigned char *buf, const unsigned char *node, const mmkv_val *key)
{
	mmkv__branch_node_write(buf, le64(node + MMKV_BNODE_CHILD), key->data, key->size);
	return branch_node_size(key->size);
}

static int insert_into_branch(mmkv_cursor *c, int level, unsigned idx, pgno_t child,
                              const mmkv_val *sep);

/* Whether every page above level sits on its last node: the page at level
 * is the rightmost of its level, where sequential inserts land. */
static bool rightmost_path(const mmkv_cursor *c, int level)
{
	for (int l = 0; l < level; l++)
		if (c->idx[l] + 1 != page_nkeys(c->pages[l]))
			return false;
	return true;
}

/*
 * Insert node body (size bytes) at index ins of the full page at level,
 * splitting it in two. The left half stays in the page; the right half goes
 * to a new page whose first key becomes the separator inserted in the
 * parent (recursively splitting it, or growing a new root).
 */
static int split_insert(mmkv_cursor *c, int level, unsigned ins, const unsigned char *body,
                        uint32_t size, unsigned int flags)
{
	mmkv_txn *txn = c->txn;
	mmkv_db *db = cursor_db(c);
	uint32_t psize = txn->env->psize;
	uint32_t usable = psize - MMKV_PAGE_HEADER;
	unsigned char *p = c->pages[level];
	unsigned kind = page_kind(p);
	unsigned n = page_nkeys(p), total = n + 1, k;
	unsigned char *copy = NULL, *right, *sepbuf = NULL;
	loose_node *nodes = NULL;
	pgno_t right_pgno;
	mmkv_val sep;
	int rc;

	copy = mmkv__malloc(psize);
	nodes = mmkv__malloc(sizeof(*nodes) * total);
	sepbuf = mmkv__malloc(MMKV_NODE_MAX(psize));
	if (!copy || !nodes || !sepbuf) {
		rc = ENOMEM;
		goto out;
	}
	memcpy(copy, p, psize);
	for (unsigned i = 0, j = 0; i < total; i++) {
		if (i == ins) {
			nodes[i].body = body;
			nodes[i].size = size;
		} else {
			mmkv_node nd;
			rc = node_get(copy, psize, j++, &nd);
			if (rc)
				goto out;
			nodes[i].body = nd.base;
			nodes[i].size = nd.size;
		}
	}

	/* Choose k: nodes [0, k) stay, [k, total) move right. Sequential
	 * inserts at the right edge leave the left page full. */
	if (ins == n && ((flags & MMKV_APPEND) || rightmost_path(c, level))) {
		k = n;
	} else {
		uint64_t all = 0, left = 0;
		for (unsigned i = 0; i < total; i++)
			all += nodes[i].size + 2;
		k = 1;
		for (unsigned i = 0; i + 1 < total; i++) {
			left += nodes[i].size + 2;
			k = i + 1;
			if (left * 2 >= all)
				break;
		}
		/* Both halves must fit; a half can only overflow by less than one
		 * node, so move the cut by one if needed. */
		left = 0;
		for (unsigned i = 0; i < k; i++)
			left += nodes[i].size + 2;
		if (left > usable)
			k--;
		else if (all - left > usable)
			k++;
	}
	assert(k >= 1 && k < total);

	rc = new_tree_page(c, kind, &right_pgno, &right);
	if (rc)
		goto out;

	/* Separator: the first key of the right page (copied: body pointers
	 * refer to copy and to the caller's buffer, both stable). */
	{
		const unsigned char *b = nodes[k].body;
		if (kind == MMKV_PAGE_LEAF) {
			sep.size = le16(b + MMKV_LNODE_KSIZE);
			memcpy(sepbuf, b + MMKV_LNODE_KEY, sep.size);
		} else {
			sep.size = le16(b + MMKV_BNODE_KSIZE);
			memcpy(sepbuf, b + MMKV_BNODE_KEY, sep.size);
		}
		sep.data = sepbuf;
	}

	mmkv__page_init(p, psize, c->pgnos[level], txn->txnid, kind);
	for (unsigned i = 0; i < k; i++)
		memcpy(mmkv__node_insert(p, i, nodes[i].size), nodes[i].body, nodes[i].size);
	for (unsigned i = k; i < total; i++) {
		if (kind == MMKV_PAGE_BRANCH && i == k) {
			/* The right page's node 0 keeps its child, loses its key. */
			unsigned char nb[MMKV_BRANCH_NODE_HEADER];
			mmkv_val empty = { 0, NULL };
			uint32_t s = branch_node_rekey(nb, nodes[i].body, &empty);
			memcpy(mmkv__node_insert(right, 0, s), nb, s);
		} else {
			memcpy(mmkv__node_insert(right, i - k, nodes[i].size), nodes[i].body, nodes[i].size);
		}
	}

	if (level == 0) {
		pgno_t root_pgno;
		unsigned char *root;
		mmkv_val empty = { 0, NULL };
		rc = new_tree_page(c, MMKV_PAGE_BRANCH, &root_pgno, &root);
		if (rc)
			goto out;
		mmkv__branch_node_write(mmkv__node_insert(root, 0, branch_node_size(0)), c->pgnos[0],
		                        empty.data, 0);
		mmkv__branch_node_write(mmkv__node_insert(root, 1, branch_node_size(sep.size)), right_pgno,
		                        sep.data, sep.size);
		db->root = root_pgno;
		db->depth++;
		if (db->depth > MMKV_MAX_DEPTH)
			rc = MMKV_MAP_FULL; /* unreachable with >= 4 nodes per page */
	} else {
		rc = insert_into_branch(c, level - 1, c->idx[level - 1] + 1, right_pgno, &sep);
	}
out:
	mmkv__free(copy);
	mmkv__free(nodes);
	mmkv__free(sepbuf);
	return rc;
}

static int insert_into_branch(mmkv_cursor *c, int level, unsigned idx, pgno_t child,
                              const mmkv_val *sep)
{
	unsigned char *p = c->pages[level];
	uint32_t size = branch_node_size(sep->size);

	if (page_free_bytes(p) >= size + 2) {
		mmkv__branch_node_write(mmkv__node_insert(p, idx, size), child, sep->data, sep->size);
		return 0;
	}
	unsigned char *body = mmkv__malloc(size);
	int rc;
	if (!body)
		return ENOMEM;
	mmkv__branch_node_write(body, child, sep->data, sep->size);
	rc = split_insert(c, level, idx, body, size, 0);
	mmkv__free(body);
	return rc;
}

/* Build the leaf node for key/data into buf (NODE_MAX bytes), allocating an
 * overflow run for a large value. *dst receives where the value bytes go. */
static int make_leaf_node(mmkv_cursor *c, const mmkv_val *key, const mmkv_val *data, unsigned nflags,
                          unsigned char *buf, uint32_t *size, unsigned char **dst, pgno_t *run_pgno)
{
	mmkv_txn *txn = c->txn;
	uint32_t psize = txn->env->psize;

	*run_pgno = 0;
	if (leaf_node_size(key->size, data->size, false) <= MMKV_NODE_MAX(psize)) {
		mmkv__leaf_node_write(buf, key, (uint32_t)data->size, nflags);
		*size = (uint32_t)leaf_node_size(key->size, data->size, false);
		*dst = buf + MMKV_LNODE_KEY + key->size;
		return 0;
	}
	uint64_t np = overflow_pages(data->size, psize);
	unsigned char *run;
	int rc;
	if (np > UINT32_MAX)
		return MMKV_BAD_VALSIZE;
	rc = mmkv__page_new(txn, (uint32_t)np, run_pgno, &run);
	if (rc)
		return rc;
	memset(run, 0, MMKV_PAGE_HEADER);
	put64(run + MMKV_PAGE_PGNO, *run_pgno);
	put64(run + MMKV_PAGE_TXNID, txn->txnid);
	run[MMKV_PAGE_KIND] = MMKV_PAGE_OVERFLOW;
	put32(run + MMKV_PAGE_UPPER, (uint32_t)np);
	/* Zero the tail so the run's checksum covers defined bytes. */
	memset(run + MMKV_PAGE_HEADER + data->size, 0, np * psize - MMKV_PAGE_HEADER - data->size);
	cursor_db(c)->overflow_pages += np;
	mmkv__leaf_node_write(buf, key, (uint32_t)data->size, MMKV_NODE_OVERFLOW | nflags);
	put64(buf + MMKV_LNODE_KEY + key->size, *run_pgno);
	*size = (uint32_t)leaf_node_size(key->size, 0, true);
	*dst = run + MMKV_PAGE_HEADER;
	return 0;
}

int mmkv__btree_put(mmkv_cursor *c, const mmkv_val *key, mmkv_val *data, unsigned int flags,
                    unsigned nflags)
{
	mmkv_txn *txn = c->txn;
	mmkv_db *db = cursor_db(c);
	uint32_t psize = txn->env->psize;
	unsigned char nodebuf[MMKV_NODE_MAX(MMKV_PAGESIZE_MAX)];
	unsigned char *dst;
	uint32_t size;
	pgno_t run_pgno;
	bool exact = false, split = false;
	int rc;

	if (db->root == 0) {
		pgno_t pgno;
		unsigned char *p;
		rc = new_tree_page(c, MMKV_PAGE_LEAF, &pgno, &p);
		if (rc)
			return rc;
		db->root = pgno;
		db->depth = 1;
		c->top = 0;
		c->pages[0] = p;
		c->pgnos[0] = pgno;
		c->idx[0] = 0;
		c->flags = C_POSITIONED;
		db->mod_txnid = txn->txnid;
		txn->dbstate[c->dbi] |= DB_DIRTY;
	} else {
		if (flags & MMKV_APPEND) {
			mmkv_val last;
			rc = mmkv__cursor_last(c);
			if (rc)
				return rc;
			rc = mmkv__cursor_read(c, &last, NULL);
			if (rc)
				return rc;
			/* Appending needs a key above every key present. */
			if (mmkv__db_cmp(txn, c->dbi)(key, &last) <= 0)
				return MMKV_KEYEXIST;
			c->idx[c->top]++;
		} else {
			rc = seek_raw(c, key, &exact);
			if (rc)
				return rc;
		}
		if (exact && (flags & MMKV_NOOVERWRITE)) {
			mmkv_val old;
			rc = mmkv__cursor_read(c, NULL, &old);
			if (rc)
				return rc;
			*data = old;
			return MMKV_KEYEXIST;
		}
		rc = cursor_touch(c);
		if (rc)
			return rc;
	}

	unsigned char *leaf = c->pages[c->top];
	unsigned ins = c->idx[c->top];

	if (exact) {
		mmkv_node old;
		rc = node_get(leaf, psize, ins, &old);
		if (rc)
			return rc;
		bool inline_new = leaf_node_size(key->size, data->size, false) <= MMKV_NODE_MAX(psize);
		if (!(old.flags & MMKV_NODE_OVERFLOW) && inline_new && old.vsize == data->size) {
			/* Same size, inline: overwrite in place. */
			old.base[MMKV_LNODE_FLAGS] = (unsigned char)nflags;
			if (flags & MMKV_RESERVE)
				data->data = old.value;
			else if (data->size)
				memcpy(old.value, data->data, data->size);
			return 0;
		}
		if (old.flags & MMKV_NODE_OVERFLOW) {
			rc = release_overflow(c, &old);
			if (rc)
				return rc;
		}
		mmkv__node_remove(leaf, psize, ins);
		db->entries--;
	}

	rc = make_leaf_node(c, key, data, nflags, nodebuf, &size, &dst, &run_pgno);
	if (rc)
		return rc;
	if (run_pgno == 0 && !(flags & MMKV_RESERVE) && data->size)
		memcpy(dst, data->data, data->size);
	if (page_free_bytes(leaf) >= size + 2) {
		unsigned char *node = mmkv__node_insert(leaf, ins, size);
		memcpy(node, nodebuf, size);
		if (run_pgno == 0)
			dst = node + MMKV_LNODE_KEY + key->size;
	} else {
		rc = split_insert(c, c->top, ins, nodebuf, size, flags);
		if (rc)
			return rc;
		split = true;
	}
	db->entries++;

	if (split) {
		/* Re-seek to the new node (invariant 3). */
		rc = mmkv__cursor_seek(c, key, &exact);
		if (rc)
			return rc;
		if (!exact)
			return CORRUPT(c->pgnos[c->top]);
		if (run_pgno == 0) {
			mmkv_node nd;
			rc = node_get(c->pages[c->top], psize, c->idx[c->top], &nd);
			if (rc)
				return rc;
			dst = nd.value;
		}
	}
	if (run_pgno && !(flags & MMKV_RESERVE) && data->size)
		memcpy(dst, data->data, data->size);
	if (flags & MMKV_RESERVE)
		data->data = dst;
	return 0;
}

/* Remove node idx of a branch page, keeping node 0's key empty. */
static void branch_remove(unsigned char *p, uint32_t psize, unsigned idx)
{
	mmkv__node_remove(p, psize, idx);
	if (idx == 0 && page_nkeys(p) > 0) {
		mmkv_node first = { 0 };
		(void)node_get(p, psize, 0, &first);
		pgno_t child = first.child;
		mmkv__node_remove(p, psize, 0);
		mmkv__branch_node_write(mmkv__node_insert(p, 0, branch_node_size(0)), child, NULL, 0);
	}
}

static uint32_t page_used(const unsigned char *p, uint32_t psize)
{
	return psize - MMKV_PAGE_HEADER - page_free_bytes(p);
}

/*
 * After a removal from the page at level: drop it if empty, collapse a root
 * with one child, or merge it with a sibling when both fit one page. Pages
 * fuller than a quarter are left alone.
 */
static int rebalance(mmkv_cursor *c, int level)
{
	mmkv_txn *txn = c->txn;
	mmkv_db *db = cursor_db(c);
	uint32_t psize = txn->env->psize;
	uint32_t usable = psize - MMKV_PAGE_HEADER;
	unsigned char *p = c->pages[level];
	unsigned kind = page_kind(p), n = page_nkeys(p);
	int rc;

	if (level == 0) {
		if (n == 0) {
			rc = release_tree_page(c, c->pgnos[0], kind);
			db->root = 0;
			db->depth = 0;
			c->top = -1;
			return rc;
		}
		if (kind == MMKV_PAGE_BRANCH && n == 1) {
			mmkv_node only;
			rc = node_get(p, psize, 0, &only);
			if (rc)
				return rc;
			rc = release_tree_page(c, c->pgnos[0], kind);
			db->root = only.child;
			db->depth--;
			return rc;
		}
		return 0;
	}
	if (n > 0 && page_used(p, psize) >= usable / 4)
		return 0;

	unsigned char *parent = c->pages[level - 1];
	unsigned pi = c->idx[level - 1], pn = page_nkeys(parent);

	if (n == 0) {
		rc = release_tree_page(c, c->pgnos[level], kind);
		if (rc)
			return rc;
		branch_remove(parent, psize, pi);
		return rebalance(c, level - 1);
	}
	if (pn < 2)
		return rebalance(c, level - 1); /* no sibling: maybe collapse above */

	/* Merge the right one of (page, sibling) into the left one. */
	unsigned left_i = pi + 1 < pn ? pi : pi - 1;
	mmkv_node ln, rn, sepnode;
	unsigned char *left, *right;
	pgno_t left_pgno, right_pgno;

	rc = node_get(parent, psize, left_i, &ln);
	if (!rc)
		rc = node_get(parent, psize, left_i + 1, &rn);
	if (rc)
		return rc;
	left_pgno = ln.child;
	right_pgno = rn.child;
	sepnode = rn;
	rc = mmkv__page_get(txn, left_pgno, &left);
	if (!rc)
		rc = mmkv__page_get(txn, right_pgno, &right);
	if (rc)
		return rc;
	if (page_kind(left) != kind || page_kind(right) != kind)
		return CORRUPT(page_kind(left) != kind ? left_pgno : right_pgno);

	uint32_t need = page_used(right, psize);
	if (kind == MMKV_PAGE_BRANCH)
		need += sepnode.key.size; /* right's node 0 takes the separator */
	if (page_used(left, psize) + need > usable)
		return 0;

	/* Touch the left page (it may be the sibling, still clean). */
	pgno_t new_left = left_pgno;
	rc = mmkv__page_touch(txn, &new_left, &left);
	if (rc)
		return rc;
	if (new_left != left_pgno) {
		mmkv_node lnode;
		rc = node_get(parent, psize, left_i, &lnode);
		if (rc)
			return rc;
		put64(lnode.base + MMKV_BNODE_CHILD, new_left);
	}

	unsigned rn_count = page_nkeys(right);
	unsigned char buf[MMKV_NODE_MAX(MMKV_PAGESIZE_MAX)];
	mmkv_val sepkey = { sepnode.key.size, NULL };
	memcpy(buf + MMKV_BRANCH_NODE_HEADER, sepnode.key.data, sepnode.key.size); /* stable copy */
	for (unsigned i = 0; i < rn_count; i++) {
		mmkv_node nd;
		rc = node_get(right, psize, i, &nd);
		if (rc)
			return rc;
		unsigned at = page_nkeys(left);
		if (kind == MMKV_PAGE_BRANCH && i == 0) {
			unsigned char *dst = mmkv__node_insert(left, at, branch_node_size(sepkey.size));
			sepkey.data = buf + MMKV_BRANCH_NODE_HEADER;
			mmkv__branch_node_write(dst, nd.child, sepkey.data, sepkey.size);
		} else {
			memcpy(mmkv__node_insert(left, at, nd.size), nd.base, nd.size);
		}
	}
	rc = release_tree_page(c, right_pgno, kind);
	if (rc)
		return rc;
	branch_remove(parent, psize, left_i + 1);
	c->idx[level - 1] = left_i;
	return rebalance(c, level - 1);
}

/* Make the cursor's path dirty and decode the node under it. */
static int touch_current(mmkv_cursor *c, mmkv_node *n)
{
	int rc = cursor_touch(c);

	if (rc)
		return rc;
	return node_get(c->pages[c->top], c->txn->env->psize, c->idx[c->top], n);
}

int mmkv__btree_del(mmkv_cursor *c)
{
	mmkv_db *db = cursor_db(c);
	mmkv_node n;
	int rc = touch_current(c, &n);

	if (rc)
		return rc;
	if (n.flags & MMKV_NODE_OVERFLOW) {
		rc = release_overflow(c, &n);
		if (rc)
			return rc;
	}
	mmkv__node_remove(c->pages[c->top], c->txn->env->psize, c->idx[c->top]);
	db->entries--;
	return rebalance(c, c->top);
}

/* Release every page of the subtree at pgno (a page at level of a tree of
 * the given depth). */
static int drop_subtree(mmkv_cursor *c, pgno_t pgno, int level)
{
	uint32_t psize = c->txn->env->psize;
	unsigned char *p;
	int rc = load_level(c, level, pgno);

	if (rc)
		return rc;
	p = c->pages[level];
	for (unsigned i = 0; i < page_nkeys(p); i++) {
		mmkv_node n;
		rc = node_get(p, psize, i, &n);
		if (rc)
			return rc;
		if (page_is_leaf(p)) {
			if (n.flags & MMKV_NODE_OVERFLOW)
				rc = release_overflow(c, &n);
		} else {
			rc = drop_subtree(c, n.child, level + 1);
			p = c->pages[level]; /* deeper loads do not move this page, but be explicit */
		}
		if (rc)
			return rc;
	}
	return release_tree_page(c, pgno, page_kind(p));
}

int mmkv__btree_drop(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_cursor c;
	mmkv_db *db = &txn->dbs[dbi];
	int rc = 0;

	mmkv__cursor_init(&c, txn, dbi);
	if (db->root)
		rc = drop_subtree(&c, db->root, 0);
	if (rc)
		return rc;
	db->root = 0;
	db->depth = 0;
	db->entries = 0;
	db->branch_pages = db->leaf_pages = db->overflow_pages = 0;
	db->mod_txnid = txn->txnid;
	txn->dbstate[dbi] |= DB_DIRTY;
	return 0;
}

/* Writable address of the value at the cursor, which must be in a page this
 * transaction made (used to fill reserved free-tree records). */
int mmkv__btree_value_ptr(mmkv_cursor *c, unsigned char **ptr, size_t *size)
{
	mmkv_node n;
	int rc = touch_current(c, &n);

	if (rc)
		return rc;
	*size = n.vsize;
	if (n.flags & MMKV_NODE_OVERFLOW) {
		pgno_t pgno = n.child;
		unsigned char *run;
		rc = mmkv__page_touch(c->txn, &pgno, &run);
		if (rc)
			return rc;
		if (pgno != n.child)
			return CORRUPT(n.child); /* the run was made by this txn */
		*ptr = run + MMKV_PAGE_HEADER;
	} else {
		*ptr = n.value;
	}
	return 0;
}
