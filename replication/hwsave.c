/*
 * hwsave.c — replication-offset-checkpoint upkeep (see hwsave.h).
 */
#include "hwsave.h"

#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "log.h"
#include "partition.h"
#include "repl.h"

#define HWSAVE_SNAP_CAP0 16u
#define HWSAVE_DIRS_MAX 1024

/* One collection round (shard 0). */
struct hwsave_round {
	struct hwsave *hs;
	uint32_t waiting;                /* replies still due */
	bool failed;                     /* write nothing */
	struct hwsave_snap *snaps[];     /* [shard_count] */
};

/* pl slots of the collection message. */
#define HWSAVE_PL_SNAP 0             /* ptr: the snapshot (ownership to shard 0) */
#define HWSAVE_PL_FAILED 1           /* i64: 1 = no usable snapshot */

/* ---- pure helpers ---- */

enum sl_err hwsave_snap_add(struct hwsave_snap **snap, const struct hwsave_entry *e)
{
	struct hwsave_snap *s = *snap;

	if (s == NULL || s->count == s->cap) {
		uint32_t cap = s == NULL ? HWSAVE_SNAP_CAP0 : s->cap * 2;
		if (cap > HWCHECK_ENTRIES_MAX)
			return SL_ENOMEM;
		struct hwsave_snap *n = realloc(s, sizeof(*n) + (size_t)cap * sizeof(n->e[0]));
		if (n == NULL)
			return SL_ENOMEM;
		if (s == NULL)
			n->count = 0;
		n->cap = cap;
		*snap = s = n;
	}
	s->e[s->count++] = *e;
	return SL_OK;
}

enum sl_err hwsave_entry_of(const char *log_dirs, const char *pdir, int32_t index,
			    struct hwsave_entry *out)
{
	char base[PATH_MAX];
	char suffix[16];
	const char *slash = strrchr(pdir, '/');

	if (slash == NULL || index < 0)
		return SL_ENOTFOUND;
	const char *name = slash + 1;
	size_t blen = (size_t)(slash - pdir), nlen = strlen(name);
	int sl = snprintf(suffix, sizeof(suffix), "-%d", index);
	SL_ASSERT(sl > 0 && (size_t)sl < sizeof(suffix));
	if (nlen <= (size_t)sl || strcmp(name + nlen - (size_t)sl, suffix) != 0)
		return SL_ENOTFOUND;
	size_t tlen = nlen - (size_t)sl;
	if (tlen > HWCHECK_TOPIC_BYTES_MAX)
		return SL_EINVAL;
	int n = config_list_count(log_dirs);
	out->dir = -1;
	for (int i = 0; i < n && i < HWSAVE_DIRS_MAX; i++) {
		if (config_list_get(log_dirs, i, base, sizeof(base)) != SL_OK)
			continue;
		if (strlen(base) == blen && memcmp(base, pdir, blen) == 0) {
			out->dir = i;
			break;
		}
	}
	if (out->dir < 0)
		return SL_ENOTFOUND;
	memcpy(out->topic, name, tlen);
	out->topic[tlen] = '\0';
	out->partition = index;
	out->hw = -1;
	return SL_OK;
}

static int hwsave_cmp(const void *a, const void *b)
{
	const struct hwcheck_entry *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	if (c != 0)
		return c;
	return (x->partition > y->partition) - (x->partition < y->partition);
}

/* What one log dir's file will hold: the reported entries (sorted), then
 * the kept ones (topics owned by `kept_names`). */
struct hwsave_dir {
	int dirfd;
	struct hwcheck_entry *v;
	uint32_t count, cap, reported;
	char **kept_names;
	uint32_t kept;
	bool nomem;
};

static bool hwsave_dir_push(struct hwsave_dir *d, const char *topic, int32_t part, int64_t hw)
{
	if (d->count == d->cap) {
		uint32_t cap = d->cap == 0 ? HWSAVE_SNAP_CAP0 : d->cap * 2;
		struct hwcheck_entry *n = cap > HWCHECK_ENTRIES_MAX ? NULL :
			realloc(d->v, (size_t)cap * sizeof(*n));
		if (n == NULL)
			return false;
		d->v = n;
		d->cap = cap;
	}
	d->v[d->count++] = (struct hwcheck_entry){ .topic = topic, .partition = part, .hw = hw };
	return true;
}

