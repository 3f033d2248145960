/*
 * compress.c - LZ4-compressed values and the dictionaries they use.
 *
 * A database created with MMKV_COMPRESS stores a value of at least its
 * threshold as a compressed frame (format.h, COMPRESSED FRAME) when the frame
 * is smaller than the value by at least the database's least saving; every
 * other value is stored as it is. The node flag MMKV_NODE_COMPRESSED tells the
 * two apart, so one database may hold both, and turning compression on later
 * leaves the old values readable.
 *
 * Small values alike in shape (cache entries, records, stanzas) compress
 * poorly one by one: LZ4 finds few repeats inside 200 bytes. A dictionary, a
 * sample of the database's own values given to LZ4 as history that precedes
 * every value, supplies the repeats. Dictionaries live in the hidden
 * dictionary database (format.h, DICTIONARY DATABASE) under ids that the
 * frames name, so a value stays readable after a newer dictionary replaces
 * the one it was compressed with.
 *
 * When dictionaries are built:
 *  1. automatically, when a put finds the database holding
 *     MMKV_DICT_AUTO_ENTRIES entries, and again at 16 and 256 times that, so
 *     that the sample follows the data as the database grows (its first
 *     values are often unlike the bulk). The values already stored, when
 *     at most RECOMPRESS_MAX, are then compressed again with it, so that a
 *     database gains from its dictionary from the first value on;
 *  2. on demand, by mmkv_dict_build(), which always builds a new one and
 *     leaves stored values as they are.
 *
 * Where decompressed values live (the lifetimes mmkv.h documents):
 *  - mmkv_get and the existing value of a failed MMKV_NOOVERWRITE put: the
 *    transaction's arena, freed when the transaction ends or is reset;
 *  - a cursor's values: the cursor's own buffer, reused by its next call.
 *
 * Invariants:
 *  1. A frame is only trusted after LZ4's bounds-checked decoder produced
 *     exactly the original size from it; anything else is MMKV_CORRUPTED.
 *  2. Dictionary content used by a write transaction is a private copy (its
 *     pages may be spilled or changed); read transactions use the map, whose
 *     snapshot pages never change while they live.
 */
#include "page.h"

#include <lz4.h>

/* Entries at which a database without a dictionary gets one built. */
#define MMKV_DICT_AUTO_ENTRIES 512u
/* Too little sample to build a dictionary from. */
#define DICT_MIN_SAMPLE 1024u
/* Most bytes one sampled value contributes, and most values sampled. */
#define SAMPLE_VALUE_MAX 4096u
#define SAMPLE_VALUES_MAX 2048u
/* Most values compressed again after an automatic dictionary build. */
#define RECOMPRESS_MAX (16u * MMKV_DICT_AUTO_ENTRIES)
/* Dictionaries a transaction keeps ready for decompression. */
#define DICT_CACHE 4

/* Default compression settings of a database (mmkv.h documents them). The
 * threshold comes from a measurement: single lines of Debian's package list
 * (about 160,000 values of 1 to 200 bytes), each compressed with a 64 KiB
 * dictionary of other lines: of values of 32-47 bytes only half saved 10%
 * or more (stored 0.86 of their size on the whole), of 48-63 bytes 94% did
 * (0.74), and larger ones did better still. */
#define DEFAULT_THRESHOLD 48u
#define DEFAULT_SAVING 10u

typedef struct dict_entry {
	uint32_t id;
	const unsigned char *data; /* content: in the map, or in copy */
	uint32_t size;
	unsigned char *copy;       /* write transactions: owned copy */
} dict_entry;

typedef struct arena_block {
	struct arena_block *next;
	size_t size;
	unsigned char data[];
} arena_block;

struct mmkv_zstate {
	arena_block *arena;         /* decompressed values of mmkv_get, newest block first */
	size_t arena_used;          /* bytes used of the newest block */
	unsigned char *out;         /* compression output */
	size_t out_cap;
	dict_entry dicts[DICT_CACHE];
	unsigned next_victim;
	LZ4_stream_t *preloaded;    /* stream with stream_dict loaded */
	LZ4_stream_t *work;
	uint32_t stream_dict;       /* dictionary id preloaded (0: none) */
	mmkv_dbi built_dbi;         /* last automatic build in this transaction: */
	uint64_t built_entries;     /* which database, at how many entries */
	unsigned char *stream_copy; /* the content preloaded refers to */
};

