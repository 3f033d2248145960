/*
 * mmkv.h - the public interface of libmmkv, and its manual.
 *
 * libmmkv is an embeddable, memory-mapped, transactional key-value store. A
 * copy-on-write B+tree lives in one file; readers see it through a shared
 * read-only mmap and never block; one writer at a time (across all threads and
 * processes) builds the next version of the tree in pages no reader can see,
 * then publishes it by writing one of two meta pages.
 *
 * OBJECTS
 *
 *   mmkv_env     one open database file (and its lock file, PATH-lock).
 *   mmkv_txn     a read snapshot, or the single write transaction.
 *   mmkv_dbi     a handle naming one key space: the unnamed default database
 *                or a named database listed in the file's catalog.
 *   mmkv_cursor  a position inside one database of one transaction.
 *
 * A typical program:
 *
 *     mmkv_env *env;  mmkv_txn *txn;  mmkv_dbi dbi;
 *     mmkv_val key = { 5, "hello" }, val = { 5, "world" }, out;
 *     mmkv_env_create(&env);
 *     mmkv_env_open(env, "app.mmkv", 0, 0644);
 *     mmkv_txn_begin(env, NULL, 0, &txn);
 *     mmkv_dbi_open(txn, NULL, 0, &dbi);
 *     mmkv_put(txn, dbi, &key, &val, 0);
 *     mmkv_txn_commit(txn);
 *     mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
 *     mmkv_get(txn, dbi, &key, &out);      (out.data points into the map)
 *     mmkv_txn_abort(txn);
 *     mmkv_env_close(env);
 *
 * ERRORS
 *
 *   Every function that can fail returns int: 0 on success, one of the
 *   negative MMKV_* codes below, or a positive errno value (EINVAL for
 *   detectable misuse such as NULL arguments or unknown flags, ENOMEM, EIO,
 *   ENOSPC, EACCES, ...). mmkv_strerror() names all of them.
 *
 *   A write transaction on which an operation failed in a way that may have
 *   left it half-done (any error other than MMKV_NOTFOUND, MMKV_KEYEXIST,
 *   MMKV_BAD_VALSIZE or EINVAL from argument checks) is poisoned: every later
 *   call on it returns MMKV_BAD_TXN, and only mmkv_txn_abort() is allowed.
 *
 * THREADS AND PROCESSES
 *
 *   - An mmkv_env may be shared by all threads of a process.
 *   - A transaction and its cursors must be used by one thread at a time, but
 *     are not bound to the thread that began them: read transactions may move
 *     between threads, and one thread may hold several read transactions.
 *   - At most one write transaction exists at a time in the whole system; a
 *     second mmkv_txn_begin() for writing (in any thread or process) waits
 *     until the first one commits or aborts. Do not begin a write transaction
 *     in a thread that already holds one: it would wait for itself forever.
 *   - Many processes may open the same database at once. Coordination goes
 *     through the lock file PATH-lock, which needs no cleanup: it may be
 *     deleted whenever no process has the database open.
 *
 * CAVEATS
 *
 *   - fork(): a child process must not use an environment opened by its
 *     parent (the locks belong to the parent's open file descriptions); it
 *     opens its own. Calls on an inherited environment return MMKV_PANIC.
 *   - Network file systems: the database relies on a coherent shared mmap and
 *     on open-file-description locks; do not put it on NFS, SMB or similar.
 *   - Long-lived read transactions pin the pages of their snapshot: the file
 *     cannot reuse pages freed after the snapshot began, so it grows while the
 *     reader lives. End read transactions promptly, or mmkv_txn_reset() them
 *     between uses.
 *   - Pointers returned by mmkv_get() and mmkv_cursor_get() point into the
 *     memory map (or, for a write transaction, into its dirty pages). They stay
 *     valid until the transaction ends, or, in a write transaction, until the
 *     next change made by that transaction. Never write through them.
 *   - Values stored compressed (databases opened with MMKV_COMPRESS, see
 *     COMPRESSION below) are returned decompressed, from memory of the
 *     library instead of the map: a value from mmkv_get() (and the existing
 *     value a failed MMKV_NOOVERWRITE put returns) stays valid until the
 *     transaction ends or is reset, and its memory is held until then, so a
 *     transaction that gets many compressed values should be short; a value
 *     from mmkv_cursor_get() stays valid until the next call on that cursor
 *     or its close. Copy what must live longer.
 *   - With MMKV_WRITEMAP, a stray write through a pointer into the map can
 *     corrupt the database; without it the map is read-only and such a bug
 *     crashes the program instead.
 *
 * COMPRESSION
 *
 *   A database opened with MMKV_COMPRESS (at creation, or later in a write
 *   transaction: values stored before stay as they were) stores each value
 *   of at least `threshold` bytes LZ4-compressed when that makes it smaller
 *   by at least `min_saving` percent; other values are stored as they are.
 *   Defaults: threshold 48 bytes (values below it rarely save the few bytes
 *   of the frame header, even with a dictionary), min_saving 10%; change
 *   them with mmkv_compress_set(). Reads return the original bytes (see
 *   CAVEATS for how long they stay valid). MMKV_RESERVE puts store the value
 *   uncompressed, since its bytes are written after the call.
 *
 *   Dictionaries. Small values alike in shape compress poorly one by one,
 *   so a compressed database keeps LZ4 dictionaries: up to 64 KiB of its own
 *   values, sampled evenly over its keys, that LZ4 uses as history. One is
 *   built automatically by the put that finds the database holding 512
 *   entries, and again at 8192 and 131072 entries, so that the sample
 *   follows the data as it grows; the values stored before (when 8192 or
 *   fewer) are compressed again with the new one. One is also built
 *   whenever mmkv_dict_build() is called, for example after a bulk load or
 *   when the kind of values changed. New values use the newest dictionary;
 *   values compressed with an older one keep it and stay readable. The
 *   dictionaries of a database are deleted with it (mmkv_drop with del = 1).
 */