/* hwcheck_read callback: keeps an old entry nobody reported whose
 * partition directory still exists. */
static int hwsave_keep_old(void *arg, const char *topic, int32_t partition, int64_t hw)
{
	struct hwsave_dir *d = arg;
	struct hwcheck_entry key = { .topic = topic, .partition = partition };
	char name[HWCHECK_TOPIC_BYTES_MAX + 16];

	if (d->reported > 0 &&
	    bsearch(&key, d->v, d->reported, sizeof(d->v[0]), hwsave_cmp) != NULL)
		return 0;
	snprintf(name, sizeof(name), "%s-%d", topic, (int)partition);
	if (faccessat(d->dirfd, name, F_OK, 0) != 0)
		return 0;
	char *copy = strdup(topic);
	char **names = copy == NULL ? NULL :
		realloc(d->kept_names, (size_t)(d->kept + 1) * sizeof(*names));
	if (names == NULL) {
		free(copy);
		d->nomem = true;
		return 1;
	}
	d->kept_names = names;
	names[d->kept++] = copy;
	if (!hwsave_dir_push(d, copy, partition, hw)) {
		d->nomem = true;
		return 1;
	}
	return 0;
}

/* Writes one log dir's file. */
static enum sl_err hwsave_write_one(const char *dir, int di, struct hwsave_snap *const *snaps,
				    uint32_t n, int shard_id)
{
	struct hwsave_dir d = { .dirfd = -1 };
	enum sl_err err = SL_ENOMEM;

	d.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d.dirfd < 0) {
		LOG_W(shard_id, "%s/%s: cannot open the log dir: %m", dir, HWCHECK_FILE_NAME);
		return SL_EIO;
	}
	for (uint32_t s = 0; s < n; s++) {
		for (uint32_t i = 0; snaps[s] != NULL && i < snaps[s]->count; i++) {
			const struct hwsave_entry *e = &snaps[s]->e[i];
			if (e->dir == di && e->hw >= 0 &&
			    !hwsave_dir_push(&d, e->topic, e->partition, e->hw))
				goto out;
		}
	}
	if (d.count > 0)
		qsort(d.v, d.count, sizeof(d.v[0]), hwsave_cmp);
	d.reported = d.count;
	err = hwcheck_read(d.dirfd, hwsave_keep_old, &d, shard_id);
	if (d.nomem) {
		err = SL_ENOMEM;
		goto out;
	}
	if (err != SL_OK && err != SL_ENOTFOUND && err != SL_ECORRUPT)
		goto out;   /* unreadable: keep the old file rather than lose its entries */
	err = hwcheck_write(d.dirfd, d.v, d.count, shard_id);
out:
	for (uint32_t i = 0; i < d.kept; i++)
		free(d.kept_names[i]);
	free(d.kept_names);
	free(d.v);
	close(d.dirfd);
	if (err != SL_OK)
		LOG_W(shard_id, "%s/%s: not written: %s", dir, HWCHECK_FILE_NAME, sl_err_str(err));
	return err;
}

enum sl_err hwsave_write_dirs(const char *log_dirs, struct hwsave_snap *const *snaps,
			      uint32_t n, int shard_id)
{
	char dir[PATH_MAX];
	enum sl_err first = SL_OK;
	int count = config_list_count(log_dirs);

	for (int i = 0; i < count && i < HWSAVE_DIRS_MAX; i++) {
		enum sl_err err = config_list_get(log_dirs, i, dir, sizeof(dir));
		if (err == SL_OK)
			err = hwsave_write_one(dir, i, snaps, n, shard_id);
		if (err != SL_OK && first == SL_OK)
			first = err;
	}
	return first;
}

struct hwsave_find {
	const struct hwsave_entry *want;
	int64_t hw;
};