static struct mmkv_zstate *zstate(mmkv_txn *txn)
{
	if (!txn->z)
		txn->z = mmkv__calloc(1, sizeof(*txn->z));
	return txn->z;
}

static void dict_cache_clear(struct mmkv_zstate *z)
{
	for (int i = 0; i < DICT_CACHE; i++) {
		mmkv__free(z->dicts[i].copy);
		z->dicts[i] = (dict_entry){ 0, NULL, 0, NULL };
	}
	z->stream_dict = 0;
}

void mmkv__zstate_reset(mmkv_txn *txn)
{
	struct mmkv_zstate *z = txn->z;

	if (!z)
		return;
	while (z->arena) {
		arena_block *b = z->arena;
		z->arena = b->next;
		mmkv__free(b);
	}
	dict_cache_clear(z);
}

void mmkv__zstate_free(mmkv_txn *txn)
{
	struct mmkv_zstate *z = txn->z;

	if (!z)
		return;
	mmkv__zstate_reset(txn);
	mmkv__free(z->out);
	mmkv__free(z->preloaded);
	mmkv__free(z->work);
	mmkv__free(z->stream_copy);
	mmkv__free(z);
	txn->z = NULL;
}

/* ---------------------------------------------------------------- frames */

static size_t leb_put(unsigned char *p, uint32_t v)
{
	size_t n = 0;

	do {
		unsigned char b = v & 0x7f;
		v >>= 7;
		p[n++] = b | (v ? 0x80 : 0);
	} while (v);
	return n;
}

/* Decode a LEB128 number of at most 32 bits from [*p, end). */
static bool leb_get(const unsigned char **p, const unsigned char *end, uint32_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 35; shift += 7) {
		if (*p >= end)
			return false;
		unsigned char b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			if (x > UINT32_MAX)
				return false;
			*v = (uint32_t)x;
			return true;
		}
	}
	return false;
}

/* ----------------------------------------------------------- dictionaries */

/* Make the dictionary database's record current in txn. Returns
 * MMKV_NOTFOUND when it does not exist (yet). */
static int dict_db_load(mmkv_txn *txn)
{
	if (txn->dbstate[MMKV_DBI_DICT] & DB_VALID)
		return (txn->dbstate[MMKV_DBI_DICT] & DB_GONE) ? MMKV_NOTFOUND : 0;
	int rc = mmkv__dbi_load(txn, MMKV_DBI_DICT);
	return rc == MMKV_BAD_DBI ? MMKV_NOTFOUND : rc;
}

/* Split a dictionary record into owner name and content. */
static int dict_record_parse(const mmkv_val *rec, mmkv_val *owner, mmkv_val *content)
{
	const unsigned char *p = rec->data;

	if (rec->size < 2)
		return MMKV_CORRUPTED;
	owner->size = p[0];
	owner->data = (void *)(p + 1);
	if (rec->size < 1 + owner->size + 1 || rec->size - 1 - owner->size > MMKV_DICT_MAX)
		return MMKV_CORRUPTED;
	content->data = (void *)(p + 1 + owner->size);
	content->size = rec->size - 1 - owner->size;
	return 0;
}

/* Find dictionary id's content, through the transaction's cache. */
static int dict_get(mmkv_txn *txn, uint32_t id, const unsigned char **data, uint32_t *size)
{
	struct mmkv_zstate *z = zstate(txn);
	mmkv_val key = { 4, &id }, rec, owner, content;
	mmkv_cursor c;
	bool exact;
	int rc;

	if (!z)
		return ENOMEM;
	for (int i = 0; i < DICT_CACHE; i++) {
		if (z->dicts[i].id == id) {
			*data = z->dicts[i].data;
			*size = z->dicts[i].size;
			return 0;
		}
	}
	rc = dict_db_load(txn);
	if (rc == 0) {
		mmkv__cursor_init(&c, txn, MMKV_DBI_DICT);
		rc = mmkv__cursor_seek(&c, &key, &exact);
		if (rc == 0 && !exact)
			rc = MMKV_NOTFOUND;
	}
	if (rc == 0)
		rc = mmkv__cursor_read(&c, NULL, &rec);
	if (rc == 0)
		rc = dict_record_parse(&rec, &owner, &content);
	if (rc == MMKV_NOTFOUND)
		rc = MMKV_CORRUPTED; /* a frame names a dictionary that is not there */
	if (rc)
		return rc == MMKV_CORRUPTED ? CORRUPT(0) : rc;

	dict_entry *e = &z->dicts[z->next_victim];
	z->next_victim = (z->next_victim + 1) % DICT_CACHE;
	mmkv__free(e->copy);
	*e = (dict_entry){ id, content.data, (uint32_t)content.size, NULL };
	if (!(txn->flags & TXN_RDONLY)) {
		e->copy = mmkv__malloc(content.size);
		if (!e->copy) {
			e->id = 0;
			return ENOMEM;
		}
		memcpy(e->copy, content.data, content.size);
		e->data = e->copy;
	}
	*data = e->data;
	*size = e->size;
	return 0;
}

