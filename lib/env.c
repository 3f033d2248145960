/*
 * env.c - the environment: options, opening and creating a database, meta
 * pages, file growth, and the calls that describe an open database.
 *
 * Opening (DESIGN.md sections 3 and 8):
 *   1. open the lock file and take its OPEN byte: exclusive when nobody else
 *      has the database open, else shared;
 *   2. open the data file; a missing one is built under the writer lock in a
 *      temporary file (two metas of an empty database), synced, renamed into
 *      place, and the directory synced, so a crash leaves nothing or a
 *      complete database; a zero-length file is initialised in place;
 *   3. read both metas with pread, pick the valid one with the highest
 *      txnid, learn the page size from it;
 *   4. reserve the map for the whole size limit (no remapping later);
 *   5. initialise the lock file (exclusive opener) or check that it belongs
 *      to this data file and write mode (shared opener).
 *
 * Invariants:
 *  1. env->file_size only grows, and the file is never smaller than it.
 *  2. A meta is trusted only after its checksum and every field were
 *     checked (mmkv__env_read_meta); the lock file never vouches for one.
 */
#include "page.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <uuid/uuid.h>
#include <xxhash.h>

#define DEFAULT_MAPSIZE (1ull << 40)       /* 1 TiB of address space */
#define DEFAULT_GROWTH (256u * 1024u)
#define DEFAULT_MAXREADERS 126u
#define DEFAULT_MAXDBS 16u
#define DEFAULT_TXN_MEMORY (64ull << 20)
#define MAX_MAXDBS 32000u

/* ------------------------------------------------------------------ fork */

static uint64_t fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void after_fork_in_child(void)
{
	__atomic_add_fetch(&fork_generation, 1, __ATOMIC_RELEASE);
}

static void install_fork_handler(void)
{
	pthread_atfork(NULL, NULL, after_fork_in_child);
}

int mmkv__env_check_usable(const mmkv_env *env)
{
	if (!env || !env->opened)
		return EINVAL;
	/* The child of a fork holds none of its parent's locks. */
	if (__atomic_load_n(&fork_generation, __ATOMIC_ACQUIRE) != env->fork_generation)
		return MMKV_PANIC;
	return 0;
}

/* ----------------------------------------------------------- meta codec */

void mmkv__db_encode(const mmkv_db *db, unsigned char *dst)
{
	memset(dst, 0, MMKV_DBREC_SIZE);
	put64(dst + MMKV_DBREC_ROOT, db->root);
	put64(dst + MMKV_DBREC_ENTRIES, db->entries);
	put64(dst + MMKV_DBREC_BRANCH, db->branch_pages);
	put64(dst + MMKV_DBREC_LEAF, db->leaf_pages);
	put64(dst + MMKV_DBREC_OVERFLOW, db->overflow_pages);
	put32(dst + MMKV_DBREC_DEPTH, db->depth);
	put32(dst + MMKV_DBREC_FLAGS, db->flags);
	put64(dst + MMKV_DBREC_MODTXN, db->mod_txnid);
	put32(dst + MMKV_DBREC_DICT, db->dict_id);
	put16(dst + MMKV_DBREC_ZTHRESHOLD, db->zthreshold);
	dst[MMKV_DBREC_ZSAVING] = db->zsaving;
}

int mmkv__db_decode(const unsigned char *src, mmkv_db *db)
{
	db->root = le64(src + MMKV_DBREC_ROOT);
	db->entries = le64(src + MMKV_DBREC_ENTRIES);
	db->branch_pages = le64(src + MMKV_DBREC_BRANCH);
	db->leaf_pages = le64(src + MMKV_DBREC_LEAF);
	db->overflow_pages = le64(src + MMKV_DBREC_OVERFLOW);
	db->depth = le32(src + MMKV_DBREC_DEPTH);
	db->flags = le32(src + MMKV_DBREC_FLAGS);
	db->mod_txnid = le64(src + MMKV_DBREC_MODTXN);
	db->dict_id = le32(src + MMKV_DBREC_DICT);
	db->zthreshold = le16(src + MMKV_DBREC_ZTHRESHOLD);
	db->zsaving = src[MMKV_DBREC_ZSAVING];
	if (db->zsaving > 99)
		return CORRUPT(db->root);
	if (db->depth > MMKV_MAX_DEPTH || (db->root == 0) != (db->depth == 0) ||
	    (db->root != 0 && db->root < MMKV_NUM_METAS) || (db->flags & ~MMKV_DB_FLAGS_KNOWN))
		return CORRUPT(db->root);
	return 0;
}

