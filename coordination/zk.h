/*
 * zk.h — one ZooKeeper session owned by one shard, driven from that
 * shard's io_uring loop (Debian's single-threaded libzookeeper-st; no
 * protocol code of our own).
 *
 * Driving. After every zookeeper_process() (and after every request queued
 * outside it) zk asks zookeeper_interest() for (fd, interest, timeout) and
 * arms one one-shot IORING_OP_POLL_ADD on that fd plus one core/timer for
 * the timeout; whichever fires first calls zookeeper_process() and re-arms.
 * A poll still in flight at re-arm time is cancelled and marked stale: the
 * library may have closed and re-opened its socket under the same fd
 * number, so an old poll is never trusted. Stale polls complete into their
 * slot and are ignored; struct zk is freed only when no poll is in flight.
 *
 * Session events (zk_event_fn), in the order they can happen:
 *   ZK_EVENT_SESSION_NEW   connected with a session this zk never had
 *                          before: the first one, or the replacement after
 *                          an expiry. Create ephemeral nodes and set
 *                          watches here.
 *   ZK_EVENT_DISCONNECTED  connection lost; the session may still be
 *                          alive (ephemerals and watches intact). The
 *                          library reconnects to the next server itself.
 *   ZK_EVENT_CONNECTED     reconnected to the SAME session.
 *   ZK_EVENT_EXPIRED       the server expired the session: its ephemeral
 *                          nodes and watches are gone. zk has already
 *                          started a new session (automatic re-open); a
 *                          ZK_EVENT_SESSION_NEW follows once it connects.
 *
 * States of struct zk and the function behind each transition:
 *   zk_open --> OPEN (handle connecting) --expiry seen after a process,
 *   zk_session_replace--> OPEN (new handle, gen + 1) --zk_close--> CLOSING
 *   --last stale poll completes, zk_free--> freed
 *
 * Invariants:
 *   1. Every completion callback (zk_done_fn) runs exactly once, on the
 *      owning shard: with the server's answer, or with ZK_ZCLOSING /
 *      SL_ECLOSED from zk_close, or ZK_ZSESSIONEXPIRED / SL_EAGAIN when the
 *      session it was sent on expired.
 *   2. A watch callback (zk_watch_fn) runs at most once, and exactly once
 *      when the operation that set it succeeded (ZK_ZOK, or ZK_ZNONODE for
 *      exists): with the node event, or with ZK_WATCH_LOST when the
 *      session expires or zk closes. A failed operation sets no watch.
 *   3. At most ZK_CALLS_MAX operations are outstanding (SL_EAGAIN beyond)
 *      and at most ZK_WATCHES_MAX watches are pending (SL_EAGAIN beyond).
 *   4. Every call that takes a struct zk runs on the owning shard; nothing
 *      here is thread-safe.
 *
 * Re-entrancy: callbacks may start new operations. zk_close from inside a
 * callback is safe: it is deferred to the end of the current processing
 * step (the zk stays valid until the callback returns; after that the
 * owner must not touch it). zk_close from outside a callback closes at
 * once. Note zookeeper_close() sends the closeSession synchronously when
 * connected (the library allows itself up to 3 s on a stalled socket; in
 * practice one non-blocking write): call zk_close at shutdown, not on a
 * hot path. Opening never blocks, except for name resolution of non-numeric
 * host names in the connect string (the library resolves at init).
 *
 * Library logging goes to core/log.h at debug level (LOG_D), never raw to
 * stderr.
 */
#ifndef SL_ZK_H
#define SL_ZK_H

#include <stdbool.h>
#include <stdint.h>

#include "sl.h"

struct shard;
struct zk;

#define ZK_CALLS_MAX 4096u
#define ZK_WATCHES_MAX 65536u
/* ZooKeeper's jute.maxbuffer is 1 MiB for the whole packet: keep 1 KiB
 * for the path and headers so a maximal value never breaks the session. */
#define ZK_DATA_MAX ((1u << 20) - 1024u)
#define ZK_PATH_MAX 1024u
#define ZK_MULTI_OPS_MAX 256u
#define ZK_CHILDREN_MAX 1000000u

/* Raw ZooKeeper codes callers distinguish (mirrors ZOO_ERRORS; checked
 * against <zookeeper/zookeeper.h> in zk.c). */
