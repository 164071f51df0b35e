/*
 * zk.c — one ZooKeeper session on one shard's io_uring loop (see zk.h for
 * the contract, events, states and invariants).
 *
 * Pieces:
 *   - zk_step: the one place that enters the library for progress:
 *     zookeeper_process, then the expiry / close work that must run outside
 *     the library's callbacks, then zk_arm (interest -> poll + timer).
 *   - zk_call: a fixed pool of ZK_CALLS_MAX slots; a slot is the `data` of
 *     one library request and is released after its completion ran.
 *   - zk_watch: one record per watch; the library's watcherCtx. Linked in
 *     zk->watches from the request until it fires or is lost.
 *   - zk_poll: ZK_POLL_SLOTS one-shot polls; at most one is current, the
 *     others are stale (cancelled, waiting for their CQE).
 *
 * `depth` counts library entries on the stack. Callbacks run only while it
 * is > 0; zk_close then only sets close_pending, and submissions skip
 * their re-arm (the zk_step that is running re-arms at its end).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <zookeeper/zookeeper.h>

#include "log.h"
#include "shard.h"
#include "zk.h"

#define ZK_POLL_SLOTS 4u
#define ZK_RETRY_NS ((int64_t)100 * 1000 * 1000)
#define ZK_PATH_DEPTH_MAX 128u

_Static_assert((int)ZK_ZNONODE == (int)ZNONODE && (int)ZK_ZBADVERSION == (int)ZBADVERSION &&
	       (int)ZK_ZNODEEXISTS == (int)ZNODEEXISTS && (int)ZK_ZCONNECTIONLOSS == (int)ZCONNECTIONLOSS &&
	       (int)ZK_ZSESSIONEXPIRED == (int)ZSESSIONEXPIRED && (int)ZK_ZCLOSING == (int)ZCLOSING &&
	       (int)ZK_ZNOTEMPTY == (int)ZNOTEMPTY && (int)ZK_ZOPERATIONTIMEOUT == (int)ZOPERATIONTIMEOUT &&
	       (int)ZK_ZBADARGUMENTS == (int)ZBADARGUMENTS && (int)ZK_ZINVALIDSTATE == (int)ZINVALIDSTATE &&
	       (int)ZK_ZSESSIONMOVED == (int)ZSESSIONMOVED && (int)ZK_ZNOTHING == (int)ZNOTHING &&
	       (int)ZK_ZRUNTIMEINCONSISTENCY == (int)ZRUNTIMEINCONSISTENCY &&
	       (int)ZK_ZNOCHILDRENFOREPHEMERALS == (int)ZNOCHILDRENFOREPHEMERALS &&
	       (int)ZK_ZNOAUTH == (int)ZNOAUTH && (int)ZK_ZAPIERROR == (int)ZAPIERROR &&
	       (int)ZK_ZSYSTEMERROR == (int)ZSYSTEMERROR, "zk_code mirrors ZOO_ERRORS");

enum zk_kind { ZK_K_CREATE = 1, ZK_K_GET, ZK_K_SET, ZK_K_DELETE, ZK_K_EXISTS,
	       ZK_K_CHILDREN, ZK_K_MULTI, ZK_K_SYNC };

struct zk_watch {
	struct zk *zk;
	zk_watch_fn *fn;
	void *arg;
	struct zk_watch *prev, *next;
	struct zk_call *call;    /* the request setting it, until it completes */
	uint32_t gen;            /* handle generation it was set on */
};

struct zk_call {
	struct zk *zk;
	zk_done_fn *done;
	void *arg;
	struct zk_watch *watch;  /* requested watch, or NULL */
	enum zk_kind kind;
	uint32_t gen;
	bool live;
	struct zk_call *next_free;
	void *multi;             /* zk_multi's buffers (one block) */
	uint32_t multi_count;
};

struct zk_poll {
	struct ring_op op;
	struct zk *zk;
	bool busy;               /* SQE submitted, CQE not yet seen */
	bool stale;              /* cancelled: ignore its result */
};

struct zk {
	struct shard *sh;
	zhandle_t *zh;           /* NULL only while closing or a re-open failed */
	char *connect;
	int timeout_ms;
	zk_event_fn *on_event;
	void *arg;
	uint32_t gen;            /* +1 per handle */
	int64_t session_id;      /* last session seen connected */
	char passwd[16];
	bool connected;
	bool closing;
	bool close_pending;
	bool expired_pending;
	uint32_t depth;
	struct timer timer;
	struct zk_poll polls[ZK_POLL_SLOTS];
	uint32_t poll_inflight;
	struct zk_poll *poll_cur;
	struct zk_call *calls;   /* [ZK_CALLS_MAX] */
	struct zk_call *free_calls;
	uint32_t call_count;
	struct zk_watch *watches;
	uint32_t watch_count;
};

/* What zk_step does before re-arming. */
enum zk_step_mode {
	ZK_STEP_ARM = 0,         /* re-arm only (a request was queued) */
	ZK_STEP_PROCESS,         /* zookeeper_process(events) first */
};

static void zk_step(struct zk *zk, int events, enum zk_step_mode mode);

