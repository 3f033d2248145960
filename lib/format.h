/*
 * format.h - THE ON-DISK AND LOCK-FILE FORMAT of libmmkv.
 *
 * This is the single place that documents every byte libmmkv stores, in the
 * data file and in the lock file. Other documents point here. The structs
 * below are never overlaid on mapped memory: fields are read and written with
 * the explicit little-endian accessors of page.h, so the layout is the same on
 * every host. _Static_assert pins each offset.
 *
 * DATA FILE
 *
 * The file is an array of pages of one size (4096 to 65536 bytes, a power of
 * two, fixed when the file is created). Page number N starts at byte
 * N * page_size. Pages 0 and 1 are meta pages; every other page in use is a
 * branch, leaf or overflow page of one of three kinds of B+tree:
 *
 *   catalog tree   name of a named database -> its db record (64 bytes)
 *   user trees     the default database and every named database
 *   free tree      txnid F -> sorted page numbers freed by transaction F
 *
 *        page 0        page 1        page 2 ...
 *   +-------------+-------------+------------+------------+----
 *   | meta (even  | meta (odd   | branch /   | overflow run ...
 *   |  txnids)    |  txnids)    | leaf page  | (n pages)  |
 *   +-------------+-------------+------------+------------+----
 *
 * META PAGES. The meta of transaction T is written to page T % 2, so the meta
 * of T - 1 survives a torn write of T's. On open both are read; the valid one
 * with the highest txnid wins; an invalid one (bad checksum, bad magic,
 * impossible values) is skipped. A meta occupies the first 512 bytes of its
 * page; the rest of the page is zero. A new database holds two metas of the
 * same empty database, with txnids 0 (page 0) and 1 (page 1); its first
 * commit is txnid 2.
 *
 *   offset size  field
 *   0      8     checksum: XXH3-64 of bytes [8, 512) of the meta
 *   8      4     magic MMKV_META_MAGIC ("MMKV")
 *   12     4     format version, MMKV_FORMAT_VERSION
 *   16     4     endianness marker MMKV_ENDIAN_MARK as written by a
 *                little-endian host (the only kind supported)
 *   20     4     page size in bytes
 *   24     16    database UUID (libuuid), generated at creation
 *   40     8     txnid of the transaction this meta publishes
 *   48     8     npages: every page number in use is < npages
 *   56     8     file size in bytes when this meta was written
 *   64     8     growth step in bytes (smallest growth of the file)
 *   72     8     size limit in bytes (largest the file may grow)
 *   80     8     feature flags; a set bit this version does not know makes
 *                the file unreadable (MMKV_VERSION_MISMATCH)
 *   88     8     pages written by this transaction (informational)
 *   96     64    catalog tree record (db record layout below)
 *   160    64    default database record
 *   224    64    free tree record
 *   288    224   zero
 *
 * DB RECORD (64 bytes; in the meta, and as the value of a catalog entry)
 *
 *   offset size  field
 *   0      8     root page number, 0 when the tree is empty
 *   8      8     entries (key/value pairs)
 *   16     8     branch pages
 *   24     8     leaf pages
 *   32     8     overflow pages
 *   40     4     depth (levels; 0 when empty, 1 when the root is a leaf)
 *   44     4     flags: MMKV_DB_INTEGERKEY, MMKV_DB_REVERSEKEY, MMKV_DB_COMPRESS
 *   48     8     txnid of the last transaction that changed the tree
 *   56     4     compressed databases: id of the dictionary new values are
 *                compressed with (0: none yet); zero otherwise
 *   60     2     compressed databases: threshold, the smallest value size in
 *                bytes that is tried compressed; zero otherwise
 *   62     1     compressed databases: least saving, in percent of the value
 *                size, for the compressed form to be kept; zero otherwise
 *   63     1     zero
 *
 * PAGE HEADER (32 bytes, at the start of every branch, leaf and overflow page)
 *
 *   offset size  field
 *   0      8     checksum: XXH3-64 of bytes [8, page_size) of the page, or of
 *                [8, run_pages * page_size) of an overflow run, computed when
 *                the page is written; committed pages never change
 *   8      8     page number of this page (catches misdirected writes)
 *   16     8     txnid of the transaction that wrote it
 *   24     1     kind: MMKV_PAGE_BRANCH, MMKV_PAGE_LEAF, MMKV_PAGE_OVERFLOW
 *   25     1     zero
 *   26     2     nkeys: number of nodes (branch, leaf); 0 (overflow)
 *   28     4     branch, leaf: upper, offset of the lowest node byte;
 *                overflow: run length in pages (>= 1)
 *
 * BRANCH AND LEAF PAGES. A slot array of nkeys 16-bit offsets grows up from
 * the header, in key order; node bodies grow down from the end of the page.
 * Free space is the gap between the slots and upper.
 *
 *   +--------+-------------------+------------......-----+------+------+
 *   | header | slot0 slot1 ...   |   free               | node1| node0|
 *   +--------+-------------------+------------......-----+------+------+
 *   0        32                  32+2*nkeys              upper   page_size
 *
 * LEAF NODE
 *
 *   offset size  field
 *   0      1     flags: MMKV_NODE_OVERFLOW when the value is in an overflow
 *                run; MMKV_NODE_COMPRESSED when the stored bytes are a
 *                compressed frame (below) rather than the value itself
 *   1      1     zero
 *   2      2     key size
 *   4      4     stored value size in bytes
 *   8      ksize key bytes
 *   8+ks   ...   the stored value (inline), or the 8-byte first page number
 *                of the overflow run holding it
 *
 * COMPRESSED FRAME (the stored bytes of a node with MMKV_NODE_COMPRESSED)
 *
 *   size   field
 *   1-5    original value size, unsigned LEB128 (7 bits a byte, low first)
 *   1-5    dictionary id, unsigned LEB128; 0: compressed without one
 *   ...    one LZ4 block (the raw block format, no frame header) that
 *          decompresses to exactly the original size, using as its
 *          dictionary the content of that dictionary record
 *
 * The stored size of a compressed frame is what page layout and overflow
 * runs see; the original size is only known after decoding the frame.
 * Values are compressed only in databases with MMKV_DB_COMPRESS, and only
 * when the frame is smaller than the value by the database's least saving.
 *
 * BRANCH NODE. Node i holds child i; keys in child i are >= key i and
 * < key i+1. Node 0's key is empty and stands for "anything smaller".
 *
 *   offset size  field
 *   0      8     child page number
 *   8      2     key size
 *   10     ksize key bytes
 *
 * A value is inline when the whole leaf node fits MMKV_NODE_MAX(page size),
 * a quarter of the usable page; otherwise it lives in an overflow run: one
 * page header, then the value bytes, then zeros to the end of the run. Keys
 * are at most MMKV_KEY_MAX(page size) bytes, so that any page holds at least
 * four nodes and a split always succeeds.
 *
 * FREE TREE. Key: the txnid F that freed the pages (8 bytes, little-endian,
 * compared as an integer). Value: page numbers (8 bytes each, little-endian,
 * ascending) followed by zero or more zero words (page 0 is never free, so
 * zeros are padding left by the commit protocol). Pages freed by F are
 * reusable once no snapshot older than F exists and F < the last committed
 * txnid (so pages of the previous meta's tree survive a torn meta write).
 *
 * CATALOG TREE. Key: database name (1 to 255 bytes, no NUL). Value: its db
 * record (64 bytes). One more entry, whose name starts with a NUL byte so
 * that no user name can equal it, MMKV_DICT_DB_NAME, holds the record of the
 * dictionary database when any database has used compression.
 *
 * DICTIONARY DATABASE. Keys: dictionary ids (4 bytes, native unsigned
 * integers, MMKV_DB_INTEGERKEY order), starting at 1 and never reused while
 * the entry exists. Value:
 *
 *   size   field
 *   1      length L of the owner's name (0: the default database)
 *   L      the owner's name: the database whose values use it
 *   1..64K dictionary content: sample bytes of the owner's values, which
 *          LZ4 uses as history preceding each compressed value
 *
 * A database's dictionaries live as long as the database: a new one (built
 * automatically or by mmkv_dict_build) becomes the current one in the db
 * record, older ones stay for the values compressed with them, and deleting
 * the database (mmkv_drop with del = 1) deletes them.
 *
 * LOCK FILE (PATH-lock)
 *
 * Holds no durable data: it is re-created whenever nobody has it open. All
 * processes map it read-write. Every field read from it is bounds-checked;
 * nothing in it is trusted to describe the data file (metas carry their own
 * checksums).
 *
 *   offset size  field
 *   0      4     magic MMKV_LOCK_MAGIC ("MMKL")
 *   4      4     lock format version, MMKV_LOCK_VERSION
 *   8      16    UUID of the data file this lock file belongs to
 *   24     4     number of reader slots
 *   28     4     write mode of the openers: MMKV_LOCK_MODE_PWRITE or _WRITEMAP,
 *                set by the first writable opener; _NONE while only
 *                read-only handles have the database open
 *   32     4     commit sequence: low 32 bits of the published txnid; the
 *                futex word processes sleep on to hear of commits
 *   36     4     number of processes sleeping on the commit sequence
 *   40     8     published txnid: newest committed transaction
 *   48     80    zero
 *   128    64*n  reader slots
 *
 * READER SLOT (64 bytes, one cache line)
 *
 *   offset size  field
 *   0      8     snapshot txnid, MMKV_SLOT_IDLE when no snapshot is held,
 *                MMKV_SLOT_EVICTED when a writer released a snapshot that
 *                lagged too far (the owner's next call fails)
 *   8      4     pid of the owner (0 when unowned; informational)
 *   12     4     thread id of the owner (informational)
 *   16     48    zero
 *
 * BYTE LOCKS. Open-file-description (OFD) locks on single bytes of the lock
 * file (they may lie beyond its end) carry the liveness the kernel tracks:
 *
 *   MMKV_LOCKBYTE_OPEN    shared by every open handle; exclusive while the
 *                         first opener (re)initialises the lock file
 *   MMKV_LOCKBYTE_WRITER  exclusive by the one write transaction
 *   MMKV_LOCKBYTE_SLOT+i  exclusive by the owner of reader slot i for as long
 *                         as it owns the slot: a slot whose byte nobody
 *                         holds belongs to a dead owner and may be cleared
 */