uint64_t mmkv__meta_checksum(const unsigned char *meta)
{
	return XXH3_64bits(meta + 8, MMKV_META_SIZE - 8);
}

void mmkv__meta_encode(const mmkv_meta *m, unsigned char *dst)
{
	memset(dst, 0, MMKV_META_SIZE);
	put32(dst + MMKV_META_MAGIC_OFF, MMKV_META_MAGIC);
	put32(dst + MMKV_META_VERSION, MMKV_FORMAT_VERSION);
	put32(dst + MMKV_META_ENDIAN, MMKV_ENDIAN_MARK);
	put32(dst + MMKV_META_PAGESIZE, m->psize);
	memcpy(dst + MMKV_META_UUID, m->uuid, 16);
	put64(dst + MMKV_META_TXNID, m->txnid);
	put64(dst + MMKV_META_NPAGES, m->npages);
	put64(dst + MMKV_META_FILESIZE, m->file_size);
	put64(dst + MMKV_META_GROWTH, m->growth);
	put64(dst + MMKV_META_LIMIT, m->limit);
	put64(dst + MMKV_META_FEATURES, m->features);
	put64(dst + MMKV_META_WRITTEN, m->written);
	mmkv__db_encode(&m->catalog, dst + MMKV_META_CATALOG);
	mmkv__db_encode(&m->main, dst + MMKV_META_DEFAULT_DB);
	mmkv__db_encode(&m->free, dst + MMKV_META_FREE_DB);
	put64(dst + MMKV_META_CHECKSUM, mmkv__meta_checksum(dst));
}

static bool valid_page_size(uint64_t ps)
{
	return ps >= MMKV_PAGESIZE_MIN && ps <= MMKV_PAGESIZE_MAX && (ps & (ps - 1)) == 0;
}

/* Decode and check a meta. psize 0 accepts any valid page size. Returns
 * MMKV_INVALID for a wrong magic, MMKV_VERSION_MISMATCH for a newer format,
 * MMKV_CORRUPTED for anything else wrong. */
static int decode_meta(const unsigned char *src, uint32_t psize, mmkv_meta *m)
{
	unsigned char b[MMKV_META_SIZE];
	int rc;

	memcpy(b, src, sizeof(b)); /* one copy: checksum and fields agree */
	if (le32(b + MMKV_META_MAGIC_OFF) != MMKV_META_MAGIC)
		return MMKV_INVALID;
	if (le64(b + MMKV_META_CHECKSUM) != mmkv__meta_checksum(b))
		return CORRUPT(0);
	if (le32(b + MMKV_META_VERSION) != MMKV_FORMAT_VERSION ||
	    (le64(b + MMKV_META_FEATURES) & ~(uint64_t)MMKV_FEATURES_KNOWN))
		return MMKV_VERSION_MISMATCH;
	if (le32(b + MMKV_META_ENDIAN) != MMKV_ENDIAN_MARK)
		return MMKV_INCOMPATIBLE;
	m->psize = le32(b + MMKV_META_PAGESIZE);
	if (!valid_page_size(m->psize) || (psize && m->psize != psize))
		return CORRUPT(0);
	memcpy(m->uuid, b + MMKV_META_UUID, 16);
	m->txnid = le64(b + MMKV_META_TXNID);
	m->npages = le64(b + MMKV_META_NPAGES);
	m->file_size = le64(b + MMKV_META_FILESIZE);
	m->growth = le64(b + MMKV_META_GROWTH);
	m->limit = le64(b + MMKV_META_LIMIT);
	m->features = le64(b + MMKV_META_FEATURES);
	m->written = le64(b + MMKV_META_WRITTEN);
	if (m->npages < MMKV_NUM_METAS || m->npages > (UINT64_MAX >> 17) ||
	    m->file_size < m->npages * m->psize)
		return CORRUPT(0);
	if ((rc = mmkv__db_decode(b + MMKV_META_CATALOG, &m->catalog)) ||
	    (rc = mmkv__db_decode(b + MMKV_META_DEFAULT_DB, &m->main)) ||
	    (rc = mmkv__db_decode(b + MMKV_META_FREE_DB, &m->free)))
		return rc;
	if (m->catalog.root >= m->npages || m->main.root >= m->npages || m->free.root >= m->npages)
		return CORRUPT(0);
	return 0;
}

