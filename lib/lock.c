/*
 * lock.c - the lock file protocol: opening and initialising the lock file,
 * the single writer, the reader table, and commit notification.
 *
 * The layout is in format.h (LOCK FILE, READER SLOT, BYTE LOCKS); the
 * interface and its rules in lock.h. Liveness comes only from OFD byte locks,
 * which the kernel drops when their owner dies; the pid and tid in a slot are
 * informational.
 *
 * Handle lifecycle:
 *
 *   closed --lock_open--> OPEN exclusive --lock_init--> initialised
 *     |                                                    | lock_downgrade
 *     +----lock_open--> OPEN shared ----lock_attach----> attached (shared)
 *   any state --lock_close--> closed
 *
 * Reader slot lifecycle (slot i, byte MMKV_LOCKBYTE_SLOT + i):
 *
 *   free --reader_acquire (byte locked)--> owned, idle <--reader_release--+
 *     ^                                      | reader_set(txnid)          |
 *     |                                      v                            |
 *     |                                   owned, snapshot ----------------+
 *     +--lock_close (idle, pid 0, unlock)--owned
 *     +--reader_check / reader_acquire---- stale (owner died: byte free)
 *
 * Invariants:
 *  1. Slot i is owned by whoever holds the write lock on its byte; this
 *     handle owns it exactly when owned[i] is set. A slot is cleared or
 *     claimed only while holding its byte, so a live owner's snapshot txnid
 *     is never overwritten by anyone else.
 *  2. Nothing read from the lock file is trusted: nslots is read and checked
 *     once at attach and kept in lk->nslots; the map covers exactly the
 *     header and nslots slots; every index is < lk->nslots. A hostile writer
 *     can make the values wrong, but cannot make this code leave the map.
 *  3. Snapshot txnids and the published txnid are read and written with
 *     sequentially consistent atomics: a reader publishes its txnid and then
 *     re-reads the newest meta, the writer scans the slots, and at least one
 *     of them must see the other.
 *  4. slot_mutex guards owned[] and the pool, and is held across every scan
 *     that takes slot bytes, because byte locks taken through this handle's
 *     single fd do not conflict with each other.
 *  5. The writer gate is a flag, not a held mutex, so that a thread other
 *     than the acquirer may release it; gate_busy is set exactly while this
 *     handle holds (or is taking) the WRITER byte.
 *  6. Lock-file words are stored in host byte order by the __atomic builtins;
 *     the format is little-endian and so is every supported host.
 */
#define _GNU_SOURCE
#include "lock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "format.h"
#include "mmkv.h"
#include "os.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the lock file is little-endian and accessed with native atomics"
#endif

static size_t lock_file_size(uint32_t nslots)
{
	return MMKV_LOCK_HEADER + (size_t)nslots * MMKV_LOCK_SLOT_SIZE;
}

/* The map is page-aligned and every word offset is a multiple of its size
 * (format.h asserts the header ones; slots are 64 bytes), so these casts
 * give properly aligned words for the atomics. */
static uint32_t *hdr32(mmkv_lock *lk, size_t off)
{
	return (uint32_t *)(void *)(lk->map + off);
}

static uint64_t *hdr64(mmkv_lock *lk, size_t off)
{
	return (uint64_t *)(void *)(lk->map + off);
}

static unsigned char *slot_at(mmkv_lock *lk, uint32_t i)
{
	assert(i < lk->nslots);
	return lk->map + MMKV_LOCK_HEADER + (size_t)i * MMKV_LOCK_SLOT_SIZE;
}

static uint64_t *slot_txnid(mmkv_lock *lk, uint32_t i)
{
	return (uint64_t *)(void *)(slot_at(lk, i) + MMKV_SLOT_TXNID);
}

static uint32_t *slot_pid(mmkv_lock *lk, uint32_t i)
{
	return (uint32_t *)(void *)(slot_at(lk, i) + MMKV_SLOT_PID);
}