/* The name by which a dictionary record names its owner. */
static void owner_name(const mmkv_txn *txn, mmkv_dbi dbi, mmkv_val *name)
{
	if (dbi == MMKV_DBI_MAIN) {
		name->size = 0;
		name->data = NULL;
	} else {
		name->size = txn->env->dbis[dbi].namelen;
		name->data = txn->env->dbis[dbi].name;
	}
}

/* Create the dictionary database in this write transaction if needed. */
static int dict_db_ensure(mmkv_txn *txn)
{
	int rc = dict_db_load(txn);

	if (rc != MMKV_NOTFOUND)
		return rc;
	memset(&txn->dbs[MMKV_DBI_DICT], 0, sizeof(mmkv_db));
	txn->dbs[MMKV_DBI_DICT].flags = MMKV_DB_INTEGERKEY;
	txn->dbs[MMKV_DBI_DICT].mod_txnid = txn->txnid;
	txn->dbstate[MMKV_DBI_DICT] = DB_VALID | DB_DIRTY;
	return 0;
}

/* Append one sample (at most SAMPLE_VALUE_MAX bytes of a value). */
typedef struct sample {
	unsigned char *buf;
	size_t len, cap;
	uint32_t *starts; /* start of each sampled value */
	uint32_t n;
} sample;

static int sample_add(sample *s, const void *p, size_t n)
{
	if (n > SAMPLE_VALUE_MAX)
		n = SAMPLE_VALUE_MAX;
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256 * 1024;
		while (cap < s->len + n)
			cap *= 2;
		unsigned char *b = mmkv__realloc(s->buf, cap);
		if (!b)
			return ENOMEM;
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->starts[s->n++] = (uint32_t)s->len;
	s->len += n;
	return 0;
}

/* Sample values of dbi spread evenly over the database: at most
 * SAMPLE_VALUES_MAX of those at or above its threshold. */
static int sample_values(mmkv_txn *txn, mmkv_dbi dbi, sample *s)
{
	const mmkv_db *db = &txn->dbs[dbi];
	uint64_t stride = db->entries / SAMPLE_VALUES_MAX + 1, i = 0;
	unsigned char *vbuf = NULL;
	size_t vcap = 0;
	mmkv_cursor c;
	int rc;

	s->starts = mmkv__malloc(SAMPLE_VALUES_MAX * sizeof(*s->starts));
	if (!s->starts)
		return ENOMEM;
	mmkv__cursor_init(&c, txn, dbi);
	for (rc = mmkv__cursor_first(&c); rc == 0 && s->n < SAMPLE_VALUES_MAX; rc = mmkv__cursor_next(&c), i++) {
		mmkv_val v;
		unsigned nflags;
		if (i % stride)
			continue;
		rc = mmkv__cursor_read_node(&c, NULL, &v, &nflags);
		if (rc == 0 && (nflags & MMKV_NODE_COMPRESSED))
			rc = mmkv__value_expand(txn, &v, (mmkv_vbuf){ &vbuf, &vcap }, &v);
		if (rc == 0 && v.size >= db->zthreshold && v.size > 0)
			rc = sample_add(s, v.data, v.size);
		if (rc)
			break;
	}
	mmkv__free(vbuf);
	return rc == MMKV_NOTFOUND ? 0 : rc;
}

/* Choose the dictionary content from the sample: whole sampled values taken
 * at an even stride until MMKV_DICT_MAX bytes are filled, so that every part
 * of the key space is represented. */
