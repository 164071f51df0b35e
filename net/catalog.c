/*
 * catalog.c — the topics catalog and its snapshots (see catalog.h for the
 * file format and the invariants).
 *
 * The mutable catalog keeps its topics in an array sorted by name; a
 * mutation edits the array, writes the whole file atomically and undoes
 * the edit if the write failed (invariant 4). Catalog mutations are rare
 * control-plane operations (topic creation and deletion), so rewriting the
 * file and copying the array into a new snapshot each time is the simple
 * and adequate choice; a snapshot is three allocations (topics, id index,
 * one blob holding every string).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "catalog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "log.h"

#define CATALOG_MAGIC "sluice-catalog 1"
#define CATALOG_UUID_TRIES_MAX 64
#define CATALOG_LINE_MAX (CATALOG_CONFIG_BYTES_MAX * 2 + 512)
/* Largest partition.metadata we accept to read. */
#define CATALOG_PMETA_BYTES_MAX 512

struct catalog_kv {
	char *key;
	char *value;
};

struct catalog_entry {
	char *name;
	uint32_t name_len;
	struct kuuid id;
	int32_t partitions;
	uint32_t flags;
	uint32_t config_count;
	struct catalog_kv *configs;   /* CATALOG_CONFIGS_MAX slots once allocated */
	struct catalog_pstate *pstates; /* cluster mode: [partitions], NULL until set */
};

struct catalog {
	char *dir;
	char cluster_id[CATALOG_ID_CHARS + 1];
	uint64_t version;
	struct catalog_entry *topics;   /* sorted by name */
	uint32_t count;
	uint32_t cap;
	catalog_random_fn *rnd;
	void *rnd_ctx;
	/* cluster mode (catalog_cluster_brokers_set) */
	bool cluster;
	int32_t controller_id;
	struct catalog_broker *brokers; /* sorted by id */
	uint32_t broker_count;
};

/* ---- names ---- */

bool catalog_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > CATALOG_TOPIC_NAME_MAX)
		return false;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
		if (!ok)
			return false;
	}
	return true;
}

static bool catalog_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

bool catalog_name_internal(const char *name, size_t len)
{
	return catalog_name_eq(name, len, "__consumer_offsets", 18) ||
	       catalog_name_eq(name, len, "__transaction_state", 19);
}

bool catalog_name_reserved(const char *name, size_t len)
{
	return catalog_name_internal(name, len) || (len >= 8 && memcmp(name, "__sluice", 8) == 0);
}

/* Kafka refuses names that differ only by '.' vs '_' (they share metric names). */
static bool catalog_name_collides(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		char x = a[i] == '.' ? '_' : a[i];
		char y = b[i] == '.' ? '_' : b[i];
		if (x != y)
			return false;
	}
	return true;
}

static int catalog_name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, SL_MIN(alen, blen));

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* ---- uuids ---- */

static const char catalog_b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void catalog_uuid_format(const struct kuuid *id, char out[CATALOG_ID_CHARS + 1])
{
	size_t o = 0;

	/* 5 groups of 3 bytes -> 20 chars, then 1 byte -> 2 chars. */
	for (size_t i = 0; i < 15; i += 3) {
		uint32_t v = (uint32_t)id->b[i] << 16 | (uint32_t)id->b[i + 1] << 8 | id->b[i + 2];
		out[o++] = catalog_b64[(v >> 18) & 63];
		out[o++] = catalog_b64[(v >> 12) & 63];
		out[o++] = catalog_b64[(v >> 6) & 63];
		out[o++] = catalog_b64[v & 63];
	}
	out[o++] = catalog_b64[id->b[15] >> 2];
	out[o++] = catalog_b64[(id->b[15] & 3) << 4];
	out[o] = '\0';
	SL_ASSERT(o == CATALOG_ID_CHARS);
}

static int catalog_b64_value(char ch)
{
	const char *p = ch != '\0' ? strchr(catalog_b64, ch) : NULL;

	return p == NULL ? -1 : (int)(p - catalog_b64);
}

enum sl_err catalog_uuid_parse(const char *s, size_t len, struct kuuid *out)
{
	int v[CATALOG_ID_CHARS];

	if (len != CATALOG_ID_CHARS)
		return SL_EINVAL;
	for (size_t i = 0; i < CATALOG_ID_CHARS; i++) {
		v[i] = catalog_b64_value(s[i]);
		if (v[i] < 0)
			return SL_EINVAL;
	}
	if ((v[21] & 15) != 0)
		return SL_EINVAL;   /* the last char carries 2 bits only */
	for (size_t g = 0; g < 5; g++) {
		uint32_t x = (uint32_t)v[g * 4] << 18 | (uint32_t)v[g * 4 + 1] << 12 |
			     (uint32_t)v[g * 4 + 2] << 6 | (uint32_t)v[g * 4 + 3];
		out->b[g * 3] = (uint8_t)(x >> 16);
		out->b[g * 3 + 1] = (uint8_t)(x >> 8);
		out->b[g * 3 + 2] = (uint8_t)x;
	}
	out->b[15] = (uint8_t)(v[20] << 2 | v[21] >> 4);
	return SL_OK;
}