const char *zk_event_str(enum zk_event_type type)
{
	switch (type) {
	case ZK_EVENT_SESSION_NEW: return "session_new";
	case ZK_EVENT_CONNECTED: return "connected";
	case ZK_EVENT_DISCONNECTED: return "disconnected";
	case ZK_EVENT_EXPIRED: return "expired";
	}
	return "?";
}

/* Maps a library code to enum sl_err (table in zk.h, struct zk_result). */
static enum sl_err zk_err_map(int zrc)
{
	switch (zrc) {
	case ZOK: return SL_OK;
	case ZNONODE: return SL_ENOTFOUND;
	case ZNODEEXISTS: case ZNOTEMPTY: return SL_EEXIST;
	case ZBADVERSION: return SL_ERANGE;
	case ZCONNECTIONLOSS: case ZOPERATIONTIMEOUT: case ZSESSIONEXPIRED:
	case ZSESSIONMOVED: case ZINVALIDSTATE: return SL_EAGAIN;
	case ZCLOSING: return SL_ECLOSED;
	case ZBADARGUMENTS: case ZNOCHILDRENFOREPHEMERALS: case ZINVALIDACL:
		return SL_EINVAL;
	default: return SL_EIO;
	}
}

/* The library's log lines: routed to our log at debug level. */
static void zk_log_cb(const char *message)
{
	LOG_D(LOG_NO_SHARD, "zookeeper: %s", message);
}

static bool zk_path_ok(const char *path)
{
	if (path == NULL || path[0] != '/')
		return false;
	return strnlen(path, ZK_PATH_MAX) < ZK_PATH_MAX;
}

static void zk_stat_copy(struct zk_stat *out, const struct Stat *st)
{
	out->czxid = st->czxid;
	out->mzxid = st->mzxid;
	out->ephemeral_owner = st->ephemeralOwner;
	out->version = st->version;
	out->cversion = st->cversion;
	out->child_count = st->numChildren;
	out->data_len = st->dataLength;
}

/* ---- watches ---- */

static void zk_watch_unlink(struct zk *zk, struct zk_watch *w)
{
	SL_ASSERT(zk->watch_count > 0);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		zk->watches = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	zk->watch_count--;
}

/* Library watcher of one path watch. Session events are ignored here (the
 * owner sees them through on_event); a node event fires the watch once. */
static void zk_watch_fire(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk_watch *w = ctx;
	struct zk *zk = w->zk;
	struct zk_watch_event ev = { .type = ZK_WATCH_LOST, .path = path };

	(void)zh;
	(void)state;
	if (type == ZOO_SESSION_EVENT)
		return;
	if (type == ZOO_CREATED_EVENT)
		ev.type = ZK_WATCH_CREATED;
	else if (type == ZOO_DELETED_EVENT)
		ev.type = ZK_WATCH_DELETED;
	else if (type == ZOO_CHANGED_EVENT)
		ev.type = ZK_WATCH_CHANGED;
	else if (type == ZOO_CHILD_EVENT)
		ev.type = ZK_WATCH_CHILD;
	/* Not expected (the answer precedes the event), but never leave the
	 * request pointing at a freed record. */
	if (w->call != NULL)
		w->call->watch = NULL;
	zk_watch_unlink(zk, w);
	w->fn(zk, &ev, w->arg);
	free(w);
}

/* Fires ZK_WATCH_LOST on every watch set on a generation other than
 * `keep_gen` (UINT32_MAX: all), then frees them. */
static void zk_watches_lose(struct zk *zk, uint32_t keep_gen)
{
	struct zk_watch_event ev = { .type = ZK_WATCH_LOST, .path = NULL };
	uint32_t n = zk->watch_count + 1;

	for (struct zk_watch *w = zk->watches, *next; w != NULL && n > 0; w = next, n--) {
		next = w->next;
		if (w->gen == keep_gen)
			continue;
		if (w->call != NULL)
			w->call->watch = NULL;
		zk_watch_unlink(zk, w);
		w->fn(zk, &ev, w->arg);
		free(w);
	}
	/* A callback may add watches on the current generation only. */
	SL_ASSERT(keep_gen != UINT32_MAX || zk->watch_count == 0);
}

/* ---- calls ---- */

static struct zk_call *zk_call_get(struct zk *zk, enum zk_kind kind, zk_done_fn *done,
				   void *arg, zk_watch_fn *wfn, void *warg, enum sl_err *err)
{
	struct zk_call *c;

	*err = SL_OK;
	if (zk->closing) {
		*err = SL_ECLOSED;
		return NULL;
	}
	if (zk->zh == NULL || zk->free_calls == NULL ||
	    (wfn != NULL && zk->watch_count >= ZK_WATCHES_MAX)) {
		*err = SL_EAGAIN;
		return NULL;
	}
	c = zk->free_calls;
	SL_ASSERT(!c->live);
	c->watch = NULL;
	if (wfn != NULL) {
		c->watch = calloc(1, sizeof(*c->watch));
		if (c->watch == NULL) {
			*err = SL_ENOMEM;
			return NULL;
		}
		c->watch->zk = zk;
		c->watch->fn = wfn;
		c->watch->arg = warg;
		c->watch->gen = zk->gen;
		c->watch->call = c;
		c->watch->next = zk->watches;
		if (zk->watches != NULL)
			zk->watches->prev = c->watch;
		zk->watches = c->watch;
		zk->watch_count++;
	}
	zk->free_calls = c->next_free;
	c->next_free = NULL;
	c->zk = zk;
	c->done = done;
	c->arg = arg;
	c->kind = kind;
	c->gen = zk->gen;
	c->live = true;
	c->multi = NULL;
	c->multi_count = 0;
	zk->call_count++;
	SL_ASSERT(zk->call_count <= ZK_CALLS_MAX);
	return c;
}