#ifndef MMKV_H
#define MMKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MMKV_BUILDING_LIBRARY) && defined(__GNUC__)
#define MMKV_API __attribute__((visibility("default")))
#else
#define MMKV_API
#endif

/* ---------------------------------------------------------------- version */

#define MMKV_VERSION_MAJOR 0
#define MMKV_VERSION_MINOR 1
#define MMKV_VERSION_PATCH 0
#define MMKV_VERSION_STRING "0.1.0"

/* The library's version string; the numbers are stored where non-NULL. Compare
 * with the MMKV_VERSION_* macros to detect a header/library mismatch. */
MMKV_API const char *mmkv_version(int *major, int *minor, int *patch);

/* ------------------------------------------------------------ error codes */

/* Each X(name, value, message) names one negative library error code. */
#define MMKV_ERRORS(X)                                                          \
	X(KEYEXIST, -31001, "key already exists")                                 \
	X(NOTFOUND, -31002, "no matching key found")                              \
	X(CORRUPTED, -31003, "database file is corrupted")                        \
	X(PANIC, -31004, "environment is unusable after a fatal error; reopen it") \
	X(VERSION_MISMATCH, -31005, "database or lock file format version is not supported") \
	X(INVALID, -31006, "file is not a libmmkv database")                      \
	X(MAP_FULL, -31007, "database reached its size limit")                    \
	X(DBS_FULL, -31008, "too many named databases open; raise maxdbs")        \
	X(READERS_FULL, -31009, "reader table is full of live readers; raise maxreaders") \
	X(BAD_TXN, -31010, "transaction is not usable for this call")             \
	X(BAD_VALSIZE, -31011, "key or value has an unsupported size")            \
	X(BAD_DBI, -31012, "database handle is not valid in this transaction")    \
	X(INCOMPATIBLE, -31013, "operation or flags incompatible with the database or environment") \
	X(BAD_FILE, -31014, "data or lock file is a symlink, hard link or not a regular file") \
	X(SNAPSHOT_TOO_OLD, -31015, "read snapshot fell too far behind and was released; renew or restart the transaction")

enum {
#define MMKV_ERROR_ENUM_(name, value, msg) MMKV_##name = (value),
	MMKV_ERRORS(MMKV_ERROR_ENUM_)
#undef MMKV_ERROR_ENUM_
};

/* A message naming err: one of the codes above, or a positive errno value.
 * The returned string is static; never NULL. */