static uint32_t *slot_tid(mmkv_lock *lk, uint32_t i)
{
	return (uint32_t *)(void *)(slot_at(lk, i) + MMKV_SLOT_TID);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static int lock_slot_byte(mmkv_lock *lk, uint32_t i, int type)
{
	return mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_SLOT + (uint64_t)i, type, 0);
}

int mmkv__lock_open(mmkv_lock *lk, const char *path, unsigned int mode, int *exclusive)
{
	int err;

	memset(lk, 0, sizeof(*lk));
	lk->fd = -1;
	err = pthread_mutex_init(&lk->gate_mutex, NULL);
	if (!err)
		err = pthread_cond_init(&lk->gate_cond, NULL);
	if (!err)
		err = pthread_mutex_init(&lk->slot_mutex, NULL);
	if (err)
		return err;

	err = mmkv__os_open_file(path, O_RDWR | O_CREAT, (mode_t)mode, &lk->fd);
	if (err)
		return err;
	err = mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_OPEN, F_WRLCK, 0);
	if (err == 0) {
		*exclusive = 1;
		return 0;
	}
	if (err != EAGAIN)
		goto fail;
	/* Someone has it open, or is initialising it: wait for that to end. */
	err = mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_OPEN, F_RDLCK, 1);
	if (err)
		goto fail;
	/* If everyone left meanwhile (say an initialiser that failed or died),
	 * the file may be half-written: take it over. A failed upgrade keeps
	 * the shared lock. */
	err = mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_OPEN, F_WRLCK, 0);
	if (err == 0) {
		*exclusive = 1;
		return 0;
	}
	if (err != EAGAIN)
		goto fail;
	*exclusive = 0;
	return 0;
fail:
	mmkv__os.close(lk->fd);
	lk->fd = -1;
	return err;
}

/* Per-handle bookkeeping for nslots slots, once nslots is trusted. */
static int alloc_tables(mmkv_lock *lk, uint32_t nslots)
{
	lk->owned = mmkv__calloc(nslots, sizeof(*lk->owned));
	lk->pool = mmkv__calloc(nslots, sizeof(*lk->pool));
	if (lk->owned == NULL || lk->pool == NULL)
		return ENOMEM;
	lk->nslots = nslots;
	return 0;
}