bool catalog_uuid_is_zero(const struct kuuid *id)
{
	for (size_t i = 0; i < sizeof(id->b); i++)
		if (id->b[i] != 0)
			return false;
	return true;
}

static int catalog_random_default(void *ctx, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t got = 0;

	(void)ctx;
	for (int tries = 0; got < len && tries < 16; tries++) {
		ssize_t n = getrandom(p + got, len - got, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	return got == len ? 0 : -EIO;
}

static bool catalog_id_used(const struct catalog *c, const struct kuuid *id)
{
	for (uint32_t i = 0; i < c->count; i++)
		if (memcmp(c->topics[i].id.b, id->b, sizeof(id->b)) == 0)
			return true;
	return false;
}

/*
 * A random UUID v4 as Kafka makes them (invariant 2). SL_OK or SL_EIO
 * (no randomness, or CATALOG_UUID_TRIES_MAX draws all rejected).
 */
static enum sl_err catalog_uuid_new(struct catalog *c, struct kuuid *out)
{
	char text[CATALOG_ID_CHARS + 1];

	for (int tries = 0; tries < CATALOG_UUID_TRIES_MAX; tries++) {
		if (c->rnd(c->rnd_ctx, out->b, sizeof(out->b)) != 0)
			return SL_EIO;
		out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40);
		out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
		catalog_uuid_format(out, text);
		if (text[0] == '-' || catalog_id_used(c, out))
			continue;
		return SL_OK;
	}
	return SL_EIO;
}

/* ---- entries ---- */

static void catalog_entry_free(struct catalog_entry *e)
{
	for (uint32_t i = 0; i < e->config_count; i++) {
		free(e->configs[i].key);
		free(e->configs[i].value);
	}
	free(e->configs);
	free(e->pstates);
	free(e->name);
	memset(e, 0, sizeof(*e));
}

/* Binary search: index of `name`, or -(insertion point) - 1. */
static int64_t catalog_find(const struct catalog *c, const char *name, size_t len)
{
	uint32_t lo = 0, hi = c->count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int cmp = catalog_name_cmp(c->topics[mid].name, c->topics[mid].name_len, name, len);
		if (cmp == 0)
			return mid;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(int64_t)lo - 1;
}

/* Inserts `e` (moved in) at `at`. SL_OK or SL_ENOMEM (e untouched). */
static enum sl_err catalog_insert(struct catalog *c, uint32_t at, const struct catalog_entry *e)
{
	SL_ASSERT(at <= c->count);
	if (c->count == c->cap) {
		uint32_t cap = c->cap == 0 ? 16 : c->cap * 2;
		struct catalog_entry *t = realloc(c->topics, (size_t)cap * sizeof(*t));
		if (t == NULL)
			return SL_ENOMEM;
		c->topics = t;
		c->cap = cap;
	}
	memmove(&c->topics[at + 1], &c->topics[at], (size_t)(c->count - at) * sizeof(*e));
	c->topics[at] = *e;
	c->count++;
	return SL_OK;
}

/* Removes entry `at` into *out (moved out, not freed). */
static void catalog_remove(struct catalog *c, uint32_t at, struct catalog_entry *out)
{
	SL_ASSERT(at < c->count);
	*out = c->topics[at];
	memmove(&c->topics[at], &c->topics[at + 1], (size_t)(c->count - at - 1) * sizeof(*out));
	c->count--;
}

/* ---- the file ---- */

struct catalog_buf {
	char *p;
	size_t len;
	size_t cap;
	bool failed;
};

static void catalog_buf_printf(struct catalog_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void catalog_buf_printf(struct catalog_buf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->failed)
		return;
	for (int attempt = 0; attempt < 2; attempt++) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p == NULL ? NULL : b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = SL_MAX(b->cap * 2, b->len + (size_t)n + 1);
		if (cap < 4096)
			cap = 4096;
		char *q = realloc(b->p, cap);
		if (q == NULL || cap > CATALOG_FILE_BYTES_MAX) {
			if (q != NULL)
				b->p = q;
			b->failed = true;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	b->failed = true;
}

/*
 * Replaces `dir/name` with `len` bytes of `data` through the project's one
 * atomic write (tmp file, fsync, rename, fsync dir: io/checkpoint.h).
 * SL_OK or SL_EIO (logged; the old file stays).
 */
static enum sl_err catalog_file_replace(const char *dir, const char *name, const char *data,
					size_t len)
{
	int dfd, rc;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		LOG_E(LOG_NO_SHARD, "catalog: open %s failed: %s", dir, strerror(-rc));
		return SL_EIO;
	}
	rc = checkpoint_write_file_atomic(dfd, name, data, len);
	close(dfd);
	if (rc < 0) {
		LOG_E(LOG_NO_SHARD, "catalog: writing %s/%s failed: %s", dir, name, strerror(-rc));
		return SL_EIO;
	}
	return SL_OK;
}

/* Serialises and persists the catalog (invariant 4). SL_OK, SL_EIO, SL_ENOMEM. */
static enum sl_err catalog_persist(const struct catalog *c)
{
	struct catalog_buf b = { 0 };
	char id[CATALOG_ID_CHARS + 1];
	enum sl_err err;

	catalog_buf_printf(&b, "%s\ncluster.id %s\n", CATALOG_MAGIC, c->cluster_id);
	for (uint32_t i = 0; i < c->count; i++) {
		const struct catalog_entry *e = &c->topics[i];
		catalog_uuid_format(&e->id, id);
		catalog_buf_printf(&b, "topic %s %d %u %s\n", id, e->partitions, e->flags, e->name);
	}
	for (uint32_t i = 0; i < c->count; i++) {
		const struct catalog_entry *e = &c->topics[i];
		for (uint32_t k = 0; k < e->config_count; k++)
			catalog_buf_printf(&b, "config %s %s %s\n", e->name, e->configs[k].key,
					   e->configs[k].value);
	}
	if (b.failed) {
		free(b.p);
		return SL_ENOMEM;
	}
	err = catalog_file_replace(c->dir, CATALOG_FILE_NAME, b.p, b.len);
	free(b.p);
	return err;
}

/*
 * Reads a whole small file into a malloc'd NUL-terminated buffer.
 * SL_OK, SL_ENOTFOUND, SL_ECORRUPT (larger than max), SL_EIO, SL_ENOMEM.
 */
static enum sl_err catalog_read_file(const char *path, size_t max, char **out, size_t *out_len)
{
	struct stat st;
	enum sl_err err = SL_EIO;
	char *buf = NULL;
	size_t got = 0;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? SL_ENOTFOUND : SL_EIO;
	if (fstat(fd, &st) != 0)
		goto out;
	err = SL_ECORRUPT;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
		goto out;
	err = SL_ENOMEM;
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto out;
	err = SL_EIO;
	/* Each iteration reads at least one byte, stops at EOF or the size. */
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*out_len = got;
	buf = NULL;
	err = SL_OK;
out:
	free(buf);
	close(fd);
	return err;
}

/* Splits off the next space-separated word of [*p, end). */
static bool catalog_word(const char **p, const char *end, const char **w, size_t *wlen)
{
	const char *s = *p;

	while (s < end && *s == ' ')
		s++;
	const char *e = s;
	while (e < end && *e != ' ')
		e++;
	*w = s;
	*wlen = (size_t)(e - s);
	*p = e;
	return e > s;
}

static bool catalog_parse_i64(const char *s, size_t len, int64_t lo, int64_t hi, int64_t *out)
{
	char tmp[24];
	char *end;

	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	errno = 0;
	long long v = strtoll(tmp, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static char *catalog_strndup(const char *s, size_t len)
{
	char *p = malloc(len + 1);

	if (p != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* "topic <id> <partitions> <flags> <name>" */
static enum sl_err catalog_parse_topic(struct catalog *c, const char *p, const char *end)
{
	struct catalog_entry e;
	const char *w[4];
	size_t wl[4];
	int64_t parts, flags;

	memset(&e, 0, sizeof(e));
	for (int i = 0; i < 4; i++)
		if (!catalog_word(&p, end, &w[i], &wl[i]))
			return SL_ECORRUPT;
	if (p != end || catalog_uuid_parse(w[0], wl[0], &e.id) != SL_OK ||
	    catalog_uuid_is_zero(&e.id) || catalog_id_used(c, &e.id) ||
	    !catalog_parse_i64(w[1], wl[1], 1, CATALOG_PARTITIONS_MAX, &parts) ||
	    !catalog_parse_i64(w[2], wl[2], 0, UINT32_MAX, &flags) ||
	    !catalog_name_valid(w[3], wl[3]) || c->count >= CATALOG_TOPICS_MAX)
		return SL_ECORRUPT;
	int64_t at = catalog_find(c, w[3], wl[3]);
	if (at >= 0)
		return SL_ECORRUPT;   /* a name twice */
	e.name = catalog_strndup(w[3], wl[3]);
	if (e.name == NULL)
		return SL_ENOMEM;
	e.name_len = (uint32_t)wl[3];
	e.partitions = (int32_t)parts;
	e.flags = (uint32_t)flags;
	if (catalog_insert(c, (uint32_t)(-at - 1), &e) != SL_OK) {
		free(e.name);
		return SL_ENOMEM;
	}
	return SL_OK;
}

static enum sl_err catalog_config_put(struct catalog_entry *e, const char *key, size_t klen,
				      const char *value, size_t vlen);

/* "config <topic> <key> <value...>" (the topic line came first). */
static enum sl_err catalog_parse_config(struct catalog *c, const char *p, const char *end)
{
	const char *name, *key;
	size_t nlen, klen;

	if (!catalog_word(&p, end, &name, &nlen) || !catalog_word(&p, end, &key, &klen))
		return SL_ECORRUPT;
	if (p >= end || *p != ' ')
		return SL_ECORRUPT;
	p++;
	int64_t at = catalog_find(c, name, nlen);
	if (at < 0)
		return SL_ECORRUPT;
	enum sl_err err = catalog_config_put(&c->topics[at], key, klen, p, (size_t)(end - p));
	return err == SL_ENOMEM ? SL_ENOMEM : err == SL_OK ? SL_OK : SL_ECORRUPT;
}

/* Parses the whole file text into c (empty). SL_OK, SL_ECORRUPT (logged), SL_ENOMEM. */
static enum sl_err catalog_parse(struct catalog *c, const char *text, size_t len, const char *path)
{
	const char *p = text, *end = text + len;
	uint32_t line_no = 0;
	bool have_id = false;
	enum sl_err err = SL_OK;

	/* Each iteration consumes one line; lines are bounded by the file size. */
	while (p < end && err == SL_OK) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		const char *w;
		size_t wl;
		const char *q = p;

		line_no++;
		if (nl == NULL || (size_t)(le - p) > CATALOG_LINE_MAX) {
			err = SL_ECORRUPT;   /* the writer always ends lines */
			break;
		}
		if (line_no == 1) {
			if (!catalog_name_eq(p, (size_t)(le - p), CATALOG_MAGIC, strlen(CATALOG_MAGIC)))
				err = SL_ECORRUPT;
		} else if (!catalog_word(&q, le, &w, &wl)) {
			err = SL_ECORRUPT;
		} else if (catalog_name_eq(w, wl, "cluster.id", 10)) {
			const char *id;
			size_t idl;
			struct kuuid u;
			if (have_id || !catalog_word(&q, le, &id, &idl) || q != le ||
			    catalog_uuid_parse(id, idl, &u) != SL_OK) {
				err = SL_ECORRUPT;
			} else {
				memcpy(c->cluster_id, id, idl);
				c->cluster_id[idl] = '\0';
				have_id = true;
			}
		} else if (catalog_name_eq(w, wl, "topic", 5)) {
			err = catalog_parse_topic(c, q, le);
		} else if (catalog_name_eq(w, wl, "config", 6)) {
			err = catalog_parse_config(c, q, le);
		} else {
			err = SL_ECORRUPT;
		}
		p = le + 1;
	}
	if (err == SL_OK && !have_id)
		err = SL_ECORRUPT;
	if (err == SL_ECORRUPT)
		LOG_E(LOG_NO_SHARD, "catalog: %s:%u: malformed line (or missing cluster.id)", path,
		      line_no);
	return err;
}

/* ---- open / close ---- */

enum sl_err catalog_open(struct catalog **out, const char *dir, catalog_random_fn *rnd,
			 void *rnd_ctx)
{
	char path[PATH_MAX];
	struct catalog *c;
	char *text = NULL;
	size_t len = 0;
	enum sl_err err;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/%s", dir, CATALOG_FILE_NAME) >= (int)sizeof(path))
		return SL_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return SL_ENOMEM;
	c->rnd = rnd != NULL ? rnd : catalog_random_default;
	c->rnd_ctx = rnd_ctx;
	c->version = 1;
	err = SL_ENOMEM;
	c->dir = strdup(dir);
	if (c->dir == NULL)
		goto out;
	err = catalog_read_file(path, CATALOG_FILE_BYTES_MAX, &text, &len);
	if (err == SL_OK) {
		err = catalog_parse(c, text, len, path);
	} else if (err == SL_ENOTFOUND) {
		struct kuuid id;
		err = catalog_uuid_new(c, &id);
		if (err != SL_OK)
			goto out;
		catalog_uuid_format(&id, c->cluster_id);
		err = catalog_persist(c);
		if (err == SL_OK)
			LOG_I(LOG_NO_SHARD, "catalog: new cluster id %s in %s", c->cluster_id, path);
	} else {
		LOG_E(LOG_NO_SHARD, "catalog: cannot read %s: %s", path, sl_err_str(err));
	}
out:
	free(text);
	if (err != SL_OK) {
		catalog_close(c);
		return err;
	}
	SL_ASSERT(strlen(c->cluster_id) == CATALOG_ID_CHARS);
	*out = c;
	return SL_OK;
}

void catalog_close(struct catalog *c)
{
	if (c == NULL)
		return;
	for (uint32_t i = 0; i < c->count; i++)
		catalog_entry_free(&c->topics[i]);
	free(c->topics);
	free(c->brokers);
	free(c->dir);
	free(c);
}

uint64_t catalog_version(const struct catalog *c)
{
	return c->version;
}

const char *catalog_cluster_id(const struct catalog *c)
{
	return c->cluster_id;
}

enum sl_err catalog_cluster_id_set(struct catalog *c, const char *id)
{
	char old[CATALOG_ID_CHARS + 1];
	size_t len = strlen(id);

	if (len == 0 || len > CATALOG_ID_CHARS)
		return SL_EINVAL;
	for (size_t i = 0; i < len; i++)
		if (id[i] <= ' ' || id[i] > '~')
			return SL_EINVAL;
	memcpy(old, c->cluster_id, sizeof(old));
	memcpy(c->cluster_id, id, len + 1);
	enum sl_err err = catalog_persist(c);
	if (err != SL_OK)
		memcpy(c->cluster_id, old, sizeof(old));
	else
		c->version++;
	return err;
}

uint32_t catalog_topic_count(const struct catalog *c)
{
	return c->count;
}

/* ---- mutations ---- */

/* Both creations: `id` NULL makes a new random id. */
static enum sl_err catalog_topic_add(struct catalog *c, const char *name, size_t len,
				     int32_t partitions, uint32_t flags, const struct kuuid *id,
				     struct kuuid *id_out)
{
	struct catalog_entry e, gone;
	enum sl_err err;

	if (!catalog_name_valid(name, len))
		return SL_EINVAL;
	int64_t at = catalog_find(c, name, len);
	if (at >= 0) {
		if (id_out != NULL)
			*id_out = c->topics[at].id;
		if (id != NULL && memcmp(c->topics[at].id.b, id->b, sizeof(id->b)) != 0)
			return SL_EINVAL;
		return SL_EEXIST;
	}
	for (uint32_t i = 0; i < c->count; i++)
		if (catalog_name_collides(c->topics[i].name, c->topics[i].name_len, name, len))
			return SL_EINVAL;
	if (partitions < 1 || partitions > CATALOG_PARTITIONS_MAX || c->count >= CATALOG_TOPICS_MAX)
		return SL_ERANGE;
	memset(&e, 0, sizeof(e));
	if (id != NULL) {
		if (catalog_uuid_is_zero(id) || catalog_id_used(c, id))
			return SL_EINVAL;
		e.id = *id;
	} else {
		err = catalog_uuid_new(c, &e.id);
		if (err != SL_OK)
			return err;
	}
	e.name = catalog_strndup(name, len);
	if (e.name == NULL)
		return SL_ENOMEM;
	e.name_len = (uint32_t)len;
	e.partitions = partitions;
	e.flags = flags;
	if (catalog_insert(c, (uint32_t)(-at - 1), &e) != SL_OK) {
		free(e.name);
		return SL_ENOMEM;
	}
	err = catalog_persist(c);
	if (err != SL_OK) {
		catalog_remove(c, (uint32_t)(-at - 1), &gone);
		catalog_entry_free(&gone);
		return err;
	}
	c->version++;
	if (id_out != NULL)
		*id_out = e.id;
	return SL_OK;
}

enum sl_err catalog_topic_create(struct catalog *c, const char *name, size_t len,
				 int32_t partitions, uint32_t flags, struct kuuid *id_out)
{
	return catalog_topic_add(c, name, len, partitions, flags, NULL, id_out);
}

enum sl_err catalog_topic_create_id(struct catalog *c, const char *name, size_t len,
				    int32_t partitions, uint32_t flags, const struct kuuid *id)
{
	SL_ASSERT(id != NULL);
	return catalog_topic_add(c, name, len, partitions, flags, id, NULL);
}

enum sl_err catalog_topic_delete(struct catalog *c, const char *name, size_t len)
{
	struct catalog_entry gone;
	int64_t at = catalog_find(c, name, len);
	enum sl_err err;

	if (at < 0)
		return SL_ENOTFOUND;
	catalog_remove(c, (uint32_t)at, &gone);
	err = catalog_persist(c);
	if (err != SL_OK) {
		enum sl_err back = catalog_insert(c, (uint32_t)at, &gone);
		SL_ASSERT(back == SL_OK);   /* the slot was just freed */
		return err;
	}
	catalog_entry_free(&gone);
	c->version++;
	return SL_OK;
}

enum sl_err catalog_topic_partitions_set(struct catalog *c, const char *name, size_t len,
					 int32_t partitions)
{
	int64_t at = catalog_find(c, name, len);
	enum sl_err err;

	if (at < 0)
		return SL_ENOTFOUND;
	struct catalog_entry *e = &c->topics[at];
	int32_t old = e->partitions;
	if (partitions <= old)
		return SL_EINVAL;
	if (partitions > CATALOG_PARTITIONS_MAX)
		return SL_ERANGE;
	if (e->pstates != NULL) {
		struct catalog_pstate *ps = realloc(e->pstates, (size_t)partitions * sizeof(*ps));
		if (ps == NULL)
			return SL_ENOMEM;
		memset(&ps[old], 0, (size_t)(partitions - old) * sizeof(*ps));
		for (int32_t i = old; i < partitions; i++)
			ps[i].leader = -1;
		e->pstates = ps;
	}
	e->partitions = partitions;
	err = catalog_persist(c);
	if (err != SL_OK) {
		e->partitions = old;
		return err;
	}
	c->version++;
	SL_ASSERT(e->partitions > old);
	return SL_OK;
}

static bool catalog_config_text_ok(const char *s, size_t len, bool allow_space)
{
	if (len == 0 || len > CATALOG_CONFIG_BYTES_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n' || s[i] == '\r' || s[i] == '\0' || (!allow_space && s[i] == ' '))
			return false;
	return true;
}

/* Sets key=value in e (no persistence). SL_OK, SL_EINVAL, SL_ERANGE, SL_ENOMEM. */
static enum sl_err catalog_config_put(struct catalog_entry *e, const char *key, size_t klen,
				      const char *value, size_t vlen)
{
	uint32_t i;

	if (!catalog_config_text_ok(key, klen, false) || !catalog_config_text_ok(value, vlen, true))
		return SL_EINVAL;
	char *v = catalog_strndup(value, vlen);
	if (v == NULL)
		return SL_ENOMEM;
	for (i = 0; i < e->config_count; i++) {
		if (catalog_name_eq(e->configs[i].key, strlen(e->configs[i].key), key, klen)) {
			free(e->configs[i].value);
			e->configs[i].value = v;
			return SL_OK;
		}
	}
	if (e->config_count >= CATALOG_CONFIGS_MAX) {
		free(v);
		return SL_ERANGE;
	}
	if (e->configs == NULL) {
		e->configs = calloc(CATALOG_CONFIGS_MAX, sizeof(*e->configs));
		if (e->configs == NULL) {
			free(v);
			return SL_ENOMEM;
		}
	}
	char *k = catalog_strndup(key, klen);
	if (k == NULL) {
		free(v);
		return SL_ENOMEM;
	}
	e->configs[e->config_count].key = k;
	e->configs[e->config_count].value = v;
	e->config_count++;
	return SL_OK;
}

enum sl_err catalog_topic_config_set(struct catalog *c, const char *name, size_t len,
				     const char *key, const char *value)
{
	int64_t at = catalog_find(c, name, len);
	struct catalog_entry *e;
	struct catalog_kv old = { NULL, NULL };
	uint32_t i;
	enum sl_err err;

	if (at < 0)
		return SL_ENOTFOUND;
	e = &c->topics[at];
	size_t klen = strlen(key);
	for (i = 0; i < e->config_count; i++)
		if (strcmp(e->configs[i].key, key) == 0)
			break;
	if (i < e->config_count) {
		old.key = strdup(e->configs[i].key);
		old.value = strdup(e->configs[i].value);
		if (old.key == NULL || old.value == NULL) {
			err = SL_ENOMEM;
			goto out;
		}
	} else if (value == NULL) {
		return SL_ENOTFOUND;
	}
	if (value != NULL) {
		err = catalog_config_put(e, key, klen, value, strlen(value));
		if (err != SL_OK)
			goto out;
	} else {
		free(e->configs[i].key);
		free(e->configs[i].value);
		e->configs[i] = e->configs[--e->config_count];
	}
	err = catalog_persist(c);
	if (err != SL_OK) {
		/* Undo: restore the old value, or drop the key we added. */
		if (old.key != NULL) {
			enum sl_err back = catalog_config_put(e, old.key, strlen(old.key), old.value,
							      strlen(old.value));
			SL_ASSERT(back == SL_OK || back == SL_ENOMEM);
		} else {
			for (i = 0; i < e->config_count; i++) {
				if (strcmp(e->configs[i].key, key) == 0) {
					free(e->configs[i].key);
					free(e->configs[i].value);
					e->configs[i] = e->configs[--e->config_count];
					break;
				}
			}
		}
		goto out;
	}
	c->version++;
out:
	free(old.key);
	free(old.value);
	return err;
}

/* ---- cluster mode ---- */

static int catalog_broker_cmp(const void *a, const void *b)
{
	int32_t x = ((const struct catalog_broker *)a)->id, y = ((const struct catalog_broker *)b)->id;
	return (x > y) - (x < y);
}

enum sl_err catalog_cluster_brokers_set(struct catalog *c, const struct catalog_broker *b,
					uint32_t n, int32_t controller_id)
{
	struct catalog_broker *list;

	if (n > CATALOG_BROKERS_MAX)
		return SL_ERANGE;
	list = malloc((size_t)(n + 1) * sizeof(*list));
	if (list == NULL)
		return SL_ENOMEM;
	if (n > 0)
		memcpy(list, b, (size_t)n * sizeof(*list));
	qsort(list, n, sizeof(*list), catalog_broker_cmp);
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0 && list[i].id == list[i - 1].id) {
			free(list);
			return SL_EINVAL;
		}
		list[i].host[CATALOG_HOST_MAX - 1] = '\0';
		list[i].rack[CATALOG_RACK_MAX - 1] = '\0';
	}
	free(c->brokers);
	c->brokers = list;
	c->broker_count = n;
	c->controller_id = controller_id;
	c->cluster = true;
	c->version++;
	return SL_OK;
}

enum sl_err catalog_pstate_set(struct catalog *c, const char *name, size_t len,
			       int32_t partition, const struct catalog_pstate *st)
{
	int64_t at = catalog_find(c, name, len);

	if (at < 0)
		return SL_ENOTFOUND;
	struct catalog_entry *e = &c->topics[at];
	if (partition < 0 || partition >= e->partitions || st->replica_count > CATALOG_REPLICAS_MAX ||
	    st->isr_count > CATALOG_REPLICAS_MAX)
		return SL_ERANGE;
	if (e->pstates == NULL) {
		e->pstates = calloc((size_t)e->partitions, sizeof(*e->pstates));
		if (e->pstates == NULL)
			return SL_ENOMEM;
		for (int32_t i = 0; i < e->partitions; i++)
			e->pstates[i].leader = -1;
	}
	e->pstates[partition] = *st;
	c->version++;
	return SL_OK;
}

const struct catalog_broker *catalog_snap_broker(const struct catalog_snap *s, int32_t id)
{
	uint32_t lo = 0, hi = s->broker_count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->brokers[mid].id == id)
			return &s->brokers[mid];
		if (s->brokers[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- snapshots ---- */

/* The topic array being indexed by catalog_snap_sort_ids (qsort has no context). */
static int catalog_id_cmp(const struct kuuid *a, const struct kuuid *b)
{
	return memcmp(a->b, b->b, sizeof(a->b));
}

/* Insertion-free index build: heap sort of indices by id (no qsort context needed). */
static void catalog_snap_sort_ids(struct catalog_snap *s)
{
	uint32_t n = s->topic_count;
	uint32_t *a = s->by_id;

	for (uint32_t i = 0; i < n; i++)
		a[i] = i;
	/* Heap sort: O(n log n), no recursion, no extra memory. */
	for (uint32_t start = n / 2; start-- > 0;) {
		uint32_t root = start;
		for (uint32_t guard = 0; guard < 64; guard++) {
			uint32_t child = 2 * root + 1;
			if (child >= n)
				break;
			if (child + 1 < n &&
			    catalog_id_cmp(&s->topics[a[child]].id, &s->topics[a[child + 1]].id) < 0)
				child++;
			if (catalog_id_cmp(&s->topics[a[root]].id, &s->topics[a[child]].id) >= 0)
				break;
			uint32_t t = a[root];
			a[root] = a[child];
			a[child] = t;
			root = child;
		}
	}
	for (uint32_t end = n; end-- > 1;) {
		uint32_t t = a[0];
		a[0] = a[end];
		a[end] = t;
		uint32_t root = 0;
		for (uint32_t guard = 0; guard < 64; guard++) {
			uint32_t child = 2 * root + 1;
			if (child >= end)
				break;
			if (child + 1 < end &&
			    catalog_id_cmp(&s->topics[a[child]].id, &s->topics[a[child + 1]].id) < 0)
				child++;
			if (catalog_id_cmp(&s->topics[a[root]].id, &s->topics[a[child]].id) >= 0)
				break;
			uint32_t x = a[root];
			a[root] = a[child];
			a[child] = x;
			root = child;
		}
	}
}

enum sl_err catalog_snapshot(const struct catalog *c, struct catalog_snap **out)
{
	struct catalog_snap *s;
	size_t blob = 0, cfgs = 0, at = 0, ci = 0, pss = 0, pi = 0;

	*out = NULL;
	for (uint32_t i = 0; i < c->count; i++) {
		if (c->topics[i].pstates != NULL)
			pss += (size_t)c->topics[i].partitions;
		blob += c->topics[i].name_len + 1;
		for (uint32_t k = 0; k < c->topics[i].config_count; k++)
			blob += strlen(c->topics[i].configs[k].key) +
				strlen(c->topics[i].configs[k].value) + 2;
		cfgs += c->topics[i].config_count;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return SL_ENOMEM;
	s->topics = calloc(c->count + 1, sizeof(*s->topics));
	s->by_id = calloc(c->count + 1, sizeof(*s->by_id));
	s->blob = malloc(blob + 1);
	s->config_store = calloc(cfgs + 1, sizeof(*s->config_store));
	s->pstate_store = malloc((pss + 1) * sizeof(*s->pstate_store));
	s->brokers = malloc((size_t)(c->broker_count + 1) * sizeof(*s->brokers));
	if (s->topics == NULL || s->by_id == NULL || s->blob == NULL || s->config_store == NULL ||
	    s->pstate_store == NULL || s->brokers == NULL) {
		catalog_snap_free(s);
		return SL_ENOMEM;
	}
	s->version = c->version;
	memcpy(s->cluster_id, c->cluster_id, sizeof(s->cluster_id));
	s->topic_count = c->count;
	s->cluster = c->cluster;
	s->controller_id = c->cluster ? c->controller_id : -1;
	s->broker_count = c->broker_count;
	if (c->broker_count > 0)
		memcpy(s->brokers, c->brokers, (size_t)c->broker_count * sizeof(*s->brokers));
	for (uint32_t i = 0; i < c->count; i++) {
		const struct catalog_entry *e = &c->topics[i];
		struct catalog_topic *t = &s->topics[i];
		t->pstates = NULL;
		if (e->pstates != NULL) {
			memcpy(&s->pstate_store[pi], e->pstates,
			       (size_t)e->partitions * sizeof(*e->pstates));
			t->pstates = &s->pstate_store[pi];
			pi += (size_t)e->partitions;
		}
		memcpy(s->blob + at, e->name, e->name_len + 1);
		t->name = s->blob + at;
		at += e->name_len + 1;
		t->name_len = e->name_len;
		t->id = e->id;
		t->partition_count = e->partitions;
		t->flags = e->flags;
		t->config_count = e->config_count;
		t->configs = &s->config_store[ci];
		for (uint32_t k = 0; k < e->config_count; k++, ci++) {
			size_t kl = strlen(e->configs[k].key) + 1, vl = strlen(e->configs[k].value) + 1;
			memcpy(s->blob + at, e->configs[k].key, kl);
			s->config_store[ci].key = s->blob + at;
			at += kl;
			memcpy(s->blob + at, e->configs[k].value, vl);
			s->config_store[ci].value = s->blob + at;
			at += vl;
		}
	}
	SL_ASSERT(at == blob && ci == cfgs && pi == pss);
	catalog_snap_sort_ids(s);
	*out = s;
	return SL_OK;
}

void catalog_snap_free(struct catalog_snap *s)
{
	if (s == NULL)
		return;
	free(s->topics);
	free(s->by_id);
	free(s->blob);
	free(s->config_store);
	free(s->pstate_store);
	free(s->brokers);
	free(s);
}

const struct catalog_topic *catalog_snap_find(const struct catalog_snap *s, const char *name,
					      size_t len)
{
	uint32_t lo = 0, hi = s->topic_count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct catalog_topic *t = &s->topics[mid];
		int cmp = catalog_name_cmp(t->name, t->name_len, name, len);
		if (cmp == 0)
			return t;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct catalog_topic *catalog_snap_find_id(const struct catalog_snap *s,
						 const struct kuuid *id)
{
	uint32_t lo = 0, hi = s->topic_count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct catalog_topic *t = &s->topics[s->by_id[mid]];
		int cmp = catalog_id_cmp(&t->id, id);
		if (cmp == 0)
			return t;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- partition.metadata ---- */

enum sl_err catalog_partition_metadata_write(const char *dir, const struct kuuid *id)
{
	char text[64 + CATALOG_ID_CHARS];
	char sid[CATALOG_ID_CHARS + 1];

	catalog_uuid_format(id, sid);
	int n = snprintf(text, sizeof(text), "version: 0\ntopic_id: %s\n", sid);
	SL_ASSERT(n > 0 && (size_t)n < sizeof(text));
	return catalog_file_replace(dir, CATALOG_PARTITION_METADATA, text, (size_t)n);
}

enum sl_err catalog_partition_metadata_read(const char *dir, struct kuuid *id)
{
	char path[PATH_MAX];
	char *text = NULL;
	size_t len = 0;
	enum sl_err err;
	const char *key = "topic_id: ";

	if (snprintf(path, sizeof(path), "%s/%s", dir, CATALOG_PARTITION_METADATA) >= (int)sizeof(path))
		return SL_EINVAL;
	err = catalog_read_file(path, CATALOG_PMETA_BYTES_MAX, &text, &len);
	if (err != SL_OK)
		return err;
	err = SL_ECORRUPT;
	if (strncmp(text, "version: 0\n", 11) == 0) {
		const char *p = strstr(text, key);
		if (p != NULL) {
			p += strlen(key);
			const char *e = strchr(p, '\n');
			if (e != NULL && catalog_uuid_parse(p, (size_t)(e - p), id) == SL_OK)
				err = SL_OK;
		}
	}
	free(text);
	return err;
}