/* Returns a slot to the pool; drops a watch the library did not take. */
static void zk_call_put(struct zk_call *c, bool watch_kept)
{
	struct zk *zk = c->zk;

	SL_ASSERT(c->live && zk->call_count > 0);
	if (c->watch != NULL && watch_kept) {
		c->watch->call = NULL;
	} else if (c->watch != NULL) {
		zk_watch_unlink(zk, c->watch);
		free(c->watch);
	}
	free(c->multi);
	c->watch = NULL;
	c->multi = NULL;
	c->live = false;
	c->next_free = zk->free_calls;
	zk->free_calls = c;
	zk->call_count--;
}

/* Whether the library registered the call's watch for this answer. */
static bool zk_watch_taken(const struct zk_call *c, int zrc)
{
	if (c->watch == NULL)
		return false;
	return zrc == ZOK || (c->kind == ZK_K_EXISTS && zrc == ZNONODE);
}

/* Runs the owner's completion once, then releases the slot. */
static void zk_call_finish(struct zk_call *c, int zrc, struct zk_result *res)
{
	struct zk *zk = c->zk;

	SL_ASSERT(c->live);
	/* A request of an expired handle is closed by zk_session_replace:
	 * tell the owner the session expired, not that zk closes. */
	if (c->gen != zk->gen && zrc == ZCLOSING && !zk->closing)
		zrc = ZSESSIONEXPIRED;
	res->zrc = zrc;
	res->err = zk_err_map(zrc);
	bool kept = zk_watch_taken(c, zrc);
	zk_done_fn *done = c->done;
	void *arg = c->arg;
	/* The slot stays live during the callback (multi buffers). */
	done(zk, res, arg);
	zk_call_put(c, kept);
}

static void zk_string_done(int rc, const char *value, const void *data)
{
	struct zk_call *c = (struct zk_call *)data;
	struct zk_result res = { .path = rc == ZOK ? value : NULL };

	zk_call_finish(c, rc, &res);
}

static void zk_data_done(int rc, const char *value, int value_len, const struct Stat *stat,
			 const void *data)
{
	struct zk_call *c = (struct zk_call *)data;
	struct zk_result res = { 0 };

	if (rc == ZOK && stat != NULL) {
		res.data = value_len >= 0 ? value : NULL;
		res.data_len = value_len >= 0 ? (uint32_t)value_len : 0;
		zk_stat_copy(&res.stat, stat);
		res.stat_valid = true;
	}
	zk_call_finish(c, rc, &res);
}

static void zk_stat_done(int rc, const struct Stat *stat, const void *data)
{
	struct zk_call *c = (struct zk_call *)data;
	struct zk_result res = { 0 };

	if (rc == ZOK && stat != NULL) {
		zk_stat_copy(&res.stat, stat);
		res.stat_valid = true;
	}
	zk_call_finish(c, rc, &res);
}

static void zk_children_done(int rc, const struct String_vector *v, const struct Stat *stat,
			     const void *data)
{
	struct zk_call *c = (struct zk_call *)data;
	struct zk_result res = { 0 };

	if (rc == ZOK && v != NULL && v->count >= 0) {
		res.children = (const char *const *)v->data;
		res.child_count = SL_MIN((uint32_t)v->count, ZK_CHILDREN_MAX);
	}
	if (rc == ZOK && stat != NULL) {
		zk_stat_copy(&res.stat, stat);
		res.stat_valid = true;
	}
	zk_call_finish(c, rc, &res);
}

/* Layout of zk_multi's block: library ops results, stats, our results,
 * then ZK_PATH_MAX bytes of created path per op. */
struct zk_multi_buf {
	zoo_op_result_t *zres;
	struct Stat *stats;
	struct zk_op_result *res;
	char *paths;
};

static void zk_multi_layout(struct zk_multi_buf *b, void *block, uint32_t n)
{
	b->zres = block;
	b->stats = (struct Stat *)(b->zres + n);
	b->res = (struct zk_op_result *)(b->stats + n);
	b->paths = (char *)(b->res + n);
}

static void zk_void_done(int rc, const void *data)
{
	struct zk_call *c = (struct zk_call *)data;
	struct zk_result res = { 0 };
	struct zk_multi_buf b;

	if (c->kind == ZK_K_MULTI) {
		zk_multi_layout(&b, c->multi, c->multi_count);
		/* A session-level failure (no answer at all) is reported on each
		 * op; otherwise each op carries the server's own code. */
		bool answered = rc == ZOK || rc <= ZAPIERROR;
		for (uint32_t i = 0; i < c->multi_count; i++) {
			int orc = answered ? b.zres[i].err : rc;
			b.res[i].zrc = orc;
			b.res[i].err = zk_err_map(orc);
			b.res[i].path = orc == ZOK ? b.zres[i].value : NULL;
			b.res[i].version = orc == ZOK ? b.stats[i].version : -1;
		}
		res.ops = b.res;
		res.op_count = c->multi_count;
	}
	zk_call_finish(c, rc, &res);
}

