/*
 * test_page.c - unit tests of the page and node layer (lib/page.c, page.h).
 *
 * Covers, for 4 KiB and 64 KiB pages: formatting an empty page; inserting
 * nodes at the front, middle and end and removing them again, checking after
 * every step that the slot array and the node area stay compact (free bytes
 * = upper - end of slots, nodes packed from upper to the end of the page) and
 * that every node keeps its contents, in slot order; a random insert/remove
 * run against a model until the page is full; leaf and branch node encoding
 * as seen by node_get (key, value, overflow flag and page, child); node_get
 * refusing damaged pages (slot below upper, node past the end of the page,
 * unknown leaf flags) with MMKV_CORRUPTED; mmkv__page_check_header; checksum
 * seal and verify; overflow_pages(); and MMKV_NODE_MAX/MMKV_KEY_MAX.
 *
 * Pages are allocated with exactly their size, so that under AddressSanitizer
 * a decoder reading one byte past a damaged page is caught.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mmkv.h"
#include "page.h"
#include "util.h"

static const uint32_t page_sizes[] = { 4096, 65536 };
#define NSIZES (sizeof(page_sizes) / sizeof(page_sizes[0]))
/* More nodes than the smallest ones (16 bytes + slot) fill in 64 KiB. */
#define MAXN 4096

/* ------------------------------------------------------------ helpers */

static unsigned char *page_alloc(uint32_t psize)
{
	unsigned char *p = malloc(psize);

	assert_non_null(p);
	memset(p, 0xEE, psize); /* not zero: nothing may rely on a zeroed page */
	return p;
}

/* One leaf entry of the model: key "kNNNNN" and a patterned value. */
typedef struct entry {
	unsigned id;      /* key is "k%05u" of id: ids sort like the keys */
	uint32_t vsize;   /* inline value bytes */
	bool overflow;    /* value is an overflow reference instead */
	pgno_t ovpgno;
} entry;

static size_t entry_key(const entry *e, char *buf)
{
	return (size_t)sprintf(buf, "k%05u", e->id);
}

static uint32_t entry_node_size(const entry *e)
{
	return leaf_node_size(6, e->vsize, e->overflow);
}

/* Insert e as node idx of leaf page p, as btree.c would. */
static void leaf_insert(unsigned char *p, unsigned idx, const entry *e)
{
	char kb[16];
	mmkv_val key = { entry_key(e, kb), kb };
	uint32_t size = entry_node_size(e);
	unsigned char *dst;

	assert_true(page_free_bytes(p) >= size + 2);
	dst = mmkv__node_insert(p, idx, size);
	mmkv__leaf_node_write(dst, &key, e->overflow ? 100000u + e->id : e->vsize,
	                      e->overflow ? MMKV_NODE_OVERFLOW : 0);
	if (e->overflow)
		put64(dst + MMKV_LNODE_KEY + key.size, e->ovpgno);
	else
		pattern_fill(e->id, dst + MMKV_LNODE_KEY + key.size, e->vsize);
}

static int cmp_uint(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
	return x < y ? -1 : x > y;
}

/* The page holds exactly model[0..n) in slot order, the header is valid,
 * and slots and nodes are compact: the nodes tile [upper, psize) with no
 * hole or overlap. */
static void verify_leaf(const unsigned char *p, uint32_t psize, pgno_t pgno, const entry *model,
                        unsigned n)
{
	static unsigned offs[MAXN][2];
	uint32_t total = 0;

	assert_true(n <= MAXN);
	assert_int_equal(page_kind(p), MMKV_PAGE_LEAF);
	assert_int_equal(page_pgno(p), pgno);
	assert_int_equal(page_nkeys(p), n);
	if (n > 0)
		assert_int_equal(mmkv__page_check_header(p, psize, pgno), 0);
	assert_int_equal(page_free_bytes(p), page_upper(p) - (MMKV_PAGE_SLOTS + 2 * n));
	for (unsigned i = 0; i < n; i++) {
		mmkv_node node;
		char kb[16];
		size_t klen = entry_key(&model[i], kb);

		assert_int_equal(node_get(p, psize, i, &node), 0);
		assert_int_equal(node.key.size, klen);
		assert_memory_equal(node.key.data, kb, klen);
		assert_int_equal(node.size, entry_node_size(&model[i]));
		assert_ptr_equal(node.base, p + page_slot(p, i));
		if (model[i].overflow) {
			assert_int_equal(node.flags, MMKV_NODE_OVERFLOW);
			assert_int_equal(node.vsize, 100000u + model[i].id);
			assert_int_equal(node.child, model[i].ovpgno);
			assert_int_equal(le64(node.value), model[i].ovpgno);
		} else {
			assert_int_equal(node.flags, 0);
			assert_int_equal(node.vsize, model[i].vsize);
			assert_true(pattern_equal(model[i].id, node.value, node.vsize));
		}
		offs[i][0] = page_slot(p, i);
		offs[i][1] = node.size;
		total += node.size;
	}
	assert_int_equal(page_upper(p) + total, psize);
	qsort(offs, n, sizeof(offs[0]), cmp_uint);
	for (unsigned i = 0; i < n; i++) {
		unsigned end = i + 1 < n ? offs[i + 1][0] : psize;
		assert_int_equal(offs[i][0] + offs[i][1], end);
	}
	if (n > 0)
		assert_int_equal(offs[0][0], page_upper(p));
}

