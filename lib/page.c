/*
 * page.c - layout of nodes inside branch and leaf pages, and page checksums.
 *
 * Owns the byte-level operations on one page: formatting, inserting and
 * removing a node, and sealing a page with its checksum. It knows nothing of
 * trees or transactions.
 *
 * Invariants kept (see page.h): the slot array stays in order and every node
 * lies between upper and the end of the page; after a removal the node area is
 * compact (no holes), so free space is always the gap between slots and upper.
 */
#include "page.h"

#include <xxhash.h>

int mmkv__page_check_header(const unsigned char *p, uint32_t psize, pgno_t pgno)
{
	unsigned kind = page_kind(p);
	uint32_t upper = page_upper(p);

	if (page_pgno(p) != pgno)
		return CORRUPT(pgno);
	if (kind != MMKV_PAGE_BRANCH && kind != MMKV_PAGE_LEAF)
		return CORRUPT(pgno);
	if (page_nkeys(p) == 0 || upper > psize || MMKV_PAGE_SLOTS + 2u * page_nkeys(p) > upper)
		return CORRUPT(pgno);
	return 0;
}

void mmkv__page_init(unsigned char *p, uint32_t psize, pgno_t pgno, txnid_t txnid, unsigned kind)
{
	memset(p, 0, MMKV_PAGE_HEADER);
	put64(p + MMKV_PAGE_PGNO, pgno);
	put64(p + MMKV_PAGE_TXNID, txnid);
	p[MMKV_PAGE_KIND] = (unsigned char)kind;
	put32(p + MMKV_PAGE_UPPER, psize);
}

unsigned char *mmkv__node_insert(unsigned char *p, unsigned idx, uint32_t size)
{
	unsigned n = page_nkeys(p);
	uint32_t upper = page_upper(p) - size;
	unsigned char *slots = p + MMKV_PAGE_SLOTS;

	assert(page_free_bytes(p) >= size + 2);
	assert(idx <= n);
	memmove(slots + 2 * (idx + 1), slots + 2 * idx, 2 * (n - idx));
	page_set_slot(p, idx, upper);
	put16(p + MMKV_PAGE_NKEYS, (uint16_t)(n + 1));
	put32(p + MMKV_PAGE_UPPER, upper);
	return p + upper;
}

void mmkv__node_remove(unsigned char *p, uint32_t psize, unsigned idx)
{
	unsigned n = page_nkeys(p);
	unsigned off = page_slot(p, idx);
	uint32_t upper = page_upper(p);
	mmkv_node node = { 0 };
	unsigned char *slots = p + MMKV_PAGE_SLOTS;

	assert(idx < n);
	(void)node_get(p, psize, idx, &node); /* a dirty page is well formed */
	/* Close the hole: nodes below off move up by node.size. */
	memmove(p + upper + node.size, p + upper, off - upper);
	for (unsigned i = 0; i < n; i++) {
		unsigned o = page_slot(p, i);
		if (o < off)
			page_set_slot(p, i, o + node.size);
	}
	memmove(slots + 2 * idx, slots + 2 * (idx + 1), 2 * (n - idx - 1));
	put16(p + MMKV_PAGE_NKEYS, (uint16_t)(n - 1));
	put32(p + MMKV_PAGE_UPPER, upper + node.size);
}

void mmkv__leaf_node_write(unsigned char *dst, const mmkv_val *key, uint32_t vsize, unsigned flags)
{
	dst[MMKV_LNODE_FLAGS] = (unsigned char)flags;
	dst[1] = 0;
	put16(dst + MMKV_LNODE_KSIZE, (uint16_t)key->size);
	put32(dst + MMKV_LNODE_VSIZE, vsize);
	if (key->size)
		memcpy(dst + MMKV_LNODE_KEY, key->data, key->size);
}

void mmkv__branch_node_write(unsigned char *dst, pgno_t child, const void *key, size_t ksize)
{
	put64(dst + MMKV_BNODE_CHILD, child);
	put16(dst + MMKV_BNODE_KSIZE, (uint16_t)ksize);
	if (ksize)
		memcpy(dst + MMKV_BNODE_KEY, key, ksize);
}

uint64_t mmkv__page_checksum(const unsigned char *p, size_t len)
{
	return XXH3_64bits(p + 8, len - 8);
}

void mmkv__page_seal(unsigned char *p, size_t len)
{
	/* The gap between slots and nodes holds whatever the memory held
	 * before; zero it so no stale process memory reaches the file. */
	if (page_kind(p) == MMKV_PAGE_BRANCH || page_kind(p) == MMKV_PAGE_LEAF) {
		unsigned lower = MMKV_PAGE_SLOTS + 2 * page_nkeys(p);
		memset(p + lower, 0, page_upper(p) - lower);
	}
	put64(p + MMKV_PAGE_CHECKSUM, mmkv__page_checksum(p, len));
}

bool mmkv__page_checksum_ok(const unsigned char *p, size_t len)
{
	return le64(p + MMKV_PAGE_CHECKSUM) == mmkv__page_checksum(p, len);
}