static size_t dict_from_sample(const sample *s, unsigned char *dict)
{
	size_t len = 0;
	uint32_t step = (uint32_t)(s->len / MMKV_DICT_MAX) + 1;

	for (uint32_t k = 0; k < step && len < MMKV_DICT_MAX; k++) {
		for (uint32_t i = k; i < s->n && len < MMKV_DICT_MAX; i += step) {
			size_t end = i + 1 < s->n ? s->starts[i + 1] : s->len;
			size_t n = end - s->starts[i];
			if (n > MMKV_DICT_MAX - len)
				n = MMKV_DICT_MAX - len;
			memcpy(dict + len, s->buf + s->starts[i], n);
			len += n;
		}
	}
	return len;
}

/* Build a dictionary for dbi from its values and make it current. Returns
 * MMKV_NOTFOUND when the values are too few or too small to build one. */
static int dict_build(mmkv_txn *txn, mmkv_dbi dbi)
{
	sample s = { NULL, 0, 0, NULL, 0 };
	unsigned char *rec = NULL;
	mmkv_val owner;
	uint32_t id = 1;
	int rc = sample_values(txn, dbi, &s);

	if (rc == 0 && s.len < DICT_MIN_SAMPLE)
		rc = MMKV_NOTFOUND;
	if (rc == 0)
		rc = dict_db_ensure(txn);
	if (rc == 0) {
		/* The next id: one above the highest in use. */
		mmkv_cursor c;
		mmkv_val k;
		mmkv__cursor_init(&c, txn, MMKV_DBI_DICT);
		rc = mmkv__cursor_last(&c);
		if (rc == 0)
			rc = mmkv__cursor_read(&c, &k, NULL);
		if (rc == 0) {
			if (k.size != 4)
				rc = CORRUPT(c.pgnos[c.top]);
			else
				memcpy(&id, k.data, 4), id++;
			if (rc == 0 && id == 0)
				rc = MMKV_DBS_FULL; /* 4 billion dictionaries */
		} else if (rc == MMKV_NOTFOUND) {
			rc = 0;
		}
	}
	owner_name(txn, dbi, &owner);
	if (rc == 0) {
		rec = mmkv__malloc(1 + owner.size + MMKV_DICT_MAX);
		if (!rec)
			rc = ENOMEM;
	}
	if (rc == 0) {
		rec[0] = (unsigned char)owner.size;
		if (owner.size)
			memcpy(rec + 1, owner.data, owner.size);
		size_t n = dict_from_sample(&s, rec + 1 + owner.size);
		mmkv_val key = { 4, &id }, val = { 1 + owner.size + n, rec };
		mmkv_cursor c;
		mmkv__cursor_init(&c, txn, MMKV_DBI_DICT);
		rc = mmkv__btree_put(&c, &key, &val, 0, 0);
	}
	if (rc == 0) {
		txn->dbs[dbi].dict_id = id;
		txn->dbs[dbi].mod_txnid = txn->txnid;
		txn->dbstate[dbi] |= DB_DIRTY;
	}
	mmkv__free(rec);
	mmkv__free(s.buf);
	mmkv__free(s.starts);
	return rc;
}

/* Call fn for each dictionary record dbi owns; stops at fn's error. */
typedef int(owned_fn)(void *ctx, uint32_t id, const mmkv_val *content);

static int for_each_owned(mmkv_txn *txn, mmkv_dbi dbi, owned_fn *fn, void *ctx)
{
	mmkv_val owner;
	mmkv_cursor c;
	int rc = dict_db_load(txn);

	if (rc)
		return rc == MMKV_NOTFOUND ? 0 : rc;
	owner_name(txn, dbi, &owner);
	mmkv__cursor_init(&c, txn, MMKV_DBI_DICT);
	for (rc = mmkv__cursor_first(&c); rc == 0; rc = mmkv__cursor_next(&c)) {
		mmkv_val key, rec, who, content;
		uint32_t id;
		rc = mmkv__cursor_read(&c, &key, &rec);
		if (rc == 0 && (key.size != 4 || dict_record_parse(&rec, &who, &content)))
			rc = CORRUPT(c.pgnos[c.top]);
		if (rc)
			return rc;
		memcpy(&id, key.data, 4);
		if (who.size == owner.size && (!owner.size || memcmp(who.data, owner.data, owner.size) == 0)) {
			rc = fn(ctx, id, &content);
			if (rc)
				return rc;
		}
	}
	return rc == MMKV_NOTFOUND ? 0 : rc;
}

static int collect_id(void *ctx, uint32_t id, const mmkv_val *content)
{
	(void)content;
	return mmkv__pglist_push(ctx, id);
}

