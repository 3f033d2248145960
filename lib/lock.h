/*
 * lock.h - the lock file: writer lock, reader table, published txnid.
 *
 * The lock file PATH-lock (layout in format.h) is shared by every process that
 * has the database open. This module owns its protocol:
 *
 *  - Opening: mmkv__lock_open() takes the OPEN byte exclusively if it can
 *    (nobody else has the database open: the caller then (re)initialises the
 *    table with mmkv__lock_init() and calls mmkv__lock_downgrade()), else
 *    waits for it shared and the caller attaches with mmkv__lock_attach().
 *  - Writer: one write transaction in the system, through a process-local
 *    gate (any thread may release it) plus an OFD lock on the WRITER byte,
 *    which the kernel drops if the process dies.
 *  - Readers: slot i is owned by whoever holds the OFD lock on byte
 *    SLOT + i. A handle keeps the slots it acquired (and their locks) in a
 *    local pool, so beginning a read transaction normally makes no system
 *    call. Slots whose byte nobody holds belong to dead owners and are
 *    reclaimed.
 *
 * Every function returns 0, an errno value, or a negative MMKV_* code.
 */
#ifndef MMKV_LOCK_H
#define MMKV_LOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct mmkv_lock {
	int fd;                  /* the lock file, O_RDWR */
	unsigned char *map;      /* MAP_SHARED map of the whole lock file */
	size_t map_len;
	uint32_t nslots;         /* reader slots, bounds-checked at attach */

	/* Process-local writer gate: any thread may release it. */
	pthread_mutex_t gate_mutex;
	pthread_cond_t gate_cond;
	int gate_busy;

	/* Slots this handle owns (holds the liveness lock of). */
	pthread_mutex_t slot_mutex;
	uint8_t *owned;          /* nslots entries: 1 = owned by this handle */
	uint32_t *pool;          /* owned slots no transaction is using */
	uint32_t npool;
} mmkv_lock;

/* Open (creating with mode) the lock file at path and take the OPEN byte:
 * exclusively when nobody else holds it (*exclusive = 1), otherwise wait for
 * it shared (*exclusive = 0). Once shared, it tries once more to upgrade, so
 * that an initialiser that died or gave up is taken over (*exclusive = 1).
 * The file is opened with mmkv__os_open_file. On failure nothing is held
 * and mmkv__lock_close() is still safe. */
int mmkv__lock_open(mmkv_lock *lk, const char *path, unsigned int mode, int *exclusive);

/* With the OPEN byte held exclusively: size the file for nslots readers,
 * write a fresh header (magic, version, uuid, nslots, write mode, txnid),
 * mark every slot idle, and map it. */
int mmkv__lock_init(mmkv_lock *lk, const uint8_t uuid[16], uint32_t nslots,
                    uint32_t writemode, uint64_t txnid);

/* With the OPEN byte held shared: map the file and validate the header
 * (magic -> MMKV_INVALID, version -> MMKV_VERSION_MISMATCH, slot count and
 * file size -> MMKV_CORRUPTED). On success *uuid and *writemode are the
 * values recorded there for the caller to compare. */
int mmkv__lock_attach(mmkv_lock *lk, uint8_t uuid[16], uint32_t *writemode);

/* Record this opener's write mode if none is recorded yet (only read-only
 * openers so far), else check it: MMKV_INCOMPATIBLE when it differs. */
int mmkv__lock_claim_mode(mmkv_lock *lk, uint32_t mode);

/* Exclusive -> shared on the OPEN byte (atomic with OFD locks). */
int mmkv__lock_downgrade(mmkv_lock *lk);

/* Release every lock this handle holds (owned slots are first marked idle
 * with pid 0), unmap, close; the handle is left zeroed with fd == -1. Safe
 * on a handle whose open failed part way, on a zeroed handle with fd == -1,
 * and twice. */
void mmkv__lock_close(mmkv_lock *lk);

/* The single writer: local gate, then the WRITER byte (blocking). */
int mmkv__lock_writer_acquire(mmkv_lock *lk);
void mmkv__lock_writer_release(mmkv_lock *lk);

/* Take a reader slot: from the local pool, else claim one from the table,
 * else reclaim the slot of a dead owner; MMKV_READERS_FULL only when every
 * slot is held by a live owner. The slot is idle on return. */
int mmkv__lock_reader_acquire(mmkv_lock *lk, uint32_t *slot);

/* Mark the slot idle and return it to the local pool (the lock stays held). */
void mmkv__lock_reader_release(mmkv_lock *lk, uint32_t slot);

/* Publish the snapshot txnid of an owned slot (MMKV_SLOT_IDLE for none),
 * with a sequentially consistent store. */
void mmkv__lock_reader_set(mmkv_lock *lk, uint32_t slot, uint64_t txnid);

/* The oldest snapshot txnid held in any slot, or none_value when none. */
uint64_t mmkv__lock_oldest_reader(mmkv_lock *lk, uint64_t none_value);

/* Mark every snapshot older than `before` MMKV_SLOT_EVICTED (with a CAS, so a
 * reader that just moved to a newer snapshot keeps it); returns how many. */
uint32_t mmkv__lock_evict_before(mmkv_lock *lk, uint64_t before);

/* The txnid published in a slot (its owner compares it with its own to learn
 * of an eviction). */
uint64_t mmkv__lock_reader_get(mmkv_lock *lk, uint32_t slot);

/* Read slot i's fields; true when it holds a snapshot. i < lk->nslots. */
bool mmkv__lock_reader_peek(mmkv_lock *lk, uint32_t slot, uint64_t *txnid, uint32_t *pid, uint32_t *tid);

/* Clear slots whose owner is dead (their byte lock is not held by anyone,
 * and they are not owned by this handle): each one is cleared while holding
 * its byte, so a new owner cannot claim it in between. *cleared (may be
 * NULL) counts them. */
int mmkv__lock_reader_check(mmkv_lock *lk, int *cleared);

/* Number of slots that hold a snapshot or are owned. */
uint32_t mmkv__lock_reader_count(mmkv_lock *lk);

/* Publish a committed txnid: store it, bump the commit sequence, and wake
 * processes sleeping in mmkv__lock_wait_commit (only when some are). */
void mmkv__lock_publish(mmkv_lock *lk, uint64_t txnid);
uint64_t mmkv__lock_published(mmkv_lock *lk);

/* Sleep until the published txnid is above last, or timeout_ms passes
 * (ETIMEDOUT; timeout_ms < 0 waits without limit). *now (may be NULL)
 * receives the published txnid either way. No polling: a shared futex on
 * the commit sequence. */
int mmkv__lock_wait_commit(mmkv_lock *lk, uint64_t last, int timeout_ms, uint64_t *now);

#endif /* MMKV_LOCK_H */