static int hwsave_find_cb(void *arg, const char *topic, int32_t partition, int64_t hw)
{
	struct hwsave_find *f = arg;

	if (partition != f->want->partition || strcmp(topic, f->want->topic) != 0)
		return 0;
	f->hw = hw;
	return 1;
}

enum sl_err hwsave_lookup(const char *log_dirs, const char *pdir, int32_t index, int64_t *hw,
			  int shard_id)
{
	struct hwsave_entry e;
	char dir[PATH_MAX];
	enum sl_err err = hwsave_entry_of(log_dirs, pdir, index, &e);

	if (err != SL_OK)
		return SL_ENOTFOUND;
	err = config_list_get(log_dirs, e.dir, dir, sizeof(dir));
	if (err != SL_OK)
		return SL_ENOTFOUND;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return SL_EIO;
	struct hwsave_find f = { .want = &e, .hw = -1 };
	err = hwcheck_read(dfd, hwsave_find_cb, &f, shard_id);
	close(dfd);
	if (err != SL_OK)
		return err;
	if (f.hw < 0)
		return SL_ENOTFOUND;
	*hw = f.hw;
	return SL_OK;
}

/* ---- broker glue ---- */

static void hwsave_add_partition(void *arg, struct partition *p)
{
	struct { struct hwsave_snap *snap; const char *log_dirs; bool nomem; } *c = arg;
	struct hwsave_entry e;
	int64_t hw = partition_hw(p);

	if (c->nomem || hw < 0 || !partition_hw_managed(p) ||
	    hwsave_entry_of(c->log_dirs, partition_dir(p), partition_index(p), &e) != SL_OK)
		return;
	e.hw = hw;
	if (hwsave_snap_add(&c->snap, &e) != SL_OK)
		c->nomem = true;
}

/* This shard's snapshot; *ok false when out of memory. NULL: no entries. */
static struct hwsave_snap *hwsave_snap_of(struct broker_shard *bs, bool *ok)
{
	struct { struct hwsave_snap *snap; const char *log_dirs; bool nomem; } c = {
		.snap = NULL, .log_dirs = bs->b->config->log_dirs, .nomem = false };

	repl_each(bs, hwsave_add_partition, &c);
	*ok = !c.nomem;
	if (c.nomem) {
		free(c.snap);
		return NULL;
	}
	return c.snap;
}

enum sl_err hwsave_create(struct broker *b)
{
	struct hwsave *hs = calloc(1, sizeof(*hs));

	if (hs == NULL)
		return SL_ENOMEM;
	hs->log_dirs = strdup(b->config->log_dirs);
	hs->shard_count = b->shard_count;
	hs->final = calloc(b->shard_count, sizeof(*hs->final));
	if (hs->log_dirs == NULL || hs->final == NULL) {
		free(hs->log_dirs);
		free(hs->final);
		free(hs);
		return SL_ENOMEM;
	}
	hs->interval_ms = b->config->replica_high_watermark_checkpoint_interval_ms;
	if (hs->interval_ms <= 0)
		hs->interval_ms = 5000;
	b->hwsave = hs;
	return SL_OK;
}

void hwsave_finish(struct hwsave *hs)
{
	bool any = false;

	if (hs == NULL)
		return;
	SL_ASSERT(hs->round == NULL);
	for (uint32_t i = 0; i < hs->shard_count; i++)
		any = any || hs->final[i] != NULL;
	if (any && hwsave_write_dirs(hs->log_dirs, hs->final, hs->shard_count, LOG_NO_SHARD) == SL_OK)
		LOG_I(LOG_NO_SHARD, "replication-offset-checkpoint written at shutdown");
	for (uint32_t i = 0; i < hs->shard_count; i++)
		free(hs->final[i]);
	free(hs->final);
	free(hs->log_dirs);
	free(hs);
}

void hwsave_shard_final(struct broker_shard *bs)
{
	struct hwsave *hs = bs->b->hwsave;
	bool ok;

	if (hs == NULL || bs->repl == NULL)
		return;
	SL_ASSERT(bs->sh->id < hs->shard_count && hs->final[bs->sh->id] == NULL);
	hs->final[bs->sh->id] = hwsave_snap_of(bs, &ok);
	if (!ok)
		LOG_W(bs->sh->id, "replication-offset-checkpoint: no memory for the final snapshot");
}