MMKV_API const char *mmkv_strerror(int err);

/* ------------------------------------------------------------------ flags */

/* Environment flags (mmkv_env_open). MMKV_RDONLY is also a transaction flag. */
#define MMKV_RDONLY 0x00000001u     /* open read-only; never writes the data file */
#define MMKV_WRITEMAP 0x00000002u   /* write through a writable MAP_SHARED map */
#define MMKV_NOSYNC 0x00000004u     /* never fsync: a crash of the OS may lose commits or worse */
#define MMKV_NOMETASYNC 0x00000008u /* sync data pages, not the meta: an OS crash may lose the last commit */
#define MMKV_VERIFY 0x00000010u     /* verify the checksum of every page a read touches */

/* Database flags (mmkv_dbi_open). */
#define MMKV_CREATE 0x00000100u     /* create the database if it does not exist */
#define MMKV_INTEGERKEY 0x00000200u /* keys are native unsigned 32- or 64-bit integers */
#define MMKV_REVERSEKEY 0x00000400u /* compare keys from their last byte to their first */
#define MMKV_COMPRESS 0x00000800u   /* store values LZ4-compressed where it saves space */

/* Write flags (mmkv_put, mmkv_cursor_put). */
#define MMKV_NOOVERWRITE 0x00001000u /* fail with MMKV_KEYEXIST if the key exists */
#define MMKV_APPEND 0x00002000u      /* key sorts after every key present (fast bulk load) */
#define MMKV_RESERVE 0x00004000u     /* reserve data->size bytes; return their address in data->data */
#define MMKV_CURRENT 0x00008000u     /* cursor_put: replace the value at the cursor; key must match */

/* Cursor operations (mmkv_cursor_get). */
typedef enum mmkv_cursor_op {
	MMKV_FIRST,       /* first key */
	MMKV_LAST,        /* last key */
	MMKV_NEXT,        /* next key (first key on an unpositioned cursor) */
	MMKV_PREV,        /* previous key (last key on an unpositioned cursor) */
	MMKV_SET,         /* exactly key; key is not changed */
	MMKV_SET_KEY,     /* exactly key; key is set to the stored key */
	MMKV_SET_RANGE,   /* first key >= key; key is set to it */
	MMKV_GET_CURRENT  /* key and value at the cursor */
} mmkv_cursor_op;

/* ------------------------------------------------------------------ types */

typedef struct mmkv_env mmkv_env;
typedef struct mmkv_txn mmkv_txn;
typedef struct mmkv_cursor mmkv_cursor;
typedef unsigned int mmkv_dbi;

/* A key or a value: same layout as LMDB's MDB_val. */
typedef struct mmkv_val {
	size_t size;
	void *data;
} mmkv_val;

/* A key comparison: negative, zero or positive as a sorts before, equal to, or
 * after b. It must be a total order and never change for a database. */
typedef int(mmkv_cmp_func)(const mmkv_val *a, const mmkv_val *b);

/* Statistics of one database (mmkv_dbi_stat, mmkv_env_stat). */
typedef struct mmkv_stat {
	uint32_t page_size;
	uint32_t depth;          /* levels of the B+tree; 0 when empty */
	uint64_t branch_pages;
	uint64_t leaf_pages;
	uint64_t overflow_pages; /* pages of large values */
	uint64_t entries;
} mmkv_stat;

/* Facts about the environment (mmkv_env_info). */
typedef struct mmkv_envinfo {
	uint8_t uuid[16];        /* fixed when the database was created */
	uint32_t page_size;
	uint32_t max_readers;
	uint32_t num_readers;    /* slots in use in the reader table */
	uint64_t last_txnid;     /* newest committed transaction */
	uint64_t last_pgno;      /* pages in use by the newest snapshot (highest page number + 1) */
	uint64_t file_size;      /* bytes */
	uint64_t map_size;       /* upper limit of the file size, bytes */
	uint64_t growth_step;    /* smallest amount the file grows by, bytes */
	uint64_t free_pages;     /* pages listed in the free-page tree */
} mmkv_envinfo;

/* Result of mmkv_env_check. pages_tree + pages_free + 2 meta pages equals
 * pages_total in a healthy database. */