static void model_insert(entry *model, unsigned *n, unsigned idx, entry e)
{
	memmove(model + idx + 1, model + idx, (*n - idx) * sizeof(*model));
	model[idx] = e;
	(*n)++;
}

static void model_remove(entry *model, unsigned *n, unsigned idx)
{
	memmove(model + idx, model + idx + 1, (*n - idx - 1) * sizeof(*model));
	(*n)--;
}

/* ------------------------------------------------------------ tests */

static void test_page_init(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = page_alloc(ps);
		unsigned char *tail = malloc(ps - MMKV_PAGE_HEADER);

		assert_non_null(tail);
		memcpy(tail, p + MMKV_PAGE_HEADER, ps - MMKV_PAGE_HEADER);
		mmkv__page_init(p, ps, 77, 12345, MMKV_PAGE_LEAF);
		assert_int_equal(page_pgno(p), 77);
		assert_int_equal(page_txnid(p), 12345);
		assert_int_equal(page_kind(p), MMKV_PAGE_LEAF);
		assert_true(page_is_leaf(p));
		assert_int_equal(page_nkeys(p), 0);
		assert_int_equal(page_upper(p), ps);
		assert_int_equal(page_free_bytes(p), ps - MMKV_PAGE_HEADER);
		assert_int_equal(le64(p + MMKV_PAGE_CHECKSUM), 0);
		assert_int_equal(p[25], 0);
		/* Only the header is written. */
		assert_memory_equal(p + MMKV_PAGE_HEADER, tail, ps - MMKV_PAGE_HEADER);
		/* An empty page is never stored: the header check refuses it. */
		assert_int_equal(mmkv__page_check_header(p, ps, 77), MMKV_CORRUPTED);

		mmkv__page_init(p, ps, 3, 1, MMKV_PAGE_BRANCH);
		assert_int_equal(page_kind(p), MMKV_PAGE_BRANCH);
		assert_false(page_is_leaf(p));
		free(tail);
		free(p);
	}
}

/* Insert at the end, the front and in the middle; remove from the middle,
 * the front and the end; check everything after each step. */
static void test_node_insert_remove(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = page_alloc(ps);
		entry model[16];
		unsigned n = 0;
		static const struct {
			unsigned idx, id;
			uint32_t vsize;
			bool overflow;
		} steps[] = {
			{ 0, 50, 10, false },  /* into the empty page */
			{ 1, 90, 0, false },   /* end, empty value */
			{ 0, 10, 33, false },  /* front */
			{ 1, 30, 0, true },    /* middle, overflow reference */
			{ 2, 40, 257, false }, /* middle, odd size */
			{ 5, 95, 1, false },   /* end */
		};

		mmkv__page_init(p, ps, 9, 4, MMKV_PAGE_LEAF);
		for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			entry e = { steps[i].id, steps[i].vsize, steps[i].overflow,
			            steps[i].overflow ? 0x0102030405060708ull : 0 };
			uint32_t before = page_free_bytes(p);

			leaf_insert(p, steps[i].idx, &e);
			model_insert(model, &n, steps[i].idx, e);
			assert_int_equal(page_free_bytes(p), before - entry_node_size(&e) - 2);
			verify_leaf(p, ps, 9, model, n);
		}
		/* Ids are in key order: the inserts kept the slots sorted. */
		for (unsigned i = 1; i < n; i++)
			assert_true(model[i - 1].id < model[i].id);

		static const unsigned removals[] = { 2, 0, 3, 1, 0, 0 };
		for (size_t i = 0; i < sizeof(removals) / sizeof(removals[0]); i++) {
			uint32_t before = page_free_bytes(p);
			uint32_t size = entry_node_size(&model[removals[i]]);

			mmkv__node_remove(p, ps, removals[i]);
			model_remove(model, &n, removals[i]);
			assert_int_equal(page_free_bytes(p), before + size + 2);
			verify_leaf(p, ps, 9, model, n);
		}
		assert_int_equal(n, 0);
		assert_int_equal(page_upper(p), ps);
		assert_int_equal(page_free_bytes(p), ps - MMKV_PAGE_HEADER);
		free(p);
	}
}

/* Random inserts and removals against the model, filling the page to the
 * last byte several times over. */