static void hwsave_arm(struct hwsave *hs)
{
	struct shard *sh = hs->bs0->sh;

	if (hs->stopped || timer_armed(&hs->tick))
		return;
	if (timer_add(&sh->timers, &hs->tick, shard_now_ns(sh) + hs->interval_ms * 1000000) != SL_OK)
		LOG_W(0, "replication-offset-checkpoint: timer table full, not written");
}

/* Runs on: shard k. Builds its snapshot for shard 0. */
static enum xmsg_fn_result hwsave_collect_fn(struct shard *sh, struct xmsg *m)
{
	struct broker_shard *bs = broker_shard_of(sh);
	bool ok = true;

	m->pl.ptr[HWSAVE_PL_SNAP] = NULL;
	m->pl.i64[HWSAVE_PL_FAILED] = 1;
	if (bs->stopping)
		return XMSG_REPLY;
	m->pl.ptr[HWSAVE_PL_SNAP] = hwsave_snap_of(bs, &ok);
	m->pl.i64[HWSAVE_PL_FAILED] = ok ? 0 : 1;
	return XMSG_REPLY;
}

static void hwsave_round_end(struct hwsave_round *r)
{
	struct hwsave *hs = r->hs;

	if (!r->failed && !hs->stopped &&
	    hwsave_write_dirs(hs->log_dirs, r->snaps, hs->shard_count, 0) == SL_OK)
		hs->rounds_written++;
	for (uint32_t i = 0; i < hs->shard_count; i++)
		free(r->snaps[i]);
	free(r);
	hs->round = NULL;
	hwsave_arm(hs);
}

/* Runs on: shard 0, with shard k's snapshot (now shard 0's). */
static void hwsave_collected(struct shard *sh, struct xmsg *m)
{
	struct hwsave_round *r = m->ctx;

	(void)sh;
	SL_ASSERT(r->waiting > 0 && m->to < r->hs->shard_count && r->snaps[m->to] == NULL);
	r->snaps[m->to] = m->pl.ptr[HWSAVE_PL_SNAP];
	if (m->pl.i64[HWSAVE_PL_FAILED] != 0)
		r->failed = true;
	if (--r->waiting == 0)
		hwsave_round_end(r);
}

static void hwsave_tick_fire(struct timer *t, void *ctx)
{
	struct hwsave *hs = (struct hwsave *)(void *)((char *)t - offsetof(struct hwsave, tick));
	struct hwsave_round *r;

	(void)ctx;
	if (hs->stopped || hs->round != NULL)
		return;
	r = calloc(1, sizeof(*r) + hs->shard_count * sizeof(r->snaps[0]));
	if (r == NULL) {
		hwsave_arm(hs);
		return;
	}
	r->hs = hs;
	hs->round = r;
	r->waiting = 1;   /* held until every message is out */
	for (uint32_t k = 0; k < hs->shard_count; k++) {
		struct xmsg m = { .type = 0, .fn = hwsave_collect_fn, .done = hwsave_collected,
				  .ctx = r };
		if (broker_send(hs->bs0, k, &m) == SL_OK)
			r->waiting++;
		else
			r->failed = true;
	}
	if (--r->waiting == 0)
		hwsave_round_end(r);
}

void hwsave_shard0_start(struct broker_shard *bs)
{
	struct hwsave *hs = bs->b->hwsave;

	if (hs == NULL)
		return;
	SL_ASSERT(bs->sh->id == 0);
	hs->bs0 = bs;
	timer_init(&hs->tick, hwsave_tick_fire);
	hwsave_arm(hs);
}

void hwsave_shard0_stop(struct broker_shard *bs)
{
	struct hwsave *hs = bs->b->hwsave;

	if (hs == NULL || hs->bs0 == NULL)
		return;
	hs->stopped = true;
	if (timer_armed(&hs->tick))
		timer_cancel(&bs->sh->timers, &hs->tick);
}