typedef struct mmkv_check_result {
	uint64_t pages_total;
	uint64_t pages_tree;     /* branch, leaf and overflow pages reachable from a root */
	uint64_t pages_free;
	uint64_t entries;        /* records in all databases */
	uint64_t problems;
} mmkv_check_result;

/* Called once per problem mmkv_env_check finds: pgno is the page concerned
 * (0 when none), problem a sentence describing it, valid during the call. */
typedef void(mmkv_check_func)(void *ctx, uint64_t pgno, const char *problem);

/* ------------------------------------------------------------ environment */

/* Allocate an environment handle. Set options with mmkv_env_set_*() before
 * mmkv_env_open(). Errors: EINVAL, ENOMEM. */
MMKV_API int mmkv_env_create(mmkv_env **env);

/* Open the database at path (created, empty, if it does not exist and
 * MMKV_RDONLY is not given), with the lock file path + "-lock". mode is the
 * permission of created files (0 means 0644). Neither file may be a symlink,
 * FIFO, directory or device.
 *
 * flags: MMKV_RDONLY, MMKV_WRITEMAP, MMKV_NOSYNC, MMKV_NOMETASYNC, MMKV_VERIFY.
 * With MMKV_RDONLY the write-mode flags are ignored: a read-only handle may
 * join openers of either write mode. MMKV_RDONLY needs only read access to
 * the data file, but the lock file (created if missing) must be writable:
 * readers publish their snapshots there. Read-only media are not supported
 * yet.
 *
 * Errors: EINVAL (bad flags, env already opened), ENOENT (missing with
 * MMKV_RDONLY), EACCES, MMKV_BAD_FILE (a symlink, hard link, FIFO, directory
 * or device where either file should be),
 * MMKV_INVALID (not a libmmkv file), MMKV_VERSION_MISMATCH (newer format),
 * MMKV_CORRUPTED (no valid meta page, or the file is shorter than its meta
 * says), MMKV_INCOMPATIBLE (another process has the database open in the
 * other write mode, or with a lock file of another data file), ENOMEM, and
 * I/O errors. After a failure the handle may be opened again or closed. */
MMKV_API int mmkv_env_open(mmkv_env *env, const char *path, unsigned int flags, unsigned int mode);

/* Close the environment and free the handle (also one never opened). Its
 * read transactions must have ended; a write transaction still open is
 * aborted. env may be NULL. */
MMKV_API void mmkv_env_close(mmkv_env *env);

/* Size of the reader table (readers held at once by all processes); takes
 * effect when the lock file is initialised by the first opener. Default 126.
 * Before open only. Errors: EINVAL. */
MMKV_API int mmkv_env_set_maxreaders(mmkv_env *env, unsigned int readers);

/* Number of named database handles this environment may open. Default 16.
 * Before open only. Errors: EINVAL. */
MMKV_API int mmkv_env_set_maxdbs(mmkv_env *env, unsigned int dbs);

/* Upper limit of the data file, in bytes: an address-space reservation, not
 * a preallocation (the file grows as needed up to it). A commit that needs
 * more fails with MMKV_MAP_FULL. Default 1 TiB. A larger limit recorded in the
 * file by another process wins. Before open only. Errors: EINVAL. */
MMKV_API int mmkv_env_set_mapsize(mmkv_env *env, uint64_t size);

/* Page size of a database this handle creates: a power of two from 4096 to
 * 65536. Default: the OS page size. An existing file keeps its own. Before
 * open only. Errors: EINVAL. */
MMKV_API int mmkv_env_set_pagesize(mmkv_env *env, unsigned int size);

/* Memory a write transaction may hold in dirty pages before it spills the
 * least recently used ones to their places in the file (default 64 MiB; at
 * least 64 pages). Not used with MMKV_WRITEMAP. Before open only.
 * Errors: EINVAL. */
MMKV_API int mmkv_env_set_txn_memory(mmkv_env *env, uint64_t bytes);

/* Limit how far a read snapshot may fall behind the newest commit, in
 * transactions (0, the default: no limit). A write transaction that begins
 * while a reader's snapshot is more than max_lag commits old releases that
 * snapshot: its pages may be reused, and the reader's next call (get, cursor
 * call, commit excepted) returns MMKV_SNAPSHOT_TOO_OLD; the reader then aborts,
 * or resets and renews. Pointers the reader obtained before are no longer
 * safe to read. Applies to the snapshots this handle's writers see, in every
 * process. May be set at any time. Errors: EINVAL. */