enum zk_code {
	ZK_ZOK = 0,
	ZK_ZSYSTEMERROR = -1,
	ZK_ZCONNECTIONLOSS = -4,
	ZK_ZOPERATIONTIMEOUT = -7,
	ZK_ZBADARGUMENTS = -8,
	ZK_ZINVALIDSTATE = -9,
	ZK_ZAPIERROR = -100,
	ZK_ZNONODE = -101,
	ZK_ZNOAUTH = -102,
	ZK_ZBADVERSION = -103,
	ZK_ZNOCHILDRENFOREPHEMERALS = -108,
	ZK_ZNODEEXISTS = -110,
	ZK_ZNOTEMPTY = -111,
	ZK_ZSESSIONEXPIRED = -112,
	ZK_ZCLOSING = -116,
	ZK_ZNOTHING = -117,
	ZK_ZSESSIONMOVED = -118,
	ZK_ZRUNTIMEINCONSISTENCY = -2,
};

enum zk_event_type {
	ZK_EVENT_SESSION_NEW = 1,
	ZK_EVENT_CONNECTED,
	ZK_EVENT_DISCONNECTED,
	ZK_EVENT_EXPIRED,
};

struct zk_event {
	enum zk_event_type type;
	int64_t session_id;      /* the session this event is about */
};

enum zk_watch_type {
	ZK_WATCH_CREATED = 1,
	ZK_WATCH_DELETED,
	ZK_WATCH_CHANGED,
	ZK_WATCH_CHILD,
	ZK_WATCH_LOST,           /* session expired or zk closed: re-read */
};

struct zk_watch_event {
	enum zk_watch_type type;
	const char *path;        /* borrowed for the callback */
};

/* Flags of zk_create and ZK_OP_CREATE. */
enum zk_create_flags {
	ZK_PERSISTENT = 0,
	ZK_EPHEMERAL = 1 << 0,
	ZK_SEQUENCE = 1 << 1,
};

/* Stat of a znode (the fields Sluice uses). */
struct zk_stat {
	int64_t czxid;
	int64_t mzxid;
	int64_t ephemeral_owner;  /* session id, 0 for persistent nodes */
	int32_t version;          /* data version: the zkVersion */
	int32_t cversion;
	int32_t child_count;
	int32_t data_len;
};

enum zk_op_type { ZK_OP_CREATE = 1, ZK_OP_DELETE, ZK_OP_SET, ZK_OP_CHECK };

/* One operation of zk_multi; strings are borrowed only during the call. */
struct zk_op {
	enum zk_op_type type;
	const char *path;
	const void *data;         /* CREATE, SET */
	uint32_t data_len;
	int32_t version;          /* DELETE, SET, CHECK: expected, -1 any */
	unsigned flags;           /* CREATE: enum zk_create_flags */
};

struct zk_op_result {
	enum sl_err err;
	int zrc;                  /* enum zk_code */
	const char *path;         /* CREATE: the created path */
	int32_t version;          /* SET: the new version */
};

/*
 * What a completion gets; every pointer is borrowed for the callback only.
 * `err` maps `zrc`: ZOK -> SL_OK, ZNONODE -> SL_ENOTFOUND, ZNODEEXISTS and
 * ZNOTEMPTY -> SL_EEXIST, ZBADVERSION -> SL_ERANGE, connection loss,
 * timeouts and expiry -> SL_EAGAIN (retry on the next connect / new
 * session), ZCLOSING -> SL_ECLOSED, bad arguments -> SL_EINVAL, else SL_EIO.
 */
struct zk_result {
	enum sl_err err;
	int zrc;                  /* enum zk_code, the raw library code */
	const char *path;         /* create: the created path */
	const char *data;         /* get (NULL for a node without data) */
	uint32_t data_len;
	struct zk_stat stat;      /* get, set, exists, get_children */
	bool stat_valid;
	const char *const *children;  /* get_children: names, not paths */
	uint32_t child_count;
	const struct zk_op_result *ops;  /* multi: one per op */
	uint32_t op_count;
};

typedef void zk_event_fn(struct zk *zk, const struct zk_event *ev, void *arg);
typedef void zk_done_fn(struct zk *zk, const struct zk_result *res, void *arg);
typedef void zk_watch_fn(struct zk *zk, const struct zk_watch_event *ev, void *arg);