#ifndef MMKV_FORMAT_H
#define MMKV_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* ---- data file ---- */

#define MMKV_META_MAGIC 0x564B4D4Du /* "MMKV" in file byte order */
#define MMKV_FORMAT_VERSION 1u
#define MMKV_ENDIAN_MARK 0x01020304u
#define MMKV_META_SIZE 512u
#define MMKV_NUM_METAS 2u

#define MMKV_PAGESIZE_MIN 4096u
#define MMKV_PAGESIZE_MAX 65536u

enum mmkv_meta_offset {
	MMKV_META_CHECKSUM = 0,
	MMKV_META_MAGIC_OFF = 8,
	MMKV_META_VERSION = 12,
	MMKV_META_ENDIAN = 16,
	MMKV_META_PAGESIZE = 20,
	MMKV_META_UUID = 24,
	MMKV_META_TXNID = 40,
	MMKV_META_NPAGES = 48,
	MMKV_META_FILESIZE = 56,
	MMKV_META_GROWTH = 64,
	MMKV_META_LIMIT = 72,
	MMKV_META_FEATURES = 80,
	MMKV_META_WRITTEN = 88,
	MMKV_META_CATALOG = 96,
	MMKV_META_DEFAULT_DB = 160,
	MMKV_META_FREE_DB = 224,
	MMKV_META_END = 288
};