MMKV_API int mmkv_env_set_max_lag(mmkv_env *env, uint64_t max_lag);

/* The largest key this environment accepts, in bytes (at least 511 with
 * 4 KiB pages). Valid after open; 0 before. */
MMKV_API unsigned int mmkv_env_get_maxkeysize(const mmkv_env *env);

/* Flush the file to disk: needed after commits made with MMKV_NOSYNC or
 * MMKV_NOMETASYNC to make them durable. force is accepted for LMDB
 * compatibility; the sync is always done. Errors: EINVAL, EACCES (read-only),
 * MMKV_PANIC, I/O errors (a failed sync puts the environment in panic). */
MMKV_API int mmkv_env_sync(mmkv_env *env, int force);

/* Statistics of the default database in the newest snapshot.
 * Errors: EINVAL, and those of mmkv_txn_begin. */
MMKV_API int mmkv_env_stat(mmkv_env *env, mmkv_stat *stat);

/* Facts about the environment and its newest snapshot.
 * Errors: EINVAL, and those of mmkv_txn_begin. */
MMKV_API int mmkv_env_info(mmkv_env *env, mmkv_envinfo *info);

/* Verify the newest snapshot: every page's checksum and header, key order
 * within and between pages, overflow runs, the catalog, the free-page tree,
 * and the accounting (every page is reachable exactly once, from a tree or
 * the free-page tree, and tree + free + meta pages = pages in use). Each
 * problem is passed to report (which may be NULL); result (may be NULL)
 * receives the totals. Runs on a read snapshot while writers work.
 * Returns 0 when clean, MMKV_CORRUPTED when a problem was found, or the
 * errors of mmkv_txn_begin and ENOMEM. */
MMKV_API int mmkv_env_check(mmkv_env *env, mmkv_check_func *report, void *ctx,
                            mmkv_check_result *result);

/* Copy flag (mmkv_env_copy, mmkv_env_copyfd). */
#define MMKV_CP_COMPACT 0x1u /* omit free pages and renumber pages densely */

/* Write a consistent copy of the newest snapshot to a new file at path
 * (created with O_EXCL: it must not exist), while writers keep working. The
 * copy is synced before the call returns and opens as a database of its
 * own history (a fresh UUID; both metas hold the snapshot's). With MMKV_CP_COMPACT the copy holds
 * only the pages the trees use, renumbered densely, and no free pages.
 * Errors: EINVAL, EEXIST, those of mmkv_txn_begin, MMKV_CORRUPTED (a damaged
 * page met on the way), ENOMEM, and I/O errors (a failed copy is removed). */
MMKV_API int mmkv_env_copy(mmkv_env *env, const char *path, unsigned int flags);

/* As mmkv_env_copy, to an open, writable, seekable file descriptor: the copy
 * is written from offset 0, the file truncated to its size, and not synced. */
MMKV_API int mmkv_env_copyfd(mmkv_env *env, int fd, unsigned int flags);

/* ---------------------------------------------------------------- readers */

/* One slot of the reader table (mmkv_reader_list). */
typedef struct mmkv_reader_info {
	uint32_t slot;           /* index in the reader table */
	uint32_t pid;            /* process that owns the slot */
	uint32_t tid;            /* thread that claimed it */
	uint64_t txnid;          /* snapshot held */
	uint64_t lag;            /* commits since that snapshot */
	uint64_t pinned_pages;   /* freed pages its snapshot keeps from reuse */
} mmkv_reader_info;

/* Called once per reader holding a snapshot; a nonzero return stops the
 * listing and is returned by mmkv_reader_list. */
typedef int(mmkv_reader_func)(void *ctx, const mmkv_reader_info *reader);

/* List the readers that hold a snapshot, in any process, with their lag.
 * Errors: EINVAL, those of mmkv_txn_begin, or fn's nonzero return. */
MMKV_API int mmkv_reader_list(mmkv_env *env, mmkv_reader_func *fn, void *ctx);