int mmkv__dict_drop_owned(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_pglist ids = { NULL, 0, 0 };
	int rc = for_each_owned(txn, dbi, collect_id, &ids);

	for (size_t i = 0; rc == 0 && i < ids.n; i++) {
		uint32_t id = (uint32_t)ids.v[i];
		mmkv_val key = { 4, &id };
		mmkv_cursor c;
		bool exact;
		mmkv__cursor_init(&c, txn, MMKV_DBI_DICT);
		rc = mmkv__cursor_seek(&c, &key, &exact);
		if (rc == 0)
			rc = exact ? mmkv__btree_del(&c) : CORRUPT(c.pgnos[c.top]);
	}
	mmkv__pglist_free(&ids);
	if (txn->z)
		dict_cache_clear(txn->z); /* ids may be given out again */
	return rc;
}

/* ------------------------------------------------------------ compression */

int mmkv__compress_enable(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_db *db = &txn->dbs[dbi];

	if (db->flags & MMKV_DB_COMPRESS)
		return 0;
	db->flags |= MMKV_DB_COMPRESS;
	db->zthreshold = DEFAULT_THRESHOLD;
	db->zsaving = DEFAULT_SAVING;
	db->dict_id = 0;
	db->mod_txnid = txn->txnid;
	txn->dbstate[dbi] |= DB_DIRTY;
	return 0;
}

/* Get the compression stream ready for dictionary id (0: none). */
static int stream_ready(mmkv_txn *txn, struct mmkv_zstate *z, uint32_t id)
{
	const unsigned char *data;
	uint32_t size;
	int rc;

	if (!z->preloaded) {
		z->preloaded = mmkv__malloc(sizeof(LZ4_stream_t));
		z->work = mmkv__malloc(sizeof(LZ4_stream_t));
		if (!z->preloaded || !z->work)
			return ENOMEM;
		z->stream_dict = UINT32_MAX; /* nothing loaded */
	}
	if (z->stream_dict == id)
		return 0;
	LZ4_initStream(z->preloaded, sizeof(LZ4_stream_t));
	z->stream_dict = UINT32_MAX;
	if (id) {
		rc = dict_get(txn, id, &data, &size);
		if (rc)
			return rc;
		/* LZ4 refers to the content while the stream is used: keep a
		 * copy that no cache eviction can free. */
		unsigned char *copy = mmkv__realloc(z->stream_copy, size);
		if (!copy)
			return ENOMEM;
		memcpy(copy, data, size);
		z->stream_copy = copy;
		LZ4_loadDict(z->preloaded, (const char *)copy, (int)size);
	}
	z->stream_dict = id;
	return 0;
}

/* Whether this transaction built dbi's dictionary at this entry count
 * already (a delete and a put would otherwise build it again); records it. */
static bool z_built_at(mmkv_txn *txn, mmkv_dbi dbi, uint64_t entries)
{
	struct mmkv_zstate *z = zstate(txn);

	if (!z)
		return true; /* no memory: skip the build, the put reports ENOMEM */
	if (z->built_dbi == dbi && z->built_entries == entries)
		return true;
	z->built_dbi = dbi;
	z->built_entries = entries;
	return false;
}

/* Keys of a database, copied end to end (each preceded by its 2-byte size). */
static int collect_keys(mmkv_txn *txn, mmkv_dbi dbi, unsigned char **keys, size_t *len)
{
	size_t cap = 0;
	mmkv_cursor c;
	int rc;

	*keys = NULL;
	*len = 0;
	mmkv__cursor_init(&c, txn, dbi);
	for (rc = mmkv__cursor_first(&c); rc == 0; rc = mmkv__cursor_next(&c)) {
		mmkv_val k;
		rc = mmkv__cursor_read(&c, &k, NULL);
		if (rc)
			return rc;
		if (*len + 2 + k.size > cap) {
			cap = cap ? cap * 2 : 64 * 1024;
			unsigned char *b = mmkv__realloc(*keys, cap);
			if (!b)
				return ENOMEM;
			*keys = b;
		}
		put16(*keys + *len, (uint16_t)k.size);
		memcpy(*keys + *len + 2, k.data, k.size);
		*len += 2 + k.size;
	}
	return rc == MMKV_NOTFOUND ? 0 : rc;
}

/* Store every value of dbi again, compressed with its current dictionary
 * where that makes it smaller than it is stored now. */