/* Completes every live call of a generation other than `keep_gen`
 * (UINT32_MAX: all) with `zrc`: those the library never answered. */
static void zk_calls_fail(struct zk *zk, uint32_t keep_gen, int zrc)
{
	for (uint32_t i = 0; i < ZK_CALLS_MAX; i++) {
		struct zk_call *c = &zk->calls[i];
		if (!c->live || c->gen == keep_gen)
			continue;
		struct zk_result res = { 0 };
		if (c->kind == ZK_K_MULTI) {
			zk_void_done(zrc, c);
			continue;
		}
		zk_call_finish(c, zrc, &res);
	}
}

/* ---- session ---- */

static void zk_emit(struct zk *zk, enum zk_event_type type, int64_t session_id)
{
	struct zk_event ev = { .type = type, .session_id = session_id };

	LOG_I((int)zk->sh->id, "zookeeper session 0x%llx %s", (unsigned long long)session_id,
	      zk_event_str(type));
	zk->on_event(zk, &ev, zk->arg);
}

/* The handle's own watcher: session state changes only. */
static void zk_session_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	struct zk *zk = ctx;

	(void)path;
	if (zh != zk->zh || type != ZOO_SESSION_EVENT)
		return;
	if (state == ZOO_CONNECTED_STATE) {
		const clientid_t *cid = zoo_client_id(zh);
		bool fresh = cid->client_id != zk->session_id;
		zk->session_id = cid->client_id;
		memcpy(zk->passwd, cid->passwd, sizeof(zk->passwd));
		zk->connected = true;
		zk_emit(zk, fresh ? ZK_EVENT_SESSION_NEW : ZK_EVENT_CONNECTED, zk->session_id);
	} else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
		zk->connected = false;
		zk->expired_pending = true;
	} else if (zk->connected) {
		zk->connected = false;
		zk_emit(zk, ZK_EVENT_DISCONNECTED, zk->session_id);
	}
}

static zhandle_t *zk_handle_new(struct zk *zk)
{
	zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
	return zookeeper_init2(zk->connect, zk_session_watch, zk->timeout_ms, NULL, zk, 0,
			       zk_log_cb);
}

/*
 * Replaces an expired handle: opens the next one (a new session), closes the
 * old one (its requests complete with ZSESSIONEXPIRED, its watches are
 * lost), then tells the owner. Runs with depth > 0.
 */
static void zk_session_replace(struct zk *zk)
{
	zhandle_t *old = zk->zh;
	uint32_t gen;

	SL_ASSERT(zk->depth > 0 && !zk->closing);
	zk->expired_pending = false;
	zk->connected = false;
	zk->zh = zk_handle_new(zk);
	if (zk->zh == NULL)
		LOG_W((int)zk->sh->id, "zookeeper: cannot open a new session; retrying");
	zk->gen++;
	gen = zk->gen;
	if (old != NULL)
		zookeeper_close(old);
	zk_calls_fail(zk, gen, ZSESSIONEXPIRED);
	zk_watches_lose(zk, gen);
	zk_emit(zk, ZK_EVENT_EXPIRED, zk->session_id);
}

/* ---- driving ---- */

static void zk_poll_cancel(struct zk *zk, struct zk_poll *p)
{
	struct io_uring_sqe *sqe;

	if (!p->busy || p->stale)
		return;
	p->stale = true;
	sqe = ring_get_sqe(&zk->sh->ring);
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&p->op, 0);
	io_uring_sqe_set_data64(sqe, RING_UDATA_NONE);
}

static void zk_free(struct zk *zk)
{
	SL_ASSERT(zk->poll_inflight == 0 && zk->call_count == 0 && zk->watch_count == 0);
	free(zk->calls);
	free(zk->connect);
	free(zk);
}

static void zk_poll_done(struct ring_op *op, int res, uint32_t cqe_flags)
{
	struct zk_poll *p = (struct zk_poll *)op;
	struct zk *zk = p->zk;
	int events = 0;

	(void)cqe_flags;
	SL_ASSERT(p->busy && zk->poll_inflight > 0);
	p->busy = false;
	zk->poll_inflight--;
	if (zk->poll_cur == p)
		zk->poll_cur = NULL;
	if (zk->closing) {
		if (zk->poll_inflight == 0 && zk->depth == 0)
			zk_free(zk);
		return;
	}
	if (p->stale)
		return;
	if (res > 0) {
		if (res & (POLLIN | POLLHUP | POLLERR))
			events |= ZOOKEEPER_READ;
		if (res & (POLLOUT | POLLERR))
			events |= ZOOKEEPER_WRITE;
	}
	zk_step(zk, events, ZK_STEP_PROCESS);
}

static void zk_timer_fire(struct timer *t, void *ctx)
{
	struct zk *zk = (struct zk *)((char *)t - offsetof(struct zk, timer));

	(void)ctx;
	zk_step(zk, 0, ZK_STEP_PROCESS);
}

