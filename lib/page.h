/*
 * page.h - access to pages and nodes (layout in format.h).
 *
 * Everything here reads little-endian fields explicitly and checks every
 * offset and length taken from a page before using it, so that a damaged
 * page yields MMKV_CORRUPTED instead of an out-of-bounds access. The checks
 * are a few comparisons per node, cheap next to the cache miss of the access.
 *
 * Invariants of a well-formed branch or leaf page (checked by
 * mmkv__page_check_header and the node decoders):
 *  1. 32 + 2 * nkeys <= upper <= page size.
 *  2. Every slot offset is >= upper, and its node lies within the page.
 *  3. Slots are in key order; branch node 0's key is empty.
 */
#ifndef MMKV_PAGE_H
#define MMKV_PAGE_H

#include "internal.h"

static inline uint16_t le16(const unsigned char *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}
static inline uint32_t le32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t le64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static inline void put16(unsigned char *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libmmkv stores little-endian fields with memcpy; big-endian hosts need byte swaps here"
#endif

/* ---- page header ---- */

static inline pgno_t page_pgno(const unsigned char *p) { return le64(p + MMKV_PAGE_PGNO); }
static inline txnid_t page_txnid(const unsigned char *p) { return le64(p + MMKV_PAGE_TXNID); }
static inline unsigned page_kind(const unsigned char *p) { return p[MMKV_PAGE_KIND]; }
static inline unsigned page_nkeys(const unsigned char *p) { return le16(p + MMKV_PAGE_NKEYS); }
static inline uint32_t page_upper(const unsigned char *p) { return le32(p + MMKV_PAGE_UPPER); }
static inline uint32_t page_run(const unsigned char *p) { return le32(p + MMKV_PAGE_UPPER); }
static inline bool page_is_leaf(const unsigned char *p) { return page_kind(p) == MMKV_PAGE_LEAF; }
static inline unsigned page_slot(const unsigned char *p, unsigned i)
{
	return le16(p + MMKV_PAGE_SLOTS + 2 * i);
}
static inline void page_set_slot(unsigned char *p, unsigned i, unsigned off)
{
	put16(p + MMKV_PAGE_SLOTS + 2 * i, (uint16_t)off);
}
static inline uint32_t page_free_bytes(const unsigned char *p)
{
	return page_upper(p) - (MMKV_PAGE_SLOTS + 2 * page_nkeys(p));
}

/* ---- nodes ---- */

/* A decoded node of a branch or leaf page. */
typedef struct mmkv_node {
	unsigned char *base;  /* first byte of the node */
	uint32_t size;        /* bytes of the node body (without its slot) */
	unsigned flags;       /* leaf: MMKV_NODE_* */
	mmkv_val key;
	uint32_t vsize;       /* leaf: value size */
	unsigned char *value; /* leaf: inline value bytes, or the 8-byte overflow pgno */
	pgno_t child;         /* branch: child page; leaf overflow: first page of the run */
} mmkv_node;

/* 64-bit: a value of almost 4 GiB must not wrap into a small node size. */
static inline uint64_t leaf_node_size(uint64_t ksize, uint64_t vsize, bool overflow)
{
	return MMKV_LEAF_NODE_HEADER + ksize + (overflow ? 8 : vsize);
}
static inline uint32_t branch_node_size(size_t ksize)
{
	return (uint32_t)(MMKV_BRANCH_NODE_HEADER + ksize);
}

/* Decode node i of a page whose header passed mmkv__page_check_header. */
static inline int node_get(const unsigned char *p, uint32_t psize, unsigned i, mmkv_node *n)
{
	unsigned off = page_slot(p, i);
	unsigned char *base = (unsigned char *)p + off;

	*n = (mmkv_node){ .base = base }; /* defined even when damage is found */
	if (off < page_upper(p))
		return CORRUPT(page_pgno(p));
	if (page_is_leaf(p)) {
		if (off + MMKV_LEAF_NODE_HEADER > psize)
			return CORRUPT(page_pgno(p));
		n->flags = base[MMKV_LNODE_FLAGS];
		n->key.size = le16(base + MMKV_LNODE_KSIZE);
		n->vsize = le32(base + MMKV_LNODE_VSIZE);
		n->key.data = base + MMKV_LNODE_KEY;
		n->value = base + MMKV_LNODE_KEY + n->key.size;
		if (n->flags & ~(MMKV_NODE_OVERFLOW | MMKV_NODE_COMPRESSED))
			return CORRUPT(page_pgno(p));
		uint64_t size = leaf_node_size(n->key.size, n->vsize, n->flags & MMKV_NODE_OVERFLOW);
		if (off + size > psize)
			return CORRUPT(page_pgno(p));
		n->size = (uint32_t)size;
		if (n->flags & MMKV_NODE_OVERFLOW)
			n->child = le64(n->value);
	} else {
		if (off + MMKV_BRANCH_NODE_HEADER > psize)
			return CORRUPT(page_pgno(p));
		n->flags = 0;
		n->child = le64(base + MMKV_BNODE_CHILD);
		n->key.size = le16(base + MMKV_BNODE_KSIZE);
		n->key.data = base + MMKV_BNODE_KEY;
		n->vsize = 0;
		n->value = NULL;
		n->size = branch_node_size(n->key.size);
	}
	if (off + n->size > psize)
		return CORRUPT(page_pgno(p));
	return 0;
}

/* ---- page.c ---- */

/* Check a branch/leaf page header read from the file: page number, kind,
 * and invariant 1. */
int mmkv__page_check_header(const unsigned char *p, uint32_t psize, pgno_t pgno);

/* Format an empty branch or leaf page. */
void mmkv__page_init(unsigned char *p, uint32_t psize, pgno_t pgno, txnid_t txnid, unsigned kind);

/* Insert a node body of size bytes as node idx; the caller checked that
 * size + 2 bytes are free. Returns the node's address for filling in. */
unsigned char *mmkv__node_insert(unsigned char *p, unsigned idx, uint32_t size);

/* Remove node idx, compacting the node area. */
void mmkv__node_remove(unsigned char *p, uint32_t psize, unsigned idx);

/* Write a leaf node header and key at dst (value bytes follow). */
void mmkv__leaf_node_write(unsigned char *dst, const mmkv_val *key, uint32_t vsize, unsigned flags);

/* Write a branch node (child, key) at dst. */
void mmkv__branch_node_write(unsigned char *dst, pgno_t child, const void *key, size_t ksize);

/* XXH3-64 of bytes [8, len) of a page or run. */
uint64_t mmkv__page_checksum(const unsigned char *p, size_t len);
/* Zero a branch/leaf page's free gap, then store its checksum. */
void mmkv__page_seal(unsigned char *p, size_t len);
bool mmkv__page_checksum_ok(const unsigned char *p, size_t len);

/* Pages in an overflow run holding vsize value bytes. */
static inline uint64_t overflow_pages(uint64_t vsize, uint32_t psize)
{
	return (MMKV_PAGE_HEADER + vsize + psize - 1) / psize;
}

#endif /* MMKV_PAGE_H */