static int recompress_all(mmkv_txn *txn, mmkv_dbi dbi)
{
	unsigned char *keys, *vbuf = NULL;
	size_t len, vcap = 0;
	int rc = collect_keys(txn, dbi, &keys, &len);

	for (size_t at = 0; rc == 0 && at < len;) {
		mmkv_val key = { le16(keys + at), keys + at + 2 }, old = { 0, NULL }, value, stored;
		unsigned oflags, nflags;
		mmkv_cursor c;
		bool exact;
		at += 2 + key.size;
		mmkv__cursor_init(&c, txn, dbi);
		rc = mmkv__cursor_seek(&c, &key, &exact);
		if (rc == 0 && !exact)
			rc = CORRUPT(c.pgnos[c.top]);
		if (rc == 0)
			rc = mmkv__cursor_read_node(&c, NULL, &old, &oflags);
		value = old;
		if (rc == 0 && (oflags & MMKV_NODE_COMPRESSED))
			rc = mmkv__value_expand(txn, &old, (mmkv_vbuf){ &vbuf, &vcap }, &value);
		if (rc == 0)
			rc = mmkv__value_compress(txn, dbi, &value, &stored, &nflags);
		if (rc == 0 && nflags && stored.size < old.size)
			rc = mmkv__btree_put(&c, &key, &stored, 0, nflags);
	}
	mmkv__free(keys);
	mmkv__free(vbuf);
	return rc;
}

int mmkv__compress_before_put(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_db *db = &txn->dbs[dbi];
	int rc = 0;

	if ((db->flags & MMKV_DB_COMPRESS) &&
	    (db->entries == MMKV_DICT_AUTO_ENTRIES || db->entries == 16 * MMKV_DICT_AUTO_ENTRIES ||
	     db->entries == 256 * MMKV_DICT_AUTO_ENTRIES) &&
	    !z_built_at(txn, dbi, db->entries)) {
		rc = dict_build(txn, dbi);
		if (rc == 0 && db->entries <= RECOMPRESS_MAX)
			rc = recompress_all(txn, dbi);
	}
	return rc == MMKV_NOTFOUND ? 0 : rc;
}

int mmkv__value_compress(mmkv_txn *txn, mmkv_dbi dbi, const mmkv_val *data, mmkv_val *stored,
                         unsigned *nflags)
{
	mmkv_db *db = &txn->dbs[dbi];
	struct mmkv_zstate *z;
	int rc, n;

	*stored = *data;
	*nflags = 0;
	if (!(db->flags & MMKV_DB_COMPRESS) || data->size < db->zthreshold || data->size == 0 ||
	    data->size > LZ4_MAX_INPUT_SIZE)
		return 0;
	z = zstate(txn);
	if (!z)
		return ENOMEM;
	size_t bound = MMKV_ZFRAME_HEADER_MAX + (size_t)LZ4_compressBound((int)data->size);
	if (bound > z->out_cap) {
		unsigned char *out = mmkv__realloc(z->out, bound);
		if (!out)
			return ENOMEM;
		z->out = out;
		z->out_cap = bound;
	}
	rc = stream_ready(txn, z, db->dict_id);
	if (rc)
		return rc;
	size_t h = leb_put(z->out, (uint32_t)data->size);
	h += leb_put(z->out + h, db->dict_id);
	memcpy(z->work, z->preloaded, sizeof(LZ4_stream_t));
	n = LZ4_compress_fast_continue(z->work, data->data, (char *)z->out + h, (int)data->size,
	                               (int)(z->out_cap - h), 1);
	if (n <= 0)
		return 0; /* LZ4 gave up: store it plain */
	uint64_t keep = data->size - data->size * (uint64_t)db->zsaving / 100;
	if (h + (size_t)n >= data->size || h + (size_t)n > keep)
		return 0;
	stored->data = z->out;
	stored->size = h + (size_t)n;
	*nflags = MMKV_NODE_COMPRESSED;
	return 0;
}

/* ---------------------------------------------------------- decompression */

/* Bump allocation from blocks of at least ARENA_BLOCK bytes: a get costs no
 * malloc of its own. */
#define ARENA_BLOCK (64u * 1024)