static void zk_timer_set(struct zk *zk, int64_t delay_ns)
{
	enum sl_err err = timer_rearm(&zk->sh->timers, &zk->timer,
				      shard_now_ns(zk->sh) + delay_ns);
	/* Without a timer only the poll drives zk: log, never crash. */
	if (err != SL_OK)
		LOG_W((int)zk->sh->id, "zookeeper: timer set full (%s)", sl_err_str(err));
}

/* Asks the library what it waits for; arms a fresh poll and the timer. */
static void zk_arm(struct zk *zk)
{
	struct timeval tv = { 0, 0 };
	int fd = -1, interest = 0, rc;
	struct zk_poll *p = NULL;

	SL_ASSERT(!zk->closing);
	if (zk->poll_cur != NULL)
		zk_poll_cancel(zk, zk->poll_cur);
	zk->poll_cur = NULL;
	if (zk->zh == NULL) {
		zk->zh = zk_handle_new(zk);
		if (zk->zh == NULL) {
			zk_timer_set(zk, ZK_RETRY_NS);
			return;
		}
	}
	rc = zookeeper_interest(zk->zh, &fd, &interest, &tv);
	if (rc == ZINVALIDSTATE) {
		zk->expired_pending = true;
		zk_timer_set(zk, 0);
		return;
	}
	int64_t delay_ns = (int64_t)tv.tv_sec * 1000000000 + (int64_t)tv.tv_usec * 1000;
	/* Other errors queued completions (connection loss): deliver soon. */
	if (rc != ZOK && rc != ZNOTHING)
		delay_ns = 0;
	for (uint32_t i = 0; i < ZK_POLL_SLOTS && fd >= 0 && interest != 0; i++) {
		if (!zk->polls[i].busy) {
			p = &zk->polls[i];
			break;
		}
	}
	if (p != NULL) {
		unsigned mask = 0;
		struct io_uring_sqe *sqe = ring_get_sqe(&zk->sh->ring);
		if (interest & ZOOKEEPER_READ)
			mask |= POLLIN;
		if (interest & ZOOKEEPER_WRITE)
			mask |= POLLOUT;
		io_uring_prep_poll_add(sqe, fd, mask);
		ring_sqe_set_op(&zk->sh->ring, sqe, &p->op);
		p->busy = true;
		p->stale = false;
		zk->poll_inflight++;
		zk->poll_cur = p;
	} else if (fd >= 0 && interest != 0) {
		/* Every slot waits for its cancel: poll by timer meanwhile. */
		delay_ns = SL_MIN(delay_ns, (int64_t)1000000);
	}
	zk_timer_set(zk, SL_MAX(delay_ns, (int64_t)0));
}

static void zk_close_now(struct zk *zk);

/* Invariants 3 and the pools' bookkeeping (O(ZK_CALLS_MAX)); debug. */
static bool zk_check(const struct zk *zk)
{
	uint32_t live = 0, busy = 0, watches = 0;

	for (uint32_t i = 0; i < ZK_CALLS_MAX; i++)
		live += zk->calls[i].live;
	for (uint32_t i = 0; i < ZK_POLL_SLOTS; i++)
		busy += zk->polls[i].busy;
	for (const struct zk_watch *w = zk->watches; w != NULL && watches <= ZK_WATCHES_MAX;
	     w = w->next)
		watches++;
	return live == zk->call_count && live <= ZK_CALLS_MAX && busy == zk->poll_inflight &&
	       watches == zk->watch_count && watches <= ZK_WATCHES_MAX &&
	       (zk->poll_cur == NULL || (zk->poll_cur->busy && !zk->poll_cur->stale));
}

/*
 * One step: zookeeper_process(events) (ZK_STEP_PROCESS), replace an expired
 * handle, re-arm, then run a close requested from a callback. Runs on: owner.
 */
static void zk_step(struct zk *zk, int events, enum zk_step_mode mode)
{
	SL_ASSERT(!zk->closing);
	zk->depth++;
	if (mode == ZK_STEP_PROCESS && zk->zh != NULL)
		(void)zookeeper_process(zk->zh, events);
	if (zk->expired_pending && !zk->close_pending)
		zk_session_replace(zk);
	if (!zk->close_pending)
		zk_arm(zk);
	SL_DEBUG_ASSERT(zk_check(zk));
	zk->depth--;
	if (zk->depth == 0 && zk->close_pending)
		zk_close_now(zk);
}

/* After a request was queued: outside a step, re-arm so it gets sent. */
static void zk_kick(struct zk *zk)
{
	if (zk->depth == 0)
		zk_step(zk, 0, ZK_STEP_ARM);
}

/*
 * Closes now (depth 0). depth is raised for the whole function: a CQE
 * dispatched while getting an SQE (full SQ) must not free zk under us.
 */
static void zk_close_now(struct zk *zk)
{
	SL_ASSERT(zk->depth == 0);
	zk->depth++;
	zk->closing = true;
	zk->close_pending = false;
	timer_cancel(&zk->sh->timers, &zk->timer);
	for (uint32_t i = 0; i < ZK_POLL_SLOTS; i++)
		zk_poll_cancel(zk, &zk->polls[i]);
	zk->poll_cur = NULL;
	if (zk->zh != NULL) {
		zhandle_t *zh = zk->zh;
		zk->zh = NULL;
		zookeeper_close(zh);
	}
	zk_calls_fail(zk, UINT32_MAX, ZCLOSING);
	zk_watches_lose(zk, UINT32_MAX);
	zk->depth--;
	SL_ASSERT(zk->call_count == 0);
	LOG_I((int)zk->sh->id, "zookeeper session 0x%llx closed",
	      (unsigned long long)zk->session_id);
	if (zk->poll_inflight == 0)
		zk_free(zk);
	else
		ring_submit(&zk->sh->ring);
}