/*
 * Starts a session to `connect` ("host:port,...[/chroot]", copied) with
 * `session_timeout_ms` (the server clamps it to [2, 20] ticks). Returns at
 * once; `on_event(zk, ev, arg)` reports the session. SL_EINVAL for a bad
 * argument, SL_ENOMEM, SL_EIO if the library refuses the connect string.
 * Runs on: sh.
 */
enum sl_err zk_open(struct zk **out, struct shard *sh, const char *connect,
		    int session_timeout_ms, zk_event_fn *on_event, void *arg);

/*
 * Closes the session (the server deletes its ephemeral nodes at once),
 * completes every outstanding operation with ZK_ZCLOSING / SL_ECLOSED and
 * every pending watch with ZK_WATCH_LOST, then frees zk (once its stale
 * polls have completed). Idempotent while closing; deferred when called
 * from a zk callback (header). Runs on: the owning shard.
 */
void zk_close(struct zk *zk);

/* Operations. Each returns SL_OK when queued (then `done` runs exactly
 * once), SL_EINVAL for a bad path or size, SL_EAGAIN when ZK_CALLS_MAX or
 * ZK_WATCHES_MAX is reached or no handle exists right now, SL_ECLOSED
 * while closing, SL_EIO when the library refuses the request (logged).
 * `watch` may be NULL (no watch). Runs on: the owning shard. */
enum sl_err zk_create(struct zk *zk, const char *path, const void *data, uint32_t data_len,
		      unsigned flags, zk_done_fn *done, void *arg);
enum sl_err zk_get(struct zk *zk, const char *path, zk_watch_fn *watch, void *watch_arg,
		   zk_done_fn *done, void *arg);
enum sl_err zk_set(struct zk *zk, const char *path, const void *data, uint32_t data_len,
		   int32_t version, zk_done_fn *done, void *arg);
enum sl_err zk_delete(struct zk *zk, const char *path, int32_t version,
		      zk_done_fn *done, void *arg);
enum sl_err zk_exists(struct zk *zk, const char *path, zk_watch_fn *watch, void *watch_arg,
		      zk_done_fn *done, void *arg);
enum sl_err zk_get_children(struct zk *zk, const char *path, zk_watch_fn *watch,
			    void *watch_arg, zk_done_fn *done, void *arg);
/* Makes the server this session talks to catch up with the leader (a
 * read after it sees every write committed before it, from any session).
 * res->path is the path given. */
enum sl_err zk_sync(struct zk *zk, const char *path, zk_done_fn *done, void *arg);
/* Atomic: all `ops[0 .. op_count)` apply or none; res->ops has one result
 * per op (the failing one carries its code, the others ZRUNTIMEINCONSISTENCY
 * or ZOK as the server reports). 1 <= op_count <= ZK_MULTI_OPS_MAX. */
enum sl_err zk_multi(struct zk *zk, const struct zk_op *ops, uint32_t op_count,
		     zk_done_fn *done, void *arg);

/*
 * Creates every missing ancestor of `path` (not `path` itself) as an empty
 * persistent node, ignoring ZNODEEXISTS; `done` runs once, after the last
 * ancestor, with the first other error or SL_OK. A path with no ancestor
 * ("/a") completes with SL_OK from the next processing step. Errors as the
 * operations above.
 */
enum sl_err zk_create_parents(struct zk *zk, const char *path, zk_done_fn *done, void *arg);

/* The current session id (0 before the first connect), and whether the
 * handle is connected right now. */
int64_t zk_session_id(const struct zk *zk);
bool zk_connected(const struct zk *zk);
/* The session password (for tests that expire a session on purpose):
 * copies up to `cap` bytes into `out`, returns the length. */
uint32_t zk_session_passwd(const struct zk *zk, char *out, uint32_t cap);
/* The TCP port of the server the session is connected to right now, or 0
 * (tests use it to kill exactly that server). */
int zk_server_port(const struct zk *zk);
/* Operations outstanding and watches pending (tests, invariant 3). */
uint32_t zk_calls_outstanding(const struct zk *zk);
uint32_t zk_watches_pending(const struct zk *zk);

const char *zk_event_str(enum zk_event_type type);

#endif