/* Of two decoded candidates, the valid one with the higher txnid; when
 * neither is valid, the more telling error. */
static int pick_meta(int rc0, const mmkv_meta *m0, int rc1, const mmkv_meta *m1, mmkv_meta *out)
{
	if (rc0 == 0 && (rc1 != 0 || m0->txnid >= m1->txnid)) {
		*out = *m0;
		return 0;
	}
	if (rc1 == 0) {
		*out = *m1;
		return 0;
	}
	if (rc0 == MMKV_VERSION_MISMATCH || rc1 == MMKV_VERSION_MISMATCH)
		return MMKV_VERSION_MISMATCH;
	if (rc0 == MMKV_INVALID && rc1 == MMKV_INVALID)
		return MMKV_INVALID;
	return MMKV_CORRUPTED;
}

int mmkv__env_newest_meta(mmkv_env *env, mmkv_meta *meta)
{
	const unsigned char *p0 = env->map, *p1 = env->map + env->psize;
	mmkv_meta m0, m1;
	int rc0, rc1;

	/* Usually only the newer one needs decoding; the other is the fallback
	 * when the newer is torn (being written right now, or damaged). */
	uint64_t t0 = __atomic_load_n((const uint64_t *)(p0 + MMKV_META_TXNID), __ATOMIC_ACQUIRE);
	uint64_t t1 = __atomic_load_n((const uint64_t *)(p1 + MMKV_META_TXNID), __ATOMIC_ACQUIRE);
	const unsigned char *first = t0 >= t1 ? p0 : p1, *second = t0 >= t1 ? p1 : p0;

	rc0 = decode_meta(first, env->psize, &m0);
	if (rc0 == 0 && memcmp(m0.uuid, env->uuid, 16) == 0) {
		*meta = m0;
		return 0;
	}
	if (rc0 == 0)
		rc0 = CORRUPT(0); /* a meta of another database */
	rc1 = decode_meta(second, env->psize, &m1);
	if (rc1 == 0 && memcmp(m1.uuid, env->uuid, 16))
		rc1 = CORRUPT(0);
	return pick_meta(rc0, &m0, rc1, &m1, meta);
}

/* ---------------------------------------------------------------- growth */

int mmkv__env_grow_file(mmkv_env *env, uint64_t need)
{
	uint64_t cur = __atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE);
	uint64_t step, size;
	int rc;

	if (need <= cur)
		return 0;
	if (need > env->mapsize)
		return MMKV_MAP_FULL;
	/* Geometric steps keep the number of growths logarithmic. The growth
	 * step comes from the meta, and a damaged one may hold any value: no
	 * sum below may wrap (cur < need <= mapsize). */
	step = cur / 2 > env->growth ? cur / 2 : env->growth;
	if (step > env->mapsize - cur)
		step = env->mapsize - cur;
	size = cur + step > need ? cur + step : need;
	if (size <= env->mapsize - 65535)
		size = (size + 65535) & ~(uint64_t)65535;
	if (size > env->mapsize)
		size = env->mapsize;
	rc = mmkv__os_grow(env->fd, size);
	if (rc == ENOSPC && size > need) {
		size = need;
		rc = mmkv__os_grow(env->fd, size);
	}
	if (rc)
		return rc;
	__atomic_store_n(&env->file_size, size, __ATOMIC_RELEASE);
	return 0;
}

/* -------------------------------------------------------------- options */

MMKV_API int mmkv_env_create(mmkv_env **ret)
{
	mmkv_env *env;

	if (!ret)
		return EINVAL;
	*ret = NULL;
	pthread_once(&fork_once, install_fork_handler);
	env = mmkv__calloc(1, sizeof(*env));
	if (!env)
		return ENOMEM;
	env->fd = -1;
	env->lock.fd = -1;
	env->opt_maxreaders = DEFAULT_MAXREADERS;
	env->opt_maxdbs = DEFAULT_MAXDBS;
	env->opt_txn_memory = DEFAULT_TXN_MEMORY;
	pthread_mutex_init(&env->dbi_mutex, NULL);
	*ret = env;
	return 0;
}