/* ---- public ---- */

enum sl_err zk_open(struct zk **out, struct shard *sh, const char *connect,
		    int session_timeout_ms, zk_event_fn *on_event, void *arg)
{
	struct zk *zk = NULL;
	enum sl_err err = SL_ENOMEM;

	SL_ASSERT(out != NULL && sh != NULL);
	*out = NULL;
	if (connect == NULL || connect[0] == '\0' || on_event == NULL || session_timeout_ms <= 0)
		return SL_EINVAL;
	zk = calloc(1, sizeof(*zk));
	if (zk == NULL)
		goto fail;
	zk->sh = sh;
	zk->timeout_ms = session_timeout_ms;
	zk->on_event = on_event;
	zk->arg = arg;
	zk->connect = strdup(connect);
	zk->calls = calloc(ZK_CALLS_MAX, sizeof(*zk->calls));
	if (zk->connect == NULL || zk->calls == NULL)
		goto fail;
	for (uint32_t i = ZK_CALLS_MAX; i-- > 0;) {
		zk->calls[i].zk = zk;
		zk->calls[i].next_free = zk->free_calls;
		zk->free_calls = &zk->calls[i];
	}
	for (uint32_t i = 0; i < ZK_POLL_SLOTS; i++) {
		zk->polls[i].op.done = zk_poll_done;
		zk->polls[i].zk = zk;
	}
	timer_init(&zk->timer, zk_timer_fire);
	zk->zh = zk_handle_new(zk);
	if (zk->zh == NULL) {
		err = SL_EIO;
		LOG_E((int)sh->id, "zookeeper: cannot start a session to '%s'", connect);
		goto fail;
	}
	zk_step(zk, 0, ZK_STEP_ARM);
	*out = zk;
	return SL_OK;
fail:
	if (zk != NULL) {
		free(zk->calls);
		free(zk->connect);
		free(zk);
	}
	return err;
}

void zk_close(struct zk *zk)
{
	if (zk == NULL || zk->closing)
		return;
	if (zk->depth > 0) {
		zk->close_pending = true;
		return;
	}
	zk_close_now(zk);
}

/* Common tail of every request: a library refusal releases the slot. */
static enum sl_err zk_submitted(struct zk *zk, struct zk_call *c, int rc)
{
	if (rc != ZOK) {
		LOG_W((int)zk->sh->id, "zookeeper: request refused (%s)", zerror(rc));
		zk_call_put(c, false);
		return rc == ZINVALIDSTATE || rc == ZCONNECTIONLOSS ? SL_EAGAIN
			: rc == ZBADARGUMENTS ? SL_EINVAL : SL_EIO;
	}
	zk_kick(zk);
	return SL_OK;
}

enum sl_err zk_create(struct zk *zk, const char *path, const void *data, uint32_t data_len,
		      unsigned flags, zk_done_fn *done, void *arg)
{
	struct zk_call *c;
	enum sl_err err;
	int zflags = 0;

	SL_ASSERT(zk != NULL && done != NULL);
	if (!zk_path_ok(path) || data_len > ZK_DATA_MAX || (data == NULL && data_len > 0) ||
	    (flags & ~(unsigned)(ZK_EPHEMERAL | ZK_SEQUENCE)) != 0)
		return SL_EINVAL;
	c = zk_call_get(zk, ZK_K_CREATE, done, arg, NULL, NULL, &err);
	if (c == NULL)
		return err;
	if (flags & ZK_EPHEMERAL)
		zflags |= ZOO_EPHEMERAL;
	if (flags & ZK_SEQUENCE)
		zflags |= ZOO_SEQUENCE;
	return zk_submitted(zk, c, zoo_acreate(zk->zh, path, data,
					       data == NULL ? -1 : (int)data_len,
					       &ZOO_OPEN_ACL_UNSAFE, zflags, zk_string_done, c));
}

static void zk_watch_arg(struct zk_call *c, watcher_fn *fn, void **ctx)
{
	*fn = c->watch != NULL ? zk_watch_fire : NULL;
	*ctx = c->watch;
}

enum sl_err zk_get(struct zk *zk, const char *path, zk_watch_fn *watch, void *watch_arg,
		   zk_done_fn *done, void *arg)
{
	struct zk_call *c;
	enum sl_err err;
	watcher_fn wfn;
	void *wctx;

	SL_ASSERT(zk != NULL && done != NULL);
	if (!zk_path_ok(path))
		return SL_EINVAL;
	c = zk_call_get(zk, ZK_K_GET, done, arg, watch, watch_arg, &err);
	if (c == NULL)
		return err;
	zk_watch_arg(c, &wfn, &wctx);
	return zk_submitted(zk, c, zoo_awget(zk->zh, path, wfn, wctx, zk_data_done, c));
}