/* Clear the reader slots of dead processes (slots whose liveness lock nobody
 * holds); *cleared (may be NULL) receives how many. Done automatically when
 * the table is full and when a stale slot keeps pages from reuse.
 * Errors: EINVAL, and lock errors. */
MMKV_API int mmkv_reader_check(mmkv_env *env, int *cleared);

/* Sleep until a transaction newer than last_txnid is committed by any
 * process, or timeout_ms passes (negative: no limit). *new_txnid (may be
 * NULL) receives the newest committed txnid. Needs no polling: processes
 * sleep on a shared futex in the lock file. Returns 0, ETIMEDOUT, EINTR,
 * or EINVAL. */
MMKV_API int mmkv_env_wait(mmkv_env *env, uint64_t last_txnid, int timeout_ms, uint64_t *new_txnid);

/* ----------------------------------------------------------- transactions */

/* Begin a transaction: a read snapshot with MMKV_RDONLY, else the write
 * transaction (waits while another thread or process holds it). parent must be
 * NULL: nested transactions are not supported yet (ENOTSUP).
 *
 * Errors: EINVAL, ENOTSUP, EACCES (write on a read-only environment),
 * MMKV_PANIC, MMKV_READERS_FULL, MMKV_CORRUPTED, MMKV_MAP_FULL (the file
 * outgrew this handle's map), ENOMEM, and lock errors. */
MMKV_API int mmkv_txn_begin(mmkv_env *env, mmkv_txn *parent, unsigned int flags, mmkv_txn **txn);

/* Commit and free the transaction (its cursors are closed). On failure the
 * transaction is freed all the same and the database is as before it; a
 * failed sync or meta-page write leaves the environment in panic (MMKV_PANIC
 * for every later write until it is reopened), since the kernel may already
 * have dropped the failed pages: then the commit may or may not have reached
 * the disk, and a reopen shows the state before or after it, never a mix. Committing a read transaction just
 * ends it. Errors: EINVAL, MMKV_BAD_TXN (poisoned), MMKV_MAP_FULL, ENOSPC,
 * EIO and other I/O errors, MMKV_PANIC, ENOMEM. */
MMKV_API int mmkv_txn_commit(mmkv_txn *txn);

/* Throw the transaction's changes away and free it (its cursors are closed).
 * txn may be NULL. */
MMKV_API void mmkv_txn_abort(mmkv_txn *txn);

/* End a read transaction's snapshot but keep its handle and reader slot for
 * mmkv_txn_renew(). Its cursors must not be used until renewed. No effect on a
 * write transaction other than a later MMKV_BAD_TXN. */
MMKV_API void mmkv_txn_reset(mmkv_txn *txn);

/* Give a reset read transaction the newest snapshot. Errors: EINVAL,
 * MMKV_BAD_TXN (not a reset read transaction), MMKV_CORRUPTED, MMKV_PANIC. */
MMKV_API int mmkv_txn_renew(mmkv_txn *txn);

/* The transaction's id: its snapshot's txnid for a read transaction, the
 * txnid it will commit as for a write transaction; 0 for NULL or reset. */
MMKV_API uint64_t mmkv_txn_id(const mmkv_txn *txn);

/* -------------------------------------------------------------- databases */

/* Open a database handle. name NULL is the unnamed default database; other
 * names (up to 255 bytes, NUL-terminated) are entries of the catalog. With
 * MMKV_CREATE in a write transaction, a missing database is created (if the
 * transaction aborts, the handle stays open but names nothing). Key flags
 * (MMKV_INTEGERKEY, MMKV_REVERSEKEY) are recorded at creation; asking for
 * other key flags later fails, unless the database is empty in a write
 * transaction, which then takes the new flags. MMKV_COMPRESS is recorded
 * too; given for an existing uncompressed database in a write transaction
 * it turns compression on (in a read transaction: MMKV_INCOMPATIBLE);
 * opening a compressed database without it changes nothing. Handles belong to the
 * environment and stay valid until it is closed; opening the same name twice
 * returns the same handle.
 *
 * Errors: EINVAL, MMKV_NOTFOUND (missing, without MMKV_CREATE or in a read
 * transaction), MMKV_DBS_FULL, MMKV_INCOMPATIBLE (key flags differ),
 * MMKV_BAD_TXN, MMKV_CORRUPTED, ENOMEM. */