MMKV_API int mmkv_env_set_maxreaders(mmkv_env *env, unsigned int readers)
{
	if (!env || env->opened || readers < 1 || readers > MMKV_LOCK_MAX_SLOTS)
		return EINVAL;
	env->opt_maxreaders = readers;
	return 0;
}

MMKV_API int mmkv_env_set_maxdbs(mmkv_env *env, unsigned int dbs)
{
	if (!env || env->opened || dbs > MAX_MAXDBS)
		return EINVAL;
	env->opt_maxdbs = dbs;
	return 0;
}

MMKV_API int mmkv_env_set_mapsize(mmkv_env *env, uint64_t size)
{
	if (!env || env->opened || size < 2 * MMKV_PAGESIZE_MAX || size > (1ull << 56))
		return EINVAL;
	env->opt_mapsize = size;
	return 0;
}

MMKV_API int mmkv_env_set_pagesize(mmkv_env *env, unsigned int size)
{
	if (!env || env->opened || !valid_page_size(size))
		return EINVAL;
	env->opt_pagesize = size;
	return 0;
}

MMKV_API int mmkv_env_set_txn_memory(mmkv_env *env, uint64_t bytes)
{
	if (!env || env->opened || bytes == 0)
		return EINVAL;
	env->opt_txn_memory = bytes;
	return 0;
}

MMKV_API unsigned int mmkv_env_get_maxkeysize(const mmkv_env *env)
{
	return env && env->opened ? MMKV_KEY_MAX(env->psize) : 0;
}

/* ------------------------------------------------------------- creation */

static void initial_meta(mmkv_env *env, uint32_t psize, mmkv_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->psize = psize;
	uuid_generate(m->uuid);
	m->npages = MMKV_NUM_METAS;
	m->file_size = (uint64_t)MMKV_NUM_METAS * psize;
	m->growth = DEFAULT_GROWTH;
	m->limit = env->opt_mapsize ? env->opt_mapsize : DEFAULT_MAPSIZE;
}

/* Write the two metas of an empty database (txnids 0 and 1) to fd. */
static int write_initial_metas(mmkv_env *env, int fd)
{
	uint32_t psize = env->opt_pagesize ? env->opt_pagesize : env->os_psize;
	unsigned char *buf;
	mmkv_meta m;
	int rc;

	if (!valid_page_size(psize))
		psize = MMKV_PAGESIZE_MIN;
	buf = mmkv__calloc(MMKV_NUM_METAS, psize);
	if (!buf)
		return ENOMEM;
	initial_meta(env, psize, &m);
	for (unsigned i = 0; i < MMKV_NUM_METAS; i++) {
		m.txnid = i;
		mmkv__meta_encode(&m, buf + (size_t)i * psize);
	}
	rc = mmkv__os_pwrite_full(fd, buf, (size_t)MMKV_NUM_METAS * psize, 0);
	if (rc == 0)
		rc = mmkv__os_sync(fd, 1);
	mmkv__free(buf);
	return rc;
}

/* Build a new database at path: temporary file, sync, rename, sync dir. */
static int create_database(mmkv_env *env, const char *path, unsigned int mode)
{
	size_t len = strlen(path) + 32;
	char *tmp = mmkv__malloc(len);
	int fd = -1, rc;

	if (!tmp)
		return ENOMEM;
	snprintf(tmp, len, "%s.new-%u", path, (unsigned)mmkv__os_pid());
	(void)mmkv__os.unlink(tmp); /* a leftover of a creator that crashed */
	rc = mmkv__os_open_file(tmp, O_RDWR | O_CREAT | O_EXCL, mode, &fd);
	if (rc == 0)
		rc = write_initial_metas(env, fd);
	if (fd >= 0)
		mmkv__os.close(fd);
	if (rc == 0 && mmkv__os.rename(tmp, path) != 0)
		rc = errno;
	if (rc == 0 && mmkv__os.fsync_dir(path) != 0)
		rc = errno;
	if (rc)
		(void)mmkv__os.unlink(tmp);
	mmkv__free(tmp);
	return rc;
}

/* Open the data file, creating or initialising it when it is missing or
 * empty (only under the writer lock, so two creators cannot race). */