int mmkv__lock_init(mmkv_lock *lk, const uint8_t uuid[16], uint32_t nslots,
                    uint32_t writemode, uint64_t txnid)
{
	size_t len = lock_file_size(nslots);
	void *map;
	uint32_t i;
	int err;

	assert(lk->fd >= 0 && lk->map == NULL);
	if (nslots < 1 || nslots > MMKV_LOCK_MAX_SLOTS)
		return EINVAL;
	if (writemode != MMKV_LOCK_MODE_NONE && writemode != MMKV_LOCK_MODE_PWRITE &&
	    writemode != MMKV_LOCK_MODE_WRITEMAP)
		return EINVAL;
	/* Truncating to 0 first drops whatever a previous generation left;
	 * growing with fallocate means a full disk fails here, not as SIGBUS
	 * on the first store through the map. */
	err = mmkv__os_truncate(lk->fd, 0);
	if (!err)
		err = mmkv__os_grow(lk->fd, len);
	if (!err)
		err = mmkv__os_map(lk->fd, len, 1, &map);
	if (err)
		return err;
	lk->map = map;
	lk->map_len = len;
	err = alloc_tables(lk, nslots);
	if (err)
		return err;

	put_le32(lk->map + MMKV_LOCK_MAGIC_OFF, MMKV_LOCK_MAGIC);
	put_le32(lk->map + MMKV_LOCK_VERSION_OFF, MMKV_LOCK_VERSION);
	memcpy(lk->map + MMKV_LOCK_UUID, uuid, 16);
	put_le32(lk->map + MMKV_LOCK_NSLOTS, nslots);
	put_le32(lk->map + MMKV_LOCK_WRITEMODE, writemode);
	__atomic_store_n(hdr32(lk, MMKV_LOCK_WAITERS), 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(hdr64(lk, MMKV_LOCK_TXNID), txnid, __ATOMIC_SEQ_CST);
	__atomic_store_n(hdr32(lk, MMKV_LOCK_SEQ), (uint32_t)txnid, __ATOMIC_SEQ_CST);
	for (i = 0; i < nslots; i++)
		__atomic_store_n(slot_txnid(lk, i), MMKV_SLOT_IDLE, __ATOMIC_SEQ_CST);
	return 0;
}

int mmkv__lock_attach(mmkv_lock *lk, uint8_t uuid[16], uint32_t *writemode)
{
	unsigned char hdr[MMKV_LOCK_HEADER];
	uint64_t size;
	uint32_t nslots, mode;
	void *map;
	int err;

	assert(lk->fd >= 0 && lk->map == NULL);
	err = mmkv__os_file_size(lk->fd, &size);
	if (err)
		return err;
	/* Read the header with pread, not through a map sized by it: the slot
	 * count decides the map size, so it must be checked first. */
	memset(hdr, 0, sizeof(hdr));
	err = mmkv__os_pread_full(lk->fd, hdr, size < sizeof(hdr) ? (size_t)size : sizeof(hdr), 0);
	if (err)
		return err;
	if (get_le32(hdr + MMKV_LOCK_MAGIC_OFF) != MMKV_LOCK_MAGIC)
		return MMKV_INVALID;
	if (get_le32(hdr + MMKV_LOCK_VERSION_OFF) != MMKV_LOCK_VERSION)
		return MMKV_VERSION_MISMATCH;
	nslots = get_le32(hdr + MMKV_LOCK_NSLOTS);
	mode = get_le32(hdr + MMKV_LOCK_WRITEMODE);
	if (nslots < 1 || nslots > MMKV_LOCK_MAX_SLOTS || size < lock_file_size(nslots))
		return MMKV_CORRUPTED;
	if (mode != MMKV_LOCK_MODE_NONE && mode != MMKV_LOCK_MODE_PWRITE && mode != MMKV_LOCK_MODE_WRITEMAP)
		return MMKV_CORRUPTED;

	err = mmkv__os_map(lk->fd, lock_file_size(nslots), 1, &map);
	if (err)
		return err;
	lk->map = map;
	lk->map_len = lock_file_size(nslots);
	err = alloc_tables(lk, nslots);
	if (err)
		return err;
	memcpy(uuid, hdr + MMKV_LOCK_UUID, 16);
	*writemode = mode;
	return 0;
}

int mmkv__lock_downgrade(mmkv_lock *lk)
{
	return mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_OPEN, F_RDLCK, 0);
}

void mmkv__lock_close(mmkv_lock *lk)
{
	uint32_t i;

	/* Unlock explicitly rather than rely on close(): a child forked while
	 * the file was open shares this open file description, and with it
	 * every lock, until it exits or execs. */
	if (lk->map != NULL && lk->owned != NULL) {
		for (i = 0; i < lk->nslots; i++) {
			if (!lk->owned[i])
				continue;
			__atomic_store_n(slot_txnid(lk, i), MMKV_SLOT_IDLE, __ATOMIC_SEQ_CST);
			__atomic_store_n(slot_tid(lk, i), 0, __ATOMIC_RELAXED);
			__atomic_store_n(slot_pid(lk, i), 0, __ATOMIC_SEQ_CST);
			lock_slot_byte(lk, i, F_UNLCK);
		}
	}
	if (lk->fd >= 0) {
		if (lk->gate_busy)
			mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_WRITER, F_UNLCK, 0);
		mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_OPEN, F_UNLCK, 0);
	}
	if (lk->map != NULL)
		mmkv__os_unmap(lk->map, lk->map_len);
	if (lk->fd >= 0)
		mmkv__os.close(lk->fd);
	mmkv__free(lk->owned);
	mmkv__free(lk->pool);
	/* A zeroed handle holds the static initialisers, which may be
	 * destroyed as well. */
	pthread_mutex_destroy(&lk->gate_mutex);
	pthread_cond_destroy(&lk->gate_cond);
	pthread_mutex_destroy(&lk->slot_mutex);
	memset(lk, 0, sizeof(*lk));
	lk->fd = -1;
}

