/*
 * internal.h - types shared by the modules of libmmkv.
 *
 * The layering (each layer calls only those below it):
 *
 *     env.c dbi.c check.c     environment, database handles, the checker,
 *     readers.c               reader table reports, lag limit, commit waits
 *     txn.c                   transactions, dirty pages, spill, commit
 *     cursor.c                public cursors and key/value calls
 *     btree.c                 search, insert, split, delete, merge
 *     freelist.c              page allocation and reclamation
 *     page.c page.h           page and node layout
 *     lock.c                  lock file
 *     os.c                    system calls
 *
 * Objects and ownership:
 *
 *   mmkv_env  owns the data file, its map, the lock file and the table of
 *             database handles (names, comparators).
 *   mmkv_txn  owns a copy of its snapshot's meta, one mmkv_db per handle, its
 *             cursors, and (write transactions) the dirty pages and the
 *             free-page state of freelist.c.
 *   mmkv_cursor  a stack of (page, index) from the root to a leaf.
 */
#ifndef MMKV_INTERNAL_H
#define MMKV_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mmkv.h"
#include "format.h"
#include "lock.h"
#include "os.h"

#define MMKV_HIDDEN __attribute__((visibility("hidden")))

typedef uint64_t pgno_t;
typedef uint64_t txnid_t;

/* Corruption is reported, not asserted: CORRUPT(pgno) returns MMKV_CORRUPTED
 * and, in debug builds, logs where it was detected. */
void mmkv__corrupt(const char *file, int line, pgno_t pgno);
#define CORRUPT(pgno) (mmkv__corrupt(__FILE__, __LINE__, (pgno)), MMKV_CORRUPTED)

/* Fixed database handles; user handles start at MMKV_DBI_USER. */
enum {
	MMKV_DBI_FREE = 0,    /* free-page tree */
	MMKV_DBI_CATALOG = 1, /* names -> db records */
	MMKV_DBI_MAIN = 2,    /* the unnamed default database */
	MMKV_DBI_DICT = 3,    /* compression dictionaries (hidden; compress.c) */
	MMKV_DBI_USER = 4
};

#define MMKV_MAX_DEPTH 32

/* A decoded db record (format.h, DB RECORD). */
typedef struct mmkv_db {
	pgno_t root;
	uint64_t entries;
	uint64_t branch_pages;
	uint64_t leaf_pages;
	uint64_t overflow_pages;
	uint32_t depth;
	uint32_t flags; /* MMKV_DB_* */
	txnid_t mod_txnid;
	uint32_t dict_id;    /* MMKV_DB_COMPRESS: current dictionary, 0 none */
	uint16_t zthreshold; /* MMKV_DB_COMPRESS: smallest value tried compressed */
	uint8_t zsaving;     /* MMKV_DB_COMPRESS: least saving kept, percent */
} mmkv_db;

/* A decoded meta page (format.h, META PAGES). */
typedef struct mmkv_meta {
	uint32_t psize;
	uint8_t uuid[16];
	txnid_t txnid;
	uint64_t npages;
	uint64_t file_size;
	uint64_t growth;
	uint64_t limit;
	uint64_t features;
	uint64_t written;
	mmkv_db catalog;
	mmkv_db main;
	mmkv_db free;
} mmkv_meta;

/* One database handle of the environment. */
typedef struct mmkv_dbi_slot {
	char *name;          /* NULL for the fixed handles */
	size_t namelen;
	mmkv_cmp_func *cmp;  /* user comparator, or NULL */
} mmkv_dbi_slot;

struct mmkv_env {
	unsigned int flags;       /* MMKV_RDONLY, MMKV_WRITEMAP, ... */
	bool opened;
	int fd;                   /* data file */
	char *path;
	unsigned char *map;       /* the data file, read-only unless WRITEMAP */
	size_t mapsize;
	uint32_t psize;
	uint32_t os_psize;
	uint64_t file_size;       /* last size seen; only grows (atomic) */
	uint64_t growth;          /* smallest growth step, bytes */
	uint8_t uuid[16];         /* of the database, from the meta read at open */
	mmkv_lock lock;
	uint64_t fork_generation; /* see mmkv__env_forked */

	/* options */
	uint32_t opt_maxreaders;
	uint32_t opt_maxdbs;
	uint64_t opt_mapsize;     /* 0: default */
	uint32_t opt_pagesize;    /* 0: default */
	uint64_t opt_txn_memory;

	/* database handles: [0, ndbis) valid; guarded by dbi_mutex for changes */
	pthread_mutex_t dbi_mutex;
	mmkv_dbi_slot *dbis;
	uint32_t ndbis;           /* read with acquire, written with release */
	uint32_t maxdbis;         /* MMKV_DBI_USER + opt_maxdbs */