/* Feature flags known to this version (none yet). */
#define MMKV_FEATURES_KNOWN 0u

#define MMKV_DBREC_SIZE 64u
enum mmkv_dbrec_offset {
	MMKV_DBREC_ROOT = 0,
	MMKV_DBREC_ENTRIES = 8,
	MMKV_DBREC_BRANCH = 16,
	MMKV_DBREC_LEAF = 24,
	MMKV_DBREC_OVERFLOW = 32,
	MMKV_DBREC_DEPTH = 40,
	MMKV_DBREC_FLAGS = 44,
	MMKV_DBREC_MODTXN = 48,
	MMKV_DBREC_DICT = 56,
	MMKV_DBREC_ZTHRESHOLD = 60,
	MMKV_DBREC_ZSAVING = 62,
	MMKV_DBREC_END = 63
};
#define MMKV_DB_INTEGERKEY 0x1u
#define MMKV_DB_REVERSEKEY 0x2u
#define MMKV_DB_COMPRESS 0x4u
#define MMKV_DB_FLAGS_KNOWN (MMKV_DB_INTEGERKEY | MMKV_DB_REVERSEKEY | MMKV_DB_COMPRESS)

/* The catalog name of the dictionary database (with its leading NUL). */
#define MMKV_DICT_DB_NAME "\0lz4-dictionaries"
#define MMKV_DICT_DB_NAMELEN 17u
/* Largest dictionary content: LZ4 looks back at most 64 KiB. */
#define MMKV_DICT_MAX 65536u
/* Longest compressed-frame header: two 5-byte LEB128 numbers. */
#define MMKV_ZFRAME_HEADER_MAX 10u