static void open_gate(mmkv_lock *lk)
{
	pthread_mutex_lock(&lk->gate_mutex);
	lk->gate_busy = 0;
	pthread_cond_signal(&lk->gate_cond);
	pthread_mutex_unlock(&lk->gate_mutex);
}

int mmkv__lock_writer_acquire(mmkv_lock *lk)
{
	int err;

	pthread_mutex_lock(&lk->gate_mutex);
	while (lk->gate_busy)
		pthread_cond_wait(&lk->gate_cond, &lk->gate_mutex);
	lk->gate_busy = 1;
	pthread_mutex_unlock(&lk->gate_mutex);

	/* Only one thread of this handle gets here at a time: the byte lock
	 * alone would not stop them, since they share one fd. */
	err = mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_WRITER, F_WRLCK, 1);
	if (err)
		open_gate(lk);
	return err;
}

void mmkv__lock_writer_release(mmkv_lock *lk)
{
	assert(lk->gate_busy);
	/* Unlocking a byte we hold cannot fail in a way we could act on. */
	mmkv__os_lock_byte(lk->fd, MMKV_LOCKBYTE_WRITER, F_UNLCK, 0);
	open_gate(lk);
}

/* Make slot i ours: we hold its byte, so nobody else touches it now. */
static void claim_slot(mmkv_lock *lk, uint32_t i, uint32_t pid)
{
	lk->owned[i] = 1;
	__atomic_store_n(slot_txnid(lk, i), MMKV_SLOT_IDLE, __ATOMIC_SEQ_CST);
	__atomic_store_n(slot_tid(lk, i), mmkv__os_tid(), __ATOMIC_RELAXED);
	__atomic_store_n(slot_pid(lk, i), pid, __ATOMIC_SEQ_CST);
}