	uint64_t max_lag;         /* snapshots older than this many commits are evicted; 0: never */
	int panic;                /* a sync failed: no more writes */
	mmkv_txn *write_txn;      /* the current write transaction of this handle */
};

/* Per-handle state inside a transaction. */
enum {
	DB_VALID = 0x01, /* txn->dbs[i] holds this transaction's view */
	DB_DIRTY = 0x02, /* record changed: written to the catalog at commit */
	DB_GONE = 0x04   /* dropped with del = 1 in this transaction */
};

/* A page this write transaction made. */
typedef struct mmkv_dirty {
	pgno_t pgno;
	unsigned char *ptr;   /* private copy, map address (WRITEMAP), or NULL when spilled */
	uint32_t npages;
	bool spilled;         /* written to the file already; read through the map */
	uint64_t last_use;    /* txn->tick when last touched: spill picks the oldest */
} mmkv_dirty;

/* A growable array of page numbers. */
typedef struct mmkv_pglist {
	pgno_t *v;
	size_t n, cap;
} mmkv_pglist;

enum {
	TXN_RDONLY = 0x01,
	TXN_BROKEN = 0x02,  /* poisoned: only abort */
	TXN_RESET = 0x04,   /* read txn between reset and renew */
	TXN_SAVING = 0x08   /* commit is saving the free-page tree */
};

struct mmkv_txn {
	mmkv_env *env;
	unsigned int flags;
	txnid_t txnid;        /* snapshot (read) or the txnid to commit (write) */
	uint64_t npages;      /* pages in use, incl. those allocated by this txn */
	mmkv_meta meta;       /* snapshot meta */
	uint32_t slot;        /* reader slot (read transactions) */
	bool has_slot;

	mmkv_db *dbs;         /* env->maxdbis entries */
	uint8_t *dbstate;
	mmkv_cursor *cursors; /* open user cursors */
	uint64_t gen;         /* bumped by every change: cursor stacks older are stale */
	uint64_t tick;        /* operation counter for spill LRU */

	/* write transactions */
	mmkv_dirty *dirty;    /* dirty pages */
	size_t ndirty, dirty_cap;
	uint32_t *dirty_hash; /* open addressing: index + 1 into dirty, 0 empty */
	size_t hash_cap;      /* power of two */
	uint64_t dirty_bytes; /* bytes held in private memory (not spilled) */
	mmkv_pglist pool;     /* free pages usable now, sorted descending */
	mmkv_pglist freed;    /* committed pages this txn freed */
	mmkv_pglist consumed; /* free-tree keys whose pages moved to pool */
	txnid_t reclaim_limit;/* free-tree records with key <= this are usable */
	txnid_t next_record;  /* smallest free-tree key not yet looked at */
	bool freetree_done;   /* no more usable records */
	bool readers_checked; /* stale readers cleared once this txn */
	bool grew;            /* the file grew: the next sync must be fsync */

	struct mmkv_zstate *z;/* compression buffers and dictionaries (compress.c) */
};

/* Cursor flags. */
enum {
	C_POSITIONED = 0x01, /* stack points at an entry (or past the end) */
	C_AFTER_DEL = 0x02,  /* the entry at the position follows a deleted one */
	C_SAVED = 0x04       /* stack is stale: re-seek to the saved key */
};

struct mmkv_cursor {
	mmkv_txn *txn;
	mmkv_dbi dbi;
	mmkv_cursor *next;           /* in txn->cursors */
	unsigned int flags;
	int top;                     /* leaf level, -1 when the tree is empty */
	uint64_t gen;                /* txn->gen the stack belongs to */
	unsigned char *pages[MMKV_MAX_DEPTH];
	pgno_t pgnos[MMKV_MAX_DEPTH];
	uint32_t idx[MMKV_MAX_DEPTH];
	unsigned char *saved;        /* key saved when the stack went stale */
	size_t saved_len, saved_cap;
	unsigned char *vbuf;         /* the last value read, decompressed */
	size_t vbuf_cap;
};

/* ---- env.c ---- */
int mmkv__env_check_usable(const mmkv_env *env);
int mmkv__env_grow_file(mmkv_env *env, uint64_t need_bytes);
int mmkv__env_newest_meta(mmkv_env *env, mmkv_meta *meta);
void mmkv__meta_encode(const mmkv_meta *meta, unsigned char *dst);
uint64_t mmkv__meta_checksum(const unsigned char *meta);
void mmkv__db_encode(const mmkv_db *db, unsigned char *dst);
int mmkv__db_decode(const unsigned char *src, mmkv_db *db);