MMKV_API int mmkv_dbi_open(mmkv_txn *txn, const char *name, unsigned int flags, mmkv_dbi *dbi);

/* Called once per named database, in name order; name is valid during the
 * call. A nonzero return stops the listing and is returned by mmkv_dbi_list. */
typedef int(mmkv_name_func)(void *ctx, const mmkv_val *name);

/* List the named databases in this transaction's view (the default database
 * is not listed; databases created by this transaction appear after it
 * commits). Errors: EINVAL, MMKV_BAD_TXN, MMKV_CORRUPTED, or fn's return. */
MMKV_API int mmkv_dbi_list(mmkv_txn *txn, mmkv_name_func *fn, void *ctx);

/* Statistics of one database in this transaction's view. Errors: EINVAL,
 * MMKV_BAD_DBI, MMKV_BAD_TXN, MMKV_CORRUPTED. */
MMKV_API int mmkv_dbi_stat(mmkv_txn *txn, mmkv_dbi dbi, mmkv_stat *stat);

/* The database's flags (MMKV_INTEGERKEY, MMKV_REVERSEKEY, MMKV_COMPRESS) in
 * this transaction's view. Errors: EINVAL, MMKV_BAD_DBI, MMKV_BAD_TXN. */
MMKV_API int mmkv_dbi_flags(mmkv_txn *txn, mmkv_dbi dbi, unsigned int *flags);

/* Empty the database (del == 0) or delete it from the catalog (del == 1; not
 * for the default database, which is only emptied). Pages are freed for reuse
 * after the commit. Errors: EINVAL, EACCES (read transaction), MMKV_BAD_DBI,
 * MMKV_BAD_TXN, MMKV_CORRUPTED, MMKV_MAP_FULL, ENOMEM. */
MMKV_API int mmkv_drop(mmkv_txn *txn, mmkv_dbi dbi, int del);

/* Use cmp (not NULL) to order the keys of this database instead of bytewise order. Not
 * stored in the file: every process must set the same function, in its first
 * transaction that uses the handle, before any read or write.
 * Errors: EINVAL, MMKV_BAD_DBI. */
MMKV_API int mmkv_set_compare(mmkv_txn *txn, mmkv_dbi dbi, mmkv_cmp_func *cmp);

/* ------------------------------------------------------------ compression */

/* Compression settings and dictionaries of a database (see COMPRESSION). */
typedef struct mmkv_compress_stat {
	unsigned int threshold;  /* values of at least this many bytes are tried */
	unsigned int min_saving; /* percent a compressed value must save to be kept */
	uint32_t dict_id;        /* dictionary new values use; 0: none yet */
	uint32_t dict_count;     /* dictionaries the database has (current and older) */
	uint64_t dict_bytes;     /* their total size */
} mmkv_compress_stat;

/* Report the compression settings of a database opened with MMKV_COMPRESS.
 * Errors: EINVAL, MMKV_INCOMPATIBLE (not compressed), MMKV_BAD_DBI,
 * MMKV_BAD_TXN, MMKV_CORRUPTED. */
MMKV_API int mmkv_compress_info(mmkv_txn *txn, mmkv_dbi dbi, mmkv_compress_stat *stat);

/* Set the threshold (0 to 65535 bytes) and least saving (0 to 99 percent)
 * of a compressed database; they apply to values stored from now on and are
 * recorded in the file. Errors: EINVAL (out of range), EACCES (read
 * transaction), MMKV_INCOMPATIBLE (not compressed), MMKV_BAD_DBI,
 * MMKV_BAD_TXN. */
MMKV_API int mmkv_compress_set(mmkv_txn *txn, mmkv_dbi dbi, unsigned int threshold,
                               unsigned int min_saving);

/* Build a new dictionary for a compressed database from a sample of its
 * current values and use it for the values stored from now on (older
 * values keep theirs). Values already stored are not recompressed; to
 * recompress everything, rewrite the values (or dump and load).
 * Errors: MMKV_NOTFOUND (the values at or above the threshold are too few
 * to sample; nothing changed), EACCES (read transaction), MMKV_INCOMPATIBLE
 * (not compressed), MMKV_BAD_DBI, MMKV_BAD_TXN, MMKV_CORRUPTED,
 * MMKV_MAP_FULL, ENOSPC, EIO, ENOMEM. */