static unsigned char *arena_alloc(struct mmkv_zstate *z, size_t n)
{
	arena_block *b = z->arena;

	n = (n + 15) & ~(size_t)15;
	if (!b || b->size - z->arena_used < n) {
		size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		b = mmkv__malloc(sizeof(*b) + size);
		if (!b)
			return NULL;
		b->next = z->arena;
		b->size = size;
		z->arena = b;
		z->arena_used = 0;
	}
	z->arena_used += n;
	return b->data + z->arena_used - n;
}

int mmkv__value_expand(mmkv_txn *txn, const mmkv_val *stored, mmkv_vbuf where, mmkv_val *out)
{
	const unsigned char *p = stored->data, *end = p + stored->size;
	const unsigned char *dict = NULL;
	uint32_t size, id, dict_size = 0;
	unsigned char *dst;
	int rc, n;

	if (!leb_get(&p, end, &size) || !leb_get(&p, end, &id) || end - p > LZ4_MAX_INPUT_SIZE)
		return CORRUPT(0);
	if (id) {
		rc = dict_get(txn, id, &dict, &dict_size);
		if (rc)
			return rc;
	}
	if (where.buf) {
		if (*where.cap < size || !*where.buf) {
			unsigned char *b = mmkv__realloc(*where.buf, size ? size : 1);
			if (!b)
				return ENOMEM;
			*where.buf = b;
			*where.cap = size;
		}
		dst = *where.buf;
	} else {
		struct mmkv_zstate *z = zstate(txn);
		dst = z ? arena_alloc(z, size) : NULL;
		if (!dst)
			return ENOMEM;
	}
	if (size > (uint32_t)INT32_MAX)
		return CORRUPT(0);
	if (id)
		n = LZ4_decompress_safe_usingDict((const char *)p, (char *)dst, (int)(end - p), (int)size,
		                                  (const char *)dict, (int)dict_size);
	else
		n = LZ4_decompress_safe((const char *)p, (char *)dst, (int)(end - p), (int)size);
	if (n < 0 || (uint32_t)n != size)
		return CORRUPT(0);
	out->data = dst;
	out->size = size;
	return 0;
}

/* ------------------------------------------------------------ public calls */

/* The common checks of the calls below: a usable transaction (a write
 * transaction if write), a valid handle, a compressed database. */
static int compressed_db(mmkv_txn *txn, mmkv_dbi dbi, bool write, mmkv_db **db)
{
	int rc = mmkv__txn_check(txn, write);

	if (rc == 0)
		rc = mmkv__txn_db(txn, dbi, db);
	if (rc == 0 && !((*db)->flags & MMKV_DB_COMPRESS))
		rc = MMKV_INCOMPATIBLE;
	return rc;
}

MMKV_API int mmkv_dict_build(mmkv_txn *txn, mmkv_dbi dbi)
{
	mmkv_db *db;
	int rc = compressed_db(txn, dbi, true, &db);

	if (rc)
		return rc;
	rc = mmkv__txn_begin_change(txn);
	if (rc)
		return rc;
	rc = dict_build(txn, dbi);
	if (rc && rc != MMKV_NOTFOUND)
		mmkv__txn_fail(txn);
	return rc;
}

MMKV_API int mmkv_compress_set(mmkv_txn *txn, mmkv_dbi dbi, unsigned int threshold,
                               unsigned int min_saving)
{
	mmkv_db *db;
	int rc = compressed_db(txn, dbi, true, &db);

	if (rc)
		return rc;
	if (threshold > UINT16_MAX || min_saving > 99)
		return EINVAL;
	db->zthreshold = (uint16_t)threshold;
	db->zsaving = (uint8_t)min_saving;
	db->mod_txnid = txn->txnid;
	txn->dbstate[dbi] |= DB_DIRTY;
	return 0;
}

static int count_owned(void *ctx, uint32_t id, const mmkv_val *content)
{
	mmkv_compress_stat *info = ctx;

	(void)id;
	info->dict_count++;
	info->dict_bytes += content->size;
	return 0;
}

MMKV_API int mmkv_compress_info(mmkv_txn *txn, mmkv_dbi dbi, mmkv_compress_stat *info)
{
	mmkv_db *db;
	int rc;

	if (!info)
		return EINVAL;
	memset(info, 0, sizeof(*info));
	rc = compressed_db(txn, dbi, false, &db);
	if (rc)
		return rc;
	info->threshold = db->zthreshold;
	info->min_saving = db->zsaving;
	info->dict_id = db->dict_id;
	return for_each_owned(txn, dbi, count_owned, info);
}