/* Find and claim a slot; called with slot_mutex held. */
static int claim_any_slot(mmkv_lock *lk, uint32_t *slot)
{
	uint32_t pid = mmkv__os_pid(), start, k, i, expect;
	int err;

	/* Processes starting at different slots rarely race for the same one. */
	start = pid % lk->nslots;

	/* First the slots that look free (pid 0). Marking the pid before
	 * taking the byte makes other openers skip the slot meanwhile; the
	 * byte alone decides who owns it. */
	for (k = 0; k < lk->nslots; k++) {
		i = (start + k) % lk->nslots;
		if (lk->owned[i] || __atomic_load_n(slot_pid(lk, i), __ATOMIC_RELAXED) != 0)
			continue;
		expect = 0;
		if (!__atomic_compare_exchange_n(slot_pid(lk, i), &expect, pid, 0,
		                                 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			continue;
		err = lock_slot_byte(lk, i, F_WRLCK);
		if (err == 0) {
			claim_slot(lk, i, pid);
			*slot = i;
			return 0;
		}
		/* Held by a live owner that cleared its pid (closing) or by one
		 * whose pid was overwritten: give the mark back, unless someone
		 * has claimed the slot since. */
		expect = pid;
		__atomic_compare_exchange_n(slot_pid(lk, i), &expect, 0, 0,
		                            __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
		if (err != EAGAIN)
			return err;
	}

	/* Then any slot whose byte nobody holds: its owner died. */
	for (k = 0; k < lk->nslots; k++) {
		i = (start + k) % lk->nslots;
		if (lk->owned[i])
			continue;
		err = lock_slot_byte(lk, i, F_WRLCK);
		if (err == 0) {
			claim_slot(lk, i, pid);
			*slot = i;
			return 0;
		}
		if (err != EAGAIN)
			return err;
	}
	return MMKV_READERS_FULL;
}

int mmkv__lock_reader_acquire(mmkv_lock *lk, uint32_t *slot)
{
	uint32_t i;
	int err = 0;

	pthread_mutex_lock(&lk->slot_mutex);
	if (lk->npool > 0) {
		i = lk->pool[--lk->npool];
		/* Idle already, unless a hostile writer changed it. */
		__atomic_store_n(slot_txnid(lk, i), MMKV_SLOT_IDLE, __ATOMIC_SEQ_CST);
		*slot = i;
	} else {
		err = claim_any_slot(lk, slot);
	}
	pthread_mutex_unlock(&lk->slot_mutex);
	return err;
}

void mmkv__lock_reader_release(mmkv_lock *lk, uint32_t slot)
{
	assert(slot < lk->nslots && lk->owned[slot]);
	__atomic_store_n(slot_txnid(lk, slot), MMKV_SLOT_IDLE, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&lk->slot_mutex);
	assert(lk->npool < lk->nslots);
	lk->pool[lk->npool++] = slot;
	pthread_mutex_unlock(&lk->slot_mutex);
}

void mmkv__lock_reader_set(mmkv_lock *lk, uint32_t slot, uint64_t txnid)
{
	assert(slot < lk->nslots && lk->owned[slot]);
	__atomic_store_n(slot_txnid(lk, slot), txnid, __ATOMIC_SEQ_CST);
}

uint64_t mmkv__lock_oldest_reader(mmkv_lock *lk, uint64_t none_value)
{
	uint64_t oldest = MMKV_SLOT_IDLE, t;
	uint32_t i;

	for (i = 0; i < lk->nslots; i++) {
		t = __atomic_load_n(slot_txnid(lk, i), __ATOMIC_SEQ_CST);
		if (t < oldest && t != MMKV_SLOT_EVICTED)
			oldest = t;
	}
	return oldest == MMKV_SLOT_IDLE ? none_value : oldest;
}

uint32_t mmkv__lock_evict_before(mmkv_lock *lk, uint64_t before)
{
	uint32_t i, n = 0;

	for (i = 0; i < lk->nslots; i++) {
		uint64_t t = __atomic_load_n(slot_txnid(lk, i), __ATOMIC_SEQ_CST);
		/* CAS: a reader that moved on to a newer snapshot meanwhile keeps it. */
		if (t < before && __atomic_compare_exchange_n(slot_txnid(lk, i), &t, MMKV_SLOT_EVICTED, false,
		                                              __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			n++;
	}
	return n;
}

int mmkv__lock_claim_mode(mmkv_lock *lk, uint32_t mode)
{
	uint32_t *word = hdr32(lk, MMKV_LOCK_WRITEMODE);
	uint32_t seen = MMKV_LOCK_MODE_NONE;

	/* The first writer to come sets the mode; the others must match it. */
	if (__atomic_compare_exchange_n(word, &seen, mode, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return 0;
	return seen == mode ? 0 : MMKV_INCOMPATIBLE;
}

uint64_t mmkv__lock_reader_get(mmkv_lock *lk, uint32_t slot)
{
	return __atomic_load_n(slot_txnid(lk, slot), __ATOMIC_SEQ_CST);
}

bool mmkv__lock_reader_peek(mmkv_lock *lk, uint32_t slot, uint64_t *txnid, uint32_t *pid, uint32_t *tid)
{
	*txnid = __atomic_load_n(slot_txnid(lk, slot), __ATOMIC_SEQ_CST);
	*pid = __atomic_load_n(slot_pid(lk, slot), __ATOMIC_RELAXED);
	*tid = __atomic_load_n(slot_tid(lk, slot), __ATOMIC_RELAXED);
	return *txnid < MMKV_SLOT_EVICTED;
}

int mmkv__lock_reader_check(mmkv_lock *lk, int *cleared)
{
	uint32_t i;
	int n = 0, err = 0;

	pthread_mutex_lock(&lk->slot_mutex);
	for (i = 0; i < lk->nslots; i++) {
		if (lk->owned[i])
			continue;
		if (__atomic_load_n(slot_txnid(lk, i), __ATOMIC_SEQ_CST) == MMKV_SLOT_IDLE &&
		    __atomic_load_n(slot_pid(lk, i), __ATOMIC_SEQ_CST) == 0)
			continue;
		/* Take the byte rather than only test it: between a test and the
		 * clear, a new owner could claim the slot and publish a snapshot
		 * that the clear would then hide from the writer. */
		err = lock_slot_byte(lk, i, F_WRLCK);
		if (err == EAGAIN) {
			err = 0;
			continue;
		}
		if (err)
			break;
		__atomic_store_n(slot_txnid(lk, i), MMKV_SLOT_IDLE, __ATOMIC_SEQ_CST);
		__atomic_store_n(slot_tid(lk, i), 0, __ATOMIC_RELAXED);
		__atomic_store_n(slot_pid(lk, i), 0, __ATOMIC_SEQ_CST);
		lock_slot_byte(lk, i, F_UNLCK);
		n++;
	}
	pthread_mutex_unlock(&lk->slot_mutex);
	if (cleared != NULL)
		*cleared = n;
	return err;
}

uint32_t mmkv__lock_reader_count(mmkv_lock *lk)
{
	uint32_t i, n = 0;

	for (i = 0; i < lk->nslots; i++) {
		if (__atomic_load_n(slot_txnid(lk, i), __ATOMIC_SEQ_CST) != MMKV_SLOT_IDLE ||
		    __atomic_load_n(slot_pid(lk, i), __ATOMIC_RELAXED) != 0)
			n++;
	}
	return n;
}

void mmkv__lock_publish(mmkv_lock *lk, uint64_t txnid)
{
	uint32_t *seq = hdr32(lk, MMKV_LOCK_SEQ);

	/* Store txnid, then seq, then look for sleepers: a sleeper registers
	 * in the waiters word before re-reading txnid and sleeping on seq, so
	 * either it sees the new txnid, or we see it and wake it, or its
	 * futex sees seq changed. */
	__atomic_store_n(hdr64(lk, MMKV_LOCK_TXNID), txnid, __ATOMIC_SEQ_CST);
	__atomic_store_n(seq, (uint32_t)txnid, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(hdr32(lk, MMKV_LOCK_WAITERS), __ATOMIC_SEQ_CST) != 0)
		mmkv__os_futex_wake(seq);
}

uint64_t mmkv__lock_published(mmkv_lock *lk)
{
	return __atomic_load_n(hdr64(lk, MMKV_LOCK_TXNID), __ATOMIC_SEQ_CST);
}

int mmkv__lock_wait_commit(mmkv_lock *lk, uint64_t last, int timeout_ms, uint64_t *now)
{
	uint32_t *seq_word = hdr32(lk, MMKV_LOCK_SEQ);
	uint32_t *waiters = hdr32(lk, MMKV_LOCK_WAITERS);
	uint64_t deadline = 0, t, cur;
	uint32_t seq;
	int remaining = -1, err = 0;

	if (timeout_ms >= 0)
		deadline = mmkv__os_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		seq = __atomic_load_n(seq_word, __ATOMIC_SEQ_CST);
		cur = mmkv__lock_published(lk);
		if (cur > last)
			break;
		if (timeout_ms >= 0) {
			t = mmkv__os_now_ms();
			if (t >= deadline) {
				err = ETIMEDOUT;
				break;
			}
			remaining = (int)(deadline - t);
		}
		__atomic_add_fetch(waiters, 1, __ATOMIC_SEQ_CST);
		cur = mmkv__lock_published(lk);
		if (cur > last) {
			__atomic_sub_fetch(waiters, 1, __ATOMIC_SEQ_CST);
			break;
		}
		err = mmkv__os_futex_wait(seq_word, seq, remaining);
		__atomic_sub_fetch(waiters, 1, __ATOMIC_SEQ_CST);
		/* Woken, timed out or interrupted: the loop re-reads and checks
		 * the deadline against the clock. */
		if (err != 0 && err != ETIMEDOUT && err != EINTR)
			break;
		err = 0;
	}
	if (now != NULL)
		*now = cur;
	return err;
}