static int open_data_file(mmkv_env *env, const char *path, unsigned int mode)
{
	bool rdonly = env->flags & MMKV_RDONLY;
	uint64_t size = 0;
	int rc;

	rc = mmkv__os_open_file(path, rdonly ? O_RDONLY : O_RDWR, 0, &env->fd);
	if (rc == 0)
		rc = mmkv__os_file_size(env->fd, &size);
	if (rdonly || (rc != ENOENT && (rc != 0 || size > 0)))
		return rc;

	rc = mmkv__lock_writer_acquire(&env->lock);
	if (rc)
		return rc;
	if (env->fd < 0) {
		rc = mmkv__os_open_file(path, O_RDWR, 0, &env->fd);
		if (rc == ENOENT) {
			rc = create_database(env, path, mode);
			if (rc == 0)
				rc = mmkv__os_open_file(path, O_RDWR, 0, &env->fd);
		}
	}
	if (rc == 0)
		rc = mmkv__os_file_size(env->fd, &size);
	if (rc == 0 && size == 0)
		rc = write_initial_metas(env, env->fd);
	mmkv__lock_writer_release(&env->lock);
	return rc;
}

/* Read both metas with pread; learn the page size. */
static int read_metas_at_open(mmkv_env *env, mmkv_meta *meta)
{
	unsigned char b0[MMKV_META_SIZE], b1[MMKV_META_SIZE];
	mmkv_meta m0, m1;
	uint64_t size;
	int rc0, rc1, rc;

	rc = mmkv__os_file_size(env->fd, &size);
	if (rc)
		return rc;
	if (size < MMKV_META_SIZE) {
		/* Too short for a meta: damage if it starts like one. */
		uint32_t magic = 0;
		if (size >= MMKV_META_MAGIC_OFF + 4 &&
		    (rc = mmkv__os_pread_full(env->fd, &magic, 4, MMKV_META_MAGIC_OFF)) != 0)
			return rc;
		return magic == MMKV_META_MAGIC ? MMKV_CORRUPTED : MMKV_INVALID;
	}
	rc = mmkv__os_pread_full(env->fd, b0, sizeof(b0), 0);
	if (rc)
		return rc;
	rc0 = decode_meta(b0, 0, &m0);
	rc1 = MMKV_CORRUPTED;
	/* Meta 1 sits one page in; try every page size when meta 0 cannot say. */
	for (uint32_t ps = MMKV_PAGESIZE_MIN; ps <= MMKV_PAGESIZE_MAX; ps *= 2) {
		if (rc0 == 0 && ps != m0.psize)
			continue;
		if ((uint64_t)ps + MMKV_META_SIZE > size)
			break;
		rc = mmkv__os_pread_full(env->fd, b1, sizeof(b1), ps);
		if (rc)
			return rc;
		rc1 = decode_meta(b1, ps, &m1);
		if (rc1 == 0)
			break;
	}
	if (rc0 == 0 && rc1 == 0 && memcmp(m0.uuid, m1.uuid, 16))
		rc1 = MMKV_CORRUPTED; /* pieces of two databases */
	rc = pick_meta(rc0, &m0, rc1, &m1, meta);
	if (rc)
		return rc;
	/* The size again, after the metas: a commit of another process between
	 * the first look and the reads may have grown the file. */
	rc = mmkv__os_file_size(env->fd, &size);
	if (rc)
		return rc;
	if (meta->npages * (uint64_t)meta->psize > size)
		return MMKV_CORRUPTED; /* truncated */
	env->psize = meta->psize;
	env->file_size = size;
	return 0;
}

/* ---------------------------------------------------------------- open */

static int lock_setup(mmkv_env *env, const mmkv_meta *meta, int exclusive)
{
	/* A read-only handle writes nothing, so it does not fix the mode. */
	uint32_t mode = (env->flags & MMKV_RDONLY)     ? MMKV_LOCK_MODE_NONE
	                : (env->flags & MMKV_WRITEMAP) ? MMKV_LOCK_MODE_WRITEMAP
	                                               : MMKV_LOCK_MODE_PWRITE;
	uint32_t their_mode;
	uint8_t uuid[16];
	int rc;

	if (exclusive) {
		rc = mmkv__lock_init(&env->lock, meta->uuid, env->opt_maxreaders, mode, meta->txnid);
		if (rc == 0)
			rc = mmkv__lock_downgrade(&env->lock);
		return rc;
	}
	rc = mmkv__lock_attach(&env->lock, uuid, &their_mode);
	if (rc)
		return rc;
	if (memcmp(uuid, meta->uuid, 16) != 0)
		return MMKV_INCOMPATIBLE; /* open elsewhere with another data file */
	return mode == MMKV_LOCK_MODE_NONE ? 0 : mmkv__lock_claim_mode(&env->lock, mode);
}