static void test_node_random(void **state)
{
	test_rng rng;

	(void)state;
	rng_init(&rng, test_seed("test_page"));
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = page_alloc(ps);
		static entry model[MAXN];
		unsigned n = 0, fills = 0;
		uint32_t vmax = MMKV_NODE_MAX(ps) - MMKV_LEAF_NODE_HEADER - 6;

		mmkv__page_init(p, ps, 5, 1, MMKV_PAGE_LEAF);
		for (int step = 0; step < 3000; step++) {
			bool insert = n == 0 || rng_pct(&rng, 60);

			if (insert) {
				entry e = { 0, (uint32_t)rng_below(&rng, rng_pct(&rng, 80) ? 64 : vmax + 1),
				            rng_pct(&rng, 10), 0 };
				unsigned idx = (unsigned)rng_below(&rng, n + 1);

				if (e.overflow) {
					e.vsize = 0;
					e.ovpgno = rng_next(&rng);
				}
				if (page_free_bytes(p) < entry_node_size(&e) + 2) {
					/* Full for this node: empty half the page. */
					fills++;
					while (n > 0 && page_free_bytes(p) < ps / 2) {
						unsigned r = (unsigned)rng_below(&rng, n);
						mmkv__node_remove(p, ps, r);
						model_remove(model, &n, r);
					}
					verify_leaf(p, ps, 5, model, n);
					continue;
				}
				/* Any id strictly between the neighbours keeps key
				 * order; when there is none, skip this insert. */
				unsigned lo = idx > 0 ? model[idx - 1].id : 0;
				unsigned hi = idx < n ? model[idx].id : 99999;
				if (hi - lo < 2)
					continue;
				e.id = lo + 1 + (unsigned)rng_below(&rng, hi - lo - 1);
				leaf_insert(p, idx, &e);
				model_insert(model, &n, idx, e);
			} else {
				unsigned r = (unsigned)rng_below(&rng, n);
				mmkv__node_remove(p, ps, r);
				model_remove(model, &n, r);
			}
			if (step % 50 == 0)
				verify_leaf(p, ps, 5, model, n);
		}
		verify_leaf(p, ps, 5, model, n);
		assert_true(fills > 0);
		while (n > 0) {
			mmkv__node_remove(p, ps, n - 1);
			model_remove(model, &n, n - 1);
		}
		verify_leaf(p, ps, 5, model, 0);
		free(p);
	}
}

/* Fill a page with small nodes until not one more fits: the free-byte
 * count is exact, down to zero. */
static void test_node_fill_exact(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = page_alloc(ps);
		static entry model[MAXN];
		unsigned n = 0;
		uint32_t left;

		mmkv__page_init(p, ps, 6, 1, MMKV_PAGE_LEAF);
		/* Nodes of 8 + 6 + 2 = 16 bytes plus a 2-byte slot, while two
		 * more would fit. */
		while (page_free_bytes(p) >= 2 * 18) {
			entry e = { n, 2, false, 0 };
			leaf_insert(p, n, &e);
			model[n++] = e;
		}
		verify_leaf(p, ps, 6, model, n);
		/* A last node sized to the remainder fills the page exactly. */
		left = page_free_bytes(p);
		assert_true(left >= 18 && left < 36);
		entry last = { n, left - 2 - (MMKV_LEAF_NODE_HEADER + 6), false, 0 };
		leaf_insert(p, n, &last);
		model[n++] = last;
		assert_int_equal(page_free_bytes(p), 0);
		assert_int_equal(page_upper(p), MMKV_PAGE_SLOTS + 2 * n);
		verify_leaf(p, ps, 6, model, n);
		/* Removing from the full page frees exactly node + slot. */
		uint32_t gone = entry_node_size(&model[n / 2]) + 2;
		mmkv__node_remove(p, ps, n / 2);
		model_remove(model, &n, n / 2);
		assert_int_equal(page_free_bytes(p), gone);
		verify_leaf(p, ps, 6, model, n);
		free(p);
	}
}