#define MMKV_PAGE_HEADER 32u
enum mmkv_page_offset {
	MMKV_PAGE_CHECKSUM = 0,
	MMKV_PAGE_PGNO = 8,
	MMKV_PAGE_TXNID = 16,
	MMKV_PAGE_KIND = 24,
	MMKV_PAGE_NKEYS = 26,
	MMKV_PAGE_UPPER = 28, /* overflow pages: run length in pages */
	MMKV_PAGE_SLOTS = 32
};
#define MMKV_PAGE_BRANCH 1u
#define MMKV_PAGE_LEAF 2u
#define MMKV_PAGE_OVERFLOW 3u

#define MMKV_LEAF_NODE_HEADER 8u
enum mmkv_leaf_node_offset {
	MMKV_LNODE_FLAGS = 0,
	MMKV_LNODE_KSIZE = 2,
	MMKV_LNODE_VSIZE = 4,
	MMKV_LNODE_KEY = 8
};
#define MMKV_NODE_OVERFLOW 0x01u
#define MMKV_NODE_COMPRESSED 0x02u

#define MMKV_BRANCH_NODE_HEADER 10u
enum mmkv_branch_node_offset {
	MMKV_BNODE_CHILD = 0,
	MMKV_BNODE_KSIZE = 8,
	MMKV_BNODE_KEY = 10
};

/* Largest leaf node kept inline: a quarter of the usable page, slot included. */
#define MMKV_NODE_MAX(psize) ((((psize) - MMKV_PAGE_HEADER) / 4u) - 2u)
/* Largest key: a leaf node holding it and an overflow reference fits NODE_MAX. */
#define MMKV_KEY_MAX(psize) (MMKV_NODE_MAX(psize) - MMKV_LEAF_NODE_HEADER - 8u)

#define MMKV_NAME_MAX 255u

/* ---- lock file ---- */

#define MMKV_LOCK_MAGIC 0x4C4B4D4Du /* "MMKL" */
#define MMKV_LOCK_VERSION 1u
#define MMKV_LOCK_HEADER 128u
#define MMKV_LOCK_SLOT_SIZE 64u
#define MMKV_LOCK_MAX_SLOTS 32768u

enum mmkv_lock_offset {
	MMKV_LOCK_MAGIC_OFF = 0,
	MMKV_LOCK_VERSION_OFF = 4,
	MMKV_LOCK_UUID = 8,
	MMKV_LOCK_NSLOTS = 24,
	MMKV_LOCK_WRITEMODE = 28,
	MMKV_LOCK_SEQ = 32,
	MMKV_LOCK_WAITERS = 36,
	MMKV_LOCK_TXNID = 40
};
#define MMKV_LOCK_MODE_NONE 0u /* only read-only openers so far */
#define MMKV_LOCK_MODE_PWRITE 1u
#define MMKV_LOCK_MODE_WRITEMAP 2u

enum mmkv_slot_offset {
	MMKV_SLOT_TXNID = 0,
	MMKV_SLOT_PID = 8,
	MMKV_SLOT_TID = 12
};
#define MMKV_SLOT_IDLE UINT64_MAX
#define MMKV_SLOT_EVICTED (UINT64_MAX - 1)

#define MMKV_LOCKBYTE_OPEN 0u
#define MMKV_LOCKBYTE_WRITER 1u
#define MMKV_LOCKBYTE_SLOT 65536u

_Static_assert(MMKV_META_END + 3 * 0 <= MMKV_META_SIZE, "meta fits its 512 bytes");
_Static_assert(MMKV_META_FREE_DB + MMKV_DBREC_SIZE == MMKV_META_END, "meta records are contiguous");
_Static_assert(MMKV_META_CATALOG + MMKV_DBREC_SIZE == MMKV_META_DEFAULT_DB, "catalog precedes default db");
_Static_assert(MMKV_DBREC_END + 1 == MMKV_DBREC_SIZE, "db record is 64 bytes");
_Static_assert(sizeof(MMKV_DICT_DB_NAME) - 1 == MMKV_DICT_DB_NAMELEN, "dictionary db name length");
_Static_assert(MMKV_PAGE_SLOTS == MMKV_PAGE_HEADER, "slots follow the page header");
_Static_assert(MMKV_KEY_MAX(4096u) >= 511u, "keys of 511 bytes fit 4 KiB pages");
_Static_assert(MMKV_LOCK_TXNID + 8 <= MMKV_LOCK_HEADER, "lock header fits");
_Static_assert(MMKV_LOCK_SEQ % 4 == 0 && MMKV_LOCK_TXNID % 8 == 0, "lock words are aligned");

#endif /* MMKV_FORMAT_H */