static void env_release(mmkv_env *env)
{
	if (env->map)
		mmkv__os_unmap(env->map, env->mapsize);
	env->map = NULL;
	if (env->fd >= 0)
		mmkv__os.close(env->fd);
	env->fd = -1;
	mmkv__lock_close(&env->lock);
	env->lock.fd = -1;
	if (env->dbis) {
		for (uint32_t i = 0; i < env->ndbis; i++)
			mmkv__free(env->dbis[i].name);
		mmkv__free(env->dbis);
	}
	env->dbis = NULL;
	env->ndbis = 0;
	mmkv__free(env->path);
	env->path = NULL;
	env->opened = false;
}

MMKV_API int mmkv_env_open(mmkv_env *env, const char *path, unsigned int flags, unsigned int mode)
{
	const unsigned int known = MMKV_RDONLY | MMKV_WRITEMAP | MMKV_NOSYNC | MMKV_NOMETASYNC | MMKV_VERIFY;
	mmkv_meta meta;
	char *lockpath;
	int exclusive = 0, rc;

	if (!env || !path || !*path || env->opened || (flags & ~known))
		return EINVAL;
	if (flags & MMKV_RDONLY) /* a reader writes nothing, in either mode */
		flags &= ~(MMKV_WRITEMAP | MMKV_NOSYNC | MMKV_NOMETASYNC);
	if (mode == 0)
		mode = 0644;
	env->flags = flags;
	env->os_psize = mmkv__os_page_size();
	env->fork_generation = __atomic_load_n(&fork_generation, __ATOMIC_ACQUIRE);
	env->path = mmkv__malloc(strlen(path) + 1);
	if (env->path)
		strcpy(env->path, path);
	lockpath = mmkv__malloc(strlen(path) + 6);
	if (!env->path || !lockpath) {
		mmkv__free(lockpath);
		env_release(env);
		return ENOMEM;
	}
	sprintf(lockpath, "%s-lock", path);

	rc = mmkv__lock_open(&env->lock, lockpath, mode, &exclusive);
	mmkv__free(lockpath);
	if (rc == 0)
		rc = open_data_file(env, path, mode);
	if (rc == 0)
		rc = read_metas_at_open(env, &meta);
	if (rc == 0) {
		uint64_t want = env->opt_mapsize ? env->opt_mapsize : DEFAULT_MAPSIZE;
		if (want < meta.limit)
			want = meta.limit;
		if (want < env->file_size)
			want = env->file_size;
		env->mapsize = (want + env->os_psize - 1) & ~(uint64_t)(env->os_psize - 1);
		env->growth = meta.growth ? meta.growth : DEFAULT_GROWTH;
		memcpy(env->uuid, meta.uuid, 16);
		rc = mmkv__os_map(env->fd, env->mapsize, (flags & MMKV_WRITEMAP) != 0, (void **)&env->map);
		if (rc)
			env->map = NULL;
	}
	if (rc == 0)
		rc = lock_setup(env, &meta, exclusive);
	if (rc == 0) {
		if (env->opt_txn_memory < 64ull * env->psize)
			env->opt_txn_memory = 64ull * env->psize;
		env->maxdbis = MMKV_DBI_USER + env->opt_maxdbs;
		env->dbis = mmkv__calloc(env->maxdbis, sizeof(*env->dbis));
		if (env->dbis) {
			/* The hidden dictionary database has a fixed handle. */
			env->dbis[MMKV_DBI_DICT].name = mmkv__malloc(MMKV_DICT_DB_NAMELEN + 1);
			if (env->dbis[MMKV_DBI_DICT].name) {
				memcpy(env->dbis[MMKV_DBI_DICT].name, MMKV_DICT_DB_NAME, MMKV_DICT_DB_NAMELEN + 1);
				env->dbis[MMKV_DBI_DICT].namelen = MMKV_DICT_DB_NAMELEN;
			}
		}
		if (!env->dbis || !env->dbis[MMKV_DBI_DICT].name)
			rc = ENOMEM;
		env->ndbis = MMKV_DBI_USER;
	}
	if (rc) {
		env_release(env);
		return rc;
	}
	env->opened = true;
	return 0;
}