static void test_leaf_node_codec(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = page_alloc(ps);
		unsigned char *kmax = malloc(MMKV_KEY_MAX(ps));
		mmkv_val k1 = sval("alpha"), k2 = { MMKV_KEY_MAX(ps), kmax }, k3 = sval("z");
		uint32_t vmax = MMKV_NODE_MAX(ps) - MMKV_LEAF_NODE_HEADER - (uint32_t)k1.size;
		unsigned char *dst;
		mmkv_node node;

		assert_non_null(kmax);
		memset(kmax, 'q', MMKV_KEY_MAX(ps));
		mmkv__page_init(p, ps, 11, 2, MMKV_PAGE_LEAF);

		/* Node 0: the largest inline value for key "alpha". */
		dst = mmkv__node_insert(p, 0, leaf_node_size(k1.size, vmax, false));
		mmkv__leaf_node_write(dst, &k1, vmax, 0);
		pattern_fill(1, dst + MMKV_LNODE_KEY + k1.size, vmax);
		/* Node 1: the largest key with an overflow reference. */
		dst = mmkv__node_insert(p, 1, leaf_node_size(k2.size, 0, true));
		assert_int_equal(leaf_node_size(k2.size, 0, true), MMKV_NODE_MAX(ps));
		mmkv__leaf_node_write(dst, &k2, 0xFFFFFFFFu, MMKV_NODE_OVERFLOW);
		put64(dst + MMKV_LNODE_KEY + k2.size, 0x1122334455667788ull);
		/* Node 2: empty value. */
		dst = mmkv__node_insert(p, 2, leaf_node_size(k3.size, 0, false));
		mmkv__leaf_node_write(dst, &k3, 0, 0);

		assert_int_equal(mmkv__page_check_header(p, ps, 11), 0);

		assert_int_equal(node_get(p, ps, 0, &node), 0);
		assert_int_equal(node.flags, 0);
		assert_int_equal(node.key.size, 5);
		assert_memory_equal(node.key.data, "alpha", 5);
		assert_int_equal(node.vsize, vmax);
		assert_ptr_equal(node.value, node.base + MMKV_LNODE_KEY + 5);
		assert_true(pattern_equal(1, node.value, vmax));
		assert_int_equal(node.size, MMKV_LEAF_NODE_HEADER + 5 + vmax);
		assert_int_equal(node.size, MMKV_NODE_MAX(ps));
		assert_int_equal(node.child, 0);
		/* The encoded bytes, field by field (format.h, LEAF NODE). */
		assert_int_equal(node.base[MMKV_LNODE_FLAGS], 0);
		assert_int_equal(node.base[1], 0);
		assert_int_equal(le16(node.base + MMKV_LNODE_KSIZE), 5);
		assert_int_equal(le32(node.base + MMKV_LNODE_VSIZE), vmax);

		assert_int_equal(node_get(p, ps, 1, &node), 0);
		assert_int_equal(node.flags, MMKV_NODE_OVERFLOW);
		assert_int_equal(node.key.size, MMKV_KEY_MAX(ps));
		assert_memory_equal(node.key.data, kmax, MMKV_KEY_MAX(ps));
		assert_int_equal(node.vsize, 0xFFFFFFFFu);
		assert_int_equal(node.child, 0x1122334455667788ull);
		assert_int_equal(le64(node.value), 0x1122334455667788ull);
		assert_int_equal(node.size, MMKV_LEAF_NODE_HEADER + MMKV_KEY_MAX(ps) + 8);

		assert_int_equal(node_get(p, ps, 2, &node), 0);
		assert_int_equal(node.flags, 0);
		assert_int_equal(node.key.size, 1);
		assert_int_equal(node.vsize, 0);
		assert_int_equal(node.size, MMKV_LEAF_NODE_HEADER + 1);
		/* The last node written sits at upper. */
		assert_ptr_equal(node.base, p + page_upper(p));

		free(kmax);
		free(p);
	}
}

static void test_branch_node_codec(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = page_alloc(ps);
		unsigned char *kmax = malloc(MMKV_KEY_MAX(ps));
		unsigned char *dst;
		mmkv_node node;

		assert_non_null(kmax);
		memset(kmax, 'b', MMKV_KEY_MAX(ps));
		mmkv__page_init(p, ps, 12, 3, MMKV_PAGE_BRANCH);
		dst = mmkv__node_insert(p, 0, branch_node_size(0));
		mmkv__branch_node_write(dst, 1000, NULL, 0);
		dst = mmkv__node_insert(p, 1, branch_node_size(MMKV_KEY_MAX(ps)));
		mmkv__branch_node_write(dst, 0xFFFFFFFFFFull, kmax, MMKV_KEY_MAX(ps));
		dst = mmkv__node_insert(p, 1, branch_node_size(3));
		mmkv__branch_node_write(dst, 2000, "mid", 3);
		assert_int_equal(mmkv__page_check_header(p, ps, 12), 0);

		assert_int_equal(node_get(p, ps, 0, &node), 0);
		assert_int_equal(node.key.size, 0);
		assert_int_equal(node.child, 1000);
		assert_int_equal(node.flags, 0);
		assert_int_equal(node.vsize, 0);
		assert_null(node.value);
		assert_int_equal(node.size, MMKV_BRANCH_NODE_HEADER);
		assert_int_equal(le64(node.base + MMKV_BNODE_CHILD), 1000);
		assert_int_equal(le16(node.base + MMKV_BNODE_KSIZE), 0);

		assert_int_equal(node_get(p, ps, 1, &node), 0);
		assert_int_equal(node.key.size, 3);
		assert_memory_equal(node.key.data, "mid", 3);
		assert_int_equal(node.child, 2000);
		assert_int_equal(node.size, MMKV_BRANCH_NODE_HEADER + 3);

		assert_int_equal(node_get(p, ps, 2, &node), 0);
		assert_int_equal(node.key.size, MMKV_KEY_MAX(ps));
		assert_memory_equal(node.key.data, kmax, MMKV_KEY_MAX(ps));
		assert_int_equal(node.child, 0xFFFFFFFFFFull);
		assert_true(node.size <= MMKV_NODE_MAX(ps));

		/* Removing the middle node keeps the others intact. */
		mmkv__node_remove(p, ps, 1);
		assert_int_equal(page_nkeys(p), 2);
		assert_int_equal(page_upper(p), ps - branch_node_size(0) - branch_node_size(MMKV_KEY_MAX(ps)));
		assert_int_equal(node_get(p, ps, 0, &node), 0);
		assert_int_equal(node.child, 1000);
		assert_int_equal(node_get(p, ps, 1, &node), 0);
		assert_int_equal(node.child, 0xFFFFFFFFFFull);
		assert_memory_equal(node.key.data, kmax, MMKV_KEY_MAX(ps));
		free(kmax);
		free(p);
	}
}