enum sl_err zk_set(struct zk *zk, const char *path, const void *data, uint32_t data_len,
		   int32_t version, zk_done_fn *done, void *arg)
{
	struct zk_call *c;
	enum sl_err err;

	SL_ASSERT(zk != NULL && done != NULL);
	if (!zk_path_ok(path) || data_len > ZK_DATA_MAX || (data == NULL && data_len > 0) ||
	    version < -1)
		return SL_EINVAL;
	c = zk_call_get(zk, ZK_K_SET, done, arg, NULL, NULL, &err);
	if (c == NULL)
		return err;
	return zk_submitted(zk, c, zoo_aset(zk->zh, path, data, data == NULL ? -1 : (int)data_len,
					    version, zk_stat_done, c));
}

enum sl_err zk_delete(struct zk *zk, const char *path, int32_t version,
		      zk_done_fn *done, void *arg)
{
	struct zk_call *c;
	enum sl_err err;

	SL_ASSERT(zk != NULL && done != NULL);
	if (!zk_path_ok(path) || version < -1)
		return SL_EINVAL;
	c = zk_call_get(zk, ZK_K_DELETE, done, arg, NULL, NULL, &err);
	if (c == NULL)
		return err;
	return zk_submitted(zk, c, zoo_adelete(zk->zh, path, version, zk_void_done, c));
}

enum sl_err zk_exists(struct zk *zk, const char *path, zk_watch_fn *watch, void *watch_arg,
		      zk_done_fn *done, void *arg)
{
	struct zk_call *c;
	enum sl_err err;
	watcher_fn wfn;
	void *wctx;

	SL_ASSERT(zk != NULL && done != NULL);
	if (!zk_path_ok(path))
		return SL_EINVAL;
	c = zk_call_get(zk, ZK_K_EXISTS, done, arg, watch, watch_arg, &err);
	if (c == NULL)
		return err;
	zk_watch_arg(c, &wfn, &wctx);
	return zk_submitted(zk, c, zoo_awexists(zk->zh, path, wfn, wctx, zk_stat_done, c));
}

enum sl_err zk_get_children(struct zk *zk, const char *path, zk_watch_fn *watch,
			    void *watch_arg, zk_done_fn *done, void *arg)
{
	struct zk_call *c;
	enum sl_err err;
	watcher_fn wfn;
	void *wctx;

	SL_ASSERT(zk != NULL && done != NULL);
	if (!zk_path_ok(path))
		return SL_EINVAL;
	c = zk_call_get(zk, ZK_K_CHILDREN, done, arg, watch, watch_arg, &err);
	if (c == NULL)
		return err;
	zk_watch_arg(c, &wfn, &wctx);
	return zk_submitted(zk, c, zoo_awget_children2(zk->zh, path, wfn, wctx,
						       zk_children_done, c));
}

enum sl_err zk_sync(struct zk *zk, const char *path, zk_done_fn *done, void *arg)
{
	struct zk_call *c;
	enum sl_err err;

	SL_ASSERT(zk != NULL && done != NULL);
	if (!zk_path_ok(path))
		return SL_EINVAL;
	c = zk_call_get(zk, ZK_K_SYNC, done, arg, NULL, NULL, &err);
	if (c == NULL)
		return err;
	return zk_submitted(zk, c, zoo_async(zk->zh, path, zk_string_done, c));
}

static bool zk_op_ok(const struct zk_op *op)
{
	if (!zk_path_ok(op->path) || op->data_len > ZK_DATA_MAX ||
	    (op->data == NULL && op->data_len > 0) || op->version < -1)
		return false;
	if (op->type == ZK_OP_CREATE)
		return (op->flags & ~(unsigned)(ZK_EPHEMERAL | ZK_SEQUENCE)) == 0;
	return op->type == ZK_OP_DELETE || op->type == ZK_OP_SET || op->type == ZK_OP_CHECK;
}

enum sl_err zk_multi(struct zk *zk, const struct zk_op *ops, uint32_t op_count,
		     zk_done_fn *done, void *arg)
{
	zoo_op_t zops[ZK_MULTI_OPS_MAX];
	struct zk_multi_buf b;
	struct zk_call *c;
	enum sl_err err;
	size_t bytes;

	SL_ASSERT(zk != NULL && done != NULL);
	if (ops == NULL || op_count == 0 || op_count > ZK_MULTI_OPS_MAX)
		return SL_EINVAL;
	for (uint32_t i = 0; i < op_count; i++)
		if (!zk_op_ok(&ops[i]))
			return SL_EINVAL;
	c = zk_call_get(zk, ZK_K_MULTI, done, arg, NULL, NULL, &err);
	if (c == NULL)
		return err;
	bytes = (size_t)op_count * (sizeof(zoo_op_result_t) + sizeof(struct Stat) +
				    sizeof(struct zk_op_result) + ZK_PATH_MAX);
	c->multi = calloc(1, bytes);
	if (c->multi == NULL) {
		zk_call_put(c, false);
		return SL_ENOMEM;
	}
	c->multi_count = op_count;
	zk_multi_layout(&b, c->multi, op_count);
	for (uint32_t i = 0; i < op_count; i++) {
		const struct zk_op *op = &ops[i];
		int dlen = op->data == NULL ? -1 : (int)op->data_len;
		int zflags = ((op->flags & ZK_EPHEMERAL) ? ZOO_EPHEMERAL : 0) |
			     ((op->flags & ZK_SEQUENCE) ? ZOO_SEQUENCE : 0);
		if (op->type == ZK_OP_CREATE)
			zoo_create_op_init(&zops[i], op->path, op->data, dlen, &ZOO_OPEN_ACL_UNSAFE,
					   zflags, b.paths + (size_t)i * ZK_PATH_MAX, ZK_PATH_MAX);
		else if (op->type == ZK_OP_DELETE)
			zoo_delete_op_init(&zops[i], op->path, op->version);
		else if (op->type == ZK_OP_SET)
			zoo_set_op_init(&zops[i], op->path, op->data, dlen, op->version,
					&b.stats[i]);
		else
			zoo_check_op_init(&zops[i], op->path, op->version);
	}
	return zk_submitted(zk, c, zoo_amulti(zk->zh, (int)op_count, zops, b.zres,
					      zk_void_done, c));
}