MMKV_API int mmkv_dict_build(mmkv_txn *txn, mmkv_dbi dbi);

/* ------------------------------------------------------------- key/value */

/* Look key up; on success data points at the value (see CAVEATS for how long).
 * Errors: EINVAL, MMKV_NOTFOUND, MMKV_BAD_VALSIZE (empty or oversize key, or
 * wrong size for MMKV_INTEGERKEY), MMKV_BAD_DBI, MMKV_BAD_TXN, MMKV_CORRUPTED. */
MMKV_API int mmkv_get(mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *key, mmkv_val *data);

/* Store key -> data, replacing any value the key has. Keys are 1 to
 * mmkv_env_get_maxkeysize() bytes (4 or 8 with MMKV_INTEGERKEY); values 0 to
 * 4 GiB - 1 bytes. flags: MMKV_NOOVERWRITE (then on MMKV_KEYEXIST data is set
 * to the existing value), MMKV_APPEND (key must sort after the last key, else
 * MMKV_KEYEXIST), MMKV_RESERVE (no bytes are copied; data->data receives space
 * for data->size bytes that the caller fills before the next change in this
 * transaction).
 * Errors: EINVAL, EACCES (read transaction), MMKV_KEYEXIST, MMKV_BAD_VALSIZE,
 * MMKV_BAD_DBI, MMKV_BAD_TXN, MMKV_CORRUPTED, MMKV_MAP_FULL, ENOSPC, EIO,
 * ENOMEM. */
MMKV_API int mmkv_put(mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *key, mmkv_val *data,
                      unsigned int flags);

/* Delete key and its value. data is ignored (accepted for LMDB
 * compatibility) and may be NULL. Errors: as mmkv_put, and MMKV_NOTFOUND. */
MMKV_API int mmkv_del(mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *key, const mmkv_val *data);

/* ---------------------------------------------------------------- cursors */

/* Open a cursor on one database of txn. It is closed by mmkv_cursor_close()
 * or, at the latest, when the transaction ends (commit, abort): after that the
 * handle is gone and must not be closed again. Cursors of a write transaction stay valid
 * across every change the transaction makes: a cursor whose key was deleted
 * by another cursor or by mmkv_del() moves to the key after it.
 * Errors: EINVAL, MMKV_BAD_DBI, MMKV_BAD_TXN, ENOMEM. */
MMKV_API int mmkv_cursor_open(mmkv_txn *txn, mmkv_dbi dbi, mmkv_cursor **cursor);

/* Close a cursor; cursor may be NULL. */
MMKV_API void mmkv_cursor_close(mmkv_cursor *cursor);

/* Position the cursor by op and return the key and value there (key and data
 * may be NULL where op does not read them; data pointers as for mmkv_get).
 * Errors: EINVAL (unknown op, key missing for SET ops, GET_CURRENT on an
 * unpositioned cursor), MMKV_NOTFOUND (no such key, or moved past either end;
 * the cursor then stays where it was), MMKV_BAD_VALSIZE, MMKV_BAD_TXN,
 * MMKV_CORRUPTED. */
MMKV_API int mmkv_cursor_get(mmkv_cursor *cursor, mmkv_val *key, mmkv_val *data, mmkv_cursor_op op);

/* Store key -> data as mmkv_put does and leave the cursor on key. With
 * MMKV_CURRENT, replace the value at the cursor (key must equal the cursor's
 * key, else EINVAL). Errors: as mmkv_put. */
MMKV_API int mmkv_cursor_put(mmkv_cursor *cursor, const mmkv_val *key, mmkv_val *data,
                             unsigned int flags);

/* Delete the key at the cursor; the cursor moves to the key after it
 * (MMKV_NEXT then returns that key). flags must be 0.
 * Errors: EINVAL (unpositioned), MMKV_NOTFOUND (already deleted),
 * and as mmkv_put. */
MMKV_API int mmkv_cursor_del(mmkv_cursor *cursor, unsigned int flags);

#ifdef __cplusplus
}
#endif

#endif /* MMKV_H */