/* ---- txn.c ---- */
int mmkv__page_get(mmkv_txn *txn, pgno_t pgno, unsigned char **page);
bool mmkv__page_is_dirty(mmkv_txn *txn, pgno_t pgno);
int mmkv__page_touch(mmkv_txn *txn, pgno_t *pgno, unsigned char **page);
int mmkv__page_new(mmkv_txn *txn, uint32_t npages, pgno_t *pgno, unsigned char **page);
int mmkv__page_release(mmkv_txn *txn, pgno_t pgno, uint32_t npages);
int mmkv__txn_begin_change(mmkv_txn *txn);
int mmkv__txn_check(mmkv_txn *txn, bool write);
int mmkv__txn_db(mmkv_txn *txn, mmkv_dbi dbi, mmkv_db **db);
void mmkv__txn_fail(mmkv_txn *txn);

/* ---- freelist.c ---- */
int mmkv__freelist_alloc(mmkv_txn *txn, uint32_t npages, pgno_t *pgno);
int mmkv__freelist_free(mmkv_txn *txn, pgno_t pgno, uint32_t npages, bool was_dirty);
int mmkv__freelist_save(mmkv_txn *txn);
void mmkv__freelist_reset(mmkv_txn *txn);
int mmkv__pglist_push(mmkv_pglist *l, pgno_t p);
void mmkv__pglist_free(mmkv_pglist *l);

/* ---- btree.c ---- */
typedef int (*mmkv_keycmp)(const mmkv_val *a, const mmkv_val *b);
mmkv_keycmp mmkv__db_cmp(const mmkv_txn *txn, mmkv_dbi dbi);
mmkv_keycmp mmkv__flags_cmp(uint32_t db_flags);
void mmkv__cursor_init(mmkv_cursor *c, mmkv_txn *txn, mmkv_dbi dbi);
int mmkv__cursor_seek(mmkv_cursor *c, const mmkv_val *key, bool *exact);
int mmkv__cursor_first(mmkv_cursor *c);
int mmkv__cursor_last(mmkv_cursor *c);
int mmkv__cursor_next(mmkv_cursor *c);
int mmkv__cursor_prev(mmkv_cursor *c);
bool mmkv__cursor_at_entry(const mmkv_cursor *c);
int mmkv__cursor_read(mmkv_cursor *c, mmkv_val *key, mmkv_val *data);
/* As mmkv__cursor_read, also giving the node flags (MMKV_NODE_COMPRESSED
 * says data holds a compressed frame). */
int mmkv__cursor_read_node(mmkv_cursor *c, mmkv_val *key, mmkv_val *data, unsigned *nflags);
int mmkv__cursor_save(mmkv_cursor *c);
int mmkv__cursor_restore(mmkv_cursor *c);
/* nflags: 0, or MMKV_NODE_COMPRESSED when data is a compressed frame. */
int mmkv__btree_put(mmkv_cursor *c, const mmkv_val *key, mmkv_val *data, unsigned int flags,
                    unsigned nflags);
int mmkv__btree_del(mmkv_cursor *c);
int mmkv__btree_drop(mmkv_txn *txn, mmkv_dbi dbi);
int mmkv__btree_value_ptr(mmkv_cursor *c, unsigned char **ptr, size_t *size);
int mmkv__check_key(const mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *key);

/* ---- compress.c ---- */
/* Where a decompressed value goes: the transaction's arena (valid until the
 * transaction ends or is reset) or a buffer owned by a cursor (valid until
 * its next call). */
typedef struct mmkv_vbuf {
	unsigned char **buf; /* NULL: the transaction's arena */
	size_t *cap;
} mmkv_vbuf;
int mmkv__value_expand(mmkv_txn *txn, const mmkv_val *stored, mmkv_vbuf where, mmkv_val *out);
/* Before any put into dbi: build its dictionary automatically when due. */
int mmkv__compress_before_put(mmkv_txn *txn, mmkv_dbi dbi);
/* The stored form of data for dbi: *stored is data itself, or (nflags
 * MMKV_NODE_COMPRESSED) a frame valid until the next call. */
int mmkv__value_compress(mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *data, mmkv_val *stored,
                         unsigned *nflags);
int mmkv__compress_enable(mmkv_txn *txn, mmkv_dbi dbi);
int mmkv__dict_drop_owned(mmkv_txn *txn, mmkv_dbi dbi);
void mmkv__zstate_free(mmkv_txn *txn);
void mmkv__zstate_reset(mmkv_txn *txn);

/* ---- dbi.c ---- */
int mmkv__dbi_load(mmkv_txn *txn, mmkv_dbi dbi);
int mmkv__dbi_save_records(mmkv_txn *txn);

/* ---- readers.c ---- */
void mmkv__readers_evict_laggards(mmkv_env *env, txnid_t last_committed);
int mmkv__txn_snapshot_ok(const mmkv_txn *txn);

/* ---- error.c ---- */
bool mmkv__is_error(int rc);

#endif /* MMKV_INTERNAL_H */