/* zk_create_parents: one context for all the ancestor creates. */
struct zk_parents {
	zk_done_fn *done;
	void *arg;
	uint32_t left;
	int zrc;                 /* first error other than ZNODEEXISTS */
};

static void zk_parents_one_done(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct zk_parents *pp = arg;

	SL_ASSERT(pp->left > 0);
	if (res->zrc != ZOK && res->zrc != ZNODEEXISTS && pp->zrc == ZOK)
		pp->zrc = res->zrc;
	if (--pp->left > 0)
		return;
	struct zk_result out = { .zrc = pp->zrc, .err = zk_err_map(pp->zrc) };
	zk_done_fn *done = pp->done;
	void *darg = pp->arg;
	free(pp);
	done(zk, &out, darg);
}

static void zk_parents_root_done(struct zk *zk, const struct zk_result *res, void *arg)
{
	struct zk_result ok = *res;

	/* "/" always exists: only a session failure is worth reporting. */
	if (res->zrc == ZNONODE) {
		ok.zrc = ZOK;
		ok.err = SL_OK;
	}
	zk_parents_one_done(zk, &ok, arg);
}

enum sl_err zk_create_parents(struct zk *zk, const char *path, zk_done_fn *done, void *arg)
{
	char prefix[ZK_PATH_MAX];
	struct zk_parents *pp;
	uint32_t need = 0, sent = 0;
	size_t len;
	enum sl_err err = SL_OK;

	SL_ASSERT(zk != NULL && done != NULL);
	if (!zk_path_ok(path))
		return SL_EINVAL;
	len = strlen(path);
	for (size_t i = 1; i < len; i++)
		need += path[i] == '/';
	if (need > ZK_PATH_DEPTH_MAX)
		return SL_EINVAL;
	if (zk->closing)
		return SL_ECLOSED;
	if (ZK_CALLS_MAX - zk->call_count < SL_MAX(need, 1u))
		return SL_EAGAIN;
	pp = calloc(1, sizeof(*pp));
	if (pp == NULL)
		return SL_ENOMEM;
	pp->done = done;
	pp->arg = arg;
	pp->zrc = ZOK;
	/* One guard count held during submission: a completion delivered
	 * meanwhile (an expiry handled by a kick) cannot finish pp early. */
	pp->left = 1;
	if (need == 0) {
		pp->left++;
		err = zk_exists(zk, "/", NULL, NULL, zk_parents_root_done, pp);
		sent += err == SL_OK;
	}
	memcpy(prefix, path, len + 1);
	for (size_t i = 1; i < len && need > 0; i++) {
		if (path[i] != '/')
			continue;
		prefix[i] = '\0';
		pp->left++;
		enum sl_err e = zk_create(zk, prefix, NULL, 0, ZK_PERSISTENT,
					  zk_parents_one_done, pp);
		prefix[i] = '/';
		if (e == SL_OK) {
			sent++;
			continue;
		}
		pp->left--;
		if (err == SL_OK)
			err = e;
	}
	if (sent == 0) {
		SL_ASSERT(pp->left == 1);
		free(pp);
		return err;
	}
	/* Requests that could not be queued count as failed answers; then
	 * drop the guard (this may complete pp if everything answered). */
	struct zk_result guard = { .zrc = err == SL_OK ? ZOK : ZSYSTEMERROR };
	zk_parents_one_done(zk, &guard, pp);
	return SL_OK;
}

int64_t zk_session_id(const struct zk *zk)
{
	return zk->session_id;
}

bool zk_connected(const struct zk *zk)
{
	return zk->connected;
}

uint32_t zk_session_passwd(const struct zk *zk, char *out, uint32_t cap)
{
	uint32_t n = SL_MIN(cap, (uint32_t)sizeof(zk->passwd));

	memcpy(out, zk->passwd, n);
	return n;
}

int zk_server_port(const struct zk *zk)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (zk->zh == NULL || !zk->connected ||
	    zookeeper_get_connected_host(zk->zh, (struct sockaddr *)&ss, &len) == NULL)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

uint32_t zk_calls_outstanding(const struct zk *zk)
{
	return zk->call_count;
}

uint32_t zk_watches_pending(const struct zk *zk)
{
	return zk->watch_count;
}