/* A valid leaf page with nodes "aa" -> "value" (idx 0, written last, at
 * upper) and "bb" -> overflow (idx 1). Returns the page. */
static unsigned char *damaged_leaf_base(uint32_t ps)
{
	unsigned char *p = page_alloc(ps);
	mmkv_val k1 = sval("aa"), k2 = sval("bb");
	unsigned char *dst;

	mmkv__page_init(p, ps, 20, 1, MMKV_PAGE_LEAF);
	dst = mmkv__node_insert(p, 0, leaf_node_size(2, 8, true));
	mmkv__leaf_node_write(dst, &k2, 50000, MMKV_NODE_OVERFLOW);
	put64(dst + MMKV_LNODE_KEY + 2, 99);
	dst = mmkv__node_insert(p, 0, leaf_node_size(2, 5, false));
	mmkv__leaf_node_write(dst, &k1, 5, 0);
	memcpy(dst + MMKV_LNODE_KEY + 2, "value", 5);
	assert_int_equal(mmkv__page_check_header(p, ps, 20), 0);
	return p;
}

static void test_node_get_corrupt(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = damaged_leaf_base(ps);
		unsigned char *orig = malloc(ps);
		uint32_t upper = page_upper(p);
		unsigned off0 = page_slot(p, 0), off1 = page_slot(p, 1);
		mmkv_node node;

		assert_non_null(orig);
		memcpy(orig, p, ps);
		assert_int_equal(node_get(p, ps, 0, &node), 0);
		assert_int_equal(node_get(p, ps, 1, &node), 0);
		assert_int_equal(node.child, 99);

		/* Slot offset below upper: into the free gap, the slots, the header. */
		static const int below[] = { -1, -100 };
		for (size_t i = 0; i < 2; i++) {
			page_set_slot(p, 0, (unsigned)((int)upper + below[i]));
			assert_int_equal(node_get(p, ps, 0, &node), MMKV_CORRUPTED);
			memcpy(p, orig, ps);
		}
		page_set_slot(p, 1, 0);
		assert_int_equal(node_get(p, ps, 1, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		page_set_slot(p, 1, MMKV_PAGE_SLOTS);
		assert_int_equal(node_get(p, ps, 1, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);

		/* The node header itself does not fit before the end. */
		for (unsigned back = 1; back < MMKV_LEAF_NODE_HEADER; back++) {
			page_set_slot(p, 0, ps - back);
			assert_int_equal(node_get(p, ps, 0, &node), MMKV_CORRUPTED);
		}
		/* Past the end of a 4 KiB page; the last byte of a 64 KiB one. */
		page_set_slot(p, 0, 0xFFFF);
		assert_int_equal(node_get(p, ps, 0, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);

		/* Key or inline value reaching past the end. */
		put16(p + off1 + MMKV_LNODE_KSIZE, (uint16_t)(ps - off1));
		assert_int_equal(node_get(p, ps, 1, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		put16(p + off1 + MMKV_LNODE_KSIZE, 0xFFFF);
		assert_int_equal(node_get(p, ps, 1, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		put32(p + off0 + MMKV_LNODE_VSIZE, ps - off0 - MMKV_LEAF_NODE_HEADER - 2 + 1);
		assert_int_equal(node_get(p, ps, 0, &node), MMKV_CORRUPTED);
		put32(p + off0 + MMKV_LNODE_VSIZE, ps - off0 - MMKV_LEAF_NODE_HEADER - 2);
		assert_int_equal(node_get(p, ps, 0, &node), 0); /* exactly to the end */
		put32(p + off0 + MMKV_LNODE_VSIZE, 0x10000u + ps);
		assert_int_equal(node_get(p, ps, 0, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		/* An overflow node whose page number would lie past the end. */
		page_set_slot(p, 1, ps - MMKV_LEAF_NODE_HEADER - 2 - 4);
		memmove(p + ps - MMKV_LEAF_NODE_HEADER - 2 - 4, p + off1, MMKV_LEAF_NODE_HEADER + 2 + 4);
		assert_int_equal(node_get(p, ps, 1, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);

		/* Unknown leaf flags. */
		static const unsigned char flags[] = { 0x04, 0x06, 0x80, 0xFF };
		for (size_t i = 0; i < sizeof(flags); i++) {
			p[off0 + MMKV_LNODE_FLAGS] = flags[i];
			assert_int_equal(node_get(p, ps, 0, &node), MMKV_CORRUPTED);
		}
		memcpy(p, orig, ps);
		assert_int_equal(node_get(p, ps, 0, &node), 0);

		/* Branch pages: header past the end, key past the end. */
		mmkv__page_init(p, ps, 21, 1, MMKV_PAGE_BRANCH);
		unsigned char *dst = mmkv__node_insert(p, 0, branch_node_size(0));
		mmkv__branch_node_write(dst, 5, NULL, 0);
		dst = mmkv__node_insert(p, 1, branch_node_size(4));
		mmkv__branch_node_write(dst, 6, "keyz", 4);
		assert_int_equal(node_get(p, ps, 1, &node), 0);
		memcpy(orig, p, ps);
		upper = page_upper(p);
		page_set_slot(p, 1, upper - 1);
		assert_int_equal(node_get(p, ps, 1, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		for (unsigned back = 1; back < MMKV_BRANCH_NODE_HEADER; back++) {
			page_set_slot(p, 0, ps - back);
			assert_int_equal(node_get(p, ps, 0, &node), MMKV_CORRUPTED);
		}
		memcpy(p, orig, ps);
		put16(p + page_slot(p, 1) + MMKV_BNODE_KSIZE, 0xFFFF);
		assert_int_equal(node_get(p, ps, 1, &node), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		/* Node 0 (at the end of the page) with a key of one byte too many. */
		put16(p + page_slot(p, 0) + MMKV_BNODE_KSIZE, 1);
		assert_int_equal(node_get(p, ps, 0, &node), MMKV_CORRUPTED);

		free(orig);
		free(p);
	}
}

/* Value sizes near 4 GiB must not wrap the 32-bit node size: such a node is
 * far larger than any page, whether it is being built or read back. */
static void test_node_size_no_wrap(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];

		/* Values are 0 to 4 GiB - 1 bytes (mmkv.h): none of the large ones
		 * may count as fitting inline. */
		for (uint64_t v = 0xFFFFFFFFull - 32; v <= 0xFFFFFFFFull; v++)
			if (leaf_node_size(5, v, false) <= MMKV_NODE_MAX(ps))
				fail_msg("leaf_node_size(5, %#llx, inline) = %llu fits NODE_MAX(%u)",
				         (unsigned long long)v,
				         (unsigned long long)leaf_node_size(5, v, false), ps);
	}
}

static void test_node_get_huge_vsize(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = damaged_leaf_base(ps);
		unsigned off0 = page_slot(p, 0);
		mmkv_node node;

		uint32_t bad = 0, size = 0;

		/* Inline value sizes whose node size wraps to a few bytes. */
		for (uint32_t back = 0; back < 16 && !bad; back++) {
			put32(p + off0 + MMKV_LNODE_VSIZE, 0xFFFFFFFFu - back);
			if (node_get(p, ps, 0, &node) != MMKV_CORRUPTED) {
				bad = 0xFFFFFFFFu - back;
				size = node.size;
			}
		}
		free(p);
		if (bad)
			fail_msg("node_get accepted an inline value of %#x bytes in a %u-byte page "
			         "(node size %u)", bad, ps, size);
	}
}

static void test_check_header(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		unsigned char *p = damaged_leaf_base(ps);
		unsigned char *orig = malloc(ps);
		unsigned n = page_nkeys(p);

		assert_non_null(orig);
		memcpy(orig, p, ps);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), 0);

		/* Wrong page number: misdirected write or read. */
		assert_int_equal(mmkv__page_check_header(p, ps, 21), MMKV_CORRUPTED);
		assert_int_equal(mmkv__page_check_header(p, ps, 20 + (1ull << 32)), MMKV_CORRUPTED);

		/* Kinds other than branch and leaf. */
		static const unsigned char kinds[] = { 0, MMKV_PAGE_OVERFLOW, 4, 0xFF };
		for (size_t i = 0; i < sizeof(kinds); i++) {
			p[MMKV_PAGE_KIND] = kinds[i];
			assert_int_equal(mmkv__page_check_header(p, ps, 20), MMKV_CORRUPTED);
		}
		p[MMKV_PAGE_KIND] = MMKV_PAGE_BRANCH; /* a valid kind, header-wise */
		assert_int_equal(mmkv__page_check_header(p, ps, 20), 0);
		memcpy(p, orig, ps);

		/* No keys. */
		put16(p + MMKV_PAGE_NKEYS, 0);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), MMKV_CORRUPTED);
		memcpy(p, orig, ps);

		/* upper past the end of the page. */
		put32(p + MMKV_PAGE_UPPER, ps + 1);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), MMKV_CORRUPTED);
		put32(p + MMKV_PAGE_UPPER, 0xFFFFFFFFu);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), MMKV_CORRUPTED);
		put32(p + MMKV_PAGE_UPPER, ps);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), 0); /* legal header */
		memcpy(p, orig, ps);

		/* Slots reaching past upper (nkeys too large, or upper too low). */
		put32(p + MMKV_PAGE_UPPER, MMKV_PAGE_SLOTS + 2 * n - 1);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), MMKV_CORRUPTED);
		put32(p + MMKV_PAGE_UPPER, MMKV_PAGE_SLOTS + 2 * n);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), 0); /* exactly full */
		put32(p + MMKV_PAGE_UPPER, 0);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		put16(p + MMKV_PAGE_NKEYS, 0xFFFF);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		put16(p + MMKV_PAGE_NKEYS, (uint16_t)((page_upper(p) - MMKV_PAGE_SLOTS) / 2 + 1));
		assert_int_equal(mmkv__page_check_header(p, ps, 20), MMKV_CORRUPTED);
		memcpy(p, orig, ps);
		assert_int_equal(mmkv__page_check_header(p, ps, 20), 0);

		free(orig);
		free(p);
	}
}