MMKV_API void mmkv_env_close(mmkv_env *env)
{
	if (!env)
		return;
	if (env->opened && env->write_txn &&
	    __atomic_load_n(&fork_generation, __ATOMIC_ACQUIRE) == env->fork_generation)
		mmkv_txn_abort(env->write_txn);
	env_release(env);
	pthread_mutex_destroy(&env->dbi_mutex);
	mmkv__free(env);
}

/* -------------------------------------------------------- describing it */

MMKV_API int mmkv_env_sync(mmkv_env *env, int force)
{
	int rc = mmkv__env_check_usable(env);

	(void)force;
	if (rc)
		return rc;
	if (env->flags & MMKV_RDONLY)
		return EACCES;
	if (__atomic_load_n(&env->panic, __ATOMIC_ACQUIRE))
		return MMKV_PANIC;
	if (env->flags & MMKV_WRITEMAP)
		rc = mmkv__os_msync(env->map, __atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE));
	if (rc == 0)
		rc = mmkv__os_sync(env->fd, 1);
	if (rc)
		__atomic_store_n(&env->panic, 1, __ATOMIC_RELEASE);
	return rc;
}

static void fill_stat(const mmkv_env *env, const mmkv_db *db, mmkv_stat *st)
{
	st->page_size = env->psize;
	st->depth = db->depth;
	st->branch_pages = db->branch_pages;
	st->leaf_pages = db->leaf_pages;
	st->overflow_pages = db->overflow_pages;
	st->entries = db->entries;
}

MMKV_API int mmkv_env_stat(mmkv_env *env, mmkv_stat *st)
{
	mmkv_txn *txn;
	int rc;

	if (!st)
		return EINVAL;
	rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc)
		return rc;
	fill_stat(env, &txn->meta.main, st);
	mmkv_txn_abort(txn);
	return 0;
}

MMKV_API int mmkv_dbi_stat(mmkv_txn *txn, mmkv_dbi dbi, mmkv_stat *st)
{
	mmkv_db *db;
	int rc = mmkv__txn_check(txn, false);

	if (rc)
		return rc;
	if (!st)
		return EINVAL;
	rc = mmkv__txn_db(txn, dbi, &db);
	if (rc)
		return rc;
	fill_stat(txn->env, db, st);
	return 0;
}

/* Pages listed in the free tree of the snapshot. */
static int count_free_pages(mmkv_txn *txn, uint64_t *count)
{
	mmkv_cursor c;
	mmkv_val k, v;
	int rc;

	*count = 0;
	mmkv__cursor_init(&c, txn, MMKV_DBI_FREE);
	for (rc = mmkv__cursor_first(&c); rc == 0; rc = mmkv__cursor_next(&c)) {
		rc = mmkv__cursor_read(&c, &k, &v);
		if (rc)
			return rc;
		for (size_t i = 0; i + 8 <= v.size; i += 8)
			*count += le64((const unsigned char *)v.data + i) != 0;
	}
	return rc == MMKV_NOTFOUND ? 0 : rc;
}

MMKV_API int mmkv_env_info(mmkv_env *env, mmkv_envinfo *info)
{
	mmkv_txn *txn;
	int rc;

	if (!info)
		return EINVAL;
	rc = mmkv_txn_begin(env, NULL, MMKV_RDONLY, &txn);
	if (rc)
		return rc;
	memset(info, 0, sizeof(*info));
	memcpy(info->uuid, txn->meta.uuid, 16);
	info->page_size = env->psize;
	info->max_readers = env->lock.nslots;
	info->num_readers = mmkv__lock_reader_count(&env->lock);
	info->last_txnid = txn->meta.txnid;
	info->last_pgno = txn->meta.npages;
	info->file_size = __atomic_load_n(&env->file_size, __ATOMIC_ACQUIRE);
	info->map_size = env->mapsize;
	info->growth_step = env->growth;
	rc = count_free_pages(txn, &info->free_pages);
	mmkv_txn_abort(txn);
	return rc;
}