static void test_checksum(void **state)
{
	test_rng rng;

	(void)state;
	rng_init(&rng, 42);
	for (size_t s = 0; s < NSIZES; s++) {
		uint32_t ps = page_sizes[s];
		size_t run = 3 * (size_t)ps; /* an overflow run of three pages */
		unsigned char *p = malloc(run);
		uint64_t sum;

		assert_non_null(p);
		rng_fill(&rng, p, run);
		mmkv__page_seal(p, ps);
		assert_true(mmkv__page_checksum_ok(p, ps));
		sum = le64(p + MMKV_PAGE_CHECKSUM);
		assert_int_equal(sum, mmkv__page_checksum(p, ps));

		/* Any flipped bit in [8, len) is a mismatch. */
		const size_t at[] = { 8, MMKV_PAGE_KIND, MMKV_PAGE_HEADER, ps / 2, ps - 1 };
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			p[at[i]] ^= 0x01;
			assert_false(mmkv__page_checksum_ok(p, ps));
			p[at[i]] ^= 0x01;
			assert_true(mmkv__page_checksum_ok(p, ps));
		}
		/* A damaged stored checksum is a mismatch too. */
		p[3] ^= 0x80;
		assert_false(mmkv__page_checksum_ok(p, ps));
		/* ... but the checksum field is not part of what it covers. */
		assert_int_equal(mmkv__page_checksum(p, ps), sum);
		p[3] ^= 0x80;
		assert_true(mmkv__page_checksum_ok(p, ps));
		/* Bytes beyond len are not covered. */
		p[ps] ^= 0xFF;
		assert_true(mmkv__page_checksum_ok(p, ps));

		/* A run: the checksum covers all of its pages. */
		mmkv__page_seal(p, run);
		assert_true(mmkv__page_checksum_ok(p, run));
		assert_false(mmkv__page_checksum_ok(p, ps));
		p[run - 1] ^= 0x10;
		assert_false(mmkv__page_checksum_ok(p, run));
		p[run - 1] ^= 0x10;
		p[2 * ps] ^= 0x10;
		assert_false(mmkv__page_checksum_ok(p, run));
		p[2 * ps] ^= 0x10;
		assert_true(mmkv__page_checksum_ok(p, run));

		/* Sealing is idempotent, and only writes the checksum field. */
		mmkv__page_seal(p, ps);
		memcpy(p + ps, p, ps);
		mmkv__page_seal(p, ps);
		assert_memory_equal(p, p + ps, ps);
		free(p);
	}
}

static void test_overflow_pages(void **state)
{
	(void)state;
	for (size_t s = 0; s < NSIZES; s++) {
		uint64_t ps = page_sizes[s];
		uint64_t room = ps - MMKV_PAGE_HEADER; /* value bytes in the first page */

		assert_int_equal(overflow_pages(0, (uint32_t)ps), 1);
		assert_int_equal(overflow_pages(1, (uint32_t)ps), 1);
		assert_int_equal(overflow_pages(room, (uint32_t)ps), 1);
		assert_int_equal(overflow_pages(room + 1, (uint32_t)ps), 2);
		assert_int_equal(overflow_pages(room + ps, (uint32_t)ps), 2);
		assert_int_equal(overflow_pages(room + ps + 1, (uint32_t)ps), 3);
		for (uint64_t k = 1; k < 40; k++) {
			/* k pages hold exactly k * ps - 32 value bytes. */
			assert_int_equal(overflow_pages(k * ps - MMKV_PAGE_HEADER, (uint32_t)ps), k);
			assert_int_equal(overflow_pages(k * ps - MMKV_PAGE_HEADER + 1, (uint32_t)ps), k + 1);
		}
		/* The largest value, 4 GiB - 1 bytes: no overflow of the arithmetic. */
		assert_int_equal(overflow_pages(0xFFFFFFFFull, (uint32_t)ps),
		                 (0xFFFFFFFFull + MMKV_PAGE_HEADER + ps - 1) / ps);
		/* A value just too large for a leaf node goes to a one-page run
		 * or more, never zero pages. */
		assert_true(overflow_pages(MMKV_NODE_MAX(ps), (uint32_t)ps) >= 1);
	}
	assert_int_equal(overflow_pages(0xFFFFFFFFull, 4096), 1048577);
	assert_int_equal(overflow_pages(0xFFFFFFFFull, 65536), 65537);
}

static void test_node_key_max(void **state)
{
	(void)state;
	/* The values the format fixes (format.h). */
	assert_int_equal(MMKV_NODE_MAX(4096u), 1014);
	assert_int_equal(MMKV_KEY_MAX(4096u), 998);
	assert_int_equal(MMKV_NODE_MAX(65536u), 16374);
	assert_int_equal(MMKV_KEY_MAX(65536u), 16358);

	for (uint32_t ps = MMKV_PAGESIZE_MIN; ps <= MMKV_PAGESIZE_MAX; ps *= 2) {
		uint32_t nmax = MMKV_NODE_MAX(ps), kmax = MMKV_KEY_MAX(ps);

		assert_int_equal(nmax, (ps - MMKV_PAGE_HEADER) / 4 - 2);
		/* Four largest nodes and their slots fit one page. */
		assert_true(4 * (nmax + 2) <= ps - MMKV_PAGE_HEADER);
		/* A largest key with an overflow reference is a largest node. */
		assert_int_equal(leaf_node_size(kmax, 0, true), nmax);
		/* A branch node with the largest key is no larger. */
		assert_true(branch_node_size(kmax) <= nmax);
		/* Key sizes fit their 16-bit field; 511-byte keys always fit. */
		assert_true(kmax <= 0xFFFF);
		assert_true(kmax >= 511);

		/* Four largest leaf nodes really go into one page, and three
		 * largest branch nodes plus node 0 into a branch page. */
		unsigned char *p = page_alloc(ps);
		unsigned char *key = malloc(kmax);
		mmkv_val k = { kmax, key };
		mmkv_node node;

		assert_non_null(key);
		mmkv__page_init(p, ps, 2, 1, MMKV_PAGE_LEAF);
		for (unsigned i = 0; i < 4; i++) {
			memset(key, 'a' + (int)i, kmax);
			assert_true(page_free_bytes(p) >= nmax + 2);
			unsigned char *dst = mmkv__node_insert(p, i, nmax);
			mmkv__leaf_node_write(dst, &k, 1u << 20, MMKV_NODE_OVERFLOW);
			put64(dst + MMKV_LNODE_KEY + kmax, 100 + i);
		}
		assert_int_equal(mmkv__page_check_header(p, ps, 2), 0);
		for (unsigned i = 0; i < 4; i++) {
			assert_int_equal(node_get(p, ps, i, &node), 0);
			assert_int_equal(node.child, 100 + i);
			assert_int_equal(((unsigned char *)node.key.data)[kmax - 1], 'a' + i);
		}
		mmkv__page_init(p, ps, 2, 1, MMKV_PAGE_BRANCH);
		unsigned char *dst = mmkv__node_insert(p, 0, branch_node_size(0));
		mmkv__branch_node_write(dst, 7, NULL, 0);
		for (unsigned i = 1; i < 4; i++) {
			assert_true(page_free_bytes(p) >= branch_node_size(kmax) + 2);
			dst = mmkv__node_insert(p, i, branch_node_size(kmax));
			mmkv__branch_node_write(dst, 7 + i, key, kmax);
		}
		assert_int_equal(mmkv__page_check_header(p, ps, 2), 0);
		for (unsigned i = 0; i < 4; i++) {
			assert_int_equal(node_get(p, ps, i, &node), 0);
			assert_int_equal(node.child, 7 + i);
		}
		free(key);
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_init),
		cmocka_unit_test(test_node_insert_remove),
		cmocka_unit_test(test_node_random),
		cmocka_unit_test(test_node_fill_exact),
		cmocka_unit_test(test_leaf_node_codec),
		cmocka_unit_test(test_branch_node_codec),
		cmocka_unit_test(test_node_get_corrupt),
		cmocka_unit_test(test_node_size_no_wrap),
		cmocka_unit_test(test_node_get_huge_vsize),
		cmocka_unit_test(test_check_header),
		cmocka_unit_test(test_checksum),
		cmocka_unit_test(test_overflow_pages),
		cmocka_unit_test(test_node_key_max),
	};

	return cmocka_run_group_tests_name("page", tests, NULL, NULL);
}
